//! An OCI distribution API client: push (blobs first, each verified, then the
//! manifest), pull, cross-repository mounts, chunked uploads, and basic or
//! bearer-token auth.
//!
//! ```text
//! push:  for each blob:  HEAD exists? ──yes──► skip
//!                          │no
//!                          ├─ mount from another repo (POST ?mount=&from=) ─201─► done
//!                          └─ POST uploads/ ─► PUT ?digest= (or PATCH chunks, then PUT)
//!                        HEAD again (verify size and digest)
//!        then PUT manifest (never before every blob is verified)
//! ```

mod auth;
mod reference;

pub use auth::Credentials;
pub mod attest;
mod referrers;
pub mod sign;
pub use reference::{Reference, ReferenceError, DOCKER_HUB};
pub use referrers::{fallback_tag, Attached, MEDIA_CYCLONEDX, MEDIA_EMPTY, MEDIA_SPDX};

use crate::oci::{
    sha256_digest, Image, RawImage, RawLayer, MEDIA_DOCKER_LIST, MEDIA_DOCKER_MANIFEST,
    MEDIA_INDEX, MEDIA_MANIFEST,
};
use reqwest::blocking::{Client, RequestBuilder, Response};
use reqwest::header::{
    ACCEPT, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, LOCATION, WWW_AUTHENTICATE,
};
use reqwest::{Method, StatusCode};
use std::sync::Mutex;
use std::time::Duration;

/// Blobs above this size are sent in chunks by default.
pub const DEFAULT_CHUNK_THRESHOLD: u64 = 64 * 1024 * 1024;
pub const DEFAULT_CHUNK_SIZE: u64 = 16 * 1024 * 1024;

/// Why a registry call failed; the text says which registry and repository.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    Unreachable,
    Unauthorized,
    Denied,
    NotFound,
    Server,
    Protocol,
}

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    #[error("registry {registry}, repository {repository}: {reason}")]
    Failed {
        registry: String,
        repository: String,
        kind: ErrorKind,
        reason: String,
    },
}

impl RegistryError {
    pub fn kind(&self) -> Option<ErrorKind> {
        match self {
            RegistryError::Failed { kind, .. } => Some(*kind),
            RegistryError::Reference(_) => None,
        }
    }
}

#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// Allow plain HTTP to a registry that is not on loopback.
    pub insecure: bool,
    /// Blobs larger than this go up in PATCH chunks.
    pub chunk_threshold: u64,
    pub chunk_size: u64,
    /// `None` looks them up (`TUG_REGISTRY_USER`/`TUG_REGISTRY_PASSWORD`, then
    /// `~/.docker/config.json`).
    pub credentials: Option<Credentials>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            insecure: false,
            chunk_threshold: DEFAULT_CHUNK_THRESHOLD,
            chunk_size: DEFAULT_CHUNK_SIZE,
            credentials: None,
        }
    }
}

/// Requests sent, by method: how tests see that existing blobs were skipped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct RequestCounts {
    pub head: u32,
    pub get: u32,
    pub post: u32,
    pub patch: u32,
    pub put: u32,
}

/// One registry, one authenticated session.
pub struct RegistryClient {
    http: Client,
    base: String,
    registry: String,
    credentials: Option<Credentials>,
    auth_header: Mutex<Option<String>>,
    counts: Mutex<RequestCounts>,
    opts: ClientOptions,
}

