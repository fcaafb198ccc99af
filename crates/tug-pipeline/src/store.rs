//! Pipeline runs in the stack's history store (`tug.db` in the state
//! directory, beside the revisions and events): one row per run with its
//! owner process, so a run whose tug was killed is found and marked
//! interrupted by the next command that opens the store.

use crate::report::{RunReport, RunStatus};
use rusqlite::{params, Connection, OptionalExtension};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
#[error("run store {path}: {source}")]
pub struct RunStoreError {
    pub path: PathBuf,
    #[source]
    pub source: rusqlite::Error,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    stack TEXT NOT NULL,
    pipeline TEXT NOT NULL,
    started INTEGER NOT NULL,
    finished INTEGER,
    status TEXT NOT NULL,
    owner TEXT NOT NULL,
    dir TEXT NOT NULL DEFAULT '',
    report TEXT
);
CREATE TABLE IF NOT EXISTS concurrency (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    grp TEXT NOT NULL,
    run INTEGER NOT NULL,
    unit TEXT NOT NULL,
    state TEXT NOT NULL
);
";

/// Where a claim on a concurrency group stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Claim {
    /// Another run (or unit) holds the group: wait.
    Waiting,
    /// This claim holds the group.
    Holding,
    /// A newer claim cancelled this one.
    Cancelled,
}

/// One row of `runs`.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct RunRow {
    pub id: i64,
    pub stack: String,
    pub pipeline: String,
    pub started: i64,
    pub finished: Option<i64>,
    pub status: RunStatus,
    /// The run's directory (logs, artifacts).
    pub dir: PathBuf,
    #[serde(skip)]
    pub owner: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report: Option<RunReport>,
}

