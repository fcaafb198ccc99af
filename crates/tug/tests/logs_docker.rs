//! `tug logs --grep` and `-o json` on the real engine, through the agent and
//! locally: structured fields, and the trace id a line carries.

mod common;
use common::*;
use std::process::Command;

const IMAGE: &str = "tug-test/logs-busybox:1";

/// busybox-static as a one-binary image, imported once.
fn busybox_image() {
    let have = Command::new("docker")
        .args(["image", "inspect", IMAGE])
        .output()
        .is_ok_and(|o| o.status.success());
    if have {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let bin = root.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::copy("/bin/busybox", bin.join("busybox"))
        .expect("install busybox-static (scripts/engine.sh does)");
    for tool in ["sh", "sleep"] {
        std::os::unix::fs::symlink("busybox", bin.join(tool)).unwrap();
    }
    let ok = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "tar -C {} -c . | docker import - {IMAGE}",
            root.path().display()
        ))
        .status()
        .unwrap()
        .success();
    assert!(ok, "docker import of busybox failed");
}

fn json_lines(s: &TestStack, args: &[&str]) -> Vec<serde_json::Value> {
    let out = s.run(args);
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn check(s: &TestStack) {
    let all = json_lines(s, &["logs", "-o", "json"]);
    assert_eq!(all.len(), 3, "{all:?}");
    let plain = all.iter().find(|l| l["message"] == "plain hello").unwrap();
    assert_eq!(plain["service"], "app");
    assert_eq!(plain["replica"], "0");
    assert_eq!(plain["stream"], "stdout");
    assert!(plain["trace_id"].is_null());
    let w3c = all
        .iter()
        .find(|l| l["message"].as_str().unwrap().contains("traceparent"))
        .unwrap();
    assert_eq!(w3c["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
    let json = all.iter().find(|l| l["stream"] == "stderr").unwrap();
    assert_eq!(json["trace_id"], "abc123", "{json}");

    let only = json_lines(s, &["logs", "-o", "json", "--grep", "level.:.error"]);
    assert_eq!(only.len(), 1, "{only:?}");
    assert_eq!(only[0]["trace_id"], "abc123");

    let table = s.run(&["logs", "--grep", "^plain"]);
    let t = String::from_utf8_lossy(&table.stdout);
    assert!(
        t.contains("plain hello") && !t.contains("traceparent"),
        "{t}"
    );

    let bad = s.run(&["logs", "--grep", "("]);
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("regular expression"),
        "{}",
        text(&bad)
    );
}

#[test]
fn logs_grep_and_json_with_trace_ids_through_the_agent_and_locally() {
    if !engine() {
        return;
    }
    busybox_image();
    let s = TestStack::new(
        "logs",
        &format!(
            r#"  app:
    image: {IMAGE}
    command: ["sh", "-c", "echo plain hello; echo GET / traceparent=00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01; echo '{{\"level\":\"error\",\"traceId\":\"abc123\"}}' 1>&2; exec sleep 3600"]
    stop_grace_period: 1s
"#
        ),
    );
    let up = s.run(&["up", "-d"]);
    assert!(up.status.success(), "{}", text(&up));
    wait_until("the three lines are written", || {
        String::from_utf8_lossy(&s.run(&["logs"]).stdout)
            .lines()
            .count()
            >= 3
    });
    check(&s);

    // Without the agent: the same answers, read from the engine here.
    let pid = std::fs::read_to_string(s.state().join(&s.name).join("agent.pid")).unwrap();
    let killed = Command::new("kill")
        .args(["-TERM", pid.trim()])
        .status()
        .unwrap();
    assert!(killed.success());
    let sock = s.state().join(&s.name).join("agent.sock");
    wait_until("the agent is gone", || !sock.exists());
    check(&s);
}
