//! Secret detection: provider rules anchored on documented formats (with
//! checksums and decodable payloads verified where a format has them), plus
//! a code-aware generic rule for values assigned to credential-like names.
//! A keyword pass (Aho-Corasick) picks the few rules worth running on a
//! file. Every finding is redacted before it leaves this module.

mod generic;
pub mod history;
mod rules;

use crate::finding::{Finding, LineIndex, ScannerKind};
use aho_corasick::AhoCorasick;
use globset::{Glob, GlobSet, GlobSetBuilder};
use regex::Regex;
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::sync::OnceLock;

/// Name of the allowlist file at the scan root.
pub const ALLOW_FILE: &str = ".tugsecretsignore";
/// Inline marker that silences a finding on its line.
pub const ALLOW_MARKER: &str = "tug:allow-secret";

pub use rules::{example, Check, SecretRule, GENERIC_ID};

pub fn rules() -> &'static [SecretRule] {
    rules::RULES
}

struct Compiled {
    /// Every rule's keywords, case-insensitive; pattern i belongs to `owner[i]`.
    keywords: AhoCorasick,
    owner: Vec<usize>,
    /// Rules without keywords run on every file.
    always: Vec<usize>,
    /// Compiled on first use: most files wake only a few rules, and
    /// compiling all of them costs more than scanning a small tree.
    each: Vec<OnceLock<Regex>>,
}

impl Compiled {
    fn regex(&self, idx: usize) -> &Regex {
        // The patterns are constants checked by tests; failure here is a build bug.
        self.each[idx]
            .get_or_init(|| Regex::new(rules::RULES[idx].pattern).expect("secret rule pattern"))
    }
}

fn compiled() -> &'static Compiled {
    static C: OnceLock<Compiled> = OnceLock::new();
    C.get_or_init(|| {
        let mut words = Vec::new();
        let mut owner = Vec::new();
        let mut always = Vec::new();
        for (i, r) in rules::RULES.iter().enumerate() {
            if r.keywords.is_empty() {
                always.push(i);
            }
            for k in r.keywords {
                words.push(*k);
                owner.push(i);
            }
        }
        // The patterns and keywords are constants checked by tests; failure here is a build bug.
        Compiled {
            keywords: AhoCorasick::builder()
                .ascii_case_insensitive(true)
                .build(&words)
                .expect("secret rule keywords"),
            owner,
            always,
            each: rules::RULES.iter().map(|_| OnceLock::new()).collect(),
        }
    })
}

/// Indexes of the rules whose keywords occur in `text`, in registry order.
fn candidates(c: &Compiled, text: &str) -> Vec<usize> {
    let mut on = vec![false; rules::RULES.len()];
    for &i in &c.always {
        on[i] = true;
    }
    for m in c.keywords.find_overlapping_iter(text) {
        on[c.owner[m.pattern().as_usize()]] = true;
    }
    // The generic rule goes last so a provider rule claims its line first.
    let generic = rules::RULES.iter().position(|r| r.is_generic());
    let mut v: Vec<usize> = (0..on.len())
        .filter(|&i| on[i] && Some(i) != generic)
        .collect();
    if let Some(g) = generic.filter(|&g| on[g]) {
        v.push(g);
    }
    v
}

/// GitHub's checksum: CRC32 of the text, base62 (0-9A-Za-z), six characters.
pub fn crc32_base62(text: &str) -> String {
    const DIGITS: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut n = crc32fast::hash(text.as_bytes());
    let mut out = [b'0'; 6];
    for slot in out.iter_mut().rev() {
        *slot = DIGITS[(n % 62) as usize];
        n /= 62;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether `secret` passes its rule's structural check.
fn check_passes(check: Check, secret: &str) -> bool {
    use base64::Engine;
    let decode = |s: &str| {
        base64::engine::general_purpose::STANDARD
            .decode(s)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
    };
    match check {
        Check::None => true,
        Check::Crc32Base62 => {
            let body = secret.rsplit('_').next().unwrap_or_default();
            body.len() == 36 && body.is_ascii() && crc32_base62(&body[..30]) == body[30..]
        }
        Check::BasicAuth => decode(secret).is_some_and(|creds| {
            let Some((user, pass)) = creds.split_once(':') else {
                return false;
            };
            !user.is_empty()
                && pass.chars().count() >= 4
                && !pass.chars().any(char::is_control)
                && !is_placeholder(pass)
        }),
        Check::Base64Text => decode(secret).is_some_and(|t| {
            t.chars().count() >= 6
                && !t.chars().any(|c| c.is_control() || c.is_whitespace())
                && !is_placeholder(&t)
        }),
    }
}

/// Shannon entropy in bits per character.
pub fn entropy(s: &str) -> f64 {
    let mut counts = [0usize; 256];
    let bytes = s.as_bytes();
    for &b in bytes {
        counts[b as usize] += 1;
    }
    let n = bytes.len() as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f64 / n;
            -p * p.log2()
        })
        .sum()
}

