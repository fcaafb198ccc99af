//! The operator: its CRD against the official schemas, and one reconcile of a
//! Stack against kube's mocked API (children owned by the Stack, status).

mod common;

use http::{Request, Response};
use kube::client::Body;
use kube::Client;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use tug_kube::operator::{api_resource, children, reconcile, StackResource};

fn stack(spec: Value) -> StackResource {
    let mut s = StackResource::new("shop", &api_resource(), spec);
    s.metadata.namespace = Some("team-a".into());
    s.metadata.uid = Some("uid-stack".into());
    s.metadata.generation = Some(4);
    s
}

#[test]
fn the_crd_validates_against_the_official_schemas() {
    let Some(kv) = common::tool("kubernetes-validate") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("crd.yaml");
    std::fs::write(
        &f,
        tug_kube::yaml_document(&serde_json::to_value(tug_kube::operator::crd()).unwrap()),
    )
    .unwrap();
    for version in ["1.36.0", "1.37.0"] {
        let out = std::process::Command::new(&kv)
            .args(["--strict", "--quiet", "-k", version])
            .arg(&f)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn children_are_the_render_of_the_spec_owned_by_the_stack() {
    let s = stack(
        json!({"services": {"api": {"image": "registry.example/api:1.0.0", "port": 8080, "replicas": 2}}}),
    );
    let (parsed, objects) = children(&s).unwrap();
    assert_eq!(
        parsed.name, "shop",
        "the Stack's name stands in for a missing `name`"
    );
    assert!(objects.iter().any(|o| o.id() == "deployment/api"));
    for o in &objects {
        assert_eq!(o.metadata().namespace.as_deref(), Some("team-a"));
        let owner = &o.metadata().owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.uid.as_str(), owner.controller),
            ("Stack", "uid-stack", Some(true))
        );
    }
    let bad = stack(json!({"services": {"api": {"image": "x:1", "replicas": "three"}}}));
    let e = children(&bad).unwrap_err();
    assert!(e.contains("stacks/team-a/shop:"), "{e}");
}

#[tokio::test]
async fn a_reconcile_applies_the_children_and_writes_the_status_conditions() {
    let (svc, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let log: Arc<Mutex<Vec<(String, String, Value)>>> = Arc::default();
    let l = log.clone();
    tokio::spawn(async move {
        while let Some((req, send)) = handle.next_request().await {
            let (m, p) = (req.method().to_string(), req.uri().to_string());
            let body: Value =
                serde_json::from_slice(&req.into_body().collect_bytes().await.unwrap())
                    .unwrap_or(Value::Null);
            let answer = match (m.as_str(), p.as_str()) {
                ("PATCH", p) if p.contains("/status") => json!({
                    "apiVersion": "tug.dev/v1alpha1", "kind": "Stack",
                    "metadata": {"name": "shop", "namespace": "team-a"},
                    "spec": {}, "status": body["status"],
                }).to_string(),
                ("PATCH", _) => body.to_string(),
                ("GET", p) if p.contains("/deployments?") => json!({"apiVersion": "apps/v1", "kind": "DeploymentList", "metadata": {}, "items": [{
                    "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "api"},
                    "spec": {"replicas": 2, "selector": {}, "template": {}},
                    "status": {"replicas": 2, "updatedReplicas": 2, "availableReplicas": 1}}]}).to_string(),
                _ => json!({"apiVersion": "v1", "kind": "List", "metadata": {}, "items": []}).to_string(),
            };
            l.lock().unwrap().push((m, p, body));
            send.send_response(
                Response::builder()
                    .status(200)
                    .body(Body::from(answer.into_bytes()))
                    .unwrap(),
            );
        }
    });
    let client = Client::new(svc, "default");
    let s = stack(
        json!({"services": {"api": {"image": "registry.example/api:1.0.0", "port": 8080, "replicas": 2}}}),
    );
    let status = reconcile(&client, &s).await.unwrap();
    assert_eq!(status.observed_generation, Some(4));
    let ready = &status.conditions[0];
    assert_eq!(
        (ready.type_.as_str(), ready.status.as_str()),
        ("Ready", "False")
    );
    assert_eq!(ready.message, "waiting for api 1/2");
    let log = log.lock().unwrap();
    let applies: Vec<_> = log
        .iter()
        .filter(|(m, p, _)| m == "PATCH" && p.contains("fieldManager=tug"))
        .collect();
    assert!(applies
        .iter()
        .all(|(_, _, b)| b["metadata"]["ownerReferences"][0]["uid"] == "uid-stack"));
    let (_, path, body) = log.last().unwrap();
    assert!(
        path.starts_with("/apis/tug.dev/v1alpha1/namespaces/team-a/stacks/shop/status"),
        "{path}"
    );
    assert_eq!(body["status"]["conditions"][1]["type"], "Progressing");
    assert_eq!(body["status"]["conditions"][1]["status"], "True");
}
