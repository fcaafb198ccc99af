//! Interoperability with cosign, checked against artefacts cosign made
//! (tests/data/cosign/README.md says where each comes from) and against
//! independent implementations of the same scheme (tests/interop/
//! cosign_check.py: OpenSSL through Python's `cryptography`, hashlib's
//! scrypt, PyNaCl's secretbox). No package ships the cosign binary here, so
//! cosign itself is not run.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use p256::pkcs8::{EncodePublicKey, LineEnding};
use std::path::{Path, PathBuf};
use tug_image::oci::sha256_digest;
use tug_image::registry::sign::{
    decrypt_private, generate, payload, public_key, sign_payload, verify_payload, SignError,
    SignatureCheck,
};

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/cosign")
        .join(name)
}

fn read(name: &str) -> String {
    std::fs::read_to_string(data(name)).unwrap()
}

/// A cosign signature as containers/image stores it beside an image: a
/// `\0sigstore-json\n` header, then the layer's media type, the payload
/// (base64) and the layer annotations cosign wrote.
struct CosignSignature {
    payload: Vec<u8>,
    signature: String,
}

fn single_sample() -> CosignSignature {
    let raw = std::fs::read(data("single-sample.signature")).unwrap();
    let json = raw.strip_prefix(b"\0sigstore-json\n").unwrap();
    let doc: serde_json::Value = serde_json::from_slice(json).unwrap();
    assert_eq!(
        doc["mimeType"],
        "application/vnd.dev.cosign.simplesigning.v1+json"
    );
    CosignSignature {
        payload: B64.decode(doc["payload"].as_str().unwrap()).unwrap(),
        signature: doc["annotations"]["dev.cosignproject.cosign/signature"]
            .as_str()
            .unwrap()
            .to_string(),
    }
}

fn single_sample_digest() -> String {
    sha256_digest(&std::fs::read(data("single-sample.manifest.json")).unwrap())
}

#[test]
fn a_signature_cosign_made_verifies_with_cosigns_public_key() {
    let s = single_sample();
    let key = public_key(&read("single-sample.pub")).unwrap();
    let digest = single_sample_digest();
    assert_eq!(
        digest,
        "sha256:634a8f35b5f16dcf4aaa0822adc0b1964bb786fca12f6831de8ddc45e5986a00"
    );
    verify_payload(&key, &s.payload, &s.signature, &digest).unwrap();

    // The second vector: signature and payload cosign made for sigstore-rs.
    let key = public_key(&read("busybox.pub")).unwrap();
    let body = read("busybox.payload.json");
    let digest = "sha256:f3cfc9d0dbf931d3db4685ec659b7ac68e2a578219da4aae65427886e649b06b";
    verify_payload(&key, body.as_bytes(), &read("busybox.sig"), digest).unwrap();
}

#[test]
fn one_changed_byte_of_payload_or_signature_fails_the_signature_check() {
    let s = single_sample();
    let key = public_key(&read("single-sample.pub")).unwrap();
    let digest = single_sample_digest();

    // Every byte of the payload is covered: change any one and the
    // signature no longer verifies.
    for i in (0..s.payload.len()).step_by(7) {
        let mut p = s.payload.clone();
        p[i] ^= 0x01;
        assert_eq!(
            verify_payload(&key, &p, &s.signature, &digest),
            Err(SignatureCheck::Key),
            "payload byte {i}"
        );
    }
    // The last byte of the DER signature (inside s): still DER, no longer
    // valid.
    let mut der = B64.decode(&s.signature).unwrap();
    *der.last_mut().unwrap() ^= 0x01;
    let e = verify_payload(&key, &s.payload, &B64.encode(&der), &digest).unwrap_err();
    assert_eq!(e, SignatureCheck::Key);
    assert_eq!(e.to_string(), "does not verify with this public key");
    // Its first byte (the DER SEQUENCE tag): not a signature at all.
    let mut der = B64.decode(&s.signature).unwrap();
    der[0] ^= 0x01;
    let e = verify_payload(&key, &s.payload, &B64.encode(&der), &digest).unwrap_err();
    assert_eq!(e, SignatureCheck::Encoding);
    assert_eq!(e.to_string(), "not a base64 DER ECDSA signature");
    // Another key (the sigstore-rs vector's) does not verify it either.
    let other = public_key(&read("busybox.pub")).unwrap();
    assert_eq!(
        verify_payload(&other, &s.payload, &s.signature, &digest),
        Err(SignatureCheck::Key)
    );
}

#[test]
fn a_valid_signature_over_another_manifest_fails_the_digest_check() {
    // containers/image's "modified manifest" fixture: the same cosign
    // signature beside a manifest that changed after signing.
    let s = single_sample();
    let key = public_key(&read("single-sample.pub")).unwrap();
    let modified = sha256_digest(&std::fs::read(data("modified.manifest.json")).unwrap());
    let e = verify_payload(&key, &s.payload, &s.signature, &modified).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "signs {}, but the image is now {modified} (changed after signing)",
            single_sample_digest()
        )
    );
}

