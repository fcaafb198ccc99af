//! Reading a GitHub Actions workflow must never panic; a rejected file has
//! at least one located error.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Err(e) = tug_pipeline::github::workflow::read(std::path::Path::new("ci.yml"), text) {
            assert!(!e.is_empty());
        }
    }
});
