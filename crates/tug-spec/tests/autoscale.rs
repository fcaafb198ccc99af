//! `autoscale:`: defaults, every form, and each mistake at its line:col.

mod common;

use common::{one, FILE};
use std::path::Path;
use tug_spec::{parse_str, PolicyKind, ScaleBehavior, ScalePolicy, SelectPolicy};

fn svc(body: &str) -> String {
    format!("name: shop\nservices:\n  web:\n    image: nginx:1\n    port: 80\n{body}")
}

fn secs(s: u64) -> tug_spec::Duration {
    tug_spec::Duration::from_secs(s)
}

#[test]
fn defaults_are_the_hpa_defaults() {
    let s = parse_str(&svc("    autoscale: { max: 5 }\n"), Path::new(FILE)).unwrap();
    let web = &s.services["web"];
    let a = web.autoscale.as_ref().unwrap();
    assert_eq!((a.min, a.max, web.replicas), (1, 5, 1));
    assert_eq!(a.target_cpu, None);
    assert_eq!(a.behavior, ScaleBehavior::default());
    let up = &a.behavior.scale_up;
    assert_eq!(up.stabilization, secs(0));
    assert_eq!(up.select, SelectPolicy::Max);
    assert_eq!(
        up.policies,
        vec![
            ScalePolicy {
                kind: PolicyKind::Pods,
                value: 4,
                period: secs(15)
            },
            ScalePolicy {
                kind: PolicyKind::Percent,
                value: 100,
                period: secs(15)
            },
        ]
    );
    let down = &a.behavior.scale_down;
    assert_eq!(down.stabilization, secs(300));
    assert_eq!(
        down.policies,
        vec![ScalePolicy {
            kind: PolicyKind::Percent,
            value: 100,
            period: secs(15)
        }]
    );
}

#[test]
fn the_fixture_reads_as_written() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let s = tug_spec::load(&root.join("tests/fixtures/valid/autoscale.yaml")).unwrap();
    let api = &s.services["api"];
    let a = api.autoscale.as_ref().unwrap();
    assert_eq!(
        (a.min, a.max, api.replicas),
        (2, 10, 2),
        "replicas start at min"
    );
    assert_eq!(a.target_cpu, Some(70));
    assert_eq!(a.target_inflight, Some(50.0));
    assert_eq!(a.target_rps, Some(200.5));
    assert_eq!(a.behavior.scale_up.stabilization, secs(30));
    assert_eq!(a.behavior.scale_up.select, SelectPolicy::Min);
    assert_eq!(a.behavior.scale_up.policies[1].period, secs(60));
    assert_eq!(a.behavior.scale_down.policies.len(), 1);
    let w = s.services["worker"].autoscale.as_ref().unwrap();
    assert_eq!(
        (w.min, w.idle, w.target_cpu),
        (0, Some(secs(300)), Some(50))
    );
    assert_eq!(s.services["worker"].replicas, 1);
    let b = &s.services["batch"];
    assert_eq!(b.replicas, 3);
    let bs = &b.autoscale.as_ref().unwrap().behavior.scale_down;
    assert_eq!(bs.select, SelectPolicy::Disabled);
    assert_eq!(
        bs.stabilization,
        secs(300),
        "the rest of scale_down keeps its defaults"
    );
}

#[test]
fn survives_a_json_round_trip() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let s = tug_spec::load(&root.join("tests/fixtures/valid/autoscale.yaml")).unwrap();
    let json = serde_json::to_string(&s).unwrap();
    let back: tug_spec::Stack = serde_json::from_str(&json).unwrap();
    assert_eq!(back.services, s.services);
}

#[test]
fn bounds() {
    let (l, c, m, h) = one(&svc("    autoscale: { min: 4, max: 2 }\n"));
    assert_eq!((l, c), (6, 23));
    assert_eq!(
        m,
        "`web.autoscale.min` (4) is more than `web.autoscale.max` (2)"
    );
    assert_eq!(h.as_deref(), Some("set `min` to at most 2, or raise `max`"));

    let (l, c, m, h) = one(&svc("    autoscale: { min: 2 }\n"));
    assert_eq!((l, c), (6, 16));
    assert_eq!(
        m,
        "`web.autoscale` needs `max`, the most replicas it may run"
    );
    assert_eq!(h.as_deref(), Some("add `max: 8`"));

    let (_, _, m, _) = one(&svc("    autoscale: { max: 0 }\n"));
    assert_eq!(m, "`web.autoscale.max` must be from 1 to 256, found 0");
    let (_, _, m, _) = one(&svc("    autoscale: { max: 257 }\n"));
    assert_eq!(m, "`web.autoscale.max` must be from 1 to 256, found 257");
    let (_, _, m, _) = one(&svc("    autoscale: { min: -1, max: 2 }\n"));
    assert_eq!(m, "`web.autoscale.min` cannot be negative, found -1");
}

