//! Reliability under faults, on the real engines (Docker, and Podman when
//! `TUG_PODMAN_HOST` names it): `tug up -d` converges in the agent (killing
//! the command stops nothing), an attached `up` stops cleanly on SIGTERM,
//! honest revision outcomes, and what images need under the hardened
//! defaults.

mod common;

use common::*;
use std::process::Command;

/// A stack on `runtime` (the default engine, or `podman`), with the busybox
/// test images loaded into that engine.
fn stack(runtime: Option<&'static str>, prefix: &str, services: &str) -> TestStack {
    let s = TestStack::on(runtime, prefix, services);
    busybox_images(s.docker_host.as_deref());
    s
}

/// `cmd` (a hand-built tug command line) on the stack's engine.
fn on_engine(s: &TestStack, cmd: &mut Command) {
    cmd.env("NO_COLOR", "1").env("TUG_STATE_DIR", s.state());
    if let Some(h) = &s.docker_host {
        cmd.env("DOCKER_HOST", h);
    }
}

fn shell(name: &str, script: &str, extra: &str) -> String {
    format!("  {name}:\n    image: {BUSYBOX}\n    command: [sh, -c, '{script}']\n{extra}")
}

fn a_non_root_container_writes_and_reads_tmp_in_an_image_without_one(
    runtime: Option<&'static str>,
) {
    let s = stack(
        runtime,
        "tmp",
        &shell(
            "web",
            "echo written-by-$(id -u) > /tmp/f && cat /tmp/f && exec sleep 3600",
            "",
        ),
    );
    let out = s.run(&["up", "-d"]);
    assert!(out.status.success(), "{}", text(&out));
    wait_until("the replica wrote /tmp", || {
        String::from_utf8_lossy(&s.run(&["logs"]).stdout).contains("written-by-65534")
    });
}

