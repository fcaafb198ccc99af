//! `tug scan IMAGE`: an image's layers, unpacked in memory and scanned with
//! the scanners that apply.
//!
//! ```text
//! layer 0 ─► tar entries ─► regular file ─┬─► text   ─► secret rules
//! layer 1 ─►      …                       └─► binary ─► `.dep-v0` ─► RustSec audit
//!    …     whiteouts / opaque dirs ─► final filesystem ─► modes (o+w, setuid)
//! config   ─► user, HEALTHCHECK, ENV and labels
//! ```
//!
//! Every layer is read, so a secret a later layer deletes is still found and
//! reported as deleted-but-present (pulling the image still gets it). A
//! layer that cannot be read (missing blob, truncated or corrupt tar) is an
//! error naming it; the other layers are still scanned.

pub mod auditable;
pub mod ospkg;
pub mod rules;

use crate::finding::{FileError, Finding, ScannerKind, Severity};
use crate::{secret, vuln, Report, ScanError};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::PathBuf;
use tug_image::oci::{RawImage, RawLayer};

/// Files larger than this are not read for secrets (logs, data, archives).
const TEXT_LIMIT: u64 = 8 << 20;
/// Binaries larger than this are not read for audit data.
const BINARY_LIMIT: u64 = 512 << 20;

/// What to scan in an image and how.
#[derive(Clone, Debug)]
pub struct ImageScanOptions {
    pub scanners: Vec<ScannerKind>,
    /// Advisory database; `None` means `vuln::default_db_dir()`.
    pub db: Option<PathBuf>,
    pub ignore: Vec<String>,
    pub severities: Vec<Severity>,
    /// Audit the binaries' dependency lists (needs the database); off, they
    /// are only collected (for an SBOM).
    pub audit: bool,
    /// A distribution's security data (see [`ospkg`]) to audit Debian and
    /// Alpine packages against; without it they are listed, not audited.
    pub os_db: Option<PathBuf>,
}

impl Default for ImageScanOptions {
    fn default() -> Self {
        ImageScanOptions {
            scanners: ScannerKind::ALL.to_vec(),
            db: None,
            ignore: Vec::new(),
            severities: Vec::new(),
            audit: true,
            os_db: None,
        }
    }
}

/// What one layer held, for the report.
#[derive(Clone, Debug, Serialize)]
pub struct LayerStats {
    pub index: usize,
    pub digest: String,
    /// Bytes of the uncompressed tar read.
    pub bytes: u64,
    pub files: usize,
}

/// An image scan: the common report, plus what each layer held.
#[derive(Clone, Debug, Serialize)]
pub struct ImageReport {
    #[serde(flatten)]
    pub report: Report,
    pub layers: Vec<LayerStats>,
    /// Binaries found without `cargo auditable` data (not audited).
    pub binaries_without_audit_data: Vec<String>,
    /// Binaries whose embedded dependency list was audited.
    pub binaries_audited: Vec<String>,
    /// Each binary's embedded dependency list (image path, list).
    #[serde(skip)]
    pub dependencies: Vec<(String, vuln::lockfile::Lockfile)>,
    /// Debian and Alpine packages installed in the image.
    pub os_packages: Vec<ospkg::OsPackage>,
    /// The image's `/etc/os-release`, when it has one.
    pub os_release: Option<ospkg::OsRelease>,
}

/// Where a file's version came from and what later layers did to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fate {
    Present,
    Deleted(usize),
    Replaced(usize),
}

#[derive(Clone, Copy)]
struct Node {
    layer: usize,
    mode: u32,
    is_dir: bool,
}

/// A finding about one file of one layer, placed once all layers are read.
struct Pending {
    layer: usize,
    path: String,
    finding: Finding,
}

/// The final filesystem, built layer by layer with whiteouts honoured.
#[derive(Default)]
struct Tree {
    nodes: BTreeMap<String, Node>,
    fate: HashMap<(usize, String), Fate>,
}

