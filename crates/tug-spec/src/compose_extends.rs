//! Compose's `extends`: a service starts from another one (in the same file
//! or in `extends.file`) and overrides it, merged as docker compose merges.
//!
//! Runs on the tree as written, before interpolation. Nodes read from another
//! file get their lines shifted by [`FILE_LINES`] per file, so that positions
//! stay unique (interpolation keys on them); [`Extended::place`] maps them
//! back to their file for messages.
//!
//! A file may be in another directory: as in compose, the relative paths of
//! what it declares (build context, env files, bind mounts, its own
//! `extends.file`) start from its directory; [`Extended::seen_from_main`] gives
//! them as seen from the main file's.

use crate::yaml::{self, Kind, Node};
use std::path::{Component, Path, PathBuf};

/// Lines reserved per extended file: real files are far shorter.
pub(crate) const FILE_LINES: usize = 10_000_000;

/// A problem met while resolving `extends`, at a position of the main file.
pub(crate) struct ExtendsError {
    pub line: usize,
    pub col: usize,
    pub message: String,
    pub hint: Option<String>,
}

/// The other files read, and where in the main file each was named.
#[derive(Default)]
pub(crate) struct Extended {
    /// (file, line and col of the `extends` that first named it).
    pub files: Vec<(PathBuf, usize, usize)>,
    /// Each file's directory, relative to the main file's (empty: the same).
    dirs: Vec<PathBuf>,
}

impl Extended {
    /// Where a (possibly shifted) position really is: `None` for the main
    /// file, else the other file, its own line and col, and the main file's
    /// `extends` that brought it in.
    pub fn place(&self, line: usize, col: usize) -> Option<(&Path, usize, usize, (usize, usize))> {
        let i = line / FILE_LINES;
        let (f, el, ec) = self.files.get(i.checked_sub(1)?)?;
        Some((f, line % FILE_LINES, col, (*el, *ec)))
    }

    /// The relative `path` read at `n`, as seen from the main file's
    /// directory when `n` comes from a file in another one; `None` when it
    /// reads the same from there.
    pub fn seen_from_main(&self, n: &Node, path: &str) -> Option<String> {
        let dir = self.dirs.get((n.line / FILE_LINES).checked_sub(1)?)?;
        // Absolute, home and remote (git, URL) paths do not depend on the file.
        let remote = path.contains("://") || path.starts_with("git@");
        if dir.as_os_str().is_empty() || path.starts_with(['/', '~']) || remote {
            return None;
        }
        let p = clean(&dir.join(path));
        Some(if p.as_os_str().is_empty() {
            ".".into()
        } else if p.is_absolute() || p.starts_with("..") {
            p.display().to_string()
        } else {
            // `./` keeps a bind mount from reading as a volume name.
            format!("./{}", p.display())
        })
    }
}

/// `p` with `.` dropped and `..` applied lexically, as compose cleans paths.
fn clean(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => match out.components().next_back() {
                Some(Component::Normal(_)) => {
                    out.pop();
                }
                Some(Component::RootDir | Component::Prefix(_)) => {}
                _ => out.push(".."),
            },
            c => out.push(c),
        }
    }
    out
}

struct Resolver<'a> {
    dir: &'a Path,
    ext: Extended,
    /// Parsed other files, by index into `ext.files`.
    trees: Vec<Node>,
    /// The files as found on disk (symlinks and `..` resolved), to read each once.
    real: Vec<PathBuf>,
    errors: Vec<ExtendsError>,
}

/// Replaces every service's `extends` in `root` by the merged service.
pub(crate) fn resolve(root: &mut Node, dir: &Path) -> (Extended, Vec<ExtendsError>) {
    let mut r = Resolver {
        dir,
        ext: Extended::default(),
        trees: Vec::new(),
        real: Vec::new(),
        errors: Vec::new(),
    };
    let Some(services) = root.get("services").cloned() else {
        return (r.ext, r.errors);
    };
    let Some(entries) = services.as_map() else {
        return (r.ext, r.errors);
    };
    let mut merged = Vec::new();
    for (k, v) in entries {
        let name = k.scalar().unwrap_or_default().to_string();
        let svc = r.service(&services, None, &name, v, &mut vec![(None, name.clone())]);
        merged.push((k.clone(), svc));
    }
    if let Kind::Map(top) = &mut root.kind {
        for (k, v) in top.iter_mut() {
            if k.scalar() == Some("services") {
                v.kind = Kind::Map(merged.clone());
            }
        }
    }
    (r.ext, r.errors)
}

