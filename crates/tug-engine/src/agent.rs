//! Supervision: what the agent does when something happens.
//!
//! # Contract of [`Supervisor::tend`]
//!
//! Expected flow: observe the stack from labels; restart replicas that exited
//! when their `restart` policy says so (the first restart at once, then with
//! exponential backoff: 1s, 2s, 4s… capped at 30s, reset after 10s of
//! running); remove a replica that failed its health checks (exec checks: the
//! engine reports it unhealthy; host checks: [`Supervisor::probe`] counted
//! `retries` consecutive failures past its `start_period`); then say whether
//! replicas are missing or extra, so the caller converges.
//!
//! [`Supervisor::step`] is `tend` followed by that converge, in one call.
//!
//! Guarantees: only the stack's own labelled containers are touched; a new
//! supervisor (an agent restarted) adopts running replicas without touching
//! them, because all it keeps in memory is backoff and probe counters. A
//! container without a valid `dev.tug.replica` label is reported (a warning,
//! once) and left alone, never taken as replica 0.
//!
//! Assumptions: the caller holds the stack's apply lock, so a `tug up` in
//! progress and the agent never act at the same time.

use crate::event::{Event, Sink};
use crate::{health, observe, plan, render, EngineError, UpOptions};
use futures_util::future::join_all;
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};
use tug_runtime::{labels, ContainerInfo, ContainerState, Runtime};
use tug_spec::{Probe, RestartPolicy, Stack};

const BACKOFF_START: Duration = Duration::from_secs(1);
const BACKOFF_CAP: Duration = Duration::from_secs(30);
const RESET_AFTER: Duration = Duration::from_secs(10);
/// Probe cadence of a running replica that has not passed a probe yet.
pub const FAST_PROBE: Duration = Duration::from_millis(250);

#[derive(Debug, Default)]
struct Replica {
    restarts: u32,
    next_restart: Option<Instant>,
    running_since: Option<Instant>,
    health_failures: u32,
    /// When a failed probe last counted: fast probes count once per interval.
    counted: Option<Instant>,
    next_probe: Option<Instant>,
    /// Host-side probe results: `Some(true)` after a success.
    healthy: Option<bool>,
    /// What to probe, while the replica runs a host-checked service.
    target: Option<ProbeTarget>,
}

#[derive(Clone, Debug)]
struct ProbeTarget {
    probe: Probe,
    /// The replica's service, for the probe's record.
    service: String,
    /// Its replica number, for health change events.
    replica: Option<u32>,
    /// The container, for exec probes.
    id: String,
    port: Option<u16>,
    interval: Duration,
    timeout: Duration,
    start_period: Duration,
    retries: u32,
}

impl Replica {
    /// Forgets what it knew of a run that ended: probes stop, and health is
    /// learned afresh when it runs again (a stopped replica fails every
    /// probe, and those failures must not count against its next run).
    fn ended(&mut self) {
        self.running_since = None;
        self.health_failures = 0;
        self.counted = None;
        self.next_probe = None;
        self.healthy = None;
        self.target = None;
    }

    /// Points the host-side probe at a running replica (from now, when new),
    /// taking what a converge's health gate said of it from `gates`.
    fn aim(&mut self, c: &ContainerInfo, svc: &tug_spec::Service, now: Instant, gates: &mut Gates) {
        let Some(h) = &svc.health else { return };
        self.running_since.get_or_insert(now);
        self.target = Some(ProbeTarget {
            probe: h.probe(),
            service: c.label(labels::SERVICE).unwrap_or_default().to_string(),
            replica: replica_of(c).ok(),
            id: c.id.clone(),
            port: c.host_port,
            interval: h.interval.std(),
            timeout: h.timeout.std(),
            start_period: h.start_period.std(),
            retries: h.retries,
        });
        // A replica seen running for the first time is probed now; one a
        // converge's gate is probing already, a fast probe's time later
        // (two probes at once of a starting replica slow both, and the
        // gate's pass usually comes first).
        if self.next_probe.is_none() {
            let wait = if gates.started.remove(&c.id) {
                FAST_PROBE.min(h.interval.std())
            } else {
                Duration::ZERO
            };
            self.next_probe = Some(now + wait);
        }
        if gates.passed.remove(&c.id) {
            self.pass(now);
        }
    }

