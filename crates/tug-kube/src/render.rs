//! Stack → Kubernetes objects. Pure: the same stack and options give the same
//! objects in the same order, so the YAML is byte-identical run after run.
//!
//! Per service: ServiceAccount, ConfigMap/Secret (env), Deployment, Service
//! (with `port`, `ports` or `expose`), PodDisruptionBudget (replicas > 1),
//! NetworkPolicy (ingress from the services that depend on it); per stack:
//! PersistentVolumeClaims for named volumes, a Secret or ConfigMap per file
//! secret or config a service mounts (the only files read here), and a
//! default-deny NetworkPolicy. Whatever tug.yaml says that Kubernetes cannot
//! carry with the same meaning is an error at its position.

use crate::object::Object;
use crate::{labels, RenderError, RenderErrors};
use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment,
};
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMap, ConfigMapEnvSource, ConfigMapVolumeSource, Container, ContainerPort,
    EmptyDirVolumeSource, EnvFromSource, EnvVar, EnvVarSource, ExecAction, HTTPGetAction,
    KeyToPath, Lifecycle, LifecycleHandler, ObjectFieldSelector, PersistentVolumeClaim,
    PersistentVolumeClaimSpec, PersistentVolumeClaimVolumeSource, PodSecurityContext, PodSpec,
    PodTemplateSpec, Probe, ResourceRequirements, SeccompProfile, Secret, SecretEnvSource,
    SecretVolumeSource, SecurityContext, Service, ServiceAccount, ServicePort, ServiceSpec,
    SleepAction, TCPSocketAction, Volume, VolumeMount, VolumeResourceRequirements,
};
use k8s_openapi::api::networking::v1::{
    NetworkPolicy, NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicyPort,
    NetworkPolicySpec,
};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::ByteString;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use tug_spec::{Condition, MountSource, Probe as SpecProbe, RestartPolicy, Stack, UpdateOrder};

mod hpa;
mod route;

pub use route::{GatewayRef, RouteTarget, DEFAULT_INGRESS_NAMESPACE};

/// Settings of tug.yaml that Kubernetes has no per-workload equivalent for,
/// which a user may choose to leave out (`--skip`) instead of getting an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Skip {
    /// `resources.pids`: Kubernetes limits PIDs per node (kubelet `podPidsLimit`).
    Pids,
    /// `publish` and `host_ip`: a port on the host; use `kubectl port-forward`.
    Publish,
    /// `verify`: signatures are checked by the cluster's admission policy
    /// (e.g. sigstore's policy-controller), not by the Deployment.
    Verify,
}

impl Skip {
    pub const ALL: &[(&str, Skip)] = &[
        ("pids", Skip::Pids),
        ("publish", Skip::Publish),
        ("verify", Skip::Verify),
    ];
}

/// What the renderer needs besides the stack.
#[derive(Clone, Debug)]
pub struct RenderOptions {
    /// Namespace of every object; default: the stack name.
    pub namespace: Option<String>,
    /// Image per service, for services built from source that name none
    /// (`--image web=registry.example/hello:1.0.0`); also overrides `image:`.
    pub images: BTreeMap<String, String>,
    pub skip: BTreeSet<Skip>,
    /// Size requested by each PersistentVolumeClaim.
    pub volume_size: String,
    /// What `route:` becomes: an Ingress or a Gateway API HTTPRoute.
    pub routes: RouteTarget,
    /// `spec.ingressClassName` of Ingresses; unset: the cluster's default class.
    pub ingress_class: Option<String>,
    /// The Gateway HTTPRoutes attach to.
    pub gateway: GatewayRef,
    /// Namespace of the ingress controller's or gateway's pods, admitted by
    /// the NetworkPolicy of routed services. Unset: `ingress-nginx` for
    /// Ingress, the Gateway's namespace for HTTPRoute.
    pub controller_namespace: Option<String>,
}

impl Default for RenderOptions {
    fn default() -> Self {
        RenderOptions {
            namespace: None,
            images: BTreeMap::new(),
            skip: BTreeSet::new(),
            volume_size: "1Gi".into(),
            routes: RouteTarget::default(),
            ingress_class: None,
            gateway: GatewayRef::default(),
            controller_namespace: None,
        }
    }
}

impl RenderOptions {
    pub fn namespace<'a>(&'a self, stack: &'a Stack) -> &'a str {
        self.namespace.as_deref().unwrap_or(&stack.name)
    }

    /// Where the pods that forward routed traffic run.
    pub fn controller_namespace<'a>(&'a self, stack: &'a Stack) -> &'a str {
        match (&self.controller_namespace, self.routes) {
            (Some(n), _) => n,
            (None, RouteTarget::Ingress) => DEFAULT_INGRESS_NAMESPACE,
            (None, RouteTarget::GatewayApi) => self
                .gateway
                .namespace
                .as_deref()
                .unwrap_or_else(|| self.namespace(stack)),
        }
    }
}

/// A render and what it could not carry exactly (each at its tug.yaml line).
#[derive(Clone, Debug)]
pub struct Rendered {
    pub objects: Vec<Object>,
    pub warnings: Vec<RenderError>,
}

/// How long the preStop hook waits so that endpoints stop sending traffic
/// before the process gets SIGTERM (capped by half the grace period).
const PRESTOP_SLEEP_SECS: i64 = 5;

/// Renders the stack. `source` is the text of the stack file, used only to
/// place errors at `file:line:col`. Warnings are dropped: callers that show
/// them use [`render_with_warnings`].
pub fn render(
    stack: &Stack,
    source: &str,
    opts: &RenderOptions,
) -> Result<Vec<Object>, RenderErrors> {
    render_with_warnings(stack, source, opts).map(|r| r.objects)
}

