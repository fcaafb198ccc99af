//! One contract, every Runtime: the fake and the process runtime must behave
//! like the engine. The engine tests run on Docker and, with `TUG_PODMAN_HOST`
//! (scripts/podman.sh), on Podman: `engines::docker::*`, `engines::podman::*`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::time::Duration;
use tug_runtime::fake::FakeRuntime;
use tug_runtime::process::ProcessRuntime;
use tug_runtime::testing::busybox_image;
use tug_runtime::*;

fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

/// A port free on 0.0.0.0 right now, below the kernel's ephemeral range:
/// the engine publishes replicas on ports from that range, so one started by
/// a test running alongside cannot take this one first.
fn free_port() -> u16 {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let base = 24_000 + (std::process::id() as usize % 400) * 20;
    (0..8_000)
        .map(|_| (base + NEXT.fetch_add(1, Ordering::Relaxed)) % 8_000 + 24_000)
        .map(|p| p as u16)
        .find(|&p| std::net::TcpListener::bind(("0.0.0.0", p)).is_ok())
        .expect("no free port below the ephemeral range")
}

/// What a runtime runs in the contract: an image and the command that keeps
/// it running (`None`: the image's own).
struct Fixture {
    image: String,
    command: Option<Vec<String>>,
    /// A health check command that succeeds.
    true_command: Vec<String>,
    /// The prefix that runs a shell script: `[sh, -c]`.
    shell: Vec<String>,
    /// Whether the runtime runs a [`ContainerSpec::healthcheck`] itself
    /// (Podman 4.3 schedules it through systemd only).
    engine_health: bool,
}

impl Fixture {
    fn sh(&self, script: &str) -> Vec<String> {
        let mut v = self.shell.clone();
        v.push(script.into());
        v
    }

    fn spec(&self, name: String) -> ContainerSpec {
        let mut spec = ContainerSpec::new(name, &self.image);
        spec.command = self.command.clone();
        spec
    }
}

fn process_fixture() -> Fixture {
    Fixture {
        image: "/bin/sleep".into(),
        command: Some(vec!["300".into()]),
        true_command: vec!["/bin/true".into()],
        shell: vec!["/bin/sh".into(), "-c".into()],
        engine_health: true,
    }
}

async fn contract<R: Runtime>(rt: &R, fx: &Fixture) {
    // Images: found with a content id; a missing one is None.
    let image = rt.inspect_image(&fx.image).await.unwrap().unwrap();
    assert!(image.id.starts_with("sha256:"), "{image:?}");
    assert_eq!(
        rt.inspect_image("tug-test/does-not-exist:0").await.unwrap(),
        None
    );

    let stack = unique("contract");
    let labels = BTreeMap::from([(labels::STACK.to_string(), stack.clone())]);
    let filter = stack_filter(&stack);
    let net = format!("{stack}-net");
    let vol = format!("{stack}-data");

    // Networks and volumes: idempotent create, found by label, idempotent remove.
    rt.create_network(&net, &labels).await.unwrap();
    rt.create_network(&net, &labels).await.unwrap();
    assert_eq!(rt.list_networks(&filter).await.unwrap(), vec![net.clone()]);
    rt.create_volume(&vol, &labels, None).await.unwrap();
    rt.create_volume(&vol, &labels, None).await.unwrap();
    assert_eq!(rt.list_volumes(&filter).await.unwrap(), vec![vol.clone()]);

    // A missing image is NotFound.
    let mut spec = ContainerSpec::new(format!("{stack}-missing"), "tug-test/does-not-exist:0");
    spec.labels = labels.clone();
    assert!(matches!(
        rt.create_container(&spec).await,
        Err(RuntimeError::NotFound(_))
    ));

    // Create: labelled, listed as created; the same name again is a conflict.
    let mut spec = fx.spec(format!("{stack}-a"));
    spec.labels = labels.clone();
    spec.labels.insert(labels::SERVICE.into(), "a".into());
    spec.port = Some(8080);
    spec.network = Some(net.clone());
    spec.mounts.push(MountSpec {
        source: MountKind::Volume(vol.clone()),
        target: "/data".into(),
        read_only: false,
    });
    spec.tmpfs.push("/tmp".into());
    spec.stop_grace = Duration::from_secs(1);
    let id = rt.create_container(&spec).await.unwrap();
    assert!(matches!(
        rt.create_container(&spec).await,
        Err(RuntimeError::Conflict(_))
    ));
    let listed = rt.list_containers(&filter).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, id);
    assert_eq!(listed[0].name, spec.name);
    assert_eq!(listed[0].state, ContainerState::Created);
    assert_eq!(listed[0].label(labels::SERVICE), Some("a"));

    // Start: running, published on an ephemeral host port.
    rt.start_container(&id).await.unwrap();
    let info = rt.inspect_container(&id).await.unwrap().unwrap();
    assert_eq!(info.state, ContainerState::Running);
    assert!(info.host_port.is_some_and(|p| p > 0), "{info:?}");
    // Stats: a running container has some; created, stopped or unknown ones none.
    assert!(rt.stats(&id).await.unwrap().is_some());

    // A fixed host port taken by a running container: PortInUse on start.
    let port = free_port();
    let mut p1 = fx.spec(format!("{stack}-p1"));
    p1.labels = labels.clone();
    p1.port = Some(8080);
    p1.publish = Some(port);
    p1.stop_grace = Duration::from_secs(1);
    let mut p2 = p1.clone();
    p2.name = format!("{stack}-p2");
    let id1 = rt.create_container(&p1).await.unwrap();
    rt.start_container(&id1).await.unwrap();
    let id2 = rt.create_container(&p2).await.unwrap();
    assert!(matches!(
        rt.start_container(&id2).await,
        Err(RuntimeError::PortInUse { .. })
    ));
    assert_eq!(
        rt.inspect_container(&id1).await.unwrap().unwrap().host_port,
        Some(port)
    );

    // Other stacks' containers are not listed.
    assert_eq!(
        rt.list_containers(&stack_filter(&unique("other")))
            .await
            .unwrap(),
        vec![]
    );

    // Stop, remove (twice), inspect unknown.
    rt.stop_container(&id, Duration::from_secs(1))
        .await
        .unwrap();
    rt.stop_container(&id, Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(
        rt.inspect_container(&id).await.unwrap().unwrap().state,
        ContainerState::Exited
    );
    assert_eq!(rt.stats(&id).await.unwrap(), None);
    assert_eq!(rt.stats(&id2).await.unwrap(), None);
    for c in [&id, &id1, &id2] {
        rt.remove_container(c).await.unwrap();
        rt.remove_container(c).await.unwrap();
    }
    assert!(rt.inspect_container(&id).await.unwrap().is_none());
    assert_eq!(rt.stats(&id).await.unwrap(), None);
    assert!(rt.list_containers(&filter).await.unwrap().is_empty());
    assert!(matches!(
        rt.start_container(&format!("{stack}-a")).await,
        Err(RuntimeError::NotFound(_))
    ));

    rt.remove_network(&net).await.unwrap();
    rt.remove_network(&net).await.unwrap();
    rt.remove_volume(&vol).await.unwrap();
    rt.remove_volume(&vol).await.unwrap();
    assert!(rt.list_networks(&filter).await.unwrap().is_empty());
    assert!(rt.list_volumes(&filter).await.unwrap().is_empty());
}

