//! SLSA provenance v1 for Rust images: what an image was built from (the
//! source tree's digest, the Cargo.lock hash, the toolchain and the build
//! flags) as an in-toto statement, optionally signed in a DSSE envelope (the
//! form cosign's attestations take).
//!
//! The statement holds no timestamps: the same build gives the same
//! statement (and, ECDSA being deterministic here, the same signature), so
//! pushing an image again does not pile up attestations.
//!
//! The source digest is `sha256` over the sorted lines `<sha256 of file>
//! <path>\n` of every file of the cargo workspace that git would track
//! (`.gitignore` honoured, `.git/` and cargo's `target/` left out); run
//! [`source_digest`] on a checkout to compare.

use super::{OciError, RustBuildOptions};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use p256::ecdsa::signature::{Signer as _, Verifier as _};
use p256::ecdsa::{DerSignature, Signature, SigningKey, VerifyingKey};
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};
use std::path::Path;
use std::process::Command;

pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
pub const SLSA_PROVENANCE_V1: &str = "https://slsa.dev/provenance/v1";
/// The build type tug records; its parameters are documented in the README.
pub const BUILD_TYPE: &str = "https://tug.dev/provenance/rust-image/v1";
pub const BUILDER_ID: &str = "https://tug.dev/builder/tug-build";
/// Media type of a bare statement (artifact type of every attestation).
pub const MEDIA_IN_TOTO: &str = "application/vnd.in-toto+json";
/// Media type of a signed statement.
pub const MEDIA_DSSE: &str = "application/vnd.dsse.envelope.v1+json";
/// The annotation naming the predicate of an attestation layer.
pub const PREDICATE_ANNOTATION: &str = "in-toto.io/predicate-type";

/// What a Rust build started from, read from the workspace and toolchain.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct BuildRecord {
    /// `sha256:` digest of the workspace tree (see the module doc).
    pub source_digest: String,
    pub source_files: usize,
    /// The git commit of the workspace, when it is a git checkout.
    pub git_commit: Option<String>,
    /// `sha256:` of Cargo.lock.
    pub cargo_lock: String,
    /// `rustc -V` (release, commit, date).
    pub rustc: String,
    pub target: String,
    /// The build parameters: package, binary, profile, flags.
    pub parameters: Value,
}

fn io(path: &Path, source: std::io::Error) -> OciError {
    OciError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The digest of the workspace tree: (digest, number of files).
pub fn source_digest(dir: &Path) -> Result<(String, usize), OciError> {
    let mut lines = Vec::new();
    let walker = ignore::WalkBuilder::new(dir)
        .hidden(false)
        .require_git(false)
        .sort_by_file_path(|a, b| a.cmp(b))
        .filter_entry(|e| {
            let name = e.file_name();
            !(name == ".git" || (name == "target" && e.depth() > 0))
        })
        .build();
    for entry in walker {
        let entry = entry.map_err(|e| OciError::Invalid(format!("walking the source: {e}")))?;
        if !entry.file_type().is_some_and(|t| t.is_file()) {
            continue;
        }
        let path = entry.path();
        let data = std::fs::read(path).map_err(|e| io(path, e))?;
        let rel = path
            .strip_prefix(dir)
            .unwrap_or(path)
            .to_string_lossy()
            .replace('\\', "/");
        lines.push(format!("{:x}  {rel}\n", Sha256::digest(&data)));
    }
    lines.sort();
    let mut h = Sha256::new();
    for l in &lines {
        h.update(l.as_bytes());
    }
    Ok((format!("sha256:{:x}", h.finalize()), lines.len()))
}

fn git_commit(dir: &Path) -> Option<String> {
    let out = Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(dir)
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .filter(|s| s.len() == 40)
}

fn rustc_version() -> Result<String, OciError> {
    let out = Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()))
        .arg("-V")
        .output()
        .map_err(|e| OciError::Cargo(format!("running rustc -V: {e}")))?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Reads what a build with `opts` starts from. Blocking (walks the tree).
pub fn record(opts: &RustBuildOptions) -> Result<BuildRecord, OciError> {
    let dir = &opts.workspace_dir;
    let (source_digest, source_files) = source_digest(dir)?;
    let lock_path = dir.join("Cargo.lock");
    let lock = std::fs::read(&lock_path).map_err(|e| io(&lock_path, e))?;
    let target = super::host_target()?;
    let mut rustflags = std::env::var("RUSTFLAGS").unwrap_or_default();
    if opts.static_link {
        rustflags.push_str(" -C target-feature=+crt-static");
    }
    Ok(BuildRecord {
        source_digest,
        source_files,
        git_commit: git_commit(dir),
        cargo_lock: super::sha256_digest(&lock),
        rustc: rustc_version()?,
        target: target.clone(),
        parameters: json!({
            "package": opts.package,
            "bin": opts.bin,
            "profile": opts.profile,
            "target": target,
            "locked": true,
            "staticLink": opts.static_link,
            "auditable": opts.auditable,
            "rustflags": rustflags.trim(),
            "sourceDateEpoch": opts.source_date_epoch,
        }),
    })
}

