//! The generated Dockerfile for examples/hello: lints clean, and builds and
//! runs on the engine from a local toolchain image.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use tug_image::generate::{rust_workspace, HealthTiming, Options};
use tug_image::lint::{lint, Config, ContextFacts, Severity};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn generated_dockerfile_for_hello_lints_clean() {
    let g = rust_workspace(&Options {
        dir: repo(),
        package: Some("hello".into()),
        ..Options::default()
    })
    .unwrap();
    let facts = ContextFacts {
        scanned: true,
        has_dockerignore: true,
        large: Some("it has a target/ directory".into()),
    };
    let report = lint(&g.dockerfile, &Config::default(), &facts);
    let loud: Vec<_> = report
        .findings
        .iter()
        .filter(|f| f.severity.at_least(Severity::Warning))
        .collect();
    assert!(loud.is_empty(), "{loud:#?}\n{}", g.dockerfile);
    // The stages the caching relies on are there.
    assert!(g.dockerfile.contains("FROM ${RUST_IMAGE} AS deps"));
    assert!(g.dockerfile.contains("FROM deps AS build"));
    assert!(g.dockerfile.contains("FROM scratch"));
}

fn engine_up() -> bool {
    let ok = Command::new("docker")
        .arg("info")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        if std::env::var("TUG_REQUIRE_ENGINE").as_deref() == Ok("1") {
            panic!("no container engine answers `docker info` and TUG_REQUIRE_ENGINE=1");
        }
        eprintln!("\n!!! SKIPPED: no container engine answers `docker info`; the generated Dockerfile was not built\n");
    }
    ok
}

fn run(cmd: &mut Command) -> String {
    let o = cmd.output().unwrap();
    assert!(
        o.status.success(),
        "{cmd:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

struct Cleanup(Vec<Vec<String>>);
impl Drop for Cleanup {
    fn drop(&mut self) {
        for args in &self.0 {
            let _ = Command::new("docker").args(args).output();
        }
    }
}

#[test]
fn generated_dockerfile_builds_and_runs_on_the_engine() {
    if !engine_up() {
        return;
    }
    let repo = repo();
    // A toolchain image made from this host's toolchain: nothing can be pulled here.
    let base = run(Command::new("bash").arg(repo.join("scripts/rust-toolchain-image.sh")));
    let base = base.lines().last().unwrap_or_default().to_string();

    // A one-member workspace holding examples/hello, so the context stays small.
    let ws = tempfile::tempdir().unwrap();
    std::fs::write(
        ws.path().join("Cargo.toml"),
        "[workspace]\nresolver = \"2\"\nmembers = [\"hello\"]\n\n[workspace.package]\nedition = \"2021\"\nlicense = \"Apache-2.0\"\n\n[workspace.lints.rust]\nunsafe_code = \"forbid\"\n",
    )
    .unwrap();
    std::fs::create_dir_all(ws.path().join("hello/src")).unwrap();
    for f in ["Cargo.toml", "src/main.rs"] {
        std::fs::copy(
            repo.join("examples/hello").join(f),
            ws.path().join("hello").join(f),
        )
        .unwrap();
    }
    run(Command::new("cargo")
        .args(["generate-lockfile", "--offline"])
        .current_dir(ws.path()));

    let g = rust_workspace(&Options {
        dir: ws.path().into(),
        package: Some("hello".into()),
        port: Some(8080),
        // hello's own probe: scratch has no shell or curl.
        health_cmd: Some(vec!["/hello".into(), "check".into()]),
        health_timing: Some(HealthTiming {
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            start_period: Duration::ZERO,
            retries: 3,
        }),
    })
    .unwrap();
    std::fs::write(ws.path().join("Dockerfile"), &g.dockerfile).unwrap();
    std::fs::write(ws.path().join(".dockerignore"), &g.dockerignore).unwrap();

    let tag = format!("tug-test/hello-generated:{}", std::process::id());
    let name = format!("tug-hello-generated-{}", std::process::id());
    let _cleanup = Cleanup(vec![
        vec!["rm".into(), "-f".into(), name.clone()],
        vec!["rmi".into(), "-f".into(), tag.clone()],
    ]);
    run(Command::new("docker")
        .env("DOCKER_BUILDKIT", "0")
        .args([
            "build",
            "-q",
            "--build-arg",
            &format!("RUST_IMAGE={base}"),
            "-t",
            &tag,
        ])
        .arg(ws.path()));

    let user =
        run(Command::new("docker").args(["image", "inspect", "-f", "{{.Config.User}}", &tag]));
    assert_eq!(user, "10001:10001");
    let title = run(Command::new("docker").args([
        "image",
        "inspect",
        "-f",
        "{{index .Config.Labels \"org.opencontainers.image.title\"}}",
        &tag,
    ]));
    assert_eq!(title, "hello");

    run(Command::new("docker").args(["run", "-d", "--name", &name, "-p", "127.0.0.1::8080", &tag]));
    let port = run(Command::new("docker").args(["port", &name, "8080/tcp"]));
    let addr = port.lines().next().unwrap_or_default().to_string();
    let mut answer = String::new();
    for _ in 0..50 {
        if let Ok(mut s) = std::net::TcpStream::connect(&addr) {
            use std::io::{Read, Write};
            let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
            let _ = s.write_all(b"GET /health HTTP/1.0\r\nHost: x\r\n\r\n");
            answer.clear();
            let _ = s.read_to_string(&mut answer);
            if answer.starts_with("HTTP/1.") {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        answer.contains("200 OK"),
        "GET /health on {addr}: {answer:?}"
    );
}
