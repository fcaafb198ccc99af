//! Dockerfile and .dockerignore generation for a Rust workspace.
//!
//! The Dockerfile has three stages:
//!
//! ```text
//!  deps   manifests + lockfile + stub sources → cargo build (dependencies only)
//!   │
//!  build  real sources, stubs' mtimes bumped → cargo build (static, gnu target)
//!   │
//!  (scratch) CA certificates + the binary, numeric non-root USER, OCI labels
//! ```
//!
//! The dependency layer only changes when a manifest or the lockfile does, so
//! a source edit rebuilds the workspace crates alone.

use std::collections::BTreeSet;
use std::fmt::Write;
use std::path::{Path, PathBuf};
use toml::Table;

/// What to generate for.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Workspace (or package) directory: the build context.
    pub dir: PathBuf,
    /// Package to build; needed when the workspace has more than one binary package.
    pub package: Option<String>,
    /// Health check command (exec form) run in the final image.
    pub health_cmd: Option<Vec<String>>,
    /// Health check timing (interval, timeout, start period, retries).
    pub health_timing: Option<HealthTiming>,
    /// Port the service listens on (EXPOSE).
    pub port: Option<u16>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HealthTiming {
    pub interval: std::time::Duration,
    pub timeout: std::time::Duration,
    pub start_period: std::time::Duration,
    pub retries: u32,
}

/// The generated files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Generated {
    pub dockerfile: String,
    pub dockerignore: String,
    pub package: String,
    pub bin: String,
    /// The package's directory (where its tug.yaml may live).
    pub package_dir: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error("{path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}:{col}: {message}")]
    Manifest {
        path: PathBuf,
        line: usize,
        col: usize,
        message: String,
    },
    #[error("{0}")]
    Package(String),
}

