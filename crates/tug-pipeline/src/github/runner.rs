//! The step runner: one step of an imported job, run the way a GitHub runner
//! runs it.
//!
//! Each call reads the job's plan and the records of the steps before it
//! from the run's state directory, decides `if:`, renders `${{ }}` with the
//! `steps`, `needs`, `env` and `job` contexts, runs the script with the
//! step's shell (or a built-in action), applies `GITHUB_OUTPUT`,
//! `GITHUB_ENV`, `GITHUB_PATH` and `GITHUB_STEP_SUMMARY`, and records the
//! outcome. `complete` ends the job: its result and `outputs` for the jobs
//! that need it.
//!
//! ```text
//! state/jobs/<key>.json           the plan (written at import)
//! state/run/<key>/steps/<i>.json  a step's outcome, conclusion, outputs, note
//! state/run/<key>/env.json        GITHUB_ENV so far;  path.json: GITHUB_PATH so far
//! state/run/<key>/summary.md      GITHUB_STEP_SUMMARY
//! state/run/<key>/frames/<f>.json a composite action call as it started: inputs, env, skip
//! state/run/<key>/result.json     the job's result and outputs
//! state/artifacts/<name>/         upload-artifact
//! ```

use super::actions::{self, Places};
use super::expr::{parse_condition, Scope, Status, Template};
use super::plan::JobPlan;
use super::workflow::{Dyn, Tpl};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What happened to one step.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    pub index: usize,
    pub name: String,
    /// success, failure or skipped, before continue-on-error.
    pub outcome: String,
    /// success, failure or skipped, after continue-on-error.
    pub conclusion: String,
    #[serde(default)]
    pub outputs: BTreeMap<String, String>,
    /// Why it was skipped, or what a built-in did.
    #[serde(default)]
    pub note: String,
}

/// How a job ended, for the jobs that need it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct JobResult {
    pub result: String,
    #[serde(default)]
    pub outputs: BTreeMap<String, String>,
    #[serde(default)]
    pub steps: Vec<StepRecord>,
    #[serde(default)]
    pub note: String,
}

#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    #[error("reading {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Plan {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("`{0}` is not a step (a number, `post-N` or `complete`)")]
    Which(String),
    #[error("{file}:{line}:{col}: {message}")]
    Expr {
        file: PathBuf,
        line: usize,
        col: usize,
        message: String,
    },
    #[error("{0}")]
    Action(String),
}

/// How a call of a local composite action started, decided at its first
/// step as GitHub decides it when the action starts.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct FrameState {
    /// Why its steps do not run: the caller's `if:`, or an enclosing call's.
    skip: Option<String>,
    /// The `inputs` context of its steps.
    inputs: Map<String, Value>,
    /// The caller step's `env:`, for every step of the action.
    env: Vec<(String, String)>,
    /// The caller's `continue-on-error`: a failed action does not fail the job.
    absorbs: bool,
}

fn expr_error_in(file: &Path, t: &Tpl, message: String) -> RunnerError {
    RunnerError::Expr {
        file: file.to_path_buf(),
        line: t.at.line,
        col: t.at.col,
        message,
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> RunnerError + '_ {
    move |source| RunnerError::Io {
        path: path.to_path_buf(),
        source,
    }
}

struct Job {
    state: PathBuf,
    dir: PathBuf,
    plan: JobPlan,
    workspace: PathBuf,
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, RunnerError> {
    let text = std::fs::read(path).map_err(io(path))?;
    serde_json::from_slice(&text).map_err(|source| RunnerError::Plan {
        path: path.to_path_buf(),
        source,
    })
}

fn write_json<T: Serialize>(path: &Path, v: &T) -> Result<(), RunnerError> {
    if let Some(p) = path.parent() {
        std::fs::create_dir_all(p).map_err(io(p))?;
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(v).unwrap_or_default()).map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))
}

impl Job {
    /// `id` is the workflow's job id; a matrix job's combination comes from
    /// the executor's `MATRIX_GH`.
    fn load(state: &Path, id: &str) -> Result<Job, RunnerError> {
        let index = state.join("jobs").join(format!("{id}.matrix.json"));
        let key = if index.is_file() {
            let index: BTreeMap<String, String> = read_json(&index)?;
            let var = format!("MATRIX_{}", super::plan::MATRIX_AXIS.to_ascii_uppercase());
            let label = std::env::var(&var).unwrap_or_default();
            index.get(&label).cloned().ok_or_else(|| {
                RunnerError::Which(format!("{id}: no combination `{label}` ({var})"))
            })?
        } else {
            id.to_string()
        };
        let plan: JobPlan = read_json(&state.join("jobs").join(format!("{key}.json")))?;
        let dir = state.join("run").join(key);
        std::fs::create_dir_all(dir.join("steps")).map_err(io(&dir))?;
        let workspace = std::env::current_dir().map_err(io(Path::new(".")))?;
        Ok(Job {
            state: state.to_path_buf(),
            dir,
            plan,
            workspace,
        })
    }

