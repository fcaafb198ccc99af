//! Starting, watching and signalling supervised processes.
//!
//! A program is started under a small `/bin/sh` supervisor (the waiter) so
//! that its exit status outlives it: the waiter `wait`s for the program and
//! writes the status to the `exit` file, which any later tug process reads. The
//! waiter is started through a shell that backgrounds it and exits at once, so
//! it is re-parented to init (or the nearest subreaper) and never lingers as
//! tug's zombie.

use super::store::{io_err, write_atomic};
use crate::{Result, RuntimeError};
use rustix::process::{kill_process, kill_process_group, Pid, Signal};
use std::fs::{self, File, OpenOptions};
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The waiter: `sh -c WAITER tug-waiter DIR PROGRAM ARGS...`.
///
/// TERM, INT and HUP are trapped with a no-op (not ignored: a program inherits
/// ignored signals across exec) so the waiter survives the group-wide TERM of a
/// stop and still records the program's status. `wait` returns early when a
/// trapped signal arrives, hence the loop.
const WAITER: &str = r#"d=$1; shift
trap : TERM INT HUP
"$@" &
c=$!
echo "$$ $c" > "$d/pids.tmp" && PATH=/usr/bin:/bin mv -f "$d/pids.tmp" "$d/pids"
while :; do
  wait "$c"; s=$?
  kill -0 "$c" 2>/dev/null || break
done
echo "$s" > "$d/exit.tmp" && PATH=/usr/bin:/bin mv -f "$d/exit.tmp" "$d/exit"
"#;

/// Backgrounds the waiter and returns, detaching it from tug.
const LAUNCH: &str = r#"w=$1; shift; /bin/sh -c "$w" tug-waiter "$@" &"#;

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// State letter (field 3) and start time (field 22) of /proc/<pid>/stat.
fn stat(pid: i32) -> Option<(char, u64)> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses.
    let rest = &s[s.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    let start = fields.get(19)?.parse().ok()?;
    Some((state, start))
}

/// CPU time of `pid` and its reaped children (fields 14 to 17 of
/// /proc/<pid>/stat, in clock ticks), in nanoseconds.
pub(crate) fn cpu_ns(pid: i32) -> Option<u64> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let mut ticks = 0u64;
    for i in 11..=14 {
        ticks = ticks.saturating_add(fields.get(i)?.parse::<i64>().ok()?.max(0) as u64);
    }
    let hz = rustix::param::clock_ticks_per_second().max(1);
    Some(ticks.saturating_mul(1_000_000_000 / hz))
}

/// Resident memory of `pid` (field 2 of /proc/<pid>/statm, in pages), in bytes.
pub(crate) fn resident_bytes(pid: i32) -> Option<u64> {
    let s = fs::read_to_string(format!("/proc/{pid}/statm")).ok()?;
    let pages: u64 = s.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages.saturating_mul(rustix::param::page_size() as u64))
}