/// Renders the stack, with the settings it carried only partly as warnings.
pub fn render_with_warnings(
    stack: &Stack,
    source: &str,
    opts: &RenderOptions,
) -> Result<Rendered, RenderErrors> {
    let mut cx = Cx {
        stack,
        source,
        errors: Vec::new(),
        warnings: Vec::new(),
        files: BTreeMap::new(),
    };
    for (what, ns) in [
        (
            "--controller-namespace",
            opts.controller_namespace.as_deref(),
        ),
        ("--gateway", opts.gateway.namespace.as_deref()),
    ] {
        if let Some(ns) = ns.filter(|n| !is_dns_label(n)) {
            cx.errors.push(RenderError {
                file: stack.file.clone(),
                line: 1,
                col: 1,
                message: format!("{what}: invalid namespace `{ns}`"),
                hint: Some("use lowercase letters, digits and '-'".into()),
            });
        }
    }
    if !is_dns_subdomain(&opts.gateway.name) {
        cx.errors.push(RenderError {
            file: stack.file.clone(),
            line: 1,
            col: 1,
            message: format!("--gateway: invalid Gateway name `{}`", opts.gateway.name),
            hint: Some("write NAME or NAMESPACE/NAME".into()),
        });
    }
    gateway_settings(&mut cx);
    let ns = opts.namespace(stack).to_string();
    if !is_dns_label(&ns) {
        cx.errors.push(RenderError {
            file: stack.file.clone(),
            line: 1,
            col: 1,
            message: format!("invalid namespace `{ns}`: use lowercase letters, digits and '-' (at most 63), starting with a letter"),
            hint: None,
        });
    }
    for name in opts.images.keys() {
        if !stack.services.contains_key(name) {
            cx.errors.push(RenderError {
                file: stack.file.clone(),
                line: 1,
                col: 1,
                message: format!("--image names service `{name}`, which the stack does not have"),
                hint: Some(format!(
                    "services: {}",
                    stack
                        .services
                        .keys()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            });
        }
    }
    let mut out = Vec::new();
    out.extend(volumes(&mut cx, &ns, opts));
    out.extend(files(&mut cx, &ns));
    out.push(Object::NetworkPolicy(default_deny(stack, &ns)));
    for name in stack.services.keys() {
        out.extend(service(&mut cx, name, &ns, opts));
    }
    if cx.errors.is_empty() {
        cx.warnings.sort_by_key(|e| (e.line, e.col));
        Ok(Rendered {
            objects: out,
            warnings: cx.warnings,
        })
    } else {
        cx.errors.sort_by_key(|e| (e.line, e.col));
        Err(tug_spec::SpecErrors(cx.errors))
    }
}

struct Cx<'a> {
    stack: &'a Stack,
    source: &'a str,
    errors: Vec<RenderError>,
    warnings: Vec<RenderError>,
    /// The Secret or ConfigMap of each stack secret or config a service mounts.
    files: BTreeMap<(FileKind, String), String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum FileKind {
    Secret,
    Config,
}

impl FileKind {
    fn key(self) -> &'static str {
        match self {
            FileKind::Secret => "secrets",
            FileKind::Config => "configs",
        }
    }
    fn word(self) -> &'static str {
        match self {
            FileKind::Secret => "secret",
            FileKind::Config => "config",
        }
    }
}

impl Cx<'_> {
    fn err(&mut self, path: &[&str], message: impl Into<String>, hint: Option<String>) {
        let (line, col) = tug_spec::locate(self.source, path);
        self.errors.push(RenderError {
            file: self.stack.file.clone(),
            line,
            col,
            message: message.into(),
            hint,
        });
    }

    fn warn_at(&mut self, path: &[String], message: impl Into<String>, hint: Option<String>) {
        let (line, col) = tug_spec::locate(self.source, &at_str(path));
        self.warnings.push(RenderError {
            file: self.stack.file.clone(),
            line,
            col,
            message: message.into(),
            hint,
        });
    }

    fn written_path(&self, path: &[String]) -> bool {
        self.written(&at_str(path))
    }

    /// Whether the file itself has the key (not only its default).
    fn written(&self, path: &[&str]) -> bool {
        let (parent, key) = (&path[..path.len() - 1], path[path.len() - 1]);
        let _ = key;
        tug_spec::locate(self.source, path) != tug_spec::locate(self.source, parent)
    }
}

/// The local gateway's own settings: on Kubernetes the ingress controller or
/// Gateway listens and sets its limits, so they are said, not dropped.
fn gateway_settings(cx: &mut Cx) {
    if cx.stack.gateway.is_none() {
        return;
    }
    // `listen` is carried: routes become the controller's.
    for key in [
        "access_log",
        "max_connections",
        "header_timeout",
        "max_header_size",
        "max_body_size",
    ] {
        let p = vec!["gateway".to_string(), key.to_string()];
        if cx.written_path(&p) {
            cx.warn_at(
                &p,
                format!("`gateway.{key}` is tug's local gateway setting: on Kubernetes the ingress controller or Gateway sets it"),
                None,
            );
        }
    }
}

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.as_bytes()[0].is_ascii_lowercase()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.ends_with('-')
}

fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !p.starts_with('-')
                && !p.ends_with('-')
        })
}

/// The labels every object of a service carries.
pub fn service_labels(stack: &str, service: &str) -> BTreeMap<String, String> {
    let mut l = stack_labels(stack, "service");
    l.insert(labels::NAME.into(), service.into());
    l.insert(labels::INSTANCE.into(), format!("{stack}-{service}"));
    l.insert(labels::TUG_SERVICE.into(), service.into());
    l
}

