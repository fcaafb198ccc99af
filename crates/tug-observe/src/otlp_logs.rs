//! Replica log lines as OTLP log records: each line one record, with the
//! service, replica and stream as attributes, and the trace it belongs to
//! when the line names one (a `traceparent` or a `trace_id`).

use crate::trace::{Destination, TraceError};
use opentelemetry::logs::{AnyValue, LogRecord as _, Logger as _, LoggerProvider as _};
use opentelemetry::trace::{SpanId, TraceFlags, TraceId};
use opentelemetry_sdk::logs::{BatchLogProcessor, SdkLogger, SdkLoggerProvider};
use opentelemetry_sdk::Resource;
use regex::Regex;
use std::sync::LazyLock;
use std::time::SystemTime;

pub(crate) fn provider(
    d: &Destination,
    resource: Resource,
) -> Result<SdkLoggerProvider, TraceError> {
    let exporter = crate::otlp::exporter::<crate::otlp::Logs>(d)?;
    Ok(SdkLoggerProvider::builder()
        .with_log_processor(BatchLogProcessor::builder(exporter).build())
        .with_resource(resource)
        .build())
}

static FORWARDER: std::sync::OnceLock<LogForwarder> = std::sync::OnceLock::new();

/// The forwarder of the installed [`Telemetry`], when it exports logs.
pub fn forwarder() -> Option<LogForwarder> {
    FORWARDER.get().cloned()
}

pub(crate) fn set_forwarder(provider: &SdkLoggerProvider) {
    let _ = FORWARDER.set(LogForwarder {
        logger: provider.logger("tug.replica"),
    });
}

/// Which stream a line came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// Sends replica log lines; cheap to clone.
#[derive(Clone, Debug)]
pub struct LogForwarder {
    logger: SdkLogger,
}

impl LogForwarder {
    /// Queues one line; never waits for the collector.
    pub fn line(&self, service: &str, replica: &str, stream: Stream, line: &str) {
        let mut r = self.logger.create_log_record();
        let now = SystemTime::now();
        r.set_timestamp(now);
        r.set_observed_timestamp(now);
        r.set_body(AnyValue::from(line.to_string()));
        r.add_attribute("tug.service", service.to_string());
        r.add_attribute("tug.replica", replica.to_string());
        r.add_attribute(
            "log.iostream",
            match stream {
                Stream::Stdout => "stdout",
                Stream::Stderr => "stderr",
            },
        );
        if let Some((t, s)) = trace_of(line) {
            r.set_trace_context(t, s.unwrap_or(SpanId::INVALID), Some(TraceFlags::SAMPLED));
        }
        self.logger.emit(r);
    }
}

/// The trace (and span) a line names: a W3C `traceparent`, or a
/// `trace_id` field (with `span_id` when there is one).
pub fn trace_of(line: &str) -> Option<(TraceId, Option<SpanId>)> {
    static TP: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"(?i)\b[0-9a-f]{2}-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}\b").unwrap()
    });
    static ID: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r#"(?i)\btrace_?id"?\s*[=:]\s*"?([0-9a-f]{32})\b"#).unwrap());
    static SPAN: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r#"(?i)\bspan_?id"?\s*[=:]\s*"?([0-9a-f]{16})\b"#).unwrap());
    let valid = |t: TraceId| (t != TraceId::INVALID).then_some(t);
    if line.contains('-') {
        if let Some(c) = TP.captures(line) {
            let t = TraceId::from_hex(&c[1]).ok().and_then(valid);
            if let Some(t) = t {
                return Some((t, SpanId::from_hex(&c[2]).ok()));
            }
        }
    }
    let c = ID.captures(line)?;
    let t = TraceId::from_hex(&c[1]).ok().and_then(valid)?;
    let s = SPAN
        .captures(line)
        .and_then(|c| SpanId::from_hex(&c[1]).ok());
    Some((t, s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_trace_a_line_names() {
        let (t, s) = trace_of(
            "GET / traceparent=00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01 200",
        )
        .unwrap();
        assert_eq!(t.to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(s.unwrap().to_string(), "00f067aa0ba902b7");
        let (t, s) = trace_of(
            r#"{"msg":"hi","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","span_id":"00f067aa0ba902b7"}"#,
        )
        .unwrap();
        assert_eq!(t.to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert!(s.is_some());
        assert!(trace_of("plain line 2026-12-01").is_none());
        assert!(trace_of("trace_id=00000000000000000000000000000000").is_none());
    }
}
