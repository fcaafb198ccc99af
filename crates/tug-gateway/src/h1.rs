//! HTTP/1.1 served without hyper for the usual exchange: a request without a
//! body or with a small sized one, to a replica that speaks HTTP/1.1. The
//! connection's own task parses the head (httparse), writes it to a pooled
//! connection to the replica (kept by this worker thread) and copies the
//! answer back: no task hop, no channel, no header map per request.
//!
//! Anything else is hyper's, from that request's first byte on, for the rest
//! of the connection: an upgrade, `Expect`, a chunked or large body, HTTP/1.0,
//! h2c, a head httparse rejects or that is over the size limit (hyper
//! answers 400 or 431), a route that is unknown (404) or has no replica
//! (the activator), and a route to an h2c upstream. The answers, and the
//! spans while tracing is on, are the same on both paths.

use crate::links::Link;
use crate::log::AccessEntry;
use crate::proxy::{is_idempotent, Conn, Done, Shared, Tried, HOP_BY_HOP, TIMED_OUT, UNREACHABLE};
use crate::table::{ip_bytes, RouteEntry, Upstream};
use crate::trace::Traced;
use bytes::{Buf, Bytes, BytesMut};
use std::cell::RefCell;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::{Instant, Sleep};
use tug_spec::{Balance, HashKey};

/// How a connection left the fast path.
pub(crate) enum Ended {
    Closed,
    /// For hyper, with the bytes read and not yet served.
    Hyper(TcpStream, Bytes),
}

const MAX_HEADERS: usize = 100;
const MAX_RESPONSE_HEAD: usize = 64 << 10;
/// Idle connections kept per replica and worker thread.
const MAX_IDLE: usize = 256;

fn is(name: &[u8], lower: &str) -> bool {
    name.eq_ignore_ascii_case(lower.as_bytes())
}

fn trim(mut t: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = t {
        t = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = t {
        t = rest;
    }
    t
}

/// A deadline kept by one timer per connection: moving it later costs
/// nothing; the timer is reset only when it fires early.
struct Deadline {
    sleep: Pin<Box<Sleep>>,
    at: Instant,
}

impl Deadline {
    fn new() -> Self {
        let far = Instant::now() + Duration::from_secs(86_400);
        Deadline {
            sleep: Box::pin(tokio::time::sleep_until(far)),
            at: far,
        }
    }

    fn set(&mut self, at: Instant) {
        self.at = at;
        if at < self.sleep.deadline() {
            self.sleep.as_mut().reset(at);
        }
    }

    async fn passed(&mut self) {
        loop {
            self.sleep.as_mut().await;
            if Instant::now() >= self.at {
                return;
            }
            let at = self.at;
            self.sleep.as_mut().reset(at);
        }
    }
}

/// An idle connection to a replica.
struct Idle {
    stream: TcpStream,
    link: Arc<Link>,
    expires: Instant,
}

/// This worker thread's idle connections to replicas.
#[derive(Default)]
struct Pool {
    idle: HashMap<SocketAddr, Vec<Idle>>,
    /// The reaper's waker: a retired replica's link wakes it.
    reaper: Option<Waker>,
}

thread_local! {
    static POOL: RefCell<Pool> = RefCell::new(Pool::default());
}

/// Whether an idle connection is still open: its readiness is known to the
/// runtime, so this costs a system call only when something arrived.
fn still_open(s: &TcpStream) -> bool {
    let mut cx = Context::from_waker(Waker::noop());
    match s.poll_read_ready(&mut cx) {
        Poll::Pending => true,
        Poll::Ready(Err(_)) => false,
        // Readable while idle: closed, or bytes nobody asked for.
        Poll::Ready(Ok(())) => matches!(
            s.try_read(&mut [0u8; 1]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock
        ),
    }
}

fn checkout(addr: SocketAddr) -> Option<(TcpStream, Arc<Link>)> {
    POOL.with(|p| {
        let mut p = p.borrow_mut();
        let v = p.idle.get_mut(&addr)?;
        let now = Instant::now();
        while let Some(i) = v.pop() {
            if !i.link.is_closed() && i.expires > now && still_open(&i.stream) {
                return Some((i.stream, i.link));
            }
        }
        None
    })
}

fn park(addr: SocketAddr, stream: TcpStream, link: Arc<Link>, idle: Duration) {
    POOL.with(|p| {
        let mut p = p.borrow_mut();
        if let Some(w) = &p.reaper {
            link.watch(w);
        }
        let v = p.idle.entry(addr).or_default();
        if v.len() < MAX_IDLE {
            v.push(Idle {
                stream,
                link,
                expires: Instant::now() + idle,
            });
        }
    });
}

/// Closes this thread's idle connections whose replica retired (at once:
/// a retiring link wakes it) or whose idle time is over (each second).
pub(crate) async fn reap() {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    std::future::poll_fn(|cx| {
        while tick.poll_tick(cx).is_ready() {}
        POOL.with(|p| {
            let mut p = p.borrow_mut();
            if !p.reaper.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                p.reaper = Some(cx.waker().clone());
            }
            let now = Instant::now();
            p.idle.retain(|_, v| {
                v.retain(|i| !i.link.is_closed() && i.expires > now);
                !v.is_empty()
            });
        });
        Poll::<()>::Pending
    })
    .await
}

/// What the access log needs of a request, taken only when it is on.
struct LogFields {
    method: String,
    host: String,
    path: String,
    user_agent: String,
    referer: String,
}

/// A request read whole and written out for the replica.
struct Ready {
    route: Arc<RouteEntry>,
    idempotent: bool,
    head: bool,
    /// The client asked to close after this exchange.
    close: bool,
    keyed: bool,
    log: Option<LogFields>,
    traced: Traced,
    /// Set while tracing is on, for the spans.
    method: Option<http::Method>,
}

// Made once per request and moved right away: a box would cost an allocation.
#[allow(clippy::large_enum_variant)]
enum Prep {
    Ready(Ready),
    /// More bytes are needed.
    More,
    Fallback,
}

/// How the replica's response body ends.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Framing {
    None,
    Length(u64),
    Chunked,
    /// At the end of the connection.
    Eof,
}

