//! Scale to zero and request-driven autoscaling through the agent's gateway,
//! with real replicas of examples/hello: an idle service stops, the next
//! request starts it and is answered; the activator's queue and timeout;
//! requests in flight scale a service up. On Docker and the process runtime.

mod common;
use common::*;
use std::time::{Duration, Instant};

fn write_with_gateway(s: &TestStack, port: u16, services: &str) {
    let yaml = format!(
        "name: {}\ngateway: {{ listen: ['127.0.0.1:{port}'], access_log: json }}\nservices:\n{}",
        s.name,
        services.replace("WORKSPACE", &workspace().display().to_string())
    );
    std::fs::write(s.file(), yaml).unwrap();
}

/// Writes the stack with its gateway and brings it up, the autoscaler
/// deciding every `interval` rather than at its slower default.
fn up_autoscaled(s: &TestStack, port: u16, services: &str, interval: &str) {
    write_with_gateway(s, port, services);
    let up = s
        .command(&["up", "-d"])
        .env("TUG_AUTOSCALE_INTERVAL", interval)
        .output()
        .unwrap();
    assert!(up.status.success(), "{}", text(&up));
}

fn running(s: &TestStack, service: &str) -> usize {
    s.ps()
        .iter()
        .filter(|r| r["service"] == service && r["state"] == "running")
        .count()
}

fn status(r: &str) -> &str {
    r.split(' ').nth(1).unwrap_or("")
}

