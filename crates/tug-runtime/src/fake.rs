//! An in-memory [`Runtime`] that records every call and injects faults.

use crate::*;
use futures_util::StreamExt;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

#[derive(Clone, Debug)]
struct FakeContainer {
    info: ContainerInfo,
    spec: ContainerSpec,
    logs: Vec<LogLine>,
}

#[derive(Default)]
struct State {
    images: HashMap<String, ImageInfo>,
    networks: BTreeMap<String, BTreeMap<String, String>>,
    volumes: BTreeMap<String, BTreeMap<String, String>>,
    containers: BTreeMap<String, FakeContainer>,
    calls: Vec<String>,
    faults: HashMap<String, VecDeque<RuntimeError>>,
    next_id: u64,
    next_port: u16,
    clock: i64,
    /// Health a container reports once started, by container name prefix.
    health_on_start: Vec<(String, EngineHealth)>,
    /// Containers (by name prefix) that exit with this code as soon as they start.
    exit_on_start: Vec<(String, i64)>,
    /// CPU time reported by `stats`, by container id.
    cpu_ns: HashMap<String, u64>,
    /// How long a stop takes (a replica finishing its requests); its end is
    /// recorded as `stopped NAME`.
    stop_takes: Option<Duration>,
    /// Files of images, by (image, path), for `read_image_files`.
    image_files: BTreeMap<(String, String), Vec<u8>>,
}

/// A recording runtime. Cheap to clone; clones share state.
#[derive(Clone)]
pub struct FakeRuntime {
    state: Arc<Mutex<State>>,
    events: tokio::sync::broadcast::Sender<RuntimeEvent>,
}

impl Default for FakeRuntime {
    fn default() -> Self {
        FakeRuntime {
            state: Arc::default(),
            events: tokio::sync::broadcast::channel(1024).0,
        }
    }
}

fn matches(labels: &BTreeMap<String, String>, filter: &LabelFilter) -> bool {
    filter.iter().all(|(k, v)| match v {
        Some(v) => labels.get(k) == Some(v),
        None => labels.contains_key(k),
    })
}

