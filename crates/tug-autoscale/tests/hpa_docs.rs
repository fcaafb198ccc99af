//! The examples of the Kubernetes documentation on horizontal pod
//! autoscaling (kubernetes.io, tasks/run-application/horizontal-pod-autoscale),
//! replayed against the policy.

mod common;
use common::*;
use std::time::Instant;
use tug_autoscale::{propose, MetricKind, Observation, Reason, TOLERANCE};
use tug_spec::{PolicyKind, SelectPolicy};

#[test]
fn the_ratio_doubles_and_halves() {
    // "if the current metric value is 200m, and the desired value is 100m,
    // the number of replicas will be doubled"; at 50m, halved.
    let t0 = Instant::now();
    let mut a = scaler(1, 20);
    let d = a.decide(t0, 3, &[cpu(100.0, 3, 200.0)], None);
    assert_eq!((d.desired, d.reason), (6, Reason::WithinRange));
    let mut a = scaler(1, 20);
    let d = a.decide(t0, 4, &[cpu(100.0, 4, 50.0)], None);
    assert_eq!((d.desired, d.reason), (2, Reason::WithinRange));
}

#[test]
fn the_formula_rounds_up() {
    // desiredReplicas = ceil[currentReplicas * (currentMetricValue / desiredMetricValue)]
    let t0 = Instant::now();
    let mut a = scaler(1, 20);
    assert_eq!(a.decide(t0, 3, &[cpu(50.0, 3, 70.0)], None).desired, 5); // 4.2
}

#[test]
fn tolerance_edge() {
    // Within 10 % of the target nothing moves; just past it, it does.
    assert_eq!(TOLERANCE, 0.1);
    let t0 = Instant::now();
    for (value, want, reason) in [
        (110.0, 10, Reason::WithinTolerance),
        (90.0, 10, Reason::WithinTolerance),
        (105.0, 10, Reason::WithinTolerance),
        (111.0, 12, Reason::WithinRange), // ceil(11.1)
        (89.0, 9, Reason::WithinRange),   // ceil(8.9)
    ] {
        let mut a = scaler(1, 20);
        let d = a.decide(t0, 10, &[cpu(100.0, 10, value)], None);
        assert_eq!((d.desired, d.reason), (want, reason), "at {value}");
    }
}

#[test]
fn several_metrics_take_the_largest_proposal() {
    // "the HorizontalPodAutoscaler ... chooses the metric which would result
    // in the largest scale"
    let t0 = Instant::now();
    let mut a = scaler(1, 20);
    let cpu = cpu(50.0, 4, 50.0); // on target: 4
    let rps = Observation::of(MetricKind::Rps, 100.0, &[150.0; 4]); // 6
    let inflight = Observation::of(MetricKind::Inflight, 10.0, &[5.0; 4]); // 2
    let d = a.decide(t0, 4, &[cpu, rps, inflight], None);
    assert_eq!(d.desired, 6);
    let proposals: Vec<_> = d.metrics.iter().map(|m| m.proposal).collect();
    assert_eq!(proposals, vec![Some(4), Some(6), Some(2)]);
    assert_eq!(d.metrics[1].value, Some(150.0));
}

#[test]
fn missing_metrics_count_against_the_direction() {
    // "if a pod is missing metrics ... scaling down: assume the pod was
    // consuming 100% of the desired value; scaling up: 0%".
    let o = |samples| Observation {
        metric: MetricKind::Cpu,
        target: 50.0,
        samples,
    };
    // Up: two at twice the target and one missing: (100+100+0)/(3×50) = 1.33 → 4, not 6.
    assert_eq!(
        propose(
            &o(vec![ready(100.0), ready(100.0), missing()]),
            3,
            TOLERANCE
        ),
        Some(4)
    );
    // Down: two at 10 % and one missing (100 %): 120/150 = 0.8 → ceil(2.4) = 3: stays.
    assert_eq!(
        propose(&o(vec![ready(10.0), ready(10.0), missing()]), 3, TOLERANCE),
        Some(3)
    );
    // Down, a missing one filled in at 100 % lands within tolerance: stays.
    assert_eq!(
        propose(
            &o(vec![ready(40.0), ready(40.0), missing(), missing()]),
            4,
            TOLERANCE
        ),
        Some(4)
    );
    // No replica reported: no proposal at all.
    assert_eq!(propose(&o(vec![missing(), missing()]), 2, TOLERANCE), None);
}

