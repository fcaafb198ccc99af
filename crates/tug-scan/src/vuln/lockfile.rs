//! Cargo.lock parsing (formats v1 to v4) with byte spans, so every package
//! and every error has a line number.

use semver::Version;
use serde::Deserialize;
use std::collections::{HashMap, VecDeque};
use toml::Spanned;

/// Where a package comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A workspace member or path dependency (no `source` in Cargo.lock).
    Path,
    Registry(String),
    Git(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Package {
    pub name: String,
    pub version: Version,
    pub source: Source,
    /// 1-based line of the `[[package]]` entry's `name`.
    pub line: usize,
    /// Indices into `Lockfile::packages`.
    pub deps: Vec<usize>,
}

#[derive(Clone, Debug, Default)]
pub struct Lockfile {
    pub packages: Vec<Package>,
}

/// A parse error at a byte offset of the lockfile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    pub offset: usize,
    pub message: String,
}

#[derive(Deserialize)]
struct RawLock {
    #[serde(default)]
    package: Vec<RawPackage>,
}

#[derive(Deserialize)]
struct RawPackage {
    name: Spanned<String>,
    version: Spanned<String>,
    source: Option<String>,
    #[serde(default)]
    dependencies: Vec<Spanned<String>>,
}

impl Lockfile {
    /// Parses Cargo.lock text. Never panics.
    pub fn parse(text: &str) -> Result<Lockfile, ParseError> {
        let raw: RawLock = toml::from_str(text).map_err(|e| ParseError {
            offset: e.span().map_or(0, |s| s.start),
            message: e.message().trim().to_string(),
        })?;
        let lines = crate::finding::LineIndex::new(text);
        let mut packages = Vec::with_capacity(raw.package.len());
        for p in &raw.package {
            let version = Version::parse(p.version.get_ref()).map_err(|e| ParseError {
                offset: p.version.span().start,
                message: format!("invalid version `{}`: {e}", p.version.get_ref()),
            })?;
            let source = match &p.source {
                None => Source::Path,
                Some(s) if s.starts_with("git+") => Source::Git(s.clone()),
                Some(s) => Source::Registry(s.clone()),
            };
            packages.push(Package {
                name: p.name.get_ref().clone(),
                version,
                source,
                line: lines.line(p.name.span().start),
                deps: Vec::new(),
            });
        }
        let mut by_name: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, p) in packages.iter().enumerate() {
            by_name.entry(p.name.as_str()).or_default().push(i);
        }
        let mut all_deps = Vec::with_capacity(raw.package.len());
        for p in &raw.package {
            let mut deps = Vec::new();
            for d in &p.dependencies {
                // "name", "name version" or "name version (source)"
                let mut parts = d.get_ref().split_whitespace();
                let name = parts.next().unwrap_or_default();
                let version = parts.next();
                let source = parts
                    .next()
                    .and_then(|s| s.strip_prefix('('))
                    .and_then(|s| s.strip_suffix(')'));
                let candidates = by_name.get(name).map(Vec::as_slice).unwrap_or(&[]);
                let same_version =
                    |&&i: &&usize| version.is_some_and(|v| packages[i].version.to_string() == v);
                let found = match version {
                    None if candidates.len() == 1 => Some(candidates[0]),
                    None => None,
                    // One name and version from two sources: the source decides.
                    Some(_) => candidates
                        .iter()
                        .filter(same_version)
                        .find(|&&i| source.is_none_or(|s| raw_source(&packages[i].source) == s))
                        .or_else(|| candidates.iter().find(same_version))
                        .copied(),
                };
                match found {
                    Some(i) => deps.push(i),
                    None => {
                        return Err(ParseError {
                            offset: d.span().start,
                            message: format!(
                                "dependency `{}` names no package in this lockfile",
                                d.get_ref()
                            ),
                        })
                    }
                }
            }
            all_deps.push(deps);
        }
        for (p, deps) in packages.iter_mut().zip(all_deps) {
            p.deps = deps;
        }
        Ok(Lockfile { packages })
    }

    /// Shortest dependency path from a workspace member (a package without a
    /// source) to `target`, as package indices.
    pub fn path_to(&self, target: usize) -> Vec<usize> {
        self.paths().path_to(target)
    }

    /// One multi-source BFS from every workspace member: the shortest path
    /// to each package, for many look-ups.
    pub fn paths(&self) -> Paths {
        let n = self.packages.len();
        let mut parent: Vec<Option<usize>> = vec![None; n];
        let mut seen = vec![false; n];
        let mut queue = VecDeque::new();
        for (i, p) in self.packages.iter().enumerate() {
            if p.source == Source::Path {
                seen[i] = true;
                queue.push_back(i);
            }
        }
        while let Some(i) = queue.pop_front() {
            for &d in &self.packages[i].deps {
                if !seen[d] {
                    seen[d] = true;
                    parent[d] = Some(i);
                    queue.push_back(d);
                }
            }
        }
        Paths { parent }
    }
}

