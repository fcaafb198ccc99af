//! The agent runs pipelines by itself: on a cron schedule (`on: { schedule }`)
//! and on a signed push webhook (`on: { webhook: { secret } }`,
//! `POST /v1/hooks/{pipeline}`). Each run's job output goes on the event bus
//! (`pipeline_line`, `pipeline_job`, `pipeline_finished`), so SSE
//! subscribers and the dashboard follow it live; runs land in the stack's
//! store as `tug pipeline run` leaves them (`tug pipeline runs`).
//!
//! Contract of the webhook route: it needs no API token (the signature is
//! the proof); a request without a signature, or with one that does not
//! match, is 401 and runs nothing; the secret is read from its file at each
//! request and never logged.

use super::{desired, failure, reply, Shared};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use std::collections::BTreeMap;
use std::sync::Arc;
use tug_engine::Event;
use tug_pipeline::run::{Observer, Progress};
use tug_pipeline::trigger::{self, StackRun};
use tug_runtime::Runtime;
use tug_spec::Stack;

/// The stack as last asked of the agent (pipelines included).
async fn current<R: Runtime>(a: &Shared<R>) -> Stack {
    desired(a)
        .await
        .map(|(_, s)| s)
        .unwrap_or_else(|| a.stack.clone())
}

/// Starts a run of `pipeline`; resolves to its id once it has one (None if
/// it could not start: the reason is on the bus and in the log).
fn start<R: Runtime>(
    a: &Shared<R>,
    stack: Stack,
    pipeline: String,
    trigger: &'static str,
) -> (
    tokio::sync::oneshot::Receiver<i64>,
    tokio::task::JoinHandle<()>,
) {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let bus = a.bus.clone();
    // The run store is a SQLite connection held across awaits (not Send):
    // the run gets a blocking thread of its own that drives it.
    let handle = tokio::runtime::Handle::current();
    let task = tokio::task::spawn_blocking(move || {
        handle.block_on(async move {
        let state_dir = tug_engine::store::state_dir(&stack.name);
        let run_id = Arc::new(std::sync::atomic::AtomicI64::new(0));
        let observer: Observer = {
            let bus = bus.clone();
            let run_id = Arc::clone(&run_id);
            let pipeline = pipeline.clone();
            Arc::new(move |p: Progress| {
                let run = run_id.load(std::sync::atomic::Ordering::Relaxed);
                match p {
                    Progress::Line { unit, line } => bus.publish(
                        None,
                        Event::PipelineLine {
                            pipeline: pipeline.clone(),
                            run,
                            job: unit,
                            line,
                        },
                    ),
                    Progress::JobFinished { report } => bus.publish(
                        None,
                        Event::PipelineJob {
                            pipeline: pipeline.clone(),
                            run,
                            job: report.name.clone(),
                            status: report.status.as_str().to_string(),
                            seconds: report.seconds,
                        },
                    ),
                    _ => {}
                }
            })
        };
        let begin = {
            let bus = bus.clone();
            let pipeline = pipeline.clone();
            let run_id = Arc::clone(&run_id);
            move |id: i64, _: &[i64]| {
                run_id.store(id, std::sync::atomic::Ordering::Relaxed);
                tracing::info!(pipeline = %pipeline, run = id, trigger, "pipeline run started");
                bus.publish(
                    None,
                    Event::PipelineStarted {
                        pipeline: pipeline.clone(),
                        run: id,
                        trigger: trigger.to_string(),
                    },
                );
                let _ = tx.send(id);
            }
        };
        let r = StackRun {
            stack: &stack,
            pipeline: &pipeline,
            state_dir: &state_dir,
            jobs: Vec::new(),
            parallelism: None,
            cancel: tokio_util::sync::CancellationToken::new(),
        };
        match trigger::run_stack(r, begin, observer).await {
            Ok(ran) => {
                tracing::info!(pipeline = %pipeline, run = ran.report.id, status = ran.report.status.as_str(), "pipeline run finished");
                bus.publish(
                    None,
                    Event::PipelineFinished {
                        pipeline: pipeline.clone(),
                        run: ran.report.id,
                        status: ran.report.status.as_str().to_string(),
                    },
                );
            }
            Err(e) => {
                tracing::warn!(pipeline = %pipeline, error = %e, "pipeline run failed to run");
                bus.publish(
                    None,
                    Event::PipelineFinished {
                        pipeline: pipeline.clone(),
                        run: run_id.load(std::sync::atomic::Ordering::Relaxed),
                        status: format!("error: {e}"),
                    },
                );
            }
        }
    })
    });
    (rx, task)
}

