//! `tug agent`, the attached `tug up`, and `tug events`.

use super::stack::connect;
use crate::exit::fail;
use crate::output::OutputFormat;
use anyhow::{Context, Result};
use console::style;
use std::path::Path;
use std::process::{ExitCode, Stdio};
use std::time::Duration;
use tug_api::client::Client;
use tug_runtime::any::AnyRuntime;
use tug_spec::Stack;

/// `tug agent`: supervise the stack and serve the API until stopped.
pub async fn agent(
    file: Option<&Path>,
    format: tug_observe::log::LogFormat,
    verbose: u8,
) -> Result<ExitCode> {
    let stack = super::spec::load(file)?;
    // Everything the agent creates (state dir, socket, store, log) is its
    // owner's only, whatever the umask.
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
    let (_, _, log) = tug_engine::ops::agent_paths(&stack.name);
    if let Some(dir) = log.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let settings = tug_observe::trace::Settings::from_env(stack.observe.otlp.as_ref())?;
    // Kept to the end: dropping it at shutdown flushes the queued spans.
    let telemetry = tug_observe::trace::install(&settings, Some(&stack.name))?;
    tug_observe::log::init_agent(&log, format, verbose, telemetry.as_ref())
        .with_context(|| format!("opening the agent log {}", log.display()))?;
    let rt = connect(&stack).await?;
    tug_api::server::run(rt, stack).await.map_err(|e| match e {
        e @ tug_api::server::AgentError::AlreadyRunning { .. } => {
            fail(crate::exit::INVALID_INPUT, e.to_string())
        }
        e => e.into(),
    })?;
    Ok(ExitCode::SUCCESS)
}

/// `tug agent logs`: the agent's log file, its last `tail` lines, then new
/// ones with `follow`.
pub async fn logs(file: Option<&Path>, follow: bool, tail: usize) -> Result<ExitCode> {
    let stack = super::spec::load(file)?;
    let (_, _, log) = tug_engine::ops::agent_paths(&stack.name);
    let text = match std::fs::read(&log) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !follow => {
            println!(
                "stack {} has no agent log yet ({}): `tug up -d` starts an agent",
                stack.name,
                log.display()
            );
            return Ok(ExitCode::SUCCESS);
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e).with_context(|| format!("reading {}", log.display())),
    };
    let text = String::from_utf8_lossy(&text);
    let lines: Vec<&str> = text.lines().collect();
    for l in &lines[lines.len().saturating_sub(tail)..] {
        println!("{l}");
    }
    if !follow {
        return Ok(ExitCode::SUCCESS);
    }
    // Like `tail -F`: follows the file across rotations.
    let mut offset = text.len() as u64;
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let Ok(meta) = std::fs::metadata(&log) else {
            continue;
        };
        if meta.len() < offset {
            offset = 0;
        }
        if meta.len() == offset {
            continue;
        }
        use std::io::{Read, Seek};
        let mut f = std::fs::File::open(&log)?;
        f.seek(std::io::SeekFrom::Start(offset))?;
        let mut buf = Vec::new();
        f.read_to_end(&mut buf)?;
        offset += buf.len() as u64;
        print!("{}", String::from_utf8_lossy(&buf));
    }
}

/// Starts a background agent for the stack unless one answers; its pid.
pub async fn ensure_running(stack: &Stack, kind: tug_runtime::RuntimeKind) -> Result<String> {
    if let Some(c) = Client::for_stack(&stack.name).await {
        // It supervised while this command converged: show it the result.
        c.resync().await?;
        return Ok(c.info().await?.pid.to_string());
    }
    start(stack, kind).await
}

/// The pid of the agent of `stack` when one answers: a command that hands
/// its work to the agent needs no engine connection of its own.
pub async fn running(stack: &Stack) -> Option<String> {
    let (socket, _, _) = tug_engine::ops::agent_paths(&stack.name);
    let info = Client::at(&socket).info().await.ok()?;
    Some(info.pid.to_string())
}

