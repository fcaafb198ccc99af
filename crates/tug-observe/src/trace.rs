//! OpenTelemetry: where tug's spans (and the agent's forwarded replica logs)
//! go, over OTLP gRPC or HTTP/protobuf.
//!
//! Settings come from the standard variables first, then from the stack's
//! `observe: { otlp: … }`, as the OpenTelemetry specification orders them:
//!
//! | what      | variables (first set wins)                                          | tug.yaml            |
//! |-----------|---------------------------------------------------------------------|---------------------|
//! | endpoint  | `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (as is), `OTEL_EXPORTER_OTLP_ENDPOINT` | `otlp.endpoint` |
//! | protocol  | `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`, `OTEL_EXPORTER_OTLP_PROTOCOL`  | `otlp.protocol`     |
//! | headers   | `OTEL_EXPORTER_OTLP_TRACES_HEADERS`, `OTEL_EXPORTER_OTLP_HEADERS`    | `otlp.headers`      |
//! | sampling  | `OTEL_TRACES_SAMPLER`, `OTEL_TRACES_SAMPLER_ARG`                    | `otlp.sampling`     |
//! | logs      | `OTEL_EXPORTER_OTLP_LOGS_ENDPOINT` (as is)                          | `otlp.logs: true`   |
//! | CA (PEM)  | `OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE`, `OTEL_EXPORTER_OTLP_CERTIFICATE` | `otlp.certificate` |
//! | mutual TLS | `…_CLIENT_CERTIFICATE` and `…_CLIENT_KEY`, likewise               | `otlp.client_certificate`, `otlp.client_key` |
//!
//! (`_LOGS_` in place of `_TRACES_` for the forwarded logs.) An `https://`
//! endpoint trusts the system's roots and the CA file; see [`Tls`].
//!
//! `OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES` name the resource
//! (`service.name` is `tug` otherwise). Nothing is exported without an
//! endpoint; `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none` turn
//! traces off.
//!
//! Exporting never blocks the caller: finished spans wait in a bounded queue
//! ([`QUEUE`]) that a background thread sends in batches; a span that finds
//! the queue full is dropped and counted ([`dropped_spans`]). Dropping the
//! [`Telemetry`] guard flushes what is queued.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry::trace::{SpanId, TraceFlags, TraceId};
use opentelemetry::KeyValue;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, Sampler, SamplingDecision, SdkTracerProvider, SpanData,
    SpanExporter, SpanProcessor,
};
use opentelemetry_sdk::Resource;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;
use tug_spec::{Otlp, OtlpProtocol};

/// Finished spans waiting to be exported, at most.
pub const QUEUE: usize = 4096;
const BATCH: usize = 512;

static ENABLED: AtomicBool = AtomicBool::new(false);
static DROPPED: AtomicU64 = AtomicU64::new(0);
static QUEUED: AtomicUsize = AtomicUsize::new(0);

/// Spans dropped because the export queue was full, since the process began.
pub fn dropped_spans() -> u64 {
    DROPPED.load(Ordering::Relaxed)
}

/// Whether spans are exported: hot paths check this once and create no
/// span at all when it is false.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// A tracer of the installed provider, `None` when tracing is off.
pub fn tracer(name: &'static str) -> Option<opentelemetry::global::BoxedTracer> {
    enabled().then(|| opentelemetry::global::tracer(name))
}

/// Spans the installed provider was asked to start, sampled or not: every
/// start passes its sampler ([`Gate`]) once. A request path that skips
/// unsampled requests leaves it unchanged for them.
pub fn spans_started() -> u64 {
    STARTED.load(Ordering::Relaxed)
}

static STARTED: AtomicU64 = AtomicU64::new(0);

/// The sampler of the installed provider, for [`HttpTracer`]s made after.
static SAMPLER: std::sync::Mutex<Option<Sampler>> = std::sync::Mutex::new(None);

/// Traces requests that enter over HTTP: the sampling decision comes first,
/// from the caller's `traceparent` and the configured sampler, so a request
/// that is not sampled builds no span, attribute or name at all and only
/// passes a `traceparent` on (sampled flag off).
#[derive(Debug)]
pub struct HttpTracer {
    tracer: opentelemetry::global::BoxedTracer,
    sampler: Sampler,
}

