//! Compose import on real-world-shaped files: the output parses as tug.yaml
//! and everything left behind is listed with a reason.

mod common;

use common::owner_and_mode;
use std::path::{Path, PathBuf};
use tug_spec::compose::{import, Import};
use tug_spec::*;

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/compose")
        .join(rel)
}

/// Imports a fixture, then parses the result as a tug.yaml next to it.
fn run(rel: &str) -> (Import, Stack) {
    let file = fixture(rel);
    let text = std::fs::read_to_string(&file).unwrap();
    let imp = import(&text, &file).unwrap_or_else(|e| panic!("{e}"));
    if std::env::var_os("SHOW").is_some() {
        eprintln!("{}\n{:#?}", imp.yaml, imp.dropped);
    }
    let out = file.parent().unwrap().join("tug.yaml");
    let stack = parse_str(&imp.yaml, &out).unwrap_or_else(|e| panic!("{e}\n---\n{}", imp.yaml));
    (imp, stack)
}

fn dropped(imp: &Import) -> Vec<(&str, &str)> {
    imp.dropped
        .iter()
        .map(|d| (d.path.as_str(), d.reason.as_str()))
        .collect()
}

#[test]
fn web_postgres_redis() {
    let (imp, s) = run("webapp/compose.yaml");
    assert_eq!(s.name, "webapp");
    let web = &s.services["web"];
    assert_eq!(web.image.as_deref(), Some("ghcr.io/acme/web:1.4"));
    assert_eq!((web.port, web.publish), (Some(3000), Some(8080)));
    assert_eq!(web.env["WORKERS"], "4", "explicit env wins over env_file");
    assert_eq!(web.env["NODE_ENV"], "production");
    assert_eq!(web.restart, RestartPolicy::UnlessStopped);
    assert_eq!(web.depends_on.len(), 2);
    let db = &s.services["db"];
    assert_eq!(db.port, Some(5432));
    let h = db.health.as_ref().unwrap();
    assert_eq!(
        h.probe(),
        Probe::Exec(vec![
            "/bin/sh".into(),
            "-c".into(),
            "pg_isready -U app".into()
        ])
    );
    assert_eq!(
        (h.interval, h.timeout, h.retries),
        (Duration::from_secs(5), Duration::from_secs(3), 5)
    );
    assert_eq!(db.volumes[0].source, MountSource::Volume("pgdata".into()));
    assert!(matches!(&db.volumes[1].source, MountSource::Bind(p) if p.ends_with("initdb")));
    assert!(db.volumes[1].read_only);
    let cache = &s.services["cache"];
    assert_eq!(
        cache.command.as_deref().unwrap(),
        ["redis-server", "--appendonly", "yes"]
    );
    assert_eq!((cache.port, cache.publish), (Some(6379), None));
    assert_eq!(
        dropped(&imp),
        vec![
            (
                "services.web.environment.SHELL_VALUE",
                "takes its value from the shell in compose, and SHELL_VALUE is not set; set it in tug.yaml or an env_file"
            ),
            (
                "volumes.redisdata.driver",
                "tug creates named volumes itself, owned by the stack"
            ),
        ]
    );
    assert_eq!((imp.dropped[0].line, imp.dropped[0].col), (11, 7));
}

#[test]
fn wordpress_mysql() {
    let (imp, s) = run("wordpress/docker-compose.yml");
    assert_eq!(s.name, "wordpress");
    let db = &s.services["db"];
    assert_eq!(
        db.command.as_deref().unwrap(),
        ["--default-authentication-plugin=mysql_native_password"]
    );
    assert_eq!(db.port, Some(3306));
    assert_eq!(db.env["MYSQL_DATABASE"], "wordpress");
    let wp = &s.services["wordpress"];
    assert_eq!((wp.port, wp.publish), (Some(80), Some(80)));
    assert_eq!(wp.env["WORDPRESS_DB_HOST"], "db");
    assert_eq!(wp.depends_on["db"], Condition::Started);
    assert_eq!(wp.volumes[0].source, MountSource::Volume("wp_data".into()));
    assert_eq!(
        dropped(&imp),
        vec![
            ("version", "obsolete in the compose spec"),
            (
                "services.db.container_name",
                "tug names containers <stack>-<service>-<replica>"
            ),
        ]
    );
    assert_eq!(
        db.expose,
        vec![ExposedPort {
            port: 33060,
            protocol: Protocol::Tcp
        }]
    );
}

