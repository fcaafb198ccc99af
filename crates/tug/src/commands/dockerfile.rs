//! `tug dockerfile`: generate a Dockerfile and .dockerignore for a Rust workspace.

use crate::exit;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use tug_image::generate::{self, HealthTiming, Options};

#[derive(clap::Args, Debug)]
pub struct DockerfileArgs {
    /// Package to build [default: the only package with a binary]
    #[arg(long, short = 'p', value_name = "NAME")]
    package: Option<String>,
    /// Workspace directory, used as the build context
    #[arg(long, value_name = "PATH", default_value = ".")]
    dir: PathBuf,
    /// Where to write the Dockerfile [default: DIR/Dockerfile]; `-` prints it
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Overwrite existing files
    #[arg(long)]
    force: bool,
    /// Health check command run in the image, e.g. "/hello --health" (the image has no shell)
    #[arg(long, value_name = "CMD")]
    health_cmd: Option<String>,
}

/// The tug.yaml service built from `package`, if any.
fn service_for(
    stack_file: Option<&Path>,
    dirs: &[&Path],
    package: &str,
) -> Option<tug_spec::Service> {
    let candidates: Vec<PathBuf> = match stack_file {
        Some(f) => vec![f.to_path_buf()],
        None => dirs
            .iter()
            .flat_map(|d| [d.join("tug.yaml"), d.join("tug.yml")])
            .filter(|p| p.is_file())
            .collect(),
    };
    candidates.iter().find_map(|f| {
        let stack = tug_spec::load(f).ok()?;
        stack.services.into_values().find(|s| {
            s.build
                .as_ref()
                .and_then(|b| b.rust.as_ref())
                .is_some_and(|r| r.package == package)
        })
    })
}

pub fn run(args: DockerfileArgs, stack_file: Option<&Path>) -> Result<ExitCode> {
    let invalid = |e: generate::GenerateError| exit::fail(exit::INVALID_INPUT, e.to_string());
    let mut opts = Options {
        dir: args.dir.clone(),
        package: args.package.clone(),
        ..Options::default()
    };
    let first = generate::rust_workspace(&opts).map_err(invalid)?;
    opts.package = Some(first.package.clone());
    let service = service_for(stack_file, &[&first.package_dir, &args.dir], &first.package);
    if let Some(cmd) = &args.health_cmd {
        let words = tug_image::dockerfile::split_words(cmd, '\\');
        if words.is_empty() {
            return Err(exit::fail(
                exit::INVALID_INPUT,
                "--health-cmd is empty: give the command, e.g. --health-cmd \"/hello --health\"",
            ));
        }
        opts.health_cmd = Some(words);
    }
    if let Some(svc) = &service {
        opts.port = svc.port;
        if let Some(h) = &svc.health {
            if opts.health_cmd.is_none() {
                // Only an exec check can run in a scratch image (no shell, no curl).
                opts.health_cmd = h.exec.clone();
            }
            opts.health_timing = Some(HealthTiming {
                interval: h.interval.std(),
                timeout: h.timeout.std(),
                start_period: h.start_period.std(),
                retries: h.retries,
            });
        }
    }
    let generated = generate::rust_workspace(&opts).map_err(invalid)?;

    let out = args.out.unwrap_or_else(|| args.dir.join("Dockerfile"));
    if out.as_os_str() == "-" {
        print!("{}", generated.dockerfile);
        return Ok(ExitCode::SUCCESS);
    }
    let ignore = args.dir.join(".dockerignore");
    for p in [&out, &ignore] {
        if p.exists() && !args.force {
            return Err(exit::fail(
                exit::INVALID_INPUT,
                format!(
                    "{} already exists (hint: pass --force to overwrite it)",
                    p.display()
                ),
            ));
        }
    }
    std::fs::write(&out, &generated.dockerfile)
        .with_context(|| format!("writing {}", out.display()))?;
    std::fs::write(&ignore, &generated.dockerignore)
        .with_context(|| format!("writing {}", ignore.display()))?;
    eprintln!(
        "wrote {} and {} for package {} (binary {})",
        out.display(),
        ignore.display(),
        generated.package,
        generated.bin
    );
    Ok(ExitCode::SUCCESS)
}
