//! `tug scan`: Cargo.lock audit against RustSec advisories, secret
//! detection and configuration policy checks in one pass over a tree.
//!
//! ```text
//! walk (parallel, .gitignore-aware) ──► each file read once
//!     ├─► secret scanner   (FileScanner)
//!     ├─► config scanner   (FileScanner)
//!     └─► Cargo.lock kept ─► vuln audit (tree level, after the walk)
//!                                   └─► Report ─► table | json | sarif
//! ```
//!
//! ```no_run
//! use tug_scan::{scan, ScanOptions, ScannerKind};
//! let mut opts = ScanOptions::new(".");
//! opts.scanners = vec![ScannerKind::Secret, ScannerKind::Config];
//! let report = scan(&opts).unwrap();
//! print!("{}", tug_scan::render::table(&report));
//! ```

pub mod config;
pub mod finding;
pub mod image;
pub mod render;
pub mod sbom;
pub mod secret;
pub mod vuln;
mod walk;

pub use finding::{AdvisoryInfo, AdvisoryKind, FileError, Finding, ScannerKind, Severity};
pub use walk::SourceFile;

use serde::Serialize;
use std::path::{Path, PathBuf};

/// A scanner that looks at one file at a time.
pub trait FileScanner: Send + Sync {
    fn kind(&self) -> ScannerKind;
    /// Findings for one file, plus errors for input it could not parse.
    fn scan(&self, file: &SourceFile) -> (Vec<Finding>, Vec<FileError>);
}

/// What to scan and how.
#[derive(Clone, Debug)]
pub struct ScanOptions {
    pub root: PathBuf,
    pub scanners: Vec<ScannerKind>,
    /// Advisory database; `None` means `vuln::default_db_dir()`.
    pub db: Option<PathBuf>,
    /// Advisory ids to ignore (on top of `.tugscanignore.yaml`).
    pub ignore: Vec<String>,
    /// Keep only these severities; empty keeps all.
    pub severities: Vec<Severity>,
    /// Also scan the added lines of every git commit for secrets.
    pub git_history: bool,
}

