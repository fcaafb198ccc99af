//! A YAML tree that remembers where every node starts, so that every error,
//! semantic ones included, can point at `line:col`.

use std::collections::HashMap;
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// Alias expansion budget: stops "billion laughs" documents.
const MAX_NODES: usize = 200_000;

#[derive(Clone, Debug)]
pub struct Node {
    pub kind: Kind,
    pub line: usize,
    pub col: usize,
}

#[derive(Clone, Debug)]
pub enum Kind {
    /// `plain` is false for quoted and block scalars and `!!str`: they are always strings.
    Scalar {
        text: String,
        plain: bool,
    },
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

/// A problem found while reading the YAML itself.
#[derive(Clone, Debug)]
pub struct YamlError {
    pub line: usize,
    pub col: usize,
    pub message: String,
}

impl Node {
    pub fn is_null(&self) -> bool {
        matches!(&self.kind, Kind::Scalar { text, plain: true } if matches!(text.as_str(), "" | "~" | "null" | "Null" | "NULL"))
    }

    pub fn as_bool(&self) -> Option<bool> {
        match &self.kind {
            Kind::Scalar { text, plain: true } => match text.as_str() {
                "true" | "True" | "TRUE" => Some(true),
                "false" | "False" | "FALSE" => Some(false),
                _ => None,
            },
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        match &self.kind {
            Kind::Scalar { text, plain: true } => {
                let t = text.as_str();
                if let Some(h) = t.strip_prefix("0x") {
                    i64::from_str_radix(h, 16).ok()
                } else if let Some(o) = t.strip_prefix("0o") {
                    i64::from_str_radix(o, 8).ok()
                } else {
                    t.parse().ok()
                }
            }
            _ => None,
        }
    }

    /// A plain scalar that looks like an integer but does not fit in i64.
    pub fn is_big_int(&self) -> bool {
        matches!(&self.kind, Kind::Scalar { text, plain: true }
        if self.as_i64().is_none() && {
            let t = text.strip_prefix(['-', '+']).unwrap_or(text);
            !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit())
        })
    }

    pub fn as_f64(&self) -> Option<f64> {
        if let Some(i) = self.as_i64() {
            return Some(i as f64);
        }
        match &self.kind {
            Kind::Scalar { text, plain: true } => {
                let t = text.as_str();
                // Rust also accepts "inf" and "nan", which YAML spells differently.
                if t.bytes()
                    .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E'))
                {
                    t.parse().ok().filter(|v: &f64| v.is_finite())
                } else {
                    None
                }
            }
            _ => None,
        }
    }

    /// Any scalar's text (numbers and booleans as written); None for null, maps and lists.
    pub fn scalar(&self) -> Option<&str> {
        match &self.kind {
            Kind::Scalar { text, .. } if !self.is_null() => Some(text),
            _ => None,
        }
    }

    /// A scalar that YAML reads as a string (not a number, boolean or null).
    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            Kind::Scalar { text, plain: false } => Some(text),
            Kind::Scalar { text, plain: true }
                if !self.is_null() && self.as_bool().is_none() && self.as_f64().is_none() =>
            {
                Some(text)
            }
            _ => None,
        }
    }

    pub fn as_seq(&self) -> Option<&[Node]> {
        match &self.kind {
            Kind::Seq(v) => Some(v),
            _ => None,
        }
    }

    pub fn as_map(&self) -> Option<&[(Node, Node)]> {
        match &self.kind {
            Kind::Map(v) => Some(v),
            _ => None,
        }
    }

    /// The value under `key` in a map.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.as_map()?
            .iter()
            .find(|(k, _)| k.scalar() == Some(key))
            .map(|(_, v)| v)
    }

    /// How the node reads in an error message: "`three`", "a map", "a list".
    pub fn describe(&self) -> String {
        match &self.kind {
            Kind::Seq(_) => "a list".into(),
            Kind::Map(_) => "a map".into(),
            Kind::Scalar { .. } if self.is_null() => "nothing".into(),
            Kind::Scalar { text, .. } => {
                let short: String = text.chars().take(40).collect();
                if short.len() < text.len() {
                    format!("`{short}…`")
                } else {
                    format!("`{short}`")
                }
            }
        }
    }

    fn count(&self) -> usize {
        match &self.kind {
            Kind::Scalar { .. } => 1,
            Kind::Seq(v) => 1 + v.iter().map(Node::count).sum::<usize>(),
            Kind::Map(v) => 1 + v.iter().map(|(k, v)| k.count() + v.count()).sum::<usize>(),
        }
    }
}

