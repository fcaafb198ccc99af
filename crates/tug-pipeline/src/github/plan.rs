//! From a read workflow to the pipeline model: matrices expanded, `runs-on`
//! mapped, conditions decided where they can be, every job's plan written
//! for the step runner.

use super::actions::{self, Builtin, Verdict};
use super::expr::{parse_condition, Expr, Scope, Status, Template};
use super::workflow::{self, Dyn, JobDef, RunDefaults, StepDef, Tpl};
use super::{ImportError, ImportErrors, Loc};
use crate::model::{Job, JobService, Pipeline, Step, When};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// How to import and where the run keeps its state.
pub struct Options {
    /// The project directory (`github.workspace`).
    pub workspace: PathBuf,
    /// `github.event_name`.
    pub event: String,
    /// `inputs` (for `workflow_dispatch` workflows).
    pub inputs: BTreeMap<String, String>,
    /// `runs-on` label -> image (`--platform ubuntu-latest=IMAGE`).
    pub platforms: BTreeMap<String, String>,
    /// The command that runs one step: `[tug, "pipeline", "github-step"]`.
    pub step_command: Vec<String>,
    /// This run's state: plans, step records, artifacts.
    pub state_dir: PathBuf,
    /// Where actions/cache keeps its entries between runs.
    pub cache_dir: PathBuf,
    /// Whether a tool is on the host's PATH.
    pub on_path: Box<dyn Fn(&str) -> bool>,
}

/// The result of an import.
pub struct Import {
    pub pipeline: Pipeline,
    /// Every job (each matrix combination), planned or left out.
    pub jobs: Vec<JobOutcome>,
    /// `uses:` without a built-in equivalent, with what to do.
    pub uses: Vec<UsesNote>,
    /// What GitHub only warns about (an input a local action does not declare).
    pub warnings: Vec<ImportError>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct JobOutcome {
    /// The pipeline's job name.
    pub key: String,
    /// The workflow's job id.
    pub id: String,
    /// How GitHub would show it: its `name`, or `id (matrix values)`.
    pub name: String,
    /// None: planned; Some: left out, and why.
    pub skipped: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct UsesNote {
    pub uses: String,
    pub file: PathBuf,
    pub at: Loc,
    pub advice: String,
    /// The jobs left out because of it.
    pub jobs: Vec<String>,
}

/// Everything the step runner needs about one job.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct JobPlan {
    pub file: PathBuf,
    pub key: String,
    pub id: String,
    pub name: String,
    /// github, inputs, vars, matrix, strategy, runner.
    pub contexts: Map<String, Value>,
    pub workflow_env: Vec<(String, Tpl)>,
    pub job_env: Vec<(String, Tpl)>,
    pub defaults: RunDefaults,
    /// A job condition that reads `needs` (decided when the job starts).
    pub condition: Option<Tpl>,
    /// Needed job id -> the keys of its combinations.
    pub needs: Vec<(String, Vec<String>)>,
    pub steps: Vec<StepPlan>,
    /// The calls of local composite actions, whose steps are in `steps`.
    #[serde(default)]
    pub frames: Vec<FramePlan>,
    pub outputs: Vec<(String, Tpl)>,
    pub cache_dir: PathBuf,
    /// The job's `continue-on-error`: its failed steps do not fail the job.
    pub continue_on_error: Option<Dyn>,
    /// Its `run:` steps run in this image (`container:` or `--platform`).
    #[serde(default)]
    pub container: Option<ContainerPlan>,
}

/// The image a job's `run:` steps run in; actions with a built-in
/// equivalent still run on the host, on the same workspace.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ContainerPlan {
    pub image: String,
    /// The container's `env:`.
    pub env: Vec<(String, String)>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StepPlan {
    pub def: StepDef,
    pub builtin: Option<Builtin>,
    /// The shell command line, `{0}` standing for the script file.
    pub shell: Vec<String>,
    /// The composite action call it is a step of (`JobPlan::frames`); None: the job's.
    #[serde(default)]
    pub frame: Option<usize>,
    /// It ends this call: `def` is the caller's step, which gets the
    /// action's outcome and `outputs`.
    #[serde(default)]
    pub ends: Option<usize>,
}

/// A call of a local composite action (`uses: ./dir`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FramePlan {
    /// `uses:` as written.
    pub uses: String,
    /// Its action.yml, where its steps' expressions are.
    pub file: PathBuf,
    /// Its directory relative to the workspace (`github.action_path`).
    pub dir: PathBuf,
    /// The call this one is a step of; None: a step of the job.
    pub parent: Option<usize>,
    pub inputs: Vec<FrameInput>,
    pub outputs: Vec<(String, Tpl)>,
    /// The caller step's name, before its steps' names.
    pub label: String,
    /// Said when the action starts, as GitHub does.
    pub warnings: Vec<String>,
}

/// An input of a composite action call: literal, or rendered when it starts.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FrameInput {
    pub name: String,
    pub value: Dyn,
    /// A default of action.yml (else the caller's `with:`), for error positions.
    pub in_action: bool,
}

/// The matrix axis of an imported job: the combination's values as GitHub
/// shows them; the step runner finds its plan by it (`MATRIX_GH`).
pub const MATRIX_AXIS: &str = "gh";

mod erased {
    pub trait Json {
        fn json(&self) -> serde_json::Result<Vec<u8>>;
    }
    impl<T: serde::Serialize> Json for T {
        fn json(&self) -> serde_json::Result<Vec<u8>> {
            serde_json::to_vec_pretty(self)
        }
    }
}

/// A workflow job planned: its id, matrix label -> plan key, the plans, the model job.
type PlannedJob = (String, BTreeMap<String, String>, Vec<JobPlan>, Job);

/// The contexts that are known before a job starts.
const STATIC_CONTEXTS: &[&str] = &[
    "github", "inputs", "vars", "matrix", "strategy", "runner", "env", "secrets",
];

fn is_static(e: &Expr) -> bool {
    let mut refs = Vec::new();
    e.references(&mut refs);
    let mut ctx = Vec::new();
    contexts_of(e, &mut ctx);
    ctx.iter().all(|c| STATIC_CONTEXTS.contains(&c.as_str()))
}

fn contexts_of(e: &Expr, out: &mut Vec<String>) {
    match e {
        Expr::Context(c) => out.push(c.clone()),
        Expr::Index(a, b) | Expr::Compare(_, a, b) | Expr::And(a, b) | Expr::Or(a, b) => {
            contexts_of(a, out);
            contexts_of(b, out);
        }
        Expr::Star(a) | Expr::Not(a) => contexts_of(a, out),
        Expr::Call { args, .. } => args.iter().for_each(|a| contexts_of(a, out)),
        _ => {}
    }
}

fn template_is_static(t: &Template) -> bool {
    t.parts.iter().all(|p| match p {
        super::expr::Part::Text(_) => true,
        super::expr::Part::Expr(e) => is_static(e),
    })
}

/// Reads and plans a workflow file.
pub fn import(file: &Path, src: &str, opts: &Options) -> Result<Import, ImportErrors> {
    let wf = workflow::read(file, src).map_err(ImportErrors::sorted)?;
    plan(&wf, src, opts)
}

