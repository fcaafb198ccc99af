//! `tug build --push` attaches SLSA provenance (signed with `--key`) and
//! `tug verify --provenance` checks it, against the real registry.

mod common;

use common::{text, tug, workspace};
use std::path::Path;
use tug_image::oci::{provenance, ImageBuilder, ImageConfig, LayerBuilder};
use tug_image::registry::{ClientOptions, PushOptions, Reference, RegistryClient};

fn run(dir: &Path, args: &[&str]) -> std::process::Output {
    tug()
        .current_dir(dir)
        .env("TUG_KEY_PASSWORD", "prov-pass")
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn build_push_attaches_signed_provenance_that_verify_checks() {
    if !common::engine() || std::net::TcpStream::connect("127.0.0.1:5000").is_err() {
        if std::env::var("TUG_REQUIRE_ENGINE").is_ok_and(|v| v == "1") {
            panic!("TUG_REQUIRE_ENGINE=1 but no registry on 127.0.0.1:5000");
        }
        eprintln!("\n!!! SKIPPED: no registry on 127.0.0.1:5000\n");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let name = format!("tprov{}", std::process::id());
    let tag = format!("127.0.0.1:5000/{name}/web:1");
    std::fs::write(
        d.join("tug.yaml"),
        format!(
            "name: {name}\nservices:\n  web:\n    build: {{ rust: {{ package: hello, workspace: {} }} }}\n    image: {tag}\n    port: 8080\n",
            workspace().display()
        ),
    )
    .unwrap();
    assert!(run(d, &["keygen"]).status.success());
    assert!(run(d, &["keygen", "--output-key-prefix", "other"])
        .status
        .success());

    let out = run(d, &["build", "--push", "--key", "tug.key", "-o", "json"]);
    assert!(out.status.success(), "{}", text(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let img = &doc["images"][0];
    let digest = img["digest"].as_str().unwrap();
    assert_eq!(
        img["provenance"]["artifact_type"],
        provenance::MEDIA_IN_TOTO
    );
    assert!(img["signature"]["signature_tag"].is_string(), "{doc}");

    // From a clean client: the referrer is a DSSE envelope around a SLSA v1
    // statement whose subject is the image and whose inputs are this tree.
    let r = Reference::parse(&tag).unwrap();
    let client = RegistryClient::new(&r, ClientOptions::default()).unwrap();
    let refs = client.referrers(&r.repository, digest).unwrap();
    let att = refs
        .iter()
        .find(|d| d["artifactType"] == provenance::MEDIA_IN_TOTO)
        .unwrap_or_else(|| panic!("no attestation among {refs:?}"));
    let (_, m) = client
        .get_manifest(&r.repository, att["digest"].as_str().unwrap())
        .unwrap();
    let m: serde_json::Value = serde_json::from_slice(&m).unwrap();
    assert_eq!(m["layers"][0]["mediaType"], provenance::MEDIA_DSSE);
    assert_eq!(
        m["annotations"][provenance::PREDICATE_ANNOTATION],
        provenance::SLSA_PROVENANCE_V1
    );

    let out = run(
        d,
        &[
            "verify",
            &tag,
            "--key",
            "tug.pub",
            "--provenance",
            "-o",
            "json",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let st = &v["provenance"]["statement"];
    assert_eq!(st["predicateType"], "https://slsa.dev/provenance/v1");
    assert_eq!(
        st["subject"][0]["digest"]["sha256"],
        digest.trim_start_matches("sha256:")
    );
    let deps = &st["predicate"]["buildDefinition"]["resolvedDependencies"];
    let (source, _) = provenance::source_digest(&workspace()).unwrap();
    assert_eq!(
        deps[0]["digest"]["sha256"],
        source.trim_start_matches("sha256:")
    );
    let lock = std::fs::read(workspace().join("Cargo.lock")).unwrap();
    assert_eq!(
        deps[1]["digest"]["sha256"],
        tug_image::oci::sha256_digest(&lock).trim_start_matches("sha256:")
    );
    assert_eq!(
        st["predicate"]["buildDefinition"]["externalParameters"]["package"],
        "hello"
    );
    let table = run(d, &["verify", &tag, "--key", "tug.pub", "--provenance"]);
    assert!(
        String::from_utf8_lossy(&table.stdout).contains("provenance verified"),
        "{}",
        text(&table)
    );

    // Another key: the image signature fails first; the envelope's own
    // check names the envelope.
    let out = run(d, &["verify", &tag, "--key", "other.pub", "--provenance"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("verification failed"), "{}", text(&out));
    let other = tug_image::registry::sign::decrypt_private(
        &std::fs::read_to_string(d.join("other.key")).unwrap(),
        b"prov-pass",
    )
    .unwrap();
    let err = client
        .verify_provenance(&r, Some(other.verifying_key()))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("no signature of the envelope verifies with this public key"),
        "{err}"
    );

    // An image without provenance, then with a statement about another
    // image, then with an unsigned one about itself.
    let bare_tag = format!("127.0.0.1:5000/{name}/bare:1");
    let bare = Reference::parse(&bare_tag).unwrap();
    let layer = LayerBuilder::new(0)
        .file("/x", b"bare".to_vec(), 0o644)
        .unwrap()
        .build("x")
        .unwrap();
    let image = ImageBuilder::new()
        .layer(layer)
        .config(ImageConfig::default())
        .build()
        .unwrap();
    let opts = PushOptions {
        client: ClientOptions::default(),
        mount_from: None,
    };
    tug_image::registry::push(&image, &bare, &opts, &mut |_| {}).unwrap();
    let out = run(d, &["verify", &bare_tag, "--provenance"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("no provenance is attached"),
        "{}",
        text(&out)
    );

    let record = provenance::BuildRecord {
        source_digest: "sha256:aa".into(),
        source_files: 1,
        git_commit: None,
        cargo_lock: "sha256:bb".into(),
        rustc: "rustc".into(),
        target: "x".into(),
        parameters: serde_json::json!({}),
    };
    let subject = (
        image.digest(),
        image.manifest_blob.len() as u64,
        tug_image::oci::MEDIA_MANIFEST,
    );
    let subject = (subject.0.as_str(), subject.1, subject.2);
    let alien = provenance::statement("x", digest, &record);
    client
        .attach_statement(&bare.repository, subject, &alien, None)
        .unwrap();
    let out = run(d, &["verify", &bare_tag, "--provenance"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains(&format!("its subject is not {}", image.digest())),
        "{}",
        text(&out)
    );

    let own = provenance::statement("x", &image.digest(), &record);
    client
        .attach_statement(&bare.repository, subject, &own, None)
        .unwrap();
    let out = run(d, &["verify", &bare_tag, "--provenance"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("signature unchecked"),
        "{}",
        text(&out)
    );
    let err = client
        .verify_provenance(&bare, Some(other.verifying_key()))
        .unwrap_err()
        .to_string();
    assert!(err.contains("unsigned, but a key was given"), "{err}");
}
