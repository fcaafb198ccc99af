//! `tug scan` through the real binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tug-scan/tests/fixtures")
}

fn tug(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tug"))
        .current_dir(dir)
        .env_remove("TUG_ADVISORY_DB")
        .env("HOME", dir)
        .env_remove("XDG_CACHE_HOME")
        .args(args)
        .output()
        .unwrap()
}

fn write(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

fn vulnerable_tree() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let lock = std::fs::read_to_string(fixtures().join("vulnerable/Cargo.lock")).unwrap();
    write(dir.path(), "Cargo.lock", &lock);
    write(dir.path(), "Dockerfile", "FROM debian:12\nUSER 10001\n");
    dir
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn table_report_groups_by_scanner_and_defaults_to_exit_zero() {
    let dir = vulnerable_tree();
    let db = fixtures().join("advisory-db");
    let o = tug(dir.path(), &["scan", "--db", db.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    for heading in [
        "── vuln (4) ──",
        "── secret (0) ──",
        "── config (0) ──",
        "informational",
        "CRITICAL (2)",
    ] {
        assert!(out.contains(heading), "{heading} missing in:\n{out}");
    }
    assert!(out.contains("app 0.1.0 → helper 0.3.0 → vulnpkg 1.1.0"));
    // The broken fixture advisory is reported with its position.
    assert!(out.contains("RUSTSEC-2099-0006.md:8:13"), "{out}");
}

#[test]
fn exit_code_follows_the_severity_filter() {
    let dir = vulnerable_tree();
    let db = fixtures().join("advisory-db");
    let db = db.to_str().unwrap();
    let run = |extra: &[&str]| {
        let mut args = vec!["scan", "--db", db, "--exit-code", "7"];
        args.extend_from_slice(extra);
        tug(dir.path(), &args)
    };
    assert_eq!(run(&[]).status.code(), Some(7));
    assert_eq!(run(&["--severity", "CRITICAL"]).status.code(), Some(7));
    // Only informational advisories are LOW here: they never fail the build.
    let low = run(&["--severity", "LOW", "--format", "json"]);
    assert_eq!(low.status.code(), Some(0), "{}", stderr(&low));
    let doc: serde_json::Value = serde_json::from_str(&stdout(&low)).unwrap();
    let findings = doc["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 1);
    assert_eq!(findings[0]["rule_id"], "RUSTSEC-2099-0004");
    assert_eq!(run(&["--scanners", "config,secret"]).status.code(), Some(0));
    let ignored = run(&[
        "--severity",
        "HIGH,CRITICAL",
        "--ignore",
        "RUSTSEC-2099-0001",
        "--ignore",
        "RUSTSEC-2099-0002",
    ]);
    assert_eq!(ignored.status.code(), Some(0), "{}", stdout(&ignored));
}

#[test]
fn missing_database_says_how_to_get_one() {
    let dir = vulnerable_tree();
    let o = tug(dir.path(), &["scan", "--scanners", "vuln"]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(err.contains("no advisory database at"), "{err}");
    assert!(err.contains(".cache/tug/advisory-db"), "{err}");
    assert!(
        err.contains("--update-db") && err.contains("--db DIR"),
        "{err}"
    );
    // $TUG_ADVISORY_DB is honoured.
    let o = Command::new(env!("CARGO_BIN_EXE_tug"))
        .current_dir(dir.path())
        .env("TUG_ADVISORY_DB", fixtures().join("advisory-db"))
        .args(["scan", "--scanners", "vuln", "--format", "sarif"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("\"version\": \"2.1.0\""));
}

#[test]
fn bad_arguments_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let o = tug(dir.path(), &["scan", "--scanners", "viruses"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("unknown scanner"));
    let o = tug(dir.path(), &["scan", "--severity", "SEVERE"]);
    assert_eq!(o.status.code(), Some(2));
    let o = tug(dir.path(), &["scan", "no/such/dir"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("does not exist"));
}

#[test]
fn one_bad_file_never_hides_the_others() {
    let dir = vulnerable_tree();
    write(dir.path(), "sub/Cargo.lock", "[[package]]\nname = 1\n");
    write(dir.path(), "compose.yaml", "services:\n  a: [\n");
    write(
        dir.path(),
        "k8s/pod.yaml",
        "apiVersion: v1\nkind: Pod\nspec:\n  hostPID: true\n  containers: []\n",
    );
    write(
        dir.path(),
        ".tugscanignore.yaml",
        "ignore: [{id: RUSTSEC-2099-0007, expires: 2020-01-01}]\n",
    );
    let db = fixtures().join("advisory-db");
    let o = tug(
        dir.path(),
        &["scan", "--db", db.to_str().unwrap(), "--format", "json"],
    );
    assert_eq!(o.status.code(), Some(0));
    let doc: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let ids: Vec<&str> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule_id"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&"RUSTSEC-2099-0001") && ids.contains(&"TUGC002"),
        "{ids:?}"
    );
    let err = stderr(&o);
    assert!(err.contains("sub/Cargo.lock:2:8"), "{err}");
    assert!(
        err.contains("compose.yaml:3:1") || err.contains("compose.yaml:2"),
        "{err}"
    );
    assert!(err.contains("notice:") && err.contains("expired"), "{err}");
}

#[test]
fn unparsable_file_fails_exit_code_unless_skip_errors() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "k8s/dup.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  namespace: app\n  namespace: other\n",
    );
    let run = |extra: &[&str]| {
        let mut args = vec!["scan", "--scanners", "config", "--exit-code", "3"];
        args.extend_from_slice(extra);
        tug(dir.path(), &args)
    };
    let out = run(&[]);
    assert_eq!(out.status.code(), Some(3), "{}", stdout(&out));
    assert!(stdout(&out).contains("dup.yaml:6"), "{}", stdout(&out));
    let out = run(&["--skip-errors"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(stdout(&out).contains("error:"), "{}", stdout(&out));
}
