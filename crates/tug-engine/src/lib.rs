//! The reconciler: observe → plan → apply.
//!
//! # Contract of [`up`]
//!
//! Expected flow: resolve every service's image (build or look up), compute
//! each service's config hash, read the stack back from the engine's labels
//! ([`observe`]), [`plan::plan`] the difference, then apply it: network and
//! volumes, removals, then every service in dependency order (independent
//! services in parallel), each gated on its dependencies' conditions and on
//! its own replicas turning healthy.
//!
//! Guarantees: nothing is touched when the plan is empty; containers of other
//! stacks and containers tug did not create are never touched; a run
//! interrupted at any point leaves only labelled resources that the next run
//! adopts or removes, because container names are deterministic per
//! (stack, service, replica, config hash).
//!
//! Errors: the first failed service is reported with why, its last log lines
//! and its last health probe output; services waiting on it are not started.

pub mod agent;
pub mod bus;
pub mod event;
pub mod health;
pub mod images;
pub mod ops;
pub mod plan;
pub mod preview;
pub mod render;
pub mod store;
mod up;
pub mod users;

pub use event::{Event, Sink};
pub use up::{
    down, log_lines, observe, restart, status, stop, trace_id, up, DownReport, Drain, NoDrain,
    ReplicaLine, ReplicaStatus, UpOptions, UpReport,
};

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Runtime(#[from] tug_runtime::RuntimeError),
    #[error("service `{service}`: image {image}: {detail}")]
    Image {
        service: String,
        image: String,
        detail: String,
    },
    #[error("service `{service}` failed: {reason}{}{}",
        probe.as_ref().map(|p| format!("\nlast health probe: {p}")).unwrap_or_default(),
        if logs.is_empty() { String::new() } else { format!("\nlast log lines:\n  {}", logs.join("\n  ")) })]
    ServiceFailed {
        service: String,
        reason: String,
        logs: Vec<String>,
        probe: Option<String>,
    },
    // The cause is part of the message: through the agent only the message
    // travels.
    #[error("service `{service}`: cannot tell which ids user `{user}` of image {image} has: {cause}\nhint: give the ids, `security: {{ user: \"UID:GID\" }}`, or add the user to the image")]
    UnknownUser {
        service: String,
        user: String,
        image: String,
        cause: users::UserError,
    },
    #[error("secret `{name}`: reading {}", path.display())]
    Secret {
        name: String,
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl EngineError {
    /// A failed rollout whose previous replicas were put back.
    pub fn rolled_back(&self) -> bool {
        matches!(self, EngineError::ServiceFailed { reason, .. } if reason.contains("; rolled back to the previous"))
    }
}
