//! `tug lint`: lint Dockerfiles.

use crate::exit;
use crate::output::OutputFormat;
use anyhow::Result;
use std::io::{IsTerminal, Read};
use std::path::PathBuf;
use std::process::ExitCode;
use tug_image::lint::{self, output, Config, ContextFacts, Severity};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LintFormat {
    Tty,
    Json,
    Sarif,
    Checkstyle,
    Gitlab,
    /// Only with --list-rules
    Markdown,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Threshold {
    Error,
    Warning,
    Info,
    Style,
    None,
}

#[derive(clap::Args, Debug)]
pub struct LintArgs {
    /// Dockerfiles to lint [default: ./Dockerfile]; `-` reads standard input
    #[arg(value_name = "DOCKERFILE")]
    files: Vec<PathBuf>,
    /// Output format [default: tty, or json with -o json]
    #[arg(long, value_enum)]
    format: Option<LintFormat>,
    /// Exit 1 when a finding is at or above this severity [default: warning, or the config's failure-threshold]
    #[arg(long, value_enum)]
    failure_threshold: Option<Threshold>,
    /// Config file [default: .tug-lint.yaml, else .hadolint.yaml, in the current directory]
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Ignore a rule (repeatable), in addition to the config's `ignored`
    #[arg(long = "ignore", value_name = "RULE")]
    ignore: Vec<String>,
    /// Also run the rules hadolint leaves off (DL3057) and tug's own TUG rules
    /// (compiler in the final image, cache-busting COPY, secrets in ENV, root user ...).
    /// Without it the rule set is hadolint's default one.
    #[arg(long)]
    strict: bool,
    /// List every rule (table, or --format markdown / json)
    #[arg(long)]
    list_rules: bool,
}

fn threshold_from(s: &str) -> Option<Threshold> {
    Some(match s {
        "none" => Threshold::None,
        other => match Severity::parse(other)? {
            Severity::Error => Threshold::Error,
            Severity::Warning => Threshold::Warning,
            Severity::Info => Threshold::Info,
            Severity::Style => Threshold::Style,
        },
    })
}

pub fn run(args: LintArgs, out: OutputFormat) -> Result<ExitCode> {
    let format = args.format.unwrap_or(match out {
        OutputFormat::Json => LintFormat::Json,
        OutputFormat::Table => LintFormat::Tty,
    });
    if args.list_rules {
        match format {
            LintFormat::Markdown => print!("{}", output::rules_markdown()),
            LintFormat::Json => {
                let rules: Vec<_> = lint::RULES
                    .iter()
                    .map(|r| serde_json::json!({"id": r.id, "severity": r.severity, "profile": r.profile(), "message": r.message, "why": r.why}))
                    .collect();
                println!("{}", serde_json::to_string_pretty(&rules)?);
            }
            _ => print!("{}", output::rules_table()),
        }
        return Ok(ExitCode::SUCCESS);
    }
    let render_format = match format {
        LintFormat::Tty => output::Format::Tty,
        LintFormat::Json => output::Format::Json,
        LintFormat::Sarif => output::Format::Sarif,
        LintFormat::Checkstyle => output::Format::Checkstyle,
        LintFormat::Gitlab => output::Format::Gitlab,
        LintFormat::Markdown => {
            return Err(exit::fail(
                exit::INVALID_INPUT,
                "--format markdown is only for --list-rules: use tty, json, sarif, checkstyle or gitlab",
            ))
        }
    };

    let config_path = match &args.config {
        Some(p) => Some(p.clone()),
        None => Config::find(std::path::Path::new(".")),
    };
    let mut config = match &config_path {
        Some(p) => Config::load(p).map_err(|e| exit::fail(exit::INVALID_INPUT, e.to_string()))?,
        None => Config::default(),
    };
    config.ignored.extend(args.ignore.iter().cloned());
    config.strict |= args.strict;
    let threshold = match args.failure_threshold {
        Some(t) => t,
        None => config
            .failure_threshold
            .as_deref()
            .and_then(threshold_from)
            .unwrap_or(Threshold::Warning),
    };

    let files = if args.files.is_empty() {
        vec![PathBuf::from("Dockerfile")]
    } else {
        args.files
    };
    let mut findings = Vec::new();
    let mut unreadable = Vec::new();
    for path in &files {
        let is_stdin = path.as_os_str() == "-";
        let text = if is_stdin {
            let mut s = String::new();
            std::io::stdin().read_to_string(&mut s).map(|_| s)
        } else {
            std::fs::read(path).map(|b| String::from_utf8_lossy(&b).into_owned())
        };
        let text = match text {
            Ok(t) => t,
            Err(e) => {
                let hint = if path.as_os_str() == "Dockerfile" {
                    " (hint: pass the Dockerfile's path, or `-` to read standard input)"
                } else {
                    ""
                };
                unreadable.push(format!("{}: {e}{hint}", path.display()));
                continue;
            }
        };
        let facts = if is_stdin {
            ContextFacts::default()
        } else {
            ContextFacts::scan(path)
        };
        let name = path.display().to_string();
        let report = lint::lint(&text, &config, &facts);
        findings.extend(report.findings.into_iter().map(|mut f| {
            f.file = name.clone();
            f
        }));
    }

    let color = render_format == output::Format::Tty
        && std::io::stdout().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    print!("{}", output::render(&findings, render_format, color));

    if !unreadable.is_empty() {
        for u in &unreadable[..unreadable.len() - 1] {
            eprintln!("error: {u}");
        }
        return Err(exit::fail(
            exit::INVALID_INPUT,
            unreadable.last().cloned().unwrap_or_default(),
        ));
    }
    let limit = match threshold {
        Threshold::None => None,
        Threshold::Error => Some(Severity::Error),
        Threshold::Warning => Some(Severity::Warning),
        Threshold::Info => Some(Severity::Info),
        Threshold::Style => Some(Severity::Style),
    };
    let failed = limit.is_some_and(|t| findings.iter().any(|f| f.severity.at_least(t)));
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
