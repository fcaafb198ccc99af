//! The scaling policy: the Kubernetes HorizontalPodAutoscaler algorithm
//! (autoscaling/v2) as a function of the metrics, the replica count, the
//! time and the autoscaler's own recent history. No I/O, no clock: the
//! caller passes `now`, so every rule is replayed in unit tests.
//!
//! ```text
//!  per metric: desired = ceil(ready × average / target)   (none within 10 %)
//!              missing replicas: 0 on the way up, 100 % of target on the way down
//!  all metrics ─► max ─► stabilization window ─► rate policies ─► [min, max]
//! ```
//!
//! Expected flow: every tick the caller reads each metric per replica
//! ([`source`] turns engine and gateway counters into rates), calls
//! [`Autoscaler::decide`], applies a decision whose `desired` differs from
//! `current`, then reports the change with [`Autoscaler::scaled`], which the
//! rate policies count.
//!
//! Guarantees: `desired` is within `[min, max]`, except that a service at 0
//! replicas is left at 0 (stopped by hand, or scaled to zero and woken by the
//! gateway's activator). Missing metrics never scale a service down.
//!
//! ```
//! use std::time::Instant;
//! use tug_autoscale::{Autoscaler, MetricKind, Observation};
//! let spec = tug_spec::parse_str(
//!     "name: s\nservices:\n  api: { image: x, autoscale: { max: 10, target_cpu: 50% } }\n",
//!     "tug.yaml".as_ref(),
//! ).unwrap();
//! let mut a = Autoscaler::new(spec.services["api"].autoscale.clone().unwrap());
//! // Two replicas at 100 % of a CPU each, against a 50 % target: four.
//! let cpu = Observation::of(MetricKind::Cpu, 50.0, &[100.0, 100.0]);
//! let d = a.decide(Instant::now(), 2, &[cpu], None);
//! assert_eq!(d.desired, 4);
//! ```

use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};
use tug_spec::{Autoscale, PolicyKind, ScaleRules, SelectPolicy};

pub mod source;

/// No change while `average / target` is within 1 ± this (the HPA default).
pub const TOLERANCE: f64 = 0.1;

/// What a service is scaled on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricKind {
    /// CPU per replica, in percent of its CPU limit (one CPU when unset).
    Cpu,
    /// Requests in flight per replica.
    Inflight,
    /// Requests per second per replica.
    Rps,
}

impl MetricKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MetricKind::Cpu => "cpu",
            MetricKind::Inflight => "inflight",
            MetricKind::Rps => "rps",
        }
    }

    /// `70%` for CPU, the plain number otherwise.
    pub fn show(self, v: f64) -> String {
        match self {
            MetricKind::Cpu => format!("{v:.0}%"),
            _ if v.fract() == 0.0 => format!("{v:.0}"),
            _ => format!("{v:.1}"),
        }
    }
}

/// The metrics and targets `autoscale:` asks for, CPU at 80 % when it names none.
pub fn targets(a: &Autoscale) -> Vec<(MetricKind, f64)> {
    let mut t = Vec::new();
    if let Some(c) = a.target_cpu {
        t.push((MetricKind::Cpu, f64::from(c)));
    }
    if let Some(v) = a.target_inflight {
        t.push((MetricKind::Inflight, v));
    }
    if let Some(v) = a.target_rps {
        t.push((MetricKind::Rps, v));
    }
    if t.is_empty() {
        t.push((MetricKind::Cpu, f64::from(tug_spec::DEFAULT_TARGET_CPU)));
    }
    t
}

/// One replica's value of a metric.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample {
    /// `None`: no value yet (a new replica, a failed read).
    pub value: Option<f64>,
    /// False while the replica is starting (not yet healthy).
    pub ready: bool,
}

/// A metric over the service's replicas, with the per-replica target.
#[derive(Clone, Debug, PartialEq)]
pub struct Observation {
    pub metric: MetricKind,
    pub target: f64,
    pub samples: Vec<Sample>,
}

impl Observation {
    /// Every replica ready, each with a value.
    pub fn of(metric: MetricKind, target: f64, values: &[f64]) -> Self {
        Observation {
            metric,
            target,
            samples: values
                .iter()
                .map(|v| Sample {
                    value: Some(*v),
                    ready: true,
                })
                .collect(),
        }
    }
}

/// What one metric said, as recorded in the decision's event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricReading {
    pub metric: MetricKind,
    /// Average over the replicas that reported it; `None`: none did.
    pub value: Option<f64>,
    pub target: f64,
    /// The replicas this metric alone asks for.
    pub proposal: Option<u32>,
}

