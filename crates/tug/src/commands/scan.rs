//! `tug scan`: vulnerabilities, secrets and configuration in one report.

use crate::output::OutputFormat;
use anyhow::Result;
use std::path::PathBuf;
use std::process::ExitCode;
use tug_scan::{ScanOptions, ScannerKind, Severity};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ScanFormat {
    Table,
    Json,
    Sarif,
}

#[derive(clap::Args, Debug)]
pub struct ScanArgs {
    /// Directory (or file) to scan, or an image: oci:DIR, docker-archive:FILE,
    /// engine:NAME or a registry reference (127.0.0.1:5000/app:1)
    #[arg(default_value = ".", value_name = "PATH|IMAGE")]
    pub path: PathBuf,
    /// Scanners to run
    #[arg(long, value_delimiter = ',', default_value = "vuln,secret,config", value_parser = parse_scanner)]
    pub scanners: Vec<ScannerKind>,
    /// Report format [default: table, or json with -o json]
    #[arg(long, value_enum)]
    pub format: Option<ScanFormat>,
    /// Report only these severities (comma-separated)
    #[arg(long, value_delimiter = ',', value_parser = parse_severity)]
    pub severity: Vec<Severity>,
    /// Exit with this code when findings remain after filtering (informational advisories excluded)
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub exit_code: u8,
    /// RustSec advisory database directory [default: $TUG_ADVISORY_DB or ~/.cache/tug/advisory-db]
    #[arg(long, value_name = "DIR")]
    pub db: Option<PathBuf>,
    /// For an image: a distribution's security data to audit its Debian and
    /// Alpine packages against (DIR/debian.json: the Debian security
    /// tracker's JSON; DIR/alpine/v3.19/*.json: Alpine's secdb); without
    /// it those packages are listed and the report says they were skipped
    #[arg(long, value_name = "DIR")]
    pub os_db: Option<PathBuf>,
    /// Clone or fast-forward the advisory database with git before scanning (the only network access)
    #[arg(long)]
    pub update_db: bool,
    /// Ignore an advisory id (repeatable)
    #[arg(long, value_name = "ID")]
    pub ignore: Vec<String>,
    /// Also scan the added lines of every git commit for secrets
    #[arg(long)]
    pub git_history: bool,
    /// With --exit-code: do not fail because a scanned file could not be parsed (it is still reported)
    #[arg(long)]
    pub skip_errors: bool,
    /// Allow plain HTTP to a registry that is not on loopback (images only)
    #[arg(long)]
    pub insecure: bool,
}

/// An image to scan rather than a directory: a known prefix, or a name that
/// is no path on disk but reads as an image reference.
pub fn image_source(arg: &std::path::Path) -> Option<String> {
    let s = arg.to_str()?;
    if ["oci:", "docker-archive:", "engine:"]
        .iter()
        .any(|p| s.starts_with(p))
    {
        return Some(s.to_string());
    }
    if arg.exists() {
        return None;
    }
    // A reference names its registry (`host:port/…`, `x.y/…`) or a tag or
    // digest; anything else (`no/such/dir`) is a missing path.
    let first = s.split('/').next().unwrap_or("");
    let last = s.rsplit('/').next().unwrap_or("");
    let looks_like_ref = s.contains('@')
        || last.contains(':')
        || (s.contains('/')
            && (first.contains('.') || first.contains(':') || first == "localhost"));
    (looks_like_ref && tug_image::registry::Reference::parse(s).is_ok()).then(|| s.to_string())
}

