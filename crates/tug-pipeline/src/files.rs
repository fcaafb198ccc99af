//! File work for a run: job workspaces, caches and artifacts. Blocking;
//! callers run it through `spawn_blocking`.
//!
//! Layout under the stack's state directory:
//!
//! ```text
//! cache/<key>-<hash>/<path>...      saved directories, shared by runs
//! runs/<id>/ws/<unit>/              a job's workspace (removed after the run)
//! runs/<id>/artifacts/<unit>/<path> what a job left for the jobs that need it
//! runs/<id>/logs/<unit>.log         the job's masked output
//! ```

use sha2::{Digest, Sha256};
use std::io;
use std::path::{Path, PathBuf};

/// Copies the project into `dest`: files `.gitignore` leaves out, `.git`
/// itself and `skip` (a state directory inside the project) are not
/// copied; untracked files are.
pub fn copy_project(src: &Path, dest: &Path, skip: &Path) -> io::Result<u64> {
    std::fs::create_dir_all(dest)?;
    let mut n = 0;
    let (skip, dest_owned) = (skip.to_path_buf(), dest.to_path_buf());
    let walk = ignore::WalkBuilder::new(src)
        .hidden(false)
        .git_global(false)
        .require_git(false)
        .filter_entry(move |e| {
            e.file_name() != ".git" && e.path() != skip && !dest_owned.starts_with(e.path())
                || e.depth() == 0
        })
        .build();
    for entry in walk {
        let entry = entry.map_err(io::Error::other)?;
        let rel = match entry.path().strip_prefix(src) {
            Ok(r) if !r.as_os_str().is_empty() => r,
            _ => continue,
        };
        let to = dest.join(rel);
        copy_entry(entry.path(), &to, &mut n)?;
    }
    Ok(n)
}

fn copy_entry(from: &Path, to: &Path, n: &mut u64) -> io::Result<()> {
    let meta = std::fs::symlink_metadata(from)?;
    let ft = meta.file_type();
    if ft.is_dir() {
        std::fs::create_dir_all(to)?;
    } else if ft.is_symlink() {
        let target = std::fs::read_link(from)?;
        let _ = std::fs::remove_file(to);
        std::os::unix::fs::symlink(target, to)?;
    } else if ft.is_file() {
        if let Some(p) = to.parent() {
            std::fs::create_dir_all(p)?;
        }
        std::fs::copy(from, to)?;
        // Keep the modification time: build tools (cargo, make) judge
        // freshness by it, so a restored cache would otherwise look stale.
        if let Ok(modified) = meta.modified() {
            let f = std::fs::File::options().write(true).open(to)?;
            f.set_times(std::fs::FileTimes::new().set_modified(modified))?;
        }
        *n += 1;
    }
    Ok(())
}

/// Copies a file or a whole directory tree to `to` (merging into what is there).
pub fn copy_tree(from: &Path, to: &Path) -> io::Result<u64> {
    let mut n = 0;
    let meta = std::fs::symlink_metadata(from)?;
    if !meta.is_dir() {
        copy_entry(from, to, &mut n)?;
        return Ok(n);
    }
    std::fs::create_dir_all(to)?;
    let mut stack = vec![from.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir)? {
            let e = e?;
            let p = e.path();
            let rel = p.strip_prefix(from).map_err(io::Error::other)?;
            let dest = to.join(rel);
            if e.file_type()?.is_dir() {
                std::fs::create_dir_all(&dest)?;
                stack.push(p);
            } else {
                copy_entry(&p, &dest, &mut n)?;
            }
        }
    }
    Ok(n)
}

/// The cache key: `prefix-<sha256 of the matched files' paths and contents>`.
/// Files are matched by glob relative to `root`, in path order.
pub fn cache_key(root: &Path, prefix: &str, globs: &[String]) -> io::Result<String> {
    let mut h = Sha256::new();
    if !globs.is_empty() {
        let mut b = globset::GlobSetBuilder::new();
        for g in globs {
            b.add(globset::Glob::new(g).map_err(io::Error::other)?);
        }
        let set = b.build().map_err(io::Error::other)?;
        let mut files: Vec<PathBuf> = Vec::new();
        let walk = ignore::WalkBuilder::new(root)
            .hidden(false)
            .require_git(false)
            .filter_entry(|e| e.file_name() != ".git")
            .build();
        for entry in walk {
            let entry = entry.map_err(io::Error::other)?;
            if !entry.file_type().is_some_and(|t| t.is_file()) {
                continue;
            }
            if let Ok(rel) = entry.path().strip_prefix(root) {
                if set.is_match(rel) {
                    files.push(rel.to_path_buf());
                }
            }
        }
        files.sort();
        for f in files {
            h.update(f.to_string_lossy().as_bytes());
            h.update([0]);
            h.update(std::fs::read(root.join(&f))?);
            h.update([0]);
        }
    }
    let digest = hex::encode(h.finalize());
    Ok(format!("{prefix}-{}", &digest[..16]))
}

/// Removes a directory tree; a missing one is fine.
pub fn remove_tree(p: &Path) -> io::Result<()> {
    match std::fs::remove_dir_all(p) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_copy_honours_gitignore_and_keeps_untracked_files() {
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("src");
        std::fs::create_dir_all(src.join(".git")).unwrap();
        std::fs::create_dir_all(src.join("target/debug")).unwrap();
        std::fs::create_dir_all(src.join("sub")).unwrap();
        std::fs::write(src.join(".gitignore"), "target/\n").unwrap();
        std::fs::write(src.join(".git/HEAD"), "ref").unwrap();
        std::fs::write(src.join("target/debug/x"), "big").unwrap();
        std::fs::write(src.join("sub/new.txt"), "untracked").unwrap();
        let dest = d.path().join("ws");
        copy_project(&src, &dest, &d.path().join("none")).unwrap();
        assert!(dest.join("sub/new.txt").exists());
        assert!(dest.join(".gitignore").exists());
        assert!(!dest.join("target").exists());
        assert!(!dest.join(".git").exists());
    }

    #[test]
    fn cache_key_follows_file_contents() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("Cargo.lock"), "a").unwrap();
        let k1 = cache_key(d.path(), "cargo", &["Cargo.lock".into()]).unwrap();
        let k2 = cache_key(d.path(), "cargo", &["Cargo.lock".into()]).unwrap();
        assert_eq!(k1, k2);
        assert!(k1.starts_with("cargo-"));
        std::fs::write(d.path().join("Cargo.lock"), "b").unwrap();
        let k3 = cache_key(d.path(), "cargo", &["Cargo.lock".into()]).unwrap();
        assert_ne!(k1, k3);
    }
}
