//! The access log: one line per request, JSON or the combined format,
//! handed to a writer task so the request path never waits on a disk.

use http::Version;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;
use tug_spec::AccessLog;

pub(crate) struct AccessEntry {
    pub client: SocketAddr,
    pub method: String,
    pub host: String,
    pub path: String,
    pub version: Version,
    pub status: u16,
    pub duration: Duration,
    pub route: String,
    pub replica: String,
    pub attempts: u32,
    pub request_id: String,
    pub user_agent: String,
    pub referer: String,
    /// The request was held while its service woke from zero.
    pub cold_start: bool,
}

/// Where lines go; lines are dropped (not queued without bound) when the
/// writer falls behind.
#[derive(Clone)]
pub(crate) struct AccessSink {
    format: AccessLog,
    tx: Option<mpsc::Sender<String>>,
}

impl AccessSink {
    pub fn new(format: AccessLog, tx: Option<mpsc::Sender<String>>) -> Self {
        AccessSink { format, tx }
    }
    pub fn enabled(&self) -> bool {
        self.tx.is_some() && self.format != AccessLog::Off
    }
    pub fn write(&self, e: AccessEntry) {
        if let Some(tx) = &self.tx {
            let line = match self.format {
                AccessLog::Off => return,
                AccessLog::Json => json(&e),
                AccessLog::Combined => combined(&e, SystemTime::now()),
            };
            let _ = tx.try_send(line);
        }
    }
}

fn version(v: Version) -> &'static str {
    match v {
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_2 => "HTTP/2.0",
        Version::HTTP_3 => "HTTP/3.0",
        _ => "HTTP/1.1",
    }
}

fn json(e: &AccessEntry) -> String {
    let ts = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64();
    serde_json::json!({
        "ts": (ts * 1000.0).round() / 1000.0,
        "client": e.client.ip().to_string(),
        "method": e.method,
        "host": e.host,
        "path": e.path,
        "protocol": version(e.version),
        "status": e.status,
        "duration_ms": (e.duration.as_secs_f64() * 1e6).round() / 1e3,
        "route": e.route,
        "replica": e.replica,
        "attempts": e.attempts,
        "request_id": e.request_id,
        "user_agent": e.user_agent,
        "cold_start": e.cold_start,
    })
    .to_string()
}

/// `%h - - [%d/%b/%Y:%H:%M:%S +0000] "%r" %>s - "%{Referer}i" "%{User-agent}i"`.
fn combined(e: &AccessEntry, now: SystemTime) -> String {
    let secs = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs() as i64;
    let (y, m, d) = civil(secs.div_euclid(86_400));
    let t = secs.rem_euclid(86_400);
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let q = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
    let cold = if e.cold_start { " cold_start=true" } else { "" };
    format!(
        "{} - - [{d:02}/{}/{y}:{:02}:{:02}:{:02} +0000] \"{} {} {}\" {} - \"{}\" \"{}\"{cold}",
        e.client.ip(),
        MONTHS[(m - 1) as usize],
        t / 3600,
        t / 60 % 60,
        t % 60,
        e.method,
        q(&e.path),
        version(e.version),
        e.status,
        q(if e.referer.is_empty() {
            "-"
        } else {
            &e.referer
        }),
        q(if e.user_agent.is_empty() {
            "-"
        } else {
            &e.user_agent
        }),
    )
}

/// Days since 1970-01-01 to (year, month, day), Howard Hinnant's algorithm.
fn civil(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn combined_format() {
        let e = AccessEntry {
            client: "10.0.0.1:5555".parse().unwrap(),
            method: "GET".into(),
            host: "a".into(),
            path: "/x?\"y\"".into(),
            version: Version::HTTP_11,
            status: 200,
            duration: Duration::from_millis(3),
            route: "*/".into(),
            replica: "r".into(),
            attempts: 1,
            request_id: "id".into(),
            user_agent: "curl/8".into(),
            referer: String::new(),
            cold_start: false,
        };
        // 2000-10-10 13:55:36 UTC.
        let t = UNIX_EPOCH + Duration::from_secs(971_186_136);
        assert_eq!(
            combined(&e, t),
            r#"10.0.0.1 - - [10/Oct/2000:13:55:36 +0000] "GET /x?\"y\" HTTP/1.1" 200 - "-" "curl/8""#
        );
        let j: serde_json::Value = serde_json::from_str(&json(&e)).unwrap();
        assert_eq!(j["status"], 200);
        assert_eq!(j["duration_ms"], 3.0);
        assert_eq!(j["cold_start"], false);
        let cold = AccessEntry {
            cold_start: true,
            ..e
        };
        assert!(combined(&cold, t).ends_with(r#""curl/8" cold_start=true"#));
    }

    #[test]
    fn civil_dates() {
        assert_eq!(civil(0), (1970, 1, 1));
        assert_eq!(civil(11_016), (2000, 2, 29));
        assert_eq!(civil(-1), (1969, 12, 31));
    }
}
