//! `tug up`/`down`/`ps`/`logs` against the real engine, with examples/hello
//! built from source into a FROM-scratch image.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

fn tug() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tug"))
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// Skips (loudly) without an engine, unless TUG_REQUIRE_ENGINE=1.
fn engine() -> bool {
    let ok = Command::new("docker")
        .arg("info")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        if std::env::var("TUG_REQUIRE_ENGINE").is_ok_and(|v| v == "1") {
            panic!("TUG_REQUIRE_ENGINE=1 but no container engine answers `docker info`");
        }
        eprintln!("\n!!! SKIPPED: no container engine answers; run scripts/engine.sh\n");
    }
    ok
}

/// A stack in a temp dir, torn down (with volumes) when dropped, even on failure.
struct TestStack {
    name: String,
    dir: tempfile::TempDir,
}

impl TestStack {
    fn new(prefix: &str, services: &str) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "t{prefix}{}x{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        );
        let dir = tempfile::tempdir().unwrap();
        let s = TestStack { name, dir };
        s.write(services);
        s
    }

    fn write(&self, services: &str) {
        let yaml = format!(
            "name: {}\nservices:\n{}",
            self.name,
            services.replace("WORKSPACE", &workspace().display().to_string())
        );
        std::fs::write(self.file(), yaml).unwrap();
    }

    fn file(&self) -> PathBuf {
        self.dir.path().join("tug.yaml")
    }

    fn run(&self, args: &[&str]) -> Output {
        tug()
            .arg("-f")
            .arg(self.file())
            .args(args)
            .env("NO_COLOR", "1")
            .output()
            .unwrap()
    }

    fn ids(&self, service: &str) -> Vec<String> {
        let out = Command::new("docker")
            .args([
                "ps",
                "-aq",
                "--no-trunc",
                "--filter",
                &format!("label=dev.tug.stack={}", self.name),
            ])
            .args(["--filter", &format!("label=dev.tug.service={service}")])
            .output()
            .unwrap();
        let mut v: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(String::from)
            .collect();
        v.sort();
        v
    }
}

impl Drop for TestStack {
    fn drop(&mut self) {
        let _ = self.run(&["down", "--volumes"]);
        // Built images are tagged per stack; drop them with it.
        if let Ok(o) = Command::new("docker")
            .args([
                "images",
                "-q",
                "--filter",
                &format!("reference={}-*", self.name),
            ])
            .output()
        {
            let ids: Vec<String> = String::from_utf8_lossy(&o.stdout)
                .lines()
                .map(String::from)
                .collect();
            if !ids.is_empty() {
                let _ = Command::new("docker")
                    .arg("rmi")
                    .arg("-f")
                    .args(&ids)
                    .output();
            }
        }
    }
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

const HELLO: &str = "    build: { rust: { package: hello, workspace: WORKSPACE } }\n    port: 8080\n    health: { http: /health, interval: 200ms, timeout: 1s, retries: 3 }\n    stop_grace_period: 2s\n";

fn service(name: &str, extra: &str) -> String {
    format!("  {name}:\n{HELLO}{extra}")
}

#[test]
fn up_converges_is_idempotent_and_replaces_only_what_changed() {
    if !engine() {
        return;
    }
    let s = TestStack::new(
        "conv",
        &(service("web", "    replicas: 2\n")
            + &service("api", "    depends_on: { web: healthy }\n")),
    );
    let out = s.run(&["up"]);
    assert!(out.status.success(), "{}", text(&out));
    let (web, api) = (s.ids("web"), s.ids("api"));
    assert_eq!((web.len(), api.len()), (2, 1));

    // ps shows an endpoint per replica that answers.
    let ps = s.run(&["ps", "-o", "json"]);
    let rows: serde_json::Value = serde_json::from_slice(&ps.stdout).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 3);
    for r in rows {
        assert_eq!(r["state"], "running");
        assert_eq!(r["health"], "healthy");
        let endpoint = r["endpoint"].as_str().unwrap();
        let mut conn = std::net::TcpStream::connect(endpoint).unwrap();
        use std::io::{Read, Write};
        conn.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
        let mut body = String::new();
        conn.read_to_string(&mut body).unwrap();
        assert!(body.contains("hello from"), "{body}");
    }

