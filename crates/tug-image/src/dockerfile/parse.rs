//! The line-level parser. Works on `&str`, never panics, and keeps going
//! after an error so the linter can report on the rest of the file.

use super::{
    Body, CommandForm, Comment, Directive, Flag, Heredoc, Instruction, Keyword, ParseError, Parsed,
};

/// Parses a Dockerfile.
pub fn parse(text: &str) -> Parsed {
    let lines: Vec<&str> = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect();
    let mut p = Parsed {
        escape: '\\',
        ..Parsed::default()
    };
    let mut in_directives = true;
    let mut stage: Option<usize> = None;
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let trimmed = line.trim_start();
        if in_directives {
            if let Some(d) = directive(trimmed, i + 1) {
                if p.directives.iter().any(|x| x.name == d.name) {
                    in_directives = false;
                } else {
                    if d.name == "escape" {
                        match d.value.as_str() {
                            "\\" => p.escape = '\\',
                            "`" => p.escape = '`',
                            other => p.errors.push(ParseError {
                                line: i + 1,
                                col: line.find(other).map_or(1, |c| c + 1),
                                message: format!(
                                    "invalid escape character `{other}`: expected `\\` or a backtick"
                                ),
                            }),
                        }
                    }
                    p.directives.push(d);
                    i += 1;
                    continue;
                }
            } else {
                in_directives = false;
            }
        }
        if trimmed.is_empty() {
            i += 1;
            continue;
        }
        if let Some(c) = trimmed.strip_prefix('#') {
            p.comments.push(Comment {
                line: i + 1,
                text: c.trim().to_string(),
            });
            i += 1;
            continue;
        }
        let start = i;
        let col = line.len() - trimmed.len() + 1;
        let (logical, next) = logical_line(&lines, i, p.escape, &mut p.comments);
        i = next;
        let mut ins = instruction(&logical, start + 1, col, p.escape, &mut p.errors);
        if let Some(ins) = ins.as_mut() {
            if matches!(ins.keyword, Keyword::Run | Keyword::Copy | Keyword::Add) {
                let markers = heredoc_markers(&ins.args);
                for (name, strip_tabs, quoted) in markers {
                    let body_line = i + 1;
                    let mut body = String::new();
                    let mut closed = false;
                    while i < lines.len() {
                        let l = lines[i];
                        i += 1;
                        let cmp = if strip_tabs {
                            l.trim_start_matches('\t')
                        } else {
                            l
                        };
                        if cmp == name {
                            closed = true;
                            break;
                        }
                        body.push_str(cmp);
                        body.push('\n');
                    }
                    if !closed {
                        p.errors.push(ParseError {
                            line: start + 1,
                            col,
                            message: format!(
                                "unterminated heredoc: expected a line `{name}` to close `<<{name}`"
                            ),
                        });
                    }
                    ins.heredocs.push(Heredoc {
                        name,
                        strip_tabs,
                        quoted,
                        body,
                        line: body_line,
                    });
                }
            }
            ins.end_line = i.max(start + 1);
            if ins.keyword == Keyword::From {
                stage = Some(stage.map_or(0, |s| s + 1));
            }
            ins.stage = stage;
            p.instructions.push(ins.clone());
        }
    }
    p
}

fn directive(trimmed: &str, line: usize) -> Option<Directive> {
    let rest = trimmed.strip_prefix('#')?.trim_start();
    let (name, value) = rest.split_once('=')?;
    let name = name.trim_end();
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return None;
    }
    let name = name.to_ascii_lowercase();
    if !matches!(name.as_str(), "syntax" | "escape" | "check") {
        return None;
    }
    Some(Directive {
        name,
        value: value.trim().to_string(),
        line,
    })
}

/// Joins continuation lines. Comment and blank lines inside a continuation
/// are dropped, as the builder does.
fn logical_line(
    lines: &[&str],
    mut i: usize,
    escape: char,
    comments: &mut Vec<Comment>,
) -> (String, usize) {
    let mut out = String::new();
    let mut first = true;
    while i < lines.len() {
        let line = if first {
            lines[i].trim_start()
        } else {
            lines[i]
        };
        first = false;
        let t = line.trim_end();
        i += 1;
        match t.strip_suffix(escape) {
            Some(head) => {
                out.push_str(head);
                while i < lines.len() {
                    let next = lines[i].trim_start();
                    if let Some(c) = next.strip_prefix('#') {
                        comments.push(Comment {
                            line: i + 1,
                            text: c.trim().to_string(),
                        });
                    } else if !next.is_empty() {
                        break;
                    }
                    i += 1;
                }
            }
            None => {
                out.push_str(line);
                return (out, i);
            }
        }
    }
    (out, i)
}

