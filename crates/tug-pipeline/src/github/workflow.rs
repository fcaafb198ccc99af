//! Reading a workflow file into typed parts that remember where they were
//! written, checking every key and every expression in one pass.

use super::expr::{parse_condition, ExprError, Template};
use super::{ImportError, Loc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::{Path, PathBuf};
use tug_spec::yaml::{self, Kind, Node};

/// A string that may hold `${{ }}`, checked at import and kept as text.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Tpl {
    pub text: String,
    pub at: Loc,
}

/// `continue-on-error`, `timeout-minutes` and the like: a literal or an expression.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Dyn {
    Value(Value),
    Expr(Tpl),
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Workflow {
    pub file: PathBuf,
    pub name: Option<String>,
    pub env: Vec<(String, Tpl)>,
    pub defaults: RunDefaults,
    pub concurrency: Option<Concurrency>,
    pub jobs: Vec<JobDef>,
    /// `on.workflow_call`: what a caller passes and gets back.
    pub call: Option<CallDef>,
    /// `on.workflow_dispatch.inputs`.
    pub dispatch_inputs: Vec<InputDef>,
}

/// `on.workflow_call` of a reusable workflow.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct CallDef {
    pub inputs: Vec<InputDef>,
    /// Output name -> its `value`, which reads the `jobs` context.
    pub outputs: Vec<(String, Tpl)>,
    /// Secret name -> required.
    pub secrets: Vec<(String, bool)>,
}

/// An input of `workflow_call` or `workflow_dispatch`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct InputDef {
    pub name: String,
    /// `string`, `boolean`, `number` (workflow_call); dispatch adds `choice`, `environment`.
    pub kind: String,
    pub default: Option<Value>,
    pub required: bool,
    pub at: Loc,
}

