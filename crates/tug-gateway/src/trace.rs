//! Request spans: a server span per request, joined to the client's trace
//! when it sends a W3C `traceparent`, and a client span per upstream
//! attempt whose context goes to the replica in `traceparent`/`tracestate`.
//! Built only for a request tug-observe's [`HttpTracer`] samples; any other
//! gets no span, only a `traceparent` with the sampled flag off. The
//! exporter's queue never blocks.
//!
//! [`HttpTracer`]: tug_observe::trace::HttpTracer

use crate::table::Upstream;
use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode, Version};
use opentelemetry::global::BoxedTracer;
use opentelemetry::propagation::{Injector, TextMapPropagator};
use opentelemetry::trace::{Span, SpanKind, Status, TraceContextExt, Tracer};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::propagation::TraceContextPropagator;

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

/// Whether and how a request is traced.
pub(crate) enum Traced {
    Off,
    /// The server span's context, for the attempts to start in.
    Sampled(Context),
    /// No span; this goes upstream.
    Unsampled(tug_observe::trace::Traceparent),
}

/// Takes the sampling decision for a request, and starts its server span
/// when it is sampled.
pub(crate) fn enter(
    tracer: Option<&tug_observe::trace::HttpTracer>,
    method: &Method,
    path: &str,
    version_: Version,
    traceparent: Option<&str>,
    tracestate: Option<&str>,
    client: std::net::SocketAddr,
) -> Traced {
    let Some(t) = tracer else {
        return Traced::Off;
    };
    match t.entry(traceparent, tracestate) {
        tug_observe::trace::Entry::Unsampled(tp) => Traced::Unsampled(tp),
        tug_observe::trace::Entry::Sampled(parent) => {
            Traced::Sampled(server(t.tracer(), parent, method, path, version_, client))
        }
    }
}

/// The server span of a sampled request, as the context its attempts start in.
fn server(
    tracer: &BoxedTracer,
    parent: Context,
    method: &Method,
    path: &str,
    version_: Version,
    client: std::net::SocketAddr,
) -> Context {
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
