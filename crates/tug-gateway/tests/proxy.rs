//! The gateway over real sockets: real HTTP backends on loopback, a real
//! client, raw TCP where a client library would refuse to misbehave.

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tug_gateway::{Endpoint, Gateway, Tuning};

mod support;
use support::{client, Http};

/// A backend: answers `name path` and echoes the forwarded headers;
/// `/status/N` answers N, `/slow/MS` waits, `/ws` upgrades and echoes.
struct Backend {
    name: String,
    addr: SocketAddr,
    hits: Arc<AtomicU32>,
    stop: watch::Sender<bool>,
}

impl Backend {
    fn endpoint(&self) -> Endpoint {
        Endpoint {
            name: self.name.clone(),
            addr: self.addr,
        }
    }
}

async fn answer(
    name: String,
    hits: Arc<AtomicU32>,
    mut req: Request<Incoming>,
) -> Result<http::Response<Full<Bytes>>, std::convert::Infallible> {
    hits.fetch_add(1, Ordering::SeqCst);
    let path = req.uri().path().to_string();
    if let Some(code) = path.strip_prefix("/status/") {
        let mut r = http::Response::new(Full::new(Bytes::from(name)));
        *r.status_mut() = StatusCode::from_u16(code.parse().unwrap()).unwrap();
        return Ok(r);
    }
    if let Some(ms) = path.strip_prefix("/slow/") {
        tokio::time::sleep(Duration::from_millis(ms.parse().unwrap())).await;
    }
    if path == "/ws" {
        let up = hyper::upgrade::on(&mut req);
        tokio::spawn(async move {
            if let Ok(io) = up.await {
                let mut io = TokioIo::new(io);
                let mut buf = [0u8; 64];
                while let Ok(n) = io.read(&mut buf).await {
                    if n == 0 || io.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            }
        });
        let mut r = http::Response::new(Full::new(Bytes::new()));
        *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        r.headers_mut()
            .insert("connection", "upgrade".parse().unwrap());
        r.headers_mut().insert("upgrade", "echo".parse().unwrap());
        return Ok(r);
    }
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes().len())
        .unwrap_or(0);
    let text = format!("{name} {path} body={body}\n");
    Ok(http::Response::new(Full::new(Bytes::from(text))))
}

async fn backend(name: &str) -> Backend {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let hits = Arc::new(AtomicU32::new(0));
    let (stop, mut rx) = watch::channel(false);
    let (n, h) = (name.to_string(), Arc::clone(&hits));
    tokio::spawn(async move {
        loop {
            let (s, _) = tokio::select! {
                a = l.accept() => a.unwrap(),
                _ = rx.wait_for(|s| *s) => return,
            };
            let (n, h) = (n.clone(), Arc::clone(&h));
            let mut rx = rx.clone();
            tokio::spawn(async move {
                let svc =
                    hyper::service::service_fn(move |req| answer(n.clone(), Arc::clone(&h), req));
                let c = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(s), svc)
                    .with_upgrades();
                tokio::select! {
                    _ = c => {}
                    _ = rx.wait_for(|s| *s) => {}
                }
            });
        }
    });
    Backend {
        name: name.into(),
        addr,
        hits,
        stop,
    }
}

struct Setup {
    gw: Gateway,
    addr: SocketAddr,
    log: mpsc::Receiver<String>,
    _stop: watch::Sender<bool>,
}

async fn gateway(yaml_services: &str, tuning: Tuning) -> Setup {
    let text = format!("name: t\ngateway: {{ listen: ['127.0.0.1:0'], max_body_size: 1Mi, max_header_size: 16Ki }}\nservices:\n{yaml_services}");
    let (tx, log) = mpsc::channel(10_000);
    let (gw, addr, stop) = support::start(&text, tuning, Some(tx)).await;
    Setup {
        gw,
        addr,
        log,
        _stop: stop,
    }
}

async fn send(
    c: &Http,
    method: &str,
    url: String,
    host: &str,
    body: &str,
) -> (StatusCode, http::HeaderMap, String) {
    let req = Request::builder()
        .method(method)
        .uri(url)
        .header("host", host)
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap();
    let r = c.request(req).await.unwrap();
    let (p, b) = r.into_parts();
    let text = String::from_utf8_lossy(&b.collect().await.unwrap().to_bytes()).to_string();
    (p.status, p.headers, text)
}

async fn get(c: &Http, s: &Setup, host: &str, path: &str) -> (StatusCode, String) {
    let (st, _, t) = send(c, "GET", format!("http://{}{path}", s.addr), host, "").await;
    (st, t)
}

/// The next access log line, parsed.
async fn next_log(s: &mut Setup) -> serde_json::Value {
    let line = tokio::time::timeout(Duration::from_secs(5), s.log.recv())
        .await
        .unwrap()
        .unwrap();
    serde_json::from_str(&line).unwrap()
}

fn svc(name: &str, route: &str) -> String {
    format!("  {name}:\n    image: x\n    port: 80\n    route: {route}\n")
}