/// `secrets:` of a job that calls a reusable workflow.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum CallSecrets {
    Inherit,
    Map(Vec<(String, Tpl)>),
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RunDefaults {
    pub shell: Option<String>,
    pub working_directory: Option<Tpl>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Concurrency {
    pub group: Tpl,
    pub cancel_in_progress: Option<Dyn>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct JobDef {
    pub id: String,
    pub at: Loc,
    pub name: Option<Tpl>,
    pub needs: Vec<(String, Loc)>,
    /// Labels (after expressions are rendered per matrix combination).
    pub runs_on: Vec<Tpl>,
    pub condition: Option<Tpl>,
    pub env: Vec<(String, Tpl)>,
    pub defaults: RunDefaults,
    pub steps: Vec<StepDef>,
    pub strategy: Option<Strategy>,
    pub timeout_minutes: Option<Dyn>,
    pub continue_on_error: Option<Dyn>,
    pub concurrency: Option<Concurrency>,
    pub services: Vec<(String, ServiceDef)>,
    pub container: Option<ServiceDef>,
    pub outputs: Vec<(String, Tpl)>,
    /// A reusable workflow call (`uses:` at job level), its `with:` and `secrets:`.
    pub uses: Option<Tpl>,
    pub with: Vec<(String, Tpl)>,
    pub secrets: Option<CallSecrets>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Strategy {
    /// Axis -> values; a whole-matrix expression is kept in `expr`.
    pub axes: Vec<(String, Vec<Value>)>,
    pub include: Vec<serde_json::Map<String, Value>>,
    pub exclude: Vec<serde_json::Map<String, Value>>,
    pub expr: Option<Tpl>,
    /// Axes, `include` or `exclude` given as one expression each.
    pub exprs: Vec<(String, Tpl)>,
    pub fail_fast: Option<Dyn>,
    pub max_parallel: Option<Dyn>,
    pub at: Loc,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ServiceDef {
    pub image: Tpl,
    pub env: Vec<(String, Tpl)>,
    pub ports: Vec<String>,
    pub options: Option<String>,
    pub at: Loc,
}

/// An action's `action.yml`.
#[derive(Clone, Debug, Default)]
pub struct ActionDef {
    pub file: PathBuf,
    pub name: Option<String>,
    pub inputs: Vec<ActionInput>,
    /// Output name -> its `value` (composite actions).
    pub outputs: Vec<(String, Tpl)>,
    pub runs: Runs,
}

/// An input of an action: GitHub passes every input as a string.
#[derive(Clone, Debug, Default)]
pub struct ActionInput {
    pub name: String,
    pub default: Option<Tpl>,
    pub required: bool,
    pub at: Loc,
}

/// What `runs.using` says.
#[derive(Clone, Debug, Default)]
pub enum Runs {
    Composite(Vec<StepDef>),
    /// `node20` and the like, with its `main`.
    Node {
        using: String,
        main: String,
    },
    /// `docker`, with its `image` (`Dockerfile` or `docker://…`).
    Docker {
        image: String,
    },
    #[default]
    None,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct StepDef {
    pub at: Loc,
    pub id: Option<String>,
    pub name: Option<Tpl>,
    pub condition: Option<Tpl>,
    pub run: Option<Tpl>,
    pub uses: Option<Tpl>,
    pub with: Vec<(String, Tpl)>,
    pub env: Vec<(String, Tpl)>,
    pub shell: Option<String>,
    pub working_directory: Option<Tpl>,
    pub continue_on_error: Option<Dyn>,
    pub timeout_minutes: Option<Dyn>,
}

const TOP_KEYS: &[&str] = &[
    "name",
    "run-name",
    "on",
    "permissions",
    "env",
    "defaults",
    "concurrency",
    "jobs",
];
const JOB_KEYS: &[&str] = &[
    "name",
    "permissions",
    "needs",
    "if",
    "runs-on",
    "environment",
    "concurrency",
    "outputs",
    "env",
    "defaults",
    "steps",
    "timeout-minutes",
    "strategy",
    "continue-on-error",
    "container",
    "services",
    "uses",
    "with",
    "secrets",
    "snapshot",
];
const STEP_KEYS: &[&str] = &[
    "id",
    "if",
    "name",
    "uses",
    "run",
    "working-directory",
    "shell",
    "with",
    "env",
    "continue-on-error",
    "timeout-minutes",
];
/// A step of a composite action: no `timeout-minutes` (the last of `STEP_KEYS`).
const COMPOSITE_STEP_KEYS: &[&str] = match STEP_KEYS.split_last() {
    Some((_, rest)) => rest,
    None => &[],
};
const ACTION_KEYS: &[&str] = &[
    "name",
    "author",
    "description",
    "inputs",
    "outputs",
    "runs",
    "branding",
];
const ACTION_INPUT_KEYS: &[&str] = &["description", "required", "default", "deprecationMessage"];
const RUNS_KEYS: &[&str] = &[
    "using",
    "steps",
    "main",
    "pre",
    "pre-if",
    "post",
    "post-if",
    "image",
    "args",
    "entrypoint",
    "pre-entrypoint",
    "post-entrypoint",
    "env",
];
const STRATEGY_KEYS: &[&str] = &["matrix", "fail-fast", "max-parallel"];
const SERVICE_KEYS: &[&str] = &["image", "credentials", "env", "ports", "volumes", "options"];
const DEFAULTS_KEYS: &[&str] = &["run"];
const DEFAULTS_RUN_KEYS: &[&str] = &["shell", "working-directory"];
const CONCURRENCY_KEYS: &[&str] = &["group", "cancel-in-progress"];
const CALL_KEYS: &[&str] = &["inputs", "outputs", "secrets"];
const INPUT_KEYS: &[&str] = &[
    "description",
    "required",
    "default",
    "type",
    "options",
    "deprecationMessage",
];
const OUTPUT_KEYS: &[&str] = &["description", "value"];
const SECRET_KEYS: &[&str] = &["description", "required"];

pub(crate) struct Reader<'a> {
    pub file: &'a Path,
    pub src: &'a str,
    pub errors: Vec<ImportError>,
}

impl<'a> Reader<'a> {
    pub fn new(file: &'a Path, src: &'a str) -> Self {
        Reader {
            file,
            src,
            errors: Vec::new(),
        }
    }

    pub fn error(&mut self, at: Loc, message: impl Into<String>) {
        self.errors.push(ImportError {
            file: self.file.to_path_buf(),
            line: at.line,
            col: at.col,
            message: message.into(),
        });
    }

    pub fn loc(n: &Node) -> Loc {
        Loc {
            line: n.line,
            col: n.col,
        }
    }

    /// Reports keys of `map` not in `allowed`, with the closest allowed one.
    pub fn check_keys(&mut self, map: &Node, allowed: &[&str], what: &str) {
        let Some(entries) = map.as_map() else { return };
        for (k, _) in entries {
            let name = k.scalar().unwrap_or("");
            if !allowed.contains(&name) {
                let hint = allowed
                    .iter()
                    .map(|a| (strsim::jaro_winkler(name, a), *a))
                    .filter(|(s, _)| *s > 0.8)
                    .max_by(|a, b| a.0.total_cmp(&b.0))
                    .map(|(_, a)| format!(" (did you mean `{a}`?)"))
                    .unwrap_or_default();
                self.error(
                    Self::loc(k),
                    format!("unknown key `{name}` in {what}{hint}"),
                );
            }
        }
    }

    pub fn map<'n>(&mut self, n: &'n Node, what: &str) -> &'n [(Node, Node)] {
        match n.as_map() {
            Some(m) => m,
            None => {
                if !n.is_null() {
                    self.error(
                        Self::loc(n),
                        format!("{what} must be a map, found {}", n.describe()),
                    );
                }
                &[]
            }
        }
    }

    /// A scalar as text (numbers and booleans as written).
    pub fn text(&mut self, n: &Node, what: &str) -> Option<String> {
        match &n.kind {
            Kind::Scalar { text, .. } if !n.is_null() => Some(text.clone()),
            _ => {
                self.error(
                    Self::loc(n),
                    format!("{what} must be a string, found {}", n.describe()),
                );
                None
            }
        }
    }

    /// A template, its expressions checked.
    pub fn tpl(&mut self, n: &Node, what: &str) -> Option<Tpl> {
        let text = self.text(n, what)?;
        if let Err(e) = Template::parse(&text) {
            self.expr_error(n, &text, e);
            return None;
        }
        Some(Tpl {
            text,
            at: Self::loc(n),
        })
    }

    /// An `if:` condition, checked.
    pub fn condition(&mut self, n: &Node) -> Option<Tpl> {
        let text = match &n.kind {
            Kind::Scalar { text, .. } => text.clone(),
            _ => {
                self.error(
                    Self::loc(n),
                    format!("`if` must be an expression, found {}", n.describe()),
                );
                return None;
            }
        };
        if let Err(e) = parse_condition(&text) {
            self.expr_error(n, &text, e);
            return None;
        }
        Some(Tpl {
            text,
            at: Self::loc(n),
        })
    }

    pub fn expr_error(&mut self, n: &Node, text: &str, e: ExprError) {
        let at = offset_loc(self.src, n, text, e.offset);
        self.error(at, format!("bad expression: {}", e.message));
    }

    pub fn env(&mut self, n: &Node, what: &str) -> Vec<(String, Tpl)> {
        let mut out = Vec::new();
        if let (Kind::Scalar { .. }, false) = (&n.kind, n.is_null()) {
            // `env: ${{ fromJSON(...) }}` is allowed by GitHub; kept as one entry.
            if let Some(t) = self.tpl(n, what) {
                out.push((String::new(), t));
            }
            return out;
        }
        for (k, v) in self.map(n, what) {
            let Some(name) = k.scalar().map(str::to_string) else {
                continue;
            };
            let t = if v.is_null() {
                Some(Tpl {
                    text: String::new(),
                    at: Self::loc(v),
                })
            } else {
                self.tpl(v, &format!("`{name}`"))
            };
            if let Some(t) = t {
                out.push((name, t));
            }
        }
        out
    }

    pub fn dynamic(&mut self, n: &Node, what: &str) -> Option<Dyn> {
        if let Some(s) = n.as_str() {
            if s.contains("${{") {
                return self.tpl(n, what).map(Dyn::Expr);
            }
        }
        Some(Dyn::Value(to_json(n)))
    }
}

/// The position of byte `offset` of a scalar's `text`, given where the node
/// starts in `src`: a quoted scalar starts at its quote, a block scalar
/// (`|`, `>`) at its first content line, whose indentation every line shares.
pub fn offset_loc(src: &str, n: &Node, text: &str, offset: usize) -> Loc {
    let start_line = src.split('\n').nth(n.line.saturating_sub(1)).unwrap_or("");
    let quoted = matches!(
        start_line.chars().nth(n.col.saturating_sub(1)),
        Some('\'' | '"')
    );
    let before = &text[..offset.min(text.len())];
    let nl = before.matches('\n').count();
    let col_in_line = before.len() - before.rfind('\n').map_or(0, |i| i + 1);
    Loc {
        line: n.line + nl,
        col: n.col + usize::from(quoted && nl == 0) + col_in_line,
    }
}

/// A YAML node as JSON, scalars typed the YAML 1.2 way.
pub fn to_json(n: &Node) -> Value {
    match &n.kind {
        Kind::Scalar { text, plain } => {
            if n.is_null() {
                Value::Null
            } else if let Some(b) = n.as_bool() {
                Value::Bool(b)
            } else if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(f) = n.as_f64() {
                serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)
            } else {
                let _ = plain;
                Value::String(text.clone())
            }
        }
        Kind::Seq(items) => Value::Array(items.iter().map(to_json).collect()),
        Kind::Map(entries) => Value::Object(
            entries
                .iter()
                .map(|(k, v)| (k.scalar().unwrap_or("").to_string(), to_json(v)))
                .collect(),
        ),
    }
}

/// Parses a file's YAML: a reader holding its syntax errors so far, and
/// the root node; an empty or unreadable file ends here.
fn parse_root<'a>(
    file: &'a Path,
    src: &'a str,
    empty: &str,
) -> Result<(Reader<'a>, Node), Vec<ImportError>> {
    let mut r = Reader::new(file, src);
    let at = |line, col| Loc { line, col };
    match yaml::parse(src) {
        Ok((Some(root), errs)) => {
            for e in errs {
                r.error(at(e.line, e.col), e.message);
            }
            Ok((r, root))
        }
        Ok((None, _)) => {
            r.error(at(1, 1), empty);
            Err(r.errors)
        }
        Err(e) => {
            r.error(at(e.line, e.col), e.message);
            Err(r.errors)
        }
    }
}

