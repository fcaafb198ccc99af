//! `tug history`, `tug rollback`, `tug scale`, `tug restart`: through the
//! agent when one runs, directly on the engine otherwise.

use super::stack::{connect, converge, open_store};
use crate::output::OutputFormat;
use anyhow::Result;
use comfy_table::{presets::UTF8_BORDERS_ONLY, Cell, Color, Table};
use console::style;
use serde_json::{json, Value};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;
use tug_api::client::Client;
use tug_engine::ops;
use tug_engine::store::{Outcome, Revision};
use tug_engine::UpOptions;

pub async fn history(
    file: Option<&Path>,
    output: OutputFormat,
    service: Option<&str>,
    limit: usize,
) -> Result<ExitCode> {
    let stack = super::spec::load(file)?;
    if let Some(s) = service {
        ops::known_services(&stack, &[s.to_string()])?;
    }
    // One more than shown, to know what the oldest shown one changed.
    let revs: Vec<Revision> = match Client::for_stack(&stack.name).await {
        Some(agent) => {
            let v = agent
                .get(&format!("/v1/history?limit={}", limit + 1))
                .await?;
            v.as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(|r| Revision {
                    id: r["id"].as_i64().unwrap_or(0),
                    created: r["created"].as_i64().unwrap_or(0),
                    outcome: match r["outcome"].as_str() {
                        Some("succeeded") => Outcome::Succeeded,
                        Some("failed") => Outcome::Failed,
                        Some("rolled-back") => Outcome::RolledBack,
                        Some("interrupted") => Outcome::Interrupted,
                        _ => Outcome::Pending,
                    },
                    message: r["message"].as_str().unwrap_or("").to_string(),
                    spec: r["spec"].clone(),
                    images: serde_json::from_value(r["images"].clone()).unwrap_or_default(),
                })
                .collect()
        }
        None => match open_store(&stack.name) {
            Some(store) => store.revisions(limit + 1)?,
            None => return Ok(ExitCode::FAILURE),
        },
    };
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
            let v: Vec<Value> = rows
                .iter()
                .map(|(r, changed)| json!({"revision": r.id, "created": r.created, "outcome": r.outcome, "message": r.message, "changed": changed, "images": r.images}))
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
                    Outcome::Pending | Outcome::Interrupted => Color::Yellow,
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

/// Prints what the agent answered for a converge.
fn agent_done(output: OutputFormat, stack: &str, what: &str, v: &Value) {
    match output {
        OutputFormat::Json => println!("{v}"),
        OutputFormat::Table => {
            let r = &v["report"];
            println!(
                "{} {what}: stack {} (revision {}): {} created, {} started, {} removed",
                style("✓").green(),
                style(stack).bold(),
                v["revision"],
                r["created"],
                r["started"],
                r["removed"]
            );
        }
    }
}

pub async fn rollback(
    file: Option<&Path>,
    output: OutputFormat,
    to: Option<i64>,
    timeout: Duration,
) -> Result<ExitCode> {
    let stack = super::spec::load(file)?;
    if let Some(agent) = Client::for_stack(&stack.name).await {
        let v = agent.post("/v1/rollback", &json!({"to": to})).await?;
        agent_done(output, &stack.name, "rolled back", &v);
        return Ok(ExitCode::SUCCESS);
    }
    let Some(store) = open_store(&stack.name) else {
        return Ok(ExitCode::FAILURE);
    };
    let target = ops::rollback_target(&store, &stack.name, to)?;
    drop(store);
    let pinned = target.pinned_stack(&stack.dir, &stack.file)?;
    let rt = connect(&stack).await?;
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
    let stack = super::spec::load(file)?;
    let scaled = ops::scaled(&stack, pairs)?;
    if let Some(agent) = Client::for_stack(&stack.name).await {
        let v = agent.post("/v1/scale", &json!({"pairs": pairs})).await?;
        agent_done(output, &stack.name, "scaled", &v);
        return Ok(ExitCode::SUCCESS);
    }
    let rt = connect(&stack).await?;
    let opts = UpOptions {
        timeout,
        ..UpOptions::default()
    };
    converge(
        &rt,
        &scaled,
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
    let names = ops::known_services(&stack, services)?;
    let n = match Client::for_stack(&stack.name).await {
        Some(agent) => agent
            .post("/v1/restart", &json!({"services": services}))
            .await?["restarted"]
            .as_u64()
            .unwrap_or(0) as usize,
        None => {
            let rt = connect(&stack).await?;
            let opts = UpOptions {
                timeout,
                ..UpOptions::default()
            };
            let sink = |e: tug_engine::Event| {
                if output == OutputFormat::Json {
                    println!("{}", serde_json::to_string(&e).unwrap_or_default());
                }
            };
            let _lock = ops::ApplyLock::acquire(&stack.name).await?;
            tug_engine::restart(&rt, &stack, &names, &opts, &sink).await?
        }
    };
    match output {
        OutputFormat::Json => println!("{}", json!({"restarted": n, "services": names})),
        OutputFormat::Table => println!(
            "{} restarted {n} replica(s) of {}, one at a time",
            style("✓").green(),
            names.join(", ")
        ),
    }
    Ok(ExitCode::SUCCESS)
}
