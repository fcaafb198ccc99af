//! The GitHub Actions expression language: `${{ … }}` templates and `if:`
//! conditions.
//!
//! Semantics follow GitHub's documentation: loose equality that converts
//! mismatched types to numbers, case-insensitive string comparison and
//! property access, `&&`/`||` that return an operand (not a boolean), the
//! `.*` object filter, and the documented functions. Parsing is separate from
//! evaluation so that a workflow's expressions are all checked, at
//! `file:line:col`, before anything runs.
//!
//! ```
//! use tug_pipeline::github::expr::{Expr, Scope};
//! let e = Expr::parse("contains(matrix.os, 'ubuntu') && format('{0}-{1}', matrix.os, 1)").unwrap();
//! let mut scope = Scope::default();
//! scope.set("matrix", serde_json::json!({ "os": "ubuntu-latest" }));
//! assert_eq!(scope.eval(&e).unwrap(), serde_json::json!("ubuntu-latest-1"));
//! ```

use serde_json::{Map, Value};
use std::path::PathBuf;

/// Nesting limit (GitHub allows 50 levels).
const MAX_DEPTH: usize = 50;

/// The named contexts an expression may start with.
pub const CONTEXTS: &[&str] = &[
    "github", "env", "vars", "job", "jobs", "steps", "runner", "secrets", "strategy", "matrix",
    "needs", "inputs",
];

/// Functions with their (min, max) argument counts.
const FUNCTIONS: &[(&str, usize, usize)] = &[
    ("contains", 2, 2),
    ("startsWith", 2, 2),
    ("endsWith", 2, 2),
    ("format", 1, usize::MAX),
    ("join", 1, 2),
    ("toJSON", 1, 1),
    ("fromJSON", 1, 1),
    ("hashFiles", 1, usize::MAX),
    ("success", 0, 0),
    ("failure", 0, 0),
    ("always", 0, 0),
    ("cancelled", 0, 0),
];

/// A problem in an expression; `offset` is a byte offset into the text that
/// was parsed (the caller turns it into a line and column).
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct ExprError {
    pub offset: usize,
    pub message: String,
}

fn err<T>(offset: usize, message: impl Into<String>) -> Result<T, ExprError> {
    Err(ExprError {
        offset,
        message: message.into(),
    })
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Cmp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// A parsed expression.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    Null,
    Bool(bool),
    Number(f64),
    String(String),
    /// A named context: `github`, `matrix`, …
    Context(String),
    /// `a.b` and `a[b]`.
    Index(Box<Expr>, Box<Expr>),
    /// `a.*`: the values of an object or the items of an array.
    Star(Box<Expr>),
    Not(Box<Expr>),
    Compare(Cmp, Box<Expr>, Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Call {
        name: &'static str,
        args: Vec<Expr>,
        offset: usize,
    },
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Num(f64),
    Str(String),
    Ident(String),
    Punct(&'static str),
}

fn lex(src: &str) -> Result<Vec<(Tok, usize)>, ExprError> {
    let b = src.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    while i < b.len() {
        let c = b[i];
        let start = i;
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if c == b'\'' {
            let mut s = String::new();
            i += 1;
            loop {
                match src[i..].find('\'') {
                    None => return err(start, "unterminated string (a string ends with `'`)"),
                    Some(j) => {
                        s.push_str(&src[i..i + j]);
                        i += j + 1;
                        if b.get(i) == Some(&b'\'') {
                            s.push('\'');
                            i += 1;
                        } else {
                            break;
                        }
                    }
                }
            }
            out.push((Tok::Str(s), start));
            continue;
        }
        if c == b'"' {
            return err(start, "strings use single quotes: 'text'");
        }
        let negative_number = c == b'-'
            && b.get(i + 1)
                .is_some_and(|d| d.is_ascii_digit() || *d == b'.');
        if c.is_ascii_digit()
            || negative_number
            || (c == b'.' && b.get(i + 1).is_some_and(u8::is_ascii_digit))
        {
            i += 1;
            while i < b.len()
                && (b[i].is_ascii_alphanumeric()
                    || b[i] == b'.'
                    || ((b[i] == b'-' || b[i] == b'+') && matches!(b[i - 1], b'e' | b'E')))
            {
                i += 1;
            }
            let text = &src[start..i];
            match parse_number(text) {
                Some(n) => out.push((Tok::Num(n), start)),
                None => return err(start, format!("`{text}` is not a number")),
            }
            continue;
        }
        if c.is_ascii_alphabetic() || c == b'_' {
            i += 1;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'-') {
                i += 1;
            }
            out.push((Tok::Ident(src[start..i].to_string()), start));
            continue;
        }
        let two = src.get(i..i + 2).unwrap_or("");
        let p: &'static str = match two {
            "==" => "==",
            "!=" => "!=",
            "<=" => "<=",
            ">=" => ">=",
            "&&" => "&&",
            "||" => "||",
            _ => match c {
                b'(' => "(",
                b')' => ")",
                b'[' => "[",
                b']' => "]",
                b'.' => ".",
                b',' => ",",
                b'!' => "!",
                b'<' => "<",
                b'>' => ">",
                b'*' => "*",
                _ => {
                    let ch = src[i..].chars().next().unwrap_or('?');
                    return err(start, format!("unexpected character `{ch}`"));
                }
            },
        };
        i += p.len();
        out.push((Tok::Punct(p), start));
    }
    Ok(out)
}

