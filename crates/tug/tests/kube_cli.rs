//! `tug render k8s|helm` and the `--kube` commands, run as the built binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn tug(dir: &Path, args: &[&str], env: &[(&str, &Path)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tug"));
    c.args(args).current_dir(dir);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("tug runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

const HELLO: &[&str] = &[
    "render",
    "k8s",
    "--image",
    "web=registry.example/hello:1.0.0",
    "--skip",
    "pids",
];

#[test]
fn render_k8s_prints_the_golden_manifests_byte_for_byte() {
    let hello = repo().join("examples/hello");
    let out = tug(&hello, HELLO, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let golden =
        std::fs::read_to_string(repo().join("crates/tug-kube/tests/golden/hello.yaml")).unwrap();
    assert!(
        text(&out.stdout) == golden,
        "tug render k8s differs from crates/tug-kube/tests/golden/hello.yaml"
    );
}

#[test]
fn render_k8s_of_a_build_without_image_fails_at_the_line_with_the_fix() {
    let out = tug(&repo().join("examples/hello"), &["render", "k8s"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let e = text(&out.stderr);
    assert!(
        e.contains("tug.yaml:8:5: service `web` is built from source"),
        "{e}"
    );
    assert!(e.contains("--image web=REF"), "{e}");
    assert!(e.contains("--skip pids"), "{e}");
}

#[test]
fn render_writes_one_file_per_object_and_a_helm_chart() {
    let dir = tempfile::tempdir().unwrap();
    let k8s = dir.path().join("k8s");
    let mut args = HELLO.to_vec();
    args.extend(["--out", k8s.to_str().unwrap()]);
    let out = tug(&repo().join("examples/hello"), &args, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    for f in [
        "deployment-web.yaml",
        "service-web.yaml",
        "networkpolicy-hello-default-deny.yaml",
    ] {
        assert!(k8s.join(f).is_file(), "{f} missing");
    }
    let chart = dir.path().join("chart");
    let mut args = HELLO.to_vec();
    args[1] = "helm";
    args.extend(["--out", chart.to_str().unwrap()]);
    let out = tug(&repo().join("examples/hello"), &args, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let values = std::fs::read_to_string(chart.join("values.yaml")).unwrap();
    assert!(
        values.contains("replicas: 3")
            && values.contains("image: \"registry.example/hello:1.0.0\""),
        "{values}"
    );
    assert!(
        chart.join("Chart.yaml").is_file() && chart.join("templates/deployment-web.yaml").is_file()
    );
}

#[test]
fn rendered_secrets_are_written_0600_and_never_printed() {
    use std::os::unix::fs::PermissionsExt;
    let relay = repo().join("crates/tug-kube/tests/relay");
    let dir = tempfile::tempdir().unwrap();
    for kind in ["k8s", "helm"] {
        let out_dir = dir.path().join(kind);
        let out = tug(
            &relay,
            &["render", kind, "--out", out_dir.to_str().unwrap()],
            &[],
        );
        assert!(out.status.success(), "{}", text(&out.stderr));
        let printed = text(&out.stdout) + &text(&out.stderr);
        assert!(!printed.contains("test-data-password-1"), "{printed}");
        let mut secrets = 0;
        for entry in walk(&out_dir) {
            let mode = std::fs::metadata(&entry).unwrap().permissions().mode() & 0o777;
            let body = std::fs::read(&entry).unwrap();
            let holds = |needle: &[u8]| body.windows(needle.len()).any(|w| w == needle);
            // The password file's bytes, raw (chart) or base64 (manifest).
            if holds(b"test-data-password-1") || holds(b"dGVzdC1kYXRhLXBhc3N3b3JkLTEK") {
                assert_eq!(mode, 0o600, "{}", entry.display());
                secrets += 1;
            }
            if entry.ends_with("deployment-relay.yaml") {
                assert_eq!(mode, 0o644, "{}", entry.display());
            }
        }
        assert!(secrets >= 1, "{kind}: no file holds the secret");
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn kube_commands_need_kube_and_name_the_context_and_server_they_cannot_reach() {
    let hello = repo().join("examples/hello");
    let out = tug(&hello, &["deploy"], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("pass --kube"));

    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("config");
    std::fs::write(
        &kc,
        "apiVersion: v1\nkind: Config\ncurrent-context: lab\nclusters:\n- name: c\n  cluster: { server: \"https://127.0.0.1:1\" }\ncontexts:\n- name: lab\n  context: { cluster: c, user: u }\nusers:\n- name: u\n  user: { token: t }\n",
    )
    .unwrap();
    let mut args = vec!["deploy", "--kube"];
    args.extend(&HELLO[2..]);
    let out = tug(&hello, &args, &[("KUBECONFIG", &kc)]);
    assert!(!out.status.success());
    let e = text(&out.stderr);
    assert!(
        e.contains("context `lab`") && e.contains("https://127.0.0.1:1/"),
        "{e}"
    );
    let out = tug(
        &hello,
        &["status", "--kube", "--context", "nope"],
        &[("KUBECONFIG", &kc)],
    );
    assert!(
        text(&out.stderr).contains("context `nope` cannot be used"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn render_k8s_routes_gateway_api_prints_http_routes_and_warns_on_stderr() {
    let dir = repo().join("crates/tug-kube/tests/routes");
    let out = tug(
        &dir,
        &[
            "render",
            "k8s",
            "--routes",
            "gateway-api",
            "--gateway",
            "infra/public",
        ],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let golden = std::fs::read_to_string(
        repo().join("crates/tug-kube/tests/golden/routes-gateway-api.yaml"),
    )
    .unwrap();
    assert!(
        text(&out.stdout) == golden,
        "tug render k8s --routes gateway-api differs from routes-gateway-api.yaml"
    );
    let e = text(&out.stderr);
    assert!(
        e.contains("warning: tug.yaml:18:9: `retry` is not rendered"),
        "{e}"
    );
    let out = tug(&dir, &["render", "k8s"], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("kind: Ingress"));
    assert!(
        text(&out.stderr)
            .contains("warning: tug.yaml:12:45: `strip_prefix` is not expressible in an Ingress"),
        "{}",
        text(&out.stderr)
    );
}