    fn records(&self) -> Vec<StepRecord> {
        (0..self.plan.steps.len())
            .filter_map(|i| read_json(&self.dir.join("steps").join(format!("{i}.json"))).ok())
            .collect()
    }

    fn expr_error(&self, t: &Tpl, message: String) -> RunnerError {
        expr_error_in(&self.plan.file, t, message)
    }

    /// The file a step's expressions are in: its action.yml inside a call.
    fn file_of(&self, frame: Option<usize>) -> &Path {
        frame
            .and_then(|f| self.plan.frames.get(f))
            .map_or(&self.plan.file, |f| &f.file)
    }

    /// Whether a step of `frame` failed: inside a composite action only its
    /// own steps count, as GitHub's `success()` there reads the action's status.
    fn failed_in(&self, frame: Option<usize>, records: &[StepRecord]) -> bool {
        records.iter().any(|r| {
            r.conclusion == "failure"
                && self
                    .plan
                    .steps
                    .get(r.index)
                    .is_some_and(|s| s.frame == frame)
        })
    }

    /// The calls `frame` is in, outermost first, each as it started.
    fn frames_of(
        &self,
        frame: Option<usize>,
        records: &[StepRecord],
    ) -> Result<Vec<(usize, FrameState)>, RunnerError> {
        let mut chain = Vec::new();
        let mut f = frame;
        while let Some(i) = f {
            chain.push(i);
            f = self.plan.frames.get(i).and_then(|p| p.parent);
        }
        chain.reverse();
        chain
            .into_iter()
            .map(|i| Ok((i, self.frame_state(i, records)?)))
            .collect()
    }

    /// The job's env, then each enclosing caller's `env:`.
    fn env_in(
        &self,
        chain: &[(usize, FrameState)],
        base: &Scope,
    ) -> Result<Map<String, Value>, RunnerError> {
        let mut env = self.job_env(base)?;
        for (_, st) in chain {
            for (k, v) in &st.env {
                env.insert(k.clone(), Value::String(v.clone()));
            }
        }
        Ok(env)
    }

    /// Starts call `f` once: its caller's `if:`, `env:`, inputs and
    /// `continue-on-error`, in the scope of the steps around the caller.
    fn frame_state(&self, f: usize, records: &[StepRecord]) -> Result<FrameState, RunnerError> {
        let path = self.dir.join("frames").join(format!("{f}.json"));
        if let Ok(st) = read_json::<FrameState>(&path) {
            return Ok(st);
        }
        let fp = self
            .plan
            .frames
            .get(f)
            .ok_or_else(|| RunnerError::Which(format!("call {f}")))?;
        let caller = self
            .plan
            .steps
            .iter()
            .find(|s| s.ends == Some(f))
            .map(|s| &s.def)
            .ok_or_else(|| RunnerError::Which(format!("the end of call {f}")))?;
        let chain = self.frames_of(fp.parent, records)?;
        let mut st = FrameState::default();
        if let Some(why) = chain.last().and_then(|(_, s)| s.skip.clone()) {
            st.skip = Some(why);
            write_json(&path, &st)?;
            return Ok(st);
        }
        let file = self.file_of(fp.parent);
        let at = chain.last().map(|(i, s)| (*i, s));
        let status = Status {
            failed: self.failed_in(fp.parent, records),
            cancelled: job_cancelled(),
        };
        let base = self.scope_at(at, &Map::new(), status, records);
        let env = self.env_in(&chain, &base)?;
        let scope = self.scope_at(at, &env, status, records);
        let cond = caller.condition.clone().unwrap_or(Tpl {
            text: "success()".into(),
            at: caller.at,
        });
        let e = parse_condition(&cond.text).map_err(|e| expr_error_in(file, &cond, e.message))?;
        if !scope
            .test(&e)
            .map_err(|e| expr_error_in(file, &cond, e.message))?
        {
            st.skip = Some(if caller.condition.is_some() {
                format!("`if: {}` is false", cond.text.trim())
            } else {
                "a step before it failed".to_string()
            });
            write_json(&path, &st)?;
            return Ok(st);
        }
        let mut step_env = env;
        for (k, t) in &caller.env {
            let mut s = scope.clone();
            s.set("env", Value::Object(step_env.clone()));
            let v = self.render_in(file, &s, t)?;
            step_env.insert(k.clone(), Value::String(v.clone()));
            st.env.push((k.clone(), v));
        }
        let scope = self.scope_at(at, &step_env, status, records);
        for i in &fp.inputs {
            let v = match &i.value {
                Dyn::Value(v) => super::expr::to_string(v),
                Dyn::Expr(t) => {
                    let in_file = if i.in_action { fp.file.as_path() } else { file };
                    self.render_in(in_file, &scope, t)?
                }
            };
            st.inputs.insert(i.name.clone(), Value::String(v));
        }
        st.absorbs =
            super::expr::truthy(&self.render_dyn_in(file, &scope, &caller.continue_on_error)?);
        for w in &fp.warnings {
            eprintln!("warning: {w}");
        }
        write_json(&path, &st)?;
        Ok(st)
    }

