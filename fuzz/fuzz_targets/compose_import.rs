//! Compose import must never panic, and what it writes must read back.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(imp) = tug_spec::compose::import(text, Path::new("/nonexistent/compose.yaml")) {
            let _ = tug_spec::parse_str(&imp.yaml, Path::new("/nonexistent/tug.yaml"));
        }
    }
});
