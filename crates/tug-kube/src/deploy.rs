//! Rendered objects → a cluster: server-side apply with field manager `tug`,
//! prune by label, rollout watch and rollback.
//!
//! Contract of [`Deployer::deploy`]:
//! - Expected flow: the namespace is checked first (nothing is applied to a
//!   namespace that does not exist); every object is applied (server-side,
//!   field manager `tug`, conflicts forced: tug.yaml is the source of truth);
//!   objects labelled as this stack's (`app.kubernetes.io/managed-by=tug`,
//!   `dev.tug.stack=NAME`) that the render no longer has are deleted; each
//!   Deployment is watched until its new ReplicaSet is fully available.
//! - Guarantees: prune selects by label only and never deletes an object the
//!   render has; a Deployment whose rollout fails or times out is put back to
//!   its previous ReplicaSet's pod template when `auto_rollback` is set.
//! - Errors: 409, 429 and 5xx answers are retried with exponential backoff
//!   (a few times); 410 Gone on a watch restarts the watch from a fresh read.

use crate::labels;
use crate::object::Object;
use futures_util::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{
    Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, WatchEvent, WatchParams,
};
use kube::Client;
use std::collections::BTreeSet;
use std::future::Future;
use std::time::Duration;

/// Field manager of every apply.
pub const FIELD_MANAGER: &str = "tug";

#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    #[error("namespace `{0}` does not exist; nothing was applied")]
    NamespaceMissing(String),
    #[error("{what}")]
    Api {
        what: String,
        #[source]
        source: kube::Error,
    },
    #[error("rollout of deployment/{name} failed: {reason}{}", if *.rolled_back { "; rolled back to the previous revision" } else { "" })]
    RolloutFailed {
        name: String,
        reason: String,
        rolled_back: bool,
    },
}

impl DeployError {
    pub fn hint(&self) -> Option<String> {
        match self {
            DeployError::NamespaceMissing(ns) => {
                Some(format!("create it first: kubectl create namespace {ns}"))
            }
            DeployError::Api { what, source }
                if what.contains("httproute/") && is_not_found(source) =>
            {
                Some("the cluster has no Gateway API CRDs: install them, or deploy with --routes ingress".into())
            }
            _ => None,
        }
    }
}

/// One line of progress, for the CLI to print or send as JSON.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Progress {
    Applied {
        object: String,
    },
    Pruned {
        object: String,
    },
    Rollout {
        deployment: String,
        updated: i32,
        available: i32,
        desired: i32,
    },
    RolledOut {
        deployment: String,
    },
    RollingBack {
        deployment: String,
        reason: String,
    },
    Retrying {
        what: String,
        attempt: u32,
        code: u16,
    },
}

/// What a dry run says would change.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Change {
    pub object: String,
    /// `create`, `update`, `unchanged` or `prune`.
    pub action: &'static str,
}

pub struct Deployer {
    client: Client,
    namespace: String,
    stack: String,
    /// First delay of the retry backoff (doubles per attempt).
    pub backoff: Duration,
    pub attempts: u32,
}

fn retryable(e: &kube::Error) -> Option<u16> {
    match e {
        kube::Error::Api(s) if s.code == 409 || s.code == 429 || s.code >= 500 => Some(s.code),
        _ => None,
    }
}

fn is_not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}

impl Deployer {
    pub fn new(client: Client, namespace: impl Into<String>, stack: impl Into<String>) -> Deployer {
        Deployer {
            client,
            namespace: namespace.into(),
            stack: stack.into(),
            backoff: Duration::from_millis(200),
            attempts: 5,
        }
    }

    fn api(&self, o: &Object) -> Api<DynamicObject> {
        Api::namespaced_with(self.client.clone(), &self.namespace, &o.api_resource())
    }

    /// Runs `f`, retrying 409/429/5xx with exponential backoff.
    async fn retry<T, F, Fut>(
        &self,
        what: &str,
        progress: &mut impl FnMut(Progress),
        mut f: F,
    ) -> Result<T, DeployError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, kube::Error>>,
    {
        let mut delay = self.backoff;
        let mut attempt = 1;
        loop {
            match f().await {
                Ok(v) => return Ok(v),
                Err(e) => match retryable(&e) {
                    Some(code) if attempt < self.attempts => {
                        progress(Progress::Retrying {
                            what: what.to_string(),
                            attempt,
                            code,
                        });
                        tokio::time::sleep(delay).await;
                        delay *= 2;
                        attempt += 1;
                    }
                    _ => {
                        return Err(DeployError::Api {
                            what: format!("cannot {what}"),
                            source: e,
                        });
                    }
                },
            }
        }
    }

