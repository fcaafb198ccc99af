//! The routing table and its pools: one immutable snapshot, swapped whole
//! when routes or replicas change, so the request path only loads an `Arc`.

use crate::metrics::{Metrics, ReplicaMetrics};
use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Notify;
use tug_spec::{Balance, HashKey, Route};

/// A ready replica as the agent reports it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Endpoint {
    /// The replica's name (`<stack>-<service>-<n>`), stable for its life.
    pub name: String,
    pub addr: SocketAddr,
}

/// One replica behind a route, shared by every snapshot it is part of so
/// its counters survive swaps.
pub struct Upstream {
    pub name: String,
    pub service: String,
    pub addr: SocketAddr,
    /// `127.0.0.1:port`, for request URIs.
    pub(crate) authority: http::uri::Authority,
    pub(crate) in_flight: AtomicU32,
    /// Requests sent to it, for the autoscaler's requests per second.
    pub(crate) requests: AtomicU64,
    /// Connect errors or 5xx in a row.
    failures: AtomicU32,
    /// Ejected until this many milliseconds after `EPOCH` (0: not ejected).
    ejected_until: AtomicU64,
    /// Set while the replica is being retired: no new requests.
    pub(crate) draining: AtomicBool,
    pub(crate) idle: Notify,
    pub(crate) metrics: ReplicaMetrics,
}

impl Upstream {
    pub fn in_flight(&self) -> u32 {
        self.in_flight.load(Ordering::Relaxed)
    }

    pub fn ejected(&self, now: u64) -> bool {
        self.ejected_until.load(Ordering::Relaxed) > now
    }

    pub(crate) fn start(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.metrics.in_flight.inc();
    }

    pub(crate) fn finish(&self) {
        self.metrics.in_flight.dec();
        if self.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.idle.notify_waiters();
        }
    }

    /// A good answer resets the count; a failure may eject the replica.
    pub(crate) fn outcome(&self, failed: bool, tuning: &Tuning) {
        if !failed {
            if self.failures.load(Ordering::Relaxed) != 0 {
                self.failures.store(0, Ordering::Relaxed);
            }
            return;
        }
        let n = self.failures.fetch_add(1, Ordering::AcqRel) + 1;
        if n >= tuning.eject_after {
            self.failures.store(0, Ordering::Relaxed);
            let until = now_ms() + tuning.eject_for.as_millis() as u64;
            self.ejected_until.store(until, Ordering::Relaxed);
            self.metrics.ejections.inc();
            tracing::warn!(replica = %self.name, service = %self.service, failures = n, seconds = tuning.eject_for.as_secs_f64(), "replica ejected");
        }
    }
}

/// Passive health and retry tuning (not in tug.yaml: sound defaults).
#[derive(Clone, Debug)]
pub struct Tuning {
    /// Connect errors or 5xx in a row that eject a replica.
    pub eject_after: u32,
    /// How long an ejected replica stays out.
    pub eject_for: Duration,
    /// Retries allowed beyond the budget's share, so a quiet route can still retry.
    pub retry_reserve: i64,
    /// Percent of requests that may be retries.
    pub retry_percent: i64,
    /// `Retry-After` seconds sent with a 503 for a route without replicas.
    pub retry_after: u32,
    /// Largest request body kept in memory so it can be sent again on a retry.
    pub replay_limit: usize,
    /// Threads serving client connections, each running its connections
    /// and their requests to replicas start to end (no hop between threads
    /// per request). Default: one per CPU.
    pub workers: usize,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            eject_after: 5,
            eject_for: Duration::from_secs(10),
            retry_reserve: 10,
            retry_percent: 20,
            retry_after: 1,
            replay_limit: 64 << 10,
            workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }
}

static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();

pub(crate) fn now_ms() -> u64 {
    EPOCH.get_or_init(Instant::now).elapsed().as_millis() as u64
}

/// The instant `ms` milliseconds after the epoch of [`now_ms`].
pub(crate) fn instant_at(ms: u64) -> Instant {
    *EPOCH.get_or_init(Instant::now) + Duration::from_millis(ms)
}