fn git(ws: &Path, args: &[&str]) -> Option<String> {
    let o = std::process::Command::new("git")
        .arg("-C")
        .arg(ws)
        .args(args)
        .output()
        .ok()?;
    o.status
        .success()
        .then(|| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
}

fn github_context(wf: &workflow::Workflow, opts: &Options) -> Value {
    let ws = &opts.workspace;
    let branch = git(ws, &["rev-parse", "--abbrev-ref", "HEAD"]).unwrap_or_else(|| "main".into());
    let sha = git(ws, &["rev-parse", "HEAD"]).unwrap_or_else(|| "0".repeat(40));
    let repo = git(ws, &["remote", "get-url", "origin"])
        .and_then(|u| {
            let u = u.trim_end_matches(".git");
            let mut parts = u.rsplit(['/', ':']);
            let name = parts.next()?;
            let owner = parts.next()?;
            Some(format!("{owner}/{name}"))
        })
        .unwrap_or_else(|| {
            let dir = ws
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default();
            format!("local/{dir}")
        });
    let owner = repo.split('/').next().unwrap_or("local").to_string();
    let run_id = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    json!({
        "event_name": opts.event,
        "event": {},
        "ref": format!("refs/heads/{branch}"),
        "ref_name": branch,
        "ref_type": "branch",
        "head_ref": "",
        "base_ref": "",
        "sha": sha,
        "repository": repo,
        "repository_owner": owner,
        "server_url": "https://github.com",
        "api_url": "https://api.github.com",
        "workspace": ws.display().to_string(),
        "workflow": wf.name.clone().unwrap_or_else(|| wf.file.display().to_string()),
        "actor": std::env::var("USER").unwrap_or_else(|_| "local".into()),
        "run_id": run_id.to_string(),
        "run_number": "1",
        "run_attempt": "1",
        "token": "",
        "action": "",
        "job": "",
    })
}

fn runner_context(opts: &Options) -> Value {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "X64",
        "aarch64" => "ARM64",
        "arm" => "ARM",
        "x86" => "X86",
        other => other,
    };
    json!({
        "os": "Linux",
        "arch": arch,
        "name": "tug",
        "environment": "self-hosted",
        "temp": opts.state_dir.join("tmp").display().to_string(),
        "tool_cache": opts.state_dir.join("tool-cache").display().to_string(),
        "debug": "",
    })
}

/// GitHub's matrix: the product of the axes, less `exclude`, with `include`
/// extending the combinations it matches (or added as its own).
pub fn expand_matrix(s: &workflow::Strategy) -> Vec<Map<String, Value>> {
    let mut combos: Vec<Map<String, Value>> = vec![Map::new()];
    for (axis, values) in &s.axes {
        let mut next = Vec::new();
        for c in &combos {
            for v in values {
                let mut c = c.clone();
                c.insert(axis.clone(), v.clone());
                next.push(c);
            }
        }
        combos = next;
    }
    if s.axes.is_empty() || s.axes.iter().any(|(_, v)| v.is_empty()) {
        combos.clear();
    }
    combos.retain(|c| {
        !s.exclude
            .iter()
            .any(|ex| ex.iter().all(|(k, v)| c.get(k) == Some(v)))
    });
    let axis_keys: Vec<&String> = s.axes.iter().map(|(k, _)| k).collect();
    let originals = combos.len();
    for inc in &s.include {
        let mut matched = false;
        for c in combos.iter_mut().take(originals) {
            if inc
                .iter()
                .all(|(k, v)| !axis_keys.contains(&k) || c.get(k) == Some(v))
            {
                for (k, v) in inc {
                    if !axis_keys.contains(&k) {
                        c.insert(k.clone(), v.clone());
                    }
                }
                matched = true;
            }
        }
        if !matched {
            combos.push(inc.clone());
        }
    }
    combos
}

fn sanitize(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() || matches!(c, '.' | '_') {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_string()
}

/// A key is a file name in the run's state: a long one (a matrix of
/// container objects) is cut and keeps a hash of the whole, so it stays unique.
fn file_safe(key: String) -> String {
    const MAX: usize = 100;
    if key.len() <= MAX {
        return key;
    }
    let hash = key.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{}-{hash:016x}", &key[..MAX - 17])
}

fn show(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Object(_) | Value::Array(_) => v.to_string(),
        other => super::expr::to_string(other),
    }
}

/// Renders a template against static contexts: Ok(None) when it reads run-time contexts.
fn render_static(scope: &Scope, t: &Tpl) -> Result<Option<String>, String> {
    let tpl = Template::parse(&t.text).map_err(|e| e.message)?;
    if !template_is_static(&tpl) {
        return Ok(None);
    }
    scope.render(&tpl).map(Some).map_err(|e| e.message)
}

fn dyn_bool(scope: &Scope, d: &Option<Dyn>) -> Option<bool> {
    match d {
        None => Some(false),
        Some(Dyn::Value(v)) => Some(super::expr::truthy(v)),
        Some(Dyn::Expr(t)) => {
            let tpl = Template::parse(&t.text).ok()?;
            if !template_is_static(&tpl) {
                return None;
            }
            scope
                .render_value(&tpl)
                .ok()
                .map(|v| super::expr::truthy(&v))
        }
    }
}

fn dyn_number(scope: &Scope, d: &Option<Dyn>) -> Option<f64> {
    match d {
        None => None,
        Some(Dyn::Value(v)) => Some(super::expr::to_number(v)),
        Some(Dyn::Expr(t)) => {
            let tpl = Template::parse(&t.text).ok()?;
            if !template_is_static(&tpl) {
                return None;
            }
            scope
                .render_value(&tpl)
                .ok()
                .map(|v| super::expr::to_number(&v))
        }
    }
}

/// The shell command for a step, `{0}` the script; Err when it cannot run here.
fn shell_for(
    step: &StepDef,
    defaults: &RunDefaults,
    on_path: &dyn Fn(&str) -> bool,
    in_container: bool,
) -> Result<Vec<String>, String> {
    let explicit = step.shell.clone().or_else(|| defaults.shell.clone());
    let v: Vec<String> = match explicit.as_deref() {
        // What the image has is known only when the step runs: `sh`, as GitHub does.
        None if in_container => ["sh", "-e", "{0}"].map(String::from).to_vec(),
        None => {
            if on_path("bash") {
                vec!["bash".into(), "-e".into(), "{0}".into()]
            } else {
                vec!["sh".into(), "-e".into(), "{0}".into()]
            }
        }
        Some("bash") => ["bash", "--noprofile", "--norc", "-eo", "pipefail", "{0}"]
            .map(String::from)
            .to_vec(),
        Some("sh") => ["sh", "-e", "{0}"].map(String::from).to_vec(),
        Some("python") if in_container => vec!["python".into(), "{0}".into()],
        Some("python") => {
            let py = if on_path("python") {
                "python"
            } else {
                "python3"
            };
            vec![py.into(), "{0}".into()]
        }
        Some("pwsh") => ["pwsh", "-command", ". '{0}'"].map(String::from).to_vec(),
        Some("powershell") | Some("cmd") => {
            return Err(format!(
                "uses the Windows shell `{}`",
                explicit.unwrap_or_default()
            ));
        }
        Some(custom) => {
            let mut parts =
                shlex::split(custom).ok_or_else(|| format!("cannot read the shell `{custom}`"))?;
            if !parts.iter().any(|p| p.contains("{0}")) {
                parts.push("{0}".into());
            }
            parts
        }
    };
    let prog = &v[0];
    if !in_container && !on_path(prog) {
        return Err(format!(
            "uses the shell `{prog}`, which is not on this host"
        ));
    }
    Ok(v)
}

