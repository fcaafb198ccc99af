//! Kubernetes manifests (multi-document YAML with apiVersion and kind):
//! pod-spec checks in the spirit of kube-score.

use super::{
    finding, is_literal_secret, is_secret_name, lacks_digest, tugyaml::dangerous_cap,
    unpinned_image, yamlpos::find_line,
};
use crate::finding::{FileError, Finding, Severity};
use serde::Deserialize;
use serde_yaml_ng::Value;
use std::path::Path;

/// Line ranges (0-based, end exclusive) of each `---`-separated document.
fn doc_ranges(text: &str) -> Vec<(usize, usize)> {
    let mut ranges = Vec::new();
    let mut start = 0;
    let n = text.lines().count();
    for (i, l) in text.lines().enumerate() {
        if l.starts_with("---") {
            ranges.push((start, i));
            start = i + 1;
        }
    }
    ranges.push((start, n));
    // serde_yaml_ng yields no document for an empty leading chunk.
    ranges.retain(|&(a, b)| {
        text.lines().skip(a).take(b - a).any(|l| {
            let t = l.trim();
            !t.is_empty() && !t.starts_with('#')
        })
    });
    ranges
}

fn pod_spec<'a>(kind: &str, doc: &'a Value) -> Option<&'a Value> {
    match kind {
        "Pod" => doc.get("spec"),
        "Deployment"
        | "StatefulSet"
        | "DaemonSet"
        | "ReplicaSet"
        | "Job"
        | "ReplicationController" => doc.get("spec")?.get("template")?.get("spec"),
        "CronJob" => doc
            .get("spec")?
            .get("jobTemplate")?
            .get("spec")?
            .get("template")?
            .get("spec"),
        _ => None,
    }
}

/// 0-based line of the list item `name: NAME` at or after `from`, else `from`.
fn item_line(text: &str, from: usize, to: usize, name: &str) -> usize {
    text.lines()
        .enumerate()
        .skip(from)
        .take(to.saturating_sub(from))
        .find(|(_, l)| {
            let t = l.trim_start().trim_start_matches("- ").trim_end();
            t == format!("name: {name}")
                || t == format!("name: \"{name}\"")
                || t == format!("name: '{name}'")
        })
        .map_or(from, |(i, _)| i)
}

/// Kinds that live in a namespace (the cluster-scoped ones of the core API
/// and common extensions are listed; anything else is taken as namespaced).
fn is_namespaced(kind: &str) -> bool {
    !matches!(
        kind,
        "Namespace"
            | "Node"
            | "PersistentVolume"
            | "StorageClass"
            | "ClusterRole"
            | "ClusterRoleBinding"
            | "CustomResourceDefinition"
            | "PriorityClass"
            | "IngressClass"
            | "RuntimeClass"
            | "CSIDriver"
            | "CSINode"
            | "VolumeAttachment"
            | "MutatingWebhookConfiguration"
            | "ValidatingWebhookConfiguration"
            | "ValidatingAdmissionPolicy"
            | "ValidatingAdmissionPolicyBinding"
            | "APIService"
            | "PodSecurityPolicy"
            | "ClusterIssuer"
            | "List"
    )
}

fn b(v: Option<&Value>) -> Option<bool> {
    v.and_then(Value::as_bool)
}

pub fn scan(text: &str, rel: &str, path: &Path) -> (Vec<Finding>, Vec<FileError>) {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    let ranges = doc_ranges(text);
    for (i, de) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
        let doc = match Value::deserialize(de) {
            Ok(v) => v,
            Err(e) => {
                errors.push(super::yaml_error_in(text, path, &e, "Kubernetes manifest"));
                // A syntax error ends the stream; findings so far stand.
                break;
            }
        };
        let (from, to) = ranges.get(i).copied().unwrap_or((0, usize::MAX));
        let Some(kind) = doc.get("kind").and_then(Value::as_str) else {
            continue;
        };
        let obj = format!(
            "{kind}/{}",
            doc.get("metadata")
                .and_then(|m| m.get("name"))
                .and_then(Value::as_str)
                .unwrap_or("?")
        );
        if is_namespaced(kind) {
            match doc
                .get("metadata")
                .and_then(|m| m.get("namespace"))
                .and_then(Value::as_str)
            {
                None => out.push(finding(
                    "TUGC018",
                    None,
                    rel,
                    find_line(text, from, to, &["metadata"]),
                    format!(
                        "{obj} sets no namespace, so it lands in `default` unless applied with -n"
                    ),
                )),
                Some("default") => out.push(finding(
                    "TUGC018",
                    None,
                    rel,
                    find_line(text, from, to, &["metadata", "namespace"]),
                    format!("{obj} is in the default namespace"),
                )),
                Some(_) => {}
            }
        }
        let Some(spec) = pod_spec(kind, &doc) else {
            continue;
        };
        check_pod(text, rel, from, to, &obj, spec, &mut out);
    }
    (out, errors)
}