/// A service's traffic across its routes, kept across snapshots: when it
/// last saw a request, for `idle:`, and the requests the activator holds.
pub(crate) struct Activity {
    /// Milliseconds after the epoch of [`now_ms`] of the last request's
    /// start or end.
    last_ms: AtomicU64,
    /// Requests held while the service wakes.
    pub pending: AtomicU32,
    /// Set once a held request has asked the agent to wake the service;
    /// cleared when a replica is ready or the wait timed out.
    pub waking: AtomicBool,
}

impl Activity {
    fn new() -> Self {
        Activity {
            last_ms: AtomicU64::new(now_ms()),
            pending: AtomicU32::new(0),
            waking: AtomicBool::new(false),
        }
    }

    pub(crate) fn touch(&self) {
        // Written only when the millisecond changed: the worker threads
        // share this line, and a plain read does not take it from the others.
        let now = now_ms();
        if self.last_ms.load(Ordering::Relaxed) != now {
            self.last_ms.store(now, Ordering::Relaxed);
        }
    }

    pub(crate) fn last(&self) -> Instant {
        instant_at(self.last_ms.load(Ordering::Relaxed))
    }
}

/// A retry budget: every request adds a share of a retry, every retry spends one.
pub(crate) struct Budget {
    /// In hundredths of a retry.
    tokens: AtomicI64,
    cap: i64,
    percent: i64,
}

impl Budget {
    fn new(t: &Tuning) -> Self {
        let reserve = t.retry_reserve.max(0) * 100;
        Budget {
            tokens: AtomicI64::new(reserve),
            cap: reserve.max(100),
            percent: t.retry_percent.clamp(0, 100),
        }
    }

    pub(crate) fn deposit(&self) {
        // A full budget (the usual state) is only read, so the worker
        // threads do not take turns owning its cache line.
        if self.tokens.load(Ordering::Relaxed) + self.percent > self.cap {
            return;
        }
        let t = self.tokens.fetch_add(self.percent, Ordering::Relaxed);
        if t + self.percent > self.cap {
            self.tokens.fetch_sub(self.percent, Ordering::Relaxed);
        }
    }

    pub(crate) fn withdraw(&self) -> bool {
        if self.tokens.fetch_sub(100, Ordering::AcqRel) >= 100 {
            true
        } else {
            self.tokens.fetch_add(100, Ordering::Relaxed);
            false
        }
    }
}

/// One route with its replicas.
pub struct RouteEntry {
    pub service: String,
    pub spec: Route,
    /// `host/path`, the metric and log label.
    pub label: String,
    pub upstreams: Vec<Arc<Upstream>>,
    pub(crate) rr: Arc<AtomicUsize>,
    pub(crate) budget: Arc<Budget>,
    /// One keep-alive client per worker thread, so a connection to a
    /// replica is driven by the thread whose requests use it.
    pub(crate) clients: Arc<[crate::proxy::UpstreamClient]>,
    pub(crate) metrics: Arc<crate::metrics::RouteMetrics>,
    pub(crate) activity: Arc<Activity>,
}

/// Per-route state kept across snapshots.
#[derive(Clone)]
pub(crate) struct RouteState {
    rr: Arc<AtomicUsize>,
    budget: Arc<Budget>,
    clients: Arc<[crate::proxy::UpstreamClient]>,
    metrics: Arc<crate::metrics::RouteMetrics>,
}

impl RouteEntry {
    /// Whether a request could be given to a replica now (ejected ones
    /// count: they are tried when all are).
    pub(crate) fn serving(&self) -> bool {
        self.upstreams
            .iter()
            .any(|u| !u.draining.load(Ordering::Relaxed))
    }

