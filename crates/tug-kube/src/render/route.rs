//! A service's `route:` → an Ingress (networking.k8s.io/v1, the default) or a
//! Gateway API HTTPRoute (gateway.networking.k8s.io/v1, `--routes gateway-api`).
//!
//! What each target carries:
//!
//! | tug.yaml                | Ingress                      | HTTPRoute                         |
//! |-------------------------|------------------------------|-----------------------------------|
//! | `host`, `path`          | rule host, `Prefix` path     | `hostnames`, `PathPrefix` match   |
//! | `strip_prefix`          | warning: not expressible     | `URLRewrite` `ReplacePrefixMatch` |
//! | `timeouts.request`      | warning when written         | `timeouts.request`                |
//! | `timeouts.connect/idle` | warning when written         | warning when written              |
//! | `retry`                 | warning when written         | warning (experimental channel)    |
//! | `balance` (not p2c)     | warning                      | warning                           |
//!
//! Warnings name the tug.yaml line; the controller's own behaviour applies.

use super::{meta, Cx};
use crate::httproute::{
    HTTPBackendRef, HTTPPathMatch, HTTPPathModifier, HTTPRoute, HTTPRouteFilter, HTTPRouteMatch,
    HTTPRouteRule, HTTPRouteSpec, HTTPRouteTimeouts, HTTPURLRewriteFilter, ParentReference,
};
use crate::object::Object;
use k8s_openapi::api::networking::v1::{
    HTTPIngressPath, HTTPIngressRuleValue, Ingress, IngressBackend, IngressRule,
    IngressServiceBackend, IngressSpec, ServiceBackendPort,
};
use std::collections::BTreeMap;
use tug_spec::{Balance, Route};

/// Which Kubernetes object a `route:` becomes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum RouteTarget {
    /// networking.k8s.io/v1 Ingress, served by the cluster's ingress controller.
    #[default]
    Ingress,
    /// gateway.networking.k8s.io/v1 HTTPRoute attached to a Gateway.
    GatewayApi,
}

/// The Gateway that HTTPRoutes attach to (`--gateway [NAMESPACE/]NAME`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GatewayRef {
    pub name: String,
    /// Unset: the namespace of the route.
    pub namespace: Option<String>,
}

impl Default for GatewayRef {
    fn default() -> Self {
        GatewayRef {
            name: "gateway".into(),
            namespace: None,
        }
    }
}

/// Where the ingress controller runs when `--controller-namespace` is unset.
pub const DEFAULT_INGRESS_NAMESPACE: &str = "ingress-nginx";

/// The key path of route `i` of service `name`: `route:` is one map or a list.
fn route_path(cx: &Cx, name: &str, i: usize) -> Vec<String> {
    let base = ["services", name, "route"];
    let idx = i.to_string();
    let item = ["services", name, "route", idx.as_str()];
    let mut p: Vec<String> = base.iter().map(|s| s.to_string()).collect();
    if tug_spec::locate(cx.source, &item) != tug_spec::locate(cx.source, &base) {
        p.push(idx);
    }
    p
}

fn warn_unexpressible(cx: &mut Cx, name: &str, i: usize, r: &Route, target: RouteTarget) {
    let base = route_path(cx, name, i);
    let at = |k: &[&str]| -> Vec<String> {
        let mut v = base.clone();
        v.extend(k.iter().map(|s| s.to_string()));
        v
    };
    let what = match target {
        RouteTarget::Ingress => "an Ingress",
        RouteTarget::GatewayApi => "an HTTPRoute",
    };
    if r.strip_prefix && r.path != "/" && target == RouteTarget::Ingress {
        cx.warn_at(
            &at(&["strip_prefix"]),
            format!("`strip_prefix` is not expressible in {what}: the service receives the full path `{}…`", r.path),
            Some("render with --routes gateway-api (URLRewrite), or serve the prefix in the service".into()),
        );
    }
    let mut timeouts: Vec<&str> = vec!["connect", "idle"];
    if target == RouteTarget::Ingress {
        timeouts.insert(0, "request");
    }
    for key in timeouts {
        let p = at(&["timeouts", key]);
        if cx.written_path(&p) {
            cx.warn_at(
                &p,
                format!("`timeouts.{key}` is not expressible in {what}: the controller's default applies"),
                None,
            );
        }
    }
    let p = at(&["retry"]);
    if cx.written_path(&p) {
        let why = match target {
            RouteTarget::Ingress => "an Ingress has no retry field".to_string(),
            RouteTarget::GatewayApi => {
                "HTTPRoute retries are in the Gateway API's experimental channel only".to_string()
            }
        };
        cx.warn_at(
            &p,
            format!("`retry` is not rendered: {why}; the controller's default applies"),
            None,
        );
    }
    if r.balance != Balance::P2c {
        cx.warn_at(
            &at(&["balance"]),
            format!("`balance` is not expressible in {what}: the controller balances as it is configured"),
            None,
        );
    }
}

/// The route objects of one service (none without routes or a port).
pub(super) fn routes(
    cx: &mut Cx,
    name: &str,
    ns: &str,
    labels: &BTreeMap<String, String>,
    opts: &super::RenderOptions,
) -> Vec<Object> {
    let s = &cx.stack.services[name];
    let (Some(port), false) = (s.port, s.routes.is_empty()) else {
        return Vec::new();
    };
    let routes = s.routes.clone();
    for (i, r) in routes.iter().enumerate() {
        warn_unexpressible(cx, name, i, r, opts.routes);
    }
    let port = i32::from(port);
    match opts.routes {
        RouteTarget::Ingress => vec![Object::Ingress(ingress(
            name, ns, labels, port, &routes, opts,
        ))],
        RouteTarget::GatewayApi => http_routes(name, ns, labels, port, &routes, opts)
            .into_iter()
            .map(Object::HTTPRoute)
            .collect(),
    }
}

