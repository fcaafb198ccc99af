//! The Docker Engine API adapter (also Podman's Docker-compatible socket).
//!
//! Podman 4.3's compatibility API differs in ways this adapter evens out:
//! a taken container name is a 500 (not a 409), a container between its
//! stop and its cleanup is in a `stopped` state Docker does not have (inspect
//! waits it out), and its log endpoint hands
//! out each write as a frame and counts partial writes as lines for `tail`,
//! so lines are joined here and `tail` is applied on tug's side. Two things
//! it cannot do, and tug does not rely on: HEALTHCHECK without systemd (its
//! timers run through systemd; tug runs exec checks through [`Runtime::exec`])
//! and, on cgroup v1 hosts, OOM reporting (no `oom` event, `OOMKilled` false).
//!
//! Neither engine's exec API kills a process that outlives its timeout:
//! tug kills it through its host pid when the engine is local. Neither
//! lets a volume or a file be created owned by a given user: tug extracts
//! a tar through a helper container (created, never started), and on Podman
//! passes a new volume's owner as the local driver's `uid`/`gid` options.

use crate::*;
use bollard::errors::Error as BError;
use bollard::models::{
    ContainerCreateBody, EndpointSettings, HealthConfig, HealthStatusEnum, HostConfig,
    NetworkCreateRequest, NetworkingConfig, PortBinding, RestartPolicy, RestartPolicyNameEnum,
    VolumeCreateRequest,
};
use bollard::query_parameters as q;
use bollard::Docker;
use futures_util::{StreamExt, TryStreamExt};
use std::collections::HashMap;

/// A [`Runtime`] on a Docker-compatible engine.
#[derive(Clone)]
pub struct DockerRuntime {
    docker: Docker,
    addr: String,
    engine: EngineInfo,
}

fn default_addr() -> String {
    std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".to_string())
}

impl DockerRuntime {
    /// Names of the containers attached to network `name`, as its inspect says.
    async fn network_users(&self, name: &str) -> Vec<String> {
        let Ok(net) = self
            .docker
            .inspect_network(name, None::<q::InspectNetworkOptions>)
            .await
        else {
            return Vec::new();
        };
        let mut users: Vec<String> = net
            .containers
            .unwrap_or_default()
            .into_iter()
            .map(|(id, c)| c.name.unwrap_or(id))
            .collect();
        users.sort();
        users
    }

    /// Connects to `DOCKER_HOST` (or the default socket) and checks that the engine answers.
    pub async fn connect() -> Result<Self> {
        Self::connect_to(&default_addr()).await
    }

    /// Connects to the engine at `addr` (`unix:///path`, `tcp://host:port`)
    /// and checks that it answers.
    pub async fn connect_to(addr: &str) -> Result<Self> {
        let unreachable = |e: BError| RuntimeError::Unreachable {
            addr: addr.to_string(),
            detail: e.to_string(),
        };
        let docker = Docker::connect_with_host(addr).map_err(unreachable)?;
        docker.ping().await.map_err(unreachable)?;
        let docker = docker.negotiate_version().await.map_err(unreachable)?;
        let version = docker.version().await.map_err(unreachable)?;
        Ok(DockerRuntime {
            docker,
            addr: addr.to_string(),
            engine: engine_of(&version),
        })
    }

    fn is_podman(&self) -> bool {
        self.engine.name == "podman"
    }

    /// Kills an exec'd process that outlived its timeout, with its
    /// children. The exec API cannot (on Docker or Podman), so this goes
    /// through the process's host pid from exec inspect: only when the engine
    /// is on this host (a unix socket) and the pid is still in the
    /// container's cgroup, so a reused pid is never hit.
    async fn kill_exec(&self, exec_id: &str) {
        if !self.addr.starts_with("unix://") {
            return;
        }
        let Ok(inspect) = self.docker.inspect_exec(exec_id).await else {
            return;
        };
        let (Some(pid), Some(container), Some(true)) =
            (inspect.pid, inspect.container_id, inspect.running)
        else {
            return;
        };
        let killed = tokio::task::spawn_blocking(move || kill_tree(pid, &container)).await;
        if let Ok(Err(e)) = killed {
            tracing::warn!(exec = %exec_id, pid, error = %e, "could not kill a timed-out exec");
        }
    }

    /// Creates a helper container of `image` (never started), labelled
    /// with the stack it works for so that one left behind by a killed tug
    /// is swept ([`Runtime::sweep_helpers`]). Its name carries tug's pid,
    /// which tells the sweep whether its creator still runs.
    async fn create_helper(
        &self,
        image: &str,
        user: Option<String>,
        bind: Option<&str>,
        stack: &str,
    ) -> std::result::Result<String, String> {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let name = format!(
            "tug-helper-{}-{}",
            std::process::id(),
            N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let body = ContainerCreateBody {
            image: Some(image.to_string()),
            // Never run; a scratch image has no command to default to.
            cmd: Some(vec![HELPER_PATH.to_string()]),
            user,
            labels: Some(HashMap::from([(
                labels::HELPER_OF.to_string(),
                stack.to_string(),
            )])),
            network_disabled: Some(true),
            host_config: Some(HostConfig {
                binds: bind.map(|b| vec![b.to_string()]),
                network_mode: Some("none".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let opts = q::CreateContainerOptionsBuilder::default()
            .name(&name)
            .build();
        self.docker
            .create_container(Some(opts), body)
            .await
            .map_err(|e| message(&e))?;
        Ok(name)
    }

    async fn remove_helper(&self, name: &str) {
        let rm = q::RemoveContainerOptionsBuilder::default()
            .force(true)
            .v(false)
            .build();
        if let Err(e) = self.docker.remove_container(name, Some(rm)).await {
            tracing::warn!(container = %name, error = %message(&e), "helper container left behind");
        }
    }

    /// Extracts `tar` at `path` in a helper container of `owner.image`
    /// that has `bind` (`source:target`) mounted and runs as the owner; the
    /// engine writes as root on its side, Docker taking owners from the tar
    /// headers and Podman from the container's user. The helper is created
    /// and removed, never started.
    async fn through_helper(
        &self,
        bind: &str,
        owner: &Owner,
        path: &str,
        tar: Vec<u8>,
    ) -> std::result::Result<(), String> {
        let name = self
            .create_helper(
                &owner.image,
                Some(format!("{}:{}", owner.uid, owner.gid)),
                Some(bind),
                &owner.stack,
            )
            .await?;
        let opts = q::UploadToContainerOptionsBuilder::default()
            .path(path)
            .build();
        let put = self
            .docker
            .upload_to_container(&name, Some(opts), bollard::body_full(tar.into()))
            .await
            .map_err(|e| message(&e));
        self.remove_helper(&name).await;
        put
    }

    /// One regular file of a (never started) container, at most
    /// [`IMAGE_FILE_MAX`] bytes; `None` when it has no such file.
    async fn download_file(&self, container: &str, path: &str) -> Result<Option<Vec<u8>>> {
        let opts = q::DownloadFromContainerOptionsBuilder::default()
            .path(path)
            .build();
        let mut stream = self.docker.download_from_container(container, Some(opts));
        let mut tar = Vec::new();
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(b) => tar.extend_from_slice(&b),
                Err(e) if status_code(&e) == Some(404) => return Ok(None),
                Err(e) => {
                    return Err(RuntimeError::api(
                        format!("reading {path} from an image"),
                        message(&e),
                    ))
                }
            }
            if tar.len() > IMAGE_FILE_MAX + 64 * 1024 {
                return Err(RuntimeError::api(
                    format!("reading {path} from an image"),
                    format!("larger than {IMAGE_FILE_MAX} bytes"),
                ));
            }
        }
        tokio::task::spawn_blocking(move || first_regular_file(&tar))
            .await
            .map_err(|e| RuntimeError::api(format!("reading {path} from an image"), e))?
            .map_err(|e| RuntimeError::api(format!("reading {path} from an image"), e))
    }

    pub fn client(&self) -> &Docker {
        &self.docker
    }

    /// The image as a `docker save` archive.
    pub async fn save_image(&self, reference: &str) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        let mut stream = self.docker.export_image(reference);
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(b) => out.extend_from_slice(&b),
                Err(e) if status_code(&e) == Some(404) => {
                    return Err(RuntimeError::NotFound(format!("image {reference}")))
                }
                Err(e) => {
                    return Err(RuntimeError::api(
                        format!("saving image {reference}"),
                        message(&e),
                    ))
                }
            }
        }
        Ok(out)
    }
}

