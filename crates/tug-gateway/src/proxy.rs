//! The request path: accept, route, pick, forward, retry, stream back.

use crate::conn::{ConnFlags, ScanIo};
use crate::log::{AccessEntry, AccessSink};
use crate::table::{ip_bytes, RouteEntry, Table, Tuning, Upstream};
use crate::trace::Traced;
use arc_swap::ArcSwap;
use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Request, Response, StatusCode, Version};
use http_body::{Body, Frame, SizeHint};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full, Limited};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// Bodies in both directions: streamed, never collected whole.
pub type ProxyBody = BoxBody<Bytes, BoxError>;
pub(crate) type UpstreamClient = Client<crate::links::Connector, ProxyBody>;

/// A keep-alive client for one route's timeouts and upstream protocol:
/// HTTP/1.1 keeps a pool of connections per replica, h2c one multiplexed
/// connection (prior knowledge: no upgrade round trip).
pub(crate) fn upstream_client(
    route: &tug_spec::Route,
    links: &Arc<crate::links::Links>,
) -> UpstreamClient {
    let t = &route.timeouts;
    let mut c = HttpConnector::new();
    c.set_connect_timeout(Some(t.connect.std()));
    c.set_nodelay(true);
    let mut b = Client::builder(TokioExecutor::new());
    b.pool_idle_timeout(t.idle.std())
        .pool_timer(TokioTimer::new())
        .pool_max_idle_per_host(256);
    let multiplexed = route.upstream == tug_spec::Upstream::H2c;
    if multiplexed {
        b.http2_only(true);
    }
    b.build(crate::links::Connector {
        http: c,
        links: Arc::clone(links),
        multiplexed,
    })
}

/// Whether the client asked for trailers (`TE: trailers`), which gRPC
/// servers require; TE is hop-by-hop, so it is set again for an h2c upstream.
fn wants_trailers(h: &HeaderMap) -> bool {
    h.get_all(header::TE).iter().any(|v| {
        v.to_str().is_ok_and(|v| {
            v.split(',').any(|t| {
                t.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .eq_ignore_ascii_case("trailers")
            })
        })
    })
}

pub(crate) struct Shared {
    pub table: ArcSwap<Table>,
    pub config: tug_spec::Gateway,
    pub tuning: Tuning,
    pub metrics: crate::metrics::Metrics,
    pub log: AccessSink,
    /// Wakes services scaled to zero; unset: a route without replicas answers 503.
    pub activator: std::sync::OnceLock<crate::activate::Activator>,
    /// Bumped after each table swap, for requests waiting on a replica.
    pub changed: watch::Sender<()>,
    /// Connections to replicas, closed when their replica leaves.
    pub links: Arc<crate::links::Links>,
    /// Set when tracing is on: the request path checks it once.
    pub tracer: Option<tug_observe::trace::HttpTracer>,
}

fn simple(status: StatusCode, text: &str) -> Response<ProxyBody> {
    let mut r = Response::new(
        Full::new(Bytes::from(format!("{text}\n")))
            .map_err(|e| match e {})
            .boxed(),
    );
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// Whether a request may be sent again (RFC 9110 §9.2.2).
pub(crate) fn is_idempotent(method: &str) -> bool {
    matches!(
        method,
        "GET" | "HEAD" | "OPTIONS" | "TRACE" | "PUT" | "DELETE"
    )
}

/// Why a request got no answer, to the client and in its span.
pub(crate) const TIMED_OUT: &str = "the replica did not answer in time";
pub(crate) const UNREACHABLE: &str = "the replica could not be reached";

/// Headers that belong to one hop, never forwarded.
pub(crate) const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "proxy-authorization",
];

const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Removes hop-by-hop headers, and those the `Connection` header names.
fn strip_hop(h: &mut HeaderMap, keep_upgrade: bool) {
    let named: Vec<HeaderName> = h
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
        .collect();
    for n in named {
        if !(keep_upgrade && n == header::UPGRADE) {
            h.remove(n);
        }
    }
    for n in HOP_BY_HOP {
        if !(keep_upgrade && (n == "upgrade" || n == "connection")) {
            h.remove(n);
        }
    }
}

