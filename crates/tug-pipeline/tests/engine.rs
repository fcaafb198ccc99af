//! The executor on the real engine and the real host: matrix,
//! continue_on_error, timeout, retry, cache, artifacts, a service container
//! and secrets masking. Container jobs use Debian's static busybox in a
//! scratch image (`tug-test/busybox:1`).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tokio_util::sync::CancellationToken;
use tug_pipeline::exec::labels;
use tug_pipeline::report::{JobStatus, RunReport, RunStatus};
use tug_pipeline::run::{self, Progress, RunConfig};
use tug_runtime::docker::DockerRuntime;
use tug_runtime::Runtime;

const SH: &str = "shell: [/bin/busybox, sh, -e, -c]";

struct Fixture {
    _dir: tempfile::TempDir,
    project: PathBuf,
    state: PathBuf,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("project");
    let state = dir.path().join("state");
    std::fs::create_dir_all(&project).unwrap();
    std::fs::create_dir_all(&state).unwrap();
    Fixture {
        _dir: dir,
        project,
        state,
    }
}

struct Outcome {
    report: RunReport,
    lines: Vec<(String, String)>,
}

impl Outcome {
    fn job(&self, name: &str) -> &tug_pipeline::report::JobReport {
        self.report
            .jobs
            .iter()
            .find(|j| j.name == name)
            .unwrap_or_else(|| panic!("no job {name} in {:#?}", self.report.jobs))
    }
    fn output(&self, unit: &str) -> Vec<&str> {
        self.lines
            .iter()
            .filter(|(u, _)| u == unit)
            .map(|(_, l)| l.as_str())
            .collect()
    }
    fn all_text(&self) -> String {
        self.lines
            .iter()
            .map(|(u, l)| format!("{u} | {l}\n"))
            .collect()
    }
}

async fn run_yaml(
    f: &Fixture,
    id: i64,
    yaml: &str,
    rt: Option<DockerRuntime>,
    cancel: CancellationToken,
) -> Outcome {
    let file = f.project.join("tug.yaml");
    std::fs::write(&file, yaml).unwrap();
    let stack = tug_spec::parse_str(yaml, &file).unwrap_or_else(|e| panic!("{e}"));
    let (name, pipeline) = stack.pipelines.into_iter().next().unwrap();
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = lines.clone();
    let observer: run::Observer = Arc::new(move |p| {
        if let Progress::Line { unit, line } = p {
            sink.lock().unwrap().push((unit, line));
        }
    });
    let cfg = RunConfig {
        id,
        stack: stack.name.clone(),
        pipeline_name: name,
        pipeline,
        project_dir: f.project.clone(),
        state_dir: f.state.clone(),
        jobs: Vec::new(),
        stack_secrets: stack
            .secrets
            .iter()
            .map(|(k, v)| (k.clone(), v.file.clone()))
            .collect(),
        runtime: rt,
        parallelism: None,
        cancel,
        always_after_cancel: true,
    };
    let report = run::run(cfg, observer).await.unwrap();
    let lines = lines.lock().unwrap().clone();
    Outcome { report, lines }
}

async fn engine(test: &str) -> Option<DockerRuntime> {
    let rt = tug_runtime::testing::engine_or_skip(test).await?;
    tug_runtime::testing::busybox_image(&rt).await;
    Some(rt)
}

async fn run_containers(rt: &DockerRuntime, id: i64) -> Vec<String> {
    rt.list_containers(&vec![(labels::RUN.to_string(), Some(id.to_string()))])
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.name)
        .collect()
}

/// A run id no other test (or engineer) uses at the same time.
fn unique_id() -> i64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    1_000_000 + (t.as_micros() % 1_000_000_000) as i64
}