struct Combo {
    key: String,
    /// The matrix values as GitHub shows them: `ubuntu-latest, stable`.
    label: String,
    name: String,
    matrix: Map<String, Value>,
    index: usize,
    total: usize,
}

/// What planning gathers over a workflow and the workflows it calls.
#[derive(Default)]
struct Acc {
    outcomes: Vec<JobOutcome>,
    notes: Vec<UsesNote>,
    warnings: Vec<ImportError>,
    plans: Vec<PlannedJob>,
    /// Job id -> the keys of its planned combinations.
    combos_of: BTreeMap<String, Vec<String>>,
}

impl Acc {
    /// A whole job left out, with the reason; the jobs that need it see no combination.
    fn left_out(&mut self, id: &str, reason: String) {
        self.outcomes.push(JobOutcome {
            key: id.to_string(),
            id: id.to_string(),
            name: id.to_string(),
            skipped: Some(reason),
        });
        self.combos_of.insert(id.to_string(), Vec::new());
    }
}

/// The workflow's `env` as it reads before any job starts.
fn with_workflow_env(mut base: Scope, wf: &workflow::Workflow) -> Scope {
    let mut wf_env = Map::new();
    for (k, t) in &wf.env {
        base.set("env", Value::Object(wf_env.clone()));
        if let Ok(Some(v)) = render_static(&base, t) {
            wf_env.insert(k.clone(), Value::String(v));
        }
    }
    base.set("env", Value::Object(wf_env));
    base
}

/// A job of a called workflow under its caller's id (`call.job`); its
/// first jobs wait for what the caller needs.
fn prefixed(j: &JobDef, prefix: &str, roots_need: &[(String, Loc)]) -> JobDef {
    if prefix.is_empty() {
        return j.clone();
    }
    let mut j = j.clone();
    j.id = format!("{prefix}{}", j.id);
    for (n, _) in j.needs.iter_mut() {
        *n = format!("{prefix}{n}");
    }
    if j.needs.is_empty() {
        j.needs = roots_need.to_vec();
    }
    j
}

/// Plans the jobs of `wf` (a called workflow's under `prefix`).
fn plan_jobs(
    wf: &workflow::Workflow,
    base: &Scope,
    prefix: &str,
    roots_need: &[(String, Loc)],
    opts: &Options,
    acc: &mut Acc,
    depth: usize,
) -> Result<(), ImportErrors> {
    // Jobs in dependency order, so a job knows whether its needs were left out.
    let order = dependency_order(wf);
    for j in order.iter().map(|&i| &wf.jobs[i]) {
        let owned = prefixed(j, prefix, roots_need);
        let j = &owned;
        if let Some(u) = &j.uses {
            if let Err(reason) = call_workflow(wf, j, u, base, opts, acc, depth)? {
                acc.left_out(&j.id, reason);
            }
            continue;
        }
        let combos = match combos(j, base) {
            Ok(c) => c,
            Err(reason) => {
                acc.left_out(&j.id, reason);
                continue;
            }
        };
        let mut keys = Vec::new();
        let mut planned: Vec<(String, JobPlan, Job)> = Vec::new();
        let matrix = j.strategy.is_some();
        for c in combos {
            let unit = if matrix {
                format!("{} ({})", j.id, c.label)
            } else {
                j.id.clone()
            };
            match plan_job(
                wf,
                j,
                &c,
                base,
                opts,
                &acc.combos_of,
                &mut acc.notes,
                &mut acc.warnings,
            ) {
                Ok((plan, job)) => {
                    keys.push(c.key.clone());
                    acc.outcomes.push(JobOutcome {
                        key: unit,
                        id: j.id.clone(),
                        name: c.name.clone(),
                        skipped: None,
                    });
                    planned.push((c.label.clone(), plan, job));
                }
                Err(PlanError::LeftOut(reason)) => acc.outcomes.push(JobOutcome {
                    key: unit,
                    id: j.id.clone(),
                    name: c.name.clone(),
                    skipped: Some(reason),
                }),
                Err(PlanError::Import(e)) => return Err(e),
            }
        }
        if let Some((_, _, first)) = planned.first() {
            // One model job; the executor runs a unit per combination (fail-fast,
            // max-parallel), each finding its plan by the `gh` axis.
            let mut job = first.clone();
            if planned
                .iter()
                .any(|(_, _, j)| j.concurrency != first.concurrency)
            {
                // Groups that differ by combination: one group per job and
                // combination (a group shared with another job is not seen).
                job.concurrency = first
                    .concurrency
                    .clone()
                    .map(|c| crate::model::Concurrency {
                        group: format!(
                            "{}/{}/${{{{ matrix.{MATRIX_AXIS} }}}}",
                            wf.file.display(),
                            j.id
                        ),
                        ..c
                    });
            }
            if matrix {
                let strategy = j.strategy.as_ref().expect("matrix");
                let scope = base.clone();
                job.matrix = Some(crate::model::Matrix {
                    axes: [(
                        MATRIX_AXIS.to_string(),
                        planned.iter().map(|(l, _, _)| l.clone()).collect(),
                    )]
                    .into(),
                    fail_fast: dyn_bool(
                        &scope,
                        &strategy
                            .fail_fast
                            .clone()
                            .or(Some(Dyn::Value(Value::Bool(true)))),
                    )
                    .unwrap_or(true),
                    max_parallel: dyn_number(&scope, &strategy.max_parallel)
                        .filter(|n| *n >= 1.0)
                        .map(|n| n as u32),
                    ..Default::default()
                });
            }
            let index: BTreeMap<String, String> = planned
                .iter()
                .map(|(l, p, _)| (l.clone(), p.key.clone()))
                .collect();
            acc.plans.push((
                j.id.clone(),
                index,
                planned.into_iter().map(|(_, p, _)| p).collect(),
                job,
            ));
        }
        acc.combos_of.insert(j.id.clone(), keys);
    }
    Ok(())
}

