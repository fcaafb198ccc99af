//! Cancellation as GitHub Actions has it: a run cancelled by a newer run of
//! its concurrency group, or by SIGTERM, stops the running step; of the
//! steps after it only `if: cancelled()` / `always()` ones run, the others
//! are skipped; a `needs` job with `if: cancelled()` still runs; the run's
//! statuses say cancelled and skipped, in `tug pipeline runs` (table and
//! `-o json`) and in the JUnit report, which `--junit` also writes.

mod common;

use common::project::{Project, DEPLOY_ON_DISPATCH};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Follows [`DEPLOY_ON_DISPATCH`].
const WORKFLOW: &str = r#"concurrency:
  group: deploy
  cancel-in-progress: true
jobs:
  ship:
    runs-on: ubuntu-latest
    steps:
      - name: long
        run: echo started >> "$GITHUB_WORKSPACE/started.txt"; sleep ${{ inputs.wait }}
      - name: next
        run: echo "next ${{ inputs.wait }}" >> "$GITHUB_WORKSPACE/next.txt"
      - name: cleanup
        if: cancelled()
        run: echo "cleanup ${{ job.status }} ${{ inputs.wait }}" >> "$GITHUB_WORKSPACE/cleanup.txt"
      - name: report
        if: always()
        run: echo "always ${{ inputs.wait }}" >> "$GITHUB_WORKSPACE/always.txt"
  notify:
    needs: ship
    if: cancelled()
    runs-on: ubuntu-latest
    steps:
      - run: echo "notified ${{ inputs.wait }}" >> "$GITHUB_WORKSPACE/notified.txt"
  deploy:
    needs: ship
    runs-on: ubuntu-latest
    steps:
      - run: echo "deployed ${{ inputs.wait }}" >> "$GITHUB_WORKSPACE/deployed.txt"
"#;