/// What [`HttpTracer::entry`] decided for one request.
pub enum Entry {
    /// Recorded: start the server span in this context (it holds the
    /// caller's span when a `traceparent` named one, and the decision, so
    /// the spans of this request are not sampled again). Without a caller's
    /// span, the next root span started on this thread takes the trace id
    /// the decision was taken on.
    Sampled(opentelemetry::Context),
    /// Not recorded: the `traceparent` to send on, flags `00`.
    Unsampled(Traceparent),
}

/// A W3C `traceparent` value: `00-<trace id>-<span id>-<flags>`.
#[derive(Clone, Copy)]
pub struct Traceparent([u8; 55]);

impl Traceparent {
    fn new(trace: TraceId, span: SpanId, flags: TraceFlags) -> Traceparent {
        fn hex(out: &mut [u8], bytes: &[u8]) {
            const DIGITS: &[u8; 16] = b"0123456789abcdef";
            for (i, b) in bytes.iter().enumerate() {
                out[2 * i] = DIGITS[(b >> 4) as usize];
                out[2 * i + 1] = DIGITS[(b & 15) as usize];
            }
        }
        let mut v = *b"00-00000000000000000000000000000000-0000000000000000-00";
        hex(&mut v[3..35], &trace.to_bytes());
        hex(&mut v[36..52], &span.to_bytes());
        hex(&mut v[53..55], &[flags.to_u8()]);
        Traceparent(v)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// Marks a context whose request was sampled by [`HttpTracer::entry`].
struct Presampled;

/// `traceparent` and `tracestate` as the propagator reads them.
struct EntryHeaders<'a>(Option<&'a str>, Option<&'a str>);

impl opentelemetry::propagation::Extractor for EntryHeaders<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        match key {
            "traceparent" => self.0,
            "tracestate" => self.1,
            _ => None,
        }
    }
    fn keys(&self) -> Vec<&str> {
        vec!["traceparent", "tracestate"]
    }
}

/// An [`HttpTracer`] of the installed provider, `None` when tracing is off.
pub fn http_tracer(name: &'static str) -> Option<HttpTracer> {
    let sampler = SAMPLER.lock().unwrap_or_else(|e| e.into_inner()).clone()?;
    Some(HttpTracer {
        tracer: tracer(name)?,
        sampler,
    })
}

impl HttpTracer {
    /// The tracer to start a sampled request's spans with.
    pub fn tracer(&self) -> &opentelemetry::global::BoxedTracer {
        &self.tracer
    }

    /// Decides whether a request carrying these `traceparent` and
    /// `tracestate` header values is recorded, before any span exists.
    pub fn entry(&self, traceparent: Option<&str>, tracestate: Option<&str>) -> Entry {
        use opentelemetry::propagation::TextMapPropagator;
        use opentelemetry::trace::TraceContextExt;
        use opentelemetry_sdk::trace::{IdGenerator, RandomIdGenerator, ShouldSample};
        let ids = RandomIdGenerator::default();
        let parent = match traceparent {
            Some(_) => opentelemetry_sdk::propagation::TraceContextPropagator::new()
                .extract(&EntryHeaders(traceparent, tracestate)),
            None => opentelemetry::Context::new(),
        };
        let remote = parent.span().span_context().clone();
        let trace_id = if remote.is_valid() {
            remote.trace_id()
        } else {
            ids.new_trace_id()
        };
        let decision = self
            .sampler
            .should_sample(
                Some(&parent),
                trace_id,
                "",
                &opentelemetry::trace::SpanKind::Server,
                &[],
                &[],
            )
            .decision;
        match decision {
            SamplingDecision::Drop => Entry::Unsampled(Traceparent::new(
                trace_id,
                ids.new_span_id(),
                TraceFlags::default(),
            )),
            _ => {
                if !remote.is_valid() {
                    DECIDED.with(|d| d.set(Some(trace_id)));
                }
                Entry::Sampled(parent.with_value(Presampled))
            }
        }
    }
}

thread_local! {
    /// The trace id [`HttpTracer::entry`] sampled a root request on, for its
    /// server span (started next, on the same thread) to take.
    static DECIDED: std::cell::Cell<Option<TraceId>> = const { std::cell::Cell::new(None) };
}

/// The provider's ids: random, except a decided root request's trace id.
#[derive(Debug, Default)]
struct Ids(opentelemetry_sdk::trace::RandomIdGenerator);

impl opentelemetry_sdk::trace::IdGenerator for Ids {
    fn new_trace_id(&self) -> TraceId {
        DECIDED
            .with(|d| d.take())
            .unwrap_or_else(|| self.0.new_trace_id())
    }
    fn new_span_id(&self) -> SpanId {
        self.0.new_span_id()
    }
}

