//! The operator: a `Stack` custom resource (tug.dev/v1alpha1) whose spec is a
//! tug.yaml document, reconciled with the same translation as `tug render k8s`.
//!
//! Contract of [`reconcile`]:
//! - Expected flow: the spec is read as tug.yaml (errors at their line:col in
//!   the status), rendered into the resource's namespace, every child gets an
//!   owner reference to the Stack, children are applied server-side (field
//!   manager `tug`) and the stack's labelled children that left the spec are
//!   pruned; the status says Ready / Progressing / Degraded with
//!   observedGeneration.
//! - Guarantees: the same spec gives the same children as `tug render k8s`;
//!   deleting the Stack deletes its children (finalizer `tug.dev/cleanup`,
//!   and owner references for the garbage collector).
//! - Leader election: [`run_leader`] reconciles only while it holds the
//!   Lease `tug-operator` (see [`crate::leader`]).
//! - [`serve`] answers `/healthz` and `/metrics` (Prometheus text).

use crate::deploy::{DeployError, Deployer};
use crate::object::Object;
use crate::render::{render, RenderOptions};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, CustomResourceDefinitionNames, CustomResourceDefinitionSpec,
    CustomResourceDefinitionVersion, CustomResourceSubresources, CustomResourceValidation,
    JSONSchemaProps,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{Api, Patch, PatchParams};
use kube::discovery::ApiResource;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::finalizer::{finalizer, Event as Finalizer};
use kube::runtime::watcher;
use kube::{Client, Resource, ResourceExt};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

pub const GROUP: &str = "tug.dev";
pub const VERSION: &str = "v1alpha1";
pub const KIND: &str = "Stack";
pub const FINALIZER: &str = "tug.dev/cleanup";

/// A Stack resource: its spec is the tug.yaml document.
pub type StackResource = kube::core::Object<serde_json::Value, StackStatus>;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StackStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default)]
    pub conditions: Vec<Condition>,
}

