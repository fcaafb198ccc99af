//! `tug lint` through the built binary.

use std::path::Path;
use std::process::{Command, Output, Stdio};

fn tug(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tug"))
        .args(args)
        .current_dir(dir)
        .env_remove("NO_COLOR")
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

const BAD: &str = "FROM debian\nRUN apt-get update && apt-get install -y curl\n";
const CLEAN: &str = "FROM debian:12\nHEALTHCHECK CMD [\"true\"]\nUSER 10001\nCMD [\"app\"]\n";

#[test]
fn default_dockerfile_findings_and_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("Dockerfile"), BAD).unwrap();
    let o = tug(dir.path(), &["lint"]);
    assert_eq!(o.status.code(), Some(1));
    let s = stdout(&o);
    assert!(
        s.contains("Dockerfile:1:1 DL3006 warning: Always tag"),
        "{s}"
    );
    assert!(s.contains("Dockerfile:2:1 DL3008 warning"), "{s}");
    assert!(s.contains("why: "), "{s}");
    // Not a terminal: no colour codes.
    assert!(!s.contains('\x1b'));
}

#[test]
fn clean_file_exits_0_and_threshold_moves_the_bar() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("Dockerfile"), CLEAN).unwrap();
    let o = tug(dir.path(), &["lint"]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    std::fs::write(dir.path().join("Dockerfile"), BAD).unwrap();
    assert_eq!(
        tug(dir.path(), &["lint", "--failure-threshold", "error"])
            .status
            .code(),
        Some(0)
    );
    assert_eq!(
        tug(dir.path(), &["lint", "--failure-threshold", "none"])
            .status
            .code(),
        Some(0)
    );
    assert_eq!(
        tug(dir.path(), &["lint", "--failure-threshold", "style"])
            .status
            .code(),
        Some(1)
    );
}

#[test]
fn unreadable_file_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let o = tug(dir.path(), &["lint", "missing.Dockerfile"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("missing.Dockerfile"));
}

#[test]
fn stdin_and_json() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tug"))
        .args(["lint", "-", "--format", "json"])
        .current_dir(dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"FROM debian:latest\nMAINTAINER me\n")
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let rules: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule"].as_str().unwrap())
        .collect();
    assert!(
        rules.contains(&"DL3007") && rules.contains(&"DL4000"),
        "{rules:?}"
    );
    assert_eq!(v[0]["file"], "-");
}

#[test]
fn config_file_ignores_overrides_and_trusted_registries() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("Dockerfile"),
        "FROM quay.io/x/y:1\nRUN apt-get install -y curl\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join(".tug-lint.yaml"),
        "ignored: [DL3008, TUG006]\noverride:\n  style: [DL3015]\ntrustedRegistries: [docker.io]\n",
    )
    .unwrap();
    let s = stdout(&tug(
        dir.path(),
        &["lint", "--strict", "--failure-threshold", "none"],
    ));
    assert!(!s.contains("DL3008") && !s.contains("TUG006"), "{s}");
    assert!(s.contains("DL3015 style"), "{s}");
    assert!(s.contains("DL3026 error"), "{s}");
    // hadolint's file is read when tug's is absent.
    std::fs::remove_file(dir.path().join(".tug-lint.yaml")).unwrap();
    std::fs::write(dir.path().join(".hadolint.yaml"), "ignored: [DL3008]\n").unwrap();
    let s = stdout(&tug(
        dir.path(),
        &["lint", "--strict", "--failure-threshold", "none"],
    ));
    assert!(!s.contains("DL3008") && s.contains("TUG006"), "{s}");
    // TUG rules are outside hadolint's default profile.
    let s = stdout(&tug(dir.path(), &["lint", "--failure-threshold", "none"]));
    assert!(!s.contains("TUG006") && s.contains("DL3015"), "{s}");
    // --config wins, and a broken one is an input error with a position.
    std::fs::write(dir.path().join("bad.yaml"), "ignored: [\n").unwrap();
    let o = tug(dir.path(), &["lint", "--config", "bad.yaml"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("bad.yaml:"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn machine_formats() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("Dockerfile"), BAD).unwrap();
    let sarif: serde_json::Value =
        serde_json::from_slice(&tug(dir.path(), &["lint", "--format", "sarif"]).stdout).unwrap();
    assert_eq!(sarif["version"], "2.1.0");
    assert_eq!(
        sarif["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]
            ["uri"],
        "Dockerfile"
    );
    let xml = stdout(&tug(dir.path(), &["lint", "--format", "checkstyle"]));
    assert!(
        xml.contains("<file name=\"Dockerfile\">") && xml.contains("source=\"DL3006\""),
        "{xml}"
    );
    let gl: serde_json::Value =
        serde_json::from_slice(&tug(dir.path(), &["lint", "--format", "gitlab"]).stdout).unwrap();
    assert_eq!(gl[0]["location"]["path"], "Dockerfile");
}

#[test]
fn parse_error_has_position_and_the_rest_is_linted() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("Dockerfile"),
        "FROM debian:12\n  COPPY a b\nRUN sudo true\n",
    )
    .unwrap();
    let s = stdout(&tug(dir.path(), &["lint"]));
    assert!(s.contains("Dockerfile:2:3 DL1000 error: Invalid Dockerfile: unknown instruction `COPPY`: expected one of FROM"), "{s}");
    assert!(s.contains("Dockerfile:3:1 DL3004"), "{s}");
}

#[test]
fn large_context_without_dockerignore() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("Dockerfile"), CLEAN).unwrap();
    std::fs::create_dir(dir.path().join("target")).unwrap();
    let s = stdout(&tug(dir.path(), &["lint", "--strict"]));
    assert!(s.contains("TUG004"), "{s}");
    std::fs::write(dir.path().join(".dockerignore"), "target\n").unwrap();
    assert!(!stdout(&tug(dir.path(), &["lint", "--strict"])).contains("TUG004"));
}

#[test]
fn list_rules_and_docs_are_current() {
    let dir = tempfile::tempdir().unwrap();
    let table = stdout(&tug(dir.path(), &["lint", "--list-rules"]));
    assert!(table.contains("DL3008") && table.contains("TUG005"));
    let md = stdout(&tug(
        dir.path(),
        &["lint", "--list-rules", "--format", "markdown"],
    ));
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/lint-rules.md");
    let on_disk = std::fs::read_to_string(&docs).unwrap_or_default();
    assert!(
        on_disk == md,
        "docs/lint-rules.md is out of date: run `tug lint --list-rules --format markdown > docs/lint-rules.md`"
    );
}