    /// Results of the needed jobs, merged over matrix combinations.
    fn needs(&self) -> (Map<String, Value>, bool) {
        let mut ctx = Map::new();
        let mut failed = false;
        for (id, keys) in &self.plan.needs {
            let mut result = "skipped";
            let mut outputs = Map::new();
            let mut any = false;
            for k in keys {
                let r: Option<JobResult> =
                    read_json(&self.state.join("run").join(k).join("result.json")).ok();
                match r {
                    Some(r) => {
                        any = true;
                        result = match (result, r.result.as_str()) {
                            (_, "failure") | ("failure", _) => "failure",
                            (_, "cancelled") | ("cancelled", _) => "cancelled",
                            (_, "success") | ("success", _) => "success",
                            _ => "skipped",
                        };
                        for (o, v) in r.outputs {
                            outputs.insert(o, Value::String(v));
                        }
                    }
                    None => result = if any { result } else { "skipped" },
                }
            }
            failed |= result == "failure";
            ctx.insert(id.clone(), json!({ "result": result, "outputs": outputs }));
        }
        (ctx, failed)
    }

    fn scope(&self, env: &Map<String, Value>, status: Status, records: &[StepRecord]) -> Scope {
        self.scope_at(None, env, status, records)
    }

    /// The scope of the job's steps, or of the steps of call `at`: its
    /// `inputs`, `github.action_path`, and its own steps as `steps`.
    fn scope_at(
        &self,
        at: Option<(usize, &FrameState)>,
        env: &Map<String, Value>,
        status: Status,
        records: &[StepRecord],
    ) -> Scope {
        let frame = at.map(|(f, _)| f);
        let mut s = Scope {
            contexts: self.plan.contexts.clone(),
            status,
            workspace: self.workspace.clone(),
        };
        let mut steps = Map::new();
        for r in records {
            if let Some(id) = self
                .plan
                .steps
                .get(r.index)
                .filter(|p| p.frame == frame)
                .and_then(|p| p.def.id.clone())
            {
                steps.insert(
                    id,
                    json!({ "outputs": r.outputs, "outcome": r.outcome, "conclusion": r.conclusion }),
                );
            }
        }
        s.set("steps", Value::Object(steps));
        let needs = Value::Object(self.needs().0);
        // A reusable workflow's outputs read its jobs as `jobs`.
        s.set("jobs", needs.clone());
        s.set("needs", needs);
        s.set("env", Value::Object(env.clone()));
        let status_text = if status.cancelled {
            "cancelled"
        } else if status.failed {
            "failure"
        } else {
            "success"
        };
        s.set("job", json!({ "status": status_text, "services": {} }));
        let action_path = at.and_then(|(f, _)| self.action_path(f));
        if let Some(Value::Object(g)) = s.contexts.get_mut("github") {
            g.insert(
                "workspace".into(),
                Value::String(self.workspace.display().to_string()),
            );
            if let Some(p) = &action_path {
                g.insert("action_path".into(), Value::String(p.display().to_string()));
            }
        }
        if let Some((_, st)) = at {
            s.set("inputs", Value::Object(st.inputs.clone()));
        }
        s
    }

    /// A call's action directory, under the workspace the steps run in.
    fn action_path(&self, f: usize) -> Option<PathBuf> {
        let fp = self.plan.frames.get(f)?;
        Some(super::plan::normalize(&self.workspace.join(&fp.dir)))
    }

    fn render(&self, scope: &Scope, t: &Tpl) -> Result<String, RunnerError> {
        self.render_in(&self.plan.file, scope, t)
    }

    fn render_in(&self, file: &Path, scope: &Scope, t: &Tpl) -> Result<String, RunnerError> {
        let tpl = Template::parse(&t.text).map_err(|e| expr_error_in(file, t, e.message))?;
        scope
            .render(&tpl)
            .map_err(|e| expr_error_in(file, t, e.message))
    }

    fn render_dyn_in(
        &self,
        file: &Path,
        scope: &Scope,
        d: &Option<Dyn>,
    ) -> Result<Value, RunnerError> {
        match d {
            None => Ok(Value::Null),
            Some(Dyn::Value(v)) => Ok(v.clone()),
            Some(Dyn::Expr(t)) => {
                let tpl =
                    Template::parse(&t.text).map_err(|e| expr_error_in(file, t, e.message))?;
                scope
                    .render_value(&tpl)
                    .map_err(|e| expr_error_in(file, t, e.message))
            }
        }
    }

    /// Workflow env, then job env, then what steps wrote to GITHUB_ENV.
    fn job_env(&self, base: &Scope) -> Result<Map<String, Value>, RunnerError> {
        let mut env = Map::new();
        for (k, t) in self.plan.workflow_env.iter().chain(&self.plan.job_env) {
            let mut s = base.clone();
            s.set("env", Value::Object(env.clone()));
            let v = self.render(&s, t)?;
            env.insert(k.clone(), Value::String(v));
        }
        let written: BTreeMap<String, String> =
            read_json(&self.dir.join("env.json")).unwrap_or_default();
        for (k, v) in written {
            env.insert(k, Value::String(v));
        }
        Ok(env)
    }