struct Answer {
    stream: TcpStream,
    link: Arc<Link>,
    generation: u64,
    status: u16,
    framing: Framing,
    /// The connection may serve another request.
    reusable: bool,
}

enum Failure {
    Connect,
    /// The request may have reached the replica.
    Broken(String),
    Timeout,
}

/// One client connection's buffers, kept across its requests.
struct Session<'a> {
    shared: &'a Shared,
    conn: &'a Conn,
    /// Bytes from the client not yet served.
    buf: BytesMut,
    /// The request as the replica gets it.
    out: Vec<u8>,
    /// The response head as the client gets it (and small bodies).
    resp: Vec<u8>,
    /// Bytes from the replica.
    ubuf: BytesMut,
    rid: Vec<u8>,
    key: Vec<u8>,
    /// Where `out`'s head ends (before its last line), for the trace
    /// context a sampled request's attempts add.
    head_end: usize,
    head_timer: Deadline,
    answer_timer: Deadline,
}

/// Serves `stream` until it closes or needs hyper.
pub(crate) async fn serve(
    shared: &Shared,
    conn: &Conn,
    mut stream: TcpStream,
    stop: &mut watch::Receiver<bool>,
) -> Ended {
    let stopping_now = stop.clone();
    let stopping = crate::proxy::stopped(stop);
    tokio::pin!(stopping);
    let mut s = Session {
        shared,
        conn,
        buf: BytesMut::with_capacity(8192),
        out: Vec::with_capacity(1024),
        resp: Vec::with_capacity(1024),
        ubuf: BytesMut::with_capacity(8192),
        rid: Vec::with_capacity(64),
        key: Vec::new(),
        head_end: 0,
        head_timer: Deadline::new(),
        answer_timer: Deadline::new(),
    };
    let header_timeout = shared.config.header_timeout.std();
    loop {
        s.head_timer.set(Instant::now() + header_timeout);
        let ready = loop {
            match s.prepare() {
                Prep::Ready(r) => break r,
                Prep::Fallback => return Ended::Hyper(stream, s.buf.freeze()),
                Prep::More => {}
            }
            s.buf.reserve(4096);
            let idle = s.buf.is_empty();
            tokio::select! {
                biased;
                r = stream.read_buf(&mut s.buf) => match r {
                    Ok(0) | Err(_) => return Ended::Closed,
                    Ok(_) => {}
                },
                _ = &mut stopping, if idle => return Ended::Closed,
                _ = s.head_timer.passed() => return Ended::Closed,
            }
        };
        let closing = ready.close || *stopping_now.borrow();
        if !s.exchange(&mut stream, ready, closing).await || closing {
            return Ended::Closed;
        }
    }
}

