//! Finding or building each service's image. Built images are tagged by the
//! hash of their inputs, so an unchanged build yields the same image and the
//! service's replicas are left alone.

use crate::event::{Event, Sink};
use crate::render::ResolvedImage;
use crate::EngineError;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tug_runtime::{BuildRequest, Runtime};
use tug_spec::{Build, RustBuild, Service, Stack};

#[tracing::instrument(name = "image", level = "info", skip_all, fields(service = %name))]
pub async fn resolve<R: Runtime>(
    rt: &R,
    stack: &Stack,
    name: &str,
    events: Sink<'_>,
) -> Result<ResolvedImage, EngineError> {
    let s = &stack.services[name];
    if rt.kind() == tug_runtime::RuntimeKind::Process {
        return resolve_executable(rt, stack, name, s, events).await;
    }
    // An image already at hand is inspected once (most runs).
    let mut known = None;
    let reference = match (&s.build, &s.verify) {
        (Some(_), Some(v)) => {
            return Err(image_error(
                name,
                s.image.as_deref().unwrap_or(""),
                format!(
                    "`verify: {{ key: {} }}` checks an image from a registry, but this service is built here: push and sign it (`tug build --push --key KEY`), then run it by `image:` alone",
                    v.key.display()
                ),
            ))
        }
        (None, Some(v)) => verified(rt, name, s.image.as_deref().unwrap_or(""), &v.key, events).await?,
        (Some(b), None) => build(rt, stack, name, s, b, events).await?,
        (None, None) => {
            let reference = s.image.clone().ok_or_else(|| EngineError::Image {
                service: name.into(),
                image: String::new(),
                detail: "the service has neither `image` nor `build`".into(),
            })?;
            known = rt.inspect_image(&reference).await?;
            if known.is_none() {
                events(Event::Image {
                    service: name.into(),
                    message: format!("pulling {reference}"),
                });
                if let Err(e) = rt.pull_image(&reference).await {
                    return Err(EngineError::Image {
                        service: name.into(),
                        image: reference,
                        detail: format!("not found locally and the pull failed: {e}"),
                    });
                }
            }
            reference
        }
    };
    let info = match known {
        Some(info) => Some(info),
        None => rt.inspect_image(&reference).await?,
    };
    let info = info.ok_or_else(|| EngineError::Image {
        service: name.into(),
        image: reference.clone(),
        detail: "not found on the engine".into(),
    })?;
    events(Event::ImageReady {
        service: name.into(),
        image: reference.clone(),
    });
    Ok(ResolvedImage {
        reference,
        id: info.id,
        user: info.user,
    })
}

/// For the process runtime: the executable a service runs, kept under the
/// stack's state directory by content, so a rollback finds the old binary.
async fn resolve_executable<R: Runtime>(
    rt: &R,
    stack: &Stack,
    name: &str,
    s: &Service,
    events: Sink<'_>,
) -> Result<ResolvedImage, EngineError> {
    if let Some(v) = &s.verify {
        return Err(image_error(
            name,
            s.image.as_deref().unwrap_or(""),
            format!(
                "the process runtime runs executables and cannot check `verify: {{ key: {} }}`; run on a container engine (`runtime: docker`)",
                v.key.display()
            ),
        ));
    }
    let reference = match (&s.build, &s.image) {
        (Some(Build { rust: Some(rb), .. }), _) => {
            events(Event::Image { service: name.into(), message: format!("compiling {}", rb.package) });
            let bin = compile_rust(stack, name, rb, events).await?;
            let state = crate::store::state_dir(&stack.name).join("bin");
            let package = rb.package.clone();
            tokio::task::spawn_blocking(move || keep_binary(&bin, &state, &package))
                .await
                .map_err(|e| image_error(name, &rb.package, e))?
                .map_err(|e| image_error(name, &rb.package, e))?
        }
        (Some(_), _) => {
            return Err(image_error(
                name,
                s.image.as_deref().unwrap_or(""),
                "the process runtime cannot build a Dockerfile: use `build: { rust: { package } }`, or run on a container engine (`runtime: docker`)",
            ))
        }
        (None, Some(image)) if Path::new(image).is_absolute() => image.clone(),
        (None, Some(image)) => {
            return Err(image_error(
                name,
                image,
                "the process runtime runs executables: give `image` as an absolute path, use `build: { rust: ... }`, or run on a container engine (`runtime: docker`)",
            ))
        }
        (None, None) => return Err(image_error(name, "", "the service has neither `image` nor `build`")),
    };
    let info = rt
        .inspect_image(&reference)
        .await?
        .ok_or_else(|| image_error(name, &reference, "not an executable file"))?;
    events(Event::ImageReady {
        service: name.into(),
        image: reference.clone(),
    });
    Ok(ResolvedImage {
        reference,
        id: info.id,
        user: info.user,
    })
}

