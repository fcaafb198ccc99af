//! Import of a compose file (the compose-spec subset tug can run) into tug.yaml.
//!
//! Whatever has no tug equivalent is listed in [`Import::dropped`] with the
//! reason and its position, so nothing disappears silently; whatever is
//! carried over but would behave differently under tug's defaults is listed
//! in [`Import::notes`] with the tug.yaml line that changes it. Values are
//! interpolated as compose does ([`crate::interpolate`]); `env` values keep
//! their `${VAR}` references, everything else is resolved. A value compose
//! would reject is an error at its position.
//!
//! ```
//! let compose = "services:\n  web:\n    image: nginx:1\n    ports: [\"8080:80\"]\n    container_name: w\n";
//! let out = tug_spec::compose::import(compose, "shop/compose.yaml".as_ref()).unwrap();
//! let stack = tug_spec::parse_str(&out.yaml, "shop/tug.yaml".as_ref()).unwrap();
//! assert_eq!(stack.name, "shop");
//! assert_eq!(stack.services["web"].publish, Some(8080));
//! assert_eq!(out.dropped[0].path, "services.web.container_name");
//! ```

use crate::interpolate::{self, Vars};
use crate::parse::{duration, port_number, port_text, sanitize_name, Cx, PortText};
use crate::yaml::{self, Node};
use crate::Protocol;
use crate::SpecErrors;
use serde::Serialize;
use serde_yaml_ng::{Mapping, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The result of an import: tug.yaml text, what could not be carried over,
/// and what tug will do differently unless told otherwise.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Import {
    pub yaml: String,
    pub dropped: Vec<Dropped>,
    pub notes: Vec<Note>,
}

/// Something carried over whose behaviour differs from compose's, or a
/// hardened default likely to break the image, with the tug.yaml line that
/// changes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Note {
    /// Dotted path in the compose file.
    pub path: String,
    pub message: String,
    /// The tug.yaml line that restores compose's behaviour, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
    pub line: usize,
    pub col: usize,
}

/// How to read the compose file.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Profiles to enable (`--profile`), besides those in `COMPOSE_PROFILES`.
    pub profiles: Vec<String>,
    /// Files read instead of the `.env` beside the compose file (`--env-file`).
    pub env_files: Vec<PathBuf>,
    /// The variables to interpolate with; unset: the environment over the env files.
    pub vars: Option<Vars>,
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
    import_with(text, file, out_dir, &Options::default())
}

