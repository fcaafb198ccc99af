//! `tug build` and `tug image inspect`, run as the real binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use tug_image::oci::{ImageBuilder, ImageConfig, LayerBuilder};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn tug(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tug"))
        .args(args)
        .current_dir(repo())
        .output()
        .unwrap()
}

fn ok_json(args: &[&str]) -> serde_json::Value {
    let out = tug(args);
    assert!(
        out.status.success(),
        "tug {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "tug {args:?} printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

fn engine_and_registry(test: &str) -> bool {
    let ok = Command::new("docker")
        .arg("info")
        .output()
        .is_ok_and(|o| o.status.success())
        && std::net::TcpStream::connect("127.0.0.1:5000").is_ok();
    if !ok {
        if std::env::var("TUG_REQUIRE_ENGINE").as_deref() == Ok("1") {
            panic!(
                "{test}: no Docker engine or registry on 127.0.0.1:5000 and TUG_REQUIRE_ENGINE=1"
            );
        }
        eprintln!("\n!!! SKIPPED {test}: no Docker engine or no registry on 127.0.0.1:5000; run scripts/engine.sh --registry\n");
    }
    ok
}

fn unique(prefix: &str) -> String {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}-{}-{}", std::process::id(), n % 1_000_000_000)
}

#[test]
fn build_to_oci_layout_is_reproducible_and_inspectable() {
    let dir = tempfile::tempdir().unwrap();
    let dest = format!("oci:{}", dir.path().join("a").display());
    let first = ok_json(&[
        "build",
        "-f",
        "examples/hello/tug.yaml",
        "--dest",
        &dest,
        "-o",
        "json",
    ]);
    let img = &first["images"][0];
    assert_eq!(img["service"], "web");
    let digest = img["digest"].as_str().unwrap().to_string();
    let config = img["config_digest"].as_str().unwrap();
    assert_eq!(
        img["tag"],
        format!("hello-web:{}", &config["sha256:".len()..][..12])
    );
    let again = ok_json(&[
        "build",
        "web",
        "-f",
        "examples/hello/tug.yaml",
        "--dest",
        &format!("oci:{}", dir.path().join("b").display()),
        "-o",
        "json",
    ]);
    assert_eq!(again["images"][0]["digest"], digest.as_str());

    let inspected = ok_json(&["image", "inspect", &dest, "--files", "--ci", "-o", "json"]);
    assert_eq!(inspected["digest"], digest.as_str());
    let layers = inspected["analysis"]["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 2);
    assert_eq!(layers[1]["created_by"], "tug: COPY hello /app/hello");
    assert!(layers[1]["changes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["path"] == "/app/hello" && c["kind"] == "added"));
    assert_eq!(inspected["analysis"]["wasted_bytes"], 0);
    assert_eq!(inspected["ci"]["passed"], true);

    let table = tug(&["image", "inspect", &dest]);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(
        text.contains("tug: COPY hello /app/hello") && text.contains("efficiency 100.00%"),
        "{text}"
    );
}

#[test]
fn ci_thresholds_fail_a_wasteful_image_with_exit_1() {
    let l0 = LayerBuilder::new(0)
        .file("/big", vec![1; 50_000], 0o644)
        .unwrap()
        .build("base")
        .unwrap();
    let l1 = LayerBuilder::new(0)
        .whiteout("/big")
        .unwrap()
        .file("/small", vec![2; 100], 0o644)
        .unwrap()
        .build("RUN rm /big")
        .unwrap();
    let img = ImageBuilder::new()
        .layer(l0)
        .layer(l1)
        .config(ImageConfig::default())
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    img.write_oci_layout(dir.path(), None).unwrap();
    let src = format!("oci:{}", dir.path().display());
    let out = tug(&[
        "image",
        "inspect",
        &src,
        "--ci",
        "--highest-wasted-bytes",
        "10kB",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("ci: FAIL") && text.contains("FAIL highest_wasted_bytes: 50.0 kB"),
        "{text}"
    );
    // Loose enough thresholds pass.
    let out = tug(&[
        "image",
        "inspect",
        &src,
        "--ci",
        "--lowest-efficiency",
        "0",
        "--highest-wasted-bytes",
        "1MB",
        "--highest-user-wasted-percent",
        "1000",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn bad_input_is_explained() {
    let out = tug(&["build", "nosuch", "-f", "examples/hello/tug.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no service `nosuch` (services: web)"));
    let out = tug(&[
        "build",
        "-f",
        "examples/hello/tug.yaml",
        "--dest",
        "zip:/tmp/x",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("use oci:DIR, docker-archive:FILE or engine")
    );
    let out = tug(&["build", "-f", "examples/hello/tug.yaml", "--push"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("has no `image:` to push to"));
    let out = tug(&["image", "inspect", "Not A Ref"]);
    assert_eq!(out.status.code(), Some(2));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = tug(&["image", "inspect", &format!("127.0.0.1:{port}/app:1")]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "registry 127.0.0.1:{port}, repository app: cannot reach"
        )),
        "{err}"
    );
}

#[test]
fn build_push_and_docker_archive_reach_the_engine() {
    if !engine_and_registry("build_push_and_docker_archive_reach_the_engine") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let image = format!("127.0.0.1:5000/tug-test/{}:1", unique("cli"));
    let spec = dir.path().join("tug.yaml");
    std::fs::write(
        &spec,
        format!(
            "name: clitest\nservices:\n  web:\n    image: {image}\n    build:\n      rust: {{ package: hello, workspace: {} }}\n    port: 8080\n",
            repo().display()
        ),
    )
    .unwrap();
    let archive = dir.path().join("web.tar");
    let out = ok_json(&[
        "build",
        "-f",
        spec.to_str().unwrap(),
        "--push",
        "--dest",
        &format!("docker-archive:{}", archive.display()),
        "-o",
        "json",
    ]);
    let img = &out["images"][0];
    assert_eq!(img["tag"], image.as_str());
    assert_eq!(img["push"]["digest"], img["digest"]);
    assert_eq!(
        img["push"]["uploaded"].as_array().unwrap().len()
            + img["push"]["skipped"].as_array().unwrap().len(),
        3
    );

    // The registry copy inspects the same.
    let inspected = ok_json(&["image", "inspect", &image, "-o", "json"]);
    assert_eq!(inspected["digest"], img["digest"]);

    // The archive loads into the engine and runs.
    let load = Command::new("docker")
        .args(["load", "-i", archive.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        load.status.success(),
        "{}",
        String::from_utf8_lossy(&load.stderr)
    );
    let run = Command::new("docker")
        .args(["run", "--rm", "-e", "HELLO_EXIT=3", &image])
        .output()
        .unwrap();
    assert_eq!(
        run.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let _ = Command::new("docker").args(["rmi", &image]).output();
}
