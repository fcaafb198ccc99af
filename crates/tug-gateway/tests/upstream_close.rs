//! A replica that leaves the pools gets its keep-alive connections back:
//! real upstreams on loopback record when each of their connections
//! opens and closes, so the tests count events rather than time.

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tug_gateway::{Endpoint, Gateway, Tuning};

mod support;
use support::{client, Http};

#[derive(Debug, PartialEq)]
enum Seen {
    Open,
    Closed,
}

async fn answer(req: Request<Incoming>) -> Result<http::Response<Full<Bytes>>, hyper::Error> {
    let path = req.uri().path().to_string();
    if let Some(ms) = path.strip_prefix("/slow/") {
        tokio::time::sleep(Duration::from_millis(ms.parse().unwrap())).await;
    }
    Ok(http::Response::new(Full::new(Bytes::from(format!(
        "ok {path}\n"
    )))))
}

/// An upstream (HTTP/1.1 or h2c) reporting each connection's open and close.
async fn upstream(h2: bool) -> (SocketAddr, mpsc::UnboundedReceiver<Seen>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let tx = tx.clone();
            let _ = tx.send(Seen::Open);
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(answer);
                if h2 {
                    let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(s), svc)
                        .await;
                } else {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(s), svc)
                        .await;
                }
                let _ = tx.send(Seen::Closed);
            });
        }
    });
    (addr, rx)
}

async fn gateway(route: &str) -> (Gateway, SocketAddr, watch::Sender<bool>) {
    let text = format!(
        "name: t\ngateway: {{ listen: ['127.0.0.1:0'] }}\nservices:\n  a:\n    image: x\n    port: 80\n    route: {route}\n"
    );
    // One worker: one upstream pool, so connection counts are exact.
    let tuning = Tuning {
        workers: 1,
        ..Tuning::default()
    };
    support::start(&text, tuning, None).await
}

async fn get(c: &Http, gw: SocketAddr, path: &str) -> (StatusCode, String) {
    let r = c
        .request(
            Request::get(format!("http://{gw}{path}"))
                .body(Full::new(Bytes::new()))
                .unwrap(),
        )
        .await
        .unwrap();
    let status = r.status();
    let b = r.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&b).into_owned())
}

/// The next event, which must come within a few seconds.
async fn next(rx: &mut mpsc::UnboundedReceiver<Seen>) -> Seen {
    tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("an event from the upstream")
        .unwrap()
}

fn endpoint(addr: SocketAddr) -> Endpoint {
    Endpoint {
        name: "t-a-1".into(),
        addr,
    }
}

#[tokio::test]
async fn a_drained_replica_gets_its_idle_connection_closed_at_once_and_the_busy_one_after() {
    let (up, mut seen) = upstream(false).await;
    let (gw, addr, _stop) = gateway("{ path: / }").await;
    gw.set_ready("a", vec![endpoint(up)]);
    let c = client();
    // Two requests at once: two pooled connections to the replica.
    let (x, y) = tokio::join!(get(&c, addr, "/slow/300"), get(&c, addr, "/slow/300"));
    assert_eq!((x.0, y.0), (StatusCode::OK, StatusCode::OK));
    assert_eq!(next(&mut seen).await, Seen::Open);
    assert_eq!(next(&mut seen).await, Seen::Open);

    // One of them carries a long request; the other stays idle.
    let slow = {
        let c = c.clone();
        tokio::spawn(async move { get(&c, addr, "/slow/4000").await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(seen.try_recv().is_err(), "the request reused a connection");

    let drained = {
        let gw = gw.clone();
        tokio::spawn(async move { gw.drain("t-a-1", Duration::from_secs(30)).await })
    };
    assert_eq!(next(&mut seen).await, Seen::Closed, "the idle connection");
    assert!(
        !slow.is_finished(),
        "closed while the other request was still in flight"
    );
    assert_eq!(
        slow.await.unwrap(),
        (StatusCode::OK, "ok /slow/4000\n".to_string())
    );
    assert_eq!(
        next(&mut seen).await,
        Seen::Closed,
        "the busy connection, once its response was done"
    );
    assert!(drained.await.unwrap());
}

#[tokio::test]
async fn a_replica_gone_from_the_pool_gets_its_h2c_connection_closed_when_idle() {
    let (up, mut seen) = upstream(true).await;
    let (gw, addr, _stop) = gateway("{ path: /, upstream: h2c }").await;
    gw.set_ready("a", vec![endpoint(up)]);
    let c = client();
    assert_eq!(get(&c, addr, "/").await.0, StatusCode::OK);
    assert_eq!(next(&mut seen).await, Seen::Open);

    // A request in flight on the shared connection when the replica turns
    // unhealthy: it completes, then the connection closes.
    let slow = {
        let c = c.clone();
        tokio::spawn(async move { get(&c, addr, "/slow/1500").await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    gw.set_ready("a", vec![]);
    assert_eq!(next(&mut seen).await, Seen::Closed);
    assert!(slow.is_finished(), "closed only after the request was done");
    assert_eq!(
        slow.await.unwrap(),
        (StatusCode::OK, "ok /slow/1500\n".to_string())
    );

    // Back, then gone with nothing in flight: closed at once.
    gw.set_ready("a", vec![endpoint(up)]);
    assert_eq!(get(&c, addr, "/").await.0, StatusCode::OK);
    assert_eq!(next(&mut seen).await, Seen::Open);
    gw.set_ready("a", vec![]);
    assert_eq!(next(&mut seen).await, Seen::Closed);
}

#[tokio::test]
async fn a_replica_that_stays_keeps_its_pooled_connection() {
    let (up, mut seen) = upstream(false).await;
    let (other, _) = upstream(false).await;
    let (gw, addr, _stop) = gateway("{ path: / }").await;
    gw.set_ready("a", vec![endpoint(up)]);
    let c = client();
    assert_eq!(get(&c, addr, "/").await.0, StatusCode::OK);
    assert_eq!(next(&mut seen).await, Seen::Open);
    // Another replica joins and leaves: this one's connection is untouched.
    gw.set_ready(
        "a",
        vec![
            endpoint(up),
            Endpoint {
                name: "t-a-2".into(),
                addr: other,
            },
        ],
    );
    gw.set_ready("a", vec![endpoint(up)]);
    for _ in 0..3 {
        assert_eq!(get(&c, addr, "/").await.0, StatusCode::OK);
    }
    assert!(
        seen.try_recv().is_err(),
        "one connection, reused, still open"
    );
}