/// Like [`import_to`], with profiles and env files.
pub fn import_with(
    text: &str,
    file: &Path,
    out_dir: &Path,
    opts: &Options,
) -> Result<Import, SpecErrors> {
    let from_dir = file
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let vars = match &opts.vars {
        Some(v) => v.clone(),
        None => Vars::load(from_dir, &opts.env_files)?,
    };
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
    let Some(mut root) = root else {
        cx.at(1, 1, "the compose file is empty".into(), None);
        return Err(cx.finish());
    };
    let (extended, ext_errors) = crate::compose_extends::resolve(&mut root, from_dir);
    for e in ext_errors {
        cx.at(e.line, e.col, e.message, e.hint);
    }
    let (done, errors) = interpolate::tree(&mut root, &vars);
    for e in errors {
        cx.at(e.line, e.col, e.message, None);
    }
    let mut profiles = opts.profiles.clone();
    if let Some(p) = vars.get("COMPOSE_PROFILES") {
        profiles.extend(
            p.split(',')
                .map(|p| p.trim().to_string())
                .filter(|p| !p.is_empty()),
        );
    }
    let mut imp = Importer {
        cx,
        dropped: Vec::new(),
        notes: Vec::new(),
        done,
        vars,
        profiles,
        kept: Vec::new(),
        dir: from_dir.to_path_buf(),
        extended,
    };
    let mut unset: Vec<(&(usize, usize), &interpolate::Done)> = imp
        .done
        .iter()
        .filter(|(_, d)| !d.unset.is_empty())
        .collect();
    unset.sort_by_key(|(pos, _)| **pos);
    let unset_notes: Vec<Note> = unset
        .into_iter()
        .map(|((line, col), d)| Note {
            path: String::new(),
            message: format!(
                "variable {} is not set: read as an empty string, as compose does",
                d.unset.join(", ")
            ),
            fix: None,
            line: *line,
            col: *col,
        })
        .collect();
    imp.notes.extend(unset_notes);
    let mut out = imp.stack(&root, file);
    // What came from an extended file is said at its own place.
    for e in &mut imp.cx.errors {
        if let Some((f, l, c, _)) = imp.extended.place(e.line, e.col) {
            (e.file, e.line, e.col) = (f.to_path_buf(), l, c);
        }
    }
    for d in &mut imp.dropped {
        if let Some((f, l, c, (el, ec))) = imp.extended.place(d.line, d.col) {
            d.reason = format!("{} (from {}:{l}:{c}, by `extends`)", d.reason, f.display());
            (d.line, d.col) = (el, ec);
        }
    }
    for n in &mut imp.notes {
        if let Some((f, l, c, (el, ec))) = imp.extended.place(n.line, n.col) {
            n.message = format!("{} (from {}:{l}:{c}, by `extends`)", n.message, f.display());
            (n.line, n.col) = (el, ec);
        }
    }
    if !imp.cx.errors.is_empty() {
        return Err(imp.cx.finish());
    }
    rebase_paths(&mut out, &|p: &str| rebase(p, from_dir, out_dir));
    escape_values(&mut out, &imp.kept);
    if !imp.kept.is_empty() && !opts.env_files.is_empty() {
        imp.notes.push(Note {
            path: String::new(),
            message: "tug.yaml keeps `${VAR}` references in `env`, read when tug.yaml is read"
                .into(),
            fix: Some("pass the same --env-file to every tug command".into()),
            line: 1,
            col: 1,
        });
    } else if !imp.kept.is_empty()
        && from_dir.join(".env").is_file()
        && std::path::absolute(from_dir).ok() != std::path::absolute(out_dir).ok()
    {
        imp.notes.push(Note {
            path: String::new(),
            message: "tug.yaml keeps `${VAR}` references in `env`, read from the environment and the .env beside tug.yaml; the .env beside the compose file is elsewhere".into(),
            fix: Some("copy .env next to tug.yaml, or pass --env-file".into()),
            line: 1,
            col: 1,
        });
    }
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
    let mut notes = imp.notes;
    notes.sort_by_key(|d| (d.line, d.col));
    Ok(Import {
        yaml: format!("# Imported from {from} by `tug import compose`.\n{body}"),
        dropped,
        notes,
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

/// Applies `f` to every path the generated stack holds.
fn rebase_paths(stack: &mut Mapping, f: &dyn Fn(&str) -> String) {
    for kind in ["secrets", "configs"] {
        if let Some(Value::Mapping(refs)) = stack.get_mut(kind) {
            for (_, r) in refs.iter_mut() {
                if let Some(Value::String(p)) = r.get_mut("file") {
                    *p = f(p);
                }
            }
        }
    }
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
    notes: Vec<Note>,
    /// Interpolated scalars by position, with the text as written.
    done: HashMap<(usize, usize), interpolate::Done>,
    vars: Vars,
    profiles: Vec<String>,
    /// (service, env key) whose value keeps its `${VAR}` references.
    kept: Vec<(String, String)>,
    /// The compose file's directory: relative paths start there.
    dir: PathBuf,
    /// The files `extends` read (for the place and directory of their nodes).
    extended: crate::compose_extends::Extended,
}

/// Doubles every `$` of the generated values, so that tug.yaml's own
/// interpolation reads them as imported; `env` values in `kept` hold
/// references on purpose and stay as they are.
fn escape_values(stack: &mut Mapping, kept: &[(String, String)]) {
    fn walk(v: &mut Value) {
        match v {
            Value::String(t) if t.contains('$') => *t = interpolate::escape(t),
            Value::Sequence(items) => items.iter_mut().for_each(walk),
            Value::Mapping(m) => m.iter_mut().for_each(|(_, v)| walk(v)),
            _ => {}
        }
    }
    let Some(Value::Mapping(services)) = stack.get_mut("services") else {
        return;
    };
    for (name, svc) in services.iter_mut() {
        let name = name.as_str().unwrap_or_default().to_string();
        let Value::Mapping(svc) = svc else { continue };
        for (k, v) in svc.iter_mut() {
            if k.as_str() == Some("env") {
                if let Value::Mapping(env) = v {
                    for (ek, ev) in env.iter_mut() {
                        let ek = ek.as_str().unwrap_or_default();
                        if !kept.iter().any(|(s, k)| *s == name && k == ek) {
                            walk(ev);
                        }
                    }
                }
            } else {
                walk(v);
            }
        }
    }
}

fn s(v: impl Into<String>) -> Value {
    Value::String(v.into())
}

/// Keys of a tug service, in the order they are written out.
const ORDER: &[&str] = crate::parse::SERVICE_KEYS;

/// One port: `8080:80`, `127.0.0.1:8080:80/tcp`, `80`, or the long form.
fn parse_port(n: &Node) -> Result<PortText, String> {
    if let Some(i) = n.as_i64() {
        return port_text(&i.to_string());
    }
    if n.as_map().is_some() {
        let text = |k: &str| -> Result<Option<String>, String> {
            match n.get(k) {
                None => Ok(None),
                Some(v) => v
                    .scalar()
                    .map(|t| Some(t.to_string()))
                    .ok_or_else(|| format!("`{k}` must be a value, found {}", v.describe())),
            }
        };
        let port = port_number(&text("target")?.ok_or("a port needs `target`")?)?;
        let publish = match text("published")? {
            Some(h) if !h.is_empty() => Some(port_number(&h)?),
            _ => None,
        };
        let protocol = match text("protocol")? {
            Some(p) => crate::parse::protocol(&p)?,
            None => Protocol::Tcp,
        };
        let host_ip = text("host_ip")?;
        if let Some(ip) = &host_ip {
            ip.parse::<std::net::IpAddr>()
                .map_err(|_| format!("`{ip}` is not an IP address"))?;
        }
        return Ok(PortText {
            host_ip,
            publish,
            port,
            protocol,
        });
    }
    let text = n.scalar().ok_or("a port must be a string or a number")?;
    port_text(text)
}

/// Whether `raw` holds a `$NAME` reference (not only `$$`).
fn has_plain_ref(raw: &str) -> bool {
    let mut rest = raw;
    while let Some(i) = rest.find('$') {
        let after = &rest[i + 1..];
        match after.chars().next() {
            Some('$') => rest = &after[1..],
            Some(c) if c == '_' || c.is_ascii_alphabetic() => return true,
            _ => rest = after,
        }
    }
    false
}

/// Keys in the order tug.yaml lists them.
fn order(m: Mapping) -> Mapping {
    let mut out = Mapping::new();
    for k in ORDER {
        if let Some(v) = m.get(*k) {
            out.insert(s(*k), v.clone());
        }
    }
    out
}

/// Well-known images that start as root and switch user in their
/// entrypoint, with a place each writes outside its volumes.
const ROOT_IMAGES: &[(&str, &str)] = &[
    ("postgres", "/var/run/postgresql"),
    ("mysql", "/var/run/mysqld"),
    ("mariadb", "/run/mysqld"),
    ("mongo", "/data/configdb"),
    ("redis", "/data"),
    ("rabbitmq", "/var/lib/rabbitmq"),
    ("nginx", "/var/cache/nginx"),
    ("httpd", "/usr/local/apache2/logs"),
    ("php", "/var/run/apache2"),
    ("wordpress", "/var/www/html"),
    ("nextcloud", "/var/www/html"),
    ("gitea/gitea", "/data"),
    ("traefik", "/etc/traefik"),
    ("pihole/pihole", "/etc/pihole"),
    ("plexinc/pms-docker", "/config"),
    ("itzg/minecraft-server", "/data"),
    ("portainer/portainer-ce", "/data"),
    ("linuxserver/wireguard", "/config"),
    ("dpage/pgadmin4", "/var/lib/pgadmin"),
    ("kafka", "/var/lib/kafka"),
];

/// The entry of [`ROOT_IMAGES`] for an image reference, matched on its
/// repository (without registry, tag or digest; `library/` and
/// `lscr.io/linuxserver` forms included).
fn known_root_image(image: &str) -> Option<(&'static str, &'static str)> {
    let no_digest = image.split('@').next().unwrap_or(image);
    let repo = match no_digest.rsplit_once(':') {
        Some((r, tag)) if !tag.contains('/') => r,
        _ => no_digest,
    };
    let mut parts: Vec<&str> = repo.split('/').collect();
    if parts.len() > 1
        && (parts[0].contains('.') || parts[0].contains(':') || parts[0] == "localhost")
    {
        parts.remove(0);
    }
    if parts.first() == Some(&"library") {
        parts.remove(0);
    }
    let repo = parts.join("/");
    ROOT_IMAGES.iter().find(|(r, _)| *r == repo).copied()
}

/// The largest `-Xmx` in `text`, in bytes.
fn java_heap(text: &str) -> Option<u64> {
    text.split_whitespace()
        .filter_map(|w| w.strip_prefix("-Xmx"))
        .filter_map(|v| {
            let split = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
            let n: u64 = v[..split].parse().ok()?;
            let mult = match v[split..].to_ascii_lowercase().as_str() {
                "" => 1,
                "k" => 1 << 10,
                "m" => 1 << 20,
                "g" => 1 << 30,
                "t" => 1 << 40,
                _ => return None,
            };
            n.checked_mul(mult)
        })
        .max()
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

/// The path and port of a health command that means exactly what tug's
/// `http:` check does: a GET that fails on a 4xx/5xx answer and follows no
/// redirect. That is `curl --fail` (`-f`) with output flags only; wget
/// follows redirects, so it stays a command.
fn http_probe(argv: &[String]) -> Option<(String, u16)> {
    let tool = argv.first()?.rsplit('/').next()?;
    if tool != "curl" {
        return None;
    }
    // Allow a trailing `|| exit 1`, nothing else after the command.
    let end = argv.iter().position(|a| a == "||").unwrap_or(argv.len());
    if end < argv.len()
        && !(argv.len() == end + 3 && argv[end + 1] == "exit" && argv[end + 2] != "0")
    {
        return None;
    }
    let mut fail = false;
    let mut urls = Vec::new();
    let mut args = argv[1..end].iter();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--fail" => fail = true,
            "--silent" | "--show-error" => {}
            "-o" | "--output" => {
                args.next();
            }
            u if u.starts_with("http://") || u.starts_with("https://") => urls.push(u),
            short if short.starts_with('-') && !short.starts_with("--") => {
                for c in short[1..].chars() {
                    match c {
                        'f' => fail = true,
                        's' | 'S' => {}
                        _ => return None,
                    }
                }
            }
            _ => return None,
        }
    }
    let [url] = urls.as_slice() else {
        return None;
    };
    if !fail {
        return None;
    }
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
        // Two names that become one would merge two services: an error.
        let mut renames: Vec<(String, String)> = Vec::new();
        // Services left out because none of their profiles is enabled.
        let mut inactive: Vec<(String, Vec<String>)> = Vec::new();
        if let Some((_, _, svcs)) = top.iter().find(|(k, _, _)| *k == "services") {
            let mut seen: Vec<(String, String)> = Vec::new();
            for (sname, skn, sv) in self.entries(svcs, "services") {
                let tname = sanitize_name(sname);
                if let Some((other, _)) = seen.iter().find(|(_, t)| *t == tname) {
                    self.cx.err(
                        skn,
                        format!("services `{other}` and `{sname}` both become `{tname}` in tug (service names are lowercase letters, digits and '-')"),
                        Some(format!("rename one of them in the compose file, e.g. `{sname}` to `{tname}-2`")),
                    );
                }
                seen.push((sname.to_string(), tname.clone()));
                renames.push((sname.to_string(), tname));
                if let Some(p) = sv.get("profiles") {
                    let list: Vec<String> = p
                        .as_seq()
                        .unwrap_or_default()
                        .iter()
                        .filter_map(Node::scalar)
                        .map(str::to_string)
                        .collect();
                    if !list.is_empty()
                        && !list
                            .iter()
                            .any(|p| self.profiles.iter().any(|a| a == p || a == "*"))
                    {
                        inactive.push((sname.to_string(), list));
                    }
                }
            }
        }
        let inactive_names: Vec<String> = inactive.iter().map(|(n, _)| n.clone()).collect();
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
                        if let Some((_, list)) = inactive.iter().find(|(n, _)| n == sname) {
                            self.drop(
                                format!("services.{sname}"),
                                skn,
                                format!(
                                    "in profile {}: not enabled (pass --profile {})",
                                    list.join(", "),
                                    list[0]
                                ),
                            );
                            continue;
                        }
                        if let Some(mut svc) = self.service(sname, sv, &renames, &inactive_names) {
                            if tname != sname {
                                self.note(
                                    format!("services.{sname}"),
                                    skn,
                                    format!("renamed to `{tname}` (service names are lowercase letters, digits and '-'); `{sname}` stays a name on the stack's network"),
                                    None,
                                );
                                svc.insert(s("aliases"), Value::Sequence(vec![s(sname)]));
                                svc = order(svc);
                            }
                            services.insert(s(tname), Value::Mapping(svc));
                        }
                    }
                }
                "secrets" | "configs" => {
                    let mut refs = Mapping::new();
                    for (rname, rkn, rv) in self.entries(v, key) {
                        let rp = format!("{key}.{rname}");
                        let mut file = None;
                        for (k, kkn, kv) in self.entries(rv, &rp) {
                            match (k, kv.scalar()) {
                                ("file", Some(f)) => file = Some(f.to_string()),
                                ("file", None) => {
                                    self.cx.err(kv, format!("`{rp}.file` must be a path"), None)
                                }
                                ("name", _) => {}
                                _ => self.drop(
                                    format!("{rp}.{k}"),
                                    kkn,
                                    format!("tug reads {key} from files only"),
                                ),
                            }
                        }
                        match file {
                            Some(f) => {
                                let mut m = Mapping::new();
                                m.insert(s("file"), s(f));
                                refs.insert(s(rname), Value::Mapping(m));
                            }
                            None => self.drop(rp, rkn, format!("tug reads {key} from files only")),
                        }
                    }
                    if !refs.is_empty() {
                        out.insert(s(*key), Value::Mapping(refs));
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
                // Dropping it would silently lose the services it brings in.
                "include" => self.cx.err(
                    kn,
                    "`include` is not supported: tug reads one compose file",
                    Some("import each included file with `tug import compose FILE`, or copy its services into this file".into()),
                ),
                k if k.starts_with("x-") => {}
                k => self.drop(k, kn, "not supported by tug"),
            }
        }
        let mut stack = Mapping::new();
        stack.insert(s("name"), s(name));
        stack.insert(s("services"), Value::Mapping(services));
        for k in ["secrets", "configs"] {
            if let Some(v) = out.remove(k) {
                stack.insert(s(k), v);
            }
        }
        stack
    }

    fn note(
        &mut self,
        path: impl Into<String>,
        n: &Node,
        message: impl Into<String>,
        fix: Option<String>,
    ) {
        self.notes.push(Note {
            path: path.into(),
            message: message.into(),
            fix,
            line: n.line,
            col: n.col,
        });
    }

    fn service(
        &mut self,
        name: &str,
        n: &Node,
        renames: &[(String, String)],
        inactive: &[String],
    ) -> Option<Mapping> {
        let p = |k: &str| format!("services.{name}.{k}");
        let tname = sanitize_name(name);
        let entries = self.entries(n, &format!("services.{name}"));
        n.as_map()?;
        let get = |k: &str| entries.iter().find(|(e, _, _)| *e == k).map(|(_, _, v)| *v);
        let mut out: Vec<(&str, Value)> = Vec::new();
        let mut resources = Mapping::new();
        let mut security = Mapping::new();
        let mut env = Mapping::new();
        let mut health = Mapping::new();
        let mut health_keys: Vec<&str> = Vec::new();
        let mut links: Vec<String> = Vec::new();

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
        // Every published or exposed port, in file order.
        let mut published: Vec<(PortText, &Node)> = Vec::new();
        let mut exposed: Vec<(u16, Protocol, &Node)> = Vec::new();

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
                "environment" => self.environment(name, &tname, v, &mut env),
                "env_file" => {
                    let items: Vec<&Node> = match v.as_seq() {
                        Some(items) => items.iter().collect(),
                        None => vec![v],
                    };
                    let mut files = Vec::new();
                    for i in items {
                        let path = match i.get("path") {
                            Some(pn) => pn.scalar().map(|p| self.path(pn, p)),
                            None => i.scalar().map(|p| self.path(i, p)),
                        };
                        let optional = i.get("required").and_then(Node::as_bool) == Some(false);
                        match path.as_deref() {
                            // Compose skips an optional file that is missing; tug
                            // reads every env_file it names, so it leaves it out.
                            Some(f) if optional && !self.dir.join(f).is_file() => self.drop(
                                p("env_file"),
                                i,
                                format!("`{f}` is optional (`required: false`) and missing, so compose reads nothing from it; left out (add it to `env_file` in tug.yaml once it exists)"),
                            ),
                            Some(f) => {
                                files.push(s(f));
                                if optional {
                                    self.drop(
                                        p("env_file.required"),
                                        i,
                                        format!("`{f}` exists now; tug requires every env_file to exist"),
                                    );
                                }
                            }
                            None => self.cx.err(
                                i,
                                format!("`{}` entries must be paths", p("env_file")),
                                None,
                            ),
                        }
                    }
                    if !files.is_empty() {
                        out.push(("env_file", Value::Sequence(files)));
                    }
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
                            Ok(pt) => published.push((pt, i)),
                            Err(e) if e.contains("ranges") => self.drop(ip, i, e),
                            Err(e) => self.cx.err(i, format!("`{ip}`: {e}"), Some("write `[[HOST_IP:]HOST_PORT:]PORT[/PROTOCOL]`, like `8080:80` or `53:53/udp`".into())),
                        }
                    }
                }
                "expose" => {
                    for (idx, i) in v.as_seq().unwrap_or_default().iter().enumerate() {
                        let ip = format!("{}[{idx}]", p("expose"));
                        match parse_port(i) {
                            Ok(pt) if pt.publish.is_none() => {
                                exposed.push((pt.port, pt.protocol, i))
                            }
                            Ok(_) => {
                                self.cx
                                    .err(i, format!("`{ip}` takes a port, not a mapping"), None)
                            }
                            Err(e) if e.contains("ranges") => self.drop(ip, i, e),
                            Err(e) => self.cx.err(i, format!("`{ip}`: {e}"), None),
                        }
                    }
                }
                "volumes" => {
                    let vols = self.volumes(name, v);
                    if !vols.is_empty() {
                        out.push(("volumes", Value::Sequence(vols)));
                    }
                }
                "depends_on" => {
                    if let Some(d) = self.depends_on(name, v, renames, inactive) {
                        out.push(("depends_on", d));
                    }
                }
                "secrets" | "configs" => {
                    let items = self.file_mounts(name, key, v);
                    if !items.is_empty() {
                        out.push((key, Value::Sequence(items)));
                    }
                }
                "profiles" => {}
                "healthcheck" => {
                    for (hk, hkn, hv) in self.entries(v, &p("healthcheck")) {
                        let hp = format!("{}.{hk}", p("healthcheck"));
                        health_keys.push(hk);
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
                                    Some(Err((msg, hint))) => {
                                        self.cx.err(hv, format!("`{hp}`: {msg}"), hint)
                                    }
                                    None => self.cx.err(
                                        hv,
                                        format!("`{hp}` must be a duration like `10s` or `1m30s`, found {}", hv.describe()),
                                        None,
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
                            "disable" => match hv.as_bool() {
                                Some(true) => {
                                    health.insert(s("__disabled"), Value::Bool(true));
                                }
                                Some(false) => {}
                                None => {
                                    self.cx
                                        .err(hv, format!("`{hp}` must be true or false"), None)
                                }
                            },
                            _ => self.drop(hp, hkn, "not supported by tug's health checks"),
                        }
                    }
                }
                "deploy" => self.deploy(name, v, &mut resources, &mut out),
                "mem_limit" => match v.scalar().and_then(docker_size) {
                    Some(m) => {
                        resources.insert(s("memory"), s(m));
                    }
                    None => self.cx.err(
                        v,
                        format!(
                            "`{}`: {} is not a size like `512m` or `1g`",
                            p(key),
                            v.describe()
                        ),
                        None,
                    ),
                },
                "cpus" => match v.scalar() {
                    Some(c) if c.parse::<f64>().is_ok_and(|c| c > 0.0 && c.is_finite()) => {
                        resources.insert(s("cpu"), cpu_value(c));
                    }
                    _ => self.cx.err(
                        v,
                        format!("`{}`: {} is not a number of CPUs", p(key), v.describe()),
                        None,
                    ),
                },
                "pids_limit" => match v.as_i64() {
                    Some(l) => {
                        resources.insert(s("pids"), Value::Number(l.into()));
                    }
                    None => self
                        .cx
                        .err(v, format!("`{}` must be a whole number", p(key)), None),
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
                "restart" => match (v.as_bool(), v.scalar()) {
                    (Some(false), _) => out.push(("restart", s("no"))),
                    (_, Some(r @ ("no" | "always" | "unless-stopped" | "on-failure"))) => {
                        out.push(("restart", s(r)));
                    }
                    (_, Some(r))
                        if r.strip_prefix("on-failure:")
                            .is_some_and(|n| n.parse::<u32>().is_ok()) =>
                    {
                        out.push(("restart", s("on-failure")));
                        self.drop(p("restart"), v, "tug retries without a maximum count");
                    }
                    _ => self.cx.err(
                        v,
                        format!(
                            "`{}`: unknown restart policy {}",
                            p("restart"),
                            v.describe()
                        ),
                        Some("use no, always, on-failure[:N] or unless-stopped".into()),
                    ),
                },
                "labels" => {
                    let mut labels = Mapping::new();
                    // Compose reads a list entry without `=` as a label with an empty value.
                    let pairs: Vec<(&Node, String, String)> = match v.as_seq() {
                        Some(items) if items.iter().all(|i| i.scalar().is_some()) => items
                            .iter()
                            .map(|i| {
                                let t = i.scalar().unwrap_or_default();
                                let (k, val) = t.split_once('=').unwrap_or((t, ""));
                                (i, k.to_string(), val.to_string())
                            })
                            .collect(),
                        _ => self.cx.pairs(v, &p("labels")),
                    };
                    for (ln, k, val) in pairs {
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
                    Some(Err((msg, hint))) => self.cx.err(v, format!("`{}`: {msg}", p(key)), hint),
                    None => self.cx.err(
                        v,
                        format!("`{}` must be a duration like `10s`", p(key)),
                        None,
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
                // Compose starts linked services first, as with depends_on.
                "links" => {
                    for i in v.as_seq().unwrap_or_default() {
                        if let Some(t) = i.scalar() {
                            let target = t.split_once(':').map_or(t, |(t, _)| t);
                            if !inactive.iter().any(|x| x == target) {
                                links.push(target.to_string());
                            }
                        }
                    }
                    self.drop(
                        p(key),
                        kn,
                        "services reach each other by service name; the linked services are started first (depends_on), as in compose",
                    )
                }
                "hostname" | "external_links" => {
                    self.drop(p(key), kn, "services reach each other by service name")
                }
                "tmpfs" => self.drop(p(key), kn, "tmpfs mounts are not supported"),
                k if k.starts_with("x-") => {}
                _ => self.drop(p(key), kn, "not supported by tug"),
            }
        }
        if !links.is_empty() {
            if !out.iter().any(|(k, _)| *k == "depends_on") {
                out.push(("depends_on", Value::Mapping(Mapping::new())));
            }
            if let Some((_, Value::Mapping(deps))) =
                out.iter_mut().find(|(k, _)| *k == "depends_on")
            {
                for l in links {
                    let to = renames
                        .iter()
                        .find(|(from, _)| *from == l)
                        .map(|(_, to)| to.clone())
                        .unwrap_or_else(|| sanitize_name(&l));
                    if !deps.contains_key(to.as_str()) {
                        deps.insert(s(to), s("started"));
                    }
                }
            }
        }
        if !out.iter().any(|(k, _)| *k == "restart") {
            out.push(("restart", s("no")));
            self.note(
                format!("services.{name}"),
                n,
                "no `restart`: compose does not restart it, and neither will tug (tug's own default is always)",
                Some("restart: always".into()),
            );
        }
        if !env.is_empty() {
            out.push(("env", Value::Mapping(env)));
        }
        let port = self.ports(name, replicas, &published, &exposed, &mut health, &mut out);
        let disabled = health.remove("__disabled").is_some();
        if disabled {
            health.clear();
            out.push(("health", s("none")));
        }
        if health.contains_key("http") || health.contains_key("exec") {
            // Compose's defaults, where tug's differ.
            for (k, v) in [
                ("interval", s("30s")),
                ("timeout", s("30s")),
                ("retries", Value::Number(3.into())),
            ] {
                if !health_keys.contains(&k) {
                    health.insert(s(k), v);
                }
            }
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
        self.hardened(name, n, &out, &resources, &security);
        if !resources.is_empty() {
            out.push(("resources", Value::Mapping(resources)));
        }
        if !security.is_empty() {
            out.push(("security", Value::Mapping(security)));
        }
        let mut svc = Mapping::new();
        for (k, v) in out {
            svc.insert(s(k), v);
        }
        Some(order(svc))
    }

    /// `environment`, keeping `${VAR}` references as written where every
    /// variable they use is set; a bare name takes the variable's value.
    fn environment(&mut self, name: &str, tname: &str, v: &Node, env: &mut Mapping) {
        let what = format!("services.{name}.environment");
        // (key, value, value as written when kept, node) per entry.
        let mut entries: Vec<(String, Option<String>, Option<String>, &Node)> = Vec::new();
        if let Some(items) = v.as_seq() {
            for i in items {
                let Some(t) = i.scalar() else {
                    self.cx
                        .err(i, format!("`{what}` entries must be KEY=VALUE"), None);
                    continue;
                };
                match t.split_once('=') {
                    Some((k, val)) => {
                        let raw = self
                            .kept_raw(i)
                            .and_then(|r| r.split_once('=').map(|(_, rv)| rv.to_string()));
                        entries.push((k.to_string(), Some(val.to_string()), raw, i));
                    }
                    None => entries.push((t.to_string(), None, None, i)),
                }
            }
        } else {
            for (k, kn, val) in self.entries(v, &what) {
                if val.is_null() {
                    entries.push((k.to_string(), None, None, kn));
                } else if let Some(t) = val.scalar() {
                    entries.push((k.to_string(), Some(t.to_string()), self.kept_raw(val), val));
                } else {
                    self.cx
                        .err(val, format!("`{what}.{k}` must be a string"), None);
                }
            }
        }
        for (k, val, raw, n) in entries {
            match (val, raw) {
                (_, Some(raw)) => {
                    env.insert(s(&k), s(raw));
                    self.kept.push((tname.to_string(), k));
                }
                (Some(val), None) => {
                    env.insert(s(&k), s(val));
                }
                // A bare name: the variable's value, as a reference.
                (None, None) if self.vars.get(&k).is_some() => {
                    env.insert(s(&k), s(format!("${{{k}}}")));
                    self.kept.push((tname.to_string(), k));
                }
                (None, None) => self.drop(
                    format!("{what}.{k}"),
                    n,
                    format!("takes its value from the shell in compose, and {k} is not set; set it in tug.yaml or an env_file"),
                ),
            }
        }
    }

    /// The text as written when it held references that are all set.
    fn kept_raw(&self, n: &Node) -> Option<String> {
        self.done
            .get(&(n.line, n.col))
            .filter(|d| d.unset.is_empty() && (d.raw.contains("${") || has_plain_ref(&d.raw)))
            .map(|d| d.raw.clone())
    }

    /// A service's `secrets` or `configs`: names or `{ source, target,
    /// uid, gid, mode }`. Compose applies the last three only in swarm;
    /// tug applies them on every engine.
    fn file_mounts(&mut self, name: &str, key: &str, v: &Node) -> Vec<Value> {
        let what = format!("services.{name}.{key}");
        let mut out = Vec::new();
        let Some(items) = v.as_seq() else {
            self.cx.err(v, format!("`{what}` must be a list"), None);
            return out;
        };
        for i in items {
            if let Some(src) = i.scalar() {
                out.push(s(src));
                continue;
            }
            let mut m = Mapping::new();
            for (k, _, kv) in self.entries(i, &what) {
                match (k, kv.scalar()) {
                    ("source" | "target", Some(t)) => {
                        m.insert(s(k), s(t));
                    }
                    ("uid" | "gid", Some(t)) => match t.parse::<u32>() {
                        Ok(id) => {
                            m.insert(s(k), Value::Number(id.into()));
                        }
                        Err(_) => self.cx.err(
                            kv,
                            format!("`{what}.{k}` must be a numeric id, found `{t}`"),
                            None,
                        ),
                    },
                    ("mode", Some(t)) => match compose_mode(kv, t) {
                        Some(mode) => {
                            m.insert(s(k), s(format!("{mode:04o}")));
                        }
                        None => self.cx.err(
                            kv,
                            format!("`{what}.mode` must be permission bits, found `{t}`"),
                            Some("write it in octal, e.g. `mode: 0440`".into()),
                        ),
                    },
                    ("source" | "target" | "uid" | "gid" | "mode", None) => {
                        self.cx
                            .err(kv, format!("`{what}.{k}` must be a single value"), None)
                    }
                    _ => self
                        .cx
                        .err(kv, format!("`{what}.{k}`: not a {key} field"), None),
                }
            }
            if ["uid", "gid", "mode"].iter().any(|k| m.contains_key(*k)) {
                self.note(
                    &what,
                    i,
                    "compose applies uid, gid and mode only in swarm; tug applies them on every engine",
                    None,
                );
            }
            if m.contains_key("source") {
                out.push(Value::Mapping(m));
            } else {
                self.cx
                    .err(i, format!("`{what}` entries need `source`"), None);
            }
        }
        out
    }

    /// Chooses the service's `port` (the first TCP port), its other `ports`
    /// and `expose`; returns the port.
    fn ports(
        &mut self,
        name: &str,
        replicas: i64,
        published: &[(PortText, &Node)],
        exposed: &[(u16, Protocol, &Node)],
        health: &mut Mapping,
        out: &mut Vec<(&str, Value)>,
    ) -> Option<u16> {
        let pp = format!("services.{name}.ports");
        let mut port = None;
        let mut extra = Vec::new();
        for (pt, n) in published {
            let mut publish = pt.publish;
            if publish.is_some() && replicas > 1 {
                self.drop(
                    &pp,
                    n,
                    format!("host port {} needs one replica; tug publishes an ephemeral port per replica and balances {replicas} replicas through its gateway", publish.unwrap_or_default()),
                );
                publish = None;
            }
            let ip = pt.host_ip.clone().filter(|ip| ip != "127.0.0.1");
            if let (Some(h), None) = (publish, &pt.host_ip) {
                self.note(
                    &pp,
                    n,
                    format!("compose publishes {h} on every interface; tug publishes on 127.0.0.1"),
                    Some(if port.is_none() && pt.protocol == Protocol::Tcp {
                        "host_ip: 0.0.0.0".to_string()
                    } else {
                        format!(
                            "ports: [{{ port: {}, publish: {h}, host_ip: 0.0.0.0 }}]",
                            pt.port
                        )
                    }),
                );
            }
            if let (Some(ip), Some(_)) = (&ip, publish) {
                self.note(
                    &pp,
                    n,
                    format!(
                        "published on {ip} as the compose file says (tug's default is 127.0.0.1)"
                    ),
                    None,
                );
            }
            if port.is_none() && pt.protocol == Protocol::Tcp {
                port = Some(pt.port);
                if let Some(h) = publish {
                    out.push(("publish", Value::Number(h.into())));
                    if let Some(ip) = ip {
                        out.push(("host_ip", s(ip)));
                    }
                }
                continue;
            }
            let mut m = Mapping::new();
            m.insert(s("port"), Value::Number(pt.port.into()));
            if pt.protocol == Protocol::Udp {
                m.insert(s("protocol"), s("udp"));
            }
            if let Some(h) = publish {
                m.insert(s("publish"), Value::Number(h.into()));
                if let Some(ip) = ip {
                    m.insert(s("host_ip"), s(ip));
                }
            }
            extra.push(Value::Mapping(m));
        }
        let mut expose = Vec::new();
        for (p, proto, _) in exposed {
            let taken = port == Some(*p) && *proto == Protocol::Tcp
                || published
                    .iter()
                    .any(|(pt, _)| pt.port == *p && pt.protocol == *proto);
            if taken {
                continue;
            }
            if port.is_none() && *proto == Protocol::Tcp {
                port = Some(*p);
                continue;
            }
            expose.push(match proto {
                Protocol::Tcp => Value::Number((*p).into()),
                Protocol::Udp => s(format!("{p}/udp")),
            });
        }
        // An HTTP check names a port: the service's, or it stays a command.
        let original = health.remove("__original");
        if let Some(hport) = health.remove("__port") {
            let hport = hport
                .as_u64()
                .and_then(|p| u16::try_from(p).ok())
                .unwrap_or(80);
            match port {
                None => port = Some(hport),
                Some(p) if p != hport => {
                    health.remove("http");
                    if let Some(o) = original {
                        health.insert(s("exec"), o);
                    }
                }
                _ => {}
            }
        }
        if !extra.is_empty() {
            out.push(("ports", Value::Sequence(extra)));
        }
        if !expose.is_empty() {
            out.push(("expose", Value::Sequence(expose)));
        }
        port
    }

    /// Says where tug's hardened defaults will likely stop the image, with
    /// the tug.yaml line that loosens each.
    fn hardened(
        &mut self,
        name: &str,
        n: &Node,
        out: &[(&str, Value)],
        resources: &Mapping,
        security: &Mapping,
    ) {
        let path = format!("services.{name}");
        let get = |k: &str| out.iter().find(|(o, _)| *o == k).map(|(_, v)| v);
        let user = security.get("user").and_then(Value::as_str);
        let as_root = matches!(user, Some("root" | "0" | "0:0"));
        let caps: Vec<&str> = security
            .get("cap_add")
            .and_then(Value::as_sequence)
            .map(|c| c.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if let Some(image) = get("image").and_then(Value::as_str) {
            if user.is_none() {
                if let Some((_, writes)) = known_root_image(image) {
                    self.note(
                        &path,
                        n,
                        format!("image `{image}` starts as root and changes user itself, and writes to {writes}: tug runs it as 65534 with no capabilities and a read-only root filesystem"),
                        Some("security: { user: root, read_only: false, cap_add: [CHOWN, SETUID, SETGID, DAC_OVERRIDE, FOWNER] }".into()),
                    );
                }
            }
        }
        let mut low: Vec<u16> = Vec::new();
        if let Some(p) = get("port").and_then(Value::as_u64) {
            low.push(p as u16);
        }
        for m in get("ports")
            .and_then(Value::as_sequence)
            .into_iter()
            .flatten()
        {
            if let Some(p) = m.get("port").and_then(Value::as_u64) {
                low.push(p as u16);
            }
        }
        low.retain(|p| *p < 1024);
        low.dedup();
        if !low.is_empty() && !as_root && !caps.iter().any(|c| c.ends_with("NET_BIND_SERVICE")) {
            self.note(
                &path,
                n,
                format!(
                    "listens on port {} (below 1024): a non-root user needs NET_BIND_SERVICE",
                    low.iter()
                        .map(u16::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                Some("security: { cap_add: [NET_BIND_SERVICE] }".into()),
            );
        }
        let sock = get("volumes")
            .and_then(Value::as_sequence)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .any(|v| v.contains("docker.sock"));
        if sock && !as_root {
            self.note(
                &path,
                n,
                "mounts the Docker socket, which gives full control of the host; tug's non-root default user cannot open it",
                Some("security: { user: root }".into()),
            );
        }
        let limit = resources
            .get("memory")
            .and_then(Value::as_str)
            .and_then(|m| m.parse::<crate::ByteSize>().ok())
            .map(|b| b.0)
            .unwrap_or(512 << 20);
        let mut texts: Vec<&str> = Vec::new();
        if let Some(Value::Mapping(env)) = get("env") {
            texts.extend(env.values().filter_map(Value::as_str));
        }
        for k in ["command", "entrypoint"] {
            texts.extend(
                get(k)
                    .and_then(Value::as_sequence)
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str),
            );
        }
        if let Some(xmx) = texts.iter().filter_map(|t| java_heap(t)).max() {
            if xmx >= limit {
                let want = crate::ByteSize(xmx + xmx / 2).to_string();
                self.note(
                    &path,
                    n,
                    format!(
                        "the JVM heap (-Xmx {}) does not fit tug's memory limit of {}",
                        crate::ByteSize(xmx),
                        crate::ByteSize(limit)
                    ),
                    Some(format!("resources: {{ memory: {want} }}")),
                );
            }
        }
    }

    /// A relative path read at `n`, from the compose file's directory (it
    /// differs when `n` comes from an extended file in another directory).
    fn path(&self, n: &Node, p: &str) -> String {
        self.extended
            .seen_from_main(n, p)
            .unwrap_or_else(|| p.to_string())
    }

    fn build(&mut self, name: &str, v: &Node) -> Option<Value> {
        if let Some(ctx) = v.scalar() {
            return Some(s(self.path(v, ctx)));
        }
        let bp = format!("services.{name}.build");
        let mut b = Mapping::new();
        for (k, kn, bv) in self.entries(v, &bp) {
            match k {
                "context" | "dockerfile" | "target" => match bv.scalar() {
                    // `dockerfile` is relative to the context, wherever that is.
                    Some(t) if k == "context" => {
                        b.insert(s(k), s(self.path(bv, t)));
                    }
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

    /// A volume's source: a relative bind path as seen from the compose file.
    fn bind_path(&self, n: &Node, src: &str) -> String {
        if src.starts_with('.') {
            self.path(n, src)
        } else {
            src.to_string()
        }
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
                    // A source starting with `.` is a path; anything else a volume name.
                    [src, dst] => (self.bind_path(i, src), dst.to_string(), false),
                    [src, dst, mode] => (
                        self.bind_path(i, src),
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
                        let at = i.get("source").unwrap_or(i);
                        (self.bind_path(at, &src), dst.to_string(), ro)
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
            // Compose cleans the path inside the container: `/x/` is `/x`.
            let dst = if dst.len() > 1 {
                dst.trim_end_matches('/').to_string()
            } else {
                dst
            };
            out.push(s(if ro {
                format!("{src}:{dst}:ro")
            } else {
                format!("{src}:{dst}")
            }));
        }
        out
    }

    fn depends_on(
        &mut self,
        name: &str,
        v: &Node,
        renames: &[(String, String)],
        inactive: &[String],
    ) -> Option<Value> {
        let dp = format!("services.{name}.depends_on");
        let rename = |d: &str| {
            renames
                .iter()
                .find(|(from, _)| from == d)
                .map(|(_, to)| to.clone())
                .unwrap_or_else(|| sanitize_name(d))
        };
        let mut m = Mapping::new();
        let items: Vec<(&str, &Node, Option<&Node>)> = match v.as_seq() {
            Some(items) => items
                .iter()
                .filter_map(|i| i.scalar().map(|d| (d, i, None)))
                .collect(),
            None => self
                .entries(v, &dp)
                .into_iter()
                .map(|(d, dn, dv)| (d, dn, Some(dv)))
                .collect(),
        };
        for (d, dn, dv) in items {
            if inactive.iter().any(|i| i == d) {
                self.drop(
                    format!("{dp}.{d}"),
                    dn,
                    format!("`{d}` is in a profile that is not enabled"),
                );
                continue;
            }
            let cond = match dv.and_then(|dv| {
                dv.get("condition")
                    .and_then(Node::scalar)
                    .map(|c| (c, dv))
                    .or_else(|| dv.scalar().map(|c| (c, dv)))
            }) {
                None | Some(("service_started" | "started", _)) => "started",
                Some(("service_healthy" | "healthy", _)) => "healthy",
                Some(("service_completed_successfully" | "completed", _)) => "completed",
                Some((other, cn)) => {
                    self.cx
                        .err(cn, format!("`{dp}.{d}`: unknown condition `{other}`"), Some("use service_started, service_healthy or service_completed_successfully".into()));
                    "started"
                }
            };
            if let Some(dv) = dv {
                for (extra, ekn, ev) in self.entries(dv, &format!("{dp}.{d}")) {
                    match extra {
                        "condition" => {}
                        // Compose's default: a missing dependency is an error.
                        "required" if ev.as_bool() == Some(true) => {}
                        "restart" if ev.as_bool() == Some(false) => {}
                        _ => self.drop(format!("{dp}.{d}.{extra}"), ekn, "not supported by tug"),
                    }
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

/// A secret's or config's `mode` as compose reads it: a quoted string is
/// octal, a number is decimal unless written with a leading `0` or `0o`
/// (YAML 1.1 octal), so `0440`, `"440"` and `288` are all r--r-----.
fn compose_mode(n: &Node, text: &str) -> Option<u32> {
    let plain = matches!(n.kind, crate::yaml::Kind::Scalar { plain: true, .. });
    let mode = if let Some(o) = text.strip_prefix("0o") {
        u32::from_str_radix(o, 8).ok()
    } else if !plain || (text.starts_with('0') && text.len() > 1) {
        u32::from_str_radix(text, 8).ok()
    } else {
        text.parse().ok()
    };
    mode.filter(|m| *m <= 0o7777 && !text.starts_with(['+', '-']))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports() {
        let (root, _) = yaml::parse(
            "[\"8080:80\", 80, \"127.0.0.1:9000:90/udp\", \"3000-3005\", \"99999:80\", \"abc\", {target: 53, published: \"53\", protocol: udp}]",
        )
        .unwrap();
        let items = root.unwrap();
        let items = items.as_seq().unwrap();
        let p = parse_port(&items[0]).unwrap();
        assert_eq!((p.publish, p.port), (Some(8080), 80));
        assert_eq!(parse_port(&items[1]).unwrap().port, 80);
        let p = parse_port(&items[2]).unwrap();
        assert_eq!(
            (p.host_ip.as_deref(), p.publish, p.port, p.protocol),
            (Some("127.0.0.1"), Some(9000), 90, Protocol::Udp)
        );
        assert!(parse_port(&items[3]).unwrap_err().contains("ranges"));
        assert!(parse_port(&items[4]).unwrap_err().contains("out of range"));
        assert!(parse_port(&items[5]).unwrap_err().contains("not a port"));
        let p = parse_port(&items[6]).unwrap();
        assert_eq!(
            (p.publish, p.port, p.protocol),
            (Some(53), 53, Protocol::Udp)
        );
        let p = port_text(":2283:2283").unwrap();
        assert_eq!((p.host_ip, p.publish, p.port), (None, Some(2283), 2283));
    }

    #[test]
    fn root_images_are_matched_on_their_repository() {
        for image in [
            "postgres:16",
            "docker.io/library/nginx",
            "localhost:5000/postgres:16",
            "nginx@sha256:00",
        ] {
            assert!(known_root_image(image).is_some(), "{image}");
        }
        // Other publishers' images of the same software run as they please.
        for image in [
            "bitnami/redis:7",
            "nginxinc/nginx-unprivileged",
            "postgresql",
        ] {
            assert!(known_root_image(image).is_none(), "{image}");
        }
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
            http_probe(&argv("curl -sf http://127.0.0.1/ || exit 1")),
            Some(("/".into(), 80))
        );
        // Not the same meaning: no --fail, redirects followed, wget.
        assert_eq!(http_probe(&argv("curl http://localhost:8080/health")), None);
        assert_eq!(http_probe(&argv("curl -fL http://localhost/")), None);
        assert_eq!(
            http_probe(&argv("wget -q --spider http://127.0.0.1/ || exit 1")),
            None
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
        let text = "services:\n  web:\n    build: ./app\n    env_file: .env\n    volumes: [\"./data:/data:ro\", \"cache:/cache\"]\nsecrets:\n  key:\n    file: ./key.txt\n";
        let imp = import_to(text, Path::new("/w/proj/compose.yaml"), Path::new("/w")).unwrap();
        assert!(imp.yaml.contains("file: ./proj/key.txt"), "{}", imp.yaml);
        assert!(imp.yaml.contains("build: ./proj/app"), "{}", imp.yaml);
        assert!(imp.yaml.contains("- ./proj/.env"), "{}", imp.yaml);
        assert!(imp.yaml.contains("- ./proj/data:/data:ro"), "{}", imp.yaml);
        assert!(imp.yaml.contains("- cache:/cache"), "{}", imp.yaml);
    }
}