const PLACEHOLDER_WORDS: &[&str] = &[
    "changeme",
    "change_me",
    "change-me",
    "xxxx",
    "example",
    "placeholder",
    "your",
    "dummy",
    "redacted",
    "sample",
    "fake",
    "test1234",
    "password",
    "secret",
    "replace",
    "insert",
    "todo",
    "fixme",
    "****",
    "....",
    "0000",
    "1234567",
    // RFC 7617's example credentials (`Aladdin:opensesame`).
    "opensesame",
];

/// Values that are obviously not real secrets.
pub fn is_placeholder(s: &str) -> bool {
    let l = s.to_ascii_lowercase();
    PLACEHOLDER_WORDS.iter().any(|w| l.contains(w)) || is_template_slot(s)
}

/// For provider-format tokens: a placeholder word only hides a token it
/// makes up a good part of (`AKIAIOSFODNN7EXAMPLE`, `ghp_xxxx…`); a word
/// inside a long random token (`xoxb-…-FAKE1NuEz5…`) proves nothing.
fn is_token_placeholder(s: &str) -> bool {
    if is_template_slot(s) {
        return true;
    }
    let l = s.to_ascii_lowercase();
    let mut covered = vec![false; l.len()];
    for w in PLACEHOLDER_WORDS {
        for (at, _) in l.match_indices(w) {
            covered[at..at + w.len()].iter_mut().for_each(|c| *c = true);
        }
    }
    covered.iter().filter(|&&c| c).count() * 6 >= l.len().max(1)
}

fn is_template_slot(s: &str) -> bool {
    // Template slots: `{password}`, `%(password)s`, `${X}`, `<your-key>`.
    if (s.starts_with('{') && s.ends_with('}')) || s.starts_with("%(") {
        return true;
    }
    if s.starts_with('$')
        || s.starts_with('<')
        || s.contains("${")
        || s.contains("{{")
        || s.contains("$(")
    {
        return true;
    }
    let first = s.chars().next();
    s.chars().all(|c| Some(c) == first)
}

/// First characters and length only, e.g. `ghp_…(40 chars)`. Short secrets
/// show fewer leading characters so most of the secret stays hidden.
pub fn redact(secret: &str) -> String {
    let len = secret.chars().count();
    let show = (len / 3).min(4);
    let head: String = secret.chars().take(show).collect();
    format!("{head}…({len} chars)")
}

/// Stable id of one secret: rule and a hash of the secret (never the secret).
pub fn fingerprint(rule_id: &str, secret: &str) -> String {
    let mut h = Sha256::new();
    h.update(rule_id.as_bytes());
    h.update(b":");
    h.update(secret.as_bytes());
    let d = h.finalize();
    d.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// `.tugsecretsignore`: one entry a line, `#` comments; a 16-hex fingerprint
/// or a path glob relative to the scan root.
#[derive(Clone, Debug, Default)]
pub struct Allowlist {
    globs: Option<GlobSet>,
    fingerprints: HashSet<String>,
}

impl Allowlist {
    pub fn parse(text: &str) -> Result<Allowlist, (usize, String)> {
        let mut b = GlobSetBuilder::new();
        let mut any = false;
        let mut fingerprints = HashSet::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if line.len() == 16 && line.bytes().all(|c| c.is_ascii_hexdigit()) {
                fingerprints.insert(line.to_ascii_lowercase());
                continue;
            }
            let pat = line.trim_start_matches("./");
            let glob =
                Glob::new(pat).map_err(|e| (i + 1, format!("invalid glob `{line}`: {e}")))?;
            b.add(glob);
            // `dir/` and `dir` also cover everything below.
            let below = format!("{}/**", pat.trim_end_matches('/'));
            b.add(Glob::new(&below).map_err(|e| (i + 1, format!("invalid glob `{line}`: {e}")))?);
            any = true;
        }
        let globs = if any {
            Some(b.build().map_err(|e| (1, e.to_string()))?)
        } else {
            None
        };
        Ok(Allowlist {
            globs,
            fingerprints,
        })
    }

    pub fn allows_path(&self, rel: &str) -> bool {
        self.globs.as_ref().is_some_and(|g| g.is_match(rel))
    }

    pub fn allows_fingerprint(&self, fp: &str) -> bool {
        self.fingerprints.contains(fp)
    }
}

/// Lockfiles hold checksums, not secrets; scanning them only adds noise.
pub fn is_lockfile(name: &str) -> bool {
    matches!(
        name,
        "Cargo.lock"
            | "package-lock.json"
            | "yarn.lock"
            | "pnpm-lock.yaml"
            | "poetry.lock"
            | "Pipfile.lock"
            | "go.sum"
            | "composer.lock"
            | "Gemfile.lock"
            | "flake.lock"
            | "uv.lock"
    )
}

