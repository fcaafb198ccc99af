//! The history store: every applied revision of a stack, and its events, in
//! SQLite (WAL, one transaction per write) in the stack's state directory.
//!
//! The store keeps history, never live state (decision 1): a missing or
//! corrupt store is moved aside and started anew with a warning, and the
//! running stack is not affected.

use rusqlite::{params, Connection, OptionalExtension};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
#[error("history store {path}: {source}")]
pub struct StoreError {
    pub path: PathBuf,
    #[source]
    pub source: rusqlite::Error,
}

/// The state directory of a stack: `$TUG_STATE_DIR/<stack>`, else
/// `$XDG_STATE_HOME/tug/<stack>`, else `~/.local/state/tug/<stack>`.
pub fn state_dir(stack: &str) -> PathBuf {
    let base = std::env::var_os("TUG_STATE_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("XDG_STATE_HOME").map(|d| PathBuf::from(d).join("tug")))
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state/tug")))
        .unwrap_or_else(|| std::env::temp_dir().join("tug-state"));
    base.join(stack)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Pending,
    Succeeded,
    Failed,
    RolledBack,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Pending => "pending",
            Outcome::Succeeded => "succeeded",
            Outcome::Failed => "failed",
            Outcome::RolledBack => "rolled-back",
        }
    }
    fn parse(s: &str) -> Outcome {
        match s {
            "succeeded" => Outcome::Succeeded,
            "failed" => Outcome::Failed,
            "rolled-back" => Outcome::RolledBack,
            _ => Outcome::Pending,
        }
    }
}

/// One applied revision of the stack.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Revision {
    pub id: i64,
    /// Seconds since the epoch.
    pub created: i64,
    pub outcome: Outcome,
    pub message: String,
    /// The resolved stack as applied (tug-spec's JSON form).
    pub spec: serde_json::Value,
    /// The image each service ran, by service.
    pub images: BTreeMap<String, String>,
}

impl Revision {
    /// The stack of this revision, with each service pinned to the image it
    /// ran, so a rollback runs exactly what ran then.
    pub fn pinned_stack(
        &self,
        dir: &Path,
        file: &Path,
    ) -> Result<tug_spec::Stack, serde_json::Error> {
        let mut stack: tug_spec::Stack = serde_json::from_value(self.spec.clone())?;
        stack.dir = dir.to_path_buf();
        stack.file = file.to_path_buf();
        for (name, svc) in stack.services.iter_mut() {
            if let Some(image) = self.images.get(name) {
                svc.image = Some(image.clone());
                svc.build = None;
            }
        }
        Ok(stack)
    }

    /// Services whose spec differs from `previous` (all of them without one).
    pub fn changed_services(&self, previous: Option<&Revision>) -> Vec<String> {
        let services = |r: &Revision| {
            r.spec
                .get("services")
                .and_then(|s| s.as_object())
                .cloned()
                .unwrap_or_default()
        };
        let mine = services(self);
        let Some(prev) = previous else {
            return mine.keys().cloned().collect();
        };
        let theirs = services(prev);
        let mut names: Vec<String> = mine.keys().chain(theirs.keys()).cloned().collect();
        names.sort();
        names.dedup();
        names
            .into_iter()
            .filter(|n| mine.get(n) != theirs.get(n) || self.images.get(n) != prev.images.get(n))
            .collect()
    }
}

