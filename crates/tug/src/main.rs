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

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
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