fn check_pod(
    text: &str,
    rel: &str,
    from: usize,
    to: usize,
    obj: &str,
    spec: &Value,
    out: &mut Vec<Finding>,
) {
    let at = |keys: &[&str]| find_line(text, from, to, keys);
    for key in ["hostNetwork", "hostPID", "hostIPC"] {
        if b(spec.get(key)) == Some(true) {
            out.push(finding(
                "TUGC002",
                None,
                rel,
                at(&[key]),
                format!("{obj} sets {key}: true"),
            ));
        }
    }
    if let Some(vols) = spec.get("volumes").and_then(Value::as_sequence) {
        let list_from = at(&["volumes"]) - 1;
        for v in vols {
            if let Some(hp) = v
                .get("hostPath")
                .and_then(|h| h.get("path"))
                .and_then(Value::as_str)
            {
                let vname = v.get("name").and_then(Value::as_str).unwrap_or("?");
                let vfrom = item_line(text, list_from, to, vname);
                let line = find_line(text, vfrom, to, &["hostPath", "path"]);
                if hp.ends_with("docker.sock")
                    || hp.ends_with("containerd.sock")
                    || hp.ends_with("crio.sock")
                {
                    out.push(finding(
                        "TUGC004",
                        None,
                        rel,
                        line,
                        format!("{obj} mounts {hp}"),
                    ));
                } else {
                    out.push(finding(
                        "TUGC003",
                        None,
                        rel,
                        line,
                        format!("{obj} mounts host path {hp}"),
                    ));
                }
            }
        }
    }
    if b(spec.get("automountServiceAccountToken")) != Some(false) {
        let (line, detail) = match b(spec.get("automountServiceAccountToken")) {
            Some(true) => (
                at(&["automountServiceAccountToken"]),
                "sets automountServiceAccountToken: true",
            ),
            _ => (from + 1, "does not set automountServiceAccountToken: false"),
        };
        let line = if line == from + 1 {
            find_line(text, from, to, &["kind"])
        } else {
            line
        };
        out.push(finding(
            "TUGC017",
            None,
            rel,
            line,
            format!("{obj} {detail}"),
        ));
    }
    let pod_sc = spec.get("securityContext");
    let pod_non_root = pod_sc.and_then(|s| b(s.get("runAsNonRoot")));
    let pod_uid = pod_sc
        .and_then(|s| s.get("runAsUser"))
        .and_then(Value::as_i64);
    let pod_seccomp = pod_sc
        .and_then(|s| s.get("seccompProfile"))
        .and_then(|p| p.get("type"))
        .and_then(Value::as_str);
    let containers = ["initContainers", "containers"].iter().flat_map(|k| {
        spec.get(*k)
            .and_then(Value::as_sequence)
            .into_iter()
            .flatten()
            .map(move |c| (*k, c))
    });
    for (list, c) in containers {
        let cname = c.get("name").and_then(Value::as_str).unwrap_or("?");
        let who = format!("{obj} container `{cname}`");
        // Lines of this container start at its `name:` within its list.
        let cfrom = item_line(text, find_line(text, from, to, &[list]) - 1, to, cname);
        let cat = |keys: &[&str]| find_line(text, cfrom, to, keys);
        let sc = c.get("securityContext");
        let scb = |k: &str| sc.and_then(|s| b(s.get(k)));
        if scb("privileged") == Some(true) {
            out.push(finding(
                "TUGC001",
                None,
                rel,
                cat(&["securityContext", "privileged"]),
                format!("{who} is privileged"),
            ));
        }
        let added: Vec<String> = sc
            .and_then(|s| s.get("capabilities"))
            .and_then(|c| c.get("add"))
            .and_then(Value::as_sequence)
            .map(|l| {
                l.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        if !added.is_empty() {
            let sev = if added.iter().any(|c| dangerous_cap(c)) {
                Severity::High
            } else {
                Severity::Medium
            };
            out.push(finding(
                "TUGC005",
                Some(sev),
                rel,
                cat(&["capabilities", "add"]),
                format!("{who} adds {}", added.join(", ")),
            ));
        }
        let caps = sc.and_then(|s| s.get("capabilities"));
        let dropped: Vec<String> = caps
            .and_then(|c| c.get("drop"))
            .and_then(Value::as_sequence)
            .map(|l| {
                l.iter()
                    .filter_map(Value::as_str)
                    .map(|c| c.trim().to_ascii_uppercase())
                    .collect()
            })
            .unwrap_or_default();
        let drops = |name: &str| {
            dropped
                .iter()
                .any(|d| d == name || d.strip_prefix("CAP_") == Some(name))
        };
        let adds_net_raw = added
            .iter()
            .any(|c| c.trim().to_ascii_uppercase().trim_start_matches("CAP_") == "NET_RAW");
        if !drops("ALL") {
            let detail = if adds_net_raw {
                "adds NET_RAW".to_string()
            } else if drops("NET_RAW") {
                "drops NET_RAW but not ALL".to_string()
            } else {
                "does not drop ALL capabilities (NET_RAW stays)".to_string()
            };
            let sev = if adds_net_raw || !drops("NET_RAW") {
                None
            } else {
                Some(Severity::Low)
            };
            out.push(finding(
                "TUGC016",
                sev,
                rel,
                if caps.is_some() {
                    cat(&["securityContext", "capabilities"])
                } else {
                    cat(&["name"])
                },
                format!("{who} {detail}"),
            ));
        }
        for p in c
            .get("ports")
            .and_then(Value::as_sequence)
            .into_iter()
            .flatten()
        {
            if let Some(hp) = p.get("hostPort").and_then(Value::as_i64) {
                out.push(finding(
                    "TUGC015",
                    None,
                    rel,
                    cat(&["ports", "hostPort"]),
                    format!("{who} binds host port {hp}"),
                ));
            }
        }
        let uid = sc
            .and_then(|s| s.get("runAsUser"))
            .and_then(Value::as_i64)
            .or(pod_uid);
        let non_root = scb("runAsNonRoot").or(pod_non_root);
        if uid == Some(0) {
            out.push(finding(
                "TUGC006",
                None,
                rel,
                cat(&["runAsUser"]),
                format!("{who} sets runAsUser: 0"),
            ));
        } else if non_root != Some(true) && uid.is_none() {
            let detail = if non_root == Some(false) {
                "sets runAsNonRoot: false"
            } else {
                "does not set runAsNonRoot: true"
            };
            out.push(finding(
                "TUGC006",
                None,
                rel,
                cat(&["name"]),
                format!("{who} {detail}"),
            ));
        }
        if scb("readOnlyRootFilesystem") != Some(true) {
            out.push(finding(
                "TUGC007",
                None,
                rel,
                cat(&["name"]),
                format!("{who} does not set readOnlyRootFilesystem: true"),
            ));
        }
        if scb("allowPrivilegeEscalation") != Some(false) {
            let detail = if scb("allowPrivilegeEscalation") == Some(true) {
                "sets allowPrivilegeEscalation: true"
            } else {
                "does not set allowPrivilegeEscalation: false"
            };
            out.push(finding(
                "TUGC012",
                None,
                rel,
                cat(&["name"]),
                format!("{who} {detail}"),
            ));
        }
        let seccomp = sc
            .and_then(|s| s.get("seccompProfile"))
            .and_then(|p| p.get("type"))
            .and_then(Value::as_str)
            .or(pod_seccomp);
        match seccomp {
            None => out.push(finding(
                "TUGC013",
                None,
                rel,
                cat(&["name"]),
                format!("{who} has no seccomp profile"),
            )),
            Some(t) if t.eq_ignore_ascii_case("Unconfined") => out.push(finding(
                "TUGC013",
                Some(Severity::High),
                rel,
                cat(&["seccompProfile", "type"]),
                format!("{who} sets seccompProfile Unconfined"),
            )),
            _ => {}
        }
        let limits = c.get("resources").and_then(|r| r.get("limits"));
        if limits.and_then(|l| l.get("memory")).is_none()
            || limits.and_then(|l| l.get("cpu")).is_none()
        {
            out.push(finding(
                "TUGC008",
                None,
                rel,
                cat(&["name"]),
                format!("{who} has no CPU and memory limits"),
            ));
        }
        if let Some(img) = c.get("image").and_then(Value::as_str) {
            if let Some(why) = unpinned_image(img) {
                out.push(finding(
                    "TUGC009",
                    None,
                    rel,
                    cat(&["image"]),
                    format!("{who} uses {why} image `{img}`"),
                ));
            } else if lacks_digest(img) {
                out.push(finding(
                    "TUGC019",
                    None,
                    rel,
                    cat(&["image"]),
                    format!("{who} uses `{img}` without a digest"),
                ));
            }
        }
        if list == "containers"
            && (c.get("readinessProbe").is_none() || c.get("livenessProbe").is_none())
        {
            let missing: Vec<&str> = ["readinessProbe", "livenessProbe"]
                .into_iter()
                .filter(|p| c.get(*p).is_none())
                .collect();
            out.push(finding(
                "TUGC010",
                None,
                rel,
                cat(&["name"]),
                format!("{who} has no {}", missing.join(" or ")),
            ));
        }
        for e in c
            .get("env")
            .and_then(Value::as_sequence)
            .into_iter()
            .flatten()
        {
            let (Some(n), Some(v)) = (
                e.get("name").and_then(Value::as_str),
                e.get("value").and_then(Value::as_str),
            ) else {
                continue;
            };
            if is_secret_name(n) && is_literal_secret(v) {
                let line = text
                    .lines()
                    .enumerate()
                    .skip(cfrom)
                    .take(to.saturating_sub(cfrom))
                    .find(|(_, l)| l.contains(n))
                    .map_or(cfrom + 1, |(i, _)| i + 1);
                out.push(finding(
                    "TUGC011",
                    None,
                    rel,
                    line,
                    format!("{who} sets {n} to a literal value"),
                ));
            }
        }
    }
}
