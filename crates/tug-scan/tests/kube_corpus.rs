//! The configuration checks on real install manifests (tests/data/kube-corpus,
//! each project's folder with its LICENSE and SOURCE): multi-document files
//! with comment-only and empty documents, `kind: List`, Helm-rendered output,
//! kustomize bases, CRDs with pod templates in their schemas, every workload
//! kind. Every file parses, none is skipped, and the findings per file
//! (`rule@line`) match the committed snapshot `expected.txt`. After a
//! deliberate change, regenerate it with
//! `UPDATE_SNAPSHOTS=1 cargo test -p tug-scan --test kube_corpus` and review
//! the diff.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tug_scan::{scan, ScanOptions, ScannerKind};

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/kube-corpus")
}

fn yaml_files(dir: &Path, out: &mut Vec<String>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            yaml_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "yaml" || x == "yml") {
            out.push(p.strip_prefix(corpus()).unwrap().display().to_string());
        }
    }
}

#[test]
fn corpus_is_licensed() {
    let mut n = 0;
    for dir in std::fs::read_dir(corpus()).unwrap().flatten() {
        if dir.path().is_dir() {
            n += 1;
            assert!(dir.path().join("LICENSE").is_file(), "{:?}", dir.path());
            assert!(dir.path().join("SOURCE").is_file(), "{:?}", dir.path());
        }
    }
    assert!(n >= 10, "{n} projects");
}

#[test]
fn findings_per_file_match_the_snapshot() {
    let mut o = ScanOptions::new(corpus());
    o.scanners = vec![ScannerKind::Config];
    let report = scan(&o).unwrap();
    assert!(report.errors.is_empty(), "{:#?}", report.errors);
    // No file is taken for a template and skipped.
    assert!(report.notices.is_empty(), "{:#?}", report.notices);

    let mut files = Vec::new();
    yaml_files(&corpus(), &mut files);
    let mut per_file: BTreeMap<String, Vec<(usize, String)>> =
        files.into_iter().map(|f| (f, Vec::new())).collect();
    for f in &report.findings {
        per_file
            .get_mut(&f.file)
            .unwrap_or_else(|| panic!("finding in an unexpected file {}", f.file))
            .push((f.line, f.rule_id.clone()));
    }
    let mut text = String::new();
    for (file, mut found) in per_file {
        found.sort();
        let list: Vec<String> = found.iter().map(|(l, r)| format!("{r}@{l}")).collect();
        text.push_str(&format!("{file}: {}\n", list.join(" ")));
    }
    let path = corpus().join("expected.txt");
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, &text).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    let diff: Vec<String> = expected
        .lines()
        .zip(text.lines())
        .filter(|(a, b)| a != b)
        .map(|(a, b)| format!("- {a}\n+ {b}"))
        .collect();
    assert!(
        expected == text,
        "findings changed (UPDATE_SNAPSHOTS=1 to accept):\n{}",
        diff.join("\n")
    );
    // Guards against an emptied snapshot.
    assert!(report.findings.len() > 300, "{}", report.findings.len());
}
