//! `route:` on Kubernetes: an Ingress (the default) or a Gateway API HTTPRoute,
//! golden files for both, warnings for what the target cannot say, the
//! NetworkPolicy that admits the controller, the official Ingress schema
//! (kubernetes-validate) and the HTTPRoute CRD's openAPIV3Schema.

mod common;

use common::tool;
use std::path::{Path, PathBuf};
use std::process::Command;
use tug_kube::{GatewayRef, Object, RenderOptions, RouteTarget};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests")
}

fn stack() -> (tug_spec::Stack, String) {
    let rel = PathBuf::from("tests/routes/tug.yaml");
    let text = std::fs::read_to_string(dir().join("routes/tug.yaml")).unwrap();
    (tug_spec::parse_str(&text, &rel).unwrap(), text)
}

fn ingress_options() -> RenderOptions {
    RenderOptions {
        ingress_class: Some("nginx".into()),
        ..RenderOptions::default()
    }
}

fn gateway_options() -> RenderOptions {
    RenderOptions {
        routes: RouteTarget::GatewayApi,
        gateway: GatewayRef {
            name: "public".into(),
            namespace: Some("infra".into()),
        },
        ..RenderOptions::default()
    }
}

fn render(opts: &RenderOptions) -> tug_kube::Rendered {
    let (stack, text) = stack();
    tug_kube::render_with_warnings(&stack, &text, opts).unwrap()
}

/// Compares with tests/golden/NAME; `UPDATE_GOLDEN=1` rewrites the file.
fn golden(file: &str, actual: &str) {
    let path = dir().join("golden").join(file);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).unwrap();
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (UPDATE_GOLDEN=1 writes it)", path.display()));
    assert!(
        expected == actual,
        "{file} differs from the golden file; review with UPDATE_GOLDEN=1 and git diff"
    );
}

