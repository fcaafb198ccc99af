//! The apply rules, on the recording FakeRuntime.

use std::sync::{Arc, Mutex};
use std::time::Duration;
use tug_engine::{down, up, Drain, EngineError, Event, NoDrain, UpOptions};
use tug_runtime::fake::FakeRuntime;
use tug_runtime::{labels, stack_filter, EngineHealth, Runtime, RuntimeError};

/// Parses `yaml`; a `db` service gets a named volume `data` at /data.
fn stack(yaml: &str) -> tug_spec::Stack {
    let mut st = tug_spec::parse_str(yaml, "/srv/tug.yaml".as_ref()).unwrap();
    if let Some(db) = st.services.get_mut("db") {
        db.volumes.push(tug_spec::Mount {
            source: tug_spec::MountSource::Volume("data".into()),
            target: "/data".into(),
            read_only: false,
        });
    }
    st
}

fn rt() -> FakeRuntime {
    let rt = FakeRuntime::new();
    rt.add_image("app:1", "");
    rt.add_image("db:1", "999");
    rt
}

async fn run(
    rt: &FakeRuntime,
    st: &tug_spec::Stack,
) -> (Result<tug_engine::UpReport, EngineError>, Vec<Event>) {
    let events = Mutex::new(Vec::new());
    let opts = UpOptions {
        timeout: Duration::from_secs(5),
        ..UpOptions::default()
    };
    let r = up(rt, st, &opts, &|e| events.lock().unwrap().push(e)).await;
    (r, events.into_inner().unwrap())
}

/// A drain hook that notes `retire NAME` with its place in the runtime's
/// call log, so tests see where it was called among the engine calls.
#[derive(Clone)]
struct Recorder(FakeRuntime, Arc<Mutex<Vec<(usize, String)>>>);

impl Recorder {
    /// The runtime's calls with the retires in place, keeping `ops` only.
    fn calls_of(&self, ops: &[&str]) -> Vec<String> {
        let mut calls = self.0.calls();
        for (at, r) in self.1.lock().unwrap().iter().rev() {
            calls.insert(*at, r.clone());
        }
        calls
            .into_iter()
            .filter(|c| ops.iter().any(|o| c.starts_with(&format!("{o} "))))
            .collect()
    }

    fn clear(&self) {
        self.0.clear_calls();
        self.1.lock().unwrap().clear();
    }
}

impl Drain for Recorder {
    fn retire<'a>(
        &'a self,
        service: &'a str,
        replica: u32,
        name: &'a str,
    ) -> futures_util::future::BoxFuture<'a, ()> {
        Box::pin(async move {
            assert!(
                name.starts_with(&format!("s-{service}-{replica}-")),
                "{name}"
            );
            let at = self.0.calls().len();
            self.1.lock().unwrap().push((at, format!("retire {name}")));
        })
    }
}

fn draining(rec: &Recorder) -> UpOptions {
    UpOptions {
        timeout: Duration::from_secs(5),
        drain: Arc::new(rec.clone()),
    }
}

/// Every `stop_container X` of a running X comes right after `retire X`.
fn assert_drained_first(calls: &[String], expected: usize) {
    let retired: Vec<&String> = calls.iter().filter(|c| c.starts_with("retire ")).collect();
    assert_eq!(retired.len(), expected, "{calls:?}");
    for (k, c) in calls.iter().enumerate() {
        if let Some(name) = c.strip_prefix("retire ") {
            assert_eq!(
                calls.get(k + 1).map(String::as_str),
                Some(format!("stop_container {name}").as_str()),
                "{calls:?}"
            );
        }
    }
}

