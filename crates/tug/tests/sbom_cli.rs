//! `tug sbom` and `tug build --push --sbom` against the real registry.

mod common;

use common::{text, tug, workspace};
use tug_image::registry::{ClientOptions, Reference, RegistryClient, MEDIA_CYCLONEDX};

#[test]
fn sbom_of_a_source_tree() {
    for (format, key) in [("cyclonedx", "bomFormat"), ("spdx", "spdxVersion")] {
        let out = tug()
            .current_dir(workspace())
            .args(["sbom", "examples/hello", "--format", format])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out));
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert!(doc.get(key).is_some(), "{format}: {doc}");
        assert!(String::from_utf8_lossy(&out.stdout).contains("signal-hook"));
    }
    let out = tug().args(["sbom", "/nonexistent/dir"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("give a directory with a Cargo.lock"));
}

#[test]
fn build_push_attaches_the_sbom_as_a_referrer() {
    if !common::engine() || std::net::TcpStream::connect("127.0.0.1:5000").is_err() {
        if std::env::var("TUG_REQUIRE_ENGINE").is_ok_and(|v| v == "1") {
            panic!("TUG_REQUIRE_ENGINE=1 but no registry on 127.0.0.1:5000");
        }
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let name = format!("tsbom{}", std::process::id());
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
        .args(["build", "--push", "--sbom", "cyclonedx", "-o", "json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let img = &doc["images"][0];
    let digest = img["digest"].as_str().unwrap();
    assert_eq!(img["sbom"]["artifact_type"], MEDIA_CYCLONEDX, "{doc}");

    // From a clean client: list the image's referrers, fetch the SBOM.
    let r = Reference::parse(&tag).unwrap();
    let client = RegistryClient::new(&r, ClientOptions::default()).unwrap();
    let refs = client.referrers(&r.repository, digest).unwrap();
    let sbom = refs
        .iter()
        .find(|d| d["artifactType"] == MEDIA_CYCLONEDX)
        .unwrap_or_else(|| panic!("no SBOM among {refs:?}"));
    assert_eq!(sbom["digest"], img["sbom"]["digest"]);
    let (_, manifest) = client
        .get_manifest(&r.repository, sbom["digest"].as_str().unwrap())
        .unwrap();
    let manifest: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
    assert_eq!(manifest["subject"]["digest"], digest);
    let blob = client
        .get_blob(
            &r.repository,
            manifest["layers"][0]["digest"].as_str().unwrap(),
        )
        .unwrap();
    let bom: serde_json::Value = serde_json::from_slice(&blob).unwrap();
    assert_eq!(bom["bomFormat"], "CycloneDX");
    assert!(bom["components"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["name"] == "signal-hook"));
    // A second attach replaces nothing and keeps one entry per artifact.
    let again = tug()
        .arg("-f")
        .arg(&yaml)
        .args(["build", "--push", "--sbom", "cyclonedx"])
        .output()
        .unwrap();
    assert!(again.status.success(), "{}", text(&again));
    let refs = client.referrers(&r.repository, digest).unwrap();
    assert_eq!(
        refs.iter()
            .filter(|d| d["artifactType"] == MEDIA_CYCLONEDX)
            .count(),
        1,
        "{refs:?}"
    );
}
