//! The HTTP/1.1 exchange byte by byte: replicas scripted over raw TCP (how
//! they frame, split, interleave and close their answers) and a raw client.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tug_gateway::{Endpoint, Gateway, Tuning};

// The plain client of the other test binaries is not needed here.
#[allow(dead_code)]
mod support;

/// What a scripted replica does with one request.
struct Reply {
    /// Written one after another, a little apart, so they arrive apart.
    parts: Vec<Vec<u8>>,
    /// Close the connection afterwards.
    close: bool,
}

fn reply(text: &str) -> Reply {
    Reply {
        parts: vec![text.as_bytes().to_vec()],
        close: false,
    }
}

struct Replica {
    addr: SocketAddr,
    connections: Arc<AtomicU32>,
    requests: Arc<std::sync::Mutex<Vec<String>>>,
}

/// A replica answering request `n` (counted over all its connections, from
/// 0) with `script(n, head)`.
async fn scripted(script: impl Fn(u32, &str) -> Reply + Send + Sync + 'static) -> Replica {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let connections = Arc::new(AtomicU32::new(0));
    let requests = Arc::new(std::sync::Mutex::new(Vec::new()));
    let script = Arc::new(script);
    let (c, r) = (Arc::clone(&connections), Arc::clone(&requests));
    tokio::spawn(async move {
        let n = Arc::new(AtomicU32::new(0));
        loop {
            let (mut s, _) = l.accept().await.unwrap();
            c.fetch_add(1, Ordering::SeqCst);
            let (script, n, r) = (Arc::clone(&script), Arc::clone(&n), Arc::clone(&r));
            tokio::spawn(async move {
                let mut buf = Vec::new();
                loop {
                    let Some(head) = read_request(&mut s, &mut buf).await else {
                        return;
                    };
                    r.lock().unwrap().push(head.clone());
                    let reply = script(n.fetch_add(1, Ordering::SeqCst), &head);
                    for (i, p) in reply.parts.iter().enumerate() {
                        if i > 0 {
                            tokio::time::sleep(Duration::from_millis(30)).await;
                        }
                        if s.write_all(p).await.is_err() {
                            return;
                        }
                    }
                    if reply.close {
                        return;
                    }
                }
            });
        }
    });
    Replica {
        addr,
        connections,
        requests,
    }
}

/// Reads one request (head and sized body) off `s`; `None` at its end.
async fn read_request(s: &mut TcpStream, buf: &mut Vec<u8>) -> Option<String> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end + 4]).to_string();
            let length: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse().unwrap())
                })
                .unwrap_or(0);
            while buf.len() < end + 4 + length {
                let mut more = [0u8; 4096];
                let n = s.read(&mut more).await.ok().filter(|&n| n > 0)?;
                buf.extend_from_slice(&more[..n]);
            }
            buf.drain(..end + 4 + length);
            return Some(head);
        }
        let mut more = [0u8; 4096];
        let n = s.read(&mut more).await.ok().filter(|&n| n > 0)?;
        buf.extend_from_slice(&more[..n]);
    }
}

async fn gateway(replica: &Replica) -> (Gateway, SocketAddr, watch::Sender<bool>) {
    let text = "name: t\ngateway: { listen: ['127.0.0.1:0'] }\nservices:\n  a: { image: x, port: 80, route: {} }\n";
    let (gw, addr, stop) = support::start(text, Tuning::default(), None).await;
    gw.set_ready(
        "a",
        vec![Endpoint {
            name: "t-a-1".into(),
            addr: replica.addr,
        }],
    );
    (gw, addr, stop)
}

/// Reads from `c` until what came ends with `end`.
async fn read_until(c: &mut TcpStream, end: &str) -> String {
    let mut got = Vec::new();
    let r = tokio::time::timeout(Duration::from_secs(5), async {
        while !got.ends_with(end.as_bytes()) {
            let mut b = [0u8; 4096];
            match c.read(&mut b).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&b[..n]),
            }
        }
    })
    .await;
    let text = String::from_utf8_lossy(&got).to_string();
    assert!(r.is_ok(), "no {end:?} at the end of {text:?}");
    text
}

async fn read_all(c: &mut TcpStream) -> String {
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), c.read_to_end(&mut out))
        .await
        .expect("the gateway closes the connection")
        .unwrap();
    String::from_utf8_lossy(&out).to_string()
}

const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";

