//! The pipeline model: the `pipelines:` section of tug.yaml, resolved.
//!
//! A pipeline is a DAG of jobs (`needs`); a job is a list of shell steps run
//! on the host or in a container image. Importers of other CI formats build
//! the same types. Field names are the tug.yaml keys.

use crate::model::Health;
use crate::units::Duration;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One pipeline: jobs by name.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pipeline {
    #[serde(default)]
    pub jobs: BTreeMap<String, Job>,
    /// Environment given to every job (a job's own entries win).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Jobs run at once; unset: the number of cores.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallelism: Option<u32>,
    #[serde(default)]
    pub workspace: WorkspaceMode,
    /// When the agent runs the pipeline by itself.
    #[serde(default, rename = "on", skip_serializing_if = "Triggers::is_empty")]
    pub on: Triggers,
    /// At most one run of the group at a time, across tug processes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<Concurrency>,
}

/// A concurrency group: runs (or jobs) of the same group never overlap.
/// A newer one cancels the running one when `cancel_in_progress`, else it
/// waits; a waiting one is replaced by a newer one (as on GitHub).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Concurrency {
    /// The group's name; in a job, `${{ matrix.NAME }}` stands for the
    /// combination's value.
    pub group: String,
    #[serde(default)]
    pub cancel_in_progress: bool,
}

/// `on:` of a pipeline: what makes the agent run it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Triggers {
    /// Cron patterns, in UTC: 5 fields, or 6 with seconds first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub schedule: Vec<String>,
    /// A push webhook (GitHub or GitLab), signed with a shared secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<Webhook>,
}

impl Triggers {
    pub fn is_empty(&self) -> bool {
        self.schedule.is_empty() && self.webhook.is_none()
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Webhook {
    /// The stack secret that holds the shared secret.
    pub secret: String,
    /// Only pushes to these branches run it; empty: any push.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub branches: Vec<String>,
}

/// Where a job's steps run relative to the project directory.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkspaceMode {
    /// Each job gets a fresh copy of the project (files ignored by
    /// `.gitignore` and `.git` left out); artifacts and caches carry files
    /// between jobs and runs, as on a CI runner.
    #[default]
    Copy,
    /// Every job runs in the project directory itself.
    Shared,
}

/// One job: steps run in order in one workspace.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Job {
    /// Jobs that finish before this one starts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub needs: Vec<String>,
    #[serde(default)]
    pub steps: Vec<Step>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Secrets exposed as environment variables and masked in all output.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<SecretRef>,
    /// An image to run the steps in (a container on the engine with the
    /// workspace mounted); unset: the host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Directory the steps start in, relative to the workspace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    /// Time the whole job may take (each attempt).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    /// Further attempts after a failed one.
    #[serde(default)]
    pub retry: u32,
    /// When the job runs, given how its `needs` ended.
    #[serde(default, rename = "if")]
    pub when: When,
    /// A failure of this job does not fail the pipeline or its dependents.
    #[serde(default)]
    pub continue_on_error: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matrix: Option<Matrix>,
    /// Sidecar containers started before the steps, gated on their health.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub services: BTreeMap<String, JobService>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cache: Vec<Cache>,
    /// Files and directories (relative to the workspace) kept after the job
    /// and put into the workspace of the jobs that need it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub artifacts: Vec<String>,
    /// Globs of the files the job depends on: `tug pipeline watch` reruns
    /// only the jobs whose paths match a change (and their dependents).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<String>,
    /// The shell a step runs in, the script appended as the last argument;
    /// unset: `sh -e -c`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<Vec<String>>,
    /// At most one unit of the group at a time, across runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<Concurrency>,
}

/// One step: a shell script.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The script, run with the job's shell.
    pub run: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Relative to the job's working directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    #[serde(default)]
    pub continue_on_error: bool,
    /// When the step runs, given how the steps before it ended.
    #[serde(default, rename = "if")]
    pub when: When,
}

impl Step {
    /// How the step is shown: its name, else the first line of its script.
    pub fn label(&self) -> String {
        match &self.name {
            Some(n) => n.clone(),
            None => self.run.lines().next().unwrap_or("").trim().to_string(),
        }
    }
}

/// When a job (or step) runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum When {
    /// Everything before it succeeded.
    #[default]
    OnSuccess,
    /// Something before it failed.
    OnFailure,
    /// In any case (unless the run is interrupted).
    Always,
}

/// A secret given to a job as the environment variable `env`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretRef {
    pub env: String,
    pub from: SecretSource,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecretSource {
    /// A stack secret (`secrets:` at the top of tug.yaml): the file's contents.
    Secret(String),
    /// A variable of tug's own environment.
    Env(String),
}

/// Runs a job once per combination of axis values.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Matrix {
    /// Axis name -> values; the job runs for every combination.
    #[serde(default)]
    pub axes: BTreeMap<String, Vec<String>>,
    /// Extra combinations.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub include: Vec<BTreeMap<String, String>>,
    /// Combinations left out (a partial map leaves out every match).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<BTreeMap<String, String>>,
    /// Cancel the other combinations when one fails.
    #[serde(default)]
    pub fail_fast: bool,
    /// Combinations run at once; unset: no limit beyond the pipeline's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_parallel: Option<u32>,
}

impl Matrix {
    /// Every combination, in axis order, then the included ones.
    pub fn combinations(&self) -> Vec<BTreeMap<String, String>> {
        let mut out: Vec<BTreeMap<String, String>> = vec![BTreeMap::new()];
        for (axis, values) in &self.axes {
            let mut next = Vec::with_capacity(out.len() * values.len());
            for combo in &out {
                for v in values {
                    let mut c = combo.clone();
                    c.insert(axis.clone(), v.clone());
                    next.push(c);
                }
            }
            out = next;
        }
        if self.axes.is_empty() {
            out.clear();
        }
        out.retain(|c| {
            !self
                .exclude
                .iter()
                .any(|ex| ex.iter().all(|(k, v)| c.get(k) == Some(v)))
        });
        for inc in &self.include {
            if !out.contains(inc) {
                out.push(inc.clone());
            }
        }
        out
    }
}

/// A sidecar container for a job, reachable by its name from a container
/// job, and on 127.0.0.1 at a published port from a host job.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobService {
    pub image: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    /// The port it listens on (published on 127.0.0.1 for host jobs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Steps start once this check passes; unset: once it runs (or, with a
    /// port, once the port accepts connections).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<Health>,
}

/// Directories saved after a successful job and restored before the next
/// run of it, under a key made from the hashes of `files`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cache {
    /// A prefix of the key (the hashes of `files` follow it).
    pub key: String,
    /// Globs, relative to the workspace, whose contents make the key.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<String>,
    /// Directories (relative to the workspace) saved and restored.
    pub paths: Vec<String>,
}