/// Keeps a copy of the binary under `state/<digest>/`, so a rollback finds
/// the old one; returns the kept path.
fn keep_binary(bin: &Path, state: &Path, package: &str) -> Result<String, String> {
    let data = std::fs::read(bin).map_err(|e| format!("reading {}: {e}", bin.display()))?;
    let digest = hex::encode(Sha256::digest(&data));
    let file_name = bin
        .file_name()
        .map(|f| f.to_os_string())
        .unwrap_or_else(|| package.into());
    let dir = state.join(&digest[..16]);
    let kept = dir.join(file_name);
    if !kept.exists() {
        let copy = || -> std::io::Result<()> {
            std::fs::create_dir_all(&dir)?;
            let tmp = dir.join(".partial");
            std::fs::write(&tmp, &data)?;
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755))?;
            std::fs::rename(&tmp, &kept)
        };
        copy().map_err(|e| format!("keeping the binary in {}: {e}", dir.display()))?;
    }
    Ok(kept.display().to_string())
}

/// Whether the engine already has `tag` (built images are tagged by content,
/// so it is the same image); says so, or what is about to be `doing`.
async fn already_there<R: Runtime>(
    rt: &R,
    service: &str,
    tag: &str,
    doing: &str,
    events: Sink<'_>,
) -> Result<bool, EngineError> {
    let there = rt.inspect_image(tag).await?.is_some();
    let message = if there {
        format!("{tag} is up to date")
    } else {
        format!("{doing} {tag}")
    };
    events(Event::Image {
        service: service.into(),
        message,
    });
    Ok(there)
}

/// Checks the image's signature in its registry with the public key, then
/// makes sure the engine runs exactly the verified manifest: the returned
/// reference is pinned by digest (`repo@sha256:…`), pulled when missing.
async fn verified<R: Runtime>(
    rt: &R,
    name: &str,
    image: &str,
    key: &Path,
    events: Sink<'_>,
) -> Result<String, EngineError> {
    use tug_image::registry::{sign, ClientOptions, Reference, RegistryClient};
    let fail = |detail: String| {
        image_error(
            name,
            image,
            format!(
                "signature check with the key {} failed: {detail}",
                key.display()
            ),
        )
    };
    events(Event::Image {
        service: name.into(),
        message: format!("verifying the signature of {image} with {}", key.display()),
    });
    let (input, key_path) = (image.to_string(), key.to_path_buf());
    let checked = tokio::task::spawn_blocking(move || -> Result<(Reference, String), String> {
        let pem = std::fs::read_to_string(&key_path).map_err(|e| e.to_string())?;
        let public = sign::public_key(&pem).map_err(|e| e.to_string())?;
        let r = Reference::parse(&input).map_err(|e| e.to_string())?;
        let client =
            RegistryClient::new(&r, ClientOptions::default()).map_err(|e| e.to_string())?;
        let digest = client.verify(&r, &public).map_err(|e| e.to_string())?;
        Ok((r, digest))
    })
    .await
    .map_err(|e| fail(e.to_string()))?
    .map_err(fail)?;
    let (r, digest) = checked;
    let pinned = format!("{}/{}@{digest}", r.registry, r.repository);
    if rt.inspect_image(&pinned).await?.is_none() {
        events(Event::Image {
            service: name.into(),
            message: format!("pulling {pinned}"),
        });
        rt.pull_image(&pinned).await.map_err(|e| {
            image_error(
                name,
                &pinned,
                format!("the pull of the verified image failed: {e}"),
            )
        })?;
    }
    events(Event::Image {
        service: name.into(),
        message: format!("{image} verified ({digest})"),
    });
    Ok(pinned)
}

