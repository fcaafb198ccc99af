//! What only the process runtime does: processes outlive tug, statuses and
//! health are read back from the state dir, signals, logs, ports and mounts.

use futures_util::StreamExt;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};
use tug_runtime::process::ProcessRuntime;
use tug_runtime::*;

fn runtime() -> (tempfile::TempDir, ProcessRuntime) {
    let dir = tempfile::tempdir().unwrap();
    let rt = ProcessRuntime::new(dir.path().join("state"));
    (dir, rt)
}

fn sh(name: &str, script: &str) -> ContainerSpec {
    let mut spec = ContainerSpec::new(name, "/bin/sh");
    spec.command = Some(vec!["-c".into(), script.into()]);
    spec.stop_grace = Duration::from_secs(1);
    spec
}

/// Polls `inspect` until `done` holds (or 10 s pass) and returns the last info.
async fn until(
    rt: &ProcessRuntime,
    id: &str,
    done: impl Fn(&ContainerInfo) -> bool,
) -> ContainerInfo {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let info = rt.inspect_container(id).await.unwrap().unwrap();
        if done(&info) || Instant::now() > deadline {
            return info;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn lines(rt: &ProcessRuntime, id: &str, tail: Option<usize>) -> Vec<LogLine> {
    rt.logs(id, LogOptions::new(tail, false))
        .map(|l| l.unwrap())
        .collect()
        .await
}

fn out(text: &str) -> LogLine {
    LogLine {
        stream: LogStream::Stdout,
        text: text.into(),
        time: None,
    }
}

fn err(text: &str) -> LogLine {
    LogLine {
        stream: LogStream::Stderr,
        text: text.into(),
        time: None,
    }
}

/// Waits until the container printed `line` on stdout (its traps are set).
async fn ready(rt: &ProcessRuntime, id: &str, line: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !lines(rt, id, None).await.contains(&out(line)) {
        assert!(Instant::now() < deadline, "{id} never printed {line:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Gone or a zombie nobody reaped yet: either way no longer running.
fn gone(pid: &str) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(s) => s[s.rfind(')').unwrap() + 1..].trim_start().starts_with('Z'),
    }
}

#[tokio::test]
async fn a_process_outlives_its_runtime_value_and_is_seen_by_a_new_one() {
    let (dir, rt) = runtime();
    let pidfile = dir.path().join("pid");
    let mut spec = sh("keep", "echo $$ > \"$PIDFILE\"; exec /bin/sleep 120");
    spec.env
        .push(("PIDFILE".into(), pidfile.display().to_string()));
    spec.labels.insert(labels::STACK.into(), "keep".into());
    let id = rt.create_container(&spec).await.unwrap();
    rt.start_container(&id).await.unwrap();
    drop(rt);

    let rt = ProcessRuntime::new(dir.path().join("state"));
    let info = until(&rt, &id, |i| i.state == ContainerState::Running).await;
    assert_eq!(info.state, ContainerState::Running);
    let listed = rt.list_containers(&stack_filter("keep")).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].name, "keep");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !pidfile.exists() {
        assert!(Instant::now() < deadline, "the process never wrote its pid");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let pid = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .to_string();
    assert!(!gone(&pid), "the process died with its runtime value");
    // Started the same way by name as by id.
    rt.start_container("keep").await.unwrap();

    rt.remove_container(&id).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !gone(&pid) {
        assert!(Instant::now() < deadline, "remove left pid {pid} running");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(rt.inspect_container(&id).await.unwrap().is_none());
}

#[tokio::test]
async fn an_exit_code_is_observed_later_by_another_runtime_value() {
    let (dir, rt) = runtime();
    let id = rt.create_container(&sh("three", "exit 3")).await.unwrap();
    assert_eq!(
        rt.inspect_container(&id).await.unwrap().unwrap().exit_code,
        None
    );
    rt.start_container(&id).await.unwrap();
    let info = until(&rt, &id, |i| i.state == ContainerState::Exited).await;
    assert_eq!(
        (info.state, info.exit_code),
        (ContainerState::Exited, Some(3))
    );
    assert_eq!(info.host_port, None);

    let other = ProcessRuntime::new(dir.path().join("state"));
    let info = other.inspect_container("three").await.unwrap().unwrap();
    assert_eq!((info.id.as_str(), info.exit_code), (id.as_str(), Some(3)));
    let state: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("state/containers/three/state.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(state["exit_code"], 3, "{state}");

    // A start after the exit runs it again.
    other.start_container(&id).await.unwrap();
    let info = until(&other, &id, |i| i.state == ContainerState::Exited).await;
    assert_eq!(info.exit_code, Some(3));
}

#[tokio::test]
async fn stop_sends_term_first() {
    let (_dir, rt) = runtime();
    let id = rt
        .create_container(&sh(
            "graceful",
            "trap 'echo bye; exit 0' TERM; echo ready; /bin/sleep 120 & wait",
        ))
        .await
        .unwrap();
    rt.start_container(&id).await.unwrap();
    ready(&rt, &id, "ready").await;
    rt.stop_container(&id, Duration::from_secs(30))
        .await
        .unwrap();
    let info = rt.inspect_container(&id).await.unwrap().unwrap();
    assert_eq!(
        (info.state, info.exit_code),
        (ContainerState::Exited, Some(0))
    );
    assert!(lines(&rt, &id, None).await.contains(&out("bye")));
    rt.remove_container(&id).await.unwrap();
}

#[tokio::test]
async fn stop_kills_after_the_grace_period() {
    let (_dir, rt) = runtime();
    let id = rt
        .create_container(&sh(
            "stubborn",
            "trap '' TERM; echo ready; while :; do /bin/sleep 1; done",
        ))
        .await
        .unwrap();
    rt.start_container(&id).await.unwrap();
    ready(&rt, &id, "ready").await;
    rt.stop_container(&id, Duration::from_millis(300))
        .await
        .unwrap();
    let info = rt.inspect_container(&id).await.unwrap().unwrap();
    assert_eq!(
        (info.state, info.exit_code),
        (ContainerState::Exited, Some(137))
    );
    rt.remove_container(&id).await.unwrap();
}

fn check(test: &[&str], retries: u32, start_period: Duration) -> Option<ExecHealth> {
    Some(ExecHealth {
        test: test.iter().map(|s| s.to_string()).collect(),
        interval: Duration::from_millis(30),
        timeout: Duration::from_secs(2),
        retries,
        start_period,
    })
}

#[tokio::test]
async fn exec_health_turns_healthy() {
    let (_dir, rt) = runtime();
    let mut spec = sh("fine", "exec /bin/sleep 120");
    spec.port = Some(8080);
    spec.healthcheck = check(
        &["/bin/sh", "-c", "test \"$PORT\" -gt 0 && echo port $PORT"],
        2,
        Duration::ZERO,
    );
    let id = rt.create_container(&spec).await.unwrap();
    assert_eq!(
        rt.inspect_container(&id).await.unwrap().unwrap().health,
        EngineHealth::None
    );
    rt.start_container(&id).await.unwrap();
    let info = until(&rt, &id, |i| i.health == EngineHealth::Healthy).await;
    assert_eq!(info.health, EngineHealth::Healthy);
    let port = info.host_port.unwrap();
    assert_eq!(info.health_output, Some(format!("port {port}")));
    rt.remove_container(&id).await.unwrap();
}

#[tokio::test]
async fn exec_health_turns_unhealthy_after_retries() {
    let (_dir, rt) = runtime();
    let mut spec = sh("sick", "exec /bin/sleep 120");
    spec.healthcheck = check(&["/bin/sh", "-c", "echo nope; exit 1"], 2, Duration::ZERO);
    let id = rt.create_container(&spec).await.unwrap();
    rt.start_container(&id).await.unwrap();
    // One failure of two allowed.
    let first = rt.inspect_container(&id).await.unwrap().unwrap();
    assert_eq!(first.health, EngineHealth::Starting);
    let info = until(&rt, &id, |i| i.health == EngineHealth::Unhealthy).await;
    assert_eq!(info.health, EngineHealth::Unhealthy);
    assert_eq!(info.health_output.as_deref(), Some("nope"));
    rt.remove_container(&id).await.unwrap();
}

#[tokio::test]
async fn exec_health_failures_in_the_start_period_do_not_count() {
    let (_dir, rt) = runtime();
    let mut spec = sh("slow", "exec /bin/sleep 120");
    spec.healthcheck = check(&["/bin/false"], 1, Duration::from_secs(3600));
    let id = rt.create_container(&spec).await.unwrap();
    rt.start_container(&id).await.unwrap();
    for _ in 0..4 {
        let info = rt.inspect_container(&id).await.unwrap().unwrap();
        assert_eq!(info.health, EngineHealth::Starting, "{info:?}");
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    rt.remove_container(&id).await.unwrap();
}

#[tokio::test]
async fn exec_health_times_out() {
    let (_dir, rt) = runtime();
    let mut spec = sh("hung", "exec /bin/sleep 120");
    spec.healthcheck = Some(ExecHealth {
        test: vec!["/bin/sleep".into(), "30".into()],
        interval: Duration::from_millis(30),
        timeout: Duration::from_millis(100),
        retries: 1,
        start_period: Duration::ZERO,
    });
    let id = rt.create_container(&spec).await.unwrap();
    rt.start_container(&id).await.unwrap();
    let info = rt.inspect_container(&id).await.unwrap().unwrap();
    assert_eq!(info.health, EngineHealth::Unhealthy);
    assert!(
        info.health_output.as_deref().unwrap().contains("timed out"),
        "{info:?}"
    );
    rt.remove_container(&id).await.unwrap();
}

#[tokio::test]
async fn logs_by_stream_with_tail() {
    let (_dir, rt) = runtime();
    let id = rt
        .create_container(&sh(
            "talk",
            "echo one; echo two >&2; echo three; printf four",
        ))
        .await
        .unwrap();
    rt.start_container(&id).await.unwrap();
    until(&rt, &id, |i| i.state == ContainerState::Exited).await;
    assert_eq!(
        lines(&rt, &id, None).await,
        vec![out("one"), out("three"), out("four"), err("two")]
    );
    assert_eq!(
        lines(&rt, &id, Some(1)).await,
        vec![out("four"), err("two")]
    );
    assert!(matches!(
        rt.logs("nobody", LogOptions::default()).next().await,
        Some(Err(RuntimeError::NotFound(_)))
    ));
}

#[tokio::test]
async fn logs_follow_until_the_process_exits() {
    let (_dir, rt) = runtime();
    let id = rt
        .create_container(&sh(
            "stream",
            "echo a; /bin/sleep 0.3; echo b; echo c >&2; /bin/sleep 0.2",
        ))
        .await
        .unwrap();
    rt.start_container(&id).await.unwrap();
    let before = std::time::SystemTime::now();
    let all: Vec<LogLine> = tokio::time::timeout(
        Duration::from_secs(10),
        rt.logs(&id, LogOptions::new(None, true))
            .map(|l| l.unwrap())
            .collect(),
    )
    .await
    .expect("follow did not end after the process exited");
    // Lines written while following are stamped as they are read ("a" may
    // already be history, which has no time).
    assert!(
        all.iter()
            .filter(|l| l.text != "a")
            .all(|l| l.time.is_some_and(|t| t >= before)),
        "{all:?}"
    );
    let all: Vec<LogLine> = all
        .into_iter()
        .map(|l| LogLine { time: None, ..l })
        .collect();
    assert_eq!(all, vec![out("a"), out("b"), err("c")]);
    // The history has no times: a window cannot place it.
    let windowed = LogOptions {
        since: Some(before),
        ..Default::default()
    };
    assert!(rt.logs(&id, windowed).next().await.is_none());
}

fn get(port: u16, path: &str) -> std::io::Result<String> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
    let mut body = String::new();
    s.read_to_string(&mut body)?;
    Ok(body)
}

#[tokio::test]
async fn port_env_is_the_host_port_and_mounts_are_env_vars() {
    let busybox = "/bin/busybox";
    assert!(
        Path::new(busybox).exists(),
        "/bin/busybox is missing: install Debian's busybox-static (scripts/engine.sh does)"
    );
    let (dir, rt) = runtime();
    let www = dir.path().join("www");
    std::fs::create_dir(&www).unwrap();
    std::fs::write(www.join("index.html"), "hello from a process\n").unwrap();
    rt.create_volume("site_data", &BTreeMap::new(), None)
        .await
        .unwrap();
    let mut spec = sh(
        "web",
        "echo $TUG_VOLUME_SITE_DATA > \"$TUG_MOUNT_DATA/where\"; exec /bin/busybox httpd -f -p 127.0.0.1:$PORT -h \"$TUG_MOUNT_WWW\"",
    );
    spec.port = Some(8080);
    spec.env.push(("PORT".into(), "8080".into()));
    spec.mounts = vec![
        MountSpec {
            source: MountKind::Bind(www.clone()),
            target: "/www".into(),
            read_only: true,
        },
        MountSpec {
            source: MountKind::Volume("site_data".into()),
            target: "/data".into(),
            read_only: false,
        },
    ];
    let id = rt.create_container(&spec).await.unwrap();
    rt.start_container(&id).await.unwrap();
    let port = rt
        .inspect_container(&id)
        .await
        .unwrap()
        .unwrap()
        .host_port
        .unwrap();
    assert_ne!(port, 8080);
    let deadline = Instant::now() + Duration::from_secs(10);
    let body = loop {
        match get(port, "/index.html") {
            Ok(b) => break b,
            Err(e) => assert!(Instant::now() < deadline, "no answer on {port}: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(body.contains("hello from a process"), "{body}");
    let data = dir.path().join("state/volumes/site_data");
    assert_eq!(
        std::fs::read_to_string(data.join("where")).unwrap().trim(),
        data.display().to_string()
    );
    rt.remove_container(&id).await.unwrap();
    rt.remove_volume("site_data").await.unwrap();
    assert!(!data.exists());
}

#[tokio::test]
async fn images_are_local_executables_only() {
    let (dir, rt) = runtime();
    let script = dir.path().join("notes.txt");
    std::fs::write(&script, "not a program").unwrap();
    assert_eq!(
        rt.inspect_image(script.to_str().unwrap()).await.unwrap(),
        None
    );
    assert_eq!(rt.inspect_image("sleep").await.unwrap(), None);
    let a = rt.inspect_image("/bin/sleep").await.unwrap().unwrap();
    let b = rt.inspect_image("/bin/sh").await.unwrap().unwrap();
    assert_ne!(a.id, b.id);
    assert_eq!(a.user, "");
    for e in [
        rt.pull_image("nginx:1").await.unwrap_err(),
        rt.load_image(vec![]).await.unwrap_err(),
        rt.build_image(
            BuildRequest {
                tag: "app:1".into(),
                context_tar: vec![],
                dockerfile: "Dockerfile".into(),
                args: BTreeMap::new(),
                target: None,
                labels: BTreeMap::new(),
            },
            &|_| {},
        )
        .await
        .unwrap_err(),
    ] {
        let m = e.to_string();
        assert!(
            m.contains("local executables only") && m.contains("rust"),
            "{m}"
        );
    }
    assert!(rt.address().starts_with("process://"));
    rt.ping().await.unwrap();
    assert!(matches!(
        rt.start_container("nobody").await,
        Err(RuntimeError::NotFound(_))
    ));
}

#[tokio::test]
async fn concurrent_creates_of_one_name_make_one_container() {
    let (dir, _rt) = runtime();
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let rt = ProcessRuntime::new(dir.path().join("state"));
            tokio::spawn(async move { rt.create_container(&sh("once", "true")).await })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(RuntimeError::Conflict(_)) => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(ok, 1);
}

#[tokio::test]
async fn a_numeric_user_is_dropped_to_when_running_as_root() {
    if !rustix::process::geteuid().is_root() || !Path::new("/usr/bin/setpriv").exists() {
        eprintln!("\n!!! SKIPPED a_numeric_user_is_dropped_to_when_running_as_root: needs root and setpriv\n");
        return;
    }
    let (_dir, rt) = runtime();
    let mut spec = sh("nobody", "/usr/bin/id -u; /usr/bin/id -g");
    spec.user = Some("65534:65533".into());
    let id = rt.create_container(&spec).await.unwrap();
    rt.start_container(&id).await.unwrap();
    let info = until(&rt, &id, |i| i.state == ContainerState::Exited).await;
    let logs = lines(&rt, &id, None).await;
    assert_eq!(info.exit_code, Some(0), "{logs:?}");
    assert_eq!(logs, vec![out("65534"), out("65533")]);
}

#[tokio::test]
async fn stop_ends_what_the_program_left_behind() {
    let (dir, rt) = runtime();
    let pidfile = dir.path().join("orphan");
    let mut spec = sh("parent", "/bin/sleep 120 & echo $! > \"$F\"; exit 0");
    spec.env.push(("F".into(), pidfile.display().to_string()));
    let id = rt.create_container(&spec).await.unwrap();
    rt.start_container(&id).await.unwrap();
    let info = until(&rt, &id, |i| i.state == ContainerState::Exited).await;
    assert_eq!(info.exit_code, Some(0));
    let orphan = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .to_string();
    assert!(!gone(&orphan));
    rt.stop_container(&id, Duration::from_secs(1))
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !gone(&orphan) {
        assert!(Instant::now() < deadline, "pid {orphan} outlived the stop");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        rt.inspect_container(&id).await.unwrap().unwrap().exit_code,
        Some(0)
    );
}

fn fixture(args: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tug-runtime-fixture"))
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[tokio::test]
async fn state_is_shared_between_tug_processes() {
    let (dir, rt) = runtime();
    let state = dir.path().join("state");
    let s = state.to_str().unwrap();
    // Started by a process that has exited since.
    let id = fixture(&[s, "run", "shared", "/bin/sleep", "120"]);
    let info = rt.inspect_container("shared").await.unwrap().unwrap();
    assert_eq!(
        (info.id.as_str(), info.state),
        (id.as_str(), ContainerState::Running)
    );
    // Stopped here, observed there.
    rt.stop_container(&id, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(fixture(&[s, "inspect", "shared"]), "exited 143");
    rt.remove_container(&id).await.unwrap();
    assert_eq!(fixture(&[s, "inspect", "shared"]), "missing");
}