fn a_failure_the_hardened_defaults_explain_names_the_default_and_the_line(
    runtime: Option<&'static str>,
) {
    let s = stack(
        runtime,
        "rofs",
        &shell(
            "web",
            "echo x > /etc/app.conf || exit 1; exec sleep 3600",
            "    restart: 'no'\n",
        ),
    );
    let out = s.run(&["up", "-d", "--timeout", "10s"]);
    assert!(!out.status.success(), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Read-only file system"), "{err}");
    assert!(
        err.contains("hint: the root filesystem is read-only by default")
            && err.contains("set `security: { read_only: false }` for service `web`"),
        "{err}"
    );
    // The service's line in tug.yaml (no `security` key yet).
    let at = format!("{}:3:3", s.file().display());
    assert!(err.contains(&at), "{at} in {err}");
}

fn a_no_change_up_records_no_revision(runtime: Option<&'static str>) {
    let s = stack(runtime, "norev", &shell("web", "exec sleep 3600", ""));
    s.up();
    let out = s.run(&["up", "-d"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("up to date"));
    let h = s.run(&["history", "-o", "json"]);
    let revs: serde_json::Value = serde_json::from_slice(&h.stdout).unwrap();
    assert_eq!(revs.as_array().unwrap().len(), 1, "{revs}");
}

fn killing_up_mid_rollout_does_not_stop_the_rollout(runtime: Option<&'static str>) {
    let s = stack(
        runtime,
        "detach",
        &service("web", "    replicas: 3\n    env: { VERSION: '1' }\n"),
    );
    s.up();
    s.write(&service(
        "web",
        "    replicas: 3\n    env: { VERSION: '2' }\n",
    ));
    let mut child = s
        .command(&["up", "-d", "-o", "json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Killed as soon as the first new replica is being created.
    {
        use std::io::BufRead;
        let stdout = child.stdout.take().unwrap();
        for line in std::io::BufReader::new(stdout).lines() {
            if line.unwrap().contains("\"creating\"") {
                break;
            }
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    // The agent carries the rollout through on its own.
    wait_until("every replica runs version 2", || {
        let rows = s.ps();
        rows.len() == 3
            && rows.iter().all(|r| {
                r["endpoint"]
                    .as_str()
                    .is_some_and(|e| get(e, "/").contains("(version 2)"))
            })
    });
    wait_until("the revision is recorded as succeeded", || {
        let h = s.run(&["history", "-o", "json"]);
        serde_json::from_slice::<serde_json::Value>(&h.stdout)
            .is_ok_and(|v| v[0]["outcome"] == "succeeded")
    });
}

fn closing_the_output_early_never_aborts_up(runtime: Option<&'static str>) {
    let s = stack(
        runtime,
        "pipe",
        &shell("web", "exec sleep 3600", "    replicas: 2\n"),
    );
    // `tug up -d | head -1`: the reader goes away after one line.
    let mut cmd = Command::new("sh");
    on_engine(&s, &mut cmd);
    let out = cmd
        .arg("-c")
        .arg(format!(
            "'{}' -f '{}' up -d -o json | head -1",
            env!("CARGO_BIN_EXE_tug"),
            s.file().display()
        ))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    wait_until("both replicas run under the agent", || {
        let rows = s.ps();
        rows.len() == 2 && rows.iter().all(|r| r["state"] == "running")
    });
    let info = s.run(&["agent", "logs"]);
    assert!(info.status.success(), "{}", text(&info));
}

fn state_is_its_owners_only_whatever_the_umask(runtime: Option<&'static str>) {
    let s = stack(runtime, "umask", &shell("web", "exec sleep 3600", ""));
    // The temp dir itself must not be what keeps others out.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(s.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut cmd = Command::new("sh");
    on_engine(&s, &mut cmd);
    let out = cmd
        .arg("-c")
        .arg(format!(
            "umask 000; exec '{}' -f '{}' up -d",
            env!("CARGO_BIN_EXE_tug"),
            s.file().display()
        ))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let dir = s.state().join(&s.name);
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700);
    for f in ["tug.db", "agent.sock", "agent.log", "agent.pid"] {
        assert_eq!(mode(&dir.join(f)), 0o600, "{f}");
    }
    // A second user reads nothing of it (when this test can be one).
    let setpriv = std::path::Path::new("/usr/bin/setpriv");
    if rustix::process::geteuid().is_root() && setpriv.exists() {
        for f in ["tug.db", "agent.log"] {
            let read = Command::new(setpriv)
                .args(["--reuid=65534", "--regid=65534", "--clear-groups", "cat"])
                .arg(dir.join(f))
                .output()
                .unwrap();
            assert!(!read.status.success(), "{f} is readable by another user");
        }
    } else {
        eprintln!("\n!!! SKIPPED the second-user half: needs root and setpriv\n");
    }
}

/// The agent's allocator leaves huge pages to the system's default: a
/// region advised for them (`hg`) counts every touched 2 MiB whole in RSS.
fn the_agent_asks_for_no_huge_pages(runtime: Option<&'static str>) {
    let s = stack(runtime, "thp", &shell("web", "exec sleep 3600", ""));
    let out = s.run(&["up", "-d"]);
    assert!(out.status.success(), "{}", text(&out));
    let smaps = std::fs::read_to_string(format!("/proc/{}/smaps", s.agent_pid())).unwrap();
    let mut region = "";
    let mut advised = Vec::new();
    for line in smaps.lines() {
        if let Some(flags) = line.strip_prefix("VmFlags:") {
            if flags.split_whitespace().any(|f| f == "hg") {
                advised.push(region);
            }
        } else if !line.split_whitespace().next().unwrap_or(":").ends_with(':') {
            // A region's header; its fields are `Key: value` lines.
            region = line;
        }
    }
    assert!(advised.is_empty(), "advised for huge pages: {advised:#?}");
}

/// Sends SIGTERM to `child` and waits for it to exit.
fn terminate(child: &mut std::process::Child) -> std::process::ExitStatus {
    let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    for _ in 0..300 {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let _ = child.kill();
    panic!("`tug up` did not exit within 30 s of SIGTERM");
}

/// `tug up` attached (no -d): its output in files, so reading it never blocks it.
fn attached_up(s: &TestStack) -> (std::process::Child, tempfile::TempDir) {
    let logs = tempfile::tempdir().unwrap();
    let child = s
        .command(&["up", "-o", "json"])
        .stdout(std::fs::File::create(logs.path().join("out")).unwrap())
        .stderr(std::fs::File::create(logs.path().join("err")).unwrap())
        .spawn()
        .unwrap();
    (child, logs)
}

fn history(s: &TestStack) -> Vec<serde_json::Value> {
    let h = s.run(&["history", "-o", "json"]);
    assert!(h.status.success(), "{}", text(&h));
    serde_json::from_slice::<serde_json::Value>(&h.stdout)
        .unwrap()
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn sigterm_stops_an_attached_up_cleanly(runtime: Option<&'static str>) {
    let s = stack(
        runtime,
        "term",
        &shell(
            "web",
            "exec sleep 3600",
            "    replicas: 2\n    stop_grace_period: 1s\n",
        ),
    );
    let (mut child, logs) = attached_up(&s);
    wait_until("both replicas run", || {
        let rows = s.ps();
        rows.len() == 2 && rows.iter().all(|r| r["state"] == "running")
    });
    wait_until("the attached up supervises the stack", || {
        s.state().join(&s.name).join("agent.sock").exists()
    });
    let status = terminate(&mut child);
    let err = std::fs::read_to_string(logs.path().join("err")).unwrap();
    assert!(status.success(), "{status:?}\n{err}");
    assert!(err.contains("stopped 2 container(s)"), "{err}");
    // As documented: the containers stay, stopped, for the next `up`.
    let ids = s.ids("web");
    assert_eq!(ids.len(), 2, "{ids:?}");
    for id in &ids {
        let running = s
            .docker()
            .args(["inspect", "-f", "{{.State.Running}}", id])
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&running.stdout).trim(), "false");
    }
    let revs = history(&s);
    assert_eq!(revs.len(), 1, "{revs:?}");
    assert_eq!(revs[0]["outcome"], "succeeded", "{revs:?}");
    // The next `up` starts the same containers again.
    let up = s.run(&["up", "-d"]);
    assert!(up.status.success(), "{}", text(&up));
    assert_eq!(s.ids("web"), ids);
}

fn sigterm_mid_converge_records_an_interrupted_revision(runtime: Option<&'static str>) {
    // Never healthy: the converge is still waiting when SIGTERM comes.
    let s = stack(
        runtime,
        "termmid",
        &shell(
            "web",
            "exec sleep 3600",
            "    health: { exec: [sh, -c, 'exit 1'], interval: 200ms, timeout: 1s, retries: 1000 }\n    stop_grace_period: 1s\n",
        ),
    );
    let (mut child, logs) = attached_up(&s);
    wait_until("the replica was started", || {
        std::fs::read_to_string(logs.path().join("out"))
            .is_ok_and(|o| o.contains("\"event\":\"started\""))
    });
    let status = terminate(&mut child);
    let err = std::fs::read_to_string(logs.path().join("err")).unwrap();
    assert!(err.contains("stopping stack"), "{status:?}\n{err}");
    let revs = history(&s);
    assert_eq!(revs.len(), 1, "{revs:?}");
    assert_eq!(revs[0]["outcome"], "interrupted", "{revs:?}");
    let ids = s.ids("web");
    assert_eq!(ids.len(), 1, "{ids:?}");
}

/// `tug down` while the agent's own supervision re-converges (a replica
/// removed behind its back, whose replacement never turns healthy): that
/// converge stops with the agent, nothing is left, and the agent exits.
fn down_while_supervision_converges_leaves_nothing_running(runtime: Option<&'static str>) {
    // The first replica marks the volume and turns healthy; any later one
    // finds the mark and never does.
    let s = stack(
        runtime,
        "downsup",
        &shell(
            "web",
            "if [ -e /data/once ]; then exec sleep 3600; fi; touch /data/once /tmp/ok; exec sleep 3600",
            "    volumes: [\"marks:/data\"]\n    health: { exec: [sh, -c, 'test -f /tmp/ok'], interval: 1s, retries: 1000 }\n",
        ),
    );
    let out = s.run(&["up", "-d", "--timeout", "1h"]);
    assert!(out.status.success(), "{}", text(&out));
    let first = s.ids("web");
    assert_eq!(first.len(), 1, "{first:?}");
    let rm = s.docker().args(["rm", "-f", &first[0]]).output().unwrap();
    assert!(rm.status.success());
    wait_until("the agent creates a replacement", || {
        let ids = s.ids("web");
        ids.len() == 1 && ids != first
    });
    let pid = s.agent_pid();
    // The replacement's health gate would wait an hour: `down` stops it
    // rather than waiting for it.
    let mut down = s
        .command(&["down", "--volumes"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut status = None;
    wait_until("down returns", || {
        status = down.try_wait().unwrap();
        status.is_some()
    });
    assert!(status.unwrap().success());
    wait_until("the agent has exited", || {
        !std::path::Path::new(&format!("/proc/{pid}")).exists()
            || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .is_ok_and(|st| st.split_whitespace().nth(2) == Some("Z"))
    });
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert!(s.ids("web").is_empty(), "{:?}", s.ids("web"));
}

/// Each test once per engine: `docker::NAME` on the default engine,
/// `podman::NAME` on `TUG_PODMAN_HOST` (a loud skip without it).
macro_rules! on_engines {
    ($($test:ident),* $(,)?) => {
        mod docker {
            use super::*;
            $(
                #[test]
                fn $test() {
                    if engine() {
                        super::$test(None);
                    }
                }
            )*
        }
        mod podman {
            use super::*;
            $(
                #[test]
                fn $test() {
                    if podman_host().is_some() {
                        super::$test(Some("podman"));
                    }
                }
            )*
        }
    };
}

on_engines!(
    a_non_root_container_writes_and_reads_tmp_in_an_image_without_one,
    down_while_supervision_converges_leaves_nothing_running,
    a_failure_the_hardened_defaults_explain_names_the_default_and_the_line,
    a_no_change_up_records_no_revision,
    killing_up_mid_rollout_does_not_stop_the_rollout,
    closing_the_output_early_never_aborts_up,
    state_is_its_owners_only_whatever_the_umask,
    the_agent_asks_for_no_huge_pages,
    sigterm_stops_an_attached_up_cleanly,
    sigterm_mid_converge_records_an_interrupted_revision,
);
