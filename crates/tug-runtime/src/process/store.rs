//! The state directory: one JSON file per object, written atomically, and one
//! lock file that serialises changes between tug processes.
//!
//! Layout under the root:
//! - `lock`: `flock`ed exclusively around every read-modify-write;
//! - `networks/<name>.json`, `volumes/<name>.json` (+ `volumes/<name>/`, the data);
//! - `containers/<name>/state.json`, `stdout.log`, `stderr.log`, and the
//!   supervisor's `pids` and `exit` files.

use crate::{Result, RuntimeError};
use rustix::fs::{flock, FlockOperation};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// A network or volume record.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Labelled {
    pub name: String,
    pub labels: BTreeMap<String, String>,
}

/// An exec health check, as recorded.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Check {
    pub test: Vec<String>,
    pub interval_ms: u64,
    pub timeout_ms: u64,
    pub retries: u32,
    pub start_period_ms: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum HealthStatus {
    Starting,
    Healthy,
    Unhealthy,
}

/// Results of the exec health check for the current run.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct HealthRecord {
    pub status: Option<HealthStatus>,
    /// Consecutive failures that count (not those in the start period).
    pub failures: u32,
    pub succeeded_once: bool,
    pub last_check_ms: Option<u64>,
    pub output: Option<String>,
}

/// One start of a container: who to watch and signal.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Run {
    /// Process group of the supervisor and the program.
    pub pgid: i32,
    pub waiter: i32,
    pub waiter_start: Option<u64>,
    pub pid: i32,
    /// Field 22 of /proc/<pid>/stat; guards against pid reuse. `None` when the
    /// program was already gone when it was recorded.
    pub start_time: Option<u64>,
    pub started_ms: u64,
    pub host_port: Option<u16>,
}

/// A "container": a supervised process and everything needed to start it again.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Container {
    pub id: String,
    pub name: String,
    pub image: String,
    pub labels: BTreeMap<String, String>,
    pub program: String,
    pub args: Vec<String>,
    /// The environment without `PORT`, which is set at each start.
    pub env: Vec<(String, String)>,
    pub port: Option<u16>,
    pub publish: Option<u16>,
    pub network: Option<String>,
    pub check: Option<Check>,
    pub stop_grace_ms: u64,
    /// Seconds since the epoch.
    pub created: i64,
    pub run: Option<Run>,
    pub exit_code: Option<i64>,
    #[serde(default)]
    pub health: HealthRecord,
}

/// Held while changing state; dropping it releases the lock.
pub(crate) struct Lock {
    _file: File,
}

#[derive(Clone, Debug)]
pub(crate) struct Store {
    pub root: PathBuf,
}

pub(crate) fn io_err(context: impl Into<String>, e: impl ToString) -> RuntimeError {
    RuntimeError::api(context, e)
}

/// Names become file names: keep them to what Docker accepts.
pub(crate) fn check_name(kind: &str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 200
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        && name.starts_with(|c: char| c.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(RuntimeError::api(
            format!("invalid {kind} name {name:?}"),
            "use letters, digits, '_', '.' and '-', starting with a letter or digit",
        ))
    }
}

/// Writes `data` to `path` through a temporary file and a rename, so readers
/// never see a half-written file.
pub(crate) fn write_atomic(path: &Path, data: &[u8]) -> io::Result<()> {
    static N: AtomicU64 = AtomicU64::new(0);
    let tmp = path.with_extension(format!(
        "tmp.{}.{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(data)?;
        f.sync_data()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

fn read_json<T: DeserializeOwned>(path: &Path) -> Result<Option<T>> {
    match fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| io_err(format!("reading {}", path.display()), e)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(format!("reading {}", path.display()), e)),
    }
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let data = serde_json::to_vec_pretty(value).map_err(|e| io_err("encoding state", e))?;
    write_atomic(path, &data).map_err(|e| io_err(format!("writing {}", path.display()), e))
}

fn remove_if_exists(path: &Path) -> Result<()> {
    let r = if path.is_dir() {
        fs::remove_dir_all(path)
    } else {
        fs::remove_file(path)
    };
    match r {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err(format!("removing {}", path.display()), e)),
    }
}

