#![no_main]
//! Scanning an image whose layer (and config) are arbitrary bytes never
//! panics: a bad layer is an error naming it. The bytes are also tried as a
//! binary's embedded `cargo auditable` data.

use libfuzzer_sys::fuzz_target;
use tug_image::oci::{RawImage, RawLayer};
use tug_scan::image::{auditable, scan_image, ImageScanOptions};
use tug_scan::ScannerKind;

fuzz_target!(|data: &[u8]| {
    let raw = RawImage {
        manifest: None,
        config: data.get(..data.len().min(64)).unwrap_or_default().to_vec(),
        layers: vec![RawLayer {
            media_type: String::new(),
            digest: "sha256:fuzz".into(),
            data: data.to_vec(),
            missing: None,
        }],
    };
    let opts = ImageScanOptions {
        scanners: vec![ScannerKind::Secret, ScannerKind::Config, ScannerKind::Vuln],
        audit: false,
        ..Default::default()
    };
    let _ = scan_image(&raw, "fuzz", &opts);
    let _ = auditable::read(data);
});