impl Session<'_> {
    /// Parses the request at the start of `buf`; once it is whole, writes
    /// what the replica gets into `out` and consumes it.
    fn prepare(&mut self) -> Prep {
        let shared = self.shared;
        let max_head = (shared.config.max_header_size.0 as usize).max(8192);
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut headers);
        let head_len = match req.parse(&self.buf) {
            Ok(httparse::Status::Complete(n)) if n <= max_head => n,
            Ok(httparse::Status::Partial) if self.buf.len() <= max_head => return Prep::More,
            _ => return Prep::Fallback,
        };
        let (Some(method), Some(path), Some(1)) = (req.method, req.path, req.version) else {
            return Prep::Fallback;
        };
        if !path.starts_with('/') || !path.bytes().all(|b| (0x21..0x7f).contains(&b)) {
            return Prep::Fallback;
        }
        let mut host = None;
        let mut length = None::<u64>;
        let mut close = false;
        let mut named: [&[u8]; 8] = [b""; 8];
        let mut n_named = 0;
        let mut xff = None;
        let mut rid = None;
        let (mut traceparent, mut tracestate) = (None, None);
        for h in req.headers.iter() {
            let n = h.name.as_bytes();
            if is(n, "host") {
                if host.is_some() {
                    return Prep::Fallback;
                }
                host = Some(h.value);
            } else if is(n, "content-length") {
                let v = trim(h.value);
                if length.is_some()
                    || v.is_empty()
                    || v.len() > 18
                    || !v.iter().all(u8::is_ascii_digit)
                {
                    return Prep::Fallback;
                }
                length = Some(v.iter().fold(0, |a, d| a * 10 + u64::from(d - b'0')));
            } else if is(n, "transfer-encoding") || is(n, "upgrade") || is(n, "expect") {
                return Prep::Fallback;
            } else if is(n, "connection") {
                for t in h.value.split(|b| *b == b',').map(trim) {
                    if t.eq_ignore_ascii_case(b"close") {
                        close = true;
                    } else if t.eq_ignore_ascii_case(b"upgrade") || n_named == named.len() {
                        return Prep::Fallback;
                    } else if !t.is_empty() && !t.eq_ignore_ascii_case(b"keep-alive") {
                        named[n_named] = t;
                        n_named += 1;
                    }
                }
            } else if is(n, "x-forwarded-for") {
                xff = xff.or(Some(h.value));
            } else if is(n, "x-request-id") {
                rid = rid.or(Some(h.value));
            } else if is(n, "traceparent") {
                traceparent = traceparent.or(std::str::from_utf8(h.value).ok());
            } else if is(n, "tracestate") {
                tracestate = tracestate.or(std::str::from_utf8(h.value).ok());
            }
        }
        let Some(host_full) = host.and_then(|h| std::str::from_utf8(h).ok()) else {
            return Prep::Fallback;
        };
        let host_name = crate::proxy::strip_port(host_full);
        let route_path = path.split_once('?').map_or(path, |(p, _)| p);
        let Some(route) = shared.table.load().lookup(host_name, route_path).cloned() else {
            return Prep::Fallback;
        };
        if !route.serving() || route.spec.upstream == tug_spec::Upstream::H2c {
            return Prep::Fallback;
        }
        let length = length.unwrap_or(0);
        if length > shared.tuning.replay_limit as u64 || length > shared.config.max_body_size.0 {
            return Prep::Fallback;
        }
        let total = head_len + length as usize;
        if self.buf.len() < total {
            return Prep::More;
        }
        let method_ = shared
            .tracer
            .as_ref()
            .and_then(|_| http::Method::from_bytes(method.as_bytes()).ok());
        let traced = match &method_ {
            Some(m) => crate::trace::enter(
                shared.tracer.as_ref(),
                m,
                route_path,
                http::Version::HTTP_11,
                traceparent,
                tracestate,
                self.conn.client,
            ),
            None => Traced::Off,
        };
        if let Traced::Sampled(cx) = &traced {
            crate::trace::routed(cx, &route.label, &route.service);
        }

        self.rid.clear();
        match rid {
            Some(v) => self.rid.extend_from_slice(v),
            None => self
                .rid
                .extend_from_slice(&crate::proxy::request_id_digits()),
        }
        let out = &mut self.out;
        out.clear();
        out.extend_from_slice(method.as_bytes());
        out.push(b' ');
        if route.spec.strip_prefix && route.spec.path != "/" {
            let rest = &path[route.spec.path.len().min(path.len())..];
            if !rest.starts_with('/') {
                out.push(b'/');
            }
            out.extend_from_slice(rest.as_bytes());
        } else {
            out.extend_from_slice(path.as_bytes());
        }
        out.extend_from_slice(b" HTTP/1.1\r\n");
        const OWN: [&str; 6] = [
            "x-forwarded-for",
            "x-forwarded-proto",
            "x-forwarded-host",
            "x-request-id",
            "traceparent",
            "tracestate",
        ];
        // The trace context is the gateway's to write while tracing is on.
        let own = match &traced {
            Traced::Off => &OWN[..4],
            Traced::Unsampled(_) => &OWN[..5],
            Traced::Sampled(_) => &OWN[..],
        };
        copy_headers(out, req.headers, &named[..n_named], own);
        out.extend_from_slice(b"x-forwarded-for: ");
        if let Some(prev) = xff {
            out.extend_from_slice(prev);
            out.extend_from_slice(b", ");
        }
        out.extend_from_slice(self.conn.client_value.as_bytes());
        out.extend_from_slice(b"\r\nx-forwarded-proto: http\r\nx-forwarded-host: ");
        out.extend_from_slice(host_full.as_bytes());
        out.extend_from_slice(b"\r\nx-request-id: ");
        out.extend_from_slice(&self.rid);
        out.extend_from_slice(b"\r\n");
        if let Traced::Unsampled(tp) = &traced {
            out.extend_from_slice(b"traceparent: ");
            out.extend_from_slice(tp.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        self.head_end = out.len();
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&self.buf[head_len..total]);

        self.key.clear();
        let keyed = match &route.spec.balance {
            Balance::Hash(HashKey::Header(name)) => {
                match req
                    .headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case(name))
                {
                    Some(h) => {
                        self.key.extend_from_slice(h.value);
                        true
                    }
                    None => false,
                }
            }
            Balance::Hash(HashKey::Client) => {
                let (b, n) = ip_bytes(self.conn.client.ip());
                self.key.extend_from_slice(&b[..n]);
                true
            }
            _ => false,
        };
        let log = shared.log.enabled().then(|| {
            let h = |name: &str| {
                req.headers
                    .iter()
                    .find(|h| is(h.name.as_bytes(), name))
                    .map(|h| String::from_utf8_lossy(h.value).into_owned())
                    .unwrap_or_default()
            };
            LogFields {
                method: method.to_string(),
                host: host_name.to_string(),
                path: path.to_string(),
                user_agent: h("user-agent"),
                referer: h("referer"),
            }
        });
        let ready = Ready {
            route,
            idempotent: is_idempotent(method),
            head: method == "HEAD",
            close,
            keyed,
            log,
            traced,
            method: method_,
        };
        self.buf.advance(total);
        Prep::Ready(ready)
    }

    /// Sends the request to a replica (another one on a retry) and relays
    /// the answer. False: the client connection is done.
    async fn exchange(&mut self, client: &mut TcpStream, r: Ready, closing: bool) -> bool {
        let start = std::time::Instant::now();
        let shared = self.shared;
        let route = r.route;
        route.activity.touch();
        route.budget.deposit();
        let attempts = 1 + route.spec.retry.attempts as usize;
        let mut tried = Tried::default();
        let mut last = None::<u16>;
        let mut log = r.log;
        let traced = r.traced;
        for attempt in 0..attempts {
            if attempt > 0 {
                if !route.budget.withdraw() {
                    break;
                }
                route.metrics.retries.inc();
            }
            let key = r.keyed.then_some(&self.key[..]);
            let Some(i) = route.pick(key, tried.as_slice()) else {
                break;
            };
            tried.push(i);
            let up: &Upstream = &route.upstreams[i];
            // A sampled request's attempts each carry their own span's context.
            let (span, spliced) = match (&traced, &shared.tracer, &r.method) {
                (Traced::Sampled(cx), Some(t), Some(m)) => {
                    let mut h = http::HeaderMap::new();
                    let span = crate::trace::attempt(t.tracer(), cx, m, up, attempt, &mut h);
                    let mut o = Vec::with_capacity(self.out.len() + 128);
                    o.extend_from_slice(&self.out[..self.head_end]);
                    for (name, value) in &h {
                        o.extend_from_slice(name.as_str().as_bytes());
                        o.extend_from_slice(b": ");
                        o.extend_from_slice(value.as_bytes());
                        o.extend_from_slice(b"\r\n");
                    }
                    o.extend_from_slice(&self.out[self.head_end..]);
                    (Some(span), Some(o))
                }
                _ => (None, None),
            };
            up.start();
            self.answer_timer
                .set(Instant::now() + route.spec.timeouts.request.std());
            let asked = tokio::select! {
                a = ask(
                    &route,
                    up,
                    spliced.as_deref().unwrap_or(&self.out),
                    &mut self.ubuf,
                    &mut self.resp,
                    &self.rid,
                    r.head,
                    r.idempotent,
                    &shared.links,
                ) => a,
                _ = self.answer_timer.passed() => Err(Failure::Timeout),
            };
            let elapsed = start.elapsed().as_secs_f64();
            if let Some(span) = span {
                let outcome = match &asked {
                    Err(Failure::Timeout) => Err(TIMED_OUT.to_string()),
                    Err(Failure::Connect) => Err(UNREACHABLE.to_string()),
                    Err(Failure::Broken(e)) => Err(e.clone()),
                    Ok(a) => http::StatusCode::from_u16(a.status).map_err(|e| e.to_string()),
                };
                crate::trace::attempt_done(span, outcome);
            }
            match asked {
                Err(f) => {
                    up.finish();
                    up.outcome(true, &shared.tuning);
                    let (code, again) = match f {
                        Failure::Timeout => {
                            (504, r.idempotent && route.spec.retry.on.contains(&504))
                        }
                        Failure::Connect => (502, true),
                        Failure::Broken(e) => {
                            tracing::debug!(replica = %up.name, error = %e, "upstream request failed");
                            (502, r.idempotent && route.spec.retry.on.contains(&502))
                        }
                    };
                    up.metrics.record(code, elapsed);
                    last = Some(code);
                    if !again {
                        break;
                    }
                }
                Ok(a) => {
                    up.outcome(a.status >= 500, &shared.tuning);
                    up.metrics.record(a.status, elapsed);
                    let retry = r.idempotent
                        && route.spec.retry.on.contains(&a.status)
                        && attempt + 1 < attempts
                        && tried.len() < route.upstreams.len();
                    if retry {
                        // Its body is not read: the connection goes.
                        a.link.done(a.generation);
                        up.finish();
                        continue;
                    }
                    let entry = log.take().map(|l| AccessEntry {
                        client: self.conn.client,
                        method: l.method,
                        host: l.host,
                        path: l.path,
                        version: http::Version::HTTP_11,
                        status: a.status,
                        duration: start.elapsed(),
                        route: route.label.clone(),
                        replica: up.name.clone(),
                        attempts: tried.len() as u32,
                        request_id: String::from_utf8_lossy(&self.rid).into_owned(),
                        user_agent: l.user_agent,
                        referer: l.referer,
                        cold_start: false,
                    });
                    let done = Done {
                        route: Arc::clone(&route),
                        upstream: i,
                        conn: None,
                        link: None,
                        entry,
                        log: shared.log.clone(),
                    };
                    if let Traced::Sampled(cx) = traced {
                        finish(cx, a.status);
                    }
                    let addr = up.addr;
                    let idle = route.spec.timeouts.idle.std();
                    return self.relay(client, a, done, closing, addr, idle).await;
                }
            }
        }
        let (status, text, retry_after) = match last {
            Some(504) => (504, TIMED_OUT.to_string(), false),
            Some(_) if tried.len() < route.upstreams.len() => (502, UNREACHABLE.to_string(), false),
            Some(_) => (
                503,
                crate::proxy::unavailable_text(&route, "no replica could be reached"),
                true,
            ),
            None => (
                503,
                crate::proxy::unavailable_text(&route, "no ready replica"),
                true,
            ),
        };
        if let Traced::Sampled(cx) = traced {
            finish(cx, status);
        }
        let resp = &mut self.resp;
        resp.clear();
        let reason = http::StatusCode::from_u16(status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("");
        write_head_line(resp, status, reason.as_bytes());
        resp.extend_from_slice(b"content-type: text/plain; charset=utf-8\r\ncontent-length: ");
        resp.extend_from_slice((text.len() + 1).to_string().as_bytes());
        resp.extend_from_slice(b"\r\n");
        if retry_after {
            resp.extend_from_slice(b"retry-after: ");
            resp.extend_from_slice(shared.tuning.retry_after.to_string().as_bytes());
            resp.extend_from_slice(b"\r\n");
        }
        if closing {
            resp.extend_from_slice(b"connection: close\r\n");
        }
        resp.extend_from_slice(b"\r\n");
        if !r.head {
            resp.extend_from_slice(text.as_bytes());
            resp.push(b'\n');
        }
        client.write_all(resp).await.is_ok()
    }

    /// Copies the answer to the client. False: the client connection is done.
    async fn relay(
        &mut self,
        client: &mut TcpStream,
        a: Answer,
        done: Done,
        closing: bool,
        addr: SocketAddr,
        idle: Duration,
    ) -> bool {
        let Answer {
            mut stream,
            link,
            generation,
            framing,
            mut reusable,
            ..
        } = a;
        let close = closing || framing == Framing::Eof;
        let resp = &mut self.resp;
        if close {
            resp.extend_from_slice(b"connection: close\r\n");
        }
        resp.extend_from_slice(b"\r\n");
        let ubuf = &mut self.ubuf;
        // Each round forwards what `ubuf` holds of the body, then reads on.
        let mut remaining = match framing {
            Framing::Length(n) => n,
            _ => 0,
        };
        let mut chunks = Chunks::default();
        let mut first = true;
        let complete = loop {
            let (take, end) = match framing {
                Framing::None => (0, true),
                Framing::Length(_) => {
                    let take = remaining.min(ubuf.len() as u64) as usize;
                    remaining -= take as u64;
                    (take, remaining == 0)
                }
                Framing::Chunked => match chunks.feed(ubuf) {
                    Ok(Some(end)) => (end, true),
                    Ok(None) => (ubuf.len(), false),
                    Err(()) => break false,
                },
                Framing::Eof => (ubuf.len(), false),
            };
            if end && take < ubuf.len() {
                // Bytes past the response: the replica is not to be trusted.
                reusable = false;
            }
            let wrote = if first {
                first = false;
                resp.extend_from_slice(&ubuf[..take]);
                client.write_all(resp).await
            } else if take > 0 {
                client.write_all(&ubuf[..take]).await
            } else {
                Ok(())
            };
            if wrote.is_err() {
                break false;
            }
            if end {
                break true;
            }
            ubuf.clear();
            ubuf.reserve(16 << 10);
            match stream.read_buf(ubuf).await {
                Ok(0) => break framing == Framing::Eof,
                Ok(_) => {}
                Err(_) => break false,
            }
        };
        drop(done);
        link.done(generation);
        if complete && reusable && !link.is_closed() {
            park(addr, stream, link, idle);
        }
        complete && !close
    }
}

