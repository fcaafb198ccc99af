//! Request spans: a server span per request, joined to the client's trace
//! when it sends a W3C `traceparent`, and a client span per upstream
//! attempt whose context goes to the replica in `traceparent`/`tracestate`.
//! Built only when tracing is on; the exporter's queue never blocks.

use crate::table::Upstream;
use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode, Version};
use opentelemetry::global::BoxedTracer;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{Span, SpanKind, Status, TraceContextExt, Tracer};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::propagation::TraceContextPropagator;

struct Extract<'a>(&'a HeaderMap);

impl Extractor for Extract<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(HeaderName::as_str).collect()
    }
}

struct Inject<'a>(&'a mut HeaderMap);

impl Injector for Inject<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(k), Ok(v)) = (
            HeaderName::from_bytes(key.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            self.0.insert(k, v);
        }
    }
}

fn version(v: Version) -> &'static str {
    match v {
        Version::HTTP_10 => "1.0",
        Version::HTTP_2 => "2",
        Version::HTTP_3 => "3",
        _ => "1.1",
    }
}

/// The server span of a request, as the context its attempts start in.
pub(crate) fn server(
    tracer: &BoxedTracer,
    method: &Method,
    path: &str,
    version_: Version,
    headers: &HeaderMap,
    client: std::net::SocketAddr,
) -> Context {
    let parent = TraceContextPropagator::new().extract(&Extract(headers));
    let span = tracer
        .span_builder(method.to_string())
        .with_kind(SpanKind::Server)
        .with_attributes([
            KeyValue::new("http.request.method", method.to_string()),
            KeyValue::new("url.path", path.to_string()),
            KeyValue::new("network.protocol.version", version(version_)),
            KeyValue::new("client.address", client.ip().to_string()),
        ])
        .start_with_context(tracer, &parent);
    parent.with_span(span)
}

/// Names the span after the route once one matched.
pub(crate) fn routed(cx: &Context, route: &str, service: &str) {
    let span = cx.span();
    span.update_name(route.to_string());
    span.set_attribute(KeyValue::new("http.route", route.to_string()));
    span.set_attribute(KeyValue::new("tug.service", service.to_string()));
}

/// Ends the server span with the response's status.
pub(crate) fn finish(cx: Context, status: StatusCode) {
    let span = cx.span();
    span.set_attribute(KeyValue::new(
        "http.response.status_code",
        i64::from(status.as_u16()),
    ));
    if status.is_server_error() {
        span.set_status(Status::error(status.to_string()));
    }
    span.end();
}

/// A client span for one attempt, its context injected into `headers`.
pub(crate) fn attempt(
    tracer: &BoxedTracer,
    server: &Context,
    method: &Method,
    up: &Upstream,
    attempt: usize,
    headers: &mut HeaderMap,
) -> opentelemetry::global::BoxedSpan {
    let mut attrs = vec![
        KeyValue::new("http.request.method", method.to_string()),
        KeyValue::new("server.address", up.addr.ip().to_string()),
        KeyValue::new("server.port", i64::from(up.addr.port())),
        KeyValue::new("tug.replica", up.name.clone()),
    ];
    if attempt > 0 {
        attrs.push(KeyValue::new("http.request.resend_count", attempt as i64));
    }
    let span = tracer
        .span_builder(method.to_string())
        .with_kind(SpanKind::Client)
        .with_attributes(attrs)
        .start_with_context(tracer, server);
    let cx = Context::new().with_remote_span_context(span.span_context().clone());
    TraceContextPropagator::new().inject_context(&cx, &mut Inject(headers));
    span
}

/// Records how an attempt ended: a status, or why no response came.
pub(crate) fn attempt_done(
    mut span: opentelemetry::global::BoxedSpan,
    outcome: Result<StatusCode, String>,
) {
    match outcome {
        Ok(status) => {
            span.set_attribute(KeyValue::new(
                "http.response.status_code",
                i64::from(status.as_u16()),
            ));
            if status.is_server_error() {
                span.set_status(Status::error(status.to_string()));
            }
        }
        Err(why) => span.set_status(Status::error(why)),
    }
    span.end();
}
