//! `tug up --dry-run` on the real engine: the plan per replica with its
//! reason, read-only (nothing created or removed), exit 0 when there is
//! nothing to do and 2 when `up` would change something.

mod common;
use common::*;
use std::process::Command;

const IMAGE: &str = "tug-test/dryrun-busybox:1";
const IMAGE2: &str = "tug-test/dryrun-busybox:2";

/// busybox-static as a one-binary image, imported once; the second tag has
/// one more file, so another image id.
fn busybox_images() {
    for (image, extra) in [(IMAGE, false), (IMAGE2, true)] {
        let have = Command::new("docker")
            .args(["image", "inspect", image])
            .output()
            .is_ok_and(|o| o.status.success());
        if have {
            continue;
        }
        let root = tempfile::tempdir().unwrap();
        let bin = root.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::copy("/bin/busybox", bin.join("busybox"))
            .expect("install busybox-static (scripts/engine.sh does)");
        for tool in ["sh", "sleep"] {
            std::os::unix::fs::symlink("busybox", bin.join(tool)).unwrap();
        }
        if extra {
            std::fs::write(root.path().join("version"), "2\n").unwrap();
        }
        let ok = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "tar -C {} -c . | docker import - {image}",
                root.path().display()
            ))
            .status()
            .unwrap()
            .success();
        assert!(ok, "docker import of busybox failed");
    }
}

fn svc(image: &str, replicas: u32, env: &str) -> String {
    format!(
        "  a:\n    image: {image}\n    command: [sleep, \"3600\"]\n    replicas: {replicas}\n    env: {{ MODE: {env} }}\n    health: none\n    stop_grace_period: 1s\n"
    )
}

/// (exit code, JSON plan) of `tug up --dry-run -o json`.
fn dry_run(s: &TestStack) -> (i32, serde_json::Value) {
    let out = s.run(&["-o", "json", "up", "--dry-run"]);
    let plan =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
    (out.status.code().unwrap_or(-1), plan)
}

/// `tug up --dry-run`'s table for people, after checking it exits 2 (changes).
fn dry_run_table(s: &TestStack) -> String {
    let out = s.run(&["up", "--dry-run"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `action reason` per replica of service a, in replica order.
fn actions(plan: &serde_json::Value) -> Vec<(String, String)> {
    plan["replicas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                format!("{} {}", r["action"].as_str().unwrap(), r["replica"]),
                r["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn dry_run_prints_the_plan_with_reasons_and_touches_nothing() {
    if !engine() {
        return;
    }
    busybox_images();
    let s = TestStack::new("dry", &svc(IMAGE, 2, "one"));

    // Nothing runs yet: everything to create, and nothing is created.
    let (code, plan) = dry_run(&s);
    assert_eq!(code, 2, "{plan}");
    assert_eq!(plan["changes"], true);
    assert!(plan["create_network"].is_string(), "{plan}");
    let a = actions(&plan);
    assert_eq!(a[0].0, "create 0");
    assert_eq!(a[1], ("create 1".into(), "missing".into()));
    assert!(s.ids("a").is_empty(), "the dry run created containers");

    let out = s.run(&["up", "-d", "--timeout", "60s"]);
    assert!(out.status.success(), "{}", text(&out));
    let before = s.ids("a");
    assert_eq!(before.len(), 2);

    // Up to date: exit 0, every replica kept.
    let (code, plan) = dry_run(&s);
    assert_eq!(code, 0, "{plan}");
    assert_eq!(plan["changes"], false);
    assert!(actions(&plan)
        .iter()
        .all(|(a, r)| a.starts_with("keep") && r == "up to date"));

    // Changed env and one more replica: replace two (rolling), create one.
    s.write(&svc(IMAGE, 3, "two"));
    let (code, plan) = dry_run(&s);
    assert_eq!(code, 2, "{plan}");
    let a = actions(&plan);
    assert_eq!(a[0].0, "replace 0");
    assert!(a[0].1.starts_with("config hash changed: "), "{a:?}");
    assert_eq!(a[1].0, "replace 1");
    assert_eq!(a[2], ("create 2".into(), "missing".into()));
    let steps = plan["rollouts"]["a"].as_array().unwrap();
    assert_eq!(steps.len(), 2, "max_surge 1: one replica per step: {plan}");
    assert_eq!(steps[0]["start"], serde_json::json!([0]));

    // One replica fewer and a new image tag.
    s.write(&svc(IMAGE2, 1, "one"));
    let (code, plan) = dry_run(&s);
    assert_eq!(code, 2, "{plan}");
    let a = actions(&plan);
    assert!(
        a.contains(&("remove 1".into(), "scale: replicas is 1".into())),
        "{a:?}"
    );
    assert!(
        a.contains(&(
            "replace 0".into(),
            format!("image changed: {IMAGE} → {IMAGE2}")
        )),
        "{a:?}"
    );

    // The table for people says the same.
    let t = dry_run_table(&s);
    assert!(
        t.contains("remove   a                1        scale: replicas is 1"),
        "{t}"
    );
    assert!(
        t.contains("plan: `tug up` would make the changes above"),
        "{t}"
    );

    // Still exactly the containers `up` made.
    assert_eq!(s.ids("a"), before, "the dry run touched the containers");

    // A bad tug.yaml is an error (1), never "changes" (2).
    std::fs::write(s.file(), "name: x\nservices: [\n").unwrap();
    let out = s.run(&["up", "--dry-run"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    s.write(&svc(IMAGE, 2, "one"));
}

/// A service scaled to zero (`autoscale.min: 0`): the dry run shows its
/// replica stopped and kept for the next wake, then kept once stopped.
#[test]
fn dry_run_shows_the_idle_stop_of_a_service_at_zero() {
    if !engine() {
        return;
    }
    busybox_images();
    let at = |replicas: u32| {
        format!(
            "  a:\n    image: {IMAGE}\n    command: [sleep, \"3600\"]\n    replicas: {replicas}\n    health: none\n    stop_grace_period: 1s\n    autoscale: {{ min: 0, max: 1, idle: 1h }}\n"
        )
    };
    let s = TestStack::new("dryidle", &at(1));
    s.up();
    let before = s.ids("a");
    assert_eq!(before.len(), 1);

    s.write(&at(0));
    let (code, plan) = dry_run(&s);
    assert_eq!(code, 2, "{plan}");
    assert_eq!(
        actions(&plan),
        [(
            "stop 0".to_string(),
            "idle: replicas is 0 (autoscale min 0); kept stopped for the next wake".to_string()
        )],
        "{plan}"
    );
    let t = dry_run_table(&s);
    assert!(
        t.contains("stop     a                0        idle: "),
        "{t}"
    );
    assert_eq!(s.ids("a"), before, "the dry run touched the container");
    let running = |s: &TestStack| {
        let out = s
            .docker()
            .args(["inspect", "-f", "{{.State.Running}}", &before[0]])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(running(&s), "true", "the dry run stopped the replica");

    // Applied: stopped, kept; the next dry run has nothing to do.
    s.up();
    assert_eq!(s.ids("a"), before, "the idle replica is kept");
    assert_eq!(running(&s), "false");
    let (code, plan) = dry_run(&s);
    assert_eq!(code, 0, "{plan}");
    assert_eq!(
        actions(&plan),
        [(
            "keep 0".to_string(),
            "idle: kept stopped for the next wake".to_string()
        )],
        "{plan}"
    );
}
