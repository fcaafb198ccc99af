//! `tug validate`, `tug config`, `tug schema` and `tug import compose`, run as the built binary.

use std::path::Path;
use std::process::{Command, Output};

fn tug(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tug"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("tug runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

const GOOD: &str =
    "name: shop\nservices:\n  web:\n    image: nginx:1\n    port: 80\n    replicas: 2\n";

#[test]
fn validate_accepts_a_good_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tug.yaml"), GOOD).unwrap();
    let out = tug(dir.path(), &["validate"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "tug.yaml: valid (1 service)\n");
    let out = tug(dir.path(), &["validate", "-o", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["valid"], true);
    assert_eq!(v["stack"], "shop");
}

#[test]
fn validate_reports_every_error_with_position_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("stack.yaml"),
        "name: shop\nservices:\n  web:\n    image: nginx:1\n    replcias: 2\n    port: 0\n",
    )
    .unwrap();
    let out = tug(dir.path(), &["validate", "-f", "stack.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("stack.yaml:5:5: unknown key `replcias` in service `web`\n  hint: did you mean `replicas`?"),
        "{err}"
    );
    assert!(
        err.contains("stack.yaml:6:11: `web.port` must be a port between 1 and 65535, found 0"),
        "{err}"
    );
}

#[test]
fn validate_without_a_file_says_how_to_get_one() {
    let dir = tempfile::tempdir().unwrap();
    let out = tug(dir.path(), &["validate"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("tug import compose"));
}

#[test]
fn config_prints_resolved_defaults() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tug.yaml"), GOOD).unwrap();
    let out = tug(dir.path(), &["config", "-o", "json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let web = &v["services"]["web"];
    assert_eq!(web["replicas"], 2);
    assert_eq!(web["resources"]["memory"], "512Mi");
    assert_eq!(web["security"]["read_only"], true);
    assert_eq!(web["stop_grace_period"], "10s");
    let out = tug(dir.path(), &["config"]);
    assert!(text(&out.stdout).contains("memory: 512Mi"));
}

#[test]
fn schema_prints_json_schema() {
    let dir = tempfile::tempdir().unwrap();
    let out = tug(dir.path(), &["schema"]);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["$schema"], "https://json-schema.org/draft/2020-12/schema");
    assert_eq!(v["title"], "tug.yaml");
}

const COMPOSE: &str = "services:\n  web:\n    image: nginx:1\n    ports: [\"8080:80\"]\n    container_name: w\n  db:\n    image: postgres:16\n";

#[test]
fn import_compose_writes_tug_yaml_and_lists_dropped_keys() {
    let dir = tempfile::tempdir().unwrap();
    let proj = dir.path().join("shop");
    std::fs::create_dir(&proj).unwrap();
    std::fs::write(proj.join("docker-compose.yml"), COMPOSE).unwrap();
    let out = tug(&proj, &["import", "compose"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("wrote tug.yaml from docker-compose.yml"),
        "{stdout}"
    );
    assert!(
        stdout.contains("5:5      services.web.container_name  tug names containers"),
        "{stdout}"
    );
    let written = std::fs::read_to_string(proj.join("tug.yaml")).unwrap();
    assert!(written.contains("name: shop\n"), "{written}");
    let out = tug(&proj, &["validate"]);
    assert!(out.status.success(), "{}", text(&out.stderr));

    // An existing output is kept unless --force.
    let out = tug(&proj, &["import", "compose"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("pass --force"));
    let out = tug(&proj, &["import", "compose", "--force", "-o", "json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["valid"], true);
    assert_eq!(v["dropped"][0]["path"], "services.web.container_name");
    assert_eq!(v["dropped"][0]["line"], 5);
}

#[test]
fn import_compose_with_explicit_file_and_out() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("app.yml"), COMPOSE).unwrap();
    let out = tug(
        dir.path(),
        &["import", "compose", "app.yml", "--out", "stack.yaml"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(dir.path().join("stack.yaml").exists());
    let out = tug(
        dir.path(),
        &["import", "compose", "missing.yml", "--out", "x.yaml"],
    );
    assert_eq!(out.status.code(), Some(2));
    let bad = dir.path().join("bad.yml");
    std::fs::write(&bad, "services:\n  web: [\n").unwrap();
    let out = tug(
        dir.path(),
        &["import", "compose", "bad.yml", "--out", "y.yaml"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("bad.yml:3:1: invalid YAML"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn import_compose_needs_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = tug(dir.path(), &["import", "compose"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("no compose file"));
}

#[test]
fn import_compose_from_another_directory_keeps_paths_pointing_at_the_same_files() {
    let dir = tempfile::tempdir().unwrap();
    let proj = dir.path().join("proj");
    std::fs::create_dir_all(proj.join("app")).unwrap();
    std::fs::write(proj.join(".env"), "MODE=prod\n").unwrap();
    std::fs::write(
        proj.join("compose.yaml"),
        "name: shop\nservices:\n  web:\n    build: ./app\n    env_file: .env\n    volumes: [\"./data:/data\"]\n",
    )
    .unwrap();
    let out = tug(dir.path(), &["import", "compose", "proj/compose.yaml"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let yaml = std::fs::read_to_string(dir.path().join("tug.yaml")).unwrap();
    assert!(
        yaml.contains("./proj/app")
            && yaml.contains("./proj/.env")
            && yaml.contains("./proj/data:/data"),
        "{yaml}"
    );
    let out = tug(dir.path(), &["config", "-o", "json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let cfg: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(cfg["services"]["web"]["env"]["MODE"], "prod", "{cfg}");
}