#[tokio::test]
async fn a_chunked_answer_arriving_in_pieces_passes_whole_and_its_connection_is_kept() {
    let r = scripted(|_, _| Reply {
        parts: vec![
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel".to_vec(),
            b"lo\r\n6;ext=1\r\n world\r\n".to_vec(),
            b"0\r\nx-sum: 9\r\n\r\n".to_vec(),
        ],
        close: false,
    })
    .await;
    let (_gw, addr, _stop) = gateway(&r).await;
    let mut c = TcpStream::connect(addr).await.unwrap();
    for _ in 0..2 {
        c.write_all(GET).await.unwrap();
        let got = read_until(&mut c, "x-sum: 9\r\n\r\n").await;
        assert!(got.starts_with("HTTP/1.1 200 OK\r\n"), "{got}");
        assert!(got.contains("transfer-encoding: chunked\r\n"), "{got}");
        assert!(
            got.ends_with("\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nx-sum: 9\r\n\r\n"),
            "{got}"
        );
    }
    assert_eq!(
        r.connections.load(Ordering::SeqCst),
        1,
        "the replica's connection is kept"
    );
}

#[tokio::test]
async fn an_answer_that_ends_with_its_connection_closes_the_clients() {
    let r = scripted(|_, _| Reply {
        parts: vec![b"HTTP/1.1 200 OK\r\n\r\nall ".to_vec(), b"of it".to_vec()],
        close: true,
    })
    .await;
    let (_gw, addr, _stop) = gateway(&r).await;
    let mut c = TcpStream::connect(addr).await.unwrap();
    c.write_all(GET).await.unwrap();
    let got = read_all(&mut c).await;
    assert!(got.starts_with("HTTP/1.1 200 OK\r\n"), "{got}");
    assert!(got.contains("connection: close\r\n"), "{got}");
    assert!(got.ends_with("\r\n\r\nall of it"), "{got}");
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order() {
    let r = scripted(|_, head| {
        let path = head.split(' ').nth(1).unwrap().to_string();
        reply(&format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{path}",
            path.len()
        ))
    })
    .await;
    let (_gw, addr, _stop) = gateway(&r).await;
    let mut c = TcpStream::connect(addr).await.unwrap();
    c.write_all(
        b"GET /one HTTP/1.1\r\nHost: x\r\n\r\nPOST /two HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabcGET /three HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await
    .unwrap();
    let got = read_all(&mut c).await;
    let bodies: Vec<&str> = got
        .split("HTTP/1.1 200 OK")
        .skip(1)
        .map(|r| r.rsplit("\r\n\r\n").next().unwrap())
        .collect();
    assert_eq!(bodies, ["/one", "/two", "/three"], "{got}");
    assert!(got.contains("connection: close\r\n"), "{got}");
    let seen = r.requests.lock().unwrap().clone();
    assert!(seen[1].contains("Content-Length: 3"), "{seen:?}");
}

#[tokio::test]
async fn a_kept_connection_the_replica_closed_is_not_used() {
    // The replica closes each connection after its answer, without saying so.
    let r = scripted(|_, _| Reply {
        parts: vec![b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec()],
        close: true,
    })
    .await;
    let (_gw, addr, _stop) = gateway(&r).await;
    let mut c = TcpStream::connect(addr).await.unwrap();
    for _ in 0..3 {
        c.write_all(GET).await.unwrap();
        let got = read_until(&mut c, "\r\n\r\nok").await;
        assert!(got.starts_with("HTTP/1.1 200 OK"), "{got}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(r.connections.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_request_the_kept_connection_lost_is_sent_again_only_if_idempotent() {
    // Every second request on a connection finds it closing: the replica
    // reads it and closes without an answer (a keep-alive timeout race).
    let r = scripted(|n, _| {
        if n % 2 == 1 {
            Reply {
                parts: vec![],
                close: true,
            }
        } else {
            reply("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        }
    })
    .await;
    let (_gw, addr, _stop) = gateway(&r).await;
    let mut c = TcpStream::connect(addr).await.unwrap();
    c.write_all(GET).await.unwrap();
    read_until(&mut c, "\r\n\r\nok").await;
    c.write_all(GET).await.unwrap();
    let got = read_until(&mut c, "\r\n\r\nok").await;
    assert!(
        got.starts_with("HTTP/1.1 200 OK"),
        "a GET is sent again: {got}"
    );
    c.write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx")
        .await
        .unwrap();
    let got = read_until(&mut c, "\n").await;
    assert!(got.starts_with("HTTP/1.1 503"), "a POST is not: {got}");
}

#[tokio::test]
async fn interim_answers_are_not_passed_on() {
    let r = scripted(|_, _| {
        reply("HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    })
    .await;
    let (_gw, addr, _stop) = gateway(&r).await;
    let mut c = TcpStream::connect(addr).await.unwrap();
    c.write_all(GET).await.unwrap();
    let got = read_until(&mut c, "\r\n\r\nok").await;
    assert!(got.starts_with("HTTP/1.1 200 OK\r\n"), "{got}");
    assert!(!got.contains("103") && !got.contains("a.css"), "{got}");
}

#[tokio::test]
async fn hop_by_hop_headers_stay_on_their_hop() {
    let r = scripted(|_, _| {
        reply("HTTP/1.1 200 OK\r\nConnection: X-Secret\r\nX-Secret: 1\r\nKeep-Alive: timeout=5\r\nX-Kept: 1\r\nX-Request-Id: theirs\r\nContent-Length: 2\r\n\r\nok")
    })
    .await;
    let (_gw, addr, _stop) = gateway(&r).await;
    let mut c = TcpStream::connect(addr).await.unwrap();
    c.write_all(b"GET /p?q=1 HTTP/1.1\r\nHost: x:8000\r\nConnection: keep-alive, X-Private\r\nX-Private: 1\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\nProxy-Authorization: Basic eA==\r\nX-Forwarded-For: 10.0.0.1\r\nX-Forwarded-Host: forged\r\nX-Request-Id: r-1\r\nAccept: */*\r\n\r\n")
        .await
        .unwrap();
    let got = read_until(&mut c, "\r\n\r\nok").await.to_ascii_lowercase();
    for gone in ["x-secret", "keep-alive", "connection"] {
        assert!(!got.contains(gone), "{gone} reached the client: {got}");
    }
    assert!(
        got.contains("x-kept: 1\r\n") && got.contains("x-request-id: r-1\r\n"),
        "{got}"
    );
    assert!(!got.contains("theirs"), "{got}");
    let seen = r.requests.lock().unwrap()[0].to_ascii_lowercase();
    assert!(seen.starts_with("get /p?q=1 http/1.1\r\n"), "{seen}");
    for gone in [
        "x-private",
        "keep-alive",
        "connection",
        "te:",
        "proxy-authorization",
        "forged",
    ] {
        assert!(!seen.contains(gone), "{gone} reached the replica: {seen}");
    }
    for kept in [
        "host: x:8000\r\n",
        "accept: */*\r\n",
        "x-forwarded-for: 10.0.0.1, 127.0.0.1\r\n",
        "x-forwarded-host: x:8000\r\n",
        "x-forwarded-proto: http\r\n",
        "x-request-id: r-1\r\n",
    ] {
        assert!(seen.contains(kept), "{kept} missing: {seen}");
    }
}

#[tokio::test]
async fn a_head_answer_has_no_body_and_the_connection_goes_on() {
    let r = scripted(|_, head| {
        if head.starts_with("HEAD") {
            reply("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n")
        } else {
            reply("HTTP/1.1 204 No Content\r\n\r\n")
        }
    })
    .await;
    let (_gw, addr, _stop) = gateway(&r).await;
    let mut c = TcpStream::connect(addr).await.unwrap();
    c.write_all(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let got = read_until(&mut c, "\r\n\r\n").await;
    assert!(
        got.starts_with("HTTP/1.1 200") && got.contains("Content-Length: 5"),
        "{got}"
    );
    c.write_all(b"DELETE / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let got = read_all(&mut c).await;
    assert!(got.starts_with("HTTP/1.1 204"), "{got}");
    assert_eq!(r.connections.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_malformed_answer_is_refused() {
    let r = scripted(|n, _| match n {
        0 => reply(
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        ),
        1 => reply("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc"),
        2 => reply("not http at all\r\n\r\n"),
        _ => reply("HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n"),
    })
    .await;
    let (_gw, addr, _stop) = gateway(&r).await;
    for _ in 0..4 {
        let mut c = TcpStream::connect(addr).await.unwrap();
        c.write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
            .await
            .unwrap();
        let got = read_until(&mut c, "\n").await;
        assert!(got.starts_with("HTTP/1.1 503"), "{got}");
    }
}

#[tokio::test]
async fn a_client_that_says_close_is_closed_after_its_answer() {
    let r = scripted(|_, _| reply("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")).await;
    let (_gw, addr, _stop) = gateway(&r).await;
    let mut c = TcpStream::connect(addr).await.unwrap();
    c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let got = read_all(&mut c).await;
    assert!(
        got.contains("connection: close\r\n") && got.ends_with("\r\n\r\nok"),
        "{got}"
    );
}

#[tokio::test]
async fn a_large_answer_streams_through() {
    const SIZE: usize = 4 << 20;
    let r = scripted(|_, _| {
        let mut parts =
            vec![format!("HTTP/1.1 200 OK\r\nContent-Length: {SIZE}\r\n\r\n").into_bytes()];
        parts.extend((0..4).map(|i| vec![b'a' + i as u8; SIZE / 4]));
        Reply {
            parts,
            close: false,
        }
    })
    .await;
    let (_gw, addr, _stop) = gateway(&r).await;
    let mut c = TcpStream::connect(addr).await.unwrap();
    c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let got = read_all(&mut c).await;
    let body = got.split_once("\r\n\r\n").unwrap().1;
    assert_eq!(body.len(), SIZE);
    assert!(body.starts_with('a') && body.ends_with('d'));
}
