//! Applying a plan with health gates, and tearing a stack down.

use crate::event::{Event, Sink};
use crate::plan::{self, Desired, Observed, ObservedContainer, Plan, Removal};
use crate::render::{self, ResolvedImage};
use crate::{health, images, EngineError};
use futures_util::future::{join_all, BoxFuture};
use futures_util::StreamExt;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tug_runtime::{labels, stack_filter, ContainerInfo, ContainerState, EngineHealth, Runtime};
use tug_spec::{Condition, Probe, RestartPolicy, Stack, UpdateOrder};

#[derive(Clone)]
pub struct UpOptions {
    /// How long one service may take to turn healthy once started.
    pub timeout: Duration,
    /// Asked before a running replica is stopped on purpose.
    pub drain: Arc<dyn Drain>,
}

impl Default for UpOptions {
    fn default() -> Self {
        UpOptions {
            timeout: Duration::from_secs(120),
            drain: Arc::new(NoDrain),
        }
    }
}

impl std::fmt::Debug for UpOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpOptions")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// The hook apply calls before it stops a running replica that may serve
/// traffic: a rollout retiring an old replica, a scale down, a service gone
/// from tug.yaml, a duplicate, `restart`, `stop` and `down`. A load balancer
/// takes the replica out of its pool there and returns once the requests in
/// flight are done; apply stops the replica when the future completes.
///
/// Apply puts no deadline on the future: an implementation bounds its own
/// wait (the service's `stop_grace_period` is a fair bound). Replicas that
/// are already dead, or were never started, are not drained. Calls for
/// different replicas may run at the same time.
pub trait Drain: Send + Sync {
    /// `name` is the replica's container name, as the gateway's pools and
    /// `tug ps` know it.
    fn retire<'a>(&'a self, service: &'a str, replica: u32, name: &'a str) -> BoxFuture<'a, ()>;
}

/// The default [`Drain`]: nothing routes traffic, so nothing waits.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoDrain;

impl Drain for NoDrain {
    fn retire<'a>(&'a self, _: &'a str, _: u32, _: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(std::future::ready(()))
    }
}

/// A replica about to be stopped.
struct Stopping<'a> {
    service: &'a str,
    /// From the container's label; `None` when the label is missing or bad.
    replica: Option<u32>,
    running: bool,
    id: &'a str,
    name: &'a str,
}

impl<'a> From<&'a Removal> for Stopping<'a> {
    fn from(r: &'a Removal) -> Self {
        Stopping {
            service: &r.service,
            replica: r.replica,
            running: r.running,
            id: &r.id,
            name: &r.name,
        }
    }
}

/// Drains a running replica (see [`Drain`]), then stops it.
async fn retire_stop<R: Runtime>(
    rt: &R,
    drain: &dyn Drain,
    r: Stopping<'_>,
    grace: Duration,
) -> Result<(), EngineError> {
    if let (true, Some(replica)) = (r.running, r.replica) {
        drain.retire(r.service, replica, r.name).await;
    }
    rt.stop_container(r.id, grace).await?;
    Ok(())
}

#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct UpReport {
    /// The image each service runs.
    pub images: BTreeMap<String, String>,
    pub created: usize,
    pub started: usize,
    pub removed: usize,
    pub up_to_date: bool,
}

/// Reads the stack's state back from the engine's labels.
#[tracing::instrument(name = "observe", level = "info", skip_all, fields(stack = %stack))]
pub async fn observe<R: Runtime>(
    rt: &R,
    stack: &str,
) -> Result<(Observed, Vec<ContainerInfo>), EngineError> {
    let filter = stack_filter(stack);
    let containers = rt.list_containers(&filter).await?;
    let networks = rt.list_networks(&filter).await?;
    let volumes = rt.list_volumes(&filter).await?;
    let observed = Observed {
        network_exists: networks.contains(&render::network_name(stack)),
        volumes,
        containers: containers
            .iter()
            .map(|c| ObservedContainer {
                id: c.id.clone(),
                name: c.name.clone(),
                service: c.label(labels::SERVICE).unwrap_or("").to_string(),
                replica: c.label(labels::REPLICA).and_then(|r| r.parse().ok()),
                hash: c.label(labels::CONFIG_HASH).unwrap_or("").to_string(),
                state: c.state,
                exit_code: c.exit_code,
                created: c.created,
            })
            .collect(),
    };
    Ok((observed, containers))
}

/// Where a service is on its way up; ordered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Reached {
    Pending,
    Started,
    Healthy,
    Completed,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Status {
    At(Reached),
    Failed,
}

fn satisfies(status: &Status, condition: Condition) -> Option<bool> {
    match status {
        Status::Failed => None,
        Status::At(r) => Some(match condition {
            Condition::Started => *r >= Reached::Started,
            Condition::Healthy => *r >= Reached::Healthy,
            Condition::Completed => *r == Reached::Completed,
        }),
    }
}

/// Converges the stack. See the crate docs for the contract. Publishes
/// `Converging` first and `Converged` last, whatever happens between.
#[tracing::instrument(name = "up", level = "info", skip_all, fields(stack = %stack.name))]
pub async fn up<R: Runtime>(
    rt: &R,
    stack: &Stack,
    opts: &UpOptions,
    events: Sink<'_>,
) -> Result<UpReport, EngineError> {
    events(Event::Converging {
        stack: stack.name.clone(),
    });
    let result = match converge(rt, stack, opts, events).await {
        Err(e) => Err(explain(stack, e).await),
        ok => ok,
    };
    events(Event::Converged {
        stack: stack.name.clone(),
        ok: result.is_ok(),
    });
    result
}

