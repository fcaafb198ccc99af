//! `tug dev`: the inner loop. Watches the sources of every service with a
//! `build:`, and on a change sends the stack to the agent's `POST /v1/up`
//! (the path `tug up -d` takes): the one builder rebuilds (cargo's target
//! directory is kept, so a Rust rebuild is incremental; built images are
//! tagged by content, so a service whose image did not change is left
//! alone) and the health-gated rolling update replaces the replicas. Each
//! cycle prints its edit-to-serving latency: from the first change seen to
//! the new replicas passing their health gates.
//!
//! ```text
//! edit ──► notify ──► debounce ──► which services? ──► POST /v1/up ──► healthy
//!                                                   (build, roll out)   │
//!                       "web: serving 1.8s after the edit" ◄────────────┘
//! ```

use crate::output::OutputFormat;
use anyhow::{Context, Result};
use console::style;
use ignore::gitignore::{Gitignore, GitignoreBuilder};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};
use tug_runtime::Runtime;

/// What a service's image is built from, what of it is left out, and its
/// `develop.watch` rules (each with its `ignore` patterns).
struct Sources {
    service: String,
    roots: Vec<PathBuf>,
    ignores: Vec<Gitignore>,
    rules: Vec<(tug_spec::WatchRule, Option<Gitignore>)>,
}

/// What a change asks of a service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Act {
    Rebuild,
    /// Sync by the rule at this index.
    Sync(usize),
}

impl Sources {
    /// The first rule that covers `p` decides; else a build source rebuilds.
    fn act(&self, p: &Path) -> Option<Act> {
        let hidden = p
            .components()
            .any(|c| c.as_os_str() == ".git" || c.as_os_str() == "target");
        if hidden {
            return None;
        }
        for (i, (r, ignore)) in self.rules.iter().enumerate() {
            let Ok(rel) = p.strip_prefix(&r.path) else {
                continue;
            };
            if ignore
                .as_ref()
                .is_some_and(|g| g.matched_path_or_any_parents(rel, p.is_dir()).is_ignore())
            {
                return None;
            }
            return Some(match r.action {
                tug_spec::WatchAction::Rebuild => Act::Rebuild,
                _ => Act::Sync(i),
            });
        }
        self.covers(p).then_some(Act::Rebuild)
    }

    fn covers(&self, p: &Path) -> bool {
        self.roots.iter().any(|r| p.starts_with(r))
            && !p
                .components()
                .any(|c| c.as_os_str() == ".git" || c.as_os_str() == "target")
            && !self.ignores.iter().any(|g| {
                p.strip_prefix(g.path())
                    .is_ok_and(|rel| g.matched_path_or_any_parents(rel, p.is_dir()).is_ignore())
            })
    }
}

/// `.gitignore` files from `dir` up to the repository's root, and `extra`.
fn ignores_for(dir: &Path, extra: Option<&Path>) -> Vec<Gitignore> {
    let mut out = Vec::new();
    if let Some(f) = extra.filter(|f| f.exists()) {
        let mut b = GitignoreBuilder::new(f.parent().unwrap_or(dir));
        b.add(f);
        if let Ok(g) = b.build() {
            out.push(g);
        }
    }
    for d in dir.ancestors() {
        let f = d.join(".gitignore");
        if f.exists() {
            let mut b = GitignoreBuilder::new(d);
            b.add(&f);
            if let Ok(g) = b.build() {
                out.push(g);
            }
        }
        if d.join(".git").exists() {
            break;
        }
    }
    out
}

/// The directories of a cargo package and of the workspace packages it
/// depends on by path (from `cargo metadata`): what its build reads.
fn rust_sources(workspace: &Path, package: &str) -> Result<Vec<PathBuf>> {
    let out = std::process::Command::new("cargo")
        .args(["metadata", "--no-deps", "--format-version", "1"])
        .current_dir(workspace)
        .stderr(std::process::Stdio::inherit())
        .output()
        .context("running `cargo metadata`")?;
    anyhow::ensure!(
        out.status.success(),
        "`cargo metadata` failed in {}",
        workspace.display()
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let packages = meta["packages"].as_array().cloned().unwrap_or_default();
    let dir_of = |name: &str| {
        packages.iter().find(|p| p["name"] == name).and_then(|p| {
            Path::new(p["manifest_path"].as_str()?)
                .parent()
                .map(Path::to_path_buf)
        })
    };
    let mut todo = vec![package.to_string()];
    let mut seen = BTreeSet::new();
    let mut dirs = vec![workspace.join("Cargo.lock"), workspace.join("Cargo.toml")];
    while let Some(name) = todo.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        let Some(dir) = dir_of(&name) else { continue };
        dirs.push(dir);
        let deps = packages
            .iter()
            .find(|p| p["name"] == name.as_str())
            .and_then(|p| p["dependencies"].as_array().cloned())
            .unwrap_or_default();
        for d in deps {
            if d.get("path").is_some_and(|p| !p.is_null()) {
                if let Some(n) = d["name"].as_str() {
                    todo.push(n.to_string());
                }
            }
        }
    }
    anyhow::ensure!(
        seen.iter().any(|n| dir_of(n).is_some()),
        "no package `{package}` in the cargo workspace {}",
        workspace.display()
    );
    Ok(dirs)
}

