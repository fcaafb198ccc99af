//! Human-readable report, grouped by scanner and severity.

use crate::finding::{Finding, ScannerKind, Severity};
use crate::Report;
use std::fmt::Write;

pub fn table(report: &Report) -> String {
    let mut s = String::new();
    for kind in ScannerKind::ALL {
        if !report.scanners.contains(&kind) {
            continue;
        }
        let (info, main): (Vec<&Finding>, Vec<&Finding>) = report
            .findings
            .iter()
            .filter(|f| f.scanner == kind)
            .partition(|f| f.is_informational());
        section(&mut s, kind.as_str(), &main);
        if !info.is_empty() {
            let title = match kind {
                ScannerKind::Vuln => "vuln (informational: unmaintained, unsound, notices)",
                _ => "config (informational)",
            };
            section(&mut s, title, &info);
        }
    }
    for n in &report.notices {
        let _ = writeln!(s, "notice: {n}");
    }
    for e in &report.errors {
        let _ = writeln!(s, "error: {e}");
    }
    let count = |sev: Severity| {
        report
            .findings
            .iter()
            .filter(|f| f.severity == sev && !f.is_informational())
            .count()
    };
    let _ = writeln!(
        s,
        "\n{} finding(s): {} critical, {} high, {} medium, {} low; {} informational; {} file(s) scanned, {} lockfile(s), {} error(s)",
        report.findings.iter().filter(|f| !f.is_informational()).count(),
        count(Severity::Critical),
        count(Severity::High),
        count(Severity::Medium),
        count(Severity::Low),
        report.findings.iter().filter(|f| f.is_informational()).count(),
        report.stats.files,
        report.stats.lockfiles,
        report.errors.len(),
    );
    s
}

fn section(s: &mut String, name: &str, findings: &[&Finding]) {
    let _ = writeln!(s, "── {name} ({}) ──", findings.len());
    if findings.is_empty() {
        let _ = writeln!(s, "  no findings\n");
        return;
    }
    for sev in Severity::ALL.iter().rev() {
        let group: Vec<_> = findings.iter().filter(|f| f.severity == *sev).collect();
        if group.is_empty() {
            continue;
        }
        let _ = writeln!(s, "  {sev} ({})", group.len());
        for f in group {
            let _ = writeln!(
                s,
                "    {:<18} {}:{}:{}  {}",
                f.rule_id, f.file, f.line, f.col, f.title
            );
            let _ = writeln!(s, "      {}", f.message);
            if let Some(a) = &f.advisory {
                if !a.aliases.is_empty() {
                    let _ = writeln!(s, "      aliases: {}", a.aliases.join(", "));
                }
                if let Some(c) = &a.cvss {
                    let _ = writeln!(
                        s,
                        "      cvss: {} ({c})",
                        a.cvss_score.map_or(String::new(), |x| format!("{x:.1}"))
                    );
                }
            }
            if let Some(c) = &f.commit {
                let _ = writeln!(s, "      commit: {}", c.commit);
            }
            if let Some(fp) = &f.fingerprint {
                let _ = writeln!(s, "      fingerprint: {fp}");
            }
            if let Some(fix) = &f.fix {
                let _ = writeln!(s, "      fix: {fix}");
            }
        }
    }
    s.push('\n');
}