    /// Picks a replica not in `tried`, skipping ejected ones unless all are.
    pub(crate) fn pick(&self, key: Option<&[u8]>, tried: &[usize]) -> Option<usize> {
        let now = now_ms();
        let ok = |i: usize, strict: bool| {
            let u = &self.upstreams[i];
            !tried.contains(&i)
                && !u.draining.load(Ordering::Relaxed)
                && (!strict || !u.ejected(now))
        };
        let n = self.upstreams.len();
        for strict in [true, false] {
            let pick = match (&self.spec.balance, key) {
                (Balance::Hash(_), Some(k)) => {
                    // Rendezvous hashing: a key keeps its replica while the
                    // replica stays; removing one moves only its keys.
                    (0..n).filter(|&i| ok(i, strict)).max_by_key(|&i| {
                        let mut h = std::hash::DefaultHasher::new();
                        k.hash(&mut h);
                        self.upstreams[i].name.hash(&mut h);
                        h.finish()
                    })
                }
                (Balance::RoundRobin, _) => {
                    let start = self.rr.fetch_add(1, Ordering::Relaxed);
                    (0..n).map(|o| (start + o) % n).find(|&i| ok(i, strict))
                }
                _ if n == 0 => None,
                _ if n == 1 => Some(0).filter(|&i| ok(i, strict)),
                _ => {
                    let a = fastrand::usize(..n);
                    let b = (a + 1 + fastrand::usize(..n - 1)) % n;
                    match (ok(a, strict), ok(b, strict)) {
                        (true, true) => Some(
                            if self.upstreams[b].in_flight() < self.upstreams[a].in_flight() {
                                b
                            } else {
                                a
                            },
                        ),
                        (true, false) => Some(a),
                        (false, true) => Some(b),
                        (false, false) => (0..n).map(|o| (a + o) % n).find(|&i| ok(i, strict)),
                    }
                }
            };
            if pick.is_some() {
                return pick;
            }
        }
        None
    }

    /// The hash key of a request, for `balance: { hash: ... }`.
    pub(crate) fn key<'a>(
        &self,
        headers: &'a http::HeaderMap,
        client: &'a [u8],
    ) -> Option<&'a [u8]> {
        match &self.spec.balance {
            Balance::Hash(HashKey::Header(h)) => headers.get(h.as_str()).map(|v| v.as_bytes()),
            Balance::Hash(HashKey::Client) => Some(client),
            _ => None,
        }
    }
}

/// Routes by host, then longest path prefix.
#[derive(Default)]
pub struct Table {
    /// Sorted: exact hosts, then wildcards (longest first), then any host;
    /// within a host, longest path first.
    pub routes: Vec<Arc<RouteEntry>>,
}

/// Does `path` start with `prefix` on a segment boundary?
fn under(path: &str, prefix: &str) -> bool {
    prefix == "/"
        || (path.starts_with(prefix)
            && matches!(path.as_bytes().get(prefix.len()), None | Some(b'/')))
}

fn host_matches(pattern: Option<&str>, host: &str) -> bool {
    match pattern {
        None => true,
        Some(p) => match p.strip_prefix("*.") {
            Some(suffix) => {
                host.len() > suffix.len() + 1
                    && host.ends_with(suffix)
                    && host.as_bytes()[host.len() - suffix.len() - 1] == b'.'
            }
            None => p.eq_ignore_ascii_case(host),
        },
    }
}

impl Table {
    /// The route for `host` (without port, lowercase) and `path`.
    pub fn lookup(&self, host: &str, path: &str) -> Option<&Arc<RouteEntry>> {
        self.routes
            .iter()
            .find(|r| host_matches(r.spec.host.as_deref(), host) && under(path, &r.spec.path))
    }
}

fn rank(r: &Route) -> (u8, usize, usize) {
    let host = match r.host.as_deref() {
        None => (2, 0),
        Some(h) if h.starts_with("*.") => (1, usize::MAX - h.len()),
        Some(_) => (0, 0),
    };
    (host.0, host.1, usize::MAX - r.path.len())
}

/// What the table is built from: the stack's routes and the ready replicas.
pub(crate) struct Builder {
    pub routes: Vec<(String, Route)>,
    pub ready: BTreeMap<String, Vec<Endpoint>>,
    /// Replicas by name, kept across snapshots.
    pub known: HashMap<(String, String), Arc<Upstream>>,
    /// Per-route state kept across snapshots, by route label.
    pub state: HashMap<String, RouteState>,
    /// Replicas being retired (name, address): kept in pools, given nothing new.
    pub draining: std::collections::HashSet<(String, SocketAddr)>,
    /// Per-service activity, kept across snapshots.
    pub activity: HashMap<String, Arc<Activity>>,
    /// Connections to replicas, shared by every route's clients.
    pub links: Arc<crate::links::Links>,
}