pub struct RunStore {
    conn: Connection,
    path: PathBuf,
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl RunStore {
    /// Opens (creating) the runs table in the store at `path`.
    pub fn open(path: &Path) -> Result<RunStore, RunStoreError> {
        let err = |source| RunStoreError {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent() {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::create_dir_all(dir);
            let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
        }
        // Two tug processes opening a new store at once race for the
        // switch to WAL; the loser sees "database is locked" and retries.
        let mut attempt = 0;
        let conn = loop {
            match Self::connect(path) {
                Ok(c) => break c,
                Err(e) if attempt < 50 && is_busy(&e) => {
                    attempt += 1;
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                Err(e) => return Err(err(e)),
            }
        };
        Ok(RunStore {
            conn,
            path: path.to_path_buf(),
        })
    }

    fn connect(path: &Path) -> rusqlite::Result<Connection> {
        let conn = Connection::open(path)?;
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
        }
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.execute_batch(SCHEMA)?;
        Ok(conn)
    }

    fn err(&self, source: rusqlite::Error) -> RunStoreError {
        RunStoreError {
            path: self.path.clone(),
            source,
        }
    }

    /// Records a new running run owned by `owner`; returns its id.
    pub fn begin(&self, stack: &str, pipeline: &str, owner: &str) -> Result<i64, RunStoreError> {
        self.conn
            .execute(
                "INSERT INTO runs (stack, pipeline, started, status, owner) VALUES (?1, ?2, ?3, 'running', ?4)",
                params![stack, pipeline, now(), owner],
            )
            .map_err(|e| self.err(e))?;
        Ok(self.conn.last_insert_rowid())
    }

    pub fn set_dir(&self, id: i64, dir: &Path) -> Result<(), RunStoreError> {
        self.conn
            .execute(
                "UPDATE runs SET dir = ?2 WHERE id = ?1",
                params![id, dir.to_string_lossy()],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    pub fn finish(&self, report: &RunReport) -> Result<(), RunStoreError> {
        let json = serde_json::to_string(report).unwrap_or_else(|_| "null".into());
        self.conn
            .execute(
                "UPDATE runs SET finished = ?2, status = ?3, report = ?4 WHERE id = ?1",
                params![report.id, now(), report.status.as_str(), json],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Marks every run still `running` whose owner process is gone as
    /// interrupted; returns their ids (their containers need removing).
    pub fn mark_orphans(
        &self,
        alive: impl Fn(&str) -> bool,
    ) -> Result<Vec<(i64, String)>, RunStoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT id, owner FROM runs WHERE status = 'running'")
            .map_err(|e| self.err(e))?;
        let rows: Vec<(i64, String)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .and_then(|it| it.collect())
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for (id, owner) in rows {
            if !alive(&owner) {
                self.conn
                    .execute(
                        "UPDATE runs SET status = 'interrupted', finished = ?2 WHERE id = ?1",
                        params![id, now()],
                    )
                    .map_err(|e| self.err(e))?;
                out.push((id, owner));
            }
        }
        Ok(out)
    }

    /// Runs `f` in a write transaction taken at once, so that two tugs
    /// claiming a group see each other's rows.
    fn immediate<T>(
        &mut self,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> rusqlite::Result<T>,
    ) -> Result<T, RunStoreError> {
        let path = self.path.clone();
        let err = |source| RunStoreError {
            path: path.clone(),
            source,
        };
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(err)?;
        // Claims of runs that ended (or whose tug died) hold nothing.
        tx.execute(
            "DELETE FROM concurrency WHERE run NOT IN (SELECT id FROM runs WHERE status = 'running')",
            [],
        )
        .map_err(err)?;
        let v = f(&tx).map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(v)
    }

    /// Enters the queue of a concurrency group; returns the claim's id.
    /// `cancel_in_progress` cancels every other claim of the group; else a
    /// claim still waiting is replaced (at most one waits, as on GitHub).
    /// `unit` is empty for the whole run.
    pub fn claim(
        &mut self,
        group: &str,
        run: i64,
        unit: &str,
        cancel_in_progress: bool,
    ) -> Result<i64, RunStoreError> {
        self.immediate(|tx| {
            // A replaced waiting claim is gone (its run sees that); a
            // cancelled holder holds on until it has stopped.
            tx.execute(
                "DELETE FROM concurrency WHERE grp = ?1 AND state = 'waiting'",
                [group],
            )?;
            if cancel_in_progress {
                tx.execute(
                    "UPDATE concurrency SET state = 'cancelled' WHERE grp = ?1 AND state = 'holding'",
                    [group],
                )?;
            }
            tx.execute(
                "INSERT INTO concurrency (grp, run, unit, state) VALUES (?1, ?2, ?3, 'waiting')",
                params![group, run, unit],
            )?;
            let id = tx.last_insert_rowid();
            // Taken at once when free: else a claim made a moment later
            // would replace this one before it ever looked.
            hold(tx, id)?;
            Ok(id)
        })
    }

    /// Takes the group when nothing else holds it (a cancelled holder
    /// holds it until it has stopped and released it).
    pub fn try_hold(&mut self, claim: i64) -> Result<Claim, RunStoreError> {
        self.immediate(|tx| hold(tx, claim))
    }

    /// The units of `run` whose claim a newer one cancelled (`""`: the run).
    pub fn cancelled_claims(&self, run: i64) -> Result<Vec<(String, String)>, RunStoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT unit, grp FROM concurrency WHERE run = ?1 AND state = 'cancelled'")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([run], |r| Ok((r.get(0)?, r.get(1)?)))
            .and_then(|it| it.collect())
            .map_err(|e| self.err(e))?;
        Ok(rows)
    }

    /// Gives a group back.
    pub fn release(&self, claim: i64) -> Result<(), RunStoreError> {
        self.conn
            .execute("DELETE FROM concurrency WHERE seq = ?1", [claim])
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// The latest runs first.
    pub fn list(&self, limit: usize) -> Result<Vec<RunRow>, RunStoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT id, stack, pipeline, started, finished, status, owner, dir, report FROM runs ORDER BY id DESC LIMIT ?1")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([limit as i64], row)
            .and_then(|it| it.collect())
            .map_err(|e| self.err(e))?;
        Ok(rows)
    }

    pub fn get(&self, id: i64) -> Result<Option<RunRow>, RunStoreError> {
        self.conn
            .query_row(
                "SELECT id, stack, pipeline, started, finished, status, owner, dir, report FROM runs WHERE id = ?1",
                [id],
                row,
            )
            .optional()
            .map_err(|e| self.err(e))
    }
}

/// Takes the group for `claim` when nothing holds it and no older claim waits.
fn hold(tx: &rusqlite::Transaction<'_>, claim: i64) -> rusqlite::Result<Claim> {
    let Some((grp, state)) = tx
        .query_row(
            "SELECT grp, state FROM concurrency WHERE seq = ?1",
            [claim],
            |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)),
        )
        .optional()?
    else {
        return Ok(Claim::Cancelled);
    };
    match state.as_str() {
        "holding" => return Ok(Claim::Holding),
        "cancelled" => return Ok(Claim::Cancelled),
        _ => {}
    }
    let busy: i64 = tx.query_row(
            "SELECT COUNT(*) FROM concurrency WHERE grp = ?1 AND seq != ?2 AND (state != 'waiting' OR seq < ?2)",
            params![grp, claim],
            |r| r.get(0),
        )?;
    if busy > 0 {
        return Ok(Claim::Waiting);
    }
    tx.execute(
        "UPDATE concurrency SET state = 'holding' WHERE seq = ?1",
        [claim],
    )?;
    Ok(Claim::Holding)
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RunRow> {
    let status: String = r.get(5)?;
    let report: Option<String> = r.get(8)?;
    let dir: String = r.get(7)?;
    Ok(RunRow {
        id: r.get(0)?,
        stack: r.get(1)?,
        pipeline: r.get(2)?,
        started: r.get(3)?,
        finished: r.get(4)?,
        // An unknown word is from a newer tug: show it as interrupted.
        status: RunStatus::parse(&status).unwrap_or(RunStatus::Interrupted),
        owner: r.get(6)?,
        dir: PathBuf::from(dir),
        report: report.and_then(|s| serde_json::from_str(&s).ok()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_whose_owner_died_is_marked_interrupted() {
        let d = tempfile::tempdir().unwrap();
        let s = RunStore::open(&d.path().join("tug.db")).unwrap();
        let dead = s.begin("shop", "ci", "dead").unwrap();
        let live = s.begin("shop", "ci", "live").unwrap();
        let marked = s.mark_orphans(|o| o == "live").unwrap();
        assert_eq!(marked, [(dead, "dead".to_string())]);
        assert_eq!(s.get(dead).unwrap().unwrap().status, RunStatus::Interrupted);
        assert_eq!(s.get(live).unwrap().unwrap().status, RunStatus::Running);
        let rows = s.list(10).unwrap();
        assert_eq!(rows[0].id, live);
    }

    #[test]
    fn a_newer_claim_waits_or_cancels_and_one_waiting_claim_is_replaced() {
        let d = tempfile::tempdir().unwrap();
        let mut s = RunStore::open(&d.path().join("tug.db")).unwrap();
        let (a, b, c, e) = (
            s.begin("shop", "ci", "a").unwrap(),
            s.begin("shop", "ci", "b").unwrap(),
            s.begin("shop", "ci", "c").unwrap(),
            s.begin("shop", "ci", "e").unwrap(),
        );
        let ca = s.claim("deploy", a, "", false).unwrap();
        assert_eq!(s.try_hold(ca).unwrap(), Claim::Holding);
        // Queued behind a; then replaced by a newer waiting claim.
        let cb = s.claim("deploy", b, "", false).unwrap();
        assert_eq!(s.try_hold(cb).unwrap(), Claim::Waiting);
        let cc = s.claim("deploy", c, "", false).unwrap();
        assert_eq!(s.try_hold(cb).unwrap(), Claim::Cancelled);
        assert_eq!(s.try_hold(cc).unwrap(), Claim::Waiting);
        assert_eq!(s.cancelled_claims(b).unwrap(), []);
        s.release(ca).unwrap();
        assert_eq!(s.try_hold(cc).unwrap(), Claim::Holding);
        // cancel-in-progress: the holder is cancelled, and holds until released.
        let ce = s.claim("deploy", e, "deploy-job", true).unwrap();
        assert_eq!(
            s.cancelled_claims(c).unwrap(),
            [("".into(), "deploy".into())]
        );
        assert_eq!(s.try_hold(ce).unwrap(), Claim::Waiting);
        s.release(cc).unwrap();
        assert_eq!(s.try_hold(ce).unwrap(), Claim::Holding);
        // Another group is independent.
        let other = s.claim("docs", a, "", true).unwrap();
        assert_eq!(s.try_hold(other).unwrap(), Claim::Holding);
    }

    #[test]
    fn the_claim_of_a_run_that_ended_is_dropped() {
        let d = tempfile::tempdir().unwrap();
        let mut s = RunStore::open(&d.path().join("tug.db")).unwrap();
        let dead = s.begin("shop", "ci", "dead").unwrap();
        let live = s.begin("shop", "ci", "live").unwrap();
        let held = s.claim("g", dead, "", false).unwrap();
        assert_eq!(s.try_hold(held).unwrap(), Claim::Holding);
        let next = s.claim("g", live, "", false).unwrap();
        assert_eq!(s.try_hold(next).unwrap(), Claim::Waiting);
        s.mark_orphans(|o| o == "live").unwrap();
        assert_eq!(s.try_hold(next).unwrap(), Claim::Holding);
    }
}