/// The labels of an object that belongs to the stack as a whole.
pub fn stack_labels(stack: &str, component: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (labels::COMPONENT.into(), component.into()),
        (labels::MANAGED_BY.into(), labels::MANAGER.into()),
        (labels::PART_OF.into(), stack.into()),
        (labels::TUG_STACK.into(), stack.into()),
    ])
}

/// The pod selector of a service: stable for the life of the Deployment.
fn selector(stack: &str, service: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (labels::NAME.into(), service.into()),
        (labels::PART_OF.into(), stack.into()),
    ])
}

fn meta(name: &str, ns: &str, labels: BTreeMap<String, String>) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.into()),
        namespace: Some(ns.into()),
        labels: Some(labels),
        ..ObjectMeta::default()
    }
}

fn default_deny(stack: &Stack, ns: &str) -> NetworkPolicy {
    NetworkPolicy {
        metadata: meta(
            &format!("{}-default-deny", stack.name),
            ns,
            stack_labels(&stack.name, "network-policy"),
        ),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(LabelSelector {
                match_labels: Some(BTreeMap::from([(
                    labels::PART_OF.into(),
                    stack.name.clone(),
                )])),
                ..LabelSelector::default()
            }),
            policy_types: Some(vec!["Ingress".into()]),
            ingress: None,
            egress: None,
        }),
    }
}

/// Named volumes → claims. A volume mounted by one replica of one service is
/// ReadWriteOnce; shared by several pods it needs ReadWriteMany, as locally.
fn volumes(cx: &mut Cx, ns: &str, opts: &RenderOptions) -> Vec<Object> {
    let stack = cx.stack;
    let mut out = Vec::new();
    for vol in stack.named_volumes() {
        let users: Vec<(&String, &tug_spec::Service)> = stack
            .services
            .iter()
            .filter(|(_, s)| {
                s.volumes
                    .iter()
                    .any(|m| matches!(&m.source, MountSource::Volume(v) if v == vol))
            })
            .collect();
        if !is_dns_subdomain(vol) {
            let (sname, s) = users[0];
            let i = s
                .volumes
                .iter()
                .position(|m| matches!(&m.source, MountSource::Volume(v) if v == vol))
                .unwrap_or(0)
                .to_string();
            cx.err(
                &["services", sname, "volumes", &i],
                format!("volume name `{vol}` is not a valid Kubernetes name"),
                Some("use lowercase letters, digits, '-' and '.'".into()),
            );
            continue;
        }
        let shared = users.len() > 1 || users.iter().any(|(_, s)| s.replicas > 1);
        let mode = if shared {
            "ReadWriteMany"
        } else {
            "ReadWriteOnce"
        };
        out.push(Object::PersistentVolumeClaim(PersistentVolumeClaim {
            metadata: meta(vol, ns, stack_labels(&stack.name, "volume")),
            spec: Some(PersistentVolumeClaimSpec {
                access_modes: Some(vec![mode.into()]),
                resources: Some(VolumeResourceRequirements {
                    requests: Some(BTreeMap::from([(
                        "storage".into(),
                        Quantity(opts.volume_size.clone()),
                    )])),
                    limits: None,
                }),
                ..PersistentVolumeClaimSpec::default()
            }),
            status: None,
        }));
    }
    out
}

/// Stack secrets and configs that some service mounts: a Secret (the file's
/// bytes, never logged) or a ConfigMap each, named after the content so that
/// a changed file rolls the pods that mount it.
fn files(cx: &mut Cx, ns: &str) -> Vec<Object> {
    let stack = cx.stack;
    let mut out = Vec::new();
    for (kind, refs) in [
        (FileKind::Secret, &stack.secrets),
        (FileKind::Config, &stack.configs),
    ] {
        for (name, r) in refs {
            let used = stack.services.values().any(|s| {
                let mounts = match kind {
                    FileKind::Secret => &s.secrets,
                    FileKind::Config => &s.configs,
                };
                mounts.iter().any(|m| &m.source == name)
            });
            if !used {
                continue;
            }
            if !is_data_key(name) {
                cx.err(
                    &[kind.key(), name],
                    format!(
                        "{} name `{name}` cannot be a Kubernetes data key",
                        kind.word()
                    ),
                    Some("use letters, digits, '-', '_' and '.'".into()),
                );
                continue;
            }
            let content = match std::fs::read(&r.file) {
                Ok(c) => c,
                Err(e) => {
                    cx.err(
                        &[kind.key(), name, "file"],
                        format!("cannot read {} file {}: {e}", kind.word(), r.file.display()),
                        None,
                    );
                    continue;
                }
            };
            let object = format!(
                "{}-{}-{}-{}",
                stack.name,
                kind.word(),
                name.to_ascii_lowercase().replace('_', "-"),
                bytes_hash(&content)
            );
            if !is_dns_subdomain(&object) {
                cx.err(
                    &[kind.key(), name],
                    format!("{} name `{name}` makes the object name `{object}`, which Kubernetes rejects", kind.word()),
                    Some("use lowercase letters, digits, '-' and '.'".into()),
                );
                continue;
            }
            let labels = stack_labels(&stack.name, kind.word());
            out.push(match kind {
                FileKind::Secret => Object::Secret(Secret {
                    metadata: meta(&object, ns, labels),
                    data: Some(BTreeMap::from([(name.clone(), ByteString(content))])),
                    immutable: Some(true),
                    type_: Some("Opaque".into()),
                    ..Secret::default()
                }),
                FileKind::Config => {
                    // ConfigMap `data` holds UTF-8 only; other files go as bytes.
                    let (data, binary_data) = match String::from_utf8(content) {
                        Ok(t) => (Some(BTreeMap::from([(name.clone(), t)])), None),
                        Err(e) => (
                            None,
                            Some(BTreeMap::from([(name.clone(), ByteString(e.into_bytes()))])),
                        ),
                    };
                    Object::ConfigMap(ConfigMap {
                        metadata: meta(&object, ns, labels),
                        data,
                        binary_data,
                        immutable: Some(true),
                    })
                }
            });
            cx.files.insert((kind, name.clone()), object);
        }
    }
    out
}

