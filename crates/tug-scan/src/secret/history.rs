//! `--git-history`: secrets in the added lines of every commit, read from
//! `git log -p` so no git library is needed.

use super::{scan_text, Allowlist};
use crate::finding::{CommitInfo, Finding};
use std::path::Path;
use std::process::Command;

/// Scans every commit reachable from any ref under `repo`.
pub fn scan_history(repo: &Path, allow: &Allowlist) -> Result<Vec<Finding>, String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args([
            "log",
            "-p",
            "--all",
            "--no-color",
            "--no-ext-diff",
            "--unified=0",
            "--format=commit %H",
        ])
        .output()
        .map_err(|e| format!("cannot run git: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "git log failed in {}: {}",
            repo.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(scan_patch(&String::from_utf8_lossy(&out.stdout), allow))
}

/// One run of consecutive added lines, scanned as a block so multi-line
/// secrets (private keys) still match.
struct Hunk {
    commit: String,
    file: String,
    first_line: usize,
    text: String,
}

/// Scans `git log -p --unified=0 --format='commit %H'` output.
pub fn scan_patch(patch: &str, allow: &Allowlist) -> Vec<Finding> {
    let mut findings = Vec::new();
    let mut commit = String::new();
    let mut file = String::new();
    let mut next_line = 0usize;
    let mut hunk: Option<Hunk> = None;
    let flush = |h: Option<Hunk>, findings: &mut Vec<Finding>| {
        let Some(h) = h else { return };
        if allow.allows_path(&h.file) || super::is_lockfile(h.file.rsplit('/').next().unwrap_or(""))
        {
            return;
        }
        for mut f in scan_text(&h.text, &h.file, allow) {
            f.line += h.first_line - 1;
            f.commit = Some(CommitInfo {
                commit: h.commit.clone(),
            });
            findings.push(f);
        }
    };
    for line in patch.lines() {
        if let Some(c) = line.strip_prefix("commit ") {
            flush(hunk.take(), &mut findings);
            commit = c.trim().to_string();
        } else if let Some(f) = line.strip_prefix("+++ ") {
            flush(hunk.take(), &mut findings);
            file = f.strip_prefix("b/").unwrap_or(f).to_string();
        } else if line.starts_with("@@") {
            flush(hunk.take(), &mut findings);
            // @@ -a,b +c,d @@
            next_line = line
                .split_whitespace()
                .find_map(|p| p.strip_prefix('+'))
                .and_then(|p| p.split(',').next())
                .and_then(|n| n.parse().ok())
                .unwrap_or(1);
        } else if let Some(added) = line.strip_prefix('+') {
            let h = hunk.get_or_insert_with(|| Hunk {
                commit: commit.clone(),
                file: file.clone(),
                first_line: next_line,
                text: String::new(),
            });
            h.text.push_str(added);
            h.text.push('\n');
            next_line += 1;
        } else if !line.starts_with('-') && !line.starts_with('\\') {
            flush(hunk.take(), &mut findings);
        }
    }
    flush(hunk.take(), &mut findings);
    findings
}
