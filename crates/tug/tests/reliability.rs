//! Reliability under faults, on the real engine: `tug up -d` converges in
//! the agent (killing the command stops nothing), honest revision outcomes,
//! and what images need under the hardened defaults.

mod common;

use common::*;
use std::process::Command;

fn shell(name: &str, script: &str, extra: &str) -> String {
    format!("  {name}:\n    image: {BUSYBOX}\n    command: [sh, -c, '{script}']\n{extra}")
}

#[test]
fn a_non_root_container_writes_and_reads_tmp_in_an_image_without_one() {
    if !engine() {
        return;
    }
    busybox_images(None);
    let s = TestStack::new(
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

#[test]
fn a_failure_the_hardened_defaults_explain_names_the_default_and_the_line() {
    if !engine() {
        return;
    }
    busybox_images(None);
    let s = TestStack::new(
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

#[test]
fn a_no_change_up_records_no_revision() {
    if !engine() {
        return;
    }
    busybox_images(None);
    let s = TestStack::new("norev", &shell("web", "exec sleep 3600", ""));
    assert!(s.run(&["up", "-d"]).status.success());
    let out = s.run(&["up", "-d"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("up to date"));
    let h = s.run(&["history", "-o", "json"]);
    let revs: serde_json::Value = serde_json::from_slice(&h.stdout).unwrap();
    assert_eq!(revs.as_array().unwrap().len(), 1, "{revs}");
}

#[test]
fn killing_up_mid_rollout_does_not_stop_the_rollout() {
    if !engine() {
        return;
    }
    let s = TestStack::new(
        "detach",
        &service("web", "    replicas: 3\n    env: { VERSION: '1' }\n"),
    );
    assert!(s.run(&["up", "-d"]).status.success());
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

#[test]
fn closing_the_output_early_never_aborts_up() {
    if !engine() {
        return;
    }
    busybox_images(None);
    let s = TestStack::new(
        "pipe",
        &shell("web", "exec sleep 3600", "    replicas: 2\n"),
    );
    // `tug up -d | head -1`: the reader goes away after one line.
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "'{}' -f '{}' up -d -o json | head -1",
            env!("CARGO_BIN_EXE_tug"),
            s.file().display()
        ))
        .env("NO_COLOR", "1")
        .env("TUG_STATE_DIR", s.state())
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

#[test]
fn state_is_its_owners_only_whatever_the_umask() {
    if !engine() {
        return;
    }
    busybox_images(None);
    let s = TestStack::new("umask", &shell("web", "exec sleep 3600", ""));
    // The temp dir itself must not be what keeps others out.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(s.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "umask 000; exec '{}' -f '{}' up -d",
            env!("CARGO_BIN_EXE_tug"),
            s.file().display()
        ))
        .env("NO_COLOR", "1")
        .env("TUG_STATE_DIR", s.state())
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
