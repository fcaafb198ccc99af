//! Dockerfile syntax: instructions with line and column, parser directives,
//! line continuations, heredocs, exec and shell forms, stages and variable
//! substitution.
//!
//! ```
//! let parsed = tug_image::dockerfile::parse("FROM alpine:3.20 AS base\nRUN apk add --no-cache curl\n");
//! assert!(parsed.errors.is_empty());
//! assert_eq!(parsed.stages()[0].alias.as_deref(), Some("base"));
//! ```

mod expand;
pub mod heredoc;
mod parse;
pub mod shell;

pub use expand::expand;
pub use parse::{parse, split_words};

use serde::Serialize;
use std::collections::HashMap;
use std::fmt;

/// The result of parsing: what could be read, plus every error met on the way.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Parsed {
    pub instructions: Vec<Instruction>,
    pub directives: Vec<Directive>,
    pub comments: Vec<Comment>,
    pub errors: Vec<ParseError>,
    /// The escape character in force (`\` unless `# escape=` says otherwise).
    pub escape: char,
}

/// A parser directive at the top of the file: `# syntax=...`, `# escape=...`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Directive {
    pub name: String,
    pub value: String,
    pub line: usize,
}

/// A comment line (text after `#`, trimmed).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Comment {
    pub line: usize,
    pub text: String,
}

/// A line that could not be parsed, with what was expected there.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ParseError {
    pub line: usize,
    pub col: usize,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.line, self.col, self.message)
    }
}

/// Instruction keywords.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Keyword {
    From,
    Run,
    Cmd,
    Label,
    Maintainer,
    Expose,
    Env,
    Add,
    Copy,
    Entrypoint,
    Volume,
    User,
    Workdir,
    Arg,
    Onbuild,
    Stopsignal,
    Healthcheck,
    Shell,
}

impl Keyword {
    pub const ALL: [Keyword; 18] = [
        Keyword::From,
        Keyword::Run,
        Keyword::Cmd,
        Keyword::Label,
        Keyword::Maintainer,
        Keyword::Expose,
        Keyword::Env,
        Keyword::Add,
        Keyword::Copy,
        Keyword::Entrypoint,
        Keyword::Volume,
        Keyword::User,
        Keyword::Workdir,
        Keyword::Arg,
        Keyword::Onbuild,
        Keyword::Stopsignal,
        Keyword::Healthcheck,
        Keyword::Shell,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Keyword::From => "FROM",
            Keyword::Run => "RUN",
            Keyword::Cmd => "CMD",
            Keyword::Label => "LABEL",
            Keyword::Maintainer => "MAINTAINER",
            Keyword::Expose => "EXPOSE",
            Keyword::Env => "ENV",
            Keyword::Add => "ADD",
            Keyword::Copy => "COPY",
            Keyword::Entrypoint => "ENTRYPOINT",
            Keyword::Volume => "VOLUME",
            Keyword::User => "USER",
            Keyword::Workdir => "WORKDIR",
            Keyword::Arg => "ARG",
            Keyword::Onbuild => "ONBUILD",
            Keyword::Stopsignal => "STOPSIGNAL",
            Keyword::Healthcheck => "HEALTHCHECK",
            Keyword::Shell => "SHELL",
        }
    }

    pub fn from_word(word: &str) -> Option<Keyword> {
        Keyword::ALL
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(word))
    }
}

impl fmt::Display for Keyword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `--name=value` (or `--name`) before an instruction's arguments.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Flag {
    pub name: String,
    pub value: Option<String>,
}

/// A heredoc body attached to RUN, COPY or ADD.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Heredoc {
    pub name: String,
    /// `<<-EOF`: leading tabs are stripped.
    pub strip_tabs: bool,
    /// `<<"EOF"` or `<<'EOF'`: no expansion in the body.
    pub quoted: bool,
    pub body: String,
    /// Line of the first body line.
    pub line: usize,
}

/// Exec form (`["a", "b"]`) or shell form (`a b`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum CommandForm {
    Exec(Vec<String>),
    Shell(String),
}

