//! SARIF output validates against the official SARIF 2.1.0 schema
//! (vendored as tests/sarif-schema-2.1.0.json).

use tug_image::lint::{lint, output, Config, ContextFacts};

fn schema() -> jsonschema::Validator {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/sarif-schema-2.1.0.json"
    ))
    .unwrap();
    // The published schema's `language` pattern has a stray `]` that strict
    // regex engines reject; use the pattern it means (two letters, optional region).
    let text = text.replace(
        r#""^[a-zA-Z]{2}|^[a-zA-Z]{2}-[a-zA-Z]{2}]?$""#,
        r#""^[a-zA-Z]{2}(-[a-zA-Z]{2})?$""#,
    );
    let schema: serde_json::Value = serde_json::from_str(&text).unwrap();
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft7)
        .build(&schema)
        .unwrap()
}

#[test]
fn sarif_output_is_valid_sarif_2_1_0() {
    let validator = schema();
    let mut report = lint(
        "FROM debian\nMAINTAINER x\nRUN apt-get update && apt-get install curl | tee /log\nBOGUS\n",
        &Config::default(),
        &ContextFacts::default(),
    );
    for f in &mut report.findings {
        f.file = "sub dir/Dockerfile".into();
    }
    assert!(report.findings.len() > 5);
    let log = output::sarif(&report.findings);
    let errors: Vec<String> = validator
        .iter_errors(&log)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    // And an empty run is valid too.
    assert!(validator.is_valid(&output::sarif(&[])));
}

#[test]
fn the_validator_rejects_broken_sarif() {
    // Guards the test above: a log with a wrong level must fail.
    let validator = schema();
    let mut log = output::sarif(&[]);
    log["runs"][0]["results"] =
        serde_json::json!([{ "message": { "text": "x" }, "level": "fatal" }]);
    assert!(!validator.is_valid(&log));
}
