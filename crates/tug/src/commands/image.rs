//! `tug image inspect`: layers, files, wasted bytes and efficiency of an
//! image from an OCI layout, a docker-archive or a registry; CI thresholds.

use crate::exit::{fail, INVALID_INPUT};
use crate::output::OutputFormat;
use anyhow::{Context, Result};
use std::process::ExitCode;
use std::time::Duration;
use tug_image::analyze::{analyze, ChangeKind, CiRules, ImageSource};
use tug_image::registry::ClientOptions;

/// Appends a line to an output buffer (printed at once, broken pipes ignored).
macro_rules! outln {
    ($o:ident, $($t:tt)*) => {{
        use std::fmt::Write as _;
        let _ = writeln!($o, $($t)*);
    }};
}

#[derive(clap::Subcommand, Debug)]
pub enum ImageCommand {
    /// Layers (size, command), files per layer, wasted bytes and efficiency
    Inspect(InspectArgs),
}

#[derive(clap::Args, Debug)]
pub struct InspectArgs {
    /// oci:DIR, docker-archive:FILE, or a registry reference (127.0.0.1:5000/app:1)
    pub image: String,
    /// List the files each layer adds (+), modifies (~) and removes (-)
    #[arg(long)]
    pub files: bool,
    /// Check the thresholds below; exit 1 when one fails
    #[arg(long)]
    pub ci: bool,
    /// Fail when efficiency (0..1) is below this
    #[arg(long, default_value_t = 0.9, value_name = "RATIO")]
    pub lowest_efficiency: f64,
    /// Fail when more bytes than this are wasted (e.g. 20MB, 5Mi)
    #[arg(long, default_value = "20MB", value_name = "SIZE")]
    pub highest_wasted_bytes: tug_spec::ByteSize,
    /// Fail when wasted bytes / user layer bytes (0..1) is above this
    #[arg(long, default_value_t = 0.1, value_name = "RATIO")]
    pub highest_user_wasted_percent: f64,
    /// Allow plain HTTP to a registry that is not on loopback
    #[arg(long)]
    pub insecure: bool,
}

/// Decimal sizes, as dive prints them.
pub fn human(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1000.0 && i < UNITS.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    if i == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[i])
    }
}

/// Prints a finished output buffer; a closed pipe (`| head`) is not an error.
pub fn emit(s: &str) {
    use std::io::Write as _;
    let _ = std::io::stdout().lock().write_all(s.as_bytes());
}

pub fn run(output: OutputFormat, cmd: ImageCommand) -> Result<ExitCode> {
    match cmd {
        ImageCommand::Inspect(a) => inspect(output, a),
    }
}

/// `engine:NAME` always, and a plain reference the local engine has, are read
/// from the engine (`docker save`); anything else from its registry.
fn engine_image(image: &str) -> Result<Option<Vec<u8>>> {
    if image.starts_with("oci:") || image.starts_with("docker-archive:") {
        return Ok(None);
    }
    let explicit = image.strip_prefix("engine:");
    let reference = explicit.unwrap_or(image).to_string();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        use tug_runtime::Runtime;
        let engine = match super::stack::connect_engine().await {
            Ok(e) => e,
            Err(e) if explicit.is_some() => return Err(e),
            Err(_) => return Ok(None),
        };
        if engine.inspect_image(&reference).await?.is_none() {
            return match explicit {
                Some(_) => Err(fail(
                    INVALID_INPUT,
                    format!("the engine has no image {reference}: see `docker images`"),
                )),
                None => Ok(None),
            };
        }
        Ok(Some(engine.save_image(&reference).await?))
    })
}

/// Reads an image from any source `tug image inspect` and `tug scan` accept:
/// oci:DIR, docker-archive:FILE, engine:NAME or a registry reference.
pub fn load_image(image: &str, opts: &ClientOptions) -> Result<tug_image::oci::RawImage> {
    let source = ImageSource::parse(image.strip_prefix("engine:").unwrap_or(image)).map_err(|e| {
        fail(
            INVALID_INPUT,
            format!("{e}; give oci:DIR, docker-archive:FILE, engine:NAME or a reference like 127.0.0.1:5000/app:1"),
        )
    })?;
    Ok(match engine_image(image)? {
        Some(archive) => tug_image::oci::read_docker_archive(std::io::Cursor::new(archive), image)
            .with_context(|| format!("reading {image} from the engine"))?,
        None => source
            .load(opts)
            .with_context(|| format!("reading {image}"))?,
    })
}