impl FakeRuntime {
    pub fn new() -> Self {
        let rt = FakeRuntime::default();
        rt.state.lock().unwrap().next_port = 40000;
        rt
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.state.lock().unwrap())
    }

    /// Publishes a change of container `id` (nobody listening is fine).
    fn emit(&self, c: &ContainerInfo, change: ContainerChange) {
        let _ = self.events.send(RuntimeEvent::Container(ContainerEvent {
            id: c.id.clone(),
            name: c.name.clone(),
            labels: c.labels.clone(),
            change,
        }));
    }

    /// Tells event watchers that events may have been lost, as an engine
    /// restart does: `Lost`, then `Resumed`.
    pub fn interrupt_events(&self) {
        let _ = self.events.send(RuntimeEvent::Lost {
            reason: "interrupted".into(),
        });
        let _ = self.events.send(RuntimeEvent::Resumed);
    }

    /// Records `call` and returns the injected fault for `op`, if any.
    fn enter(&self, op: &str, call: String) -> Result<()> {
        self.with(|s| {
            s.calls.push(call);
            s.clock += 1;
            match s.faults.get_mut(op).and_then(VecDeque::pop_front) {
                Some(e) => Err(e),
                None => Ok(()),
            }
        })
    }

    /// Makes every stop take `d`, its end recorded as `stopped NAME`.
    pub fn set_stop_time(&self, d: Duration) {
        self.with(|s| s.stop_takes = Some(d));
    }

    /// Makes the next call of `op` (e.g. `"create_container"`) fail with `error`.
    pub fn fail_next(&self, op: &str, error: RuntimeError) {
        self.with(|s| s.faults.entry(op.to_string()).or_default().push_back(error));
    }

    /// Every call so far, as `op arg`.
    pub fn calls(&self) -> Vec<String> {
        self.with(|s| s.calls.clone())
    }

    pub fn clear_calls(&self) {
        self.with(|s| s.calls.clear());
    }

    /// Calls whose op is one of `ops`.
    pub fn calls_of(&self, ops: &[&str]) -> Vec<String> {
        self.calls()
            .into_iter()
            .filter(|c| ops.iter().any(|o| c.split(' ').next() == Some(o)))
            .collect()
    }

    pub fn add_image(&self, reference: &str, user: &str) {
        self.with(|s| {
            let id = format!("sha256:{:064x}", s.images.len() + 1);
            s.images.insert(
                reference.to_string(),
                ImageInfo {
                    id,
                    user: user.to_string(),
                },
            );
        });
    }

    /// Containers whose name starts with `prefix` report `health` once started.
    pub fn set_health_on_start(&self, prefix: &str, health: EngineHealth) {
        self.with(|s| s.health_on_start.push((prefix.to_string(), health)));
    }

    /// Containers whose name starts with `prefix` exit with `code` as soon as they start.
    pub fn exit_on_start(&self, prefix: &str, code: i64) {
        self.with(|s| s.exit_on_start.push((prefix.to_string(), code)));
    }

    /// The spec a container was created with.
    pub fn spec_of(&self, id_or_name: &str) -> Option<ContainerSpec> {
        self.with(|s| {
            s.containers
                .values()
                .find(|c| c.info.id == id_or_name || c.info.name == id_or_name)
                .map(|c| c.spec.clone())
        })
    }

    /// Simulates a container dying on its own.
    pub fn kill(&self, id: &str, exit_code: i64) {
        let info = self.with(|s| {
            let c = s.containers.get_mut(id)?;
            c.info.state = ContainerState::Exited;
            c.info.exit_code = Some(exit_code);
            Some(c.info.clone())
        });
        if let Some(c) = info {
            self.emit(
                &c,
                ContainerChange::Died {
                    exit_code: Some(exit_code),
                },
            );
        }
    }

    /// Simulates a container dying while the event stream is down: its
    /// `Died` event is never delivered.
    pub fn kill_unseen(&self, id: &str, exit_code: i64) {
        self.with(|s| {
            if let Some(c) = s.containers.get_mut(id) {
                c.info.state = ContainerState::Exited;
                c.info.exit_code = Some(exit_code);
            }
        });
    }

    /// Puts a file in an image, for `read_image_files`.
    pub fn set_image_file(&self, image: &str, path: &str, content: &[u8]) {
        self.with(|s| {
            s.image_files
                .insert((image.to_string(), path.to_string()), content.to_vec())
        });
    }

    /// Simulates the kernel's OOM killer: `OomKilled`, then died with 137.
    pub fn oom_kill(&self, id: &str) {
        if let Some(c) = self.with(|s| s.containers.get(id).map(|c| c.info.clone())) {
            self.emit(&c, ContainerChange::OomKilled);
        }
        self.with(|s| s.containers.get_mut(id).map(|c| c.info.oom_killed = true));
        self.kill(id, 137);
    }

    /// An OOM kill whose `OomKilled` event the engine dropped (Docker 20.10
    /// on cgroup v1 now and then): only `Died` with 137, and inspect's
    /// `oom_killed`.
    pub fn oom_kill_unreported(&self, id: &str) {
        self.with(|s| s.containers.get_mut(id).map(|c| c.info.oom_killed = true));
        self.kill(id, 137);
    }

    /// Sets the health the engine reports for a running container.
    pub fn set_health(&self, id: &str, health: EngineHealth) {
        let info = self.with(|s| {
            let c = s.containers.get_mut(id)?;
            let changed = c.info.health != health;
            c.info.health = health;
            changed.then(|| c.info.clone())
        });
        if let Some(c) = info {
            self.emit(&c, ContainerChange::Health { health });
        }
    }

    /// Adds a log line to a container.
    /// Sets the CPU time `stats` reports for a container.
    pub fn set_cpu_ns(&self, id: &str, ns: u64) {
        self.with(|s| s.cpu_ns.insert(id.to_string(), ns));
    }

    pub fn push_log(&self, id: &str, text: &str) {
        self.with(|s| {
            if let Some(c) = s.containers.get_mut(id) {
                c.logs.push(LogLine {
                    stream: LogStream::Stdout,
                    text: text.into(),
                    time: Some(std::time::SystemTime::now()),
                });
            }
        });
    }
}

impl Runtime for FakeRuntime {
    fn address(&self) -> String {
        "fake://".into()
    }

    fn engine(&self) -> EngineInfo {
        EngineInfo {
            name: "fake".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            api_version: None,
        }
    }

    async fn ping(&self) -> Result<()> {
        self.enter("ping", "ping".into())
    }

    async fn copy_into(&self, id: &str, dir: &str, tar: Vec<u8>) -> Result<()> {
        self.enter(
            "copy_into",
            format!("copy_into {} {dir} {} bytes", self.name_of(id), tar.len()),
        )?;
        self.with(|s| {
            s.containers
                .get(id)
                .map(|_| ())
                .ok_or_else(|| RuntimeError::NotFound(format!("container {id}")))
        })
    }

