#![no_main]
//! Cargo.lock parsing and the dependency-path search never panic.

use libfuzzer_sys::fuzz_target;
use tug_scan::vuln::lockfile::Lockfile;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(lock) = Lockfile::parse(text) {
        for i in 0..lock.packages.len().min(64) {
            assert_eq!(lock.path_to(i).last().copied(), Some(i));
        }
    }
});