    /// The job's own `if:` when it reads `needs`: decided once, at its first step.
    fn job_skip(&self) -> Result<Option<String>, RunnerError> {
        let marker = self.dir.join("job.json");
        if let Ok(v) = read_json::<Value>(&marker) {
            return Ok(v.get("skip").and_then(Value::as_str).map(str::to_string));
        }
        let mut skip = None;
        if let Some(t) = &self.plan.condition {
            let (_, failed) = self.needs();
            let status = Status {
                failed,
                cancelled: run_cancelled(),
            };
            let scope = self.scope(&Map::new(), status, &[]);
            let e = parse_condition(&t.text).map_err(|e| self.expr_error(t, e.message))?;
            if !scope.test(&e).map_err(|e| self.expr_error(t, e.message))? {
                skip = Some(format!(
                    "the job's condition `if: {}` is false",
                    t.text.trim()
                ));
            }
        }
        write_json(&marker, &json!({ "skip": skip }))?;
        Ok(skip)
    }
}

/// Whether the executor runs this step after the job was cancelled (or
/// timed out): `cancelled()` is true, `success()` and `failure()` false.
fn job_cancelled() -> bool {
    std::env::var("TUG_CANCELLED").is_ok_and(|v| v == "true")
}

/// Whether the run was cancelled, before this job or during it.
fn run_cancelled() -> bool {
    job_cancelled() || std::env::var("TUG_RUN_CANCELLED").is_ok_and(|v| v == "true")
}

/// Tells the executor the step did not run (its condition was false).
/// Records a step that did not run, says why, and tells the executor.
fn skipped(rec_path: &Path, rec: StepRecord) -> Result<i32, RunnerError> {
    println!("skipped: {}", rec.note);
    write_json(rec_path, &rec)?;
    report_skipped();
    Ok(0)
}

fn report_skipped() {
    if let Some(p) = std::env::var_os(crate::run::STEP_STATUS_VAR) {
        let _ = std::fs::write(p, "skipped\n");
    }
}

/// Runs one step (`N`), a post step (`post-N`) or the end of the job
/// (`complete`) in the current directory (the job's workspace). Returns
/// the exit code for the executor: non-zero fails the job.
pub fn run_step(state: &Path, key: &str, which: &str) -> Result<i32, RunnerError> {
    let job = Job::load(state, key)?;
    if which == "complete" {
        return complete(&job);
    }
    if let Some(i) = which.strip_prefix("post-") {
        let i: usize = i.parse().map_err(|_| RunnerError::Which(which.into()))?;
        return post(&job, i);
    }
    let i: usize = which
        .parse()
        .map_err(|_| RunnerError::Which(which.into()))?;
    let Some(step) = job.plan.steps.get(i) else {
        return Err(RunnerError::Which(which.into()));
    };
    if let Some(f) = step.ends {
        return end_call(&job, i, f);
    }
    let records = job.records();
    let frame = step.frame;
    let file = job.file_of(frame).to_path_buf();
    let job_skip = job.job_skip()?;
    // The calls it is in, started (once) unless the job does not run.
    let chain = match job_skip {
        None => job.frames_of(frame, &records)?,
        Some(_) => Vec::new(),
    };
    let at = chain.last().map(|(f, s)| (*f, s));
    let status = Status {
        failed: job.failed_in(frame, &records),
        cancelled: job_cancelled(),
    };
    let base = job.scope_at(at, &Map::new(), status, &records);
    let env = job.env_in(&chain, &base)?;
    let scope = job.scope_at(at, &env, status, &records);
    let own = match (&step.def.name, &step.def.run, &step.def.uses) {
        (Some(n), _, _) => job
            .render_in(&file, &scope, n)
            .unwrap_or_else(|_| n.text.clone()),
        (None, Some(r), _) => format!("Run {}", r.text.lines().next().unwrap_or("").trim()),
        (None, None, Some(u)) => format!("Run {}", u.text),
        _ => format!("step {}", i + 1),
    };
    let name = match frame.and_then(|f| job.plan.frames.get(f)) {
        Some(fp) => format!("{} / {own}", fp.label),
        None => own,
    };
    let record = |outcome: &str, conclusion: &str, outputs, note: String| StepRecord {
        index: i,
        name: name.clone(),
        outcome: outcome.into(),
        conclusion: conclusion.into(),
        outputs,
        note,
    };
    let rec_path = job.dir.join("steps").join(format!("{i}.json"));

    let frame_skip = chain.last().and_then(|(_, s)| s.skip.clone());
    if let Some(reason) = job_skip.or(frame_skip) {
        return skipped(
            &rec_path,
            record("skipped", "skipped", BTreeMap::new(), reason),
        );
    }
    let cond = step.def.condition.clone().unwrap_or(Tpl {
        text: "success()".into(),
        at: step.def.at,
    });
    let e = parse_condition(&cond.text).map_err(|e| expr_error_in(&file, &cond, e.message))?;
    if !scope
        .test(&e)
        .map_err(|e| expr_error_in(&file, &cond, e.message))?
    {
        let reason = if step.def.condition.is_some() {
            format!("`if: {}` is false", cond.text.trim())
        } else {
            "a step before it failed".to_string()
        };
        return skipped(
            &rec_path,
            record("skipped", "skipped", BTreeMap::new(), reason),
        );
    }

    // Step env over job env.
    let mut step_env = env.clone();
    for (k, t) in &step.def.env {
        let mut s = scope.clone();
        s.set("env", Value::Object(step_env.clone()));
        step_env.insert(k.clone(), Value::String(job.render_in(&file, &s, t)?));
    }
    let scope = job.scope_at(at, &step_env, status, &records);
    let continue_on_error =
        super::expr::truthy(&job.render_dyn_in(&file, &scope, &step.def.continue_on_error)?);

    let (ok, outputs, note) = if let Some(b) = &step.builtin {
        let with = render_with(&job, &file, &scope, &step.def.with)?;
        let artifacts = job.state.join("artifacts");
        let places = Places {
            workspace: &job.workspace,
            artifacts: &artifacts,
            cache: &job.plan.cache_dir,
        };
        let _ = std::fs::create_dir_all(&job.plan.cache_dir);
        match actions::run(b, &with, &places) {
            Ok((outputs, said)) => {
                println!("{said}");
                (true, outputs, said)
            }
            Err(m) => {
                eprintln!("error: {m}");
                (false, BTreeMap::new(), m)
            }
        }
    } else {
        let script = match &step.def.run {
            Some(t) => job.render_in(&file, &scope, t)?,
            None => String::new(),
        };
        run_script(&job, i, step, &scope, &step_env, &script)?
    };
    let outcome = if ok { "success" } else { "failure" };
    let conclusion = if ok || continue_on_error {
        "success"
    } else {
        "failure"
    };
    write_json(&rec_path, &record(outcome, conclusion, outputs, note))?;
    // A failure inside a call whose caller has continue-on-error does not fail the job.
    let absorbed = chain.iter().any(|(_, s)| s.absorbs);
    Ok(if conclusion == "success" || absorbed {
        0
    } else {
        1
    })
}