impl RegistryClient {
    pub fn new(reference: &Reference, opts: ClientOptions) -> Result<Self, RegistryError> {
        let plain = reference.is_loopback() || opts.insecure;
        let scheme = if plain { "http" } else { "https" };
        let mut http = Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(600))
            .user_agent(concat!("tug/", env!("CARGO_PKG_VERSION")));
        if reference.is_loopback() {
            http = http.no_proxy();
        }
        let http = http.build().map_err(|e| RegistryError::Failed {
            registry: reference.registry.clone(),
            repository: reference.repository.clone(),
            kind: ErrorKind::Protocol,
            reason: format!("cannot create an HTTP client: {e}"),
        })?;
        let credentials = opts
            .credentials
            .clone()
            .or_else(|| Credentials::lookup(&reference.registry));
        Ok(RegistryClient {
            http,
            base: format!("{scheme}://{}", reference.api_host()),
            registry: reference.registry.clone(),
            credentials,
            auth_header: Mutex::new(None),
            counts: Mutex::new(RequestCounts::default()),
            opts,
        })
    }

    pub fn counts(&self) -> RequestCounts {
        *self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn fail(&self, repo: &str, kind: ErrorKind, reason: impl Into<String>) -> RegistryError {
        RegistryError::Failed {
            registry: self.registry.clone(),
            repository: repo.to_string(),
            kind,
            reason: reason.into(),
        }
    }

    fn url(&self, path_or_url: &str) -> String {
        if path_or_url.starts_with("http://") || path_or_url.starts_with("https://") {
            path_or_url.to_string()
        } else {
            format!("{}{path_or_url}", self.base)
        }
    }

    /// Sends a request, answering one auth challenge if the registry asks.
    fn send(
        &self,
        repo: &str,
        method: Method,
        url: &str,
        body: Option<&[u8]>,
        headers: &[(&str, String)],
    ) -> Result<Response, RegistryError> {
        let build = || -> RequestBuilder {
            let mut r = self.http.request(method.clone(), url);
            for (k, v) in headers {
                r = r.header(*k, v);
            }
            if let Some(b) = body {
                r = r.header(CONTENT_LENGTH, b.len()).body(b.to_vec());
            } else if method == Method::PUT || method == Method::POST || method == Method::PATCH {
                r = r.header(CONTENT_LENGTH, 0);
            }
            r
        };
        let mut resp = self.dispatch(repo, &method, build(), url)?;
        if resp.status() == StatusCode::UNAUTHORIZED {
            if let Some(challenge) = resp
                .headers()
                .get(WWW_AUTHENTICATE)
                .and_then(|v| v.to_str().ok())
            {
                let header = auth::answer(&self.http, challenge, self.credentials.as_ref())
                    .map_err(|(kind, reason)| self.fail(repo, kind, reason))?;
                *self.auth_header.lock().unwrap_or_else(|e| e.into_inner()) = Some(header);
                resp = self.dispatch(repo, &method, build(), url)?;
            }
        }
        Ok(resp)
    }

    fn dispatch(
        &self,
        repo: &str,
        method: &Method,
        mut req: RequestBuilder,
        url: &str,
    ) -> Result<Response, RegistryError> {
        {
            let mut c = self.counts.lock().unwrap_or_else(|e| e.into_inner());
            match *method {
                Method::HEAD => c.head += 1,
                Method::GET => c.get += 1,
                Method::POST => c.post += 1,
                Method::PATCH => c.patch += 1,
                Method::PUT => c.put += 1,
                _ => {}
            }
        }
        if let Some(h) = self
            .auth_header
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
        {
            req = req.header(AUTHORIZATION, h);
        }
        req.send().map_err(|e| {
            let mut cause = e.to_string();
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                cause = format!("{cause}: {s}");
                src = s.source();
            }
            let hint = if self.base.starts_with("https://") && cause.contains("InvalidContentType")
            {
                " (the registry may speak plain HTTP: pass --insecure)"
            } else {
                ""
            };
            self.fail(
                repo,
                ErrorKind::Unreachable,
                format!("cannot reach {url}: {cause}{hint}"),
            )
        })
    }

    /// Turns an unexpected status into an error that says what to do.
    fn check(
        &self,
        repo: &str,
        resp: Response,
        what: &str,
        ok: &[u16],
    ) -> Result<Response, RegistryError> {
        let status = resp.status();
        if ok.contains(&status.as_u16()) {
            return Ok(resp);
        }
        let body = resp.text().unwrap_or_default();
        let detail = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| {
                let e = v["errors"].get(0)?.clone();
                Some(format!(
                    "{}: {}",
                    e["code"].as_str()?,
                    e["message"].as_str().unwrap_or("")
                ))
            })
            .unwrap_or_else(|| {
                body.chars()
                    .take(200)
                    .collect::<String>()
                    .trim()
                    .to_string()
            });
        let detail = if detail.is_empty() {
            String::new()
        } else {
            format!(" ({detail})")
        };
        let (kind, hint) = match status.as_u16() {
            401 => (
                ErrorKind::Unauthorized,
                format!(
                    ": log in with `docker login {}` or set TUG_REGISTRY_USER and TUG_REGISTRY_PASSWORD",
                    self.registry
                ),
            ),
            403 => (ErrorKind::Denied, ": the credentials lack permission for this repository".to_string()),
            404 => (ErrorKind::NotFound, String::new()),
            500..=599 => (ErrorKind::Server, ": the registry failed; try again later".to_string()),
            _ => (ErrorKind::Protocol, String::new()),
        };
        Err(self.fail(repo, kind, format!("{what}: {status}{detail}{hint}")))
    }

    /// The blob's size if the repository has it.
    pub fn blob_exists(&self, repo: &str, digest: &str) -> Result<Option<u64>, RegistryError> {
        let url = self.url(&format!("/v2/{repo}/blobs/{digest}"));
        let resp = self.send(repo, Method::HEAD, &url, None, &[])?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let resp = self.check(repo, resp, &format!("checking blob {digest}"), &[200])?;
        if let Some(d) = resp
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
        {
            if d != digest {
                return Err(self.fail(
                    repo,
                    ErrorKind::Protocol,
                    format!("blob {digest} is reported as {d}"),
                ));
            }
        }
        Ok(Some(resp.content_length().unwrap_or(0)))
    }

    /// Asks the registry to link a blob from another repository; false when
    /// it declined (the caller uploads instead).
    pub fn mount_blob(&self, repo: &str, digest: &str, from: &str) -> Result<bool, RegistryError> {
        let url = self.url(&format!(
            "/v2/{repo}/blobs/uploads/?mount={digest}&from={from}"
        ));
        let resp = self.send(repo, Method::POST, &url, None, &[])?;
        let resp = self.check(
            repo,
            resp,
            &format!("mounting blob {digest} from {from}"),
            &[201, 202],
        )?;
        if resp.status() == StatusCode::CREATED {
            return Ok(true);
        }
        // 202 opened an upload session instead; cancel it so none lingers.
        if let Some(loc) = resp.headers().get(LOCATION).and_then(|v| v.to_str().ok()) {
            let _ = self.send(repo, Method::DELETE, &self.url(loc), None, &[]);
        }
        Ok(false)
    }

    fn start_upload(&self, repo: &str, digest: &str) -> Result<String, RegistryError> {
        let url = self.url(&format!("/v2/{repo}/blobs/uploads/"));
        let resp = self.send(repo, Method::POST, &url, None, &[])?;
        let resp = self.check(
            repo,
            resp,
            &format!("starting the upload of {digest}"),
            &[202],
        )?;
        self.location(repo, &resp)
    }

    fn location(&self, repo: &str, resp: &Response) -> Result<String, RegistryError> {
        resp.headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(|l| self.url(l))
            .ok_or_else(|| {
                self.fail(
                    repo,
                    ErrorKind::Protocol,
                    "upload answer has no Location header",
                )
            })
    }

    /// Uploads a blob (monolithic, or chunked above the threshold), then
    /// checks that the registry holds it with the right size.
    pub fn upload_blob(&self, repo: &str, digest: &str, data: &[u8]) -> Result<(), RegistryError> {
        let mut loc = self.start_upload(repo, digest)?;
        let octet = [("content-type", "application/octet-stream".to_string())];
        let finish_body: Option<&[u8]> = if (data.len() as u64) > self.opts.chunk_threshold {
            let chunk = self.opts.chunk_size.max(1) as usize;
            for (i, part) in data.chunks(chunk).enumerate() {
                let start = i * chunk;
                let range = format!("{}-{}", start, start + part.len() - 1);
                let headers = [octet[0].clone(), ("content-range", range.clone())];
                let resp = self.send(repo, Method::PATCH, &loc, Some(part), &headers)?;
                let resp = self.check(
                    repo,
                    resp,
                    &format!("uploading bytes {range} of {digest}"),
                    &[202],
                )?;
                loc = self.location(repo, &resp)?;
            }
            None
        } else {
            Some(data)
        };
        let sep = if loc.contains('?') { '&' } else { '?' };
        let url = format!("{loc}{sep}digest={digest}");
        let resp = self.send(repo, Method::PUT, &url, finish_body, &octet)?;
        self.check(
            repo,
            resp,
            &format!("finishing the upload of {digest}"),
            &[201],
        )?;
        match self.blob_exists(repo, digest)? {
            Some(n) if n == data.len() as u64 || n == 0 => Ok(()),
            Some(n) => Err(self.fail(
                repo,
                ErrorKind::Protocol,
                format!(
                    "blob {digest} was stored with {n} bytes, expected {}",
                    data.len()
                ),
            )),
            None => Err(self.fail(
                repo,
                ErrorKind::Protocol,
                format!("blob {digest} is missing right after its upload"),
            )),
        }
    }

    /// Puts a manifest under a tag (or digest); returns the digest the registry reports.
    pub fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        body: &[u8],
    ) -> Result<String, RegistryError> {
        let url = self.url(&format!("/v2/{repo}/manifests/{reference}"));
        let resp = self.send(
            repo,
            Method::PUT,
            &url,
            Some(body),
            &[("content-type", media_type.to_string())],
        )?;
        let resp = self.check(
            repo,
            resp,
            &format!("putting the manifest {reference}"),
            &[201],
        )?;
        let ours = sha256_digest(body);
        match resp
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
        {
            Some(d) if d != ours => Err(self.fail(
                repo,
                ErrorKind::Protocol,
                format!("the registry stored the manifest as {d}, expected {ours}"),
            )),
            _ => Ok(ours),
        }
    }

    /// Fetches a manifest (or index) with its media type.
    pub fn get_manifest(
        &self,
        repo: &str,
        reference: &str,
    ) -> Result<(String, Vec<u8>), RegistryError> {
        let url = self.url(&format!("/v2/{repo}/manifests/{reference}"));
        let accept = [
            MEDIA_MANIFEST,
            MEDIA_INDEX,
            MEDIA_DOCKER_MANIFEST,
            MEDIA_DOCKER_LIST,
        ]
        .join(", ");
        let resp = self.send(repo, Method::GET, &url, None, &[(ACCEPT.as_str(), accept)])?;
        let resp = self.check(repo, resp, &format!("manifest {reference}"), &[200])?;
        let mt = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let body = resp.bytes().map_err(|e| {
            self.fail(
                repo,
                ErrorKind::Unreachable,
                format!("reading manifest {reference}: {e}"),
            )
        })?;
        if reference.starts_with("sha256:") && sha256_digest(&body) != reference {
            return Err(self.fail(
                repo,
                ErrorKind::Protocol,
                format!("manifest {reference} does not match its digest"),
            ));
        }
        Ok((mt, body.to_vec()))
    }

    /// Fetches a blob and checks its digest.
    pub fn get_blob(&self, repo: &str, digest: &str) -> Result<Vec<u8>, RegistryError> {
        let url = self.url(&format!("/v2/{repo}/blobs/{digest}"));
        let resp = self.send(repo, Method::GET, &url, None, &[])?;
        let resp = self.check(repo, resp, &format!("blob {digest}"), &[200])?;
        let body = resp.bytes().map_err(|e| {
            self.fail(
                repo,
                ErrorKind::Unreachable,
                format!("reading blob {digest}: {e}"),
            )
        })?;
        if sha256_digest(&body) != digest {
            return Err(self.fail(
                repo,
                ErrorKind::Protocol,
                format!("blob {digest} does not match its digest"),
            ));
        }
        Ok(body.to_vec())
    }
}

