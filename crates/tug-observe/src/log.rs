//! The tracing subscriber: stderr for commands (`-v`, `-vv`, `RUST_LOG`),
//! a size-rotated file in the state directory for the agent.

use crate::trace::Telemetry;
use std::io::Write;
use std::path::Path;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

/// How the agent writes its log file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum LogFormat {
    /// One line per event: time, level, target, message, fields.
    #[default]
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

/// Rotate the agent's log at this size, keeping this many old files.
pub const LOG_LIMIT: usize = 10 * 1024 * 1024;
pub const LOG_KEEP: usize = 5;

/// `RUST_LOG` when set; else warnings (info with -v, debug with -vv, trace
/// with -vvv) from tug's own crates.
fn filter(verbose: u8, default: &str) -> EnvFilter {
    if let Ok(f) = EnvFilter::try_from_env("RUST_LOG") {
        return f;
    }
    let level = match verbose {
        0 => default,
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let spec: Vec<String> = std::iter::once("warn".to_string())
        .chain(CRATES.iter().map(|c| format!("{c}={level}")))
        .collect();
    EnvFilter::new(spec.join(","))
}

const CRATES: [&str; 12] = [
    "tug",
    "tug_api",
    "tug_engine",
    "tug_runtime",
    "tug_image",
    "tug_spec",
    "tug_scan",
    "tug_gateway",
    "tug_autoscale",
    "tug_kube",
    "tug_pipeline",
    "tug_observe",
];

/// The OpenTelemetry layer, when spans are exported: tug's own info spans
/// (its operations), whatever the log level.
fn otel_layer(
    telemetry: Option<&Telemetry>,
) -> Option<impl Layer<Registry> + Send + Sync + 'static> {
    let tracer = telemetry?.sdk_tracer()?;
    let targets = Targets::new().with_targets(CRATES.iter().map(|c| (*c, LevelFilter::INFO)));
    Some(
        tracing_opentelemetry::layer()
            .with_tracer(tracer)
            .with_filter(targets),
    )
}

/// Logs to stderr, for every command but the agent; spans to `telemetry`.
pub fn init_cli(verbose: u8, telemetry: Option<&Telemetry>) {
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(verbose >= 2)
        .with_filter(filter(verbose, "warn"));
    let _ = tracing_subscriber::registry()
        .with(otel_layer(telemetry))
        .with(fmt)
        .try_init();
}

/// Logs to `path`, rotated at [`LOG_LIMIT`] (`agent.log.1` … `.5`), owner-only;
/// spans to `telemetry`.
pub fn init_agent(
    path: &Path,
    format: LogFormat,
    verbose: u8,
    telemetry: Option<&Telemetry>,
) -> std::io::Result<()> {
    use file_rotate::{compression::Compression, suffix::AppendCount, ContentLimit, FileRotate};
    use std::os::unix::fs::OpenOptionsExt;
    let mut open = std::fs::OpenOptions::new();
    open.read(true).create(true).append(true).mode(0o600);
    // Probe once, so an unwritable state directory is an error, not silence.
    open.open(path)?.flush()?;
    let file = FileRotate::new(
        path,
        AppendCount::new(LOG_KEEP),
        ContentLimit::BytesSurpassed(LOG_LIMIT),
        Compression::None,
        Some(open),
    );
    let writer = std::sync::Mutex::new(file);
    let fmt = tracing_subscriber::fmt::layer()
        .with_ansi(false)
        .with_writer(writer);
    let fmt = match format {
        LogFormat::Text => fmt.with_filter(filter(verbose, "info")).boxed(),
        LogFormat::Json => fmt
            .json()
            .flatten_event(true)
            .with_filter(filter(verbose, "info"))
            .boxed(),
    };
    let _ = tracing_subscriber::registry()
        .with(otel_layer(telemetry))
        .with(fmt)
        .try_init();
    Ok(())
}
