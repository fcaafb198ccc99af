//! The Runtime trait and its adapters.
//!
//! Every effect tug has on a container engine goes through [`Runtime`]: images,
//! networks, volumes, containers and logs. [`docker::DockerRuntime`] speaks the
//! Docker Engine API (Docker, or Podman's compatible socket);
//! [`process::ProcessRuntime`] runs services as supervised local processes when
//! there is no container engine; [`fake::FakeRuntime`] records calls in memory
//! and injects faults so the engine's apply logic is tested without an engine.
//! One contract suite (tests/contract.rs) runs against all three.

use futures_util::stream::BoxStream;
use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub mod any;
pub mod docker;
pub mod fake;
pub mod process;

/// Labels tug puts on everything it creates; observed state is read back from them.
pub mod labels {
    pub const STACK: &str = "dev.tug.stack";
    pub const SERVICE: &str = "dev.tug.service";
    pub const REPLICA: &str = "dev.tug.replica";
    pub const CONFIG_HASH: &str = "dev.tug.config-hash";
    /// On built images: `<stack>/<service>`. Not `STACK`: containers inherit
    /// image labels, and only tug's own containers may carry that one.
    pub const IMAGE_OF: &str = "dev.tug.image-of";
    /// The container port that is the replica's endpoint, when it has several.
    pub const PORT: &str = "dev.tug.port";
    /// On helper containers (never started; they write files with an owner
    /// or read an image's files): the stack they work for, so one left
    /// behind by a killed tug is swept by that stack's next `up` or `down`.
    pub const HELPER_OF: &str = "dev.tug.helper-of";
}

/// One more port a container listens on, published on the host.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct PortSpec {
    pub port: u16,
    /// `tcp` or `udp`.
    pub protocol: String,
    /// Host port; `None` picks an ephemeral one.
    pub publish: Option<u16>,
    /// Host address; `None` is 127.0.0.1.
    pub host_ip: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error(
        "cannot reach the container engine at {addr}: start Docker or Podman, or set DOCKER_HOST"
    )]
    Unreachable { addr: String, detail: String },
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0} already exists")]
    Conflict(String),
    #[error("host port {port} is already in use: {detail}")]
    PortInUse { port: String, detail: String },
    #[error("{0}")]
    Build(String),
    #[error("{context}: {message}")]
    Api { context: String, message: String },
    #[error("`{command}` did not finish within {after:?}")]
    ExecTimeout { command: String, after: Duration },
}

impl RuntimeError {
    pub fn api(context: impl Into<String>, message: impl ToString) -> Self {
        RuntimeError::Api {
            context: context.into(),
            message: message.to_string(),
        }
    }
}

pub type Result<T, E = RuntimeError> = std::result::Result<T, E>;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Restart {
    No,
    Always,
    OnFailure,
    UnlessStopped,
}

/// A health check the engine itself runs inside the container.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ExecHealth {
    pub test: Vec<String>,
    pub interval: Duration,
    pub timeout: Duration,
    pub retries: u32,
    pub start_period: Duration,
}

/// Who owns what the runtime writes for a container, as the container sees
/// it, and an image the engine has: engines write through a helper
/// container of that image, created and removed, never started.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owner {
    pub uid: u32,
    pub gid: u32,
    pub image: String,
    /// The stack the helper works for ([`labels::HELPER_OF`]).
    pub stack: String,
}

/// One file for [`Runtime::write_files`].
#[derive(Clone, PartialEq, Eq)]
pub struct FileSpec {
    pub name: String,
    pub content: Vec<u8>,
    pub mode: u32,
}

