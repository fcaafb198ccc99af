//! `tug version`: tug's own version and the engine it talks to.

use crate::output::OutputFormat;
use anyhow::Result;
use std::process::ExitCode;
use tug_runtime::process::ProcessRuntime;
use tug_runtime::Runtime;

/// Prints tug's version, then the engine's: the container engine at
/// `DOCKER_HOST` (exit 3 when it does not answer), or with `--runtime
/// process` the process runtime.
pub async fn version(output: OutputFormat, process: bool) -> Result<ExitCode> {
    let tug = env!("CARGO_PKG_VERSION");
    let engine = if process {
        let rt = ProcessRuntime::new(ProcessRuntime::default_dir());
        Ok((rt.engine(), rt.address()))
    } else {
        super::stack::connect_engine()
            .await
            .map(|rt| (rt.engine(), rt.address()))
    };
    match output {
        OutputFormat::Json => {
            let engine = engine.as_ref().ok().map(|(e, addr)| {
                let mut v = serde_json::to_value(e).unwrap_or_default();
                v["address"] = addr.clone().into();
                v
            });
            let doc = serde_json::json!({ "tug": tug, "engine": engine });
            println!("{}", serde_json::to_string_pretty(&doc)?);
        }
        OutputFormat::Table => {
            println!("tug     {tug}");
            if let Ok((e, addr)) = &engine {
                println!("engine  {e} at {addr}");
            }
        }
    }
    engine?;
    Ok(ExitCode::SUCCESS)
}
