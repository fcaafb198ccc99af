//! Imports real `.gitlab-ci.yml` files (tests/data/gitlab, with their
//! licences) and a file that uses every supported keyword.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tug_pipeline::gitlab::{import, Import, Options};
use tug_pipeline::model::When;

fn options(ws: &Path, vars: &[(&str, &str)]) -> Options {
    Options {
        workspace: ws.to_path_buf(),
        on_host: false,
        images: BTreeMap::new(),
        variables: vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        on_path: Box::new(|t| matches!(t, "bash" | "sh")),
    }
}

fn corpus(name: &str, vars: &[(&str, &str)]) -> Import {
    let ws: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/gitlab")
        .join(name);
    let f = ws.join(".gitlab-ci.yml");
    let src = std::fs::read_to_string(&f).unwrap();
    import(&f, &src, &options(&ws, vars)).unwrap_or_else(|e| panic!("{e}"))
}

fn skipped<'a>(imp: &'a Import, key: &str) -> Option<&'a str> {
    imp.jobs
        .iter()
        .find(|j| j.key == key)
        .unwrap_or_else(|| panic!("no job {key}"))
        .skipped
        .as_deref()
}

#[test]
fn librsvg_with_local_includes_references_and_parallel() {
    let imp = corpus("librsvg", &[]);
    // Templates from `include: project` are not read: the jobs that extend them say so.
    assert!(
        imp.notes
            .iter()
            .any(|n| n.contains("project: GNOME/citemplates")),
        "{:?}",
        imp.notes
    );
    assert!(skipped(&imp, "check").unwrap().contains("not defined here"));
    assert!(!imp.jobs.is_empty());
    for j in &imp.jobs {
        assert!(j.skipped.is_some() || imp.pipeline.jobs.contains_key(&j.key));
    }
}

#[test]
fn redox_workflow_rules_decide_the_pipeline() {
    let imp = corpus("redox", &[]);
    assert!(imp.pipeline.jobs.is_empty());
    assert!(skipped(&imp, "fmt").unwrap().contains("workflow: rules"));
    let imp = corpus(
        "redox",
        &[
            ("CI_COMMIT_BRANCH", "master"),
            ("CI_PROJECT_NAMESPACE", "redox-os"),
        ],
    );
    let fmt = &imp.pipeline.jobs["fmt"];
    assert_eq!(fmt.image.as_deref(), Some("rust:trixie"));
    assert_eq!(
        fmt.steps[0].run,
        "rustup component add rustfmt\ncargo fmt -- --check"
    );
    // `img` is in the stage after `fmt`: it needs every job of the stages before.
    let img = &imp.pipeline.jobs["img"];
    assert_eq!(img.needs, vec!["cargo-test".to_string(), "fmt".to_string()]);
    assert_eq!(imp.pipeline.env["GIT_STRATEGY"], "clone");
}

#[test]
fn fractal_extends_a_local_anchor_and_a_remote_template() {
    let imp = corpus("fractal", &[]);
    assert!(imp
        .notes
        .iter()
        .any(|n| n.contains("flatpak_ci_initiative.yml")));
    let check = &imp.pipeline.jobs["check"];
    assert!(check.steps[0].run.contains("cargo fmt --all -- --check"));
    assert!(skipped(&imp, "flatpak").unwrap().contains(".flatpak"));
    assert!(skipped(&imp, "nightly").is_some());
}

const FULL: &str = r#"
include:
  - local: ci/common.yml
stages: [build, test, deploy]
variables:
  CARGO_HOME: $CI_PROJECT_DIR/.cargo
  MODE: debug
default:
  image: rust:1.85
  before_script: [echo before]
.rust:
  cache:
    key:
      files: [Cargo.lock]
    paths: [target/]
build:
  extends: .rust
  stage: build
  script:
    - cargo build
  artifacts:
    paths: [target/debug/app]
test:
  extends: [.rust, .from-include]
  stage: test
  parallel:
    matrix:
      - RUST: [stable, beta]
        OS: [linux]
      - RUST: nightly
  script:
    - !reference [.setup, script]
    - cargo test
  after_script: [echo done]
  services:
    - name: postgres:16
      alias: db
      variables: { POSTGRES_PASSWORD: x }
  retry: 2
  timeout: 1h 30m
lint:
  stage: test
  needs: []
  image: alpine:3
  allow_failure: true
  rules:
    - if: $MODE == "release"
      when: never
    - if: '$CI_PIPELINE_SOURCE == "push"'
      when: always
  script: [echo lint]