fn sources(stack: &tug_spec::Stack) -> Result<Vec<Sources>> {
    let mut out = Vec::new();
    for (name, s) in &stack.services {
        let Some(b) = &s.build else { continue };
        let (roots, ignores) = match &b.rust {
            Some(rb) => {
                let ws = tug_engine::images::workspace_dir(stack, rb).with_context(|| {
                    format!(
                        "service `{name}`: no Cargo.lock at or above {}",
                        stack.dir.display()
                    )
                })?;
                let roots = rust_sources(&ws, &rb.package)?;
                let ignores = ignores_for(roots.get(2).unwrap_or(&ws), None);
                (roots, ignores)
            }
            None => {
                let ctx = stack
                    .dir
                    .join(b.context.clone().unwrap_or_else(|| PathBuf::from(".")));
                let ctx = std::fs::canonicalize(&ctx).unwrap_or(ctx);
                let ignores = ignores_for(&ctx, Some(&ctx.join(".dockerignore")));
                (vec![ctx], ignores)
            }
        };
        out.push(Sources {
            service: name.clone(),
            roots,
            ignores,
            rules: rules_of(s),
        });
    }
    // Services run from an image can still sync.
    for (name, s) in &stack.services {
        if s.build.is_none() && !s.develop.is_empty() {
            out.push(Sources {
                service: name.clone(),
                roots: Vec::new(),
                ignores: Vec::new(),
                rules: rules_of(s),
            });
        }
    }
    Ok(out)
}

fn rules_of(s: &tug_spec::Service) -> Vec<(tug_spec::WatchRule, Option<Gitignore>)> {
    s.develop
        .iter()
        .map(|r| {
            let r = tug_spec::WatchRule {
                path: std::fs::canonicalize(&r.path).unwrap_or(r.path.clone()),
                ..r.clone()
            };
            let ignore = (!r.ignore.is_empty()).then(|| {
                let mut b = GitignoreBuilder::new(&r.path);
                for line in &r.ignore {
                    let _ = b.add_line(None, line);
                }
                b.build().ok()
            });
            (r, ignore.flatten())
        })
        .collect()
}

/// Where a synced file goes: the directory to unpack in, and its name there.
fn sync_place(rule: &tug_spec::WatchRule, p: &Path) -> Option<(String, String)> {
    let target = rule.target.as_deref()?;
    let rel = p.strip_prefix(&rule.path).ok()?;
    if rel.as_os_str().is_empty() {
        // The rule names a file: `target` is that file inside.
        let t = Path::new(target);
        let dir = t.parent()?.display().to_string();
        let name = t.file_name()?.to_string_lossy().into_owned();
        return Some((dir, name));
    }
    Some((target.to_string(), rel.display().to_string()))
}

/// Follows the logs of `services` (new lines only) until aborted.
fn follow_logs(
    socket: &Path,
    stack: &tug_spec::Stack,
    services: &BTreeSet<String>,
) -> Vec<tokio::task::JoinHandle<()>> {
    services
        .iter()
        .map(|s| {
            let agent = tug_api::client::Client::at(socket);
            let path = format!("/v1/logs?follow=true&tail=0&service={s}");
            let width = stack.services.keys().map(String::len).max().unwrap_or(0) + 3;
            tokio::spawn(async move {
                let _ = agent
                    .get_lines(&path, |l| {
                        if let Ok(line) = serde_json::from_str::<tug_engine::ReplicaLine>(l) {
                            let prefix = format!("{}-{}", line.service, line.replica);
                            println!(
                                "{} {}",
                                style(format!("{prefix:<width$} |")).cyan(),
                                line.text
                            );
                        }
                    })
                    .await;
            })
        })
        .collect()
}

