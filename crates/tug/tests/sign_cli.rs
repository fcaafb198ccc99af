//! `tug keygen`, `tug sign`, `tug verify` against the real registry.

mod common;

use common::{text, tug, workspace};
use std::path::Path;
use tug_image::oci::{ImageBuilder, ImageConfig, LayerBuilder};
use tug_image::registry::{ClientOptions, PushOptions, Reference};

fn run(dir: &Path, args: &[&str]) -> std::process::Output {
    tug()
        .current_dir(dir)
        .env("TUG_KEY_PASSWORD", "s3cret-pass")
        .args(args)
        .output()
        .unwrap()
}

fn push_tiny(tag: &str, content: &str) {
    let layer = LayerBuilder::new(0)
        .file("/x", content.as_bytes().to_vec(), 0o644)
        .unwrap()
        .build("x")
        .unwrap();
    let img = ImageBuilder::new()
        .layer(layer)
        .config(ImageConfig::default())
        .build()
        .unwrap();
    let opts = PushOptions {
        client: ClientOptions::default(),
        mount_from: None,
    };
    tug_image::registry::push(&img, &Reference::parse(tag).unwrap(), &opts, &mut |_| {}).unwrap();
}

#[test]
fn keygen_sign_verify_and_every_failure_named() {
    if std::net::TcpStream::connect("127.0.0.1:5000").is_err() {
        if std::env::var("TUG_REQUIRE_ENGINE").is_ok_and(|v| v == "1") {
            panic!("TUG_REQUIRE_ENGINE=1 but no registry on 127.0.0.1:5000");
        }
        eprintln!("\n!!! SKIPPED: no registry on 127.0.0.1:5000\n");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = run(d, &["keygen"]);
    assert!(out.status.success(), "{}", text(&out));
    let key = std::fs::read_to_string(d.join("tug.key")).unwrap();
    assert!(key.contains("ENCRYPTED SIGSTORE PRIVATE KEY"));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(d.join("tug.key"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    // Keys are never printed.
    let body = key.lines().nth(1).unwrap();
    assert!(!text(&out).contains(body));
    // No overwrite without --force.
    assert_eq!(run(d, &["keygen"]).status.code(), Some(2));

    let tag = format!("127.0.0.1:5000/tsign{}/app:1", std::process::id());
    push_tiny(&tag, "first");
    let out = run(d, &["sign", &tag, "--key", "tug.key"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(!text(&out).contains(body));
    let out = run(d, &["verify", &tag, "--key", "tug.pub"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("verified"));

    // Wrong password.
    let out = tug()
        .current_dir(d)
        .env("TUG_KEY_PASSWORD", "nope")
        .args(["sign", &tag, "--key", "tug.key"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("wrong password"), "{}", text(&out));

    // Another key does not verify.
    let out = run(d, &["keygen", "--output-key-prefix", "other"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = run(d, &["verify", &tag, "--key", "other.pub"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("does not verify with this public key"),
        "{}",
        text(&out)
    );

    // The tag moved to another image: unsigned.
    let r = Reference::parse(&tag).unwrap();
    let client = tug_image::registry::RegistryClient::new(&r, ClientOptions::default()).unwrap();
    let old = client.resolve_digest(&r.repository, "1").unwrap();
    push_tiny(&tag, "tampered");
    let new = client.resolve_digest(&r.repository, "1").unwrap();
    let out = run(d, &["verify", &tag, "--key", "tug.pub"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("no signature for"), "{}", text(&out));

    // The old signature copied onto the new image: the digest check fails.
    let sigs = tug_image::registry::sign::signature_tag(&old);
    let (mt, body) = client.get_manifest(&r.repository, &sigs).unwrap();
    client
        .put_manifest(
            &r.repository,
            &tug_image::registry::sign::signature_tag(&new),
            &mt,
            &body,
        )
        .unwrap();
    let out = run(d, &["verify", &tag, "--key", "tug.pub"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains(&format!("signs {old}, but the image is now {new}")),
        "{}",
        text(&out)
    );
    let _ = workspace();
}
