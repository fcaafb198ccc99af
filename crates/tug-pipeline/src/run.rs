//! The DAG executor: runs the units of a pipeline, at most `parallelism` at
//! once, each as soon as what it needs has finished.
//!
//! Contract:
//! - A unit runs when every unit it needs has finished and its `if` holds:
//!   `on_success` when none of them failed (a failure under
//!   `continue_on_error` does not count), `on_failure` when one failed or
//!   was skipped because of a failure upstream, `always` in any case, a
//!   cancelled run included (unless [`RunConfig::always_after_cancel`] is
//!   off, as in GitLab). Otherwise it is skipped, with the reason.
//! - An attempt runs the steps in order in the job's workspace; a failed
//!   attempt is retried `retry` times; `timeout` bounds each attempt.
//! - Every line of output is masked ([`crate::mask`]) before anything sees it.
//! - Cancelling (the cancel token, a newer run of the concurrency group,
//!   the job's `timeout`) stops the running step (process group,
//!   container); of the steps after it only those with `if: always` run, as
//!   cleanup, with `TUG_CANCELLED=true` in their environment and only their
//!   own `timeout` as a bound; the others are skipped. The unit ends
//!   cancelled (timed out for its `timeout`); units not started are
//!   cancelled, except `if: always` ones, which start with
//!   `TUG_RUN_CANCELLED=true`. The run then ends cancelled, whoever
//!   cancelled it; only a run whose tug died before it could finish ends
//!   interrupted. Containers and networks carry the run's labels, so what a
//!   killed tug leaves is removed by [`sweep`] at the next run.
//! - A pipeline's `concurrency` group is entered before the first unit, a
//!   job's before each of its units ([`crate::concurrency`]); a newer run
//!   of the group with `cancel_in_progress` stops this one the same way,
//!   and the run (or unit) ends cancelled.

use crate::concurrency::{self, Entered, Gate};
use crate::exec::{self, labels, StepEnd, StepRun};
use crate::files;
use crate::mask::Masker;
use crate::model::{Job, JobService, Pipeline, SecretSource, When, WorkspaceMode};
use crate::plan::{self, Unit};
use crate::report::{CacheReport, JobReport, JobStatus, RunReport, RunStatus, StepReport};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tug_runtime::docker::DockerRuntime;
use tug_runtime::{ContainerSpec, EngineHealth, ExecHealth, Runtime, RuntimeEvent};

/// What one run needs.
pub struct RunConfig {
    pub id: i64,
    pub stack: String,
    pub pipeline_name: String,
    pub pipeline: Pipeline,
    /// The project: the directory of tug.yaml.
    pub project_dir: PathBuf,
    /// The stack's state directory (caches, runs).
    pub state_dir: PathBuf,
    /// Only these jobs (and what they need); empty: all.
    pub jobs: Vec<String>,
    /// Stack secrets by name: the files holding them.
    pub stack_secrets: BTreeMap<String, PathBuf>,
    /// Needed by jobs with an `image` or `services`.
    pub runtime: Option<DockerRuntime>,
    /// Overrides the pipeline's `parallelism`.
    pub parallelism: Option<u32>,
    pub cancel: CancellationToken,
    /// Whether jobs with `if: always` that have not started still start
    /// once the run is cancelled: GitHub Actions and tug.yaml start them,
    /// GitLab cancels every job that has not started.
    pub always_after_cancel: bool,
}

impl RunConfig {
    pub fn run_dir(&self) -> PathBuf {
        self.state_dir.join("runs").join(self.id.to_string())
    }
}

/// What the executor reports as it goes; lines are already masked.
#[derive(Clone, Debug)]
pub enum Progress {
    JobStarted { unit: String, attempt: u32 },
    StepStarted { unit: String, step: String },
    Line { unit: String, line: String },
    StepFinished { unit: String, step: StepReport },
    JobFinished { report: JobReport },
}

