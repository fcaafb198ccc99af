//! One renderer per output format. None of them ever prints a secret:
//! secret findings carry only their redacted form.

mod sarif;
mod table;

pub use sarif::sarif;
pub use table::table;

use crate::Report;

/// The report as one JSON document.
pub fn json(report: &Report) -> String {
    serde_json::to_string_pretty(report).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}