    /// A health gate passed it: healthy now, unless already judged.
    fn pass(&mut self, now: Instant) -> bool {
        let Some(t) = &self.target else { return false };
        if self.healthy.is_some() {
            return false;
        }
        self.healthy = Some(true);
        self.health_failures = 0;
        self.next_probe = Some(now + t.interval);
        true
    }
}

/// Backoff before restart number `n` (1-based): the first is immediate.
pub fn backoff(n: u32) -> Duration {
    if n <= 1 {
        return Duration::ZERO;
    }
    BACKOFF_START
        .saturating_mul(1u32 << (n - 2).min(16))
        .min(BACKOFF_CAP)
}

/// The replica number of a container from its `dev.tug.replica` label.
pub fn replica_of(c: &ContainerInfo) -> Result<u32, String> {
    match c.label(labels::REPLICA) {
        None => Err(format!(
            "container {} has no {} label",
            c.name,
            labels::REPLICA
        )),
        Some(v) => v.parse().map_err(|_| {
            format!(
                "container {} has an invalid {} label `{v}`",
                c.name,
                labels::REPLICA
            )
        }),
    }
}

#[derive(Debug, Default)]
pub struct Supervisor {
    replicas: HashMap<String, Replica>,
    /// The stack's containers as the last [`Supervisor::tend`] saw them.
    observed: Vec<ContainerInfo>,
    /// Containers already reported for a bad replica label.
    reported: std::collections::HashSet<String>,
    /// Probes run since the last [`Supervisor::take_probes`].
    probes: Vec<ProbeRecord>,
    /// What converges' health gates said of containers not tracked yet.
    gates: Gates,
}

/// Container ids, each set bounded: entries for containers that never run
/// here are dropped wholesale.
#[derive(Debug, Default)]
struct Gates {
    /// Passed by a gate before tracked here (a converge's gate is often
    /// quicker than the engine's start event): taken as healthy once
    /// tracked, instead of probed again.
    passed: std::collections::HashSet<String>,
    /// Started by a converge, whose gate probes them.
    started: std::collections::HashSet<String>,
}

impl Gates {
    fn note(set: &mut std::collections::HashSet<String>, container: &str) {
        if set.len() >= 1024 {
            set.clear();
        }
        set.insert(container.to_string());
    }
}

/// One host-side probe of a replica, for the metrics.
#[derive(Clone, Debug, PartialEq)]
pub struct ProbeRecord {
    pub service: String,
    /// The container's name.
    pub replica: String,
    pub ok: bool,
    pub seconds: f64,
    /// Set when this probe changed the replica's health to healthy or
    /// unhealthy (not on every probe).
    pub changed: Option<HealthChange>,
}

/// A replica's health as its probes found it, changed.
#[derive(Clone, Debug, PartialEq)]
pub struct HealthChange {
    pub replica: Option<u32>,
    pub healthy: bool,
    /// What the probe said, at most [`HealthChange::OUTPUT_MAX`] bytes. An
    /// exec check's own output is left out: a command may print anything,
    /// secrets included; its exit code is kept.
    pub output: String,
}

impl HealthChange {
    pub const OUTPUT_MAX: usize = 200;

    fn new(replica: Option<u32>, probe: &Probe, result: &Result<String, String>) -> Self {
        let said = match result {
            Ok(m) | Err(m) => m.as_str(),
        };
        let said = match probe {
            Probe::Exec(command) => {
                let shown = format!("`{}` exited with ", command.join(" "));
                match said.strip_prefix(&shown) {
                    Some(rest) => {
                        let code = rest.split(':').next().unwrap_or(rest);
                        format!("{shown}{code}")
                    }
                    None => said.to_string(),
                }
            }
            _ => said.to_string(),
        };
        let mut end = said.len().min(Self::OUTPUT_MAX);
        while !said.is_char_boundary(end) {
            end -= 1;
        }
        HealthChange {
            replica,
            healthy: result.is_ok(),
            output: said[..end].to_string(),
        }
    }
}

/// What one step did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct StepReport {
    pub restarted: Vec<String>,
    pub replaced: Vec<String>,
    /// Replicas are missing or extra: a converge is due.
    pub needs_converge: bool,
    pub converged: bool,
}

