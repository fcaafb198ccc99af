//! The lockfile, advisory and config parsers take any text without panicking.

mod common;

use proptest::prelude::*;
use tug_scan::vuln::{advisory::Advisory, lockfile::Lockfile};

fn seed_lock() -> String {
    std::fs::read_to_string(common::fixtures().join("vulnerable/Cargo.lock")).unwrap()
}

fn seed_advisory() -> String {
    std::fs::read_to_string(common::fixture_db().join("crates/vulnpkg/RUSTSEC-2099-0001.md"))
        .unwrap()
}

/// Replace a slice of `seed` with `insert`, at char boundaries.
fn mutate(seed: &str, at: usize, len: usize, insert: &str) -> String {
    let chars: Vec<char> = seed.chars().collect();
    let at = at % (chars.len() + 1);
    let end = (at + len).min(chars.len());
    chars[..at]
        .iter()
        .chain(insert.chars().collect::<Vec<_>>().iter())
        .chain(chars[end..].iter())
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn lockfile_parse_total(s in "\\PC{0,400}") {
        let _ = Lockfile::parse(&s);
    }

    #[test]
    fn lockfile_mutations(at in 0usize..4000, len in 0usize..40, insert in "[\\[\\]\"= a-z0-9.\\n(+-]{0,20}") {
        let text = mutate(&seed_lock(), at, len, &insert);
        if let Ok(l) = Lockfile::parse(&text) {
            for i in 0..l.packages.len() {
                let p = l.path_to(i);
                prop_assert_eq!(p.last().copied(), Some(i));
            }
        }
    }

    #[test]
    fn advisory_parse_total(s in "\\PC{0,400}") {
        let _ = Advisory::parse(&s);
        let _ = Advisory::parse(&format!("```toml\n{s}\n```\n# t\n"));
    }

    #[test]
    fn advisory_mutations(at in 0usize..1000, len in 0usize..40, insert in "[\\[\\]\"=<>~^*, a-z0-9.\\n`-]{0,20}", v in "(0|[1-9][0-9]?)\\.(0|[1-9][0-9]?)\\.(0|[1-9][0-9]?)(-[a-z]{1,5}\\.[0-9])?") {
        let text = mutate(&seed_advisory(), at, len, &insert);
        if let Ok(a) = Advisory::parse(&text) {
            let _ = a.affects(&semver::Version::parse(&v).unwrap());
        }
    }

    #[test]
    fn config_checks_total(s in "\\PC{0,300}") {
        let p = std::path::Path::new("x");
        for name in ["tug.yaml", "compose.yaml", "Dockerfile", "k.yaml"] {
            let text = if name == "k.yaml" { format!("apiVersion: v1\nkind: Pod\n{s}") } else { s.clone() };
            if let Some(kind) = tug_scan::config::classify(name, &text) {
                let _ = tug_scan::config::scan(kind, &text, name, p);
            }
        }
        let _ = tug_scan::secret::scan_text(&s, "x", &Default::default());
    }

    #[test]
    fn secret_scan_on_mutated_examples(i in 0usize..1000, at in 0usize..400, len in 0usize..20, insert in "\\PC{0,12}") {
        let rules = tug_scan::secret::rules();
        let r = &rules[i % rules.len()];
        let text = mutate(&tug_scan::secret::example(r.fires, i as u64), at, len, &insert);
        let lines = text.lines().count().max(1);
        for f in tug_scan::secret::scan_text(&text, "x", &Default::default()) {
            prop_assert!(f.line >= 1 && f.line <= lines + 1);
        }
        let _ = tug_scan::secret::redact_in(&text);
    }
}