    // Nothing changed: nothing touched.
    let out = s.run(&["up"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("up to date"),
        "{}",
        text(&out)
    );
    assert_eq!((s.ids("web"), s.ids("api")), (web.clone(), api.clone()));

    // One service changed: only its replicas are replaced.
    s.write(
        &(service("web", "    replicas: 2\n")
            + &service(
                "api",
                "    depends_on: { web: healthy }\n    env: { VERSION: '2' }\n",
            )),
    );
    let out = s.run(&["up"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(s.ids("web"), web);
    let new_api = s.ids("api");
    assert_eq!(new_api.len(), 1);
    assert_ne!(new_api, api);

    // Logs of every replica, prefixed.
    let logs = s.run(&["logs", "web", "--tail", "5"]);
    let l = String::from_utf8_lossy(&logs.stdout);
    assert!(
        l.contains("web-0 |") && l.contains("web-1 |") && l.contains("listening on :8080"),
        "{}",
        text(&logs)
    );

    let out = s.run(&["down"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(s.ids("web").is_empty() && s.ids("api").is_empty());
}

#[test]
fn containers_are_hardened() {
    if !engine() {
        return;
    }
    let s = TestStack::new("hard", &service("web", ""));
    let out = s.run(&["up"]);
    assert!(out.status.success(), "{}", text(&out));
    let id = &s.ids("web")[0];
    let fmt = "{{.HostConfig.ReadonlyRootfs}}|{{.HostConfig.CapDrop}}|{{.HostConfig.SecurityOpt}}|{{.HostConfig.PidsLimit}}|{{.HostConfig.Memory}}|{{.Config.User}}|{{index .HostConfig.Tmpfs \"/tmp\"}}|{{(index (index .NetworkSettings.Ports \"8080/tcp\") 0).HostIp}}";
    let o = Command::new("docker")
        .args(["inspect", "--format", fmt, id])
        .output()
        .unwrap();
    let got = String::from_utf8_lossy(&o.stdout).trim().to_string();
    assert_eq!(got, "true|[ALL]|[no-new-privileges:true]|256|536870912|10001:10001|rw,nosuid,nodev,size=64m|127.0.0.1");
}

#[test]
fn engine_unreachable_has_its_own_exit_code() {
    let s = TestStack::new("unreach", "  web:\n    image: x:1\n");
    let out = tug()
        .arg("-f")
        .arg(s.file())
        .arg("up")
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot reach the container engine at unix:///nonexistent/docker.sock: start Docker or Podman, or set DOCKER_HOST"), "{err}");
    // Keep Drop's `down` from talking to the real engine about this stack: nothing was created.
    std::mem::forget(s);
}

#[test]
fn health_that_never_passes_names_service_probe_and_logs() {
    if !engine() {
        return;
    }
    let s = TestStack::new(
        "sick",
        &service("web", "    env: { HELLO_UNHEALTHY: '1' }\n"),
    );
    let out = s.run(&["up"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("service `web` failed: replica 0 is unhealthy after 3 failed checks"),
        "{err}"
    );
    assert!(
        err.contains("last health probe: GET http://127.0.0.1:") && err.contains("/health: 503"),
        "{err}"
    );
    assert!(
        err.contains("listening on :8080"),
        "last logs missing: {err}"
    );
}

#[test]
fn replica_that_exits_at_once_is_reported_with_its_logs() {
    if !engine() {
        return;
    }
    let s = TestStack::new(
        "exit",
        &service("web", "    env: { HELLO_EXIT: '3' }\n    restart: no\n"),
    );
    let out = s.run(&["up"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("service `web` failed: replica 0 exited with code 3"),
        "{err}"
    );
    assert!(
        err.contains("exiting with 3 as asked by HELLO_EXIT"),
        "{err}"
    );
}

#[test]
fn host_port_in_use_is_reported() {
    if !engine() {
        return;
    }
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let s = TestStack::new("port", &service("web", &format!("    publish: {port}\n")));
    let out = s.run(&["up"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("service `web` failed")
            && err.contains(&format!("host port {port} is already in use")),
        "{err}"
    );
    drop(taken);
    // Once the port is free, the next `up` converges.
    let out = s.run(&["up"]);
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn missing_image_and_failing_build_name_service_and_image() {
    if !engine() {
        return;
    }
    let s = TestStack::new("img", "  web:\n    image: tug-test/not-here:0\n");
    let out = s.run(&["up"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "service `web`: image tug-test/not-here:0: not found locally and the pull failed"
        ),
        "{err}"
    );

    let b = TestStack::new("build", "  web:\n    build: { context: . }\n");
    std::fs::write(
        b.dir.path().join("Dockerfile"),
        "FROM scratch\nCOPY missing-file /x\n",
    )
    .unwrap();
    let out = b.run(&["up"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("service `web`: image") && err.contains("build failed"),
        "{err}"
    );
    assert!(
        err.contains("missing-file"),
        "the build error is shown: {err}"
    );
}

#[test]
fn sigkill_during_up_then_up_converges_without_duplicates() {
    if !engine() {
        return;
    }
    let s = TestStack::new("kill", &service("web", "    replicas: 3\n"));
    // Warm the image so the kills land in the container phase.
    assert!(s.run(&["up"]).status.success());
    assert!(s.run(&["down"]).status.success());
    for delay_ms in [150u64, 400, 700, 1000] {
        let mut child = tug()
            .arg("-f")
            .arg(s.file())
            .arg("up")
            .env("NO_COLOR", "1")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();
        let out = s.run(&["up"]);
        assert!(
            out.status.success(),
            "after kill at {delay_ms}ms: {}",
            text(&out)
        );
        let ids = s.ids("web");
        assert_eq!(ids.len(), 3, "after kill at {delay_ms}ms: {ids:?}");
        let ps = s.run(&["ps", "-o", "json"]);
        let rows: serde_json::Value = serde_json::from_slice(&ps.stdout).unwrap();
        let mut replicas: Vec<u64> = rows
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["replica"].as_u64().unwrap())
            .collect();
        replicas.sort();
        assert_eq!(replicas, vec![0, 1, 2]);
        assert!(rows
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["state"] == "running"));
        // Vary the starting point: sometimes from nothing, sometimes from a running stack.
        if delay_ms % 2 == 0 {
            assert!(s.run(&["down"]).status.success());
        }
    }
}

#[test]
fn down_leaves_foreign_containers_alone() {
    if !engine() {
        return;
    }
    let s = TestStack::new("foreign", &service("web", ""));
    assert!(s.run(&["up"]).status.success());
    // A container tug did not create, named like the stack's.
    let img = String::from_utf8_lossy(
        &Command::new("docker")
            .args(["inspect", "--format", "{{.Config.Image}}", &s.ids("web")[0]])
            .output()
            .unwrap()
            .stdout,
    )
    .trim()
    .to_string();
    let foreign = format!("{}-web-9-foreign", s.name);
    let o = Command::new("docker")
        .args(["create", "--name", &foreign, &img])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert!(s.run(&["down"]).status.success());
    let still = Command::new("docker")
        .args(["inspect", &foreign])
        .output()
        .unwrap();
    let _ = Command::new("docker").args(["rm", "-f", &foreign]).output();
    assert!(still.status.success(), "the foreign container was removed");
}
