//! The JSON Schema accepts every input form the parser accepts.

use std::path::{Path, PathBuf};

fn validator() -> jsonschema::Validator {
    jsonschema::validator_for(&tug_spec::schema()).expect("the schema compiles")
}

fn to_json(yaml: &str) -> serde_json::Value {
    serde_yaml_ng::from_str(yaml).expect("valid YAML")
}

fn errors(v: &jsonschema::Validator, doc: &serde_json::Value) -> Vec<String> {
    v.iter_errors(doc)
        .map(|e| format!("{}: {e}", e.instance_path))
        .collect()
}

#[test]
fn examples_and_fixtures_validate() {
    let v = validator();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec![root.join("../../examples/hello/tug.yaml")];
    for e in std::fs::read_dir(root.join("tests/fixtures/valid")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "yaml") {
            files.push(p);
        }
    }
    let mut docs: Vec<(PathBuf, String)> = files
        .into_iter()
        .map(|f| {
            let text = std::fs::read_to_string(&f).unwrap();
            (f, text)
        })
        .collect();
    // The tug.yaml produced by each compose fixture.
    for e in std::fs::read_dir(root.join("tests/fixtures/compose")).unwrap() {
        let dir = e.unwrap().path();
        for f in std::fs::read_dir(&dir).unwrap() {
            let f = f.unwrap().path();
            if f.file_name().unwrap().to_string_lossy().contains("compose") {
                let text = std::fs::read_to_string(&f).unwrap();
                let imp = tug_spec::compose::import(&text, &f).unwrap();
                docs.push((dir.join("tug.yaml"), imp.yaml));
            }
        }
    }
    assert!(docs.len() >= 8, "{docs:?}");
    for (f, text) in docs {
        tug_spec::parse_str(&text, &f).unwrap_or_else(|e| panic!("{e}"));
        let errs = errors(&v, &to_json(&text));
        assert!(errs.is_empty(), "{}: {errs:#?}\n{text}", f.display());
    }
}

#[test]
fn schema_rejects_what_the_parser_rejects() {
    let v = validator();
    for bad in [
        "name: s\nservices:\n  web: { image: x, replcias: 2 }\n",
        "name: s\nservices:\n  web: { image: x, replicas: three }\n",
        "name: s\nservices:\n  web: { image: x, replicas: -1 }\n",
        "name: s\nservices:\n  web: { image: x, port: 70000 }\n",
        "name: S\nservices: {}\n",
        "name: s\nservices:\n  Web: { image: x }\n",
        "name: s\nservices:\n  web: { image: x, health: { interval: 2x } }\n",
        "name: s\nservices:\n  web: { image: x, depends_on: { db: ready } }\n",
        "name: s\nservices:\n  web: { image: x, restart: sometimes }\n",
        "services: {}\n",
        "name: s\nservices:\n  web: { image: ~ }\n",
        "name: s\nservices:\n  web: { image: x, health: { http: ~ } }\n",
    ] {
        assert!(!v.is_valid(&to_json(bad)), "schema accepted:\n{bad}");
    }
}

#[test]
fn null_condition_means_started() {
    let v = validator();
    let doc = "name: s\nservices:\n  db: { image: x }\n  web: { image: x, depends_on: { db: } }\n";
    assert!(v.is_valid(&to_json(doc)));
    let s = tug_spec::parse_str(doc, Path::new("/tmp/s/tug.yaml")).unwrap();
    assert_eq!(
        s.services["web"].depends_on["db"],
        tug_spec::Condition::Started
    );
}

#[test]
fn schema_is_draft_2020_12() {
    let s = tug_spec::schema();
    assert_eq!(s["$schema"], "https://json-schema.org/draft/2020-12/schema");
    assert_eq!(s["title"], "tug.yaml");
    assert!(s["$defs"]["ServiceIn"]["properties"]["depends_on"].is_object());
}
