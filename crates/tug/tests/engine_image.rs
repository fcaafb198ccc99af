//! `tug build --dest engine` and `tug image inspect` of an engine image.

mod common;

use common::*;

#[test]
fn build_into_the_engine_then_inspect_it_there() {
    if !engine() {
        return;
    }
    let s = TestStack::new("eimg", &service("web", ""));
    let out = s.run(&["build", "--dest", "engine", "-o", "json"]);
    assert!(out.status.success(), "{}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let tag = v["images"][0]["tag"]
        .as_str()
        .or_else(|| v[0]["tag"].as_str())
        .unwrap_or_else(|| panic!("no tag in {v}"))
        .to_string();
    let exists = std::process::Command::new("docker")
        .args(["image", "inspect", &tag])
        .output()
        .unwrap();
    assert!(exists.status.success(), "{tag} is not in the engine");

    for name in [tag.clone(), format!("engine:{tag}")] {
        let out = tug()
            .args(["image", "inspect", &name, "-o", "json"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out));
        let a: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let layers = a["analysis"]["layers"].as_array().unwrap();
        assert_eq!(layers.len(), 2, "{a}");
        assert!(
            layers[0]["created_by"]
                .as_str()
                .unwrap()
                .starts_with("tug: base layer"),
            "{a}"
        );
    }
    let out = tug()
        .args(["image", "inspect", "engine:tug-test/not-here:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let _ = std::process::Command::new("docker")
        .args(["rmi", "-f", &tag])
        .output();
}
