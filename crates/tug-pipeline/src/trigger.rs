//! Running a pipeline of a stack, as `tug pipeline run` does and as the
//! agent does on a schedule or a webhook; what a webhook must prove.
//!
//! A webhook is refused unless it is signed with the pipeline's shared
//! secret: GitHub's `X-Hub-Signature-256` (HMAC-SHA256 of the body) or
//! GitLab's `X-Gitlab-Token` (the secret itself). Both are compared in
//! constant time; the secret is never logged.

use crate::report::RunReport;
use crate::run::{self, Observer, RunConfig};
use crate::store::RunStore;
use hmac::{Hmac, Mac};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tokio_util::sync::CancellationToken;

#[derive(Debug, thiserror::Error)]
pub enum TriggerError {
    #[error(transparent)]
    Store(#[from] crate::store::RunStoreError),
    #[error(transparent)]
    Run(#[from] run::RunError),
    #[error("this pipeline has container jobs, and the engine does not answer: {0}")]
    Engine(#[source] tug_runtime::RuntimeError),
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// One run of a stack's pipeline.
pub struct StackRun<'a> {
    pub stack: &'a tug_spec::Stack,
    pub pipeline: &'a str,
    pub state_dir: &'a Path,
    /// Only these jobs and what they need; empty: all.
    pub jobs: Vec<String>,
    pub parallelism: Option<u32>,
    pub cancel: CancellationToken,
}

/// A finished run and where its files are.
pub struct Ran {
    pub report: RunReport,
    pub run_dir: PathBuf,
}

/// Sweeps what dead runs left, records the run in the stack's store, runs
/// it, and writes `report.json` and `junit.xml` in its run directory.
/// `on_begin` gets the run id before the first job starts, and the runs
/// of dead tugs just marked interrupted.
pub async fn run_stack(
    r: StackRun<'_>,
    on_begin: impl FnOnce(i64, &[i64]),
    observer: Observer,
) -> Result<Ran, TriggerError> {
    let pipeline = r.stack.pipelines[r.pipeline].clone();
    let store = RunStore::open(&r.state_dir.join("tug.db"))?;
    let needs_engine = pipeline
        .jobs
        .values()
        .any(|j| j.image.is_some() || !j.services.is_empty());
    let rt = match tug_runtime::docker::DockerRuntime::connect().await {
        Ok(rt) => Some(rt),
        Err(e) if needs_engine => return Err(TriggerError::Engine(e)),
        Err(_) => None,
    };
    let swept = run::sweep(rt.as_ref(), &store).await?;
    let id = store.begin(&r.stack.name, r.pipeline, &crate::exec::owner_tag())?;
    let cfg = RunConfig {
        id,
        stack: r.stack.name.clone(),
        pipeline_name: r.pipeline.to_string(),
        pipeline,
        project_dir: r.stack.dir.clone(),
        state_dir: r.state_dir.to_path_buf(),
        jobs: r.jobs,
        stack_secrets: r
            .stack
            .secrets
            .iter()
            .map(|(k, v)| (k.clone(), v.file.clone()))
            .collect(),
        runtime: rt,
        parallelism: r.parallelism,
        cancel: r.cancel,
        always_after_cancel: true,
    };
    let run_dir = cfg.run_dir();
    store.set_dir(id, &run_dir)?;
    on_begin(id, &swept);
    let report = run::run(cfg, observer).await?;
    store.finish(&report)?;
    keep_reports(&run_dir, &report)?;
    Ok(Ran { report, run_dir })
}

/// Writes the run's JSON report and JUnit XML into its directory.
pub fn keep_reports(run_dir: &Path, report: &RunReport) -> Result<(), TriggerError> {
    write_reports(
        report,
        Some(&run_dir.join("report.json")),
        Some(&run_dir.join("junit.xml")),
    )
}

/// Writes the run's JSON report to `json` and its JUnit XML to `junit`,
/// each when given.
pub fn write_reports(
    report: &RunReport,
    json: Option<&Path>,
    junit: Option<&Path>,
) -> Result<(), TriggerError> {
    let write = |path: &Path, text: String| {
        std::fs::write(path, text).map_err(|source| TriggerError::Write {
            path: path.to_path_buf(),
            source,
        })
    };
    if let Some(p) = json {
        write(p, serde_json::to_string_pretty(report).unwrap_or_default())?;
    }
    if let Some(p) = junit {
        write(p, crate::report::junit(report))?;
    }
    Ok(())
}

/// Why a webhook was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HookError {
    #[error("the request is not signed: GitHub sends X-Hub-Signature-256, GitLab X-Gitlab-Token")]
    Unsigned,
    #[error("the signature does not match the pipeline's secret")]
    BadSignature,
    #[error("the payload is not a push event's JSON")]
    NotAPush,
}

/// Which system sent a webhook, by its headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sender {
    Github,
    Gitlab,
}

impl Sender {
    pub fn as_str(self) -> &'static str {
        match self {
            Sender::Github => "github",
            Sender::Gitlab => "gitlab",
        }
    }
}

