//! `tug up --dry-run`: the plan `up` would apply, per replica and with the
//! reason, computed with read-only engine calls (list, inspect): nothing is
//! built, pulled, created or removed.
//!
//! Images: an `image:` service is looked up locally (one missing would be
//! pulled, so its replicas' fate is decided after the pull); a service built
//! from source is assumed to rebuild to the image its replicas run now
//! (the builder is reproducible: unchanged sources give the same image), and
//! says so in `notes`.

use crate::plan::{self, RemoveReason, RolloutStep};
use crate::render::{self, ResolvedImage};
use crate::{observe, EngineError};
use serde::Serialize;
use std::collections::BTreeMap;
use tug_runtime::Runtime;
use tug_spec::{Stack, UpdateOrder};

/// What `up` would do to one replica.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Create,
    Replace,
    Remove,
    Start,
    /// Stopped and kept: its service goes idle at zero (`autoscale.min: 0`).
    Stop,
    Keep,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ReplicaChange {
    pub service: String,
    /// None for a container whose replica label is missing or bad.
    pub replica: Option<u32>,
    pub action: Action,
    pub reason: String,
}

/// The whole preview.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Preview {
    pub stack: String,
    /// True when `up` would change anything.
    pub changes: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub create_network: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub create_volumes: Vec<String>,
    pub replicas: Vec<ReplicaChange>,
    /// Per service with replacements: the rolling steps, in order.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub rollouts: BTreeMap<String, Vec<Step>>,
    /// What the preview assumed (images not present, builds).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Step {
    pub stop_first: Vec<u32>,
    pub start: Vec<u32>,
    pub stop_after: Vec<u32>,
}

impl From<RolloutStep> for Step {
    fn from(s: RolloutStep) -> Self {
        Step {
            stop_first: s.stop_first,
            start: s.start,
            stop_after: s.stop_after,
        }
    }
}