    /// Exits 0 while the container's health (from [`FakeRuntime::set_health`],
    /// else [`FakeRuntime::set_health_on_start`]) is healthy or unset, 1 otherwise.
    async fn exec(&self, id: &str, command: &[String], _timeout: Duration) -> Result<ExecOutput> {
        self.enter(
            "exec",
            format!("exec {} {}", self.name_of(id), command.join(" ")),
        )?;
        self.with(|s| {
            let c = s
                .containers
                .get(id)
                .ok_or_else(|| RuntimeError::NotFound(format!("container {id}")))?;
            if c.info.state != ContainerState::Running {
                return Err(RuntimeError::api(
                    format!("running `{}` in {id}", command.join(" ")),
                    "container is not running",
                ));
            }
            let health = match c.info.health {
                EngineHealth::None => s
                    .health_on_start
                    .iter()
                    .find(|(p, _)| c.info.name.starts_with(p.as_str()))
                    .map_or(EngineHealth::Healthy, |(_, h)| *h),
                h => h,
            };
            Ok(match health {
                EngineHealth::Healthy | EngineHealth::None => ExecOutput {
                    exit_code: 0,
                    output: "ok".into(),
                },
                h => ExecOutput {
                    exit_code: 1,
                    output: format!("{h:?}").to_lowercase(),
                },
            })
        })
    }

    async fn inspect_image(&self, reference: &str) -> Result<Option<ImageInfo>> {
        self.enter("inspect_image", format!("inspect_image {reference}"))?;
        Ok(self.with(|s| s.images.get(reference).cloned()))
    }

    async fn pull_image(&self, reference: &str) -> Result<()> {
        self.enter("pull_image", format!("pull_image {reference}"))?;
        Err(RuntimeError::api(
            format!("pulling {reference}"),
            "no registry in the fake runtime",
        ))
    }

    async fn build_image(
        &self,
        request: BuildRequest,
        progress: &(dyn Fn(&str) + Send + Sync),
    ) -> Result<String> {
        self.enter("build_image", format!("build_image {}", request.tag))?;
        progress("Step 1/1 : FROM scratch");
        self.add_image(&request.tag, "");
        Ok(self.with(|s| s.images[&request.tag].id.clone()))
    }

    async fn load_image(&self, archive: Vec<u8>) -> Result<()> {
        self.enter("load_image", format!("load_image {} bytes", archive.len()))
    }

    async fn create_network(&self, name: &str, labels: &BTreeMap<String, String>) -> Result<()> {
        self.enter("create_network", format!("create_network {name}"))?;
        self.with(|s| {
            s.networks
                .entry(name.to_string())
                .or_insert_with(|| labels.clone());
        });
        Ok(())
    }

    async fn remove_network(&self, name: &str) -> Result<()> {
        self.enter("remove_network", format!("remove_network {name}"))?;
        self.with(|s| {
            if s.containers
                .values()
                .any(|c| c.spec.network.as_deref() == Some(name))
            {
                return Err(RuntimeError::api(
                    format!("removing network {name}"),
                    "network has active endpoints",
                ));
            }
            s.networks.remove(name);
            Ok(())
        })
    }

    async fn list_networks(&self, filter: &LabelFilter) -> Result<Vec<String>> {
        self.enter("list_networks", "list_networks".into())?;
        Ok(self.with(|s| {
            s.networks
                .iter()
                .filter(|(_, l)| matches(l, filter))
                .map(|(n, _)| n.clone())
                .collect()
        }))
    }

    async fn create_volume(
        &self,
        name: &str,
        labels: &BTreeMap<String, String>,
        owner: Option<&Owner>,
    ) -> Result<()> {
        let call = match owner {
            Some(o) => format!("create_volume {name} owned by {}:{}", o.uid, o.gid),
            None => format!("create_volume {name}"),
        };
        self.enter("create_volume", call)?;
        self.with(|s| {
            s.volumes
                .entry(name.to_string())
                .or_insert_with(|| labels.clone());
        });
        Ok(())
    }

    async fn write_files(&self, dir: &Path, files: &[FileSpec], owner: &Owner) -> Result<()> {
        let names: Vec<String> = files
            .iter()
            .map(|f| format!("{}:{:o}", f.name, f.mode))
            .collect();
        self.enter(
            "write_files",
            format!(
                "write_files {} {} owned by {}:{}",
                dir.display(),
                names.join(","),
                owner.uid,
                owner.gid
            ),
        )
    }