fn wants_upgrade(h: &HeaderMap) -> bool {
    h.contains_key(header::UPGRADE)
        && h.get_all(header::CONNECTION).iter().any(|v| {
            v.to_str().is_ok_and(|v| {
                v.split(',')
                    .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
            })
        })
}

/// 32 random hex digits, formatted without a `String`.
pub(crate) fn request_id_digits() -> [u8; 32] {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let n = fastrand::u128(..);
    let mut b = [0u8; 32];
    for (i, d) in b.iter_mut().enumerate() {
        *d = DIGITS[((n >> (4 * (31 - i))) & 15) as usize];
    }
    b
}

fn request_id() -> HeaderValue {
    HeaderValue::from_bytes(&request_id_digits()).unwrap_or(HeaderValue::from_static("0"))
}

/// How the request body can be sent.
enum Payload {
    /// Known and small (or empty): sent again on a retry, with its
    /// trailers if it had any.
    Replayable(Bytes, Option<HeaderMap>),
    /// Streamed: sent once.
    Stream(Option<ProxyBody>),
}

impl Payload {
    fn empty() -> Payload {
        Payload::Replayable(Bytes::new(), None)
    }
    fn take(&mut self) -> Option<ProxyBody> {
        match self {
            Payload::Replayable(b, None) => {
                Some(Full::new(b.clone()).map_err(|e| match e {}).boxed())
            }
            Payload::Replayable(b, Some(t)) => Some(
                Full::new(b.clone())
                    .map_err(|e| match e {})
                    .with_trailers(std::future::ready(Some(Ok(t.clone()))))
                    .boxed(),
            ),
            Payload::Stream(s) => s.take(),
        }
    }
    fn replayable(&self) -> bool {
        matches!(self, Payload::Replayable(..))
    }
}

/// Counts a request as in flight on its replica until the response body
/// is done (or dropped), and writes its access log line then.
pub(crate) struct Done {
    pub route: Arc<RouteEntry>,
    pub upstream: usize,
    pub conn: Option<Arc<ConnFlags>>,
    /// The connection to the replica, and its writes when the head came.
    pub link: Option<(Arc<crate::links::Link>, u64)>,
    pub entry: Option<AccessEntry>,
    pub log: AccessSink,
}

impl Drop for Done {
    fn drop(&mut self) {
        self.route.upstreams[self.upstream].finish();
        self.route.activity.touch();
        if let Some((l, g)) = &self.link {
            l.done(*g);
        }
        if let Some(c) = &self.conn {
            c.rearm();
        }
        if let Some(e) = self.entry.take() {
            self.log.write(e);
        }
    }
}

struct Tracked {
    inner: Incoming,
    _done: Done,
}

impl Body for Tracked {
    type Data = Bytes;
    type Error = BoxError;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        Pin::new(&mut self.inner)
            .poll_frame(cx)
            .map_err(|e| Box::new(e) as BoxError)
    }
    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }
    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

pub(crate) struct Conn {
    pub client: SocketAddr,
    /// The client's address as `X-Forwarded-For` sends it, made once.
    pub client_value: HeaderValue,
    pub flags: Arc<ConnFlags>,
}

/// The replicas one request was sent to: inline for the usual few.
#[derive(Default)]
pub(crate) struct Tried {
    few: [usize; 4],
    n: usize,
    more: Vec<usize>,
}

impl Tried {
    pub(crate) fn push(&mut self, i: usize) {
        if self.n < self.few.len() {
            self.few[self.n] = i;
        } else {
            if self.more.is_empty() {
                self.more.extend_from_slice(&self.few);
            }
            self.more.push(i);
        }
        self.n += 1;
    }
    pub(crate) fn as_slice(&self) -> &[usize] {
        if self.n <= self.few.len() {
            &self.few[..self.n]
        } else {
            &self.more
        }
    }
    pub(crate) fn len(&self) -> usize {
        self.n
    }
    fn is_empty(&self) -> bool {
        self.n == 0
    }
}