/// The `source` string a package was read from (empty for path packages).
fn raw_source(s: &Source) -> &str {
    match s {
        Source::Path => "",
        Source::Registry(s) | Source::Git(s) => s,
    }
}

/// BFS parents from the workspace members.
pub struct Paths {
    parent: Vec<Option<usize>>,
}

impl Paths {
    /// Path from a workspace member to `target`; just `[target]` when no
    /// member reaches it.
    pub fn path_to(&self, target: usize) -> Vec<usize> {
        let mut path = vec![target];
        let mut cur = target;
        while let Some(p) = self.parent.get(cur).copied().flatten() {
            path.push(p);
            cur = p;
        }
        path.reverse();
        path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCK: &str = r#"version = 4

[[package]]
name = "app"
version = "0.1.0"
dependencies = [
 "mid",
 "leaf 1.0.0",
]

[[package]]
name = "mid"
version = "0.2.0"
source = "registry+https://github.com/rust-lang/crates.io-index"
dependencies = ["leaf 2.0.0 (registry+https://github.com/rust-lang/crates.io-index)"]

[[package]]
name = "leaf"
version = "1.0.0"
source = "git+https://example.com/leaf#abc"

[[package]]
name = "leaf"
version = "2.0.0"
source = "registry+https://github.com/rust-lang/crates.io-index"
"#;

    #[test]
    fn parses_sources_lines_and_paths() {
        let l = Lockfile::parse(LOCK).unwrap();
        assert_eq!(l.packages.len(), 4);
        assert_eq!(l.packages[0].source, Source::Path);
        assert!(matches!(l.packages[2].source, Source::Git(_)));
        assert_eq!(l.packages[1].line, 12);
        let leaf2 = 3;
        let names: Vec<_> = l
            .path_to(leaf2)
            .into_iter()
            .map(|i| format!("{} {}", l.packages[i].name, l.packages[i].version))
            .collect();
        assert_eq!(names, ["app 0.1.0", "mid 0.2.0", "leaf 2.0.0"]);
    }

    #[test]
    fn same_version_from_two_sources_resolves_by_source() {
        // v1 and v2+ lockfiles spell such a dependency "name version (source)".
        let lock = r#"
[[package]]
name = "app"
version = "0.1.0"
dependencies = ["dup 1.0.0 (registry+https://github.com/rust-lang/crates.io-index)"]

[[package]]
name = "dup"
version = "1.0.0"
source = "git+https://example.com/dup#abc"

[[package]]
name = "dup"
version = "1.0.0"
source = "registry+https://github.com/rust-lang/crates.io-index"
"#;
        let l = Lockfile::parse(lock).unwrap();
        assert_eq!(l.packages[0].deps, [2]);
        assert_eq!(l.path_to(2), [0, 2]);
    }

    #[test]
    fn errors_carry_offsets() {
        let bad = "[[package]]\nname = \"x\"\nversion = \"not-a-version\"\n";
        let e = Lockfile::parse(bad).unwrap_err();
        assert_eq!(crate::finding::line_col(bad, e.offset).0, 3);
        let e = Lockfile::parse("[[package]]\nname = \n").unwrap_err();
        assert_eq!(
            crate::finding::line_col("[[package]]\nname = \n", e.offset).0,
            2
        );
        let dangling =
            "[[package]]\nname = \"a\"\nversion = \"1.0.0\"\ndependencies = [\"ghost\"]\n";
        let e = Lockfile::parse(dangling).unwrap_err();
        assert!(e.message.contains("ghost"));
    }
}
