//! Running `.gitlab-ci.yml` locally: stages, jobs, `extends`,
//! `include: local`, `!reference`, `rules`/`when`/`allow_failure`,
//! `variables`, `image`, `services`, `artifacts`, `cache`, `needs` and
//! `parallel` (and `parallel:matrix`) become the pipeline model.
//!
//! ```text
//!  .gitlab-ci.yml (+ include: local) ──► entries ──► extends / !reference resolved
//!        ──► per job: rules decided with the CI variables ──► Job (needs from stages)
//! ```
//!
//! A job without `needs` waits for every job of the stages before its own,
//! as on GitLab. The script of a job (`before_script` then `script`) is one
//! step in one shell; `after_script` is a second step that always runs and
//! never fails the job. Jobs run in their `image` on the engine, or on the
//! host with [`Options::on_host`].

pub mod rules;

use crate::github::{ImportError, ImportErrors, JobOutcome, Loc};
use crate::model::{Cache, Job, JobService, Pipeline, Step, When};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tug_spec::yaml::{self, Kind, Node};

pub struct Options {
    /// The project directory: `include: local` and `CI_PROJECT_DIR`.
    pub workspace: PathBuf,
    /// Run every job on the host, whatever its `image`.
    pub on_host: bool,
    /// Image -> image to use instead, or `host`.
    pub images: BTreeMap<String, String>,
    /// Variables given on the command line (`CI_PIPELINE_SOURCE=schedule`).
    pub variables: BTreeMap<String, String>,
    /// Whether a tool is on the host's PATH (for the shell of host jobs).
    pub on_path: Box<dyn Fn(&str) -> bool>,
}

pub struct Import {
    pub pipeline: Pipeline,
    pub jobs: Vec<JobOutcome>,
    /// What was not read or not honoured (remote includes, manual jobs, …).
    pub notes: Vec<String>,
}

const RESERVED: &[&str] = &[
    "default",
    "include",
    "stages",
    "variables",
    "workflow",
    "image",
    "services",
    "before_script",
    "after_script",
    "cache",
    "types",
    "spec",
];
const JOB_KEYS: &[&str] = &[
    "after_script",
    "allow_failure",
    "artifacts",
    "before_script",
    "cache",
    "coverage",
    "dast_configuration",
    "dependencies",
    "environment",
    "extends",
    "hooks",
    "identity",
    "id_tokens",
    "image",
    "inherit",
    "interruptible",
    "manual_confirmation",
    "needs",
    "pages",
    "parallel",
    "release",
    "resource_group",
    "retry",
    "rules",
    "run",
    "script",
    "secrets",
    "services",
    "stage",
    "tags",
    "timeout",
    "trigger",
    "variables",
    "when",
    "start_in",
    "only",
    "except",
];
const DEFAULT_KEYS: &[&str] = &[
    "after_script",
    "artifacts",
    "before_script",
    "cache",
    "hooks",
    "id_tokens",
    "image",
    "interruptible",
    "retry",
    "services",
    "tags",
    "timeout",
];
const RULE_KEYS: &[&str] = &[
    "if",
    "changes",
    "exists",
    "when",
    "allow_failure",
    "variables",
    "needs",
    "start_in",
    "interruptible",
];
const REFERENCE: &str = "\u{1}!reference";

/// A top-level entry and the file it came from.
#[derive(Clone)]
struct Entry {
    file: PathBuf,
    key: Node,
    value: Node,
}

struct Reader<'a> {
    opts: &'a Options,
    errors: Vec<ImportError>,
    notes: Vec<String>,
    /// Entries in file order; the main file's win over included ones.
    entries: Vec<(String, Entry)>,
    unread_includes: bool,
}

fn loc(n: &Node) -> Loc {
    Loc {
        line: n.line,
        col: n.col,
    }
}

