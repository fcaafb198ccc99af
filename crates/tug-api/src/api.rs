//! The agent's API types: one definition, used by the server to answer and
//! by the client to read the answers.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::{IntoParams, ToSchema};

/// `GET /v1/agent`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AgentInfo {
    pub pid: u32,
    pub stack: String,
    #[schema(value_type = String)]
    pub socket: std::path::PathBuf,
    /// The agent's log file.
    #[schema(value_type = String)]
    pub log: std::path::PathBuf,
    /// The URL of the agent's HTTP listener (dashboard, API, `/metrics`).
    #[serde(default)]
    pub http: Option<String>,
}

/// `GET /v1/ps`: the agent's live snapshot.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Ps {
    pub stack: String,
    /// The revision the agent holds the stack to.
    pub revision: Option<i64>,
    pub replicas: Vec<Replica>,
    /// What a converge in progress is doing, if one runs.
    pub converge: Option<Converge>,
    /// Whether the agent is on the engine's event stream.
    pub engine_connected: bool,
    /// The gateway's URLs, when the stack has one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gateway: Vec<String>,
    /// The engine the agent runs the stack on, e.g. `podman 4.3.1 (API 1.41)`.
    #[serde(default)]
    pub engine: String,
    /// The autoscaler's last look at each autoscaled service.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub autoscale: BTreeMap<String, Autoscaling>,
    /// Services that have no replica on purpose, and why.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub services: BTreeMap<String, ServiceState>,
}

/// The state of a service that runs no replica on purpose.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ServiceState {
    /// Scaled to zero (`autoscale: { min: 0 }`): the next request through
    /// the gateway starts a replica.
    Idle,
}

/// `GET /v1/routes`: the gateway's routes and the replicas behind them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Routes {
    /// The gateway's URLs; empty when the stack has no gateway.
    pub listen: Vec<String>,
    pub routes: Vec<RouteRow>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RouteRow {
    pub service: String,
    /// `None`: any host.
    pub host: Option<String>,
    pub path: String,
    pub strip_prefix: bool,
    /// `p2c`, `round_robin`, `hash(client)` or `hash(<header>)`.
    pub balance: String,
    pub replicas: Vec<RouteReplica>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RouteReplica {
    pub name: String,
    pub address: String,
    /// `ready`, `ejected` (after failures, for a while) or `draining`.
    pub state: String,
    pub in_flight: u32,
}

/// An autoscaled service as the autoscaler last saw it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Autoscaling {
    pub min: u32,
    pub max: u32,
    pub current: u32,
    pub desired: u32,
    /// Why `desired` is what it is, e.g. `scale_down_stabilized`.
    pub reason: String,
    pub metrics: Vec<AutoscaleMetric>,
    /// When it looked, seconds since the epoch.
    pub time: i64,
}

/// One metric against its target, averaged over the replicas.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AutoscaleMetric {
    /// `cpu` (percent of the CPU limit), `inflight` or `rps`.
    pub metric: String,
    /// `None`: no replica reported it.
    pub value: Option<f64>,
    pub target: f64,
}

/// One replica as `tug ps` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Replica {
    pub service: String,
    /// `None` when the container's `dev.tug.replica` label is missing or invalid.
    pub replica: Option<u32>,
    pub name: String,
    pub id: String,
    pub state: String,
    pub health: String,
    pub endpoint: Option<String>,
    pub created: i64,
    pub image: String,
    /// Supervision's note, e.g. `backoff 8s`.
    pub note: Option<String>,
}

impl From<tug_engine::ReplicaStatus> for Replica {
    /// A replica as read from the engine without an agent: no supervision note.
    fn from(r: tug_engine::ReplicaStatus) -> Self {
        Replica {
            service: r.service,
            replica: r.replica,
            name: r.name,
            id: r.id,
            state: r.state,
            health: r.health,
            endpoint: r.endpoint,
            created: r.created,
            image: r.image,
            note: None,
        }
    }
}

/// A converge in progress.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Converge {
    /// When it began, seconds since the epoch.
    pub since: i64,
    /// What each service is doing, e.g. `started replica 1, checking health`.
    pub services: BTreeMap<String, String>,
}

/// `POST /v1/scale`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScaleRequest {
    /// `SERVICE=N` pairs.
    pub pairs: Vec<String>,
}

/// `POST /v1/restart`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RestartRequest {
    /// Services to restart; empty: all.
    #[serde(default)]
    pub services: Vec<String>,
}

/// `POST /v1/rollback`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RollbackRequest {
    /// The revision to return to; `None`: the previous good one.
    #[serde(default)]
    pub to: Option<i64>,
}

/// `POST /v1/down`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DownRequest {
    #[serde(default)]
    pub volumes: bool,
}

/// `POST /v1/up`: converge the agent's stack to `stack`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpRequest {
    /// The resolved stack (tug-spec's JSON form, as `tug up` loads tug.yaml);
    /// its name must be the agent's stack.
    #[schema(value_type = Object)]
    pub stack: serde_json::Value,
    /// Why, for the history (default `up`).
    #[serde(default)]
    pub message: Option<String>,
    /// How long one service may take to turn healthy, in seconds (default 120).
    #[serde(default)]
    pub timeout_secs: Option<u64>,
    /// The stack's directory and file (not in its JSON form); default: the
    /// agent's.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub dir: Option<std::path::PathBuf>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub file: Option<std::path::PathBuf>,
}

