//! `verify: { key }` in tug.yaml: `tug up` checks the image's signature in
//! the real registry before creating anything, and runs the verified digest.

mod common;

use common::{image_of, text, tug, TestStack};
use std::path::Path;
use std::process::Command;
use tug_image::oci::{ImageBuilder, ImageConfig, LayerBuilder};
use tug_image::registry::{ClientOptions, PushOptions, Reference};

/// busybox-static as a one-binary image that sleeps, pushed to `tag`.
fn push_busybox(tag: &str) -> String {
    let layer = LayerBuilder::new(0)
        .host_file("/bin/busybox", Path::new("/bin/busybox"), 0o755)
        .expect("install busybox-static (scripts/engine.sh does)")
        .dir("/tmp", 0o1777)
        .unwrap()
        .build("busybox")
        .unwrap();
    let img = ImageBuilder::new()
        .layer(layer)
        .config(ImageConfig {
            entrypoint: vec!["/bin/busybox".into(), "sleep".into(), "600".into()],
            user: Some("65534:65534".into()),
            ..Default::default()
        })
        .build()
        .unwrap();
    let opts = PushOptions {
        client: ClientOptions::default(),
        mount_from: None,
    };
    tug_image::registry::push(&img, &Reference::parse(tag).unwrap(), &opts, &mut |_| {}).unwrap();
    img.digest()
}

fn keygen(dir: &Path, prefix: &str) {
    let out = tug()
        .current_dir(dir)
        .env("TUG_KEY_PASSWORD", "up-pass")
        .args(["keygen", "--output-key-prefix", prefix])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
}

fn sign(dir: &Path, tag: &str, key: &str) {
    let out = tug()
        .current_dir(dir)
        .env("TUG_KEY_PASSWORD", "up-pass")
        .args(["sign", tag, "--key", key])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
}

/// Everything of the stack on the engine: containers, networks, volumes.
fn created(stack: &str) -> String {
    let mut all = String::new();
    for what in [
        &["ps", "-aq"][..],
        &["network", "ls", "-q"],
        &["volume", "ls", "-q"],
    ] {
        let out = Command::new("docker")
            .args(what)
            .args(["--filter", &format!("label=dev.tug.stack={stack}")])
            .output()
            .unwrap();
        all.push_str(&String::from_utf8_lossy(&out.stdout));
    }
    all
}

#[test]
fn up_refuses_unsigned_and_wrongly_signed_images_before_creating_anything() {
    if !common::engine() || std::net::TcpStream::connect("127.0.0.1:5000").is_err() {
        if std::env::var("TUG_REQUIRE_ENGINE").is_ok_and(|v| v == "1") {
            panic!("TUG_REQUIRE_ENGINE=1 but no registry on 127.0.0.1:5000");
        }
        eprintln!("\n!!! SKIPPED: no registry on 127.0.0.1:5000\n");
        return;
    }
    let tag = format!("127.0.0.1:5000/tupverify{}/box:1", std::process::id());
    let digest = push_busybox(&tag);
    let s = TestStack::new(
        "upverify",
        &format!("  box:\n    image: {tag}\n    verify: {{ key: keys/tug.pub }}\n    stop_grace_period: 1s\n"),
    );
    let keys = s.dir.path().join("keys");
    std::fs::create_dir(&keys).unwrap();
    keygen(&keys, "tug");
    keygen(&keys, "other");

    // Unsigned: refused, naming the image and the key; nothing created.
    let out = s.run(&["up", "-d"]);
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));
    let t = text(&out);
    assert!(t.contains(&tag) && t.contains("keys/tug.pub"), "{t}");
    assert!(t.contains("no signature for"), "{t}");
    assert_eq!(created(&s.name), "", "{t}");

    // Signed with another key: refused the same way.
    sign(&keys, &tag, "other.key");
    let out = s.run(&["up", "-d"]);
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));
    let t = text(&out);
    assert!(t.contains("does not verify with this public key"), "{t}");
    assert!(t.contains(&tag) && t.contains("keys/tug.pub"), "{t}");
    assert_eq!(created(&s.name), "", "{t}");

    // Signed with the key: runs, pinned by the verified digest.
    sign(&keys, &tag, "tug.key");
    let out = s.run(&["up", "-d"]);
    assert!(out.status.success(), "{}", text(&out));
    let ids = s.ids("box");
    assert_eq!(ids.len(), 1, "{}", text(&out));
    let image = image_of(&ids[0]);
    assert!(image.ends_with(&format!("@{digest}")), "{image}");

    // Down while the file is valid (the bad one below cannot be read).
    let out = s.run(&["down"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(created(&s.name), "");
    // The verified image this test pulled.
    let _ = Command::new("docker").args(["rmi", &image]).output();

    // A bad key path is an error at its line in tug.yaml.
    s.write(&format!(
        "  box:\n    image: {tag}\n    verify: {{ key: nowhere.pub }}\n"
    ));
    let out = s.run(&["validate"]);
    assert_ne!(out.status.code(), Some(0));
    assert!(text(&out).contains("tug.yaml:5:"), "{}", text(&out));
    assert!(text(&out).contains("no public key at"), "{}", text(&out));
}
