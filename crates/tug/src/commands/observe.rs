//! `tug metrics` (the agent's metrics) and `tug observe` (Grafana
//! dashboards, a Prometheus scrape configuration).

use crate::output::OutputFormat;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use tug_observe::grafana;

#[derive(clap::Subcommand, Debug)]
pub enum ObserveCommand {
    /// Write Grafana dashboards (stack overview, service golden signals,
    /// rollouts and scaling, cold starts) and provisioning files
    ///
    /// DIR gets one JSON file per dashboard (import them in Grafana, or let
    /// provisioning load them) and provisioning/dashboards/tug.yaml and
    /// provisioning/datasources/tug.yaml (a Prometheus datasource with uid
    /// `tug-prometheus`, which every panel queries).
    Grafana {
        /// The directory to write
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// The Prometheus URL the datasource points at
        #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:9090")]
        prometheus: String,
        /// Where Grafana will read the dashboards from [default: DIR, absolute]
        #[arg(long, value_name = "PATH")]
        dashboards_path: Option<String>,
    },
    /// Write a Prometheus configuration that scrapes the stack's agent
    ///
    /// The target is the agent's HTTP listener: the running agent's address,
    /// else `dashboard.listen` of tug.yaml. Without `dashboard.listen` the
    /// agent picks a new loopback port at each start: set it to keep the
    /// configuration valid. Beyond loopback the agent requires its API
    /// token, which the configuration reads from the token file.
    Prometheus {
        /// The file to write [default: stdout]
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// How often Prometheus scrapes
        #[arg(long, value_name = "DURATION", default_value = "15s")]
        interval: String,
    },
}

/// `tug metrics`: the agent's metrics, as text or parsed samples.
pub async fn metrics(file: Option<&Path>, output: OutputFormat) -> Result<ExitCode> {
    let stack = super::spec::load(file)?;
    let Some(agent) = tug_api::client::Client::for_stack(&stack.name).await else {
        bail!(
            "no agent runs for stack {}: metrics live in the agent (`tug up -d` starts it)",
            stack.name
        );
    };
    let text = agent.get_text("/metrics").await?;
    if output == OutputFormat::Table {
        print!("{text}");
        return Ok(ExitCode::SUCCESS);
    }
    // OpenMetrics names a counter family without its samples' `_total`; the
    // parser matches types by sample name, as the older text format does.
    let lines = text.lines().map(|l| match l.strip_suffix(" counter") {
        Some(head) if l.starts_with("# TYPE ") && !head.ends_with("_total") => {
            Ok(format!("{head}_total counter"))
        }
        _ => Ok(l.to_string()),
    });
    let scrape = prometheus_parse::Scrape::parse(lines)
        .context("the agent's metrics are not in the text format")?;
    let samples: Vec<serde_json::Value> = scrape.samples.iter().map(sample_json).collect();
    println!("{}", serde_json::to_string_pretty(&samples)?);
    Ok(ExitCode::SUCCESS)
}

fn sample_json(s: &prometheus_parse::Sample) -> serde_json::Value {
    use prometheus_parse::Value;
    let labels: std::collections::BTreeMap<_, _> = s.labels.iter().collect();
    let (kind, value) = match &s.value {
        Value::Counter(v) => ("counter", serde_json::json!(v)),
        Value::Gauge(v) => ("gauge", serde_json::json!(v)),
        Value::Untyped(v) => ("untyped", serde_json::json!(v)),
        Value::Histogram(b) => (
            "histogram",
            b.iter()
                .map(|b| serde_json::json!({ "le": b.less_than, "count": b.count }))
                .collect(),
        ),
        Value::Summary(q) => (
            "summary",
            q.iter()
                .map(|q| serde_json::json!({ "quantile": q.quantile, "value": q.count }))
                .collect(),
        ),
    };
    let key = if kind == "histogram" {
        "buckets"
    } else if kind == "summary" {
        "quantiles"
    } else {
        "value"
    };
    serde_json::json!({ "name": s.metric, "type": kind, "labels": labels, (key): value })
}

pub async fn run(
    file: Option<&Path>,
    output: OutputFormat,
    cmd: ObserveCommand,
) -> Result<ExitCode> {
    match cmd {
        ObserveCommand::Grafana {
            out,
            prometheus,
            dashboards_path,
        } => grafana_files(&out, &prometheus, dashboards_path, output),
        ObserveCommand::Prometheus { out, interval } => {
            prometheus_config(file, out.as_deref(), &interval).await
        }
    }
}

fn grafana_files(
    out: &Path,
    prometheus: &str,
    dashboards_path: Option<String>,
    output: OutputFormat,
) -> Result<ExitCode> {
    let write = |path: PathBuf, text: &str| -> Result<PathBuf> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    };
    let mut written = Vec::new();
    for (name, text) in grafana::dashboards() {
        written.push(write(out.join(name), &text)?);
    }
    let dir = match dashboards_path {
        Some(d) => d,
        None => std::path::absolute(out)
            .unwrap_or_else(|_| out.to_path_buf())
            .display()
            .to_string(),
    };
    let p = grafana::provisioning(&dir, prometheus);
    written.push(write(
        out.join("provisioning/dashboards/tug.yaml"),
        &p.dashboards,
    )?);
    written.push(write(
        out.join("provisioning/datasources/tug.yaml"),
        &p.datasources,
    )?);
    if output == OutputFormat::Json {
        println!("{}", serde_json::to_string_pretty(&written)?);
    } else {
        for w in written {
            println!("wrote {}", w.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn prometheus_config(
    file: Option<&Path>,
    out: Option<&Path>,
    interval: &str,
) -> Result<ExitCode> {
    let stack = super::spec::load(file)?;
    let listen = stack.dashboard.as_ref().map(|d| d.listen);
    let running = match tug_api::client::Client::for_stack(&stack.name).await {
        Some(a) => a.info().await.ok().and_then(|i| i.http),
        None => None,
    };
    let address = match (&running, listen) {
        (Some(url), _) => url
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string(),
        (None, Some(l)) => l.to_string(),
        (None, None) => bail!(
            "no agent runs for stack {} and tug.yaml sets no `dashboard.listen`: \
             start the agent (`tug up -d`), or set `dashboard: {{ listen: \"127.0.0.1:9464\" }}`",
            stack.name
        ),
    };
    let loopback = address
        .parse::<std::net::SocketAddr>()
        .map(|a| a.ip().is_loopback())
        .unwrap_or(false);
    let (socket, _, _) = tug_engine::ops::agent_paths(&stack.name);
    let token = socket
        .parent()
        .map(|d| d.join("token").display().to_string());
    let text = grafana::scrape_config(&grafana::ScrapeTarget {
        stack: &stack.name,
        address: &address,
        token_file: (!loopback).then_some(token.as_deref()).flatten(),
        ephemeral: listen.is_none(),
        interval,
    });
    match out {
        Some(path) => {
            std::fs::write(path, &text).with_context(|| format!("writing {}", path.display()))?;
            eprintln!("wrote {}", path.display());
        }
        None => print!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}
