//! `tug import compose`: compose file → tug.yaml, listing what was left behind.

use crate::exit::{fail, INVALID_INPUT};
use crate::output::OutputFormat;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

const COMPOSE_FILES: &[&str] = &[
    "compose.yaml",
    "compose.yml",
    "docker-compose.yaml",
    "docker-compose.yml",
];

fn compose_file(given: Option<&Path>) -> Result<PathBuf> {
    if let Some(p) = given {
        return Ok(p.to_path_buf());
    }
    COMPOSE_FILES
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .ok_or_else(|| {
            fail(
                INVALID_INPUT,
                format!(
                    "no compose file in the current directory (looked for {}): pass one as an argument",
                    COMPOSE_FILES.join(", ")
                ),
            )
        })
}

pub fn compose(
    file: Option<&Path>,
    out: &Path,
    force: bool,
    output: OutputFormat,
) -> Result<ExitCode> {
    let input = compose_file(file)?;
    if out.exists() && !force {
        return Err(fail(
            INVALID_INPUT,
            format!(
                "{} exists: pass --force to overwrite it, or --out FILE",
                out.display()
            ),
        ));
    }
    let text = std::fs::read_to_string(&input).map_err(|e| {
        fail(
            INVALID_INPUT,
            format!("cannot read {}: {e}", input.display()),
        )
    })?;
    let out_dir = out
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let imp = tug_spec::compose::import_to(&text, &input, out_dir)?;
    std::fs::write(out, &imp.yaml).with_context(|| format!("writing {}", out.display()))?;
    // The result must stand on its own: check it where it was written.
    let check = tug_spec::load(out);
    match output {
        OutputFormat::Json => println!(
            "{}",
            serde_json::json!({
                "input": input,
                "output": out,
                "valid": check.is_ok(),
                "dropped": imp.dropped,
            })
        ),
        OutputFormat::Table => {
            println!("wrote {} from {}", out.display(), input.display());
            if imp.dropped.is_empty() {
                println!("nothing dropped");
            } else {
                let w = imp
                    .dropped
                    .iter()
                    .map(|d| d.path.len())
                    .max()
                    .unwrap_or(0)
                    .max(4);
                println!("\n{:<8} {:<w$}  REASON", "LINE:COL", "KEY");
                for d in &imp.dropped {
                    println!(
                        "{:<8} {:<w$}  {}",
                        format!("{}:{}", d.line, d.col),
                        d.path,
                        d.reason
                    );
                }
                println!("\n{} key(s) dropped", imp.dropped.len());
            }
        }
    }
    match check {
        Ok(_) => Ok(ExitCode::SUCCESS),
        Err(e) => Err(anyhow::Error::new(e).context(format!(
            "{} was written but needs fixes before tug can run it",
            out.display()
        ))),
    }
}