#[tokio::test]
async fn drain_hook_runs_before_each_stop_of_a_serving_replica() {
    let rt = rt();
    let rec = Recorder(rt.clone(), Arc::default());
    let st = stack(TWO);
    let opts = draining(&rec);
    let on = ["retire", "stop_container"];
    up(&rt, &st, &opts, &|_| {}).await.unwrap();
    // Nothing is stopped on the way up.
    assert!(rec.calls_of(&["retire"]).is_empty());

    // A rollout retires both old api replicas.
    rec.clear();
    let v2 = stack(&TWO.replace("replicas: 2", "replicas: 2\n    env: { V: '2' }"));
    up(&rt, &v2, &opts, &|_| {}).await.unwrap();
    assert_drained_first(&rec.calls_of(&on), 2);

    // Scale down retires the replica that goes.
    rec.clear();
    let one = stack(&TWO.replace("replicas: 2", "replicas: 1\n    env: { V: '2' }"));
    up(&rt, &one, &opts, &|_| {}).await.unwrap();
    let calls = rec.calls_of(&on);
    assert_drained_first(&calls, 1);
    assert!(calls[0].starts_with("retire s-api-1-"), "{calls:?}");

    // `stop` retires every running replica; `down` then has none to drain.
    rec.clear();
    tug_engine::stop(&rt, "s", Duration::from_secs(1), &*opts.drain)
        .await
        .unwrap();
    assert_drained_first(&rec.calls_of(&on), 2);
    rec.clear();
    down(&rt, "s", Duration::from_secs(1), false, &*opts.drain)
        .await
        .unwrap();
    assert!(rec.calls_of(&["retire"]).is_empty());
}

const TWO: &str = "name: s
services:
  api:
    image: app:1
    replicas: 2
    depends_on: { db: healthy }
    health: { exec: [/bin/check], interval: 1s }
  db:
    image: db:1
    health: { exec: [/bin/check] }
";

