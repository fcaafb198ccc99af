//! A [`Runtime`] without a container engine: services run as supervised local
//! processes.
//!
//! # Model
//!
//! - **Images** are absolute paths to executables (for example the binary a
//!   `build: { rust: ... }` produced). [`Runtime::inspect_image`] reports
//!   `sha256:<hash of the file>`; pulling, building and loading images fail
//!   with an error that says so.
//! - **Containers** are one JSON state file each under the state directory
//!   (spec, labels, pids, host port, health results), so a later tug process
//!   observes what an earlier one started. Writes go through a temporary file
//!   and a rename; every read-modify-write holds an exclusive `flock` on
//!   `<state dir>/lock`, so concurrent tug invocations do not corrupt state.
//! - The program is `image` (or `entrypoint[0]`, which replaces it) with
//!   `entrypoint[1..]` and `command` as arguments. Its environment is the
//!   spec's env only (plus `PATH` from tug's environment when the spec sets
//!   none), not tug's own. It runs in its own process group, detached from
//!   tug, with stdin from /dev/null and stdout/stderr appended to log files,
//!   under a small `/bin/sh` supervisor that records its exit status.
//!   Liveness is the pid *and* its start time (field 22 of /proc/<pid>/stat),
//!   so a reused pid is never mistaken for the service.
//! - **Ports**: there is no port mapping: the process listens on the host port
//!   itself. `PORT` is set to it (replacing the spec's `PORT`): the fixed
//!   `publish` port, or a free ephemeral port on 127.0.0.1 picked at each start
//!   when the spec has a `port` but no `publish`. A `publish` port used by
//!   another running container of this runtime or by any listener is
//!   [`RuntimeError::PortInUse`].
//! - **Stop** sends SIGTERM to the process group, then SIGKILL after the
//!   grace period (the status is then 137, as with Docker).
//! - **Exec health checks** run on the host with the service's environment,
//!   from `inspect_container`/`list_containers`, at most once per interval;
//!   `start_period` and `retries` (consecutive failures) behave as in Docker.
//! - **Logs** are two files without timestamps, so [`Runtime::logs`] gives
//!   the stdout lines, then the stderr lines, and `tail` applies to each;
//!   `follow` polls until the process has exited and both files are drained.
//! - **Events** ([`Runtime::events`]) come from a watcher that reads the
//!   state files and /proc every 250 ms (running due exec health checks as
//!   `list_containers` does) and reports what changed since its last look:
//!   started, died with the status the supervisor recorded, health changed,
//!   destroyed. A stop and a start within one look are not seen.
//! - **Restarts** are not this adapter's job: the `restart` policy is not
//!   applied and `restart_count` is always 0.
//!
//! # Not enforced, and why
//!
//! A plain process has none of a container's isolation, and setting it up
//! needs privileges (namespaces, cgroups, mounts) tug does not assume:
//!
//! - **Mounts** cannot be remapped to their target path. A named volume is a
//!   directory under the state dir, handed over as `TUG_VOLUME_<NAME>`; every
//!   mount (volume or bind) is also handed over as `TUG_MOUNT_<TARGET>`
//!   (`/data` → `TUG_MOUNT_DATA`), both upper-cased with other characters
//!   turned into `_`. `read_only` mounts are not read-only.
//! - **Networks** are records with labels (listing and removal by label work);
//!   there is no isolation and no DNS aliases: services reach each other on
//!   127.0.0.1 at their host ports.
//! - **tmpfs, read-only root, capabilities, privileged, no-new-privileges,
//!   seccomp, memory, cpu and pids limits** are ignored.
//! - **user**: when tug runs as root and the user is numeric (`uid[:gid]`),
//!   the program and its health check are started through util-linux
//!   `setpriv` with that uid/gid and no supplementary groups (the supervisor
//!   itself stays root so it can record the status in the state dir). Named
//!   users, or tug not running as root, run the process as tug's own user.
//! - The executable runs in place: rebuilding it changes the image id (so the
//!   engine replaces the containers) but a running process keeps the old file.
//! - Linux only: liveness reads /proc.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use tug_runtime::process::ProcessRuntime;
//! use tug_runtime::{ContainerSpec, ContainerState, Runtime};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let rt = ProcessRuntime::new(dir.path().join("process"));
//! let mut spec = ContainerSpec::new("hello-0", "/bin/sh");
//! spec.command = Some(vec!["-c".into(), "echo listening on $PORT; exit 3".into()]);
//! spec.port = Some(8080);
//! let id = rt.create_container(&spec).await?;
//! rt.start_container(&id).await?;
//!
//! // Any later `ProcessRuntime` on the same directory sees the same state.
//! let later = ProcessRuntime::new(dir.path().join("process"));
//! let info = loop {
//!     let info = later.inspect_container("hello-0").await?.expect("created above");
//!     if info.state == ContainerState::Exited {
//!         break info;
//!     }
//!     tokio::time::sleep(Duration::from_millis(20)).await;
//! };
//! assert_eq!(info.exit_code, Some(3));
//! later.remove_container(&id).await?;
//! # Ok(())
//! # }
//! ```