fn inspect(output: OutputFormat, a: InspectArgs) -> Result<ExitCode> {
    if !(0.0..=1.0).contains(&a.lowest_efficiency) {
        return Err(fail(
            INVALID_INPUT,
            format!(
                "--lowest-efficiency {}: give a ratio between 0 and 1, e.g. 0.9 for 90%",
                a.lowest_efficiency
            ),
        ));
    }
    if a.highest_user_wasted_percent.is_nan() || a.highest_user_wasted_percent < 0.0 {
        return Err(fail(
            INVALID_INPUT,
            format!(
                "--highest-user-wasted-percent {}: give a ratio of at least 0, e.g. 0.1 for 10%",
                a.highest_user_wasted_percent
            ),
        ));
    }
    let pb = if output == OutputFormat::Table {
        let pb = indicatif::ProgressBar::new_spinner();
        pb.enable_steady_tick(Duration::from_millis(120));
        pb.set_message(format!("reading {}", a.image));
        pb
    } else {
        indicatif::ProgressBar::hidden()
    };
    let opts = ClientOptions {
        insecure: a.insecure,
        ..Default::default()
    };
    let raw = load_image(&a.image, &opts)?;
    pb.set_message(format!("analysing {}", a.image));
    let mut analysis = analyze(&raw).with_context(|| format!("analysing {}", a.image))?;
    pb.finish_and_clear();
    let rules = CiRules {
        lowest_efficiency: Some(a.lowest_efficiency),
        highest_wasted_bytes: Some(a.highest_wasted_bytes.0),
        highest_user_wasted_percent: Some(a.highest_user_wasted_percent),
    };
    let ci = a.ci.then(|| analysis.evaluate(&rules));
    let mut out = String::new();
    match output {
        OutputFormat::Json => {
            if !a.files {
                for l in &mut analysis.layers {
                    l.changes.clear();
                }
            }
            let doc = serde_json::json!({
                "image": a.image,
                "digest": raw.digest(),
                "analysis": analysis,
                "ci": ci,
            });
            outln!(out, "{}", serde_json::to_string_pretty(&doc)?);
        }
        OutputFormat::Table => {
            match raw.digest() {
                Some(d) => outln!(out, "{}  {d}", a.image),
                None => outln!(out, "{}", a.image),
            }
            outln!(
                out,
                "{:>3}  {:>9}  {:>9}  CREATED BY",
                "#",
                "SIZE",
                "STORED"
            );
            for l in &analysis.layers {
                let cmd: String = l.created_by.chars().take(100).collect();
                outln!(
                    out,
                    "{:>3}  {:>9}  {:>9}  {cmd}",
                    l.index,
                    human(l.size),
                    human(l.blob_size)
                );
                if a.files {
                    for c in &l.changes {
                        let mark = match c.kind {
                            ChangeKind::Added => '+',
                            ChangeKind::Modified => '~',
                            ChangeKind::Removed => '-',
                        };
                        outln!(out, "       {mark} {} ({})", c.path, human(c.size));
                    }
                }
            }
            outln!(
                out,
                "total {}, user layers {}, wasted {} ({:.1}% of user), efficiency {:.2}%",
                human(analysis.size_bytes),
                human(analysis.user_size_bytes),
                human(analysis.wasted_bytes),
                analysis.wasted_user_percent * 100.0,
                analysis.efficiency * 100.0
            );
            if !analysis.inefficiencies.is_empty() {
                outln!(out, "{:>6}  {:>9}  PATH", "COUNT", "WASTED");
                for i in analysis.inefficiencies.iter().take(10) {
                    outln!(
                        out,
                        "{:>6}  {:>9}  {}",
                        i.count,
                        human(i.cumulative_size),
                        i.path
                    );
                }
            }
            if let Some(r) = &ci {
                outln!(out, "ci: {}", if r.passed { "PASS" } else { "FAIL" });
                for o in &r.rules {
                    outln!(
                        out,
                        "  {} {}: {} (limit {})",
                        if o.passed { "pass" } else { "FAIL" },
                        o.rule,
                        fmt_rule(o.rule, o.actual),
                        fmt_rule(o.rule, o.limit)
                    );
                }
            }
        }
    }
    emit(&out);
    Ok(match ci {
        Some(r) if !r.passed => ExitCode::from(1),
        _ => ExitCode::SUCCESS,
    })
}

fn fmt_rule(rule: &str, v: f64) -> String {
    if rule == "highest_wasted_bytes" {
        human(v as u64)
    } else {
        format!("{v:.4}")
    }
}
