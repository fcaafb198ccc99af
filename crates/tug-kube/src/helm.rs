//! The stack as a Helm chart: the objects of [`crate::render`] as templates,
//! with images, replicas, resources and env lifted into `values.yaml`.
//!
//! Templates are the rendered YAML with placeholders swapped for Helm
//! expressions, so the chart and `tug render k8s` never drift apart. The env
//! ConfigMap and Secret get fixed names in the chart (a checksum annotation
//! rolls the pods when values change), and the PodDisruptionBudget is
//! rendered only while the replicas value is above one. Routes (Ingress or
//! HTTPRoute) are rendered while `ingress.enabled`; an Ingress takes its class
//! from `ingress.className` and each rule's host from the service's `hosts`
//! (in rule order; `""` is any host). Service ports are values too (`ports`,
//! by port name), and routes follow the `main` one. The files of stack
//! secrets and configs are copied into the chart (`files/secrets/`, written
//! 0600, and `files/configs/`) and read with `.Files.Get`, so that their text
//! is never taken for a template; a checksum of them rolls the pods that
//! mount them when a file is replaced.

use crate::object::Object;
use crate::render::{render, RenderOptions};
use crate::RenderErrors;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::PathBuf;
use tug_spec::Stack;

/// A placeholder in serialized YAML, swapped for a Helm expression afterwards.
fn ph(what: &str, service: &str) -> Value {
    Value::String(format!("@@{what}:{service}@@"))
}

/// One file of a chart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChartFile {
    /// Relative to the chart's directory.
    pub path: PathBuf,
    pub content: Vec<u8>,
    /// Holds secret values: written readable by its owner only (0600).
    pub secret: bool,
}