impl Resolver<'_> {
    /// Error at `n`, or at the `extends` of the main file that led to it.
    fn err(&mut self, n: &Node, message: String, hint: Option<String>) {
        let (line, col) = match self.ext.place(n.line, n.col) {
            Some((f, l, c, (el, ec))) => {
                let message = format!("{message} (in {}:{l}:{c})", f.display());
                self.errors.push(ExtendsError {
                    line: el,
                    col: ec,
                    message,
                    hint,
                });
                return;
            }
            None => (n.line, n.col),
        };
        self.errors.push(ExtendsError {
            line,
            col,
            message,
            hint,
        });
    }

    /// Service `v` (named `name`, in file `file` whose services are
    /// `services`) with its `extends` resolved. `chain` detects cycles.
    fn service(
        &mut self,
        services: &Node,
        file: Option<usize>,
        name: &str,
        v: &Node,
        chain: &mut Vec<(Option<usize>, String)>,
    ) -> Node {
        let Some(ext) = v.get("extends") else {
            return v.clone();
        };
        let (base_name, base_file) = match (&ext.kind, ext.get("service"), ext.get("file")) {
            (Kind::Scalar { .. }, _, _) => (ext.scalar().map(str::to_string), None),
            (Kind::Map(_), Some(s), f) => (s.scalar().map(str::to_string), f),
            _ => (None, None),
        };
        let Some(base_name) = base_name else {
            self.err(
                ext,
                format!("`services.{name}.extends` must be a service name or `{{service, file}}`"),
                None,
            );
            return without_extends(v);
        };
        // The file the base service is in: this one, or `extends.file`.
        let (base_services, base_idx) = match base_file {
            None => (services.clone(), file),
            Some(f) => match self.file(f, ext, file) {
                Some(i) => match self.trees[i].get("services") {
                    Some(s) => (s.clone(), Some(i)),
                    None => {
                        self.err(
                            f,
                            format!("`{}` has no `services`", f.scalar().unwrap_or_default()),
                            None,
                        );
                        return without_extends(v);
                    }
                },
                None => return without_extends(v),
            },
        };
        if chain.contains(&(base_idx, base_name.clone())) {
            self.err(
                ext,
                format!("`services.{name}.extends` goes round in a circle through `{base_name}`"),
                None,
            );
            return without_extends(v);
        }
        let Some(base) = base_services.get(&base_name).cloned() else {
            let hint = base_file
                .and_then(Node::scalar)
                .map(|f| format!("`{f}` has no service `{base_name}`"));
            self.err(
                ext,
                format!("`services.{name}.extends`: no service `{base_name}` to extend"),
                hint,
            );
            return without_extends(v);
        };
        chain.push((base_idx, base_name.clone()));
        let base = self.service(&base_services, base_idx, &base_name, &base, chain);
        chain.pop();
        merge(&base, &without_extends(v), "")
    }

    /// Reads `extends.file` (once), its lines shifted; its index. `from` is
    /// the file that names it (`None`: the main file).
    fn file(&mut self, f: &Node, ext: &Node, from: Option<usize>) -> Option<usize> {
        let Some(rel) = f.scalar() else {
            self.err(f, "`extends.file` must be a path".into(), None);
            return None;
        };
        if rel.contains('$') {
            self.err(
                f,
                format!("`extends.file: {rel}`: tug reads this path as written, without variables"),
                Some("write the file name without `${...}`".into()),
            );
            return None;
        }
        // Relative to the directory of the file that names it.
        let from_dir = from
            .and_then(|i| self.ext.dirs.get(i).cloned())
            .unwrap_or_default();
        let rel_main = clean(&from_dir.join(rel));
        let path = clean(&self.dir.join(&rel_main));
        let real = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
        if let Some(i) = self.real.iter().position(|p| *p == real) {
            return Some(i);
        }
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) => {
                self.err(f, format!("cannot read `{rel}`: {e}"), None);
                return None;
            }
        };
        let idx = self.ext.files.len();
        let shift = (idx + 1) * FILE_LINES;
        // Reported at the main file's position of the first `extends` naming it.
        let (el, ec) = match self.ext.place(ext.line, ext.col) {
            Some((_, _, _, at)) => at,
            None => (ext.line, ext.col),
        };
        self.ext.files.push((path.clone(), el, ec));
        self.ext
            .dirs
            .push(rel_main.parent().map(Path::to_path_buf).unwrap_or_default());
        self.real.push(real);
        let tree = match yaml::parse(&text) {
            Ok((Some(t), errs)) if errs.is_empty() => t,
            Ok((_, errs)) => {
                let e = errs.first();
                self.errors.push(ExtendsError {
                    line: el,
                    col: ec,
                    message: format!(
                        "`{rel}`{}",
                        e.map(|e| format!(":{}:{}: {}", e.line, e.col, e.message))
                            .unwrap_or_else(|| " is empty".into())
                    ),
                    hint: None,
                });
                self.ext.files.pop();
                self.ext.dirs.pop();
                self.real.pop();
                return None;
            }
            Err(e) => {
                self.errors.push(ExtendsError {
                    line: el,
                    col: ec,
                    message: format!("`{rel}`:{}:{}: {}", e.line, e.col, e.message),
                    hint: None,
                });
                self.ext.files.pop();
                self.ext.dirs.pop();
                self.real.pop();
                return None;
            }
        };
        let mut tree = tree;
        shift_lines(&mut tree, shift);
        self.trees.push(tree);
        Some(idx)
    }
}

