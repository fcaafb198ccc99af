//! Import of a compose file (the compose-spec subset tug can run) into tug.yaml.
//!
//! Whatever has no tug equivalent is listed in [`Import::dropped`] with the
//! reason and its position, so nothing disappears silently.
//!
//! ```
//! let compose = "services:\n  web:\n    image: nginx:1\n    ports: [\"8080:80\"]\n    container_name: w\n";
//! let out = tug_spec::compose::import(compose, "shop/compose.yaml".as_ref()).unwrap();
//! let stack = tug_spec::parse_str(&out.yaml, "shop/tug.yaml".as_ref()).unwrap();
//! assert_eq!(stack.name, "shop");
//! assert_eq!(stack.services["web"].publish, Some(8080));
//! assert_eq!(out.dropped[0].path, "services.web.container_name");
//! ```

use crate::parse::{duration, sanitize_name, Cx};
use crate::yaml::{self, Node};
use crate::SpecErrors;
use serde::Serialize;
use serde_yaml_ng::{Mapping, Value};
use std::path::Path;

/// The result of an import: tug.yaml text and what could not be carried over.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Import {
    pub yaml: String,
    pub dropped: Vec<Dropped>,
}

/// A compose key (or value) with no tug equivalent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Dropped {
    /// Dotted path in the compose file, e.g. `services.web.container_name`.
    pub path: String,
    pub reason: String,
    pub line: usize,
    pub col: usize,
}

/// Converts compose `text` (read from `file`, used for messages and the
/// default stack name) into tug.yaml.
pub fn import(text: &str, file: &Path) -> Result<Import, SpecErrors> {
    let dir = file.parent().unwrap_or(Path::new("."));
    import_to(text, file, dir)
}

/// Like [`import`], for a tug.yaml written in `out_dir`: relative paths
/// (build contexts, env files, bind mounts) are rewritten to point at the
/// same places from there.
pub fn import_to(text: &str, file: &Path, out_dir: &Path) -> Result<Import, SpecErrors> {
    let mut cx = Cx::new(file);
    let root = match yaml::parse(text) {
        Err(e) => {
            cx.at(e.line, e.col, e.message, None);
            return Err(cx.finish());
        }
        Ok((root, errs)) => {
            for e in errs {
                cx.at(e.line, e.col, e.message, None);
            }
            root
        }
    };
    let Some(root) = root else {
        cx.at(1, 1, "the compose file is empty".into(), None);
        return Err(cx.finish());
    };
    let mut imp = Importer {
        cx,
        dropped: Vec::new(),
    };
    let mut out = imp.stack(&root, file);
    if !imp.cx.errors.is_empty() {
        return Err(imp.cx.finish());
    }
    let from_dir = file.parent().unwrap_or(Path::new("."));
    rebase_paths(&mut out, &|p: &str| rebase(p, from_dir, out_dir));
    let body = serde_yaml_ng::to_string(&Value::Mapping(out)).map_err(|e| {
        SpecErrors(vec![crate::SpecError {
            file: file.to_path_buf(),
            line: 1,
            col: 1,
            message: format!("cannot render tug.yaml: {e}"),
            hint: None,
        }])
    })?;
    let from = file
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_else(|| "compose.yaml".into());
    let mut dropped = imp.dropped;
    dropped.sort_by_key(|d| (d.line, d.col));
    Ok(Import {
        yaml: format!("# Imported from {from} by `tug import compose`.\n{body}"),
        dropped,
    })
}

/// `path`, relative to `from`, as seen from `to` (lexically; absolute and
/// `~` paths are kept).
fn rebase(path: &str, from: &Path, to: &Path) -> String {
    if path.starts_with('/') || path.starts_with('~') {
        return path.to_string();
    }
    fn norm(p: &Path) -> Vec<std::ffi::OsString> {
        let abs = std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
        let mut out: Vec<std::ffi::OsString> = Vec::new();
        for c in abs.components() {
            match c {
                std::path::Component::ParentDir => {
                    out.pop();
                }
                std::path::Component::Normal(n) => out.push(n.to_os_string()),
                _ => {}
            }
        }
        out
    }
    let target = norm(&from.join(path));
    let base = norm(to);
    let common = target.iter().zip(&base).take_while(|(a, b)| a == b).count();
    let mut rel = std::path::PathBuf::new();
    for _ in common..base.len() {
        rel.push("..");
    }
    for c in &target[common..] {
        rel.push(c);
    }
    let rel = rel.to_string_lossy().into_owned();
    if rel.is_empty() {
        ".".into()
    } else if rel.starts_with("..") {
        rel
    } else {
        format!("./{rel}")
    }
}

