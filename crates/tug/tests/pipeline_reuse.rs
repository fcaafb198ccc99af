//! A GitHub workflow that calls a local reusable workflow runs it on the
//! host through `tug ci run`: inputs typed with defaults, secrets
//! inherited or mapped, its outputs passed back to the jobs that need the
//! caller; a remote reusable workflow is left out with the reason.

mod common;

use common::tug;
use std::path::Path;

const CALLER: &str = r#"on: push
jobs:
  build:
    uses: ./.github/workflows/build.yml
    with: { target: musl, release: true }
    secrets: { token: plain-value }
  ship:
    needs: build
    runs-on: ubuntu-latest
    steps:
      - run: echo "shipping ${{ needs.build.outputs.artifact }}" >> "$GITHUB_WORKSPACE/log.txt"
  remote:
    uses: octo/ci/.github/workflows/rust.yml@v1
"#;

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

#[test]
fn a_local_reusable_workflow_runs_and_passes_its_outputs_back() {
    let dir = tempfile::tempdir().unwrap();
    let wf = dir.path().join(".github/workflows");
    std::fs::create_dir_all(&wf).unwrap();
    std::fs::write(wf.join("ci.yml"), CALLER).unwrap();
    // The reusable workflow tug-pipeline's import tests read too.
    let called = common::workspace().join("crates/tug-pipeline/tests/data/reuse/build.yml");
    std::fs::copy(called, wf.join("build.yml")).unwrap();
    let out = tug()
        .current_dir(dir.path())
        .env("TUG_STATE_DIR", dir.path().join("state"))
        .args(["ci", "run", ".github/workflows/ci.yml"])
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert_eq!(
        read(&dir.path().join("log.txt")),
        "compile musl token=plain-value\nshipping dist/musl.tar\n",
        "{stdout}\n{stderr}"
    );
    assert!(stderr.contains("planned   build.compile"), "{stderr}");
    assert!(
        stderr.contains(
            "left out  remote: remote reusable workflow `octo/ci/.github/workflows/rust.yml@v1`"
        ),
        "{stderr}"
    );
    assert!(stdout.contains("succeeded    ship"), "{stdout}");
}
