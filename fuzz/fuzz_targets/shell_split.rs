//! RUN command splitting on arbitrary scripts: no panics, and the lenient
//! split always yields commands with names.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tug_image::dockerfile::shell;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = shell::split(text);
    let s = shell::split_lenient(text);
    for c in &s.commands {
        let _ = (c.program(), c.has_flag("-y"), c.positional(&["-o"]));
    }
    let _ = tug_image::dockerfile::split_words(text, '\\');
});
