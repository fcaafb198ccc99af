//! CI/CD pipelines: jobs as a DAG of shell steps, run on the host or in
//! containers on the engine, with caches, artifacts, secrets masking, live
//! output and reports.
//!
//! ```
//! let stack = tug_spec::parse_str(
//!     "name: demo\npipelines:\n  ci:\n    jobs:\n      test: { steps: [echo ok] }\n",
//!     "tug.yaml".as_ref(),
//! )
//! .unwrap();
//! let ci: &tug_pipeline::model::Pipeline = &stack.pipelines["ci"];
//! assert_eq!(ci.jobs["test"].steps[0].run, "echo ok");
//! ```

pub mod concurrency;
pub mod exec;
pub mod files;
pub mod generate;
pub mod github;
pub mod gitlab;
pub mod mask;
pub mod model;
pub mod plan;
pub mod report;
pub mod run;
pub mod store;
pub mod trigger;
