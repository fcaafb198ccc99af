//! Software bills of materials: the Rust packages of a Cargo.lock, or those
//! compiled into an image's binaries (their `cargo auditable` data), as
//! CycloneDX 1.5 JSON or SPDX 2.3 JSON.
//!
//! Documents are deterministic: the time is `$SOURCE_DATE_EPOCH` when set,
//! and serial numbers and namespaces are derived from the content.

use crate::vuln::lockfile::{Lockfile, Source};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// One package of the bill.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Component {
    pub name: String,
    pub version: String,
    pub source: Source,
    /// Keys (into `Sbom::components`) of its dependencies.
    pub deps: Vec<usize>,
    /// A workspace member or the binary's own package.
    pub root: bool,
    /// Where it was found: a Cargo.lock, or a binary in the image.
    pub found_in: Vec<String>,
    /// The package URL of a distribution package (`pkg:deb/…`, `pkg:apk/…`).
    pub os_purl: Option<String>,
}

impl Component {
    fn is_crates_io(&self) -> bool {
        crate::vuln::is_crates_io(&self.source)
    }
    /// The package URL: `pkg:cargo/name@version` for crates.io packages.
    pub fn purl(&self) -> Option<String> {
        if let Some(p) = &self.os_purl {
            return Some(p.clone());
        }
        self.is_crates_io()
            .then(|| format!("pkg:cargo/{}@{}", self.name, self.version))
    }
}

/// What an SBOM describes and what it lists.
#[derive(Clone, Debug, Default)]
pub struct Sbom {
    /// The directory or image described.
    pub subject: String,
    /// `application` for a source tree, `container` for an image.
    pub kind: &'static str,
    pub components: Vec<Component>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    CycloneDx,
    Spdx,
}

impl Sbom {
    pub fn new(subject: impl Into<String>, kind: &'static str) -> Sbom {
        Sbom {
            subject: subject.into(),
            kind,
            components: Vec::new(),
        }
    }

    /// Adds the packages of one lockfile (or embedded list), merging the
    /// ones already listed (same name, version and source).
    pub fn add(&mut self, lock: &Lockfile, found_in: &str) {
        let key = |c: &Component| (c.name.clone(), c.version.clone(), format!("{:?}", c.source));
        let mut index: BTreeMap<(String, String, String), usize> = self
            .components
            .iter()
            .enumerate()
            .map(|(i, c)| (key(c), i))
            .collect();
        let mut map = Vec::with_capacity(lock.packages.len());
        for p in &lock.packages {
            let c = Component {
                name: p.name.clone(),
                version: p.version.to_string(),
                source: p.source.clone(),
                deps: Vec::new(),
                root: p.source == Source::Path,
                found_in: Vec::new(),
                os_purl: None,
            };
            let i = *index.entry(key(&c)).or_insert_with(|| {
                self.components.push(c);
                self.components.len() - 1
            });
            if !self.components[i].found_in.iter().any(|f| f == found_in) {
                self.components[i].found_in.push(found_in.to_string());
            }
            map.push(i);
        }
        for (p, &i) in lock.packages.iter().zip(&map) {
            for &d in &p.deps {
                let j = map[d];
                if !self.components[i].deps.contains(&j) {
                    self.components[i].deps.push(j);
                }
            }
        }
    }

    /// Adds an image's distribution packages (Debian, Alpine).
    pub fn add_os(
        &mut self,
        packages: &[crate::image::ospkg::OsPackage],
        release: Option<&crate::image::ospkg::OsRelease>,
        found_in: &str,
    ) {
        for p in packages {
            let distro = release
                .filter(|r| !r.id.is_empty())
                .map(|r| format!("{}-{}", r.id, r.version_id));
            self.components.push(Component {
                name: p.name.clone(),
                version: p.version.clone(),
                source: Source::Registry(format!("{:?}", p.distro).to_lowercase()),
                deps: Vec::new(),
                root: false,
                found_in: vec![found_in.to_string()],
                os_purl: Some(p.purl(distro.as_deref())),
            });
        }
    }

    fn refs(&self) -> Vec<String> {
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        self.components
            .iter()
            .map(|c| {
                let base = format!("{}@{}", c.name, c.version);
                let n = seen.entry(base.clone()).or_insert(0);
                *n += 1;
                if *n == 1 {
                    base
                } else {
                    format!("{base}#{n}")
                }
            })
            .collect()
    }

    fn content_hash(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(self.subject.as_bytes());
        for c in &self.components {
            h.update(
                format!("\0{}\0{}\0{:?}\0{:?}", c.name, c.version, c.source, c.deps).as_bytes(),
            );
        }
        h.finalize().into()
    }

