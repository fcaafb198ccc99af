//! Reading images back: OCI image layouts and docker-archive tars.

use super::{hex_of, sha256_digest, OciError, MEDIA_DOCKER_LIST, MEDIA_INDEX};
use serde_json::Value;
use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

/// An image as raw blobs, whatever it was read from.
#[derive(Clone, Debug)]
pub struct RawImage {
    /// The manifest bytes, when the source had one (docker-archives of old
    /// engines have none).
    pub manifest: Option<Vec<u8>>,
    pub config: Vec<u8>,
    pub layers: Vec<RawLayer>,
}

#[derive(Clone, Debug)]
pub struct RawLayer {
    pub media_type: String,
    pub digest: String,
    /// The blob as stored: gzip-compressed or plain tar.
    pub data: Vec<u8>,
    /// Why the blob could not be read (missing from the layout or archive);
    /// `data` is then empty. Readers go on so the other layers stay usable.
    pub missing: Option<String>,
}

impl RawLayer {
    /// The layer's tar, decompressed when it is gzip.
    pub fn tar(&self) -> Result<Vec<u8>, OciError> {
        if let Some(why) = &self.missing {
            return Err(OciError::Invalid(format!("layer {}: {why}", self.digest)));
        }
        if self.data.starts_with(&[0x1f, 0x8b]) {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(self.data.as_slice())
                .read_to_end(&mut out)
                .map_err(|source| OciError::Io {
                    path: format!("<layer {}>", self.digest).into(),
                    source,
                })?;
            Ok(out)
        } else if self.data.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Err(OciError::Invalid(format!(
                "layer {} is zstd-compressed, which is not supported",
                self.digest
            )))
        } else {
            Ok(self.data.clone())
        }
    }
}

impl RawImage {
    /// The config as JSON (kept loose: engines add fields the spec lacks).
    pub fn config_json(&self) -> Result<Value, OciError> {
        Ok(serde_json::from_slice(&self.config)?)
    }

    /// The manifest digest, when there is a manifest.
    pub fn digest(&self) -> Option<String> {
        self.manifest.as_deref().map(sha256_digest)
    }
}

fn read(path: &Path) -> Result<Vec<u8>, OciError> {
    std::fs::read(path).map_err(|source| OciError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn json(bytes: &[u8], what: &str) -> Result<Value, OciError> {
    serde_json::from_slice(bytes).map_err(|e| OciError::Invalid(format!("{what}: {e}")))
}

/// Picks the manifest for `tag` (by `org.opencontainers.image.ref.name` or
/// `io.containerd.image.name`), else the linux/amd64 one, else the first.
fn pick<'a>(manifests: &'a [Value], tag: Option<&str>) -> Option<&'a Value> {
    if let Some(t) = tag {
        return manifests.iter().find(|m| {
            let a = &m["annotations"];
            [
                &a["org.opencontainers.image.ref.name"],
                &a["io.containerd.image.name"],
            ]
            .iter()
            .any(|v| v.as_str() == Some(t))
        });
    }
    manifests
        .iter()
        .find(|m| m["platform"]["architecture"] == "amd64" && m["platform"]["os"] == "linux")
        .or_else(|| manifests.first())
}

/// Reads an image from blobs addressed by digest, starting at a manifest or index.
fn from_blobs(
    get: &mut dyn FnMut(&str) -> Result<Vec<u8>, OciError>,
    index: &Value,
    tag: Option<&str>,
    source: &str,
) -> Result<RawImage, OciError> {
    let manifests = index["manifests"].as_array().cloned().unwrap_or_default();
    let desc = pick(&manifests, tag).ok_or_else(|| {
        OciError::Invalid(match tag {
            Some(t) => format!("{source}: no image tagged {t:?}"),
            None => format!("{source}: the index lists no manifest"),
        })
    })?;
    let digest = desc["digest"].as_str().ok_or_else(|| {
        OciError::Invalid(format!("{source}: manifest descriptor without digest"))
    })?;
    let bytes = get(digest)?;
    let mt = desc["mediaType"].as_str().unwrap_or_default();
    let doc = json(&bytes, source)?;
    if mt == MEDIA_INDEX || mt == MEDIA_DOCKER_LIST || doc.get("manifests").is_some() {
        return from_blobs(get, &doc, None, source);
    }
    let config_digest = doc["config"]["digest"]
        .as_str()
        .ok_or_else(|| OciError::Invalid(format!("{source}: manifest without config")))?;
    let config = get(config_digest)?;
    let mut layers = Vec::new();
    for l in doc["layers"].as_array().into_iter().flatten() {
        let d = l["digest"].as_str().unwrap_or_default().to_string();
        let (data, missing) = match get(&d) {
            Ok(data) => (data, None),
            Err(e) => (Vec::new(), Some(format!("blob cannot be read: {e}"))),
        };
        layers.push(RawLayer {
            media_type: l["mediaType"].as_str().unwrap_or_default().to_string(),
            data,
            digest: d,
            missing,
        });
    }
    Ok(RawImage {
        manifest: Some(bytes),
        config,
        layers,
    })
}

