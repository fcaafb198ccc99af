//! Compose features met in real-world files: `extends` (same file and
//! `extends.file`), optional env files, `include`, labels without a value.

use std::path::Path;
use tug_spec::compose::{import_with, Import, Options};
use tug_spec::*;

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

fn run(dir: &Path, text: &str) -> Result<(Import, Stack), SpecErrors> {
    let file = dir.join("compose.yaml");
    write(dir, "compose.yaml", text);
    let vars = Vars::from_files(dir, &[]).unwrap();
    let opts = Options {
        vars: Some(vars.clone()),
        ..Options::default()
    };
    let imp = import_with(text, &file, dir, &opts)?;
    let stack = parse_str_with(&imp.yaml, &dir.join("tug.yaml"), &vars)
        .unwrap_or_else(|e| panic!("{e}\n---\n{}", imp.yaml));
    Ok((imp, stack))
}

#[test]
fn extends_in_the_same_file_merges_as_compose_does() {
    let d = tempfile::tempdir().unwrap();
    let (imp, s) = run(
        d.path(),
        "services:
  base:
    image: app:1
    command: [serve, --all]
    environment: [A=1, B=2]
    labels: {tier: back}
    volumes: [data:/data, ./conf:/etc/app:ro]
    healthcheck: {test: [CMD, check], interval: 5s}
  web:
    extends: base
    command: [serve, --web]
    environment: {B: '3', C: '4'}
    volumes: [./other:/etc/app]
    healthcheck: {retries: 7}
volumes: {data: {}}
",
    )
    .unwrap();
    assert!(
        !imp.dropped.iter().any(|d| d.path.contains("extends")),
        "{:#?}",
        imp.dropped
    );
    let web = &s.services["web"];
    assert_eq!(web.image.as_deref(), Some("app:1"), "inherited");
    assert_eq!(
        web.command.as_deref(),
        Some(&["serve".to_string(), "--web".to_string()][..]),
        "command is replaced, not appended"
    );
    let env: Vec<(&str, &str)> = web
        .env
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(env, [("A", "1"), ("B", "3"), ("C", "4")]);
    assert_eq!(web.labels["tier"], "back");
    // Volumes merge by mount point: ./other replaces ./conf at /etc/app.
    let vols: Vec<(String, bool)> = web
        .volumes
        .iter()
        .map(|m| (m.target.clone(), m.read_only))
        .collect();
    assert_eq!(vols, [("/data".into(), false), ("/etc/app".into(), false)]);
    let h = web.health.as_ref().unwrap();
    assert_eq!((h.interval, h.retries), (Duration::from_secs(5), 7));
}

#[test]
fn extends_from_another_file_reports_at_both_places() {
    let d = tempfile::tempdir().unwrap();
    write(
        d.path(),
        "common.yaml",
        "services:
  srv:
    image: zabbix/server:${TAG:-7}
    ports: ['10051:10051']
    container_name: z
",
    );
    let (imp, s) = run(
        d.path(),
        "services:
  server:
    extends:
      file: common.yaml
      service: srv
    restart: always
",
    )
    .unwrap();
    let srv = &s.services["server"];
    assert_eq!(srv.image.as_deref(), Some("zabbix/server:7"));
    assert_eq!(srv.publish, Some(10051));
    assert_eq!(srv.restart, RestartPolicy::Always);
    // Said at the `extends` of compose.yaml, naming the other file's line.
    let cn = imp
        .dropped
        .iter()
        .find(|d| d.path == "services.server.container_name")
        .unwrap_or_else(|| panic!("{:#?}", imp.dropped));
    assert_eq!((cn.line, cn.col), (4, 7));
    assert!(cn.reason.contains("common.yaml:5:5"), "{}", cn.reason);
}

#[test]
fn extends_errors_name_the_place() {
    let d = tempfile::tempdir().unwrap();
    let e = run(
        d.path(),
        "services:\n  a:\n    extends: b\n  b:\n    extends: a\n",
    )
    .unwrap_err();
    assert!(e.to_string().contains("circle"), "{e}");
    assert_eq!((e.0[0].line, e.0[0].col), (3, 14));
    let e = run(
        d.path(),
        "services:\n  a:\n    extends: {file: missing.yaml, service: x}\n",
    )
    .unwrap_err();
    assert!(e.to_string().contains("cannot read `missing.yaml`"), "{e}");
    write(d.path(), "bad.yaml", "services:\n  x:\n    image: [1\n");
    write(
        d.path(),
        "other.yaml",
        "services:\n  x:\n    image: a\n    restart: sometimes\n",
    );
    let e = run(
        d.path(),
        "services:\n  a:\n    extends: {file: other.yaml, service: x}\n",
    )
    .unwrap_err();
    // A bad value in the other file is an error at its own file:line:col.
    assert!(e.0[0].file.ends_with("other.yaml"), "{e}");
    assert_eq!((e.0[0].line, e.0[0].col), (4, 14));
}

#[test]
fn optional_env_file_that_is_missing_is_left_out() {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "base.env", "A=1\n");
    let (imp, s) = run(
        d.path(),
        "services:
  web:
    image: app:1
    env_file:
      - base.env
      - path: override.env
        required: false
",
    )
    .unwrap();
    assert_eq!(s.services["web"].env["A"], "1");
    let d0 = imp
        .dropped
        .iter()
        .find(|x| x.path == "services.web.env_file")
        .unwrap_or_else(|| panic!("{:#?}", imp.dropped));
    assert!(d0.reason.contains("override.env"), "{}", d0.reason);
    assert!(!imp.yaml.contains("override.env"), "{}", imp.yaml);
}

