//! `tug render k8s`: golden files, determinism, a round trip through the
//! k8s-openapi types, errors at file:line:col, the official OpenAPI schemas
//! (kubernetes-validate), tug scan's configuration checks and checkov.

mod common;

use common::{example, options, repo, tool};
use std::path::Path;
use std::process::Command;

/// The examples, and tests/relay (ports, expose, file secrets and configs,
/// an env file).
const EXAMPLES: &[&str] = &["hello", "shop", "relay"];

fn rendered(name: &str) -> String {
    let (stack, text) = example(name);
    tug_kube::to_yaml(&tug_kube::render(&stack, &text, &options(name)).unwrap())
}

/// Compares with tests/golden/NAME; `UPDATE_GOLDEN=1` rewrites the file.
fn golden(file: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(file);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (UPDATE_GOLDEN=1 writes it)", path.display()));
    assert!(
        expected == actual,
        "{file} differs from the golden file; review with UPDATE_GOLDEN=1 and git diff"
    );
}

#[test]
fn renders_match_the_golden_files() {
    for name in EXAMPLES {
        golden(&format!("{name}.yaml"), &rendered(name));
    }
}

#[test]
fn helm_charts_match_the_golden_files() {
    for name in EXAMPLES {
        let (stack, text) = example(name);
        let files = tug_kube::helm::chart(&stack, &text, &options(name)).unwrap();
        let mut all = String::new();
        for f in files {
            let secret = if f.secret { " (0600)" } else { "" };
            all.push_str(&format!(
                "### {}{secret}\n{}",
                f.path.display(),
                String::from_utf8_lossy(&f.content)
            ));
        }
        golden(&format!("{name}-helm.txt"), &all);
    }
}

#[test]
fn rendering_is_byte_identical_run_after_run() {
    for name in EXAMPLES {
        assert_eq!(rendered(name), rendered(name));
    }
}

#[test]
fn every_object_round_trips_through_the_k8s_openapi_types() {
    for name in EXAMPLES {
        let (stack, text) = example(name);
        let objects = tug_kube::render(&stack, &text, &options(name)).unwrap();
        let yaml = tug_kube::to_yaml(&objects);
        let back = tug_kube::from_yaml(&yaml).unwrap();
        assert_eq!(
            back, objects,
            "{name}: typed objects differ after a YAML round trip"
        );
        assert_eq!(tug_kube::to_yaml(&back), yaml);
    }
}

#[test]
fn every_object_carries_the_recommended_labels_and_the_namespace() {
    for name in EXAMPLES {
        let (stack, text) = example(name);
        for o in tug_kube::render(&stack, &text, &options(name)).unwrap() {
            let l = o.metadata().labels.clone().unwrap_or_default();
            for key in [
                "app.kubernetes.io/part-of",
                "app.kubernetes.io/managed-by",
                "app.kubernetes.io/component",
                "dev.tug.stack",
            ] {
                assert!(l.contains_key(key), "{} has no {key}", o.id());
            }
            assert_eq!(o.metadata().namespace.as_deref(), Some(*name));
        }
    }
}

#[test]
fn strings_a_yaml_1_1_reader_would_retype_are_quoted() {
    let y = rendered("shop");
    // cache runs `redis-server --appendonly no`: kubectl must read the string "no".
    assert!(y.contains("- \"no\""), "{y}");
    assert!(y.contains("value: \"8080\""));
}

fn errors(yaml: &str, opts: &tug_kube::RenderOptions) -> String {
    let stack = tug_spec::parse_str(yaml, "tug.yaml".as_ref()).unwrap();
    tug_kube::render(&stack, yaml, opts)
        .unwrap_err()
        .to_string()
}

#[test]
fn settings_without_a_kubernetes_meaning_are_errors_at_their_position() {
    let yaml = "\
name: s
services:
  a:
    build: { rust: { package: a } }
    port: 80
    publish: 8080
    restart: on-failure
    volumes: [/srv/data:/data]
    security: { user: app, seccomp: /etc/profile.json }
    health: { http: /health, interval: 500ms }
    resources: { pids: 100 }
    depends_on: { b: completed }
  b:
    image: x:1
";
    let e = errors(yaml, &tug_kube::RenderOptions::default());
    for expected in [
        "tug.yaml:4:5: service `a` is built from source and names no image",
        "tug.yaml:6:5: `publish`",
        "tug.yaml:7:5: restart: on-failure cannot be carried by a Deployment",
        "tug.yaml:8:15: bind mount of `/srv/data`",
        "tug.yaml:9:17: user `app` is a name",
        "tug.yaml:9:28: seccomp profile `/etc/profile.json`",
        "tug.yaml:10:30: 500ms is not a whole number of seconds",
        "tug.yaml:11:18: `resources.pids` has no per-pod equivalent",
        "tug.yaml:12:19: depends_on `b`: completed",
    ] {
        assert!(e.contains(expected), "missing `{expected}` in:\n{e}");
    }
    assert_eq!(e.matches("tug.yaml:").count(), 9, "{e}");
}

