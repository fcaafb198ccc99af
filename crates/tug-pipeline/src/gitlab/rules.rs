//! GitLab CI/CD variable expressions (`rules: - if:`): `$VAR`, string
//! literals, `/regex/`, `null`, `==` `!=` `=~` `!~`, `&&` `||`, parentheses.

use std::collections::BTreeMap;

#[derive(Clone, Debug, PartialEq)]
pub enum Cond {
    Var(String),
    Str(String),
    Regex(String, String),
    Null,
    Cmp(Op, Box<Cond>, Box<Cond>),
    And(Box<Cond>, Box<Cond>),
    Or(Box<Cond>, Box<Cond>),
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Op {
    Eq,
    Ne,
    Match,
    NoMatch,
}

/// A problem at a byte offset of the expression.
#[derive(Clone, Debug, PartialEq)]
pub struct CondError {
    pub offset: usize,
    pub message: String,
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Var(String),
    Str(String),
    Regex(String, String),
    Null,
    Op(&'static str),
}

fn lex(src: &str) -> Result<Vec<(Tok, usize)>, CondError> {
    let b = src.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    let e = |offset, m: &str| CondError {
        offset,
        message: m.to_string(),
    };
    while i < b.len() {
        let c = b[i];
        let start = i;
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        match c {
            b'$' => {
                i += 1;
                let braced = b.get(i) == Some(&b'{');
                if braced {
                    i += 1;
                }
                let s = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                    i += 1;
                }
                if s == i {
                    return Err(e(start, "`$` must be followed by a variable name"));
                }
                let name = src[s..i].to_string();
                if braced {
                    if b.get(i) != Some(&b'}') {
                        return Err(e(start, "`${` without `}`"));
                    }
                    i += 1;
                }
                out.push((Tok::Var(name), start));
            }
            b'"' | b'\'' => {
                i += 1;
                let s = i;
                while i < b.len() && b[i] != c {
                    i += 1;
                }
                if i >= b.len() {
                    return Err(e(start, "unterminated string"));
                }
                out.push((Tok::Str(src[s..i].to_string()), start));
                i += 1;
            }
            b'/' => {
                i += 1;
                let s = i;
                while i < b.len() && b[i] != b'/' {
                    if b[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
                if i >= b.len() {
                    return Err(e(
                        start,
                        "unterminated regular expression (it ends with `/`)",
                    ));
                }
                let pat = src[s..i].to_string();
                i += 1;
                let f = i;
                while i < b.len() && b[i].is_ascii_alphabetic() {
                    i += 1;
                }
                out.push((Tok::Regex(pat, src[f..i].to_string()), start));
            }
            _ => {
                let two = src.get(i..i + 2).unwrap_or("");
                let op = match two {
                    "==" => "==",
                    "!=" => "!=",
                    "=~" => "=~",
                    "!~" => "!~",
                    "&&" => "&&",
                    "||" => "||",
                    _ => "",
                };
                if !op.is_empty() {
                    out.push((Tok::Op(op), start));
                    i += 2;
                } else if c == b'(' || c == b')' {
                    out.push((Tok::Op(if c == b'(' { "(" } else { ")" }), start));
                    i += 1;
                } else if src[i..].starts_with("null") {
                    out.push((Tok::Null, start));
                    i += 4;
                } else {
                    let ch = src[i..].chars().next().unwrap_or('?');
                    return Err(e(
                        start,
                        &format!(
                            "unexpected `{ch}` (variables are written `$NAME`, strings quoted)"
                        ),
                    ));
                }
            }
        }
    }
    Ok(out)
}

struct P {
    toks: Vec<(Tok, usize)>,
    pos: usize,
    end: usize,
    depth: usize,
}

impl P {
    fn at(&self) -> usize {
        self.toks.get(self.pos).map_or(self.end, |t| t.1)
    }
    fn eat(&mut self, op: &str) -> bool {
        if matches!(self.toks.get(self.pos), Some((Tok::Op(o), _)) if *o == op) {
            self.pos += 1;
            true
        } else {
            false
        }
    }
    fn or(&mut self) -> Result<Cond, CondError> {
        self.depth += 1;
        if self.depth > 50 {
            return Err(CondError {
                offset: self.at(),
                message: "expression nested too deeply".into(),
            });
        }
        let mut l = self.and()?;
        while self.eat("||") {
            l = Cond::Or(Box::new(l), Box::new(self.and()?));
        }
        self.depth -= 1;
        Ok(l)
    }
    fn and(&mut self) -> Result<Cond, CondError> {
        let mut l = self.cmp()?;
        while self.eat("&&") {
            l = Cond::And(Box::new(l), Box::new(self.cmp()?));
        }
        Ok(l)
    }
    fn cmp(&mut self) -> Result<Cond, CondError> {
        let l = self.atom()?;
        for (s, op) in [
            ("==", Op::Eq),
            ("!=", Op::Ne),
            ("=~", Op::Match),
            ("!~", Op::NoMatch),
        ] {
            if self.eat(s) {
                let r = self.atom()?;
                return Ok(Cond::Cmp(op, Box::new(l), Box::new(r)));
            }
        }
        Ok(l)
    }
    fn atom(&mut self) -> Result<Cond, CondError> {
        let at = self.at();
        let Some((t, _)) = self.toks.get(self.pos).cloned() else {
            return Err(CondError {
                offset: at,
                message: "expected a value, found the end".into(),
            });
        };
        self.pos += 1;
        match t {
            Tok::Var(v) => Ok(Cond::Var(v)),
            Tok::Str(s) => Ok(Cond::Str(s)),
            Tok::Regex(p, f) => Ok(Cond::Regex(p, f)),
            Tok::Null => Ok(Cond::Null),
            Tok::Op("(") => {
                let e = self.or()?;
                if !self.eat(")") {
                    return Err(CondError {
                        offset: self.at(),
                        message: "expected `)`".into(),
                    });
                }
                Ok(e)
            }
            Tok::Op(o) => Err(CondError {
                offset: at,
                message: format!("expected a value, found `{o}`"),
            }),
        }
    }
}

pub fn parse(src: &str) -> Result<Cond, CondError> {
    let toks = lex(src)?;
    let mut p = P {
        toks,
        pos: 0,
        end: src.len(),
        depth: 0,
    };
    let c = p.or()?;
    if p.pos < p.toks.len() {
        return Err(CondError {
            offset: p.at(),
            message: "unexpected text after a complete expression".into(),
        });
    }
    Ok(c)
}

enum V {
    Null,
    Str(String),
    Bool(bool),
    Regex(String, String),
}

fn value(c: &Cond, vars: &BTreeMap<String, String>) -> Result<V, String> {
    Ok(match c {
        Cond::Var(n) => vars.get(n).map_or(V::Null, |s| V::Str(s.clone())),
        Cond::Str(s) => V::Str(s.clone()),
        Cond::Regex(p, f) => V::Regex(p.clone(), f.clone()),
        Cond::Null => V::Null,
        _ => V::Bool(eval(c, vars)?),
    })
}

fn truthy(v: &V) -> bool {
    match v {
        V::Null => false,
        V::Str(s) => !s.is_empty(),
        V::Bool(b) => *b,
        V::Regex(..) => true,
    }
}

fn regex_of(v: &V) -> Result<regex::Regex, String> {
    let (p, f) = match v {
        V::Regex(p, f) => (p.clone(), f.clone()),
        // A variable may hold a pattern written `/…/`.
        V::Str(s) if s.len() >= 2 && s.starts_with('/') => {
            let end = s.rfind('/').unwrap_or(0);
            (s[1..end.max(1)].to_string(), s[end + 1..].to_string())
        }
        _ => return Err("the right side of `=~` must be a /pattern/".into()),
    };
    regex::RegexBuilder::new(&p)
        .case_insensitive(f.contains('i'))
        .build()
        .map_err(|e| format!("bad pattern /{p}/: {e}"))
}

/// Evaluates a condition with these variables.
pub fn eval(c: &Cond, vars: &BTreeMap<String, String>) -> Result<bool, String> {
    Ok(match c {
        Cond::And(a, b) => eval(a, vars)? && eval(b, vars)?,
        Cond::Or(a, b) => eval(a, vars)? || eval(b, vars)?,
        Cond::Cmp(op, a, b) => {
            let l = value(a, vars)?;
            let r = value(b, vars)?;
            match op {
                Op::Eq | Op::Ne => {
                    let eq = match (&l, &r) {
                        (V::Null, V::Null) => true,
                        (V::Str(x), V::Str(y)) => x == y,
                        (V::Bool(x), V::Bool(y)) => x == y,
                        _ => false,
                    };
                    eq == (*op == Op::Eq)
                }
                Op::Match | Op::NoMatch => {
                    let text = match &l {
                        V::Str(s) => s.clone(),
                        _ => String::new(),
                    };
                    let m = !matches!(l, V::Null) && regex_of(&r)?.is_match(&text);
                    m == (*op == Op::Match)
                }
            }
        }
        other => truthy(&value(other, vars)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expressions() {
        let mut v = BTreeMap::new();
        v.insert("CI_COMMIT_BRANCH".to_string(), "main".to_string());
        v.insert("CI_PIPELINE_SOURCE".to_string(), "push".to_string());
        v.insert("EMPTY".to_string(), String::new());
        let t = |s: &str| eval(&parse(s).unwrap(), &v).unwrap();
        assert!(t("$CI_COMMIT_BRANCH == \"main\""));
        assert!(t(
            "$CI_COMMIT_BRANCH == 'main' && $CI_PIPELINE_SOURCE != \"schedule\""
        ));
        assert!(!t("$CI_COMMIT_TAG"));
        assert!(!t("$EMPTY"));
        assert!(t("$CI_COMMIT_TAG == null"));
        assert!(t("$CI_COMMIT_BRANCH =~ /^ma/"));
        assert!(t("$CI_COMMIT_BRANCH =~ /^MA/i"));
        assert!(t("$CI_COMMIT_TAG !~ /^v/"));
        assert!(t(
            "($CI_COMMIT_TAG || $CI_COMMIT_BRANCH) && ${CI_PIPELINE_SOURCE} == 'push'"
        ));
        assert_eq!(parse("$A == ").unwrap_err().offset, 6);
        assert!(parse("$A = 'x'").is_err());
        assert!(parse("$A =~ /x").is_err());
    }
}