mod hash;
mod logs;
mod store;
mod supervise;

use crate::*;
use futures_util::StreamExt;
use rustix::process::Signal;
use sha2::{Digest, Sha256};
use std::io;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use store::{
    check_name, io_err, matches, Check, Container, HealthRecord, HealthStatus, Run, Store,
};
use supervise::{alive, now_ms, read_exit, start_time, wait_until, write_exit};

/// A [`Runtime`] running services as supervised local processes, with its state
/// kept as files under one directory. Cheap to clone.
#[derive(Clone, Debug)]
pub struct ProcessRuntime {
    store: Arc<Store>,
    hashes: Arc<hash::HashCache>,
}

const LOCAL_ONLY: &str = "the process runtime runs local executables only: set `image` to an absolute path, use `build: { rust: ... }`, or install a container engine (Docker or Podman)";

const SETPRIV: [&str; 2] = ["/usr/bin/setpriv", "/bin/setpriv"];

impl ProcessRuntime {
    /// A runtime keeping its state under `state_dir` (created when needed).
    pub fn new(state_dir: PathBuf) -> Self {
        ProcessRuntime {
            store: Arc::new(Store { root: state_dir }),
            hashes: Arc::default(),
        }
    }

    /// `$TUG_STATE_DIR`, else `$XDG_STATE_HOME/tug`, else `~/.local/state/tug`;
    /// then `/process`.
    pub fn default_dir() -> PathBuf {
        let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
        let base = if let Some(d) = var("TUG_STATE_DIR") {
            PathBuf::from(d)
        } else if let Some(d) = var("XDG_STATE_HOME") {
            PathBuf::from(d).join("tug")
        } else if let Some(h) = var("HOME") {
            PathBuf::from(h).join(".local/state/tug")
        } else {
            std::env::temp_dir().join("tug-state")
        };
        base.join("process")
    }

    /// The state directory.
    pub fn state_dir(&self) -> &std::path::Path {
        &self.store.root
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || f(&store))
            .await
            .map_err(|e| RuntimeError::api("process runtime", e))?
    }
}

/// `Some` with the file's hash when `path` is an absolute path to an executable file.
fn executable_hash(hashes: &hash::HashCache, path: &str) -> Result<Option<String>> {
    let p = std::path::Path::new(path);
    if !p.is_absolute() {
        return Ok(None);
    }
    let meta = match std::fs::metadata(p) {
        Ok(m) => m,
        Err(_) => return Ok(None),
    };
    if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
        return Ok(None);
    }
    hashes.hash(p, &meta).map(Some)
}