enum Frame {
    Seq(Node, usize, Vec<Node>),
    Map(Node, usize, Vec<(Node, Node)>, Option<Node>),
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    anchors: HashMap<usize, Node>,
    root: Option<Node>,
    nodes: usize,
    errors: Vec<YamlError>,
    fatal: Option<YamlError>,
}

impl Builder {
    fn push(&mut self, node: Node, anchor: usize) {
        if anchor > 0 {
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            None => {
                if self.root.is_none() {
                    self.root = Some(node);
                }
            }
            Some(Frame::Seq(_, _, items)) => items.push(node),
            Some(Frame::Map(_, _, entries, key)) => match key.take() {
                None => *key = Some(node),
                Some(k) => entries.push((k, node)),
            },
        }
    }

    fn finish_map(&mut self, entries: Vec<(Node, Node)>) -> Vec<(Node, Node)> {
        let mut out: Vec<(Node, Node)> = Vec::with_capacity(entries.len());
        let mut merged: Vec<(Node, Node)> = Vec::new();
        for (k, v) in entries {
            if matches!(&k.kind, Kind::Scalar { text, plain: true } if text == "<<") {
                // Merge keys: `<<: *defaults` or `<<: [*a, *b]`; explicit keys win.
                let sources: Vec<Node> = match v.kind {
                    Kind::Map(_) => vec![v],
                    Kind::Seq(items) => items,
                    _ => {
                        self.errors.push(YamlError {
                            line: v.line,
                            col: v.col,
                            message: "`<<` must merge a map or a list of maps".into(),
                        });
                        continue;
                    }
                };
                for s in sources {
                    match s.kind {
                        Kind::Map(es) => merged.extend(es),
                        _ => self.errors.push(YamlError {
                            line: s.line,
                            col: s.col,
                            message: "`<<` must merge a map or a list of maps".into(),
                        }),
                    }
                }
                continue;
            }
            if let Some(name) = k.scalar() {
                if out.iter().any(|(o, _)| o.scalar() == Some(name)) {
                    self.errors.push(YamlError {
                        line: k.line,
                        col: k.col,
                        message: format!("duplicate key `{name}`"),
                    });
                    continue;
                }
            }
            out.push((k, v));
        }
        for (k, v) in merged {
            let present = match k.scalar() {
                Some(name) => out.iter().any(|(o, _)| o.scalar() == Some(name)),
                None => false,
            };
            if !present {
                out.push((k, v));
            }
        }
        out
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        if self.fatal.is_some() {
            return;
        }
        let at = |kind| Node {
            kind,
            line: mark.line(),
            col: mark.col() + 1,
        };
        match ev {
            Event::Scalar(text, style, anchor, tag) => {
                let is_str_tag = tag.as_ref().is_some_and(|t| t.suffix == "str");
                let plain = style == TScalarStyle::Plain && !is_str_tag;
                self.nodes += 1;
                self.push(at(Kind::Scalar { text, plain }), anchor);
            }
            Event::SequenceStart(anchor, _) => {
                self.stack
                    .push(Frame::Seq(at(Kind::Seq(Vec::new())), anchor, Vec::new()));
            }
            Event::MappingStart(anchor, _) => {
                self.stack.push(Frame::Map(
                    at(Kind::Map(Vec::new())),
                    anchor,
                    Vec::new(),
                    None,
                ));
            }
            Event::SequenceEnd => {
                if let Some(Frame::Seq(mut node, anchor, items)) = self.stack.pop() {
                    self.nodes += 1;
                    node.kind = Kind::Seq(items);
                    self.push(node, anchor);
                }
            }
            Event::MappingEnd => {
                if let Some(Frame::Map(mut node, anchor, entries, _)) = self.stack.pop() {
                    self.nodes += 1;
                    // A block map's start mark lands after its first key; the key is where it begins.
                    if let Some((k, _)) = entries.first() {
                        if (k.line, k.col) < (node.line, node.col) {
                            (node.line, node.col) = (k.line, k.col);
                        }
                    }
                    node.kind = Kind::Map(self.finish_map(entries));
                    self.push(node, anchor);
                }
            }
            Event::Alias(id) => match self.anchors.get(&id) {
                Some(n) => {
                    let mut n = n.clone();
                    self.nodes += n.count();
                    if self.nodes > MAX_NODES {
                        self.fatal = Some(YamlError {
                            line: mark.line(),
                            col: mark.col() + 1,
                            message: "document too large after expanding aliases".into(),
                        });
                        return;
                    }
                    n.line = mark.line();
                    n.col = mark.col() + 1;
                    self.push(n, 0);
                }
                None => {
                    self.fatal = Some(YamlError {
                        line: mark.line(),
                        col: mark.col() + 1,
                        message: "unknown alias".into(),
                    })
                }
            },
            _ => {}
        }
    }
}