#[tokio::test]
async fn matrix_continue_on_error_and_on_failure_in_containers() {
    let Some(rt) = engine("matrix_continue_on_error_and_on_failure_in_containers").await else {
        return;
    };
    let f = fixture();
    let id = unique_id();
    let yaml = format!(
        r#"name: pl-matrix
pipelines:
  ci:
    jobs:
      test:
        image: tug-test/busybox:1
        {SH}
        matrix:
          rust: [stable, beta]
          os: [linux, musl]
          exclude: [{{ rust: beta, os: musl }}]
        steps:
          - echo "combo $MATRIX_RUST/$MATRIX_OS in $PWD"
          - name: flaky lint
            run: exit 3
            continue_on_error: true
          - echo after
      broken:
        image: tug-test/busybox:1
        {SH}
        continue_on_error: true
        steps: [exit 7, echo never]
      after-broken:
        needs: [broken]
        steps: [echo ran after an allowed failure]
      hard-fail:
        steps: [exit 1]
      cleanup:
        needs: [hard-fail]
        if: on_failure
        steps: [echo cleaning up]
      deploy:
        needs: [hard-fail]
        steps: [echo must not run]
"#
    );
    let o = run_yaml(&f, id, &yaml, Some(rt.clone()), CancellationToken::new()).await;
    let names: Vec<&str> = o.report.jobs.iter().map(|j| j.name.as_str()).collect();
    // Axes in name order: os, then rust.
    for n in [
        "test (linux, stable)",
        "test (musl, stable)",
        "test (linux, beta)",
    ] {
        assert!(names.contains(&n), "{names:?}");
        let j = o.job(n);
        assert_eq!(j.status, JobStatus::Succeeded, "{j:#?}\n{}", o.all_text());
        assert_eq!(j.steps[1].status, JobStatus::Failed);
        assert!(j.steps[1].allowed_failure);
        assert_eq!(j.steps[1].exit_code, Some(3));
        assert_eq!(j.steps[2].status, JobStatus::Succeeded);
    }
    assert!(!names.contains(&"test (musl, beta)"));
    assert!(o
        .output("test (linux, beta)")
        .contains(&"combo beta/linux in /workspace"));
    let broken = o.job("broken");
    assert_eq!(broken.status, JobStatus::Failed);
    assert!(broken.allowed_failure);
    assert_eq!(broken.steps[1].status, JobStatus::Skipped);
    assert_eq!(o.job("after-broken").status, JobStatus::Succeeded);
    assert_eq!(o.job("cleanup").status, JobStatus::Succeeded);
    let deploy = o.job("deploy");
    assert_eq!(deploy.status, JobStatus::Skipped);
    assert_eq!(
        deploy.reason.as_deref(),
        Some("`hard-fail` did not succeed")
    );
    assert_eq!(o.report.status, RunStatus::Failed);
    assert!(run_containers(&rt, id).await.is_empty());
}

#[tokio::test]
async fn timeout_stops_a_container_step_and_a_host_process_group() {
    let Some(rt) = engine("timeout_stops_a_container_step_and_a_host_process_group").await else {
        return;
    };
    let f = fixture();
    let id = unique_id();
    let marker = f.project.join("..").join("survivor");
    let yaml = format!(
        r#"name: pl-timeout
pipelines:
  ci:
    jobs:
      slow-container:
        image: tug-test/busybox:1
        {SH}
        timeout: 2s
        steps: [echo start, sleep 60, echo never]
      slow-host:
        steps:
          - name: background child
            timeout: 1s
            run: (sleep 3; touch {}) & sleep 60
"#,
        marker.display()
    );
    let o = run_yaml(&f, id, &yaml, Some(rt.clone()), CancellationToken::new()).await;
    let c = o.job("slow-container");
    assert_eq!(c.status, JobStatus::TimedOut, "{c:#?}");
    assert_eq!(c.steps[1].status, JobStatus::TimedOut);
    assert_eq!(c.steps[2].status, JobStatus::Skipped);
    assert!(c.seconds < 20.0, "{c:#?}");
    let h = o.job("slow-host");
    assert_eq!(h.steps[0].status, JobStatus::TimedOut);
    assert_eq!(h.status, JobStatus::Failed);
    assert!(run_containers(&rt, id).await.is_empty());
    // The whole process group went: the background child never wrote its file.
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    assert!(!marker.exists(), "a process of the timed-out step survived");
}

