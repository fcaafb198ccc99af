//! The tug command line. Thin: parses arguments, calls the library crates,
//! renders progress and output.

use clap::{Parser, Subcommand};
use std::process::ExitCode;

mod commands;
mod exit;
mod output;

use output::OutputFormat;

/// The agent's gateway allocates per request and connection; mimalloc's
/// thread-local heaps serve it faster than glibc's malloc.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// tug — from tug.yaml to a running, hardened stack.
///
/// tug runs a stack of services on the local container engine (or as local
/// processes) with health-gated start order, hardened containers, rolling
/// updates with rollback and a supervising agent; and it lints, builds and
/// scans what it ships.
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

    /// Where services run: docker (or Podman) containers, or local processes
    /// [default: the file's `runtime:`, else docker when an engine answers]
    #[arg(long, global = true, value_enum)]
    runtime: Option<RuntimeArg>,

    /// Read variables for `${VAR}` from this file instead of the .env beside
    /// the stack or compose file (repeatable; the environment still wins)
    #[arg(long = "env-file", global = true, value_name = "FILE")]
    env_file: Vec<std::path::PathBuf>,

    /// Enable a compose profile when reading a compose file (repeatable;
    /// COMPOSE_PROFILES is read too)
    #[arg(long = "profile", global = true, value_name = "NAME")]
    profile: Vec<String>,
    /// More log output on stderr: -v info, -vv debug, -vvv trace (RUST_LOG overrides)
    #[arg(short = 'v', long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,

    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum RuntimeArg {
    Docker,
    Process,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Converge the stack on the container engine and wait until it is healthy
    ///
    /// Builds or finds every image, creates the network and volumes, starts
    /// services in dependency order and waits for their health checks. Run it
    /// again at any time: only what changed is replaced. Without -d it stays
    /// attached (supervising, logs streamed; Ctrl-C stops the stack); with -d
    /// it returns and a background agent supervises the stack.
    Up {
        /// Return once healthy and leave an agent supervising the stack
        #[arg(short = 'd', long)]
        detach: bool,
        /// How long one service may take to turn healthy
        #[arg(long, default_value = "120s", value_parser = parse_duration)]
        timeout: std::time::Duration,
        /// Print the plan (per replica: create, replace, remove, start, keep,
        /// with the reason; the rolling steps) and change nothing. Exit code:
        /// 0 nothing to do, 2 changes would be made, 1 error
        #[arg(long, conflicts_with = "detach")]
        dry_run: bool,
    },
    /// Remove the stack's containers and network (and volumes with --volumes)
    ///
    /// With --kube, delete the stack's objects from Kubernetes (selected by
    /// the labels tug put on them, nothing else).
    Down {
        /// Also remove the stack's named volumes and their data
        #[arg(long)]
        volumes: bool,
        #[command(flatten)]
        kube: commands::kube::KubeTarget,
    },
    /// List the stack's replicas: state, health, endpoint, age, image
    Ps,
    /// List the gateway's routes and the replicas behind each, with their state
    ///
    /// A replica is `ready` (it gets requests), `ejected` (out for a while
    /// after failures in a row) or `draining` (being retired: it finishes its
    /// requests and gets no new ones). A route with no ready replica answers
    /// 503 with Retry-After. Without a running agent, the routes of tug.yaml.
    Routes,
    /// Print the agent's Prometheus metrics (what GET /metrics serves)
    ///
    /// Replica states, restarts, health checks, rollouts, scale decisions,
    /// builds, per-replica CPU, memory, network and block I/O, and the
    /// gateway's request metrics, all labelled with the stack. `-o json`
    /// gives the parsed samples. Needs the running agent (`tug up -d`).
    Metrics,
    /// Wire the stack into Prometheus and Grafana
    #[command(subcommand)]
    Observe(commands::observe::ObserveCommand),
    /// Print the URL of the stack's dashboard, served by its running agent
    ///
    /// The agent serves the dashboard on `dashboard.listen` of tug.yaml
    /// (default: loopback, a port chosen at start). Beyond loopback the
    /// dashboard asks for the agent's token; --token prints it. Starts
    /// nothing: `tug up -d` starts the agent.
    Dashboard {
        /// Also open it in the desktop's browser
        #[arg(long)]
        open: bool,
        /// Also print the token the dashboard asks for beyond loopback
        #[arg(long)]
        token: bool,
    },
    /// Show the logs of the stack's replicas, interleaved, one colour per replica
    ///
    /// `-o json` prints one JSON object a line: service, replica, stream,
    /// message, time (RFC 3339) where the runtime knows it, and trace_id
    /// when the line carries one (a W3C traceparent, or a
    /// `trace_id`/`traceId` field of a JSON line).
    ///
    /// `--since`/`--until` take what `docker logs` takes: RFC 3339
    /// (2026-12-01T10:00:00Z), a Unix timestamp, or a duration ago (10m,
    /// 1h30m). The process runtime knows the time of a line only when it
    /// reads it while following, so a window leaves its history out.
    Logs {
        /// Only this service
        service: Option<String>,
        /// Keep streaming new lines
        #[arg(short = 'F', long)]
        follow: bool,
        /// Only the last N lines of each replica
        #[arg(long, value_name = "N")]
        tail: Option<usize>,
        /// Only lines this regular expression matches, e.g. `--grep 'error|panic'`
        #[arg(long, value_name = "REGEX")]
        grep: Option<String>,
        /// Only lines written at or after this time, e.g. `--since 10m`
        #[arg(long, value_name = "TIME")]
        since: Option<String>,
        /// Only lines written before this time; with -F, stop then
        #[arg(long, value_name = "TIME")]
        until: Option<String>,
        /// Show each line's time (RFC 3339, UTC)
        #[arg(short = 't', long)]
        timestamps: bool,
    },
    /// Supervise the stack and serve its API on a unix socket (what `tug up -d` leaves running)
    ///
    /// Reacts to the engine's events: restarts replicas that exit (the first
    /// time at once, then with exponential backoff), replaces unhealthy ones
    /// and recreates missing ones, with a full resync every 30s as a safety
    /// net. Logs to <state dir>/<stack>/agent.log (rotated at 10 MiB, 5
    /// kept); `tug agent logs` shows it. For systemd units or containers.
    Agent {
        /// The log file's format
        #[arg(long, value_enum, default_value_t = tug_observe::log::LogFormat::Text)]
        log_format: tug_observe::log::LogFormat,
        #[command(subcommand)]
        action: Option<AgentAction>,
    },
    /// Show what tug and its agent did: builds, starts, health, restarts, rollbacks
    Events {
        /// Keep printing new events
        #[arg(short = 'F', long)]
        follow: bool,
        /// Only events after this id
        #[arg(long, default_value_t = 0)]
        since: i64,
    },
    /// List the stack's applied revisions, newest first
    History {
        /// Only revisions that changed this service
        service: Option<String>,
        /// How many revisions to show
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Go back to the previous good revision (or --to REVISION), images included
    Rollback {
        /// The revision to return to, from `tug history`
        #[arg(long, value_name = "REVISION")]
        to: Option<i64>,
        /// How long one service may take to turn healthy
        #[arg(long, default_value = "120s", value_parser = parse_duration)]
        timeout: std::time::Duration,
    },
    /// Set the number of replicas: `tug scale api=5 worker=2` (until the next `tug up`)
    Scale {
        /// SERVICE=REPLICAS pairs
        #[arg(required = true, value_name = "SERVICE=N")]
        pairs: Vec<String>,
        #[arg(long, default_value = "120s", value_parser = parse_duration)]
        timeout: std::time::Duration,
    },
    /// Restart replicas one at a time, each healthy before the next (all services by default)
    Restart {
        services: Vec<String>,
        #[arg(long, default_value = "120s", value_parser = parse_duration)]
        timeout: std::time::Duration,
    },
    /// Run the pipelines of tug.yaml and look at past runs
    #[command(subcommand)]
    Pipeline(commands::pipeline::PipelineCommand),
    /// The inner loop: bring the stack up, then rebuild and roll out each
    /// service with a `build:` when its sources change
    ///
    /// Watches what each build reads (a Rust package and the workspace
    /// packages it depends on by path; a Dockerfile's context), leaving out
    /// what .gitignore and .dockerignore leave out, `.git` and `target`.
    /// A change goes to the agent as `tug up -d` would send it: the image is
    /// rebuilt (incrementally: cargo's target directory is kept), and only a
    /// service whose image changed is replaced, through the health-gated
    /// rolling update. Each cycle prints its edit-to-serving latency; the
    /// logs of the rebuilt services follow. Ctrl-C stops watching; the
    /// stack keeps running (`tug down` stops it).
    Dev {
        /// Quiet time after the last change before a rebuild
        #[arg(long, default_value = "100ms", value_parser = parse_duration)]
        debounce: std::time::Duration,
        /// How long one service may take to turn healthy
        #[arg(long, default_value = "120s", value_parser = parse_duration)]
        timeout: std::time::Duration,
        /// Do not follow the services' logs
        #[arg(long)]
        no_logs: bool,
    },
    /// Check tug.yaml and report every problem with file:line:col
    Validate,
    /// Show tug's version and the engine it talks to (Docker or Podman, and
    /// its version; the process runtime with --runtime process)
    ///
    /// The engine is the one at DOCKER_HOST (default
    /// unix:///var/run/docker.sock); exit code 3 when it does not answer.
    Version,
    /// Print the resolved stack with every default filled in
    Config,
    /// Print the JSON Schema of tug.yaml (for editors and CI checks)
    Schema,
    /// Deploy the stack to Kubernetes: `tug deploy --kube [--context C] [--namespace N]`
    ///
    /// Renders as `tug render k8s` does, checks that the namespace exists,
    /// applies every object server-side (field manager `tug`), deletes the
    /// stack's objects that left tug.yaml (by label), and watches each
    /// Deployment's rollout; a failed one goes back to its previous
    /// ReplicaSet when update.auto_rollback is set.
    Deploy(commands::kube::DeployArgs),
    /// What `tug deploy --kube` would change: a server-side dry run
    Diff(commands::kube::DeployArgs),
    /// The stack's Deployments on Kubernetes: `tug status --kube`
    Status {
        #[command(flatten)]
        kube: commands::kube::KubeTarget,
    },
    /// Run the Kubernetes operator that reconciles Stack resources (tug.dev/v1alpha1)
    ///
    /// A Stack's spec is a tug.yaml document; its children are what `tug
    /// render k8s` gives, owned by the Stack, applied server-side, pruned by
    /// label, and deleted with it (finalizer). Status conditions say Ready,
    /// Progressing and Degraded. Replicas elect a leader with the Lease
    /// `tug-operator` in the operator's namespace; only the leader reconciles.
    Operator {
        #[command(subcommand)]
        cmd: Option<commands::kube::OperatorCommand>,
        /// The kubeconfig context [default: its current context, else in-cluster]
        #[arg(long, value_name = "CONTEXT")]
        context: Option<String>,
        /// Where /healthz and /metrics answer
        #[arg(long, value_name = "ADDR", default_value = "0.0.0.0:8080")]
        listen: std::net::SocketAddr,
    },
    /// Turn the stack into Kubernetes manifests or a Helm chart: `tug render k8s --out k8s/`
    #[command(subcommand)]
    Render(commands::kube::RenderCommand),
    /// Convert another tool's file into tug.yaml
    #[command(subcommand)]
    Import(ImportCommand),
    /// Build the Rust services of tug.yaml into OCI images, without a daemon
    Build(commands::build::BuildArgs),
    /// Work with images: `tug image inspect IMAGE`
    #[command(subcommand)]
    Image(commands::image::ImageCommand),
    /// Audit Cargo.lock files against RustSec, find secrets and risky configuration
    Scan(commands::scan::ScanArgs),
    /// A bill of materials (CycloneDX 1.5 or SPDX 2.3) of a Cargo.lock or an image
    Sbom(commands::sbom::SbomArgs),
    /// Make a signing key pair (tug.key, encrypted, and tug.pub), as cosign does
    Keygen(commands::sign::KeygenArgs),
    /// Sign an image in its registry (cosign's key-based format)
    Sign(commands::sign::SignArgs),
    /// Verify an image's signature with a public key
    Verify(commands::sign::VerifyArgs),
    /// Lint Dockerfiles (hadolint-compatible rule IDs, plus tug's own)
    Lint(commands::lint::LintArgs),
    /// Generate an optimized multi-stage Dockerfile and .dockerignore for a Rust workspace
    Dockerfile(commands::dockerfile::DockerfileArgs),
    /// Run GitHub Actions and GitLab CI files here; generate CI files that call tug
    #[command(subcommand)]
    Ci(commands::ci::CiCommand),
    /// Print shell completions: `tug completions bash > /etc/bash_completion.d/tug`
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Subcommand, Debug)]
enum AgentAction {
    /// Show the agent's log file
    Logs {
        /// Keep printing new lines
        #[arg(short = 'F', long)]
        follow: bool,
        /// Only the last N lines
        #[arg(long, value_name = "N", default_value_t = 100)]
        tail: usize,
    },
}

