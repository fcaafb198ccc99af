//! Concurrency groups (`concurrency:` of a pipeline or a job, GitHub's
//! `concurrency:`) across runs and tug processes.
//!
//! Claims live in the run store (`tug.db` of the state directory), the one
//! place every tug process running the stack's pipelines shares: `tug
//! pipeline run`, `tug ci run` and the agent. A claim waits until nothing
//! older holds its group; `cancel_in_progress` marks every other claim of
//! the group cancelled, and the run owning a cancelled claim stops that
//! unit (or the whole run), removes its containers and then releases it.
//! A waiting claim is replaced by a newer one, so at most one waits.
//!
//! Another process's request reaches a run only through the store, so a run
//! holding claims looks at its own rows a few times a second. The claims of
//! a run whose tug died are dropped once the run is marked interrupted.

use crate::store::{Claim, RunStore, RunStoreError};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const POLL: Duration = Duration::from_millis(250);

/// A run's door to the groups of its stack.
#[derive(Clone)]
pub struct Gate {
    store: Arc<Mutex<RunStore>>,
    run: i64,
    /// Unit (`""`: the run) -> its group, the token a cancelled claim
    /// cancels, and a token of its own that says the group did it.
    targets: Arc<Mutex<BTreeMap<String, Target>>>,
}

struct Target {
    group: String,
    token: CancellationToken,
    by_group: CancellationToken,
}

/// How entering a group ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entered {
    /// The group is held under this claim until [`Gate::release`].
    Holding(i64),
    /// A newer claim replaced this one while it waited.
    Replaced,
    /// The run was stopped while waiting.
    Stopped,
}

impl Gate {
    pub fn open(db: &Path, run: i64) -> Result<Gate, RunStoreError> {
        Ok(Gate {
            store: Arc::new(Mutex::new(RunStore::open(db)?)),
            run,
            targets: Arc::default(),
        })
    }

    async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut RunStore) -> Result<T, RunStoreError> + Send + 'static,
    ) -> Result<T, RunStoreError> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || {
            let mut s = store.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut s)
        })
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
    }

    /// Waits for `group` (`unit` empty: for the whole run); once held,
    /// a newer claim with `cancel_in_progress` cancels `token`.
    pub async fn enter(
        &self,
        group: &str,
        unit: &str,
        cancel_in_progress: bool,
        token: &CancellationToken,
        mut waiting: impl FnMut(),
    ) -> Result<Entered, RunStoreError> {
        let (g, u, run) = (group.to_string(), unit.to_string(), self.run);
        let claim = self
            .with(move |s| s.claim(&g, run, &u, cancel_in_progress))
            .await?;
        let mut told = false;
        loop {
            let state = self
                .with(move |s| {
                    // A holder whose tug died never releases: drop it.
                    s.mark_orphans(crate::exec::owner_alive)?;
                    s.try_hold(claim)
                })
                .await?;
            match state {
                Claim::Holding => {
                    self.targets
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(
                            unit.to_string(),
                            Target {
                                group: group.to_string(),
                                token: token.clone(),
                                by_group: CancellationToken::new(),
                            },
                        );
                    return Ok(Entered::Holding(claim));
                }
                Claim::Cancelled => {
                    self.release(claim).await;
                    return Ok(Entered::Replaced);
                }
                Claim::Waiting if !told => {
                    waiting();
                    told = true;
                }
                Claim::Waiting => {}
            }
            tokio::select! {
                _ = token.cancelled() => {
                    self.release(claim).await;
                    return Ok(Entered::Stopped);
                }
                _ = tokio::time::sleep(POLL) => {}
            }
        }
    }

    /// Gives a claim back (errors are left to the next claim's clean-up).
    pub async fn release(&self, claim: i64) {
        let _ = self.with(move |s| s.release(claim)).await;
    }

    /// Until `stop`: cancels the token of every unit whose claim a newer
    /// one cancelled.
    pub fn watch(&self, stop: CancellationToken) -> tokio::task::JoinHandle<()> {
        let gate = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(POLL) => {}
                }
                let run = gate.run;
                let Ok(cancelled) = gate.with(move |s| s.cancelled_claims(run)).await else {
                    continue;
                };
                let targets = gate.targets.lock().unwrap_or_else(|p| p.into_inner());
                for (unit, _) in cancelled {
                    if let Some(t) = targets.get(&unit) {
                        t.by_group.cancel();
                        t.token.cancel();
                    }
                }
            }
        })
    }

    /// The group whose newer claim cancelled `unit` (`""`: the run), if one did.
    pub fn cancelled_by(&self, unit: &str) -> Option<String> {
        let targets = self.targets.lock().unwrap_or_else(|p| p.into_inner());
        targets
            .get(unit)
            .filter(|t| t.by_group.is_cancelled())
            .map(|t| t.group.clone())
    }
}

/// A job's group for one matrix combination: `${{ matrix.NAME }}` replaced.
pub fn unit_group(group: &str, matrix: &BTreeMap<String, String>) -> String {
    let mut out = group.to_string();
    for (k, v) in matrix {
        for pat in [
            format!("${{{{ matrix.{k} }}}}"),
            format!("${{{{matrix.{k}}}}}"),
        ] {
            out = out.replace(&pat, v);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_group_takes_the_combination_s_values() {
        let m: BTreeMap<String, String> = [("os".to_string(), "linux".to_string())].into();
        assert_eq!(unit_group("deploy-${{ matrix.os }}", &m), "deploy-linux");
        assert_eq!(unit_group("d-${{matrix.os}}", &m), "d-linux");
        assert_eq!(unit_group("deploy", &m), "deploy");
    }
}