#[tokio::test]
async fn retry_cache_and_artifacts() {
    let Some(rt) = engine("retry_cache_and_artifacts").await else {
        return;
    };
    let f = fixture();
    std::fs::write(f.project.join("Cargo.lock"), "v1").unwrap();
    let yaml = format!(
        r#"name: pl-cache
pipelines:
  ci:
    jobs:
      flaky:
        retry: 2
        steps:
          - n=$(cat count 2>/dev/null || echo 0); echo $((n+1)) > count; echo "attempt $((n+1))"; [ "$n" -ge 1 ]
      build:
        image: tug-test/busybox:1
        {SH}
        cache: [{{ key: deps, files: [Cargo.lock], paths: [deps] }}]
        artifacts: [dist]
        steps:
          - run: |
              if [ -f deps/built ]; then echo "deps from cache: $(cat deps/built)"
              else mkdir -p deps && echo compiled-once > deps/built; fi
          - mkdir -p dist && echo "artifact from build" > dist/out.txt
      use:
        needs: [build]
        image: tug-test/busybox:1
        {SH}
        steps: [cat dist/out.txt, test ! -e deps]
"#
    );
    let first = run_yaml(
        &f,
        unique_id(),
        &yaml,
        Some(rt.clone()),
        CancellationToken::new(),
    )
    .await;
    assert_eq!(
        first.report.status,
        RunStatus::Succeeded,
        "{}",
        first.all_text()
    );
    let flaky = first.job("flaky");
    assert_eq!(flaky.attempts, 2);
    assert!(first.output("flaky").contains(&"attempt 2"));
    let b = first.job("build");
    assert!(!b.cache[0].hit);
    assert!(first.output("use").contains(&"artifact from build"));
    // Second run: the same key hits and restores the directory.
    let second = run_yaml(
        &f,
        unique_id(),
        &yaml,
        Some(rt.clone()),
        CancellationToken::new(),
    )
    .await;
    let b = second.job("build");
    assert!(b.cache[0].hit, "{b:#?}");
    assert_eq!(b.cache[0].key, first.job("build").cache[0].key);
    assert!(second
        .output("build")
        .contains(&"deps from cache: compiled-once"));
    // A changed lock file is a new key: a miss.
    std::fs::write(f.project.join("Cargo.lock"), "v2").unwrap();
    let third = run_yaml(&f, unique_id(), &yaml, Some(rt), CancellationToken::new()).await;
    assert!(!third.job("build").cache[0].hit);
}

#[tokio::test]
async fn service_container_is_gated_on_health_and_reachable() {
    let Some(rt) = engine("service_container_is_gated_on_health_and_reachable").await else {
        return;
    };
    let f = fixture();
    let id = unique_id();
    let svc = r#"
        services:
          web:
            image: tug-test/busybox:1
            command: [/bin/busybox, sh, -c, "sleep 1; echo hello-from-service > /tmp/index.html; exec /bin/busybox httpd -f -p 8080 -h /tmp"]
            port: 8080
            health: { exec: [/bin/busybox, wget, -q, -O, /dev/null, "http://127.0.0.1:8080/index.html"], interval: 500ms, retries: 20 }"#;
    let yaml = format!(
        r#"name: pl-svc
pipelines:
  ci:
    jobs:
      in-container:
        image: tug-test/busybox:1
        {SH}{svc}
        steps: ["wget -q -O - http://$WEB_HOST:8080/index.html"]
      on-host:{svc}
        steps: ["echo port=$WEB_PORT; /bin/busybox wget -q -O - http://127.0.0.1:$WEB_PORT/index.html"]
"#
    );
    let o = run_yaml(&f, id, &yaml, Some(rt.clone()), CancellationToken::new()).await;
    assert_eq!(o.report.status, RunStatus::Succeeded, "{}", o.all_text());
    assert!(
        o.output("in-container").contains(&"hello-from-service"),
        "{}",
        o.all_text()
    );
    assert!(o.output("in-container").contains(&"service `web`: healthy"));
    let port_line = o
        .output("on-host")
        .into_iter()
        .find(|l| l.starts_with("port="))
        .unwrap()
        .to_string();
    assert!(
        port_line["port=".len()..].parse::<u16>().is_ok(),
        "{port_line}"
    );
    assert!(o.output("on-host").contains(&"hello-from-service"));
    // Service containers and the job's network are gone.
    assert!(run_containers(&rt, id).await.is_empty());
    let nets = rt
        .list_networks(&vec![(labels::RUN.to_string(), Some(id.to_string()))])
        .await
        .unwrap();
    assert!(nets.is_empty(), "{nets:?}");
}