/// Reads a workflow; every problem is reported at once.
pub fn read(file: &Path, src: &str) -> Result<Workflow, Vec<ImportError>> {
    let (mut r, root) = parse_root(file, src, "empty workflow: it needs `jobs:`")?;
    let mut wf = Workflow {
        file: file.to_path_buf(),
        ..Default::default()
    };
    if root.as_map().is_none() {
        r.error(
            Reader::loc(&root),
            format!("a workflow is a map, found {}", root.describe()),
        );
        return Err(r.errors);
    }
    r.check_keys(&root, TOP_KEYS, "a workflow");
    if let Some(n) = root.get("name") {
        wf.name = r.text(n, "`name`");
    }
    if let Some(n) = root.get("env") {
        wf.env = r.env(n, "`env`");
    }
    if let Some(n) = root.get("defaults") {
        wf.defaults = read_defaults(&mut r, n);
    }
    if let Some(n) = root.get("concurrency") {
        wf.concurrency = read_concurrency(&mut r, n);
    }
    if let Some(on) = root.get("on") {
        if on.as_map().is_some() {
            if let Some(c) = on.get("workflow_call") {
                wf.call = Some(read_call(&mut r, c));
            }
            if let Some(inputs) = on.get("workflow_dispatch").and_then(|d| d.get("inputs")) {
                wf.dispatch_inputs = read_inputs(&mut r, inputs, "workflow_dispatch");
            }
        } else if on
            .as_seq()
            .is_some_and(|s| s.iter().any(|e| e.scalar() == Some("workflow_call")))
            || on.scalar() == Some("workflow_call")
        {
            wf.call = Some(CallDef::default());
        }
    }
    match root.get("jobs") {
        None => r.error(Reader::loc(&root), "a workflow needs `jobs:`"),
        Some(jobs) => {
            for (k, v) in r.map(jobs, "`jobs`") {
                let Some(id) = k.scalar().map(str::to_string) else {
                    continue;
                };
                let job = read_job(&mut r, id, Reader::loc(k), v);
                wf.jobs.push(job);
            }
        }
    }
    // Every `needs` names a job of the file.
    let ids: Vec<String> = wf.jobs.iter().map(|j| j.id.clone()).collect();
    for j in &wf.jobs {
        for (n, at) in &j.needs {
            if !ids.contains(n) {
                let msg = format!(
                    "job `{}` needs `{n}`, which is not a job of this workflow",
                    j.id
                );
                r.error(*at, msg);
            }
        }
    }
    if r.errors.is_empty() {
        Ok(wf)
    } else {
        Err(r.errors)
    }
}