/// SIGKILLs `pid` and its descendants, if `pid` is in the cgroup of
/// `container` (a full container id).
fn kill_tree(pid: i64, container: &str) -> std::io::Result<()> {
    // No pid yet (the engine has not started it), or the process is gone:
    // nothing to kill.
    if pid <= 0 {
        return Ok(());
    }
    let cgroup = match std::fs::read_to_string(format!("/proc/{pid}/cgroup")) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        r => r?,
    };
    if !cgroup.contains(container) {
        return Ok(());
    }
    let mut tree = vec![pid];
    let mut i = 0;
    while i < tree.len() {
        let tasks = std::fs::read_dir(format!("/proc/{}/task", tree[i]))?;
        for task in tasks.flatten() {
            let children =
                std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
            tree.extend(
                children
                    .split_whitespace()
                    .filter_map(|c| c.parse::<i64>().ok()),
            );
        }
        i += 1;
    }
    for p in tree {
        let pid = i32::try_from(p)
            .ok()
            .and_then(rustix::process::Pid::from_raw);
        if let Some(pid) = pid {
            // Gone already is fine.
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
        }
    }
    Ok(())
}

/// Where a helper container mounts what it writes into.
const HELPER_PATH: &str = "/.tug-helper";

/// How much of one image file tug reads (an /etc/passwd is a few KiB).
const IMAGE_FILE_MAX: usize = 1 << 20;

/// The content of the first entry of a tar when it is a regular file.
fn first_regular_file(tar: &[u8]) -> std::io::Result<Option<Vec<u8>>> {
    use std::io::Read;
    let mut archive = tar::Archive::new(tar);
    let Some(entry) = archive.entries()?.next() else {
        return Ok(None);
    };
    let entry = entry?;
    if entry.header().entry_type() != tar::EntryType::Regular {
        return Ok(None);
    }
    let mut out = Vec::new();
    entry.take(IMAGE_FILE_MAX as u64).read_to_end(&mut out)?;
    Ok(Some(out))
}

/// Whether a helper may still be in use: its creator (the pid in its name
/// `tug-helper-<pid>-<n>`) runs and it is younger than [`HELPER_MAX_AGE`]
/// (a helper lives for one call, milliseconds). A name of another shape is
/// not one of ours to judge: kept.
fn helper_in_use(name: &str, created: i64, now: i64) -> bool {
    let pid = name
        .strip_prefix("tug-helper-")
        .and_then(|r| r.split_once('-'))
        .and_then(|(pid, _)| pid.parse::<u32>().ok());
    match pid {
        Some(pid) => {
            now - created < HELPER_MAX_AGE
                && (pid == std::process::id()
                    || std::path::Path::new(&format!("/proc/{pid}")).exists())
        }
        None => true,
    }
}

/// Seconds after which a helper is left over whoever created it.
const HELPER_MAX_AGE: i64 = 600;

/// A tar of directories (`None`) and files, each owned by `owner` with its mode.
fn tar_of(entries: &[(&str, Option<&[u8]>, u32)], owner: &Owner) -> Result<Vec<u8>> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, content, mode) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_uid(u64::from(owner.uid));
        h.set_gid(u64::from(owner.gid));
        h.set_mode(*mode);
        h.set_mtime(0);
        let data = content.unwrap_or_default();
        h.set_entry_type(if content.is_some() {
            tar::EntryType::Regular
        } else {
            tar::EntryType::Directory
        });
        h.set_size(data.len() as u64);
        b.append_data(&mut h, name, data)
            .map_err(|e| RuntimeError::api(format!("packing {name}"), e))?;
    }
    b.into_inner()
        .map_err(|e| RuntimeError::api("packing files", e))
}

/// Docker or Podman, from `GET /version`: Podman lists a "Podman Engine" component.
fn engine_of(v: &bollard::models::SystemVersion) -> EngineInfo {
    let podman = v
        .components
        .iter()
        .flatten()
        .find(|c| c.name.starts_with("Podman"));
    EngineInfo {
        name: if podman.is_some() { "podman" } else { "docker" }.into(),
        version: podman
            .map(|c| c.version.clone())
            .or_else(|| v.version.clone())
            .unwrap_or_else(|| "unknown".into()),
        api_version: v.api_version.clone(),
    }
}

