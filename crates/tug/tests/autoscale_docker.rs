//! The agent's autoscaler on the real engine: a replica that burns CPU makes
//! it scale up, never past `max`; when the burning stops it scales back to
//! `min` after the scale-down window. Short interval and windows keep it quick.

mod common;
use common::*;
use std::time::{Duration, Instant};

fn running(s: &TestStack) -> usize {
    s.ps()
        .iter()
        .filter(|r| r["service"] == "burn" && r["state"] == "running")
        .count()
}

/// Waits up to `secs` for `f`, checking on the way that the service never
/// has more than `max` replicas.
fn wait_bounded(s: &TestStack, what: &str, secs: u64, max: usize, f: impl Fn(usize) -> bool) {
    let until = Instant::now() + Duration::from_secs(secs);
    loop {
        let all = s.ps().iter().filter(|r| r["service"] == "burn").count();
        assert!(all <= max, "{all} replicas, more than max {max}");
        if f(running(s)) {
            return;
        }
        assert!(
            Instant::now() < until,
            "timed out waiting until {what}\n{}",
            text(&s.run(&["events"]))
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn cpu_load_scales_up_within_max_and_back_down_to_min() {
    if !engine() {
        return;
    }
    busybox_images(None);
    let ctl = tempfile::tempdir().unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        // The replicas run as an unprivileged user: it must see the flag.
        std::fs::set_permissions(ctl.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let flag = ctl.path().join("burn");
    std::fs::write(&flag, "").unwrap();
    let s = TestStack::new(
        "autoscale",
        &format!(
            r#"  burn:
    image: {BUSYBOX}
    command: ["sh", "-c", "while :; do while [ -e /ctl/burn ]; do :; done; sleep 1; done"]
    volumes: [{{ bind: {}, path: /ctl, read_only: true }}]
    resources: {{ cpu: 0.2 }}
    stop_grace_period: 1s
    autoscale:
      min: 1
      max: 3
      target_cpu: 25%
      behavior:
        scale_down: {{ stabilization: 3s, policies: [{{ pods: 1, period: 1s }}] }}
"#,
            ctl.path().display()
        ),
    );
    let up = s
        .command(&["up", "-d"])
        .env("TUG_AUTOSCALE_INTERVAL", "1s")
        .output()
        .unwrap();
    assert!(up.status.success(), "{}", text(&up));
    assert_eq!(running(&s), 1);

    // Busy: every replica at its whole 0.2 CPU, four times the target.
    wait_bounded(&s, "three replicas run", 120, 3, |n| n == 3);
    let events = s.run(&["events", "-o", "json"]);
    let events = String::from_utf8_lossy(&events.stdout).to_string();
    let decisions: Vec<serde_json::Value> = events
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .flat_map(|v| match v.as_array() {
            Some(a) => a.clone(),
            None => vec![v],
        })
        .map(|r| r.get("event").cloned().unwrap_or(r))
        .filter(|e| e["event"] == "autoscaled")
        .collect();
    let up = decisions
        .iter()
        .find(|e| e["desired"].as_u64() > e["current"].as_u64())
        .unwrap_or_else(|| panic!("no scale-up decision in\n{events}"));
    assert_eq!(up["service"], "burn");
    assert_eq!(up["metrics"][0]["metric"], "cpu");
    assert_eq!(up["metrics"][0]["target"], 25.0);
    assert!(up["metrics"][0]["value"].as_f64().unwrap() > 27.5, "{up}");
    assert!(
        decisions
            .iter()
            .all(|e| e["desired"].as_u64().unwrap() <= 3),
        "{events}"
    );

    // The scale went through the recorded path `tug scale` takes.
    let history = text(&s.run(&["history"]));
    assert!(history.contains("autoscale burn="), "{history}");
    // `tug ps` shows the metric against its target.
    let ps = text(&s.run(&["ps"]));
    assert!(ps.contains("AUTOSCALED") && ps.contains("/25%"), "{ps}");
    // A manual scale past max is refused, naming the bound.
    let refused = s.run(&["scale", "burn=5"]);
    assert!(!refused.status.success());
    assert!(
        text(&refused).contains("autoscale.max"),
        "{}",
        text(&refused)
    );

    // Idle: back to min once the scale-down window has passed.
    std::fs::remove_file(&flag).unwrap();
    wait_bounded(&s, "one replica runs", 120, 3, |n| n == 1);
    let ps = text(&s.run(&["ps"]));
    assert!(ps.contains("1-3"), "{ps}");
}
