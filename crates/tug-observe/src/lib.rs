//! What every tug process sets up to be seen: its log subscriber (stderr for
//! commands, a rotated file for the agent), its OpenTelemetry exporters
//! (spans, and the agent's forwarded replica logs), the agent's metrics
//! registry, and the Grafana dashboards and Prometheus configuration that
//! read it.

pub mod grafana;
pub mod log;
pub mod metrics;
mod otlp;
pub mod otlp_logs;
pub mod trace;
