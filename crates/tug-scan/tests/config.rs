mod common;

use common::*;
use std::collections::BTreeSet;
use tug_scan::{scan, Finding, ScanOptions, ScannerKind, Severity};

fn config_scan(files: &[(&str, &str)]) -> tug_scan::Report {
    let dir = tempfile::tempdir().unwrap();
    for (rel, text) in files {
        write(dir.path(), rel, text);
    }
    let mut o = ScanOptions::new(dir.path());
    o.scanners = vec![ScannerKind::Config];
    scan(&o).unwrap()
}

fn rules_in<'a>(r: &'a tug_scan::Report, file: &str) -> BTreeSet<&'a str> {
    r.findings
        .iter()
        .filter(|f| f.file == file)
        .map(|f| f.rule_id.as_str())
        .collect()
}

fn one<'a>(r: &'a tug_scan::Report, file: &str, rule: &str) -> &'a Finding {
    let v: Vec<_> = r
        .findings
        .iter()
        .filter(|f| f.file == file && f.rule_id == rule)
        .collect();
    assert_eq!(v.len(), 1, "{rule} in {file}: {v:#?}");
    v[0]
}

const BAD_K8S: &str = r#"apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  a: b
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: api
spec:
  template:
    spec:
      hostNetwork: true
      hostPID: true
      volumes:
        - name: sock
          hostPath:
            path: /var/run/docker.sock
        - name: logs
          hostPath:
            path: /var/log
      containers:
        - name: api
          image: registry.local/api:latest
          env:
            - name: DB_PASSWORD
              value: Zq8vN3kLw2Rt
            - name: FROM_SECRET_PASSWORD
              valueFrom: { secretKeyRef: { name: db, key: pw } }
          securityContext:
            privileged: true
            runAsUser: 0
            allowPrivilegeEscalation: true
            seccompProfile:
              type: Unconfined
            capabilities:
              add: ["SYS_ADMIN"]
        - name: sidecar
          image: registry.local/sidecar
          securityContext:
            capabilities:
              add: ["CHOWN"]
          ports:
            - containerPort: 8080
              hostPort: 8080
"#;

const GOOD_K8S: &str = r#"apiVersion: batch/v1
kind: CronJob
metadata:
  name: nightly
  namespace: batch
spec:
  jobTemplate:
    spec:
      template:
        spec:
          automountServiceAccountToken: false
          securityContext:
            runAsNonRoot: true
            seccompProfile: { type: RuntimeDefault }
          containers:
            - name: job
              image: registry.local/job:1.4.2@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
              env:
                - name: API_TOKEN
                  valueFrom: { secretKeyRef: { name: api, key: token } }
              readinessProbe: { exec: { command: [true] } }
              livenessProbe: { exec: { command: [true] } }
              resources: { limits: { cpu: 100m, memory: 64Mi } }
              securityContext:
                readOnlyRootFilesystem: true
                allowPrivilegeEscalation: false
                capabilities: { drop: [ALL] }
"#;