#[test]
fn min_zero_needs_idle_and_idle_needs_min_zero() {
    let (l, c, m, h) = one(&svc("    autoscale: { min: 0, max: 2 }\n"));
    assert_eq!((l, c), (6, 23));
    assert_eq!(
        m,
        "`web.autoscale.min: 0` needs `idle`, how long without requests before the service stops"
    );
    assert_eq!(h.as_deref(), Some("add `idle: 5m`, or set `min: 1`"));

    let (l, c, m, _) = one(&svc("    autoscale: { max: 2, idle: 5m }\n"));
    assert_eq!((l, c), (6, 32));
    assert_eq!(
        m,
        "`web.autoscale.idle` applies only with `min: 0`, found min: 1"
    );

    let (_, _, m, _) = one(&svc("    autoscale: { min: 0, max: 2, idle: 0s }\n"));
    assert_eq!(m, "`web.autoscale.idle` must be more than 0");
}

#[test]
fn the_activator_queue_and_timeout() {
    let s = parse_str(
        &svc("    autoscale: { min: 0, max: 2, idle: 5m }\n"),
        Path::new(FILE),
    )
    .unwrap();
    let a = s.services["web"].autoscale.clone().unwrap();
    assert_eq!(
        (a.max_pending, a.wake_timeout),
        (
            tug_spec::DEFAULT_MAX_PENDING,
            tug_spec::DEFAULT_WAKE_TIMEOUT
        )
    );
    let s = parse_str(
        &svc("    autoscale: { min: 0, max: 2, idle: 5m, max_pending: 3, wake_timeout: 2s }\n"),
        Path::new(FILE),
    )
    .unwrap();
    let a = s.services["web"].autoscale.clone().unwrap();
    assert_eq!((a.max_pending, a.wake_timeout), (3, secs(2)));

    let (l, c, m, h) = one(&svc("    autoscale: { max: 2, max_pending: 3 }\n"));
    assert_eq!((l, c), (6, 39));
    assert_eq!(
        m,
        "`web.autoscale.max_pending` applies only with `min: 0`, found min: 1"
    );
    assert_eq!(
        h.as_deref(),
        Some("set `min: 0` to scale to zero, or remove `max_pending`")
    );
    let (_, _, m, _) = one(&svc(
        "    autoscale: { min: 0, max: 2, idle: 5m, max_pending: 0 }\n",
    ));
    assert_eq!(m, "`web.autoscale.max_pending` must be at least 1");
    let (_, _, m, _) = one(&svc(
        "    autoscale: { min: 0, max: 2, idle: 5m, wake_timeout: 0s }\n",
    ));
    assert_eq!(m, "`web.autoscale.wake_timeout` must be more than 0");
}

#[test]
fn replicas_must_lie_within_the_bounds() {
    let (l, c, m, h) = one(&svc("    replicas: 9\n    autoscale: { max: 4 }\n"));
    assert_eq!((l, c), (6, 15));
    assert_eq!(m, "`web.replicas` (9) is outside `web.autoscale` (1 to 4)");
    assert_eq!(
        h.as_deref(),
        Some("remove `replicas`: the service starts at `min`")
    );
    // 0 keeps the service stopped.
    let s = parse_str(
        &svc("    replicas: 0\n    autoscale: { min: 2, max: 4 }\n"),
        Path::new(FILE),
    )
    .unwrap();
    assert_eq!(s.services["web"].replicas, 0);
}

#[test]
fn targets() {
    let (l, c, m, _) = one(&svc("    autoscale: { max: 4, target_cpu: lots }\n"));
    assert_eq!((l, c), (6, 38));
    assert_eq!(
        m,
        "`web.autoscale.target_cpu` must be a percentage like `70%`, found `lots`"
    );
    let (_, _, m, _) = one(&svc("    autoscale: { max: 4, target_cpu: 0% }\n"));
    assert_eq!(
        m,
        "`web.autoscale.target_cpu` must be more than 0%, found 0%"
    );
    let (_, _, m, _) = one(&svc("    autoscale: { max: 4, target_rps: -3 }\n"));
    assert_eq!(
        m,
        "`web.autoscale.target_rps` must be a number more than 0, found `-3`"
    );
    let (_, _, m, _) = one(&svc("    autoscale: { max: 4, target_inflight: many }\n"));
    assert_eq!(
        m,
        "`web.autoscale.target_inflight` must be a number more than 0, found `many`"
    );
    // Requests are counted on the service's port.
    let text = "name: shop\nservices:\n  web:\n    image: nginx:1\n    autoscale: { max: 4, target_rps: 10 }\n";
    let (l, c, m, _) = one(text);
    assert_eq!((l, c), (5, 16));
    assert_eq!(
        m,
        "`web.autoscale`: requests are counted by the gateway, which needs `web.port`"
    );
}

