#![no_main]
//! Reading cosign-format keys (encrypted private PEM, public PEM) never panics.

use libfuzzer_sys::fuzz_target;
use tug_image::registry::sign::{decrypt_private, public_key};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = decrypt_private(text, b"");
    let _ = public_key(text);
});
