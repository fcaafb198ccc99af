//! The Dockerfile linter: a static registry of rules run over a parsed file.
//!
//! Rule IDs follow hadolint's (`DL....`, and ShellCheck's `SC....` for RUN
//! scripts) where the meaning is the same, so existing `# hadolint ignore=`
//! comments and `.hadolint.yaml` files keep working; tug's own rules are
//! `TUG...`.
//!
//! The default profile is hadolint's: its rules, with the ones hadolint
//! leaves off (DL3057) off. `strict` (`tug lint --strict`) adds those and
//! tug's own rules; a rule named in the config's `override` runs either way.
//!
//! ```
//! use tug_image::lint::{lint, Config, ContextFacts};
//! let report = lint("FROM debian\nRUN apt-get install curl\n", &Config::default(), &ContextFacts::default());
//! assert!(report.findings.iter().any(|f| f.rule == "DL3006"));
//! ```

mod config;
mod context;
pub mod output;
mod rules;

pub use config::{Config, ConfigError, LabelType, Overrides};
pub use context::ContextFacts;
pub use rules::{Example, RULES};

use crate::dockerfile::shell::{self, Script};
use crate::dockerfile::{parse, Body, Instruction, Keyword, Parsed, Stage};
use serde::{Deserialize, Serialize};
use std::fmt;

/// How bad a finding is, from most to least severe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
    Info,
    Style,
}

impl Severity {
    pub const ALL: [Severity; 4] = [
        Severity::Error,
        Severity::Warning,
        Severity::Info,
        Severity::Style,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "info",
            Severity::Style => "style",
        }
    }

    pub fn parse(s: &str) -> Option<Severity> {
        Severity::ALL
            .into_iter()
            .find(|x| x.as_str().eq_ignore_ascii_case(s))
    }

    /// True when `self` is as severe as `threshold` or more.
    pub fn at_least(self, threshold: Severity) -> bool {
        self <= threshold
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A registered rule: data, plus the function that checks it.
pub struct Rule {
    pub id: &'static str,
    pub severity: Severity,
    /// What is wrong, as shown in a finding.
    pub message: &'static str,
    /// One line on why it matters.
    pub why: &'static str,
    pub check: fn(&Ctx, &mut Hits),
    /// A Dockerfile on which the rule fires, and one on which it does not.
    pub fires: Example,
    pub passes: Example,
}

impl fmt::Debug for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rule").field("id", &self.id).finish()
    }
}

/// hadolint rules that hadolint leaves off unless asked for.
pub const OFF_BY_DEFAULT: &[&str] = &["DL3057"];

/// Which profile turns a rule on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// On by default, as in hadolint.
    Default,
    /// Only with `--strict` (or when named in the config's `override`).
    Strict,
}

impl Rule {
    pub fn profile(&self) -> Profile {
        if self.id.starts_with("TUG") || OFF_BY_DEFAULT.contains(&self.id) {
            Profile::Strict
        } else {
            Profile::Default
        }
    }

    /// Whether the rule runs under `config`.
    pub fn enabled(&self, config: &Config) -> bool {
        !config.is_ignored(self.id)
            && (self.profile() == Profile::Default
                || config.strict
                || config.severity_of(self.id).is_some())
    }
}

/// Looks a rule up by ID.
pub fn rule(id: &str) -> Option<&'static Rule> {
    RULES.iter().find(|r| r.id.eq_ignore_ascii_case(id))
}

/// One problem found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub file: String,
    pub line: usize,
    pub col: usize,
    pub rule: &'static str,
    pub severity: Severity,
    pub message: String,
    pub why: &'static str,
}

/// Findings for one file, in line order.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    pub findings: Vec<Finding>,
}

/// Where a check found something; the message detail is optional.
#[derive(Default)]
pub struct Hits(Vec<(usize, usize, Option<String>)>);

impl Hits {
    pub fn at(&mut self, ins: &Instruction) {
        self.0.push((ins.line, ins.col, None));
    }
    pub fn with(&mut self, ins: &Instruction, detail: impl Into<String>) {
        self.0.push((ins.line, ins.col, Some(detail.into())));
    }
    pub fn pos(&mut self, line: usize, col: usize, detail: Option<String>) {
        self.0.push((line, col, detail));
    }
}

/// A RUN instruction with its parsed script (ONBUILD RUN included).
pub struct Run<'a> {
    /// The RUN itself (the inner one for ONBUILD RUN).
    pub ins: &'a Instruction,
    /// Where to report: the outer instruction.
    pub at: &'a Instruction,
    pub index: usize,
    pub script: Script,
}

/// What every check sees.
pub struct Ctx<'a> {
    pub parsed: &'a Parsed,
    pub stages: Vec<Stage>,
    pub runs: Vec<Run<'a>>,
    pub config: &'a Config,
    pub facts: &'a ContextFacts,
}

impl<'a> Ctx<'a> {
    pub fn new(parsed: &'a Parsed, config: &'a Config, facts: &'a ContextFacts) -> Ctx<'a> {
        let mut runs = Vec::new();
        for (index, ins) in parsed.instructions.iter().enumerate() {
            let inner = match &ins.body {
                Body::Onbuild(inner) => inner.as_ref(),
                _ => ins,
            };
            if inner.keyword == Keyword::Run {
                if let Some(script) = inner.script() {
                    runs.push(Run {
                        ins: inner,
                        at: ins,
                        index,
                        script: shell::split_lenient(&script),
                    });
                }
            }
        }
        Ctx {
            parsed,
            stages: parsed.stages(),
            runs,
            config,
            facts,
        }
    }

    pub fn ins(&self, idx: usize) -> &'a Instruction {
        &self.parsed.instructions[idx]
    }

