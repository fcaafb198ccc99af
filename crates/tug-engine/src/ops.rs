//! Operations shared by the CLI and the agent's API: each one takes the
//! stack's apply lock and records what it applied in the history store.

use crate::bus::Bus;
use crate::store::{state_dir, Outcome, Revision, Store};
use crate::{EngineError, Event, UpOptions, UpReport};
use std::collections::BTreeMap;
use std::fs::File;
use std::path::PathBuf;
use tug_runtime::Runtime;
use tug_spec::Stack;

/// Held while anything applies changes to a stack, so `tug up`, the CLI's
/// other commands and the agent never act on one stack at the same time.
pub struct ApplyLock {
    _file: File,
}

fn lock_file(stack: &str) -> std::io::Result<File> {
    let dir = state_dir(stack);
    std::fs::create_dir_all(&dir)?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
    }
    use std::os::unix::fs::OpenOptionsExt;
    File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(dir.join("apply.lock"))
}

impl ApplyLock {
    /// Waits for the lock (it is released when the holder exits, even by SIGKILL).
    pub async fn acquire(stack: &str) -> std::io::Result<ApplyLock> {
        let file = lock_file(stack)?;
        let file = tokio::task::spawn_blocking(move || file.lock().map(|_| file))
            .await
            .map_err(std::io::Error::other)??;
        Ok(ApplyLock { _file: file })
    }

    /// The lock if nobody holds it.
    pub fn try_acquire(stack: &str) -> std::io::Result<Option<ApplyLock>> {
        let file = lock_file(stack)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(ApplyLock { _file: file })),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => Err(e),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// Bad input from the user; the message says what to do.
    #[error("{0}")]
    Invalid(String),
    #[error("state directory: {0}")]
    Io(#[from] std::io::Error),
}

/// Opens the stack's history store. Returns the store (or the reason it
/// could not be opened) and a warning to show, if any.
pub fn open_store(stack: &str) -> (Option<Store>, Option<String>) {
    let path = state_dir(stack).join("tug.db");
    match Store::open(&path) {
        Ok((store, warning)) => (Some(store), warning),
        Err(e) => (
            None,
            Some(format!("{e}: this run is not recorded in the history")),
        ),
    }
}

/// The outcome of a recorded converge.
pub struct Converged {
    pub revision: Option<i64>,
    pub result: Result<UpReport, EngineError>,
    pub warning: Option<String>,
}

/// Converges `stack` under the apply lock, recording the revision (with
/// `message`) in the history store and publishing every event on `bus`
/// (whose subscribers record and show them). A store that cannot be opened
/// never stops the stack: it only produces a warning.
///
/// Outcomes are honest: a converge that changed nothing records no
/// revision; one whose future is dropped half-way (its caller caught
/// SIGTERM, the agent shut down) is recorded as interrupted, and so is one
/// left pending by a run that died (found when the next one takes the lock).
/// The images are recorded as soon as they are resolved, so an interrupted
/// revision can be carried on with exactly those images.
pub async fn converge<R: Runtime>(
    rt: &R,
    stack: &Stack,
    opts: &UpOptions,
    message: &str,
    bus: &Bus,
) -> Result<Converged, OpsError> {
    let lock = ApplyLock::acquire(&stack.name).await?;
    converge_held(&lock, rt, stack, opts, message, bus).await
}

/// [`converge`] for a caller that already holds the stack's apply lock (and
/// read the desired state under it).
#[tracing::instrument(name = "converge", level = "info", skip_all, fields(stack = %stack.name))]
pub async fn converge_held<R: Runtime>(
    _lock: &ApplyLock,
    rt: &R,
    stack: &Stack,
    opts: &UpOptions,
    message: &str,
    bus: &Bus,
) -> Result<Converged, OpsError> {
    let (store, warning) = open_store(&stack.name);
    if let Some(s) = &store {
        let _ = s.interrupt_pending();
    }
    let revision = store.as_ref().and_then(|s| s.begin(stack, message).ok());
    converge_revision(rt, stack, opts, store, revision, bus, |_| {})
        .await
        .map(|(revision, result)| Converged {
            revision,
            result,
            warning,
        })
}

/// Marks its revision interrupted when dropped before [`Recording::finish`].
struct Recording {
    store: std::sync::Mutex<Option<Store>>,
    revision: Option<i64>,
    done: bool,
}

impl Drop for Recording {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        if let (Ok(Some(s)), Some(rev)) = (self.store.get_mut(), self.revision) {
            let _ = s.finish(
                rev,
                Outcome::Interrupted,
                "interrupted before it completed",
                &BTreeMap::new(),
            );
        }
    }
}

