//! The agent in-process on the recording FakeRuntime: its snapshot answers
//! during a converge, it reacts to engine events, and bad input gets a 4xx.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tug_api::api::{Ps, ScaleRequest};
use tug_api::client::Client;
use tug_engine::bus::Bus;
use tug_engine::UpOptions;
use tug_runtime::fake::FakeRuntime;
use tug_runtime::{stack_filter, ContainerState, EngineHealth, Runtime};

/// One state directory for this test binary (TUG_STATE_DIR is read per call).
fn state() -> &'static Path {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let d = tempfile::tempdir().unwrap();
        std::env::set_var("TUG_STATE_DIR", d.path());
        d
    })
    .path()
}

fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}{}x{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

struct Running {
    rt: FakeRuntime,
    stack: tug_spec::Stack,
    socket: PathBuf,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    agent: tokio::task::JoinHandle<Result<(), tug_api::server::AgentError>>,
}

impl Running {
    fn client(&self) -> Client {
        Client::at(&self.socket)
    }

    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(10), &mut self.agent)
            .await
            .expect("the agent stops")
            .unwrap()
            .unwrap();
    }
}

/// Converges `services` on a fake engine (recorded as a revision), then
/// starts the agent on it.
async fn agent(services: &str) -> Running {
    agent_with("", services).await
}

