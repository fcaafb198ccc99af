//! One of the real runtimes, chosen at run time.

use crate::docker::DockerRuntime;
use crate::process::ProcessRuntime;
use crate::*;

/// The Docker adapter or the process adapter.
#[derive(Clone)]
pub enum AnyRuntime {
    Docker(DockerRuntime),
    Process(ProcessRuntime),
}

macro_rules! each {
    ($self:ident, $rt:ident => $e:expr) => {
        match $self {
            AnyRuntime::Docker($rt) => $e,
            AnyRuntime::Process($rt) => $e,
        }
    };
}

impl Runtime for AnyRuntime {
    fn address(&self) -> String {
        each!(self, r => r.address())
    }
    fn kind(&self) -> RuntimeKind {
        each!(self, r => r.kind())
    }
    fn engine(&self) -> EngineInfo {
        each!(self, r => r.engine())
    }
    async fn exec(&self, id: &str, command: &[String], timeout: Duration) -> Result<ExecOutput> {
        each!(self, r => r.exec(id, command, timeout).await)
    }
    async fn copy_into(&self, id: &str, dir: &str, tar: Vec<u8>) -> Result<()> {
        each!(self, r => r.copy_into(id, dir, tar).await)
    }
    async fn ping(&self) -> Result<()> {
        each!(self, r => r.ping().await)
    }
    async fn inspect_image(&self, reference: &str) -> Result<Option<ImageInfo>> {
        each!(self, r => r.inspect_image(reference).await)
    }
    async fn pull_image(&self, reference: &str) -> Result<()> {
        each!(self, r => r.pull_image(reference).await)
    }
    async fn build_image(
        &self,
        request: BuildRequest,
        progress: &(dyn Fn(&str) + Send + Sync),
    ) -> Result<String> {
        each!(self, r => r.build_image(request, progress).await)
    }
    async fn load_image(&self, archive: Vec<u8>) -> Result<()> {
        each!(self, r => r.load_image(archive).await)
    }
    async fn create_network(&self, name: &str, labels: &BTreeMap<String, String>) -> Result<()> {
        each!(self, r => r.create_network(name, labels).await)
    }
    async fn remove_network(&self, name: &str) -> Result<()> {
        each!(self, r => r.remove_network(name).await)
    }
    async fn list_networks(&self, filter: &LabelFilter) -> Result<Vec<String>> {
        each!(self, r => r.list_networks(filter).await)
    }
    async fn create_volume(
        &self,
        name: &str,
        labels: &BTreeMap<String, String>,
        owner: Option<&Owner>,
    ) -> Result<()> {
        each!(self, r => r.create_volume(name, labels, owner).await)
    }
    async fn write_files(&self, dir: &Path, files: &[FileSpec], owner: &Owner) -> Result<()> {
        each!(self, r => r.write_files(dir, files, owner).await)
    }
    async fn read_image_files(
        &self,
        image: &str,
        paths: &[&str],
        stack: &str,
    ) -> Result<BTreeMap<String, Vec<u8>>> {
        each!(self, r => r.read_image_files(image, paths, stack).await)
    }
    async fn sweep_helpers(&self, stack: &str) -> Result<Vec<String>> {
        each!(self, r => r.sweep_helpers(stack).await)
    }
    async fn remove_volume(&self, name: &str) -> Result<()> {
        each!(self, r => r.remove_volume(name).await)
    }
    async fn list_volumes(&self, filter: &LabelFilter) -> Result<Vec<String>> {
        each!(self, r => r.list_volumes(filter).await)
    }
    async fn create_container(&self, spec: &ContainerSpec) -> Result<String> {
        each!(self, r => r.create_container(spec).await)
    }
    async fn start_container(&self, id: &str) -> Result<()> {
        each!(self, r => r.start_container(id).await)
    }
    async fn stop_container(&self, id: &str, grace: Duration) -> Result<()> {
        each!(self, r => r.stop_container(id, grace).await)
    }
    async fn remove_container(&self, id: &str) -> Result<()> {
        each!(self, r => r.remove_container(id).await)
    }
    async fn list_containers(&self, filter: &LabelFilter) -> Result<Vec<ContainerInfo>> {
        each!(self, r => r.list_containers(filter).await)
    }
    async fn inspect_container(&self, id: &str) -> Result<Option<ContainerInfo>> {
        each!(self, r => r.inspect_container(id).await)
    }
    fn logs(&self, id: &str, opts: LogOptions) -> BoxStream<'static, Result<LogLine>> {
        each!(self, r => r.logs(id, opts))
    }
    fn events(&self, filter: &LabelFilter) -> BoxStream<'static, RuntimeEvent> {
        each!(self, r => r.events(filter))
    }
    async fn stats(&self, id: &str) -> Result<Option<Stats>> {
        each!(self, r => r.stats(id).await)
    }
}