/// Checks a webhook's signature against `secret`, in constant time.
/// `github_signature` is `X-Hub-Signature-256` (`sha256=<hex>`),
/// `gitlab_token` is `X-Gitlab-Token`.
pub fn verify(
    secret: &[u8],
    body: &[u8],
    github_signature: Option<&str>,
    gitlab_token: Option<&str>,
) -> Result<Sender, HookError> {
    if let Some(sig) = github_signature {
        let hex_sig = sig
            .trim()
            .strip_prefix("sha256=")
            .ok_or(HookError::BadSignature)?;
        let given = hex::decode(hex_sig).map_err(|_| HookError::BadSignature)?;
        let mut mac =
            Hmac::<sha2::Sha256>::new_from_slice(secret).map_err(|_| HookError::BadSignature)?;
        mac.update(body);
        // verify_slice compares in constant time.
        return mac
            .verify_slice(&given)
            .map(|_| Sender::Github)
            .map_err(|_| HookError::BadSignature);
    }
    if let Some(token) = gitlab_token {
        use subtle::ConstantTimeEq;
        let ok: bool = token.as_bytes().ct_eq(secret).into();
        return if ok {
            Ok(Sender::Gitlab)
        } else {
            Err(HookError::BadSignature)
        };
    }
    Err(HookError::Unsigned)
}

/// The branch a push payload (GitHub or GitLab) pushed to, from its `ref`.
pub fn pushed_branch(body: &[u8]) -> Result<Option<String>, HookError> {
    let v: serde_json::Value = serde_json::from_slice(body).map_err(|_| HookError::NotAPush)?;
    Ok(v.get("ref")
        .and_then(|r| r.as_str())
        .map(|r| r.strip_prefix("refs/heads/").unwrap_or(r).to_string()))
}

/// The next time after `after` that any of `patterns` fires (patterns that
/// do not parse were refused when tug.yaml was read).
pub fn next_fire(
    patterns: &[String],
    after: chrono::DateTime<chrono::Utc>,
) -> Option<chrono::DateTime<chrono::Utc>> {
    patterns
        .iter()
        .filter_map(|p| p.parse::<croner::Cron>().ok())
        .filter_map(|c| c.find_next_occurrence(&after, false).ok())
        .min()
}

/// The pipelines of a stack that have a schedule, with their patterns.
pub fn scheduled(stack: &tug_spec::Stack) -> BTreeMap<String, Vec<String>> {
    stack
        .pipelines
        .iter()
        .filter(|(_, p)| !p.on.schedule.is_empty())
        .map(|(n, p)| (n.clone(), p.on.schedule.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn github_sig(secret: &[u8], body: &[u8]) -> String {
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret).unwrap();
        mac.update(body);
        format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
    }

    #[test]
    fn github_signatures() {
        let body = br#"{"ref":"refs/heads/main"}"#;
        let sig = github_sig(b"s3cret", body);
        assert_eq!(
            verify(b"s3cret", body, Some(&sig), None),
            Ok(Sender::Github)
        );
        assert_eq!(
            verify(b"other", body, Some(&sig), None),
            Err(HookError::BadSignature)
        );
        assert_eq!(
            verify(b"s3cret", b"{}", Some(&sig), None),
            Err(HookError::BadSignature)
        );
        assert_eq!(
            verify(b"s3cret", body, Some("sha1=abc"), None),
            Err(HookError::BadSignature)
        );
        assert_eq!(
            verify(b"s3cret", body, Some("sha256=zz"), None),
            Err(HookError::BadSignature)
        );
        assert_eq!(
            verify(b"s3cret", body, None, None),
            Err(HookError::Unsigned)
        );
        assert_eq!(pushed_branch(body), Ok(Some("main".into())));
        assert_eq!(pushed_branch(b"not json"), Err(HookError::NotAPush));
    }

    #[test]
    fn gitlab_tokens() {
        assert_eq!(verify(b"tok", b"{}", None, Some("tok")), Ok(Sender::Gitlab));
        assert_eq!(
            verify(b"tok", b"{}", None, Some("tok2")),
            Err(HookError::BadSignature)
        );
        assert_eq!(
            verify(b"tok", b"{}", None, Some("")),
            Err(HookError::BadSignature)
        );
    }

    #[test]
    fn schedules() {
        use chrono::TimeZone;
        let t = chrono::Utc.with_ymd_and_hms(2026, 1, 1, 10, 30, 0).unwrap();
        let hourly = vec!["0 * * * *".to_string()];
        assert_eq!(
            next_fire(&hourly, t),
            Some(chrono::Utc.with_ymd_and_hms(2026, 1, 1, 11, 0, 0).unwrap())
        );
        let both = vec!["0 * * * *".to_string(), "*/10 * * * * *".to_string()];
        assert_eq!(
            next_fire(&both, t),
            Some(
                chrono::Utc
                    .with_ymd_and_hms(2026, 1, 1, 10, 30, 10)
                    .unwrap()
            )
        );
        assert_eq!(next_fire(&["nope".to_string()], t), None);
    }
}