fn status_code(e: &BError) -> Option<u16> {
    match e {
        BError::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}

fn message(e: &BError) -> String {
    match e {
        BError::DockerResponseServerError { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

fn to_filters(filter: &LabelFilter) -> HashMap<String, Vec<String>> {
    let labels = filter
        .iter()
        .map(|(k, v)| match v {
            Some(v) => format!("{k}={v}"),
            None => k.clone(),
        })
        .collect();
    HashMap::from([("label".to_string(), labels)])
}

fn nanos(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

fn parse_state(s: &str) -> ContainerState {
    match s {
        "created" => ContainerState::Created,
        "running" => ContainerState::Running,
        "restarting" => ContainerState::Restarting,
        "paused" => ContainerState::Paused,
        "removing" => ContainerState::Removing,
        "dead" => ContainerState::Dead,
        _ => ContainerState::Exited,
    }
}

fn parse_time(s: &str) -> i64 {
    // RFC 3339 from the engine, e.g. 2026-11-26T12:00:00.123456789Z.
    fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
        let y = if m <= 2 { y - 1 } else { y };
        let era = if y >= 0 { y } else { y - 399 } / 400;
        let yoe = y - era * 400;
        let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146097 + doe - 719468
    }
    let num = |a: usize, b: usize| s.get(a..b).and_then(|x| x.parse::<i64>().ok());
    match (
        num(0, 4),
        num(5, 7),
        num(8, 10),
        num(11, 13),
        num(14, 16),
        num(17, 19),
    ) {
        (Some(y), Some(mo), Some(d), Some(h), Some(mi), Some(se)) => {
            days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se
        }
        _ => 0,
    }
}

impl Runtime for DockerRuntime {
    fn address(&self) -> String {
        self.addr.clone()
    }

    fn engine(&self) -> EngineInfo {
        self.engine.clone()
    }

    async fn ping(&self) -> Result<()> {
        self.docker
            .ping()
            .await
            .map(|_| ())
            .map_err(|e| RuntimeError::Unreachable {
                addr: self.addr.clone(),
                detail: e.to_string(),
            })
    }

    async fn inspect_image(&self, reference: &str) -> Result<Option<ImageInfo>> {
        match self.docker.inspect_image(reference).await {
            Ok(i) => Ok(Some(ImageInfo {
                id: i.id.unwrap_or_default(),
                user: i.config.and_then(|c| c.user).unwrap_or_default(),
            })),
            Err(e) if status_code(&e) == Some(404) => Ok(None),
            Err(e) => Err(RuntimeError::api(
                format!("inspecting image {reference}"),
                message(&e),
            )),
        }
    }

    async fn pull_image(&self, reference: &str) -> Result<()> {
        let (image, tag) = split_reference(reference);
        let opts = q::CreateImageOptionsBuilder::default()
            .from_image(image)
            .tag(tag)
            .build();
        let mut stream = self.docker.create_image(Some(opts), None, None);
        while let Some(item) = stream.next().await {
            item.map_err(|e| RuntimeError::api(format!("pulling {reference}"), message(&e)))?;
        }
        Ok(())
    }

    async fn build_image(
        &self,
        request: BuildRequest,
        progress: &(dyn Fn(&str) + Send + Sync),
    ) -> Result<String> {
        let buildargs: HashMap<String, String> = request.args.clone().into_iter().collect();
        let labels: HashMap<String, String> = request.labels.clone().into_iter().collect();
        let mut opts = q::BuildImageOptionsBuilder::default()
            .dockerfile(&request.dockerfile)
            .t(&request.tag)
            .rm(true)
            .forcerm(true)
            .buildargs(&buildargs)
            .labels(&labels);
        if let Some(t) = &request.target {
            opts = opts.target(t);
        }
        let body = bollard::body_full(request.context_tar.into());
        let mut stream = self.docker.build_image(opts.build(), None, Some(body));
        let mut last = Vec::new();
        while let Some(item) = stream.next().await {
            match item {
                Ok(info) => {
                    if let Some(err) = info.error_detail.and_then(|d| d.message) {
                        last.push(err);
                        return Err(RuntimeError::Build(last.join("\n")));
                    }
                    if let Some(s) = info.stream {
                        for line in s.lines().filter(|l| !l.trim().is_empty()) {
                            progress(line);
                            last.push(line.to_string());
                            if last.len() > 20 {
                                last.remove(0);
                            }
                        }
                    }
                }
                Err(e) => {
                    last.push(message(&e));
                    return Err(RuntimeError::Build(last.join("\n")));
                }
            }
        }
        let info = self.inspect_image(&request.tag).await?.ok_or_else(|| {
            RuntimeError::Build(format!("the build finished but {} is missing", request.tag))
        })?;
        Ok(info.id)
    }

    async fn load_image(&self, archive: Vec<u8>) -> Result<()> {
        let mut stream = self.docker.import_image(
            q::ImportImageOptionsBuilder::default().quiet(true).build(),
            bollard::body_full(archive.into()),
            None,
        );
        while let Some(item) = stream.next().await {
            item.map_err(|e| RuntimeError::api("loading image", message(&e)))?;
        }
        Ok(())
    }

    async fn create_network(&self, name: &str, labels: &BTreeMap<String, String>) -> Result<()> {
        // Docker accepts duplicate network names; look first so a re-run converges.
        match self
            .docker
            .inspect_network(name, None::<q::InspectNetworkOptions>)
            .await
        {
            Ok(_) => return Ok(()),
            Err(e) if status_code(&e) == Some(404) => {}
            Err(e) => {
                return Err(RuntimeError::api(
                    format!("inspecting network {name}"),
                    message(&e),
                ))
            }
        }
        let req = NetworkCreateRequest {
            name: name.to_string(),
            driver: Some("bridge".into()),
            labels: Some(labels.clone().into_iter().collect()),
            ..Default::default()
        };
        match self.docker.create_network(req).await {
            Ok(_) => Ok(()),
            Err(e) if status_code(&e) == Some(409) => Ok(()),
            Err(e) => Err(RuntimeError::api(
                format!("creating network {name}"),
                message(&e),
            )),
        }
    }

    async fn remove_network(&self, name: &str) -> Result<()> {
        // The engine can report a just-removed container's endpoint for a
        // moment: retry for up to 2 s before naming what is attached.
        let mut tries = 0;
        loop {
            let e = match self.docker.remove_network(name).await {
                Ok(()) => return Ok(()),
                Err(e) if status_code(&e) == Some(404) => return Ok(()),
                Err(e) => e,
            };
            let context = format!("removing network {name}");
            if !message(&e).contains("active endpoints") {
                return Err(RuntimeError::api(context, message(&e)));
            }
            tries += 1;
            if tries < 20 {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
            let users = self.network_users(name).await;
            let fix = match users.first() {
                Some(first) => format!(
                    "still used by {}: `docker network disconnect {name} {first}` (or remove it), then run `tug down` again",
                    users.join(", ")
                ),
                None => "the engine still lists an endpoint on it: run `tug down` again".to_string(),
            };
            return Err(RuntimeError::api(context, fix));
        }
    }

    async fn list_networks(&self, filter: &LabelFilter) -> Result<Vec<String>> {
        let opts = q::ListNetworksOptionsBuilder::default()
            .filters(&to_filters(filter))
            .build();
        let nets = self
            .docker
            .list_networks(Some(opts))
            .await
            .map_err(|e| RuntimeError::api("listing networks", message(&e)))?;
        let mut names: Vec<String> = nets.into_iter().filter_map(|n| n.name).collect();
        names.sort();
        Ok(names)
    }

    async fn create_volume(
        &self,
        name: &str,
        labels: &BTreeMap<String, String>,
        owner: Option<&Owner>,
    ) -> Result<()> {
        // Podman's local driver takes the owner as an option; Docker's
        // needs a device for any option, so the owner is set afterwards.
        let driver_opts = owner
            .filter(|_| self.is_podman())
            .map(|o| HashMap::from([("o".to_string(), format!("uid={},gid={}", o.uid, o.gid))]));
        let req = VolumeCreateRequest {
            name: Some(name.to_string()),
            labels: Some(labels.clone().into_iter().collect()),
            driver_opts,
            ..Default::default()
        };
        self.docker
            .create_volume(req)
            .await
            .map_err(|e| RuntimeError::api(format!("creating volume {name}"), message(&e)))?;
        match owner {
            Some(o) if !self.is_podman() => {
                // The mount point's directory entry, extracted over the
                // volume: Docker takes its owner and mode from the header.
                let tar = tar_of(&[(HELPER_PATH.trim_start_matches('/'), None, 0o755)], o)?;
                self.through_helper(&format!("{name}:{HELPER_PATH}"), o, "/", tar)
                    .await
                    .map_err(|e| {
                        RuntimeError::api(format!("setting the owner of volume {name}"), e)
                    })
            }
            _ => Ok(()),
        }
    }

    async fn write_files(&self, dir: &Path, files: &[FileSpec], owner: &Owner) -> Result<()> {
        std::fs::create_dir_all(dir)
            .map_err(|e| RuntimeError::api(format!("creating {}", dir.display()), e))?;
        let entries: Vec<(&str, Option<&[u8]>, u32)> = files
            .iter()
            .map(|f| (f.name.as_str(), Some(f.content.as_slice()), f.mode))
            .collect();
        let tar = tar_of(&entries, owner)?;
        self.through_helper(
            &format!("{}:{HELPER_PATH}", dir.display()),
            owner,
            HELPER_PATH,
            tar,
        )
        .await
        .map_err(|e| RuntimeError::api(format!("writing files in {}", dir.display()), e))
    }

    async fn read_image_files(
        &self,
        image: &str,
        paths: &[&str],
        stack: &str,
    ) -> Result<BTreeMap<String, Vec<u8>>> {
        let helper = self
            .create_helper(image, None, None, stack)
            .await
            .map_err(|e| RuntimeError::api(format!("reading files of image {image}"), e))?;
        let mut out = BTreeMap::new();
        let mut failed = None;
        for p in paths {
            match self.download_file(&helper, p).await {
                Ok(Some(f)) => {
                    out.insert(p.to_string(), f);
                }
                Ok(None) => {}
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        self.remove_helper(&helper).await;
        match failed {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }

    async fn sweep_helpers(&self, stack: &str) -> Result<Vec<String>> {
        let filter = LabelFilter::from([(labels::HELPER_OF.to_string(), Some(stack.to_string()))]);
        let opts = q::ListContainersOptionsBuilder::default()
            .all(true)
            .filters(&to_filters(&filter))
            .build();
        let list = self
            .docker
            .list_containers(Some(opts))
            .await
            .map_err(|e| RuntimeError::api("listing helper containers", message(&e)))?;
        let mut swept = Vec::new();
        for c in list {
            let Some(name) = c.names.and_then(|n| n.into_iter().next()) else {
                continue;
            };
            let name = name.trim_start_matches('/').to_string();
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64);
            if helper_in_use(&name, c.created.unwrap_or(now), now) {
                continue;
            }
            let rm = q::RemoveContainerOptionsBuilder::default()
                .force(true)
                .v(false)
                .build();
            match self.docker.remove_container(&name, Some(rm)).await {
                Ok(()) => swept.push(name),
                Err(e) if status_code(&e) == Some(404) => {}
                Err(e) => {
                    return Err(RuntimeError::api(
                        format!("removing helper container {name}"),
                        message(&e),
                    ))
                }
            }
        }
        Ok(swept)
    }

    async fn remove_volume(&self, name: &str) -> Result<()> {
        match self
            .docker
            .remove_volume(name, None::<q::RemoveVolumeOptions>)
            .await
        {
            Ok(()) => Ok(()),
            Err(e) if status_code(&e) == Some(404) => Ok(()),
            Err(e) => Err(RuntimeError::api(
                format!("removing volume {name}"),
                message(&e),
            )),
        }
    }

    async fn list_volumes(&self, filter: &LabelFilter) -> Result<Vec<String>> {
        let opts = q::ListVolumesOptionsBuilder::default()
            .filters(&to_filters(filter))
            .build();
        let resp = self
            .docker
            .list_volumes(Some(opts))
            .await
            .map_err(|e| RuntimeError::api("listing volumes", message(&e)))?;
        let mut names: Vec<String> = resp
            .volumes
            .unwrap_or_default()
            .into_iter()
            .map(|v| v.name)
            .collect();
        names.sort();
        Ok(names)
    }

    async fn create_container(&self, spec: &ContainerSpec) -> Result<String> {
        let port_key = spec.port.map(|p| format!("{p}/tcp"));
        let binding = |publish: Option<u16>, ip: &Option<String>| PortBinding {
            host_ip: Some(ip.clone().unwrap_or_else(|| "127.0.0.1".into())),
            host_port: Some(publish.map(|p| p.to_string()).unwrap_or_default()),
        };
        let mut bindings: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
        if let Some(k) = &port_key {
            bindings.insert(k.clone(), Some(vec![binding(spec.publish, &spec.host_ip)]));
        }
        for p in &spec.ports {
            bindings
                .entry(format!("{}/{}", p.port, p.protocol))
                .or_insert_with(|| Some(Vec::new()))
                .get_or_insert_with(Vec::new)
                .push(binding(p.publish, &p.host_ip));
        }
        let mut exposed: Vec<String> = bindings.keys().cloned().collect();
        exposed.extend(spec.expose.iter().map(|(p, proto)| format!("{p}/{proto}")));
        exposed.sort();
        exposed.dedup();
        let port_bindings = (!bindings.is_empty()).then_some(bindings);
        let mut security_opt = Vec::new();
        if spec.no_new_privileges {
            security_opt.push("no-new-privileges:true".to_string());
        }
        if let Some(s) = &spec.seccomp {
            security_opt.push(format!("seccomp={s}"));
        }
        let mounts: Vec<bollard::models::Mount> = spec
            .mounts
            .iter()
            .map(|m| {
                let (typ, source) = match &m.source {
                    MountKind::Volume(v) => (bollard::models::MountType::VOLUME, v.clone()),
                    MountKind::Bind(p) => {
                        (bollard::models::MountType::BIND, p.display().to_string())
                    }
                };
                bollard::models::Mount {
                    target: Some(m.target.clone()),
                    source: Some(source),
                    typ: Some(typ),
                    read_only: Some(m.read_only),
                    ..Default::default()
                }
            })
            .collect();
        let restart = match spec.restart {
            Restart::No => RestartPolicyNameEnum::NO,
            Restart::Always => RestartPolicyNameEnum::ALWAYS,
            Restart::OnFailure => RestartPolicyNameEnum::ON_FAILURE,
            Restart::UnlessStopped => RestartPolicyNameEnum::UNLESS_STOPPED,
        };
        let host_config = HostConfig {
            port_bindings,
            mounts: Some(mounts),
            tmpfs: Some(
                spec.tmpfs
                    .iter()
                    .map(|p| (p.clone(), "rw,nosuid,nodev,size=64m,mode=1777".to_string()))
                    .collect(),
            ),
            readonly_rootfs: Some(spec.read_only_root),
            cap_drop: spec.cap_drop_all.then(|| vec!["ALL".to_string()]),
            cap_add: Some(spec.cap_add.clone()),
            privileged: Some(spec.privileged),
            security_opt: Some(security_opt),
            memory: spec.memory,
            nano_cpus: spec.nano_cpus,
            pids_limit: spec.pids,
            restart_policy: Some(RestartPolicy {
                name: Some(restart),
                maximum_retry_count: None,
            }),
            network_mode: spec.network.clone(),
            init: Some(false),
            ..Default::default()
        };
        let networking_config = spec.network.as_ref().map(|n| NetworkingConfig {
            endpoints_config: Some(HashMap::from([(
                n.clone(),
                EndpointSettings {
                    aliases: Some(spec.aliases.clone()),
                    ..Default::default()
                },
            )])),
        });
        let disabled = spec.no_healthcheck.then(|| HealthConfig {
            test: Some(vec!["NONE".to_string()]),
            ..Default::default()
        });
        let healthcheck = spec
            .healthcheck
            .as_ref()
            .map(|h| HealthConfig {
                test: Some(
                    std::iter::once("CMD".to_string())
                        .chain(h.test.iter().cloned())
                        .collect(),
                ),
                interval: Some(nanos(h.interval)),
                timeout: Some(nanos(h.timeout)),
                retries: Some(i64::from(h.retries)),
                start_period: Some(nanos(h.start_period)),
                start_interval: None,
            })
            .or(disabled);
        let body = ContainerCreateBody {
            image: Some(spec.image.clone()),
            cmd: spec.command.clone(),
            entrypoint: spec.entrypoint.clone(),
            env: Some(spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
            labels: Some(spec.labels.clone().into_iter().collect()),
            user: spec.user.clone(),
            exposed_ports: (!exposed.is_empty()).then_some(exposed),
            healthcheck,
            stop_timeout: Some(spec.stop_grace.as_secs() as i64),
            host_config: Some(host_config),
            networking_config,
            ..Default::default()
        };
        let opts = q::CreateContainerOptionsBuilder::default()
            .name(&spec.name)
            .build();
        match self.docker.create_container(Some(opts), body).await {
            Ok(r) => Ok(r.id),
            // Podman 4.3 answers a taken name with a 500.
            Err(e) if status_code(&e) == Some(409) || message(&e).contains("is already in use") => {
                Err(RuntimeError::Conflict(format!("container {}", spec.name)))
            }
            Err(e) if status_code(&e) == Some(404) => {
                Err(RuntimeError::NotFound(format!("image {}", spec.image)))
            }
            Err(e) => Err(RuntimeError::api(
                format!("creating container {}", spec.name),
                message(&e),
            )),
        }
    }

    async fn start_container(&self, id: &str) -> Result<()> {
        match self
            .docker
            .start_container(id, None::<q::StartContainerOptions>)
            .await
        {
            Ok(()) => Ok(()),
            Err(e) => {
                let m = message(&e);
                if m.contains("port is already allocated") || m.contains("address already in use") {
                    let port = m
                        .split(|c: char| !c.is_ascii_digit())
                        .rfind(|s| (2..=5).contains(&s.len()))
                        .unwrap_or("?")
                        .to_string();
                    Err(RuntimeError::PortInUse { port, detail: m })
                } else if status_code(&e) == Some(404) {
                    Err(RuntimeError::NotFound(format!("container {id}")))
                } else {
                    Err(RuntimeError::api(format!("starting container {id}"), m))
                }
            }
        }
    }

    async fn stop_container(&self, id: &str, grace: Duration) -> Result<()> {
        let opts = q::StopContainerOptionsBuilder::default()
            .t(grace.as_secs() as i32)
            .build();
        match self.docker.stop_container(id, Some(opts)).await {
            Ok(()) => Ok(()),
            Err(e) if matches!(status_code(&e), Some(304) | Some(404)) => Ok(()),
            Err(e) => Err(RuntimeError::api(
                format!("stopping container {id}"),
                message(&e),
            )),
        }
    }

    async fn remove_container(&self, id: &str) -> Result<()> {
        let opts = q::RemoveContainerOptionsBuilder::default()
            .force(true)
            .v(false)
            .build();
        match self.docker.remove_container(id, Some(opts)).await {
            Ok(()) => Ok(()),
            Err(e) if status_code(&e) == Some(404) => Ok(()),
            Err(e) if message(&e).contains("already in progress") => Ok(()),
            Err(e) => Err(RuntimeError::api(
                format!("removing container {id}"),
                message(&e),
            )),
        }
    }

    async fn list_containers(&self, filter: &LabelFilter) -> Result<Vec<ContainerInfo>> {
        let opts = q::ListContainersOptionsBuilder::default()
            .all(true)
            .filters(&to_filters(filter))
            .build();
        let list = self
            .docker
            .list_containers(Some(opts))
            .await
            .map_err(|e| RuntimeError::api("listing containers", message(&e)))?;
        let mut out = Vec::with_capacity(list.len());
        for c in list {
            let Some(id) = c.id else { continue };
            // Gone between list and inspect: it is simply not there any more.
            if let Some(info) = self.inspect_container(&id).await? {
                out.push(info);
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    async fn inspect_container(&self, id: &str) -> Result<Option<ContainerInfo>> {
        let mut tries = 0;
        let c = loop {
            match self
                .docker
                .inspect_container(id, None::<q::InspectContainerOptions>)
                .await
            {
                Ok(c) => break c,
                Err(e) if status_code(&e) == Some(404) => return Ok(None),
                // Podman 4.3 says `stopped` (no such Docker state) for the
                // moment between a stop and its cleanup, then `exited`.
                Err(e) if message(&e).contains("unknown variant `stopped`") && tries < 50 => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => {
                    return Err(RuntimeError::api(
                        format!("inspecting container {id}"),
                        message(&e),
                    ))
                }
            }
        };
        let state = c.state.clone().unwrap_or_default();
        let health = state.health.clone();
        let engine_health = match health.as_ref().and_then(|h| h.status) {
            Some(HealthStatusEnum::STARTING) => EngineHealth::Starting,
            Some(HealthStatusEnum::HEALTHY) => EngineHealth::Healthy,
            Some(HealthStatusEnum::UNHEALTHY) => EngineHealth::Unhealthy,
            _ => EngineHealth::None,
        };
        let health_output = health
            .and_then(|h| h.log)
            .and_then(|l| l.last().cloned())
            .and_then(|r| r.output)
            .map(|o| o.trim().to_string());
        // With several ports, the endpoint is the one the label names.
        let endpoint_key = c
            .config
            .as_ref()
            .and_then(|cfg| cfg.labels.as_ref())
            .and_then(|l| l.get(labels::PORT))
            .map(|p| format!("{p}/tcp"));
        let host_port = c
            .network_settings
            .as_ref()
            .and_then(|n| n.ports.as_ref())
            .and_then(|ports| {
                ports
                    .iter()
                    .filter(|(k, _)| endpoint_key.as_ref().is_none_or(|e| e == *k))
                    .flat_map(|(_, v)| v.iter().flatten())
                    .find_map(|b| {
                        let ip_ok = b
                            .host_ip
                            .as_deref()
                            .is_none_or(|ip| ip == "127.0.0.1" || ip == "0.0.0.0");
                        if ip_ok {
                            b.host_port.as_deref().and_then(|p| p.parse().ok())
                        } else {
                            None
                        }
                    })
            });
        let config = c.config.unwrap_or_default();
        Ok(Some(ContainerInfo {
            id: c.id.unwrap_or_default(),
            name: c
                .name
                .unwrap_or_default()
                .trim_start_matches('/')
                .to_string(),
            image: config.image.unwrap_or_default(),
            labels: config.labels.unwrap_or_default().into_iter().collect(),
            state: parse_state(&state.status.map(|s| s.to_string()).unwrap_or_default()),
            exit_code: state.exit_code,
            error: state.error.filter(|e| !e.is_empty()),
            health: engine_health,
            health_output,
            restart_count: c.restart_count.unwrap_or(0) as u32,
            host_port,
            created: c.created.as_deref().map(parse_time).unwrap_or(0),
            oom_killed: state.oom_killed.unwrap_or(false),
        }))
    }

    async fn copy_into(&self, id: &str, dir: &str, tar: Vec<u8>) -> Result<()> {
        let options = bollard::query_parameters::UploadToContainerOptionsBuilder::default()
            .path(dir)
            .build();
        match self
            .docker
            .upload_to_container(id, Some(options), bollard::body_full(tar.into()))
            .await
        {
            Ok(()) => Ok(()),
            Err(e) if status_code(&e) == Some(404) => Err(RuntimeError::NotFound(format!(
                "container {id} or its {dir}"
            ))),
            Err(e) => Err(RuntimeError::api(
                format!("copying into {dir} of {id}"),
                message(&e),
            )),
        }
    }

    async fn exec(&self, id: &str, command: &[String], timeout: Duration) -> Result<ExecOutput> {
        let shown = command.join(" ");
        let context = || format!("running `{shown}` in {id}");
        let timed_out = || RuntimeError::ExecTimeout {
            command: shown.clone(),
            after: timeout,
        };
        let deadline = tokio::time::Instant::now() + timeout;
        let config = bollard::models::ExecConfig {
            cmd: Some(command.to_vec()),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            ..Default::default()
        };
        let created = match tokio::time::timeout_at(deadline, self.docker.create_exec(id, config))
            .await
            .map_err(|_| timed_out())?
        {
            Ok(c) => c,
            Err(e) if status_code(&e) == Some(404) => {
                return Err(RuntimeError::NotFound(format!("container {id}")))
            }
            Err(e) => return Err(RuntimeError::api(context(), message(&e))),
        };
        let run = async {
            let mut output = Vec::new();
            let started = self
                .docker
                .start_exec(&created.id, None::<bollard::exec::StartExecOptions>)
                .await
                .map_err(|e| RuntimeError::api(context(), message(&e)))?;
            if let bollard::exec::StartExecResults::Attached {
                output: mut out, ..
            } = started
            {
                while let Some(chunk) = out.next().await {
                    let chunk = chunk.map_err(|e| RuntimeError::api(context(), message(&e)))?;
                    output.extend_from_slice(&chunk.into_bytes());
                    if output.len() > 2 * EXEC_OUTPUT_MAX {
                        output.drain(..output.len() - EXEC_OUTPUT_MAX);
                    }
                }
            }
            // The output ends when the process does; the exit code may lag a little.
            loop {
                let inspect = self
                    .docker
                    .inspect_exec(&created.id)
                    .await
                    .map_err(|e| RuntimeError::api(context(), message(&e)))?;
                match (inspect.running, inspect.exit_code) {
                    (Some(false), Some(code)) => break Ok((code, output)),
                    _ => tokio::time::sleep(Duration::from_millis(20)).await,
                }
            }
        };
        let (exit_code, output) = match tokio::time::timeout_at(deadline, run).await {
            Ok(r) => r?,
            Err(_) => {
                self.kill_exec(&created.id).await;
                return Err(timed_out());
            }
        };
        let start = output.len().saturating_sub(EXEC_OUTPUT_MAX);
        Ok(ExecOutput {
            exit_code,
            output: String::from_utf8_lossy(&output[start..]).trim().to_string(),
        })
    }

    fn logs(&self, id: &str, opts: LogOptions) -> BoxStream<'static, Result<LogLine>> {
        let docker = self.docker.clone();
        let id = id.to_string();
        let lines = match opts.tail {
            // Podman counts partial writes as lines: read it all, trim here.
            Some(n) if self.is_podman() && opts.follow => {
                futures_util::stream::once(podman_follow_tail(docker, id, n, opts))
                    .flatten()
                    .boxed()
            }
            Some(n) if self.is_podman() => futures_util::stream::once(async move {
                let history = history_lines(&docker, &id, true, opts).await;
                futures_util::stream::iter(match history {
                    Ok((lines, _)) => {
                        let skip = lines.len().saturating_sub(n);
                        lines.into_iter().skip(skip).map(Ok).collect()
                    }
                    Err(e) => vec![Err(e)],
                })
            })
            .flatten()
            .boxed(),
            _ => joined_lines(raw_logs(&docker, &id, opts), true),
        };
        // The engine's window is in whole seconds: this makes it exact.
        lines
            .try_filter(move |l| std::future::ready(opts.admits(l.time)))
            .boxed()
    }

    fn events(&self, filter: &LabelFilter) -> BoxStream<'static, RuntimeEvent> {
        let mut filters = to_filters(filter);
        filters.insert("type".into(), vec!["container".into()]);
        // Podman 4.3 matches only the first of several `event` values; the
        // actions tug does not use are dropped by `container_event` anyway.
        if !self.is_podman() {
            filters.insert(
                "event".into(),
                ["start", "die", "oom", "health_status", "destroy"]
                    .map(String::from)
                    .to_vec(),
            );
        }
        let state = EventsState {
            docker: self.docker.clone(),
            filters,
            since: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .ok()
                .map(|d| format!("{}.{:09}", d.as_secs(), d.subsec_nanos())),
            newest: 0,
            recent: Default::default(),
            inner: None,
            opened: None,
            lost: false,
            reopened: false,
            backoff: RECONNECT_START,
        };
        futures_util::stream::unfold(state, |mut st| async move {
            let e = st.step().await;
            Some((e, st))
        })
        .boxed()
    }

    async fn stats(&self, id: &str) -> Result<Option<Stats>> {
        // One sample, without the engine's one-second wait for a second one.
        let opts = q::StatsOptionsBuilder::default()
            .stream(false)
            .one_shot(true)
            .build();
        let mut stream = self.docker.stats(id, Some(opts));
        let s = match stream.next().await {
            Some(Ok(s)) => s,
            Some(Err(e)) if status_code(&e) == Some(404) => return Ok(None),
            Some(Err(e)) => {
                return Err(RuntimeError::api(
                    format!("reading the stats of container {id}"),
                    message(&e),
                ))
            }
            None => return Ok(None),
        };
        let cpu = s.cpu_stats.unwrap_or_default();
        // A stopped container reports zeros, without the host's CPU time.
        if cpu.system_cpu_usage.unwrap_or(0) == 0 {
            return Ok(None);
        }
        let (net_rx, net_tx) = match &s.networks {
            Some(n) => (
                Some(n.values().filter_map(|i| i.rx_bytes).sum()),
                Some(n.values().filter_map(|i| i.tx_bytes).sum()),
            ),
            None => (None, None),
        };
        // cgroup v1 lists Read/Write per device; v2 lowercases them.
        let blkio = s
            .blkio_stats
            .as_ref()
            .and_then(|b| b.io_service_bytes_recursive.as_ref());
        let disk = |op: &str| {
            blkio.map(|entries| {
                entries
                    .iter()
                    .filter(|e| e.op.as_deref().is_some_and(|o| o.eq_ignore_ascii_case(op)))
                    .filter_map(|e| e.value)
                    .sum()
            })
        };
        Ok(Some(Stats {
            cpu_ns: cpu.cpu_usage.and_then(|u| u.total_usage).unwrap_or(0),
            memory: s.memory_stats.and_then(|m| m.usage),
            net_rx,
            net_tx,
            disk_read: disk("read"),
            disk_write: disk("write"),
        }))
    }
}

/// The engine's log frames, as (stream, bytes).
fn raw_logs(
    docker: &Docker,
    id: &str,
    opts: LogOptions,
) -> BoxStream<'static, Result<(LogStream, bytes::Bytes)>> {
    let secs = |t: std::time::SystemTime| {
        t.duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    };
    // Whole seconds, widened outwards; 0 is "no bound" to the engine.
    let since = opts.since.map_or(0, secs);
    let until = opts.until.map_or(0, |u| secs(u) + 1);
    let opts = q::LogsOptionsBuilder::default()
        .stdout(true)
        .stderr(true)
        .timestamps(true)
        .since(i32::try_from(since).unwrap_or(i32::MAX))
        .until(i32::try_from(until).unwrap_or(0))
        .follow(opts.follow)
        .tail(
            &opts
                .tail
                .map(|t| t.to_string())
                .unwrap_or_else(|| "all".into()),
        )
        .build();
    let id = id.to_string();
    docker
        .logs(&id, Some(opts))
        .map_err(move |e| RuntimeError::api(format!("reading logs of {id}"), message(&e)))
        .map_ok(|out| {
            use bollard::container::LogOutput;
            match out {
                LogOutput::StdErr { message } => (LogStream::Stderr, message),
                LogOutput::StdOut { message }
                | LogOutput::Console { message }
                | LogOutput::StdIn { message } => (LogStream::Stdout, message),
            }
        })
        .boxed()
}

/// Joins frames into lines, per stream. With `flush`, a last line without
/// its newline is still a line when the frames end. Each frame starts with
/// the engine's timestamp (`timestamps=true`); a line takes the time of the
/// frame that began it.
#[derive(Default)]
struct LineJoiner {
    stdout: (Vec<u8>, Option<std::time::SystemTime>),
    stderr: (Vec<u8>, Option<std::time::SystemTime>),
    ready: std::collections::VecDeque<LogLine>,
}

impl LineJoiner {
    fn push(&mut self, stream: LogStream, bytes: &[u8]) {
        let (time, bytes) = split_timestamp(bytes);
        let (buf, started) = match stream {
            LogStream::Stdout => &mut self.stdout,
            LogStream::Stderr => &mut self.stderr,
        };
        if buf.is_empty() {
            *started = time;
        }
        buf.extend_from_slice(bytes);
        while let Some(end) = buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buf.drain(..=end).collect();
            self.ready.push_back(LogLine {
                stream,
                text: line_text(&line),
                time: *started,
            });
            *started = time;
        }
    }

    fn finish(&mut self) {
        for (stream, (buf, started)) in [
            (LogStream::Stdout, &mut self.stdout),
            (LogStream::Stderr, &mut self.stderr),
        ] {
            if !buf.is_empty() {
                self.ready.push_back(LogLine {
                    stream,
                    text: line_text(buf),
                    time: *started,
                });
                buf.clear();
            }
        }
    }
}

/// The engine's `RFC3339Nano ` prefix of a frame, and the rest.
fn split_timestamp(bytes: &[u8]) -> (Option<std::time::SystemTime>, &[u8]) {
    let Some(space) = bytes.iter().take(40).position(|b| *b == b' ') else {
        return (None, bytes);
    };
    match std::str::from_utf8(&bytes[..space])
        .ok()
        .and_then(|t| humantime::parse_rfc3339_weak(t).ok())
    {
        Some(t) => (Some(t), &bytes[space + 1..]),
        None => (None, bytes),
    }
}

fn line_text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .trim_end_matches(['\n', '\r'])
        .to_string()
}

fn joined_lines(
    frames: BoxStream<'static, Result<(LogStream, bytes::Bytes)>>,
    flush: bool,
) -> BoxStream<'static, Result<LogLine>> {
    let state = (frames, LineJoiner::default(), false);
    futures_util::stream::unfold(state, move |(mut frames, mut j, mut ended)| async move {
        loop {
            if let Some(line) = j.ready.pop_front() {
                return Some((Ok(line), (frames, j, ended)));
            }
            if ended {
                return None;
            }
            match frames.next().await {
                Some(Ok((stream, bytes))) => j.push(stream, &bytes),
                Some(Err(e)) => return Some((Err(e), (frames, j, true))),
                None => {
                    ended = true;
                    if flush {
                        j.finish();
                    }
                }
            }
        }
    })
    .boxed()
}

/// Every line logged so far; with `flush` an unfinished last line too. Also
/// the number of finished lines.
async fn history_lines(
    docker: &Docker,
    id: &str,
    flush: bool,
    opts: LogOptions,
) -> Result<(Vec<LogLine>, usize)> {
    let opts = LogOptions {
        tail: None,
        follow: false,
        ..opts
    };
    let mut frames = raw_logs(docker, id, opts);
    let mut j = LineJoiner::default();
    while let Some(frame) = frames.next().await {
        let (stream, bytes) = frame?;
        j.push(stream, &bytes);
    }
    let finished = j.ready.len();
    if flush {
        j.finish();
    }
    Ok((j.ready.into(), finished))
}

/// `--tail n --follow` on Podman: the last `n` finished lines of the
/// history, then the followed stream past them (it replays the history
/// first, in the same order, so those lines are skipped by count).
async fn podman_follow_tail(
    docker: Docker,
    id: String,
    n: usize,
    opts: LogOptions,
) -> BoxStream<'static, Result<LogLine>> {
    let (history, finished) = match history_lines(&docker, &id, false, opts).await {
        Ok(h) => h,
        Err(e) => return futures_util::stream::iter([Err(e)]).boxed(),
    };
    let shown: Vec<Result<LogLine>> = history
        .into_iter()
        .skip(finished.saturating_sub(n))
        .map(Ok)
        .collect();
    let live = LogOptions {
        tail: None,
        follow: true,
        ..opts
    };
    let live = joined_lines(raw_logs(&docker, &id, live), true).skip(finished);
    futures_util::stream::iter(shown).chain(live).boxed()
}

/// First wait before reconnecting the event stream; doubles up to [`RECONNECT_CAP`].
const RECONNECT_START: Duration = Duration::from_millis(100);
const RECONNECT_CAP: Duration = Duration::from_secs(5);

/// Where [`DockerRuntime::events`] is: reading a stream, or (re)connecting.
struct EventsState {
    docker: Docker,
    filters: HashMap<String, Vec<String>>,
    inner: Option<BoxStream<'static, Result<bollard::models::EventMessage, BError>>>,
    /// Where the next connection starts: the moment `events` was called,
    /// then the newest event seen, so a reopened stream misses nothing.
    since: Option<String>,
    /// The newest event's time (ns since the epoch).
    newest: i64,
    /// The last events delivered: time, container and action.
    recent: std::collections::VecDeque<(i64, String, String)>,
    /// When the current stream was opened.
    opened: Option<std::time::Instant>,
    /// The engine did not answer and no `Resumed` was sent yet.
    lost: bool,
    /// The stream was reopened and no `Reopened` was sent yet.
    reopened: bool,
    backoff: Duration,
}

/// Podman re-reads its events file from the start when it rotates it: an
/// event this much older than the newest one seen was delivered already.
const REPLAYED: i64 = 10_000_000_000;
/// Events remembered to drop their repeats: a reopened stream on Podman
/// starts at the second of the last event, so it repeats that second's.
const REMEMBERED: usize = 256;

impl EventsState {
    /// Whether `msg` was delivered already; remembers it if not.
    fn repeated(&mut self, t: i64, msg: &bollard::models::EventMessage) -> bool {
        let id = msg
            .actor
            .as_ref()
            .and_then(|a| a.id.as_deref())
            .unwrap_or("");
        let action = msg.action.as_deref().unwrap_or("");
        if t <= self.newest
            && self
                .recent
                .iter()
                .any(|(rt, rid, ra)| *rt == t && rid == id && ra == action)
        {
            return true;
        }
        if self.recent.len() == REMEMBERED {
            self.recent.pop_front();
        }
        self.recent
            .push_back((t, id.to_string(), action.to_string()));
        false
    }

    /// The next item: a container event, `Lost` when the engine stops
    /// answering, or `Resumed` once it is back. A stream that breaks while
    /// the engine still answers is reopened where it left off: the engine
    /// is not lost, and nothing in between is missed.
    async fn step(&mut self) -> RuntimeEvent {
        loop {
            if let Some(inner) = self.inner.as_mut() {
                let reason = match inner.next().await {
                    Some(Ok(msg)) => {
                        let t = msg.time_nano.unwrap_or(0);
                        if t < self.newest.saturating_sub(REPLAYED) || self.repeated(t, &msg) {
                            continue;
                        }
                        self.newest = self.newest.max(t);
                        match container_event(msg) {
                            Some(e) => return RuntimeEvent::Container(e),
                            None => continue,
                        }
                    }
                    Some(Err(e)) => message(&e),
                    None => "the engine closed the event stream".to_string(),
                };
                self.inner = None;
                // A stream that breaks again at once waits before the next.
                if self
                    .opened
                    .is_some_and(|o| o.elapsed() < Duration::from_secs(1))
                {
                    tokio::time::sleep(self.backoff).await;
                    self.backoff = (self.backoff * 2).min(RECONNECT_CAP);
                } else {
                    self.backoff = RECONNECT_START;
                }
                // Past the newest event seen: the engine's `since` includes
                // its bound, and that event was delivered.
                if self.newest > 0 {
                    let from = self.newest + 1;
                    self.since = Some(format!(
                        "{}.{:09}",
                        from / 1_000_000_000,
                        from % 1_000_000_000
                    ));
                }
                if self.docker.ping().await.is_ok() {
                    tracing::info!(%reason, "container engine event stream broke; reopening");
                    self.reopened = true;
                    continue;
                }
                self.lost = true;
                tracing::warn!(%reason, "container engine event stream lost; reconnecting");
                return RuntimeEvent::Lost { reason };
            }
            if self.lost {
                tokio::time::sleep(self.backoff).await;
                self.backoff = (self.backoff * 2).min(RECONNECT_CAP);
            }
            // The stream's own errors only show once polled: ping first, so a
            // dead engine costs one backoff step, not a busy loop.
            if self.docker.ping().await.is_err() {
                self.lost = true;
                continue;
            }
            let mut opts = q::EventsOptionsBuilder::default().filters(&self.filters);
            if let Some(since) = self.since.take() {
                opts = opts.since(&since);
            }
            let opts = opts.build();
            self.inner = Some(self.docker.events(Some(opts)).boxed());
            self.opened = Some(std::time::Instant::now());
            if std::mem::take(&mut self.lost) {
                self.reopened = false;
                self.backoff = RECONNECT_START;
                tracing::info!("container engine event stream resumed");
                return RuntimeEvent::Resumed;
            }
            if std::mem::take(&mut self.reopened) {
                return RuntimeEvent::Reopened;
            }
        }
    }
}

/// A container event from the engine's message, when it is one tug uses.
fn container_event(msg: bollard::models::EventMessage) -> Option<ContainerEvent> {
    let actor = msg.actor?;
    let id = actor.id?;
    let mut attrs = actor.attributes.unwrap_or_default();
    let action = msg.action?;
    let change = match action.as_str() {
        "start" => ContainerChange::Started,
        "die" => ContainerChange::Died {
            exit_code: attrs.get("exitCode").and_then(|c| c.parse().ok()),
        },
        "oom" => ContainerChange::OomKilled,
        // Podman says `remove`.
        "destroy" | "remove" => ContainerChange::Destroyed,
        a => match a.strip_prefix("health_status:").map(str::trim) {
            Some("healthy") => ContainerChange::Health {
                health: EngineHealth::Healthy,
            },
            Some("unhealthy") => ContainerChange::Health {
                health: EngineHealth::Unhealthy,
            },
            Some("starting") => ContainerChange::Health {
                health: EngineHealth::Starting,
            },
            _ => return None,
        },
    };
    let name = attrs.remove("name").unwrap_or_default();
    // The attributes are the container's labels plus `name`, `image` and
    // per-event extras (`exitCode`); only tug's own keys are labels here.
    let labels = attrs.into_iter().filter(|(k, _)| k.contains('.')).collect();
    Some(ContainerEvent {
        id,
        name,
        labels,
        change,
    })
}

/// Splits `name:tag` (a registry port is not a tag); digests stay in the name.
pub fn split_reference(reference: &str) -> (&str, &str) {
    if reference.contains('@') {
        return (reference, "");
    }
    match reference.rsplit_once(':') {
        Some((name, tag)) if !tag.contains('/') => (name, tag),
        _ => (reference, "latest"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references() {
        assert_eq!(split_reference("nginx"), ("nginx", "latest"));
        assert_eq!(split_reference("nginx:1"), ("nginx", "1"));
        assert_eq!(
            split_reference("localhost:5000/app"),
            ("localhost:5000/app", "latest")
        );
        assert_eq!(
            split_reference("localhost:5000/app:2"),
            ("localhost:5000/app", "2")
        );
    }

    #[test]
    fn engine_messages_become_container_events() {
        use bollard::models::{EventActor, EventMessage};
        let msg = |action: &str, attrs: &[(&str, &str)]| EventMessage {
            action: Some(action.into()),
            actor: Some(EventActor {
                id: Some("abc".into()),
                attributes: Some(
                    attrs
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
            }),
            ..Default::default()
        };
        let died = container_event(msg(
            "die",
            &[
                ("exitCode", "137"),
                ("name", "s-api-0"),
                ("image", "x"),
                (labels::SERVICE, "api"),
            ],
        ))
        .unwrap();
        assert_eq!(
            died.change,
            ContainerChange::Died {
                exit_code: Some(137)
            }
        );
        assert_eq!(died.name, "s-api-0");
        assert_eq!(died.label(labels::SERVICE), Some("api"));
        assert_eq!(died.labels.len(), 1);
        assert_eq!(
            container_event(msg("health_status: unhealthy", &[]))
                .unwrap()
                .change,
            ContainerChange::Health {
                health: EngineHealth::Unhealthy
            }
        );
        assert_eq!(
            container_event(msg("oom", &[])).unwrap().change,
            ContainerChange::OomKilled
        );
        assert!(container_event(msg("exec_start: sh", &[])).is_none());
        assert!(container_event(msg("cleanup", &[])).is_none());
        assert_eq!(
            container_event(msg("remove", &[])).unwrap().change,
            ContainerChange::Destroyed
        );
    }

    #[test]
    fn partial_writes_are_joined_into_lines_per_stream() {
        let mut j = LineJoiner::default();
        j.push(LogStream::Stdout, b"ab");
        j.push(LogStream::Stderr, b"err\r\n");
        j.push(LogStream::Stdout, b"c\nd\n\nhalf");
        j.push(LogStream::Stderr, b"tail");
        let text = |j: &LineJoiner| -> Vec<(LogStream, String)> {
            j.ready.iter().map(|l| (l.stream, l.text.clone())).collect()
        };
        assert_eq!(
            text(&j),
            [
                (LogStream::Stderr, "err".to_string()),
                (LogStream::Stdout, "abc".to_string()),
                (LogStream::Stdout, "d".to_string()),
                (LogStream::Stdout, String::new()),
            ]
        );
        j.finish();
        assert_eq!(
            text(&j)[4..],
            [
                (LogStream::Stdout, "half".to_string()),
                (LogStream::Stderr, "tail".to_string()),
            ]
        );
    }

    #[test]
    fn engines_are_told_apart_by_their_version_components() {
        use bollard::models::{SystemVersion, SystemVersionComponents};
        let component = |name: &str, version: &str| SystemVersionComponents {
            name: name.into(),
            version: version.into(),
            details: None,
        };
        let podman = SystemVersion {
            components: Some(vec![
                component("Podman Engine", "4.3.1"),
                component("Conmon", "conmon version 2.1.6"),
            ]),
            version: Some("4.3.1".into()),
            api_version: Some("1.41".into()),
            ..Default::default()
        };
        let e = engine_of(&podman);
        assert_eq!((e.name.as_str(), e.version.as_str()), ("podman", "4.3.1"));
        assert_eq!(e.to_string(), "podman 4.3.1 (API 1.41)");
        let docker = SystemVersion {
            components: Some(vec![component("Engine", "20.10.24+dfsg1")]),
            version: Some("20.10.24+dfsg1".into()),
            api_version: Some("1.41".into()),
            ..Default::default()
        };
        let e = engine_of(&docker);
        assert_eq!(
            (e.name.as_str(), e.version.as_str()),
            ("docker", "20.10.24+dfsg1")
        );
    }

    /// What Podman sends after rotating its events file: old events again,
    /// and the last ones seen repeated. Neither reaches the watcher.
    #[tokio::test]
    async fn replayed_and_repeated_events_are_dropped() {
        let event = |id: &str, action: &str, secs: i64| {
            Ok(bollard::models::EventMessage {
                action: Some(action.into()),
                actor: Some(bollard::models::EventActor {
                    id: Some(id.into()),
                    attributes: Some(HashMap::from([("name".to_string(), id.to_string())])),
                }),
                time_nano: Some(secs * 1_000_000_000),
                ..Default::default()
            })
        };
        let stream = futures_util::stream::iter(vec![
            event("a", "start", 1_000),
            event("b", "start", 1_030),
            // Replayed from before the rotation.
            event("a", "start", 1_000),
            event("old", "die", 900),
            // The newest one again, as a reopened stream repeats it.
            event("b", "start", 1_030),
            // Same second, another container: new.
            event("c", "start", 1_030),
            event("d", "start", 1_031),
        ]);
        let mut st = EventsState {
            docker: Docker::connect_with_http(
                "http://127.0.0.1:9",
                1,
                bollard::API_DEFAULT_VERSION,
            )
            .unwrap(),
            filters: HashMap::new(),
            inner: Some(stream.boxed()),
            since: None,
            newest: 0,
            recent: Default::default(),
            opened: None,
            lost: false,
            reopened: false,
            backoff: RECONNECT_START,
        };
        let mut seen = Vec::new();
        for _ in 0..4 {
            match st.step().await {
                RuntimeEvent::Container(e) => seen.push(e.id),
                other => panic!("{other:?} after {seen:?}"),
            }
        }
        assert_eq!(seen, ["a", "b", "c", "d"]);
    }

    #[test]
    fn times() {
        assert_eq!(parse_time("1970-01-01T00:00:10Z"), 10);
        assert_eq!(parse_time("2026-11-26T12:00:00.123Z"), 1_795_694_400);
        assert_eq!(parse_time("garbage"), 0);
    }
}