#[tokio::test]
async fn fake_runtime_keeps_the_contract() {
    let rt = FakeRuntime::new();
    rt.add_image("tug-test/busybox:1", "");
    let fx = Fixture {
        image: "tug-test/busybox:1".into(),
        command: None,
        true_command: vec!["true".into()],
        shell: vec!["sh".into(), "-c".into()],
        engine_health: true,
    };
    contract(&rt, &fx).await;
}

#[tokio::test]
async fn process_runtime_keeps_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let rt = ProcessRuntime::new(dir.path().to_path_buf());
    contract(&rt, &process_fixture()).await;
}

/// A fixed host port held by any listener (not a container) is PortInUse.
async fn port_held_by_a_listener<R: Runtime>(rt: &R, fx: &Fixture) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let stack = unique("listener");
    let mut spec = fx.spec(format!("{stack}-x"));
    spec.labels.insert(labels::STACK.into(), stack.clone());
    spec.port = Some(8080);
    spec.publish = Some(port);
    let id = rt.create_container(&spec).await.unwrap();
    let started = rt.start_container(&id).await;
    rt.remove_container(&id).await.unwrap();
    assert!(
        matches!(started, Err(RuntimeError::PortInUse { ref port, .. }) if *port == listener.local_addr().unwrap().port().to_string()),
        "{started:?}"
    );
}

#[tokio::test]
async fn process_port_held_by_a_listener() {
    let dir = tempfile::tempdir().unwrap();
    let rt = ProcessRuntime::new(dir.path().to_path_buf());
    port_held_by_a_listener(&rt, &process_fixture()).await;
}

/// Reads `events` until one satisfies `want`, for at most 30 s.
async fn expect_event(
    events: &mut futures_util::stream::BoxStream<'static, RuntimeEvent>,
    what: &str,
    mut want: impl FnMut(&ContainerEvent) -> bool,
) -> ContainerEvent {
    use futures_util::StreamExt;
    let mut seen = Vec::new();
    let found = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(e) = events.next().await {
            if let RuntimeEvent::Container(c) = &e {
                if want(c) {
                    return Some(c.clone());
                }
            }
            seen.push(e);
        }
        None
    })
    .await;
    match found {
        Ok(Some(e)) => e,
        _ => panic!("no {what} event; saw {seen:?}"),
    }
}