/// Health as tug sees it: the engine's for exec checks, the probes' for host checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SeenHealth {
    None,
    Starting,
    Healthy,
    Unhealthy,
}

impl Supervisor {
    pub fn new() -> Self {
        Supervisor::default()
    }

    /// The probes run since the last call, oldest first.
    pub fn take_probes(&mut self) -> Vec<ProbeRecord> {
        std::mem::take(&mut self.probes)
    }

    /// A note for `tug ps` about a container: e.g. "backoff 8s".
    pub fn note(&self, container: &str) -> Option<String> {
        let r = self.replicas.get(container)?;
        let at = r.next_restart?;
        let left = at.saturating_duration_since(Instant::now());
        Some(format!("backoff {}s", left.as_secs().max(1)))
    }

    /// The health of a replica as supervision knows it (host probes), if any.
    pub fn health(&self, container: &str) -> Option<SeenHealth> {
        let r = self.replicas.get(container)?;
        let h = r.target.as_ref()?;
        Some(match r.healthy {
            Some(true) => SeenHealth::Healthy,
            _ if r.health_failures >= h.retries.max(1) => SeenHealth::Unhealthy,
            _ => SeenHealth::Starting,
        })
    }

    /// Starts probing a replica an engine event reported running, before the
    /// next look at the whole stack (which may wait for the apply lock).
    pub fn track(&mut self, c: &ContainerInfo, stack: &Stack) {
        if c.state != ContainerState::Running || replica_of(c).is_err() {
            return;
        }
        let Some(svc) = c.label(labels::SERVICE).and_then(|s| stack.services.get(s)) else {
            return;
        };
        self.replicas.entry(c.name.clone()).or_default().aim(
            c,
            svc,
            Instant::now(),
            &mut self.gates,
        );
    }

    /// Takes a probe that passed elsewhere (the converge's health gate, which
    /// runs the same check) as this replica's, so it counts as healthy now
    /// rather than at the next probe here. Only for a replica not yet seen
    /// healthy or unhealthy; one not tracked yet takes it when it is.
    /// `container` is the container's id; returns whether its health changed.
    pub fn passed(&mut self, container: &str, now: Instant) -> bool {
        let tracked = self
            .replicas
            .values_mut()
            .find(|r| r.target.as_ref().is_some_and(|t| t.id == container));
        match tracked {
            Some(r) => r.pass(now),
            None => {
                Gates::note(&mut self.gates.passed, container);
                false
            }
        }
    }

    /// A converge started `container` (an id) and its health gate probes
    /// it: once tracked, its first probe here leaves the gate a fast
    /// probe's time to pass it first.
    pub fn gating(&mut self, container: &str) {
        Gates::note(&mut self.gates.started, container);
    }

    /// The stack's containers as last observed.
    pub fn observed(&self) -> &[ContainerInfo] {
        &self.observed
    }

    /// Whether a restart's backoff is over at `now`.
    pub fn restart_due(&self, now: Instant) -> bool {
        self.replicas
            .values()
            .any(|r| r.next_restart.is_some_and(|at| now >= at))
    }

    /// When something timed is next due: a restart after its backoff, or a probe.
    pub fn next_due(&self) -> Option<Instant> {
        self.replicas
            .values()
            .flat_map(|r| [r.next_restart, r.target.as_ref().and(r.next_probe)])
            .flatten()
            .min()
    }

    /// Tends the stack, then converges when replicas are missing or extra.
    pub async fn step<R: Runtime>(
        &mut self,
        rt: &R,
        stack: &Stack,
        opts: &UpOptions,
        events: Sink<'_>,
    ) -> Result<StepReport, EngineError> {
        let mut report = self.tend(rt, stack, true, events).await?;
        if self.probe(rt, Instant::now()).await {
            let again = self.tend(rt, stack, true, events).await?;
            report.restarted.extend(again.restarted);
            report.replaced.extend(again.replaced);
            report.needs_converge = again.needs_converge;
        }
        if report.needs_converge {
            crate::up(rt, stack, opts, events).await?;
            report.converged = true;
        }
        Ok(report)
    }

