//! The agent process: supervision driven by the engine's events, the event
//! bus and its subscribers (store writer, live snapshot), and the API server.
//!
//! ```text
//!  engine events ──► supervision task ──publish──► Bus ──► store writer ──► SSE
//!  (+ probes, slow      │  (restart, replace;            └──► snapshot task
//!   resync)             │   converge in its own task)              │
//!                       └──────────── replicas ───────► ArcSwap<Ps> ◄── GET /v1/ps
//! ```
//!
//! Nothing on a request path waits for a converge: `ps` and `history` load
//! the snapshot; the supervision task never holds a lock across a converge,
//! which runs in its own task while restarts and probes go on.

use crate::api::{self, ErrorBody, Page, Ps};
use arc_swap::ArcSwap;
use axum::extract::rejection::QueryRejection;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::UnixListener;
use tokio::sync::{broadcast, watch};
use tug_engine::agent::{SeenHealth, Supervisor};
use tug_engine::bus::{Bus, Received};
use tug_engine::ops::{self, ApplyLock, OpsError};
use tug_engine::store::{Recorded, Store, Writer};
use tug_engine::{Event, UpOptions};
use tug_runtime::{
    labels, ContainerChange, ContainerInfo, ContainerState, EngineHealth, Runtime, RuntimeEvent,
};
use tug_spec::Stack;

pub mod autoscale;
pub mod dashboard;
mod metrics;
mod triggers;

/// The safety net for lost engine events: a full look this often.
pub const RESYNC: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("an agent for stack {stack} is already running (pid {pid}, socket {socket})")]
    AlreadyRunning {
        stack: String,
        pid: String,
        socket: PathBuf,
    },
    #[error("agent socket {path}: {source}")]
    Socket {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("gateway: {0}")]
    Gateway(#[from] tug_gateway::GatewayError),
    #[error("the agent's HTTP listener cannot bind {addr}: {source}{hint}")]
    Http {
        addr: std::net::SocketAddr,
        source: std::io::Error,
        hint: &'static str,
    },
    #[error("the API token in {path}: {source}")]
    Token {
        path: PathBuf,
        source: std::io::Error,
    },
}

struct Agent<R> {
    rt: R,
    stack: Stack,
    opts: UpOptions,
    shutdown: watch::Sender<bool>,
    socket: PathBuf,
    log: PathBuf,
    /// The URL of the HTTP listener (dashboard, API, metrics).
    http: String,
    bus: Bus,
    recorded: broadcast::Sender<Arc<Recorded>>,
    snapshot: ArcSwap<Ps>,
    /// True once supervision has looked at the stack (and probed it) once.
    ready: watch::Sender<bool>,
    /// Asks supervision to look at the replicas again now (answered when done).
    refresh: tokio::sync::mpsc::Sender<tokio::sync::oneshot::Sender<()>>,
    /// The stack's gateway, fed the ready replicas by supervision.
    gateway: Option<tug_gateway::Gateway>,
    /// Forwards replica logs over OTLP, when configured.
    logs_out: Option<crate::logfwd::LogFollow>,
    /// The agent's one metrics registry (the gateway's families included).
    metrics: tug_observe::metrics::Metrics,
    /// The sampler's last reading of the replicas' resources, for the
    /// dashboard (the metrics get the same reading).
    stats: ArcSwap<api::Stats>,
    /// Converges of `POST /v1/up` in progress, stopped (and recorded as
    /// interrupted) when the agent shuts down.
    ups: std::sync::Mutex<Vec<tokio::task::AbortHandle>>,
    /// The dashboard's findings, for the revision they were computed for.
    findings: tokio::sync::Mutex<Option<api::Findings>>,
}

type Shared<R> = Arc<Agent<R>>;

fn reply<T: serde::Serialize>(v: T) -> Response {
    (StatusCode::OK, Json(v)).into_response()
}

fn invalid(message: impl Into<String>) -> Response {
    failure(StatusCode::BAD_REQUEST, message.into(), true)
}

fn failure(status: StatusCode, error: String, invalid: bool) -> Response {
    (status, Json(ErrorBody { error, invalid })).into_response()
}

fn error(e: OpsError) -> Response {
    match e {
        OpsError::Invalid(m) => invalid(m),
        e => failure(StatusCode::INTERNAL_SERVER_ERROR, e.to_string(), false),
    }
}

/// A handler's JSON request body (an empty one reads as `{}`); a 400 that
/// says what is wrong with it otherwise.
struct Body<T>(T);

impl<S: Send + Sync, T: DeserializeOwned> axum::extract::FromRequest<S> for Body<T> {
    type Rejection = Response;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Response> {
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let bytes = if bytes.iter().all(u8::is_ascii_whitespace) {
            b"{}".as_slice()
        } else {
            &bytes
        };
        serde_json::from_slice(bytes)
            .map(Body)
            .map_err(|e| invalid(format!("bad request body: {e}")))
    }
}

fn query<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, String> {
    q.map(|Query(t)| t)
        .map_err(|e| format!("bad query: {}", e.body_text()))
}

/// Is an agent answering on `socket`?
pub async fn answering(socket: &Path) -> bool {
    crate::client::Client::at(socket).info().await.is_ok()
}

/// Runs the agent for `stack` until SIGTERM, SIGINT or `POST /v1/down`.
/// `stack` is the file's stack; the desired state comes from the history.
pub async fn run<R: Runtime + Clone + 'static>(rt: R, stack: Stack) -> Result<(), AgentError> {
    let signals = async {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {},
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {},
        }
    };
    run_until(rt, stack, signals).await
}

/// Creates `dir` reachable by its owner only, whatever the umask.
fn private_dir(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::create_dir_all(dir);
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
}

fn private_file(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
}

