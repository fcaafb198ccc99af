//! Secret masking for every line a job prints, before it reaches the
//! terminal, the log files, the store or a report.
//!
//! Masked: each secret value; each line of a multi-line secret; the
//! base64 forms of a secret (standard and URL-safe, at any alignment inside
//! a longer encoded blob); and a secret split across consecutive lines
//! (`fold`, a wrapped log line): lines whose end could begin a secret are
//! held back until the next line (or [`Masker::flush`]) shows whether it
//! continues one.
//!
//! ```
//! let mut m = tug_pipeline::mask::Masker::new(["hunter22"]);
//! assert_eq!(m.line("password=hunter22"), vec!["password=***"]);
//! assert_eq!(m.line("hunt"), Vec::<String>::new()); // held: may continue
//! assert_eq!(m.line("er22 done"), vec!["***", "*** done"]);
//! ```

use base64::Engine;

pub const MASK: &str = "***";

/// Values shorter than this are masked as whole values, never as base64
/// fragments or line pieces (too many false hits).
const MIN_DERIVED: usize = 4;

#[derive(Clone, Debug, Default)]
pub struct Masker {
    /// Longest first, so overlapping values mask as much as possible.
    values: Vec<Vec<u8>>,
    pending: Vec<String>,
}

impl Masker {
    pub fn new<S: AsRef<str>>(secrets: impl IntoIterator<Item = S>) -> Self {
        let mut values: Vec<Vec<u8>> = Vec::new();
        for s in secrets {
            let s = s.as_ref();
            let trimmed = s.trim_end_matches(['\n', '\r']);
            if trimmed.is_empty() {
                continue;
            }
            values.push(trimmed.as_bytes().to_vec());
            if trimmed.contains('\n') {
                for l in trimmed.lines() {
                    let l = l.trim();
                    if l.len() >= MIN_DERIVED {
                        values.push(l.as_bytes().to_vec());
                    }
                }
            }
            for form in [s, trimmed] {
                if form.len() >= MIN_DERIVED {
                    values.extend(base64_forms(form.as_bytes()));
                }
            }
        }
        values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        values.dedup();
        Masker {
            values,
            pending: Vec::new(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Masks one whole text at once (messages, reports): no holding back.
    pub fn text(&self, s: &str) -> String {
        let lines: Vec<String> = s.split('\n').map(str::to_string).collect();
        let masked = self.mask_lines(&lines);
        masked.join("\n")
    }

    /// Feeds one line (without its newline); returns the lines now safe to
    /// show, masked, in order.
    pub fn line(&mut self, line: &str) -> Vec<String> {
        if self.values.is_empty() {
            return vec![line.to_string()];
        }
        self.pending.push(line.to_string());
        let masked = self.mask_lines(&self.pending);
        // Keep the lines from where a secret could still begin.
        let keep_from = self.open_prefix_start();
        let n = self.pending.len();
        let release = keep_from.min(n);
        let out: Vec<String> = masked[..release].to_vec();
        // Held lines keep their raw text: masks are recomputed with what follows.
        self.pending.drain(..release);
        out
    }

    /// Releases every held line, masked.
    pub fn flush(&mut self) -> Vec<String> {
        let out = self.mask_lines(&self.pending);
        self.pending.clear();
        out
    }

    /// Whether lines are held back.
    pub fn holding(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Index of the first pending line that a secret continuing on the next
    /// line could start in (the pending count when none could).
    fn open_prefix_start(&self) -> usize {
        let joined: Vec<u8> = self.pending.iter().flat_map(|l| l.bytes()).collect();
        let mut earliest = joined.len();
        for v in &self.values {
            // A proper prefix of `v` ending the text means `v` may continue.
            for k in (1..v.len()).rev() {
                if k <= joined.len() && joined.ends_with(&v[..k]) {
                    earliest = earliest.min(joined.len() - k);
                    break;
                }
            }
        }
        if earliest == joined.len() {
            return self.pending.len();
        }
        // The line holding byte `earliest`.
        let mut at = 0;
        for (i, l) in self.pending.iter().enumerate() {
            if earliest < at + l.len() || (l.is_empty() && earliest == at) {
                return i;
            }
            at += l.len();
        }
        self.pending.len()
    }

    /// Masks `lines` as one text without line breaks, so a secret split
    /// over lines is found; each line keeps its own masked parts.
    fn mask_lines(&self, lines: &[String]) -> Vec<String> {
        let joined: Vec<u8> = lines.iter().flat_map(|l| l.bytes()).collect();
        let mut hidden = vec![false; joined.len()];
        for v in &self.values {
            let mut i = 0;
            while i + v.len() <= joined.len() {
                if joined[i..i + v.len()] == v[..] {
                    hidden[i..i + v.len()].iter_mut().for_each(|h| *h = true);
                    i += v.len();
                } else {
                    i += 1;
                }
            }
        }
        let mut out = Vec::with_capacity(lines.len());
        let mut at = 0;
        for l in lines {
            let b = l.as_bytes();
            let mut s: Vec<u8> = Vec::with_capacity(b.len());
            let mut j = 0;
            while j < b.len() {
                if hidden[at + j] {
                    s.extend_from_slice(MASK.as_bytes());
                    while j < b.len() && hidden[at + j] {
                        j += 1;
                    }
                } else {
                    s.push(b[j]);
                    j += 1;
                }
            }
            at += b.len();
            out.push(String::from_utf8_lossy(&s).into_owned());
        }
        out
    }
}

/// The base64 text of `s` as it appears inside any longer encoded blob: for
/// each of the three alignments, the characters that depend on `s` alone.
fn base64_forms(s: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for engine in [
        &base64::engine::general_purpose::STANDARD,
        &base64::engine::general_purpose::URL_SAFE,
    ] {
        out.push(engine.encode(s).trim_end_matches('=').as_bytes().to_vec());
        for offset in 0..3usize {
            let mut buf = vec![0u8; offset];
            buf.extend_from_slice(s);
            let enc = engine.encode(&buf);
            let start = (8 * offset).div_ceil(6);
            let end = (8 * (offset + s.len())) / 6;
            if end > start && end - start >= MIN_DERIVED {
                out.push(enc.as_bytes()[start..end].to_vec());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(m: &mut Masker, lines: &[&str]) -> Vec<String> {
        let mut out = Vec::new();
        for l in lines {
            out.extend(m.line(l));
        }
        out.extend(m.flush());
        out
    }

    #[test]
    fn plain_and_repeated() {
        let mut m = Masker::new(["s3cr3t-value"]);
        assert_eq!(
            all(&mut m, &["a s3cr3t-value b s3cr3t-value", "clean"]),
            ["a *** b ***", "clean"]
        );
    }

    #[test]
    fn base64_at_every_alignment() {
        let secret = "s3cr3t-value";
        let m = Masker::new([secret]);
        for prefix in ["", "x", "xy", "user:"] {
            for engine in [
                &base64::engine::general_purpose::STANDARD,
                &base64::engine::general_purpose::URL_SAFE,
            ] {
                let blob = engine.encode(format!("{prefix}{secret}!!"));
                let shown = m.text(&blob);
                assert!(shown.contains(MASK), "{prefix:?}: {blob} -> {shown}");
                // No 8-character run of the secret's own encoding survives.
                let own = engine.encode(secret);
                assert!(!shown.contains(&own[..8]), "{shown}");
            }
        }
    }

    #[test]
    fn split_across_lines() {
        let mut m = Masker::new(["abcdefghij"]);
        let out = all(&mut m, &["x abcd", "efg", "hij y"]);
        assert_eq!(out, ["x ***", "***", "*** y"]);
        assert!(out.iter().all(|l| !l.contains("efg")));
    }

    #[test]
    fn multi_line_secret_each_line() {
        let key = "-----BEGIN KEY-----\nMIIBOgIBAAJBAK\n-----END KEY-----\n";
        let mut m = Masker::new([key]);
        let out = all(&mut m, &["MIIBOgIBAAJBAK"]);
        assert_eq!(out, ["***"]);
    }

    #[test]
    fn lines_without_a_secret_prefix_are_not_held() {
        let mut m = Masker::new(["zzzz9"]);
        assert_eq!(m.line("hello"), ["hello"]);
        assert!(!m.holding());
        assert!(m.line("ends zz").is_empty());
        assert!(m.holding());
        assert_eq!(m.line("nothing"), ["ends zz", "nothing"]);
    }
}
