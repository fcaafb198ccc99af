//! Imports the workflows of real Rust projects (tests/data/github, each with
//! its licence) and checks bad input is reported at file:line:col.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tug_pipeline::github::{import, ImportErrors, Options};

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/github")
}

/// A fixed host, so the outcome does not depend on this machine.
fn options(state: &Path) -> Options {
    Options {
        workspace: state.join("ws"),
        event: "push".into(),
        inputs: BTreeMap::new(),
        platforms: BTreeMap::new(),
        step_command: vec!["tug".into(), "pipeline".into(), "github-step".into()],
        state_dir: state.join("state"),
        cache_dir: state.join("cache"),
        on_path: Box::new(|t| matches!(t, "bash" | "sh" | "rustc" | "cargo" | "python3")),
    }
}

fn workflows() -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    for repo in std::fs::read_dir(data()).unwrap().flatten() {
        let dir = repo.path().join(".github/workflows");
        for f in std::fs::read_dir(&dir).unwrap().flatten() {
            out.push((repo.file_name().to_string_lossy().to_string(), f.path()));
        }
    }
    out.sort();
    out
}

#[test]
fn the_corpus_imports() {
    let files = workflows();
    let repos: std::collections::BTreeSet<&String> = files.iter().map(|(r, _)| r).collect();
    assert!(repos.len() >= 15, "{} repositories", repos.len());
    for r in &repos {
        let dir = data().join(r);
        let licensed = std::fs::read_dir(&dir).unwrap().flatten().any(|e| {
            let n = e.file_name().to_string_lossy().to_uppercase();
            n.starts_with("LICENSE") || n.starts_with("COPYING") || n.starts_with("UNLICENSE")
        });
        assert!(licensed, "{r} has no licence file");
    }
    let tmp = tempfile::tempdir().unwrap();
    let (mut planned, mut skipped) = (0, 0);
    let mut failures = Vec::new();
    for (_, f) in &files {
        let src = std::fs::read_to_string(f).unwrap();
        match import(f, &src, &options(tmp.path())) {
            Ok(imp) => {
                assert!(!imp.jobs.is_empty(), "{}: no jobs", f.display());
                for j in &imp.jobs {
                    match &j.skipped {
                        None => planned += 1,
                        Some(why) => {
                            assert!(!why.is_empty());
                            skipped += 1;
                        }
                    }
                }
                // Every planned job is in the pipeline, with a step per workflow step.
                for j in imp.jobs.iter().filter(|j| j.skipped.is_none()) {
                    assert!(
                        imp.pipeline.jobs.contains_key(&j.id),
                        "{}: {}",
                        f.display(),
                        j.key
                    );
                }
                // A left-out `uses:` names the jobs it leaves out and what to do.
                for n in &imp.uses {
                    assert!(!n.jobs.is_empty() && !n.advice.is_empty());
                }
            }
            Err(e) => failures.push(e.to_string()),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(
        planned > 20 && skipped > 20,
        "planned {planned}, skipped {skipped}"
    );
}

fn errors(src: &str) -> ImportErrors {
    let tmp = tempfile::tempdir().unwrap();
    match import(Path::new("ci.yml"), src, &options(tmp.path())) {
        Ok(_) => panic!("accepted:\n{src}"),
        Err(e) => e,
    }
}

#[test]
fn an_unknown_key_is_reported_where_it_is() {
    let e = errors(
        "on: push\njobs:\n  test:\n    runs-on: ubuntu-latest\n    step:\n      - run: echo\n",
    );
    let text = e.to_string();
    assert!(
        text.contains("ci.yml:5:5: unknown key `step` in job `test` (did you mean `steps`?)"),
        "{text}"
    );
    let e = errors("on: push\njobs:\n  test:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo\n        wiht: {a: 1}\n");
    assert!(
        e.to_string()
            .contains("ci.yml:7:9: unknown key `wiht` in a step (did you mean `with`?)"),
        "{e}"
    );
}

#[test]
fn a_bad_expression_is_reported_at_its_column() {
    let e = errors("on: push\njobs:\n  test:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ matrix.os == \"x\" }}\n");
    assert!(
        e.to_string()
            .starts_with("ci.yml:6:36: bad expression: strings use single quotes"),
        "{e}"
    );
    let e = errors("on: push\njobs:\n  test:\n    runs-on: ubuntu-latest\n    steps:\n      - run: |\n          echo one\n          echo ${{ contain(github.ref, 'x') }}\n");
    assert!(
        e.to_string().starts_with(
            "ci.yml:8:20: bad expression: unknown function `contain` (did you mean `contains`?)"
        ),
        "{e}"
    );
    let e = errors("on: push\njobs:\n  test:\n    runs-on: ubuntu-latest\n    if: github.ref ==\n    steps:\n      - run: echo\n");
    assert!(
        e.to_string().starts_with("ci.yml:5:22: bad expression"),
        "{e}"
    );
    let e = errors("on: push\njobs:\n  test:\n    needs: [build]\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo\n");
    assert!(
        e.to_string()
            .contains("ci.yml:4:13: job `test` needs `build`"),
        "{e}"
    );
}

#[test]
fn matrices_conditions_and_runners() {
    let src = r#"
on: push
jobs:
  test:
    strategy:
      fail-fast: false
      matrix:
        os: [ubuntu-latest, windows-latest]
        rust: [stable, beta]
        exclude:
          - os: ubuntu-latest
            rust: beta
        include:
          - os: ubuntu-latest
            rust: stable
            extra: yes
          - os: ubuntu-22.04
            rust: nightly
    runs-on: ${{ matrix.os }}
    steps:
      - run: echo ${{ matrix.rust }}
  docs:
    if: github.event_name == 'pull_request'
    runs-on: ubuntu-latest
    steps:
      - run: echo docs
  report:
    needs: [test]
    if: always()
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - uses: some/deploy-action@v1
  lint:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - uses: Swatinem/rust-cache@v2
      - run: cargo fmt --check
"#;
    let tmp = tempfile::tempdir().unwrap();
    let imp = import(Path::new("ci.yml"), src, &options(tmp.path())).unwrap();
    let by_key: BTreeMap<&str, &Option<String>> = imp
        .jobs
        .iter()
        .map(|j| (j.key.as_str(), &j.skipped))
        .collect();
    assert_eq!(by_key["test (ubuntu-latest, stable, yes)"], &None);
    assert_eq!(by_key["test (ubuntu-22.04, nightly)"], &None);
    assert!(by_key["test (windows-latest, beta)"]
        .as_ref()
        .unwrap()
        .contains("only Linux runners"));
    assert!(!by_key.contains_key("test (ubuntu-latest, beta)"));
    assert!(by_key["docs"]
        .as_ref()
        .unwrap()
        .contains("`if: github.event_name == 'pull_request'` is false"));
    assert!(by_key["report"]
        .as_ref()
        .unwrap()
        .contains("some/deploy-action@v1"));
    assert_eq!(by_key["lint"], &None);
    assert_eq!(imp.uses.len(), 1);
    assert_eq!(imp.uses[0].at.line, 33);
    // The matrix runs as one job of the model: a unit per combination that runs here.
    let m = imp.pipeline.jobs["test"].matrix.as_ref().unwrap();
    assert_eq!(
        m.axes["gh"],
        vec![
            "ubuntu-latest, stable, yes".to_string(),
            "ubuntu-22.04, nightly".into()
        ]
    );
    assert!(!m.fail_fast);
    let lint = &imp.pipeline.jobs["lint"];
    assert_eq!(lint.steps.len(), 4, "3 steps and the job's end");
}