pub async fn dev(
    file: Option<&Path>,
    output: OutputFormat,
    debounce: Duration,
    timeout: Duration,
    logs: bool,
) -> Result<ExitCode> {
    use notify::{EventKind, RecursiveMode, Watcher};
    let stack = super::spec::load(file)?;
    if !stack.services.values().any(|s| s.build.is_some()) {
        return Err(crate::exit::fail(
            crate::exit::INVALID_INPUT,
            format!(
                "{}: no service has a `build:`, so there is nothing to watch; give one, e.g. `build: {{ rust: {{ package: NAME }} }}` or `build: {{ context: . }}`",
                stack.file.display()
            ),
        ));
    }
    let rt = super::stack::connect(&stack).await?;
    let pid = super::agent::ensure_running(&stack, rt.kind()).await?;
    let (socket, _, _) = tug_engine::ops::agent_paths(&stack.name);
    let agent = tug_api::client::Client::at(&socket);
    super::stack::through_agent(&agent, &stack, timeout, output).await?;
    let spec_file = std::fs::canonicalize(&stack.file).unwrap_or(stack.file.clone());

    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(Instant, PathBuf)>();
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        if let Ok(ev) = res {
            if !matches!(ev.kind, EventKind::Access(_) | EventKind::Other) {
                let now = Instant::now();
                for p in ev.paths {
                    let _ = tx.send((now, p));
                }
            }
        }
    })
    .context("starting the file watcher")?;
    let mut watched = BTreeSet::new();
    let mut watch =
        |stack: &tug_spec::Stack, w: &mut notify::RecommendedWatcher| -> Result<Vec<Sources>> {
            let srcs = sources(stack)?;
            let rule_paths: Vec<PathBuf> = srcs
                .iter()
                .flat_map(|s| s.rules.iter().map(|(r, _)| r.path.clone()))
                .collect();
            for r in srcs
                .iter()
                .flat_map(|s| &s.roots)
                .chain(&rule_paths)
                .chain([&spec_file])
            {
                if watched.insert(r.clone()) {
                    let mode = if r.is_dir() {
                        RecursiveMode::Recursive
                    } else {
                        RecursiveMode::NonRecursive
                    };
                    w.watch(r, mode)
                        .with_context(|| format!("watching {}", r.display()))?;
                }
            }
            Ok(srcs)
        };
    let mut srcs = watch(&stack, &mut watcher)?;
    let mut stack = stack;
    let builds: BTreeSet<String> = srcs.iter().map(|s| s.service.clone()).collect();
    let mut log_tasks = if logs && output == OutputFormat::Table {
        follow_logs(&socket, &stack, &builds)
    } else {
        Vec::new()
    };
    if output == OutputFormat::Table {
        eprintln!(
            "{} watching the sources of {} (agent pid {pid}; Ctrl-C stops watching, `tug down` stops the stack)",
            style("…").dim(),
            builds.iter().cloned().collect::<Vec<_>>().join(", ")
        );
    }
    let mut cycle = 0u64;
    loop {
        let first = tokio::select! {
            b = rx.recv() => b,
            _ = tokio::signal::ctrl_c() => None,
        };
        let Some((edited, first)) = first else { break };
        let mut batch = vec![first];
        while let Ok(Some((_, p))) = tokio::time::timeout(debounce, rx.recv()).await {
            batch.push(p);
        }
        let spec_changed = batch.contains(&spec_file);
        let mut changed: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
        let mut syncs: Syncs = BTreeMap::new();
        batch.sort();
        batch.dedup();
        for p in &batch {
            for s in &srcs {
                match s.act(p) {
                    Some(Act::Rebuild) => changed
                        .entry(s.service.clone())
                        .or_default()
                        .push(p.clone()),
                    Some(Act::Sync(i)) => {
                        let rule = &s.rules[i].0;
                        if let Some((dir, name)) = sync_place(rule, p) {
                            let e = syncs.entry(s.service.clone()).or_default();
                            if p.exists() {
                                e.0.entry(dir).or_default().push((p.clone(), name));
                            } else {
                                // Deleted on the host: deleted in the replica, as compose watch does.
                                let dir = dir.trim_end_matches('/');
                                e.2.push(format!("{dir}/{name}"));
                            }
                            e.1 |= rule.action == tug_spec::WatchAction::SyncRestart;
                        }
                    }
                    None => {}
                }
            }
        }
        // A rebuilt service gets the files in its new image.
        syncs.retain(|s, _| !changed.contains_key(s));
        if changed.is_empty() && !spec_changed && syncs.is_empty() {
            continue;
        }
        if !syncs.is_empty() {
            cycle += 1;
            sync_cycle(&rt, &agent, &stack.name, &syncs, cycle, edited, output).await;
            if changed.is_empty() && !spec_changed {
                continue;
            }
        }
        if spec_changed {
            match super::spec::load(file) {
                Ok(s) => stack = s,
                Err(e) => {
                    eprintln!("{} {e:#}", style("error:").red());
                    continue;
                }
            }
            match watch(&stack, &mut watcher) {
                Ok(s) => srcs = s,
                Err(e) => eprintln!("{} {e:#}", style("error:").red()),
            }
        }
        cycle += 1;
        let names: Vec<String> = changed.keys().cloned().collect();
        if output == OutputFormat::Table {
            let what = if names.is_empty() {
                stack.file.display().to_string()
            } else {
                names.join(", ")
            };
            eprintln!(
                "{} {what}: rebuilding and rolling out",
                style("changed:").cyan()
            );
        }
        let outcome = roll_out(&agent, &stack, timeout, output).await;
        match outcome {
            Ok((revision, report, serving)) => {
                let latency = serving.unwrap_or_else(Instant::now).duration_since(edited);
                let replaced = !report.up_to_date;
                match output {
                    OutputFormat::Json => println!(
                        "{}",
                        serde_json::json!({
                            "event": "dev_cycle", "cycle": cycle, "services": names,
                            "revision": revision, "rolled_out": replaced,
                            "latency_ms": latency.as_millis() as u64,
                        })
                    ),
                    OutputFormat::Table if replaced => eprintln!(
                        "{} cycle {cycle}: {} serving {:.2}s after the edit{}",
                        style("✓").green(),
                        names.join(", "),
                        latency.as_secs_f64(),
                        revision
                            .map(|r| format!(" (revision {r})"))
                            .unwrap_or_default()
                    ),
                    OutputFormat::Table => eprintln!(
                        "{} cycle {cycle}: images unchanged, nothing rolled out ({:.2}s)",
                        style("=").dim(),
                        latency.as_secs_f64()
                    ),
                }
                if replaced && logs && output == OutputFormat::Table {
                    for t in log_tasks.drain(..) {
                        t.abort();
                    }
                    log_tasks = follow_logs(&socket, &stack, &builds);
                }
            }
            Err(e) => eprintln!(
                "{} cycle {cycle}: {e:#} (the replicas before it keep serving; fix and save again)",
                style("error:").red()
            ),
        }
    }
    for t in log_tasks {
        t.abort();
    }
    Ok(ExitCode::SUCCESS)
}