pub(crate) async fn handle(
    shared: Arc<Shared>,
    conn: Arc<Conn>,
    req: Request<Incoming>,
) -> Result<Response<ProxyBody>, Infallible> {
    let start = Instant::now();
    let h1 = req.version() < Version::HTTP_2;
    let flags = h1.then(|| Arc::clone(&conn.flags));
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    let traced = crate::trace::enter(
        shared.tracer.as_ref(),
        req.method(),
        req.uri().path(),
        req.version(),
        header("traceparent"),
        header("tracestate"),
        conn.client,
    );
    let mut resp = forward(&shared, &conn, req, start, &traced).await;
    if let Traced::Sampled(cx) = traced {
        crate::trace::finish(cx, resp.status());
    }
    if let Some(f) = flags {
        // A response without a tracked body is complete once it is written.
        if resp.extensions().get::<TrackedMark>().is_none() {
            f.rearm();
        }
        if f.conflict() {
            resp.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
    }
    resp.extensions_mut().remove::<TrackedMark>();
    Ok(resp)
}

#[derive(Clone, Copy)]
struct TrackedMark;

async fn forward(
    shared: &Shared,
    conn: &Conn,
    mut req: Request<Incoming>,
    start: Instant,
    traced: &Traced,
) -> Response<ProxyBody> {
    let h1 = req.version() < Version::HTTP_2;
    if h1 && conn.flags.conflict() {
        return simple(
            StatusCode::BAD_REQUEST,
            "a request may not carry both Content-Length and Transfer-Encoding",
        );
    }
    // The host as a header value: the client's `Host` is shared, not copied.
    let host_value = match req.uri().authority() {
        Some(a) => HeaderValue::from_str(a.as_str()).ok(),
        None => req.headers().get(header::HOST).cloned(),
    };
    let host_full = host_value
        .as_ref()
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let host = strip_port(host_full);
    let Some(mut route) = shared.table.load().lookup(host, req.uri().path()).cloned() else {
        return simple(
            StatusCode::NOT_FOUND,
            &format!("no route for {host}{}", req.uri().path()),
        );
    };
    route.activity.touch();
    if let Traced::Sampled(cx) = traced {
        crate::trace::routed(cx, &route.label, &route.service);
    }
    let max_body = shared.config.max_body_size.0;
    let length = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if length.is_some_and(|l| l > max_body) {
        return simple(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("the request body is larger than {max_body} bytes"),
        );
    }
    let mut cold_start = false;
    if !route.serving() {
        // Scaled to zero (or on its way there): the activator holds the
        // request while a replica starts.
        match crate::activate::hold(shared, &route, host, req.uri().path(), start).await {
            Ok((fresh, held)) => {
                shared
                    .metrics
                    .cold_start(&route.service, held.as_secs_f64());
                route = fresh;
                cold_start = true;
            }
            Err(r) => return r,
        }
    }
    route.budget.deposit();
    let upgrade = h1 && wants_upgrade(req.headers());
    let on_client = upgrade.then(|| hyper::upgrade::on(&mut req));
    let (parts, body) = req.into_parts();
    let chunked = parts.headers.contains_key(header::TRANSFER_ENCODING);
    let mut payload = match length {
        _ if upgrade => Payload::empty(),
        Some(0) if h1 => Payload::empty(),
        None if !chunked && h1 => Payload::empty(),
        Some(l) if l as usize <= shared.tuning.replay_limit => {
            match Limited::new(body, l as usize).collect().await {
                Ok(b) => {
                    let trailers = b.trailers().cloned();
                    Payload::Replayable(b.to_bytes(), trailers)
                }
                Err(_) => return simple(StatusCode::BAD_REQUEST, "the request body was cut short"),
            }
        }
        _ => Payload::Stream(Some(BoxBody::new(Limited::new(body, max_body as usize)))),
    };

    let client_ip = conn.client.ip();
    let mut headers = parts.headers;
    let trailers = route.spec.upstream == tug_spec::Upstream::H2c && wants_trailers(&headers);
    strip_hop(&mut headers, upgrade);
    if trailers {
        headers.insert(header::TE, HeaderValue::from_static("trailers"));
    }
    let xff = match headers.get(X_FORWARDED_FOR).and_then(|v| v.to_str().ok()) {
        Some(prev) => HeaderValue::from_str(&format!("{prev}, {client_ip}")).ok(),
        None => Some(conn.client_value.clone()),
    };
    if let Some(v) = xff {
        headers.insert(X_FORWARDED_FOR, v);
    }
    headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static("http"));
    if let Some(v) = host_value.clone().filter(|v| v.to_str().is_ok()) {
        headers.insert(X_FORWARDED_HOST, v.clone());
        headers.entry(header::HOST).or_insert(v);
    }
    if let Traced::Unsampled(tp) = traced {
        if let Ok(v) = HeaderValue::from_bytes(tp.as_bytes()) {
            headers.insert(TRACEPARENT, v);
        }
    }
    let rid = headers
        .get(X_REQUEST_ID)
        .cloned()
        .unwrap_or_else(request_id);
    headers.insert(X_REQUEST_ID, rid.clone());

    let path_q = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    // The request's own path is shared with the upstream URI, not copied.
    let forwarded_path = if route.spec.strip_prefix && route.spec.path != "/" {
        let rest = &path_q[route.spec.path.len().min(path_q.len())..];
        let p = if rest.starts_with('/') {
            rest.to_string()
        } else {
            format!("/{rest}")
        };
        http::uri::PathAndQuery::try_from(p).ok()
    } else {
        Some(
            parts
                .uri
                .path_and_query()
                .cloned()
                .unwrap_or_else(|| http::uri::PathAndQuery::from_static("/")),
        )
    };
    let Some(forwarded_path) = forwarded_path else {
        return simple(StatusCode::BAD_REQUEST, "the request path is not valid");
    };
    let (client_key, client_len) = ip_bytes(client_ip);
    let key = route
        .key(&headers, &client_key[..client_len])
        .map(<[u8]>::to_vec);
    let idempotent = is_idempotent(parts.method.as_str());
    // Read before the headers go upstream, and only for the log.
    let mut log_fields = shared.log.enabled().then(|| {
        let h = |n| {
            headers
                .get(n)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string()
        };
        (h(header::USER_AGENT), h(header::REFERER))
    });
    let mut headers = Some(headers);
    let mut tried = Tried::default();
    let mut last: Option<Response<ProxyBody>> = None;
    let attempts = 1 + route.spec.retry.attempts as usize;
    for attempt in 0..attempts {
        if attempt > 0 {
            if !route.budget.withdraw() {
                break;
            }
            route.metrics.retries.inc();
        }
        let Some(i) = route.pick(key.as_deref(), tried.as_slice()) else {
            break;
        };
        tried.push(i);
        let up: &Upstream = &route.upstreams[i];
        let Some(body) = payload.take() else { break };
        let mut out = Request::new(body);
        *out.method_mut() = parts.method.clone();
        // The last send possible takes the headers; one that may be
        // followed by a retry sends a copy.
        let last_send = attempt + 1 == attempts
            || tried.len() >= route.upstreams.len()
            || !payload.replayable();
        *out.headers_mut() = match (last_send, &mut headers) {
            (true, h) => h.take().unwrap_or_default(),
            (false, Some(h)) => h.clone(),
            (false, None) => HeaderMap::new(),
        };
        let mut uri = http::uri::Parts::default();
        uri.scheme = Some(http::uri::Scheme::HTTP);
        uri.authority = Some(up.authority.clone());
        uri.path_and_query = Some(forwarded_path.clone());
        match http::Uri::from_parts(uri) {
            Ok(u) => *out.uri_mut() = u,
            Err(_) => return simple(StatusCode::BAD_REQUEST, "the request path is not valid"),
        }
        let attempt_span = match (traced, &shared.tracer) {
            (Traced::Sampled(cx), Some(t)) => Some(crate::trace::attempt(
                t.tracer(),
                cx,
                &parts.method,
                up,
                attempt,
                out.headers_mut(),
            )),
            _ => None,
        };
        up.start();
        let sent = tokio::time::timeout(
            route.spec.timeouts.request.std(),
            client_of(&route).request(out),
        )
        .await;
        if let Some(a) = attempt_span {
            let outcome = match &sent {
                Err(_) => Err(TIMED_OUT.to_string()),
                Ok(Err(e)) => Err(e.to_string()),
                Ok(Ok(r)) => Ok(r.status()),
            };
            crate::trace::attempt_done(a, outcome);
        }
        match sent {
            Err(_) => {
                up.finish();
                up.outcome(true, &shared.tuning);
                up.metrics.record(504, start.elapsed().as_secs_f64());
                last = Some(simple(StatusCode::GATEWAY_TIMEOUT, TIMED_OUT));
                // The replica may have acted on it: only an idempotent
                // request with a body we still hold is sent again.
                if !(idempotent && payload.replayable() && route.spec.retry.on.contains(&504)) {
                    break;
                }
            }
            Ok(Err(e)) => {
                up.finish();
                up.outcome(true, &shared.tuning);
                let connect = e.is_connect();
                tracing::debug!(replica = %up.name, error = %e, connect, "upstream request failed");
                up.metrics.record(502, start.elapsed().as_secs_f64());
                last = Some(simple(StatusCode::BAD_GATEWAY, UNREACHABLE));
                // Nothing reached the replica on a failed connect.
                let again = payload.replayable()
                    && (connect || (idempotent && route.spec.retry.on.contains(&502)));
                if !again {
                    break;
                }
            }
            Ok(Ok(mut resp)) => {
                let status = resp.status();
                up.outcome(status.is_server_error(), &shared.tuning);
                up.metrics
                    .record(status.as_u16(), start.elapsed().as_secs_f64());
                let retry = idempotent
                    && payload.replayable()
                    && route.spec.retry.on.contains(&status.as_u16())
                    && attempt + 1 < attempts
                    && tried.len() < route.upstreams.len();
                if retry {
                    up.finish();
                    continue;
                }
                let entry = log_fields.take().map(|(user_agent, referer)| AccessEntry {
                    client: conn.client,
                    method: parts.method.to_string(),
                    host: host.to_string(),
                    path: path_q.to_string(),
                    version: parts.version,
                    status: status.as_u16(),
                    duration: start.elapsed(),
                    route: route.label.clone(),
                    replica: up.name.clone(),
                    attempts: tried.len() as u32,
                    request_id: rid.to_str().unwrap_or("").to_string(),
                    user_agent,
                    referer,
                    cold_start,
                });
                let done = Done {
                    route: Arc::clone(&route),
                    upstream: i,
                    conn: h1.then(|| Arc::clone(&conn.flags)),
                    link: resp
                        .extensions()
                        .get::<crate::links::LinkTag>()
                        .map(|t| (Arc::clone(&t.0), t.0.generation())),
                    entry,
                    log: shared.log.clone(),
                };
                if status == StatusCode::SWITCHING_PROTOCOLS {
                    if let Some(on_client) = on_client {
                        let on_upstream = hyper::upgrade::on(&mut resp);
                        tokio::spawn(async move {
                            let _done = done;
                            if let (Ok(c), Ok(u)) = tokio::join!(on_client, on_upstream) {
                                let _ = tokio::io::copy_bidirectional(
                                    &mut TokioIo::new(c),
                                    &mut TokioIo::new(u),
                                )
                                .await;
                            }
                        });
                        let (mut p, _) = resp.into_parts();
                        p.headers.insert(X_REQUEST_ID, rid);
                        return Response::from_parts(
                            p,
                            Empty::new().map_err(|e| match e {}).boxed(),
                        );
                    }
                }
                let (mut p, body) = resp.into_parts();
                strip_hop(&mut p.headers, false);
                p.headers.insert(X_REQUEST_ID, rid);
                p.extensions.insert(TrackedMark);
                return Response::from_parts(
                    p,
                    BoxBody::new(Tracked {
                        inner: body,
                        _done: done,
                    }),
                );
            }
        }
    }
    match last {
        Some(r) if r.status() == StatusCode::GATEWAY_TIMEOUT => r,
        Some(r) if !tried.is_empty() && tried.len() >= route.upstreams.len() => {
            drop(r);
            unavailable(shared, &route, "no replica could be reached")
        }
        Some(r) => r,
        None => unavailable(shared, &route, "no ready replica"),
    }
}