/// The event stream: started, health, died with its exit code, destroyed;
/// only the filter's containers. `exits_3` makes a spec exit with code 3
/// shortly after it starts.
async fn events_contract<R: Runtime>(rt: &R, fx: &Fixture, exits_3: impl Fn(&mut ContainerSpec)) {
    let stack = unique("events");
    let labels = BTreeMap::from([(labels::STACK.to_string(), stack.clone())]);
    let mut events = rt.events(&stack_filter(&stack));

    // Another stack's container: never reported.
    let mut other = fx.spec(format!("{}-x", unique("other")));
    other
        .labels
        .insert(labels::STACK.into(), unique("other-stack"));
    other.stop_grace = Duration::from_secs(1);
    let other_id = rt.create_container(&other).await.unwrap();
    rt.start_container(&other_id).await.unwrap();

    let mut spec = fx.spec(format!("{stack}-a"));
    spec.labels = labels.clone();
    spec.labels.insert(labels::SERVICE.into(), "a".into());
    spec.stop_grace = Duration::from_secs(1);
    spec.healthcheck = Some(ExecHealth {
        test: fx.true_command.clone(),
        interval: Duration::from_millis(200),
        timeout: Duration::from_secs(2),
        retries: 2,
        start_period: Duration::ZERO,
    });
    let id = rt.create_container(&spec).await.unwrap();
    rt.start_container(&id).await.unwrap();
    let started = expect_event(&mut events, "started", |e| {
        e.change == ContainerChange::Started
    })
    .await;
    assert_eq!(started.id, id);
    assert_eq!(started.name, spec.name);
    assert_eq!(started.label(labels::SERVICE), Some("a"));
    // Process health checks run when the container is looked at.
    let _ = rt.list_containers(&stack_filter(&stack)).await.unwrap();
    if fx.engine_health {
        expect_event(&mut events, "healthy", |e| {
            e.id == id
                && e.change
                    == ContainerChange::Health {
                        health: EngineHealth::Healthy,
                    }
        })
        .await;
    }

    let mut dying = fx.spec(format!("{stack}-b"));
    dying.labels = labels.clone();
    exits_3(&mut dying);
    let dying_id = rt.create_container(&dying).await.unwrap();
    rt.start_container(&dying_id).await.unwrap();
    let died = expect_event(&mut events, "died", |e| {
        e.id == dying_id && matches!(e.change, ContainerChange::Died { .. })
    })
    .await;
    assert_eq!(died.change, ContainerChange::Died { exit_code: Some(3) });

    rt.stop_container(&id, Duration::from_secs(1))
        .await
        .unwrap();
    expect_event(&mut events, "died (stopped)", |e| {
        e.id == id && matches!(e.change, ContainerChange::Died { .. })
    })
    .await;
    rt.remove_container(&id).await.unwrap();
    rt.remove_container(&dying_id).await.unwrap();
    rt.remove_container(&other_id).await.unwrap();
    let mut gone = Vec::new();
    while gone.len() < 2 {
        let e = expect_event(&mut events, "destroyed", |e| {
            e.change == ContainerChange::Destroyed
        })
        .await;
        assert_eq!(e.label(labels::STACK), Some(stack.as_str()));
        gone.push(e.id);
    }
    gone.sort();
    let mut want = vec![id, dying_id];
    want.sort();
    assert_eq!(gone, want);
}

#[tokio::test]
async fn fake_runtime_reports_events() {
    let rt = FakeRuntime::new();
    rt.add_image("tug-test/busybox:1", "");
    let fx = Fixture {
        image: "tug-test/busybox:1".into(),
        command: None,
        true_command: vec!["true".into()],
        shell: vec!["sh".into(), "-c".into()],
        engine_health: true,
    };
    let fake = rt.clone();
    events_contract(&rt, &fx, move |s| fake.exit_on_start(&s.name, 3)).await;
}

