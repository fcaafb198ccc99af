//! The agent process: supervision loop plus the API server.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::UnixListener;
use tokio::sync::{watch, Mutex};
use tug_engine::agent::Supervisor;
use tug_engine::ops::{self, ApplyLock, OpsError};
use tug_engine::store::Store;
use tug_engine::{Event, UpOptions};
use tug_runtime::Runtime;
use tug_spec::Stack;

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
}

struct Agent<R> {
    rt: R,
    stack: Stack,
    supervisor: Mutex<Supervisor>,
    opts: UpOptions,
    shutdown: watch::Sender<bool>,
    socket: PathBuf,
}

type Shared<R> = Arc<Agent<R>>;
type Reply = (StatusCode, Json<Value>);

fn ok(v: Value) -> Reply {
    (StatusCode::OK, Json(v))
}

fn error(e: OpsError) -> Reply {
    let invalid = matches!(e, OpsError::Invalid(_));
    let status = if invalid {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::INTERNAL_SERVER_ERROR
    };
    (
        status,
        Json(json!({"error": e.to_string(), "invalid": invalid})),
    )
}

/// Is an agent answering on `socket`?
pub async fn answering(socket: &Path) -> bool {
    crate::client::Client::at(socket)
        .get("/v1/agent")
        .await
        .is_ok()
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

/// Like [`run`], stopping when `shutdown` completes (or on `POST /v1/down`).
pub async fn run_until<R: Runtime + Clone + 'static>(
    rt: R,
    stack: Stack,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), AgentError> {
    let (socket, pidfile, _) = ops::agent_paths(&stack.name);
    if let Some(dir) = socket.parent() {
        let _ = std::fs::create_dir_all(dir);
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
    // Left by an agent that died: nobody answers on it.
    let _ = std::fs::remove_file(&socket);
    let listener = UnixListener::bind(&socket).map_err(|source| AgentError::Socket {
        path: socket.clone(),
        source,
    })?;
    let _ = std::fs::write(&pidfile, format!("{}\n", std::process::id()));
    let (down_tx, mut stopped) = watch::channel(false);
    let agent = Arc::new(Agent {
        rt,
        stack,
        supervisor: Mutex::new(Supervisor::new()),
        opts: UpOptions::default(),
        shutdown: down_tx,
        socket: socket.clone(),
    });
    tracing::info!(stack = %agent.stack.name, socket = %socket.display(), "agent started");

    let ticker = tokio::spawn(supervise(Arc::clone(&agent)));
    let app = Router::new()
        .route("/v1/agent", get(info))
        .route("/v1/ps", get(ps::<R>))
        .route("/v1/history", get(history))
        .route("/v1/events", get(events))
        .route("/v1/logs", get(logs::<R>))
        .route("/v1/events/stream", get(event_stream::<R>))
        .route("/v1/scale", post(scale::<R>))
        .route("/v1/restart", post(restart::<R>))
        .route("/v1/rollback", post(rollback::<R>))
        .route("/v1/down", post(down::<R>))
        .with_state(Arc::clone(&agent));
    let signals = async move {
        tokio::select! {
            _ = shutdown => {},
            _ = stopped.wait_for(|s| *s) => {},
        }
    };
    let served = axum::serve(listener, app.into_make_service())
        .with_graceful_shutdown(signals)
        .await;
    ticker.abort();
    let _ = std::fs::remove_file(&socket);
    let _ = std::fs::remove_file(&pidfile);
    tracing::info!(stack = %agent.stack.name, "agent stopped");
    served.map_err(|source| AgentError::Socket {
        path: socket,
        source,
    })
}

/// The desired stack: the newest succeeded revision, pinned to its images.
fn desired(agent: &Agent<impl Runtime>) -> Option<Stack> {
    let (store, _) = ops::open_store(&agent.stack.name);
    let rev = store?.last_good(None).ok()??;
    rev.pinned_stack(&agent.stack.dir, &agent.stack.file).ok()
}

async fn supervise<R: Runtime>(agent: Shared<R>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Ok(Some(_lock)) = ApplyLock::try_acquire(&agent.stack.name) else {
            continue;
        };
        let stack = match desired(&agent) {
            Some(s) => s,
            None => match rebuild_from_labels(&agent).await {
                Some(s) => s,
                None => continue,
            },
        };
        let (store, _) = ops::open_store(&stack.name);
        let store = store.map(std::sync::Mutex::new);
        let sink = |e: Event| {
            tracing::info!(event = %serde_json::to_string(&e).unwrap_or_default(), "supervision");
            if let Some(Ok(s)) = store.as_ref().map(|s| s.lock()) {
                let _ = s.append_event(None, &e);
            }
        };
        let mut sup = agent.supervisor.lock().await;
        if let Err(e) = sup.step(&agent.rt, &stack, &agent.opts, &sink).await {
            tracing::warn!(error = %e, "supervision step failed");
        }
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
            .find(|c| c.label(tug_runtime::labels::SERVICE) == Some(name.as_str()))?;
        svc.image = Some(running.image.clone());
        svc.build = None;
        images.insert(name.clone(), running.image.clone());
    }
    let (store, _) = ops::open_store(&stack.name);
    let store = store?;
    let rev = store
        .begin(
            &stack,
            "rebuilt from labels: the history had no good revision",
        )
        .ok()?;
    store
        .finish(rev, tug_engine::store::Outcome::Succeeded, "", &images)
        .ok()?;
    tracing::warn!(stack = %stack.name, revision = rev, "no good revision in the history: rebuilt the desired state from the running replicas");
    Some(stack)
}