    /// A UUID (version 5 layout) derived from the content.
    fn uuid(&self) -> String {
        let mut b = self.content_hash();
        b[6] = (b[6] & 0x0f) | 0x50;
        b[8] = (b[8] & 0x3f) | 0x80;
        let h: String = b[..16].iter().map(|x| format!("{x:02x}")).collect();
        format!(
            "{}-{}-{}-{}-{}",
            &h[..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..32]
        )
    }

    /// CycloneDX 1.5 JSON.
    pub fn cyclonedx(&self, created: &str) -> Value {
        let refs = self.refs();
        let components: Vec<Value> = self
            .components
            .iter()
            .zip(&refs)
            .map(|(c, r)| {
                let mut v = json!({
                    "type": if c.root { "application" } else { "library" },
                    "bom-ref": r,
                    "name": c.name,
                    "version": c.version,
                    "properties": c.found_in.iter().map(|f| json!({"name": "tug:found-in", "value": f})).collect::<Vec<_>>(),
                });
                if let Some(p) = c.purl() {
                    v["purl"] = json!(p);
                }
                v
            })
            .collect();
        let dependencies: Vec<Value> = self
            .components
            .iter()
            .zip(&refs)
            .map(|(c, r)| {
                let mut on: Vec<&String> = c.deps.iter().map(|&d| &refs[d]).collect();
                on.sort();
                json!({"ref": r, "dependsOn": on})
            })
            .collect();
        json!({
            "$schema": "http://cyclonedx.org/schema/bom-1.5.schema.json",
            "bomFormat": "CycloneDX",
            "specVersion": "1.5",
            "serialNumber": format!("urn:uuid:{}", self.uuid()),
            "version": 1,
            "metadata": {
                "timestamp": created,
                "tools": {"components": [{"type": "application", "name": "tug", "version": env!("CARGO_PKG_VERSION")}]},
                "component": {"type": self.kind, "bom-ref": "subject", "name": self.subject},
            },
            "components": components,
            "dependencies": dependencies,
        })
    }

    /// SPDX 2.3 JSON.
    pub fn spdx(&self, created: &str) -> Value {
        let id = |i: usize| format!("SPDXRef-Package-{i}");
        let packages: Vec<Value> = self
            .components
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let mut v = json!({
                    "SPDXID": id(i),
                    "name": c.name,
                    "versionInfo": c.version,
                    "downloadLocation": if c.is_crates_io() {
                        format!("https://crates.io/api/v1/crates/{}/{}/download", c.name, c.version)
                    } else {
                        "NOASSERTION".to_string()
                    },
                    "filesAnalyzed": false,
                    "licenseConcluded": "NOASSERTION",
                    "licenseDeclared": "NOASSERTION",
                    "copyrightText": "NOASSERTION",
                    "comment": format!("found in {}", c.found_in.join(", ")),
                });
                if let Some(p) = c.purl() {
                    v["externalRefs"] = json!([{
                        "referenceCategory": "PACKAGE-MANAGER",
                        "referenceType": "purl",
                        "referenceLocator": p,
                    }]);
                }
                v
            })
            .collect();
        let mut relationships: Vec<Value> = self
            .components
            .iter()
            .enumerate()
            .filter(|(_, c)| c.root)
            .map(|(i, _)| {
                json!({"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES", "relatedSpdxElement": id(i)})
            })
            .collect();
        for (i, c) in self.components.iter().enumerate() {
            for &d in &c.deps {
                relationships.push(json!({"spdxElementId": id(i), "relationshipType": "DEPENDS_ON", "relatedSpdxElement": id(d)}));
            }
        }
        let slug: String = self
            .subject
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        json!({
            "spdxVersion": "SPDX-2.3",
            "dataLicense": "CC0-1.0",
            "SPDXID": "SPDXRef-DOCUMENT",
            "name": self.subject,
            "documentNamespace": format!("https://spdx.org/spdxdocs/tug-{slug}-{}", self.uuid()),
            "creationInfo": {
                "created": created,
                "creators": [format!("Tool: tug-{}", env!("CARGO_PKG_VERSION"))],
            },
            "packages": packages,
            "relationships": relationships,
        })
    }

    pub fn render(&self, format: Format, created: &str) -> Value {
        match format {
            Format::CycloneDx => self.cyclonedx(created),
            Format::Spdx => self.spdx(created),
        }
    }
}

/// The document time: `$SOURCE_DATE_EPOCH` when set (reproducible), else now;
/// RFC 3339 in UTC, seconds precision.
pub fn created_now() -> String {
    let secs = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0)
        });
    tug_image::oci::rfc3339(secs)
}