    /// Runs every host-side probe that is due at `now`, all at once. True
    /// when a replica crossed its failure threshold (a [`Supervisor::tend`]
    /// should follow).
    pub async fn probe<R: Runtime>(&mut self, rt: &R, now: Instant) -> bool {
        let due: Vec<(String, ProbeTarget)> = self
            .replicas
            .iter()
            .filter_map(|(name, r)| {
                let t = r.target.clone()?;
                r.running_since?;
                r.next_probe
                    .is_none_or(|at| now >= at)
                    .then(|| (name.clone(), t))
            })
            .collect();
        if due.is_empty() {
            return false;
        }
        let results = join_all(due.iter().map(|(_, t)| async {
            let began = Instant::now();
            let r = health::probe(rt, &t.probe, &t.id, t.port, t.timeout).await;
            (r, began.elapsed())
        }))
        .await;
        let mut crossed = false;
        for ((name, t), (result, took)) in due.into_iter().zip(results) {
            // Bounded: a caller that never takes them keeps the latest only.
            if self.probes.len() >= 4096 {
                self.probes.clear();
            }
            let before = self.health(&name);
            let Some(r) = self.replicas.get_mut(&name) else {
                continue;
            };
            let since = r.running_since.unwrap_or(now);
            match &result {
                Ok(_) => {
                    r.health_failures = 0;
                    r.healthy = Some(true);
                }
                Err(e) => {
                    // Failures in the start period do not count until the first success.
                    let past_start =
                        r.healthy == Some(true) || now.duration_since(since) >= t.start_period;
                    let counts = r
                        .counted
                        .is_none_or(|at| now.duration_since(at) >= t.interval);
                    if past_start && counts {
                        r.counted = Some(now);
                        r.health_failures += 1;
                        if r.health_failures >= t.retries.max(1) {
                            r.healthy = Some(false);
                            crossed = true;
                            tracing::info!(container = %name, error = %e, failures = r.health_failures, "replica failed its health checks");
                        }
                    }
                }
            }
            // Fast until the first success, then the configured interval.
            let every = if r.healthy == Some(true) {
                t.interval
            } else {
                FAST_PROBE.min(t.interval)
            };
            r.next_probe = Some(now + every);
            let after = self.health(&name);
            let changed = (after != before
                && matches!(after, Some(SeenHealth::Healthy | SeenHealth::Unhealthy)))
            .then(|| HealthChange::new(t.replica, &t.probe, &result));
            self.probes.push(ProbeRecord {
                service: t.service.clone(),
                replica: name.clone(),
                ok: result.is_ok(),
                seconds: took.as_secs_f64(),
                changed,
            });
        }
        crossed
    }

