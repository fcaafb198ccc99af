//! The `pipelines:` section: every form, and errors at file:line:col.

mod common;

use common::errors;
use std::path::Path;
use tug_spec::parse_str;
use tug_spec::pipeline::{SecretSource, When, WorkspaceMode};

#[test]
fn every_form_resolves() {
    let f = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/valid/pipelines.yaml");
    let text = std::fs::read_to_string(&f).unwrap();
    let stack = parse_str(&text, &f).unwrap_or_else(|e| panic!("{e}"));
    let ci = &stack.pipelines["ci"];
    assert_eq!(ci.parallelism, Some(2));
    assert_eq!(ci.workspace, WorkspaceMode::Copy);
    assert_eq!(ci.env["CARGO_TERM_COLOR"], "never");
    let test = &ci.jobs["test"];
    assert_eq!(test.needs, ["lint"]);
    assert_eq!(test.image.as_deref(), Some("localhost:5000/rust:1"));
    assert_eq!(test.timeout.unwrap().std().as_secs(), 600);
    assert_eq!(test.retry, 1);
    // Step scripts are left for the shell: no interpolation at load time.
    assert!(test.steps[1].run.contains("$MATRIX_RUST ${HOME}"));
    assert!(test.steps[1].continue_on_error);
    assert_eq!(test.steps[1].label(), "doc");
    assert_eq!(test.steps[0].label(), "cargo test");
    let m = test.matrix.as_ref().unwrap();
    let combos = m.combinations();
    assert_eq!(combos.len(), 2, "{combos:?}");
    assert_eq!(combos[0]["rust"], "stable");
    assert_eq!(combos[1]["rust"], "nightly");
    assert_eq!(m.max_parallel, Some(2));
    let db = &test.services["db"];
    assert_eq!(db.port, Some(5432));
    assert!(db.health.as_ref().unwrap().exec.is_some());
    assert_eq!(test.cache[0].paths, ["target"]);
    assert_eq!(test.secrets[0].env, "DB_PASSWORD");
    let package = &ci.jobs["package"];
    assert_eq!(package.needs, ["test"]);
    assert_eq!(package.steps[0].run, "echo package");
    assert_eq!(package.artifacts, ["dist"]);
    assert_eq!(
        package.secrets[0].from,
        SecretSource::Env("REGISTRY_TOKEN".into())
    );
    let notify = &ci.jobs["notify"];
    assert_eq!(notify.when, When::OnFailure);
    assert_eq!(notify.shell.as_deref().unwrap(), ["bash", "-eu", "-c"]);
    // The model round-trips through JSON (runs store the stack this way).
    let json = serde_json::to_string(&stack).unwrap();
    let back: tug_spec::Stack = serde_json::from_str(&json).unwrap();
    assert_eq!(back.pipelines, stack.pipelines);
}

#[test]
fn needs_cycle_is_named_in_order() {
    let e = errors(
        "name: s\npipelines:\n  ci:\n    jobs:\n      a: { needs: [c], steps: [x] }\n      b: { needs: [a], steps: [x] }\n      c: { needs: [b], steps: [x] }\n",
    );
    assert_eq!(e.len(), 1, "{e:#?}");
    assert_eq!((e[0].line, e[0].col), (5, 20));
    assert_eq!(e[0].message, "`needs` cycle: a -> c -> b -> a");
    assert!(e[0].hint.as_deref().unwrap().contains("remove one"));
}

#[test]
fn bad_input_is_located() {
    let e = errors("name: s\npipelines:\n  ci:\n    jobs:\n      a: { needs: [tset], steps: [x] }\n      test: { steps: [x], retyr: 2 }\n");
    assert_eq!(e.len(), 2, "{e:#?}");
    assert_eq!((e[0].line, e[0].col), (5, 20));
    assert_eq!(e[0].message, "job `a` needs unknown job `tset`");
    assert_eq!(e[0].hint.as_deref(), Some("did you mean `test`?"));
    assert_eq!((e[1].line, e[1].col), (6, 27));
    assert_eq!(e[1].message, "unknown key `retyr` in job `test`");
    assert_eq!(e[1].hint.as_deref(), Some("did you mean `retry`?"));

    let e =
        errors("name: s\npipelines:\n  ci:\n    jobs:\n      a: { if: on_sucess, steps: [x] }\n");
    assert_eq!(
        e[0].message,
        "`pipelines.ci.jobs.a.if` must be on_success, on_failure or always, found `on_sucess`"
    );
    assert_eq!(e[0].hint.as_deref(), Some("did you mean `on_success`?"));

    let e = errors(
        "name: s\npipelines:\n  ci:\n    jobs:\n      a: { secrets: [token], steps: [x] }\n",
    );
    assert_eq!(e[0].message, "unknown secret `token`");
    assert!(e[0]
        .hint
        .as_deref()
        .unwrap()
        .contains("TOKEN: { env: TOKEN }"));

    let e = errors(
        "name: s\npipelines:\n  ci:\n    jobs:\n      a: { artifacts: [../out], steps: [x] }\n",
    );
    assert!(
        e[0].message.contains("must be a path inside the workspace"),
        "{e:?}"
    );

    let e = errors("name: s\npipelines:\n  ci:\n    jobs:\n      a: { steps: [] }\n");
    assert_eq!(e[0].message, "job `a` has no steps");

    let e = errors("name: s\npipelines:\n  ci:\n    jobs:\n      a: { needs: [a], steps: [x] }\n");
    assert_eq!(e.len(), 1, "{e:#?}");
    assert_eq!(e[0].message, "job `a` needs itself");

    let e = errors("name: s\npipelines:\n  ci:\n    jobs:\n      a: { matrix: { rust: stable }, steps: [x] }\n");
    assert!(
        e[0].message.contains("matrix axis `rust` must be a list"),
        "{e:?}"
    );
}

