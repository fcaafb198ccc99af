//! Built-in equivalents of the actions most workflows use, and the advice
//! for every other `uses:`.
//!
//! | action | here |
//! |---|---|
//! | actions/checkout | the workspace already is the project; another repository or a `path` is not supported |
//! | actions/cache | directories saved under tug's cache directory by key, restored by key or `restore-keys` prefix, output `cache-hit` |
//! | actions/upload-artifact, download-artifact | files kept in the run's state directory, by name |
//! | actions/setup-*, astral-sh/setup-uv, rui314/setup-mold, taiki-e/install-action | accepted when the tool is already on the host's PATH |
//! | dtolnay/rust-toolchain, actions-rs/toolchain, actions-rust-lang/setup-rust-toolchain | the host's toolchain (`rustc` on PATH) |
//! | Swatinem/rust-cache | nothing to do: the host keeps cargo's caches between runs |
//! | `./dir` (an action of the repository) | a composite one's steps, expanded by the importer; JavaScript and Docker ones are not run |

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Builtin {
    Checkout,
    Cache,
    UploadArtifact,
    DownloadArtifact,
    /// A setup action whose tools are on the host.
    HostTool(Vec<String>),
    RustToolchain,
    RustCache,
}

impl Builtin {
    /// Whether the action has a step after the job's steps (cache save).
    pub fn has_post(&self) -> bool {
        matches!(self, Builtin::Cache)
    }
}

/// What to do with a `uses:`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Builtin(Builtin),
    /// No equivalent here: the job is left out, with this advice.
    Unsupported(String),
}

/// `owner/repo` (lower case) of `owner/repo/path@ref`.
fn repo_of(uses: &str) -> String {
    let name = uses.split('@').next().unwrap_or(uses);
    name.split('/')
        .take(2)
        .collect::<Vec<_>>()
        .join("/")
        .to_ascii_lowercase()
}

/// Whether an executable is on PATH.
pub fn on_path(tool: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let Some(path) = std::env::var_os("PATH") else {
        return false;
    };
    std::env::split_paths(&path).any(|d| {
        std::fs::metadata(d.join(tool))
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    })
}

