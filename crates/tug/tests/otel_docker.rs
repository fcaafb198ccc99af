//! Traces and logs over OTLP, received by a real OTLP receiver built here
//! from the official protocol definitions (opentelemetry-proto): gRPC with
//! its tonic services, HTTP/protobuf with an axum handler.

mod common;

use common::*;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{any_value, KeyValue};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use std::sync::{Arc, Mutex};

/// A span as received, with its resource's attributes.
#[derive(Clone, Debug)]
struct Got {
    span: Span,
    resource: Vec<KeyValue>,
}

#[derive(Clone, Default)]
struct Received {
    spans: Arc<Mutex<Vec<Got>>>,
    logs: Arc<Mutex<Vec<LogRecord>>>,
}

impl Received {
    fn traces(&self, req: ExportTraceServiceRequest) {
        let mut s = self.spans.lock().unwrap();
        for rs in req.resource_spans {
            let resource = rs.resource.map(|r| r.attributes).unwrap_or_default();
            for ss in rs.scope_spans {
                for span in ss.spans {
                    s.push(Got {
                        span,
                        resource: resource.clone(),
                    });
                }
            }
        }
    }
    fn logs(&self, req: ExportLogsServiceRequest) {
        let mut l = self.logs.lock().unwrap();
        for rl in req.resource_logs {
            for sl in rl.scope_logs {
                l.extend(sl.log_records);
            }
        }
    }
    fn spans(&self) -> Vec<Got> {
        self.spans.lock().unwrap().clone()
    }
}

#[tonic::async_trait]
impl TraceService for Received {
    async fn export(
        &self,
        req: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.traces(req.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl LogsService for Received {
    async fn export(
        &self,
        req: tonic::Request<ExportLogsServiceRequest>,
    ) -> Result<tonic::Response<ExportLogsServiceResponse>, tonic::Status> {
        self.logs(req.into_inner());
        Ok(tonic::Response::new(ExportLogsServiceResponse::default()))
    }
}

/// The receiver: gRPC and HTTP/protobuf on loopback ports of its own.
struct Receiver {
    got: Received,
    grpc: u16,
    http: u16,
    _rt: tokio::runtime::Runtime,
}

impl Receiver {
    fn start() -> Receiver {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let got = Received::default();
        let (grpc, http) = rt.block_on(async {
            let g = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let h = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let ports = (
                g.local_addr().unwrap().port(),
                h.local_addr().unwrap().port(),
            );
            let incoming = futures_util::stream::unfold(g, |l| async move {
                let r = l.accept().await.map(|(s, _)| s);
                Some((r, l))
            });
            let svc = tonic::transport::Server::builder()
                .add_service(TraceServiceServer::new(got.clone()))
                .add_service(LogsServiceServer::new(got.clone()));
            tokio::spawn(svc.serve_with_incoming(incoming));
            let (t, l) = (got.clone(), got.clone());
            let app = axum::Router::new()
                .route(
                    "/v1/traces",
                    axum::routing::post(move |body: axum::body::Bytes| {
                        let t = t.clone();
                        async move {
                            match ExportTraceServiceRequest::decode(body) {
                                Ok(req) => {
                                    t.traces(req);
                                    (
                                        axum::http::StatusCode::OK,
                                        ExportTraceServiceResponse::default().encode_to_vec(),
                                    )
                                }
                                Err(_) => (axum::http::StatusCode::BAD_REQUEST, Vec::new()),
                            }
                        }
                    }),
                )
                .route(
                    "/v1/logs",
                    axum::routing::post(move |body: axum::body::Bytes| {
                        let l = l.clone();
                        async move {
                            match ExportLogsServiceRequest::decode(body) {
                                Ok(req) => {
                                    l.logs(req);
                                    (
                                        axum::http::StatusCode::OK,
                                        ExportLogsServiceResponse::default().encode_to_vec(),
                                    )
                                }
                                Err(_) => (axum::http::StatusCode::BAD_REQUEST, Vec::new()),
                            }
                        }
                    }),
                );
            tokio::spawn(async move { axum::serve(h, app).await });
            ports
        });
        Receiver {
            got,
            grpc,
            http,
            _rt: rt,
        }
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn attr(attrs: &[KeyValue], key: &str) -> Option<String> {
    attrs
        .iter()
        .find(|a| a.key == key)
        .and_then(|a| a.value.as_ref()?.value.as_ref())
        .map(|v| match v {
            any_value::Value::StringValue(s) => s.clone(),
            any_value::Value::IntValue(i) => i.to_string(),
            other => format!("{other:?}"),
        })
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
    let rx = Receiver::start();
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
    let rx = Receiver::start();
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