#[derive(Clone, Debug, Default)]
pub struct PushOptions {
    pub client: ClientOptions,
    /// Another repository of the same registry to mount missing blobs from.
    pub mount_from: Option<String>,
}

/// What happened to each blob, for progress output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PushEvent {
    Exists { digest: String, size: u64 },
    Mounted { digest: String, size: u64 },
    Uploading { digest: String, size: u64 },
    Uploaded { digest: String, size: u64 },
    Manifest { digest: String },
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct PushReport {
    pub reference: String,
    pub digest: String,
    pub uploaded: Vec<String>,
    pub skipped: Vec<String>,
    pub mounted: Vec<String>,
    pub requests: RequestCounts,
}

/// Pushes every blob (skipping those the repository has), verifies each, and
/// only then puts the manifest: an interrupted push leaves no manifest that
/// points at a missing blob, and a retry resumes where it stopped.
pub fn push(
    image: &Image,
    reference: &Reference,
    opts: &PushOptions,
    progress: &mut dyn FnMut(PushEvent),
) -> Result<PushReport, RegistryError> {
    let client = RegistryClient::new(reference, opts.client.clone())?;
    let repo = reference.repository.as_str();
    let mut report = PushReport {
        reference: reference.to_string(),
        digest: image.digest(),
        uploaded: vec![],
        skipped: vec![],
        mounted: vec![],
        requests: RequestCounts::default(),
    };
    let mut blobs: Vec<(&str, &[u8])> = image
        .layers
        .iter()
        .map(|l| (l.digest.as_str(), l.data.as_slice()))
        .collect();
    let config_digest = image.config_digest();
    blobs.push((config_digest.as_str(), image.config_blob.as_slice()));
    for (digest, data) in blobs {
        let size = data.len() as u64;
        if client.blob_exists(repo, digest)?.is_some() {
            report.skipped.push(digest.to_string());
            progress(PushEvent::Exists {
                digest: digest.into(),
                size,
            });
            continue;
        }
        if let Some(from) = &opts.mount_from {
            if client.mount_blob(repo, digest, from)? && client.blob_exists(repo, digest)?.is_some()
            {
                report.mounted.push(digest.to_string());
                progress(PushEvent::Mounted {
                    digest: digest.into(),
                    size,
                });
                continue;
            }
        }
        progress(PushEvent::Uploading {
            digest: digest.into(),
            size,
        });
        client.upload_blob(repo, digest, data)?;
        report.uploaded.push(digest.to_string());
        progress(PushEvent::Uploaded {
            digest: digest.into(),
            size,
        });
    }
    let tag = reference.tag.as_deref().unwrap_or("latest");
    let media = image
        .manifest
        .media_type()
        .as_ref()
        .map(|m| m.to_string())
        .unwrap_or_else(|| MEDIA_MANIFEST.to_string());
    let digest = client.put_manifest(repo, tag, &media, &image.manifest_blob)?;
    if let Some(want) = &reference.digest {
        if *want != digest {
            return Err(client.fail(
                repo,
                ErrorKind::Protocol,
                format!("the reference pins {want} but the image is {digest}"),
            ));
        }
    }
    progress(PushEvent::Manifest {
        digest: digest.clone(),
    });
    report.digest = digest;
    report.requests = client.counts();
    Ok(report)
}

