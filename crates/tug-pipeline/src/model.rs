//! The pipeline model. tug.yaml's `pipelines:` parse into these types (in
//! tug-spec, which owns the file format); importers of other CI formats
//! build the same types, and the executor runs them.

pub use tug_spec::pipeline::{
    Cache, Concurrency, Job, JobService, Matrix, Pipeline, SecretRef, SecretSource, Step, When,
    WorkspaceMode,
};
pub use tug_spec::{Duration, Health};