/// Starts the agent of `stack` on the runtime `kind` and waits until it
/// answers.
async fn start(stack: &Stack, kind: tug_runtime::RuntimeKind) -> Result<String> {
    let (socket, _, log) = tug_engine::ops::agent_paths(&stack.name);
    if let Some(dir) = log.parent() {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        // The state directory is its owner's only, whatever the umask.
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    let file = std::path::absolute(&stack.file).unwrap_or_else(|_| stack.file.clone());
    // The agent logs to `log` itself; this only catches what it prints
    // before its logger is up (or a crash).
    let stderr = log.with_extension("stderr");
    let log_file = {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&stderr)
            .with_context(|| format!("opening {}", stderr.display()))?
    };
    use std::os::unix::process::CommandExt;
    let child =
        std::process::Command::new(std::env::current_exe().context("locating the tug binary")?)
            .arg("-f")
            .arg(&file)
            .arg("--runtime")
            .arg(match kind {
                tug_runtime::RuntimeKind::Process => "process",
                tug_runtime::RuntimeKind::Container => "docker",
            })
            .args(super::spec::inputs_args())
            .arg("agent")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            // Its own process group: Ctrl-C in this terminal must not reach it.
            .process_group(0)
            .spawn()
            .context("starting the agent")?;
    // It answers within tens of milliseconds: asked often, so `tug up`
    // does not wait out a long poll interval (5 s in all).
    for _ in 0..1000 {
        if socket.exists() && tug_api::server::answering(&socket).await {
            return Ok(child.id().to_string());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Err(anyhow::anyhow!(
        "the agent did not start: see {} and {}",
        log.display(),
        stderr.display()
    ))
}

/// The attached `tug up`: converge, then the agent runs in this process
/// while the replicas' logs stream; `stop` (Ctrl-C) at any moment stops the
/// stack gracefully.
pub async fn attached(
    rt: AnyRuntime,
    stack: Stack,
    opts: &tug_engine::UpOptions,
    output: OutputFormat,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<ExitCode> {
    let name = stack.name.clone();
    let grace = stack
        .services
        .values()
        .map(|s| s.stop_grace_period.std())
        .max()
        .unwrap_or(Duration::from_secs(10));
    let (stopped_tx, stopped_rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        stop.await;
        let _ = stopped_tx.send(());
    });
    let mut stopped_rx = stopped_rx;
    // With an agent running, it converges (one code path); else this
    // process converges, then runs the agent itself.
    let running = Client::for_stack(&name).await;
    let converge = async {
        match &running {
            Some(agent) => super::stack::through_agent(agent, &stack, opts.timeout, output)
                .await
                .map(|_| ()),
            None => super::stack::converge(&rt, &stack, opts, output, "up")
                .await
                .map(|_| ()),
        }
    };
    let converged = tokio::select! {
        r = converge => Some(r),
        _ = &mut stopped_rx => None,
    };
    let result = match converged {
        None => Ok(()),
        Some(Err(e)) => Err(e),
        Some(Ok(_)) if Client::for_stack(&name).await.is_some() => {
            if let Some(c) = Client::for_stack(&name).await {
                let _ = c.resync().await;
            }
            eprintln!("an agent already supervises stack {name}: streaming logs, Ctrl-C detaches");
            let logs_rt = rt.clone();
            let logs_stack = stack.clone();
            let logs = tokio::spawn(async move {
                super::stack::stream_logs(&logs_rt, &logs_stack, None, true, Some(0)).await
            });
            let _ = stopped_rx.await;
            logs.abort();
            return Ok(ExitCode::SUCCESS);
        }
        Some(Ok(_)) => {
            if output == OutputFormat::Table {
                eprintln!("{}", style(format!("attached to stack {name}: Ctrl-C stops it (use `tug up -d` to leave it running)")).dim());
            }
            let logs_stack = stack.clone();
            let server = tokio::spawn(tug_api::server::run_until(rt.clone(), stack, async move {
                let _ = stopped_rx.await;
            }));
            let logs_rt = rt.clone();
            let logs = tokio::spawn(async move {
                super::stack::stream_logs(&logs_rt, &logs_stack, None, true, Some(0)).await
            });
            let served = server.await;
            logs.abort();
            served
                .context("the agent task")
                .and_then(|r| r.map_err(anyhow::Error::from))
        }
    };
    eprintln!("stopping stack {name} gracefully");
    let _lock = tug_engine::ops::ApplyLock::acquire(&name).await?;
    let n = tug_engine::stop(&rt, &name, grace, &*opts.drain).await?;
    eprintln!(
        "{} stopped {n} container(s); `tug up` starts them again, `tug down` removes them",
        style("✓").green()
    );
    result?;
    Ok(ExitCode::SUCCESS)
}

fn print_event(output: OutputFormat, id: i64, time: i64, e: &serde_json::Value) {
    match output {
        OutputFormat::Json => println!(
            "{}",
            serde_json::json!({"id": id, "time": time, "event": e})
        ),
        OutputFormat::Table => {
            let kind = e["event"].as_str().unwrap_or("?");
            let service = e["service"].as_str().unwrap_or("");
            let mut rest: Vec<String> = e
                .as_object()
                .map(|o| {
                    o.iter()
                        .filter(|(k, _)| *k != "event" && *k != "service")
                        .map(|(k, v)| {
                            format!(
                                "{k}={}",
                                v.as_str()
                                    .map(String::from)
                                    .unwrap_or_else(|| v.to_string())
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            rest.sort();
            println!(
                "{:>6} {} {:<16} {:<12} {}",
                id,
                super::stack::age(time),
                style(kind).cyan(),
                service,
                rest.join(" ")
            );
        }
    }
}

/// `tug events`: the stack's event stream, from the agent or the history store.
pub async fn events(
    file: Option<&Path>,
    output: OutputFormat,
    follow: bool,
    since: i64,
) -> Result<ExitCode> {
    let stack = super::spec::load(file)?;
    let mut after = since;
    if follow {
        if let Some(agent) = Client::for_stack(&stack.name).await {
            // Server-sent events: `data: {...}` lines, until the agent goes away.
            agent
                .get_lines(&format!("/v1/events/stream?after={after}"), |l| {
                    if let Some(v) = l
                        .strip_prefix("data: ")
                        .and_then(|d| serde_json::from_str::<serde_json::Value>(d).ok())
                    {
                        print_event(
                            output,
                            v["id"].as_i64().unwrap_or(0),
                            v["time"].as_i64().unwrap_or(0),
                            &v["event"],
                        );
                    }
                })
                .await?;
            return Ok(ExitCode::SUCCESS);
        }
    }
    loop {
        let batch: Vec<(i64, i64, serde_json::Value)> = match Client::for_stack(&stack.name).await {
            Some(agent) => agent
                .get(&format!("/v1/events?after={after}&limit=1000"))
                .await?
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(|v| {
                    (
                        v["id"].as_i64().unwrap_or(0),
                        v["time"].as_i64().unwrap_or(0),
                        v["event"].clone(),
                    )
                })
                .collect(),
            None => match super::stack::open_store(&stack.name) {
                Some(s) => s.events(after, 1000)?,
                None => Vec::new(),
            },
        };
        for (id, time, e) in &batch {
            print_event(output, *id, *time, e);
            after = after.max(*id);
        }
        if !follow {
            break;
        }
        if batch.is_empty() {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    Ok(ExitCode::SUCCESS)
}