impl ScanOptions {
    pub fn new(root: impl Into<PathBuf>) -> ScanOptions {
        ScanOptions {
            root: root.into(),
            scanners: ScannerKind::ALL.to_vec(),
            db: None,
            ignore: Vec::new(),
            severities: Vec::new(),
            git_history: false,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("{} does not exist", .0.display())]
    NoRoot(PathBuf),
    #[error(transparent)]
    Db(#[from] vuln::DbError),
    #[error("{0}")]
    Input(FileError),
    #[error("{0}")]
    Git(String),
}

impl ScanError {
    pub fn hint(&self) -> Option<&str> {
        match self {
            ScanError::Db(e) => Some(e.hint()),
            ScanError::Input(e) => e.hint.as_deref(),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Stats {
    pub files: usize,
    pub lockfiles: usize,
    pub packages: usize,
    pub advisories_loaded: usize,
    pub ignored: usize,
}

/// Everything one scan found.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    pub root: PathBuf,
    pub scanners: Vec<ScannerKind>,
    pub findings: Vec<Finding>,
    /// Things the user should know that are not findings (expired ignores).
    pub notices: Vec<String>,
    /// Files that could not be read or parsed; the scan went on without them.
    pub errors: Vec<FileError>,
    pub stats: Stats,
}

impl Report {
    /// Whether any finding that is not informational remains (after the
    /// severity filter): the `--exit-code` condition.
    pub fn has_failures(&self) -> bool {
        self.findings.iter().any(|f| !f.is_informational())
    }

    /// Files under the scanned tree that could not be parsed (an advisory
    /// database elsewhere does not count): they fail `--exit-code` unless
    /// errors are skipped, since what they hold was not checked.
    pub fn input_errors(&self) -> impl Iterator<Item = &FileError> {
        let dir = if self.root.is_dir() {
            self.root.clone()
        } else {
            self.root
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_default()
        };
        self.errors.iter().filter(move |e| e.file.starts_with(&dir))
    }
}

/// Runs the selected scanners over `opts.root`.
pub fn scan(opts: &ScanOptions) -> Result<Report, ScanError> {
    let root = &opts.root;
    if !root.exists() {
        return Err(ScanError::NoRoot(root.clone()));
    }
    let dir = if root.is_dir() {
        root.clone()
    } else {
        root.parent().map(Path::to_path_buf).unwrap_or_default()
    };
    let want = |k| opts.scanners.contains(&k);
    let mut report = Report {
        root: root.clone(),
        scanners: opts.scanners.clone(),
        ..Default::default()
    };

    let mut file_scanners: Vec<Box<dyn FileScanner>> = Vec::new();
    let mut allow = secret::Allowlist::default();
    if want(ScannerKind::Secret) {
        let allow_file = dir.join(secret::ALLOW_FILE);
        if let Ok(text) = std::fs::read_to_string(&allow_file) {
            allow = secret::Allowlist::parse(&text).map_err(|(line, message)| {
                ScanError::Input(FileError {
                    file: allow_file.clone(),
                    line,
                    col: 1,
                    message,
                    hint: Some("one path glob or 16-hex fingerprint a line".into()),
                })
            })?;
        }
        file_scanners.push(Box::new(SecretScanner {
            allow: allow.clone(),
        }));
    }
    let skipped_templates = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    if want(ScannerKind::Config) {
        file_scanners.push(Box::new(ConfigScanner {
            skipped: skipped_templates.clone(),
        }));
    }

    let walked = walk::walk(root, &file_scanners, want(ScannerKind::Vuln));
    report.findings = walked.findings;
    report.errors = walked.errors;
    report.stats.files = walked.files;
    let mut skipped =
        std::mem::take(&mut *skipped_templates.lock().unwrap_or_else(|e| e.into_inner()));
    skipped.sort();
    for rel in skipped {
        report.notices.push(format!(
            "{rel}: skipped: a template ({{{{ }}}} outside strings); scan the rendered output (helm template … > out.yaml)"
        ));
    }

    if want(ScannerKind::Vuln) && !walked.lockfiles.is_empty() {
        audit(opts, &dir, walked.lockfiles, &mut report)?;
    }
    if opts.git_history && want(ScannerKind::Secret) {
        let found = secret::history::scan_history(&dir, &allow).map_err(ScanError::Git)?;
        report.findings.extend(found);
    }

    // Parse errors may quote their input: never let a secret through them.
    for e in &mut report.errors {
        e.message = secret::redact_in(&e.message);
    }
    if !opts.severities.is_empty() {
        report
            .findings
            .retain(|f| opts.severities.contains(&f.severity));
    }
    report.findings.sort_by(|a, b| {
        (
            a.scanner,
            std::cmp::Reverse(a.severity),
            &a.file,
            a.line,
            &a.rule_id,
        )
            .cmp(&(
                b.scanner,
                std::cmp::Reverse(b.severity),
                &b.file,
                b.line,
                &b.rule_id,
            ))
    });
    report
        .errors
        .sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
    Ok(report)
}

fn audit(
    opts: &ScanOptions,
    dir: &Path,
    lockfiles: Vec<SourceFile>,
    report: &mut Report,
) -> Result<(), ScanError> {
    let db_dir = opts.db.clone().unwrap_or_else(vuln::default_db_dir);
    let mut db = vuln::Database::open(&db_dir)?;
    let ignore_path = dir.join(vuln::ignorefile::FILE_NAME);
    let mut ignores = vuln::ignorefile::Ignores::default();
    if let Ok(text) = std::fs::read_to_string(&ignore_path) {
        match vuln::ignorefile::parse(&text, &ignore_path, &vuln::ignorefile::today()) {
            Ok(ig) => ignores = ig,
            Err(e) => report.errors.push(e),
        }
    }
    for e in &ignores.expired {
        report.notices.push(format!(
            "{}: ignore of {} expired on {}; it is reported again{}",
            ignore_path.display(),
            e.id,
            e.expires.as_deref().unwrap_or_default(),
            e.reason
                .as_deref()
                .map(|r| format!(" (reason was: {r})"))
                .unwrap_or_default()
        ));
    }
    let names: std::collections::BTreeSet<&str> = lockfiles
        .iter()
        .flat_map(|l| vuln::crate_names(&l.text))
        .collect();
    db.load_crates(names.iter().copied());
    report.stats.advisories_loaded = db.len();
    report.errors.append(&mut db.errors);
    report.stats.lockfiles = lockfiles.len();
    for lf in &lockfiles {
        report.stats.packages += vuln::package_count(&lf.text);
        match vuln::audit_lockfile(&db, &lf.text, &lf.rel, &lf.path) {
            Ok(found) => {
                for f in found {
                    if opts.ignore.contains(&f.rule_id) || ignores.is_ignored(&f.rule_id) {
                        report.stats.ignored += 1;
                    } else {
                        report.findings.push(f);
                    }
                }
            }
            Err(e) => report.errors.push(e),
        }
    }
    Ok(())
}

struct SecretScanner {
    allow: secret::Allowlist,
}

impl FileScanner for SecretScanner {
    fn kind(&self) -> ScannerKind {
        ScannerKind::Secret
    }
    fn scan(&self, file: &SourceFile) -> (Vec<Finding>, Vec<FileError>) {
        if secret::is_lockfile(&file.name) || self.allow.allows_path(&file.rel) {
            return (Vec::new(), Vec::new());
        }
        (
            secret::scan_text(&file.text, &file.rel, &self.allow),
            Vec::new(),
        )
    }
}

struct ConfigScanner {
    /// Files skipped as templates, reported as notices after the walk.
    skipped: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl FileScanner for ConfigScanner {
    fn kind(&self) -> ScannerKind {
        ScannerKind::Config
    }
    fn scan(&self, file: &SourceFile) -> (Vec<Finding>, Vec<FileError>) {
        let Some(kind) = config::classify(&file.name, &file.text) else {
            if config::is_skipped_template(&file.name, &file.text) {
                self.skipped
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(file.rel.clone());
            }
            return (Vec::new(), Vec::new());
        };
        let (mut findings, errors) = config::scan(kind, &file.text, &file.rel, &file.path);
        // Point the column at the key or instruction, past indentation and list dashes.
        let lines: Vec<&str> = file.text.lines().collect();
        for f in &mut findings {
            if let Some(l) = lines.get(f.line.wrapping_sub(1)) {
                let body = l.trim_start().trim_start_matches("- ").trim_start();
                f.col = l.chars().count() - body.chars().count() + 1;
            }
        }
        (findings, errors)
    }
}