#[test]
fn microservices_with_health_and_conditions() {
    let (imp, s) = run("micro/compose.yaml");
    assert_eq!(s.name, "shop-micro");
    let gw = &s.services["gateway"];
    // curl of localhost becomes an HTTP probe: FROM-scratch images have no curl.
    let h = gw.health.as_ref().unwrap();
    assert_eq!(h.probe(), Probe::Http("/healthz".into()));
    assert_eq!(h.start_period, Duration::from_secs(15));
    assert_eq!((gw.port, gw.publish), (Some(8000), Some(8000)));
    assert_eq!(gw.depends_on["orders"], Condition::Healthy);
    assert_eq!(gw.depends_on["users"], Condition::Healthy);
    assert_eq!(gw.restart, RestartPolicy::OnFailure);
    assert_eq!(gw.labels["com.example.team"], "shop");
    let orders = &s.services["orders"];
    // wget follows redirects, which tug's `http:` check does not: it stays a command.
    assert_eq!(
        orders.health.as_ref().unwrap().probe(),
        Probe::Exec(vec![
            "/bin/sh".into(),
            "-c".into(),
            "wget -q --spider http://127.0.0.1:9000/ready || exit 1".into()
        ])
    );
    assert_eq!(orders.port, Some(9000));
    assert_eq!(orders.depends_on["migrate"], Condition::Completed);
    assert_eq!(orders.depends_on["queue"], Condition::Started);
    // No port anywhere: the probe's port becomes the service port.
    let users = &s.services["users"];
    assert_eq!(users.port, Some(7000));
    assert_eq!(
        users.health.as_ref().unwrap().probe(),
        Probe::Http("/health".into())
    );
    assert_eq!(s.services["migrate"].restart, RestartPolicy::No);
    assert!(s.services["queue"].health.is_none());
    assert_eq!(
        dropped(&imp),
        vec![
            (
                "name",
                "renamed to `shop-micro`: stack names are lowercase letters, digits and '-'"
            ),
            (
                "services.gateway.depends_on.users.restart",
                "not supported by tug"
            ),
            (
                "services.users.healthcheck.start_interval",
                "not supported by tug's health checks"
            ),
        ]
    );
}

#[test]
fn build_contexts_and_args() {
    let (imp, s) = run("builds/compose.yml");
    let dir = fixture("builds");
    let api = &s.services["api"];
    let b = api.build.as_ref().unwrap();
    assert_eq!(b.context.as_deref(), Some(dir.join("./api").as_path()));
    assert_eq!(b.dockerfile.as_deref(), Some(Path::new("Dockerfile.prod")));
    assert_eq!(b.target.as_deref(), Some("runtime"));
    assert_eq!(b.args["RUST_VERSION"], "1.85");
    assert_eq!(b.args["FEATURES"], "full");
    assert_eq!(api.image.as_deref(), Some("acme/api:dev"));
    assert_eq!((api.port, api.publish), (Some(8080), Some(8081)));
    assert_eq!(api.entrypoint.as_deref().unwrap(), ["/usr/local/bin/api"]);
    let worker = &s.services["worker"];
    assert_eq!(
        worker.build.as_ref().unwrap().context.as_deref(),
        Some(dir.join("./worker").as_path())
    );
    assert_eq!(
        worker.command.as_deref().unwrap(),
        ["worker", "--queue", "default"]
    );
    let docs = &s.services["docs"];
    assert_eq!(docs.build.as_ref().unwrap().args["SITE"], "public");
    assert_eq!(
        dropped(&imp),
        vec![
            (
                "services.api.build.cache_from",
                "not supported by tug's build"
            ),
            (
                "services.docs.build.args",
                "`TOKEN` takes its value from the shell in compose"
            ),
        ]
    );
}