fn image_error(service: &str, image: &str, detail: impl ToString) -> EngineError {
    EngineError::Image {
        service: service.into(),
        image: image.into(),
        detail: detail.to_string(),
    }
}

async fn build<R: Runtime>(
    rt: &R,
    stack: &Stack,
    name: &str,
    s: &Service,
    b: &Build,
    events: Sink<'_>,
) -> Result<String, EngineError> {
    let repo = match &s.image {
        Some(image) => tug_runtime::docker::split_reference(image).0.to_string(),
        None => format!("{}-{name}", stack.name),
    };
    if b.rust.is_some() {
        return build_rust_image(rt, stack, name, events).await;
    }
    let dir = b.context.clone().unwrap_or_else(|| stack.dir.clone());
    let dockerfile = b
        .dockerfile
        .clone()
        .unwrap_or_else(|| PathBuf::from("Dockerfile"))
        .to_string_lossy()
        .into_owned();
    let context_tar = {
        let dir = dir.clone();
        tokio::task::spawn_blocking(move || context_tar(&dir))
            .await
            .map_err(|e| image_error(name, &repo, e))?
    }
    .map_err(|e| {
        image_error(
            name,
            &repo,
            format!("reading build context {}: {e}", dir.display()),
        )
    })?;
    let mut h = Sha256::new();
    h.update(&context_tar);
    h.update(dockerfile.as_bytes());
    for (k, v) in &b.args {
        h.update(format!("\0{k}={v}").as_bytes());
    }
    h.update(b.target.as_deref().unwrap_or("").as_bytes());
    let labels = BTreeMap::from([(
        tug_runtime::labels::IMAGE_OF.to_string(),
        format!("{}/{name}", stack.name),
    )]);
    for (k, v) in &labels {
        h.update(format!("\0label {k}={v}").as_bytes());
    }
    let tag = format!("{repo}:{}", &hex::encode(h.finalize())[..12]);
    if already_there(rt, name, &tag, "building", events).await? {
        return Ok(tag);
    }
    let request = BuildRequest {
        tag: tag.clone(),
        context_tar,
        dockerfile,
        args: b.args.clone(),
        target: b.target.clone(),
        labels,
    };
    let service = name.to_string();
    rt.build_image(request, &|line| {
        events(Event::BuildLog {
            service: service.clone(),
            line: line.to_string(),
        })
    })
    .await
    .map_err(|e| image_error(name, &tag, format!("build failed:\n{e}")))?;
    Ok(tag)
}

