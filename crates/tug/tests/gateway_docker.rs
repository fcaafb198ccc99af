//! The gateway on the real engine: examples/hello replicas behind the
//! agent's gateway, routes, 503, spread, metrics, and a rolling update under
//! a load loop.

mod common;

use common::*;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;

fn write_with_gateway(s: &TestStack, port: u16, services: &str) {
    let yaml = format!(
        "name: {}\ngateway: {{ listen: ['127.0.0.1:{port}'] }}\nservices:\n{}",
        s.name,
        services.replace("WORKSPACE", &workspace().display().to_string())
    );
    std::fs::write(s.file(), yaml).unwrap();
}

fn routes(s: &TestStack) -> serde_json::Value {
    let out = s.run(&["routes", "-o", "json"]);
    assert!(out.status.success(), "{}", text(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn ready(s: &TestStack) -> usize {
    routes(s)["routes"][0]["replicas"]
        .as_array()
        .map(|r| r.iter().filter(|x| x["state"] == "ready").count())
        .unwrap_or(0)
}

/// The status code of a whole HTTP/1.x response.
fn status(r: &str) -> &str {
    r.split(' ').nth(1).unwrap_or("")
}

/// GET over the agent's unix socket.
fn agent_get(s: &TestStack, path: &str) -> String {
    use std::io::{Read, Write};
    let sock = s.state().join(&s.name).join("agent.sock");
    let mut c = std::os::unix::net::UnixStream::connect(&sock).unwrap();
    c.write_all(format!("GET {path} HTTP/1.0\r\nHost: agent\r\n\r\n").as_bytes())
        .unwrap();
    let mut b = String::new();
    c.read_to_string(&mut b).unwrap();
    b.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or(b)
}

#[test]
fn one_url_balances_over_the_replicas() {
    if !engine() {
        return;
    }
    let port = free_port();
    let s = TestStack::new("gw", "");
    write_with_gateway(
        &s,
        port,
        &service("web", "    replicas: 3\n    route: { path: / }\n"),
    );
    let out = s.run(&["up", "-d"]);
    assert!(out.status.success(), "{}", text(&out));
    let gw = format!("127.0.0.1:{port}");
    wait_until("three replicas are ready in the gateway", || ready(&s) == 3);

    let ps = s.run(&["ps"]);
    assert!(
        String::from_utf8_lossy(&ps.stdout).contains(&format!("gateway: http://{gw}")),
        "{}",
        text(&ps)
    );
    let table = s.run(&["routes"]);
    let t = String::from_utf8_lossy(&table.stdout);
    assert!(
        t.contains("*/") && t.contains("p2c") && t.matches("ready").count() == 3,
        "{t}"
    );

    let mut seen: BTreeMap<String, u32> = BTreeMap::new();
    for _ in 0..60 {
        let r = get(&gw, "/");
        assert_eq!(status(&r), "200", "{r}");
        let who = r
            .split("hello from ")
            .nth(1)
            .unwrap()
            .split(' ')
            .next()
            .unwrap();
        *seen.entry(who.to_string()).or_default() += 1;
    }
    assert_eq!(seen.len(), 3, "every replica answers: {seen:?}");

    let m = agent_get(&s, "/metrics");
    let parsed = prometheus_parse::Scrape::parse(m.lines().map(|l| Ok(l.to_string()))).unwrap();
    let ok: f64 = parsed
        .samples
        .iter()
        .filter(|x| x.metric == "tug_gateway_requests_total" && x.labels.get("code") == Some("2xx"))
        .map(|x| match x.value {
            prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Untyped(v) => v,
            _ => 0.0,
        })
        .sum();
    assert!(ok >= 60.0, "{m}");

    // No replica left: the route answers 503 with Retry-After, not 404.
    let out = s.run(&["scale", "web=0"]);
    assert!(out.status.success(), "{}", text(&out));
    wait_until("the pool is empty", || ready(&s) == 0);
    let r = get(&gw, "/");
    assert_eq!(status(&r), "503", "{r}");
    assert!(r.to_lowercase().contains("retry-after: 1"), "{r}");

    let out = s.run(&["down"]);
    assert!(out.status.success(), "{}", text(&out));
    wait_until("the gateway stops listening", || {
        std::net::TcpStream::connect(&gw).is_err()
    });
}

#[test]
fn rolling_update_under_load_loses_no_request() {
    if !engine() {
        return;
    }
    let port = free_port();
    let s = TestStack::new("gwroll", "");
    let web = |v: &str| {
        service(
            "web",
            &format!("    replicas: 3\n    route: {{ path: / }}\n    env: {{ VERSION: '{v}' }}\n"),
        )
    };
    write_with_gateway(&s, port, &web("1"));
    let out = s.run(&["up", "-d"]);
    assert!(out.status.success(), "{}", text(&out));
    wait_until("three replicas are ready in the gateway", || ready(&s) == 3);
    let gw = format!("127.0.0.1:{port}");
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicU32::new(0)), Arc::new(AtomicU32::new(0)));
    let v2 = Arc::new(AtomicU32::new(0));
    let loops: Vec<_> = (0..4)
        .map(|_| {
            let (stop, ok, failed, v2, gw) = (
                stop.clone(),
                ok.clone(),
                failed.clone(),
                v2.clone(),
                gw.clone(),
            );
            std::thread::spawn(move || {
                let mut failures = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let r = get(&gw, "/");
                    if status(&r) == "200" {
                        ok.fetch_add(1, Ordering::Relaxed);
                        if r.contains("(version 2)") {
                            v2.fetch_add(1, Ordering::Relaxed);
                        }
                    } else {
                        failed.fetch_add(1, Ordering::Relaxed);
                        failures.push(r.lines().next().unwrap_or("no answer").to_string());
                    }
                }
                failures
            })
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(500));
    write_with_gateway(&s, port, &web("2"));
    let out = s.run(&["up", "-d"]);
    assert!(out.status.success(), "{}", text(&out));
    wait_until("the new replicas are ready in the gateway", || {
        ready(&s) == 3
    });
    std::thread::sleep(std::time::Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    let failures: Vec<String> = loops.into_iter().flat_map(|l| l.join().unwrap()).collect();
    eprintln!(
        "rolling update through the gateway: {} ok, {} failed, {} answered by version 2",
        ok.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed),
        v2.load(Ordering::Relaxed)
    );
    assert!(
        v2.load(Ordering::Relaxed) > 0,
        "the update reached the gateway"
    );
    assert!(failures.is_empty(), "failed requests: {failures:?}");
}

/// Replicas that, like Go's `Shutdown`, wait for every client connection to
/// close before they exit: in a rolling update the gateway closes its
/// keep-alive connections to each retired replica, so each exits by itself
/// (code 0) well inside its 30 s grace period instead of being killed (137).
#[test]
fn retired_replicas_waiting_on_idle_connections_exit_by_themselves() {
    if !engine() {
        return;
    }
    let port = free_port();
    let s = TestStack::new("gwidle", "");
    let web = |v: &str| {
        service(
            "web",
            &format!(
                "    replicas: 2\n    route: {{ path: / }}\n    env: {{ VERSION: '{v}', HELLO_WAIT_CONNECTIONS: '1' }}\n"
            ),
        )
        .replace("stop_grace_period: 2s", "stop_grace_period: 30s")
    };
    write_with_gateway(&s, port, &web("1"));
    let out = s.run(&["up", "-d"]);
    assert!(out.status.success(), "{}", text(&out));
    wait_until("two replicas are ready in the gateway", || ready(&s) == 2);
    let gw = format!("127.0.0.1:{port}");
    // Both replicas hold pooled keep-alive connections from the gateway.
    for _ in 0..20 {
        assert_eq!(status(&get(&gw, "/")), "200");
    }
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 1;
    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let (stop, gw) = (stop.clone(), gw.clone());
        std::thread::spawn(move || {
            let mut failed = 0;
            while !stop.load(Ordering::Relaxed) {
                if status(&get(&gw, "/")) != "200" {
                    failed += 1;
                }
            }
            failed
        })
    };
    write_with_gateway(&s, port, &web("2"));
    let out = s.run(&["up", "-d"]);
    assert!(out.status.success(), "{}", text(&out));
    stop.store(true, Ordering::Relaxed);
    assert_eq!(load.join().unwrap(), 0, "no request failed");
    let until = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 1;
    let out = s
        .docker()
        .args([
            "events",
            "--since",
            &since.to_string(),
            "--until",
            &until.to_string(),
            "--filter",
            &format!("label=dev.tug.stack={}", s.name),
            "--filter",
            "event=die",
            "--format",
            "{{.Actor.Attributes.exitCode}}",
        ])
        .output()
        .unwrap();
    let codes = String::from_utf8_lossy(&out.stdout).to_string();
    let codes: Vec<&str> = codes.lines().collect();
    assert_eq!(
        codes,
        ["0", "0"],
        "each retired replica stopped by itself once the gateway let go of its connections"
    );
}
