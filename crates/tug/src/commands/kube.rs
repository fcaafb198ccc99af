//! `tug render k8s|helm`: the stack as Kubernetes objects or a Helm chart.

use crate::output::OutputFormat;
use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(clap::Subcommand, Debug)]
pub enum RenderCommand {
    /// Kubernetes manifests: one YAML stream on stdout, or one file per object with --out
    ///
    /// Per service a Deployment (rolling update, probes, limits, the hardened
    /// securityContext), Service, ServiceAccount, env ConfigMap/Secret,
    /// PodDisruptionBudget and NetworkPolicy; claims for named volumes; an
    /// Ingress (or, with --routes gateway-api, an HTTPRoute) per routed
    /// service. The same file gives byte-identical output. Settings with no
    /// Kubernetes meaning are errors at their file:line:col; route settings
    /// the target cannot say (strip_prefix on an Ingress, retries) are
    /// warnings at theirs.
    K8s(RenderArgs),
    /// A Helm chart whose values.yaml carries images, replicas, resources and env
    Helm(RenderArgs),
}

#[derive(clap::Args, Debug)]
pub struct RenderArgs {
    /// Write into this directory instead of stdout (required for helm)
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Namespace of every object [default: the stack name]
    #[arg(short = 'n', long, value_name = "NAMESPACE")]
    pub namespace: Option<String>,
    #[command(flatten)]
    pub inputs: RenderInputs,
}