impl Tree {
    /// Removes `path` and everything under it, as layer `by` does.
    fn remove(&mut self, path: &str, by: usize, children_only: bool) {
        let prefix = format!("{path}/");
        let doomed: Vec<String> = self
            .nodes
            .range(path.to_string()..)
            .take_while(|(k, _)| k.as_str() == path || k.starts_with(&prefix))
            .filter(|(k, _)| !(children_only && k.as_str() == path))
            .map(|(k, _)| k.clone())
            .collect();
        for k in doomed {
            if let Some(n) = self.nodes.remove(&k) {
                if n.layer != by {
                    self.fate.insert((n.layer, k), Fate::Deleted(by));
                }
            }
        }
    }

    fn put(&mut self, path: String, node: Node) {
        if let Some(old) = self.nodes.insert(path.clone(), node) {
            if old.layer != node.layer && !old.is_dir {
                self.fate
                    .insert((old.layer, path), Fate::Replaced(node.layer));
            }
        }
    }

    fn fate(&self, layer: usize, path: &str) -> Fate {
        self.fate
            .get(&(layer, path.to_string()))
            .copied()
            .unwrap_or(Fate::Present)
    }
}

fn layer_name(i: usize, l: &RawLayer) -> String {
    let short = l.digest.get(..19).unwrap_or(&l.digest);
    format!("layer {i} ({short})")
}

fn layer_error(i: usize, l: &RawLayer, message: String) -> FileError {
    FileError {
        file: PathBuf::from(layer_name(i, l)),
        line: 0,
        col: 0,
        message,
        hint: None,
    }
}

