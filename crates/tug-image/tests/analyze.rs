//! Layer analysis with exact byte counts: images assembled with known waste,
//! and a `docker save` of an image the engine built.

mod common;

use common::*;
use tug_image::analyze::{analyze, ChangeKind, CiRules, FileChange, ImageSource};
use tug_image::oci::{read_docker_archive, ImageBuilder, ImageConfig, LayerBuilder};

fn bytes(n: usize) -> Vec<u8> {
    vec![b'x'; n]
}

fn change(path: &str, kind: ChangeKind, size: u64) -> FileChange {
    FileChange {
        path: path.into(),
        kind,
        size,
    }
}

/// Three layers: a file rewritten twice, a file removed, a directory removed.
fn wasteful() -> tug_image::oci::Image {
    let l0 = LayerBuilder::new(0)
        .file("/etc/a", bytes(100), 0o644)
        .unwrap()
        .file("/etc/b", bytes(50), 0o644)
        .unwrap()
        .file("/data/dir/x", bytes(30), 0o644)
        .unwrap()
        .file("/data/dir/y", bytes(20), 0o644)
        .unwrap()
        .build("base")
        .unwrap();
    let l1 = LayerBuilder::new(0)
        .file("/etc/a", bytes(200), 0o644)
        .unwrap()
        .whiteout("/etc/b")
        .unwrap()
        .file("/new", bytes(10), 0o644)
        .unwrap()
        .build("RUN edit a, rm b")
        .unwrap();
    let l2 = LayerBuilder::new(0)
        .whiteout("/data/dir")
        .unwrap()
        .file("/etc/a", bytes(300), 0o644)
        .unwrap()
        .build("RUN rm -r /data/dir")
        .unwrap();
    ImageBuilder::new()
        .layer(l0)
        .layer(l1)
        .layer(l2)
        .config(ImageConfig::default())
        .build()
        .unwrap()
}

#[test]
fn wasted_bytes_and_efficiency_as_dive_counts_them() {
    let a = analyze(&wasteful().to_raw()).unwrap();
    // /etc/a: 100 + 200 + 300; /etc/b: 50 + its whiteout (0). The removed
    // directory's files appear once each, so they are not "wasted" in dive's sense.
    assert_eq!(a.wasted_bytes, 650);
    assert_eq!(a.inefficiencies.len(), 2);
    assert_eq!(
        (
            a.inefficiencies[0].path.as_str(),
            a.inefficiencies[0].count,
            a.inefficiencies[0].cumulative_size
        ),
        ("/etc/a", 3, 600)
    );
    assert_eq!(
        (
            a.inefficiencies[1].path.as_str(),
            a.inefficiencies[1].cumulative_size
        ),
        ("/etc/b", 50)
    );
    // min per path: a 100, b 0, x 30, y 20, new 10, dir-whiteout 50 = 210;
    // all sightings: 600 + 50 + 30 + 20 + 10 + 50 = 760.
    assert!(
        (a.efficiency - 210.0 / 760.0).abs() < 1e-12,
        "{}",
        a.efficiency
    );
    assert_eq!(
        a.layers.iter().map(|l| l.size).collect::<Vec<_>>(),
        vec![200, 210, 300]
    );
    assert_eq!((a.size_bytes, a.user_size_bytes), (710, 510));
    assert!((a.wasted_user_percent - 650.0 / 510.0).abs() < 1e-12);
    assert_eq!(a.layers[1].created_by, "RUN edit a, rm b");
    assert_eq!(
        a.layers[1].changes,
        vec![
            change("/etc/a", ChangeKind::Modified, 200),
            change("/etc/b", ChangeKind::Removed, 50),
            change("/new", ChangeKind::Added, 10),
        ]
    );
    assert_eq!(
        a.layers[2].changes,
        vec![
            change("/data/dir", ChangeKind::Removed, 50),
            change("/etc/a", ChangeKind::Modified, 300)
        ]
    );
    assert!(a.layers[0]
        .changes
        .contains(&change("/data/dir/y", ChangeKind::Added, 20)));
}

#[test]
fn ci_rules_pass_and_fail() {
    let a = analyze(&wasteful().to_raw()).unwrap();
    let strict = CiRules {
        lowest_efficiency: Some(0.9),
        highest_wasted_bytes: Some(600),
        highest_user_wasted_percent: Some(0.1),
    };
    let r = a.evaluate(&strict);
    assert!(!r.passed);
    assert_eq!(r.rules.iter().filter(|r| !r.passed).count(), 3);
    let loose = CiRules {
        lowest_efficiency: Some(0.2),
        highest_wasted_bytes: Some(650),
        highest_user_wasted_percent: Some(1.5),
    };
    let r = a.evaluate(&loose);
    assert!(r.passed, "{r:?}");
    assert!(a.evaluate(&CiRules::default()).passed);
}

