//! Exit codes and error rendering: `error:` then each cause, then hints.

use std::process::ExitCode;

/// A failure with a specific exit code; wrap it in anyhow to choose the code.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Failure {
    pub code: u8,
    pub message: String,
}

/// Input (tug.yaml, a Dockerfile, arguments) is invalid.
pub const INVALID_INPUT: u8 = 2;
/// The container engine could not be reached.
#[allow(dead_code)] // for the engine commands
pub const ENGINE_UNREACHABLE: u8 = 3;

pub fn fail(code: u8, message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Failure {
        code,
        message: message.into(),
    })
}

pub fn report(e: &anyhow::Error) -> ExitCode {
    eprintln!("error: {e}");
    for cause in e.chain().skip(1) {
        eprintln!("  caused by: {cause}");
    }
    let code = e.chain().find_map(code_of).unwrap_or(1);
    ExitCode::from(code)
}

/// The exit code an error in the chain asks for, if any.
fn code_of(c: &(dyn std::error::Error + 'static)) -> Option<u8> {
    if let Some(f) = c.downcast_ref::<Failure>() {
        return Some(f.code);
    }
    if c.downcast_ref::<tug_spec::SpecErrors>().is_some() {
        return Some(INVALID_INPUT);
    }
    if let Some(tug_engine::ops::OpsError::Invalid(_)) =
        c.downcast_ref::<tug_engine::ops::OpsError>()
    {
        return Some(INVALID_INPUT);
    }
    if let Some(tug_api::client::ClientError::Agent { invalid: true, .. }) =
        c.downcast_ref::<tug_api::client::ClientError>()
    {
        return Some(INVALID_INPUT);
    }
    None
}
