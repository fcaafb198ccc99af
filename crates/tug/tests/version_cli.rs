//! `tug version`: tug's version and the engine it talks to, for people and machines.

mod common;

use common::*;

fn version(args: &[&str], docker_host: Option<&str>) -> (Option<i32>, serde_json::Value) {
    let mut c = tug();
    c.args(args).args(["version", "-o", "json"]);
    if let Some(h) = docker_host {
        c.env("DOCKER_HOST", h);
    }
    let out = c.output().unwrap();
    let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
    (out.status.code(), v)
}

#[test]
fn names_the_docker_engine_and_its_version() {
    if !engine() {
        return;
    }
    let (code, v) = version(&[], None);
    assert_eq!(code, Some(0), "{v}");
    assert_eq!(v["tug"], env!("CARGO_PKG_VERSION"));
    assert_eq!(v["engine"]["name"], "docker", "{v}");
    assert!(
        v["engine"]["version"]
            .as_str()
            .is_some_and(|s| !s.is_empty()),
        "{v}"
    );
    assert!(v["engine"]["api_version"].is_string(), "{v}");

    let table = tug().arg("version").output().unwrap();
    let out = String::from_utf8_lossy(&table.stdout);
    assert!(out.contains("engine  docker "), "{}", text(&table));
}

#[test]
fn names_the_process_runtime() {
    let (code, v) = version(&["--runtime", "process"], None);
    assert_eq!(code, Some(0), "{v}");
    assert_eq!(v["engine"]["name"], "process", "{v}");
    assert_eq!(v["engine"]["version"], env!("CARGO_PKG_VERSION"), "{v}");
}

#[test]
fn an_engine_that_does_not_answer_is_exit_3() {
    let dir = tempfile::tempdir().unwrap();
    let sock = format!("unix://{}/none.sock", dir.path().display());
    let (code, v) = version(&[], Some(&sock));
    assert_eq!(code, Some(3), "{v}");
    assert_eq!(v["engine"], serde_json::Value::Null, "{v}");
    assert_eq!(v["tug"], env!("CARGO_PKG_VERSION"));
}