#[test]
fn kubernetes_checks_fire_with_lines() {
    let helm =
        "apiVersion: v1\nkind: Pod\nspec:\n  containers:\n{{- include \"c\" . | nindent 4 }}\n";
    let r = config_scan(&[
        ("k8s/app.yaml", BAD_K8S),
        ("k8s/good.yml", GOOD_K8S),
        ("chart/templates/pod.yaml", helm),
    ]);
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(rules_in(&r, "chart/templates/pod.yaml"), BTreeSet::new());
    assert_eq!(
        r.notices,
        ["chart/templates/pod.yaml: skipped: a template ({{ }} outside strings); scan the rendered output (helm template … > out.yaml)"]
    );
    assert_eq!(
        rules_in(&r, "k8s/good.yml"),
        BTreeSet::new(),
        "{:#?}",
        r.findings
    );
    let got = rules_in(&r, "k8s/app.yaml");
    let want: BTreeSet<&str> = [
        "TUGC001", "TUGC002", "TUGC003", "TUGC004", "TUGC005", "TUGC006", "TUGC007", "TUGC008",
        "TUGC009", "TUGC010", "TUGC011", "TUGC012", "TUGC013", "TUGC015", "TUGC016", "TUGC017",
        "TUGC018",
    ]
    .into();
    assert_eq!(got, want);
    let f = "k8s/app.yaml";
    assert_eq!(one(&r, f, "TUGC001").line, 33);
    assert_eq!(one(&r, f, "TUGC015").line, 47);
    assert_eq!(one(&r, f, "TUGC017").line, 9);
    // The ConfigMap and the Deployment both lack a namespace.
    assert_eq!(
        r.findings
            .iter()
            .filter(|x| x.file == f && x.rule_id == "TUGC018")
            .map(|x| x.line)
            .collect::<Vec<_>>(),
        [3, 10]
    );
    assert_eq!(one(&r, f, "TUGC001").col, 13);
    assert_eq!(one(&r, f, "TUGC004").line, 20);
    assert_eq!(one(&r, f, "TUGC003").line, 23);
    assert_eq!(one(&r, f, "TUGC011").line, 28);
    let caps: Vec<_> = r
        .findings
        .iter()
        .filter(|x| x.file == f && x.rule_id == "TUGC005")
        .collect();
    assert_eq!(caps.len(), 2);
    assert_eq!(
        caps.iter()
            .find(|c| c.message.contains("SYS_ADMIN"))
            .unwrap()
            .severity,
        Severity::High
    );
    assert_eq!(
        caps.iter()
            .find(|c| c.message.contains("CHOWN"))
            .unwrap()
            .severity,
        Severity::Medium
    );
    assert_eq!(
        r.findings
            .iter()
            .filter(|x| x.file == f && x.rule_id == "TUGC002")
            .count(),
        2
    );
    // Both containers lack probes and limits; only `sidecar` is untagged-and-root-by-default.
    assert_eq!(
        r.findings
            .iter()
            .filter(|x| x.file == f && x.rule_id == "TUGC009")
            .count(),
        2
    );
}

#[test]
fn compose_checks() {
    let bad = "services:\n  app:\n    image: nginx\n    privileged: true\n    network_mode: host\n    pid: host\n    user: \"0\"\n    cap_add: [NET_ADMIN]\n    security_opt: [\"seccomp:unconfined\", \"no-new-privileges:false\"]\n    volumes:\n      - /var/run/docker.sock:/var/run/docker.sock\n    environment:\n      - API_KEY=Zq8vN3kLw2Rt\n      - LOG=debug\n";
    let good = "services:\n  app:\n    image: registry.local/app:2.1\n    user: \"10001\"\n    read_only: true\n    environment:\n      API_KEY: ${API_KEY}\n      DB_PASSWORD_FILE: /run/secrets/db\n";
    let r = config_scan(&[
        ("compose.yaml", bad),
        ("deploy/docker-compose.prod.yml", good),
    ]);
    assert_eq!(
        rules_in(&r, "deploy/docker-compose.prod.yml"),
        BTreeSet::new()
    );
    let got = rules_in(&r, "compose.yaml");
    let want: BTreeSet<&str> = [
        "TUGC001", "TUGC002", "TUGC004", "TUGC005", "TUGC006", "TUGC009", "TUGC011", "TUGC012",
        "TUGC013",
    ]
    .into();
    assert_eq!(got, want);
    assert_eq!(one(&r, "compose.yaml", "TUGC001").line, 4);
    assert_eq!(one(&r, "compose.yaml", "TUGC006").line, 7);
}

#[test]
fn dockerfile_checks() {
    let bad = "FROM rust:1.80 AS build\nRUN cargo build --release\n\nFROM debian\nARG GITHUB_TOKEN=Zq8vN3kLw2Rt\nENV DB_PASSWORD=hunter2-Zq8v \\\n    MODE=prod\nADD https://example.com/tool.tar.gz /opt/\nCOPY --from=build /app /app\nUSER root\n";
    let good = "FROM rust:1.80 AS build\nRUN cargo build\nFROM build AS test\nRUN cargo test\nFROM gcr.io/distroless/cc:nonroot@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\nARG VERSION=1.0\nENV API_TOKEN_FILE=/run/secrets/token\nADD --checksum=sha256:abcd https://example.com/tool.tar.gz /opt/\nCOPY --from=build /app /app\nUSER 10001\n";
    let noroot = "FROM alpine:3.20\nRUN true\n";
    let r = config_scan(&[
        ("Dockerfile", bad),
        ("images/api.Dockerfile", good),
        ("Containerfile", noroot),
    ]);
    assert_eq!(
        rules_in(&r, "images/api.Dockerfile"),
        BTreeSet::new(),
        "{:#?}",
        r.findings
    );
    let f = "Dockerfile";
    assert_eq!(one(&r, f, "TUGC009").line, 4);
    assert_eq!(one(&r, f, "TUGC014").line, 8);
    assert_eq!(one(&r, f, "TUGC006").line, 10);
    let secrets: Vec<_> = r
        .findings
        .iter()
        .filter(|x| x.file == f && x.rule_id == "TUGC011")
        .map(|x| x.line)
        .collect();
    assert_eq!(secrets, [5, 6]);
    assert_eq!(one(&r, "Containerfile", "TUGC006").line, 1);
}