/// The installed provider's sampler: counts every span start, and keeps
/// the decision [`HttpTracer::entry`] already took for a request.
#[derive(Clone, Debug)]
struct Gate(Sampler);

impl opentelemetry_sdk::trace::ShouldSample for Gate {
    fn should_sample(
        &self,
        parent_context: Option<&opentelemetry::Context>,
        trace_id: TraceId,
        name: &str,
        span_kind: &opentelemetry::trace::SpanKind,
        attributes: &[KeyValue],
        links: &[opentelemetry::trace::Link],
    ) -> opentelemetry_sdk::trace::SamplingResult {
        use opentelemetry::trace::TraceContextExt;
        STARTED.fetch_add(1, Ordering::Relaxed);
        match parent_context {
            Some(cx) if cx.get::<Presampled>().is_some() => {
                opentelemetry_sdk::trace::SamplingResult {
                    decision: SamplingDecision::RecordAndSample,
                    attributes: Vec::new(),
                    trace_state: cx.span().span_context().trace_state().clone(),
                }
            }
            _ => self
                .0
                .should_sample(parent_context, trace_id, name, span_kind, attributes, links),
        }
    }
}

/// The current span's context as W3C `traceparent` (and `tracestate`)
/// headers, for a request to another tug process; none when tracing is off
/// or no span is current.
pub fn context_headers() -> Vec<(String, String)> {
    use opentelemetry::propagation::TextMapPropagator;
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    if !enabled() {
        return Vec::new();
    }
    let cx = tracing::Span::current().context();
    let mut h = Headers::default();
    opentelemetry_sdk::propagation::TraceContextPropagator::new().inject_context(&cx, &mut h);
    h.0
}

/// Makes `span` the child of the remote span that `headers` name in a W3C
/// `traceparent`, when they name one and tracing is on.
pub fn set_remote_parent<'a>(
    span: &tracing::Span,
    headers: impl IntoIterator<Item = (&'a str, &'a str)>,
) {
    use opentelemetry::propagation::TextMapPropagator;
    use opentelemetry::trace::TraceContextExt;
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    if !enabled() {
        return;
    }
    let h = Headers(
        headers
            .into_iter()
            .filter(|(k, _)| {
                k.eq_ignore_ascii_case("traceparent") || k.eq_ignore_ascii_case("tracestate")
            })
            .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
            .collect(),
    );
    let cx = opentelemetry_sdk::propagation::TraceContextPropagator::new().extract(&h);
    if cx.span().span_context().is_valid() {
        // Fails only for a span already started elsewhere: then it keeps
        // its parent.
        let _ = span.set_parent(cx);
    }
}

/// Trace context headers, lower-case names.
#[derive(Default)]
struct Headers(Vec<(String, String)>);

impl opentelemetry::propagation::Injector for Headers {
    fn set(&mut self, key: &str, value: String) {
        self.0.push((key.to_string(), value));
    }
}

impl opentelemetry::propagation::Extractor for Headers {
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.iter().map(|(k, _)| k.as_str()).collect()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    #[error("{var}: `{value}` is not one of {expected}")]
    BadVar {
        var: &'static str,
        value: String,
        expected: &'static str,
    },
    #[error("cannot start the OTLP exporter for {endpoint}: {source}")]
    Exporter {
        endpoint: String,
        #[source]
        source: opentelemetry_otlp::ExporterBuildError,
    },
    #[error("cannot start the exporter's runtime: {0}")]
    Runtime(#[source] std::io::Error),
    #[error("{named_by}: cannot read {}", path.display())]
    TlsRead {
        named_by: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{named_by}: {} holds no {what} in PEM form", path.display())]
    TlsPem {
        named_by: &'static str,
        path: PathBuf,
        what: &'static str,
    },
    #[error("{named_by}: {} is not usable", path.display())]
    TlsUnusable {
        named_by: &'static str,
        path: PathBuf,
        #[source]
        source: rustls::Error,
    },
    #[error("{given} is set but {missing} is not: mutual TLS needs both the client certificate and its key")]
    TlsHalf {
        given: &'static str,
        missing: &'static str,
    },
    #[error("cannot start the HTTP client for {endpoint}: {reason}")]
    HttpClient { endpoint: String, reason: String },
}

/// Which spans are kept.
#[derive(Clone, Debug, PartialEq)]
pub enum Sampling {
    AlwaysOn,
    AlwaysOff,
    Ratio(f64),
    /// Follow a sampled parent (a `traceparent`), else the inner choice.
    ParentBased(Box<Sampling>),
}

impl Sampling {
    fn sampler(&self) -> Sampler {
        match self {
            Sampling::AlwaysOn => Sampler::AlwaysOn,
            Sampling::AlwaysOff => Sampler::AlwaysOff,
            Sampling::Ratio(r) => Sampler::TraceIdRatioBased(*r),
            Sampling::ParentBased(s) => Sampler::ParentBased(Box::new(s.sampler())),
        }
    }
}

/// One OTLP destination.
#[derive(Clone, Debug, PartialEq)]
pub struct Destination {
    /// The full URL: `…/v1/traces` or `…/v1/logs` for HTTP.
    pub endpoint: String,
    pub protocol: OtlpProtocol,
    pub headers: BTreeMap<String, String>,
    pub tls: Tls,
}

/// The PEM files that secure an `https://` destination; the system's roots
/// are trusted besides `ca`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Tls {
    pub ca: Option<PemFile>,
    /// The client certificate and its key, for mutual TLS.
    pub client: Option<(PemFile, PemFile)>,
}

/// A PEM file, with where it was named (a variable or a tug.yaml key), so a
/// bad one is reported against the setting that named it.
#[derive(Clone, Debug, PartialEq)]
pub struct PemFile {
    pub path: PathBuf,
    pub named_by: &'static str,
}

/// Settings resolved from the variables and the file.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    pub traces: Option<Destination>,
    pub logs: Option<Destination>,
    pub sampling: Sampling,
}