#[test]
fn behavior_limits_are_the_hpa_limits() {
    let b = |rules: &str| {
        svc(&format!(
            "    autoscale:\n      max: 4\n      behavior:\n        scale_down: {rules}\n"
        ))
    };
    let (l, c, m, _) = one(&b("{ stabilization: 2h }"));
    assert_eq!((l, c), (9, 38));
    assert_eq!(
        m,
        "`web.autoscale.behavior.scale_down.stabilization` must be from 0s to 3600s, found 2h"
    );
    let (_, _, m, _) = one(&b("{ stabilization: 1500ms }"));
    assert_eq!(
        m,
        "`web.autoscale.behavior.scale_down.stabilization` must be whole seconds, found 1500ms"
    );
    let (_, _, m, h) = one(&b("{ select: disable }"));
    assert_eq!(
        m,
        "`web.autoscale.behavior.scale_down.select` must be max, min or disabled; found `disable`"
    );
    assert_eq!(h.as_deref(), Some("did you mean `disabled`?"));
    let (_, _, m, _) = one(&b("{ policies: [] }"));
    assert_eq!(m, "`web.autoscale.behavior.scale_down.policies` is empty");
    let (_, _, m, _) = one(&b("{ policies: [{ period: 15s }] }"));
    assert_eq!(
        m,
        "a `web.autoscale.behavior.scale_down.policies` entry needs `pods` or `percent`"
    );
    let (_, _, m, _) = one(&b("{ policies: [{ pods: 1, percent: 5, period: 15s }] }"));
    assert_eq!(
        m,
        "a `web.autoscale.behavior.scale_down.policies` entry has `pods` or `percent`, not both"
    );
    let (_, _, m, _) = one(&b("{ policies: [{ pods: 0, period: 15s }] }"));
    assert_eq!(
        m,
        "`web.autoscale.behavior.scale_down.policies`: the change a policy allows must be more than 0"
    );
    let (_, _, m, h) = one(&b("{ policies: [{ pods: 2 }] }"));
    assert_eq!(
        m,
        "a `web.autoscale.behavior.scale_down.policies` entry needs `period`"
    );
    assert_eq!(h.as_deref(), Some("add `period: 15s`"));
    let (_, _, m, _) = one(&b("{ policies: [{ pods: 2, period: 31m }] }"));
    assert_eq!(
        m,
        "`web.autoscale.behavior.scale_down.policies.period` must be from 1s to 1800s, found 31m"
    );
    let (_, _, m, h) = one(&b("{ stabilisation: 1m }"));
    assert_eq!(
        m,
        "unknown key `stabilisation` in `web.autoscale.behavior.scale_down`"
    );
    assert_eq!(h.as_deref(), Some("did you mean `stabilization`?"));
}

#[test]
fn publish_needs_max_one() {
    let (l, c, m, _) = one(&svc("    publish: 8080\n    autoscale: { max: 3 }\n"));
    assert_eq!((l, c), (6, 14));
    assert_eq!(
        m,
        "`web.publish` needs exactly one replica, and `web.autoscale.max` is 3"
    );
}

#[test]
fn the_schema_agrees() {
    let v = jsonschema::validator_for(&tug_spec::schema()).unwrap();
    let json = |y: &str| -> serde_json::Value { serde_yaml_ng::from_str(y).unwrap() };
    for bad in [
        "    autoscale: { min: 2 }\n",
        "    autoscale: { max: 300 }\n",
        "    autoscale: { max: 3, target_cpu: lots }\n",
        "    autoscale: { max: 3, behavior: { scale_up: { select: most } } }\n",
        "    autoscale: { max: 3, behavior: { scale_up: { policies: [] } } }\n",
        "    autoscale: { max: 3, behavior: { scale_up: { policies: [{ pods: 2 }] } } }\n",
        "    autoscale: { max: 3, target: 5 }\n",
    ] {
        let doc = svc(bad);
        assert!(
            parse_str(&doc, Path::new(FILE)).is_err(),
            "parser accepted {bad}"
        );
        assert!(!v.is_valid(&json(&doc)), "schema accepted {bad}");
    }
}
