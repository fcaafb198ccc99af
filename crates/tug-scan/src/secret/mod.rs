//! Secret detection: prefix-anchored rules plus entropy-gated generic
//! assignments. A `RegexSet` pass picks the few rules worth running on a
//! file. Every finding is redacted before it leaves this module.

pub mod history;

use crate::finding::{Finding, LineIndex, ScannerKind, Severity};
use globset::{Glob, GlobSet, GlobSetBuilder};
use regex::{Regex, RegexSet};
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::sync::OnceLock;

/// Name of the allowlist file at the scan root.
pub const ALLOW_FILE: &str = ".tugsecretsignore";
/// Inline marker that silences a finding on its line.
pub const ALLOW_MARKER: &str = "tug:allow-secret";

pub struct SecretRule {
    pub id: &'static str,
    pub name: &'static str,
    pub title: &'static str,
    pub severity: Severity,
    pattern: &'static str,
    /// Capture group holding the secret (0 = whole match).
    group: usize,
    /// Minimum Shannon entropy (bits per char) of the secret.
    min_entropy: f64,
}

// Patterns anchor on vendor prefixes where one exists; generic ones lean on the entropy gate.
const RULES: &[SecretRule] = &[
    SecretRule {
        id: "TUGS001",
        name: "aws-access-key-id",
        title: "AWS access key ID",
        severity: Severity::High,
        pattern: r"\b((?:AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16})\b",
        group: 1,
        min_entropy: 3.0,
    },
    SecretRule {
        id: "TUGS002",
        name: "aws-secret-access-key",
        title: "AWS secret access key",
        severity: Severity::Critical,
        pattern: r#"(?i)aws_?secret_?(?:access_?)?key["']?\s*[:=]\s*["']?([A-Za-z0-9/+=]{40})\b"#,
        group: 1,
        min_entropy: 4.0,
    },
    SecretRule {
        id: "TUGS003",
        name: "gcp-service-account-key",
        title: "GCP service account key",
        severity: Severity::Critical,
        pattern: r#""private_key_id"\s*:\s*"([a-f0-9]{40})""#,
        group: 1,
        min_entropy: 3.0,
    },
    SecretRule {
        id: "TUGS004",
        name: "azure-storage-key",
        title: "Azure storage account key",
        severity: Severity::Critical,
        pattern: r"AccountKey=([A-Za-z0-9+/]{86}==)",
        group: 1,
        min_entropy: 4.0,
    },
    SecretRule {
        id: "TUGS005",
        name: "github-token",
        title: "GitHub token",
        severity: Severity::High,
        pattern: r"\b((?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36})\b",
        group: 1,
        min_entropy: 3.5,
    },
    SecretRule {
        id: "TUGS006",
        name: "github-fine-grained-token",
        title: "GitHub fine-grained token",
        severity: Severity::High,
        pattern: r"\b(github_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59})\b",
        group: 1,
        min_entropy: 3.5,
    },
    SecretRule {
        id: "TUGS007",
        name: "gitlab-token",
        title: "GitLab personal access token",
        severity: Severity::High,
        pattern: r"\b(glpat-[A-Za-z0-9_\-]{20})\b",
        group: 1,
        min_entropy: 3.0,
    },
    SecretRule {
        id: "TUGS008",
        name: "slack-token",
        title: "Slack token",
        severity: Severity::High,
        pattern: r"\b(xox[abposr]-[0-9]{8,}-[A-Za-z0-9-]{8,})",
        group: 1,
        min_entropy: 3.0,
    },
    SecretRule {
        id: "TUGS009",
        name: "slack-webhook",
        title: "Slack incoming webhook",
        severity: Severity::Medium,
        pattern: r"(https://hooks\.slack\.com/services/T[A-Z0-9]{6,}/B[A-Z0-9]{6,}/[A-Za-z0-9]{20,})",
        group: 1,
        min_entropy: 3.5,
    },
    SecretRule {
        id: "TUGS010",
        name: "stripe-live-key",
        title: "Stripe live secret key",
        severity: Severity::Critical,
        pattern: r"\b((?:sk|rk)_live_[A-Za-z0-9]{24,})\b",
        group: 1,
        min_entropy: 3.5,
    },
    SecretRule {
        id: "TUGS011",
        name: "twilio-api-key",
        title: "Twilio API key",
        severity: Severity::High,
        pattern: r"\b(SK[0-9a-f]{32})\b",
        group: 1,
        min_entropy: 3.2,
    },
    SecretRule {
        id: "TUGS012",
        name: "sendgrid-api-key",
        title: "SendGrid API key",
        severity: Severity::High,
        pattern: r"\b(SG\.[A-Za-z0-9_\-]{22}\.[A-Za-z0-9_\-]{43})\b",
        group: 1,
        min_entropy: 4.0,
    },
    SecretRule {
        id: "TUGS013",
        name: "npm-token",
        title: "npm access token",
        severity: Severity::High,
        pattern: r"\b(npm_[A-Za-z0-9]{36})\b",
        group: 1,
        min_entropy: 3.5,
    },
    SecretRule {
        id: "TUGS014",
        name: "pypi-token",
        title: "PyPI upload token",
        severity: Severity::High,
        pattern: r"\b(pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_\-]{50,})",
        group: 1,
        min_entropy: 4.0,
    },
    SecretRule {
        id: "TUGS015",
        name: "private-key",
        title: "Private key",
        severity: Severity::Critical,
        pattern: r"-----BEGIN ((?:RSA |DSA |EC |OPENSSH |ENCRYPTED |PGP )?PRIVATE KEY(?: BLOCK)?)-----\s*(?:[A-Za-z0-9-]+:[^\n]*\n\s*)*([A-Za-z0-9+/=\r\n]{64,})",
        group: 2,
        min_entropy: 4.0,
    },
    SecretRule {
        id: "TUGS016",
        name: "jwt",
        title: "JSON Web Token",
        severity: Severity::Medium,
        pattern: r"\b(eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{16,})",
        group: 1,
        min_entropy: 4.0,
    },
    SecretRule {
        id: "TUGS017",
        name: "password-in-url",
        title: "Password in URL",
        severity: Severity::High,
        pattern: r"\b[a-zA-Z][a-zA-Z0-9+.-]{1,20}://[^:/\s@]{1,64}:([^@/\s]{4,128})@[A-Za-z0-9][A-Za-z0-9.\-_]*",
        group: 1,
        min_entropy: 2.5,
    },
    SecretRule {
        id: "TUGS018",
        name: "connection-string-password",
        title: "Password in connection string",
        severity: Severity::High,
        pattern: r"(?i)\b(?:server|host|data source)\s*=[^;\n]+;[^\n]*?\b(?:password|pwd)\s*=\s*([^;'\x22\s]{4,})",
        group: 1,
        min_entropy: 2.5,
    },
    SecretRule {
        id: "TUGS019",
        name: "generic-secret-assignment",
        title: "Secret assigned to a credential-like name",
        severity: Severity::Medium,
        pattern: r#"(?i)\b[A-Za-z0-9_.-]*(?:token|secret|passwd|password|api_?key|access_?key|private_?key|client_?secret)["']?\s*[:=]\s*["']?([A-Za-z0-9/+=_\-.!@#%^&*~]{12,})"#,
        group: 1,
        min_entropy: 3.5,
    },
];