fn plan(wf: &workflow::Workflow, _src: &str, opts: &Options) -> Result<Import, ImportErrors> {
    let github = github_context(wf, opts);
    let runner = runner_context(opts);
    let mut inputs: Map<String, Value> = opts
        .inputs
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    // workflow_dispatch inputs not given take their defaults.
    for d in &wf.dispatch_inputs {
        if let (false, Some(v)) = (inputs.contains_key(&d.name), &d.default) {
            inputs.insert(d.name.clone(), v.clone());
        }
    }
    let mut base = Scope {
        workspace: opts.workspace.clone(),
        ..Default::default()
    };
    base.set("github", github.clone());
    base.set("runner", runner.clone());
    base.set("inputs", Value::Object(inputs.clone()));
    base.set("vars", json!({}));
    base.set("secrets", json!({ "GITHUB_TOKEN": "" }));
    let base = with_workflow_env(base, wf);
    let mut acc = Acc::default();
    plan_jobs(wf, &base, "", &[], opts, &mut acc, 0)?;
    let Acc {
        mut outcomes,
        notes,
        warnings,
        plans,
        ..
    } = acc;

    let mut pipeline = Pipeline {
        workspace: crate::model::WorkspaceMode::Shared,
        concurrency: match &wf.concurrency {
            Some(cc) => concurrency(&base, cc).map_err(|message| {
                ImportErrors(vec![super::ImportError {
                    file: wf.file.clone(),
                    line: cc.group.at.line,
                    col: cc.group.at.col,
                    message,
                }])
            })?,
            None => None,
        },
        ..Default::default()
    };
    std::fs::create_dir_all(opts.state_dir.join("jobs"))
        .map_err(|e| io_error(&opts.state_dir, e))?;
    let write = |path: PathBuf, v: &dyn erased::Json| -> Result<(), ImportErrors> {
        let text = v
            .json()
            .map_err(|e| io_error(&path, std::io::Error::other(e)))?;
        std::fs::write(&path, text).map_err(|e| io_error(&path, e))
    };
    for (id, index, job_plans, job) in plans {
        for plan in &job_plans {
            write(
                opts.state_dir
                    .join("jobs")
                    .join(format!("{}.json", plan.key)),
                plan,
            )?;
        }
        if job.matrix.is_some() {
            write(
                opts.state_dir
                    .join("jobs")
                    .join(format!("{id}.matrix.json")),
                &index,
            )?;
        }
        pipeline.jobs.insert(id, job);
    }
    // The order of the file, for people reading the list.
    let pos = |id: &str| {
        wf.jobs
            .iter()
            .position(|j| j.id == id)
            .unwrap_or(usize::MAX)
    };
    outcomes.sort_by_key(|o| pos(&o.id));
    Ok(Import {
        pipeline,
        jobs: outcomes,
        uses: notes,
        // Once, not once per matrix combination.
        warnings: ImportErrors::sorted(warnings).0,
    })
}

/// How deep reusable workflows may call each other (GitHub: 4 levels).
const MAX_CALL_DEPTH: usize = 4;

fn import_error(file: &Path, at: Loc, message: String) -> ImportErrors {
    ImportErrors(vec![super::ImportError {
        file: file.to_path_buf(),
        line: at.line,
        col: at.col,
        message,
    }])
}

/// An input's value as its `type` says.
fn typed_input(v: Value, kind: &str) -> Result<Value, String> {
    Ok(match (kind, v) {
        ("boolean", Value::String(s)) => match s.as_str() {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            other => return Err(format!("`{other}` is not a boolean (true or false)")),
        },
        ("number", Value::String(s)) => s
            .trim()
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .ok_or_else(|| format!("`{s}` is not a number"))?,
        ("string", Value::Bool(b)) => Value::String(b.to_string()),
        ("string", Value::Number(n)) => Value::String(n.to_string()),
        (_, v) => v,
    })
}

/// A job that calls a local reusable workflow (`uses: ./.github/workflows/X.yml`):
/// the called jobs are planned as `caller.job`, and the caller becomes a
/// job that needs them all and maps their outputs to its own
/// (`on.workflow_call.outputs`). Ok(Err(reason)): the caller is left out.
fn call_workflow(
    wf: &workflow::Workflow,
    j: &JobDef,
    u: &Tpl,
    base: &Scope,
    opts: &Options,
    acc: &mut Acc,
    depth: usize,
) -> Result<Result<(), String>, ImportErrors> {
    let uses = u.text.trim().to_string();
    let Some(rel) = uses.strip_prefix("./") else {
        let advice = "a remote reusable workflow is not fetched: copy it into .github/workflows/ and call it as `./.github/workflows/X.yml`, or run it with --from".to_string();
        acc.notes.push(UsesNote {
            uses: uses.clone(),
            file: wf.file.clone(),
            at: u.at,
            advice: advice.clone(),
            jobs: vec![j.id.clone()],
        });
        return Ok(Err(format!("remote reusable workflow `{uses}`: {advice}")));
    };
    if j.strategy.is_some() {
        return Ok(Err(format!(
            "calls the reusable workflow `{uses}` with a matrix: run it with --from per combination"
        )));
    }
    if depth >= MAX_CALL_DEPTH {
        return Ok(Err(format!(
            "calls `{uses}` {} levels deep; reusable workflows nest at most {MAX_CALL_DEPTH} deep",
            depth + 1
        )));
    }
    let rel = rel.split('@').next().unwrap_or(rel);
    let path = opts.workspace.join(rel);
    let src = std::fs::read_to_string(&path).map_err(|e| {
        import_error(
            &wf.file,
            u.at,
            format!("cannot read the reusable workflow {}: {e}", path.display()),
        )
    })?;
    let called = workflow::read(&path, &src).map_err(ImportErrors::sorted)?;
    let Some(call) = &called.call else {
        return Err(import_error(
            &wf.file,
            u.at,
            format!("`{uses}` is not a reusable workflow: it has no `on: workflow_call`"),
        ));
    };
    // Inputs: `with:` over defaults, typed.
    let mut inputs = Map::new();
    for (k, t) in &j.with {
        if !call.inputs.iter().any(|d| &d.name == k) {
            let names: Vec<&str> = call.inputs.iter().map(|d| d.name.as_str()).collect();
            return Err(import_error(
                &wf.file,
                t.at,
                format!(
                    "`{uses}` has no input `{k}`; its inputs are {}",
                    if names.is_empty() {
                        "none".to_string()
                    } else {
                        names.join(", ")
                    }
                ),
            ));
        }
    }
    for d in &call.inputs {
        let given = j.with.iter().find(|(k, _)| k == &d.name);
        let value = match given {
            Some((_, t)) => match render_static(base, t) {
                Ok(Some(v)) => Value::String(v),
                Ok(None) => {
                    return Ok(Err(format!(
                        "its input `{}` ({}) is known only at run time",
                        d.name, t.text
                    )))
                }
                Err(e) => return Err(import_error(&wf.file, t.at, e)),
            },
            None => match &d.default {
                Some(v) => v.clone(),
                None if d.required => {
                    return Err(import_error(
                        &wf.file,
                        u.at,
                        format!(
                            "job `{}` does not give `{uses}` its required input `{}` (add it under `with:`)",
                            j.id, d.name
                        ),
                    ))
                }
                None => match d.kind.as_str() {
                    "boolean" => Value::Bool(false),
                    "number" => json!(0),
                    _ => Value::String(String::new()),
                },
            },
        };
        let at = given.map_or(d.at, |(_, t)| t.at);
        let value = typed_input(value, &d.kind).map_err(|e| {
            import_error(&wf.file, at, format!("input `{}` of `{uses}`: {e}", d.name))
        })?;
        inputs.insert(d.name.clone(), value);
    }
    // Secrets: inherited, mapped, or none.
    let secrets = match &j.secrets {
        Some(workflow::CallSecrets::Inherit) => base
            .contexts
            .get("secrets")
            .cloned()
            .unwrap_or_else(|| json!({})),
        Some(workflow::CallSecrets::Map(m)) => {
            let mut out = Map::new();
            out.insert("GITHUB_TOKEN".into(), Value::String(String::new()));
            for (k, t) in m {
                let v = render_static(base, t)
                    .map_err(|e| import_error(&wf.file, t.at, e))?
                    .unwrap_or_default();
                out.insert(k.clone(), Value::String(v));
            }
            Value::Object(out)
        }
        None => json!({ "GITHUB_TOKEN": "" }),
    };
    let mut cbase = base.clone();
    cbase.set("inputs", Value::Object(inputs));
    cbase.set("secrets", secrets);
    let cbase = with_workflow_env(cbase, &called);
    let prefix = format!("{}.", j.id);
    plan_jobs(&called, &cbase, &prefix, &j.needs, opts, acc, depth + 1)?;

    // The caller: done when the called jobs are; their outputs become its own.
    let mut needs = Vec::new();
    let mut model_needs = Vec::new();
    for ij in &called.jobs {
        let id = format!("{prefix}{}", ij.id);
        let keys = acc.combos_of.get(&id).cloned().unwrap_or_default();
        if !keys.is_empty() {
            needs.push((ij.id.clone(), keys));
            model_needs.push(id);
        }
    }
    if needs.is_empty() {
        return Ok(Err(format!("every job of `{uses}` is left out")));
    }
    let mut github = cbase.contexts.get("github").cloned().unwrap_or(Value::Null);
    github["job"] = Value::String(j.id.clone());
    let mut contexts: Map<String, Value> = ["inputs", "vars", "runner", "secrets"]
        .iter()
        .filter_map(|k| cbase.contexts.get(*k).map(|v| (k.to_string(), v.clone())))
        .collect();
    contexts.insert("github".into(), github);
    contexts.insert("matrix".into(), json!({}));
    let plan = JobPlan {
        file: called.file.clone(),
        key: j.id.clone(),
        id: j.id.clone(),
        name: j.id.clone(),
        contexts,
        workflow_env: Vec::new(),
        job_env: Vec::new(),
        defaults: RunDefaults::default(),
        condition: None,
        needs,
        steps: Vec::new(),
        frames: Vec::new(),
        outputs: call.outputs.clone(),
        cache_dir: opts.cache_dir.clone(),
        continue_on_error: None,
        container: None,
    };
    let run = step_command(opts, &j.id, "complete");
    let job = Job {
        needs: model_needs,
        steps: vec![Step {
            name: Some("Complete job".into()),
            run,
            when: When::Always,
            ..Default::default()
        }],
        ..Default::default()
    };
    acc.outcomes.push(JobOutcome {
        key: j.id.clone(),
        id: j.id.clone(),
        name: j.id.clone(),
        skipped: None,
    });
    acc.combos_of.insert(j.id.clone(), vec![j.id.clone()]);
    acc.plans
        .push((j.id.clone(), BTreeMap::new(), vec![plan], job));
    Ok(Ok(()))
}

