//! What every tug process sets up to be seen: its log subscriber (stderr for
//! commands, a rotated file for the agent), its OpenTelemetry exporters
//! (spans, and the agent's forwarded replica logs), and later its metrics.

pub mod log;
pub mod otlp_logs;
pub mod trace;
