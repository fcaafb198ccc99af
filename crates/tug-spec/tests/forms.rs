//! The flexible input forms resolve to the same model.

use std::path::{Path, PathBuf};
use tug_spec::*;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

#[test]
fn every_shorthand_resolves() {
    let file = fixture("valid/forms.yaml");
    let s = load(&file).unwrap_or_else(|e| panic!("{e}"));
    let dir = file.parent().unwrap();
    assert_eq!(s.name, "forms");
    assert_eq!(s.dir, dir);
    let api = &s.services["api"];
    let b = api.build.as_ref().unwrap();
    assert_eq!(b.context.as_deref(), Some(dir.join("./api").as_path()));
    assert_eq!(b.dockerfile.as_deref(), Some(Path::new("Dockerfile.prod")));
    assert_eq!(b.args["VERSION"], "1.2");
    assert_eq!(b.args["DEBUG"], "false");
    assert_eq!(b.target.as_deref(), Some("runtime"));
    assert_eq!(
        api.command.as_deref().unwrap(),
        ["serve", "--port", "8080", "--name=my api"]
    );
    assert_eq!(api.entrypoint.as_deref().unwrap(), ["/bin/api", "--json"]);
    // Numbers and booleans are kept as written; explicit env wins over env_file.
    assert_eq!(api.env["PORT"], "8080");
    assert_eq!(api.env["DEBUG"], "false");
    assert_eq!(api.env["RATIO"], "1.10");
    assert_eq!(api.env["LOG_LEVEL"], "debug");
    assert_eq!(api.env["GREETING"], "hello world");
    assert_eq!(api.env["MODE"], "prod");
    assert_eq!(api.env_file, vec![dir.join("app.env")]);
    assert_eq!(api.replicas, 2);
    let h = api.health.as_ref().unwrap();
    assert_eq!(
        h.probe(),
        Probe::Exec(vec![
            "/bin/sh".into(),
            "-c".into(),
            "wget -q -O- http://127.0.0.1:8080/health".into()
        ])
    );
    assert_eq!(h.interval, Duration::from_millis(500));
    assert_eq!(h.timeout, Duration::from_secs(1));
    assert_eq!(h.retries, 3);
    assert_eq!(h.start_period, Duration::from_secs(90));
    assert_eq!(api.depends_on["db"], Condition::Healthy);
    assert_eq!(api.depends_on["cache"], Condition::Started);
    assert_eq!(api.depends_on["migrate"], Condition::Completed);
    let vols: Vec<(MountSource, &str, bool)> = api
        .volumes
        .iter()
        .map(|m| (m.source.clone(), m.target.as_str(), m.read_only))
        .collect();
    assert_eq!(
        vols,
        vec![
            (MountSource::Volume("data".into()), "/var/lib/api", false),
            (MountSource::Bind(dir.join("./conf")), "/etc/api", true),
            (MountSource::Bind("/srv/shared".into()), "/shared", false),
            (MountSource::Volume("cache".into()), "/cache", true),
            (MountSource::Bind(dir.join("./static")), "/static", false),
        ]
    );
    assert_eq!(api.resources.cpu, Some(0.5));
    assert_eq!(api.resources.memory, ByteSize(1 << 30));
    assert_eq!(api.resources.pids, -1);
    assert_eq!(api.security.user.as_deref(), Some("1000"));
    assert!(!api.security.read_only);
    assert!(api.security.no_new_privileges);
    assert_eq!(api.security.cap_add, ["NET_BIND_SERVICE"]);
    assert_eq!(api.labels["team"], "shop");
    assert_eq!(api.labels["tier"], "backend");
    assert_eq!(api.restart, RestartPolicy::OnFailure);
    assert_eq!(api.stop_grace_period, Duration::from_secs(30));

    let db = &s.services["db"];
    assert_eq!(db.env["POSTGRES_PASSWORD"], "secret");
    let h = db.health.as_ref().unwrap();
    assert_eq!(
        h.probe(),
        Probe::Exec(vec!["pg_isready".into(), "-U".into(), "postgres".into()])
    );
    assert_eq!(h.retries, 10);
    assert_eq!(db.resources.cpu, Some(2.0));
    assert_eq!(db.resources.memory, ByteSize(512 << 20));
    assert_eq!(db.resources.pids, 256);
    assert_eq!(db.restart, RestartPolicy::Always);
    assert_eq!(s.named_volumes(), ["cache", "data", "pgdata"]);

    assert_eq!(
        s.services["cache"].health.as_ref().unwrap().probe(),
        Probe::Tcp
    );
    assert_eq!(s.services["cache"].restart, RestartPolicy::No);
    let migrate = &s.services["migrate"];
    assert_eq!(migrate.restart, RestartPolicy::No);
    assert_eq!(migrate.depends_on["db"], Condition::Started);

    let web = &s.services["web"];
    let r = web.build.as_ref().unwrap().rust.as_ref().unwrap();
    assert_eq!(r.package, "hello");
    assert_eq!(r.bin.as_deref(), Some("hello-server"));
    assert_eq!(r.workspace.as_deref(), Some(dir.join("..").as_path()));
    assert_eq!(r.profile, "dist");
    assert_eq!(web.build.as_ref().unwrap().context, None);
    assert_eq!(web.publish, Some(8081));
    assert_eq!(
        web.health.as_ref().unwrap().probe(),
        Probe::Http("/health".into())
    );
    assert!(web.security.read_only);
    assert_eq!(web.security.user, None);
    assert_eq!(web.stop_grace_period, Duration::from_secs(10));
}

#[test]
fn hello_example_loads() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/hello/tug.yaml");
    let s = load(&file).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.services["web"].replicas, 3);
    assert_eq!(s.services["web"].resources.memory, ByteSize(64 << 20));
}

#[test]
fn merge_keys_share_settings() {
    let text = "name: m\nservices:\n  a: &base\n    image: x\n    env: { A: '1' }\n  b:\n    <<: *base\n    replicas: 2\n";
    let s = parse_str(text, Path::new("/tmp/m/tug.yaml")).unwrap();
    assert_eq!(s.services["b"].image.as_deref(), Some("x"));
    assert_eq!(s.services["b"].env["A"], "1");
    assert_eq!(s.services["b"].replicas, 2);
}
