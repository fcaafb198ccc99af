//! RUN commands as a shell sees them: simple commands with their arguments,
//! grouped into pipelines, parsed with `brush-parser`.
//!
//! ```
//! let s = tug_image::dockerfile::shell::split("apt-get update && apt-get install -y curl | tee log").unwrap();
//! assert_eq!(s.commands.len(), 3);
//! assert_eq!(s.commands[1].args, ["install", "-y", "curl"]);
//! assert!(s.commands[1].in_pipe());
//! ```

use super::heredoc::{self, HereDoc};
use brush_parser::ast;
use serde::Serialize;

/// One simple command: `name args...`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Command {
    pub name: String,
    pub args: Vec<String>,
    /// Which pipeline (counted from 0 in source order) the command is in.
    pub pipeline: usize,
    /// Number of commands in that pipeline (1 when not piped).
    pub pipeline_len: usize,
    /// The name and arguments as written, quotes included (empty after the
    /// plain word split).
    pub raw: Vec<String>,
    /// A failure of the command is handled: it is followed by `&&` or `||`,
    /// or it is the condition of `if`, `while` or `until`.
    pub guarded: bool,
}

impl Command {
    /// Program name without a directory (`/usr/bin/apt-get` → `apt-get`).
    pub fn program(&self) -> &str {
        self.name.rsplit('/').next().unwrap_or(&self.name)
    }

    pub fn is(&self, program: &str) -> bool {
        self.program() == program
    }

    pub fn in_pipe(&self) -> bool {
        self.pipeline_len > 1
    }

    /// Whether a flag is present. `-y` also matches bundled short flags (`-qy`);
    /// `--flag` also matches `--flag=value`.
    pub fn has_flag(&self, flag: &str) -> bool {
        self.args.iter().take_while(|a| *a != "--").any(|a| {
            if a == flag {
                return true;
            }
            if let Some(long) = flag.strip_prefix("--") {
                return a
                    .strip_prefix("--")
                    .and_then(|x| x.strip_prefix(long))
                    .is_some_and(|r| r.starts_with('='));
            }
            if let Some(short) = flag.strip_prefix('-') {
                if short.len() == 1 && a.starts_with('-') && !a.starts_with("--") && a.len() > 2 {
                    return a[1..].chars().all(|c| c.is_ascii_alphabetic())
                        && a[1..].contains(short);
                }
            }
            false
        })
    }

    pub fn has_any_flag(&self, flags: &[&str]) -> bool {
        flags.iter().any(|f| self.has_flag(f))
    }

    /// Arguments that are not flags. `takes_value` lists flags whose next
    /// argument is their value (`-o opt`), which is then skipped too.
    pub fn positional(&self, takes_value: &[&str]) -> Vec<&str> {
        let mut out = Vec::new();
        let mut skip = false;
        let mut after_dashes = false;
        for a in &self.args {
            if skip {
                skip = false;
                continue;
            }
            if after_dashes {
                out.push(a.as_str());
                continue;
            }
            if a == "--" {
                after_dashes = true;
                continue;
            }
            if a.starts_with('-') && a.len() > 1 {
                if takes_value.contains(&a.as_str()) {
                    skip = true;
                }
                continue;
            }
            out.push(a.as_str());
        }
        out
    }

    /// The first positional argument (the subcommand for apt-get, pip, npm ...).
    pub fn subcommand(&self, takes_value: &[&str]) -> Option<&str> {
        self.positional(takes_value).first().copied()
    }
}

/// The commands of a script in source order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Script {
    pub commands: Vec<Command>,
    /// Number of pipelines seen.
    pub pipelines: usize,
    /// Here-document bodies of the script (not parsed as commands).
    pub heredocs: Vec<HereDoc>,
    /// Variables the script gives a value that cannot split or glob
    /// (`x=/opt`, not `x=$(cmd)`), loop variables over plain words, and
    /// `read` variables.
    pub assigned: Vec<String>,
    /// `set -e` (or `set -o errexit`) appears in the script.
    pub errexit: bool,
}

impl Script {
    pub fn any(&self, f: impl Fn(&Command) -> bool) -> bool {
        self.commands.iter().any(f)
    }

    pub fn find<'a>(
        &'a self,
        f: impl Fn(&Command) -> bool + 'a,
    ) -> impl Iterator<Item = &'a Command> {
        self.commands.iter().filter(move |c| f(c))
    }

    pub fn has_pipe(&self) -> bool {
        self.commands.iter().any(Command::in_pipe)
    }
}

