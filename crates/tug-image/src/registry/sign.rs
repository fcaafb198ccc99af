//! Key-based image signatures in cosign's format, so either tool verifies
//! what the other signed:
//!
//! - keys: ECDSA P-256; the public key as a `PUBLIC KEY` PEM (SPKI), the
//!   private key as an `ENCRYPTED SIGSTORE PRIVATE KEY` PEM whose body is the
//!   JSON cosign writes (scrypt key derivation, NaCl secretbox around the
//!   PKCS#8 DER);
//! - a signature: a "simple signing" JSON payload naming the image's
//!   manifest digest, signed (ECDSA over SHA-256, DER, base64) and pushed as
//!   a layer of the manifest tagged `sha256-<hex>.sig` beside the image, the
//!   signature in the layer's `dev.cosignproject.cosign/signature` annotation.

use super::{ErrorKind, Reference, RegistryClient, RegistryError};
use crate::oci::{canonical_json, sha256_digest, MEDIA_MANIFEST};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use p256::ecdsa::signature::{Signer as _, Verifier as _};
use p256::ecdsa::{DerSignature, Signature};
pub use p256::ecdsa::{SigningKey, VerifyingKey};
use p256::pkcs8::{
    DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, LineEnding,
};
use serde_json::{json, Value};

pub const PRIVATE_LABEL: &str = "ENCRYPTED SIGSTORE PRIVATE KEY";
/// The label older cosign versions write; read as well.
pub const OLD_PRIVATE_LABEL: &str = "ENCRYPTED COSIGN PRIVATE KEY";
pub const MEDIA_SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// Bounds on the scrypt parameters a key file may ask for.
const MAX_SCRYPT_N: u64 = 1 << 16;
const MAX_SCRYPT_WORK: u64 = 1 << 19;

#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("{0}")]
    Key(String),
    #[error("the private key cannot be decrypted: wrong password (TUG_KEY_PASSWORD), or a damaged key file")]
    Decrypt,
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error("no signature for {image} ({tag} not found)")]
    Unsigned { image: String, tag: String },
    #[error("no signature of {image} verifies with this key: {reasons}")]
    Invalid { image: String, reasons: String },
}

/// A new key pair: (encrypted private key PEM, public key PEM).
pub fn generate(password: &[u8]) -> Result<(String, String), SignError> {
    let key = SigningKey::random(&mut rand_core::OsRng);
    let public = key
        .verifying_key()
        .to_public_key_pem(LineEnding::LF)
        .map_err(|e| SignError::Key(e.to_string()))?;
    Ok((encrypt_private(&key, password)?, public))
}

/// The cosign-format encrypted PEM of a private key.
pub fn encrypt_private(key: &SigningKey, password: &[u8]) -> Result<String, SignError> {
    use crypto_secretbox::aead::{Aead, KeyInit};
    let der = key
        .to_pkcs8_der()
        .map_err(|e| SignError::Key(e.to_string()))?;
    let mut salt = [0u8; 32];
    let mut nonce = [0u8; 24];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut salt);
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut nonce);
    let (log_n, r, p) = (15u8, 8u32, 1u32);
    let secret = derive(password, &salt, log_n, r, p)?;
    let cipher = crypto_secretbox::XSalsa20Poly1305::new((&secret).into());
    let ciphertext = cipher
        .encrypt((&nonce).into(), der.as_bytes())
        .map_err(|_| SignError::Key("encryption failed".into()))?;
    let body = serde_json::to_vec(&json!({
        "kdf": {"name": "scrypt", "params": {"N": 1u64 << log_n, "r": r, "p": p}, "salt": B64.encode(salt)},
        "cipher": {"name": "nacl/secretbox", "nonce": B64.encode(nonce)},
        "ciphertext": B64.encode(ciphertext),
    }))
    .map_err(|e| SignError::Key(e.to_string()))?;
    pem_rfc7468::encode_string(PRIVATE_LABEL, pem_rfc7468::LineEnding::LF, &body)
        .map_err(|e| SignError::Key(e.to_string()))
}