/// Decides what a `uses:` becomes; `with` holds its inputs as written.
pub fn classify(
    uses: &str,
    with: &BTreeMap<String, String>,
    on_path: &dyn Fn(&str) -> bool,
) -> Verdict {
    // The importer reads these from the workspace (composite actions run
    // there); without a workspace there is nothing to read.
    if uses.starts_with("./") || uses.starts_with("../") {
        return Verdict::Unsupported(format!(
            "`{uses}` is an action of this repository: import the workflow with its workspace to run it (composite actions only)"
        ));
    }
    if let Some(image) = uses.strip_prefix("docker://") {
        return Verdict::Unsupported(format!("`{uses}` runs an image: write it as `run: docker run --rm -v \"$PWD:$PWD\" -w \"$PWD\" {image}`"));
    }
    let repo = repo_of(uses);
    let need = |tools: &[&str], what: &str| -> Verdict {
        // Any one of the names will do (python3 or python).
        if let Some(found) = tools.iter().find(|t| on_path(t)) {
            Verdict::Builtin(Builtin::HostTool(vec![found.to_string()]))
        } else {
            Verdict::Unsupported(format!(
                "`{uses}` installs {what}, which is not on this host's PATH: install it on the host and the step is accepted as it is"
            ))
        }
    };
    match repo.as_str() {
        "actions/checkout" => {
            let other = with
                .get("repository")
                .is_some_and(|r| !r.contains("github.repository"));
            if other {
                Verdict::Unsupported(format!("`{uses}` checks out another repository: clone it with a `run: git clone …` step"))
            } else if with.get("path").is_some_and(|p| !p.is_empty() && p != ".") {
                Verdict::Unsupported(format!("`{uses}` with `path:` checks out into a subdirectory: tug runs jobs in the project itself; drop `path:`"))
            } else {
                Verdict::Builtin(Builtin::Checkout)
            }
        }
        "actions/cache" => {
            if uses.contains("/restore@") || uses.contains("/save@") {
                Verdict::Unsupported(format!("`{uses}`: use `actions/cache` (restore and save in one) instead"))
            } else {
                Verdict::Builtin(Builtin::Cache)
            }
        }
        "actions/upload-artifact" => Verdict::Builtin(Builtin::UploadArtifact),
        "actions/download-artifact" => Verdict::Builtin(Builtin::DownloadArtifact),
        "actions/setup-node" => need(&["node"], "Node.js"),
        "actions/setup-python" => need(&["python3", "python"], "Python"),
        "actions/setup-go" => need(&["go"], "Go"),
        "actions/setup-java" => need(&["java"], "a JDK"),
        "actions/setup-dotnet" => need(&["dotnet"], ".NET"),
        "astral-sh/setup-uv" => need(&["uv"], "uv"),
        "rui314/setup-mold" => need(&["mold"], "mold"),
        "taiki-e/install-action" => {
            let tools: Vec<String> = with
                .get("tool")
                .map(|t| {
                    t.split([',', '\n'])
                        .map(|s| s.trim().split('@').next().unwrap_or("").to_string())
                        .filter(|s| !s.is_empty())
                        .collect()
                })
                .unwrap_or_default();
            let tools = if tools.is_empty() {
                // `taiki-e/install-action@cargo-nextest`: the tool is the ref.
                uses.split('@').nth(1).map(|t| vec![t.to_string()]).unwrap_or_default()
            } else {
                tools
            };
            let missing: Vec<&String> = tools.iter().filter(|t| !on_path(t)).collect();
            if !tools.is_empty() && missing.is_empty() {
                Verdict::Builtin(Builtin::HostTool(tools))
            } else {
                let names = missing.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ");
                Verdict::Unsupported(format!("`{uses}` installs {names}: install it on the host (`cargo install …`) and the step is accepted"))
            }
        }
        "dtolnay/rust-toolchain" | "actions-rs/toolchain" | "actions-rust-lang/setup-rust-toolchain" => {
            if on_path("rustc") {
                Verdict::Builtin(Builtin::RustToolchain)
            } else {
                Verdict::Unsupported(format!("`{uses}` needs a Rust toolchain: install rustup on the host"))
            }
        }
        "swatinem/rust-cache" => Verdict::Builtin(Builtin::RustCache),
        "actions/github-script" => Verdict::Unsupported(format!("`{uses}` calls the GitHub API: it has no local equivalent; drop the step or guard it with `if: github.event_name != 'local'`")),
        _ => Verdict::Unsupported(format!(
            "`{uses}` has no built-in equivalent: replace it with `run:` steps that do the same on the host"
        )),
    }
}

/// Where the built-ins keep their files.
pub struct Places<'a> {
    pub workspace: &'a Path,
    /// The run's artifacts, by name.
    pub artifacts: &'a Path,
    /// Saved caches, by key.
    pub cache: &'a Path,
}

