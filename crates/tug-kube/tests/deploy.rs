//! Apply, prune, rollout watch and rollback against kube's mocked API
//! (tower-test): a responder plays the API server, and every test asserts the
//! exact requests tug made (method, path, query, body).

mod common;

use common::{mock_api, Log, Seen};
use kube::Client;
use serde_json::{json, Value};
use std::time::Duration;
use tug_kube::deploy::{DeployError, Deployer, Progress};

/// A client in namespace `default` whose requests go to `respond`.
fn mock<F>(respond: F) -> (Client, Log)
where
    F: FnMut(&Seen, usize) -> (u16, String) + Send + 'static,
{
    mock_api("default", respond)
}

fn status(code: u16, reason: &str) -> String {
    json!({"apiVersion": "v1", "kind": "Status", "status": "Failure", "code": code, "reason": reason, "message": format!("{reason} from the test server")}).to_string()
}

fn list(kind: &str, items: Vec<Value>) -> String {
    json!({"apiVersion": "v1", "kind": format!("{kind}List"), "metadata": {"resourceVersion": "1"}, "items": items}).to_string()
}

fn partial(name: &str) -> Value {
    json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata", "metadata": {"name": name, "labels": {"dev.tug.stack": "hello"}}})
}

fn deployment(generation: i64, updated: i32, available: i32, deadline: bool) -> Value {
    let mut conditions = vec![];
    if deadline {
        conditions.push(
            json!({"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}),
        );
    }
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "hello", "generation": generation, "resourceVersion": "7", "uid": "uid-web"},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app.kubernetes.io/name": "web"}}, "template": {}},
        "status": {"observedGeneration": generation, "replicas": 3, "updatedReplicas": updated, "availableReplicas": available, "conditions": conditions}
    })
}

fn hello() -> (tug_spec::Stack, Vec<tug_kube::Object>) {
    let (stack, text) = common::example("hello");
    let objects = tug_kube::render(&stack, &text, &common::options("hello")).unwrap();
    (stack, objects)
}

fn deployer(client: Client) -> Deployer {
    let mut d = Deployer::new(client, "hello", "hello");
    d.backoff = Duration::from_millis(1);
    d
}

const NS: &str = "/api/v1/namespaces/hello";

#[tokio::test]
async fn a_missing_namespace_is_said_before_anything_is_applied() {
    let (client, log) = mock(|_, _| (404, status(404, "NotFound")));
    let (stack, objects) = hello();
    let mut events = vec![];
    let err = deployer(client)
        .deploy(&objects, &stack, &mut |p| events.push(p))
        .await
        .unwrap_err();
    assert!(
        matches!(err, DeployError::NamespaceMissing(ref n) if n == "hello"),
        "{err}"
    );
    assert!(err
        .hint()
        .unwrap()
        .contains("kubectl create namespace hello"));
    let log = log.lock().unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!((log[0].method.as_str(), log[0].path.as_str()), ("GET", NS));
    assert!(events.is_empty());
}

/// Answers like an API server for a deploy of examples/hello that succeeds.
fn happy(stale_configmap: bool) -> impl FnMut(&Seen, usize) -> (u16, String) + Send {
    move |s, _| match (s.method.as_str(), s.path.as_str()) {
        ("GET", NS) => (200, partial("hello").to_string()),
        ("PATCH", _) => (200, s.body.to_string()),
        ("GET", p) if p.contains("/configmaps?") && stale_configmap => (
            200,
            list(
                "PartialObjectMetadata",
                vec![partial("web-env-7cc6687a2e"), partial("web-env-0ld0ld0ld0")],
            ),
        ),
        // A cluster without the Gateway API CRDs: nothing to prune there.
        ("GET", p) if p.contains("/httproutes?") => (404, status(404, "NotFound")),
        ("GET", p) if p.contains('?') && p.contains("labelSelector") => {
            (200, list("PartialObjectMetadata", vec![]))
        }
        ("DELETE", _) => (200, status(200, "Success")),
        ("GET", p) if p.ends_with("/deployments/web") => {
            (200, deployment(2, 3, 3, false).to_string())
        }
        _ => (500, status(500, "Unexpected")),
    }
}

