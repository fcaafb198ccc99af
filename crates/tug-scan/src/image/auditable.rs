//! The dependency list `cargo auditable` embeds in a binary (the `.dep-v0`
//! section: zlib-compressed JSON), read back as a lockfile to audit.

use crate::vuln::lockfile::{Lockfile, Package, Source};

/// Decompressed audit data larger than this is refused (zip bombs).
const JSON_LIMIT: usize = 8 << 20;

/// Whether the bytes look like an executable that may carry audit data
/// (ELF, PE or Mach-O).
pub fn is_binary(data: &[u8]) -> bool {
    data.starts_with(b"\x7fELF")
        || data.starts_with(b"MZ")
        || data.starts_with(&[0xcf, 0xfa, 0xed, 0xfe])
        || data.starts_with(&[0xfe, 0xed, 0xfa, 0xcf])
}

/// The outcome of looking for audit data in one binary.
#[derive(Debug)]
pub enum AuditData {
    /// The binary carries no `.dep-v0` section (not built with cargo auditable).
    None,
    Found(Lockfile),
    /// A section is there but cannot be read.
    Malformed(String),
}

/// Reads the embedded dependency list of a binary.
pub fn read(binary: &[u8]) -> AuditData {
    use auditable_info::Error;
    let info = match auditable_info::audit_info_from_slice(binary, JSON_LIMIT) {
        Ok(info) => info,
        Err(Error::NoAuditData) => return AuditData::None,
        Err(e) => return AuditData::Malformed(e.to_string()),
    };
    AuditData::Found(to_lockfile(&info))
}

/// Maps the embedded list onto the lockfile model the audit works on.
pub fn to_lockfile(info: &auditable_serde::VersionInfo) -> Lockfile {
    let packages = info
        .packages
        .iter()
        .map(|p| Package {
            name: p.name.clone(),
            version: p.version.clone(),
            source: match &p.source {
                auditable_serde::Source::CratesIo => {
                    Source::Registry(tug_image::oci::auditable::CRATES_IO_SOURCES[0].into())
                }
                auditable_serde::Source::Local => Source::Path,
                auditable_serde::Source::Git => Source::Git(String::new()),
                other => Source::Registry(String::from(other.clone())),
            },
            line: 1,
            deps: p
                .dependencies
                .iter()
                .copied()
                .filter(|&d| d < info.packages.len())
                .collect(),
        })
        .collect();
    Lockfile { packages }
}