/// Fires the scheduled pipelines for as long as the agent runs. The stack
/// is read again before each wait, so an `up` that changes a schedule
/// takes effect at once; a pipeline still running when it is due again is
/// not started twice.
pub(super) async fn schedules<R: Runtime>(a: Shared<R>) {
    let mut running: BTreeMap<String, tokio::task::JoinHandle<()>> = BTreeMap::new();
    loop {
        running.retain(|_, t| !t.is_finished());
        let stack = current(&a).await;
        let now = chrono::Utc::now();
        let next = trigger::scheduled(&stack)
            .into_iter()
            .filter_map(|(name, patterns)| Some((trigger::next_fire(&patterns, now)?, name)))
            .min();
        let Some((at, name)) = next else {
            tokio::time::sleep(std::time::Duration::from_secs(30)).await;
            continue;
        };
        // Wake at least every 30s to see a changed stack.
        let wait = (at - now)
            .to_std()
            .unwrap_or_default()
            .min(std::time::Duration::from_secs(30));
        tokio::time::sleep(wait).await;
        if chrono::Utc::now() < at {
            continue;
        }
        match running.entry(name.clone()) {
            std::collections::btree_map::Entry::Occupied(_) => {
                tracing::info!(pipeline = %name, "scheduled run skipped: the last one is still running");
            }
            std::collections::btree_map::Entry::Vacant(v) => {
                v.insert(start(&a, stack, name, "schedule").1);
            }
        }
        // Past this second, so one fire is not taken twice.
        let left = at + chrono::Duration::milliseconds(1) - chrono::Utc::now();
        if let Ok(d) = left.to_std() {
            tokio::time::sleep(d).await;
        }
    }
}

/// `POST /v1/hooks/{pipeline}`: a GitHub or GitLab push webhook.
pub(super) async fn hook<R: Runtime>(
    State(a): State<Shared<R>>,
    Path(pipeline): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let stack = current(&a).await;
    let Some(p) = stack.pipelines.get(&pipeline) else {
        return failure(
            StatusCode::NOT_FOUND,
            format!("no pipeline `{pipeline}` in stack {}", stack.name),
            true,
        );
    };
    let Some(w) = p.on.webhook.clone() else {
        return failure(
            StatusCode::NOT_FOUND,
            format!("pipeline `{pipeline}` has no `on: {{ webhook: {{ secret }} }}`"),
            true,
        );
    };
    let Some(file) = stack.secrets.get(&w.secret).map(|s| s.file.clone()) else {
        return failure(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the stack has no secret `{}`", w.secret),
            false,
        );
    };
    let file = stack.dir.join(file);
    let secret = match tokio::fs::read(&file).await {
        Ok(s) => s,
        Err(e) => {
            return failure(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("reading the webhook secret {}: {e}", file.display()),
                false,
            )
        }
    };
    // A trailing newline in the file is not part of the secret.
    let secret = secret.trim_ascii_end();
    let header = |k: &str| headers.get(k).and_then(|v| v.to_str().ok());
    let sender = match trigger::verify(
        secret,
        &body,
        header("x-hub-signature-256"),
        header("x-gitlab-token"),
    ) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(pipeline = %pipeline, reason = %e, "webhook refused");
            return failure(StatusCode::UNAUTHORIZED, e.to_string(), true);
        }
    };
    let event = match sender {
        trigger::Sender::Github => header("x-github-event").unwrap_or("push"),
        trigger::Sender::Gitlab => header("x-gitlab-event").unwrap_or("Push Hook"),
    };
    if event == "ping" {
        return reply(serde_json::json!({ "ran": false, "reason": "ping" }));
    }
    if event != "push" && event != "Push Hook" {
        return reply(serde_json::json!({
            "ran": false,
            "reason": format!("`{event}` events do not run pipelines; push events do"),
        }));
    }
    let branch = match trigger::pushed_branch(&body) {
        Ok(b) => b,
        Err(e) => return failure(StatusCode::BAD_REQUEST, e.to_string(), true),
    };
    if !w.branches.is_empty() && !branch.as_ref().is_some_and(|b| w.branches.contains(b)) {
        return reply(serde_json::json!({
            "ran": false,
            "reason": format!(
                "a push to {} does not run it: `branches` is {}",
                branch.as_deref().unwrap_or("no branch"),
                w.branches.join(", ")
            ),
        }));
    }
    let (id, _task) = start(&a, stack, pipeline.clone(), sender.as_str());
    match id.await {
        Ok(run) => (
            StatusCode::ACCEPTED,
            axum::Json(serde_json::json!({ "ran": true, "pipeline": pipeline, "run": run })),
        )
            .into_response(),
        Err(_) => failure(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("pipeline `{pipeline}` could not start: see `tug agent logs`"),
            false,
        ),
    }
}
