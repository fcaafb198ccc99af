//! The Dockerfile parser and every lint rule on arbitrary text: no panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tug_image::lint::{lint_parsed, Config, ContextFacts};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let parsed = tug_image::dockerfile::parse(text);
    let _ = parsed.stages();
    for ins in &parsed.instructions {
        let _ = ins.script();
    }
    let facts = ContextFacts { scanned: true, has_dockerignore: false, large: Some("x".into()) };
    let _ = lint_parsed(&parsed, &Config::default(), &facts);
    let strict = Config { strict: true, ..Config::default() };
    let _ = lint_parsed(&parsed, &strict, &facts);
});
