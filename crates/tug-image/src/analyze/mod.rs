//! Layer analysis in the manner of dive: per layer its size, the command that
//! made it and the files it adds, modifies and removes; then wasted bytes and
//! an efficiency score computed as dive computes them, and CI rules with
//! dive's names (`lowest_efficiency`, `highest_wasted_bytes`,
//! `highest_user_wasted_percent`).
//!
//! Dive's accounting, reproduced here so scores agree:
//! - every leaf path of every layer (a file, or a directory with nothing under
//!   it in that layer, or a whiteout) is one sighting of that path; its size is
//!   the file size, or for a whiteout of a directory the size of everything
//!   under it in the layers below (a whiteout of a file counts 0);
//! - a path sighted in two or more layers is an inefficiency; wasted bytes are
//!   the sum of the cumulative sizes of all such paths (every sighting counts,
//!   the surviving copy too);
//! - efficiency = Σ smallest sighting per path / Σ all sightings;
//! - a layer's size is the sum of its entries' sizes; the user size leaves the
//!   first layer out; user wasted percent = wasted / user size.
//!
//! Opaque-directory markers (`.wh..wh..opq`) are ignored by the score, as dive
//! does, but listed as removals.

use crate::oci::{OciError, RawImage};
use crate::registry::{ClientOptions, Reference, RegistryError};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Read;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum AnalyzeError {
    #[error(transparent)]
    Oci(#[from] OciError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error("layer {digest}: {source}")]
    Tar {
        digest: String,
        #[source]
        source: std::io::Error,
    },
}

/// Where an image comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImageSource {
    /// `oci:DIR`: an OCI image layout directory.
    OciLayout(PathBuf),
    /// `docker-archive:FILE`: a `docker save` tar.
    DockerArchive(PathBuf),
    /// Anything else: a registry reference.
    Registry(Reference),
}

impl ImageSource {
    pub fn parse(s: &str) -> Result<ImageSource, crate::registry::ReferenceError> {
        if let Some(dir) = s.strip_prefix("oci:") {
            Ok(ImageSource::OciLayout(dir.into()))
        } else if let Some(file) = s.strip_prefix("docker-archive:") {
            Ok(ImageSource::DockerArchive(file.into()))
        } else {
            Ok(ImageSource::Registry(Reference::parse(s)?))
        }
    }

