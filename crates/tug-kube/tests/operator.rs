//! The operator: its CRD against the official schemas, and one reconcile of a
//! Stack against kube's mocked API (children owned by the Stack, status).

mod common;

use common::{mock_api, Log, Seen};
use kube::Client;
use serde_json::{json, Value};
use std::sync::Arc;
use tug_kube::operator::{api_resource, children, handle, reconcile, StackResource, FINALIZER};

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
fn deploy_operator_yaml_validates_against_the_official_schemas() {
    let Some(kv) = common::tool("kubernetes-validate") else {
        return;
    };
    let f = common::repo().join("deploy/operator.yaml");
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

#[test]
fn a_stack_resource_never_reads_the_operators_files() {
    // The operator's own token, as a secret, a config or an env file.
    let token = "/var/run/secrets/kubernetes.io/serviceaccount/token";
    for spec in [
        json!({"secrets": {"t": {"file": token}}, "services": {"api": {"image": "x:1", "secrets": ["t"]}}}),
        json!({"configs": {"t": {"file": token}}, "services": {"api": {"image": "x:1"}}}),
        json!({"services": {"api": {"image": "x:1", "env_file": token}}}),
    ] {
        let e = children(&stack(spec)).unwrap_err();
        assert!(e.contains("which a Stack resource cannot carry"), "{e}");
    }
}

#[tokio::test]
async fn a_reconcile_applies_the_children_and_writes_the_status_conditions() {
    let (client, log) = mock_api("default", |s, _| {
        let (m, body) = (s.method.as_str(), &s.body);
        let answer = match (m, s.path.as_str()) {
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
        (200, answer)
    });
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
        .filter(|s| s.method == "PATCH" && s.path.contains("fieldManager=tug"))
        .collect();
    assert!(applies
        .iter()
        .all(|s| s.body["metadata"]["ownerReferences"][0]["uid"] == "uid-stack"));
    let Seen { path, body, .. } = log.last().unwrap();
    assert!(
        path.starts_with("/apis/tug.dev/v1alpha1/namespaces/team-a/stacks/shop/status"),
        "{path}"
    );
    assert_eq!(body["status"]["conditions"][1]["type"], "Progressing");
    assert_eq!(body["status"]["conditions"][1]["status"], "True");
}

/// The mocked API for the finalizer tests: the Stack's own patches answer
/// the Stack as patched, list calls return one Deployment of the stack.
fn finalizer_api(s: &StackResource) -> (kube::Client, Log) {
    let stack_json = serde_json::to_value(s).unwrap();
    mock_api("default", move |seen, _| {
        let answer = match (seen.method.as_str(), seen.path.as_str()) {
            ("PATCH", p) if p.contains("/stacks/shop/status") => {
                let mut v = stack_json.clone();
                v["status"] = seen.body["status"].clone();
                v
            }
            ("PATCH", p) if p.contains("/stacks/shop") => {
                let mut v = stack_json.clone();
                let mut fins: Vec<Value> = Vec::new();
                for op in seen.body.as_array().into_iter().flatten() {
                    if op["op"] == "add" || op["op"] == "replace" {
                        match &op["value"] {
                            Value::Array(a) => fins = a.clone(),
                            Value::String(f) => fins.push(Value::String(f.clone())),
                            _ => {}
                        }
                    }
                }
                v["metadata"]["finalizers"] = Value::Array(fins);
                v
            }
            ("PATCH", _) | ("POST", _) => seen.body.clone(),
            ("DELETE", _) => json!({"apiVersion": "v1", "kind": "Status", "status": "Success"}),
            ("GET", p) if p.contains("/deployments?") => {
                json!({"apiVersion": "apps/v1", "kind": "DeploymentList", "metadata": {}, "items": [{
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "api", "namespace": "team-a", "labels": {"app.kubernetes.io/instance": "shop"}},
                "spec": {"replicas": 2, "selector": {}, "template": {}},
                "status": {"replicas": 2, "updatedReplicas": 2, "availableReplicas": 2}}]})
            }
            _ => json!({"apiVersion": "v1", "kind": "List", "metadata": {}, "items": []}),
        };
        (200, answer.to_string())
    })
}

fn api_stack() -> StackResource {
    stack(
        json!({"services": {"api": {"image": "registry.example/api:1.0.0", "port": 8080, "replicas": 2}}}),
    )
}

#[tokio::test]
async fn a_new_stack_gets_the_finalizer_before_anything_is_applied() {
    let s = api_stack();
    let (client, log) = finalizer_api(&s);
    handle(&client, Arc::new(s)).await.unwrap();
    let log = log.lock().unwrap();
    let first = &log[0];
    assert_eq!(first.method, "PATCH", "{}", first.path);
    assert!(
        first
            .path
            .starts_with("/apis/tug.dev/v1alpha1/namespaces/team-a/stacks/shop"),
        "{}",
        first.path
    );
    assert!(first.body.to_string().contains(FINALIZER), "{}", first.body);
    assert!(
        !log.iter().any(|s| s.path.contains("fieldManager=tug")),
        "nothing applied before the finalizer is on"
    );
}

#[tokio::test]
async fn a_reconcile_with_the_finalizer_applies_and_records_an_event() {
    let mut s = api_stack();
    s.metadata.finalizers = Some(vec![FINALIZER.into()]);
    let (client, log) = finalizer_api(&s);
    handle(&client, Arc::new(s)).await.unwrap();
    let log = log.lock().unwrap();
    assert!(log.iter().any(|s| s.path.contains("fieldManager=tug")));
    let event = log
        .iter()
        .find(|s| s.method == "POST" && s.path.contains("/events"))
        .expect("a Kubernetes Event");
    assert!(
        event
            .path
            .starts_with("/apis/events.k8s.io/v1/namespaces/team-a/events"),
        "{}",
        event.path
    );
    assert_eq!(event.body["reason"], "Ready", "{}", event.body);
    assert_eq!(event.body["regarding"]["name"], "shop");
    assert_eq!(event.body["regarding"]["kind"], "Stack");
}

#[tokio::test]
async fn deleting_a_stack_deletes_its_children_then_lets_it_go() {
    let mut s = api_stack();
    s.metadata.finalizers = Some(vec![FINALIZER.into()]);
    s.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        "2026-12-01T06:00:00Z".parse().unwrap(),
    ));
    let (client, log) = finalizer_api(&s);
    handle(&client, Arc::new(s)).await.unwrap();
    let log = log.lock().unwrap();
    let delete = log
        .iter()
        .position(|s| s.method == "DELETE" && s.path.contains("/deployments/api"))
        .expect("the stack's Deployment is deleted");
    let release = log
        .iter()
        .rposition(|s| s.method == "PATCH" && s.path.contains("/stacks/shop"))
        .expect("the finalizer is removed");
    assert!(delete < release, "children first");
    assert!(
        !log[release].body.to_string().contains(FINALIZER)
            || log[release].body.to_string().contains("remove"),
        "{}",
        log[release].body
    );
    assert!(!log.iter().any(|s| s.path.contains("fieldManager=tug")));
}

