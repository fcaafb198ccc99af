//! The linter on real-world Dockerfiles (tests/data/dockerfile-corpus, each
//! folder with its licence and source): every file lints without panicking
//! and the rule IDs found per file match the committed snapshot
//! `expected.txt`. After a deliberate change, regenerate it with
//! `UPDATE_SNAPSHOTS=1 cargo test -p tug-image --test lint_corpus` and review the diff.
//! Agreement with hadolint on the same files: scripts/bench/lint.sh.

use std::path::{Path, PathBuf};
use tug_image::lint::{lint, Config, ContextFacts};

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/dockerfile-corpus")
}

fn dockerfiles() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for dir in std::fs::read_dir(corpus()).unwrap().flatten() {
        if !dir.path().is_dir() {
            continue;
        }
        for f in std::fs::read_dir(dir.path()).unwrap().flatten() {
            let name = f.file_name().to_string_lossy().into_owned();
            if name.contains("Dockerfile") || name.contains("Containerfile") {
                files.push(f.path());
            }
        }
    }
    files.sort();
    files
}

fn snapshot(config: &Config) -> String {
    let mut out = String::new();
    for path in dockerfiles() {
        let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
        let report = lint(&text, config, &ContextFacts::default());
        let rel = path.strip_prefix(corpus()).unwrap().display().to_string();
        let found: Vec<String> = report
            .findings
            .iter()
            .map(|f| format!("{}@{}", f.rule, f.line))
            .collect();
        out.push_str(&format!("{rel}: {}\n", found.join(" ")));
    }
    out
}

#[test]
fn corpus_is_large_enough_and_licensed() {
    let files = dockerfiles();
    assert!(files.len() >= 60, "{} Dockerfiles", files.len());
    for dir in std::fs::read_dir(corpus()).unwrap().flatten() {
        if dir.path().is_dir() {
            assert!(dir.path().join("LICENSE").is_file(), "{:?}", dir.path());
            assert!(dir.path().join("SOURCE").is_file(), "{:?}", dir.path());
        }
    }
}

#[test]
fn rule_ids_per_file_match_the_snapshot() {
    let mut text = String::from("# default profile\n");
    text.push_str(&snapshot(&Config::default()));
    text.push_str("# --strict\n");
    text.push_str(&snapshot(&Config {
        strict: true,
        ..Config::default()
    }));
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
}