/// Like [`run`], stopping when `shutdown` completes (or on `POST /v1/down`).
pub async fn run_until<R: Runtime + Clone + 'static>(
    rt: R,
    stack: Stack,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), AgentError> {
    let (socket, pidfile, log) = ops::agent_paths(&stack.name);
    if let Some(dir) = socket.parent() {
        private_dir(dir);
    }
    if answering(&socket).await {
        let pid = std::fs::read_to_string(&pidfile)
            .unwrap_or_else(|_| "?".into())
            .trim()
            .to_string();
        return Err(AgentError::AlreadyRunning {
            stack: stack.name.clone(),
            pid,
            socket,
        });
    }
    let (http, token) = bind_http(&stack, &socket).await?;
    let http_addr = http.local_addr().map_err(|source| AgentError::Http {
        addr: http_listen(&stack),
        source,
        hint: "",
    })?;
    // Left by an agent that died: nobody answers on it.
    let _ = std::fs::remove_file(&socket);
    let listener = UnixListener::bind(&socket).map_err(|source| AgentError::Socket {
        path: socket.clone(),
        source,
    })?;
    private_file(&socket);
    let _ = std::fs::write(&pidfile, format!("{}\n", std::process::id()));
    private_file(&pidfile);

    let bus = Bus::new();
    let store = {
        let name = stack.name.clone();
        tokio::task::spawn_blocking(move || ops::open_store(&name))
            .await
            .ok()
    };
    let store = match store {
        Some((Some(s), warning)) => {
            if let Some(w) = warning {
                tracing::warn!("{w}");
            }
            private_file(s.path());
            Some(s)
        }
        Some((None, warning)) => {
            tracing::warn!("{}", warning.unwrap_or_default());
            None
        }
        None => None,
    };
    let writer = store
        .or_else(|| Store::in_memory().ok())
        .map(|s| Writer::spawn(s, &bus));
    let recorded = match &writer {
        Some(w) => w.announcer(),
        None => broadcast::channel(1).0,
    };
    let (down_tx, mut stopped) = watch::channel(false);
    let (gateway, gateway_urls) = match start_gateway(&stack, stopped.clone()).await? {
        Some((g, urls)) => (Some(g), urls),
        None => (None, Vec::new()),
    };
    let (refresh, refreshes) = tokio::sync::mpsc::channel(16);
    let opts = UpOptions {
        drain: match &gateway {
            Some(gw) => Arc::new(GatewayDrain {
                gateway: gw.clone(),
                graces: stack
                    .services
                    .iter()
                    .map(|(n, s)| (n.clone(), s.stop_grace_period.std()))
                    .collect(),
            }),
            None => UpOptions::default().drain,
        },
        ..UpOptions::default()
    };
    let engine = rt.engine();
    let mut registry = tug_observe::metrics::Metrics::new(&stack.name);
    if let Some(gw) = &gateway {
        gw.register_metrics(registry.registry_mut());
    }
    let agent = Arc::new(Agent {
        metrics: registry,
        stats: Default::default(),
        refresh,
        ups: Default::default(),
        findings: Default::default(),
        rt,
        snapshot: ArcSwap::from_pointee(Ps {
            stack: stack.name.clone(),
            gateway: gateway_urls,
            engine: engine.to_string(),
            ..Ps::default()
        }),
        gateway,
        logs_out: tug_observe::otlp_logs::forwarder().map(crate::logfwd::LogFollow::new),
        ready: watch::channel(false).0,
        stack,
        opts,
        shutdown: down_tx,
        socket: socket.clone(),
        log,
        http: format!("http://{http_addr}"),
        bus,
        recorded,
    });
    tracing::info!(stack = %agent.stack.name, socket = %socket.display(), http = %agent.http, pid = std::process::id(), "agent started");

    refresh_history(&agent).await;
    let watcher = tokio::spawn(watch_bus(Arc::clone(&agent)));
    let supervisor = tokio::spawn(supervise(Arc::clone(&agent), refreshes));
    // The gateway counts requests for the autoscaler, and its activator
    // asks for a replica of a service scaled to zero.
    let requests = agent
        .gateway
        .clone()
        .map(|g| Arc::new(g) as Arc<dyn tug_autoscale::source::RequestSource>);
    let waker = agent.gateway.as_ref().map(|gw| {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<String>();
        gw.set_activator(
            tug_gateway::Activation::for_stack(&agent.stack),
            Box::new(move |service: &str| {
                let _ = tx.send(service.to_string());
            }),
        );
        tokio::spawn(autoscale::wakes(Arc::clone(&agent), rx))
    });
    let feeder = tokio::spawn(metrics::feed(Arc::clone(&agent)));
    let sampler = tokio::spawn(metrics::sample(Arc::clone(&agent), metrics::interval()));
    let autoscaler = tokio::spawn(autoscale::run(
        Arc::clone(&agent),
        requests,
        autoscale::interval(),
    ));
    let scheduler = tokio::spawn(triggers::schedules(Arc::clone(&agent)));
    let app = Router::new()
        .route("/v1/agent", get(info::<R>))
        .route("/v1/ps", get(ps::<R>))
        .route("/v1/history", get(history::<R>))
        .route("/v1/events", get(events::<R>))
        .route("/v1/logs", get(logs::<R>))
        .route("/v1/events/stream", get(event_stream::<R>))
        .route(
            "/v1/up",
            post(up::<R>).layer(DefaultBodyLimit::max(api::MAX_UP_BODY)),
        )
        .route("/v1/scale", post(scale::<R>))
        .route("/v1/restart", post(restart::<R>))
        .route("/v1/rollback", post(rollback::<R>))
        .route("/v1/down", post(down::<R>))
        .route("/v1/resync", post(resync::<R>))
        .route("/v1/openapi.json", get(openapi))
        .route("/v1/routes", get(routes::<R>))
        .route("/metrics", get(serve_metrics::<R>))
        .merge(dashboard::router::<R>())
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(api::MAX_BODY))
        .layer(axum::middleware::from_fn(traced))
        .with_state(Arc::clone(&agent));
    // Webhooks prove themselves with their signature, not the API token.
    let hooks = Router::new()
        .route("/v1/hooks/{pipeline}", post(triggers::hook::<R>))
        .layer(DefaultBodyLimit::max(api::MAX_UP_BODY))
        .with_state(Arc::clone(&agent));
    // Beyond loopback every request shows the token; over TCP every
    // state-changing request passes the CSRF guard (webhooks excepted: they
    // come from other sites, signed).
    let token = token.map(Arc::<str>::from);
    let guard = dashboard::Guard {
        loopback: token.is_none(),
    };
    let http_app = app.clone().merge(dashboard::login(token.clone()));
    let http_app = match token {
        Some(t) => http_app.layer(axum::middleware::from_fn_with_state(
            t,
            crate::auth::require,
        )),
        None => http_app,
    }
    .layer(axum::middleware::from_fn_with_state(
        guard,
        dashboard::guard,
    ))
    .merge(hooks.clone());
    let app = app.merge(hooks);
    let stopping = Arc::clone(&agent);
    let (closing, closed) = watch::channel(false);
    tokio::spawn(async move {
        tokio::select! {
            _ = shutdown => {},
            _ = stopped.wait_for(|s| *s) => {},
        }
        stop_ups(&stopping);
        let _ = closing.send(true);
    });
    let wait = |mut c: watch::Receiver<bool>| async move {
        let _ = c.wait_for(|s| *s).await;
    };
    let (served, _) = tokio::join!(
        axum::serve(listener, app.into_make_service()).with_graceful_shutdown(wait(closed.clone())),
        axum::serve(
            http,
            http_app.into_make_service_with_connect_info::<std::net::SocketAddr>()
        )
        .with_graceful_shutdown(wait(closed)),
    );
    supervisor.abort();
    watcher.abort();
    feeder.abort();
    sampler.abort();
    let _ = feeder.await;
    let _ = sampler.await;
    autoscaler.abort();
    scheduler.abort();
    let _ = autoscaler.await;
    if let Some(w) = waker {
        w.abort();
        let _ = w.await;
    }
    let _ = supervisor.await;
    let _ = watcher.await;
    let _ = std::fs::remove_file(&socket);
    let _ = std::fs::remove_file(&pidfile);
    tracing::info!(stack = %agent.stack.name, "agent stopped");
    // Every bus clone lives in the agent: once it is gone the writer drains.
    drop(agent);
    if let Some(w) = writer {
        // Bounded: a task still holding the bus must not keep the agent
        // alive after it said it stopped.
        let (done, drained) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            w.finish();
            let _ = done.send(());
        });
        if tokio::time::timeout(Duration::from_secs(5), drained)
            .await
            .is_err()
        {
            tracing::warn!("the event store writer did not drain in 5 s");
        }
    }
    served.map_err(|source| AgentError::Socket {
        path: socket,
        source,
    })
}

