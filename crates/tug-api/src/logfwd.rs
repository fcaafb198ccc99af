//! Forwards the replicas' log lines to the OTLP logs endpoint: one follow
//! of the engine's log stream per running replica, started when
//! supervision first sees it run, ended with the stream.

use crate::api;
use futures_util::StreamExt;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use tug_observe::otlp_logs::{LogForwarder, Stream};
use tug_runtime::{LogStream, Runtime};

/// A replica created this recently has its whole log sent; an older one
/// (the agent restarted) only what it writes from now on.
const NEW_REPLICA_SECS: i64 = 60;

pub(crate) struct LogFollow {
    forwarder: LogForwarder,
    following: Arc<Mutex<HashSet<String>>>,
}

impl LogFollow {
    pub(crate) fn new(forwarder: LogForwarder) -> LogFollow {
        LogFollow {
            forwarder,
            following: Default::default(),
        }
    }

    /// Follows every running replica of `rows` not followed yet.
    pub(crate) fn sync<R: Runtime + Clone + 'static>(&self, rt: &R, rows: &[api::Replica]) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let mut following = self.following.lock().unwrap_or_else(|e| e.into_inner());
        for r in rows.iter().filter(|r| r.state == "running") {
            if !following.insert(r.id.clone()) {
                continue;
            }
            let tail = (now - r.created > NEW_REPLICA_SECS).then_some(0);
            let mut lines = rt.logs(&r.id, tug_runtime::LogOptions::new(tail, true));
            let fwd = self.forwarder.clone();
            let set = Arc::clone(&self.following);
            let (id, service, name) = (r.id.clone(), r.service.clone(), r.name.clone());
            tokio::spawn(async move {
                while let Some(Ok(l)) = lines.next().await {
                    let stream = match l.stream {
                        LogStream::Stdout => Stream::Stdout,
                        LogStream::Stderr => Stream::Stderr,
                    };
                    fwd.line(&service, &name, stream, l.text.trim_end());
                }
                set.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
            });
        }
    }
}
