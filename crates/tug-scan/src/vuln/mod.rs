//! Dependency audit: every Cargo.lock against a local RustSec database.

pub mod advisory;
pub mod ignorefile;
pub mod lockfile;

use crate::finding::{line_col, AdvisoryInfo, AdvisoryKind, FileError, Finding, ScannerKind};
use advisory::Advisory;
use lockfile::{Lockfile, Source};
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

/// The upstream database `--update-db` clones.
pub const ADVISORY_DB_URL: &str = "https://github.com/rustsec/advisory-db";

/// Advisories loaded from disk, by crate name.
#[derive(Debug, Default)]
pub struct Database {
    pub root: PathBuf,
    by_crate: HashMap<String, Vec<Advisory>>,
    pub errors: Vec<FileError>,
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("no advisory database at {}", .0.display())]
    Missing(PathBuf),
}

impl DbError {
    pub fn hint(&self) -> &'static str {
        "fetch one with `tug scan --update-db`, or point to a local copy with `--db DIR` (or $TUG_ADVISORY_DB)"
    }
}

/// Default location: `$TUG_ADVISORY_DB`, else `$XDG_CACHE_HOME/tug/advisory-db`,
/// else `~/.cache/tug/advisory-db`.
pub fn default_db_dir() -> PathBuf {
    if let Some(p) = std::env::var_os("TUG_ADVISORY_DB").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from(".cache"));
    cache.join("tug").join("advisory-db")
}

impl Database {
    /// Opens a database directory (it must hold `crates/`). Advisories are
    /// read lazily per crate name by `load_crates`.
    pub fn open(root: &Path) -> Result<Database, DbError> {
        if !root.join("crates").is_dir() {
            return Err(DbError::Missing(root.to_path_buf()));
        }
        Ok(Database {
            root: root.to_path_buf(),
            ..Default::default()
        })
    }