/// A script the shell parser rejected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("shell syntax: {0}")]
pub struct ShellError(pub String);

/// Parses a POSIX/bash script into its simple commands.
///
/// Bounded in time and memory on any input: scripts over
/// [`MAX_SCRIPT_BYTES`] or nested deeper than [`MAX_PAREN_DEPTH`] are
/// refused, and here-documents are cut out before brush-parser sees the
/// script (see [`heredoc`]).
pub fn split(script: &str) -> Result<Script, ShellError> {
    let stripped = prepare(script)?;
    parse_stripped(stripped)
}

/// Scripts longer than this are not parsed as shell (the word split still runs).
pub const MAX_SCRIPT_BYTES: usize = 64 * 1024;

fn prepare(script: &str) -> Result<heredoc::Stripped, ShellError> {
    if script.len() > MAX_SCRIPT_BYTES {
        return Err(ShellError(format!(
            "script longer than {} KiB",
            MAX_SCRIPT_BYTES / 1024
        )));
    }
    heredoc::strip(script).map_err(|e| ShellError(format!("not parsed: {}", e.0)))
}

fn parse_stripped(stripped: heredoc::Stripped) -> Result<Script, ShellError> {
    // brush-parser is third-party code: a panic on strange input must not
    // take the linter down with it, nor print a backtrace at the user.
    quiet_panics_in_parser();
    // The PEG parser backtracks exponentially on deeply nested parentheses,
    // and nested expansions recurse.
    if paren_depth(&stripped.text) > MAX_PAREN_DEPTH {
        return Err(ShellError(format!(
            "parentheses or braces nested deeper than {MAX_PAREN_DEPTH} levels"
        )));
    }
    let heredocs = stripped.heredocs;
    let program = brush_parse(stripped.text).map_err(ShellError)?;
    let mut w = Walker::default();
    for cc in &program.complete_commands {
        w.list(cc);
    }
    let errexit = w.commands.iter().any(|c| {
        c.is("set")
            && (c.args.iter().any(|a| {
                a.starts_with('-') && !a.starts_with("--") && a.contains('e') && a != "-o"
            }) || c.args.iter().any(|a| a == "errexit"))
    });
    for c in &w.commands {
        if c.is("read") {
            w.assigned.extend(
                c.positional(&["-p", "-d", "-n", "-t", "-u", "-a"])
                    .iter()
                    .map(|s| s.to_string()),
            );
        }
    }
    Ok(Script {
        commands: w.commands,
        pipelines: w.pipelines,
        heredocs,
        assigned: w.assigned,
        errexit,
    })
}

/// brush-parser on text already cleared of here-documents and deep nesting.
fn brush_parse(text: String) -> Result<ast::Program, String> {
    IN_PARSER.with(|f| f.set(true));
    let parsed = std::panic::catch_unwind(move || {
        let options = brush_parser::ParserOptions {
            sh_mode: false,
            ..Default::default()
        };
        let mut parser = brush_parser::Parser::new(std::io::Cursor::new(text), &options);
        parser.parse_program().map_err(|e| e.to_string())
    });
    IN_PARSER.with(|f| f.set(false));
    match parsed {
        Ok(r) => r,
        Err(_) => Err("the shell parser failed on this input".into()),
    }
}

/// The bodies of `$(...)` and `` `...` `` command substitutions in a word as
/// written (not `$((...))`, not inside single quotes).
fn substitutions(word: &str) -> Vec<String> {
    let chars: Vec<char> = word.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let mut double = false;
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 1,
            '"' => double = !double,
            '\'' if !double => {
                i += 1;
                while i < chars.len() && chars[i] != '\'' {
                    i += 1;
                }
            }
            '`' => {
                let start = i + 1;
                let mut j = start;
                while j < chars.len() && chars[j] != '`' {
                    if chars[j] == '\\' {
                        j += 1;
                    }
                    j += 1;
                }
                let end = j.min(chars.len());
                out.push(chars[start..end].iter().collect());
                i = end;
            }
            '$' if chars.get(i + 1) == Some(&'(') && chars.get(i + 2) != Some(&'(') => {
                let start = i + 2;
                let mut depth = 1usize;
                let mut j = start;
                let mut quote: Option<char> = None;
                while j < chars.len() {
                    let c = chars[j];
                    match quote {
                        Some(q) if c == q => quote = None,
                        Some('"') if c == '\\' => j += 1,
                        Some(_) => {}
                        None => match c {
                            '\\' => j += 1,
                            '\'' | '"' => quote = Some(c),
                            '(' => depth += 1,
                            ')' => {
                                depth -= 1;
                                if depth == 0 {
                                    break;
                                }
                            }
                            _ => {}
                        },
                    }
                    j += 1;
                }
                let end = j.min(chars.len());
                out.push(chars[start..end].iter().collect());
                i = end;
            }
            _ => {}
        }
        i += 1;
    }
    out
}