#[test]
fn unready_replicas_count_as_zero_on_the_way_up() {
    // "any not-yet-ready pods ... assumed to use 0% of the desired metric"
    // when scaling up; set aside when scaling down.
    let o = |samples| Observation {
        metric: MetricKind::Cpu,
        target: 50.0,
        samples,
    };
    assert_eq!(
        propose(
            &o(vec![
                ready(100.0),
                ready(100.0),
                unready(90.0),
                unready(90.0)
            ]),
            4,
            TOLERANCE
        ),
        Some(4)
    );
    assert_eq!(
        propose(
            &o(vec![ready(150.0), ready(150.0), unready(0.0)]),
            3,
            TOLERANCE
        ),
        Some(6)
    );
    // Down: the starting one is ignored: ceil(2 × 0.2) = 1.
    assert_eq!(
        propose(
            &o(vec![ready(10.0), ready(10.0), unready(500.0)]),
            3,
            TOLERANCE
        ),
        Some(1)
    );
}

#[test]
fn a_missing_metric_never_lets_the_others_scale_down() {
    // "If any of these metrics cannot be converted into a desired replica
    // count ... and the others suggest a scale down, scaling is skipped";
    // a scale up still happens.
    let t0 = Instant::now();
    let gone = Observation {
        metric: MetricKind::Rps,
        target: 10.0,
        samples: vec![missing(); 4],
    };
    let mut a = scaler(1, 20);
    let d = a.decide(t0, 4, &[cpu(50.0, 4, 10.0), gone.clone()], None);
    assert_eq!((d.desired, d.reason), (4, Reason::MissingMetrics));
    assert_eq!(d.metrics[1].value, None);
    let d = a.decide(t0, 4, &[cpu(50.0, 4, 100.0), gone.clone()], None);
    assert_eq!(d.desired, 8);
    let d = a.decide(t0, 4, &[gone], None);
    assert_eq!((d.desired, d.reason), (4, Reason::MissingMetrics));
}

#[test]
fn scale_down_stabilization_uses_the_highest_recommendation_of_the_window() {
    // Default scale-down window: 300 s. A drop is held until the higher
    // recommendations have left the window.
    let t0 = Instant::now();
    let mut a = scaler(1, 20);
    assert_eq!(a.decide(t0, 10, &[cpu(50.0, 10, 50.0)], None).desired, 10);
    let mut last = None;
    for s in (15..300).step_by(15) {
        let d = a.decide(at(t0, s), 10, &[cpu(50.0, 10, 20.0)], None);
        assert_eq!(
            (d.desired, d.reason),
            (10, Reason::ScaleDownStabilized),
            "at {s}s"
        );
        last = Some(d);
    }
    assert_eq!(last.unwrap().metrics[0].proposal, Some(4));
    let d = a.decide(at(t0, 300), 10, &[cpu(50.0, 10, 20.0)], None);
    assert_eq!((d.desired, d.reason), (4, Reason::WithinRange));
}

#[test]
fn flapping_metrics_do_not_flap_replicas() {
    // The documentation's motivation for the window: a metric that swings
    // keeps the count at the high-water mark of the last five minutes.
    let t0 = Instant::now();
    let mut a = scaler(1, 20);
    let mut current = 4;
    for (i, s) in (0..600).step_by(15).enumerate() {
        let value = if i % 2 == 0 { 100.0 } else { 10.0 };
        let d = a.decide(at(t0, s), current, &[cpu(50.0, current, value)], None);
        assert!(d.desired >= current, "scaled down at {s}s: {d:?}");
        if d.desired != current {
            a.scaled(at(t0, s), current, d.desired);
            current = d.desired;
        }
    }
    assert_eq!(current, 20, "rises to max and stays");
}

#[test]
fn scale_up_stabilization_uses_the_lowest_recommendation_of_the_window() {
    let t0 = Instant::now();
    let mut s = spec(1, 20);
    s.behavior.scale_up = rules(60, SelectPolicy::Max, s.behavior.scale_up.policies.clone());
    let mut a = tug_autoscale::Autoscaler::new(s);
    assert_eq!(a.decide(t0, 4, &[cpu(50.0, 4, 50.0)], None).desired, 4);
    let d = a.decide(at(t0, 30), 4, &[cpu(50.0, 4, 100.0)], None);
    assert_eq!((d.desired, d.reason), (4, Reason::ScaleUpStabilized));
    let d = a.decide(at(t0, 60), 4, &[cpu(50.0, 4, 100.0)], None);
    assert_eq!((d.desired, d.reason), (8, Reason::WithinRange));
}