    /// Fails unless the namespace exists.
    pub async fn check_namespace(&self) -> Result<(), DeployError> {
        let api: Api<Namespace> = Api::all(self.client.clone());
        match api.get_metadata_opt(&self.namespace).await {
            Ok(Some(_)) => Ok(()),
            Ok(None) => Err(DeployError::NamespaceMissing(self.namespace.clone())),
            Err(e) => Err(DeployError::Api {
                what: format!("cannot read namespace `{}`", self.namespace),
                source: e,
            }),
        }
    }

    /// Server-side apply of every object, in order.
    pub async fn apply(
        &self,
        objects: &[Object],
        dry_run: bool,
        progress: &mut impl FnMut(Progress),
    ) -> Result<Vec<DynamicObject>, DeployError> {
        let mut pp = PatchParams::apply(FIELD_MANAGER).force();
        pp.dry_run = dry_run;
        let mut out = Vec::new();
        for o in objects {
            let api = self.api(o);
            let value = serde_json::to_value(o).map_err(|e| DeployError::Api {
                what: format!("cannot serialize {}", o.id()),
                source: kube::Error::SerdeError(e),
            })?;
            let patch = Patch::Apply(&value);
            let applied = self
                .retry(&format!("apply {}", o.id()), progress, || {
                    api.patch(o.name(), &pp, &patch)
                })
                .await?;
            if !dry_run {
                progress(Progress::Applied { object: o.id() });
            }
            out.push(applied);
        }
        Ok(out)
    }

    /// Objects of this stack on the cluster, by kind, that `keep` does not name.
    pub async fn stale(
        &self,
        keep: &[Object],
        progress: &mut impl FnMut(Progress),
    ) -> Result<Vec<(Object, String)>, DeployError> {
        let wanted: BTreeSet<(String, String)> = keep
            .iter()
            .map(|o| (o.kind().to_string(), o.name().to_string()))
            .collect();
        let lp = ListParams::default().labels(&labels::stack_selector(&self.stack));
        let mut out = Vec::new();
        for ar in Object::all_kinds() {
            let api: Api<DynamicObject> =
                Api::namespaced_with(self.client.clone(), &self.namespace, &ar);
            let list = match self
                .retry(&format!("list {}", ar.plural), progress, || {
                    api.list_metadata(&lp)
                })
                .await
            {
                Ok(l) => l,
                // A cluster without the Gateway API CRDs has no HTTPRoutes to prune.
                Err(DeployError::Api { source, .. })
                    if is_not_found(&source) && ar.kind == "HTTPRoute" =>
                {
                    continue
                }
                Err(e) => return Err(e),
            };
            for item in list.items {
                let name = item.metadata.name.clone().unwrap_or_default();
                if !wanted.contains(&(ar.kind.clone(), name.clone())) {
                    out.push((stub(&ar.kind, &name), name));
                }
            }
        }
        Ok(out)
    }

    /// Deletes this stack's objects that `keep` does not have.
    pub async fn prune(
        &self,
        keep: &[Object],
        progress: &mut impl FnMut(Progress),
    ) -> Result<Vec<String>, DeployError> {
        let mut pruned = Vec::new();
        for (kind, name) in self.stale(keep, progress).await? {
            let api = self.api(&kind);
            let dp = DeleteParams::background();
            let res = self
                .retry(&format!("delete {}", kind.id()), progress, || {
                    api.delete(&name, &dp)
                })
                .await;
            match res {
                Ok(_) => {}
                Err(DeployError::Api { source, .. }) if is_not_found(&source) => {}
                Err(e) => return Err(e),
            }
            progress(Progress::Pruned { object: kind.id() });
            pruned.push(kind.id());
        }
        Ok(pruned)
    }

    /// Waits until the Deployment's rollout is complete, or fails.
    pub async fn watch_rollout(
        &self,
        name: &str,
        timeout: Duration,
        progress: &mut impl FnMut(Progress),
    ) -> Result<(), String> {
        tokio::time::timeout(timeout, self.watch_inner(name, progress))
            .await
            .unwrap_or_else(|_| Err(format!("not available after {}s", timeout.as_secs())))
    }