/// A build context as a deterministic tar: sorted entries, zero mtimes,
/// `.dockerignore` honoured.
pub fn context_tar(dir: &Path) -> std::io::Result<Vec<u8>> {
    let mut ignore = ignore::gitignore::GitignoreBuilder::new(dir);
    let di = dir.join(".dockerignore");
    if di.exists() {
        if let Some(e) = ignore.add(&di) {
            return Err(std::io::Error::other(e.to_string()));
        }
    }
    let ignore = ignore
        .build()
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let mut files = Vec::new();
    let walker = ignore::WalkBuilder::new(dir)
        .standard_filters(false)
        .hidden(false)
        .sort_by_file_name(|a, b| a.cmp(b))
        .build();
    for entry in walker {
        let entry = entry.map_err(|e| std::io::Error::other(e.to_string()))?;
        let path = entry.path();
        let rel = path.strip_prefix(dir).unwrap_or(path);
        if rel.as_os_str().is_empty() {
            continue;
        }
        let is_dir = entry.file_type().is_some_and(|t| t.is_dir());
        if ignore.matched_path_or_any_parents(rel, is_dir).is_ignore() {
            continue;
        }
        if entry.file_type().is_some_and(|t| t.is_file()) {
            files.push((rel.to_path_buf(), path.to_path_buf()));
        }
    }
    let mut b = tar::Builder::new(Vec::new());
    for (rel, path) in files {
        let data = std::fs::read(&path)?;
        let mode = std::fs::metadata(&path).map(|m| {
            use std::os::unix::fs::PermissionsExt;
            m.permissions().mode() & 0o777
        })?;
        append(&mut b, &rel.to_string_lossy(), mode, &data)?;
    }
    b.into_inner()
}

fn append(
    b: &mut tar::Builder<Vec<u8>>,
    path: &str,
    mode: u32,
    data: &[u8],
) -> std::io::Result<()> {
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(mode);
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    h.set_cksum();
    b.append_data(&mut h, path, data)
}

/// Everything that decides a Rust service's image, read from tug.yaml alone:
/// `tug up` and `tug build` both build from these, so the same source gives
/// the same image digest from either. No git revision label: the image
/// depends on the binary, and a new commit is not a new binary.
pub fn rust_build_options(
    stack: &Stack,
    name: &str,
) -> Result<tug_image::oci::RustBuildOptions, EngineError> {
    let s = stack
        .services
        .get(name)
        .ok_or_else(|| image_error(name, "", format!("the stack has no service `{name}`")))?;
    let rb = s
        .build
        .as_ref()
        .and_then(|b| b.rust.as_ref())
        .ok_or_else(|| image_error(name, "", "the service has no `build: { rust: ... }`"))?;
    let ws = workspace_dir(stack, rb).ok_or_else(|| {
        image_error(
            name,
            &rb.package,
            format!(
                "no Cargo.lock at or above {}: set build.rust.workspace",
                stack.dir.display()
            ),
        )
    })?;
    let mut opts = tug_image::oci::RustBuildOptions::new(ws, &rb.package);
    opts.bin = rb.bin.clone();
    opts.profile = rb.profile.clone();
    opts.port = s.port;
    opts.user = s.security.user.clone();
    opts.revision_label = false;
    opts.labels.insert(
        tug_runtime::labels::IMAGE_OF.into(),
        format!("{}/{name}", stack.name),
    );
    Ok(opts)
}

/// The local tag of a built image: the service's repository (or
/// `<stack>-<service>`) and the config digest, so the same image keeps its tag.
pub fn built_tag(stack: &Stack, name: &str, image: &tug_image::oci::Image) -> String {
    let repo = match stack.services.get(name).and_then(|s| s.image.as_ref()) {
        Some(image) => tug_runtime::docker::split_reference(image).0.to_string(),
        None => format!("{}-{name}", stack.name),
    };
    let digest = image.config_digest();
    format!(
        "{repo}:{}",
        tug_image::oci::hex_of(&digest)
            .get(..12)
            .unwrap_or("latest")
    )
}

/// Runs `f` on the blocking pool; its lines (cargo's output) reach `events`
/// as `BuildLog`s while it runs, not after.
async fn blocking_with_log<T: Send + 'static>(
    name: &str,
    events: Sink<'_>,
    f: impl FnOnce(&(dyn Fn(&str) + Sync)) -> T + Send + 'static,
) -> Result<T, EngineError> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let task = tokio::task::spawn_blocking(move || {
        let send = move |line: &str| {
            let _ = tx.send(line.to_string());
        };
        f(&send)
    });
    while let Some(line) = rx.recv().await {
        if !line.trim().is_empty() {
            events(Event::BuildLog {
                service: name.into(),
                line,
            });
        }
    }
    task.await
        .map_err(|e| image_error(name, "", format!("build task failed: {e}")))
}