#[test]
fn default_scale_up_limit_is_the_larger_of_double_or_four_per_15s() {
    // "For scaling up ... allow doubling the number of pods, or an absolute
    // change of 4 pods in a 15s window."
    let t0 = Instant::now();
    let mut a = scaler(1, 100);
    let d = a.decide(t0, 1, &[cpu(10.0, 1, 1000.0)], None);
    assert_eq!((d.desired, d.reason), (5, Reason::ScaleUpLimit)); // 1 + 4 > 2
    let mut a = scaler(1, 100);
    let d = a.decide(t0, 10, &[cpu(10.0, 10, 1000.0)], None);
    assert_eq!((d.desired, d.reason), (20, Reason::ScaleUpLimit)); // 2 × 10 > 14
                                                                   // The change made within the period counts: 10 → 20 at t0, then 5 s later
                                                                   // the period started at 10, so 20 is already the limit.
    a.scaled(t0, 10, 20);
    let d = a.decide(at(t0, 5), 20, &[cpu(10.0, 20, 1000.0)], None);
    assert_eq!((d.desired, d.reason), (20, Reason::ScaleUpLimit));
    let d = a.decide(at(t0, 15), 20, &[cpu(10.0, 20, 1000.0)], None);
    assert_eq!((d.desired, d.reason), (40, Reason::ScaleUpLimit));
    // max caps before the policies do.
    let mut a = scaler(1, 7);
    let d = a.decide(t0, 4, &[cpu(10.0, 4, 1000.0)], None);
    assert_eq!((d.desired, d.reason), (7, Reason::TooManyReplicas));
}

#[test]
fn scale_down_policies_example() {
    // The documentation's example: `Pods 4 per 60s` and `Percent 10 per
    // 60s` with the default (max) selection; from 80 towards 10 the percent
    // policy removes 8, then 10 % of 72 (7.2) rounded to 8, ...; below 40
    // replicas the pods policy removes 4 at a time.
    let t0 = Instant::now();
    // The load asks for 1 replica; min is the 10 the example stops at.
    let mut s = spec(10, 100);
    s.behavior.scale_down = rules(
        300,
        SelectPolicy::Max,
        vec![
            policy(PolicyKind::Pods, 4, 60),
            policy(PolicyKind::Percent, 10, 60),
        ],
    );
    let mut a = tug_autoscale::Autoscaler::new(s);
    let mut current = 80;
    let mut seen = vec![current];
    for step in 0..20u64 {
        let now = at(t0, step * 60);
        let d = a.decide(now, current, &[cpu(50.0, current, 0.5)], None);
        if d.desired == current {
            break;
        }
        a.scaled(now, current, d.desired);
        current = d.desired;
        seen.push(current);
    }
    assert_eq!(
        seen,
        vec![80, 72, 64, 57, 51, 45, 40, 36, 32, 28, 24, 20, 16, 12, 10]
    );
}

#[test]
fn select_min_takes_the_smallest_change() {
    let t0 = Instant::now();
    let mut s = spec(1, 100);
    s.behavior.scale_down = rules(
        0,
        SelectPolicy::Min,
        vec![
            policy(PolicyKind::Pods, 4, 60),
            policy(PolicyKind::Percent, 10, 60),
        ],
    );
    let mut a = tug_autoscale::Autoscaler::new(s);
    let d = a.decide(t0, 80, &[cpu(50.0, 80, 5.0)], None);
    assert_eq!((d.desired, d.reason), (76, Reason::ScaleDownLimit));
}

#[test]
fn disabled_scale_down_never_removes_a_replica() {
    // `selectPolicy: Disabled` for scaleDown.
    let t0 = Instant::now();
    let mut s = spec(1, 10);
    s.behavior.scale_down = rules(
        0,
        SelectPolicy::Disabled,
        vec![policy(PolicyKind::Percent, 100, 15)],
    );
    let mut a = tug_autoscale::Autoscaler::new(s);
    let d = a.decide(t0, 6, &[cpu(50.0, 6, 1.0)], None);
    assert_eq!((d.desired, d.reason), (6, Reason::ScaleDownLimit));
    assert_eq!(a.decide(t0, 6, &[cpu(50.0, 6, 100.0)], None).desired, 10);
}

