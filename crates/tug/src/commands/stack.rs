//! `tug up`, `tug down`, `tug ps`, `tug logs`: the stack on the local engine.

use crate::exit::{fail, ENGINE_UNREACHABLE};
use crate::output::OutputFormat;
use anyhow::{Context, Result};
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
use tug_runtime::any::AnyRuntime;
use tug_runtime::docker::DockerRuntime;
use tug_runtime::process::ProcessRuntime;
use tug_runtime::{Runtime, RuntimeError};
use tug_spec::RuntimeChoice;

static RUNTIME_FLAG: std::sync::OnceLock<Option<RuntimeChoice>> = std::sync::OnceLock::new();

/// Records `--runtime` for every command of this invocation.
pub fn set_runtime_flag(choice: Option<RuntimeChoice>) {
    let _ = RUNTIME_FLAG.set(choice);
}

/// The container engine (`DOCKER_HOST`), or exit code 3 saying how to get one.
pub async fn connect_engine() -> Result<DockerRuntime> {
    DockerRuntime::connect().await.map_err(|e| match e {
        RuntimeError::Unreachable { addr, detail } => fail(
            ENGINE_UNREACHABLE,
            format!("cannot reach the container engine at {addr}: start Docker or Podman, or set DOCKER_HOST\n  ({detail})"),
        ),
        other => other.into(),
    })
}

/// Marks a stack that ran on a container engine: from then on an engine
/// that does not answer is an error, never a silent switch to processes.
fn engine_marker(stack: &str) -> std::path::PathBuf {
    tug_engine::store::state_dir(stack).join("engine")
}

/// Whether an unreachable engine may fall back to local processes: only
/// for a stack that never ran on an engine, and when `DOCKER_HOST` does not
/// name the engine to use.
pub fn may_fall_back(docker_host: Option<&std::ffi::OsStr>, ran_on_engine: bool) -> bool {
    docker_host.is_none_or(|h| h.is_empty()) && !ran_on_engine
}

/// The runtime for `stack`: `--runtime`, else the file's `runtime:`, else a
/// container engine when one answers; local processes only as
/// [`may_fall_back`] allows, with a notice. Otherwise an engine that does
/// not answer is exit code 3, for every command.
pub async fn connect(stack: &tug_spec::Stack) -> Result<AnyRuntime> {
    match RUNTIME_FLAG.get().copied().flatten().or(stack.runtime) {
        Some(RuntimeChoice::Process) => Ok(AnyRuntime::Process(ProcessRuntime::new(
            ProcessRuntime::default_dir(),
        ))),
        Some(RuntimeChoice::Docker) => Ok(AnyRuntime::Docker(connect_engine().await?)),
        None => match DockerRuntime::connect().await {
            Ok(rt) => {
                let marker = engine_marker(&stack.name);
                if !marker.exists() {
                    if let Some(dir) = marker.parent() {
                        let _ = std::fs::create_dir_all(dir);
                        use std::os::unix::fs::PermissionsExt;
                        let _ =
                            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
                    }
                    let _ = std::fs::write(&marker, "docker\n");
                }
                Ok(AnyRuntime::Docker(rt))
            }
            Err(RuntimeError::Unreachable { addr, detail }) => {
                let ran = engine_marker(&stack.name).exists();
                if !may_fall_back(std::env::var_os("DOCKER_HOST").as_deref(), ran) {
                    let why = if ran {
                        format!("stack {} runs on a container engine", stack.name)
                    } else {
                        "DOCKER_HOST names the engine to use".to_string()
                    };
                    return Err(fail(
                        ENGINE_UNREACHABLE,
                        format!("cannot reach the container engine at {addr} ({why}): start Docker or Podman, or fix DOCKER_HOST; `--runtime process` runs the services as local processes instead\n  ({detail})"),
                    ));
                }
                eprintln!(
                    "{} no container engine answers at {addr}: running services as local processes (set `runtime: docker` to require an engine)",
                    style("notice:").cyan()
                );
                Ok(AnyRuntime::Process(ProcessRuntime::new(
                    ProcessRuntime::default_dir(),
                )))
            }
            Err(e) => Err(e.into()),
        },
    }
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

/// `tug up --dry-run`: the plan, read-only. Exit 0 when there is nothing to
/// do, 2 when `up` would change something, 1 on any error (so that 2 always
/// means "changes", as with `terraform plan -detailed-exitcode`).
pub async fn dry_run(file: Option<&Path>, output: OutputFormat) -> Result<ExitCode> {
    let planned = async {
        let stack = super::spec::load(file)?;
        let rt = connect(&stack).await?;
        anyhow::Ok(tug_engine::preview::preview(&rt, &stack).await?)
    };
    let p = match planned.await {
        Ok(p) => p,
        Err(e) => {
            crate::exit::report(&e);
            return Ok(ExitCode::from(1));
        }
    };
    match output {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&p)?),
        OutputFormat::Table => print_preview(&p),
    }
    Ok(ExitCode::from(if p.changes { 2 } else { 0 }))
}