    async fn watch_inner(
        &self,
        name: &str,
        progress: &mut impl FnMut(Progress),
    ) -> Result<(), String> {
        let api: Api<Deployment> = Api::namespaced(self.client.clone(), &self.namespace);
        let mut last = None;
        // Read, then watch from that version; 410 Gone sends us back to read.
        loop {
            let d = self
                .retry(&format!("read deployment/{name}"), progress, || {
                    api.get(name)
                })
                .await
                .map_err(|e| e.to_string())?;
            if let Some(done) = rollout_state(&d, &mut last, progress)? {
                return Ok(done);
            }
            let rv = d.metadata.resource_version.clone().unwrap_or_default();
            let wp = WatchParams::default()
                .fields(&format!("metadata.name={name}"))
                .timeout(290);
            let mut stream = api
                .watch(&wp, &rv)
                .await
                .map_err(|e| e.to_string())?
                .boxed();
            loop {
                match stream.try_next().await {
                    Ok(Some(WatchEvent::Added(d) | WatchEvent::Modified(d))) => {
                        if let Some(done) = rollout_state(&d, &mut last, progress)? {
                            return Ok(done);
                        }
                    }
                    Ok(Some(WatchEvent::Deleted(_))) => {
                        return Err("the deployment was deleted".into())
                    }
                    Ok(Some(WatchEvent::Bookmark(_))) => {}
                    Ok(Some(WatchEvent::Error(s))) if s.code == 410 => break,
                    Ok(Some(WatchEvent::Error(s))) => return Err(s.message.clone()),
                    // The server closed the watch (its timeout): watch again from a read.
                    Ok(None) => break,
                    Err(e) => return Err(e.to_string()),
                }
            }
        }
    }

    /// Puts the pod template of the previous ReplicaSet back (`kubectl rollout undo`).
    pub async fn rollback(
        &self,
        name: &str,
        progress: &mut impl FnMut(Progress),
    ) -> Result<bool, DeployError> {
        let dapi: Api<Deployment> = Api::namespaced(self.client.clone(), &self.namespace);
        let rsapi: Api<ReplicaSet> = Api::namespaced(self.client.clone(), &self.namespace);
        let d = self
            .retry(&format!("read deployment/{name}"), progress, || {
                dapi.get(name)
            })
            .await?;
        let uid = d.metadata.uid.clone().unwrap_or_default();
        let sel = d
            .spec
            .selector
            .match_labels
            .clone()
            .unwrap_or_default()
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",");
        let lp = ListParams::default().labels(&sel);
        let list = self
            .retry("list replicasets", progress, || rsapi.list(&lp))
            .await?;
        let mut owned: Vec<(i64, ReplicaSet)> = list
            .items
            .into_iter()
            .filter(|rs| {
                rs.metadata
                    .owner_references
                    .iter()
                    .flatten()
                    .any(|o| o.uid == uid)
            })
            .filter_map(|rs| Some((revision(&rs.metadata.annotations)?, rs)))
            .collect();
        owned.sort_by_key(|(r, _)| std::cmp::Reverse(*r));
        let Some((_, prev)) = owned.into_iter().nth(1) else {
            return Ok(false);
        };
        let Some(mut template) = prev.spec.template else {
            return Ok(false);
        };
        if let Some(l) = template.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
            l.remove("pod-template-hash");
        }
        let patch = serde_json::json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": { "name": name },
            "spec": { "template": template },
        });
        let pp = PatchParams::apply(FIELD_MANAGER).force();
        let patch = Patch::Apply(&patch);
        self.retry(&format!("roll back deployment/{name}"), progress, || {
            dapi.patch(name, &pp, &patch)
        })
        .await?;
        Ok(true)
    }

    /// Apply, prune, then watch every Deployment; roll back a failed one when asked.
    pub async fn deploy(
        &self,
        objects: &[Object],
        stack: &tug_spec::Stack,
        progress: &mut impl FnMut(Progress),
    ) -> Result<(), DeployError> {
        self.check_namespace().await?;
        self.apply(objects, false, progress).await?;
        self.prune(objects, progress).await?;
        for o in objects {
            let Object::Deployment(_) = o else { continue };
            let name = o.name();
            let update = stack
                .services
                .get(name)
                .map(|s| s.update.clone())
                .unwrap_or_default();
            let timeout = update.health_timeout.std() + Duration::from_secs(30);
            if let Err(reason) = self.watch_rollout(name, timeout, progress).await {
                let mut rolled_back = false;
                if update.auto_rollback {
                    progress(Progress::RollingBack {
                        deployment: name.to_string(),
                        reason: reason.clone(),
                    });
                    rolled_back = self.rollback(name, progress).await?;
                }
                return Err(DeployError::RolloutFailed {
                    name: name.to_string(),
                    reason,
                    rolled_back,
                });
            }
        }
        Ok(())
    }

    /// What applying would change: a server-side dry run compared with the live objects.
    pub async fn diff(
        &self,
        objects: &[Object],
        progress: &mut impl FnMut(Progress),
    ) -> Result<Vec<Change>, DeployError> {
        self.check_namespace().await?;
        let mut out = Vec::new();
        for o in objects {
            let api = self.api(o);
            let live = self
                .retry(&format!("read {}", o.id()), progress, || {
                    api.get_opt(o.name())
                })
                .await?;
            let dry = self.apply(std::slice::from_ref(o), true, progress).await?;
            let action = match (live, dry.first()) {
                (None, _) => "create",
                (Some(l), Some(d)) if strip(&l) == strip(d) => "unchanged",
                _ => "update",
            };
            out.push(Change {
                object: o.id(),
                action,
            });
        }
        for (kind, _) in self.stale(objects, progress).await? {
            out.push(Change {
                object: kind.id(),
                action: "prune",
            });
        }
        Ok(out)
    }

    /// Deletes every object of the stack (`tug down --kube`).
    pub async fn down(
        &self,
        progress: &mut impl FnMut(Progress),
    ) -> Result<Vec<String>, DeployError> {
        self.check_namespace().await?;
        self.prune(&[], progress).await
    }

    /// The stack's Deployments as the cluster reports them.
    pub async fn status(
        &self,
        progress: &mut impl FnMut(Progress),
    ) -> Result<Vec<DeploymentStatus>, DeployError> {
        self.check_namespace().await?;
        let api: Api<Deployment> = Api::namespaced(self.client.clone(), &self.namespace);
        let lp = ListParams::default().labels(&labels::stack_selector(&self.stack));
        let list = self
            .retry("list deployments", progress, || api.list(&lp))
            .await?;
        Ok(list
            .items
            .iter()
            .map(|d| {
                let st = d.status.clone().unwrap_or_default();
                DeploymentStatus {
                    name: d.metadata.name.clone().unwrap_or_default(),
                    desired: d.spec.replicas.unwrap_or(1),
                    ready: st.ready_replicas.unwrap_or(0),
                    updated: st.updated_replicas.unwrap_or(0),
                    available: st.available_replicas.unwrap_or(0),
                    image: d
                        .spec
                        .template
                        .spec
                        .as_ref()
                        .and_then(|p| p.containers.first())
                        .and_then(|c| c.image.clone())
                        .unwrap_or_default(),
                }
            })
            .collect())
    }
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct DeploymentStatus {
    pub name: String,
    pub desired: i32,
    pub ready: i32,
    pub updated: i32,
    pub available: i32,
    pub image: String,
}

