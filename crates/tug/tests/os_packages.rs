//! Debian packages in an image: listed by `tug scan IMAGE` and `tug sbom
//! IMAGE`, audited with `--os-db DIR`, said to be skipped without it. The
//! image is busybox-static with a dpkg status file written in a later layer.

mod common;

use common::{check_jsonschema, text, tug, validate_json};
use std::path::Path;
use tug_image::oci::{ImageBuilder, ImageConfig, LayerBuilder};

const STATUS: &str = "Package: libssl3\nStatus: install ok installed\nArchitecture: amd64\nSource: openssl\nVersion: 3.0.11-1~deb12u2\nDescription: Secure Sockets Layer toolkit\n shared libraries\n\nPackage: busybox-static\nStatus: install ok installed\nArchitecture: amd64\nSource: busybox\nVersion: 1:1.35.0-4\n\nPackage: removed\nStatus: deinstall ok config-files\nVersion: 1.0\n";

fn image_dir(dir: &Path) -> String {
    let busybox = LayerBuilder::new(0)
        .host_file("/bin/busybox", Path::new("/bin/busybox"), 0o755)
        .expect("install busybox-static (scripts/engine.sh does)")
        .build("busybox")
        .unwrap();
    let dpkg = LayerBuilder::new(0)
        .file(
            "/etc/os-release",
            "ID=debian\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\n",
            0o644,
        )
        .unwrap()
        .file("/var/lib/dpkg/status", STATUS, 0o644)
        .unwrap()
        .build("dpkg status")
        .unwrap();
    let img = ImageBuilder::new()
        .layer(busybox)
        .layer(dpkg)
        .config(ImageConfig {
            user: Some("65534".into()),
            ..Default::default()
        })
        .build()
        .unwrap();
    let oci = dir.join("oci");
    tug_image::oci::write_oci_layout(&oci, &[(&img, Some("box:1"))]).unwrap();
    format!("oci:{}", oci.display())
}