fn is_executable(path: &str) -> bool {
    let p = std::path::Path::new(path);
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// `TUG_VOLUME_<NAME>` style variable names.
fn env_key(prefix: &str, name: &str) -> String {
    let s: String = name
        .trim_matches('/')
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("{prefix}{s}")
}

/// The `setpriv` prefix that drops to a numeric `uid[:gid]`, when tug is root.
fn privilege_drop(user: Option<&str>) -> Vec<String> {
    let Some(user) = user else { return Vec::new() };
    if !rustix::process::geteuid().is_root() {
        return Vec::new();
    }
    let (u, g) = user.split_once(':').unwrap_or((user, user));
    let (Ok(uid), Ok(gid)) = (u.parse::<u32>(), g.parse::<u32>()) else {
        return Vec::new();
    };
    if uid == 0 {
        return Vec::new();
    }
    let Some(setpriv) = SETPRIV.iter().find(|p| is_executable(p)) else {
        tracing::warn!("setpriv not found: running as root instead of {user}");
        return Vec::new();
    };
    vec![
        setpriv.to_string(),
        format!("--reuid={uid}"),
        format!("--regid={gid}"),
        "--clear-groups".into(),
        "--".into(),
    ]
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn new_id(name: &str) -> String {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(std::process::id().to_le_bytes());
    h.update(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
            .to_le_bytes(),
    );
    hex::encode(h.finalize())
}

/// The environment a run gets: the recorded one plus `PORT`.
fn run_env(c: &Container, host_port: Option<u16>) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = c.env.clone();
    if let Some(p) = host_port {
        env.push(("PORT".into(), p.to_string()));
    }
    env
}

fn is_running(c: &Container) -> bool {
    c.run.as_ref().is_some_and(|r| alive(r.pid, r.start_time))
}

/// Observed state and exit code of a container.
fn observe(store: &Store, c: &Container) -> (ContainerState, Option<i64>) {
    let Some(run) = &c.run else {
        return (ContainerState::Created, None);
    };
    let dir = store.container_dir(&c.name);
    if let Some(code) = read_exit(&dir) {
        return (ContainerState::Exited, Some(code));
    }
    if alive(run.pid, run.start_time) {
        return (ContainerState::Running, None);
    }
    // The program is gone; its supervisor may be about to record the status.
    wait_until(Duration::from_millis(500), || {
        read_exit(&dir).is_some() || !alive(run.waiter, run.waiter_start)
    });
    (ContainerState::Exited, read_exit(&dir).or(c.exit_code))
}

/// Runs the exec health check when it is due and records the result.
fn check_health(store: &Store, c: &mut Container) -> Result<()> {
    let (Some(check), Some(run)) = (c.check.clone(), c.run.clone()) else {
        return Ok(());
    };
    let now = now_ms();
    if c.health
        .last_check_ms
        .is_some_and(|t| now < t.saturating_add(check.interval_ms))
    {
        return Ok(());
    }
    let dir = store.container_dir(&c.name);
    let mut test = privilege_drop_of(c);
    test.extend(check.test.iter().cloned());
    let result = supervise::run_check(
        &test,
        &run_env(c, run.host_port),
        &dir,
        Duration::from_millis(check.timeout_ms),
    );
    let _lock = store.lock()?;
    // Re-read: another tug may have checked, restarted or removed it meanwhile.
    let Some(mut fresh) = store.load(&c.name)? else {
        return Ok(());
    };
    if fresh.run.as_ref().map(|r| r.pid) != Some(run.pid) {
        *c = fresh;
        return Ok(());
    }
    let h = &mut fresh.health;
    let in_start_period = now < run.started_ms.saturating_add(check.start_period_ms);
    match result {
        Ok(out) => {
            h.failures = 0;
            h.succeeded_once = true;
            h.status = Some(HealthStatus::Healthy);
            h.output = Some(out);
        }
        Err(out) => {
            // Docker: failures in the start period do not count until the first success.
            if !in_start_period || h.succeeded_once {
                h.failures += 1;
            }
            if h.failures >= check.retries.max(1) {
                h.status = Some(HealthStatus::Unhealthy);
            } else if h.status.is_none() {
                h.status = Some(HealthStatus::Starting);
            }
            h.output = Some(out);
        }
    }
    h.last_check_ms = Some(now);
    store.save(&fresh)?;
    *c = fresh;
    Ok(())
}

/// The recorded `setpriv` prefix: the part of `args` before the real program.
fn privilege_drop_of(c: &Container) -> Vec<String> {
    if SETPRIV.contains(&c.program.as_str()) {
        let mut v = vec![c.program.clone()];
        v.extend(c.args.iter().take_while(|a| *a != "--").cloned());
        v.push("--".into());
        v
    } else {
        Vec::new()
    }
}

fn info_of(store: &Store, c: Container) -> Result<ContainerInfo> {
    info_checked(store, c, true)
}

/// The container as observed; `check` runs its exec health check when due.
fn info_checked(store: &Store, mut c: Container, check: bool) -> Result<ContainerInfo> {
    let (state, exit_code) = observe(store, &c);
    if state == ContainerState::Running && check {
        check_health(store, &mut c)?;
    } else if state == ContainerState::Exited && exit_code.is_some() && c.exit_code != exit_code {
        let _lock = store.lock()?;
        if let Some(mut fresh) = store.load(&c.name)? {
            if fresh.run.as_ref().map(|r| r.pid) == c.run.as_ref().map(|r| r.pid) {
                fresh.exit_code = exit_code;
                store.save(&fresh)?;
            }
        }
    }
    let health = match (&c.check, state) {
        (None, _) | (_, ContainerState::Created) => EngineHealth::None,
        (Some(_), _) => match c.health.status {
            None | Some(HealthStatus::Starting) => EngineHealth::Starting,
            Some(HealthStatus::Healthy) => EngineHealth::Healthy,
            Some(HealthStatus::Unhealthy) => EngineHealth::Unhealthy,
        },
    };
    let host_port = match state {
        ContainerState::Running => c.run.as_ref().and_then(|r| r.host_port),
        _ => None,
    };
    Ok(ContainerInfo {
        id: c.id,
        name: c.name,
        image: c.image,
        labels: c.labels,
        state,
        exit_code,
        error: None,
        health,
        health_output: c.health.output.filter(|_| c.check.is_some()),
        restart_count: 0,
        host_port,
        created: c.created,
        oom_killed: false,
    })
}

fn port_taken(port: u16, detail: impl Into<String>) -> RuntimeError {
    RuntimeError::PortInUse {
        port: port.to_string(),
        detail: detail.into(),
    }
}

/// The host port for a start, checked against running containers and listeners.
fn choose_port(store: &Store, c: &Container) -> Result<Option<u16>> {
    let others: Vec<u16> = store
        .all()?
        .iter()
        .filter(|o| o.name != c.name && is_running(o))
        .filter_map(|o| o.run.as_ref().and_then(|r| r.host_port))
        .collect();
    if let Some(p) = c.publish {
        if others.contains(&p) {
            return Err(port_taken(
                p,
                format!(
                    "port is already allocated to another container of {}",
                    store.root.display()
                ),
            ));
        }
        for addr in [("127.0.0.1", p), ("0.0.0.0", p)] {
            if let Err(e) = TcpListener::bind(addr) {
                return Err(port_taken(p, format!("cannot bind {}:{p}: {e}", addr.0)));
            }
        }
        return Ok(Some(p));
    }
    if c.port.is_none() {
        return Ok(None);
    }
    for _ in 0..32 {
        let l = TcpListener::bind(("127.0.0.1", 0))
            .map_err(|e| io_err("picking a free port on 127.0.0.1", e))?;
        let p = l
            .local_addr()
            .map_err(|e| io_err("picking a free port", e))?
            .port();
        if !others.contains(&p) {
            return Ok(Some(p));
        }
    }
    Err(io_err(
        "picking a free port on 127.0.0.1",
        "no free port found",
    ))
}

fn not_found(id: &str) -> RuntimeError {
    RuntimeError::NotFound(format!("container {id}"))
}

/// SIGTERM to the group, SIGKILL after `grace`; waits for the status to be
/// recorded, then kills whatever the program left behind in its group (as the
/// end of a container's pid namespace would).
fn stop(store: &Store, c: &Container, grace: Duration) {
    let Some(run) = &c.run else { return };
    let dir = store.container_dir(&c.name);
    let gone = || !alive(run.pid, run.start_time);
    let mut killed = false;
    if !gone() {
        if !grace.is_zero() {
            supervise::signal_group(run.pgid, Signal::TERM);
            wait_until(grace, gone);
        }
        if !gone() {
            // The program alone first, so its supervisor records the status.
            supervise::signal(run.pid, Signal::KILL);
            killed = true;
        }
    }
    wait_until(Duration::from_secs(2), || {
        read_exit(&dir).is_some() || !alive(run.waiter, run.waiter_start)
    });
    supervise::kill_leftovers(run.pgid);
    if killed && read_exit(&dir).is_none() {
        write_exit(&dir, 137);
    }
}

impl Runtime for ProcessRuntime {
    fn kind(&self) -> RuntimeKind {
        RuntimeKind::Process
    }

    fn address(&self) -> String {
        format!("process://{}", self.store.root.display())
    }

    fn engine(&self) -> EngineInfo {
        EngineInfo {
            name: "process".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            api_version: None,
        }
    }

    async fn ping(&self) -> Result<()> {
        self.blocking(|s| {
            std::fs::create_dir_all(&s.root)
                .and_then(|_| store::write_atomic(&s.root.join(".ping"), b"ok"))
                .and_then(|_| std::fs::remove_file(s.root.join(".ping")))
                .map_err(|e| {
                    io_err(
                        format!("state directory {} is not writable", s.root.display()),
                        e,
                    )
                })
        })
        .await
    }

    async fn inspect_image(&self, reference: &str) -> Result<Option<ImageInfo>> {
        let reference = reference.to_string();
        let hashes = Arc::clone(&self.hashes);
        self.blocking(move |_| {
            Ok(executable_hash(&hashes, &reference)?.map(|id| ImageInfo {
                id,
                user: String::new(),
            }))
        })
        .await
    }

    async fn pull_image(&self, reference: &str) -> Result<()> {
        Err(RuntimeError::api(
            format!("pulling {reference}"),
            LOCAL_ONLY,
        ))
    }

    async fn build_image(
        &self,
        request: BuildRequest,
        _progress: &(dyn Fn(&str) + Send + Sync),
    ) -> Result<String> {
        Err(RuntimeError::Build(format!(
            "cannot build {} from a Dockerfile: {LOCAL_ONLY}",
            request.tag
        )))
    }

    async fn load_image(&self, _archive: Vec<u8>) -> Result<()> {
        Err(RuntimeError::api("loading an image archive", LOCAL_ONLY))
    }

    async fn create_network(&self, name: &str, labels: &BTreeMap<String, String>) -> Result<()> {
        check_name("network", name)?;
        let (name, labels) = (name.to_string(), labels.clone());
        self.blocking(move |s| {
            let _lock = s.lock()?;
            s.put_labelled("networks", &name, &labels).map(|_| ())
        })
        .await
    }

    async fn remove_network(&self, name: &str) -> Result<()> {
        if check_name("network", name).is_err() {
            return Ok(());
        }
        let name = name.to_string();
        self.blocking(move |s| {
            let _lock = s.lock()?;
            if s.all()?
                .iter()
                .any(|c| c.network.as_deref() == Some(name.as_str()) && is_running(c))
            {
                return Err(RuntimeError::api(
                    format!("removing network {name}"),
                    "network has active endpoints",
                ));
            }
            s.remove_labelled("networks", &name)
        })
        .await
    }

    async fn list_networks(&self, filter: &LabelFilter) -> Result<Vec<String>> {
        let filter = filter.clone();
        self.blocking(move |s| s.list_labelled("networks", &filter))
            .await
    }

    // Volumes and files are tug's user's: services run as that user unless
    // their spec names one, which only root may use.
    async fn create_volume(
        &self,
        name: &str,
        labels: &BTreeMap<String, String>,
        _owner: Option<&Owner>,
    ) -> Result<()> {
        check_name("volume", name)?;
        let (name, labels) = (name.to_string(), labels.clone());
        self.blocking(move |s| {
            let _lock = s.lock()?;
            let data = s.volume_data(&name);
            std::fs::create_dir_all(&data)
                .map_err(|e| io_err(format!("creating {}", data.display()), e))?;
            s.put_labelled("volumes", &name, &labels).map(|_| ())
        })
        .await
    }

    async fn write_files(&self, dir: &Path, files: &[FileSpec], _owner: &Owner) -> Result<()> {
        let (dir, files) = (dir.to_path_buf(), files.to_vec());
        self.blocking(move |_| {
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::create_dir_all(&dir)
                .map_err(|e| io_err(format!("creating {}", dir.display()), e))?;
            for f in &files {
                let path = dir.join(&f.name);
                let tmp = dir.join(format!(".{}.tmp", f.name));
                let _ = std::fs::remove_file(&tmp);
                let mut out = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(f.mode)
                    .open(&tmp)
                    .map_err(|e| io_err(format!("writing {}", tmp.display()), e))?;
                io::Write::write_all(&mut out, &f.content)
                    .map_err(|e| io_err(format!("writing {}", tmp.display()), e))?;
                std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(f.mode))
                    .and_then(|()| std::fs::rename(&tmp, &path))
                    .map_err(|e| io_err(format!("writing {}", path.display()), e))?;
            }
            Ok(())
        })
        .await
    }

    async fn read_image_files(
        &self,
        _image: &str,
        _paths: &[&str],
        _stack: &str,
    ) -> Result<BTreeMap<String, Vec<u8>>> {
        Ok(BTreeMap::new())
    }

    async fn sweep_helpers(&self, _stack: &str) -> Result<Vec<String>> {
        Ok(Vec::new())
    }

    async fn remove_volume(&self, name: &str) -> Result<()> {
        if check_name("volume", name).is_err() {
            return Ok(());
        }
        let name = name.to_string();
        self.blocking(move |s| {
            let _lock = s.lock()?;
            s.remove_labelled("volumes", &name)?;
            match std::fs::remove_dir_all(s.volume_data(&name)) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => {
                    Err(io_err(format!("removing volume {name}"), e))
                }
                _ => Ok(()),
            }
        })
        .await
    }

    async fn list_volumes(&self, filter: &LabelFilter) -> Result<Vec<String>> {
        let filter = filter.clone();
        self.blocking(move |s| s.list_labelled("volumes", &filter))
            .await
    }

    async fn create_container(&self, spec: &ContainerSpec) -> Result<String> {
        check_name("container", &spec.name)?;
        let spec = spec.clone();
        let hashes = Arc::clone(&self.hashes);
        self.blocking(move |s| {
            if executable_hash(&hashes, &spec.image)?.is_none() {
                return Err(RuntimeError::NotFound(format!(
                    "image {} (the process runtime needs an absolute path to an executable)",
                    spec.image
                )));
            }
            let (program, mut args) = match spec.entrypoint.as_deref() {
                Some([first, rest @ ..]) => (first.clone(), rest.to_vec()),
                _ => (spec.image.clone(), Vec::new()),
            };
            args.extend(spec.command.clone().unwrap_or_default());
            let mut wrapped = privilege_drop(spec.user.as_deref());
            let (program, args) = if wrapped.is_empty() {
                (program, args)
            } else {
                let setpriv = wrapped.remove(0);
                wrapped.push(program);
                wrapped.extend(args);
                (setpriv, wrapped)
            };
            let mut env: Vec<(String, String)> = spec
                .env
                .iter()
                .filter(|(k, _)| k != "PORT")
                .cloned()
                .collect();
            if !env.iter().any(|(k, _)| k == "PATH") {
                let path =
                    std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into());
                env.push(("PATH".into(), path));
            }
            let _lock = s.lock()?;
            if let Some(n) = &spec.network {
                if !s.has_labelled("networks", n) {
                    return Err(RuntimeError::NotFound(format!("network {n}")));
                }
            }
            for m in &spec.mounts {
                let path = match &m.source {
                    MountKind::Volume(v) => {
                        check_name("volume", v)?;
                        let data = s.volume_data(v);
                        // Like Docker, mounting a missing named volume creates it.
                        std::fs::create_dir_all(&data)
                            .map_err(|e| io_err(format!("creating {}", data.display()), e))?;
                        s.put_labelled("volumes", v, &BTreeMap::new())?;
                        env.push((env_key("TUG_VOLUME_", v), data.display().to_string()));
                        data
                    }
                    MountKind::Bind(p) => p.clone(),
                };
                env.push((env_key("TUG_MOUNT_", &m.target), path.display().to_string()));
            }
            if s.load(&spec.name)?.is_some() {
                return Err(RuntimeError::Conflict(format!("container {}", spec.name)));
            }
            let c = Container {
                id: new_id(&spec.name),
                name: spec.name.clone(),
                image: spec.image.clone(),
                labels: spec.labels.clone(),
                program,
                args,
                env,
                port: spec.port,
                publish: spec.publish,
                network: spec.network.clone(),
                check: spec.healthcheck.as_ref().map(|h| Check {
                    test: h.test.clone(),
                    interval_ms: millis(h.interval),
                    timeout_ms: millis(h.timeout).max(1),
                    retries: h.retries,
                    start_period_ms: millis(h.start_period),
                }),
                stop_grace_ms: millis(spec.stop_grace),
                created: (now_ms() / 1000) as i64,
                run: None,
                exit_code: None,
                health: HealthRecord::default(),
            };
            s.create_container_dir(&c.name)?;
            s.save(&c)?;
            Ok(c.id)
        })
        .await
    }

    async fn start_container(&self, id: &str) -> Result<()> {
        let id = id.to_string();
        self.blocking(move |s| {
            let _lock = s.lock()?;
            let mut c = s.find(&id)?.ok_or_else(|| not_found(&id))?;
            if is_running(&c) {
                return Ok(());
            }
            if let Some(run) = &c.run {
                // Its supervisor may still be recording the last status.
                wait_until(Duration::from_secs(2), || {
                    !alive(run.waiter, run.waiter_start)
                });
            }
            if c.program.starts_with('/') && !is_executable(&c.program) {
                return Err(RuntimeError::NotFound(format!("image {}", c.program)));
            }
            let host_port = choose_port(s, &c)?;
            let dir = s.create_container_dir(&c.name)?;
            let started_ms = now_ms();
            let sp = supervise::spawn(&dir, &c.program, &c.args, &run_env(&c, host_port))?;
            c.run = Some(Run {
                pgid: sp.pgid,
                waiter: sp.waiter,
                waiter_start: start_time(sp.waiter),
                pid: sp.pid,
                start_time: start_time(sp.pid),
                started_ms,
                host_port,
            });
            c.exit_code = None;
            c.health = HealthRecord::default();
            s.save(&c)
        })
        .await
    }

    async fn stop_container(&self, id: &str, grace: Duration) -> Result<()> {
        let id = id.to_string();
        self.blocking(move |s| {
            if let Some(c) = s.find(&id)? {
                stop(s, &c, grace);
            }
            Ok(())
        })
        .await
    }

    async fn copy_into(&self, id: &str, dir: &str, tar: Vec<u8>) -> Result<()> {
        let id = id.to_string();
        let dir = dir.to_string();
        self.blocking(move |s| {
            let c = s
                .find(&id)?
                .ok_or_else(|| RuntimeError::NotFound(format!("container {id}")))?;
            // Inside the replica's working directory: a process has no root of its own.
            let to = s.container_dir(&c.name).join(dir.trim_start_matches('/'));
            std::fs::create_dir_all(&to).map_err(|e| {
                RuntimeError::api(format!("creating {}", to.display()), e.to_string())
            })?;
            // `unpack` refuses entries that climb out with `..`.
            tar::Archive::new(tar.as_slice()).unpack(&to).map_err(|e| {
                RuntimeError::api(format!("unpacking into {}", to.display()), e.to_string())
            })
        })
        .await
    }

    async fn remove_container(&self, id: &str) -> Result<()> {
        let id = id.to_string();
        self.blocking(move |s| {
            let Some(c) = s.find(&id)? else {
                return Ok(());
            };
            stop(s, &c, Duration::ZERO);
            let _lock = s.lock()?;
            s.delete_container(&c.name)
        })
        .await
    }

    async fn list_containers(&self, filter: &LabelFilter) -> Result<Vec<ContainerInfo>> {
        let filter = filter.clone();
        self.blocking(move |s| {
            s.all()?
                .into_iter()
                .filter(|c| matches(&c.labels, &filter))
                .map(|c| info_of(s, c))
                .collect()
        })
        .await
    }

    async fn inspect_container(&self, id: &str) -> Result<Option<ContainerInfo>> {
        let id = id.to_string();
        self.blocking(move |s| s.find(&id)?.map(|c| info_of(s, c)).transpose())
            .await
    }

    async fn exec(&self, id: &str, command: &[String], timeout: Duration) -> Result<ExecOutput> {
        let id = id.to_string();
        let command = command.to_vec();
        self.blocking(move |s| {
            let c = s
                .find(&id)?
                .ok_or_else(|| RuntimeError::NotFound(format!("container {id}")))?;
            let (state, _) = observe(s, &c);
            let run = match (&c.run, state) {
                (Some(run), ContainerState::Running) => run,
                _ => {
                    return Err(RuntimeError::api(
                        format!("running `{}` in {}", command.join(" "), c.name),
                        format!("container {} is not running", c.name),
                    ))
                }
            };
            // As the service itself: its environment and user.
            let mut full = privilege_drop_of(&c);
            full.extend(command.iter().cloned());
            let dir = s.container_dir(&c.name);
            match supervise::run_command(&full, &run_env(&c, run.host_port), &dir, timeout) {
                Ok(supervise::Ran::Exited(exit_code, output)) => {
                    Ok(ExecOutput { exit_code, output })
                }
                Ok(supervise::Ran::TimedOut) => Err(RuntimeError::ExecTimeout {
                    command: command.join(" "),
                    after: timeout,
                }),
                Err(e) => Err(RuntimeError::api(
                    format!("running `{}` in {}", command.join(" "), c.name),
                    e,
                )),
            }
        })
        .await
    }

    fn logs(&self, id: &str, opts: LogOptions) -> BoxStream<'static, Result<LogLine>> {
        logs::stream(self.store.clone(), id.to_string(), opts)
    }

    async fn stats(&self, id: &str) -> Result<Option<Stats>> {
        let id = id.to_string();
        self.blocking(move |s| {
            let Some(c) = s.find(&id)? else {
                return Ok(None);
            };
            let Some(run) = c.run.as_ref().filter(|_| is_running(&c)) else {
                return Ok(None);
            };
            let io = supervise::io_bytes(run.pid);
            Ok(supervise::cpu_ns(run.pid).map(|cpu_ns| Stats {
                cpu_ns,
                memory: supervise::resident_bytes(run.pid),
                // A process shares the host's network namespace: no count of its own.
                net_rx: None,
                net_tx: None,
                disk_read: io.map(|(r, _)| r),
                disk_write: io.map(|(_, w)| w),
            }))
        })
        .await
    }

    fn events(&self, filter: &LabelFilter) -> BoxStream<'static, RuntimeEvent> {
        // The baseline is taken now, so the stream reports every change from
        // this call on, however late it is first polled. It reads a few small
        // state files and runs no health check.
        let baseline = self.store.all().ok().map(|all| {
            all.into_iter()
                .filter(|c| matches(&c.labels, filter))
                .filter_map(|c| info_checked(&self.store, c, false).ok())
                .map(|c| (c.id.clone(), c))
                .collect()
        });
        let watch = Watch {
            rt: self.clone(),
            filter: filter.clone(),
            seen: baseline,
            pending: std::collections::VecDeque::new(),
            lost: false,
        };
        futures_util::stream::unfold(watch, |mut w| async move {
            let e = w.next().await;
            Some((e, w))
        })
        .boxed()
    }
}