/// A key of a Secret's or ConfigMap's data.
fn is_data_key(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s != "."
        && s != ".."
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn bytes_hash(data: &[u8]) -> String {
    Sha256::digest(data)[..5]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Env names whose values are credentials: they go to a Secret, not a ConfigMap.
fn is_secret_name(name: &str) -> bool {
    let n = name.to_ascii_uppercase();
    [
        "PASSWORD",
        "PASSWD",
        "SECRET",
        "TOKEN",
        "API_KEY",
        "APIKEY",
        "PRIVATE_KEY",
        "CREDENTIAL",
        "ACCESS_KEY",
    ]
    .iter()
    .any(|w| n.contains(w))
}

/// A short content hash: a changed env gets a new object name, so the pods roll.
fn content_hash(data: &BTreeMap<String, String>) -> String {
    let mut h = Sha256::new();
    for (k, v) in data {
        h.update(k.as_bytes());
        h.update([0]);
        h.update(v.as_bytes());
        h.update([0]);
    }
    h.finalize()[..5]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Seconds of a duration that Kubernetes counts in whole seconds.
fn whole_secs(cx: &mut Cx, path: &[&str], d: tug_spec::Duration, min: u64) -> i32 {
    let d = d.std();
    if d.subsec_nanos() != 0 {
        cx.err(
            path,
            format!("{} is not a whole number of seconds", tug_spec::Duration(d)),
            Some("Kubernetes counts probe and grace periods in whole seconds".into()),
        );
    }
    i32::try_from(d.as_secs().max(min)).unwrap_or(i32::MAX)
}

fn cpu_quantity(cpu: f64) -> Quantity {
    let milli = (cpu * 1000.0).round() as i64;
    if milli % 1000 == 0 {
        Quantity((milli / 1000).to_string())
    } else {
        Quantity(format!("{milli}m"))
    }
}

fn memory_quantity(bytes: u64) -> Quantity {
    for (unit, size) in [("Gi", 1u64 << 30), ("Mi", 1 << 20), ("Ki", 1 << 10)] {
        if bytes >= size && bytes.is_multiple_of(size) {
            return Quantity(format!("{}{unit}", bytes / size));
        }
    }
    Quantity(bytes.to_string())
}

/// `uid[:gid]` → numbers; Kubernetes has no user names.
fn parse_user(u: &str) -> Option<(i64, Option<i64>)> {
    let (uid, gid) = match u.split_once(':') {
        Some((a, b)) => (a, Some(b)),
        None => (u, None),
    };
    let uid = uid.parse().ok()?;
    let gid = match gid {
        Some(g) => Some(g.parse().ok()?),
        None => None,
    };
    Some((uid, gid))
}

fn service(cx: &mut Cx, name: &str, ns: &str, opts: &RenderOptions) -> Vec<Object> {
    let stack = cx.stack;
    let s = &stack.services[name];
    let at = |k: &[&str]| -> Vec<String> {
        let mut v = vec!["services".to_string(), name.to_string()];
        v.extend(k.iter().map(|s| s.to_string()));
        v
    };
    macro_rules! err {
        ($keys:expr, $msg:expr, $hint:expr) => {{
            let p = at($keys);
            let p: Vec<&str> = p.iter().map(String::as_str).collect();
            cx.err(&p, $msg, $hint)
        }};
    }
    let written = |cx: &Cx, k: &[&str]| {
        let p = at(k);
        let p: Vec<&str> = p.iter().map(String::as_str).collect();
        cx.written(&p)
    };

    if !is_dns_label(name) {
        err!(
            &[],
            format!("service name `{name}` is not a valid Kubernetes Service name"),
            Some("start it with a lowercase letter".into())
        );
    }
    let image = match (opts.images.get(name), &s.image, &s.build) {
        (Some(i), _, _) => i.clone(),
        (None, Some(i), _) => i.clone(),
        (None, None, _) => {
            err!(
                &["build"],
                format!("service `{name}` is built from source and names no image for the cluster to pull"),
                Some(format!("push the build (`tug build --push`) and add `image: REGISTRY/{name}:TAG` to the service, or pass --image {name}=REF"))
            );
            String::new()
        }
    };
    if s.publish.is_some() && !opts.skip.contains(&Skip::Publish) {
        err!(
            &["publish"],
            "`publish` (a fixed port on the host's loopback) has no Kubernetes equivalent",
            Some("reach the service with `kubectl port-forward`, or pass --skip publish to render without it".into())
        );
    }
    if s.host_ip.is_some() && !opts.skip.contains(&Skip::Publish) {
        err!(
            &["host_ip"],
            "`host_ip` (the host address a port is published on) has no Kubernetes equivalent",
            Some("reach the service with `kubectl port-forward`, or pass --skip publish to render without it".into())
        );
    }
    if s.verify.is_some() && !opts.skip.contains(&Skip::Verify) {
        err!(
            &["verify"],
            "`verify` (a signature checked before any container starts) is not enforced by a Deployment",
            Some("enforce it with the cluster's admission policy (e.g. sigstore policy-controller), then pass --skip verify".into())
        );
    }
    if !s.aliases.is_empty() {
        err!(
            &["aliases"],
            "`aliases` (more names on the stack's network) is not rendered to Kubernetes",
            Some("other pods reach the service by its name; add a Service per alias outside tug, or remove them".into())
        );
    }
    for (i, p) in s.ports.iter().enumerate() {
        if (p.publish.is_some() || p.host_ip.is_some()) && !opts.skip.contains(&Skip::Publish) {
            err!(
                &["ports", &i.to_string()],
                format!("port {}/{}: `publish` and `host_ip` (a port on the host) have no Kubernetes equivalent", p.port, p.protocol.as_str()),
                Some("the Service carries the port inside the cluster; reach it with `kubectl port-forward`, or pass --skip publish".into())
            );
        }
    }
    if written(cx, &["resources", "pids"]) && !opts.skip.contains(&Skip::Pids) {
        err!(
            &["resources", "pids"],
            "`resources.pids` has no per-pod equivalent on Kubernetes (the node's kubelet sets podPidsLimit)",
            Some("pass --skip pids to render without it".into())
        );
    }
    if s.restart != RestartPolicy::Always && written(cx, &["restart"]) {
        err!(
            &["restart"],
            format!(
                "restart: {} cannot be carried by a Deployment, whose pods always restart",
                match s.restart {
                    RestartPolicy::No => "no",
                    RestartPolicy::OnFailure => "on-failure",
                    RestartPolicy::UnlessStopped => "unless-stopped",
                    RestartPolicy::Always => "always",
                }
            ),
            Some("use restart: always (the default) for services rendered to Kubernetes".into())
        );
    }
    for (dep, cond) in &s.depends_on {
        if *cond == Condition::Completed {
            err!(
                &["depends_on", dep],
                format!("depends_on `{dep}`: completed has no Kubernetes meaning for Deployments"),
                Some("run one-off tasks as a Job outside the stack, or depend on `started`/`healthy`".into())
            );
        }
    }
    for (i, m) in s.volumes.iter().enumerate() {
        if let MountSource::Bind(p) = &m.source {
            err!(
                &["volumes", &i.to_string()],
                format!("bind mount of `{}`: a host path on this machine does not exist on the cluster's nodes", p.display()),
                Some("use a named volume (a PersistentVolumeClaim) or bake the files into the image".into())
            );
        }
    }
    let sec = &s.security;
    let user = match &sec.user {
        Some(u) => match parse_user(u) {
            Some(p) => Some(p),
            None => {
                err!(
                    &["security", "user"],
                    format!("user `{u}` is a name; Kubernetes runs containers by numeric id"),
                    Some("use `uid` or `uid:gid`, e.g. \"10001\"".into())
                );
                None
            }
        },
        None => parse_user(tug_spec::DEFAULT_USER),
    };
    let (uid, gid) = user.unwrap_or((65534, Some(65534)));
    if uid == 0 {
        err!(
            &["security", "user"],
            "runs as root: the rendered pods set runAsNonRoot",
            Some("use a non-root uid, e.g. \"10001\"".into())
        );
    }
    let seccomp = match sec.seccomp.as_deref() {
        None => "RuntimeDefault",
        Some("unconfined") => "Unconfined",
        Some(p) => {
            err!(
                &["security", "seccomp"],
                format!("seccomp profile `{p}` is a file on this machine, not on the cluster's nodes"),
                Some("install it on the nodes and reference it as a Localhost profile outside tug, or remove it for RuntimeDefault".into())
            );
            "RuntimeDefault"
        }
    };
    if s.update.max_surge == 0 && s.update.max_unavailable == 0 {
        err!(
            &["update"],
            "update with max_surge 0 and max_unavailable 0 can never progress",
            Some("set max_surge: 1".into())
        );
    }

    let ports = service_ports(s);
    let labels = service_labels(&stack.name, name);
    let mut out = Vec::new();
    out.push(Object::ServiceAccount(ServiceAccount {
        metadata: meta(name, ns, labels.clone()),
        automount_service_account_token: Some(false),
        ..ServiceAccount::default()
    }));

    // env: literal values in a ConfigMap, credentials in a Secret.
    // Values read from an env_file (not written in tug.yaml) are kept out of
    // the repository for a reason: they go to the Secret too.
    let (secret_env, plain_env): (BTreeMap<_, _>, BTreeMap<_, _>) = s
        .env
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .partition(|(k, _)| {
            is_secret_name(k) || (!s.env_file.is_empty() && !written(cx, &["env", k]))
        });
    let mut env_from = Vec::new();
    if !plain_env.is_empty() {
        let cm = format!("{name}-env-{}", content_hash(&plain_env));
        env_from.push(EnvFromSource {
            config_map_ref: Some(ConfigMapEnvSource {
                name: cm.clone(),
                optional: None,
            }),
            ..EnvFromSource::default()
        });
        out.push(Object::ConfigMap(ConfigMap {
            metadata: meta(&cm, ns, labels.clone()),
            data: Some(plain_env),
            immutable: Some(true),
            ..ConfigMap::default()
        }));
    }
    if !secret_env.is_empty() {
        let sn = format!("{name}-secret-{}", content_hash(&secret_env));
        env_from.push(EnvFromSource {
            secret_ref: Some(SecretEnvSource {
                name: sn.clone(),
                optional: None,
            }),
            ..EnvFromSource::default()
        });
        out.push(Object::Secret(Secret {
            metadata: meta(&sn, ns, labels.clone()),
            data: Some(
                secret_env
                    .into_iter()
                    .map(|(k, v)| (k, ByteString(v.into_bytes())))
                    .collect(),
            ),
            immutable: Some(true),
            type_: Some("Opaque".into()),
            ..Secret::default()
        }));
    }
    // What tug sets locally too, unless the service sets it itself.
    let mut env = Vec::new();
    if let Some(p) = s.port {
        if !s.env.contains_key("PORT") {
            env.push(EnvVar {
                name: "PORT".into(),
                value: Some(p.to_string()),
                value_from: None,
            });
        }
    }
    if !s.env.contains_key("TUG_REPLICA") {
        env.push(EnvVar {
            name: "TUG_REPLICA".into(),
            value: None,
            value_from: Some(EnvVarSource {
                field_ref: Some(ObjectFieldSelector {
                    api_version: None,
                    field_path: "metadata.name".into(),
                }),
                ..EnvVarSource::default()
            }),
        });
    }
    if !s.env.contains_key("TUG_SERVICE") {
        env.push(EnvVar {
            name: "TUG_SERVICE".into(),
            value: Some(name.into()),
            value_from: None,
        });
    }

    let probe = s.health.as_ref().map(|h| {
        let handler = match h.probe() {
            SpecProbe::Http(path) => {
                if s.port.is_none() {
                    err!(
                        &["health", "http"],
                        "an HTTP health check needs the service's `port`",
                        None
                    );
                }
                Probe {
                    http_get: Some(HTTPGetAction {
                        path: Some(path),
                        port: IntOrString::Int(i32::from(s.port.unwrap_or(0))),
                        ..HTTPGetAction::default()
                    }),
                    ..Probe::default()
                }
            }
            SpecProbe::Tcp => {
                if s.port.is_none() {
                    err!(
                        &["health", "tcp"],
                        "a TCP health check needs the service's `port`",
                        None
                    );
                }
                Probe {
                    tcp_socket: Some(TCPSocketAction {
                        host: None,
                        port: IntOrString::Int(i32::from(s.port.unwrap_or(0))),
                    }),
                    ..Probe::default()
                }
            }
            SpecProbe::Exec(cmd) => Probe {
                exec: Some(ExecAction { command: Some(cmd) }),
                ..Probe::default()
            },
        };
        let period = whole_secs(cx, &at_str(&at(&["health", "interval"])), h.interval, 1);
        let timeout = whole_secs(cx, &at_str(&at(&["health", "timeout"])), h.timeout, 1);
        let start = whole_secs(
            cx,
            &at_str(&at(&["health", "start_period"])),
            h.start_period,
            0,
        );
        let retries = i32::try_from(h.retries.max(1)).unwrap_or(i32::MAX);
        let base = Probe {
            period_seconds: Some(period),
            timeout_seconds: Some(timeout),
            failure_threshold: Some(retries),
            ..handler
        };
        // Failures during start_period do not count: a startup probe that
        // allows start_period plus the usual retries before liveness begins.
        let startup = (start > 0).then(|| Probe {
            failure_threshold: Some((start + period - 1) / period + retries),
            ..base.clone()
        });
        (base, startup)
    });

    let grace = whole_secs(
        cx,
        &at_str(&at(&["stop_grace_period"])),
        s.stop_grace_period,
        0,
    );
    let pre_stop = (PRESTOP_SLEEP_SECS).min(i64::from(grace) / 2);

    let mut mounts = Vec::new();
    let mut mounts_out = Vec::new();
    let mut pod_volumes = Vec::new();
    if sec.read_only && !s.volumes.iter().any(|m| m.target == "/tmp") {
        mounts.push(VolumeMount {
            name: "tmp".into(),
            mount_path: "/tmp".into(),
            ..VolumeMount::default()
        });
        pod_volumes.push(Volume {
            name: "tmp".into(),
            empty_dir: Some(EmptyDirVolumeSource::default()),
            ..Volume::default()
        });
    }
    for m in &s.volumes {
        if let MountSource::Volume(v) = &m.source {
            let vname = format!("vol-{}", v.replace(['.', '_'], "-"));
            mounts.push(VolumeMount {
                name: vname.clone(),
                mount_path: m.target.clone(),
                read_only: m.read_only.then_some(true),
                ..VolumeMount::default()
            });
            if !pod_volumes.iter().any(|pv: &Volume| pv.name == vname) {
                pod_volumes.push(Volume {
                    name: vname,
                    persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                        claim_name: v.clone(),
                        read_only: None,
                    }),
                    ..Volume::default()
                });
            }
        }
    }

    // Secrets and configs: one file each at its target, read-only. A secret is
    // mode 0400 as tug writes it locally; Kubernetes cannot give it to the
    // service's user, so fsGroup (below) makes it group-readable for the pod.
    let mut has_secret = false;
    for (kind, mounts) in [
        (FileKind::Secret, &s.secrets),
        (FileKind::Config, &s.configs),
    ] {
        for m in mounts {
            let Some(object) = cx.files.get(&(kind, m.source.clone())) else {
                continue;
            };
            let label = format!(
                "{}-{}",
                kind.word(),
                m.source.to_ascii_lowercase().replace(['_', '.'], "-")
            );
            let vname = if is_dns_label(&label) {
                label
            } else {
                format!("{}-{}", kind.word(), bytes_hash(m.source.as_bytes()))
            };
            mounts_push_file(&mut mounts_out, &vname, &m.target, &m.source);
            if !pod_volumes.iter().any(|pv: &Volume| pv.name == vname) {
                let items = Some(vec![KeyToPath {
                    key: m.source.clone(),
                    path: m.source.clone(),
                    mode: None,
                    user: None,
                }]);
                pod_volumes.push(match kind {
                    FileKind::Secret => {
                        has_secret = true;
                        Volume {
                            name: vname,
                            secret: Some(SecretVolumeSource {
                                secret_name: Some(object.clone()),
                                items,
                                default_mode: Some(0o400),
                                // Alpha (AtomicWriteVolumeUserFields): fsGroup instead.
                                default_user: None,
                                optional: None,
                            }),
                            ..Volume::default()
                        }
                    }
                    FileKind::Config => Volume {
                        name: vname,
                        config_map: Some(ConfigMapVolumeSource {
                            name: object.clone(),
                            items,
                            default_mode: Some(0o444),
                            default_user: None,
                            optional: None,
                        }),
                        ..Volume::default()
                    },
                });
            }
        }
    }
    mounts.extend(mounts_out);

    let mut limits = BTreeMap::new();
    if let Some(c) = s.resources.cpu {
        limits.insert("cpu".to_string(), cpu_quantity(c));
    }
    if s.resources.memory.0 > 0 {
        limits.insert("memory".to_string(), memory_quantity(s.resources.memory.0));
    }

    let mut caps_add: Vec<String> = sec
        .cap_add
        .iter()
        .map(|c| c.trim_start_matches("CAP_").to_ascii_uppercase())
        .collect();
    caps_add.sort();
    caps_add.dedup();
    let container = Container {
        name: name.into(),
        image: Some(image),
        image_pull_policy: Some("Always".into()),
        command: s.entrypoint.clone(),
        args: s.command.clone(),
        ports: (!ports.is_empty()).then(|| {
            ports
                .iter()
                .map(|p| ContainerPort {
                    name: Some(p.name.clone()),
                    container_port: i32::from(p.port),
                    protocol: Some(p.protocol.into()),
                    ..ContainerPort::default()
                })
                .collect()
        }),
        env: Some(env),
        env_from: (!env_from.is_empty()).then_some(env_from),
        resources: (!limits.is_empty()).then(|| ResourceRequirements {
            requests: Some(limits.clone()),
            limits: Some(limits),
            claims: None,
        }),
        readiness_probe: probe.as_ref().map(|p| p.0.clone()),
        liveness_probe: probe.as_ref().map(|p| p.0.clone()),
        startup_probe: probe.as_ref().and_then(|p| p.1.clone()),
        lifecycle: (pre_stop > 0).then(|| Lifecycle {
            pre_stop: Some(LifecycleHandler {
                sleep: Some(SleepAction { seconds: pre_stop }),
                ..LifecycleHandler::default()
            }),
            ..Lifecycle::default()
        }),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(!sec.no_new_privileges || sec.privileged),
            privileged: Some(sec.privileged),
            read_only_root_filesystem: Some(sec.read_only),
            run_as_non_root: Some(true),
            run_as_user: Some(uid),
            run_as_group: gid,
            capabilities: Some(Capabilities {
                drop: (!sec.privileged).then(|| vec!["ALL".into()]),
                add: (!caps_add.is_empty()).then_some(caps_add),
            }),
            seccomp_profile: Some(SeccompProfile {
                type_: seccomp.into(),
                localhost_profile: None,
            }),
            ..SecurityContext::default()
        }),
        volume_mounts: (!mounts.is_empty()).then_some(mounts),
        ..Container::default()
    };

    let has_pvc = pod_volumes
        .iter()
        .any(|v| v.persistent_volume_claim.is_some());
    let pod = PodSpec {
        automount_service_account_token: Some(false),
        service_account_name: Some(name.into()),
        enable_service_links: Some(false),
        termination_grace_period_seconds: Some(i64::from(grace)),
        security_context: Some(PodSecurityContext {
            run_as_non_root: Some(true),
            run_as_user: Some(uid),
            run_as_group: gid,
            fs_group: if has_pvc || has_secret {
                gid.or(Some(uid))
            } else {
                None
            },
            seccomp_profile: Some(SeccompProfile {
                type_: seccomp.into(),
                localhost_profile: None,
            }),
            ..PodSecurityContext::default()
        }),
        containers: vec![container],
        volumes: (!pod_volumes.is_empty()).then_some(pod_volumes),
        ..PodSpec::default()
    };

    let (surge, unavailable) = match s.update.order {
        UpdateOrder::StartFirst => (s.update.max_surge, s.update.max_unavailable),
        UpdateOrder::StopFirst => (0, s.update.max_unavailable.max(1)),
    };
    let mut pod_labels = labels.clone();
    pod_labels.extend(selector(&stack.name, name));
    let annotations: BTreeMap<String, String> = s.labels.clone();
    out.push(Object::Deployment(Deployment {
        metadata: meta(name, ns, labels.clone()),
        spec: DeploymentSpec {
            // An autoscaled Deployment leaves its count to the HPA: applying
            // one would reset it on every deploy.
            replicas: s
                .autoscale
                .is_none()
                .then(|| i32::try_from(s.replicas).unwrap_or(i32::MAX)),
            selector: LabelSelector {
                match_labels: Some(selector(&stack.name, name)),
                ..LabelSelector::default()
            },
            strategy: Some(DeploymentStrategy {
                type_: Some("RollingUpdate".into()),
                rolling_update: Some(RollingUpdateDeployment {
                    max_surge: Some(IntOrString::Int(i32::try_from(surge).unwrap_or(i32::MAX))),
                    max_unavailable: Some(IntOrString::Int(
                        i32::try_from(unavailable).unwrap_or(i32::MAX),
                    )),
                }),
            }),
            progress_deadline_seconds: Some(
                i32::try_from(s.update.health_timeout.std().as_secs().max(1)).unwrap_or(i32::MAX),
            ),
            revision_history_limit: Some(10),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(pod_labels),
                    annotations: (!annotations.is_empty()).then_some(annotations),
                    ..ObjectMeta::default()
                }),
                spec: Some(pod),
            },
            ..DeploymentSpec::default()
        },
        status: None,
    }));

    if !ports.is_empty() {
        out.push(Object::Service(Service {
            metadata: meta(name, ns, labels.clone()),
            spec: Some(ServiceSpec {
                type_: Some("ClusterIP".into()),
                selector: Some(selector(&stack.name, name)),
                ports: Some(
                    ports
                        .iter()
                        .map(|p| ServicePort {
                            name: Some(p.name.clone()),
                            port: i32::from(p.port),
                            target_port: Some(IntOrString::String(p.name.clone())),
                            protocol: Some(p.protocol.into()),
                            ..ServicePort::default()
                        })
                        .collect(),
                ),
                ..ServiceSpec::default()
            }),
            status: None,
        }));
    }

    if let Some(a) = &s.autoscale {
        out.extend(hpa::hpa(cx, name, ns, &labels, a, s.resources.cpu));
    }
    out.extend(route::routes(cx, name, ns, &labels, opts));

    if s.replicas > 1 || s.autoscale.as_ref().is_some_and(|a| a.max > 1) {
        out.push(Object::PodDisruptionBudget(PodDisruptionBudget {
            metadata: meta(name, ns, labels.clone()),
            spec: Some(PodDisruptionBudgetSpec {
                max_unavailable: Some(IntOrString::Int(1)),
                selector: Some(LabelSelector {
                    match_labels: Some(selector(&stack.name, name)),
                    ..LabelSelector::default()
                }),
                ..PodDisruptionBudgetSpec::default()
            }),
            status: None,
        }));
    }

    // Ingress only from the services that depend on this one, and from the
    // ingress controller or gateway when the service is routed.
    let dependents: Vec<&String> = stack
        .services
        .iter()
        .filter(|(_, o)| o.depends_on.contains_key(name))
        .map(|(n, _)| n)
        .collect();
    let mut peers: Vec<NetworkPolicyPeer> = dependents
        .iter()
        .map(|d| NetworkPolicyPeer {
            pod_selector: Some(LabelSelector {
                match_labels: Some(selector(&stack.name, d)),
                ..LabelSelector::default()
            }),
            ..NetworkPolicyPeer::default()
        })
        .collect();
    if !s.routes.is_empty() {
        peers.push(NetworkPolicyPeer {
            namespace_selector: Some(LabelSelector {
                match_labels: Some(BTreeMap::from([(
                    "kubernetes.io/metadata.name".to_string(),
                    opts.controller_namespace(stack).to_string(),
                )])),
                ..LabelSelector::default()
            }),
            ..NetworkPolicyPeer::default()
        });
    }
    if !ports.is_empty() && !peers.is_empty() {
        out.push(Object::NetworkPolicy(NetworkPolicy {
            metadata: meta(name, ns, labels),
            spec: Some(NetworkPolicySpec {
                pod_selector: Some(LabelSelector {
                    match_labels: Some(selector(&stack.name, name)),
                    ..LabelSelector::default()
                }),
                policy_types: Some(vec!["Ingress".into()]),
                ingress: Some(vec![NetworkPolicyIngressRule {
                    from: Some(peers),
                    ports: Some(
                        ports
                            .iter()
                            .map(|p| NetworkPolicyPort {
                                port: Some(IntOrString::Int(i32::from(p.port))),
                                protocol: Some(p.protocol.into()),
                                end_port: None,
                            })
                            .collect(),
                    ),
                }]),
                egress: None,
            }),
        }));
    }
    out
}