deploy:
  stage: deploy
  needs: [build]
  rules:
    - if: $CI_COMMIT_TAG
  script: [echo deploy]
manual:
  stage: deploy
  when: manual
  script: [echo manual]
"#;

const COMMON: &str = ".from-include:\n  variables:\n    FROM_INCLUDE: \"yes\"\n.setup:\n  script:\n    - echo setup\n";

#[test]
fn every_supported_keyword() {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(d.path().join("ci")).unwrap();
    std::fs::write(d.path().join("ci/common.yml"), COMMON).unwrap();
    let f = d.path().join(".gitlab-ci.yml");
    let imp = import(&f, FULL, &options(d.path(), &[])).unwrap_or_else(|e| panic!("{e}"));
    let p = &imp.pipeline;
    let keys: Vec<&String> = p.jobs.keys().collect();
    assert_eq!(
        keys,
        [
            "build",
            "lint",
            "test-beta-linux",
            "test-nightly",
            "test-stable-linux"
        ]
    );
    let build = &p.jobs["build"];
    assert_eq!(build.image.as_deref(), Some("rust:1.85"));
    assert_eq!(build.steps[0].run, "echo before\ncargo build");
    assert_eq!(build.artifacts, vec!["target/debug/app".to_string()]);
    assert_eq!(build.cache[0].files, vec!["Cargo.lock".to_string()]);
    assert_eq!(build.cache[0].paths, vec!["target/".to_string()]);
    let t = &p.jobs["test-stable-linux"];
    assert_eq!(t.needs, vec!["build".to_string()]);
    assert_eq!(t.env["RUST"], "stable");
    assert_eq!(t.env["CI_NODE_TOTAL"], "3");
    assert_eq!(t.env["FROM_INCLUDE"], "yes");
    assert_eq!(t.steps[0].run, "echo before\necho setup\ncargo test");
    assert_eq!(t.steps[1].when, When::Always);
    assert!(t.steps[1].continue_on_error);
    assert_eq!(t.services["db"].image, "postgres:16");
    assert_eq!(t.services["db"].env["POSTGRES_PASSWORD"], "x");
    assert_eq!(t.retry, 2);
    assert_eq!(t.timeout.unwrap().std().as_secs(), 5400);
    let lint = &p.jobs["lint"];
    assert!(lint.needs.is_empty());
    assert_eq!(lint.when, When::Always);
    assert!(lint.continue_on_error);
    assert_eq!(lint.image.as_deref(), Some("alpine:3"));
    assert!(p.env["CARGO_HOME"].ends_with("/.cargo") && p.env["CARGO_HOME"].starts_with('/'));
    assert_eq!(skipped(&imp, "deploy"), Some("no rule of `rules` matches"));
    assert!(skipped(&imp, "manual").unwrap().contains("manual"));

    // On the host: no image, bash for the script.
    let mut o = options(d.path(), &[("MODE", "release")]);
    o.on_host = true;
    let imp = import(&f, FULL, &o).unwrap();
    assert!(imp.pipeline.jobs["build"].image.is_none());
    assert_eq!(
        imp.pipeline.jobs["build"].shell.as_deref(),
        Some(&["bash".to_string(), "-e".into(), "-c".into()][..])
    );
    assert!(skipped(&imp, "lint").unwrap().contains("when: never"));
}

#[test]
fn bad_input_is_reported_at_file_line_col() {
    let d = tempfile::tempdir().unwrap();
    let f = Path::new(".gitlab-ci.yml");
    let err = |src: &str| {
        import(f, src, &options(d.path(), &[]))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    };
    let e = err("test:\n  scirpt: [echo]\n  script: [echo]\n");
    assert!(
        e.contains(
            ".gitlab-ci.yml:2:3: unknown key `scirpt` in job `test` (did you mean `script`?)"
        ),
        "{e}"
    );
    let e = err("test:\n  script: [echo]\n  rules:\n    - if: $A = \"x\"\n");
    assert!(e.contains(".gitlab-ci.yml:4:14: bad rule"), "{e}");
    let e = err("test:\n  extends: .nope\n  script: [echo]\n");
    assert!(
        e.contains(".gitlab-ci.yml:2:12: extends `.nope`, which is not defined"),
        "{e}"
    );
    let e = err("test:\n  stage: lint\n  script: [echo]\n");
    assert!(
        e.contains(".gitlab-ci.yml:2:10: job `test` is in the stage `lint`"),
        "{e}"
    );
    let e = err("a:\n  script: [echo]\n  needs: [b]\n");
    assert!(e.contains(".gitlab-ci.yml:3:11: job `a` needs `b`"), "{e}");
}