fn warnings(r: &tug_kube::Rendered) -> String {
    r.warnings
        .iter()
        .map(|w| w.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn routes_render_as_ingresses_and_http_routes_matching_the_golden_files() {
    let i = render(&ingress_options());
    golden("routes-ingress.yaml", &tug_kube::to_yaml(&i.objects));
    let g = render(&gateway_options());
    golden("routes-gateway-api.yaml", &tug_kube::to_yaml(&g.objects));
    // Byte-identical run after run.
    assert_eq!(
        tug_kube::to_yaml(&render(&gateway_options()).objects),
        tug_kube::to_yaml(&g.objects)
    );
    assert!(!i.objects.iter().any(|o| matches!(o, Object::HTTPRoute(_))));
    assert!(!g.objects.iter().any(|o| matches!(o, Object::Ingress(_))));
}

#[test]
fn what_an_ingress_cannot_say_is_a_warning_at_its_line() {
    let w = warnings(&render(&ingress_options()));
    for expected in [
        "tests/routes/tug.yaml:6:3: `gateway.max_body_size` is tug's local gateway setting",
        "tests/routes/tug.yaml:12:45: `strip_prefix` is not expressible in an Ingress: the service receives the full path `/v1…`",
        "tests/routes/tug.yaml:16:9: `strip_prefix` is not expressible in an Ingress",
        "tests/routes/tug.yaml:17:21: `timeouts.request` is not expressible in an Ingress",
        "tests/routes/tug.yaml:17:35: `timeouts.connect` is not expressible in an Ingress",
        "tests/routes/tug.yaml:18:9: `retry` is not rendered: an Ingress has no retry field",
        "tests/routes/tug.yaml:23:23: `balance` is not expressible in an Ingress",
    ] {
        assert!(w.contains(expected), "missing `{expected}` in:\n{w}");
    }
    assert_eq!(w.matches("tests/routes/tug.yaml:").count(), 7, "{w}");
}

#[test]
fn an_http_route_says_strip_prefix_and_the_request_timeout() {
    let r = render(&gateway_options());
    let w = warnings(&r);
    assert!(!w.contains("strip_prefix"), "{w}");
    assert!(!w.contains("timeouts.request"), "{w}");
    assert!(
        w.contains(
            "tests/routes/tug.yaml:17:35: `timeouts.connect` is not expressible in an HTTPRoute"
        ),
        "{w}"
    );
    assert!(w.contains("tests/routes/tug.yaml:18:9: `retry` is not rendered: HTTPRoute retries are in the Gateway API's experimental channel only"), "{w}");
    let routes: Vec<_> = r
        .objects
        .iter()
        .filter_map(|o| match o {
            Object::HTTPRoute(h) => Some(h),
            _ => None,
        })
        .collect();
    // api has two hosts: one HTTPRoute each, so no host gets the other's paths.
    let names: Vec<_> = routes
        .iter()
        .map(|h| h.metadata.name.clone().unwrap())
        .collect();
    assert_eq!(names, ["api-1", "api-2", "web"]);
    assert_eq!(routes[0].spec.hostnames, ["api.example.com"]);
    assert_eq!(routes[1].spec.hostnames, ["www.example.com"]);
    assert!(routes[2].spec.hostnames.is_empty());
    let www = &routes[1].spec.rules[0];
    let rewrite = www.filters[0]
        .url_rewrite
        .as_ref()
        .unwrap()
        .path
        .as_ref()
        .unwrap();
    assert_eq!(rewrite.type_, "ReplacePrefixMatch");
    assert_eq!(rewrite.replace_prefix_match.as_deref(), Some("/"));
    assert_eq!(
        www.timeouts.as_ref().unwrap().request.as_deref(),
        Some("1m30s")
    );
    for h in &routes {
        assert_eq!(h.spec.parent_refs[0].name, "public");
        assert_eq!(h.spec.parent_refs[0].namespace.as_deref(), Some("infra"));
    }
}

/// The `from` peers of a service's NetworkPolicy, as YAML text.
fn policy_of(objects: &[Object], service: &str) -> String {
    let np = objects
        .iter()
        .find(|o| matches!(o, Object::NetworkPolicy(_)) && o.name() == service)
        .unwrap_or_else(|| panic!("no NetworkPolicy for {service}"));
    tug_kube::to_yaml(std::slice::from_ref(np))
}

#[test]
fn the_network_policy_admits_the_controller_to_routed_services_only() {
    let i = render(&ingress_options()).objects;
    let api = policy_of(&i, "api");
    assert!(
        api.contains("kubernetes.io/metadata.name: ingress-nginx"),
        "{api}"
    );
    assert!(api.contains("app.kubernetes.io/name: web"), "{api}");
    let db = policy_of(&i, "db");
    assert!(!db.contains("namespaceSelector"), "db is not routed:\n{db}");
    let g = render(&gateway_options()).objects;
    assert!(policy_of(&g, "web").contains("kubernetes.io/metadata.name: infra"));
    let mut o = gateway_options();
    o.controller_namespace = Some("envoy-gateway-system".into());
    let (stack, text) = stack();
    let objects = tug_kube::render(&stack, &text, &o).unwrap();
    assert!(
        policy_of(&objects, "web").contains("kubernetes.io/metadata.name: envoy-gateway-system")
    );
}

#[test]
fn http_routes_round_trip_through_yaml() {
    let objects = render(&gateway_options()).objects;
    let yaml = tug_kube::to_yaml(&objects);
    assert_eq!(tug_kube::from_yaml(&yaml).unwrap(), objects);
}

/// The v1 openAPIV3Schema of the Gateway API's HTTPRoute CRD (test-data).
fn http_route_schema() -> jsonschema::Validator {
    let path = dir().join("test-data/gateway-api/gateway.networking.k8s.io_httproutes.yaml");
    let crd: serde_json::Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let version = crd["spec"]["versions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "v1")
        .unwrap();
    jsonschema::validator_for(&version["schema"]["openAPIV3Schema"]).unwrap()
}

fn schema_errors(v: &jsonschema::Validator, doc: &serde_json::Value) -> Vec<String> {
    v.iter_errors(doc)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

#[test]
fn every_http_route_validates_against_the_gateway_api_crd_schema() {
    let v = http_route_schema();
    let mut checked = 0;
    for o in render(&gateway_options()).objects {
        if let Object::HTTPRoute(_) = o {
            let doc = serde_json::to_value(&o).unwrap();
            let errors = schema_errors(&v, &doc);
            assert!(errors.is_empty(), "{}: {errors:#?}", o.id());
            checked += 1;
        }
    }
    assert_eq!(checked, 3);
    // The check can fail: a path type the CRD does not know, a bad duration.
    let mut bad = serde_json::to_value(
        render(&gateway_options())
            .objects
            .into_iter()
            .find(|o| matches!(o, Object::HTTPRoute(_)))
            .unwrap(),
    )
    .unwrap();
    bad["spec"]["rules"][0]["matches"][0]["path"]["type"] = "Prefix".into();
    bad["spec"]["rules"][0]["timeouts"]["request"] = "90 seconds".into();
    let errors = schema_errors(&v, &bad);
    assert_eq!(errors.len(), 2, "{errors:#?}");
}

#[test]
fn ingresses_validate_against_the_official_schemas() {
    let Some(kv) = tool("kubernetes-validate") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("routes.yaml");
    std::fs::write(
        &file,
        tug_kube::to_yaml(&render(&ingress_options()).objects),
    )
    .unwrap();
    for version in ["1.36.0", "1.37.0"] {
        let out = Command::new(&kv)
            .args(["--strict", "--quiet", "-k", version])
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "kubernetes-validate {version}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn a_helm_chart_renders_routes_behind_ingress_values() {
    let (stack, text) = stack();
    let files = tug_kube::helm::chart(&stack, &text, &ingress_options()).unwrap();
    let get = |name: &str| {
        files
            .iter()
            .find(|f| f.path == Path::new(name))
            .map(|f| String::from_utf8_lossy(&f.content).into_owned())
            .unwrap_or_else(|| panic!("no {name}"))
    };
    let values = get("values.yaml");
    assert!(
        values.contains("ingress:\n  className: nginx\n  enabled: true"),
        "{values}"
    );
    assert!(
        values.contains("hosts:\n      - api.example.com\n      - www.example.com"),
        "{values}"
    );
    let ing = get("templates/ingress-api.yaml");
    assert!(
        ing.starts_with("# Rendered by `tug render helm`.\n{{- if .Values.ingress.enabled }}\n"),
        "{ing}"
    );
    assert!(
        ing.contains("- host: {{ with index .Values.services.api.hosts 1 }}{{ . | quote }}{{ else }}null{{ end }}"),
        "{ing}"
    );
    assert!(ing.contains("{{- with .Values.ingress.className }}\n  ingressClassName: {{ . | quote }}\n  {{- end }}"), "{ing}");
    assert!(ing.ends_with("{{- end }}\n"));
}

#[test]
fn keys_render_k8s_cannot_carry_are_errors_at_their_position() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("s.txt"), "x").unwrap();
    std::fs::write(tmp.path().join("k.pub"), "x").unwrap();
    let yaml = "\
name: s
secrets: { s: { file: s.txt } }
services:
  a:
    image: x:1
    port: 80
    host_ip: 0.0.0.0
    expose: [9000]
    aliases: [b]
    secrets: [s]
    verify: { key: k.pub }
";
    let path = tmp.path().join("tug.yaml");
    let stack = tug_spec::parse_str(yaml, &path).unwrap();
    let e = tug_kube::render(&stack, yaml, &RenderOptions::default())
        .unwrap_err()
        .to_string();
    for expected in [
        ":7:5: `host_ip`",
        ":9:5: `aliases` (more names on the stack's network) is not rendered",
        ":11:5: `verify` (a signature checked before any container starts)",
    ] {
        assert!(e.contains(expected), "missing `{expected}` in:\n{e}");
    }
    let mut o = RenderOptions::default();
    o.skip.insert(tug_kube::Skip::Verify);
    o.skip.insert(tug_kube::Skip::Publish);
    let e = tug_kube::render(&stack, yaml, &o).unwrap_err().to_string();
    assert!(!e.contains("verify") && !e.contains("host_ip"), "{e}");
    // expose and the file secret render; only the alias is left.
    assert_eq!(e.matches("tug.yaml:").count(), 1, "{e}");
}