/// Scans an image. `name` is how the image is shown in the report.
pub fn scan_image(
    image: &RawImage,
    name: &str,
    opts: &ImageScanOptions,
) -> Result<ImageReport, ScanError> {
    let want = |k| opts.scanners.contains(&k);
    let mut report = Report {
        root: PathBuf::from(name),
        scanners: opts.scanners.clone(),
        ..Default::default()
    };
    let mut db = if want(ScannerKind::Vuln) && opts.audit {
        let dir = opts.db.clone().unwrap_or_else(vuln::default_db_dir);
        Some(vuln::Database::open(&dir)?)
    } else {
        None
    };
    let allow = secret::Allowlist::default();
    let mut tree = Tree::default();
    let mut pending: Vec<Pending> = Vec::new();
    let mut layers = Vec::new();
    let mut locks: Vec<(usize, String, vuln::lockfile::Lockfile)> = Vec::new();
    let mut without = Vec::new();
    // The package databases and os-release, as the last layer wrote them.
    let mut os_files: BTreeMap<String, (usize, Vec<u8>)> = BTreeMap::new();

    for (i, layer) in image.layers.iter().enumerate() {
        let mut stats = LayerStats {
            index: i,
            digest: layer.digest.clone(),
            bytes: 0,
            files: 0,
        };
        if let Some(why) = &layer.missing {
            report.errors.push(layer_error(
                i,
                layer,
                format!("{why}; this layer was not scanned"),
            ));
            layers.push(stats);
            continue;
        }
        let reader: Box<dyn Read + '_> = if layer.data.starts_with(&[0x1f, 0x8b]) {
            Box::new(flate2::read::GzDecoder::new(layer.data.as_slice()))
        } else if layer.data.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            report.errors.push(layer_error(
                i,
                layer,
                "zstd-compressed layers are not supported; this layer was not scanned".into(),
            ));
            layers.push(stats);
            continue;
        } else {
            Box::new(layer.data.as_slice())
        };
        let mut ar = tar::Archive::new(reader);
        let entries = match ar.entries() {
            Ok(e) => e,
            Err(e) => {
                report
                    .errors
                    .push(layer_error(i, layer, format!("not a tar archive: {e}")));
                layers.push(stats);
                continue;
            }
        };
        for entry in entries {
            let mut entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    report.errors.push(layer_error(
                        i,
                        layer,
                        format!(
                            "truncated or corrupt after {} entries: {e}; the rest of this layer was not scanned",
                            stats.files
                        ),
                    ));
                    break;
                }
            };
            let Ok(raw_path) = entry.path() else { continue };
            let path = normalise(&raw_path.to_string_lossy());
            if path.is_empty() {
                continue;
            }
            let (dir, base) = match path.rsplit_once('/') {
                Some((d, b)) => (d.to_string(), b.to_string()),
                None => (String::new(), path.clone()),
            };
            if base == ".wh..wh..opq" {
                tree.remove(&dir, i, true);
                continue;
            }
            if let Some(gone) = base.strip_prefix(".wh.") {
                let target = if dir.is_empty() {
                    gone.to_string()
                } else {
                    format!("{dir}/{gone}")
                };
                tree.remove(&target, i, false);
                continue;
            }
            let header = entry.header();
            let mode = header.mode().unwrap_or(0o644);
            let kind = header.entry_type();
            let size = header.size().unwrap_or(0);
            stats.bytes += size + 512;
            stats.files += 1;
            if kind.is_dir() {
                tree.put(
                    path,
                    Node {
                        layer: i,
                        mode,
                        is_dir: true,
                    },
                );
                continue;
            }
            // A non-directory replaces whatever the path held, children included.
            tree.remove(&path, i, true);
            tree.put(
                path.clone(),
                Node {
                    layer: i,
                    mode,
                    is_dir: false,
                },
            );
            if !kind.is_file() || size > BINARY_LIMIT {
                continue;
            }
            let mut data = Vec::with_capacity(size as usize);
            if let Err(e) = entry.read_to_end(&mut data) {
                report.errors.push(layer_error(
                    i,
                    layer,
                    format!("/{path}: truncated ({e}); the rest of this layer was not scanned"),
                ));
                break;
            }
            let shown = format!("/{path}");
            if path == ospkg::DPKG_STATUS
                || path == ospkg::APK_INSTALLED
                || ospkg::OS_RELEASE.contains(&path.as_str())
            {
                os_files.insert(path.clone(), (i, data.clone()));
            }
            if auditable::is_binary(&data) {
                if !want(ScannerKind::Vuln) {
                    continue;
                }
                match auditable::read(&data) {
                    auditable::AuditData::Found(lock) => locks.push((i, path, lock)),
                    auditable::AuditData::None => without.push(shown),
                    auditable::AuditData::Malformed(why) => report.errors.push(FileError {
                        file: PathBuf::from(format!("{}:{shown}", layer_name(i, layer))),
                        line: 0,
                        col: 0,
                        message: format!("malformed cargo-auditable data (.dep-v0): {why}"),
                        hint: Some(
                            "rebuild the binary with `cargo auditable build` or `tug build`".into(),
                        ),
                    }),
                }
                continue;
            }
            if !want(ScannerKind::Secret)
                || size > TEXT_LIMIT
                || data.iter().take(8000).any(|&b| b == 0)
                || secret::is_lockfile(&base)
            {
                continue;
            }
            let text = String::from_utf8_lossy(&data);
            for finding in secret::scan_text(&text, &shown, &allow) {
                pending.push(Pending {
                    layer: i,
                    path: path.clone(),
                    finding,
                });
            }
        }
        layers.push(stats);
    }

    // Secrets, placed now that later layers are known.
    for p in pending {
        let mut f = p.finding;
        let digest = &image.layers[p.layer].digest;
        let short = digest.get(..19).unwrap_or(digest);
        f.message = match tree.fate(p.layer, &p.path) {
            Fate::Present => format!("{} (layer {} {short})", f.message, p.layer),
            Fate::Deleted(by) => format!(
                "{} (layer {} {short}; deleted by layer {by} but still in the image: anyone who pulls it can read it)",
                f.message, p.layer
            ),
            Fate::Replaced(by) => format!(
                "{} (layer {} {short}; replaced by layer {by} but still in the image)",
                f.message, p.layer
            ),
        };
        report.findings.push(f);
    }

    // Rust dependencies of the binaries, against RustSec.
    if let Some(db) = db.as_mut() {
        db.load_crates(
            locks
                .iter()
                .flat_map(|(_, _, l)| l.packages.iter().map(|p| p.name.as_str())),
        );
        report.stats.advisories_loaded = db.len();
        report.errors.append(&mut db.errors);
        report.stats.lockfiles = locks.len();
        for (layer, path, lock) in &locks {
            report.stats.packages += lock.packages.len();
            let shown = format!("/{path}");
            for mut f in vuln::audit_lock(db, lock, &shown) {
                if opts.ignore.contains(&f.rule_id) {
                    report.stats.ignored += 1;
                    continue;
                }
                if tree.fate(*layer, path) != Fate::Present {
                    f.message
                        .push_str(" (in a binary a later layer removed; still in the image)");
                }
                report.findings.push(f);
            }
        }
    }

    // Distribution packages: listed, and audited when security data is given.
    os_files.retain(|path, (layer, _)| tree.fate(*layer, path) == Fate::Present);
    let text = |p: &str| {
        os_files
            .get(p)
            .map(|(_, d)| String::from_utf8_lossy(d).into_owned())
    };
    let os_release = ospkg::OS_RELEASE
        .iter()
        .find_map(|p| text(p))
        .map(|t| ospkg::parse_os_release(&t));
    let mut os_packages = Vec::new();
    if let Some(t) = text(ospkg::DPKG_STATUS) {
        os_packages.extend(ospkg::parse_dpkg_status(&t));
    }
    if let Some(t) = text(ospkg::APK_INSTALLED) {
        os_packages.extend(ospkg::parse_apk_installed(&t));
    }
    if want(ScannerKind::Vuln) && !os_packages.is_empty() {
        report.stats.packages += os_packages.len();
        match &opts.os_db {
            Some(dir) => {
                let release = os_release.clone().unwrap_or_default();
                match ospkg::audit(&os_packages, &release, dir) {
                    Ok(a) => {
                        for f in a.findings {
                            if opts.ignore.contains(&f.rule_id) {
                                report.stats.ignored += 1;
                            } else {
                                report.findings.push(f);
                            }
                        }
                        report.notices.extend(a.notices);
                    }
                    Err(e) => report.errors.push(FileError {
                        file: dir.clone(),
                        line: 0,
                        col: 0,
                        message: e.to_string(),
                        hint: Some("--os-db takes a directory laid out as the README's `tug scan IMAGE` section says".into()),
                    }),
                }
            }
            None if opts.audit => report.notices.push(format!(
                "{} distribution package{} (Debian/Alpine) listed but not audited: skipped without security data; pass --os-db DIR",
                os_packages.len(),
                if os_packages.len() == 1 { "" } else { "s" }
            )),
            None => {}
        }
    }

    if want(ScannerKind::Config) {
        config_findings(image, &tree, &mut report);
    }
    report.stats.files = layers.iter().map(|l| l.files).sum();
    if !opts.severities.is_empty() {
        report
            .findings
            .retain(|f| opts.severities.contains(&f.severity));
    }
    for e in &mut report.errors {
        e.message = secret::redact_in(&e.message);
    }
    report.findings.sort_by(|a, b| {
        (
            a.scanner,
            std::cmp::Reverse(a.severity),
            &a.file,
            &a.rule_id,
        )
            .cmp(&(
                b.scanner,
                std::cmp::Reverse(b.severity),
                &b.file,
                &b.rule_id,
            ))
    });
    if !without.is_empty() && want(ScannerKind::Vuln) {
        report.notices.push(format!(
            "{} binar{} without cargo-auditable data not audited: {}; build with `tug build` or `cargo auditable build`",
            without.len(),
            if without.len() == 1 { "y" } else { "ies" },
            without.join(", ")
        ));
    }
    Ok(ImageReport {
        report,
        layers,
        binaries_without_audit_data: without,
        binaries_audited: locks.iter().map(|(_, p, _)| format!("/{p}")).collect(),
        dependencies: locks
            .into_iter()
            .map(|(_, p, l)| (format!("/{p}"), l))
            .collect(),
        os_packages,
        os_release,
    })
}

