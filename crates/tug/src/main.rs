//! The tug command line. Thin: parses arguments, calls the library crates,
//! renders progress and output.

use clap::{Parser, Subcommand};
use std::process::ExitCode;

mod commands;
mod exit;
mod output;

use output::OutputFormat;

/// tug — from tug.yaml to a running, hardened stack.
///
/// tug runs a stack of services on the local container engine with health-gated
/// start order and hardened containers, and lints, builds and scans what it ships.
#[derive(Parser, Debug)]
#[command(
    name = "tug",
    version,
    propagate_version = true,
    arg_required_else_help = true
)]
pub struct Cli {
    /// The stack file [default: ./tug.yaml, then ./tug.yml]
    #[arg(short = 'f', long = "file", global = true, value_name = "FILE")]
    file: Option<std::path::PathBuf>,

    /// Output format for people (table) or machines (json)
    #[arg(short = 'o', long, global = true, value_enum, default_value_t = OutputFormat::Table)]
    output: OutputFormat,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Converge the stack on the container engine and wait until it is healthy
    ///
    /// Builds or finds every image, creates the network and volumes, starts
    /// services in dependency order and waits for their health checks. Run it
    /// again at any time: only what changed is replaced.
    Up {
        /// How long one service may take to turn healthy
        #[arg(long, default_value = "120s", value_parser = parse_duration)]
        timeout: std::time::Duration,
    },
    /// Remove the stack's containers and network (and volumes with --volumes)
    Down {
        /// Also remove the stack's named volumes and their data
        #[arg(long)]
        volumes: bool,
    },
    /// List the stack's replicas: state, health, endpoint, age, image
    Ps,
    /// Show the logs of the stack's replicas, interleaved, one colour per replica
    Logs {
        /// Only this service
        service: Option<String>,
        /// Keep streaming new lines
        #[arg(short = 'F', long)]
        follow: bool,
        /// Only the last N lines of each replica
        #[arg(long, value_name = "N")]
        tail: Option<usize>,
    },
    /// Check tug.yaml and report every problem with file:line:col
    Validate,
    /// Print the resolved stack with every default filled in
    Config,
    /// Lint Dockerfiles (hadolint-compatible rule IDs, plus tug's own)
    Lint(commands::lint::LintArgs),
    /// Generate an optimized multi-stage Dockerfile and .dockerignore for a Rust workspace
    Dockerfile(commands::dockerfile::DockerfileArgs),
    /// Print shell completions: `tug completions bash > /etc/bash_completion.d/tug`
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    s.parse::<tug_spec::Duration>().map(|d| d.std())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return exit::report(&anyhow::anyhow!("cannot start the async runtime: {e}")),
    };
    let file = cli.file.as_deref();
    let result = match cli.command {
        Command::Up { timeout } => rt.block_on(commands::stack::up(file, cli.output, timeout)),
        Command::Down { volumes } => rt.block_on(commands::stack::down(file, cli.output, volumes)),
        Command::Ps => rt.block_on(commands::stack::ps(file, cli.output)),
        Command::Logs {
            service,
            follow,
            tail,
        } => rt.block_on(commands::stack::logs(
            file,
            service.as_deref(),
            follow,
            tail,
        )),
        Command::Validate => commands::spec::validate(cli.file.as_deref(), cli.output),
        Command::Config => commands::spec::config(cli.file.as_deref(), cli.output),
        Command::Lint(args) => commands::lint::run(args, cli.output),
        Command::Dockerfile(args) => commands::dockerfile::run(args, cli.file.as_deref()),
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(shell, &mut Cli::command(), "tug", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => exit::report(&e),
    }
}