/// The agent's events, newest last.
fn events(s: &TestStack) -> Vec<serde_json::Value> {
    let out = s.run(&["events", "-o", "json"]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .flat_map(|v| match v.as_array() {
            Some(a) => a.clone(),
            None => vec![v],
        })
        .map(|r| r.get("event").cloned().unwrap_or(r))
        .collect()
}

fn autoscaled(s: &TestStack, reason: &str) -> Option<serde_json::Value> {
    events(s)
        .into_iter()
        .find(|e| e["event"] == "autoscaled" && e["reason"] == reason)
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

/// Observations of `tug_cold_start_seconds` for `service`.
fn cold_starts(s: &TestStack, service: &str) -> f64 {
    let m = agent_get(s, "/metrics");
    let parsed = prometheus_parse::Scrape::parse(m.lines().map(|l| Ok(l.to_string()))).unwrap();
    parsed
        .samples
        .iter()
        .filter(|x| {
            x.metric == "tug_cold_start_seconds" && x.labels.get("service") == Some(service)
        })
        .map(|x| match &x.value {
            prometheus_parse::Value::Histogram(h) => h
                .iter()
                .filter(|b| b.less_than.is_infinite())
                .map(|b| b.count)
                .sum(),
            _ => 0.0,
        })
        .sum()
}

fn wait_for(what: &str, secs: u64, s: &TestStack, mut f: impl FnMut() -> bool) {
    let until = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(
            Instant::now() < until,
            "timed out waiting until {what}\n{}",
            text(&s.run(&["events"]))
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Idle for `idle:` → stopped; a request → woken, held, answered 200.
fn idle_stops_and_a_request_wakes(runtime: Option<&'static str>) {
    let port = free_port();
    let s = TestStack::on(runtime, "zero", "");
    up_autoscaled(
        &s,
        port,
        &service(
            "web",
            "    route: { path: / }\n    autoscale: { min: 0, max: 2, idle: 2s, target_inflight: 50 }\n",
        ),
        "500ms",
    );
    let gw = format!("127.0.0.1:{port}");
    let first = web_id(&s).expect("the replica's id");

    // No request for 2 s: scaled to zero through the recorded path.
    wait_for("the idle service is stopped", 60, &s, || {
        running(&s, "web") == 0
    });
    let idle = autoscaled(&s, "idle").unwrap_or_else(|| {
        panic!(
            "no idle decision: {:#?} {}",
            events(&s),
            text(&s.run(&["ps"]))
        )
    });
    assert_eq!(
        (idle["current"].as_u64(), idle["desired"].as_u64()),
        (Some(1), Some(0))
    );
    wait_for("the scale to zero is recorded", 20, &s, || {
        text(&s.run(&["history"])).contains("autoscale web=0")
    });
    wait_for("ps shows the service idle", 20, &s, || {
        let ps = text(&s.run(&["ps"]));
        ps.contains("0/0") && ps.contains("idle")
    });
    // The agent's snapshot carries the state; no replica stands for it.
    let snap: serde_json::Value = serde_json::from_str(&agent_get(&s, "/v1/ps")).unwrap();
    assert_eq!(snap["services"]["web"], "idle", "{snap}");
    // Its replica is kept, stopped, for the next wake.
    assert_eq!(web_id(&s).as_deref(), Some(first.as_str()));

    // The next request is held while a replica starts, then answered.
    let t0 = Instant::now();
    let r = get(&gw, "/");
    let cold = t0.elapsed();
    assert_eq!(status(&r), "200", "{r}");
    assert!(r.contains("hello from web-"), "{r}");
    eprintln!("cold start through the gateway ({runtime:?}): {cold:?}");
    assert_eq!(running(&s, "web"), 1);
    assert_eq!(
        web_id(&s).as_deref(),
        Some(first.as_str()),
        "woken by starting the kept replica, not by creating one"
    );
    let woken = autoscaled(&s, "woken").expect("a woken decision");
    assert_eq!(
        (woken["current"].as_u64(), woken["desired"].as_u64()),
        (Some(0), Some(1))
    );
    assert!(cold_starts(&s, "web") >= 1.0);
    let log =
        std::fs::read_to_string(s.state().join(&s.name).join("access.log")).unwrap_or_default();
    assert!(
        log.lines().any(|l| l.contains("\"cold_start\":true")),
        "{log}"
    );
    let snap: serde_json::Value = serde_json::from_str(&agent_get(&s, "/v1/ps")).unwrap();
    assert!(snap.get("services").is_none(), "{snap}");
    // Awake, the next request goes straight through.
    assert_eq!(status(&get(&gw, "/")), "200");
    // And the service goes back to zero once idle again.
    wait_for("the service is stopped again", 60, &s, || {
        running(&s, "web") == 0
    });
    // A changed spec replaces the kept replica.
    up_autoscaled(
        &s,
        port,
        &service(
            "web",
            "    route: { path: / }\n    env: { VERSION: '2' }\n    autoscale: { min: 0, max: 2, idle: 2s, target_inflight: 50 }\n",
        ),
        "500ms",
    );
    let r = get(&gw, "/");
    assert!(r.contains("(version 2)"), "{r}");
    let replaced = web_id(&s).expect("the new replica's id");
    assert_ne!(replaced, first, "a changed spec makes a new replica");
    // `tug down` takes the stopped one too: nothing of the stack is left.
    wait_for("the service is idle again", 60, &s, || {
        running(&s, "web") == 0
    });
    let down = s.run(&["down"]);
    assert!(down.status.success(), "{}", text(&down));
    if runtime.is_none() {
        let left = s
            .docker()
            .args([
                "ps",
                "-aq",
                "--filter",
                &format!("label=dev.tug.stack={}", s.name),
            ])
            .output()
            .unwrap();
        assert!(left.stdout.is_empty(), "{}", text(&left));
    }
}

/// The id of the service's one replica, running or kept stopped.
fn web_id(s: &TestStack) -> Option<String> {
    let rows: Vec<String> = s
        .ps()
        .iter()
        .filter(|r| r["service"] == "web")
        .filter_map(|r| r["id"].as_str().map(str::to_string))
        .collect();
    assert!(rows.len() <= 1, "one replica at most: {rows:?}");
    rows.into_iter().next()
}

#[test]
fn docker_idle_service_stops_and_a_request_wakes_it() {
    if !engine() {
        return;
    }
    idle_stops_and_a_request_wakes(None);
}

#[test]
fn process_idle_service_stops_and_a_request_wakes_it() {
    idle_stops_and_a_request_wakes(Some("process"));
}

/// A service that never gets healthy: held requests time out with 503, and
/// past `max_pending` a request is turned away at once.
#[test]
fn activator_queue_overflow_and_timeout_answer_503() {
    if !engine() {
        return;
    }
    let port = free_port();
    let s = TestStack::new("zerofull", "");
    write_with_gateway(
        &s,
        port,
        &service(
            "web",
            "    replicas: 0\n    env: { HELLO_UNHEALTHY: '1' }\n    route: { path: / }\n    autoscale: { min: 0, max: 1, idle: 1m, max_pending: 1, wake_timeout: 3s }\n",
        ),
    );
    let up = s.run(&["up", "-d"]);
    assert!(up.status.success(), "{}", text(&up));
    assert_eq!(running(&s, "web"), 0);
    let gw = format!("127.0.0.1:{port}");
    let held = {
        let gw = gw.clone();
        std::thread::spawn(move || {
            let t0 = Instant::now();
            (get(&gw, "/"), t0.elapsed())
        })
    };
    std::thread::sleep(Duration::from_millis(500));
    let t0 = Instant::now();
    let r = get(&gw, "/");
    assert_eq!(status(&r), "503", "{r}");
    assert!(r.to_lowercase().contains("retry-after: 1"), "{r}");
    assert!(r.contains("too many requests are waiting"), "{r}");
    assert!(t0.elapsed() < Duration::from_secs(2), "turned away at once");
    let (r, took) = held.join().unwrap();
    assert_eq!(status(&r), "503", "{r}");
    assert!(r.contains("no replica became ready in time"), "{r}");
    assert!(took >= Duration::from_secs(3), "{took:?}");
    assert!(autoscaled(&s, "woken").is_some(), "the agent was asked");
}

/// Requests in flight, counted by the gateway, scale a service up.
#[test]
fn requests_in_flight_scale_up() {
    if !engine() {
        return;
    }
    let port = free_port();
    let s = TestStack::new("inflight", "");
    up_autoscaled(
        &s,
        port,
        &service(
            "web",
            "    route: { path: / }\n    autoscale: { min: 1, max: 3, target_inflight: 2 }\n",
        ),
        "1s",
    );
    assert_eq!(running(&s, "web"), 1);
    let gw = format!("127.0.0.1:{port}");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Eight requests in flight at a time against a target of two per replica.
    let load: Vec<_> = (0..8)
        .map(|_| {
            let (gw, stop) = (gw.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    get(&gw, "/slow/1000");
                }
            })
        })
        .collect();
    wait_for("three replicas run", 90, &s, || running(&s, "web") == 3);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for l in load {
        l.join().unwrap();
    }
    let up = events(&s)
        .into_iter()
        .find(|e| e["event"] == "autoscaled" && e["desired"].as_u64() > e["current"].as_u64())
        .expect("a scale-up decision");
    assert_eq!(up["metrics"][0]["metric"], "inflight");
    assert_eq!(up["metrics"][0]["target"], 2.0);
    assert!(up["metrics"][0]["value"].as_f64().unwrap() > 2.2, "{up}");
    assert!(text(&s.run(&["ps"])).contains("inflight"));
}