/// Applies `f` to every path the generated services hold.
fn rebase_paths(stack: &mut Mapping, f: &dyn Fn(&str) -> String) {
    let Some(Value::Mapping(services)) = stack.get_mut("services") else {
        return;
    };
    for (_, svc) in services.iter_mut() {
        let Value::Mapping(svc) = svc else { continue };
        match svc.get_mut("build") {
            Some(Value::String(ctx)) => *ctx = f(ctx),
            Some(Value::Mapping(b)) => {
                if let Some(Value::String(ctx)) = b.get_mut("context") {
                    *ctx = f(ctx);
                }
            }
            _ => {}
        }
        if let Some(Value::Sequence(files)) = svc.get_mut("env_file") {
            for file in files.iter_mut() {
                if let Value::String(p) = file {
                    *p = f(p);
                }
            }
        }
        if let Some(Value::Sequence(vols)) = svc.get_mut("volumes") {
            for v in vols.iter_mut() {
                if let Value::String(spec) = v {
                    if spec.starts_with('.') {
                        if let Some((src, rest)) = spec.split_once(':') {
                            *spec = format!("{}:{rest}", f(src));
                        }
                    }
                }
            }
        }
    }
}

struct Importer<'f> {
    cx: Cx<'f>,
    dropped: Vec<Dropped>,
}

fn s(v: impl Into<String>) -> Value {
    Value::String(v.into())
}

/// Keys of a tug service, in the order they are written out.
const ORDER: &[&str] = crate::parse::SERVICE_KEYS;

/// One published port: `8080:80`, `127.0.0.1:8080:80/tcp`, `80`, or the long form.
#[derive(Debug)]
struct PortSpec {
    host: Option<u16>,
    container: u16,
    proto: String,
}

fn parse_port(n: &Node) -> Result<PortSpec, String> {
    if let Some(i) = n.as_i64() {
        return u16::try_from(i)
            .ok()
            .filter(|p| *p > 0)
            .map(|container| PortSpec {
                host: None,
                container,
                proto: "tcp".into(),
            })
            .ok_or_else(|| format!("invalid port {i}"));
    }
    if n.as_map().is_some() {
        let num = |k: &str| -> Result<Option<u16>, String> {
            match n.get(k) {
                None => Ok(None),
                Some(v) => v
                    .scalar()
                    .and_then(|t| t.parse::<u16>().ok())
                    .filter(|p| *p > 0)
                    .map(Some)
                    .ok_or_else(|| format!("invalid `{k}` {}", v.describe())),
            }
        };
        let container = num("target")?.ok_or("a port needs `target`")?;
        return Ok(PortSpec {
            host: num("published")?,
            container,
            proto: n
                .get("protocol")
                .and_then(Node::scalar)
                .unwrap_or("tcp")
                .to_string(),
        });
    }
    let text = n.scalar().ok_or("a port must be a string or a number")?;
    let (spec, proto) = text.split_once('/').unwrap_or((text, "tcp"));
    let parts: Vec<&str> = spec.rsplitn(3, ':').collect();
    let num = |t: &str| -> Result<u16, String> {
        if t.contains('-') {
            return Err(format!("port ranges (`{t}`) are not supported"));
        }
        t.parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| format!("invalid port `{t}`"))
    };
    let container = num(parts[0])?;
    let host = match parts.get(1) {
        Some(h) if !h.is_empty() => Some(num(h)?),
        _ => None,
    };
    Ok(PortSpec {
        host,
        container,
        proto: proto.to_string(),
    })
}

/// A docker-style size (binary units, `512m`, `1g`) in tug's notation.
fn docker_size(text: &str) -> Option<String> {
    let t = text.trim().to_ascii_lowercase();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let n: f64 = t[..split].parse().ok()?;
    let mult: f64 = match t[split..].trim() {
        "" | "b" => 1.0,
        "k" | "kb" | "kib" => 1024.0,
        "m" | "mb" | "mib" => 1024.0 * 1024.0,
        "g" | "gb" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "t" | "tb" | "tib" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    let bytes = n * mult;
    if !bytes.is_finite() || bytes < 0.0 || bytes >= u64::MAX as f64 {
        return None;
    }
    Some(crate::ByteSize(bytes as u64).to_string())
}

/// Turns a compose health test into tug's probe: `http: /path` when the test
/// is a curl/wget of localhost (FROM-scratch images have neither), else exec.
enum Probe {
    /// `original` is the test as a command, kept when the port does not match the service's.
    Http {
        path: String,
        port: u16,
        original: Value,
    },
    Exec(Vec<String>),
    Shell(String),
    Disabled,
}

fn http_probe(argv: &[String]) -> Option<(String, u16)> {
    let tool = argv.first()?.rsplit('/').next()?;
    if tool != "curl" && tool != "wget" {
        return None;
    }
    // Allow a trailing `|| exit 1`, nothing else after the command.
    let end = argv.iter().position(|a| a == "||").unwrap_or(argv.len());
    if end < argv.len() && !(argv.len() == end + 3 && argv[end + 1] == "exit") {
        return None;
    }
    if argv[..end].iter().any(|a| {
        matches!(
            a.as_str(),
            "&&" | ";" | "|" | "-X" | "--request" | "-d" | "--data" | "--post-data"
        )
    }) {
        return None;
    }
    let urls: Vec<&String> = argv[1..end]
        .iter()
        .filter(|a| a.starts_with("http://") || a.starts_with("https://"))
        .collect();
    let [url] = urls.as_slice() else {
        return None;
    };
    let rest = url.strip_prefix("http://")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) => (h, p.parse::<u16>().ok()?),
        None => (authority, 80),
    };
    if !matches!(host, "localhost" | "127.0.0.1" | "0.0.0.0" | "[::1]") {
        return None;
    }
    Some((path.to_string(), port))
}