fn read_call(r: &mut Reader, n: &Node) -> CallDef {
    let mut c = CallDef::default();
    if n.as_map().is_none() {
        return c;
    }
    r.check_keys(n, CALL_KEYS, "`on.workflow_call`");
    if let Some(v) = n.get("inputs") {
        c.inputs = read_inputs(r, v, "workflow_call");
    }
    if let Some(v) = n.get("outputs") {
        c.outputs = read_outputs(r, v, "`on.workflow_call.outputs`", Some("`workflow_call`"));
    }
    if let Some(v) = n.get("secrets") {
        for (k, sv) in r.map(v, "`on.workflow_call.secrets`") {
            let Some(name) = k.scalar().map(str::to_string) else {
                continue;
            };
            let mut required = false;
            if sv.as_map().is_some() {
                r.check_keys(sv, SECRET_KEYS, &format!("secret `{name}`"));
                required = sv.get("required").and_then(|b| b.as_bool()) == Some(true);
            }
            c.secrets.push((name, required));
        }
    }
    c
}

/// Reads `outputs:`, each a map with a `value` template; `value` may be
/// left out only when no `owner` is named that requires it.
fn read_outputs(r: &mut Reader, n: &Node, what: &str, owner: Option<&str>) -> Vec<(String, Tpl)> {
    let mut out = Vec::new();
    for (k, o) in r.map(n, what) {
        let Some(name) = k.scalar().map(str::to_string) else {
            continue;
        };
        r.check_keys(o, OUTPUT_KEYS, &format!("output `{name}`"));
        match (o.get("value"), owner) {
            (Some(val), _) => {
                if let Some(t) = r.tpl(val, &format!("output `{name}`")) {
                    out.push((name, t));
                }
            }
            (None, Some(owner)) => r.error(
                Reader::loc(o),
                format!("output `{name}` of {owner} needs a `value`"),
            ),
            (None, None) => {}
        }
    }
    out
}