#[test]
fn skipping_a_node_level_setting_and_naming_the_image_make_it_render() {
    let yaml = "name: s\nservices:\n  a:\n    build: { rust: { package: a } }\n    port: 80\n    publish: 8080\n    resources: { pids: 100 }\n";
    let mut opts = tug_kube::RenderOptions::default();
    opts.images.insert("a".into(), "r.example/a:1".into());
    opts.skip.insert(tug_kube::Skip::Pids);
    opts.skip.insert(tug_kube::Skip::Publish);
    let stack = tug_spec::parse_str(yaml, "tug.yaml".as_ref()).unwrap();
    let objects = tug_kube::render(&stack, yaml, &opts).unwrap();
    assert!(tug_kube::to_yaml(&objects).contains("image: \"r.example/a:1\""));
    opts.images.insert("nope".into(), "r.example/x:1".into());
    let e = tug_kube::render(&stack, yaml, &opts)
        .unwrap_err()
        .to_string();
    assert!(e.contains("--image names service `nope`"), "{e}");
}

#[test]
fn loosened_security_is_carried_exactly_as_written() {
    let yaml = "name: s\nservices:\n  a:\n    image: x:1\n    security: { user: \"10001\", read_only: false, cap_add: [NET_BIND_SERVICE], no_new_privileges: false, seccomp: unconfined }\n";
    let stack = tug_spec::parse_str(yaml, "tug.yaml".as_ref()).unwrap();
    let y = tug_kube::to_yaml(&tug_kube::render(&stack, yaml, &Default::default()).unwrap());
    assert!(y.contains("readOnlyRootFilesystem: false"));
    assert!(y.contains("allowPrivilegeEscalation: true"));
    assert!(
        y.contains("add:\n                - NET_BIND_SERVICE"),
        "{y}"
    );
    assert!(y.contains("type: Unconfined"));
    assert!(
        !y.contains("mountPath: /tmp"),
        "a writable root needs no /tmp volume"
    );
}

fn write_renders(dir: &Path) {
    for name in EXAMPLES {
        std::fs::write(dir.join(format!("{name}.yaml")), rendered(name)).unwrap();
    }
}

