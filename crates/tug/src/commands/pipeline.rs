//! `tug pipeline run|runs|logs`: the pipelines of tug.yaml on this machine.

use crate::exit::{fail, INVALID_INPUT};
use crate::output::OutputFormat;
use anyhow::{Context, Result};
use comfy_table::{presets::UTF8_BORDERS_ONLY, Cell, Color, Table};
use console::style;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use tug_pipeline::report::{JobStatus, RunReport, RunStatus};
use tug_pipeline::run::{self, Progress};
use tug_pipeline::store::RunStore;

#[derive(clap::Subcommand, Debug)]
pub enum PipelineCommand {
    /// Run a pipeline of tug.yaml: jobs as a DAG, on the host or in containers
    ///
    /// Each job's output is shown live, prefixed with its name, and a summary
    /// follows. Secrets are masked everywhere (`***`). The run, its logs,
    /// its JSON report and JUnit XML are kept in the state directory; see
    /// `tug pipeline runs` and `tug pipeline logs`. Ctrl-C (or SIGTERM) stops
    /// the running steps and removes their containers; steps and jobs with
    /// `if: always` still run, then the run ends cancelled. A second Ctrl-C
    /// stops at once (the next pipeline command removes what is left and
    /// marks the run interrupted). Exit code: 0 when every job succeeded, 1
    /// when one failed or a newer run of the pipeline's `concurrency` group
    /// cancelled it, 130 when Ctrl-C or SIGTERM stopped it.
    ///
    /// `--from .github/workflows/ci.yml` or `--from .gitlab-ci.yml` runs a CI
    /// file the project already has instead (the same as `tug ci run FILE`);
    /// no tug.yaml is needed.
    Run {
        /// The pipeline [default: the only one in tug.yaml]
        #[arg(conflicts_with = "from")]
        name: Option<String>,
        /// Run this GitHub Actions workflow or .gitlab-ci.yml instead of a pipeline of tug.yaml
        #[arg(long, value_name = "FILE")]
        from: Option<PathBuf>,
        /// With --from (GitHub): run a `runs-on` label's jobs in an image: ubuntu-latest=IMAGE (repeatable)
        #[arg(long, value_name = "LABEL=IMAGE", requires = "from")]
        platform: Vec<String>,
        /// With --from (GitHub): `github.event_name`
        #[arg(long, default_value = "push", requires = "from")]
        event: String,
        /// With --from (GitHub): an input of a workflow_dispatch workflow: NAME=VALUE (repeatable)
        #[arg(long, value_name = "NAME=VALUE", requires = "from")]
        input: Vec<String>,
        /// With --from (GitLab): a CI/CD variable: NAME=VALUE (repeatable)
        #[arg(long = "var", value_name = "NAME=VALUE", requires = "from")]
        vars: Vec<String>,
        /// With --from (GitLab): run every job on the host, whatever its image
        #[arg(long, requires = "from")]
        host: bool,
        /// With --from: show what would run and what is left out, then stop
        #[arg(long, requires = "from")]
        list: bool,
        /// Only this job and the jobs it needs (repeatable)
        #[arg(long = "job", short = 'j', value_name = "JOB")]
        jobs: Vec<String>,
        /// Jobs run at once [default: the pipeline's `parallelism`, else the core count]
        #[arg(long, value_name = "N")]
        parallelism: Option<u32>,
        /// Also write the JUnit XML report here (with --from too)
        #[arg(long, value_name = "FILE")]
        junit: Option<PathBuf>,
        /// Also write the JSON report here (with --from too)
        #[arg(long, value_name = "FILE")]
        report: Option<PathBuf>,
    },
    /// Run a pipeline, then rerun it on every change of the project's files
    ///
    /// Changes are debounced; files `.gitignore` leaves out, `.git` and the
    /// state directory are not watched. A job with `paths:` (globs relative
    /// to tug.yaml) reruns only when a changed file matches them; a job
    /// without reruns on any change; the jobs that need a rerun job rerun
    /// too (with the jobs they need). Ctrl-C stops.
    Watch {
        /// The pipeline [default: the only one in tug.yaml]
        name: Option<String>,
        /// Quiet time after the last change before a rerun
        #[arg(long, default_value = "300ms", value_parser = crate::parse_duration)]
        debounce: std::time::Duration,
    },
    /// List the stack's pipeline runs, newest first
    Runs {
        /// How many runs to show
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Show the (masked) output of a run's jobs: `tug pipeline logs 12 test`
    Logs {
        /// The run id, from `tug pipeline runs`
        run: i64,
        /// Only this job (every matrix combination of it), or one unit like `test (stable)`
        job: Option<String>,
    },
}

pub async fn run(
    file: Option<&Path>,
    output: OutputFormat,
    cmd: PipelineCommand,
) -> Result<ExitCode> {
    if let PipelineCommand::Run {
        from: Some(from),
        platform,
        event,
        input,
        vars,
        host,
        list,
        jobs,
        parallelism,
        junit,
        report,
        ..
    } = cmd
    {
        return super::ci::run_file(super::ci::FileRun {
            file: from,
            platforms: super::ci::pairs(&platform, "--platform")?,
            event,
            inputs: super::ci::pairs(&input, "--input")?,
            variables: super::ci::pairs(&vars, "--var")?,
            host,
            parallelism,
            list,
            jobs,
            junit,
            report,
        })
        .await;
    }
    let stack = super::spec::load(file)?;
    let state_dir = tug_engine::store::state_dir(&stack.name);
    let store = RunStore::open(&state_dir.join("tug.db"))?;
    match cmd {
        PipelineCommand::Run {
            name,
            jobs,
            parallelism,
            junit,
            report,
            ..
        } => {
            let cancel = CancellationToken::new();
            on_signal(cancel.clone());
            let status = run_pipeline(
                &stack,
                &state_dir,
                output,
                name,
                jobs,
                parallelism,
                junit,
                report,
                cancel.clone(),
            )
            .await?;
            Ok(exit_code(status, cancel.is_cancelled()))
        }
        PipelineCommand::Watch { name, debounce } => {
            watch(&stack, &state_dir, output, name, debounce).await
        }
        PipelineCommand::Runs { limit } => {
            let rt = tug_runtime::docker::DockerRuntime::connect().await.ok();
            run::sweep(rt.as_ref(), &store).await?;
            runs(&store, output, limit)
        }
        PipelineCommand::Logs { run, job } => logs(&store, output, run, job.as_deref()),
    }
}

/// The pipeline named, or the only one.
fn pick(stack: &tug_spec::Stack, name: Option<String>) -> Result<String> {
    let names: Vec<&str> = stack.pipelines.keys().map(String::as_str).collect();
    Ok(match name {
        Some(n) if stack.pipelines.contains_key(&n) => n,
        Some(n) => {
            return Err(fail(
                INVALID_INPUT,
                format!(
                    "no pipeline `{n}` in {}: it has {}",
                    stack.file.display(),
                    if names.is_empty() { "none".to_string() } else { names.join(", ") }
                ),
            ))
        }
        None if names.len() == 1 => names[0].to_string(),
        None if names.is_empty() => {
            return Err(fail(
                INVALID_INPUT,
                format!(
                    "{} has no pipelines: add one, e.g.\n\npipelines:\n  ci:\n    jobs:\n      test: {{ steps: [cargo test] }}",
                    stack.file.display()
                ),
            ))
        }
        None => {
            return Err(fail(
                INVALID_INPUT,
                format!("{} has several pipelines: name one of {}", stack.file.display(), names.join(", ")),
            ))
        }
    })
}

/// Cancels the run on Ctrl-C or SIGTERM: steps stopped, containers
/// removed, cleanup (`if: always`) run; a second signal exits at once.
pub(crate) fn on_signal(cancel: CancellationToken) {
    tokio::spawn(async move {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        let mut int =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()).ok();
        for n in 0.. {
            let t = async {
                match term.as_mut() {
                    Some(t) => {
                        t.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            let i = async {
                match int.as_mut() {
                    Some(i) => {
                        i.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = i => {}
                _ = t => {}
            }
            if n > 0 {
                eprintln!("{} stopped at once", style("interrupted:").yellow());
                std::process::exit(130);
            }
            eprintln!(
                "{} stopping the run: its steps are stopped and its containers removed; `if: always` steps and jobs still run (again to stop at once)",
                style("interrupted:").yellow()
            );
            cancel.cancel();
        }
    });
}

#[allow(clippy::too_many_arguments)]
async fn run_pipeline(
    stack: &tug_spec::Stack,
    state_dir: &Path,
    output: OutputFormat,
    name: Option<String>,
    jobs: Vec<String>,
    parallelism: Option<u32>,
    junit: Option<PathBuf>,
    report_file: Option<PathBuf>,
    cancel: CancellationToken,
) -> Result<RunStatus> {
    let name = pick(stack, name)?;
    let pipeline = stack.pipelines[&name].clone();
    for j in &jobs {
        if !pipeline.jobs.contains_key(j) {
            let known: Vec<&str> = pipeline.jobs.keys().map(String::as_str).collect();
            return Err(fail(
                INVALID_INPUT,
                format!(
                    "no job `{j}` in pipeline `{name}`: it has {}",
                    known.join(", ")
                ),
            ));
        }
    }
    let json = matches!(output, OutputFormat::Json);
    let observer: run::Observer = Arc::new(move |p: Progress| print_progress(p, json));
    let header = name.clone();
    let ran = tug_pipeline::trigger::run_stack(
        tug_pipeline::trigger::StackRun {
            stack,
            pipeline: &name,
            state_dir,
            jobs,
            parallelism,
            cancel,
        },
        |id, swept| {
            for old in swept {
                eprintln!(
                    "{} run {old} was interrupted (its tug is gone); its containers were removed",
                    style("note:").yellow()
                );
            }
            if !json {
                eprintln!("{} pipeline {header}, run {id}", style("▶").cyan());
            }
        },
        observer,
    )
    .await
    .map_err(|e| match e {
        tug_pipeline::trigger::TriggerError::Engine(e) => {
            anyhow::Error::new(e).context("this pipeline has container jobs")
        }
        e => e.into(),
    })?;
    let report = ran.report;
    tug_pipeline::trigger::write_reports(&report, report_file.as_deref(), junit.as_deref())?;
    match output {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        OutputFormat::Table => summary(&report),
    }
    Ok(report.status)
}

/// 0 when every job succeeded; 130 when Ctrl-C or SIGTERM (`signalled`)
/// stopped the run, as a shell reports an interrupted command; else 1.
pub(crate) fn exit_code(s: RunStatus, signalled: bool) -> ExitCode {
    match s {
        _ if signalled => ExitCode::from(130),
        RunStatus::Succeeded => ExitCode::SUCCESS,
        _ => ExitCode::FAILURE,
    }
}

fn colour_of(unit: &str) -> u8 {
    let h = unit
        .bytes()
        .fold(0u32, |a, b| a.wrapping_mul(31).wrapping_add(b as u32));
    [6u8, 3, 5, 4, 2, 14, 13, 12][(h % 8) as usize]
}

/// Live output on stderr (stdout is for the -o json report), one colour per job.
fn print_progress(p: Progress, json: bool) {
    let mut err = std::io::stderr().lock();
    let prefix = |u: &str| style(format!("{u} |")).color256(colour_of(u));
    match p {
        Progress::Line { unit, line } => {
            let _ = writeln!(err, "{} {line}", prefix(&unit));
        }
        Progress::StepStarted { unit, step } if !json => {
            let _ = writeln!(
                err,
                "{} {} {}",
                prefix(&unit),
                style("$").dim(),
                style(step).bold()
            );
        }
        Progress::StepFinished { unit, step } if !json && step.status != JobStatus::Succeeded => {
            let code = step
                .exit_code
                .map(|c| format!(" (exit code {c})"))
                .unwrap_or_default();
            let allowed = if step.allowed_failure {
                ", continue_on_error"
            } else {
                ""
            };
            let _ = writeln!(
                err,
                "{} {} {}{code}{allowed}",
                prefix(&unit),
                style("✗").red(),
                step.status.as_str()
            );
        }
        Progress::JobStarted { unit, attempt } if !json && attempt > 1 => {
            let _ = writeln!(
                err,
                "{} {} attempt {attempt}",
                prefix(&unit),
                style("↻").yellow()
            );
        }
        Progress::JobFinished { report } if !json => {
            let mark = match report.status {
                JobStatus::Succeeded => style("✓").green(),
                JobStatus::Skipped | JobStatus::Cancelled => style("–").dim(),
                _ if report.allowed_failure => style("✗").yellow(),
                _ => style("✗").red(),
            };
            let why = report
                .reason
                .as_deref()
                .map(|r| format!(": {r}"))
                .unwrap_or_default();
            let _ = writeln!(
                err,
                "{} {mark} {} in {:.1}s{why}",
                prefix(&report.name),
                report.status.as_str(),
                report.seconds
            );
        }
        _ => {}
    }
}

fn summary(r: &RunReport) {
    let mut t = Table::new();
    t.load_preset(UTF8_BORDERS_ONLY);
    t.set_header(["JOB", "STATUS", "TIME", "ATTEMPTS", "CACHE", "NOTE"]);
    for j in &r.jobs {
        let color = match j.status {
            JobStatus::Succeeded => Color::Green,
            JobStatus::Skipped | JobStatus::Cancelled => Color::DarkGrey,
            _ if j.allowed_failure => Color::Yellow,
            _ => Color::Red,
        };
        let mut status = j.status.as_str().to_string();
        if j.allowed_failure {
            status.push_str(" (allowed)");
        }
        let cache: Vec<String> = j
            .cache
            .iter()
            .map(|c| format!("{} {}", if c.hit { "hit" } else { "miss" }, c.key))
            .collect();
        t.add_row(vec![
            Cell::new(&j.name),
            Cell::new(status).fg(color),
            Cell::new(format!("{:.1}s", j.seconds)),
            Cell::new(j.attempts),
            Cell::new(cache.join(", ")),
            Cell::new(j.reason.clone().unwrap_or_default()),
        ]);
    }
    println!("{t}");
    let verdict = match r.status {
        RunStatus::Succeeded => style(r.status.as_str()).green(),
        RunStatus::Interrupted | RunStatus::Cancelled => style(r.status.as_str()).yellow(),
        _ => style(r.status.as_str()).red(),
    };
    println!(
        "run {} {verdict} in {:.1}s — logs: tug pipeline logs {}",
        r.id, r.seconds, r.id
    );
}

fn runs(store: &RunStore, output: OutputFormat, limit: usize) -> Result<ExitCode> {
    let rows = store.list(limit)?;
    match output {
        OutputFormat::Json => {
            let v: Vec<serde_json::Value> = rows
                .iter()
                .map(|r| {
                    serde_json::json!({
                        "id": r.id, "pipeline": r.pipeline, "status": r.status,
                        "started": r.started, "finished": r.finished,
                        "seconds": r.report.as_ref().map(|x| x.seconds),
                        "jobs": r.report.as_ref().map(|x| x.jobs.iter().map(|j| serde_json::json!({
                            "name": j.name, "status": j.status,
                            "steps": j.steps.iter().map(|s| serde_json::json!({"name": s.name, "status": s.status})).collect::<Vec<_>>(),
                        })).collect::<Vec<_>>()),
                    })
                })
                .collect();
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
        OutputFormat::Table if rows.is_empty() => {
            println!("no pipeline runs yet: run `tug pipeline run`")
        }
        OutputFormat::Table => {
            let mut t = Table::new();
            t.load_preset(UTF8_BORDERS_ONLY);
            t.set_header(["RUN", "PIPELINE", "STATUS", "AGE", "TIME", "JOBS"]);
            for r in rows {
                let color = match r.status {
                    RunStatus::Succeeded => Color::Green,
                    RunStatus::Running => Color::Cyan,
                    RunStatus::Interrupted => Color::Yellow,
                    RunStatus::Cancelled => Color::DarkGrey,
                    RunStatus::Failed => Color::Red,
                };
                let (time, jobs) = match &r.report {
                    Some(x) => {
                        let ok = x
                            .jobs
                            .iter()
                            .filter(|j| j.status == JobStatus::Succeeded)
                            .count();
                        (
                            format!("{:.1}s", x.seconds),
                            format!("{ok}/{} succeeded", x.jobs.len()),
                        )
                    }
                    None => (String::new(), String::new()),
                };
                t.add_row(vec![
                    Cell::new(r.id),
                    Cell::new(&r.pipeline),
                    Cell::new(r.status.as_str()).fg(color),
                    Cell::new(super::stack::age(r.started)),
                    Cell::new(time),
                    Cell::new(jobs),
                ]);
            }
            println!("{t}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn logs(store: &RunStore, output: OutputFormat, id: i64, job: Option<&str>) -> Result<ExitCode> {
    let Some(row) = store.get(id)? else {
        return Err(fail(
            INVALID_INPUT,
            format!("no pipeline run {id}: see `tug pipeline runs`"),
        ));
    };
    // Units from the report; a run still going (or killed) has only its files.
    let mut units: Vec<(String, PathBuf)> = match &row.report {
        Some(r) => r
            .jobs
            .iter()
            .filter(|j| job.is_none_or(|w| j.name == w || j.job == w))
            .filter_map(|j| j.log.clone().map(|l| (j.name.clone(), l)))
            .collect(),
        None => std::fs::read_dir(row.dir.join("logs"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| {
                let p = e.path();
                let n = p
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default();
                (n, p)
            })
            .filter(|(n, _)| job.is_none_or(|w| n == w || n.starts_with(&format!("{w}-"))))
            .collect(),
    };
    units.sort_by(|a, b| a.0.cmp(&b.0));
    if units.is_empty() {
        let what = job.map(|j| format!(" of job `{j}`")).unwrap_or_default();
        return Err(fail(INVALID_INPUT, format!("run {id} has no logs{what}")));
    }
    let mut out = std::io::stdout().lock();
    let mut json_lines = Vec::new();
    for (name, path) in &units {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        for line in text.lines() {
            match output {
                OutputFormat::Json => {
                    json_lines.push(serde_json::json!({"job": name, "line": line}))
                }
                OutputFormat::Table if units.len() > 1 => writeln!(
                    out,
                    "{} {line}",
                    style(format!("{name} |")).color256(colour_of(name))
                )?,
                OutputFormat::Table => writeln!(out, "{line}")?,
            }
        }
    }
    if matches!(output, OutputFormat::Json) {
        writeln!(out, "{}", serde_json::to_string_pretty(&json_lines)?)?;
    }
    Ok(ExitCode::SUCCESS)
}

async fn watch(
    stack: &tug_spec::Stack,
    state_dir: &Path,
    output: OutputFormat,
    name: Option<String>,
    debounce: std::time::Duration,
) -> Result<ExitCode> {
    use notify::{EventKind, RecursiveMode, Watcher};
    let name = pick(stack, name)?;
    let pipeline = stack.pipelines[&name].clone();
    let cancel = CancellationToken::new();
    on_signal(cancel.clone());
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<PathBuf>();
    // Reads (a job copying the project) are not changes.
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        if let Ok(ev) = res {
            if !matches!(ev.kind, EventKind::Access(_) | EventKind::Other) {
                for p in ev.paths {
                    let _ = tx.send(p);
                }
            }
        }
    })
    .context("starting the file watcher")?;
    watcher
        .watch(&stack.dir, RecursiveMode::Recursive)
        .with_context(|| format!("watching {}", stack.dir.display()))?;
    let ignore = {
        let mut b = ignore::gitignore::GitignoreBuilder::new(&stack.dir);
        b.add(stack.dir.join(".gitignore"));
        b.build().ok()
    };
    let state = std::fs::canonicalize(state_dir).unwrap_or_else(|_| state_dir.to_path_buf());
    let mut jobs: Vec<String> = Vec::new();
    let mut last = RunStatus::Succeeded;
    loop {
        last = run_pipeline(
            stack,
            state_dir,
            output,
            Some(name.clone()),
            jobs.clone(),
            None,
            None,
            None,
            cancel.clone(),
        )
        .await
        .unwrap_or_else(|e| {
            eprintln!("{} {e:#}", style("error:").red());
            last
        });
        if cancel.is_cancelled() {
            break;
        }
        eprintln!(
            "{} watching {} for changes (Ctrl-C stops)",
            style("…").dim(),
            stack.dir.display()
        );
        // Wait for a batch with a relevant change.
        let changed: Vec<PathBuf> = loop {
            let first = tokio::select! {
                b = rx.recv() => b,
                _ = cancel.cancelled() => None,
            };
            let Some(first) = first else { break Vec::new() };
            // Debounce: gather until `debounce` passes without a change.
            let mut batch = vec![first];
            while let Ok(Some(p)) = tokio::time::timeout(debounce, rx.recv()).await {
                batch.push(p);
            }
            let mut rel: Vec<PathBuf> = batch
                .into_iter()
                .filter(|p| !p.starts_with(&state) && !p.starts_with(state_dir))
                .filter_map(|p| p.strip_prefix(&stack.dir).ok().map(Path::to_path_buf))
                .filter(|p| !p.as_os_str().is_empty() && !p.starts_with(".git"))
                .filter(|p| {
                    ignore.as_ref().is_none_or(|g| {
                        !g.matched_path_or_any_parents(p, stack.dir.join(p).is_dir())
                            .is_ignore()
                    })
                })
                .collect();
            rel.sort();
            rel.dedup();
            if !rel.is_empty() {
                break rel;
            }
        };
        if cancel.is_cancelled() || changed.is_empty() {
            break;
        }
        jobs = tug_pipeline::plan::affected(&pipeline, &changed);
        let shown: Vec<String> = changed
            .iter()
            .take(3)
            .map(|p| p.display().to_string())
            .collect();
        let more = if changed.len() > 3 {
            format!(" and {} more", changed.len() - 3)
        } else {
            String::new()
        };
        if jobs.is_empty() {
            eprintln!(
                "{} {}{more}: no job's paths match",
                style("changed:").cyan(),
                shown.join(", ")
            );
            continue;
        }
        eprintln!(
            "{} {}{more}: rerunning {}",
            style("changed:").cyan(),
            shown.join(", "),
            jobs.join(", ")
        );
    }
    Ok(exit_code(last, cancel.is_cancelled()))
}