/// Every project of the corpus imports, and each job is planned or left out with a reason.
#[test]
fn the_corpus_imports() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/gitlab");
    let mut names: Vec<String> = std::fs::read_dir(&data)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect();
    names.sort();
    assert!(names.len() >= 12, "{names:?}");
    let mut failures = Vec::new();
    for name in &names {
        let dir = data.join(name);
        let licensed = std::fs::read_dir(&dir).unwrap().flatten().any(|e| {
            let n = e.file_name().to_string_lossy().to_uppercase();
            n.starts_with("LICENSE") || n.starts_with("COPYING")
        });
        assert!(licensed, "{name} has no licence file");
        let f = dir.join(".gitlab-ci.yml");
        let src = std::fs::read_to_string(&f).unwrap();
        match import(&f, &src, &options(&dir, &[])) {
            Ok(imp) => {
                assert!(!imp.jobs.is_empty(), "{name}: no jobs");
                for j in &imp.jobs {
                    match &j.skipped {
                        Some(why) => assert!(!why.is_empty()),
                        None => {
                            assert!(imp.pipeline.jobs.contains_key(&j.key), "{name}: {}", j.key)
                        }
                    }
                }
            }
            Err(e) => failures.push(format!("{name}: {e}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn import_str(src: &str, vars: &[(&str, &str)]) -> Import {
    let d = tempfile::tempdir().unwrap();
    import(Path::new(".gitlab-ci.yml"), src, &options(d.path(), vars))
        .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn a_reference_to_a_list_of_rules_is_flattened() {
    // As OpenRGB and GLib write it: a rule that is another template's rules.
    let src = ".manual:\n  rules:\n    - if: $CI_PIPELINE_SOURCE == \"push\"\n      when: manual\n.upstream:\n  rules:\n    - if: $CI_PROJECT_PATH == \"up/stream\"\n    - !reference [.manual, rules]\na:\n  extends: .upstream\n  script: [echo a]\nb:\n  extends: .upstream\n  script: [echo b]\n";
    let imp = import_str(src, &[]);
    assert!(skipped(&imp, "a").unwrap().contains("manual"));
    let imp = import_str(src, &[("CI_PROJECT_PATH", "up/stream")]);
    assert!(imp.pipeline.jobs.contains_key("a") && imp.pipeline.jobs.contains_key("b"));
}

#[test]
fn a_mistake_in_a_template_is_reported_once() {
    let d = tempfile::tempdir().unwrap();
    let src = ".t:\n  rules: [ [ 1, 2 ], x ]\na:\n  extends: .t\n  script: [echo]\nb:\n  extends: .t\n  script: [echo]\n";
    let e = import(Path::new(".gitlab-ci.yml"), src, &options(d.path(), &[]))
        .err()
        .unwrap()
        .to_string();
    assert_eq!(
        e.matches("a rule must be a map, found `x`").count(),
        1,
        "{e}"
    );
}

#[test]
fn needs_can_name_one_copy_of_a_matrix_job() {
    // dav1d: `needs: ["build-win: [x86_64-w64-mingw32]"]`.
    let src = "build:\n  stage: build\n  parallel:\n    matrix:\n      - ARCH: [i686, x86_64]\n  script: [echo $ARCH]\ntest:\n  stage: test\n  needs: [\"build: [x86_64]\", {job: \"build: [nope]\", optional: true}]\n  script: [echo]\n";
    let imp = import_str(src, &[]);
    assert_eq!(
        imp.pipeline.jobs["test"].needs,
        vec!["build-x86_64".to_string()]
    );
    let d = tempfile::tempdir().unwrap();
    let e = import(
        Path::new(".gitlab-ci.yml"),
        &src.replace("\"build: [x86_64]\", ", "\"build: [arm]\", "),
        &options(d.path(), &[]),
    )
    .map(|i| format!("{:?}", i.jobs))
    .unwrap_or_else(|e| e.to_string());
    assert!(
        e.contains(
            "needs `build: [arm]`, which is no combination of the `parallel: matrix` of `build`"
        ),
        "{e}"
    );
}

#[test]
fn a_job_given_twice_is_the_later_one() {
    // libxml2 defines `cmake:linux:gcc:shared` twice; GitLab keeps the last.
    let src = "a:\n  script: [echo first]\n  variables:\n    X: one\nb:\n  script: [echo b]\na:\n  script: [echo second]\n";
    let imp = import_str(src, &[]);
    let a = &imp.pipeline.jobs["a"];
    assert_eq!(a.steps[0].run, "echo second");
    assert!(!a.env.contains_key("X"));
    assert!(
        imp.notes
            .iter()
            .any(|n| n.contains(".gitlab-ci.yml:7:1: duplicate key `a` (first at line 1)")),
        "{:?}",
        imp.notes
    );
    assert!(imp.pipeline.jobs.contains_key("b"));
}

#[test]
fn a_job_given_three_times_is_the_last_one() {
    let src = "a:\n  script: [echo 1]\nb:\n  script: [echo b1]\na:\n  script: [echo 2]\n# c\nb:\n  script: [echo b2]\na:\n  script: [echo 3]\n";
    let imp = import_str(src, &[]);
    assert_eq!(imp.pipeline.jobs["a"].steps[0].run, "echo 3");
    assert_eq!(imp.pipeline.jobs["b"].steps[0].run, "echo b2");
    let notes: Vec<&str> = imp
        .notes
        .iter()
        .map(|n| n.split(": the later").next().unwrap())
        .collect();
    assert_eq!(
        notes,
        [
            ".gitlab-ci.yml:5:1: duplicate key `a` (first at line 1)",
            ".gitlab-ci.yml:8:1: duplicate key `b` (first at line 3)",
            ".gitlab-ci.yml:10:1: duplicate key `a` (first at line 5)",
        ]
    );
}

/// Runs a job's script step the way the host runner does.
fn exit_of(run: &str) -> i32 {
    std::process::Command::new("bash")
        .args(["-e", "-c", run])
        .output()
        .unwrap()
        .status
        .code()
        .unwrap()
}

#[test]
fn allow_failure_exit_codes_allows_only_those_codes() {
    let src = |code: u8| {
        format!("t:\n  allow_failure:\n    exit_codes: [77, 3]\n  script:\n    - cd /\n    - (exit {code})\n    - echo not reached; exit 9\n")
    };
    let imp = import_str(&src(77), &[]);
    let t = &imp.pipeline.jobs["t"];
    assert!(!t.continue_on_error, "only the listed codes may fail");
    assert_eq!(exit_of(&t.steps[0].run), 0);
    let imp = import_str(&src(1), &[]);
    assert_eq!(exit_of(&imp.pipeline.jobs["t"].steps[0].run), 1);
    let imp = import_str(&src(3), &[]);
    assert_eq!(exit_of(&imp.pipeline.jobs["t"].steps[0].run), 0);
    // `allow_failure: true` from a rule allows every code.
    let imp = import_str(
        "t:\n  allow_failure: {exit_codes: 77}\n  rules: [{allow_failure: true}]\n  script: [exit 1]\n",
        &[],
    );
    assert!(imp.pipeline.jobs["t"].continue_on_error);
}

#[test]
fn inherit_default_false_keeps_the_defaults_out() {
    let src = "default:\n  image: alpine:3\n  before_script: [echo before]\n  retry: 2\na:\n  script: [echo a]\nb:\n  inherit:\n    default: false\n  script: [echo b]\nc:\n  inherit:\n    default: [retry]\n  script: [echo c]\nd:\n  inherit:\n    variables: false\n  script: [echo d]\n";
    let imp = import_str(src, &[]);
    let j = &imp.pipeline.jobs;
    assert_eq!(j["a"].image.as_deref(), Some("alpine:3"));
    assert_eq!(j["a"].steps[0].run, "echo before\necho a");
    assert_eq!(j["b"].image, None);
    assert_eq!(j["b"].steps[0].run, "echo b");
    assert_eq!(j["b"].retry, 0);
    assert_eq!(j["c"].image, None);
    assert_eq!(j["c"].retry, 2);
    // `inherit: variables` leaves `default:` alone.
    assert_eq!(j["d"].image.as_deref(), Some("alpine:3"));
    assert!(imp.notes.is_empty(), "{:?}", imp.notes);
}

/// What a job's steps see: the pipeline's env, then the job's (as the run merges them).
fn env_of(imp: &Import, job: &str) -> BTreeMap<String, String> {
    let mut env = imp.pipeline.env.clone();
    env.extend(imp.pipeline.jobs[job].env.clone());
    env
}

#[test]
fn inherit_variables_false_true_or_a_list() {
    let src = "variables:\n  A: a\n  B: b\n  CI_COMMIT_REF_SLUG: mine\nworkflow:\n  rules:\n    - variables: {W: w}\nall:\n  script: [echo]\nnone:\n  inherit:\n    variables: false\n  variables:\n    OWN: \"[$A$W]\"\n  script: [echo]\n\"yes\":\n  inherit: {variables: true}\n  script: [echo]\nsome:\n  inherit:\n    variables: [B, W, NOPE]\n  script: [echo]\nruled:\n  inherit: {variables: false}\n  rules:\n    - if: $A == \"a\"\n  script: [echo]\n";
    let imp = import_str(src, &[]);
    for job in ["all", "yes"] {
        let e = env_of(&imp, job);
        assert_eq!(
            (e["A"].as_str(), e["B"].as_str(), e["W"].as_str()),
            ("a", "b", "w"),
            "{job}"
        );
        assert_eq!(e["CI_COMMIT_REF_SLUG"], "mine");
    }
    let none = env_of(&imp, "none");
    assert!(
        !none.contains_key("A") && !none.contains_key("B") && !none.contains_key("W"),
        "{none:?}"
    );
    // Its own variables apply, and do not see the top-level ones.
    assert_eq!(none["OWN"], "[]");
    // Predefined variables are not top-level ones: a job has them whatever it inherits.
    assert_eq!(none["GITLAB_CI"], "true");
    assert_eq!(none["CI_JOB_NAME"], "none");
    assert_ne!(none["CI_COMMIT_REF_SLUG"], "mine");
    let some = env_of(&imp, "some");
    assert_eq!(
        (some.get("A"), some["B"].as_str(), some["W"].as_str()),
        (None, "b", "w")
    );
    // Rules are decided with what the job inherits.
    assert_eq!(skipped(&imp, "ruled"), Some("no rule of `rules` matches"));

    // A variable given for the run is not a top-level one: every job has it.
    let imp = import_str(src, &[("A", "a")]);
    assert_eq!(env_of(&imp, "none")["A"], "a");
    assert!(imp.pipeline.jobs.contains_key("ruled"));
}

#[test]
fn inherit_merges_through_extends() {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(d.path().join("ci")).unwrap();
    std::fs::write(
        d.path().join("ci/t.yml"),
        ".quiet:\n  inherit:\n    variables: [B]\n",
    )
    .unwrap();
    let src = "include: [{local: ci/t.yml}]\nvariables: {A: a, B: b}\ndefault:\n  image: alpine:3\nx:\n  extends: .quiet\n  inherit:\n    default: false\n  script: [echo]\ny:\n  extends: .quiet\n  script: [echo]\n";
    let f = d.path().join(".gitlab-ci.yml");
    let imp = import(&f, src, &options(d.path(), &[])).unwrap_or_else(|e| panic!("{e}"));
    // `x` takes `variables` from the template and `default` from itself.
    let x = env_of(&imp, "x");
    assert_eq!((x.get("A"), x["B"].as_str()), (None, "b"));
    assert_eq!(imp.pipeline.jobs["x"].image, None);
    let y = env_of(&imp, "y");
    assert_eq!((y.get("A"), y["B"].as_str()), (None, "b"));
    assert_eq!(imp.pipeline.jobs["y"].image.as_deref(), Some("alpine:3"));

    // A bad `inherit` in the template is reported in the template's file.
    std::fs::write(
        d.path().join("ci/t.yml"),
        ".quiet:\n  inherit:\n    variables: 3\n",
    )
    .unwrap();
    let e = import(&f, src, &options(d.path(), &[]))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        e.contains("ci/t.yml:3:16: `inherit: variables` must be true, false or a list of top-level variable names, found `3`"),
        "{e}"
    );
    assert_eq!(e.matches("must be true, false").count(), 1, "{e}");
    // As on GitLab, the merged job counts: a job that sets `variables` itself is fine.
    let src = "include: [{local: ci/t.yml}]\nvariables: {A: a, B: b}\nz:\n  extends: .quiet\n  inherit: {variables: [A]}\n  script: [echo]\n";
    let imp = import(&f, src, &options(d.path(), &[])).unwrap_or_else(|e| panic!("{e}"));
    let z = env_of(&imp, "z");
    assert_eq!((z["A"].as_str(), z.get("B")), ("a", None));
}

#[test]
fn a_bad_inherit_is_reported_at_file_line_col() {
    let d = tempfile::tempdir().unwrap();
    let err = |src: &str| {
        import(Path::new(".gitlab-ci.yml"), src, &options(d.path(), &[]))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    };
    let e = err("t:\n  inherit:\n    variables: 3\n  script: [echo]\n");
    assert!(
        e.contains(".gitlab-ci.yml:3:16: `inherit: variables` must be true, false or a list of top-level variable names, found `3`"),
        "{e}"
    );
    let e = err("t:\n  inherit:\n    varaibles: false\n  script: [echo]\n");
    assert!(
        e.contains(
            ".gitlab-ci.yml:3:5: unknown key `varaibles` in `inherit` (did you mean `variables`?)"
        ),
        "{e}"
    );
    let e = err("t:\n  inherit: false\n  script: [echo]\n");
    assert!(
        e.contains(".gitlab-ci.yml:2:12: `inherit` must be a map of `default` and `variables`, found `false`"),
        "{e}"
    );
    let e = err("t:\n  inherit:\n    default: [image, imag]\n    variables: [A, {B: 1}]\n  script: [echo]\n");
    assert!(
        e.contains(".gitlab-ci.yml:3:22: `inherit: default` lists `imag`, which is not a keyword of `default`"),
        "{e}"
    );
    assert!(
        e.contains(".gitlab-ci.yml:4:20: `inherit: variables` lists a map, which is not a name"),
        "{e}"
    );
    let e = err("t:\n  inherit: {default: image}\n  script: [echo]\n");
    assert!(
        e.contains(".gitlab-ci.yml:2:22: `inherit: default` must be true, false or a list of default keywords, found `image`"),
        "{e}"
    );
}

#[test]
fn glib_and_dav1d_read_as_gitlab_reads_them() {
    let imp = corpus("glib", &[]);
    // `workflow: rules` let a branch pipeline through; the component is reported.
    assert!(imp
        .notes
        .iter()
        .any(|n| n.contains("component: gitlab.gnome.org")));
    assert!(imp.pipeline.jobs.contains_key("fedora-x86_64"));
    assert!(skipped(&imp, "valgrind").unwrap().contains("manual"));
    let imp = corpus("dav1d", &[]);
    assert_eq!(
        imp.pipeline.jobs["test-win64"].needs,
        vec!["build-win-x86_64-w64-mingw32".to_string()]
    );
    let imp = corpus("openrgb", &[("CI_PROJECT_PATH", "CalcProgrammer1/OpenRGB")]);
    assert!(imp.pipeline.jobs.contains_key("Linux-amd64-AppImage"));
    let imp = corpus("libxml2", &[]);
    assert!(imp
        .notes
        .iter()
        .any(|n| n.contains("duplicate key `cmake:linux:gcc:shared`")));
}

#[test]
fn jobs_for_windows_macos_or_freebsd_runners_are_left_out() {
    let src = "default:\n  tags: [linux]\nwin:\n  tags: [win32-ps]\n  script: [echo]\nsaas:\n  tags: [saas-windows-medium-amd64]\n  script: [echo]\nmac:\n  tags: [macos-xcode26]\n  script: [echo]\nbsd:\n  tags: [freebsd-13]\n  script: [echo]\nlinux:\n  script: [echo]\nwine:\n  tags: [wine, docker]\n  script: [echo]\n";
    let imp = import_str(src, &[]);
    for (job, os) in [
        ("win", "Windows"),
        ("saas", "Windows"),
        ("mac", "macOS"),
        ("bsd", "FreeBSD"),
    ] {
        let why = skipped(&imp, job).unwrap_or_else(|| panic!("{job} runs here"));
        assert!(why.contains(&format!("a {os} runner")), "{job}: {why}");
    }
    // `default: tags` and tags that only look alike do not leave a job out.
    assert!(imp.pipeline.jobs.contains_key("linux"));
    assert!(imp.pipeline.jobs.contains_key("wine"));
    // glib's Windows jobs (`tags: [win32-ps]`) too.
    let glib = corpus("glib", &[]);
    let left: Vec<&str> = glib
        .jobs
        .iter()
        .filter(|j| {
            j.skipped
                .as_deref()
                .is_some_and(|w| w.contains("Windows runner"))
        })
        .map(|j| j.name.as_str())
        .collect();
    assert!(!left.is_empty(), "{:?}", glib.jobs);
}