/// service -> (target dir -> (file, its name there)), whether to restart,
/// and the paths in the replica of files deleted on the host.
type Syncs = BTreeMap<String, (BTreeMap<String, Vec<(PathBuf, String)>>, bool, Vec<String>)>;

/// Copies synced files into the running replicas (restarting those whose
/// rule says so) and reports the cycle.
async fn sync_cycle(
    rt: &tug_runtime::any::AnyRuntime,
    agent: &tug_api::client::Client,
    stack: &str,
    syncs: &Syncs,
    cycle: u64,
    edited: Instant,
    output: OutputFormat,
) {
    for (service, (dirs, restart, deleted)) in syncs {
        let mut files = 0;
        let mut replicas = 0;
        let mut failed = None;
        if !deleted.is_empty() {
            files += deleted.len();
            match delete_in(rt, stack, service, deleted).await {
                Ok(n) => replicas = n,
                Err(e) => failed = Some(e),
            }
        }
        for (dir, entries) in dirs {
            files += entries.len();
            match tug_engine::ops::sync_into(rt, stack, service, dir, entries.clone()).await {
                Ok(n) => replicas = replicas.max(n),
                Err(e) => failed = Some(format!("{e}")),
            }
        }
        if failed.is_none() && *restart {
            if let Err(e) = agent
                .post("/v1/restart", &serde_json::json!({ "services": [service] }))
                .await
            {
                failed = Some(format!("restarting: {e}"));
            }
        }
        let latency = edited.elapsed();
        match (output, failed) {
            (OutputFormat::Json, failed) => println!(
                "{}",
                serde_json::json!({
                    "event": "dev_sync", "cycle": cycle, "service": service, "files": files,
                    "replicas": replicas, "restarted": *restart, "error": failed,
                    "latency_ms": latency.as_millis() as u64,
                })
            ),
            (OutputFormat::Table, None) => eprintln!(
                "{} cycle {cycle}: {service} synced {files} file(s) into {replicas} replica(s){} {:.2}s after the edit",
                style("✓").green(),
                if *restart { " and restarted them" } else { "" },
                latency.as_secs_f64()
            ),
            (OutputFormat::Table, Some(e)) => eprintln!(
                "{} cycle {cycle}: syncing into {service}: {e} (a read-only root filesystem takes files only on a writable mount: give the target a volume, or `security: {{ read_only: false }}`)",
                style("error:").red()
            ),
        }
    }
}