mod leader {
    use super::*;
    use k8s_openapi::jiff::Timestamp;
    use tug_kube::leader::LeaseLock;

    /// Answers with `respond` (method, path, body) in namespace `ops`.
    fn mock(
        mut respond: impl FnMut(&str, &str, &Value) -> (u16, Value) + Send + 'static,
    ) -> (Client, Log) {
        mock_api("ops", move |s, _| {
            let (code, answer) = respond(&s.method, &s.path, &s.body);
            (code, answer.to_string())
        })
    }

    fn lease(holder: &str, renewed: &str) -> Value {
        json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
               "metadata": {"name": "tug-operator", "namespace": "ops", "resourceVersion": "41"},
               "spec": {"holderIdentity": holder, "leaseDurationSeconds": 15, "renewTime": renewed, "leaseTransitions": 2}})
    }

    fn not_found() -> Value {
        json!({"apiVersion": "v1", "kind": "Status", "status": "Failure", "code": 404, "reason": "NotFound", "message": "not found"})
    }

    const NOW: &str = "2026-12-01T06:00:00Z";
    const PATH: &str = "/apis/coordination.k8s.io/v1/namespaces/ops/leases";

    fn lock(client: Client) -> LeaseLock {
        LeaseLock::new(
            client,
            "ops",
            "tug-operator",
            "me",
            std::time::Duration::from_secs(15),
        )
    }

    #[tokio::test]
    async fn with_no_lease_the_first_candidate_creates_it() {
        let (client, log) = mock(|m, _, b| {
            if m == "GET" {
                (404, not_found())
            } else {
                (201, b.clone())
            }
        });
        assert!(lock(client)
            .try_acquire_or_renew(NOW.parse::<Timestamp>().unwrap())
            .await
            .unwrap());
        let log = log.lock().unwrap();
        assert_eq!(log[1].method, "POST");
        assert!(log[1].path.starts_with(PATH));
        assert_eq!(log[1].body["spec"]["holderIdentity"], "me");
        assert_eq!(log[1].body["spec"]["leaseDurationSeconds"], 15);
    }

    #[tokio::test]
    async fn a_lease_held_by_another_holder_is_left_alone_until_it_expires() {
        // Renewed 10 s ago with a 15 s duration: still theirs; nothing is written.
        let (client, log) = mock(|_, _, _| (200, lease("other", "2026-12-01T05:59:50Z")));
        assert!(!lock(client)
            .try_acquire_or_renew(NOW.parse().unwrap())
            .await
            .unwrap());
        assert_eq!(log.lock().unwrap().len(), 1);

        // Renewed 20 s ago: expired; taken over with the version read, transitions + 1.
        let (client, log) = mock(|m, _, b| {
            if m == "GET" {
                (200, lease("other", "2026-12-01T05:59:40Z"))
            } else {
                (200, b.clone())
            }
        });
        assert!(lock(client)
            .try_acquire_or_renew(NOW.parse().unwrap())
            .await
            .unwrap());
        let log = log.lock().unwrap();
        let Seen {
            method: m,
            path: p,
            body: b,
        } = &log[1];
        assert_eq!(
            (m.as_str(), p.split('?').next().unwrap()),
            ("PUT", format!("{PATH}/tug-operator").as_str())
        );
        assert_eq!(b["metadata"]["resourceVersion"], "41");
        assert_eq!(b["spec"]["holderIdentity"], "me");
        assert_eq!(b["spec"]["leaseTransitions"], 3);
    }

    #[tokio::test]
    async fn losing_a_race_is_not_being_leader() {
        let conflict = json!({"apiVersion": "v1", "kind": "Status", "status": "Failure", "code": 409, "reason": "Conflict", "message": "the object has been modified"});
        let c = conflict.clone();
        let (client, _) = mock(move |m, _, _| {
            if m == "GET" {
                (404, not_found())
            } else {
                (409, c.clone())
            }
        });
        assert!(!lock(client)
            .try_acquire_or_renew(NOW.parse().unwrap())
            .await
            .unwrap());
        let (client, log) = mock(move |m, _, _| {
            if m == "GET" {
                (200, lease("me", "2026-12-01T05:59:58Z"))
            } else {
                (409, conflict.clone())
            }
        });
        assert!(!lock(client)
            .try_acquire_or_renew(NOW.parse().unwrap())
            .await
            .unwrap());
        assert_eq!(
            log.lock().unwrap()[1].method,
            "PUT",
            "our own lease is renewed with a replace"
        );
    }
}

#[tokio::test]
async fn healthz_and_prometheus_metrics_answer_over_http() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let metrics = Arc::new(tug_kube::operator::Metrics::default());
    metrics.set_leader(true);
    tokio::spawn(tug_kube::operator::serve(listener, metrics));
    async fn get(addr: std::net::SocketAddr, path: &str) -> String {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(
            format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    }
    let h = get(addr, "/healthz").await;
    assert!(h.starts_with("HTTP/1.1 200") && h.ends_with("ok\n"), "{h}");
    let m = get(addr, "/metrics").await;
    assert!(m.contains("text/plain; version=0.0.4"), "{m}");
    assert!(
        m.contains("tug_operator_reconciles_total{result=\"ok\"} 0\n"),
        "{m}"
    );
    assert!(m.contains("tug_operator_leader 1\n"), "{m}");
}
