//! The executable's hash is the process runtime's image id, asked for on
//! every converge; reading a large binary each time costs most of a wake.
//! Hashes are kept per path and re-read only when the file's size,
//! modification time, inode, device or status-change time moved (a
//! rebuild or a replacement changes at least one).

use super::store::io_err;
use crate::Result;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// What identifies one version of a file without reading it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp {
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
    inode: u64,
    device: u64,
}

impl Stamp {
    fn of(m: &std::fs::Metadata) -> Self {
        Stamp {
            size: m.size(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
            inode: m.ino(),
            device: m.dev(),
        }
    }
}

/// Hashes of executables, by path.
#[derive(Debug, Default)]
pub(crate) struct HashCache {
    known: Mutex<HashMap<PathBuf, (Stamp, String)>>,
}

impl HashCache {
    /// `sha256:<hex>` of the file at `path` with metadata `meta`, read with
    /// `read` only when the file changed since it was last hashed.
    pub(crate) fn hash_with(
        &self,
        path: &Path,
        meta: &std::fs::Metadata,
        read: impl FnOnce(&Path) -> io::Result<String>,
    ) -> Result<String> {
        let stamp = Stamp::of(meta);
        if let Some((s, h)) = self
            .known
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(path)
        {
            if *s == stamp {
                return Ok(h.clone());
            }
        }
        let h = read(path).map_err(|e| io_err(format!("reading {}", path.display()), e))?;
        // A file written while it was read may hash a half-written state:
        // keep it only if its stamp did not move meanwhile.
        if std::fs::metadata(path).is_ok_and(|m| Stamp::of(&m) == stamp) {
            self.known
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(path.to_path_buf(), (stamp, h.clone()));
        }
        Ok(h)
    }

    pub(crate) fn hash(&self, path: &Path, meta: &std::fs::Metadata) -> Result<String> {
        self.hash_with(path, meta, sha256_file)
    }
}

fn sha256_file(path: &Path) -> io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    io::copy(&mut f, &mut h)?;
    Ok(format!("sha256:{}", hex::encode(h.finalize())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    fn counted(reads: &Cell<u32>) -> impl FnOnce(&Path) -> io::Result<String> + '_ {
        move |p| {
            reads.set(reads.get() + 1);
            sha256_file(p)
        }
    }

    #[test]
    fn an_unchanged_file_is_not_read_again_a_changed_one_is() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app");
        std::fs::write(&path, b"version one").unwrap();
        let cache = HashCache::default();
        let reads = Cell::new(0);
        let meta = || std::fs::metadata(&path).unwrap();
        let first = cache.hash_with(&path, &meta(), counted(&reads)).unwrap();
        let again = cache.hash_with(&path, &meta(), counted(&reads)).unwrap();
        assert_eq!(first, again);
        assert_eq!(reads.get(), 1, "the unchanged file was not read again");

        // Rebuilt in place: another size and modification time.
        std::fs::write(&path, b"version two, longer").unwrap();
        let rebuilt = cache.hash_with(&path, &meta(), counted(&reads)).unwrap();
        assert_eq!(reads.get(), 2);
        assert_ne!(rebuilt, first);
        assert_eq!(rebuilt, sha256_file(&path).unwrap());

        // Same size, new modification time.
        std::fs::write(&path, b"version three, longe").unwrap();
        let f = std::fs::File::options().write(true).open(&path).unwrap();
        f.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(5))
            .unwrap();
        let touched = cache.hash_with(&path, &meta(), counted(&reads)).unwrap();
        assert_eq!(reads.get(), 3);
        assert_ne!(touched, rebuilt);

        // Replaced by another file (a new inode), as `cargo build` or a
        // rename does.
        let other = dir.path().join("app.new");
        std::fs::write(&other, b"version four").unwrap();
        std::fs::rename(&other, &path).unwrap();
        let replaced = cache.hash_with(&path, &meta(), counted(&reads)).unwrap();
        assert_eq!(reads.get(), 4);
        assert_eq!(replaced, sha256_file(&path).unwrap());
        cache.hash_with(&path, &meta(), counted(&reads)).unwrap();
        assert_eq!(reads.get(), 4);
    }
}