impl Settings {
    /// From the process environment and the stack's `observe.otlp`.
    pub fn from_env(file: Option<&Otlp>) -> Result<Settings, TraceError> {
        Settings::resolve(|k| std::env::var(k).ok().filter(|v| !v.is_empty()), file)
    }

    /// Variables win over the file, signal-specific over generic.
    pub fn resolve(
        env: impl Fn(&str) -> Option<String>,
        file: Option<&Otlp>,
    ) -> Result<Settings, TraceError> {
        let off = env("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true"));
        let traces_off = off || env("OTEL_TRACES_EXPORTER").is_some_and(|v| v == "none");
        let logs_off = off || env("OTEL_LOGS_EXPORTER").is_some_and(|v| v == "none");
        let protocol = |signal: &'static str| -> Result<OtlpProtocol, TraceError> {
            let (var, value) = match env(signal) {
                Some(v) => (signal, v),
                None => match env("OTEL_EXPORTER_OTLP_PROTOCOL") {
                    Some(v) => ("OTEL_EXPORTER_OTLP_PROTOCOL", v),
                    None => {
                        return Ok(file
                            .and_then(|f| f.protocol)
                            .unwrap_or(OtlpProtocol::HttpProtobuf))
                    }
                },
            };
            match value.as_str() {
                "grpc" => Ok(OtlpProtocol::Grpc),
                "http/protobuf" => Ok(OtlpProtocol::HttpProtobuf),
                _ => Err(TraceError::BadVar {
                    var,
                    value,
                    expected: "grpc, http/protobuf",
                }),
            }
        };
        let headers = |signal: &str| {
            let mut h = file.map(|f| f.headers.clone()).unwrap_or_default();
            for var in ["OTEL_EXPORTER_OTLP_HEADERS", signal] {
                if let Some(v) = env(var) {
                    h.extend(parse_headers(&v));
                }
            }
            h
        };
        let tls = |signal: Signal| -> Result<Tls, TraceError> {
            let [ca_vars, cert_vars, key_vars] = signal.tls_vars();
            let pem = |vars: [&'static str; 2], key: &'static str, in_file: Option<&PathBuf>| {
                vars.iter()
                    .find_map(|v| {
                        env(v).map(|p| PemFile {
                            path: PathBuf::from(p),
                            named_by: v,
                        })
                    })
                    .or_else(|| {
                        in_file.map(|path| PemFile {
                            path: path.clone(),
                            named_by: key,
                        })
                    })
            };
            let ca = pem(
                ca_vars,
                "observe.otlp.certificate",
                file.and_then(|f| f.certificate.as_ref()),
            );
            let cert = pem(
                cert_vars,
                "observe.otlp.client_certificate",
                file.and_then(|f| f.client_certificate.as_ref()),
            );
            let key = pem(
                key_vars,
                "observe.otlp.client_key",
                file.and_then(|f| f.client_key.as_ref()),
            );
            let client = match (cert, key) {
                (Some(c), Some(k)) => Some((c, k)),
                (None, None) => None,
                (Some(c), None) => {
                    return Err(TraceError::TlsHalf {
                        given: c.named_by,
                        missing: key_vars[1],
                    })
                }
                (None, Some(k)) => {
                    return Err(TraceError::TlsHalf {
                        given: k.named_by,
                        missing: cert_vars[1],
                    })
                }
            };
            Ok(Tls { ca, client })
        };
        let destination = |signal_endpoint: Option<String>,
                           path: &str,
                           protocol: OtlpProtocol,
                           headers: BTreeMap<String, String>,
                           tls: Tls| {
            let endpoint = match signal_endpoint {
                Some(e) => e,
                None => {
                    let base = env("OTEL_EXPORTER_OTLP_ENDPOINT")
                        .or_else(|| file.and_then(|f| f.endpoint.clone()))?;
                    match protocol {
                        OtlpProtocol::Grpc => base,
                        OtlpProtocol::HttpProtobuf => {
                            format!("{}/{path}", base.trim_end_matches('/'))
                        }
                    }
                }
            };
            Some(Destination {
                endpoint,
                protocol,
                headers,
                tls,
            })
        };
        let traces = if traces_off {
            None
        } else {
            destination(
                env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"),
                "v1/traces",
                protocol("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")?,
                headers("OTEL_EXPORTER_OTLP_TRACES_HEADERS"),
                tls(Signal::Traces)?,
            )
        };
        let logs_endpoint = env("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT");
        let logs = if logs_off || (logs_endpoint.is_none() && !file.is_some_and(|f| f.logs)) {
            None
        } else {
            destination(
                logs_endpoint,
                "v1/logs",
                protocol("OTEL_EXPORTER_OTLP_LOGS_PROTOCOL")?,
                headers("OTEL_EXPORTER_OTLP_LOGS_HEADERS"),
                tls(Signal::Logs)?,
            )
        };
        let ratio = |default: f64| -> Result<f64, TraceError> {
            match env("OTEL_TRACES_SAMPLER_ARG") {
                None => Ok(default),
                Some(v) => match v.parse::<f64>() {
                    Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
                    _ => Err(TraceError::BadVar {
                        var: "OTEL_TRACES_SAMPLER_ARG",
                        value: v,
                        expected: "a number from 0.0 to 1.0",
                    }),
                },
            }
        };
        let parent = |s| Sampling::ParentBased(Box::new(s));
        let sampling = match env("OTEL_TRACES_SAMPLER") {
            None => match file.and_then(|f| f.sampling) {
                Some(r) => parent(Sampling::Ratio(r)),
                None => parent(Sampling::AlwaysOn),
            },
            Some(v) => match v.as_str() {
                "always_on" => Sampling::AlwaysOn,
                "always_off" => Sampling::AlwaysOff,
                "traceidratio" => Sampling::Ratio(ratio(1.0)?),
                "parentbased_always_on" => parent(Sampling::AlwaysOn),
                "parentbased_always_off" => parent(Sampling::AlwaysOff),
                "parentbased_traceidratio" => parent(Sampling::Ratio(ratio(1.0)?)),
                _ => {
                    return Err(TraceError::BadVar {
                        var: "OTEL_TRACES_SAMPLER",
                        value: v,
                        expected: "always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off, parentbased_traceidratio",
                    })
                }
            },
        };
        Ok(Settings {
            traces,
            logs,
            sampling,
        })
    }
}