/// `./a//b/` → `a/b`.
fn normalise(p: &str) -> String {
    p.split('/')
        .filter(|s| !s.is_empty() && *s != ".")
        .collect::<Vec<_>>()
        .join("/")
}

fn finding(id: &str, file: &str, message: String) -> Finding {
    let r = rules::rule(id);
    Finding {
        scanner: ScannerKind::Config,
        rule_id: r.id.into(),
        severity: r.severity,
        title: r.title.into(),
        message,
        file: file.into(),
        line: 0,
        col: 0,
        fix: Some(r.fix.into()),
        advisory: None,
        redacted: None,
        fingerprint: None,
        commit: None,
    }
}

/// Whether a value is a secret: a credential-like name with a literal
/// value, or a value a secret rule recognises.
fn secret_value(key: &str, value: &str) -> Option<String> {
    if crate::config::is_secret_name(key) && crate::config::is_literal_secret(value) {
        return Some(secret::redact(value));
    }
    let line = format!("{key}={value}");
    secret::scan_text(&line, "", &secret::Allowlist::default())
        .into_iter()
        .next()
        .map(|f| f.redacted.unwrap_or_else(|| secret::redact(value)))
}

fn config_findings(image: &RawImage, tree: &Tree, report: &mut Report) {
    let cfg = match image.config_json() {
        Ok(c) => c,
        Err(e) => {
            report.errors.push(FileError {
                file: PathBuf::from("config"),
                line: 0,
                col: 0,
                message: format!("image config is not JSON: {e}"),
                hint: None,
            });
            return;
        }
    };
    let c = &cfg["config"];
    let user = c["User"].as_str().unwrap_or("");
    if rules::is_root_user(user) {
        let shown = if user.is_empty() {
            "no USER (root)".to_string()
        } else {
            format!("USER {user}")
        };
        report.findings.push(finding(
            rules::ROOT_USER,
            "config",
            format!("the image runs as root: {shown}"),
        ));
    }
    let ports: Vec<&String> = c["ExposedPorts"]
        .as_object()
        .map(|m| m.keys().collect())
        .unwrap_or_default();
    let health = c["Healthcheck"]["Test"]
        .as_array()
        .is_some_and(|t| t.first().and_then(|v| v.as_str()) != Some("NONE") && !t.is_empty());
    if !ports.is_empty() && !health {
        report.findings.push(finding(
            rules::NO_HEALTHCHECK,
            "config",
            format!(
                "port {} is exposed but the image has no HEALTHCHECK",
                ports
                    .iter()
                    .map(|p| p.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    for kv in c["Env"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str())
    {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        if let Some(red) = secret_value(k, v) {
            let mut f = finding(
                rules::SECRET_IN_ENV,
                "config",
                format!("ENV {k} holds a secret ({red})"),
            );
            f.redacted = Some(red);
            report.findings.push(f);
        }
    }
    for (k, v) in c["Labels"].as_object().into_iter().flatten() {
        if let Some(red) = v.as_str().and_then(|v| secret_value(k, v)) {
            let mut f = finding(
                rules::SECRET_IN_LABEL,
                "config",
                format!("label {k} holds a secret ({red})"),
            );
            f.redacted = Some(red);
            report.findings.push(f);
        }
    }
    for (path, n) in &tree.nodes {
        let shown = format!("/{path}");
        if rules::is_world_writable(n.mode, n.is_dir) {
            report.findings.push(finding(
                rules::WORLD_WRITABLE,
                &shown,
                format!(
                    "{shown} is writable by every user (mode {:o}, layer {})",
                    n.mode & 0o7777,
                    n.layer
                ),
            ));
        }
        if !n.is_dir && rules::is_setuid(n.mode) {
            report.findings.push(finding(
                rules::SETUID,
                &shown,
                format!(
                    "{shown} is setuid/setgid (mode {:o}, layer {})",
                    n.mode & 0o7777,
                    n.layer
                ),
            ));
        }
    }
}
