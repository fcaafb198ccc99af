//! `tug dev` on the real engine: an edit of a service's build context
//! rebuilds its image and rolls it out through the agent, and the new
//! replica serves the new content; an edit .dockerignore leaves out
//! starts no cycle.

mod common;
use common::*;
use std::process::Stdio;
use std::time::{Duration, Instant};

const BASE: &str = BUSYBOX;

fn endpoint(s: &TestStack) -> Option<String> {
    s.ps()
        .iter()
        .find(|r| r["service"] == "web" && r["health"] == "healthy")
        .and_then(|r| r["endpoint"].as_str().map(String::from))
}

fn body(s: &TestStack) -> String {
    let Some(ep) = endpoint(s) else {
        return String::new();
    };
    let r = get(&ep, "/index.html");
    r.split("\r\n\r\n").nth(1).unwrap_or("").trim().to_string()
}

fn wait_for(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while t.elapsed() < limit {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("timed out waiting until {what}");
}

#[test]
fn an_edit_rolls_out_a_new_image_that_serves_it() {
    if !engine() {
        return;
    }
    busybox_images(None);
    let s = TestStack::new(
        "dev",
        "  web:\n    build: { context: ./app }\n    port: 8080\n    health: { http: /index.html, interval: 500ms, timeout: 1s, retries: 20 }\n",
    );
    let app = s.dir.path().join("app");
    std::fs::create_dir_all(&app).unwrap();
    std::fs::write(
        app.join("Dockerfile"),
        format!("FROM {BASE}\nCOPY index.html /www/index.html\nCMD [\"/bin/busybox\", \"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/www\"]\n"),
    )
    .unwrap();
    std::fs::write(app.join(".dockerignore"), "notes.txt\n").unwrap();
    std::fs::write(app.join("index.html"), "v1\n").unwrap();
    let err = s.dir.path().join("dev.err");
    let mut dev = s
        .command(&["dev", "--no-logs"])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    let log = || std::fs::read_to_string(&err).unwrap_or_default();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        wait_for("tug dev watches", Duration::from_secs(120), || {
            log().contains("watching the sources of web")
        });
        assert_eq!(body(&s), "v1", "{}", log());
        let before = s.ids("web");
        // Left out by .dockerignore: no cycle.
        std::fs::write(app.join("notes.txt"), "scratch\n").unwrap();
        std::thread::sleep(Duration::from_secs(1));
        std::fs::write(app.join("index.html"), "v2\n").unwrap();
        wait_for(
            "the new content is served",
            Duration::from_secs(120),
            || body(&s) == "v2",
        );
        wait_for("the cycle is reported", Duration::from_secs(60), || {
            log().contains("serving")
        });
        let text = log();
        assert!(
            text.contains("cycle 1: web serving") && text.contains("s after the edit"),
            "{text}"
        );
        assert!(!text.contains("cycle 2"), "{text}");
        let after = s.ids("web");
        assert_ne!(before, after, "the replica was replaced: {text}");
    }));
    let _ = dev.kill();
    let _ = dev.wait();
    if let Err(e) = result {
        eprintln!("tug dev said:\n{}", log());
        std::panic::resume_unwind(e);
    }
}

/// A `develop.watch` sync rule copies an edited file into the running
/// replica: served at once, with no new image and the same container.
#[test]
fn a_sync_rule_copies_a_file_without_a_new_image() {
    if !engine() {
        return;
    }
    busybox_images(None);
    let s = TestStack::new(
        "dsync",
        "  web:\n    build: { context: ./app }\n    port: 8080\n    security: { read_only: false }\n    health: { http: /index.html, interval: 500ms, timeout: 1s, retries: 20 }\n    develop:\n      watch:\n        - { path: ./app/static, action: sync, target: /www/static, ignore: [\"*.tmp\"] }\n",
    );
    let app = s.dir.path().join("app");
    std::fs::create_dir_all(app.join("static")).unwrap();
    std::fs::write(
        app.join("Dockerfile"),
        // `rm`, and a target the replica's user may write: a file deleted
        // on the host is deleted here.
        format!("FROM {BASE}\nRUN [\"/bin/busybox\", \"ln\", \"-sf\", \"busybox\", \"/bin/rm\"]\nRUN [\"/bin/busybox\", \"mkdir\", \"-p\", \"-m\", \"777\", \"/www/static\"]\nCOPY index.html /www/index.html\nCMD [\"/bin/busybox\", \"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/www\"]\n"),
    )
    .unwrap();
    std::fs::write(app.join("index.html"), "v1\n").unwrap();
    let err = s.dir.path().join("dev.err");
    let mut dev = s
        .command(&["dev", "--no-logs"])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    let log = || std::fs::read_to_string(&err).unwrap_or_default();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        wait_for("tug dev watches", Duration::from_secs(120), || {
            log().contains("watching the sources of web")
        });
        let before = s.ids("web");
        let ep = endpoint(&s).expect("a healthy replica");
        // Ignored by the rule: nothing happens.
        std::fs::write(app.join("static/draft.tmp"), "draft\n").unwrap();
        std::thread::sleep(Duration::from_secs(1));
        std::fs::write(app.join("static/a.txt"), "synced-a\n").unwrap();
        wait_for("the synced file is served", Duration::from_secs(60), || {
            get(&ep, "/static/a.txt").contains("synced-a")
        });
        wait_for("the sync is reported", Duration::from_secs(10), || {
            log().contains("cycle 1: web synced 1 file(s) into 1 replica(s)")
        });
        // Deleted on the host: deleted in the replica.
        std::fs::remove_file(app.join("static/a.txt")).unwrap();
        wait_for("the deleted file is gone", Duration::from_secs(60), || {
            !get(&ep, "/static/a.txt").contains("synced-a")
        });
        wait_for("the deletion is reported", Duration::from_secs(10), || {
            log().contains("cycle 2: web synced 1 file(s) into 1 replica(s)")
        });
        let text = log();
        assert!(!text.contains("rebuilding"), "{text}");
        assert!(!get(&ep, "/static/draft.tmp").contains("draft"), "{text}");
        assert_eq!(before, s.ids("web"), "same container: {text}");
    }));
    let _ = dev.kill();
    let _ = dev.wait();
    if let Err(e) = result {
        eprintln!("tug dev said:\n{}", log());
        std::panic::resume_unwind(e);
    }
}