#[test]
fn tug_yaml_loosening_is_reported() {
    let bad = std::fs::read_to_string(fixtures().join("config-bad-tug.yaml")).unwrap();
    let good = "name: fine\nservices:\n  web:\n    image: localhost:5000/web:1.2.3\n    env: { RUST_LOG: info, API_TOKEN: \"${API_TOKEN}\" }\n    security: { user: \"10001\", read_only: true }\n";
    let r = config_scan(&[("tug.yaml", &bad), ("other/tug.yml", good)]);
    assert_eq!(rules_in(&r, "other/tug.yml"), BTreeSet::new());
    let f = "tug.yaml";
    let want = [
        ("TUGC001", 11),
        ("TUGC007", 12),
        ("TUGC005", 13),
        ("TUGC006", 14),
        ("TUGC013", 15),
        ("TUGC012", 16),
        ("TUGC011", 6),
        ("TUGC009", 4),
        ("TUGC004", 8),
    ];
    for (rule, line) in want {
        assert_eq!(one(&r, f, rule).line, line, "{rule}");
    }
    assert_eq!(rules_in(&r, f).len(), want.len());
    // Columns point at the key, past indentation.
    assert_eq!(one(&r, f, "TUGC001").col, 7);
}

#[test]
fn bad_manifests_report_position_and_others_still_scan() {
    let r = config_scan(&[
        (
            "k8s/broken.yaml",
            "apiVersion: v1\nkind: Pod\nspec:\n  containers: [\n",
        ),
        (
            "tug.yaml",
            "name: x\nservices:\n  web:\n    imagee: nginx:1\n",
        ),
        ("compose.yaml", "services:\n  a: [unclosed\n"),
        ("k8s/app.yaml", BAD_K8S),
    ]);
    assert_eq!(rules_in(&r, "k8s/app.yaml").len(), 17);
    let files: BTreeSet<String> = r
        .errors
        .iter()
        .map(|e| e.file.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        files,
        ["broken.yaml", "compose.yaml", "tug.yaml"]
            .map(String::from)
            .into()
    );
    let tug = r
        .errors
        .iter()
        .find(|e| e.file.ends_with("tug.yaml"))
        .unwrap();
    // The first problem in file order: `web` has no image (its key is misspelt on line 4).
    assert_eq!(tug.line, 3);
    assert!(r.errors.iter().all(|e| e.line >= 1));
}

#[test]
fn every_config_rule_has_why_and_fix() {
    for r in tug_scan::config::RULES {
        assert!(r.id.starts_with("TUGC") && !r.why.is_empty() && !r.fix.is_empty());
    }
}

const POD: &str = r#"apiVersion: v1
kind: Pod
metadata:
  name: web
  namespace: default
  annotations:
    note: "rendered by {{ .Release.Name }} once"
spec:
  automountServiceAccountToken: true
  securityContext:
    runAsNonRoot: true
    seccompProfile: { type: RuntimeDefault }
  containers:
    - name: web
      image: registry.local/web:1.2.3
      readinessProbe: { exec: { command: [true] } }
      livenessProbe: { exec: { command: [true] } }
      resources: { limits: { cpu: 100m, memory: 64Mi } }
      securityContext:
        readOnlyRootFilesystem: true
        allowPrivilegeEscalation: false
        capabilities:
          drop: [NET_RAW]
          add: [NET_RAW]
"#;

#[test]
fn pod_hardening_checks_and_quoted_braces() {
    // `{{` only inside a quoted value: still a manifest, still checked.
    let r = config_scan(&[("k8s/pod.yaml", POD)]);
    assert!(r.notices.is_empty(), "{:?}", r.notices);
    let f = "k8s/pod.yaml";
    assert_eq!(
        rules_in(&r, f),
        ["TUGC005", "TUGC016", "TUGC017", "TUGC018", "TUGC019"].into()
    );
    assert_eq!(one(&r, f, "TUGC018").line, 5);
    assert_eq!(one(&r, f, "TUGC017").line, 9);
    let caps = one(&r, f, "TUGC016");
    assert!(caps.message.contains("adds NET_RAW"), "{}", caps.message);
    assert_eq!(caps.line, 22);
    // A tag without a digest is informational: alone it does not fail --exit-code.
    let digest = one(&r, f, "TUGC019");
    assert!(digest.is_informational());
    assert_eq!(digest.line, 15);
    let only_digest = tug_scan::Report {
        findings: vec![digest.clone()],
        ..Default::default()
    };
    assert!(!only_digest.has_failures());
}

