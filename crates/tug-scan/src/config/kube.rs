//! Kubernetes manifests (multi-document YAML with apiVersion and kind):
//! pod-spec checks in the spirit of kube-score.

use super::{
    finding, is_literal_secret, is_secret_name, lacks_digest,
    tugyaml::dangerous_cap,
    unpinned_image,
    yamlpos::{find_line, key_of},
};
use crate::finding::{FileError, Finding, Severity};
use serde::Deserialize;
use serde_yaml_ng::Value;
use std::path::Path;

/// Line ranges (0-based, end exclusive) of the documents the parser yields:
/// content before the first `---` is a document only if it is not all
/// comments, while every `---` starts one, even an empty (null) one.
fn doc_ranges(text: &str) -> Vec<(usize, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    let is_marker = |l: &str| {
        l.strip_prefix("---")
            .is_some_and(|r| r.is_empty() || r.starts_with([' ', '\t']))
    };
    let starts: Vec<usize> = (0..lines.len()).filter(|&i| is_marker(lines[i])).collect();
    let head_end = starts.first().copied().unwrap_or(lines.len());
    let head_has_content = lines[..head_end].iter().any(|l| {
        let t = l.trim();
        !t.is_empty() && !t.starts_with('#') && !t.starts_with('%')
    });
    let mut ranges = Vec::new();
    if head_has_content || starts.is_empty() {
        ranges.push((0, head_end));
    }
    for (k, &s) in starts.iter().enumerate() {
        ranges.push((s + 1, starts.get(k + 1).copied().unwrap_or(lines.len())));
    }
    ranges
}

/// Line ranges of the items of the block sequence under the `key:` on
/// 0-based line `key_line`: one per `- ` at the first item's indentation,
/// which may equal the key's (kubectl and kustomize write it so). Empty for
/// a flow sequence (`key: [...]`).
fn seq_items(text: &str, key_line: usize, to: usize) -> Vec<(usize, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    let to = to.min(lines.len());
    let Some(key) = lines.get(key_line) else {
        return Vec::new();
    };
    let key_indent = key.len() - key.trim_start().len();
    let mut dash: Option<usize> = None;
    let mut starts = Vec::new();
    let mut end = to;
    for (i, l) in lines.iter().enumerate().take(to).skip(key_line + 1) {
        let t = l.trim_start();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let ind = l.len() - t.len();
        let is_item = t.starts_with("- ") || t == "-";
        match dash {
            None if is_item && ind >= key_indent => {
                dash = Some(ind);
                starts.push(i);
            }
            None => break,
            Some(d) if ind == d && is_item => starts.push(i),
            Some(d) if ind <= d => {
                end = i;
                break;
            }
            Some(_) => {}
        }
    }
    starts
        .iter()
        .enumerate()
        .map(|(k, &s)| (s, starts.get(k + 1).copied().unwrap_or(end)))
        .collect()
}

/// 1-based line of `key` among the top-level keys of the list item on lines
/// `[from, to)` (not a nested `env[].name`), else the item's first line.
fn own_key_line(text: &str, from: usize, to: usize, key: &str) -> usize {
    let mut lines = text
        .lines()
        .enumerate()
        .skip(from)
        .take(to.saturating_sub(from));
    let Some((_, first)) = lines.next() else {
        return from + 1;
    };
    let body = first.trim_start().trim_start_matches("- ");
    let indent = first.len() - body.len();
    let is_key = |b: &str| b.strip_prefix(key).is_some_and(|r| r.starts_with(':'));
    if is_key(body) {
        return from + 1;
    }
    lines
        .find(|(_, l)| {
            let b = l.trim_start();
            l.len() - b.len() == indent && is_key(b)
        })
        .map_or(from + 1, |(i, _)| i + 1)
}

/// Item ranges of the sequence under `key` (the first such key in the range).
fn list_items(text: &str, from: usize, to: usize, key: &str) -> Vec<(usize, usize)> {
    let line = find_line(text, from, to, &[key]) - 1;
    let is_key = text.lines().nth(line).is_some_and(|l| {
        let t = l.trim_start().trim_start_matches("- ");
        t.strip_prefix(key).is_some_and(|r| r.starts_with(':'))
    });
    if is_key {
        seq_items(text, line, to)
    } else {
        Vec::new()
    }
}

fn pod_spec<'a>(kind: &str, doc: &'a Value) -> Option<&'a Value> {
    match kind {
        "Pod" => doc.get("spec"),
        "PodTemplate" => doc.get("template")?.get("spec"),
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
        let mut doc = match Value::deserialize(de) {
            Ok(v) => v,
            Err(e) => {
                errors.push(super::yaml_error_in(text, path, &e, "Kubernetes manifest"));
                // A syntax error ends the stream; findings so far stand.
                break;
            }
        };
        // `<<: *defaults` merge keys: check what the API server would see.
        if let Err(e) = doc.apply_merge() {
            errors.push(super::yaml_error_in(text, path, &e, "Kubernetes manifest"));
            continue;
        }
        let (from, to) = ranges.get(i).copied().unwrap_or((0, usize::MAX));
        let kind = doc.get("kind").and_then(Value::as_str).unwrap_or("");
        // `kubectl get -o yaml` output and `kind: List` files: check each item.
        if kind == "List" || (kind.ends_with("List") && doc.get("items").is_some()) {
            let items = doc.get("items").and_then(Value::as_sequence);
            let spans = list_items(text, from, to, "items");
            for (k, item) in items.into_iter().flatten().enumerate() {
                let (f, t) = spans.get(k).copied().unwrap_or((from, to));
                check_object(text, rel, f, t, item, &mut out);
            }
            continue;
        }
        check_object(text, rel, from, to, &doc, &mut out);
    }
    (out, errors)
}

