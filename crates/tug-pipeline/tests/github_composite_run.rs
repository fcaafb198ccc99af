//! The step runner on a job that calls local composite actions
//! (tests/data/composite): each step of the model run in order, as the
//! executor runs them, on the host. Inputs, env, `if:`, outputs through
//! the caller's id, a nested action, and a failure with and without the
//! caller's `continue-on-error`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use tug_pipeline::github::{actions, import, runner, Options};

/// The step runner runs in the current directory (the job's workspace).
static CWD: Mutex<()> = Mutex::new(());

struct Run {
    _tmp: tempfile::TempDir,
    ws: PathBuf,
    state: PathBuf,
    /// Each model step's exit code, by name.
    codes: Vec<(String, i32)>,
}

impl Run {
    fn log(&self) -> String {
        std::fs::read_to_string(self.ws.join("log.txt")).unwrap_or_default()
    }
    fn result(&self, job: &str) -> runner::JobResult {
        runner::results(&self.state).remove(job).unwrap()
    }
    fn code(&self, name: &str) -> i32 {
        self.codes
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no step {name} in {:?}", self.codes))
            .1
    }
}

/// Copies the project, adds `extra` files, imports `workflow` and runs `job`.
fn run(workflow: &str, extra: &[(&str, &str)], job: &str) -> Run {
    let tmp = tempfile::tempdir().unwrap();
    let ws = tmp.path().join("ws");
    let project = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/composite");
    actions::copy_tree(&project, &ws).unwrap();
    for (path, text) in extra {
        let p = ws.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    let state = tmp.path().join("state");
    let opts = Options {
        workspace: ws.clone(),
        event: "push".into(),
        inputs: BTreeMap::new(),
        platforms: BTreeMap::new(),
        step_command: vec!["tug".into(), "ci".into(), "github-step".into()],
        state_dir: state.clone(),
        cache_dir: tmp.path().join("cache"),
        on_path: Box::new(actions::on_path),
    };
    let file = ws.join(".github/workflows").join(workflow);
    let src = std::fs::read_to_string(&file).unwrap();
    let imp = import(&file, &src, &opts).unwrap_or_else(|e| panic!("{e}"));
    let model = &imp.pipeline.jobs[job];
    let _cwd = CWD.lock().unwrap_or_else(|e| e.into_inner());
    std::env::set_current_dir(&ws).unwrap();
    let mut codes = Vec::new();
    for step in &model.steps {
        // `tug ci github-step STATE JOB WHICH`: the last word says which step.
        let which = step.run.rsplit(' ').next().unwrap();
        let code =
            runner::run_step(&state, job, which).unwrap_or_else(|e| panic!("step {which}: {e}"));
        codes.push((step.name.clone().unwrap_or_default(), code));
    }
    Run {
        _tmp: tmp,
        ws,
        state,
        codes,
    }
}

#[test]
fn composite_actions_run_in_place_with_their_inputs_env_and_outputs() {
    let r = run("ci.yml", &[], "build");
    assert!(r.codes.iter().all(|(_, c)| *c == 0), "{:?}", r.codes);
    let ws = r.ws.display().to_string();
    assert_eq!(
        r.log(),
        format!(
            // The script ran in the action's directory with the caller's and
            // the job's env; only the first call's toolchain is `stable`.
            "x.sh in setup FOO=stable CALLER=c JOBVAR=j action_path={ws}/.github/actions/setup\n\
             setup=stable said=hello world[]\n\
             again=beta said=hello stable[]\n\
             never=[skipped] tc=[]\n"
        )
    );
    let result = r.result("build");
    assert_eq!(result.result, "success");
    let by_name: BTreeMap<&str, (&str, &str)> = result
        .steps
        .iter()
        .map(|s| (s.name.as_str(), (s.conclusion.as_str(), s.note.as_str())))
        .collect();
    assert_eq!(
        by_name["Run ./.github/actions/setup/ / Script of the action"],
        (
            "skipped",
            "`if: ${{ inputs.toolchain == 'stable' }}` is false"
        )
    );
    assert_eq!(
        by_name["Run ./.github/actions/greet / Run echo \"tc=greet\" >> \"$GITHUB_OUTPUT\""],
        (
            "skipped",
            "`if: github.event_name == 'pull_request'` is false"
        )
    );
    let setup = result.steps.iter().find(|s| s.name == "Set up").unwrap();
    assert_eq!(setup.outputs["toolchain"], "stable");
    assert_eq!(setup.outputs["cache-hit"], "false");
    assert_eq!(setup.outputs["said"], "hello world[]");
}

const FAILING: &str = r#"name: fails
inputs:
  code: { description: the exit code, default: "3" }
outputs:
  before: { description: set before the failure, value: "${{ steps.before.outputs.v }}" }
runs:
  using: composite
  steps:
    - id: before
      run: echo v=1 >> "$GITHUB_OUTPUT"
      shell: sh
    - run: exit ${{ inputs.code }}
      shell: sh
    - name: not after the failure
      run: echo never >> "$GITHUB_WORKSPACE/log.txt"
      shell: sh
    - name: cleanup
      if: failure()
      run: echo "cleanup after ${{ steps.before.outputs.v }}" >> "$GITHUB_WORKSPACE/log.txt"
      shell: sh
"#;

const SOFT: &str = r#"on: push
jobs:
  soft:
    runs-on: ubuntu-latest
    steps:
      - id: f
        name: Fails
        uses: ./.github/actions/fails
        continue-on-error: true
      - run: echo "after ${{ steps.f.outcome }} ${{ steps.f.conclusion }} ${{ steps.f.outputs.before }}" >> "$GITHUB_WORKSPACE/log.txt"
        shell: bash
  hard:
    runs-on: ubuntu-latest
    steps:
      - id: f
        name: Fails
        uses: ./.github/actions/fails
      - name: after
        run: echo after >> "$GITHUB_WORKSPACE/log.txt"
        shell: bash
      - name: on failure
        if: failure() && steps.f.outcome == 'failure'
        run: echo "saw ${{ steps.f.outputs.before }}" >> "$GITHUB_WORKSPACE/log.txt"
        shell: bash
"#;

#[test]
fn a_failing_composite_action_fails_its_caller_unless_it_may() {
    let files = [
        (".github/actions/fails/action.yml", FAILING),
        (".github/workflows/soft.yml", SOFT),
    ];
    // The caller's continue-on-error: the job goes on and succeeds.
    let r = run("soft.yml", &files, "soft");
    assert!(r.codes.iter().all(|(_, c)| *c == 0), "{:?}", r.codes);
    assert_eq!(r.log(), "cleanup after 1\nafter failure success 1\n");
    assert_eq!(r.result("soft").result, "success");
    // Without it, the failed step and the call fail the job.
    let r = run("soft.yml", &files, "hard");
    assert_eq!(r.code("Fails / Run exit ${{ inputs.code }}"), 1);
    assert_eq!(r.code("Fails"), 1);
    assert_eq!(r.code("after"), 0, "skipped");
    assert_eq!(r.log(), "cleanup after 1\nsaw 1\n");
    let result = r.result("hard");
    assert_eq!(result.result, "failure");
    let fails = result.steps.iter().find(|s| s.name == "Fails").unwrap();
    assert_eq!(
        (fails.outcome.as_str(), fails.note.as_str()),
        ("failure", "a step of `./.github/actions/fails` failed")
    );
}
