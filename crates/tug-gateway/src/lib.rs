//! tug's gateway: the reverse proxy and load balancer the agent runs for a
//! stack with `gateway:` in its tug.yaml.
//!
//! ```text
//!  agent (snapshot, events) ──set_ready──► Builder ──► ArcSwap<Table> ◄── request path
//!                           ──drain──────►   (pools, kept replica counters)   (load only)
//! ```
//!
//! - Routing: by host (exact, then `*.suffix`, then any) and longest path
//!   prefix on a segment boundary. A route whose service has no ready replica
//!   answers 503 with `Retry-After`; only a request no route claims gets 404.
//! - Balancing: power of two choices on fewest in-flight requests (default),
//!   round robin, or rendezvous hashing on a header or the client address.
//! - Retries go to another replica: a failed connect always (nothing reached
//!   the replica), 502/503/504 for idempotent methods only, within a budget
//!   (a share of requests plus a small reserve) so retries cannot multiply
//!   an outage. A body is replayable when it is small and sized; a streamed
//!   one is sent once.
//! - Passive health: connect errors or 5xx in a row eject a replica for a
//!   while; when every replica is ejected they are all tried anyway.
//! - Draining: [`Gateway::drain`] stops new requests to a replica and waits
//!   for its in-flight ones, for the engine to call before stopping it.
//! - Scale to zero: a request to a service with `autoscale: { min: 0 }`
//!   and no replica is held by the activator (bounded by `max_pending`, for
//!   at most `wake_timeout`) while the agent starts one ([`Gateway::set_activator`]);
//!   the wait is `tug_cold_start_seconds`. [`Gateway::traffic`] feeds the
//!   autoscaler requests in flight and served per replica, and idleness.
//! - Threads: connections are accepted on the caller's runtime and served
//!   by one single-threaded runtime per CPU ([`Tuning::workers`]), each with
//!   its own upstream keep-alive pools, so a request and its upstream
//!   exchange stay on one thread.
//! - Two HTTP/1.1 paths: the usual exchange (no body or a small sized one,
//!   an `http1` route with a replica) is parsed and relayed by `h1` on the
//!   connection's own task; the rest, and a connection from its first such
//!   request on, is hyper's (`proxy`).
//! - Limits: header read timeout, request head size (431), body size (413),
//!   connection count (a quarter of it per client address); a request carrying both `Content-Length` and
//!   `Transfer-Encoding` gets 400 and its connection is closed.
//!
//! ```no_run
//! # async fn f() -> Result<(), tug_gateway::GatewayError> {
//! let stack = tug_spec::parse_str(
//!     "name: s\ngateway: { listen: [':8000'] }\nservices:\n  web: { image: x, port: 80, route: { path: / } }\n",
//!     "tug.yaml".as_ref(),
//! ).unwrap();
//! let gw = tug_gateway::Gateway::for_stack(&stack).unwrap();
//! let (_stop, stop) = tokio::sync::watch::channel(false);
//! gw.start(stop).await?;
//! gw.set_ready("web", vec![tug_gateway::Endpoint { name: "s-web-1".into(), addr: "127.0.0.1:32768".parse().unwrap() }]);
//! # Ok(()) }
//! ```

mod activate;
mod conn;
mod h1;
mod links;
mod log;
mod metrics;
mod proxy;
mod table;
mod trace;

pub use activate::{Activation, Wake};

/// For the fuzz targets only.
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::h1::fuzz as h1;
}
pub use metrics::Metrics;
pub use proxy::{BoxError, ProxyBody};
pub use table::{Endpoint, Tuning};

use arc_swap::ArcSwap;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tug_spec::{Route, Stack};

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start the gateway's threads: {0}")]
    Threads(#[source] std::io::Error),
}

