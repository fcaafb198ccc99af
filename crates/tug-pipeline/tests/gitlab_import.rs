//! Imports real `.gitlab-ci.yml` files (tests/data/gitlab, with their
//! licences) and a file that uses every supported keyword.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tug_pipeline::gitlab::{import, Import, Options};
use tug_pipeline::model::When;

fn options(ws: &Path, vars: &[(&str, &str)]) -> Options {
    Options {
        workspace: ws.to_path_buf(),
        on_host: false,
        images: BTreeMap::new(),
        variables: vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        on_path: Box::new(|t| matches!(t, "bash" | "sh")),
    }
}

fn corpus(name: &str, vars: &[(&str, &str)]) -> Import {
    let ws: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/gitlab")
        .join(name);
    let f = ws.join(".gitlab-ci.yml");
    let src = std::fs::read_to_string(&f).unwrap();
    import(&f, &src, &options(&ws, vars)).unwrap_or_else(|e| panic!("{e}"))
}

fn skipped<'a>(imp: &'a Import, key: &str) -> Option<&'a str> {
    imp.jobs
        .iter()
        .find(|j| j.key == key)
        .unwrap_or_else(|| panic!("no job {key}"))
        .skipped
        .as_deref()
}

#[test]
fn librsvg_with_local_includes_references_and_parallel() {
    let imp = corpus("librsvg", &[]);
    // Templates from `include: project` are not read: the jobs that extend them say so.
    assert!(
        imp.notes
            .iter()
            .any(|n| n.contains("project: GNOME/citemplates")),
        "{:?}",
        imp.notes
    );
    assert!(skipped(&imp, "check").unwrap().contains("not defined here"));
    assert!(!imp.jobs.is_empty());
    for j in &imp.jobs {
        assert!(j.skipped.is_some() || imp.pipeline.jobs.contains_key(&j.key));
    }
}

#[test]
fn redox_workflow_rules_decide_the_pipeline() {
    let imp = corpus("redox", &[]);
    assert!(imp.pipeline.jobs.is_empty());
    assert!(skipped(&imp, "fmt").unwrap().contains("workflow: rules"));
    let imp = corpus(
        "redox",
        &[
            ("CI_COMMIT_BRANCH", "master"),
            ("CI_PROJECT_NAMESPACE", "redox-os"),
        ],
    );
    let fmt = &imp.pipeline.jobs["fmt"];
    assert_eq!(fmt.image.as_deref(), Some("rust:trixie"));
    assert_eq!(
        fmt.steps[0].run,
        "rustup component add rustfmt\ncargo fmt -- --check"
    );
    // `img` is in the stage after `fmt`: it needs every job of the stages before.
    let img = &imp.pipeline.jobs["img"];
    assert_eq!(img.needs, vec!["cargo-test".to_string(), "fmt".to_string()]);
    assert_eq!(imp.pipeline.env["GIT_STRATEGY"], "clone");
}

#[test]
fn fractal_extends_a_local_anchor_and_a_remote_template() {
    let imp = corpus("fractal", &[]);
    assert!(imp
        .notes
        .iter()
        .any(|n| n.contains("flatpak_ci_initiative.yml")));
    let check = &imp.pipeline.jobs["check"];
    assert!(check.steps[0].run.contains("cargo fmt --all -- --check"));
    assert!(skipped(&imp, "flatpak").unwrap().contains(".flatpak"));
    assert!(skipped(&imp, "nightly").is_some());
}

const FULL: &str = r#"
include:
  - local: ci/common.yml
stages: [build, test, deploy]
variables:
  CARGO_HOME: $CI_PROJECT_DIR/.cargo
  MODE: debug
default:
  image: rust:1.85
  before_script: [echo before]
.rust:
  cache:
    key:
      files: [Cargo.lock]
    paths: [target/]
build:
  extends: .rust
  stage: build
  script:
    - cargo build
  artifacts:
    paths: [target/debug/app]
test:
  extends: [.rust, .from-include]
  stage: test
  parallel:
    matrix:
      - RUST: [stable, beta]
        OS: [linux]
      - RUST: nightly
  script:
    - !reference [.setup, script]
    - cargo test
  after_script: [echo done]
  services:
    - name: postgres:16
      alias: db
      variables: { POSTGRES_PASSWORD: x }
  retry: 2
  timeout: 1h 30m
lint:
  stage: test
  needs: []
  image: alpine:3
  allow_failure: true
  rules:
    - if: $MODE == "release"
      when: never
    - if: '$CI_PIPELINE_SOURCE == "push"'
      when: always
  script: [echo lint]