const WATCH_EVERY: Duration = Duration::from_millis(250);

/// The event watcher: the last look at the containers, and what it found
/// changed that was not handed out yet.
struct Watch {
    rt: ProcessRuntime,
    filter: LabelFilter,
    seen: Option<BTreeMap<String, ContainerInfo>>,
    pending: std::collections::VecDeque<RuntimeEvent>,
    lost: bool,
}

impl Watch {
    async fn next(&mut self) -> RuntimeEvent {
        loop {
            if let Some(e) = self.pending.pop_front() {
                return e;
            }
            // The first look is the baseline; later ones wait their turn.
            if self.seen.is_some() || self.lost {
                tokio::time::sleep(WATCH_EVERY).await;
            }
            let now = match self.rt.list_containers(&self.filter).await {
                Ok(list) => list
                    .into_iter()
                    .map(|c| (c.id.clone(), c))
                    .collect::<BTreeMap<_, _>>(),
                Err(e) => {
                    if !self.lost {
                        self.lost = true;
                        return RuntimeEvent::Lost {
                            reason: e.to_string(),
                        };
                    }
                    continue;
                }
            };
            if std::mem::take(&mut self.lost) {
                self.pending.push_back(RuntimeEvent::Resumed);
            }
            if let Some(before) = self.seen.take() {
                self.pending.extend(changes(&before, &now));
            }
            self.seen = Some(now);
        }
    }
}

