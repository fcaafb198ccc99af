//! SBOMs validated against the published CycloneDX 1.5 and SPDX 2.3 JSON
//! schemas (vendored under tests/schemas with their licences).

use std::path::{Path, PathBuf};
use tug_scan::sbom::{Format, Sbom};
use tug_scan::vuln::lockfile::Lockfile;

fn schemas() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/schemas")
}

fn load(name: &str) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(schemas().join(name)).unwrap()).unwrap()
}

fn cyclonedx_validator() -> jsonschema::Validator {
    let res = |name: &str| jsonschema::Resource::from_contents(load(name)).unwrap();
    jsonschema::options()
        .with_resource(
            "http://cyclonedx.org/schema/spdx.schema.json",
            res("cyclonedx-spdx.schema.json"),
        )
        .with_resource(
            "http://cyclonedx.org/schema/jsf-0.82.schema.json",
            res("cyclonedx-jsf-0.82.schema.json"),
        )
        .should_validate_formats(true)
        .build(&load("cyclonedx-bom-1.5.schema.json"))
        .unwrap()
}

fn spdx_validator() -> jsonschema::Validator {
    jsonschema::options()
        .should_validate_formats(true)
        .build(&load("spdx-2.3.schema.json"))
        .unwrap()
}

fn assert_valid(v: &jsonschema::Validator, doc: &serde_json::Value) {
    let errors: Vec<String> = v
        .iter_errors(doc)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}\n{doc:#}");
}

fn workspace_sbom() -> Sbom {
    let ws = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../Cargo.lock");
    let lock = Lockfile::parse(&std::fs::read_to_string(&ws).unwrap()).unwrap();
    let mut s = Sbom::new("tug", "application");
    s.add(&lock, "Cargo.lock");
    s
}

#[test]
fn cyclonedx_of_this_workspace_is_valid_and_complete() {
    let s = workspace_sbom();
    let doc = s.render(Format::CycloneDx, "2026-01-01T00:00:00Z");
    assert_valid(&cyclonedx_validator(), &doc);
    let comps = doc["components"].as_array().unwrap();
    assert_eq!(comps.len(), s.components.len());
    let serde = comps.iter().find(|c| c["name"] == "serde").unwrap();
    assert!(serde["purl"]
        .as_str()
        .unwrap()
        .starts_with("pkg:cargo/serde@1."));
    let tug = comps.iter().find(|c| c["name"] == "tug").unwrap();
    assert_eq!(tug["type"], "application");
    assert!(
        tug.get("purl").is_none(),
        "workspace members are not on crates.io"
    );
    // Every dependency edge points at a listed component.
    let refs: Vec<&str> = comps
        .iter()
        .map(|c| c["bom-ref"].as_str().unwrap())
        .collect();
    for d in doc["dependencies"].as_array().unwrap() {
        for on in d["dependsOn"].as_array().unwrap() {
            assert!(refs.contains(&on.as_str().unwrap()), "{on}");
        }
    }
    // Deterministic.
    assert_eq!(doc, s.render(Format::CycloneDx, "2026-01-01T00:00:00Z"));
}

#[test]
fn spdx_of_this_workspace_is_valid_and_complete() {
    let s = workspace_sbom();
    let doc = s.render(Format::Spdx, "2026-01-01T00:00:00Z");
    assert_valid(&spdx_validator(), &doc);
    let pkgs = doc["packages"].as_array().unwrap();
    assert_eq!(pkgs.len(), s.components.len());
    let rel = doc["relationships"].as_array().unwrap();
    assert!(rel.iter().any(|r| r["relationshipType"] == "DESCRIBES"));
    assert!(rel.iter().any(|r| r["relationshipType"] == "DEPENDS_ON"));
}

#[test]
fn the_validators_reject_a_broken_document() {
    let s = workspace_sbom();
    let mut doc = s.render(Format::CycloneDx, "2026-01-01T00:00:00Z");
    doc["specVersion"] = serde_json::json!(1.5);
    assert!(!cyclonedx_validator().is_valid(&doc));
    let mut doc = s.render(Format::Spdx, "2026-01-01T00:00:00Z");
    doc["packages"][0]["filesAnalyzed"] = serde_json::json!("no");
    assert!(!spdx_validator().is_valid(&doc));
}

#[test]
fn an_image_sbom_lists_what_its_binaries_embed() {
    let ws = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let opts = tug_image::oci::RustBuildOptions::new(ws, "hello");
    let img = tug_image::oci::build_rust(&opts, &|l| eprintln!("{l}")).unwrap();
    let scanned = tug_scan::image::scan_image(
        &img.to_raw(),
        "hello",
        &tug_scan::image::ImageScanOptions {
            scanners: vec![tug_scan::ScannerKind::Vuln],
            audit: false,
            ..Default::default()
        },
    )
    .unwrap();
    let mut s = Sbom::new("hello", "container");
    for (path, lock) in &scanned.dependencies {
        s.add(lock, path);
    }
    let names: Vec<&str> = s.components.iter().map(|c| c.name.as_str()).collect();
    assert!(
        names.contains(&"hello") && names.contains(&"signal-hook"),
        "{names:?}"
    );
    let doc = s.render(Format::CycloneDx, "2026-01-01T00:00:00Z");
    assert_valid(&cyclonedx_validator(), &doc);
    assert_eq!(doc["metadata"]["component"]["type"], "container");
    assert_valid(
        &spdx_validator(),
        &s.render(Format::Spdx, "2026-01-01T00:00:00Z"),
    );
}