/// Typed arguments of an instruction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Body {
    From {
        image: String,
        alias: Option<String>,
    },
    /// RUN, CMD, ENTRYPOINT.
    Command(CommandForm),
    /// SHELL (always exec form).
    Shell(Vec<String>),
    /// HEALTHCHECK CMD ... (`None` for HEALTHCHECK NONE).
    Healthcheck(Option<CommandForm>),
    /// ENV and LABEL.
    Pairs(Vec<(String, String)>),
    /// ARG name[=default] ...
    Arg(Vec<(String, Option<String>)>),
    /// ADD and COPY.
    Files {
        sources: Vec<String>,
        dest: String,
    },
    /// EXPOSE, VOLUME.
    Words(Vec<String>),
    /// USER, WORKDIR, STOPSIGNAL, MAINTAINER.
    Text(String),
    Onbuild(Box<Instruction>),
    /// Arguments that could not be read; the error is in `Parsed::errors`.
    Invalid,
}

/// One instruction, continuation lines joined.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Instruction {
    pub keyword: Keyword,
    pub line: usize,
    pub col: usize,
    /// Last line of the instruction, heredoc bodies included.
    pub end_line: usize,
    pub flags: Vec<Flag>,
    /// Argument text after the flags, continuations joined.
    pub args: String,
    pub heredocs: Vec<Heredoc>,
    pub body: Body,
    /// Index of the stage this instruction belongs to (`None` before the first FROM).
    pub stage: Option<usize>,
}

impl Instruction {
    pub fn flag(&self, name: &str) -> Option<&Flag> {
        self.flags.iter().find(|f| f.name == name)
    }

    pub fn flag_value(&self, name: &str) -> Option<&str> {
        self.flag(name).and_then(|f| f.value.as_deref())
    }

    /// The shell script a RUN (or shell-form CMD/ENTRYPOINT/HEALTHCHECK) runs:
    /// a heredoc body when the command is only a heredoc, else the command text
    /// with its heredocs appended so the shell parser sees them.
    pub fn script(&self) -> Option<String> {
        let form = match &self.body {
            Body::Command(f) => f,
            Body::Healthcheck(Some(f)) => f,
            _ => return None,
        };
        match form {
            CommandForm::Exec(words) => Some(
                words
                    .iter()
                    .map(|w| shell_quote(w))
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
            CommandForm::Shell(text) => {
                if let [only] = self.heredocs.as_slice() {
                    if heredoc_is_the_script(text, &only.name) {
                        return Some(only.body.clone());
                    }
                }
                let mut script = text.clone();
                for h in &self.heredocs {
                    script.push('\n');
                    script.push_str(&h.body);
                    if !h.body.ends_with('\n') && !h.body.is_empty() {
                        script.push('\n');
                    }
                    script.push_str(&h.name);
                }
                Some(script)
            }
        }
    }

    /// `RUN --mount=type=cache,target=...` targets.
    pub fn cache_mount_targets(&self) -> Vec<String> {
        self.flags
            .iter()
            .filter(|f| f.name == "mount")
            .filter_map(|f| f.value.as_deref())
            .filter(|v| {
                v.split(',')
                    .any(|kv| kv == "type=cache" || kv == "type=tmpfs")
            })
            .filter_map(|v| {
                v.split(',').find_map(|kv| {
                    kv.strip_prefix("target=")
                        .or_else(|| kv.strip_prefix("dst="))
                        .or_else(|| kv.strip_prefix("destination="))
                        .map(str::to_string)
                })
            })
            .collect()
    }
}

/// Shells whose standard input is a script (`RUN <<EOT bash`).
const SHELLS: [&str; 7] = ["sh", "bash", "ash", "dash", "zsh", "ksh", "mksh"];

/// Whether a RUN whose only heredoc is `name` runs the heredoc body as its
/// script: `RUN <<EOT`, or a shell reading it on standard input
/// (`RUN <<EOT bash`, `RUN <<-EOT sh -e`, `RUN bash -ex <<'EOT'`).
fn heredoc_is_the_script(text: &str, name: &str) -> bool {
    let mut words = Vec::new();
    let mut marker = false;
    for w in text.split_whitespace() {
        let bare = w.strip_prefix("<<").map(|m| {
            m.trim_start_matches('-')
                .trim_matches(|c| c == '"' || c == '\'')
        });
        match bare {
            Some(m) if m == name && !marker => marker = true,
            _ => words.push(w),
        }
    }
    if !marker {
        return false;
    }
    let Some((first, flags)) = words.split_first() else {
        return true;
    };
    let program = first.rsplit('/').next().unwrap_or(first);
    // Options only: `-c script` or a script file means the body is not the script.
    SHELLS.contains(&program)
        && flags.iter().all(|f| {
            let short_without_c = f.starts_with('-') && !f.starts_with("--") && !f.contains('c');
            short_without_c || f.starts_with("--") || matches!(*f, "pipefail" | "errexit")
        })
}

fn shell_quote(w: &str) -> String {
    if !w.is_empty()
        && w.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@+%^".contains(c))
    {
        w.to_string()
    } else {
        format!("'{}'", w.replace('\'', "'\\''"))
    }
}

/// A build stage: a FROM and the instructions up to the next FROM.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Stage {
    pub index: usize,
    /// The image with global ARG defaults substituted.
    pub image: String,
    /// True when every variable in the image reference had a value.
    pub image_resolved: bool,
    pub alias: Option<String>,
    pub line: usize,
    pub col: usize,
    /// Index of the FROM in `Parsed::instructions`.
    pub from: usize,
    /// Indices of the instructions after FROM in this stage.
    pub instructions: Vec<usize>,
}

