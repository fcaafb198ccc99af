//! `parse_str` and the compose import never panic, whatever the input.

use proptest::prelude::*;
use std::path::Path;

const VALID: &[&str] = &[
    include_str!("fixtures/valid/forms.yaml"),
    include_str!("../../../examples/hello/tug.yaml"),
    include_str!("fixtures/compose/micro/compose.yaml"),
    include_str!("fixtures/compose/unsupported/compose.yaml"),
];

/// Edits that keep a document YAML-shaped often enough to reach validation.
fn mutate(doc: &str, edits: &[(usize, u8, char)]) -> String {
    let mut chars: Vec<char> = doc.chars().collect();
    for &(pos, op, c) in edits {
        if chars.is_empty() {
            chars.push(c);
            continue;
        }
        let i = pos % chars.len();
        match op % 4 {
            0 => chars[i] = c,
            1 => chars.insert(i, c),
            2 => {
                chars.remove(i);
            }
            _ => {
                // Duplicate a line elsewhere: shifts indentation and keys.
                let s: String = chars.iter().collect();
                let lines: Vec<&str> = s.lines().collect();
                let line = lines[i % lines.len()].to_string();
                let mut out = lines.clone();
                out.insert((i / 3) % lines.len(), &line);
                chars = out.join("\n").chars().collect();
            }
        }
    }
    chars.into_iter().collect()
}

fn check(text: &str) {
    let file = Path::new("/nonexistent/tug.yaml");
    if let Err(e) = tug_spec::parse_str(text, file) {
        assert!(!e.0.is_empty(), "an error list is never empty");
        for err in &e.0 {
            assert!(err.line >= 1 && err.col >= 1, "{err}");
        }
    }
    if let Ok(imp) = tug_spec::compose::import(text, Path::new("/nonexistent/compose.yaml")) {
        // Whatever the import writes is YAML tug can read back without panicking.
        let _ = tug_spec::parse_str(&imp.yaml, file);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_strings(s in any::<String>()) {
        check(&s);
    }

    #[test]
    fn yamlish_strings(s in "[a-z_:{}\\[\\],\\-\"' \n#&*<>!|0-9.]{0,200}") {
        check(&s);
    }

    #[test]
    fn mutated_valid_documents(
        which in 0..VALID.len(),
        edits in proptest::collection::vec(
            (any::<usize>(), any::<u8>(), prop::sample::select(vec![' ', ':', '-', '\n', '{', '}', '[', ']', '"', '\'', '0', 'x', '&', '*', '#', '\t'])),
            1..8,
        ),
    ) {
        check(&mutate(VALID[which], &edits));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Interpolation never panics, and on success a value with no `$` left
    /// escaped reads back to itself.
    #[test]
    fn interpolation_never_panics(text in "([a-z${}:?+\\-é ]|\\$\\{[A-Z]{1,3}(:?[-?+][a-z$]{0,3})?\\}){0,24}") {
        let vars = tug_spec::Vars::from_pairs([("A", "x"), ("AB", ""), ("B", "$y")]);
        if let Ok(r) = tug_spec::interpolate::interpolate(&text, &vars) {
            let again = tug_spec::interpolate::interpolate(&tug_spec::interpolate::escape(&r.text), &vars).unwrap();
            prop_assert_eq!(again.text, r.text);
        }
    }
}