/// The shell command of one step of an imported job.
fn step_command(opts: &Options, id: &str, which: &str) -> String {
    let q = |s: &str| {
        shlex::try_quote(s)
            .map(|c| c.into_owned())
            .unwrap_or_else(|_| s.to_string())
    };
    let mut parts: Vec<String> = opts.step_command.iter().map(|s| q(s)).collect();
    parts.push(q(&opts.state_dir.display().to_string()));
    parts.push(q(id));
    parts.push(which.to_string());
    parts.join(" ")
}

/// A `concurrency:` rendered with what is known before the run starts.
fn concurrency(
    scope: &Scope,
    cc: &workflow::Concurrency,
) -> Result<Option<crate::model::Concurrency>, String> {
    let group = render_static(scope, &cc.group)?.ok_or_else(|| {
        format!(
            "its concurrency group `{}` is known only at run time",
            cc.group.text
        )
    })?;
    if group.is_empty() {
        // GitHub ignores an empty group.
        return Ok(None);
    }
    Ok(Some(crate::model::Concurrency {
        group,
        cancel_in_progress: dyn_bool(scope, &cc.cancel_in_progress).unwrap_or(false),
    }))
}

fn io_error(path: &Path, e: std::io::Error) -> ImportErrors {
    ImportErrors(vec![super::ImportError {
        file: path.to_path_buf(),
        line: 1,
        col: 1,
        message: format!("writing the run's state: {e}"),
    }])
}

fn dependency_order(wf: &workflow::Workflow) -> Vec<usize> {
    let mut done: Vec<usize> = Vec::new();
    let mut left: Vec<usize> = (0..wf.jobs.len()).collect();
    while !left.is_empty() {
        let before = left.len();
        left.retain(|&i| {
            let ready = wf.jobs[i].needs.iter().all(|(n, _)| {
                done.iter().any(|&d| wf.jobs[d].id == *n) || !wf.jobs.iter().any(|j| j.id == *n)
            });
            if ready {
                done.push(i);
            }
            !ready
        });
        if left.len() == before {
            // A cycle: the executor names it; keep file order.
            done.append(&mut left);
        }
    }
    done
}

fn combos(j: &JobDef, base: &Scope) -> Result<Vec<Combo>, String> {
    let Some(s) = &j.strategy else {
        return Ok(vec![Combo {
            key: j.id.clone(),
            label: String::new(),
            name: j.id.clone(),
            matrix: Map::new(),
            index: 0,
            total: 1,
        }]);
    };
    let mut s = s.clone();
    for (key, t) in std::mem::take(&mut s.exprs) {
        let tpl = Template::parse(&t.text).map_err(|e| e.message)?;
        if !template_is_static(&tpl) {
            return Err(format!(
                "its matrix `{key}` comes from `{}`, known only at run time",
                t.text
            ));
        }
        let items = match base.render_value(&tpl).map_err(|e| e.message)? {
            Value::Array(items) => items,
            other => {
                return Err(format!(
                    "its matrix `{key}` is {}, not a list",
                    super::expr::to_string(&other)
                ))
            }
        };
        match key.as_str() {
            "include" => s
                .include
                .extend(items.into_iter().filter_map(|i| i.as_object().cloned())),
            "exclude" => s
                .exclude
                .extend(items.into_iter().filter_map(|i| i.as_object().cloned())),
            _ => s.axes.push((key, items)),
        }
    }
    let s = &s;
    let matrices = if let Some(t) = &s.expr {
        let tpl = Template::parse(&t.text).map_err(|e| e.message)?;
        if !template_is_static(&tpl) {
            return Err(format!(
                "its matrix comes from `{}`, known only at run time",
                t.text
            ));
        }
        let v = base.render_value(&tpl).map_err(|e| e.message)?;
        let mut st = workflow::Strategy::default();
        let Value::Object(m) = v else {
            return Err(format!("its matrix `{}` is not a map", t.text));
        };
        for (k, v) in m {
            match (k.as_str(), v) {
                ("include", Value::Array(items)) => {
                    st.include = items
                        .into_iter()
                        .filter_map(|i| i.as_object().cloned())
                        .collect()
                }
                ("exclude", Value::Array(items)) => {
                    st.exclude = items
                        .into_iter()
                        .filter_map(|i| i.as_object().cloned())
                        .collect()
                }
                (_, Value::Array(items)) => st.axes.push((k, items)),
                _ => {}
            }
        }
        expand_matrix(&st)
    } else {
        expand_matrix(s)
    };
    if matrices.is_empty() {
        return Err("its matrix has no combinations".into());
    }
    let total = matrices.len();
    let mut seen: Vec<String> = Vec::new();
    Ok(matrices
        .into_iter()
        .enumerate()
        .map(|(index, m)| {
            // Axis order first, as GitHub shows a combination.
            let mut keys: Vec<&String> = s
                .axes
                .iter()
                .map(|(k, _)| k)
                .filter(|k| m.contains_key(*k))
                .collect();
            keys.extend(m.keys().filter(|k| !s.axes.iter().any(|(a, _)| a == *k)));
            let values: Vec<String> = keys.iter().map(|k| show(&m[k.as_str()])).collect();
            let mut key = file_safe(sanitize(&format!("{}-{}", j.id, values.join("-"))));
            if key.is_empty() || seen.contains(&key) {
                key = format!("{}-{}", sanitize(&j.id), index + 1);
            }
            seen.push(key.clone());
            Combo {
                key,
                label: values.join(", "),
                name: format!("{} ({})", j.id, values.join(", ")),
                matrix: m,
                index,
                total,
            }
        })
        .collect())
}

