//! `tug build`: builds the Rust services of tug.yaml into OCI images without
//! a daemon, writes them out and/or pushes them.

use crate::exit::{fail, INVALID_INPUT};
use crate::output::OutputFormat;
use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;
use tug_image::oci::{self, Image};
use tug_image::registry::{self, ClientOptions, PushEvent, PushOptions, Reference};

/// Appends a line to an output buffer (printed at once, broken pipes ignored).
macro_rules! outln {
    ($o:ident, $($t:tt)*) => {{
        use std::fmt::Write as _;
        let _ = writeln!($o, $($t)*);
    }};
}

/// Where built images go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BuildOutput {
    /// `oci:DIR`: an OCI image layout directory (all services, one index).
    Oci(PathBuf),
    /// `docker-archive:FILE`: a tar for `docker load`.
    DockerArchive(PathBuf),
    /// `engine`: loaded into the local container engine (`DOCKER_HOST`).
    Engine,
}

impl std::str::FromStr for BuildOutput {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("unknown output `{s}`: use oci:DIR, docker-archive:FILE or engine");
        if s == "engine" {
            return Ok(BuildOutput::Engine);
        }
        match s.split_once(':') {
            Some(("oci", p)) if !p.is_empty() => Ok(BuildOutput::Oci(p.into())),
            Some(("docker-archive", p)) if !p.is_empty() => {
                Ok(BuildOutput::DockerArchive(p.into()))
            }
            _ => Err(bad()),
        }
    }
}

impl std::fmt::Display for BuildOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BuildOutput::Oci(p) => write!(f, "oci:{}", p.display()),
            BuildOutput::DockerArchive(p) => write!(f, "docker-archive:{}", p.display()),
            BuildOutput::Engine => f.write_str("engine"),
        }
    }
}

#[derive(clap::Args, Debug)]
pub struct BuildArgs {
    /// Services to build [default: every service with `build: { rust: ... }`]
    #[arg(value_name = "SERVICE")]
    pub services: Vec<String>,
    /// Push each image to the registry named in the service's `image:`
    #[arg(long)]
    pub push: bool,
    /// Write the images to oci:DIR (an OCI image layout) or docker-archive:FILE (for `docker load`)
    #[arg(long, value_name = "oci:DIR|docker-archive:FILE")]
    pub dest: Option<BuildOutput>,
    /// Allow plain HTTP to a registry that is not on loopback
    #[arg(long)]
    pub insecure: bool,
    /// With --push: attach an SBOM of each image's Rust packages as an OCI
    /// referrer (referrers API, or the referrers tag where the registry lacks it)
    #[arg(long, value_enum, value_name = "FORMAT", requires = "push")]
    pub sbom: Option<super::sbom::SbomFormat>,
    /// Attach SLSA provenance (what the image was built from: source digest,
    /// Cargo.lock hash, toolchain, flags) as an in-toto attestation referrer.
    /// On by default with --push
    #[arg(long, requires = "push", overrides_with = "no_provenance")]
    pub provenance: bool,
    /// Push without provenance
    #[arg(long)]
    pub no_provenance: bool,
    /// With --push: sign each image and its provenance with this private key
    /// (cosign's format; password from TUG_KEY_PASSWORD, else a prompt)
    #[arg(long, value_name = "KEY", requires = "push")]
    pub key: Option<PathBuf>,
}

/// Builds the provenance statement of a pushed image and attaches it,
/// signed when a key is given.
fn attach_provenance(
    stack: &tug_spec::Stack,
    b: &Built,
    to: &Reference,
    key: Option<&tug_image::registry::sign::SigningKey>,
    insecure: bool,
) -> Result<registry::Attached> {
    let opts = tug_engine::images::rust_build_options(stack, &b.service)?;
    let record = oci::provenance::record(&opts)?;
    let statement = oci::provenance::statement(
        &format!("{}/{}", to.registry, to.repository),
        &b.image.digest(),
        &record,
    );
    let client = registry::RegistryClient::new(
        to,
        ClientOptions {
            insecure,
            ..Default::default()
        },
    )?;
    Ok(client.attach_statement(
        &to.repository,
        (
            &b.image.digest(),
            b.image.manifest_blob.len() as u64,
            oci::MEDIA_MANIFEST,
        ),
        &statement,
        key,
    )?)
}

