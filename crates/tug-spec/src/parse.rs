//! Reading tug.yaml: a positioned YAML tree → the resolved model, with every
//! problem collected in one pass and reported at `file:line:col`.

use crate::interpolate::Vars;
use crate::model::*;
use crate::units::{ByteSize, Duration};
use crate::yaml::{self, Node};
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// One problem in a file, located at `file:line:col` (1-based).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpecError {
    pub file: PathBuf,
    pub line: usize,
    pub col: usize,
    pub message: String,
    pub hint: Option<String>,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file.display(),
            self.line,
            self.col,
            self.message
        )?;
        if let Some(h) = &self.hint {
            write!(f, "\n  hint: {h}")?;
        }
        Ok(())
    }
}

/// Every problem found in one pass, in file order.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct SpecErrors(pub Vec<SpecError>);

impl fmt::Display for SpecErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// Reads and resolves the stack file at `path`, interpolated with the
/// environment and the `.env` file beside it.
pub fn load(path: &Path) -> Result<Stack, SpecErrors> {
    load_with(path, &[])
}

/// Like [`load`], with `env_files` (`--env-file`) in place of `.env`.
pub fn load_with(path: &Path, env_files: &[PathBuf]) -> Result<Stack, SpecErrors> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        SpecErrors(vec![SpecError {
            file: path.to_path_buf(),
            line: 1,
            col: 1,
            message: format!("cannot read file: {e}"),
            hint: None,
        }])
    })?;
    let vars = Vars::load(&stack_dir(path), env_files)?;
    parse_str_with(&text, path, &vars)
}

fn stack_dir(file: &Path) -> PathBuf {
    let dir = file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    std::path::absolute(&dir).unwrap_or(dir)
}

/// Parses `text` as if read from `file` (used in messages and to resolve
/// relative paths), interpolated with the environment and the `.env` file
/// beside `file`.
pub fn parse_str(text: &str, file: &Path) -> Result<Stack, SpecErrors> {
    let vars = Vars::load(&stack_dir(file), &[])?;
    parse_str_with(text, file, &vars)
}

/// Like [`parse_str`], with the variables given.
pub fn parse_str_with(text: &str, file: &Path, vars: &Vars) -> Result<Stack, SpecErrors> {
    let dir = stack_dir(file);
    let mut cx = Cx::new(file);
    cx.vars = vars.clone();
    let root = match yaml::parse(text) {
        Err(e) => {
            cx.at(e.line, e.col, e.message, None);
            return Err(cx.finish());
        }
        Ok((root, yaml_errors)) => {
            for e in yaml_errors {
                cx.at(e.line, e.col, e.message, None);
            }
            root
        }
    };
    let Some(mut root) = root else {
        cx.at(
            1,
            1,
            "the file is empty".into(),
            Some("start with `name: <stack>` and a `services:` map".into()),
        );
        return Err(cx.finish());
    };
    // Pipeline steps are shell scripts: the shell expands them at run time.
    let (done, errors) = crate::interpolate::tree_except(&mut root, vars, &["pipelines"]);
    for e in errors {
        cx.at(e.line, e.col, e.message, None);
    }
    let mut unset: Vec<_> = done
        .into_iter()
        .filter(|(_, d)| !d.unset.is_empty())
        .collect();
    unset.sort_by_key(|(pos, _)| *pos);
    for ((line, col), d) in unset {
        let name = &d.unset[0];
        cx.at(
            line,
            col,
            format!("variable {name} is not set"),
            Some(format!("set it in the environment or in .env beside the file, write `${{{name}:-}}` for an empty default, or `$${name}` for a literal `${name}`")),
        );
    }
    let stack = cx.stack(&root, &dir, file);
    match stack {
        Some(s) if cx.errors.is_empty() => Ok(s),
        _ => Err(cx.finish()),
    }
}

/// Looks up the closest of `known` to `word`, for "did you mean" hints.
pub(crate) fn suggest<'a>(word: &str, known: &[&'a str]) -> Option<&'a str> {
    known
        .iter()
        .map(|k| (strsim::normalized_damerau_levenshtein(word, k), *k))
        .filter(|(score, _)| *score >= 0.6)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| k)
}

/// Keys compose users reach for, and what tug calls them.
const COMPOSE_WORDS: &[(&str, &str)] = &[
    ("environment", "did you mean `env`?"),
    (
        "ports",
        "did you mean `port` (the container port) and `publish` (a fixed host port)?",
    ),
    ("healthcheck", "did you mean `health`?"),
    (
        "deploy",
        "write `replicas` and `resources` directly on the service",
    ),
    (
        "cap_drop",
        "tug drops every capability by default; add some back with `security.cap_add`",
    ),
    (
        "container_name",
        "tug names containers `<stack>-<service>-<replica>`",
    ),
    ("user", "did you mean `security.user`?"),
    ("read_only", "did you mean `security.read_only`?"),
    ("cap_add", "did you mean `security.cap_add`?"),
    ("privileged", "did you mean `security.privileged`?"),
    ("mem_limit", "did you mean `resources.memory`?"),
    ("cpus", "did you mean `resources.cpu`?"),
];

pub(crate) fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// Turns an arbitrary name into a valid stack/service name.
pub(crate) fn sanitize_name(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let out = out.trim_matches('-');
    let out: String = out.chars().take(63).collect();
    let out = out.trim_end_matches('-').to_string();
    if out.is_empty() {
        "stack".into()
    } else {
        out
    }
}

/// Parses a duration, splitting the parser's message into message and hint.
pub(crate) fn duration(text: &str) -> Result<Duration, (String, Option<String>)> {
    text.parse::<Duration>().map_err(|e| {
        if let Some((msg, fix)) = e.split_once(", write ") {
            // "missing unit, write `2s` or `2ms`": offer the likeliest fix.
            let fix = fix.split(" or ").next().unwrap_or(fix);
            (msg.to_string(), Some(format!("write {fix}")))
        } else if let Some((msg, units)) = e.split_once(" (") {
            (
                msg.to_string(),
                Some(units.trim_end_matches(')').to_string()),
            )
        } else if let Some((msg, fix)) = e.split_once(": write ") {
            (msg.to_string(), Some(format!("write {fix}")))
        } else {
            (e, None)
        }
    })
}

/// A port written `[[HOST_IP:]PUBLISH:]PORT[/PROTOCOL]`, as compose writes them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PortText {
    pub host_ip: Option<String>,
    pub publish: Option<u16>,
    pub port: u16,
    pub protocol: Protocol,
}

pub(crate) fn port_number(t: &str) -> Result<u16, String> {
    if t.contains('-') && t.bytes().any(|b| b.is_ascii_digit()) {
        return Err(format!("port ranges (`{t}`) are not supported"));
    }
    match t.parse::<u32>() {
        Ok(n) if (1..=65535).contains(&n) => Ok(n as u16),
        Ok(n) => Err(format!("port {n} is out of range (1 to 65535)")),
        Err(_) => Err(format!("`{t}` is not a port number")),
    }
}

pub(crate) fn protocol(t: &str) -> Result<Protocol, String> {
    match t.to_ascii_lowercase().as_str() {
        "tcp" => Ok(Protocol::Tcp),
        "udp" => Ok(Protocol::Udp),
        other => Err(format!(
            "protocol `{other}` is not supported: use tcp or udp"
        )),
    }
}

pub(crate) fn port_text(text: &str) -> Result<PortText, String> {
    let (spec, proto) = match text.rsplit_once('/') {
        Some((s, p)) => (s, protocol(p)?),
        None => (text, Protocol::Tcp),
    };
    // An IPv6 host address is bracketed: `[::1]:8080:80`.
    let (host_ip, rest) = match spec.strip_prefix('[') {
        Some(r) => match r.split_once("]:") {
            Some((ip, rest)) => (Some(ip.to_string()), rest),
            None => return Err(format!("`{text}`: unclosed `[` in the host address")),
        },
        None => (None, spec),
    };
    let parts: Vec<&str> = rest.split(':').collect();
    let (ip, publish, port) = match (host_ip, parts.as_slice()) {
        (None, [p]) => (None, None, *p),
        (None, [h, p]) => (None, Some(*h), *p),
        // `:8080:80` (an empty address, as `${IP-}:8080:80` gives) is no address.
        (None, [ip, h, p]) => (Some(ip.to_string()).filter(|i| !i.is_empty()), Some(*h), *p),
        (Some(ip), [h, p]) => (Some(ip), Some(*h), *p),
        _ => {
            return Err(format!(
                "`{text}` is not [[HOST_IP:]PUBLISH:]PORT[/PROTOCOL]"
            ))
        }
    };
    if let Some(ip) = &ip {
        if ip.parse::<std::net::IpAddr>().is_err() {
            return Err(format!("`{ip}` is not an IP address"));
        }
    }
    Ok(PortText {
        host_ip: ip.filter(|i| !i.is_empty()),
        publish: match publish {
            Some(h) if !h.is_empty() => Some(port_number(h)?),
            _ => None,
        },
        port: port_number(port)?,
        protocol: proto,
    })
}