fn derive(password: &[u8], salt: &[u8], log_n: u8, r: u32, p: u32) -> Result<[u8; 32], SignError> {
    let params = scrypt::Params::new(log_n, r, p, 32)
        .map_err(|e| SignError::Key(format!("scrypt parameters: {e}")))?;
    let mut out = [0u8; 32];
    scrypt::scrypt(password, salt, &params, &mut out)
        .map_err(|e| SignError::Key(format!("scrypt: {e}")))?;
    Ok(out)
}

/// Reads a cosign-format encrypted private key.
pub fn decrypt_private(pem: &str, password: &[u8]) -> Result<SigningKey, SignError> {
    use crypto_secretbox::aead::{Aead, KeyInit};
    let (label, body) = pem_rfc7468::decode_vec(pem.trim().as_bytes())
        .map_err(|e| SignError::Key(format!("not a PEM private key: {e}")))?;
    if label != PRIVATE_LABEL && label != OLD_PRIVATE_LABEL {
        return Err(SignError::Key(format!(
            "a {label} PEM is not a cosign private key (want {PRIVATE_LABEL}); make one with `tug keygen`"
        )));
    }
    let doc: Value = serde_json::from_slice(&body)
        .map_err(|e| SignError::Key(format!("the key's body is not cosign's JSON: {e}")))?;
    let bad = |what: &str| SignError::Key(format!("the key lacks {what}"));
    if doc["kdf"]["name"] != "scrypt" || doc["cipher"]["name"] != "nacl/secretbox" {
        return Err(SignError::Key(
            "only scrypt with nacl/secretbox keys are supported".into(),
        ));
    }
    let n = doc["kdf"]["params"]["N"]
        .as_u64()
        .ok_or_else(|| bad("kdf.params.N"))?;
    if !n.is_power_of_two() || n < 2 {
        return Err(bad("a power-of-two kdf.params.N"));
    }
    let r = doc["kdf"]["params"]["r"]
        .as_u64()
        .ok_or_else(|| bad("kdf.params.r"))?;
    let p = doc["kdf"]["params"]["p"]
        .as_u64()
        .ok_or_else(|| bad("kdf.params.p"))?;
    // The parameters come from the file: bound the work and memory a key
    // can ask for (cosign writes N=65536, r=8, p=1).
    if n > MAX_SCRYPT_N || r == 0 || r > 16 || p == 0 || p > 4 || n * r * p > MAX_SCRYPT_WORK {
        return Err(SignError::Key(format!(
            "the key asks for scrypt N={n}, r={r}, p={p}, beyond what tug accepts (N ≤ {MAX_SCRYPT_N}, r ≤ 16, p ≤ 4, N·r·p ≤ {MAX_SCRYPT_WORK}; cosign writes N=65536, r=8, p=1)"
        )));
    }
    let (r, p) = (r as u32, p as u32);
    let b64 = |v: &Value, what: &str| {
        v.as_str()
            .and_then(|s| B64.decode(s).ok())
            .ok_or_else(|| bad(what))
    };
    let salt = b64(&doc["kdf"]["salt"], "kdf.salt")?;
    let nonce = b64(&doc["cipher"]["nonce"], "cipher.nonce")?;
    let ciphertext = b64(&doc["ciphertext"], "ciphertext")?;
    if nonce.len() != 24 {
        return Err(bad("a 24-byte nonce"));
    }
    let secret = derive(password, &salt, n.trailing_zeros() as u8, r, p)?;
    let cipher = crypto_secretbox::XSalsa20Poly1305::new((&secret).into());
    let der = cipher
        .decrypt(nonce.as_slice().into(), ciphertext.as_slice())
        .map_err(|_| SignError::Decrypt)?;
    SigningKey::from_pkcs8_der(&der)
        .map_err(|e| SignError::Key(format!("not an ECDSA P-256 key: {e}")))
}

