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
";

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
        let conn = Connection::open(path).map_err(err)?;
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
        }
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(err)?;
        conn.execute_batch(SCHEMA).map_err(err)?;
        Ok(RunStore {
            conn,
            path: path.to_path_buf(),
        })
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
}
