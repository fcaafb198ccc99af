//! Helpers for tests that run the tug binary on a stack in a temp dir.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

pub fn tug() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tug"))
}

pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// Skips (loudly) without an engine, unless TUG_REQUIRE_ENGINE=1.
pub fn engine() -> bool {
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

/// The Podman API socket scripts/podman.sh set up (`TUG_PODMAN_HOST`), when
/// it answers; a loud skip otherwise, or with `TUG_REQUIRE_ENGINE=1` and the
/// variable set, a failure.
pub fn podman_host() -> Option<String> {
    let Some(host) = std::env::var("TUG_PODMAN_HOST")
        .ok()
        .filter(|h| !h.is_empty())
    else {
        eprintln!("\n!!! SKIPPED on Podman: TUG_PODMAN_HOST is not set; run `export TUG_PODMAN_HOST=$(bash scripts/podman.sh)`\n");
        return None;
    };
    let ok = Command::new("docker")
        .args(["-H", &host, "version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        if std::env::var("TUG_REQUIRE_ENGINE").is_ok_and(|v| v == "1") {
            panic!("TUG_REQUIRE_ENGINE=1 but Podman at {host} does not answer");
        }
        eprintln!("\n!!! SKIPPED on Podman: {host} does not answer; run scripts/podman.sh\n");
        return None;
    }
    Some(host)
}

/// A stack in a temp dir with its own state dir, torn down (with volumes)
/// when dropped, even on failure.
pub struct TestStack {
    pub name: String,
    pub dir: tempfile::TempDir,
    /// `--runtime` for every command, if any.
    pub runtime: Option<&'static str>,
    /// `DOCKER_HOST` for every command (and the docker CLI), if not the default.
    pub docker_host: Option<String>,
}

impl TestStack {
    pub fn new(prefix: &str, services: &str) -> Self {
        Self::on(None, prefix, services)
    }

    /// `runtime` is `docker`, `process`, or `podman` (the docker runtime on
    /// the socket `TUG_PODMAN_HOST` names).
    pub fn on(runtime: Option<&'static str>, prefix: &str, services: &str) -> Self {
        let (runtime, docker_host) = match runtime {
            Some("podman") => (Some("docker"), podman_host()),
            r => (r, None),
        };
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "t{prefix}{}x{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        );
        let dir = tempfile::tempdir().unwrap();
        let s = TestStack {
            name,
            dir,
            runtime,
            docker_host,
        };
        s.write(services);
        s
    }

    pub fn write(&self, services: &str) {
        let yaml = format!(
            "name: {}\nservices:\n{}",
            self.name,
            services.replace("WORKSPACE", &workspace().display().to_string())
        );
        std::fs::write(self.file(), yaml).unwrap();
    }

    pub fn file(&self) -> PathBuf {
        self.dir.path().join("tug.yaml")
    }

    pub fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// The pid of the stack's agent, from the file it writes when it starts.
    pub fn agent_pid(&self) -> u32 {
        let file = self.state().join(&self.name).join("agent.pid");
        let text = std::fs::read_to_string(&file)
            .unwrap_or_else(|e| panic!("reading {}: {e}", file.display()));
        text.trim()
            .parse()
            .unwrap_or_else(|e| panic!("{} holds {text:?}: {e}", file.display()))
    }

    /// The tug command for this stack, not yet run.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = tug();
        c.arg("-f").arg(self.file());
        if let Some(r) = self.runtime {
            c.args(["--runtime", r]);
        }
        c.args(args)
            .env("NO_COLOR", "1")
            .env("TUG_STATE_DIR", self.state());
        if let Some(h) = &self.docker_host {
            c.env("DOCKER_HOST", h);
        }
        c
    }

    /// The docker CLI, on this stack's engine.
    pub fn docker(&self) -> Command {
        let mut c = Command::new("docker");
        if let Some(h) = &self.docker_host {
            c.args(["-H", h]);
        }
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// `tug up -d`, which must succeed; its output is the failure message.
    pub fn up(&self) {
        let out = self.run(&["up", "-d"]);
        assert!(out.status.success(), "tug up -d: {}", text(&out));
    }

    /// Container ids of a service, read from the engine (docker runtime only).
    pub fn ids(&self, service: &str) -> Vec<String> {
        let out = self
            .docker()
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

    /// `tug ps -o json` rows.
    pub fn ps(&self) -> Vec<serde_json::Value> {
        let ps = self.run(&["ps", "-o", "json"]);
        serde_json::from_slice::<serde_json::Value>(&ps.stdout)
            .ok()
            .and_then(|v| v.as_array().cloned())
            .unwrap_or_default()
    }

    /// Replica ids as `tug ps` reports them, whatever the runtime.
    pub fn replica_ids(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .ps()
            .iter()
            .map(|r| r["id"].as_str().unwrap_or("").to_string())
            .collect();
        v.sort();
        v
    }
}

impl Drop for TestStack {
    fn drop(&mut self) {
        // A failed test shows what its agent saw (the state dir goes with it).
        if std::thread::panicking() {
            if let Ok(log) =
                std::fs::read_to_string(self.state().join(&self.name).join("agent.log"))
            {
                let lines: Vec<&str> = log.lines().collect();
                let tail = lines[lines.len().saturating_sub(60)..].join("\n");
                eprintln!("--- agent.log of {} (last 60 lines) ---\n{tail}", self.name);
            }
        }
        let _ = self.run(&["down", "--volumes"]);
        if self.runtime == Some("process") {
            return;
        }
        // Built images are tagged per stack; drop them with it.
        if let Ok(o) = self
            .docker()
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
                let _ = self.docker().arg("rmi").arg("-f").args(&ids).output();
            }
        }
    }
}