/// A status condition, as metav1.Condition.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    #[serde(rename = "type")]
    pub type_: String,
    pub status: String,
    pub reason: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    #[error("the Stack has no namespace or name")]
    Unaddressed,
    #[error(transparent)]
    Deploy(#[from] DeployError),
    #[error("cannot update the Stack's status")]
    Status(#[source] kube::Error),
}

pub fn api_resource() -> ApiResource {
    ApiResource {
        group: GROUP.into(),
        version: VERSION.into(),
        api_version: format!("{GROUP}/{VERSION}"),
        kind: KIND.into(),
        plural: "stacks".into(),
    }
}

fn schema(v: serde_json::Value) -> JSONSchemaProps {
    // The literals below are valid JSONSchemaProps.
    serde_json::from_value(v).unwrap_or_default()
}

/// The CustomResourceDefinition of `Stack` (`tug operator crd`).
pub fn crd() -> CustomResourceDefinition {
    let spec = serde_json::json!({
        "type": "object",
        "description": "A tug.yaml document: name, services and their settings, as `tug schema` describes them. The operator validates it with tug's parser and reports errors in the status.",
        "required": ["services"],
        "x-kubernetes-preserve-unknown-fields": true,
        "properties": {
            "name": {"type": "string", "description": "Stack name (default: the resource's name)."},
            "services": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
        }
    });
    let status = serde_json::json!({
        "type": "object",
        "properties": {
            "observedGeneration": {"type": "integer", "format": "int64"},
            "conditions": {"type": "array", "items": {
                "type": "object",
                "required": ["type", "status", "reason", "message"],
                "properties": {
                    "type": {"type": "string"}, "status": {"type": "string"},
                    "reason": {"type": "string"}, "message": {"type": "string"},
                    "observedGeneration": {"type": "integer", "format": "int64"}
                }
            }}
        }
    });
    CustomResourceDefinition {
        metadata: ObjectMeta {
            name: Some(format!("stacks.{GROUP}")),
            labels: Some(BTreeMap::from([(
                crate::labels::MANAGED_BY.to_string(),
                crate::labels::MANAGER.to_string(),
            )])),
            ..ObjectMeta::default()
        },
        spec: CustomResourceDefinitionSpec {
            group: GROUP.into(),
            names: CustomResourceDefinitionNames {
                kind: KIND.into(),
                plural: "stacks".into(),
                singular: Some("stack".into()),
                list_kind: Some("StackList".into()),
                short_names: Some(vec!["tugstack".into()]),
                categories: None,
            },
            scope: "Namespaced".into(),
            versions: vec![CustomResourceDefinitionVersion {
                name: VERSION.into(),
                served: true,
                storage: true,
                subresources: Some(CustomResourceSubresources {
                    status: Some(Default::default()),
                    scale: None,
                }),
                schema: Some(CustomResourceValidation {
                    open_api_v3_schema: Some(schema(serde_json::json!({
                        "type": "object",
                        "required": ["spec"],
                        "properties": {"spec": spec, "status": status}
                    }))),
                }),
                ..CustomResourceDefinitionVersion::default()
            }],
            ..CustomResourceDefinitionSpec::default()
        },
        status: None,
    }
}

fn condition(
    type_: &str,
    ok: bool,
    reason: &str,
    message: String,
    generation: Option<i64>,
) -> Condition {
    Condition {
        type_: type_.into(),
        status: if ok { "True" } else { "False" }.into(),
        reason: reason.into(),
        message,
        observed_generation: generation,
    }
}

/// The children of a Stack: the render of its spec, owned by it.
pub fn children(stack: &StackResource) -> Result<(tug_spec::Stack, Vec<Object>), String> {
    let (Some(ns), Some(name)) = (stack.namespace(), stack.metadata.name.clone()) else {
        return Err("the Stack has no namespace or name".into());
    };
    let mut spec = stack.spec.clone();
    if spec.get("name").is_none() {
        if let Some(m) = spec.as_object_mut() {
            m.insert("name".into(), serde_json::Value::String(name.clone()));
        }
    }
    // Files are read from the operator's own filesystem, where a path could
    // name its service account token: a Stack names none.
    let mut files: Vec<String> = ["secrets", "configs"]
        .into_iter()
        .filter(|k| spec.get(k).is_some())
        .map(String::from)
        .collect();
    if let Some(services) = spec.get("services").and_then(|s| s.as_object()) {
        files.extend(
            services
                .iter()
                .filter(|(_, s)| s.get("env_file").is_some())
                .map(|(n, _)| format!("services.{n}.env_file")),
        );
    }
    if !files.is_empty() {
        return Err(format!(
            "{} name files, which a Stack resource cannot carry: create the Secret or ConfigMap in namespace {ns} and reference it outside the Stack, or use `tug deploy --kube`, which reads them on your machine",
            files.join(", ")
        ));
    }
    let text = crate::object::yaml_of(&spec);
    let file = format!("stacks/{ns}/{name}");
    let parsed = tug_spec::parse_str(&text, file.as_ref()).map_err(|e| e.to_string())?;
    let opts = RenderOptions {
        namespace: Some(ns),
        ..RenderOptions::default()
    };
    let mut objects = render(&parsed, &text, &opts).map_err(|e| e.to_string())?;
    let owner = OwnerReference {
        api_version: format!("{GROUP}/{VERSION}"),
        kind: KIND.into(),
        name,
        uid: stack.metadata.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    };
    for o in &mut objects {
        o.metadata_mut().owner_references = Some(vec![owner.clone()]);
    }
    Ok((parsed, objects))
}

/// One reconcile of a Stack that is not being deleted: apply, prune, status.
pub async fn reconcile(
    client: &Client,
    stack: &StackResource,
) -> Result<StackStatus, OperatorError> {
    let ns = stack.namespace().ok_or(OperatorError::Unaddressed)?;
    let generation = stack.metadata.generation;
    let status = match children(stack) {
        Err(message) => StackStatus {
            observed_generation: generation,
            conditions: vec![
                condition("Ready", false, "InvalidSpec", message.clone(), generation),
                condition("Degraded", true, "InvalidSpec", message, generation),
            ],
        },
        Ok((parsed, objects)) => {
            let d = Deployer::new(client.clone(), &ns, &parsed.name);
            let mut quiet = |_| {};
            d.apply(&objects, false, &mut quiet).await?;
            d.prune(&objects, &mut quiet).await?;
            let deps = d.status(&mut quiet).await?;
            let waiting: Vec<String> = deps
                .iter()
                .filter(|s| s.available < s.desired || s.updated < s.desired)
                .map(|s| format!("{} {}/{}", s.name, s.available, s.desired))
                .collect();
            let ready = waiting.is_empty();
            let msg = if ready {
                format!("{} deployments available", deps.len())
            } else {
                format!("waiting for {}", waiting.join(", "))
            };
            StackStatus {
                observed_generation: generation,
                conditions: vec![
                    condition(
                        "Ready",
                        ready,
                        if ready { "Available" } else { "RollingOut" },
                        msg.clone(),
                        generation,
                    ),
                    condition(
                        "Progressing",
                        !ready,
                        if ready { "Complete" } else { "RollingOut" },
                        msg,
                        generation,
                    ),
                    condition(
                        "Degraded",
                        false,
                        "Applied",
                        format!("{} objects applied", objects.len()),
                        generation,
                    ),
                ],
            }
        }
    };
    let api: Api<StackResource> = Api::namespaced_with(client.clone(), &ns, &api_resource());
    let patch = serde_json::json!({ "status": status });
    api.patch_status(
        &stack.name_any(),
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await
    .map_err(OperatorError::Status)?;
    Ok(status)
}

/// Deletes a Stack's children (the finalizer's cleanup).
pub async fn cleanup(client: &Client, stack: &StackResource) -> Result<(), OperatorError> {
    let ns = stack.namespace().ok_or(OperatorError::Unaddressed)?;
    let name = stack
        .spec
        .get("name")
        .and_then(|n| n.as_str())
        .map(str::to_string)
        .unwrap_or_else(|| stack.name_any());
    Deployer::new(client.clone(), &ns, &name)
        .prune(&[], &mut |_| {})
        .await?;
    Ok(())
}

struct Ctx {
    client: Client,
    recorder: Recorder,
    metrics: Arc<Metrics>,
    backoff: ErrorBackoff,
}

/// Requeue delays after failed reconciles, per Stack: 2 s after the first
/// failure, doubling with each failure in a row, at most 5 min; a success
/// starts over. A broken Stack is retried soon, then rarely, and a burst of
/// API errors (429, 5xx) does not turn into a burst of retries.
#[derive(Debug, Default)]
pub struct ErrorBackoff {
    failures: std::sync::Mutex<BTreeMap<String, u32>>,
}

impl ErrorBackoff {
    pub const FIRST: Duration = Duration::from_secs(2);
    pub const MAX: Duration = Duration::from_secs(300);

    /// The delay after the `n`th failure in a row (`n` ≥ 1).
    pub fn delay(n: u32) -> Duration {
        let doublings = n.saturating_sub(1).min(16);
        (Self::FIRST * (1u32 << doublings)).min(Self::MAX)
    }

    /// Records a failure of `key`; the delay before its next try.
    pub fn failed(&self, key: &str) -> Duration {
        let mut f = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let n = f.entry(key.to_string()).or_insert(0);
        *n = n.saturating_add(1);
        Self::delay(*n)
    }

    /// Records a success of `key`: the next failure starts from the first delay.
    pub fn succeeded(&self, key: &str) {
        let mut f = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        f.remove(key);
    }
}

fn backoff_key(stack: &StackResource) -> String {
    format!(
        "{}/{}",
        stack.namespace().unwrap_or_default(),
        stack.name_any()
    )
}

/// What the operator counts, for `/metrics`.
#[derive(Debug, Default)]
pub struct Metrics {
    reconciles_ok: std::sync::atomic::AtomicU64,
    reconciles_failed: std::sync::atomic::AtomicU64,
    leader: std::sync::atomic::AtomicBool,
}

impl Metrics {
    fn count(&self, ok: bool) {
        let c = if ok {
            &self.reconciles_ok
        } else {
            &self.reconciles_failed
        };
        c.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn set_leader(&self, leading: bool) {
        self.leader
            .store(leading, std::sync::atomic::Ordering::Relaxed);
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        use std::sync::atomic::Ordering::Relaxed;
        format!(
            "# HELP tug_operator_reconciles_total Stack reconciles by result.\n\
             # TYPE tug_operator_reconciles_total counter\n\
             tug_operator_reconciles_total{{result=\"ok\"}} {}\n\
             tug_operator_reconciles_total{{result=\"error\"}} {}\n\
             # HELP tug_operator_leader Whether this replica holds the operator's Lease.\n\
             # TYPE tug_operator_leader gauge\n\
             tug_operator_leader {}\n",
            self.reconciles_ok.load(Relaxed),
            self.reconciles_failed.load(Relaxed),
            u8::from(self.leader.load(Relaxed)),
        )
    }
}

/// Serves `/healthz` and `/metrics` on `listener` until the task is dropped.
pub async fn serve(
    listener: tokio::net::TcpListener,
    metrics: Arc<Metrics>,
) -> std::io::Result<()> {
    use axum::routing::get;
    let app = axum::Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/metrics",
            get(move || {
                let m = metrics.clone();
                async move {
                    (
                        [(
                            axum::http::header::CONTENT_TYPE,
                            "text/plain; version=0.0.4",
                        )],
                        m.render(),
                    )
                }
            }),
        );
    axum::serve(listener, app).await
}

#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct ReconcileError(#[from] kube::runtime::finalizer::Error<OperatorError>);

async fn reconcile_event(
    stack: Arc<StackResource>,
    ctx: Arc<Ctx>,
) -> Result<Action, ReconcileError> {
    let key = backoff_key(&stack);
    let r = reconcile_inner(stack, ctx.clone()).await;
    ctx.metrics.count(r.is_ok());
    if r.is_ok() {
        ctx.backoff.succeeded(&key);
    }
    r
}

async fn reconcile_inner(
    stack: Arc<StackResource>,
    ctx: Arc<Ctx>,
) -> Result<Action, ReconcileError> {
    let ns = stack.namespace().unwrap_or_default();
    let api: Api<StackResource> = Api::namespaced_with(ctx.client.clone(), &ns, &api_resource());
    let reference = stack.object_ref(&api_resource());
    Ok(finalizer(&api, FINALIZER, stack, |ev| async {
        match ev {
            Finalizer::Apply(s) => {
                let status = reconcile(&ctx.client, &s).await?;
                let ready = status
                    .conditions
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.status == "True");
                let note = status.conditions.first().map(|c| c.message.clone());
                let _ = ctx
                    .recorder
                    .publish(
                        &Event {
                            type_: if ready {
                                EventType::Normal
                            } else {
                                EventType::Warning
                            },
                            reason: if ready { "Ready" } else { "NotReady" }.into(),
                            note,
                            action: "Reconcile".into(),
                            secondary: None,
                        },
                        &reference,
                    )
                    .await;
                Ok(Action::requeue(Duration::from_secs(if ready {
                    300
                } else {
                    15
                })))
            }
            Finalizer::Cleanup(s) => {
                cleanup(&ctx.client, &s).await?;
                Ok(Action::await_change())
            }
        }
    })
    .await?)
}

/// What the controller does for one change of `stack`: the finalizer's
/// steps (add it; apply with an Event; on deletion, clean up and remove it).
pub async fn handle(client: &Client, stack: Arc<StackResource>) -> Result<Action, ReconcileError> {
    let ctx = Arc::new(Ctx {
        recorder: Recorder::new(client.clone(), reporter()),
        client: client.clone(),
        metrics: Arc::default(),
        backoff: ErrorBackoff::default(),
    });
    reconcile_event(stack, ctx).await
}

fn reporter() -> Reporter {
    Reporter {
        controller: "tug-operator".into(),
        instance: std::env::var("POD_NAME").ok(),
    }
}

fn error_policy(stack: Arc<StackResource>, e: &ReconcileError, ctx: Arc<Ctx>) -> Action {
    let delay = ctx.backoff.failed(&backoff_key(&stack));
    tracing::warn!(error = %e, retry_in = ?delay, "reconcile failed");
    Action::requeue(delay)
}

/// Runs the controller for every Stack the client can see, until the stream ends.
pub async fn run(client: Client, metrics: Arc<Metrics>) {
    use futures_util::StreamExt;
    let api: Api<StackResource> = Api::all_with(client.clone(), &api_resource());
    let ctx = Arc::new(Ctx {
        recorder: Recorder::new(client.clone(), reporter()),
        client,
        metrics,
        backoff: ErrorBackoff::default(),
    });
    Controller::new_with(api, watcher::Config::default(), api_resource())
        .run(reconcile_event, error_policy, ctx)
        .for_each(|r| async move {
            match r {
                Ok((o, _)) => {
                    tracing::info!(stack = %o.name, namespace = ?o.namespace, "reconciled")
                }
                Err(e) => tracing::warn!(error = %e, "reconcile error"),
            }
        })
        .await;
}

/// Runs the controller only while this replica holds the `tug-operator`
/// Lease in `namespace`; returns when the lease is lost, so that the process
/// exits and its restart campaigns again.
pub async fn run_leader(client: Client, namespace: &str, identity: &str, metrics: Arc<Metrics>) {
    let lock = crate::leader::LeaseLock::new(
        client.clone(),
        namespace,
        "tug-operator",
        identity,
        Duration::from_secs(15),
    );
    loop {
        match lock
            .try_acquire_or_renew(k8s_openapi::jiff::Timestamp::now())
            .await
        {
            Ok(true) => break,
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "cannot read the operator's Lease"),
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    tracing::info!(identity, "leading");
    metrics.set_leader(true);
    let renew = async {
        loop {
            tokio::time::sleep(Duration::from_secs(5)).await;
            match lock
                .try_acquire_or_renew(k8s_openapi::jiff::Timestamp::now())
                .await
            {
                Ok(true) => {}
                Ok(false) => return "another replica holds the Lease".to_string(),
                Err(e) => return e.to_string(),
            }
        }
    };
    tokio::select! {
        () = run(client, metrics.clone()) => {}
        why = renew => tracing::error!(reason = %why, "lost leadership"),
    }
    metrics.set_leader(false);
}

#[cfg(test)]
mod tests {
    use super::ErrorBackoff;
    use std::time::Duration;

    #[test]
    fn error_backoff_doubles_per_failure_up_to_the_cap() {
        let d: Vec<u64> = (1..=10).map(|n| ErrorBackoff::delay(n).as_secs()).collect();
        assert_eq!(d, [2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
        assert_eq!(ErrorBackoff::delay(u32::MAX), ErrorBackoff::MAX);
        assert_eq!(ErrorBackoff::delay(0), ErrorBackoff::FIRST);
    }

    #[test]
    fn error_backoff_is_per_stack_and_a_success_starts_over() {
        let b = ErrorBackoff::default();
        assert_eq!(b.failed("ns/a"), Duration::from_secs(2));
        assert_eq!(b.failed("ns/a"), Duration::from_secs(4));
        assert_eq!(b.failed("ns/b"), Duration::from_secs(2));
        assert_eq!(b.failed("ns/a"), Duration::from_secs(8));
        b.succeeded("ns/a");
        assert_eq!(b.failed("ns/a"), Duration::from_secs(2));
        assert_eq!(b.failed("ns/b"), Duration::from_secs(4));
    }
}
