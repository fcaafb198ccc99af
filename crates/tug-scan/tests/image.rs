//! `tug_scan::image`: images built in memory (and examples/hello built by
//! tug's own builder), scanned layer by layer.

mod common;

use common::{rand_str, write};
use tug_image::oci::{Image, ImageBuilder, ImageConfig, LayerBuilder, RawImage};
use tug_scan::image::{scan_image, ImageScanOptions};
use tug_scan::ScannerKind;

const UPPER: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

fn aws_key(seed: u64) -> String {
    format!("AKIA{}", rand_str(seed, 16, UPPER))
}

fn no_vuln() -> ImageScanOptions {
    ImageScanOptions {
        scanners: vec![ScannerKind::Secret, ScannerKind::Config],
        ..Default::default()
    }
}

fn image(layers: Vec<LayerBuilder>, config: ImageConfig) -> Image {
    let mut b = ImageBuilder::new();
    for (i, l) in layers.into_iter().enumerate() {
        b = b.layer(l.build(format!("layer {i}")).unwrap());
    }
    b.config(config).build().unwrap()
}

#[test]
fn a_secret_deleted_by_a_later_layer_is_still_found() {
    let key = aws_key(1);
    let kept = aws_key(2);
    let img = image(
        vec![
            LayerBuilder::new(0)
                .file("/app/.env", format!("AWS_ACCESS_KEY_ID={key}\n"), 0o644)
                .unwrap()
                .file(
                    "/app/config.ini",
                    format!("aws_access_key_id = {kept}\n"),
                    0o644,
                )
                .unwrap(),
            LayerBuilder::new(0).whiteout("/app/.env").unwrap(),
        ],
        ImageConfig {
            user: Some("10001".into()),
            ..Default::default()
        },
    );
    let r = scan_image(&img.to_raw(), "test", &no_vuln())
        .unwrap()
        .report;
    let secrets: Vec<_> = r
        .findings
        .iter()
        .filter(|f| f.scanner == ScannerKind::Secret)
        .collect();
    let deleted = secrets
        .iter()
        .find(|f| f.file == "/app/.env")
        .expect("deleted secret found");
    assert!(
        deleted
            .message
            .contains("deleted by layer 1 but still in the image"),
        "{}",
        deleted.message
    );
    let present = secrets
        .iter()
        .find(|f| f.file == "/app/config.ini")
        .expect("kept secret found");
    assert!(!present.message.contains("deleted"), "{}", present.message);
    // Never the secret itself.
    let json = tug_scan::render::json(&r);
    assert!(!json.contains(&key) && !json.contains(&kept));
}

#[test]
fn opaque_directories_and_replacement_are_honoured() {
    let a = aws_key(3);
    let b = aws_key(4);
    let img = image(
        vec![
            LayerBuilder::new(0)
                .file("/etc/app/key", format!("AWS_ACCESS_KEY_ID={a}\n"), 0o644)
                .unwrap()
                .file("/etc/other", format!("AWS_ACCESS_KEY_ID={b}\n"), 0o644)
                .unwrap(),
            LayerBuilder::new(0)
                .opaque("/etc/app")
                .unwrap()
                .file("/etc/other", "nothing here\n", 0o644)
                .unwrap(),
        ],
        ImageConfig::default(),
    );
    let r = scan_image(&img.to_raw(), "test", &no_vuln())
        .unwrap()
        .report;
    let msg = |file: &str| {
        r.findings
            .iter()
            .find(|f| f.file == file && f.scanner == ScannerKind::Secret)
            .unwrap_or_else(|| panic!("no secret finding for {file}: {:#?}", r.findings))
            .message
            .clone()
    };
    assert!(msg("/etc/app/key").contains("deleted by layer 1"));
    assert!(msg("/etc/other").contains("replaced by layer 1"));
}

