//! `tug dockerfile` through the built binary.

use std::path::Path;
use std::process::{Command, Output};

fn tug(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tug"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

fn workspace(dir: &Path) {
    let w = |rel: &str, text: &str| {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    w("Cargo.toml", "[workspace]\nmembers = [\"svc\", \"lib\"]\n");
    w("Cargo.lock", "version = 4\n");
    w(
        "svc/Cargo.toml",
        "[package]\nname = \"svc\"\nversion = \"0.3.0\"\nedition = \"2021\"\n",
    );
    w("svc/src/main.rs", "fn main() {}\n");
    w(
        "lib/Cargo.toml",
        "[package]\nname = \"lib\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
    );
    w("lib/src/lib.rs", "");
}

#[test]
fn writes_dockerfile_and_dockerignore_and_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    workspace(dir.path());
    let o = tug(dir.path(), &["dockerfile"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let df = std::fs::read_to_string(dir.path().join("Dockerfile")).unwrap();
    assert!(
        df.contains("-p svc --bin svc") && df.contains("USER 10001:10001"),
        "{df}"
    );
    assert!(std::fs::read_to_string(dir.path().join(".dockerignore"))
        .unwrap()
        .contains("target"));
    // The result lints clean at warning level.
    let lint = tug(dir.path(), &["lint", "--failure-threshold", "warning"]);
    assert!(
        lint.status.success(),
        "{}",
        String::from_utf8_lossy(&lint.stdout)
    );

    let again = tug(dir.path(), &["dockerfile"]);
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));
    assert!(tug(dir.path(), &["dockerfile", "--force"]).status.success());
}

#[test]
fn healthcheck_from_flag_or_exec_health_in_tug_yaml() {
    let dir = tempfile::tempdir().unwrap();
    workspace(dir.path());
    let o = tug(
        dir.path(),
        &["dockerfile", "--out", "-", "--health-cmd", "/svc --health"],
    );
    let s = String::from_utf8_lossy(&o.stdout);
    assert!(s.contains("HEALTHCHECK CMD [\"/svc\",\"--health\"]"), "{s}");
    assert!(!dir.path().join("Dockerfile").exists());

    std::fs::write(
        dir.path().join("svc/tug.yaml"),
        "name: t\nservices:\n  svc:\n    build: { rust: { package: svc } }\n    port: 9000\n    health: { exec: [/svc, --check], interval: 5s }\n",
    )
    .unwrap();
    let s = String::from_utf8_lossy(&tug(dir.path(), &["dockerfile", "--out", "-"]).stdout)
        .into_owned();
    assert!(s.contains("EXPOSE 9000"), "{s}");
    assert!(
        s.contains("HEALTHCHECK --interval=5s --timeout=1s --retries=3 CMD [\"/svc\",\"--check\"]"),
        "{s}"
    );

    // An http health check cannot run in a scratch image: no HEALTHCHECK.
    std::fs::write(
        dir.path().join("svc/tug.yaml"),
        "name: t\nservices:\n  svc:\n    build: { rust: { package: svc } }\n    health: { http: /health }\n",
    )
    .unwrap();
    let s = String::from_utf8_lossy(&tug(dir.path(), &["dockerfile", "--out", "-"]).stdout)
        .into_owned();
    assert!(!s.contains("HEALTHCHECK"), "{s}");
}

#[test]
fn bad_workspace_is_an_input_error_with_position() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("Cargo.toml"), "[package\n").unwrap();
    let o = tug(dir.path(), &["dockerfile"]);
    assert_eq!(o.status.code(), Some(2));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("Cargo.toml:1:"), "{e}");
    let o = tug(dir.path(), &["dockerfile", "--dir", "nowhere"]);
    assert_eq!(o.status.code(), Some(2));
}