fn probe(test: &Node) -> Result<Probe, String> {
    let items: Vec<String> = match (test.as_seq(), test.scalar()) {
        (Some(items), _) => items
            .iter()
            .map(|i| {
                i.scalar()
                    .map(str::to_string)
                    .ok_or("test entries must be strings")
            })
            .collect::<Result<_, _>>()?,
        (None, Some(sh)) => vec!["CMD-SHELL".into(), sh.to_string()],
        _ => return Err("`test` must be a string or a list".into()),
    };
    let (kind, args) = items.split_first().ok_or("`test` is empty")?;
    match kind.as_str() {
        "NONE" => Ok(Probe::Disabled),
        "CMD" => Ok(match http_probe(args) {
            Some((path, port)) => Probe::Http {
                path,
                port,
                original: Value::Sequence(args.iter().cloned().map(s).collect()),
            },
            None => Probe::Exec(args.to_vec()),
        }),
        "CMD-SHELL" => {
            let sh = args.join(" ");
            Ok(match shlex::split(&sh).as_deref().and_then(http_probe) {
                Some((path, port)) => Probe::Http {
                    path,
                    port,
                    original: s(sh),
                },
                None => Probe::Shell(sh),
            })
        }
        other => Err(format!(
            "unknown test kind `{other}` (CMD, CMD-SHELL or NONE)"
        )),
    }
}