fn print_preview(p: &tug_engine::preview::Preview) {
    use tug_engine::preview::Action;
    if let Some(n) = &p.create_network {
        println!("create   network {n}");
    }
    for v in &p.create_volumes {
        println!("create   volume {v}");
    }
    println!("{:<8} {:<16} {:<8} REASON", "ACTION", "SERVICE", "REPLICA");
    for r in &p.replicas {
        let action = match r.action {
            Action::Create => "create",
            Action::Replace => "replace",
            Action::Remove => "remove",
            Action::Start => "start",
            Action::Stop => "stop",
            Action::Keep => "keep",
        };
        let replica = r.replica.map_or("?".to_string(), |i| i.to_string());
        println!("{action:<8} {:<16} {replica:<8} {}", r.service, r.reason);
    }
    for (svc, steps) in &p.rollouts {
        println!("rollout of {svc}:");
        for (i, s) in steps.iter().enumerate() {
            let list = |v: &[u32]| {
                v.iter()
                    .map(|x| x.to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            };
            let mut parts = Vec::new();
            if !s.stop_first.is_empty() {
                parts.push(format!("stop {}", list(&s.stop_first)));
            }
            parts.push(format!("start {} and wait healthy", list(&s.start)));
            if !s.stop_after.is_empty() {
                parts.push(format!("stop old {}", list(&s.stop_after)));
            }
            println!("  step {}: {}", i + 1, parts.join(", then "));
        }
    }
    for n in &p.notes {
        println!("note: {n}");
    }
    println!(
        "{}",
        if p.changes {
            "plan: `tug up` would make the changes above"
        } else {
            "plan: nothing to do"
        }
    );
}

pub async fn up(
    file: Option<&Path>,
    output: OutputFormat,
    timeout: Duration,
    detach: bool,
) -> Result<ExitCode> {
    let stack = super::spec::load(file)?;
    if !detach {
        let rt = connect(&stack).await?;
        let opts = UpOptions {
            timeout,
            ..UpOptions::default()
        };
        // Attached: Ctrl-C or SIGTERM at any moment stops the stack gracefully.
        use tokio::signal::unix::{signal, SignalKind};
        let mut int = signal(SignalKind::interrupt())?;
        let mut term = signal(SignalKind::terminate())?;
        let stop = async move {
            tokio::select! {
                _ = int.recv() => {},
                _ = term.recv() => {},
            }
        };
        return super::agent::attached(rt, stack, &opts, output, stop).await;
    }
    // The agent converges: this command starts it first (so the stack is
    // supervised whatever happens to this process), sends it the stack and
    // shows the converge's events as they come. Killing this command (or
    // closing its output) does not stop the converge.
    // A running agent converges with its own engine connection.
    let pid = match super::agent::running(&stack).await {
        Some(pid) => pid,
        None => super::agent::ensure_running(&stack, connect(&stack).await?.kind()).await?,
    };
    let (socket, _, _) = tug_engine::ops::agent_paths(&stack.name);
    let agent = tug_api::client::Client::at(&socket);
    use tokio::signal::unix::{signal, SignalKind};
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    tokio::select! {
        r = through_agent(&agent, &stack, timeout, output) => { r?; }
        _ = async { tokio::select! { _ = int.recv() => {}, _ = term.recv() => {} } } => {
            eprintln!(
                "{} the agent (pid {pid}) goes on with the converge: `tug ps` and `tug events -f` show it",
                style("notice:").cyan()
            );
            return Ok(ExitCode::from(130));
        }
    }
    if output == OutputFormat::Table {
        out(format_args!(
            "{} agent supervising stack {} (pid {pid})",
            style("✓").green(),
            style(&stack.name).bold()
        ));
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes a line to stdout. Output closed early (`tug up -d | head -1`) is
/// not an error: the operation it reports on goes on.
fn out(line: impl std::fmt::Display) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}

/// Sends `stack` to the agent's `POST /v1/up` and renders its stream:
/// progress (or one JSON event per line), then the outcome.
pub async fn through_agent(
    agent: &tug_api::client::Client,
    stack: &tug_spec::Stack,
    timeout: Duration,
    output: OutputFormat,
) -> Result<tug_api::api::Report> {
    use tug_api::api::UpLine;
    let progress =
        (output == OutputFormat::Table).then(|| Progress::new(stack.services.keys().cloned()));
    // The agent may run in another directory.
    let mut stack = stack.clone();
    stack.dir = std::path::absolute(&stack.dir).unwrap_or(stack.dir);
    stack.file = std::path::absolute(&stack.file).unwrap_or(stack.file);
    let stack = &stack;
    let request = tug_api::api::UpRequest {
        stack: serde_json::to_value(stack)?,
        message: Some("up".into()),
        timeout_secs: Some(timeout.as_secs()),
        dir: Some(stack.dir.clone()),
        file: Some(stack.file.clone()),
    };
    let mut outcome = None;
    agent
        .up(&request, |line| match line {
            UpLine::Event { event } => match &progress {
                Some(p) => {
                    if let Ok(e) = serde_json::from_value::<Event>(event) {
                        p.on(&e)
                    }
                }
                None => out(event),
            },
            other => outcome = Some(other),
        })
        .await?;
    let failed_service = match &outcome {
        Some(UpLine::Failed { service, .. }) => service.clone(),
        _ => None,
    };
    if let Some(p) = &progress {
        p.finish(failed_service.as_deref());
    }
    match outcome {
        Some(UpLine::Done {
            revision,
            report,
            warning,
        }) => {
            warn(warning);
            match output {
                OutputFormat::Json => out(
                    serde_json::json!({"event": "done", "report": report, "revision": revision}),
                ),
                OutputFormat::Table => {
                    let rev = revision
                        .map(|r| format!(" (revision {r})"))
                        .unwrap_or_default();
                    if report.up_to_date {
                        out(format_args!(
                            "{} stack {} is up to date{rev}",
                            style("✓").green(),
                            style(&stack.name).bold()
                        ));
                    } else {
                        out(format_args!(
                            "{} stack {} is up{rev}: {} created, {} started, {} removed",
                            style("✓").green(),
                            style(&stack.name).bold(),
                            report.created,
                            report.started,
                            report.removed
                        ));
                    }
                    print_ps(&agent.ps().await?.replicas);
                }
            }
            Ok(report)
        }
        Some(UpLine::Failed { error, .. }) => Err(anyhow::anyhow!(error)),
        _ => Err(anyhow::anyhow!(
            "the agent stopped before the converge finished (the revision is recorded as interrupted, and the next agent carries it on): see `tug agent logs`"
        )),
    }
}

fn warn(w: Option<String>) {
    if let Some(w) = w {
        eprintln!("{} {w}", style("warning:").yellow());
    }
}

/// Opens the stack's history store; a store that cannot be opened only warns.
pub fn open_store(stack: &str) -> Option<tug_engine::store::Store> {
    let (store, warning) = tug_engine::ops::open_store(stack);
    warn(warning);
    store
}

/// Converges `stack` under the apply lock, rendering progress and recording
/// the revision (`message` says why: up, rollback, scale) in the history.
pub async fn converge<R: Runtime>(
    rt: &R,
    stack: &tug_spec::Stack,
    opts: &UpOptions,
    output: OutputFormat,
    message: &str,
) -> Result<tug_engine::UpReport> {
    // One bus: the store's writer and the display subscribe to it.
    let bus = tug_engine::bus::Bus::new();
    let (store, warning) = tug_engine::ops::open_store(&stack.name);
    warn(warning);
    let writer = store.map(|s| tug_engine::store::Writer::spawn(s, &bus));
    let mut sub = bus.subscribe();
    let progress = (output == OutputFormat::Table)
        .then(|| std::sync::Arc::new(Progress::new(stack.services.keys().cloned())));
    let display = {
        let progress = progress.clone();
        tokio::spawn(async move {
            use tug_engine::bus::Received;
            while let Some(r) = sub.recv().await {
                match (r, &progress) {
                    (Received::Event(p), Some(progress)) => progress.on(&p.event),
                    (Received::Event(p), None) => {
                        println!("{}", serde_json::to_string(&p.event).unwrap_or_default())
                    }
                    (Received::Missed(n), _) => {
                        eprintln!(
                            "{} {n} progress events were not shown",
                            style("warning:").yellow()
                        )
                    }
                }
            }
        })
    };
    let done = tug_engine::ops::converge(rt, stack, opts, message, &bus).await;
    drop(bus);
    let _ = display.await;
    if let Some(w) = writer {
        let _ = tokio::task::spawn_blocking(move || w.finish()).await;
    }
    let done = done?;
    if let Some(progress) = &progress {
        let failed = match &done.result {
            Err(tug_engine::EngineError::ServiceFailed { service, .. }) => Some(service.as_str()),
            _ => None,
        };
        progress.finish(failed);
    }
    warn(done.warning);
    let revision = done.revision;
    let report = done.result?;
    match output {
        OutputFormat::Json => println!(
            "{}",
            serde_json::json!({"event": "done", "report": report, "revision": revision})
        ),
        OutputFormat::Table => {
            let rev = revision
                .map(|r| format!(" (revision {r})"))
                .unwrap_or_default();
            if report.up_to_date {
                println!(
                    "{} stack {} is up to date{rev}",
                    style("✓").green(),
                    style(&stack.name).bold()
                );
            } else {
                println!(
                    "{} stack {} is up{rev}: {} created, {} started, {} removed",
                    style("✓").green(),
                    style(&stack.name).bold(),
                    report.created,
                    report.started,
                    report.removed
                );
            }
            print_ps(&replicas(
                tug_engine::status(rt, &stack.name, Some(stack)).await?,
            ));
        }
    }
    Ok(report)
}

fn replicas(status: Vec<tug_engine::ReplicaStatus>) -> Vec<tug_api::api::Replica> {
    status.into_iter().map(Into::into).collect()
}

pub async fn down(file: Option<&Path>, output: OutputFormat, volumes: bool) -> Result<ExitCode> {
    let stack = super::spec::load(file)?;
    let report: serde_json::Value = match tug_api::client::Client::for_stack(&stack.name).await {
        Some(agent) => {
            let report = agent
                .post("/v1/down", &serde_json::json!({"volumes": volumes}))
                .await?;
            // The agent answers before it exits; `down` returns once it is gone,
            // so nothing of the stack outlives the command.
            let (socket, _, _) = tug_engine::ops::agent_paths(&stack.name);
            for _ in 0..100 {
                if !socket.exists() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            report
        }
        None => {
            let rt = connect(&stack).await?;
            let grace = stack
                .services
                .values()
                .map(|s| s.stop_grace_period.std())
                .max()
                .unwrap_or(Duration::from_secs(10));
            let _lock = tug_engine::ops::ApplyLock::acquire(&stack.name).await?;
            serde_json::to_value(
                tug_engine::down(&rt, &stack.name, grace, volumes, &tug_engine::NoDrain).await?,
            )?
        }
    };
    match output {
        OutputFormat::Json => println!("{report}"),
        OutputFormat::Table => {
            println!(
                "{} stack {} removed: {} containers, {} networks, {} volumes{}",
                style("✓").green(),
                style(&stack.name).bold(),
                report["containers"],
                report["networks"],
                report["volumes"],
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

pub fn age(created: i64) -> String {
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

pub fn print_ps(rows: &[tug_api::api::Replica]) {
    let mut t = Table::new();
    t.load_preset(UTF8_BORDERS_ONLY);
    t.set_header([
        "SERVICE", "REPLICA", "STATE", "HEALTH", "ENDPOINT", "AGE", "IMAGE",
    ]);
    let dash = |v: Option<String>| v.unwrap_or_else(|| "-".into());
    for r in rows {
        let state = match &r.note {
            Some(note) => format!("{}, {note}", r.state),
            None => r.state.clone(),
        };
        let state_color = if state == "running" {
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
            Cell::new(dash(r.replica.map(|n| n.to_string()))),
            Cell::new(state).fg(state_color),
            Cell::new(&r.health).fg(health_color),
            Cell::new(dash(r.endpoint.clone())),
            Cell::new(if r.created > 0 {
                age(r.created)
            } else {
                "-".into()
            }),
            Cell::new(&r.image),
        ]);
    }
    if !console::colors_enabled() {
        t.force_no_tty();
    }
    out(t);
}

pub async fn ps(file: Option<&Path>, output: OutputFormat) -> Result<ExitCode> {
    let stack = super::spec::load(file)?;
    // One shape whichever answers: the agent from its live snapshot (even
    // mid-converge), or the engine read here.
    let ps = match tug_api::client::Client::for_stack(&stack.name).await {
        Some(agent) => {
            let ps = agent.ps().await?;
            if !ps.engine_connected {
                return Err(fail(
                    ENGINE_UNREACHABLE,
                    format!("the agent of stack {} cannot reach the container engine: start Docker or Podman (the agent resumes by itself)", stack.name),
                ));
            }
            ps
        }
        None => {
            let rt = connect(&stack).await?;
            let status = tug_engine::status(&rt, &stack.name, Some(&stack)).await?;
            tug_api::api::Ps {
                stack: stack.name.clone(),
                revision: None,
                replicas: replicas(status),
                converge: None,
                engine_connected: true,
                gateway: Vec::new(),
                engine: rt.engine().to_string(),
                autoscale: Default::default(),
                services: Default::default(),
            }
        }
    };
    let tug_api::api::Ps {
        replicas: mut rows,
        converge,
        gateway,
        engine,
        autoscale,
        services,
        ..
    } = ps;
    if output == OutputFormat::Table && !engine.is_empty() {
        println!("{} {engine}", style("engine:").dim());
    }
    if let (Some(c), OutputFormat::Table) = (&converge, output) {
        println!("{} converging for {}", style("⟳").cyan(), age(c.since));
        for (service, doing) in &c.services {
            println!("  {service}: {doing}");
        }
    }
    if output == OutputFormat::Table {
        // A service scaled to zero has no replica to list: one row says so.
        for (service, state) in &services {
            match state {
                tug_api::api::ServiceState::Idle => rows.push(tug_api::api::Replica {
                    service: service.clone(),
                    replica: None,
                    name: String::new(),
                    id: String::new(),
                    state: "0/0 idle".into(),
                    health: "-".into(),
                    endpoint: None,
                    created: 0,
                    image: String::new(),
                    note: Some("scaled to zero, the next request starts it".into()),
                }),
            }
        }
        rows.sort_by(|a, b| (&a.service, a.replica).cmp(&(&b.service, b.replica)));
    }
    match output {
        OutputFormat::Json => {
            // Which engine runs each replica, for machines too.
            let rows: Vec<serde_json::Value> = rows
                .iter()
                .map(|r| {
                    let mut v = serde_json::to_value(r).unwrap_or_default();
                    if let Some(o) = v.as_object_mut() {
                        o.insert("engine".into(), engine.clone().into());
                    }
                    v
                })
                .collect();
            println!("{}", serde_json::to_string_pretty(&rows)?)
        }
        OutputFormat::Table if rows.is_empty() => {
            println!("stack {} has no containers: run `tug up`", stack.name)
        }
        OutputFormat::Table => print_ps(&rows),
    }
    if output == OutputFormat::Table && !gateway.is_empty() {
        println!(
            "gateway: {}  (`tug routes` lists its routes)",
            gateway.join(", ")
        );
    }
    if output == OutputFormat::Table && !autoscale.is_empty() {
        print_autoscale(&autoscale);
    }
    Ok(ExitCode::SUCCESS)
}

/// Each autoscaled service: its count, bounds, each metric against its
/// target, and why the autoscaler chose its count.
fn print_autoscale(rows: &std::collections::BTreeMap<String, tug_api::api::Autoscaling>) {
    let mut t = Table::new();
    t.load_preset(UTF8_BORDERS_ONLY);
    t.set_header([
        "AUTOSCALED",
        "REPLICAS",
        "MIN-MAX",
        "METRIC / TARGET",
        "REASON",
    ]);
    for (service, a) in rows {
        let metrics: Vec<String> = a
            .metrics
            .iter()
            .map(|m| {
                let kind = match m.metric.as_str() {
                    "cpu" => tug_autoscale::MetricKind::Cpu,
                    "inflight" => tug_autoscale::MetricKind::Inflight,
                    _ => tug_autoscale::MetricKind::Rps,
                };
                let value = m.value.map_or_else(|| "-".to_string(), |v| kind.show(v));
                format!("{} {value}/{}", m.metric, kind.show(m.target))
            })
            .collect();
        let replicas = if a.desired == a.current {
            a.current.to_string()
        } else {
            format!("{} -> {}", a.current, a.desired)
        };
        t.add_row(vec![
            Cell::new(service),
            Cell::new(replicas),
            Cell::new(format!("{}-{}", a.min, a.max)),
            Cell::new(metrics.join(", ")),
            Cell::new(a.reason.replace('_', " ")),
        ]);
    }
    if !console::colors_enabled() {
        t.force_no_tty();
    }
    println!("{t}");
}

/// What `tug logs` was asked for, beyond the service.
pub struct LogsArgs {
    pub follow: bool,
    pub tail: Option<usize>,
    pub grep: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
    pub timestamps: bool,
}

pub async fn logs(
    file: Option<&Path>,
    output: crate::output::OutputFormat,
    service: Option<&str>,
    args: LogsArgs,
) -> Result<ExitCode> {
    let stack = super::spec::load(file)?;
    if let Some(s) = service {
        tug_engine::ops::known_services(&stack, &[s.to_string()])?;
    }
    let re = args
        .grep
        .as_deref()
        .map(regex::Regex::new)
        .transpose()
        .context("--grep is not a regular expression")?;
    // Relative times are read here, so the agent and the engine see one instant.
    let now = std::time::SystemTime::now();
    let time = |t: &Option<String>, flag: &str| {
        t.as_deref()
            .map(|t| tug_runtime::parse_log_time(t, now))
            .transpose()
            .with_context(|| format!("--{flag}"))
    };
    let opts = tug_runtime::LogOptions {
        tail: args.tail,
        follow: args.follow,
        since: time(&args.since, "since")?,
        until: time(&args.until, "until")?,
    };
    let print: Box<dyn Fn(&tug_engine::ReplicaLine)> = match output {
        crate::output::OutputFormat::Json => Box::new(print_json),
        crate::output::OutputFormat::Table => Box::new(printer(&stack, args.timestamps)),
    };
    if let Some(agent) = tug_api::client::Client::for_stack(&stack.name).await {
        let mut path = format!("/v1/logs?follow={}", opts.follow);
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        if let Some(s) = service {
            query.append_pair("service", s);
        }
        if let Some(t) = opts.tail {
            query.append_pair("tail", &t.to_string());
        }
        if let Some(g) = &args.grep {
            query.append_pair("grep", g);
        }
        for (name, t) in [("since", opts.since), ("until", opts.until)] {
            if let Some(t) = t {
                query.append_pair(name, &humantime::format_rfc3339_nanos(t).to_string());
            }
        }
        let query = query.finish();
        if !query.is_empty() {
            path.push('&');
            path.push_str(&query);
        }
        agent
            .get_lines(&path, |l| {
                if let Ok(line) = serde_json::from_str::<tug_engine::ReplicaLine>(l) {
                    print(&line);
                }
            })
            .await?;
        return Ok(ExitCode::SUCCESS);
    }
    let rt = connect(&stack).await?;
    let mut lines = tug_engine::log_lines(&rt, &stack.name, service, opts, re).await?;
    while let Some(line) = lines.next().await {
        print(&line?);
    }
    Ok(ExitCode::SUCCESS)
}

/// One line as a JSON object, for `-o json`.
fn print_json(l: &tug_engine::ReplicaLine) {
    let v = serde_json::json!({
        "service": l.service,
        "replica": l.replica,
        "stream": if l.stderr { "stderr" } else { "stdout" },
        "message": l.text,
        "time": l.time.map(|t| humantime::format_rfc3339_nanos(t).to_string()),
        "trace_id": l.trace_id,
    });
    println!("{v}");
}

/// Prints a replica's line with a `service-replica |` prefix, one colour per
/// replica, and with `timestamps` its time (blank where unknown).
fn printer(stack: &tug_spec::Stack, timestamps: bool) -> impl Fn(&tug_engine::ReplicaLine) {
    let colors = [
        console::Color::Cyan,
        console::Color::Magenta,
        console::Color::Yellow,
        console::Color::Green,
        console::Color::Blue,
    ];
    let width = stack
        .services
        .iter()
        .map(|(n, s)| n.len() + 1 + s.replicas.saturating_sub(1).max(1).ilog10() as usize + 1)
        .max()
        .unwrap_or(0);
    let order: Vec<String> = stack.services.keys().cloned().collect();
    move |l: &tug_engine::ReplicaLine| {
        let svc = order.iter().position(|n| *n == l.service).unwrap_or(0);
        let replica: usize = l.replica.parse().unwrap_or(0);
        let prefix = format!("{}-{}", l.service, l.replica);
        let prefix =
            style(format!("{prefix:<width$} |")).fg(colors[(svc * 3 + replica) % colors.len()]);
        if timestamps {
            let time = l
                .time
                .map(|t| humantime::format_rfc3339_nanos(t).to_string())
                .unwrap_or_default();
            println!("{prefix} {time:<30} {}", l.text);
        } else {
            println!("{prefix} {}", l.text);
        }
    }
}

/// Prints the replicas' log lines, interleaved, each with a coloured prefix.
pub async fn stream_logs<R: Runtime>(
    rt: &R,
    stack: &tug_spec::Stack,
    service: Option<&str>,
    follow: bool,
    tail: Option<usize>,
) -> Result<()> {
    let print = printer(stack, false);
    let opts = tug_runtime::LogOptions::new(tail, follow);
    let mut lines = tug_engine::log_lines(rt, &stack.name, service, opts, None).await?;
    while let Some(line) = lines.next().await {
        print(&line?);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::may_fall_back;
    use std::ffi::OsStr;

    #[test]
    fn processes_stand_in_only_for_a_stack_new_to_engines_without_docker_host() {
        assert!(may_fall_back(None, false));
        assert!(may_fall_back(Some(OsStr::new("")), false));
        assert!(!may_fall_back(None, true), "it ran on an engine");
        assert!(!may_fall_back(
            Some(OsStr::new("unix:///run/podman/podman.sock")),
            false
        ));
    }
}