#[test]
fn every_object_validates_against_the_official_schemas_of_two_kubernetes_versions() {
    let Some(kv) = tool("kubernetes-validate") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    write_renders(dir.path());
    for version in ["1.36.0", "1.37.0"] {
        let out = Command::new(&kv)
            .args(["--strict", "--quiet", "-k", version])
            .arg(dir.path().join("hello.yaml"))
            .arg(dir.path().join("shop.yaml"))
            .arg(dir.path().join("relay.yaml"))
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
fn rendered_objects_pass_tug_scans_configuration_checks() {
    for name in EXAMPLES {
        let text = rendered(name);
        let (findings, errors) =
            tug_scan::config::kube::scan(&text, &format!("{name}.yaml"), Path::new("x.yaml"));
        assert!(errors.is_empty(), "{errors:?}");
        // Informational findings (a tag without a digest) never fail a scan;
        // README says why renders name images by tag.
        let ids: Vec<String> = findings
            .iter()
            .filter(|f| !f.is_informational())
            .map(|f| format!("{}: {}", f.rule_id, f.message))
            .collect();
        assert!(ids.is_empty(), "{name}: {ids:#?}");
    }
}

/// The checkov checks tug's renders do not meet on purpose; README lists why.
pub const CHECKOV_SKIPPED: &[&str] = &["CKV_K8S_43", "CKV_K8S_35"];

#[test]
fn rendered_objects_pass_checkovs_kubernetes_checks() {
    let Some(checkov) = tool("checkov") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    write_renders(dir.path());
    let out = Command::new(&checkov)
        .args([
            "--framework",
            "kubernetes",
            "--quiet",
            "--compact",
            "--skip-download",
        ])
        .args(["--skip-check", &CHECKOV_SKIPPED.join(",")])
        .arg("-d")
        .arg(dir.path())
        .env("BC_SKIP_MAPPING", "TRUE")
        .current_dir(repo())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "checkov failed checks:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn ports_expose_secrets_configs_and_env_files_render_to_their_objects() {
    let (stack, text) = example("relay");
    let objects = tug_kube::render(&stack, &text, &options("relay")).unwrap();
    let find = |id: &str| {
        objects
            .iter()
            .find(|o| o.id().starts_with(id))
            .unwrap_or_else(|| panic!("no {id}"))
    };
    let tug_kube::Object::Service(svc) = find("service/relay") else {
        unreachable!()
    };
    let ports: Vec<(String, i32, String)> = svc
        .spec
        .as_ref()
        .unwrap()
        .ports
        .iter()
        .flatten()
        .map(|p| (p.name.clone().unwrap(), p.port, p.protocol.clone().unwrap()))
        .collect();
    let want = [
        ("main", 8080, "TCP"),
        ("udp-53", 53, "UDP"),
        ("tcp-53", 53, "TCP"),
        ("tcp-9090", 9090, "TCP"),
        ("tcp-9600", 9600, "TCP"),
        ("udp-5353", 5353, "UDP"),
    ];
    assert_eq!(
        ports,
        want.map(|(n, p, t)| (n.to_string(), p, t.to_string()))
    );
    // The file secret: its bytes, mounted read-only 0400 at its target.
    let tug_kube::Object::Secret(s) = find("secret/relay-secret-db-password-") else {
        unreachable!()
    };
    assert_eq!(
        s.data.as_ref().unwrap()["db_password"].0,
        b"test-data-password-1\n"
    );
    let tug_kube::Object::Deployment(d) = find("deployment/relay") else {
        unreachable!()
    };
    let pod = d.spec.template.spec.as_ref().unwrap();
    let mount = pod.containers[0]
        .volume_mounts
        .iter()
        .flatten()
        .find(|m| m.mount_path == "/run/secrets/db_password")
        .unwrap();
    assert_eq!(mount.read_only, Some(true));
    let vol = pod
        .volumes
        .iter()
        .flatten()
        .find(|v| v.name == mount.name)
        .unwrap();
    assert_eq!(vol.secret.as_ref().unwrap().default_mode, Some(0o400));
    assert_eq!(pod.security_context.as_ref().unwrap().fs_group, Some(10001));
    // The config at its target, its `{{ }}` as written.
    let tug_kube::Object::ConfigMap(c) = find("configmap/relay-config-relay-conf-") else {
        unreachable!()
    };
    assert!(c.data.as_ref().unwrap()["relay_conf"].contains("{{ name }}"));
    // env_file values go to the Secret, tug.yaml's own literals to the ConfigMap.
    // Named relay-secret-HASH, unlike the file secrets (relay-secret-NAME-HASH).
    let env = objects
        .iter()
        .find(|o| o.id().starts_with("secret/relay-secret-") && o.name().len() == 23)
        .unwrap();
    let tug_kube::Object::Secret(env) = env else {
        unreachable!()
    };
    let keys: Vec<&String> = env.data.as_ref().unwrap().keys().collect();
    assert_eq!(keys, ["REGION", "UPSTREAM_DSN"]);
    let tug_kube::Object::ConfigMap(env) = find("configmap/relay-env-") else {
        unreachable!()
    };
    let keys: Vec<&String> = env.data.as_ref().unwrap().keys().collect();
    assert_eq!(keys, ["LOG_LEVEL"]);
}

#[test]
fn published_ports_and_aliases_are_errors_at_their_position() {
    let yaml = "\
name: s
services:
  a:
    image: x:1
    ports: [53/udp, { port: 443, publish: 8443 }]
    aliases: [dns]
";
    let e = errors(yaml, &tug_kube::RenderOptions::default());
    for expected in [
        "tug.yaml:5:21: port 443/tcp: `publish` and `host_ip`",
        "tug.yaml:6:5: `aliases`",
    ] {
        assert!(e.contains(expected), "missing `{expected}` in:\n{e}");
    }
    assert_eq!(e.matches("tug.yaml:").count(), 2, "{e}");
    let mut opts = tug_kube::RenderOptions::default();
    opts.skip.insert(tug_kube::Skip::Publish);
    let e = errors(yaml, &opts);
    assert_eq!(e.matches("tug.yaml:").count(), 1, "{e}");
}