pub struct Store {
    conn: Connection,
    path: PathBuf,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS revisions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created INTEGER NOT NULL,
    outcome TEXT NOT NULL,
    message TEXT NOT NULL DEFAULT '',
    spec TEXT NOT NULL,
    images TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time INTEGER NOT NULL,
    revision INTEGER,
    event TEXT NOT NULL
);
";

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl Store {
    /// Opens (creating) the store at `path`. A corrupt store is moved aside
    /// and replaced by an empty one; the returned warning says so.
    pub fn open(path: &Path) -> Result<(Store, Option<String>), StoreError> {
        let err = |source| StoreError {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        match Self::try_open(path) {
            Ok(s) => Ok((s, None)),
            Err(e) if is_corrupt(&e) => {
                let aside = path.with_extension(format!("corrupt-{}", now()));
                let _ = std::fs::rename(path, &aside);
                for ext in ["db-wal", "db-shm"] {
                    let _ = std::fs::remove_file(path.with_extension(ext));
                }
                let s = Self::try_open(path).map_err(err)?;
                Ok((s, Some(format!("the history store {} was unreadable ({e}); it was moved to {} and history starts anew", path.display(), aside.display()))))
            }
            Err(e) => Err(err(e)),
        }
    }

    fn try_open(path: &Path) -> rusqlite::Result<Store> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.execute_batch(SCHEMA)?;
        // Touch the tables: a damaged file often opens fine and fails here.
        conn.query_row("SELECT count(*) FROM revisions", [], |r| r.get::<_, i64>(0))?;
        Ok(Store {
            conn,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, source: rusqlite::Error) -> StoreError {
        StoreError {
            path: self.path.clone(),
            source,
        }
    }

    /// Records a new revision as pending; returns its id.
    pub fn begin(&self, stack: &tug_spec::Stack, message: &str) -> Result<i64, StoreError> {
        let spec = serde_json::to_string(stack).unwrap_or_else(|_| "{}".into());
        self.conn
            .execute("INSERT INTO revisions (created, outcome, message, spec) VALUES (?1, 'pending', ?2, ?3)", params![now(), message, spec])
            .map_err(|e| self.err(e))?;
        Ok(self.conn.last_insert_rowid())
    }

    pub fn finish(
        &self,
        id: i64,
        outcome: Outcome,
        message: &str,
        images: &BTreeMap<String, String>,
    ) -> Result<(), StoreError> {
        let images = serde_json::to_string(images).unwrap_or_else(|_| "{}".into());
        self.conn
            .execute(
                "UPDATE revisions SET outcome = ?2, message = CASE WHEN ?3 = '' THEN message ELSE ?3 END, images = ?4 WHERE id = ?1",
                params![id, outcome.as_str(), message, images],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Revision> {
        let spec: String = r.get(4)?;
        let images: String = r.get(5)?;
        Ok(Revision {
            id: r.get(0)?,
            created: r.get(1)?,
            outcome: Outcome::parse(&r.get::<_, String>(2)?),
            message: r.get(3)?,
            spec: serde_json::from_str(&spec).unwrap_or(serde_json::Value::Null),
            images: serde_json::from_str(&images).unwrap_or_default(),
        })
    }

    /// Newest first.
    pub fn revisions(&self, limit: usize) -> Result<Vec<Revision>, StoreError> {
        let mut q = self
            .conn
            .prepare("SELECT id, created, outcome, message, spec, images FROM revisions ORDER BY id DESC LIMIT ?1")
            .map_err(|e| self.err(e))?;
        let rows = q
            .query_map([limit as i64], Self::row)
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    pub fn revision(&self, id: i64) -> Result<Option<Revision>, StoreError> {
        self.conn
            .query_row(
                "SELECT id, created, outcome, message, spec, images FROM revisions WHERE id = ?1",
                [id],
                Self::row,
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// The newest succeeded revision older than `before` (or the newest of all).
    pub fn last_good(&self, before: Option<i64>) -> Result<Option<Revision>, StoreError> {
        self.conn
            .query_row(
                "SELECT id, created, outcome, message, spec, images FROM revisions WHERE outcome = 'succeeded' AND id < ?1 ORDER BY id DESC LIMIT 1",
                [before.unwrap_or(i64::MAX)],
                Self::row,
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    pub fn append_event(
        &self,
        revision: Option<i64>,
        event: &crate::Event,
    ) -> Result<i64, StoreError> {
        let json = serde_json::to_string(event).unwrap_or_default();
        self.conn
            .execute(
                "INSERT INTO events (time, revision, event) VALUES (?1, ?2, ?3)",
                params![now(), revision, json],
            )
            .map_err(|e| self.err(e))?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Events after `after` (an event id), oldest first: (id, time, event JSON).
    pub fn events(
        &self,
        after: i64,
        limit: usize,
    ) -> Result<Vec<(i64, i64, serde_json::Value)>, StoreError> {
        let mut q = self
            .conn
            .prepare("SELECT id, time, event FROM events WHERE id > ?1 ORDER BY id LIMIT ?2")
            .map_err(|e| self.err(e))?;
        let rows = q
            .query_map(params![after, limit as i64], |r| {
                let e: String = r.get(2)?;
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    serde_json::from_str(&e).unwrap_or(serde_json::Value::Null),
                ))
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }
}

fn is_corrupt(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseCorrupt) | Some(rusqlite::ErrorCode::NotADatabase)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stack(yaml: &str) -> tug_spec::Stack {
        tug_spec::parse_str(yaml, "/srv/tug.yaml".as_ref()).unwrap()
    }

    #[test]
    fn revisions_round_trip_and_last_good() {
        let dir = tempfile::tempdir().unwrap();
        let (s, warn) = Store::open(&dir.path().join("tug.db")).unwrap();
        assert!(warn.is_none());
        let a = s
            .begin(
                &stack("name: s\nservices:\n  api:\n    build: { rust: { package: hello } }\n"),
                "up",
            )
            .unwrap();
        s.finish(
            a,
            Outcome::Succeeded,
            "",
            &BTreeMap::from([("api".into(), "s-api:111".into())]),
        )
        .unwrap();
        let b = s
            .begin(&stack("name: s\nservices:\n  api:\n    image: x:2\n"), "up")
            .unwrap();
        s.finish(b, Outcome::RolledBack, "unhealthy", &BTreeMap::new())
            .unwrap();
        let revs = s.revisions(10).unwrap();
        assert_eq!(
            revs.iter().map(|r| (r.id, r.outcome)).collect::<Vec<_>>(),
            [(b, Outcome::RolledBack), (a, Outcome::Succeeded)]
        );
        assert_eq!(revs[0].message, "unhealthy");
        assert_eq!(s.last_good(None).unwrap().unwrap().id, a);
        assert_eq!(s.last_good(Some(a)).unwrap(), None);
        let pinned = s
            .revision(a)
            .unwrap()
            .unwrap()
            .pinned_stack(Path::new("/srv"), Path::new("/srv/tug.yaml"))
            .unwrap();
        assert_eq!(pinned.services["api"].image.as_deref(), Some("s-api:111"));
        assert!(pinned.services["api"].build.is_none());
        assert_eq!(
            revs[0].changed_services(Some(&revs[1])),
            vec!["api".to_string()]
        );
    }

    #[test]
    fn survives_reopen_and_replaces_a_corrupt_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tug.db");
        {
            let (s, _) = Store::open(&path).unwrap();
            s.begin(&stack("name: s\nservices: {}\n"), "up").unwrap();
        }
        let (s, _) = Store::open(&path).unwrap();
        assert_eq!(s.revisions(10).unwrap().len(), 1);
        drop(s);
        std::fs::write(
            &path,
            b"this is not a database, just garbage bytes that fill a page.......",
        )
        .unwrap();
        let _ = std::fs::remove_file(path.with_extension("db-wal"));
        let (s, warn) = Store::open(&path).unwrap();
        assert!(warn.unwrap().contains("moved to"));
        assert!(s.revisions(10).unwrap().is_empty());
    }

    #[test]
    fn events_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let (s, _) = Store::open(&dir.path().join("tug.db")).unwrap();
        let e1 = s
            .append_event(None, &crate::Event::UpToDate { stack: "s".into() })
            .unwrap();
        s.append_event(
            Some(1),
            &crate::Event::Creating {
                service: "api".into(),
                replica: 0,
            },
        )
        .unwrap();
        let all = s.events(0, 10).unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[1].2["event"], "creating");
        assert_eq!(s.events(e1, 10).unwrap().len(), 1);
    }
}
