//! Grafana dashboards over the agent's metrics, and the Prometheus scrape
//! configuration that collects them: what `tug observe grafana` and `tug
//! observe prometheus` write.
//!
//! Dashboards are data ([`all`]): each panel is a title, a unit and its
//! PromQL queries, written with one helper per query shape (a sum, a rate,
//! an increase, a quantile, a mean). Queries use the Grafana variables `$stack`,
//! `$service` (a regex, "all" is `.*`), `$__rate_interval` and `$__range`.
//!
//! ```
//! let files = tug_observe::grafana::dashboards();
//! assert!(files.iter().any(|(name, _)| name == "tug-overview.json"));
//! let prov = tug_observe::grafana::provisioning("/var/lib/grafana/dashboards/tug", "http://127.0.0.1:9090");
//! assert!(prov.datasources.contains("uid: tug-prometheus"));
//! ```

use serde_json::{json, Value};

/// The uid of the Prometheus datasource the dashboards query.
pub const DATASOURCE_UID: &str = "tug-prometheus";

pub struct Panel {
    pub title: &'static str,
    /// A Grafana unit id: `s`, `bytes`, `Bps`, `percentunit`, `reqps`, `short`.
    pub unit: &'static str,
    /// (legend, PromQL)
    pub queries: Vec<(&'static str, String)>,
}

pub struct Dashboard {
    pub uid: &'static str,
    pub title: &'static str,
    pub panels: Vec<Panel>,
}

fn panel(title: &'static str, unit: &'static str, queries: Vec<(&'static str, String)>) -> Panel {
    Panel {
        title,
        unit,
        queries,
    }
}

/// The series of `metric` in the chosen stack, narrowed by `extra`
/// matchers (`service=~"$service"`).
fn series(metric: &str, extra: &str) -> String {
    if extra.is_empty() {
        format!(r#"{metric}{{stack="$stack"}}"#)
    } else {
        format!(r#"{metric}{{stack="$stack", {extra}}}"#)
    }
}

/// A gauge summed by the labels `by`.
fn total(metric: &str, extra: &str, by: &str) -> String {
    format!("sum by ({by}) ({})", series(metric, extra))
}

/// A counter's per-second rate, summed by `by`.
fn rate(metric: &str, extra: &str, by: &str) -> String {
    format!(
        "sum by ({by}) (rate({}[$__rate_interval]))",
        series(metric, extra)
    )
}

/// A counter's increase over the dashboard's range, summed by `by`.
fn increase(metric: &str, extra: &str, by: &str) -> String {
    format!(
        "sum by ({by}) (increase({}[$__range]))",
        series(metric, extra)
    )
}

/// Quantile `q` of a histogram (`metric` without `_bucket`) by `by`.
fn quantile(q: f64, metric: &str, extra: &str, by: &str) -> String {
    format!(
        "histogram_quantile({q}, sum by ({by}, le) (rate({}[$__rate_interval])))",
        series(&format!("{metric}_bucket"), extra)
    )
}

/// A histogram's mean since the agent started, by `by`.
fn mean(metric: &str, by: &str) -> String {
    format!(
        "{} / {}",
        total(&format!("{metric}_sum"), "", by),
        total(&format!("{metric}_count"), "", by)
    )
}

const SERVICE: &str = r#"service=~"$service""#;

/// Every dashboard: each panel a title, a unit and its queries.
pub fn all() -> Vec<Dashboard> {
    vec![
        Dashboard {
            uid: "tug-overview",
            title: "tug: stack overview",
            panels: vec![
                panel(
                    "Replicas by state",
                    "short",
                    vec![(
                        "{{service}} {{state}}",
                        total("tug_replicas", "", "service, state"),
                    )],
                ),
                panel(
                    "Restarts and replacements",
                    "short",
                    vec![
                        (
                            "restarts {{service}}",
                            increase("tug_replica_restarts_total", "", "service"),
                        ),
                        (
                            "replacements {{service}}",
                            increase("tug_replica_replacements_total", "", "service"),
                        ),
                    ],
                ),
                panel(
                    "CPU by service (cores)",
                    "short",
                    vec![(
                        "{{service}}",
                        rate("tug_replica_cpu_seconds_total", "", "service"),
                    )],
                ),
                panel(
                    "Memory by service",
                    "bytes",
                    vec![(
                        "{{service}}",
                        total("tug_replica_memory_bytes", "", "service"),
                    )],
                ),
                panel(
                    "Network by service",
                    "Bps",
                    vec![
                        (
                            "in {{service}}",
                            rate("tug_replica_network_receive_bytes_total", "", "service"),
                        ),
                        (
                            "out {{service}}",
                            rate("tug_replica_network_transmit_bytes_total", "", "service"),
                        ),
                    ],
                ),
                panel(
                    "Health checks by result",
                    "short",
                    vec![(
                        "{{service}} {{result}}",
                        rate("tug_health_checks_total", "", "service, result"),
                    )],
                ),
                panel(
                    "Requests through the gateway",
                    "reqps",
                    vec![(
                        "{{service}} {{code}}",
                        rate("tug_gateway_requests_total", "", "service, code"),
                    )],
                ),
            ],
        },
        Dashboard {
            uid: "tug-service",
            title: "tug: service golden signals",
            panels: vec![
                panel(
                    "Traffic",
                    "reqps",
                    vec![(
                        "{{service}}",
                        rate("tug_gateway_requests_total", SERVICE, "service"),
                    )],
                ),
                panel(
                    "Errors (5xx and 503 without a replica)",
                    "reqps",
                    vec![
                        (
                            "5xx {{service}}",
                            rate(
                                "tug_gateway_requests_total",
                                &format!(r#"{SERVICE}, code="5xx""#),
                                "service",
                            ),
                        ),
                        (
                            "unavailable {{service}}",
                            rate("tug_gateway_unavailable_total", SERVICE, "service"),
                        ),
                    ],
                ),
                panel(
                    "Latency",
                    "s",
                    vec![
                        (
                            "p50 {{service}}",
                            quantile(
                                0.5,
                                "tug_gateway_request_duration_seconds",
                                SERVICE,
                                "service",
                            ),
                        ),
                        (
                            "p99 {{service}}",
                            quantile(
                                0.99,
                                "tug_gateway_request_duration_seconds",
                                SERVICE,
                                "service",
                            ),
                        ),
                    ],
                ),
                panel(
                    "Saturation: requests in flight",
                    "short",
                    vec![(
                        "{{replica}}",
                        total("tug_gateway_requests_in_flight", SERVICE, "replica"),
                    )],
                ),
                panel(
                    "Saturation: CPU per replica (cores)",
                    "short",
                    vec![(
                        "{{replica}}",
                        format!(
                            "rate({}[$__rate_interval])",
                            series("tug_replica_cpu_seconds_total", SERVICE)
                        ),
                    )],
                ),
                panel(
                    "Saturation: memory per replica",
                    "bytes",
                    vec![("{{replica}}", series("tug_replica_memory_bytes", SERVICE))],
                ),
                panel(
                    "Health check latency (p95)",
                    "s",
                    vec![(
                        "{{service}}",
                        quantile(
                            0.95,
                            "tug_health_check_duration_seconds",
                            SERVICE,
                            "service",
                        ),
                    )],
                ),
            ],
        },
        Dashboard {
            uid: "tug-rollouts",
            title: "tug: rollouts and scaling",
            panels: vec![
                panel(
                    "Rollouts by outcome",
                    "short",
                    vec![("{{outcome}}", increase("tug_rollouts_total", "", "outcome"))],
                ),
                panel(
                    "Rollout duration",
                    "s",
                    vec![(
                        "mean {{outcome}}",
                        mean("tug_rollout_duration_seconds", "outcome"),
                    )],
                ),
                panel(
                    "Scale decisions",
                    "short",
                    vec![(
                        "{{service}} {{direction}}",
                        increase("tug_scale_decisions_total", "", "service, direction"),
                    )],
                ),
                panel(
                    "Running replicas",
                    "short",
                    vec![(
                        "{{service}}",
                        total("tug_replicas", r#"state="running""#, "service"),
                    )],
                ),
                panel(
                    "Image builds",
                    "short",
                    vec![(
                        "{{service}} {{outcome}}",
                        total("tug_builds_total", "", "service, outcome"),
                    )],
                ),
                panel(
                    "Image build time (mean)",
                    "s",
                    vec![("{{service}}", mean("tug_build_duration_seconds", "service"))],
                ),
                panel(
                    "Pipeline runs by outcome",
                    "short",
                    vec![(
                        "{{pipeline}} {{outcome}}",
                        increase("tug_pipeline_runs_total", "", "pipeline, outcome"),
                    )],
                ),
                panel(
                    "Pipeline run and job time (mean)",
                    "s",
                    vec![
                        (
                            "{{pipeline}}",
                            mean("tug_pipeline_duration_seconds", "pipeline"),
                        ),
                        (
                            "{{pipeline}} / {{job}}",
                            mean("tug_pipeline_job_duration_seconds", "pipeline, job"),
                        ),
                    ],
                ),
            ],
        },
        Dashboard {
            uid: "tug-cold-starts",
            title: "tug: cold starts",
            panels: vec![
                panel(
                    "Cold starts",
                    "short",
                    vec![(
                        "{{service}}",
                        increase("tug_cold_start_seconds_count", "", "service"),
                    )],
                ),
                panel(
                    "Cold start time (p95)",
                    "s",
                    vec![(
                        "{{service}}",
                        quantile(0.95, "tug_cold_start_seconds", "", "service"),
                    )],
                ),
            ],
        },
    ]
}

fn dashboard_json(d: &Dashboard) -> Value {
    let ds = json!({ "type": "prometheus", "uid": DATASOURCE_UID });
    let panels: Vec<Value> = d
        .panels
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let targets: Vec<Value> = p
                .queries
                .iter()
                .enumerate()
                .map(|(j, (legend, expr))| {
                    json!({
                        "datasource": ds,
                        "expr": expr,
                        "legendFormat": legend,
                        "refId": char::from(b'A' + j as u8).to_string(),
                    })
                })
                .collect();
            json!({
                "id": i + 1,
                "type": "timeseries",
                "title": p.title,
                "datasource": ds,
                "gridPos": { "h": 8, "w": 12, "x": (i % 2) * 12, "y": (i / 2) * 8 },
                "fieldConfig": { "defaults": { "unit": p.unit }, "overrides": [] },
                "options": { "legend": { "displayMode": "list", "placement": "bottom" } },
                "targets": targets,
            })
        })
        .collect();
    let uses_service = d
        .panels
        .iter()
        .any(|p| p.queries.iter().any(|(_, q)| q.contains("$service")));
    let mut variables = vec![json!({
        "name": "stack",
        "label": "Stack",
        "type": "query",
        "datasource": ds,
        "query": { "query": "label_values(tug_replicas, stack)", "refId": "stack" },
        "refresh": 2,
    })];
    if uses_service {
        variables.push(json!({
            "name": "service",
            "label": "Service",
            "type": "query",
            "datasource": ds,
            "query": { "query": "label_values(tug_replicas{stack=\"$stack\"}, service)", "refId": "service" },
            "refresh": 2,
            "multi": true,
            "includeAll": true,
            "allValue": ".*",
        }));
    }
    json!({
        "uid": d.uid,
        "title": d.title,
        "tags": ["tug"],
        "timezone": "browser",
        "schemaVersion": 39,
        "version": 1,
        "editable": true,
        "refresh": "30s",
        "time": { "from": "now-1h", "to": "now" },
        "templating": { "list": variables },
        "panels": panels,
    })
}

/// Every dashboard as (file name, Grafana JSON).
pub fn dashboards() -> Vec<(String, String)> {
    all()
        .iter()
        .map(|d| {
            let text = serde_json::to_string_pretty(&dashboard_json(d)).unwrap_or_default();
            (format!("{}.json", d.uid), text + "\n")
        })
        .collect()
}

/// Grafana's provisioning files.
pub struct Provisioning {
    /// `provisioning/dashboards/tug.yaml`: a file provider reading `dir`.
    pub dashboards: String,
    /// `provisioning/datasources/tug.yaml`: the Prometheus at `prometheus`.
    pub datasources: String,
}

pub fn provisioning(dir: &str, prometheus: &str) -> Provisioning {
    Provisioning {
        dashboards: format!(
            "# Grafana dashboard provider for tug's dashboards.\n\
             apiVersion: 1\n\
             providers:\n  - name: tug\n    folder: tug\n    type: file\n    \
             disableDeletion: false\n    allowUiUpdates: true\n    \
             options:\n      path: {}\n",
            yaml_str(dir)
        ),
        datasources: format!(
            "# The Prometheus that scrapes tug's agent (see `tug observe prometheus`).\n\
             apiVersion: 1\n\
             datasources:\n  - name: tug Prometheus\n    uid: {DATASOURCE_UID}\n    \
             type: prometheus\n    access: proxy\n    url: {}\n",
            yaml_str(prometheus)
        ),
    }
}

/// A YAML (and JSON) double-quoted string.
fn yaml_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

/// Where and how to scrape one stack's agent.
pub struct ScrapeTarget<'a> {
    pub stack: &'a str,
    /// `host:port` of the agent's HTTP listener.
    pub address: &'a str,
    /// The API token's file, when the agent listens beyond loopback.
    pub token_file: Option<&'a str>,
    /// Whether the port is chosen anew at each start of the agent.
    pub ephemeral: bool,
    pub interval: &'a str,
}

/// A complete Prometheus configuration scraping the agent.
pub fn scrape_config(t: &ScrapeTarget) -> String {
    let mut out = format!(
        "# Prometheus scrape configuration for tug stack {}.\n",
        t.stack
    );
    if t.ephemeral {
        out.push_str(&format!(
            "# {} is an ephemeral port: the agent picks another when it restarts.\n\
             # Fix it with `dashboard: {{ listen: \"127.0.0.1:9464\" }}` in tug.yaml,\n\
             # then write this file again.\n",
            t.address
        ));
    }
    out.push_str(&format!(
        "global:\n  scrape_interval: {i}\n  evaluation_interval: {i}\n\
         scrape_configs:\n  - job_name: {job}\n    metrics_path: /metrics\n    \
         static_configs:\n      - targets: [{addr}]\n",
        i = t.interval,
        job = yaml_str(&format!("tug-{}", t.stack)),
        addr = yaml_str(t.address),
    ));
    if let Some(f) = t.token_file {
        out.push_str(&format!(
            "    # Beyond loopback the agent requires its API token.\n    \
             authorization:\n      type: Bearer\n      credentials_file: {}\n",
            yaml_str(f)
        ));
    }
    out
}