    async fn read_image_files(
        &self,
        image: &str,
        paths: &[&str],
        _stack: &str,
    ) -> Result<BTreeMap<String, Vec<u8>>> {
        self.enter("read_image_files", format!("read_image_files {image}"))?;
        Ok(self.with(|s| {
            paths
                .iter()
                .filter_map(|p| {
                    let f = s.image_files.get(&(image.to_string(), p.to_string()))?;
                    Some((p.to_string(), f.clone()))
                })
                .collect()
        }))
    }

    async fn sweep_helpers(&self, _stack: &str) -> Result<Vec<String>> {
        Ok(Vec::new())
    }

    async fn remove_volume(&self, name: &str) -> Result<()> {
        self.enter("remove_volume", format!("remove_volume {name}"))?;
        self.with(|s| s.volumes.remove(name));
        Ok(())
    }

    async fn list_volumes(&self, filter: &LabelFilter) -> Result<Vec<String>> {
        self.enter("list_volumes", "list_volumes".into())?;
        Ok(self.with(|s| {
            s.volumes
                .iter()
                .filter(|(_, l)| matches(l, filter))
                .map(|(n, _)| n.clone())
                .collect()
        }))
    }

    async fn create_container(&self, spec: &ContainerSpec) -> Result<String> {
        self.enter(
            "create_container",
            format!("create_container {}", spec.name),
        )?;
        self.with(|s| {
            if s.containers.values().any(|c| c.info.name == spec.name) {
                return Err(RuntimeError::Conflict(format!("container {}", spec.name)));
            }
            if !s.images.contains_key(&spec.image) {
                return Err(RuntimeError::NotFound(format!("image {}", spec.image)));
            }
            if let Some(n) = &spec.network {
                if !s.networks.contains_key(n) {
                    return Err(RuntimeError::NotFound(format!("network {n}")));
                }
            }
            s.next_id += 1;
            let id = format!("{:012x}{:052x}", s.next_id, 0);
            let host_port = spec.port.map(|_| {
                spec.publish.unwrap_or_else(|| {
                    s.next_port += 1;
                    s.next_port
                })
            });
            let info = ContainerInfo {
                id: id.clone(),
                name: spec.name.clone(),
                image: spec.image.clone(),
                labels: spec.labels.clone(),
                state: ContainerState::Created,
                exit_code: None,
                error: None,
                health: EngineHealth::None,
                health_output: None,
                restart_count: 0,
                host_port,
                created: s.clock,
                oom_killed: false,
            };
            s.containers.insert(
                id.clone(),
                FakeContainer {
                    info,
                    spec: spec.clone(),
                    logs: Vec::new(),
                },
            );
            Ok(id)
        })
    }

    async fn start_container(&self, id: &str) -> Result<()> {
        self.enter(
            "start_container",
            format!("start_container {}", self.name_of(id)),
        )?;
        self.with(|s| {
            let Some(c) = s.containers.get(id) else {
                return Err(RuntimeError::NotFound(format!("container {id}")));
            };
            let (name, publish) = (c.info.name.clone(), c.spec.publish);
            if let Some(p) = publish {
                let taken = s.containers.values().any(|o| {
                    o.info.id != id
                        && o.info.state == ContainerState::Running
                        && o.spec.publish == Some(p)
                });
                if taken {
                    return Err(RuntimeError::PortInUse {
                        port: p.to_string(),
                        detail: "port is already allocated".into(),
                    });
                }
            }
            let exit = s
                .exit_on_start
                .iter()
                .find(|(p, _)| name.starts_with(p.as_str()))
                .map(|(_, c)| *c);
            let health = s
                .health_on_start
                .iter()
                .find(|(p, _)| name.starts_with(p.as_str()))
                .map(|(_, h)| *h);
            let c = s.containers.get_mut(id).expect("checked above");
            c.info.oom_killed = false;
            let mut changes = vec![ContainerChange::Started];
            match exit {
                Some(code) => {
                    c.info.state = ContainerState::Exited;
                    c.info.exit_code = Some(code);
                    c.logs.push(LogLine {
                        stream: LogStream::Stderr,
                        text: format!("exiting with {code}"),
                        time: Some(std::time::SystemTime::now()),
                    });
                    changes.push(ContainerChange::Died {
                        exit_code: Some(code),
                    });
                }
                None => {
                    c.info.state = ContainerState::Running;
                    c.info.exit_code = None;
                    if c.spec.healthcheck.is_some() {
                        let h = health.unwrap_or(EngineHealth::Healthy);
                        c.info.health = h;
                        changes.push(ContainerChange::Health { health: h });
                    }
                }
            }
            Ok((c.info.clone(), changes))
        })
        .map(|(info, changes)| {
            for change in changes {
                self.emit(&info, change);
            }
        })
    }

