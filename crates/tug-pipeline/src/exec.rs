//! Running one step: on the host (`sh -e -c` in the workspace, in its own
//! process group so a timeout or an interrupt kills everything it started)
//! or in a container on the engine (the workspace mounted at `/workspace`,
//! the container removed whatever happens).
//!
//! A container step is a container of its own: steps share the workspace,
//! not processes, as steps of a CI job do.

use futures_util::StreamExt;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio_util::sync::CancellationToken;
use tug_runtime::docker::DockerRuntime;
use tug_runtime::{ContainerSpec, ContainerState, MountKind, MountSpec, Runtime};

/// Where a container step's workspace is mounted.
pub const WORKSPACE_MOUNT: &str = "/workspace";

/// Labels on every container and network a pipeline run creates.
pub mod labels {
    /// The run id.
    pub const RUN: &str = "dev.tug.pipeline-run";
    /// `<pid>:<start time>` of the tug process that owns it.
    pub const OWNER: &str = "dev.tug.pipeline-owner";
    /// `<stack>/<pipeline>`.
    pub const PIPELINE: &str = "dev.tug.pipeline";
}

/// Time between SIGTERM and SIGKILL when a step is stopped.
const GRACE: Duration = Duration::from_secs(5);

/// How a step ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StepEnd {
    Exited(i64),
    TimedOut,
    Cancelled,
    /// It could not start at all (missing shell, engine error).
    Error(String),
}

impl StepEnd {
    pub fn success(&self) -> bool {
        matches!(self, StepEnd::Exited(0))
    }
}

/// What a step runs and where.
pub struct StepRun<'a> {
    pub shell: &'a [String],
    pub script: &'a str,
    /// Host: the absolute directory; container: relative to the workspace.
    pub workspace: &'a Path,
    pub working_dir: Option<&'a str>,
    pub env: &'a BTreeMap<String, String>,
    pub timeout: Option<Duration>,
    pub cancel: &'a CancellationToken,
}

/// A line of output, stdout and stderr alike, without its newline.
pub type OnLine<'a> = &'a mut (dyn FnMut(String) + Send);

pub async fn host_step(run: &StepRun<'_>, on_line: OnLine<'_>) -> StepEnd {
    let Some((program, args)) = run.shell.split_first() else {
        return StepEnd::Error("the shell is empty".into());
    };
    let dir = match run.working_dir {
        Some(d) => run.workspace.join(d),
        None => run.workspace.to_path_buf(),
    };
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .arg(run.script)
        .current_dir(&dir)
        .envs(run.env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own group: a timeout or an interrupt reaches what it started,
        // and a Ctrl-C at the terminal reaches tug only (tug stops it).
        .process_group(0)
        .kill_on_drop(true);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            return StepEnd::Error(format!(
                "cannot start `{program}` in {}: {e}",
                dir.display()
            ))
        }
    };
    let pgid = child.id().map(|p| p as i32);
    let (tx, mut rx) = tokio::sync::mpsc::channel::<String>(256);
    if let Some(out) = child.stdout.take() {
        tokio::spawn(read_lines(out, tx.clone()));
    }
    if let Some(err) = child.stderr.take() {
        tokio::spawn(read_lines(err, tx.clone()));
    }
    drop(tx);
    let deadline = run.timeout.map(|t| tokio::time::Instant::now() + t);
    let sleep = async {
        match deadline {
            Some(d) => tokio::time::sleep_until(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(sleep);
    let mut lines_open = true;
    let end = loop {
        tokio::select! {
            line = rx.recv(), if lines_open => match line {
                Some(l) => on_line(l),
                None => lines_open = false,
            },
            status = child.wait() => {
                break match status {
                    Ok(s) => StepEnd::Exited(exit_code(s)),
                    Err(e) => StepEnd::Error(format!("waiting for the step: {e}")),
                };
            }
            _ = &mut sleep => {
                stop_group(pgid, &mut child).await;
                break StepEnd::TimedOut;
            }
            _ = run.cancel.cancelled() => {
                stop_group(pgid, &mut child).await;
                break StepEnd::Cancelled;
            }
        }
    };
    // Background processes the step left behind would hold the pipes open.
    if let Some(g) = pgid {
        kill_group(g, rustix::process::Signal::KILL);
    }
    while let Some(l) = rx.recv().await {
        on_line(l);
    }
    end
}

fn exit_code(s: std::process::ExitStatus) -> i64 {
    use std::os::unix::process::ExitStatusExt;
    match (s.code(), s.signal()) {
        (Some(c), _) => c as i64,
        (None, Some(sig)) => 128 + sig as i64,
        _ => -1,
    }
}

fn kill_group(pgid: i32, sig: rustix::process::Signal) {
    if let Some(p) = rustix::process::Pid::from_raw(pgid) {
        let _ = rustix::process::kill_process_group(p, sig);
    }
}

/// SIGTERM to the group, SIGKILL after the grace period.
async fn stop_group(pgid: Option<i32>, child: &mut tokio::process::Child) {
    let Some(g) = pgid else {
        let _ = child.kill().await;
        return;
    };
    kill_group(g, rustix::process::Signal::TERM);
    if tokio::time::timeout(GRACE, child.wait()).await.is_err() {
        kill_group(g, rustix::process::Signal::KILL);
        let _ = child.wait().await;
    }
}

async fn read_lines<R: tokio::io::AsyncRead + Unpin>(r: R, tx: tokio::sync::mpsc::Sender<String>) {
    let mut r = BufReader::new(r);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match r.read_until(b'\n', &mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                while buf.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                    buf.pop();
                }
                let line = String::from_utf8_lossy(&buf).into_owned();
                if tx.send(line).await.is_err() {
                    break;
                }
            }
        }
    }
}