/// The workflow in `<project>/deploy`, whose runs `tug pipeline run --from`
/// keeps under the stack `ci-deploy` (its tug.yaml, for `pipeline runs`).
fn setup(prefix: &str) -> (Project, PathBuf) {
    let p = Project::new(prefix, "");
    let dir = p.path().join("deploy");
    let wf = dir.join(".github/workflows/deploy.yml");
    std::fs::create_dir_all(wf.parent().unwrap()).unwrap();
    std::fs::write(&wf, format!("{DEPLOY_ON_DISPATCH}{WORKFLOW}")).unwrap();
    std::fs::write(dir.join("tug.yaml"), "name: ci-deploy\n").unwrap();
    (p, dir)
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

/// `tug pipeline run --from` the workflow with `wait=300`, and `extra`
/// arguments; returns once its long step has started.
fn start_long(
    p: &Project,
    dir: &Path,
    log: &str,
    extra: &[&str],
) -> (std::process::Child, PathBuf) {
    let wf = dir.join(".github/workflows/deploy.yml");
    let wf = wf.to_str().unwrap();
    let mut args = vec!["pipeline", "run", "--from", wf, "--input", "wait=300"];
    args.extend(extra);
    let (child, err) = p.spawn(&args, log);
    let started = dir.join("started.txt");
    common::wait_until("the long step started", || {
        read(&started).lines().count() == 1
    });
    (child, err)
}

/// `tug pipeline runs -o json` of the workflow's stack.
fn runs(p: &Project, dir: &Path) -> serde_json::Value {
    let out = p
        .cmd(&["pipeline", "runs", "-o", "json"])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", common::text(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn statuses(run: &serde_json::Value, job: &str) -> (String, Vec<(String, String)>) {
    let j = run["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["name"] == job)
        .unwrap_or_else(|| panic!("no job {job} in {run:#}"));
    let steps = j["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_string(),
                s["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    (j["status"].as_str().unwrap().to_string(), steps)
}

/// The lines the run with `wait=300` wrote to `file`.
fn long_run_wrote(dir: &Path, file: &str) -> Vec<String> {
    read(&dir.join(file))
        .lines()
        .filter(|l| l.ends_with(" 300"))
        .map(str::to_string)
        .collect()
}

/// What the cancelled run (`wait=300`) shows.
fn assert_cancelled_run(p: &Project, dir: &Path, run: &serde_json::Value) {
    // The cleanup step ran, with `cancelled()` true; the next step did not.
    assert_eq!(
        long_run_wrote(dir, "cleanup.txt"),
        ["cleanup cancelled 300"]
    );
    assert_eq!(long_run_wrote(dir, "always.txt"), ["always 300"]);
    assert!(long_run_wrote(dir, "next.txt").is_empty());
    assert_eq!(long_run_wrote(dir, "notified.txt"), ["notified 300"]);
    assert!(long_run_wrote(dir, "deployed.txt").is_empty());
    let (ship, steps) = statuses(run, "ship");
    assert_eq!(ship, "cancelled", "{run:#}");
    let want = [
        ("long", "cancelled"),
        ("next", "skipped"),
        ("cleanup", "succeeded"),
        ("report", "succeeded"),
    ];
    for (name, status) in want {
        assert!(
            steps.iter().any(|(n, s)| n == name && s == status),
            "{name} should be {status}: {steps:?}"
        );
    }
    assert_eq!(statuses(run, "notify").0, "succeeded", "{run:#}");
    assert_eq!(statuses(run, "deploy").0, "cancelled", "{run:#}");
    // The JUnit report says the same.
    let id = run["id"].as_i64().unwrap();
    let junit = read(
        &p.state()
            .join("ci-deploy/runs")
            .join(id.to_string())
            .join("junit.xml"),
    );
    assert!(junit.contains(r#"failures="0""#), "{junit}");
    for (name, status) in [("long", "cancelled"), ("next", "skipped")] {
        let at = junit
            .find(&format!(r#"classname="ship" name="{name}""#))
            .unwrap_or_else(|| panic!("no testcase {name}: {junit}"));
        assert!(
            junit[at..].contains(&format!(r#"<skipped message="{status}: "#)),
            "{junit}"
        );
    }
}

#[test]
fn a_newer_run_of_the_group_cancels_and_cleanup_steps_still_run() {
    let (p, dir) = setup("plcxgroup");
    let (mut first, first_err) = start_long(&p, &dir, "first.err", &[]);
    let wf = dir.join(".github/workflows/deploy.yml");
    let second = p.run(&["pipeline", "run", "--from", wf.to_str().unwrap()]);
    assert!(second.status.success(), "{}", common::text(&second));
    let code = first.wait().unwrap().code();
    assert_eq!(code, Some(1), "{}", read(&first_err));
    // The newer run ran its own steps: no cleanup, `notify` skipped.
    let runs = runs(&p, &dir);
    assert_eq!(runs[0]["status"], "succeeded", "{runs:#}");
    assert_eq!(statuses(&runs[0], "notify").0, "skipped", "{runs:#}");
    assert_eq!(runs[1]["status"], "cancelled", "{runs:#}");
    assert_cancelled_run(&p, &dir, &runs[1]);
    assert_eq!(read(&dir.join("started.txt")).lines().count(), 2);
    assert_eq!(read(&dir.join("deployed.txt")), "deployed 0\n");
    assert_eq!(read(&dir.join("next.txt")), "next 0\n");
    assert!(!read(&dir.join("cleanup.txt")).contains(" 0"));
    assert!(!read(&dir.join("notified.txt")).contains(" 0"));
}

#[test]
fn sigterm_cancels_and_cleanup_steps_still_run() {
    let (p, dir) = setup("plcxterm");
    // --junit and --report are honoured with --from too.
    let (mut child, err) = start_long(
        &p,
        &dir,
        "term.err",
        &["--junit", "term.xml", "--report", "term.json"],
    );
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let code = child.wait().unwrap().code();
    assert_eq!(code, Some(130), "{}", read(&err));
    let runs = runs(&p, &dir);
    assert_eq!(runs[0]["status"], "cancelled", "{runs:#}");
    assert_cancelled_run(&p, &dir, &runs[0]);
    let id = runs[0]["id"].as_i64().unwrap();
    let table = p
        .cmd(&["pipeline", "runs"])
        .current_dir(&dir)
        .output()
        .unwrap();
    let table = common::text(&table);
    assert!(
        table
            .lines()
            .any(|l| l.contains(&format!(" {id} ")) && l.contains("cancelled")),
        "{table}"
    );
    let report: serde_json::Value =
        serde_json::from_str(&read(&p.path().join("term.json"))).unwrap();
    assert_eq!(
        (report["id"].as_i64(), report["status"].as_str()),
        (Some(id), Some("cancelled")),
        "{report:#}"
    );
    let kept = p.state().join("ci-deploy/runs").join(id.to_string());
    assert_eq!(
        read(&p.path().join("term.xml")),
        read(&kept.join("junit.xml"))
    );
}
