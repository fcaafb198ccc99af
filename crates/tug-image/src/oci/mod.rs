//! Daemonless, reproducible OCI images.
//!
//! Layers are deterministic tars ([`LayerBuilder`]), the config and manifest are
//! canonical JSON, so the same inputs always give the same manifest digest.
//! An [`Image`] can be written as an OCI image layout directory, as a
//! docker-archive tar (what `docker save` writes and `docker load` reads), or
//! pushed with [`crate::registry`].
//!
//! ```no_run
//! use tug_image::oci::{ImageBuilder, ImageConfig, LayerBuilder};
//! let layer = LayerBuilder::new(0).file("/app/hello", b"#!".to_vec(), 0o755)?.build("COPY hello")?;
//! let image = ImageBuilder::new()
//!     .layer(layer)
//!     .config(ImageConfig { entrypoint: vec!["/app/hello".into()], ..Default::default() })
//!     .build()?;
//! image.write_oci_layout(std::path::Path::new("/tmp/hello-oci"), Some("hello:1"))?;
//! # Ok::<(), tug_image::oci::OciError>(())
//! ```

mod archive;
pub mod auditable;
mod layer;
pub mod provenance;
mod rust;

pub use archive::{read_docker_archive, read_oci_layout, RawImage, RawLayer};
pub use layer::{gzip, EntryKind, Layer, LayerBuilder};
pub use rust::{
    assemble_rust, build_rust, cargo_build_static, host_target, BuiltBinary, RustBuildOptions,
    APP_UID,
};

use oci_spec::image::{
    Arch, ConfigBuilder, DescriptorBuilder, HistoryBuilder, ImageConfiguration,
    ImageConfigurationBuilder, ImageManifest, ImageManifestBuilder, MediaType, Os, RootFsBuilder,
};
use sha2::{Digest as _, Sha256};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::str::FromStr;

pub const MEDIA_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const MEDIA_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
pub const MEDIA_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const MEDIA_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const MEDIA_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const MEDIA_DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const MEDIA_DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

#[derive(Debug, thiserror::Error)]
pub enum OciError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(String),
    #[error("cargo build failed: {0}")]
    Cargo(String),
    #[error("image spec: {0}")]
    Spec(#[from] oci_spec::OciSpecError),
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
}

/// `sha256:<hex>` of some bytes.
pub fn sha256_digest(data: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(data))
}

/// Serialises with object keys sorted, so maps (labels, ports) never change
/// the digest by iteration order.
pub fn canonical_json<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, OciError> {
    fn sort(v: serde_json::Value) -> serde_json::Value {
        match v {
            serde_json::Value::Object(map) => {
                let sorted: BTreeMap<String, serde_json::Value> =
                    map.into_iter().map(|(k, v)| (k, sort(v))).collect();
                serde_json::Value::Object(sorted.into_iter().collect())
            }
            serde_json::Value::Array(a) => {
                serde_json::Value::Array(a.into_iter().map(sort).collect())
            }
            other => other,
        }
    }
    Ok(serde_json::to_vec(&sort(serde_json::to_value(value)?))?)
}

/// RFC 3339 form of a Unix timestamp (`1970-01-01T00:00:00Z` for 0).
pub fn rfc3339(epoch: u64) -> String {
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_secs(epoch))
        .to_string()
}

/// The run-time settings of an image.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ImageConfig {
    pub user: Option<String>,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub working_dir: Option<String>,
    pub exposed_ports: Vec<u16>,
    pub labels: BTreeMap<String, String>,
    /// Seconds since the epoch for `created` (SOURCE_DATE_EPOCH).
    pub created: u64,
}

/// Assembles layers and a config into an [`Image`].
#[derive(Default)]
pub struct ImageBuilder {
    layers: Vec<Layer>,
    config: ImageConfig,
}

impl ImageBuilder {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn layer(mut self, layer: Layer) -> Self {
        self.layers.push(layer);
        self
    }
    pub fn config(mut self, config: ImageConfig) -> Self {
        self.config = config;
        self
    }