/// A container step's settings beyond [`StepRun`].
pub struct ContainerStep<'a> {
    pub runtime: &'a DockerRuntime,
    pub image: &'a str,
    pub name: String,
    pub labels: &'a BTreeMap<String, String>,
    pub network: Option<&'a str>,
    /// `uid:gid` the step runs as (the workspace owner's).
    pub user: String,
}

pub async fn container_step(
    run: &StepRun<'_>,
    c: &ContainerStep<'_>,
    on_line: OnLine<'_>,
) -> StepEnd {
    // The engine API has no working directory per container here: the
    // script starts with the `cd`, so the image needs nothing but the shell.
    let dir = match run.working_dir {
        Some(d) => format!("{WORKSPACE_MOUNT}/{d}"),
        None => WORKSPACE_MOUNT.to_string(),
    };
    let script = format!("cd '{dir}' || exit 1\n{}", run.script);
    let mut spec = ContainerSpec::new(&c.name, c.image);
    let mut command = run.shell.to_vec();
    command.push(script);
    spec.entrypoint = Some(Vec::new());
    spec.command = Some(command);
    spec.env = run
        .env
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if !run.env.contains_key("HOME") {
        spec.env.push(("HOME".into(), "/tmp".into()));
    }
    spec.labels = c.labels.clone();
    spec.mounts = vec![MountSpec {
        source: MountKind::Bind(PathBuf::from(run.workspace)),
        target: WORKSPACE_MOUNT.into(),
        read_only: false,
    }];
    spec.tmpfs = vec!["/tmp".into()];
    spec.user = Some(c.user.clone());
    spec.network = c.network.map(str::to_string);
    spec.pids = Some(4096);
    spec.stop_grace = GRACE;
    let rt = c.runtime;
    let id = match rt.create_container(&spec).await {
        Ok(id) => id,
        Err(e) => return StepEnd::Error(format!("creating the step's container: {e}")),
    };
    let end = run_container(rt, &id, run.timeout, run.cancel, on_line).await;
    // Removed whatever happened; a kill of tug is handled by the next run's sweep.
    let _ = rt.remove_container(&id).await;
    end
}

/// Starts a created container and follows it to its end, its output to `on_line`.
pub(crate) async fn run_container(
    rt: &DockerRuntime,
    id: &str,
    timeout: Option<Duration>,
    cancel: &CancellationToken,
    on_line: OnLine<'_>,
) -> StepEnd {
    if let Err(e) = rt.start_container(id).await {
        return StepEnd::Error(format!("starting the step's container: {e}"));
    }
    let mut logs = rt.logs(id, tug_runtime::LogOptions::new(None, true));
    let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
    let sleep = async {
        match deadline {
            Some(d) => tokio::time::sleep_until(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(sleep);
    loop {
        tokio::select! {
            l = logs.next() => match l {
                Some(Ok(l)) => on_line(l.text.trim_end_matches(['\n', '\r']).to_string()),
                Some(Err(_)) | None => break,
            },
            _ = &mut sleep => {
                let _ = rt.stop_container(id, GRACE).await;
                return StepEnd::TimedOut;
            }
            _ = cancel.cancelled() => {
                let _ = rt.stop_container(id, Duration::from_secs(1)).await;
                return StepEnd::Cancelled;
            }
        }
    }
    // The log stream ends as the container stops; the state may lag a moment.
    for _ in 0..50 {
        match rt.inspect_container(id).await {
            Ok(Some(info)) if info.state != ContainerState::Running => {
                return StepEnd::Exited(info.exit_code.unwrap_or(-1));
            }
            Ok(Some(_)) => tokio::time::sleep(Duration::from_millis(20)).await,
            Ok(None) => return StepEnd::Error("the step's container vanished".into()),
            Err(e) => return StepEnd::Error(format!("inspecting the step's container: {e}")),
        }
    }
    StepEnd::Error("the step's container did not stop after its output ended".into())
}

/// `<pid>:<start time>` of this process, for [`labels::OWNER`].
pub fn owner_tag() -> String {
    let pid = std::process::id() as i32;
    format!("{pid}:{}", start_time(pid).unwrap_or(0))
}

/// Whether the process an owner tag names is still alive.
pub fn owner_alive(tag: &str) -> bool {
    let Some((pid, start)) = tag.split_once(':') else {
        return false;
    };
    let (Ok(pid), Ok(start)) = (pid.parse::<i32>(), start.parse::<u64>()) else {
        return false;
    };
    match stat(pid) {
        Some((state, t)) => t == start && state != 'Z' && state != 'X',
        None => false,
    }
}

fn start_time(pid: i32) -> Option<u64> {
    stat(pid).map(|(_, t)| t)
}

/// State letter and start time of /proc/<pid>/stat.
fn stat(pid: i32) -> Option<(char, u64)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses.
    let rest = &s[s.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    let start = fields.get(19)?.parse().ok()?;
    Some((state, start))
}
