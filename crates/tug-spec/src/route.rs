//! The gateway: the stack's `gateway:` (where it listens) and each service's
//! `route:` (which requests reach it, and how they are balanced and retried).

use crate::model::Service;
use crate::parse::{suggest, Cx};
use crate::units::{ByteSize, Duration};
use crate::yaml::Node;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// `gateway:` at the top of tug.yaml.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Gateway {
    /// Addresses served; `:8000` means 127.0.0.1:8000.
    pub listen: Vec<SocketAddr>,
    #[serde(default)]
    pub access_log: AccessLog,
    /// Connections open at once across all clients; more wait in the backlog.
    #[serde(default = "default_max_connections")]
    pub max_connections: u32,
    /// How long a client may take to send the request head.
    #[serde(default = "default_header_timeout")]
    pub header_timeout: Duration,
    /// Largest request head (431 above).
    #[serde(default = "default_max_header")]
    pub max_header_size: ByteSize,
    /// Largest request body (413 above).
    #[serde(default = "default_max_body")]
    pub max_body_size: ByteSize,
}

pub const DEFAULT_LISTEN_PORT: u16 = 8000;

fn default_max_connections() -> u32 {
    10_000
}
fn default_header_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_max_header() -> ByteSize {
    ByteSize(64 << 10)
}
fn default_max_body() -> ByteSize {
    ByteSize(100 << 20)
}

impl Default for Gateway {
    fn default() -> Self {
        Gateway {
            listen: vec![SocketAddr::new(
                IpAddr::V4(Ipv4Addr::LOCALHOST),
                DEFAULT_LISTEN_PORT,
            )],
            access_log: AccessLog::default(),
            max_connections: default_max_connections(),
            header_timeout: default_header_timeout(),
            max_header_size: default_max_header(),
            max_body_size: default_max_body(),
        }
    }
}

/// The access log line written per request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccessLog {
    /// One JSON object per line.
    #[default]
    Json,
    /// The Apache/nginx combined format.
    Combined,
    Off,
}

/// One route of a service: requests for `host` (any host when unset) whose
/// path starts with `path` go to its ready replicas.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// A path prefix starting with `/`, matched on segment boundaries.
    #[serde(default = "root")]
    pub path: String,
    /// Remove `path` from the request before forwarding it.
    #[serde(default)]
    pub strip_prefix: bool,
    #[serde(default)]
    pub timeouts: Timeouts,
    #[serde(default)]
    pub retry: Retry,
    #[serde(default)]
    pub balance: Balance,
    /// What the replicas speak: HTTP/1.1, or HTTP/2 without TLS (gRPC).
    #[serde(default)]
    pub upstream: Upstream,
}

/// The protocol the gateway speaks to a route's replicas.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Upstream {
    /// HTTP/1.1 with keep-alive (a pool of connections per replica).
    #[default]
    Http1,
    /// HTTP/2 cleartext with prior knowledge: one multiplexed connection per
    /// replica, trailers kept (gRPC).
    H2c,
}

fn root() -> String {
    "/".into()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Timeouts {
    /// Time to open a connection to a replica.
    #[serde(default = "default_connect")]
    pub connect: Duration,
    /// Time from forwarding the request to the response head.
    #[serde(default = "default_request")]
    pub request: Duration,
    /// Idle upstream connections are closed after this long.
    #[serde(default = "default_idle")]
    pub idle: Duration,
}

fn default_connect() -> Duration {
    Duration::from_secs(2)
}
fn default_request() -> Duration {
    Duration::from_secs(30)
}
fn default_idle() -> Duration {
    Duration::from_secs(90)
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: default_connect(),
            request: default_request(),
            idle: default_idle(),
        }
    }
}

/// Retries go to a different replica. A failed connect is always retried
/// (nothing reached the replica); statuses only for idempotent methods.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Retry {
    /// Tries after the first one.
    #[serde(default = "two")]
    pub attempts: u32,
    /// Response statuses retried (502, 503, 504).
    #[serde(default = "default_retry_on")]
    pub on: Vec<u16>,
}

fn two() -> u32 {
    2
}
fn default_retry_on() -> Vec<u16> {
    vec![502, 503, 504]
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            attempts: two(),
            on: default_retry_on(),
        }
    }
}

/// How a replica is picked for a request.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Balance {
    /// Power of two choices: the less busy of two random ready replicas.
    #[default]
    P2c,
    RoundRobin,
    /// Consistent hash, so one key keeps reaching one replica.
    Hash(HashKey),
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HashKey {
    /// A request header's value.
    Header(String),
    /// The client's IP address.
    Client,
}