#[test]
fn a_payload_signed_but_not_simple_signing_is_refused() {
    let key = decrypt_private(&read("hello-password.key"), b"hello").unwrap();
    let public = *key.verifying_key();
    let other = br#"{"critical":{"type":"atomic container signature"},"optional":null}"#;
    let e = verify_payload(&public, other, &sign_payload(&key, other), "sha256:00").unwrap_err();
    assert!(matches!(e, SignatureCheck::Payload(_)), "{e}");
    assert!(e.to_string().contains("critical.type"), "{e}");
}

#[test]
fn tug_reads_and_writes_cosigns_public_key_pem() {
    for name in ["single-sample.pub", "busybox.pub"] {
        let pem = read(name);
        let key = public_key(&pem).unwrap();
        // tug writes the very PEM cosign wrote for the same key.
        assert_eq!(
            key.to_public_key_pem(LineEnding::LF).unwrap().trim(),
            pem.trim(),
            "{name}"
        );
    }
}

#[test]
fn tug_makes_the_payload_cosign_makes_byte_for_byte() {
    // Pinned by cosign's own test of its payload (pkg/cosign/obsolete_test.go).
    assert_eq!(
        payload(
            "index.docker.io/namespace/image",
            "sha256:4aa3054270f7a70b4528f2064ee90961788e1e1518703592ae4463de3b889dec"
        ),
        read("obsolete-payload.json").into_bytes()
    );
    // The payloads `cosign sign` wrote for the two vectors.
    assert_eq!(
        payload(
            "192.168.64.2:5000/cosign-signed-single-sample",
            &single_sample_digest()
        ),
        single_sample().payload
    );
    assert_eq!(
        payload(
            "registry-testing.svc.lan/busybox",
            "sha256:f3cfc9d0dbf931d3db4685ec659b7ac68e2a578219da4aae65427886e649b06b"
        ),
        read("busybox.payload.json").into_bytes()
    );
}

#[test]
fn reads_a_private_key_cosign_encrypted_with_a_password() {
    // From cosign's tests (pkg/cosign/keys_test.go), password "hello",
    // scrypt N=32768.
    let pem = read("hello-password.key");
    let key = decrypt_private(&pem, b"hello").unwrap();
    assert!(matches!(
        decrypt_private(&pem, b"hellp"),
        Err(SignError::Decrypt)
    ));
    assert!(matches!(
        decrypt_private(&pem, b""),
        Err(SignError::Decrypt)
    ));
    let body = payload("127.0.0.1:5000/app", &single_sample_digest());
    let sig = sign_payload(&key, &body);
    verify_payload(key.verifying_key(), &body, &sig, &single_sample_digest()).unwrap();
}

fn python_ready() -> bool {
    let ok = std::process::Command::new("python3")
        .args(["-c", "import cryptography, nacl"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        if std::env::var("TUG_REQUIRE_TOOLS").is_ok_and(|v| v == "1") {
            panic!("TUG_REQUIRE_TOOLS=1 but python3 lacks cryptography or PyNaCl (python3 -m pip install --user cryptography pynacl)");
        }
        eprintln!(
            "\n!!! SKIPPED: python3 lacks cryptography or PyNaCl; scripts/test.sh installs them\n"
        );
    }
    ok
}

fn python_check(dir: &Path, password: &str, digest: &str, reference: &str) -> (bool, String) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/cosign_check.py");
    let out = std::process::Command::new("python3")
        .arg(script)
        .arg(dir)
        .args([password, digest, reference])
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn keys_and_signatures_tug_makes_check_out_with_an_independent_implementation() {
    if !python_ready() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let password = "c0rrect horse";
    let (private, public) = generate(password.as_bytes()).unwrap();
    std::fs::write(d.join("tug.key"), &private).unwrap();
    std::fs::write(d.join("tug.pub"), &public).unwrap();
    let key = decrypt_private(&private, password.as_bytes()).unwrap();
    let reference = "127.0.0.1:5000/app";
    let digest = single_sample_digest();
    let body = payload(reference, &digest);
    std::fs::write(d.join("payload.json"), &body).unwrap();
    std::fs::write(d.join("payload.sig"), sign_payload(&key, &body)).unwrap();

    let (ok, text) = python_check(d, password, &digest, reference);
    assert!(ok, "{text}");
    assert_eq!(text.trim(), "ok");

    // The checker fails when it should: a wrong password, a payload changed
    // by one byte, a payload naming another image.
    let (ok, text) = python_check(d, "wrong", &digest, reference);
    assert!(!ok && text.contains("FAIL private key"), "{text}");
    let mut tampered = body.clone();
    let at = tampered.len() - 20;
    tampered[at] ^= 0x01;
    std::fs::write(d.join("payload.json"), &tampered).unwrap();
    let (ok, text) = python_check(d, password, &digest, reference);
    assert!(!ok && text.contains("FAIL signature"), "{text}");
    let other = payload("127.0.0.1:5000/other", &digest);
    std::fs::write(d.join("payload.json"), &other).unwrap();
    std::fs::write(d.join("payload.sig"), sign_payload(&key, &other)).unwrap();
    let (ok, text) = python_check(d, password, &digest, reference);
    assert!(!ok && text.contains("FAIL payload"), "{text}");
}
