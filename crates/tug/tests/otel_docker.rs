//! Traces and logs over OTLP, received by a real OTLP receiver built here
//! from the official protocol definitions (opentelemetry-proto): gRPC with
//! its tonic services, HTTP/protobuf with an axum handler.

mod common;
#[path = "../../tug-observe/tests/support/otlp_receiver.rs"]
mod otlp_receiver;

use common::*;
use opentelemetry_proto::tonic::trace::v1::Span;
use otlp_receiver::{attr, hex, incoming, Got, Receiver};

/// The receiver: gRPC and HTTP/protobuf, in the clear.
fn receiver() -> Receiver {
    Receiver::start(
        |g, got| {
            tonic::transport::Server::builder()
                .add_routes(got.grpc())
                .serve_with_incoming(incoming(g))
        },
        |h, got| async move { axum::serve(h, got.http()).await },
    )
}

/// GET with headers, over HTTP/1.0; the whole response.
fn get_with(endpoint: &str, path: &str, headers: &str) -> String {
    use std::io::{Read, Write};
    let mut c = std::net::TcpStream::connect(endpoint).unwrap();
    c.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    c.write_all(format!("GET {path} HTTP/1.0\r\n{headers}\r\n").as_bytes())
        .unwrap();
    let mut b = String::new();
    let _ = c.read_to_string(&mut b);
    b
}

const SERVER: i32 = 2;
const CLIENT: i32 = 3;