#[test]
fn efficient_image_scores_one() {
    let l0 = LayerBuilder::new(0)
        .file("/a", bytes(10), 0o644)
        .unwrap()
        .build("a")
        .unwrap();
    let l1 = LayerBuilder::new(0)
        .file("/b", bytes(10), 0o644)
        .unwrap()
        .build("b")
        .unwrap();
    let img = ImageBuilder::new()
        .layer(l0)
        .layer(l1)
        .config(ImageConfig::default())
        .build()
        .unwrap();
    let a = analyze(&img.to_raw()).unwrap();
    assert_eq!(
        (a.wasted_bytes, a.efficiency, a.wasted_user_percent),
        (0, 1.0, 0.0)
    );
}

#[test]
fn opaque_directory_lists_hidden_files_but_does_not_score() {
    let l0 = LayerBuilder::new(0)
        .file("/cfg/old", bytes(40), 0o644)
        .unwrap()
        .file("/cfg/keep", bytes(5), 0o644)
        .unwrap()
        .build("base")
        .unwrap();
    let l1 = LayerBuilder::new(0)
        .opaque("/cfg")
        .unwrap()
        .file("/cfg/keep", bytes(7), 0o644)
        .unwrap()
        .build("replace cfg")
        .unwrap();
    let img = ImageBuilder::new()
        .layer(l0)
        .layer(l1)
        .config(ImageConfig::default())
        .build()
        .unwrap();
    let a = analyze(&img.to_raw()).unwrap();
    assert_eq!(
        a.layers[1].changes,
        vec![
            change("/cfg/keep", ChangeKind::Modified, 7),
            change("/cfg/old", ChangeKind::Removed, 40)
        ]
    );
    // Only /cfg/keep is sighted twice (5 + 7).
    assert_eq!(a.wasted_bytes, 12);
}

#[test]
fn oci_layout_source_reads_back() {
    let img = wasteful();
    let dir = tempfile::tempdir().unwrap();
    img.write_oci_layout(dir.path(), None).unwrap();
    let src = ImageSource::parse(&format!("oci:{}", dir.path().display())).unwrap();
    let raw = src.load(&Default::default()).unwrap();
    assert_eq!(analyze(&raw).unwrap().wasted_bytes, 650);
    assert!(matches!(
        ImageSource::parse("docker-archive:/x.tar").unwrap(),
        ImageSource::DockerArchive(_)
    ));
    assert!(matches!(
        ImageSource::parse("127.0.0.1:5000/a:1").unwrap(),
        ImageSource::Registry(_)
    ));
    assert!(ImageSource::parse("Bad Name").is_err());
}

#[test]
fn docker_save_of_an_engine_built_busybox_image() {
    if !engine("docker_save_of_an_engine_built_busybox_image") {
        return;
    }
    let busybox = std::path::Path::new("/bin/busybox");
    assert!(
        busybox.is_file(),
        "install busybox-static (apt-get install busybox-static)"
    );
    let bb = std::fs::read(busybox).unwrap();
    // A root filesystem tar: busybox, sh, and 1000 bytes of junk.
    let base = LayerBuilder::new(0)
        .file("/bin/busybox", bb.clone(), 0o755)
        .unwrap()
        .symlink("/bin/sh", "busybox")
        .unwrap()
        .file("/etc/junk", bytes(1000), 0o644)
        .unwrap()
        .dir("/tmp", 0o1777)
        .unwrap()
        .tar()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let rootfs = dir.path().join("rootfs.tar");
    std::fs::write(&rootfs, base).unwrap();
    let name = unique("busybox");
    let base_tag = format!("tug-test/{name}:base");
    docker_ok(&["import", rootfs.to_str().unwrap(), &base_tag]);
    let container = format!("{name}-c");
    docker_ok(&[
        "run",
        "--name",
        &container,
        &base_tag,
        "/bin/busybox",
        "sh",
        "-c",
        "rm /etc/junk && echo hello > /hello.txt",
    ]);
    let tag = format!("tug-test/{name}:2");
    docker_ok(&["commit", &container, &tag]);
    docker_ok(&["rm", &container]);
    let saved = dir.path().join("saved.tar");
    docker_ok(&["save", "-o", saved.to_str().unwrap(), &tag]);
    docker_ok(&["rmi", &tag, &base_tag]);

    let raw = read_docker_archive(std::fs::File::open(&saved).unwrap(), "saved.tar").unwrap();
    let a = analyze(&raw).unwrap();
    assert_eq!(a.layers.len(), 2);
    assert_eq!(a.layers[0].size, bb.len() as u64 + 1000);
    assert!(
        a.layers[1].created_by.contains("rm /etc/junk"),
        "{:?}",
        a.layers[1].created_by
    );
    assert!(
        a.layers[1]
            .changes
            .contains(&change("/etc/junk", ChangeKind::Removed, 1000)),
        "{:?}",
        a.layers[1].changes
    );
    assert!(a.layers[1]
        .changes
        .contains(&change("/hello.txt", ChangeKind::Added, 6)));
    assert_eq!(a.wasted_bytes, 1000);
    assert_eq!(a.user_size_bytes, a.layers[1].size);
}
