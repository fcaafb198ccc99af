//! The `pipelines:` section of tug.yaml → [`crate::pipeline`], every problem
//! at `file:line:col`. Step scripts are shell: they are not interpolated at
//! load time (the shell expands `$VAR` when the step runs).

use crate::model::FileRef;
use crate::parse::{suggest, Cx};
use crate::pipeline::*;
use crate::yaml::Node;
use std::collections::BTreeMap;

const PIPELINE_KEYS: &[&str] = &[
    "jobs",
    "env",
    "parallelism",
    "workspace",
    "on",
    "concurrency",
];
const CONCURRENCY_KEYS: &[&str] = &["group", "cancel_in_progress"];
const ON_KEYS: &[&str] = &["schedule", "webhook"];
const WEBHOOK_KEYS: &[&str] = &["secret", "branches"];
const JOB_KEYS: &[&str] = &[
    "needs",
    "steps",
    "env",
    "secrets",
    "image",
    "working_dir",
    "timeout",
    "retry",
    "if",
    "continue_on_error",
    "matrix",
    "services",
    "cache",
    "artifacts",
    "paths",
    "shell",
    "concurrency",
];
const STEP_KEYS: &[&str] = &[
    "name",
    "run",
    "env",
    "working_dir",
    "timeout",
    "continue_on_error",
    "if",
];
const SERVICE_KEYS: &[&str] = &["image", "env", "command", "port", "health"];
const CACHE_KEYS: &[&str] = &["key", "files", "paths"];
const MATRIX_KEYS: &[&str] = &["include", "exclude", "fail_fast", "max_parallel"];
const WHEN: &[(&str, When)] = &[
    ("on_success", When::OnSuccess),
    ("on_failure", When::OnFailure),
    ("always", When::Always),
];

/// Job names: what CI systems accept as job ids.
fn is_job_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 100
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        && !s.starts_with(['-', '.'])
}

/// A path inside the workspace: relative, without `..`.
fn is_inner_path(s: &str) -> bool {
    let p = std::path::Path::new(s);
    !s.is_empty()
        && p.is_relative()
        && !p
            .components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
}

