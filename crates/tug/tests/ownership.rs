//! What the service's user owns, on Docker and on Podman: a named volume is
//! writable by a non-root image user, and a secret is that user's alone
//! (mode 0400), as compose users expect.

mod common;

use common::*;

fn volume_is_writable_by_the_image_user(runtime: Option<&'static str>) {
    let s = TestStack::on(
        runtime,
        "vol",
        &format!(
            "  web:\n    image: {BUSYBOX_USER}\n    command: [sh, -c, 'echo written-by-$(id -u) > /data/f && cat /data/f && exec sleep 3600']\n    \
             volumes: [{{ name: data, path: /data }}]\n    stop_grace_period: 1s\n"
        ),
    );
    if runtime == Some("podman") && s.docker_host.is_none() {
        return;
    }
    busybox_images(s.docker_host.as_deref());
    let up = s.run(&["up", "-d"]);
    assert!(up.status.success(), "{}", text(&up));
    wait_until("the replica wrote its volume", || {
        String::from_utf8_lossy(&s.run(&["logs"]).stdout).contains("written-by-1000")
    });
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
    if runtime == Some("podman") && s.docker_host.is_none() {
        return;
    }
    busybox_images(s.docker_host.as_deref());
    let up = s.run(&["up", "-d"]);
    assert!(up.status.success(), "{}", text(&up));
    wait_until("the service read its secret", || {
        String::from_utf8_lossy(&s.run(&["logs"]).stdout).contains("s3cret-value")
    });
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
