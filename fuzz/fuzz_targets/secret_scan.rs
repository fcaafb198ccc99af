#![no_main]
//! Secret scanning and redaction never panic, and a reported secret never
//! survives redaction.

use libfuzzer_sys::fuzz_target;
use tug_scan::secret::{redact_in, scan_text, Allowlist};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let found = scan_text(text, "f", &Allowlist::default());
    let redacted = redact_in(text);
    for f in &found {
        assert!(!f.message.is_empty());
    }
    if found.is_empty() {
        assert_eq!(redacted, text);
    }
});