/// An Alpine image whose apk database a later layer rewrote (`apk add`):
/// the packages of the final database are listed with apk package URLs,
/// and both SBOM formats validate.
#[test]
fn an_image_sbom_lists_alpine_packages_of_the_final_apk_database() {
    use tug_image::oci::{ImageBuilder, ImageConfig, LayerBuilder};
    const BASE: &str = "C:Q1lr9VnWgNVI9dPNd5oa1qwRB0v6o=\nP:musl\nV:1.2.4_git20230717-r4\nA:x86_64\nS:407885\nI:663552\nT:the musl c library (libc) implementation\nU:https://musl.libc.org/\nL:MIT\no:musl\nm:Timo Teräs <timo.teras@iki.fi>\nt:1705416914\nc:bd4eea4b9fc9a2a6b6ba3e1bd2f1c0d7d7c0d7d5\np:so:libc.musl-x86_64.so.1=1\nF:lib\nR:ld-musl-x86_64.so.1\na:0:0:755\n\nC:Q1ZSe5lWhkILFYWGTm+MfMEKBnt7c=\nP:busybox\nV:1.36.1-r15\nA:x86_64\nS:508947\nI:946176\nT:Size optimized toolbox of many common UNIX utilities\nU:https://busybox.net/\nL:GPL-2.0-only\no:busybox\nD:so:libc.musl-x86_64.so.1\n\n";
    let added = format!(
        "{BASE}C:Q1ZpJkGxVB2ijmGl1yT3vKnMnlMsE=\nP:libcrypto3\nV:3.1.4-r5\nA:x86_64\nS:1766466\nI:4321280\nT:Crypto library from openssl\nL:Apache-2.0\no:openssl\nD:so:libc.musl-x86_64.so.1\n\n"
    );
    let base = LayerBuilder::new(0)
        .file(
            "/etc/os-release",
            "NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.19.1\n",
            0o644,
        )
        .unwrap()
        .file("/lib/apk/db/installed", BASE, 0o644)
        .unwrap()
        .build("alpine base")
        .unwrap();
    let apk_add = LayerBuilder::new(0)
        .file("/lib/apk/db/installed", added, 0o644)
        .unwrap()
        .build("apk add libcrypto3")
        .unwrap();
    let img = ImageBuilder::new()
        .layer(base)
        .layer(apk_add)
        .config(ImageConfig::default())
        .build()
        .unwrap();
    let scanned = tug_scan::image::scan_image(
        &img.to_raw(),
        "alpine",
        &tug_scan::image::ImageScanOptions {
            scanners: vec![tug_scan::ScannerKind::Vuln],
            audit: false,
            ..Default::default()
        },
    )
    .unwrap();
    let names: Vec<&str> = scanned
        .os_packages
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    assert_eq!(names, ["musl", "busybox", "libcrypto3"]);
    let mut s = Sbom::new("alpine", "container");
    s.add_os(
        &scanned.os_packages,
        scanned.os_release.as_ref(),
        "/lib/apk/db/installed",
    );
    let doc = s.render(Format::CycloneDx, "2026-01-01T00:00:00Z");
    assert_valid(&cyclonedx_validator(), &doc);
    let purls: Vec<&str> = doc["components"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["purl"].as_str())
        .collect();
    assert!(
        purls.contains(&"pkg:apk/alpine/libcrypto3@3.1.4-r5?arch=x86_64&distro=alpine-3.19.1"),
        "{purls:?}"
    );
    assert_eq!(purls.len(), 3, "{purls:?}");
    assert_valid(
        &spdx_validator(),
        &s.render(Format::Spdx, "2026-01-01T00:00:00Z"),
    );
}

/// Only crates.io packages are `pkg:cargo` with a crates.io download: a
/// mirror or private registry may hold other crates under the same names.
#[test]
fn a_package_of_another_registry_is_not_called_a_crates_io_one() {
    let lock = Lockfile::parse(
        r#"version = 3

[[package]]
name = "serde"
version = "1.0.0"
source = "registry+https://github.com/rust-lang/crates.io-index"

[[package]]
name = "internal"
version = "0.1.0"
source = "registry+https://mirror.example.com/crates.io-index"

[[package]]
name = "fast"
version = "0.2.0"
source = "sparse+https://index.crates.io/"
"#,
    )
    .unwrap();
    let mut s = Sbom::new("x", "application");
    s.add(&lock, "Cargo.lock");
    let doc = s.render(Format::CycloneDx, "2026-01-01T00:00:00Z");
    let purl = |name: &str| {
        doc["components"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .and_then(|c| c["purl"].as_str().map(String::from))
    };
    assert_eq!(purl("serde").as_deref(), Some("pkg:cargo/serde@1.0.0"));
    assert_eq!(purl("fast").as_deref(), Some("pkg:cargo/fast@0.2.0"));
    assert_eq!(purl("internal"), None, "{doc:#}");
    let spdx = s.render(Format::Spdx, "2026-01-01T00:00:00Z");
    let internal = spdx["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "internal")
        .unwrap();
    assert!(
        !internal["downloadLocation"]
            .as_str()
            .unwrap()
            .contains("crates.io"),
        "{internal:#}"
    );
}
