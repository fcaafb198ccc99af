//! tug.yaml parsing and validation must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Err(e) = tug_spec::parse_str(text, std::path::Path::new("/nonexistent/tug.yaml")) {
            assert!(!e.0.is_empty());
        }
    }
});
