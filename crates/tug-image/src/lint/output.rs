//! Rendering findings (tty, JSON, SARIF 2.1.0, Checkstyle, GitLab Code
//! Quality) and the rule list (table, Markdown).

use super::{Finding, Profile, Severity, RULES};
use serde_json::json;
use std::fmt::Write;

/// Output formats for findings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Tty,
    Json,
    Sarif,
    Checkstyle,
    Gitlab,
}

/// Renders findings; `color` adds ANSI colours (tty only).
pub fn render(findings: &[Finding], format: Format, color: bool) -> String {
    match format {
        Format::Tty => tty(findings, color),
        Format::Json => {
            let mut s = serde_json::to_string_pretty(findings).unwrap_or_else(|_| "[]".into());
            s.push('\n');
            s
        }
        Format::Sarif => {
            let mut s = serde_json::to_string_pretty(&sarif(findings)).unwrap_or_default();
            s.push('\n');
            s
        }
        Format::Checkstyle => checkstyle(findings),
        Format::Gitlab => {
            let mut s = serde_json::to_string_pretty(&gitlab(findings)).unwrap_or_default();
            s.push('\n');
            s
        }
    }
}

fn paint(color: bool, code: &str, text: &str) -> String {
    if color {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

fn severity_color(s: Severity) -> &'static str {
    match s {
        Severity::Error => "1;31",
        Severity::Warning => "1;33",
        Severity::Info => "1;36",
        Severity::Style => "1;35",
    }
}

fn tty(findings: &[Finding], color: bool) -> String {
    let mut out = String::new();
    for f in findings {
        let _ = writeln!(
            out,
            "{}:{}:{} {} {}: {}",
            paint(color, "1", &f.file),
            f.line,
            f.col,
            paint(color, "2", f.rule),
            paint(color, severity_color(f.severity), f.severity.as_str()),
            f.message
        );
        let _ = writeln!(out, "  {} {}", paint(color, "2", "why:"), f.why);
    }
    out
}

/// A relative path as a URI reference: unreserved characters kept, the rest percent-encoded.
fn uri_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.replace('\\', "/").bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

fn sarif_level(s: Severity) -> &'static str {
    match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Info | Severity::Style => "note",
    }
}

/// A SARIF 2.1.0 log with the whole rule registry as the driver's rules.
pub fn sarif(findings: &[Finding]) -> serde_json::Value {
    let rules: Vec<serde_json::Value> = RULES
        .iter()
        .map(|r| {
            json!({
                "id": r.id,
                "shortDescription": { "text": r.message },
                "fullDescription": { "text": r.why },
                "defaultConfiguration": { "level": sarif_level(r.severity) },
                "properties": { "severity": r.severity.as_str() }
            })
        })
        .collect();
    let results: Vec<serde_json::Value> = findings
        .iter()
        .map(|f| {
            let index = RULES.iter().position(|r| r.id == f.rule).unwrap_or(0);
            json!({
                "ruleId": f.rule,
                "ruleIndex": index,
                "level": sarif_level(f.severity),
                "message": { "text": format!("{} ({})", f.message, f.why) },
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": { "uri": uri_path(&f.file) },
                        "region": { "startLine": f.line.max(1), "startColumn": f.col.max(1) }
                    }
                }]
            })
        })
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": { "driver": {
                "name": "tug",
                "version": env!("CARGO_PKG_VERSION"),
                "rules": rules
            }},
            "results": results
        }]
    })
}

fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && c != '\t' && c != '\n' && c != '\r' => {}
            c => out.push(c),
        }
    }
    out
}

fn checkstyle(findings: &[Finding]) -> String {
    let mut out =
        String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<checkstyle version=\"4.3\">\n");
    let mut files: Vec<&str> = findings.iter().map(|f| f.file.as_str()).collect();
    files.dedup();
    for file in files {
        let _ = writeln!(out, "  <file name=\"{}\">", xml_escape(file));
        for f in findings.iter().filter(|f| f.file == file) {
            let severity = match f.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
                Severity::Info | Severity::Style => "info",
            };
            let _ = writeln!(
                out,
                "    <error line=\"{}\" column=\"{}\" severity=\"{severity}\" message=\"{}\" source=\"{}\"/>",
                f.line,
                f.col,
                xml_escape(&f.message),
                f.rule
            );
        }
        out.push_str("  </file>\n");
    }
    out.push_str("</checkstyle>\n");
    out
}