#[test]
fn include_is_an_error_not_a_silent_drop() {
    let d = tempfile::tempdir().unwrap();
    let e = run(
        d.path(),
        "include:\n  - other.yaml\nservices:\n  web:\n    image: app:1\n",
    )
    .unwrap_err();
    assert!(e.to_string().contains("`include` is not supported"), "{e}");
    assert_eq!((e.0[0].line, e.0[0].col), (1, 1));
}

#[test]
fn labels_list_entries_without_a_value() {
    let d = tempfile::tempdir().unwrap();
    let (_, s) = run(
        d.path(),
        "services:\n  web:\n    image: app:1\n    labels:\n      - com.example.flag\n      - a=b\n",
    )
    .unwrap();
    let l = &s.services["web"].labels;
    assert_eq!((l["com.example.flag"].as_str(), l["a"].as_str()), ("", "b"));
}

#[test]
fn links_start_the_linked_services_first() {
    let d = tempfile::tempdir().unwrap();
    let (_, s) = run(
        d.path(),
        "services:
  web:
    image: app:1
    links: [db_main:db, cache]
    depends_on: [cache]
  db_main: {image: pg:1}
  cache: {image: redis:1}
",
    )
    .unwrap();
    let deps: Vec<&str> = s.services["web"]
        .depends_on
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(deps, ["cache", "db-main"]);
}

/// A directory made absolute with `..` resolved (the stack keeps paths as joined).
fn real(p: &Path) -> std::path::PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn extends_file_in_another_directory_reads_its_paths_from_there() {
    let d = tempfile::tempdir().unwrap();
    let (main, common) = (d.path().join("main"), d.path().join("common"));
    for dir in [&main, &common.join("app"), &common.join("data")] {
        std::fs::create_dir_all(dir).unwrap();
    }
    write(&common, "web.env", "A=from-common\n");
    write(
        &common,
        "x.yml",
        "services:
  web:
    image: web:1
    build: {context: ./app, dockerfile: Dockerfile.web}
    env_file: [web.env]
    volumes: ['./data:/data', 'cache:/cache', {type: bind, source: data, target: /more}]
",
    );
    let (imp, s) = run(
        &main,
        "services:
  web:
    extends: {file: ../common/x.yml, service: web}
    environment: {B: '2'}
  own:
    extends: {file: ../common/x.yml, service: web}
    build: {context: ., dockerfile: Own}
volumes: {cache: {}}
",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let web = &s.services["web"];
    let b = web.build.as_ref().unwrap();
    assert_eq!(real(b.context.as_ref().unwrap()), real(&common.join("app")));
    // The Dockerfile is relative to the context, wherever that is.
    assert_eq!(b.dockerfile.as_deref(), Some(Path::new("Dockerfile.web")));
    assert_eq!(
        (web.env["A"].as_str(), web.env["B"].as_str()),
        ("from-common", "2")
    );
    let binds: Vec<(std::path::PathBuf, &str)> = web
        .volumes
        .iter()
        .filter_map(|m| match &m.source {
            MountSource::Bind(p) => Some((real(p), m.target.as_str())),
            MountSource::Volume(_) => None,
        })
        .collect();
    let data = real(&common.join("data"));
    assert_eq!(binds, [(data.clone(), "/data"), (data, "/more")]);
    assert!(imp.yaml.contains("../common/app"), "{}", imp.yaml);
    // What the main file says is read from the main file's directory.
    let own = s.services["own"].build.as_ref().unwrap();
    assert_eq!(real(own.context.as_ref().unwrap()), real(&main));
    assert_eq!(own.dockerfile.as_deref(), Some(Path::new("Own")));
}

#[test]
fn extends_chain_across_two_directories() {
    let d = tempfile::tempdir().unwrap();
    let (main, common, other) = (
        d.path().join("app/main"),
        d.path().join("common"),
        d.path().join("other"),
    );
    for dir in [&main, &common, &other.join("ctx"), &other.join("d")] {
        std::fs::create_dir_all(dir).unwrap();
    }
    // `extends.file` in common/ is relative to common/.
    write(
        &common,
        "mid.yml",
        "services:\n  mid:\n    extends: {file: ../other/deep.yml, service: deep}\n    environment: [MID=1]\n",
    );
    write(
        &other,
        "deep.yml",
        "services:\n  deep:\n    image: deep:1\n    build: ./ctx\n    env_file: deep.env\n    volumes: ['./d:/d']\n    restart: sometimes\n",
    );
    write(&other, "deep.env", "D=deep\n");
    let text = "services:\n  chain:\n    extends: {file: ../../common/mid.yml, service: mid}\n";
    // A mistake two files away is reported in that file, at its line.
    let e = run(&main, text).unwrap_err();
    assert!(e.0[0].file.ends_with("other/deep.yml"), "{e}");
    assert_eq!((e.0[0].line, e.0[0].col), (7, 14), "{e}");

    write(
        &other,
        "deep.yml",
        "services:\n  deep:\n    image: deep:1\n    build: ./ctx\n    env_file: deep.env\n    volumes: ['./d:/d']\n",
    );
    let (_, s) = run(&main, text).unwrap_or_else(|e| panic!("{e}"));
    let c = &s.services["chain"];
    let ctx = c.build.as_ref().unwrap().context.as_ref().unwrap();
    assert_eq!(real(ctx), real(&other.join("ctx")));
    assert_eq!((c.env["D"].as_str(), c.env["MID"].as_str()), ("deep", "1"));
    match &c.volumes[0].source {
        MountSource::Bind(p) => assert_eq!(real(p), real(&other.join("d"))),
        v => panic!("{v:?}"),
    }
}