/// Why a job is not planned: left out (with the reason), or a mistake in a file.
enum PlanError {
    LeftOut(String),
    Import(ImportErrors),
}

impl From<String> for PlanError {
    fn from(reason: String) -> Self {
        PlanError::LeftOut(reason)
    }
}

#[allow(clippy::too_many_arguments)]
fn plan_job(
    wf: &workflow::Workflow,
    j: &JobDef,
    c: &Combo,
    base: &Scope,
    opts: &Options,
    combos_of: &BTreeMap<String, Vec<String>>,
    notes: &mut Vec<UsesNote>,
    warnings: &mut Vec<ImportError>,
) -> Result<(JobPlan, Job), PlanError> {
    let mut scope = base.clone();
    scope.set("matrix", Value::Object(c.matrix.clone()));
    let fail_fast = match &j.strategy {
        Some(s) => dyn_bool(
            &scope,
            &s.fail_fast.clone().or(Some(Dyn::Value(Value::Bool(true)))),
        )
        .unwrap_or(true),
        None => true,
    };
    let max_parallel = j
        .strategy
        .as_ref()
        .and_then(|s| dyn_number(&scope, &s.max_parallel))
        .map_or(Value::Null, |n| json!(n as i64));
    scope.set(
        "strategy",
        json!({ "fail-fast": fail_fast, "job-index": c.index, "job-total": c.total, "max-parallel": max_parallel }),
    );
    let mut github = scope.contexts.get("github").cloned().unwrap_or(Value::Null);
    github["job"] = Value::String(j.id.clone());
    scope.set("github", github);

    // needs: every combination of every needed job.
    let mut needs = Vec::new();
    let mut need_ids = Vec::new();
    for (n, _) in &j.needs {
        let keys = combos_of.get(n).cloned().unwrap_or_default();
        if keys.is_empty() {
            return Err(format!("needs `{n}`, which is left out").into());
        }
        need_ids.push(n.clone());
        needs.push((n.clone(), keys));
    }

    // runs-on: a Linux label runs on the host; --platform maps a label to an image.
    let mut labels = Vec::new();
    for t in &j.runs_on {
        match render_static(&scope, t)? {
            Some(l) => labels.push(l),
            None => {
                return Err(format!("its `runs-on` ({}) is known only at run time", t.text).into())
            }
        }
    }
    // The image a job's steps run in: its `container:`, else its label's --platform.
    let platform = labels.iter().find_map(|l| opts.platforms.get(l)).cloned();
    let linux = |l: &str| {
        let l = l.to_ascii_lowercase();
        l.starts_with("ubuntu") || matches!(l.as_str(), "linux" | "self-hosted" | "x64" | "arm64")
    };
    if platform.is_none() {
        if let Some(other) = labels.iter().find(|l| !linux(l)) {
            return Err(format!(
                "runs on `{other}`; only Linux runners (ubuntu-*, self-hosted, linux) run on this host (--platform {other}=IMAGE runs it in an image)"
            ).into());
        }
        if std::env::consts::OS != "linux" && !labels.is_empty() {
            return Err(format!(
                "runs on `{}`, and this host is not Linux",
                labels.join(", ")
            )
            .into());
        }
    }
    let container = match &j.container {
        // An image that renders empty (`container: ${{ matrix.container }}` on a
        // combination without one) runs the job on the runner, as on GitHub.
        Some(ct) if render_static(&scope, &ct.image)?.is_some_and(|i| i.is_empty()) => platform
            .map(|image| ContainerPlan {
                image,
                env: Vec::new(),
            }),
        Some(ct) => {
            let image = match render_static(&scope, &ct.image)? {
                Some(i) => i,
                None => {
                    return Err(format!(
                        "its container image ({}) is known only at run time",
                        ct.image.text
                    )
                    .into())
                }
            };
            let env = ct
                .env
                .iter()
                .map(|(k, t)| {
                    let v = render_static(&scope, t)
                        .ok()
                        .flatten()
                        .unwrap_or_else(|| t.text.clone());
                    (k.clone(), v)
                })
                .collect();
            Some(ContainerPlan { image, env })
        }
        None => platform.map(|image| ContainerPlan {
            image,
            env: Vec::new(),
        }),
    };

    let name = match &j.name {
        Some(t) => render_static(&scope, t)?.unwrap_or_else(|| c.name.clone()),
        None => c.name.clone(),
    };

    // The job's `if:`: decided now when it reads only what is known now.
    let mut when = When::OnSuccess;
    let mut condition = None;
    if let Some(t) = &j.condition {
        let e = parse_condition(&t.text).map_err(|e| e.message)?;
        if is_static(&e) {
            let mut ok = scope.clone();
            ok.status = Status::default();
            let mut bad = scope.clone();
            bad.status = Status {
                failed: true,
                cancelled: false,
            };
            let mut stopped = scope.clone();
            stopped.status = Status {
                failed: false,
                cancelled: true,
            };
            let run_ok = ok.test(&e).map_err(|e| e.message)?;
            let run_bad = bad.test(&e).map_err(|e| e.message)?;
            let run_cancelled = stopped.test(&e).map_err(|e| e.message)?;
            when = match (run_ok, run_bad, run_cancelled) {
                (true, false, false) => When::OnSuccess,
                (false, true, false) => When::OnFailure,
                (true, true, true) => When::Always,
                (false, false, false) => {
                    return Err(format!("its condition `if: {}` is false", t.text.trim()).into())
                }
                // `cancelled()`, `!cancelled()`: the step runner decides, knowing
                // whether the run was cancelled.
                _ => {
                    condition = Some(t.clone());
                    When::Always
                }
            };
        } else {
            when = When::Always;
            condition = Some(t.clone());
        }
    }

    // Steps: each `uses:` is a built-in or leaves the job out.
    let defaults = RunDefaults {
        shell: j
            .defaults
            .shell
            .clone()
            .or_else(|| wf.defaults.shell.clone()),
        working_directory: j
            .defaults
            .working_directory
            .clone()
            .or_else(|| wf.defaults.working_directory.clone()),
    };
    let mut planner = Steps {
        opts,
        key: &c.key,
        in_container: container.is_some(),
        defaults: &defaults,
        notes,
        warnings,
        steps: Vec::new(),
        model: Vec::new(),
        frames: Vec::new(),
        blocked: None,
    };
    let level = Level {
        file: &wf.file,
        frame: None,
        scope: &scope,
        label: None,
        timeout: None,
        depth: 0,
        via: None,
    };
    planner.plan(&j.steps, &level).map_err(PlanError::Import)?;
    let Steps {
        steps,
        model: step_models,
        frames,
        blocked,
        ..
    } = planner;
    if let Some(reason) = blocked {
        return Err(reason.into());
    }

    let concurrency = match &j.concurrency {
        Some(cc) => concurrency(&scope, cc)?,
        None => None,
    };

    let plan = JobPlan {
        file: wf.file.clone(),
        key: c.key.clone(),
        id: j.id.clone(),
        name: name.clone(),
        contexts: [
            "github", "inputs", "vars", "matrix", "strategy", "runner", "secrets",
        ]
        .iter()
        .filter_map(|k| scope.contexts.get(*k).map(|v| (k.to_string(), v.clone())))
        .collect(),
        workflow_env: wf.env.clone(),
        job_env: j.env.clone(),
        defaults,
        condition,
        needs,
        steps,
        frames,
        outputs: j.outputs.clone(),
        cache_dir: opts.cache_dir.clone(),
        continue_on_error: j.continue_on_error.clone(),
        container,
    };

    // The model: one step per workflow step, the post steps, then the record of the job.
    let command = |which: &str| step_command(opts, &j.id, which);
    let mut model_steps = Vec::new();
    for (i, (label, timeout)) in step_models.into_iter().enumerate() {
        model_steps.push(Step {
            name: Some(label),
            run: command(&i.to_string()),
            timeout,
            // The step runner decides (`if:`, continue-on-error) and records it.
            when: When::Always,
            ..Default::default()
        });
    }
    for (i, s) in plan.steps.iter().enumerate().rev() {
        if s.builtin.as_ref().is_some_and(Builtin::has_post) {
            model_steps.push(Step {
                name: Some(format!(
                    "Post {}",
                    s.def.uses.as_ref().map_or("", |u| u.text.as_str())
                )),
                run: command(&format!("post-{i}")),
                when: When::Always,
                ..Default::default()
            });
        }
    }
    model_steps.push(Step {
        name: Some("Complete job".into()),
        run: command("complete"),
        when: When::Always,
        ..Default::default()
    });

    let timeout_min = dyn_number(&scope, &j.timeout_minutes).unwrap_or(360.0);
    let mut services = BTreeMap::new();
    for (sname, s) in &j.services {
        let image = render_static(&scope, &s.image)?.unwrap_or_else(|| s.image.text.clone());
        let env = s
            .env
            .iter()
            .map(|(k, t)| {
                (
                    k.clone(),
                    render_static(&scope, t)
                        .ok()
                        .flatten()
                        .unwrap_or_else(|| t.text.clone()),
                )
            })
            .collect();
        let port = s
            .ports
            .first()
            .and_then(|p| p.rsplit(':').next())
            .and_then(|p| p.split('/').next()?.parse().ok());
        services.insert(
            sname.clone(),
            JobService {
                image,
                env,
                port,
                ..Default::default()
            },
        );
    }
    let job = Job {
        needs: need_ids,
        steps: model_steps,
        timeout: (timeout_min > 0.0 && timeout_min.is_finite())
            .then(|| tug_spec::Duration::from_millis((timeout_min * 60_000.0) as u64)),
        when,
        // Decided per combination by the step runner.
        continue_on_error: false,
        services,
        concurrency,
        ..Default::default()
    };
    Ok((plan, job))
}