/// Runs the converge of `revision` (already begun) and records its outcome;
/// `resumed` maps the message of a revision the agent carried on. Returns
/// the revision (`None` when nothing changed) and the converge's result.
async fn converge_revision<R: Runtime>(
    rt: &R,
    stack: &Stack,
    opts: &UpOptions,
    store: Option<Store>,
    revision: Option<i64>,
    bus: &Bus,
    resumed: impl FnOnce(&mut String),
) -> Result<(Option<i64>, Result<UpReport, EngineError>), OpsError> {
    let mut rec = Recording {
        store: std::sync::Mutex::new(store),
        revision,
        done: false,
    };
    let images = std::sync::Mutex::new(BTreeMap::new());
    let wanted = stack.services.len();
    let sink = |e: Event| {
        if let (Event::ImageReady { service, image }, Some(rev)) = (&e, revision) {
            let mut images = images.lock().unwrap_or_else(|p| p.into_inner());
            images.insert(service.clone(), image.clone());
            if images.len() == wanted {
                if let Ok(Some(s)) = rec.store.lock().as_deref() {
                    let _ = s.set_images(rev, &images);
                }
            }
        }
        bus.publish(revision, e)
    };
    let result = crate::up(rt, stack, opts, &sink).await;
    rec.done = true;
    let store = rec.store.get_mut().ok().and_then(|s| s.take());
    let (Some(s), Some(rev)) = (store, revision) else {
        return Ok((revision, result));
    };
    let mut note = String::new();
    resumed(&mut note);
    let _ = match &result {
        Ok(r) if r.up_to_date && note.is_empty() => {
            s.discard(rev)?;
            return Ok((None, result));
        }
        Ok(r) => s.finish(rev, Outcome::Succeeded, &note, &r.images),
        Err(e) if e.rolled_back() => {
            s.finish(rev, Outcome::RolledBack, &e.to_string(), &BTreeMap::new())
        }
        Err(e) => s.finish(rev, Outcome::Failed, &e.to_string(), &BTreeMap::new()),
    };
    Ok((Some(rev), result))
}

/// The agent's converge of the revision it holds the stack to. When that
/// revision was interrupted, its outcome is recorded now: succeeded once
/// carried on, or failed (so the agent then heads for the last good one).
/// The caller holds the apply lock.
#[tracing::instrument(name = "resume", level = "info", skip_all)]
pub async fn resume<R: Runtime>(
    rt: &R,
    stack: &Stack,
    revision: Option<(i64, Outcome)>,
    opts: &UpOptions,
    bus: &Bus,
) -> Result<UpReport, EngineError> {
    let carried = match revision {
        Some((id, Outcome::Interrupted | Outcome::Pending)) => Some(id),
        _ => None,
    };
    let Some(id) = carried else {
        return crate::up(rt, stack, opts, &|e| bus.publish(None, e)).await;
    };
    let (store, _) = open_store(&stack.name);
    let prior = store
        .as_ref()
        .and_then(|s| s.revision(id).ok().flatten())
        .map(|r| r.message)
        .unwrap_or_default();
    match converge_revision(rt, stack, opts, store, Some(id), bus, |m| {
        *m = format!("{prior} (interrupted, carried on by the agent)")
    })
    .await
    {
        Ok((_, result)) => result,
        Err(OpsError::Engine(e)) => Err(e),
        Err(e) => {
            tracing::warn!(error = %e, revision = id, "recording a carried-on revision");
            Ok(UpReport::default())
        }
    }
}

/// The revision `tug rollback` returns to: `to` (it must have succeeded), or
/// the last good one before the one running now.
pub fn rollback_target(store: &Store, stack: &str, to: Option<i64>) -> Result<Revision, OpsError> {
    match to {
        Some(id) => match store.revision(id)? {
            Some(r) if r.outcome == Outcome::Succeeded => Ok(r),
            Some(r) => Err(OpsError::Invalid(format!(
                "revision {id} did not succeed ({}): pick a succeeded one from `tug history`",
                serde_json::to_value(r.outcome)
                    .ok()
                    .and_then(|v| v.as_str().map(String::from))
                    .unwrap_or_default()
            ))),
            None => Err(OpsError::Invalid(format!(
                "no revision {id} in the history of stack {stack}: see `tug history`"
            ))),
        },
        None => {
            let current = store.last_good(None)?;
            match current
                .map(|c| store.last_good(Some(c.id)))
                .transpose()?
                .flatten()
            {
                Some(r) => Ok(r),
                None => Err(OpsError::Invalid(format!(
                    "stack {stack} has no earlier good revision to roll back to: see `tug history`"
                ))),
            }
        }
    }
}

/// Most replicas `tug scale` (and `POST /v1/scale`) gives one service.
pub const MAX_REPLICAS: u32 = tug_spec::MAX_REPLICAS;