/// `text` with every secret a rule finds replaced by its redacted form (for
/// error messages that quote their input).
pub fn redact_in(text: &str) -> String {
    let mut out = text.to_string();
    for m in matches(text, &Allowlist::default()) {
        out = out.replace(&text[m.span.clone()], &redact(&m.compact));
    }
    out
}

/// One secret found: its rule, its place in the text and its text without
/// layout (line breaks, `\n` escapes).
struct Match {
    rule: usize,
    span: std::ops::Range<usize>,
    start: usize,
    compact: String,
}

fn matches(text: &str, allow: &Allowlist) -> Vec<Match> {
    let c = compiled();
    let mut out: Vec<Match> = Vec::new();
    let mut index: Option<LineIndex> = None;
    let mut lines_taken: HashSet<usize> = HashSet::new();
    for idx in candidates(c, text) {
        let rule = &rules::RULES[idx];
        let re = c.regex(idx);
        let mut at = 0;
        while at <= text.len() {
            let Some(caps) = re.captures_at(text, at) else {
                break;
            };
            let Some(whole) = caps.get(0) else { break };
            // A pattern may end by consuming the boundary character after a
            // token; the next search starts on it so that it can also be the
            // boundary before the next token (tokens on consecutive lines).
            let last = text[..whole.end()]
                .chars()
                .next_back()
                .map_or(0, char::len_utf8);
            at = if whole.end() - last > whole.start() {
                whole.end() - last
            } else {
                whole.end() + text[whole.end()..].chars().next().map_or(1, char::len_utf8)
            };
            let m = if rule.is_generic() {
                let (Some(name), Some(val)) = (caps.get(1), caps.get(3)) else {
                    continue;
                };
                let quote = caps.get(2).map_or("", |q| q.as_str());
                let Some(v) = generic::value(name.as_str(), quote, val.as_str()) else {
                    continue;
                };
                (val.start(), val.start() + v.len())
            } else {
                let Some(m) = caps.get(rule.group) else {
                    continue;
                };
                (m.start(), m.end())
            };
            let secret = &text[m.0..m.1];
            let compact: String = secret
                .replace("\\n", "")
                .replace("\\r", "")
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect();
            let placeholder = if rule.is_generic() || rule.check != Check::None {
                is_placeholder(&compact)
            } else {
                is_token_placeholder(&compact)
            };
            if placeholder
                || entropy(&compact) < rule.min_entropy
                || !check_passes(rule.check, &compact)
            {
                continue;
            }
            // One finding per place: an earlier (more specific) rule wins.
            if out.iter().any(|o| o.span.start < m.1 && m.0 < o.span.end) {
                continue;
            }
            // Point at the secret, or at the start of a multi-line match
            // (a key's BEGIN line), never at a boundary character before it.
            let whole = caps.get(0).map_or(m.0, |w| w.start());
            let start = if text[whole..m.0].contains('\n') {
                whole + (text[whole..].len() - text[whole..].trim_start().len())
            } else {
                m.0
            };
            let index = index.get_or_insert_with(|| LineIndex::new(text));
            let (line, _, line_text) = index.locate(text, start);
            if line_text.contains(ALLOW_MARKER) {
                continue;
            }
            if rule.is_generic() && lines_taken.contains(&line) {
                continue;
            }
            if allow.allows_fingerprint(&fingerprint(rule.id, &compact)) {
                continue;
            }
            lines_taken.insert(line);
            out.push(Match {
                rule: idx,
                span: m.0..m.1,
                start,
                compact,
            });
        }
    }
    out
}

/// Scans text for secrets. `rel` names the file in findings.
pub fn scan_text(text: &str, rel: &str, allow: &Allowlist) -> Vec<Finding> {
    let found = matches(text, allow);
    if found.is_empty() {
        return Vec::new();
    }
    let index = LineIndex::new(text);
    let mut out: Vec<Finding> = found
        .into_iter()
        .map(|m| {
            let rule = &rules::RULES[m.rule];
            let (line, col, _) = index.locate(text, m.start);
            let shown = redact(&m.compact);
            Finding {
                scanner: ScannerKind::Secret,
                rule_id: rule.id.to_string(),
                severity: rule.severity,
                title: rule.title.to_string(),
                message: format!("{} ({shown})", rule.title),
                file: rel.to_string(),
                line,
                col,
                fix: Some(
                    "revoke and rotate it, then load it from the environment or a secret store; \
                     if it is not a secret, add its fingerprint to .tugsecretsignore"
                        .into(),
                ),
                advisory: None,
                redacted: Some(shown),
                fingerprint: Some(fingerprint(rule.id, &m.compact)),
                commit: None,
            }
        })
        .collect();
    out.sort_by_key(|f| (f.line, f.col));
    out
}