#[tokio::test]
async fn secrets_are_masked_in_output_logs_and_reports() {
    let f = fixture();
    let secret_file = f.project.join("token.txt");
    let secret = "tok-9f8e7d6c5b4a";
    std::fs::write(&secret_file, format!("{secret}\n")).unwrap();
    let yaml = r#"name: pl-secret
secrets:
  api_token: { file: ./token.txt }
pipelines:
  ci:
    jobs:
      leak:
        secrets: [api_token]
        steps:
          - echo "plain $API_TOKEN"
          - printf '%s' "$API_TOKEN" | base64
          - printf 'prefix-%s-suffix' "$API_TOKEN" | base64
          - printf '%s' "$API_TOKEN" | fold -w 5
          - name: "echo $API_TOKEN in a failing step"
            run: echo "fail $API_TOKEN" >&2; exit 1
"#;
    let o = run_yaml(&f, unique_id(), yaml, None, CancellationToken::new()).await;
    let text = o.all_text();
    assert!(text.contains("plain ***"), "{text}");
    assert!(text.contains("fail ***"), "{text}");
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(secret);
    for needle in [secret, &b64[..12], "tok-9", "f8e7d", "6c5b4"] {
        assert!(!text.contains(needle), "{needle} leaked:\n{text}");
    }
    let log = std::fs::read_to_string(o.job("leak").log.as_ref().unwrap()).unwrap();
    assert!(log.contains("plain ***"), "{log}");
    assert!(!log.contains(secret) && !log.contains(&b64[..12]), "{log}");
    let report = serde_json::to_string(&o.report).unwrap();
    assert!(!report.contains(secret), "{report}");
    let junit = tug_pipeline::report::junit(&o.report);
    assert!(!junit.contains(secret), "{junit}");
}

#[tokio::test]
async fn interrupting_a_run_stops_its_containers_and_marks_it() {
    let Some(rt) = engine("interrupting_a_run_stops_its_containers_and_marks_it").await else {
        return;
    };
    let f = fixture();
    let id = unique_id();
    let yaml = format!(
        r#"name: pl-cancel
pipelines:
  ci:
    jobs:
      long:
        image: tug-test/busybox:1
        {SH}
        steps:
          - sleep 120
          - {{ run: "echo cleanup cancelled=$TUG_CANCELLED", if: always }}
          - echo never
      later:
        needs: [long]
        if: always
        steps: [echo cleanup]
      after:
        needs: [long]
        steps: [echo never]
"#
    );
    let cancel = CancellationToken::new();
    let c2 = cancel.clone();
    let rt2 = rt.clone();
    let watcher = tokio::spawn(async move {
        // Cancel once the step's container runs.
        for _ in 0..300 {
            if !run_containers(&rt2, id).await.is_empty() {
                c2.cancel();
                return true;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        false
    });
    let o = run_yaml(&f, id, &yaml, Some(rt.clone()), cancel).await;
    assert!(
        watcher.await.unwrap(),
        "the step's container never appeared"
    );
    assert_eq!(o.report.status, RunStatus::Cancelled);
    let long = o.job("long");
    assert_eq!(long.status, JobStatus::Cancelled);
    // The running step stopped; the `always` step ran as cleanup, the next one did not.
    let steps: Vec<JobStatus> = long.steps.iter().map(|s| s.status).collect();
    assert_eq!(
        steps,
        [
            JobStatus::Cancelled,
            JobStatus::Succeeded,
            JobStatus::Skipped
        ]
    );
    assert!(
        o.output("long").contains(&"cleanup cancelled=true"),
        "{}",
        o.all_text()
    );
    // An `if: always` job still starts after the cancel; the others do not.
    assert_eq!(o.job("later").status, JobStatus::Succeeded);
    assert_eq!(o.job("after").status, JobStatus::Cancelled);
    assert!(run_containers(&rt, id).await.is_empty());
}