/// busybox-static as a one-binary image with no /tmp and no /etc (the
/// kind of scratch image tug builds), with the applets the tests use.
pub const BUSYBOX: &str = "tug-test/cli-busybox:1";

/// [`BUSYBOX`] with `USER 1000:1000`: a non-root image user.
pub const BUSYBOX_USER: &str = "tug-test/cli-busybox-user:1";

/// [`BUSYBOX`] with an /etc/passwd and /etc/group and `USER app`: a user
/// known by name only (`app` is 1001, its group 1002).
pub const BUSYBOX_NAMED: &str = "tug-test/cli-busybox-app:1";

/// Imports [`BUSYBOX`], [`BUSYBOX_USER`] and [`BUSYBOX_NAMED`] into the
/// engine at `host` (the default one when `None`) unless it has them.
pub fn busybox_images(host: Option<&str>) {
    let docker = || {
        let mut c = Command::new("docker");
        if let Some(h) = host {
            c.args(["-H", h]);
        }
        c
    };
    let images = [
        (BUSYBOX, None),
        (BUSYBOX_USER, Some("USER 1000:1000")),
        (BUSYBOX_NAMED, Some("USER app")),
    ];
    for (tag, change) in images {
        let have = docker()
            .args(["image", "inspect", tag])
            .output()
            .is_ok_and(|o| o.status.success());
        if have {
            continue;
        }
        let root = tempfile::tempdir().unwrap();
        let bin = root.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::copy("/bin/busybox", bin.join("busybox"))
            .expect("install busybox-static (scripts/engine.sh does)");
        let tools = [
            "sh", "cat", "echo", "sleep", "touch", "chown", "true", "httpd", "mkdir", "cp", "nc",
            "id", "ls", "stat", "timeout", "kill",
        ];
        for tool in tools {
            std::os::unix::fs::symlink("busybox", bin.join(tool)).unwrap();
        }
        if tag == BUSYBOX_NAMED {
            let etc = root.path().join("etc");
            std::fs::create_dir_all(&etc).unwrap();
            std::fs::write(
                etc.join("passwd"),
                "root:x:0:0:root:/:/bin/sh\napp:x:1001:1002::/:/bin/sh\n",
            )
            .unwrap();
            std::fs::write(
                etc.join("group"),
                "root:x:0:\napp:x:1002:\nreaders:x:3000:\n",
            )
            .unwrap();
        }
        let tar = Command::new("tar")
            .arg("-C")
            .arg(root.path())
            .args(["-c", "."])
            .output()
            .unwrap();
        assert!(tar.status.success(), "{}", text(&tar));
        let mut import = docker();
        import.arg("import");
        if let Some(c) = change {
            import.args(["--change", c]);
        }
        let mut child = import
            .args(["-", tag])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        use std::io::Write;
        child.stdin.take().unwrap().write_all(&tar.stdout).unwrap();
        assert!(
            child.wait().unwrap().success(),
            "docker import of {tag} failed"
        );
    }
}

