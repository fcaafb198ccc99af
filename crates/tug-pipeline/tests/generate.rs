//! Generated CI files validate against each system's published schema
//! (check-jsonschema's vendored schemas) and the Jenkinsfile has the
//! declarative structure; the GitHub file also imports back into tug.

use std::path::{Path, PathBuf};
use tug_pipeline::generate::{check_jenkinsfile, generate, Ci, Plan};

fn check_jsonschema() -> Option<PathBuf> {
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    let candidates = [
        home.join(".local/bin/check-jsonschema"),
        PathBuf::from("check-jsonschema"),
    ];
    for c in candidates {
        if std::process::Command::new(&c)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
        {
            return Some(c);
        }
    }
    if std::env::var("TUG_REQUIRE_TOOLS").as_deref() == Ok("1") {
        panic!("check-jsonschema is missing (scripts/test.sh installs it)");
    }
    eprintln!("SKIPPED: check-jsonschema is not installed (pip install check-jsonschema)");
    None
}

fn validate(tool: &Path, schema: &str, name: &str, text: &str) {
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join(name);
    std::fs::write(&f, text).unwrap();
    let out = std::process::Command::new(tool)
        .args(["--builtin-schema", schema])
        .arg(&f)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{schema}:\n{}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn plans() -> Vec<Plan> {
    vec![
        Plan {
            pipelines: vec!["ci".into()],
            push: true,
            ..Plan::default()
        },
        Plan {
            pipelines: vec!["ci".into(), "release it".into()],
            push: false,
            tug_git: "https://example.com/tug.git".into(),
            file: Some("deploy/tug.yaml".into()),
            branch: "trunk".into(),
        },
    ]
}

#[test]
fn github_workflows_validate() {
    let Some(tool) = check_jsonschema() else {
        return;
    };
    for p in plans() {
        let text = generate(Ci::Github, &p);
        validate(&tool, "vendor.github-workflows", "tug.yml", &text);
        for name in &p.pipelines {
            assert!(
                text.contains(&format!("pipeline run {}", shlex::try_quote(name).unwrap())),
                "{text}"
            );
        }
        assert!(text.contains("upload-sarif"));
        assert_eq!(text.contains("tug build --push"), p.push);
    }
}

#[test]
fn gitlab_files_validate() {
    let Some(tool) = check_jsonschema() else {
        return;
    };
    for p in plans() {
        let text = generate(Ci::Gitlab, &p);
        validate(&tool, "vendor.gitlab-ci", ".gitlab-ci.yml", &text);
        assert!(text.contains("tug-lint.sarif") && text.contains("tug-scan.sarif"));
    }
}

#[test]
fn a_schema_violation_is_caught() {
    // The check itself can fail: a workflow without `runs-on` is rejected.
    let Some(tool) = check_jsonschema() else {
        return;
    };
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("bad.yml");
    std::fs::write(&f, "on: push\njobs:\n  x:\n    steps:\n      - run: echo\n").unwrap();
    let out = std::process::Command::new(&tool)
        .args(["--builtin-schema", "vendor.github-workflows"])
        .arg(&f)
        .output()
        .unwrap();
    assert!(!out.status.success());
}

#[test]
fn jenkinsfiles_are_declarative() {
    for p in plans() {
        let text = generate(Ci::Jenkins, &p);
        check_jenkinsfile(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert!(text.contains("recordIssues") && text.contains("junit"));
    }
}

#[test]
fn generated_files_import_back() {
    let p = &plans()[0];
    let d = tempfile::tempdir().unwrap();
    let text = generate(Ci::Github, p);
    let opts = tug_pipeline::github::Options {
        workspace: d.path().to_path_buf(),
        event: "push".into(),
        inputs: Default::default(),
        platforms: Default::default(),
        step_command: vec!["tug".into(), "ci".into(), "github-step".into()],
        state_dir: d.path().join("state"),
        cache_dir: d.path().join("cache"),
        on_path: Box::new(|_| true),
    };
    let imp = tug_pipeline::github::import(Path::new("tug.yml"), &text, &opts).unwrap();
    // upload-sarif has no local equivalent: the job is left out, and says why.
    assert!(imp
        .uses
        .iter()
        .any(|u| u.uses.starts_with("github/codeql-action/upload-sarif")));
    let text = generate(Ci::Gitlab, p);
    let gl = tug_pipeline::gitlab::Options {
        workspace: d.path().to_path_buf(),
        on_host: true,
        images: Default::default(),
        variables: Default::default(),
        on_path: Box::new(|_| true),
    };
    let imp = tug_pipeline::gitlab::import(Path::new(".gitlab-ci.yml"), &text, &gl).unwrap();
    assert!(imp.pipeline.jobs.contains_key("pipeline-ci"));
    assert!(imp.pipeline.jobs.contains_key("lint-and-scan"));
}
