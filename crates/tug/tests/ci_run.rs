//! `tug ci run` on a GitHub workflow, on the host: which steps ran, which
//! were skipped and why; GITHUB_OUTPUT/ENV/PATH, matrix, job outputs,
//! artifacts, continue-on-error and failure() as on GitHub.

use std::process::Command;

#[test]
fn a_workflow_runs_on_the_host() {
    let d = tempfile::tempdir().unwrap();
    let wf = d.path().join(".github/workflows");
    std::fs::create_dir_all(&wf).unwrap();
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/github-ci.yml"),
        wf.join("ci.yml"),
    )
    .unwrap();
    let state = d.path().join("state");
    let out = Command::new(env!("CARGO_BIN_EXE_tug"))
        .args(["ci", "run", ".github/workflows/ci.yml"])
        .current_dir(d.path())
        .env("XDG_STATE_HOME", &state)
        .env("TUG_STATE_DIR", &state)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let all = format!("{stdout}\n{stderr}");
    // `after` fails on purpose.
    assert_eq!(out.status.code(), Some(1), "{all}");
    // The unsupported action is listed before the run, at its line, and its job left out.
    assert!(
        stderr.contains("ci.yml:51:15: `some/deploy@v1` has no built-in equivalent"),
        "{all}"
    );
    assert!(
        stderr.contains("left out  deploy: needs `some/deploy@v1`"),
        "{all}"
    );
    // GITHUB_OUTPUT, GITHUB_ENV, GITHUB_PATH and the matrix.
    assert!(
        stderr.contains("build (1) | got 1.1 set-by-step hello"),
        "{all}"
    );
    assert!(
        stderr.contains("build (2) | got 1.2 set-by-step hello"),
        "{all}"
    );
    assert!(stderr.contains("tool-ran"), "{all}");
    // Steps skipped, with the reason; continue-on-error; failure().
    assert!(
        stdout.contains("skipped   skipped on 2 (`if: matrix.n == 1` is false)"),
        "{all}"
    );
    assert!(
        stdout.contains("success   fails softly (exited with 3)"),
        "{all}"
    );
    assert!(stdout.contains("failure   breaks (exited with 1)"), "{all}");
    assert!(
        stdout.contains("skipped   not after a failure (a step before it failed)"),
        "{all}"
    );
    assert!(stdout.contains("success   on failure"), "{all}");
    // Job outputs through `needs`, artifacts between jobs.
    assert!(stderr.contains("after | needs 1."), "{all}");
    assert!(stderr.contains("after | report"), "{all}");
    assert!(
        stdout.contains("succeeded    build (1)") && stdout.contains("failed       after"),
        "{all}"
    );
}

#[test]
fn generate_writes_a_workflow() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(
        d.path().join("tug.yaml"),
        "name: gen\nservices:\n  web:\n    image: nginx:1\npipelines:\n  ci:\n    jobs:\n      test: { steps: [echo ok] }\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tug"))
        .args(["ci", "generate", "github", "--out", "-"])
        .current_dir(d.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("tug pipeline run ci"), "{text}");
    assert!(
        !text.contains("build --push"),
        "no service builds, nothing to push:\n{text}"
    );
}