/// What changed between two looks, in the order an engine reports it.
fn changes(
    before: &BTreeMap<String, ContainerInfo>,
    now: &BTreeMap<String, ContainerInfo>,
) -> Vec<RuntimeEvent> {
    let event = |c: &ContainerInfo, change| {
        RuntimeEvent::Container(ContainerEvent {
            id: c.id.clone(),
            name: c.name.clone(),
            labels: c.labels.clone(),
            change,
        })
    };
    let running = |c: Option<&ContainerInfo>| c.is_some_and(|c| c.state == ContainerState::Running);
    let mut out = Vec::new();
    for (id, c) in now {
        let old = before.get(id);
        if c.state == ContainerState::Running && !running(old) {
            out.push(event(c, ContainerChange::Started));
        }
        if c.state == ContainerState::Exited && running(old) {
            out.push(event(
                c,
                ContainerChange::Died {
                    exit_code: c.exit_code,
                },
            ));
        }
        let health_before = old.map(|o| o.health).unwrap_or(EngineHealth::None);
        if c.state == ContainerState::Running
            && c.health != health_before
            && c.health != EngineHealth::None
        {
            out.push(event(c, ContainerChange::Health { health: c.health }));
        }
    }
    for (id, c) in before {
        if !now.contains_key(id) {
            if c.state == ContainerState::Running {
                out.push(event(c, ContainerChange::Died { exit_code: None }));
            }
            out.push(event(c, ContainerChange::Destroyed));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_keys() {
        assert_eq!(env_key("TUG_VOLUME_", "shop_data"), "TUG_VOLUME_SHOP_DATA");
        assert_eq!(
            env_key("TUG_MOUNT_", "/var/lib/app-1"),
            "TUG_MOUNT_VAR_LIB_APP_1"
        );
    }

    #[test]
    fn names_are_file_safe() {
        assert!(check_name("container", "s-api-0-01234567").is_ok());
        for bad in ["", "../x", "a/b", ".hidden", "-x"] {
            assert!(check_name("container", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn default_dir_ends_in_process() {
        assert!(ProcessRuntime::default_dir().ends_with("process"));
    }
}