/// Pulls manifest, config and layers (for inspection); picks linux/amd64 from an index.
pub fn pull(reference: &Reference, opts: &ClientOptions) -> Result<RawImage, RegistryError> {
    let client = RegistryClient::new(reference, opts.clone())?;
    let repo = reference.repository.as_str();
    let (mut mt, mut body) = client.get_manifest(repo, reference.target())?;
    let parse = |b: &[u8]| {
        serde_json::from_slice::<serde_json::Value>(b).map_err(|e| {
            client.fail(
                repo,
                ErrorKind::Protocol,
                format!("manifest is not JSON: {e}"),
            )
        })
    };
    let mut doc = parse(&body)?;
    if mt == MEDIA_INDEX || mt == MEDIA_DOCKER_LIST || doc.get("manifests").is_some() {
        let list = doc["manifests"].as_array().cloned().unwrap_or_default();
        let pick = list
            .iter()
            .find(|m| m["platform"]["architecture"] == "amd64" && m["platform"]["os"] == "linux")
            .or_else(|| list.first())
            .and_then(|m| m["digest"].as_str())
            .ok_or_else(|| {
                client.fail(
                    repo,
                    ErrorKind::NotFound,
                    "the index lists no linux/amd64 manifest",
                )
            })?;
        (mt, body) = client.get_manifest(repo, pick)?;
        doc = parse(&body)?;
    }
    let _ = mt;
    let config_digest = doc["config"]["digest"]
        .as_str()
        .ok_or_else(|| client.fail(repo, ErrorKind::Protocol, "manifest has no config"))?;
    let config = client.get_blob(repo, config_digest)?;
    let mut layers = Vec::new();
    for l in doc["layers"].as_array().into_iter().flatten() {
        let digest = l["digest"].as_str().unwrap_or_default().to_string();
        layers.push(RawLayer {
            media_type: l["mediaType"].as_str().unwrap_or_default().to_string(),
            data: client.get_blob(repo, &digest)?,
            digest,
            missing: None,
        });
    }
    Ok(RawImage {
        manifest: Some(body),
        config,
        layers,
    })
}
