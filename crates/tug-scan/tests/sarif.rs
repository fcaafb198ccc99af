mod common;

use common::*;
use serde_json::Value;
use tug_scan::{render, scan, ScanOptions};

/// A tree with findings from every scanner, an informational advisory and a parse error.
fn full_report() -> tug_scan::Report {
    let dir = tempfile::tempdir().unwrap();
    let lock = std::fs::read_to_string(fixtures().join("vulnerable/Cargo.lock")).unwrap();
    write(dir.path(), "Cargo.lock", &lock);
    for (i, p) in planted().iter().enumerate() {
        write(dir.path(), &format!("secrets/{i}.txt"), &p.line);
    }
    write(
        dir.path(),
        "Dockerfile",
        "FROM debian\nADD https://example.com/x /x\n",
    );
    write(
        dir.path(),
        "tug.yaml",
        "name: x\nservices:\n  a:\n    image: a:1\n    security: { privileged: true }\n",
    );
    write(
        dir.path(),
        "k8s/bad.yaml",
        "apiVersion: v1\nkind: Pod\nspec: [\n",
    );
    let mut o = ScanOptions::new(dir.path());
    o.db = Some(fixture_db());
    scan(&o).unwrap()
}

/// `sarif-schema-2.1.0.json` is the OASIS SARIF 2.1.0 (rtm.5) schema as
/// shipped in the npm package `@microsoft/jest-sarif` 1.0.0-beta.0
/// (`lib/schemas/sarif-2.1.0-rtm.5.json`), vendored unchanged.
#[test]
fn sarif_is_valid_against_the_official_schema() {
    let schema: Value = serde_json::from_str(include_str!("sarif-schema-2.1.0.json")).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let report = full_report();
    let doc: Value = serde_json::from_str(&render::sarif(&report)).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&doc)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");

    // The schema check must be able to fail.
    let mut broken = doc.clone();
    broken["runs"][0]["results"][0]["level"] = Value::from("fatal");
    assert!(!validator.is_valid(&broken));

    let run = &doc["runs"][0];
    let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
    let results = run["results"].as_array().unwrap();
    assert_eq!(results.len(), report.findings.len());
    for r in rules {
        for key in ["id", "name"] {
            assert!(r[key].as_str().is_some_and(|s| !s.is_empty()), "{key}: {r}");
        }
        assert!(r["shortDescription"]["text"].is_string());
        assert!(r["help"]["text"].is_string());
        let sev: f64 = r["properties"]["security-severity"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((0.0..=10.0).contains(&sev));
    }
    for res in results {
        let idx = res["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(rules[idx]["id"], res["ruleId"]);
        let region = &res["locations"][0]["physicalLocation"]["region"];
        assert!(region["startLine"].as_u64().unwrap() >= 1);
        assert!(region["startColumn"].as_u64().unwrap() >= 1);
    }
    let vuln = rules
        .iter()
        .find(|r| r["id"] == "RUSTSEC-2099-0001")
        .unwrap();
    assert_eq!(vuln["properties"]["security-severity"], "9.8");
    let secret = results.iter().find(|r| r["ruleId"] == "TUGS005").unwrap();
    assert!(secret["partialFingerprints"].is_object());
    assert!(!run["invocations"][0]["toolExecutionNotifications"]
        .as_array()
        .unwrap()
        .is_empty());
}
