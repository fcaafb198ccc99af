//! `dashboard:`: where the agent serves HTTP (the web dashboard, its API and
//! `/metrics`) besides its unix socket. `observe:`: where traces and logs are
//! exported over OTLP (the standard `OTEL_*` variables win over it).

use crate::parse::Cx;
use crate::route::listen_address;
use crate::yaml::Node;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The agent's HTTP listener.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dashboard {
    /// `:9600` means 127.0.0.1:9600. Any other interface requires the API token.
    pub listen: SocketAddr,
}

const DASHBOARD_KEYS: &[&str] = &["listen"];

/// The stack's `observe:`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Observe {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub otlp: Option<Otlp>,
}

/// OTLP export of tug's spans (and the replicas' logs with `logs: true`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Otlp {
    /// The collector's base URL, like `http://127.0.0.1:4317`; `/v1/traces`
    /// and `/v1/logs` are appended for HTTP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<OtlpProtocol>,
    /// Sent with every export (an API key, a tenant).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// The share of new traces kept, 0.0 to 1.0; a request that arrives
    /// with a sampled `traceparent` is always kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampling: Option<f64>,
    /// Forward the replicas' log lines as OTLP log records.
    #[serde(default)]
    pub logs: bool,
    /// A PEM file of CA certificates trusted for an `https://` endpoint,
    /// besides the system's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<PathBuf>,
    /// The PEM client certificate and key, for mutual TLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_certificate: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_key: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OtlpProtocol {
    #[serde(rename = "grpc")]
    Grpc,
    #[serde(rename = "http/protobuf")]
    HttpProtobuf,
}

impl Observe {
    pub fn is_empty(&self) -> bool {
        self.otlp.is_none()
    }
}

const OBSERVE_KEYS: &[&str] = &["otlp"];
const OTLP_KEYS: &[&str] = &[
    "endpoint",
    "protocol",
    "headers",
    "sampling",
    "logs",
    "certificate",
    "client_certificate",
    "client_key",
];