#[tokio::test]
async fn up_from_nothing_then_up_to_date() {
    let rt = rt();
    let st = stack(TWO);
    let (r, _) = run(&rt, &st).await;
    let r = r.unwrap();
    assert_eq!(
        (r.created, r.started, r.removed, r.up_to_date),
        (3, 3, 0, false)
    );
    assert_eq!(
        rt.list_networks(&stack_filter("s")).await.unwrap(),
        vec!["tug_s".to_string()]
    );
    assert_eq!(
        rt.list_volumes(&stack_filter("s")).await.unwrap(),
        vec!["s_data".to_string()]
    );

    rt.clear_calls();
    let (r, events) = run(&rt, &st).await;
    assert!(r.unwrap().up_to_date);
    assert!(events.contains(&Event::UpToDate { stack: "s".into() }));
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
async fn dependency_is_healthy_before_dependent_is_created() {
    let rt = rt();
    let (r, _) = run(&rt, &stack(TWO)).await;
    r.unwrap();
    let calls = rt.calls_of(&["create_container", "start_container"]);
    let db_started = calls
        .iter()
        .position(|c| c.starts_with("start_container s-db-0"))
        .unwrap();
    let api_created = calls
        .iter()
        .position(|c| c.starts_with("create_container s-api-"))
        .unwrap();
    assert!(db_started < api_created, "{calls:?}");
}

#[tokio::test]
async fn changing_one_service_replaces_only_its_replicas() {
    let rt = rt();
    run(&rt, &stack(TWO)).await.0.unwrap();
    let before = rt.list_containers(&stack_filter("s")).await.unwrap();
    let db_id = before
        .iter()
        .find(|c| c.label(labels::SERVICE) == Some("db"))
        .unwrap()
        .id
        .clone();
    rt.clear_calls();
    let changed = TWO.replace("replicas: 2", "replicas: 2\n    env: { MODE: fast }");
    let r = run(&rt, &stack(&changed)).await.0.unwrap();
    assert_eq!((r.created, r.removed), (2, 0));
    let removed = rt.calls_of(&["remove_container"]);
    assert_eq!(removed.len(), 2);
    assert!(removed.iter().all(|c| c.contains("s-api-")), "{removed:?}");
    let after = rt.list_containers(&stack_filter("s")).await.unwrap();
    assert!(
        after.iter().any(|c| c.id == db_id),
        "db must keep its container"
    );
}

#[tokio::test]
async fn scaling_does_not_replace_existing_replicas() {
    let rt = rt();
    run(&rt, &stack(TWO)).await.0.unwrap();
    rt.clear_calls();
    run(&rt, &stack(&TWO.replace("replicas: 2", "replicas: 4")))
        .await
        .0
        .unwrap();
    assert_eq!(rt.calls_of(&["create_container"]).len(), 2);
    assert!(rt.calls_of(&["remove_container"]).is_empty());
    rt.clear_calls();
    let r = run(&rt, &stack(&TWO.replace("replicas: 2", "replicas: 1")))
        .await
        .0
        .unwrap();
    assert_eq!(r.removed, 3);
}

#[tokio::test]
async fn failed_dependency_stops_dependents_and_reports_logs() {
    let rt = rt();
    rt.exit_on_start("s-db-", 3);
    let (r, events) = run(&rt, &stack(TWO)).await;
    match r.unwrap_err() {
        EngineError::ServiceFailed {
            service,
            reason,
            logs,
            ..
        } => {
            assert_eq!(service, "db");
            assert!(reason.contains("exited with code 3"), "{reason}");
            assert_eq!(logs, vec!["exiting with 3".to_string()]);
        }
        e => panic!("unexpected {e:?}"),
    }
    assert!(rt
        .calls_of(&["create_container"])
        .iter()
        .all(|c| !c.contains("s-api-")));
    assert!(!events
        .iter()
        .any(|e| matches!(e, Event::ServiceReady { .. })));
}

#[tokio::test]
async fn unhealthy_replica_fails_with_probe_output() {
    let rt = rt();
    rt.set_health_on_start("s-db-", EngineHealth::Unhealthy);
    let err = run(&rt, &stack(TWO)).await.0.unwrap_err();
    assert!(
        err.to_string()
            .contains("service `db` failed: replica 0 is unhealthy"),
        "{err}"
    );
}

#[tokio::test]
async fn container_left_by_an_interrupted_run_is_adopted() {
    let rt = rt();
    let st = stack("name: s\nservices:\n  api:\n    image: app:1\n");
    // First run dies after creating: the container exists but never started.
    rt.fail_next("start_container", RuntimeError::api("start", "killed"));
    assert!(run(&rt, &st).await.0.is_err());
    let left = rt.list_containers(&stack_filter("s")).await.unwrap();
    assert_eq!(left.len(), 1);
    rt.clear_calls();
    run(&rt, &st).await.0.unwrap();
    assert!(
        rt.calls_of(&["create_container"]).is_empty(),
        "{:?}",
        rt.calls()
    );
    let now = rt.list_containers(&stack_filter("s")).await.unwrap();
    assert_eq!(now.len(), 1);
    assert_eq!(now[0].id, left[0].id);
}

#[tokio::test]
async fn name_conflict_on_create_adopts_the_existing_container() {
    let rt = rt();
    let st = stack("name: s\nservices:\n  api:\n    image: app:1\n");
    rt.fail_next(
        "create_container",
        RuntimeError::Conflict("container".into()),
    );
    // The conflict names a container that does not exist in the fake: a clear failure, no panic.
    assert!(run(&rt, &st).await.0.is_err());
    run(&rt, &st).await.0.unwrap();
    assert_eq!(
        rt.list_containers(&stack_filter("s")).await.unwrap().len(),
        1
    );
}

#[tokio::test]
async fn orphans_removed_and_other_stacks_untouched() {
    let rt = rt();
    run(&rt, &stack(TWO)).await.0.unwrap();
    run(&rt, &stack(&TWO.replace("name: s", "name: other")))
        .await
        .0
        .unwrap();
    let without_api =
        "name: s\nservices:\n  db:\n    image: db:1\n    health: { exec: [/bin/check] }\n";
    let r = run(&rt, &stack(without_api)).await.0.unwrap();
    assert_eq!(r.removed, 2);
    assert_eq!(
        rt.list_containers(&stack_filter("other"))
            .await
            .unwrap()
            .len(),
        3
    );

    let d = down(&rt, "s", Duration::from_secs(1), false, &NoDrain)
        .await
        .unwrap();
    assert_eq!((d.containers, d.networks, d.volumes), (1, 1, 0));
    assert_eq!(rt.list_volumes(&stack_filter("s")).await.unwrap().len(), 1);
    let d = down(&rt, "s", Duration::from_secs(1), true, &NoDrain)
        .await
        .unwrap();
    assert_eq!(d.volumes, 1);
    assert_eq!(
        rt.list_containers(&stack_filter("other"))
            .await
            .unwrap()
            .len(),
        3
    );
}

#[tokio::test]
async fn missing_image_names_service_and_image() {
    let rt = rt();
    let err = run(
        &rt,
        &stack("name: s\nservices:\n  api:\n    image: nope:1\n"),
    )
    .await
    .0
    .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("service `api`") && msg.contains("nope:1"),
        "{msg}"
    );
}