impl Reader<'_> {
    fn error(&mut self, file: &Path, at: Loc, message: impl Into<String>) {
        self.errors.push(ImportError {
            file: file.to_path_buf(),
            line: at.line,
            col: at.col,
            message: message.into(),
        });
    }

    fn check_keys(&mut self, file: &Path, n: &Node, allowed: &[&str], what: &str) {
        for (k, _) in n.as_map().unwrap_or(&[]) {
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
                    file,
                    loc(k),
                    format!("unknown key `{name}` in {what}{hint}"),
                );
            }
        }
    }

    /// GitLab keeps the last of two top-level entries with one name: the
    /// earlier one is blanked out (lines kept, so positions stay right).
    /// One parse: each duplicate replaces the occurrence before it.
    fn last_key_wins(&mut self, file: &Path, src: String) -> String {
        let Ok((Some(root), errs)) = yaml::parse(&src) else {
            return src;
        };
        // The parsed map holds each key's first occurrence; later ones are errors.
        let mut last: BTreeMap<String, usize> = BTreeMap::new();
        for (k, _) in root.as_map().unwrap_or(&[]) {
            if k.col == 1 {
                if let Some(name) = k.scalar() {
                    last.entry(name.to_string()).or_insert(k.line);
                }
            }
        }
        let mut lines: Vec<&str> = src.split('\n').collect();
        let dups = errs
            .iter()
            .filter(|e| e.col == 1 && e.message.starts_with("duplicate key"));
        for dup in dups.take(100) {
            let name = dup
                .message
                .strip_prefix("duplicate key `")
                .and_then(|m| m.strip_suffix('`'))
                .unwrap_or("");
            let Some(first) = last.get(name).copied().filter(|&l| l < dup.line) else {
                break;
            };
            self.notes.push(format!(
                "{}:{}:{}: {} (first at line {first}): the later one is used, as on GitLab",
                file.display(),
                dup.line,
                dup.col,
                dup.message,
            ));
            let start = first - 1;
            let end = (start + 1..lines.len())
                .find(|&i| {
                    let l = lines[i];
                    !l.is_empty() && !l.starts_with([' ', '\t', '#'])
                })
                .unwrap_or(lines.len());
            for l in &mut lines[start..end] {
                *l = "";
            }
            last.insert(name.to_string(), dup.line);
        }
        lines.join("\n")
    }

    /// Reads a file and the files it includes locally.
    fn read_file(&mut self, file: &Path, src: &str, depth: usize) {
        // `!reference [a, b]` keeps its meaning through the tag-less tree.
        let src = src.replace("!reference [", &format!("[\"{REFERENCE}\", "));
        let src = self.last_key_wins(file, src);
        let root = match yaml::parse(&src) {
            Ok((Some(r), errs)) => {
                for e in errs {
                    // GitLab keeps the last of two equal keys; tug reads the first.
                    let message = if e.message.starts_with("duplicate key") {
                        format!("{}: GitLab uses this later one, tug would use the first; remove the one that is not meant", e.message)
                    } else {
                        e.message
                    };
                    self.error(
                        file,
                        Loc {
                            line: e.line,
                            col: e.col,
                        },
                        message,
                    );
                }
                r
            }
            Ok((None, _)) => return,
            Err(e) => {
                self.error(
                    file,
                    Loc {
                        line: e.line,
                        col: e.col,
                    },
                    e.message,
                );
                return;
            }
        };
        let Some(map) = root.as_map() else {
            self.error(
                file,
                loc(&root),
                format!("a CI file is a map, found {}", root.describe()),
            );
            return;
        };
        if let Some(inc) = root.get("include") {
            self.includes(file, inc, depth);
        }
        for (k, v) in map {
            let Some(name) = k.scalar() else { continue };
            if name == "include" {
                continue;
            }
            let entry = Entry {
                file: file.to_path_buf(),
                key: k.clone(),
                value: v.clone(),
            };
            match self.entries.iter().position(|(n, _)| n == name) {
                // A later file (the main one last) wins, merged over the earlier.
                Some(i) => {
                    let merged = if matches!(name, "variables" | "default")
                        || name.starts_with('.')
                        || !RESERVED.contains(&name)
                    {
                        merge(&self.entries[i].1.value, v)
                    } else {
                        v.clone()
                    };
                    self.entries[i].1 = Entry {
                        value: merged,
                        ..entry
                    };
                }
                None => self.entries.push((name.to_string(), entry)),
            }
        }
    }

    fn includes(&mut self, file: &Path, inc: &Node, depth: usize) {
        let items: Vec<&Node> = match &inc.kind {
            Kind::Seq(items) => items.iter().collect(),
            _ => vec![inc],
        };
        for item in items {
            let local = match (&item.kind, item.get("local")) {
                (Kind::Scalar { text, .. }, _) if !text.contains("://") => Some(text.clone()),
                (_, Some(l)) => l.scalar().map(str::to_string),
                _ => None,
            };
            let Some(path) = local else {
                let what = match &item.kind {
                    Kind::Scalar { text, .. } => text.clone(),
                    _ => item
                        .as_map()
                        .and_then(|m| m.first())
                        .map(|(k, v)| {
                            format!(
                                "{}: {}",
                                k.scalar().unwrap_or(""),
                                v.scalar().unwrap_or("…")
                            )
                        })
                        .unwrap_or_default(),
                };
                self.notes.push(format!(
                    "{}:{}:{}: include `{what}` is not read (only `include: local` is); jobs that use what it defines are left out",
                    file.display(),
                    item.line,
                    item.col
                ));
                self.unread_includes = true;
                continue;
            };
            if depth > 50 {
                self.error(
                    file,
                    loc(item),
                    "includes nested more than 50 deep (an include cycle?)",
                );
                return;
            }
            let rel = path.trim_start_matches('/');
            let files: Vec<PathBuf> = if rel.contains('*') {
                match globset::Glob::new(rel) {
                    Ok(g) => {
                        let m = g.compile_matcher();
                        let mut v: Vec<PathBuf> = walkdir::WalkDir::new(&self.opts.workspace)
                            .into_iter()
                            .flatten()
                            .filter(|e| e.file_type().is_file())
                            .filter_map(|e| {
                                e.path()
                                    .strip_prefix(&self.opts.workspace)
                                    .ok()
                                    .map(Path::to_path_buf)
                            })
                            .filter(|p| m.is_match(p))
                            .map(|p| self.opts.workspace.join(p))
                            .collect();
                        v.sort();
                        v
                    }
                    Err(e) => {
                        self.error(
                            file,
                            loc(item),
                            format!("bad include pattern `{path}`: {e}"),
                        );
                        continue;
                    }
                }
            } else {
                vec![self.opts.workspace.join(rel)]
            };
            for f in files {
                match std::fs::read_to_string(&f) {
                    Ok(text) => self.read_file(&f, &text, depth + 1),
                    Err(e) => self.error(file, loc(item), format!("include `{path}`: {e}")),
                }
            }
        }
    }

    fn get(&self, name: &str) -> Option<&Entry> {
        self.entries.iter().find(|(n, _)| n == name).map(|(_, e)| e)
    }
}

/// GitLab's deep merge: maps merge key by key, anything else is replaced.
fn merge(base: &Node, over: &Node) -> Node {
    match (&base.kind, &over.kind) {
        (Kind::Map(b), Kind::Map(o)) => {
            let mut out: Vec<(Node, Node)> = b.clone();
            for (k, v) in o {
                match out.iter().position(|(bk, _)| bk.scalar() == k.scalar()) {
                    Some(i) => out[i] = (k.clone(), merge(&out[i].1, v)),
                    None => out.push((k.clone(), v.clone())),
                }
            }
            Node {
                kind: Kind::Map(out),
                line: over.line,
                col: over.col,
            }
        }
        _ => over.clone(),
    }
}

/// A job with its `extends` applied (templates first, in order).
fn resolve_extends(r: &Reader, name: &str, seen: &mut Vec<String>) -> Result<Node, String> {
    let e = r.get(name).ok_or_else(|| {
        if r.unread_includes {
            format!("extends `{name}`, which is not defined here (perhaps in an include that is not read)")
        } else {
            format!("extends `{name}`, which is not defined")
        }
    })?;
    if seen.iter().any(|s| s == name) {
        return Err(format!(
            "`extends` makes a cycle: {} -> {name}",
            seen.join(" -> ")
        ));
    }
    if seen.len() > 11 {
        return Err("`extends` nests more than 11 levels".into());
    }
    seen.push(name.to_string());
    let parents: Vec<String> = match e.value.get("extends") {
        None => vec![],
        Some(n) => match &n.kind {
            Kind::Seq(items) => items
                .iter()
                .filter_map(|i| i.scalar().map(str::to_string))
                .collect(),
            _ => n.scalar().map(|s| vec![s.to_string()]).unwrap_or_default(),
        },
    };
    let mut acc: Option<Node> = None;
    for p in parents {
        let pn = resolve_extends(r, &p, seen)?;
        acc = Some(match acc {
            None => pn,
            Some(a) => merge(&a, &pn),
        });
    }
    seen.pop();
    Ok(match acc {
        None => e.value.clone(),
        Some(a) => merge(&a, &e.value),
    })
}

/// The entries a job is made of: itself, then its templates through `extends`
/// (each once; a cycle or a missing template is reported elsewhere).
fn extends_chain(r: &Reader, name: &str, out: &mut Vec<(String, Entry)>) {
    if out.iter().any(|(n, _)| n == name) {
        return;
    }
    let Some(e) = r.get(name) else { return };
    out.push((name.to_string(), e.clone()));
    let mut parents = Vec::new();
    if let Some(x) = e.value.get("extends") {
        lines(x, &mut parents);
    }
    for p in parents {
        extends_chain(r, &p, out);
    }
}