    pub fn build(self) -> Result<Image, OciError> {
        let c = &self.config;
        let created = rfc3339(c.created);
        let mut rc = ConfigBuilder::default();
        if let Some(u) = &c.user {
            rc = rc.user(u.clone());
        }
        if !c.entrypoint.is_empty() {
            rc = rc.entrypoint(c.entrypoint.clone());
        }
        if !c.cmd.is_empty() {
            rc = rc.cmd(c.cmd.clone());
        }
        if !c.env.is_empty() {
            rc = rc.env(
                c.env
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>(),
            );
        }
        if let Some(w) = &c.working_dir {
            rc = rc.working_dir(w.clone());
        }
        if !c.exposed_ports.is_empty() {
            let mut ports: Vec<u16> = c.exposed_ports.clone();
            ports.sort_unstable();
            ports.dedup();
            rc = rc.exposed_ports(ports.iter().map(|p| format!("{p}/tcp")).collect::<Vec<_>>());
        }
        if !c.labels.is_empty() {
            rc = rc.labels(
                c.labels
                    .clone()
                    .into_iter()
                    .collect::<std::collections::HashMap<_, _>>(),
            );
        }
        let history = self
            .layers
            .iter()
            .map(|l| {
                HistoryBuilder::default()
                    .created(created.clone())
                    .created_by(l.created_by.clone())
                    .build()
            })
            .collect::<Result<Vec<_>, _>>()?;
        let config = ImageConfigurationBuilder::default()
            .created(created.clone())
            .architecture(Arch::Amd64)
            .os(Os::Linux)
            .config(rc.build()?)
            .rootfs(
                RootFsBuilder::default()
                    .typ("layers")
                    .diff_ids(
                        self.layers
                            .iter()
                            .map(|l| l.diff_id.clone())
                            .collect::<Vec<_>>(),
                    )
                    .build()?,
            )
            .history(history)
            .build()?;
        let config_blob = canonical_json(&config)?;
        let config_desc = DescriptorBuilder::default()
            .media_type(MediaType::ImageConfig)
            .digest(parse_digest(&sha256_digest(&config_blob))?)
            .size(config_blob.len() as u64)
            .build()?;
        let layer_descs = self
            .layers
            .iter()
            .map(|l| {
                DescriptorBuilder::default()
                    .media_type(MediaType::from(l.media_type.as_str()))
                    .digest(parse_digest(&l.digest)?)
                    .size(l.data.len() as u64)
                    .build()
                    .map_err(OciError::from)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let manifest = ImageManifestBuilder::default()
            .schema_version(2u32)
            .media_type(MediaType::ImageManifest)
            .config(config_desc)
            .layers(layer_descs)
            .build()?;
        let manifest_blob = canonical_json(&manifest)?;
        Ok(Image {
            manifest,
            config,
            config_blob,
            manifest_blob,
            layers: self.layers,
        })
    }
}

pub(crate) fn parse_digest(d: &str) -> Result<oci_spec::image::Digest, OciError> {
    oci_spec::image::Digest::from_str(d)
        .map_err(|e| OciError::Invalid(format!("bad digest {d:?}: {e}")))
}

/// An assembled image: every blob in memory, digests known.
#[derive(Clone, Debug)]
pub struct Image {
    pub manifest: ImageManifest,
    pub config: ImageConfiguration,
    /// The exact config bytes the manifest points at.
    pub config_blob: Vec<u8>,
    /// The exact manifest bytes; their sha256 is the image digest.
    pub manifest_blob: Vec<u8>,
    pub layers: Vec<Layer>,
}

impl Image {
    /// The manifest digest (what a registry reports for the pushed tag).
    pub fn digest(&self) -> String {
        sha256_digest(&self.manifest_blob)
    }

    /// The config digest (the image ID `docker images` shows).
    pub fn config_digest(&self) -> String {
        sha256_digest(&self.config_blob)
    }

    /// Total bytes of the stored blobs (config + compressed layers).
    pub fn size(&self) -> u64 {
        self.config_blob.len() as u64 + self.layers.iter().map(|l| l.data.len() as u64).sum::<u64>()
    }

    /// The image as raw blobs, the form analysis and readers work on.
    pub fn to_raw(&self) -> RawImage {
        RawImage {
            manifest: Some(self.manifest_blob.clone()),
            config: self.config_blob.clone(),
            layers: self
                .layers
                .iter()
                .map(|l| RawLayer {
                    media_type: l.media_type.clone(),
                    digest: l.digest.clone(),
                    data: l.data.clone(),
                    missing: None,
                })
                .collect(),
        }
    }

    /// Writes an OCI image layout directory (`oci-layout`, `index.json`,
    /// `blobs/sha256/...`). With a tag, the manifest is annotated with
    /// `org.opencontainers.image.ref.name`.
    pub fn write_oci_layout(
        &self,
        dir: &std::path::Path,
        tag: Option<&str>,
    ) -> Result<(), OciError> {
        write_oci_layout(dir, &[(self, tag)])
    }

    /// Every blob: config, layers and the manifest itself.
    pub fn blobs(&self) -> Vec<(String, &[u8])> {
        let mut v: Vec<(String, &[u8])> = vec![(self.config_digest(), &self.config_blob)];
        v.extend(
            self.layers
                .iter()
                .map(|l| (l.digest.clone(), l.data.as_slice())),
        );
        v.push((self.digest(), &self.manifest_blob));
        v
    }

    fn descriptor(&self, tag: Option<&str>) -> serde_json::Value {
        let mut desc = serde_json::json!({
            "mediaType": MEDIA_MANIFEST,
            "digest": self.digest(),
            "size": self.manifest_blob.len(),
            "platform": {"architecture": "amd64", "os": "linux"},
        });
        if let Some(t) = tag {
            desc["annotations"] = serde_json::json!({
                "io.containerd.image.name": t,
                "org.opencontainers.image.ref.name": t,
            });
        }
        desc
    }

    /// Writes a docker-archive tar that `docker load` accepts: `manifest.json`
    /// (with `RepoTags`), the config and the layers, laid out as an OCI image
    /// layout as well (as `docker save` does since Docker 25).
    pub fn write_docker_archive<W: std::io::Write>(&self, w: W, tag: &str) -> Result<(), OciError> {
        write_docker_archive(w, &[(self, tag)])
    }
}

/// An image index listing the images, each under its tag.
pub fn index_json(images: &[(&Image, Option<&str>)]) -> Result<Vec<u8>, OciError> {
    canonical_json(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_INDEX,
        "manifests": images.iter().map(|(i, t)| i.descriptor(*t)).collect::<Vec<_>>(),
    }))
}