/// One route as `tug routes` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteView {
    pub service: String,
    /// `None`: any host.
    pub host: Option<String>,
    pub path: String,
    pub strip_prefix: bool,
    pub balance: String,
    pub replicas: Vec<ReplicaView>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaView {
    pub name: String,
    pub address: String,
    /// `ready`, `ejected` or `draining`.
    pub state: String,
    pub in_flight: u32,
}

/// The gateway of one stack.
#[derive(Clone)]
pub struct Gateway {
    shared: Arc<proxy::Shared>,
    /// Only the agent's updates take it; the request path never does.
    builder: Arc<Mutex<table::Builder>>,
    bound: Arc<Mutex<Vec<SocketAddr>>>,
}

impl Gateway {
    /// The stack's gateway, or `None` when it has no `gateway:`.
    pub fn for_stack(stack: &Stack) -> Option<Gateway> {
        let config = stack.gateway.clone()?;
        let routes = stack
            .services
            .iter()
            .flat_map(|(name, s)| s.routes.iter().map(move |r| (name.clone(), r.clone())))
            .collect();
        Some(Gateway::new(config, routes, Tuning::default(), None))
    }

    /// A gateway serving `routes` (service name, route); access log lines go
    /// to `access_log` when given.
    pub fn new(
        config: tug_spec::Gateway,
        routes: Vec<(String, Route)>,
        tuning: Tuning,
        access_log: Option<mpsc::Sender<String>>,
    ) -> Gateway {
        let metrics = Metrics::new();
        let links = Arc::new(links::Links::default());
        let mut builder = table::Builder {
            links: Arc::clone(&links),
            routes,
            ready: BTreeMap::new(),
            known: HashMap::new(),
            state: HashMap::new(),
            draining: HashSet::new(),
            activity: HashMap::new(),
        };
        let table = builder.build(&metrics, &tuning);
        Gateway {
            shared: Arc::new(proxy::Shared {
                table: ArcSwap::from_pointee(table),
                log: log::AccessSink::new(config.access_log, access_log),
                config,
                tuning,
                metrics,
                activator: std::sync::OnceLock::new(),
                changed: watch::channel(()).0,
                links,
                tracer: tug_observe::trace::http_tracer("tug-gateway"),
            }),
            builder: Arc::new(Mutex::new(builder)),
            bound: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// Binds every listen address (all or none), then serves until `stop`
    /// turns true. Returns the bound addresses.
    pub async fn start(
        &self,
        stop: watch::Receiver<bool>,
    ) -> Result<Vec<SocketAddr>, GatewayError> {
        let mut listeners = Vec::new();
        for &addr in &self.shared.config.listen {
            let l = TcpListener::bind(addr)
                .await
                .map_err(|source| GatewayError::Listen { addr, source })?;
            listeners.push(l);
        }
        let workers = proxy::Workers::spawn(&self.shared, &stop).map_err(GatewayError::Threads)?;
        let mut addrs = Vec::new();
        for l in listeners {
            addrs.push(l.local_addr().map_err(|source| GatewayError::Listen {
                addr: self.shared.config.listen[addrs.len()],
                source,
            })?);
            tokio::spawn(proxy::serve(
                Arc::clone(&self.shared),
                l,
                stop.clone(),
                Arc::clone(&workers),
            ));
        }
        tracing::info!(addresses = ?addrs, "gateway listening");
        *self.bound.lock().unwrap_or_else(|e| e.into_inner()) = addrs.clone();
        Ok(addrs)
    }

    /// The addresses served, once started.
    pub fn addresses(&self) -> Vec<SocketAddr> {
        self.bound.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn rebuild(&self, change: impl FnOnce(&mut table::Builder) -> bool) {
        let mut b = self.builder.lock().unwrap_or_else(|e| e.into_inner());
        if change(&mut b) {
            let t = b.build(&self.shared.metrics, &self.shared.tuning);
            self.shared.table.store(Arc::new(t));
            self.shared.changed.send_replace(());
        }
    }

    /// Wakes the services in `services` when a request finds them scaled to
    /// zero: `wake` is called with the service's name (once per wait, not
    /// per request) and should start one replica; held requests go on once
    /// it is in the pool. Set once; later calls are ignored.
    pub fn set_activator(&self, services: HashMap<String, Activation>, wake: Wake) {
        if !services.is_empty() {
            tracing::debug!(services = ?services.keys().collect::<Vec<_>>(), "activator ready");
        }
        let _ = self
            .shared
            .activator
            .set(activate::Activator { services, wake });
    }

    /// The ready replicas of `service` (healthy, running, not retired).
    /// Nothing happens when they are the ones already in the pools.
    pub fn set_ready(&self, service: &str, mut endpoints: Vec<Endpoint>) {
        endpoints.sort();
        let mut gone = Vec::new();
        self.rebuild(|b| {
            if b.ready.get(service) == Some(&endpoints) {
                return false;
            }
            // A replica gone from the engine is no longer being drained.
            let live: HashSet<(String, SocketAddr)> = b
                .ready
                .iter()
                .filter(|(s, _)| s.as_str() != service)
                .flat_map(|(_, e)| e.iter())
                .chain(endpoints.iter())
                .map(|e| (e.name.clone(), e.addr))
                .collect();
            b.draining.retain(|d| live.contains(d));
            let left: HashSet<SocketAddr> = b
                .ready
                .get(service)
                .into_iter()
                .flatten()
                .map(|e| e.addr)
                .filter(|a| !live.iter().any(|(_, l)| l == a))
                .collect();
            gone = b
                .known
                .values()
                .filter(|u| left.contains(&u.addr))
                .cloned()
                .collect();
            b.ready.insert(service.to_string(), endpoints);
            true
        });
        self.close_links(gone);
    }

    /// Closes the connections of replicas that left the pools: idle ones
    /// now, the others once the replica has nothing in flight.
    fn close_links(&self, ups: Vec<Arc<table::Upstream>>) {
        let addrs: HashSet<SocketAddr> = ups.iter().map(|u| u.addr).collect();
        let links: Vec<_> = addrs
            .into_iter()
            .flat_map(|a| self.shared.links.retire(a))
            .collect();
        if links.is_empty() {
            return;
        }
        if ups.iter().all(|u| u.in_flight() == 0) {
            links::close(&links);
        } else if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                settle(&ups, None).await;
                links::close(&links);
            });
        }
    }

