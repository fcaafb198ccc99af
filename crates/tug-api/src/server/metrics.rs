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
use futures_util::StreamExt;
use std::collections::HashMap;
use std::sync::Arc;
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
        .unwrap_or(Duration::from_secs(5))
}

/// Records every event that says something countable.
pub(super) async fn feed<R: Runtime>(agent: Shared<R>) {
    let mut sub = agent.bus.subscribe();
    let m = &agent.metrics;
    let mut converge: Option<(Instant, bool)> = None;
    let mut builds: HashMap<String, Instant> = HashMap::new();
    let mut runs: HashMap<(String, i64), Instant> = HashMap::new();
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
            Event::PipelineStarted { pipeline, run, .. } => {
                runs.insert((pipeline.clone(), *run), Instant::now());
            }
            Event::PipelineJob {
                pipeline,
                job,
                seconds,
                ..
            } => m.pipeline_job(pipeline, job, *seconds),
            Event::PipelineFinished {
                pipeline,
                run,
                status,
            } => {
                let began = runs.remove(&(pipeline.clone(), *run));
                // `error: why` is a run that could not be carried out.
                let outcome = if status.starts_with("error") {
                    "error"
                } else {
                    status.as_str()
                };
                m.pipeline_ran(pipeline, outcome, began.map(|b| b.elapsed().as_secs_f64()));
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

/// Health probes supervision ran: their metrics, and an event for each that
/// changed a replica's health. Called once the snapshot has the new health,
/// so a reader woken by the event sees it.
pub(super) fn probed<R>(agent: &Agent<R>, probes: Vec<ProbeRecord>) {
    for p in probes {
        agent
            .metrics
            .health_checked(&p.service, &p.replica, p.ok, p.seconds);
        if let Some(c) = p.changed {
            agent.bus.publish(
                None,
                Event::HealthChanged {
                    service: p.service,
                    replica: c.replica,
                    container: p.replica,
                    healthy: c.healthy,
                    output: c.output,
                },
            );
        }
    }
}

/// Every `every`: replica states from the snapshot, resources from the
/// runtime's stats (there is no stream of them to subscribe to). The one
/// reading feeds the metrics and the dashboard's `/v1/stats`.
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
        let rt = &agent.rt;
        // A few at a time: 50 replicas do not open 50 engine connections.
        let read: Vec<_> = futures_util::stream::iter(ps.replicas.clone())
            .map(|r| async move {
                let s = if r.state == "running" {
                    rt.stats(&r.name).await.unwrap_or_else(|e| {
                        tracing::debug!(replica = %r.name, error = %e, "no stats");
                        None
                    })
                } else {
                    None
                };
                (r, s)
            })
            .buffered(8)
            .collect()
            .await;
        let readings = read
            .iter()
            .filter_map(|(r, s)| {
                let s = s.as_ref()?;
                Some(ReplicaResources {
                    service: r.service.clone(),
                    replica: r.name.clone(),
                    cpu_seconds: s.cpu_ns as f64 / 1e9,
                    memory_bytes: s.memory,
                    network_receive_bytes: s.net_rx,
                    network_transmit_bytes: s.net_tx,
                    disk_read_bytes: s.disk_read,
                    disk_write_bytes: s.disk_write,
                })
            })
            .collect();
        agent.metrics.set_resources(readings);
        let time_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        let replicas = read
            .into_iter()
            .map(|(r, s)| crate::api::ReplicaStats {
                service: r.service,
                name: r.name,
                cpu_ns: s.as_ref().map(|s| s.cpu_ns),
                memory: s.and_then(|s| s.memory),
            })
            .collect();
        agent
            .stats
            .store(Arc::new(crate::api::Stats { time_ms, replicas }));
    }
}