impl std::fmt::Debug for FileSpec {
    // The content may be a secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileSpec")
            .field("name", &self.name)
            .field("mode", &format_args!("{:o}", self.mode))
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub enum MountKind {
    Volume(String),
    Bind(PathBuf),
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct MountSpec {
    pub source: MountKind,
    pub target: String,
    pub read_only: bool,
}

/// Everything needed to create one container.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ContainerSpec {
    pub name: String,
    pub image: String,
    pub command: Option<Vec<String>>,
    pub entrypoint: Option<Vec<String>>,
    pub env: Vec<(String, String)>,
    pub labels: BTreeMap<String, String>,
    /// Port the process listens on; published on 127.0.0.1.
    pub port: Option<u16>,
    /// Host port; `None` picks an ephemeral one.
    pub publish: Option<u16>,
    /// Host address `port` is published on; `None` is 127.0.0.1.
    pub host_ip: Option<String>,
    /// More published ports, TCP or UDP.
    pub ports: Vec<PortSpec>,
    /// Ports open to the network only: (port, `tcp` or `udp`).
    pub expose: Vec<(u16, String)>,
    pub network: Option<String>,
    pub aliases: Vec<String>,
    pub mounts: Vec<MountSpec>,
    /// Writable tmpfs mounts (paths).
    pub tmpfs: Vec<String>,
    pub user: Option<String>,
    pub read_only_root: bool,
    pub cap_drop_all: bool,
    pub cap_add: Vec<String>,
    pub privileged: bool,
    pub no_new_privileges: bool,
    pub seccomp: Option<String>,
    pub memory: Option<i64>,
    pub nano_cpus: Option<i64>,
    pub pids: Option<i64>,
    pub restart: Restart,
    pub healthcheck: Option<ExecHealth>,
    /// Turn off a HEALTHCHECK the image declares.
    pub no_healthcheck: bool,
    pub stop_grace: Duration,
}

impl ContainerSpec {
    /// A spec with tug's hardened defaults and nothing else.
    pub fn new(name: impl Into<String>, image: impl Into<String>) -> Self {
        ContainerSpec {
            name: name.into(),
            image: image.into(),
            command: None,
            entrypoint: None,
            env: Vec::new(),
            labels: BTreeMap::new(),
            port: None,
            publish: None,
            host_ip: None,
            ports: Vec::new(),
            expose: Vec::new(),
            network: None,
            aliases: Vec::new(),
            mounts: Vec::new(),
            tmpfs: Vec::new(),
            user: None,
            read_only_root: true,
            cap_drop_all: true,
            cap_add: Vec::new(),
            privileged: false,
            no_new_privileges: true,
            seccomp: None,
            memory: None,
            nano_cpus: None,
            pids: None,
            restart: Restart::No,
            healthcheck: None,
            no_healthcheck: false,
            stop_grace: Duration::from_secs(10),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ContainerState {
    Created,
    Running,
    Restarting,
    Paused,
    Exited,
    Dead,
    Removing,
}

impl std::fmt::Display for ContainerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self {
            ContainerState::Created => "created",
            ContainerState::Running => "running",
            ContainerState::Restarting => "restarting",
            ContainerState::Paused => "paused",
            ContainerState::Exited => "exited",
            ContainerState::Dead => "dead",
            ContainerState::Removing => "removing",
        };
        f.write_str(s)
    }
}

/// Health as the engine reports it (for [`ExecHealth`] checks).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineHealth {
    None,
    Starting,
    Healthy,
    Unhealthy,
}

/// A container as observed on the engine.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ContainerInfo {
    pub id: String,
    pub name: String,
    pub image: String,
    pub labels: BTreeMap<String, String>,
    pub state: ContainerState,
    pub exit_code: Option<i64>,
    pub error: Option<String>,
    pub health: EngineHealth,
    /// Output of the last health probe the engine ran.
    pub health_output: Option<String>,
    pub restart_count: u32,
    /// The host port on 127.0.0.1 the container's port is published at.
    pub host_port: Option<u16>,
    /// Creation time, seconds since the epoch.
    pub created: i64,
    /// The kernel's OOM killer ended its last run (the engine's inspect
    /// says so even when its `oom` event was dropped).
    pub oom_killed: bool,
}

