//! Dockerfile configuration checks (root user, unpinned base, secrets in
//! ENV/ARG, remote ADD) over tug-image's Dockerfile parser, so continuation
//! lines, escape directives and heredocs are read the way the linter reads
//! them.

use super::{finding, is_literal_secret, is_secret_name, unpinned_image};
use crate::finding::Finding;

/// One instruction: flags and arguments as written, `line` is its first line.
struct Instr {
    line: usize,
    keyword: String,
    args: String,
}

fn instructions(text: &str) -> Vec<Instr> {
    tug_image::dockerfile::parse(text)
        .instructions
        .into_iter()
        .map(|i| {
            let mut args: Vec<String> = i
                .flags
                .iter()
                .map(|f| match &f.value {
                    Some(v) => format!("--{}={v}", f.name),
                    None => format!("--{}", f.name),
                })
                .collect();
            args.push(i.args.trim().to_string());
            Instr {
                line: i.line,
                keyword: i.keyword.as_str().to_string(),
                args: args.join(" ").trim().to_string(),
            }
        })
        .collect()
}

pub fn scan(text: &str, rel: &str) -> Vec<Finding> {
    let mut out = Vec::new();
    let instrs = instructions(text);
    let mut stage_names: Vec<String> = Vec::new();
    let mut final_from_line = 0;
    let mut last_user: Option<(usize, String)> = None;
    for ins in &instrs {
        match ins.keyword.as_str() {
            "ARG" => {
                let (name, value) = ins
                    .args
                    .split_once('=')
                    .map_or((ins.args.as_str(), None), |(n, v)| (n, Some(v)));
                if let Some(v) = value {
                    let v = v.trim().trim_matches('"');
                    if is_secret_name(name) && is_literal_secret(v) {
                        out.push(finding(
                            "TUGC011",
                            None,
                            rel,
                            ins.line,
                            format!("ARG {} has a literal default", name.trim()),
                        ));
                    }
                }
            }
            "FROM" => {
                let words: Vec<&str> = ins
                    .args
                    .split_whitespace()
                    .filter(|w| !w.starts_with("--"))
                    .collect();
                let image = words.first().copied().unwrap_or_default();
                if let Some(pos) = words.iter().position(|w| w.eq_ignore_ascii_case("as")) {
                    if let Some(n) = words.get(pos + 1) {
                        stage_names.push(n.to_ascii_lowercase());
                    }
                }
                let is_stage = stage_names.iter().any(|n| n.eq_ignore_ascii_case(image))
                    && !words.iter().skip(1).any(|w| w.eq_ignore_ascii_case(image));
                let refers_arg = image.contains('$');
                if image != "scratch" && !is_stage && !refers_arg {
                    if let Some(why) = unpinned_image(image) {
                        out.push(finding(
                            "TUGC009",
                            None,
                            rel,
                            ins.line,
                            format!("FROM uses {why} base image `{image}`"),
                        ));
                    }
                }
                final_from_line = ins.line;
                last_user = None;
            }
            "USER" => last_user = Some((ins.line, ins.args.clone())),
            "ENV" => {
                for (k, v) in env_pairs(&ins.args) {
                    if is_secret_name(&k) && is_literal_secret(&v) {
                        out.push(finding(
                            "TUGC011",
                            None,
                            rel,
                            ins.line,
                            format!("ENV {k} holds a literal value"),
                        ));
                    }
                }
            }
            "ADD" => {
                let remote = ins
                    .args
                    .split_whitespace()
                    .filter(|w| !w.starts_with("--"))
                    .any(|w| w.starts_with("http://") || w.starts_with("https://"));
                let checked = ins.args.contains("--checksum=");
                if remote && !checked {
                    out.push(finding(
                        "TUGC014",
                        None,
                        rel,
                        ins.line,
                        "ADD fetches a remote URL".into(),
                    ));
                }
            }
            _ => {}
        }
    }
    if final_from_line > 0 {
        match &last_user {
            None => out.push(finding(
                "TUGC006",
                None,
                rel,
                final_from_line,
                "the final stage sets no USER, so it runs as root".into(),
            )),
            Some((line, u)) => {
                let uid = u.split(':').next().unwrap_or_default().trim();
                if uid == "root" || uid == "0" {
                    out.push(finding(
                        "TUGC006",
                        None,
                        rel,
                        *line,
                        format!("the final stage runs as USER {u}"),
                    ));
                }
            }
        }
    }
    out
}

/// `ENV A=1 B=2` or the legacy `ENV A 1`.
fn env_pairs(args: &str) -> Vec<(String, String)> {
    let first = args.split_whitespace().next().unwrap_or_default();
    if !first.contains('=') {
        let (k, v) = args.split_once(char::is_whitespace).unwrap_or((args, ""));
        return vec![(k.to_string(), v.trim().trim_matches('"').to_string())];
    }
    args.split_whitespace()
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.to_string(), v.trim_matches('"').to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_escape_directives_and_heredocs_like_the_linter() {
        // With `escape=\``, a trailing backslash is not a continuation; a
        // heredoc body that looks like instructions is not one.
        let text = "# escape=`\nFROM debian:12.5\nRUN <<EOF\nUSER root\nENV API_TOKEN=Zq8vN3kLw2Rt9xYp\nEOF\nENV A=1 `\n    API_TOKEN=Zq8vN3kLw2Rt9xYp\nUSER 10001\n";
        let f = scan(text, "Dockerfile");
        let rules: Vec<(&str, usize)> = f.iter().map(|f| (f.rule_id.as_str(), f.line)).collect();
        assert_eq!(rules, [("TUGC011", 7)], "{f:#?}");
    }
}