impl Importer<'_> {
    fn drop(&mut self, path: impl Into<String>, n: &Node, reason: impl Into<String>) {
        self.dropped.push(Dropped {
            path: path.into(),
            reason: reason.into(),
            line: n.line,
            col: n.col,
        });
    }

    /// The entries of a map, or an error when `n` is not one.
    fn entries<'n>(&mut self, n: &'n Node, what: &str) -> Vec<(&'n str, &'n Node, &'n Node)> {
        match n.as_map() {
            Some(m) => m
                .iter()
                .filter_map(|(k, v)| match k.scalar() {
                    Some(name) => Some((name, k, v)),
                    None => {
                        self.cx
                            .err(k, format!("keys in `{what}` must be names"), None);
                        None
                    }
                })
                .collect(),
            None => {
                if !n.is_null() {
                    self.cx.err(
                        n,
                        format!("`{what}` must be a map, found {}", n.describe()),
                        None,
                    );
                }
                Vec::new()
            }
        }
    }

    fn stack(&mut self, root: &Node, file: &Path) -> Mapping {
        let mut out = Mapping::new();
        let dir_name = std::path::absolute(file)
            .ok()
            .and_then(|p| {
                p.parent()
                    .and_then(|d| d.file_name())
                    .map(|n| n.to_string_lossy().into_owned())
            })
            .unwrap_or_else(|| "stack".into());
        let mut name = sanitize_name(&dir_name);
        let mut services = Mapping::new();
        let top = self.entries(root, "the compose file");
        if !top.iter().any(|(k, _, _)| *k == "services") {
            self.cx
                .err(root, "the compose file has no `services`", None);
        }
        // Compose names may hold '_' or capitals; tug's are DNS labels.
        let mut renames: Vec<(String, String)> = Vec::new();
        if let Some((_, _, svcs)) = top.iter().find(|(k, _, _)| *k == "services") {
            for (sname, _, _) in self.entries(svcs, "services") {
                renames.push((sname.to_string(), sanitize_name(sname)));
            }
        }
        for (key, kn, v) in &top {
            match *key {
                "name" => match v.scalar() {
                    Some(n) => {
                        name = sanitize_name(n);
                        if name != n {
                            self.drop("name", kn, format!("renamed to `{name}`: stack names are lowercase letters, digits and '-'"));
                        }
                    }
                    None => self.cx.err(v, "`name` must be a string", None),
                },
                "services" => {
                    for (sname, skn, sv) in self.entries(v, "services") {
                        let tname = sanitize_name(sname);
                        if tname != sname {
                            self.drop(
                                format!("services.{sname}"),
                                skn,
                                format!("renamed to `{tname}`: service names are lowercase letters, digits and '-'"),
                            );
                        }
                        if let Some(svc) = self.service(sname, sv, &renames) {
                            services.insert(s(tname), Value::Mapping(svc));
                        }
                    }
                }
                "volumes" => {
                    for (vname, _, vv) in self.entries(v, "volumes") {
                        for (opt, okn, _) in self.entries(vv, &format!("volumes.{vname}")) {
                            self.drop(
                                format!("volumes.{vname}.{opt}"),
                                okn,
                                "tug creates named volumes itself, owned by the stack",
                            );
                        }
                    }
                }
                "networks" => {
                    for (net, nkn, _) in self.entries(v, "networks") {
                        self.drop(
                            format!("networks.{net}"),
                            nkn,
                            "tug puts every service of a stack on one network",
                        );
                    }
                }
                "version" => self.drop("version", kn, "obsolete in the compose spec"),
                k if k.starts_with("x-") => {}
                k => self.drop(k, kn, "not supported by tug"),
            }
        }
        out.insert(s("name"), s(name));
        out.insert(s("services"), Value::Mapping(services));
        out
    }

    fn service(&mut self, name: &str, n: &Node, renames: &[(String, String)]) -> Option<Mapping> {
        let p = |k: &str| format!("services.{name}.{k}");
        let entries = self.entries(n, &format!("services.{name}"));
        n.as_map()?;
        let get = |k: &str| entries.iter().find(|(e, _, _)| *e == k).map(|(_, _, v)| *v);
        let mut out: Vec<(&str, Value)> = Vec::new();
        let mut resources = Mapping::new();
        let mut security = Mapping::new();
        let mut env = Mapping::new();
        let mut health = Mapping::new();

        // Replicas first: `publish` depends on it.
        let mut replicas: i64 = 1;
        if let Some(d) = get("deploy").and_then(|d| d.get("replicas")) {
            match d.as_i64() {
                Some(r) if r >= 0 => replicas = r,
                _ => self.cx.err(
                    d,
                    format!("`{}` must be a whole number", p("deploy.replicas")),
                    None,
                ),
            }
        } else if let Some(sc) = get("scale") {
            match sc.as_i64() {
                Some(r) if r >= 0 => replicas = r,
                _ => self
                    .cx
                    .err(sc, format!("`{}` must be a whole number", p("scale")), None),
            }
        }
        if replicas != 1 {
            out.push(("replicas", Value::Number(replicas.into())));
        }
        let mut port: Option<u16> = None;

        for (key, kn, v) in &entries {
            let (key, kn, v) = (*key, *kn, *v);
            match key {
                "image" => match v.scalar() {
                    Some(i) => out.push(("image", s(i))),
                    None => self
                        .cx
                        .err(v, format!("`{}` must be a string", p("image")), None),
                },
                "build" => {
                    if let Some(b) = self.build(name, v) {
                        out.push(("build", b));
                    }
                }
                "command" | "entrypoint" => {
                    if let Some(argv) = self.cx.argv(v, &p(key)) {
                        out.push((key, Value::Sequence(argv.into_iter().map(s).collect())));
                    }
                }
                "environment" => {
                    if let Some(items) = v.as_seq() {
                        for i in items {
                            match i.scalar().map(|t| t.split_once('=')) {
                                Some(Some((k, val))) => {
                                    env.insert(s(k), s(val));
                                }
                                _ => self.drop(
                                    p("environment"),
                                    i,
                                    format!("{} takes its value from the shell in compose; set it in tug.yaml or an env_file", i.describe()),
                                ),
                            }
                        }
                    } else {
                        for (k, kn, val) in self.entries(v, &p("environment")) {
                            match val.scalar() {
                                Some(t) => {
                                    env.insert(s(k), s(t));
                                }
                                None => self.drop(
                                    format!("{}.{k}", p("environment")),
                                    kn,
                                    "takes its value from the shell in compose; set it in tug.yaml or an env_file",
                                ),
                            }
                        }
                    }
                }
                "env_file" => {
                    let items: Vec<&Node> = match v.as_seq() {
                        Some(items) => items.iter().collect(),
                        None => vec![v],
                    };
                    let mut files = Vec::new();
                    for i in items {
                        let path = i.scalar().or_else(|| i.get("path").and_then(Node::scalar));
                        match path {
                            Some(f) => files.push(s(f)),
                            None => self.cx.err(
                                i,
                                format!("`{}` entries must be paths", p("env_file")),
                                None,
                            ),
                        }
                        if i.get("required").and_then(Node::as_bool) == Some(false) {
                            self.drop(
                                p("env_file.required"),
                                i,
                                "tug requires every env_file to exist",
                            );
                        }
                    }
                    out.push(("env_file", Value::Sequence(files)));
                }
                "ports" => {
                    let Some(items) = v.as_seq() else {
                        self.cx
                            .err(v, format!("`{}` must be a list", p("ports")), None);
                        continue;
                    };
                    for (idx, i) in items.iter().enumerate() {
                        let ip = format!("{}[{idx}]", p("ports"));
                        match parse_port(i) {
                            Err(e) => self.drop(ip, i, e),
                            Ok(ps) if ps.proto != "tcp" => {
                                self.drop(ip, i, format!("tug serves TCP only, not {}", ps.proto))
                            }
                            Ok(ps) => match port {
                                Some(kept) => self.drop(
                                    ip,
                                    i,
                                    format!("a tug service listens on one port: kept {kept}"),
                                ),
                                None => {
                                    port = Some(ps.container);
                                    if let Some(h) = ps.host {
                                        if replicas == 1 {
                                            out.push(("publish", Value::Number(h.into())));
                                        } else {
                                            self.drop(
                                                ip,
                                                i,
                                                format!("host port {h} needs one replica; tug balances {replicas} replicas through its gateway"),
                                            );
                                        }
                                    }
                                }
                            },
                        }
                    }
                }
                "expose" => {
                    // Only used when `ports` gives no port.
                    if get("ports").is_none() {
                        for (idx, i) in v.as_seq().unwrap_or_default().iter().enumerate() {
                            let ip = format!("{}[{idx}]", p("expose"));
                            match (port, parse_port(i)) {
                                (None, Ok(ps)) => port = Some(ps.container),
                                (Some(kept), Ok(_)) => self.drop(
                                    ip,
                                    i,
                                    format!("a tug service listens on one port: kept {kept}"),
                                ),
                                (_, Err(e)) => self.drop(ip, i, e),
                            }
                        }
                    } else {
                        self.drop(p("expose"), kn, "the port comes from `ports`");
                    }
                }
                "volumes" => {
                    let vols = self.volumes(name, v);
                    if !vols.is_empty() {
                        out.push(("volumes", Value::Sequence(vols)));
                    }
                }
                "depends_on" => {
                    if let Some(d) = self.depends_on(name, v, renames) {
                        out.push(("depends_on", d));
                    }
                }
                "healthcheck" => {
                    for (hk, hkn, hv) in self.entries(v, &p("healthcheck")) {
                        let hp = format!("{}.{hk}", p("healthcheck"));
                        match hk {
                            "test" => match probe(hv) {
                                Ok(Probe::Http {
                                    path,
                                    port: hport,
                                    original,
                                }) => {
                                    health.insert(s("http"), s(path));
                                    health.insert(s("__port"), Value::Number(hport.into()));
                                    health.insert(s("__original"), original);
                                }
                                Ok(Probe::Exec(argv)) => {
                                    health.insert(
                                        s("exec"),
                                        Value::Sequence(argv.into_iter().map(s).collect()),
                                    );
                                }
                                Ok(Probe::Shell(sh)) => {
                                    health.insert(s("exec"), s(sh));
                                }
                                Ok(Probe::Disabled) => {
                                    health.insert(s("__disabled"), Value::Bool(true));
                                }
                                Err(e) => self.cx.err(hv, format!("`{hp}`: {e}"), None),
                            },
                            "interval" | "timeout" | "start_period" => {
                                match hv.scalar().map(duration) {
                                    Some(Ok(d)) => {
                                        health.insert(s(hk), s(d.to_string()));
                                    }
                                    _ => self.drop(
                                        hp,
                                        hv,
                                        format!(
                                            "{} is not a duration tug reads (like `2s` or `1m30s`)",
                                            hv.describe()
                                        ),
                                    ),
                                }
                            }
                            "retries" => match hv.as_i64() {
                                Some(r) if r >= 0 => {
                                    health.insert(s("retries"), Value::Number(r.into()));
                                }
                                _ => {
                                    self.cx
                                        .err(hv, format!("`{hp}` must be a whole number"), None)
                                }
                            },
                            "disable" => {
                                if hv.as_bool() == Some(true) {
                                    health.insert(s("__disabled"), Value::Bool(true));
                                }
                            }
                            _ => self.drop(hp, hkn, "not supported by tug's health checks"),
                        }
                    }
                }
                "deploy" => self.deploy(name, v, &mut resources, &mut out),
                "mem_limit" => match v.scalar().and_then(docker_size) {
                    Some(m) => {
                        resources.insert(s("memory"), s(m));
                    }
                    None => self.drop(p(key), v, format!("{} is not a size", v.describe())),
                },
                "cpus" => match v.scalar() {
                    Some(c) if c.parse::<f64>().is_ok_and(|c| c > 0.0) => {
                        resources.insert(s("cpu"), cpu_value(c));
                    }
                    _ => self.drop(
                        p(key),
                        v,
                        format!("{} is not a number of CPUs", v.describe()),
                    ),
                },
                "pids_limit" => match v.as_i64() {
                    Some(l) => {
                        resources.insert(s("pids"), Value::Number(l.into()));
                    }
                    None => self.drop(p(key), v, "not a whole number"),
                },
                "user" => match v.scalar() {
                    Some(u) => {
                        security.insert(s("user"), s(u));
                    }
                    None => self
                        .cx
                        .err(v, format!("`{}` must be a string", p("user")), None),
                },
                "read_only" | "privileged" => match v.as_bool() {
                    Some(b) => {
                        security.insert(s(key), Value::Bool(b));
                    }
                    None => self
                        .cx
                        .err(v, format!("`{}` must be true or false", p(key)), None),
                },
                "cap_add" => {
                    let caps: Vec<Value> = v
                        .as_seq()
                        .unwrap_or_default()
                        .iter()
                        .filter_map(Node::scalar)
                        .map(s)
                        .collect();
                    if !caps.is_empty() {
                        security.insert(s("cap_add"), Value::Sequence(caps));
                    }
                }
                "cap_drop" => {
                    for i in v.as_seq().unwrap_or_default() {
                        if i.scalar() != Some("ALL") {
                            self.drop(
                                p("cap_drop"),
                                i,
                                format!("{}: tug drops every capability already", i.describe()),
                            );
                        }
                    }
                }
                "security_opt" => {
                    for i in v.as_seq().unwrap_or_default() {
                        let opt = i.scalar().unwrap_or_default();
                        let (k, val) = opt.split_once([':', '=']).unwrap_or((opt, "true"));
                        match (k, val) {
                            ("no-new-privileges", "true") => {}
                            ("no-new-privileges", "false") => {
                                security.insert(s("no_new_privileges"), Value::Bool(false));
                            }
                            ("seccomp", profile) => {
                                security.insert(s("seccomp"), s(profile));
                            }
                            _ => self.drop(
                                p("security_opt"),
                                i,
                                format!("{}: not supported by tug", i.describe()),
                            ),
                        }
                    }
                }
                "restart" => match v.scalar() {
                    Some(r @ ("no" | "always" | "unless-stopped" | "on-failure")) => {
                        out.push(("restart", s(r)));
                    }
                    Some(r) if r.starts_with("on-failure:") => {
                        out.push(("restart", s("on-failure")));
                        self.drop(p("restart"), v, "tug retries without a maximum count");
                    }
                    _ => self.drop(
                        p("restart"),
                        v,
                        format!("unknown restart policy {}", v.describe()),
                    ),
                },
                "labels" => {
                    let mut labels = Mapping::new();
                    for (ln, k, val) in self.cx.pairs(v, &p("labels")) {
                        if k.starts_with("dev.tug.") {
                            self.drop(
                                format!("{}.{k}", p("labels")),
                                ln,
                                "the `dev.tug.` prefix is reserved for tug",
                            );
                        } else {
                            labels.insert(s(k), s(val));
                        }
                    }
                    if !labels.is_empty() {
                        out.push(("labels", Value::Mapping(labels)));
                    }
                }
                "stop_grace_period" => match v.scalar().map(duration) {
                    Some(Ok(d)) => out.push(("stop_grace_period", s(d.to_string()))),
                    _ => self.drop(
                        p(key),
                        v,
                        format!("{} is not a duration tug reads", v.describe()),
                    ),
                },
                "networks" => {
                    let names: Vec<(&str, &Node)> = match v.as_seq() {
                        Some(items) => items
                            .iter()
                            .filter_map(|i| i.scalar().map(|n| (n, i)))
                            .collect(),
                        None => self
                            .entries(v, &p("networks"))
                            .into_iter()
                            .map(|(k, kn, _)| (k, kn))
                            .collect(),
                    };
                    for (net, nn) in names {
                        if net != "default" {
                            self.drop(
                                format!("{}.{net}", p("networks")),
                                nn,
                                "tug puts every service of a stack on one network",
                            );
                        }
                    }
                }
                "scale" => {}
                "container_name" => self.drop(
                    p(key),
                    kn,
                    "tug names containers <stack>-<service>-<replica>",
                ),
                "hostname" | "links" | "external_links" => {
                    self.drop(p(key), kn, "services reach each other by service name")
                }
                "tmpfs" => self.drop(p(key), kn, "tmpfs mounts are not supported"),
                k if k.starts_with("x-") => {}
                _ => self.drop(p(key), kn, "not supported by tug"),
            }
        }
        if !env.is_empty() {
            out.push(("env", Value::Mapping(env)));
        }
        // The health probe may decide the port.
        let disabled = health.remove("__disabled").is_some();
        let original = health.remove("__original");
        if let Some(hport) = health.remove("__port") {
            let hport = hport.as_u64().unwrap_or(80) as u16;
            match port {
                None => port = Some(hport),
                Some(p) if p != hport => {
                    // The check targets another port than the service's: keep it as a command.
                    health.remove("http");
                    if let Some(o) = original {
                        health.insert(s("exec"), o);
                    }
                }
                _ => {}
            }
        }
        if !disabled && (health.contains_key("http") || health.contains_key("exec")) {
            let mut ordered = Mapping::new();
            for k in [
                "http",
                "exec",
                "interval",
                "timeout",
                "retries",
                "start_period",
            ] {
                if let Some(v) = health.get(k) {
                    ordered.insert(s(k), v.clone());
                }
            }
            out.push(("health", Value::Mapping(ordered)));
        }
        if let Some(pt) = port {
            out.push(("port", Value::Number(pt.into())));
        }
        if !resources.is_empty() {
            out.push(("resources", Value::Mapping(resources)));
        }
        if !security.is_empty() {
            out.push(("security", Value::Mapping(security)));
        }
        let mut svc = Mapping::new();
        for k in ORDER {
            if let Some((_, v)) = out.iter().find(|(o, _)| o == k) {
                svc.insert(s(*k), v.clone());
            }
        }
        Some(svc)
    }

    fn build(&mut self, name: &str, v: &Node) -> Option<Value> {
        if let Some(ctx) = v.scalar() {
            return Some(s(ctx));
        }
        let bp = format!("services.{name}.build");
        let mut b = Mapping::new();
        for (k, kn, bv) in self.entries(v, &bp) {
            match k {
                "context" | "dockerfile" | "target" => match bv.scalar() {
                    Some(t) => {
                        b.insert(s(k), s(t));
                    }
                    None => self
                        .cx
                        .err(bv, format!("`{bp}.{k}` must be a string"), None),
                },
                "args" => {
                    let mut args = Mapping::new();
                    if let Some(items) = bv.as_seq() {
                        for i in items {
                            match i.scalar().map(|t| t.split_once('=')) {
                                Some(Some((ak, av))) => {
                                    args.insert(s(ak), s(av));
                                }
                                _ => self.drop(
                                    format!("{bp}.args"),
                                    i,
                                    format!(
                                        "{} takes its value from the shell in compose",
                                        i.describe()
                                    ),
                                ),
                            }
                        }
                    } else {
                        for (ak, akn, av) in self.entries(bv, &format!("{bp}.args")) {
                            match av.scalar() {
                                Some(t) => {
                                    args.insert(s(ak), s(t));
                                }
                                None => self.drop(
                                    format!("{bp}.args.{ak}"),
                                    akn,
                                    "takes its value from the shell in compose",
                                ),
                            }
                        }
                    }
                    if !args.is_empty() {
                        b.insert(s("args"), Value::Mapping(args));
                    }
                }
                _ => self.drop(format!("{bp}.{k}"), kn, "not supported by tug's build"),
            }
        }
        if b.is_empty() {
            b.insert(s("context"), s("."));
        }
        Some(Value::Mapping(b))
    }

    fn volumes(&mut self, name: &str, v: &Node) -> Vec<Value> {
        let vp = format!("services.{name}.volumes");
        let Some(items) = v.as_seq() else {
            self.cx.err(v, format!("`{vp}` must be a list"), None);
            return Vec::new();
        };
        let mut out = Vec::new();
        for (idx, i) in items.iter().enumerate() {
            let ip = format!("{vp}[{idx}]");
            let (src, dst, ro) = if let Some(t) = i.scalar() {
                let parts: Vec<&str> = t.split(':').collect();
                match parts.as_slice() {
                    [_] => {
                        self.drop(ip, i, "anonymous volumes are not supported: give it a name, like `data:/path`");
                        continue;
                    }
                    [src, dst] => (src.to_string(), dst.to_string(), false),
                    [src, dst, mode] => (
                        src.to_string(),
                        dst.to_string(),
                        mode.split(',').any(|m| m == "ro"),
                    ),
                    _ => {
                        self.drop(ip, i, "not a SOURCE:PATH[:MODE] volume");
                        continue;
                    }
                }
            } else {
                let kind = i.get("type").and_then(Node::scalar).unwrap_or("volume");
                let src = i.get("source").and_then(Node::scalar);
                let dst = i.get("target").and_then(Node::scalar);
                let ro = i.get("read_only").and_then(Node::as_bool).unwrap_or(false);
                match (kind, src, dst) {
                    ("volume" | "bind", Some(src), Some(dst)) => {
                        let src = if kind == "bind" && !src.starts_with(['.', '/', '~']) {
                            format!("./{src}")
                        } else {
                            src.to_string()
                        };
                        (src, dst.to_string(), ro)
                    }
                    ("volume", None, Some(_)) => {
                        self.drop(
                            ip,
                            i,
                            "anonymous volumes are not supported: give it a `source`",
                        );
                        continue;
                    }
                    (k, _, _) => {
                        self.drop(ip, i, format!("`{k}` mounts are not supported"));
                        continue;
                    }
                }
            };
            out.push(s(if ro {
                format!("{src}:{dst}:ro")
            } else {
                format!("{src}:{dst}")
            }));
        }
        out
    }

    fn depends_on(&mut self, name: &str, v: &Node, renames: &[(String, String)]) -> Option<Value> {
        let dp = format!("services.{name}.depends_on");
        let rename = |d: &str| {
            renames
                .iter()
                .find(|(from, _)| from == d)
                .map(|(_, to)| to.clone())
                .unwrap_or_else(|| sanitize_name(d))
        };
        if let Some(items) = v.as_seq() {
            let names: Vec<Value> = items
                .iter()
                .filter_map(Node::scalar)
                .map(|d| s(rename(d)))
                .collect();
            return Some(Value::Sequence(names));
        }
        let mut m = Mapping::new();
        for (d, _, dv) in self.entries(v, &dp) {
            let cond = match dv
                .get("condition")
                .and_then(Node::scalar)
                .or_else(|| dv.scalar())
            {
                None | Some("service_started") | Some("started") => "started",
                Some("service_healthy") | Some("healthy") => "healthy",
                Some("service_completed_successfully") | Some("completed") => "completed",
                Some(other) => {
                    self.cx
                        .err(dv, format!("`{dp}.{d}`: unknown condition `{other}`"), None);
                    "started"
                }
            };
            for (extra, ekn, _) in self.entries(dv, &format!("{dp}.{d}")) {
                if extra != "condition" {
                    self.drop(format!("{dp}.{d}.{extra}"), ekn, "not supported by tug");
                }
            }
            m.insert(s(rename(d)), s(cond));
        }
        Some(Value::Mapping(m))
    }

    fn deploy(
        &mut self,
        name: &str,
        v: &Node,
        resources: &mut Mapping,
        out: &mut Vec<(&str, Value)>,
    ) {
        let dp = format!("services.{name}.deploy");
        for (k, kn, dv) in self.entries(v, &dp) {
            match k {
                "replicas" => {}
                "resources" => {
                    for (rk, rkn, rv) in self.entries(dv, &format!("{dp}.resources")) {
                        if rk != "limits" {
                            self.drop(format!("{dp}.resources.{rk}"), rkn, "tug sets limits only");
                            continue;
                        }
                        for (lk, lkn, lv) in self.entries(rv, &format!("{dp}.resources.limits")) {
                            let lp = format!("{dp}.resources.limits.{lk}");
                            match lk {
                                "cpus" => match lv.scalar() {
                                    Some(c) if c.parse::<f64>().is_ok_and(|c| c > 0.0) => {
                                        resources.insert(s("cpu"), cpu_value(c));
                                    }
                                    _ => self.drop(
                                        lp,
                                        lv,
                                        format!("{} is not a number of CPUs", lv.describe()),
                                    ),
                                },
                                "memory" => match lv.scalar().and_then(docker_size) {
                                    Some(m) => {
                                        resources.insert(s("memory"), s(m));
                                    }
                                    None => self.drop(
                                        lp,
                                        lv,
                                        format!("{} is not a size", lv.describe()),
                                    ),
                                },
                                "pids" => match lv.as_i64() {
                                    Some(n) => {
                                        resources.insert(s("pids"), Value::Number(n.into()));
                                    }
                                    None => self.drop(lp, lv, "not a whole number"),
                                },
                                _ => self.drop(lp, lkn, "not supported by tug"),
                            }
                        }
                    }
                }
                "restart_policy" => {
                    for (rk, rkn, rv) in self.entries(dv, &format!("{dp}.restart_policy")) {
                        match (rk, rv.scalar()) {
                            ("condition", Some(c)) => {
                                let r = match c {
                                    "none" => "no",
                                    "on-failure" => "on-failure",
                                    _ => "always",
                                };
                                if !out.iter().any(|(o, _)| *o == "restart") {
                                    out.push(("restart", s(r)));
                                }
                            }
                            _ => self.drop(
                                format!("{dp}.restart_policy.{rk}"),
                                rkn,
                                "not supported by tug",
                            ),
                        }
                    }
                }
                _ => self.drop(format!("{dp}.{k}"), kn, "not supported by tug"),
            }
        }
    }
}

