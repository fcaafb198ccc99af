//! The history store: every applied revision of a stack, and its events, in
//! SQLite (WAL, one transaction per write) in the stack's state directory.
//!
//! The store keeps history, never live state (decision 1): a missing or
//! corrupt store is moved aside and started anew with a warning, and the
//! running stack is not affected.

use crate::bus::{Bus, Published, Received};
use rusqlite::{params, Connection, OptionalExtension};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::broadcast;

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
    /// The run applying it stopped half-way (a signal, a kill, an agent
    /// shutdown); the agent or the next `tug up` carries it on.
    Interrupted,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Pending => "pending",
            Outcome::Succeeded => "succeeded",
            Outcome::Failed => "failed",
            Outcome::RolledBack => "rolled-back",
            Outcome::Interrupted => "interrupted",
        }
    }
    fn parse(s: &str) -> Outcome {
        match s {
            "succeeded" => Outcome::Succeeded,
            "failed" => Outcome::Failed,
            "rolled-back" => Outcome::RolledBack,
            "interrupted" => Outcome::Interrupted,
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
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::create_dir_all(dir);
            // The state directory is its owner's only, whatever the umask.
            let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
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
        // SQLite gives the -wal and -shm files the database file's mode.
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
        }
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

    /// A store that keeps nothing past this process: for an agent whose
    /// store cannot be opened, so its event stream still works.
    pub fn in_memory() -> Result<Store, StoreError> {
        let path = PathBuf::from(":memory:");
        let open = || -> rusqlite::Result<Connection> {
            let conn = Connection::open_in_memory()?;
            conn.execute_batch(SCHEMA)?;
            Ok(conn)
        };
        match open() {
            Ok(conn) => Ok(Store { conn, path }),
            Err(source) => Err(StoreError { path, source }),
        }
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

    /// Records the images a revision runs as soon as they are known, so an
    /// interrupted revision can be carried on with exactly those images.
    pub fn set_images(&self, id: i64, images: &BTreeMap<String, String>) -> Result<(), StoreError> {
        let images = serde_json::to_string(images).unwrap_or_else(|_| "{}".into());
        self.conn
            .execute(
                "UPDATE revisions SET images = ?2 WHERE id = ?1",
                params![id, images],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Forgets a revision that changed nothing (and its events).
    pub fn discard(&self, id: i64) -> Result<(), StoreError> {
        self.conn
            .execute("DELETE FROM events WHERE revision = ?1", [id])
            .and_then(|_| {
                self.conn
                    .execute("DELETE FROM revisions WHERE id = ?1", [id])
            })
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Marks every pending revision interrupted: called by whoever holds the
    /// stack's apply lock, so no run is still applying them. Their ids.
    pub fn interrupt_pending(&self) -> Result<Vec<i64>, StoreError> {
        let mut q = self
            .conn
            .prepare("UPDATE revisions SET outcome = 'interrupted' WHERE outcome = 'pending' RETURNING id")
            .map_err(|e| self.err(e))?;
        let ids = q
            .query_map([], |r| r.get(0))
            .map_err(|e| self.err(e))?
            .collect::<Result<_, _>>()
            .map_err(|e| self.err(e));
        ids
    }

    /// The revision the stack is headed for: the newest one that succeeded,
    /// or that was interrupted (or is pending) once its images were known
    /// and is newer than the last good one. Failed and rolled-back ones are
    /// not headed for.
    pub fn last_requested(&self) -> Result<Option<Revision>, StoreError> {
        let good = self.last_good(None)?;
        let mut q = self
            .conn
            .prepare("SELECT id, created, outcome, message, spec, images FROM revisions WHERE outcome IN ('pending', 'interrupted') AND id > ?1 ORDER BY id DESC")
            .map_err(|e| self.err(e))?;
        let newer: Vec<Revision> = q
            .query_map([good.as_ref().map(|g| g.id).unwrap_or(0)], Self::row)
            .map_err(|e| self.err(e))?
            .collect::<Result<_, _>>()
            .map_err(|e| self.err(e))?;
        let complete = |r: &Revision| {
            r.spec
                .get("services")
                .and_then(|s| s.as_object())
                .is_some_and(|s| s.keys().all(|k| r.images.contains_key(k)))
        };
        Ok(newer.into_iter().find(complete).or(good))
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

    /// Records a batch of published events in one transaction; their ids.
    pub fn append_events(&self, batch: &[Arc<Published>]) -> Result<Vec<i64>, StoreError> {
        let tx = self.conn.unchecked_transaction().map_err(|e| self.err(e))?;
        let mut ids = Vec::with_capacity(batch.len());
        {
            let mut q = tx
                .prepare_cached("INSERT INTO events (time, revision, event) VALUES (?1, ?2, ?3)")
                .map_err(|e| self.err(e))?;
            for p in batch {
                let json = serde_json::to_string(&p.event).unwrap_or_default();
                q.execute(params![p.time, p.revision, json])
                    .map_err(|e| self.err(e))?;
                ids.push(self.conn.last_insert_rowid());
            }
        }
        tx.commit().map_err(|e| self.err(e))?;
        Ok(ids)
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

/// An event as the store recorded it.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Recorded {
    /// The store's id: `tug events --since ID`, `GET /v1/events?after=ID`.
    pub id: i64,
    pub time: i64,
    pub event: serde_json::Value,
}

/// Most events written in one transaction.
const BATCH: usize = 512;

/// The one writer of events: a thread subscribed to the bus that records
/// what is published in batches (one transaction for whatever has queued up),
/// then announces each recorded event, with its id, to [`Writer::recorded`]
/// subscribers (the agent's server-sent events).
pub struct Writer {
    thread: Option<std::thread::JoinHandle<()>>,
    recorded: broadcast::Sender<Arc<Recorded>>,
}

impl Writer {
    /// Starts recording the events of `bus` in `store`. The writer ends
    /// when every clone of the bus is dropped and the rest is written.
    pub fn spawn(mut store: Store, bus: &Bus) -> Writer {
        let mut sub = bus.subscribe();
        let (recorded, _) = broadcast::channel(crate::bus::CAPACITY);
        let announce = recorded.clone();
        let thread = std::thread::Builder::new()
            .name("tug-store-writer".into())
            .spawn(move || {
                let mut batch: Vec<Arc<Published>> = Vec::new();
                let take = |r: Received, batch: &mut Vec<Arc<Published>>| match r {
                    Received::Event(p) => batch.push(p),
                    Received::Missed(count) => {
                        tracing::warn!(count, "the store writer fell behind; events dropped");
                        batch.push(Arc::new(Published {
                            time: crate::bus::now(),
                            revision: None,
                            event: crate::Event::EventsDropped { count },
                        }));
                    }
                };
                while let Some(first) = sub.blocking_recv() {
                    take(first, &mut batch);
                    while batch.len() < BATCH {
                        match sub.try_recv() {
                            Some(r) => take(r, &mut batch),
                            None => break,
                        }
                    }
                    // A store deleted under the writer is started anew, as
                    // `Store::open` does for a corrupt one.
                    if store.path() != Path::new(":memory:") && !store.path().exists() {
                        if let Ok((fresh, _)) = Store::open(store.path()) {
                            tracing::warn!(path = %fresh.path().display(), "the history store was removed; recording anew");
                            store = fresh;
                        }
                    }
                    match store.append_events(&batch) {
                        Ok(ids) => {
                            for (id, p) in ids.into_iter().zip(&batch) {
                                let _ = announce.send(Arc::new(Recorded {
                                    id,
                                    time: p.time,
                                    event: serde_json::to_value(&p.event)
                                        .unwrap_or(serde_json::Value::Null),
                                }));
                            }
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, events = batch.len(), "recording events failed")
                        }
                    }
                    batch.clear();
                }
            })
            .ok();
        if thread.is_none() {
            tracing::warn!("could not start the store writer: events are not recorded");
        }
        Writer { thread, recorded }
    }

    /// Recorded events from now on.
    pub fn recorded(&self) -> broadcast::Receiver<Arc<Recorded>> {
        self.recorded.subscribe()
    }

    /// A handle that subscribes to recorded events, for other tasks.
    pub fn announcer(&self) -> broadcast::Sender<Arc<Recorded>> {
        self.recorded.clone()
    }

    /// Waits until the writer has written everything (every clone of its
    /// bus must be dropped first, or this waits for ever). Blocking.
    pub fn finish(mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
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
    fn interrupted_revisions_are_headed_for_once_their_images_are_known() {
        let dir = tempfile::tempdir().unwrap();
        let (s, _) = Store::open(&dir.path().join("tug.db")).unwrap();
        let st = |image: &str| stack(&format!("name: s\nservices:\n  api:\n    image: {image}\n"));
        let images = |i: &str| BTreeMap::from([("api".to_string(), i.to_string())]);
        let a = s.begin(&st("x:1"), "up").unwrap();
        s.finish(a, Outcome::Succeeded, "", &images("x:1")).unwrap();
        // Killed before its images were resolved: nothing of it ran.
        let b = s.begin(&st("x:2"), "up").unwrap();
        assert_eq!(s.last_requested().unwrap().unwrap().id, a);
        // Killed mid-rollout: its images are known, so it is carried on.
        let c = s.begin(&st("x:3"), "up").unwrap();
        s.set_images(c, &images("x:3")).unwrap();
        assert_eq!(s.interrupt_pending().unwrap(), vec![b, c]);
        let r = s.last_requested().unwrap().unwrap();
        assert_eq!((r.id, r.outcome), (c, Outcome::Interrupted));
        // Once it fails, the last good one is headed for again.
        s.finish(c, Outcome::Failed, "unhealthy", &BTreeMap::new())
            .unwrap();
        assert_eq!(s.last_requested().unwrap().unwrap().id, a);
        // A revision that changed nothing is not kept.
        let d = s.begin(&st("x:1"), "up").unwrap();
        s.discard(d).unwrap();
        assert!(s.revision(d).unwrap().is_none());
        assert_eq!(s.revisions(10).unwrap().len(), 3);
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

    #[tokio::test]
    async fn the_writer_records_every_published_event_and_announces_its_id() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tug.db");
        let (s, _) = Store::open(&path).unwrap();
        let bus = Bus::new();
        let writer = Writer::spawn(s, &bus);
        let mut recorded = writer.recorded();
        for i in 0..1000 {
            bus.publish(
                Some(7),
                crate::Event::Creating {
                    service: "api".into(),
                    replica: i,
                },
            );
        }
        let first = recorded.recv().await.unwrap();
        assert_eq!(first.event["replica"], 0);
        drop(bus);
        tokio::task::spawn_blocking(move || writer.finish())
            .await
            .unwrap();
        let (s, _) = Store::open(&path).unwrap();
        let all = s.events(0, 5000).unwrap();
        assert_eq!(all.len(), 1000);
        assert_eq!(all[0].0, first.id);
        assert_eq!(all[999].2["replica"], 999);
    }
}
