//! Images for Rust services: a static `cargo build`, then two layers (a small
//! base with a non-root user, CA certificates and /tmp; the binary).

use super::{rfc3339, Image, ImageBuilder, ImageConfig, LayerBuilder, OciError};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The non-root user every Rust image runs as.
pub const APP_UID: u64 = 10001;
const CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

#[derive(Clone, Debug)]
pub struct RustBuildOptions {
    /// Where `cargo build` runs (the workspace or package root).
    pub workspace_dir: PathBuf,
    pub package: String,
    /// The binary; defaults to the package's only (or same-named) binary.
    pub bin: Option<String>,
    /// Cargo profile, `release` by default.
    pub profile: String,
    /// Link statically (`-C target-feature=+crt-static`), so the image needs no libc.
    pub static_link: bool,
    /// Timestamp for every file and `created`; defaults to `$SOURCE_DATE_EPOCH`, else 0.
    pub source_date_epoch: Option<u64>,
    pub labels: BTreeMap<String, String>,
    pub env: BTreeMap<String, String>,
    pub port: Option<u16>,
    /// `uid[:gid]`; defaults to `10001:10001` (the `app` user).
    pub user: Option<String>,
    /// Label the image with the workspace's git commit. Off when the image
    /// must depend on the binary alone (a new commit is not a new binary).
    pub revision_label: bool,
    /// Embed the dependency list in the binary as `cargo auditable` does
    /// (see [`super::auditable`]), so scanners can audit the image.
    pub auditable: bool,
}

impl RustBuildOptions {
    pub fn new(workspace_dir: impl Into<PathBuf>, package: impl Into<String>) -> Self {
        RustBuildOptions {
            workspace_dir: workspace_dir.into(),
            package: package.into(),
            bin: None,
            profile: "release".into(),
            static_link: true,
            source_date_epoch: None,
            labels: BTreeMap::new(),
            env: BTreeMap::new(),
            port: None,
            user: None,
            revision_label: true,
            auditable: true,
        }
    }

    fn epoch(&self) -> Result<u64, OciError> {
        if let Some(e) = self.source_date_epoch {
            return Ok(e);
        }
        match std::env::var("SOURCE_DATE_EPOCH") {
            Ok(v) => v.trim().parse().map_err(|_| {
                OciError::Invalid(format!(
                    "SOURCE_DATE_EPOCH={v:?} is not a number of seconds; unset it or set e.g. SOURCE_DATE_EPOCH=$(git log -1 --format=%ct)"
                ))
            }),
            Err(_) => Ok(0),
        }
    }
}

/// The host's target triple (from `rustc -vV`).
pub fn host_target() -> Result<String, OciError> {
    let out = Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()))
        .arg("-vV")
        .output()
        .map_err(|e| OciError::Cargo(format!("running rustc -vV: {e}")))?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_string))
        .ok_or_else(|| OciError::Cargo("rustc -vV printed no host".into()))
}

/// A binary produced by cargo.
#[derive(Clone, Debug)]
pub struct BuiltBinary {
    pub path: PathBuf,
    pub name: String,
    pub version: Option<String>,
}

/// The directory static builds use: beside the normal target dir (or under
/// `$CARGO_TARGET_DIR`), so static flags never invalidate normal builds.
pub fn static_target_dir(workspace: &Path) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) if !d.is_empty() => PathBuf::from(d).join("tug-static"),
        _ => workspace.join("target").join("tug-static"),
    }
}