/// Bytes `pid` made the storage layer read and write (/proc/<pid>/io);
/// `None` when the kernel does not let us read it.
pub(crate) fn io_bytes(pid: i32) -> Option<(u64, u64)> {
    let s = fs::read_to_string(format!("/proc/{pid}/io")).ok()?;
    let field = |name: &str| {
        s.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    Some((field("read_bytes")?, field("write_bytes")?))
}

pub(crate) fn start_time(pid: i32) -> Option<u64> {
    stat(pid).map(|(_, t)| t)
}

/// Whether `pid` is the same live (not zombie) process that started at `start`.
pub(crate) fn alive(pid: i32, start: Option<u64>) -> bool {
    match (stat(pid), start) {
        (Some((state, t)), Some(start)) => t == start && state != 'Z' && state != 'X',
        _ => false,
    }
}

pub(crate) fn read_exit(dir: &Path) -> Option<i64> {
    fs::read_to_string(dir.join("exit"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
}

pub(crate) fn write_exit(dir: &Path, code: i64) {
    // Best effort: the directory may be gone when the container was removed.
    let _ = write_atomic(&dir.join("exit"), format!("{code}\n").as_bytes());
}

fn open_log(path: &Path) -> Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| io_err(format!("opening {}", path.display()), e))
}

pub(crate) struct Spawned {
    pub pgid: i32,
    pub waiter: i32,
    pub pid: i32,
}

/// Starts `program args` supervised, detached from tug, logging to `dir`.
pub(crate) fn spawn(
    dir: &Path,
    program: &str,
    args: &[String],
    env: &[(String, String)],
) -> Result<Spawned> {
    let _ = fs::remove_file(dir.join("exit"));
    let _ = fs::remove_file(dir.join("pids"));
    let stdout = open_log(&dir.join("stdout.log"))?;
    let stderr = open_log(&dir.join("stderr.log"))?;
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(LAUNCH)
        .arg("sh")
        .arg(WAITER)
        .arg(dir)
        .arg(program)
        .args(args)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        // Its own process group: a Ctrl-C at tug's terminal does not reach it,
        // and a stop can signal everything it started.
        .process_group(0);
    let mut launcher = cmd
        .spawn()
        .map_err(|e| io_err(format!("starting {program}"), e))?;
    let pgid = launcher.id() as i32;
    let status = launcher
        .wait()
        .map_err(|e| io_err(format!("starting {program}"), e))?;
    if !status.success() {
        return Err(RuntimeError::api(
            format!("starting {program}"),
            format!("the supervisor shell failed ({status})"),
        ));
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(s) = fs::read_to_string(dir.join("pids")) {
            let mut it = s.split_whitespace().filter_map(|p| p.parse::<i32>().ok());
            if let (Some(waiter), Some(pid)) = (it.next(), it.next()) {
                return Ok(Spawned { pgid, waiter, pid });
            }
        }
        if Instant::now() > deadline {
            return Err(RuntimeError::api(
                format!("starting {program}"),
                format!(
                    "the supervisor did not record the process in {}",
                    dir.display()
                ),
            ));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn pid(raw: i32) -> Option<Pid> {
    Pid::from_raw(raw)
}

/// Signals the program's process group; errors (already gone) are fine.
pub(crate) fn signal_group(pgid: i32, sig: Signal) {
    if let Some(p) = pid(pgid) {
        let _ = kill_process_group(p, sig);
    }
}

/// SIGKILL to what is left of a program's process group. The launcher that
/// led the group has exited (tug reaped it), so a live process whose pid is
/// the group id means the number was reused: that group is someone else's.
pub(crate) fn kill_leftovers(pgid: i32) {
    if stat(pgid).is_none() {
        signal_group(pgid, Signal::KILL);
    }
}

pub(crate) fn signal(raw: i32, sig: Signal) {
    if let Some(p) = pid(raw) {
        let _ = kill_process(p, sig);
    }
}

/// Polls `done` every few milliseconds until it holds or `limit` passes.
pub(crate) fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Runs a health check command; `Ok` with its output when it exits 0.
pub(crate) fn run_check(
    test: &[String],
    env: &[(String, String)],
    dir: &Path,
    timeout: Duration,
) -> Result<String, String> {
    match run_command(test, env, dir, timeout)? {
        Ran::Exited(0, output) => Ok(output),
        Ran::Exited(code, output) if output.is_empty() => Err(format!("exited with {code}")),
        Ran::Exited(_, output) => Err(output),
        Ran::TimedOut => Err(format!("health check timed out after {timeout:?}")),
    }
}

/// How a command of [`run_command`] ended.
pub(crate) enum Ran {
    /// Exit status (128 + the signal when killed, as a shell reports it) and
    /// the first 4 KiB of its output.
    Exited(i64, String),
    /// Killed (its whole process group) at the timeout.
    TimedOut,
}

/// Runs `command` in its own process group, stdout and stderr to one file;
/// `Err` when it cannot be started.
pub(crate) fn run_command(
    command: &[String],
    env: &[(String, String)],
    dir: &Path,
    timeout: Duration,
) -> Result<Ran, String> {
    let Some((program, args)) = command.split_first() else {
        return Err("empty command".into());
    };
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let out_path: PathBuf = dir.join(format!("exec.{}.{n}.out", std::process::id()));
    let out = File::create(&out_path).map_err(|e| e.to_string())?;
    let err = out.try_clone().map_err(|e| e.to_string())?;
    let mut child = Command::new(program)
        .args(args)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0)
        .spawn()
        .map_err(|e| format!("running {program}: {e}"))?;
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break Some(s),
            Ok(None) if Instant::now() >= deadline => break None,
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => return Err(e.to_string()),
        }
    };
    let Some(status) = status else {
        signal_group(child.id() as i32, Signal::KILL);
        let _ = child.wait();
        let _ = fs::remove_file(&out_path);
        return Ok(Ran::TimedOut);
    };
    let mut output = String::new();
    if let Ok(f) = File::open(&out_path) {
        let mut buf = Vec::new();
        let _ = f.take(4096).read_to_end(&mut buf);
        output = String::from_utf8_lossy(&buf).trim().to_string();
    }
    let _ = fs::remove_file(&out_path);
    use std::os::unix::process::ExitStatusExt;
    let code = status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(-1);
    Ok(Ran::Exited(i64::from(code), output))
}
