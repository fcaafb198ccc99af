mod common;

use common::*;
use tug_scan::{scan, AdvisoryKind, ScanOptions, ScannerKind, Severity};

fn vuln_scan(root: &std::path::Path) -> tug_scan::Report {
    let mut o = ScanOptions::new(root);
    o.scanners = vec![ScannerKind::Vuln];
    o.db = Some(fixture_db());
    scan(&o).unwrap()
}

fn ids(report: &tug_scan::Report) -> Vec<String> {
    report
        .findings
        .iter()
        .map(|f| {
            let a = f.advisory.as_ref().unwrap();
            format!("{} {}@{}", f.rule_id, a.package, a.version)
        })
        .collect()
}

#[test]
fn vulnerable_lockfile_against_fixture_db() {
    let report = vuln_scan(&fixtures().join("vulnerable"));
    let mut got = ids(&report);
    got.sort();
    assert_eq!(
        got,
        [
            "RUSTSEC-2099-0001 vulnpkg@1.1.0",
            "RUSTSEC-2099-0001 vulnpkg@2.0.5",
            "RUSTSEC-2099-0002 prepkg@0.5.0-beta.1",
            "RUSTSEC-2099-0004 oldpkg@1.0.0",
            "RUSTSEC-2099-0005 unsoundpkg@2.9.9",
            "RUSTSEC-2099-0007 brokenpkg@1.0.0",
        ]
    );
    // The withdrawn advisory (gonepkg) never shows.
    assert!(!got.iter().any(|g| g.contains("0003")));
    let v = report
        .findings
        .iter()
        .find(|f| f.rule_id == "RUSTSEC-2099-0001")
        .unwrap();
    let a = v.advisory.as_ref().unwrap();
    assert_eq!(v.severity, Severity::Critical);
    assert_eq!(a.cvss_score, Some(9.8));
    assert_eq!(a.aliases, ["CVE-2099-0001", "GHSA-aaaa-bbbb-cccc"]);
    assert_eq!(a.path, ["app 0.1.0", "helper 0.3.0", "vulnpkg 1.1.0"]);
    assert_eq!((v.file.as_str(), v.line), ("Cargo.lock", 27));
    assert_eq!(v.title, "Buffer overflow in vulnpkg::parse");
    // Unscored vulnerability: HIGH; informational kinds are flagged as such.
    let pre = report
        .findings
        .iter()
        .find(|f| f.rule_id == "RUSTSEC-2099-0002")
        .unwrap();
    assert_eq!(pre.severity, Severity::High);
    let old = report
        .findings
        .iter()
        .find(|f| f.rule_id == "RUSTSEC-2099-0004")
        .unwrap();
    assert!(old.is_informational());
    assert_eq!(
        old.advisory.as_ref().unwrap().kind,
        AdvisoryKind::Unmaintained
    );
    let unsound = report
        .findings
        .iter()
        .find(|f| f.rule_id == "RUSTSEC-2099-0005")
        .unwrap();
    assert_eq!(
        unsound.advisory.as_ref().unwrap().kind,
        AdvisoryKind::Unsound
    );
    assert!(report.has_failures());
    // The broken advisory is an error with file:line, and its sibling still matched.
    let e = report
        .errors
        .iter()
        .find(|e| e.file.ends_with("RUSTSEC-2099-0006.md"))
        .unwrap();
    assert_eq!(e.line, 8);
}

#[test]
fn fixed_lockfile_is_clean() {
    let report = vuln_scan(&fixtures().join("fixed"));
    assert_eq!(ids(&report), Vec::<String>::new());
    assert!(!report.has_failures());
    assert_eq!(report.stats.lockfiles, 1);
}