impl ContainerInfo {
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels.get(key).map(String::as_str)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageInfo {
    pub id: String,
    /// The image's configured user; empty means root.
    pub user: String,
}

/// A build through the engine's build API.
#[derive(Clone, Debug)]
pub struct BuildRequest {
    pub tag: String,
    /// The build context as an uncompressed tar archive.
    pub context_tar: Vec<u8>,
    /// Path of the Dockerfile inside the context.
    pub dockerfile: String,
    pub args: BTreeMap<String, String>,
    pub target: Option<String>,
    pub labels: BTreeMap<String, String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogStream {
    Stdout,
    Stderr,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogLine {
    pub stream: LogStream,
    pub text: String,
    /// When the line was written: the engine's timestamp, or for the process
    /// runtime the moment a followed line was read. `None` when unknown (the
    /// history of a process, whose log files carry no times).
    pub time: Option<std::time::SystemTime>,
}

/// Which lines [`Runtime::logs`] returns.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LogOptions {
    /// Only the last lines of the history (after `since`/`until` apply).
    pub tail: Option<usize>,
    /// Keep the stream open until the container stops.
    pub follow: bool,
    /// Only lines written at or after this time.
    pub since: Option<std::time::SystemTime>,
    /// Only lines written before this time.
    pub until: Option<std::time::SystemTime>,
}

impl LogOptions {
    pub fn new(tail: Option<usize>, follow: bool) -> Self {
        LogOptions {
            tail,
            follow,
            ..Default::default()
        }
    }

    /// Whether a line written at `time` is in the window. A line of unknown
    /// time is only shown when no window is asked for: it cannot be placed.
    pub fn admits(&self, time: Option<std::time::SystemTime>) -> bool {
        if self.since.is_none() && self.until.is_none() {
            return true;
        }
        let Some(t) = time else { return false };
        self.since.is_none_or(|s| t >= s) && self.until.is_none_or(|u| t < u)
    }
}

/// A time as `tug logs --since/--until` and `docker logs` take it: RFC 3339
/// (`2026-12-01T10:00:00Z`), a Unix timestamp (`1764583200`), or a duration
/// before `now` (`10m`, `1h30m`).
pub fn parse_log_time(
    s: &str,
    now: std::time::SystemTime,
) -> std::result::Result<std::time::SystemTime, BadTime> {
    let s = s.trim();
    if let Ok(t) = humantime::parse_rfc3339_weak(s) {
        return Ok(t);
    }
    if let Ok(secs) = s.parse::<f64>() {
        if secs.is_finite() && secs >= 0.0 {
            return Ok(std::time::UNIX_EPOCH + Duration::from_secs_f64(secs));
        }
    }
    if let Ok(d) = humantime::parse_duration(s) {
        return now.checked_sub(d).ok_or_else(|| BadTime(s.to_string()));
    }
    Err(BadTime(s.to_string()))
}

/// A time [`parse_log_time`] could not read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("`{0}` is not a time: give RFC 3339 (2026-12-01T10:00:00Z), a Unix timestamp, or a duration ago (10m, 1h30m)")]
pub struct BadTime(pub String);

/// Which engine a runtime talks to, as `tug version` and `tug ps` name it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct EngineInfo {
    /// `docker`, `podman` or `process`.
    pub name: String,
    /// The engine's own version (tug's for the process runtime).
    pub version: String,
    /// The Docker Engine API version spoken, for engines.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
}

impl std::fmt::Display for EngineInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.name, self.version)?;
        if let Some(api) = &self.api_version {
            write!(f, " (API {api})")?;
        }
        Ok(())
    }
}

/// The result of a command run inside a container by [`Runtime::exec`].
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ExecOutput {
    pub exit_code: i64,
    /// Its stdout and stderr, interleaved, at most the last [`EXEC_OUTPUT_MAX`] bytes.
    pub output: String,
}

/// How much of an exec's output is kept (as much as Docker keeps of a health probe).
pub const EXEC_OUTPUT_MAX: usize = 4096;

/// What a runtime runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuntimeKind {
    /// Images in containers (Docker, Podman).
    Container,
    /// Executables as local processes.
    Process,
}