fn read_inputs(r: &mut Reader, n: &Node, on: &str) -> Vec<InputDef> {
    let mut out = Vec::new();
    for (k, v) in r.map(n, &format!("`on.{on}.inputs`")) {
        let Some(name) = k.scalar().map(str::to_string) else {
            continue;
        };
        let mut d = InputDef {
            name: name.clone(),
            kind: "string".into(),
            at: Reader::loc(k),
            ..Default::default()
        };
        if v.as_map().is_some() {
            r.check_keys(v, INPUT_KEYS, &format!("input `{name}`"));
            if let Some(t) = v.get("type") {
                let kinds: &[&str] = if on == "workflow_call" {
                    &["string", "boolean", "number"]
                } else {
                    &["string", "boolean", "number", "choice", "environment"]
                };
                match t.scalar() {
                    Some(t) if kinds.contains(&t) => d.kind = t.to_string(),
                    _ => r.error(
                        Reader::loc(t),
                        format!(
                            "input `{name}` has the type `{}`; {on} inputs are {}",
                            t.scalar().unwrap_or("?"),
                            kinds.join(", ")
                        ),
                    ),
                }
            }
            d.required = v.get("required").and_then(|b| b.as_bool()) == Some(true);
            d.default = v.get("default").map(to_json);
        }
        out.push(d);
    }
    out
}

fn read_defaults(r: &mut Reader, n: &Node) -> RunDefaults {
    let mut d = RunDefaults::default();
    r.check_keys(n, DEFAULTS_KEYS, "`defaults`");
    if let Some(run) = n.get("run") {
        r.check_keys(run, DEFAULTS_RUN_KEYS, "`defaults.run`");
        if let Some(s) = run.get("shell") {
            d.shell = r.text(s, "`shell`");
        }
        if let Some(w) = run.get("working-directory") {
            d.working_directory = r.tpl(w, "`working-directory`");
        }
    }
    d
}

fn read_concurrency(r: &mut Reader, n: &Node) -> Option<Concurrency> {
    if n.as_map().is_none() {
        return r.tpl(n, "`concurrency`").map(|group| Concurrency {
            group,
            cancel_in_progress: None,
        });
    }
    r.check_keys(n, CONCURRENCY_KEYS, "`concurrency`");
    let group = match n.get("group") {
        Some(g) => r.tpl(g, "`concurrency.group`")?,
        None => {
            r.error(Reader::loc(n), "`concurrency` needs a `group`");
            return None;
        }
    };
    let cancel_in_progress = n
        .get("cancel-in-progress")
        .and_then(|c| r.dynamic(c, "`cancel-in-progress`"));
    Some(Concurrency {
        group,
        cancel_in_progress,
    })
}