fn cpu_value(c: &str) -> Value {
    match c.parse::<f64>() {
        Ok(f) => Value::Number(f.into()),
        Err(_) => s(c),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports() {
        let (root, _) =
            yaml::parse("[\"8080:80\", 80, \"127.0.0.1:9000:90/udp\", \"3000-3005\"]").unwrap();
        let items = root.unwrap();
        let items = items.as_seq().unwrap();
        let p = parse_port(&items[0]).unwrap();
        assert_eq!((p.host, p.container), (Some(8080), 80));
        assert_eq!(parse_port(&items[1]).unwrap().container, 80);
        let p = parse_port(&items[2]).unwrap();
        assert_eq!(
            (p.host, p.container, p.proto.as_str()),
            (Some(9000), 90, "udp")
        );
        assert!(parse_port(&items[3]).unwrap_err().contains("ranges"));
    }

    #[test]
    fn sizes() {
        assert_eq!(docker_size("512m").as_deref(), Some("512Mi"));
        assert_eq!(docker_size("1G").as_deref(), Some("1Gi"));
        assert_eq!(docker_size("1.5g").as_deref(), Some("1536Mi"));
        assert_eq!(docker_size("lots"), None);
    }

    #[test]
    fn http_probes() {
        let argv = |s: &str| shlex::split(s).unwrap();
        assert_eq!(
            http_probe(&argv("curl -fsS http://localhost:8080/health")),
            Some(("/health".into(), 8080))
        );
        assert_eq!(
            http_probe(&argv("wget -q --spider http://127.0.0.1/ || exit 1")),
            Some(("/".into(), 80))
        );
        assert_eq!(http_probe(&argv("curl -f http://example.com/")), None);
        assert_eq!(http_probe(&argv("pg_isready -U postgres")), None);
        assert_eq!(
            http_probe(&argv("curl -f http://localhost/ && touch x")),
            None
        );
    }
}

#[cfg(test)]
mod rebase_tests {
    use super::*;

    #[test]
    fn paths_are_rebased_to_the_output_directory() {
        let from = Path::new("/w/proj");
        assert_eq!(rebase("./app", from, from), "./app");
        assert_eq!(rebase(".", from, from), ".");
        assert_eq!(rebase("./app", from, Path::new("/w")), "./proj/app");
        assert_eq!(rebase(".", from, Path::new("/w")), "./proj");
        assert_eq!(
            rebase("../shared/.env", from, Path::new("/w/out")),
            "../shared/.env"
        );
        assert_eq!(
            rebase("./data", from, Path::new("/w/proj/deploy")),
            "../data"
        );
        assert_eq!(rebase("/abs/x", from, Path::new("/w")), "/abs/x");
        assert_eq!(rebase("~/x", from, Path::new("/w")), "~/x");
    }

    #[test]
    fn import_to_rewrites_contexts_env_files_and_bind_mounts() {
        let text = "services:\n  web:\n    build: ./app\n    env_file: .env\n    volumes: [\"./data:/data:ro\", \"cache:/cache\"]\n";
        let imp = import_to(text, Path::new("/w/proj/compose.yaml"), Path::new("/w")).unwrap();
        assert!(imp.yaml.contains("build: ./proj/app"), "{}", imp.yaml);
        assert!(imp.yaml.contains("- ./proj/.env"), "{}", imp.yaml);
        assert!(imp.yaml.contains("- ./proj/data:/data:ro"), "{}", imp.yaml);
        assert!(imp.yaml.contains("- cache:/cache"), "{}", imp.yaml);
    }
}
