//! The autoscaler loop: every interval, per service with `autoscale:`,
//! read each metric per running replica, ask the policy
//! ([`tug_autoscale::Autoscaler`]) for a count, publish the decision on the
//! bus with its inputs, show it in the snapshot, and scale through the path
//! `tug scale` takes (a recorded converge under the apply lock).
//!
//! CPU comes from the runtime's stats; requests in flight and per second
//! from the gateway through [`RequestSource`] when one is plugged in; with
//! none those metrics are missing, and missing metrics never scale down.

use super::*;
use std::collections::BTreeMap;
use tug_autoscale::source::{CpuMeter, RateMeter, RequestSource};
use tug_autoscale::{Autoscaler, Decision, MetricKind, Observation, Reason, Sample};

/// How often the autoscaler looks (the HPA's default sync period).
pub const INTERVAL: Duration = Duration::from_secs(15);

/// The loop's interval: `TUG_AUTOSCALE_INTERVAL` (a duration such as `2s`)
/// when set, else [`INTERVAL`].
pub fn interval() -> Duration {
    std::env::var("TUG_AUTOSCALE_INTERVAL")
        .ok()
        .and_then(|v| v.parse::<tug_spec::Duration>().ok())
        .map(|d| d.std())
        .filter(|d| !d.is_zero())
        .unwrap_or(INTERVAL)
}

/// What the loop keeps between looks.
#[derive(Default)]
struct State {
    scalers: BTreeMap<String, Autoscaler>,
    cpu: CpuMeter,
    requests: RateMeter,
    /// The last published (reason, desired) per service: a decision that
    /// repeats it is not published again.
    published: BTreeMap<String, (Reason, u32)>,
}

pub(super) async fn run<R: Runtime + Clone + 'static>(
    agent: Shared<R>,
    requests: Option<Arc<dyn RequestSource>>,
    every: Duration,
) {
    let mut state = State::default();
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if *agent.shutdown.borrow() {
            return;
        }
        let Some((revision, stack)) = desired(&agent).await else {
            continue;
        };
        look(&agent, requests.as_deref(), &mut state, revision, &stack).await;
    }
}

async fn look<R: Runtime>(
    agent: &Agent<R>,
    requests: Option<&dyn RequestSource>,
    state: &mut State,
    revision: i64,
    stack: &Stack,
) {
    state.scalers.retain(|name, _| {
        stack
            .services
            .get(name)
            .is_some_and(|s| s.autoscale.is_some())
    });
    state.published.retain(|name, _| {
        stack
            .services
            .get(name)
            .is_some_and(|s| s.autoscale.is_some())
    });
    let ps = agent.snapshot.load_full();
    let mut live: Vec<String> = Vec::new();
    let mut rows = BTreeMap::new();
    for (name, svc) in &stack.services {
        let Some(spec) = &svc.autoscale else {
            continue;
        };
        let now = Instant::now();
        let replicas: Vec<&api::Replica> = ps
            .replicas
            .iter()
            .filter(|r| &r.service == name && r.state == "running")
            .collect();
        live.extend(replicas.iter().map(|r| r.name.clone()));
        let traffic = requests.and_then(|s| s.traffic(name));
        let limit = svc.resources.cpu.unwrap_or(1.0);
        let mut observations = Vec::new();
        for (metric, target) in tug_autoscale::targets(spec) {
            let mut samples = Vec::with_capacity(replicas.len());
            for r in &replicas {
                let counted = traffic
                    .as_ref()
                    .and_then(|t| t.replicas.iter().find(|x| x.replica == r.name));
                let value = match metric {
                    MetricKind::Cpu => match agent.rt.stats(&r.name).await {
                        Ok(Some(s)) => state.cpu.percent(&r.name, now, s.cpu_ns, limit),
                        Ok(None) => None,
                        Err(e) => {
                            tracing::debug!(replica = %r.name, error = %e, "no stats");
                            None
                        }
                    },
                    MetricKind::Inflight => counted.map(|c| c.in_flight as f64),
                    MetricKind::Rps => {
                        counted.and_then(|c| state.requests.rate(&r.name, now, c.requests as f64))
                    }
                };
                // Starting or failing replicas are set aside, as the HPA does.
                let ready = r.health != "starting" && r.health != "unhealthy";
                samples.push(Sample { value, ready });
            }
            observations.push(Observation {
                metric,
                target,
                samples,
            });
        }
        let scaler = state
            .scalers
            .entry(name.clone())
            .or_insert_with(|| Autoscaler::new(spec.clone()));
        scaler.update(spec.clone());
        let idle_since = traffic.as_ref().and_then(|t| t.idle_since);
        let decision = scaler.decide(now, svc.replicas, &observations, idle_since);
        rows.insert(name.clone(), row(spec, &decision));
        let key = (decision.reason, decision.desired);
        if decision.desired != decision.current || state.published.get(name) != Some(&key) {
            state.published.insert(name.clone(), key);
            agent.bus.publish(
                None,
                Event::Autoscaled {
                    service: name.clone(),
                    current: decision.current,
                    desired: decision.desired,
                    reason: decision.reason,
                    metrics: decision.metrics.clone(),
                },
            );
        }
        if decision.desired != decision.current {
            tracing::info!(service = %name, from = decision.current, to = decision.desired, reason = ?decision.reason, "autoscaling");
            match scale(agent, revision, name, &decision).await {
                Ok(true) => scaler.scaled(now, decision.current, decision.desired),
                Ok(false) => {}
                Err(e) => tracing::warn!(service = %name, error = %e, "autoscaling failed"),
            }
        }
    }
    let live: Vec<&str> = live.iter().map(String::as_str).collect();
    state.cpu.retain(&live);
    state.requests.retain(&live);
    agent.snapshot.rcu(|s| Ps {
        autoscale: rows.clone(),
        ..(**s).clone()
    });
}