async fn info<R: Runtime>(State(a): State<Shared<R>>) -> Reply {
    ok(json!({"pid": std::process::id(), "stack": a.stack.name, "socket": a.socket}))
}

async fn ps<R: Runtime>(State(a): State<Shared<R>>) -> Reply {
    let stack = desired(&a).unwrap_or_else(|| a.stack.clone());
    match tug_engine::status(&a.rt, &stack.name, Some(&stack)).await {
        Ok(rows) => {
            let sup = a.supervisor.lock().await;
            let rows: Vec<Value> = rows
                .into_iter()
                .map(|r| {
                    let note = sup.note(&r.name);
                    let mut v = serde_json::to_value(&r).unwrap_or(Value::Null);
                    v["note"] = json!(note);
                    v
                })
                .collect();
            ok(Value::Array(rows))
        }
        Err(e) => error(e.into()),
    }
}

#[derive(Deserialize)]
struct Page {
    limit: Option<usize>,
    after: Option<i64>,
}

fn with_store(stack: &str, f: impl FnOnce(&Store) -> Result<Value, OpsError>) -> Reply {
    match ops::open_store(stack) {
        (Some(s), _) => f(&s).map(ok).unwrap_or_else(error),
        (None, w) => error(OpsError::Invalid(w.unwrap_or_default())),
    }
}

async fn history<R: Runtime>(State(a): State<Shared<R>>, Query(p): Query<Page>) -> Reply {
    with_store(&a.stack.name, |s| {
        Ok(serde_json::to_value(s.revisions(p.limit.unwrap_or(20))?).unwrap_or(Value::Null))
    })
}

async fn events<R: Runtime>(State(a): State<Shared<R>>, Query(p): Query<Page>) -> Reply {
    with_store(&a.stack.name, |s| {
        let rows = s.events(p.after.unwrap_or(0), p.limit.unwrap_or(1000))?;
        Ok(Value::Array(
            rows.into_iter()
                .map(|(id, time, event)| json!({"id": id, "time": time, "event": event}))
                .collect(),
        ))
    })
}

fn converged(c: ops::Converged) -> Reply {
    match c.result {
        Ok(report) => ok(json!({"revision": c.revision, "report": report, "warning": c.warning})),
        Err(e) => error(e.into()),
    }
}

/// Server-sent events: every event after `after`, then new ones as they are
/// recorded (by the agent or by any `tug` command on this stack).
async fn event_stream<R: Runtime>(
    State(a): State<Shared<R>>,
    Query(p): Query<Page>,
) -> axum::response::sse::Sse<
    impl futures_util::Stream<Item = Result<axum::response::sse::Event, std::convert::Infallible>>,