/// Reads the first document of `text`. Err holds a fatal syntax error;
/// Ok holds the tree (None for an empty document) and non-fatal problems
/// such as duplicate keys.
pub fn parse(text: &str) -> Result<(Option<Node>, Vec<YamlError>), YamlError> {
    let mut text = std::borrow::Cow::Borrowed(text);
    let mut retries = 0;
    let b = loop {
        let mut b = Builder::default();
        let mut parser = Parser::new_from_str(&text);
        match parser.load(&mut b, false) {
            Ok(()) => break b,
            Err(e) => {
                let m = e.marker();
                // A flow collection closed at its key's indentation (`test: [` ...
                // `]`) is accepted by the YAML parsers compose files are written
                // for, not by the strict scanner: indent the bracket and retry.
                if e.info() == "invalid indentation" && retries < 64 {
                    if let Some(fixed) = indent_closing_bracket(&text, m.line()) {
                        text = std::borrow::Cow::Owned(fixed);
                        retries += 1;
                        continue;
                    }
                }
                return Err(YamlError {
                    line: m.line().max(1),
                    col: m.col() + 1,
                    message: format!("invalid YAML: {}", e.info()),
                });
            }
        }
    };
    if let Some(e) = b.fatal {
        return Err(e);
    }
    Ok((b.root, b.errors))
}

/// `text` with line `line` (1-based) indented one level deeper than the
/// line before it, when that line starts with `]` or `}`; line numbers stay.
fn indent_closing_bracket(text: &str, line: usize) -> Option<String> {
    let lines: Vec<&str> = text.split('\n').collect();
    let i = line.checked_sub(1)?;
    let target = lines.get(i)?;
    if !target.trim_start().starts_with([']', '}']) {
        return None;
    }
    let indent = |l: &str| l.len() - l.trim_start_matches(' ').len();
    let prev = lines[..i].iter().rev().find(|l| !l.trim().is_empty())?;
    let want = indent(prev).max(indent(target)) + 1;
    let mut out: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    out[i] = format!("{}{}", " ".repeat(want), target.trim_start_matches(' '));
    Some(out.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flow_collection_closed_at_the_key_indentation() {
        let (root, errs) = parse(
            "a:\n  test: [\n      \"x\",\n      # note\n      \"y\",\n  ]\n  b: {\n    c: 1\n}\n",
        )
        .unwrap();
        assert!(errs.is_empty());
        let a = root.unwrap().get("a").unwrap().clone();
        assert_eq!(a.get("test").unwrap().as_seq().unwrap().len(), 2);
        assert_eq!(a.get("b").unwrap().get("c").unwrap().as_i64(), Some(1));
    }

    #[test]
    fn positions_are_one_based() {
        let (root, errs) = parse("a: 1\nb:\n  - x\n  - {c: d}\n").unwrap();
        assert!(errs.is_empty());
        let root = root.unwrap();
        assert_eq!((root.line, root.col), (1, 1));
        let b = root.get("b").unwrap();
        let items = b.as_seq().unwrap();
        assert_eq!((items[0].line, items[0].col), (3, 5));
        assert_eq!((items[1].line, items[1].col), (4, 5));
        assert_eq!(root.get("a").unwrap().as_i64(), Some(1));
    }

    #[test]
    fn merge_keys_and_duplicates() {
        let (root, errs) = parse("d: &d {x: 1, y: 2}\ne:\n  <<: *d\n  y: 3\n  y: 4\n").unwrap();
        let e = root.unwrap().get("e").unwrap().clone();
        assert_eq!(e.get("x").unwrap().as_i64(), Some(1));
        assert_eq!(e.get("y").unwrap().as_i64(), Some(3));
        assert_eq!(errs.len(), 1);
        assert_eq!((errs[0].line, errs[0].col), (5, 3));
    }

    #[test]
    fn alias_bombs_stop() {
        let mut doc = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..8 {
            doc.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n",
                p = i - 1
            ));
        }
        let e = parse(&doc).unwrap_err();
        assert!(e.message.contains("too large"), "{}", e.message);
    }

    #[test]
    fn scalar_kinds() {
        let (root, _) = parse("a: '1'\nb: 1.5\nc: true\nd: ~\ne: no\nf: !!str 2\n").unwrap();
        let r = root.unwrap();
        assert_eq!(r.get("a").unwrap().as_str(), Some("1"));
        assert_eq!(r.get("b").unwrap().as_f64(), Some(1.5));
        assert_eq!(r.get("c").unwrap().as_bool(), Some(true));
        assert!(r.get("d").unwrap().is_null());
        assert_eq!(r.get("e").unwrap().as_str(), Some("no"));
        assert_eq!(r.get("f").unwrap().as_str(), Some("2"));
    }
}