/// What `inherit: default` or `inherit: variables` lets a job take.
enum Takes {
    All,
    Only(Vec<String>),
}

impl Takes {
    /// From the value as written (checked by [`check_inherit`]); unset or
    /// `true` takes everything.
    fn of(n: Option<&Node>) -> Takes {
        match n {
            Some(n) if n.as_bool() == Some(false) => Takes::Only(Vec::new()),
            Some(n) if n.as_seq().is_some() => {
                let mut v = Vec::new();
                lines(n, &mut v);
                Takes::Only(v)
            }
            _ => Takes::All,
        }
    }

    fn takes(&self, k: &str) -> bool {
        match self {
            Takes::All => true,
            Takes::Only(v) => v.iter().any(|x| x == k),
        }
    }
}

/// Whether `n` or a node inside it is at `at`.
fn holds(n: &Node, at: Loc) -> bool {
    (n.line, n.col) == (at.line, at.col)
        || match &n.kind {
            Kind::Seq(items) => items.iter().any(|i| holds(i, at)),
            Kind::Map(entries) => entries.iter().any(|(k, v)| holds(k, at) || holds(v, at)),
            Kind::Scalar { .. } => false,
        }
}

/// `inherit:` as GitLab accepts it, once `extends` is applied: `default` and
/// `variables`, each a boolean or a list (of default keywords, of variable names).
fn check_inherit(r: &mut Reader, file: &Path, inherit: &Node) {
    if inherit.is_null() {
        return;
    }
    if inherit.as_map().is_none() {
        r.error(
            file,
            loc(inherit),
            format!(
                "`inherit` must be a map of `default` and `variables`, found {}",
                inherit.describe()
            ),
        );
        return;
    }
    r.check_keys(file, inherit, &["default", "variables"], "`inherit`");
    for (key, what) in [
        ("default", "default keywords"),
        ("variables", "top-level variable names"),
    ] {
        let Some(v) = inherit.get(key) else { continue };
        if v.is_null() || v.as_bool().is_some() {
            continue;
        }
        let Some(items) = v.as_seq() else {
            r.error(
                file,
                loc(v),
                format!(
                    "`inherit: {key}` must be true, false or a list of {what}, found {}",
                    v.describe()
                ),
            );
            continue;
        };
        for i in items {
            match i.as_str() {
                Some(s) if key == "default" && !DEFAULT_KEYS.contains(&s) => r.error(
                    file,
                    loc(i),
                    format!(
                        "`inherit: default` lists `{s}`, which is not a keyword of `default` ({})",
                        DEFAULT_KEYS.join(", ")
                    ),
                ),
                Some(_) => {}
                None => r.error(
                    file,
                    loc(i),
                    format!(
                        "`inherit: {key}` lists {}, which is not a name",
                        i.describe()
                    ),
                ),
            }
        }
    }
}

/// Replaces `!reference [name, key, …]` inside `n`.
fn resolve_references(r: &Reader, n: &Node, depth: usize) -> Result<Node, String> {
    if depth > 10 {
        return Err("`!reference` nests more than 10 levels".into());
    }
    Ok(match &n.kind {
        Kind::Seq(items) => {
            if items.first().and_then(|i| i.scalar()) == Some(REFERENCE) {
                let path: Vec<&str> = items[1..].iter().filter_map(|i| i.scalar()).collect();
                let Some((first, rest)) = path.split_first() else {
                    return Err("`!reference` needs a name".into());
                };
                let mut target = resolve_extends(r, first, &mut Vec::new())
                    .map_err(|e| format!("!reference [{}]: {e}", path.join(", ")))?;
                for k in rest {
                    target = target.get(k).cloned().ok_or_else(|| {
                        format!("!reference [{}]: `{first}` has no `{k}`", path.join(", "))
                    })?;
                }
                resolve_references(r, &target, depth + 1)?
            } else {
                let mut out = Vec::new();
                for i in items {
                    out.push(resolve_references(r, i, depth)?);
                }
                Node {
                    kind: Kind::Seq(out),
                    ..n.clone()
                }
            }
        }
        Kind::Map(entries) => {
            let mut out = Vec::new();
            for (k, v) in entries {
                out.push((k.clone(), resolve_references(r, v, depth)?));
            }
            Node {
                kind: Kind::Map(out),
                ..n.clone()
            }
        }
        _ => n.clone(),
    })
}

/// `$VAR` and `${VAR}` replaced from `vars` (unknown ones are empty); `$$` is `$`.
pub fn expand(s: &str, vars: &BTreeMap<String, String>) -> String {
    let b = s.as_bytes();
    let mut out = String::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'$' {
            if b.get(i + 1) == Some(&b'$') {
                out.push('$');
                i += 2;
                continue;
            }
            let braced = b.get(i + 1) == Some(&b'{');
            let start = i + 1 + usize::from(braced);
            let mut j = start;
            while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_') {
                j += 1;
            }
            if j > start && (!braced || b.get(j) == Some(&b'}')) {
                out.push_str(vars.get(&s[start..j]).map(String::as_str).unwrap_or(""));
                i = j + usize::from(braced);
                continue;
            }
        }
        let ch = s[i..].chars().next().unwrap_or(' ');
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

/// The items of a list, nested lists flattened as GitLab does (what a
/// `!reference` to another list leaves in `rules`, `needs`, `services`);
/// anything else is a list of itself.
fn flat(n: &Node) -> Vec<&Node> {
    match &n.kind {
        Kind::Seq(items) => items.iter().flat_map(flat).collect(),
        _ => vec![n],
    }
}

/// Script lines: a string or a (nested) list of strings.
/// The operating system a runner tag names, when it is not Linux
/// (`windows`, `win32-ps`, `saas-windows-medium-amd64`, `macos`, `osx`,
/// `saas-macos-medium-m1`, `freebsd-13`).
fn foreign_os(tag: &str) -> Option<&'static str> {
    let t = tag.to_ascii_lowercase();
    let words: Vec<&str> = t.split(|c: char| !c.is_ascii_alphanumeric()).collect();
    if t.contains("windows")
        || words
            .iter()
            .any(|w| matches!(*w, "win" | "win32" | "win64"))
    {
        Some("Windows")
    } else if t.contains("macos") || words.iter().any(|w| matches!(*w, "osx" | "mac" | "darwin")) {
        Some("macOS")
    } else if t.contains("freebsd") {
        Some("FreeBSD")
    } else {
        None
    }
}

fn lines(n: &Node, out: &mut Vec<String>) {
    match &n.kind {
        Kind::Seq(items) => items.iter().for_each(|i| lines(i, out)),
        Kind::Scalar { text, .. } if !n.is_null() => out.push(text.clone()),
        _ => {}
    }
}

