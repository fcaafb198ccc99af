//! The image builder: reproducible layers and digests, OCI layout and
//! docker-archive outputs checked against the real engine.

mod common;

use common::*;
use std::io::Read;
use tug_image::oci::{
    assemble_rust, read_docker_archive, read_oci_layout, ImageBuilder, ImageConfig, LayerBuilder,
};

fn touch(path: &std::path::Path, secs: u64) {
    let f = std::fs::File::options().write(true).open(path).unwrap();
    f.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
        .unwrap();
}

#[test]
fn layer_tar_is_normalised() {
    let layer = LayerBuilder::new(42)
        .owner(7, 8)
        .file("/b/file", b"hello".to_vec(), 0o100644)
        .unwrap()
        .file("a", b"x".to_vec(), 0o755)
        .unwrap()
        .dir("/tmp", 0o1777)
        .unwrap();
    let tar = layer.tar().unwrap();
    let mut ar = tar::Archive::new(tar.as_slice());
    let mut seen = Vec::new();
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let h = e.header().clone();
        let path = e.path().unwrap().to_string_lossy().to_string();
        assert_eq!(h.mtime().unwrap(), 42, "{path}");
        assert_eq!(h.username().unwrap(), Some(""), "{path}");
        assert_eq!(h.groupname().unwrap(), Some(""), "{path}");
        assert!(
            e.pax_extensions().unwrap().is_none(),
            "{path} has pax headers"
        );
        let mut body = Vec::new();
        e.read_to_end(&mut body).unwrap();
        seen.push((path, h.mode().unwrap(), h.uid().unwrap(), h.gid().unwrap()));
    }
    // Sorted, implicit parent directory owned by root, modes as given (file type bits dropped).
    assert_eq!(
        seen,
        vec![
            ("a".to_string(), 0o755, 7, 8),
            ("b/".to_string(), 0o755, 0, 0),
            ("b/file".to_string(), 0o644, 7, 8),
            ("tmp/".to_string(), 0o1777, 7, 8),
        ]
    );
    // Same entries added in another order give the same bytes and digests.
    let again = LayerBuilder::new(42)
        .owner(7, 8)
        .dir("/tmp", 0o1777)
        .unwrap()
        .file("a", b"x".to_vec(), 0o755)
        .unwrap()
        .file("/b/file", b"hello".to_vec(), 0o644)
        .unwrap();
    assert_eq!(again.tar().unwrap(), tar);
    let (l1, l2) = (layer.build("x").unwrap(), again.build("x").unwrap());
    assert_eq!((l1.digest, l1.diff_id), (l2.digest, l2.diff_id));
    // The gzip header carries no name and no time.
    assert_eq!(&l1.data[4..8], &[0, 0, 0, 0]);
    assert_eq!(l1.data[3] & 0x08, 0);
}

#[test]
fn paths_outside_the_root_are_refused() {
    let e = LayerBuilder::new(0)
        .file("/a/../../etc/x", b"".to_vec(), 0o644)
        .unwrap_err();
    assert!(e.to_string().contains("leaves the image root"), "{e}");
}

#[test]
fn config_labels_do_not_change_the_digest_by_order() {
    let build = || {
        let mut cfg = ImageConfig::default();
        for i in 0..20 {
            cfg.labels.insert(format!("label.{i}"), i.to_string());
        }
        cfg.exposed_ports = vec![9000, 8080, 443];
        let l = LayerBuilder::new(0)
            .file("/x", b"1".to_vec(), 0o644)
            .unwrap()
            .build("x")
            .unwrap();
        ImageBuilder::new().layer(l).config(cfg).build().unwrap()
    };
    let digests: std::collections::BTreeSet<String> = (0..5).map(|_| build().digest()).collect();
    assert_eq!(digests.len(), 1);
}

#[test]
fn rust_image_is_reproducible_across_builds_and_mtimes() {
    let bin = hello_binary();
    let opts = hello_options();
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("hello");
    std::fs::copy(&bin.path, &copy).unwrap();
    touch(&copy, 1_000);
    let a = assemble_rust(&copy, "hello", bin.version.as_deref(), &opts).unwrap();
    touch(&copy, 2_000_000_000);
    let mut perms = std::fs::metadata(&copy).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o700);
    std::fs::set_permissions(&copy, perms).unwrap();
    let b = assemble_rust(&copy, "hello", bin.version.as_deref(), &opts).unwrap();
    assert_eq!(a.digest(), b.digest());
    assert_eq!(a.manifest_blob, b.manifest_blob);

    // A second cargo build of the same source, made to recompile by a fresh
    // mtime on a source file, yields the same image.
    let main_rs = workspace().join("examples/hello/src/main.rs");
    std::fs::File::options()
        .write(true)
        .open(&main_rs)
        .unwrap()
        .set_modified(std::time::SystemTime::now())
        .unwrap();
    let rebuilt = tug_image::oci::build_rust(&opts, &|l| eprintln!("{l}")).unwrap();
    assert_eq!(rebuilt.digest(), a.digest());

    // The config says what a Rust service needs.
    let cfg = a.config.config().as_ref().unwrap();
    assert_eq!(cfg.user().as_deref(), Some("10001:10001"));
    assert_eq!(
        cfg.entrypoint().as_ref().unwrap(),
        &vec!["/app/hello".to_string()]
    );
    assert_eq!(
        cfg.exposed_ports().as_ref().unwrap(),
        &vec!["8080/tcp".to_string()]
    );
    let labels = cfg.labels().as_ref().unwrap();
    assert_eq!(labels["org.opencontainers.image.version"], "1.0.0");
    assert_eq!(
        labels["org.opencontainers.image.created"],
        "2023-11-14T22:13:20Z"
    );
    assert_eq!(a.config.created().as_deref(), Some("2023-11-14T22:13:20Z"));

    // A different timestamp is a different image.
    let mut later = opts.clone();
    later.source_date_epoch = Some(1_700_000_001);
    let c = assemble_rust(&copy, "hello", bin.version.as_deref(), &later).unwrap();
    assert_ne!(c.digest(), a.digest());
}

