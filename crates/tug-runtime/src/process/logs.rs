//! Log lines from a container's `stdout.log` and `stderr.log`.
//!
//! The two files carry no timestamps, so lines cannot be interleaved in the
//! order they were written: the stdout lines come first, then the stderr
//! lines, and `tail` applies to each stream. Lines read while following are
//! stamped as they are read (within [`POLL`] of their writing); the history
//! has no times, so a `since`/`until` window leaves it out.

use super::store::Store;
use super::supervise::{alive, read_exit};
use crate::{LogLine, LogOptions, LogStream, Result, RuntimeError};
use futures_util::StreamExt;
use std::collections::VecDeque;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

const POLL: Duration = Duration::from_millis(100);

struct Source {
    stream: LogStream,
    path: PathBuf,
    offset: u64,
    partial: Vec<u8>,
}

impl Source {
    /// Complete lines written since the last read, stamped `time`.
    fn read_new(&mut self, time: Option<SystemTime>) -> Vec<LogLine> {
        let Ok(mut f) = File::open(&self.path) else {
            return Vec::new();
        };
        let mut buf = Vec::new();
        if f.seek(SeekFrom::Start(self.offset)).is_err() || f.read_to_end(&mut buf).is_err() {
            return Vec::new();
        }
        self.offset += buf.len() as u64;
        self.partial.extend_from_slice(&buf);
        let mut lines = Vec::new();
        while let Some(i) = self.partial.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=i).collect();
            lines.push(self.line(&line, time));
        }
        lines
    }

    fn line(&self, bytes: &[u8], time: Option<SystemTime>) -> LogLine {
        LogLine {
            stream: self.stream,
            text: String::from_utf8_lossy(bytes)
                .trim_end_matches(['\n', '\r'])
                .to_string(),
            time,
        }
    }

    /// The last line when the file does not end in a newline.
    fn flush(&mut self, time: Option<SystemTime>) -> Option<LogLine> {
        if self.partial.is_empty() {
            return None;
        }
        let line = self.line(&self.partial, time);
        self.partial.clear();
        Some(line)
    }
}

struct Follow {
    store: Arc<Store>,
    name: String,
    sources: Vec<Source>,
    queue: VecDeque<Result<LogLine>>,
    done: bool,
    opts: LogOptions,
}

impl Follow {
    /// Whether the program may still write: running, or exited with the
    /// supervisor not yet done.
    fn live(&self) -> bool {
        let Ok(Some(c)) = self.store.load(&self.name) else {
            return false;
        };
        let Some(run) = c.run else { return false };
        read_exit(&self.store.container_dir(&self.name)).is_none()
            && (alive(run.pid, run.start_time) || alive(run.waiter, run.waiter_start))
    }

    fn drain(&mut self) -> bool {
        let mut got = false;
        let now = Some(SystemTime::now());
        for s in &mut self.sources {
            for l in s.read_new(now) {
                if self.opts.admits(l.time) {
                    self.queue.push_back(Ok(l));
                }
                got = true;
            }
        }
        got
    }
}

pub(crate) fn stream(
    store: Arc<Store>,
    id: String,
    opts: LogOptions,
) -> futures_util::stream::BoxStream<'static, Result<LogLine>> {
    let start = {
        let store = store.clone();
        move || -> Follow {
            let mut f = Follow {
                store: store.clone(),
                name: String::new(),
                sources: Vec::new(),
                queue: VecDeque::new(),
                done: true,
                opts,
            };
            let c = match store.find(&id) {
                Ok(Some(c)) => c,
                Ok(None) => {
                    f.queue
                        .push_back(Err(RuntimeError::NotFound(format!("container {id}"))));
                    return f;
                }
                Err(e) => {
                    f.queue.push_back(Err(e));
                    return f;
                }
            };
            let dir = store.container_dir(&c.name);
            f.name = c.name;
            for (stream, file) in [
                (LogStream::Stdout, "stdout.log"),
                (LogStream::Stderr, "stderr.log"),
            ] {
                let mut s = Source {
                    stream,
                    path: dir.join(file),
                    offset: 0,
                    partial: Vec::new(),
                };
                let mut lines = s.read_new(None);
                if !opts.follow {
                    lines.extend(s.flush(None));
                }
                lines.retain(|l| opts.admits(l.time));
                let skip = opts.tail.map_or(0, |t| lines.len().saturating_sub(t));
                f.queue.extend(lines.into_iter().skip(skip).map(Ok));
                f.sources.push(s);
            }
            f.done = !opts.follow;
            f
        }
    };
    futures_util::stream::unfold(None, move |state: Option<Follow>| {
        let start = start.clone();
        async move {
            let mut f = match state {
                Some(f) => f,
                None => start(),
            };
            loop {
                if let Some(item) = f.queue.pop_front() {
                    return Some((item, Some(f)));
                }
                if f.done {
                    return None;
                }
                if f.drain() {
                    continue;
                }
                if !f.live() {
                    // Exited: take what is left, then end.
                    f.drain();
                    let now = Some(SystemTime::now());
                    for i in 0..f.sources.len() {
                        if let Some(l) = f.sources[i].flush(now) {
                            if opts.admits(l.time) {
                                f.queue.push_back(Ok(l));
                            }
                        }
                    }
                    f.done = true;
                    continue;
                }
                tokio::time::sleep(POLL).await;
            }
        }
    })
    .boxed()
}