/// What happened to a container, as the engine (or the process supervisor) reports it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum ContainerChange {
    Started,
    /// The process exited; `exit_code` is `None` when the engine did not say.
    Died {
        exit_code: Option<i64>,
    },
    /// The kernel's OOM killer hit it (a `Died` follows).
    OomKilled,
    /// The engine's own (exec) health check changed its verdict.
    Health {
        health: EngineHealth,
    },
    Destroyed,
}

/// One event of a container tug watches.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ContainerEvent {
    pub id: String,
    pub name: String,
    pub labels: BTreeMap<String, String>,
    #[serde(flatten)]
    pub change: ContainerChange,
}

impl ContainerEvent {
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels.get(key).map(String::as_str)
    }
}

/// An item of [`Runtime::events`].
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RuntimeEvent {
    Container(ContainerEvent),
    /// The stream broke (the engine went away); reconnecting with backoff.
    Lost {
        reason: String,
    },
    /// The stream is back after [`RuntimeEvent::Lost`]: events may have been
    /// missed, so a watcher re-reads the state it cares about.
    Resumed,
    /// The stream broke while the engine still answered and was reopened
    /// where it left off. Nothing should be missing, but an engine that
    /// restarted in between forgets its events: a watcher may look again.
    Reopened,
}

/// Resource use of a running container, as counters the caller turns into rates.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Stats {
    /// CPU time used since the container started, in nanoseconds.
    pub cpu_ns: u64,
    /// Memory in use, in bytes, when the engine says.
    pub memory: Option<u64>,
    /// Network bytes received and sent since it started, summed over its
    /// interfaces; `None` where it shares the host's network (processes).
    pub net_rx: Option<u64>,
    pub net_tx: Option<u64>,
    /// Bytes read from and written to block devices since it started.
    pub disk_read: Option<u64>,
    pub disk_write: Option<u64>,
}

/// A label selector: every pair must match; a `None` value only requires the key.
pub type LabelFilter = Vec<(String, Option<String>)>;

/// Selects everything of one stack.
pub fn stack_filter(stack: &str) -> LabelFilter {
    vec![(labels::STACK.to_string(), Some(stack.to_string()))]
}

/// The engine operations tug needs. Implementations must be idempotent where
/// noted, so a re-run after a crash converges.
pub trait Runtime: Send + Sync {
    /// Where the engine is, for messages.
    fn address(&self) -> String;
    /// Containers with images, or plain local processes.
    fn kind(&self) -> RuntimeKind {
        RuntimeKind::Container
    }
    fn ping(&self) -> impl Future<Output = Result<()>> + Send;
    /// The engine and its version.
    fn engine(&self) -> EngineInfo;

    fn inspect_image(
        &self,
        reference: &str,
    ) -> impl Future<Output = Result<Option<ImageInfo>>> + Send;
    fn pull_image(&self, reference: &str) -> impl Future<Output = Result<()>> + Send;
    /// Builds an image; `progress` receives each line of build output.
    fn build_image(
        &self,
        request: BuildRequest,
        progress: &(dyn Fn(&str) + Send + Sync),
    ) -> impl Future<Output = Result<String>> + Send;
    /// Loads a `docker save` archive.
    fn load_image(&self, archive: Vec<u8>) -> impl Future<Output = Result<()>> + Send;