/// Copies headers to the next hop: not the hop-by-hop ones, not those the
/// `Connection` header named, not those the gateway writes itself.
fn copy_headers(
    dst: &mut Vec<u8>,
    headers: &[httparse::Header<'_>],
    named: &[&[u8]],
    own: &[&str],
) {
    for h in headers {
        let n = h.name.as_bytes();
        let skip = HOP_BY_HOP.iter().chain(own).any(|hop| is(n, hop))
            || named.iter().any(|t| n.eq_ignore_ascii_case(t));
        if !skip {
            dst.extend_from_slice(n);
            dst.extend_from_slice(b": ");
            dst.extend_from_slice(h.value);
            dst.extend_from_slice(b"\r\n");
        }
    }
}

/// Ends a sampled request's server span with the status the client gets.
fn finish(cx: opentelemetry::Context, status: u16) {
    if let Ok(s) = http::StatusCode::from_u16(status) {
        crate::trace::finish(cx, s);
    }
}

fn write_head_line(resp: &mut Vec<u8>, status: u16, reason: &[u8]) {
    resp.extend_from_slice(b"HTTP/1.1 ");
    resp.extend_from_slice(status.to_string().as_bytes());
    resp.push(b' ');
    resp.extend_from_slice(reason);
    resp.extend_from_slice(b"\r\n");
}

async fn connect(addr: SocketAddr, timeout: Duration) -> Result<TcpStream, Failure> {
    match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
        Ok(Ok(s)) => {
            let _ = s.set_nodelay(true);
            Ok(s)
        }
        _ => Err(Failure::Connect),
    }
}

