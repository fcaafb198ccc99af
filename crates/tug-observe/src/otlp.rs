//! The one OTLP exporter builder: spans and log records reach their
//! [`Destination`] the same way (protocol, endpoint, headers, timeout); only
//! the signal's exporter type differs.

use crate::trace::{Destination, TraceError};
use opentelemetry_otlp::{
    ExporterBuildError, LogExporter, SpanExporter, WithExportConfig, WithHttpConfig,
    WithTonicConfig,
};
use std::time::Duration;
use tug_spec::OtlpProtocol;

/// How long one export may take before it is given up.
const TIMEOUT: Duration = Duration::from_secs(5);

/// A kind of telemetry OTLP carries, with its exporter.
pub(crate) trait Signal {
    type Exporter;
    fn build(d: &Destination) -> Result<Self::Exporter, ExporterBuildError>;
}

pub(crate) struct Spans;
pub(crate) struct Logs;

impl Signal for Spans {
    type Exporter = SpanExporter;
    fn build(d: &Destination) -> Result<SpanExporter, ExporterBuildError> {
        match d.protocol {
            OtlpProtocol::Grpc => grpc(SpanExporter::builder().with_tonic(), d).build(),
            OtlpProtocol::HttpProtobuf => http(SpanExporter::builder().with_http(), d).build(),
        }
    }
}

impl Signal for Logs {
    type Exporter = LogExporter;
    fn build(d: &Destination) -> Result<LogExporter, ExporterBuildError> {
        match d.protocol {
            OtlpProtocol::Grpc => grpc(LogExporter::builder().with_tonic(), d).build(),
            OtlpProtocol::HttpProtobuf => http(LogExporter::builder().with_http(), d).build(),
        }
    }
}

/// The exporter of signal `S` for `d`.
pub(crate) fn exporter<S: Signal>(d: &Destination) -> Result<S::Exporter, TraceError> {
    S::build(d).map_err(|source| TraceError::Exporter {
        endpoint: d.endpoint.clone(),
        source,
    })
}

fn grpc<B: WithExportConfig + WithTonicConfig>(b: B, d: &Destination) -> B {
    // gRPC metadata keys are lower case; a header that is not valid
    // metadata is left out rather than failing the export.
    let mut md = tonic::metadata::MetadataMap::new();
    for (k, v) in &d.headers {
        if let (Ok(k), Ok(v)) = (
            tonic::metadata::MetadataKey::from_bytes(k.to_ascii_lowercase().as_bytes()),
            v.parse(),
        ) {
            md.insert(k, v);
        }
    }
    b.with_endpoint(d.endpoint.clone())
        .with_timeout(TIMEOUT)
        .with_metadata(md)
}

fn http<B: WithExportConfig + WithHttpConfig>(b: B, d: &Destination) -> B {
    b.with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .with_endpoint(d.endpoint.clone())
        .with_timeout(TIMEOUT)
        .with_headers(d.headers.clone().into_iter().collect())
}