const MAX_PAREN_DEPTH: usize = 10;

/// Command substitutions are walked this many levels deep.
const MAX_SUBSTITUTION_DEPTH: usize = 3;

fn paren_depth(script: &str) -> usize {
    let (mut depth, mut max) = (0usize, 0usize);
    for c in script.chars() {
        match c {
            '(' | '{' => {
                depth += 1;
                max = max.max(depth);
            }
            ')' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

thread_local! {
    static IN_PARSER: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Wraps the panic hook once so panics inside the shell parser stay silent
/// (they become a `ShellError`); every other panic reaches the previous hook.
fn quiet_panics_in_parser() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !IN_PARSER.with(|f| f.get()) {
                previous(info);
            }
        }));
    });
}

#[derive(Default)]
struct Walker {
    commands: Vec<Command>,
    pipelines: usize,
    depth: usize,
    assigned: Vec<String>,
    /// Inside an if/while/until condition or before `&&`/`||`.
    guarded: bool,
    substitution_depth: usize,
}

impl Walker {
    fn list(&mut self, list: &ast::CompoundList) {
        for item in &list.0 {
            self.and_or(&item.0);
        }
    }

    fn and_or(&mut self, l: &ast::AndOrList) {
        let outer = self.guarded;
        self.guarded = outer || !l.additional.is_empty();
        self.pipeline(&l.first);
        let n = l.additional.len();
        for (i, next) in l.additional.iter().enumerate() {
            self.guarded = outer || i + 1 < n;
            match next {
                ast::AndOr::And(p) | ast::AndOr::Or(p) => self.pipeline(p),
            }
        }
        self.guarded = outer;
    }

    /// A list whose failure is handled by its caller (a condition).
    fn guarded_list(&mut self, list: &ast::CompoundList) {
        let outer = self.guarded;
        self.guarded = true;
        self.list(list);
        self.guarded = outer;
    }

    /// A list whose failure is not handled (a body).
    fn body_list(&mut self, list: &ast::CompoundList) {
        let outer = self.guarded;
        self.guarded = false;
        self.list(list);
        self.guarded = outer;
    }

    fn pipeline(&mut self, p: &ast::Pipeline) {
        let id = self.pipelines;
        self.pipelines += 1;
        let len = p.seq.len();
        for c in &p.seq {
            self.command(c, id, len);
        }
    }

    fn command(&mut self, c: &ast::Command, pipeline: usize, len: usize) {
        // Deeply nested input (fuzzers make it) stops here rather than overflowing.
        if self.depth > 64 {
            return;
        }
        self.depth += 1;
        match c {
            ast::Command::Simple(s) => self.simple(s, pipeline, len),
            ast::Command::Compound(cc, _) => self.compound(cc),
            ast::Command::Function(f) => self.compound(&f.body.0),
            ast::Command::ExtendedTest(..) => {}
        }
        self.depth -= 1;
    }

    fn compound(&mut self, cc: &ast::CompoundCommand) {
        match cc {
            ast::CompoundCommand::BraceGroup(b) => self.body_list(&b.list),
            ast::CompoundCommand::Subshell(s) => self.body_list(&s.list),
            ast::CompoundCommand::ForClause(f) => {
                // ShellCheck trusts the loop variable only over plain words
                // (`for x in a b`), not `$(...)`, `$VAR`, globs or `"$@"`.
                let values = f.values.as_deref().unwrap_or_default();
                for w in values {
                    self.substitutions_in(&w.value);
                }
                if f.values.is_some() && values.iter().all(|w| plain_word(&w.value)) {
                    self.assigned.push(f.variable_name.clone());
                }
                self.body_list(&f.body.list)
            }
            ast::CompoundCommand::ArithmeticForClause(f) => self.body_list(&f.body.list),
            ast::CompoundCommand::CaseClause(c) => {
                self.substitutions_in(&c.value.value);
                for item in &c.cases {
                    if let Some(cmd) = &item.cmd {
                        self.body_list(cmd);
                    }
                }
            }
            ast::CompoundCommand::IfClause(i) => {
                self.guarded_list(&i.condition);
                self.body_list(&i.then);
                for e in i.elses.iter().flatten() {
                    if let Some(c) = &e.condition {
                        self.guarded_list(c);
                    }
                    self.body_list(&e.body);
                }
            }
            ast::CompoundCommand::WhileClause(w) | ast::CompoundCommand::UntilClause(w) => {
                self.guarded_list(&w.0);
                self.body_list(&w.1.list);
            }
            ast::CompoundCommand::Arithmetic(_) | ast::CompoundCommand::Coprocess(_) => {}
        }
    }