#[tokio::test]
async fn routes_by_host_and_longest_prefix() {
    let (a, b, c) = (backend("a").await, backend("b").await, backend("c").await);
    let s = gateway(
        &[
            svc("a", "{ path: / }"),
            svc("b", "{ path: /api, strip_prefix: true }"),
            svc("c", "{ host: c.localhost, path: /api/v2 }"),
        ]
        .concat(),
        Tuning::default(),
    )
    .await;
    s.gw.set_ready("a", vec![a.endpoint()]);
    s.gw.set_ready("b", vec![b.endpoint()]);
    s.gw.set_ready("c", vec![c.endpoint()]);
    let h = client();
    assert_eq!(get(&h, &s, "x.localhost", "/").await.1, "a / body=0\n");
    assert_eq!(
        get(&h, &s, "x.localhost", "/apix").await.1,
        "a /apix body=0\n"
    );
    assert_eq!(
        get(&h, &s, "x.localhost", "/api/users").await.1,
        "b /users body=0\n"
    );
    assert_eq!(get(&h, &s, "x.localhost", "/api").await.1, "b / body=0\n");
    assert_eq!(
        get(&h, &s, "c.localhost:8000", "/api/v2/x").await.1,
        "c /api/v2/x body=0\n"
    );
    assert_eq!(
        get(&h, &s, "c.localhost", "/api/v1").await.1,
        "b /v1 body=0\n"
    );
}

#[tokio::test]
async fn unknown_route_is_404_and_known_route_without_replicas_is_503() {
    let a = backend("a").await;
    let s = gateway(&svc("a", "{ host: a.localhost }"), Tuning::default()).await;
    let h = client();
    let (st, hd, _) = send(&h, "GET", format!("http://{}/", s.addr), "a.localhost", "").await;
    assert_eq!(st, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(hd["retry-after"], "1");
    assert_eq!(
        get(&h, &s, "b.localhost", "/").await.0,
        StatusCode::NOT_FOUND
    );
    s.gw.set_ready("a", vec![a.endpoint()]);
    assert_eq!(get(&h, &s, "a.localhost", "/").await.0, StatusCode::OK);
    s.gw.set_ready("a", vec![]);
    assert_eq!(
        get(&h, &s, "a.localhost", "/").await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
}

#[tokio::test]
async fn forwarded_headers_and_request_id() {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let s = gateway(&svc("a", "{}"), Tuning::default()).await;
    s.gw.set_ready(
        "a",
        vec![Endpoint {
            name: "raw".into(),
            addr,
        }],
    );
    let gw = s.addr;
    let req = tokio::spawn(async move {
        let mut c = TcpStream::connect(gw).await.unwrap();
        c.write_all(b"GET /p?q=1 HTTP/1.1\r\nHost: shop.localhost\r\nX-Forwarded-For: 10.1.1.1\r\nConnection: keep-alive, x-secret\r\nX-Secret: 1\r\n\r\n").await.unwrap();
        let mut buf = vec![0u8; 4096];
        let n = c.read(&mut buf).await.unwrap();
        String::from_utf8_lossy(&buf[..n]).to_string()
    });
    let (mut up, _) = l.accept().await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = up.read(&mut buf).await.unwrap();
    let head = String::from_utf8_lossy(&buf[..n]).to_lowercase();
    up.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        .await
        .unwrap();
    let answer = req.await.unwrap().to_lowercase();
    assert!(head.starts_with("get /p?q=1 http/1.1\r\n"), "{head}");
    assert!(head.contains("host: shop.localhost\r\n"), "{head}");
    assert!(
        head.contains("x-forwarded-for: 10.1.1.1, 127.0.0.1\r\n"),
        "{head}"
    );
    assert!(head.contains("x-forwarded-proto: http\r\n"), "{head}");
    assert!(
        head.contains("x-forwarded-host: shop.localhost\r\n"),
        "{head}"
    );
    assert!(
        !head.contains("x-secret"),
        "headers named by Connection are hop-by-hop: {head}"
    );
    let id = head
        .split("x-request-id: ")
        .nth(1)
        .unwrap()
        .split("\r\n")
        .next()
        .unwrap();
    assert_eq!(id.len(), 32);
    assert!(answer.contains(&format!("x-request-id: {id}")), "{answer}");
}

#[tokio::test]
async fn balancing_spreads_rotates_and_sticks() {
    let bs = [backend("a").await, backend("b").await, backend("c").await];
    let s = gateway(
        &[
            svc("p", "{ path: /p }"),
            svc("r", "{ path: /r, balance: round_robin }"),
            svc("h", "{ path: /h, balance: { hash: { header: X-User } } }"),
        ]
        .concat(),
        Tuning::default(),
    )
    .await;
    for n in ["p", "r", "h"] {
        s.gw.set_ready(n, bs.iter().map(Backend::endpoint).collect());
    }
    let h = client();
    let mut seen = BTreeMap::<String, u32>::new();
    for _ in 0..300 {
        let t = get(&h, &s, "x", "/p").await.1;
        *seen.entry(t[..1].to_string()).or_default() += 1;
    }
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert!(
        seen.values().all(|&n| n >= 50),
        "p2c spreads sequential requests: {seen:?}"
    );
    let mut rr = Vec::new();
    for _ in 0..6 {
        rr.push(get(&h, &s, "x", "/r").await.1[..1].to_string());
    }
    assert_eq!(rr[..3], rr[3..], "round robin repeats its order: {rr:?}");
    let mut first: BTreeMap<String, String> = BTreeMap::new();
    let mut users = std::collections::BTreeSet::new();
    for round in 0..3 {
        for u in 0..20 {
            let req = Request::builder()
                .uri(format!("http://{}/h", s.addr))
                .header("x-user", format!("user-{u}"))
                .body(Full::new(Bytes::new()))
                .unwrap();
            let body = h
                .request(req)
                .await
                .unwrap()
                .into_body()
                .collect()
                .await
                .unwrap()
                .to_bytes();
            let who = String::from_utf8_lossy(&body[..1]).to_string();
            users.insert(who.clone());
            if round == 0 {
                first.insert(u.to_string(), who);
            } else {
                assert_eq!(first[&u.to_string()], who, "user-{u} moved");
            }
        }
    }
    assert!(users.len() >= 2, "20 keys land on more than one replica");
}

#[tokio::test]
async fn failing_replica_is_ejected_then_reinstated() {
    let (good, bad) = (backend("good").await, backend("bad").await);
    let tuning = Tuning {
        eject_after: 3,
        eject_for: Duration::from_millis(500),
        ..Tuning::default()
    };
    // No retries: every 500 reaches the client, so ejection is what helps.
    let s = gateway(&svc("a", "{ retry: { attempts: 0 } }"), tuning).await;
    s.gw.set_ready("a", vec![good.endpoint(), bad.endpoint()]);
    let h = client();
    for _ in 0..20 {
        assert_eq!(get(&h, &s, "x", "/").await.0, StatusCode::OK);
    }
    // Replace `bad` by a replica that answers 500 to everything.
    let five = five_hundred().await;
    s.gw.set_ready("a", vec![good.endpoint(), five.clone()]);
    let mut fails = 0;
    for _ in 0..60 {
        if get(&h, &s, "x", "/").await.0 != StatusCode::OK {
            fails += 1;
        }
    }
    assert!(
        (1..=3).contains(&fails),
        "ejected after 3 failures in a row: {fails} failed"
    );
    let view = s.gw.routes();
    let r = view[0]
        .replicas
        .iter()
        .find(|r| r.name == five.name)
        .unwrap();
    assert_eq!(r.state, "ejected");
    tokio::time::sleep(Duration::from_millis(600)).await;
    let view = s.gw.routes();
    assert_eq!(
        view[0]
            .replicas
            .iter()
            .find(|r| r.name == five.name)
            .unwrap()
            .state,
        "ready"
    );
    let mut after = 0;
    for _ in 0..40 {
        if get(&h, &s, "x", "/").await.0 != StatusCode::OK {
            after += 1;
        }
    }
    assert!(after >= 1, "reinstated: it gets requests again");
    let m = s.gw.metrics();
    let parsed = prometheus_parse::Scrape::parse(m.lines().map(|l| Ok(l.to_string()))).unwrap();
    let ej: f64 = parsed
        .samples
        .iter()
        .filter(|x| {
            x.metric == "tug_gateway_ejections_total" && x.labels.get("replica") == Some(&five.name)
        })
        .map(|x| match x.value {
            prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Untyped(v) => v,
            _ => 0.0,
        })
        .sum();
    assert!(ej >= 2.0, "ejections counted: {m}");
}

/// A replica answering 500 to everything.
async fn five_hundred() -> Endpoint {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (s, _) = l.accept().await.unwrap();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(|_req: Request<Incoming>| async {
                    let mut r = http::Response::new(Full::new(Bytes::from("boom")));
                    *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
                    Ok::<_, std::convert::Infallible>(r)
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(s), svc)
                    .await;
            });
        }
    });
    Endpoint {
        name: "five-hundred".into(),
        addr,
    }
}

