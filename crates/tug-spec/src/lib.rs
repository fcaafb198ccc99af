//! The tug.yaml model.
//!
//! `Stack` is the validated, fully resolved description of a stack: every
//! default is filled in, every relative path is absolute, env files are merged
//! into `env`. Everything downstream (engine, kube, pipeline) consumes it.
//!
//! Parsing reports every problem at once, each at `file:line:col`; see
//! [`SpecErrors`]. [`schema()`] describes the accepted input as JSON Schema and
//! [`compose::import`] turns a compose file into a tug.yaml.
//!
//! ```
//! let stack = tug_spec::parse_str("name: demo\nservices:\n  web:\n    image: nginx:1\n", "tug.yaml".as_ref()).unwrap();
//! assert_eq!(stack.services["web"].replicas, 1);
//! ```

mod autoscale;
pub mod compose;
mod compose_extends;
mod graph;
mod input;
pub mod interpolate;
mod locate;
mod model;
mod observe;
mod parse;
mod parse_pipeline;
pub mod pipeline;
mod route;
mod units;
pub mod yaml;

pub use input::schema;
pub use interpolate::Vars;
pub use locate::locate;
pub use model::*;
pub use observe::{Dashboard, Observe, Otlp, OtlpProtocol};
pub use parse::{load, load_with, parse_str, parse_str_with, SpecError, SpecErrors};
pub use route::listen_address;
pub use units::{ByteSize, Duration};
