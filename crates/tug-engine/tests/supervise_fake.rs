//! The agent's supervision rules, on the recording FakeRuntime.

use std::time::Duration;
use tug_engine::agent::{SeenHealth, Supervisor};
use tug_engine::{up, Event, UpOptions};
use tug_runtime::fake::FakeRuntime;
use tug_runtime::{labels, stack_filter, ContainerState, EngineHealth, Runtime};

fn stack(yaml: &str) -> tug_spec::Stack {
    tug_spec::parse_str(yaml, "/srv/tug.yaml".as_ref()).unwrap()
}

const APP: &str = "name: s\nservices:\n  api:\n    image: app:1\n    replicas: 2\n    health: { exec: [/bin/check] }\n";

async fn setup(yaml: &str) -> (FakeRuntime, tug_spec::Stack) {
    let rt = FakeRuntime::new();
    rt.add_image("app:1", "");
    let st = stack(yaml);
    up(&rt, &st, &UpOptions::default(), &|_| {}).await.unwrap();
    (rt, st)
}

async fn containers(rt: &FakeRuntime) -> Vec<tug_runtime::ContainerInfo> {
    rt.list_containers(&stack_filter("s")).await.unwrap()
}

#[tokio::test]
async fn adopting_a_healthy_stack_touches_nothing() {
    let (rt, st) = setup(APP).await;
    rt.clear_calls();
    let mut sup = Supervisor::new();
    let r = sup
        .step(&rt, &st, &UpOptions::default(), &|_| {})
        .await
        .unwrap();
    assert_eq!(r, Default::default());
    assert!(rt
        .calls_of(&[
            "create_container",
            "start_container",
            "stop_container",
            "remove_container"
        ])
        .is_empty());
}

#[tokio::test]
async fn exited_replica_restarts_at_once_then_after_backoff() {
    let (rt, st) = setup(APP).await;
    let victim = containers(&rt).await[0].clone();
    rt.kill(&victim.id, 1);
    let mut sup = Supervisor::new();
    let events = std::sync::Mutex::new(Vec::new());
    let sink = |e: Event| events.lock().unwrap().push(e);
    // The first restart is immediate.
    let r = sup
        .step(&rt, &st, &UpOptions::default(), &sink)
        .await
        .unwrap();
    assert_eq!(r.restarted, vec![victim.name.clone()]);
    assert_eq!(
        rt.inspect_container(&victim.id)
            .await
            .unwrap()
            .unwrap()
            .state,
        ContainerState::Running
    );
    assert!(events.lock().unwrap().iter().any(|e| matches!(
        e,
        Event::Restarting {
            attempt: 1,
            exit_code: 1,
            ..
        }
    )));
    // Dying again at once: the second waits 1s.
    rt.kill(&victim.id, 1);
    let r = sup
        .step(&rt, &st, &UpOptions::default(), &sink)
        .await
        .unwrap();
    assert!(r.restarted.is_empty());
    assert_eq!(sup.note(&victim.name).as_deref(), Some("backoff 1s"));
    assert!(sup.next_due().is_some());
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let r = sup
        .step(&rt, &st, &UpOptions::default(), &sink)
        .await
        .unwrap();
    assert_eq!(r.restarted, vec![victim.name.clone()]);
}

#[tokio::test]
async fn a_container_without_a_valid_replica_label_is_left_alone() {
    let (rt, st) = setup(APP).await;
    let c = containers(&rt).await[0].clone();
    let mut spec = rt.spec_of(&c.id).unwrap();
    spec.name = "s-api-stray".into();
    spec.labels
        .insert(labels::REPLICA.into(), "not-a-number".into());
    let stray = rt.create_container(&spec).await.unwrap();
    rt.kill(&stray, 1);
    let mut sup = Supervisor::new();
    let r = sup.tend(&rt, &st, true, &|_| {}).await.unwrap();
    assert!(r.restarted.is_empty(), "{r:?}");
    assert!(
        tug_engine::agent::replica_of(&rt.inspect_container(&stray).await.unwrap().unwrap())
            .unwrap_err()
            .contains("invalid dev.tug.replica label `not-a-number`")
    );
}

#[tokio::test]
async fn restart_no_is_left_alone() {
    let (rt, st) = setup(&APP.replace("replicas: 2", "replicas: 1\n    restart: no")).await;
    let c = containers(&rt).await[0].clone();
    rt.kill(&c.id, 0);
    let mut sup = Supervisor::new();
    for _ in 0..2 {
        let r = sup
            .step(&rt, &st, &UpOptions::default(), &|_| {})
            .await
            .unwrap();
        assert!(r.restarted.is_empty() && !r.converged);
    }
}

