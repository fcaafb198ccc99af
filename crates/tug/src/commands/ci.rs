//! `tug ci run|generate`: the CI files a project already has, run here; CI
//! files that call tug.

use crate::exit::{fail, INVALID_INPUT};
use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use tug_pipeline::generate::{self, Ci, Plan};
use tug_pipeline::run::{self, Progress, RunConfig};

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum CiSystem {
    Github,
    Gitlab,
    Jenkins,
}

#[derive(clap::Subcommand, Debug)]
pub enum CiCommand {
    /// Run a GitHub Actions workflow or a .gitlab-ci.yml on this machine
    ///
    /// GitHub: jobs run on the host (Linux `runs-on` labels); `uses:` of
    /// checkout, cache, upload/download-artifact, setup-* (tool on the host),
    /// rust-toolchain and rust-cache have built-in equivalents. Any other
    /// `uses:` is listed first, with what to do, and its job is left out.
    /// GitLab: jobs run in their `image` on the engine, or with --host on
    /// the host. Every left-out job is listed with the reason.
    Run {
        /// .github/workflows/X.yml or .gitlab-ci.yml
        file: PathBuf,
        /// GitHub: run a `runs-on` label's jobs in an image: ubuntu-latest=IMAGE (repeatable)
        #[arg(long, value_name = "LABEL=IMAGE")]
        platform: Vec<String>,
        /// GitHub: `github.event_name` [default: push]
        #[arg(long, default_value = "push")]
        event: String,
        /// GitHub: an input of a workflow_dispatch workflow: NAME=VALUE (repeatable)
        #[arg(long, value_name = "NAME=VALUE")]
        input: Vec<String>,
        /// GitLab: a CI/CD variable: NAME=VALUE (repeatable)
        #[arg(long = "var", value_name = "NAME=VALUE")]
        vars: Vec<String>,
        /// GitLab: run every job on the host, whatever its image
        #[arg(long)]
        host: bool,
        /// Jobs run at once [default: the core count]
        #[arg(long, value_name = "N")]
        parallelism: Option<u32>,
        /// Show what would run and what is left out, then stop
        #[arg(long)]
        list: bool,
    },
    /// Write a CI file that installs tug, runs the stack's pipelines, lints,
    /// scans (SARIF) and pushes the images: `tug ci generate github`
    Generate {
        #[arg(value_enum)]
        system: CiSystem,
        /// Where to write it [default: .github/workflows/tug.yml, .gitlab-ci.yml or Jenkinsfile; `-` for stdout]
        #[arg(long, value_name = "PATH")]
        out: Option<PathBuf>,
        /// Replace an existing file
        #[arg(long)]
        force: bool,
        /// The git URL `cargo install --git` installs tug from [default: the CI variable TUG_GIT_URL]
        #[arg(long, value_name = "URL", default_value = "")]
        tug_git: String,
        /// The default branch, where images are pushed
        #[arg(long, default_value = "main")]
        branch: String,
        /// Do not build and push images
        #[arg(long)]
        no_push: bool,
    },
    /// Runs one step of an imported GitHub job (what `tug ci run` puts in each step)
    #[command(hide = true)]
    GithubStep {
        state: PathBuf,
        job: String,
        step: String,
    },
}

pub(crate) fn pairs(items: &[String], what: &str) -> Result<BTreeMap<String, String>> {
    items
        .iter()
        .map(|s| {
            s.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or_else(|| fail(INVALID_INPUT, format!("{what} `{s}` is not NAME=VALUE")))
        })
        .collect()
}