/// One workspace member as far as the build needs it.
#[derive(Clone, Debug, Default)]
struct Member {
    /// Directory relative to the workspace root ("" for the root package).
    rel: String,
    name: String,
    version: Option<String>,
    description: Option<String>,
    license: Option<String>,
    repository: Option<String>,
    homepage: Option<String>,
    authors: Vec<String>,
    /// Source files cargo needs to exist (lib, bins, explicit targets), relative to the member.
    stubs: Vec<(String, StubKind)>,
    has_build_rs: bool,
    bins: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum StubKind {
    Lib,
    Main,
}

fn read_toml(path: &Path) -> Result<Table, GenerateError> {
    let text = std::fs::read_to_string(path).map_err(|source| GenerateError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    text.parse::<Table>().map_err(|e| {
        let (line, col) = e
            .span()
            .map(|s| {
                let before = &text[..s.start.min(text.len())];
                let line = before.matches('\n').count() + 1;
                let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
                (line, col)
            })
            .unwrap_or((1, 1));
        GenerateError::Manifest {
            path: path.to_path_buf(),
            line,
            col,
            message: e.message().to_string(),
        }
    })
}

fn string_field(pkg: &Table, ws_pkg: Option<&Table>, key: &str) -> Option<String> {
    match pkg.get(key)? {
        toml::Value::String(s) => Some(s.clone()),
        toml::Value::Table(t) if t.get("workspace").and_then(|v| v.as_bool()) == Some(true) => {
            ws_pkg?.get(key)?.as_str().map(str::to_string)
        }
        _ => None,
    }
}

fn list_field(pkg: &Table, ws_pkg: Option<&Table>, key: &str) -> Vec<String> {
    let v = match pkg.get(key) {
        Some(toml::Value::Table(t))
            if t.get("workspace").and_then(|v| v.as_bool()) == Some(true) =>
        {
            ws_pkg.and_then(|w| w.get(key))
        }
        other => other,
    };
    v.and_then(|v| v.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn read_member(
    root: &Path,
    rel: &str,
    ws_pkg: Option<&Table>,
) -> Result<Option<Member>, GenerateError> {
    let dir = root.join(rel);
    let manifest = dir.join("Cargo.toml");
    let t = read_toml(&manifest)?;
    let Some(pkg) = t.get("package").and_then(|p| p.as_table()) else {
        return Ok(None);
    };
    let name = pkg
        .get("name")
        .and_then(|n| n.as_str())
        .ok_or_else(|| {
            GenerateError::Package(format!("{}: [package] has no name", manifest.display()))
        })?
        .to_string();
    let mut m = Member {
        rel: rel.to_string(),
        version: string_field(pkg, ws_pkg, "version"),
        description: string_field(pkg, ws_pkg, "description"),
        license: string_field(pkg, ws_pkg, "license"),
        repository: string_field(pkg, ws_pkg, "repository"),
        homepage: string_field(pkg, ws_pkg, "homepage"),
        authors: list_field(pkg, ws_pkg, "authors"),
        name: name.clone(),
        ..Member::default()
    };
    let mut stubs: BTreeSet<(String, bool)> = BTreeSet::new();
    // Library.
    let lib_path = t
        .get("lib")
        .and_then(|l| l.get("path"))
        .and_then(|p| p.as_str())
        .map(str::to_string)
        .or_else(|| {
            dir.join("src/lib.rs")
                .is_file()
                .then(|| "src/lib.rs".to_string())
        });
    if let Some(p) = lib_path {
        stubs.insert((p, true));
    }
    // Binaries: explicit [[bin]] entries and the implicit src/main.rs.
    let explicit_bins = t
        .get("bin")
        .and_then(|b| b.as_array())
        .cloned()
        .unwrap_or_default();
    for b in &explicit_bins {
        let Some(bname) = b.get("name").and_then(|n| n.as_str()) else {
            continue;
        };
        let path = b
            .get("path")
            .and_then(|p| p.as_str())
            .map(str::to_string)
            .unwrap_or_else(|| {
                if bname == name && dir.join("src/main.rs").is_file() {
                    "src/main.rs".to_string()
                } else {
                    format!("src/bin/{bname}.rs")
                }
            });
        stubs.insert((path, false));
        m.bins.push(bname.to_string());
    }
    let autobins = pkg.get("autobins").and_then(|v| v.as_bool()) != Some(false);
    if dir.join("src/main.rs").is_file() && autobins && !m.bins.contains(&name) {
        stubs.insert(("src/main.rs".to_string(), false));
        m.bins.push(name.clone());
    }
    // Targets declared by hand must exist too.
    for (key, default_dir) in [
        ("bench", "benches"),
        ("test", "tests"),
        ("example", "examples"),
    ] {
        for entry in t.get(key).and_then(|b| b.as_array()).into_iter().flatten() {
            let Some(tname) = entry.get("name").and_then(|n| n.as_str()) else {
                continue;
            };
            let path = entry
                .get("path")
                .and_then(|p| p.as_str())
                .map(str::to_string)
                .unwrap_or_else(|| format!("{default_dir}/{tname}.rs"));
            let is_lib_like = key != "example";
            stubs.insert((path, is_lib_like && key != "test" && key != "bench"));
        }
    }
    m.stubs = stubs
        .into_iter()
        .map(|(p, lib)| (p, if lib { StubKind::Lib } else { StubKind::Main }))
        .collect();
    m.has_build_rs = match pkg.get("build") {
        Some(toml::Value::String(_)) => true,
        Some(toml::Value::Boolean(false)) => false,
        _ => dir.join("build.rs").is_file(),
    };
    Ok(Some(m))
}

/// Expands workspace member patterns (`crates/*`, `examples/hello`).
fn expand_members(root: &Path, patterns: &[String], exclude: &[String]) -> Vec<String> {
    let mut out = BTreeSet::new();
    for p in patterns {
        let p = p.trim_end_matches('/');
        if let Some(prefix) = p.strip_suffix("/*") {
            if let Ok(entries) = std::fs::read_dir(root.join(prefix)) {
                for e in entries.flatten() {
                    if e.path().join("Cargo.toml").is_file() {
                        out.insert(format!("{prefix}/{}", e.file_name().to_string_lossy()));
                    }
                }
            }
        } else if root.join(p).join("Cargo.toml").is_file() {
            out.insert(p.to_string());
        }
    }
    out.into_iter().filter(|m| !exclude.contains(m)).collect()
}

fn members(root: &Path) -> Result<Vec<Member>, GenerateError> {
    let t = read_toml(&root.join("Cargo.toml"))?;
    let ws = t.get("workspace").and_then(|w| w.as_table());
    let ws_pkg = ws.and_then(|w| w.get("package")).and_then(|p| p.as_table());
    let strings = |key: &str| -> Vec<String> {
        ws.and_then(|w| w.get(key))
            .and_then(|v| v.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut out = Vec::new();
    if let Some(m) = read_member(root, "", ws_pkg)? {
        out.push(m);
    }
    for rel in expand_members(root, &strings("members"), &strings("exclude")) {
        if let Some(m) = read_member(root, &rel, ws_pkg)? {
            out.push(m);
        }
    }
    Ok(out)
}

fn join(rel: &str, file: &str) -> String {
    if rel.is_empty() {
        file.to_string()
    } else {
        format!("{rel}/{file}")
    }
}

fn parent(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(d, _)| d)
}

/// Double-quotes a LABEL value.
fn label_value(v: &str) -> String {
    format!(
        "\"{}\"",
        v.replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', " ")
    )
}

fn duration(d: std::time::Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

const TARGET: &str = "x86_64-unknown-linux-gnu";
const UID: u32 = 10001;

/// Generates the Dockerfile and .dockerignore.
pub fn rust_workspace(opts: &Options) -> Result<Generated, GenerateError> {
    let root = &opts.dir;
    let members = members(root)?;
    let with_bins: Vec<&Member> = members.iter().filter(|m| !m.bins.is_empty()).collect();
    let pkg = match &opts.package {
        Some(name) => members.iter().find(|m| &m.name == name).ok_or_else(|| {
            GenerateError::Package(format!(
                "no package `{name}` in {}: packages are {}",
                root.join("Cargo.toml").display(),
                members
                    .iter()
                    .map(|m| m.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?,
        None => match with_bins.as_slice() {
            [one] => *one,
            [] => {
                return Err(GenerateError::Package(format!(
                    "no package with a binary in {}",
                    root.join("Cargo.toml").display()
                )))
            }
            many => {
                return Err(GenerateError::Package(format!(
                    "several packages have binaries ({}): choose one with --package NAME",
                    many.iter()
                        .map(|m| m.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )))
            }
        },
    };
    let bin = match pkg.bins.as_slice() {
        [] => {
            return Err(GenerateError::Package(format!(
                "package `{}` has no binary target",
                pkg.name
            )))
        }
        bins if bins.contains(&pkg.name) => pkg.name.clone(),
        [first, ..] => first.clone(),
    };
    let has_lock = root.join("Cargo.lock").is_file();
    let locked = if has_lock { " --locked" } else { "" };
    let name = &pkg.name;

    let mut d = String::new();
    // No `# syntax=` line: it would make BuildKit pull a frontend image, and
    // nothing here needs more than the built-in one.
    let _ = writeln!(d, "# Generated by `tug dockerfile` for package {name}.");
    let _ = writeln!(d, "# Build: docker build -t {name} .   (--build-arg RUST_IMAGE=... to use another toolchain image)");
    let _ = writeln!(d, "ARG RUST_IMAGE=rust:1-slim-bookworm");
    d.push('\n');
    let _ = writeln!(
        d,
        "# Dependencies only: this layer changes when a manifest or the lockfile does."
    );
    let _ = writeln!(d, "FROM ${{RUST_IMAGE}} AS deps");
    let _ = writeln!(d, "WORKDIR /src");
    let _ = writeln!(
        d,
        "ENV CARGO_TERM_COLOR=never RUSTFLAGS=\"-C target-feature=+crt-static\""
    );
    let root_files: Vec<&str> = [
        "Cargo.toml",
        "Cargo.lock",
        "rust-toolchain.toml",
        "rust-toolchain",
    ]
    .into_iter()
    .filter(|f| root.join(f).is_file())
    .collect();
    if root.join(".cargo/config.toml").is_file() {
        let _ = writeln!(d, "COPY .cargo/config.toml .cargo/");
    }
    let _ = writeln!(d, "COPY {} ./", root_files.join(" "));
    if root.join("vendor").is_dir() {
        let _ = writeln!(d, "COPY vendor vendor/");
    }
    let mut stub_cmds: Vec<String> = Vec::new();
    let mut dirs = BTreeSet::new();
    let mut touched = Vec::new();
    for m in &members {
        if !m.rel.is_empty() {
            let _ = writeln!(d, "COPY {} {}/", join(&m.rel, "Cargo.toml"), m.rel);
        }
        if m.has_build_rs {
            let _ = writeln!(
                d,
                "COPY {} {}",
                join(&m.rel, "build.rs"),
                join(&m.rel, "build.rs")
            );
        }
        for (path, kind) in &m.stubs {
            let full = join(&m.rel, path);
            let dir = parent(&full);
            if !dir.is_empty() {
                dirs.insert(dir.to_string());
            }
            stub_cmds.push(match kind {
                StubKind::Lib => format!("touch {full}"),
                StubKind::Main => format!("echo 'fn main() {{}}' > {full}"),
            });
            touched.push(full);
        }
    }
    let build = format!("cargo build --release{locked} --target {TARGET} -p {name} --bin {bin}");
    let mut steps = Vec::new();
    if !dirs.is_empty() {
        steps.push(format!(
            "mkdir -p {}",
            dirs.into_iter().collect::<Vec<_>>().join(" ")
        ));
    }
    steps.extend(stub_cmds);
    steps.push(build.clone());
    let _ = writeln!(d, "RUN {}", steps.join(" \\\n && "));
    d.push('\n');
    let _ = writeln!(
        d,
        "# The real sources; bump the stubs' mtimes so cargo rebuilds them."
    );
    let _ = writeln!(d, "FROM deps AS build");
    let _ = writeln!(d, "COPY . .");
    let _ = writeln!(
        d,
        "RUN touch {} \\\n && {build} \\\n && cp target/{TARGET}/release/{bin} /{bin}",
        touched.join(" ")
    );
    d.push('\n');
    let _ = writeln!(d, "FROM scratch");
    let _ = writeln!(
        d,
        "COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt"
    );
    let _ = writeln!(d, "COPY --from=build /{bin} /{bin}");
    let mut labels = vec![("org.opencontainers.image.title", name.clone())];
    if let Some(v) = &pkg.description {
        labels.push(("org.opencontainers.image.description", v.clone()));
    }
    if let Some(v) = &pkg.version {
        labels.push(("org.opencontainers.image.version", v.clone()));
    }
    if let Some(v) = &pkg.license {
        labels.push(("org.opencontainers.image.licenses", v.clone()));
    }
    if let Some(v) = &pkg.repository {
        labels.push(("org.opencontainers.image.source", v.clone()));
    }
    if let Some(v) = &pkg.homepage {
        labels.push(("org.opencontainers.image.url", v.clone()));
    }
    if !pkg.authors.is_empty() {
        labels.push(("org.opencontainers.image.authors", pkg.authors.join(", ")));
    }
    let _ = writeln!(
        d,
        "LABEL {}",
        labels
            .iter()
            .map(|(k, v)| format!("{k}={}", label_value(v)))
            .collect::<Vec<_>>()
            .join(" \\\n      ")
    );
    let _ = writeln!(d, "USER {UID}:{UID}");
    if let Some(port) = opts.port {
        let _ = writeln!(d, "EXPOSE {port}");
    }
    if let Some(cmd) = &opts.health_cmd {
        let mut flags = String::new();
        if let Some(t) = opts.health_timing {
            // The engine rejects zero durations: leave those to its defaults.
            for (flag, d) in [
                ("interval", t.interval),
                ("timeout", t.timeout),
                ("start-period", t.start_period),
            ] {
                if !d.is_zero() {
                    let _ = write!(flags, "--{flag}={} ", duration(d));
                }
            }
            if t.retries > 0 {
                let _ = write!(flags, "--retries={} ", t.retries);
            }
        }
        let json = serde_json::to_string(cmd).unwrap_or_else(|_| "[]".into());
        let _ = writeln!(d, "HEALTHCHECK {flags}CMD {json}");
    }
    let _ = writeln!(d, "ENTRYPOINT [\"/{bin}\"]");

    let dockerignore = "\
# Generated by `tug dockerfile`: keep build output and VCS data out of the context.
target
**/target
.git
**/*.rs.bk
fuzz/corpus
fuzz/artifacts
Dockerfile
.dockerignore
"
    .to_string();
    Ok(Generated {
        dockerfile: d,
        dockerignore,
        package: name.clone(),
        bin,
        package_dir: root.join(&pkg.rel),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, rel: &str, text: &str) {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    fn workspace() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "Cargo.toml", "[workspace]\nmembers = [\"crates/*\", \"app\"]\n[workspace.package]\nversion = \"2.1.0\"\nlicense = \"MIT\"\n");
        write(d.path(), "Cargo.lock", "version = 4\n");
        write(
            d.path(),
            "crates/core/Cargo.toml",
            "[package]\nname = \"core\"\nversion = \"0.1.0\"\n",
        );
        write(d.path(), "crates/core/src/lib.rs", "");
        write(d.path(), "crates/core/build.rs", "fn main() {}");
        write(d.path(), "app/Cargo.toml", "[package]\nname = \"app\"\nversion.workspace = true\nlicense.workspace = true\ndescription = \"An \\\"app\\\"\"\n[[bin]]\nname = \"tool\"\npath = \"src/tool.rs\"\n");
        write(d.path(), "app/src/main.rs", "fn main() {}");
        write(d.path(), "app/src/tool.rs", "fn main() {}");
        d
    }

    #[test]
    fn stubs_every_target_and_labels_from_metadata() {
        let d = workspace();
        let g = rust_workspace(&Options {
            dir: d.path().into(),
            ..Options::default()
        })
        .unwrap();
        assert_eq!(g.package, "app");
        assert_eq!(g.bin, "app");
        let f = &g.dockerfile;
        assert!(
            f.contains("COPY crates/core/Cargo.toml crates/core/\n"),
            "{f}"
        );
        assert!(
            f.contains("COPY crates/core/build.rs crates/core/build.rs\n"),
            "{f}"
        );
        assert!(f.contains("touch crates/core/src/lib.rs"), "{f}");
        assert!(f.contains("echo 'fn main() {}' > app/src/tool.rs"), "{f}");
        assert!(f.contains("echo 'fn main() {}' > app/src/main.rs"), "{f}");
        assert!(
            f.contains("--locked --target x86_64-unknown-linux-gnu -p app --bin app"),
            "{f}"
        );
        assert!(
            f.contains("org.opencontainers.image.version=\"2.1.0\""),
            "{f}"
        );
        assert!(
            f.contains("org.opencontainers.image.licenses=\"MIT\""),
            "{f}"
        );
        assert!(f.contains("description=\"An \\\"app\\\"\""), "{f}");
        assert!(
            f.contains("USER 10001:10001") && f.contains("FROM scratch"),
            "{f}"
        );
        assert!(!f.contains("HEALTHCHECK"), "{f}");
        let p = crate::dockerfile::parse(f);
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        // The LABEL value survives the Dockerfile word rules.
        let label = p
            .instructions
            .iter()
            .find(|i| i.keyword == crate::dockerfile::Keyword::Label)
            .unwrap();
        match &label.body {
            crate::dockerfile::Body::Pairs(pairs) => {
                assert!(pairs.iter().any(|(_, v)| v == "An \"app\""))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn healthcheck_only_when_asked() {
        let d = workspace();
        let g = rust_workspace(&Options {
            dir: d.path().into(),
            package: Some("app".into()),
            health_cmd: Some(vec!["/app".into(), "--health".into()]),
            health_timing: Some(HealthTiming {
                interval: std::time::Duration::from_secs(2),
                timeout: std::time::Duration::from_millis(500),
                start_period: std::time::Duration::ZERO,
                retries: 3,
            }),
            port: Some(8080),
        })
        .unwrap();
        assert!(
            g.dockerfile.contains(
                "HEALTHCHECK --interval=2s --timeout=500ms --retries=3 CMD [\"/app\",\"--health\"]"
            ),
            "{}",
            g.dockerfile
        );
        assert!(g.dockerfile.contains("EXPOSE 8080"));
    }

    #[test]
    fn package_errors_name_the_choices() {
        let d = workspace();
        let e = rust_workspace(&Options {
            dir: d.path().into(),
            package: Some("nope".into()),
            ..Options::default()
        })
        .unwrap_err();
        assert!(e.to_string().contains("packages are"), "{e}");
        let e = rust_workspace(&Options {
            dir: d.path().into(),
            package: Some("core".into()),
            ..Options::default()
        })
        .unwrap_err();
        assert!(e.to_string().contains("no binary"), "{e}");
        write(d.path(), "Cargo.toml", "[workspace\n");
        let e = rust_workspace(&Options {
            dir: d.path().into(),
            ..Options::default()
        })
        .unwrap_err();
        assert!(e.to_string().contains("Cargo.toml:1:"), "{e}");
    }
}
