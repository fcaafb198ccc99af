//! GitHub expressions and `${{ }}` templates: parsing and evaluation must
//! never panic, whatever the text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tug_pipeline::github::expr::{parse_condition, Scope, Template};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut scope = Scope::default();
    scope.set("matrix", serde_json::json!({ "os": "ubuntu-latest", "n": [1, 2, { "a": null }] }));
    scope.set("github", serde_json::json!({ "event": { "labels": [{ "name": "x" }] }, "ref": "refs/heads/main" }));
    // hashFiles reads the workspace: point it at nothing.
    scope.workspace = std::path::PathBuf::from("/nonexistent");
    if let Ok(t) = Template::parse(text) {
        let _ = scope.render(&t);
        let _ = scope.render_value(&t);
    }
    if let Ok(e) = parse_condition(text) {
        let _ = scope.test(&e);
    }
});
