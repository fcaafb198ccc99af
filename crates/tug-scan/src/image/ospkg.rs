//! Distribution packages in an image: Debian's `/var/lib/dpkg/status` and
//! Alpine's `/lib/apk/db/installed`, with the release from
//! `/etc/os-release`, audited against a distribution's security data read
//! from a directory (`--os-db DIR`):
//!
//! ```text
//! DIR/debian.json              the Debian security tracker's JSON
//!                              (security-tracker.debian.org/tracker/data/json)
//! DIR/alpine/v3.19/main.json   Alpine's secdb, one file per repository
//! DIR/alpine/v3.19/community.json
//! ```
//!
//! Debian matches by source package and release codename (`fixed_version`
//! of the release, compared as dpkg does; `open` means no fix yet); Alpine
//! by origin package and `v<major>.<minor>` (the `secfixes` versions,
//! compared as apk does).

use crate::finding::{AdvisoryInfo, AdvisoryKind, Finding, ScannerKind, Severity};
use serde::Serialize;
use serde_json::Value;
use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::path::Path;

pub const DPKG_STATUS: &str = "var/lib/dpkg/status";
pub const APK_INSTALLED: &str = "lib/apk/db/installed";
pub const OS_RELEASE: [&str; 2] = ["etc/os-release", "usr/lib/os-release"];

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Distro {
    Debian,
    Alpine,
}

/// One installed package.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OsPackage {
    pub distro: Distro,
    pub name: String,
    pub version: String,
    pub arch: Option<String>,
    /// The source package (Debian) or origin (Alpine) and its version.
    pub source: String,
    pub source_version: String,
}

impl OsPackage {
    /// The package URL (`pkg:deb/debian/…`, `pkg:apk/alpine/…`).
    pub fn purl(&self, release: Option<&str>) -> String {
        let (ty, ns) = match self.distro {
            Distro::Debian => ("deb", "debian"),
            Distro::Alpine => ("apk", "alpine"),
        };
        let mut q = Vec::new();
        if let Some(a) = &self.arch {
            q.push(format!("arch={a}"));
        }
        if let Some(r) = release {
            q.push(format!("distro={r}"));
        }
        let version = self.version.replace(':', "%3A");
        let mut p = format!("pkg:{ty}/{ns}/{}@{version}", self.name);
        if !q.is_empty() {
            p.push('?');
            p.push_str(&q.join("&"));
        }
        p
    }
}

/// The paragraphs of a dpkg/apk database: blank-line separated blocks of
/// `key: value` (dpkg) or `k:value` (apk) lines; continuation lines skipped.
fn blocks(text: &str, sep: &str) -> Vec<BTreeMap<String, String>> {
    let mut out = Vec::new();
    let mut cur = BTreeMap::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            continue;
        }
        if line.starts_with([' ', '\t']) {
            continue;
        }
        if let Some((k, v)) = line.split_once(sep) {
            cur.insert(k.trim().to_string(), v.trim().to_string());
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// The installed packages of a dpkg status file.
pub fn parse_dpkg_status(text: &str) -> Vec<OsPackage> {
    blocks(text, ":")
        .into_iter()
        .filter(|b| {
            b.get("Status")
                .is_some_and(|s| s.split_whitespace().last() == Some("installed"))
        })
        .filter_map(|b| {
            let name = b.get("Package")?.clone();
            let version = b.get("Version")?.clone();
            // `Source: name` or `Source: name (version)`.
            let (source, source_version) = match b.get("Source") {
                Some(s) => match s.split_once('(') {
                    Some((n, v)) => (
                        n.trim().to_string(),
                        v.trim_end_matches(')').trim().to_string(),
                    ),
                    None => (s.trim().to_string(), version.clone()),
                },
                None => (name.clone(), version.clone()),
            };
            Some(OsPackage {
                distro: Distro::Debian,
                name,
                version,
                arch: b.get("Architecture").cloned(),
                source,
                source_version,
            })
        })
        .collect()
}

/// The installed packages of an apk database.
pub fn parse_apk_installed(text: &str) -> Vec<OsPackage> {
    blocks(text, ":")
        .into_iter()
        .filter_map(|b| {
            let name = b.get("P")?.clone();
            let version = b.get("V")?.clone();
            Some(OsPackage {
                distro: Distro::Alpine,
                source: b.get("o").cloned().unwrap_or_else(|| name.clone()),
                source_version: version.clone(),
                name,
                version,
                arch: b.get("A").cloned(),
            })
        })
        .collect()
}

/// `ID`, `VERSION_ID` and `VERSION_CODENAME` of an os-release file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct OsRelease {
    pub id: String,
    pub version_id: String,
    pub codename: String,
}