fn variables(
    n: Option<&Node>,
    into: &mut BTreeMap<String, String>,
    expand_with: &BTreeMap<String, String>,
) {
    let Some(m) = n.and_then(Node::as_map) else {
        return;
    };
    for (k, v) in m {
        let Some(name) = k.scalar() else { continue };
        let (value, do_expand) = match v.as_map() {
            Some(_) => (
                v.get("value")
                    .and_then(|x| x.scalar())
                    .unwrap_or("")
                    .to_string(),
                v.get("expand").and_then(Node::as_bool).unwrap_or(true),
            ),
            None => (v.scalar().unwrap_or("").to_string(), true),
        };
        let mut scope = expand_with.clone();
        scope.extend(into.clone());
        let value = if do_expand {
            expand(&value, &scope)
        } else {
            value
        };
        into.insert(name.to_string(), value);
    }
}

/// `1h 30m`, `3 hours 30 minutes`, `90m`, `45s`, `1d`.
pub fn parse_timeout(s: &str) -> Option<std::time::Duration> {
    let mut total = 0u64;
    let mut num = String::new();
    let mut unit = String::new();
    let mut any = false;
    let flush = |num: &mut String, unit: &mut String, total: &mut u64| -> Option<()> {
        if num.is_empty() {
            return if unit.is_empty() { Some(()) } else { None };
        }
        let n: u64 = num.parse().ok()?;
        let secs = match unit.trim_end_matches('s') {
            "" | "sec" | "second" => 1,
            "m" | "min" | "minute" => 60,
            "h" | "hr" | "hour" => 3600,
            "d" | "day" => 86400,
            "w" | "week" => 604_800,
            _ if unit == "s" => 1,
            _ => return None,
        };
        *total = total.checked_add(n.checked_mul(secs)?)?;
        num.clear();
        unit.clear();
        Some(())
    };
    for c in s.chars() {
        if c.is_ascii_digit() {
            if !unit.is_empty() {
                flush(&mut num, &mut unit, &mut total)?;
            }
            num.push(c);
            any = true;
        } else if c.is_ascii_alphabetic() {
            unit.push(c.to_ascii_lowercase());
        } else if c.is_whitespace() || c == ',' {
            if !unit.is_empty() {
                flush(&mut num, &mut unit, &mut total)?;
            }
        } else {
            return None;
        }
    }
    flush(&mut num, &mut unit, &mut total)?;
    (any && total > 0).then(|| std::time::Duration::from_secs(total))
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

fn slug(s: &str) -> String {
    let mut out = String::new();
    for c in s.to_lowercase().chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').chars().take(63).collect()
}

fn predefined(opts: &Options) -> BTreeMap<String, String> {
    let ws = &opts.workspace;
    let branch = git(ws, &["rev-parse", "--abbrev-ref", "HEAD"]).unwrap_or_else(|| "main".into());
    let sha = git(ws, &["rev-parse", "HEAD"]).unwrap_or_else(|| "0".repeat(40));
    let name = ws
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let mut v = BTreeMap::new();
    for (k, val) in [
        ("CI", "true".to_string()),
        ("GITLAB_CI", "true".to_string()),
        ("CI_SERVER", "yes".to_string()),
        ("CI_PROJECT_DIR", ws.display().to_string()),
        (
            "CI_BUILDS_DIR",
            ws.parent().unwrap_or(ws).display().to_string(),
        ),
        ("CI_PROJECT_NAME", name.clone()),
        ("CI_PROJECT_PATH", format!("local/{name}")),
        ("CI_PROJECT_NAMESPACE", "local".to_string()),
        ("CI_COMMIT_SHA", sha.clone()),
        ("CI_COMMIT_SHORT_SHA", sha.chars().take(8).collect()),
        ("CI_COMMIT_BRANCH", branch.clone()),
        ("CI_COMMIT_REF_NAME", branch.clone()),
        ("CI_COMMIT_REF_SLUG", slug(&branch)),
        ("CI_DEFAULT_BRANCH", branch.clone()),
        ("CI_PIPELINE_SOURCE", "push".to_string()),
        ("CI_PIPELINE_ID", "1".to_string()),
        ("CI_PIPELINE_IID", "1".to_string()),
    ] {
        v.insert(k.to_string(), val);
    }
    v.extend(opts.variables.clone());
    v
}

/// How a rule list decides: Ok(None) means the job is left out.
struct Decision {
    when: String,
    allow_failure: Option<bool>,
    variables: BTreeMap<String, String>,
    why: String,
}

fn decide_rules(
    r: &mut Reader,
    file: &Path,
    rules: &Node,
    vars: &BTreeMap<String, String>,
    ws: &Path,
) -> Option<Decision> {
    if rules.as_seq().is_none() {
        r.error(
            file,
            loc(rules),
            format!("`rules` must be a list, found {}", rules.describe()),
        );
        return None;
    }
    for rule in flat(rules) {
        if rule.as_map().is_none() {
            r.error(
                file,
                loc(rule),
                format!("a rule must be a map, found {}", rule.describe()),
            );
            continue;
        }
        r.check_keys(file, rule, RULE_KEYS, "a rule");
        let mut matched = true;
        if let Some(c) = rule.get("if") {
            let text = c.scalar().unwrap_or("");
            match rules::parse(text) {
                Ok(cond) => match rules::eval(&cond, vars) {
                    Ok(b) => matched &= b,
                    Err(m) => {
                        r.error(file, loc(c), m);
                        matched = false;
                    }
                },
                Err(e) => {
                    let quoted = !matches!(&c.kind, Kind::Scalar { plain: true, .. });
                    r.error(
                        file,
                        Loc {
                            line: c.line,
                            col: c.col + usize::from(quoted) + e.offset,
                        },
                        format!("bad rule: {}", e.message),
                    );
                    matched = false;
                }
            }
        }
        if let Some(ex) = rule.get("exists") {
            let mut pats = Vec::new();
            let src = ex.get("paths").unwrap_or(ex);
            lines(src, &mut pats);
            let set = pats
                .iter()
                .filter_map(|p| globset::Glob::new(&expand(p, vars)).ok())
                .fold(globset::GlobSetBuilder::new(), |mut b, g| {
                    b.add(g);
                    b
                });
            let set = set.build().ok();
            let any = set.is_some_and(|s| {
                walkdir::WalkDir::new(ws)
                    .into_iter()
                    .filter_entry(|e| e.file_name() != ".git")
                    .flatten()
                    .filter_map(|e| e.path().strip_prefix(ws).ok().map(Path::to_path_buf))
                    .any(|p| s.is_match(&p))
            });
            matched &= any;
        }
        // `changes:` has no base to compare with here: like a new branch on GitLab, it matches.
        if matched {
            let when = rule
                .get("when")
                .and_then(|w| w.scalar())
                .unwrap_or("on_success")
                .to_string();
            let mut rv = BTreeMap::new();
            variables(rule.get("variables"), &mut rv, vars);
            let why = match rule.get("if") {
                Some(c) => format!("rule `if: {}`", c.scalar().unwrap_or("")),
                None => "a rule".to_string(),
            };
            return Some(Decision {
                when,
                allow_failure: rule.get("allow_failure").and_then(Node::as_bool),
                variables: rv,
                why,
            });
        }
    }
    None
}

struct Planned {
    id: String,
    key: String,
    name: String,
    stage: String,
    job: Job,
    needs: Option<Vec<(String, bool)>>,
    /// Top-level variables the job does not inherit.
    not_inherited: Vec<String>,
}

/// Reads `.gitlab-ci.yml` (and its local includes) into a pipeline.
pub fn import(file: &Path, src: &str, opts: &Options) -> Result<Import, ImportErrors> {
    let mut r = Reader {
        opts,
        errors: Vec::new(),
        notes: Vec::new(),
        entries: Vec::new(),
        unread_includes: false,
    };
    r.read_file(file, src, 0);
    if !r.errors.is_empty() {
        return Err(ImportErrors::sorted(r.errors));
    }
    let pre = predefined(opts);
    let get_node = |r: &Reader, k: &str| r.get(k).map(|e| e.value.clone());
    let default = get_node(&r, "default");
    if let (Some(d), Some(e)) = (&default, r.get("default").cloned()) {
        r.check_keys(&e.file, d, DEFAULT_KEYS, "`default`");
    }
    // Globals that predate `default:`.
    let global = |r: &Reader, k: &str| -> Option<Node> {
        default
            .as_ref()
            .and_then(|d| d.get(k).cloned())
            .or_else(|| get_node(r, k))
    };

    let mut top_vars = pre.clone();
    let file_vars = get_node(&r, "variables");
    variables(file_vars.as_ref(), &mut top_vars, &BTreeMap::new());
    // The top-level variables `inherit: variables` chooses from (the
    // predefined and given ones are not among them).
    let mut globals: Vec<String> = file_vars
        .as_ref()
        .and_then(Node::as_map)
        .unwrap_or(&[])
        .iter()
        .filter_map(|(k, _)| k.scalar().map(str::to_string))
        .collect();
    // Variables given for the run win over the file's, as pipeline variables do on GitLab.
    top_vars.extend(opts.variables.clone());

    let mut stages: Vec<String> = match get_node(&r, "stages").or_else(|| get_node(&r, "types")) {
        Some(n) => {
            let mut v = Vec::new();
            lines(&n, &mut v);
            v
        }
        None => vec!["build".into(), "test".into(), "deploy".into()],
    };
    stages.insert(0, ".pre".into());
    stages.push(".post".into());

    let mut outcomes = Vec::new();
    let mut notes = std::mem::take(&mut r.notes);

    // workflow: rules can leave the whole pipeline out.
    let mut pipeline_out = None;
    if let Some(wf) = get_node(&r, "workflow") {
        if let Some(rules) = wf.get("rules") {
            let f = r
                .get("workflow")
                .map(|e| e.file.clone())
                .unwrap_or_default();
            match decide_rules(&mut r, &f, rules, &top_vars, &opts.workspace) {
                Some(d) if d.when != "never" => {
                    // On GitLab these join the top-level variables.
                    globals.extend(d.variables.keys().cloned());
                    top_vars.extend(d.variables)
                }
                _ => pipeline_out = Some("`workflow: rules` leave the pipeline out for these variables (set them with --var NAME=VALUE)".to_string()),
            }
        }
    }

    globals.sort();
    globals.dedup();

    let job_names: Vec<(String, Entry)> = r
        .entries
        .iter()
        .filter(|(n, _)| !n.starts_with('.') && !RESERVED.contains(&n.as_str()))
        .cloned()
        .collect();

    let mut planned: Vec<Planned> = Vec::new();
    for (name, entry) in &job_names {
        let file = entry.file.clone();
        if entry.value.as_map().is_none() {
            r.error(
                &file,
                loc(&entry.value),
                format!(
                    "job `{name}` must be a map, found {}",
                    entry.value.describe()
                ),
            );
            continue;
        }
        r.check_keys(&file, &entry.value, JOB_KEYS, &format!("job `{name}`"));
        let skip = |reason: String, outcomes: &mut Vec<JobOutcome>| {
            let reason = pipeline_out.clone().unwrap_or(reason);
            outcomes.push(JobOutcome {
                key: slug_key(name),
                id: name.clone(),
                name: name.clone(),
                skipped: Some(reason),
            })
        };
        let node = match resolve_extends(&r, name, &mut Vec::new())
            .and_then(|n| resolve_references(&r, &n, 0))
        {
            Ok(n) => n,
            Err(m) => {
                if r.unread_includes && m.contains("not defined here") {
                    skip(m, &mut outcomes);
                } else {
                    let at = entry.value.get("extends").map_or(loc(&entry.key), loc);
                    r.error(&file, at, m);
                }
                continue;
            }
        };
        // `inherit` is checked as merged, and a mistake said in the file that
        // holds it: the job's, a template's (through `extends`) or another's.
        if let Some(i) = node.get("inherit") {
            let before = r.errors.len();
            check_inherit(&mut r, &file, i);
            let mut chain = Vec::new();
            extends_chain(&r, name, &mut chain);
            for e in &mut r.errors[before..] {
                let at = Loc {
                    line: e.line,
                    col: e.col,
                };
                if let Some((_, x)) = chain
                    .iter()
                    .chain(&r.entries)
                    .find(|(_, x)| holds(&x.value, at))
                {
                    e.file = x.file.clone();
                }
            }
        }
        if let Some(why) = &pipeline_out {
            skip(why.clone(), &mut outcomes);
            continue;
        }
        if node.get("trigger").is_some() {
            skip(
                "triggers a downstream pipeline, which tug does not run".into(),
                &mut outcomes,
            );
            continue;
        }
        let stage = node
            .get("stage")
            .and_then(|s| s.scalar())
            .unwrap_or("test")
            .to_string();
        if !stages.contains(&stage) {
            let at = node.get("stage").map_or(loc(&entry.key), loc);
            r.error(
                &file,
                at,
                format!(
                    "job `{name}` is in the stage `{stage}`, which `stages` does not list ({})",
                    stages[1..stages.len() - 1].join(", ")
                ),
            );
            continue;
        }
        // `inherit: variables` keeps top-level variables out of the job (its
        // rules and its own variables included); a name that is also
        // predefined or given for the run keeps that value.
        let inherit_vars = Takes::of(node.get("inherit").and_then(|i| i.get("variables")));
        let not_inherited: Vec<String> = globals
            .iter()
            .filter(|g| !inherit_vars.takes(g))
            .cloned()
            .collect();
        let mut vars = top_vars.clone();
        for g in &not_inherited {
            match pre.get(g) {
                Some(v) => vars.insert(g.clone(), v.clone()),
                None => vars.remove(g),
            };
        }
        vars.insert("CI_JOB_NAME".into(), name.clone());
        vars.insert("CI_JOB_STAGE".into(), stage.clone());
        let mut job_vars = BTreeMap::new();
        variables(node.get("variables"), &mut job_vars, &vars);
        vars.extend(job_vars.clone());

        // only/except, then rules, then when.
        if let Some(reason) = only_except(&node, &vars) {
            skip(reason, &mut outcomes);
            continue;
        }
        // `inherit: default: false` (or a list) keeps `default:` from the job.
        let inherit_default = Takes::of(node.get("inherit").and_then(|i| i.get("default")));
        let inherited = |r: &Reader, k: &str| -> Option<Node> {
            inherit_default.takes(k).then(|| global(r, k)).flatten()
        };
        let mut when = node
            .get("when")
            .and_then(|w| w.scalar())
            .unwrap_or("on_success")
            .to_string();
        // `allow_failure: exit_codes` allows only those codes to fail.
        let mut exit_codes: Vec<i64> = Vec::new();
        let mut allow_failure = match node.get("allow_failure") {
            Some(a) if a.as_map().is_some() => {
                if let Some(c) = a.get("exit_codes") {
                    exit_codes = flat(c).iter().filter_map(|n| n.as_i64()).collect();
                }
                exit_codes.is_empty()
            }
            Some(a) => a.as_bool().unwrap_or(false),
            None => false,
        };
        let mut rule_note = None;
        if let Some(rules) = node.get("rules") {
            match decide_rules(&mut r, &file, rules, &vars, &opts.workspace) {
                Some(d) => {
                    when = d.when;
                    if let Some(a) = d.allow_failure {
                        allow_failure = a;
                        exit_codes.clear();
                    }
                    job_vars.extend(d.variables.clone());
                    vars.extend(d.variables);
                    rule_note = Some(d.why);
                }
                None => {
                    skip("no rule of `rules` matches".into(), &mut outcomes);
                    continue;
                }
            }
        }
        if when == "delayed" {
            notes.push(format!(
                "job `{name}`: `when: delayed` starts at once here (`start_in` is not waited for)"
            ));
        }
        let when = match when.as_str() {
            "on_success" | "delayed" => When::OnSuccess,
            "on_failure" => When::OnFailure,
            "always" => When::Always,
            "never" => {
                skip(
                    format!(
                        "`when: never`{}",
                        rule_note.map(|n| format!(" ({n})")).unwrap_or_default()
                    ),
                    &mut outcomes,
                );
                continue;
            }
            "manual" => {
                skip(
                    "a manual job (`when: manual`): GitLab waits for a click; tug leaves it out"
                        .into(),
                    &mut outcomes,
                );
                continue;
            }
            other => {
                let at = node.get("when").map_or(loc(&entry.key), loc);
                r.error(&file, at, format!("unknown `when: {other}` (on_success, on_failure, always, manual, delayed, never)"));
                continue;
            }
        };

        // A job for a Windows or macOS runner cannot run on this Linux host.
        let mut tags = Vec::new();
        if let Some(t) = node.get("tags").or(inherited(&r, "tags").as_ref()) {
            lines(t, &mut tags);
        }
        if let Some((tag, os)) = tags
            .iter()
            .find_map(|t| foreign_os(&expand(t, &vars)).map(|os| (t.clone(), os)))
        {
            skip(
                format!("runs on a {os} runner (tag `{tag}`): only Linux jobs run on this host"),
                &mut outcomes,
            );
            continue;
        }

        // Image: the job's, the default's, or the host.
        let image = node
            .get("image")
            .or(inherited(&r, "image").as_ref())
            .and_then(|i| {
                i.get("name")
                    .or(Some(i))
                    .and_then(|n| n.scalar())
                    .map(|s| expand(s, &vars))
            });
        let image = match image {
            _ if opts.on_host => None,
            Some(i) => match opts.images.get(&i).map(String::as_str) {
                Some("host") => None,
                Some(other) => Some(other.to_string()),
                None => Some(i),
            },
            None => None,
        };

        let mut script = Vec::new();
        if let Some(b) = node
            .get("before_script")
            .or(inherited(&r, "before_script").as_ref())
        {
            lines(b, &mut script);
        }
        match node.get("script") {
            Some(s) => lines(s, &mut script),
            None if node.get("run").is_some() => {
                skip(
                    "uses `run:` steps (CI/CD steps), which tug does not run".into(),
                    &mut outcomes,
                );
                continue;
            }
            None => {
                r.error(
                    &file,
                    loc(&entry.key),
                    format!("job `{name}` needs a `script`"),
                );
                continue;
            }
        }
        let mut after = Vec::new();
        if let Some(a) = node
            .get("after_script")
            .or(inherited(&r, "after_script").as_ref())
        {
            lines(a, &mut after);
        }
        let shell = (image.is_none() && (opts.on_path)("bash"))
            .then(|| vec!["bash".to_string(), "-e".into(), "-c".into()]);
        let mut run = script.join("\n");
        if !exit_codes.is_empty() {
            run = allow_exit_codes(&run, &exit_codes);
        }
        let mut steps = vec![Step {
            name: Some("script".into()),
            run,
            ..Default::default()
        }];
        if !after.is_empty() {
            steps.push(Step {
                name: Some("after_script".into()),
                run: after.join("\n"),
                when: When::Always,
                continue_on_error: true,
                ..Default::default()
            });
        }

        let mut artifacts = Vec::new();
        if let Some(a) = node
            .get("artifacts")
            .or(inherited(&r, "artifacts").as_ref())
        {
            if let Some(p) = a.get("paths") {
                let mut v = Vec::new();
                lines(p, &mut v);
                artifacts = v.iter().map(|p| expand(p, &vars)).collect();
            }
            if a.get("untracked").and_then(Node::as_bool) == Some(true) {
                notes.push(format!(
                    "job `{name}`: `artifacts: untracked` is not kept; list the paths"
                ));
            }
        }
        let mut cache = Vec::new();
        if let Some(c) = node.get("cache").or(inherited(&r, "cache").as_ref()) {
            for c in flat(c) {
                let mut paths = Vec::new();
                if let Some(p) = c.get("paths") {
                    lines(p, &mut paths);
                }
                if paths.is_empty() {
                    continue;
                }
                let (key, files) = match c.get("key") {
                    Some(k) if k.as_map().is_some() => {
                        let mut f = Vec::new();
                        if let Some(files) = k.get("files") {
                            lines(files, &mut f);
                        }
                        (
                            k.get("prefix")
                                .and_then(|p| p.scalar())
                                .map_or("default".to_string(), |p| expand(p, &vars)),
                            f,
                        )
                    }
                    Some(k) => (expand(k.scalar().unwrap_or("default"), &vars), Vec::new()),
                    None => ("default".to_string(), Vec::new()),
                };
                cache.push(Cache {
                    key: slug_key(&key),
                    files,
                    paths: paths.iter().map(|p| expand(p, &vars)).collect(),
                });
            }
        }
        let mut services = BTreeMap::new();
        if let Some(s) = node.get("services").or(inherited(&r, "services").as_ref()) {
            for item in flat(s) {
                let image = item
                    .get("name")
                    .or(Some(item))
                    .and_then(|n| n.scalar())
                    .map(|s| expand(s, &vars));
                let Some(image) = image else { continue };
                let alias = item
                    .get("alias")
                    .and_then(|a| a.scalar())
                    .map(str::to_string)
                    .unwrap_or_else(|| {
                        let base = image.rsplit('/').next().unwrap_or(&image);
                        base.split(':').next().unwrap_or(base).to_string()
                    });
                let mut env = BTreeMap::new();
                variables(item.get("variables"), &mut env, &vars);
                let command = item.get("command").map(|c| {
                    let mut v = Vec::new();
                    lines(c, &mut v);
                    v
                });
                services.insert(
                    alias,
                    JobService {
                        image,
                        env,
                        command,
                        ..Default::default()
                    },
                );
            }
        }
        let timeout = node
            .get("timeout")
            .or(inherited(&r, "timeout").as_ref())
            .and_then(|t| t.scalar().map(str::to_string))
            .map(|t| match parse_timeout(&t) {
                Some(d) => Ok(tug_spec::Duration(d)),
                None => Err(t),
            })
            .transpose();
        let timeout = match timeout {
            Ok(t) => t,
            Err(t) => {
                let at = node.get("timeout").map_or(loc(&entry.key), loc);
                r.error(
                    &file,
                    at,
                    format!("cannot read the timeout `{t}` (write it like `1h 30m`)"),
                );
                continue;
            }
        };
        let retry = node
            .get("retry")
            .or(inherited(&r, "retry").as_ref())
            .and_then(|n| n.as_i64().or_else(|| n.get("max").and_then(Node::as_i64)))
            .unwrap_or(0)
            .clamp(0, 2) as u32;
        let needs = match node.get("needs") {
            None => None,
            Some(n) => {
                let mut v = Vec::new();
                for item in flat(n) {
                    let (job, optional) = match item.as_map() {
                        Some(_) => (
                            item.get("job").and_then(|j| j.scalar()).map(str::to_string),
                            item.get("optional")
                                .and_then(Node::as_bool)
                                .unwrap_or(false),
                        ),
                        None => (item.scalar().map(str::to_string), false),
                    };
                    if let Some(j) = job {
                        let base = instance_of(&j);
                        if !job_names
                            .iter()
                            .any(|(n, _)| *n == j || Some(n.as_str()) == base)
                        {
                            if !optional {
                                r.error(&file, loc(item), format!("job `{name}` needs `{j}`, which is not a job of this pipeline"));
                            }
                            continue;
                        }
                        v.push((j, optional));
                    }
                }
                Some(v)
            }
        };
        let mut env = job_vars;
        env.insert("CI_JOB_NAME".into(), name.clone());
        env.insert("CI_JOB_STAGE".into(), stage.clone());
        let base = Job {
            steps,
            env,
            image,
            timeout,
            retry,
            when,
            continue_on_error: allow_failure,
            services,
            cache,
            artifacts,
            shell,
            ..Default::default()
        };
        // parallel: N copies, or one per matrix combination.
        let copies: Vec<(String, String, BTreeMap<String, String>)> = match node.get("parallel") {
            None => vec![(slug_key(name), name.clone(), BTreeMap::new())],
            Some(p) => match (p.as_i64(), p.get("matrix")) {
                (Some(n), _) if (1..=200).contains(&n) => (1..=n)
                    .map(|i| {
                        let mut e = BTreeMap::new();
                        e.insert("CI_NODE_INDEX".to_string(), i.to_string());
                        e.insert("CI_NODE_TOTAL".to_string(), n.to_string());
                        (
                            slug_key(&format!("{name} {i} {n}")),
                            format!("{name} {i}/{n}"),
                            e,
                        )
                    })
                    .collect(),
                (_, Some(m)) => {
                    let combos = parallel_matrix(m);
                    let n = combos.len();
                    combos
                        .into_iter()
                        .enumerate()
                        .map(|(i, c)| {
                            let vals: Vec<&str> = c.iter().map(|(_, v)| v.as_str()).collect();
                            let mut e: BTreeMap<String, String> = c.iter().cloned().collect();
                            e.insert("CI_NODE_INDEX".into(), (i + 1).to_string());
                            e.insert("CI_NODE_TOTAL".into(), n.to_string());
                            (
                                slug_key(&format!("{name} {}", vals.join(" "))),
                                format!("{name}: [{}]", vals.join(", ")),
                                e,
                            )
                        })
                        .collect()
                }
                _ => {
                    r.error(
                        &file,
                        loc(p),
                        "`parallel` is a number from 1 to 200 or `matrix:`",
                    );
                    continue;
                }
            },
        };
        for (key, display, extra) in copies {
            let mut job = base.clone();
            job.env.extend(extra);
            planned.push(Planned {
                id: name.clone(),
                key,
                name: display,
                stage: stage.clone(),
                job,
                needs: needs.clone().map(|v| v.into_iter().collect()),
                not_inherited: not_inherited.clone(),
            });
        }
    }
    if !r.errors.is_empty() {
        return Err(ImportErrors::sorted(r.errors));
    }

    // needs: explicit (every copy of a parallel job), else every job of the earlier stages.
    let stage_pos = |s: &str| stages.iter().position(|x| x == s).unwrap_or(0);
    // The run gives every job the pipeline's env: a top-level variable that
    // some job does not inherit goes to the jobs that do, one by one.
    let withheld: Vec<String> = globals
        .iter()
        .filter(|g| planned.iter().any(|p| p.not_inherited.contains(g)))
        .cloned()
        .collect();
    let mut env = top_vars.clone();
    for g in &withheld {
        match pre.get(g) {
            Some(v) => env.insert(g.clone(), v.clone()),
            None => env.remove(g),
        };
    }
    for p in &mut planned {
        for g in withheld.iter().filter(|g| !p.not_inherited.contains(g)) {
            if let (false, Some(v)) = (p.job.env.contains_key(g), top_vars.get(g)) {
                p.job.env.insert(g.clone(), v.clone());
            }
        }
    }
    let mut pipeline = Pipeline {
        env,
        ..Default::default()
    };
    let names_by_job: BTreeMap<String, Vec<String>> =
        planned.iter().fold(BTreeMap::new(), |mut m, p| {
            m.entry(p.id.clone()).or_default().push(p.key.clone());
            m
        });
    let display: BTreeMap<String, String> = planned
        .iter()
        .map(|p| (p.name.clone(), p.key.clone()))
        .collect();
    let mut left_out: Vec<String> = Vec::new();
    let snapshot: Vec<(String, String)> = planned
        .iter()
        .map(|p| (p.key.clone(), p.stage.clone()))
        .collect();
    for p in planned {
        let needs: Vec<String> = match &p.needs {
            Some(list) => {
                let mut v = Vec::new();
                let mut missing = None;
                for (j, optional) in list {
                    // `job: [a, b]` is the one copy of a `parallel: matrix` job of that name.
                    let one = instance_of(j).and_then(|_| display.get(j.as_str()));
                    match (one, names_by_job.get(j)) {
                        (Some(key), _) => v.push(key.clone()),
                        (None, Some(keys)) if !keys.is_empty() => v.extend(keys.iter().cloned()),
                        _ if *optional => {}
                        _ => missing = Some(j.clone()),
                    }
                }
                if let Some(m) = missing {
                    left_out.push(p.key.clone());
                    outcomes.push(JobOutcome {
                        key: p.key.clone(),
                        id: p.id.clone(),
                        name: p.name.clone(),
                        skipped: Some(match instance_of(&m) {
                            Some(base) if !display.contains_key(&m) && !outcomes.iter().any(|o| o.name == m) => format!(
                                "needs `{m}`, which is no combination of the `parallel: matrix` of `{base}`"
                            ),
                            _ => format!("needs `{m}`, which is left out"),
                        }),
                    });
                    continue;
                }
                v
            }
            None => snapshot
                .iter()
                .filter(|(_, s)| stage_pos(s) < stage_pos(&p.stage))
                .map(|(k, _)| k.clone())
                .collect(),
        };
        let mut job = p.job;
        let mut needs = needs;
        needs.sort();
        needs.dedup();
        job.needs = needs;
        outcomes.push(JobOutcome {
            key: p.key.clone(),
            id: p.id.clone(),
            name: p.name,
            skipped: None,
        });
        pipeline.jobs.insert(p.key, job);
    }
    // A job whose needs were left out goes too (and the jobs after it).
    loop {
        let gone: Vec<String> = pipeline
            .jobs
            .iter()
            .filter(|(_, j)| j.needs.iter().any(|n| left_out.contains(n)))
            .map(|(k, _)| k.clone())
            .collect();
        if gone.is_empty() {
            break;
        }
        for k in gone {
            pipeline.jobs.remove(&k);
            if let Some(o) = outcomes.iter_mut().find(|o| o.key == k) {
                o.skipped = Some("a job it needs is left out".into());
            }
            left_out.push(k);
        }
    }
    Ok(Import {
        pipeline,
        jobs: outcomes,
        notes,
    })
}

/// The script in a subshell whose exit code, when it is one of `codes`,
/// ends the job as allowed to fail (a success here, with a line saying so).
fn allow_exit_codes(script: &str, codes: &[i64]) -> String {
    let list: Vec<String> = codes.iter().map(i64::to_string).collect();
    format!(
        "set +e\n(\nset -e\n{script}\n)\ntug_code=$?\ncase \" {} \" in *\" $tug_code \"*) echo \"exit code $tug_code is allowed to fail (allow_failure: exit_codes)\"; exit 0;; esac\nexit $tug_code",
        list.join(" ")
    )
}

/// `build: [x86_64, linux]` names one copy of the `parallel: matrix` job `build`.
fn instance_of(need: &str) -> Option<&str> {
    let (job, rest) = need.split_once(": [")?;
    rest.ends_with(']').then_some(job)
}

fn slug_key(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() || matches!(c, '.' | '_') {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let t = out.trim_matches('-');
    if t.is_empty() {
        "job".into()
    } else {
        t.to_string()
    }
}

/// `parallel: matrix:` — each entry's lists multiply; the entries add up.
fn parallel_matrix(m: &Node) -> Vec<Vec<(String, String)>> {
    let mut all = Vec::new();
    for entry in m.as_seq().unwrap_or(&[]) {
        let mut combos: Vec<Vec<(String, String)>> = vec![Vec::new()];
        for (k, v) in entry.as_map().unwrap_or(&[]) {
            let Some(name) = k.scalar() else { continue };
            let mut values = Vec::new();
            lines(v, &mut values);
            let mut next = Vec::new();
            for c in &combos {
                for val in &values {
                    let mut c = c.clone();
                    c.push((name.to_string(), val.clone()));
                    next.push(c);
                }
            }
            combos = next;
        }
        all.extend(combos.into_iter().filter(|c| !c.is_empty()));
    }
    all
}

/// `only`/`except` with refs: a push to a branch is what runs here.
fn only_except(node: &Node, vars: &BTreeMap<String, String>) -> Option<String> {
    let branch = vars.get("CI_COMMIT_BRANCH").cloned().unwrap_or_default();
    let refs = |n: &Node| -> Vec<String> {
        let mut v = Vec::new();
        lines(n.get("refs").unwrap_or(n), &mut v);
        v
    };
    let matches = |list: &[String]| {
        list.iter().any(|r| {
            r == "branches" || r == "pushes" || *r == branch || {
                r.starts_with('/')
                    && r.len() > 2
                    && regex::Regex::new(r.trim_matches('/')).is_ok_and(|re| re.is_match(&branch))
            }
        })
    };
    if let Some(o) = node.get("only") {
        let list = refs(o);
        if !list.is_empty() && !matches(&list) {
            return Some(format!(
                "`only: {}` does not match a push to `{branch}`",
                list.join(", ")
            ));
        }
    }
    if let Some(e) = node.get("except") {
        let list = refs(e);
        if matches(&list) {
            return Some(format!(
                "`except: {}` matches a push to `{branch}`",
                list.join(", ")
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_and_expansion() {
        assert_eq!(
            parse_timeout("1h 30m"),
            Some(std::time::Duration::from_secs(5400))
        );
        assert_eq!(
            parse_timeout("3 hours 30 minutes"),
            Some(std::time::Duration::from_secs(12600))
        );
        assert_eq!(
            parse_timeout("45s"),
            Some(std::time::Duration::from_secs(45))
        );
        assert_eq!(parse_timeout("soon"), None);
        let mut v = BTreeMap::new();
        v.insert("A".to_string(), "x".to_string());
        assert_eq!(expand("$A-${A}-$B-$$A", &v), "x-x--$A");
    }
}
