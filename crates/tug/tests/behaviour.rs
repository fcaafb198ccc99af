//! The same scenarios on both runtimes: containers on the engine (Docker,
//! and Podman when `TUG_PODMAN_HOST` is set), and local processes. Each
//! scenario is one function, run once per runtime.

mod common;

use common::*;

/// Runs `scenario` on docker (when an engine answers), on Podman (when
/// scripts/podman.sh set it up) and on processes.
fn both(scenario: fn(&'static str)) {
    if engine() {
        scenario("docker");
    }
    if podman_host().is_some() {
        scenario("podman");
    }
    scenario("process");
}

fn endpoint(s: &TestStack, replica: u64) -> String {
    s.ps()
        .iter()
        .find(|r| r["replica"].as_u64() == Some(replica))
        .and_then(|r| r["endpoint"].as_str().map(String::from))
        .unwrap_or_default()
}

fn up_scale_and_converge(rt: &'static str) {
    let s = TestStack::on(Some(rt), "bup", &service("web", "    replicas: 2\n"));
    let out = s.run(&["up", "-d"]);
    assert!(out.status.success(), "[{rt}] {}", text(&out));
    let ids = s.replica_ids();
    assert_eq!(ids.len(), 2, "[{rt}]");
    assert!(
        get(&endpoint(&s, 1), "/").contains("hello from web-1"),
        "[{rt}]"
    );
    let out = s.run(&["up", "-d"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("up to date"),
        "[{rt}] {}",
        text(&out)
    );
    assert_eq!(s.replica_ids(), ids, "[{rt}] nothing touched");

    let out = s.run(&["scale", "web=3"]);
    assert!(out.status.success(), "[{rt}] {}", text(&out));
    let three = s.replica_ids();
    assert_eq!(three.len(), 3, "[{rt}]");
    assert!(
        ids.iter().all(|i| three.contains(i)),
        "[{rt}] scaling up keeps replicas"
    );
    assert!(s.run(&["scale", "web=1"]).status.success());
    assert_eq!(s.replica_ids().len(), 1, "[{rt}]");
}

#[test]
fn up_scale_and_converge_on_both_runtimes() {
    both(up_scale_and_converge);
}

fn rolling_update_and_rollback(rt: &'static str) {
    let s = TestStack::on(
        Some(rt),
        "broll",
        &service("web", "    replicas: 2\n    env: { VERSION: '1' }\n"),
    );
    s.up();
    let v1 = s.replica_ids();

    // A good new version replaces every replica and serves.
    s.write(&service(
        "web",
        "    replicas: 2\n    env: { VERSION: '2' }\n",
    ));
    let out = s.run(&["up", "-d"]);
    assert!(out.status.success(), "[{rt}] {}", text(&out));
    let v2 = s.replica_ids();
    assert_eq!(v2.len(), 2, "[{rt}] {}", text(&s.run(&["ps"])));
    assert!(v2.iter().all(|i| !v1.contains(i)), "[{rt}] all replaced");
    assert!(get(&endpoint(&s, 0), "/").contains("(version 2)"), "[{rt}]");

    // A bad one is rolled back: version 2 keeps serving.
    s.write(&service("web", "    replicas: 2\n    env: { VERSION: '3', HELLO_UNHEALTHY: '1' }\n    update: { health_timeout: 5s }\n"));
    let out = s.run(&["up", "-d"]);
    assert_eq!(out.status.code(), Some(1), "[{rt}] {}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("rolled back to the previous 2 replica(s)"),
        "[{rt}] {}",
        text(&out)
    );
    assert_eq!(s.replica_ids(), v2, "[{rt}]");
    wait_until("version 2 serves again", || {
        get(&endpoint(&s, 0), "/").contains("(version 2)")
    });
    let h = s.run(&["history", "-o", "json"]);
    let revs: serde_json::Value = serde_json::from_slice(&h.stdout).unwrap();
    assert_eq!(revs[0]["outcome"], "rolled-back", "[{rt}] {revs}");
}

#[test]
fn rolling_update_and_rollback_on_both_runtimes() {
    both(rolling_update_and_rollback);
}

fn crash_restart_and_agent_adoption(rt: &'static str) {
    let s = TestStack::on(Some(rt), "bcrash", &service("web", "    replicas: 2\n"));
    s.up();
    let ids = s.replica_ids();

    // A replica that crashes comes back, in place.
    let _ = get(&endpoint(&s, 0), "/crash");
    wait_until("the crashed replica serves again", || {
        get(&endpoint(&s, 0), "/health").contains("200 OK")
    });
    assert_eq!(s.replica_ids(), ids, "[{rt}] restarted, not replaced");

    // The agent dies; a new one adopts the replicas without touching them.
    let pid = s.agent_pid();
    assert!(std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap()
        .success());
    let before: Vec<serde_json::Value> = s.ps();
    let out = s.run(&["up", "-d"]);
    assert!(out.status.success(), "[{rt}] {}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("up to date"),
        "[{rt}] {}",
        text(&out)
    );
    assert_ne!(pid, s.agent_pid(), "[{rt}] a new agent runs");
    let after = s.ps();
    assert_eq!(s.replica_ids(), ids, "[{rt}]");
    let started = |rows: &[serde_json::Value]| {
        rows.iter()
            .map(|r| r["created"].clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(started(&before), started(&after), "[{rt}]");
}

#[test]
fn crash_restart_and_agent_adoption_on_both_runtimes() {
    both(crash_restart_and_agent_adoption);
}