/// What rendering needs besides tug.yaml.
#[derive(clap::Args, Debug)]
pub struct RenderInputs {
    /// The image a service runs on the cluster: `--image web=registry.example/hello:1.0.0`
    /// (needed for services built from source that name no `image:`)
    #[arg(long = "image", value_name = "SERVICE=REF")]
    pub images: Vec<String>,
    /// Leave out a setting that Kubernetes sets per node, not per pod
    #[arg(long, value_enum, value_name = "SETTING")]
    pub skip: Vec<SkipArg>,
    /// Storage requested by each volume's PersistentVolumeClaim
    #[arg(long, default_value = "1Gi", value_name = "QUANTITY")]
    pub volume_size: String,
    /// What each `route:` becomes: an Ingress, or a Gateway API HTTPRoute
    /// (which carries strip_prefix and the request timeout too)
    #[arg(long, value_enum, default_value = "ingress", value_name = "KIND")]
    pub routes: RoutesArg,
    /// spec.ingressClassName of the Ingresses [default: the cluster's default class]
    #[arg(long, value_name = "CLASS")]
    pub ingress_class: Option<String>,
    /// The Gateway that HTTPRoutes attach to
    #[arg(long, default_value = "gateway", value_name = "[NAMESPACE/]NAME")]
    pub gateway: String,
    /// Namespace of the ingress controller's (or gateway's) pods, which the
    /// NetworkPolicy of a routed service admits [default: ingress-nginx, or
    /// the Gateway's namespace with --routes gateway-api]
    #[arg(long, value_name = "NAMESPACE")]
    pub controller_namespace: Option<String>,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum RoutesArg {
    /// networking.k8s.io/v1 Ingress
    Ingress,
    /// gateway.networking.k8s.io/v1 HTTPRoute
    GatewayApi,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum SkipArg {
    /// resources.pids (the kubelet's podPidsLimit applies instead)
    Pids,
    /// publish and host_ip (use `kubectl port-forward`)
    Publish,
    /// verify (enforce signatures with the cluster's admission policy)
    Verify,
}

impl RenderInputs {
    pub fn options(&self, namespace: Option<String>) -> Result<tug_kube::RenderOptions> {
        let mut images = BTreeMap::new();
        for pair in &self.images {
            let (svc, image) = pair.split_once('=').filter(|(s, i)| !s.is_empty() && !i.is_empty()).ok_or_else(|| {
                crate::exit::fail(
                    crate::exit::INVALID_INPUT,
                    format!("--image `{pair}`: expected SERVICE=IMAGE, e.g. --image web=registry.example/hello:1.0.0"),
                )
            })?;
            images.insert(svc.to_string(), image.to_string());
        }
        Ok(tug_kube::RenderOptions {
            namespace,
            images,
            skip: self
                .skip
                .iter()
                .map(|s| match s {
                    SkipArg::Pids => tug_kube::Skip::Pids,
                    SkipArg::Publish => tug_kube::Skip::Publish,
                    SkipArg::Verify => tug_kube::Skip::Verify,
                })
                .collect(),
            volume_size: self.volume_size.clone(),
            routes: match self.routes {
                RoutesArg::Ingress => tug_kube::RouteTarget::Ingress,
                RoutesArg::GatewayApi => tug_kube::RouteTarget::GatewayApi,
            },
            ingress_class: self.ingress_class.clone(),
            gateway: match self.gateway.split_once('/') {
                Some((ns, name)) => tug_kube::GatewayRef {
                    name: name.to_string(),
                    namespace: Some(ns.to_string()),
                },
                None => tug_kube::GatewayRef {
                    name: self.gateway.clone(),
                    namespace: None,
                },
            },
            controller_namespace: self.controller_namespace.clone(),
        })
    }
}

/// What the render carried only partly, on stderr (never in the YAML on stdout).
fn print_warnings(warnings: &[tug_kube::RenderError]) {
    for w in warnings {
        eprintln!("warning: {w}");
    }
}

/// The stack and the text it was read from (for positions in errors).
pub fn load_with_source(file: Option<&Path>) -> Result<(tug_spec::Stack, String)> {
    let path = super::spec::stack_file(file)?;
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let stack = tug_spec::parse_str(&text, &path)?;
    Ok((stack, text))
}

pub fn render(file: Option<&Path>, output: OutputFormat, cmd: RenderCommand) -> Result<ExitCode> {
    let (helm, args) = match &cmd {
        RenderCommand::K8s(a) => (false, a),
        RenderCommand::Helm(a) => (true, a),
    };
    let (stack, text) = load_with_source(file)?;
    let opts = args.inputs.options(args.namespace.clone())?;
    let rendered = tug_kube::render_with_warnings(&stack, &text, &opts)?;
    print_warnings(&rendered.warnings);
    let files: Vec<tug_kube::helm::ChartFile> = if helm {
        tug_kube::helm::chart(&stack, &text, &opts)?
    } else {
        let objects = rendered.objects;
        if args.out.is_none() {
            match output {
                OutputFormat::Table => super::spec::print_out(&tug_kube::to_yaml(&objects))?,
                OutputFormat::Json => super::spec::print_out(
                    &(serde_json::to_string_pretty(&serde_json::json!({
                        "apiVersion": "v1", "kind": "List", "items": objects
                    }))? + "\n"),
                )?,
            }
            return Ok(ExitCode::SUCCESS);
        }
        objects
            .iter()
            .map(|o| tug_kube::helm::ChartFile {
                path: PathBuf::from(format!(
                    "{}-{}.yaml",
                    o.kind().to_ascii_lowercase(),
                    o.name()
                )),
                content: tug_kube::to_yaml(std::slice::from_ref(o)).into_bytes(),
                secret: matches!(o, tug_kube::Object::Secret(_)),
            })
            .collect()
    };
    let Some(out) = &args.out else {
        return Err(crate::exit::fail(
            crate::exit::INVALID_INPUT,
            "a Helm chart is a directory: pass --out DIR",
        ));
    };
    for f in &files {
        let path = out.join(&f.path);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        write_file(&path, &f.content, f.secret)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    match output {
        OutputFormat::Json => println!(
            "{}",
            serde_json::json!({"dir": out, "files": files.iter().map(|f| &f.path).collect::<Vec<_>>()})
        ),
        OutputFormat::Table => {
            eprintln!("wrote {} files to {}", files.len(), out.display())
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes a rendered file; one with secret values is readable by its owner
/// only (0600), from its creation on, also when it replaces an older file.
fn write_file(path: &Path, content: &[u8], secret: bool) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mode = if secret { 0o600 } else { 0o644 };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)?;
    if secret {
        f.set_permissions(std::fs::Permissions::from_mode(mode))?;
    }
    f.write_all(content)
}

/// Where on Kubernetes: `--kube [--context C] [--namespace N]`.
#[derive(clap::Args, Debug)]
pub struct KubeTarget {
    /// Target Kubernetes (kubeconfig, or the in-cluster service account)
    #[arg(long)]
    pub kube: bool,
    /// The kubeconfig context [default: its current context]
    #[arg(long, value_name = "CONTEXT", requires = "kube")]
    pub context: Option<String>,
    /// The namespace of the stack [default: the stack name]
    #[arg(short = 'n', long, value_name = "NAMESPACE", requires = "kube")]
    pub namespace: Option<String>,
}

#[derive(clap::Args, Debug)]
pub struct DeployArgs {
    #[command(flatten)]
    pub target: KubeTarget,
    #[command(flatten)]
    pub inputs: RenderInputs,
}

#[derive(Clone, Copy, Debug)]
pub enum KubeAction {
    Deploy,
    Diff,
    Status,
    Down,
}

fn print_progress(output: OutputFormat, p: &tug_kube::deploy::Progress) {
    use tug_kube::deploy::Progress as P;
    match output {
        OutputFormat::Json => println!("{}", serde_json::to_string(p).unwrap_or_default()),
        OutputFormat::Table => match p {
            P::Applied { object } => eprintln!("applied  {object}"),
            P::Pruned { object } => eprintln!("pruned   {object}"),
            P::Rollout { deployment, updated, available, desired } => eprintln!(
                "rollout  deployment/{deployment}: {updated}/{desired} updated, {available}/{desired} available"
            ),
            P::RolledOut { deployment } => eprintln!("ready    deployment/{deployment}"),
            P::RollingBack { deployment, reason } => {
                eprintln!("rollback deployment/{deployment}: {reason}")
            }
            P::Retrying { what, attempt, code } => {
                eprintln!("retry    {what} (HTTP {code}, attempt {attempt})")
            }
        },
    }
}

/// `tug deploy|diff|status|down --kube`.
pub async fn kube(
    file: Option<&Path>,
    output: OutputFormat,
    action: KubeAction,
    target: &KubeTarget,
    inputs: Option<&RenderInputs>,
) -> Result<ExitCode> {
    if !target.kube {
        return Err(crate::exit::fail(
            crate::exit::INVALID_INPUT,
            "this command targets Kubernetes: pass --kube (on this machine, use `tug up`, `tug ps`)",
        ));
    }
    let (stack, text) = load_with_source(file)?;
    let opts = match inputs {
        Some(i) => i.options(target.namespace.clone())?,
        None => tug_kube::RenderOptions {
            namespace: target.namespace.clone(),
            ..Default::default()
        },
    };
    let ns = opts.namespace(&stack).to_string();
    // Render first: a stack that cannot go to Kubernetes never reaches the cluster.
    let objects = match action {
        KubeAction::Deploy | KubeAction::Diff => {
            let r = tug_kube::render_with_warnings(&stack, &text, &opts)?;
            print_warnings(&r.warnings);
            r.objects
        }
        _ => Vec::new(),
    };
    let cluster = tug_kube::connect::connect(target.context.as_deref()).await?;
    let d = tug_kube::deploy::Deployer::new(cluster.client, &ns, &stack.name);
    let mut progress = |p: tug_kube::deploy::Progress| print_progress(output, &p);
    let hinted = |e: tug_kube::deploy::DeployError| match e.hint() {
        Some(h) => anyhow::anyhow!("{e}\n  hint: {h}"),
        None => anyhow::Error::new(e),
    };
    match action {
        KubeAction::Deploy => {
            d.deploy(&objects, &stack, &mut progress)
                .await
                .map_err(hinted)?;
            if output == OutputFormat::Table {
                eprintln!(
                    "deployed {} to {} (context {}, namespace {ns})",
                    stack.name, cluster.server, cluster.context
                );
            }
        }
        KubeAction::Diff => {
            let changes = d.diff(&objects, &mut progress).await.map_err(hinted)?;
            match output {
                OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&changes)?),
                OutputFormat::Table => {
                    for c in &changes {
                        println!("{:<10} {}", c.action, c.object);
                    }
                }
            }
        }
        KubeAction::Status => {
            let st = d.status(&mut progress).await.map_err(hinted)?;
            match output {
                OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&st)?),
                OutputFormat::Table => {
                    let mut t = comfy_table::Table::new();
                    t.load_preset(comfy_table::presets::NOTHING);
                    t.set_header(["DEPLOYMENT", "READY", "UP-TO-DATE", "AVAILABLE", "IMAGE"]);
                    for s in &st {
                        t.add_row([
                            s.name.clone(),
                            format!("{}/{}", s.ready, s.desired),
                            s.updated.to_string(),
                            s.available.to_string(),
                            s.image.clone(),
                        ]);
                    }
                    println!("{t}");
                }
            }
        }
        KubeAction::Down => {
            let removed = d.down(&mut progress).await.map_err(hinted)?;
            if output == OutputFormat::Table {
                eprintln!(
                    "removed {} objects of {} from namespace {ns}",
                    removed.len(),
                    stack.name
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(clap::Subcommand, Debug)]
pub enum OperatorCommand {
    /// Print the CustomResourceDefinition of Stack (tug.dev/v1alpha1): `tug operator crd | kubectl apply -f -`
    Crd,
}

/// `tug operator [crd]`.
pub async fn operator(
    output: OutputFormat,
    cmd: Option<OperatorCommand>,
    context: Option<&str>,
    listen: std::net::SocketAddr,
) -> Result<ExitCode> {
    if let Some(OperatorCommand::Crd) = cmd {
        let crd = serde_json::to_value(tug_kube::operator::crd())?;
        match output {
            OutputFormat::Json => {
                super::spec::print_out(&(serde_json::to_string_pretty(&crd)? + "\n"))?
            }
            OutputFormat::Table => super::spec::print_out(&tug_kube::yaml_document(&crd))?,
        }
        return Ok(ExitCode::SUCCESS);
    }
    let cluster = tug_kube::connect::connect(context).await?;
    eprintln!(
        "tug operator: reconciling Stacks (tug.dev/v1alpha1) on {} (context {})",
        cluster.server, cluster.context
    );
    let metrics = std::sync::Arc::new(tug_kube::operator::Metrics::default());
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen} for /healthz and /metrics"))?;
    tokio::spawn(tug_kube::operator::serve(listener, metrics.clone()));
    let ns = cluster.client.default_namespace().to_string();
    let identity = std::env::var("POD_NAME")
        .unwrap_or_else(|_| format!("tug-operator-{}", std::process::id()));
    tug_kube::operator::run_leader(cluster.client, &ns, &identity, metrics).await;
    Err(anyhow::anyhow!(
        "lost the operator's Lease; exiting so that a restart campaigns again"
    ))
}