#[tokio::test]
async fn deploy_applies_server_side_as_tug_prunes_by_label_and_watches_the_rollout() {
    let (client, log) = mock(happy(true));
    let (stack, objects) = hello();
    let mut events = vec![];
    deployer(client)
        .deploy(&objects, &stack, &mut |p| events.push(p))
        .await
        .unwrap();
    let log = log.lock().unwrap();
    let patches: Vec<&Seen> = log.iter().filter(|s| s.method == "PATCH").collect();
    assert_eq!(patches.len(), objects.len());
    for (seen, o) in patches.iter().zip(&objects) {
        assert!(
            seen.path.contains(&format!(
                "/namespaces/hello/{}/{}?",
                o.api_resource().plural,
                o.name()
            )),
            "{}",
            seen.path
        );
        assert!(
            seen.path.contains("fieldManager=tug") && seen.path.contains("force=true"),
            "{}",
            seen.path
        );
        assert_eq!(seen.body, serde_json::to_value(o).unwrap());
    }
    // Prune lists each kind by the stack's labels (HTTPRoutes too, whose 404
    // on a cluster without the Gateway API is no error), and deletes only
    // what left the spec.
    let lists: Vec<&Seen> = log
        .iter()
        .filter(|s| s.method == "GET" && s.path.contains("labelSelector"))
        .collect();
    assert_eq!(lists.len(), 11);
    assert!(lists.iter().any(|l| l
        .path
        .contains("/apis/gateway.networking.k8s.io/v1/namespaces/hello/httproutes?")));
    for l in &lists {
        assert!(
            l.path.contains(
                "labelSelector=app.kubernetes.io%2Fmanaged-by%3Dtug%2Cdev.tug.stack%3Dhello"
            ),
            "{}",
            l.path
        );
    }
    let deletes: Vec<&Seen> = log.iter().filter(|s| s.method == "DELETE").collect();
    assert_eq!(deletes.len(), 1);
    assert_eq!(
        deletes[0].path.trim_end_matches('?'),
        format!("{NS}/configmaps/web-env-0ld0ld0ld0")
    );
    assert_eq!(deletes[0].body["propagationPolicy"], "Background");
    assert!(events.contains(&Progress::Pruned {
        object: "configmap/web-env-0ld0ld0ld0".into()
    }));
    assert!(events.contains(&Progress::Rollout {
        deployment: "web".into(),
        updated: 3,
        available: 3,
        desired: 3
    }));
    assert_eq!(
        events.last(),
        Some(&Progress::RolledOut {
            deployment: "web".into()
        })
    );
}

#[tokio::test]
async fn throttling_server_errors_and_conflicts_are_retried_with_backoff() {
    let mut inner = happy(false);
    let mut first_patch = true;
    let (client, log) = mock(move |s, n| {
        if s.method == "PATCH" && first_patch {
            // 429, 503 and 409 before the first apply goes through.
            return match n {
                1 => (429, status(429, "TooManyRequests")),
                2 => (503, status(503, "ServiceUnavailable")),
                _ => {
                    first_patch = false;
                    (409, status(409, "Conflict"))
                }
            };
        }
        inner(s, n)
    });
    let (stack, objects) = hello();
    let mut events = vec![];
    deployer(client)
        .deploy(&objects, &stack, &mut |p| events.push(p))
        .await
        .unwrap();
    let codes: Vec<u16> = events
        .iter()
        .filter_map(|e| match e {
            Progress::Retrying { code, .. } => Some(*code),
            _ => None,
        })
        .collect();
    assert_eq!(codes, [429, 503, 409]);
    let log = log.lock().unwrap();
    assert_eq!(
        log.iter().filter(|s| s.method == "PATCH").count(),
        objects.len() + 3
    );
}

