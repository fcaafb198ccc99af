//! Running GitHub Actions workflows locally.
//!
//! ```text
//!  .github/workflows/ci.yml ──► workflow::read ──► import() ──► Pipeline (model)
//!        (every key and expression checked,         │ matrix expanded, runs-on mapped,
//!         errors at file:line:col)                  │ static `if:` decided, `uses:` sorted
//!                                                   ▼
//!                         state dir: one plan per job ──► runner::run_step (per step,
//!                         called by the step's script through `tug pipeline github-step`)
//! ```
//!
//! The executor runs the jobs as a DAG; each step of an imported job is one
//! call of the step runner, which evaluates what only exists at run time:
//! `if:` against the steps before it, `${{ steps.* }}` and `${{ needs.* }}`,
//! the `GITHUB_OUTPUT`/`GITHUB_ENV`/`GITHUB_PATH`/`GITHUB_STEP_SUMMARY` files,
//! and the built-in equivalents of common actions ([`actions`]). Jobs that
//! cannot run here (a `uses:` without an equivalent, a Windows runner) are
//! left out with the reason, before anything starts.

pub mod actions;
pub mod expr;
mod plan;
pub mod runner;
pub mod workflow;

pub use plan::{import, Import, JobOutcome, Options, UsesNote};

use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::PathBuf;

/// A 1-based position in a file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Loc {
    pub line: usize,
    pub col: usize,
}

/// A problem in a CI file, at `file:line:col`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}:{line}:{col}: {message}", file.display())]
pub struct ImportError {
    pub file: PathBuf,
    pub line: usize,
    pub col: usize,
    pub message: String,
}

/// Every problem of a file, in file order.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct ImportErrors(pub Vec<ImportError>);

impl fmt::Display for ImportErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl ImportErrors {
    pub(crate) fn sorted(mut v: Vec<ImportError>) -> Self {
        v.sort_by(|a, b| {
            (a.line, a.col, &a.file, &a.message).cmp(&(b.line, b.col, &b.file, &b.message))
        });
        // A template's mistake is found once per job that extends it: say it once.
        v.dedup_by(|a, b| {
            (&a.file, a.line, a.col, &a.message) == (&b.file, b.line, b.col, &b.message)
        });
        ImportErrors(v)
    }
}
