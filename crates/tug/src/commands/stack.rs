//! `tug up`, `tug down`, `tug ps`, `tug logs`: the stack on the local engine.

use crate::exit::{fail, ENGINE_UNREACHABLE};
use crate::output::OutputFormat;
use anyhow::Result;
use comfy_table::{presets::UTF8_BORDERS_ONLY, Cell, Color, Table};
use console::style;
use futures_util::StreamExt;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::Duration;
use tug_engine::{Event, UpOptions};
use tug_runtime::docker::DockerRuntime;
use tug_runtime::{labels, stack_filter, LogStream, Runtime, RuntimeError};

pub async fn connect() -> Result<DockerRuntime> {
    DockerRuntime::connect().await.map_err(|e| match e {
        RuntimeError::Unreachable { addr, detail } => fail(
            ENGINE_UNREACHABLE,
            format!("cannot reach the container engine at {addr}: start Docker or Podman, or set DOCKER_HOST\n  ({detail})"),
        ),
        other => other.into(),
    })
}

/// One spinner line per service, driven by engine events.
struct Progress {
    multi: MultiProgress,
    bars: Mutex<BTreeMap<String, ProgressBar>>,
}

impl Progress {
    fn new(services: impl Iterator<Item = String>) -> Self {
        let multi = MultiProgress::new();
        let style = ProgressStyle::with_template(
            "{spinner:.cyan} {prefix:<16.bold} {wide_msg} {elapsed:>4.dim}",
        )
        .expect("static template")
        .tick_chars("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏✓");
        let bars = services
            .map(|s| {
                let bar = multi.add(ProgressBar::new_spinner());
                bar.set_style(style.clone());
                bar.set_prefix(s.clone());
                bar.set_message("waiting");
                bar.enable_steady_tick(Duration::from_millis(100));
                (s, bar)
            })
            .collect();
        Progress {
            multi,
            bars: Mutex::new(bars),
        }
    }

    fn on(&self, e: &Event) {
        let bars = self.bars.lock().expect("progress lock");
        let Some(bar) = e.service().and_then(|s| bars.get(s)) else {
            if let Event::NetworkCreated { name } | Event::VolumeCreated { name } = e {
                let _ = self
                    .multi
                    .println(format!("  {} {name}", style("created").green()));
            }
            return;
        };
        match e {
            Event::Image { message, .. } => bar.set_message(message.clone()),
            Event::BuildLog { line, .. } => {
                bar.set_message(format!("{}", style(truncate(line, 70)).dim()))
            }
            Event::ImageReady { image, .. } => bar.set_message(format!("image {image}")),
            Event::Removing {
                container, reason, ..
            } => bar.set_message(format!(
                "removing {container} ({})",
                serde_json::to_value(reason)
                    .ok()
                    .and_then(|v| v.as_str().map(String::from))
                    .unwrap_or_default()
            )),
            Event::Waiting { on, condition, .. } => {
                bar.set_message(format!("waiting for {on} to be {condition}"))
            }
            Event::Creating { replica, .. } => {
                bar.set_message(format!("creating replica {replica}"))
            }
            Event::Started { replica, .. } => {
                bar.set_message(format!("started replica {replica}, checking health"))
            }
            Event::Healthy { replica, .. } => bar.set_message(format!("replica {replica} healthy")),
            Event::ServiceReady { state, .. } => {
                bar.finish_with_message(format!("{}", style(state).green()))
            }
            Event::ServiceFailed { reason, .. } => {
                bar.abandon_with_message(format!("{}", style(reason).red()))
            }
            _ => {}
        }
    }

    fn finish(&self, failed: Option<&str>) {
        for (name, bar) in self.bars.lock().expect("progress lock").iter() {
            if !bar.is_finished() {
                if failed == Some(name.as_str()) {
                    bar.abandon_with_message(format!("{}", style("failed").red()));
                } else {
                    bar.abandon_with_message(format!("{}", style("not started").yellow()));
                }
            }
        }
    }
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        s.chars().take(n).collect::<String>() + "…"
    }
}