    /// Creates a network; an existing one of that name is fine.
    fn create_network(
        &self,
        name: &str,
        labels: &BTreeMap<String, String>,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Removes a network; a missing one is fine.
    fn remove_network(&self, name: &str) -> impl Future<Output = Result<()>> + Send;
    fn list_networks(
        &self,
        filter: &LabelFilter,
    ) -> impl Future<Output = Result<Vec<String>>> + Send;

    /// Creates a volume; an existing one of that name is fine. With an
    /// `owner`, a new volume's top directory belongs to that user, so a
    /// non-root service can write to it (engines create it root-owned, and
    /// copy an image directory's owner only when the image has the path).
    fn create_volume(
        &self,
        name: &str,
        labels: &BTreeMap<String, String>,
        owner: Option<&Owner>,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Writes `files` into the host directory `dir` (created if missing),
    /// each owned by `owner` with its mode, for a container to bind-mount.
    /// On an engine the engine writes them, so the owner may be any user
    /// whatever tug's own is.
    fn write_files(
        &self,
        dir: &Path,
        files: &[FileSpec],
        owner: &Owner,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Reads files of an image without running it (a user name is
    /// resolved from its /etc/passwd and /etc/group this way): the ones it
    /// has, by path. Engines read through a helper container of `stack`
    /// ([`labels::HELPER_OF`]); the process runtime has no images and
    /// returns none.
    fn read_image_files(
        &self,
        image: &str,
        paths: &[&str],
        stack: &str,
    ) -> impl Future<Output = Result<BTreeMap<String, Vec<u8>>>> + Send;
    /// Removes the helper containers of `stack` that a killed tug left
    /// behind (those of a live tug process are spared); returns their names.
    fn sweep_helpers(&self, stack: &str) -> impl Future<Output = Result<Vec<String>>> + Send;
    /// Removes a volume; a missing one is fine.
    fn remove_volume(&self, name: &str) -> impl Future<Output = Result<()>> + Send;
    fn list_volumes(
        &self,
        filter: &LabelFilter,
    ) -> impl Future<Output = Result<Vec<String>>> + Send;

    /// Creates a container; a name already taken is [`RuntimeError::Conflict`].
    fn create_container(&self, spec: &ContainerSpec)
        -> impl Future<Output = Result<String>> + Send;
    fn start_container(&self, id: &str) -> impl Future<Output = Result<()>> + Send;
    /// Stops with SIGTERM, then SIGKILL after `grace`; a stopped one is fine.
    fn stop_container(&self, id: &str, grace: Duration) -> impl Future<Output = Result<()>> + Send;
    /// Removes (forcefully); a missing one is fine.
    fn remove_container(&self, id: &str) -> impl Future<Output = Result<()>> + Send;
    /// All containers (running or not) matching `filter`.
    fn list_containers(
        &self,
        filter: &LabelFilter,
    ) -> impl Future<Output = Result<Vec<ContainerInfo>>> + Send;
    fn inspect_container(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<ContainerInfo>>> + Send;
    /// Runs `command` in the running container `id` (not through a shell) and
    /// waits for it, at most `timeout` ([`RuntimeError::ExecTimeout`], and
    /// the process is killed with its children where the runtime can). Exec
    /// health checks go through here on every runtime, never through the
    /// engine's own HEALTHCHECK.
    fn exec(
        &self,
        id: &str,
        command: &[String],
        timeout: Duration,
    ) -> impl Future<Output = Result<ExecOutput>> + Send;
    /// Unpacks a tar archive into a running container under `dir` (an
    /// absolute path inside it): `tug dev`'s sync rules. The engine refuses
    /// a read-only root filesystem unless `dir` is on a writable mount; a
    /// process replica gets it under its working directory.
    fn copy_into(
        &self,
        id: &str,
        dir: &str,
        tar: Vec<u8>,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Whole lines, per stream (a partial write is not a line), each with
    /// its time where known; see [`LogOptions`] for which.
    fn logs(&self, id: &str, opts: LogOptions) -> BoxStream<'static, Result<LogLine>>;
    /// Changes of the containers matching `filter`, from now on, for as long
    /// as the stream is polled. It never ends: when the engine goes away it
    /// yields [`RuntimeEvent::Lost`], reconnects with backoff, then yields
    /// [`RuntimeEvent::Resumed`]; a stream that breaks while the engine
    /// answers is reopened where it left off ([`RuntimeEvent::Reopened`]).
    fn events(&self, filter: &LabelFilter) -> BoxStream<'static, RuntimeEvent>;
    /// CPU, memory, network and block I/O of a running container; `None`
    /// when it is not running or not found.
    fn stats(&self, id: &str) -> impl Future<Output = Result<Option<Stats>>> + Send;
}

pub mod testing;