#[test]
fn duplicate_keys_are_a_parse_error_with_position() {
    let dup =
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: a\n  name: b\nspec:\n  containers: []\n";
    let r = config_scan(&[("k8s/dup.yaml", dup)]);
    assert_eq!(r.errors.len(), 1, "{:?}", r.errors);
    let e = &r.errors[0];
    assert!(e.file.ends_with("k8s/dup.yaml"));
    assert!(e.message.contains("duplicate"), "{}", e.message);
    assert_eq!((e.line, e.col), (5, 3), "{e:?}");
    assert_eq!(r.input_errors().count(), 1);
}

/// kubernetes/examples manifests (tests/data/kube-examples): the risks
/// checkov and Trivy report there (scripts/bench/config-compare.sh) are
/// found, and the file with a duplicate key is an error, not skipped.
#[test]
fn kubernetes_examples_corpus() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/kube-examples");
    let mut o = ScanOptions::new(&root);
    o.scanners = vec![ScannerKind::Config];
    let r = scan(&o).unwrap();
    let all: BTreeSet<&str> = r.findings.iter().map(|f| f.rule_id.as_str()).collect();
    for id in [
        "TUGC001", "TUGC002", "TUGC003", "TUGC004", "TUGC005", "TUGC006", "TUGC007", "TUGC008",
        "TUGC009", "TUGC010", "TUGC012", "TUGC013", "TUGC015", "TUGC016", "TUGC017", "TUGC018",
        "TUGC019",
    ] {
        assert!(all.contains(id), "{id} not found");
    }
    let sysdig = rules_in(&r, "_archived/sysdig-cloud/sysdig-daemonset.yaml");
    for id in ["TUGC001", "TUGC002", "TUGC004"] {
        assert!(sysdig.contains(id), "{id}: {sysdig:?}");
    }
    assert_eq!(r.errors.len(), 1, "{:?}", r.errors);
    assert!(r.errors[0]
        .file
        .ends_with("_archived/openshift-origin/etcd-controller.yaml"));
    assert!(r.errors[0].message.contains("duplicate entry"));
}

#[test]
fn multibyte_healthcheck_in_a_scanned_tree_does_not_panic() {
    // The Dockerfile parser once sliced `t[..3]` inside `é` on this file.
    let r = config_scan(&[
        ("Dockerfile", "FROM scratch\nHEALTHCHECK éé\n"),
        (
            "images/ü.Dockerfile",
            "FROM ñ:ü\nHEALTHCHECK ü CMD é\nUSER 10001\n",
        ),
    ]);
    assert_eq!(one(&r, "Dockerfile", "TUGC006").line, 1);
}

fn lines_of(r: &tug_scan::Report, file: &str, rule: &str) -> Vec<usize> {
    let mut v: Vec<usize> = r
        .findings
        .iter()
        .filter(|f| f.file == file && f.rule_id == rule)
        .map(|f| f.line)
        .collect();
    v.sort();
    v
}

#[test]
fn comment_only_and_empty_documents_keep_lines_aligned() {
    // Helm output: a `# Source:` document with nothing in it parses as an
    // empty document; the ones after it keep their own lines.
    let y = "# Source: chart/templates/a.yaml\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: a\n---\n# Source: chart/templates/b.yaml\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\n---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: c\n---\n";
    let r = config_scan(&[("k8s/rendered.yaml", y)]);
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(lines_of(&r, "k8s/rendered.yaml", "TUGC018"), [5, 12, 17]);
}

#[test]
fn list_items_are_checked_at_their_own_lines() {
    let y = "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Service\n  metadata:\n    name: s\n    namespace: app\n- apiVersion: apps/v1\n  kind: Deployment\n  metadata:\n    name: d\n    namespace: app\n  spec:\n    template:\n      spec:\n        containers:\n        - name: c\n          image: nginx\n          securityContext:\n            privileged: true\n";
    let r = config_scan(&[("k8s/list.yaml", y)]);
    let f = "k8s/list.yaml";
    assert_eq!(lines_of(&r, f, "TUGC001"), [21]);
    assert_eq!(lines_of(&r, f, "TUGC009"), [19]);
    assert!(lines_of(&r, f, "TUGC018").is_empty());
}

