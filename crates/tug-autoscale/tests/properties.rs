//! Invariants of the policy over arbitrary metrics, histories and behaviors.

mod common;
use common::*;
use proptest::prelude::*;
use std::time::Instant;
use tug_autoscale::{Autoscaler, MetricKind, Observation, Sample};
use tug_spec::{PolicyKind, SelectPolicy};

fn sample() -> impl Strategy<Value = Sample> {
    (
        proptest::option::weighted(0.9, 0.0..1000.0f64),
        proptest::bool::weighted(0.9),
    )
        .prop_map(|(value, ready)| Sample { value, ready })
}

fn observation(n: usize) -> impl Strategy<Value = Observation> {
    (
        prop_oneof![
            Just(MetricKind::Cpu),
            Just(MetricKind::Inflight),
            Just(MetricKind::Rps)
        ],
        1.0..200.0f64,
        proptest::collection::vec(sample(), n..=n),
    )
        .prop_map(|(metric, target, samples)| Observation {
            metric,
            target,
            samples,
        })
}

fn policies() -> impl Strategy<Value = Vec<tug_spec::ScalePolicy>> {
    proptest::collection::vec(
        (
            prop_oneof![Just(PolicyKind::Pods), Just(PolicyKind::Percent)],
            1u32..300,
            1u64..120,
        )
            .prop_map(|(k, v, p)| policy(k, v, p)),
        1..3,
    )
}

fn select() -> impl Strategy<Value = SelectPolicy> {
    prop_oneof![
        Just(SelectPolicy::Max),
        Just(SelectPolicy::Min),
        Just(SelectPolicy::Disabled)
    ]
}

fn scaler_strategy() -> impl Strategy<Value = Autoscaler> {
    (
        1u32..20,
        0u32..30,
        0u64..120,
        select(),
        policies(),
        0u64..400,
        select(),
        policies(),
    )
        .prop_map(|(min, extra, up_w, up_s, up_p, down_w, down_s, down_p)| {
            let mut s = spec(min, min + extra);
            s.behavior.scale_up = rules(up_w, up_s, up_p);
            s.behavior.scale_down = rules(down_w, down_s, down_p);
            Autoscaler::new(s)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Whatever the metrics and the history, the count ends within [min, max]
    /// (or stays at 0).
    #[test]
    fn never_outside_min_max(
        mut a in scaler_strategy(),
        start in 0u32..60,
        ticks in proptest::collection::vec((1u64..40, 0usize..3, any::<u64>()), 1..30),
    ) {
        let t0 = Instant::now();
        let (min, max) = (a.spec().min, a.spec().max);
        let mut current = start;
        let mut t = 0;
        for (dt, metrics, seed) in ticks {
            t += dt;
            let n = current as usize;
            let obs: Vec<Observation> = (0..metrics)
                .map(|i| {
                    let v = ((seed >> (i * 8)) % 400) as f64;
                    Observation::of(MetricKind::Cpu, 50.0, &vec![v; n])
                })
                .collect();
            let d = a.decide(at(t0, t), current, &obs, None);
            if current == 0 {
                prop_assert_eq!(d.desired, 0);
            } else {
                prop_assert!(d.desired >= min && d.desired <= max, "{:?} outside [{min}, {max}]", d);
            }
            a.scaled(at(t0, t), current, d.desired);
            current = d.desired;
        }
    }

    /// One decision on arbitrary samples (missing, not ready) stays in bounds.
    #[test]
    fn arbitrary_samples_stay_in_bounds(
        mut a in scaler_strategy(),
        current in 1u32..60,
        obs in proptest::collection::vec(observation(8), 0..3),
    ) {
        let d = a.decide(Instant::now(), current, &obs, None);
        prop_assert!(d.desired >= a.spec().min && d.desired <= a.spec().max, "{:?}", d);
        prop_assert_eq!(d.metrics.len(), obs.len());
    }

    /// Missing metrics never scale a service down.
    #[test]
    fn missing_metrics_never_scale_down(
        current in 1u32..30,
        value in 0.0..1000.0f64,
    ) {
        let mut a = scaler(1, 40);
        let gone = Observation { metric: MetricKind::Rps, target: 5.0, samples: vec![missing(); current as usize] };
        let d = a.decide(Instant::now(), current, &[cpu(50.0, current, value), gone], None);
        prop_assert!(d.desired >= current, "{:?}", d);
    }

    /// With the default behavior and no history, a rise is at most the
    /// larger of double or +4, and a fall happens at once.
    #[test]
    fn default_scale_up_limit(current in 1u32..100, value in 0.0..5000.0f64) {
        let mut a = scaler(1, 256);
        let d = a.decide(Instant::now(), current, &[cpu(50.0, current, value)], None);
        prop_assert!(d.desired <= (current * 2).max(current + 4), "{:?}", d);
        let exact = (current as f64 * value / 50.0).ceil() as u32;
        if d.desired < current {
            prop_assert_eq!(d.desired, exact.max(1));
        }
    }

    /// More load never asks for fewer replicas (same history).
    #[test]
    fn monotonic_in_the_metric(current in 1u32..50, lo in 0.0..500.0f64, extra in 0.0..500.0f64) {
        let t0 = Instant::now();
        let low = scaler(1, 256).decide(t0, current, &[cpu(50.0, current, lo)], None);
        let high = scaler(1, 256).decide(t0, current, &[cpu(50.0, current, lo + extra)], None);
        prop_assert!(high.desired >= low.desired, "{:?} vs {:?}", low, high);
    }

    /// Within the tolerance nothing moves.
    #[test]
    fn within_tolerance_holds(current in 1u32..50, ratio in 0.9..=1.1f64) {
        let mut a = scaler(1, 256);
        let d = a.decide(Instant::now(), current, &[cpu(50.0, current, 50.0 * ratio)], None);
        prop_assert_eq!(d.desired, current);
    }

    /// A stable metric reaches its exact answer in finitely many ticks and stays.
    #[test]
    fn converges(start in 1u32..40, value in 1.0..400.0f64) {
        let t0 = Instant::now();
        let mut a = scaler(1, 256);
        let mut current = start;
        // The per-replica value follows the load spread over the replicas.
        let load = value * start as f64;
        for tick in 0..100u64 {
            let now = at(t0, tick * 15);
            let d = a.decide(now, current, &[cpu(50.0, current, load / current as f64)], None);
            a.scaled(now, current, d.desired);
            current = d.desired;
        }
        let per = load / current as f64;
        prop_assert!(per / 50.0 <= 1.1 + 1e-9 || current == 256, "{current} replicas at {per}");
        prop_assert!(per / 50.0 >= 0.9 - 1e-9 || current == 1 || (load / (current - 1) as f64) / 50.0 > 1.0, "{current} replicas at {per}");
    }
}
