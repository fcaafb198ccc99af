//! A stack on Podman 4.3's Docker-compatible socket (`TUG_PODMAN_HOST`, set
//! up by scripts/podman.sh): `tug version` names it; `up` gates on HTTP and
//! exec health checks that tug runs itself; `ps`, `logs --tail` and `down`.

mod common;

use common::*;

/// Loaded into Podman by scripts/podman.sh.
const BUSYBOX: &str = "tug-test/busybox:1";

#[test]
fn a_stack_runs_on_podman_with_exec_health_checks_run_by_tug() {
    let Some(host) = podman_host() else { return };
    let mut s = TestStack::new(
        "pm",
        &(service("web", "    replicas: 2\n")
            // Arguments with spaces: Podman's compatibility HEALTHCHECK splits
            // them (`test a b = a b` fails); tug's exec keeps them whole.
            + &format!(
                "  worker:\n    image: {BUSYBOX}\n    command: [/bin/busybox, sh, -c, 'echo -n ready; sleep 0.2; echo \" to work\"; exec /bin/busybox sleep 600']\n    \
                 health: {{ exec: [/bin/busybox, test, 'a b', '=', 'a b'], interval: 200ms, timeout: 2s, retries: 3 }}\n    \
                 stop_grace_period: 1s\n    depends_on: {{ web: healthy }}\n"
            )),
    );
    s.docker_host = Some(host.clone());

    let v = s.run(&["version", "-o", "json"]);
    assert!(v.status.success(), "{}", text(&v));
    let v: serde_json::Value = serde_json::from_slice(&v.stdout).unwrap();
    assert_eq!(v["engine"]["name"], "podman", "{v}");
    assert!(
        v["engine"]["version"]
            .as_str()
            .is_some_and(|ver| ver.starts_with('4')),
        "{v}"
    );
    assert_eq!(v["engine"]["address"], host.as_str(), "{v}");

    let up = s.run(&["up", "-d"]);
    assert!(up.status.success(), "{}", text(&up));

    let rows = s.ps();
    assert_eq!(rows.len(), 3, "{rows:?}");
    for r in &rows {
        assert_eq!(r["state"], "running", "{r}");
        assert_eq!(r["health"], "healthy", "{r}");
        assert!(
            r["engine"]
                .as_str()
                .is_some_and(|e| e.starts_with("podman 4")),
            "{r}"
        );
        if r["service"] == "web" {
            let body = get(r["endpoint"].as_str().unwrap(), "/");
            assert!(body.contains("hello from"), "{body}");
        }
    }
    let table = s.run(&["ps"]);
    assert!(
        String::from_utf8_lossy(&table.stdout).starts_with("engine: podman 4"),
        "{}",
        text(&table)
    );

    // Two writes, one line; --tail counts whole lines. The second write
    // comes 0.2 s after the first, maybe after `up` is done.
    wait_until("the worker's line is complete", || {
        String::from_utf8_lossy(&s.run(&["logs", "worker"]).stdout).contains("ready to work")
    });
    let logs = s.run(&["logs", "worker", "--tail", "1"]);
    assert!(logs.status.success(), "{}", text(&logs));
    let out = String::from_utf8_lossy(&logs.stdout);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 1, "{}", text(&logs));
    assert!(lines[0].ends_with("| ready to work"), "{}", text(&logs));

    let down = s.run(&["down"]);
    assert!(down.status.success(), "{}", text(&down));
    assert!(s.ids("web").is_empty() && s.ids("worker").is_empty());
}