/// Where the agent serves HTTP: `dashboard.listen`, else loopback on a port
/// chosen now.
fn http_listen(stack: &Stack) -> std::net::SocketAddr {
    stack
        .dashboard
        .as_ref()
        .map(|d| d.listen)
        .unwrap_or_else(|| (std::net::Ipv4Addr::LOCALHOST, 0).into())
}

/// Binds the agent's HTTP listener; the token it requires when it listens
/// beyond loopback.
async fn bind_http(
    stack: &Stack,
    socket: &Path,
) -> Result<(tokio::net::TcpListener, Option<String>), AgentError> {
    let addr = http_listen(stack);
    let token = if addr.ip().is_loopback() {
        None
    } else {
        let dir = socket.parent().unwrap_or(Path::new("."));
        Some(crate::auth::token(dir).map_err(|source| AgentError::Token {
            path: dir.join("token"),
            source,
        })?)
    };
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| AgentError::Http {
            addr,
            hint: match source.kind() {
                std::io::ErrorKind::AddrInUse => {
                    " (the address is in use: change `dashboard.listen` in tug.yaml)"
                }
                std::io::ErrorKind::AddrNotAvailable => {
                    " (no interface has this address: change `dashboard.listen` in tug.yaml)"
                }
                _ => "",
            },
            source,
        })?;
    Ok((listener, token))
}

/// Starts the stack's gateway when it has one; its URLs. Its listeners
/// close when `stopped` turns true.
async fn start_gateway(
    stack: &Stack,
    stopped: watch::Receiver<bool>,
) -> Result<Option<(tug_gateway::Gateway, Vec<String>)>, AgentError> {
    let Some(config) = &stack.gateway else {
        return Ok(None);
    };
    let routes = stack
        .services
        .iter()
        .flat_map(|(name, s)| s.routes.iter().map(move |r| (name.clone(), r.clone())))
        .collect();
    let (_, _, log) = ops::agent_paths(&stack.name);
    let access = (config.access_log != tug_spec::AccessLog::Off)
        .then(|| access_log_writer(log.with_file_name("access.log")));
    let gw = tug_gateway::Gateway::new(
        config.clone(),
        routes,
        tug_gateway::Tuning::default(),
        access,
    );
    let addrs = gw.start(stopped).await?;
    let urls = addrs.iter().map(|a| format!("http://{a}")).collect();
    Ok(Some((gw, urls)))
}

/// A task appending access log lines to `path`, off the request path.
fn access_log_writer(path: PathBuf) -> tokio::sync::mpsc::Sender<String> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<String>(4096);
    tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        let file = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&path)
            .await;
        let mut file = match file {
            Ok(f) => tokio::io::BufWriter::new(f),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot open the access log");
                return;
            }
        };
        while let Some(line) = rx.recv().await {
            let _ = file.write_all(line.as_bytes()).await;
            let _ = file.write_all(b"\n").await;
            // Write out a burst at once, then flush when it is over.
            if rx.is_empty() {
                let _ = file.flush().await;
            }
        }
        let _ = file.flush().await;
    });
    tx
}

/// Apply's drain hook: the replica leaves the gateway's pools, and apply
/// stops it once its in-flight requests are done (at most the service's
/// `stop_grace_period`).
struct GatewayDrain {
    gateway: tug_gateway::Gateway,
    graces: std::collections::BTreeMap<String, Duration>,
}

impl tug_engine::Drain for GatewayDrain {
    fn retire<'a>(
        &'a self,
        service: &'a str,
        _replica: u32,
        name: &'a str,
    ) -> futures_util::future::BoxFuture<'a, ()> {
        Box::pin(async move {
            let grace = self
                .graces
                .get(service)
                .copied()
                .unwrap_or(Duration::from_secs(10));
            if !self.gateway.drain(name, grace).await {
                tracing::warn!(replica = %name, "requests still in flight after the grace period; stopping anyway");
            }
        })
    }
}

/// The ready replicas of each service: running, healthy (or without a
/// check), reachable on the host.
fn ready_endpoints(
    rows: &[api::Replica],
) -> std::collections::BTreeMap<String, Vec<tug_gateway::Endpoint>> {
    let mut out: std::collections::BTreeMap<String, Vec<tug_gateway::Endpoint>> =
        Default::default();
    for r in rows {
        let ready = r.state == "running" && (r.health == "healthy" || r.health == "-");
        let addr = r.endpoint.as_deref().and_then(|e| e.parse().ok());
        if let (true, Some(addr)) = (ready, addr) {
            out.entry(r.service.clone())
                .or_default()
                .push(tug_gateway::Endpoint {
                    name: r.name.clone(),
                    addr,
                });
        }
    }
    out
}

/// The desired stack: the newest requested revision (see
/// [`Store::last_requested`]), pinned to its images.
async fn desired<R: Runtime>(agent: &Agent<R>) -> Option<(i64, Stack)> {
    desired_revision(agent).await.map(|(id, _, s)| (id, s))
}

/// [`desired`] with the revision's outcome: an interrupted one is carried on.
async fn desired_revision<R: Runtime>(
    agent: &Agent<R>,
) -> Option<(i64, tug_engine::store::Outcome, Stack)> {
    let (name, dir, file) = (
        agent.stack.name.clone(),
        agent.stack.dir.clone(),
        agent.stack.file.clone(),
    );
    tokio::task::spawn_blocking(move || {
        let (store, _) = ops::open_store(&name);
        let rev = store?.last_requested().ok()??;
        Some((rev.id, rev.outcome, rev.pinned_stack(&dir, &file).ok()?))
    })
    .await
    .ok()
    .flatten()
}

/// Puts the revision the agent holds the stack to in the snapshot.
async fn refresh_history<R: Runtime>(agent: &Agent<R>) {
    let name = agent.stack.name.clone();
    let good = tokio::task::spawn_blocking(move || {
        ops::open_store(&name)
            .0
            .and_then(|s| s.last_requested().ok().flatten())
            .map(|r| r.id)
    })
    .await
    .ok()
    .flatten();
    agent.snapshot.rcu(|s| Ps {
        revision: good,
        ..(**s).clone()
    });
}