/// [`agent`] with stack-level lines (`dashboard:` …) in its tug.yaml.
async fn agent_with(head: &str, services: &str) -> Running {
    state();
    let name = unique("a");
    let rt = FakeRuntime::new();
    rt.add_image("app:1", "");
    let yaml = format!("name: {name}\n{head}services:\n{services}");
    let stack = tug_spec::parse_str(&yaml, "/srv/tug.yaml".as_ref()).unwrap();
    // As `tug up` does: the store's writer subscribes to the converge's bus.
    let bus = Bus::new();
    let store = tug_engine::ops::open_store(&name).0.unwrap();
    let writer = tug_engine::store::Writer::spawn(store, &bus);
    let done = tug_engine::ops::converge(&rt, &stack, &UpOptions::default(), "up", &bus)
        .await
        .unwrap();
    done.result.unwrap();
    drop(bus);
    tokio::task::spawn_blocking(move || writer.finish())
        .await
        .unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let agent = tokio::spawn(tug_api::server::run_until(
        rt.clone(),
        stack.clone(),
        async move {
            let _ = rx.await;
        },
    ));
    let (socket, _, _) = tug_engine::ops::agent_paths(&name);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !tug_api::server::answering(&socket).await {
        assert!(Instant::now() < deadline, "the agent did not answer");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A new agent's first `ps` waits for its first look at the stack.
    Client::at(&socket).ps().await.unwrap();
    Running {
        rt,
        stack,
        socket,
        stop: Some(tx),
        agent,
    }
}

const APP: &str =
    "  api:\n    image: app:1\n    replicas: 2\n    health: { exec: [/bin/check], interval: 1s }\n";

/// `GET /v1/ps`, which must answer within 3 s whatever the agent is doing
/// (a gated converge here waits 120 s).
async fn ps(c: &Client) -> Ps {
    tokio::time::timeout(Duration::from_secs(3), c.ps())
        .await
        .expect("ps answers at once")
        .unwrap()
}

async fn wait_for<T>(what: &str, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ps_answers_and_shows_the_converge_while_a_health_gate_waits() {
    let a = agent(APP).await;
    let c = a.client();
    let before = ps(&c).await;
    assert_eq!(before.replicas.len(), 2, "{before:?}");
    assert!(before.converge.is_none());
    assert!(before.revision.is_some());

    // New replicas never turn healthy: the scale's health gate keeps waiting.
    a.rt.set_health_on_start(&format!("{}-api", a.stack.name), EngineHealth::Starting);
    let scaling = {
        let c = a.client();
        tokio::spawn(async move {
            c.post_as::<_, serde_json::Value>(
                "/v1/scale",
                &ScaleRequest {
                    pairs: vec!["api=3".into()],
                },
            )
            .await
        })
    };
    let seen = wait_for("ps to show the converge", async || {
        let p = ps(&c).await;
        let doing = p.converge.as_ref()?.services.get("api")?.clone();
        doing.contains("checking health").then_some(p)
    })
    .await;
    assert!(!scaling.is_finished(), "the scale is still gated");
    assert!(seen.converge.unwrap().since > 0);
    // History answers too.
    let h: Vec<serde_json::Value> =
        tokio::time::timeout(Duration::from_secs(2), c.get_as("/v1/history?limit=5"))
            .await
            .expect("history answers at once")
            .unwrap();
    assert!(!h.is_empty());
    scaling.abort();
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_replica_is_restarted_on_the_engine_event() {
    let a = agent(APP).await;
    let c = a.client();
    let victim = victims(&a).await[0].clone();
    a.rt.kill(&victim.id, 137);
    // The periodic resync is 30 s away: only the event can bring it back this soon.
    let started = Instant::now();
    wait_for("the killed replica to run again", async || {
        let c = a.rt.inspect_container(&victim.id).await.ok()??;
        (c.state == ContainerState::Running).then_some(())
    })
    .await;
    assert!(started.elapsed() < tug_api::server::RESYNC);
    let events: Vec<tug_api::api::EventRecord> = wait_for("the events", async || {
        let e: Vec<tug_api::api::EventRecord> = c.get_as("/v1/events").await.ok()?;
        e.iter()
            .any(|e| e.event["event"] == "restarting")
            .then_some(e)
    })
    .await;
    let kinds: Vec<&str> = events
        .iter()
        .filter_map(|e| e.event["event"].as_str())
        .collect();
    let died = kinds.iter().position(|k| *k == "replica").unwrap();
    let restarting = kinds.iter().position(|k| *k == "restarting").unwrap();
    assert!(died < restarting, "{kinds:?}");
    a.stop().await;
}

/// The replica events of the store, in order, as `(container, change)`.
async fn replica_changes(c: &Client) -> Vec<(String, String)> {
    let e: Vec<tug_api::api::EventRecord> = c.get_as("/v1/events").await.unwrap_or_default();
    e.iter()
        .filter(|e| e.event["event"] == "replica")
        .map(|e| {
            (
                e.event["container"].as_str().unwrap_or("").to_string(),
                e.event["change"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// The stack's containers on the fake engine, to kill one of.
async fn victims(a: &Running) -> Vec<tug_runtime::ContainerInfo> {
    a.rt.list_containers(&stack_filter(&a.stack.name))
        .await
        .unwrap()
}

/// The replica changes once `name`'s death is among them.
async fn changes_after_death(c: &Client, name: &str) -> Vec<(String, String)> {
    wait_for(
        &format!("the death of {name} among the events"),
        async || {
            let ch = replica_changes(c).await;
            ch.iter()
                .any(|(n, k)| n == name && k == "died")
                .then_some(ch)
        },
    )
    .await
}

/// What happened to `name`, in order.
fn changes_of<'a>(changes: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    changes
        .iter()
        .filter(|(n, _)| n == name)
        .map(|(_, k)| k.as_str())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oom_kill_whose_event_the_engine_dropped_is_reported_as_one() {
    let a = agent(APP).await;
    let c = a.client();
    let victims = victims(&a).await;
    // Only `died` with 137 reaches the agent; inspect says OOM killed.
    a.rt.oom_kill_unreported(&victims[0].id);
    let changes = changes_after_death(&c, &victims[0].name).await;
    assert_eq!(
        changes_of(&changes, &victims[0].name),
        ["oom_killed", "died"],
        "{changes:?}"
    );
    // One the engine reported is not reported twice.
    a.rt.oom_kill(&victims[1].id);
    let changes = changes_after_death(&c, &victims[1].name).await;
    assert_eq!(
        changes_of(&changes, &victims[1].name),
        ["oom_killed", "died"],
        "{changes:?}"
    );
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigkill_is_not_an_oom_kill() {
    let a = agent(APP).await;
    let c = a.client();
    let victim = victims(&a).await[0].clone();
    a.rt.kill(&victim.id, 137);
    let changes = changes_after_death(&c, &victim.name).await;
    assert_eq!(changes_of(&changes, &victim.name), ["died"], "{changes:?}");
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_engine_stream_is_followed_by_a_resync() {
    let a = agent(APP).await;
    let c = a.client();
    let victim = victims(&a).await[1].clone();
    // Died while the stream was down: no event will ever say so.
    a.rt.kill_unseen(&victim.id, 1);
    a.rt.interrupt_events();
    wait_for("the resync to restart the replica", async || {
        let c = a.rt.inspect_container(&victim.id).await.ok()??;
        (c.state == ContainerState::Running).then_some(())
    })
    .await;
    let kinds: Vec<String> = wait_for("engine events", async || {
        let e: Vec<tug_api::api::EventRecord> = c.get_as("/v1/events").await.ok()?;
        let k: Vec<String> = e
            .iter()
            .filter_map(|e| e.event["event"].as_str().map(String::from))
            .collect();
        k.iter().any(|k| k == "engine_resumed").then_some(k)
    })
    .await;
    assert!(kinds.iter().any(|k| k == "engine_lost"), "{kinds:?}");
    a.stop().await;
}

/// Sends raw bytes, returns the status code and body.
async fn raw(socket: &Path, request: &[u8]) -> (u16, String) {
    let mut s = tokio::net::UnixStream::connect(socket).await.unwrap();
    // The agent may answer (413) and close before it is all written.
    let _ = s.write_all(request).await;
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out).await;
    let text = String::from_utf8_lossy(&out).to_string();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (status, body)
}

fn post(path: &str, body: &str) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nHost: agent\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_4xx_with_a_message_and_the_agent_stays_up() {
    let a = agent(APP).await;
    let cases: Vec<(Vec<u8>, u16, &str)> = vec![
        (
            post("/v1/scale", "{\"pairs\": [\"api=3\""),
            400,
            "bad request body",
        ),
        (post("/v1/scale", "[]"), 400, "bad request body"),
        (
            post("/v1/scale", "{\"pairs\": [\"api=-1\"]}"),
            400,
            "whole number from 0 to 256",
        ),
        (
            post("/v1/scale", "{\"pairs\": [\"api=1000000\"]}"),
            400,
            "at most 256 replicas",
        ),
        (
            post("/v1/scale", "{\"pairs\": [\"nope=1\"]}"),
            400,
            "no service `nope`",
        ),
        (
            post("/v1/scale", "{\"pairs\": [], \"extra\": 1}"),
            400,
            "unknown field",
        ),
        (
            post("/v1/rollback", "{\"to\": \"x\"}"),
            400,
            "bad request body",
        ),
        (post("/v1/nowhere", "{}"), 404, "no such endpoint"),
        (
            b"GET /v1/history?limit=-4 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n".to_vec(),
            400,
            "bad query",
        ),
    ];
    for (req, want, message) in cases {
        let (status, body) = raw(&a.socket, &req).await;
        assert_eq!(status, want, "{}: {body}", String::from_utf8_lossy(&req));
        assert!(body.contains(message), "{body}");
        if want != 404 {
            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
            assert_eq!(v["invalid"], true);
        }
    }
    // A 50 MB body is refused without being read.
    let mut big = format!(
        "POST /v1/scale HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        50 * 1024 * 1024
    )
    .into_bytes();
    big.extend(std::iter::repeat_n(b' ', 1024 * 1024));
    let (status, _) = raw(&a.socket, &big).await;
    assert_eq!(status, 413);
    // Still up, still the same replicas.
    assert_eq!(ps(&a.client()).await.replicas.len(), 2);
    let doc: serde_json::Value = a.client().get_as("/v1/openapi.json").await.unwrap();
    assert!(doc["paths"]["/v1/scale"]["post"].is_object());
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_state_directory_socket_and_store_are_the_owners_only() {
    let a = agent(APP).await;
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let dir = a.socket.parent().unwrap();
    assert_eq!(mode(dir), 0o700);
    assert_eq!(mode(&a.socket), 0o600);
    assert_eq!(mode(&dir.join("tug.db")), 0o600);
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_sent_events_are_pushed_as_they_are_recorded() {
    let a = agent(APP).await;
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let reader = {
        let c = a.client();
        let lines = lines.clone();
        tokio::spawn(async move {
            let _ = c
                .get_lines("/v1/events/stream?after=0", |l| {
                    lines.lock().unwrap().push(l.to_string())
                })
                .await;
        })
    };
    let victim = victims(&a).await[0].clone();
    a.rt.oom_kill(&victim.id);
    wait_for("the OOM kill on the stream", async || {
        lines
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.starts_with("data: ") && l.contains("oom_killed"))
            .then_some(())
    })
    .await;
    let l = lines.lock().unwrap().clone();
    // Backlog first (the initial converge), ids increasing.
    let ids: Vec<i64> = l
        .iter()
        .filter_map(|l| l.strip_prefix("id: "))
        .map(|i| i.parse().unwrap())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    assert!(l.iter().any(|l| l.contains("\"converging\"")));
    reader.abort();
    a.stop().await;
}

/// A raw HTTP/1.1 GET over TCP: the status code and the body.
async fn http_get(addr: &str, path: &str, headers: &str) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{headers}Connection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    let status = out[9..12].parse().unwrap();
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_is_served_over_loopback_tcp_without_a_token() {
    let a = agent(APP).await;
    let info = a.client().info().await.unwrap();
    let url = info.http.expect("the agent reports its HTTP listener");
    let addr = url
        .strip_prefix("http://127.0.0.1:")
        .map(|p| format!("127.0.0.1:{p}"));
    let addr = addr.expect("loopback by default");
    let (status, body) = http_get(&addr, "/v1/ps", "").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(&a.stack.name), "{body}");
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beyond_loopback_every_request_needs_the_token() {
    let port = std::net::TcpListener::bind("0.0.0.0:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let a = agent_with(&format!("dashboard:\n  listen: \"0.0.0.0:{port}\"\n"), APP).await;
    let addr = format!("127.0.0.1:{port}");
    let (status, body) = http_get(&addr, "/v1/ps", "").await;
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("Authorization: Bearer"), "{body}");
    let (status, _) = http_get(&addr, "/metrics", "Authorization: Bearer wrong\r\n").await;
    assert_eq!(status, 401);
    let (socket_dir, _, _) = tug_engine::ops::agent_paths(&a.stack.name);
    let token = std::fs::read_to_string(socket_dir.parent().unwrap().join("token")).unwrap();
    let (status, body) = http_get(
        &addr,
        "/v1/ps",
        &format!("Authorization: Bearer {token}\r\n"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = http_get(&addr, "/v1/ps", &format!("Cookie: tug_token={token}\r\n")).await;
    assert_eq!(status, 200);
    // The unix socket, reachable by its owner only, needs none.
    assert_eq!(a.client().ps().await.unwrap().stack, a.stack.name);
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dashboard_address_in_use_is_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    state();
    let name = unique("a");
    let yaml = format!("name: {name}\ndashboard: {{ listen: \":{port}\" }}\nservices:\n{APP}");
    let stack = tug_spec::parse_str(&yaml, "/srv/tug.yaml".as_ref()).unwrap();
    let e = tug_api::server::run_until(FakeRuntime::new(), stack, async {})
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains(&format!("127.0.0.1:{port}")), "{e}");
    assert!(e.contains("change `dashboard.listen`"), "{e}");
    // Nothing left behind.
    let (socket, pid, _) = tug_engine::ops::agent_paths(&name);
    assert!(!socket.exists() && !pid.exists());
}