async fn converge<R: Runtime>(
    rt: &R,
    stack: &Stack,
    opts: &UpOptions,
    events: Sink<'_>,
) -> Result<UpReport, EngineError> {
    sweep_helpers(rt, &stack.name).await?;
    // Images first, all services at once.
    let resolved = join_all(
        stack
            .services
            .keys()
            .map(|name| images::resolve(rt, stack, name, events)),
    )
    .await;
    let mut images_by_service = BTreeMap::new();
    let mut first_error = None;
    for (name, r) in stack.services.keys().zip(resolved) {
        match r {
            Ok(i) => {
                images_by_service.insert(name.clone(), i);
            }
            Err(e) => {
                events(Event::ServiceFailed {
                    service: name.clone(),
                    reason: failure_reason(&e),
                });
                first_error.get_or_insert(e);
            }
        }
    }
    if let Some(e) = first_error {
        return Err(e);
    }
    let hashes: BTreeMap<String, String> = stack
        .services
        .iter()
        .map(|(n, s)| {
            (
                n.clone(),
                render::config_hash(&stack.name, n, s, &images_by_service[n]),
            )
        })
        .collect();
    let desired = render::desired(stack, &hashes);
    let refs: BTreeMap<String, String> = images_by_service
        .iter()
        .map(|(n, i)| (n.clone(), i.reference.clone()))
        .collect();
    let (observed, _) = observe(rt, &stack.name).await?;
    let plan = plan::plan(&desired, &observed);
    if plan.is_empty() {
        events(Event::UpToDate {
            stack: stack.name.clone(),
        });
        return Ok(UpReport {
            images: refs,
            up_to_date: true,
            ..UpReport::default()
        });
    }
    let mut report = apply(
        rt,
        stack,
        &desired,
        &observed,
        &plan,
        &images_by_service,
        opts,
        events,
    )
    .await?;
    report.images = refs;
    Ok(report)
}

