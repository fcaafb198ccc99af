//! One rendered object: a typed k8s-openapi value of one of the kinds tug renders.

use crate::httproute::HTTPRoute;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{
    ConfigMap, PersistentVolumeClaim, Secret, Service, ServiceAccount,
};
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::Resource as _;
use kube::discovery::ApiResource;
use serde::Serialize;

macro_rules! objects {
    ($($v:ident),* $(,)?) => {
        /// An object tug renders. Serializes as the object itself (apiVersion and kind included).
        // Deployments dominate every render; boxing them buys nothing.
        #[allow(clippy::large_enum_variant)]
        #[derive(Clone, Debug, PartialEq, Serialize)]
        #[serde(untagged)]
        pub enum Object {
            $($v($v)),*
        }

        impl Object {
            pub fn kind(&self) -> &'static str {
                match self { $(Object::$v(_) => $v::KIND),* }
            }
            pub fn api_version(&self) -> &'static str {
                match self { $(Object::$v(_) => $v::API_VERSION),* }
            }
            pub fn metadata(&self) -> &ObjectMeta {
                match self { $(Object::$v(o) => &o.metadata),* }
            }
            pub fn metadata_mut(&mut self) -> &mut ObjectMeta {
                match self { $(Object::$v(o) => &mut o.metadata),* }
            }
            /// The API coordinates for a dynamic client.
            pub fn api_resource(&self) -> ApiResource {
                match self { $(Object::$v(_) => ApiResource::erase::<$v>(&())),* }
            }
            /// Reads an object of a kind tug renders from JSON or YAML value.
            pub fn from_value(v: serde_json::Value) -> Result<Object, serde_json::Error> {
                let kind = v.get("kind").and_then(|k| k.as_str()).unwrap_or_default().to_string();
                $(if kind == $v::KIND { return serde_json::from_value(v).map(Object::$v); })*
                Err(serde::de::Error::custom(format!("kind `{kind}` is not one tug renders")))
            }
            /// Every kind tug renders, for listing what a stack owns.
            pub fn all_kinds() -> Vec<ApiResource> {
                vec![$(ApiResource::erase::<$v>(&())),*]
            }
        }
    };
}

objects!(
    ServiceAccount,
    ConfigMap,
    Secret,
    PersistentVolumeClaim,
    Deployment,
    Service,
    PodDisruptionBudget,
    NetworkPolicy,
    HorizontalPodAutoscaler,
    Ingress,
    HTTPRoute,
);

impl Object {
    pub fn name(&self) -> &str {
        self.metadata().name.as_deref().unwrap_or_default()
    }

    /// `kind/name`, as kubectl prints it.
    pub fn id(&self) -> String {
        format!("{}/{}", self.kind().to_ascii_lowercase(), self.name())
    }
}

/// The objects as one multi-document YAML stream.
pub fn to_yaml(objects: &[Object]) -> String {
    let mut out = String::new();
    for o in objects {
        out.push_str("---\n");
        // Serializing plain data (strings, maps, numbers) cannot fail.
        out.push_str(&yaml_of(&serde_json::to_value(o).unwrap_or_default()));
    }
    out
}

/// One YAML document without its `---`. Strings a YAML 1.1 reader (kubectl,
/// Helm) would take for booleans, nulls or numbers are quoted; apiVersion,
/// kind and metadata lead, then keys in alphabetical order.
pub(crate) fn yaml_of(v: &serde_json::Value) -> String {
    let mut out = String::new();
    let doc = to_yaml_node(v, true);
    let mut em = yaml_rust2::YamlEmitter::new(&mut out);
    // Writing into a String cannot fail.
    let _ = em.dump(&doc);
    let body = out.strip_prefix("---\n").unwrap_or(&out).to_string();
    body + "\n"
}

fn to_yaml_node(v: &serde_json::Value, top: bool) -> yaml_rust2::Yaml {
    use serde_json::Value as J;
    use yaml_rust2::Yaml;
    match v {
        J::Null => Yaml::Null,
        J::Bool(b) => Yaml::Boolean(*b),
        J::Number(n) => match n.as_i64() {
            Some(i) => Yaml::Integer(i),
            None => Yaml::Real(n.to_string()),
        },
        J::String(s) => Yaml::String(s.clone()),
        J::Array(a) => Yaml::Array(a.iter().map(|x| to_yaml_node(x, false)).collect()),
        J::Object(m) => {
            let mut h = yaml_rust2::yaml::Hash::new();
            let lead: &[&str] = if top {
                &["apiVersion", "kind", "metadata"]
            } else {
                &[]
            };
            for k in lead {
                if let Some(x) = m.get(*k) {
                    h.insert(Yaml::String((*k).into()), to_yaml_node(x, false));
                }
            }
            for (k, x) in m {
                if !lead.contains(&k.as_str()) {
                    h.insert(Yaml::String(k.clone()), to_yaml_node(x, false));
                }
            }
            Yaml::Hash(h)
        }
    }
}

/// Reads a multi-document YAML stream of tug's kinds back into typed objects.
pub fn from_yaml(text: &str) -> Result<Vec<Object>, serde_yaml_ng::Error> {
    use serde::Deserialize;
    let mut out = Vec::new();
    for de in serde_yaml_ng::Deserializer::from_str(text) {
        let v = serde_json::Value::deserialize(de)?;
        if v.is_null() {
            continue;
        }
        out.push(
            Object::from_value(v).map_err(<serde_yaml_ng::Error as serde::de::Error>::custom)?,
        );
    }
    Ok(out)
}
