//! The one event stream: published on the [`Bus`](crate::bus::Bus), consumed
//! by progress displays, JSON output, the store and the agent's API.

use serde::{Deserialize, Serialize};

/// Serialized as `{"event": "snake_case_name", ...fields}`; read back by
/// the CLI from the agent's `POST /v1/up` stream.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// An image is being built or looked up.
    Image {
        service: String,
        message: String,
    },
    /// One line of build output.
    BuildLog {
        service: String,
        line: String,
    },
    /// The service's image is ready.
    ImageReady {
        service: String,
        image: String,
    },
    NetworkCreated {
        name: String,
    },
    VolumeCreated {
        name: String,
    },
    Removing {
        service: String,
        container: String,
        reason: crate::plan::RemoveReason,
    },
    /// Waiting for a dependency to reach its condition.
    Waiting {
        service: String,
        on: String,
        condition: String,
    },
    Creating {
        service: String,
        replica: u32,
    },
    Started {
        service: String,
        replica: u32,
        container: String,
    },
    Healthy {
        service: String,
        replica: u32,
        /// The container's id.
        container: String,
    },
    /// The service reached its target state (healthy, running or completed).
    ServiceReady {
        service: String,
        state: String,
    },
    ServiceFailed {
        service: String,
        reason: String,
    },
    /// The agent restarts a replica that exited.
    Restarting {
        service: String,
        replica: u32,
        exit_code: i64,
        attempt: u32,
    },
    /// The agent replaces a replica that failed its health checks.
    Replacing {
        service: String,
        replica: u32,
        reason: String,
    },
    /// A rollout failed; the previous replicas are being put back.
    RollingBack {
        service: String,
        reason: String,
    },
    /// A converge of the stack begins.
    Converging {
        stack: String,
    },
    /// The converge is over (`ok` false: it failed; see `ServiceFailed`).
    Converged {
        stack: String,
        ok: bool,
    },
    /// Nothing to change.
    UpToDate {
        stack: String,
    },
    /// A replica's container changed on the engine (it died, was OOM-killed,
    /// changed health): what the agent saw, before it reacts.
    Replica {
        service: String,
        replica: Option<u32>,
        container: String,
        #[serde(flatten)]
        change: tug_runtime::ContainerChange,
    },
    /// The agent lost the engine's event stream (the engine went away).
    EngineLost {
        reason: String,
    },
    /// The agent is back on the engine's event stream and resynchronises.
    EngineResumed,
    /// A recorder fell behind and this many events were not recorded.
    EventsDropped {
        count: u64,
    },
    /// The autoscaler's decision for a service, with what it was based on.
    Autoscaled {
        service: String,
        current: u32,
        desired: u32,
        reason: tug_autoscale::Reason,
        metrics: Vec<tug_autoscale::MetricReading>,
    },
    /// The agent started a pipeline run: `trigger` is `schedule`, `github`
    /// or `gitlab`.
    PipelineStarted {
        pipeline: String,
        run: i64,
        trigger: String,
    },
    /// A line of a job's (masked) output.
    PipelineLine {
        pipeline: String,
        run: i64,
        job: String,
        line: String,
    },
    /// A job of a pipeline run ended.
    PipelineJob {
        pipeline: String,
        run: i64,
        job: String,
        status: String,
        /// How long it took, retries included.
        #[serde(default)]
        seconds: f64,
    },
    PipelineFinished {
        pipeline: String,
        run: i64,
        status: String,
    },
    /// tug's own probe found a replica's health changed (to healthy, or to
    /// unhealthy past its retries); `output` is what the probe said, trimmed.
    HealthChanged {
        service: String,
        replica: Option<u32>,
        container: String,
        healthy: bool,
        output: String,
    },
}

impl Event {
    pub fn service(&self) -> Option<&str> {
        match self {
            Event::Image { service, .. }
            | Event::BuildLog { service, .. }
            | Event::ImageReady { service, .. }
            | Event::Removing { service, .. }
            | Event::Waiting { service, .. }
            | Event::Creating { service, .. }
            | Event::Started { service, .. }
            | Event::Healthy { service, .. }
            | Event::ServiceReady { service, .. }
            | Event::ServiceFailed { service, .. }
            | Event::RollingBack { service, .. }
            | Event::Restarting { service, .. }
            | Event::Replacing { service, .. }
            | Event::Replica { service, .. }
            | Event::HealthChanged { service, .. }
            | Event::Autoscaled { service, .. } => Some(service),
            Event::NetworkCreated { .. }
            | Event::VolumeCreated { .. }
            | Event::UpToDate { .. }
            | Event::Converging { .. }
            | Event::Converged { .. }
            | Event::EngineLost { .. }
            | Event::EngineResumed
            | Event::EventsDropped { .. }
            | Event::PipelineStarted { .. }
            | Event::PipelineLine { .. }
            | Event::PipelineJob { .. }
            | Event::PipelineFinished { .. } => None,
        }
    }
}

/// Where events go. Must be cheap: it is called on the apply path.
pub type Sink<'a> = &'a (dyn Fn(Event) + Send + Sync);