#[tokio::test]
async fn a_server_that_keeps_failing_gives_up_after_the_last_attempt() {
    let (client, log) = mock(|s, _| match s.method.as_str() {
        "GET" => (200, partial("hello").to_string()),
        _ => (500, status(500, "InternalError")),
    });
    let (stack, objects) = hello();
    let mut d = deployer(client);
    d.attempts = 3;
    let err = d.deploy(&objects, &stack, &mut |_| {}).await.unwrap_err();
    assert!(
        err.to_string()
            .starts_with("cannot apply networkpolicy/hello-default-deny"),
        "{err}"
    );
    assert_eq!(
        log.lock()
            .unwrap()
            .iter()
            .filter(|s| s.method == "PATCH")
            .count(),
        3
    );
}

#[tokio::test]
async fn a_watch_that_answers_410_gone_starts_again_from_a_fresh_read() {
    let mut reads = 0;
    let (client, log) = mock(move |s, _| match (s.method.as_str(), s.path.as_str()) {
        ("GET", p) if p.ends_with("/deployments/web") => {
            reads += 1;
            let d = if reads == 1 {
                deployment(2, 1, 2, false)
            } else {
                deployment(2, 3, 3, false)
            };
            (200, d.to_string())
        }
        ("GET", p) if p.contains("watch=true") => {
            let gone = json!({"type": "ERROR", "object": {"apiVersion": "v1", "kind": "Status", "status": "Failure", "code": 410, "reason": "Expired", "message": "too old resource version"}});
            (200, format!("{gone}\n"))
        }
        _ => (500, status(500, "Unexpected")),
    });
    let mut events = vec![];
    deployer(client)
        .watch_rollout("web", Duration::from_secs(30), &mut |p| events.push(p))
        .await
        .unwrap();
    let log = log.lock().unwrap();
    let paths: Vec<&str> = log
        .iter()
        .map(|s| s.path.split('?').next().unwrap())
        .collect();
    let d = "/apis/apps/v1/namespaces/hello/deployments";
    assert_eq!(
        paths,
        [format!("{d}/web"), d.to_string(), format!("{d}/web")]
    );
    assert!(
        log[1].path.contains("fieldSelector=metadata.name%3Dweb")
            && log[1].path.contains("resourceVersion=7"),
        "{}",
        log[1].path
    );
    assert_eq!(
        events,
        [
            Progress::Rollout {
                deployment: "web".into(),
                updated: 1,
                available: 2,
                desired: 3
            },
            Progress::Rollout {
                deployment: "web".into(),
                updated: 3,
                available: 3,
                desired: 3
            },
            Progress::RolledOut {
                deployment: "web".into()
            },
        ]
    );
}

#[tokio::test]
async fn a_failed_rollout_goes_back_to_the_previous_replicaset() {
    let mut inner = happy(false);
    let (client, log) = mock(move |s, n| match (s.method.as_str(), s.path.as_str()) {
        ("GET", p) if p.ends_with("/deployments/web") => {
            (200, deployment(3, 1, 2, true).to_string())
        }
        ("GET", p) if p.contains("/replicasets?") => {
            let rs = |rev: &str, image: &str| {
                json!({
                    "apiVersion": "apps/v1", "kind": "ReplicaSet",
                    "metadata": {"name": format!("web-{rev}"), "annotations": {"deployment.kubernetes.io/revision": rev},
                                 "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": "uid-web"}]},
                    "spec": {"selector": {}, "template": {"metadata": {"labels": {"app.kubernetes.io/name": "web", "pod-template-hash": "abc"}},
                             "spec": {"containers": [{"name": "web", "image": image}]}}}
                })
            };
            (
                200,
                list(
                    "ReplicaSet",
                    vec![
                        rs("1", "registry.example/hello:0.9.0"),
                        rs("2", "registry.example/hello:1.0.0"),
                    ],
                ),
            )
        }
        _ => inner(s, n),
    });
    let (stack, objects) = hello();
    let mut events = vec![];
    let err = deployer(client)
        .deploy(&objects, &stack, &mut |p| events.push(p))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            DeployError::RolloutFailed {
                rolled_back: true,
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string().contains("progress deadline exceeded"),
        "{err}"
    );
    let log = log.lock().unwrap();
    let undo = log.iter().rev().find(|s| s.method == "PATCH").unwrap();
    assert!(undo
        .path
        .starts_with("/apis/apps/v1/namespaces/hello/deployments/web?"));
    let tpl = &undo.body["spec"]["template"];
    assert_eq!(
        tpl["spec"]["containers"][0]["image"],
        "registry.example/hello:0.9.0"
    );
    assert!(tpl["metadata"]["labels"].get("pod-template-hash").is_none());
    assert!(events
        .iter()
        .any(|e| matches!(e, Progress::RollingBack { .. })));
}

