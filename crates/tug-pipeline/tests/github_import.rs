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
            if !f.file_type().unwrap().is_file() {
                continue;
            }
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
    for (repo, f) in &files {
        let src = std::fs::read_to_string(f).unwrap();
        // The project is the workspace: its local actions and reusable workflows are there.
        let mut opts = options(tmp.path());
        opts.workspace = data().join(repo);
        match import(f, &src, &opts) {
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

/// A project with a caller and a local reusable workflow.
fn reuse_project(caller: &str, called: &str) -> (tempfile::TempDir, PathBuf, String) {
    let tmp = tempfile::tempdir().unwrap();
    let wf = tmp.path().join("ws/.github/workflows");
    std::fs::create_dir_all(&wf).unwrap();
    std::fs::write(wf.join("build.yml"), called).unwrap();
    let file = wf.join("ci.yml");
    std::fs::write(&file, caller).unwrap();
    (tmp, file, caller.to_string())
}

/// The reusable workflow, shared with the tug CLI's run of it.
fn called() -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/reuse/build.yml");
    std::fs::read_to_string(p).unwrap()
}

#[test]
fn a_local_reusable_workflow_is_planned_under_its_caller() {
    let (tmp, file, src) = reuse_project(
        "on: push\njobs:\n  lint:\n    runs-on: ubuntu-latest\n    steps: [ { run: echo lint } ]\n  build:\n    needs: lint\n    uses: ./.github/workflows/build.yml\n    with: { target: x86_64 }\n    secrets: inherit\n  ship:\n    needs: build\n    runs-on: ubuntu-latest\n    steps: [ { run: \"echo ${{ needs.build.outputs.artifact }}\" } ]\n",
        &called(),
    );
    let opts = options(tmp.path());
    let imp = import(&file, &src, &opts).unwrap();
    let keys: Vec<(&str, bool)> = imp
        .jobs
        .iter()
        .map(|j| (j.key.as_str(), j.skipped.is_none()))
        .collect();
    assert!(keys.contains(&("build.compile", true)), "{keys:?}");
    assert!(keys.contains(&("build.test", true)), "{keys:?}");
    assert!(keys.contains(&("build", true)), "{keys:?}");
    assert!(keys.contains(&("ship", true)), "{keys:?}");
    let jobs = &imp.pipeline.jobs;
    // The called workflow's first job waits for what the caller needs.
    assert_eq!(jobs["build.compile"].needs, ["lint"]);
    assert_eq!(jobs["build.test"].needs, ["build.compile"]);
    assert_eq!(jobs["build"].needs, ["build.compile", "build.test"]);
    assert_eq!(jobs["ship"].needs, ["build"]);
    // Inputs typed, defaults filled.
    let plan: serde_json::Value = serde_json::from_slice(
        &std::fs::read(opts.state_dir.join("jobs/build.compile.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        plan["contexts"]["inputs"],
        serde_json::json!({ "target": "x86_64", "release": false, "jobs": 2 })
    );
}

#[test]
fn a_reusable_workflow_call_is_checked_at_file_line_col() {
    let caller = |with: &str| {
        format!("on: push\njobs:\n  build:\n    uses: ./.github/workflows/build.yml\n    with: {with}\n")
    };
    let (tmp, file, src) = reuse_project(&caller("{ target: a, colour: red }"), &called());
    let e = import(&file, &src, &options(tmp.path())).err().unwrap();
    assert!(
        e.to_string().contains("ci.yml:5:")
            && e.to_string().ends_with(
                "`./.github/workflows/build.yml` has no input `colour`; its inputs are target, release, jobs"
            ),
        "{e}"
    );
    let (tmp, file, src) = reuse_project(&caller("{ release: true }"), &called());
    let e = import(&file, &src, &options(tmp.path())).err().unwrap();
    assert!(
        e.to_string().contains("ci.yml:4:11: job `build` does not give `./.github/workflows/build.yml` its required input `target`"),
        "{e}"
    );
    let (tmp, file, src) = reuse_project(&caller("{ target: a, release: maybe }"), &called());
    let e = import(&file, &src, &options(tmp.path())).err().unwrap();
    assert!(
        e.to_string().contains(
            "input `release` of `./.github/workflows/build.yml`: `maybe` is not a boolean"
        ),
        "{e}"
    );
}

#[test]
fn a_remote_reusable_workflow_is_left_out_with_the_reason() {
    let (tmp, file, src) = reuse_project(
        "on: push\njobs:\n  build:\n    uses: octo/ci/.github/workflows/rust.yml@v1\n  after:\n    needs: build\n    runs-on: ubuntu-latest\n    steps: [ { run: echo } ]\n",
        &called(),
    );
    let imp = import(&file, &src, &options(tmp.path())).unwrap();
    let build = imp.jobs.iter().find(|j| j.key == "build").unwrap();
    let why = build.skipped.as_deref().unwrap();
    assert!(
        why.starts_with("remote reusable workflow `octo/ci/.github/workflows/rust.yml@v1`"),
        "{why}"
    );
    let after = imp.jobs.iter().find(|j| j.key == "after").unwrap();
    assert_eq!(
        after.skipped.as_deref(),
        Some("needs `build`, which is left out")
    );
    assert_eq!(imp.uses.len(), 1);
    assert_eq!(imp.uses[0].at.line, 4);
}

#[test]
fn a_long_matrix_combination_is_still_a_file_name() {
    // curl's matrix of long objects: each combination's plan is a file.
    let long = "x".repeat(300);
    let src = format!("on: push\njobs:\n  linux:\n    strategy:\n      matrix:\n        build:\n          - {{ name: a, configure: '{long}' }}\n          - {{ name: b, configure: '{long}' }}\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{{{ matrix.build.name }}}}\n");
    let tmp = tempfile::tempdir().unwrap();
    let opts = options(tmp.path());
    let imp = import(Path::new("ci.yml"), &src, &opts).unwrap_or_else(|e| panic!("{e}"));
    let planned: Vec<&str> = imp
        .jobs
        .iter()
        .filter(|j| j.skipped.is_none())
        .map(|j| j.key.as_str())
        .collect();
    assert_eq!(planned.len(), 2, "{:?}", imp.jobs);
    let files: Vec<String> = std::fs::read_dir(opts.state_dir.join("jobs"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n != "linux.matrix.json")
        .collect();
    assert_eq!(files.len(), 2, "{files:?}");
    assert!(files.iter().all(|f| f.len() <= 110), "{files:?}");
}

#[test]
fn a_container_that_renders_empty_runs_on_the_runner() {
    // curl: `container: ${{ matrix.build.container }}`, set for a few combinations only.
    let src = "on: push\njobs:\n  linux:\n    strategy:\n      matrix:\n        build:\n          - { name: host }\n          - { name: alpine, container: 'alpine:3' }\n    runs-on: ubuntu-latest\n    container: ${{ matrix.build.container }}\n    steps:\n      - run: echo ${{ matrix.build.name }}\n";
    let tmp = tempfile::tempdir().unwrap();
    let opts = options(tmp.path());
    let imp = import(Path::new("ci.yml"), src, &opts).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        imp.jobs.iter().all(|j| j.skipped.is_none()),
        "{:?}",
        imp.jobs
    );
    let plan = |name: &str| -> serde_json::Value {
        let f = std::fs::read_dir(opts.state_dir.join("jobs"))
            .unwrap()
            .flatten()
            .find(|e| e.file_name().to_string_lossy().contains(name))
            .unwrap();
        serde_json::from_slice(&std::fs::read(f.path()).unwrap()).unwrap()
    };
    assert!(plan("host")["container"].is_null());
    assert_eq!(plan("alpine")["container"]["image"], "alpine:3");
}

#[test]
fn new_corpus_projects_read_as_github_reads_them() {
    let tmp = tempfile::tempdir().unwrap();
    let read = |repo: &str, file: &str| {
        let mut opts = options(tmp.path());
        opts.workspace = data().join(repo);
        let f = data().join(repo).join(".github/workflows").join(file);
        import(&f, &std::fs::read_to_string(&f).unwrap(), &opts).unwrap_or_else(|e| panic!("{e}"))
    };
    // A local composite action is expanded: not itself a `uses:` to replace.
    let imp = read("pydantic", "ci.yml");
    assert!(
        !imp.uses
            .iter()
            .any(|u| u.uses == "./.github/actions/core-build-pgo-wheel"),
        "{:?}",
        imp.uses
    );
    // Local reusable workflows are read from the project.
    let imp = read("prometheus", "ci.yml");
    assert!(
        imp.jobs.iter().any(|j| j.key.starts_with("fuzzing.")),
        "{:?}",
        imp.jobs
    );
    // Most of curl's Linux matrix runs on the host, the rest in its container.
    let imp = read("curl", "linux.yml");
    let planned = imp.jobs.iter().filter(|j| j.skipped.is_none()).count();
    assert!(planned > 40, "{planned}");
}

/// The project with local composite actions (tests/data/composite).
fn composite_project() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/composite")
}

/// Imports `src` as a workflow of the composite project.
fn import_composite(
    src: &str,
    state: &Path,
) -> Result<(tug_pipeline::github::Import, Options), ImportErrors> {
    let mut opts = options(state);
    opts.workspace = composite_project();
    let file = composite_project().join(".github/workflows/ci.yml");
    import(&file, src, &opts).map(|imp| (imp, opts))
}

#[test]
fn a_local_composite_action_is_expanded_in_place() {
    let src =
        std::fs::read_to_string(composite_project().join(".github/workflows/ci.yml")).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let (imp, opts) = import_composite(&src, tmp.path()).unwrap_or_else(|e| panic!("{e}"));
    let skipped: BTreeMap<&str, Option<&str>> = imp
        .jobs
        .iter()
        .map(|j| (j.key.as_str(), j.skipped.as_deref()))
        .collect();
    assert_eq!(skipped["build"], None, "{skipped:?}");
    // JavaScript and Docker actions of the repository are named, with why.
    let js = skipped["js"].unwrap();
    assert!(
        js.contains("`./.github/actions/node` is a JavaScript action of this repository (`using: node20`): tug runs composite actions only"),
        "{js}"
    );
    let image = skipped["image"].unwrap();
    assert!(
        image.contains("a Docker container action of this repository (`image: Dockerfile`)"),
        "{image}"
    );
    let notes: Vec<(&str, usize)> = imp
        .uses
        .iter()
        .map(|n| (n.uses.as_str(), n.at.line))
        .collect();
    assert_eq!(
        notes,
        [
            ("./.github/actions/node", 37),
            ("./.github/actions/docker", 41)
        ]
    );
    // An input the action does not declare: a warning where it is given, as GitHub warns.
    let warnings: Vec<String> = imp.warnings.iter().map(|w| w.to_string()).collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].ends_with("ci.yml:16:19: `./.github/actions/setup` has no input `colour`; its inputs are toolchain, greeting, flavour (GitHub only warns)"),
        "{warnings:?}"
    );

    let plan: serde_json::Value =
        serde_json::from_slice(&std::fs::read(opts.state_dir.join("jobs/build.json")).unwrap())
            .unwrap();
    let steps = plan["steps"].as_array().unwrap();
    // checkout; setup (tc, cache, script, greet (say, tc, end), end); again
    // (the same seven); never (say, tc, end); the last run.
    let shape: Vec<(Option<u64>, Option<u64>, Option<&str>)> = steps
        .iter()
        .map(|s| {
            (
                s["frame"].as_u64(),
                s["ends"].as_u64(),
                s["def"]["id"].as_str(),
            )
        })
        .collect();
    assert_eq!(
        shape,
        vec![
            (None, None, None),
            (Some(0), None, Some("tc")),
            (Some(0), None, Some("cache")),
            (Some(0), None, None),
            (Some(1), None, Some("say")),
            (Some(1), None, Some("tc")),
            (Some(0), Some(1), Some("greet")),
            (None, Some(0), Some("setup")),
            (Some(2), None, Some("tc")),
            (Some(2), None, Some("cache")),
            (Some(2), None, None),
            (Some(3), None, Some("say")),
            (Some(3), None, Some("tc")),
            (Some(2), Some(3), Some("greet")),
            (None, Some(2), Some("again")),
            (Some(4), None, Some("say")),
            (Some(4), None, Some("tc")),
            (None, Some(4), Some("never")),
            (None, None, None),
        ]
    );
    // The action's `uses:` is sorted as the job's own would be.
    assert_eq!(steps[2]["builtin"], "Cache");
    // Composite steps name their shell; the job's defaults are not theirs.
    assert_eq!(steps[4]["shell"][0], "sh");
    let frames = plan["frames"].as_array().unwrap();
    assert_eq!(frames.len(), 5);
    assert_eq!(frames[0]["dir"], ".github/actions/setup");
    assert_eq!(
        frames[2]["dir"], ".github/actions/setup",
        "`./dir/` is `./dir`"
    );
    assert_eq!(frames[1]["parent"], 0);
    assert_eq!(frames[3]["parent"], 2);
    assert!(frames[0]["file"]
        .as_str()
        .unwrap()
        .ends_with(".github/actions/setup/action.yml"));
    assert_eq!(frames[0]["label"], "Set up");
    assert_eq!(frames[1]["label"], "Set up / Run ./.github/actions/greet");
    let inputs = |f: usize| -> BTreeMap<String, serde_json::Value> {
        frames[f]["inputs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| (i["name"].as_str().unwrap().to_string(), i["value"].clone()))
            .collect()
    };
    // `with:` over the defaults; a literal is known now, an expression when the call starts.
    let lit = |s: &str| serde_json::json!({ "Value": s });
    let first = inputs(0);
    assert_eq!(first["toolchain"], lit("stable"));
    assert_eq!(first["greeting"], lit("world"));
    assert_eq!(first["colour"], lit("red"));
    assert_eq!(first["flavour"], lit(""), "no default: ''");
    let again = inputs(2);
    assert_eq!(again["toolchain"], lit("beta"));
    assert_eq!(
        again["greeting"]["Expr"]["text"],
        "${{ steps.setup.outputs.toolchain }}"
    );
    assert_eq!(
        inputs(1)["who"]["Expr"]["text"],
        "${{ inputs.greeting }}[${{ inputs.flavour }}]"
    );
    // The model: a step per planned step, the two caches' post steps, the job's end.
    let job = &imp.pipeline.jobs["build"];
    assert_eq!(job.steps.len(), 19 + 2 + 1);
    let names: Vec<&str> = job.steps.iter().filter_map(|s| s.name.as_deref()).collect();
    assert_eq!(names[3], "Set up / Script of the action");
    assert_eq!(names[4], "Set up / Run ./.github/actions/greet / Run echo \"said=hello ${{ inputs.who }}\" >> \"$GITHUB_OUTPUT\"");
    assert_eq!(names[7], "Set up");
    assert_eq!(names[14], "Run ./.github/actions/setup/");
}

#[test]
fn a_local_action_is_checked_at_file_line_col() {
    let tmp = tempfile::tempdir().unwrap();
    let call = |uses: &str| {
        format!("on: push\njobs:\n  build:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo\n      - uses: {uses}\n")
    };
    let err = |uses: &str| match import_composite(&call(uses), tmp.path()) {
        Ok(_) => panic!("{uses} accepted"),
        Err(e) => e.to_string(),
    };
    // A `run` step without `shell`: at the step, in the action's file.
    let e = err("./.github/actions/noshell");
    assert!(
        e.ends_with(".github/actions/noshell/action.yml:8:7: a `run` step of a composite action needs `shell` (bash, sh, python, pwsh)"),
        "{e}"
    );
    // No action.yml: at the `uses:`, naming what was tried.
    let e = err("./.github/actions/missing");
    let dir = composite_project().join(".github/actions/missing");
    assert_eq!(
        e,
        format!(
            "{}:7:15: `./.github/actions/missing` is not an action: neither {}/action.yml nor {}/action.yaml exists",
            composite_project().join(".github/workflows/ci.yml").display(),
            dir.display(),
            dir.display()
        )
    );
    // A mistake in action.yml: where it is.
    let e = err("./.github/actions/broken");
    assert!(
        e.ends_with(".github/actions/broken/action.yml:7:7: unknown key `wiht` in a step (did you mean `with`?)"),
        "{e}"
    );
    // A required input not given is '', as on GitHub: a warning, not an error.
    let (imp, _) = import_composite(
        "on: push\njobs:\n  build:\n    runs-on: ubuntu-latest\n    steps:\n      - uses: ./.github/actions/greet\n",
        tmp.path(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(imp.jobs[0].skipped.is_none(), "{:?}", imp.jobs);
    assert!(
        imp.warnings[0].to_string().ends_with(
            "ci.yml:6:15: the step does not give `./.github/actions/greet` its required input `who`: it is '' (GitHub does not check)"
        ),
        "{:?}",
        imp.warnings
    );
}

#[test]
fn a_composite_actions_remote_action_is_sorted_as_the_jobs_own() {
    // pydantic's PGO wheel action calls PyO3/maturin-action: named at its
    // line in action.yml, and the job is left out with the action it came through.
    let tmp = tempfile::tempdir().unwrap();
    let mut opts = options(tmp.path());
    opts.workspace = data().join("pydantic");
    // uv on the host: the job's own steps run here, the action's do not.
    opts.on_path = Box::new(|t| matches!(t, "bash" | "sh" | "rustc" | "uv"));
    let f = data().join("pydantic/.github/workflows/ci.yml");
    let imp = import(&f, &std::fs::read_to_string(&f).unwrap(), &opts).unwrap();
    let note = imp
        .uses
        .iter()
        .find(|u| {
            u.uses.starts_with("PyO3/maturin-action@")
                && u.file
                    .ends_with(".github/actions/core-build-pgo-wheel/action.yml")
        })
        .unwrap();
    assert_eq!((note.at.line, note.at.col), (28, 13));
    let job = imp.jobs.iter().find(|j| {
        j.skipped
            .as_deref()
            .is_some_and(|w| w.contains("(a step of `./.github/actions/core-build-pgo-wheel`)"))
    });
    assert!(job.is_some(), "{:#?}", imp.jobs);
}

#[test]
fn real_composite_actions_are_expanded() {
    let tmp = tempfile::tempdir().unwrap();
    let read = |repo: &str, file: &str, src: Option<&str>| {
        let mut opts = options(tmp.path());
        opts.workspace = data().join(repo);
        let f = data().join(repo).join(".github/workflows").join(file);
        let src = src.map_or_else(|| std::fs::read_to_string(&f).unwrap(), str::to_string);
        let imp = import(&f, &src, &opts).unwrap_or_else(|e| panic!("{e}"));
        (imp, opts)
    };
    let plan = |opts: &Options, key: &str| -> serde_json::Value {
        let p = opts.state_dir.join("jobs").join(format!("{key}.json"));
        serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
    };
    let inputs = |frame: &serde_json::Value| -> BTreeMap<String, serde_json::Value> {
        frame["inputs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| (i["name"].as_str().unwrap().to_string(), i["value"].clone()))
            .collect()
    };
    let lit = |s: &str| serde_json::json!({ "Value": s });

    // aws-lambda-rust-runtime: one action called three times a job, with
    // the toolchain of the matrix; its remote actions have built-ins here.
    let (imp, opts) = read("aws-lambda-rust-runtime", "build-runtime.yml", None);
    for key in ["build-runtime (1.81.0)", "build-runtime (stable)"] {
        let j = imp.jobs.iter().find(|j| j.key == key).unwrap();
        assert_eq!(j.skipped, None, "{key}");
    }
    let p = plan(&opts, "build-runtime-stable");
    let frames = p["frames"].as_array().unwrap();
    let packages: Vec<serde_json::Value> = frames
        .iter()
        .map(|f| inputs(f)["package"].clone())
        .collect();
    assert_eq!(
        packages,
        [
            lit("lambda_runtime_api_client"),
            lit("lambda_runtime"),
            lit("lambda_http")
        ]
    );
    let first = inputs(&frames[0]);
    assert_eq!(first["toolchain"]["Expr"]["text"], "${{ matrix.toolchain}}");
    assert_eq!(first["run-tests"], lit("true"), "`default: true`, a string");
    let builtins: Vec<&serde_json::Value> = p["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["frame"] == 0)
        .map(|s| &s["builtin"])
        .collect();
    assert_eq!(builtins[0], "RustToolchain");
    assert_eq!(builtins[1], "RustCache");
    let (_, opts) = read(
        "aws-lambda-rust-runtime",
        "build-integration-test.yml",
        None,
    );
    let p = plan(&opts, "build-runtime-1.81.0");
    assert_eq!(inputs(&p["frames"][0])["run-tests"], lit("false"));

    // bevy: its jobs are left out for other reasons, never for the local action.
    let (imp, _) = read("bevy", "ci.yml", None);
    for j in &imp.jobs {
        let why = j.skipped.as_deref().unwrap_or("");
        assert!(!why.contains("install-linux-deps"), "{}: {why}", j.key);
    }
    assert!(!imp
        .uses
        .iter()
        .any(|u| u.uses.contains("install-linux-deps")));
    // Its action as its own comment shows it called.
    let (imp, opts) = read(
        "bevy",
        "ci.yml",
        Some("on: push\njobs:\n  deps:\n    runs-on: ubuntu-latest\n    steps:\n      - uses: ./.github/actions/install-linux-deps\n        with:\n          alsa: false\n          wayland: true\n"),
    );
    assert_eq!(imp.jobs[0].skipped, None, "{:?}", imp.jobs);
    let p = plan(&opts, "deps");
    let got = inputs(&p["frames"][0]);
    assert_eq!(got["alsa"], lit("false"));
    assert_eq!(got["wayland"], lit("true"));
    assert_eq!(got["udev"], lit("true"));
    assert_eq!(got["xkb"], lit("false"));
    assert_eq!(
        p["steps"][0]["def"]["condition"]["text"],
        "${{ runner.os == 'linux' }}"
    );
}
