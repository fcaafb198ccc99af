//! `tug pipeline`: run, runs, logs, reports, a cycle error, and a tug
//! stopped (the run cancelled) or killed (interrupted) mid-run, no
//! container left either way.

mod common;

use common::project::Project;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn run_runs_logs_and_reports() {
    let p = Project::with_pipelines(
        "plcli",
        "  ci:\n    jobs:\n      build: { steps: [\"echo built > out.txt\", \"echo building\"], artifacts: [out.txt] }\n      test: { needs: [build], steps: [cat out.txt] }\n",
    );
    let junit = p.dir.path().join("junit.xml");
    let out = p.run(&[
        "pipeline",
        "run",
        "-o",
        "json",
        "--junit",
        junit.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["status"], "succeeded");
    assert_eq!(report["jobs"][1]["name"], "test");
    // Live output goes to stderr with a prefix per job.
    assert!(
        text(&out.stderr).contains("test | built"),
        "{}",
        text(&out.stderr)
    );
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(
        xml.contains("<testsuite name=\"") && xml.contains("classname=\"test\""),
        "{xml}"
    );
    let id = report["id"].as_i64().unwrap().to_string();
    let logs = p.run(&["pipeline", "logs", &id, "build"]);
    assert!(logs.status.success(), "{}", text(&logs.stderr));
    assert!(text(&logs.stdout).contains("building"));
    let runs = p.runs();
    assert_eq!(runs[0]["id"].as_i64().unwrap().to_string(), id);
    assert_eq!(runs[0]["status"], "succeeded");
    // Table output: a summary with every job.
    let out = p.run(&["pipeline", "run", "--job", "build"]);
    assert!(out.status.success());
    let table = text(&out.stdout);
    assert!(
        table.contains("build") && !table.contains("test "),
        "{table}"
    );
    let bad = p.run(&["pipeline", "run", "--job", "nope"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(text(&bad.stderr).contains("no job `nope` in pipeline `ci`: it has build, test"));
}

#[test]
fn a_needs_cycle_is_named_at_file_line_col() {
    let p = Project::with_pipelines(
        "plcyc",
        "  ci:\n    jobs:\n      a: { needs: [b], steps: [x] }\n      b: { needs: [a], steps: [x] }\n",
    );
    let out = p.run(&["pipeline", "run"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("tug.yaml:5:20: `needs` cycle: a -> b -> a"),
        "{err}"
    );
}

fn busybox() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let engine = tug_runtime::docker::DockerRuntime::connect().await.unwrap();
        tug_runtime::testing::busybox_image(&engine).await;
    });
}

fn wait_for(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let t = Instant::now();
    while t.elapsed() < limit {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

const LONG: &str = "  ci:\n    jobs:\n      long:\n        image: tug-test/busybox:1\n        shell: [/bin/busybox, sh, -e, -c]\n        steps: [sleep 300]\n";

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
}

fn start_long(p: &Project) -> std::process::Child {
    let err_file = p.state().with_extension("stderr");
    let child = p
        .cmd(&["pipeline", "run"])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&err_file).unwrap())
        .spawn()
        .unwrap();
    assert!(
        wait_for(Duration::from_secs(60), || !p.containers("ci").is_empty()),
        "the step's container never appeared: {}",
        std::fs::read_to_string(&err_file).unwrap_or_default()
    );
    child
}

#[test]
fn stopping_tug_removes_the_container_and_ends_the_run_cancelled() {
    if !common::engine() {
        return;
    }
    busybox();
    let p = Project::with_pipelines("plterm", LONG);
    let mut child = start_long(&p);
    signal(child.id(), "-TERM");
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    assert!(p.containers("ci").is_empty(), "{:?}", p.containers("ci"));
    assert_eq!(p.runs()[0]["status"], "cancelled");
}

#[test]
fn killing_tug_leaves_nothing_after_the_next_command_and_marks_the_run_interrupted() {
    if !common::engine() {
        return;
    }
    busybox();
    let p = Project::with_pipelines("plkill", LONG);
    let mut child = start_long(&p);
    signal(child.id(), "-KILL");
    let _ = child.wait();
    // SIGKILL leaves the container; the next pipeline command sweeps it.
    let runs = p.runs();
    assert_eq!(runs[0]["status"], "interrupted", "{runs:#}");
    // Another test's sweep may be removing it at the same moment: allow
    // the engine a moment to finish that removal.
    assert!(
        wait_for(Duration::from_secs(5), || p.containers("ci").is_empty()),
        "{:?}",
        p.containers("ci")
    );
}

#[test]
fn watch_reruns_only_the_jobs_whose_paths_match() {
    let p = Project::with_pipelines(
        "plwatch",
        "  ci:\n    jobs:\n      test: { paths: [\"src/**\"], steps: [echo test] }\n      docs: { paths: [\"docs/**\"], steps: [echo docs] }\n      ship: { needs: [test], paths: [Dockerfile], steps: [echo ship] }\n",
    );
    std::fs::create_dir_all(p.dir.path().join("docs")).unwrap();
    std::fs::create_dir_all(p.dir.path().join("target")).unwrap();
    std::fs::write(p.dir.path().join(".gitignore"), "target/\n").unwrap();
    let mut child = p
        .cmd(&["pipeline", "watch", "--debounce", "200ms"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let count = || p.runs().as_array().unwrap().len();
    assert!(
        wait_for(Duration::from_secs(30), || count() >= 1),
        "no first run"
    );
    // Ignored files do not trigger a run; a docs change reruns docs only.
    std::thread::sleep(Duration::from_millis(500));
    std::fs::write(p.dir.path().join("target/out"), "x").unwrap();
    std::fs::write(p.dir.path().join("docs/index.md"), "# docs").unwrap();
    assert!(
        wait_for(Duration::from_secs(30), || count() >= 2),
        "no rerun"
    );
    std::thread::sleep(Duration::from_millis(500));
    let all = p.runs();
    signal(child.id(), "-INT");
    let _ = child.wait();
    assert_eq!(all.as_array().unwrap().len(), 2, "{all:#}");
    let jobs: Vec<&str> = all[0]["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["name"].as_str().unwrap())
        .collect();
    assert_eq!(jobs, ["docs"]);
    // A source change reruns test and ship, which needs it.
    assert_eq!(all[1]["jobs"].as_array().unwrap().len(), 3);
}
