//! Readers the tug-spec test binaries share.
// Each test binary uses its own part of this module.
#![allow(dead_code)]

use std::path::Path;
use tug_spec::{parse_str, FileMount, SpecError};

/// Where the documents under test claim to live.
pub const FILE: &str = "/tmp/tug-spec-tests/tug.yaml";

/// The errors of a document that must be rejected.
pub fn errors(text: &str) -> Vec<SpecError> {
    parse_str(text, Path::new(FILE))
        .expect_err("the document should be rejected")
        .0
}

/// The only error: (line, col, message, hint).
pub fn one(text: &str) -> (usize, usize, String, Option<String>) {
    let e = errors(text);
    assert_eq!(e.len(), 1, "expected one error, got {e:#?}");
    let e = e.into_iter().next().unwrap();
    (e.line, e.col, e.message, e.hint)
}

/// A mount as `(target, uid, gid, mode)`.
pub type OwnerAndMode<'a> = (&'a str, Option<u32>, Option<u32>, Option<u32>);

/// Each mount's [`OwnerAndMode`], in order.
pub fn owner_and_mode(mounts: &[FileMount]) -> Vec<OwnerAndMode<'_>> {
    mounts
        .iter()
        .map(|f| (f.target.as_str(), f.uid, f.gid, f.mode))
        .collect()
}