/// The end of a composite action call (step `i`, call `f`): the caller
/// step's record, with the action's outcome and its `outputs` evaluated
/// over the action's steps, for `steps.<caller id>` after it.
fn end_call(job: &Job, i: usize, f: usize) -> Result<i32, RunnerError> {
    let Some(fp) = job.plan.frames.get(f) else {
        return Err(RunnerError::Which(format!("call {f}")));
    };
    let rec_path = job.dir.join("steps").join(format!("{i}.json"));
    let record = |outcome: &str, conclusion: &str, outputs, note: String| StepRecord {
        index: i,
        name: fp.label.clone(),
        outcome: outcome.into(),
        conclusion: conclusion.into(),
        outputs,
        note,
    };
    let records = job.records();
    let chain = match job.job_skip()? {
        Some(reason) => Err(reason),
        None => {
            let chain = job.frames_of(Some(f), &records)?;
            match chain.last().and_then(|(_, s)| s.skip.clone()) {
                Some(reason) => Err(reason),
                None => Ok(chain),
            }
        }
    };
    let chain = match chain {
        Ok(c) => c,
        Err(reason) => {
            return skipped(
                &rec_path,
                record("skipped", "skipped", BTreeMap::new(), reason),
            );
        }
    };
    let (_, st) = chain.last().expect("the call itself");
    let failed = job.failed_in(Some(f), &records);
    let status = Status {
        failed,
        cancelled: job_cancelled(),
    };
    let at = Some((f, st));
    let base = job.scope_at(at, &Map::new(), status, &records);
    let env = job.env_in(&chain, &base)?;
    let scope = job.scope_at(at, &env, status, &records);
    let mut outputs = BTreeMap::new();
    for (k, t) in &fp.outputs {
        outputs.insert(k.clone(), job.render_in(&fp.file, &scope, t)?);
    }
    let (outcome, note) = if failed {
        ("failure", format!("a step of `{}` failed", fp.uses))
    } else {
        ("success", String::new())
    };
    let conclusion = if !failed || st.absorbs {
        "success"
    } else {
        "failure"
    };
    write_json(&rec_path, &record(outcome, conclusion, outputs, note))?;
    let absorbed = chain[..chain.len() - 1].iter().any(|(_, s)| s.absorbs);
    Ok(if conclusion == "success" || absorbed {
        0
    } else {
        1
    })
}

fn render_with(
    job: &Job,
    file: &Path,
    scope: &Scope,
    with: &[(String, Tpl)],
) -> Result<BTreeMap<String, String>, RunnerError> {
    with.iter()
        .map(|(k, t)| Ok((k.clone(), job.render_in(file, scope, t)?)))
        .collect()
}