#[tokio::test]
async fn hardened_spec_reaches_the_runtime() {
    let rt = rt();
    run(
        &rt,
        &stack("name: s\nservices:\n  api:\n    image: app:1\n    port: 80\n"),
    )
    .await
    .0
    .unwrap();
    let c = &rt.list_containers(&stack_filter("s")).await.unwrap()[0];
    let spec = rt.spec_of(&c.id).unwrap();
    assert!(spec.read_only_root && spec.cap_drop_all && spec.no_new_privileges);
    assert_eq!(spec.user.as_deref(), Some(tug_spec::DEFAULT_USER));
    assert!(c.host_port.is_some());
}

#[tokio::test]
async fn rolling_update_starts_new_before_stopping_old() {
    let rt = rt();
    run(&rt, &stack(TWO)).await.0.unwrap();
    rt.clear_calls();
    run(
        &rt,
        &stack(&TWO.replace("replicas: 2", "replicas: 2\n    env: { V: '2' }")),
    )
    .await
    .0
    .unwrap();
    let calls = rt.calls_of(&[
        "create_container",
        "start_container",
        "stop_container",
        "remove_container",
    ]);
    // Per replica: the new one is created and started before the old one is stopped.
    let pos = |p: &str| {
        calls
            .iter()
            .position(|c| c.starts_with(p))
            .unwrap_or_else(|| panic!("{p} missing in {calls:?}"))
    };
    let new0 = pos("start_container s-api-0-");
    let old_stops: Vec<usize> = calls
        .iter()
        .enumerate()
        .filter(|(_, c)| c.starts_with("stop_container s-api-"))
        .map(|(k, _)| k)
        .take(2)
        .collect();
    assert_eq!(old_stops.len(), 2, "{calls:?}");
    assert!(new0 < old_stops[0], "{calls:?}");
    let new1 = calls
        .iter()
        .rposition(|c| c.starts_with("start_container s-api-1-"))
        .unwrap();
    assert!(
        old_stops[0] < new1 && new1 < old_stops[1],
        "one replica at a time: {calls:?}"
    );
    // Every old container is gone at the end.
    assert_eq!(
        rt.list_containers(&stack_filter("s")).await.unwrap().len(),
        3
    );
}

/// A retired replica stops (finishing its requests) while the next step
/// starts its replacement: the steps do not wait for each other's stops.
#[tokio::test]
async fn a_retired_replica_stops_while_the_next_step_starts() {
    let rt = rt();
    let three = TWO.replace("replicas: 2", "replicas: 3");
    run(&rt, &stack(&three)).await.0.unwrap();
    rt.clear_calls();
    rt.set_stop_time(Duration::from_millis(300));
    run(
        &rt,
        &stack(&three.replace("replicas: 3", "replicas: 3\n    env: { V: '2' }")),
    )
    .await
    .0
    .unwrap();
    let calls = rt.calls_of(&["create_container", "stop_container", "stopped"]);
    let at = |p: &str| {
        calls
            .iter()
            .position(|c| c.starts_with(p))
            .unwrap_or_else(|| panic!("{p} missing in {calls:?}"))
    };
    // Old replica 0 is being stopped when new replica 1 is created.
    let stop0 = at("stop_container s-api-0-");
    let stopped0 = at("stopped s-api-0-");
    let create1 = calls
        .iter()
        .rposition(|c| c.starts_with("create_container s-api-1-"))
        .unwrap();
    assert!(stop0 < create1 && create1 < stopped0, "{calls:?}");
}

#[tokio::test]
async fn failed_rollout_rolls_back_to_the_old_replicas() {
    let rt = rt();
    run(&rt, &stack(TWO)).await.0.unwrap();
    let old: Vec<String> = rt
        .list_containers(&stack_filter("s"))
        .await
        .unwrap()
        .into_iter()
        .filter(|c| c.label(labels::SERVICE) == Some("api"))
        .map(|c| c.id)
        .collect();
    // The new version never turns healthy.
    let bad = stack(&TWO.replace("replicas: 2", "replicas: 2\n    env: { V: '2' }"));
    rt.set_health_on_start("s-api-", EngineHealth::Unhealthy);
    let (r, events) = run(&rt, &bad).await;
    let err = r.unwrap_err().to_string();
    assert!(
        err.contains("rolled back to the previous 2 replica(s)"),
        "{err}"
    );
    assert!(events
        .iter()
        .any(|e| matches!(e, Event::RollingBack { .. })));
    let now: Vec<tug_runtime::ContainerInfo> = rt
        .list_containers(&stack_filter("s"))
        .await
        .unwrap()
        .into_iter()
        .filter(|c| c.label(labels::SERVICE) == Some("api"))
        .collect();
    assert_eq!(now.iter().map(|c| c.id.clone()).collect::<Vec<_>>(), old);
    assert!(now
        .iter()
        .all(|c| c.state == tug_runtime::ContainerState::Running));
}

