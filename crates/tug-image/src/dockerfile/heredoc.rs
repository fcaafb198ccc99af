//! Here-documents taken out of a shell script before the shell parser sees it.
//!
//! brush-parser 0.4's tokenizer can allocate without bound on some `<<-`
//! here-documents (a 137-byte script reached gigabytes in under a second), so
//! no `<<` here-document operator ever reaches it: each `<<TAG` becomes a
//! `</dev/null` redirect and its body is cut out and kept here. Where this
//! scanner cannot tell for sure how the shell would read a `<<` (inside double
//! quotes, arithmetic, comments) the script is refused and the caller falls
//! back to the plain word split. The scan is one pass over the characters.

/// A here-document body cut out of a script.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct HereDoc {
    pub tag: String,
    /// `<<-TAG`: leading tabs stripped from body lines and the terminator.
    pub strip_tabs: bool,
    /// `<<'TAG'` or `<<"TAG"`: the body is not expanded.
    pub quoted: bool,
    pub body: String,
    /// Line (1-based, in the script) of the first body line.
    pub line: usize,
    /// A line equal to the tag closed the body.
    pub terminated: bool,
    /// The body line before the terminator ends in `\`, so the shell joins the
    /// terminator to it and the here-document does not end there.
    pub continued_into_terminator: bool,
}

/// The script with here-documents taken out.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stripped {
    pub text: String,
    pub heredocs: Vec<HereDoc>,
}

/// Why a script was not stripped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refused(pub &'static str);

#[derive(Clone, Copy, PartialEq, Eq)]
enum Ctx {
    /// Plain shell text (also inside `$(...)`, backticks and `${...}`).
    Code,
    Single,
    Double,
    Arith,
}

struct Pending {
    tag: String,
    strip_tabs: bool,
    quoted: bool,
}

