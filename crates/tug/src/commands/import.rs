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

/// What an import left behind and what it changed, as tables.
pub fn report(imp: &tug_spec::compose::Import, w: &mut dyn std::io::Write) -> std::io::Result<()> {
    if imp.dropped.is_empty() {
        writeln!(w, "nothing dropped")?;
    } else {
        let kw = imp
            .dropped
            .iter()
            .map(|d| d.path.len())
            .max()
            .unwrap_or(0)
            .max(4);
        writeln!(w, "\n{:<8} {:<kw$}  REASON", "LINE:COL", "DROPPED")?;
        for d in &imp.dropped {
            writeln!(
                w,
                "{:<8} {:<kw$}  {}",
                format!("{}:{}", d.line, d.col),
                d.path,
                d.reason
            )?;
        }
        writeln!(w, "\n{} key(s) dropped", imp.dropped.len())?;
    }
    if !imp.notes.is_empty() {
        writeln!(
            w,
            "\nwhat differs from compose (and the tug.yaml line that changes it):"
        )?;
        for n in &imp.notes {
            let at = if n.path.is_empty() {
                String::new()
            } else {
                format!(" {}", n.path)
            };
            writeln!(w, "  {}:{}{at}: {}", n.line, n.col, n.message)?;
            if let Some(fix) = &n.fix {
                writeln!(w, "      fix: {fix}")?;
            }
        }
    }
    Ok(())
}

pub fn compose(
    file: Option<&Path>,
    out: &Path,
    force: bool,
    output: OutputFormat,
) -> Result<ExitCode> {
    let input = compose_file(file)?;
    let same = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if same(&input, out) {
        return Err(fail(
            INVALID_INPUT,
            format!(
                "{} is the compose file being imported: pass another --out FILE",
                out.display()
            ),
        ));
    }
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
    let inputs = super::spec::inputs();
    let opts = tug_spec::compose::Options {
        profiles: inputs.profiles.clone(),
        env_files: inputs.env_files.clone(),
        vars: None,
    };
    let imp = tug_spec::compose::import_with(&text, &input, out_dir, &opts)?;
    std::fs::write(out, &imp.yaml).with_context(|| format!("writing {}", out.display()))?;
    // The result must stand on its own: check it where it was written.
    let check = tug_spec::load_with(out, &inputs.env_files);
    match output {
        OutputFormat::Json => println!(
            "{}",
            serde_json::json!({
                "input": input,
                "output": out,
                "valid": check.is_ok(),
                "dropped": imp.dropped,
                "notes": imp.notes,
            })
        ),
        OutputFormat::Table => {
            println!("wrote {} from {}", out.display(), input.display());
            report(&imp, &mut std::io::stdout().lock())?;
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