/// Builds the SBOM of a built image and attaches it to the pushed manifest.
fn attach_sbom(
    image: &Image,
    to: &Reference,
    format: super::sbom::SbomFormat,
    insecure: bool,
) -> Result<registry::Attached> {
    let scanned = tug_scan::image::scan_image(
        &image.to_raw(),
        &to.to_string(),
        &tug_scan::image::ImageScanOptions {
            scanners: vec![tug_scan::ScannerKind::Vuln],
            audit: false,
            ..Default::default()
        },
    )?;
    let mut sbom = tug_scan::sbom::Sbom::new(to.to_string(), "container");
    for (path, lock) in &scanned.dependencies {
        sbom.add(lock, path);
    }
    let (fmt, media) = match format {
        super::sbom::SbomFormat::Cyclonedx => {
            (tug_scan::sbom::Format::CycloneDx, registry::MEDIA_CYCLONEDX)
        }
        super::sbom::SbomFormat::Spdx => (tug_scan::sbom::Format::Spdx, registry::MEDIA_SPDX),
    };
    // The image's own time: the same image always gets the same SBOM.
    let created = image
        .config
        .created()
        .clone()
        .unwrap_or_else(tug_scan::sbom::created_now);
    let doc = serde_json::to_vec(&sbom.render(fmt, &created))?;
    let client = registry::RegistryClient::new(
        to,
        ClientOptions {
            insecure,
            ..Default::default()
        },
    )?;
    Ok(client.attach(
        &to.repository,
        (
            &image.digest(),
            image.manifest_blob.len() as u64,
            oci::MEDIA_MANIFEST,
        ),
        media,
        &doc,
        serde_json::json!({ "org.opencontainers.image.created": created }),
    )?)
}

struct Built {
    service: String,
    tag: String,
    image: Image,
    push_to: Option<Reference>,
}

fn spinner(show: bool, msg: String) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new_spinner();
    pb.set_style(
        ProgressStyle::with_template("{spinner} {msg} {elapsed}").expect("static template"),
    );
    pb.enable_steady_tick(Duration::from_millis(120));
    pb.set_message(msg);
    pb
}