    /// Replaces every service's ready replicas at once.
    pub fn set_all_ready(&self, ready: BTreeMap<String, Vec<Endpoint>>) {
        let services: HashSet<String> = {
            let b = self.builder.lock().unwrap_or_else(|e| e.into_inner());
            b.routes.iter().map(|(s, _)| s.clone()).collect()
        };
        for s in services {
            self.set_ready(&s, ready.get(&s).cloned().unwrap_or_default());
        }
    }

    /// Takes the replica `name` out of every pool (no new requests) and
    /// waits until its in-flight requests are done, at most `grace`.
    /// Returns whether they all finished in time.
    pub async fn drain(&self, name: &str, grace: Duration) -> bool {
        let ups: Vec<Arc<table::Upstream>> = {
            let mut b = self.builder.lock().unwrap_or_else(|e| e.into_inner());
            let ups: Vec<_> = b
                .known
                .iter()
                .filter(|((_, n), _)| n == name)
                .map(|(_, u)| Arc::clone(u))
                .collect();
            for u in &ups {
                u.draining.store(true, Ordering::Relaxed);
                b.draining.insert((u.name.clone(), u.addr));
            }
            ups
        };
        if !ups.is_empty() {
            tracing::info!(replica = name, "draining");
        }
        let addrs: HashSet<SocketAddr> = ups.iter().map(|u| u.addr).collect();
        let links: Vec<_> = addrs
            .into_iter()
            .flat_map(|a| self.shared.links.retire(a))
            .collect();
        let deadline = tokio::time::Instant::now() + grace;
        if !settle(&ups, Some(deadline)).await {
            let in_flight: u32 = ups.iter().map(|u| u.in_flight()).sum();
            tracing::warn!(replica = name, in_flight, "drain timed out");
            return false;
        }
        links::close(&links);
        true
    }

