//! The tug.yaml model.
//!
//! `Stack` is the validated, fully resolved description of a stack: every
//! default is filled in, every relative path is absolute, env files are merged
//! into `env`. Everything downstream (engine, kube, pipeline) consumes it.
//!
//! ```
//! let stack = tug_spec::parse_str("name: demo\nservices:\n  web:\n    image: nginx:1\n", "tug.yaml".as_ref()).unwrap();
//! assert_eq!(stack.services["web"].replicas, 1);
//! ```

mod model;
mod parse;
mod units;

pub use model::*;
pub use parse::{load, parse_str, SpecError, SpecErrors};
pub use units::{ByteSize, Duration};