    async fn stop_container(&self, id: &str, _grace: Duration) -> Result<()> {
        self.enter(
            "stop_container",
            format!("stop_container {}", self.name_of(id)),
        )?;
        if let Some(d) = self.with(|s| s.stop_takes) {
            tokio::time::sleep(d).await;
            let name = self.name_of(id);
            self.with(|s| s.calls.push(format!("stopped {name}")));
        }
        let stopped = self.with(|s| {
            let c = s.containers.get_mut(id)?;
            (c.info.state == ContainerState::Running).then(|| {
                c.info.state = ContainerState::Exited;
                c.info.exit_code = Some(0);
                c.info.clone()
            })
        });
        if let Some(c) = stopped {
            self.emit(&c, ContainerChange::Died { exit_code: Some(0) });
        }
        Ok(())
    }

    async fn remove_container(&self, id: &str) -> Result<()> {
        self.enter(
            "remove_container",
            format!("remove_container {}", self.name_of(id)),
        )?;
        if let Some(c) = self.with(|s| s.containers.remove(id)) {
            if c.info.state == ContainerState::Running {
                self.emit(
                    &c.info,
                    ContainerChange::Died {
                        exit_code: Some(137),
                    },
                );
            }
            self.emit(&c.info, ContainerChange::Destroyed);
        }
        Ok(())
    }

    async fn list_containers(&self, filter: &LabelFilter) -> Result<Vec<ContainerInfo>> {
        self.enter("list_containers", "list_containers".into())?;
        let mut v: Vec<ContainerInfo> = self.with(|s| {
            s.containers
                .values()
                .filter(|c| matches(&c.info.labels, filter))
                .map(|c| c.info.clone())
                .collect()
        });
        v.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(v)
    }

    async fn inspect_container(&self, id: &str) -> Result<Option<ContainerInfo>> {
        self.enter(
            "inspect_container",
            format!("inspect_container {}", self.name_of(id)),
        )?;
        Ok(self.with(|s| s.containers.get(id).map(|c| c.info.clone())))
    }

    fn logs(&self, id: &str, opts: LogOptions) -> BoxStream<'static, Result<LogLine>> {
        let lines: Vec<LogLine> = self.with(|s| {
            s.containers
                .get(id)
                .map(|c| c.logs.clone())
                .unwrap_or_default()
        });
        let lines: Vec<LogLine> = lines.into_iter().filter(|l| opts.admits(l.time)).collect();
        let skip = opts
            .tail
            .map(|t| lines.len().saturating_sub(t))
            .unwrap_or(0);
        futures_util::stream::iter(lines.into_iter().skip(skip).map(Ok)).boxed()
    }

    async fn stats(&self, id: &str) -> Result<Option<Stats>> {
        self.enter("stats", format!("stats {}", self.name_of(id)))?;
        Ok(self.with(|s| {
            let running = s
                .containers
                .get(id)
                .is_some_and(|c| c.info.state == ContainerState::Running);
            running.then(|| Stats {
                cpu_ns: s.cpu_ns.get(id).copied().unwrap_or(0),
                ..Stats::default()
            })
        }))
    }

    fn events(&self, filter: &LabelFilter) -> BoxStream<'static, RuntimeEvent> {
        let rx = self.events.subscribe();
        let filter = filter.clone();
        futures_util::stream::unfold((rx, false), move |(mut rx, mut lagged)| {
            let filter = filter.clone();
            async move {
                use tokio::sync::broadcast::error::RecvError;
                loop {
                    if std::mem::take(&mut lagged) {
                        return Some((RuntimeEvent::Resumed, (rx, false)));
                    }
                    match rx.recv().await {
                        Ok(RuntimeEvent::Container(e)) if !matches(&e.labels, &filter) => {}
                        Ok(e) => return Some((e, (rx, false))),
                        Err(RecvError::Lagged(n)) => {
                            let lost = RuntimeEvent::Lost {
                                reason: format!("{n} events dropped"),
                            };
                            return Some((lost, (rx, true)));
                        }
                        // The runtime is gone: the stream stays open, silent.
                        Err(RecvError::Closed) => std::future::pending::<()>().await,
                    }
                }
            }
        })
        .boxed()
    }
}

impl FakeRuntime {
    fn name_of(&self, id: &str) -> String {
        self.with(|s| {
            s.containers
                .get(id)
                .map(|c| c.info.name.clone())
                .unwrap_or_else(|| id.to_string())
        })
    }
}
