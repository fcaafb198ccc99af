//! One Rust build path: `tug build` and `tug up` give the same image from the
//! same source, on the real engine and registry.

mod common;

use common::{service, text, TestStack};
use std::process::Command;

fn registry() -> bool {
    let ok = std::net::TcpStream::connect("127.0.0.1:5000").is_ok();
    if !ok {
        if std::env::var("TUG_REQUIRE_ENGINE").is_ok_and(|v| v == "1") {
            panic!("TUG_REQUIRE_ENGINE=1 but no registry on 127.0.0.1:5000");
        }
        eprintln!(
            "\n!!! SKIPPED: no registry on 127.0.0.1:5000; run scripts/engine.sh --registry\n"
        );
    }
    ok
}

/// Removes the engine's images matching a filter when dropped.
struct RemoveImages(String);

impl Drop for RemoveImages {
    fn drop(&mut self) {
        if let Ok(o) = Command::new("docker")
            .args(["images", "-q", "--filter", &self.0])
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

#[test]
fn build_push_and_up_run_the_same_image() {
    if !common::engine() || !registry() {
        return;
    }
    let s = TestStack::new("bp", "");
    let repo = format!("127.0.0.1:5000/{}", s.name);
    let services = format!(
        "{}{}",
        service("web", &format!("    image: {repo}/web:1\n")),
        service("api", &format!("    image: {repo}/api:1\n"))
    );
    s.write(&services);
    let _images = RemoveImages(format!("reference={repo}/*"));

    let out = s.run(&["build", "--push", "-o", "json"]);
    assert!(out.status.success(), "{}", text(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let images = doc["images"].as_array().unwrap();
    assert_eq!(images.len(), 2, "{doc}");

    let out = s.run(&["up", "-d"]);
    assert!(out.status.success(), "{}", text(&out));

    for img in images {
        let svc = img["service"].as_str().unwrap();
        let digest = img["digest"].as_str().unwrap();
        let config = img["config_digest"].as_str().unwrap();
        // The registry holds what tug build made.
        assert_eq!(img["push"]["digest"], digest, "{img}");
        // The engine runs the very image tug build pushed: same config
        // (image ID), hence the same layers and manifest.
        let ids = s.ids(svc);
        assert!(!ids.is_empty(), "no replica of {svc}");
        for id in ids {
            let o = Command::new("docker")
                .args(["inspect", "--format", "{{.Image}}", &id])
                .output()
                .unwrap();
            assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), config, "{svc}");
        }
        // And the tag `tug up` gave it names that image.
        let tag = format!("{repo}/{svc}:{}", &config["sha256:".len()..][..12]);
        let o = Command::new("docker")
            .args(["image", "inspect", "--format", "{{.Id}}", &tag])
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), config, "{tag}");
    }
}