fn row(spec: &tug_spec::Autoscale, d: &Decision) -> api::Autoscaling {
    api::Autoscaling {
        min: spec.min,
        max: spec.max,
        current: d.current,
        desired: d.desired,
        reason: serde_json::to_value(d.reason)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default(),
        metrics: d
            .metrics
            .iter()
            .map(|m| api::AutoscaleMetric {
                metric: m.metric.as_str().to_string(),
                value: m.value,
                target: m.target,
            })
            .collect(),
        time: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0),
    }
}

/// Wakes the services the gateway's activator asks for, one at a time.
pub(super) async fn wakes<R: Runtime + Clone + 'static>(
    agent: Shared<R>,
    mut asked: tokio::sync::mpsc::UnboundedReceiver<String>,
) {
    while let Some(service) = asked.recv().await {
        if let Err(e) = wake(&agent, &service).await {
            tracing::warn!(service = %service, error = %e, "waking the service failed");
        }
    }
}

/// Starts one replica of `service` if it is at zero, through the path
/// `tug scale` takes (a recorded converge under the apply lock); the
/// gateway forwards the held requests once the replica is ready.
async fn wake<R: Runtime>(agent: &Agent<R>, service: &str) -> Result<(), OpsError> {
    let lock = ApplyLock::acquire(&agent.stack.name).await?;
    let Some((_, stack)) = desired(agent).await else {
        return Ok(());
    };
    if stack.services.get(service).is_none_or(|s| s.replicas > 0) {
        // Woken already (a converge in between), or gone from the stack.
        drop(lock);
        refresh(agent).await;
        return Ok(());
    }
    tracing::info!(service = %service, "waking: a request arrived for the service scaled to zero");
    let began = Instant::now();
    agent.bus.publish(
        None,
        Event::Autoscaled {
            service: service.to_string(),
            current: 0,
            desired: 1,
            reason: Reason::Woken,
            metrics: Vec::new(),
        },
    );
    let pair = format!("{service}=1");
    let scaled = ops::scaled(&stack, std::slice::from_ref(&pair))?;
    let message = format!("autoscale {pair} (woken by a request)");
    let done =
        ops::converge_held(&lock, &agent.rt, &scaled, &agent.opts, &message, &agent.bus).await?;
    drop(lock);
    tracing::info!(service = %service, ms = began.elapsed().as_millis() as u64, ok = done.result.is_ok(), "woken: the converge is over");
    refresh(agent).await;
    done.result.map(|_| ()).map_err(Into::into)
}

/// Scales `service` as `tug scale` would, under the apply lock, if the
/// desired state is still the revision the decision was made on (a `tug up`
/// in between wins). Returns whether it scaled.
async fn scale<R: Runtime>(
    agent: &Agent<R>,
    revision: i64,
    service: &str,
    d: &Decision,
) -> Result<bool, OpsError> {
    let lock = ApplyLock::acquire(&agent.stack.name).await?;
    let Some((now_rev, stack)) = desired(agent).await else {
        return Ok(false);
    };
    if now_rev != revision {
        return Ok(false);
    }
    let pair = format!("{service}={}", d.desired);
    let scaled = ops::scaled(&stack, std::slice::from_ref(&pair))?;
    let inputs: Vec<String> = d
        .metrics
        .iter()
        .map(|m| match m.value {
            Some(v) => format!(
                "{} {}/{}",
                m.metric.as_str(),
                m.metric.show(v),
                m.metric.show(m.target)
            ),
            None => format!("{} missing", m.metric.as_str()),
        })
        .collect();
    let message = format!("autoscale {pair} ({})", inputs.join(", "));
    let done =
        ops::converge_held(&lock, &agent.rt, &scaled, &agent.opts, &message, &agent.bus).await?;
    drop(lock);
    refresh(agent).await;
    match done.result {
        Ok(_) => Ok(true),
        Err(e) => Err(e.into()),
    }
}