    /// Reads the advisories of the given crates (only those a lockfile
    /// names: a full scan reads a few files, not the whole database), on
    /// every core.
    pub fn load_crates<'a>(&mut self, names: impl IntoIterator<Item = &'a str>) {
        let todo: Vec<&str> = names
            .into_iter()
            .filter(|n| !self.by_crate.contains_key(*n))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(todo.len().div_ceil(64).max(1));
        let chunk = todo.len().div_ceil(threads).max(1);
        let root = &self.root;
        let loaded: Vec<Loaded> = std::thread::scope(|s| {
            let handles: Vec<_> = todo
                .chunks(chunk)
                .map(|names| s.spawn(move || load_some(root, names)))
                .collect();
            handles.into_iter().filter_map(|h| h.join().ok()).collect()
        });
        for (lists, mut errors) in loaded {
            self.by_crate.extend(lists);
            self.errors.append(&mut errors);
        }
    }

    /// Reads every advisory (for tools and benchmarks).
    pub fn load_all(&mut self) {
        let names: Vec<String> = std::fs::read_dir(self.root.join("crates"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        self.load_crates(names.iter().map(String::as_str));
    }

    pub fn advisories(&self, name: &str) -> &[Advisory] {
        self.by_crate.get(name).map(Vec::as_slice).unwrap_or(&[])
    }

    pub fn len(&self) -> usize {
        self.by_crate.values().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Advisories by crate name, and the files that failed to parse.
type Loaded = (Vec<(String, Vec<Advisory>)>, Vec<FileError>);

/// Reads and parses the advisories of `names`.
fn load_some(root: &Path, names: &[&str]) -> Loaded {
    let mut out = Vec::with_capacity(names.len());
    let mut errors = Vec::new();
    for &name in names {
        let mut list = Vec::new();
        // Crate names are [A-Za-z0-9_-]; anything else cannot be a directory of the db.
        let safe = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        let dir = root.join("crates").join(name);
        if safe && dir.is_dir() {
            let mut files: Vec<_> = std::fs::read_dir(&dir)
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "md"))
                .collect();
            files.sort();
            for file in files {
                let text = match std::fs::read_to_string(&file) {
                    Ok(t) => t,
                    Err(e) => {
                        errors.push(FileError {
                            file,
                            line: 1,
                            col: 1,
                            message: format!("cannot read advisory: {e}"),
                            hint: None,
                        });
                        continue;
                    }
                };
                match Advisory::parse(&text) {
                    Ok(a) => list.push(a),
                    Err(e) => {
                        let (line, col) = line_col(&text, e.offset);
                        errors.push(FileError {
                            file,
                            line,
                            col,
                            message: format!("invalid advisory: {}", e.message),
                            hint: Some(
                                "this advisory is skipped; update the database with `tug scan --update-db`"
                                    .into(),
                            ),
                        });
                    }
                }
            }
        }
        out.push((name.to_string(), list));
    }
    (out, errors)
}

/// Clones the database, or fast-forwards an existing clone, with `git`.
pub fn update_db(dir: &Path) -> Result<String, String> {
    let run = |args: &[&str]| -> Result<(), String> {
        let out = std::process::Command::new("git")
            .args(args)
            .output()
            .map_err(|e| format!("cannot run git: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "git {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    };
    let d = dir.to_string_lossy();
    if dir.join(".git").exists() {
        run(&["-C", &d, "pull", "--ff-only", "--quiet"])?;
        Ok(format!("updated advisory database at {d}"))
    } else {
        if let Some(parent) = dir.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
        run(&["clone", "--quiet", ADVISORY_DB_URL, &d])?;
        Ok(format!("cloned advisory database into {d}"))
    }
}

/// Whether a package comes from crates.io (see [`tug_image::oci::auditable::is_crates_io`]).
pub fn is_crates_io(source: &Source) -> bool {
    matches!(source, Source::Registry(s) if tug_image::oci::auditable::is_crates_io(s))
}

/// Audits one lockfile's text. `rel` is the path shown in findings.
pub fn audit_lockfile(
    db: &Database,
    text: &str,
    rel: &str,
    path: &Path,
) -> Result<Vec<Finding>, FileError> {
    let lock = Lockfile::parse(text).map_err(|e| {
        let (line, col) = line_col(text, e.offset);
        FileError {
            file: path.to_path_buf(),
            line,
            col,
            message: format!("invalid Cargo.lock: {}", e.message),
            hint: Some("regenerate it with `cargo generate-lockfile`".into()),
        }
    })?;
    Ok(audit_lock(db, &lock, rel))
}

/// Audits a parsed dependency list (from a Cargo.lock, or the one
/// `cargo auditable` embeds in a binary). `rel` is the path shown in findings.
pub fn audit_lock(db: &Database, lock: &Lockfile, rel: &str) -> Vec<Finding> {
    let mut findings = Vec::new();
    let paths = lock.paths();
    for (i, pkg) in lock.packages.iter().enumerate() {
        // Advisories are about crates.io packages; path and git sources are not covered.
        if !is_crates_io(&pkg.source) {
            continue;
        }
        for adv in db.advisories(&pkg.name) {
            if adv.withdrawn || !adv.affects(&pkg.version) {
                continue;
            }
            let path: Vec<String> = paths
                .path_to(i)
                .into_iter()
                .map(|j| format!("{} {}", lock.packages[j].name, lock.packages[j].version))
                .collect();
            let patched: Vec<String> = adv.patched.iter().map(ToString::to_string).collect();
            let fix = if patched.is_empty() {
                match adv.kind {
                    AdvisoryKind::Unmaintained => {
                        "no maintained release: move to an alternative crate".to_string()
                    }
                    _ => "no fixed release: remove the dependency or move to an alternative"
                        .to_string(),
                }
            } else {
                format!(
                    "upgrade {} to {} (`cargo update -p {}@{}`)",
                    pkg.name,
                    patched.join(" or "),
                    pkg.name,
                    pkg.version
                )
            };
            let kind_word = match adv.kind {
                AdvisoryKind::Vulnerability => "vulnerable",
                AdvisoryKind::Unmaintained => "unmaintained",
                AdvisoryKind::Unsound => "unsound",
                AdvisoryKind::Notice => "notice",
            };
            findings.push(Finding {
                scanner: ScannerKind::Vuln,
                rule_id: adv.id.clone(),
                severity: adv.severity(),
                title: adv.title.clone(),
                message: format!(
                    "{} {} is {kind_word} ({}){}",
                    pkg.name,
                    pkg.version,
                    adv.id,
                    if path.len() > 1 {
                        format!(", via {}", path.join(" → "))
                    } else {
                        String::new()
                    }
                ),
                file: rel.to_string(),
                line: pkg.line,
                col: 1,
                fix: Some(fix),
                advisory: Some(AdvisoryInfo {
                    id: adv.id.clone(),
                    package: pkg.name.clone(),
                    version: pkg.version.to_string(),
                    kind: adv.kind,
                    aliases: adv.aliases.clone(),
                    cvss: adv.cvss.clone(),
                    cvss_score: adv.cvss_score,
                    url: adv.url.clone(),
                    date: adv.date.clone(),
                    patched,
                    path,
                }),
                redacted: None,
                fingerprint: None,
                commit: None,
            });
        }
    }
    findings
}

/// Crate names a lockfile mentions, without a full parse (for `load_crates`).
pub fn crate_names(text: &str) -> BTreeSet<&str> {
    text.lines()
        .filter_map(|l| l.strip_prefix("name = \""))
        .filter_map(|l| l.strip_suffix('"'))
        .collect()
}

/// Packages a lockfile lists: one per `[[package]]` table, so two versions
/// of one crate count twice.
pub fn package_count(text: &str) -> usize {
    text.lines().filter(|l| l.trim() == "[[package]]").count()
}
