//! The agent's metrics read by a real Prometheus (Debian's package, from
//! scripts/prometheus.sh): a stack of examples/hello replicas behind the
//! gateway on the real engine, scraped with the configuration `tug observe
//! prometheus` writes; every query of every dashboard `tug observe grafana`
//! writes must return data. Names and units go through prometheus-parse and
//! `promtool check metrics`.

mod common;

use common::*;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Series this stack does not feed: cold starts (scale to zero) and
/// pipeline runs (no pipeline runs here; their names are checked by
/// tug-observe's unit tests).
const NOT_EXPORTED_HERE: &[&str] = &["tug_cold_start_seconds", "tug_pipeline_"];

/// Prometheus and promtool, or a loud skip (a failure with
/// TUG_REQUIRE_PROMETHEUS=1).
fn prometheus() -> bool {
    let ok = ["prometheus", "promtool"].iter().all(|b| {
        Command::new(b)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    });
    if !ok {
        if std::env::var("TUG_REQUIRE_PROMETHEUS").is_ok_and(|v| v == "1") {
            panic!("TUG_REQUIRE_PROMETHEUS=1 but prometheus/promtool are missing: run scripts/prometheus.sh");
        }
        eprintln!("\n!!! SKIPPED: no prometheus; run scripts/prometheus.sh\n");
    }
    ok
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs a PromQL instant query; the number of series in the answer.
fn query(prom: &str, q: &str) -> Result<usize, String> {
    let enc: String = url::form_urlencoded::byte_serialize(q.as_bytes()).collect();
    let r = get(prom, &format!("/api/v1/query?query={enc}"));
    let body = r.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    let v: serde_json::Value = serde_json::from_str(body).map_err(|e| format!("{e}: {r}"))?;
    if v["status"] != "success" {
        return Err(format!("{q}: {v}"));
    }
    Ok(v["data"]["result"].as_array().map_or(0, |a| a.len()))
}

/// Every PromQL expression of the dashboards in `dir`, as (dashboard, panel, expr).
fn dashboard_queries(dir: &Path) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_none_or(|x| x != "json") {
            continue;
        }
        let d: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
        for panel in d["panels"].as_array().unwrap() {
            for t in panel["targets"].as_array().unwrap() {
                out.push((
                    d["uid"].as_str().unwrap().to_string(),
                    panel["title"].as_str().unwrap().to_string(),
                    t["expr"].as_str().unwrap().to_string(),
                ));
            }
        }
    }
    out
}