impl Parsed {
    /// Global ARG defaults (ARGs before the first FROM).
    pub fn global_args(&self) -> HashMap<String, String> {
        let mut vars = HashMap::new();
        for ins in self.instructions.iter().filter(|i| i.stage.is_none()) {
            if let Body::Arg(args) = &ins.body {
                for (k, v) in args {
                    let (value, _) = expand(v.as_deref().unwrap_or(""), &vars);
                    vars.insert(k.clone(), value);
                }
            }
        }
        vars
    }

    pub fn stages(&self) -> Vec<Stage> {
        let globals = self.global_args();
        let mut stages: Vec<Stage> = Vec::new();
        for (idx, ins) in self.instructions.iter().enumerate() {
            match (&ins.body, ins.keyword) {
                (Body::From { image, alias }, _) => {
                    let (expanded, resolved) = expand(image, &globals);
                    stages.push(Stage {
                        index: stages.len(),
                        image: expanded,
                        image_resolved: resolved,
                        alias: alias.clone(),
                        line: ins.line,
                        col: ins.col,
                        from: idx,
                        instructions: Vec::new(),
                    });
                }
                (_, Keyword::From) => {
                    stages.push(Stage {
                        index: stages.len(),
                        image: String::new(),
                        image_resolved: false,
                        alias: None,
                        line: ins.line,
                        col: ins.col,
                        from: idx,
                        instructions: Vec::new(),
                    });
                }
                _ => {
                    if let Some(stage) = stages.last_mut() {
                        stage.instructions.push(idx);
                    }
                }
            }
        }
        stages
    }
}

/// An image reference split into its parts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ImageRef {
    /// Registry host when the reference names one (`ghcr.io`, `localhost:5000`).
    pub registry: Option<String>,
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

impl ImageRef {
    pub fn parse(reference: &str) -> ImageRef {
        let (rest, digest) = match reference.split_once('@') {
            Some((r, d)) => (r, Some(d.to_string())),
            None => (reference, None),
        };
        let (name, tag) = match rest.rfind(':') {
            Some(i) if !rest[i + 1..].contains('/') => {
                (&rest[..i], Some(rest[i + 1..].to_string()))
            }
            _ => (rest, None),
        };
        let (registry, repository) = match name.split_once('/') {
            Some((first, tail))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (Some(first.to_string()), tail.to_string())
            }
            _ => (None, name.to_string()),
        };
        ImageRef {
            registry,
            repository,
            tag,
            digest,
        }
    }
}