pub type Observer = Arc<dyn Fn(Progress) + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Plan(#[from] plan::PlanError),
    #[error(transparent)]
    Store(#[from] crate::store::RunStoreError),
    #[error("cannot prepare the run directory {path}: {source}")]
    Dir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

struct Ctx {
    cfg: RunConfig,
    units: Vec<Unit>,
    masker: Masker,
    observer: Observer,
    user: String,
    owner: String,
    /// Present when the pipeline or a job has a concurrency group.
    gate: Option<Gate>,
}

/// Runs the pipeline; the report says how every unit ended.
#[tracing::instrument(name = "pipeline", level = "info", skip_all, fields(pipeline = %cfg.pipeline_name, run = cfg.id))]
pub async fn run(mut cfg: RunConfig, observer: Observer) -> Result<RunReport, RunError> {
    let started_at = crate::store::now();
    // The caller's token (Ctrl-C) cancels the run; so does its concurrency
    // group, through the run's own child token.
    let outer = cfg.cancel.clone();
    cfg.cancel = outer.child_token();
    let gate = if cfg.pipeline.concurrency.is_some()
        || cfg.pipeline.jobs.values().any(|j| j.concurrency.is_some())
    {
        Some(Gate::open(&cfg.state_dir.join("tug.db"), cfg.id)?)
    } else {
        None
    };
    let clock = Instant::now();
    let units = plan::plan(&cfg.pipeline, &cfg.jobs)?;
    let run_dir = cfg.run_dir();
    for sub in ["logs", "artifacts", "ws"] {
        let p = run_dir.join(sub);
        std::fs::create_dir_all(&p).map_err(|source| RunError::Dir { path: p, source })?;
    }
    let secret_values = secret_values(&cfg);
    let masker = Masker::new(secret_values.values().flatten());
    let parallelism = cfg
        .parallelism
        .or(cfg.pipeline.parallelism)
        .map(|p| p.max(1) as usize)
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        });
    let ctx = Arc::new(Ctx {
        units,
        masker,
        observer,
        user: current_user(),
        owner: exec::owner_tag(),
        gate,
        cfg,
    });
    let n = ctx.units.len();
    let mut held = Vec::new();
    if let (Some(gate), Some(c)) = (&ctx.gate, &ctx.cfg.pipeline.concurrency) {
        let entered = gate
            .enter(&c.group, "", c.cancel_in_progress, &ctx.cfg.cancel, || {
                (ctx.observer)(Progress::Line {
                    unit: ctx.cfg.pipeline_name.clone(),
                    line: format!("waiting for the concurrency group `{}`", c.group),
                })
            })
            .await?;
        let ended = match entered {
            Entered::Holding(claim) => {
                held.push(claim);
                None
            }
            Entered::Replaced => Some((
                RunStatus::Cancelled,
                format!(
                    "a newer run of the concurrency group `{}` replaced this one while it waited",
                    c.group
                ),
            )),
            Entered::Stopped => Some((RunStatus::Cancelled, "the run was cancelled".into())),
        };
        if let Some((status, reason)) = ended {
            let jobs = ctx
                .units
                .iter()
                .map(|u| not_run(u, JobStatus::Cancelled, reason.clone()))
                .collect();
            return Ok(ctx.report(status, started_at, clock, jobs));
        }
    }
    let stop_watch = CancellationToken::new();
    let _watch = ctx.gate.as_ref().map(|g| g.watch(stop_watch.clone()));
    let sem = Arc::new(Semaphore::new(parallelism));
    // Per matrix job: its own limit, and a token that fail-fast cancels.
    let mut job_sems: BTreeMap<String, Arc<Semaphore>> = BTreeMap::new();
    let mut job_tokens: BTreeMap<String, CancellationToken> = BTreeMap::new();
    for (name, job) in &ctx.cfg.pipeline.jobs {
        if let Some(mp) = job.matrix.as_ref().and_then(|m| m.max_parallel) {
            job_sems.insert(name.clone(), Arc::new(Semaphore::new(mp as usize)));
        }
        job_tokens.insert(name.clone(), ctx.cfg.cancel.child_token());
    }
    let mut done: Vec<Option<JobReport>> = vec![None; n];
    // Failed, or skipped because something upstream failed.
    let mut failed_upstream = vec![false; n];
    let mut started = vec![false; n];
    let mut set: JoinSet<(usize, JobReport)> = JoinSet::new();
    loop {
        let mut progress = true;
        while progress {
            progress = false;
            for i in 0..n {
                if started[i] || ctx.units[i].needs.iter().any(|j| done[*j].is_none()) {
                    continue;
                }
                started[i] = true;
                let unit = &ctx.units[i];
                let job = &ctx.cfg.pipeline.jobs[&unit.job];
                let mut token = job_tokens[&unit.job].clone();
                let after_cancel = ctx.cfg.cancel.is_cancelled()
                    && ctx.cfg.always_after_cancel
                    && job.when == When::Always;
                if after_cancel {
                    // Started after the cancel, so it needs a token of its own.
                    token = CancellationToken::new();
                }
                let skip = if token.is_cancelled() {
                    Some((
                        JobStatus::Cancelled,
                        if ctx.cfg.cancel.is_cancelled() {
                            stop_reason(&ctx)
                        } else {
                            "another combination of the matrix failed (fail_fast)".to_string()
                        },
                    ))
                } else {
                    let upstream: Vec<&str> = unit
                        .needs
                        .iter()
                        .filter(|j| failed_upstream[**j])
                        .map(|j| ctx.units[*j].name.as_str())
                        .collect();
                    match job.when {
                        When::OnSuccess if !upstream.is_empty() => Some((
                            JobStatus::Skipped,
                            format!("`{}` did not succeed", upstream.join("`, `")),
                        )),
                        When::OnFailure if upstream.is_empty() => Some((
                            JobStatus::Skipped,
                            "if: on_failure, and nothing before it failed".to_string(),
                        )),
                        _ => None,
                    }
                };
                if let Some((status, reason)) = skip {
                    failed_upstream[i] = !unit.needs.is_empty()
                        && unit.needs.iter().any(|j| failed_upstream[*j])
                        && job.when == When::OnSuccess;
                    let r = not_run(unit, status, reason);
                    (ctx.observer)(Progress::JobFinished { report: r.clone() });
                    done[i] = Some(r);
                    progress = true;
                    continue;
                }
                let ctx = ctx.clone();
                let sem = sem.clone();
                let job_sem = job_sems.get(&unit.job).cloned();
                set.spawn(async move {
                    let _job_permit = match job_sem {
                        Some(s) => s.acquire_owned().await.ok(),
                        None => None,
                    };
                    let _permit = sem.acquire_owned().await;
                    let r = run_grouped(&ctx, i, &token).await;
                    (ctx.observer)(Progress::JobFinished { report: r.clone() });
                    (i, r)
                });
            }
        }
        let Some(joined) = set.join_next().await else {
            break;
        };
        let (i, r) = match joined {
            Ok(x) => x,
            Err(e) => {
                // A panic in a unit's task: a bug, reported as a failed run.
                tracing::error!(error = %e, "a pipeline job task failed");
                continue;
            }
        };
        let unit = &ctx.units[i];
        let job = &ctx.cfg.pipeline.jobs[&unit.job];
        if r.blocks() {
            failed_upstream[i] = true;
            if job.matrix.as_ref().is_some_and(|m| m.fail_fast) {
                job_tokens[&unit.job].cancel();
            }
        }
        done[i] = Some(r);
    }
    let jobs: Vec<JobReport> = done
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            r.unwrap_or_else(|| {
                not_run(
                    &ctx.units[i],
                    JobStatus::Failed,
                    "the job's task ended without a result".into(),
                )
            })
        })
        .collect();
    stop_watch.cancel();
    if let Some(gate) = &ctx.gate {
        for claim in held {
            gate.release(claim).await;
        }
    }
    let by_group = ctx.gate.as_ref().and_then(|g| g.cancelled_by(""));
    let status = if outer.is_cancelled() || by_group.is_some() {
        RunStatus::Cancelled
    } else if jobs.iter().any(JobReport::blocks) {
        RunStatus::Failed
    } else {
        RunStatus::Succeeded
    };
    // Workspaces are scratch; logs and artifacts stay with the run.
    let ws = run_dir.join("ws");
    let _ = tokio::task::spawn_blocking(move || files::remove_tree(&ws)).await;
    Ok(ctx.report(status, started_at, clock, jobs))
}