/// What a replica's last log lines say about the hardened defaults: the
/// default at fault, and the tug.yaml key that loosens it.
fn hardening_cause(
    logs: &[String],
) -> Option<(&'static str, &'static [&'static str], &'static str)> {
    let text = logs.join("\n").to_lowercase();
    if text.contains("read-only file system") {
        Some((
            "the root filesystem is read-only by default (write to /tmp or a volume)",
            &["security", "read_only"],
            "security: { read_only: false }",
        ))
    } else if text.contains("chown") && (text.contains("not permitted") || text.contains("failed"))
    {
        Some((
            "all capabilities are dropped by default, CHOWN included",
            &["security", "cap_add"],
            "security: { cap_add: [CHOWN] }",
        ))
    } else if text.contains("operation not permitted") {
        Some((
            "all capabilities are dropped and no-new-privileges is set by default",
            &["security", "cap_add"],
            "security: { cap_add: [THE_CAPABILITY] }",
        ))
    } else if text.contains("permission denied") {
        Some((
            "the container runs as a non-root user by default (the image's, else 65534:65534)",
            &["security", "user"],
            "security: { user: \"0\" }",
        ))
    } else {
        None
    }
}

/// Adds a hint to a failed replica's error when its last log lines show a
/// hardened default at work: the default, and where in tug.yaml to loosen it.
async fn explain(stack: &Stack, e: EngineError) -> EngineError {
    let EngineError::ServiceFailed {
        service,
        reason,
        logs,
        probe,
    } = e
    else {
        return e;
    };
    let Some((default, key, fix)) = hardening_cause(&logs) else {
        return EngineError::ServiceFailed {
            service,
            reason,
            logs,
            probe,
        };
    };
    let text = tokio::fs::read_to_string(&stack.file)
        .await
        .unwrap_or_default();
    let mut path = vec!["services", service.as_str()];
    path.extend_from_slice(key);
    let (line, col) = tug_spec::locate(&text, &path);
    let reason = format!(
        "{reason}\nhint: {default}; to loosen it, set `{fix}` for service `{service}` ({}:{line}:{col})",
        stack.file.display()
    );
    EngineError::ServiceFailed {
        service,
        reason,
        logs,
        probe,
    }
}

/// The ids of each service's user that tug writes for (volume roots,
/// secrets), for the services that need them: numeric users as written,
/// names resolved from the image's /etc/passwd and /etc/group. `None`:
/// root, or a runtime without images.
async fn service_owners<R: Runtime>(
    rt: &R,
    stack: &Stack,
    images: &BTreeMap<String, ResolvedImage>,
) -> Result<BTreeMap<String, Option<(u32, u32)>>, EngineError> {
    let mut out = BTreeMap::new();
    for (name, s) in &stack.services {
        let needs = !s.secrets.is_empty()
            || s.configs.iter().any(|c| c.has_owner_or_mode())
            || s.volumes
                .iter()
                .any(|m| !m.read_only && matches!(m.source, tug_spec::MountSource::Volume(_)));
        let Some(image) = images.get(name).filter(|_| needs) else {
            continue;
        };
        let user = render::effective_user(s, &image.user);
        let ids = match crate::users::numeric(&user) {
            Some(ids) => ids,
            None if rt.kind() != tug_runtime::RuntimeKind::Container => {
                out.insert(name.clone(), None);
                continue;
            }
            None => {
                let files = rt
                    .read_image_files(
                        &image.reference,
                        &["/etc/passwd", "/etc/group"],
                        &stack.name,
                    )
                    .await?;
                crate::users::resolve(
                    &user,
                    files.get("/etc/passwd").map(Vec::as_slice),
                    files.get("/etc/group").map(Vec::as_slice),
                )
                .map_err(|cause| EngineError::UnknownUser {
                    service: name.clone(),
                    user: user.clone(),
                    image: image.reference.clone(),
                    cause,
                })?
            }
        };
        out.insert(name.clone(), Some(ids).filter(|(uid, _)| *uid != 0));
    }
    Ok(out)
}

/// Who should own a new volume: the user of the first service (by name)
/// that mounts it writable and runs as a non-root user, the way compose
/// users expect a volume to be writable by the service.
fn volume_owner(
    stack: &Stack,
    images: &BTreeMap<String, ResolvedImage>,
    owners: &BTreeMap<String, Option<(u32, u32)>>,
    volume: &str,
) -> Option<tug_runtime::Owner> {
    stack.services.iter().find_map(|(name, s)| {
        let image = images.get(name)?;
        s.volumes
            .iter()
            .any(|m| {
                !m.read_only
                    && matches!(&m.source, tug_spec::MountSource::Volume(v)
                        if render::volume_name(&stack.name, v) == volume)
            })
            .then(|| owners.get(name).copied().flatten())
            .flatten()
            .map(|(uid, gid)| tug_runtime::Owner {
                uid,
                gid,
                image: image.reference.clone(),
                stack: stack.name.clone(),
            })
    })
}

/// Writes the copies of each service's secrets (and of its configs given
/// an owner or a mode) where its containers mount them
/// ([`render::file_copy`]). A secret is the service user's, mode 0400, as
/// compose does (a user tug cannot resolve, or root, gets root's, mode
/// 0444); `uid`, `gid` and `mode` in tug.yaml override that. A copied
/// config defaults to the service user's, mode 0444.
async fn write_secrets<R: Runtime>(
    rt: &R,
    stack: &Stack,
    images: &BTreeMap<String, ResolvedImage>,
    owners: &BTreeMap<String, Option<(u32, u32)>>,
) -> Result<(), EngineError> {
    for (name, s) in &stack.services {
        let Some(image) = images.get(name) else {
            continue;
        };
        let user = owners.get(name).copied().flatten();
        let mounts = s
            .secrets
            .iter()
            .enumerate()
            .map(|(i, f)| (true, i, f, stack.secrets.get(&f.source)))
            .chain(
                s.configs
                    .iter()
                    .enumerate()
                    .filter(|(_, f)| f.has_owner_or_mode())
                    .map(|(i, f)| (false, i, f, stack.configs.get(&f.source))),
            );
        // One write per directory and owner: Podman takes the owner from
        // the helper's user, not from the archive.
        let mut writes: BTreeMap<(std::path::PathBuf, u32, u32), Vec<tug_runtime::FileSpec>> =
            BTreeMap::new();
        for (secret, i, f, file) in mounts {
            let Some(file) = file else { continue };
            let content =
                tokio::fs::read(&file.file)
                    .await
                    .map_err(|source| EngineError::Secret {
                        name: f.source.clone(),
                        path: file.file.clone(),
                        source,
                    })?;
            let (uid, gid) = user.unwrap_or((0, 0));
            let default_mode = if secret && user.is_some() {
                0o400
            } else {
                0o444
            };
            let (dir, file_name) = render::file_copy(&stack.name, name, secret, i, f);
            writes
                .entry((dir, f.uid.unwrap_or(uid), f.gid.unwrap_or(gid)))
                .or_default()
                .push(tug_runtime::FileSpec {
                    name: file_name,
                    content,
                    mode: f.mode.unwrap_or(default_mode),
                });
        }
        for ((dir, uid, gid), files) in writes {
            let owner = tug_runtime::Owner {
                uid,
                gid,
                image: image.reference.clone(),
                stack: stack.name.clone(),
            };
            rt.write_files(&dir, &files, &owner).await?;
        }
    }
    Ok(())
}

/// The first line of why a service failed, for its `ServiceFailed` event.
fn failure_reason(e: &EngineError) -> String {
    match e {
        EngineError::ServiceFailed { reason, .. } => reason.clone(),
        other => other.to_string().lines().next().unwrap_or("").to_string(),
    }
}

#[allow(clippy::too_many_arguments)]
#[tracing::instrument(name = "apply", level = "info", skip_all, fields(stack = %stack.name, remove = plan.remove.len()))]
async fn apply<R: Runtime>(
    rt: &R,
    stack: &Stack,
    desired: &Desired,
    observed: &Observed,
    plan: &Plan,
    images: &BTreeMap<String, ResolvedImage>,
    opts: &UpOptions,
    events: Sink<'_>,
) -> Result<UpReport, EngineError> {
    let labels = render::stack_labels(&stack.name);
    if let Some(net) = &plan.create_network {
        rt.create_network(net, &labels).await?;
        events(Event::NetworkCreated { name: net.clone() });
    }
    let owners = service_owners(rt, stack, images).await?;
    for v in &plan.create_volumes {
        let owner = volume_owner(stack, images, &owners, v);
        rt.create_volume(v, &labels, owner.as_ref()).await?;
        events(Event::VolumeCreated { name: v.clone() });
    }
    write_secrets(rt, stack, images, &owners).await?;
    let grace = |service: &str| {
        stack
            .services
            .get(service)
            .map(|s| s.stop_grace_period.std())
            .unwrap_or(Duration::from_secs(10))
    };
    join_all(
        plan.remove
            .iter()
            .map(|r| remove(rt, &*opts.drain, r, grace(&r.service), events)),
    )
    .await
    .into_iter()
    .collect::<Result<Vec<()>, _>>()?;
    // Going idle at zero: stopped, kept for the next wake (which then
    // only starts it).
    join_all(plan.idle.iter().map(|r| async move {
        tracing::info!(service = %r.service, container = %r.name, "idle: stopping the replica, kept for the next wake");
        retire_stop(rt, &*opts.drain, r.into(), grace(&r.service)).await
    }))
    .await
    .into_iter()
    .collect::<Result<Vec<()>, _>>()?;

    let initial: BTreeMap<String, Status> = stack
        .services
        .keys()
        .map(|n| (n.clone(), Status::At(Reached::Pending)))
        .collect();
    let (tx, rx) = watch::channel(initial);
    let run = |name: String| {
        let tx = &tx;
        let mut rx = rx.clone();
        async move {
            let result = async {
                let svc = &stack.services[&name];
                for (dep, cond) in &svc.depends_on {
                    events(Event::Waiting {
                        service: name.clone(),
                        on: dep.clone(),
                        condition: format!("{cond:?}").to_lowercase(),
                    });
                    let ok = rx
                        .wait_for(|m| satisfies(&m[dep], *cond).is_none_or(|b| b))
                        .await
                        .map(|m| satisfies(&m[dep], *cond));
                    if !matches!(ok, Ok(Some(true))) {
                        return Err(None);
                    }
                }
                service_up(
                    rt,
                    stack,
                    &name,
                    desired,
                    observed,
                    plan,
                    images,
                    opts,
                    events,
                    |r| {
                        tx.send_modify(|m| {
                            m.insert(name.clone(), Status::At(r));
                        })
                    },
                )
                .await
                .map_err(Some)
            }
            .await;
            if let Err(e) = &result {
                tx.send_modify(|m| {
                    m.insert(name.clone(), Status::Failed);
                });
                if let Some(e) = e {
                    events(Event::ServiceFailed {
                        service: name.clone(),
                        reason: failure_reason(e),
                    });
                }
            }
            (name, result)
        }
    };
    let results = join_all(stack.services.keys().cloned().map(run)).await;
    let mut report = UpReport {
        removed: plan.remove.len(),
        ..UpReport::default()
    };
    let mut first_error = None;
    for (_, r) in results {
        match r {
            Ok((created, started)) => {
                report.created += created;
                report.started += started;
            }
            Err(Some(e)) => {
                first_error.get_or_insert(e);
            }
            Err(None) => {}
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(report),
    }
}

#[tracing::instrument(name = "remove", level = "info", skip_all, fields(service = %r.service, container = %r.name))]
async fn remove<R: Runtime>(
    rt: &R,
    drain: &dyn Drain,
    r: &Removal,
    grace: Duration,
    events: Sink<'_>,
) -> Result<(), EngineError> {
    events(Event::Removing {
        service: r.service.clone(),
        container: r.name.clone(),
        reason: r.reason,
    });
    retire_stop(rt, drain, r.into(), grace).await?;
    rt.remove_container(&r.id).await?;
    Ok(())
}

/// Brings one service's replicas up and waits until they reach its target.
///
/// Replicas whose configuration changed are replaced in steps: each step
/// starts up to `max_surge` new replicas and stops up to `max_unavailable`
/// old ones, waits for the new ones to turn healthy, then stops the old ones
/// of that step. Old containers are only stopped until the whole service is
/// through, so a failed step puts them back (auto rollback) at once.
#[allow(clippy::too_many_arguments)]
#[tracing::instrument(name = "service", level = "info", skip_all, fields(service = %name))]
async fn service_up<R: Runtime>(
    rt: &R,
    stack: &Stack,
    name: &str,
    desired: &Desired,
    observed: &Observed,
    plan: &Plan,
    images: &BTreeMap<String, ResolvedImage>,
    opts: &UpOptions,
    events: Sink<'_>,
    reached: impl Fn(Reached),
) -> Result<(usize, usize), EngineError> {
    let svc = &stack.services[name];
    let want = &desired.services[name];
    let empty = plan::ServicePlan::default();
    let sp = plan.services.get(name).unwrap_or(&empty);
    let grace = svc.stop_grace_period.std();
    let replica_of = |id: &str| {
        observed
            .containers
            .iter()
            .find(|c| c.id == id)
            .and_then(|c| c.replica)
    };

    // Dead containers go at once; outdated running ones are rolled. An
    // outdated replica still running beside a current one (a run was
    // interrupted mid-rollout) serves until the current one passes its
    // gate: resuming never lowers capacity, whichever way it goes.
    let mut outdated: BTreeMap<u32, Vec<Removal>> = BTreeMap::new();
    let mut superseded: Vec<&Removal> = Vec::new();
    for r in &sp.replace {
        match (r.reason, replica_of(&r.id)) {
            (plan::RemoveReason::Outdated, Some(i)) if sp.create.contains(&i) => {
                outdated.entry(i).or_default().push(r.clone())
            }
            (plan::RemoveReason::Outdated, Some(_)) if r.running && svc.publish.is_none() => {
                superseded.push(r)
            }
            _ => remove(rt, &*opts.drain, r, grace, events).await?,
        }
    }
    let mut started = 0;
    let mut created = 0;
    let mut fresh: Vec<String> = Vec::new();
    for id in &sp.start {
        // The plan only starts containers with a valid replica label.
        let Some(replica) = replica_of(id) else {
            continue;
        };
        start(rt, name, replica, id, events).await?;
        started += 1;
        fresh.push(id.clone());
    }
    for &i in sp.create.iter().filter(|i| !outdated.contains_key(i)) {
        fresh.push(create_start(rt, stack, name, i, &want.hash, &images[name], events).await?);
        created += 1;
        started += 1;
    }
    // The current replicas that take over from superseded ones are gated
    // too, even those that were already running.
    for r in &superseded {
        let i = r.replica;
        fresh.extend(
            observed
                .containers
                .iter()
                .filter(|c| c.service == name && c.replica == i && c.hash == want.hash)
                .filter(|c| c.state == ContainerState::Running && !fresh.contains(&c.id))
                .map(|c| c.id.clone())
                .collect::<Vec<_>>(),
        );
    }
    reached(Reached::Started);
    let mut level = gate(rt, stack, name, &fresh, opts, events).await?;
    for r in superseded {
        remove(rt, &*opts.drain, r, grace, events).await?;
    }

    let u = &svc.update;
    // A fixed host port cannot be held twice: such services replace stop-first.
    let stop_first = u.order == UpdateOrder::StopFirst || svc.publish.is_some();
    let rollout_opts = UpOptions {
        timeout: u.health_timeout.std(),
        drain: Arc::clone(&opts.drain),
    };
    let rolling: Vec<u32> = outdated.keys().copied().collect();
    let mut stopped: Vec<&Removal> = Vec::new();
    let mut new_ids: Vec<(u32, String, String)> = Vec::new();
    // Replicas the last step retired: they stop while the next step starts
    // its own (they are out of the gateway already).
    let mut retiring: Vec<&Removal> = Vec::new();
    for step in plan::rollout_steps(&rolling, u.max_surge, u.max_unavailable, stop_first) {
        for i in &step.stop_first {
            for r in &outdated[i] {
                retire_stop(rt, &*opts.drain, r.into(), grace).await?;
                stopped.push(r);
            }
        }
        let previous = std::mem::take(&mut retiring);
        let stop_previous = async {
            for r in &previous {
                retire_stop(rt, &*opts.drain, (*r).into(), grace).await?;
            }
            Ok::<(), EngineError>(())
        };
        let start = async {
            let mut fresh = Vec::new();
            let mut result = Ok(Reached::Healthy);
            for &i in &step.start {
                match create_start(rt, stack, name, i, &want.hash, &images[name], events).await {
                    Ok(id) => {
                        let replica = render::replica_name(&stack.name, name, i, &want.hash);
                        fresh.push((i, id, replica));
                    }
                    Err(e) => {
                        result = Err(e);
                        break;
                    }
                }
            }
            if result.is_ok() {
                let ids: Vec<String> = fresh.iter().map(|(_, id, _)| id.clone()).collect();
                result = gate(rt, stack, name, &ids, &rollout_opts, events).await;
            }
            (fresh, result)
        };
        let (stopped_previous, (fresh, result)) =
            futures_util::future::join(stop_previous, start).await;
        stopped.extend(previous);
        created += fresh.len();
        started += fresh.len();
        new_ids.extend(fresh);
        stopped_previous?;
        match result {
            Ok(l) => level = level.min(l),
            Err(e) if u.auto_rollback => {
                return Err(roll_back(
                    rt, opts, name, &new_ids, &stopped, &outdated, grace, e, events,
                )
                .await)
            }
            Err(e) => return Err(e),
        }
        for i in &step.stop_after {
            retiring.extend(&outdated[i]);
        }
    }
    for r in retiring {
        retire_stop(rt, &*opts.drain, r.into(), grace).await?;
        stopped.push(r);
    }
    for r in outdated.values().flatten() {
        // Stopped above already: nothing left to drain.
        let stopped = Removal {
            running: false,
            ..r.clone()
        };
        remove(rt, &*opts.drain, &stopped, grace, events).await?;
    }
    if sp.is_empty() {
        // Untouched service: its current replicas still gate its dependents.
        let (_, infos) = observe(rt, &stack.name).await?;
        let ids: Vec<String> = infos
            .into_iter()
            .filter(|c| {
                c.label(labels::SERVICE) == Some(name)
                    && c.label(labels::CONFIG_HASH) == Some(want.hash.as_str())
                    // A replica kept stopped while the service idles at zero
                    // is not one it runs.
                    && crate::agent::replica_of(c).is_ok_and(|r| r < want.replicas)
            })
            .map(|c| c.id)
            .collect();
        level = gate(rt, stack, name, &ids, opts, events).await?;
    }
    if svc.restart != RestartPolicy::No && level == Reached::Completed {
        level = Reached::Healthy;
    }
    reached(level);
    let state = match level {
        Reached::Completed => "completed",
        Reached::Healthy if svc.health.is_some() => "healthy",
        _ => "running",
    };
    events(Event::ServiceReady {
        service: name.into(),
        state: state.into(),
    });
    Ok((created, started))
}

/// Removes this rollout's new replicas and restarts the old ones.
#[allow(clippy::too_many_arguments)]
#[tracing::instrument(name = "rollback", level = "info", skip_all, fields(service = %name, new = new_ids.len()))]
async fn roll_back<R: Runtime>(
    rt: &R,
    opts: &UpOptions,
    name: &str,
    new_ids: &[(u32, String, String)],
    stopped: &[&Removal],
    outdated: &BTreeMap<u32, Vec<Removal>>,
    grace: Duration,
    cause: EngineError,
    events: Sink<'_>,
) -> EngineError {
    events(Event::RollingBack {
        service: name.into(),
        reason: cause.to_string().lines().next().unwrap_or("").to_string(),
    });
    let mut problems = Vec::new();
    for (replica, id, replica_name) in new_ids {
        let drain = &*opts.drain;
        let removed = async {
            let r = Stopping {
                service: name,
                replica: Some(*replica),
                running: true,
                id,
                name: replica_name,
            };
            retire_stop(rt, drain, r, grace).await?;
            rt.remove_container(id).await?;
            Ok::<(), EngineError>(())
        };
        if let Err(e) = removed.await {
            problems.push(e.to_string());
        }
    }
    for r in stopped {
        if let Err(e) = rt.start_container(&r.id).await {
            problems.push(format!("restarting {}: {e}", r.name));
        }
    }
    let kept = outdated.len();
    match cause {
        EngineError::ServiceFailed {
            service,
            reason,
            logs,
            probe,
        } => EngineError::ServiceFailed {
            service,
            reason: if problems.is_empty() {
                format!("{reason}; rolled back to the previous {kept} replica(s)")
            } else {
                format!("{reason}; rollback incomplete: {}", problems.join("; "))
            },
            logs,
            probe,
        },
        other => other,
    }
}

#[tracing::instrument(name = "start", level = "info", skip_all, fields(service = %name, replica))]
async fn start<R: Runtime>(
    rt: &R,
    name: &str,
    replica: u32,
    id: &str,
    events: Sink<'_>,
) -> Result<(), EngineError> {
    let fail = |reason: String| EngineError::ServiceFailed {
        service: name.into(),
        reason,
        logs: vec![],
        probe: None,
    };
    match rt.start_container(id).await {
        Ok(()) => {}
        Err(tug_runtime::RuntimeError::PortInUse { port, detail }) => {
            return Err(with_logs(rt, fail(format!("host port {port} is already in use (publish: {port}): free it or change `publish`\n{detail}")), id).await);
        }
        Err(e) => return Err(with_logs(rt, fail(e.to_string()), id).await),
    }
    events(Event::Started {
        service: name.into(),
        replica,
        container: id.to_string(),
    });
    Ok(())
}

/// Creates (or adopts, after an interrupted run) and starts one replica.
#[tracing::instrument(name = "create", level = "info", skip_all, fields(service = %name, replica))]
async fn create_start<R: Runtime>(
    rt: &R,
    stack: &Stack,
    name: &str,
    replica: u32,
    hash: &str,
    image: &ResolvedImage,
    events: Sink<'_>,
) -> Result<String, EngineError> {
    let fail = |reason: String| EngineError::ServiceFailed {
        service: name.into(),
        reason,
        logs: vec![],
        probe: None,
    };
    events(Event::Creating {
        service: name.into(),
        replica,
    });
    let mut spec = render::container_spec(stack, name, replica, hash, image);
    // A plain process runs as tug's user unless the spec names one.
    if rt.kind() == tug_runtime::RuntimeKind::Process
        && stack.services[name].security.user.is_none()
    {
        spec.user = None;
    }
    let id = match rt.create_container(&spec).await {
        Ok(id) => id,
        Err(tug_runtime::RuntimeError::Conflict(_)) => {
            match rt.inspect_container(&spec.name).await? {
                Some(c) => c.id,
                None => {
                    return Err(fail(format!(
                        "container {} vanished while being adopted",
                        spec.name
                    )))
                }
            }
        }
        Err(tug_runtime::RuntimeError::NotFound(what)) => {
            return Err(fail(format!("{what} not found")))
        }
        Err(e) => return Err(e.into()),
    };
    start(rt, name, replica, &id, events).await?;
    Ok(id)
}

/// Waits for the given replicas; the lowest level reached by all of them.
#[tracing::instrument(name = "health_gate", level = "info", skip_all, fields(service = %name, replicas = ids.len()))]
async fn gate<R: Runtime>(
    rt: &R,
    stack: &Stack,
    name: &str,
    ids: &[String],
    opts: &UpOptions,
    events: Sink<'_>,
) -> Result<Reached, EngineError> {
    let mut infos = Vec::new();
    for id in ids {
        if let Some(c) = rt.inspect_container(id).await? {
            infos.push(c);
        }
    }
    let results = join_all(
        infos
            .iter()
            .map(|c| wait_replica(rt, stack, name, c, opts, events)),
    )
    .await;
    let mut level = Reached::Completed;
    for r in results {
        level = level.min(r?);
    }
    Ok(level)
}

async fn with_logs<R: Runtime>(rt: &R, e: EngineError, id: &str) -> EngineError {
    match e {
        EngineError::ServiceFailed {
            service,
            reason,
            probe,
            ..
        } => {
            let logs = last_logs(rt, id, 15).await;
            EngineError::ServiceFailed {
                service,
                reason,
                logs,
                probe,
            }
        }
        other => other,
    }
}

async fn last_logs<R: Runtime>(rt: &R, id: &str, n: usize) -> Vec<String> {
    rt.logs(id, tug_runtime::LogOptions::new(Some(n), false))
        .filter_map(|l| async move { l.ok().map(|l| l.text) })
        .collect()
        .await
}

/// Waits for one replica: running, then healthy (or completed for one-shot services).
async fn wait_replica<R: Runtime>(
    rt: &R,
    stack: &Stack,
    name: &str,
    container: &ContainerInfo,
    opts: &UpOptions,
    events: Sink<'_>,
) -> Result<Reached, EngineError> {
    let svc = &stack.services[name];
    let replica =
        crate::agent::replica_of(container).map_err(|why| EngineError::ServiceFailed {
            service: name.into(),
            reason: why,
            logs: Vec::new(),
            probe: None,
        })?;
    let started = Instant::now();
    let deadline = started
        + opts.timeout
        + svc
            .health
            .as_ref()
            .map(|h| h.start_period.std())
            .unwrap_or_default();
    let probe = svc.health.as_ref().map(|h| h.probe());
    let initial_restarts = container.restart_count;
    let mut failures = 0u32;
    let mut last_probe: Option<String> = None;
    let mut next_probe = Instant::now();
    let mut last_counted: Option<Instant> = None;
    let fail = |reason: String, probe: Option<String>| async move {
        EngineError::ServiceFailed {
            service: name.into(),
            reason,
            logs: last_logs(rt, &container.id, 15).await,
            probe,
        }
    };
    loop {
        let Some(c) = rt.inspect_container(&container.id).await? else {
            return Err(fail(
                format!("replica {replica} ({}) disappeared", container.name),
                None,
            )
            .await);
        };
        match c.state {
            ContainerState::Exited | ContainerState::Dead => {
                let code = c.exit_code.unwrap_or(-1);
                if svc.restart == RestartPolicy::No && code == 0 {
                    return Ok(Reached::Completed);
                }
                if svc.restart == RestartPolicy::No
                    || svc.restart == RestartPolicy::OnFailure && code == 0
                {
                    return Err(fail(
                        format!("replica {replica} exited with code {code}"),
                        last_probe,
                    )
                    .await);
                }
                return Err(fail(
                    format!(
                        "replica {replica} exited with code {code}{}",
                        c.error.map(|e| format!(": {e}")).unwrap_or_default()
                    ),
                    last_probe,
                )
                .await);
            }
            ContainerState::Restarting => {
                return Err(fail(
                    format!(
                        "replica {replica} keeps exiting (code {}) and is being restarted",
                        c.exit_code.unwrap_or(-1)
                    ),
                    last_probe,
                )
                .await);
            }
            _ if c.restart_count > initial_restarts => {
                return Err(fail(
                    format!(
                        "replica {replica} exited (code {}) and was restarted",
                        c.exit_code.unwrap_or(-1)
                    ),
                    last_probe,
                )
                .await);
            }
            _ => {}
        }
        let health = svc.health.as_ref();
        match (&probe, health) {
            (None, _) | (_, None) if svc.restart != RestartPolicy::No => {
                return Ok(Reached::Healthy)
            }
            (None, _) | (_, None) => {}
            (Some(p), Some(h)) if Instant::now() >= next_probe => {
                // A starting replica is probed fast until its first success
                // (the gate returns then); `interval` is the healthy cadence.
                next_probe = Instant::now() + h.interval.std().min(crate::agent::FAST_PROBE);
                if c.host_port.is_none() && !matches!(p, Probe::Exec(_)) {
                    return Err(fail(
                        format!("replica {replica} publishes no port to probe: set `port`"),
                        None,
                    )
                    .await);
                }
                if let (Probe::Http(_), Some(port)) = (p, c.host_port) {
                    // Until it listens an HTTP probe cannot pass: wait for
                    // the port at a fast cadence first.
                    health::accepting(port, h.interval.std().min(crate::agent::FAST_PROBE)).await;
                }
                let result = health::probe(rt, p, &c.id, c.host_port, h.timeout.std()).await;
                match result {
                    Ok(_) => {
                        events(Event::Healthy {
                            service: name.into(),
                            replica,
                            container: c.id.clone(),
                        });
                        return Ok(Reached::Healthy);
                    }
                    Err(e) => {
                        last_probe = Some(e);
                        // Fast probes count as failed checks once per `interval`.
                        let counts =
                            last_counted.is_none_or(|t: Instant| t.elapsed() >= h.interval.std());
                        if started.elapsed() >= h.start_period.std() && counts {
                            failures += 1;
                            last_counted = Some(Instant::now());
                        }
                        if failures >= h.retries.max(1) {
                            return Err(fail(
                                format!(
                                    "replica {replica} is unhealthy after {failures} failed checks"
                                ),
                                last_probe,
                            )
                            .await);
                        }
                    }
                }
            }
            _ => {}
        }
        if Instant::now() >= deadline {
            return Err(fail(
                format!(
                    "replica {replica} did not turn healthy within {:?}",
                    opts.timeout
                ),
                last_probe,
            )
            .await);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct DownReport {
    pub containers: usize,
    pub networks: usize,
    pub volumes: usize,
}

/// [`retire_stop`] for a container as the engine lists it.
async fn drain_info<R: Runtime>(
    rt: &R,
    drain: &dyn Drain,
    c: &ContainerInfo,
    grace: Duration,
) -> Result<(), EngineError> {
    let r = Stopping {
        service: c.label(labels::SERVICE).unwrap_or(""),
        replica: crate::agent::replica_of(c).ok(),
        running: c.state == ContainerState::Running,
        id: &c.id,
        name: &c.name,
    };
    retire_stop(rt, drain, r, grace).await
}

/// Removes the helper containers a killed tug left behind for `stack`.
async fn sweep_helpers<R: Runtime>(rt: &R, stack: &str) -> Result<(), EngineError> {
    for name in rt.sweep_helpers(stack).await? {
        tracing::info!(container = %name, "removed a helper container left behind");
    }
    Ok(())
}

/// Removes everything of the stack: containers and networks, and volumes when
/// asked. Running replicas are drained first (see [`Drain`]).
#[tracing::instrument(name = "down", level = "info", skip_all, fields(stack = %stack))]
pub async fn down<R: Runtime>(
    rt: &R,
    stack: &str,
    grace: Duration,
    volumes: bool,
    drain: &dyn Drain,
) -> Result<DownReport, EngineError> {
    // First, so no helper holds a volume that is to be removed.
    sweep_helpers(rt, stack).await?;
    let filter = stack_filter(stack);
    // Another pass for a container whose creation was already on its way
    // to the engine when the converge that asked for it was stopped.
    let mut removed = 0;
    for _ in 0..3 {
        let containers = rt.list_containers(&filter).await?;
        if containers.is_empty() {
            break;
        }
        join_all(containers.iter().map(|c| async move {
            drain_info(rt, drain, c, grace).await?;
            rt.remove_container(&c.id).await?;
            Ok::<(), EngineError>(())
        }))
        .await
        .into_iter()
        .collect::<Result<Vec<()>, _>>()?;
        removed += containers.len();
    }
    let networks = rt.list_networks(&filter).await?;
    for n in &networks {
        rt.remove_network(n).await?;
    }
    let mut report = DownReport {
        containers: removed,
        networks: networks.len(),
        volumes: 0,
    };
    if volumes {
        let vols = rt.list_volumes(&filter).await?;
        for v in &vols {
            rt.remove_volume(v).await?;
        }
        report.volumes = vols.len();
    }
    Ok(report)
}

/// One replica as `tug ps` shows it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ReplicaStatus {
    pub service: String,
    pub replica: Option<u32>,
    pub name: String,
    pub id: String,
    pub state: String,
    pub health: String,
    pub endpoint: Option<String>,
    pub created: i64,
    pub image: String,
}

/// The stack's replicas, with health probed now for host-side checks.
pub async fn status<R: Runtime>(
    rt: &R,
    stack_name: &str,
    stack: Option<&Stack>,
) -> Result<Vec<ReplicaStatus>, EngineError> {
    let (_, infos) = observe(rt, stack_name).await?;
    let rows = infos.iter().map(|c| async move {
        let service = c.label(labels::SERVICE).unwrap_or("").to_string();
        let svc = stack.and_then(|s| s.services.get(&service));
        let health = match (svc.and_then(|s| s.health.as_ref()), c.state) {
            (_, s) if s != ContainerState::Running => "-".to_string(),
            (Some(h), _) if c.host_port.is_some() || matches!(h.probe(), Probe::Exec(_)) => {
                let r = health::probe(rt, &h.probe(), &c.id, c.host_port, h.timeout.std()).await;
                if r.is_ok() { "healthy" } else { "unhealthy" }.to_string()
            }
            _ => match c.health {
                EngineHealth::None => "-".into(),
                EngineHealth::Starting => "starting".into(),
                EngineHealth::Healthy => "healthy".into(),
                EngineHealth::Unhealthy => "unhealthy".into(),
            },
        };
        ReplicaStatus {
            service,
            replica: c.label(labels::REPLICA).and_then(|r| r.parse().ok()),
            name: c.name.clone(),
            id: c.id.chars().take(12).collect(),
            state: match c.state {
                ContainerState::Exited => format!("exited ({})", c.exit_code.unwrap_or(-1)),
                s => s.to_string(),
            },
            health,
            endpoint: c
                .host_port
                .filter(|_| c.state == ContainerState::Running)
                .map(|p| format!("127.0.0.1:{p}")),
            created: c.created,
            image: c.image.clone(),
        }
    });
    let mut rows = join_all(rows).await;
    rows.sort_by(|a, b| (&a.service, a.replica).cmp(&(&b.service, b.replica)));
    Ok(rows)
}

/// Restarts the services' replicas one at a time (SIGTERM, `stop_grace_period`,
/// SIGKILL, start), each gated on its health before the next one goes.
pub async fn restart<R: Runtime>(
    rt: &R,
    stack: &Stack,
    services: &[String],
    opts: &UpOptions,
    events: Sink<'_>,
) -> Result<usize, EngineError> {
    let (_, infos) = observe(rt, &stack.name).await?;
    let mut n = 0;
    for name in services {
        let svc = &stack.services[name];
        let mut mine: Vec<&ContainerInfo> = infos
            .iter()
            .filter(|c| c.label(labels::SERVICE) == Some(name.as_str()))
            .collect();
        mine.sort_by_key(|c| c.label(labels::REPLICA).and_then(|r| r.parse::<u32>().ok()));
        for c in mine {
            let replica = match crate::agent::replica_of(c) {
                Ok(r) => r,
                Err(why) => {
                    tracing::warn!(container = %c.name, "{why}: not restarted");
                    continue;
                }
            };
            let r = Stopping {
                service: name,
                replica: Some(replica),
                running: c.state == ContainerState::Running,
                id: &c.id,
                name: &c.name,
            };
            retire_stop(rt, &*opts.drain, r, svc.stop_grace_period.std()).await?;
            start(rt, name, replica, &c.id, events).await?;
            gate(rt, stack, name, std::slice::from_ref(&c.id), opts, events).await?;
            n += 1;
        }
        events(Event::ServiceReady {
            service: name.clone(),
            state: "restarted".into(),
        });
    }
    Ok(n)
}

/// Stops every container of the stack gracefully (draining running
/// replicas first), keeping them (and the network and volumes) for the next
/// `tug up`.
pub async fn stop<R: Runtime>(
    rt: &R,
    stack: &str,
    grace: Duration,
    drain: &dyn Drain,
) -> Result<usize, EngineError> {
    let containers = rt.list_containers(&stack_filter(stack)).await?;
    join_all(containers.iter().map(|c| drain_info(rt, drain, c, grace)))
        .await
        .into_iter()
        .collect::<Result<Vec<()>, _>>()?;
    Ok(containers.len())
}

/// One log line of one replica.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReplicaLine {
    pub service: String,
    pub replica: String,
    pub stderr: bool,
    pub text: String,
    /// The trace the line belongs to, when it carries one (see [`trace_id`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
    /// When it was written, where the runtime knows (RFC 3339 on the wire).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "rfc3339")]
    pub time: Option<std::time::SystemTime>,
}

/// An optional time as an RFC 3339 string with nanoseconds, UTC.
mod rfc3339 {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::SystemTime;

    pub fn serialize<S: Serializer>(t: &Option<SystemTime>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.collect_str(&humantime::format_rfc3339_nanos(*t)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SystemTime>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|t| humantime::parse_rfc3339_weak(&t).map_err(serde::de::Error::custom))
            .transpose()
    }
}

/// The trace id a log line carries: a W3C `traceparent` anywhere in it, or a
/// `trace_id`/`traceId` string field of a JSON line.
pub fn trace_id(line: &str) -> Option<String> {
    static TRACEPARENT: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"\b00-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}\b").expect("valid")
    });
    let t = line.trim();
    if t.starts_with('{') {
        if let Ok(serde_json::Value::Object(o)) = serde_json::from_str(t) {
            let id = ["trace_id", "traceId"]
                .iter()
                .find_map(|k| o.get(*k).and_then(|v| v.as_str()));
            if let Some(id) = id.filter(|id| !id.is_empty()) {
                return Some(id.to_string());
            }
        }
    }
    TRACEPARENT
        .captures_iter(line)
        .map(|c| c[1].to_string())
        // The all-zero id is invalid by the spec.
        .find(|id| id.bytes().any(|b| b != b'0'))
}

