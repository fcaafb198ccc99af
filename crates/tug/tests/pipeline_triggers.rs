//! The agent runs pipelines by itself: a per-second cron schedule fires; a
//! push webhook signed with the shared secret (GitHub HMAC, GitLab token)
//! runs its pipeline, whose output reaches the event bus; an unsigned or
//! badly signed one is 401 and runs nothing.

mod common;
use common::*;
use hmac::{Hmac, Mac};
use std::io::{Read, Write};
use std::time::Duration;

const IMAGE: &str = BUSYBOX;

/// POSTs `body` with `headers`; (status, response body).
fn post(port: u16, path: &str, headers: &[(&str, &str)], body: &str) -> (u16, String) {
    let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut req = format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    c.write_all(req.as_bytes()).unwrap();
    let mut out = String::new();
    let _ = c.read_to_string(&mut out);
    let status = out
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (
        status,
        out.split("\r\n\r\n").nth(1).unwrap_or("").to_string(),
    )
}

fn sign(secret: &str, body: &str) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body.as_bytes());
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

fn lines(p: &std::path::Path) -> usize {
    std::fs::read_to_string(p).map_or(0, |t| t.lines().count())
}

#[test]
fn schedules_fire_and_signed_webhooks_run_pipelines() {
    if !engine() {
        return;
    }
    busybox_images(None);
    let s = TestStack::new("trg", "");
    let port = free_port();
    let dir = s.dir.path();
    std::fs::write(dir.join("hook.txt"), "s3cr3t-hook\n").unwrap();
    std::fs::write(
        s.file(),
        format!(
            r#"name: {name}
dashboard: {{ listen: "127.0.0.1:{port}" }}
secrets:
  hook: {{ file: ./hook.txt }}
services:
  idle:
    image: {IMAGE}
    command: [/bin/busybox, sleep, "3600"]
pipelines:
  deploy:
    workspace: shared
    on: {{ webhook: {{ secret: hook, branches: [main] }} }}
    jobs:
      mark: {{ steps: ["echo pushed-by-hook | tee -a hooked.txt"] }}
  tick:
    workspace: shared
    on: {{ schedule: "* * * * * *" }}
    jobs:
      beat: {{ steps: ["echo beat >> ticks.txt"] }}
"#,
            name = s.name
        ),
    )
    .unwrap();
    let up = s.run(&["up", "-d"]);
    assert!(up.status.success(), "{}", text(&up));

    // The schedule fires every second.
    wait_until("the schedule fired twice", || {
        lines(&dir.join("ticks.txt")) >= 2
    });

    let push = r#"{"ref":"refs/heads/main","after":"abc"}"#;
    let hooked = dir.join("hooked.txt");
    // Unsigned, badly signed, a wrong GitLab token: 401, nothing runs.
    let (st, body) = post(port, "/v1/hooks/deploy", &[], push);
    assert_eq!(st, 401, "{body}");
    assert!(body.contains("not signed"), "{body}");
    let bad = sign("not-the-secret", push);
    let (st, body) = post(
        port,
        "/v1/hooks/deploy",
        &[("X-Hub-Signature-256", &bad), ("X-GitHub-Event", "push")],
        push,
    );
    assert_eq!(st, 401, "{body}");
    let (st, _) = post(
        port,
        "/v1/hooks/deploy",
        &[("X-Gitlab-Token", "nope")],
        push,
    );
    assert_eq!(st, 401);
    std::thread::sleep(Duration::from_secs(2));
    assert!(!hooked.exists(), "a refused webhook ran the pipeline");

    // Another branch: accepted, not run.
    let other = r#"{"ref":"refs/heads/feature"}"#;
    let (st, body) = post(
        port,
        "/v1/hooks/deploy",
        &[
            ("X-Hub-Signature-256", &sign("s3cr3t-hook", other)),
            ("X-GitHub-Event", "push"),
        ],
        other,
    );
    assert_eq!(st, 200, "{body}");
    assert!(body.contains("\"ran\":false"), "{body}");

    // Signed by GitHub: 202 and the run.
    let (st, body) = post(
        port,
        "/v1/hooks/deploy",
        &[
            ("X-Hub-Signature-256", &sign("s3cr3t-hook", push)),
            ("X-GitHub-Event", "push"),
        ],
        push,
    );
    assert_eq!(st, 202, "{body}");
    assert!(body.contains("\"run\":"), "{body}");
    wait_until("the webhook's run wrote its file", || lines(&hooked) >= 1);
    // GitLab's token.
    let (st, body) = post(
        port,
        "/v1/hooks/deploy",
        &[
            ("X-Gitlab-Token", "s3cr3t-hook"),
            ("X-Gitlab-Event", "Push Hook"),
        ],
        push,
    );
    assert_eq!(st, 202, "{body}");
    wait_until("the GitLab webhook's run wrote its file", || {
        lines(&hooked) >= 2
    });

    // The job's output went over the event bus into the recorded events.
    wait_until("the output is on the event bus", || {
        get(&format!("127.0.0.1:{port}"), "/v1/events?limit=10000").contains("pushed-by-hook")
    });
    let events = get(&format!("127.0.0.1:{port}"), "/v1/events?limit=10000");
    assert!(
        events.contains("pipeline_started") && events.contains("\"trigger\":\"github\""),
        "{events}"
    );
    assert!(events.contains("pipeline_finished"), "{events}");
    assert!(
        !events.contains("s3cr3t-hook"),
        "the secret leaked into the events"
    );
    // Runs are in the stack's store, as `tug pipeline run` leaves them.
    let runs = s.run(&["pipeline", "runs", "-o", "json"]);
    let all = text(&runs);
    assert!(all.contains("deploy") && all.contains("tick"), "{all}");
}
