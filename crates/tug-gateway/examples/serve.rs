//! The gateway alone, in front of fixed backends, for benchmarks and
//! experiments: `serve LISTEN BACKEND...` (each `host:port`).
//!
//! It is the request path the agent runs, without a stack around it:
//! scripts/bench/gateway.sh measures it against nginx, Traefik and Caddy.

use tug_gateway::{Endpoint, Gateway, Tuning};

/// The allocator the tug binary runs the gateway with.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: serve LISTEN BACKEND... (host:port each)";
    let listen = tug_spec::listen_address(args.first().expect(usage)).expect(usage);
    let config = tug_spec::Gateway {
        listen: vec![listen],
        access_log: tug_spec::AccessLog::Off,
        ..tug_spec::Gateway::default()
    };
    let route = tug_spec::Route {
        host: None,
        path: "/".into(),
        strip_prefix: false,
        timeouts: Default::default(),
        retry: Default::default(),
        balance: Default::default(),
        upstream: Default::default(),
    };
    // Spans go where OTEL_EXPORTER_OTLP_* say (the bench's traced runs).
    let settings = tug_observe::trace::Settings::from_env(None).expect("OTEL_* variables");
    let _telemetry = tug_observe::trace::install(&settings, None).expect("OTLP exporter");
    let gw = Gateway::new(
        config,
        vec![("backend".into(), route)],
        Tuning::default(),
        None,
    );
    let (_stop, rx) = tokio::sync::watch::channel(false);
    let addrs = gw.start(rx).await.unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(1)
    });
    gw.set_ready(
        "backend",
        args[1..]
            .iter()
            .enumerate()
            .map(|(i, a)| Endpoint {
                name: format!("backend-{i}"),
                addr: a.parse().expect(usage),
            })
            .collect(),
    );
    eprintln!("serving on {}", addrs[0]);
    let _ = tokio::signal::ctrl_c().await;
}