#[test]
fn schema_accepts_pipelines_and_rejects_typos() {
    let v = jsonschema::validator_for(&tug_spec::schema()).unwrap();
    let f = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/valid/pipelines.yaml");
    let doc: serde_json::Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(f).unwrap()).unwrap();
    let errs: Vec<String> = v
        .iter_errors(&doc)
        .map(|e| format!("{}: {e}", e.instance_path))
        .collect();
    assert!(errs.is_empty(), "{errs:#?}");
    let bad: serde_json::Value = serde_yaml_ng::from_str(
        "name: s\npipelines:\n  ci:\n    jobs:\n      a: { retyr: 1, steps: [x] }\n",
    )
    .unwrap();
    assert!(!v.is_valid(&bad));
}

#[test]
fn triggers() {
    let head = "name: s\nsecrets:\n  hook: { file: ./hook.txt }\npipelines:\n  ci:\n    jobs: { t: { steps: [echo] } }\n";
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hook.txt"), "s").unwrap();
    let file = dir.path().join("tug.yaml");
    let errors = |text: &str| parse_str(text, &file).expect_err("rejected").0;
    let ok = parse_str(
        &format!("{head}    on:\n      schedule: [\"0 * * * *\", \"*/5 * * * * *\"]\n      webhook: {{ secret: hook, branches: [main] }}\n"),
        &file,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let on = &ok.pipelines["ci"].on;
    assert_eq!(on.schedule, ["0 * * * *", "*/5 * * * * *"]);
    let w = on.webhook.as_ref().unwrap();
    assert_eq!(
        (w.secret.as_str(), w.branches.clone()),
        ("hook", vec!["main".to_string()])
    );

    let e = errors(&format!("{head}    on: {{ schedule: \"61 * * * *\" }}\n"));
    assert_eq!(e.len(), 1, "{e:#?}");
    assert_eq!((e[0].line, e[0].col), (7, 21));
    assert!(
        e[0].message.contains("is not a cron pattern"),
        "{}",
        e[0].message
    );

    let e = errors(&format!(
        "{head}    on: {{ webhook: {{ secret: hoook }} }}\n"
    ));
    assert_eq!(e.len(), 1, "{e:#?}");
    assert!(
        e[0].message.contains("no stack secret `hoook`"),
        "{}",
        e[0].message
    );
    assert_eq!(e[0].hint.as_deref(), Some("did you mean `hook`?"));

    let e = errors(&format!(
        "{head}    on: {{ webhook: {{ branches: [main] }} }}\n"
    ));
    assert!(e[0].message.contains("needs `secret`"), "{}", e[0].message);
}

#[test]
fn concurrency_groups() {
    let file = Path::new("tug.yaml");
    let ok = parse_str(
        "name: s\npipelines:\n  ci:\n    concurrency: { group: deploy, cancel_in_progress: true }\n    jobs:\n      a: { concurrency: \"pages-${{ matrix.os }}\", matrix: { os: [linux] }, steps: [x] }\n",
        file,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let ci = &ok.pipelines["ci"];
    let run = ci.concurrency.as_ref().unwrap();
    assert_eq!(
        (run.group.as_str(), run.cancel_in_progress),
        ("deploy", true)
    );
    let job = ci.jobs["a"].concurrency.as_ref().unwrap();
    assert_eq!(
        (job.group.as_str(), job.cancel_in_progress),
        ("pages-${{ matrix.os }}", false)
    );
    let e = parse_str(
        "name: s\npipelines:\n  ci:\n    concurrency: { cancel_in_progres: true }\n    jobs: { a: { steps: [x] } }\n",
        file,
    )
    .expect_err("rejected")
    .0;
    assert_eq!(e.len(), 2, "{e:#?}");
    let typo = e
        .iter()
        .find(|e| e.message == "unknown key `cancel_in_progres` in `pipelines.ci.concurrency`")
        .unwrap_or_else(|| panic!("{e:#?}"));
    assert_eq!(
        typo.hint.as_deref(),
        Some("did you mean `cancel_in_progress`?")
    );
    let group = e
        .iter()
        .find(|e| e.message == "`pipelines.ci.concurrency` needs `group`")
        .unwrap_or_else(|| panic!("{e:#?}"));
    assert_eq!((group.line, group.col), (4, 18));
}

#[test]
fn a_path_outside_the_workspace_is_an_error_at_its_item() {
    let e = errors(
        "name: s\npipelines:\n  ci:\n    jobs:\n      a:\n        steps: [x]\n        artifacts: [out, /abs]\n        cache:\n          - { key: k, paths: ../up }\n      b:\n        steps: [x]\n        artifacts: { dir: out }\n",
    );
    let at: Vec<_> = e
        .iter()
        .map(|e| (e.line, e.col, e.message.as_str()))
        .collect();
    assert_eq!(
        at,
        [
            (
                7,
                26,
                "`pipelines.ci.jobs.a.artifacts` must be a path inside the workspace, found `/abs`"
            ),
            (
                9,
                30,
                "`pipelines.ci.jobs.a.cache[0].paths` must be a path inside the workspace, found `../up`"
            ),
            (
                12,
                20,
                "`pipelines.ci.jobs.b.artifacts` must be a list of paths, found a map"
            ),
        ],
        "{e:#?}"
    );
}