/// What a service is doing, from one of its events, for the snapshot.
fn doing(e: &Event) -> Option<String> {
    Some(match e {
        Event::Image { message, .. } => message.clone(),
        Event::ImageReady { image, .. } => format!("image {image}"),
        Event::Removing { container, .. } => format!("removing {container}"),
        Event::Waiting { on, condition, .. } => format!("waiting for {on} to be {condition}"),
        Event::Creating { replica, .. } => format!("creating replica {replica}"),
        Event::Started { replica, .. } => format!("started replica {replica}, checking health"),
        Event::Healthy { replica, .. } => format!("replica {replica} healthy"),
        Event::ServiceReady { state, .. } => state.clone(),
        Event::ServiceFailed { reason, .. } => format!("failed: {reason}"),
        Event::RollingBack { reason, .. } => format!("rolling back: {reason}"),
        _ => return None,
    })
}

/// The snapshot's subscriber: what a converge is doing, and the history
/// once it is over.
async fn watch_bus<R: Runtime>(agent: Shared<R>) {
    let mut sub = agent.bus.subscribe();
    while let Some(r) = sub.recv().await {
        let p = match r {
            Received::Event(p) => p,
            Received::Missed(n) => {
                tracing::warn!(missed = n, "the snapshot fell behind the event bus");
                continue;
            }
        };
        match &p.event {
            Event::Converging { .. } => {
                agent.snapshot.rcu(|s| Ps {
                    converge: Some(api::Converge {
                        since: p.time,
                        services: Default::default(),
                    }),
                    ..(**s).clone()
                });
            }
            Event::Converged { .. } => {
                agent.snapshot.rcu(|s| Ps {
                    converge: None,
                    ..(**s).clone()
                });
                refresh_history(&agent).await;
            }
            e => {
                if let (Some(service), Some(what)) = (e.service(), doing(e)) {
                    agent.snapshot.rcu(|s| {
                        let mut s = (**s).clone();
                        if let Some(c) = s.converge.as_mut() {
                            c.services.insert(service.to_string(), what.clone());
                        }
                        s
                    });
                }
            }
        }
    }
}

fn replica_row(c: &ContainerInfo, sup: &Supervisor) -> api::Replica {
    let health = match (c.state, sup.health(&c.name)) {
        (s, _) if s != ContainerState::Running => "-",
        (_, Some(SeenHealth::Healthy)) => "healthy",
        (_, Some(SeenHealth::Unhealthy)) => "unhealthy",
        (_, Some(_)) => "starting",
        (_, None) => match c.health {
            EngineHealth::None => "-",
            EngineHealth::Starting => "starting",
            EngineHealth::Healthy => "healthy",
            EngineHealth::Unhealthy => "unhealthy",
        },
    };
    api::Replica {
        service: c.label(labels::SERVICE).unwrap_or("").to_string(),
        replica: tug_engine::agent::replica_of(c).ok(),
        name: c.name.clone(),
        id: c.id.chars().take(12).collect(),
        state: match c.state {
            ContainerState::Exited => format!("exited ({})", c.exit_code.unwrap_or(-1)),
            s => s.to_string(),
        },
        health: health.to_string(),
        endpoint: c
            .host_port
            .filter(|_| c.state == ContainerState::Running)
            .map(|p| format!("127.0.0.1:{p}")),
        created: c.created,
        image: c.image.clone(),
        note: sup.note(&c.name),
    }
}

/// The services of `desired` scaled to zero, with no replica running in `rows`.
fn idle_services(
    desired: Option<&Stack>,
    rows: &[api::Replica],
) -> std::collections::BTreeMap<String, api::ServiceState> {
    desired
        .into_iter()
        .flat_map(|s| &s.services)
        .filter(|(_, s)| s.replicas == 0 && s.autoscale.as_ref().is_some_and(|a| a.min == 0))
        // Its stopped replica, kept for the next wake, does not count.
        .filter(|(name, _)| {
            !rows
                .iter()
                .any(|r| &r.service == *name && r.state == "running")
        })
        .map(|(name, _)| (name.clone(), api::ServiceState::Idle))
        .collect()
}

/// Publishes the replicas as supervision knows them, and the services idle
/// at zero in `desired`.
fn publish_replicas<R: Runtime + Clone + 'static>(
    agent: &Agent<R>,
    sup: &Supervisor,
    known: &std::collections::BTreeMap<String, ContainerInfo>,
    desired: Option<&Stack>,
) {
    let mut rows: Vec<api::Replica> = known.values().map(|c| replica_row(c, sup)).collect();
    rows.sort_by(|a, b| (&a.service, a.replica, &a.name).cmp(&(&b.service, b.replica, &b.name)));
    let services = idle_services(desired, &rows);
    if let Some(gw) = &agent.gateway {
        gw.set_all_ready(ready_endpoints(&rows));
    }
    if let Some(l) = &agent.logs_out {
        l.sync(&agent.rt, &rows);
    }
    agent.snapshot.rcu(|s| Ps {
        replicas: rows.clone(),
        services: services.clone(),
        ..(**s).clone()
    });
}

/// Asks supervision to read the replicas from the engine now, and waits
/// (at most a few seconds) until the snapshot has them: an API call that
/// changed them answers after its changes show in `ps`.
async fn refresh<R: Runtime>(agent: &Agent<R>) {
    let (tx, rx) = tokio::sync::oneshot::channel();
    if agent.refresh.send(tx).await.is_ok() {
        let _ = tokio::time::timeout(Duration::from_secs(5), rx).await;
    }
}