/// GitHub's number literals and string-to-number conversion: decimal with an
/// optional exponent, `0x` hex, `0o` octal, `Infinity`, `NaN`.
fn parse_number(text: &str) -> Option<f64> {
    let t = text.trim();
    let (neg, body) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let v = if let Some(h) = body.strip_prefix("0x") {
        i64::from_str_radix(h, 16).ok()? as f64
    } else if let Some(o) = body.strip_prefix("0o") {
        i64::from_str_radix(o, 8).ok()? as f64
    } else if body == "Infinity" {
        f64::INFINITY
    } else if body.is_empty()
        || !body
            .bytes()
            .all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'-' | b'+'))
    {
        return None;
    } else {
        body.parse().ok()?
    };
    Some(if neg { -v } else { v })
}

struct Parser {
    toks: Vec<(Tok, usize)>,
    pos: usize,
    end: usize,
    depth: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|(t, _)| t)
    }
    fn offset(&self) -> usize {
        self.toks.get(self.pos).map_or(self.end, |(_, o)| *o)
    }
    fn eat(&mut self, p: &str) -> bool {
        if matches!(self.peek(), Some(Tok::Punct(q)) if *q == p) {
            self.pos += 1;
            true
        } else {
            false
        }
    }
    fn expect(&mut self, p: &str) -> Result<(), ExprError> {
        if self.eat(p) {
            Ok(())
        } else {
            let found = self.describe();
            err(self.offset(), format!("expected `{p}`, found {found}"))
        }
    }
    fn describe(&self) -> String {
        match self.peek() {
            None => "the end of the expression".into(),
            Some(Tok::Num(n)) => format!("`{}`", number_to_string(*n)),
            Some(Tok::Str(s)) => format!("'{s}'"),
            Some(Tok::Ident(s)) => format!("`{s}`"),
            Some(Tok::Punct(p)) => format!("`{p}`"),
        }
    }

    fn enter(&mut self) -> Result<(), ExprError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return err(
                self.offset(),
                format!("expression nested deeper than {MAX_DEPTH} levels"),
            );
        }
        Ok(())
    }

    fn or(&mut self) -> Result<Expr, ExprError> {
        self.enter()?;
        let mut l = self.and()?;
        while self.eat("||") {
            let r = self.and()?;
            l = Expr::Or(Box::new(l), Box::new(r));
        }
        self.depth -= 1;
        Ok(l)
    }
    fn and(&mut self) -> Result<Expr, ExprError> {
        let mut l = self.equality()?;
        while self.eat("&&") {
            let r = self.equality()?;
            l = Expr::And(Box::new(l), Box::new(r));
        }
        Ok(l)
    }
    fn equality(&mut self) -> Result<Expr, ExprError> {
        let mut l = self.relation()?;
        loop {
            let op = if self.eat("==") {
                Cmp::Eq
            } else if self.eat("!=") {
                Cmp::Ne
            } else {
                return Ok(l);
            };
            let r = self.relation()?;
            l = Expr::Compare(op, Box::new(l), Box::new(r));
        }
    }
    fn relation(&mut self) -> Result<Expr, ExprError> {
        let mut l = self.unary()?;
        loop {
            let op = if self.eat("<=") {
                Cmp::Le
            } else if self.eat(">=") {
                Cmp::Ge
            } else if self.eat("<") {
                Cmp::Lt
            } else if self.eat(">") {
                Cmp::Gt
            } else {
                return Ok(l);
            };
            let r = self.unary()?;
            l = Expr::Compare(op, Box::new(l), Box::new(r));
        }
    }
    fn unary(&mut self) -> Result<Expr, ExprError> {
        if self.eat("!") {
            self.enter()?;
            let e = self.unary()?;
            self.depth -= 1;
            return Ok(Expr::Not(Box::new(e)));
        }
        self.postfix()
    }
    fn postfix(&mut self) -> Result<Expr, ExprError> {
        let mut e = self.primary()?;
        loop {
            if self.eat(".") {
                if self.eat("*") {
                    e = Expr::Star(Box::new(e));
                    continue;
                }
                match self.peek().cloned() {
                    Some(Tok::Ident(name)) => {
                        self.pos += 1;
                        e = Expr::Index(Box::new(e), Box::new(Expr::String(name)));
                    }
                    _ => {
                        let found = self.describe();
                        return err(
                            self.offset(),
                            format!("expected a property name after `.`, found {found}"),
                        );
                    }
                }
            } else if self.eat("[") {
                if self.eat("*") {
                    self.expect("]")?;
                    e = Expr::Star(Box::new(e));
                    continue;
                }
                let i = self.or()?;
                self.expect("]")?;
                e = Expr::Index(Box::new(e), Box::new(i));
            } else {
                return Ok(e);
            }
        }
    }
    fn primary(&mut self) -> Result<Expr, ExprError> {
        let at = self.offset();
        let Some(tok) = self.peek().cloned() else {
            return err(at, "expected a value, found the end of the expression");
        };
        self.pos += 1;
        match tok {
            Tok::Num(n) => Ok(Expr::Number(n)),
            Tok::Str(s) => Ok(Expr::String(s)),
            Tok::Punct("(") => {
                let e = self.or()?;
                self.expect(")")?;
                Ok(e)
            }
            Tok::Punct(p) => err(at, format!("expected a value, found `{p}`")),
            Tok::Ident(name) => {
                if self.eat("(") {
                    return self.call(&name, at);
                }
                match name.as_str() {
                    "true" => Ok(Expr::Bool(true)),
                    "false" => Ok(Expr::Bool(false)),
                    "null" => Ok(Expr::Null),
                    "NaN" => Ok(Expr::Number(f64::NAN)),
                    "Infinity" => Ok(Expr::Number(f64::INFINITY)),
                    _ => match CONTEXTS.iter().find(|c| **c == name) {
                        Some(c) => Ok(Expr::Context((*c).to_string())),
                        None => {
                            let hint = closest(&name, CONTEXTS.iter().copied())
                                .map(|c| format!(" (did you mean `{c}`?)"))
                                .unwrap_or_default();
                            err(
                                at,
                                format!(
                                    "unknown context `{name}`{hint}; contexts are {}",
                                    CONTEXTS.join(", ")
                                ),
                            )
                        }
                    },
                }
            }
        }
    }
    fn call(&mut self, name: &str, at: usize) -> Result<Expr, ExprError> {
        let Some(&(fname, min, max)) = FUNCTIONS
            .iter()
            .find(|(f, _, _)| f.eq_ignore_ascii_case(name))
        else {
            let hint = closest(name, FUNCTIONS.iter().map(|f| f.0))
                .map(|c| format!(" (did you mean `{c}`?)"))
                .unwrap_or_default();
            return err(at, format!("unknown function `{name}`{hint}"));
        };
        self.enter()?;
        let mut args = Vec::new();
        if !self.eat(")") {
            loop {
                args.push(self.or()?);
                if self.eat(")") {
                    break;
                }
                self.expect(",")?;
            }
        }
        self.depth -= 1;
        if args.len() < min || args.len() > max {
            let want = if min == max {
                format!("{min}")
            } else if max == usize::MAX {
                format!("at least {min}")
            } else {
                format!("{min} to {max}")
            };
            return err(
                at,
                format!("`{fname}` takes {want} argument(s), got {}", args.len()),
            );
        }
        Ok(Expr::Call {
            name: fname,
            args,
            offset: at,
        })
    }
}