pub fn run(file: Option<&Path>, output: OutputFormat, args: BuildArgs) -> Result<ExitCode> {
    let stack = crate::commands::spec::load(file)?;
    let buildable: Vec<&String> = stack
        .services
        .iter()
        .filter(|(_, s)| s.build.as_ref().is_some_and(|b| b.rust.is_some()))
        .map(|(n, _)| n)
        .collect();
    let chosen: Vec<String> = if args.services.is_empty() {
        if buildable.is_empty() {
            return Err(fail(
                INVALID_INPUT,
                format!(
                    "{}: no service has `build: {{ rust: ... }}`; add e.g. `build: {{ rust: {{ package: my-crate }} }}` to a service",
                    stack.file.display()
                ),
            ));
        }
        buildable.iter().map(|s| s.to_string()).collect()
    } else {
        for name in &args.services {
            match stack.services.get(name) {
                None => {
                    let known: Vec<&str> = stack.services.keys().map(String::as_str).collect();
                    return Err(fail(
                        INVALID_INPUT,
                        format!(
                            "{}: no service `{name}` (services: {})",
                            stack.file.display(),
                            known.join(", ")
                        ),
                    ));
                }
                Some(s) if s.build.as_ref().and_then(|b| b.rust.as_ref()).is_none() => {
                    return Err(fail(
                        INVALID_INPUT,
                        format!(
                            "{}: service `{name}` has no `build: {{ rust: ... }}`; tug build makes images of Rust packages (add `build: {{ rust: {{ package: <crate> }} }}`)",
                            stack.file.display()
                        ),
                    ));
                }
                Some(_) => {}
            }
        }
        args.services.clone()
    };

    let people = output == OutputFormat::Table;
    let mut push_to = Vec::new();
    for name in &chosen {
        let svc = &stack.services[name];
        push_to.push(match (&svc.image, args.push) {
            (Some(i), true) => Some(Reference::parse(i).map_err(|e| {
                fail(INVALID_INPUT, format!("{}: service `{name}`: {e}", stack.file.display()))
            })?),
            (None, true) => {
                return Err(fail(
                    INVALID_INPUT,
                    format!(
                        "{}: service `{name}` has no `image:` to push to; add e.g. `image: 127.0.0.1:5000/{name}:1`",
                        stack.file.display()
                    ),
                ))
            }
            (_, false) => None,
        });
    }
    // Every service at once, through the builder `tug up` uses; cargo's
    // output is streamed as it comes, prefixed by the service.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let several = chosen.len() > 1;
    let log = move |ev: tug_engine::Event| match ev {
        tug_engine::Event::BuildLog { service, line } if several => {
            eprintln!("{service} | {line}")
        }
        tug_engine::Event::BuildLog { line, .. } => eprintln!("{line}"),
        tug_engine::Event::Image { service, message } if people => {
            eprintln!("{service}: {message}")
        }
        _ => {}
    };
    let images = rt.block_on(futures_util::future::join_all(
        chosen
            .iter()
            .map(|name| tug_engine::images::build_rust(&stack, name, &log)),
    ));
    let mut built = Vec::new();
    for ((name, image), push_to) in chosen.iter().zip(images).zip(push_to) {
        let image = image.with_context(|| format!("building service `{name}`"))?;
        let tag = match &stack.services[name].image {
            Some(i) => i.clone(),
            None => tug_engine::images::built_tag(&stack, name, &image),
        };
        built.push(Built {
            service: name.clone(),
            tag,
            image,
            push_to,
        });
    }

    if let Some(dest) = &args.dest {
        let pb = spinner(people, format!("writing {dest}"));
        match dest {
            BuildOutput::Oci(dir) => {
                let images: Vec<(&Image, Option<&str>)> = built
                    .iter()
                    .map(|b| (&b.image, Some(b.tag.as_str())))
                    .collect();
                oci::write_oci_layout(dir, &images).with_context(|| format!("writing {dest}"))?;
            }
            BuildOutput::DockerArchive(file) => {
                if let Some(parent) = file.parent().filter(|p| !p.as_os_str().is_empty()) {
                    std::fs::create_dir_all(parent)
                        .with_context(|| format!("creating {}", parent.display()))?;
                }
                let f = std::fs::File::create(file)
                    .with_context(|| format!("creating {}", file.display()))?;
                let images: Vec<(&Image, &str)> =
                    built.iter().map(|b| (&b.image, b.tag.as_str())).collect();
                oci::write_docker_archive(std::io::BufWriter::new(f), &images)
                    .with_context(|| format!("writing {dest}"))?;
            }
            BuildOutput::Engine => {
                let images: Vec<(&Image, &str)> =
                    built.iter().map(|b| (&b.image, b.tag.as_str())).collect();
                let mut archive = Vec::new();
                oci::write_docker_archive(&mut archive, &images)
                    .with_context(|| format!("writing {dest}"))?;
                rt.block_on(async {
                    use tug_runtime::Runtime;
                    let engine = super::stack::connect_engine().await?;
                    engine
                        .load_image(archive)
                        .await
                        .context("loading into the engine")
                })?;
            }
        }
        pb.finish_and_clear();
    }

    let key = match &args.key {
        Some(path) => Some(super::sign::private_key(path)?),
        None => None,
    };
    let provenance = args.push && !args.no_provenance;
    let mut results = Vec::new();
    for b in &built {
        let mut pushed = None;
        if let Some(r) = &b.push_to {
            let total: u64 = b.image.size();
            let pb = if people {
                let pb = ProgressBar::new(total);
                pb.set_style(
                    ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes}")
                        .expect("static template")
                        .progress_chars("=> "),
                );
                pb.set_message(format!("pushing {r}"));
                pb
            } else {
                ProgressBar::hidden()
            };
            let opts = PushOptions {
                client: ClientOptions {
                    insecure: args.insecure,
                    ..Default::default()
                },
                mount_from: None,
            };
            let report = registry::push(&b.image, r, &opts, &mut |ev| match ev {
                PushEvent::Exists { size, .. }
                | PushEvent::Mounted { size, .. }
                | PushEvent::Uploaded { size, .. } => pb.inc(size),
                _ => {}
            })
            .with_context(|| format!("pushing service `{}`", b.service))?;
            pb.finish_and_clear();
            pushed = Some(report);
        }
        let sbom = match (&b.push_to, args.sbom) {
            (Some(r), Some(format)) => Some(
                attach_sbom(&b.image, r, format, args.insecure)
                    .with_context(|| format!("attaching the SBOM of `{}`", b.service))?,
            ),
            _ => None,
        };
        let mut attested = None;
        let mut signed = None;
        if let Some(r) = &b.push_to {
            if provenance {
                attested = Some(
                    attach_provenance(&stack, b, r, key.as_ref(), args.insecure)
                        .with_context(|| format!("attaching the provenance of `{}`", b.service))?,
                );
            }
            if let Some(k) = &key {
                let pinned = Reference {
                    tag: None,
                    digest: Some(b.image.digest()),
                    ..r.clone()
                };
                let client = registry::RegistryClient::new(
                    r,
                    ClientOptions {
                        insecure: args.insecure,
                        ..Default::default()
                    },
                )?;
                signed = Some(
                    client
                        .sign(&pinned, k)
                        .with_context(|| format!("signing `{}`", b.service))?,
                );
            }
        }
        results.push((b, pushed, sbom, attested, signed));
    }

    let mut out = String::new();
    match output {
        OutputFormat::Json => {
            let doc: Vec<serde_json::Value> = results
                .iter()
                .map(|(b, p, sbom, provenance, signed)| {
                    serde_json::json!({
                        "service": b.service,
                        "tag": b.tag,
                        "digest": b.image.digest(),
                        "config_digest": b.image.config_digest(),
                        "size": b.image.size(),
                        "output": args.dest.as_ref().map(|d| d.to_string()),
                        "push": p,
                        "sbom": sbom,
                        "provenance": provenance,
                        "signature": signed,
                    })
                })
                .collect();
            outln!(
                out,
                "{}",
                serde_json::to_string_pretty(&serde_json::json!({ "images": doc }))?
            );
        }
        OutputFormat::Table => {
            for (b, p, sbom, provenance, signed) in &results {
                outln!(
                    out,
                    "{}  {}  {}  {}",
                    b.service,
                    b.tag,
                    b.image.digest(),
                    crate::commands::image::human(b.image.size())
                );
                if let Some(p) = p {
                    outln!(
                        out,
                        "  pushed {}@{} ({} uploaded, {} already there, {} mounted)",
                        p.reference,
                        p.digest,
                        p.uploaded.len(),
                        p.skipped.len(),
                        p.mounted.len()
                    );
                }
                if let Some(s) = sbom {
                    outln!(
                        out,
                        "  sbom {} attached as {} ({})",
                        s.artifact_type,
                        s.digest,
                        if s.referrers_api {
                            "referrers API"
                        } else {
                            "referrers tag"
                        }
                    );
                }
                if let Some(a) = provenance {
                    outln!(
                        out,
                        "  provenance (SLSA v1, {}) attached as {}",
                        if key.is_some() { "signed" } else { "unsigned" },
                        a.digest
                    );
                }
                if let Some(s) = signed {
                    outln!(out, "  signed ({})", s.signature_tag);
                }
            }
            match &args.dest {
                Some(d) => outln!(out, "wrote {d}"),
                None if !args.push => eprintln!(
                    "note: nothing written; pass --dest oci:DIR, --dest docker-archive:FILE or --push"
                ),
                None => {}
            }
        }
    }
    crate::commands::image::emit(&out);
    Ok(ExitCode::SUCCESS)
}