fn check_object(
    text: &str,
    rel: &str,
    from: usize,
    to: usize,
    doc: &Value,
    out: &mut Vec<Finding>,
) {
    let Some(kind) = doc.get("kind").and_then(Value::as_str) else {
        return;
    };
    // Kustomize's own files (kustomization.yaml, components) are build
    // input, never applied to a cluster.
    if doc
        .get("apiVersion")
        .and_then(Value::as_str)
        .is_some_and(|v| v.starts_with("kustomize.config.k8s.io/"))
    {
        return;
    }
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
                format!("{obj} sets no namespace, so it lands in `default` unless applied with -n"),
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
    if let Some(spec) = pod_spec(kind, doc) {
        check_pod(text, rel, from, to, &obj, spec, out);
    }
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
        let spans = list_items(text, from, to, "volumes");
        for (k, v) in vols.iter().enumerate() {
            if let Some(hp) = v
                .get("hostPath")
                .and_then(|h| h.get("path"))
                .and_then(Value::as_str)
            {
                let vname = v.get("name").and_then(Value::as_str).unwrap_or("?");
                let (vfrom, vto) = spans
                    .get(k)
                    .copied()
                    .unwrap_or_else(|| (item_line(text, list_from, to, vname), to));
                let line = find_line(text, vfrom, vto, &["hostPath", "path"]);
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
    // A pod-level setting's line: `keys` under the pod spec's own
    // `securityContext`, found at the indentation of its `containers` key (a
    // container's securityContext may come first in the text).
    let pod_line = |keys: &[&str]| {
        let lines: Vec<&str> = text.lines().collect();
        let spec_indent = key_of(lines.get(at(&["containers"]) - 1).unwrap_or(&"")).map(|(i, _)| i);
        let start = (from..to.min(lines.len())).find(|&i| {
            key_of(lines[i])
                .is_some_and(|(ind, k)| Some(ind) == spec_indent && k == "securityContext")
        });
        match start {
            Some(s) => find_line(text, s, to, keys),
            None => at(keys),
        }
    };
    let pod_sc = spec.get("securityContext");
    let pod_non_root = pod_sc.and_then(|s| b(s.get("runAsNonRoot")));
    let pod_uid = pod_sc
        .and_then(|s| s.get("runAsUser"))
        .and_then(Value::as_i64);
    let pod_seccomp = pod_sc
        .and_then(|s| s.get("seccompProfile"))
        .and_then(|p| p.get("type"))
        .and_then(Value::as_str);
    // Ephemeral (debug) containers run in the pod with its privileges too.
    let containers = ["initContainers", "containers", "ephemeralContainers"]
        .iter()
        .flat_map(|k| {
            let spans = list_items(text, from, to, k);
            spec.get(*k)
                .and_then(Value::as_sequence)
                .into_iter()
                .flatten()
                .enumerate()
                .map(move |(i, c)| (*k, c, spans.get(i).copied()))
        });
    for (list, c, span) in containers {
        let cname = c.get("name").and_then(Value::as_str).unwrap_or("?");
        let who = format!("{obj} container `{cname}`");
        // Lines of this container: its item in the list, else (flow style)
        // from its `name:` on.
        let (cfrom, cto) = span.unwrap_or_else(|| {
            let list_line = find_line(text, from, to, &[list]) - 1;
            (item_line(text, list_line, to, cname), to)
        });
        let cat = |keys: &[&str]| find_line(text, cfrom, cto, keys);
        let name_line = own_key_line(text, cfrom, cto, "name");
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
                    name_line
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
                if sc.and_then(|s| s.get("runAsUser")).is_some() {
                    cat(&["runAsUser"])
                } else {
                    pod_line(&["runAsUser"])
                },
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
                name_line,
                format!("{who} {detail}"),
            ));
        }
        if scb("readOnlyRootFilesystem") != Some(true) {
            out.push(finding(
                "TUGC007",
                None,
                rel,
                name_line,
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
                name_line,
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
                name_line,
                format!("{who} has no seccomp profile"),
            )),
            Some(t) if t.eq_ignore_ascii_case("Unconfined") => out.push(finding(
                "TUGC013",
                Some(Severity::High),
                rel,
                if sc.and_then(|s| s.get("seccompProfile")).is_some() {
                    cat(&["seccompProfile", "type"])
                } else {
                    pod_line(&["seccompProfile", "type"])
                },
                format!("{who} sets seccompProfile Unconfined"),
            )),
            _ => {}
        }
        let limits = c.get("resources").and_then(|r| r.get("limits"));
        // The API rejects resources on ephemeral containers.
        if list != "ephemeralContainers"
            && (limits.and_then(|l| l.get("memory")).is_none()
                || limits.and_then(|l| l.get("cpu")).is_none())
        {
            out.push(finding(
                "TUGC008",
                None,
                rel,
                name_line,
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
        // A Job runs to completion: no traffic to gate, nothing to restart.
        let runs_to_completion = obj.starts_with("Job/") || obj.starts_with("CronJob/");
        if list == "containers"
            && !runs_to_completion
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
                name_line,
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
                    .take(cto.saturating_sub(cfrom))
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
