//! `tug scan IMAGE` through the real binary, on the examples/hello image
//! built by `tug build`, from each source: OCI layout, docker-archive, the
//! engine and the registry.

mod common;

use common::{text, tug, workspace};
use std::process::Command;

fn db() -> tempfile::TempDir {
    let db = tempfile::tempdir().unwrap();
    let adv = db.path().join("crates/signal-hook/RUSTSEC-2099-0101.md");
    std::fs::create_dir_all(adv.parent().unwrap()).unwrap();
    std::fs::write(
        adv,
        "```toml\n[advisory]\nid = \"RUSTSEC-2099-0101\"\npackage = \"signal-hook\"\ndate = \"2099-01-01\"\n\n[versions]\npatched = [\">= 999.0.0\"]\n```\n\n# Test advisory\n\nEvery version is affected.\n",
    )
    .unwrap();
    db
}

fn scan_json(image: &str, db: &std::path::Path) -> serde_json::Value {
    let out = tug()
        .current_dir(workspace())
        .args(["scan", image, "--db"])
        .arg(db)
        .args(["-o", "json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)))
}

fn check(doc: &serde_json::Value, source: &str) {
    assert_eq!(
        doc["binaries_audited"],
        serde_json::json!(["/app/hello"]),
        "{source}: {doc}"
    );
    assert_eq!(doc["errors"], serde_json::json!([]), "{source}: {doc}");
    let ids: Vec<&str> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["rule_id"].as_str())
        .collect();
    assert!(ids.contains(&"RUSTSEC-2099-0101"), "{source}: {ids:?}");
    // Built by tug: non-root, nothing world-writable, no setuid, no secret.
    for bad in ["IMG001", "IMG003", "IMG004", "IMG005", "IMG006"] {
        assert!(!ids.contains(&bad), "{source}: {ids:?}");
    }
    assert_eq!(doc["layers"].as_array().unwrap().len(), 2, "{source}");
}

#[test]
fn scans_the_hello_image_from_every_source() {
    let db = db();
    let dir = tempfile::tempdir().unwrap();
    let oci = format!("oci:{}", dir.path().join("oci").display());
    let archive = format!("docker-archive:{}", dir.path().join("hello.tar").display());
    for dest in [&oci, &archive] {
        let out = tug()
            .current_dir(workspace())
            .args(["build", "-f", "examples/hello/tug.yaml", "--dest", dest])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out));
        check(&scan_json(dest, db.path()), dest);
    }

    // People get a table with the layers' sizes.
    let out = tug()
        .current_dir(workspace())
        .args(["scan", &oci, "--db"])
        .arg(db.path())
        .output()
        .unwrap();
    let t = String::from_utf8_lossy(&out.stdout);
    assert!(
        t.contains("RUSTSEC-2099-0101") && t.contains("2 layers"),
        "{t}"
    );

    if !common::engine() || std::net::TcpStream::connect("127.0.0.1:5000").is_err() {
        return;
    }
    let name = format!("tscan{}", std::process::id());
    let tag = format!("127.0.0.1:5000/{name}/web:1");
    let yaml = dir.path().join("tug.yaml");
    std::fs::write(
        &yaml,
        format!(
            "name: {name}\nservices:\n  web:\n    build: {{ rust: {{ package: hello, workspace: {} }} }}\n    image: {tag}\n    port: 8080\n",
            workspace().display()
        ),
    )
    .unwrap();
    let out = tug()
        .arg("-f")
        .arg(&yaml)
        .args(["build", "--push", "--dest", "engine"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let engine = format!("engine:{tag}");
    let from_engine = scan_json(&engine, db.path());
    let from_registry = scan_json(&tag, db.path());
    let _ = Command::new("docker").args(["rmi", "-f", &tag]).output();
    check(&from_engine, &engine);
    check(&from_registry, &tag);
}

#[test]
fn a_broken_image_source_is_explained() {
    let dir = tempfile::tempdir().unwrap();
    let out = tug()
        .args(["scan"])
        .arg(format!("oci:{}", dir.path().display()))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("not an OCI image layout"),
        "{}",
        text(&out)
    );
}
