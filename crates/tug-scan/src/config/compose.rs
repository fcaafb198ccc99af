//! compose.yaml / docker-compose.yml checks.

use super::{
    finding, is_literal_secret, is_secret_name, tugyaml::dangerous_cap, unpinned_image,
    yamlpos::find_line,
};
use crate::finding::{FileError, Finding, Severity};
use serde_yaml_ng::Value;
use std::path::Path;

fn s(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn list(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_sequence)
        .map(|l| l.iter().filter_map(s).collect())
        .unwrap_or_default()
}

pub fn scan(text: &str, rel: &str, path: &Path) -> (Vec<Finding>, Vec<FileError>) {
    let doc: Value = match serde_yaml_ng::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            return (
                Vec::new(),
                vec![super::yaml_error_in(text, path, &e, "compose file")],
            )
        }
    };
    let mut out = Vec::new();
    let Some(services) = doc.get("services").and_then(Value::as_mapping) else {
        return (out, Vec::new());
    };
    for (name, svc) in services {
        let name = s(name).unwrap_or_default();
        let at = |keys: &[&str]| {
            let mut p = vec!["services", name.as_str()];
            p.extend_from_slice(keys);
            find_line(text, 0, usize::MAX, &p)
        };
        let get = |k: &str| svc.get(k);
        if get("privileged").and_then(Value::as_bool) == Some(true) {
            out.push(finding(
                "TUGC001",
                None,
                rel,
                at(&["privileged"]),
                format!("service `{name}` is privileged"),
            ));
        }
        for key in ["network_mode", "pid", "ipc"] {
            if get(key).and_then(Value::as_str) == Some("host") {
                out.push(finding(
                    "TUGC002",
                    None,
                    rel,
                    at(&[key]),
                    format!("service `{name}` sets {key}: host"),
                ));
            }
        }
        let caps = list(get("cap_add"));
        if !caps.is_empty() {
            let sev = if caps.iter().any(|c| dangerous_cap(c)) {
                Severity::High
            } else {
                Severity::Medium
            };
            out.push(finding(
                "TUGC005",
                Some(sev),
                rel,
                at(&["cap_add"]),
                format!("service `{name}` adds {}", caps.join(", ")),
            ));
        }
        if let Some(u) = get("user").and_then(s) {
            let uid = u.split(':').next().unwrap_or_default();
            if uid == "root" || uid == "0" {
                out.push(finding(
                    "TUGC006",
                    None,
                    rel,
                    at(&["user"]),
                    format!("service `{name}` runs as user {u}"),
                ));
            }
        }
        for opt in list(get("security_opt")) {
            let o = opt.replace('=', ":");
            if o == "seccomp:unconfined" {
                out.push(finding(
                    "TUGC013",
                    None,
                    rel,
                    at(&["security_opt"]),
                    format!("service `{name}` sets security_opt {opt}"),
                ));
            }
            if o == "no-new-privileges:false" {
                out.push(finding(
                    "TUGC012",
                    None,
                    rel,
                    at(&["security_opt"]),
                    format!("service `{name}` sets security_opt {opt}"),
                ));
            }
        }
        if let Some(vols) = get("volumes").and_then(Value::as_sequence) {
            for v in vols {
                let src = match v {
                    Value::String(x) => x.split(':').next().map(str::to_string),
                    Value::Mapping(_) => v.get("source").and_then(s),
                    _ => None,
                };
                if src
                    .as_deref()
                    .is_some_and(|p| p.ends_with("docker.sock") || p.ends_with("podman.sock"))
                {
                    out.push(finding(
                        "TUGC004",
                        None,
                        rel,
                        at(&["volumes"]),
                        format!("service `{name}` mounts {}", src.unwrap_or_default()),
                    ));
                }
            }
        }
        if let Some(img) = get("image").and_then(Value::as_str) {
            if let Some(why) = unpinned_image(img) {
                out.push(finding(
                    "TUGC009",
                    None,
                    rel,
                    at(&["image"]),
                    format!("service `{name}` uses {why} image `{img}`"),
                ));
            }
        }
        let mut env: Vec<(String, String)> = Vec::new();
        match get("environment") {
            Some(Value::Mapping(m)) => {
                for (k, v) in m {
                    if let (Some(k), Some(v)) = (s(k), s(v)) {
                        env.push((k, v));
                    }
                }
            }
            Some(Value::Sequence(l)) => {
                for item in l.iter().filter_map(s) {
                    if let Some((k, v)) = item.split_once('=') {
                        env.push((k.to_string(), v.to_string()));
                    }
                }
            }
            _ => {}
        }
        for (k, v) in env {
            if is_secret_name(&k) && is_literal_secret(&v) {
                out.push(finding(
                    "TUGC011",
                    None,
                    rel,
                    at(&["environment", &k]),
                    format!("service `{name}` sets {k} to a literal value"),
                ));
            }
        }
    }
    (out, Vec::new())
}
