//! The resolved model. Field names are the tug.yaml keys.

pub use crate::route::{AccessLog, Balance, Gateway, HashKey, Retry, Route, Timeouts, Upstream};
use crate::units::{ByteSize, Duration};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// A whole stack: the contents of one tug.yaml, validated and resolved.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stack {
    /// Stack name; prefixes every resource tug creates.
    pub name: String,
    #[serde(default)]
    pub services: BTreeMap<String, Service>,
    /// Where services run; unset: a container engine when one answers, else processes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<RuntimeChoice>,
    /// Secrets by name: files mounted read-only at `/run/secrets/<name>`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub secrets: BTreeMap<String, FileRef>,
    /// Configuration files by name, mounted read-only where a service asks.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub configs: BTreeMap<String, FileRef>,
    /// The stack's HTTP entry point, serving the services' routes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<Gateway>,
    /// Where the agent serves its dashboard, API and metrics over HTTP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dashboard: Option<crate::Dashboard>,
    /// Where traces and logs are exported.
    #[serde(default, skip_serializing_if = "crate::Observe::is_empty")]
    pub observe: crate::Observe,
    /// CI/CD pipelines by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub pipelines: BTreeMap<String, crate::pipeline::Pipeline>,
    /// Directory that relative paths in the file were resolved against.
    #[serde(skip)]
    pub dir: PathBuf,
    /// The file the stack was read from.
    #[serde(skip)]
    pub file: PathBuf,
}

impl Stack {
    /// Named volumes used by any service, in name order.
    pub fn named_volumes(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self
            .services
            .values()
            .flat_map(|s| s.volumes.iter())
            .filter_map(|m| match &m.source {
                MountSource::Volume(n) => Some(n.as_str()),
                _ => None,
            })
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Service {
    /// Image reference to run. With `build`, the tag given to the built image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build: Option<Build>,
    /// Arguments replacing the image's CMD.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    /// Replaces the image's ENTRYPOINT.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    /// Environment, with `env_file` entries merged in (explicit `env` wins).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env_file: Vec<PathBuf>,
    /// The port the process listens on inside the container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// A fixed host port on 127.0.0.1 (one replica only); otherwise an ephemeral one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publish: Option<u16>,
    /// The host address `port` is published on; unset: 127.0.0.1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_ip: Option<String>,
    /// More ports the process listens on, each published like `port`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<PortMapping>,
    /// Ports reachable from the stack's network only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expose: Vec<ExposedPort>,
    /// More names the service answers to on the stack's network.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// Stack secrets mounted read-only in the container.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<FileMount>,
    /// Stack configs mounted read-only in the container.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub configs: Vec<FileMount>,
    #[serde(default = "one")]
    pub replicas: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<Health>,
    /// `health: none`: no check, the image's own HEALTHCHECK turned off too.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub health_disabled: bool,
    #[serde(default)]
    pub depends_on: BTreeMap<String, Condition>,
    #[serde(default)]
    pub volumes: Vec<Mount>,
    #[serde(default)]
    pub resources: Resources,
    #[serde(default)]
    pub security: Security,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub restart: RestartPolicy,
    #[serde(default = "default_grace")]
    pub stop_grace_period: Duration,
    #[serde(default)]
    pub update: Update,
    /// Requests the gateway sends to this service.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<Route>,
    /// Replicas follow the load between `min` and `max`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscale: Option<Autoscale>,
    /// Image signature required before any container of the service is created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<Verify>,
    /// How `tug dev` treats changes of the service's files.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub develop: Vec<WatchRule>,
}

/// One rule of `develop: { watch: [...] }`, as in compose's `develop.watch`:
/// a change under `path` (not matching `ignore`) is synced into the running
/// replicas at `target`, or rebuilds the image. A file no rule covers, among
/// a build's sources, rebuilds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatchRule {
    /// A file or directory, resolved against tug.yaml's directory.
    pub path: PathBuf,
    pub action: WatchAction,
    /// The directory (or file) inside the replica that `path` maps to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Gitignore-style patterns, relative to `path`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignore: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum WatchAction {
    /// Copy the changed files into the running replicas.
    #[serde(rename = "sync")]
    Sync,
    /// Build the image again and roll it out.
    #[serde(rename = "rebuild")]
    Rebuild,
    /// Copy, then restart the replicas one at a time.
    #[serde(rename = "sync+restart")]
    SyncRestart,
}

/// `verify: { key: FILE }`: the image must carry a cosign-format signature
/// that verifies with this public key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Verify {
    /// The public key (PEM), absolute after resolution.
    pub key: PathBuf,
}

/// A secret or config: a file on the host (absolute after resolution).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileRef {
    pub file: PathBuf,
}

/// A stack secret or config as a service sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileMount {
    /// The name in the stack's `secrets` or `configs`.
    pub source: String,
    /// Absolute path in the container (secrets: `/run/secrets/<name>`
    /// by default; configs: `/<name>`).
    pub target: String,
    /// Owner of the file in the container; unset: the service's user for a
    /// secret, the host file's for a config.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    /// Group of the file; unset: `uid`'s (or the service user's) group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<u32>,
    /// Permission bits; unset: 0400 for a secret, the host file's for a config.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<u32>,
}

