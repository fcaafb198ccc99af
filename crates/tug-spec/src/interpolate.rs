//! Variable interpolation as compose does it, for compose files and tug.yaml
//! alike: `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`,
//! `${VAR:?error}`, `${VAR?error}`, `${VAR:+alt}`, `${VAR+alt}`, and `$$` for a
//! literal `$`. A `$` not followed by a name or `{` is kept as written.
//!
//! Values come from the process environment, which wins over the `.env` file
//! beside the stack file (or over the files given with `--env-file`, which
//! replace `.env`). Only scalar values are interpolated, never map keys.
//!
//! ```
//! use tug_spec::interpolate::{interpolate, Vars};
//! let vars = Vars::from_pairs([("USER", "app")]);
//! let r = interpolate("${USER}:${PASS:-secret} $$HOME", &vars).unwrap();
//! assert_eq!(r.text, "app:secret $HOME");
//! assert!(interpolate("${PASS:?set PASS}", &vars).unwrap_err().contains("set PASS"));
//! ```

use crate::parse::{parse_env_file, SpecError, SpecErrors};
use crate::yaml::{Kind, Node};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// The variables a file is interpolated with.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Vars {
    map: BTreeMap<String, String>,
}

impl Vars {
    /// Exactly these variables (no process environment).
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Vars {
            map: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    /// The process environment over `env_files` (when given) or over the
    /// `.env` file in `dir` (when it exists), as compose reads them.
    pub fn load(dir: &Path, env_files: &[PathBuf]) -> Result<Self, SpecErrors> {
        let mut vars = Self::from_files(dir, env_files)?;
        for (k, v) in std::env::vars_os() {
            if let (Some(k), Some(v)) = (k.to_str(), v.to_str()) {
                vars.map.insert(k.to_string(), v.to_string());
            }
        }
        Ok(vars)
    }

    /// Like [`Vars::load`], without the process environment.
    pub fn from_files(dir: &Path, env_files: &[PathBuf]) -> Result<Self, SpecErrors> {
        let mut map = BTreeMap::new();
        let dotenv = dir.join(".env");
        let files: Vec<(PathBuf, bool)> = if env_files.is_empty() {
            vec![(dotenv, false)]
        } else {
            env_files.iter().map(|f| (f.clone(), true)).collect()
        };
        for (file, required) in files {
            let text = match std::fs::read_to_string(&file) {
                Ok(t) => t,
                Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => {
                    return Err(SpecErrors(vec![SpecError {
                        file,
                        line: 1,
                        col: 1,
                        message: format!("cannot read env file: {e}"),
                        hint: None,
                    }]))
                }
            };
            match parse_env_file(&text) {
                Ok(pairs) => map.extend(pairs),
                Err((line, message)) => {
                    return Err(SpecErrors(vec![SpecError {
                        file,
                        line,
                        col: 1,
                        message,
                        hint: None,
                    }]))
                }
            }
        }
        Ok(Vars { map })
    }

    /// These variables and one more.
    pub fn with(mut self, name: &str, value: &str) -> Self {
        self.map.insert(name.to_string(), value.to_string());
        self
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.map.get(name).map(String::as_str)
    }
}

/// The result of interpolating one value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    pub text: String,
    /// Variables referenced without a default and not set (compose reads them as "").
    pub unset: Vec<String>,
    /// Whether the value held any `$` construct at all.
    pub changed: bool,
}

fn is_name_start(c: char) -> bool {
    c == '_' || c.is_ascii_alphabetic()
}
fn is_name(c: char) -> bool {
    c == '_' || c.is_ascii_alphanumeric()
}

/// Interpolates one value; the error says what is wrong and how to fix it.
pub fn interpolate(text: &str, vars: &Vars) -> Result<Resolved, String> {
    let mut out = Resolved {
        text: String::with_capacity(text.len()),
        unset: Vec::new(),
        changed: false,
    };
    expand(text, vars, &mut out, 0)?;
    Ok(out)
}

