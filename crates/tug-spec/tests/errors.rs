//! Every error carries its exact `line:col`, message and hint.

mod common;

use common::{errors, one, owner_and_mode, FILE};
use std::path::Path;
use tug_spec::parse_str;

const HEAD: &str = "name: shop\nservices:\n";

fn svc(body: &str) -> String {
    format!("{HEAD}  web:\n    image: nginx:1\n{body}")
}

#[test]
fn malformed_yaml() {
    let (l, c, m, _) = one("name: shop\nservices:\n  web: [a, b\n");
    assert_eq!((l, c), (4, 1));
    assert!(m.starts_with("invalid YAML: "), "{m}");
    let (l, c, m, _) = one("name: shop\n  bad: indent\n");
    assert_eq!((l, c), (2, 6));
    assert!(m.starts_with("invalid YAML"), "{m}");
}

#[test]
fn display_is_file_line_col() {
    let e = errors(&svc("    replicas: three\n"));
    assert_eq!(
        e[0].to_string(),
        "/tmp/tug-spec-tests/tug.yaml:5:15: `web.replicas` must be a whole number, found `three`"
    );
}

#[test]
fn wrong_types() {
    assert_eq!(
        one(&svc("    replicas: three\n")),
        (
            5,
            15,
            "`web.replicas` must be a whole number, found `three`".into(),
            None
        )
    );
    let e = errors(&svc("    env: [A=1, 2]\n"));
    assert_eq!((e[0].line, e[0].col), (5, 16));
    assert_eq!(
        e[0].message,
        "`web.env` entries must look like KEY=VALUE, found `2`"
    );
    let e = errors(&svc("    port: [80]\n    security: { read_only: maybe }\n"));
    assert_eq!((e[0].line, e[0].col), (5, 11));
    assert_eq!(
        e[0].message,
        "`web.port` must be a whole number, found a list"
    );
    assert_eq!((e[1].line, e[1].col), (6, 28));
    assert_eq!(
        e[1].message,
        "`web.security.read_only` must be true or false, found `maybe`"
    );
}

#[test]
fn negative_replicas() {
    assert_eq!(
        one(&svc("    replicas: -2\n")),
        (
            5,
            15,
            "`web.replicas` cannot be negative, found -2".into(),
            None
        )
    );
}

#[test]
fn bad_durations() {
    let (l, c, m, h) = one(&svc(
        "    port: 80\n    health: { http: /, interval: 2x }\n",
    ));
    assert_eq!((l, c), (6, 34));
    assert_eq!(
        m,
        "`web.health.interval`: invalid duration `2x`: unknown unit `x`"
    );
    assert_eq!(h.as_deref(), Some("use ms, s, m or h"));
    let (l, c, m, h) = one(&svc(
        "    port: 80\n    health:\n      tcp: true\n      interval: 2\n",
    ));
    assert_eq!((l, c), (8, 17));
    assert_eq!(
        m,
        "`web.health.interval`: invalid duration `2`: missing unit"
    );
    assert_eq!(h.as_deref(), Some("write `2s`"));
    let (l, c, m, _) = one(&svc("    stop_grace_period: soon\n"));
    assert_eq!((l, c), (5, 24));
    assert!(
        m.starts_with("`web.stop_grace_period`: invalid duration `soon`"),
        "{m}"
    );
}

#[test]
fn bad_sizes() {
    let (l, c, m, h) = one(&svc("    resources: { memory: 12Q }\n"));
    assert_eq!((l, c), (5, 26));
    assert_eq!(m, "`web.resources.memory`: invalid size `12Q`");
    assert_eq!(
        h.as_deref(),
        Some("unknown unit `Q` (use Ki, Mi, Gi, k, M or G)")
    );
    let (_, _, m, h) = one(&svc("    resources: { memory: 256 }\n"));
    assert_eq!(m, "`web.resources.memory` must be at least 4Mi, found 256");
    assert_eq!(h.as_deref(), Some("sizes take a unit: write `256Mi`"));
}

#[test]
fn unknown_keys_at_every_level() {
    assert_eq!(
        one(&svc("    replcias: 2\n")),
        (
            5,
            5,
            "unknown key `replcias` in service `web`".into(),
            Some("did you mean `replicas`?".into())
        )
    );
    assert_eq!(
        one("name: shop\nservice:\n  web: {image: x}\n"),
        (
            2,
            1,
            "unknown key `service` in the stack".into(),
            Some("did you mean `services`?".into())
        )
    );
    assert_eq!(
        one(&svc(
            "    port: 80\n    health: { http: /, intreval: 1s }\n"
        )),
        (
            6,
            24,
            "unknown key `intreval` in `web.health`".into(),
            Some("did you mean `interval`?".into())
        )
    );
    let (_, _, m, h) = one(&svc("    environment: { A: b }\n"));
    assert_eq!(m, "unknown key `environment` in service `web`");
    assert_eq!(h.as_deref(), Some("did you mean `env`?"));
}