#[tokio::test]
async fn a_kubeconfig_that_points_nowhere_names_the_context_and_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("config");
    std::fs::write(
        &kc,
        "apiVersion: v1\nkind: Config\ncurrent-context: staging\nclusters:\n- name: c\n  cluster: { server: \"https://127.0.0.1:1\" }\ncontexts:\n- name: staging\n  context: { cluster: c, user: u }\nusers:\n- name: u\n  user: { token: t }\n",
    )
    .unwrap();
    // The only test in this binary that reads the kubeconfig.
    std::env::set_var("KUBECONFIG", &kc);
    let e = tug_kube::connect::connect(None)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("context `staging`") && e.contains("https://127.0.0.1:1/"),
        "{e}"
    );
    let e = tug_kube::connect::connect(Some("prod"))
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("context `prod` cannot be used"), "{e}");
}

#[tokio::test]
async fn diff_is_a_server_side_dry_run_that_changes_nothing() {
    let (_, objects) = hello();
    let live_cm =
        serde_json::to_value(objects.iter().find(|o| o.kind() == "ConfigMap").unwrap()).unwrap();
    let (client, log) = mock(move |s, _| match (s.method.as_str(), s.path.as_str()) {
        ("GET", NS) => (200, partial("hello").to_string()),
        ("GET", p) if p.ends_with("/configmaps/web-env-7cc6687a2e") => (200, live_cm.to_string()),
        ("GET", p) if p.ends_with("/deployments/web") => {
            (200, deployment(1, 3, 3, false).to_string())
        }
        ("GET", p) if p.contains("/services?") => {
            (200, list("PartialObjectMetadata", vec![partial("old-api")]))
        }
        ("GET", p) if p.contains("labelSelector") => (200, list("PartialObjectMetadata", vec![])),
        ("GET", _) => (404, status(404, "NotFound")),
        ("PATCH", _) => (200, s.body.to_string()),
        _ => (500, status(500, "Unexpected")),
    });
    let changes = deployer(client).diff(&objects, &mut |_| {}).await.unwrap();
    let got: Vec<(String, &str)> = changes
        .iter()
        .map(|c| (c.object.clone(), c.action))
        .collect();
    assert!(
        got.contains(&("configmap/web-env-7cc6687a2e".into(), "unchanged")),
        "{got:?}"
    );
    assert!(
        got.contains(&("deployment/web".into(), "update")),
        "{got:?}"
    );
    assert!(
        got.contains(&("serviceaccount/web".into(), "create")),
        "{got:?}"
    );
    assert_eq!(got.last(), Some(&("service/old-api".into(), "prune")));
    let log = log.lock().unwrap();
    assert!(log
        .iter()
        .filter(|s| s.method == "PATCH")
        .all(|s| s.path.contains("dryRun=All")));
    assert!(!log.iter().any(|s| s.method == "DELETE"));
}