/// An object of `kind` named `name`, enough to address it.
fn stub(kind: &str, name: &str) -> Object {
    Object::from_value(serde_json::json!({
        "apiVersion": Object::all_kinds().iter().find(|a| a.kind == kind).map(|a| a.api_version.clone()).unwrap_or_default(),
        "kind": kind,
        "metadata": { "name": name },
        // Deployment's spec is required by the type; its content does not matter here.
        "spec": { "selector": {}, "template": {} },
    }))
    .unwrap_or_else(|_| {
        Object::from_value(serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}}))
            .expect("a ConfigMap with a name always parses")
    })
}

fn revision(a: &Option<std::collections::BTreeMap<String, String>>) -> Option<i64> {
    a.as_ref()?
        .get("deployment.kubernetes.io/revision")?
        .parse()
        .ok()
}

/// The parts of an object that say what it is, not when it was written.
fn strip(o: &DynamicObject) -> serde_json::Value {
    let mut v = serde_json::to_value(o).unwrap_or_default();
    if let Some(m) = v.get_mut("metadata").and_then(|m| m.as_object_mut()) {
        for k in [
            "resourceVersion",
            "managedFields",
            "generation",
            "creationTimestamp",
            "uid",
        ] {
            m.remove(k);
        }
    }
    if let Some(m) = v.as_object_mut() {
        m.remove("status");
    }
    v
}

/// Some(()) when the rollout is complete, Err when it can no longer complete.
fn rollout_state(
    d: &Deployment,
    last: &mut Option<(i32, i32, i32)>,
    progress: &mut impl FnMut(Progress),
) -> Result<Option<()>, String> {
    let name = d.metadata.name.clone().unwrap_or_default();
    let desired = d.spec.replicas.unwrap_or(1);
    let st = d.status.clone().unwrap_or_default();
    if st.conditions.iter().flatten().any(|c| {
        c.type_.as_deref() == Some("Progressing")
            && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
    }) {
        return Err(format!(
            "progress deadline exceeded ({} of {desired} updated replicas available)",
            st.available_replicas.unwrap_or(0)
        ));
    }
    let observed = st.observed_generation.unwrap_or(0) >= d.metadata.generation.unwrap_or(0);
    let (updated, available, total) = (
        st.updated_replicas.unwrap_or(0),
        st.available_replicas.unwrap_or(0),
        st.replicas.unwrap_or(0),
    );
    let now = (updated, available, total);
    if *last != Some(now) {
        *last = Some(now);
        progress(Progress::Rollout {
            deployment: name.clone(),
            updated,
            available,
            desired,
        });
    }
    if observed && updated == desired && available == desired && total == desired {
        progress(Progress::RolledOut { deployment: name });
        return Ok(Some(()));
    }
    Ok(None)
}
