//! Deterministic tar layers: sorted entries, fixed mtime, fixed owner,
//! normalised modes, no user or group names, no pax time headers, gzip with a
//! zero header mtime and no file name.

use super::{sha256_digest, OciError, MEDIA_LAYER_GZIP};
use flate2::{Compression, GzBuilder};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

/// What one layer entry is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EntryKind {
    File(Vec<u8>),
    Dir,
    Symlink(String),
    /// Removes the path from lower layers (`.wh.<name>`).
    Whiteout,
    /// Hides everything lower layers put in this directory (`.wh..wh..opq`).
    Opaque,
}

#[derive(Clone, Debug)]
struct Entry {
    kind: EntryKind,
    mode: u32,
    uid: u64,
    gid: u64,
}

/// Collects the files of one layer; paths are absolute in the image (`/app/x`).
#[derive(Clone, Debug)]
pub struct LayerBuilder {
    entries: BTreeMap<String, Entry>,
    mtime: u64,
    owner: (u64, u64),
}

/// A finished layer: gzip-compressed tar plus its digests.
#[derive(Clone, Debug)]
pub struct Layer {
    pub media_type: String,
    /// The blob as stored (gzip-compressed tar).
    pub data: Vec<u8>,
    /// sha256 of `data`.
    pub digest: String,
    /// sha256 of the uncompressed tar (the config's `rootfs.diff_ids`).
    pub diff_id: String,
    /// The history line shown by `tug image inspect`.
    pub created_by: String,
}

fn normalise(path: &str) -> Result<String, OciError> {
    let mut parts = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                return Err(OciError::Invalid(format!(
                    "layer path {path:?} leaves the image root"
                )))
            }
            p => parts.push(p),
        }
    }
    if parts.is_empty() {
        return Err(OciError::Invalid(format!("layer path {path:?} is empty")));
    }
    Ok(parts.join("/"))
}

impl LayerBuilder {
    /// `mtime` is the timestamp every entry gets (SOURCE_DATE_EPOCH).
    pub fn new(mtime: u64) -> Self {
        LayerBuilder {
            entries: BTreeMap::new(),
            mtime,
            owner: (0, 0),
        }
    }

    /// Owner for entries added after this call (default root, 0:0).
    pub fn owner(mut self, uid: u64, gid: u64) -> Self {
        self.owner = (uid, gid);
        self
    }

    fn put(mut self, path: &str, kind: EntryKind, mode: u32) -> Result<Self, OciError> {
        let path = normalise(path)?;
        let (uid, gid) = self.owner;
        self.entries.insert(
            path,
            Entry {
                kind,
                mode: mode & 0o7777,
                uid,
                gid,
            },
        );
        Ok(self)
    }

    pub fn file(self, path: &str, data: impl Into<Vec<u8>>, mode: u32) -> Result<Self, OciError> {
        self.put(path, EntryKind::File(data.into()), mode)
    }

    /// Copies a host file; only its bytes are kept, never its metadata.
    pub fn host_file(self, path: &str, host: &Path, mode: u32) -> Result<Self, OciError> {
        let data = std::fs::read(host).map_err(|source| OciError::Io {
            path: host.to_path_buf(),
            source,
        })?;
        self.file(path, data, mode)
    }

    pub fn dir(self, path: &str, mode: u32) -> Result<Self, OciError> {
        self.put(path, EntryKind::Dir, mode)
    }

    pub fn symlink(self, path: &str, target: &str) -> Result<Self, OciError> {
        self.put(path, EntryKind::Symlink(target.to_string()), 0o777)
    }

    pub fn whiteout(self, path: &str) -> Result<Self, OciError> {
        self.put(path, EntryKind::Whiteout, 0o644)
    }

    pub fn opaque(self, dir: &str) -> Result<Self, OciError> {
        self.put(dir, EntryKind::Opaque, 0o755)
    }

    /// The uncompressed tar, byte for byte the same for the same entries.
    pub fn tar(&self) -> Result<Vec<u8>, OciError> {
        // Parent directories every entry needs, unless given explicitly.
        let mut all: BTreeMap<String, Entry> = self.entries.clone();
        for path in self.entries.keys() {
            let mut p = path.as_str();
            while let Some(i) = p.rfind('/') {
                p = &p[..i];
                all.entry(p.to_string()).or_insert(Entry {
                    kind: EntryKind::Dir,
                    mode: 0o755,
                    uid: 0,
                    gid: 0,
                });
            }
        }
        let mut out = tar::Builder::new(Vec::new());
        out.mode(tar::HeaderMode::Deterministic);
        for (path, e) in &all {
            let mut h = tar::Header::new_gnu();
            h.set_mtime(self.mtime);
            h.set_uid(e.uid);
            h.set_gid(e.gid);
            h.set_mode(e.mode);
            let io = |source| OciError::Io {
                path: path.into(),
                source,
            };
            match &e.kind {
                EntryKind::File(data) => {
                    h.set_entry_type(tar::EntryType::Regular);
                    h.set_size(data.len() as u64);
                    out.append_data(&mut h, path, data.as_slice()).map_err(io)?;
                }
                EntryKind::Dir => {
                    h.set_entry_type(tar::EntryType::Directory);
                    h.set_size(0);
                    out.append_data(&mut h, format!("{path}/"), std::io::empty())
                        .map_err(io)?;
                }
                EntryKind::Symlink(target) => {
                    h.set_entry_type(tar::EntryType::Symlink);
                    h.set_size(0);
                    out.append_link(&mut h, path, target).map_err(io)?;
                }
                EntryKind::Whiteout => {
                    h.set_entry_type(tar::EntryType::Regular);
                    h.set_size(0);
                    let wh = match path.rsplit_once('/') {
                        Some((dir, name)) => format!("{dir}/.wh.{name}"),
                        None => format!(".wh.{path}"),
                    };
                    out.append_data(&mut h, wh, std::io::empty()).map_err(io)?;
                }
                EntryKind::Opaque => {
                    h.set_entry_type(tar::EntryType::Regular);
                    h.set_size(0);
                    out.append_data(&mut h, format!("{path}/.wh..wh..opq"), std::io::empty())
                        .map_err(io)?;
                }
            }
        }
        out.into_inner().map_err(|source| OciError::Io {
            path: "<layer>".into(),
            source,
        })
    }

    /// Compresses the tar and computes both digests.
    pub fn build(&self, created_by: impl Into<String>) -> Result<Layer, OciError> {
        let tar = self.tar()?;
        let diff_id = sha256_digest(&tar);
        let data = gzip(&tar)?;
        Ok(Layer {
            media_type: MEDIA_LAYER_GZIP.to_string(),
            digest: sha256_digest(&data),
            diff_id,
            data,
            created_by: created_by.into(),
        })
    }
}

/// gzip with a fixed header: no name, mtime 0, fixed level.
pub fn gzip(data: &[u8]) -> Result<Vec<u8>, OciError> {
    let mut gz = GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), Compression::new(6));
    let io = |source| OciError::Io {
        path: "<gzip>".into(),
        source,
    };
    gz.write_all(data).map_err(io)?;
    gz.finish().map_err(io)
}