#[tokio::test]
async fn unhealthy_replica_is_replaced() {
    // tug runs the exec check itself: one failure is enough here.
    let (rt, st) = setup(&APP.replace("[/bin/check] }", "[/bin/check], retries: 1 }")).await;
    let sick = containers(&rt).await[1].clone();
    // The fake's exec fails for an unhealthy container.
    rt.set_health(&sick.id, EngineHealth::Unhealthy);
    let mut sup = Supervisor::new();
    let r = sup
        .step(&rt, &st, &UpOptions::default(), &|_| {})
        .await
        .unwrap();
    assert_eq!(r.replaced, vec![sick.name.clone()]);
    assert!(r.converged);
    let now = containers(&rt).await;
    assert_eq!(now.len(), 2);
    assert!(now.iter().all(|c| c.id != sick.id));
    let replicas: Vec<&str> = now
        .iter()
        .map(|c| c.label(labels::REPLICA).unwrap())
        .collect();
    assert_eq!(replicas, ["0", "1"]);
}

#[tokio::test]
async fn missing_replica_is_recreated() {
    let (rt, st) = setup(APP).await;
    let gone = containers(&rt).await[0].clone();
    rt.remove_container(&gone.id).await.unwrap();
    let mut sup = Supervisor::new();
    let r = sup
        .step(&rt, &st, &UpOptions::default(), &|_| {})
        .await
        .unwrap();
    assert!(r.converged);
    assert_eq!(containers(&rt).await.len(), 2);
}

#[tokio::test]
async fn replicas_stopped_by_an_interrupted_rollout_are_not_restarted_as_crashes() {
    let v1 = APP.replace(
        "replicas: 2",
        "replicas: 2\n    update: { auto_rollback: false }",
    );
    let (rt, st) = setup(&v1).await;
    // A rollout stopped half-way: a new replica 0 runs, the old one was stopped.
    let v2 = stack(&v1.replace("replicas: 2", "replicas: 2\n    env: { V: '2' }"));
    rt.exit_on_start("s-api-1-", 1);
    let _ = up(&rt, &v2, &UpOptions::default(), &|_| {}).await;
    rt.clear_calls();
    let events = std::sync::Mutex::new(Vec::new());
    let sink = |e: Event| events.lock().unwrap().push(e);
    let r = Supervisor::new().tend(&rt, &st, true, &sink).await.unwrap();
    assert!(r.restarted.is_empty(), "{r:?}");
    assert!(r.needs_converge, "a converge decides what runs");
    assert!(
        !events
            .lock()
            .unwrap()
            .iter()
            .any(|e| matches!(e, Event::Restarting { .. })),
        "{events:?}"
    );
    assert!(rt.calls_of(&["start_container"]).is_empty());
}

#[tokio::test]
async fn a_probe_reports_each_health_change_once_without_the_checks_output() {
    let (rt, st) = setup(&APP.replace("[/bin/check] }", "[/bin/check], retries: 1 }")).await;
    let all = containers(&rt).await;
    let mut sup = Supervisor::new();
    for c in &all {
        sup.track(c, &st);
    }
    let changes = |sup: &mut Supervisor| -> Vec<(String, Option<u32>, bool, String)> {
        sup.take_probes()
            .into_iter()
            .filter_map(|p| {
                p.changed
                    .map(|c| (p.replica, c.replica, c.healthy, c.output))
            })
            .collect()
    };
    let start = std::time::Instant::now();
    // Each look is past every interval, so every replica is probed.
    let at = |n: u64| start + Duration::from_secs(60 * n);
    sup.probe(&rt, at(0)).await;
    let first = changes(&mut sup);
    assert_eq!(first.len(), 2, "{first:?}");
    assert!(first.iter().all(|c| c.2), "{first:?}");
    sup.probe(&rt, at(1)).await;
    assert_eq!(changes(&mut sup), vec![], "no change, no report");

    let sick = &all[1];
    rt.set_health(&sick.id, EngineHealth::Unhealthy);
    sup.probe(&rt, at(2)).await;
    // The fake's check prints "unhealthy": a check's output is left out.
    assert_eq!(
        changes(&mut sup),
        vec![(
            sick.name.clone(),
            Some(1),
            false,
            "`/bin/check` exited with 1".to_string()
        )]
    );
    sup.probe(&rt, at(3)).await;
    assert_eq!(changes(&mut sup), vec![]);

    rt.set_health(&sick.id, EngineHealth::Healthy);
    sup.probe(&rt, at(4)).await;
    let back = changes(&mut sup);
    assert_eq!(back.len(), 1, "{back:?}");
    assert_eq!((back[0].0.as_str(), back[0].2), (sick.name.as_str(), true));
}

#[tokio::test]
async fn a_service_at_zero_replicas_needs_no_converge() {
    let zero =
        "name: s\nservices:\n  api:\n    image: app:1\n    replicas: 0\n  web:\n    image: app:1\n";
    let (rt, st) = setup(zero).await;
    rt.clear_calls();
    let mut sup = Supervisor::new();
    let r = sup.tend(&rt, &st, true, &|_| {}).await.unwrap();
    assert!(!r.needs_converge, "{r:?}");
    assert!(rt
        .calls_of(&["create_container", "start_container", "remove_container"])
        .is_empty());
}

