//! RustSec advisories in their on-disk format: a ```toml front-matter block,
//! then a Markdown `# title` and description.

use crate::finding::{AdvisoryKind, Severity};
use semver::{Comparator, Op, Version, VersionReq};
use serde::Deserialize;

#[derive(Clone, Debug, PartialEq)]
pub struct Advisory {
    pub id: String,
    pub package: String,
    pub date: String,
    pub url: Option<String>,
    pub kind: AdvisoryKind,
    pub withdrawn: bool,
    pub aliases: Vec<String>,
    pub cvss: Option<String>,
    pub cvss_score: Option<f64>,
    pub patched: Vec<VersionReq>,
    pub unaffected: Vec<VersionReq>,
    pub title: String,
    pub description: String,
}

/// An error at a byte offset of the advisory file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    pub offset: usize,
    pub message: String,
}

#[derive(Deserialize)]
struct Raw {
    advisory: RawAdvisory,
    #[serde(default)]
    versions: RawVersions,
}

#[derive(Deserialize)]
struct RawAdvisory {
    id: String,
    package: String,
    date: toml::Value,
    url: Option<String>,
    informational: Option<String>,
    withdrawn: Option<toml::Value>,
    #[serde(default)]
    aliases: Vec<String>,
    cvss: Option<String>,
    title: Option<String>,
    description: Option<String>,
}

#[derive(Deserialize, Default)]
struct RawVersions {
    #[serde(default)]
    patched: Vec<String>,
    #[serde(default)]
    unaffected: Vec<String>,
}

impl Advisory {
    /// Parses one advisory file. Never panics.
    pub fn parse(text: &str) -> Result<Advisory, ParseError> {
        let open = text.find("```toml").ok_or_else(|| ParseError {
            offset: 0,
            message: "no ```toml front-matter block".into(),
        })?;
        let body_start = text[open..]
            .find('\n')
            .map(|n| open + n + 1)
            .ok_or_else(|| ParseError {
                offset: open,
                message: "unterminated ```toml block".into(),
            })?;
        let close_rel = text[body_start..].find("\n```").ok_or_else(|| ParseError {
            offset: open,
            message: "unterminated ```toml block".into(),
        })?;
        let front = &text[body_start..body_start + close_rel + 1];
        let rest_start = (body_start + close_rel + 4).min(text.len());
        let rest = text.get(rest_start..).unwrap_or_default();

        let raw: Raw = toml::from_str(front).map_err(|e| ParseError {
            offset: body_start + e.span().map_or(0, |s| s.start),
            message: e.message().trim().to_string(),
        })?;
        let at = |needle: &str| front.find(needle).map_or(body_start, |p| body_start + p);
        let kind = match raw.advisory.informational.as_deref() {
            None => AdvisoryKind::Vulnerability,
            Some("unmaintained") => AdvisoryKind::Unmaintained,
            Some("unsound") => AdvisoryKind::Unsound,
            // Unknown informational kinds are notices, as in RustSec.
            Some(_) => AdvisoryKind::Notice,
        };
        let reqs = |list: &[String], field: &str| -> Result<Vec<VersionReq>, ParseError> {
            list.iter()
                .map(|s| {
                    VersionReq::parse(s).map_err(|e| ParseError {
                        offset: at(s),
                        message: format!("invalid {field} requirement `{s}`: {e}"),
                    })
                })
                .collect()
        };
        let patched = reqs(&raw.versions.patched, "patched")?;
        let unaffected = reqs(&raw.versions.unaffected, "unaffected")?;
        // A vector this build cannot score falls back to the kind's severity
        // rather than hiding the advisory.
        let cvss_score = raw.advisory.cvss.as_deref().and_then(cvss_score);
        let (title, description) = split_markdown(rest);
        Ok(Advisory {
            id: raw.advisory.id,
            package: raw.advisory.package,
            date: value_str(&raw.advisory.date),
            url: raw.advisory.url,
            kind,
            withdrawn: raw.advisory.withdrawn.is_some(),
            aliases: raw.advisory.aliases,
            cvss: raw.advisory.cvss,
            cvss_score,
            patched,
            unaffected,
            title: raw.advisory.title.or(title).unwrap_or_default(),
            description: raw.advisory.description.unwrap_or(description),
        })
    }