/// The supervision task: reacts to the engine's events at once, runs
/// probes and restarts when they are due, and looks at everything every
/// [`RESYNC`] (and after reconnecting to the engine) in case an event was lost.
async fn supervise<R: Runtime + Clone + 'static>(
    agent: Shared<R>,
    mut refreshes: tokio::sync::mpsc::Receiver<tokio::sync::oneshot::Sender<()>>,
) {
    let mut sup = Supervisor::new();
    let mut engine = agent
        .rt
        .events(&tug_runtime::stack_filter(&agent.stack.name));
    let mut resync = tokio::time::interval_at(tokio::time::Instant::now() + RESYNC, RESYNC);
    resync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut converging: Option<(tokio::task::JoinHandle<()>, Arc<ApplyLock>)> = None;
    // The replicas as last seen: a full look, then engine events on top.
    let mut known: std::collections::BTreeMap<String, ContainerInfo> = Default::default();
    // Containers whose `oom` event came (Docker sends it before `die`).
    let mut oom_seen: std::collections::HashSet<String> = Default::default();
    let mut tend_now = true;
    // The desired stack of the last look, for replicas events report.
    let mut desired_stack: Option<Stack> = None;
    let mut retry_at: Option<Instant> = None;
    // Refreshes asked for (an API call changed the replicas): answered after
    // a full look and a probe of new replicas, so the `ps` that follows has
    // their health.
    let mut waiting: Vec<tokio::sync::oneshot::Sender<()>> = Vec::new();
    // A converge's health gate passing a replica: the gateway gets it at
    // once (a woken service's held requests go on) instead of after a probe
    // of its own here.
    let mut gates = agent.bus.subscribe();
    agent.snapshot.rcu(|s| Ps {
        engine_connected: true,
        ..(**s).clone()
    });
    loop {
        if converging.as_ref().is_some_and(|(t, _)| t.is_finished()) {
            converging = None;
            tend_now = true;
        }
        if tend_now {
            tend_now = false;
            match tend(&agent, &mut sup, &mut converging).await {
                Ok(stack) => {
                    desired_stack = Some(stack);
                    retry_at = None;
                    known = sup
                        .observed()
                        .iter()
                        .map(|c| (c.id.clone(), c.clone()))
                        .collect();
                }
                Err(why) => {
                    tracing::debug!(%why, "supervision deferred");
                    retry_at = Some(Instant::now() + Duration::from_secs(1));
                }
            }
            if !*agent.ready.borrow() || !waiting.is_empty() {
                // The first look: probe at once, so the first `ps` has health.
                sup.probe(&agent.rt, Instant::now()).await;
                agent.ready.send_replace(true);
            }
            publish_replicas(&agent, &sup, &known, desired_stack.as_ref());
            metrics::probed(&agent, sup.take_probes());
            for done in waiting.drain(..) {
                let _ = done.send(());
            }
        }
        let due = [sup.next_due(), retry_at].into_iter().flatten().min();
        let wake = async {
            match due {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        let converge_done = async {
            match converging.as_mut() {
                Some((t, _)) => {
                    let _ = t.await;
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            e = engine.next() => match e {
                Some(RuntimeEvent::Container(e)) => {
                    let inspected = match e.change {
                        ContainerChange::OomKilled => {
                            oom_seen.insert(e.id.clone());
                            None
                        }
                        ContainerChange::Destroyed => None,
                        _ => agent.rt.inspect_container(&e.id).await.ok().flatten(),
                    };
                    // Docker 20.10 on cgroup v1 now and then drops the `oom`
                    // event; a 137 death its inspect calls an OOM kill is one.
                    if matches!(e.change, ContainerChange::Died { exit_code: Some(137) })
                        && !oom_seen.remove(&e.id)
                        && inspected.as_ref().is_some_and(|i| i.oom_killed)
                    {
                        tracing::debug!(container = %e.name, "OOM kill found by inspect");
                        agent.bus.publish(None, Event::Replica {
                            service: e.label(labels::SERVICE).unwrap_or("").to_string(),
                            replica: e.label(labels::REPLICA).and_then(|r| r.parse().ok()),
                            container: e.name.clone(),
                            change: ContainerChange::OomKilled,
                        });
                    }
                    let react = matches!(
                        e.change,
                        ContainerChange::Died { .. }
                            | ContainerChange::Destroyed
                            | ContainerChange::Health { health: EngineHealth::Unhealthy }
                    );
                    if !matches!(e.change, ContainerChange::Started) {
                        agent.bus.publish(None, Event::Replica {
                            service: e.label(labels::SERVICE).unwrap_or("").to_string(),
                            replica: e.label(labels::REPLICA).and_then(|r| r.parse().ok()),
                            container: e.name.clone(),
                            change: e.change.clone(),
                        });
                    }
                    tracing::debug!(container = %e.name, change = ?e.change, "engine event");
                    if react {
                        tend_now = true;
                    }
                    if e.change == ContainerChange::Destroyed {
                        known.remove(&e.id);
                        oom_seen.remove(&e.id);
                    } else if let Some(info) = match inspected {
                        Some(i) => Some(i),
                        None => agent.rt.inspect_container(&e.id).await.ok().flatten(),
                    } {
                        if let Some(stack) = &desired_stack {
                            // What a converge said of it so far counts first.
                            take_gates(&mut sup, &mut gates);
                            sup.track(&info, stack);
                        }
                        known.insert(info.id.clone(), info);
                    }
                    publish_replicas(&agent, &sup, &known, desired_stack.as_ref());
                }
                Some(RuntimeEvent::Lost { reason }) => {
                    agent.snapshot.rcu(|s| Ps { engine_connected: false, ..(**s).clone() });
                    agent.bus.publish(None, Event::EngineLost { reason });
                }
                Some(RuntimeEvent::Resumed) => {
                    agent.snapshot.rcu(|s| Ps { engine_connected: true, ..(**s).clone() });
                    agent.bus.publish(None, Event::EngineResumed);
                    tend_now = true;
                }
                // The engine answered throughout: a quiet look, no event.
                Some(RuntimeEvent::Reopened) => tend_now = true,
                None => {
                    tracing::warn!("the engine's event stream ended; resyncing every {RESYNC:?}");
                    engine = futures_util::stream::pending().boxed();
                }
            },
            _ = wake => {
                let now = Instant::now();
                let crossed = sup.probe(&agent.rt, now).await;
                if crossed || sup.restart_due(now) || retry_at.is_some_and(|t| now >= t) {
                    tend_now = true;
                }
                publish_replicas(&agent, &sup, &known, desired_stack.as_ref());
                metrics::probed(&agent, sup.take_probes());
            }
            Some(Received::Event(p)) = gates.recv() => {
                if gate_passed(&mut sup, &p.event) {
                    publish_replicas(&agent, &sup, &known, desired_stack.as_ref());
                }
            }
            _ = resync.tick() => tend_now = true,
            Some(done) = refreshes.recv() => {
                // A full look at once: the desired revision may have changed.
                // The gates passed so far count first, so the look does not
                // probe again replicas a converge has just seen healthy.
                take_gates(&mut sup, &mut gates);
                waiting.push(done);
                tend_now = true;
            }
            _ = converge_done => {}
        }
    }
}

/// A converge's health gate passed a replica: supervision takes it as
/// healthy rather than probing it again. Whether its health changed. A
/// replica a converge started is left to its gate for a while.
fn gate_passed(sup: &mut Supervisor, e: &Event) -> bool {
    match e {
        Event::Healthy { container, .. } => sup.passed(container, Instant::now()),
        Event::Started { container, .. } => {
            sup.gating(container);
            false
        }
        _ => false,
    }
}

/// Takes what converges' gates said so far, without waiting.
fn take_gates(sup: &mut Supervisor, gates: &mut tug_engine::bus::Subscriber) {
    while let Some(r) = gates.try_recv() {
        if let Received::Event(p) = r {
            gate_passed(sup, &p.event);
        }
    }
}

/// One look at the stack under the apply lock: restarts and replacements
/// now; a converge, when one is due, in a task of its own.
async fn tend<R: Runtime + Clone + 'static>(
    agent: &Shared<R>,
    sup: &mut Supervisor,
    converging: &mut Option<(tokio::task::JoinHandle<()>, Arc<ApplyLock>)>,
) -> Result<Stack, String> {
    if *agent.shutdown.borrow() {
        return Err("stopping".into());
    }
    let lock = match converging {
        Some((_, lock)) => Arc::clone(lock),
        None => match ApplyLock::try_acquire(&agent.stack.name) {
            Ok(Some(l)) => Arc::new(l),
            Ok(None) => return Err("another tug command holds the stack's apply lock".into()),
            Err(e) => return Err(format!("apply lock: {e}")),
        },
    };
    interrupt_pending(agent).await;
    let (revision, stack) = match desired_revision(agent).await {
        Some((id, outcome, s)) => (Some((id, outcome)), s),
        None => (
            None,
            rebuild_from_labels(agent)
                .await
                .ok_or("no desired state yet")?,
        ),
    };
    let bus = agent.bus.clone();
    let sink = move |e: Event| bus.publish(None, e);
    let report = sup
        .tend(&agent.rt, &stack, converging.is_none(), &sink)
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "supervision failed");
            e.to_string()
        })?;
    // An interrupted revision is carried on even when its replicas look
    // settled (the run died before it changed any): its outcome is recorded.
    let carry_on = matches!(revision, Some((_, tug_engine::store::Outcome::Interrupted)));
    if (report.needs_converge || carry_on) && converging.is_none() {
        let a = Arc::clone(agent);
        let held = Arc::clone(&lock);
        let stack = stack.clone();
        let task = tokio::spawn(async move {
            let _held = held;
            if let Err(e) = ops::resume(&a.rt, &stack, revision, &a.opts, &a.bus).await {
                tracing::warn!(error = %e, "converge failed");
            }
        });
        track_up(agent, &task);
        *converging = Some((task, lock));
    }
    Ok(stack)
}