/// Nested defaults (`${A:-${B}}`) recurse; the depth is bounded by the input.
fn expand(text: &str, vars: &Vars, out: &mut Resolved, depth: usize) -> Result<(), String> {
    if depth > 32 {
        return Err("variables nested too deeply".into());
    }
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.text.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let mut chars = after.chars();
        match chars.next() {
            Some('$') => {
                out.changed = true;
                out.text.push('$');
                rest = &after[1..];
            }
            Some(c) if is_name_start(c) => {
                out.changed = true;
                let end = after.find(|c: char| !is_name(c)).unwrap_or(after.len());
                let name = &after[..end];
                match vars.get(name) {
                    Some(v) => out.text.push_str(v),
                    None => out.unset.push(name.to_string()),
                }
                rest = &after[end..];
            }
            Some('{') => {
                out.changed = true;
                let body = &after[1..];
                let close = matching_brace(body).ok_or_else(|| invalid(text))?;
                braced(&body[..close], text, vars, out, depth)?;
                rest = &body[close + 1..];
            }
            // A lone `$` (`$(`, `$1`, a trailing `$`) is kept, as compose does.
            _ => {
                out.text.push('$');
                rest = after;
            }
        }
    }
    out.text.push_str(rest);
    Ok(())
}

/// The index of the `}` closing a `${`, counting nested `${ ... }`.
fn matching_brace(body: &str) -> Option<usize> {
    let mut depth = 0usize;
    let bytes = body.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'$' if bytes.get(i + 1) == Some(&b'{') => {
                depth += 1;
                i += 2;
                continue;
            }
            b'$' if bytes.get(i + 1) == Some(&b'$') => {
                i += 2;
                continue;
            }
            b'}' if depth == 0 => return Some(i),
            b'}' => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    None
}

fn invalid(text: &str) -> String {
    format!("invalid interpolation in `{text}`: write `$$` for a literal `$`, `${{VAR}}` or `${{VAR:-default}}` for a variable")
}

fn braced(
    body: &str,
    whole: &str,
    vars: &Vars,
    out: &mut Resolved,
    depth: usize,
) -> Result<(), String> {
    let end = body.find(|c: char| !is_name(c)).unwrap_or(body.len());
    let name = &body[..end];
    if !name.starts_with(is_name_start) {
        return Err(invalid(whole));
    }
    let op = &body[end..];
    let value = vars.get(name);
    let (kind, arg) = if op.is_empty() {
        ("", "")
    } else if let Some(a) = op.strip_prefix(":-") {
        (":-", a)
    } else if let Some(a) = op.strip_prefix(":?") {
        (":?", a)
    } else if let Some(a) = op.strip_prefix(":+") {
        (":+", a)
    } else if let Some(a) = op.strip_prefix('-') {
        ("-", a)
    } else if let Some(a) = op.strip_prefix('?') {
        ("?", a)
    } else if let Some(a) = op.strip_prefix('+') {
        ("+", a)
    } else {
        return Err(invalid(whole));
    };
    let set_nonempty = value.is_some_and(|v| !v.is_empty());
    match kind {
        "" => match value {
            Some(v) => out.text.push_str(v),
            None => out.unset.push(name.to_string()),
        },
        ":-" if set_nonempty => out.text.push_str(value.unwrap_or_default()),
        "-" if value.is_some() => out.text.push_str(value.unwrap_or_default()),
        ":-" | "-" => expand(arg, vars, out, depth + 1)?,
        ":?" | "?" => {
            let ok = if kind == ":?" {
                set_nonempty
            } else {
                value.is_some()
            };
            if !ok {
                let mut msg = Resolved {
                    text: String::new(),
                    unset: Vec::new(),
                    changed: false,
                };
                expand(arg, vars, &mut msg, depth + 1)?;
                let why = if kind == ":?" && value.is_some() {
                    "is empty"
                } else {
                    "is not set"
                };
                return Err(format!(
                    "required variable {name} {why}{}",
                    if msg.text.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", msg.text)
                    }
                ));
            }
            out.text.push_str(value.unwrap_or_default());
        }
        ":+" if set_nonempty => expand(arg, vars, out, depth + 1)?,
        "+" if value.is_some() => expand(arg, vars, out, depth + 1)?,
        _ => {}
    }
    Ok(())
}

/// What interpolation did to one scalar, by its position in the file.
#[derive(Clone, Debug)]
pub(crate) struct Done {
    /// The value as written, with its `${VAR}` references.
    pub raw: String,
    pub unset: Vec<String>,
}

/// One problem met while interpolating a tree.
pub(crate) struct TreeError {
    pub line: usize,
    pub col: usize,
    pub message: String,
}