fn scan_image(args: &ScanArgs, image: &str, db: PathBuf, output: OutputFormat) -> Result<ExitCode> {
    use anyhow::Context as _;
    let opts = tug_image::registry::ClientOptions {
        insecure: args.insecure,
        ..Default::default()
    };
    let raw = super::image::load_image(image, &opts)?;
    let mut scan_opts = tug_scan::image::ImageScanOptions {
        scanners: args.scanners.clone(),
        db: Some(db),
        ignore: args.ignore.clone(),
        severities: args.severity.clone(),
        audit: true,
        os_db: args.os_db.clone(),
    };
    scan_opts.scanners.dedup();
    let scanned = tug_scan::image::scan_image(&raw, image, &scan_opts)
        .map_err(|e| {
            let mut msg = e.to_string();
            if let Some(h) = e.hint() {
                msg.push_str("\n  hint: ");
                msg.push_str(h);
            }
            crate::exit::fail(crate::exit::INVALID_INPUT, msg)
        })
        .with_context(|| format!("scanning {image}"))?;
    let report = &scanned.report;
    let format = args.format.unwrap_or(match output {
        OutputFormat::Json => ScanFormat::Json,
        OutputFormat::Table => ScanFormat::Table,
    });
    let text = match format {
        ScanFormat::Table => {
            let bytes: u64 = scanned.layers.iter().map(|l| l.bytes).sum();
            let mut t = tug_scan::render::table(report);
            if !scanned.os_packages.is_empty() {
                t.push_str("distribution packages:\n");
                for p in &scanned.os_packages {
                    t.push_str(&format!(
                        "  {:<8} {:<32} {:<28} {}\n",
                        format!("{:?}", p.distro).to_lowercase(),
                        p.name,
                        p.version,
                        p.arch.as_deref().unwrap_or("")
                    ));
                }
            }
            t.push_str(&format!(
                "{} layers, {} files, {} read; {} binar{} audited\n",
                scanned.layers.len(),
                report.stats.files,
                super::image::human(bytes),
                scanned.binaries_audited.len(),
                if scanned.binaries_audited.len() == 1 {
                    "y"
                } else {
                    "ies"
                }
            ));
            t
        }
        ScanFormat::Json => serde_json::to_string_pretty(&scanned)? + "\n",
        ScanFormat::Sarif => tug_scan::render::sarif(report) + "\n",
    };
    let _ = std::io::Write::write_all(&mut std::io::stdout().lock(), text.as_bytes());
    if format != ScanFormat::Table {
        for n in &report.notices {
            eprintln!("notice: {n}");
        }
        for e in &report.errors {
            eprintln!("error: {e}");
        }
    }
    if args.exit_code != 0 && report.has_failures() {
        return Ok(ExitCode::from(args.exit_code));
    }
    Ok(ExitCode::SUCCESS)
}

fn parse_scanner(s: &str) -> Result<ScannerKind, String> {
    s.parse()
}

fn parse_severity(s: &str) -> Result<Severity, String> {
    s.parse()
}

pub fn run(args: ScanArgs, output: OutputFormat) -> Result<ExitCode> {
    let db = args
        .db
        .clone()
        .unwrap_or_else(tug_scan::vuln::default_db_dir);
    if args.update_db {
        let msg = tug_scan::vuln::update_db(&db).map_err(|e| crate::exit::fail(1, e))?;
        eprintln!("{msg}");
    }
    if let Some(image) = image_source(&args.path) {
        return scan_image(&args, &image, db, output);
    }
    let mut opts = ScanOptions::new(&args.path);
    opts.scanners = args.scanners.clone();
    opts.scanners.dedup();
    opts.db = Some(db);
    opts.ignore = args.ignore.clone();
    opts.severities = args.severity.clone();
    opts.git_history = args.git_history;
    let report = tug_scan::scan(&opts).map_err(|e| {
        let mut msg = e.to_string();
        if let Some(h) = e.hint() {
            msg.push_str("\n  hint: ");
            msg.push_str(h);
        }
        crate::exit::fail(crate::exit::INVALID_INPUT, msg)
    })?;
    let format = args.format.unwrap_or(match output {
        OutputFormat::Json => ScanFormat::Json,
        OutputFormat::Table => ScanFormat::Table,
    });
    let text = match format {
        ScanFormat::Table => tug_scan::render::table(&report),
        ScanFormat::Json => tug_scan::render::json(&report) + "\n",
        ScanFormat::Sarif => tug_scan::render::sarif(&report) + "\n",
    };
    // A closed pipe (`| head`) is not an error worth a panic.
    let _ = std::io::Write::write_all(&mut std::io::stdout().lock(), text.as_bytes());
    if format != ScanFormat::Table {
        // Machine formats keep stdout clean; people still see problems.
        for n in &report.notices {
            eprintln!("notice: {n}");
        }
        for e in &report.errors {
            eprintln!("error: {e}");
        }
    }
    let unparsed = !args.skip_errors && report.input_errors().next().is_some();
    if args.exit_code != 0 && (report.has_failures() || unparsed) {
        return Ok(ExitCode::from(args.exit_code));
    }
    Ok(ExitCode::SUCCESS)
}