fn closest<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .map(|c| {
            (
                strsim::jaro_winkler(&name.to_ascii_lowercase(), &c.to_ascii_lowercase()),
                c,
            )
        })
        .filter(|(s, _)| *s > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

impl Expr {
    /// Parses one expression (the text between `${{` and `}}`, or an `if:`).
    pub fn parse(src: &str) -> Result<Expr, ExprError> {
        let toks = lex(src)?;
        if toks.is_empty() {
            return err(0, "empty expression");
        }
        let mut p = Parser {
            toks,
            pos: 0,
            end: src.len(),
            depth: 0,
        };
        let e = p.or()?;
        if p.pos < p.toks.len() {
            let found = p.describe();
            return err(
                p.offset(),
                format!("unexpected {found} after a complete expression"),
            );
        }
        Ok(e)
    }

    /// Whether the expression calls one of the status functions; an `if:`
    /// without one is implicitly `success() && (…)`.
    pub fn has_status_function(&self) -> bool {
        match self {
            Expr::Call { name, args, .. } => {
                matches!(*name, "success" | "failure" | "always" | "cancelled")
                    || args.iter().any(Expr::has_status_function)
            }
            Expr::Index(a, b) | Expr::Compare(_, a, b) | Expr::And(a, b) | Expr::Or(a, b) => {
                a.has_status_function() || b.has_status_function()
            }
            Expr::Star(a) | Expr::Not(a) => a.has_status_function(),
            _ => false,
        }
    }

    /// The `steps.X`, `needs.X`, … names an expression reads, as
    /// `(context, first key)` pairs.
    pub fn references(&self, out: &mut Vec<(String, String)>) {
        match self {
            Expr::Index(a, b) => {
                if let (Expr::Context(c), Expr::String(k)) = (a.as_ref(), b.as_ref()) {
                    out.push((c.clone(), k.clone()));
                }
                a.references(out);
                b.references(out);
            }
            Expr::Compare(_, a, b) | Expr::And(a, b) | Expr::Or(a, b) => {
                a.references(out);
                b.references(out);
            }
            Expr::Star(a) | Expr::Not(a) => a.references(out),
            Expr::Call { args, .. } => args.iter().for_each(|a| a.references(out)),
            _ => {}
        }
    }
}

/// A string with `${{ … }}` parts.
#[derive(Clone, Debug, PartialEq)]
pub struct Template {
    pub parts: Vec<Part>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Part {
    Text(String),
    Expr(Expr),
}

impl Template {
    /// Splits `src` into text and expressions. Error offsets are into `src`.
    pub fn parse(src: &str) -> Result<Template, ExprError> {
        let mut parts = Vec::new();
        let mut rest = 0;
        while let Some(i) = src[rest..].find("${{") {
            let open = rest + i;
            if open > rest {
                parts.push(Part::Text(src[rest..open].to_string()));
            }
            let inner_start = open + 3;
            let close = find_close(src, inner_start).ok_or_else(|| ExprError {
                offset: open,
                message: "`${{` without a closing `}}`".into(),
            })?;
            let inner = &src[inner_start..close];
            let e = Expr::parse(inner).map_err(|mut e| {
                e.offset += inner_start;
                e
            })?;
            parts.push(Part::Expr(e));
            rest = close + 2;
        }
        if rest < src.len() {
            parts.push(Part::Text(src[rest..].to_string()));
        }
        Ok(Template { parts })
    }

    /// Whether the text has any expression at all.
    pub fn is_literal(&self) -> bool {
        self.parts.iter().all(|p| matches!(p, Part::Text(_)))
    }

    /// The single expression when the whole text is one `${{ … }}`.
    pub fn single(&self) -> Option<&Expr> {
        match self.parts.as_slice() {
            [Part::Expr(e)] => Some(e),
            _ => None,
        }
    }
}

/// The `}}` that closes an expression starting at `from`, skipping strings.
fn find_close(src: &str, from: usize) -> Option<usize> {
    let b = src.as_bytes();
    let mut i = from;
    let mut in_str = false;
    while i < b.len() {
        match b[i] {
            b'\'' => in_str = !in_str,
            b'}' if !in_str && b.get(i + 1) == Some(&b'}') => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

/// Parses an `if:` condition: `${{ }}` is optional, and a condition without a
/// status function only runs after success.
pub fn parse_condition(src: &str) -> Result<Expr, ExprError> {
    let trimmed = src.trim();
    let lead = src.len() - src.trim_start().len();
    let e = match Template::parse(trimmed) {
        Ok(t) if t.single().is_some() => t.single().cloned().expect("checked"),
        Ok(t) if t.is_literal() => Expr::parse(trimmed).map_err(|mut e| {
            e.offset += lead;
            e
        })?,
        Ok(_) => {
            return err(
                lead,
                "a condition is one expression; `${{ }}` may wrap the whole of it, not a part",
            );
        }
        Err(mut e) => {
            e.offset += lead;
            return Err(e);
        }
    };
    Ok(if e.has_status_function() {
        e
    } else {
        Expr::And(
            Box::new(Expr::Call {
                name: "success",
                args: vec![],
                offset: 0,
            }),
            Box::new(e),
        )
    })
}

/// The outcome so far, for the status functions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Status {
    /// A previous step (or, for a job, a needed job) failed.
    pub failed: bool,
    /// The run was cancelled.
    pub cancelled: bool,
}

/// What an expression can see: the contexts, the status so far, and the
/// workspace for `hashFiles`.
#[derive(Clone, Debug, Default)]
pub struct Scope {
    pub contexts: Map<String, Value>,
    pub status: Status,
    pub workspace: PathBuf,
}

/// An evaluation result: `.*` makes a filtered array, whose later property
/// accesses apply to every item.
enum V {
    Plain(Value),
    Filtered(Vec<Value>),
}

impl V {
    fn value(self) -> Value {
        match self {
            V::Plain(v) => v,
            V::Filtered(v) => Value::Array(v),
        }
    }
}

impl Scope {
    pub fn set(&mut self, context: &str, value: Value) {
        self.contexts.insert(context.to_string(), value);
    }

    pub fn eval(&self, e: &Expr) -> Result<Value, ExprError> {
        Ok(self.ev(e)?.value())
    }

    /// Evaluates a condition to a boolean (truthiness).
    pub fn test(&self, e: &Expr) -> Result<bool, ExprError> {
        Ok(truthy(&self.eval(e)?))
    }

    /// Renders a template to a string.
    pub fn render(&self, t: &Template) -> Result<String, ExprError> {
        let mut out = String::new();
        for p in &t.parts {
            match p {
                Part::Text(s) => out.push_str(s),
                Part::Expr(e) => out.push_str(&to_string(&self.eval(e)?)),
            }
        }
        Ok(out)
    }

    /// A template as a value: one whole `${{ … }}` keeps its type.
    pub fn render_value(&self, t: &Template) -> Result<Value, ExprError> {
        match t.single() {
            Some(e) => self.eval(e),
            None => Ok(Value::String(self.render(t)?)),
        }
    }

    fn ev(&self, e: &Expr) -> Result<V, ExprError> {
        Ok(V::Plain(match e {
            Expr::Null => Value::Null,
            Expr::Bool(b) => Value::Bool(*b),
            Expr::Number(n) => number(*n),
            Expr::String(s) => Value::String(s.clone()),
            Expr::Context(c) => self.contexts.get(c).cloned().unwrap_or(Value::Null),
            Expr::Index(a, k) => {
                let key = self.eval(k)?;
                return Ok(match self.ev(a)? {
                    V::Plain(v) => V::Plain(index(&v, &key)),
                    V::Filtered(items) => V::Filtered(
                        items
                            .iter()
                            .map(|i| index(i, &key))
                            .filter(|v| !v.is_null())
                            .collect(),
                    ),
                });
            }
            Expr::Star(a) => {
                let items = match self.ev(a)? {
                    V::Plain(Value::Object(m)) => m.into_iter().map(|(_, v)| v).collect(),
                    V::Plain(Value::Array(v)) => v,
                    V::Plain(_) => Vec::new(),
                    V::Filtered(items) => items
                        .into_iter()
                        .flat_map(|i| match i {
                            Value::Object(m) => m.into_iter().map(|(_, v)| v).collect(),
                            Value::Array(v) => v,
                            _ => Vec::new(),
                        })
                        .collect(),
                };
                return Ok(V::Filtered(items));
            }
            Expr::Not(a) => Value::Bool(!truthy(&self.eval(a)?)),
            Expr::Compare(op, a, b) => Value::Bool(compare(*op, &self.eval(a)?, &self.eval(b)?)),
            Expr::And(a, b) => {
                let l = self.eval(a)?;
                if !truthy(&l) {
                    l
                } else {
                    self.eval(b)?
                }
            }
            Expr::Or(a, b) => {
                let l = self.eval(a)?;
                if truthy(&l) {
                    l
                } else {
                    self.eval(b)?
                }
            }
            Expr::Call { name, args, offset } => self.call(name, args, *offset)?,
        }))
    }

    fn call(&self, name: &str, args: &[Expr], at: usize) -> Result<Value, ExprError> {
        let st = self.status;
        Ok(match name {
            "success" => Value::Bool(!st.failed && !st.cancelled),
            "failure" => Value::Bool(st.failed && !st.cancelled),
            "always" => Value::Bool(true),
            "cancelled" => Value::Bool(st.cancelled),
            _ => {
                let vals: Vec<Value> = args
                    .iter()
                    .map(|a| self.eval(a))
                    .collect::<Result<_, _>>()?;
                match name {
                    "contains" => Value::Bool(match &vals[0] {
                        Value::Array(items) => items.iter().any(|i| compare(Cmp::Eq, i, &vals[1])),
                        s => to_string(s)
                            .to_lowercase()
                            .contains(&to_string(&vals[1]).to_lowercase()),
                    }),
                    "startsWith" => Value::Bool(
                        to_string(&vals[0])
                            .to_lowercase()
                            .starts_with(&to_string(&vals[1]).to_lowercase()),
                    ),
                    "endsWith" => Value::Bool(
                        to_string(&vals[0])
                            .to_lowercase()
                            .ends_with(&to_string(&vals[1]).to_lowercase()),
                    ),
                    "format" => Value::String(format_fn(&to_string(&vals[0]), &vals[1..], at)?),
                    "join" => {
                        let sep = vals.get(1).map_or(",".to_string(), to_string);
                        Value::String(match &vals[0] {
                            Value::Array(items) => {
                                items.iter().map(to_string).collect::<Vec<_>>().join(&sep)
                            }
                            v => to_string(v),
                        })
                    }
                    "toJSON" => {
                        Value::String(serde_json::to_string_pretty(&vals[0]).unwrap_or_default())
                    }
                    "fromJSON" => {
                        let text = to_string(&vals[0]);
                        serde_json::from_str(&text).or_else(|e| {
                            err(at, format!("fromJSON: the argument is not JSON: {e}"))
                        })?
                    }
                    "hashFiles" => {
                        let pats: Vec<String> = vals.iter().map(to_string).collect();
                        Value::String(hash_files(&self.workspace, &pats).or_else(|m| err(at, m))?)
                    }
                    _ => return err(at, format!("unknown function `{name}`")),
                }
            }
        })
    }
}

fn format_fn(fmt: &str, args: &[Value], at: usize) -> Result<String, ExprError> {
    let mut out = String::new();
    let mut chars = fmt.char_indices().peekable();
    while let Some((_, c)) = chars.next() {
        match c {
            '{' if chars.peek().map(|p| p.1) == Some('{') => {
                chars.next();
                out.push('{');
            }
            '}' if chars.peek().map(|p| p.1) == Some('}') => {
                chars.next();
                out.push('}');
            }
            '{' => {
                let mut digits = String::new();
                loop {
                    match chars.next() {
                        Some((_, '}')) => break,
                        Some((_, d)) if d.is_ascii_digit() => digits.push(d),
                        _ => return err(at, format!("format: invalid placeholder in '{fmt}' (use {{0}}, {{1}}, …; `{{{{` for a brace)")),
                    }
                }
                let i: usize = digits
                    .parse()
                    .or_else(|_| err(at, format!("format: invalid placeholder in '{fmt}'")))?;
                match args.get(i) {
                    Some(v) => out.push_str(&to_string(v)),
                    None => {
                        return err(
                            at,
                            format!(
                                "format: '{fmt}' uses {{{i}}} but only {} argument(s) follow",
                                args.len()
                            ),
                        )
                    }
                }
            }
            '}' => {
                return err(
                    at,
                    format!("format: unmatched `}}` in '{fmt}' (use `}}}}` for a brace)"),
                )
            }
            c => out.push(c),
        }
    }
    Ok(out)
}

/// SHA-256 over the SHA-256 of every file matching the patterns (globs
/// relative to the workspace; `!` excludes), in path order; "" when none
/// match.
fn hash_files(root: &std::path::Path, patterns: &[String]) -> Result<String, String> {
    use sha2::{Digest, Sha256};
    let mut include = globset::GlobSetBuilder::new();
    let mut exclude = globset::GlobSetBuilder::new();
    for p in patterns {
        let (set, pat) = match p.strip_prefix('!') {
            Some(rest) => (&mut exclude, rest),
            None => (&mut include, p.as_str()),
        };
        let pat = pat.trim_start_matches("./");
        let glob = globset::GlobBuilder::new(pat)
            .literal_separator(true)
            .build()
            .map_err(|e| format!("hashFiles: bad pattern `{p}`: {e}"))?;
        set.add(glob);
    }
    let include = include.build().map_err(|e| format!("hashFiles: {e}"))?;
    let exclude = exclude.build().map_err(|e| format!("hashFiles: {e}"))?;
    let mut files: Vec<PathBuf> = walkdir::WalkDir::new(root)
        .follow_links(false)
        .into_iter()
        .filter_entry(|e| e.file_name() != ".git")
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .filter_map(|e| e.path().strip_prefix(root).ok().map(PathBuf::from))
        .filter(|rel| include.is_match(rel) && !exclude.is_match(rel))
        .collect();
    if files.is_empty() {
        return Ok(String::new());
    }
    files.sort();
    let mut all = Sha256::new();
    for rel in files {
        let data = std::fs::read(root.join(&rel))
            .map_err(|e| format!("hashFiles: reading {}: {e}", rel.display()))?;
        all.update(Sha256::digest(&data));
    }
    Ok(hex::encode(all.finalize()))
}

fn number(n: f64) -> Value {
    if n.fract() == 0.0 && n.abs() < 9.0e15 {
        Value::from(n as i64)
    } else {
        serde_json::Number::from_f64(n).map_or(Value::Null, Value::Number)
    }
}

fn index(v: &Value, key: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let k = to_string(key);
            m.get(&k)
                .or_else(|| {
                    m.iter()
                        .find(|(mk, _)| mk.eq_ignore_ascii_case(&k))
                        .map(|(_, v)| v)
                })
                .cloned()
                .unwrap_or(Value::Null)
        }
        Value::Array(items) => {
            let n = to_number(key);
            if n >= 0.0 && n.fract() == 0.0 {
                items.get(n as usize).cloned().unwrap_or(Value::Null)
            } else {
                Value::Null
            }
        }
        _ => Value::Null,
    }
}

/// Truthiness: false, 0, -0, "", null and NaN are false.
pub fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0 && !f.is_nan()),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

pub fn to_number(v: &Value) -> f64 {
    match v {
        Value::Null => 0.0,
        Value::Bool(b) => f64::from(u8::from(*b)),
        Value::Number(n) => n.as_f64().unwrap_or(f64::NAN),
        Value::String(s) if s.trim().is_empty() => 0.0,
        Value::String(s) => parse_number(s).unwrap_or(f64::NAN),
        _ => f64::NAN,
    }
}

fn number_to_string(n: f64) -> String {
    if n.is_nan() {
        "NaN".into()
    } else if n.is_infinite() {
        if n > 0.0 {
            "Infinity".into()
        } else {
            "-Infinity".into()
        }
    } else if n.fract() == 0.0 && n.abs() < 9.0e15 {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}

/// How a value reads in a string: null is "", objects are "Object".
pub fn to_string(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => number_to_string(n.as_f64().unwrap_or(f64::NAN)),
        Value::String(s) => s.clone(),
        Value::Array(_) => "Array".into(),
        Value::Object(_) => "Object".into(),
    }
}

fn compare(op: Cmp, a: &Value, b: &Value) -> bool {
    use std::cmp::Ordering;
    let ord: Option<Ordering> = match (a, b) {
        (Value::String(x), Value::String(y)) => Some(x.to_lowercase().cmp(&y.to_lowercase())),
        (Value::Null, Value::Null) => Some(Ordering::Equal),
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        (Value::Array(_) | Value::Object(_), Value::Array(_) | Value::Object(_)) => {
            (a == b).then_some(Ordering::Equal)
        }
        _ => to_number(a).partial_cmp(&to_number(b)),
    };
    match op {
        Cmp::Eq => ord == Some(Ordering::Equal),
        Cmp::Ne => ord != Some(Ordering::Equal),
        Cmp::Lt => ord == Some(Ordering::Less),
        Cmp::Le => matches!(ord, Some(Ordering::Less | Ordering::Equal)),
        Cmp::Gt => ord == Some(Ordering::Greater),
        Cmp::Ge => matches!(ord, Some(Ordering::Greater | Ordering::Equal)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn scope() -> Scope {
        let mut s = Scope::default();
        s.set(
            "matrix",
            json!({ "os": "ubuntu-latest", "rust": "stable", "n": 3 }),
        );
        s.set(
            "github",
            json!({ "event_name": "push", "ref": "refs/heads/main",
            "event": { "labels": [{ "name": "bug" }, { "name": "ci" }] } }),
        );
        s.set(
            "steps",
            json!({ "build-1": { "outputs": { "version": "1.2.3" }, "outcome": "success" } }),
        );
        s.set(
            "needs",
            json!({ "test": { "result": "success", "outputs": { "json": "{\"a\": [1, 2]}" } } }),
        );
        s.set("env", json!({ "MODE": "release" }));
        s
    }

    fn ev(src: &str) -> Value {
        scope()
            .eval(&Expr::parse(src).unwrap_or_else(|e| panic!("{src}: {e:?}")))
            .unwrap()
    }

    #[test]
    fn literals_and_operators() {
        assert_eq!(ev("1 == 1.0"), json!(true));
        assert_eq!(ev("'abc' == 'ABC'"), json!(true));
        assert_eq!(ev("'1' == 1"), json!(true));
        assert_eq!(ev("null == 0"), json!(true));
        assert_eq!(ev("true == 1"), json!(true));
        assert_eq!(ev("'' == 0"), json!(true));
        assert_eq!(ev("'a' == 0"), json!(false));
        assert_eq!(ev("0x10 == 16"), json!(true));
        assert_eq!(ev("-2.5e1 < 0"), json!(true));
        assert_eq!(ev("'b' > 'A'"), json!(true));
        assert_eq!(ev("!''"), json!(true));
        assert_eq!(ev("'it''s'"), json!("it's"));
        assert_eq!(ev("1 && 'x'"), json!("x"));
        assert_eq!(ev("0 || 'fallback'"), json!("fallback"));
        assert_eq!(ev("(1 < 2) && !(2 < 1)"), json!(true));
        assert_eq!(ev("1 != 2"), json!(true));
    }

    #[test]
    fn contexts_and_properties() {
        assert_eq!(ev("matrix.os"), json!("ubuntu-latest"));
        assert_eq!(ev("matrix['OS']"), json!("ubuntu-latest"));
        assert_eq!(ev("steps.build-1.outputs.version"), json!("1.2.3"));
        assert_eq!(ev("needs.test.result == 'success'"), json!(true));
        assert_eq!(ev("matrix.missing.deeper"), Value::Null);
        assert_eq!(ev("github.event.labels.*.name"), json!(["bug", "ci"]));
        assert_eq!(
            ev("contains(github.event.labels.*.name, 'CI')"),
            json!(true)
        );
        assert_eq!(ev("github.event.labels[1].name"), json!("ci"));
        assert_eq!(ev("inputs.x"), Value::Null);
    }

    #[test]
    fn functions() {
        assert_eq!(ev("contains('Hello world', 'WORLD')"), json!(true));
        assert_eq!(ev("startsWith(github.ref, 'refs/heads/')"), json!(true));
        assert_eq!(ev("endsWith(matrix.os, '-LATEST')"), json!(true));
        assert_eq!(
            ev("format('{0}-{1} {{x}}', matrix.rust, matrix.n)"),
            json!("stable-3 {x}")
        );
        assert_eq!(
            ev("join(fromJSON('[1, \"a\", true]'), '+')"),
            json!("1+a+true")
        );
        assert_eq!(ev("join('solo')"), json!("solo"));
        assert_eq!(ev("fromJSON(needs.test.outputs.json).a[1]"), json!(2));
        assert_eq!(ev("toJSON(matrix.n)"), json!("3"));
        assert_eq!(ev("fromJSON('{\"x\": 1.5}').x"), json!(1.5));
        assert_eq!(ev("toJSON(fromJSON('[1]'))"), json!("[\n  1\n]"));
        assert_eq!(ev("FORMAT('{0}', 1)"), json!("1"));
    }

    #[test]
    fn status_functions() {
        let mut s = scope();
        let c = parse_condition("matrix.os == 'ubuntu-latest'").unwrap();
        assert!(s.test(&c).unwrap());
        s.status.failed = true;
        assert!(!s.test(&c).unwrap());
        assert!(s
            .test(&parse_condition("${{ failure() }}").unwrap())
            .unwrap());
        assert!(s.test(&parse_condition("always()").unwrap()).unwrap());
        assert!(!s.test(&parse_condition("cancelled()").unwrap()).unwrap());
        s.status = Status {
            failed: false,
            cancelled: true,
        };
        assert!(!s.test(&parse_condition("success()").unwrap()).unwrap());
        assert!(!s.test(&parse_condition("failure()").unwrap()).unwrap());
    }

    #[test]
    fn templates() {
        let s = scope();
        let t = Template::parse("cargo build --${{ env.MODE }} # ${{ matrix.n }}").unwrap();
        assert_eq!(s.render(&t).unwrap(), "cargo build --release # 3");
        let t = Template::parse("${{ matrix.n }}").unwrap();
        assert_eq!(s.render_value(&t).unwrap(), json!(3));
        let t = Template::parse("${{ '}}' }}x").unwrap();
        assert_eq!(s.render(&t).unwrap(), "}}x");
        assert!(Template::parse("plain").unwrap().is_literal());
    }

    #[test]
    fn hash_files_hashes_matches_in_order() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("a/b")).unwrap();
        std::fs::write(d.path().join("Cargo.lock"), "x").unwrap();
        std::fs::write(d.path().join("a/b/Cargo.lock"), "y").unwrap();
        let mut s = scope();
        s.workspace = d.path().to_path_buf();
        let one = s
            .eval(&Expr::parse("hashFiles('**/Cargo.lock')").unwrap())
            .unwrap();
        let top = s
            .eval(&Expr::parse("hashFiles('Cargo.lock')").unwrap())
            .unwrap();
        let excl = s
            .eval(&Expr::parse("hashFiles('**/Cargo.lock', '!a/**')").unwrap())
            .unwrap();
        assert_eq!(one.as_str().unwrap().len(), 64);
        assert_ne!(one, top);
        assert_eq!(top, excl);
        assert_eq!(
            s.eval(&Expr::parse("hashFiles('*.none')").unwrap())
                .unwrap(),
            json!("")
        );
    }

    #[test]
    fn errors_point_at_the_offending_text() {
        let e = Expr::parse("matrix.os == \"x\"").unwrap_err();
        assert_eq!(e.offset, 13);
        assert!(e.message.contains("single quotes"));
        let e = Expr::parse("contain(matrix.os, 'x')").unwrap_err();
        assert_eq!(e.offset, 0);
        assert!(
            e.message.contains("did you mean `contains`"),
            "{}",
            e.message
        );
        let e = Expr::parse("matrx.os").unwrap_err();
        assert!(e.message.contains("did you mean `matrix`"), "{}", e.message);
        let e = Expr::parse("1 ==").unwrap_err();
        assert_eq!(e.offset, 4);
        let e = Expr::parse("(1").unwrap_err();
        assert!(e.message.contains("expected `)`"));
        let e = Expr::parse("startsWith('a')").unwrap_err();
        assert!(e.message.contains("takes 2"), "{}", e.message);
        let e = Template::parse("echo ${{ matrix.os }} ${{ 1 + }}").unwrap_err();
        assert_eq!(e.offset, 28);
        let e = Template::parse("x ${{ a").unwrap_err();
        assert_eq!(e.offset, 2);
        let deep = format!("{}1{}", "(".repeat(60), ")".repeat(60));
        assert!(Expr::parse(&deep).unwrap_err().message.contains("nested"));
        let deep = format!("{}1", "!".repeat(200));
        assert!(Expr::parse(&deep).is_err());
        let e = scope()
            .eval(&Expr::parse("format('{1}', 'a')").unwrap())
            .unwrap_err();
        assert!(e.message.contains("{1}"));
        assert!(scope()
            .eval(&Expr::parse("fromJSON('{')").unwrap())
            .is_err());
    }
}
