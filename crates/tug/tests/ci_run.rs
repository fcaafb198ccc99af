//! `tug ci run` on a GitHub workflow, on the host: which steps ran, which
//! were skipped and why; GITHUB_OUTPUT/ENV/PATH, matrix, job outputs,
//! artifacts, continue-on-error and failure() as on GitHub.

use std::path::Path;
use std::process::{Command, Output};

/// `tug ci run .github/workflows/ci.yml` in `dir`, its state kept there.
fn ci_run(dir: &Path) -> (Output, String, String) {
    let state = dir.join("state");
    let out = Command::new(env!("CARGO_BIN_EXE_tug"))
        .args(["ci", "run", ".github/workflows/ci.yml"])
        .current_dir(dir)
        .env("XDG_STATE_HOME", &state)
        .env("TUG_STATE_DIR", &state)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out, stdout, stderr)
}

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
    let (out, stdout, stderr) = ci_run(d.path());
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
fn a_local_composite_action_runs_and_its_outputs_reach_later_steps() {
    let d = tempfile::tempdir().unwrap();
    // The project tug-pipeline's import and step-runner tests read too.
    let project = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tug-pipeline/tests/data/composite/."
    );
    let ok = Command::new("cp")
        .args(["-R", project])
        .arg(d.path())
        .status()
        .unwrap();
    assert!(ok.success());
    let (out, stdout, stderr) = ci_run(d.path());
    let all = format!("{stdout}\n{stderr}");
    assert!(out.status.success(), "{all}");
    let log = std::fs::read_to_string(d.path().join("log.txt")).unwrap_or_default();
    assert!(
        log.contains("setup=stable said=hello world[]\n"),
        "{log}\n{all}"
    );
    assert!(
        log.contains("again=beta said=hello stable[]\n"),
        "{log}\n{all}"
    );
    // A JavaScript action of the repository is named before the run; its job is left out.
    assert!(
        stderr.contains("ci.yml:37:15: `./.github/actions/node` is a JavaScript action"),
        "{all}"
    );
    assert!(
        stderr.contains("left out  js: needs `./.github/actions/node`"),
        "{all}"
    );
    // An input the action does not declare: warned when the action starts, as on GitHub.
    assert!(
        stderr.contains("warning: ") && stderr.contains("has no input `colour`"),
        "{all}"
    );
    // And before the run, at its place.
    assert!(
        stderr.contains(
            "note: .github/workflows/ci.yml:16:19: `./.github/actions/setup` has no input `colour`"
        ),
        "{all}"
    );
    assert!(stdout.contains("  success   Set up\n"), "{all}");
    assert!(stdout.contains("succeeded    build"), "{all}");
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

/// A busybox-static image with `sh`, `cat` and `[`: no /usr, unlike the host.
fn gh_image() -> &'static str {
    const IMAGE: &str = "tug-test/gh-busybox:1";
    let have = Command::new("docker")
        .args(["image", "inspect", IMAGE])
        .output()
        .is_ok_and(|o| o.status.success());
    if !have {
        let root = tempfile::tempdir().unwrap();
        let bin = root.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::copy("/bin/busybox", bin.join("busybox"))
            .expect("install busybox-static (scripts/engine.sh does)");
        for tool in ["sh", "cat", "[", "test", "echo"] {
            std::os::unix::fs::symlink("busybox", bin.join(tool)).unwrap();
        }
        let ok = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "tar -C {} -c . | docker import - {IMAGE}",
                root.path().display()
            ))
            .status()
            .unwrap()
            .success();
        assert!(ok, "docker import of busybox failed");
    }
    IMAGE
}

/// `tug pipeline run --from`: the same run as `tug ci run`; `--platform`
/// maps a `runs-on` label to an image and `container:` names one; their
/// `run:` steps run there on the same workspace, with GITHUB_OUTPUT and
/// `container.env` working, and the host job after them sees their outputs.
#[test]
fn pipeline_run_from_runs_jobs_in_images() {
    if !common_engine() {
        return;
    }
    let image = gh_image();
    let d = tempfile::tempdir().unwrap();
    let wf = d.path().join(".github/workflows");
    std::fs::create_dir_all(&wf).unwrap();
    std::fs::write(
        wf.join("images.yml"),
        format!(
            r#"on: push
jobs:
  mapped:
    runs-on: tiny
    outputs:
      where: ${{{{ steps.w.outputs.where }}}}
    steps:
      - id: w
        run: |
          if [ -e /usr ]; then echo "where=host" >> "$GITHUB_OUTPUT"; else echo "where=image" >> "$GITHUB_OUTPUT"; fi
          echo from-mapped > mapped.txt
  boxed:
    needs: mapped
    runs-on: ubuntu-latest
    container:
      image: {image}
      env: {{ BOX: yes-box }}
    steps:
      - run: echo "boxed sees $BOX and $(cat mapped.txt)"; [ ! -e /usr ]
        working-directory: .
  after:
    needs: [mapped, boxed]
    runs-on: ubuntu-latest
    steps:
      - run: echo "mapped ran in the ${{{{ needs.mapped.outputs.where }}}}"; [ -e /usr ]
"#
        ),
    )
    .unwrap();
    let state = d.path().join("state");
    let run = |extra: &[&str]| {
        let mut args = vec!["pipeline", "run", "--from", ".github/workflows/images.yml"];
        args.extend_from_slice(extra);
        Command::new(env!("CARGO_BIN_EXE_tug"))
            .args(&args)
            .current_dir(d.path())
            .env("XDG_STATE_HOME", &state)
            .env("TUG_STATE_DIR", &state)
            .output()
            .unwrap()
    };
    // Without the mapping, `tiny` is no Linux runner: left out, with the fix.
    let out = run(&["--list"]);
    let all = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{all}");
    assert!(
        all.contains("left out  mapped: runs on `tiny`") && all.contains("--platform tiny=IMAGE"),
        "{all}"
    );

    let platform = format!("tiny={image}");
    let out = run(&["--platform", &platform]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let all = format!("{stdout}\n{stderr}");
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(
        stderr.contains("boxed sees yes-box and from-mapped"),
        "{all}"
    );
    assert!(stderr.contains("mapped ran in the image"), "{all}");
    assert!(
        stdout.contains("succeeded    mapped") && stdout.contains("succeeded    after"),
        "{all}"
    );
    // No step container is left behind.
    let left = Command::new("docker")
        .args([
            "ps",
            "-aq",
            "--filter",
            "label=dev.tug.pipeline=github/mapped",
        ])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&left.stdout).trim().is_empty());
}

fn common_engine() -> bool {
    let ok = Command::new("docker")
        .arg("info")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        if std::env::var("TUG_REQUIRE_ENGINE").is_ok_and(|v| v == "1") {
            panic!("TUG_REQUIRE_ENGINE=1 but no container engine answers `docker info`");
        }
        eprintln!("\n!!! SKIPPED: no container engine answers; run scripts/engine.sh\n");
    }
    ok
}