/// An address nothing listens on.
async fn refused() -> Endpoint {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    Endpoint {
        name: "gone".into(),
        addr,
    }
}

#[tokio::test]
async fn retries_go_elsewhere_within_their_rules() {
    let good = backend("good").await;
    let s = gateway(&svc("a", "{ balance: round_robin }"), Tuning::default()).await;
    let h = client();
    // A refused connect is retried for any method: nothing reached the replica.
    s.gw.set_ready("a", vec![good.endpoint(), refused().await]);
    for m in ["GET", "POST", "GET", "POST"] {
        let (st, _, t) = send(&h, m, format!("http://{}/x", s.addr), "x", "hello").await;
        assert_eq!(st, StatusCode::OK, "{m}: {t}");
        assert_eq!(t, "good /x body=5\n");
    }
    // A 503 is retried for GET, not for POST.
    let busy = busy_replica().await;
    s.gw.set_ready("a", vec![good.endpoint(), busy]);
    let mut post_503 = 0;
    for _ in 0..6 {
        assert_eq!(get(&h, &s, "x", "/y").await.0, StatusCode::OK);
        let (st, _, _) = send(&h, "POST", format!("http://{}/y", s.addr), "x", "b").await;
        if st == StatusCode::SERVICE_UNAVAILABLE {
            post_503 += 1;
        }
    }
    assert!(post_503 >= 1, "a POST that got 503 is not sent again");
    let m = s.gw.metrics();
    let parsed = prometheus_parse::Scrape::parse(m.lines().map(|l| Ok(l.to_string()))).unwrap();
    let retries: f64 = parsed
        .samples
        .iter()
        .filter(|x| x.metric == "tug_gateway_retries_total")
        .map(|x| match x.value {
            prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Untyped(v) => v,
            _ => 0.0,
        })
        .sum();
    assert!(retries >= 5.0, "{m}");
}