#[derive(Subcommand, Debug)]
enum ImportCommand {
    /// Convert a compose file; prints what could not be carried over and what differs
    ///
    /// `${VAR}` references are interpolated as compose does (environment,
    /// then the .env beside the compose file, or --env-file); in `env`
    /// values they are kept as written, and tug.yaml resolves them the same
    /// way when it is read. Services in profiles are left out unless
    /// enabled with --profile. `tug up -f compose.yaml` runs the same import
    /// in memory.
    Compose {
        /// The compose file [default: compose.yaml, compose.yml, docker-compose.yaml, docker-compose.yml]
        file: Option<std::path::PathBuf>,
        /// Where to write the stack file
        #[arg(long, value_name = "FILE", default_value = "tug.yaml")]
        out: std::path::PathBuf,
        /// Overwrite the output file when it exists
        #[arg(long)]
        force: bool,
    },
}

fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    s.parse::<tug_spec::Duration>().map(|d| d.std())
}

fn main() -> ExitCode {
    use clap::{CommandFactory, FromArgMatches};
    let matches = Cli::command().get_matches();
    let command_name = matches.subcommand_name().unwrap_or("").to_string();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    commands::spec::set_inputs(commands::spec::Inputs {
        env_files: cli.env_file.clone(),
        profiles: cli.profile.clone(),
    });
    let agent = matches!(cli.command, Command::Agent { action: None, .. });
    // The agent sets up its own, once it has read its stack.
    let telemetry = match (!agent).then(|| commands::spec::telemetry(cli.file.as_deref())) {
        Some(Ok(t)) => t,
        Some(Err(e)) => return exit::report(&e),
        None => None,
    };
    if !agent {
        tug_observe::log::init_cli(cli.verbose, telemetry.as_ref());
    }
    let root = tracing::info_span!("tug", command = %command_name).entered();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return exit::report(&anyhow::anyhow!("cannot start the async runtime: {e}")),
    };
    let file = cli.file.as_deref();
    commands::stack::set_runtime_flag(cli.runtime.map(|r| match r {
        RuntimeArg::Docker => tug_spec::RuntimeChoice::Docker,
        RuntimeArg::Process => tug_spec::RuntimeChoice::Process,
    }));
    let result = match cli.command {
        Command::Up { dry_run: true, .. } => {
            rt.block_on(commands::stack::dry_run(file, cli.output))
        }
        Command::Up {
            detach, timeout, ..
        } => rt.block_on(commands::stack::up(file, cli.output, timeout, detach)),
        Command::Down { kube, .. } if kube.kube => rt.block_on(commands::kube::kube(
            file,
            cli.output,
            commands::kube::KubeAction::Down,
            &kube,
            None,
        )),
        Command::Down { volumes, .. } => {
            rt.block_on(commands::stack::down(file, cli.output, volumes))
        }
        Command::Deploy(a) => rt.block_on(commands::kube::kube(
            file,
            cli.output,
            commands::kube::KubeAction::Deploy,
            &a.target,
            Some(&a.inputs),
        )),
        Command::Diff(a) => rt.block_on(commands::kube::kube(
            file,
            cli.output,
            commands::kube::KubeAction::Diff,
            &a.target,
            Some(&a.inputs),
        )),
        Command::Status { kube } => rt.block_on(commands::kube::kube(
            file,
            cli.output,
            commands::kube::KubeAction::Status,
            &kube,
            None,
        )),
        Command::Ps => rt.block_on(commands::stack::ps(file, cli.output)),
        Command::Routes => rt.block_on(commands::routes::routes(file, cli.output)),
        Command::Metrics => rt.block_on(commands::observe::metrics(file, cli.output)),
        Command::Observe(cmd) => rt.block_on(commands::observe::run(file, cli.output, cmd)),
        Command::Dashboard { open, token } => rt.block_on(commands::dashboard::dashboard(
            file, cli.output, open, token,
        )),
        Command::History { service, limit } => rt.block_on(commands::history::history(
            file,
            cli.output,
            service.as_deref(),
            limit,
        )),
        Command::Agent {
            log_format,
            action: None,
        } => rt.block_on(commands::agent::agent(file, log_format, cli.verbose)),
        Command::Agent {
            action: Some(AgentAction::Logs { follow, tail }),
            ..
        } => rt.block_on(commands::agent::logs(file, follow, tail)),
        Command::Events { follow, since } => {
            rt.block_on(commands::agent::events(file, cli.output, follow, since))
        }
        Command::Rollback { to, timeout } => {
            rt.block_on(commands::history::rollback(file, cli.output, to, timeout))
        }
        Command::Scale { pairs, timeout } => {
            rt.block_on(commands::history::scale(file, cli.output, &pairs, timeout))
        }
        Command::Restart { services, timeout } => rt.block_on(commands::history::restart(
            file, cli.output, &services, timeout,
        )),
        Command::Logs {
            service,
            follow,
            tail,
            grep,
            since,
            until,
            timestamps,
        } => rt.block_on(commands::stack::logs(
            file,
            cli.output,
            service.as_deref(),
            commands::stack::LogsArgs {
                follow,
                tail,
                grep,
                since,
                until,
                timestamps,
            },
        )),
        Command::Dev {
            debounce,
            timeout,
            no_logs,
        } => rt.block_on(commands::dev::dev(
            file, cli.output, debounce, timeout, !no_logs,
        )),
        Command::Pipeline(cmd) => rt.block_on(commands::pipeline::run(file, cli.output, cmd)),
        Command::Validate => commands::spec::validate(cli.file.as_deref(), cli.output),
        Command::Version => rt.block_on(commands::version::version(
            cli.output,
            matches!(cli.runtime, Some(RuntimeArg::Process)),
        )),
        Command::Config => commands::spec::config(cli.file.as_deref(), cli.output),
        Command::Schema => commands::spec::schema(),
        Command::Operator {
            cmd,
            context,
            listen,
        } => rt.block_on(commands::kube::operator(
            cli.output,
            cmd,
            context.as_deref(),
            listen,
        )),
        Command::Render(cmd) => commands::kube::render(cli.file.as_deref(), cli.output, cmd),
        Command::Import(ImportCommand::Compose { file, out, force }) => {
            commands::import::compose(file.as_deref(), &out, force, cli.output)
        }
        Command::Build(args) => commands::build::run(cli.file.as_deref(), cli.output, args),
        Command::Image(cmd) => commands::image::run(cli.output, cmd),
        Command::Scan(args) => commands::scan::run(args, cli.output),
        Command::Sbom(args) => commands::sbom::run(args),
        Command::Keygen(args) => commands::sign::keygen(args),
        Command::Sign(args) => commands::sign::sign_image(cli.output, args),
        Command::Verify(args) => commands::sign::verify(cli.output, args),
        Command::Lint(args) => commands::lint::run(args, cli.output),
        Command::Dockerfile(args) => commands::dockerfile::run(args, cli.file.as_deref()),
        Command::Ci(cmd) => commands::ci::run(cli.file.as_deref(), cmd),
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(shell, &mut Cli::command(), "tug", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
    };
    drop(root);
    drop(telemetry);
    match result {
        Ok(code) => code,
        Err(e) => exit::report(&e),
    }
}