pub fn rules() -> &'static [SecretRule] {
    RULES
}

struct Compiled {
    set: RegexSet,
    each: Vec<Regex>,
}

fn compiled() -> &'static Compiled {
    static C: OnceLock<Compiled> = OnceLock::new();
    C.get_or_init(|| Compiled {
        // The patterns are constants checked by tests; failure here is a build bug.
        set: RegexSet::new(RULES.iter().map(|r| r.pattern)).expect("secret rule patterns"),
        each: RULES
            .iter()
            .map(|r| Regex::new(r.pattern).expect("secret rule pattern"))
            .collect(),
    })
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

/// Values that are obviously not real secrets.
pub fn is_placeholder(s: &str) -> bool {
    let l = s.to_ascii_lowercase();
    const WORDS: &[&str] = &[
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
    ];
    if WORDS.iter().any(|w| l.contains(w)) {
        return true;
    }
    // Template slots: `{password}`, `%(password)s`.
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
    let findings = scan_text(text, "", &Allowlist::default());
    if findings.is_empty() {
        return text.to_string();
    }
    let c = compiled();
    let mut out = text.to_string();
    for idx in c.set.matches(text).into_iter() {
        let rule = &RULES[idx];
        for caps in c.each[idx].captures_iter(text) {
            if let Some(m) = caps.get(rule.group) {
                out = out.replace(m.as_str(), &redact(m.as_str()));
            }
        }
    }
    out
}

/// Scans text for secrets. `rel` names the file in findings.
pub fn scan_text(text: &str, rel: &str, allow: &Allowlist) -> Vec<Finding> {
    let c = compiled();
    let mut out = Vec::new();
    let mut seen: HashSet<(usize, usize)> = HashSet::new();
    let mut index: Option<LineIndex> = None;
    for idx in c.set.matches(text).into_iter() {
        let rule = &RULES[idx];
        for caps in c.each[idx].captures_iter(text) {
            let Some(m) = caps.get(rule.group) else {
                continue;
            };
            let secret = m.as_str();
            let compact: String = secret.chars().filter(|c| !c.is_whitespace()).collect();
            if is_placeholder(&compact) || entropy(&compact) < rule.min_entropy {
                continue;
            }
            let start = caps.get(0).map_or(m.start(), |w| w.start());
            let index = index.get_or_insert_with(|| LineIndex::new(text));
            let (line, col, line_text) = index.locate(text, start);
            if line_text.contains(ALLOW_MARKER) {
                continue;
            }
            // One finding per place: a specific rule wins over the generic one.
            if rule.id == "TUGS019" && !seen.insert((line, 0)) {
                continue;
            }
            seen.insert((line, 0));
            let fp = fingerprint(rule.id, &compact);
            if allow.allows_fingerprint(&fp) {
                continue;
            }
            out.push(Finding {
                scanner: ScannerKind::Secret,
                rule_id: rule.id.to_string(),
                severity: rule.severity,
                title: rule.title.to_string(),
                message: format!("{} ({})", rule.title, redact(&compact)),
                file: rel.to_string(),
                line,
                col,
                fix: Some(
                    "revoke and rotate it, then load it from the environment or a secret store; \
                     if it is not a secret, add its fingerprint to .tugsecretsignore"
                        .into(),
                ),
                advisory: None,
                redacted: Some(redact(&compact)),
                fingerprint: Some(fp),
                commit: None,
            });
        }
    }
    out.sort_by_key(|f| (f.line, f.col));
    out
}