/// Writes the request to the replica and reads the response head; the head
/// for the client is left in `resp` without its final line, the body's
/// first bytes in `ubuf`.
#[allow(clippy::too_many_arguments)]
async fn ask(
    route: &RouteEntry,
    up: &Upstream,
    out: &[u8],
    ubuf: &mut BytesMut,
    resp: &mut Vec<u8>,
    rid: &[u8],
    head: bool,
    idempotent: bool,
    links: &crate::links::Links,
) -> Result<Answer, Failure> {
    let mut pooled = checkout(up.addr);
    loop {
        let reused = pooled.is_some();
        let (mut stream, link) = match pooled.take() {
            Some(c) => c,
            None => {
                let s = connect(up.addr, route.spec.timeouts.connect.std()).await?;
                (s, links.link(up.addr))
            }
        };
        let Some(generation) = link.begin() else {
            // Closed as its replica retired.
            continue;
        };
        ubuf.clear();
        if let Err(e) = stream.write_all(out).await {
            // A kept connection the replica closed: nothing was read.
            if reused {
                continue;
            }
            link.done(generation);
            return Err(Failure::Broken(e.to_string()));
        }
        match read_head(&mut stream, ubuf, resp, rid, head).await {
            Ok((status, framing, reusable)) => {
                return Ok(Answer {
                    stream,
                    link,
                    generation,
                    status,
                    framing,
                    reusable,
                })
            }
            Err(None) if reused && idempotent => {
                link.done(generation);
            }
            Err(e) => {
                link.done(generation);
                return Err(Failure::Broken(
                    e.unwrap_or_else(|| "the replica closed the connection".into()),
                ));
            }
        }
    }
}