deploy:
  stage: deploy
  needs: [build]
  rules:
    - if: $CI_COMMIT_TAG
  script: [echo deploy]
manual:
  stage: deploy
  when: manual
  script: [echo manual]
"#;

const COMMON: &str = ".from-include:\n  variables:\n    FROM_INCLUDE: \"yes\"\n.setup:\n  script:\n    - echo setup\n";

#[test]
fn every_supported_keyword() {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(d.path().join("ci")).unwrap();
    std::fs::write(d.path().join("ci/common.yml"), COMMON).unwrap();
    let f = d.path().join(".gitlab-ci.yml");
    let imp = import(&f, FULL, &options(d.path(), &[])).unwrap_or_else(|e| panic!("{e}"));
    let p = &imp.pipeline;
    let keys: Vec<&String> = p.jobs.keys().collect();
    assert_eq!(
        keys,
        [
            "build",
            "lint",
            "test-beta-linux",
            "test-nightly",
            "test-stable-linux"
        ]
    );
    let build = &p.jobs["build"];
    assert_eq!(build.image.as_deref(), Some("rust:1.85"));
    assert_eq!(build.steps[0].run, "echo before\ncargo build");
    assert_eq!(build.artifacts, vec!["target/debug/app".to_string()]);
    assert_eq!(build.cache[0].files, vec!["Cargo.lock".to_string()]);
    assert_eq!(build.cache[0].paths, vec!["target/".to_string()]);
    let t = &p.jobs["test-stable-linux"];
    assert_eq!(t.needs, vec!["build".to_string()]);
    assert_eq!(t.env["RUST"], "stable");
    assert_eq!(t.env["CI_NODE_TOTAL"], "3");
    assert_eq!(t.env["FROM_INCLUDE"], "yes");
    assert_eq!(t.steps[0].run, "echo before\necho setup\ncargo test");
    assert_eq!(t.steps[1].when, When::Always);
    assert!(t.steps[1].continue_on_error);
    assert_eq!(t.services["db"].image, "postgres:16");
    assert_eq!(t.services["db"].env["POSTGRES_PASSWORD"], "x");
    assert_eq!(t.retry, 2);
    assert_eq!(t.timeout.unwrap().std().as_secs(), 5400);
    let lint = &p.jobs["lint"];
    assert!(lint.needs.is_empty());
    assert_eq!(lint.when, When::Always);
    assert!(lint.continue_on_error);
    assert_eq!(lint.image.as_deref(), Some("alpine:3"));
    assert!(p.env["CARGO_HOME"].ends_with("/.cargo") && p.env["CARGO_HOME"].starts_with('/'));
    assert_eq!(skipped(&imp, "deploy"), Some("no rule of `rules` matches"));
    assert!(skipped(&imp, "manual").unwrap().contains("manual"));

    // On the host: no image, bash for the script.
    let mut o = options(d.path(), &[("MODE", "release")]);
    o.on_host = true;
    let imp = import(&f, FULL, &o).unwrap();
    assert!(imp.pipeline.jobs["build"].image.is_none());
    assert_eq!(
        imp.pipeline.jobs["build"].shell.as_deref(),
        Some(&["bash".to_string(), "-e".into(), "-c".into()][..])
    );
    assert!(skipped(&imp, "lint").unwrap().contains("when: never"));
}

#[test]
fn bad_input_is_reported_at_file_line_col() {
    let d = tempfile::tempdir().unwrap();
    let f = Path::new(".gitlab-ci.yml");
    let err = |src: &str| {
        import(f, src, &options(d.path(), &[]))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    };
    let e = err("test:\n  scirpt: [echo]\n  script: [echo]\n");
    assert!(
        e.contains(
            ".gitlab-ci.yml:2:3: unknown key `scirpt` in job `test` (did you mean `script`?)"
        ),
        "{e}"
    );
    let e = err("test:\n  script: [echo]\n  rules:\n    - if: $A = \"x\"\n");
    assert!(e.contains(".gitlab-ci.yml:4:14: bad rule"), "{e}");
    let e = err("test:\n  extends: .nope\n  script: [echo]\n");
    assert!(
        e.contains(".gitlab-ci.yml:2:12: extends `.nope`, which is not defined"),
        "{e}"
    );
    let e = err("test:\n  stage: lint\n  script: [echo]\n");
    assert!(
        e.contains(".gitlab-ci.yml:2:10: job `test` is in the stage `lint`"),
        "{e}"
    );
    let e = err("a:\n  script: [echo]\n  needs: [b]\n");
    assert!(e.contains(".gitlab-ci.yml:3:11: job `a` needs `b`"), "{e}");
}
