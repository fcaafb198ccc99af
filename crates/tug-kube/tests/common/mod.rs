//! Shared by the tests: the example stacks, and the Python tools the render
//! checks run (installed by scripts/kube-tools.sh).

#![allow(dead_code)]

use std::path::{Path, PathBuf};

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Loads an example's tug.yaml with the path it is reported under.
pub fn example(name: &str) -> (tug_spec::Stack, String) {
    let rel = PathBuf::from(format!("examples/{name}/tug.yaml"));
    let text = std::fs::read_to_string(repo().join(&rel)).unwrap();
    let stack = tug_spec::parse_str(&text, &rel).unwrap();
    (stack, text)
}

/// The options the golden files are rendered with.
pub fn options(name: &str) -> tug_kube::RenderOptions {
    let mut o = tug_kube::RenderOptions::default();
    if name == "hello" {
        o.images
            .insert("web".into(), "registry.example/hello:1.0.0".into());
        o.skip.insert(tug_kube::Skip::Pids);
    }
    o
}

/// A tool of scripts/kube-tools.sh: $TUG_KUBE_TOOLS/bin, else the default venv, else PATH.
/// None (after a loud message) when absent, unless the environment requires it.
pub fn tool(name: &str) -> Option<PathBuf> {
    let venv = std::env::var_os("TUG_KUBE_TOOLS")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/tug/kube-venv"))
        });
    let mut candidates: Vec<PathBuf> = venv.into_iter().map(|v| v.join("bin").join(name)).collect();
    if let Some(path) = std::env::var_os("PATH") {
        candidates.extend(std::env::split_paths(&path).map(|d| d.join(name)));
    }
    if let Some(found) = candidates.into_iter().find(|p| p.is_file()) {
        return Some(found);
    }
    let required = std::env::var("TUG_REQUIRE_ENGINE").is_ok_and(|v| v == "1")
        || std::env::var("CI").is_ok_and(|v| v == "true");
    assert!(
        !required,
        "{name} is not installed: run `bash scripts/kube-tools.sh` (TUG_REQUIRE_ENGINE=1 or CI requires it)"
    );
    eprintln!("SKIPPED: {name} is not installed; run `bash scripts/kube-tools.sh`");
    None
}
