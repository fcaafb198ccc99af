#![allow(dead_code)]
use std::time::{Duration, Instant};
use tug_autoscale::{Autoscaler, MetricKind, Observation, Sample};
use tug_spec::{Autoscale, PolicyKind, ScaleBehavior, ScalePolicy, ScaleRules, SelectPolicy};

pub fn spec(min: u32, max: u32) -> Autoscale {
    Autoscale {
        min,
        max,
        target_cpu: Some(50),
        target_inflight: None,
        target_rps: None,
        idle: None,
        max_pending: tug_spec::DEFAULT_MAX_PENDING,
        wake_timeout: tug_spec::DEFAULT_WAKE_TIMEOUT,
        behavior: ScaleBehavior::default(),
    }
}

pub fn scaler(min: u32, max: u32) -> Autoscaler {
    Autoscaler::new(spec(min, max))
}

pub fn policy(kind: PolicyKind, value: u32, period: u64) -> ScalePolicy {
    ScalePolicy {
        kind,
        value,
        period: tug_spec::Duration::from_secs(period),
    }
}

pub fn rules(stabilization: u64, select: SelectPolicy, policies: Vec<ScalePolicy>) -> ScaleRules {
    ScaleRules {
        stabilization: tug_spec::Duration::from_secs(stabilization),
        select,
        policies,
    }
}

/// `n` ready replicas, each at `value`.
pub fn cpu(target: f64, n: u32, value: f64) -> Observation {
    Observation::of(MetricKind::Cpu, target, &vec![value; n as usize])
}

pub fn ready(v: f64) -> Sample {
    Sample {
        value: Some(v),
        ready: true,
    }
}
pub fn missing() -> Sample {
    Sample {
        value: None,
        ready: true,
    }
}
pub fn unready(v: f64) -> Sample {
    Sample {
        value: Some(v),
        ready: false,
    }
}

pub fn at(t0: Instant, secs: u64) -> Instant {
    t0 + Duration::from_secs(secs)
}