/// Why `desired` is what it is (the HPA's condition reasons, and tug's own).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// The metrics' proposal, within every limit.
    WithinRange,
    /// Every metric is within the tolerance of its target.
    WithinTolerance,
    /// Fewer replicas than `min`: raised to it.
    BelowMin,
    /// More replicas than `max`: lowered to it.
    AboveMax,
    /// Capped by `max`.
    TooManyReplicas,
    /// Floored by `min`.
    TooFewReplicas,
    /// Held by a lower recommendation of the scale-up window.
    ScaleUpStabilized,
    /// Held by a higher recommendation of the scale-down window.
    ScaleDownStabilized,
    /// Capped by the scale-up policies.
    ScaleUpLimit,
    /// Floored by the scale-down policies.
    ScaleDownLimit,
    /// No metric could be read, or some could not and the rest say scale
    /// down: nothing changes.
    MissingMetrics,
    /// At 0 replicas: left alone (the gateway's activator wakes it).
    Stopped,
    /// No request for `idle`, with `min: 0`: scaled to zero (and, at 0,
    /// waiting there for the next request).
    Idle,
    /// At 0 with `min: 0`, a request arrived: the gateway's activator
    /// started a replica.
    Woken,
}

impl Reason {
    pub fn describe(self) -> &'static str {
        match self {
            Reason::WithinRange => "the desired count is within the acceptable range",
            Reason::WithinTolerance => "the metrics are within 10% of their targets",
            Reason::BelowMin => "fewer replicas than min",
            Reason::AboveMax => "more replicas than max",
            Reason::TooManyReplicas => "the desired count is more than max",
            Reason::TooFewReplicas => "the desired count is less than min",
            Reason::ScaleUpStabilized => {
                "recent recommendations were lower than the current one (scale-up window)"
            }
            Reason::ScaleDownStabilized => {
                "recent recommendations were higher than the current one (scale-down window)"
            }
            Reason::ScaleUpLimit => "the count is rising faster than the scale-up policies allow",
            Reason::ScaleDownLimit => {
                "the count is falling faster than the scale-down policies allow"
            }
            Reason::MissingMetrics => "metrics are missing: no scale down on partial data",
            Reason::Stopped => "the service is at 0 replicas",
            Reason::Idle => "no request for the idle period",
            Reason::Woken => "a request arrived for the service scaled to zero",
        }
    }
}

/// One decision with its inputs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    pub current: u32,
    pub desired: u32,
    pub reason: Reason,
    pub metrics: Vec<MetricReading>,
}

#[derive(Clone, Copy, Debug)]
struct Timed {
    at: Instant,
    value: u32,
}

/// The autoscaler of one service: its configuration and recent history
/// (recommendations for the stabilization windows, changes for the policies).
#[derive(Clone, Debug)]
pub struct Autoscaler {
    spec: Autoscale,
    tolerance: f64,
    recommendations: Vec<Timed>,
    ups: Vec<Timed>,
    downs: Vec<Timed>,
}

impl Autoscaler {
    pub fn new(spec: Autoscale) -> Self {
        Autoscaler {
            spec,
            tolerance: TOLERANCE,
            recommendations: Vec::new(),
            ups: Vec::new(),
            downs: Vec::new(),
        }
    }

    pub fn spec(&self) -> &Autoscale {
        &self.spec
    }

    /// Takes a changed `autoscale:` (after `tug up`), keeping the history.
    pub fn update(&mut self, spec: Autoscale) {
        self.spec = spec;
    }