/// Runs the main part of a built-in; returns its outputs and a line saying
/// what it did.
pub fn run(
    b: &Builtin,
    with: &BTreeMap<String, String>,
    places: &Places,
) -> Result<(BTreeMap<String, String>, String), String> {
    let mut out = BTreeMap::new();
    let said = match b {
        Builtin::Checkout => "checkout: the workspace is the project".to_string(),
        Builtin::RustCache => "rust-cache: the host keeps cargo's caches between runs".to_string(),
        Builtin::HostTool(tools) => format!("using {} from the host", tools.join(", ")),
        Builtin::RustToolchain => {
            let v = std::process::Command::new("rustc")
                .arg("--version")
                .output()
                .ok()
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
                .unwrap_or_default();
            out.insert(
                "name".into(),
                with.get("toolchain")
                    .cloned()
                    .unwrap_or_else(|| "stable".into()),
            );
            out.insert(
                "cachekey".into(),
                v.split_whitespace().nth(1).unwrap_or("").to_string(),
            );
            format!("rust-toolchain: using the host's {v}")
        }
        Builtin::Cache => {
            let key = with
                .get("key")
                .filter(|k| !k.is_empty())
                .ok_or("actions/cache needs `key`")?;
            let paths = list(with.get("path").map(String::as_str).unwrap_or(""));
            if paths.is_empty() {
                return Err("actions/cache needs `path`".into());
            }
            let restore_keys = list(with.get("restore-keys").map(String::as_str).unwrap_or(""));
            let found = find_cache(places.cache, key, &restore_keys);
            match found {
                Some((dir, exact)) => {
                    restore_paths(&dir, &paths, places.workspace)?;
                    out.insert("cache-hit".into(), exact.to_string());
                    let k = std::fs::read_to_string(dir.join("key")).unwrap_or_default();
                    format!(
                        "cache: restored `{k}`{}",
                        if exact { "" } else { " (a restore key)" }
                    )
                }
                None => {
                    out.insert("cache-hit".into(), "false".into());
                    format!("cache: no entry for `{key}`")
                }
            }
        }
        Builtin::UploadArtifact => {
            let name = with
                .get("name")
                .filter(|n| !n.is_empty())
                .cloned()
                .unwrap_or_else(|| "artifact".into());
            let paths = list(with.get("path").map(String::as_str).unwrap_or(""));
            let dest = places.artifacts.join(safe_name(&name));
            let mut n = 0;
            for p in &paths {
                n += copy_matching(places.workspace, p, &dest)?;
            }
            if n == 0 {
                match with.get("if-no-files-found").map(String::as_str) {
                    Some("error") => {
                        return Err(format!(
                            "upload-artifact: no files match {}",
                            paths.join(", ")
                        ))
                    }
                    Some("ignore") => {}
                    _ => eprintln!(
                        "warning: upload-artifact: no files match {}",
                        paths.join(", ")
                    ),
                }
            }
            out.insert("artifact-id".into(), safe_name(&name));
            format!("upload-artifact: {n} file(s) as `{name}`")
        }
        Builtin::DownloadArtifact => {
            let target = resolve(
                places.workspace,
                with.get("path").map(String::as_str).unwrap_or("."),
            );
            let mut names = Vec::new();
            match with.get("name").filter(|n| !n.is_empty()) {
                Some(name) => {
                    let src = places.artifacts.join(safe_name(name));
                    if !src.is_dir() {
                        return Err(format!(
                            "download-artifact: no artifact named `{name}` in this run"
                        ));
                    }
                    copy_tree(&src, &target)?;
                    names.push(name.clone());
                }
                None => {
                    for e in std::fs::read_dir(places.artifacts)
                        .into_iter()
                        .flatten()
                        .flatten()
                    {
                        let n = e.file_name().to_string_lossy().to_string();
                        copy_tree(&e.path(), &target.join(&n))?;
                        names.push(n);
                    }
                }
            }
            out.insert("download-path".into(), target.display().to_string());
            format!(
                "download-artifact: {} into {}",
                names.join(", "),
                target.display()
            )
        }
    };
    Ok((out, said))
}

/// The part of a built-in that runs after the job's steps.
pub fn post(
    b: &Builtin,
    with: &BTreeMap<String, String>,
    outputs: &BTreeMap<String, String>,
    job_ok: bool,
    places: &Places,
) -> Result<String, String> {
    match b {
        Builtin::Cache => {
            let key = with.get("key").cloned().unwrap_or_default();
            if outputs.get("cache-hit").map(String::as_str) == Some("true") {
                return Ok(format!("cache: `{key}` was hit, not saved again"));
            }
            if !job_ok {
                return Ok(format!("cache: the job failed, `{key}` not saved"));
            }
            let paths = list(with.get("path").map(String::as_str).unwrap_or(""));
            let dir = places.cache.join(key_dir(&key));
            let tmp = places
                .cache
                .join(format!(".{}.{}", key_dir(&key), std::process::id()));
            let _ = std::fs::remove_dir_all(&tmp);
            for (i, p) in paths.iter().enumerate() {
                let src = resolve(places.workspace, p);
                if src.exists() {
                    copy_tree(&src, &tmp.join(i.to_string()))?;
                }
            }
            std::fs::create_dir_all(&tmp).map_err(|e| e.to_string())?;
            std::fs::write(tmp.join("key"), &key).map_err(|e| e.to_string())?;
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::rename(&tmp, &dir).map_err(|e| format!("saving cache `{key}`: {e}"))?;
            Ok(format!("cache: saved `{key}`"))
        }
        _ => Ok(String::new()),
    }
}

