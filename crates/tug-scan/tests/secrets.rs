mod common;

use common::*;
use tug_scan::{render, scan, ScanOptions, ScannerKind};

fn secret_scan(root: &std::path::Path) -> tug_scan::Report {
    let mut o = ScanOptions::new(root);
    o.scanners = vec![ScannerKind::Secret];
    scan(&o).unwrap()
}

#[test]
fn every_rule_finds_its_planted_secret_and_no_decoy() {
    let dir = tempfile::tempdir().unwrap();
    for (i, p) in planted().iter().enumerate() {
        write(
            dir.path(),
            &format!("src/planted_{i:02}.txt"),
            &format!("first line\n{}\n", p.line),
        );
    }
    for (i, d) in decoys().iter().enumerate() {
        write(
            dir.path(),
            &format!("src/decoy_{i:02}.txt"),
            &format!("{d}\n"),
        );
    }
    let report = secret_scan(dir.path());
    for (i, p) in planted().iter().enumerate() {
        let file = format!("src/planted_{i:02}.txt");
        let found: Vec<_> = report.findings.iter().filter(|f| f.file == file).collect();
        assert_eq!(found.len(), 1, "{} in {file}: {found:?}", p.rule);
        assert_eq!(found[0].rule_id, p.rule, "{file}");
        assert_eq!(found[0].line, 2, "{file}");
    }
    let stray: Vec<_> = report
        .findings
        .iter()
        .filter(|f| f.file.contains("decoy"))
        .collect();
    assert!(stray.is_empty(), "decoys reported: {stray:#?}");
}

#[test]
fn secrets_never_appear_in_any_output() {
    let dir = tempfile::tempdir().unwrap();
    let all: String = planted().iter().map(|p| format!("{}\n", p.line)).collect();
    write(dir.path(), "config/all.env", &all);
    let report = secret_scan(dir.path());
    assert!(report.findings.len() >= planted().len());
    let outputs = [
        render::table(&report),
        render::json(&report),
        render::sarif(&report),
        format!("{report:?}"),
    ];
    for p in planted() {
        for out in &outputs {
            assert!(!out.contains(&p.secret), "{} leaked", p.rule);
            // Not even a long prefix of it.
            let prefix: String = p.secret.chars().take(12).collect();
            assert!(!out.contains(&prefix), "{} prefix leaked", p.rule);
        }
    }
    let gh = report
        .findings
        .iter()
        .find(|f| f.rule_id == "TUGS005")
        .unwrap();
    assert_eq!(gh.redacted.as_deref(), Some("ghp_…(40 chars)"));
}

#[test]
fn gitignore_binaries_lockfiles_and_big_files_are_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let tok = checksummed("ghp_", 40);
    write(dir.path(), ".gitignore", "ignored/\n");
    write(dir.path(), "ignored/a.txt", &tok);
    write(dir.path(), "package-lock.json", &tok);
    write(
        dir.path(),
        "big.txt",
        &format!("{tok}\n{}", "x".repeat(1024 * 1024 + 1)),
    );
    let mut bin = tok.clone().into_bytes();
    bin.push(0);
    std::fs::write(dir.path().join("blob.bin"), bin).unwrap();
    write(dir.path(), "target/debug/out.txt", &tok);
    write(dir.path(), "Cargo.toml", "[package]\nname = \"x\"\n");
    write(dir.path(), "visible.txt", &tok);
    write(dir.path(), ".env", &tok);
    let report = secret_scan(dir.path());
    let files: Vec<_> = report.findings.iter().map(|f| f.file.as_str()).collect();
    assert_eq!(files, [".env", "visible.txt"]);
}

#[test]
fn allowlist_file_takes_globs_and_fingerprints() {
    let dir = tempfile::tempdir().unwrap();
    let a = checksummed("ghp_", 41);
    let b = checksummed("ghp_", 42);
    write(dir.path(), "docs/examples/a.md", &a);
    write(dir.path(), "src/b.rs", &format!("let t = \"{b}\";\n"));
    write(dir.path(), "src/c.rs", &format!("let t = \"{a}\";\n"));
    let before = secret_scan(dir.path());
    assert_eq!(before.findings.len(), 3);
    let fp = before
        .findings
        .iter()
        .find(|f| f.file == "src/b.rs")
        .unwrap()
        .fingerprint
        .clone()
        .unwrap();
    write(
        dir.path(),
        ".tugsecretsignore",
        &format!("# reviewed\ndocs/examples/\n{fp}\n"),
    );
    let after = secret_scan(dir.path());
    let files: Vec<_> = after.findings.iter().map(|f| f.file.as_str()).collect();
    assert_eq!(files, ["src/c.rs"]);
}

#[test]
fn git_history_reports_commit_file_and_line() {
    if std::process::Command::new("git")
        .arg("--version")
        .output()
        .is_err()
    {
        panic!("git is required for this test");
    }
    let dir = tempfile::tempdir().unwrap();
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git")
            .arg("-C")
            .arg(dir.path())
            .args([
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@t",
                "-c",
                "commit.gpgsign=false",
            ])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    git(&["init", "-q"]);
    let tok = format!("glpat-{}", rand_str(43, 20, ALNUM));
    write(
        dir.path(),
        "app.cfg",
        &format!("a = 1\nb = 2\ngitlab = {tok}\n"),
    );
    git(&["add", "."]);
    git(&["commit", "-qm", "add config"]);
    let leaked = git(&["rev-parse", "HEAD"]);
    write(dir.path(), "app.cfg", "a = 1\nb = 2\n");
    git(&["commit", "-qam", "remove token"]);

    let mut o = ScanOptions::new(dir.path());
    o.scanners = vec![ScannerKind::Secret];
    assert!(scan(&o).unwrap().findings.is_empty());
    o.git_history = true;
    let report = scan(&o).unwrap();
    assert_eq!(report.findings.len(), 1, "{:#?}", report.findings);
    let f = &report.findings[0];
    assert_eq!(
        (f.file.as_str(), f.line, f.rule_id.as_str()),
        ("app.cfg", 3, "TUGS007")
    );
    assert_eq!(f.commit.as_ref().unwrap().commit, leaked);
    assert!(!render::json(&report).contains(&tok));
}