> {
    use axum::response::sse::{Event as Sse, KeepAlive};
    let stack = a.stack.name.clone();
    let start = (
        p.after.unwrap_or(0),
        std::collections::VecDeque::<(i64, serde_json::Value)>::new(),
    );
    let events = futures_util::stream::unfold(start, move |(mut after, mut queue)| {
        let stack = stack.clone();
        async move {
            loop {
                if let Some((id, e)) = queue.pop_front() {
                    let ev = Sse::default().id(id.to_string()).data(e.to_string());
                    return Some((Ok(ev), (after, queue)));
                }
                if let (Some(store), _) = ops::open_store(&stack) {
                    for (id, time, e) in store.events(after, 1000).unwrap_or_default() {
                        after = after.max(id);
                        queue.push_back((id, json!({"id": id, "time": time, "event": e})));
                    }
                }
                if queue.is_empty() {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                }
            }
        }
    });
    axum::response::sse::Sse::new(events).keep_alive(KeepAlive::default())
}

#[derive(Deserialize)]
struct LogsQuery {
    service: Option<String>,
    tail: Option<usize>,
    #[serde(default)]
    follow: bool,
}

/// Log lines as newline-delimited JSON, streamed while `follow` holds.
async fn logs<R: Runtime>(
    State(a): State<Shared<R>>,
    Query(q): Query<LogsQuery>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    use futures_util::StreamExt;
    match tug_engine::log_lines(&a.rt, &a.stack.name, q.service.as_deref(), q.tail, q.follow).await
    {
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
        Err(e) => error(e.into()).into_response(),
    }
}

#[derive(Deserialize)]
struct ScaleBody {
    pairs: Vec<String>,
}

async fn scale<R: Runtime>(State(a): State<Shared<R>>, Json(b): Json<ScaleBody>) -> Reply {
    let base = desired(&a).unwrap_or_else(|| a.stack.clone());
    let stack = match ops::scaled(&base, &b.pairs) {
        Ok(s) => s,
        Err(e) => return error(e),
    };
    match ops::converge(
        &a.rt,
        &stack,
        &a.opts,
        &format!("scale {}", b.pairs.join(" ")),
        &|_| {},
    )
    .await
    {
        Ok(c) => converged(c),
        Err(e) => error(e),
    }
}

#[derive(Deserialize)]
struct RestartBody {
    #[serde(default)]
    services: Vec<String>,
}

async fn restart<R: Runtime>(State(a): State<Shared<R>>, Json(b): Json<RestartBody>) -> Reply {
    let stack = desired(&a).unwrap_or_else(|| a.stack.clone());
    let names = match ops::known_services(&stack, &b.services) {
        Ok(n) => n,
        Err(e) => return error(e),
    };
    let _lock = match ApplyLock::acquire(&stack.name).await {
        Ok(l) => l,
        Err(e) => return error(e.into()),
    };
    match tug_engine::restart(&a.rt, &stack, &names, &a.opts, &|_| {}).await {
        Ok(n) => ok(json!({"restarted": n, "services": names})),
        Err(e) => error(e.into()),
    }
}

#[derive(Deserialize)]
struct RollbackBody {
    to: Option<i64>,
}

async fn rollback<R: Runtime>(State(a): State<Shared<R>>, Json(b): Json<RollbackBody>) -> Reply {
    let target = match ops::open_store(&a.stack.name) {
        (Some(s), _) => ops::rollback_target(&s, &a.stack.name, b.to),
        (None, w) => Err(OpsError::Invalid(w.unwrap_or_default())),
    };
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
    match ops::converge(
        &a.rt,
        &stack,
        &a.opts,
        &format!("rollback to revision {}", target.id),
        &|_| {},
    )
    .await
    {
        Ok(c) => converged(c),
        Err(e) => error(e),
    }
}

#[derive(Deserialize)]
struct DownBody {
    #[serde(default)]
    volumes: bool,
}

async fn down<R: Runtime>(State(a): State<Shared<R>>, Json(b): Json<DownBody>) -> Reply {
    let _lock = match ApplyLock::acquire(&a.stack.name).await {
        Ok(l) => l,
        Err(e) => return error(e.into()),
    };
    let grace = a
        .stack
        .services
        .values()
        .map(|s| s.stop_grace_period.std())
        .max()
        .unwrap_or(Duration::from_secs(10));
    let r = tug_engine::down(&a.rt, &a.stack.name, grace, b.volumes).await;
    let _ = a.shutdown.send(true);
    match r {
        Ok(report) => ok(serde_json::to_value(report).unwrap_or(Value::Null)),
        Err(e) => error(e.into()),
    }
}