fn read_job(r: &mut Reader, id: String, at: Loc, n: &Node) -> JobDef {
    let mut j = JobDef {
        id: id.clone(),
        at,
        ..Default::default()
    };
    if n.as_map().is_none() {
        r.error(
            Reader::loc(n),
            format!("job `{id}` must be a map, found {}", n.describe()),
        );
        return j;
    }
    r.check_keys(n, JOB_KEYS, &format!("job `{id}`"));
    if let Some(v) = n.get("name") {
        j.name = r.tpl(v, "`name`");
    }
    if let Some(v) = n.get("needs") {
        match &v.kind {
            Kind::Seq(items) => {
                for i in items {
                    if let Some(t) = r.text(i, "`needs`") {
                        j.needs.push((t, Reader::loc(i)));
                    }
                }
            }
            _ => {
                if let Some(t) = r.text(v, "`needs`") {
                    j.needs.push((t, Reader::loc(v)));
                }
            }
        }
    }
    if let Some(v) = n.get("runs-on") {
        match &v.kind {
            Kind::Seq(items) => {
                for i in items {
                    if let Some(t) = r.tpl(i, "`runs-on`") {
                        j.runs_on.push(t);
                    }
                }
            }
            Kind::Map(_) => {
                // `runs-on: { group: …, labels: … }`
                if let Some(l) = v.get("labels") {
                    for i in l.as_seq().unwrap_or(std::slice::from_ref(l)) {
                        if let Some(t) = r.tpl(i, "`runs-on.labels`") {
                            j.runs_on.push(t);
                        }
                    }
                }
            }
            _ => {
                if let Some(t) = r.tpl(v, "`runs-on`") {
                    j.runs_on.push(t);
                }
            }
        }
    }
    if let Some(v) = n.get("if") {
        j.condition = r.condition(v);
    }
    if let Some(v) = n.get("env") {
        j.env = r.env(v, "`env`");
    }
    if let Some(v) = n.get("defaults") {
        j.defaults = read_defaults(r, v);
    }
    if let Some(v) = n.get("timeout-minutes") {
        j.timeout_minutes = r.dynamic(v, "`timeout-minutes`");
    }
    if let Some(v) = n.get("continue-on-error") {
        j.continue_on_error = r.dynamic(v, "`continue-on-error`");
    }
    if let Some(v) = n.get("concurrency") {
        j.concurrency = read_concurrency(r, v);
    }
    if let Some(v) = n.get("outputs") {
        j.outputs = r.env(v, "`outputs`");
    }
    if let Some(v) = n.get("uses") {
        j.uses = r.tpl(v, "`uses`");
    }
    if let Some(v) = n.get("with") {
        j.with = r.env(v, "`with`");
    }
    if let Some(v) = n.get("secrets") {
        j.secrets = if v.scalar() == Some("inherit") {
            Some(CallSecrets::Inherit)
        } else if v.as_map().is_some() {
            Some(CallSecrets::Map(r.env(v, "`secrets`")))
        } else {
            r.error(
                Reader::loc(v),
                format!(
                    "`secrets` of job `{id}` is `inherit` or a map of names to values, found {}",
                    v.describe()
                ),
            );
            None
        };
    }
    for key in ["with", "secrets"] {
        if let (Some(v), None) = (n.get(key), &j.uses) {
            r.error(
                Reader::loc(v),
                format!(
                    "`{key}` of job `{id}` is for a reusable workflow call: the job has no `uses`"
                ),
            );
        }
    }
    if let Some(v) = n.get("strategy") {
        j.strategy = read_strategy(r, v);
    }
    if let Some(v) = n.get("container") {
        j.container = read_service(r, v, "`container`");
    }
    if let Some(v) = n.get("services") {
        for (k, s) in r.map(v, "`services`") {
            let Some(name) = k.scalar().map(str::to_string) else {
                continue;
            };
            if let Some(svc) = read_service(r, s, &format!("service `{name}`")) {
                j.services.push((name, svc));
            }
        }
    }
    match n.get("steps") {
        Some(v) => match v.as_seq() {
            Some(items) => {
                for s in items {
                    j.steps.push(read_step(r, s, STEP_KEYS));
                }
            }
            None => r.error(
                Reader::loc(v),
                format!("`steps` must be a list, found {}", v.describe()),
            ),
        },
        None if j.uses.is_none() => r.error(
            at,
            format!("job `{id}` needs `steps` (or `uses` for a reusable workflow)"),
        ),
        None => {}
    }
    check_step_ids(r, &j.steps, &format!("job `{id}`"));
    j
}

fn check_step_ids(r: &mut Reader, steps: &[StepDef], of: &str) {
    let mut ids: Vec<&str> = Vec::new();
    for s in steps {
        if let Some(sid) = &s.id {
            if ids.contains(&sid.as_str()) {
                r.error(s.at, format!("two steps of {of} have the id `{sid}`"));
            }
            ids.push(sid);
        }
    }
}