    /// Commands inside `$(...)` in a word, as hadolint (through ShellCheck) sees them.
    fn substitutions_in(&mut self, word: &str) {
        if self.substitution_depth >= MAX_SUBSTITUTION_DEPTH
            || !(word.contains("$(") || word.contains('`'))
        {
            return;
        }
        for body in substitutions(word) {
            if let Ok(program) = brush_parse(body) {
                self.substitution_depth += 1;
                for cc in &program.complete_commands {
                    self.list(cc);
                }
                self.substitution_depth -= 1;
            }
        }
    }

    fn simple(&mut self, s: &ast::SimpleCommand, pipeline: usize, len: usize) {
        for item in s.prefix.iter().flat_map(|x| x.0.iter()) {
            if let ast::CommandPrefixOrSuffixItem::AssignmentWord(a, w) = item {
                self.assign(a);
                self.substitutions_in(&w.value);
            }
        }
        let words: Vec<&str> = s
            .word_or_name
            .iter()
            .map(|w| w.value.as_str())
            .chain(
                s.suffix
                    .iter()
                    .flat_map(|x| x.0.iter())
                    .filter_map(|i| match i {
                        ast::CommandPrefixOrSuffixItem::Word(w)
                        | ast::CommandPrefixOrSuffixItem::AssignmentWord(_, w) => {
                            Some(w.value.as_str())
                        }
                        _ => None,
                    }),
            )
            .collect();
        for w in words {
            self.substitutions_in(w);
        }
        let Some(name) = &s.word_or_name else {
            return;
        };
        let mut args = Vec::new();
        let mut raw = vec![name.value.clone()];
        for item in s.suffix.iter().flat_map(|x| x.0.iter()) {
            match item {
                ast::CommandPrefixOrSuffixItem::Word(w) => {
                    raw.push(w.value.clone());
                    args.push(brush_parser::unquote_str(&w.value))
                }
                ast::CommandPrefixOrSuffixItem::AssignmentWord(a, w) => {
                    self.assign(a);
                    raw.push(w.value.clone());
                    args.push(brush_parser::unquote_str(&w.value))
                }
                ast::CommandPrefixOrSuffixItem::ProcessSubstitution(_, sub) => self.list(&sub.list),
                ast::CommandPrefixOrSuffixItem::IoRedirect(_) => {}
            }
        }
        self.commands.push(Command {
            name: brush_parser::unquote_str(&name.value),
            args,
            pipeline,
            pipeline_len: len,
            raw,
            guarded: self.guarded,
        });
    }

    fn assign(&mut self, a: &ast::Assignment) {
        let ast::AssignmentName::VariableName(name) = &a.name else {
            return;
        };
        // ShellCheck trusts a variable only when its value is a plain word.
        let plain = match &a.value {
            ast::AssignmentValue::Scalar(w) => plain_word(&w.value),
            ast::AssignmentValue::Array(_) => false,
        };
        if plain {
            self.assigned.push(name.clone());
        }
    }
}

/// `text` cut at each separator outside quotes: a `|` inside
/// `powershell -Command "dir | where ..."` is not a pipe. The separators are
/// tried in order, so `||` must come before `|` when both are given.
fn split_unquoted<'a>(text: &'a str, separators: &[&str]) -> Vec<&'a str> {
    let mut out = Vec::new();
    let (mut start, mut i) = (0, 0);
    let (mut single, mut double) = (false, false);
    let bytes = text.as_bytes();
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if !single => i += 1,
            b'\'' if !double => single = !single,
            b'"' if !single => double = !double,
            _ if !single && !double => {
                let rest = &bytes[i..];
                if let Some(sep) = separators.iter().find(|s| rest.starts_with(s.as_bytes())) {
                    out.push(&text[start..i]);
                    i += sep.len();
                    start = i;
                    continue;
                }
            }
            _ => {}
        }
        i += 1;
    }
    out.push(&text[start..]);
    out
}