/// `KEY=VALUE` lines, `#` comments, optional quotes and `export ` prefixes.
pub(crate) fn parse_env_file(text: &str) -> Result<Vec<(String, String)>, (usize, String)> {
    Ok(env_lines(text)?
        .into_iter()
        .map(|(_, k, v, _)| (k, v))
        .collect())
}

/// A service's `env_file`, interpolated as compose does: unquoted and
/// double-quoted values expand `${VAR}` forms from `vars` (the environment
/// and `.env`), then from the file's earlier lines; single-quoted values
/// stay literal.
pub(crate) fn parse_env_file_with(
    text: &str,
    vars: &Vars,
) -> Result<Vec<(String, String)>, (usize, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for (line, k, v, literal) in env_lines(text)? {
        let v = if literal || !v.contains('$') {
            v
        } else {
            let mut scope = vars.clone();
            for (ek, ev) in &out {
                if scope.get(ek).is_none() {
                    scope = scope.with(ek, ev);
                }
            }
            crate::interpolate::interpolate(&v, &scope)
                .map_err(|e| (line, format!("`{k}`: {e}")))?
                .text
        };
        out.push((k, v));
    }
    Ok(out)
}

/// One assignment of an env file: (line, key, value, single-quoted).
type EnvLine = (usize, String, String, bool);

fn env_lines(text: &str) -> Result<Vec<EnvLine>, (usize, String)> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line).trim_start();
        let Some((k, v)) = line.split_once('=') else {
            return Err((i + 1, format!("expected KEY=VALUE, found `{line}`")));
        };
        let k = k.trim();
        if k.is_empty() || k.contains(char::is_whitespace) {
            return Err((i + 1, format!("invalid variable name `{k}`")));
        }
        let v = v.trim();
        let literal = v.len() >= 2 && v.starts_with('\'') && v.ends_with('\'');
        let v = if let Some(inner) = v.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
            inner
                .replace("\\n", "\n")
                .replace("\\\"", "\"")
                .replace("\\\\", "\\")
        } else if let Some(inner) = v.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')) {
            inner.to_string()
        } else {
            match v.find(" #") {
                Some(p) => v[..p].trim_end().to_string(),
                None => v.to_string(),
            }
        };
        out.push((i + 1, k.to_string(), v, literal));
    }
    Ok(out)
}

/// The error collector and the walk from tree to model.
pub(crate) struct Cx<'f> {
    file: &'f Path,
    pub errors: Vec<SpecError>,
    /// What `env_file` values are interpolated with.
    vars: Vars,
}

const STACK_KEYS: &[&str] = &[
    "name",
    "services",
    "runtime",
    "secrets",
    "configs",
    "gateway",
    "pipelines",
    "dashboard",
    "observe",
];
const UPDATE_KEYS: &[&str] = &[
    "max_surge",
    "max_unavailable",
    "health_timeout",
    "auto_rollback",
    "order",
];
pub(crate) const SERVICE_KEYS: &[&str] = &[
    "image",
    "build",
    "command",
    "entrypoint",
    "env",
    "env_file",
    "port",
    "publish",
    "host_ip",
    "ports",
    "expose",
    "aliases",
    "replicas",
    "health",
    "depends_on",
    "volumes",
    "resources",
    "security",
    "secrets",
    "configs",
    "labels",
    "restart",
    "stop_grace_period",
    "update",
    "route",
    "autoscale",
    "verify",
    "develop",
];
const DEVELOP_KEYS: &[&str] = &["watch"];
const WATCH_KEYS: &[&str] = &["path", "action", "target", "ignore"];
const WATCH_ACTIONS: &[&str] = &["sync", "rebuild", "sync+restart"];
const PORT_KEYS: &[&str] = &["port", "protocol", "publish", "host_ip"];
const BUILD_KEYS: &[&str] = &["context", "dockerfile", "args", "target", "rust"];
const RUST_KEYS: &[&str] = &["package", "bin", "workspace", "profile"];
const HEALTH_KEYS: &[&str] = &[
    "http",
    "tcp",
    "exec",
    "interval",
    "timeout",
    "retries",
    "start_period",
];
const RESOURCE_KEYS: &[&str] = &["cpu", "memory", "pids"];
const SECURITY_KEYS: &[&str] = &[
    "user",
    "read_only",
    "cap_add",
    "privileged",
    "seccomp",
    "no_new_privileges",
];
const VOLUME_KEYS: &[&str] = &["name", "bind", "path", "read_only"];

/// A checked map: the value of each known key, with the key's own node.
pub(crate) struct Fields<'n> {
    entries: Vec<(&'n str, &'n Node, &'n Node)>,
}

impl<'n> Fields<'n> {
    pub fn get(&self, key: &str) -> Option<&'n Node> {
        self.entries
            .iter()
            .find(|(k, _, _)| *k == key)
            .map(|(_, _, v)| *v)
    }
    pub fn key(&self, key: &str) -> Option<&'n Node> {
        self.entries
            .iter()
            .find(|(k, _, _)| *k == key)
            .map(|(_, k, _)| *k)
    }
}

impl<'f> Cx<'f> {
    pub fn new(file: &'f Path) -> Self {
        Cx {
            file,
            errors: Vec::new(),
            vars: Vars::default(),
        }
    }

    pub fn finish(mut self) -> SpecErrors {
        self.errors.sort_by_key(|e| (e.line, e.col));
        self.errors.dedup();
        SpecErrors(self.errors)
    }

    pub fn at(&mut self, line: usize, col: usize, message: String, hint: Option<String>) {
        self.errors.push(SpecError {
            file: self.file.to_path_buf(),
            line,
            col,
            message,
            hint,
        });
    }

    pub fn err(&mut self, n: &Node, message: impl Into<String>, hint: Option<String>) {
        self.at(n.line, n.col, message.into(), hint);
    }

    pub(crate) fn expected(&mut self, n: &Node, what: &str, expected: &str) {
        self.err(
            n,
            format!("`{what}` must be {expected}, found {}", n.describe()),
            None,
        );
    }

    /// One of a few keywords: its value, or an error listing them with a
    /// "did you mean" hint.
    pub(crate) fn one_of<T: Copy>(
        &mut self,
        n: &Node,
        what: &str,
        choices: &[(&str, T)],
    ) -> Option<T> {
        if let Some(&(_, t)) = n
            .scalar()
            .and_then(|v| choices.iter().find(|(k, _)| *k == v))
        {
            return Some(t);
        }
        let names: Vec<&str> = choices.iter().map(|(k, _)| *k).collect();
        let list = match names.split_last() {
            Some((last, [])) => last.to_string(),
            Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
            None => String::new(),
        };
        let hint = n
            .scalar()
            .and_then(|v| suggest(v, &names))
            .map(|v| format!("did you mean `{v}`?"));
        self.err(
            n,
            format!("`{what}` must be {list}, found {}", n.describe()),
            hint,
        );
        None
    }