fn read_strategy(r: &mut Reader, n: &Node) -> Option<Strategy> {
    r.check_keys(n, STRATEGY_KEYS, "`strategy`");
    let mut s = Strategy {
        at: Reader::loc(n),
        ..Default::default()
    };
    if let Some(v) = n.get("fail-fast") {
        s.fail_fast = r.dynamic(v, "`fail-fast`");
    }
    if let Some(v) = n.get("max-parallel") {
        s.max_parallel = r.dynamic(v, "`max-parallel`");
    }
    if let Some(m) = n.get("matrix") {
        if m.as_map().is_none() {
            s.expr = r.tpl(m, "`matrix`");
            return Some(s);
        }
        for (k, v) in m.as_map().unwrap_or(&[]) {
            let key = k.scalar().unwrap_or("");
            match key {
                "include" | "exclude" => {
                    let list = match v.as_seq() {
                        Some(l) => l,
                        None => {
                            if v.as_str().is_some_and(|t| t.contains("${{")) {
                                if let Some(t) = r.tpl(v, &format!("`{key}`")) {
                                    s.exprs.push((key.to_string(), t));
                                }
                            } else {
                                r.error(
                                    Reader::loc(v),
                                    format!(
                                        "`matrix.{key}` must be a list of maps, found {}",
                                        v.describe()
                                    ),
                                );
                            }
                            continue;
                        }
                    };
                    for item in list {
                        match to_json(item) {
                            Value::Object(o) => {
                                check_exprs(r, item);
                                if key == "include" {
                                    s.include.push(o)
                                } else {
                                    s.exclude.push(o)
                                }
                            }
                            _ => r.error(
                                Reader::loc(item),
                                format!(
                                    "an entry of `{key}` must be a map, found {}",
                                    item.describe()
                                ),
                            ),
                        }
                    }
                }
                _ => match v.as_seq() {
                    Some(items) => {
                        items.iter().for_each(|i| check_exprs(r, i));
                        s.axes
                            .push((key.to_string(), items.iter().map(to_json).collect()));
                    }
                    None if v.as_str().is_some_and(|t| t.contains("${{")) => {
                        if let Some(t) = r.tpl(v, &format!("matrix axis `{key}`")) {
                            s.exprs.push((key.to_string(), t));
                        }
                    }
                    None => r.error(
                        Reader::loc(v),
                        format!("matrix axis `{key}` must be a list, found {}", v.describe()),
                    ),
                },
            }
        }
    }
    Some(s)
}

/// Checks the expressions inside any string of a tree.
fn check_exprs(r: &mut Reader, n: &Node) {
    match &n.kind {
        Kind::Scalar { text, .. } if text.contains("${{") => {
            let _ = r.tpl(n, "a value");
        }
        Kind::Seq(items) => items.iter().for_each(|i| check_exprs(r, i)),
        Kind::Map(entries) => entries.iter().for_each(|(_, v)| check_exprs(r, v)),
        _ => {}
    }
}

fn read_service(r: &mut Reader, n: &Node, what: &str) -> Option<ServiceDef> {
    if n.as_map().is_none() {
        return r.tpl(n, what).map(|image| ServiceDef {
            image,
            at: Reader::loc(n),
            ..Default::default()
        });
    }
    r.check_keys(n, SERVICE_KEYS, what);
    let image = match n.get("image") {
        Some(i) => r.tpl(i, "`image`")?,
        None => {
            r.error(Reader::loc(n), format!("{what} needs an `image`"));
            return None;
        }
    };
    let mut s = ServiceDef {
        image,
        at: Reader::loc(n),
        ..Default::default()
    };
    if let Some(e) = n.get("env") {
        s.env = r.env(e, "`env`");
    }
    if let Some(p) = n.get("ports") {
        for i in p.as_seq().unwrap_or(&[]) {
            if let Some(t) = r.text(i, "a port") {
                s.ports.push(t);
            }
        }
    }
    if let Some(o) = n.get("options") {
        s.options = r.text(o, "`options`");
    }
    Some(s)
}

fn read_step(r: &mut Reader, n: &Node, keys: &[&str]) -> StepDef {
    let mut s = StepDef {
        at: Reader::loc(n),
        ..Default::default()
    };
    if n.as_map().is_none() {
        r.error(
            Reader::loc(n),
            format!("a step must be a map, found {}", n.describe()),
        );
        return s;
    }
    r.check_keys(n, keys, "a step");
    if let Some(v) = n.get("id") {
        s.id = r.text(v, "`id`");
    }
    if let Some(v) = n.get("name") {
        s.name = r.tpl(v, "`name`");
    }
    if let Some(v) = n.get("if") {
        s.condition = r.condition(v);
    }
    if let Some(v) = n.get("run") {
        s.run = r.tpl(v, "`run`");
    }
    if let Some(v) = n.get("uses") {
        s.uses = r.tpl(v, "`uses`");
    }
    if let Some(v) = n.get("with") {
        s.with = r.env(v, "`with`");
    }
    if let Some(v) = n.get("env") {
        s.env = r.env(v, "`env`");
    }
    if let Some(v) = n.get("shell") {
        s.shell = r.text(v, "`shell`");
    }
    if let Some(v) = n.get("working-directory") {
        s.working_directory = r.tpl(v, "`working-directory`");
    }
    if let Some(v) = n.get("continue-on-error") {
        s.continue_on_error = r.dynamic(v, "`continue-on-error`");
    }
    if let Some(v) = n.get("timeout-minutes") {
        s.timeout_minutes = r.dynamic(v, "`timeout-minutes`");
    }
    match (&s.run, &s.uses) {
        (Some(_), Some(_)) => r.error(s.at, "a step has either `run` or `uses`, not both"),
        (None, None) if n.get("run").is_none() && n.get("uses").is_none() => {
            r.error(s.at, "a step needs `run` or `uses`")
        }
        _ => {}
    }
    s
}

