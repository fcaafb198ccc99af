//! `tug dashboard`: where the running agent serves the dashboard.
//!
//! Starts nothing: the agent serves it (`tug up -d` starts the agent).

use crate::output::OutputFormat;
use anyhow::{bail, Context, Result};
use std::path::Path;
use std::process::ExitCode;

#[derive(serde::Serialize)]
struct Answer {
    stack: String,
    url: String,
    /// Whether the listener is on loopback (no token asked).
    loopback: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<String>,
}

pub async fn dashboard(
    file: Option<&Path>,
    output: OutputFormat,
    open: bool,
    show_token: bool,
) -> Result<ExitCode> {
    let stack = super::spec::load(file)?;
    let Some(agent) = tug_api::client::Client::for_stack(&stack.name).await else {
        bail!(
            "no agent runs for stack {}: `tug up -d` starts one, and with it the dashboard",
            stack.name
        );
    };
    let info = agent.info().await?;
    let Some(url) = info.http else {
        bail!("the agent of stack {} serves no HTTP listener (an older tug?): restart it with `tug up -d`", stack.name);
    };
    let loopback = url
        .trim_start_matches("http://")
        .parse::<std::net::SocketAddr>()
        .is_ok_and(|a| a.ip().is_loopback());
    let token = if show_token {
        let dir = info.socket.parent().unwrap_or(Path::new("."));
        Some(read_token(dir, loopback)?)
    } else {
        None
    };
    let answer = Answer {
        stack: stack.name.clone(),
        url: url.clone(),
        loopback,
        token,
    };
    if output == OutputFormat::Json {
        println!("{}", serde_json::to_string_pretty(&answer)?);
    } else {
        println!("{url}");
        if let Some(t) = &answer.token {
            println!("token: {t}");
        } else if !loopback {
            eprintln!("beyond loopback the dashboard asks for the token: `tug dashboard --token` prints it");
        }
    }
    if open {
        open_browser(&url)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The agent's token: what it was started with (`TUG_API_TOKEN`), else its
/// file. On loopback there is none to ask for.
fn read_token(dir: &Path, loopback: bool) -> Result<String> {
    if let Ok(t) = std::env::var("TUG_API_TOKEN") {
        if !t.trim().is_empty() {
            return Ok(t.trim().to_string());
        }
    }
    let path = dir.join("token");
    match std::fs::read_to_string(&path) {
        Ok(t) if !t.trim().is_empty() => Ok(t.trim().to_string()),
        _ if loopback => bail!("the dashboard listens on loopback and asks for no token"),
        Ok(_) => bail!(
            "{} is empty: restart the agent (`tug up -d`)",
            path.display()
        ),
        Err(e) => Err(e).with_context(|| format!("reading the token in {}", path.display())),
    }
}

/// Opens `url` in the desktop's browser: `$BROWSER`, else the platform's
/// opener. Says so when there is none (a server without a desktop).
fn open_browser(url: &str) -> Result<()> {
    let mut candidates: Vec<String> = Vec::new();
    if let Ok(b) = std::env::var("BROWSER") {
        candidates.extend(b.split(':').filter(|s| !s.is_empty()).map(String::from));
    }
    candidates.extend(["xdg-open", "open"].map(String::from));
    for c in &candidates {
        match std::process::Command::new(c)
            .arg(url)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
        {
            Ok(_) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_context(|| format!("starting {c}")),
        }
    }
    bail!("no browser to open here (tried $BROWSER, xdg-open, open): open {url} yourself")
}