/// Takes the here-documents out of `script`.
pub fn strip(script: &str) -> Result<Stripped, Refused> {
    let chars: Vec<char> = script.chars().collect();
    let mut out = String::with_capacity(script.len());
    let mut heredocs = Vec::new();
    let mut pending: Vec<Pending> = Vec::new();
    // Context stack; `(` counts close `$(` / `((` inside arithmetic and code.
    let mut stack: Vec<(Ctx, usize)> = vec![(Ctx::Code, 0)];
    let mut line = 1usize;
    let mut i = 0usize;
    let mut word_start = true;
    while i < chars.len() {
        let c = chars[i];
        let (ctx, _) = *stack.last().unwrap_or(&(Ctx::Code, 0));
        match ctx {
            Ctx::Single => {
                out.push(c);
                if c == '\'' {
                    stack.pop();
                }
                if c == '\n' {
                    line += 1;
                    if !pending.is_empty() {
                        return Err(Refused("a quoted newline before a here-document body"));
                    }
                }
                i += 1;
                continue;
            }
            Ctx::Double => {
                match c {
                    '\\' => {
                        out.push(c);
                        if let Some(&n) = chars.get(i + 1) {
                            out.push(n);
                            if n == '\n' {
                                line += 1;
                            }
                        }
                        i += 2;
                        continue;
                    }
                    '"' => {
                        stack.pop();
                    }
                    '$' if matches!(chars.get(i + 1), Some('(') | Some('{')) => {
                        out.push(c);
                        i += 1;
                        stack.push(open(&chars, &mut i, &mut out));
                        word_start = true;
                        continue;
                    }
                    '`' => stack.push((Ctx::Code, usize::MAX)),
                    '<' if chars.get(i + 1) == Some(&'<') => {
                        return Err(Refused("`<<` inside double quotes"));
                    }
                    '\n' => {
                        line += 1;
                        if !pending.is_empty() {
                            return Err(Refused("a quoted newline before a here-document body"));
                        }
                    }
                    _ => {}
                }
                out.push(c);
                i += 1;
                continue;
            }
            Ctx::Arith => {
                match c {
                    '(' => bump(&mut stack, 1),
                    // `$((`/`((` ends at `))` outside inner parentheses.
                    ')' if close(&mut stack) && chars.get(i + 1) == Some(&')') => {
                        stack.pop();
                        out.push_str("))");
                        i += 2;
                        continue;
                    }
                    '<' if chars.get(i + 1) == Some(&'<') => {
                        return Err(Refused("`<<` in arithmetic"));
                    }
                    '\n' => line += 1,
                    _ => {}
                }
                out.push(c);
                i += 1;
                continue;
            }
            Ctx::Code => {}
        }
        // Code.
        match c {
            '\\' => {
                out.push(c);
                if let Some(&n) = chars.get(i + 1) {
                    out.push(n);
                    if n == '\n' {
                        line += 1;
                    }
                }
                i += 2;
                word_start = false;
                continue;
            }
            '\'' => stack.push((Ctx::Single, 0)),
            '"' => stack.push((Ctx::Double, 0)),
            '$' if matches!(chars.get(i + 1), Some('(') | Some('{')) => {
                out.push(c);
                i += 1;
                stack.push(open(&chars, &mut i, &mut out));
                word_start = true;
                continue;
            }
            '$' if chars.get(i + 1) == Some(&'\'') => {
                // $'...': backslash escapes inside; only `\'` matters here.
                out.push_str("$'");
                i += 2;
                while i < chars.len() && chars[i] != '\'' {
                    if chars[i] == '\\' && i + 1 < chars.len() {
                        out.push(chars[i]);
                        i += 1;
                    }
                    if chars[i] == '\n' {
                        return Err(Refused("a newline inside $'...'"));
                    }
                    out.push(chars[i]);
                    i += 1;
                }
                if i < chars.len() {
                    out.push('\'');
                    i += 1;
                }
                word_start = false;
                continue;
            }
            '(' if chars.get(i + 1) == Some(&'(') && word_start => {
                out.push_str("((");
                i += 2;
                stack.push((Ctx::Arith, 0));
                continue;
            }
            '(' => bump(&mut stack, 1),
            ')' if close(&mut stack) && stack.len() > 1 => {
                stack.pop();
            }
            '}' if stack.last().is_some_and(|(_, n)| *n == usize::MAX - 1) => {
                stack.pop();
            }
            '`' if stack.last().is_some_and(|(_, n)| *n == usize::MAX) => {
                stack.pop();
            }
            '`' => stack.push((Ctx::Code, usize::MAX)),
            '#' if word_start => {
                // A comment runs to the end of the line.
                while i < chars.len() && chars[i] != '\n' {
                    if chars[i] == '<' && chars.get(i + 1) == Some(&'<') {
                        return Err(Refused("`<<` in a comment"));
                    }
                    out.push(chars[i]);
                    i += 1;
                }
                continue;
            }
            '<' => {
                let mut n = 0;
                while chars.get(i + n) == Some(&'<') {
                    n += 1;
                }
                // The tokenizer takes `<<<` greedily, then `<<`, then `<`.
                let rest = n % 3;
                for _ in 0..n - rest {
                    out.push('<');
                }
                i += n - rest;
                if rest == 2 {
                    i += 2;
                    let strip_tabs = chars.get(i) == Some(&'-');
                    if strip_tabs {
                        i += 1;
                    }
                    while matches!(chars.get(i), Some(' ') | Some('\t')) {
                        i += 1;
                    }
                    let (tag, quoted) = here_tag(&chars, &mut i)?;
                    pending.push(Pending {
                        tag,
                        strip_tabs,
                        quoted,
                    });
                    out.push_str("</dev/null");
                } else if rest == 1 {
                    out.push('<');
                    i += 1;
                }
                word_start = false;
                continue;
            }
            '\n' => {
                out.push('\n');
                line += 1;
                i += 1;
                for p in pending.drain(..) {
                    let doc = body(&chars, &mut i, &mut line, p);
                    heredocs.push(doc);
                }
                word_start = true;
                continue;
            }
            _ => {}
        }
        out.push(c);
        word_start = c.is_whitespace() || ";&|()".contains(c);
        i += 1;
    }
    // The guarantee does not rest on the context tracking above: a run of
    // `<` that the tokenizer would read as `<<` or `<<-` anywhere (quotes
    // included) is refused.
    if has_heredoc_operator(&out) {
        return Err(Refused("`<<` where the shell might read a here-document"));
    }
    // Here-documents with no newline after their line: empty bodies.
    for p in pending {
        heredocs.push(HereDoc {
            tag: p.tag,
            strip_tabs: p.strip_tabs,
            quoted: p.quoted,
            body: String::new(),
            line,
            terminated: false,
            continued_into_terminator: false,
        });
    }
    Ok(Stripped {
        text: out,
        heredocs,
    })
}

