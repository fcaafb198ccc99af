//! The tree walk: parallel, .gitignore-aware; each file is read once and
//! handed to every file scanner.

use crate::finding::{FileError, Finding};
use crate::FileScanner;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Files larger than this are not scanned (generated data, archives).
pub const MAX_FILE_SIZE: u64 = 1024 * 1024;
/// Cargo.lock files may be larger; they are parsed, not pattern-matched.
const MAX_LOCKFILE_SIZE: u64 = 64 * 1024 * 1024;

/// One file, read once.
#[derive(Clone, Debug)]
pub struct SourceFile {
    pub path: PathBuf,
    /// Path relative to the scan root, `/`-separated.
    pub rel: String,
    /// File name.
    pub name: String,
    pub text: String,
}

#[derive(Default)]
pub(crate) struct Walked {
    pub findings: Vec<Finding>,
    pub errors: Vec<FileError>,
    pub lockfiles: Vec<SourceFile>,
    pub files: usize,
}

/// Cargo's build directory: `target/` beside a Cargo.toml, or tagged as a cache.
fn is_cargo_target(path: &Path) -> bool {
    path.file_name().is_some_and(|n| n == "target")
        && (path.join("CACHEDIR.TAG").exists()
            || path.parent().is_some_and(|p| p.join("Cargo.toml").exists()))
}

fn rel_path(root: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(root).unwrap_or(path);
    let s = if rel.as_os_str().is_empty() {
        path.file_name()
            .map(Path::new)
            .unwrap_or(path)
            .to_string_lossy()
            .into_owned()
    } else {
        rel.to_string_lossy().into_owned()
    };
    s.replace('\\', "/")
}

pub(crate) fn walk(root: &Path, scanners: &[Box<dyn FileScanner>], want_lockfiles: bool) -> Walked {
    let out = Mutex::new(Walked::default());
    let walker = ignore::WalkBuilder::new(root)
        .hidden(false)
        .require_git(false)
        .filter_entry(|e| {
            let is_dir = e.file_type().is_some_and(|t| t.is_dir());
            !(is_dir && (e.file_name() == ".git" || is_cargo_target(e.path())))
        })
        .build_parallel();
    walker.run(|| {
        let out = &out;
        let mut local = Walked::default();
        Box::new(move |entry| {
            let entry = match entry {
                Ok(e) => e,
                Err(err) => {
                    local.errors.push(FileError {
                        file: root.to_path_buf(),
                        line: 1,
                        col: 1,
                        message: format!("cannot walk: {err}"),
                        hint: None,
                    });
                    return ignore::WalkState::Continue;
                }
            };
            if !entry.file_type().is_some_and(|t| t.is_file()) {
                flush(out, &mut local);
                return ignore::WalkState::Continue;
            }
            visit(root, entry.path(), scanners, want_lockfiles, &mut local);
            flush(out, &mut local);
            ignore::WalkState::Continue
        })
    });
    out.into_inner().unwrap_or_else(|p| p.into_inner())
}

fn flush(out: &Mutex<Walked>, local: &mut Walked) {
    // Flush every file: the visitor closure has no end hook, and the lock is uncontended.
    let mut g = out.lock().unwrap_or_else(|p| p.into_inner());
    g.findings.append(&mut local.findings);
    g.errors.append(&mut local.errors);
    g.lockfiles.append(&mut local.lockfiles);
    g.files += std::mem::take(&mut local.files);
}

fn visit(
    root: &Path,
    path: &Path,
    scanners: &[Box<dyn FileScanner>],
    want_lockfiles: bool,
    out: &mut Walked,
) {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let is_lock = name == "Cargo.lock";
    let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let limit = if is_lock && want_lockfiles {
        MAX_LOCKFILE_SIZE
    } else {
        MAX_FILE_SIZE
    };
    let audited_lock = is_lock && want_lockfiles;
    if size > limit || (scanners.is_empty() && !audited_lock) {
        // A lockfile left unread is left unaudited: say so.
        if audited_lock {
            out.errors.push(FileError {
                file: path.to_path_buf(),
                line: 1,
                col: 1,
                message: format!(
                    "Cargo.lock of {size} bytes is over the {} MiB limit; not audited",
                    MAX_LOCKFILE_SIZE >> 20
                ),
                hint: None,
            });
        }
        return;
    }
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => {
            out.errors.push(FileError {
                file: path.to_path_buf(),
                line: 1,
                col: 1,
                message: format!("cannot read: {e}"),
                hint: None,
            });
            return;
        }
    };
    if let Some(nul) = bytes[..bytes.len().min(8192)].iter().position(|&b| b == 0) {
        if audited_lock {
            let before = String::from_utf8_lossy(&bytes[..nul]);
            let (line, col) = crate::finding::line_col(&before, before.len());
            out.errors.push(FileError {
                file: path.to_path_buf(),
                line,
                col,
                message: "invalid Cargo.lock: binary content (a NUL byte); not audited".into(),
                hint: Some("regenerate it with `cargo generate-lockfile`".into()),
            });
        }
        return;
    }
    out.files += 1;
    let file = SourceFile {
        path: path.to_path_buf(),
        rel: rel_path(root, path),
        name,
        text: String::from_utf8_lossy(&bytes).into_owned(),
    };
    for s in scanners {
        let (mut f, mut e) = s.scan(&file);
        out.findings.append(&mut f);
        out.errors.append(&mut e);
    }
    if audited_lock {
        out.lockfiles.push(file);
    }
}