    /// RustSec semantics: vulnerable unless the version falls in a patched
    /// or an unaffected range. Ranges are intervals on the total semver
    /// order (as RustSec's OSV export), so `>= 1.2.0` covers `1.3.0-rc.1`
    /// and does not cover `1.2.0-rc.1`.
    pub fn affects(&self, version: &Version) -> bool {
        !self
            .patched
            .iter()
            .chain(&self.unaffected)
            .any(|req| interval_contains(req, version))
    }

    pub fn severity(&self) -> Severity {
        match (self.cvss_score, self.kind) {
            (Some(s), _) => Severity::from_score(s),
            // Unscored vulnerabilities count as HIGH so a severity filter never hides them.
            (None, AdvisoryKind::Vulnerability) => Severity::High,
            (None, AdvisoryKind::Unsound) => Severity::Medium,
            (None, AdvisoryKind::Unmaintained | AdvisoryKind::Notice) => Severity::Low,
        }
    }
}

fn value_str(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn split_markdown(rest: &str) -> (Option<String>, String) {
    let mut title = None;
    let mut desc = Vec::new();
    for line in rest.lines() {
        if title.is_none() {
            if let Some(t) = line.strip_prefix("# ") {
                title = Some(t.trim().to_string());
                continue;
            }
        }
        desc.push(line);
    }
    (title, desc.join("\n").trim().to_string())
}

/// Score of a CVSS vector (v2, v3.x or v4.0).
pub fn cvss_score(vector: &str) -> Option<f64> {
    let v: cvss::Cvss = vector.parse().ok()?;
    Some(v.score())
}

/// Whether every comparator of `req` holds for `v`, with RustSec's
/// interval semantics: versions compare by total semver order (pre-releases
/// included), a partial version means its zero-filled form (`> 1.2` is
/// `> 1.2.0`), and `^`/`~` end just below the next breaking release's
/// pre-releases (`^1.2.3` is `[1.2.3, 2.0.0-0)`).
fn interval_contains(req: &VersionReq, v: &Version) -> bool {
    req.comparators.iter().all(|c| comparator_holds(c, v))
}

fn comparator_holds(c: &Comparator, v: &Version) -> bool {
    use std::cmp::Ordering::*;
    let bound = Version {
        major: c.major,
        minor: c.minor.unwrap_or(0),
        patch: c.patch.unwrap_or(0),
        pre: c.pre.clone(),
        build: Default::default(),
    };
    let cmp = v.cmp_precedence(&bound);
    // Exclusive upper end `X.Y.Z-0`: below every pre-release of X.Y.Z.
    let below = |major: u64, minor: u64, patch: u64| {
        let mut end = Version::new(major, minor, patch);
        end.pre = semver::Prerelease::new("0").unwrap_or_default();
        cmp != Less && v.cmp_precedence(&end) == Less
    };
    match c.op {
        Op::Exact => cmp == Equal,
        Op::Greater => cmp == Greater,
        Op::GreaterEq => cmp != Less,
        Op::Less => cmp == Less,
        Op::LessEq => cmp != Greater,
        Op::Caret => match (c.major, c.minor, c.patch) {
            (0, Some(0), Some(p)) => below(0, 0, p + 1),
            (0, Some(m), _) => below(0, m + 1, 0),
            (major, _, _) => below(major + 1, 0, 0),
        },
        Op::Tilde => match c.minor {
            None => below(c.major + 1, 0, 0),
            Some(m) => below(c.major, m + 1, 0),
        },
        // Wildcards (which RustSec rejects) and future operators: Cargo's matching.
        _ => c.matches(v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn adv(patched: &[&str], unaffected: &[&str]) -> Advisory {
        let list = |l: &[&str]| {
            l.iter()
                .map(|s| format!("{s:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let text = format!(
            "```toml\n[advisory]\nid = \"RUSTSEC-2099-0001\"\npackage = \"x\"\ndate = \"2099-01-01\"\n\n[versions]\npatched = [{}]\nunaffected = [{}]\n```\n\n# Title here\n\nBody text.\n",
            list(patched),
            list(unaffected)
        );
        Advisory::parse(&text).unwrap()
    }

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    #[test]
    fn title_and_description_from_markdown() {
        let a = adv(&[">= 1.0.0"], &[]);
        assert_eq!(a.title, "Title here");
        assert_eq!(a.description, "Body text.");
        assert_eq!(a.severity(), Severity::High);
    }

    #[test]
    fn patched_and_unaffected_ranges() {
        let a = adv(&[">= 1.2.3, < 2.0.0", ">= 2.1.0"], &["< 1.0.0"]);
        assert!(!a.affects(&v("0.9.9")));
        assert!(a.affects(&v("1.0.0")));
        assert!(a.affects(&v("1.2.2")));
        assert!(!a.affects(&v("1.2.3")));
        assert!(!a.affects(&v("1.9.0")));
        assert!(a.affects(&v("2.0.0")));
        assert!(a.affects(&v("2.0.5")));
        assert!(!a.affects(&v("2.1.0")));
    }

    #[test]
    fn prereleases_follow_total_order() {
        let a = adv(&[">= 1.2.0"], &[]);
        assert!(a.affects(&v("1.2.0-alpha.1")));
        assert!(!a.affects(&v("1.3.0-rc.1")));
        let b = adv(&[">= 0.5.0-beta.2"], &[]);
        assert!(b.affects(&v("0.5.0-beta.1")));
        assert!(!b.affects(&v("0.5.0-beta.2")));
        assert!(!b.affects(&v("0.5.0")));
    }

    #[test]
    fn caret_and_tilde() {
        let a = adv(&["^0.3.5", "~0.4.2", "^1.4"], &[]);
        assert!(a.affects(&v("0.3.4")));
        assert!(!a.affects(&v("0.3.9")));
        assert!(a.affects(&v("0.4.1")));
        assert!(!a.affects(&v("0.4.7")));
        assert!(a.affects(&v("0.5.0")));
        assert!(!a.affects(&v("1.9.0")));
        assert!(a.affects(&v("2.0.0")));
    }

    #[test]
    fn caret_and_tilde_end_below_next_prereleases() {
        // As RustSec: ^2.2.1 is [2.2.1, 3.0.0-0), so 3.0.0-alpha.1 is not patched by it.
        let a = adv(&["^2.2.1", ">= 3.0.0-beta.9"], &[]);
        assert!(a.affects(&v("3.0.0-alpha.1")));
        assert!(!a.affects(&v("2.9.0")));
        assert!(!a.affects(&v("3.0.0-beta.9")));
        let t = adv(&["~0.22.2"], &[]);
        assert!(a.affects(&v("2.2.0")));
        assert!(t.affects(&v("0.23.0-alpha.1")));
        assert!(!t.affects(&v("0.22.9")));
    }

    #[test]
    fn partial_versions_are_zero_filled() {
        let a = adv(&["> 1.2", "= 0.9"], &["<= 0.5"]);
        assert!(!a.affects(&v("1.2.1")));
        assert!(a.affects(&v("1.2.0")));
        assert!(!a.affects(&v("0.9.0")));
        assert!(a.affects(&v("0.9.1")));
        assert!(!a.affects(&v("0.5.0")));
        assert!(a.affects(&v("0.5.1")));
    }

    #[test]
    fn no_patched_means_all_affected() {
        let a = adv(&[], &[]);
        assert!(a.affects(&v("0.0.1")));
        assert!(a.affects(&v("99.0.0")));
    }

    #[test]
    fn cvss_gives_severity() {
        assert_eq!(
            cvss_score("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"),
            Some(9.8)
        );
        assert!(cvss_score("CVSS:3.1/AV:bogus").is_none());
        assert!(
            cvss_score("CVSS:4.0/AV:N/AC:H/AT:N/PR:L/UI:A/VC:N/VI:N/VA:H/SC:N/SI:N/SA:H").is_some()
        );
    }

    #[test]
    fn errors_point_into_front_matter() {
        let text =
            "# x\n```toml\n[advisory]\nid = \"A\"\npackage = 3\ndate = \"2020-01-01\"\n```\n";
        let e = Advisory::parse(text).unwrap_err();
        assert_eq!(crate::finding::line_col(text, e.offset).0, 5);
        let text = "```toml\n[advisory]\nid = \"A\"\npackage = \"p\"\ndate = \"2020-01-01\"\n[versions]\npatched = [\">= nope\"]\n```\n";
        let e = Advisory::parse(text).unwrap_err();
        assert_eq!(crate::finding::line_col(text, e.offset).0, 7);
        assert!(Advisory::parse("no front matter").is_err());
        assert!(Advisory::parse("```toml\n[advisory]").is_err());
    }
}