pub fn parse_os_release(text: &str) -> OsRelease {
    let mut r = OsRelease::default();
    for line in text.lines() {
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let v = v.trim().trim_matches('"').trim_matches('\'').to_string();
        match k.trim() {
            "ID" => r.id = v,
            "VERSION_ID" => r.version_id = v,
            "VERSION_CODENAME" => r.codename = v,
            _ => {}
        }
    }
    r
}

impl OsRelease {
    /// The release the security data is keyed by: Debian's codename,
    /// Alpine's `v<major>.<minor>`.
    pub fn key(&self, distro: Distro) -> Option<String> {
        match distro {
            Distro::Debian => (!self.codename.is_empty()).then(|| self.codename.clone()),
            Distro::Alpine => {
                let mut parts = self.version_id.split('.');
                match (parts.next(), parts.next()) {
                    (Some(a), Some(b)) if !a.is_empty() => Some(format!("v{a}.{b}")),
                    _ => None,
                }
            }
        }
    }
}

/// apk's version order: dotted numbers, a letter, `_alpha`…`_rc` before
/// the release and `_cvs`…`_p` after it, then `-rN`.
pub fn apk_cmp(a: &str, b: &str) -> Ordering {
    fn tokens(v: &str) -> Vec<(u8, u64, String)> {
        let (main, rev) = match v.rsplit_once("-r") {
            Some((m, r)) if r.bytes().all(|c| c.is_ascii_digit()) && !r.is_empty() => (m, r),
            _ => (v, "0"),
        };
        let mut out = Vec::new();
        let mut parts = main.split('_');
        for n in parts.next().unwrap_or("").split('.') {
            let digits: String = n.chars().take_while(char::is_ascii_digit).collect();
            let letter: String = n.chars().skip_while(char::is_ascii_digit).collect();
            out.push((2, digits.parse().unwrap_or(0), String::new()));
            if !letter.is_empty() {
                out.push((3, 0, letter));
            }
        }
        for s in parts {
            let name: String = s.chars().take_while(|c| !c.is_ascii_digit()).collect();
            let num: u64 = s
                .trim_start_matches(|c: char| !c.is_ascii_digit())
                .parse()
                .unwrap_or(0);
            let rank = match name.as_str() {
                "alpha" => 0,
                "beta" => 1,
                "pre" => 2,
                "rc" => 3,
                "cvs" => 5,
                "svn" => 6,
                "git" => 7,
                "hg" => 8,
                "p" => 9,
                _ => 4,
            };
            out.push((
                if rank < 4 { 1 } else { 4 },
                rank * 1_000_000 + num,
                String::new(),
            ));
        }
        // The release itself sorts between pre-release and post-release suffixes.
        out.push((1, 4_000_000, String::new()));
        out.push((5, rev.parse().unwrap_or(0), String::new()));
        out
    }
    tokens(a).cmp(&tokens(b))
}

fn deb_lt(installed: &str, fixed: &str) -> Option<bool> {
    let i: debversion::Version = installed.parse().ok()?;
    let f: debversion::Version = fixed.parse().ok()?;
    Some(i < f)
}