/// A replica answering 503 to everything.
async fn busy_replica() -> Endpoint {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (s, _) = l.accept().await.unwrap();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(|_req: Request<Incoming>| async {
                    let mut r = http::Response::new(Full::new(Bytes::from("busy")));
                    *r.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
                    Ok::<_, std::convert::Infallible>(r)
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(s), svc)
                    .await;
            });
        }
    });
    Endpoint {
        name: "busy".into(),
        addr,
    }
}

#[tokio::test]
async fn retry_budget_stops_amplification() {
    let tuning = Tuning {
        retry_reserve: 3,
        retry_percent: 0,
        ..Tuning::default()
    };
    let s = gateway(&svc("a", "{ retry: { attempts: 5 } }"), tuning).await;
    let (b1, b2, b3) = (
        busy_replica().await,
        busy_replica().await,
        busy_replica().await,
    );
    s.gw.set_ready("a", vec![b1, b2, b3]);
    let h = client();
    for _ in 0..10 {
        assert_eq!(
            get(&h, &s, "x", "/").await.0,
            StatusCode::SERVICE_UNAVAILABLE
        );
    }
    let m = s.gw.metrics();
    assert!(
        m.contains("tug_gateway_retries_total{service=\"a\",route=\"*/\"} 3"),
        "{m}"
    );
}

async fn raw(addr: SocketAddr, bytes: &[u8]) -> String {
    let mut c = TcpStream::connect(addr).await.unwrap();
    c.write_all(bytes).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), c.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).to_string()
}

#[tokio::test]
async fn smuggling_and_limits_are_refused() {
    let a = backend("a").await;
    let s = gateway(&svc("a", "{}"), Tuning::default()).await;
    s.gw.set_ready("a", vec![a.endpoint()]);
    for head in [
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n",
    ] {
        let r = raw(s.addr, head.as_bytes()).await;
        assert!(r.starts_with("HTTP/1.1 400"), "{r}");
    }
    let r = raw(
        s.addr,
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcd",
    )
    .await;
    assert!(r.starts_with("HTTP/1.1 400"), "{r}");
    assert_eq!(
        a.hits.load(Ordering::SeqCst),
        0,
        "nothing reached the replica"
    );
    // A well-formed request on a fresh connection still works, and a
    // keep-alive connection serves several.
    let r = raw(s.addr, b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await;
    assert_eq!(r.matches("HTTP/1.1 200").count(), 2, "{r}");
    let big = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(20_000)
    );
    let r = raw(s.addr, big.as_bytes()).await;
    assert!(r.starts_with("HTTP/1.1 431"), "{r}");
    let r = raw(
        s.addr,
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n",
    )
    .await;
    assert!(r.starts_with("HTTP/1.1 413"), "{r}");
}

#[tokio::test]
async fn slow_header_is_cut_off() {
    let text = "name: t\ngateway: { listen: ['127.0.0.1:0'], header_timeout: 300ms }\nservices:\n  a: { image: x, port: 80, route: {} }\n";
    let stack = tug_spec::parse_str(text, "tug.yaml".as_ref()).unwrap();
    let gw = Gateway::for_stack(&stack).unwrap();
    let (_stop, rx) = watch::channel(false);
    let addr = gw.start(rx).await.unwrap()[0];
    let mut c = TcpStream::connect(addr).await.unwrap();
    c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    let mut out = Vec::new();
    let r = tokio::time::timeout(Duration::from_secs(3), c.read_to_end(&mut out)).await;
    assert!(
        r.is_ok(),
        "the gateway closes a connection whose head never ends"
    );
}

#[tokio::test]
async fn websocket_upgrade_passes_through() {
    let a = backend("a").await;
    let s = gateway(&svc("a", "{}"), Tuning::default()).await;
    s.gw.set_ready("a", vec![a.endpoint()]);
    let mut c = TcpStream::connect(s.addr).await.unwrap();
    c.write_all(b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 1024];
    let n = c.read(&mut buf).await.unwrap();
    let head = String::from_utf8_lossy(&buf[..n]).to_string();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    for msg in [&b"ping"[..], b"and again"] {
        c.write_all(msg).await.unwrap();
        let n = c.read(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], msg);
    }
}