/// Reads a response head, skipping interim (1xx) ones. `Err(None)`: the
/// connection ended before any byte of it.
async fn read_head(
    stream: &mut TcpStream,
    ubuf: &mut BytesMut,
    resp: &mut Vec<u8>,
    rid: &[u8],
    head: bool,
) -> Result<(u16, Framing, bool), Option<String>> {
    let mut got_any = false;
    loop {
        let parsed = {
            let mut hs = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut r = httparse::Response::new(&mut hs);
            match r.parse(ubuf) {
                Ok(httparse::Status::Complete(n)) => {
                    let code = r.code.unwrap_or(0);
                    if (100..200).contains(&code) {
                        if code == 101 {
                            return Err(Some("the replica switched protocols unasked".into()));
                        }
                        Some((n, None))
                    } else {
                        let v = head_for_client(&r, resp, rid, head).map_err(Some)?;
                        Some((n, Some(v)))
                    }
                }
                Ok(httparse::Status::Partial) if ubuf.len() < MAX_RESPONSE_HEAD => None,
                Ok(httparse::Status::Partial) => {
                    return Err(Some("the response head is too large".into()))
                }
                Err(e) => return Err(Some(format!("the response head is malformed: {e}"))),
            }
        };
        match parsed {
            Some((n, Some(v))) => {
                ubuf.advance(n);
                return Ok(v);
            }
            Some((n, None)) => {
                ubuf.advance(n);
                continue;
            }
            None => {}
        }
        ubuf.reserve(8192);
        match stream.read_buf(ubuf).await {
            Ok(0) | Err(_) if !got_any => return Err(None),
            Ok(0) => return Err(Some("the replica closed the connection mid-head".into())),
            Err(e) => return Err(Some(e.to_string())),
            Ok(_) => got_any = true,
        }
    }
}