fn list(s: &str) -> Vec<String> {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

fn safe_name(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn key_dir(key: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// `~` is the home directory; relative paths are under the workspace.
fn resolve(ws: &Path, p: &str) -> PathBuf {
    if let Some(rest) = p.strip_prefix("~/") {
        if let Some(home) = std::env::var_os("HOME") {
            return PathBuf::from(home).join(rest);
        }
    }
    ws.join(p)
}

/// The exact key's entry, else the newest entry whose key starts with a restore key.
fn find_cache(root: &Path, key: &str, restore_keys: &[String]) -> Option<(PathBuf, bool)> {
    let exact = root.join(key_dir(key));
    if exact.join("key").is_file() {
        return Some((exact, true));
    }
    let entries: Vec<(String, PathBuf, std::time::SystemTime)> = std::fs::read_dir(root)
        .ok()?
        .flatten()
        .filter_map(|e| {
            let k = std::fs::read_to_string(e.path().join("key")).ok()?;
            let t = e.metadata().ok()?.modified().ok()?;
            Some((k, e.path(), t))
        })
        .collect();
    for prefix in restore_keys {
        if let Some((_, p, _)) = entries
            .iter()
            .filter(|(k, _, _)| k.starts_with(prefix.as_str()))
            .max_by_key(|(_, _, t)| *t)
        {
            return Some((p.clone(), false));
        }
    }
    None
}

fn restore_paths(dir: &Path, paths: &[String], ws: &Path) -> Result<(), String> {
    for (i, p) in paths.iter().enumerate() {
        let src = dir.join(i.to_string());
        if src.exists() {
            copy_tree(&src, &resolve(ws, p))?;
        }
    }
    Ok(())
}

/// Copies `src` (a file or a directory) to `dst`, symlinks as symlinks.
pub fn copy_tree(src: &Path, dst: &Path) -> Result<(), String> {
    let err = |p: &Path, e: std::io::Error| format!("copying {}: {e}", p.display());
    for entry in walkdir::WalkDir::new(src).follow_links(false) {
        let entry = entry.map_err(|e| e.to_string())?;
        let rel = entry.path().strip_prefix(src).unwrap_or(Path::new(""));
        let to = if rel.as_os_str().is_empty() {
            dst.to_path_buf()
        } else {
            dst.join(rel)
        };
        let ft = entry.file_type();
        if ft.is_dir() {
            std::fs::create_dir_all(&to).map_err(|e| err(&to, e))?;
        } else {
            if let Some(parent) = to.parent() {
                std::fs::create_dir_all(parent).map_err(|e| err(parent, e))?;
            }
            let _ = std::fs::remove_file(&to);
            if ft.is_symlink() {
                let target = std::fs::read_link(entry.path()).map_err(|e| err(entry.path(), e))?;
                std::os::unix::fs::symlink(target, &to).map_err(|e| err(&to, e))?;
            } else {
                std::fs::copy(entry.path(), &to).map_err(|e| err(entry.path(), e))?;
            }
        }
    }
    Ok(())
}

/// Copies the files matching `pattern` (a path or a glob, relative to the
/// workspace) into `dest`, keeping their paths; returns how many.
fn copy_matching(ws: &Path, pattern: &str, dest: &Path) -> Result<usize, String> {
    if pattern.starts_with('!') {
        return Ok(0);
    }
    let direct = resolve(ws, pattern);
    if !pattern.contains(['*', '?', '[']) {
        if !direct.exists() {
            return Ok(0);
        }
        // A directory's contents go to the artifact's root, as upload-artifact does.
        let to = if direct.is_dir() {
            dest.to_path_buf()
        } else {
            dest.join(direct.file_name().unwrap_or_default())
        };
        copy_tree(&direct, &to)?;
        return Ok(walkdir::WalkDir::new(&direct)
            .into_iter()
            .flatten()
            .filter(|e| e.file_type().is_file())
            .count());
    }
    let glob = globset::Glob::new(pattern.trim_start_matches("./"))
        .map_err(|e| format!("upload-artifact: bad pattern `{pattern}`: {e}"))?
        .compile_matcher();
    let mut n = 0;
    for e in walkdir::WalkDir::new(ws)
        .into_iter()
        .filter_entry(|e| e.file_name() != ".git")
        .flatten()
    {
        let Ok(rel) = e.path().strip_prefix(ws) else {
            continue;
        };
        if e.file_type().is_file() && glob.is_match(rel) {
            copy_tree(e.path(), &dest.join(rel))?;
            n += 1;
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        let none = BTreeMap::new();
        let yes = |_: &str| true;
        let no = |_: &str| false;
        assert_eq!(
            classify("actions/checkout@v4", &none, &no),
            Verdict::Builtin(Builtin::Checkout)
        );
        assert_eq!(
            classify("Swatinem/rust-cache@v2", &none, &no),
            Verdict::Builtin(Builtin::RustCache)
        );
        assert_eq!(
            classify("dtolnay/rust-toolchain@stable", &none, &yes),
            Verdict::Builtin(Builtin::RustToolchain)
        );
        assert!(
            matches!(classify("actions/setup-node@v4", &none, &no), Verdict::Unsupported(m) if m.contains("Node.js"))
        );
        assert!(
            matches!(classify("softprops/action-gh-release@v2", &none, &yes), Verdict::Unsupported(m) if m.contains("run:"))
        );
        let mut w = BTreeMap::new();
        w.insert("repository".to_string(), "rust-lang/rust".to_string());
        assert!(matches!(
            classify("actions/checkout@v4", &w, &yes),
            Verdict::Unsupported(_)
        ));
        let mut w = BTreeMap::new();
        w.insert("tool".to_string(), "cargo-hack, just@1".to_string());
        assert_eq!(
            classify("taiki-e/install-action@v2", &w, &yes),
            Verdict::Builtin(Builtin::HostTool(vec!["cargo-hack".into(), "just".into()]))
        );
    }

    #[test]
    fn cache_round_trip_with_restore_keys() {
        let d = tempfile::tempdir().unwrap();
        let ws = d.path().join("ws");
        let cache = d.path().join("cache");
        let arts = d.path().join("arts");
        std::fs::create_dir_all(ws.join("target/debug")).unwrap();
        std::fs::create_dir_all(&cache).unwrap();
        std::fs::write(ws.join("target/debug/x"), "built").unwrap();
        let places = Places {
            workspace: &ws,
            artifacts: &arts,
            cache: &cache,
        };
        let mut with = BTreeMap::new();
        with.insert("path".to_string(), "target\n".to_string());
        with.insert("key".to_string(), "linux-cargo-abc".to_string());
        with.insert("restore-keys".to_string(), "linux-cargo-\n".to_string());
        let (out, _) = run(&Builtin::Cache, &with, &places).unwrap();
        assert_eq!(out["cache-hit"], "false");
        post(&Builtin::Cache, &with, &out, true, &places).unwrap();
        std::fs::remove_dir_all(ws.join("target")).unwrap();
        let (out, _) = run(&Builtin::Cache, &with, &places).unwrap();
        assert_eq!(out["cache-hit"], "true");
        assert_eq!(
            std::fs::read_to_string(ws.join("target/debug/x")).unwrap(),
            "built"
        );
        with.insert("key".to_string(), "linux-cargo-def".to_string());
        std::fs::remove_dir_all(ws.join("target")).unwrap();
        let (out, said) = run(&Builtin::Cache, &with, &places).unwrap();
        assert_eq!(out["cache-hit"], "false");
        assert!(said.contains("restore key"), "{said}");
        assert!(ws.join("target/debug/x").is_file());
    }

    #[test]
    fn artifacts_travel_by_name() {
        let d = tempfile::tempdir().unwrap();
        let ws = d.path().join("ws");
        let ws2 = d.path().join("ws2");
        let arts = d.path().join("arts");
        std::fs::create_dir_all(ws.join("dist")).unwrap();
        std::fs::create_dir_all(&ws2).unwrap();
        std::fs::write(ws.join("dist/app.tar"), "x").unwrap();
        std::fs::write(ws.join("notes.txt"), "y").unwrap();
        let places = Places {
            workspace: &ws,
            artifacts: &arts,
            cache: d.path(),
        };
        let mut with = BTreeMap::new();
        with.insert("name".to_string(), "bundle".to_string());
        with.insert("path".to_string(), "dist\n*.txt".to_string());
        let (_, said) = run(&Builtin::UploadArtifact, &with, &places).unwrap();
        assert!(said.contains("2 file"), "{said}");
        let places2 = Places {
            workspace: &ws2,
            artifacts: &arts,
            cache: d.path(),
        };
        let mut with = BTreeMap::new();
        with.insert("name".to_string(), "bundle".to_string());
        with.insert("path".to_string(), "in".to_string());
        run(&Builtin::DownloadArtifact, &with, &places2).unwrap();
        assert!(ws2.join("in/app.tar").is_file());
        assert!(ws2.join("in/notes.txt").is_file());
        with.insert("name".to_string(), "missing".to_string());
        assert!(run(&Builtin::DownloadArtifact, &with, &places2).is_err());
    }
}