impl Cx<'_> {
    /// The stack's `observe:`.
    pub(crate) fn observe(&mut self, n: &Node, dir: &Path) -> Option<Observe> {
        let f = self.fields(n, "observe", OBSERVE_KEYS)?;
        let otlp = match f.get("otlp") {
            Some(o) => Some(self.otlp(o, dir)?),
            None => None,
        };
        Some(Observe { otlp })
    }

    fn otlp(&mut self, n: &Node, dir: &Path) -> Option<Otlp> {
        let f = self.fields(n, "observe.otlp", OTLP_KEYS)?;
        let mut o = Otlp::default();
        let mut ok = true;
        if let Some(v) = f.get("endpoint") {
            match self.string(v, "observe.otlp.endpoint") {
                Some(e) if e.starts_with("http://") || e.starts_with("https://") => {
                    o.endpoint = Some(e)
                }
                Some(e) => {
                    self.err(
                        v,
                        format!("`observe.otlp.endpoint` must be an http:// or https:// URL, found `{e}`"),
                        Some(format!("like `http://{e}`")),
                    );
                    ok = false;
                }
                None => ok = false,
            }
        }
        if let Some(v) = f.get("protocol") {
            match v.scalar() {
                Some("grpc") => o.protocol = Some(OtlpProtocol::Grpc),
                Some("http/protobuf") => o.protocol = Some(OtlpProtocol::HttpProtobuf),
                _ => {
                    self.err(
                        v,
                        format!(
                            "`observe.otlp.protocol` must be `grpc` or `http/protobuf`, found {}",
                            v.describe()
                        ),
                        None,
                    );
                    ok = false;
                }
            }
        }
        if let Some(v) = f.get("headers") {
            match v.as_map() {
                Some(map) => {
                    for (k, val) in map {
                        let key = self.text(k, "observe.otlp.headers");
                        let value = self.text(val, "observe.otlp.headers");
                        match (key, value) {
                            (Some(k), Some(val)) => {
                                o.headers.insert(k, val);
                            }
                            _ => ok = false,
                        }
                    }
                }
                None => {
                    self.expected(v, "observe.otlp.headers", "a map of header names to values");
                    ok = false;
                }
            }
        }
        if let Some(v) = f.get("sampling") {
            match v.as_f64() {
                Some(r) if (0.0..=1.0).contains(&r) => o.sampling = Some(r),
                _ => {
                    self.err(
                        v,
                        format!(
                            "`observe.otlp.sampling` must be a number from 0.0 to 1.0, found {}",
                            v.describe()
                        ),
                        Some("1.0 keeps every trace, 0.01 one in a hundred".into()),
                    );
                    ok = false;
                }
            }
        }
        if let Some(v) = f.get("logs") {
            match self.boolean(v, "observe.otlp.logs") {
                Some(b) => o.logs = b,
                None => ok = false,
            }
        }
        for (key, slot) in [
            ("certificate", &mut o.certificate),
            ("client_certificate", &mut o.client_certificate),
            ("client_key", &mut o.client_key),
        ] {
            let Some(v) = f.get(key) else { continue };
            let what = format!("observe.otlp.{key}");
            let Some(p) = self.string(v, &what) else {
                ok = false;
                continue;
            };
            let path = dir.join(p);
            // Read now, so a missing or unreadable file is reported here
            // rather than when the first span is sent.
            if let Err(e) = std::fs::File::open(&path).and_then(|f| {
                if f.metadata()?.is_dir() {
                    return Err(std::io::Error::other("a directory, not a file"));
                }
                Ok(())
            }) {
                self.err(
                    v,
                    format!("`{what}`: cannot read {}: {e}", path.display()),
                    Some("give the path of a PEM file, relative to this file".into()),
                );
                ok = false;
                continue;
            }
            *slot = Some(path);
        }
        if o.client_certificate.is_some() != o.client_key.is_some() {
            self.err(
                n,
                "`observe.otlp` needs both `client_certificate` and `client_key` for mutual TLS, or neither",
                None,
            );
            ok = false;
        }
        ok.then_some(o)
    }

    /// The stack's `dashboard:`.
    pub(crate) fn dashboard(&mut self, n: &Node) -> Option<Dashboard> {
        let f = self.fields(n, "dashboard", DASHBOARD_KEYS)?;
        let v = f.get("listen")?;
        let text = match (v.as_i64(), v.scalar()) {
            (Some(p), _) => p.to_string(),
            (None, Some(s)) => s.to_string(),
            _ => {
                self.err(
                    v,
                    format!(
                        "`dashboard.listen` must be an address like `:9600`, found {}",
                        v.describe()
                    ),
                    None,
                );
                return None;
            }
        };
        match listen_address(&text) {
            Ok(listen) => Some(Dashboard { listen }),
            Err((m, h)) => {
                self.err(v, format!("`dashboard.listen`: {m}"), h);
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::parse_str;
    use std::path::Path;

    fn parse(yaml: &str) -> Result<crate::Stack, String> {
        parse_str(yaml, Path::new("tug.yaml")).map_err(|e| e.to_string())
    }

    #[test]
    fn port_only_means_loopback() {
        let s = parse("name: a\ndashboard:\n  listen: \":9600\"\n").unwrap();
        assert_eq!(s.dashboard.unwrap().listen.to_string(), "127.0.0.1:9600");
        let s = parse("name: a\ndashboard: { listen: \"0.0.0.0:9600\" }\n").unwrap();
        assert_eq!(s.dashboard.unwrap().listen.to_string(), "0.0.0.0:9600");
    }

    #[test]
    fn otlp_settings() {
        let s = parse(
            "name: a\nobserve:\n  otlp:\n    endpoint: http://127.0.0.1:4317\n    protocol: grpc\n    headers: { x-api-key: k1 }\n    sampling: 0.25\n    logs: true\n",
        )
        .unwrap();
        let o = s.observe.otlp.unwrap();
        assert_eq!(o.endpoint.as_deref(), Some("http://127.0.0.1:4317"));
        assert_eq!(o.protocol, Some(crate::OtlpProtocol::Grpc));
        assert_eq!(o.headers["x-api-key"], "k1");
        assert_eq!(o.sampling, Some(0.25));
        assert!(o.logs);
        let s = parse("name: a\nobserve: { otlp: { sampling: 1 } }\n").unwrap();
        assert_eq!(s.observe.otlp.unwrap().sampling, Some(1.0));
    }

    #[test]
    fn bad_otlp_settings_are_located() {
        let e = parse("name: a\nobserve:\n  otlp:\n    sampling: 2\n").unwrap_err();
        assert!(e.contains("tug.yaml:4:15"), "{e}");
        assert!(e.contains("0.0 to 1.0"), "{e}");
        let e = parse("name: a\nobserve:\n  otlp:\n    protocol: http\n").unwrap_err();
        assert!(
            e.contains("tug.yaml:4:15") && e.contains("http/protobuf"),
            "{e}"
        );
        let e = parse("name: a\nobserve:\n  otlp:\n    endpoint: collector:4317\n").unwrap_err();
        assert!(
            e.contains("tug.yaml:4:15") && e.contains("http://collector:4317"),
            "{e}"
        );
        let e = parse("name: a\nobserve:\n  otlp:\n    sample: 1\n").unwrap_err();
        assert!(e.contains("tug.yaml:4:5") && e.contains("sampling"), "{e}");
    }

    #[test]
    fn tls_files_are_relative_to_the_file_and_must_be_readable() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("pki")).unwrap();
        for f in ["pki/ca.pem", "pki/client.pem", "pki/client.key"] {
            std::fs::write(dir.path().join(f), "-----BEGIN CERTIFICATE-----\n").unwrap();
        }
        let file = dir.path().join("tug.yaml");
        let s = parse_str(
            "name: a\nobserve:\n  otlp:\n    endpoint: https://c:4317\n    certificate: pki/ca.pem\n    client_certificate: pki/client.pem\n    client_key: pki/client.key\n",
            &file,
        )
        .unwrap();
        let o = s.observe.otlp.unwrap();
        assert_eq!(o.certificate, Some(dir.path().join("pki/ca.pem")));
        assert_eq!(o.client_key, Some(dir.path().join("pki/client.key")));
        let e = parse_str(
            "name: a\nobserve:\n  otlp:\n    certificate: pki/missing.pem\n",
            &file,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("tug.yaml:4:18") && e.contains("missing.pem") && e.contains("cannot read"),
            "{e}"
        );
        let e = parse_str("name: a\nobserve:\n  otlp:\n    certificate: pki\n", &file)
            .unwrap_err()
            .to_string();
        assert!(e.contains("tug.yaml:4:18"), "{e}");
        let e = parse_str(
            "name: a\nobserve:\n  otlp:\n    client_certificate: pki/client.pem\n",
            &file,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("tug.yaml:4:5") && e.contains("client_key"),
            "{e}"
        );
    }

    #[test]
    fn bad_address_is_located() {
        let e = parse("name: a\ndashboard:\n  listen: nowhere\n").unwrap_err();
        assert!(e.contains("tug.yaml:3:11"), "{e}");
        assert!(e.contains("not a listen address"), "{e}");
        let e = parse("name: a\ndashboard:\n  port: 1\n").unwrap_err();
        assert!(e.contains("tug.yaml:3:3"), "{e}");
    }
}