/// Under the apply lock no run applies anything: a revision still pending
/// was left by a run that died, and is recorded as interrupted.
async fn interrupt_pending<R: Runtime>(agent: &Agent<R>) {
    let name = agent.stack.name.clone();
    let ids = tokio::task::spawn_blocking(move || {
        ops::open_store(&name)
            .0
            .and_then(|s| s.interrupt_pending().ok())
            .unwrap_or_default()
    })
    .await
    .unwrap_or_default();
    for id in ids {
        tracing::warn!(
            revision = id,
            "a run died while applying this revision: carrying it on"
        );
    }
}

/// With no usable history (a new, missing or corrupt store), the desired
/// state is rebuilt from the file and the images the replicas run, read from
/// the engine, and recorded as a revision, so supervision goes on.
async fn rebuild_from_labels<R: Runtime>(agent: &Agent<R>) -> Option<Stack> {
    let (_, infos) = tug_engine::observe(&agent.rt, &agent.stack.name)
        .await
        .ok()?;
    let mut stack = agent.stack.clone();
    let mut images = std::collections::BTreeMap::new();
    for (name, svc) in stack.services.iter_mut() {
        let running = infos
            .iter()
            .find(|c| c.label(labels::SERVICE) == Some(name.as_str()))?;
        svc.image = Some(running.image.clone());
        svc.build = None;
        images.insert(name.clone(), running.image.clone());
    }
    let recorded = stack.clone();
    let rev = tokio::task::spawn_blocking(move || {
        let store = ops::open_store(&recorded.name).0?;
        let rev = store
            .begin(
                &recorded,
                "rebuilt from labels: the history had no good revision",
            )
            .ok()?;
        store
            .finish(rev, tug_engine::store::Outcome::Succeeded, "", &images)
            .ok()?;
        Some(rev)
    })
    .await
    .ok()
    .flatten()?;
    tracing::warn!(stack = %stack.name, revision = rev, "no good revision in the history: rebuilt the desired state from the running replicas");
    refresh_history(agent).await;
    Some(stack)
}

/// A request that carries a W3C `traceparent` (the CLI sends one) is served
/// in a server span, the child of the caller's: what the agent does for it
/// joins the caller's trace. Others (scrapes, the dashboard's polls) make
/// no span, so they do not fill the collector with one-span traces.
async fn traced(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    use tracing::Instrument;
    if !tug_observe::trace::enabled() || !req.headers().contains_key("traceparent") {
        return next.run(req).await;
    }
    let span = tracing::info_span!(
        "api",
        otel.name = %format!("{} {}", req.method(), req.uri().path()),
        otel.kind = "server",
        http.request.method = %req.method(),
        url.path = %req.uri().path(),
    );
    tug_observe::trace::set_remote_parent(
        &span,
        req.headers()
            .iter()
            .filter_map(|(k, v)| Some((k.as_str(), v.to_str().ok()?))),
    );
    next.run(req).instrument(span).await
}

async fn not_found() -> Response {
    failure(
        StatusCode::NOT_FOUND,
        "no such endpoint: see GET /v1/openapi.json".into(),
        true,
    )
}

async fn openapi() -> Response {
    (
        [("content-type", "application/json")],
        crate::openapi::document(),
    )
        .into_response()
}

async fn info<R: Runtime>(State(a): State<Shared<R>>) -> Response {
    reply(api::AgentInfo {
        pid: std::process::id(),
        stack: a.stack.name.clone(),
        socket: a.socket.clone(),
        log: a.log.clone(),
        http: Some(a.http.clone()),
    })
}

/// Reads the replicas from the engine now (a `tug up` changed them) and
/// answers with the snapshot that has them.
async fn resync<R: Runtime>(State(a): State<Shared<R>>) -> Response {
    refresh(&a).await;
    reply(&**a.snapshot.load())
}

async fn routes<R: Runtime>(State(a): State<Shared<R>>) -> Response {
    let Some(gw) = &a.gateway else {
        return reply(api::Routes::default());
    };
    let rows = gw
        .routes()
        .into_iter()
        .map(|r| api::RouteRow {
            service: r.service,
            host: r.host,
            path: r.path,
            strip_prefix: r.strip_prefix,
            balance: r.balance,
            replicas: r
                .replicas
                .into_iter()
                .map(|x| api::RouteReplica {
                    name: x.name,
                    address: x.address,
                    state: x.state,
                    in_flight: x.in_flight,
                })
                .collect(),
        })
        .collect();
    reply(api::Routes {
        listen: a.snapshot.load().gateway.clone(),
        routes: rows,
    })
}

async fn serve_metrics<R: Runtime>(State(a): State<Shared<R>>) -> Response {
    (
        [("content-type", tug_observe::metrics::CONTENT_TYPE)],
        a.metrics.encode(),
    )
        .into_response()
}

async fn ps<R: Runtime>(State(a): State<Shared<R>>) -> Response {
    // Only a newly started agent waits, for its first look at the stack.
    let mut ready = a.ready.subscribe();
    let _ = tokio::time::timeout(Duration::from_secs(5), ready.wait_for(|r| *r)).await;
    reply(&**a.snapshot.load())
}

