//! `concurrency:` across tug processes: a newer run of a group cancels the
//! running one (its container removed, the run marked cancelled) or waits
//! for it; GitHub's workflow and job `concurrency:` through `tug ci run`.

mod common;

use common::project::{Project, DEPLOY_ON_DISPATCH};
use std::path::Path;
use std::time::Duration;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

fn wait_for(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let t = std::time::Instant::now();
    while t.elapsed() < limit {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out waiting for {what}");
}

#[test]
fn a_newer_run_cancels_the_running_one_and_removes_its_container() {
    if !common::engine() {
        return;
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let engine = tug_runtime::docker::DockerRuntime::connect().await.unwrap();
        tug_runtime::testing::busybox_image(&engine).await;
    });
    let p = Project::new(
        "plccx",
        "pipelines:\n  slow:\n    concurrency: { group: deploy, cancel_in_progress: true }\n    jobs:\n      long:\n        image: tug-test/busybox:1\n        shell: [/bin/busybox, sh, -e, -c]\n        steps: [sleep 300]\n      after: { needs: [long], steps: [echo after] }\n  fast:\n    concurrency: { group: deploy, cancel_in_progress: true }\n    jobs:\n      quick: { steps: [echo quick] }\n",
    );
    let (mut slow, slow_err) = p.spawn(&["pipeline", "run", "slow"], "slow.err");
    wait_for("the slow run's container", Duration::from_secs(60), || {
        !p.containers("slow").is_empty()
    });
    let fast = p.run(&["pipeline", "run", "fast"]);
    assert!(fast.status.success(), "{}", text(&fast.stderr));
    let code = slow.wait().unwrap().code();
    assert_eq!(code, Some(1), "{}", read(&slow_err));
    assert!(
        p.containers("slow").is_empty(),
        "{:?}",
        p.containers("slow")
    );
    let runs = p.runs();
    assert_eq!(runs[0]["pipeline"], "fast", "{runs:#}");
    assert_eq!(runs[0]["status"], "succeeded", "{runs:#}");
    assert_eq!(runs[1]["pipeline"], "slow", "{runs:#}");
    assert_eq!(runs[1]["status"], "cancelled", "{runs:#}");
    let out = read(&slow_err);
    assert!(
        out.contains("a newer run of the concurrency group `deploy` cancelled this one"),
        "{out}"
    );
}

#[test]
fn without_cancel_in_progress_a_newer_run_waits_for_the_running_one() {
    let p = Project::new("plccq", "");
    let order = p.path().join("order.txt");
    let o = order.display();
    std::fs::write(
        p.path().join("tug.yaml"),
        format!(
            "name: {}\npipelines:\n  slow:\n    concurrency: release\n    jobs:\n      a: {{ steps: [\"echo a-start >> {o}\", sleep 2, \"echo a-end >> {o}\"] }}\n  fast:\n    concurrency: release\n    jobs:\n      b: {{ steps: [\"echo b >> {o}\"] }}\n",
            p.name
        ),
    )
    .unwrap();
    let (mut slow, slow_err) = p.spawn(&["pipeline", "run", "slow"], "slow.err");
    wait_for("the slow run to start", Duration::from_secs(30), || {
        read(&order).contains("a-start")
    });
    let fast = p.run(&["pipeline", "run", "fast"]);
    assert!(fast.status.success(), "{}", text(&fast.stderr));
    assert!(
        text(&fast.stderr).contains("waiting for the concurrency group `release`"),
        "{}",
        text(&fast.stderr)
    );
    assert!(slow.wait().unwrap().success(), "{}", read(&slow_err));
    assert_eq!(read(&order), "a-start\na-end\nb\n");
}

/// Follows [`DEPLOY_ON_DISPATCH`].
const WORKFLOW: &str = r#"concurrency:
  group: ${{ github.workflow }}-${{ github.ref }}
  cancel-in-progress: true
jobs:
  ship:
    runs-on: ubuntu-latest
    steps:
      - run: echo started >> "$GITHUB_WORKSPACE/started.txt"
      - run: sleep ${{ inputs.wait }}
      - run: echo shipped
"#;

#[test]
fn ci_run_honours_a_workflow_s_concurrency_group() {
    let p = Project::new("plccgh", "");
    let wf = p.path().join(".github/workflows/deploy.yml");
    std::fs::create_dir_all(wf.parent().unwrap()).unwrap();
    std::fs::write(&wf, format!("{DEPLOY_ON_DISPATCH}{WORKFLOW}")).unwrap();
    let file = wf.display().to_string();
    let (mut first, first_err) = p.spawn(&["ci", "run", &file, "--input", "wait=300"], "first.err");
    let started = p.path().join("started.txt");
    wait_for("the first run's step", Duration::from_secs(60), || {
        read(&started).lines().count() == 1
    });
    let second = p.run(&["ci", "run", &file]);
    assert!(second.status.success(), "{}", text(&second.stderr));
    assert!(text(&second.stdout).contains("succeeded    ship"));
    let status = first.wait().unwrap();
    assert_eq!(status.code(), Some(1), "{}", read(&first_err));
    let out = read(&p.path().join("first.err.out"));
    assert!(out.contains("cancelled    ship"), "{out}");
    assert_eq!(read(&started).lines().count(), 2);
}

const JOBS_IN_ONE_GROUP: &str = r#"on: push
jobs:
  a:
    runs-on: ubuntu-latest
    concurrency: one-at-a-time
    steps:
      - run: echo a-start >> "$GITHUB_WORKSPACE/order.txt"; sleep 1; echo a-end >> "$GITHUB_WORKSPACE/order.txt"
  b:
    runs-on: ubuntu-latest
    concurrency: one-at-a-time
    steps:
      - run: echo b-start >> "$GITHUB_WORKSPACE/order.txt"; sleep 1; echo b-end >> "$GITHUB_WORKSPACE/order.txt"
"#;

#[test]
fn jobs_of_one_group_never_overlap() {
    let p = Project::new("plccjob", "");
    let wf = p.path().join(".github/workflows/ci.yml");
    std::fs::create_dir_all(wf.parent().unwrap()).unwrap();
    std::fs::write(&wf, JOBS_IN_ONE_GROUP).unwrap();
    let out = p.run(&["ci", "run", &wf.display().to_string(), "--parallelism", "2"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let order = read(&p.path().join("order.txt"));
    let lines: Vec<&str> = order.lines().collect();
    assert_eq!(lines.len(), 4, "{order}");
    // Each job's start is followed by its own end.
    assert_eq!(lines[0].replace("start", "end"), lines[1], "{order}");
    assert_eq!(lines[2].replace("start", "end"), lines[3], "{order}");
}
