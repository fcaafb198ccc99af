//! The dashboard end to end: a stack on the real engine with its agent,
//! driven in headless Chromium by crates/tug/tests/ui/dashboard.mjs
//! (playwright-core, axe-core; scripts/ui-tools.sh installs them).
//! Screenshots go to target/ui-artifacts/.

mod common;

use common::*;
use std::path::PathBuf;
use std::process::Command;

/// Where scripts/ui-tools.sh put the npm packages, and the browser; a loud
/// skip without them, a failure with `TUG_REQUIRE_ENGINE=1`.
fn ui_tools() -> Option<(PathBuf, PathBuf)> {
    let dir = std::env::var_os("TUG_UI_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/tug/ui-tools")
        });
    let chromium = std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    let node = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    let missing: Vec<&str> = [
        (!node).then_some("node"),
        (!chromium.exists()).then_some("chromium"),
        (!dir.join("node_modules/playwright-core").exists()).then_some("playwright-core"),
        (!dir.join("node_modules/axe-core").exists()).then_some("axe-core"),
    ]
    .into_iter()
    .flatten()
    .collect();
    if missing.is_empty() {
        return Some((dir, chromium));
    }
    let msg = format!(
        "the dashboard's browser tests need {} (run scripts/ui-tools.sh)",
        missing.join(", ")
    );
    if std::env::var("TUG_REQUIRE_ENGINE").is_ok_and(|v| v == "1") {
        panic!("TUG_REQUIRE_ENGINE=1 but {msg}");
    }
    eprintln!("\n!!! SKIPPED: {msg}\n");
    None
}

fn browse(tools: &(PathBuf, PathBuf), args: &[&str]) {
    let script = workspace().join("crates/tug/tests/ui/dashboard.mjs");
    let out = Command::new("node")
        .arg(script)
        .args(args)
        .env("TUG_UI_TOOLS", &tools.0)
        .env("CHROMIUM", &tools.1)
        .env("TUG_UI_ARTIFACTS", workspace().join("target/ui-artifacts"))
        .output()
        .unwrap();
    let text = text(&out);
    eprintln!("{text}");
    assert!(out.status.success(), "the browser test failed:\n{text}");
}

fn write(s: &TestStack, head: &str, services: &str) {
    let yaml = format!(
        "name: {}\n{head}services:\n{}",
        s.name,
        services.replace("WORKSPACE", &workspace().display().to_string())
    );
    std::fs::write(s.file(), yaml).unwrap();
}

/// `tug dashboard -o json` (with `--token` when asked).
fn dashboard(s: &TestStack, token: bool) -> serde_json::Value {
    let mut args = vec!["dashboard", "-o", "json"];
    if token {
        args.push("--token");
    }
    let out = s.run(&args);
    assert!(out.status.success(), "{}", text(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn dashboard_without_an_agent_says_how_to_start_one() {
    let s = TestStack::new("dashnone", &service("web", ""));
    let out = s.run(&["dashboard"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("tug up -d"), "{err}");
}

#[test]
fn dashboard_shows_the_stack_live_and_rolls_back() {
    if !engine() {
        return;
    }
    let Some(tools) = ui_tools() else { return };
    let s = TestStack::new("dashlive", "");
    let gateway = format!("gateway: {{ listen: ['127.0.0.1:{}'] }}\n", free_port());
    let services = |v: &str| {
        format!(
            "{}{}",
            service(
                "web",
                &format!(
                    "    replicas: 2\n    depends_on: {{ db: healthy }}\n    route: {{ path: / }}\n    env: {{ VERSION: \"{v}\" }}\n"
                )
            ),
            service("db", "")
        )
    };
    write(&s, &gateway, &services("1"));
    let out = s.run(&["up", "-d"]);
    assert!(out.status.success(), "{}", text(&out));
    // A second revision, so there is one to roll back to.
    write(&s, &gateway, &services("2"));
    let out = s.run(&["up", "-d"]);
    assert!(out.status.success(), "{}", text(&out));

    let d = dashboard(&s, false);
    assert_eq!(d["loopback"], true, "{d}");
    assert!(d.get("token").is_none(), "{d}");
    let url = d["url"].as_str().unwrap().to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    browse(&tools, &["live", &url]);
}

#[test]
fn dashboard_beyond_loopback_needs_the_token() {
    if !engine() {
        return;
    }
    let Some(tools) = ui_tools() else { return };
    let s = TestStack::new("dashtoken", "");
    let port = free_port();
    write(
        &s,
        &format!("dashboard: {{ listen: \"0.0.0.0:{port}\" }}\n"),
        &service("web", ""),
    );
    let out = s.run(&["up", "-d"]);
    assert!(out.status.success(), "{}", text(&out));
    let d = dashboard(&s, true);
    assert_eq!(d["loopback"], false, "{d}");
    let token = d["token"].as_str().unwrap().to_string();
    assert_eq!(token.len(), 64, "{d}");
    let human = s.run(&["dashboard"]);
    assert!(
        !String::from_utf8_lossy(&human.stdout).contains(&token),
        "the token is printed only when asked for"
    );
    // The browser reaches the listener on loopback; it still asks for the token.
    browse(
        &tools,
        &["token", &format!("http://127.0.0.1:{port}/"), &token],
    );
}
