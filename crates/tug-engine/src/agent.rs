//! Supervision: what the agent does every tick.
//!
//! # Contract of [`Supervisor::step`]
//!
//! Expected flow: observe the stack from labels; restart replicas that exited
//! when their `restart` policy says so, with exponential backoff (1s, 2s, 4s…
//! capped at 30s, reset after 10s of running); probe replicas whose health
//! check is made from the host and replace a replica after `retries`
//! consecutive failures past its `start_period` (exec checks: when the engine
//! reports it unhealthy); then, if replicas are missing or extra, converge.
//!
//! Guarantees: only the stack's own labelled containers are touched; a new
//! supervisor (an agent restarted) adopts running replicas without touching
//! them, because all it keeps in memory is backoff and probe counters.
//!
//! Assumptions: the caller holds the stack's apply lock for the whole step,
//! so a `tug up` in progress and the agent never act at the same time.

use crate::event::{Event, Sink};
use crate::{health, observe, plan, render, EngineError, UpOptions};
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};
use tug_runtime::{labels, ContainerState, EngineHealth, Runtime};
use tug_spec::{Probe, RestartPolicy, Stack};

const BACKOFF_START: Duration = Duration::from_secs(1);
const BACKOFF_CAP: Duration = Duration::from_secs(30);
const RESET_AFTER: Duration = Duration::from_secs(10);

#[derive(Debug, Default)]
struct Replica {
    restarts: u32,
    next_restart: Option<Instant>,
    running_since: Option<Instant>,
    first_seen: Option<Instant>,
    health_failures: u32,
    next_probe: Option<Instant>,
}

/// Backoff before restart number `n` (1-based).
pub fn backoff(n: u32) -> Duration {
    BACKOFF_START
        .saturating_mul(1u32 << n.saturating_sub(1).min(16))
        .min(BACKOFF_CAP)
}

#[derive(Debug, Default)]
pub struct Supervisor {
    replicas: HashMap<String, Replica>,
}

/// What one step did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct StepReport {
    pub restarted: Vec<String>,
    pub replaced: Vec<String>,
    pub converged: bool,
}

impl Supervisor {
    pub fn new() -> Self {
        Supervisor::default()
    }

    /// A note for `tug ps` about a container: e.g. "backoff 8s".
    pub fn note(&self, container: &str) -> Option<String> {
        let r = self.replicas.get(container)?;
        let at = r.next_restart?;
        let left = at.saturating_duration_since(Instant::now());
        Some(format!("backoff {}s", left.as_secs().max(1)))
    }

    pub async fn step<R: Runtime>(
        &mut self,
        rt: &R,
        stack: &Stack,
        opts: &UpOptions,
        events: Sink<'_>,
    ) -> Result<StepReport, EngineError> {
        let now = Instant::now();
        let (observed, infos) = observe(rt, &stack.name).await?;
        let mut report = StepReport::default();
        let seen: Vec<String> = infos.iter().map(|c| c.name.clone()).collect();
        self.replicas.retain(|k, _| seen.contains(k));
        for c in &infos {
            let Some(service) = c.label(labels::SERVICE) else {
                continue;
            };
            let Some(svc) = stack.services.get(service) else {
                continue;
            };
            let replica: u32 = c
                .label(labels::REPLICA)
                .and_then(|r| r.parse().ok())
                .unwrap_or(0);
            let st = self.replicas.entry(c.name.clone()).or_default();
            st.first_seen.get_or_insert(now);
            match c.state {
                ContainerState::Exited | ContainerState::Dead => {
                    st.running_since = None;
                    st.health_failures = 0;
                    let code = c.exit_code.unwrap_or(-1);
                    let wanted = match svc.restart {
                        RestartPolicy::Always | RestartPolicy::UnlessStopped => true,
                        RestartPolicy::OnFailure => code != 0,
                        RestartPolicy::No => false,
                    };
                    if !wanted {
                        continue;
                    }
                    match st.next_restart {
                        None => {
                            st.restarts += 1;
                            st.next_restart = Some(now + backoff(st.restarts));
                        }
                        Some(at) if now >= at => {
                            events(Event::Restarting {
                                service: service.into(),
                                replica,
                                exit_code: code,
                                attempt: st.restarts,
                            });
                            st.next_restart = None;
                            match rt.start_container(&c.id).await {
                                Ok(()) => report.restarted.push(c.name.clone()),
                                Err(e) => {
                                    st.restarts += 1;
                                    st.next_restart = Some(now + backoff(st.restarts));
                                    tracing::warn!(container = %c.name, error = %e, "restart failed");
                                }
                            }
                        }
                        Some(_) => {}
                    }
                }
                ContainerState::Running => {
                    let since = *st.running_since.get_or_insert(now);
                    if now.duration_since(since) >= RESET_AFTER {
                        st.restarts = 0;
                    }
                    st.next_restart = None;
                    let Some(h) = &svc.health else { continue };
                    let unhealthy = match h.probe() {
                        Probe::Exec(_) => c.health == EngineHealth::Unhealthy,
                        probe => {
                            if st.next_probe.is_some_and(|t| now < t)
                                || now.duration_since(since) < h.start_period.std()
                            {
                                false
                            } else {
                                st.next_probe = Some(now + h.interval.std());
                                let result = match (probe, c.host_port) {
                                    (_, None) => Err("no published port".to_string()),
                                    (Probe::Http(path), Some(p)) => {
                                        health::http(p, &path, h.timeout.std()).await
                                    }
                                    (_, Some(p)) => health::tcp(p, h.timeout.std()).await,
                                };
                                match result {
                                    Ok(_) => st.health_failures = 0,
                                    Err(_) => st.health_failures += 1,
                                }
                                st.health_failures >= h.retries.max(1)
                            }
                        }
                    };
                    if unhealthy {
                        events(Event::Replacing {
                            service: service.into(),
                            replica,
                            reason: format!("unhealthy after {} failed checks", h.retries),
                        });
                        rt.stop_container(&c.id, svc.stop_grace_period.std())
                            .await?;
                        rt.remove_container(&c.id).await?;
                        report.replaced.push(c.name.clone());
                    }
                }
                _ => {}
            }
        }
        // Missing replicas (removed by hand, or replaced above): converge.
        let hashes: BTreeMap<String, String> = stack
            .services
            .keys()
            .filter_map(|n| {
                infos
                    .iter()
                    .find(|c| c.label(labels::SERVICE) == Some(n.as_str()))
                    .and_then(|c| c.label(labels::CONFIG_HASH))
                    .map(|h| (n.clone(), h.to_string()))
            })
            .collect();
        let needs = if hashes.len() == stack.services.len() && report.replaced.is_empty() {
            let desired = render::desired(stack, &hashes);
            let p = plan::plan(&desired, &observed);
            // Stopped replicas are the restart logic's business, not a plan's.
            !p.remove.is_empty()
                || p.services
                    .values()
                    .any(|s| !s.create.is_empty() || !s.replace.is_empty())
        } else {
            true
        };
        if needs {
            crate::up(rt, stack, opts, events).await?;
            report.converged = true;
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let b: Vec<u64> = (1..=7).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(b, [1, 2, 4, 8, 16, 30, 30]);
        assert_eq!(backoff(1000), BACKOFF_CAP);
    }
}
