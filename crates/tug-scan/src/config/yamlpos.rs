//! Light YAML position lookup: the line of a key path, by indentation,
//! without a position-aware YAML parser.

/// Finds the 1-based line of `path` (keys, outermost first) within lines
/// `[from, to)` (0-based) of `text`. Falls back to the last key found
/// anywhere in the range (flow mappings), then to the first line.
pub fn find_line(text: &str, from: usize, to: usize, path: &[&str]) -> usize {
    let lines: Vec<&str> = text.lines().collect();
    let to = to.min(lines.len());
    let from = from.min(to);
    let mut stack: Vec<(usize, String)> = Vec::new();
    for (i, raw) in lines.iter().enumerate().take(to).skip(from) {
        let Some((indent, key)) = key_of(raw) else {
            continue;
        };
        while stack.last().is_some_and(|(ind, _)| *ind >= indent) {
            stack.pop();
        }
        stack.push((indent, key));
        if is_suffix_subsequence(&stack, path) {
            return i + 1;
        }
    }
    if let Some(last) = path.last() {
        // Flow style (`security: { privileged: true }`): look after the parent's line.
        let parent = if path.len() > 1 {
            Some(find_line(text, from, to, &path[..path.len() - 1]))
        } else {
            None
        };
        let start = parent.map_or(from, |p| p - 1);
        let pat_a = format!("{last}:");
        let pat_b = format!("\"{last}\":");
        for (i, raw) in lines.iter().enumerate().take(to).skip(start) {
            let code = raw.split(" #").next().unwrap_or(raw);
            if code.contains(&pat_a) || code.contains(&pat_b) {
                return i + 1;
            }
        }
        if let Some(p) = parent {
            return p;
        }
    }
    from + 1
}

/// Indentation and key of a `key:` line; list dashes count as indentation.
pub fn key_of(raw: &str) -> Option<(usize, String)> {
    let trimmed = raw.trim_start();
    if trimmed.starts_with('#') || trimmed.is_empty() {
        return None;
    }
    let mut indent = raw.len() - trimmed.len();
    let mut rest = trimmed;
    while let Some(r) = rest.strip_prefix("- ") {
        indent += 2;
        rest = r.trim_start();
    }
    let colon = rest.find(':')?;
    let key = rest[..colon].trim().trim_matches(|c| c == '"' || c == '\'');
    let after = &rest[colon + 1..];
    if key.is_empty() || key.contains(' ') || !(after.is_empty() || after.starts_with(' ')) {
        return None;
    }
    Some((indent, key.to_string()))
}

fn is_suffix_subsequence(stack: &[(usize, String)], path: &[&str]) -> bool {
    let Some((_, last)) = stack.last() else {
        return false;
    };
    if path.last() != Some(&last.as_str()) {
        return false;
    }
    let mut want = path.iter().rev().skip(1).peekable();
    for (_, k) in stack.iter().rev().skip(1) {
        if want.peek().is_some_and(|w| **w == k) {
            want.next();
        }
    }
    want.peek().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_nested_keys() {
        let y = "services:\n  web:\n    image: x\n    security:\n      privileged: true\n  db:\n    security: { privileged: true }\n";
        assert_eq!(find_line(y, 0, 100, &["web", "security", "privileged"]), 5);
        assert_eq!(find_line(y, 0, 100, &["db", "security"]), 7);
        assert_eq!(find_line(y, 0, 100, &["db", "security", "privileged"]), 7);
        assert_eq!(find_line(y, 0, 100, &["nothing"]), 1);
    }

    #[test]
    fn list_items_are_nested() {
        let y = "spec:\n  containers:\n    - name: a\n      image: a:1\n    - name: b\n      securityContext:\n        privileged: true\n";
        assert_eq!(
            find_line(y, 0, 100, &["containers", "securityContext", "privileged"]),
            7
        );
        assert_eq!(find_line(y, 4, 100, &["image"]), 5);
    }
}
