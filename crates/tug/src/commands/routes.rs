//! `tug routes`: the gateway's routes and the replicas behind each.

use crate::output::OutputFormat;
use anyhow::Result;
use comfy_table::presets::UTF8_BORDERS_ONLY;
use comfy_table::{Cell, Color, Table};
use std::path::Path;
use std::process::ExitCode;
use tug_api::api::{RouteRow, Routes};

/// From the agent when one runs (with replica states), else from the file.
pub async fn routes(file: Option<&Path>, output: OutputFormat) -> Result<ExitCode> {
    let stack = super::spec::load(file)?;
    let agent = tug_api::client::Client::for_stack(&stack.name).await;
    let routes: Routes = match &agent {
        Some(a) => a.get_as("/v1/routes").await?,
        None => Routes {
            listen: Vec::new(),
            routes: stack
                .services
                .iter()
                .flat_map(|(name, s)| {
                    s.routes.iter().map(move |r| RouteRow {
                        service: name.clone(),
                        host: r.host.clone(),
                        path: r.path.clone(),
                        strip_prefix: r.strip_prefix,
                        balance: match &r.balance {
                            tug_spec::Balance::P2c => "p2c".into(),
                            tug_spec::Balance::RoundRobin => "round_robin".into(),
                            tug_spec::Balance::Hash(tug_spec::HashKey::Client) => {
                                "hash(client)".into()
                            }
                            tug_spec::Balance::Hash(tug_spec::HashKey::Header(h)) => {
                                format!("hash({h})")
                            }
                        },
                        replicas: Vec::new(),
                    })
                })
                .collect(),
        },
    };
    if output == OutputFormat::Json {
        println!("{}", serde_json::to_string_pretty(&routes)?);
        return Ok(ExitCode::SUCCESS);
    }
    if routes.routes.is_empty() {
        println!(
            "stack {} has no routes: add `gateway: {{ listen: [\":8000\"] }}` and a service `route:`",
            stack.name
        );
        return Ok(ExitCode::SUCCESS);
    }
    match (&agent, stack.gateway.as_ref()) {
        (Some(_), _) if !routes.listen.is_empty() => {
            println!("gateway: {}", routes.listen.join(", "))
        }
        (None, Some(g)) => println!(
            "gateway: {} (not serving: `tug up` starts it)",
            g.listen
                .iter()
                .map(|a| format!("http://{a}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        _ => {}
    }
    let mut t = Table::new();
    t.load_preset(UTF8_BORDERS_ONLY);
    t.set_header([
        "ROUTE",
        "SERVICE",
        "BALANCE",
        "REPLICA",
        "ADDRESS",
        "STATE",
        "IN-FLIGHT",
    ]);
    for r in &routes.routes {
        let mut route = format!("{}{}", r.host.as_deref().unwrap_or("*"), r.path);
        if r.strip_prefix {
            route.push_str(" (strip)");
        }
        if r.replicas.is_empty() {
            t.add_row(vec![
                Cell::new(&route),
                Cell::new(&r.service),
                Cell::new(&r.balance),
                Cell::new("-"),
                Cell::new("-"),
                Cell::new(if agent.is_some() {
                    "no ready replica: 503"
                } else {
                    "-"
                })
                .fg(Color::Yellow),
                Cell::new("-"),
            ]);
        }
        for (i, x) in r.replicas.iter().enumerate() {
            let first = i == 0;
            t.add_row(vec![
                Cell::new(if first { route.as_str() } else { "" }),
                Cell::new(if first { r.service.as_str() } else { "" }),
                Cell::new(if first { r.balance.as_str() } else { "" }),
                Cell::new(&x.name),
                Cell::new(&x.address),
                Cell::new(&x.state).fg(match x.state.as_str() {
                    "ready" => Color::Green,
                    "ejected" => Color::Red,
                    _ => Color::Yellow,
                }),
                Cell::new(x.in_flight),
            ]);
        }
    }
    println!("{t}");
    Ok(ExitCode::SUCCESS)
}