    /// The replica count for `current` replicas given the `observations`
    /// (one per metric, see [`targets`]). `idle_since`: since when the
    /// service has had no request, when the gateway knows.
    pub fn decide(
        &mut self,
        now: Instant,
        current: u32,
        observations: &[Observation],
        idle_since: Option<Instant>,
    ) -> Decision {
        let (min, max) = (self.spec.min, self.spec.max);
        let mut readings: Vec<MetricReading> = observations
            .iter()
            .map(|o| MetricReading {
                metric: o.metric,
                value: average(&o.samples),
                target: o.target,
                proposal: None,
            })
            .collect();
        let decided = |desired, reason, metrics| Decision {
            current,
            desired,
            reason,
            metrics,
        };
        if current == 0 {
            // Scaled to zero waits for a request; otherwise stopped by hand.
            let reason = if min == 0 && self.spec.idle.is_some() {
                Reason::Idle
            } else {
                Reason::Stopped
            };
            return decided(0, reason, readings);
        }
        if let (0, Some(idle), Some(since)) = (min, self.spec.idle, idle_since) {
            if now.saturating_duration_since(since) >= idle.std() {
                return decided(0, Reason::Idle, readings);
            }
        }
        if current > max {
            return decided(max, Reason::AboveMax, readings);
        }
        if current < min {
            return decided(min, Reason::BelowMin, readings);
        }
        // Each metric's proposal; the largest wins.
        let mut proposal: Option<u32> = None;
        let mut missing = 0;
        for (o, r) in observations.iter().zip(readings.iter_mut()) {
            match propose(o, current, self.tolerance) {
                Some(p) => {
                    r.proposal = Some(p);
                    proposal = Some(proposal.map_or(p, |q| q.max(p)));
                }
                None => missing += 1,
            }
        }
        let proposal = match proposal {
            Some(p) if missing == 0 || p >= current => p,
            _ => return decided(current, Reason::MissingMetrics, readings),
        };
        let (stabilized, stab_reason) = self.stabilize(now, current, proposal);
        let (desired, limit_reason) = self.limit(now, current, stabilized);
        let reason = match limit_reason {
            Reason::WithinRange if stabilized != proposal => stab_reason,
            Reason::WithinRange if desired == current && proposal == current => {
                Reason::WithinTolerance
            }
            r => r,
        };
        decided(desired, reason, readings)
    }

    /// Records that the service went from `from` to `to` replicas at `now`.
    pub fn scaled(&mut self, now: Instant, from: u32, to: u32) {
        let horizon = longest_period(&self.spec.behavior.scale_up)
            .max(longest_period(&self.spec.behavior.scale_down));
        let keep = |e: &Timed| now.saturating_duration_since(e.at) <= horizon;
        self.ups.retain(keep);
        self.downs.retain(keep);
        if to > from {
            self.ups.push(Timed {
                at: now,
                value: to - from,
            });
        } else if from > to {
            self.downs.push(Timed {
                at: now,
                value: from - to,
            });
        }
    }

    /// The stabilization windows: the lowest recommendation of the scale-up
    /// window caps a rise, the highest of the scale-down window floors a fall.
    fn stabilize(&mut self, now: Instant, current: u32, desired: u32) -> (u32, Reason) {
        let b = &self.spec.behavior;
        let (up_window, down_window) = (
            b.scale_up.stabilization.std(),
            b.scale_down.stabilization.std(),
        );
        let within = |at: Instant, w: Duration| now.saturating_duration_since(at) < w;
        let mut up = desired;
        let mut down = desired;
        for r in &self.recommendations {
            if within(r.at, up_window) {
                up = up.min(r.value);
            }
            if within(r.at, down_window) {
                down = down.max(r.value);
            }
        }
        let horizon = up_window.max(down_window);
        self.recommendations.retain(|r| within(r.at, horizon));
        self.recommendations.push(Timed {
            at: now,
            value: desired,
        });
        let stabilized = current.max(up).min(down);
        let reason = if stabilized < desired {
            Reason::ScaleUpStabilized
        } else {
            Reason::ScaleDownStabilized
        };
        (stabilized, reason)
    }

    /// The rate policies and the bounds.
    fn limit(&self, now: Instant, current: u32, desired: u32) -> (u32, Reason) {
        let b = &self.spec.behavior;
        // Metrics never take a service to zero: only `idle` does, so that a
        // quiet spell shorter than `idle` keeps one replica warm.
        let (min, max) = (self.spec.min.max(1), self.spec.max);
        if desired > current {
            let limit = self.up_limit(now, current, &b.scale_up).max(current);
            let (ceiling, reason) = if limit < max {
                (limit, Reason::ScaleUpLimit)
            } else {
                (max, Reason::TooManyReplicas)
            };
            if desired > ceiling {
                return (ceiling, reason);
            }
        } else if desired < current {
            let limit = self.down_limit(now, current, &b.scale_down).min(current);
            let (floor, reason) = if limit > min {
                (limit, Reason::ScaleDownLimit)
            } else {
                (min, Reason::TooFewReplicas)
            };
            if desired < floor {
                return (floor, reason);
            }
        }
        (desired, Reason::WithinRange)
    }