    /// Observes the stack and restarts or removes replicas as the rules say;
    /// `replace` false leaves unhealthy replicas for later (a converge is in
    /// flight). Never converges: see [`StepReport::needs_converge`].
    pub async fn tend<R: Runtime>(
        &mut self,
        rt: &R,
        stack: &Stack,
        replace: bool,
        events: Sink<'_>,
    ) -> Result<StepReport, EngineError> {
        let now = Instant::now();
        let (observed, infos) = observe(rt, &stack.name).await?;
        let mut report = StepReport::default();
        let seen: Vec<&str> = infos.iter().map(|c| c.name.as_str()).collect();
        self.replicas.retain(|k, _| seen.contains(&k.as_str()));
        // A service with replicas of two configurations is mid-rollout (or a
        // rollout was interrupted): its stopped replicas were stopped by tug,
        // not crashed, and the converge decides what runs.
        let mut hashes_of: BTreeMap<&str, std::collections::BTreeSet<&str>> = BTreeMap::new();
        for c in &infos {
            if let (Some(s), Some(h)) = (c.label(labels::SERVICE), c.label(labels::CONFIG_HASH)) {
                hashes_of.entry(s).or_default().insert(h);
            }
        }
        let mixed: Vec<&str> = hashes_of
            .iter()
            .filter(|(_, h)| h.len() > 1)
            .map(|(s, _)| *s)
            .collect();
        for c in &infos {
            let Some(service) = c.label(labels::SERVICE) else {
                continue;
            };
            let Some(svc) = stack.services.get(service) else {
                continue;
            };
            let replica = match replica_of(c) {
                Ok(r) => r,
                Err(why) => {
                    if self.reported.insert(c.name.clone()) {
                        tracing::warn!(container = %c.name, "{why}: left alone");
                    }
                    continue;
                }
            };
            let st = self.replicas.entry(c.name.clone()).or_default();
            match c.state {
                ContainerState::Exited | ContainerState::Dead if mixed.contains(&service) => {
                    st.ended();
                    st.next_restart = None;
                }
                // Kept stopped while its service idles at zero: a wake starts it.
                ContainerState::Exited | ContainerState::Dead if replica >= svc.replicas => {
                    st.ended();
                    st.next_restart = None;
                }
                ContainerState::Exited | ContainerState::Dead => {
                    // It ran long enough since its last start: a fresh crash.
                    if st
                        .running_since
                        .is_some_and(|t| now.duration_since(t) >= RESET_AFTER)
                    {
                        st.restarts = 0;
                    }
                    st.ended();
                    let code = c.exit_code.unwrap_or(-1);
                    let wanted = match svc.restart {
                        RestartPolicy::Always | RestartPolicy::UnlessStopped => true,
                        RestartPolicy::OnFailure => code != 0,
                        RestartPolicy::No => false,
                    };
                    if !wanted {
                        continue;
                    }
                    let at = *st.next_restart.get_or_insert_with(|| {
                        st.restarts += 1;
                        now + backoff(st.restarts)
                    });
                    if now < at {
                        continue;
                    }
                    events(Event::Restarting {
                        service: service.into(),
                        replica,
                        exit_code: code,
                        attempt: st.restarts,
                    });
                    st.next_restart = None;
                    match rt.start_container(&c.id).await {
                        Ok(()) => {
                            st.running_since = Some(now);
                            report.restarted.push(c.name.clone())
                        }
                        Err(e) => {
                            st.restarts += 1;
                            st.next_restart = Some(now + backoff(st.restarts));
                            tracing::warn!(container = %c.name, error = %e, "restart failed");
                        }
                    }
                }
                ContainerState::Running => {
                    let since = *st.running_since.get_or_insert(now);
                    if now.duration_since(since) >= RESET_AFTER {
                        st.restarts = 0;
                    }
                    st.next_restart = None;
                    let Some(h) = &svc.health else { continue };
                    st.aim(c, svc, now, &mut self.gates);
                    let unhealthy = st.healthy == Some(false);
                    if unhealthy && replace {
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
        let mut hashes: BTreeMap<String, String> = stack
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
        // A service scaled to zero has no container to read a hash from, and
        // none is needed: nothing of it is missing. (Taking it as missing
        // made the agent converge in a loop while a service sat at zero.)
        for (n, s) in &stack.services {
            if s.replicas == 0 {
                hashes.entry(n.clone()).or_default();
            }
        }
        report.needs_converge = if !mixed.is_empty() {
            true
        } else if hashes.len() == stack.services.len() && report.replaced.is_empty() {
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
        self.observed = infos;
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let b: Vec<u64> = (1..=8).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(b, [0, 1, 2, 4, 8, 16, 30, 30]);
        assert_eq!(backoff(1000), BACKOFF_CAP);
    }

    #[test]
    fn a_health_change_says_what_the_probe_said_trimmed() {
        let long = format!("GET http://127.0.0.1:1/h: {}", "é".repeat(300));
        let c = HealthChange::new(Some(2), &Probe::Http("/h".into()), &Err(long));
        assert!(c.output.len() <= HealthChange::OUTPUT_MAX, "{}", c.output);
        assert!(c.output.starts_with("GET http://127.0.0.1:1/h: é"));
        assert!(!c.healthy);
        let exec = Probe::Exec(vec!["check".into()]);
        let c = HealthChange::new(
            None,
            &exec,
            &Err("`check` exited with 3: TOKEN=s3cret".into()),
        );
        assert_eq!(c.output, "`check` exited with 3");
        let c = HealthChange::new(None, &exec, &Ok("`check` exited with 0".into()));
        assert_eq!(
            (c.healthy, c.output.as_str()),
            (true, "`check` exited with 0")
        );
    }
}
