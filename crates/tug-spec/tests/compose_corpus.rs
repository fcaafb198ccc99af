//! The compose corpus (real-world files under tests/data/compose-corpus):
//! every file converts, the result validates, and the points where a
//! conversion could change meaning are checked on the files that have them.

use std::path::{Path, PathBuf};
use tug_spec::compose::{import_with, Import, Options};
use tug_spec::*;

fn corpus() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/compose-corpus");
    let mut files = Vec::new();
    for project in std::fs::read_dir(&root).unwrap() {
        let project = project.unwrap().path();
        if !project.is_dir() {
            continue;
        }
        for dir in std::fs::read_dir(&project).unwrap() {
            let dir = dir.unwrap().path();
            for name in [
                "compose.yaml",
                "compose.yml",
                "docker-compose.yaml",
                "docker-compose.yml",
            ] {
                if dir.join(name).is_file() {
                    files.push(dir.join(name));
                    break;
                }
            }
        }
    }
    files.sort();
    files
}

/// Variables as compose would see them for `file`: only its `.env`, so the
/// result does not depend on the test's environment.
fn vars(file: &Path) -> Vars {
    Vars::from_files(file.parent().unwrap(), &[]).unwrap()
}

fn convert(file: &Path) -> (Import, Stack) {
    let text = std::fs::read_to_string(file).unwrap();
    let dir = file.parent().unwrap();
    let opts = Options {
        vars: Some(vars(file)),
        ..Options::default()
    };
    let imp =
        import_with(&text, file, dir, &opts).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let stack = parse_str_with(&imp.yaml, &dir.join("tug.yaml"), &vars(file))
        .unwrap_or_else(|e| panic!("{}: {e}\n---\n{}", file.display(), imp.yaml));
    (imp, stack)
}

fn find(name: &str) -> PathBuf {
    corpus()
        .into_iter()
        .find(|f| f.parent().unwrap().ends_with(name))
        .unwrap_or_else(|| panic!("{name} is not in the corpus"))
}

#[test]
fn every_file_converts_and_validates() {
    let files = corpus();
    assert!(files.len() >= 25, "the corpus has {} files", files.len());
    let (mut services, mut dropped, mut notes) = (0, 0, 0);
    let schema = jsonschema::validator_for(&tug_spec::schema()).unwrap();
    for f in &files {
        let (imp, stack) = convert(f);
        // Editors and CI check tug.yaml with the schema: the import must pass it.
        let doc: serde_json::Value = serde_yaml_ng::from_str(&imp.yaml).unwrap();
        let errs: Vec<String> = schema
            .iter_errors(&doc)
            .map(|e| format!("{}: {e}", e.instance_path))
            .collect();
        assert!(errs.is_empty(), "{}: {errs:#?}", f.display());
        services += stack.services.len();
        dropped += imp.dropped.len();
        notes += imp.notes.len();
    }
    // The figures the README quotes: `cargo test -p tug-spec --test compose_corpus -- --nocapture`.
    eprintln!(
        "compose corpus: {} files, {} converted and valid, {services} services, {dropped} keys dropped with a reason, {notes} notes",
        files.len(),
        files.len()
    );
}

#[test]
fn interpolation_from_the_env_file_is_kept_as_references() {
    let file = find("pihole-cloudflared-DoH");
    let (imp, s) = convert(&file);
    assert!(imp.yaml.contains("TZ: ${TIMEZONE}"), "{}", imp.yaml);
    assert!(imp.yaml.contains("WEBPASSWORD: ${PIHOLE_PW}"));
    assert!(
        !imp.yaml.contains("changeit"),
        "values from .env stay out of tug.yaml"
    );
    let pihole = &s.services["pihole"];
    assert_eq!(pihole.env["TZ"], "Etc/UTC");
    assert_eq!(pihole.env["WEBPASSWORD"], "changeit");
    // `#` inside a value is data, not a comment.
    assert_eq!(pihole.env["PIHOLE_DNS_"], "172.20.0.2#5054;1.1.1.1");
}