/// Writes the client's response head (without its last line) from the
/// replica's, and says how its body ends and whether the connection to the
/// replica may be kept.
fn head_for_client(
    r: &httparse::Response<'_, '_>,
    resp: &mut Vec<u8>,
    rid: &[u8],
    head: bool,
) -> Result<(u16, Framing, bool), String> {
    let code = r.code.unwrap_or(0);
    if code < 200 {
        return Err(format!("the response status {code} is not a final one"));
    }
    let mut length = None::<u64>;
    let mut chunked = None::<bool>;
    let mut upstream_close = r.version != Some(1);
    let mut named: [&[u8]; 8] = [b""; 8];
    let mut n_named = 0;
    for h in r.headers.iter() {
        let n = h.name.as_bytes();
        if is(n, "content-length") {
            let v = trim(h.value);
            if v.is_empty() || v.len() > 18 || !v.iter().all(u8::is_ascii_digit) {
                return Err("the response has an invalid Content-Length".into());
            }
            let l = v.iter().fold(0, |a, d| a * 10 + u64::from(d - b'0'));
            if length.is_some_and(|p| p != l) {
                return Err("the response has conflicting Content-Length headers".into());
            }
            length = Some(l);
        } else if is(n, "transfer-encoding") {
            let last = h
                .value
                .rsplit(|b| *b == b',')
                .next()
                .map(trim)
                .unwrap_or(b"");
            chunked = Some(last.eq_ignore_ascii_case(b"chunked"));
        } else if is(n, "connection") {
            for t in h.value.split(|b| *b == b',').map(trim) {
                if t.eq_ignore_ascii_case(b"close") {
                    upstream_close = true;
                } else if n_named < named.len() {
                    named[n_named] = t;
                    n_named += 1;
                }
            }
        }
    }
    let framing = if head || code == 204 || code == 304 {
        Framing::None
    } else {
        match (chunked, length) {
            (Some(_), Some(_)) => {
                return Err("the response has both Content-Length and Transfer-Encoding".into())
            }
            (Some(true), None) => Framing::Chunked,
            (Some(false), None) | (None, None) => Framing::Eof,
            (None, Some(l)) => Framing::Length(l),
        }
    };
    resp.clear();
    write_head_line(resp, code, r.reason.unwrap_or("").as_bytes());
    copy_headers(resp, r.headers, &named[..n_named], &["x-request-id"]);
    if framing == Framing::Chunked {
        resp.extend_from_slice(b"transfer-encoding: chunked\r\n");
    }
    resp.extend_from_slice(b"x-request-id: ");
    resp.extend_from_slice(rid);
    resp.extend_from_slice(b"\r\n");
    let reusable = !upstream_close && framing != Framing::Eof;
    Ok((code, framing, reusable))
}

/// Follows a chunked body as it passes, to find its end.
#[derive(Default, Debug)]
struct Chunks {
    state: ChunkState,
    size: u64,
    digits: u8,
    line: usize,
}

#[derive(Default, Debug, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    #[default]
    Size,
    Ext,
    SizeLf,
    Data,
    DataCr,
    DataLf,
    Trailer,
    TrailerLf,
    Done,
}