/// A word with no expansion, glob or whitespace once unquoted.
fn plain_word(word: &str) -> bool {
    let v = brush_parser::unquote_str(word);
    !word.contains(['$', '`']) && !v.contains(|c: char| c.is_whitespace() || "*?[".contains(c))
}

/// Splits a script into commands, falling back to a plain word split on
/// `&&`, `||`, `;` and `|` outside quotes when the shell parser rejects it,
/// so rules still see something for scripts in other shells.
pub fn split_lenient(script: &str) -> Script {
    // Here-document bodies are data, not commands, when they can be cut out.
    let (text, heredocs) = match prepare(script) {
        Ok(stripped) => match parse_stripped(stripped.clone()) {
            Ok(s) => return s,
            Err(_) => (stripped.text, stripped.heredocs),
        },
        Err(_) => (script.chars().take(MAX_SCRIPT_BYTES).collect(), Vec::new()),
    };
    let mut commands = Vec::new();
    let mut pipelines = 0;
    for and_or in split_unquoted(&text, &["\n", ";", "&&", "||"]) {
        let parts = split_unquoted(and_or, &["|"]);
        let len = parts.len();
        for part in parts {
            let words = super::split_words(part, '\\');
            if let Some((name, args)) = words.split_first() {
                commands.push(Command {
                    name: name.clone(),
                    args: args.to_vec(),
                    pipeline: pipelines,
                    pipeline_len: len,
                    ..Command::default()
                });
            }
        }
        pipelines += 1;
    }
    Script {
        commands,
        pipelines,
        heredocs,
        ..Script::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sees_commands_in_lists_pipes_and_compounds() {
        let s =
            split("set -eux; if [ -f x ]; then cd /tmp && make; fi; curl -fsSL u | sh -s -- -y")
                .unwrap();
        let names: Vec<&str> = s.commands.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["set", "[", "cd", "make", "curl", "sh"]);
        assert!(s.commands[4].in_pipe() && s.commands[5].in_pipe());
        assert!(!s.commands[2].in_pipe());
    }

    #[test]
    fn quotes_are_removed_and_substrings_do_not_match() {
        let s = split("echo \"apt-get install foo\" && pip3 install 'requests==2.0'").unwrap();
        assert_eq!(s.commands.len(), 2);
        assert_eq!(s.commands[0].name, "echo");
        assert_eq!(s.commands[1].args, ["install", "requests==2.0"]);
    }

    #[test]
    fn flags_bundled_long_and_positional() {
        let s = split("apt-get -qy -o Dpkg::Options::=x install --no-install-recommends=true curl")
            .unwrap();
        let c = &s.commands[0];
        assert!(c.has_flag("-y") && c.has_flag("-q") && !c.has_flag("-x"));
        assert!(c.has_flag("--no-install-recommends"));
        assert_eq!(c.positional(&["-o"]), ["install", "curl"]);
    }

    #[test]
    fn heredoc_in_script() {
        let s = split("cat > /etc/x <<EOF\nhello\nEOF\napt-get update\n").unwrap();
        assert_eq!(s.commands.len(), 2);
    }

    #[test]
    fn a_panic_in_the_shell_parser_becomes_an_error() {
        // brush-parser 0.4 unwraps on a script in this file (found by the fuzzer).
        let text = include_str!("../../tests/data/brush-panic.Dockerfile");
        let parsed = crate::dockerfile::parse(text);
        let errors = parsed
            .instructions
            .iter()
            .filter_map(|i| i.script())
            .filter(|s| split(s).is_err())
            .count();
        assert!(errors > 0);
    }

    #[test]
    fn deep_nesting_is_refused_quickly() {
        // Found by the fuzzer: took minutes in the PEG parser.
        let text = format!("{}\\ (F -f x<z\n{}", "(".repeat(15), "(".repeat(14));
        assert!(split(&text).is_err());
        assert!(split("echo $(( (1 + 2) * 3 ))").is_ok());
    }

    #[test]
    fn heredoc_in_nested_substitution_found_by_fuzzing_brush() {
        // brush-parser 0.4 panics on this one when it sees the `<<`.
        let text = include_str!("../../../../fuzz/seeds/shell_split/brush-heredoc-panic");
        let _ = split(text);
        let _ = split_lenient(text);
    }

    #[test]
    fn heredocs_that_make_brush_allocate_without_bound_are_refused() {
        // Both make brush-parser 0.4's tokenizer loop in remove_here_end_tag,
        // pushing a token per turn (over 1 GB within seconds): a here-document
        // whose tag is blank, at the end of the input. Found by fuzzing.
        for seed in [
            &include_bytes!("../../../../fuzz/seeds/shell_split/brush-heredoc-oom")[..],
            &include_bytes!("../../../../fuzz/seeds/shell_split/brush-heredoc-oom-substitution")[..],
        ] {
            let text = std::str::from_utf8(seed).unwrap();
            assert!(split(text).is_err(), "{text:?}");
            let _ = split_lenient(text);
        }
        // The same through a Dockerfile.
        let report = crate::lint::lint(
            "FROM debian:12\nRUN x=$(cat <<-  \n",
            &crate::lint::Config::default(),
            &crate::lint::ContextFacts::default(),
        );
        let _ = report.findings;
    }

    #[test]
    fn long_scripts_are_not_shell_parsed_but_still_split() {
        let script = "apt-get install -y curl && ".repeat(MAX_SCRIPT_BYTES / 20) + "true";
        assert!(split(&script).is_err());
        assert!(split_lenient(&script).any(|c| c.is("apt-get")));
    }

    #[test]
    fn deep_parentheses_found_by_fuzzing_brush_are_refused() {
        let text = include_bytes!("../../../../fuzz/seeds/shell_split/brush-deep-parens-timeout");
        assert!(split(&String::from_utf8_lossy(text)).is_err());
    }

    #[test]
    fn commands_in_substitutions_are_seen() {
        let s = split(
            "deps=\"$(scanelf -n /usr | tr , '\\n' | sort -u)\"; cd `ls -d php* | head -1` && make",
        )
        .unwrap();
        let names: Vec<&str> = s.commands.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["scanelf", "tr", "sort", "ls", "head", "cd", "make"]);
        assert!(s.has_pipe());
        // Single quotes and arithmetic are not substitutions.
        let s = split("echo '$(rm -rf /)' $((1 + 2))").unwrap();
        assert_eq!(s.commands.len(), 1);
    }

    #[test]
    fn lenient_split_leaves_quoted_separators_alone() {
        // cmd's `for /D` is no sh; the `|` is PowerShell's, inside quotes.
        let s = split_lenient(
            "a && (for /D %i in (x) do rmdir \"%i\") && powershell -Command \"dir | where x; y\" || z",
        );
        assert!(!s.has_pipe(), "{:?}", s.commands);
        assert!(s.any(|c| c.is("powershell") && c.args == ["-Command", "dir | where x; y"]));
        assert!(s.any(|c| c.is("z")));
        let s = split_lenient("(for /D %i in (x) do y) && ls | sort");
        assert!(s.any(|c| c.is("sort") && c.in_pipe()));
    }

    #[test]
    fn for_and_case_words_are_searched_for_commands() {
        let s = split("for f in $(ls | sort); do echo \"$f\"; done").unwrap();
        assert!(s.any(|c| c.is("sort") && c.in_pipe()), "{:?}", s.commands);
        let s = split("case $(uname -m | tr A-Z a-z) in x86_64) echo;; esac").unwrap();
        assert!(s.any(|c| c.is("tr") && c.in_pipe()), "{:?}", s.commands);
    }

    #[test]
    fn loop_variable_is_trusted_only_over_plain_words() {
        assert!(split("for f in a b; do :; done")
            .unwrap()
            .assigned
            .contains(&"f".into()));
        for script in [
            "for f in $(ls); do :; done",
            "for f in ${X}; do :; done",
            "for f in *; do :; done",
            "for f; do :; done",
        ] {
            let s = split(script).unwrap();
            assert!(!s.assigned.contains(&"f".into()), "{script}");
        }
    }

    #[test]
    fn bad_syntax_is_an_error_and_lenient_split_still_works() {
        assert!(split("if then fi (").is_err());
        let s = split_lenient("if then fi ( && apt-get install x");
        assert!(s.any(|c| c.is("apt-get")));
    }
}