    /// Reads every blob of the image.
    pub fn load(&self, registry: &ClientOptions) -> Result<RawImage, AnalyzeError> {
        Ok(match self {
            ImageSource::OciLayout(dir) => crate::oci::read_oci_layout(dir, None)?,
            ImageSource::DockerArchive(file) => {
                let f = std::fs::File::open(file).map_err(|source| OciError::Io {
                    path: file.clone(),
                    source,
                })?;
                crate::oci::read_docker_archive(
                    std::io::BufReader::new(f),
                    &file.display().to_string(),
                )?
            }
            ImageSource::Registry(r) => crate::registry::pull(r, registry)?,
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    Added,
    Modified,
    Removed,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct FileChange {
    pub path: String,
    pub kind: ChangeKind,
    /// Bytes of the file (for a removal: what the lower layers held there).
    pub size: u64,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct LayerReport {
    pub index: usize,
    pub digest: String,
    /// Sum of the entry sizes in the layer (dive's layer size).
    pub size: u64,
    /// Bytes of the blob as stored (compressed or not).
    pub blob_size: u64,
    pub created_by: String,
    pub changes: Vec<FileChange>,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Inefficiency {
    pub path: String,
    /// Layers that hold (or remove) the path.
    pub count: usize,
    pub cumulative_size: u64,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct Analysis {
    pub layers: Vec<LayerReport>,
    pub size_bytes: u64,
    pub user_size_bytes: u64,
    pub wasted_bytes: u64,
    pub wasted_user_percent: f64,
    pub efficiency: f64,
    /// Largest first.
    pub inefficiencies: Vec<Inefficiency>,
}

struct TarEntry {
    path: String,
    size: u64,
    dir: bool,
    whiteout: bool,
    opaque: bool,
}

fn clean(p: &str) -> String {
    p.split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect::<Vec<_>>()
        .join("/")
}

fn entries(layer: &crate::oci::RawLayer) -> Result<Vec<TarEntry>, AnalyzeError> {
    let tar = layer.tar()?;
    let err = |source| AnalyzeError::Tar {
        digest: layer.digest.clone(),
        source,
    };
    let mut out = Vec::new();
    let mut ar = tar::Archive::new(tar.as_slice());
    for e in ar.entries().map_err(err)? {
        let mut e = e.map_err(err)?;
        let path = clean(&e.path().map_err(err)?.to_string_lossy());
        if path.is_empty() {
            continue;
        }
        let size = e.header().size().map_err(err)?;
        let dir = e.header().entry_type().is_dir();
        // Drain so the archive reader can move on without seeking.
        std::io::copy(&mut e.by_ref().take(size), &mut std::io::sink()).map_err(err)?;
        let (parent, base) = path
            .rsplit_once('/')
            .map_or(("", path.as_str()), |(p, b)| (p, b));
        if base == ".wh..wh..opq" {
            out.push(TarEntry {
                path: parent.to_string(),
                size: 0,
                dir: true,
                whiteout: false,
                opaque: true,
            });
        } else if base.starts_with(".wh..wh.") {
            continue;
        } else if let Some(name) = base.strip_prefix(".wh.") {
            let path = if parent.is_empty() {
                name.to_string()
            } else {
                format!("{parent}/{name}")
            };
            out.push(TarEntry {
                path,
                size: 0,
                dir: false,
                whiteout: true,
                opaque: false,
            });
        } else {
            out.push(TarEntry {
                path,
                size,
                dir,
                whiteout: false,
                opaque: false,
            });
        }
    }
    Ok(out)
}

/// The merged filesystem of the layers seen so far: path → (size, is_dir).
#[derive(Default)]
struct Stack(BTreeMap<String, (u64, bool)>);

impl Stack {
    fn under<'a>(
        &'a self,
        dir: &'a str,
    ) -> impl Iterator<Item = (&'a String, &'a (u64, bool))> + 'a {
        let prefix = format!("{dir}/");
        self.0
            .range(prefix.clone()..)
            .take_while(move |(k, _)| k.starts_with(&prefix))
    }
    /// Size of a path with everything under it.
    fn size_of_tree(&self, path: &str) -> u64 {
        self.0.get(path).map_or(0, |(s, _)| *s) + self.under(path).map(|(_, (s, _))| s).sum::<u64>()
    }
    fn remove_tree(&mut self, path: &str) {
        let doomed: Vec<String> = self.under(path).map(|(k, _)| k.clone()).collect();
        for k in doomed {
            self.0.remove(&k);
        }
        self.0.remove(path);
    }
    fn add(&mut self, path: &str, size: u64, dir: bool) {
        let mut p = path;
        while let Some(i) = p.rfind('/') {
            p = &p[..i];
            self.0.entry(p.to_string()).or_insert((0, true));
        }
        self.0.insert(path.to_string(), (size, dir));
    }
}

/// Which layer each history line belongs to (empty layers have no tar).
fn history(config: &serde_json::Value) -> Vec<String> {
    config["history"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|h| h["empty_layer"].as_bool() != Some(true))
        .map(|h| {
            h["created_by"]
                .as_str()
                .unwrap_or_default()
                .trim()
                .to_string()
        })
        .collect()
}

pub fn analyze(image: &RawImage) -> Result<Analysis, AnalyzeError> {
    let config = image.config_json()?;
    let created_by = history(&config);
    #[derive(Default)]
    struct Seen {
        cumulative: u64,
        min: u64,
        count: usize,
    }
    let mut seen: HashMap<String, Seen> = HashMap::new();
    let mut stack = Stack::default();
    let mut layers = Vec::new();
    for (index, layer) in image.layers.iter().enumerate() {
        let es = entries(layer)?;
        // A path is a leaf when nothing else in this layer lies under it.
        let mut parents: BTreeSet<&str> = BTreeSet::new();
        for e in es.iter().filter(|e| !e.opaque) {
            let mut p = e.path.as_str();
            while let Some(i) = p.rfind('/') {
                p = &p[..i];
                parents.insert(p);
            }
        }
        let mut changes = Vec::new();
        for e in es.iter().filter(|e| !e.opaque) {
            let size = if e.whiteout {
                match stack.0.get(&e.path) {
                    Some((_, true)) => stack.size_of_tree(&e.path),
                    _ => 0,
                }
            } else {
                e.size
            };
            if !parents.contains(e.path.as_str()) {
                let s = seen.entry(format!("/{}", e.path)).or_insert(Seen {
                    cumulative: 0,
                    min: u64::MAX,
                    count: 0,
                });
                s.cumulative += size;
                s.min = s.min.min(size);
                s.count += 1;
            }
        }
        for e in es.iter().filter(|e| e.opaque) {
            let present: BTreeSet<&str> = es
                .iter()
                .filter(|x| !x.opaque)
                .map(|x| x.path.as_str())
                .collect();
            let hidden: Vec<(String, u64)> = stack
                .under(&e.path)
                .filter(|(k, _)| !present.contains(k.as_str()))
                .map(|(k, (s, _))| (k.clone(), *s))
                .collect();
            for (k, s) in hidden {
                changes.push(FileChange {
                    path: format!("/{k}"),
                    kind: ChangeKind::Removed,
                    size: s,
                });
                stack.0.remove(&k);
            }
        }
        for e in es.iter().filter(|e| e.whiteout) {
            if stack.0.contains_key(&e.path) {
                changes.push(FileChange {
                    path: format!("/{}", e.path),
                    kind: ChangeKind::Removed,
                    size: stack.size_of_tree(&e.path),
                });
            }
            stack.remove_tree(&e.path);
        }
        let mut size = 0;
        for e in es.iter().filter(|e| !e.whiteout && !e.opaque) {
            size += e.size;
            let kind = match stack.0.get(&e.path) {
                None => Some(ChangeKind::Added),
                Some(_) if e.dir => None,
                Some(_) => Some(ChangeKind::Modified),
            };
            if let Some(kind) = kind {
                changes.push(FileChange {
                    path: format!("/{}", e.path),
                    kind,
                    size: e.size,
                });
            }
            stack.add(&e.path, e.size, e.dir);
        }
        changes.sort_by(|a, b| a.path.cmp(&b.path));
        layers.push(LayerReport {
            index,
            digest: layer.digest.clone(),
            size,
            blob_size: layer.data.len() as u64,
            created_by: created_by.get(index).cloned().unwrap_or_default(),
            changes,
        });
    }
    let (mut minimum, mut discovered) = (0u64, 0u64);
    let mut inefficiencies = Vec::new();
    for (path, s) in &seen {
        minimum += s.min;
        discovered += s.cumulative;
        if s.count > 1 {
            inefficiencies.push(Inefficiency {
                path: path.clone(),
                count: s.count,
                cumulative_size: s.cumulative,
            });
        }
    }
    inefficiencies.sort_by(|a, b| {
        b.cumulative_size
            .cmp(&a.cumulative_size)
            .then(a.path.cmp(&b.path))
    });
    let wasted_bytes: u64 = inefficiencies.iter().map(|i| i.cumulative_size).sum();
    let size_bytes: u64 = layers.iter().map(|l| l.size).sum();
    let user_size_bytes: u64 = layers.iter().skip(1).map(|l| l.size).sum();
    Ok(Analysis {
        layers,
        size_bytes,
        user_size_bytes,
        wasted_bytes,
        wasted_user_percent: if user_size_bytes == 0 {
            0.0
        } else {
            wasted_bytes as f64 / user_size_bytes as f64
        },
        efficiency: if discovered == 0 {
            1.0
        } else {
            minimum as f64 / discovered as f64
        },
        inefficiencies,
    })
}

/// dive's CI thresholds; `None` disables a rule.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CiRules {
    /// Fail when the efficiency is below this (0..1).
    pub lowest_efficiency: Option<f64>,
    /// Fail when more bytes than this are wasted.
    pub highest_wasted_bytes: Option<u64>,
    /// Fail when wasted / user size is above this (0..1).
    pub highest_user_wasted_percent: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct RuleOutcome {
    pub rule: &'static str,
    pub passed: bool,
    pub actual: f64,
    pub limit: f64,
}

#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct CiReport {
    pub passed: bool,
    pub rules: Vec<RuleOutcome>,
}

impl Analysis {
    pub fn evaluate(&self, rules: &CiRules) -> CiReport {
        let mut out = Vec::new();
        if let Some(l) = rules.lowest_efficiency {
            out.push(RuleOutcome {
                rule: "lowest_efficiency",
                passed: self.efficiency >= l,
                actual: self.efficiency,
                limit: l,
            });
        }
        if let Some(l) = rules.highest_wasted_bytes {
            out.push(RuleOutcome {
                rule: "highest_wasted_bytes",
                passed: self.wasted_bytes <= l,
                actual: self.wasted_bytes as f64,
                limit: l as f64,
            });
        }
        if let Some(l) = rules.highest_user_wasted_percent {
            out.push(RuleOutcome {
                rule: "highest_user_wasted_percent",
                passed: self.wasted_user_percent <= l,
                actual: self.wasted_user_percent,
                limit: l,
            });
        }
        CiReport {
            passed: out.iter().all(|r| r.passed),
            rules: out,
        }
    }
}