/// Writes several images into one OCI image layout (blobs shared).
pub fn write_oci_layout(
    dir: &std::path::Path,
    images: &[(&Image, Option<&str>)],
) -> Result<(), OciError> {
    let blobs = dir.join("blobs").join("sha256");
    std::fs::create_dir_all(&blobs).map_err(|source| OciError::Io {
        path: blobs.clone(),
        source,
    })?;
    let write = |name: &str, data: &[u8]| -> Result<(), OciError> {
        let path = dir.join(name);
        std::fs::write(&path, data).map_err(|source| OciError::Io { path, source })
    };
    for (image, _) in images {
        for (digest, data) in image.blobs() {
            write(&format!("blobs/sha256/{}", hex_of(&digest)), data)?;
        }
    }
    write("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    write("index.json", &index_json(images)?)
}

/// Writes several images into one docker-archive tar (blobs shared).
pub fn write_docker_archive<W: std::io::Write>(
    w: W,
    images: &[(&Image, &str)],
) -> Result<(), OciError> {
    let manifest_json = canonical_json(
        &images
            .iter()
            .map(|(img, tag)| {
                serde_json::json!({
                    "Config": format!("blobs/sha256/{}", hex_of(&img.config_digest())),
                    "RepoTags": [tag],
                    "Layers": img.layers.iter().map(|l| format!("blobs/sha256/{}", hex_of(&l.digest))).collect::<Vec<_>>(),
                })
            })
            .collect::<Vec<_>>(),
    )?;
    let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for (image, _) in images {
        for (digest, data) in image.blobs() {
            files.insert(format!("blobs/sha256/{}", hex_of(&digest)), data.to_vec());
        }
    }
    let tagged: Vec<(&Image, Option<&str>)> = images.iter().map(|(i, t)| (*i, Some(*t))).collect();
    files.insert(
        "oci-layout".into(),
        br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
    );
    files.insert("index.json".into(), index_json(&tagged)?);
    files.insert("manifest.json".into(), manifest_json);
    let mut out = tar::Builder::new(w);
    let io = |source| OciError::Io {
        path: "<docker-archive>".into(),
        source,
    };
    for dir in ["blobs/", "blobs/sha256/"] {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_mtime(0);
        h.set_size(0);
        out.append_data(&mut h, dir, std::io::empty()).map_err(io)?;
    }
    for (name, data) in &files {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_size(data.len() as u64);
        out.append_data(&mut h, name, data.as_slice()).map_err(io)?;
    }
    out.into_inner().map_err(io)?;
    Ok(())
}

/// The hex part of `sha256:<hex>`.
pub fn hex_of(digest: &str) -> &str {
    digest.split_once(':').map_or(digest, |(_, h)| h)
}