impl FileMount {
    /// Whether the file needs a copy of its own (owner or mode given).
    pub fn has_owner_or_mode(&self) -> bool {
        self.uid.is_some() || self.gid.is_some() || self.mode.is_some()
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    #[default]
    Tcp,
    Udp,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }
}

/// One more port a service listens on, published on the host.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortMapping {
    pub port: u16,
    #[serde(default)]
    pub protocol: Protocol,
    /// A fixed host port (one replica only); otherwise an ephemeral one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publish: Option<u16>,
    /// Unset: 127.0.0.1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_ip: Option<String>,
}

/// A port open to the stack's network only.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExposedPort {
    pub port: u16,
    #[serde(default)]
    pub protocol: Protocol,
}

/// Where a stack's services run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuntimeChoice {
    /// Containers on Docker or Podman (`DOCKER_HOST`).
    Docker,
    /// Supervised local processes (built Rust binaries or executables).
    Process,
}

/// How a changed service's replicas are replaced.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Update {
    /// New replicas started before old ones stop, per step.
    #[serde(default = "one")]
    pub max_surge: u32,
    /// Old replicas stopped before their replacements are healthy, per step.
    #[serde(default)]
    pub max_unavailable: u32,
    /// How long a new replica may take to turn healthy.
    #[serde(default = "default_health_timeout")]
    pub health_timeout: Duration,
    /// Put the previous replicas back when the new ones do not turn healthy.
    #[serde(default = "yes")]
    pub auto_rollback: bool,
    #[serde(default)]
    pub order: UpdateOrder,
}

fn default_health_timeout() -> Duration {
    Duration::from_secs(60)
}

