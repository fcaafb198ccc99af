//! `tug logs --grep`, `--since/--until`, `--timestamps` and `-o json` on the
//! real engine, through the agent and locally: structured fields, the time
//! the engine stamped and the trace id a line carries.

mod common;
use common::*;
use std::process::Command;

fn json_lines(s: &TestStack, args: &[&str]) -> Vec<serde_json::Value> {
    let out = s.run(args);
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn check(s: &TestStack) {
    let all = json_lines(s, &["logs", "-o", "json", "--until", "1h"]);
    assert!(all.is_empty(), "nothing is older than the stack: {all:?}");
    let all = json_lines(s, &["logs", "-o", "json"]);
    assert_eq!(all.len(), 4, "{all:?}");
    for l in &all {
        let t = l["time"].as_str().unwrap_or_else(|| panic!("no time: {l}"));
        humantime::parse_rfc3339(t).unwrap_or_else(|e| panic!("{e}: {t}"));
    }
    check_window(s, &all);
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
    let bad = s.run(&["logs", "--since", "yesterday-ish"]);
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("is not a time"),
        "{}",
        text(&bad)
    );
}

/// `--since`/`--until` split the lines at the late line's time (the app
/// sleeps 2 s before it), relative and absolute forms alike; `--timestamps`
/// shows the times; a followed window ends by itself.
fn check_window(s: &TestStack, all: &[serde_json::Value]) {
    let late = all.iter().find(|l| l["message"] == "late").unwrap();
    let at = late["time"].as_str().unwrap();
    let since = json_lines(s, &["logs", "-o", "json", "--since", at]);
    let messages = |ls: &[serde_json::Value]| -> Vec<String> {
        ls.iter()
            .map(|l| l["message"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(messages(&since), ["late"]);
    let until = json_lines(s, &["logs", "-o", "json", "--until", at]);
    assert_eq!(until.len(), 3, "{until:?}");
    assert!(!messages(&until).contains(&"late".to_string()));
    let unix = humantime::parse_rfc3339(at)
        .unwrap()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    // Whole seconds: the earlier lines are 2 s before.
    let since_unix = json_lines(s, &["logs", "-o", "json", "--since", &unix.to_string()]);
    assert_eq!(messages(&since_unix), ["late"]);
    assert_eq!(
        json_lines(s, &["logs", "-o", "json", "--since", "1h"]).len(),
        4
    );

    let table = s.run(&["logs", "--timestamps", "--grep", "^late$"]);
    let t = String::from_utf8_lossy(&table.stdout);
    assert!(t.contains(at) && t.contains("late"), "{t}");

    // A followed window that ends in 2 s: the command ends then, by itself.
    let end = humantime::format_rfc3339_nanos(
        std::time::SystemTime::now() + std::time::Duration::from_secs(2),
    )
    .to_string();
    let mut follow = s
        .command(&["logs", "-F", "--until", &end])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        if let Some(status) = follow.try_wait().unwrap() {
            assert!(status.success());
            break;
        }
        if std::time::Instant::now() > deadline {
            let _ = follow.kill();
            panic!("`tug logs -F --until` did not end at its time");
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn logs_grep_window_and_json_with_times_and_trace_ids_through_the_agent_and_locally() {
    if !engine() {
        return;
    }
    busybox_images(None);
    let s = TestStack::new(
        "logs",
        &format!(
            r#"  app:
    image: {BUSYBOX}
    command: ["sh", "-c", "echo plain hello; echo GET / traceparent=00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01; echo '{{\"level\":\"error\",\"traceId\":\"abc123\"}}' 1>&2; sleep 2; echo late; exec sleep 3600"]
    stop_grace_period: 1s
"#
        ),
    );
    let up = s.run(&["up", "-d"]);
    assert!(up.status.success(), "{}", text(&up));
    wait_until("the four lines are written", || {
        String::from_utf8_lossy(&s.run(&["logs"]).stdout)
            .lines()
            .count()
            >= 4
    });
    check(&s);

    // Without the agent: the same answers, read from the engine here.
    let killed = Command::new("kill")
        .args(["-TERM", &s.agent_pid().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let sock = s.state().join(&s.name).join("agent.sock");
    wait_until("the agent is gone", || !sock.exists());
    check(&s);
}