/// Runs a `run:` script with the step's shell and the runner's files.
fn run_script(
    job: &Job,
    i: usize,
    step: &super::plan::StepPlan,
    scope: &Scope,
    env: &Map<String, Value>,
    script: &str,
) -> Result<(bool, BTreeMap<String, String>, String), RunnerError> {
    let tmp = job.state.join("tmp");
    std::fs::create_dir_all(&tmp).map_err(io(&tmp))?;
    let files = job.dir.join("files");
    std::fs::create_dir_all(&files).map_err(io(&files))?;
    let output = files.join(format!("output-{i}"));
    let env_file = files.join(format!("env-{i}"));
    let path_file = files.join(format!("path-{i}"));
    let summary = files.join(format!("summary-{i}"));
    for f in [&output, &env_file, &path_file, &summary] {
        std::fs::write(f, "").map_err(io(f))?;
    }
    let ext = if step.shell.first().is_some_and(|s| s.starts_with("python")) {
        "py"
    } else {
        "sh"
    };
    let script_path = tmp.join(format!("{}-{i}.{ext}", job.plan.key));

    // The job's `defaults.run` are not a composite action's.
    let defaults = match step.frame {
        Some(_) => None,
        None => job.plan.defaults.working_directory.as_ref(),
    };
    let file = job.file_of(step.frame);
    let cwd = match step.def.working_directory.as_ref().or(defaults) {
        Some(t) => job.workspace.join(job.render_in(file, scope, t)?),
        None => job.workspace.clone(),
    };
    // A container has no working directory of its own here: the script starts there.
    let script = match (&job.plan.container, ext) {
        (None, _) => script.to_string(),
        (Some(_), "py") => format!(
            "import os\nos.chdir({})\n{script}",
            serde_json::to_string(&cwd.display().to_string()).unwrap_or_default()
        ),
        (Some(_), _) => format!(
            "cd {} || exit 1\n{script}",
            shlex::try_quote(&cwd.display().to_string())
                .map(|c| c.into_owned())
                .unwrap_or_default()
        ),
    };
    std::fs::write(&script_path, script).map_err(io(&script_path))?;
    let args: Vec<String> = step
        .shell
        .iter()
        .map(|a| a.replace("{0}", &script_path.display().to_string()))
        .collect();

    let paths: Vec<String> = read_json(&job.dir.join("path.json")).unwrap_or_default();
    let mut path = match job.plan.container {
        Some(_) => CONTAINER_PATH.to_string(),
        None => std::env::var("PATH").unwrap_or_default(),
    };
    for p in &paths {
        path = format!("{p}:{path}");
    }
    let gh = scope.contexts.get("github").cloned().unwrap_or(Value::Null);
    let g = |k: &str| gh.get(k).map(super::expr::to_string).unwrap_or_default();
    let fixed: Vec<(&str, String)> = vec![
        ("CI", "true".into()),
        ("GITHUB_ACTIONS", "true".into()),
        ("GITHUB_WORKSPACE", job.workspace.display().to_string()),
        ("GITHUB_OUTPUT", output.display().to_string()),
        ("GITHUB_ENV", env_file.display().to_string()),
        ("GITHUB_PATH", path_file.display().to_string()),
        ("GITHUB_STEP_SUMMARY", summary.display().to_string()),
        ("GITHUB_JOB", job.plan.id.clone()),
        ("GITHUB_EVENT_NAME", g("event_name")),
        ("GITHUB_REF", g("ref")),
        ("GITHUB_REF_NAME", g("ref_name")),
        ("GITHUB_SHA", g("sha")),
        ("GITHUB_REPOSITORY", g("repository")),
        ("GITHUB_REPOSITORY_OWNER", g("repository_owner")),
        ("GITHUB_RUN_ID", g("run_id")),
        ("GITHUB_RUN_NUMBER", g("run_number")),
        ("GITHUB_SERVER_URL", g("server_url")),
        ("GITHUB_ACTOR", g("actor")),
        ("GITHUB_WORKFLOW", g("workflow")),
        ("RUNNER_OS", "Linux".into()),
        (
            "RUNNER_ARCH",
            scope
                .contexts
                .get("runner")
                .and_then(|r| r.get("arch"))
                .map(super::expr::to_string)
                .unwrap_or_default(),
        ),
        ("RUNNER_TEMP", tmp.display().to_string()),
        (
            "RUNNER_TOOL_CACHE",
            job.state.join("tool-cache").display().to_string(),
        ),
    ];
    let mut envs: Vec<(String, String)> =
        fixed.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    if let Some(p) = step.frame.and_then(|f| job.action_path(f)) {
        envs.push(("GITHUB_ACTION_PATH".into(), p.display().to_string()));
    }
    if let Some(c) = &job.plan.container {
        envs.extend(c.env.iter().cloned());
    }
    for (k, v) in env {
        if !k.is_empty() {
            envs.push((k.clone(), super::expr::to_string(v)));
        }
    }
    envs.push(("PATH".into(), path));
    let code = match &job.plan.container {
        None => {
            let mut cmd = std::process::Command::new(&args[0]);
            cmd.args(&args[1..]).current_dir(&cwd).envs(envs);
            let status = cmd.status().map_err(io(Path::new(&args[0])))?;
            status.code().map(i64::from)
        }
        Some(c) => in_container(job, &c.image, &args, envs)?,
    };
    let ok = code == Some(0);

    // The files the script wrote.
    let outputs: BTreeMap<String, String> = parse_file_command(&read(&output))
        .map_err(|m| file_error(job, "GITHUB_OUTPUT", m))?
        .into_iter()
        .collect();
    let written =
        parse_file_command(&read(&env_file)).map_err(|m| file_error(job, "GITHUB_ENV", m))?;
    if !written.is_empty() {
        let mut all: BTreeMap<String, String> =
            read_json(&job.dir.join("env.json")).unwrap_or_default();
        all.extend(written);
        write_json(&job.dir.join("env.json"), &all)?;
    }
    let added: Vec<String> = read(&path_file)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    if !added.is_empty() {
        let mut all = paths;
        all.extend(added);
        write_json(&job.dir.join("path.json"), &all)?;
    }
    let s = read(&summary);
    if !s.is_empty() {
        use std::io::Write;
        let p = job.dir.join("summary.md");
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&p)
            .map_err(io(&p))?;
        f.write_all(s.as_bytes()).map_err(io(&p))?;
    }
    let note = if ok {
        String::new()
    } else {
        format!(
            "exited with {}",
            code.map_or("a signal".to_string(), |c| c.to_string())
        )
    };
    Ok((ok, outputs, note))
}