pub async fn up(file: Option<&Path>, output: OutputFormat, timeout: Duration) -> Result<ExitCode> {
    let stack = super::spec::load(file)?;
    let rt = connect().await?;
    let opts = UpOptions { timeout };
    let result = match output {
        OutputFormat::Json => {
            let sink = |e: Event| println!("{}", serde_json::to_string(&e).unwrap_or_default());
            tug_engine::up(&rt, &stack, &opts, &sink).await
        }
        OutputFormat::Table => {
            let progress = Progress::new(stack.services.keys().cloned());
            let r = tug_engine::up(&rt, &stack, &opts, &|e| progress.on(&e)).await;
            let failed = match &r {
                Err(tug_engine::EngineError::ServiceFailed { service, .. }) => {
                    Some(service.as_str())
                }
                _ => None,
            };
            progress.finish(failed);
            r
        }
    };
    let report = result?;
    match output {
        OutputFormat::Json => {
            println!("{}", serde_json::json!({"event": "done", "report": report}))
        }
        OutputFormat::Table => {
            if report.up_to_date {
                println!(
                    "{} stack {} is up to date",
                    style("✓").green(),
                    style(&stack.name).bold()
                );
            } else {
                println!(
                    "{} stack {} is up: {} created, {} started, {} removed",
                    style("✓").green(),
                    style(&stack.name).bold(),
                    report.created,
                    report.started,
                    report.removed
                );
            }
            print_ps(&tug_engine::status(&rt, &stack.name, Some(&stack)).await?);
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn down(file: Option<&Path>, output: OutputFormat, volumes: bool) -> Result<ExitCode> {
    let stack = super::spec::load(file)?;
    let rt = connect().await?;
    let grace = stack
        .services
        .values()
        .map(|s| s.stop_grace_period.std())
        .max()
        .unwrap_or(Duration::from_secs(10));
    let report = tug_engine::down(&rt, &stack.name, grace, volumes).await?;
    match output {
        OutputFormat::Json => println!("{}", serde_json::to_string(&report)?),
        OutputFormat::Table => {
            println!(
                "{} stack {} removed: {} containers, {} networks, {} volumes{}",
                style("✓").green(),
                style(&stack.name).bold(),
                report.containers,
                report.networks,
                report.volumes,
                if volumes {
                    ""
                } else {
                    " (volumes kept: add --volumes to remove them)"
                }
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn age(created: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let s = (now - created).max(0);
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86400 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86400),
    }
}

fn print_ps(rows: &[tug_engine::ReplicaStatus]) {
    let mut t = Table::new();
    t.load_preset(UTF8_BORDERS_ONLY);
    t.set_header([
        "SERVICE", "REPLICA", "STATE", "HEALTH", "ENDPOINT", "AGE", "IMAGE",
    ]);
    for r in rows {
        let state_color = if r.state == "running" {
            Color::Green
        } else {
            Color::Yellow
        };
        let health_color = match r.health.as_str() {
            "healthy" => Color::Green,
            "unhealthy" => Color::Red,
            _ => Color::Reset,
        };
        t.add_row(vec![
            Cell::new(&r.service),
            Cell::new(
                r.replica
                    .map(|r| r.to_string())
                    .unwrap_or_else(|| "?".into()),
            ),
            Cell::new(&r.state).fg(state_color),
            Cell::new(&r.health).fg(health_color),
            Cell::new(r.endpoint.as_deref().unwrap_or("-")),
            Cell::new(age(r.created)),
            Cell::new(&r.image),
        ]);
    }
    if !console::colors_enabled() {
        t.force_no_tty();
    }
    println!("{t}");
}

pub async fn ps(file: Option<&Path>, output: OutputFormat) -> Result<ExitCode> {
    let stack = super::spec::load(file)?;
    let rt = connect().await?;
    let rows = tug_engine::status(&rt, &stack.name, Some(&stack)).await?;
    match output {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&rows)?),
        OutputFormat::Table if rows.is_empty() => {
            println!("stack {} has no containers: run `tug up`", stack.name)
        }
        OutputFormat::Table => print_ps(&rows),
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn logs(
    file: Option<&Path>,
    service: Option<&str>,
    follow: bool,
    tail: Option<usize>,
) -> Result<ExitCode> {
    let stack = super::spec::load(file)?;
    if let Some(s) = service {
        if !stack.services.contains_key(s) {
            let known: Vec<&str> = stack.services.keys().map(String::as_str).collect();
            return Err(fail(
                crate::exit::INVALID_INPUT,
                format!(
                    "no service `{s}` in {}: known services are {}",
                    stack.name,
                    known.join(", ")
                ),
            ));
        }
    }
    let rt = connect().await?;
    let mut filter = stack_filter(&stack.name);
    if let Some(s) = service {
        filter.push((labels::SERVICE.to_string(), Some(s.to_string())));
    }
    let containers = rt.list_containers(&filter).await?;
    let colors = [
        console::Color::Cyan,
        console::Color::Magenta,
        console::Color::Yellow,
        console::Color::Green,
        console::Color::Blue,
    ];
    let width = containers
        .iter()
        .map(|c| {
            c.label(labels::SERVICE).unwrap_or("").len()
                + c.label(labels::REPLICA).unwrap_or("").len()
                + 1
        })
        .max()
        .unwrap_or(0);
    let streams = containers.iter().enumerate().map(|(i, c)| {
        let prefix = format!(
            "{}-{}",
            c.label(labels::SERVICE).unwrap_or("?"),
            c.label(labels::REPLICA).unwrap_or("?")
        );
        let prefix = format!(
            "{}",
            style(format!("{prefix:<width$} |")).fg(colors[i % colors.len()])
        );
        rt.logs(&c.id, tail, follow)
            .map(move |l| (prefix.clone(), l))
    });
    let mut all = futures_util::stream::select_all(streams);
    while let Some((prefix, line)) = all.next().await {
        let line = line?;
        match line.stream {
            LogStream::Stdout => println!("{prefix} {}", line.text),
            LogStream::Stderr => println!("{prefix} {}", line.text),
        }
    }
    Ok(ExitCode::SUCCESS)
}