/// The chart's files, relative to its directory, in a stable order.
pub fn chart(
    stack: &Stack,
    source: &str,
    opts: &RenderOptions,
) -> Result<Vec<ChartFile>, RenderErrors> {
    let objects = render(stack, source, opts)?;
    let mut data_files: Vec<ChartFile> = Vec::new();
    let ns = opts.namespace(stack).to_string();
    let mut values = serde_json::Map::new();
    let mut templates: BTreeMap<String, String> = BTreeMap::new();
    for name in stack.services.keys() {
        let dep = objects.iter().find_map(|o| match o {
            Object::Deployment(d) if d.metadata.name.as_deref() == Some(name) => Some(d),
            _ => None,
        });
        let Some(dep) = dep else { continue };
        let pod = dep.spec.template.spec.as_ref();
        let c = pod.and_then(|p| p.containers.first());
        let (mut env, mut secret_env) = (BTreeMap::new(), BTreeMap::new());
        for o in &objects {
            match o {
                Object::ConfigMap(ConfigMap {
                    metadata,
                    data: Some(d),
                    ..
                }) if of_service(metadata, name)
                    && metadata
                        .name
                        .as_deref()
                        .is_some_and(|n| n.starts_with(&format!("{name}-env-"))) =>
                {
                    env = d.clone()
                }
                Object::Secret(Secret {
                    metadata,
                    data: Some(d),
                    ..
                }) if of_service(metadata, name)
                    && metadata
                        .name
                        .as_deref()
                        .is_some_and(|n| n.starts_with(&format!("{name}-secret-"))) =>
                {
                    secret_env = d
                        .iter()
                        .map(|(k, v)| (k.clone(), String::from_utf8_lossy(&v.0).into_owned()))
                        .collect()
                }
                _ => {}
            }
        }
        let mut entry = json!({
            "image": c.and_then(|c| c.image.clone()),
            "replicas": dep.spec.replicas,
            "resources": c.and_then(|c| c.resources.clone()).map(|r| serde_json::to_value(r).unwrap_or_default()).unwrap_or(json!({})),
            "env": env,
            "secretEnv": secret_env,
        });
        let hosts: Vec<String> = objects
            .iter()
            .filter_map(|o| match o {
                Object::Ingress(i) if i.metadata.name.as_deref() == Some(name) => i.spec.as_ref(),
                _ => None,
            })
            .flat_map(|spec| spec.rules.iter().flatten())
            .map(|r| r.host.clone().unwrap_or_default())
            .collect();
        if !hosts.is_empty() {
            entry["hosts"] = json!(hosts);
        }
        let ports: serde_json::Map<String, Value> = objects
            .iter()
            .filter_map(|o| match o {
                Object::Service(sv) if sv.metadata.name.as_deref() == Some(name) => {
                    sv.spec.as_ref()?.ports.as_ref()
                }
                _ => None,
            })
            .flatten()
            .filter_map(|p| Some((p.name.clone()?, json!(p.port))))
            .collect();
        if !ports.is_empty() {
            entry["ports"] = Value::Object(ports);
        }
        // An HPA sets the count of an autoscaled service.
        if dep.spec.replicas.is_none() {
            if let Some(m) = entry.as_object_mut() {
                m.remove("replicas");
            }
        }
        values.insert(name.clone(), entry);
    }

    // Services whose count an HPA sets: their PDB does not depend on a value.
    let autoscaled: std::collections::BTreeSet<String> = objects
        .iter()
        .filter(|o| matches!(o, Object::HorizontalPodAutoscaler(_)))
        .filter_map(|o| {
            o.metadata()
                .labels
                .as_ref()?
                .get(crate::labels::TUG_SERVICE)
                .cloned()
        })
        .collect();
    for o in &objects {
        let mut v = serde_json::to_value(o).unwrap_or_default();
        v["metadata"]["namespace"] = json!("@@NAMESPACE:-@@");
        let svc = o
            .metadata()
            .labels
            .as_ref()
            .and_then(|l| l.get(crate::labels::TUG_SERVICE))
            .cloned();
        let mut file = format!("{}-{}.yaml", o.kind().to_ascii_lowercase(), o.name());
        let mut wrap_if = None;
        match (o, &svc) {
            // A stack secret or config: its file, copied into the chart.
            (Object::Secret(Secret { data: Some(d), .. }), None) => {
                for (key, bytes) in d {
                    data_files.push(ChartFile {
                        path: PathBuf::from(format!("files/secrets/{key}")),
                        content: bytes.0.clone(),
                        secret: true,
                    });
                    v["data"][key] = json!(format!("@@SFILE:-#{key}@@"));
                }
                drop_immutable(&mut v);
            }
            (
                Object::ConfigMap(ConfigMap {
                    data, binary_data, ..
                }),
                None,
            ) => {
                for (key, text) in data.iter().flatten() {
                    data_files.push(ChartFile {
                        path: PathBuf::from(format!("files/configs/{key}")),
                        content: text.clone().into_bytes(),
                        secret: false,
                    });
                    v["data"][key] = json!(format!("@@CFILE:-#{key}@@"));
                }
                for (key, bytes) in binary_data.iter().flatten() {
                    data_files.push(ChartFile {
                        path: PathBuf::from(format!("files/configs/{key}")),
                        content: bytes.0.clone(),
                        secret: false,
                    });
                    v["binaryData"][key] = json!(format!("@@BFILE:-#{key}@@"));
                }
                drop_immutable(&mut v);
            }
            (Object::Service(sv), Some(s)) => {
                let n = sv
                    .spec
                    .as_ref()
                    .and_then(|p| p.ports.as_ref())
                    .map_or(0, Vec::len);
                for i in 0..n {
                    let pname = v["spec"]["ports"][i]["name"]
                        .as_str()
                        .unwrap_or("main")
                        .to_string();
                    v["spec"]["ports"][i]["port"] = json!(format!("@@PORT:{s}#{pname}@@"));
                }
            }
            (Object::ConfigMap(_), Some(s)) => {
                v["metadata"]["name"] = json!(format!("{s}-env"));
                v["data"] = ph("ENV", s);
                drop_immutable(&mut v);
                file = format!("configmap-{s}-env.yaml");
            }
            (Object::Secret(_), Some(s)) => {
                v["metadata"]["name"] = json!(format!("{s}-secret"));
                if let Some(m) = v.as_object_mut() {
                    m.remove("data");
                }
                v["stringData"] = ph("SECRETENV", s);
                drop_immutable(&mut v);
                file = format!("secret-{s}-secret.yaml");
            }
            (Object::Deployment(d), Some(s)) => {
                if d.spec.replicas.is_some() {
                    v["spec"]["replicas"] = ph("REPLICAS", s);
                }
                let tpl = &mut v["spec"]["template"];
                tpl["metadata"]["annotations"]["checksum/env"] = ph("CHECKSUM", s);
                // Files are mounted by subPath, which a pod never sees change.
                let mounts_files = d
                    .spec
                    .template
                    .spec
                    .iter()
                    .flat_map(|p| p.volumes.iter().flatten())
                    .any(|v| v.secret.is_some() || v.config_map.is_some());
                if mounts_files {
                    tpl["metadata"]["annotations"]["checksum/files"] = ph("FILESUM", s);
                }
                let c = &mut tpl["spec"]["containers"][0];
                c["image"] = ph("IMAGE", s);
                c["resources"] = ph("RESOURCES", s);
                c["envFrom"] = json!([
                    {"configMapRef": {"name": format!("{s}-env")}},
                    {"secretRef": {"name": format!("{s}-secret")}},
                ]);
            }
            (Object::Ingress(i), Some(s)) => {
                wrap_if = Some("{{- if .Values.ingress.enabled }}\n".into());
                v["spec"]["ingressClassName"] = json!("@@INGRESSCLASS:-@@");
                let rules = i.spec.as_ref().and_then(|s| s.rules.as_ref());
                for (n, rule) in rules.into_iter().flatten().enumerate() {
                    v["spec"]["rules"][n]["host"] = json!(format!("@@HOST:{s}#{n}@@"));
                    let paths = rule.http.as_ref().map_or(0, |h| h.paths.len());
                    for k in 0..paths {
                        let port = &mut v["spec"]["rules"][n]["http"]["paths"][k]["backend"]
                            ["service"]["port"];
                        if port.get("number").is_some() {
                            port["number"] = json!(format!("@@PORT:{s}#main@@"));
                        }
                    }
                }
            }
            (Object::HTTPRoute(r), Some(s)) => {
                wrap_if = Some("{{- if .Values.ingress.enabled }}\n".into());
                for (n, rule) in r.spec.rules.iter().enumerate() {
                    for k in 0..rule.backend_refs.len() {
                        v["spec"]["rules"][n]["backendRefs"][k]["port"] =
                            json!(format!("@@PORT:{s}#main@@"));
                    }
                }
            }
            (Object::PodDisruptionBudget(_), Some(s)) if !autoscaled.contains(s) => {
                wrap_if = Some(format!(
                    "{{{{- if gt (int {}.replicas) 1 }}}}\n",
                    values_of(s)
                ));
            }
            _ => {}
        }
        let yaml = crate::object::yaml_of(&v);
        let mut text = String::from("# Rendered by `tug render helm`.\n");
        if let Some(w) = &wrap_if {
            text.push_str(w);
        }
        text.push_str(&substitute(&yaml));
        if wrap_if.is_some() {
            text.push_str("{{- end }}\n");
        }
        templates.insert(file, text);
    }
    // A service of one replica gets its PodDisruptionBudget when the
    // replicas value goes above one.
    for name in values.keys() {
        let f = format!("poddisruptionbudget-{name}.yaml");
        if autoscaled.contains(name) || templates.contains_key(&f) {
            continue;
        }
        let v = json!({
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": {
                "name": name,
                "namespace": "@@NAMESPACE:-@@",
                "labels": crate::render::service_labels(&stack.name, name),
            },
            "spec": {
                "maxUnavailable": 1,
                "selector": {"matchLabels": {
                    crate::labels::NAME: name,
                    crate::labels::PART_OF: stack.name,
                }},
            },
        });
        templates.insert(
            f,
            format!(
                "# Rendered by `tug render helm`.\n{{{{- if gt (int {}.replicas) 1 }}}}\n{}{{{{- end }}}}\n",
                values_of(name),
                substitute(&crate::object::yaml_of(&v))
            ),
        );
    }
    // Services without env still get the ConfigMap and Secret the pods name.
    for name in stack.services.keys() {
        for (file, kind, suffix, field, key) in [
            ("configmap", "ConfigMap", "env", "data", "ENV"),
            ("secret", "Secret", "secret", "stringData", "SECRETENV"),
        ] {
            let f = format!("{file}-{name}-{suffix}.yaml");
            if templates.contains_key(&f) {
                continue;
            }
            let mut v = json!({
                "apiVersion": "v1",
                "kind": kind,
                "metadata": {
                    "name": format!("{name}-{suffix}"),
                    "namespace": "@@NAMESPACE:-@@",
                    "labels": crate::render::service_labels(&stack.name, name),
                },
            });
            v[field] = ph(key, name);
            if kind == "Secret" {
                v["type"] = json!("Opaque");
            }
            let yaml = crate::object::yaml_of(&v);
            templates.insert(
                f,
                format!("# Rendered by `tug render helm`.\n{}", substitute(&yaml)),
            );
        }
    }

    let chart_yaml = crate::object::yaml_of(&json!({
        "apiVersion": "v2",
        "name": stack.name,
        "description": format!("The {} stack, rendered from tug.yaml by tug.", stack.name),
        "type": "application",
        "version": "0.1.0",
    }));
    let values_yaml = format!(
        "# Values of the {} stack. `helm install {} . --namespace {ns}` installs it as rendered.\n{}",
        stack.name,
        stack.name,
        crate::object::yaml_of(&json!({
            "ingress": {
                "enabled": true,
                "className": opts.ingress_class.clone().unwrap_or_default(),
            },
            "services": values,
        }))
    );
    // values.yaml holds the env values that went to Secrets.
    let values_secret = values
        .values()
        .any(|e| e["secretEnv"].as_object().is_some_and(|m| !m.is_empty()));
    let mut files = vec![
        ChartFile {
            path: PathBuf::from("Chart.yaml"),
            content: chart_yaml.into_bytes(),
            secret: false,
        },
        ChartFile {
            path: PathBuf::from("values.yaml"),
            content: values_yaml.into_bytes(),
            secret: values_secret,
        },
    ];
    data_files.sort_by(|a, b| a.path.cmp(&b.path));
    data_files.dedup_by(|a, b| a.path == b.path);
    files.extend(data_files);
    files.extend(templates.into_iter().map(|(f, t)| ChartFile {
        path: PathBuf::from("templates").join(f),
        content: t.into_bytes(),
        secret: false,
    }));
    Ok(files)
}

