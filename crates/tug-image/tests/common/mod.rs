//! Shared by the integration tests: the engine check and one static build of
//! examples/hello per test binary.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use tug_image::oci::{cargo_build_static, BuiltBinary, RustBuildOptions};

pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

pub fn hello_options() -> RustBuildOptions {
    let mut o = RustBuildOptions::new(workspace(), "hello");
    o.source_date_epoch = Some(1_700_000_000);
    o.port = Some(8080);
    o
}

/// The static hello binary, built once per test process and copied aside so
/// a test that rebuilds it never races a reader of cargo's output.
pub fn hello_binary() -> &'static BuiltBinary {
    static BIN: OnceLock<(tempfile::TempDir, BuiltBinary)> = OnceLock::new();
    &BIN.get_or_init(|| {
        let mut bin = cargo_build_static(&hello_options(), &|l| eprintln!("{l}"))
            .expect("static build of examples/hello");
        let dir = tempfile::tempdir().unwrap();
        let copy = dir.path().join(&bin.name);
        std::fs::copy(&bin.path, &copy).unwrap();
        bin.path = copy;
        (dir, bin)
    })
    .1
}

/// True when a Docker engine answers; false (with a loud note) when it does
/// not, unless TUG_REQUIRE_ENGINE=1 makes that a failure.
pub fn engine(test: &str) -> bool {
    let ok = Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        if std::env::var("TUG_REQUIRE_ENGINE").as_deref() == Ok("1") {
            panic!("{test}: no Docker engine answers and TUG_REQUIRE_ENGINE=1");
        }
        eprintln!("\n!!! SKIPPED {test}: no Docker engine answers (`docker info` failed); run scripts/engine.sh --registry\n");
    }
    ok
}

/// True when the registry on 127.0.0.1:5000 answers (same skip rules).
pub fn registry(test: &str) -> bool {
    if !engine(test) {
        return false;
    }
    let ok = std::net::TcpStream::connect("127.0.0.1:5000").is_ok();
    if !ok {
        if std::env::var("TUG_REQUIRE_ENGINE").as_deref() == Ok("1") {
            panic!("{test}: no registry on 127.0.0.1:5000 and TUG_REQUIRE_ENGINE=1");
        }
        eprintln!("\n!!! SKIPPED {test}: no registry on 127.0.0.1:5000; run scripts/engine.sh --registry\n");
    }
    ok
}

pub fn docker(args: &[&str]) -> std::process::Output {
    let out = Command::new("docker")
        .args(args)
        .output()
        .expect("run docker");
    out
}

pub fn docker_ok(args: &[&str]) -> String {
    let out = docker(args);
    assert!(
        out.status.success(),
        "docker {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A name no other test (or earlier run) uses.
pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}-{}-{}", std::process::id(), nanos % 1_000_000_000)
}

/// Runs the hello image with HELLO_EXIT=7: proves the binary starts in the
/// image as the app user and exits with the code it was asked for.
pub fn assert_hello_runs(image: &str) {
    let out = docker(&["run", "--rm", "-e", "HELLO_EXIT=7", image]);
    assert_eq!(
        out.status.code(),
        Some(7),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("exiting with 7"));
    let user = docker_ok(&["image", "inspect", "--format", "{{.Config.User}}", image]);
    assert_eq!(user, "10001:10001");
}