impl Default for Update {
    fn default() -> Self {
        Update {
            max_surge: 1,
            max_unavailable: 0,
            health_timeout: default_health_timeout(),
            auto_rollback: true,
            order: UpdateOrder::StartFirst,
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UpdateOrder {
    /// Start the new replica, then stop the old one.
    #[default]
    StartFirst,
    /// Stop the old replica, then start the new one.
    StopFirst,
}

fn one() -> u32 {
    1
}
fn default_grace() -> Duration {
    Duration::from_secs(10)
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Build {
    /// Build with a Dockerfile through the engine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dockerfile: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub args: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Compile a cargo package statically and package it `FROM scratch`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rust: Option<RustBuild>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RustBuild {
    pub package: String,
    /// Binary name when it differs from the package name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bin: Option<String>,
    /// Cargo workspace root; defaults to the directory of tug.yaml or the nearest one above it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace: Option<PathBuf>,
    #[serde(default = "release_profile")]
    pub profile: String,
}

fn release_profile() -> String {
    "release".into()
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Health {
    /// HTTP GET path that must answer 2xx or 3xx.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<String>,
    /// TCP connect to the service port.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tcp: bool,
    /// A command run in the container; exit 0 is healthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exec: Option<Vec<String>>,
    #[serde(default = "default_interval")]
    pub interval: Duration,
    #[serde(default = "default_timeout")]
    pub timeout: Duration,
    #[serde(default = "default_retries")]
    pub retries: u32,
    #[serde(default)]
    pub start_period: Duration,
}

fn default_interval() -> Duration {
    Duration::from_secs(2)
}
fn default_timeout() -> Duration {
    Duration::from_secs(1)
}
fn default_retries() -> u32 {
    3
}

/// What a health check does, derived from [`Health`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Probe {
    Http(String),
    Tcp,
    Exec(Vec<String>),
}

impl Health {
    pub fn probe(&self) -> Probe {
        if let Some(p) = &self.http {
            Probe::Http(p.clone())
        } else if let Some(c) = &self.exec {
            Probe::Exec(c.clone())
        } else {
            Probe::Tcp
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    /// The dependency's containers are running.
    Started,
    /// The dependency's health check passes.
    Healthy,
    /// The dependency ran to completion with exit code 0.
    Completed,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mount {
    pub source: MountSource,
    /// Path inside the container.
    pub target: String,
    #[serde(default)]
    pub read_only: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MountSource {
    /// A named volume, created by tug and owned by the stack.
    Volume(String),
    /// A host path (absolute after resolution).
    Bind(PathBuf),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    /// CPUs, fractional allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<f64>,
    #[serde(default = "default_memory")]
    pub memory: ByteSize,
    #[serde(default = "default_pids")]
    pub pids: i64,
}

fn default_memory() -> ByteSize {
    ByteSize(512 << 20)
}
fn default_pids() -> i64 {
    256
}

impl Default for Resources {
    fn default() -> Self {
        Resources {
            cpu: None,
            memory: default_memory(),
            pids: default_pids(),
        }
    }
}

/// The user containers run as when neither the spec nor the image names a non-root one.
pub const DEFAULT_USER: &str = "65534:65534";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Security {
    /// `uid[:gid]` or a name known to the image. Unset: the image's user when
    /// it is not root, else 65534:65534.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default = "yes")]
    pub read_only: bool,
    /// Capabilities added back after dropping all.
    #[serde(default)]
    pub cap_add: Vec<String>,
    #[serde(default)]
    pub privileged: bool,
    /// `unconfined` or a path to a profile; unset keeps the engine's default profile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seccomp: Option<String>,
    #[serde(default = "yes")]
    pub no_new_privileges: bool,
}

fn yes() -> bool {
    true
}

impl Default for Security {
    fn default() -> Self {
        Security {
            user: None,
            read_only: true,
            cap_add: Vec::new(),
            privileged: false,
            seccomp: None,
            no_new_privileges: true,
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestartPolicy {
    No,
    #[default]
    Always,
    OnFailure,
    UnlessStopped,
}

/// Most replicas one service may have (`replicas`, `autoscale.max`, `tug scale`).
pub const MAX_REPLICAS: u32 = 256;

/// `autoscale:` of a service: the replica count follows its metrics, the way
/// a Kubernetes HorizontalPodAutoscaler (autoscaling/v2) does.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Autoscale {
    pub min: u32,
    pub max: u32,
    /// Average CPU per replica, in percent of `resources.cpu` (one CPU when
    /// unset). With no target at all: 80, as on Kubernetes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_cpu: Option<u32>,
    /// Average requests in flight per replica (from the gateway).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_inflight: Option<f64>,
    /// Average requests per second per replica (from the gateway).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_rps: Option<f64>,
    /// With `min: 0`: stop the service after this long without requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle: Option<Duration>,
    /// With `min: 0`: requests the gateway holds while it wakes the service;
    /// more get 503 with `Retry-After`.
    #[serde(default = "default_max_pending")]
    pub max_pending: u32,
    /// With `min: 0`: how long a held request waits for a replica to be
    /// ready before it gets 503.
    #[serde(default = "default_wake_timeout")]
    pub wake_timeout: Duration,
    #[serde(default)]
    pub behavior: ScaleBehavior,
}

/// Requests held while a service scaled to zero wakes, when `max_pending` is unset.
pub const DEFAULT_MAX_PENDING: u32 = 100;
/// How long a held request waits, when `wake_timeout` is unset.
pub const DEFAULT_WAKE_TIMEOUT: Duration = Duration::from_secs(30);

fn default_max_pending() -> u32 {
    DEFAULT_MAX_PENDING
}
fn default_wake_timeout() -> Duration {
    DEFAULT_WAKE_TIMEOUT
}

/// The CPU target when `autoscale:` names none (the Kubernetes default).
pub const DEFAULT_TARGET_CPU: u32 = 80;

/// How fast replicas are added and removed (autoscaling/v2 `behavior`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScaleBehavior {
    #[serde(default = "ScaleRules::default_up")]
    pub scale_up: ScaleRules,
    #[serde(default = "ScaleRules::default_down")]
    pub scale_down: ScaleRules,
}

impl Default for ScaleBehavior {
    fn default() -> Self {
        ScaleBehavior {
            scale_up: ScaleRules::default_up(),
            scale_down: ScaleRules::default_down(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScaleRules {
    /// Recommendations of this long ago still count: the lowest of the
    /// window for scaling up, the highest for scaling down.
    pub stabilization: Duration,
    /// Which policy wins when several allow different changes.
    #[serde(default)]
    pub select: SelectPolicy,
    pub policies: Vec<ScalePolicy>,
}

impl ScaleRules {
    /// No stabilization; per 15 s, double or add 4 replicas, whichever is more.
    pub fn default_up() -> Self {
        ScaleRules {
            stabilization: Duration::from_secs(0),
            select: SelectPolicy::Max,
            policies: vec![
                ScalePolicy {
                    kind: PolicyKind::Pods,
                    value: 4,
                    period: Duration::from_secs(15),
                },
                ScalePolicy {
                    kind: PolicyKind::Percent,
                    value: 100,
                    period: Duration::from_secs(15),
                },
            ],
        }
    }

    /// Five minutes of stabilization; then any number of replicas per 15 s.
    pub fn default_down() -> Self {
        ScaleRules {
            stabilization: Duration::from_secs(300),
            select: SelectPolicy::Max,
            policies: vec![ScalePolicy {
                kind: PolicyKind::Percent,
                value: 100,
                period: Duration::from_secs(15),
            }],
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SelectPolicy {
    /// The policy allowing the largest change.
    #[default]
    Max,
    /// The policy allowing the smallest change.
    Min,
    /// No scaling in this direction.
    Disabled,
}

/// At most `value` replicas (or percent of them) changed per `period`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScalePolicy {
    pub kind: PolicyKind,
    pub value: u32,
    pub period: Duration,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PolicyKind {
    Pods,
    Percent,
}