#[test]
fn depends_on_unknown_service() {
    let text = format!(
        "{HEAD}  db:\n    image: postgres:16\n  web:\n    image: x\n    depends_on: [dbb]\n"
    );
    assert_eq!(
        one(&text),
        (
            7,
            18,
            "service `web` depends on unknown service `dbb`".into(),
            Some("did you mean `db`?".into())
        )
    );
    let text = format!("{HEAD}  web:\n    image: x\n    depends_on:\n      cache: healthy\n");
    let (l, c, m, _) = one(&text);
    assert_eq!((l, c), (6, 7));
    assert_eq!(m, "service `web` depends on unknown service `cache`");
}

#[test]
fn dependency_cycles_are_named_in_order() {
    let text = format!(
        "{HEAD}  a:\n    image: x\n    depends_on: [b]\n  b:\n    image: x\n    depends_on: {{c: healthy}}\n  c:\n    image: x\n    depends_on:\n      a: {{condition: service_started}}\n"
    );
    let (l, c, m, h) = one(&text);
    assert_eq!((l, c), (5, 18));
    assert_eq!(m, "dependency cycle: a -> b -> c -> a");
    assert_eq!(
        h.as_deref(),
        Some("remove one of these `depends_on` entries")
    );
    let text = format!("{HEAD}  a:\n    image: x\n    depends_on: [a]\n");
    assert_eq!(one(&text).2, "dependency cycle: a -> a");
}

#[test]
fn image_or_build() {
    let (l, c, m, _) = one(&format!("{HEAD}  web:\n    port: 80\n"));
    assert_eq!((l, c), (3, 3));
    assert_eq!(m, "service `web` needs `image` or `build`");
    // A build alone is fine: the image tag is derived.
    let s = parse_str(
        &format!("{HEAD}  web:\n    build: {{ rust: hello }}\n"),
        Path::new("/tmp/x/tug.yaml"),
    )
    .unwrap();
    assert_eq!(
        s.services["web"]
            .build
            .as_ref()
            .unwrap()
            .rust
            .as_ref()
            .unwrap()
            .package,
        "hello"
    );
}

#[test]
fn publish_needs_one_replica() {
    assert_eq!(
        one(&svc("    port: 80\n    publish: 8080\n    replicas: 3\n")),
        (
            6,
            14,
            "`web.publish` needs exactly one replica, found replicas: 3".into(),
            Some(
                "remove `publish` and reach the replicas through the gateway, or set `replicas: 1`"
                    .into()
            )
        )
    );
}

#[test]
fn health_takes_one_probe() {
    let (l, c, m, h) = one(&svc(
        "    port: 80\n    health:\n      http: /health\n      tcp: true\n",
    ));
    assert_eq!((l, c), (8, 7));
    assert_eq!(m, "`web.health` has more than one probe: `http`, `tcp`");
    assert_eq!(h.as_deref(), Some("keep exactly one of http, tcp or exec"));
}

#[test]
fn ports_in_range() {
    assert_eq!(
        one(&svc("    port: 0\n")),
        (
            5,
            11,
            "`web.port` must be a port between 1 and 65535, found 0".into(),
            None
        )
    );
    assert_eq!(
        one(&svc("    port: 70000\n")).2,
        "`web.port` must be a port between 1 and 65535, found 70000"
    );
}

#[test]
fn names_must_be_dns_labels() {
    let (l, c, m, h) = one("name: My_Shop\nservices: {}\n");
    assert_eq!((l, c), (1, 7));
    assert_eq!(
        m,
        "invalid stack name `My_Shop`: use lowercase letters, digits and '-' (at most 63)"
    );
    assert_eq!(h.as_deref(), Some("write `name: my-shop`"));
    let (l, c, m, h) = one(&format!("{HEAD}  web_api:\n    image: x\n"));
    assert_eq!((l, c), (3, 3));
    assert_eq!(
        m,
        "invalid service name `web_api`: use lowercase letters, digits and '-' (at most 63)"
    );
    assert_eq!(h.as_deref(), Some("rename it `web-api`"));
}

#[test]
fn reserved_label_prefix() {
    let (l, c, m, _) = one(&svc(
        "    labels:\n      team: shop\n      dev.tug.stack: other\n",
    ));
    assert_eq!((l, c), (7, 7));
    assert_eq!(
        m,
        "label `dev.tug.stack` uses the reserved prefix `dev.tug.`"
    );
}