#[test]
fn nested_lockfiles_gitignore_and_target_dirs() {
    let dir = tempfile::tempdir().unwrap();
    let lock = std::fs::read_to_string(fixtures().join("vulnerable/Cargo.lock")).unwrap();
    write(dir.path(), "Cargo.toml", "[workspace]\n");
    write(dir.path(), "Cargo.lock", &lock);
    write(dir.path(), "tools/gen/Cargo.lock", &lock);
    write(dir.path(), "target/package/x/Cargo.lock", &lock);
    write(dir.path(), ".gitignore", "vendored/\n");
    write(dir.path(), "vendored/Cargo.lock", &lock);
    let report = vuln_scan(dir.path());
    assert_eq!(report.stats.lockfiles, 2);
    // vulnpkg 1.1.0 and 2.0.5 are two packages: 9 per lockfile, not 8 names.
    assert_eq!(report.stats.packages, 18);
    for file in ["Cargo.lock", "tools/gen/Cargo.lock"] {
        assert_eq!(
            report.findings.iter().filter(|f| f.file == file).count(),
            6,
            "{file}"
        );
    }
    assert_eq!(report.findings.len(), 12);
}

#[test]
fn ignore_flag_and_ignore_file_with_expiry() {
    let dir = tempfile::tempdir().unwrap();
    let lock = std::fs::read_to_string(fixtures().join("vulnerable/Cargo.lock")).unwrap();
    write(dir.path(), "Cargo.lock", &lock);
    write(
        dir.path(),
        ".tugscanignore.yaml",
        "ignore:\n  - id: RUSTSEC-2099-0002\n    reason: \"beta only in dev builds\"\n    expires: 2999-12-31\n  - id: RUSTSEC-2099-0007\n    reason: \"was accepted\"\n    expires: 2020-01-31\n",
    );
    let mut o = ScanOptions::new(dir.path());
    o.scanners = vec![ScannerKind::Vuln];
    o.db = Some(fixture_db());
    o.ignore = vec!["RUSTSEC-2099-0001".into()];
    let report = scan(&o).unwrap();
    let got = ids(&report);
    assert!(!got.iter().any(|g| g.contains("2099-0001")), "{got:?}");
    assert!(!got.iter().any(|g| g.contains("2099-0002")), "{got:?}");
    assert!(
        got.iter().any(|g| g.contains("2099-0007")),
        "expired ignore must report again"
    );
    assert_eq!(report.stats.ignored, 3);
    assert_eq!(report.notices.len(), 1);
    assert!(
        report.notices[0].contains("RUSTSEC-2099-0007") && report.notices[0].contains("expired")
    );
}

#[test]
fn missing_db_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "Cargo.lock", "version = 4\n");
    let mut o = ScanOptions::new(dir.path());
    o.db = Some(dir.path().join("no-such-db"));
    let e = scan(&o).unwrap_err();
    assert!(e.to_string().contains("no advisory database at"), "{e}");
    let hint = e.hint().unwrap();
    assert!(
        hint.contains("--update-db") && hint.contains("--db DIR"),
        "{hint}"
    );
    // Without a lockfile, no database is needed.
    std::fs::remove_file(dir.path().join("Cargo.lock")).unwrap();
    assert!(scan(&o).is_ok());
}

#[test]
fn malformed_lockfile_reports_position_and_scan_continues() {
    let dir = tempfile::tempdir().unwrap();
    let lock = std::fs::read_to_string(fixtures().join("vulnerable/Cargo.lock")).unwrap();
    write(dir.path(), "good/Cargo.lock", &lock);
    write(
        dir.path(),
        "bad/Cargo.lock",
        "version = 4\n\n[[package]]\nname = \"x\"\nversion = \"1.0\"\n",
    );
    write(
        dir.path(),
        "worse/Cargo.lock",
        "version = 4\n[[package]\nname = \"x\"\n",
    );
    let report = vuln_scan(dir.path());
    assert_eq!(
        report
            .findings
            .iter()
            .filter(|f| f.file == "good/Cargo.lock")
            .count(),
        6
    );
    let bad = report
        .errors
        .iter()
        .find(|e| e.file.ends_with("bad/Cargo.lock"))
        .unwrap();
    assert_eq!(bad.line, 5);
    assert!(bad.message.contains("invalid version"), "{}", bad.message);
    let worse = report
        .errors
        .iter()
        .find(|e| e.file.ends_with("worse/Cargo.lock"))
        .unwrap();
    assert_eq!(worse.line, 2);
}