async fn history<R: Runtime>(
    State(a): State<Shared<R>>,
    q: Result<Query<Page>, QueryRejection>,
) -> Response {
    let p = match query(q) {
        Ok(p) => p,
        Err(m) => return invalid(m),
    };
    // A read of the store (WAL: never blocked by a writer), off the executor.
    let limit = p.limit.unwrap_or(20).min(10_000) as usize;
    let name = a.stack.name.clone();
    match tokio::task::spawn_blocking(move || with_store(&name, |s| Ok(s.revisions(limit)?))).await
    {
        Ok(Ok(revs)) => reply(revs),
        Ok(Err(e)) => error(e),
        Err(e) => failure(StatusCode::INTERNAL_SERVER_ERROR, e.to_string(), false),
    }
}

fn with_store<T>(
    stack: &str,
    f: impl FnOnce(&Store) -> Result<T, OpsError>,
) -> Result<T, OpsError> {
    match ops::open_store(stack) {
        (Some(s), _) => f(&s),
        (None, w) => Err(OpsError::Invalid(w.unwrap_or_default())),
    }
}

/// Recorded events after `after`, oldest first (a blocking store read).
async fn recorded_after(
    stack: &str,
    after: i64,
    limit: usize,
) -> Result<Vec<api::EventRecord>, OpsError> {
    let name = stack.to_string();
    tokio::task::spawn_blocking(move || {
        with_store(&name, |s| {
            Ok(s.events(after, limit)?
                .into_iter()
                .map(|(id, time, event)| api::EventRecord { id, time, event })
                .collect())
        })
    })
    .await
    .map_err(|e| OpsError::Io(std::io::Error::other(e)))?
}

async fn events<R: Runtime>(
    State(a): State<Shared<R>>,
    q: Result<Query<Page>, QueryRejection>,
) -> Response {
    let p = match query(q) {
        Ok(p) => p,
        Err(m) => return invalid(m),
    };
    let limit = p.limit.unwrap_or(1000).min(10_000) as usize;
    match recorded_after(&a.stack.name, p.after.unwrap_or(0), limit).await {
        Ok(rows) => reply(rows),
        Err(e) => error(e),
    }
}

