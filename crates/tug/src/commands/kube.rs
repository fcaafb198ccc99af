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
    /// PodDisruptionBudget and NetworkPolicy; claims for named volumes. The
    /// same file gives byte-identical output. Settings with no Kubernetes
    /// meaning are errors at their file:line:col.
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
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum SkipArg {
    /// resources.pids (the kubelet's podPidsLimit applies instead)
    Pids,
    /// publish (use `kubectl port-forward`)
    Publish,
}

impl RenderArgs {
    pub fn options(&self) -> Result<tug_kube::RenderOptions> {
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
            namespace: self.namespace.clone(),
            images,
            skip: self
                .skip
                .iter()
                .map(|s| match s {
                    SkipArg::Pids => tug_kube::Skip::Pids,
                    SkipArg::Publish => tug_kube::Skip::Publish,
                })
                .collect(),
            volume_size: self.volume_size.clone(),
        })
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
    let opts = args.options()?;
    let files: Vec<(PathBuf, String)> = if helm {
        tug_kube::helm::chart(&stack, &text, &opts)?
    } else {
        let objects = tug_kube::render(&stack, &text, &opts)?;
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
            .map(|o| {
                (
                    PathBuf::from(format!(
                        "{}-{}.yaml",
                        o.kind().to_ascii_lowercase(),
                        o.name()
                    )),
                    tug_kube::to_yaml(std::slice::from_ref(o)),
                )
            })
            .collect()
    };
    let Some(out) = &args.out else {
        return Err(crate::exit::fail(
            crate::exit::INVALID_INPUT,
            "a Helm chart is a directory: pass --out DIR",
        ));
    };
    for (rel, content) in &files {
        let path = out.join(rel);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        std::fs::write(&path, content)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    match output {
        OutputFormat::Json => println!(
            "{}",
            serde_json::json!({"dir": out, "files": files.iter().map(|(p, _)| p).collect::<Vec<_>>()})
        ),
        OutputFormat::Table => {
            eprintln!("wrote {} files to {}", files.len(), out.display())
        }
    }
    Ok(ExitCode::SUCCESS)
}
