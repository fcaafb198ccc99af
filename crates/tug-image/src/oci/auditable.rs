//! The dependency list of a Rust binary, embedded as `cargo auditable` does:
//! zlib-compressed JSON in a `.dep-v0` linker section, read back by
//! `cargo audit bin`, Trivy, Syft and `tug scan`.
//!
//! The list comes from `cargo metadata` (the resolved graph for the target):
//! every package reachable from the binary's package through normal or build
//! dependencies, sorted, with indices for edges, as cargo-auditable's format
//! has it. The section lives in a small object file handed to the linker for
//! the final binary only; an undefined-symbol flag keeps `--gc-sections`
//! from dropping it.

use super::OciError;
use auditable_serde::{DependencyKind, Package, Source, VersionInfo};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

/// The section's name and the symbol that keeps it linked.
pub const SECTION: &str = ".dep-v0";
pub const SYMBOL: &str = "AUDITABLE_VERSION_INFO";

/// `cargo metadata` for the workspace, filtered to `target`.
pub fn cargo_metadata(workspace: &Path, target: &str) -> Result<Value, OciError> {
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(workspace)
        .args(["metadata", "--format-version", "1", "--locked"])
        .args(["--filter-platform", target])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| OciError::Cargo(format!("running cargo metadata: {e}")))?;
    if !out.status.success() {
        return Err(OciError::Cargo(format!(
            "cargo metadata in {}: {}",
            workspace.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(serde_json::from_slice(&out.stdout)?)
}

/// crates.io as cargo names it: the git index, or the sparse index (which an
/// alternative-registry entry for crates.io records).
pub const CRATES_IO_SOURCES: [&str; 2] = [
    "registry+https://github.com/rust-lang/crates.io-index",
    "sparse+https://index.crates.io/",
];

/// Whether a package source (as Cargo.lock and cargo metadata write it) is
/// crates.io. Exact, as cargo-audit: another registry (a mirror, a private
/// index) may hold different crates under the same names.
pub fn is_crates_io(source: &str) -> bool {
    CRATES_IO_SOURCES.contains(&source)
}

fn source_of(pkg: &Value) -> Source {
    match pkg["source"].as_str() {
        None => Source::Local,
        Some(s) if is_crates_io(s) => Source::CratesIo,
        Some(s) if s.starts_with("git+") => Source::Git,
        Some(_) => Source::Registry,
    }
}

/// The dependency list of `package` from cargo metadata.
pub fn dependency_list(meta: &Value, package: &str) -> Result<VersionInfo, OciError> {
    let pkgs: HashMap<&str, &Value> = meta["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| Some((p["id"].as_str()?, p)))
        .collect();
    let members: Vec<&str> = meta["workspace_members"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let root = members
        .iter()
        .copied()
        .find(|id| pkgs.get(id).is_some_and(|p| p["name"] == package))
        .ok_or_else(|| OciError::Cargo(format!("no workspace member named {package}")))?;
    // Edges of the resolved graph: (dependency, is it a build dependency).
    let mut edges: HashMap<&str, Vec<(&str, bool)>> = HashMap::new();
    for node in meta["resolve"]["nodes"].as_array().into_iter().flatten() {
        let Some(id) = node["id"].as_str() else {
            continue;
        };
        let mut out = Vec::new();
        for d in node["deps"].as_array().into_iter().flatten() {
            let Some(dep) = d["pkg"].as_str() else {
                continue;
            };
            let kinds: Vec<Option<&str>> = d["dep_kinds"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|k| k["kind"].as_str())
                .collect();
            if kinds.iter().any(Option::is_none) {
                out.push((dep, false));
            } else if kinds.contains(&Some("build")) {
                out.push((dep, true));
            }
        }
        edges.insert(id, out);
    }
    // Runtime if reachable through normal edges only; else build.
    let mut kind: BTreeMap<&str, DependencyKind> = BTreeMap::new();
    let mut queue = VecDeque::from([(root, DependencyKind::Runtime)]);
    while let Some((id, k)) = queue.pop_front() {
        match kind.get(id) {
            Some(DependencyKind::Runtime) => continue,
            Some(DependencyKind::Build) if k == DependencyKind::Build => continue,
            _ => {}
        }
        kind.insert(id, k);
        for &(dep, build) in edges.get(id).into_iter().flatten() {
            let dk = if build { DependencyKind::Build } else { k };
            queue.push_back((dep, dk));
        }
    }
    let mut ids: Vec<&str> = kind.keys().copied().collect();
    let key = |id: &str| {
        let p = pkgs.get(id);
        (
            p.and_then(|p| p["name"].as_str()).unwrap_or("").to_string(),
            p.and_then(|p| p["version"].as_str())
                .unwrap_or("")
                .to_string(),
            id.to_string(),
        )
    };
    ids.sort_by_key(|id| key(id));
    let index: HashMap<&str, usize> = ids.iter().enumerate().map(|(i, id)| (*id, i)).collect();
    let mut packages = Vec::new();
    for id in &ids {
        let p = pkgs
            .get(id)
            .ok_or_else(|| OciError::Cargo(format!("cargo metadata lacks package {id}")))?;
        let version = p["version"].as_str().unwrap_or_default();
        let deps: BTreeSet<usize> = edges
            .get(id)
            .into_iter()
            .flatten()
            .filter_map(|(d, _)| index.get(d).copied())
            .collect();
        packages.push(Package {
            name: p["name"].as_str().unwrap_or_default().to_string(),
            version: semver::Version::parse(version).map_err(|e| {
                OciError::Cargo(format!("cargo metadata: version {version:?}: {e}"))
            })?,
            source: source_of(p),
            kind: kind[id],
            dependencies: deps.into_iter().collect(),
            root: *id == root,
        });
    }
    Ok(VersionInfo {
        packages,
        format: 0,
    })
}

/// The section's bytes: the list as JSON, zlib-compressed.
pub fn section_data(info: &VersionInfo) -> Result<Vec<u8>, OciError> {
    let json = serde_json::to_vec(info)?;
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::new(9));
    let io = |source| OciError::Io {
        path: "<.dep-v0>".into(),
        source,
    };
    z.write_all(&json).map_err(io)?;
    z.finish().map_err(io)
}

/// An ELF object file holding `data` in the `.dep-v0` section, with the
/// symbol the linker is told to keep. `None` for targets not handled.
pub fn object_file(target: &str, data: &[u8]) -> Option<Vec<u8>> {
    use object::write::{Object, Symbol, SymbolSection};
    use object::{
        Architecture, BinaryFormat, Endianness, SectionKind, SymbolFlags, SymbolKind, SymbolScope,
    };
    if !target.contains("-linux-") {
        return None;
    }
    let arch = match target.split('-').next()? {
        "x86_64" => Architecture::X86_64,
        "aarch64" => Architecture::Aarch64,
        _ => return None,
    };
    let mut obj = Object::new(BinaryFormat::Elf, arch, Endianness::Little);
    let section = obj.add_section(
        Vec::new(),
        SECTION.as_bytes().to_vec(),
        SectionKind::ReadOnlyData,
    );
    let offset = obj.append_section_data(section, data, 1);
    obj.add_symbol(Symbol {
        name: SYMBOL.as_bytes().to_vec(),
        value: offset,
        size: data.len() as u64,
        kind: SymbolKind::Data,
        scope: SymbolScope::Dynamic,
        weak: false,
        section: SymbolSection::Section(section),
        flags: SymbolFlags::None,
    });
    obj.write().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Only crates.io itself is recorded as crates.io: a mirror's index
    /// (whose URL may well end in `crates.io-index`) is another registry.
    #[test]
    fn a_mirror_of_the_index_is_another_registry() {
        let pkg = |id: &str, source: Option<&str>| serde_json::json!({"id": id, "name": id, "version": "1.0.0", "source": source});
        let deps: Vec<Value> = [
            "git-index",
            "sparse-index",
            "mirror",
            "lookalike",
            "from-git",
        ]
        .iter()
        .map(|d| serde_json::json!({"pkg": d, "dep_kinds": [{"kind": null}]}))
        .collect();
        let meta = serde_json::json!({
            "packages": [
                pkg("app", None),
                pkg("git-index", Some("registry+https://github.com/rust-lang/crates.io-index")),
                pkg("sparse-index", Some("sparse+https://index.crates.io/")),
                pkg("mirror", Some("registry+https://mirror.example.com/crates.io-index")),
                pkg("lookalike", Some("sparse+https://index.crates.io.example.com/")),
                pkg("from-git", Some("git+https://example.com/x.git#abc")),
            ],
            "workspace_members": ["app"],
            "resolve": {"nodes": [
                {"id": "app", "deps": deps},
            ]},
        });
        let info = dependency_list(&meta, "app").unwrap();
        let source = |name: &str| {
            info.packages
                .iter()
                .find(|p| p.name == name)
                .map(|p| p.source.clone())
                .unwrap()
        };
        assert_eq!(source("git-index"), Source::CratesIo);
        assert_eq!(source("sparse-index"), Source::CratesIo);
        assert_eq!(source("mirror"), Source::Registry);
        assert_eq!(source("lookalike"), Source::Registry);
        assert_eq!(source("from-git"), Source::Git);
        assert_eq!(source("app"), Source::Local);
    }
}