    /// Checks that `n` is a map whose keys are all in `known`.
    pub fn fields<'n>(&mut self, n: &'n Node, what: &str, known: &[&str]) -> Option<Fields<'n>> {
        let Some(map) = n.as_map() else {
            self.expected(n, what, "a map");
            return None;
        };
        let mut entries = Vec::new();
        for (k, v) in map {
            let Some(name) = k.scalar() else {
                self.err(k, format!("keys in `{what}` must be names"), None);
                continue;
            };
            if known.contains(&name) {
                entries.push((name, k, v));
                continue;
            }
            let hint = suggest(name, known)
                .map(|s| format!("did you mean `{s}`?"))
                .or_else(|| {
                    COMPOSE_WORDS
                        .iter()
                        .find(|(w, _)| *w == name)
                        .map(|(_, h)| h.to_string())
                })
                .or_else(|| Some(format!("known keys: {}", known.join(", "))));
            self.err(k, format!("unknown key `{name}` in {what}"), hint);
        }
        Some(Fields { entries })
    }

    pub fn string(&mut self, n: &Node, what: &str) -> Option<String> {
        match n.as_str() {
            Some(s) => Some(s.to_string()),
            None => {
                self.expected(n, what, "a string");
                None
            }
        }
    }

    /// Any scalar as text: numbers and booleans as written.
    pub fn text(&mut self, n: &Node, what: &str) -> Option<String> {
        match n.scalar() {
            Some(s) => Some(s.to_string()),
            None => {
                self.expected(n, what, "a string");
                None
            }
        }
    }

    pub fn boolean(&mut self, n: &Node, what: &str) -> Option<bool> {
        let b = n.as_bool();
        if b.is_none() {
            self.expected(n, what, "true or false");
        }
        b
    }

    pub fn int(&mut self, n: &Node, what: &str) -> Option<i64> {
        let i = n.as_i64();
        if i.is_none() {
            if n.is_big_int() {
                self.err(n, format!("`{what}` is too large"), None);
            } else {
                self.expected(n, what, "a whole number");
            }
        }
        i
    }

    pub fn count(&mut self, n: &Node, what: &str) -> Option<u32> {
        let i = self.int(n, what)?;
        if i < 0 {
            self.err(n, format!("`{what}` cannot be negative, found {i}"), None);
            return None;
        }
        match u32::try_from(i) {
            Ok(v) => Some(v),
            Err(_) => {
                self.err(n, format!("`{what}` is too large"), None);
                None
            }
        }
    }

    pub fn port(&mut self, n: &Node, what: &str) -> Option<u16> {
        let i = self.int(n, what)?;
        if !(1..=65535).contains(&i) {
            self.err(
                n,
                format!("`{what}` must be a port between 1 and 65535, found {i}"),
                None,
            );
            return None;
        }
        Some(i as u16)
    }

    pub fn duration(&mut self, n: &Node, what: &str) -> Option<Duration> {
        let text = match (n.as_i64(), n.scalar()) {
            (Some(i), _) => i.to_string(),
            (None, Some(s)) => s.to_string(),
            (None, None) => {
                self.expected(n, what, "a duration like `2s`");
                return None;
            }
        };
        match duration(&text) {
            Ok(d) => Some(d),
            Err((msg, hint)) => {
                self.err(n, format!("`{what}`: {msg}"), hint);
                None
            }
        }
    }

    pub fn size(&mut self, n: &Node, what: &str) -> Option<ByteSize> {
        if let Some(i) = n.as_i64() {
            if i < 0 {
                self.err(n, format!("`{what}` cannot be negative"), None);
                return None;
            }
            return Some(ByteSize(i as u64));
        }
        let Some(s) = n.scalar() else {
            self.expected(n, what, "a size like `256Mi`");
            return None;
        };
        match s.parse::<ByteSize>() {
            Ok(b) => Some(b),
            Err(e) => {
                let (msg, hint) = match e.split_once(": ") {
                    Some((m, h)) => (m.to_string(), Some(h.to_string())),
                    None => (e, None),
                };
                self.err(n, format!("`{what}`: {msg}"), hint);
                None
            }
        }
    }

    /// A string or a list of strings; a string is split like a shell would.
    pub fn argv(&mut self, n: &Node, what: &str) -> Option<Vec<String>> {
        if let Some(items) = n.as_seq() {
            let mut out = Vec::new();
            for i in items {
                out.push(self.text(i, what)?);
            }
            return Some(out);
        }
        let Some(s) = n.scalar() else {
            self.expected(n, what, "a string or a list of strings");
            return None;
        };
        match shlex::split(s) {
            Some(v) => Some(v),
            None => {
                self.err(
                    n,
                    format!("`{what}` has an unclosed quote or a trailing backslash"),
                    Some("close the quote, or write the arguments as a list".into()),
                );
                None
            }
        }
    }

    /// A map of scalars or a list of `KEY=VALUE` strings; returns (key node, key, value).
    pub fn pairs<'n>(&mut self, n: &'n Node, what: &str) -> Vec<(&'n Node, String, String)> {
        let mut out = Vec::new();
        if let Some(map) = n.as_map() {
            for (k, v) in map {
                let Some(key) = k.scalar() else {
                    self.err(k, format!("keys in `{what}` must be names"), None);
                    continue;
                };
                if v.is_null() {
                    // A null's mark lands on the next token: point at the key.
                    self.err(
                        k,
                        format!("`{what}.{key}` has no value"),
                        Some(format!("write `{key}: \"\"` for an empty value")),
                    );
                    continue;
                }
                if let Some(val) = self.text(v, &format!("{what}.{key}")) {
                    out.push((k, key.to_string(), val));
                }
            }
        } else if let Some(items) = n.as_seq() {
            for i in items {
                let Some(s) = self.text(i, what) else {
                    continue;
                };
                match s.split_once('=') {
                    Some((k, v)) if !k.is_empty() => out.push((i, k.to_string(), v.to_string())),
                    _ => self.err(
                        i,
                        format!("`{what}` entries must look like KEY=VALUE, found `{s}`"),
                        None,
                    ),
                }
            }
        } else if !n.is_null() {
            self.expected(n, what, "a map or a list of KEY=VALUE");
        }
        out
    }

    pub(crate) fn string_list(&mut self, n: &Node, what: &str) -> Vec<String> {
        self.string_list_at(n, what, "a list of strings")
            .into_iter()
            .map(|(_, s)| s)
            .collect()
    }

    /// A string or a list of strings (anything else: an error expecting
    /// `kind`), each with its node so a later check can point at its item.
    pub(crate) fn string_list_at<'n>(
        &mut self,
        n: &'n Node,
        what: &str,
        kind: &str,
    ) -> Vec<(&'n Node, String)> {
        if let Some(s) = n.scalar() {
            return vec![(n, s.to_string())];
        }
        let Some(items) = n.as_seq() else {
            self.expected(n, what, kind);
            return Vec::new();
        };
        items
            .iter()
            .filter_map(|i| Some((i, self.text(i, what)?)))
            .collect()
    }

    fn stack(&mut self, root: &Node, dir: &Path, file: &Path) -> Option<Stack> {
        let f = self.fields(root, "the stack", STACK_KEYS)?;
        let name = match f.get("name") {
            Some(n) => {
                let name = self.string(n, "name");
                if let Some(s) = &name {
                    if !is_dns_label(s) {
                        self.err(
                            n,
                            format!("invalid stack name `{s}`: use lowercase letters, digits and '-' (at most 63)"),
                            Some(format!("write `name: {}`", sanitize_name(s))),
                        );
                    }
                }
                name
            }
            None => {
                let guess = dir
                    .file_name()
                    .map(|d| sanitize_name(&d.to_string_lossy()))
                    .unwrap_or_else(|| "stack".into());
                self.err(
                    root,
                    "missing `name`",
                    Some(format!("add `name: {guess}` at the top")),
                );
                None
            }
        };
        let secrets = f
            .get("secrets")
            .map(|v| self.file_refs("secrets", v, dir))
            .unwrap_or_default();
        let configs = f
            .get("configs")
            .map(|v| self.file_refs("configs", v, dir))
            .unwrap_or_default();
        let pipelines = f
            .get("pipelines")
            .map(|v| self.pipelines(v, &secrets))
            .unwrap_or_default();
        let mut services = BTreeMap::new();
        // Where each dependency is written, for error positions.
        let mut dep_nodes: BTreeMap<(String, String), &Node> = BTreeMap::new();
        let mut svc_nodes: BTreeMap<String, &Node> = BTreeMap::new();
        let mut svc_values: Vec<(&str, &Node)> = Vec::new();
        if let Some(s) = f.get("services") {
            if let Some(map) = s.as_map() {
                for (k, v) in map {
                    let Some(sname) = k.scalar() else {
                        self.err(k, "service names must be strings", None);
                        continue;
                    };
                    if !is_dns_label(sname) {
                        self.err(
                            k,
                            format!("invalid service name `{sname}`: use lowercase letters, digits and '-' (at most 63)"),
                            Some(format!("rename it `{}`", sanitize_name(sname))),
                        );
                    }
                    svc_nodes.insert(sname.to_string(), k);
                    svc_values.push((sname, v));
                    if let Some((svc, deps)) = self.service(sname, k, v, dir, &secrets, &configs) {
                        for (d, n) in deps {
                            dep_nodes.insert((sname.to_string(), d), n);
                        }
                        services.insert(sname.to_string(), svc);
                    }
                }
            } else if !s.is_null() {
                self.expected(s, "services", "a map of service names to services");
            }
        }
        // Dependencies: unknown names, then cycles.
        let known: Vec<&str> = svc_nodes.keys().map(String::as_str).collect();
        for ((from, to), n) in &dep_nodes {
            if !svc_nodes.contains_key(to) {
                self.err(
                    n,
                    format!("service `{from}` depends on unknown service `{to}`"),
                    suggest(to, &known)
                        .map(|s| format!("did you mean `{s}`?"))
                        .or_else(|| Some(format!("services: {}", known.join(", ")))),
                );
            }
        }
        self.cycles(&services, &dep_nodes);
        let runtime = match f.get("runtime") {
            None => None,
            Some(v) => self.one_of(
                v,
                "runtime",
                &[
                    ("docker", RuntimeChoice::Docker),
                    ("process", RuntimeChoice::Process),
                ],
            ),
        };
        let gateway = f.get("gateway").and_then(|g| self.gateway(g));
        self.stack_routes(&mut services, &svc_values, f.get("gateway"));
        let dashboard = f.get("dashboard").and_then(|d| self.dashboard(d));
        let observe = f
            .get("observe")
            .and_then(|o| self.observe(o, dir))
            .unwrap_or_default();
        Some(Stack {
            name: name?,
            gateway,
            dashboard,
            observe,
            services,
            runtime,
            secrets,
            configs,
            pipelines,
            dir: dir.to_path_buf(),
            file: file.to_path_buf(),
        })
    }

    fn cycles(
        &mut self,
        services: &BTreeMap<String, Service>,
        dep_nodes: &BTreeMap<(String, String), &Node>,
    ) {
        for names in crate::graph::cycles(services, |s| s.depends_on.keys()) {
            let first = (names[0].to_string(), names[1].to_string());
            if let Some(n) = dep_nodes.get(&first) {
                self.err(
                    n,
                    format!("dependency cycle: {}", names.join(" -> ")),
                    Some("remove one of these `depends_on` entries".into()),
                );
            }
        }
    }

    /// One entry of a service's `ports`: `PORT[/PROTO]`, the compose short
    /// form, or `{ port, protocol, publish, host_ip }`.
    fn port_mapping(&mut self, name: &str, n: &Node) -> Option<PortMapping> {
        let what = format!("{name}.ports");
        if n.as_map().is_some() {
            let f = self.fields(n, &format!("a `{what}` entry"), PORT_KEYS)?;
            let port = match f.get("port") {
                Some(v) => self.port(v, &format!("{what}.port"))?,
                None => {
                    self.err(n, format!("a `{what}` entry needs `port`"), None);
                    return None;
                }
            };
            let protocol = match f.get("protocol").map(|v| (v, v.scalar())) {
                None => Protocol::Tcp,
                Some((v, t)) => match protocol(t.unwrap_or_default()) {
                    Ok(p) => p,
                    Err(e) => {
                        self.err(v, format!("`{what}.protocol`: {e}"), None);
                        return None;
                    }
                },
            };
            let publish = match f.get("publish") {
                Some(v) => Some(self.port(v, &format!("{what}.publish"))?),
                None => None,
            };
            let host_ip = match f.get("host_ip") {
                Some(v) => {
                    let ip = self.text(v, &format!("{what}.host_ip"))?;
                    if ip.parse::<std::net::IpAddr>().is_err() {
                        self.err(
                            v,
                            format!("`{what}.host_ip` must be an IP address, found `{ip}`"),
                            None,
                        );
                    }
                    Some(ip)
                }
                None => None,
            };
            return Some(PortMapping {
                port,
                protocol,
                publish,
                host_ip,
            });
        }
        let text = match (n.as_i64(), n.scalar()) {
            (Some(i), _) => i.to_string(),
            (None, Some(t)) => t.to_string(),
            _ => {
                self.expected(n, &what, "a port like `53/udp` or a map");
                return None;
            }
        };
        match port_text(&text) {
            Ok(p) => Some(PortMapping {
                port: p.port,
                protocol: p.protocol,
                publish: p.publish,
                host_ip: p.host_ip,
            }),
            Err(e) => {
                self.err(
                    n,
                    format!("`{what}`: {e}"),
                    Some("write `PORT[/udp]` or `[[HOST_IP:]PUBLISH:]PORT[/udp]`".into()),
                );
                None
            }
        }
    }

    /// A service's `secrets` or `configs`: names, or `{ source, target }`.
    fn file_mounts(
        &mut self,
        name: &str,
        kind: &str,
        n: &Node,
        known: &BTreeMap<String, FileRef>,
    ) -> Vec<FileMount> {
        let what = format!("{name}.{kind}");
        let Some(items) = n.as_seq() else {
            self.expected(n, &what, "a list");
            return Vec::new();
        };
        let mut out = Vec::new();
        for i in items {
            let (mut uid, mut gid, mut mode) = (None, None, None);
            let (source, target) = if let Some(src) = i.as_str() {
                (src.to_string(), None)
            } else {
                let Some(f) = self.fields(
                    i,
                    &format!("a `{what}` entry"),
                    &["source", "target", "uid", "gid", "mode"],
                ) else {
                    continue;
                };
                uid = f
                    .get("uid")
                    .and_then(|v| self.count(v, &format!("{what}.uid")));
                gid = f
                    .get("gid")
                    .and_then(|v| self.count(v, &format!("{what}.gid")));
                mode = f
                    .get("mode")
                    .and_then(|v| self.file_mode(v, &format!("{what}.mode")));
                let Some(src) = f
                    .get("source")
                    .and_then(|v| self.string(v, &format!("{what}.source")))
                else {
                    self.err(i, format!("a `{what}` entry needs `source`"), None);
                    continue;
                };
                (
                    src,
                    f.get("target")
                        .and_then(|v| self.string(v, &format!("{what}.target"))),
                )
            };
            if !known.contains_key(&source) {
                let names: Vec<&str> = known.keys().map(String::as_str).collect();
                self.err(
                    i,
                    format!("`{what}`: no {} named `{source}` in the stack", &kind[..kind.len() - 1]),
                    suggest(&source, &names)
                        .map(|s| format!("did you mean `{s}`?"))
                        .or_else(|| Some(format!("declare it at the top: `{kind}: {{ {source}: {{ file: ./{source}.txt }} }}`"))),
                );
                continue;
            }
            let target = match (target, kind) {
                (Some(t), _) if t.starts_with('/') => t,
                (Some(t), "secrets") => format!("/run/secrets/{t}"),
                (Some(t), _) => {
                    self.err(
                        i,
                        format!("`{what}`: the target must be an absolute path, found `{t}`"),
                        None,
                    );
                    continue;
                }
                (None, "secrets") => format!("/run/secrets/{source}"),
                (None, _) => format!("/{source}"),
            };
            out.push(FileMount {
                source,
                target,
                uid,
                gid,
                mode,
            });
        }
        out
    }

    /// Permission bits as octal digits, as `chmod` takes them: `0440`,
    /// `"440"` and `0o440` are all r--r-----.
    fn file_mode(&mut self, n: &Node, what: &str) -> Option<u32> {
        let text = n.scalar().unwrap_or("");
        let digits = text.strip_prefix("0o").unwrap_or(text);
        match u32::from_str_radix(digits, 8) {
            Ok(m) if !digits.is_empty() && !digits.starts_with(['+', '-']) && m <= 0o7777 => {
                Some(m)
            }
            _ => {
                self.err(
                    n,
                    format!("`{what}` must be permission bits in octal, found `{text}`"),
                    Some("write it as `chmod` takes it, e.g. `mode: \"0440\"`".into()),
                );
                None
            }
        }
    }

    /// The stack's `secrets` or `configs`: names to `{ file }`.
    fn file_refs(&mut self, kind: &str, n: &Node, dir: &Path) -> BTreeMap<String, FileRef> {
        let mut out = BTreeMap::new();
        let Some(map) = n.as_map() else {
            self.expected(n, kind, "a map of names to `{ file: PATH }`");
            return out;
        };
        for (k, v) in map {
            let Some(name) = k.scalar() else {
                self.err(k, format!("keys in `{kind}` must be names"), None);
                continue;
            };
            let Some(f) = self.fields(v, &format!("`{kind}.{name}`"), &["file"]) else {
                continue;
            };
            let Some(file) = f
                .get("file")
                .and_then(|v| self.string(v, &format!("{kind}.{name}.file")))
            else {
                self.err(v, format!("`{kind}.{name}` needs `file`"), None);
                continue;
            };
            let path = dir.join(&file);
            if !path.is_file() {
                self.err(
                    f.get("file").unwrap_or(v),
                    format!("`{kind}.{name}.file`: no file at {}", path.display()),
                    None,
                );
            }
            out.insert(name.to_string(), FileRef { file: path });
        }
        out
    }

    fn service<'n>(
        &mut self,
        name: &str,
        key: &'n Node,
        n: &'n Node,
        dir: &Path,
        known_secrets: &BTreeMap<String, FileRef>,
        known_configs: &BTreeMap<String, FileRef>,
    ) -> Option<(Service, Vec<(String, &'n Node)>)> {
        let what = format!("service `{name}`");
        let f = self.fields(n, &what, SERVICE_KEYS)?;
        let field = |k: &str| format!("{name}.{k}");
        let image = f.get("image").and_then(|v| {
            let s = self.string(v, &field("image"))?;
            if s.trim().is_empty() {
                self.err(v, format!("`{}` is empty", field("image")), None);
            }
            Some(s)
        });
        let build = f.get("build").and_then(|v| self.build(name, v, dir));
        if f.get("image").is_none() && f.get("build").is_none() {
            self.err(
                key,
                format!("service `{name}` needs `image` or `build`"),
                Some("add `image: <reference>`, or `build: { context: . }` to build one".into()),
            );
        }
        let command = f
            .get("command")
            .and_then(|v| self.argv(v, &field("command")));
        let entrypoint = f
            .get("entrypoint")
            .and_then(|v| self.argv(v, &field("entrypoint")));
        let mut env = BTreeMap::new();
        if let Some(v) = f.get("env") {
            for (_, k, val) in self.pairs(v, &field("env")) {
                env.insert(k, val);
            }
        }
        let mut env_file = Vec::new();
        if let Some(v) = f.get("env_file") {
            let entries: Vec<&Node> = match v.as_seq() {
                Some(items) => items.iter().collect(),
                None => vec![v],
            };
            for e in entries {
                let Some(p) = self.string(e, &field("env_file")) else {
                    continue;
                };
                let path = dir.join(&p);
                match std::fs::read_to_string(&path) {
                    Ok(t) => match parse_env_file_with(&t, &self.vars) {
                        Ok(pairs) => {
                            for (k, val) in pairs {
                                env.entry(k).or_insert(val);
                            }
                        }
                        Err((line, msg)) => {
                            self.err(e, format!("env file `{p}` line {line}: {msg}"), None)
                        }
                    },
                    Err(err) => self.err(
                        e,
                        format!("cannot read env file `{p}`: {err}"),
                        Some(format!("looked for {}", path.display())),
                    ),
                }
                env_file.push(path);
            }
        }
        let port = f.get("port").and_then(|v| self.port(v, &field("port")));
        let publish = f
            .get("publish")
            .and_then(|v| self.port(v, &field("publish")));
        let replicas = match f.get("replicas") {
            Some(v) => self.count(v, &field("replicas")),
            None => Some(1),
        };
        if let (Some(p), Some(r)) = (f.get("publish"), replicas) {
            if r > 1 {
                self.err(
                    p,
                    format!("`{}` needs exactly one replica, found replicas: {r}", field("publish")),
                    Some("remove `publish` and reach the replicas through the gateway, or set `replicas: 1`".into()),
                );
            }
            if port.is_none() && f.get("port").is_none() {
                self.err(
                    p,
                    format!(
                        "`{}` needs `port`, the port the process listens on",
                        field("publish")
                    ),
                    None,
                );
            }
        }
        let host_ip = f.get("host_ip").and_then(|v| {
            let ip = self.text(v, &field("host_ip"))?;
            if ip.parse::<std::net::IpAddr>().is_err() {
                self.err(
                    v,
                    format!("`{}` must be an IP address, found `{ip}`", field("host_ip")),
                    Some("write `host_ip: 0.0.0.0` to publish on every interface".into()),
                );
            }
            if f.get("publish").is_none() && f.get("port").is_none() {
                self.err(v, format!("`{}` needs `port`", field("host_ip")), None);
            }
            Some(ip)
        });
        let mut ports = Vec::new();
        if let Some(v) = f.get("ports") {
            match v.as_seq() {
                Some(items) => {
                    for i in items {
                        if let Some(p) = self.port_mapping(name, i) {
                            if p.publish.is_some() && replicas.is_some_and(|r| r > 1) {
                                self.err(
                                    i,
                                    format!(
                                        "`{}` entry with `publish` needs exactly one replica",
                                        field("ports")
                                    ),
                                    Some(
                                        "drop `publish` to get an ephemeral host port per replica"
                                            .into(),
                                    ),
                                );
                            }
                            ports.push(p);
                        }
                    }
                }
                None => self.expected(v, &field("ports"), "a list"),
            }
        }
        let mut expose = Vec::new();
        if let Some(v) = f.get("expose") {
            match v.as_seq() {
                Some(items) => {
                    for i in items {
                        let what = field("expose");
                        let parsed = match (i.as_i64(), i.scalar()) {
                            (Some(n), _) => port_number(&n.to_string()).map(|p| (p, Protocol::Tcp)),
                            (None, Some(t)) => match t.rsplit_once('/') {
                                Some((p, proto)) => {
                                    port_number(p).and_then(|p| Ok((p, protocol(proto)?)))
                                }
                                None => port_number(t).map(|p| (p, Protocol::Tcp)),
                            },
                            _ => Err(format!("expected a port, found {}", i.describe())),
                        };
                        match parsed {
                            Ok((port, protocol)) => expose.push(ExposedPort { port, protocol }),
                            Err(e) => self.err(i, format!("`{what}`: {e}"), None),
                        }
                    }
                }
                None => self.expected(v, &field("expose"), "a list"),
            }
        }
        let aliases = f
            .get("aliases")
            .map(|v| {
                let list = self.string_list(v, &field("aliases"));
                for a in &list {
                    let ok = !a.is_empty()
                        && a.len() <= 253
                        && a.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
                    if !ok {
                        self.err(
                            v,
                            format!("`{}`: `{a}` is not a host name", field("aliases")),
                            Some("use letters, digits, '-', '_' and '.'".into()),
                        );
                    }
                }
                list
            })
            .unwrap_or_default();
        let secrets = f
            .get("secrets")
            .map(|v| self.file_mounts(name, "secrets", v, known_secrets))
            .unwrap_or_default();
        let configs = f
            .get("configs")
            .map(|v| self.file_mounts(name, "configs", v, known_configs))
            .unwrap_or_default();
        // `health: none` also turns off a HEALTHCHECK the image declares.
        let health_disabled = f
            .get("health")
            .is_some_and(|v| v.scalar() == Some("none") || v.as_bool() == Some(false));
        let health = f
            .get("health")
            .filter(|_| !health_disabled)
            .and_then(|v| self.health(name, v));
        if let (Some(h), Some(hn)) = (&health, f.key("health")) {
            if h.exec.is_none() && f.get("port").is_none() {
                self.err(
                    hn,
                    format!(
                        "the {} health check of service `{name}` needs `port`",
                        if h.http.is_some() { "http" } else { "tcp" }
                    ),
                    Some("add `port: <the port the process listens on>`".into()),
                );
            }
        }
        let mut depends_on = BTreeMap::new();
        let mut deps = Vec::new();
        if let Some(v) = f.get("depends_on") {
            for (dn, dep, cond) in self.depends_on(name, v) {
                if let Some(c) = cond {
                    depends_on.insert(dep.clone(), c);
                }
                deps.push((dep, dn));
            }
        }
        let mut volumes = Vec::new();
        if let Some(v) = f.get("volumes") {
            match v.as_seq() {
                Some(items) => {
                    for i in items {
                        if let Some(m) = self.mount(name, i, dir) {
                            volumes.push(m);
                        }
                    }
                }
                None => self.expected(v, &field("volumes"), "a list"),
            }
        }
        let resources = f
            .get("resources")
            .and_then(|v| self.resources(name, v))
            .unwrap_or_default();
        let develop = f
            .get("develop")
            .map(|v| self.develop(name, v, dir))
            .unwrap_or_default();
        let security = f
            .get("security")
            .and_then(|v| self.security(name, v))
            .unwrap_or_default();
        let update = f
            .get("update")
            .and_then(|v| self.update(name, v))
            .unwrap_or_default();
        let mut replicas = replicas;
        let autoscale = f.get("autoscale").and_then(|v| {
            let a = self.autoscale(name, v)?;
            self.autoscale_fits(name, &a, v, &f, &mut replicas);
            Some(a)
        });
        let mut labels = BTreeMap::new();
        if let Some(v) = f.get("labels") {
            for (kn, k, val) in self.pairs(v, &field("labels")) {
                if k.starts_with("dev.tug.") {
                    self.err(
                        kn,
                        format!("label `{k}` uses the reserved prefix `dev.tug.`"),
                        Some("tug sets these labels itself; pick another prefix".into()),
                    );
                }
                labels.insert(k, val);
            }
        }
        let restart = match f.get("restart") {
            None => RestartPolicy::default(),
            Some(v) if v.as_bool() == Some(false) => RestartPolicy::No,
            Some(v) => self
                .one_of(
                    v,
                    &field("restart"),
                    &[
                        ("no", RestartPolicy::No),
                        ("always", RestartPolicy::Always),
                        ("on-failure", RestartPolicy::OnFailure),
                        ("unless-stopped", RestartPolicy::UnlessStopped),
                    ],
                )
                .unwrap_or_default(),
        };
        let verify = f.get("verify").and_then(|v| {
            let vf = self.fields(v, &format!("`{}`", field("verify")), &["key"])?;
            let Some(k) = vf.get("key") else {
                self.err(v, format!("`{}` needs `key`", field("verify")), Some("e.g. `verify: { key: tug.pub }`".into()));
                return None;
            };
            let key = dir.join(self.string(k, &field("verify.key"))?);
            if !key.is_file() {
                self.err(
                    k,
                    format!("no public key at {}", key.display()),
                    Some("make a key pair with `tug keygen`, or give the path of the signer's .pub file".into()),
                );
            }
            Some(crate::model::Verify { key })
        });
        let stop_grace_period = match f.get("stop_grace_period") {
            Some(v) => self
                .duration(v, &field("stop_grace_period"))
                .unwrap_or(Duration::from_secs(10)),
            None => Duration::from_secs(10),
        };
        Some((
            Service {
                image,
                build,
                command,
                entrypoint,
                env,
                env_file,
                port,
                publish,
                host_ip,
                ports,
                expose,
                aliases,
                secrets,
                configs,
                replicas: replicas.unwrap_or(1),
                health,
                health_disabled,
                depends_on,
                volumes,
                resources,
                security,
                labels,
                restart,
                stop_grace_period,
                update,
                routes: Vec::new(),
                autoscale,
                verify,
                develop,
            },
            deps,
        ))
    }

    fn update(&mut self, name: &str, n: &Node) -> Option<Update> {
        let what = format!("{name}.update");
        let f = self.fields(n, &format!("`{what}`"), UPDATE_KEYS)?;
        let mut u = Update::default();
        if let Some(v) = f.get("max_surge") {
            u.max_surge = self.count(v, &format!("{what}.max_surge")).unwrap_or(1);
        }
        if let Some(v) = f.get("max_unavailable") {
            u.max_unavailable = self
                .count(v, &format!("{what}.max_unavailable"))
                .unwrap_or(0);
        }
        if let Some(v) = f.get("health_timeout") {
            u.health_timeout = self
                .duration(v, &format!("{what}.health_timeout"))
                .unwrap_or(u.health_timeout);
        }
        if let Some(v) = f.get("auto_rollback") {
            u.auto_rollback = self
                .boolean(v, &format!("{what}.auto_rollback"))
                .unwrap_or(true);
        }
        if let Some(v) = f.get("order") {
            let orders = [
                ("start-first", UpdateOrder::StartFirst),
                ("stop-first", UpdateOrder::StopFirst),
            ];
            if let Some(o) = self.one_of(v, &format!("{what}.order"), &orders) {
                u.order = o;
            }
        }
        if u.max_surge == 0 && u.max_unavailable == 0 {
            self.err(n, format!("`{what}`: max_surge and max_unavailable cannot both be 0, or no replica could ever be replaced"), Some("set `max_surge: 1`".into()));
        }
        Some(u)
    }

    fn build(&mut self, name: &str, n: &Node, dir: &Path) -> Option<Build> {
        if let Some(ctx) = n.as_str() {
            return Some(Build {
                context: Some(dir.join(ctx)),
                dockerfile: None,
                args: BTreeMap::new(),
                target: None,
                rust: None,
            });
        }
        let what = format!("{name}.build");
        let f = self.fields(n, &format!("`{what}`"), BUILD_KEYS)?;
        let context = f
            .get("context")
            .and_then(|v| self.string(v, &format!("{what}.context")));
        let dockerfile = f
            .get("dockerfile")
            .and_then(|v| self.string(v, &format!("{what}.dockerfile")))
            .map(PathBuf::from);
        let mut args = BTreeMap::new();
        if let Some(v) = f.get("args") {
            for (_, k, val) in self.pairs(v, &format!("{what}.args")) {
                args.insert(k, val);
            }
        }
        let target = f
            .get("target")
            .and_then(|v| self.string(v, &format!("{what}.target")));
        let rust = f.get("rust").and_then(|v| self.rust(name, v, dir));
        if let Some(r) = f.key("rust") {
            if ["context", "dockerfile", "target"]
                .iter()
                .any(|k| f.get(k).is_some())
            {
                self.err(
                    r,
                    format!("`{what}` has both `rust` and a Dockerfile build"),
                    Some("keep `rust`, or `context`/`dockerfile`/`target`".into()),
                );
            }
        }
        let context = match (&rust, context) {
            (Some(_), _) => None,
            (None, Some(c)) => Some(dir.join(c)),
            (None, None) => Some(dir.to_path_buf()),
        };
        Some(Build {
            context,
            dockerfile,
            args,
            target,
            rust,
        })
    }

    fn rust(&mut self, name: &str, n: &Node, dir: &Path) -> Option<RustBuild> {
        let what = format!("{name}.build.rust");
        if let Some(p) = n.as_str() {
            return Some(RustBuild {
                package: p.to_string(),
                bin: None,
                workspace: None,
                profile: "release".into(),
            });
        }
        let f = self.fields(n, &format!("`{what}`"), RUST_KEYS)?;
        let package = match f.get("package") {
            Some(v) => self.string(v, &format!("{what}.package")),
            None => {
                self.err(
                    n,
                    format!("`{what}` needs `package`"),
                    Some("write `rust: { package: <cargo package> }`".into()),
                );
                None
            }
        };
        let bin = f
            .get("bin")
            .and_then(|v| self.string(v, &format!("{what}.bin")));
        let workspace = f
            .get("workspace")
            .and_then(|v| self.string(v, &format!("{what}.workspace")))
            .map(|w| dir.join(w));
        let profile = f
            .get("profile")
            .and_then(|v| self.string(v, &format!("{what}.profile")))
            .unwrap_or_else(|| "release".into());
        Some(RustBuild {
            package: package?,
            bin,
            workspace,
            profile,
        })
    }

    pub(crate) fn health(&mut self, name: &str, n: &Node) -> Option<Health> {
        let what = format!("{name}.health");
        let f = self.fields(n, &format!("`{what}`"), HEALTH_KEYS)?;
        let http = f.get("http").and_then(|v| {
            let p = self.string(v, &format!("{what}.http"))?;
            if !p.starts_with('/') {
                self.err(
                    v,
                    format!("`{what}.http` must be a path starting with `/`, found `{p}`"),
                    Some(format!("write `/{}`", p.trim_start_matches('/'))),
                );
            }
            Some(p)
        });
        let tcp = f
            .get("tcp")
            .and_then(|v| self.boolean(v, &format!("{what}.tcp")))
            .unwrap_or(false);
        let exec = f.get("exec").and_then(|v| {
            if let Some(s) = v.as_str() {
                Some(vec!["/bin/sh".into(), "-c".into(), s.to_string()])
            } else {
                let argv = self.argv(v, &format!("{what}.exec"))?;
                if argv.is_empty() {
                    self.err(v, format!("`{what}.exec` is empty"), None);
                }
                Some(argv)
            }
        });
        let probes: Vec<&str> = ["http", "tcp", "exec"]
            .into_iter()
            .filter(|k| match *k {
                "tcp" => tcp,
                k => f.get(k).is_some(),
            })
            .collect();
        if probes.len() > 1 {
            if let Some(second) = f.key(probes[1]) {
                self.err(
                    second,
                    format!(
                        "`{what}` has more than one probe: {}",
                        probes
                            .iter()
                            .map(|p| format!("`{p}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    Some("keep exactly one of http, tcp or exec".into()),
                );
            }
        }
        let interval = f
            .get("interval")
            .and_then(|v| self.duration(v, &format!("{what}.interval")))
            .unwrap_or(Duration::from_secs(2));
        let timeout = f
            .get("timeout")
            .and_then(|v| self.duration(v, &format!("{what}.timeout")))
            .unwrap_or(Duration::from_secs(1));
        let retries = f
            .get("retries")
            .and_then(|v| self.count(v, &format!("{what}.retries")))
            .unwrap_or(3);
        let start_period = f
            .get("start_period")
            .and_then(|v| self.duration(v, &format!("{what}.start_period")))
            .unwrap_or_default();
        Some(Health {
            http,
            tcp,
            exec,
            interval,
            timeout,
            retries,
            start_period,
        })
    }

    fn condition(&mut self, n: &Node, what: &str) -> Option<Condition> {
        if n.is_null() {
            return Some(Condition::Started);
        }
        if n.as_map().is_some() {
            let f = self.fields(n, &format!("`{what}`"), &["condition"])?;
            return match f.get("condition") {
                Some(c) => self.condition(c, what),
                None => Some(Condition::Started),
            };
        }
        match n.scalar() {
            Some("started" | "service_started") => Some(Condition::Started),
            Some("healthy" | "service_healthy") => Some(Condition::Healthy),
            Some("completed" | "service_completed_successfully") => Some(Condition::Completed),
            other => {
                let hint = other
                    .and_then(|s| suggest(s, &["started", "healthy", "completed"]))
                    .map(|s| format!("did you mean `{s}`?"));
                self.err(
                    n,
                    format!(
                        "`{what}` must be started, healthy or completed, found {}",
                        n.describe()
                    ),
                    hint,
                );
                None
            }
        }
    }

    fn depends_on<'n>(
        &mut self,
        name: &str,
        n: &'n Node,
    ) -> Vec<(&'n Node, String, Option<Condition>)> {
        let what = format!("{name}.depends_on");
        let mut out = Vec::new();
        if let Some(items) = n.as_seq() {
            for i in items {
                if let Some(d) = self.string(i, &what) {
                    out.push((i, d, Some(Condition::Started)));
                }
            }
        } else if let Some(map) = n.as_map() {
            for (k, v) in map {
                let Some(d) = k.scalar() else {
                    self.err(k, format!("keys in `{what}` must be service names"), None);
                    continue;
                };
                let c = self.condition(v, &format!("{what}.{d}"));
                out.push((k, d.to_string(), c));
            }
        } else if let Some(s) = n.as_str() {
            out.push((n, s.to_string(), Some(Condition::Started)));
        } else {
            self.expected(
                n,
                &what,
                "a list of services or a map of service: condition",
            );
        }
        out
    }

    fn mount(&mut self, name: &str, n: &Node, dir: &Path) -> Option<Mount> {
        let what = format!("{name}.volumes");
        let (source, target, read_only) = if let Some(s) = n.as_str() {
            let parts: Vec<&str> = s.split(':').collect();
            let (src, dst, mode) = match parts.as_slice() {
                [src, dst] => (*src, *dst, None),
                [src, dst, mode] => (*src, *dst, Some(*mode)),
                _ => {
                    self.err(
                        n,
                        format!("`{what}` entry `{s}` must look like SOURCE:PATH[:ro]"),
                        Some("write `data:/var/lib/x` for a named volume or `./dir:/x` for a host directory".into()),
                    );
                    return None;
                }
            };
            let read_only = match mode {
                None | Some("rw") => false,
                Some("ro") => true,
                Some(m) => {
                    self.err(
                        n,
                        format!("`{what}` entry `{s}` has an unknown mode `{m}`"),
                        Some("use `ro` or `rw`".into()),
                    );
                    false
                }
            };
            let bind = src.starts_with(['.', '/', '~']);
            (
                if bind {
                    (Some(src.to_string()), None)
                } else {
                    (None, Some(src.to_string()))
                },
                dst.to_string(),
                read_only,
            )
        } else {
            let f = self.fields(n, &format!("a `{what}` entry"), VOLUME_KEYS)?;
            let vol = f
                .get("name")
                .and_then(|v| self.string(v, &format!("{what}.name")));
            let bind = f
                .get("bind")
                .and_then(|v| self.string(v, &format!("{what}.bind")));
            let path = match f.get("path") {
                Some(v) => self.string(v, &format!("{what}.path"))?,
                None => {
                    self.err(
                        n,
                        format!("a `{what}` entry needs `path`, the path inside the container"),
                        None,
                    );
                    return None;
                }
            };
            let ro = f
                .get("read_only")
                .and_then(|v| self.boolean(v, &format!("{what}.read_only")))
                .unwrap_or(false);
            if f.get("name").is_some() == f.get("bind").is_some() {
                self.err(
                    n,
                    format!("a `{what}` entry needs exactly one of `name` (a volume) or `bind` (a host path)"),
                    None,
                );
                return None;
            }
            ((bind, vol), path, ro)
        };
        if !target.starts_with('/') {
            self.err(
                n,
                format!(
                    "`{what}`: the path inside the container must be absolute, found `{target}`"
                ),
                None,
            );
        }
        let source = match source {
            (Some(b), _) => {
                let p = if let Some(rest) = b.strip_prefix('~') {
                    match std::env::var_os("HOME") {
                        Some(h) => PathBuf::from(h).join(rest.trim_start_matches('/')),
                        None => {
                            self.err(n, format!("`{what}`: cannot expand `~` without HOME"), None);
                            return None;
                        }
                    }
                } else {
                    dir.join(b)
                };
                MountSource::Bind(p)
            }
            (None, Some(v)) => {
                let ok = v.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
                    && v.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
                if !ok {
                    self.err(
                        n,
                        format!("`{what}`: invalid volume name `{v}`"),
                        Some("use letters, digits, '_', '.' and '-'; start a host path with `./` or `/`".into()),
                    );
                }
                MountSource::Volume(v)
            }
            (None, None) => return None,
        };
        Some(Mount {
            source,
            target,
            read_only,
        })
    }

    fn resources(&mut self, name: &str, n: &Node) -> Option<Resources> {
        let what = format!("{name}.resources");
        let f = self.fields(n, &format!("`{what}`"), RESOURCE_KEYS)?;
        let mut r = Resources::default();
        if let Some(v) = f.get("cpu") {
            let cpu = match (v.as_f64(), v.scalar()) {
                (Some(c), _) => Some(c),
                (None, Some(s)) => match s.strip_suffix('m') {
                    Some(milli) => milli.parse::<u32>().ok().map(|m| f64::from(m) / 1000.0),
                    None => s.parse::<f64>().ok().filter(|c| c.is_finite()),
                },
                _ => None,
            };
            match cpu {
                Some(c) if c > 0.0 && c <= 1024.0 => r.cpu = Some(c),
                Some(c) => self.err(
                    v,
                    format!("`{what}.cpu` must be more than 0, found {c}"),
                    None,
                ),
                None => self.err(
                    v,
                    format!(
                        "`{what}.cpu` must be a number of CPUs like 0.5 or `500m`, found {}",
                        v.describe()
                    ),
                    None,
                ),
            }
        }
        if let Some(v) = f.get("memory") {
            if let Some(m) = self.size(v, &format!("{what}.memory")) {
                if m.0 < 4 << 20 {
                    self.err(
                        v,
                        format!("`{what}.memory` must be at least 4Mi, found {}", m.0),
                        Some("sizes take a unit: write `256Mi`".into()),
                    );
                }
                r.memory = m;
            }
        }
        if let Some(v) = f.get("pids") {
            if let Some(p) = self.int(v, &format!("{what}.pids")) {
                if p == 0 || p < -1 {
                    self.err(
                        v,
                        format!("`{what}.pids` must be a positive limit or -1 for none, found {p}"),
                        None,
                    );
                }
                r.pids = p;
            }
        }
        Some(r)
    }

    fn develop(&mut self, name: &str, n: &Node, dir: &Path) -> Vec<WatchRule> {
        let what = format!("{name}.develop");
        let Some(f) = self.fields(n, &format!("`{what}`"), DEVELOP_KEYS) else {
            return Vec::new();
        };
        let Some(w) = f.get("watch") else {
            return Vec::new();
        };
        let Some(items) = w.as_seq() else {
            self.expected(
                w,
                &format!("{what}.watch"),
                "a list of `{ path, action, target }`",
            );
            return Vec::new();
        };
        let mut rules = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let at = format!("{what}.watch[{i}]");
            let Some(f) = self.fields(item, &format!("`{at}`"), WATCH_KEYS) else {
                continue;
            };
            let path = match f.get("path") {
                Some(v) => self.string(v, &format!("{at}.path")),
                None => {
                    self.err(
                        item,
                        format!("`{at}` needs `path`"),
                        Some("e.g. `path: ./static`".into()),
                    );
                    None
                }
            };
            let action = match f.get("action") {
                None => {
                    self.err(
                        item,
                        format!("`{at}` needs `action`"),
                        Some("one of sync, rebuild, sync+restart".into()),
                    );
                    None
                }
                Some(v) => match v.scalar() {
                    Some("sync") => Some(WatchAction::Sync),
                    Some("rebuild") => Some(WatchAction::Rebuild),
                    Some("sync+restart") => Some(WatchAction::SyncRestart),
                    other => {
                        let hint = other
                            .and_then(|s| suggest(s, WATCH_ACTIONS))
                            .map(|s| format!("did you mean `{s}`?"));
                        self.err(
                            v,
                            format!("`{at}.action` must be one of sync, rebuild, sync+restart; found {}", v.describe()),
                            hint,
                        );
                        None
                    }
                },
            };
            let target = f.get("target").and_then(|v| {
                let t = self.string(v, &format!("{at}.target"))?;
                if !t.starts_with('/') {
                    self.err(
                        v,
                        format!("`{at}.target` must be an absolute path inside the replica"),
                        Some(format!("e.g. `/{}`", t.trim_start_matches("./"))),
                    );
                    return None;
                }
                Some(t)
            });
            if target.is_none()
                && f.get("target").is_none()
                && matches!(action, Some(WatchAction::Sync | WatchAction::SyncRestart))
            {
                self.err(
                    item,
                    format!(
                        "`{at}` syncs, so it needs `target`: where the files go inside the replica"
                    ),
                    Some("e.g. `target: /srv/static`".into()),
                );
            }
            let ignore = f
                .get("ignore")
                .map(|v| self.string_list(v, &format!("{at}.ignore")))
                .unwrap_or_default();
            if let (Some(path), Some(action)) = (path, action) {
                rules.push(WatchRule {
                    path: dir.join(path),
                    action,
                    target,
                    ignore,
                });
            }
        }
        rules
    }

    fn security(&mut self, name: &str, n: &Node) -> Option<Security> {
        let what = format!("{name}.security");
        let f = self.fields(n, &format!("`{what}`"), SECURITY_KEYS)?;
        let mut s = Security::default();
        if let Some(v) = f.get("user") {
            s.user = self.text(v, &format!("{what}.user"));
        }
        if let Some(v) = f.get("read_only") {
            s.read_only = self
                .boolean(v, &format!("{what}.read_only"))
                .unwrap_or(true);
        }
        if let Some(v) = f.get("cap_add") {
            s.cap_add = self
                .string_list(v, &format!("{what}.cap_add"))
                .into_iter()
                .map(|c| {
                    let c = c.to_ascii_uppercase();
                    c.strip_prefix("CAP_").map(str::to_string).unwrap_or(c)
                })
                .collect();
        }
        if let Some(v) = f.get("privileged") {
            s.privileged = self
                .boolean(v, &format!("{what}.privileged"))
                .unwrap_or(false);
        }
        if let Some(v) = f.get("seccomp") {
            s.seccomp = self.string(v, &format!("{what}.seccomp"));
        }
        if let Some(v) = f.get("no_new_privileges") {
            s.no_new_privileges = self
                .boolean(v, &format!("{what}.no_new_privileges"))
                .unwrap_or(true);
        }
        Some(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_file_lines() {
        let v = parse_env_file("# c\nexport A=1\nB=\"x y\"\nC='q'\nD=v # note\n\nE=\n").unwrap();
        assert_eq!(
            v,
            vec![
                ("A".into(), "1".into()),
                ("B".into(), "x y".into()),
                ("C".into(), "q".into()),
                ("D".into(), "v".into()),
                ("E".into(), "".into()),
            ]
        );
        assert_eq!(parse_env_file("A=1\nnope\n").unwrap_err().0, 2);
    }

    #[test]
    fn env_file_values_are_interpolated_as_compose_does() {
        let vars = Vars::from_pairs([("HOST", "db"), ("A", "from-env")]);
        let v = parse_env_file_with(
            "A=file\nURL=postgres://${HOST}:${PORT:-5432}/x\nB=\"$A-$$\"\nC='${HOST}'\nD=${MISSING}\nE=${A}\n",
            &vars,
        )
        .unwrap();
        let get = |k: &str| v.iter().find(|(n, _)| n == k).unwrap().1.clone();
        assert_eq!(get("URL"), "postgres://db:5432/x");
        // The environment wins over the file's own earlier lines, as in compose.
        assert_eq!(get("B"), "from-env-$");
        assert_eq!(get("C"), "${HOST}");
        assert_eq!(get("D"), "");
        let err = parse_env_file_with("X=1\nY=${NEEDED:?set NEEDED}\n", &vars).unwrap_err();
        assert_eq!(err.0, 2);
        assert!(err.1.contains("set NEEDED"), "{}", err.1);

        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("app.env"),
            "GREETING=hello ${WHO}\nFIRST=1\nSECOND=${FIRST}2\n",
        )
        .unwrap();
        let file = dir.path().join("tug.yaml");
        let stack = parse_str_with(
            "name: s\nservices:\n  web:\n    image: x:1\n    env_file: app.env\n",
            &file,
            &Vars::from_pairs([("WHO", "you")]),
        )
        .unwrap();
        let env = &stack.services["web"].env;
        assert_eq!(env["GREETING"], "hello you");
        assert_eq!(env["SECOND"], "12");
    }

    #[test]
    fn names() {
        assert!(is_dns_label("web-1"));
        assert!(!is_dns_label("Web"));
        assert!(!is_dns_label("a_b"));
        assert!(!is_dns_label("-a"));
        assert_eq!(sanitize_name("My_App"), "my-app");
        assert_eq!(sanitize_name("__"), "stack");
    }

    #[test]
    fn suggestions() {
        assert_eq!(suggest("replcias", SERVICE_KEYS), Some("replicas"));
        assert_eq!(suggest("zzzzzz", SERVICE_KEYS), None);
    }
}