#[derive(Clone, Copy)]
enum Signal {
    Traces,
    Logs,
}

impl Signal {
    /// The variables naming the CA, the client certificate and the client
    /// key: each the signal's own, then the generic one.
    fn tls_vars(self) -> [[&'static str; 2]; 3] {
        match self {
            Signal::Traces => [
                [
                    "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE",
                    "OTEL_EXPORTER_OTLP_CERTIFICATE",
                ],
                [
                    "OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE",
                    "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
                ],
                [
                    "OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY",
                    "OTEL_EXPORTER_OTLP_CLIENT_KEY",
                ],
            ],
            Signal::Logs => [
                [
                    "OTEL_EXPORTER_OTLP_LOGS_CERTIFICATE",
                    "OTEL_EXPORTER_OTLP_CERTIFICATE",
                ],
                [
                    "OTEL_EXPORTER_OTLP_LOGS_CLIENT_CERTIFICATE",
                    "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
                ],
                [
                    "OTEL_EXPORTER_OTLP_LOGS_CLIENT_KEY",
                    "OTEL_EXPORTER_OTLP_CLIENT_KEY",
                ],
            ],
        }
    }
}

/// `key1=value1,key2=value2`, values percent-decoded (W3C Baggage format).
fn parse_headers(s: &str) -> Vec<(String, String)> {
    s.split(',')
        .filter_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            let k = k.trim();
            (!k.is_empty()).then(|| (k.to_string(), percent_decode(v.trim())))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The installed exporters. Dropping it flushes the queued spans and log
/// records (waiting up to a few seconds for the collector).
pub struct Telemetry {
    traces: Option<SdkTracerProvider>,
    logs: Option<opentelemetry_sdk::logs::SdkLoggerProvider>,
    /// Drives the gRPC client; its own, so it outlives any caller's runtime.
    runtime: Option<tokio::runtime::Runtime>,
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telemetry")
            .field("traces", &self.traces.is_some())
            .field("logs", &self.logs.is_some())
            .finish()
    }
}

impl Telemetry {
    /// The SDK tracer for the `tracing` layer, when traces are exported.
    pub(crate) fn sdk_tracer(&self) -> Option<opentelemetry_sdk::trace::SdkTracer> {
        self.traces.as_ref().map(|p| p.tracer("tug"))
    }

