//! Connections to replicas, watched so the gateway can close them when their
//! replica leaves the pools. Many applications wait for their keep-alive
//! connections to end before they stop (Go's `Shutdown`, hyper's graceful
//! shutdown); left in the pool, an idle connection would hold such a stop
//! for the whole grace period.
//!
//! - An idle HTTP/1.1 connection closes as soon as its replica retires.
//! - A busy one closes once its response is done instead of going back to
//!   the pool.
//! - An h2c connection is shared by many requests: it closes once its
//!   replica has none in flight (the gateway calls [`close`]).
//!
//! A connection is closed by ending its reads: hyper's dispatcher, polling
//! an idle connection for end of file, sees one and drops the socket.
//!
//! Caveat: a request that picked the replica just before it retired may
//! still take an idle connection in the instant it is being closed; hyper
//! sends a request that was never written again on a new connection.

use atomic_waker::AtomicWaker;
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::rt::TokioIo;
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};
use tokio::net::TcpStream;

/// A request is on the connection (between its first write and its
/// response's end).
const BUSY: u64 = 1;
/// The replica left the pools.
const RETIRED: u64 = 2;
/// Reads end, writes fail.
const CLOSED: u64 = 4;
/// The rest of the word counts writes, so the end of one response cannot
/// mark idle a connection the next request already wrote to.
const WRITE: u64 = 8;

/// One connection's state, shared by its I/O and the requests on it.
pub(crate) struct Link {
    state: AtomicU64,
    /// h2c: many requests at once, so idleness is the replica's to judge.
    multiplexed: bool,
    waker: AtomicWaker,
}

impl Link {
    fn new(multiplexed: bool) -> Self {
        // Made for a request that is about to be written.
        Link {
            state: AtomicU64::new(BUSY),
            multiplexed,
            waker: AtomicWaker::new(),
        }
    }

    fn closed(&self) -> bool {
        self.state.load(Ordering::Acquire) & CLOSED != 0
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed()
    }

    /// A request is about to be written: its generation, or `None` once
    /// the connection is closed.
    pub(crate) fn begin(&self) -> Option<u64> {
        self.writing().then(|| self.generation())
    }

    /// Wakes `w` when the connection is to close.
    pub(crate) fn watch(&self, w: &std::task::Waker) {
        self.waker.register(w);
    }

    /// Writes so far, read when a response's head arrives.
    pub(crate) fn generation(&self) -> u64 {
        self.state.load(Ordering::Acquire) / WRITE
    }

    /// Before a write: false once closed.
    fn writing(&self) -> bool {
        self.state
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |s| {
                (s & CLOSED == 0).then_some(s.wrapping_add(WRITE) | BUSY)
            })
            .is_ok()
    }

    /// The response whose head arrived at `generation` is over: unless the
    /// connection was written to since, it is idle (and closes if retired).
    pub(crate) fn done(&self, generation: u64) {
        if self.multiplexed {
            return;
        }
        let was = self
            .state
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |s| {
                (s / WRITE == generation && s & BUSY != 0).then_some(s & !BUSY)
            });
        if matches!(was, Ok(s) if s & RETIRED != 0) {
            self.close_idle();
        }
    }

    fn retire(&self) {
        if self.state.fetch_or(RETIRED, Ordering::AcqRel) & BUSY == 0 {
            self.close_idle();
        }
    }

    fn close_idle(&self) {
        let closed = self
            .state
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |s| {
                (s & (BUSY | CLOSED) == 0).then_some(s | CLOSED)
            })
            .is_ok();
        if closed {
            self.waker.wake();
        }
    }

    fn close(&self) {
        if self.state.fetch_or(CLOSED, Ordering::AcqRel) & CLOSED == 0 {
            self.waker.wake();
        }
    }
}

/// The connections to each replica address. Locked when a connection is
/// made or a replica retires, never per request.
#[derive(Default)]
pub(crate) struct Links {
    by_addr: Mutex<HashMap<SocketAddr, Vec<Weak<Link>>>>,
}

impl Links {
    fn add(&self, addr: SocketAddr, link: &Arc<Link>) {
        let mut m = self.by_addr.lock().unwrap_or_else(|e| e.into_inner());
        let v = m.entry(addr).or_default();
        v.retain(|w| w.strong_count() > 0);
        v.push(Arc::downgrade(link));
    }

    /// A new connection to `addr`, about to carry a request.
    pub(crate) fn link(&self, addr: SocketAddr) -> Arc<Link> {
        let link = Arc::new(Link::new(false));
        self.add(addr, &link);
        link
    }