/// The text of a 503 for a route without a replica to take the request.
pub(crate) fn unavailable_text(route: &RouteEntry, why: &str) -> String {
    route.metrics.unavailable.inc();
    format!("{why} for service {}", route.service)
}

pub(crate) fn unavailable(shared: &Shared, route: &RouteEntry, why: &str) -> Response<ProxyBody> {
    let mut r = simple(
        StatusCode::SERVICE_UNAVAILABLE,
        &unavailable_text(route, why),
    );
    r.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from(shared.tuning.retry_after),
    );
    r
}

pub(crate) fn strip_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    host.rsplit_once(':').map(|(h, _)| h).unwrap_or(host)
}

thread_local! {
    /// Which worker thread this is (0 outside the workers).
    static WORKER: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// The route's client for this thread: its pooled connections are driven
/// by this thread's runtime, so a request never hops threads.
fn client_of(route: &RouteEntry) -> &UpstreamClient {
    let i = WORKER.with(|w| w.get());
    &route.clients[i % route.clients.len()]
}

/// A connection accepted, for a worker to serve.
pub(crate) struct Accepted {
    stream: std::net::TcpStream,
    client: SocketAddr,
    permit: tokio::sync::OwnedSemaphorePermit,
    held: ClientShare,
}

/// Threads serving connections, each on its own single-threaded runtime
/// (as nginx runs one event loop per worker process): a connection's
/// requests, their upstream connections and the responses all stay on one
/// thread. They stop once every listener has stopped and their open
/// connections are done.
pub(crate) struct Workers {
    senders: Vec<tokio::sync::mpsc::UnboundedSender<Accepted>>,
    next: std::sync::atomic::AtomicUsize,
    /// Shared by the listeners: connection count and per-client shares.
    limit: Arc<Semaphore>,
    per_client: Arc<std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, u32>>>,
}

impl Workers {
    pub(crate) fn spawn(
        shared: &Arc<Shared>,
        stop: &watch::Receiver<bool>,
    ) -> std::io::Result<Arc<Workers>> {
        let n = shared.tuning.workers.max(1);
        let mut senders = Vec::with_capacity(n);
        for i in 0..n {
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Accepted>();
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let (shared, stop) = (Arc::clone(shared), stop.clone());
            std::thread::Builder::new()
                .name(format!("tug-gateway-{i}"))
                .spawn(move || {
                    WORKER.with(|w| w.set(i));
                    rt.block_on(async move {
                        tokio::spawn(crate::h1::reap());
                        let mut open = tokio::task::JoinSet::new();
                        while let Some(a) = rx.recv().await {
                            while open.try_join_next().is_some() {}
                            match tokio::net::TcpStream::from_std(a.stream) {
                                Ok(stream) => {
                                    open.spawn(connection(
                                        Arc::clone(&shared),
                                        stream,
                                        a.client,
                                        (a.permit, a.held),
                                        stop.clone(),
                                    ));
                                }
                                Err(e) => tracing::warn!(error = %e, "gateway connection lost"),
                            }
                        }
                        while open.join_next().await.is_some() {}
                    });
                })?;
            senders.push(tx);
        }
        let max = shared.config.max_connections as usize;
        Ok(Arc::new(Workers {
            senders,
            next: Default::default(),
            limit: Arc::new(Semaphore::new(max)),
            per_client: Default::default(),
        }))
    }

    fn hand(&self, a: Accepted) {
        let i = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % self.senders.len();
        // A worker that is gone drops the connection: the gateway is stopping.
        let _ = self.senders[i].send(a);
    }
}

/// Accepts connections until `shutdown` turns true and hands them to the
/// workers, which let open ones finish.
pub(crate) async fn serve(
    shared: Arc<Shared>,
    listener: TcpListener,
    mut shutdown: watch::Receiver<bool>,
    workers: Arc<Workers>,
) {
    let limit = Arc::clone(&workers.limit);
    // One client address may hold a quarter of the connections at most, so
    // a slow client cannot take them all.
    let share = (shared.config.max_connections / 4).max(1);
    let per_client = Arc::clone(&workers.per_client);
    loop {
        // Over the limit, new connections wait in the kernel's backlog.
        let permit = tokio::select! {
            p = Arc::clone(&limit).acquire_owned() => match p { Ok(p) => p, Err(_) => return },
            _ = stopped(&mut shutdown) => return,
        };
        let (stream, client) = tokio::select! {
            a = listener.accept() => match a {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "gateway accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stopped(&mut shutdown) => return,
        };
        let held = {
            let mut m = per_client.lock().unwrap_or_else(|e| e.into_inner());
            let n = m.entry(client.ip()).or_insert(0);
            if *n >= share {
                tracing::debug!(client = %client.ip(), connections = *n, "client over its share of connections");
                continue;
            }
            *n += 1;
            ClientShare {
                map: Arc::clone(&per_client),
                ip: client.ip(),
            }
        };
        let _ = stream.set_nodelay(true);
        match stream.into_std() {
            Ok(stream) => workers.hand(Accepted {
                stream,
                client,
                permit,
                held,
            }),
            Err(e) => tracing::warn!(error = %e, "gateway connection lost"),
        }
    }
}

/// Serves one client connection until it closes, or until `stop` turns
/// true and its requests in progress are answered.
async fn connection(
    shared: Arc<Shared>,
    stream: tokio::net::TcpStream,
    client: SocketAddr,
    _hold: (tokio::sync::OwnedSemaphorePermit, ClientShare),
    mut stop: watch::Receiver<bool>,
) {
    let flags = Arc::new(ConnFlags::default());
    let conn = Arc::new(Conn {
        client,
        client_value: HeaderValue::from_str(&client.ip().to_string())
            .unwrap_or(HeaderValue::from_static("unknown")),
        flags: Arc::clone(&flags),
    });
    let (stream, read) = match crate::h1::serve(&shared, &conn, stream, &mut stop).await {
        crate::h1::Ended::Closed => return,
        crate::h1::Ended::Hyper(stream, read) => (stream, read),
    };
    let io = TokioIo::new(ScanIo::new(stream, flags, read));
    let mut b = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    b.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(shared.config.header_timeout.std())
        .max_buf_size((shared.config.max_header_size.0 as usize).max(8192));
    b.http2()
        .timer(TokioTimer::new())
        .max_header_list_size(shared.config.max_header_size.0.min(u32::MAX as u64) as u32);
    let svc =
        hyper::service::service_fn(move |req| handle(Arc::clone(&shared), Arc::clone(&conn), req));
    let c = b.serve_connection_with_upgrades(io, svc);
    tokio::pin!(c);
    tokio::select! {
        _ = c.as_mut() => {}
        _ = stopped(&mut stop) => {
            c.as_mut().graceful_shutdown();
            let _ = c.await;
        }
    }
}

pub(crate) async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

/// A client's hold on one connection of its share.
struct ClientShare {
    map: Arc<std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, u32>>>,
    ip: std::net::IpAddr,
}

impl Drop for ClientShare {
    fn drop(&mut self) {
        let mut m = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = m.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.ip);
            }
        }
    }
}