impl Ctx {
    fn report(
        &self,
        status: RunStatus,
        started: i64,
        clock: Instant,
        jobs: Vec<JobReport>,
    ) -> RunReport {
        RunReport {
            id: self.cfg.id,
            stack: self.cfg.stack.clone(),
            pipeline: self.cfg.pipeline_name.clone(),
            status,
            started,
            seconds: clock.elapsed().as_secs_f64(),
            jobs,
        }
    }
}

/// The report of a unit that never ran a step.
fn not_run(unit: &Unit, status: JobStatus, reason: String) -> JobReport {
    JobReport {
        name: unit.name.clone(),
        job: unit.job.clone(),
        matrix: unit.matrix.clone(),
        status,
        allowed_failure: false,
        reason: Some(reason),
        attempts: 0,
        seconds: 0.0,
        steps: Vec::new(),
        cache: Vec::new(),
        log: None,
    }
}

/// Why the run's token stopped a unit.
fn stop_reason(ctx: &Ctx) -> String {
    match ctx.gate.as_ref().and_then(|g| g.cancelled_by("")) {
        Some(group) => format!("a newer run of the concurrency group `{group}` cancelled this one"),
        None => "the run was cancelled".into(),
    }
}

/// A unit inside its job's concurrency group, if it has one.
async fn run_grouped(ctx: &Ctx, i: usize, token: &CancellationToken) -> JobReport {
    let unit = &ctx.units[i];
    let job = &ctx.cfg.pipeline.jobs[&unit.job];
    let (Some(gate), Some(c)) = (&ctx.gate, &job.concurrency) else {
        return run_unit(ctx, i, token).await;
    };
    let group = concurrency::unit_group(&c.group, &unit.matrix);
    // Its own token, so that its group cancels this unit alone.
    let token = token.child_token();
    let cancelled = |reason: String| not_run(unit, JobStatus::Cancelled, reason);
    let entered = gate
        .enter(&group, &unit.name, c.cancel_in_progress, &token, || {
            (ctx.observer)(Progress::Line {
                unit: unit.name.clone(),
                line: format!("waiting for the concurrency group `{group}`"),
            })
        })
        .await;
    let claim = match entered {
        Ok(Entered::Holding(claim)) => claim,
        Ok(Entered::Replaced) => {
            return cancelled(format!(
                "a newer job of the concurrency group `{group}` replaced this one while it waited"
            ))
        }
        Ok(Entered::Stopped) => return run_unit(ctx, i, &token).await,
        Err(e) => {
            let mut r = cancelled(format!("cannot enter the concurrency group `{group}`: {e}"));
            r.status = JobStatus::Failed;
            return r;
        }
    };
    let mut r = run_unit(ctx, i, &token).await;
    gate.release(claim).await;
    if r.status == JobStatus::Cancelled && gate.cancelled_by(&unit.name).is_some() {
        r.reason = Some(format!(
            "a newer job of the concurrency group `{group}` cancelled this one"
        ));
    }
    r
}

fn secret_values(cfg: &RunConfig) -> BTreeMap<String, Vec<String>> {
    // Every secret of every job masks every job's output.
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, job) in &cfg.pipeline.jobs {
        for s in &job.secrets {
            if let Ok(v) = read_secret(cfg, &s.from) {
                out.entry(name.clone()).or_default().push(v);
            }
        }
    }
    out
}