pub(crate) fn matches(labels: &BTreeMap<String, String>, filter: &crate::LabelFilter) -> bool {
    filter.iter().all(|(k, v)| match v {
        Some(v) => labels.get(k) == Some(v),
        None => labels.contains_key(k),
    })
}

impl Store {
    fn dir(&self, kind: &str) -> Result<PathBuf> {
        let d = self.root.join(kind);
        fs::create_dir_all(&d).map_err(|e| io_err(format!("creating {}", d.display()), e))?;
        Ok(d)
    }

    pub fn lock(&self) -> Result<Lock> {
        fs::create_dir_all(&self.root)
            .map_err(|e| io_err(format!("creating {}", self.root.display()), e))?;
        let path = self.root.join("lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| io_err(format!("opening {}", path.display()), e))?;
        flock(&file, FlockOperation::LockExclusive)
            .map_err(|e| io_err(format!("locking {}", path.display()), e))?;
        Ok(Lock { _file: file })
    }

    // Networks and volumes share one shape.

    pub fn put_labelled(
        &self,
        kind: &str,
        name: &str,
        labels: &BTreeMap<String, String>,
    ) -> Result<bool> {
        let path = self.dir(kind)?.join(format!("{name}.json"));
        if path.exists() {
            return Ok(false);
        }
        let rec = Labelled {
            name: name.to_string(),
            labels: labels.clone(),
        };
        write_json(&path, &rec)?;
        Ok(true)
    }

    pub fn has_labelled(&self, kind: &str, name: &str) -> bool {
        self.root.join(kind).join(format!("{name}.json")).exists()
    }

    pub fn remove_labelled(&self, kind: &str, name: &str) -> Result<()> {
        remove_if_exists(&self.root.join(kind).join(format!("{name}.json")))
    }

    pub fn list_labelled(&self, kind: &str, filter: &crate::LabelFilter) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for path in json_files(&self.root.join(kind))? {
            if let Some(rec) = read_json::<Labelled>(&path)? {
                if matches(&rec.labels, filter) {
                    out.push(rec.name);
                }
            }
        }
        out.sort();
        Ok(out)
    }

    pub fn volume_data(&self, name: &str) -> PathBuf {
        self.root.join("volumes").join(name)
    }

    // Containers.

    pub fn container_dir(&self, name: &str) -> PathBuf {
        self.root.join("containers").join(name)
    }

    pub fn create_container_dir(&self, name: &str) -> Result<PathBuf> {
        let d = self.dir("containers")?.join(name);
        fs::create_dir_all(&d).map_err(|e| io_err(format!("creating {}", d.display()), e))?;
        Ok(d)
    }

    pub fn load(&self, name: &str) -> Result<Option<Container>> {
        read_json(&self.container_dir(name).join("state.json"))
    }

    pub fn save(&self, c: &Container) -> Result<()> {
        write_json(&self.container_dir(&c.name).join("state.json"), c)
    }

    pub fn delete_container(&self, name: &str) -> Result<()> {
        remove_if_exists(&self.container_dir(name))
    }

    pub fn all(&self) -> Result<Vec<Container>> {
        let dir = self.root.join("containers");
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err(format!("reading {}", dir.display()), e)),
        };
        let mut out = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            // Removed between the listing and the read: not there any more.
            if let Some(c) = self.load(&name)? {
                out.push(c);
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// A container by name or by id.
    pub fn find(&self, id_or_name: &str) -> Result<Option<Container>> {
        if check_name("container", id_or_name).is_ok() {
            if let Some(c) = self.load(id_or_name)? {
                return Ok(Some(c));
            }
        }
        Ok(self.all()?.into_iter().find(|c| c.id == id_or_name))
    }
}

fn json_files(dir: &Path) -> Result<Vec<PathBuf>> {
    match fs::read_dir(dir) {
        Ok(entries) => Ok(entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(io_err(format!("reading {}", dir.display()), e)),
    }
}
