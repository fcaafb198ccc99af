//! What the service's user owns, on Docker and on Podman: a named volume is
//! writable by a non-root image user, and a secret is that user's alone
//! (mode 0400), as compose users expect; the long form's uid, gid and mode
//! are applied; a user known by name is resolved from the image's
//! /etc/passwd, or the error says it cannot be; helper containers a killed
//! tug left behind are swept by the stack's next `up` or `down`.

mod common;

use common::*;

/// Brings the stack up and waits until its logs hold every one of `lines`;
/// false when the engine asked for is not here (Podman without its socket).
fn up_until_logged(s: &TestStack, runtime: Option<&str>, lines: &[&str]) -> bool {
    if runtime == Some("podman") && s.docker_host.is_none() {
        return false;
    }
    busybox_images(s.docker_host.as_deref());
    let up = s.run(&["up", "-d"]);
    assert!(up.status.success(), "{}", text(&up));
    wait_until(&format!("the logs to hold {lines:?}"), || {
        let logs = String::from_utf8_lossy(&s.run(&["logs"]).stdout).to_string();
        lines.iter().all(|l| logs.contains(l))
    });
    true
}

fn volume_is_writable_by_the_image_user(runtime: Option<&'static str>) {
    let s = TestStack::on(
        runtime,
        "vol",
        &format!(
            "  web:\n    image: {BUSYBOX_USER}\n    command: [sh, -c, 'echo written-by-$(id -u) > /data/f && cat /data/f && exec sleep 3600']\n    \
             volumes: [{{ name: data, path: /data }}]\n    stop_grace_period: 1s\n"
        ),
    );
    up_until_logged(&s, runtime, &["written-by-1000"]);
}

fn secret_is_the_service_users_alone(runtime: Option<&'static str>) {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key.txt");
    std::fs::write(&key, "s3cret-value\n").unwrap();
    let s = TestStack::on(
        runtime,
        "sec",
        &format!(
            "  web:\n    image: {BUSYBOX_USER}\n    command: [sh, -c, 'cat /run/secrets/api_key && exec sleep 3600']\n    \
             secrets: [api_key]\n    stop_grace_period: 1s\n\
             secrets:\n  api_key: {{ file: {} }}\n",
            key.display()
        ),
    );
    if !up_until_logged(&s, runtime, &["s3cret-value"]) {
        return;
    }
    let id = s.ids("web").pop().unwrap();
    let stat = s
        .docker()
        .args([
            "exec",
            &id,
            "stat",
            "-c",
            "%u:%g %a",
            "/run/secrets/api_key",
        ])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&stat.stdout).trim(),
        "1000:1000 400",
        "{}",
        text(&stat)
    );
    // Another user in the same container reads nothing of it.
    let other = s
        .docker()
        .args(["exec", "-u", "2000", &id, "cat", "/run/secrets/api_key"])
        .output()
        .unwrap();
    assert!(!other.status.success(), "{}", text(&other));
    assert!(
        String::from_utf8_lossy(&other.stderr).contains("Permission denied"),
        "{}",
        text(&other)
    );
    // The user's own file is left as it was.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o644);
}

#[test]
fn a_named_volume_is_writable_by_a_non_root_image_user() {
    if engine() {
        volume_is_writable_by_the_image_user(None);
    }
}

#[test]
fn a_named_volume_is_writable_by_a_non_root_image_user_on_podman() {
    volume_is_writable_by_the_image_user(Some("podman"));
}

#[test]
fn a_secret_is_owned_by_the_service_user_with_mode_0400() {
    if engine() {
        secret_is_the_service_users_alone(None);
    }
}

#[test]
fn a_secret_is_owned_by_the_service_user_with_mode_0400_on_podman() {
    secret_is_the_service_users_alone(Some("podman"));
}