fn read_secret(cfg: &RunConfig, from: &SecretSource) -> Result<String, String> {
    match from {
        SecretSource::Env(var) => {
            std::env::var(var).map_err(|_| format!("the environment variable {var} is not set"))
        }
        SecretSource::Secret(name) => {
            let Some(path) = cfg.stack_secrets.get(name) else {
                return Err(format!("the stack has no secret `{name}`"));
            };
            std::fs::read_to_string(path)
                .map(|s| s.trim_end_matches(['\n', '\r']).to_string())
                .map_err(|e| format!("cannot read secret `{name}` from {}: {e}", path.display()))
        }
    }
}

fn job_secrets(cfg: &RunConfig, job: &Job) -> Result<Vec<(String, String)>, String> {
    job.secrets
        .iter()
        .map(|s| {
            read_secret(cfg, &s.from)
                .map(|v| (s.env.clone(), v))
                .map_err(|e| format!("secret {}: {e}", s.env))
        })
        .collect()
}

fn current_user() -> String {
    let uid = rustix::process::getuid().as_raw();
    let gid = rustix::process::getgid().as_raw();
    format!("{uid}:{gid}")
}

/// Writes a unit's masked output to its log file, off the async threads.
struct LogFile {
    tx: std::sync::mpsc::Sender<String>,
    writer: Option<tokio::task::JoinHandle<()>>,
}

impl LogFile {
    fn open(path: PathBuf) -> LogFile {
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let writer = tokio::task::spawn_blocking(move || {
            use std::io::Write;
            let Ok(f) = std::fs::File::create(&path) else {
                return;
            };
            let mut w = std::io::BufWriter::new(f);
            for line in rx {
                let _ = writeln!(w, "{line}");
            }
            let _ = w.flush();
        });
        LogFile {
            tx,
            writer: Some(writer),
        }
    }
    fn line(&self, s: &str) {
        let _ = self.tx.send(s.to_string());
    }
    async fn close(mut self) {
        drop(std::mem::replace(
            &mut self.tx,
            std::sync::mpsc::channel().0,
        ));
        if let Some(w) = self.writer.take() {
            let _ = w.await;
        }
    }
}

struct Started {
    env: Vec<(String, String)>,
    containers: Vec<String>,
    network: Option<String>,
}

