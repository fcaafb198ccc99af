//! What feeds the agent's metrics: a subscriber of the event bus (rollouts,
//! restarts, replacements, scale decisions, image builds) and a sampler that
//! reads the snapshot's replica states and the runtime's stats.
//!
//! ```text
//!  Bus ──► feed ──┐
//!  snapshot ──┐   ├──► tug_observe::metrics::Metrics ◄── GET /metrics
//!  rt.stats ──┴► sample
//! ```

use super::{Agent, Shared};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tug_engine::agent::ProbeRecord;
use tug_engine::bus::Received;
use tug_engine::Event;
use tug_observe::metrics::{ReplicaResources, RolloutOutcome};
use tug_runtime::Runtime;

/// How often the sampler reads the engine's stats; `TUG_METRICS_INTERVAL`
/// (seconds) overrides it.
pub(super) fn interval() -> Duration {
    std::env::var("TUG_METRICS_INTERVAL")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|s| *s > 0.0)
        .map(Duration::from_secs_f64)
        .unwrap_or(Duration::from_secs(10))
}

/// Records every event that says something countable.
pub(super) async fn feed<R: Runtime>(agent: Shared<R>) {
    let mut sub = agent.bus.subscribe();
    let m = &agent.metrics;
    let mut converge: Option<(Instant, bool)> = None;
    let mut builds: HashMap<String, Instant> = HashMap::new();
    while let Some(r) = sub.recv().await {
        let p = match r {
            Received::Event(p) => p,
            Received::Missed(n) => {
                tracing::warn!(missed = n, "the metrics fell behind the event bus");
                continue;
            }
        };
        match &p.event {
            Event::Converging { .. } => converge = Some((Instant::now(), false)),
            Event::RollingBack { .. } => {
                if let Some((_, rolled_back)) = converge.as_mut() {
                    *rolled_back = true;
                }
            }
            Event::Converged { ok, .. } => {
                if let Some((began, rolled_back)) = converge.take() {
                    let outcome = match (ok, rolled_back) {
                        (true, _) => RolloutOutcome::Succeeded,
                        (false, true) => RolloutOutcome::RolledBack,
                        (false, false) => RolloutOutcome::Failed,
                    };
                    m.rollout(outcome, began.elapsed().as_secs_f64());
                }
                builds.clear();
            }
            Event::UpToDate { .. } => converge = None,
            Event::Restarting {
                service, replica, ..
            } => m.restarted(service, &replica_name(&agent, service, *replica)),
            Event::Replacing {
                service, replica, ..
            } => m.replaced(service, &replica_name(&agent, service, *replica)),
            Event::Autoscaled {
                service,
                current,
                desired,
                ..
            } => m.scaled(service, *current, *desired),
            Event::Image { service, .. } => {
                builds.entry(service.clone()).or_insert_with(Instant::now);
            }
            Event::ImageReady { service, .. } => {
                if let Some(began) = builds.remove(service) {
                    m.built(service, true, began.elapsed().as_secs_f64());
                }
            }
            Event::ServiceFailed { service, .. } => {
                if let Some(began) = builds.remove(service) {
                    m.built(service, false, began.elapsed().as_secs_f64());
                }
            }
            _ => {}
        }
    }
}

/// The container name of a replica, as the gateway's series name it; the
/// number when the snapshot does not know it (any more).
fn replica_name<R>(agent: &Agent<R>, service: &str, replica: u32) -> String {
    agent
        .snapshot
        .load()
        .replicas
        .iter()
        .find(|r| r.service == service && r.replica == Some(replica))
        .map(|r| r.name.clone())
        .unwrap_or_else(|| replica.to_string())
}

/// Health probes supervision ran.
pub(super) fn probed<R>(agent: &Agent<R>, probes: Vec<ProbeRecord>) {
    for p in probes {
        agent
            .metrics
            .health_checked(&p.service, &p.replica, p.ok, p.seconds);
    }
}

/// Every `every`: replica states from the snapshot, resources from the
/// runtime's stats (there is no stream of them to subscribe to).
pub(super) async fn sample<R: Runtime>(agent: Shared<R>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let ps = agent.snapshot.load_full();
        agent.metrics.set_replicas(
            ps.replicas
                .iter()
                .map(|r| (r.service.as_str(), r.name.as_str(), r.state.as_str())),
        );
        let mut readings = Vec::new();
        for r in ps.replicas.iter().filter(|r| r.state == "running") {
            match agent.rt.stats(&r.name).await {
                Ok(Some(s)) => readings.push(ReplicaResources {
                    service: r.service.clone(),
                    replica: r.name.clone(),
                    cpu_seconds: s.cpu_ns as f64 / 1e9,
                    memory_bytes: s.memory,
                    network_receive_bytes: s.net_rx,
                    network_transmit_bytes: s.net_tx,
                    disk_read_bytes: s.disk_read,
                    disk_write_bytes: s.disk_write,
                }),
                Ok(None) => {}
                Err(e) => tracing::debug!(replica = %r.name, error = %e, "no stats"),
            }
        }
        agent.metrics.set_resources(readings);
    }
}
