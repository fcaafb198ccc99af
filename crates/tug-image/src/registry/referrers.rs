//! OCI referrers (distribution spec 1.1): artifacts such as SBOMs attached to
//! an image by a manifest whose `subject` names it. Listed through the
//! registry's referrers API, or, where the registry lacks it, through the
//! referrers tag schema (an index tagged `sha256-<hex>` in the repository),
//! which tug keeps up to date in both cases.

use super::{ErrorKind, RegistryClient, RegistryError};
use crate::oci::{canonical_json, sha256_digest, MEDIA_INDEX, MEDIA_MANIFEST};
use reqwest::Method;
use serde_json::{json, Value};

/// The empty config artifacts carry (`{}`).
pub const MEDIA_EMPTY: &str = "application/vnd.oci.empty.v1+json";
pub const MEDIA_CYCLONEDX: &str = "application/vnd.cyclonedx+json";
pub const MEDIA_SPDX: &str = "application/spdx+json";

/// What an attach did.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Attached {
    /// The artifact manifest's digest.
    pub digest: String,
    pub artifact_type: String,
    /// Whether the registry serves the referrers API (else the tag schema).
    pub referrers_api: bool,
}

/// The referrers tag of a subject digest: `sha256:abc…` → `sha256-abc…`.
pub fn fallback_tag(subject: &str) -> String {
    subject.replacen(':', "-", 1)
}

impl RegistryClient {
    /// `GET /v2/<repo>/referrers/<digest>`: `None` when the registry has no
    /// referrers API (404 on the route).
    pub fn referrers_api(&self, repo: &str, subject: &str) -> Result<Option<Value>, RegistryError> {
        let url = self.url(&format!("/v2/{repo}/referrers/{subject}"));
        let resp = self.send(
            repo,
            Method::GET,
            &url,
            None,
            &[("accept", MEDIA_INDEX.to_string())],
        )?;
        let ok = resp.status().as_u16() == 200
            && resp
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|t| t.starts_with(MEDIA_INDEX));
        if !ok {
            return Ok(None);
        }
        let body = resp.bytes().map_err(|e| {
            self.fail(
                repo,
                ErrorKind::Unreachable,
                format!("reading referrers: {e}"),
            )
        })?;
        Ok(serde_json::from_slice(&body).ok())
    }

    /// The index under the referrers tag, or an empty one.
    fn fallback_index(&self, repo: &str, subject: &str) -> Result<Value, RegistryError> {
        match self.get_manifest(repo, &fallback_tag(subject)) {
            Ok((_, body)) => serde_json::from_slice(&body).map_err(|e| {
                self.fail(
                    repo,
                    ErrorKind::Protocol,
                    format!(
                        "the referrers tag {} is not an index: {e}",
                        fallback_tag(subject)
                    ),
                )
            }),
            Err(e) if e.kind() == Some(ErrorKind::NotFound) => {
                Ok(json!({"schemaVersion": 2, "mediaType": MEDIA_INDEX, "manifests": []}))
            }
            Err(e) => Err(e),
        }
    }

    /// Descriptors of the artifacts that refer to `subject`.
    pub fn referrers(&self, repo: &str, subject: &str) -> Result<Vec<Value>, RegistryError> {
        let index = match self.referrers_api(repo, subject)? {
            Some(i) => i,
            None => self.fallback_index(repo, subject)?,
        };
        Ok(index["manifests"].as_array().cloned().unwrap_or_default())
    }

    /// Pushes `data` as an artifact of `artifact_type` referring to the
    /// manifest `subject` (digest, size, media type) in `repo`.
    pub fn attach(
        &self,
        repo: &str,
        subject: (&str, u64, &str),
        artifact_type: &str,
        data: &[u8],
        annotations: Value,
    ) -> Result<Attached, RegistryError> {
        self.attach_as(
            repo,
            subject,
            artifact_type,
            artifact_type,
            data,
            annotations,
        )
    }

    /// [`Self::attach`] with a layer media type of its own (a signed
    /// envelope around an artifact of `artifact_type`, say).
    pub fn attach_as(
        &self,
        repo: &str,
        subject: (&str, u64, &str),
        artifact_type: &str,
        layer_type: &str,
        data: &[u8],
        annotations: Value,
    ) -> Result<Attached, RegistryError> {
        let (subject_digest, subject_size, subject_type) = subject;
        let empty = b"{}";
        for blob in [&empty[..], data] {
            let d = sha256_digest(blob);
            if self.blob_exists(repo, &d)?.is_none() {
                self.upload_blob(repo, &d, blob)?;
            }
        }
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": MEDIA_MANIFEST,
            "artifactType": artifact_type,
            "config": {"mediaType": MEDIA_EMPTY, "digest": sha256_digest(empty), "size": 2, "data": "e30="},
            "layers": [{"mediaType": layer_type, "digest": sha256_digest(data), "size": data.len()}],
            "subject": {"mediaType": subject_type, "digest": subject_digest, "size": subject_size},
            "annotations": annotations,
        });
        let body = canonical_json(&manifest)
            .map_err(|e| self.fail(repo, ErrorKind::Protocol, e.to_string()))?;
        let digest = sha256_digest(&body);
        self.put_manifest(repo, &digest, MEDIA_MANIFEST, &body)?;
        let api = self.referrers_api(repo, subject_digest)?.is_some();
        if !api {
            // Tag schema: add our descriptor to the subject's referrers index.
            let mut index = self.fallback_index(repo, subject_digest)?;
            let mut list = index["manifests"].as_array().cloned().unwrap_or_default();
            list.retain(|m| m["digest"] != digest.as_str());
            list.push(json!({
                "mediaType": MEDIA_MANIFEST,
                "digest": digest,
                "size": body.len(),
                "artifactType": artifact_type,
                "annotations": manifest["annotations"],
            }));
            index["manifests"] = Value::Array(list);
            let index_body = canonical_json(&index)
                .map_err(|e| self.fail(repo, ErrorKind::Protocol, e.to_string()))?;
            self.put_manifest(
                repo,
                &fallback_tag(subject_digest),
                MEDIA_INDEX,
                &index_body,
            )?;
        }
        Ok(Attached {
            digest,
            artifact_type: artifact_type.to_string(),
            referrers_api: api,
        })
    }
}