#[test]
fn percent_900_scales_tenfold() {
    // "scaleUp: policies: - type: Percent value: 900": 1 → 10.
    let t0 = Instant::now();
    let mut s = spec(1, 100);
    s.behavior.scale_up = rules(
        0,
        SelectPolicy::Max,
        vec![policy(PolicyKind::Percent, 900, 60)],
    );
    let mut a = tug_autoscale::Autoscaler::new(s);
    let d = a.decide(t0, 1, &[cpu(1.0, 1, 1000.0)], None);
    assert_eq!((d.desired, d.reason), (10, Reason::ScaleUpLimit));
}

#[test]
fn bounds_come_first() {
    let t0 = Instant::now();
    let mut a = scaler(3, 6);
    let d = a.decide(t0, 1, &[cpu(50.0, 1, 50.0)], None);
    assert_eq!((d.desired, d.reason), (3, Reason::BelowMin));
    let d = a.decide(t0, 9, &[cpu(50.0, 9, 500.0)], None);
    assert_eq!((d.desired, d.reason), (6, Reason::AboveMax));
    let d = a.decide(t0, 4, &[cpu(50.0, 4, 1.0)], None);
    assert_eq!((d.desired, d.reason), (3, Reason::TooFewReplicas));
    // At 0 the autoscaler does nothing: stopped by hand, or woken by the activator.
    let d = a.decide(t0, 0, &[cpu(50.0, 0, 0.0)], None);
    assert_eq!((d.desired, d.reason), (0, Reason::Stopped));
}

#[test]
fn idle_scales_to_zero_with_min_zero_only() {
    let t0 = Instant::now();
    let mut s = spec(0, 4);
    s.idle = Some(tug_spec::Duration::from_secs(300));
    let mut a = tug_autoscale::Autoscaler::new(s.clone());
    let busy = cpu(50.0, 2, 50.0);
    assert_eq!(
        a.decide(at(t0, 299), 2, std::slice::from_ref(&busy), Some(t0))
            .desired,
        2
    );
    let d = a.decide(at(t0, 300), 2, std::slice::from_ref(&busy), Some(t0));
    assert_eq!((d.desired, d.reason), (0, Reason::Idle));
    // At zero it stays there, idle, until the activator wakes it.
    let d = a.decide(at(t0, 301), 0, &[], Some(t0));
    assert_eq!((d.desired, d.reason), (0, Reason::Idle));
    // Not idle (busy, or the gateway does not know): the metrics decide.
    assert_eq!(
        a.decide(at(t0, 900), 2, std::slice::from_ref(&busy), None)
            .desired,
        2
    );
    let mut a = scaler(1, 4);
    assert_eq!(a.decide(at(t0, 900), 2, &[busy], Some(t0)).desired, 2);
}

#[test]
fn with_min_zero_a_quiet_metric_keeps_one_replica_until_idle() {
    let t0 = Instant::now();
    let mut s = spec(0, 4);
    s.idle = Some(tug_spec::Duration::from_secs(300));
    s.behavior.scale_down.stabilization = tug_spec::Duration::from_secs(0);
    let mut a = tug_autoscale::Autoscaler::new(s);
    // No load at all: the metric proposes 0, yet only `idle` may stop it.
    let d = a.decide(at(t0, 1), 1, &[cpu(50.0, 1, 0.0)], Some(t0));
    assert_eq!(d.desired, 1, "{d:?}");
    let d = a.decide(at(t0, 2), 3, &[cpu(50.0, 3, 0.0)], Some(t0));
    assert_eq!(d.desired, 1, "{d:?}");
    let d = a.decide(at(t0, 300), 1, &[cpu(50.0, 1, 0.0)], Some(t0));
    assert_eq!((d.desired, d.reason), (0, Reason::Idle));
}

#[test]
fn the_decision_serializes_with_its_inputs() {
    let mut a = scaler(1, 10);
    let d = a.decide(Instant::now(), 2, &[cpu(50.0, 2, 100.0)], None);
    let v = serde_json::to_value(&d).unwrap();
    assert_eq!(
        v,
        serde_json::json!({
            "current": 2, "desired": 4, "reason": "within_range",
            "metrics": [{ "metric": "cpu", "value": 100.0, "target": 50.0, "proposal": 4 }]
        })
    );
}