/// The one Rust build path: compiles the service's package statically and
/// assembles its image without a daemon, all off the async executor, with
/// cargo's output streamed as `BuildLog` events. Services build concurrently
/// when awaited together (cargo's own lock orders builds of one workspace).
#[tracing::instrument(name = "build", level = "info", skip_all, fields(service = %name))]
pub async fn build_rust(
    stack: &Stack,
    name: &str,
    events: Sink<'_>,
) -> Result<tug_image::oci::Image, EngineError> {
    let opts = rust_build_options(stack, name)?;
    events(Event::Image {
        service: name.into(),
        message: format!("compiling {} statically", opts.package),
    });
    let package = opts.package.clone();
    blocking_with_log(name, events, move |log| {
        tug_image::oci::build_rust(&opts, log)
    })
    .await?
    .map_err(|e| image_error(name, &package, e))
}

/// Builds the Rust service's image and loads it into the engine under
/// [`built_tag`]; an image the engine already has is not loaded again.
async fn build_rust_image<R: Runtime>(
    rt: &R,
    stack: &Stack,
    name: &str,
    events: Sink<'_>,
) -> Result<String, EngineError> {
    let image = build_rust(stack, name, events).await?;
    let tag = built_tag(stack, name, &image);
    if already_there(rt, name, &tag, "loading", events).await? {
        return Ok(tag);
    }
    let archive = {
        let t = tag.clone();
        tokio::task::spawn_blocking(move || {
            let mut archive = Vec::new();
            image
                .write_docker_archive(&mut archive, &t)
                .map(|_| archive)
        })
        .await
        .map_err(|e| image_error(name, &tag, e))?
        .map_err(|e| image_error(name, &tag, e))?
    };
    rt.load_image(archive)
        .await
        .map_err(|e| image_error(name, &tag, format!("loading into the engine: {e}")))?;
    Ok(tag)
}

/// The cargo workspace a Rust build runs in: the one named, else the nearest
/// directory at or above the stack's holding Cargo.lock.
pub fn workspace_dir(stack: &Stack, rb: &RustBuild) -> Option<PathBuf> {
    if let Some(w) = &rb.workspace {
        return Some(stack.dir.join(w));
    }
    stack
        .dir
        .ancestors()
        .find(|d| d.join("Cargo.lock").exists())
        .map(Path::to_path_buf)
}

/// Compiles the package statically (the same cargo invocation as images)
/// and returns the binary's path.
async fn compile_rust(
    stack: &Stack,
    name: &str,
    rb: &RustBuild,
    events: Sink<'_>,
) -> Result<PathBuf, EngineError> {
    let opts = rust_build_options(stack, name)?;
    let package = rb.package.clone();
    blocking_with_log(name, events, move |log| {
        tug_image::oci::cargo_build_static(&opts, log)
    })
    .await?
    .map(|b| b.path)
    .map_err(|e| image_error(name, &package, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_is_deterministic_and_honours_dockerignore() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("Dockerfile"), "FROM scratch\n").unwrap();
        std::fs::write(dir.path().join(".dockerignore"), "secret.txt\ntarget/\n").unwrap();
        std::fs::write(dir.path().join("secret.txt"), "x").unwrap();
        std::fs::create_dir(dir.path().join("target")).unwrap();
        std::fs::write(dir.path().join("target/big"), "x").unwrap();
        std::fs::write(dir.path().join("b.txt"), "b").unwrap();
        let a = context_tar(dir.path()).unwrap();
        let b = context_tar(dir.path()).unwrap();
        assert_eq!(a, b);
        let names: Vec<String> = tar::Archive::new(&a[..])
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(names, [".dockerignore", "Dockerfile", "b.txt"]);
    }
}