    /// Sends what is queued now.
    pub fn flush(&self) {
        if let Some(p) = &self.traces {
            let _ = p.force_flush();
        }
        if let Some(p) = &self.logs {
            let _ = p.force_flush();
        }
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        ENABLED.store(false, Ordering::Relaxed);
        let traces = self.traces.take();
        let logs = self.logs.take();
        // The blocking HTTP client may not be dropped inside an async
        // runtime: shut down on a thread of its own.
        let _ = std::thread::spawn(move || {
            if let Some(p) = traces {
                let _ = p.shutdown_with_timeout(Duration::from_secs(5));
            }
            if let Some(p) = logs {
                let _ = p.shutdown_with_timeout(Duration::from_secs(5));
            }
        })
        .join();
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// The resource every span and record carries.
fn resource(stack: Option<&str>) -> Resource {
    let mut b = Resource::builder();
    let named_by_env = std::env::var("OTEL_SERVICE_NAME").is_ok_and(|v| !v.is_empty())
        || std::env::var("OTEL_RESOURCE_ATTRIBUTES").is_ok_and(|v| v.contains("service.name="));
    if !named_by_env {
        b = b.with_service_name("tug");
    }
    b = b.with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")));
    if let Some(s) = stack {
        b = b.with_attribute(KeyValue::new("tug.stack", s.to_string()));
    }
    b.build()
}

/// Starts the exporters `settings` ask for; `None` when they ask for none.
/// The tracer provider becomes the global one, and W3C trace context the
/// global propagator.
pub fn install(settings: &Settings, stack: Option<&str>) -> Result<Option<Telemetry>, TraceError> {
    if settings.traces.is_none() && settings.logs.is_none() {
        return Ok(None);
    }
    let grpc = [&settings.traces, &settings.logs]
        .iter()
        .any(|d| d.as_ref().is_some_and(|d| d.protocol == OtlpProtocol::Grpc));
    let runtime = if grpc {
        Some(
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("tug-otlp")
                .enable_all()
                .build()
                .map_err(TraceError::Runtime)?,
        )
    } else {
        None
    };
    // The gRPC channel binds to the runtime current when it is built.
    let _entered = runtime.as_ref().map(|r| r.enter());
    let resource = resource(stack);
    let traces = match &settings.traces {
        None => None,
        Some(d) => {
            let exporter = crate::otlp::exporter::<crate::otlp::Spans>(d)?;
            let batch = BatchSpanProcessor::builder(Counted(exporter))
                .with_batch_config(
                    BatchConfigBuilder::default()
                        // Room beyond QUEUE, so the bound enforced by Bounded
                        // is the only one and every drop is counted.
                        .with_max_queue_size(QUEUE + BATCH)
                        .with_max_export_batch_size(BATCH)
                        .with_scheduled_delay(Duration::from_millis(500))
                        .build(),
                )
                .build();
            let provider = SdkTracerProvider::builder()
                .with_span_processor(Bounded(batch))
                .with_sampler(Gate(settings.sampling.sampler()))
                .with_id_generator(Ids::default())
                .with_resource(resource.clone())
                .build();
            opentelemetry::global::set_tracer_provider(provider.clone());
            opentelemetry::global::set_text_map_propagator(
                opentelemetry_sdk::propagation::TraceContextPropagator::new(),
            );
            *SAMPLER.lock().unwrap_or_else(|e| e.into_inner()) = Some(settings.sampling.sampler());
            ENABLED.store(true, Ordering::Relaxed);
            Some(provider)
        }
    };
    let logs = match &settings.logs {
        None => None,
        Some(d) => {
            let p = crate::otlp_logs::provider(d, resource)?;
            crate::otlp_logs::set_forwarder(&p);
            Some(p)
        }
    };
    drop(_entered);
    Ok(Some(Telemetry {
        traces,
        logs,
        runtime,
    }))
}

/// Keeps at most [`QUEUE`] finished spans waiting, and counts the rest.
#[derive(Debug)]
struct Bounded(BatchSpanProcessor);

impl SpanProcessor for Bounded {
    fn on_start(&self, span: &mut opentelemetry_sdk::trace::Span, cx: &opentelemetry::Context) {
        self.0.on_start(span, cx)
    }
    fn on_end(&self, span: SpanData) {
        if QUEUED.fetch_add(1, Ordering::Relaxed) >= QUEUE {
            QUEUED.fetch_sub(1, Ordering::Relaxed);
            DROPPED.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.0.on_end(span)
    }
    fn force_flush(&self) -> OTelSdkResult {
        self.0.force_flush()
    }
    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.0.shutdown_with_timeout(timeout)
    }
    fn set_resource(&mut self, resource: &Resource) {
        self.0.set_resource(resource)
    }
}

/// Takes exported spans off the count of waiting ones.
#[derive(Debug)]
struct Counted<E>(E);

impl<E: SpanExporter> SpanExporter for Counted<E> {
    fn export(
        &self,
        batch: Vec<SpanData>,
    ) -> impl std::future::Future<Output = OTelSdkResult> + Send {
        QUEUED.fetch_sub(batch.len(), Ordering::Relaxed);
        self.0.export(batch)
    }
    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.0.shutdown_with_timeout(timeout)
    }
    fn force_flush(&self) -> OTelSdkResult {
        self.0.force_flush()
    }
    fn set_resource(&mut self, resource: &Resource) {
        self.0.set_resource(resource)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_traceparent_is_what_the_propagator_writes() {
        use opentelemetry::propagation::TextMapPropagator;
        use opentelemetry::trace::{SpanContext, TraceContextExt, TraceState};
        let cases = [
            (u128::MAX, u64::MAX, TraceFlags::SAMPLED),
            (
                0x0af7651916cd43dd8448eb211c80319c,
                0xb7ad6b7169203331,
                TraceFlags::default(),
            ),
            (1, 1, TraceFlags::SAMPLED),
        ];
        for (trace, span, flags) in cases {
            let (trace, span) = (TraceId::from(trace), SpanId::from(span));
            let cx = opentelemetry::Context::new().with_remote_span_context(SpanContext::new(
                trace,
                span,
                flags,
                true,
                TraceState::default(),
            ));
            let mut h = std::collections::HashMap::new();
            opentelemetry_sdk::propagation::TraceContextPropagator::new()
                .inject_context(&cx, &mut h);
            let ours = Traceparent::new(trace, span, flags);
            assert_eq!(
                std::str::from_utf8(ours.as_bytes()).unwrap(),
                h["traceparent"]
            );
        }
    }

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn nothing_configured_exports_nothing() {
        let s = Settings::resolve(env(&[]), None).unwrap();
        assert_eq!(s.traces, None);
        assert_eq!(s.logs, None);
    }

    #[test]
    fn http_appends_the_signal_path_to_the_generic_endpoint_only() {
        let s = Settings::resolve(
            env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318/")]),
            None,
        )
        .unwrap();
        assert_eq!(s.traces.unwrap().endpoint, "http://c:4318/v1/traces");
        let s = Settings::resolve(
            env(&[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://c:4318/custom")]),
            None,
        )
        .unwrap();
        assert_eq!(s.traces.unwrap().endpoint, "http://c:4318/custom");
        let s = Settings::resolve(
            env(&[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317"),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ]),
            None,
        )
        .unwrap();
        let t = s.traces.unwrap();
        assert_eq!(
            (t.endpoint.as_str(), t.protocol),
            ("http://c:4317", OtlpProtocol::Grpc)
        );
    }

    #[test]
    fn variables_win_over_the_file() {
        let file = Otlp {
            endpoint: Some("http://file:4317".into()),
            protocol: Some(OtlpProtocol::Grpc),
            headers: [("a".to_string(), "file".to_string())].into(),
            sampling: Some(0.5),
            logs: true,
            ..Otlp::default()
        };
        let s = Settings::resolve(env(&[]), Some(&file)).unwrap();
        let t = s.traces.unwrap();
        assert_eq!(t.endpoint, "http://file:4317");
        assert_eq!(t.headers["a"], "file");
        assert_eq!(
            s.sampling,
            Sampling::ParentBased(Box::new(Sampling::Ratio(0.5)))
        );
        assert_eq!(s.logs.unwrap().endpoint, "http://file:4317");
        let s = Settings::resolve(
            env(&[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://env:4318"),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
                ("OTEL_EXPORTER_OTLP_HEADERS", "a=env,b=x%20y"),
                ("OTEL_TRACES_SAMPLER", "traceidratio"),
                ("OTEL_TRACES_SAMPLER_ARG", "0.01"),
            ]),
            Some(&file),
        )
        .unwrap();
        let t = s.traces.unwrap();
        assert_eq!(t.endpoint, "http://env:4318/v1/traces");
        assert_eq!(t.headers["a"], "env");
        assert_eq!(t.headers["b"], "x y");
        assert_eq!(s.sampling, Sampling::Ratio(0.01));
        assert_eq!(s.logs.unwrap().endpoint, "http://env:4318/v1/logs");
    }

    #[test]
    fn logs_only_when_asked() {
        let s = Settings::resolve(
            env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318")]),
            None,
        )
        .unwrap();
        assert_eq!(s.logs, None);
        let s = Settings::resolve(
            env(&[("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", "http://c:4318/v1/logs")]),
            None,
        )
        .unwrap();
        assert_eq!(s.logs.unwrap().endpoint, "http://c:4318/v1/logs");
        assert_eq!(s.traces, None);
    }

    #[test]
    fn bad_variables_name_themselves() {
        let e = Settings::resolve(
            env(&[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
            ]),
            None,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("OTEL_EXPORTER_OTLP_PROTOCOL") && e.contains("grpc"),
            "{e}"
        );
        let e = Settings::resolve(
            env(&[
                ("OTEL_TRACES_SAMPLER_ARG", "2"),
                ("OTEL_TRACES_SAMPLER", "traceidratio"),
            ]),
            None,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("OTEL_TRACES_SAMPLER_ARG"), "{e}");
    }

    #[test]
    fn tls_files_signal_variable_then_generic_then_file() {
        let file = Otlp {
            endpoint: Some("https://c:4317".into()),
            certificate: Some("/etc/file-ca.pem".into()),
            client_certificate: Some("/etc/file.pem".into()),
            client_key: Some("/etc/file.key".into()),
            logs: true,
            ..Otlp::default()
        };
        let s = Settings::resolve(env(&[]), Some(&file)).unwrap();
        let t = s.traces.unwrap().tls;
        let ca = t.ca.unwrap();
        assert_eq!(
            (ca.path.to_str().unwrap(), ca.named_by),
            ("/etc/file-ca.pem", "observe.otlp.certificate")
        );
        assert_eq!(t.client.unwrap().1.named_by, "observe.otlp.client_key");
        let s = Settings::resolve(
            env(&[
                ("OTEL_EXPORTER_OTLP_CERTIFICATE", "/env/ca.pem"),
                ("OTEL_EXPORTER_OTLP_LOGS_CERTIFICATE", "/env/logs-ca.pem"),
            ]),
            Some(&file),
        )
        .unwrap();
        let ca = s.traces.unwrap().tls.ca.unwrap();
        assert_eq!(
            (ca.path.to_str().unwrap(), ca.named_by),
            ("/env/ca.pem", "OTEL_EXPORTER_OTLP_CERTIFICATE")
        );
        let ca = s.logs.unwrap().tls.ca.unwrap();
        assert_eq!(ca.named_by, "OTEL_EXPORTER_OTLP_LOGS_CERTIFICATE");
        let e = Settings::resolve(
            env(&[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "https://c:4318"),
                ("OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY", "/env/k.pem"),
            ]),
            None,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY is set")
                && e.contains("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE"),
            "{e}"
        );
    }

    #[test]
    fn disabled_sdk_exports_nothing() {
        let s = Settings::resolve(
            env(&[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
                ("OTEL_SDK_DISABLED", "true"),
            ]),
            None,
        )
        .unwrap();
        assert_eq!(s.traces, None);
    }
}
