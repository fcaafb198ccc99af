//! tug.yaml: every loosening of the hardened defaults is reported.

use super::{finding, is_literal_secret, is_secret_name, unpinned_image, yamlpos::find_line};
use crate::finding::{FileError, Finding, Severity};
use std::path::Path;
use tug_spec::MountSource;

pub fn scan(text: &str, rel: &str, path: &Path) -> (Vec<Finding>, Vec<FileError>) {
    let stack = match tug_spec::parse_str(text, path) {
        Ok(s) => s,
        Err(errs) => {
            let errors = errs
                .0
                .into_iter()
                .map(|e| FileError {
                    file: path.to_path_buf(),
                    line: e.line,
                    col: e.col,
                    message: e.message,
                    hint: e.hint,
                })
                .collect();
            return (Vec::new(), errors);
        }
    };
    let mut out = Vec::new();
    let end = usize::MAX;
    for (name, svc) in &stack.services {
        let at = |keys: &[&str]| {
            let mut p = vec!["services", name.as_str()];
            p.extend_from_slice(keys);
            find_line(text, 0, end, &p)
        };
        let s = &svc.security;
        if s.privileged {
            out.push(finding(
                "TUGC001",
                None,
                rel,
                at(&["security", "privileged"]),
                format!("service `{name}` sets security.privileged: true"),
            ));
        }
        if !s.read_only {
            out.push(finding(
                "TUGC007",
                None,
                rel,
                at(&["security", "read_only"]),
                format!("service `{name}` sets security.read_only: false"),
            ));
        }
        if !s.cap_add.is_empty() {
            let sev = if s.cap_add.iter().any(|c| dangerous_cap(c)) {
                Severity::High
            } else {
                Severity::Medium
            };
            out.push(finding(
                "TUGC005",
                Some(sev),
                rel,
                at(&["security", "cap_add"]),
                format!("service `{name}` adds {}", s.cap_add.join(", ")),
            ));
        }
        if let Some(u) = &s.user {
            let uid = u.split(':').next().unwrap_or_default();
            if uid == "root" || uid == "0" {
                out.push(finding(
                    "TUGC006",
                    None,
                    rel,
                    at(&["security", "user"]),
                    format!("service `{name}` sets security.user: {u}"),
                ));
            }
        }
        if s.seccomp
            .as_deref()
            .is_some_and(|p| p.eq_ignore_ascii_case("unconfined"))
        {
            out.push(finding(
                "TUGC013",
                None,
                rel,
                at(&["security", "seccomp"]),
                format!("service `{name}` sets security.seccomp: unconfined"),
            ));
        }
        if !s.no_new_privileges {
            out.push(finding(
                "TUGC012",
                None,
                rel,
                at(&["security", "no_new_privileges"]),
                format!("service `{name}` sets security.no_new_privileges: false"),
            ));
        }
        for m in &svc.volumes {
            if let MountSource::Bind(p) = &m.source {
                if p.ends_with("docker.sock") || p.ends_with("podman.sock") {
                    out.push(finding(
                        "TUGC004",
                        None,
                        rel,
                        at(&["volumes"]),
                        format!("service `{name}` mounts {}", p.display()),
                    ));
                }
            }
        }
        if let Some(img) = &svc.image {
            if let Some(why) = unpinned_image(img) {
                out.push(finding(
                    "TUGC009",
                    None,
                    rel,
                    at(&["image"]),
                    format!("service `{name}` uses {why} image `{img}`"),
                ));
            }
        }
        for (k, v) in &svc.env {
            if is_secret_name(k) && is_literal_secret(v) && text.contains(&format!("{k}:")) {
                out.push(finding(
                    "TUGC011",
                    None,
                    rel,
                    at(&["env", k]),
                    format!("service `{name}` sets {k} to a literal value"),
                ));
            }
        }
    }
    (out, Vec::new())
}

pub fn dangerous_cap(c: &str) -> bool {
    let c = c.trim().to_ascii_uppercase();
    let c = c.strip_prefix("CAP_").unwrap_or(&c);
    matches!(
        c,
        "SYS_ADMIN"
            | "NET_ADMIN"
            | "ALL"
            | "SYS_PTRACE"
            | "SYS_MODULE"
            | "DAC_READ_SEARCH"
            | "SYS_RAWIO"
            | "BPF"
    )
}
