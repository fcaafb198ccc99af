//! The Cargo.lock audit on real lockfiles (formats v1 to v4, git and path
//! sources, duplicate versions, large workspaces) against the advisories of
//! the crates they name: tug must report exactly what cargo-audit reported
//! (recorded in expected.tsv by regen.sh).

use std::path::Path;
use tug_scan::{scan, AdvisoryKind, ScanOptions, ScannerKind};

fn corpus() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/lockfile-corpus")
}

fn kind_word(k: AdvisoryKind) -> &'static str {
    match k {
        AdvisoryKind::Vulnerability => "vulnerability",
        AdvisoryKind::Unmaintained => "unmaintained",
        AdvisoryKind::Unsound => "unsound",
        AdvisoryKind::Notice => "notice",
    }
}

#[test]
fn corpus_matches_cargo_audit() {
    let root = corpus();
    let mut expected: Vec<String> = std::fs::read_to_string(root.join("expected.tsv"))
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(str::to_string)
        .collect();
    expected.sort();
    let lockfiles = std::fs::read_dir(&root)
        .unwrap()
        .flatten()
        .filter(|e| e.path().join("Cargo.lock").is_file())
        .count();

    let mut o = ScanOptions::new(&root);
    o.scanners = vec![ScannerKind::Vuln];
    o.db = Some(root.join("advisory-db"));
    let report = scan(&o).unwrap();
    assert!(report.errors.is_empty(), "{:#?}", report.errors);
    assert_eq!(report.stats.lockfiles, lockfiles);

    // A list, not a set: a finding reported twice is a divergence too.
    let mut got: Vec<String> = report
        .findings
        .iter()
        .map(|f| {
            let a = f.advisory.as_ref().unwrap();
            format!(
                "{}\t{}\t{}\t{}\t{}",
                f.file,
                a.id,
                a.package,
                a.version,
                kind_word(a.kind)
            )
        })
        .collect();
    got.sort();
    let missing: Vec<_> = expected.iter().filter(|e| !got.contains(e)).collect();
    let extra: Vec<_> = got.iter().filter(|g| !expected.contains(g)).collect();
    assert!(
        missing.is_empty() && extra.is_empty() && got.len() == expected.len(),
        "missing (cargo-audit only): {missing:#?}\nextra (tug only): {extra:#?}"
    );
    // Guards against an empty or truncated expected.tsv.
    assert!(expected.len() > 100, "{}", expected.len());
}