impl Chunks {
    /// Takes the next bytes of the body: `Some(n)` when it ends after the
    /// first `n` of them.
    fn feed(&mut self, data: &[u8]) -> Result<Option<usize>, ()> {
        use ChunkState::*;
        let mut i = 0;
        while i < data.len() {
            if self.state == Data {
                let take = self.size.min((data.len() - i) as u64);
                self.size -= take;
                i += take as usize;
                if self.size == 0 {
                    self.state = DataCr;
                }
                continue;
            }
            let b = data[i];
            i += 1;
            self.state = match (self.state, b) {
                (Size, b) if b.is_ascii_hexdigit() => {
                    if self.digits == 15 {
                        return Err(());
                    }
                    self.digits += 1;
                    self.size = self.size * 16 + u64::from((b as char).to_digit(16).unwrap_or(0));
                    Size
                }
                (Size, b';' | b' ' | b'\t') if self.digits > 0 => Ext,
                (Size, b'\r') if self.digits > 0 => SizeLf,
                (Ext, b'\r') => SizeLf,
                (Ext, b'\n') => return Err(()),
                (Ext, _) => Ext,
                (SizeLf, b'\n') => {
                    self.digits = 0;
                    if self.size == 0 {
                        self.line = 0;
                        Trailer
                    } else {
                        Data
                    }
                }
                (DataCr, b'\r') => DataLf,
                (DataLf, b'\n') => Size,
                (Trailer, b'\r') => TrailerLf,
                (Trailer, _) => {
                    self.line += 1;
                    Trailer
                }
                (TrailerLf, b'\n') if self.line == 0 => {
                    self.state = Done;
                    return Ok(Some(i));
                }
                (TrailerLf, b'\n') => {
                    self.line = 0;
                    Trailer
                }
                _ => return Err(()),
            };
        }
        Ok(None)
    }
}

/// The fuzz target's checks: the chunk follower finds the same end fed
/// whole or in two pieces, and a replica's head rewritten for the client
/// parses again, to the same status and framing.
pub fn fuzz(data: &[u8]) {
    let split = data.first().map_or(0, |b| usize::from(*b)).min(data.len());
    let whole = Chunks::default().feed(data);
    let mut c = Chunks::default();
    let pieces = match c.feed(&data[..split]) {
        Ok(None) => c.feed(&data[split..]).map(|r| r.map(|n| n + split)),
        first => first,
    };
    assert_eq!(whole, pieces);
    let mut hs = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut r = httparse::Response::new(&mut hs);
    if !matches!(r.parse(data), Ok(httparse::Status::Complete(_))) {
        return;
    }
    let mut resp = Vec::new();
    let Ok((code, framing, _)) = head_for_client(&r, &mut resp, b"id", false) else {
        return;
    };
    resp.extend_from_slice(b"\r\n");
    let mut hs = [httparse::EMPTY_HEADER; MAX_HEADERS + 2];
    let mut again = httparse::Response::new(&mut hs);
    let parsed = again.parse(&resp);
    assert!(
        matches!(parsed, Ok(httparse::Status::Complete(n)) if n == resp.len()),
        "{parsed:?}: {}",
        String::from_utf8_lossy(&resp)
    );
    assert_eq!(again.code, Some(code));
    let again = head_for_client(&again, &mut Vec::new(), b"id", false).map(|(_, f, _)| f);
    assert_eq!(again, Ok(framing));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn end_of(body: &[u8]) -> Result<Option<usize>, ()> {
        Chunks::default().feed(body)
    }

    #[test]
    fn a_chunked_body_ends_after_its_last_chunk_and_trailers() {
        let body = b"5\r\nhello\r\n6;x=y\r\n world\r\n0\r\n\r\nGET / HTTP/1.1";
        assert_eq!(end_of(body), Ok(Some(body.len() - 14)));
        let trailers = b"3\r\nabc\r\n0\r\nx-sum: 1\r\n\r\n";
        assert_eq!(end_of(trailers), Ok(Some(trailers.len())));
        assert_eq!(end_of(b"5\r\nhel"), Ok(None));
    }

    #[test]
    fn a_chunked_body_is_followed_across_reads_byte_by_byte() {
        let body = b"a\r\n0123456789\r\n0\r\nt: 1\r\n\r\n";
        let mut c = Chunks::default();
        for (i, b) in body.iter().enumerate() {
            let r = c.feed(std::slice::from_ref(b));
            if i + 1 == body.len() {
                assert_eq!(r, Ok(Some(1)));
            } else {
                assert_eq!(r, Ok(None), "at byte {i}");
            }
        }
    }

    #[test]
    fn the_fuzz_checks_hold_on_the_seeds() {
        for seed in std::fs::read_dir(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../fuzz/seeds/gateway_h1"
        ))
        .unwrap()
        {
            fuzz(&std::fs::read(seed.unwrap().path()).unwrap());
        }
    }

    #[test]
    fn malformed_chunks_are_refused() {
        for bad in [
            &b"x\r\n"[..],
            b"\r\n",
            b"5\r\nhelloXX",
            b"5\nhello",
            b"fffffffffffffffff\r\n",
        ] {
            assert_eq!(end_of(bad), Err(()), "{}", String::from_utf8_lossy(bad));
        }
    }
}