/// After `$`: pushes the context that `(`, `((` or `{` opens.
fn open(chars: &[char], i: &mut usize, out: &mut String) -> (Ctx, usize) {
    if chars.get(*i) == Some(&'(') && chars.get(*i + 1) == Some(&'(') {
        out.push_str("((");
        *i += 2;
        (Ctx::Arith, 0)
    } else if chars.get(*i) == Some(&'{') {
        out.push('{');
        *i += 1;
        (Ctx::Code, usize::MAX - 1)
    } else {
        out.push('(');
        *i += 1;
        (Ctx::Code, 1)
    }
}

fn bump(stack: &mut [(Ctx, usize)], by: usize) {
    if let Some((_, n)) = stack.last_mut() {
        if *n < usize::MAX - 1 {
            *n += by;
        }
    }
}

/// A `)`: true when it closes the innermost `$(` or `$((`.
fn close(stack: &mut [(Ctx, usize)]) -> bool {
    match stack.last_mut() {
        Some((Ctx::Arith, n)) => {
            // `$((` ends at `))`; inner parentheses counted in n.
            if *n == 0 {
                return true;
            }
            *n -= 1;
            false
        }
        Some((_, n)) if *n >= usize::MAX - 1 => false,
        Some((_, n)) if *n > 0 => {
            *n -= 1;
            *n == 0
        }
        _ => false,
    }
}

/// Reads the here-document tag after `<<` (quotes removed).
fn here_tag(chars: &[char], i: &mut usize) -> Result<(String, bool), Refused> {
    let mut tag = String::new();
    let mut quoted = false;
    while let Some(&c) = chars.get(*i) {
        match c {
            '\'' | '"' => {
                quoted = true;
                *i += 1;
                while let Some(&q) = chars.get(*i) {
                    *i += 1;
                    if q == c {
                        break;
                    }
                    if q == '\n' {
                        return Err(Refused("a newline inside a here-document tag"));
                    }
                    tag.push(q);
                }
            }
            '\\' => {
                quoted = true;
                if let Some(&n) = chars.get(*i + 1) {
                    if n == '\n' {
                        return Err(Refused("a line continuation inside a here-document tag"));
                    }
                    tag.push(n);
                }
                *i += 2;
            }
            c if c.is_whitespace() || "<>|;&()`".contains(c) => break,
            '$' => return Err(Refused("an expansion in a here-document tag")),
            c => {
                tag.push(c);
                *i += 1;
            }
        }
    }
    if tag.is_empty() {
        return Err(Refused("a here-document without a tag"));
    }
    Ok((tag, quoted))
}

/// Reads body lines from `*i` up to the terminator.
fn body(chars: &[char], i: &mut usize, line: &mut usize, p: Pending) -> HereDoc {
    let start_line = *line;
    let mut body = String::new();
    let mut terminated = false;
    let mut continued = false;
    let mut prev_continues = false;
    while *i < chars.len() {
        let end = chars[*i..]
            .iter()
            .position(|&c| c == '\n')
            .map_or(chars.len(), |n| *i + n);
        let raw: String = chars[*i..end].iter().collect();
        *i = (end + 1).min(chars.len());
        *line += 1;
        let text = if p.strip_tabs {
            raw.trim_start_matches('\t')
        } else {
            raw.as_str()
        };
        if text == p.tag {
            terminated = true;
            continued = prev_continues;
            break;
        }
        // In an unquoted body `\` at the end of a line joins the next one.
        prev_continues = !p.quoted && ends_in_escape(text);
        body.push_str(text);
        body.push('\n');
    }
    HereDoc {
        tag: p.tag,
        strip_tabs: p.strip_tabs,
        quoted: p.quoted,
        body,
        line: start_line,
        terminated,
        continued_into_terminator: continued,
    }
}