/// PATH in a job's container before `GITHUB_PATH` adds to it.
const CONTAINER_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Runs a step's command in the job's image: the workspace and the run's
/// state at the same paths as on the host (so `GITHUB_*` files and the
/// workspace mean the same inside), the host's network (services publish
/// on 127.0.0.1), this user's uid:gid. Ctrl-C or SIGTERM of the step stops
/// and removes the container; a killed runner's container is removed by the
/// next run's sweep (it carries the run's labels and this process as owner).
fn in_container(
    job: &Job,
    image: &str,
    args: &[String],
    env: Vec<(String, String)>,
) -> Result<Option<i64>, RunnerError> {
    use crate::exec::{self, labels};
    use tug_runtime::{ContainerSpec, MountKind, MountSpec, Runtime};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(io(Path::new("tokio runtime")))?;
    rt.block_on(async {
        let engine = tug_runtime::docker::DockerRuntime::connect()
            .await
            .map_err(|e| RunnerError::Action(format!("the job runs in `{image}`: {e}")))?;
        if engine
            .inspect_image(image)
            .await
            .map_err(|e| RunnerError::Action(format!("inspecting `{image}`: {e}")))?
            .is_none()
        {
            engine
                .pull_image(image)
                .await
                .map_err(|e| RunnerError::Action(format!("pulling `{image}`: {e}")))?;
        }
        let run = std::env::var("TUG_RUN").unwrap_or_default();
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let mut spec = ContainerSpec::new(
            format!("tug-gh-{run}-{}-{stamp}", std::process::id()),
            image,
        );
        spec.entrypoint = Some(Vec::new());
        spec.command = Some(args.to_vec());
        let has_home = env.iter().any(|(k, _)| k == "HOME");
        spec.env = env;
        if !has_home {
            spec.env.push(("HOME".into(), "/tmp".into()));
        }
        spec.labels = [
            (labels::RUN.to_string(), run),
            (labels::OWNER.to_string(), exec::owner_tag()),
            (
                labels::PIPELINE.to_string(),
                format!("github/{}", job.plan.key),
            ),
        ]
        .into();
        spec.mounts = [&job.workspace, &job.state]
            .iter()
            .map(|p| MountSpec {
                source: MountKind::Bind(p.to_path_buf()),
                target: p.display().to_string(),
                read_only: false,
            })
            .collect();
        spec.tmpfs = vec!["/tmp".into()];
        spec.user = Some(format!(
            "{}:{}",
            rustix::process::getuid().as_raw(),
            rustix::process::getgid().as_raw()
        ));
        spec.network = Some("host".into());
        spec.pids = Some(4096);
        let cancel = tokio_util::sync::CancellationToken::new();
        {
            let cancel = cancel.clone();
            tokio::spawn(async move {
                use tokio::signal::unix::{signal, SignalKind};
                let (Ok(mut term), Ok(mut int)) = (
                    signal(SignalKind::terminate()),
                    signal(SignalKind::interrupt()),
                ) else {
                    return;
                };
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
                cancel.cancel();
            });
        }
        let id = engine
            .create_container(&spec)
            .await
            .map_err(|e| RunnerError::Action(format!("creating the step's container: {e}")))?;
        let mut on_line = |l: String| println!("{l}");
        let end = exec::run_container(&engine, &id, None, &cancel, &mut on_line).await;
        let _ = engine.remove_container(&id).await;
        match end {
            exec::StepEnd::Exited(c) => Ok(Some(c)),
            exec::StepEnd::Cancelled | exec::StepEnd::TimedOut => Ok(None),
            exec::StepEnd::Error(m) => Err(RunnerError::Action(m)),
        }
    })
}