/// One port of a service's pods and its Service.
struct PortOf {
    /// `main` for `port`, else `tcp-9600`, `udp-53`: an IANA_SVC_NAME.
    name: String,
    port: u16,
    protocol: &'static str,
}

/// `port`, then `ports` and `expose` in file order; a port listed twice (same
/// number and protocol) is one port. `expose` differs from `ports` only on
/// the host (no published port), so both become container and Service ports.
fn service_ports(s: &tug_spec::Service) -> Vec<PortOf> {
    let proto = |p: tug_spec::Protocol| match p {
        tug_spec::Protocol::Tcp => "TCP",
        tug_spec::Protocol::Udp => "UDP",
    };
    let mut out: Vec<PortOf> = Vec::new();
    let more = s
        .ports
        .iter()
        .map(|p| (p.port, p.protocol))
        .chain(s.expose.iter().map(|e| (e.port, e.protocol)));
    let all = s
        .port
        .map(|p| ("main".to_string(), p, "TCP"))
        .into_iter()
        .chain(more.map(|(port, p)| (format!("{}-{port}", p.as_str()), port, proto(p))));
    for (name, port, protocol) in all {
        if !out.iter().any(|o| o.port == port && o.protocol == protocol) {
            out.push(PortOf {
                name,
                port,
                protocol,
            });
        }
    }
    out
}

/// A file of a Secret or ConfigMap volume mounted alone at `target`.
fn mounts_push_file(mounts: &mut Vec<VolumeMount>, volume: &str, target: &str, key: &str) {
    mounts.push(VolumeMount {
        name: volume.into(),
        mount_path: target.into(),
        sub_path: Some(key.into()),
        read_only: Some(true),
        ..VolumeMount::default()
    });
}

fn at_str(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}