fn ingress(
    name: &str,
    ns: &str,
    labels: &BTreeMap<String, String>,
    port: i32,
    routes: &[Route],
    opts: &super::RenderOptions,
) -> Ingress {
    let backend = IngressBackend {
        service: Some(IngressServiceBackend {
            name: name.into(),
            port: Some(ServiceBackendPort {
                number: Some(port),
                name: None,
            }),
        }),
        resource: None,
    };
    // One rule per host, its paths in file order.
    let mut rules: Vec<IngressRule> = Vec::new();
    for r in routes {
        let path = HTTPIngressPath {
            path: Some(r.path.clone()),
            path_type: "Prefix".into(),
            backend: backend.clone(),
        };
        match rules.iter_mut().find(|x| x.host == r.host) {
            Some(rule) => {
                if let Some(h) = rule.http.as_mut() {
                    h.paths.push(path)
                }
            }
            None => rules.push(IngressRule {
                host: r.host.clone(),
                http: Some(HTTPIngressRuleValue { paths: vec![path] }),
            }),
        }
    }
    Ingress {
        metadata: meta(name, ns, labels.clone()),
        spec: Some(IngressSpec {
            ingress_class_name: opts.ingress_class.clone(),
            rules: Some(rules),
            ..IngressSpec::default()
        }),
        status: None,
    }
}

/// An HTTPRoute's hostnames apply to all its rules, so each host (or "any
/// host") gets its own HTTPRoute: `NAME` when there is one, else `NAME-1`, ….
fn http_routes(
    name: &str,
    ns: &str,
    labels: &BTreeMap<String, String>,
    port: i32,
    routes: &[Route],
    opts: &super::RenderOptions,
) -> Vec<HTTPRoute> {
    let mut groups: Vec<(Option<String>, Vec<Route>)> = Vec::new();
    for r in routes {
        match groups.iter_mut().find(|(h, _)| *h == r.host) {
            Some((_, v)) => v.push(r.clone()),
            None => groups.push((r.host.clone(), vec![r.clone()])),
        }
    }
    let many = groups.len() > 1;
    groups
        .into_iter()
        .enumerate()
        .map(|(i, (host, rs))| {
            let object = if many {
                format!("{name}-{}", i + 1)
            } else {
                name.to_string()
            };
            http_route(&object, name, ns, labels, port, host, &rs, opts)
        })
        .collect()
}

#[allow(clippy::too_many_arguments)]
fn http_route(
    object: &str,
    name: &str,
    ns: &str,
    labels: &BTreeMap<String, String>,
    port: i32,
    host: Option<String>,
    routes: &[Route],
    opts: &super::RenderOptions,
) -> HTTPRoute {
    let rules = routes
        .iter()
        .map(|r| HTTPRouteRule {
            matches: vec![HTTPRouteMatch {
                path: Some(HTTPPathMatch {
                    type_: "PathPrefix".into(),
                    value: r.path.clone(),
                }),
            }],
            filters: if r.strip_prefix && r.path != "/" {
                vec![HTTPRouteFilter {
                    type_: "URLRewrite".into(),
                    url_rewrite: Some(HTTPURLRewriteFilter {
                        path: Some(HTTPPathModifier {
                            type_: "ReplacePrefixMatch".into(),
                            replace_prefix_match: Some("/".into()),
                        }),
                    }),
                }]
            } else {
                Vec::new()
            },
            backend_refs: vec![HTTPBackendRef {
                name: name.into(),
                port,
            }],
            timeouts: Some(HTTPRouteTimeouts {
                request: Some(gateway_duration(r.timeouts.request.std())),
                backend_request: None,
            }),
        })
        .collect();
    HTTPRoute {
        metadata: meta(object, ns, labels.clone()),
        spec: HTTPRouteSpec {
            parent_refs: vec![ParentReference {
                name: opts.gateway.name.clone(),
                namespace: opts.gateway.namespace.clone(),
                section_name: None,
            }],
            hostnames: host.into_iter().collect(),
            rules,
        },
    }
}

/// A Gateway API duration (`^([0-9]{1,5}(h|m|s|ms)){1,4}$`): `30s`, `1m30s`, `1500ms`.
pub(crate) fn gateway_duration(d: std::time::Duration) -> String {
    let ms = d.as_millis();
    if !ms.is_multiple_of(1000) && ms <= 99_999 {
        return format!("{ms}ms");
    }
    let secs = d.as_secs();
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{}h", h.min(99_999)));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 || out.is_empty() {
        out.push_str(&format!("{s}s"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::gateway_duration;
    use std::time::Duration;

    #[test]
    fn durations_take_the_gateway_api_form() {
        assert_eq!(gateway_duration(Duration::from_secs(30)), "30s");
        assert_eq!(gateway_duration(Duration::from_millis(1500)), "1500ms");
        assert_eq!(gateway_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(gateway_duration(Duration::from_secs(7200)), "2h");
        assert_eq!(gateway_duration(Duration::ZERO), "0s");
    }
}