/// The stack with replicas changed by `SERVICE=N` pairs.
pub fn scaled(stack: &Stack, pairs: &[String]) -> Result<Stack, OpsError> {
    let mut stack = stack.clone();
    for p in pairs {
        let Some((name, n)) = p.split_once('=') else {
            return Err(OpsError::Invalid(format!(
                "`{p}`: write SERVICE=REPLICAS, for example api=3"
            )));
        };
        let n: u32 = n.parse().map_err(|_| {
            OpsError::Invalid(format!(
                "`{p}`: replicas must be a whole number from 0 to {MAX_REPLICAS}, for example {name}=3"
            ))
        })?;
        if n > MAX_REPLICAS {
            return Err(OpsError::Invalid(format!(
                "`{p}`: at most {MAX_REPLICAS} replicas per service"
            )));
        }
        let known = stack
            .services
            .keys()
            .cloned()
            .collect::<Vec<_>>()
            .join(", ");
        let Some(svc) = stack.services.get_mut(name) else {
            return Err(OpsError::Invalid(format!(
                "no service `{name}` in stack {}: known services are {known}",
                stack.name
            )));
        };
        if let Some(a) = &svc.autoscale {
            // 0 stops the service; the autoscaler leaves a stopped one alone.
            if n != 0 && (n < a.min || n > a.max) {
                return Err(OpsError::Invalid(format!(
                    "`{p}`: service `{name}` autoscales from {} to {} replicas (`autoscale.min` and `autoscale.max` in {}): pick a number in that range, 0 to stop it, or change the bounds in the file",
                    a.min,
                    a.max,
                    stack.file.display()
                )));
            }
        }
        if let (Some(port), true) = (svc.publish, n > 1) {
            return Err(OpsError::Invalid(format!(
                "service `{name}` publishes fixed host port {port}: it can run one replica only"
            )));
        }
        svc.replicas = n;
    }
    Ok(stack)
}

/// Checks that every name is a service of the stack.
pub fn known_services(stack: &Stack, names: &[String]) -> Result<Vec<String>, OpsError> {
    for n in names {
        if !stack.services.contains_key(n) {
            let known = stack
                .services
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ");
            return Err(OpsError::Invalid(format!(
                "no service `{n}` in stack {}: known services are {known}",
                stack.name
            )));
        }
    }
    Ok(if names.is_empty() {
        stack.services.keys().cloned().collect()
    } else {
        names.to_vec()
    })
}

/// Where the agent of a stack keeps its socket, pid and log.
pub fn agent_paths(stack: &str) -> (PathBuf, PathBuf, PathBuf) {
    let dir = state_dir(stack);
    (
        dir.join("agent.sock"),
        dir.join("agent.pid"),
        dir.join("agent.log"),
    )
}

/// `tug dev`'s sync rules: copies `files` (local path, name under
/// `target_dir`) into every running replica of `service`, without a new
/// image. A file gone from disk is left out (the replica keeps its copy).
/// Returns how many replicas received them.
pub async fn sync_into<R: Runtime>(
    rt: &R,
    stack: &str,
    service: &str,
    target_dir: &str,
    files: Vec<(PathBuf, String)>,
) -> Result<usize, OpsError> {
    // Two archives: one to unpack in `target_dir`, and one with the
    // directory in its names, to unpack at `/` where `target_dir` does not
    // exist yet (the engine unpacks only into an existing directory).
    let prefix = target_dir.trim_matches('/').to_string();
    let (archive, rooted) =
        tokio::task::spawn_blocking(move || -> std::io::Result<(Vec<u8>, Vec<u8>)> {
            let mut b = tar::Builder::new(Vec::new());
            let mut r = tar::Builder::new(Vec::new());
            b.follow_symlinks(false);
            r.follow_symlinks(false);
            for (local, name) in files {
                if local.is_file() {
                    let name = name.trim_start_matches('/');
                    b.append_path_with_name(&local, name)?;
                    r.append_path_with_name(&local, format!("{prefix}/{name}"))?;
                }
            }
            Ok((b.into_inner()?, r.into_inner()?))
        })
        .await
        .map_err(std::io::Error::other)??;
    let replicas = rt
        .list_containers(&tug_runtime::stack_filter(stack))
        .await
        .map_err(EngineError::from)?;
    let mut n = 0;
    for c in replicas.iter().filter(|c| {
        c.label(tug_runtime::labels::SERVICE) == Some(service)
            && c.state == tug_runtime::ContainerState::Running
    }) {
        match rt.copy_into(&c.id, target_dir, archive.clone()).await {
            Err(tug_runtime::RuntimeError::NotFound(_)) => rt
                .copy_into(&c.id, "/", rooted.clone())
                .await
                .map_err(EngineError::from)?,
            r => r.map_err(EngineError::from)?,
        }
        n += 1;
    }
    Ok(n)
}