    /// Routes and their replicas, for `tug routes`.
    pub fn routes(&self) -> Vec<RouteView> {
        let t = self.shared.table.load();
        let now = table::now_ms();
        t.routes
            .iter()
            .map(|r| RouteView {
                service: r.service.clone(),
                host: r.spec.host.clone(),
                path: r.spec.path.clone(),
                strip_prefix: r.spec.strip_prefix,
                balance: match &r.spec.balance {
                    tug_spec::Balance::P2c => "p2c".into(),
                    tug_spec::Balance::RoundRobin => "round_robin".into(),
                    tug_spec::Balance::Hash(tug_spec::HashKey::Client) => "hash(client)".into(),
                    tug_spec::Balance::Hash(tug_spec::HashKey::Header(h)) => format!("hash({h})"),
                },
                replicas: r
                    .upstreams
                    .iter()
                    .map(|u| ReplicaView {
                        name: u.name.clone(),
                        address: u.addr.to_string(),
                        state: if u.draining.load(Ordering::Relaxed) {
                            "draining"
                        } else if u.ejected(now) {
                            "ejected"
                        } else {
                            "ready"
                        }
                        .into(),
                        in_flight: u.in_flight(),
                    })
                    .collect(),
            })
            .collect()
    }

    /// The traffic of `service` as the autoscaler reads it: requests in
    /// flight and served per replica (summed over its routes), and since
    /// when it has had none. `None` when no route leads to it.
    pub fn traffic(&self, service: &str) -> Option<tug_autoscale::source::Traffic> {
        let t = self.shared.table.load();
        let mut routes = t.routes.iter().filter(|r| r.service == service).peekable();
        let activity = Arc::clone(&routes.peek()?.activity);
        let mut replicas: BTreeMap<&str, tug_autoscale::source::ReplicaTraffic> = BTreeMap::new();
        for u in routes.flat_map(|r| r.upstreams.iter()) {
            let e = replicas.entry(u.name.as_str()).or_insert_with(|| {
                tug_autoscale::source::ReplicaTraffic {
                    replica: u.name.clone(),
                    in_flight: 0,
                    requests: 0,
                }
            });
            e.in_flight += u64::from(u.in_flight());
            e.requests += u.requests.load(Ordering::Relaxed);
        }
        let busy = activity.pending.load(Ordering::Relaxed) > 0
            || replicas.values().any(|r| r.in_flight > 0);
        Some(tug_autoscale::source::Traffic {
            replicas: replicas.into_values().collect(),
            idle_since: (!busy).then(|| activity.last()),
        })
    }

    /// The metrics in the Prometheus text format.
    pub fn metrics(&self) -> String {
        self.shared.metrics.encode()
    }

    /// Registers the gateway's metric families into the agent's registry.
    pub fn register_metrics(&self, registry: &mut prometheus_client::registry::Registry) {
        self.shared.metrics.register(registry);
    }
}

/// Waits until none of `ups` has a request in flight, until `deadline` at
/// most. Returns whether they all finished.
async fn settle(ups: &[Arc<table::Upstream>], deadline: Option<tokio::time::Instant>) -> bool {
    for u in ups {
        loop {
            let idle = u.idle.notified();
            tokio::pin!(idle);
            idle.as_mut().enable();
            if u.in_flight() == 0 {
                break;
            }
            match deadline {
                Some(d) => {
                    if tokio::time::timeout_at(d, idle).await.is_err() {
                        return false;
                    }
                }
                None => idle.await,
            }
        }
    }
    true
}

impl tug_autoscale::source::RequestSource for Gateway {
    fn traffic(&self, service: &str) -> Option<tug_autoscale::source::Traffic> {
        Gateway::traffic(self, service)
    }
}