/// One line of the `POST /v1/up` answer (NDJSON): every event of the
/// converge as it happens, then `done` or `failed`. The converge runs in
/// the agent: a client that goes away does not stop it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "line", rename_all = "snake_case")]
pub enum UpLine {
    Event {
        /// `{"event": "<kind>", ...fields}`, as in the event stream.
        #[schema(value_type = Object)]
        event: serde_json::Value,
    },
    Done {
        revision: Option<i64>,
        report: Report,
        warning: Option<String>,
    },
    Failed {
        error: String,
        /// The service that failed, when one did.
        service: Option<String>,
        /// Its previous replicas were put back.
        rolled_back: bool,
        revision: Option<i64>,
    },
}

/// Largest `POST /v1/up` body: a whole stack.
pub const MAX_UP_BODY: usize = 4 * 1024 * 1024;

/// The answer to scale and rollback.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Converged {
    pub revision: Option<i64>,
    pub report: Report,
    pub warning: Option<String>,
}

/// What a converge changed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Report {
    pub images: BTreeMap<String, String>,
    pub created: usize,
    pub started: usize,
    pub removed: usize,
    pub up_to_date: bool,
}

impl From<tug_engine::UpReport> for Report {
    fn from(r: tug_engine::UpReport) -> Self {
        Report {
            images: r.images,
            created: r.created,
            started: r.started,
            removed: r.removed,
            up_to_date: r.up_to_date,
        }
    }
}

/// The answer to restart.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Restarted {
    pub restarted: usize,
    pub services: Vec<String>,
}

/// The answer to down.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Removed {
    pub containers: usize,
    pub networks: usize,
    pub volumes: usize,
}

/// One recorded event: `GET /v1/events` and each server-sent event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EventRecord {
    pub id: i64,
    pub time: i64,
    /// The event: `{"event": "<kind>", ...fields}`.
    #[schema(value_type = Object)]
    pub event: serde_json::Value,
}

/// One applied revision, newest first in `GET /v1/history`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Revision {
    pub id: i64,
    pub created: i64,
    /// `pending`, `succeeded`, `failed`, `rolled-back` or `interrupted`.
    pub outcome: String,
    pub message: String,
    /// The resolved stack as applied.
    #[schema(value_type = Object)]
    pub spec: serde_json::Value,
    pub images: BTreeMap<String, String>,
}

/// `?limit=N&after=ID` of the history and events.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Page {
    pub limit: Option<u32>,
    pub after: Option<i64>,
}

/// `GET /v1/logs` parameters.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LogsQuery {
    pub service: Option<String>,
    pub tail: Option<u32>,
    #[serde(default)]
    pub follow: bool,
    /// Only the lines this regular expression matches (Rust `regex` syntax).
    pub grep: Option<String>,
    /// Only lines written at or after this time: RFC 3339, a Unix
    /// timestamp, or a duration ago (`10m`).
    pub since: Option<String>,
    /// Only lines written before this time (same forms); a followed stream
    /// ends then.
    pub until: Option<String>,
}

/// Every error: a message to show, and whether the input was at fault (4xx).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub error: String,
    pub invalid: bool,
}

/// Largest request body the agent reads.
pub const MAX_BODY: usize = 64 * 1024;

/// `GET /v1/stats`: the agent's last sample of each replica's CPU time and
/// memory (the one its metrics hold). A rate is the difference of two samples.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Stats {
    /// When it was read, milliseconds since the epoch (0: not yet).
    pub time_ms: i64,
    pub replicas: Vec<ReplicaStats>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReplicaStats {
    pub service: String,
    pub name: String,
    /// CPU time used since the replica started, in nanoseconds; `None`: not
    /// running, or the engine did not say.
    pub cpu_ns: Option<u64>,
    /// Memory in use, in bytes.
    pub memory: Option<u64>,
}

/// `POST /login`: the dashboard's sign-in beyond loopback.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub token: String,
}

/// `GET /v1/findings`: configuration and secret checks of the stack's files
/// and the Dockerfile linter over its Dockerfiles, for one revision.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Findings {
    /// The revision they were computed for (cached until the next one).
    pub revision: Option<i64>,
    pub findings: Vec<FindingRow>,
    /// What could not be checked, and why.
    pub errors: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FindingRow {
    /// `config`, `secret` or `dockerfile`.
    pub tool: String,
    pub rule: String,
    /// `critical`, `high`, `medium`, `low` (scan); `error`, `warning`,
    /// `info`, `style` (Dockerfile linter).
    pub severity: String,
    /// `file:line:col`, relative to the stack's directory.
    pub location: String,
    pub message: String,
}

/// One pipeline run, newest first in `GET /v1/pipelines`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PipelineRun {
    pub id: i64,
    pub pipeline: String,
    /// `running`, `succeeded`, `failed`, `cancelled` (stopped by a signal) or
    /// `interrupted` (tug died while it ran).
    pub status: String,
    /// Seconds since the epoch.
    pub started: i64,
    pub finished: Option<i64>,
}

/// `GET /v1/pipelines/{id}`: a run with its jobs and their logs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PipelineRunDetail {
    #[serde(flatten)]
    pub run: PipelineRun,
    pub jobs: Vec<PipelineJob>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PipelineJob {
    pub name: String,
    pub status: String,
    pub seconds: f64,
    /// Why it was skipped, cancelled or failed before its steps.
    pub reason: Option<String>,
    /// The end of its (masked) log, at most 64 KiB.
    pub log: String,
}