/// Why the audit could not run.
#[derive(Debug, thiserror::Error)]
pub enum OsDbError {
    #[error("{}: {source}", path.display())]
    Read {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: not the expected JSON: {detail}", path.display())]
    Parse {
        path: std::path::PathBuf,
        detail: String,
    },
}

fn read_json(path: &Path) -> Result<Option<Value>, OsDbError> {
    match std::fs::read(path) {
        Ok(data) => serde_json::from_slice(&data)
            .map(Some)
            .map_err(|e| OsDbError::Parse {
                path: path.to_path_buf(),
                detail: e.to_string(),
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(OsDbError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

fn urgency(u: &str) -> Severity {
    match u.trim_end_matches('*') {
        "unimportant" | "low" => Severity::Low,
        "high" => Severity::High,
        _ => Severity::Medium,
    }
}

fn finding(
    p: &OsPackage,
    file: &str,
    id: &str,
    severity: Severity,
    fixed: Option<&str>,
    release: &str,
    description: &str,
) -> Finding {
    let fix = fixed.map(|f| format!("upgrade {} to {f} or later", p.source));
    let title = if description.is_empty() {
        format!("{id} in {} {}", p.name, p.version)
    } else {
        description.chars().take(120).collect()
    };
    Finding {
        scanner: ScannerKind::Vuln,
        rule_id: id.to_string(),
        severity,
        title,
        message: format!(
            "{} {} (source {} {}) on {release}: {id}, {}",
            p.name,
            p.version,
            p.source,
            p.source_version,
            match fixed {
                Some(f) => format!("fixed in {f}"),
                None => "no fix yet".into(),
            }
        ),
        file: file.to_string(),
        line: 0,
        col: 0,
        fix,
        advisory: Some(AdvisoryInfo {
            id: id.to_string(),
            package: p.name.clone(),
            version: p.version.clone(),
            kind: AdvisoryKind::Vulnerability,
            aliases: Vec::new(),
            cvss: None,
            cvss_score: None,
            url: None,
            date: String::new(),
            patched: fixed.map(|f| vec![f.to_string()]).unwrap_or_default(),
            path: vec![p.source.clone()],
        }),
        redacted: None,
        fingerprint: None,
        commit: None,
    }
}

/// What the audit did: findings, and a note when it could not match.
#[derive(Debug, Default)]
pub struct OsAudit {
    pub findings: Vec<Finding>,
    pub notices: Vec<String>,
}

/// Audits the packages against the security data in `dir`.
pub fn audit(
    packages: &[OsPackage],
    release: &OsRelease,
    dir: &Path,
) -> Result<OsAudit, OsDbError> {
    let mut out = OsAudit::default();
    let debs: Vec<&OsPackage> = packages
        .iter()
        .filter(|p| p.distro == Distro::Debian)
        .collect();
    let apks: Vec<&OsPackage> = packages
        .iter()
        .filter(|p| p.distro == Distro::Alpine)
        .collect();
    if !debs.is_empty() {
        match (
            release.key(Distro::Debian),
            read_json(&dir.join("debian.json"))?,
        ) {
            (None, _) => out.notices.push(
                "Debian packages not audited: the image's os-release names no VERSION_CODENAME"
                    .into(),
            ),
            (_, None) => out.notices.push(format!(
                "Debian packages not audited: no {} (the Debian security tracker's JSON)",
                dir.join("debian.json").display()
            )),
            (Some(codename), Some(db)) => {
                for p in debs {
                    let Some(cves) = db[&p.source].as_object() else {
                        continue;
                    };
                    for (id, cve) in cves {
                        let r = &cve["releases"][&codename];
                        let status = r["status"].as_str().unwrap_or("");
                        let fixed = r["fixed_version"].as_str();
                        let affected = match (status, fixed) {
                            ("open", _) => true,
                            ("resolved", Some(f)) if f != "0" => {
                                deb_lt(&p.source_version, f).unwrap_or(false)
                            }
                            _ => false,
                        };
                        if affected {
                            out.findings.push(finding(
                                p,
                                &format!("/{DPKG_STATUS}"),
                                id,
                                urgency(r["urgency"].as_str().unwrap_or("")),
                                fixed.filter(|_| status == "resolved"),
                                &codename,
                                cve["description"].as_str().unwrap_or(""),
                            ));
                        }
                    }
                }
            }
        }
    }
    if !apks.is_empty() {
        let Some(version) = release.key(Distro::Alpine) else {
            out.notices.push(
                "Alpine packages not audited: the image's os-release names no VERSION_ID".into(),
            );
            return Ok(out);
        };
        let rdir = dir.join("alpine").join(&version);
        let mut fixes: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
        let entries = match std::fs::read_dir(&rdir) {
            Ok(e) => e
                .filter_map(Result::ok)
                .map(|e| e.path())
                .collect::<Vec<_>>(),
            Err(_) => {
                out.notices.push(format!(
                    "Alpine packages not audited: no secdb files in {}",
                    rdir.display()
                ));
                return Ok(out);
            }
        };
        for path in entries
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
        {
            let Some(db) = read_json(path)? else { continue };
            for pkg in db["packages"].as_array().into_iter().flatten() {
                let name = pkg["pkg"]["name"].as_str().unwrap_or_default().to_string();
                for (fixed, ids) in pkg["pkg"]["secfixes"].as_object().into_iter().flatten() {
                    for id in ids
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                    {
                        // "CVE-2023-1 CVE-2023-2" lines hold aliases after the first id.
                        let id = id.split_whitespace().next().unwrap_or(id);
                        fixes
                            .entry(name.clone())
                            .or_default()
                            .push((fixed.clone(), id.to_string()));
                    }
                }
            }
        }
        for p in apks {
            for (fixed, id) in fixes.get(&p.source).into_iter().flatten() {
                if fixed != "0" && apk_cmp(&p.source_version, fixed) == Ordering::Less {
                    out.findings.push(finding(
                        p,
                        &format!("/{APK_INSTALLED}"),
                        id,
                        Severity::Medium,
                        Some(fixed),
                        &version,
                        "",
                    ));
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "Package: libssl3\nStatus: install ok installed\nArchitecture: amd64\nSource: openssl (3.0.11-1~deb12u1)\nVersion: 3.0.11-1~deb12u1\nDescription: ssl\n more text\n\nPackage: gone\nStatus: deinstall ok config-files\nVersion: 1\n\nPackage: zlib1g\nStatus: install ok installed\nSource: zlib\nVersion: 1:1.2.13.dfsg-1\n";

    #[test]
    fn dpkg_status_lists_installed_packages_with_their_source() {
        let p = parse_dpkg_status(STATUS);
        assert_eq!(p.len(), 2);
        assert_eq!(
            (p[0].name.as_str(), p[0].source.as_str()),
            ("libssl3", "openssl")
        );
        assert_eq!(p[0].source_version, "3.0.11-1~deb12u1");
        assert_eq!(
            (p[1].source.as_str(), p[1].source_version.as_str()),
            ("zlib", "1:1.2.13.dfsg-1")
        );
        assert_eq!(
            p[1].purl(Some("debian-12")),
            "pkg:deb/debian/zlib1g@1%3A1.2.13.dfsg-1?distro=debian-12"
        );
    }

    #[test]
    fn apk_database_and_os_release() {
        let p = parse_apk_installed(
            "C:Q1x=\nP:libcrypto3\nV:3.1.4-r0\nA:x86_64\no:openssl\n\nP:musl\nV:1.2.4-r2\n",
        );
        assert_eq!(p.len(), 2);
        assert_eq!(
            (p[0].source.as_str(), p[1].source.as_str()),
            ("openssl", "musl")
        );
        let r = parse_os_release("ID=alpine\nVERSION_ID=3.19.1\n");
        assert_eq!(r.key(Distro::Alpine).as_deref(), Some("v3.19"));
        let d = parse_os_release("ID=debian\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\n");
        assert_eq!(d.key(Distro::Debian).as_deref(), Some("bookworm"));
    }

    #[test]
    fn apk_versions_order_as_apk_does() {
        use Ordering::*;
        for (a, b, o) in [
            ("3.1.4-r0", "3.1.4-r1", Less),
            ("3.1.4-r5", "3.1.10-r0", Less),
            ("1.2.3_rc1-r0", "1.2.3-r0", Less),
            ("1.2.3_p1-r0", "1.2.3-r0", Greater),
            ("1.2.3a-r0", "1.2.3-r0", Greater),
            ("1.2-r0", "1.2.0-r0", Less),
            ("2.0-r0", "2.0-r0", Equal),
        ] {
            assert_eq!(apk_cmp(a, b), o, "{a} vs {b}");
        }
    }

    #[test]
    fn audit_matches_by_source_release_and_version() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("debian.json"),
            r#"{"openssl": {
                "CVE-2024-0001": {"description": "fixed later", "releases": {"bookworm": {"status": "resolved", "fixed_version": "3.0.13-1~deb12u1", "urgency": "high"}}},
                "CVE-2024-0002": {"releases": {"bookworm": {"status": "resolved", "fixed_version": "3.0.9-1", "urgency": "low"}}},
                "CVE-2024-0003": {"releases": {"bookworm": {"status": "resolved", "fixed_version": "0", "urgency": "low"}}},
                "CVE-2024-0004": {"releases": {"bookworm": {"status": "open", "urgency": "medium"}}},
                "CVE-2024-0005": {"releases": {"trixie": {"status": "open", "urgency": "high"}}}
            }}"#,
        )
        .unwrap();
        let release = parse_os_release("ID=debian\nVERSION_CODENAME=bookworm\n");
        let a = audit(&parse_dpkg_status(STATUS), &release, dir.path()).unwrap();
        let ids: Vec<(&str, Severity)> = a
            .findings
            .iter()
            .map(|f| (f.rule_id.as_str(), f.severity))
            .collect();
        assert_eq!(
            ids,
            [
                ("CVE-2024-0001", Severity::High),
                ("CVE-2024-0004", Severity::Medium)
            ]
        );
        assert!(a.findings[0].message.contains("fixed in 3.0.13-1~deb12u1"));

        std::fs::create_dir_all(dir.path().join("alpine/v3.19")).unwrap();
        std::fs::write(
            dir.path().join("alpine/v3.19/main.json"),
            r#"{"distroversion": "v3.19", "packages": [{"pkg": {"name": "openssl", "secfixes": {"3.1.4-r1": ["CVE-2023-5678"], "3.0.0-r0": ["CVE-2021-1"], "0": ["CVE-1999-1"]}}}]}"#,
        )
        .unwrap();
        let apks = parse_apk_installed("P:libcrypto3\nV:3.1.4-r0\no:openssl\n");
        let a = audit(&apks, &parse_os_release("VERSION_ID=3.19.0\n"), dir.path()).unwrap();
        let ids: Vec<&str> = a.findings.iter().map(|f| f.rule_id.as_str()).collect();
        assert_eq!(ids, ["CVE-2023-5678"]);
        let a = audit(&apks, &parse_os_release("VERSION_ID=3.18.0\n"), dir.path()).unwrap();
        assert!(a.findings.is_empty() && a.notices[0].contains("no secdb files"));
    }
}