#[test]
fn image_configuration_checks_fire_and_pass() {
    let token = aws_key(5);
    let bad = image(
        vec![LayerBuilder::new(0)
            .file("/usr/bin/su", b"\x7fELF-not-really".to_vec(), 0o4755)
            .unwrap()
            .file("/data/shared.txt", "x", 0o666)
            .unwrap()
            .dir("/tmp", 0o1777)
            .unwrap()],
        ImageConfig {
            user: None,
            exposed_ports: vec![8080],
            env: [(
                "DB_PASSWORD".to_string(),
                "hunter2-but-longer-x9".to_string(),
            )]
            .into(),
            labels: [(
                "deploy.key".to_string(),
                format!("AWS_ACCESS_KEY_ID={token}"),
            )]
            .into(),
            ..Default::default()
        },
    );
    let r = scan_image(&bad.to_raw(), "bad", &no_vuln()).unwrap().report;
    let ids: Vec<(&str, &str)> = r
        .findings
        .iter()
        .filter(|f| f.scanner == ScannerKind::Config)
        .map(|f| (f.rule_id.as_str(), f.file.as_str()))
        .collect();
    for want in [
        ("IMG001", "config"),
        ("IMG002", "config"),
        ("IMG003", "config"),
        ("IMG004", "config"),
        ("IMG005", "/data/shared.txt"),
        ("IMG006", "/usr/bin/su"),
    ] {
        assert!(ids.contains(&want), "{want:?} missing from {ids:?}");
    }
    // The sticky /tmp is not world-writable in the bad sense.
    assert!(!ids.contains(&("IMG005", "/tmp")), "{ids:?}");
    let json = tug_scan::render::json(&r);
    assert!(
        !json.contains("hunter2-but-longer-x9") && !json.contains(&token),
        "{json}"
    );

    let good = image(
        vec![LayerBuilder::new(0).file("/app/x", "x", 0o755).unwrap()],
        ImageConfig {
            user: Some("10001:10001".into()),
            env: [("RUST_LOG".to_string(), "info".to_string())].into(),
            ..Default::default()
        },
    );
    let r = scan_image(&good.to_raw(), "good", &no_vuln())
        .unwrap()
        .report;
    assert!(r.findings.is_empty(), "{:#?}", r.findings);
}

#[test]
fn bad_layers_are_named_and_the_rest_is_scanned() {
    let key = aws_key(6);
    let img = image(
        vec![
            LayerBuilder::new(0)
                .file("/a/secret.env", format!("AWS_ACCESS_KEY_ID={key}\n"), 0o644)
                .unwrap(),
            LayerBuilder::new(0)
                .file("/b/big", vec![b'x'; 200_000], 0o644)
                .unwrap(),
            LayerBuilder::new(0).file("/c/x", "x", 0o644).unwrap(),
        ],
        ImageConfig::default(),
    );
    let mut raw: RawImage = img.to_raw();
    // Layer 1 truncated half-way; layer 2's blob missing.
    let half = raw.layers[1].data.len() / 2;
    raw.layers[1].data.truncate(half);
    raw.layers[2].data.clear();
    raw.layers[2].missing = Some("blob cannot be read: no such file".into());
    let r = scan_image(&raw, "broken", &no_vuln()).unwrap().report;
    let errors: Vec<String> = r
        .errors
        .iter()
        .map(|e| format!("{}: {}", e.file.display(), e.message))
        .collect();
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with("layer 1 (sha256:") && e.contains("truncated")),
        "{errors:?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with("layer 2 (sha256:") && e.contains("blob cannot be read")),
        "{errors:?}"
    );
    assert!(
        r.findings.iter().any(|f| f.file == "/a/secret.env"),
        "layer 0 still scanned: {:#?}",
        r.findings
    );
}

#[test]
fn a_missing_blob_in_an_oci_layout_is_reported_not_fatal() {
    let key = aws_key(7);
    let img = image(
        vec![
            LayerBuilder::new(0)
                .file("/a/secret.env", format!("AWS_ACCESS_KEY_ID={key}\n"), 0o644)
                .unwrap(),
            LayerBuilder::new(0).file("/b/x", "x", 0o644).unwrap(),
        ],
        ImageConfig::default(),
    );
    let dir = tempfile::tempdir().unwrap();
    img.write_oci_layout(dir.path(), None).unwrap();
    let gone = &img.layers[1].digest;
    std::fs::remove_file(
        dir.path()
            .join("blobs/sha256")
            .join(&gone["sha256:".len()..]),
    )
    .unwrap();
    let raw = tug_image::oci::read_oci_layout(dir.path(), None).unwrap();
    let r = scan_image(&raw, "layout", &no_vuln()).unwrap().report;
    assert!(
        r.errors
            .iter()
            .any(|e| e.file.display().to_string().starts_with("layer 1 (sha256:")),
        "{:?}",
        r.errors
    );
    assert!(r.findings.iter().any(|f| f.file == "/a/secret.env"));
}