/// Reads a `PUBLIC KEY` PEM (ECDSA P-256).
pub fn public_key(pem: &str) -> Result<VerifyingKey, SignError> {
    VerifyingKey::from_public_key_pem(pem.trim())
        .map_err(|e| SignError::Key(format!("not an ECDSA P-256 public key PEM: {e}")))
}

/// The simple-signing payload cosign signs for an image: the same bytes
/// cosign writes (keys in this order, no spaces, `"optional":null`).
pub fn payload(repository: &str, digest: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "critical": {
            "identity": {"docker-reference": repository},
            "image": {"docker-manifest-digest": digest},
            "type": SIMPLE_SIGNING_TYPE,
        },
        "optional": null,
    }))
    .unwrap_or_default()
}

/// The `critical.type` of a cosign image signature payload.
pub const SIMPLE_SIGNING_TYPE: &str = "cosign container image signature";

/// Which check a signature failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureCheck {
    #[error("not a base64 DER ECDSA signature")]
    Encoding,
    #[error("does not verify with this public key")]
    Key,
    #[error("the signed payload is not a cosign simple-signing document ({0})")]
    Payload(String),
    #[error("signs {signed}, but the image is now {actual} (changed after signing)")]
    Digest { signed: String, actual: String },
}

/// Signs a payload as cosign does: ECDSA P-256 over SHA-256, the DER
/// signature in base64.
pub fn sign_payload(key: &SigningKey, payload: &[u8]) -> String {
    let sig: DerSignature = key.sign(payload);
    B64.encode(sig.as_bytes())
}

/// Checks one signature as cosign does for a key: the base64 DER signature
/// verifies over the payload's exact bytes with `key`, the payload is a
/// simple-signing document, and it names `digest`.
pub fn verify_payload(
    key: &VerifyingKey,
    payload: &[u8],
    signature: &str,
    digest: &str,
) -> Result<(), SignatureCheck> {
    let sig = B64
        .decode(signature.trim())
        .ok()
        .and_then(|d| Signature::from_der(&d).ok())
        .ok_or(SignatureCheck::Encoding)?;
    key.verify(payload, &sig).map_err(|_| SignatureCheck::Key)?;
    let doc: Value =
        serde_json::from_slice(payload).map_err(|e| SignatureCheck::Payload(e.to_string()))?;
    let critical = &doc["critical"];
    if critical["type"] != SIMPLE_SIGNING_TYPE {
        return Err(SignatureCheck::Payload(format!(
            "critical.type is {}, want {SIMPLE_SIGNING_TYPE:?}",
            critical["type"]
        )));
    }
    let signed = critical["image"]["docker-manifest-digest"]
        .as_str()
        .ok_or_else(|| {
            SignatureCheck::Payload("no critical.image.docker-manifest-digest".into())
        })?;
    if signed != digest {
        return Err(SignatureCheck::Digest {
            signed: signed.into(),
            actual: digest.into(),
        });
    }
    Ok(())
}

/// The signature tag of a manifest digest: `sha256-<hex>.sig`.
pub fn signature_tag(digest: &str) -> String {
    format!("{}.sig", digest.replacen(':', "-", 1))
}

fn docker_reference(r: &Reference) -> String {
    format!("{}/{}", r.registry, r.repository)
}

/// What `sign` did.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Signed {
    pub image: String,
    pub digest: String,
    pub signature_tag: String,
    pub signatures: usize,
}

impl RegistryClient {
    /// The manifest digest a tag (or digest) names.
    pub fn resolve_digest(&self, repo: &str, reference: &str) -> Result<String, RegistryError> {
        let (_, body) = self.get_manifest(repo, reference)?;
        Ok(sha256_digest(&body))
    }