/// Whether an object belongs to `service` (and not to the stack as a whole).
fn of_service(
    m: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    service: &str,
) -> bool {
    m.labels
        .as_ref()
        .and_then(|l| l.get(crate::labels::TUG_SERVICE))
        .is_some_and(|s| s == service)
}

fn drop_immutable(v: &mut Value) {
    if let Some(m) = v.as_object_mut() {
        m.remove("immutable");
    }
}

/// `.Values.services.web` or `(index .Values.services "my-api")`.
fn values_of(service: &str) -> String {
    if service.contains('-') {
        format!("(index .Values.services \"{service}\")")
    } else {
        format!(".Values.services.{service}")
    }
}

/// Swaps each placeholder line for its Helm expression.
fn substitute(yaml: &str) -> String {
    let mut out = String::new();
    for line in yaml.lines() {
        let Some(start) = line.find("@@") else {
            out.push_str(line);
            out.push('\n');
            continue;
        };
        let token = line[start + 2..]
            .split("@@")
            .next()
            .unwrap_or_default()
            .to_string();
        let (what, svc) = token.split_once(':').unwrap_or((&token, ""));
        let (svc, index) = svc.split_once('#').unwrap_or((svc, ""));
        let key_part = line[..start].trim_end_matches(['\'', '"']);
        let indent = line.len() - line.trim_start().len();
        let vals = values_of(svc);
        let inline = |expr: String| format!("{key_part}{expr}\n");
        let block = |expr: String| {
            format!(
                "{}\n{:w$}{{{{- {expr} | nindent {w} }}}}\n",
                key_part.trim_end(),
                "",
                w = indent + 2
            )
        };
        out.push_str(&match what {
            "NAMESPACE" => inline("{{ .Release.Namespace }}".into()),
            "REPLICAS" => inline(format!("{{{{ {vals}.replicas }}}}")),
            "IMAGE" => inline(format!("{{{{ {vals}.image | quote }}}}")),
            "CHECKSUM" => inline(format!(
                "{{{{ list {vals}.env {vals}.secretEnv | toJson | sha256sum | quote }}}}"
            )),
            "RESOURCES" => block(format!("toYaml {vals}.resources")),
            "ENV" => block(format!("toYaml {vals}.env")),
            "SECRETENV" => block(format!("toYaml {vals}.secretEnv")),
            // `""` is any host, which Kubernetes says by leaving host out.
            "HOST" => inline(format!(
                "{{{{ with index {vals}.hosts {index} }}}}{{{{ . | quote }}}}{{{{ else }}}}null{{{{ end }}}}"
            )),
            "FILESUM" => inline(
                "{{ (.Files.Glob \"files/**\").AsSecrets | sha256sum | quote }}".into(),
            ),
            "PORT" => inline(format!("{{{{ index {vals}.ports {index:?} }}}}")),
            "SFILE" => inline(format!(
                "{{{{ .Files.Get \"files/secrets/{index}\" | b64enc | quote }}}}"
            )),
            "CFILE" => inline(format!(
                "{{{{ .Files.Get \"files/configs/{index}\" | quote }}}}"
            )),
            "BFILE" => inline(format!(
                "{{{{ .Files.Get \"files/configs/{index}\" | b64enc | quote }}}}"
            )),
            "INGRESSCLASS" => format!(
                "{:w$}{{{{- with .Values.ingress.className }}}}\n{key_part}{{{{ . | quote }}}}\n{:w$}{{{{- end }}}}\n",
                "",
                "",
                w = indent
            ),
            _ => format!("{line}\n"),
        });
    }
    out
}