/// An advisory database with one advisory against a crate hello links.
fn db_against(krate: &str) -> tempfile::TempDir {
    let db = tempfile::tempdir().unwrap();
    write(
        db.path(),
        &format!("crates/{krate}/RUSTSEC-2099-0100.md"),
        &format!(
            "```toml\n[advisory]\nid = \"RUSTSEC-2099-0100\"\npackage = \"{krate}\"\ndate = \"2099-01-01\"\n\n[versions]\npatched = [\">= 999.0.0\"]\n```\n\n# Test advisory\n\nEvery version is affected.\n"
        ),
    );
    db
}

#[test]
fn tugs_builder_embeds_audit_data_that_the_scan_audits() {
    let ws = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut opts = tug_image::oci::RustBuildOptions::new(ws, "hello");
    opts.port = Some(8080);
    let img = tug_image::oci::build_rust(&opts, &|l| eprintln!("{l}")).unwrap();
    let raw = img.to_raw();

    // The section reads back with the reference reader (auditable-info).
    let bin_layer = raw.layers.last().unwrap().tar().unwrap();
    let mut ar = tar::Archive::new(bin_layer.as_slice());
    let mut binary = Vec::new();
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        if e.path().unwrap().ends_with("hello") {
            std::io::Read::read_to_end(&mut e, &mut binary).unwrap();
        }
    }
    let info = auditable_info::audit_info_from_slice(&binary, 8 << 20).unwrap();
    let names: Vec<&str> = info.packages.iter().map(|p| p.name.as_str()).collect();
    assert!(
        names.contains(&"hello") && names.contains(&"signal-hook"),
        "{names:?}"
    );
    assert!(info.packages.iter().any(|p| p.root && p.name == "hello"));

    let db = db_against("signal-hook");
    let scanned = scan_image(
        &raw,
        "hello",
        &ImageScanOptions {
            db: Some(db.path().to_path_buf()),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(scanned.binaries_audited, ["/app/hello"]);
    let vuln = scanned
        .report
        .findings
        .iter()
        .find(|f| f.rule_id == "RUSTSEC-2099-0100")
        .unwrap_or_else(|| panic!("{:#?}", scanned.report));
    assert_eq!(vuln.file, "/app/hello");
    assert!(vuln.message.contains("via hello"), "{}", vuln.message);
    assert!(
        scanned.report.errors.is_empty(),
        "{:?}",
        scanned.report.errors
    );
}

#[test]
fn a_malformed_audit_section_is_named_and_the_rest_scanned() {
    let key = aws_key(8);
    let garbage = tug_image::oci::auditable::object_file(
        "x86_64-unknown-linux-gnu",
        b"\x78\x9cnot zlib at all",
    )
    .unwrap();
    let img = image(
        vec![LayerBuilder::new(0)
            .file("/bin/tool", garbage, 0o755)
            .unwrap()
            .file("/etc/app.env", format!("AWS_ACCESS_KEY_ID={key}\n"), 0o644)
            .unwrap()],
        ImageConfig {
            user: Some("1000".into()),
            ..Default::default()
        },
    );
    let db = db_against("signal-hook");
    let r = scan_image(
        &img.to_raw(),
        "m",
        &ImageScanOptions {
            db: Some(db.path().to_path_buf()),
            ..Default::default()
        },
    )
    .unwrap()
    .report;
    assert!(
        r.errors.iter().any(|e| {
            let f = e.file.display().to_string();
            f.starts_with("layer 0 (sha256:")
                && f.ends_with(":/bin/tool")
                && e.message.contains(".dep-v0")
        }),
        "{:?}",
        r.errors
    );
    assert!(r.findings.iter().any(|f| f.file == "/etc/app.env"));
}