    /// The replica at `addr` left the pools: its idle connections close
    /// now, busy HTTP/1.1 ones when their response is done. Returns them
    /// all, for [`close`] once the replica has nothing in flight.
    pub(crate) fn retire(&self, addr: SocketAddr) -> Vec<Arc<Link>> {
        let taken = self
            .by_addr
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&addr)
            .unwrap_or_default();
        let links: Vec<Arc<Link>> = taken.iter().filter_map(Weak::upgrade).collect();
        for l in &links {
            l.retire();
        }
        if !links.is_empty() {
            tracing::debug!(replica = %addr, connections = links.len(), "closing connections to a retired replica");
        }
        links
    }

    /// Open connections to `addr`.
    #[cfg(test)]
    fn open(&self, addr: SocketAddr) -> usize {
        let m = self.by_addr.lock().unwrap_or_else(|e| e.into_inner());
        m.get(&addr).map_or(0, |v| {
            v.iter()
                .filter_map(Weak::upgrade)
                .filter(|l| !l.closed())
                .count()
        })
    }
}

/// Closes connections whose replica has no request in flight any more.
pub(crate) fn close(links: &[Arc<Link>]) {
    for l in links {
        l.close();
    }
}

/// Marks a response with the connection it came on.
#[derive(Clone)]
pub(crate) struct LinkTag(pub Arc<Link>);

/// hyper's connector, registering each connection it makes.
#[derive(Clone)]
pub(crate) struct Connector {
    pub http: HttpConnector,
    pub links: Arc<Links>,
    pub multiplexed: bool,
}

type Connecting = Pin<Box<dyn Future<Output = Result<Linked, crate::BoxError>> + Send>>;

impl tower_service::Service<http::Uri> for Connector {
    type Response = Linked;
    type Error = crate::BoxError;
    type Future = Connecting;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), crate::BoxError>> {
        self.http.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, uri: http::Uri) -> Connecting {
        let connecting = self.http.call(uri);
        let links = Arc::clone(&self.links);
        let multiplexed = self.multiplexed;
        Box::pin(async move {
            let io = connecting.await?;
            let link = Arc::new(Link::new(multiplexed));
            if let Ok(addr) = io.inner().peer_addr() {
                links.add(addr, &link);
            }
            Ok(Linked { io, link })
        })
    }
}

/// A connection to a replica that the gateway can end.
pub(crate) struct Linked {
    io: TokioIo<TcpStream>,
    link: Arc<Link>,
}

impl Connection for Linked {
    fn connected(&self) -> Connected {
        Connected::new().extra(LinkTag(Arc::clone(&self.link)))
    }
}

fn gone() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "the replica left the pool")
}

impl Read for Linked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        if self.link.closed() {
            return Poll::Ready(Ok(()));
        }
        let r = Pin::new(&mut self.io).poll_read(cx, buf);
        if r.is_pending() {
            self.link.waker.register(cx.waker());
            // Closed in between: the wake went to the old waker.
            if self.link.closed() {
                return Poll::Ready(Ok(()));
            }
        }
        r
    }
}

impl Write for Linked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if !self.link.writing() {
            return Poll::Ready(Err(gone()));
        }
        Pin::new(&mut self.io).poll_write(cx, buf)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if !self.link.writing() {
            return Poll::Ready(Err(gone()));
        }
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_idle_connection_closes_when_retired_a_busy_one_when_done() {
        let links = Links::default();
        let addr: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let (idle, busy) = (Arc::new(Link::new(false)), Arc::new(Link::new(false)));
        links.add(addr, &idle);
        links.add(addr, &busy);
        for l in [&idle, &busy] {
            assert!(l.writing());
        }
        let g = idle.generation();
        idle.done(g);
        let head = busy.generation();
        assert_eq!(links.open(addr), 2);
        let taken = links.retire(addr);
        assert_eq!(taken.len(), 2);
        assert!(idle.closed(), "idle: closed at once");
        assert!(!busy.closed(), "busy: left to finish");
        busy.done(head);
        assert!(busy.closed(), "closed once its response is done");
        assert!(!busy.writing(), "a closed connection takes no request");
    }

    #[test]
    fn a_stale_response_end_does_not_idle_the_next_request() {
        let l = Link::new(false);
        assert!(l.writing());
        let first = l.generation();
        // The next request is written before the first response's end is seen.
        assert!(l.writing());
        l.done(first);
        l.retire();
        assert!(!l.closed(), "the second request is still on it");
        l.done(l.generation());
        assert!(l.closed());
    }

    #[test]
    fn a_multiplexed_connection_waits_for_the_replica() {
        let l = Link::new(true);
        assert!(l.writing());
        l.done(l.generation());
        l.retire();
        assert!(!l.closed());
        l.close();
        assert!(l.closed());
    }
}