pub fn run(file: Option<&Path>, cmd: CiCommand) -> Result<ExitCode> {
    match cmd {
        CiCommand::GithubStep { state, job, step } => {
            let code = tug_pipeline::github::runner::run_step(&state, &job, &step)?;
            Ok(ExitCode::from(code.clamp(0, 255) as u8))
        }
        CiCommand::Generate {
            system,
            out,
            force,
            tug_git,
            branch,
            no_push,
        } => {
            let stack = super::spec::load(file)?;
            let ci = match system {
                CiSystem::Github => Ci::Github,
                CiSystem::Gitlab => Ci::Gitlab,
                CiSystem::Jenkins => Ci::Jenkins,
            };
            let has_builds = stack.services.values().any(|s| s.build.is_some());
            let plan = Plan {
                pipelines: stack.pipelines.keys().cloned().collect(),
                push: !no_push && has_builds,
                tug_git,
                file: file.map(|f| f.display().to_string()),
                branch,
            };
            let text = generate::generate(ci, &plan);
            let out = out.unwrap_or_else(|| stack.dir.join(ci.path()));
            if out.as_os_str() == "-" {
                print!("{text}");
                return Ok(ExitCode::SUCCESS);
            }
            if out.exists() && !force {
                return Err(fail(
                    INVALID_INPUT,
                    format!("{} exists: pass --force to replace it", out.display()),
                ));
            }
            if let Some(p) = out.parent() {
                std::fs::create_dir_all(p).with_context(|| format!("creating {}", p.display()))?;
            }
            std::fs::write(&out, text).with_context(|| format!("writing {}", out.display()))?;
            eprintln!("wrote {}", out.display());
            Ok(ExitCode::SUCCESS)
        }
        CiCommand::Run {
            file,
            platform,
            event,
            input,
            vars,
            host,
            parallelism,
            list,
        } => {
            let rt = tokio::runtime::Runtime::new()?;
            rt.block_on(run_file(FileRun {
                file,
                platforms: pairs(&platform, "--platform")?,
                event,
                inputs: pairs(&input, "--input")?,
                variables: pairs(&vars, "--var")?,
                host,
                parallelism,
                list,
                jobs: Vec::new(),
                junit: None,
                report: None,
            }))
        }
    }
}

/// The project a CI file belongs to: above `.github/workflows`, else its directory.
fn project_of(file: &Path) -> PathBuf {
    let abs = std::fs::canonicalize(file).unwrap_or_else(|_| file.to_path_buf());
    let dir = abs.parent().unwrap_or(Path::new(".")).to_path_buf();
    if dir.ends_with(".github/workflows") {
        dir.parent()
            .and_then(Path::parent)
            .map(Path::to_path_buf)
            .unwrap_or(dir)
    } else {
        dir
    }
}

/// A CI file to run: what `tug ci run FILE` and `tug pipeline run --from FILE` ask.
pub struct FileRun {
    pub file: PathBuf,
    /// GitHub: `runs-on` label -> image.
    pub platforms: BTreeMap<String, String>,
    /// GitHub: `github.event_name`.
    pub event: String,
    /// GitHub: workflow_dispatch inputs.
    pub inputs: BTreeMap<String, String>,
    /// GitLab: CI/CD variables.
    pub variables: BTreeMap<String, String>,
    /// GitLab: every job on the host.
    pub host: bool,
    pub parallelism: Option<u32>,
    /// Show the plan and stop.
    pub list: bool,
    /// Only these jobs (imported keys) and what they need; empty: all.
    pub jobs: Vec<String>,
    /// Also write the JUnit XML report here.
    pub junit: Option<PathBuf>,
    /// Also write the JSON report here.
    pub report: Option<PathBuf>,
}

