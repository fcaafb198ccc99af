//! ARG/ENV substitution as the builder does it: `$VAR`, `${VAR}`,
//! `${VAR:-default}`, `${VAR:+alt}` (and the forms without the colon).

use std::collections::HashMap;

/// Expands variables in `text`. Returns the result and whether every
/// variable had a value (unset ones expand to the empty string).
pub fn expand(text: &str, vars: &HashMap<String, String>) -> (String, bool) {
    let mut out = String::with_capacity(text.len());
    let mut resolved = true;
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\\' && chars.get(i + 1) == Some(&'$') {
            out.push('$');
            i += 2;
            continue;
        }
        if c != '$' {
            out.push(c);
            i += 1;
            continue;
        }
        match chars.get(i + 1) {
            Some('{') => {
                // Find the matching brace (defaults may nest `${..}`).
                let mut depth = 0usize;
                let mut j = i + 1;
                let mut end = None;
                while j < chars.len() {
                    match chars[j] {
                        '{' => depth += 1,
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                end = Some(j);
                                break;
                            }
                        }
                        _ => {}
                    }
                    j += 1;
                }
                let Some(end) = end else {
                    // Unterminated: keep the text as written.
                    out.extend(&chars[i..]);
                    return (out, false);
                };
                let inner: String = chars[i + 2..end].iter().collect();
                let name_len = inner
                    .find(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '_'))
                    .unwrap_or(inner.len());
                let (name, op) = inner.split_at(name_len);
                let value = vars.get(name);
                let set_nonempty = value.is_some_and(|v| !v.is_empty());
                let expanded = if let Some(word) = op.strip_prefix(":-") {
                    if set_nonempty {
                        value.cloned().unwrap_or_default()
                    } else {
                        let (w, r) = expand(word, vars);
                        resolved &= r;
                        w
                    }
                } else if let Some(word) = op.strip_prefix(":+") {
                    if set_nonempty {
                        let (w, r) = expand(word, vars);
                        resolved &= r;
                        w
                    } else {
                        String::new()
                    }
                } else if let Some(word) = op.strip_prefix('-') {
                    match value {
                        Some(v) => v.clone(),
                        None => {
                            let (w, r) = expand(word, vars);
                            resolved &= r;
                            w
                        }
                    }
                } else if let Some(word) = op.strip_prefix('+') {
                    if value.is_some() {
                        let (w, r) = expand(word, vars);
                        resolved &= r;
                        w
                    } else {
                        String::new()
                    }
                } else {
                    match value {
                        Some(v) => v.clone(),
                        None => {
                            resolved = false;
                            String::new()
                        }
                    }
                };
                out.push_str(&expanded);
                i = end + 1;
            }
            Some(ch) if ch.is_ascii_alphabetic() || *ch == '_' => {
                let mut j = i + 1;
                while j < chars.len() && (chars[j].is_ascii_alphanumeric() || chars[j] == '_') {
                    j += 1;
                }
                let name: String = chars[i + 1..j].iter().collect();
                match vars.get(&name) {
                    Some(v) => out.push_str(v),
                    None => resolved = false,
                }
                i = j;
            }
            _ => {
                out.push('$');
                i += 1;
            }
        }
    }
    (out, resolved)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> HashMap<String, String> {
        [("A", "1"), ("EMPTY", "")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn substitutes_every_form() {
        let v = vars();
        assert_eq!(expand("x$A-y", &v), ("x1-y".into(), true));
        assert_eq!(expand("${A}b", &v), ("1b".into(), true));
        assert_eq!(expand("${B:-def}", &v), ("def".into(), true));
        assert_eq!(expand("${EMPTY:-def}", &v), ("def".into(), true));
        assert_eq!(expand("${EMPTY-def}", &v), ("".into(), true));
        assert_eq!(expand("${A:+alt}", &v), ("alt".into(), true));
        assert_eq!(expand("${B:+alt}", &v), ("".into(), true));
        assert_eq!(expand("${B:-${A}}", &v), ("1".into(), true));
        assert_eq!(expand("\\$A", &v), ("$A".into(), true));
        assert_eq!(expand("$B", &v), ("".into(), false));
        assert_eq!(expand("${A", &v), ("${A".into(), false));
        assert_eq!(expand("cost $5", &v), ("cost $5".into(), true));
    }
}