#[test]
fn several_ports_tcp_and_udp() {
    let (_, s) = convert(&find("pihole-cloudflared-DoH"));
    let pihole = &s.services["pihole"];
    assert_eq!((pihole.port, pihole.publish), (Some(53), Some(53)));
    let extra: Vec<(u16, Protocol, Option<u16>)> = pihole
        .ports
        .iter()
        .map(|p| (p.port, p.protocol, p.publish))
        .collect();
    assert_eq!(
        extra,
        vec![
            (53, Protocol::Udp, Some(53)),
            (67, Protocol::Udp, Some(67)),
            (80, Protocol::Tcp, Some(8080)),
            (443, Protocol::Tcp, Some(8443)),
        ]
    );
    let (_, s) = convert(&find("elasticsearch-logstash-kibana"));
    let ls = &s.services["logstash"];
    assert_eq!(ls.port, Some(5000));
    assert_eq!(
        ls.ports.iter().map(|p| p.port).collect::<Vec<_>>(),
        [5000, 5044, 9600]
    );
}

#[test]
fn secrets_from_files_and_escaped_dollars() {
    let file = find("nginx-golang-mysql");
    let (imp, s) = convert(&file);
    assert!(s.secrets["db-password"].file.ends_with("db/password.txt"));
    let db = &s.services["db"];
    assert_eq!(
        db.secrets,
        [FileMount {
            source: "db-password".into(),
            target: "/run/secrets/db-password".into(),
            uid: None,
            gid: None,
            mode: None,
        }]
    );
    assert_eq!(
        db.env["MYSQL_ROOT_PASSWORD_FILE"],
        "/run/secrets/db-password"
    );
    // `$$` in compose is a literal `$`: the shell gets `$(cat ...)`, not its PID.
    let h = db.health.as_ref().unwrap();
    let Probe::Exec(argv) = h.probe() else {
        panic!("{h:?}")
    };
    assert!(
        argv[2].contains("--password=\"$(cat /run/secrets/db-password)\""),
        "{argv:?}"
    );
    // Compose's defaults where the file says nothing: timeout 30s.
    assert_eq!(
        (h.interval, h.timeout, h.retries, h.start_period),
        (
            Duration::from_secs(3),
            Duration::from_secs(30),
            5,
            Duration::from_secs(30)
        )
    );
    assert_eq!(db.port, Some(3306), "expose gives the port");
    assert_eq!(db.restart, RestartPolicy::Always);
    // restart unset in compose means "no", and the import says so.
    assert_eq!(s.services["proxy"].restart, RestartPolicy::No);
    assert!(imp
        .notes
        .iter()
        .any(|n| n.path == "services.proxy" && n.fix.as_deref() == Some("restart: always")));
    // nginx on port 80 as tug's non-root user: said, with the line to loosen it.
    assert!(imp.notes.iter().any(|n| n.path == "services.proxy"
        && n.fix.as_deref() == Some("security: { cap_add: [NET_BIND_SERVICE] }")));
    assert!(imp
        .notes
        .iter()
        .any(|n| n.path == "services.db" && n.message.contains("starts as root")));
}

#[test]
fn docker_socket_and_java_heap_are_said() {
    let (imp, _) = convert(&find("portainer"));
    assert!(
        imp.notes
            .iter()
            .any(|n| n.message.contains("Docker socket")),
        "{:#?}",
        imp.notes
    );
    // ES_JAVA_OPTS=-Xmx512m does not fit the default 512Mi with the JVM's own overhead.
    let (imp, _) = convert(&find("elasticsearch-logstash-kibana"));
    let jvm = imp
        .notes
        .iter()
        .find(|n| n.path == "services.elasticsearch" && n.message.contains("JVM heap"))
        .unwrap_or_else(|| panic!("{:#?}", imp.notes));
    assert_eq!(jvm.fix.as_deref(), Some("resources: { memory: 768Mi }"));
}

#[test]
fn extends_from_other_files_and_optional_env_files() {
    // Zabbix builds every service with `extends: {file: compose_*.yaml}`
    // and names `required: false` env files that do not exist.
    let (imp, s) = convert(&find("zabbix-docker/alpine-pgsql"));
    let server = &s.services["zabbix-server"];
    assert!(server
        .image
        .as_deref()
        .is_some_and(|i| i.starts_with("zabbix/zabbix-server-pgsql:")));
    assert_eq!(server.publish, Some(10051));
    assert!(imp
        .dropped
        .iter()
        .any(|d| d.path == "services.zabbix-server.env_file"
            && d.reason.contains(".env_srv_override")));
    // Links also order start-up, as compose does.
    let (_, s) = convert(&find("vegasbrianc-prometheus/prometheus"));
    assert!(s.services["prometheus"]
        .depends_on
        .contains_key("alertmanager"));
}