fn file_error(job: &Job, which: &str, m: String) -> RunnerError {
    RunnerError::Action(format!("{}: {which}: {m}", job.plan.key))
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

/// `NAME=value` lines and `NAME<<DELIMITER` … `DELIMITER` blocks.
pub fn parse_file_command(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if line.trim().is_empty() {
            continue;
        }
        let heredoc = line
            .find("<<")
            .filter(|&h| line.find('=').is_none_or(|e| h < e));
        if let Some(h) = heredoc {
            let name = &line[..h];
            let delim = &line[h + 2..];
            if name.is_empty() || delim.is_empty() {
                return Err(format!("invalid line `{line}`"));
            }
            let mut value: Vec<&str> = Vec::new();
            loop {
                match lines.next() {
                    Some(l) if l == delim => break,
                    Some(l) => value.push(l),
                    None => return Err(format!("`{name}<<{delim}` has no closing `{delim}`")),
                }
            }
            out.push((name.to_string(), value.join("\n")));
        } else if let Some((k, v)) = line.split_once('=') {
            if k.is_empty() {
                return Err(format!("invalid line `{line}`"));
            }
            out.push((k.to_string(), v.to_string()));
        } else {
            return Err(format!(
                "invalid line `{line}` (NAME=value or NAME<<DELIMITER)"
            ));
        }
    }
    Ok(out)
}

fn post(job: &Job, i: usize) -> Result<i32, RunnerError> {
    let Some(step) = job.plan.steps.get(i) else {
        return Err(RunnerError::Which(format!("post-{i}")));
    };
    let Some(b) = &step.builtin else { return Ok(0) };
    let records = job.records();
    let Some(main) = records
        .iter()
        .find(|r| r.index == i && r.outcome == "success")
    else {
        report_skipped();
        return Ok(0);
    };
    let cancelled = job_cancelled();
    // As on GitHub, a cancelled job saves no cache.
    let job_ok = !cancelled && !job.failed_in(None, &records);
    let status = Status {
        failed: !job_ok,
        cancelled,
    };
    let chain = job.frames_of(step.frame, &records)?;
    let at = chain.last().map(|(f, s)| (*f, s));
    let base = job.scope_at(at, &Map::new(), status, &records);
    let env = job.env_in(&chain, &base)?;
    let scope = job.scope_at(at, &env, status, &records);
    let with = render_with(job, job.file_of(step.frame), &scope, &step.def.with)?;
    let artifacts = job.state.join("artifacts");
    let places = Places {
        workspace: &job.workspace,
        artifacts: &artifacts,
        cache: &job.plan.cache_dir,
    };
    match actions::post(b, &with, &main.outputs, job_ok, &places) {
        Ok(said) => {
            if !said.is_empty() {
                println!("{said}");
            }
            Ok(0)
        }
        Err(m) => {
            // A failed save warns, as on GitHub; it does not fail the job.
            eprintln!("warning: {m}");
            Ok(0)
        }
    }
}

fn complete(job: &Job) -> Result<i32, RunnerError> {
    let records = job.records();
    let skip = read_json::<Value>(&job.dir.join("job.json"))
        .ok()
        .and_then(|v| v.get("skip").and_then(Value::as_str).map(str::to_string));
    // The job's own steps: a call's step counts through the call's end.
    let failed = job.failed_in(None, &records);
    let cancelled = job_cancelled();
    if skip.is_some() {
        report_skipped();
    }
    let result = if skip.is_some() {
        "skipped"
    } else if cancelled {
        "cancelled"
    } else if failed {
        "failure"
    } else {
        "success"
    };
    let status = Status { failed, cancelled };
    let base = job.scope(&Map::new(), status, &records);
    let env = job.job_env(&base)?;
    let scope = job.scope(&env, status, &records);
    let mut outputs = BTreeMap::new();
    for (k, t) in &job.plan.outputs {
        outputs.insert(k.clone(), job.render(&scope, t)?);
    }
    for r in &records {
        let extra = if r.note.is_empty() {
            String::new()
        } else {
            format!(" ({})", r.note)
        };
        println!("{:<9} {}{extra}", r.conclusion, r.name);
    }
    write_json(
        &job.dir.join("result.json"),
        &JobResult {
            result: result.into(),
            outputs,
            steps: records,
            note: skip.unwrap_or_default(),
        },
    )?;
    Ok(0)
}

/// The results of a run's jobs that started, by key.
pub fn results(state: &Path) -> BTreeMap<String, JobResult> {
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(state.join("run"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let key = e.file_name().to_string_lossy().to_string();
        if let Ok(r) = read_json::<JobResult>(&e.path().join("result.json")) {
            out.insert(key, r);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::parse_file_command;

    #[test]
    fn file_commands() {
        let v = parse_file_command("a=1\nmulti<<EOF\nx\ny=z\nEOF\nb=c=d\n").unwrap();
        assert_eq!(
            v,
            vec![
                ("a".into(), "1".into()),
                ("multi".into(), "x\ny=z".into()),
                ("b".into(), "c=d".into())
            ]
        );
        assert!(parse_file_command("x<<EOF\nno end\n").is_err());
        assert!(parse_file_command("novalue\n").is_err());
    }
}