#[test]
fn deploy_resources_and_replicas() {
    let (imp, s) = run("deploy/compose.yaml");
    let api = &s.services["api"];
    assert_eq!(api.replicas, 3);
    assert_eq!((api.port, api.publish), (Some(8080), None));
    assert_eq!(api.resources.cpu, Some(0.5));
    assert_eq!(api.resources.memory, ByteSize(512 << 20));
    assert_eq!(api.resources.pids, 100);
    assert_eq!(api.restart, RestartPolicy::OnFailure);
    assert_eq!(api.stop_grace_period, Duration::from_secs(90));
    assert_eq!(api.security.user.as_deref(), Some("10001:10001"));
    assert!(api.security.read_only);
    assert!(api.security.no_new_privileges);
    assert_eq!(api.security.cap_add, ["NET_BIND_SERVICE"]);
    let batch = &s.services["batch"];
    assert_eq!(batch.resources.memory, ByteSize(1 << 30));
    assert_eq!(batch.resources.cpu, Some(2.0));
    assert_eq!(batch.resources.pids, 64);
    assert_eq!(batch.restart, RestartPolicy::OnFailure);
    assert_eq!(
        dropped(&imp),
        vec![
            (
                "services.api.ports",
                "host port 8080 needs one replica; tug publishes an ephemeral port per replica and balances 3 replicas through its gateway"
            ),
            (
                "services.api.ports",
                "host port 9090 needs one replica; tug publishes an ephemeral port per replica and balances 3 replicas through its gateway"
            ),
            (
                "services.api.deploy.resources.reservations",
                "tug sets limits only"
            ),
            (
                "services.api.deploy.restart_policy.max_attempts",
                "not supported by tug"
            ),
            ("services.api.deploy.update_config", "not supported by tug"),
            (
                "services.batch.restart",
                "tug retries without a maximum count"
            ),
        ]
    );
}

#[test]
fn unsupported_keys_are_listed_with_reasons() {
    let (imp, s) = run("unsupported/compose.yaml");
    let app = &s.services["app"];
    assert!(
        app.security.privileged,
        "privileged maps to security.privileged"
    );
    assert_eq!(app.security.seccomp.as_deref(), Some("unconfined"));
    assert_eq!((app.port, app.publish), (Some(443), Some(8443)));
    assert!(app.volumes.is_empty());
    assert_eq!(app.labels.len(), 1);
    assert_eq!(
        dropped(&imp),
        vec![
            (
                "services.app.container_name",
                "tug names containers <stack>-<service>-<replica>"
            ),
            (
                "services.app.hostname",
                "services reach each other by service name"
            ),
            (
                "services.app.cap_drop",
                "`NET_RAW`: tug drops every capability already"
            ),
            (
                "services.app.security_opt",
                "`apparmor:unconfined`: not supported by tug"
            ),
            (
                "services.app.networks.backend",
                "tug puts every service of a stack on one network"
            ),
            ("services.app.logging", "not supported by tug"),
            ("services.app.extra_hosts", "not supported by tug"),
            ("services.app.tmpfs", "tmpfs mounts are not supported"),
            (
                "services.app.ports[1]",
                "port ranges (`3000-3005`) are not supported"
            ),
            (
                "services.app.volumes[0]",
                "anonymous volumes are not supported: give it a name, like `data:/path`"
            ),
            (
                "services.app.volumes[1]",
                "`tmpfs` mounts are not supported"
            ),
            (
                "services.app.labels.dev.tug.stack",
                "the `dev.tug.` prefix is reserved for tug"
            ),
            (
                "networks.backend",
                "tug puts every service of a stack on one network"
            ),
        ]
    );
    assert_eq!(
        app.ports,
        vec![PortMapping {
            port: 53,
            protocol: Protocol::Udp,
            publish: Some(53),
            host_ip: None
        }]
    );
    assert!(s.secrets["token"].file.ends_with("token.txt"));
}

#[test]
fn malformed_compose_is_an_error_at_its_position() {
    let e = import("services:\n  web: [\n", Path::new("compose.yaml")).unwrap_err();
    assert_eq!(e.0[0].line, 3);
    assert!(e.0[0].message.starts_with("invalid YAML"));
    let e = import("volumes: {}\n", Path::new("compose.yaml")).unwrap_err();
    assert_eq!(e.0[0].message, "the compose file has no `services`");
}