#[tokio::test]
async fn plain_requests_then_a_chunked_body_then_an_upgrade_on_one_connection() {
    let a = backend("a").await;
    let s = gateway(&svc("a", "{}"), Tuning::default()).await;
    s.gw.set_ready("a", vec![a.endpoint()]);
    let mut c = TcpStream::connect(s.addr).await.unwrap();
    let mut buf = vec![0u8; 4096];
    // Two at once: the second arrives with the first and waits its turn.
    c.write_all(b"GET /one HTTP/1.1\r\nHost: x\r\n\r\nPOST /two HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
        .await
        .unwrap();
    let mut got = String::new();
    let answered = tokio::time::timeout(Duration::from_secs(5), async {
        while !got.contains("/two body=3") {
            let n = c.read(&mut buf).await.unwrap();
            assert!(n > 0, "{got}");
            got.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    })
    .await;
    assert!(answered.is_ok(), "both answered: {got}");
    assert!(
        got.find("a /one body=0").unwrap() < got.find("a /two body=3").unwrap(),
        "{got}"
    );
    c.write_all(b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
        .await
        .unwrap();
    let n = c.read(&mut buf).await.unwrap();
    let head = String::from_utf8_lossy(&buf[..n]).to_string();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    c.write_all(b"ping").await.unwrap();
    let n = c.read(&mut buf).await.unwrap();
    assert_eq!(&buf[..n], b"ping");
}

#[tokio::test]
async fn drain_waits_for_in_flight_and_sends_nothing_new() {
    let (a, b) = (backend("a").await, backend("b").await);
    let s = gateway(&svc("a", "{ balance: round_robin }"), Tuning::default()).await;
    s.gw.set_ready("a", vec![a.endpoint()]);
    let h = client();
    let url = format!("http://{}/slow/700", s.addr);
    let slow = {
        let h = h.clone();
        tokio::spawn(async move { send(&h, "POST", url, "x", "").await })
    };
    tokio::time::sleep(Duration::from_millis(150)).await;
    s.gw.set_ready("a", vec![a.endpoint(), b.endpoint()]);
    let t0 = std::time::Instant::now();
    let drained = {
        let gw = s.gw.clone();
        tokio::spawn(async move { gw.drain("a", Duration::from_secs(5)).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let view = s.gw.routes();
    assert_eq!(
        view[0]
            .replicas
            .iter()
            .find(|r| r.name == "a")
            .unwrap()
            .state,
        "draining"
    );
    for _ in 0..10 {
        assert_eq!(get(&h, &s, "x", "/").await.1, "b / body=0\n");
    }
    assert!(
        drained.await.unwrap(),
        "in-flight finished within the grace period"
    );
    assert!(t0.elapsed() >= Duration::from_millis(400));
    let (st, _, t) = slow.await.unwrap();
    assert_eq!((st, t.as_str()), (StatusCode::OK, "a /slow/700 body=0\n"));
    // A drain that runs out of time says so.
    let url = format!("http://{}/slow/2000", s.addr);
    let h2 = h.clone();
    let slow = tokio::spawn(async move { send(&h2, "GET", url, "x", "").await });
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert!(!s.gw.drain("b", Duration::from_millis(200)).await);
    let _ = slow.await;
}

#[tokio::test]
async fn access_log_and_metrics() {
    let a = backend("a").await;
    let mut s = gateway(
        &svc("a", "{ path: /x, strip_prefix: true }"),
        Tuning::default(),
    )
    .await;
    s.gw.set_ready("a", vec![a.endpoint()]);
    let h = client();
    for p in ["/x/1", "/x/status/404", "/x/status/500"] {
        get(&h, &s, "h.localhost", p).await;
    }
    let mut lines = Vec::new();
    while lines.len() < 3 {
        lines.push(next_log(&mut s).await);
    }
    assert_eq!(lines[0]["path"], "/x/1");
    assert_eq!(lines[0]["status"], 200);
    assert_eq!(lines[0]["replica"], "a");
    assert_eq!(lines[0]["host"], "h.localhost");
    assert_eq!(lines[0]["request_id"].as_str().unwrap().len(), 32);
    let m = s.gw.metrics();
    let parsed = prometheus_parse::Scrape::parse(m.lines().map(|l| Ok(l.to_string()))).unwrap();
    let count = |code: &str| {
        parsed
            .samples
            .iter()
            .filter(|x| {
                x.metric == "tug_gateway_requests_total" && x.labels.get("code") == Some(code)
            })
            .map(|x| match x.value {
                prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Untyped(v) => v,
                _ => 0.0,
            })
            .sum::<f64>()
    };
    assert_eq!(
        (count("2xx"), count("4xx"), count("5xx")),
        (1.0, 1.0, 1.0),
        "{m}"
    );
    assert!(
        parsed
            .samples
            .iter()
            .any(|x| x.metric.starts_with("tug_gateway_request_duration_seconds")),
        "{m}"
    );
    assert!(
        parsed
            .samples
            .iter()
            .any(|x| x.metric == "tug_gateway_requests_in_flight"),
        "{m}"
    );
}

#[tokio::test]
async fn listen_address_in_use_is_named() {
    let taken = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = taken.local_addr().unwrap().port();
    let text = format!("name: t\ngateway: {{ listen: ['127.0.0.1:{port}'] }}\n");
    let stack = tug_spec::parse_str(&text, "tug.yaml".as_ref()).unwrap();
    let gw = Gateway::for_stack(&stack).unwrap();
    let (_s, rx) = watch::channel(false);
    let e = gw.start(rx).await.unwrap_err().to_string();
    assert!(
        e.starts_with(&format!("cannot listen on 127.0.0.1:{port}: ")),
        "{e}"
    );
    assert!(e.to_lowercase().contains("in use"), "{e}");
}

#[tokio::test]
async fn a_replica_that_never_answers_times_out_per_route() {
    // Accepts connections and reads nothing, answers nothing.
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((c, _)) = l.accept().await {
            held.push(c);
        }
    });
    let s = gateway(
        &svc("a", "{ timeouts: { request: 300ms } }"),
        Tuning::default(),
    )
    .await;
    s.gw.set_ready(
        "a",
        vec![Endpoint {
            name: "a".into(),
            addr,
        }],
    );
    let t0 = std::time::Instant::now();
    let (st, _, body) = send(&client(), "GET", format!("http://{}/", s.addr), "x", "").await;
    assert_eq!(st, StatusCode::GATEWAY_TIMEOUT, "{body}");
    assert!(body.contains("did not answer in time"), "{body}");
    assert!(t0.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn h2c_prior_knowledge() {
    let a = backend("a").await;
    let s = gateway(&svc("a", "{}"), Tuning::default()).await;
    s.gw.set_ready("a", vec![a.endpoint()]);
    let h: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http();
    let r = h
        .request(
            Request::get(format!("http://{}/h2", s.addr))
                .body(Empty::new())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(r.version(), http::Version::HTTP_2);
    let b = r.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&b[..], b"a /h2 body=0\n");
}

/// An upstream speaking h2c only (prior knowledge), answering as a gRPC
/// server does: the request body back, then trailers with `grpc-status`
/// and the request's `x-checksum` trailer. Counts the connections it takes.
async fn grpc_backend() -> (Endpoint, Arc<AtomicU32>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let conns = Arc::new(AtomicU32::new(0));
    let counted = Arc::clone(&conns);
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(
                hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(s), hyper::service::service_fn(grpc_answer)),
            );
        }
    });
    let e = Endpoint {
        name: "g".into(),
        addr,
    };
    (e, conns)
}

type Grpc = http_body_util::combinators::BoxBody<Bytes, std::convert::Infallible>;

async fn grpc_answer(
    req: Request<Incoming>,
) -> Result<http::Response<Grpc>, std::convert::Infallible> {
    let seen = format!(
        "{:?} te={:?} path={}",
        req.version(),
        req.headers().get("te"),
        req.uri().path()
    );
    let got = req.into_body().collect().await.unwrap();
    let mut trailers = http::HeaderMap::new();
    trailers.insert("grpc-status", "0".parse().unwrap());
    if let Some(c) = got.trailers().and_then(|t| t.get("x-checksum")) {
        trailers.insert("x-checksum", c.clone());
    }
    let body = Full::new(got.to_bytes())
        .with_trailers(std::future::ready(Some(Ok(trailers))))
        .boxed();
    let mut r = http::Response::new(body);
    r.headers_mut()
        .insert("content-type", "application/grpc".parse().unwrap());
    r.headers_mut().insert("x-seen", seen.parse().unwrap());
    Ok(r)
}

#[tokio::test]
async fn h2c_upstream_keeps_trailers_on_one_connection() {
    let (g, conns) = grpc_backend().await;
    let s = gateway(&svc("g", "{ upstream: h2c }"), Tuning::default()).await;
    s.gw.set_ready("g", vec![g]);
    // A gRPC client: h2c to the gateway, a streamed body ending in trailers.
    let h: Client<_, Grpc> = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http();
    let call = |i: usize| {
        let h = h.clone();
        let url = format!("http://{}/echo.Echo/Say", s.addr);
        async move {
            let mut t = http::HeaderMap::new();
            t.insert("x-checksum", format!("c{i}").parse().unwrap());
            let body = Full::new(Bytes::from(format!("\0\0\0\0\x05hi{i}")))
                .with_trailers(std::future::ready(Some(Ok(t))))
                .boxed();
            let req = Request::post(url)
                .header("content-type", "application/grpc")
                .header("te", "trailers")
                .body(body)
                .unwrap();
            let r = h.request(req).await.unwrap();
            let (p, b) = r.into_parts();
            let got = b.collect().await.unwrap();
            let trailers = got.trailers().cloned().unwrap_or_default();
            (p, got.to_bytes(), trailers)
        }
    };
    let calls: Vec<_> = (0..8).map(|i| tokio::spawn(call(i))).collect();
    for (i, c) in calls.into_iter().enumerate() {
        let (p, body, trailers) = c.await.unwrap();
        assert_eq!(p.status, StatusCode::OK);
        assert_eq!(
            p.headers["x-seen"],
            "HTTP/2.0 te=Some(\"trailers\") path=/echo.Echo/Say"
        );
        assert_eq!(&body[..], format!("\0\0\0\0\x05hi{i}").as_bytes());
        assert_eq!(trailers["grpc-status"], "0");
        assert_eq!(trailers["x-checksum"], format!("c{i}").as_str());
    }
    // Eight concurrent calls, multiplexed: one connection per worker at most.
    let n = conns.load(Ordering::SeqCst);
    assert!(
        (1..=Tuning::default().workers as u32).contains(&n),
        "{n} connections"
    );
    // An HTTP/1.1 client reaches the same h2c upstream.
    let (st, hd, body) = send(
        &client(),
        "POST",
        format!("http://{}/echo.Echo/Say", s.addr),
        "x",
        "plain",
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    assert!(hd["x-seen"]
        .to_str()
        .unwrap()
        .starts_with("HTTP/2.0 te=None"));
    assert_eq!(body, "plain");
}

#[tokio::test]
async fn replica_killed_under_load_fails_only_its_in_flight_posts() {
    let (a, b) = (backend("a").await, backend("b").await);
    let s = gateway(&svc("a", "{}"), Tuning::default()).await;
    s.gw.set_ready("a", vec![a.endpoint(), b.endpoint()]);
    let h = client();
    let base = format!("http://{}", s.addr);
    let mut loops = Vec::new();
    for i in 0..8 {
        let (h, base) = (h.clone(), base.clone());
        let method = if i % 2 == 0 { "GET" } else { "POST" };
        loops.push(tokio::spawn(async move {
            let mut failed = 0;
            for _ in 0..60 {
                let (st, _, _) = send(&h, method, format!("{base}/slow/5"), "x", "").await;
                if st != StatusCode::OK {
                    failed += 1;
                }
            }
            (method, failed)
        }));
    }
    tokio::time::sleep(Duration::from_millis(150)).await;
    // Killed: the listener and every open connection close at once.
    let _ = b.stop.send(true);
    let mut get_failed = 0;
    let mut post_failed = 0;
    for l in loops {
        match l.await.unwrap() {
            ("GET", f) => get_failed += f,
            (_, f) => post_failed += f,
        }
    }
    assert_eq!(
        get_failed, 0,
        "idempotent requests are retried on the other replica"
    );
    // At most the POSTs that were in flight on `b` (one per loop).
    assert!(post_failed <= 4, "{post_failed} POSTs failed");
    assert!(b.hits.load(Ordering::SeqCst) > 0 && a.hits.load(Ordering::SeqCst) > 0);
}

#[tokio::test]
async fn server_sent_events_stream_through() {
    // A replica that sends one event, then the next only after the client
    // could have seen the first: a buffering proxy would hold both.
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let (second_tx, second_rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let (mut up, _) = l.accept().await.unwrap();
        let mut buf = vec![0u8; 4096];
        let _ = up.read(&mut buf).await.unwrap();
        up.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n9\r\ndata: 1\n\n\r\n").await.unwrap();
        let _ = second_rx.await;
        up.write_all(b"9\r\ndata: 2\n\n\r\n0\r\n\r\n")
            .await
            .unwrap();
    });
    let s = gateway(&svc("a", "{}"), Tuning::default()).await;
    s.gw.set_ready(
        "a",
        vec![Endpoint {
            name: "sse".into(),
            addr,
        }],
    );
    let mut c = TcpStream::connect(s.addr).await.unwrap();
    c.write_all(b"GET /events HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n")
        .await
        .unwrap();
    let mut got = Vec::new();
    let mut buf = vec![0u8; 4096];
    while !String::from_utf8_lossy(&got).contains("data: 1") {
        let n = tokio::time::timeout(Duration::from_secs(5), c.read(&mut buf))
            .await
            .expect("the first event arrives before the stream ends")
            .unwrap();
        assert!(n > 0, "closed early: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    assert!(!String::from_utf8_lossy(&got).contains("data: 2"));
    second_tx.send(()).unwrap();
    while !String::from_utf8_lossy(&got).contains("data: 2") {
        let n = tokio::time::timeout(Duration::from_secs(5), c.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0);
        got.extend_from_slice(&buf[..n]);
    }
}

#[tokio::test]
async fn one_client_cannot_hold_every_connection() {
    let a = backend("a").await;
    let text = "name: t\ngateway: { listen: ['127.0.0.1:0'], max_connections: 8 }\nservices:\n  a: { image: x, port: 80, route: {} }\n";
    let stack = tug_spec::parse_str(text, "tug.yaml".as_ref()).unwrap();
    let gw = Gateway::for_stack(&stack).unwrap();
    let (_stop, rx) = watch::channel(false);
    let addr = gw.start(rx).await.unwrap()[0];
    gw.set_ready("a", vec![a.endpoint()]);
    // Two slow clients from 127.0.0.1 hold its share (8 / 4)...
    let mut slow = Vec::new();
    for _ in 0..2 {
        let mut c = TcpStream::connect(addr).await.unwrap();
        c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").await.unwrap();
        slow.push(c);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    // ...so a third connection from it is closed at once.
    let mut c = TcpStream::connect(addr).await.unwrap();
    let _ = c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let mut out = Vec::new();
    let r = tokio::time::timeout(Duration::from_secs(2), c.read_to_end(&mut out)).await;
    assert!(
        matches!(r, Ok(Ok(0)) | Ok(Err(_))),
        "refused: {:?}",
        String::from_utf8_lossy(&out)
    );
    // Once they go, the client is served again.
    drop(slow);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let r = raw(
        addr,
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
}

/// A service that scales to zero: `autoscale` with `min: 0`.
fn zero(name: &str, extra: &str) -> String {
    format!("  {name}:\n    image: x\n    port: 80\n    route: {{ path: / }}\n    autoscale: {{ min: 0, max: 2, idle: 1m{extra} }}\n")
}

/// A gateway for the services in `yaml` with its activator set from them;
/// each wake it asks for is sent on the channel.
async fn activated(yaml: &str) -> (Setup, mpsc::UnboundedReceiver<String>) {
    let s = gateway(yaml, Tuning::default()).await;
    let text = format!("name: t\ngateway: {{ listen: ['127.0.0.1:0'] }}\nservices:\n{yaml}");
    let stack = tug_spec::parse_str(&text, "tug.yaml".as_ref()).unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    s.gw.set_activator(
        tug_gateway::Activation::for_stack(&stack),
        Box::new(move |svc: &str| {
            let _ = tx.send(svc.to_string());
        }),
    );
    (s, rx)
}

/// Sends `n` requests to `/` at once, each on its own task.
fn spawn_gets(
    h: &Http,
    s: &Setup,
    n: usize,
) -> Vec<tokio::task::JoinHandle<(StatusCode, http::HeaderMap, String)>> {
    (0..n)
        .map(|_| {
            let (h, url) = (h.clone(), format!("http://{}/", s.addr));
            tokio::spawn(async move { send(&h, "GET", url, "x", "").await })
        })
        .collect()
}

/// Observations of a histogram, from the `+Inf` bucket.
fn histogram_count(m: &str, name: &str) -> f64 {
    let parsed = prometheus_parse::Scrape::parse(m.lines().map(|l| Ok(l.to_string()))).unwrap();
    parsed
        .samples
        .iter()
        .filter(|x| x.metric == name)
        .map(|x| match &x.value {
            prometheus_parse::Value::Histogram(h) => h
                .iter()
                .filter(|b| b.less_than.is_infinite())
                .map(|b| b.count)
                .sum(),
            _ => 0.0,
        })
        .sum()
}

#[tokio::test]
async fn a_request_wakes_a_service_scaled_to_zero() {
    let a = backend("a").await;
    let (mut s, mut wakes) = activated(&zero("a", "")).await;
    let h = client();
    // Two requests arrive while the service is at zero: one wake, both held.
    let held = spawn_gets(&h, &s, 2);
    let woken = tokio::time::timeout(Duration::from_secs(5), wakes.recv())
        .await
        .unwrap();
    assert_eq!(woken.as_deref(), Some("a"));
    let t = s.gw.traffic("a").unwrap();
    assert_eq!(t.idle_since, None, "held requests keep the service busy");
    tokio::time::sleep(Duration::from_millis(300)).await;
    s.gw.set_ready("a", vec![a.endpoint()]);
    for r in held {
        let (st, _, body) = r.await.unwrap();
        assert_eq!((st, body.as_str()), (StatusCode::OK, "a / body=0\n"));
    }
    assert!(wakes.try_recv().is_err(), "one wake for both requests");
    let m = s.gw.metrics();
    assert_eq!(histogram_count(&m, "tug_cold_start_seconds"), 2.0, "{m}");
    assert!(
        m.contains("tug_cold_start_seconds_sum{service=\"a\"}"),
        "{m}"
    );
    // Both held requests were cold starts; once awake, requests go
    // straight through and are not.
    assert_eq!(next_log(&mut s).await["cold_start"], true);
    assert_eq!(next_log(&mut s).await["cold_start"], true);
    assert_eq!(get(&h, &s, "x", "/").await.0, StatusCode::OK);
    assert_eq!(next_log(&mut s).await["cold_start"], false);
    // The autoscaler's view: requests counted per replica, idle once done.
    let t = s.gw.traffic("a").unwrap();
    assert_eq!(t.replicas.len(), 1);
    assert_eq!((t.replicas[0].requests, t.replicas[0].in_flight), (3, 0));
    assert!(t.idle_since.is_some());
    assert!(s.gw.traffic("nope").is_none());
}

#[tokio::test]
async fn the_activator_queue_is_bounded_and_its_wait_times_out() {
    let (s, _wakes) = activated(&zero("a", ", max_pending: 2, wake_timeout: 700ms")).await;
    let h = client();
    let t0 = std::time::Instant::now();
    let held = spawn_gets(&h, &s, 2);
    tokio::time::sleep(Duration::from_millis(200)).await;
    // The queue is full: a third request is turned away at once.
    let (st, hd, body) = send(&h, "GET", format!("http://{}/", s.addr), "x", "").await;
    assert_eq!(st, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(hd["retry-after"], "1");
    assert!(body.contains("too many requests are waiting"), "{body}");
    assert!(t0.elapsed() < Duration::from_millis(700));
    // No replica comes: the held ones get 503 after the wake timeout.
    for r in held {
        let (st, hd, body) = r.await.unwrap();
        assert_eq!(st, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(hd["retry-after"], "1");
        assert!(body.contains("no replica became ready in time"), "{body}");
    }
    assert!(t0.elapsed() >= Duration::from_millis(700));
    // A service that does not scale to zero is not held.
    let (s, _wakes) = activated(&svc("b", "{ path: / }")).await;
    let t0 = std::time::Instant::now();
    assert_eq!(
        get(&h, &s, "x", "/").await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert!(t0.elapsed() < Duration::from_millis(500));
}