/// Interpolates every scalar value of a tree in place (map keys are left as
/// written). Returns what changed, keyed by (line, col), and the errors.
pub(crate) fn tree(
    node: &mut Node,
    vars: &Vars,
) -> (HashMap<(usize, usize), Done>, Vec<TreeError>) {
    let mut done = HashMap::new();
    let mut errors = Vec::new();
    walk(node, vars, &mut done, &mut errors);
    (done, errors)
}

/// Like [`tree`], leaving the values of the top-level keys in `skip` as written.
pub(crate) fn tree_except(
    node: &mut Node,
    vars: &Vars,
    skip: &[&str],
) -> (HashMap<(usize, usize), Done>, Vec<TreeError>) {
    let mut done = HashMap::new();
    let mut errors = Vec::new();
    if let Kind::Map(entries) = &mut node.kind {
        for (k, v) in entries {
            if !k.scalar().is_some_and(|k| skip.contains(&k)) {
                walk(v, vars, &mut done, &mut errors);
            }
        }
    } else {
        walk(node, vars, &mut done, &mut errors);
    }
    (done, errors)
}

fn walk(
    node: &mut Node,
    vars: &Vars,
    done: &mut HashMap<(usize, usize), Done>,
    errors: &mut Vec<TreeError>,
) {
    let (line, col) = (node.line, node.col);
    match &mut node.kind {
        Kind::Scalar { text, plain } => {
            if !text.contains('$') {
                return;
            }
            match interpolate(text, vars) {
                Ok(r) => {
                    // `${EMPTY}` is an empty string, not YAML's null.
                    if r.text.is_empty() {
                        *plain = false;
                    }
                    let raw = std::mem::replace(text, r.text);
                    done.insert(
                        (line, col),
                        Done {
                            raw,
                            unset: r.unset,
                        },
                    );
                }
                Err(message) => errors.push(TreeError { line, col, message }),
            }
        }
        Kind::Seq(items) => {
            for i in items {
                walk(i, vars, done, errors);
            }
        }
        Kind::Map(entries) => {
            for (_, v) in entries {
                walk(v, vars, done, errors);
            }
        }
    }
}

/// `text` with every `$` doubled, so that interpolation gives `text` back.
pub fn escape(text: &str) -> String {
    text.replace('$', "$$")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> Vars {
        Vars::from_pairs([("A", "aa"), ("E", "")])
    }
    fn i(t: &str) -> String {
        interpolate(t, &vars()).unwrap().text
    }

    /// Each expectation was read from `docker compose config` (v5).
    #[test]
    fn as_compose_reads_them() {
        assert_eq!(i("x$(y)"), "x$(y)");
        assert_eq!(i("a$1b"), "a$1b");
        assert_eq!(i("a $ b"), "a $ b");
        assert_eq!(i("tail$"), "tail$");
        assert_eq!(i("p${A:-${B:-deep}}q"), "paaq");
        assert_eq!(i("p${B:-${C:-deep}}q"), "pdeepq");
        assert_eq!(i("${E:-def}"), "def");
        assert_eq!(i("${E-def}"), "");
        assert_eq!(i("${U-def}"), "def");
        assert_eq!(i("${E:+alt}"), "");
        assert_eq!(i("${A:+alt}"), "alt");
        assert_eq!(i("${A+alt}"), "alt");
        assert_eq!(i("${E+alt}"), "alt");
        assert_eq!(i("${U:+alt}"), "");
        assert_eq!(i("$$HOME"), "$HOME");
        assert_eq!(i("${A}x$A"), "aaxaa");
        assert_eq!(i("${A:-a}b}"), "aab}");
        assert_eq!(i("${E?}"), "");
        let r = interpolate("${U}-$V", &vars()).unwrap();
        assert_eq!(
            (r.text.as_str(), r.unset),
            ("-", vec!["U".into(), "V".into()])
        );
    }

    #[test]
    fn errors() {
        let e = |t: &str| interpolate(t, &vars()).unwrap_err();
        assert_eq!(
            e("${U:?need it}"),
            "required variable U is not set: need it"
        );
        assert_eq!(e("${E:?empty}"), "required variable E is empty: empty");
        assert_eq!(e("${U?}"), "required variable U is not set");
        for bad in ["${A", "${A B}", "${1A}", "${A:=x}", "${}"] {
            assert!(e(bad).starts_with("invalid interpolation"), "{bad}");
        }
    }

    #[test]
    fn escape_round_trips() {
        for t in ["$$(cat x)", "a$b", "$", "plain"] {
            assert_eq!(i(&escape(t)), t);
        }
    }
}
