//! `autoscale:` of a service: bounds, targets and scaling behavior, checked
//! with the limits the Kubernetes HPA (autoscaling/v2) puts on the same
//! fields, so a stack that loads here renders to a valid HPA.

use crate::model::*;
use crate::parse::{suggest, Cx, Fields};
use crate::units::Duration;
use crate::yaml::Node;

const AUTOSCALE_KEYS: &[&str] = &[
    "min",
    "max",
    "target_cpu",
    "target_inflight",
    "target_rps",
    "idle",
    "max_pending",
    "wake_timeout",
    "behavior",
];
const BEHAVIOR_KEYS: &[&str] = &["scale_up", "scale_down"];
const RULES_KEYS: &[&str] = &["stabilization", "select", "policies"];
const POLICY_KEYS: &[&str] = &["pods", "percent", "period"];

/// Longest stabilization window the HPA accepts.
const MAX_STABILIZATION: u64 = 3600;
/// Longest policy period the HPA accepts.
const MAX_PERIOD: u64 = 1800;

impl Cx<'_> {
    pub(crate) fn autoscale(&mut self, name: &str, n: &Node) -> Option<Autoscale> {
        let what = format!("{name}.autoscale");
        let f = self.fields(n, &format!("`{what}`"), AUTOSCALE_KEYS)?;
        let min = match f.get("min") {
            Some(v) => self.count(v, &format!("{what}.min"))?,
            None => 1,
        };
        let max = match f.get("max") {
            Some(v) => {
                let m = self.count(v, &format!("{what}.max"))?;
                if m == 0 || m > MAX_REPLICAS {
                    self.err(
                        v,
                        format!("`{what}.max` must be from 1 to {MAX_REPLICAS}, found {m}"),
                        None,
                    );
                    return None;
                }
                m
            }
            None => {
                self.err(
                    n,
                    format!("`{what}` needs `max`, the most replicas it may run"),
                    Some(format!("add `max: {}`", (min.max(1) * 4).min(MAX_REPLICAS))),
                );
                return None;
            }
        };
        if min > max {
            let at = f.get("min").unwrap_or(n);
            self.err(
                at,
                format!("`{what}.min` ({min}) is more than `{what}.max` ({max})"),
                Some(format!("set `min` to at most {max}, or raise `max`")),
            );
        }
        let idle = f.get("idle").and_then(|v| {
            let d = self.duration(v, &format!("{what}.idle"))?;
            if d.std().is_zero() {
                self.err(v, format!("`{what}.idle` must be more than 0"), None);
                return None;
            }
            if min > 0 {
                self.err(
                    v,
                    format!("`{what}.idle` applies only with `min: 0`, found min: {min}"),
                    Some(
                        "set `min: 0` to stop the service when it is idle, or remove `idle`".into(),
                    ),
                );
            }
            Some(d)
        });
        if min == 0 && f.get("idle").is_none() {
            let at = f.get("min").unwrap_or(n);
            self.err(
                at,
                format!("`{what}.min: 0` needs `idle`, how long without requests before the service stops"),
                Some("add `idle: 5m`, or set `min: 1`".into()),
            );
        }
        let max_pending = match f.get("max_pending") {
            Some(v) => {
                let m = self.count(v, &format!("{what}.max_pending"))?;
                if m == 0 {
                    self.err(
                        v,
                        format!("`{what}.max_pending` must be at least 1"),
                        Some(format!("remove it to hold up to {DEFAULT_MAX_PENDING}")),
                    );
                }
                m
            }
            None => DEFAULT_MAX_PENDING,
        };
        let wake_timeout = match f.get("wake_timeout") {
            Some(v) => {
                let d = self.duration(v, &format!("{what}.wake_timeout"))?;
                if d.std().is_zero() {
                    self.err(
                        v,
                        format!("`{what}.wake_timeout` must be more than 0"),
                        None,
                    );
                }
                d
            }
            None => DEFAULT_WAKE_TIMEOUT,
        };
        for key in ["max_pending", "wake_timeout"] {
            if let (Some(v), true) = (f.get(key), min > 0) {
                self.err(
                    v,
                    format!("`{what}.{key}` applies only with `min: 0`, found min: {min}"),
                    Some(format!("set `min: 0` to scale to zero, or remove `{key}`")),
                );
            }
        }
        let target_cpu = f
            .get("target_cpu")
            .and_then(|v| self.percent(v, &format!("{what}.target_cpu")));
        let target_inflight = f
            .get("target_inflight")
            .and_then(|v| self.positive(v, &format!("{what}.target_inflight")));
        let target_rps = f
            .get("target_rps")
            .and_then(|v| self.positive(v, &format!("{what}.target_rps")));
        let behavior = match f.get("behavior") {
            Some(v) => self.behavior(&what, v).unwrap_or_default(),
            None => ScaleBehavior::default(),
        };
        Some(Autoscale {
            min,
            max,
            target_cpu,
            target_inflight,
            target_rps,
            idle,
            max_pending,
            wake_timeout,
            behavior,
        })
    }

    /// Checks `autoscale` against the rest of the service: the replicas it
    /// starts with, a fixed host port, the port the gateway counts requests on.
    pub(crate) fn autoscale_fits(
        &mut self,
        name: &str,
        a: &Autoscale,
        n: &Node,
        service: &Fields<'_>,
        replicas: &mut Option<u32>,
    ) {
        let what = format!("{name}.autoscale");
        match (service.get("replicas"), *replicas) {
            // Without `replicas`, the service starts at the nearest bound to 1.
            (None, _) => *replicas = Some(a.min.max(1).min(a.max)),
            // 0 keeps the service stopped; the autoscaler leaves it so.
            (Some(_), Some(0)) => {}
            (Some(v), Some(r)) if r < a.min || r > a.max => self.err(
                v,
                format!(
                    "`{name}.replicas` ({r}) is outside `{what}` ({} to {})",
                    a.min, a.max
                ),
                Some("remove `replicas`: the service starts at `min`".into()),
            ),
            _ => {}
        }
        if a.max > 1 {
            if let Some(p) = service.get("publish") {
                self.err(
                    p,
                    format!(
                        "`{name}.publish` needs exactly one replica, and `{what}.max` is {}",
                        a.max
                    ),
                    Some("remove `publish` and reach the replicas through the gateway".into()),
                );
            }
        }
        if (a.target_inflight.is_some() || a.target_rps.is_some()) && service.get("port").is_none()
        {
            self.err(
                n,
                format!("`{what}`: requests are counted by the gateway, which needs `{name}.port`"),
                Some("add `port: <the port the process listens on>`".into()),
            );
        }
    }

    /// `70%` or `70`.
    fn percent(&mut self, n: &Node, what: &str) -> Option<u32> {
        let text = n.scalar().unwrap_or_default();
        let value = match n.as_i64() {
            Some(i) => Some(i),
            None => text
                .strip_suffix('%')
                .and_then(|t| t.trim().parse::<i64>().ok()),
        };
        match value {
            Some(p) if p > 0 && p <= 100_000 => Some(p as u32),
            Some(p) => {
                self.err(
                    n,
                    format!("`{what}` must be more than 0%, found {p}%"),
                    None,
                );
                None
            }
            None => {
                self.err(
                    n,
                    format!(
                        "`{what}` must be a percentage like `70%`, found {}",
                        n.describe()
                    ),
                    None,
                );
                None
            }
        }
    }

    fn positive(&mut self, n: &Node, what: &str) -> Option<f64> {
        match n.as_f64() {
            Some(v) if v.is_finite() && v > 0.0 => Some(v),
            _ => {
                self.err(
                    n,
                    format!(
                        "`{what}` must be a number more than 0, found {}",
                        n.describe()
                    ),
                    None,
                );
                None
            }
        }
    }

    fn behavior(&mut self, what: &str, n: &Node) -> Option<ScaleBehavior> {
        let what = format!("{what}.behavior");
        let f = self.fields(n, &format!("`{what}`"), BEHAVIOR_KEYS)?;
        let mut b = ScaleBehavior::default();
        if let Some(v) = f.get("scale_up") {
            if let Some(r) = self.rules(&format!("{what}.scale_up"), v, ScaleRules::default_up()) {
                b.scale_up = r;
            }
        }
        if let Some(v) = f.get("scale_down") {
            if let Some(r) =
                self.rules(&format!("{what}.scale_down"), v, ScaleRules::default_down())
            {
                b.scale_down = r;
            }
        }
        Some(b)
    }

    fn rules(&mut self, what: &str, n: &Node, mut r: ScaleRules) -> Option<ScaleRules> {
        let f = self.fields(n, &format!("`{what}`"), RULES_KEYS)?;
        if let Some(v) = f.get("stabilization") {
            if let Some(d) =
                self.whole_seconds(v, &format!("{what}.stabilization"), 0, MAX_STABILIZATION)
            {
                r.stabilization = d;
            }
        }
        if let Some(v) = f.get("select") {
            r.select = match v.scalar() {
                Some("max") => SelectPolicy::Max,
                Some("min") => SelectPolicy::Min,
                Some("disabled") => SelectPolicy::Disabled,
                _ => {
                    let hint = v
                        .scalar()
                        .and_then(|s| suggest(s, &["max", "min", "disabled"]))
                        .map(|s| format!("did you mean `{s}`?"));
                    self.err(
                        v,
                        format!(
                            "`{what}.select` must be max, min or disabled; found {}",
                            v.describe()
                        ),
                        hint,
                    );
                    r.select
                }
            };
        }
        if let Some(v) = f.get("policies") {
            let Some(items) = v.as_seq() else {
                self.err(
                    v,
                    format!("`{what}.policies` must be a list like `[{{ pods: 4, period: 15s }}]`, found {}", v.describe()),
                    None,
                );
                return Some(r);
            };
            if items.is_empty() {
                self.err(
                    v,
                    format!("`{what}.policies` is empty"),
                    Some("remove it for the default policies, or set `select: disabled` to turn this direction off".into()),
                );
                return Some(r);
            }
            r.policies = items
                .iter()
                .filter_map(|i| self.policy(&format!("{what}.policies"), i))
                .collect();
        }
        Some(r)
    }

    fn policy(&mut self, what: &str, n: &Node) -> Option<ScalePolicy> {
        let f = self.fields(n, &format!("`{what}` entry"), POLICY_KEYS)?;
        let (kind, v) = match (f.get("pods"), f.get("percent")) {
            (Some(v), None) => (PolicyKind::Pods, v),
            (None, Some(v)) => (PolicyKind::Percent, v),
            (Some(_), Some(v)) => {
                self.err(
                    v,
                    format!("a `{what}` entry has `pods` or `percent`, not both"),
                    Some("write two entries".into()),
                );
                return None;
            }
            (None, None) => {
                self.err(
                    n,
                    format!("a `{what}` entry needs `pods` or `percent`"),
                    Some(
                        "write `{ pods: 4, period: 15s }` or `{ percent: 100, period: 15s }`"
                            .into(),
                    ),
                );
                return None;
            }
        };
        let value = self.count(v, what)?;
        if value == 0 {
            self.err(
                v,
                format!("`{what}`: the change a policy allows must be more than 0"),
                Some("set `select: disabled` to turn this direction off".into()),
            );
            return None;
        }
        let Some(p) = f.get("period") else {
            self.err(
                n,
                format!("a `{what}` entry needs `period`"),
                Some("add `period: 15s`".into()),
            );
            return None;
        };
        let period = self.whole_seconds(p, &format!("{what}.period"), 1, MAX_PERIOD)?;
        Some(ScalePolicy {
            kind,
            value,
            period,
        })
    }

    /// A duration in whole seconds within `lo..=hi` seconds (as the HPA counts them).
    fn whole_seconds(&mut self, n: &Node, what: &str, lo: u64, hi: u64) -> Option<Duration> {
        let d = self.duration(n, what)?;
        let std = d.std();
        if std.subsec_nanos() != 0 {
            self.err(
                n,
                format!("`{what}` must be whole seconds, found {d}"),
                None,
            );
            return None;
        }
        if std.as_secs() < lo || std.as_secs() > hi {
            self.err(
                n,
                format!("`{what}` must be from {lo}s to {hi}s, found {d}"),
                None,
            );
            return None;
        }
        Some(d)
    }
}