#[test]
fn braces_in_a_block_scalar_do_not_make_a_template() {
    // Rendered Helm output keeps chart values such as `{{ .Release.Namespace }}` as text.
    let y = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: values\n  namespace: app\ndata:\n  values: |\n    selector:\n      - {{ .Release.Namespace }}\n---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  namespace: app\nspec:\n  containers:\n  - name: c\n    image: nginx:1.27\n    securityContext:\n      privileged: true\n";
    let r = config_scan(&[("k8s/rendered.yaml", y)]);
    assert!(r.notices.is_empty(), "{:?}", r.notices);
    assert_eq!(lines_of(&r, "k8s/rendered.yaml", "TUGC001"), [21]);
    // Markup outside a block still marks a template.
    let t = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {{ .Values.name }}\n";
    assert!(tug_scan::config::is_skipped_template("pod.yaml", t));
}

#[test]
fn ephemeral_containers_are_checked_without_limits_or_probes() {
    let y = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  namespace: app\nspec:\n  automountServiceAccountToken: false\n  securityContext:\n    runAsNonRoot: true\n    seccompProfile: { type: RuntimeDefault }\n  containers: []\n  ephemeralContainers:\n  - name: debugger\n    image: busybox:1.36@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n    securityContext:\n      privileged: true\n";
    let r = config_scan(&[("k8s/debug.yaml", y)]);
    let f = "k8s/debug.yaml";
    assert_eq!(lines_of(&r, f, "TUGC001"), [16]);
    assert!(lines_of(&r, f, "TUGC008").is_empty());
    assert!(lines_of(&r, f, "TUGC010").is_empty());
}

#[test]
fn merge_keys_are_applied() {
    let y = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  namespace: app\nspec:\n  containers:\n  - name: a\n    image: a:1\n    securityContext: &sc\n      privileged: true\n  - name: b\n    image: b:1\n    securityContext:\n      <<: *sc\n      readOnlyRootFilesystem: true\n";
    let r = config_scan(&[("k8s/anchors.yaml", y)]);
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    let who: BTreeSet<String> = r
        .findings
        .iter()
        .filter(|f| f.rule_id == "TUGC001")
        .map(|f| f.message.split('`').nth(1).unwrap().to_string())
        .collect();
    assert_eq!(who, ["a".to_string(), "b".to_string()].into());
}

#[test]
fn kustomization_files_are_not_cluster_objects() {
    let y = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - deployment.yaml\n";
    let r = config_scan(&[("k8s/kustomization.yaml", y)]);
    assert!(r.findings.is_empty(), "{:#?}", r.findings);
}

#[test]
fn container_lines_stay_inside_the_container_with_sorted_keys() {
    // kustomize and kubectl sort keys: `env[].name` and `image` come before the
    // container's own `name`; the next container starts right after.
    let y = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  namespace: app\nspec:\n  containers:\n  - args: [run]\n    env:\n    - name: MODE\n      value: x\n    name: server\n  initContainers:\n  - image: tool:latest\n    name: copy\n";
    let r = config_scan(&[("k8s/sorted.yaml", y)]);
    let f = "k8s/sorted.yaml";
    // `server` has no image: nothing to flag there; `copy` at its own `image:`.
    assert_eq!(lines_of(&r, f, "TUGC009"), [14]);
    // Container-level findings sit on the container's own `name:` line.
    let server: Vec<usize> = r
        .findings
        .iter()
        .filter(|x| x.rule_id == "TUGC007" && x.message.contains("`server`"))
        .map(|x| x.line)
        .collect();
    assert_eq!(server, [12]);
}

#[test]
fn pod_level_root_user_points_at_the_pod_security_context() {
    let y = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  namespace: app\nspec:\n  securityContext:\n    runAsUser: 0\n  containers:\n  - name: a\n    image: a:1\n    securityContext:\n      readOnlyRootFilesystem: true\n";
    let r = config_scan(&[("k8s/root.yaml", y)]);
    assert_eq!(lines_of(&r, "k8s/root.yaml", "TUGC006"), [8]);
}

#[test]
fn jobs_need_no_probes() {
    let y = "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: j\n  namespace: app\nspec:\n  template:\n    spec:\n      containers:\n      - name: j\n        image: j:1\n";
    let r = config_scan(&[("k8s/job.yaml", y)]);
    assert!(lines_of(&r, "k8s/job.yaml", "TUGC010").is_empty());
}