/// Where steps are planned: the job's own, or a composite action's for one call.
struct Level<'a> {
    /// The file the steps are in.
    file: &'a Path,
    frame: Option<usize>,
    /// What is known at import: the job's, or the call's (`inputs`, `github.action_path`).
    scope: &'a Scope,
    /// The caller's name, before the action's steps' names.
    label: Option<&'a str>,
    /// The caller's `timeout-minutes`, for each of the action's steps.
    timeout: Option<tug_spec::Duration>,
    depth: usize,
    /// The local action whose steps these are.
    via: Option<&'a str>,
}

/// A job's steps planned, local composite actions expanded in place.
struct Steps<'a> {
    opts: &'a Options,
    key: &'a str,
    in_container: bool,
    defaults: &'a RunDefaults,
    notes: &'a mut Vec<UsesNote>,
    warnings: &'a mut Vec<ImportError>,
    steps: Vec<StepPlan>,
    /// Each step's name and timeout in the model.
    model: Vec<(String, Option<tug_spec::Duration>)>,
    frames: Vec<FramePlan>,
    blocked: Option<String>,
}

/// How deep local composite actions may call each other (GitHub: 10).
const MAX_ACTION_DEPTH: usize = 10;

fn is_local(uses: &str) -> bool {
    uses.starts_with("./") || uses.starts_with("../")
}