#[test]
fn path_and_git_sources_are_not_matched() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "Cargo.lock",
        "version = 4\n\n[[package]]\nname = \"vulnpkg\"\nversion = \"1.1.0\"\n\n[[package]]\nname = \"prepkg\"\nversion = \"0.1.0\"\nsource = \"git+https://example.invalid/prepkg#0123abcd\"\n",
    );
    assert!(vuln_scan(dir.path()).findings.is_empty());
}

#[test]
fn real_database_snapshot_parses_cleanly() {
    // The shared snapshot is data, not an oracle: only check it loads without errors.
    let beside =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/advisory-db");
    let Some(db) = [beside, "/work/shared/data/advisory-db".into()]
        .into_iter()
        .find(|p| p.join("crates").is_dir())
    else {
        eprintln!("SKIP: no shared advisory-db snapshot beside the checkout");
        return;
    };
    let mut d = tug_scan::vuln::Database::open(&db).unwrap();
    d.load_all();
    assert!(
        d.errors.is_empty(),
        "{:#?}",
        &d.errors[..d.errors.len().min(5)]
    );
    assert!(d.len() > 1000);
}

#[test]
fn crlf_lockfile_reports_the_same_findings() {
    // A Windows checkout (git autocrlf) must not hide advisories.
    let dir = tempfile::tempdir().unwrap();
    let lock = std::fs::read_to_string(fixtures().join("vulnerable/Cargo.lock")).unwrap();
    write(dir.path(), "Cargo.lock", &lock.replace('\n', "\r\n"));
    let report = vuln_scan(dir.path());
    assert!(
        !report.errors.iter().any(|e| e.file.ends_with("Cargo.lock")),
        "{:#?}",
        report.errors
    );
    let mut got = ids(&report);
    got.sort();
    let mut want = ids(&vuln_scan(&fixtures().join("vulnerable")));
    want.sort();
    assert_eq!(got.len(), 6);
    assert_eq!(got, want);
}

#[test]
fn only_the_crates_io_sources_are_matched() {
    let lock = |source: &str| {
        format!("version = 4\n\n[[package]]\nname = \"vulnpkg\"\nversion = \"1.1.0\"\nsource = \"{source}\"\n")
    };
    let found = |source: &str| {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "Cargo.lock", &lock(source));
        ids(&vuln_scan(dir.path()))
    };
    assert_eq!(
        found("registry+https://github.com/rust-lang/crates.io-index"),
        ["RUSTSEC-2099-0001 vulnpkg@1.1.0"]
    );
    // crates.io through its sparse index: the same packages (cargo-audit
    // 0.22 misses these; see the lockfile corpus notes).
    assert_eq!(
        found("sparse+https://index.crates.io/"),
        ["RUSTSEC-2099-0001 vulnpkg@1.1.0"]
    );
    // Other registries, even ones whose URL looks like crates.io's, may
    // publish different crates under the same name: as cargo-audit, no match.
    for other in [
        "registry+https://mirrors.example.invalid/git/crates.io-index",
        "sparse+https://index.crates.io.example.invalid/",
        "registry+https://github.com/rust-lang/crates.io-index-fork",
    ] {
        assert!(found(other).is_empty(), "{other}");
    }
}

#[test]
fn unreadable_lockfiles_are_errors_not_silence() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "bin/Cargo.lock",
        "version = 4\n\n[[package]]\nname = \"vulnpkg\"\x00\n",
    );
    // Sparse: over the size limit without writing 64 MiB.
    let huge = dir.path().join("huge/Cargo.lock");
    std::fs::create_dir_all(huge.parent().unwrap()).unwrap();
    std::fs::File::create(&huge)
        .unwrap()
        .set_len(65 << 20)
        .unwrap();
    let report = vuln_scan(dir.path());
    let bin = report
        .errors
        .iter()
        .find(|e| e.file.ends_with("bin/Cargo.lock"))
        .expect("binary lockfile must be an error");
    assert_eq!((bin.line, bin.col), (4, 17));
    assert!(bin.message.contains("NUL"), "{}", bin.message);
    let big = report
        .errors
        .iter()
        .find(|e| e.file.ends_with("huge/Cargo.lock"))
        .expect("oversized lockfile must be an error");
    assert!(big.message.contains("not audited"), "{}", big.message);
    assert_eq!(report.stats.lockfiles, 0);
}