/// A rollout stopped half-way by a failed create (auto rollback off): the
/// new replica 0 runs, the old replica 0 is stopped, the old replica 1 runs.
async fn half_rolled(rt: &FakeRuntime) -> (tug_spec::Stack, tug_spec::Stack) {
    let v1 = stack(&TWO.replace(
        "replicas: 2",
        "replicas: 2\n    update: { auto_rollback: false }",
    ));
    let v2 = stack(&TWO.replace(
        "replicas: 2",
        "replicas: 2\n    update: { auto_rollback: false }\n    env: { V: '2' }",
    ));
    run(rt, &v1).await.0.unwrap();
    // The new replica 1 exits as it starts (the old one is not started again).
    rt.exit_on_start("s-api-1-", 1);
    assert!(run(rt, &v2).await.0.is_err());
    let api: Vec<(String, tug_runtime::ContainerState)> = rt
        .list_containers(&stack_filter("s"))
        .await
        .unwrap()
        .into_iter()
        .filter(|c| c.label(labels::SERVICE) == Some("api"))
        .map(|c| (c.name, c.state))
        .collect();
    use tug_runtime::ContainerState::{Exited, Running};
    let count = |i: &str, st| {
        api.iter()
            .filter(|(n, s)| n.starts_with(&format!("s-api-{i}-")) && *s == st)
            .count()
    };
    assert_eq!(
        (
            count("0", Running),
            count("0", Exited),
            count("1", Running),
            count("1", Exited)
        ),
        (1, 1, 1, 1),
        "{api:?}"
    );
    (v1, v2)
}

/// Running api replicas after each call, from the call log of a run.
fn capacity_through(calls: &[String], running: &mut std::collections::BTreeSet<String>) -> usize {
    let mut least = running.len();
    for c in calls {
        if let Some(n) = c.strip_prefix("start_container ") {
            running.insert(n.to_string());
        } else if let Some(n) = c.strip_prefix("stop_container ") {
            running.remove(n);
        }
        least = least.min(running.len());
    }
    least
}

async fn running_api(rt: &FakeRuntime) -> std::collections::BTreeSet<String> {
    rt.list_containers(&stack_filter("s"))
        .await
        .unwrap()
        .into_iter()
        .filter(|c| {
            c.label(labels::SERVICE) == Some("api")
                && c.state == tug_runtime::ContainerState::Running
        })
        .map(|c| c.name)
        .collect()
}

#[tokio::test]
async fn resuming_a_half_done_rollout_backwards_keeps_capacity() {
    let rt = rt();
    let (v1, _) = half_rolled(&rt).await;
    // The old replica 0 is started and healthy before the new one goes.
    let mut running = running_api(&rt).await;
    rt.clear_calls();
    run(&rt, &v1).await.0.unwrap();
    let calls = rt.calls_of(&["start_container", "stop_container"]);
    assert!(capacity_through(&calls, &mut running) >= 2, "{calls:?}");
    assert_eq!(running_api(&rt).await.len(), 2);
    assert_eq!(
        rt.list_containers(&stack_filter("s")).await.unwrap().len(),
        3,
        "nothing of the new version is left"
    );
}

#[tokio::test]
async fn resuming_a_half_done_rollout_forwards_keeps_capacity() {
    let rt = rt();
    let (_, v2) = half_rolled(&rt).await;
    let mut running = running_api(&rt).await;
    rt.clear_calls();
    // The rollout goes on (and its replica 1 fails again): capacity never
    // drops below replicas - max_unavailable = 2.
    let r = run(&rt, &v2).await.0;
    let calls = rt.calls_of(&["start_container", "stop_container"]);
    assert!(
        capacity_through(&calls, &mut running) >= 2,
        "{r:?} {calls:?}"
    );
    assert!(calls
        .iter()
        .any(|c| c.starts_with("start_container s-api-1-")));
}