#[test]
fn base_layer_has_app_user_and_sticky_tmp() {
    let bin = hello_binary();
    let img = assemble_rust(&bin.path, "hello", None, &hello_options()).unwrap();
    let raw = img.to_raw();
    let tar = raw.layers[0].tar().unwrap();
    let mut ar = tar::Archive::new(tar.as_slice());
    let mut files = std::collections::BTreeMap::new();
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let mode = e.header().mode().unwrap();
        let path = e.path().unwrap().to_string_lossy().to_string();
        let mut s = String::new();
        let _ = e.read_to_string(&mut s);
        files.insert(path, (mode, s));
    }
    assert!(files["etc/passwd"].1.contains("app:x:10001:10001:"));
    assert!(files["etc/group"].1.contains("app:x:10001:"));
    assert_eq!(files["tmp/"].0, 0o1777);
    if std::path::Path::new("/etc/ssl/certs/ca-certificates.crt").exists() {
        assert!(files.contains_key("etc/ssl/certs/ca-certificates.crt"));
    }
    let app = raw.layers[1].tar().unwrap();
    let mut ar = tar::Archive::new(app.as_slice());
    let bin_entry = ar
        .entries()
        .unwrap()
        .map(|e| e.unwrap())
        .find(|e| e.path().unwrap().to_string_lossy() == "app/hello")
        .unwrap();
    assert_eq!(bin_entry.header().mode().unwrap(), 0o755);
}

#[test]
fn oci_layout_round_trips() {
    let l = LayerBuilder::new(0)
        .file("/x", b"data".to_vec(), 0o644)
        .unwrap()
        .build("ADD x")
        .unwrap();
    let img = ImageBuilder::new()
        .layer(l)
        .config(ImageConfig::default())
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    img.write_oci_layout(dir.path(), Some("x:1")).unwrap();
    assert!(dir.path().join("oci-layout").is_file());
    let raw = read_oci_layout(dir.path(), Some("x:1")).unwrap();
    assert_eq!(raw.digest(), Some(img.digest()));
    assert_eq!(raw.config, img.config_blob);
    assert_eq!(raw.layers[0].data, img.layers[0].data);
    let e = read_oci_layout(dir.path(), Some("y:2")).unwrap_err();
    assert!(e.to_string().contains("no image tagged \"y:2\""), "{e}");
    // A corrupted layer blob is caught: the layer says why it cannot be
    // read (the other layers stay usable, e.g. for a scan).
    std::fs::write(
        dir.path()
            .join("blobs/sha256")
            .join(tug_image::oci::hex_of(&img.layers[0].digest)),
        b"junk",
    )
    .unwrap();
    let raw = read_oci_layout(dir.path(), None).unwrap();
    let e = raw.layers[0].tar().unwrap_err();
    assert!(e.to_string().contains("does not match its digest"), "{e}");
    let e = read_oci_layout(&dir.path().join("nope"), None).unwrap_err();
    assert!(e.to_string().contains("not an OCI image layout"), "{e}");
}

#[test]
fn docker_archive_loads_and_runs_on_the_engine() {
    if !engine("docker_archive_loads_and_runs_on_the_engine") {
        return;
    }
    let bin = hello_binary();
    let img = assemble_rust(&bin.path, "hello", bin.version.as_deref(), &hello_options()).unwrap();
    let tag = format!("tug-test/{}:1", unique("archive"));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hello.tar");
    img.write_docker_archive(std::fs::File::create(&file).unwrap(), &tag)
        .unwrap();
    // Byte-identical archive for the same image.
    let mut again = Vec::new();
    img.write_docker_archive(&mut again, &tag).unwrap();
    assert_eq!(again, std::fs::read(&file).unwrap());

    let loaded = docker_ok(&["load", "-i", file.to_str().unwrap()]);
    assert!(loaded.contains(&tag), "{loaded}");
    let id = docker_ok(&["image", "inspect", "--format", "{{.Id}}", &tag]);
    // The engine's image ID is the config digest (or, with the containerd
    // store, the manifest digest).
    assert!(id == img.config_digest() || id == img.digest(), "{id}");
    assert_hello_runs(&tag);

    // And what the engine saves reads back with the same config.
    let saved = dir.path().join("saved.tar");
    docker_ok(&["save", "-o", saved.to_str().unwrap(), &tag]);
    let raw = read_docker_archive(std::fs::File::open(&saved).unwrap(), "saved.tar").unwrap();
    assert_eq!(raw.config, img.config_blob);
    docker_ok(&["rmi", &tag]);
}