/// FNV-1a: a stable fingerprint across runs and toolchains.
fn fingerprint(f: &Finding) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in format!("{}:{}:{}:{}", f.file, f.line, f.rule, f.message).bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

fn gitlab(findings: &[Finding]) -> serde_json::Value {
    serde_json::Value::Array(
        findings
            .iter()
            .map(|f| {
                json!({
                    "description": format!("{}: {}", f.rule, f.message),
                    "check_name": f.rule,
                    "fingerprint": fingerprint(f),
                    "severity": match f.severity {
                        Severity::Error => "critical",
                        Severity::Warning => "major",
                        Severity::Info => "info",
                        Severity::Style => "minor",
                    },
                    "location": { "path": f.file, "lines": { "begin": f.line } }
                })
            })
            .collect(),
    )
}

/// The rule list as an aligned text table.
pub fn rules_table() -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{:<8} {:<8} {:<8} WHY", "RULE", "SEVERITY", "PROFILE");
    for r in RULES {
        let _ = writeln!(
            out,
            "{:<8} {:<8} {:<8} {}",
            r.id,
            r.severity.as_str(),
            profile_name(r.profile()),
            r.why
        );
    }
    out
}

fn profile_name(p: Profile) -> &'static str {
    match p {
        Profile::Default => "default",
        Profile::Strict => "strict",
    }
}

fn md_cell(s: &str) -> String {
    s.replace('|', "\\|")
}

/// The rule list as Markdown (docs/lint-rules.md is this output).
pub fn rules_markdown() -> String {
    let mut out = String::from(
        "# tug lint rules\n\n\
         Generated by `tug lint --list-rules --format markdown > docs/lint-rules.md`; do not edit by hand.\n\n\
         `DL` rules mean the same as hadolint's rules of that ID, so `# hadolint ignore=` comments and\n\
         `.hadolint.yaml` files keep working. `SC` rules check RUN scripts and mean the same as\n\
         ShellCheck's rules of that ID. `TUG` rules are tug's own.\n\n\
         Profile `default` is what hadolint runs by default; `strict` rules run with\n\
         `tug lint --strict` (or `strict: true` in the config), or when the config's `override`\n\
         names them.\n\n\
         | Rule | Severity | Profile | Message | Why |\n|---|---|---|---|---|\n",
    );
    for r in RULES {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} |",
            r.id,
            r.severity.as_str(),
            profile_name(r.profile()),
            md_cell(r.message),
            md_cell(r.why)
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<Finding> {
        vec![Finding {
            file: "a<b>/Dockerfile".into(),
            line: 3,
            col: 1,
            rule: "DL3008",
            severity: Severity::Warning,
            message: "Pin versions in apt-get install: curl & \"wget\"".into(),
            why: "why",
        }]
    }

    #[test]
    fn checkstyle_escapes() {
        let s = render(&sample(), Format::Checkstyle, false);
        assert!(s.contains("name=\"a&lt;b&gt;/Dockerfile\""), "{s}");
        assert!(s.contains("curl &amp; &quot;wget&quot;"), "{s}");
    }

    #[test]
    fn gitlab_has_required_fields() {
        let v: serde_json::Value =
            serde_json::from_str(&render(&sample(), Format::Gitlab, false)).unwrap();
        let item = &v[0];
        for k in [
            "description",
            "check_name",
            "fingerprint",
            "severity",
            "location",
        ] {
            assert!(item.get(k).is_some(), "{k}");
        }
        assert_eq!(item["location"]["lines"]["begin"], 3);
    }

    #[test]
    fn tty_colours_only_when_asked() {
        assert!(!render(&sample(), Format::Tty, false).contains('\x1b'));
        assert!(render(&sample(), Format::Tty, true).contains("\x1b[1;33mwarning"));
    }
}