/// The log lines of the stack's replicas (or one service's), interleaved as
/// they come; with `follow` the stream stays open while replicas run (and
/// ends at `until` when there is one). With `grep`, only the lines it matches.
pub async fn log_lines<R: Runtime>(
    rt: &R,
    stack: &str,
    service: Option<&str>,
    opts: tug_runtime::LogOptions,
    grep: Option<regex::Regex>,
) -> Result<futures_util::stream::BoxStream<'static, Result<ReplicaLine, EngineError>>, EngineError>
{
    let mut filter = stack_filter(stack);
    if let Some(s) = service {
        filter.push((labels::SERVICE.to_string(), Some(s.to_string())));
    }
    let containers = rt.list_containers(&filter).await?;
    let streams = containers.iter().map(|c| {
        let service = c.label(labels::SERVICE).unwrap_or("?").to_string();
        let replica = c.label(labels::REPLICA).unwrap_or("?").to_string();
        rt.logs(&c.id, opts).map(move |l| {
            l.map(|l| ReplicaLine {
                service: service.clone(),
                replica: replica.clone(),
                stderr: l.stream == tug_runtime::LogStream::Stderr,
                trace_id: trace_id(&l.text),
                text: l.text,
                time: l.time,
            })
            .map_err(EngineError::from)
        })
    });
    let all = futures_util::stream::select_all(streams);
    // A followed window closes when its end comes, whatever the engine does.
    let all = match opts.until.filter(|_| opts.follow) {
        Some(until) => {
            let left = until
                .duration_since(std::time::SystemTime::now())
                .unwrap_or_default();
            all.take_until(tokio::time::sleep(left)).boxed()
        }
        None => all.boxed(),
    };
    Ok(match grep {
        Some(re) => all
            .filter(move |l| std::future::ready(l.as_ref().map_or(true, |l| re.is_match(&l.text))))
            .boxed(),
        None => all.boxed(),
    })
}

#[cfg(test)]
mod trace_id_tests {
    use super::trace_id;

    #[test]
    fn finds_traceparent_and_json_fields() {
        let tp = "GET / traceparent=00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01 200";
        assert_eq!(
            trace_id(tp).as_deref(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        let json = r#"{"level":"info","traceId":"abc123","msg":"hi"}"#;
        assert_eq!(trace_id(json).as_deref(), Some("abc123"));
        let snake = r#"{"trace_id":"def456"}"#;
        assert_eq!(trace_id(snake).as_deref(), Some("def456"));
        assert_eq!(
            trace_id("00-00000000000000000000000000000000-00f067aa0ba902b7-01"),
            None
        );
        assert_eq!(trace_id("plain line"), None);
        assert_eq!(trace_id("{not json"), None);
    }
}
