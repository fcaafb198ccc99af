//! `tug validate`, `tug config` and `tug schema`.

use crate::output::OutputFormat;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Finds the stack file: the one given, else ./tug.yaml, else ./tug.yml.
pub fn stack_file(given: Option<&Path>) -> Result<PathBuf> {
    if let Some(p) = given {
        return Ok(p.to_path_buf());
    }
    for name in ["tug.yaml", "tug.yml"] {
        if Path::new(name).exists() {
            return Ok(PathBuf::from(name));
        }
    }
    Err(crate::exit::fail(
        crate::exit::INVALID_INPUT,
        "no tug.yaml or tug.yml in the current directory: pass one with -f FILE, or import a compose file with `tug import compose`",
    ))
}

pub fn load(given: Option<&Path>) -> Result<tug_spec::Stack> {
    let file = stack_file(given)?;
    Ok(tug_spec::load(&file)?)
}

pub fn validate(file: Option<&Path>, output: OutputFormat) -> Result<ExitCode> {
    let stack = load(file)?;
    match output {
        OutputFormat::Json => println!(
            "{}",
            serde_json::json!({"valid": true, "stack": stack.name, "services": stack.services.len()})
        ),
        OutputFormat::Table => println!(
            "{}: valid ({} service{})",
            stack.file.display(),
            stack.services.len(),
            if stack.services.len() == 1 { "" } else { "s" }
        ),
    }
    Ok(ExitCode::SUCCESS)
}

pub fn config(file: Option<&Path>, output: OutputFormat) -> Result<ExitCode> {
    let stack = load(file)?;
    match output {
        OutputFormat::Json => print_out(&(serde_json::to_string_pretty(&stack)? + "\n"))?,
        OutputFormat::Table => {
            print_out(&serde_yaml_ng::to_string(&stack).context("rendering the stack")?)?
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn schema() -> Result<ExitCode> {
    let mut text = serde_json::to_string_pretty(&tug_spec::schema())?;
    text.push('\n');
    print_out(&text)?;
    Ok(ExitCode::SUCCESS)
}

/// Writes to stdout; a closed pipe (`tug schema | head`) is not an error.
pub fn print_out(text: &str) -> Result<()> {
    use std::io::Write;
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}