    fn signature_manifest(&self, repo: &str, digest: &str) -> Result<Option<Value>, RegistryError> {
        match self.get_manifest(repo, &signature_tag(digest)) {
            Ok((_, body)) => Ok(serde_json::from_slice(&body).ok()),
            Err(e) if e.kind() == Some(ErrorKind::NotFound) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Signs the image `r` points at and pushes the signature, keeping any
    /// signatures already there.
    pub fn sign(&self, r: &Reference, key: &SigningKey) -> Result<Signed, SignError> {
        let repo = &r.repository;
        let at = r
            .digest
            .clone()
            .or_else(|| r.tag.clone())
            .unwrap_or_else(|| "latest".into());
        let digest = self.resolve_digest(repo, &at)?;
        let body = payload(&docker_reference(r), &digest);
        let sig_b64 = sign_payload(key, &body);
        let layer_digest = sha256_digest(&body);
        let mut layers: Vec<Value> = self
            .signature_manifest(repo, &digest)?
            .and_then(|m| m["layers"].as_array().cloned())
            .unwrap_or_default();
        layers.retain(|l| l["annotations"][SIGNATURE_ANNOTATION] != sig_b64.as_str());
        layers.push(json!({
            "mediaType": MEDIA_SIMPLE_SIGNING,
            "digest": layer_digest,
            "size": body.len(),
            "annotations": {SIGNATURE_ANNOTATION: sig_b64},
        }));
        let diff_ids: Vec<&Value> = layers.iter().map(|l| &l["digest"]).collect();
        let config = canonical_json(&json!({
            "architecture": "", "os": "", "config": {},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        }))
        .map_err(|e| SignError::Key(e.to_string()))?;
        for blob in [&body[..], &config[..]] {
            let d = sha256_digest(blob);
            if self.blob_exists(repo, &d)?.is_none() {
                self.upload_blob(repo, &d, blob)?;
            }
        }
        let manifest = canonical_json(&json!({
            "schemaVersion": 2,
            "mediaType": MEDIA_MANIFEST,
            "config": {"mediaType": crate::oci::MEDIA_CONFIG, "digest": sha256_digest(&config), "size": config.len()},
            "layers": layers,
        }))
        .map_err(|e| SignError::Key(e.to_string()))?;
        let tag = signature_tag(&digest);
        self.put_manifest(repo, &tag, MEDIA_MANIFEST, &manifest)?;
        Ok(Signed {
            image: r.to_string(),
            digest,
            signature_tag: tag,
            signatures: layers.len(),
        })
    }

    /// Checks that a signature made with `key` covers the image `r` points
    /// at now; says which check failed otherwise.
    pub fn verify(&self, r: &Reference, key: &VerifyingKey) -> Result<String, SignError> {
        let repo = &r.repository;
        let at = r
            .digest
            .clone()
            .or_else(|| r.tag.clone())
            .unwrap_or_else(|| "latest".into());
        let digest = self.resolve_digest(repo, &at)?;
        let Some(manifest) = self.signature_manifest(repo, &digest)? else {
            return Err(SignError::Unsigned {
                image: r.to_string(),
                tag: signature_tag(&digest),
            });
        };
        let mut reasons = Vec::new();
        for (i, l) in manifest["layers"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            let Some(sig) = l["annotations"][SIGNATURE_ANNOTATION].as_str() else {
                reasons.push(format!(
                    "signature {i}: no {SIGNATURE_ANNOTATION} annotation"
                ));
                continue;
            };
            let body = match self.get_blob(repo, l["digest"].as_str().unwrap_or_default()) {
                Ok(b) => b,
                Err(e) => {
                    reasons.push(format!("signature {i}: payload unreadable: {e}"));
                    continue;
                }
            };
            if let Err(e) = verify_payload(key, &body, sig, &digest) {
                reasons.push(format!("signature {i}: {e}"));
                continue;
            }
            return Ok(digest);
        }
        if reasons.is_empty() {
            reasons.push("the signature manifest lists no signature".into());
        }
        Err(SignError::Invalid {
            image: r.to_string(),
            reasons: reasons.join("; "),
        })
    }
}
