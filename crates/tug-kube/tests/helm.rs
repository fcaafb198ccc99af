//! `tug render helm` through the real helm (installed by scripts/kube-tools.sh):
//! the chart lints clean, and `helm template` with the default values gives
//! the very objects `tug render k8s` gives, except for what the chart names
//! or annotates differently on purpose (module doc of tug_kube::helm).

mod common;

use common::{example, options, tool};
use k8s_openapi::ByteString;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use tug_kube::Object;

const STACKS: &[&str] = &["hello", "shop", "relay"];

fn write_chart(name: &str, dir: &Path) {
    let (stack, text) = example(name);
    for f in tug_kube::helm::chart(&stack, &text, &options(name)).unwrap() {
        let path = dir.join(&f.path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &f.content).unwrap();
    }
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// An object as compared: the env ConfigMap and Secret under their chart
/// names, no checksum annotations, no `immutable`, Secret values as `data`,
/// and no envFrom (checked on its own).
fn normalized(o: &Object) -> (String, Value) {
    let mut o = o.clone();
    if let Object::Secret(s) = &mut o {
        if let Some(sd) = s.string_data.take() {
            let data = s.data.get_or_insert_with(BTreeMap::new);
            for (k, v) in sd {
                data.insert(k, ByteString(v.into_bytes()));
            }
        }
    }
    let service = o
        .metadata()
        .labels
        .as_ref()
        .and_then(|l| l.get(tug_kube::labels::TUG_SERVICE))
        .cloned();
    let mut v = serde_json::to_value(&o).unwrap();
    if let (Some(s), "ConfigMap" | "Secret") = (&service, o.kind()) {
        for suffix in ["env", "secret"] {
            let prefix = format!("{s}-{suffix}-");
            if o.name().starts_with(&prefix) {
                v["metadata"]["name"] = Value::String(format!("{s}-{suffix}"));
            }
        }
    }
    let m = v.as_object_mut().unwrap();
    m.remove("immutable");
    if let Some(t) = v.pointer_mut("/spec/template") {
        if let Some(a) = t
            .pointer_mut("/metadata/annotations")
            .and_then(Value::as_object_mut)
        {
            a.retain(|k, _| !k.starts_with("checksum/"));
            if a.is_empty() {
                t["metadata"].as_object_mut().unwrap().remove("annotations");
            }
        }
        if let Some(c) = t
            .pointer_mut("/spec/containers/0")
            .and_then(Value::as_object_mut)
        {
            c.remove("envFrom");
        }
    }
    let id = format!(
        "{}/{}",
        o.kind().to_ascii_lowercase(),
        v["metadata"]["name"].as_str().unwrap()
    );
    (id, v)
}

/// A ConfigMap or Secret with no values, which the chart keeps for pods to name.
fn empty_env(v: &Value) -> bool {
    matches!(v["kind"].as_str(), Some("ConfigMap" | "Secret"))
        && v["data"].as_object().is_none_or(|d| d.is_empty())
        && v["stringData"].as_object().is_none_or(|d| d.is_empty())
}

#[test]
fn charts_lint_clean_and_template_to_the_rendered_objects() {
    let Some(helm) = tool("helm") else {
        return;
    };
    for name in STACKS {
        let dir = tempfile::tempdir().unwrap();
        let chart = dir.path().join(name);
        write_chart(name, &chart);
        run(Command::new(&helm).arg("lint").arg("--strict").arg(&chart));
        let ns = format!("{name}-ns");
        let out = run(Command::new(&helm)
            .args(["template", name])
            .arg(&chart)
            .args(["--namespace", &ns]));
        let templated = tug_kube::from_yaml(&out).unwrap();

        let (stack, text) = example(name);
        let mut opts = options(name);
        opts.namespace = Some(ns.clone());
        let rendered = tug_kube::render(&stack, &text, &opts).unwrap();

        // Every envFrom of the chart names an object the chart makes.
        let ids: Vec<String> = templated.iter().map(Object::id).collect();
        for o in &templated {
            if let Object::Deployment(d) = o {
                let c = &d.spec.template.spec.as_ref().unwrap().containers[0];
                for e in c.env_from.iter().flatten() {
                    let id = match (&e.config_map_ref, &e.secret_ref) {
                        (Some(r), _) => format!("configmap/{}", r.name),
                        (_, Some(r)) => format!("secret/{}", r.name),
                        _ => unreachable!(),
                    };
                    assert!(ids.contains(&id), "{name}: {} names {id}", o.id());
                }
            }
        }

        let want: BTreeMap<String, Value> = rendered.iter().map(normalized).collect();
        let mut got: BTreeMap<String, Value> = templated.iter().map(normalized).collect();
        got.retain(|id, v| want.contains_key(id) || !empty_env(v));
        assert_eq!(
            got.keys().collect::<Vec<_>>(),
            want.keys().collect::<Vec<_>>(),
            "{name}: the chart and the render make different objects"
        );
        for (id, w) in &want {
            assert_eq!(
                &got[id], w,
                "{name}: {id} differs between helm template and render"
            );
        }
    }
}

#[test]
fn values_change_what_the_chart_templates() {
    let Some(helm) = tool("helm") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    write_chart("relay", dir.path());
    let out = run(Command::new(&helm)
        .args(["template", "relay"])
        .arg(dir.path())
        .args([
            "--set",
            "services.relay.ports.main=80,services.relay.replicas=2",
        ]));
    let objects = tug_kube::from_yaml(&out).unwrap();
    let svc = objects
        .iter()
        .find_map(|o| match o {
            Object::Service(s) if s.metadata.name.as_deref() == Some("relay") => Some(s),
            _ => None,
        })
        .unwrap();
    let main = svc.spec.as_ref().unwrap().ports.as_ref().unwrap()[0].clone();
    assert_eq!((main.name.as_deref(), main.port), (Some("main"), 80));
    assert!(
        objects
            .iter()
            .any(|o| o.id() == "poddisruptionbudget/relay"),
        "two replicas get a PodDisruptionBudget"
    );
}