#[test]
fn missing_env_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ok.env"), "A=1\n").unwrap();
    let text = svc("    env_file:\n      - ok.env\n      - missing.env\n");
    let e = parse_str(&text, &dir.path().join("tug.yaml"))
        .unwrap_err()
        .0;
    assert_eq!(e.len(), 1, "{e:#?}");
    assert_eq!((e[0].line, e[0].col), (7, 9));
    assert!(
        e[0].message
            .starts_with("cannot read env file `missing.env`: "),
        "{}",
        e[0].message
    );
}

#[test]
fn duplicate_keys() {
    let (l, c, m, _) = one(&svc("    port: 80\n    port: 81\n"));
    assert_eq!((l, c, m.as_str()), (6, 5, "duplicate key `port`"));
}

#[test]
fn all_errors_in_one_pass_in_file_order() {
    let text = "name: Shop\nservices:\n  web:\n    image: x\n    replicas: -1\n    bogus: 1\n  db:\n    port: 0\n    depends_on: [nope]\n";
    let e = errors(text);
    let at: Vec<(usize, usize)> = e.iter().map(|e| (e.line, e.col)).collect();
    assert_eq!(
        at,
        vec![(1, 7), (5, 15), (6, 5), (7, 3), (8, 11), (9, 18)],
        "{e:#?}"
    );
}

#[test]
fn empty_and_non_map_documents() {
    assert_eq!(one("").2, "the file is empty");
    assert_eq!(one("- a\n").2, "`the stack` must be a map, found a list");
    let (_, _, m, h) = one("services: {}\n");
    assert_eq!(m, "missing `name`");
    assert!(h.unwrap().starts_with("add `name: "));
}

#[test]
fn develop_watch_rules() {
    let ok = tug_spec::parse_str(
        &svc("    develop:\n      watch:\n        - { path: ./static, action: sync, target: /srv/static, ignore: [\"*.tmp\"] }\n        - { path: ./src, action: rebuild }\n"),
        Path::new(FILE),
    )
    .expect("valid");
    let rules = &ok.services["web"].develop;
    assert_eq!(rules.len(), 2);
    assert_eq!(rules[0].path, Path::new("/tmp/tug-spec-tests/./static"));
    assert_eq!(rules[0].action, tug_spec::WatchAction::Sync);
    assert_eq!(rules[0].target.as_deref(), Some("/srv/static"));
    assert_eq!(rules[0].ignore, vec!["*.tmp".to_string()]);
    assert_eq!(rules[1].action, tug_spec::WatchAction::Rebuild);

    let (l, c, m, h) = one(&svc(
        "    develop:\n      watch:\n        - { path: ./static, action: synk, target: /srv }\n",
    ));
    assert_eq!((l, c), (7, 37), "{m}");
    assert!(
        m.contains("must be one of sync, rebuild, sync+restart"),
        "{m}"
    );
    assert_eq!(h.as_deref(), Some("did you mean `sync`?"));

    let (l, _, m, _) = one(&svc(
        "    develop:\n      watch:\n        - { path: ./static, action: sync+restart }\n",
    ));
    assert_eq!(l, 7);
    assert!(m.contains("needs `target`"), "{m}");

    let (_, _, m, h) = one(&svc(
        "    develop:\n      watch:\n        - { path: ./static, action: sync, target: srv }\n",
    ));
    assert!(m.contains("must be an absolute path"), "{m}");
    assert_eq!(h.as_deref(), Some("e.g. `/srv`"));
}

#[test]
fn secret_mode_must_be_octal() {
    let text = "name: shop\nsecrets:\n  key: { file: /etc/passwd }\nservices:\n  web:\n    image: nginx:1\n    secrets: [{ source: key, uid: 10, mode: \"0980\" }]\n";
    let (l, c, m, hint) = one(text);
    assert_eq!((l, c), (7, 45));
    assert_eq!(
        m,
        "`web.secrets.mode` must be permission bits in octal, found `0980`"
    );
    assert!(hint.unwrap().contains("mode: \"0440\""));
    let text = text.replace("uid: 10, mode: \"0980\"", "uid: -1");
    let (_, _, m, _) = one(&text);
    assert_eq!(m, "`web.secrets.uid` cannot be negative, found -1");
}

#[test]
fn secret_owner_and_mode_are_read() {
    let text = "name: shop\nsecrets:\n  key: { file: /etc/passwd }\nservices:\n  web:\n    image: nginx:1\n    secrets:\n      - { source: key, target: k2, uid: 10, gid: 20, mode: 0440 }\n      - { source: key, mode: 640 }\n      - { source: key, target: /k3, mode: 0o600 }\n";
    let s = parse_str(text, Path::new(FILE)).unwrap();
    assert_eq!(
        owner_and_mode(&s.services["web"].secrets),
        [
            ("/run/secrets/k2", Some(10), Some(20), Some(0o440)),
            ("/run/secrets/key", None, None, Some(0o640)),
            ("/k3", None, None, Some(0o600)),
        ]
    );
}