#[test]
fn underscored_service_names_are_renamed_everywhere() {
    let text =
        "services:\n  my_db:\n    image: pg\n  web:\n    image: w\n    depends_on: [my_db]\n";
    let imp = import(text, Path::new("/tmp/app/compose.yaml")).unwrap();
    let s = parse_str(&imp.yaml, Path::new("/tmp/app/tug.yaml")).unwrap();
    assert!(s.services.contains_key("my-db"));
    assert_eq!(s.services["web"].depends_on["my-db"], Condition::Started);
    assert_eq!(
        s.services["my-db"].aliases,
        ["my_db"],
        "the old name still resolves"
    );
    assert_eq!(imp.notes[0].path, "services.my_db");
    assert!(imp.notes[0].message.starts_with("renamed to `my-db`"));
}

fn errors_of(text: &str) -> Vec<(usize, usize, String)> {
    let e = import(text, Path::new("/tmp/x/compose.yaml")).unwrap_err();
    e.0.into_iter()
        .map(|e| (e.line, e.col, e.message))
        .collect()
}

#[test]
fn invalid_values_are_errors_at_their_line() {
    let text = "services:\n  web:\n    image: w\n    ports: [\"abc\", \"99999:80\"]\n    restart: sometimes\n    healthcheck:\n      test: [\"CMD\", \"true\"]\n      interval: banana\n";
    let e = errors_of(text);
    assert_eq!(e.len(), 4, "{e:#?}");
    assert_eq!((e[0].0, e[0].1), (4, 13));
    assert!(e[0].2.contains("`abc` is not a port number"), "{}", e[0].2);
    assert_eq!((e[1].0, e[1].1), (4, 20));
    assert!(e[1].2.contains("port 99999 is out of range"));
    assert_eq!(e[2].0, 5);
    assert!(e[2].2.contains("unknown restart policy `sometimes`"));
    assert_eq!(e[3].0, 8);
    assert!(e[3].2.starts_with("`services.web.healthcheck.interval`"));
}

#[test]
fn a_required_variable_is_an_error_at_its_position() {
    let text = "services:\n  db:\n    image: pg\n    environment:\n      PASSWORD: ${DB_PASSWORD_UNSET_FOR_TEST:?set the database password}\n";
    let e = errors_of(text);
    assert_eq!((e[0].0, e[0].1), (5, 17));
    assert_eq!(
        e[0].2,
        "required variable DB_PASSWORD_UNSET_FOR_TEST is not set: set the database password"
    );
}

#[test]
fn two_names_that_normalise_alike_are_an_error_naming_both() {
    let e = errors_of("services:\n  web_1:\n    image: a\n  web-1:\n    image: b\n");
    assert_eq!(e.len(), 1);
    assert_eq!((e[0].0, e[0].1), (4, 3));
    assert!(
        e[0].2.contains("`web_1` and `web-1` both become `web-1`"),
        "{}",
        e[0].2
    );
}

#[test]
fn disabled_health_checks_and_profiles() {
    let text = "services:\n  a:\n    image: a\n    healthcheck:\n      test: [\"NONE\"]\n  b:\n    image: b\n    healthcheck:\n      test: [\"CMD\", \"true\"]\n      disable: true\n  debug:\n    image: d\n    profiles: [debug]\n  c:\n    image: c\n    depends_on: [debug]\n    healthcheck:\n      test: [\"CMD\", \"true\"]\n";
    let file = Path::new("/tmp/p/compose.yaml");
    let imp = import(text, file).unwrap();
    let s = parse_str(&imp.yaml, Path::new("/tmp/p/tug.yaml")).unwrap();
    assert!(s.services["a"].health.is_none() && s.services["a"].health_disabled);
    assert!(s.services["b"].health.is_none() && s.services["b"].health_disabled);
    assert!(!s.services.contains_key("debug"));
    assert!(s.services["c"].depends_on.is_empty());
    let h = s.services["c"].health.as_ref().unwrap();
    assert_eq!(
        (h.interval, h.timeout, h.retries),
        (Duration::from_secs(30), Duration::from_secs(30), 3),
        "compose's defaults, not tug's"
    );
    let opts = compose::Options {
        profiles: vec!["debug".into()],
        ..Default::default()
    };
    let imp = compose::import_with(text, file, Path::new("/tmp/p"), &opts).unwrap();
    let s = parse_str(&imp.yaml, Path::new("/tmp/p/tug.yaml")).unwrap();
    assert!(s.services.contains_key("debug"));
    assert_eq!(s.services["c"].depends_on["debug"], Condition::Started);
}

