//! `tug history`, `tug rollback`, `tug scale`, `tug restart`.

use super::stack::{connect, converge, open_store};
use crate::exit::{fail, INVALID_INPUT};
use crate::output::OutputFormat;
use anyhow::Result;
use comfy_table::{presets::UTF8_BORDERS_ONLY, Cell, Color, Table};
use console::style;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;
use tug_engine::store::{Outcome, Revision};
use tug_engine::UpOptions;

fn unknown_service(stack: &tug_spec::Stack, name: &str) -> anyhow::Error {
    let known: Vec<&str> = stack.services.keys().map(String::as_str).collect();
    fail(
        INVALID_INPUT,
        format!(
            "no service `{name}` in stack {}: known services are {}",
            stack.name,
            known.join(", ")
        ),
    )
}

pub fn history(
    file: Option<&Path>,
    output: OutputFormat,
    service: Option<&str>,
    limit: usize,
) -> Result<ExitCode> {
    let stack = super::spec::load(file)?;
    if let Some(s) = service {
        if !stack.services.contains_key(s) {
            return Err(unknown_service(&stack, s));
        }
    }
    let Some(store) = open_store(&stack.name) else {
        return Ok(ExitCode::FAILURE);
    };
    // One more than shown, to know what the oldest shown one changed.
    let revs = store.revisions(limit + 1)?;
    let rows: Vec<(&Revision, Vec<String>)> = revs
        .iter()
        .enumerate()
        .take(limit)
        .map(|(i, r)| {
            let prev = revs[i + 1..]
                .iter()
                .find(|p| p.outcome == Outcome::Succeeded);
            (r, r.changed_services(prev))
        })
        .filter(|(_, changed)| service.is_none_or(|s| changed.iter().any(|c| c == s)))
        .collect();
    match output {
        OutputFormat::Json => {
            let v: Vec<serde_json::Value> = rows
                .iter()
                .map(|(r, changed)| serde_json::json!({"revision": r.id, "created": r.created, "outcome": r.outcome, "message": r.message, "changed": changed, "images": r.images}))
                .collect();
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
        OutputFormat::Table if rows.is_empty() => {
            println!("no revisions of stack {} yet: run `tug up`", stack.name)
        }
        OutputFormat::Table => {
            let mut t = Table::new();
            t.load_preset(UTF8_BORDERS_ONLY);
            t.set_header(["REVISION", "AGE", "OUTCOME", "CHANGED", "MESSAGE"]);
            for (r, changed) in rows {
                let color = match r.outcome {
                    Outcome::Succeeded => Color::Green,
                    Outcome::Pending => Color::Yellow,
                    _ => Color::Red,
                };
                let message: String = r
                    .message
                    .lines()
                    .next()
                    .unwrap_or("")
                    .chars()
                    .take(60)
                    .collect();
                t.add_row(vec![
                    Cell::new(r.id),
                    Cell::new(super::stack::age(r.created)),
                    Cell::new(serde_json::to_value(r.outcome)?.as_str().unwrap_or("")).fg(color),
                    Cell::new(changed.join(", ")),
                    Cell::new(message),
                ]);
            }
            println!("{t}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn rollback(
    file: Option<&Path>,
    output: OutputFormat,
    to: Option<i64>,
    timeout: Duration,
) -> Result<ExitCode> {
    let stack = super::spec::load(file)?;
    let Some(store) = open_store(&stack.name) else {
        return Ok(ExitCode::FAILURE);
    };
    let target = match to {
        Some(id) => match store.revision(id)? {
            Some(r) if r.outcome == Outcome::Succeeded => r,
            Some(r) => return Err(fail(
                INVALID_INPUT,
                format!(
                    "revision {id} did not succeed ({}): pick a succeeded one from `tug history`",
                    serde_json::to_value(r.outcome)?.as_str().unwrap_or("")
                ),
            )),
            None => {
                return Err(fail(
                    INVALID_INPUT,
                    format!(
                        "no revision {id} in the history of stack {}: see `tug history`",
                        stack.name
                    ),
                ))
            }
        },
        None => {
            let current = store.last_good(None)?;
            match current
                .and_then(|c| store.last_good(Some(c.id)).transpose())
                .transpose()?
            {
                Some(r) => r,
                None => return Err(fail(
                    INVALID_INPUT,
                    format!(
                        "stack {} has no earlier good revision to roll back to: see `tug history`",
                        stack.name
                    ),
                )),
            }
        }
    };
    drop(store);
    let pinned = target.pinned_stack(&stack.dir, &stack.file)?;
    let rt = connect().await?;
    if output == OutputFormat::Table {
        println!(
            "rolling back stack {} to revision {}",
            style(&stack.name).bold(),
            target.id
        );
    }
    let opts = UpOptions {
        timeout,
        ..UpOptions::default()
    };
    converge(
        &rt,
        &pinned,
        &opts,
        output,
        &format!("rollback to revision {}", target.id),
    )
    .await?;
    Ok(ExitCode::SUCCESS)
}

pub async fn scale(
    file: Option<&Path>,
    output: OutputFormat,
    pairs: &[String],
    timeout: Duration,
) -> Result<ExitCode> {
    let mut stack = super::spec::load(file)?;
    for p in pairs {
        let Some((name, n)) = p.split_once('=') else {
            return Err(fail(
                INVALID_INPUT,
                format!("`{p}`: write SERVICE=REPLICAS, for example api=3"),
            ));
        };
        let n: u32 = n.parse().map_err(|_| {
            fail(
                INVALID_INPUT,
                format!("`{p}`: replicas must be a whole number, for example {name}=3"),
            )
        })?;
        if !stack.services.contains_key(name) {
            return Err(unknown_service(&stack, name));
        }
        let svc = stack.services.get_mut(name).expect("checked above");
        if svc.publish.is_some() && n > 1 {
            return Err(fail(
                INVALID_INPUT,
                format!(
                    "service `{name}` publishes fixed host port {}: it can run one replica only",
                    svc.publish.unwrap_or(0)
                ),
            ));
        }
        svc.replicas = n;
    }
    let rt = connect().await?;
    let opts = UpOptions {
        timeout,
        ..UpOptions::default()
    };
    converge(
        &rt,
        &stack,
        &opts,
        output,
        &format!("scale {}", pairs.join(" ")),
    )
    .await?;
    Ok(ExitCode::SUCCESS)
}

pub async fn restart(
    file: Option<&Path>,
    output: OutputFormat,
    services: &[String],
    timeout: Duration,
) -> Result<ExitCode> {
    let stack = super::spec::load(file)?;
    for s in services {
        if !stack.services.contains_key(s) {
            return Err(unknown_service(&stack, s));
        }
    }
    let names: Vec<String> = if services.is_empty() {
        stack.services.keys().cloned().collect()
    } else {
        services.to_vec()
    };
    let rt = connect().await?;
    let opts = UpOptions {
        timeout,
        ..UpOptions::default()
    };
    let sink = |e: tug_engine::Event| {
        if output == OutputFormat::Json {
            println!("{}", serde_json::to_string(&e).unwrap_or_default());
        }
    };
    let n = tug_engine::restart(&rt, &stack, &names, &opts, &sink).await?;
    if output == OutputFormat::Table {
        println!(
            "{} restarted {n} replica(s) of {}, one at a time",
            style("✓").green(),
            names.join(", ")
        );
    }
    Ok(ExitCode::SUCCESS)
}