/// A run of `<` that the tokenizer splits as `<<<`... with `<<` left over.
/// A backslash-escaped `<` is a word character in every context.
fn has_heredoc_operator(text: &str) -> bool {
    let mut run = 0;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '<' => run += 1,
            _ => {
                if run % 3 == 2 {
                    return true;
                }
                run = 0;
                if c == '\\' {
                    chars.next();
                }
            }
        }
    }
    run % 3 == 2
}

/// An odd number of trailing backslashes.
fn ends_in_escape(line: &str) -> bool {
    line.chars().rev().take_while(|&c| c == '\\').count() % 2 == 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_cut_out_and_redirects_kept() {
        let s = strip("cat <<-EOF > /etc/x && echo ok\n\thello\n\tEOF\napt-get update\n").unwrap();
        assert_eq!(
            s.text,
            "cat </dev/null > /etc/x && echo ok\napt-get update\n"
        );
        assert_eq!(s.heredocs.len(), 1);
        let h = &s.heredocs[0];
        assert_eq!((h.tag.as_str(), h.body.as_str()), ("EOF", "hello\n"));
        assert!(h.strip_tabs && !h.quoted && h.terminated);
        assert_eq!(h.line, 2);
    }

    #[test]
    fn two_heredocs_on_a_line_and_quoted_tags() {
        let s = strip("paste <<A <<'B'\na1\nA\nb1 $x\nB\ntrue\n").unwrap();
        assert_eq!(s.text, "paste </dev/null </dev/null\ntrue\n");
        assert_eq!(s.heredocs[0].body, "a1\n");
        assert_eq!(s.heredocs[1].body, "b1 $x\n");
        assert!(s.heredocs[1].quoted);
    }

    #[test]
    fn here_strings_quotes_and_escapes_are_not_heredocs() {
        for text in ["cat <<< \"x\"", "echo \\<<EOF", "cat <<<<EOF"] {
            let s = strip(text).unwrap();
            assert!(s.heredocs.is_empty(), "{text}");
            assert_eq!(s.text, text);
        }
        // `<<<<<` is `<<<` then `<<`: the second part is a heredoc.
        let s = strip("cat <<<<<EOF\nx\nEOF\n").unwrap();
        assert_eq!(s.heredocs.len(), 1, "{s:?}");
    }

    #[test]
    fn heredoc_inside_command_substitution() {
        let s = strip("x=\"$(cat <<EOF\nbody )\nEOF\n)\"\necho $x\n").unwrap();
        assert_eq!(s.heredocs[0].body, "body )\n");
        assert!(!s.text.contains("<<"));
    }

    #[test]
    fn arithmetic_inside_a_substitution_closes_at_double_parenthesis() {
        let s = strip("x=\"$(echo $((1 + (2))))\" && cat <<EOF\nbody\nEOF\n").unwrap();
        assert_eq!(s.heredocs.len(), 1);
        assert_eq!(s.text, "x=\"$(echo $((1 + (2))))\" && cat </dev/null\n");
    }

    #[test]
    fn doubtful_cases_are_refused() {
        for text in [
            "echo \"a <<b\"",
            "sed 's/<<//'",
            "echo '<<EOF'",
            "echo $((1 << 2))",
            "ls # a <<comment",
            "cat <<",
            "cat <<$X\n",
            "cat <<'E\nF'\n",
        ] {
            assert!(strip(text).is_err(), "{text}");
        }
    }

    #[test]
    fn backslash_before_the_terminator_is_noticed() {
        let s = strip("cat <<EOF\napt-get install \\\nEOF\n").unwrap();
        assert!(s.heredocs[0].continued_into_terminator);
        let s = strip("cat <<'EOF'\na \\\nEOF\n").unwrap();
        assert!(!s.heredocs[0].continued_into_terminator);
        let s = strip("cat <<EOF\na \\\\\nEOF\n").unwrap();
        assert!(!s.heredocs[0].continued_into_terminator);
    }

    #[test]
    fn unterminated_body_runs_to_the_end() {
        let s = strip("cat <<EOF\na\nb").unwrap();
        assert_eq!(s.heredocs[0].body, "a\nb\n");
        assert!(!s.heredocs[0].terminated);
    }
}