impl Builder {
    pub(crate) fn build(&mut self, metrics: &Metrics, tuning: &Tuning) -> Table {
        let mut routes = Vec::new();
        let mut keep = HashMap::new();
        for (service, spec) in &self.routes {
            let label = format!("{}{}", spec.host.as_deref().unwrap_or("*"), spec.path);
            let mut upstreams = Vec::new();
            for ep in self.ready.get(service).into_iter().flatten() {
                let key = (label.clone(), ep.name.clone());
                let u = match self.known.get(&key) {
                    Some(u) if u.addr == ep.addr => Arc::clone(u),
                    _ => Arc::new(Upstream {
                        name: ep.name.clone(),
                        service: service.clone(),
                        addr: ep.addr,
                        authority: http::uri::Authority::try_from(ep.addr.to_string())
                            .expect("a socket address is an authority"),
                        in_flight: AtomicU32::new(0),
                        requests: AtomicU64::new(0),
                        failures: AtomicU32::new(0),
                        ejected_until: AtomicU64::new(0),
                        draining: AtomicBool::new(false),
                        idle: Notify::new(),
                        metrics: metrics.replica(service, &label, &ep.name),
                    }),
                };
                if self.draining.contains(&(ep.name.clone(), ep.addr)) {
                    u.draining.store(true, Ordering::Relaxed);
                }
                keep.insert(key, Arc::clone(&u));
                upstreams.push(u);
            }
            let st = self
                .state
                .entry(label.clone())
                .or_insert_with(|| RouteState {
                    rr: Arc::new(AtomicUsize::new(0)),
                    budget: Arc::new(Budget::new(tuning)),
                    clients: (0..tuning.workers.max(1))
                        .map(|_| crate::proxy::upstream_client(spec, &self.links))
                        .collect(),
                    metrics: Arc::new(metrics.route(service, &label)),
                })
                .clone();
            let activity = Arc::clone(
                self.activity
                    .entry(service.clone())
                    .or_insert_with(|| Arc::new(Activity::new())),
            );
            routes.push(Arc::new(RouteEntry {
                activity,
                service: service.clone(),
                spec: spec.clone(),
                label,
                upstreams,
                rr: st.rr,
                budget: st.budget,
                clients: st.clients,
                metrics: st.metrics,
            }));
        }
        routes.sort_by_key(|r| rank(&r.spec));
        self.known = keep;
        Table { routes }
    }
}

/// The client address as hash key bytes (the first `len` of them).
pub(crate) fn ip_bytes(ip: IpAddr) -> ([u8; 16], usize) {
    let mut b = [0u8; 16];
    match ip {
        IpAddr::V4(v) => {
            b[..4].copy_from_slice(&v.octets());
            (b, 4)
        }
        IpAddr::V6(v) => (v.octets(), 16),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_on_segment_boundaries() {
        assert!(under("/api", "/api"));
        assert!(under("/api/x", "/api"));
        assert!(!under("/apix", "/api"));
        assert!(under("/anything", "/"));
    }

    #[test]
    fn wildcard_hosts() {
        assert!(host_matches(Some("*.a.localhost"), "x.a.localhost"));
        assert!(!host_matches(Some("*.a.localhost"), "a.localhost"));
        assert!(!host_matches(Some("*.a.localhost"), "xa.localhost"));
        assert!(host_matches(Some("a.localhost"), "A.localhost"));
        assert!(host_matches(None, "whatever"));
    }

    #[test]
    fn budget_limits_retries() {
        let t = Tuning {
            retry_reserve: 2,
            retry_percent: 50,
            ..Tuning::default()
        };
        let b = Budget::new(&t);
        assert!(b.withdraw());
        assert!(b.withdraw());
        assert!(!b.withdraw(), "the reserve is spent");
        b.deposit();
        assert!(!b.withdraw(), "half a retry is not one");
        b.deposit();
        assert!(b.withdraw());
    }
}
