//! Keys in cosign's formats: round trips, a key cosign wrote, bad input.

use tug_image::registry::sign::{
    decrypt_private, generate, payload, public_key, signature_tag, SignError, PRIVATE_LABEL,
};

#[test]
fn generated_keys_round_trip_and_stay_encrypted() {
    let (private, public) = generate(b"correct horse").unwrap();
    assert!(private.starts_with(&format!("-----BEGIN {PRIVATE_LABEL}-----")));
    assert!(public.starts_with("-----BEGIN PUBLIC KEY-----"));
    let key = decrypt_private(&private, b"correct horse").unwrap();
    let pubkey = public_key(&public).unwrap();
    assert_eq!(key.verifying_key(), &pubkey);
    assert!(matches!(
        decrypt_private(&private, b"wrong"),
        Err(SignError::Decrypt)
    ));
}

#[test]
fn reads_a_private_key_cosign_wrote() {
    // Written by `cosign generate-key-pair` with an empty password (scrypt
    // N=65536): see tests/data/cosign/README.md.
    let pem = include_str!("data/cosign/empty-password.key");
    let key = decrypt_private(pem, b"").unwrap();
    // A usable P-256 key: what it signs, its public half verifies.
    use p256::ecdsa::signature::{Signer as _, Verifier as _};
    let sig: p256::ecdsa::Signature = key.sign(b"payload");
    key.verifying_key().verify(b"payload", &sig).unwrap();
    assert!(matches!(
        decrypt_private(pem, b"x"),
        Err(SignError::Decrypt)
    ));
}

#[test]
fn bad_keys_are_explained() {
    let e = decrypt_private("not a pem", b"").unwrap_err().to_string();
    assert!(e.contains("not a PEM private key"), "{e}");
    let other = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
    let e = decrypt_private(other, b"").unwrap_err().to_string();
    assert!(e.contains("is not a cosign private key"), "{e}");
    let e = public_key("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("not an ECDSA P-256 public key"), "{e}");
}

#[test]
fn payload_and_tag_follow_cosign() {
    let d = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    assert_eq!(
        signature_tag(d),
        "sha256-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.sig"
    );
    let p: serde_json::Value = serde_json::from_slice(&payload("127.0.0.1:5000/app", d)).unwrap();
    assert_eq!(p["critical"]["type"], "cosign container image signature");
    assert_eq!(p["critical"]["image"]["docker-manifest-digest"], d);
    assert_eq!(
        p["critical"]["identity"]["docker-reference"],
        "127.0.0.1:5000/app"
    );
    assert!(p["optional"].is_null());
}

/// Found by fuzzing `cosign_key`: a key file's scrypt parameters decided
/// the work and memory of decrypting it, without bound.
#[test]
fn regression_cosign_key_scrypt_params_unbounded() {
    let pem = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/fuzz/cosign-key-scrypt-params-unbounded.pem"),
    )
    .unwrap();
    let err = decrypt_private(&pem, b"").unwrap_err().to_string();
    assert!(err.contains("beyond what tug accepts"), "{err}");
}