/// Finds `<<EOF`, `<<-EOF`, `<<"EOF"` markers outside quotes (not `<<<`).
fn heredoc_markers(text: &str) -> Vec<(String, bool, bool)> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut quote: Option<char> = None;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if let Some(q) = quote {
            if c == q {
                quote = None;
            } else if c == '\\' && q == '"' {
                i += 1;
            }
            i += 1;
            continue;
        }
        match c {
            '\'' | '"' => quote = Some(c),
            '\\' => i += 1,
            '<' if chars.get(i + 1) == Some(&'<')
                && chars.get(i + 2) != Some(&'<')
                && (i == 0 || chars[i - 1] != '<') =>
            {
                let mut j = i + 2;
                let strip = chars.get(j) == Some(&'-');
                if strip {
                    j += 1;
                }
                let q = match chars.get(j) {
                    Some('"') | Some('\'') => {
                        j += 1;
                        Some(chars[j - 1])
                    }
                    _ => None,
                };
                let s = j;
                while j < chars.len()
                    && !chars[j].is_whitespace()
                    && !"<>|;&\"'()".contains(chars[j])
                {
                    j += 1;
                }
                if j > s {
                    let name: String = chars[s..j].iter().collect();
                    if let Some(q) = q {
                        if chars.get(j) == Some(&q) {
                            j += 1;
                        }
                    }
                    out.push((name, strip, q.is_some()));
                }
                i = j;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    out
}

fn err(errors: &mut Vec<ParseError>, line: usize, col: usize, message: impl Into<String>) {
    errors.push(ParseError {
        line,
        col,
        message: message.into(),
    });
}

fn instruction(
    logical: &str,
    line: usize,
    col: usize,
    escape: char,
    errors: &mut Vec<ParseError>,
) -> Option<Instruction> {
    let text = logical.trim();
    let kw_end = text.find(char::is_whitespace).unwrap_or(text.len());
    let word = &text[..kw_end];
    let Some(keyword) = Keyword::from_word(word) else {
        let names: Vec<&str> = Keyword::ALL.iter().map(|k| k.as_str()).collect();
        err(
            errors,
            line,
            col,
            format!(
                "unknown instruction `{word}`: expected one of {}",
                names.join(", ")
            ),
        );
        return None;
    };
    let mut rest = text[kw_end..].trim_start();
    let mut flags = Vec::new();
    if matches!(
        keyword,
        Keyword::From | Keyword::Run | Keyword::Copy | Keyword::Add | Keyword::Healthcheck
    ) {
        while let Some(f) = rest.strip_prefix("--") {
            let end = f.find(char::is_whitespace).unwrap_or(f.len());
            let (name, value) = match f[..end].split_once('=') {
                Some((n, v)) => (n.to_string(), Some(unquote(v))),
                None => (f[..end].to_string(), None),
            };
            if name.is_empty() {
                break;
            }
            flags.push(Flag { name, value });
            rest = f[end..].trim_start();
        }
    }
    let args = rest.to_string();
    let args_col = col + text.len().saturating_sub(rest.len());
    let body = body(keyword, rest, line, args_col, escape, errors);
    Some(Instruction {
        keyword,
        line,
        col,
        end_line: line,
        flags,
        args,
        heredocs: Vec::new(),
        body,
        stage: None,
    })
}

/// `text` without a leading ASCII `prefix` in any case; `None` when it does
/// not start with it (never slices inside a multi-byte character).
fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

fn unquote(v: &str) -> String {
    let v = v.trim();
    if v.len() >= 2
        && ((v.starts_with('"') && v.ends_with('"')) || (v.starts_with('\'') && v.ends_with('\'')))
    {
        v[1..v.len() - 1].to_string()
    } else {
        v.to_string()
    }
}

fn json_array(rest: &str) -> Option<Vec<String>> {
    let t = rest.trim();
    if !t.starts_with('[') {
        return None;
    }
    serde_json::from_str::<Vec<String>>(t).ok()
}

fn command_form(rest: &str) -> CommandForm {
    match json_array(rest) {
        Some(words) => CommandForm::Exec(words),
        None => CommandForm::Shell(rest.to_string()),
    }
}

fn body(
    keyword: Keyword,
    rest: &str,
    line: usize,
    col: usize,
    escape: char,
    errors: &mut Vec<ParseError>,
) -> Body {
    let empty = rest.trim().is_empty();
    let requires = |errors: &mut Vec<ParseError>, what: &str| {
        err(errors, line, col, format!("{keyword} requires {what}"));
        Body::Invalid
    };
    match keyword {
        Keyword::From => {
            let words = split_words(rest, escape);
            match words.as_slice() {
                [] => requires(errors, "an image: FROM image[:tag] [AS name]"),
                [image] => Body::From {
                    image: image.clone(),
                    alias: None,
                },
                [image, as_kw, alias] if as_kw.eq_ignore_ascii_case("as") => Body::From {
                    image: image.clone(),
                    alias: Some(alias.clone()),
                },
                _ => {
                    err(
                        errors,
                        line,
                        col,
                        "FROM takes an image and an optional `AS name`: expected FROM image[:tag] [AS name]",
                    );
                    Body::Invalid
                }
            }
        }
        Keyword::Run if empty => requires(errors, "a command"),
        Keyword::Run | Keyword::Cmd | Keyword::Entrypoint => Body::Command(command_form(rest)),
        Keyword::Shell => match json_array(rest) {
            Some(words) if !words.is_empty() => Body::Shell(words),
            _ => requires(
                errors,
                "the JSON form: SHELL [\"executable\", \"parameters\"]",
            ),
        },
        Keyword::Healthcheck => {
            let t = rest.trim();
            if t.eq_ignore_ascii_case("none") {
                Body::Healthcheck(None)
            } else if let Some(cmd) = strip_prefix_ignore_case(t, "cmd") {
                let cmd = cmd.trim_start();
                if cmd.is_empty() {
                    requires(errors, "a command after CMD")
                } else {
                    Body::Healthcheck(Some(command_form(cmd)))
                }
            } else {
                requires(errors, "CMD <command> or NONE")
            }
        }
        Keyword::Env | Keyword::Label => {
            let words = split_words(rest, escape);
            if words.is_empty() {
                return requires(errors, "at least one key=value pair");
            }
            if !words[0].contains('=') {
                // Legacy `ENV key value with spaces`.
                if keyword == Keyword::Env && words.len() >= 2 {
                    let key = words[0].clone();
                    let after = rest.trim_start()
                        [rest.trim_start().find(char::is_whitespace).unwrap_or(0)..]
                        .trim()
                        .to_string();
                    return Body::Pairs(vec![(key, unquote(&after))]);
                }
                return requires(errors, "key=value pairs");
            }
            let mut pairs = Vec::new();
            for w in words {
                match w.split_once('=') {
                    Some((k, v)) if !k.is_empty() => pairs.push((k.to_string(), v.to_string())),
                    _ => {
                        err(
                            errors,
                            line,
                            col,
                            format!("{keyword}: `{w}` is not a key=value pair"),
                        );
                        return Body::Invalid;
                    }
                }
            }
            Body::Pairs(pairs)
        }
        Keyword::Arg => {
            let words = split_words(rest, escape);
            if words.is_empty() {
                return requires(errors, "a name: ARG name[=default]");
            }
            Body::Arg(
                words
                    .into_iter()
                    .map(|w| match w.split_once('=') {
                        Some((k, v)) => (k.to_string(), Some(v.to_string())),
                        None => (w, None),
                    })
                    .collect(),
            )
        }
        Keyword::Add | Keyword::Copy => {
            let words = json_array(rest).unwrap_or_else(|| split_words(rest, escape));
            if words.len() < 2 {
                return requires(errors, "at least a source and a destination");
            }
            let (dest, sources) = words.split_last().map_or_else(
                || (String::new(), Vec::new()),
                |(d, s)| (d.clone(), s.to_vec()),
            );
            Body::Files { sources, dest }
        }
        Keyword::Expose | Keyword::Volume => {
            let words = json_array(rest).unwrap_or_else(|| split_words(rest, escape));
            if words.is_empty() {
                return requires(errors, "at least one argument");
            }
            Body::Words(words)
        }
        Keyword::User | Keyword::Workdir | Keyword::Stopsignal | Keyword::Maintainer => {
            if empty {
                return requires(errors, "an argument");
            }
            Body::Text(unquote(rest))
        }
        Keyword::Onbuild => {
            if empty {
                return requires(errors, "an instruction");
            }
            let mut inner_errors = Vec::new();
            match instruction(rest, line, col, escape, &mut inner_errors) {
                Some(ins) => {
                    errors.extend(inner_errors);
                    Body::Onbuild(Box::new(ins))
                }
                None => {
                    errors.extend(inner_errors);
                    Body::Invalid
                }
            }
        }
    }
}

/// Splits instruction arguments into words the way the builder does:
/// whitespace separates, quotes group and are removed, the escape
/// character escapes the next character.
pub fn split_words(text: &str, escape: char) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match quote {
            Some(q) if c == q => quote = None,
            Some('"') if c == escape => {
                if let Some(n) = chars.next() {
                    if n != '"' && n != escape && n != '$' {
                        cur.push(c);
                    }
                    cur.push(n);
                }
            }
            Some(_) => cur.push(c),
            None if c == '"' || c == '\'' => {
                quote = Some(c);
                in_word = true;
            }
            None if c == escape => {
                in_word = true;
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            None if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            None => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_directives_continuations_and_forms() {
        let text = "# syntax=docker/dockerfile:1\n# escape=`\nFROM debian:12 AS build\nRUN apt-get update && `\n    # a comment inside\n    apt-get install -y curl\nCMD [\"curl\", \"-s\"]\n";
        let p = parse(text);
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        assert_eq!(p.directives.len(), 2);
        assert_eq!(p.escape, '`');
        assert_eq!(p.instructions.len(), 3);
        let run = &p.instructions[1];
        assert_eq!((run.line, run.col, run.end_line), (4, 1, 6));
        assert_eq!(
            run.body,
            Body::Command(CommandForm::Shell(
                "apt-get update &&     apt-get install -y curl".into()
            ))
        );
        assert_eq!(
            p.instructions[2].body,
            Body::Command(CommandForm::Exec(vec!["curl".into(), "-s".into()]))
        );
        assert_eq!(p.comments[0].line, 5);
    }

    #[test]
    fn directive_only_at_top() {
        let p = parse("FROM a\n# escape=`\n");
        assert!(p.directives.is_empty());
        assert_eq!(p.escape, '\\');
    }

    #[test]
    fn heredocs_single_multiple_and_dash() {
        let text = "FROM a\nRUN <<EOF\napt-get update\nEOF\nCOPY <<one.txt <<-\"TWO\" /dst/\nfirst\none.txt\n\tsecond\n\tTWO\nUSER 1000\n";
        let p = parse(text);
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        let run = &p.instructions[1];
        assert_eq!(run.heredocs[0].body, "apt-get update\n");
        assert_eq!(run.script().as_deref(), Some("apt-get update\n"));
        assert_eq!(run.end_line, 4);
        let copy = &p.instructions[2];
        assert_eq!(copy.heredocs.len(), 2);
        assert_eq!(copy.heredocs[1].body, "second\n");
        assert!(copy.heredocs[1].quoted && copy.heredocs[1].strip_tabs);
        assert_eq!(p.instructions[3].keyword, Keyword::User);
        assert_eq!(p.instructions[3].line, 10);
    }

    #[test]
    fn heredoc_fed_to_a_shell_is_the_script() {
        for text in [
            "FROM a\nRUN <<EOT bash\napt-get install x\nEOT\n",
            "FROM a\nRUN <<-EOT sh -e\n\tapt-get install x\n\tEOT\n",
            "FROM a\nRUN /bin/bash -ex <<'EOT'\napt-get install x\nEOT\n",
            "FROM a\nRUN bash -o pipefail <<EOT\napt-get install x\nEOT\n",
        ] {
            let p = parse(text);
            assert_eq!(
                p.instructions[1].script().as_deref(),
                Some("apt-get install x\n"),
                "{text}"
            );
        }
        for text in [
            "FROM a\nRUN <<EOT python3\nprint(1)\nEOT\n",
            "FROM a\nRUN <<EOT bash -c 'echo hi'\nx\nEOT\n",
            "FROM a\nRUN cat <<EOT > /etc/x\nx\nEOT\n",
        ] {
            let p = parse(text);
            assert_ne!(p.instructions[1].script().as_deref(), Some("x\n"), "{text}");
            assert_ne!(p.instructions[1].script().as_deref(), Some("print(1)\n"));
        }
    }

    #[test]
    fn here_string_is_not_a_heredoc() {
        let p = parse("FROM a\nRUN cat <<< \"x\" && echo '<<EOF'\nUSER 1\n");
        assert!(p.errors.is_empty());
        assert!(p.instructions[1].heredocs.is_empty());
    }

    #[test]
    fn unterminated_heredoc_is_an_error() {
        let p = parse("FROM a\nRUN <<EOF\necho hi\n");
        assert_eq!(p.errors.len(), 1);
        assert!(p.errors[0].message.contains("unterminated heredoc"));
        assert_eq!(p.instructions.len(), 2);
    }

    #[test]
    fn flags_stages_and_pairs() {
        let p = parse("ARG V=3.20\nFROM --platform=$BUILDPLATFORM alpine:${V} AS b\nCOPY --from=b --chown=1:1 --link a b /c/\nRUN --mount=type=cache,target=/root/.cache pip install x\nENV A=1 B=\"two words\"\nENV OLD some value\nLABEL \"k\"=v\n");
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        let st = p.stages();
        assert_eq!(st[0].image, "alpine:3.20");
        assert!(st[0].image_resolved);
        assert_eq!(
            p.instructions[1].flag_value("platform"),
            Some("$BUILDPLATFORM")
        );
        let copy = &p.instructions[2];
        assert_eq!(copy.flag_value("from"), Some("b"));
        assert!(copy.flag("link").is_some());
        assert_eq!(
            copy.body,
            Body::Files {
                sources: vec!["a".into(), "b".into()],
                dest: "/c/".into()
            }
        );
        assert_eq!(
            p.instructions[3].cache_mount_targets(),
            vec!["/root/.cache"]
        );
        assert_eq!(
            p.instructions[4].body,
            Body::Pairs(vec![
                ("A".into(), "1".into()),
                ("B".into(), "two words".into())
            ])
        );
        assert_eq!(
            p.instructions[5].body,
            Body::Pairs(vec![("OLD".into(), "some value".into())])
        );
        assert_eq!(
            p.instructions[6].body,
            Body::Pairs(vec![("k".into(), "v".into())])
        );
        assert_eq!(p.instructions[0].stage, None);
        assert_eq!(p.instructions[6].stage, Some(0));
    }

    #[test]
    fn errors_carry_position_and_expectation() {
        let p = parse("FROM a\n  FORM b\nCOPY x\nHEALTHCHECK --interval=5s curl\nRUN echo ok\n");
        let msgs: Vec<String> = p.errors.iter().map(|e| e.to_string()).collect();
        assert!(
            msgs[0].starts_with("2:3: unknown instruction `FORM`"),
            "{msgs:?}"
        );
        assert!(msgs[1].starts_with("3:6: COPY requires"), "{msgs:?}");
        assert!(msgs[2].contains("CMD <command> or NONE"), "{msgs:?}");
        // The rest is still parsed.
        assert_eq!(p.instructions.last().map(|i| i.keyword), Some(Keyword::Run));
    }

    #[test]
    fn onbuild_wraps_an_instruction() {
        let p = parse("FROM a\nONBUILD RUN echo hi\n");
        match &p.instructions[1].body {
            Body::Onbuild(inner) => assert_eq!(inner.keyword, Keyword::Run),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn odd_input_never_panics() {
        for text in [
            "",
            "\\",
            "FROM",
            "RUN \\",
            "# escape=x",
            "RUN <<",
            "RUN <<-'",
            "COPY [\"a\"",
            "ENV =",
            "FROM a AS",
            "\u{feff}FROM ä:ü",
            "RUN ${",
            "ONBUILD ONBUILD",
            "LABEL a=\"unterminated",
            "EXPOSE",
            "RUN <<A <<B\nA\n",
            "HEALTHCHECK éé",
            "HEALTHCHECK é",
            "HEALTHCHECK ü CMD true",
            "HEALTHCHECK CMDé",
            "ONBUILD HEALTHCHECK ééé",
        ] {
            let _ = parse(text);
        }
    }

    #[test]
    fn healthcheck_with_multibyte_argument_is_an_error_not_a_panic() {
        // Found by fuzzing dockerfile_parse: `t[..3]` cut inside `é`.
        let p = parse("FROM scratch\nHEALTHCHECK éé\n");
        assert_eq!(p.errors.len(), 1, "{:?}", p.errors);
        assert!(p.errors[0].message.contains("CMD <command> or NONE"));
        let p = parse("FROM scratch\nHEALTHCHECK cMd échoue\n");
        assert!(p.errors.is_empty(), "{:?}", p.errors);
    }

    #[test]
    fn words_respect_quotes_and_escape() {
        assert_eq!(
            split_words(r#"a "b c" 'd e' f\ g"#, '\\'),
            vec!["a", "b c", "d e", "f g"]
        );
        assert_eq!(split_words("a` b", '`'), vec!["a b"]);
    }
}