#[test]
fn a_request_through_the_gateway_is_one_trace_with_the_replica_over_grpc() {
    if !engine() {
        return;
    }
    let rx = receiver();
    let port = free_port();
    let s = TestStack::new("otel", "");
    let yaml = format!(
        "name: {}\ngateway: {{ listen: ['127.0.0.1:{port}'] }}\nobserve:\n  otlp: {{ endpoint: 'http://127.0.0.1:{}', protocol: grpc, logs: true }}\nservices:\n{}",
        s.name,
        rx.grpc,
        service("web", "    route: { path: / }\n")
            .replace("WORKSPACE", &workspace().display().to_string())
    );
    std::fs::write(s.file(), yaml).unwrap();
    let out = s.run(&["up", "-d"]);
    assert!(out.status.success(), "{}", text(&out));
    let gw = format!("127.0.0.1:{port}");
    wait_until("the gateway answers 200", || {
        get(&gw, "/").split(' ').nth(1) == Some("200")
    });

    // The client's own trace: the gateway joins it.
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let parent = "00f067aa0ba902b7";
    let r = get_with(
        &gw,
        "/",
        &format!("traceparent: 00-{trace}-{parent}-01\r\ntracestate: vendor=x\r\n"),
    );
    assert!(
        r.starts_with("HTTP/1.1 200") || r.starts_with("HTTP/1.0 200"),
        "{r}"
    );
    let seen = r
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("traceparent-received:")
                .map(|v| v.trim().to_string())
        })
        .unwrap_or_else(|| panic!("the replica got no traceparent: {r}"));
    let parts: Vec<&str> = seen.split('-').collect();
    assert_eq!(
        parts[1], trace,
        "the replica joined the client's trace: {seen}"
    );
    assert_ne!(
        parts[2], parent,
        "the replica's parent is the gateway's span: {seen}"
    );

    wait_until("the gateway's spans arrive", || {
        rx.got
            .spans()
            .iter()
            .filter(|g| hex(&g.span.trace_id) == trace)
            .count()
            >= 2
    });
    let spans: Vec<Got> = rx
        .got
        .spans()
        .into_iter()
        .filter(|g| hex(&g.span.trace_id) == trace)
        .collect();
    let server = spans
        .iter()
        .find(|g| g.span.kind == SERVER)
        .unwrap_or_else(|| panic!("no server span: {spans:#?}"));
    assert_eq!(hex(&server.span.parent_span_id), parent);
    assert_eq!(
        attr(&server.span.attributes, "http.response.status_code").as_deref(),
        Some("200")
    );
    assert_eq!(
        attr(&server.span.attributes, "tug.service").as_deref(),
        Some("web")
    );
    let upstream = spans
        .iter()
        .find(|g| g.span.kind == CLIENT)
        .unwrap_or_else(|| panic!("no upstream span: {spans:#?}"));
    assert_eq!(upstream.span.parent_span_id, server.span.span_id);
    assert_eq!(
        hex(&upstream.span.span_id),
        parts[2],
        "the replica's parent is the upstream span"
    );
    assert!(attr(&upstream.span.attributes, "tug.replica").is_some_and(|r| r.contains("web")));
    assert_eq!(
        attr(&server.resource, "service.name").as_deref(),
        Some("tug")
    );
    assert_eq!(
        attr(&server.resource, "tug.stack").as_deref(),
        Some(s.name.as_str())
    );

    // The replica logged the request with its traceparent: forwarded, with
    // its trace id and where it came from.
    wait_until("the replica's log line arrives", || {
        rx.got
            .logs
            .lock()
            .unwrap()
            .iter()
            .any(|l| hex(&l.trace_id) == trace)
    });
    let logs = rx.got.logs.lock().unwrap().clone();
    let line = logs.iter().find(|l| hex(&l.trace_id) == trace).unwrap();
    assert_eq!(
        attr(&line.attributes, "tug.service").as_deref(),
        Some("web")
    );
    assert_eq!(
        attr(&line.attributes, "log.iostream").as_deref(),
        Some("stdout")
    );
    assert!(
        attr(&line.attributes, "tug.replica").is_some_and(|r| r.contains("web")),
        "{line:?}"
    );

    // Converging exported its operations too.
    wait_until("the converge's spans arrive", || {
        let spans = rx.got.spans();
        ["plan", "apply", "service", "health_gate"]
            .iter()
            .all(|op| spans.iter().any(|g| g.span.name == *op))
    });
    let out = s.run(&["down"]);
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn up_exports_its_steps_over_http_and_sampling_zero_exports_none() {
    if !engine() {
        return;
    }
    let rx = receiver();
    let s = TestStack::new("otelh", &service("web", ""));
    let endpoint = format!("http://127.0.0.1:{}", rx.http);
    let out = s
        .command(&["up", "-d"])
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint)
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
        .env("OTEL_SERVICE_NAME", "tug-test")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    // The command flushed its span before it exited.
    let spans = rx.got.spans();
    let names: Vec<&str> = spans.iter().map(|g| g.span.name.as_str()).collect();
    let root = spans
        .iter()
        .find(|g| {
            g.span.name == "tug" && attr(&g.span.attributes, "command").as_deref() == Some("up")
        })
        .unwrap_or_else(|| panic!("no root span for `tug up`: {names:?}"));
    assert_eq!(
        attr(&root.resource, "service.name").as_deref(),
        Some("tug-test")
    );
    // The agent it started converges, with the same settings.
    wait_until("the converge's spans arrive", || {
        let spans = rx.got.spans();
        ["plan", "apply", "service", "health_gate"]
            .iter()
            .all(|op| spans.iter().any(|g| g.span.name == *op))
    });
    let spans = rx.got.spans();
    let apply = spans.iter().find(|g| g.span.name == "apply").unwrap();
    assert_eq!(
        attr(&apply.resource, "service.name").as_deref(),
        Some("tug-test")
    );
    let service = spans.iter().find(|g| g.span.name == "service").unwrap();
    assert_eq!(
        service.span.trace_id, apply.span.trace_id,
        "a service's steps are in its converge's trace"
    );
    assert_eq!(
        attr(&service.span.attributes, "service").as_deref(),
        Some("web")
    );

    // Commands' own spans, by command: none when sampling is 0.
    let commands = |rx: &Receiver, name: &str| {
        rx.got
            .spans()
            .iter()
            .filter(|g| {
                g.span.name == "tug" && attr(&g.span.attributes, "command").as_deref() == Some(name)
            })
            .count()
    };
    let out = s
        .command(&["ps"])
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint)
        .env("OTEL_TRACES_SAMPLER", "parentbased_traceidratio")
        .env("OTEL_TRACES_SAMPLER_ARG", "0")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(commands(&rx, "ps"), 0, "sampling 0 exports nothing");
    // The same command sampled does export.
    let out = s
        .command(&["ps"])
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        commands(&rx, "ps"),
        1,
        "a sampled `tug ps` exports its span"
    );
    let out = s.run(&["down"]);
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn the_agents_converge_for_up_is_in_the_trace_of_the_cli_up() {
    if !engine() {
        return;
    }
    let rx = receiver();
    let s = TestStack::new("otelc", &service("web", ""));
    let out = s
        .command(&["up", "-d"])
        .env(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            format!("http://127.0.0.1:{}", rx.http),
        )
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let root = rx
        .got
        .spans()
        .into_iter()
        .find(|g| {
            g.span.name == "tug" && attr(&g.span.attributes, "command").as_deref() == Some("up")
        })
        .expect("the CLI's `up` span");
    let trace = root.span.trace_id.clone();
    let in_trace = || -> Vec<Span> {
        rx.got
            .spans()
            .into_iter()
            .map(|g| g.span)
            .filter(|s| s.trace_id == trace)
            .collect()
    };
    wait_until("the agent's converge arrives in the CLI's trace", || {
        let spans = in_trace();
        // The call's own span ends after the converge's (with its response
        // stream), so it is exported after them.
        ["POST /v1/up", "converge", "apply", "service"]
            .iter()
            .all(|n| spans.iter().any(|s| s.name == *n))
    });
    let spans = in_trace();
    let named = |n: &str| {
        spans
            .iter()
            .find(|s| s.name == n)
            .unwrap_or_else(|| panic!("no {n} span: {spans:#?}"))
    };
    // Each span's ancestors, nearest first, as far as they are in the trace.
    let ancestors = |s: &Span| {
        let mut out = Vec::new();
        let mut parent = s.parent_span_id.clone();
        while let Some(p) = spans.iter().find(|x| x.span_id == parent) {
            out.push(p.name.clone());
            parent = p.parent_span_id.clone();
        }
        out
    };
    let call = named("POST /v1/up");
    assert_eq!(call.kind, SERVER, "the agent's side of the call: {call:?}");
    assert_eq!(
        ancestors(call).last().map(String::as_str),
        Some("tug"),
        "the call's parent is in the CLI's `up`"
    );
    let converge = named("converge");
    assert_eq!(converge.parent_span_id, call.span_id);
    assert!(
        ancestors(named("apply")).contains(&"converge".to_string()),
        "{:?}",
        ancestors(named("apply"))
    );
    assert!(ancestors(named("service")).contains(&"apply".to_string()));
    // The trace has one root: the CLI's.
    assert_eq!(
        spans.iter().filter(|s| s.parent_span_id.is_empty()).count(),
        1,
        "{spans:#?}"
    );
    assert!(root.span.parent_span_id.is_empty());
    let out = s.run(&["down"]);
    assert!(out.status.success(), "{}", text(&out));
}
