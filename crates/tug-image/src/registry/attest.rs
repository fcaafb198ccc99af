//! Attestations (in-toto statements) attached to an image as OCI referrers:
//! artifact type `application/vnd.in-toto+json`, one layer holding the bare
//! statement or, when signed, a DSSE envelope around it
//! (`application/vnd.dsse.envelope.v1+json`), the predicate type in the
//! manifest's `in-toto.io/predicate-type` annotation.

use super::{Attached, Reference, RegistryClient, RegistryError};
use crate::oci::canonical_json;
use crate::oci::provenance::{
    open_envelope, sign_envelope, MEDIA_DSSE, MEDIA_IN_TOTO, PREDICATE_ANNOTATION,
    SLSA_PROVENANCE_V1, STATEMENT_TYPE,
};
use p256::ecdsa::{SigningKey, VerifyingKey};
use serde_json::{json, Value};

#[derive(Debug, thiserror::Error)]
pub enum AttestError {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error("{0}")]
    Encode(String),
    #[error("no provenance is attached to {image} ({digest}); `tug build --push` attaches it")]
    Missing { image: String, digest: String },
    #[error("no provenance of {image} passes the checks: {reasons}")]
    Invalid { image: String, reasons: String },
}

/// A provenance statement that passed [`RegistryClient::verify_provenance`].
#[derive(Clone, Debug, serde::Serialize)]
pub struct VerifiedProvenance {
    /// The image's manifest digest (the statement's subject).
    pub digest: String,
    /// The attestation manifest's digest.
    pub attestation: String,
    /// Whether a signature was checked (a key was given).
    pub signature_checked: bool,
    pub statement: Value,
}

impl RegistryClient {
    /// Attaches an in-toto statement to the manifest `subject` (digest, size,
    /// media type), signed in a DSSE envelope when a key is given.
    pub fn attach_statement(
        &self,
        repo: &str,
        subject: (&str, u64, &str),
        statement: &Value,
        key: Option<&SigningKey>,
    ) -> Result<Attached, AttestError> {
        let payload = canonical_json(statement).map_err(|e| AttestError::Encode(e.to_string()))?;
        let (layer_type, data) = match key {
            Some(k) => (
                MEDIA_DSSE,
                canonical_json(&sign_envelope(&payload, k))
                    .map_err(|e| AttestError::Encode(e.to_string()))?,
            ),
            None => (MEDIA_IN_TOTO, payload),
        };
        let predicate = statement["predicateType"].as_str().unwrap_or_default();
        Ok(self.attach_as(
            repo,
            subject,
            MEDIA_IN_TOTO,
            layer_type,
            &data,
            json!({ PREDICATE_ANNOTATION: predicate }),
        )?)
    }

    /// Finds a SLSA provenance v1 statement attached to the image `r` points
    /// at whose subject is that image; with a key, only a signed one that
    /// verifies with it. Says, per attestation, which check failed.
    pub fn verify_provenance(
        &self,
        r: &Reference,
        key: Option<&VerifyingKey>,
    ) -> Result<VerifiedProvenance, AttestError> {
        let repo = &r.repository;
        let digest = self.resolve_digest(repo, r.target())?;
        let hex = digest.trim_start_matches("sha256:");
        let found: Vec<String> = self
            .referrers(repo, &digest)?
            .iter()
            .filter(|d| d["artifactType"] == MEDIA_IN_TOTO)
            .filter_map(|d| d["digest"].as_str().map(str::to_string))
            .collect();
        if found.is_empty() {
            return Err(AttestError::Missing {
                image: r.to_string(),
                digest,
            });
        }
        let mut reasons = Vec::new();
        for att in found {
            let short = att.get(..19).unwrap_or(&att).to_string();
            match self.check_one(repo, &att, hex, key) {
                Ok(Some(statement)) => {
                    return Ok(VerifiedProvenance {
                        digest,
                        attestation: att,
                        signature_checked: key.is_some(),
                        statement,
                    })
                }
                Ok(None) => {} // another predicate (an SBOM attestation, say)
                Err(why) => reasons.push(format!("{short}…: {why}")),
            }
        }
        if reasons.is_empty() {
            return Err(AttestError::Missing {
                image: r.to_string(),
                digest,
            });
        }
        Err(AttestError::Invalid {
            image: r.to_string(),
            reasons: reasons.join("; "),
        })
    }

    /// One attestation: `Ok(None)` when it is not a provenance statement,
    /// else the statement or why it fails.
    fn check_one(
        &self,
        repo: &str,
        attestation: &str,
        subject_hex: &str,
        key: Option<&VerifyingKey>,
    ) -> Result<Option<Value>, String> {
        let (_, body) = self
            .get_manifest(repo, attestation)
            .map_err(|e| e.to_string())?;
        let manifest: Value =
            serde_json::from_slice(&body).map_err(|e| format!("manifest: {e}"))?;
        let layer = &manifest["layers"][0];
        if manifest["annotations"][PREDICATE_ANNOTATION]
            .as_str()
            .is_some_and(|p| p != SLSA_PROVENANCE_V1)
        {
            return Ok(None);
        }
        let data = self
            .get_blob(repo, layer["digest"].as_str().unwrap_or_default())
            .map_err(|e| format!("statement unreadable: {e}"))?;
        let payload = match layer["mediaType"].as_str() {
            Some(MEDIA_DSSE) => {
                let env: Value = serde_json::from_slice(&data)
                    .map_err(|e| format!("the DSSE envelope is not JSON: {e}"))?;
                open_envelope(&env, key).map_err(|e| e.to_string())?
            }
            Some(MEDIA_IN_TOTO) if key.is_some() => {
                return Err("unsigned, but a key was given".into())
            }
            Some(MEDIA_IN_TOTO) => data,
            other => return Err(format!("unknown layer type {other:?}")),
        };
        let st: Value = serde_json::from_slice(&payload)
            .map_err(|e| format!("the statement is not JSON: {e}"))?;
        if st["_type"] != STATEMENT_TYPE {
            return Err(format!("_type is {}, not {STATEMENT_TYPE}", st["_type"]));
        }
        if st["predicateType"] != SLSA_PROVENANCE_V1 {
            return Ok(None);
        }
        let covers = st["subject"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|s| s["digest"]["sha256"] == subject_hex);
        if !covers {
            return Err(format!(
                "its subject is not sha256:{subject_hex} (the image changed after the build)"
            ));
        }
        Ok(Some(st))
    }
}