    /// The replicas at the start of `period`: `current` less what was added
    /// since, plus what was removed since.
    fn period_start(&self, now: Instant, current: u32, period: Duration) -> i64 {
        let sum = |events: &[Timed]| -> i64 {
            events
                .iter()
                .filter(|e| now.saturating_duration_since(e.at) < period)
                .map(|e| i64::from(e.value))
                .sum()
        };
        i64::from(current) - sum(&self.ups) + sum(&self.downs)
    }

    fn up_limit(&self, now: Instant, current: u32, rules: &ScaleRules) -> u32 {
        let proposals = rules.policies.iter().map(|p| {
            let start = self.period_start(now, current, p.period.std());
            match p.kind {
                PolicyKind::Pods => start + i64::from(p.value),
                // Rounded up, or a small service would never grow.
                PolicyKind::Percent => {
                    (start as f64 * (1.0 + f64::from(p.value) / 100.0)).ceil() as i64
                }
            }
        });
        let limit = match rules.select {
            SelectPolicy::Disabled => return current,
            SelectPolicy::Max => proposals.max(),
            SelectPolicy::Min => proposals.min(),
        };
        clamp_u32(limit.unwrap_or(i64::from(current)))
    }

    fn down_limit(&self, now: Instant, current: u32, rules: &ScaleRules) -> u32 {
        let proposals = rules.policies.iter().map(|p| {
            let start = self.period_start(now, current, p.period.std());
            match p.kind {
                PolicyKind::Pods => start - i64::from(p.value),
                // Truncated, as the HPA does: 72 less 10 % is 64.
                PolicyKind::Percent => (start as f64 * (1.0 - f64::from(p.value) / 100.0)) as i64,
            }
        });
        // The largest change down is the lowest count.
        let limit = match rules.select {
            SelectPolicy::Disabled => return current,
            SelectPolicy::Max => proposals.min(),
            SelectPolicy::Min => proposals.max(),
        };
        clamp_u32(limit.unwrap_or(i64::from(current)))
    }
}

fn clamp_u32(v: i64) -> u32 {
    v.clamp(0, i64::from(u32::MAX)) as u32
}

fn longest_period(r: &ScaleRules) -> Duration {
    r.policies
        .iter()
        .map(|p| p.period.std())
        .max()
        .unwrap_or_default()
}

fn average(samples: &[Sample]) -> Option<f64> {
    let values: Vec<f64> = samples.iter().filter_map(|s| s.value).collect();
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

fn ratio(values: &[f64], target: f64) -> f64 {
    values.iter().sum::<f64>() / (values.len() as f64 * target)
}

/// One metric's replica count, or `None` when no ready replica reported it.
/// The HPA's rules: not-ready replicas are set aside, and replicas without
/// a value are filled in against the direction of the change (0 on the way
/// up, the target or 100 % on the way down); a fill-in that reverses the
/// direction, or lands within tolerance, keeps `current`.
pub fn propose(o: &Observation, current: u32, tolerance: f64) -> Option<u32> {
    if o.target.is_nan() || o.target <= 0.0 {
        return None;
    }
    let within = |r: f64| (1.0 - tolerance) <= r && r <= 1.0 + tolerance;
    let ready: Vec<f64> = o
        .samples
        .iter()
        .filter(|s| s.ready)
        .filter_map(|s| s.value)
        .collect();
    if ready.is_empty() {
        return None;
    }
    let unready = o.samples.iter().filter(|s| !s.ready).count();
    let missing = o
        .samples
        .iter()
        .filter(|s| s.ready && s.value.is_none())
        .count();
    let usage = ratio(&ready, o.target);
    let up_with_unready = unready > 0 && usage > 1.0;
    if !up_with_unready && missing == 0 {
        if within(usage) {
            return Some(current);
        }
        return Some(clamp_u32((usage * ready.len() as f64).ceil() as i64));
    }
    let mut values = ready.clone();
    if missing > 0 {
        let fill = if usage < 1.0 {
            match o.metric {
                MetricKind::Cpu => o.target.max(100.0),
                _ => o.target,
            }
        } else {
            0.0
        };
        values.extend(std::iter::repeat_n(fill, missing));
    }
    if up_with_unready {
        values.extend(std::iter::repeat_n(0.0, unready));
    }
    let new_usage = ratio(&values, o.target);
    if within(new_usage) || (usage > 1.0 && new_usage < 1.0) || (usage < 1.0 && new_usage > 1.0) {
        return Some(current);
    }
    let n = clamp_u32((new_usage * values.len() as f64).ceil() as i64);
    if (new_usage < 1.0 && n > current) || (new_usage > 1.0 && n < current) {
        return Some(current);
    }
    Some(n)
}