const GATEWAY_KEYS: &[&str] = &[
    "listen",
    "access_log",
    "max_connections",
    "header_timeout",
    "max_header_size",
    "max_body_size",
];
const ROUTE_KEYS: &[&str] = &[
    "host",
    "path",
    "strip_prefix",
    "timeouts",
    "retry",
    "balance",
    "upstream",
];
const TIMEOUT_KEYS: &[&str] = &["connect", "request", "idle"];
const RETRY_KEYS: &[&str] = &["attempts", "on"];

/// A listen address: `:8000` and `8000` bind loopback; any other interface is
/// written out (`0.0.0.0:8000`, `[::]:8000`).
pub fn listen_address(text: &str) -> Result<SocketAddr, (String, Option<String>)> {
    let t = text.trim();
    let port_only = t.strip_prefix(':').unwrap_or(t);
    if let Ok(port) = port_only.parse::<u16>() {
        if port == 0 {
            return Err(("port 0 cannot be a gateway port".into(), None));
        }
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
    }
    t.parse::<SocketAddr>().map_err(|_| {
        (
            format!("`{t}` is not a listen address"),
            Some(
                "write `:8000` (loopback), `127.0.0.1:8000`, `0.0.0.0:8000` or `[::]:8000`".into(),
            ),
        )
    })
}