#[test]
fn debian_packages_are_listed_audited_with_os_db_and_skipped_without() {
    let dir = tempfile::tempdir().unwrap();
    let image = image_dir(dir.path());
    let rustsec = dir.path().join("advisory-db");
    std::fs::create_dir_all(rustsec.join("crates")).unwrap();

    // Without security data: listed, and the report says they were skipped.
    let out = tug()
        .args(["scan", &image, "--scanners", "vuln", "--db"])
        .arg(&rustsec)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let t = text(&out);
    assert!(
        t.contains("libssl3") && t.contains("3.0.11-1~deb12u2"),
        "{t}"
    );
    assert!(t.contains("busybox-static"), "{t}");
    assert!(!t.contains("removed"), "{t}");
    assert!(
        t.contains("2 distribution packages (Debian/Alpine) listed but not audited"),
        "{t}"
    );

    // With the Debian security tracker's data: the open and the fixed-later
    // CVEs of openssl on bookworm, nothing for other releases.
    let osdb = dir.path().join("os-db");
    std::fs::create_dir_all(&osdb).unwrap();
    std::fs::write(
        osdb.join("debian.json"),
        r#"{"openssl": {
            "CVE-2024-0727": {"description": "PKCS12 NULL dereference", "releases": {"bookworm": {"status": "resolved", "fixed_version": "3.0.13-1~deb12u1", "urgency": "medium"}}},
            "CVE-2023-0001": {"releases": {"bookworm": {"status": "resolved", "fixed_version": "3.0.9-1", "urgency": "high"}}},
            "CVE-2024-9999": {"releases": {"trixie": {"status": "open", "urgency": "high"}}}
        },
        "busybox": {
            "CVE-2022-48174": {"releases": {"bookworm": {"status": "open", "urgency": "unimportant"}}}
        }}"#,
    )
    .unwrap();
    let out = tug()
        .args(["scan", &image, "--scanners", "vuln", "-o", "json", "--db"])
        .arg(&rustsec)
        .arg("--os-db")
        .arg(&osdb)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut ids: Vec<&str> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule_id"].as_str().unwrap())
        .collect();
    ids.sort();
    assert_eq!(ids, ["CVE-2022-48174", "CVE-2024-0727"], "{doc}");
    assert_eq!(doc["os_release"]["codename"], "bookworm");
    assert_eq!(doc["os_packages"].as_array().unwrap().len(), 2);

    // The SBOM lists them with their package URLs.
    let out = tug()
        .args(["sbom", &image, "--format", "cyclonedx"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let bom = String::from_utf8_lossy(&out.stdout);
    assert!(
        bom.contains("pkg:deb/debian/libssl3@3.0.11-1~deb12u2?arch=amd64&distro=debian-12"),
        "{bom}"
    );
    assert!(
        bom.contains("pkg:deb/debian/busybox-static@1%3A1.35.0-4"),
        "{bom}"
    );
}

/// An image with the host's own Debian package list (its dpkg status file
/// and os-release): both SBOM formats list every installed package and
/// validate against their published schemas (CycloneDX 1.5, SPDX 2.3,
/// tests/data/sbom-schemas with their licences).
#[test]
fn sboms_with_the_hosts_debian_packages_validate_against_their_schemas() {
    let Some(tool) = check_jsonschema() else {
        return;
    };
    let status = std::fs::read_to_string("/var/lib/dpkg/status")
        .expect("a Debian host: /var/lib/dpkg/status");
    let installed = status
        .split("\n\n")
        .filter(|p| p.lines().any(|l| l == "Status: install ok installed"))
        .count();
    assert!(installed > 50, "{installed} packages on the host");
    let dir = tempfile::tempdir().unwrap();
    let layer = LayerBuilder::new(0)
        .host_file("/bin/busybox", Path::new("/bin/busybox"), 0o755)
        .expect("install busybox-static (scripts/engine.sh does)")
        .host_file("/etc/os-release", Path::new("/etc/os-release"), 0o644)
        .unwrap()
        .file("/var/lib/dpkg/status", status.as_str(), 0o644)
        .unwrap()
        .build("debian")
        .unwrap();
    let img = ImageBuilder::new()
        .layer(layer)
        .config(ImageConfig::default())
        .build()
        .unwrap();
    let oci = dir.path().join("oci");
    tug_image::oci::write_oci_layout(&oci, &[(&img, Some("deb:1"))]).unwrap();
    let image = format!("oci:{}", oci.display());

    for (format, schema) in [
        ("cyclonedx", "sbom-schemas/cyclonedx/bom-1.5.schema.json"),
        ("spdx", "sbom-schemas/spdx/spdx-schema.json"),
    ] {
        let out = tug()
            .args(["sbom", &image, "--format", format])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out));
        if let Err(report) = validate_json(&tool, schema, &out.stdout) {
            panic!("{format} SBOM of {image} fails its schema:\n{report}");
        }
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let listed = match format {
            "cyclonedx" => doc["components"].as_array(),
            _ => doc["packages"].as_array(),
        }
        .unwrap()
        .iter()
        .filter(|c| {
            serde_json::to_string(c)
                .unwrap()
                .contains("pkg:deb/debian/")
        })
        .count();
        assert_eq!(listed, installed, "{format}");
    }
}

#[test]
fn sboms_of_a_source_tree_validate_against_their_schemas() {
    let Some(tool) = check_jsonschema() else {
        return;
    };
    for (format, schema) in [
        ("cyclonedx", "sbom-schemas/cyclonedx/bom-1.5.schema.json"),
        ("spdx", "sbom-schemas/spdx/spdx-schema.json"),
    ] {
        let out = tug()
            .current_dir(common::workspace())
            .args(["sbom", "examples/hello", "--format", format])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out));
        if let Err(report) = validate_json(&tool, schema, &out.stdout) {
            panic!("{format} SBOM of examples/hello fails its schema:\n{report}");
        }
    }
}
