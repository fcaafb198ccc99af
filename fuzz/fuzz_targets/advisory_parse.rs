#![no_main]
//! RustSec advisory front-matter parsing and range matching never panic.

use libfuzzer_sys::fuzz_target;
use tug_scan::vuln::advisory::Advisory;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(adv) = Advisory::parse(text) {
        for v in ["0.0.0", "1.2.3", "1.2.3-rc.1", "99.0.0"] {
            if let Ok(v) = semver::Version::parse(v) {
                let _ = adv.affects(&v);
            }
        }
        let _ = adv.severity();
    }
});