#[tokio::test]
async fn a_gate_that_passed_makes_a_tracked_replica_healthy_once() {
    let (rt, st) = setup(APP).await;
    let c = containers(&rt).await[0].clone();
    let mut sup = Supervisor::new();
    sup.track(&c, &st);
    assert_eq!(sup.health(&c.name), Some(SeenHealth::Starting));
    assert!(sup.passed(&c.id, std::time::Instant::now()));
    assert_eq!(sup.health(&c.name), Some(SeenHealth::Healthy));
    assert!(
        !sup.passed(&c.id, std::time::Instant::now()),
        "already healthy"
    );
}

#[tokio::test]
async fn a_gate_that_passed_before_the_replica_was_tracked_counts_once_it_is() {
    let (rt, st) = setup(APP).await;
    let c = containers(&rt).await[0].clone();
    for through_tend in [false, true] {
        let mut sup = Supervisor::new();
        assert!(
            !sup.passed(&c.id, std::time::Instant::now()),
            "not tracked yet: nothing changes now"
        );
        if through_tend {
            sup.tend(&rt, &st, false, &|_| {}).await.unwrap();
        } else {
            sup.track(&c, &st);
        }
        assert_eq!(
            sup.health(&c.name),
            Some(SeenHealth::Healthy),
            "tend: {through_tend}"
        );
        rt.clear_calls();
        sup.probe(&rt, std::time::Instant::now()).await;
        let execs = rt.calls_of(&["exec"]);
        assert!(
            !execs.iter().any(|e| e.contains(&c.name)),
            "not probed again at once: {execs:?}"
        );
    }
}

#[tokio::test]
async fn a_replica_a_converge_is_gating_is_left_to_its_gate_for_a_fast_probe() {
    let (rt, st) = setup(APP).await;
    let cs = containers(&rt).await;
    let (gated, other) = (&cs[0], &cs[1]);
    let mut sup = Supervisor::new();
    sup.gating(&gated.id);
    sup.track(gated, &st);
    sup.track(other, &st);
    let now = std::time::Instant::now();
    let probed = |rt: &FakeRuntime, c: &tug_runtime::ContainerInfo| {
        rt.calls_of(&["exec"]).iter().any(|e| e.contains(&c.name))
    };
    rt.clear_calls();
    sup.probe(&rt, now).await;
    assert!(probed(&rt, other), "a replica no gate probes: at once");
    assert!(!probed(&rt, gated), "the gated one waits for its gate");
    assert_eq!(sup.health(&gated.name), Some(SeenHealth::Starting));

    // No pass came in time: probed here after all.
    rt.clear_calls();
    sup.probe(&rt, now + tug_engine::agent::FAST_PROBE).await;
    assert!(probed(&rt, gated));
    assert_eq!(sup.health(&gated.name), Some(SeenHealth::Healthy));
}

#[tokio::test]
async fn a_replica_woken_from_zero_is_not_judged_by_probes_of_its_stopped_time() {
    let one = "name: s\nservices:\n  api:\n    image: app:1\n    health: { exec: [/bin/check], retries: 1 }\n    autoscale: { min: 0, max: 1, idle: 1m }\n";
    let (rt, awake) = setup(one).await;
    let c = containers(&rt).await[0].clone();
    let mut sup = Supervisor::new();
    sup.tend(&rt, &awake, true, &|_| {}).await.unwrap();
    let start = std::time::Instant::now();
    let at = |n: u64| start + Duration::from_secs(60 * n);
    sup.probe(&rt, at(0)).await;
    assert_eq!(sup.health(&c.name), Some(SeenHealth::Healthy));

    // Idle: the replica is stopped and kept; the agent's view says zero.
    let mut idle = awake.clone();
    idle.services.get_mut("api").unwrap().replicas = 0;
    up(&rt, &idle, &UpOptions::default(), &|_| {})
        .await
        .unwrap();
    assert_eq!(containers(&rt).await[0].state, ContainerState::Exited);
    sup.tend(&rt, &idle, true, &|_| {}).await.unwrap();
    // However long it stays stopped, nothing probes it.
    for n in 1..5 {
        assert!(!sup.probe(&rt, at(n)).await);
    }

    // Woken: the kept replica starts, and is healthy again, not replaced.
    up(&rt, &awake, &UpOptions::default(), &|_| {})
        .await
        .unwrap();
    rt.clear_calls();
    let r = sup.tend(&rt, &awake, true, &|_| {}).await.unwrap();
    assert!(r.replaced.is_empty(), "{r:?}");
    assert!(rt.calls_of(&["remove_container"]).is_empty());
    sup.probe(&rt, at(6)).await;
    assert_eq!(sup.health(&c.name), Some(SeenHealth::Healthy));
    assert_eq!(containers(&rt).await[0].id, c.id);
}
