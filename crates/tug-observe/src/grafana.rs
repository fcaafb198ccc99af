//! Grafana dashboards over the agent's metrics, and the Prometheus scrape
//! configuration that collects them: what `tug observe grafana` and `tug
//! observe prometheus` write.
//!
//! Dashboards are data ([`DASHBOARDS`]): each panel is a title, a unit and
//! its PromQL queries. Queries use the Grafana variables `$stack`,
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
    pub queries: &'static [(&'static str, &'static str)],
}

pub struct Dashboard {
    pub uid: &'static str,
    pub title: &'static str,
    pub panels: &'static [Panel],
}

pub const DASHBOARDS: &[Dashboard] = &[
    Dashboard {
        uid: "tug-overview",
        title: "tug: stack overview",
        panels: &[
            Panel {
                title: "Replicas by state",
                unit: "short",
                queries: &[(
                    "{{service}} {{state}}",
                    r#"sum by (service, state) (tug_replicas{stack="$stack"})"#,
                )],
            },
            Panel {
                title: "Restarts and replacements",
                unit: "short",
                queries: &[
                    (
                        "restarts {{service}}",
                        r#"sum by (service) (increase(tug_replica_restarts_total{stack="$stack"}[$__range]))"#,
                    ),
                    (
                        "replacements {{service}}",
                        r#"sum by (service) (increase(tug_replica_replacements_total{stack="$stack"}[$__range]))"#,
                    ),
                ],
            },
            Panel {
                title: "CPU by service (cores)",
                unit: "short",
                queries: &[(
                    "{{service}}",
                    r#"sum by (service) (rate(tug_replica_cpu_seconds_total{stack="$stack"}[$__rate_interval]))"#,
                )],
            },
            Panel {
                title: "Memory by service",
                unit: "bytes",
                queries: &[(
                    "{{service}}",
                    r#"sum by (service) (tug_replica_memory_bytes{stack="$stack"})"#,
                )],
            },
            Panel {
                title: "Network by service",
                unit: "Bps",
                queries: &[
                    (
                        "in {{service}}",
                        r#"sum by (service) (rate(tug_replica_network_receive_bytes_total{stack="$stack"}[$__rate_interval]))"#,
                    ),
                    (
                        "out {{service}}",
                        r#"sum by (service) (rate(tug_replica_network_transmit_bytes_total{stack="$stack"}[$__rate_interval]))"#,
                    ),
                ],
            },
            Panel {
                title: "Health checks by result",
                unit: "short",
                queries: &[(
                    "{{service}} {{result}}",
                    r#"sum by (service, result) (rate(tug_health_checks_total{stack="$stack"}[$__rate_interval]))"#,
                )],
            },
            Panel {
                title: "Requests through the gateway",
                unit: "reqps",
                queries: &[(
                    "{{service}} {{code}}",
                    r#"sum by (service, code) (rate(tug_gateway_requests_total{stack="$stack"}[$__rate_interval]))"#,
                )],
            },
        ],
    },
    Dashboard {
        uid: "tug-service",
        title: "tug: service golden signals",
        panels: &[
            Panel {
                title: "Traffic",
                unit: "reqps",
                queries: &[(
                    "{{service}}",
                    r#"sum by (service) (rate(tug_gateway_requests_total{stack="$stack", service=~"$service"}[$__rate_interval]))"#,
                )],
            },
            Panel {
                title: "Errors (5xx and 503 without a replica)",
                unit: "reqps",
                queries: &[
                    (
                        "5xx {{service}}",
                        r#"sum by (service) (rate(tug_gateway_requests_total{stack="$stack", service=~"$service", code="5xx"}[$__rate_interval]))"#,
                    ),
                    (
                        "unavailable {{service}}",
                        r#"sum by (service) (rate(tug_gateway_unavailable_total{stack="$stack", service=~"$service"}[$__rate_interval]))"#,
                    ),
                ],
            },
            Panel {
                title: "Latency",
                unit: "s",
                queries: &[
                    (
                        "p50 {{service}}",
                        r#"histogram_quantile(0.5, sum by (service, le) (rate(tug_gateway_request_duration_seconds_bucket{stack="$stack", service=~"$service"}[$__rate_interval])))"#,
                    ),
                    (
                        "p99 {{service}}",
                        r#"histogram_quantile(0.99, sum by (service, le) (rate(tug_gateway_request_duration_seconds_bucket{stack="$stack", service=~"$service"}[$__rate_interval])))"#,
                    ),
                ],
            },
            Panel {
                title: "Saturation: requests in flight",
                unit: "short",
                queries: &[(
                    "{{replica}}",
                    r#"sum by (replica) (tug_gateway_requests_in_flight{stack="$stack", service=~"$service"})"#,
                )],
            },
            Panel {
                title: "Saturation: CPU per replica (cores)",
                unit: "short",
                queries: &[(
                    "{{replica}}",
                    r#"rate(tug_replica_cpu_seconds_total{stack="$stack", service=~"$service"}[$__rate_interval])"#,
                )],
            },
            Panel {
                title: "Saturation: memory per replica",
                unit: "bytes",
                queries: &[(
                    "{{replica}}",
                    r#"tug_replica_memory_bytes{stack="$stack", service=~"$service"}"#,
                )],
            },
            Panel {
                title: "Health check latency (p95)",
                unit: "s",
                queries: &[(
                    "{{service}}",
                    r#"histogram_quantile(0.95, sum by (service, le) (rate(tug_health_check_duration_seconds_bucket{stack="$stack", service=~"$service"}[$__rate_interval])))"#,
                )],
            },
        ],
    },
    Dashboard {
        uid: "tug-rollouts",
        title: "tug: rollouts and scaling",
        panels: &[
            Panel {
                title: "Rollouts by outcome",
                unit: "short",
                queries: &[(
                    "{{outcome}}",
                    r#"sum by (outcome) (increase(tug_rollouts_total{stack="$stack"}[$__range]))"#,
                )],
            },
            Panel {
                title: "Rollout duration",
                unit: "s",
                queries: &[(
                    "mean {{outcome}}",
                    r#"sum by (outcome) (tug_rollout_duration_seconds_sum{stack="$stack"}) / sum by (outcome) (tug_rollout_duration_seconds_count{stack="$stack"})"#,
                )],
            },
            Panel {
                title: "Scale decisions",
                unit: "short",
                queries: &[(
                    "{{service}} {{direction}}",
                    r#"sum by (service, direction) (increase(tug_scale_decisions_total{stack="$stack"}[$__range]))"#,
                )],
            },
            Panel {
                title: "Running replicas",
                unit: "short",
                queries: &[(
                    "{{service}}",
                    r#"sum by (service) (tug_replicas{stack="$stack", state="running"})"#,
                )],
            },
            Panel {
                title: "Image builds",
                unit: "short",
                queries: &[(
                    "{{service}} {{outcome}}",
                    r#"sum by (service, outcome) (tug_builds_total{stack="$stack"})"#,
                )],
            },
            Panel {
                title: "Image build time (mean)",
                unit: "s",
                queries: &[(
                    "{{service}}",
                    r#"sum by (service) (tug_build_duration_seconds_sum{stack="$stack"}) / sum by (service) (tug_build_duration_seconds_count{stack="$stack"})"#,
                )],
            },
            Panel {
                title: "Pipeline runs by outcome",
                unit: "short",
                queries: &[(
                    "{{pipeline}} {{outcome}}",
                    r#"sum by (pipeline, outcome) (increase(tug_pipeline_runs_total{stack="$stack"}[$__range]))"#,
                )],
            },
            Panel {
                title: "Pipeline run and job time (mean)",
                unit: "s",
                queries: &[
                    (
                        "{{pipeline}}",
                        r#"sum by (pipeline) (tug_pipeline_duration_seconds_sum{stack="$stack"}) / sum by (pipeline) (tug_pipeline_duration_seconds_count{stack="$stack"})"#,
                    ),
                    (
                        "{{pipeline}} / {{job}}",
                        r#"sum by (pipeline, job) (tug_pipeline_job_duration_seconds_sum{stack="$stack"}) / sum by (pipeline, job) (tug_pipeline_job_duration_seconds_count{stack="$stack"})"#,
                    ),
                ],
            },
        ],
    },
    Dashboard {
        uid: "tug-cold-starts",
        title: "tug: cold starts",
        panels: &[
            Panel {
                title: "Cold starts",
                unit: "short",
                queries: &[(
                    "{{service}}",
                    r#"sum by (service) (increase(tug_cold_start_seconds_count{stack="$stack"}[$__range]))"#,
                )],
            },
            Panel {
                title: "Cold start time (p95)",
                unit: "s",
                queries: &[(
                    "{{service}}",
                    r#"histogram_quantile(0.95, sum by (service, le) (rate(tug_cold_start_seconds_bucket{stack="$stack"}[$__rate_interval])))"#,
                )],
            },
        ],
    },
];

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
    DASHBOARDS
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
