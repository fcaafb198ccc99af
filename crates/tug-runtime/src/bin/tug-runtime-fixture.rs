//! Drives a process runtime from its own process, so tests can check that
//! state written by one tug process is observed by another.
//!
//! Usage: `tug-runtime-fixture DIR run NAME PROGRAM [ARG...]` (prints the id)
//! or `tug-runtime-fixture DIR inspect NAME` (prints `state exit_code`).

use std::process::ExitCode;
use tug_runtime::process::ProcessRuntime;
use tug_runtime::{ContainerSpec, Runtime};

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.as_slice() {
        [dir, op, name, rest @ ..] => {
            let rt = ProcessRuntime::new(dir.into());
            match (op.as_str(), rest) {
                ("run", [program, program_args @ ..]) => {
                    let mut spec = ContainerSpec::new(name, program);
                    spec.command = Some(program_args.to_vec());
                    match rt.create_container(&spec).await {
                        Ok(id) => rt.start_container(&id).await.map(|()| id),
                        Err(e) => Err(e),
                    }
                }
                ("inspect", []) => rt.inspect_container(name).await.map(|info| match info {
                    Some(i) => format!(
                        "{} {}",
                        i.state,
                        i.exit_code.map_or("-".to_string(), |c| c.to_string())
                    ),
                    None => "missing".to_string(),
                }),
                _ => return usage(),
            }
        }
        _ => return usage(),
    };
    match result {
        Ok(out) => {
            println!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn usage() -> ExitCode {
    eprintln!("usage: tug-runtime-fixture DIR run NAME PROGRAM [ARG...] | DIR inspect NAME");
    ExitCode::from(2)
}
