//! `.tugscanignore.yaml`: advisories accepted for a reason, until a date.
//!
//! ```yaml
//! ignore:
//!   - id: RUSTSEC-2023-0071
//!     reason: "no RSA decryption in our code path"
//!     expires: 2027-01-31
//! ```

use crate::finding::FileError;
use serde::Deserialize;
use std::path::Path;

pub const FILE_NAME: &str = ".tugscanignore.yaml";

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Raw {
    #[serde(default)]
    ignore: Vec<Entry>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub id: String,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub expires: Option<String>,
}

/// Active ignores plus notices about expired ones.
#[derive(Debug, Default)]
pub struct Ignores {
    pub active: Vec<Entry>,
    pub expired: Vec<Entry>,
}

impl Ignores {
    pub fn is_ignored(&self, id: &str) -> bool {
        self.active.iter().any(|e| e.id == id)
    }
}

/// Parses the ignore file; `today` is `YYYY-MM-DD`. An entry expires at the
/// end of its `expires` day.
pub fn parse(text: &str, file: &Path, today: &str) -> Result<Ignores, FileError> {
    let raw: Raw = serde_yaml_ng::from_str(text).map_err(|e| {
        let (line, col) = e.location().map_or((1, 1), |l| (l.line(), l.column()));
        FileError {
            file: file.to_path_buf(),
            line,
            col,
            message: format!("invalid ignore file: {e}"),
            hint: Some("expected `ignore: [{id: RUSTSEC-YYYY-NNNN, reason: \"...\", expires: YYYY-MM-DD}]`".into()),
        }
    })?;
    let mut out = Ignores::default();
    for entry in raw.ignore {
        match &entry.expires {
            Some(d) if !is_date(d) => {
                let (line, col) = find(text, d);
                return Err(FileError {
                    file: file.to_path_buf(),
                    line,
                    col,
                    message: format!("`expires: {d}` is not a date"),
                    hint: Some("write it as YYYY-MM-DD, e.g. 2027-01-31".into()),
                });
            }
            Some(d) if d.as_str() < today => out.expired.push(entry),
            _ => out.active.push(entry),
        }
    }
    Ok(out)
}

fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
}

fn find(text: &str, needle: &str) -> (usize, usize) {
    text.find(needle)
        .map_or((1, 1), |o| crate::finding::line_col(text, o))
}

/// Today's UTC date as `YYYY-MM-DD`.
pub fn today() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    format!("{y:04}-{m:02}-{d:02}")
}

// Howard Hinnant's days-to-civil algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
    }

    #[test]
    fn expiry_splits_entries() {
        let text = "ignore:\n  - id: A\n    reason: ok\n    expires: 2026-01-01\n  - id: B\n    expires: 2026-01-02\n  - id: C\n";
        let ig = parse(text, Path::new("x"), "2026-01-02").unwrap();
        assert!(!ig.is_ignored("A"));
        assert!(ig.is_ignored("B"));
        assert!(ig.is_ignored("C"));
        assert_eq!(ig.expired[0].id, "A");
    }

    #[test]
    fn bad_files_have_positions() {
        let e = parse(
            "ignore:\n  - id: A\n    expires: soon\n",
            Path::new("x"),
            "2026-01-01",
        )
        .unwrap_err();
        assert_eq!((e.line, e.col), (3, 14));
        let e = parse("ignore:\n  - idd: A\n", Path::new("x"), "2026-01-01").unwrap_err();
        assert_eq!(e.line, 2);
    }
}