fn shift_lines(n: &mut Node, by: usize) {
    n.line += by;
    match &mut n.kind {
        Kind::Scalar { .. } => {}
        Kind::Seq(items) => items.iter_mut().for_each(|i| shift_lines(i, by)),
        Kind::Map(entries) => entries.iter_mut().for_each(|(k, v)| {
            shift_lines(k, by);
            shift_lines(v, by);
        }),
    }
}

fn without_extends(v: &Node) -> Node {
    let mut v = v.clone();
    if let Kind::Map(entries) = &mut v.kind {
        entries.retain(|(k, _)| k.scalar() != Some("extends"));
    }
    v
}

/// Keys whose list form (`K=V`, or names) stands for a map, merged by key.
const MAPS: &[&str] = &[
    "environment",
    "labels",
    "annotations",
    "extra_hosts",
    "sysctls",
    "args",
    "depends_on",
    "networks",
];

/// Keys the override replaces whole.
const REPLACED: &[&str] = &["command", "entrypoint", "test"];

/// `over` merged onto `base`, as compose merges an override (`key` is the
/// key both are under).
fn merge(base: &Node, over: &Node, key: &str) -> Node {
    if REPLACED.contains(&key) {
        return over.clone();
    }
    let (base, over) = if MAPS.contains(&key) {
        (as_map(base, key), as_map(over, key))
    } else if key == "build" {
        (build_map(base), build_map(over))
    } else {
        (base.clone(), over.clone())
    };
    match (&base.kind, &over.kind) {
        (Kind::Map(b), Kind::Map(o)) => {
            let mut out = b.clone();
            for (ok, ov) in o {
                match out.iter_mut().find(|(bk, _)| bk.scalar() == ok.scalar()) {
                    Some((_, bv)) => *bv = merge(bv, ov, ok.scalar().unwrap_or_default()),
                    None => out.push((ok.clone(), ov.clone())),
                }
            }
            Node {
                kind: Kind::Map(out),
                ..over
            }
        }
        (Kind::Seq(b), Kind::Seq(o)) => {
            let id: fn(&Node) -> Option<String> = match key {
                "volumes" => volume_target,
                "secrets" | "configs" => file_source,
                _ => same,
            };
            let mut out: Vec<Node> = Vec::new();
            for n in b.iter().chain(o) {
                let k = id(n);
                match out.iter_mut().find(|e| k.is_some() && id(e) == k) {
                    Some(e) => *e = n.clone(),
                    None => out.push(n.clone()),
                }
            }
            Node {
                kind: Kind::Seq(out),
                ..over
            }
        }
        _ => over,
    }
}

fn scalar(text: &str, at: &Node, plain: bool) -> Node {
    Node {
        kind: Kind::Scalar {
            text: text.into(),
            plain,
        },
        line: at.line,
        col: at.col,
    }
}

/// The map a list of `K=V` (or of names, for `depends_on` and `networks`) stands for.
fn as_map(n: &Node, key: &str) -> Node {
    let Some(items) = n.as_seq() else {
        return n.clone();
    };
    let entries = items
        .iter()
        .filter_map(|i| {
            let t = i.scalar()?;
            Some(match key {
                "depends_on" => {
                    let cond = Node {
                        kind: Kind::Map(vec![(
                            scalar("condition", i, true),
                            scalar("service_started", i, true),
                        )]),
                        ..i.clone()
                    };
                    (scalar(t, i, true), cond)
                }
                "networks" => (scalar(t, i, true), scalar("", i, true)),
                // `extra_hosts` may be `host:ip` as well as `host=ip`.
                _ => {
                    let sep = if key == "extra_hosts" && !t.contains('=') {
                        ':'
                    } else {
                        '='
                    };
                    match t.split_once(sep) {
                        Some((k, v)) => (scalar(k, i, true), scalar(v, i, false)),
                        None => (scalar(t, i, true), scalar("", i, true)),
                    }
                }
            })
        })
        .collect();
    Node {
        kind: Kind::Map(entries),
        ..n.clone()
    }
}

/// `build: ./dir` as `{context: ./dir}`.
fn build_map(n: &Node) -> Node {
    match &n.kind {
        Kind::Scalar { .. } if !n.is_null() => Node {
            kind: Kind::Map(vec![(scalar("context", n, true), n.clone())]),
            ..n.clone()
        },
        _ => n.clone(),
    }
}

fn same(n: &Node) -> Option<String> {
    n.scalar().map(str::to_string)
}

/// A volume's mount point: the same target in the override replaces it.
fn volume_target(n: &Node) -> Option<String> {
    match n.scalar() {
        Some(t) => {
            let parts: Vec<&str> = t.split(':').collect();
            Some(
                match parts.len() {
                    1 => parts[0],
                    _ => parts[1],
                }
                .to_string(),
            )
        }
        None => n.get("target").and_then(Node::scalar).map(str::to_string),
    }
}

fn file_source(n: &Node) -> Option<String> {
    n.scalar()
        .or_else(|| n.get("source").and_then(Node::scalar))
        .map(str::to_string)
}