/// `a/./b/../c` as `a/c`, without touching the file system.
pub(super) fn normalize(p: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if matches!(out.components().next_back(), Some(Component::Normal(_))) {
                    out.pop();
                } else if !out.has_root() {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    out
}

impl Steps<'_> {
    fn plan(&mut self, steps: &[StepDef], lv: &Level) -> Result<(), ImportErrors> {
        let static_text = |t: &Tpl| {
            render_static(lv.scope, t)
                .ok()
                .flatten()
                .unwrap_or_else(|| t.text.clone())
        };
        for s in steps {
            let i = self.steps.len();
            let own = match (&s.name, &s.run, &s.uses) {
                (Some(n), _, _) => static_text(n),
                (None, Some(r), _) => format!("Run {}", r.text.lines().next().unwrap_or("").trim()),
                (None, None, Some(u)) => format!("Run {}", u.text),
                _ => format!("step {}", i + 1),
            };
            let label = match lv.label {
                Some(caller) => format!("{caller} / {own}"),
                None => own.clone(),
            };
            let timeout = match lv.frame {
                Some(_) => lv.timeout,
                None => dyn_number(lv.scope, &s.timeout_minutes)
                    .filter(|m| *m > 0.0 && m.is_finite())
                    .map(|m| tug_spec::Duration::from_millis((m * 60_000.0) as u64)),
            };
            let mut builtin = None;
            let mut shell = Vec::new();
            if let Some(u) = &s.uses {
                let uses = match render_static(lv.scope, u) {
                    Ok(v) => v.unwrap_or_else(|| u.text.clone()),
                    Err(e) => {
                        self.blocked.get_or_insert(e);
                        u.text.clone()
                    }
                };
                if is_local(&uses) {
                    self.call_action(s, u, &uses, &own, timeout, lv)?;
                    continue;
                }
                let with: BTreeMap<String, String> = s
                    .with
                    .iter()
                    .map(|(k, t)| (k.clone(), static_text(t)))
                    .collect();
                match actions::classify(&uses, &with, &*self.opts.on_path) {
                    Verdict::Builtin(b) => builtin = Some(b),
                    Verdict::Unsupported(advice) => self.unsupported(&uses, lv, u.at, advice),
                }
            } else {
                // Composite actions name their shell; the job's defaults are not theirs.
                let none = RunDefaults::default();
                let defaults = if lv.frame.is_some() {
                    &none
                } else {
                    self.defaults
                };
                match shell_for(s, defaults, &*self.opts.on_path, self.in_container) {
                    Ok(sh) => shell = sh,
                    Err(why) => {
                        if self.blocked.is_none() {
                            self.blocked = Some(match lv.via {
                                Some(via) => format!("a step of `{via}` {why}"),
                                None => format!("a step {why}"),
                            });
                        }
                    }
                }
            }
            self.steps.push(StepPlan {
                def: s.clone(),
                builtin,
                shell,
                frame: lv.frame,
                ends: None,
            });
            self.model.push((label, timeout));
        }
        Ok(())
    }

    /// A `uses:` with no equivalent here: noted, and the job left out.
    fn unsupported(&mut self, uses: &str, lv: &Level, at: Loc, advice: String) {
        let key = self.key.to_string();
        match self
            .notes
            .iter_mut()
            .find(|n| n.uses == uses && n.at == at && n.file == lv.file)
        {
            Some(n) => {
                if !n.jobs.contains(&key) {
                    n.jobs.push(key)
                }
            }
            None => self.notes.push(UsesNote {
                uses: uses.to_string(),
                file: lv.file.to_path_buf(),
                at,
                advice: advice.clone(),
                jobs: vec![key],
            }),
        }
        if self.blocked.is_none() {
            self.blocked = Some(match lv.via {
                Some(via) => format!("needs `{uses}` (a step of `{via}`): {advice}"),
                None => format!("needs `{uses}`: {advice}"),
            });
        }
    }

    fn warn(&mut self, file: &Path, at: Loc, message: String, frame: &mut FramePlan) {
        frame.warnings.push(format!(
            "{}:{}:{}: {message}",
            file.display(),
            at.line,
            at.col
        ));
        self.warnings.push(ImportError {
            file: file.to_path_buf(),
            line: at.line,
            col: at.col,
            message,
        });
    }

    /// A step that uses a local action (`./dir`, read from `dir/action.yml`):
    /// a composite one's steps are planned in its place, then a step that
    /// ends the call; any other kind leaves the job out.
    fn call_action(
        &mut self,
        s: &StepDef,
        u: &Tpl,
        uses: &str,
        own_label: &str,
        timeout: Option<tug_spec::Duration>,
        lv: &Level,
    ) -> Result<(), ImportErrors> {
        if lv.depth >= MAX_ACTION_DEPTH {
            let advice = format!(
                "local actions nest at most {MAX_ACTION_DEPTH} deep; `{uses}` is {} levels down",
                lv.depth + 1
            );
            self.unsupported(uses, lv, u.at, advice);
            return Ok(());
        }
        let rel = normalize(Path::new(uses.trim_end_matches('/')));
        let dir = normalize(&self.opts.workspace.join(&rel));
        let tried = [dir.join("action.yml"), dir.join("action.yaml")];
        let Some(file) = tried.iter().find(|f| f.is_file()) else {
            return Err(import_error(
                lv.file,
                u.at,
                format!(
                    "`{uses}` is not an action: neither {} nor {} exists",
                    tried[0].display(),
                    tried[1].display()
                ),
            ));
        };
        let src = std::fs::read_to_string(file).map_err(|e| {
            import_error(
                lv.file,
                u.at,
                format!("cannot read the action {}: {e}", file.display()),
            )
        })?;
        let action = workflow::read_action(file, &src).map_err(ImportErrors::sorted)?;
        let steps = match &action.runs {
            workflow::Runs::Composite(steps) => steps,
            workflow::Runs::Node { using, .. } => {
                let advice = format!("`{uses}` is a JavaScript action of this repository (`using: {using}`): tug runs composite actions only");
                self.unsupported(uses, lv, u.at, advice);
                return Ok(());
            }
            workflow::Runs::Docker { image } => {
                let advice = format!("`{uses}` is a Docker container action of this repository (`image: {image}`): tug runs composite actions only");
                self.unsupported(uses, lv, u.at, advice);
                return Ok(());
            }
            workflow::Runs::None => {
                return Err(import_error(
                    file,
                    Loc { line: 1, col: 1 },
                    "the action says nothing to run".into(),
                ))
            }
        };
        let f = self.frames.len();
        let mut frame = FramePlan {
            uses: uses.to_string(),
            file: file.clone(),
            dir: rel.clone(),
            parent: lv.frame,
            inputs: Vec::new(),
            outputs: action.outputs.clone(),
            label: match lv.label {
                Some(caller) => format!("{caller} / {own_label}"),
                None => own_label.to_string(),
            },
            warnings: Vec::new(),
        };
        let declared = |k: &str| action.inputs.iter().any(|d| d.name.eq_ignore_ascii_case(k));
        // Inputs: `with:` over the defaults, all strings. A literal is known
        // now; an expression is rendered when the call starts, as GitHub does.
        let as_input = |t: &Tpl, in_action: bool| FrameInput {
            name: String::new(),
            value: if t.text.contains("${{") {
                Dyn::Expr(t.clone())
            } else {
                Dyn::Value(Value::String(t.text.clone()))
            },
            in_action,
        };
        for (k, t) in &s.with {
            if !declared(k) {
                let names: Vec<&str> = action.inputs.iter().map(|d| d.name.as_str()).collect();
                let msg = format!(
                    "`{uses}` has no input `{k}`; its inputs are {} (GitHub only warns)",
                    if names.is_empty() {
                        "none".to_string()
                    } else {
                        names.join(", ")
                    }
                );
                self.warn(lv.file, t.at, msg, &mut frame);
            }
            frame.inputs.push(FrameInput {
                name: k.clone(),
                ..as_input(t, false)
            });
        }
        for d in &action.inputs {
            if s.with.iter().any(|(k, _)| k.eq_ignore_ascii_case(&d.name)) {
                continue;
            }
            let input = match &d.default {
                Some(t) => as_input(t, true),
                None => {
                    if d.required {
                        let msg = format!(
                            "the step does not give `{uses}` its required input `{}`: it is '' (GitHub does not check)",
                            d.name
                        );
                        self.warn(lv.file, u.at, msg, &mut frame);
                    }
                    FrameInput {
                        name: String::new(),
                        value: Dyn::Value(Value::String(String::new())),
                        in_action: true,
                    }
                }
            };
            frame.inputs.push(FrameInput {
                name: d.name.clone(),
                ..input
            });
        }
        // What is known now, for names and for sorting the action's `uses:`.
        let mut known = Map::new();
        for i in &frame.inputs {
            let v = match &i.value {
                Dyn::Value(v) => v.clone(),
                Dyn::Expr(t) => Value::String(
                    render_static(lv.scope, t)
                        .ok()
                        .flatten()
                        .unwrap_or_else(|| t.text.clone()),
                ),
            };
            known.insert(i.name.clone(), v);
        }
        let mut scope = lv.scope.clone();
        scope.set("inputs", Value::Object(known));
        if let Some(Value::Object(g)) = scope.contexts.get_mut("github") {
            g.insert(
                "action_path".into(),
                Value::String(dir.display().to_string()),
            );
        }
        let label = frame.label.clone();
        self.frames.push(frame);
        let inner = Level {
            file: file.as_path(),
            frame: Some(f),
            scope: &scope,
            label: Some(&label),
            timeout,
            depth: lv.depth + 1,
            via: Some(uses),
        };
        self.plan(steps, &inner)?;
        self.steps.push(StepPlan {
            def: s.clone(),
            builtin: None,
            shell: Vec::new(),
            frame: lv.frame,
            ends: Some(f),
        });
        self.model.push((label, None));
        Ok(())
    }
}