/// check-jsonschema (installed by scripts/test.sh): `None` with a loud skip,
/// or a failure under `TUG_REQUIRE_ENGINE=1` (the test script's runs).
pub fn check_jsonschema() -> Option<PathBuf> {
    let home = PathBuf::from(std::env::var_os("HOME").unwrap_or_default());
    let found = [
        home.join(".local/bin/check-jsonschema"),
        PathBuf::from("check-jsonschema"),
    ]
    .into_iter()
    .find(|p| {
        Command::new(p)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    });
    if found.is_none() {
        if std::env::var("TUG_REQUIRE_ENGINE").is_ok_and(|v| v == "1") {
            panic!("check-jsonschema is missing (scripts/test.sh installs it)");
        }
        eprintln!(
            "\n!!! SKIPPED: check-jsonschema is not installed (scripts/test.sh installs it)\n"
        );
    }
    found
}

/// Validates the JSON document `doc` against `schema` (a path under
/// tests/data) with check-jsonschema; its report on failure.
pub fn validate_json(tool: &Path, schema: &str, doc: &[u8]) -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("doc.json");
    std::fs::write(&file, doc).unwrap();
    let schema = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(schema);
    // `$ref`s are resolved against the schema's `$id` unless the file is the base.
    let out = Command::new(tool)
        .arg("--base-uri")
        .arg(format!("file://{}", schema.display()))
        .arg("--schemafile")
        .arg(&schema)
        .arg(&file)
        .output()
        .unwrap();
    if out.status.success() {
        Ok(())
    } else {
        Err(text(&out))
    }
}

/// The image a container runs, as the default engine names it.
pub fn image_of(container: &str) -> String {
    let o = Command::new("docker")
        .args(["inspect", "--format", "{{.Config.Image}}", container])
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

pub fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

pub const HELLO: &str = "    build: { rust: { package: hello, workspace: WORKSPACE } }\n    port: 8080\n    health: { http: /health, interval: 200ms, timeout: 1s, retries: 3 }\n    stop_grace_period: 2s\n";

/// A hello service named `name`, with extra lines.
pub fn service(name: &str, extra: &str) -> String {
    format!("  {name}:\n{HELLO}{extra}")
}

pub fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..150 {
        if f() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    panic!("timed out waiting until {what}");
}

/// A port free on 127.0.0.1 and 0.0.0.0 right now, below the kernel's
/// ephemeral range: the engine and `bind(0)` hand out ports from that range,
/// so one of theirs cannot take this port before the test binds it.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let base = 20_000 + (std::process::id() as usize % 600) * 20;
    (0..12_000)
        .map(|_| (base + NEXT.fetch_add(1, Ordering::Relaxed)) % 12_000 + 20_000)
        .map(|p| p as u16)
        .find(|&p| {
            std::net::TcpListener::bind(("0.0.0.0", p)).is_ok()
                && std::net::TcpListener::bind(("127.0.0.1", p)).is_ok()
        })
        .expect("no free port below the ephemeral range")
}

/// GET `path` from `endpoint` (host:port); the whole response.
pub fn get(endpoint: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let Ok(mut c) = std::net::TcpStream::connect(endpoint) else {
        return String::new();
    };
    let _ = c.set_read_timeout(Some(std::time::Duration::from_secs(5)));
    let _ = c.write_all(format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes());
    let mut b = String::new();
    let _ = c.read_to_string(&mut b);
    b
}

pub mod project;