/// Server-sent events: every recorded event after `after`, then each new
/// one as the store writer records it (pushed, never polled). A client that
/// falls behind gets the events it missed from the store, so none is lost.
async fn event_stream<R: Runtime>(
    State(a): State<Shared<R>>,
    q: Result<Query<Page>, QueryRejection>,
) -> Response {
    use axum::response::sse::{Event as Sse, KeepAlive};
    let p = match query(q) {
        Ok(p) => p,
        Err(m) => return invalid(m),
    };
    // Subscribe first, then read the backlog: nothing falls in between.
    let live = a.recorded.subscribe();
    let stack = a.stack.name.clone();
    struct St {
        live: broadcast::Receiver<Arc<Recorded>>,
        queue: VecDeque<api::EventRecord>,
        after: i64,
        backfill: bool,
        stack: String,
    }
    let st = St {
        live,
        queue: VecDeque::new(),
        after: p.after.unwrap_or(0),
        backfill: true,
        stack,
    };
    let events = futures_util::stream::unfold(st, |mut st| async move {
        loop {
            if let Some(r) = st.queue.pop_front() {
                if r.id <= st.after {
                    continue;
                }
                st.after = r.id;
                let data = serde_json::to_string(&r).unwrap_or_default();
                let ev = Sse::default().id(r.id.to_string()).data(data);
                return Some((Ok::<_, std::convert::Infallible>(ev), st));
            }
            if std::mem::take(&mut st.backfill) {
                if let Ok(rows) = recorded_after(&st.stack, st.after, 10_000).await {
                    st.queue.extend(rows);
                }
                continue;
            }
            match st.live.recv().await {
                Ok(r) => st.queue.push_back(api::EventRecord {
                    id: r.id,
                    time: r.time,
                    event: r.event.clone(),
                }),
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::debug!(
                        missed = n,
                        "an event stream client fell behind; backfilling"
                    );
                    st.backfill = true;
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    axum::response::sse::Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// Log lines as newline-delimited JSON, streamed while `follow` holds.
async fn logs<R: Runtime>(
    State(a): State<Shared<R>>,
    q: Result<Query<api::LogsQuery>, QueryRejection>,
) -> Response {
    let q = match query(q) {
        Ok(q) => q,
        Err(m) => return invalid(m),
    };
    if let Some(s) = &q.service {
        if let Err(e) = ops::known_services(&a.stack, std::slice::from_ref(s)) {
            return error(e);
        }
    }
    let grep = match q.grep.as_deref().map(regex::Regex::new).transpose() {
        Ok(g) => g,
        Err(e) => return invalid(format!("`grep` is not a regular expression: {e}")),
    };
    let now = std::time::SystemTime::now();
    let time = |t: Option<&str>, name: &str| {
        t.map(|t| tug_runtime::parse_log_time(t, now))
            .transpose()
            .map_err(|e| format!("`{name}`: {e}"))
    };
    let (since, until) = match (
        time(q.since.as_deref(), "since"),
        time(q.until.as_deref(), "until"),
    ) {
        (Ok(s), Ok(u)) => (s, u),
        (Err(m), _) | (_, Err(m)) => return invalid(m),
    };
    let opts = tug_runtime::LogOptions {
        tail: q.tail.map(|t| t as usize),
        follow: q.follow,
        since,
        until,
    };
    match tug_engine::log_lines(&a.rt, &a.stack.name, q.service.as_deref(), opts, grep).await {
        Ok(lines) => {
            let body = lines.map(|l| match l {
                Ok(l) => {
                    let mut b = serde_json::to_vec(&l).unwrap_or_default();
                    b.push(b'\n');
                    Ok::<_, std::io::Error>(axum::body::Bytes::from(b))
                }
                Err(e) => Err(std::io::Error::other(e.to_string())),
            });
            (
                [("content-type", "application/x-ndjson")],
                axum::body::Body::from_stream(body),
            )
                .into_response()
        }
        Err(e) => error(e.into()),
    }
}

fn converged(c: ops::Converged) -> Response {
    match c.result {
        Ok(report) => reply(api::Converged {
            revision: c.revision,
            report: report.into(),
            warning: c.warning,
        }),
        Err(e) => error(e.into()),
    }
}

/// Stops the converges of `POST /v1/up` in progress: each is recorded as
/// interrupted, and the next converge carries it on.
/// Registers a converge task so that stopping the agent (or `down`) stops it.
fn track_up<R>(agent: &Agent<R>, task: &tokio::task::JoinHandle<()>) {
    let mut ups = agent.ups.lock().unwrap_or_else(|p| p.into_inner());
    ups.retain(|u| !u.is_finished());
    ups.push(task.abort_handle());
}

fn stop_ups<R>(agent: &Agent<R>) {
    let ups = std::mem::take(&mut *agent.ups.lock().unwrap_or_else(|p| p.into_inner()));
    for u in ups {
        u.abort();
    }
}

/// `POST /v1/up`: converges to the stack sent, in a task of the agent's own
/// (a client that goes away stops nothing), publishing every event on the
/// agent's bus and streaming it back as NDJSON, then the outcome.
async fn up<R: Runtime + Clone + 'static>(
    State(a): State<Shared<R>>,
    Body(b): Body<api::UpRequest>,
) -> Response {
    use tug_engine::bus::Received;
    let mut stack: Stack = match serde_json::from_value(b.stack) {
        Ok(s) => s,
        Err(e) => return invalid(format!("`stack` is not a stack: {e}")),
    };
    stack.dir = b.dir.unwrap_or_else(|| a.stack.dir.clone());
    stack.file = b.file.unwrap_or_else(|| a.stack.file.clone());
    if stack.name != a.stack.name {
        return invalid(format!(
            "this agent supervises stack {}, not {}",
            a.stack.name, stack.name
        ));
    }
    if *a.shutdown.borrow() {
        return failure(
            StatusCode::SERVICE_UNAVAILABLE,
            "the agent is stopping".into(),
            false,
        );
    }
    let opts = UpOptions {
        timeout: b
            .timeout_secs
            .map(Duration::from_secs)
            .unwrap_or(a.opts.timeout),
        drain: Arc::clone(&a.opts.drain),
    };
    let message = b.message.unwrap_or_else(|| "up".into());
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<api::UpLine>();
    // The converge publishes on a bus of its own; each event goes on to the
    // agent's bus (store, snapshot, SSE) and to this client.
    let own = tug_engine::bus::Bus::new();
    let mut sub = own.subscribe();
    let (agent_bus, lines) = (a.bus.clone(), tx.clone());
    let forward = tokio::spawn(async move {
        while let Some(r) = sub.recv().await {
            if let Received::Event(p) = r {
                agent_bus.publish(p.revision, p.event.clone());
                if let Ok(event) = serde_json::to_value(&p.event) {
                    let _ = lines.send(api::UpLine::Event { event });
                }
            }
        }
    });
    let agent = Arc::clone(&a);
    // In the request's span (kept open until the converge ends), so the
    // converge's spans are its children.
    let task = tokio::spawn(tracing::Instrument::in_current_span(async move {
        let done = ops::converge(&agent.rt, &stack, &opts, &message, &own).await;
        drop(own);
        let _ = forward.await;
        refresh(&agent).await;
        let line = match done {
            Ok(c) => match c.result {
                Ok(report) => api::UpLine::Done {
                    revision: c.revision,
                    report: report.into(),
                    warning: c.warning,
                },
                Err(e) => api::UpLine::Failed {
                    service: match &e {
                        tug_engine::EngineError::ServiceFailed { service, .. } => {
                            Some(service.clone())
                        }
                        _ => None,
                    },
                    rolled_back: e.rolled_back(),
                    error: e.to_string(),
                    revision: c.revision,
                },
            },
            Err(e) => api::UpLine::Failed {
                error: e.to_string(),
                service: None,
                rolled_back: false,
                revision: None,
            },
        };
        let _ = tx.send(line);
    }));
    track_up(&a, &task);
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        let line = rx.recv().await?;
        let mut b = serde_json::to_vec(&line).unwrap_or_default();
        b.push(b'\n');
        Some((
            Ok::<_, std::convert::Infallible>(axum::body::Bytes::from(b)),
            rx,
        ))
    });
    (
        [("content-type", "application/x-ndjson")],
        axum::body::Body::from_stream(body),
    )
        .into_response()
}

async fn scale<R: Runtime>(
    State(a): State<Shared<R>>,
    Body(b): Body<api::ScaleRequest>,
) -> Response {
    let base = desired(&a)
        .await
        .map(|(_, s)| s)
        .unwrap_or_else(|| a.stack.clone());
    let stack = match ops::scaled(&base, &b.pairs) {
        Ok(s) => s,
        Err(e) => return error(e),
    };
    let message = format!("scale {}", b.pairs.join(" "));
    let done = ops::converge(&a.rt, &stack, &a.opts, &message, &a.bus).await;
    refresh(&a).await;
    match done {
        Ok(c) => converged(c),
        Err(e) => error(e),
    }
}

async fn restart<R: Runtime>(
    State(a): State<Shared<R>>,
    Body(b): Body<api::RestartRequest>,
) -> Response {
    let stack = desired(&a)
        .await
        .map(|(_, s)| s)
        .unwrap_or_else(|| a.stack.clone());
    let names = match ops::known_services(&stack, &b.services) {
        Ok(n) => n,
        Err(e) => return error(e),
    };
    let _lock = match ApplyLock::acquire(&stack.name).await {
        Ok(l) => l,
        Err(e) => return error(e.into()),
    };
    let bus = a.bus.clone();
    let sink = move |e: Event| bus.publish(None, e);
    let done = tug_engine::restart(&a.rt, &stack, &names, &a.opts, &sink).await;
    refresh(&a).await;
    match done {
        Ok(n) => reply(api::Restarted {
            restarted: n,
            services: names,
        }),
        Err(e) => error(e.into()),
    }
}

async fn rollback<R: Runtime>(
    State(a): State<Shared<R>>,
    Body(b): Body<api::RollbackRequest>,
) -> Response {
    let name = a.stack.name.clone();
    let target = tokio::task::spawn_blocking(move || {
        with_store(&name, |s| ops::rollback_target(s, &name, b.to))
    })
    .await
    .unwrap_or_else(|e| Err(OpsError::Io(std::io::Error::other(e))));
    let target = match target {
        Ok(t) => t,
        Err(e) => return error(e),
    };
    let stack = match target.pinned_stack(&a.stack.dir, &a.stack.file) {
        Ok(s) => s,
        Err(e) => {
            return error(OpsError::Invalid(format!(
                "revision {} cannot be read back: {e}",
                target.id
            )))
        }
    };
    let message = format!("rollback to revision {}", target.id);
    let done = ops::converge(&a.rt, &stack, &a.opts, &message, &a.bus).await;
    refresh(&a).await;
    match done {
        Ok(c) => converged(c),
        Err(e) => error(e),
    }
}

async fn down<R: Runtime>(State(a): State<Shared<R>>, Body(b): Body<api::DownRequest>) -> Response {
    // Supervision stops first, so nothing is recreated behind the removal,
    // and so does a converge in progress (its revision is then interrupted).
    a.shutdown.send_replace(true);
    stop_ups(&a);
    let _lock = match ApplyLock::acquire(&a.stack.name).await {
        Ok(l) => l,
        Err(e) => return error(e.into()),
    };
    interrupt_pending(&a).await;
    let grace = a
        .stack
        .services
        .values()
        .map(|s| s.stop_grace_period.std())
        .max()
        .unwrap_or(Duration::from_secs(10));
    let r = tug_engine::down(&a.rt, &a.stack.name, grace, b.volumes, &*a.opts.drain).await;
    match r {
        Ok(report) => reply(api::Removed {
            containers: report.containers,
            networks: report.networks,
            volumes: report.volumes,
        }),
        Err(e) => error(e.into()),
    }
}
