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

/// `--env-file` and `--profile`, as given on the command line.
#[derive(Clone, Debug, Default)]
pub struct Inputs {
    pub env_files: Vec<PathBuf>,
    pub profiles: Vec<String>,
}

static INPUTS: std::sync::OnceLock<Inputs> = std::sync::OnceLock::new();

pub fn set_inputs(inputs: Inputs) {
    let _ = INPUTS.set(inputs);
}

pub fn inputs() -> Inputs {
    INPUTS.get().cloned().unwrap_or_default()
}

/// `--env-file` and `--profile` again, for a child tug (the agent).
pub fn inputs_args() -> Vec<std::ffi::OsString> {
    let inputs = inputs();
    let mut out = Vec::new();
    for f in &inputs.env_files {
        out.push("--env-file".into());
        out.push(std::path::absolute(f).unwrap_or_else(|_| f.clone()).into());
    }
    for p in &inputs.profiles {
        out.push("--profile".into());
        out.push(p.into());
    }
    out
}

/// Whether `file` is named like a compose file (`compose.yaml`,
/// `docker-compose.prod.yml`, ...).
pub fn is_compose(file: &Path) -> bool {
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    (name.starts_with("compose") || name.starts_with("docker-compose"))
        && (name.ends_with(".yaml") || name.ends_with(".yml"))
}

/// The stack of `-f FILE`: a tug.yaml, or a compose file imported in memory
/// (the import's report goes to stderr).
pub fn load(given: Option<&Path>) -> Result<tug_spec::Stack> {
    let file = stack_file(given)?;
    let inputs = inputs();
    if is_compose(&file) {
        return load_compose(&file, &inputs);
    }
    Ok(tug_spec::load_with(&file, &inputs.env_files)?)
}

/// The OTLP exporters the `OTEL_*` variables and the stack's `observe:`
/// ask for. A stack file that does not load is left for the command to
/// report.
pub fn telemetry(given: Option<&Path>) -> Result<Option<tug_observe::trace::Telemetry>> {
    let stack = stack_file(given)
        .ok()
        .filter(|f| !is_compose(f))
        .and_then(|f| tug_spec::load_with(&f, &inputs().env_files).ok());
    let settings = tug_observe::trace::Settings::from_env(
        stack.as_ref().and_then(|s| s.observe.otlp.as_ref()),
    )?;
    Ok(tug_observe::trace::install(
        &settings,
        stack.as_ref().map(|s| s.name.as_str()),
    )?)
}

fn load_compose(file: &Path, inputs: &Inputs) -> Result<tug_spec::Stack> {
    let text = std::fs::read_to_string(file).map_err(|e| {
        crate::exit::fail(
            crate::exit::INVALID_INPUT,
            format!("cannot read {}: {e}", file.display()),
        )
    })?;
    let dir = file
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let opts = tug_spec::compose::Options {
        profiles: inputs.profiles.clone(),
        env_files: inputs.env_files.clone(),
        vars: None,
    };
    let imp = tug_spec::compose::import_with(&text, file, dir, &opts)?;
    super::import::report(&imp, &mut std::io::stderr().lock())?;
    let vars = tug_spec::Vars::load(dir, &inputs.env_files)?;
    let name = file.file_name().unwrap_or_default().to_string_lossy();
    let virtual_file = dir.join(format!("{name} (imported)"));
    let mut stack = tug_spec::parse_str_with(&imp.yaml, &virtual_file, &vars)?;
    stack.file = file.to_path_buf();
    Ok(stack)
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
