//! The one `Finding` type every scanner emits, and its severity scale.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// Severity, ordered from least to most severe (Trivy's scale).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 4] = [
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "LOW",
            Severity::Medium => "MEDIUM",
            Severity::High => "HIGH",
            Severity::Critical => "CRITICAL",
        }
    }

    /// CVSS v3 qualitative bands (0.1-3.9 low, 4-6.9 medium, 7-8.9 high, 9+ critical).
    pub fn from_score(score: f64) -> Severity {
        if score >= 9.0 {
            Severity::Critical
        } else if score >= 7.0 {
            Severity::High
        } else if score >= 4.0 {
            Severity::Medium
        } else {
            Severity::Low
        }
    }

    /// A representative score for code-scanning UIs when no CVSS score exists.
    pub fn nominal_score(self) -> f64 {
        match self {
            Severity::Low => 2.0,
            Severity::Medium => 5.5,
            Severity::High => 8.0,
            Severity::Critical => 9.5,
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Severity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_uppercase().as_str() {
            "LOW" => Ok(Severity::Low),
            "MEDIUM" => Ok(Severity::Medium),
            "HIGH" => Ok(Severity::High),
            "CRITICAL" => Ok(Severity::Critical),
            other => Err(format!(
                "unknown severity `{other}`: expected LOW, MEDIUM, HIGH or CRITICAL"
            )),
        }
    }
}

/// Which scanner produced a finding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScannerKind {
    Vuln,
    Secret,
    Config,
}

impl ScannerKind {
    pub const ALL: [ScannerKind; 3] = [ScannerKind::Vuln, ScannerKind::Secret, ScannerKind::Config];

    pub fn as_str(self) -> &'static str {
        match self {
            ScannerKind::Vuln => "vuln",
            ScannerKind::Secret => "secret",
            ScannerKind::Config => "config",
        }
    }
}

impl FromStr for ScannerKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "vuln" | "vulnerability" => Ok(ScannerKind::Vuln),
            "secret" | "secrets" => Ok(ScannerKind::Secret),
            "config" | "misconfig" => Ok(ScannerKind::Config),
            other => Err(format!(
                "unknown scanner `{other}`: expected vuln, secret or config"
            )),
        }
    }
}

/// What kind of advisory matched: only `Vulnerability` is a vulnerability;
/// the others are informational warnings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AdvisoryKind {
    Vulnerability,
    Unmaintained,
    Unsound,
    Notice,
}

/// Advisory data carried by a `vuln` finding.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AdvisoryInfo {
    pub id: String,
    pub package: String,
    pub version: String,
    pub kind: AdvisoryKind,
    pub aliases: Vec<String>,
    pub cvss: Option<String>,
    pub cvss_score: Option<f64>,
    pub url: Option<String>,
    pub date: String,
    pub patched: Vec<String>,
    /// Dependency path from a workspace member to the affected package.
    pub path: Vec<String>,
}

/// Where a secret finding came from in git history.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CommitInfo {
    pub commit: String,
}

/// One problem found by a scanner.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    pub scanner: ScannerKind,
    pub rule_id: String,
    pub severity: Severity,
    pub title: String,
    pub message: String,
    /// Path relative to the scanned root, `/`-separated.
    pub file: String,
    pub line: usize,
    pub col: usize,
    pub fix: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub advisory: Option<AdvisoryInfo>,
    /// The secret, redacted: first characters and length only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redacted: Option<String>,
    /// Stable id of a secret (rule + hash), usable in `.tugsecretsignore`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit: Option<CommitInfo>,
}

impl Finding {
    /// Informational findings (unmaintained, unsound, notice) are warnings,
    /// not vulnerabilities: they never trigger `--exit-code`.
    pub fn is_informational(&self) -> bool {
        self.advisory
            .as_ref()
            .is_some_and(|a| a.kind != AdvisoryKind::Vulnerability)
            || (self.scanner == ScannerKind::Config
                && crate::config::INFORMATIONAL.contains(&self.rule_id.as_str()))
    }

    /// Score for SARIF's `security-severity`.
    pub fn score(&self) -> f64 {
        self.advisory
            .as_ref()
            .and_then(|a| a.cvss_score)
            .unwrap_or_else(|| self.severity.nominal_score())
    }
}

/// A file that could not be read or parsed; the scan goes on without it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FileError {
    pub file: PathBuf,
    pub line: usize,
    pub col: usize,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file.display(),
            self.line,
            self.col,
            self.message
        )?;
        if let Some(h) = &self.hint {
            write!(f, "\n  hint: {h}")?;
        }
        Ok(())
    }
}

/// 1-based line and column of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text.as_bytes()[..offset];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |p| p + 1);
    let col = String::from_utf8_lossy(&before[line_start..])
        .chars()
        .count()
        + 1;
    (line, col)
}

/// Line starts of a text, for many offset → line lookups in O(log n).
pub struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    pub fn new(text: &str) -> LineIndex {
        let mut starts = vec![0];
        starts.extend(
            text.bytes()
                .enumerate()
                .filter(|&(_, b)| b == b'\n')
                .map(|(i, _)| i + 1),
        );
        LineIndex { starts }
    }

    /// 1-based line of a byte offset.
    pub fn line(&self, offset: usize) -> usize {
        self.starts.partition_point(|&s| s <= offset)
    }

    /// 1-based line and column (in chars) of a byte offset, and the line's text.
    pub fn locate<'t>(&self, text: &'t str, offset: usize) -> (usize, usize, &'t str) {
        let offset = offset.min(text.len());
        let line = self.line(offset);
        let start = self.starts[line - 1];
        let end = self.starts.get(line).map_or(text.len(), |&e| e - 1);
        let col = text.get(start..offset).map_or(1, |p| p.chars().count() + 1);
        (line, col, text.get(start..end).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_index_agrees_with_line_col() {
        let text = "a\nbc\n\nd";
        let idx = LineIndex::new(text);
        for off in 0..=text.len() {
            assert_eq!(idx.line(off), line_col(text, off).0, "{off}");
            let (l, c, _) = idx.locate(text, off);
            assert_eq!((l, c), line_col(text, off), "{off}");
        }
        assert_eq!(idx.locate(text, 3).2, "bc");
    }
}
