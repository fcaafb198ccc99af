//! Tracing through the gateway costs an unsampled request no span: the
//! sampling decision comes first (parent-based on the caller's
//! `traceparent`, then the ratio), and such a request only passes a
//! `traceparent` with the sampled flag off to its replica. Spans go over
//! OTLP HTTP/protobuf to a real receiver built from the protocol
//! definitions; tug-observe's count of span starts shows none was even
//! begun for the unsampled ones.

#[path = "../../tug-observe/tests/support/otlp_receiver.rs"]
mod otlp_receiver;

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use otlp_receiver::{hex, incoming, Receiver};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tug_gateway::{Endpoint, Gateway, Tuning};
use tug_observe::trace::{install, spans_started, Settings};

/// A replica that keeps the `traceparent` of every request it gets.
async fn replica(seen: Arc<Mutex<Vec<String>>>) -> SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (s, _) = l.accept().await.unwrap();
            let seen = Arc::clone(&seen);
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: http::Request<_>| {
                    let tp = req
                        .headers()
                        .get("traceparent")
                        .map(|v| v.to_str().unwrap().to_string())
                        .unwrap_or_default();
                    seen.lock().unwrap().push(tp);
                    async {
                        Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(
                            Bytes::from("ok"),
                        )))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(s), svc)
                    .await;
            });
        }
    });
    addr
}

async fn get(gw: SocketAddr, traceparent: Option<&str>) {
    let mut s = tokio::net::TcpStream::connect(gw).await.unwrap();
    let tp = traceparent.map_or(String::new(), |t| format!("traceparent: {t}\r\n"));
    s.write_all(format!("GET / HTTP/1.1\r\nhost: a\r\n{tp}connection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
}

/// Serves a gateway traced with `ratio` (parent-based) to `receiver` and
/// sends it `plain` requests without a `traceparent`, then one per
/// `parents`. Returns the replica's `traceparent`s and the span starts.
fn run(receiver: &Receiver, ratio: &str, plain: usize, parents: &[&str]) -> (Vec<String>, u64) {
    let endpoint = format!("http://127.0.0.1:{}", receiver.http);
    let vars = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
        ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
        ("OTEL_TRACES_SAMPLER_ARG", ratio),
    ];
    let settings = Settings::resolve(
        |k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        },
        None,
    )
    .unwrap();
    let telemetry = install(&settings, None).unwrap().unwrap();
    let before = spans_started();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let backend = replica(Arc::clone(&seen)).await;
        let stack = tug_spec::parse_str(
            "name: t\ngateway: { listen: ['127.0.0.1:0'] }\nservices:\n  web: { image: x, port: 80, route: { path: / } }\n",
            "tug.yaml".as_ref(),
        )
        .unwrap();
        let routes = vec![("web".to_string(), stack.services["web"].routes[0].clone())];
        let gw = Gateway::new(stack.gateway.clone().unwrap(), routes, Tuning::default(), None);
        let (_stop, rx) = tokio::sync::watch::channel(false);
        let addr = gw.start(rx).await.unwrap()[0];
        gw.set_ready(
            "web",
            vec![Endpoint {
                name: "t-web-1".into(),
                addr: backend,
            }],
        );
        for _ in 0..plain {
            get(addr, None).await;
        }
        for p in parents {
            get(addr, Some(p)).await;
        }
    });
    let started = spans_started() - before;
    telemetry.flush();
    drop(telemetry);
    drop(rt);
    let seen = seen.lock().unwrap().clone();
    (seen, started)
}

/// `00-<trace id>-<span id>-<flags>`.
fn parts(tp: &str) -> (String, String, String) {
    let p: Vec<&str> = tp.split('-').collect();
    assert_eq!(
        (p.len(), p[0], p[1].len(), p[2].len()),
        (4, "00", 32, 16),
        "{tp}"
    );
    (p[1].to_string(), p[2].to_string(), p[3].to_string())
}

#[test]
fn unsampled_requests_start_no_span_and_still_pass_a_traceparent() {
    let receiver = Receiver::start(
        |g, got| {
            tonic::transport::Server::builder()
                .add_routes(got.grpc())
                .serve_with_incoming(incoming(g))
        },
        |h, got| async move { axum::serve(h, got.http()).await },
    );
    let unsampled_parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00";
    let sampled_parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    // Ratio 0: no span is started, none is exported; every replica still
    // gets a traceparent, flags 00, keeping an unsampled caller's trace.
    let (seen, started) = run(&receiver, "0", 20, &[unsampled_parent]);
    assert_eq!(started, 0, "spans were started for unsampled requests");
    assert_eq!(seen.len(), 21);
    let mut traces = std::collections::HashSet::new();
    for tp in &seen {
        let (trace, _, flags) = parts(tp);
        assert_eq!(flags, "00", "{tp}");
        traces.insert(trace);
    }
    assert_eq!(
        traces.len(),
        21,
        "each request is a trace of its own: {seen:?}"
    );
    assert_eq!(parts(&seen[20]).0, "0af7651916cd43dd8448eb211c80319c");
    assert_ne!(
        parts(&seen[20]).1,
        "b7ad6b7169203331",
        "a span id of its own"
    );
    std::thread::sleep(Duration::from_millis(700));
    assert!(
        receiver.got.spans().is_empty(),
        "{:?}",
        receiver.got.spans()
    );

    // Ratio 1: a server and an upstream span per sampled request, exported;
    // the replica's traceparent names the upstream span. A caller that did
    // not sample is followed (parent-based), and so is one that did.
    let (seen, started) = run(&receiver, "1", 5, &[unsampled_parent, sampled_parent]);
    assert_eq!(
        started, 12,
        "a server and an upstream span per sampled request"
    );
    assert_eq!(seen.len(), 7);
    assert_eq!(parts(&seen[5]).2, "00");
    assert_eq!(parts(&seen[5]).0, "0af7651916cd43dd8448eb211c80319c");
    let deadline = Instant::now() + Duration::from_secs(20);
    while receiver.got.spans().len() < 12 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let spans = receiver.got.spans();
    assert_eq!(spans.len(), 12, "{spans:?}");
    for tp in seen.iter().take(5).chain([&seen[6]]) {
        let (trace, span, flags) = parts(tp);
        assert_eq!(flags, "01", "{tp}");
        assert!(
            spans
                .iter()
                .any(|g| hex(&g.span.trace_id) == trace && hex(&g.span.span_id) == span),
            "no exported span is the parent of {tp}"
        );
    }
    assert_eq!(parts(&seen[6]).0, "4bf92f3577b34da6a3ce929d0e0e4736");
    assert!(spans
        .iter()
        .any(|g| hex(&g.span.parent_span_id) == "00f067aa0ba902b7"));

    // Ratio 0.5: the trace a request is recorded in is the one its sampling
    // was decided on. The ratio rule keeps a trace id whose lower 64 bits
    // are below 2^63, i.e. whose 17th hex digit is 0-7.
    let (seen, _) = run(&receiver, "0.5", 40, &[]);
    assert_eq!(seen.len(), 40);
    let mut sampled = 0;
    for tp in &seen {
        let (trace, _, flags) = parts(tp);
        let kept = u8::from_str_radix(&trace[16..17], 16).unwrap() < 8;
        assert_eq!(flags == "01", kept, "{tp}: sampled on another trace id");
        sampled += usize::from(kept);
    }
    assert!(sampled > 0 && sampled < 40, "{seen:?}");
}