#[test]
fn prometheus_scrapes_the_agent_and_every_dashboard_query_has_data() {
    if !engine() || !prometheus() {
        return;
    }
    let gw_port = free_port();
    let s = TestStack::new("prom", "");
    let write = |version: &str| {
        let yaml = format!(
            "name: {}\ngateway: {{ listen: ['127.0.0.1:{gw_port}'] }}\nservices:\n{}",
            s.name,
            service(
                "web",
                &format!("    replicas: 2\n    route: {{ path: / }}\n    env: {{ VERSION: '{version}' }}\n")
            )
            .replace("WORKSPACE", &workspace().display().to_string())
        );
        std::fs::write(s.file(), yaml).unwrap();
    };
    let up = || {
        let out = s
            .command(&["up", "-d"])
            .env("TUG_METRICS_INTERVAL", "1")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out));
    };
    write("1");
    up();
    // A rolling update through the running agent: a rollout and an image on its bus.
    write("2");
    up();
    let gw = format!("127.0.0.1:{gw_port}");
    for _ in 0..40 {
        assert!(get(&gw, "/").contains("200 OK"));
    }

    // Names and units, read by a real parser and by promtool, once the
    // sampler has read the new replicas' resources.
    let wanted = [
        "tug_replicas",
        "tug_replica_restarts_total",
        "tug_health_checks_total",
        "tug_health_check_duration_seconds",
        "tug_rollouts_total",
        "tug_rollout_duration_seconds",
        "tug_builds_total",
        "tug_replica_cpu_seconds_total",
        "tug_replica_memory_bytes",
        "tug_replica_network_receive_bytes_total",
        "tug_gateway_requests_total",
    ];
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let (body, scrape) = loop {
        let m = s.run(&["metrics"]);
        assert!(m.status.success(), "{}", text(&m));
        let body = String::from_utf8(m.stdout.clone()).unwrap();
        let scrape =
            prometheus_parse::Scrape::parse(body.lines().map(|l| Ok(l.to_string()))).unwrap();
        let names: std::collections::BTreeSet<&str> =
            scrape.samples.iter().map(|x| x.metric.as_str()).collect();
        let missing: Vec<&str> = wanted
            .iter()
            .copied()
            .filter(|w| !names.contains(w))
            .collect();
        if missing.is_empty() {
            break (body, scrape);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{missing:?} missing from {names:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(500));
    };
    for x in &scrape.samples {
        assert!(x.metric.starts_with("tug_"), "{}", x.metric);
        assert_eq!(x.labels.get("stack"), Some(s.name.as_str()), "{}", x.metric);
        if let prometheus_parse::Value::Counter(_) = x.value {
            assert!(x.metric.ends_with("_total"), "{}", x.metric);
        }
    }
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        promtool
            .stdin
            .take()
            .unwrap()
            .write_all(body.as_bytes())
            .unwrap();
    }
    let checked = promtool.wait_with_output().unwrap();
    // promtool reads the classic text format, where an OpenMetrics counter's
    // `_total` sample looks like a metric of its own without help: that
    // finding is the format's, any other is ours.
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
    let problems: Vec<String> = said
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter(|l| {
            let Some(base) = l
                .strip_suffix(" no help text")
                .and_then(|n| n.strip_suffix("_total"))
            else {
                return true;
            };
            !body.contains(&format!("# TYPE {base} counter\n"))
        })
        .map(str::to_string)
        .collect();
    assert!(problems.is_empty(), "promtool check metrics: {problems:#?}");

    let json = s.run(&["metrics", "-o", "json"]);
    assert!(json.status.success(), "{}", text(&json));
    let samples: Vec<serde_json::Value> = serde_json::from_slice(&json.stdout).unwrap();
    let cpu: Vec<&serde_json::Value> = samples
        .iter()
        .filter(|x| {
            x["name"]
                .as_str()
                .is_some_and(|n| n.starts_with("tug_replica_cpu"))
        })
        .collect();
    assert!(
        cpu.iter()
            .any(|x| x["name"] == "tug_replica_cpu_seconds_total"
                && x["type"] == "counter"
                && x["labels"]["service"] == "web"),
        "{cpu:#?}"
    );

    // The scrape configuration, checked by promtool, then run.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("prometheus.yml");
    let out = s.run(&[
        "observe",
        "prometheus",
        "--out",
        config.to_str().unwrap(),
        "--interval",
        "1s",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let yaml = std::fs::read_to_string(&config).unwrap();
    assert!(
        yaml.contains("ephemeral port") && yaml.contains("dashboard"),
        "{yaml}"
    );
    assert!(
        !yaml.contains("authorization"),
        "loopback needs no token: {yaml}"
    );
    let checked = Command::new("promtool")
        .args(["check", "config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(checked.status.success(), "promtool: {}", text(&checked));
    let prom = format!("127.0.0.1:{}", free_port());
    let _server = Killed(
        Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={prom}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_until("prometheus scrapes the agent", || {
        query(&prom, &format!(r#"up{{job="tug-{}"}} == 1"#, s.name)).unwrap_or(0) == 1
    });

    let gdir = dir.path().join("grafana");
    let out = s.run(&["observe", "grafana", "--out", gdir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    for f in [
        "provisioning/dashboards/tug.yaml",
        "provisioning/datasources/tug.yaml",
    ] {
        assert!(gdir.join(f).is_file(), "{f}");
    }
    let queries = dashboard_queries(&gdir);
    let dashboards: std::collections::BTreeSet<_> = queries.iter().map(|q| q.0.as_str()).collect();
    assert_eq!(dashboards.len(), 4, "{dashboards:?}");

    // Rates need a few scrapes: keep asking until every query answers, a while at most.
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut missing: Vec<String>;
    loop {
        for _ in 0..5 {
            get(&gw, "/");
        }
        missing = Vec::new();
        for (d, panel, expr) in &queries {
            if NOT_EXPORTED_HERE.iter().any(|m| expr.contains(m)) {
                continue;
            }
            let q = expr
                .replace("$stack", &s.name)
                .replace("$service", ".*")
                .replace("$__rate_interval", "30s")
                .replace("$__range", "10m");
            match query(&prom, &q) {
                Ok(n) if n > 0 => {}
                Ok(_) => missing.push(format!("{d} / {panel}: {q}")),
                Err(e) => panic!("{d} / {panel}: {e}"),
            }
        }
        if missing.is_empty() || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_secs(2));
    }
    assert!(
        missing.is_empty(),
        "queries without data:\n{}",
        missing.join("\n")
    );

    let out = s.run(&["down"]);
    assert!(out.status.success(), "{}", text(&out));
}