#[tracing::instrument(name = "job", level = "info", skip_all, fields(job = %ctx.units[i].name))]
async fn run_unit(ctx: &Ctx, i: usize, token: &CancellationToken) -> JobReport {
    let clock = Instant::now();
    let cfg = &ctx.cfg;
    let unit = &ctx.units[i];
    let job = &cfg.pipeline.jobs[&unit.job];
    let slug = unit.slug();
    let run_dir = cfg.run_dir();
    let log_path = run_dir.join("logs").join(format!("{slug}.log"));
    let log = LogFile::open(log_path.clone());
    let mut report = JobReport {
        name: unit.name.clone(),
        job: unit.job.clone(),
        matrix: unit.matrix.clone(),
        status: JobStatus::Succeeded,
        allowed_failure: false,
        reason: None,
        attempts: 0,
        seconds: 0.0,
        steps: Vec::new(),
        cache: Vec::new(),
        log: Some(log_path),
    };
    let say = |line: String| {
        let line = ctx.masker.text(&line);
        log.line(&line);
        (ctx.observer)(Progress::Line {
            unit: unit.name.clone(),
            line,
        });
    };
    let fail = |mut report: JobReport, reason: String, clock: Instant| {
        say(format!("error: {reason}"));
        report.status = JobStatus::Failed;
        report.allowed_failure = job.continue_on_error;
        report.reason = Some(ctx.masker.text(&reason));
        report.seconds = clock.elapsed().as_secs_f64();
        report
    };
    (ctx.observer)(Progress::JobStarted {
        unit: unit.name.clone(),
        attempt: 1,
    });
    let secrets = match job_secrets(cfg, job) {
        Ok(s) => s,
        Err(e) => {
            let r = fail(report, e, clock);
            log.close().await;
            return r;
        }
    };
    if (job.image.is_some() || !job.services.is_empty()) && cfg.runtime.is_none() {
        let r = fail(
            report,
            "this job needs a container engine (`image` or `services`) and none answers: start Docker or Podman, or set DOCKER_HOST".into(),
            clock,
        );
        log.close().await;
        return r;
    }
    // The workspace.
    let ws = match cfg.pipeline.workspace {
        WorkspaceMode::Shared => cfg.project_dir.clone(),
        WorkspaceMode::Copy => {
            let ws = run_dir.join("ws").join(&slug);
            let src = cfg.project_dir.clone();
            let dest = ws.clone();
            let skip = cfg.state_dir.clone();
            match tokio::task::spawn_blocking(move || files::copy_project(&src, &dest, &skip)).await
            {
                Ok(Ok(_)) => ws,
                Ok(Err(e)) => {
                    let r = fail(
                        report,
                        format!("copying the project into {}: {e}", ws.display()),
                        clock,
                    );
                    log.close().await;
                    return r;
                }
                Err(e) => {
                    let r = fail(report, format!("copying the project: {e}"), clock);
                    log.close().await;
                    return r;
                }
            }
        }
    };
    // Artifacts of the units it needs.
    for j in &unit.needs {
        let from = run_dir.join("artifacts").join(ctx.units[*j].slug());
        if from.exists() {
            let to = ws.clone();
            let name = ctx.units[*j].name.clone();
            match tokio::task::spawn_blocking(move || files::copy_tree(&from, &to)).await {
                Ok(Ok(n)) => say(format!("artifacts: {n} files from `{name}`")),
                Ok(Err(e)) => say(format!("warning: artifacts from `{name}`: {e}")),
                Err(_) => {}
            }
        }
    }
    // Caches.
    let mut cache_dirs = Vec::new();
    for c in &job.cache {
        let root = ws.clone();
        let key_prefix = c.key.clone();
        let globs = c.files.clone();
        let key =
            match tokio::task::spawn_blocking(move || files::cache_key(&root, &key_prefix, &globs))
                .await
            {
                Ok(Ok(k)) => k,
                Ok(Err(e)) => {
                    say(format!(
                        "warning: cache `{}`: cannot compute its key: {e}",
                        c.key
                    ));
                    continue;
                }
                Err(_) => continue,
            };
        let dir = cfg.state_dir.join("cache").join(&key);
        let hit = dir.is_dir();
        if hit {
            let from = dir.clone();
            let to = ws.clone();
            let paths = c.paths.clone();
            let restored = tokio::task::spawn_blocking(move || -> std::io::Result<u64> {
                let mut n = 0;
                for p in paths {
                    let src = from.join(&p);
                    if src.exists() {
                        n += files::copy_tree(&src, &to.join(&p))?;
                    }
                }
                Ok(n)
            })
            .await;
            match restored {
                Ok(Ok(n)) => say(format!("cache hit: {key} ({n} files restored)")),
                Ok(Err(e)) => say(format!("warning: cache {key}: restoring: {e}")),
                Err(_) => {}
            }
        } else {
            say(format!("cache miss: {key}"));
        }
        report.cache.push(CacheReport {
            key: key.clone(),
            hit,
        });
        cache_dirs.push((dir, hit, c.paths.clone()));
    }
    // Environment, lowest precedence first.
    let in_container = job.image.is_some();
    let mut env: BTreeMap<String, String> = BTreeMap::new();
    if !in_container {
        env.extend(std::env::vars());
    }
    env.insert("CI".into(), "true".into());
    env.insert("TUG_RUN".into(), cfg.id.to_string());
    env.insert("TUG_PIPELINE".into(), cfg.pipeline_name.clone());
    env.insert("TUG_JOB".into(), unit.name.clone());
    env.insert(
        "TUG_WORKSPACE".into(),
        if in_container {
            exec::WORKSPACE_MOUNT.to_string()
        } else {
            ws.display().to_string()
        },
    );
    env.extend(cfg.pipeline.env.clone());
    env.extend(job.env.clone());
    for (k, v) in &unit.matrix {
        env.insert(format!("MATRIX_{}", env_name(k)), v.clone());
    }
    env.extend(secrets);
    let labels: BTreeMap<String, String> = [
        (labels::RUN.to_string(), cfg.id.to_string()),
        (labels::OWNER.to_string(), ctx.owner.clone()),
        (
            labels::PIPELINE.to_string(),
            format!("{}/{}", cfg.stack, cfg.pipeline_name),
        ),
    ]
    .into();
    let base = format!("tug-run-{}-{}", cfg.id, slug);
    // Services.
    let mut started_services = Started {
        env: Vec::new(),
        containers: Vec::new(),
        network: None,
    };
    if let (false, Some(rt)) = (job.services.is_empty(), &cfg.runtime) {
        match start_services(
            rt,
            &base,
            &labels,
            &job.services,
            in_container,
            token,
            &mut started_services,
            &say,
        )
        .await
        {
            Ok(()) => env.extend(started_services.env.clone()),
            Err(e) => {
                stop_services(rt, &started_services).await;
                let r = fail(report, e, clock);
                log.close().await;
                return r;
            }
        }
    }
    let shell: Vec<String> = job
        .shell
        .clone()
        .unwrap_or_else(|| vec!["sh".into(), "-e".into(), "-c".into()]);
    // What stops a cleanup step: nothing but its own timeout.
    let cleanup = CancellationToken::new();
    if cfg.cancel.is_cancelled() {
        env.insert("TUG_RUN_CANCELLED".into(), "true".into());
    }
    // Attempts.
    let attempts = job.retry + 1;
    let mut ok = false;
    let mut timed_out = false;
    for attempt in 1..=attempts {
        report.attempts = attempt;
        report.steps.clear();
        if attempt > 1 {
            say(format!("retrying: attempt {attempt} of {attempts}"));
            (ctx.observer)(Progress::JobStarted {
                unit: unit.name.clone(),
                attempt,
            });
        }
        let deadline = job.timeout.map(|t| Instant::now() + t.std());
        let mut failed = false;
        timed_out = false;
        for (si, step) in job.steps.iter().enumerate() {
            let label = step.label();
            // After a cancel or the job's timeout only `always` steps run.
            let cancelled = token.is_cancelled() || timed_out;
            let run_it = match step.when {
                When::OnSuccess => !failed && !cancelled,
                When::OnFailure => failed && !cancelled,
                When::Always => true,
            };
            if !run_it {
                report.steps.push(StepReport {
                    name: label,
                    status: JobStatus::Skipped,
                    exit_code: None,
                    allowed_failure: false,
                    seconds: 0.0,
                });
                continue;
            }
            (ctx.observer)(Progress::StepStarted {
                unit: unit.name.clone(),
                step: label.clone(),
            });
            log.line(&format!("==> {}", ctx.masker.text(&label)));
            let mut step_env = env.clone();
            step_env.extend(step.env.clone());
            if cancelled {
                step_env.insert("TUG_CANCELLED".into(), "true".into());
            }
            let status_file = run_dir
                .join("logs")
                .join(format!("{slug}.{attempt}.{si}.status"));
            if job.image.is_none() {
                step_env.insert(STEP_STATUS_VAR.into(), status_file.display().to_string());
            }
            let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            let step_timeout = match (step.timeout.map(|t| t.std()), left) {
                // Cleanup is bounded by its own timeout only.
                (a, _) if cancelled => a,
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let wd = match (&job.working_dir, &step.working_dir) {
                (Some(a), Some(b)) => Some(format!("{a}/{b}")),
                (a, b) => a.clone().or(b.clone()),
            };
            let sr = StepRun {
                shell: &shell,
                script: &step.run,
                workspace: &ws,
                working_dir: wd.as_deref(),
                env: &step_env,
                timeout: step_timeout,
                cancel: if cancelled { &cleanup } else { token },
            };
            let mut masker = ctx.masker.clone();
            let unit_name = unit.name.clone();
            let mut emit = |line: String| {
                for l in masker.line(&line) {
                    log.line(&l);
                    (ctx.observer)(Progress::Line {
                        unit: unit_name.clone(),
                        line: l,
                    });
                }
            };
            let clock_step = Instant::now();
            let end = match (&job.image, &cfg.runtime) {
                (Some(image), Some(rt)) => {
                    let c = exec::ContainerStep {
                        runtime: rt,
                        image,
                        name: format!("{base}-{attempt}-{si}"),
                        labels: &labels,
                        network: started_services.network.as_deref(),
                        user: ctx.user.clone(),
                    };
                    exec::container_step(&sr, &c, &mut emit).await
                }
                _ => exec::host_step(&sr, &mut emit).await,
            };
            for l in masker.flush() {
                log.line(&l);
                (ctx.observer)(Progress::Line {
                    unit: unit.name.clone(),
                    line: l,
                });
            }
            let secs = clock_step.elapsed().as_secs_f64();
            let (status, code) = match &end {
                StepEnd::Exited(0) if reported_skipped(&status_file).await => {
                    (JobStatus::Skipped, Some(0))
                }
                StepEnd::Exited(0) => (JobStatus::Succeeded, Some(0)),
                StepEnd::Exited(c) => (JobStatus::Failed, Some(*c)),
                StepEnd::TimedOut => (JobStatus::TimedOut, None),
                StepEnd::Cancelled => (JobStatus::Cancelled, None),
                StepEnd::Error(e) => {
                    say(format!("error: {e}"));
                    (JobStatus::Failed, None)
                }
            };
            let job_deadline_hit = status == JobStatus::TimedOut
                && !cancelled
                && deadline.is_some_and(|d| Instant::now() + Duration::from_millis(50) >= d);
            if status == JobStatus::TimedOut {
                say(format!(
                    "timed out after {:.1}s{}",
                    secs,
                    if job_deadline_hit {
                        " (the job's timeout)"
                    } else {
                        ""
                    }
                ));
                if job_deadline_hit {
                    timed_out = true;
                }
            }
            let allowed = status.failed() && step.continue_on_error;
            if status.failed() && !allowed {
                failed = true;
            }
            let sr = StepReport {
                name: label,
                status,
                exit_code: code,
                allowed_failure: allowed,
                seconds: secs,
            };
            (ctx.observer)(Progress::StepFinished {
                unit: unit.name.clone(),
                step: sr.clone(),
            });
            report.steps.push(sr);
            if status == JobStatus::Cancelled {
                failed = true;
            }
        }
        if token.is_cancelled() {
            break;
        }
        if !failed && !timed_out {
            ok = true;
            break;
        }
    }
    if let Some(rt) = &cfg.runtime {
        stop_services(rt, &started_services).await;
    }
    if ok {
        // Artifacts, then caches that missed.
        if !job.artifacts.is_empty() {
            let to = run_dir.join("artifacts").join(&slug);
            let from = ws.clone();
            let paths = job.artifacts.clone();
            let saved = tokio::task::spawn_blocking(move || -> Result<u64, String> {
                let mut n = 0;
                for p in paths {
                    let src = from.join(&p);
                    if !src.exists() {
                        return Err(format!("artifact `{p}` does not exist after the job"));
                    }
                    n += files::copy_tree(&src, &to.join(&p))
                        .map_err(|e| format!("artifact `{p}`: {e}"))?;
                }
                Ok(n)
            })
            .await
            .unwrap_or_else(|e| Err(e.to_string()));
            match saved {
                Ok(n) => say(format!("artifacts: {n} files kept")),
                Err(e) => {
                    let r = fail(report, e, clock);
                    log.close().await;
                    return r;
                }
            }
        }
        for (dir, hit, paths) in cache_dirs {
            if hit {
                continue;
            }
            let from = ws.clone();
            let tmp = dir.with_extension(format!("tmp-{}", std::process::id()));
            let saved = tokio::task::spawn_blocking(move || -> std::io::Result<u64> {
                let mut n = 0;
                let _ = files::remove_tree(&tmp);
                std::fs::create_dir_all(&tmp)?;
                for p in paths {
                    let src = from.join(&p);
                    if src.exists() {
                        n += files::copy_tree(&src, &tmp.join(&p))?;
                    }
                }
                // Whole or not at all: a concurrent saver of the same key may win.
                if std::fs::rename(&tmp, &dir).is_err() {
                    let _ = files::remove_tree(&tmp);
                }
                Ok(n)
            })
            .await;
            if let Ok(Ok(n)) = saved {
                say(format!("cache saved ({n} files)"));
            }
        }
    }
    report.seconds = clock.elapsed().as_secs_f64();
    let all_skipped =
        !report.steps.is_empty() && report.steps.iter().all(|s| s.status == JobStatus::Skipped);
    report.status = if token.is_cancelled() && !ok {
        JobStatus::Cancelled
    } else if ok && all_skipped {
        report.reason = Some("its condition kept every step from running".into());
        JobStatus::Skipped
    } else if ok {
        JobStatus::Succeeded
    } else if timed_out {
        JobStatus::TimedOut
    } else {
        JobStatus::Failed
    };
    if report.status.failed() {
        report.allowed_failure = job.continue_on_error;
    }
    if report.status == JobStatus::Cancelled {
        report.reason = Some(if cfg.cancel.is_cancelled() {
            stop_reason(ctx)
        } else {
            "another combination of the matrix failed (fail_fast)".into()
        });
    }
    log.close().await;
    report
}

/// The variable naming a file where a host step may write `skipped`: its
/// own condition kept it from running (the GitHub step runner does).
pub const STEP_STATUS_VAR: &str = "TUG_STEP_STATUS";

async fn reported_skipped(path: &Path) -> bool {
    tokio::fs::read_to_string(path)
        .await
        .is_ok_and(|s| s.trim() == "skipped")
}

fn env_name(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

#[allow(clippy::too_many_arguments)]
async fn start_services(
    rt: &DockerRuntime,
    base: &str,
    labels: &BTreeMap<String, String>,
    services: &BTreeMap<String, JobService>,
    in_container: bool,
    token: &CancellationToken,
    started: &mut Started,
    say: &(dyn Fn(String) + Sync),
) -> Result<(), String> {
    if in_container {
        let net = base.to_string();
        rt.create_network(&net, labels)
            .await
            .map_err(|e| format!("creating network {net}: {e}"))?;
        started.network = Some(net);
    }
    // Subscribe before starting, so a quick health verdict is not missed.
    let filter = vec![(labels::RUN.to_string(), labels.get(labels::RUN).cloned())];
    let mut events = rt.events(&filter);
    let mut waiting: Vec<(String, String, &JobService, Option<u16>)> = Vec::new();
    for (name, svc) in services {
        let mut spec = ContainerSpec::new(format!("{base}-svc-{name}"), &svc.image);
        spec.command = svc.command.clone();
        spec.env = svc
            .env
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        spec.labels = labels.clone();
        spec.network = started.network.clone();
        spec.aliases = vec![name.clone()];
        spec.tmpfs = vec!["/tmp".into()];
        if !in_container {
            spec.port = svc.port;
        }
        if let Some(h) = &svc.health {
            if let Some(test) = &h.exec {
                spec.healthcheck = Some(ExecHealth {
                    test: test.clone(),
                    interval: h.interval.std(),
                    timeout: h.timeout.std(),
                    retries: h.retries,
                    start_period: h.start_period.std(),
                });
            }
        }
        let id = rt
            .create_container(&spec)
            .await
            .map_err(|e| format!("service `{name}`: creating its container: {e}"))?;
        started.containers.push(id.clone());
        rt.start_container(&id)
            .await
            .map_err(|e| format!("service `{name}`: starting: {e}"))?;
        let info = rt
            .inspect_container(&id)
            .await
            .map_err(|e| format!("service `{name}`: {e}"))?;
        let host_port = info.and_then(|i| i.host_port);
        let var = env_name(name);
        if in_container {
            started.env.push((format!("{var}_HOST"), name.clone()));
            if let Some(p) = svc.port {
                started.env.push((format!("{var}_PORT"), p.to_string()));
            }
        } else {
            started
                .env
                .push((format!("{var}_HOST"), "127.0.0.1".into()));
            if let Some(p) = host_port {
                started.env.push((format!("{var}_PORT"), p.to_string()));
            }
        }
        waiting.push((name.clone(), id, svc, host_port));
    }
    for (name, id, svc, host_port) in waiting {
        say(format!("service `{name}`: waiting until healthy"));
        let h = svc.health.clone();
        let limit = h
            .as_ref()
            .map(|h| h.start_period.std() + (h.interval.std() + h.timeout.std()) * (h.retries + 1))
            .unwrap_or(Duration::from_secs(30))
            + Duration::from_secs(10);
        let deadline = tokio::time::Instant::now() + limit;
        let exec = h.as_ref().and_then(|h| h.exec.as_ref()).is_some();
        let verdict: Result<(), String> = if exec {
            // The engine runs the check; its verdict arrives as an event.
            let mut result = Err(format!("service `{name}`: not healthy after {limit:?}"));
            if let Ok(Some(i)) = rt.inspect_container(&id).await {
                if i.health == EngineHealth::Healthy {
                    result = Ok(());
                }
            }
            while result.is_err() {
                use futures_util::StreamExt;
                let ev = tokio::select! {
                    ev = events.next() => ev,
                    _ = tokio::time::sleep_until(deadline) => break,
                    _ = token.cancelled() => break,
                };
                match ev {
                    Some(RuntimeEvent::Container(c)) if c.id == id => match c.change {
                        tug_runtime::ContainerChange::Health {
                            health: EngineHealth::Healthy,
                        } => result = Ok(()),
                        tug_runtime::ContainerChange::Died { exit_code } => {
                            result = Err(format!("service `{name}` exited (code {exit_code:?}) before it was healthy"));
                            break;
                        }
                        _ => {}
                    },
                    Some(RuntimeEvent::Resumed | RuntimeEvent::Reopened) => {
                        if let Ok(Some(i)) = rt.inspect_container(&id).await {
                            if i.health == EngineHealth::Healthy {
                                result = Ok(());
                            }
                        }
                    }
                    None => break,
                    _ => {}
                }
            }
            result
        } else {
            let probe_port = host_port.filter(|_| !in_container);
            match (probe_port, &h) {
                (Some(port), _) => {
                    let http = h.as_ref().and_then(|h| h.http.clone());
                    let interval = h
                        .as_ref()
                        .map(|h| h.interval.std())
                        .unwrap_or(Duration::from_millis(200));
                    let timeout = h
                        .as_ref()
                        .map(|h| h.timeout.std())
                        .unwrap_or(Duration::from_secs(1));
                    let mut last: String;
                    loop {
                        let r = match &http {
                            Some(path) => tug_engine::health::http(port, path, timeout).await,
                            None => tug_engine::health::tcp(port, timeout).await,
                        };
                        match r {
                            Ok(_) => break Ok(()),
                            Err(e) => last = e,
                        }
                        if tokio::time::Instant::now() >= deadline || token.is_cancelled() {
                            break Err(format!(
                                "service `{name}`: not healthy after {limit:?}: {last}"
                            ));
                        }
                        tokio::time::sleep(interval).await;
                    }
                }
                // No check it can run from here: running is enough.
                _ => Ok(()),
            }
        };
        verdict?;
        say(format!("service `{name}`: healthy"));
    }
    Ok(())
}

async fn stop_services(rt: &DockerRuntime, s: &Started) {
    for id in &s.containers {
        let _ = rt.remove_container(id).await;
    }
    if let Some(n) = &s.network {
        let _ = rt.remove_network(n).await;
    }
}

/// Removes the containers and networks of runs whose tug is gone, and
/// marks those runs interrupted. Runs at the start of every pipeline command.
pub async fn sweep(
    rt: Option<&DockerRuntime>,
    store: &crate::store::RunStore,
) -> Result<Vec<i64>, crate::store::RunStoreError> {
    let orphans = store.mark_orphans(exec::owner_alive)?;
    let mut owners: Vec<String> = orphans.iter().map(|(_, o)| o.clone()).collect();
    if let Some(rt) = rt {
        // Runs this store knows first, by owner: a narrow listing that other
        // runs' containers, coming and going, cannot disturb.
        for o in owners.clone() {
            remove_owned(rt, vec![(labels::OWNER.to_string(), Some(o))]).await;
        }
        // Then any run's leftovers (another state directory, a store lost).
        for o in remove_owned(rt, vec![(labels::RUN.to_string(), None)]).await {
            if !owners.contains(&o) {
                owners.push(o);
            }
        }
        for o in owners {
            let filter = vec![(labels::OWNER.to_string(), Some(o))];
            if let Ok(ns) = rt.list_networks(&filter).await {
                for n in ns {
                    let _ = rt.remove_network(&n).await;
                }
            }
        }
    }
    Ok(orphans.into_iter().map(|(id, _)| id).collect())
}

/// Removes the containers matching `filter` whose owner is gone; returns
/// those owners. A listing can fail while containers are being removed
/// elsewhere, so it is retried.
async fn remove_owned(rt: &DockerRuntime, filter: tug_runtime::LabelFilter) -> Vec<String> {
    let mut owners = Vec::new();
    for attempt in 0..5 {
        match rt.list_containers(&filter).await {
            Ok(cs) => {
                for c in cs {
                    let owner = c.label(labels::OWNER).unwrap_or("").to_string();
                    if !exec::owner_alive(&owner) {
                        let _ = rt.remove_container(&c.id).await;
                        if !owners.contains(&owner) {
                            owners.push(owner);
                        }
                    }
                }
                break;
            }
            Err(e) => {
                tracing::debug!(error = %e, attempt, "listing pipeline containers");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    owners
}

/// The log file of `unit` in a run directory.
pub fn log_path(run_dir: &Path, unit: &Unit) -> PathBuf {
    run_dir.join("logs").join(format!("{}.log", unit.slug()))
}