/// Computes the preview. Read-only: only lists and inspects.
pub async fn preview<R: Runtime>(rt: &R, stack: &Stack) -> Result<Preview, EngineError> {
    let (observed, containers) = observe(rt, &stack.name).await?;
    let mut notes = Vec::new();
    let mut hashes = BTreeMap::new();
    // Services whose image is unknown until `up` pulls or builds it.
    let mut undecided: BTreeMap<String, String> = BTreeMap::new();
    for (name, s) in &stack.services {
        let running_ref = containers
            .iter()
            .find(|c| c.label(tug_runtime::labels::SERVICE) == Some(name.as_str()))
            .map(|c| c.image.clone());
        let reference = match (&s.build, &s.image) {
            (None, Some(i)) => Some(i.clone()),
            (Some(_), _) => {
                match &running_ref {
                    Some(r) => notes.push(format!(
                        "{name}: built from source at `up`; assumed to rebuild to the image its replicas run ({r})"
                    )),
                    None => notes.push(format!("{name}: built from source at `up`")),
                }
                running_ref.clone()
            }
            (None, None) => None,
        };
        let info = match &reference {
            Some(r) => rt.inspect_image(r).await?,
            None => None,
        };
        match (reference, info) {
            (Some(reference), Some(info)) => {
                let img = ResolvedImage {
                    reference,
                    id: info.id,
                    user: info.user,
                };
                hashes.insert(
                    name.clone(),
                    render::config_hash(&stack.name, name, s, &img),
                );
            }
            (reference, _) => {
                let why = match (&s.build, reference) {
                    (Some(_), _) => "the image is built first".to_string(),
                    (None, Some(r)) => {
                        format!("image {r} is not present locally and is pulled first")
                    }
                    (None, None) => "the service names no image".to_string(),
                };
                undecided.insert(name.clone(), why);
                // A hash no container has: every replica counts as changed.
                hashes.insert(name.clone(), String::new());
            }
        }
    }
    let desired = render::desired(stack, &hashes);
    let p = plan::plan(&desired, &observed);
    let mut out = Preview {
        stack: stack.name.clone(),
        changes: !p.is_empty(),
        create_network: p.create_network.clone(),
        create_volumes: p.create_volumes.clone(),
        notes,
        ..Preview::default()
    };
    let hash_of = |id: &str| {
        observed
            .containers
            .iter()
            .find(|c| c.id == id)
            .map(|c| c.hash.clone())
            .unwrap_or_default()
    };
    let ref_of = |id: &str| {
        containers
            .iter()
            .find(|c| c.id == id)
            .map(|c| c.image.clone())
            .unwrap_or_default()
    };
    for r in &p.remove {
        let reason = match r.reason {
            RemoveReason::Orphan => "the service is no longer in tug.yaml".to_string(),
            RemoveReason::ScaledDown => match stack.services.get(&r.service) {
                Some(s) if r.replica.is_some() => format!("scale: replicas is {}", s.replicas),
                _ => "no valid replica label".to_string(),
            },
            RemoveReason::Duplicate => "another container holds the same replica".to_string(),
            RemoveReason::Outdated => "outdated".to_string(),
            RemoveReason::Dead => "dead".to_string(),
        };
        out.replicas.push(ReplicaChange {
            service: r.service.clone(),
            replica: r.replica,
            action: Action::Remove,
            reason,
        });
    }
    for r in &p.idle {
        out.replicas.push(ReplicaChange {
            service: r.service.clone(),
            replica: r.replica,
            action: Action::Stop,
            reason: "idle: replicas is 0 (autoscale min 0); kept stopped for the next wake"
                .to_string(),
        });
    }
    for (name, s) in &stack.services {
        let sp = p.services.get(name);
        let mut replaced = Vec::new();
        // Idle at zero and already stopped: its kept replica says so.
        if desired.services[name].keep_idle && s.replicas == 0 {
            let settled = observed.containers.iter().find(|c| {
                c.service == *name
                    && c.replica == Some(0)
                    && !p.idle.iter().any(|r| r.id == c.id)
                    && !p.remove.iter().any(|r| r.id == c.id)
            });
            if settled.is_some() {
                out.replicas.push(ReplicaChange {
                    service: name.clone(),
                    replica: Some(0),
                    action: Action::Keep,
                    reason: "idle: kept stopped for the next wake".to_string(),
                });
            }
        }
        for i in 0..s.replicas {
            let change = |action, reason: String| ReplicaChange {
                service: name.clone(),
                replica: Some(i),
                action,
                reason,
            };
            let Some(sp) = sp else {
                out.replicas.push(change(Action::Keep, "up to date".into()));
                continue;
            };
            let old = sp.replace.iter().find(|r| r.replica == Some(i));
            if let Some(old) = old {
                let reason = if let Some(why) = undecided.get(name) {
                    format!("decided after the image: {why}")
                } else if old.reason == RemoveReason::Dead {
                    "the container is dead".to_string()
                } else {
                    let (from, to) = (ref_of(&old.id), s.image.clone().unwrap_or_default());
                    if s.build.is_none() && !from.is_empty() && from != to {
                        format!("image changed: {from} → {to}")
                    } else {
                        format!(
                            "config hash changed: {} → {}",
                            hash_of(&old.id),
                            hashes[name]
                        )
                    }
                };
                if old.reason == RemoveReason::Outdated {
                    replaced.push(i);
                }
                out.replicas.push(change(Action::Replace, reason));
            } else if sp.create.contains(&i) {
                let reason = match undecided.get(name) {
                    Some(why) => format!("missing ({why})"),
                    None => "missing".to_string(),
                };
                out.replicas.push(change(Action::Create, reason));
            } else if !sp.start.is_empty()
                && observed
                    .containers
                    .iter()
                    .any(|c| c.service == *name && c.replica == Some(i) && sp.start.contains(&c.id))
            {
                out.replicas.push(change(Action::Start, "stopped".into()));
            } else {
                out.replicas.push(change(Action::Keep, "up to date".into()));
            }
        }
        if !replaced.is_empty() {
            let u = &s.update;
            let stop_first = u.order == UpdateOrder::StopFirst || s.publish.is_some();
            out.rollouts.insert(
                name.clone(),
                plan::rollout_steps(&replaced, u.max_surge, u.max_unavailable, stop_first)
                    .into_iter()
                    .map(Step::from)
                    .collect(),
            );
        }
    }
    Ok(out)
}
