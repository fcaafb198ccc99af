//! What a run did: the result types (also the JSON report and what the
//! store keeps) and the JUnit XML report.

use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Running,
    Succeeded,
    Failed,
    /// tug died (killed, or a second Ctrl-C) before the run finished: the
    /// next pipeline command found it so.
    Interrupted,
    /// Cancelled before it finished: by Ctrl-C or SIGTERM (the caller's
    /// token), or by a newer run of its concurrency group.
    Cancelled,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Interrupted => "interrupted",
            RunStatus::Cancelled => "cancelled",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "running" => RunStatus::Running,
            "succeeded" => RunStatus::Succeeded,
            "failed" => RunStatus::Failed,
            "interrupted" => RunStatus::Interrupted,
            "cancelled" => RunStatus::Cancelled,
            _ => return None,
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    Succeeded,
    Failed,
    TimedOut,
    Skipped,
    Cancelled,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Succeeded => "succeeded",
            JobStatus::Failed => "failed",
            JobStatus::TimedOut => "timed out",
            JobStatus::Skipped => "skipped",
            JobStatus::Cancelled => "cancelled",
        }
    }
    pub fn failed(self) -> bool {
        matches!(self, JobStatus::Failed | JobStatus::TimedOut)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepReport {
    pub name: String,
    pub status: JobStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i64>,
    /// Failed, but `continue_on_error` let the job go on.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allowed_failure: bool,
    pub seconds: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CacheReport {
    pub key: String,
    pub hit: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobReport {
    /// `test` or `test (stable)`.
    pub name: String,
    pub job: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub matrix: BTreeMap<String, String>,
    pub status: JobStatus,
    /// Failed, but `continue_on_error`: it does not fail the run.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allowed_failure: bool,
    /// Why it was skipped, cancelled or failed before its steps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub attempts: u32,
    pub seconds: f64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<StepReport>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cache: Vec<CacheReport>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<PathBuf>,
}

impl JobReport {
    /// Failed in a way that fails the run.
    pub fn blocks(&self) -> bool {
        self.status.failed() && !self.allowed_failure
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    pub id: i64,
    pub stack: String,
    pub pipeline: String,
    pub status: RunStatus,
    /// Seconds since the epoch.
    pub started: i64,
    pub seconds: f64,
    pub jobs: Vec<JobReport>,
}

/// JUnit XML: one testsuite per run, one testcase per step (skipped jobs
/// as one skipped testcase), the shape CI dashboards read.
pub fn junit(r: &RunReport) -> String {
    let mut w = quick_xml::Writer::new_with_indent(Vec::new(), b' ', 2);
    let steps: Vec<(&JobReport, Option<&StepReport>)> = r
        .jobs
        .iter()
        .flat_map(|j| {
            if j.steps.is_empty() {
                vec![(j, None)]
            } else {
                j.steps.iter().map(|s| (j, Some(s))).collect()
            }
        })
        .collect();
    let count = |f: &dyn Fn(JobStatus, bool) -> bool| {
        steps
            .iter()
            .filter(|(j, s)| match s {
                Some(s) => f(s.status, s.allowed_failure),
                None => f(j.status, j.allowed_failure),
            })
            .count()
            .to_string()
    };
    let tests = steps.len().to_string();
    // A failure `continue_on_error` allowed is reported, not counted.
    let failures = count(&|st, allowed| st.failed() && !allowed);
    let skipped = count(&|st, _| matches!(st, JobStatus::Skipped | JobStatus::Cancelled));
    let time = format!("{:.3}", r.seconds);
    let _ = w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)));
    let suite_name = format!("{}/{}", r.stack, r.pipeline);
    let mut suites = BytesStart::new("testsuites");
    suites.push_attribute(("name", suite_name.as_str()));
    suites.push_attribute(("tests", tests.as_str()));
    suites.push_attribute(("failures", failures.as_str()));
    suites.push_attribute(("time", time.as_str()));
    let _ = w.write_event(Event::Start(suites));
    let mut suite = BytesStart::new("testsuite");
    let id = r.id.to_string();
    suite.push_attribute(("name", suite_name.as_str()));
    suite.push_attribute(("id", id.as_str()));
    suite.push_attribute(("tests", tests.as_str()));
    suite.push_attribute(("failures", failures.as_str()));
    suite.push_attribute(("errors", "0"));
    suite.push_attribute(("skipped", skipped.as_str()));
    suite.push_attribute(("time", time.as_str()));
    let _ = w.write_event(Event::Start(suite));
    for (j, s) in steps {
        let (name, status, secs, code, allowed) = match s {
            Some(s) => (
                s.name.as_str(),
                s.status,
                s.seconds,
                s.exit_code,
                s.allowed_failure,
            ),
            None => (
                j.name.as_str(),
                j.status,
                j.seconds,
                None,
                j.allowed_failure,
            ),
        };
        let mut tc = BytesStart::new("testcase");
        tc.push_attribute(("classname", j.name.as_str()));
        tc.push_attribute(("name", name));
        let t = format!("{secs:.3}");
        tc.push_attribute(("time", t.as_str()));
        let _ = w.write_event(Event::Start(tc));
        match status {
            JobStatus::Failed | JobStatus::TimedOut if allowed => {
                let note = match code {
                    Some(c) => format!(
                        "{} (exit code {c}), allowed by continue_on_error",
                        status.as_str()
                    ),
                    None => format!("{}, allowed by continue_on_error", status.as_str()),
                };
                let _ = w.write_event(Event::Start(BytesStart::new("system-out")));
                let _ = w.write_event(Event::Text(BytesText::new(&note)));
                let _ = w.write_event(Event::End(BytesEnd::new("system-out")));
            }
            JobStatus::Failed | JobStatus::TimedOut => {
                let msg = match (status, code) {
                    (JobStatus::TimedOut, _) => "timed out".to_string(),
                    (_, Some(c)) => format!("exit code {c}"),
                    _ => j.reason.clone().unwrap_or_else(|| "failed".into()),
                };
                let mut f = BytesStart::new("failure");
                f.push_attribute(("message", msg.as_str()));
                f.push_attribute(("type", status.as_str()));
                let _ = w.write_event(Event::Empty(f));
            }
            JobStatus::Skipped | JobStatus::Cancelled => {
                // A step says which of the two it is, then the job's reason.
                let msg = match (s, &j.reason) {
                    (Some(_), Some(r)) => format!("{}: {r}", status.as_str()),
                    (None, Some(r)) => r.clone(),
                    (_, None) => status.as_str().into(),
                };
                let mut f = BytesStart::new("skipped");
                f.push_attribute(("message", msg.as_str()));
                let _ = w.write_event(Event::Empty(f));
            }
            JobStatus::Succeeded => {}
        }
        if let (Some(log), None) = (&j.log, s) {
            let p = log.display().to_string();
            let _ = w.write_event(Event::Start(BytesStart::new("system-out")));
            let _ = w.write_event(Event::Text(BytesText::new(&p)));
            let _ = w.write_event(Event::End(BytesEnd::new("system-out")));
        }
        let _ = w.write_event(Event::End(BytesEnd::new("testcase")));
    }
    let _ = w.write_event(Event::End(BytesEnd::new("testsuite")));
    let _ = w.write_event(Event::End(BytesEnd::new("testsuites")));
    let mut out = String::from_utf8_lossy(&w.into_inner()).into_owned();
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(name: &str, status: JobStatus, allowed: bool) -> StepReport {
        StepReport {
            name: name.into(),
            status,
            exit_code: Some(if status == JobStatus::Succeeded { 0 } else { 1 }),
            allowed_failure: allowed,
            seconds: 0.5,
        }
    }

    #[test]
    fn junit_counts_blocking_failures_and_escapes() {
        let job = |name: &str, status, steps| JobReport {
            name: name.into(),
            job: name.into(),
            matrix: BTreeMap::new(),
            status,
            allowed_failure: false,
            reason: Some("`a` & <b> did not succeed".into()),
            attempts: 1,
            seconds: 1.0,
            steps,
            cache: Vec::new(),
            log: None,
        };
        let r = RunReport {
            id: 7,
            stack: "shop".into(),
            pipeline: "ci".into(),
            status: RunStatus::Failed,
            started: 0,
            seconds: 2.0,
            jobs: vec![
                job(
                    "test",
                    JobStatus::Failed,
                    vec![
                        step("ok", JobStatus::Succeeded, false),
                        step("lint", JobStatus::Failed, true),
                        step("unit <x>", JobStatus::Failed, false),
                    ],
                ),
                job("deploy", JobStatus::Skipped, Vec::new()),
            ],
        };
        let x = junit(&r);
        assert!(x.contains(r#"tests="4" failures="1""#), "{x}");
        assert!(x.contains(r#"skipped="1""#), "{x}");
        assert!(x.contains("allowed by continue_on_error"), "{x}");
        assert!(x.contains("unit &lt;x&gt;"), "{x}");
        assert!(x.contains("&amp; &lt;b&gt;"), "{x}");
        assert_eq!(x.matches("<failure").count(), 1, "{x}");
    }
}
