//! `tug sbom`: the Rust packages of a source tree (Cargo.lock) or of an
//! image's binaries, as CycloneDX 1.5 or SPDX 2.3 JSON.

use crate::exit::{fail, INVALID_INPUT};
use anyhow::{Context, Result};
use std::path::PathBuf;
use std::process::ExitCode;
use tug_scan::sbom::{Format, Sbom};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum SbomFormat {
    /// CycloneDX 1.5 JSON
    Cyclonedx,
    /// SPDX 2.3 JSON
    Spdx,
}

#[derive(clap::Args, Debug)]
pub struct SbomArgs {
    /// A directory (its Cargo.lock), a Cargo.lock, or an image: oci:DIR,
    /// docker-archive:FILE, engine:NAME or a registry reference
    #[arg(default_value = ".", value_name = "PATH|IMAGE")]
    pub source: PathBuf,
    /// Document format
    #[arg(long, value_enum, default_value = "cyclonedx")]
    pub format: SbomFormat,
    /// Write the document to FILE instead of standard output
    #[arg(long = "output-file", value_name = "FILE")]
    pub output_file: Option<PathBuf>,
    /// Allow plain HTTP to a registry that is not on loopback (images only)
    #[arg(long)]
    pub insecure: bool,
}

/// The bill of one source: a lockfile's packages, or those embedded in the
/// image's binaries.
pub fn sbom_of(source: &std::path::Path, insecure: bool) -> Result<Sbom> {
    if let Some(image) = super::scan::image_source(source) {
        let opts = tug_image::registry::ClientOptions {
            insecure,
            ..Default::default()
        };
        let raw = super::image::load_image(&image, &opts)?;
        let scanned = tug_scan::image::scan_image(
            &raw,
            &image,
            &tug_scan::image::ImageScanOptions {
                scanners: vec![tug_scan::ScannerKind::Vuln],
                audit: false,
                ..Default::default()
            },
        )
        .with_context(|| format!("reading {image}"))?;
        for e in &scanned.report.errors {
            eprintln!("error: {e}");
        }
        for n in &scanned.report.notices {
            eprintln!("notice: {n}");
        }
        let mut sbom = Sbom::new(image, "container");
        sbom.add_os(
            &scanned.os_packages,
            scanned.os_release.as_ref(),
            &format!(
                "/{}",
                if scanned
                    .os_packages
                    .iter()
                    .any(|p| p.distro == tug_scan::image::ospkg::Distro::Alpine)
                {
                    tug_scan::image::ospkg::APK_INSTALLED
                } else {
                    tug_scan::image::ospkg::DPKG_STATUS
                }
            ),
        );
        for (path, lock) in &scanned.dependencies {
            sbom.add(lock, path);
        }
        return Ok(sbom);
    }
    // A directory inside a workspace uses the workspace's Cargo.lock.
    let lock_path = if source.is_dir() {
        source
            .ancestors()
            .map(|d| d.join("Cargo.lock"))
            .find(|l| l.is_file())
            .unwrap_or_else(|| source.join("Cargo.lock"))
    } else {
        source.to_path_buf()
    };
    let text = std::fs::read_to_string(&lock_path).map_err(|e| {
        fail(
            INVALID_INPUT,
            format!(
                "{}: {e}; give a directory with a Cargo.lock (run `cargo generate-lockfile`), a Cargo.lock, or an image",
                lock_path.display()
            ),
        )
    })?;
    let lock = tug_scan::vuln::lockfile::Lockfile::parse(&text).map_err(|e| {
        let (line, col) = tug_scan::finding::line_col(&text, e.offset);
        fail(
            INVALID_INPUT,
            format!(
                "{}:{line}:{col}: invalid Cargo.lock: {}",
                lock_path.display(),
                e.message
            ),
        )
    })?;
    let mut sbom = Sbom::new(source.display().to_string(), "application");
    sbom.add(&lock, &lock_path.display().to_string());
    Ok(sbom)
}

pub fn run(args: SbomArgs) -> Result<ExitCode> {
    let sbom = sbom_of(&args.source, args.insecure)?;
    let format = match args.format {
        SbomFormat::Cyclonedx => Format::CycloneDx,
        SbomFormat::Spdx => Format::Spdx,
    };
    let doc =
        serde_json::to_string_pretty(&sbom.render(format, &tug_scan::sbom::created_now()))? + "\n";
    match &args.output_file {
        Some(f) => std::fs::write(f, doc).with_context(|| format!("writing {}", f.display()))?,
        None => crate::commands::image::emit(&doc),
    }
    Ok(ExitCode::SUCCESS)
}