/// Runs `cargo build` for the binary (statically linked, `--locked`, for the
/// host target, in [`static_target_dir`]) and returns its path, found from
/// cargo's JSON messages. Cargo's progress and diagnostics go to `on_line`
/// as they are printed. Blocking: call it from a thread (or `spawn_blocking`).
pub fn cargo_build_static(
    opts: &RustBuildOptions,
    on_line: &(dyn Fn(&str) + Sync),
) -> Result<BuiltBinary, OciError> {
    let target = host_target()?;
    let target_dir = static_target_dir(&opts.workspace_dir);
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    // `cargo rustc` so the section's link flags reach the final binary only.
    cmd.current_dir(&opts.workspace_dir)
        .args([
            "rustc",
            "--locked",
            "--profile",
            &opts.profile,
            "-p",
            &opts.package,
        ])
        .args([
            "--target",
            &target,
            "--message-format=json-render-diagnostics",
        ])
        .env("CARGO_TARGET_DIR", &target_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env_remove("CARGO_ENCODED_RUSTFLAGS");
    let meta = super::auditable::cargo_metadata(&opts.workspace_dir, &target)?;
    let bin = match &opts.bin {
        Some(b) => b.clone(),
        None => only_binary(&meta, &opts.package)?,
    };
    cmd.args(["--bin", &bin]);
    if opts.auditable {
        let info = super::auditable::dependency_list(&meta, &opts.package)?;
        let data = super::auditable::section_data(&info)?;
        if let Some(object) = super::auditable::object_file(&target, &data) {
            let dir = target_dir.join("auditable");
            let path = dir.join(format!("{}-{bin}.o", opts.package));
            std::fs::create_dir_all(&dir)
                .and_then(|_| std::fs::write(&path, object))
                .map_err(|source| OciError::Io {
                    path: path.clone(),
                    source,
                })?;
            cmd.arg("--")
                .arg(format!("-Clink-arg={}", path.display()))
                .arg(format!(
                    "-Clink-arg=-Wl,--undefined={}",
                    super::auditable::SYMBOL
                ));
        }
    }
    if opts.static_link {
        let mut flags = std::env::var("RUSTFLAGS").unwrap_or_default();
        flags.push_str(" -C target-feature=+crt-static");
        cmd.env("RUSTFLAGS", flags.trim());
    }
    let mut child = cmd.spawn().map_err(|e| {
        OciError::Cargo(format!(
            "running cargo in {}: {e}",
            opts.workspace_dir.display()
        ))
    })?;
    let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
    // stderr streams live on its own thread while stdout (JSON) is collected.
    let stdout = std::thread::scope(|s| {
        if let Some(err) = stderr {
            s.spawn(move || {
                use std::io::BufRead;
                for line in std::io::BufReader::new(err).lines().map_while(Result::ok) {
                    on_line(&line);
                }
            });
        }
        let mut text = String::new();
        if let Some(mut out) = stdout {
            use std::io::Read;
            let _ = out.read_to_string(&mut text);
        }
        text
    });
    let status = child
        .wait()
        .map_err(|e| OciError::Cargo(format!("waiting for cargo: {e}")))?;
    if !status.success() {
        return Err(OciError::Cargo(format!(
            "`cargo rustc -p {}` exited with {status} (its errors are shown above)",
            opts.package
        )));
    }
    let mut found = Vec::new();
    for line in stdout.lines() {
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if msg["reason"] != "compiler-artifact" {
            continue;
        }
        let is_bin = msg["target"]["kind"]
            .as_array()
            .is_some_and(|k| k.iter().any(|k| k == "bin"));
        let (Some(exe), true) = (msg["executable"].as_str(), is_bin) else {
            continue;
        };
        let id = msg["package_id"].as_str().unwrap_or_default();
        // package_id is `path+file:///...#1.0.0`, `...#name@1.0.0`, or (old
        // cargo) `name 1.0.0 (...)`.
        let version = match id.rsplit_once('#') {
            Some((_, frag)) => Some(frag.rsplit_once('@').map_or(frag, |(_, v)| v).to_string()),
            None => id.split(' ').nth(1).map(str::to_string),
        };
        found.push(BuiltBinary {
            path: exe.into(),
            name: msg["target"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            version,
        });
    }
    let wanted = opts.bin.as_deref().unwrap_or(&opts.package);
    match found.len() {
        0 => Err(OciError::Cargo(format!(
            "package {} has no binary target; add a [[bin]] or src/main.rs",
            opts.package
        ))),
        1 => Ok(found.remove(0)),
        _ => found
            .iter()
            .position(|b| b.name == wanted)
            .map(|i| found.remove(i))
            .ok_or_else(|| {
                OciError::Cargo(format!(
                    "package {} has several binaries ({}); choose one with `bin:`",
                    opts.package,
                    found
                        .iter()
                        .map(|b| b.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            }),
    }
}

/// The package's one binary (or the one named like the package).
fn only_binary(meta: &serde_json::Value, package: &str) -> Result<String, OciError> {
    let bins: Vec<&str> = meta["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["name"] == package && p["source"].is_null())
        .flat_map(|p| p["targets"].as_array().into_iter().flatten())
        .filter(|t| {
            t["kind"]
                .as_array()
                .is_some_and(|k| k.iter().any(|k| k == "bin"))
        })
        .filter_map(|t| t["name"].as_str())
        .collect();
    match bins.as_slice() {
        [] => Err(OciError::Cargo(format!(
            "package {package} has no binary target; add a [[bin]] or src/main.rs"
        ))),
        [one] => Ok(one.to_string()),
        many => many
            .iter()
            .find(|b| **b == package)
            .map(|b| b.to_string())
            .ok_or_else(|| {
                OciError::Cargo(format!(
                    "package {package} has several binaries ({}); choose one with `bin:`",
                    many.join(", ")
                ))
            }),
    }
}

fn git_revision(dir: &Path) -> Option<String> {
    let out = Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(dir)
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
}

/// Assembles the image around an already built binary. Only file contents
/// count: host mtimes, owners and modes never reach the image.
pub fn assemble_rust(
    binary: &Path,
    name: &str,
    version: Option<&str>,
    opts: &RustBuildOptions,
) -> Result<Image, OciError> {
    let epoch = opts.epoch()?;
    let passwd = format!(
        "root:x:0:0:root:/root:/sbin/nologin\napp:x:{APP_UID}:{APP_UID}:app:/app:/sbin/nologin\n"
    );
    let group = format!("root:x:0:\napp:x:{APP_UID}:\n");
    let mut base = LayerBuilder::new(epoch)
        .file("/etc/passwd", passwd, 0o644)?
        .file("/etc/group", group, 0o644)?
        .dir("/tmp", 0o1777)?;
    let mut what = "passwd, group, /tmp".to_string();
    if Path::new(CA_BUNDLE).is_file() {
        base = base.host_file(CA_BUNDLE, Path::new(CA_BUNDLE), 0o644)?;
        what.push_str(", ca-certificates");
    }
    let base = base.build(format!("tug: base layer ({what})"))?;
    let target = format!("/app/{name}");
    let app = LayerBuilder::new(epoch)
        .dir("/app", 0o755)?
        .host_file(&target, binary, 0o755)?
        .build(format!("tug: COPY {name} {target}"))?;

    let mut labels = BTreeMap::new();
    labels.insert(
        "org.opencontainers.image.created".to_string(),
        rfc3339(epoch),
    );
    labels.insert(
        "org.opencontainers.image.title".to_string(),
        name.to_string(),
    );
    if let Some(v) = version {
        labels.insert(
            "org.opencontainers.image.version".to_string(),
            v.to_string(),
        );
    }
    if let Some(rev) = opts
        .revision_label
        .then(|| git_revision(&opts.workspace_dir))
        .flatten()
    {
        labels.insert("org.opencontainers.image.revision".to_string(), rev);
    }
    labels.extend(opts.labels.clone());
    let config = ImageConfig {
        user: Some(
            opts.user
                .clone()
                .unwrap_or_else(|| format!("{APP_UID}:{APP_UID}")),
        ),
        entrypoint: vec![target],
        cmd: vec![],
        env: opts.env.clone(),
        working_dir: Some("/app".into()),
        exposed_ports: opts.port.into_iter().collect(),
        labels,
        created: epoch,
    };
    ImageBuilder::new()
        .layer(base)
        .layer(app)
        .config(config)
        .build()
}

/// The one Rust build path (`tug build` and `tug up` alike): `cargo build`
/// then [`assemble_rust`]. Blocking; cargo's output goes to `on_line` live.
pub fn build_rust(
    opts: &RustBuildOptions,
    on_line: &(dyn Fn(&str) + Sync),
) -> Result<Image, OciError> {
    let bin = cargo_build_static(opts, on_line)?;
    assemble_rust(&bin.path, &bin.name, bin.version.as_deref(), opts)
}