/// Reads an action's `action.yml`; every problem is reported at once.
pub fn read_action(file: &Path, src: &str) -> Result<ActionDef, Vec<ImportError>> {
    let (mut r, root) = parse_root(file, src, "empty action: it needs `runs:`")?;
    if root.as_map().is_none() {
        r.error(
            Reader::loc(&root),
            format!("an action is a map, found {}", root.describe()),
        );
        return Err(r.errors);
    }
    let mut a = ActionDef {
        file: file.to_path_buf(),
        ..Default::default()
    };
    r.check_keys(&root, ACTION_KEYS, "an action");
    if let Some(n) = root.get("name") {
        a.name = r.text(n, "`name`");
    }
    if let Some(n) = root.get("inputs") {
        for (k, v) in r.map(n, "`inputs`") {
            let Some(name) = k.scalar().map(str::to_string) else {
                continue;
            };
            let mut d = ActionInput {
                name: name.clone(),
                at: Reader::loc(k),
                ..Default::default()
            };
            if v.as_map().is_some() {
                r.check_keys(v, ACTION_INPUT_KEYS, &format!("input `{name}`"));
                d.required = v.get("required").and_then(|b| b.as_bool()) == Some(true);
                d.default = match v.get("default") {
                    Some(dv) if dv.is_null() => None,
                    Some(dv) => r.tpl(dv, &format!("the default of `{name}`")),
                    None => None,
                };
            }
            a.inputs.push(d);
        }
    }
    let runs = root.get("runs");
    let using = runs.and_then(|n| n.get("using"));
    let composite = using.and_then(|u| u.scalar()) == Some("composite");
    if let Some(n) = root.get("outputs") {
        let owner = composite.then_some("a composite action");
        a.outputs = read_outputs(&mut r, n, "`outputs`", owner);
    }
    match runs {
        None => r.error(Reader::loc(&root), "an action needs `runs:`"),
        Some(runs) if runs.as_map().is_none() => r.error(
            Reader::loc(runs),
            format!("`runs` must be a map, found {}", runs.describe()),
        ),
        Some(runs) => {
            r.check_keys(runs, RUNS_KEYS, "`runs`");
            let text = |r: &mut Reader, key: &str| {
                runs.get(key)
                    .and_then(|n| r.text(n, &format!("`runs.{key}`")))
                    .unwrap_or_default()
            };
            match using.and_then(|u| u.scalar()) {
                None => r.error(Reader::loc(runs), "`runs` needs `using`"),
                Some("composite") => match runs.get("steps").map(|s| (s, s.as_seq())) {
                    Some((_, Some(items))) => {
                        let mut steps = Vec::new();
                        for s in items {
                            let step = read_step(&mut r, s, COMPOSITE_STEP_KEYS);
                            if step.run.is_some() && step.shell.is_none() {
                                r.error(
                                    step.at,
                                    "a `run` step of a composite action needs `shell` (bash, sh, python, pwsh)",
                                );
                            }
                            steps.push(step);
                        }
                        check_step_ids(&mut r, &steps, "the action");
                        a.runs = Runs::Composite(steps);
                    }
                    Some((s, None)) => r.error(
                        Reader::loc(s),
                        format!("`runs.steps` must be a list, found {}", s.describe()),
                    ),
                    None => r.error(Reader::loc(runs), "a composite action needs `runs.steps`"),
                },
                Some(u) if u.starts_with("node") => {
                    a.runs = Runs::Node {
                        using: u.to_string(),
                        main: text(&mut r, "main"),
                    }
                }
                Some("docker") => {
                    a.runs = Runs::Docker {
                        image: text(&mut r, "image"),
                    }
                }
                Some(other) => r.error(
                    Reader::loc(using.unwrap_or(runs)),
                    format!(
                        "`runs.using: {other}` is not one of composite, node20, node24, docker"
                    ),
                ),
            }
        }
    }
    if r.errors.is_empty() {
        Ok(a)
    } else {
        Err(r.errors)
    }
}
