//! Interoperability with the real `cargo auditable` (crates.io
//! cargo-auditable, installed by scripts/test.sh): tug reads what it
//! embeds, and tug's builder embeds the same list for the same crate.

use std::path::Path;
use std::process::Command;
use tug_scan::image::auditable::{read, AuditData};

fn cargo_auditable() -> bool {
    let ok = Command::new("cargo")
        .args(["auditable", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        if std::env::var("TUG_REQUIRE_TOOLS").is_ok_and(|v| v == "1") {
            panic!("TUG_REQUIRE_TOOLS=1 but `cargo auditable` is not installed (cargo install --locked cargo-auditable)");
        }
        eprintln!(
            "\n!!! SKIPPED: `cargo auditable` is not installed; scripts/test.sh installs it\n"
        );
    }
    ok
}

#[test]
fn tug_reads_cargo_auditables_section_and_embeds_the_same_list() {
    if !cargo_auditable() {
        return;
    }
    let ws = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap();
    let target = tempfile::tempdir().unwrap();
    let out = Command::new("cargo")
        .current_dir(&ws)
        .args(["auditable", "build", "--locked", "--release", "-p", "hello"])
        .arg("--target-dir")
        .arg(target.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let binary = std::fs::read(target.path().join("release/hello")).unwrap();

    // tug reads the section cargo auditable wrote.
    let AuditData::Found(lock) = read(&binary) else {
        panic!("no audit data read back from cargo auditable's binary");
    };
    let names: Vec<&str> = lock.packages.iter().map(|p| p.name.as_str()).collect();
    assert!(
        names.contains(&"hello") && names.contains(&"signal-hook"),
        "{names:?}"
    );

    // And tug's builder writes the same list for the same package.
    let theirs = auditable_info::audit_info_from_slice(&binary, 8 << 20).unwrap();
    let host = tug_image::oci::host_target().unwrap();
    let meta = tug_image::oci::auditable::cargo_metadata(&ws, &host).unwrap();
    let ours = tug_image::oci::auditable::dependency_list(&meta, "hello").unwrap();
    assert_eq!(ours.packages, theirs.packages);
}
