//! SARIF 2.1.0, as GitHub code scanning and other UIs read it: rules with
//! id, name, descriptions, help and `security-severity`; results with file,
//! line and column.

use crate::config;
use crate::finding::{Finding, ScannerKind, Severity};
use crate::secret;
use crate::Report;
use serde_json::{json, Value};
use std::collections::BTreeMap;

fn level(f: &Finding) -> &'static str {
    if f.is_informational() {
        return "note";
    }
    match f.severity {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low => "note",
    }
}

fn rule_json(f: &Finding) -> Value {
    let (name, short, help, uri, tags) = match f.scanner {
        ScannerKind::Vuln => {
            let a = f.advisory.as_ref();
            let id = a.map_or(f.rule_id.as_str(), |a| a.id.as_str());
            let help = match a {
                Some(a) if !a.patched.is_empty() => {
                    format!("{}\nPatched versions: {}", f.title, a.patched.join(", "))
                }
                _ => format!("{}\nNo patched version is known.", f.title),
            };
            (
                a.map_or(id.to_string(), |a| format!("{}-{}", a.package, id)),
                if f.title.is_empty() {
                    id.to_string()
                } else {
                    f.title.clone()
                },
                help,
                Some(format!("https://rustsec.org/advisories/{id}.html")),
                vec!["security", "vulnerability", "dependency"],
            )
        }
        ScannerKind::Secret => {
            let r = secret::rules().iter().find(|r| r.id == f.rule_id);
            (
                r.map_or(f.rule_id.clone(), |r| r.name.to_string()),
                f.title.clone(),
                "Revoke and rotate the secret, then load it from the environment or a secret store. If it is not a secret, add its fingerprint to .tugsecretsignore or mark the line with `tug:allow-secret`.".to_string(),
                None,
                vec!["security", "secret"],
            )
        }
        ScannerKind::Config => {
            let r = config::rule(&f.rule_id);
            (
                r.name.to_string(),
                r.title.to_string(),
                format!("{}.\nFix: {}", capitalize(r.why), r.fix),
                None,
                vec!["security", "configuration"],
            )
        }
    };
    let mut rule = json!({
        "id": f.rule_id,
        "name": name,
        "shortDescription": { "text": short },
        "fullDescription": { "text": short },
        "help": { "text": help },
        "defaultConfiguration": { "level": level(f) },
        "properties": {
            "security-severity": format!("{:.1}", f.score()),
            "tags": tags,
        }
    });
    if let Some(uri) = uri {
        rule["helpUri"] = json!(uri);
    }
    rule
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map_or(String::new(), |f| f.to_uppercase().chain(c).collect())
}

pub fn sarif(report: &Report) -> String {
    let mut rules: BTreeMap<&str, (usize, Value)> = BTreeMap::new();
    let mut order: Vec<Value> = Vec::new();
    let mut results = Vec::new();
    for f in &report.findings {
        let index = match rules.get(f.rule_id.as_str()) {
            Some((i, _)) => *i,
            None => {
                let i = order.len();
                let r = rule_json(f);
                order.push(r.clone());
                rules.insert(&f.rule_id, (i, r));
                i
            }
        };
        let mut props = serde_json::Map::new();
        props.insert("scanner".into(), json!(f.scanner.as_str()));
        props.insert("severity".into(), json!(f.severity.as_str()));
        if let Some(a) = &f.advisory {
            props.insert(
                "advisory".into(),
                serde_json::to_value(a).unwrap_or(Value::Null),
            );
        }
        if let Some(r) = &f.redacted {
            props.insert("redacted".into(), json!(r));
        }
        if let Some(c) = &f.commit {
            props.insert("commit".into(), json!(c.commit));
        }
        let mut text = f.message.clone();
        if let Some(fix) = &f.fix {
            text.push_str("\nFix: ");
            text.push_str(fix);
        }
        let mut result = json!({
            "ruleId": f.rule_id,
            "ruleIndex": index,
            "level": level(f),
            "message": { "text": text },
            "locations": [{
                "physicalLocation": {
                    "artifactLocation": { "uri": f.file, "uriBaseId": "%SRCROOT%" },
                    "region": { "startLine": f.line.max(1), "startColumn": f.col.max(1) }
                }
            }],
            "properties": props,
        });
        if let Some(fp) = &f.fingerprint {
            result["partialFingerprints"] = json!({ "tugSecret/v1": fp });
        }
        results.push(result);
    }
    let notifications: Vec<Value> = report
        .errors
        .iter()
        .map(|e| {
            json!({
                "level": "error",
                "message": { "text": e.message },
                "locations": [{ "physicalLocation": {
                    "artifactLocation": { "uri": e.file.to_string_lossy() },
                    "region": { "startLine": e.line.max(1), "startColumn": e.col.max(1) }
                }}]
            })
        })
        .chain(
            report
                .notices
                .iter()
                .map(|n| json!({ "level": "warning", "message": { "text": n } })),
        )
        .collect();
    let doc = json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": { "driver": {
                "name": "tug",
                "version": env!("CARGO_PKG_VERSION"),
                "semanticVersion": env!("CARGO_PKG_VERSION"),
                "rules": order,
            }},
            "invocations": [{
                "executionSuccessful": true,
                "toolExecutionNotifications": notifications,
            }],
            "originalUriBaseIds": { "%SRCROOT%": { "uri": root_uri(report) } },
            "results": results,
        }]
    });
    serde_json::to_string_pretty(&doc).unwrap_or_default()
}

fn root_uri(report: &Report) -> String {
    let abs = std::fs::canonicalize(&report.root).unwrap_or_else(|_| report.root.clone());
    let dir = if abs.is_file() {
        abs.parent().map(|p| p.to_path_buf()).unwrap_or(abs)
    } else {
        abs
    };
    let mut s = dir.to_string_lossy().replace('\\', "/");
    if !s.ends_with('/') {
        s.push('/');
    }
    if s.starts_with('/') {
        format!("file://{s}")
    } else {
        format!("file:///{s}")
    }
}