/// Runs a GitHub workflow or a .gitlab-ci.yml: the one code path of both commands.
pub async fn run_file(req: FileRun) -> Result<ExitCode> {
    let FileRun {
        file,
        platforms,
        event,
        inputs,
        variables,
        host,
        parallelism,
        list,
        jobs: only,
        junit,
        report: report_file,
    } = req;
    let src =
        std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
    let project = project_of(&file);
    let name = project
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "ci".into());
    let stack = format!("ci-{name}");
    let state_dir = tug_engine::store::state_dir(&stack);
    let pipeline_name = file
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_default();
    let is_gitlab = file
        .file_name()
        .is_some_and(|n| n.to_string_lossy().contains("gitlab"));
    let mut github_state = None;
    let (pipeline, jobs, notes) = if is_gitlab {
        let opts = tug_pipeline::gitlab::Options {
            workspace: project.clone(),
            on_host: host,
            images: BTreeMap::new(),
            variables,
            on_path: Box::new(tug_pipeline::github::actions::on_path),
        };
        let imp = tug_pipeline::gitlab::import(&file, &src, &opts)
            .map_err(|e| fail(INVALID_INPUT, e.to_string()))?;
        (imp.pipeline, imp.jobs, imp.notes)
    } else {
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let gh_state = state_dir
            .join("github")
            .join(format!("{stamp}-{}", std::process::id()));
        let exe = std::env::current_exe().context("finding tug's own path")?;
        let opts = tug_pipeline::github::Options {
            workspace: project.clone(),
            event,
            inputs,
            platforms,
            step_command: vec![exe.display().to_string(), "ci".into(), "github-step".into()],
            state_dir: gh_state.clone(),
            cache_dir: state_dir.join("github-cache"),
            on_path: Box::new(tug_pipeline::github::actions::on_path),
        };
        let imp = tug_pipeline::github::import(&file, &src, &opts)
            .map_err(|e| fail(INVALID_INPUT, e.to_string()))?;
        let notes = imp
            .uses
            .iter()
            .map(|u| {
                format!(
                    "{}:{}:{}: {} (leaves out {})",
                    u.file.display(),
                    u.at.line,
                    u.at.col,
                    u.advice,
                    u.jobs.join(", ")
                )
            })
            .chain(imp.warnings.iter().map(|w| w.to_string()))
            .collect();
        github_state = Some(gh_state);
        (imp.pipeline, imp.jobs, notes)
    };
    let mut err = std::io::stderr().lock();
    for n in &notes {
        let _ = writeln!(err, "note: {n}");
    }
    for j in &jobs {
        match &j.skipped {
            Some(why) => {
                let _ = writeln!(err, "left out  {}: {why}", j.key);
            }
            None => {
                let _ = writeln!(err, "planned   {}", j.key);
            }
        }
    }
    drop(err);
    if list || pipeline.jobs.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    for j in &only {
        if !pipeline.jobs.contains_key(j) {
            let known: Vec<&str> = pipeline.jobs.keys().map(String::as_str).collect();
            return Err(fail(
                INVALID_INPUT,
                format!(
                    "no job `{j}` runs from {}: it has {}",
                    file.display(),
                    known.join(", ")
                ),
            ));
        }
    }
    std::fs::create_dir_all(&state_dir)
        .with_context(|| format!("creating {}", state_dir.display()))?;
    let store = tug_pipeline::store::RunStore::open(&state_dir.join("tug.db"))?;
    let needs_engine = pipeline
        .jobs
        .values()
        .any(|j| j.image.is_some() || !j.services.is_empty());
    let engine = match tug_runtime::docker::DockerRuntime::connect().await {
        Ok(rt) => Some(rt),
        Err(e) if needs_engine => {
            return Err(anyhow::Error::new(e).context(
                "this pipeline has container jobs (GitLab: --host runs them on the host)",
            ))
        }
        Err(_) => None,
    };
    run::sweep(engine.as_ref(), &store).await?;
    let id = store.begin(&stack, &pipeline_name, &tug_pipeline::exec::owner_tag())?;
    let cancel = CancellationToken::new();
    let cfg = RunConfig {
        id,
        stack,
        pipeline_name,
        pipeline,
        project_dir: project,
        state_dir: state_dir.clone(),
        jobs: only,
        stack_secrets: BTreeMap::new(),
        runtime: engine,
        parallelism,
        cancel: cancel.clone(),
        // GitLab cancels the jobs that have not started, `when: always` ones too.
        always_after_cancel: !is_gitlab,
    };
    store.set_dir(id, &cfg.run_dir())?;
    super::pipeline::on_signal(cancel.clone());
    let observer: run::Observer = Arc::new(|p: Progress| {
        if let Progress::Line { unit, line } = p {
            eprintln!("{unit} | {line}");
        }
    });
    let run_dir = cfg.run_dir();
    let report = run::run(cfg, observer).await?;
    store.finish(&report)?;
    tug_pipeline::trigger::keep_reports(&run_dir, &report)?;
    tug_pipeline::trigger::write_reports(&report, report_file.as_deref(), junit.as_deref())?;
    // GitHub: what each step did, as the step runner recorded it.
    if let Some(s) = github_state {
        for (key, r) in tug_pipeline::github::runner::results(&s) {
            println!("{key}: {}", r.result);
            for st in r.steps {
                let note = if st.note.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", st.note)
                };
                println!("  {:<9} {}{note}", st.conclusion, st.name);
            }
        }
    }
    for j in &report.jobs {
        println!(
            "{:<12} {}",
            format!("{:?}", j.status).to_lowercase(),
            j.name
        );
    }
    Ok(super::pipeline::exit_code(
        report.status,
        cancel.is_cancelled(),
    ))
}