#[tokio::test]
async fn applying_an_http_route_to_a_cluster_without_the_gateway_api_says_what_to_do() {
    let (client, _log) = mock(|s: &Seen, _| match (s.method.as_str(), s.path.as_str()) {
        ("PATCH", p) if p.contains("/httproutes/") => (404, status(404, "NotFound")),
        ("PATCH", _) => (200, s.body.to_string()),
        _ => (500, status(500, "Unexpected")),
    });
    let text = "name: hello\ngateway: { listen: [\":8000\"] }\nservices:\n  web:\n    image: r.example/web:1\n    port: 8080\n    route: { path: / }\n";
    let stack = tug_spec::parse_str(text, "tug.yaml".as_ref()).unwrap();
    let opts = tug_kube::RenderOptions {
        routes: tug_kube::RouteTarget::GatewayApi,
        ..Default::default()
    };
    let objects = tug_kube::render(&stack, text, &opts).unwrap();
    let err = deployer(client)
        .apply(&objects, false, &mut |_| {})
        .await
        .unwrap_err();
    assert!(err.to_string().contains("httproute/web"), "{err}");
    assert!(err.hint().unwrap().contains("--routes ingress"), "{err}");
}

#[tokio::test]
async fn status_lists_the_stacks_deployments_by_label() {
    let (client, log) = mock(|s, _| match (s.method.as_str(), s.path.as_str()) {
        ("GET", NS) => (200, partial("hello").to_string()),
        ("GET", p) if p.contains("/deployments?") => {
            (200, list("Deployment", vec![deployment(2, 2, 1, false)]))
        }
        _ => (500, status(500, "Unexpected")),
    });
    let st = deployer(client).status(&mut |_| {}).await.unwrap();
    assert_eq!(st.len(), 1);
    assert_eq!(
        (
            st[0].name.as_str(),
            st[0].desired,
            st[0].updated,
            st[0].available
        ),
        ("web", 3, 2, 1)
    );
    let log = log.lock().unwrap();
    assert_eq!(log.len(), 2);
    assert!(
        log[1]
            .path
            .starts_with("/apis/apps/v1/namespaces/hello/deployments?")
            && log[1].path.contains(
                "labelSelector=app.kubernetes.io%2Fmanaged-by%3Dtug%2Cdev.tug.stack%3Dhello"
            ),
        "{}",
        log[1].path
    );
}

#[tokio::test]
async fn down_deletes_only_what_the_stack_label_selects() {
    let (client, log) = mock(|s, _| match (s.method.as_str(), s.path.as_str()) {
        ("GET", NS) => (200, partial("hello").to_string()),
        ("GET", p) if p.contains("/deployments?") => {
            (200, list("PartialObjectMetadata", vec![partial("web")]))
        }
        ("GET", p) if p.contains("/httproutes?") => (404, status(404, "NotFound")),
        ("GET", p) if p.contains("labelSelector") => (200, list("PartialObjectMetadata", vec![])),
        ("DELETE", _) => (200, status(200, "Success")),
        _ => (500, status(500, "Unexpected")),
    });
    let mut events = vec![];
    let removed = deployer(client)
        .down(&mut |p| events.push(p))
        .await
        .unwrap();
    assert_eq!(removed.len(), 1, "{removed:?}");
    let log = log.lock().unwrap();
    for s in log
        .iter()
        .filter(|s| s.method == "GET" && s.path.contains('?'))
    {
        assert!(
            s.path.contains(
                "labelSelector=app.kubernetes.io%2Fmanaged-by%3Dtug%2Cdev.tug.stack%3Dhello"
            ),
            "a list without the stack's selector: {}",
            s.path
        );
    }
    let deletes: Vec<&str> = log
        .iter()
        .filter(|s| s.method == "DELETE")
        .map(|s| s.path.as_str())
        .collect();
    assert_eq!(
        deletes,
        ["/apis/apps/v1/namespaces/hello/deployments/web?"],
        "{deletes:?}"
    );
    assert!(
        matches!(&events[..], [Progress::Pruned { .. }]),
        "{events:?}"
    );
}
