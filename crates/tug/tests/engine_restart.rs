//! The agent across a restart of the container engine: it reconnects to the
//! engine's event stream, resyncs, and still replaces a replica killed
//! afterwards.
//!
//! Off by default, because it stops the one engine every other test (and
//! every other user of this machine) is using: run it alone with
//! `TUG_TEST_RESTART_ENGINE=1 cargo test -p tug --test engine_restart`. It
//! stops `dockerd` with SIGTERM and starts it again with scripts/engine.sh.

mod common;
use common::*;
use std::process::Command;

#[test]
fn the_agent_follows_the_engine_through_a_restart() {
    if std::env::var("TUG_TEST_RESTART_ENGINE").as_deref() != Ok("1") {
        eprintln!("\n!!! SKIPPED: set TUG_TEST_RESTART_ENGINE=1 to restart dockerd under a running agent\n");
        return;
    }
    if !engine() {
        return;
    }
    let s = TestStack::new("enginerestart", &service("web", "    replicas: 2\n"));
    let out = s.run(&["up", "-d"]);
    assert!(out.status.success(), "{}", text(&out));

    let pid = String::from_utf8_lossy(
        &Command::new("pidof")
            .arg("dockerd")
            .output()
            .unwrap()
            .stdout,
    )
    .trim()
    .to_string();
    assert!(!pid.is_empty(), "dockerd is not running here");
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    // The socket stops answering before dockerd and its containerd have
    // exited; a new dockerd started before then cannot reach containerd.
    let proc_dir = std::path::PathBuf::from(format!("/proc/{pid}"));
    wait_until("dockerd is gone", || !proc_dir.exists());
    let started = Command::new("bash")
        .arg(workspace().join("scripts/engine.sh"))
        .arg("--registry")
        .status()
        .unwrap();
    assert!(started.success());

    // The agent lost the stream and got it back.
    wait_until("the agent resumes the engine's events", || {
        let ev = s.run(&["events", "-o", "json"]);
        String::from_utf8_lossy(&ev.stdout).contains("\"engine_resumed\"")
    });
    wait_until("both replicas run again", || {
        s.ps().iter().filter(|r| r["state"] == "running").count() == 2
    });

    // A replica killed after the restart is still brought back.
    let ids = s.ids("web");
    Command::new("docker")
        .args(["kill", &ids[0]])
        .output()
        .unwrap();
    wait_until("the killed replica runs again", || {
        s.ps()
            .iter()
            .filter(|r| r["state"] == "running" && r["health"] == "healthy")
            .count()
            == 2
    });
}