/// Deletes `paths` in every running replica of `service` (`rm -rf`, as
/// compose watch does: the image needs an `rm`). Returns the replicas.
async fn delete_in(
    rt: &tug_runtime::any::AnyRuntime,
    stack: &str,
    service: &str,
    paths: &[String],
) -> Result<usize, String> {
    if matches!(rt, tug_runtime::any::AnyRuntime::Process(_)) {
        // A process replica's paths are not its own root: nothing to exec in.
        return Err("deleting synced files needs a container engine".into());
    }
    let replicas = rt
        .list_containers(&tug_runtime::stack_filter(stack))
        .await
        .map_err(|e| e.to_string())?;
    let mut cmd: Vec<String> = ["rm", "-rf", "--"].map(String::from).to_vec();
    cmd.extend(paths.iter().cloned());
    let mut n = 0;
    for c in replicas.iter().filter(|c| {
        c.label(tug_runtime::labels::SERVICE) == Some(service)
            && c.state == tug_runtime::ContainerState::Running
    }) {
        let out = rt
            .exec(&c.id, &cmd, Duration::from_secs(10))
            .await
            .map_err(|e| format!("deleting {}: {e}", paths.join(", ")))?;
        if out.exit_code != 0 {
            return Err(format!(
                "deleting {}: `rm` exited with {}: {}",
                paths.join(", "),
                out.exit_code,
                out.output.trim()
            ));
        }
        n += 1;
    }
    Ok(n)
}

/// One `POST /v1/up`: build logs and failures shown, the rest quiet.
/// Returns the revision, the report, and when the last new replica turned
/// healthy (started, without a health check): from then on the new image
/// serves, while the old replicas drain.
async fn roll_out(
    agent: &tug_api::client::Client,
    stack: &tug_spec::Stack,
    timeout: Duration,
    output: OutputFormat,
) -> Result<(Option<i64>, tug_api::api::Report, Option<Instant>)> {
    use tug_api::api::UpLine;
    let mut stack = stack.clone();
    stack.dir = std::path::absolute(&stack.dir).unwrap_or(stack.dir);
    stack.file = std::path::absolute(&stack.file).unwrap_or(stack.file);
    let request = tug_api::api::UpRequest {
        stack: serde_json::to_value(&stack)?,
        message: Some("dev".into()),
        timeout_secs: Some(timeout.as_secs()),
        dir: Some(stack.dir.clone()),
        file: Some(stack.file.clone()),
    };
    let mut outcome = None;
    let mut serving = None;
    agent
        .up(&request, |line| match line {
            UpLine::Event { event } => {
                if event["event"] == "healthy" || event["event"] == "started" {
                    serving = Some(Instant::now());
                }
                if output == OutputFormat::Json {
                    println!("{event}");
                } else if event["event"] == "build_log" {
                    let line = event["line"].as_str().unwrap_or("");
                    if line.contains("error") || line.contains("warning: unused") {
                        eprintln!("  {} {line}", style("build |").dim());
                    }
                }
            }
            other => outcome = Some(other),
        })
        .await?;
    match outcome {
        Some(UpLine::Done {
            revision, report, ..
        }) => Ok((revision, report, serving)),
        Some(UpLine::Failed {
            error, rolled_back, ..
        }) => Err(anyhow::anyhow!(
            "{error}{}",
            if rolled_back { " (rolled back)" } else { "" }
        )),
        _ => Err(anyhow::anyhow!(
            "the agent stopped before the rollout finished: see `tug agent logs`"
        )),
    }
}