fn checked(digest: &str, data: Vec<u8>, source: &str) -> Result<Vec<u8>, OciError> {
    if digest.starts_with("sha256:") && sha256_digest(&data) != digest {
        return Err(OciError::Invalid(format!(
            "{source}: blob {digest} does not match its digest"
        )));
    }
    Ok(data)
}

/// Reads an OCI image layout directory; `tag` selects by ref name.
pub fn read_oci_layout(dir: &Path, tag: Option<&str>) -> Result<RawImage, OciError> {
    let source = dir.display().to_string();
    if !dir.join("oci-layout").exists() {
        return Err(OciError::Invalid(format!(
            "{source}: not an OCI image layout (no oci-layout file)"
        )));
    }
    let index = json(
        &read(&dir.join("index.json"))?,
        &format!("{source}/index.json"),
    )?;
    let mut get = |d: &str| {
        let data = read(&dir.join("blobs").join("sha256").join(hex_of(d)))?;
        checked(d, data, &source)
    };
    from_blobs(&mut get, &index, tag, &source)
}

/// Reads a docker-archive tar (`docker save` output, old or OCI-style).
pub fn read_docker_archive<R: Read>(r: R, source: &str) -> Result<RawImage, OciError> {
    let mut files: HashMap<String, Vec<u8>> = HashMap::new();
    let io = |source_err| OciError::Io {
        path: source.into(),
        source: source_err,
    };
    let mut ar = tar::Archive::new(r);
    for entry in ar.entries().map_err(io)? {
        let mut entry = entry.map_err(io)?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let name = entry
            .path()
            .map_err(io)?
            .to_string_lossy()
            .trim_start_matches("./")
            .to_string();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).map_err(io)?;
        files.insert(name, data);
    }
    let take = |files: &HashMap<String, Vec<u8>>, name: &str| {
        files
            .get(name)
            .cloned()
            .ok_or_else(|| OciError::Invalid(format!("{source}: missing {name}")))
    };
    let manifest = json(
        &take(&files, "manifest.json")?,
        &format!("{source}: manifest.json"),
    )?;
    let first = manifest
        .as_array()
        .and_then(|a| a.first())
        .ok_or_else(|| OciError::Invalid(format!("{source}: manifest.json lists no image")))?;
    let config_name = first["Config"]
        .as_str()
        .ok_or_else(|| OciError::Invalid(format!("{source}: manifest.json has no Config")))?;
    let config = take(&files, config_name)?;
    let mut layers = Vec::new();
    for l in first["Layers"].as_array().into_iter().flatten() {
        let name = l.as_str().unwrap_or_default();
        let Ok(data) = take(&files, name) else {
            layers.push(RawLayer {
                media_type: super::MEDIA_LAYER_TAR.into(),
                digest: name.to_string(),
                data: Vec::new(),
                missing: Some(format!("{source}: the archive has no {name}")),
            });
            continue;
        };
        layers.push(RawLayer {
            media_type: if data.starts_with(&[0x1f, 0x8b]) {
                super::MEDIA_LAYER_GZIP.into()
            } else {
                super::MEDIA_LAYER_TAR.into()
            },
            digest: sha256_digest(&data),
            data,
            missing: None,
        });
    }
    // Docker 25+ also writes an OCI layout; keep its manifest when present.
    let manifest_blob = files
        .get("index.json")
        .and_then(|i| serde_json::from_slice::<Value>(i).ok())
        .and_then(|i| {
            let d = i["manifests"][0]["digest"].as_str()?.to_string();
            files.get(&format!("blobs/sha256/{}", hex_of(&d))).cloned()
        })
        .filter(|m| {
            json(m, source)
                .map(|v| v.get("layers").is_some())
                .unwrap_or(false)
        });
    Ok(RawImage {
        manifest: manifest_blob,
        config,
        layers,
    })
}
