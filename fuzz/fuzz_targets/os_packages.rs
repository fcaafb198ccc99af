#![no_main]
//! Reading an image's package databases (dpkg status, apk installed,
//! os-release) and comparing apk versions never panics.

use libfuzzer_sys::fuzz_target;
use tug_scan::image::ospkg;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let debs = ospkg::parse_dpkg_status(&text);
    let apks = ospkg::parse_apk_installed(&text);
    let release = ospkg::parse_os_release(&text);
    let _ = release.key(ospkg::Distro::Alpine);
    for p in debs.iter().chain(&apks) {
        let _ = p.purl(Some("x"));
        let _ = ospkg::apk_cmp(&p.version, &p.source_version);
    }
    if let Some((a, b)) = text.split_once('\n') {
        let _ = ospkg::apk_cmp(a, b);
    }
});