/// `stat -c '%u:%g %a' PATH` in the container `id`.
fn stat(s: &TestStack, id: &str, path: &str) -> String {
    let out = s
        .docker()
        .args(["exec", id, "stat", "-c", "%u:%g %a", path])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// `cat PATH` as `user` in the container `id`: its output, or None.
fn cat_as(s: &TestStack, id: &str, user: &str, path: &str) -> Option<String> {
    let out = s
        .docker()
        .args(["exec", "-u", user, id, "cat", path])
        .output()
        .unwrap();
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn long_form_owner_and_mode_are_applied(runtime: Option<&'static str>) {
    let dir = tempfile::tempdir().unwrap();
    let (key, conf) = (dir.path().join("key.txt"), dir.path().join("app.conf"));
    std::fs::write(&key, "s3cret-value\n").unwrap();
    std::fs::write(&conf, "a=1\n").unwrap();
    let s = TestStack::on(
        runtime,
        "long",
        &format!(
            "  web:\n    image: {BUSYBOX_USER}\n    command: [sh, -c, 'cat /run/secrets/key && exec sleep 3600']\n    \
             secrets:\n      - api_key\n      - {{ source: api_key, target: key, uid: 1000, gid: 3000, mode: \"0440\" }}\n    \
             configs: [{{ source: conf, target: /etc/app.conf, uid: 1000, mode: \"0400\" }}]\n    stop_grace_period: 1s\n\
             secrets:\n  api_key: {{ file: {} }}\nconfigs:\n  conf: {{ file: {} }}\n",
            key.display(),
            conf.display()
        ),
    );
    if !up_until_logged(&s, runtime, &["s3cret-value"]) {
        return;
    }
    let id = s.ids("web").pop().unwrap();
    // The short form keeps the service user's 0400; the long form is as written.
    assert_eq!(stat(&s, &id, "/run/secrets/api_key"), "1000:1000 400");
    assert_eq!(stat(&s, &id, "/run/secrets/key"), "1000:3000 440");
    assert_eq!(stat(&s, &id, "/etc/app.conf"), "1000:1000 400");
    // The group given reads it; another user of another group does not.
    assert_eq!(
        cat_as(&s, &id, "2000:3000", "/run/secrets/key").as_deref(),
        Some("s3cret-value")
    );
    assert_eq!(cat_as(&s, &id, "2000:2000", "/run/secrets/key"), None);
    assert_eq!(cat_as(&s, &id, "2000:2000", "/etc/app.conf"), None);
    assert_eq!(
        cat_as(&s, &id, "1000", "/etc/app.conf").as_deref(),
        Some("a=1")
    );
}

#[test]
fn long_form_secrets_and_configs_take_uid_gid_and_mode() {
    if engine() {
        long_form_owner_and_mode_are_applied(None);
    }
}

#[test]
fn long_form_secrets_and_configs_take_uid_gid_and_mode_on_podman() {
    long_form_owner_and_mode_are_applied(Some("podman"));
}

fn a_user_by_name_is_resolved_from_the_image(runtime: Option<&'static str>) {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key.txt");
    std::fs::write(&key, "s3cret-value\n").unwrap();
    let s = TestStack::on(
        runtime,
        "named",
        &format!(
            "  web:\n    image: {BUSYBOX_NAMED}\n    command: [sh, -c, 'echo written-by-$(id -u) > /data/f && cat /data/f /run/secrets/api_key && exec sleep 3600']\n    \
             volumes: [{{ name: data, path: /data }}]\n    secrets: [api_key]\n    stop_grace_period: 1s\n\
             secrets:\n  api_key: {{ file: {} }}\n",
            key.display()
        ),
    );
    if !up_until_logged(&s, runtime, &["written-by-1001", "s3cret-value"]) {
        return;
    }
    let id = s.ids("web").pop().unwrap();
    assert_eq!(stat(&s, &id, "/run/secrets/api_key"), "1001:1002 400");
    assert_eq!(stat(&s, &id, "/data"), "1001:1002 755");

    // A name the image does not have: said before anything is created.
    s.write(&format!(
        "  web:\n    image: {BUSYBOX_NAMED}\n    security: {{ user: ghost }}\n    \
         secrets: [api_key]\n    stop_grace_period: 1s\n\
         secrets:\n  api_key: {{ file: {} }}\n",
        key.display()
    ));
    let up = s.run(&["up", "-d"]);
    assert!(!up.status.success(), "{}", text(&up));
    let err = String::from_utf8_lossy(&up.stderr);
    assert!(
        err.contains(&format!(
            "cannot tell which ids user `ghost` of image {BUSYBOX_NAMED} has"
        )) && err.contains("no user `ghost` in the image's /etc/passwd")
            && err.contains("security: { user: \"UID:GID\" }"),
        "{}",
        text(&up)
    );
}

#[test]
fn a_user_known_by_name_owns_its_volume_and_secret() {
    if engine() {
        a_user_by_name_is_resolved_from_the_image(None);
    }
}

#[test]
fn a_user_known_by_name_owns_its_volume_and_secret_on_podman() {
    a_user_by_name_is_resolved_from_the_image(Some("podman"));
}

/// Leaves a helper container behind as a killed tug would: named after a
/// pid no process has, labelled with `stack`.
fn leave_helper(s: &TestStack, stack: &str, n: u32) -> String {
    let dead = (100_000..4_000_000u32)
        .rev()
        .find(|p| !std::path::Path::new(&format!("/proc/{p}")).exists())
        .unwrap();
    let name = format!("tug-helper-{dead}-{n}");
    let out = s
        .docker()
        .args(["create", "--name", &name, "--network", "none"])
        .args(["--label", &format!("dev.tug.helper-of={stack}")])
        .args([BUSYBOX, "/.tug-helper"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    name
}

fn exists(s: &TestStack, name: &str) -> bool {
    s.docker()
        .args(["container", "inspect", name])
        .output()
        .unwrap()
        .status
        .success()
}

#[test]
fn helpers_left_behind_are_swept_by_up_and_down() {
    if !engine() {
        return;
    }
    let s = TestStack::new(
        "sweep",
        &format!("  web:\n    image: {BUSYBOX}\n    command: [sleep, '3600']\n    stop_grace_period: 1s\n"),
    );
    busybox_images(None);
    let n = std::process::id();
    let mine = leave_helper(&s, &s.name, n);
    let theirs = leave_helper(&s, &format!("{}-other", s.name), n + 1);
    let up = s.run(&["up", "-d"]);
    assert!(up.status.success(), "{}", text(&up));
    assert!(!exists(&s, &mine), "up left {mine}");
    assert!(exists(&s, &theirs), "up removed another stack's helper");
    let again = leave_helper(&s, &s.name, n + 2);
    let down = s.run(&["down"]);
    assert!(down.status.success(), "{}", text(&down));
    assert!(!exists(&s, &again), "down left {again}");
    assert!(exists(&s, &theirs));
    let _ = s.docker().args(["rm", "-f", &theirs]).output();
}