/// The SLSA provenance v1 statement of the image `name@digest`.
pub fn statement(name: &str, digest: &str, record: &BuildRecord) -> Value {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    let mut source = json!({
        "uri": "file:workspace",
        "digest": {"sha256": record.source_digest.trim_start_matches("sha256:")},
        "annotations": {"files": record.source_files},
    });
    if let Some(c) = &record.git_commit {
        source["digest"]["gitCommit"] = json!(c);
    }
    json!({
        "_type": STATEMENT_TYPE,
        "subject": [{"name": name, "digest": {"sha256": hex}}],
        "predicateType": SLSA_PROVENANCE_V1,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": record.parameters,
                "internalParameters": {"toolchain": record.rustc, "host": record.target},
                "resolvedDependencies": [
                    source,
                    {"uri": "file:workspace/Cargo.lock",
                     "digest": {"sha256": record.cargo_lock.trim_start_matches("sha256:")}},
                ],
            },
            "runDetails": {
                "builder": {
                    "id": BUILDER_ID,
                    "version": {"tug": env!("CARGO_PKG_VERSION"), "rustc": record.rustc},
                },
            },
        },
    })
}

/// DSSE's pre-authentication encoding, what a signature covers.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {payload_type} {} ",
        payload_type.len(),
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

/// A DSSE envelope around `payload`, signed with `key` (ECDSA P-256,
/// SHA-256, DER, base64: what cosign writes).
pub fn sign_envelope(payload: &[u8], key: &SigningKey) -> Value {
    let sig: DerSignature = key.sign(&pae(MEDIA_IN_TOTO, payload));
    json!({
        "payloadType": MEDIA_IN_TOTO,
        "payload": B64.encode(payload),
        "signatures": [{"keyid": "", "sig": B64.encode(sig.as_bytes())}],
    })
}

/// Why an envelope does not verify.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EnvelopeError {
    #[error("not a DSSE envelope: {0}")]
    Malformed(String),
    #[error("the envelope's payload type is {0}, not {MEDIA_IN_TOTO}")]
    PayloadType(String),
    #[error("no signature of the envelope verifies with this public key")]
    BadSignature,
}

/// The payload of an envelope; with a key, only if a signature verifies.
pub fn open_envelope(
    envelope: &Value,
    key: Option<&VerifyingKey>,
) -> Result<Vec<u8>, EnvelopeError> {
    let payload_type = envelope["payloadType"]
        .as_str()
        .ok_or_else(|| EnvelopeError::Malformed("no payloadType".into()))?;
    if payload_type != MEDIA_IN_TOTO {
        return Err(EnvelopeError::PayloadType(payload_type.into()));
    }
    let payload = envelope["payload"]
        .as_str()
        .and_then(|p| B64.decode(p).ok())
        .ok_or_else(|| EnvelopeError::Malformed("the payload is not base64".into()))?;
    let Some(key) = key else {
        return Ok(payload);
    };
    let signed = pae(payload_type, &payload);
    let ok = envelope["signatures"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["sig"].as_str())
        .filter_map(|s| B64.decode(s).ok())
        .filter_map(|d| Signature::from_der(&d).ok())
        .any(|sig| key.verify(&signed, &sig).is_ok());
    if ok {
        Ok(payload)
    } else {
        Err(EnvelopeError::BadSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> BuildRecord {
        BuildRecord {
            source_digest: "sha256:aa".into(),
            source_files: 3,
            git_commit: None,
            cargo_lock: "sha256:bb".into(),
            rustc: "rustc 1.90.0".into(),
            target: "x86_64-unknown-linux-gnu".into(),
            parameters: json!({"package": "hello"}),
        }
    }

    #[test]
    fn statement_names_the_image_and_what_it_was_built_from() {
        let s = statement("r/app", "sha256:abc", &record());
        assert_eq!(s["_type"], STATEMENT_TYPE);
        assert_eq!(s["predicateType"], SLSA_PROVENANCE_V1);
        assert_eq!(s["subject"][0]["digest"]["sha256"], "abc");
        let deps = &s["predicate"]["buildDefinition"]["resolvedDependencies"];
        assert_eq!(deps[0]["digest"]["sha256"], "aa");
        assert_eq!(deps[1]["digest"]["sha256"], "bb");
    }

    #[test]
    fn envelope_verifies_with_its_key_only_and_not_once_changed() {
        let key = SigningKey::random(&mut rand_core::OsRng);
        let other = SigningKey::random(&mut rand_core::OsRng);
        let env = sign_envelope(b"{\"a\":1}", &key);
        assert_eq!(
            open_envelope(&env, Some(key.verifying_key())).unwrap(),
            b"{\"a\":1}"
        );
        assert_eq!(
            open_envelope(&env, Some(other.verifying_key())),
            Err(EnvelopeError::BadSignature)
        );
        let mut tampered = env.clone();
        tampered["payload"] = json!(B64.encode(b"{\"a\":2}"));
        assert_eq!(
            open_envelope(&tampered, Some(key.verifying_key())),
            Err(EnvelopeError::BadSignature)
        );
        assert_eq!(pae("t", b"xy"), b"DSSEv1 1 t 2 xy");
    }

    #[test]
    fn source_digest_follows_content_and_ignores_target_and_gitignored_files() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("a.rs"), "fn main() {}").unwrap();
        std::fs::write(d.path().join(".gitignore"), "junk\n").unwrap();
        let first = source_digest(d.path()).unwrap();
        std::fs::create_dir(d.path().join("target")).unwrap();
        std::fs::write(d.path().join("target/x"), "x").unwrap();
        std::fs::write(d.path().join("junk"), "x").unwrap();
        assert_eq!(source_digest(d.path()).unwrap(), first);
        std::fs::write(d.path().join("a.rs"), "fn main() { }").unwrap();
        assert_ne!(source_digest(d.path()).unwrap().0, first.0);
    }
}