#[tokio::test]
async fn fake_runtime_reports_oom_and_interruptions() {
    use futures_util::StreamExt;
    let rt = FakeRuntime::new();
    rt.add_image("i", "");
    let mut events = rt.events(&stack_filter("s"));
    let mut spec = ContainerSpec::new("s-a", "i");
    spec.labels.insert(labels::STACK.into(), "s".into());
    let id = rt.create_container(&spec).await.unwrap();
    rt.start_container(&id).await.unwrap();
    rt.oom_kill(&id);
    rt.interrupt_events();
    let got: Vec<RuntimeEvent> = events.by_ref().take(5).collect().await;
    let changes: Vec<_> = got
        .iter()
        .map(|e| match e {
            RuntimeEvent::Container(c) => format!("{:?}", c.change),
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(
        changes,
        [
            "Started",
            "OomKilled",
            "Died { exit_code: Some(137) }",
            "Lost { reason: \"interrupted\" }",
            "Resumed"
        ]
    );
}

#[tokio::test]
async fn process_runtime_reports_events() {
    let dir = tempfile::tempdir().unwrap();
    let rt = ProcessRuntime::new(dir.path().to_path_buf());
    events_contract(&rt, &process_fixture(), |s| {
        s.image = "/bin/sh".into();
        s.command = Some(vec!["-c".into(), "sleep 0.3; exit 3".into()]);
    })
    .await;
}

/// `exec` runs a command in a running container, not through a shell: its
/// exit code and output, a timeout, a missing container.
async fn exec_contract<R: Runtime>(rt: &R, fx: &Fixture) {
    let stack = unique("exec");
    let mut spec = fx.spec(format!("{stack}-x"));
    spec.labels.insert(labels::STACK.into(), stack.clone());
    spec.env.push(("GREETING".into(), "hello there".into()));
    spec.stop_grace = Duration::from_secs(1);
    // copy_into needs a writable root (an engine refuses a read-only one).
    spec.read_only_root = false;
    let id = rt.create_container(&spec).await.unwrap();
    rt.start_container(&id).await.unwrap();
    let second = Duration::from_secs(5);

    let ok = rt.exec(&id, &fx.true_command, second).await.unwrap();
    assert_eq!(ok.exit_code, 0, "{ok:?}");
    let failed = rt
        .exec(
            &id,
            &fx.sh("echo out $GREETING; echo err >&2; exit 3"),
            second,
        )
        .await
        .unwrap();
    assert_eq!(failed.exit_code, 3, "{failed:?}");
    assert!(failed.output.contains("out hello there"), "{failed:?}");
    assert!(failed.output.contains("err"), "{failed:?}");
    // An argument with spaces stays one argument.
    let mut cmd = fx.sh("test \"$0\" = 'a b' || exit 9");
    cmd.push("a b".into());
    let spaced_arg = rt.exec(&id, &cmd, second).await.unwrap();
    assert_eq!(spaced_arg.exit_code, 0, "{spaced_arg:?}");
    // copy_into: unpacked into the replica (a process replica's root is its
    // working directory).
    let tar_of = |body: &[u8]| {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(body.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, "tug-copy/sub/f.txt", body).unwrap();
        b.into_inner().unwrap()
    };
    rt.copy_into(&id, "/", tar_of(b"copied-in\n"))
        .await
        .unwrap();
    let cat = rt
        .exec(
            &id,
            &fx.sh("cat /tug-copy/sub/f.txt 2>/dev/null || cat tug-copy/sub/f.txt"),
            second,
        )
        .await
        .unwrap();
    assert!(cat.output.contains("copied-in"), "{cat:?}");
    let slow = rt
        .exec(&id, &fx.sh("sleep 5"), Duration::from_millis(300))
        .await;
    assert!(
        matches!(slow, Err(RuntimeError::ExecTimeout { .. })),
        "{slow:?}"
    );

    rt.stop_container(&id, Duration::from_secs(1))
        .await
        .unwrap();
    assert!(rt.exec(&id, &fx.true_command, second).await.is_err());
    rt.remove_container(&id).await.unwrap();
    assert!(matches!(
        rt.exec(&id, &fx.true_command, second).await,
        Err(RuntimeError::NotFound(_))
    ));
    assert!(matches!(
        rt.copy_into(&id, "/", tar_of(b"x")).await,
        Err(RuntimeError::NotFound(_))
    ));
}

#[tokio::test]
async fn process_runtime_runs_exec() {
    let dir = tempfile::tempdir().unwrap();
    let rt = ProcessRuntime::new(dir.path().to_path_buf());
    exec_contract(&rt, &process_fixture()).await;
}

/// Tests that need a real engine, once per engine.
mod engines {
    use super::*;
    use futures_util::StreamExt;
    use tug_runtime::docker::DockerRuntime;

    pub async fn fixture(rt: &DockerRuntime) -> Fixture {
        Fixture {
            image: busybox_image(rt).await,
            command: None,
            true_command: vec!["/bin/busybox".into(), "true".into()],
            shell: vec!["/bin/busybox".into(), "sh".into(), "-c".into()],
            engine_health: rt.engine().name != "podman",
        }
    }

    pub async fn keeps_the_contract(rt: &DockerRuntime) {
        contract(rt, &fixture(rt).await).await;
    }

    pub async fn port_held_by_a_listener(rt: &DockerRuntime) {
        super::port_held_by_a_listener(rt, &fixture(rt).await).await;
    }

    pub async fn runs_exec(rt: &DockerRuntime) {
        exec_contract(rt, &fixture(rt).await).await;
    }

    pub async fn reports_events(rt: &DockerRuntime) {
        let fx = fixture(rt).await;
        let exits_3 = fx.sh("sleep 0.3; exit 3");
        events_contract(rt, &fx, |s| s.command = Some(exits_3.clone())).await;
    }

    /// A unix socket in front of the engine's that can cut the connection
    /// carrying the event stream, then holds new connections back for a
    /// second (the engine answers again afterwards).
    struct CuttingProxy {
        addr: String,
        cut: tokio::sync::watch::Sender<u32>,
        _dir: tempfile::TempDir,
    }

    impl CuttingProxy {
        fn start(engine: &str) -> CuttingProxy {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("engine.sock");
            let listener = tokio::net::UnixListener::bind(&path).unwrap();
            let (cut, cuts) = tokio::sync::watch::channel(0u32);
            let engine = engine.to_string();
            tokio::spawn(async move {
                loop {
                    let Ok((client, _)) = listener.accept().await else {
                        return;
                    };
                    let mut cuts = cuts.clone();
                    if *cuts.borrow() > 0 && cuts.has_changed().unwrap_or(false) {
                        cuts.borrow_and_update();
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                    cuts.borrow_and_update();
                    let engine = engine.clone();
                    tokio::spawn(Self::forward(client, engine, cuts));
                }
            });
            CuttingProxy {
                addr: format!("unix://{}", path.display()),
                cut,
                _dir: dir,
            }
        }

        async fn forward(
            client: tokio::net::UnixStream,
            engine: String,
            mut cuts: tokio::sync::watch::Receiver<u32>,
        ) {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let Ok(upstream) = tokio::net::UnixStream::connect(&engine).await else {
                return;
            };
            let (mut cr, mut cw) = client.into_split();
            let (mut ur, mut uw) = upstream.into_split();
            let events = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            let seen = events.clone();
            let up = async move {
                let mut buf = vec![0u8; 16 * 1024];
                loop {
                    let n = match cr.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    if buf[..n].windows(7).any(|w| w == b"/events") {
                        seen.store(true, Ordering::SeqCst);
                    }
                    if uw.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            };
            let down = async move {
                let _ = tokio::io::copy(&mut ur, &mut cw).await;
            };
            let cut = async move {
                while cuts.changed().await.is_ok() {
                    if events.load(Ordering::SeqCst) {
                        return;
                    }
                }
                std::future::pending::<()>().await
            };
            tokio::select! {
                _ = async { tokio::join!(up, down) } => {}
                _ = cut => {}
            }
        }

        fn cut(&self) {
            self.cut.send_modify(|n| *n += 1);
        }
    }

    /// An event stream the engine closes while it still answers is reopened
    /// where it left off: no `Lost` (the engine was never unreachable), and
    /// a container started while it was closed is still reported.
    pub async fn reopens_a_broken_event_stream(rt: &DockerRuntime) {
        let Some(socket) = rt.address().strip_prefix("unix://").map(String::from) else {
            return;
        };
        let fx = fixture(rt).await;
        let proxy = CuttingProxy::start(&socket);
        let watched = DockerRuntime::connect_to(&proxy.addr).await.unwrap();
        let stack = unique("reopen");
        let mut events = watched.events(&stack_filter(&stack));
        let spec = |name: &str| {
            let mut s = fx.spec(format!("{stack}-{name}"));
            s.labels.insert(labels::STACK.into(), stack.clone());
            s.stop_grace = Duration::from_secs(1);
            s
        };
        let a = rt.create_container(&spec("a")).await.unwrap();
        rt.start_container(&a).await.unwrap();
        expect_event(&mut events, "a started", |e| {
            e.id == a && e.change == ContainerChange::Started
        })
        .await;

        proxy.cut();
        let b = rt.create_container(&spec("b")).await.unwrap();
        rt.start_container(&b).await.unwrap();
        let mut lost = Vec::new();
        let mut reopened = false;
        let mut again = Vec::new();
        let found = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(e) = events.next().await {
                match e {
                    RuntimeEvent::Container(c)
                        if c.id == b && c.change == ContainerChange::Started =>
                    {
                        return true;
                    }
                    RuntimeEvent::Container(c) if c.id == a => again.push(c.change),
                    RuntimeEvent::Container(_) => {}
                    RuntimeEvent::Reopened => reopened = true,
                    other => lost.push(other),
                }
            }
            false
        })
        .await;
        for id in [&a, &b] {
            let _ = rt.remove_container(id).await;
        }
        assert_eq!(found, Ok(true), "b's start was not reported; saw {lost:?}");
        assert!(lost.is_empty(), "the engine answered throughout: {lost:?}");
        assert!(reopened, "the watcher is told to look again");
        assert!(again.is_empty(), "a's events came twice: {again:?}");
    }

    /// Names the engine and its version.
    pub async fn names_the_engine(rt: &DockerRuntime) {
        let e = rt.engine();
        let want = if rt.address().contains("podman") {
            "podman"
        } else {
            "docker"
        };
        assert_eq!(e.name, want, "{e:?}");
        assert!(
            e.version.chars().next().is_some_and(|c| c.is_ascii_digit()),
            "{e:?}"
        );
        assert!(e.api_version.is_some(), "{e:?}");
    }

    async fn lines(rt: &DockerRuntime, id: &str, tail: Option<usize>) -> Vec<LogLine> {
        window(rt, id, LogOptions::new(tail, false)).await
    }

    /// The lines in a window, each checked to carry the engine's time, then
    /// without it (for comparison).
    async fn window(rt: &DockerRuntime, id: &str, opts: LogOptions) -> Vec<LogLine> {
        rt.logs(id, opts)
            .map(|l| untimed(l.unwrap()))
            .collect()
            .await
    }

    fn untimed(mut l: LogLine) -> LogLine {
        assert!(l.time.is_some(), "no time on {l:?}");
        l.time = None;
        l
    }

    fn out(text: &str) -> LogLine {
        LogLine {
            stream: LogStream::Stdout,
            text: text.into(),
            time: None,
        }
    }

    /// Logs are whole lines per stream, whatever the writes: a partial write
    /// is joined with the rest of its line; `tail` counts lines.
    pub async fn logs_are_lines(rt: &DockerRuntime) {
        let fx = fixture(rt).await;
        let stack = unique("logs");
        let mut spec = fx.spec(format!("{stack}-x"));
        spec.labels.insert(labels::STACK.into(), stack.clone());
        spec.command = Some(fx.sh(
            "printf abc; sleep 0.3; printf 'def\\nxyz\\n'; sleep 0.2; echo e1 >&2; printf par; \
             echo tial >&2; sleep 0.2; echo t; exec /bin/busybox sleep 30",
        ));
        spec.stop_grace = Duration::from_secs(1);
        let id = rt.create_container(&spec).await.unwrap();
        rt.start_container(&id).await.unwrap();
        let want = vec![
            out("abcdef"),
            out("xyz"),
            LogLine {
                stream: LogStream::Stderr,
                text: "e1".into(),
                time: None,
            },
            LogLine {
                stream: LogStream::Stderr,
                text: "tial".into(),
                time: None,
            },
            out("part"),
        ];
        let mut all = Vec::new();
        for _ in 0..50 {
            all = lines(rt, &id, None).await;
            if all == want {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let tail2 = lines(rt, &id, Some(2)).await;
        let tail4 = lines(rt, &id, Some(4)).await;
        let tail0 = lines(rt, &id, Some(0)).await;
        // Windows by the engine's times: a line takes the time its first
        // write was made ("part" began before "tial").
        let timed: Vec<LogLine> = rt
            .logs(&id, LogOptions::new(None, false))
            .map(|l| l.unwrap())
            .collect()
            .await;
        let times: Vec<_> = timed.iter().map(|l| l.time.unwrap()).collect();
        // An engine that reads two writes at once stamps them alike: such
        // lines fall on the same side of a bound.
        let before = |t| {
            timed
                .iter()
                .filter(|l| l.time.unwrap() < t)
                .cloned()
                .map(untimed)
                .collect::<Vec<_>>()
        };
        let first_time = times[0];
        let last_time = *times.last().unwrap();
        let until_last = window(
            rt,
            &id,
            LogOptions {
                until: Some(last_time),
                ..Default::default()
            },
        )
        .await;
        let since_last = window(
            rt,
            &id,
            LogOptions {
                since: Some(last_time),
                ..Default::default()
            },
        )
        .await;
        let before_all = window(
            rt,
            &id,
            LogOptions {
                until: Some(first_time),
                ..Default::default()
            },
        )
        .await;

        // Follow with a tail: the last line so far, then what comes next.
        let mut follow = rt.logs(&id, LogOptions::new(Some(1), true));
        let first = tokio::time::timeout(Duration::from_secs(10), follow.next()).await;
        rt.exec(
            &id,
            &fx.sh("echo later > /proc/1/fd/1"),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
        let second = tokio::time::timeout(Duration::from_secs(10), follow.next()).await;
        drop(follow);
        rt.remove_container(&id).await.unwrap();

        assert_eq!(all, want);
        assert_eq!(tail2, want[3..]);
        assert_eq!(tail4, want[1..]);
        assert_eq!(tail0, vec![]);
        assert_eq!(since_last.last(), want.last(), "{since_last:?}");
        assert!(!until_last.contains(&out("part")), "{until_last:?}");
        assert_eq!(until_last, before(last_time));
        assert_eq!(before_all, vec![]);
        assert_eq!(untimed(first.unwrap().unwrap().unwrap()), out("part"));
        assert_eq!(untimed(second.unwrap().unwrap().unwrap()), out("later"));
    }

    /// The kernel's OOM killer: `OomKilled`, then `Died` with 137. Podman
    /// 4.3 on a cgroup v1 host reports no OOM (no `oom` event, `OOMKilled`
    /// false): there only the death is checked.
    pub async fn reports_oom_kills(rt: &DockerRuntime) {
        let image = busybox_image(rt).await;
        let stack = unique("oom");
        let mut events = rt.events(&stack_filter(&stack));
        let mut spec = ContainerSpec::new(format!("{stack}-x"), &image);
        spec.labels.insert(labels::STACK.into(), stack.clone());
        spec.memory = Some(16 * 1024 * 1024);
        // A string that doubles until the memory limit is hit.
        spec.command = Some(vec![
            "/bin/busybox".into(),
            "sh".into(),
            "-c".into(),
            "a=xxxxxxxxxxxxxxxx; while :; do a=$a$a; done".into(),
        ]);
        let id = rt.create_container(&spec).await.unwrap();
        rt.start_container(&id).await.unwrap();
        let mut oom = None;
        let died = expect_event(&mut events, "died", |e| {
            if e.id == id && e.change == ContainerChange::OomKilled {
                oom = Some(e.name.clone());
            }
            e.id == id && matches!(e.change, ContainerChange::Died { .. })
        })
        .await;
        if rt.engine().name != "podman" {
            match oom {
                Some(name) => assert_eq!(name, spec.name),
                None => {
                    // Docker on a loaded cgroup v1 host now and then drops
                    // the `oom` event; its inspect still must say so.
                    let out = std::process::Command::new("docker")
                        .args(["inspect", "-f", "{{.State.OOMKilled}}", &id])
                        .output()
                        .unwrap();
                    assert_eq!(
                        String::from_utf8_lossy(&out.stdout).trim(),
                        "true",
                        "no oom event and inspect does not say OOMKilled"
                    );
                    eprintln!("the engine sent no oom event; inspect says OOMKilled");
                }
            }
        }
        rt.remove_container(&id).await.unwrap();
        assert_eq!(
            died.change,
            ContainerChange::Died {
                exit_code: Some(137)
            }
        );
    }

    /// A probe that outlives its timeout is killed with its children, not
    /// left running in the container.
    pub async fn exec_timeout_kills_the_probe(rt: &DockerRuntime) {
        let fx = fixture(rt).await;
        let stack = unique("exectimeout");
        let mut spec = fx.spec(format!("{stack}-x"));
        spec.labels.insert(labels::STACK.into(), stack.clone());
        spec.stop_grace = Duration::from_secs(1);
        let id = rt.create_container(&spec).await.unwrap();
        rt.start_container(&id).await.unwrap();
        let slow = rt
            .exec(
                &id,
                &fx.sh("sleep 47 & sleep 46; echo never"),
                Duration::from_millis(300),
            )
            .await;
        assert!(
            matches!(slow, Err(RuntimeError::ExecTimeout { .. })),
            "{slow:?}"
        );
        let ps = rt
            .exec(&id, &fx.sh("ps -o args"), Duration::from_secs(5))
            .await
            .unwrap();
        assert!(
            !ps.output.contains("sleep 4"),
            "left running on {}:\n{}",
            rt.engine(),
            ps.output
        );
        rt.stop_container(&id, Duration::from_secs(1))
            .await
            .unwrap();
        rt.remove_container(&id).await.unwrap();
    }

    /// A new volume and written files belong to the owner asked for, so a
    /// non-root container writes the one and reads the others.
    pub async fn owns_volumes_and_files(rt: &DockerRuntime) {
        let fx = fixture(rt).await;
        let stack = unique("owner");
        let owner = Owner {
            uid: 4321,
            gid: 4322,
            image: fx.image.clone(),
            stack: stack.clone(),
        };
        let vol = format!("{stack}-data");
        let labels = BTreeMap::from([(labels::STACK.to_string(), stack.clone())]);
        rt.create_volume(&vol, &labels, Some(&owner)).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let files = [
            FileSpec {
                name: "key".into(),
                content: b"s3cret\n".to_vec(),
                mode: 0o400,
            },
            FileSpec {
                name: "conf".into(),
                content: b"a=1\n".to_vec(),
                mode: 0o444,
            },
        ];
        rt.write_files(dir.path(), &files, &owner).await.unwrap();
        // Written twice: replaced, not refused.
        rt.write_files(dir.path(), &files, &owner).await.unwrap();

        let mut spec = fx.spec(format!("{stack}-a"));
        spec.labels = labels.clone();
        spec.user = Some("4321:4322".into());
        spec.mounts = ["key", "conf"]
            .iter()
            .map(|f| MountSpec {
                source: MountKind::Bind(dir.path().join(f)),
                target: format!("/run/{f}"),
                read_only: true,
            })
            .chain([MountSpec {
                source: MountKind::Volume(vol.clone()),
                target: "/data".into(),
                read_only: false,
            }])
            .collect();
        spec.stop_grace = Duration::from_secs(1);
        let id = rt.create_container(&spec).await.unwrap();
        rt.start_container(&id).await.unwrap();
        let got = rt
            .exec(
                &id,
                &fx.sh("stat -c '%u:%g %a' /data /run/key /run/conf && echo w > /data/f && cat /data/f /run/key /run/conf"),
                Duration::from_secs(5),
            )
            .await
            .unwrap();
        assert_eq!(
            (got.exit_code, got.output.as_str()),
            (
                0,
                "4321:4322 755\n4321:4322 400\n4321:4322 444\nw\ns3cret\na=1"
            ),
            "on {}",
            rt.engine()
        );
        rt.stop_container(&id, Duration::from_secs(1))
            .await
            .unwrap();
        rt.remove_container(&id).await.unwrap();
        rt.remove_volume(&vol).await.unwrap();
    }

    /// An image's files are read without running it (a user name is
    /// resolved from its /etc/passwd), and no helper is left behind.
    pub async fn reads_image_files(rt: &DockerRuntime) {
        let tag = "tug-test/busybox-passwd:1";
        if rt.inspect_image(tag).await.unwrap().is_none() {
            let busybox = std::fs::read("/bin/busybox").unwrap();
            let context = tug_runtime::testing::tar_of(&[
                (
                    "Dockerfile",
                    0o644,
                    b"FROM scratch\nCOPY busybox /bin/busybox\nCOPY passwd group /etc/\nUSER app\n",
                ),
                ("busybox", 0o755, &busybox),
                (
                    "passwd",
                    0o644,
                    b"root:x:0:0::/:/bin/sh\napp:x:1001:1002::/:/bin/sh\n",
                ),
                (
                    "group",
                    0o644,
                    b"root:x:0:\napp:x:1002:\nextra:x:1003:app\n",
                ),
            ]);
            let req = BuildRequest {
                tag: tag.into(),
                context_tar: context,
                dockerfile: "Dockerfile".into(),
                args: BTreeMap::new(),
                target: None,
                labels: BTreeMap::new(),
            };
            rt.build_image(req, &|_| {}).await.unwrap();
        }
        let stack = unique("files");
        let got = rt
            .read_image_files(tag, &["/etc/passwd", "/etc/group", "/etc/shadow"], &stack)
            .await
            .unwrap();
        assert_eq!(
            got.keys().collect::<Vec<_>>(),
            ["/etc/group", "/etc/passwd"],
            "on {}",
            rt.engine()
        );
        assert!(String::from_utf8_lossy(&got["/etc/passwd"]).contains("app:x:1001:1002"));
        assert!(helpers(rt, &stack).await.is_empty());
        let err = rt
            .read_image_files("tug-test/no-such-image:1", &["/etc/passwd"], &stack)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("no-such-image"), "{err}");
    }

    /// Names of the helper containers labelled for `stack`.
    async fn helpers(rt: &DockerRuntime, stack: &str) -> Vec<String> {
        let filters = std::collections::HashMap::from([(
            "label".to_string(),
            vec![format!("{}={stack}", labels::HELPER_OF)],
        )]);
        let opts = bollard::query_parameters::ListContainersOptionsBuilder::default()
            .all(true)
            .filters(&filters)
            .build();
        let mut names: Vec<String> = rt
            .client()
            .list_containers(Some(opts))
            .await
            .unwrap()
            .into_iter()
            .flat_map(|c| c.names.unwrap_or_default())
            .map(|n| n.trim_start_matches('/').to_string())
            .collect();
        names.sort();
        names
    }

    /// A helper a killed tug left behind is swept with its stack; one of a
    /// live tug, one of another stack and a foreign container are kept.
    pub async fn sweeps_left_helpers(rt: &DockerRuntime) {
        let image = busybox_image(rt).await;
        let stack = unique("sweep");
        let other = unique("sweep-other");
        // A pid no process has.
        let dead = (100_000..4_000_000u32)
            .rev()
            .find(|p| !std::path::Path::new(&format!("/proc/{p}")).exists())
            .unwrap();
        let n = std::process::id();
        let make = async |name: String, label: Option<&str>| {
            let body = bollard::models::ContainerCreateBody {
                image: Some(image.clone()),
                cmd: Some(vec!["/bin/busybox".into(), "true".into()]),
                labels: label.map(|s| {
                    std::collections::HashMap::from([(
                        labels::HELPER_OF.to_string(),
                        s.to_string(),
                    )])
                }),
                ..Default::default()
            };
            let opts = bollard::query_parameters::CreateContainerOptionsBuilder::default()
                .name(&name)
                .build();
            rt.client()
                .create_container(Some(opts), body)
                .await
                .unwrap();
            name
        };
        let left = make(format!("tug-helper-{dead}-{n}"), Some(&stack)).await;
        let live = make(format!("tug-helper-{n}-{n}"), Some(&stack)).await;
        let foreign_stack = make(format!("tug-helper-{dead}-{}", n + 1), Some(&other)).await;
        let unlabelled = make(format!("tug-helper-{dead}-{}", n + 2), None).await;
        let swept = rt.sweep_helpers(&stack).await.unwrap();
        assert_eq!(swept, std::slice::from_ref(&left), "on {}", rt.engine());
        assert_eq!(helpers(rt, &stack).await, std::slice::from_ref(&live));
        assert_eq!(
            helpers(rt, &other).await,
            std::slice::from_ref(&foreign_stack)
        );
        for c in [live, foreign_stack, unlabelled] {
            rt.remove_container(&c).await.unwrap();
        }
    }

    /// CPU time grows while a container burns CPU.
    pub async fn counts_cpu(rt: &DockerRuntime) {
        let image = busybox_image(rt).await;
        let burn = vec![
            "/bin/busybox".into(),
            "sh".into(),
            "-c".into(),
            "while :; do :; done".into(),
        ];
        cpu_contract(rt, &image, burn).await;
    }

    macro_rules! on_engine {
        ($engine:ident, $connect:path, $($test:ident),*) => {
            mod $engine {
                $(
                    #[tokio::test]
                    async fn $test() {
                        let name = concat!(stringify!($engine), "::", stringify!($test));
                        if let Some(rt) = $connect(name).await {
                            super::$test(&rt).await;
                        }
                    }
                )*
            }
        };
    }

    macro_rules! on_engines {
        ($($test:ident),*) => {
            on_engine!(docker, tug_runtime::testing::engine_or_skip, $($test),*);
            on_engine!(podman, tug_runtime::testing::podman_or_skip, $($test),*);
        };
    }

    on_engines!(
        keeps_the_contract,
        port_held_by_a_listener,
        runs_exec,
        reports_events,
        reopens_a_broken_event_stream,
        names_the_engine,
        logs_are_lines,
        reports_oom_kills,
        counts_cpu,
        owns_volumes_and_files,
        reads_image_files,
        sweeps_left_helpers,
        exec_timeout_kills_the_probe
    );
}

/// CPU time grows while a replica burns CPU, on every runtime that runs one.
async fn cpu_contract<R: Runtime>(rt: &R, image: &str, burn: Vec<String>) {
    let stack = unique("cpu");
    let mut spec = ContainerSpec::new(format!("{stack}-burn"), image);
    spec.labels = BTreeMap::from([(labels::STACK.to_string(), stack.clone())]);
    spec.command = Some(burn);
    spec.stop_grace = Duration::from_secs(1);
    let id = rt.create_container(&spec).await.unwrap();
    rt.start_container(&id).await.unwrap();
    let first = rt
        .stats(&id)
        .await
        .unwrap()
        .expect("stats of a running container");
    let mut later = first;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        later = rt.stats(&id).await.unwrap().expect("still running");
        if later.cpu_ns > first.cpu_ns {
            break;
        }
    }
    rt.remove_container(&id).await.unwrap();
    assert!(later.cpu_ns > first.cpu_ns, "{first:?} then {later:?}");
    assert!(later.memory.is_some_and(|m| m > 0), "{later:?}");
    if rt.kind() == tug_runtime::RuntimeKind::Process {
        // Its own I/O counters, but the host's network.
        assert!(
            later.disk_read.is_some() && later.disk_write.is_some(),
            "{later:?}"
        );
        assert_eq!((later.net_rx, later.net_tx), (None, None));
    }
}

#[tokio::test]
async fn process_runtime_counts_cpu() {
    let dir = tempfile::tempdir().unwrap();
    let rt = ProcessRuntime::new(dir.path().to_path_buf());
    let burn = vec!["-c".into(), "while :; do :; done".into()];
    cpu_contract(&rt, "/bin/sh", burn).await;
}