impl Cx<'_> {
    pub(crate) fn pipelines(
        &mut self,
        n: &Node,
        secrets: &BTreeMap<String, FileRef>,
    ) -> BTreeMap<String, Pipeline> {
        let mut out = BTreeMap::new();
        let Some(map) = n.as_map() else {
            if !n.is_null() {
                self.expected(n, "pipelines", "a map of pipeline names to pipelines");
            }
            return out;
        };
        for (k, v) in map {
            let Some(name) = k.scalar() else {
                self.err(k, "pipeline names must be strings", None);
                continue;
            };
            if !is_job_name(name) {
                self.err(
                    k,
                    format!(
                        "invalid pipeline name `{name}`: use letters, digits, '_', '-' and '.'"
                    ),
                    None,
                );
            }
            if let Some(p) = self.pipeline(name, v, secrets) {
                out.insert(name.to_string(), p);
            }
        }
        out
    }

    fn pipeline(
        &mut self,
        name: &str,
        n: &Node,
        secrets: &BTreeMap<String, FileRef>,
    ) -> Option<Pipeline> {
        let what = format!("pipelines.{name}");
        let f = self.fields(n, &format!("`{what}`"), PIPELINE_KEYS)?;
        let env = self.env_map(f.get("env"), &format!("{what}.env"));
        let parallelism = f.get("parallelism").and_then(|v| {
            let c = self.count(v, &format!("{what}.parallelism"))?;
            if c == 0 {
                self.err(
                    v,
                    format!("`{what}.parallelism` must be at least 1"),
                    Some("leave it out to run as many jobs at once as there are cores".into()),
                );
                return None;
            }
            Some(c)
        });
        let workspace = match f.get("workspace") {
            None => WorkspaceMode::Copy,
            Some(v) => self
                .one_of(
                    v,
                    &format!("{what}.workspace"),
                    &[
                        ("copy", WorkspaceMode::Copy),
                        ("shared", WorkspaceMode::Shared),
                    ],
                )
                .unwrap_or(WorkspaceMode::Copy),
        };
        let mut jobs = BTreeMap::new();
        let mut need_nodes: BTreeMap<(String, String), &Node> = BTreeMap::new();
        let mut job_nodes: BTreeMap<String, &Node> = BTreeMap::new();
        match f.get("jobs").map(|j| (j, j.as_map())) {
            None => {
                let at = f.key("jobs").unwrap_or(n);
                self.err(
                    at,
                    format!("pipeline `{name}` has no jobs"),
                    Some(
                        "add `jobs:` with at least one job, e.g. `test: { steps: [cargo test] }`"
                            .into(),
                    ),
                );
            }
            Some((j, None)) => {
                self.expected(j, &format!("{what}.jobs"), "a map of job names to jobs");
            }
            Some((j, Some(map))) => {
                if map.is_empty() {
                    self.err(j, format!("pipeline `{name}` has no jobs"), None);
                }
                for (k, v) in map {
                    let Some(jname) = k.scalar() else {
                        self.err(k, "job names must be strings", None);
                        continue;
                    };
                    if !is_job_name(jname) {
                        self.err(
                            k,
                            format!(
                                "invalid job name `{jname}`: use letters, digits, '_', '-' and '.'"
                            ),
                            None,
                        );
                    }
                    job_nodes.insert(jname.to_string(), k);
                    if let Some((job, needs)) = self.job(&what, jname, v, secrets) {
                        for (d, dn) in needs {
                            need_nodes.insert((jname.to_string(), d), dn);
                        }
                        jobs.insert(jname.to_string(), job);
                    }
                }
            }
        }
        let known: Vec<&str> = job_nodes.keys().map(String::as_str).collect();
        for ((from, to), dn) in &need_nodes {
            if from == to {
                self.err(
                    dn,
                    format!("job `{from}` needs itself"),
                    Some("remove it from `needs`".into()),
                );
            } else if !job_nodes.contains_key(to) {
                self.err(
                    dn,
                    format!("job `{from}` needs unknown job `{to}`"),
                    suggest(to, &known)
                        .map(|s| format!("did you mean `{s}`?"))
                        .or_else(|| Some(format!("jobs: {}", known.join(", ")))),
                );
            }
        }
        self.needs_cycles(&jobs, &need_nodes);
        let on = f
            .get("on")
            .map(|v| self.triggers(&what, v, secrets))
            .unwrap_or_default();
        let concurrency = f
            .get("concurrency")
            .and_then(|v| self.concurrency(v, &format!("{what}.concurrency")));
        Some(Pipeline {
            jobs,
            env,
            parallelism,
            workspace,
            on,
            concurrency,
        })
    }

    /// `concurrency: GROUP` or `{ group, cancel_in_progress }`.
    fn concurrency(&mut self, n: &Node, what: &str) -> Option<Concurrency> {
        if n.scalar().is_some() {
            let group = self.text(n, what)?;
            return self.group_named(n, what, group, false);
        }
        let f = self.fields(n, &format!("`{what}`"), CONCURRENCY_KEYS)?;
        let cancel_in_progress = f
            .get("cancel_in_progress")
            .and_then(|v| self.boolean(v, &format!("{what}.cancel_in_progress")))
            .unwrap_or(false);
        match f.get("group") {
            Some(g) => {
                let group = self.text(g, &format!("{what}.group"))?;
                self.group_named(g, what, group, cancel_in_progress)
            }
            None => {
                self.err(
                    n,
                    format!("`{what}` needs `group`"),
                    Some("e.g. `concurrency: { group: deploy, cancel_in_progress: true }`".into()),
                );
                None
            }
        }
    }

    fn group_named(
        &mut self,
        n: &Node,
        what: &str,
        group: String,
        cancel_in_progress: bool,
    ) -> Option<Concurrency> {
        if group.trim().is_empty() {
            self.err(n, format!("`{what}` names an empty group"), None);
            return None;
        }
        Some(Concurrency {
            group,
            cancel_in_progress,
        })
    }

    fn triggers(&mut self, what: &str, n: &Node, secrets: &BTreeMap<String, FileRef>) -> Triggers {
        let what = format!("{what}.on");
        let mut t = Triggers::default();
        let Some(f) = self.fields(n, &format!("`{what}`"), ON_KEYS) else {
            return t;
        };
        if let Some(v) = f.get("schedule") {
            let items: Vec<&Node> = match v.as_seq() {
                Some(s) => s.iter().collect(),
                None => vec![v],
            };
            for item in items {
                let Some(pattern) = self.string(item, &format!("{what}.schedule")) else {
                    continue;
                };
                match pattern.parse::<croner::Cron>() {
                    Ok(_) => t.schedule.push(pattern),
                    Err(e) => self.err(
                        item,
                        format!("`{what}.schedule`: `{pattern}` is not a cron pattern: {e}"),
                        Some("5 fields (minute hour day month weekday), or 6 with seconds first, e.g. \"0 * * * *\" for every hour".into()),
                    ),
                }
            }
        }
        if let Some(v) = f.get("webhook") {
            if let Some(w) = self.fields(v, &format!("`{what}.webhook`"), WEBHOOK_KEYS) {
                let secret = match w.get("secret") {
                    Some(s) => self.string(s, &format!("{what}.webhook.secret")).inspect(|name| {
                        if !secrets.contains_key(name) {
                            let known: Vec<&str> = secrets.keys().map(String::as_str).collect();
                            self.err(
                                s,
                                format!("`{what}.webhook.secret`: no stack secret `{name}`"),
                                suggest(name, &known)
                                    .map(|k| format!("did you mean `{k}`?"))
                                    .or_else(|| Some(format!("add it under `secrets:`, e.g. `{name}: {{ file: ./{name}.txt }}`"))),
                            );
                        }
                    }),
                    None => {
                        self.err(
                            v,
                            format!("`{what}.webhook` needs `secret`: the stack secret that signs the payloads"),
                            Some("e.g. `webhook: { secret: hook_secret }`; an unsigned webhook is refused".into()),
                        );
                        None
                    }
                };
                let branches = w
                    .get("branches")
                    .map(|b| self.string_list(b, &format!("{what}.webhook.branches")))
                    .unwrap_or_default();
                if let Some(secret) = secret {
                    t.webhook = Some(Webhook { secret, branches });
                }
            }
        }
        t
    }

    /// Every `needs` cycle, named in order, at the first edge of the cycle.
    fn needs_cycles(
        &mut self,
        jobs: &BTreeMap<String, Job>,
        need_nodes: &BTreeMap<(String, String), &Node>,
    ) {
        // A job that needs itself is reported where `needs` is read.
        for names in crate::graph::cycles(jobs, |j| j.needs.iter()) {
            if names.len() <= 2 {
                continue;
            }
            let first = (names[0].to_string(), names[1].to_string());
            if let Some(dn) = need_nodes.get(&first) {
                self.err(
                    dn,
                    format!("`needs` cycle: {}", names.join(" -> ")),
                    Some("remove one of these `needs` entries".into()),
                );
            }
        }
    }

    fn env_map(&mut self, n: Option<&Node>, what: &str) -> BTreeMap<String, String> {
        let Some(n) = n else {
            return BTreeMap::new();
        };
        self.pairs(n, what)
            .into_iter()
            .map(|(_, k, v)| (k, v))
            .collect()
    }

    fn when(&mut self, n: &Node, what: &str) -> When {
        self.one_of(n, what, WHEN).unwrap_or_default()
    }

    fn inner_path(&mut self, n: &Node, what: &str) -> Option<String> {
        let s = self.text(n, what)?;
        self.inside(n, s, what)
    }

    /// `s`, read at `n`, if it is a path inside the workspace.
    fn inside(&mut self, n: &Node, s: String, what: &str) -> Option<String> {
        if !is_inner_path(&s) {
            self.err(
                n,
                format!("`{what}` must be a path inside the workspace, found `{s}`"),
                Some("write it relative to the project directory, without `..`".into()),
            );
            return None;
        }
        Some(s)
    }

    fn inner_paths(&mut self, n: &Node, what: &str) -> Vec<String> {
        self.string_list_at(n, what, "a list of paths")
            .into_iter()
            .filter_map(|(i, s)| self.inside(i, s, what))
            .collect()
    }

    #[allow(clippy::type_complexity)]
    fn job<'n>(
        &mut self,
        pwhat: &str,
        name: &str,
        n: &'n Node,
        secrets: &BTreeMap<String, FileRef>,
    ) -> Option<(Job, Vec<(String, &'n Node)>)> {
        let what = format!("{pwhat}.jobs.{name}");
        let f = self.fields(n, &format!("job `{name}`"), JOB_KEYS)?;
        let mut needs = Vec::new();
        if let Some(v) = f.get("needs") {
            if let Some(s) = v.as_str() {
                needs.push((s.to_string(), v));
            } else if let Some(items) = v.as_seq() {
                for i in items {
                    if let Some(s) = self.text(i, &format!("{what}.needs")) {
                        needs.push((s, i));
                    }
                }
            } else if !v.is_null() {
                self.expected(v, &format!("{what}.needs"), "a list of job names");
            }
        }
        let mut steps = Vec::new();
        match f.get("steps") {
            None => self.err(
                f.key("steps").unwrap_or(n),
                format!("job `{name}` has no steps"),
                Some("add `steps:` with at least one command".into()),
            ),
            Some(v) => match v.as_seq() {
                Some([]) => self.err(v, format!("job `{name}` has no steps"), None),
                Some(items) => {
                    for (i, s) in items.iter().enumerate() {
                        if let Some(step) = self.step(&format!("{what}.steps[{i}]"), s) {
                            steps.push(step);
                        }
                    }
                }
                None => {
                    if let Some(run) = v.as_str() {
                        steps.push(Step {
                            run: run.to_string(),
                            ..Step::default()
                        });
                    } else {
                        self.expected(v, &format!("{what}.steps"), "a list of steps");
                    }
                }
            },
        }
        let env = self.env_map(f.get("env"), &format!("{what}.env"));
        let job_secrets = f
            .get("secrets")
            .map(|v| self.secret_refs(&what, v, secrets))
            .unwrap_or_default();
        let image = f
            .get("image")
            .and_then(|v| self.string(v, &format!("{what}.image")))
            .filter(|s| {
                if s.is_empty() {
                    self.err(n, format!("`{what}.image` is empty"), None);
                }
                !s.is_empty()
            });
        let working_dir = f
            .get("working_dir")
            .and_then(|v| self.inner_path(v, &format!("{what}.working_dir")));
        let timeout = f
            .get("timeout")
            .and_then(|v| self.duration(v, &format!("{what}.timeout")));
        let retry = f
            .get("retry")
            .and_then(|v| self.count(v, &format!("{what}.retry")))
            .unwrap_or(0);
        let when = f
            .get("if")
            .map(|v| self.when(v, &format!("{what}.if")))
            .unwrap_or_default();
        let continue_on_error = f
            .get("continue_on_error")
            .and_then(|v| self.boolean(v, &format!("{what}.continue_on_error")))
            .unwrap_or(false);
        let matrix = f
            .get("matrix")
            .and_then(|v| self.matrix(&format!("{what}.matrix"), v));
        let concurrency = f
            .get("concurrency")
            .and_then(|v| self.concurrency(v, &format!("{what}.concurrency")));
        let mut services = BTreeMap::new();
        if let Some(v) = f.get("services") {
            if let Some(map) = v.as_map() {
                for (k, sv) in map {
                    let Some(sname) = k.scalar() else {
                        self.err(k, "service names must be strings", None);
                        continue;
                    };
                    if !crate::parse::is_dns_label(sname) {
                        self.err(
                            k,
                            format!("invalid service name `{sname}`: use lowercase letters, digits and '-' (at most 63)"),
                            Some(format!("rename it `{}`", crate::parse::sanitize_name(sname))),
                        );
                    }
                    if let Some(s) = self.job_service(&format!("{what}.services.{sname}"), sv) {
                        services.insert(sname.to_string(), s);
                    }
                }
            } else if !v.is_null() {
                self.expected(v, &format!("{what}.services"), "a map of service names");
            }
        }
        let mut cache = Vec::new();
        if let Some(v) = f.get("cache") {
            let items: Vec<&Node> = match v.as_seq() {
                Some(items) => items.iter().collect(),
                None => vec![v],
            };
            for (i, c) in items.into_iter().enumerate() {
                if let Some(c) = self.cache(&format!("{what}.cache[{i}]"), c) {
                    cache.push(c);
                }
            }
        }
        let artifacts = f
            .get("artifacts")
            .map(|v| self.inner_paths(v, &format!("{what}.artifacts")))
            .unwrap_or_default();
        let paths = f
            .get("paths")
            .map(|v| self.string_list(v, &format!("{what}.paths")))
            .unwrap_or_default();
        let shell = f.get("shell").and_then(|v| {
            let argv = self.argv(v, &format!("{what}.shell"))?;
            if argv.is_empty() {
                self.err(
                    v,
                    format!("`{what}.shell` is empty"),
                    Some("leave it out for `sh -e -c`".into()),
                );
                return None;
            }
            Some(argv)
        });
        let job = Job {
            needs: needs.iter().map(|(s, _)| s.clone()).collect(),
            steps,
            env,
            secrets: job_secrets,
            image,
            working_dir,
            timeout,
            retry,
            when,
            continue_on_error,
            matrix,
            services,
            cache,
            artifacts,
            paths,
            shell,
            concurrency,
        };
        Some((job, needs))
    }

    fn step(&mut self, what: &str, n: &Node) -> Option<Step> {
        if let Some(run) = n.scalar() {
            return Some(Step {
                run: run.to_string(),
                ..Step::default()
            });
        }
        let f = self.fields(n, &format!("`{what}`"), STEP_KEYS)?;
        let Some(run) = f.get("run") else {
            self.err(
                n,
                format!("`{what}` has no `run`"),
                Some("add `run: <command>`, or write the step as a plain string".into()),
            );
            return None;
        };
        let run = self.text(run, &format!("{what}.run"))?;
        Some(Step {
            name: f
                .get("name")
                .and_then(|v| self.text(v, &format!("{what}.name"))),
            run,
            env: self.env_map(f.get("env"), &format!("{what}.env")),
            working_dir: f
                .get("working_dir")
                .and_then(|v| self.inner_path(v, &format!("{what}.working_dir"))),
            timeout: f
                .get("timeout")
                .and_then(|v| self.duration(v, &format!("{what}.timeout"))),
            continue_on_error: f
                .get("continue_on_error")
                .and_then(|v| self.boolean(v, &format!("{what}.continue_on_error")))
                .unwrap_or(false),
            when: f
                .get("if")
                .map(|v| self.when(v, &format!("{what}.if")))
                .unwrap_or_default(),
        })
    }

    /// `[name, ...]` (stack secrets, as upper-cased variables) or
    /// `{ VAR: name | { secret: name } | { env: HOST_VAR } }`.
    fn secret_refs(
        &mut self,
        what: &str,
        n: &Node,
        secrets: &BTreeMap<String, FileRef>,
    ) -> Vec<SecretRef> {
        let what = format!("{what}.secrets");
        let mut out = Vec::new();
        let stack_secret = |cx: &mut Self, at: &Node, s: &str| -> bool {
            if secrets.contains_key(s) {
                return true;
            }
            let known: Vec<&str> = secrets.keys().map(String::as_str).collect();
            cx.err(
                at,
                format!("unknown secret `{s}`"),
                suggest(s, &known)
                    .map(|k| format!("did you mean `{k}`?"))
                    .or_else(|| {
                        Some(format!(
                            "declare it at the top: `secrets: {{ {s}: {{ file: ./{s}.txt }} }}`, or read it from the environment with `{}: {{ env: {} }}`",
                            env_name(s),
                            env_name(s)
                        ))
                    }),
            );
            false
        };
        if let Some(items) = n.as_seq() {
            for i in items {
                let Some(s) = self.text(i, &what) else {
                    continue;
                };
                if stack_secret(self, i, &s) {
                    out.push(SecretRef {
                        env: env_name(&s),
                        from: SecretSource::Secret(s),
                    });
                }
            }
        } else if let Some(map) = n.as_map() {
            for (k, v) in map {
                let Some(var) = k.scalar() else {
                    self.err(k, format!("keys in `{what}` must be names"), None);
                    continue;
                };
                let w = format!("{what}.{var}");
                let from = if let Some(s) = v.as_str() {
                    stack_secret(self, v, s).then(|| SecretSource::Secret(s.to_string()))
                } else if let Some(f) = self.fields(v, &format!("`{w}`"), &["secret", "env"]) {
                    match (f.get("secret"), f.get("env")) {
                        (Some(s), None) => self
                            .text(s, &format!("{w}.secret"))
                            .filter(|t| stack_secret(self, s, t))
                            .map(SecretSource::Secret),
                        (None, Some(e)) => self.text(e, &format!("{w}.env")).map(SecretSource::Env),
                        _ => {
                            self.err(
                                v,
                                format!("`{w}` needs exactly one of `secret` or `env`"),
                                None,
                            );
                            None
                        }
                    }
                } else {
                    None
                };
                if let Some(from) = from {
                    out.push(SecretRef {
                        env: var.to_string(),
                        from,
                    });
                }
            }
        } else {
            self.expected(n, &what, "a list of secret names or a map of variables");
        }
        out
    }

    fn matrix(&mut self, what: &str, n: &Node) -> Option<Matrix> {
        let Some(map) = n.as_map() else {
            self.expected(n, what, "a map of axis names to lists of values");
            return None;
        };
        let mut m = Matrix::default();
        let mut bad_axis = false;
        for (k, v) in map {
            let Some(key) = k.scalar() else {
                self.err(k, format!("keys in `{what}` must be names"), None);
                continue;
            };
            match key {
                "include" | "exclude" => {
                    let Some(items) = v.as_seq() else {
                        self.expected(v, &format!("{what}.{key}"), "a list of maps");
                        continue;
                    };
                    for i in items {
                        let combo: BTreeMap<String, String> = if i.as_map().is_some() {
                            self.pairs(i, &format!("{what}.{key}"))
                                .into_iter()
                                .map(|(_, k, v)| (k, v))
                                .collect()
                        } else {
                            self.expected(i, &format!("{what}.{key}"), "a map of axis values");
                            continue;
                        };
                        if key == "include" {
                            m.include.push(combo);
                        } else {
                            m.exclude.push(combo);
                        }
                    }
                }
                "fail_fast" => {
                    m.fail_fast = self
                        .boolean(v, &format!("{what}.fail_fast"))
                        .unwrap_or(false)
                }
                "max_parallel" => {
                    m.max_parallel = self.count(v, &format!("{what}.max_parallel")).filter(|c| {
                        if *c == 0 {
                            self.err(v, format!("`{what}.max_parallel` must be at least 1"), None);
                        }
                        *c > 0
                    })
                }
                axis => {
                    let Some(items) = v.as_seq() else {
                        bad_axis = true;
                        let hint =
                            suggest(axis, MATRIX_KEYS).map(|s| format!("did you mean `{s}`?"));
                        self.err(
                            v,
                            format!(
                                "matrix axis `{axis}` must be a list of values, found {}",
                                v.describe()
                            ),
                            hint.or_else(|| Some(format!("write `{axis}: [a, b]`"))),
                        );
                        continue;
                    };
                    if items.is_empty() {
                        bad_axis = true;
                        self.err(v, format!("matrix axis `{axis}` has no values"), None);
                        continue;
                    }
                    let values: Vec<String> = items
                        .iter()
                        .filter_map(|i| self.text(i, &format!("{what}.{axis}")))
                        .collect();
                    m.axes.insert(axis.to_string(), values);
                }
            }
        }
        if m.axes.is_empty() && m.include.is_empty() {
            if bad_axis {
                return None;
            }
            self.err(
                n,
                format!("`{what}` has no axes"),
                Some("add an axis, e.g. `rust: [stable, beta]`".into()),
            );
            return None;
        }
        Some(m)
    }

    fn job_service(&mut self, what: &str, n: &Node) -> Option<JobService> {
        let f = self.fields(n, &format!("`{what}`"), SERVICE_KEYS)?;
        let Some(image) = f.get("image") else {
            self.err(
                n,
                format!("`{what}` has no `image`"),
                Some("add `image: <reference>`".into()),
            );
            return None;
        };
        let image = self.string(image, &format!("{what}.image"))?;
        Some(JobService {
            image,
            env: self.env_map(f.get("env"), &format!("{what}.env")),
            command: f
                .get("command")
                .and_then(|v| self.argv(v, &format!("{what}.command"))),
            port: f
                .get("port")
                .and_then(|v| self.port(v, &format!("{what}.port"))),
            health: f.get("health").and_then(|v| self.health(what, v)),
        })
    }

    fn cache(&mut self, what: &str, n: &Node) -> Option<Cache> {
        let f = self.fields(n, &format!("`{what}`"), CACHE_KEYS)?;
        let key = match f.get("key") {
            Some(v) => self.text(v, &format!("{what}.key"))?,
            None => {
                self.err(
                    n,
                    format!("`{what}` has no `key`"),
                    Some("add `key: <name>`, e.g. `key: cargo`".into()),
                );
                return None;
            }
        };
        if key.is_empty()
            || !key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        {
            self.err(
                f.get("key").unwrap_or(n),
                format!("`{what}.key` must be letters, digits, '_', '-' or '.', found `{key}`"),
                None,
            );
            return None;
        }
        let files = f
            .get("files")
            .map(|v| self.string_list(v, &format!("{what}.files")))
            .unwrap_or_default();
        let paths = match f.get("paths") {
            Some(v) => self.inner_paths(v, &format!("{what}.paths")),
            None => {
                self.err(
                    n,
                    format!("`{what}` has no `paths`"),
                    Some("add `paths: [target]`".into()),
                );
                return None;
            }
        };
        Some(Cache { key, files, paths })
    }
}

/// `db-password` -> `DB_PASSWORD`.
pub(crate) fn env_name(s: &str) -> String {
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