    /// Instructions of a stage, FROM excluded.
    pub fn stage_ins<'s>(&'s self, stage: &'s Stage) -> impl Iterator<Item = &'a Instruction> + 's {
        let all = &self.parsed.instructions;
        stage.instructions.iter().map(move |&i| &all[i])
    }

    pub fn final_stage(&self) -> Option<&Stage> {
        self.stages.last()
    }

    /// The stage a FROM builds on when it names an earlier stage.
    pub fn parent(&self, stage: &Stage) -> Option<&Stage> {
        self.stages[..stage.index].iter().rev().find(|s| {
            s.alias
                .as_deref()
                .is_some_and(|a| a.eq_ignore_ascii_case(&stage.image))
        })
    }

    /// The stage and the earlier stages it builds on, nearest first.
    pub fn lineage<'s>(&'s self, stage: &'s Stage) -> Vec<&'s Stage> {
        let mut out = vec![stage];
        let mut cur = stage;
        while let Some(p) = self.parent(cur) {
            if out.len() > self.stages.len() {
                break;
            }
            out.push(p);
            cur = p;
        }
        out
    }

    /// Whether a stage ends up in the final image (it is the final stage or one it builds on).
    pub fn ships(&self, stage: Option<usize>) -> bool {
        let (Some(s), Some(last)) = (stage, self.final_stage()) else {
            return false;
        };
        self.lineage(last).iter().any(|x| x.index == s)
    }

    /// ENV, ARG and other instructions of the run's stage before it, global ARGs included.
    pub fn stage_ins_upto<'s>(
        &'s self,
        run: &'s Run<'a>,
    ) -> impl Iterator<Item = &'a Instruction> + 's {
        let all = &self.parsed.instructions;
        all[..run.index]
            .iter()
            .filter(move |i| i.stage.is_none() || i.stage == run.at.stage)
    }

    pub fn runs_in(&self, stage: usize) -> impl Iterator<Item = &Run<'a>> {
        self.runs.iter().filter(move |r| r.at.stage == Some(stage))
    }
}

/// Lints one Dockerfile's text.
pub fn lint(text: &str, config: &Config, facts: &ContextFacts) -> Report {
    let parsed = parse(text);
    lint_parsed(&parsed, config, facts)
}

/// Lints an already parsed file.
pub fn lint_parsed(parsed: &Parsed, config: &Config, facts: &ContextFacts) -> Report {
    let ctx = Ctx::new(parsed, config, facts);
    let ignores = InlineIgnores::new(parsed);
    let mut findings = Vec::new();
    for rule in RULES {
        if !rule.enabled(config)
            || ignores
                .global
                .iter()
                .any(|g| g.eq_ignore_ascii_case(rule.id))
        {
            continue;
        }
        let mut hits = Hits::default();
        (rule.check)(&ctx, &mut hits);
        for (line, col, detail) in hits.0 {
            if ignores.ignored(line, rule.id) {
                continue;
            }
            let message = match detail {
                Some(d) => format!("{}: {d}", rule.message),
                None => rule.message.to_string(),
            };
            findings.push(Finding {
                file: String::new(),
                line,
                col,
                rule: rule.id,
                severity: config.severity_of(rule.id).unwrap_or(rule.severity),
                message,
                why: rule.why,
            });
        }
    }
    findings.sort_by(|a, b| (a.line, a.col, a.rule).cmp(&(b.line, b.col, b.rule)));
    findings.dedup();
    Report { findings }
}

/// `# tug ignore=DL3008,DL3009` / `# hadolint ignore=...` on the lines right
/// above an instruction, and `# hadolint global ignore=...` anywhere.
struct InlineIgnores {
    /// (line of the instruction, rule IDs)
    by_line: Vec<(usize, Vec<String>)>,
    global: Vec<String>,
}

impl InlineIgnores {
    fn new(parsed: &Parsed) -> InlineIgnores {
        let mut pending: Vec<(usize, Vec<String>)> = Vec::new();
        let mut global = Vec::new();
        for c in &parsed.comments {
            let mut words = c.text.split_whitespace();
            let Some(tool) = words.next() else { continue };
            if !tool.eq_ignore_ascii_case("tug") && !tool.eq_ignore_ascii_case("hadolint") {
                continue;
            }
            let mut next = words.next();
            let is_global = next == Some("global");
            if is_global {
                next = words.next();
            }
            let Some(ids) = next.and_then(|w| w.strip_prefix("ignore=")) else {
                continue;
            };
            let ids: Vec<String> = ids
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect();
            if is_global {
                global.extend(ids);
            } else {
                pending.push((c.line, ids));
            }
        }
        // Bind each ignore comment to the first instruction after it when only
        // comments or blank lines sit between them.
        let mut by_line = Vec::new();
        for (line, ids) in pending {
            if let Some(ins) = parsed.instructions.iter().find(|i| i.line > line) {
                let between_is_code = parsed
                    .instructions
                    .iter()
                    .any(|i| i.line < ins.line && i.end_line > line);
                if !between_is_code {
                    by_line.push((ins.line, ids));
                }
            }
        }
        InlineIgnores { by_line, global }
    }

    fn ignored(&self, line: usize, id: &str) -> bool {
        self.by_line
            .iter()
            .any(|(l, ids)| *l == line && ids.iter().any(|x| x.eq_ignore_ascii_case(id)))
    }
}

/// Highest severity among findings.
pub fn worst(findings: &[Finding]) -> Option<Severity> {
    findings.iter().map(|f| f.severity).min()
}
