//! tug.yaml on Kubernetes: the same stack rendered to Kubernetes objects
//! (k8s-openapi types) or a Helm chart, and applied with server-side apply.
//!
//! ```
//! let text = "name: shop\nservices:\n  api:\n    image: registry.example/api:1.2.0\n    port: 8080\n";
//! let stack = tug_spec::parse_str(text, "tug.yaml".as_ref()).unwrap();
//! let objects = tug_kube::render(&stack, text, &tug_kube::RenderOptions::default()).unwrap();
//! assert!(objects.iter().any(|o| o.id() == "deployment/api"));
//! ```

pub mod connect;
pub mod deploy;
pub mod helm;
pub mod httproute;
pub mod leader;
mod object;
pub mod operator;
mod render;

pub use object::{from_yaml, to_yaml, Object};

/// One YAML document (`---` first), written as [`to_yaml`] writes objects.
pub fn yaml_document(v: &serde_json::Value) -> String {
    format!("---\n{}", object::yaml_of(v))
}
pub use render::{
    render, render_with_warnings, service_labels, stack_labels, GatewayRef, RenderOptions,
    Rendered, RouteTarget, Skip, DEFAULT_INGRESS_NAMESPACE,
};

/// A problem with the stack for Kubernetes, at `file:line:col` in tug.yaml.
pub type RenderError = tug_spec::SpecError;
/// Every such problem, found in one pass.
pub type RenderErrors = tug_spec::SpecErrors;

/// Label keys tug puts on every object.
pub mod labels {
    pub const NAME: &str = "app.kubernetes.io/name";
    pub const INSTANCE: &str = "app.kubernetes.io/instance";
    pub const COMPONENT: &str = "app.kubernetes.io/component";
    pub const PART_OF: &str = "app.kubernetes.io/part-of";
    pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
    pub const MANAGER: &str = "tug";
    pub const TUG_STACK: &str = "dev.tug.stack";
    pub const TUG_SERVICE: &str = "dev.tug.service";

    /// Selects exactly the objects tug manages for `stack`: what prune may delete.
    pub fn stack_selector(stack: &str) -> String {
        format!("{MANAGED_BY}={MANAGER},{TUG_STACK}={stack}")
    }
}