fn valid_host(h: &str) -> bool {
    let h = h.strip_prefix("*.").unwrap_or(h);
    !h.is_empty()
        && h.len() <= 253
        && h.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

impl Cx<'_> {
    /// The stack's `gateway:`.
    pub(crate) fn gateway(&mut self, n: &Node) -> Option<Gateway> {
        let f = self.fields(n, "gateway", GATEWAY_KEYS)?;
        let mut g = Gateway::default();
        if let Some(v) = f.get("listen") {
            let items: Vec<&Node> = match v.as_seq() {
                Some(s) => s.iter().collect(),
                None => vec![v],
            };
            let mut listen = Vec::new();
            for i in items {
                let text = match (i.as_i64(), i.scalar()) {
                    (Some(p), _) => p.to_string(),
                    (None, Some(s)) => s.to_string(),
                    _ => {
                        self.err(
                            i,
                            format!(
                                "`gateway.listen` entries must be addresses like `:8000`, found {}",
                                i.describe()
                            ),
                            None,
                        );
                        continue;
                    }
                };
                match listen_address(&text) {
                    Ok(a) if listen.contains(&a) => {
                        self.err(i, format!("`gateway.listen`: {a} is listed twice"), None)
                    }
                    Ok(a) => listen.push(a),
                    Err((m, h)) => self.err(i, format!("`gateway.listen`: {m}"), h),
                }
            }
            if listen.is_empty() && v.as_seq().is_some_and(|s| s.is_empty()) {
                self.err(
                    v,
                    "`gateway.listen` is empty",
                    Some("write `listen: [\":8000\"]`".into()),
                );
            }
            if !listen.is_empty() {
                g.listen = listen;
            }
        }
        if let Some(v) = f.get("access_log") {
            g.access_log = match v.scalar() {
                Some("json") => AccessLog::Json,
                Some("combined") => AccessLog::Combined,
                Some("off") => AccessLog::Off,
                _ if v.as_bool() == Some(false) => AccessLog::Off,
                _ => {
                    let hint = v
                        .scalar()
                        .and_then(|s| suggest(s, &["json", "combined", "off"]))
                        .map(|s| format!("did you mean `{s}`?"));
                    self.err(
                        v,
                        format!(
                            "`gateway.access_log` must be json, combined or off; found {}",
                            v.describe()
                        ),
                        hint,
                    );
                    AccessLog::Json
                }
            };
        }
        if let Some(v) = f.get("max_connections") {
            match self.count(v, "gateway.max_connections") {
                Some(0) => self.err(v, "`gateway.max_connections` must be at least 1", None),
                Some(c) => g.max_connections = c,
                None => {}
            }
        }
        if let Some(d) = f
            .get("header_timeout")
            .and_then(|v| self.duration(v, "gateway.header_timeout"))
        {
            g.header_timeout = d;
        }
        if let Some(s) = f
            .get("max_header_size")
            .and_then(|v| self.size(v, "gateway.max_header_size"))
        {
            g.max_header_size = s;
        }
        if let Some(s) = f
            .get("max_body_size")
            .and_then(|v| self.size(v, "gateway.max_body_size"))
        {
            g.max_body_size = s;
        }
        Some(g)
    }

    /// A service's `route:`, one map or a list of them, with each route's node.
    pub(crate) fn routes<'n>(&mut self, name: &str, n: &'n Node) -> Vec<(Route, &'n Node)> {
        let items: Vec<&Node> = match n.as_seq() {
            Some(s) => s.iter().collect(),
            None => vec![n],
        };
        items
            .into_iter()
            .filter_map(|i| self.route(name, i).map(|r| (r, i)))
            .collect()
    }

    fn route(&mut self, name: &str, n: &Node) -> Option<Route> {
        let what = format!("{name}.route");
        let f = self.fields(n, &format!("`{what}`"), ROUTE_KEYS)?;
        let host = f.get("host").and_then(|v| {
            let h = self.string(v, &format!("{what}.host"))?.to_ascii_lowercase();
            if !valid_host(&h) {
                self.err(
                    v,
                    format!("`{what}.host`: `{h}` is not a host name"),
                    Some("write a name like `api.localhost` or `*.example.com`, without port or scheme".into()),
                );
                return None;
            }
            Some(h)
        });
        let path = match f.get("path") {
            None => root(),
            Some(v) => {
                let p = self.string(v, &format!("{what}.path"))?;
                if !p.starts_with('/') || p.contains(['?', '#', ' ']) {
                    self.err(
                        v,
                        format!("`{what}.path` must be a path starting with `/`, found `{p}`"),
                        Some(format!("write `path: /{}`", p.trim_start_matches('/'))),
                    );
                    return None;
                }
                // `/api/` and `/api` are the same prefix.
                if p.len() > 1 {
                    p.trim_end_matches('/').to_string()
                } else {
                    p
                }
            }
        };
        let strip_prefix = f
            .get("strip_prefix")
            .and_then(|v| self.boolean(v, &format!("{what}.strip_prefix")))
            .unwrap_or(false);
        let mut timeouts = Timeouts::default();
        if let Some(v) = f.get("timeouts") {
            if let Some(t) = self.fields(v, &format!("`{what}.timeouts`"), TIMEOUT_KEYS) {
                for (key, slot) in [
                    ("connect", &mut timeouts.connect),
                    ("request", &mut timeouts.request),
                    ("idle", &mut timeouts.idle),
                ] {
                    if let Some(n) = t.get(key) {
                        match self.duration(n, &format!("{what}.timeouts.{key}")) {
                            Some(d) if d.std().is_zero() => self.err(
                                n,
                                format!("`{what}.timeouts.{key}` must be longer than 0"),
                                None,
                            ),
                            Some(d) => *slot = d,
                            None => {}
                        }
                    }
                }
            }
        }
        let mut retry = Retry::default();
        if let Some(v) = f.get("retry") {
            if let Some(r) = self.fields(v, &format!("`{what}.retry`"), RETRY_KEYS) {
                if let Some(a) = r
                    .get("attempts")
                    .and_then(|n| self.count(n, &format!("{what}.retry.attempts")))
                {
                    retry.attempts = a;
                }
                if let Some(on) = r.get("on") {
                    let items: Vec<&Node> = match on.as_seq() {
                        Some(s) => s.iter().collect(),
                        None => vec![on],
                    };
                    retry.on.clear();
                    for i in items {
                        match i.as_i64() {
                            Some(c @ (500..=599)) => retry.on.push(c as u16),
                            _ => self.err(
                                i,
                                format!(
                                    "`{what}.retry.on` lists 5xx statuses, found {}",
                                    i.describe()
                                ),
                                Some("write `on: [502, 503, 504]`; a failed connect is always retried".into()),
                            ),
                        }
                    }
                }
            }
        }
        let balance = match f.get("balance") {
            None => Balance::P2c,
            Some(v) => self.balance(&what, v)?,
        };
        let upstream = match f.get("upstream") {
            None => Upstream::Http1,
            Some(v) => match v.scalar() {
                Some("http1") => Upstream::Http1,
                Some("h2c") => Upstream::H2c,
                other => {
                    let hint = other
                        .and_then(|s| suggest(s, &["http1", "h2c"]))
                        .map(|s| format!("did you mean `{s}`?"))
                        .unwrap_or_else(|| {
                            "write `http1` (the default) or `h2c` (HTTP/2 cleartext, for gRPC)"
                                .into()
                        });
                    self.err(
                        v,
                        format!(
                            "`{what}.upstream`: unknown protocol {}",
                            other.map_or_else(|| v.describe(), |s| format!("`{s}`"))
                        ),
                        Some(hint),
                    );
                    return None;
                }
            },
        };
        Some(Route {
            host,
            path,
            strip_prefix,
            timeouts,
            retry,
            balance,
            upstream,
        })
    }

    fn balance(&mut self, what: &str, v: &Node) -> Option<Balance> {
        const NAMES: &[&str] = &["p2c", "round_robin", "hash"];
        let hint = Some(
            "write `p2c`, `round_robin`, `{ hash: client }` or `{ hash: { header: X-User } }`"
                .to_string(),
        );
        match v.scalar() {
            Some("p2c") => return Some(Balance::P2c),
            Some("round_robin") => return Some(Balance::RoundRobin),
            Some(s) => {
                self.err(
                    v,
                    format!("`{what}.balance`: unknown method `{s}`"),
                    suggest(s, NAMES)
                        .map(|s| format!("did you mean `{s}`?"))
                        .or(hint),
                );
                return None;
            }
            None => {}
        }
        let f = self.fields(v, &format!("`{what}.balance`"), &["hash"])?;
        let Some(h) = f.get("hash") else {
            self.err(v, format!("`{what}.balance` needs `hash`"), hint);
            return None;
        };
        if h.scalar() == Some("client") {
            return Some(Balance::Hash(HashKey::Client));
        }
        let hf = self.fields(h, &format!("`{what}.balance.hash`"), &["header"]);
        match hf.and_then(|hf| hf.get("header")).and_then(|n| {
            let s = self.string(n, &format!("{what}.balance.hash.header"))?;
            if s.is_empty()
                || !s
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                self.err(
                    n,
                    format!("`{what}.balance.hash.header`: `{s}` is not a header name"),
                    None,
                );
                return None;
            }
            Some(s.to_ascii_lowercase())
        }) {
            Some(header) => Some(Balance::Hash(HashKey::Header(header))),
            None => {
                self.err(
                    h,
                    format!("`{what}.balance.hash` must be `client` or `{{ header: NAME }}`"),
                    None,
                );
                None
            }
        }
    }

    /// Reads every service's `route:` into `services` and reports two services
    /// claiming one host and path, naming both.
    pub(crate) fn stack_routes(
        &mut self,
        services: &mut BTreeMap<String, Service>,
        nodes: &[(&str, &Node)],
        gateway: Option<&Node>,
    ) {
        let mut seen: BTreeMap<(Option<String>, String), (String, usize, usize)> = BTreeMap::new();
        let mut first_route: Option<&Node> = None;
        for (name, svc) in nodes {
            let Some(rn) = svc.get("route") else { continue };
            first_route.get_or_insert(rn);
            let routes = self.routes(name, rn);
            if services.get(*name).is_some_and(|s| s.port.is_none()) && !routes.is_empty() {
                self.err(
                    rn,
                    format!("service `{name}` has a route but no `port`"),
                    Some("add `port: <the port the process listens on>`".into()),
                );
            }
            let mut kept = Vec::new();
            for (r, n) in routes {
                let key = (r.host.clone(), r.path.clone());
                if let Some((other, l, c)) = seen.get(&key) {
                    let host = r.host.as_deref().unwrap_or("any host");
                    let (same, hint) = if other == name {
                        (
                            format!("service `{name}` lists it twice (first at {l}:{c})"),
                            "remove one of them".to_string(),
                        )
                    } else {
                        (
                            format!("services `{other}` (at {l}:{c}) and `{name}` both claim it"),
                            format!(
                                "give `{name}` another host or path, or merge the two services"
                            ),
                        )
                    };
                    self.err(
                        n,
                        format!("route conflict on {host} {}: {same}", r.path),
                        Some(hint),
                    );
                    continue;
                }
                seen.insert(key, (name.to_string(), n.line, n.col));
                kept.push(r);
            }
            if let Some(s) = services.get_mut(*name) {
                s.routes = kept;
            }
        }
        if let (Some(rn), None) = (first_route, gateway) {
            self.err(
                rn,
                "a route needs a gateway to serve it",
                Some("add `gateway: { listen: [\":8000\"] }` at the top of the file".into()),
            );
        }
    }
}