#[test]
fn published_addresses() {
    let text = "services:\n  a:\n    image: a\n    ports: [\"0.0.0.0:8080:80\", \"9000:9000\", \"127.0.0.1:7000:7000\"]\n";
    let imp = import(text, Path::new("/tmp/q/compose.yaml")).unwrap();
    let s = parse_str(&imp.yaml, Path::new("/tmp/q/tug.yaml")).unwrap();
    let a = &s.services["a"];
    assert_eq!(
        (a.port, a.publish, a.host_ip.as_deref()),
        (Some(80), Some(8080), Some("0.0.0.0"))
    );
    assert_eq!(
        a.ports[0].host_ip, None,
        "no address in compose: tug keeps 127.0.0.1"
    );
    assert!(imp.notes.iter().any(|n| n
        .message
        .contains("compose publishes 9000 on every interface")));
    assert!(imp.notes.iter().any(|n| n
        .message
        .contains("published on 0.0.0.0 as the compose file says")));
}

#[test]
fn long_form_secrets_and_configs_keep_owner_and_mode() {
    let dir = std::env::temp_dir().join(format!("tug-compose-long-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("key.txt"), "k").unwrap();
    std::fs::write(dir.join("app.conf"), "c").unwrap();
    let file = dir.join("compose.yaml");
    // Compose reads a plain number as decimal unless it starts with 0 or
    // 0o, and a quoted one as octal: 0440, "440" and 288 are one mode.
    let text = "services:\n  web:\n    image: w\n    secrets:\n      - key\n      - { source: key, target: other, uid: \"103\", gid: \"104\", mode: 0440 }\n      - { source: key, target: /etc/abs, mode: \"440\" }\n      - { source: key, target: dec, mode: 288 }\n    configs:\n      - { source: conf, target: /etc/app.conf, uid: \"5\", mode: 0o644 }\nsecrets:\n  key: { file: ./key.txt }\nconfigs:\n  conf: { file: ./app.conf }\n";
    let imp = import(text, &file).unwrap_or_else(|e| panic!("{e}"));
    assert!(imp.dropped.is_empty(), "{:?}", imp.dropped);
    assert!(
        imp.notes
            .iter()
            .any(|n| n.path == "services.web.secrets" && n.message.contains("only in swarm")),
        "{:?}",
        imp.notes
    );
    let s = parse_str(&imp.yaml, &dir.join("tug.yaml")).unwrap_or_else(|e| panic!("{e}"));
    let web = &s.services["web"];
    assert_eq!(
        owner_and_mode(&web.secrets),
        [
            ("/run/secrets/key", None, None, None),
            ("/run/secrets/other", Some(103), Some(104), Some(0o440)),
            ("/etc/abs", None, None, Some(0o440)),
            ("/run/secrets/dec", None, None, Some(0o440)),
        ]
    );
    assert_eq!(
        owner_and_mode(&web.configs),
        [("/etc/app.conf", Some(5), None, Some(0o644))]
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_bad_secret_owner_or_mode_is_an_error_at_its_line() {
    let text = "services:\n  web:\n    image: w\n    secrets:\n      - { source: key, uid: app }\n      - { source: key, mode: 0999 }\nsecrets:\n  key: { file: ./key.txt }\n";
    let e = errors_of(text);
    assert_eq!(e.len(), 2, "{e:#?}");
    assert_eq!(e[0].0, 5);
    assert!(
        e[0].2.contains("must be a numeric id, found `app`"),
        "{}",
        e[0].2
    );
    assert_eq!(e[1].0, 6);
    assert!(e[1]
        .2
        .contains("`services.web.secrets.mode` must be permission bits"));
}
