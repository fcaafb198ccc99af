//! `tug up -f compose.yaml` on the real engine: the compose file is imported
//! in memory and runs with its interpolated environment, its secrets and
//! configs mounted read-only, several ports (TCP and UDP) and the compose
//! service name kept as a network alias.

mod common;
use common::*;
use std::process::{Command, Output};

struct Compose {
    dir: tempfile::TempDir,
}

impl Compose {
    fn run(&self, args: &[&str]) -> Output {
        tug()
            .arg("-f")
            .arg(self.dir.path().join("compose.yaml"))
            .args(args)
            .env("NO_COLOR", "1")
            .env("TUG_STATE_DIR", self.dir.path().join("state"))
            .env_remove("GREETING")
            .output()
            .unwrap()
    }
}

impl Drop for Compose {
    fn drop(&mut self) {
        let _ = self.run(&["down", "--volumes"]);
    }
}

fn inspect(id: &str, fmt: &str) -> String {
    let o = Command::new("docker")
        .args(["inspect", "--format", fmt, id])
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

#[test]
fn up_runs_a_compose_file_with_secrets_configs_ports_and_aliases() {
    if !engine() {
        return;
    }
    busybox_images(None);
    let name = format!("tcompose{}", std::process::id());
    let dir = tempfile::tempdir().unwrap();
    let secret = "s3cr3t-value-never-printed";
    std::fs::write(dir.path().join("api_key.txt"), secret).unwrap();
    std::fs::write(dir.path().join("app.conf"), "mode=compose\n").unwrap();
    std::fs::write(dir.path().join(".env"), "GREETING=hello from .env\n").unwrap();
    let compose = format!(
        r#"name: {name}
services:
  web_app:
    image: {BUSYBOX}
    command: ["sh", "-c", "mkdir -p /tmp/www && cp /run/secrets/api_key /tmp/www/secret && cp /etc/app.conf /tmp/www/conf && (nc -lu -p 9999 &) && exec httpd -f -p 8080 -h /tmp/www"]
    environment:
      GREETING: ${{GREETING}}
      LITERAL: "$$HOME"
    ports: ["8080", "9999/udp"]
    expose: [7000]
    secrets: [api_key]
    configs:
      - source: app_conf
        target: /etc/app.conf
    restart: always
    healthcheck:
      disable: true
secrets:
  api_key:
    file: ./api_key.txt
configs:
  app_conf:
    file: ./app.conf
"#
    );
    std::fs::write(dir.path().join("compose.yaml"), compose).unwrap();
    let c = Compose { dir };
    let out = c.run(&["up", "-d", "--timeout", "60s"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(!text(&out).contains(secret), "the secret was printed");
    // The import's report comes with it.
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("renamed to `web-app`"),
        "{}",
        text(&out)
    );

    let ids = Command::new("docker")
        .args(["ps", "-q", "--no-trunc", "--filter"])
        .arg(format!("label=dev.tug.stack={name}"))
        .output()
        .unwrap();
    let id = String::from_utf8_lossy(&ids.stdout)
        .lines()
        .next()
        .expect("a running replica")
        .to_string();
    let env = inspect(&id, "{{json .Config.Env}}");
    assert!(env.contains("\"GREETING=hello from .env\""), "{env}");
    assert!(env.contains("\"LITERAL=$HOME\""), "{env}");
    let mounts = inspect(&id, "{{range .Mounts}}{{.Destination}}:{{.RW}} {{end}}");
    assert!(mounts.contains("/run/secrets/api_key:false"), "{mounts}");
    assert!(mounts.contains("/etc/app.conf:false"), "{mounts}");
    let ports = inspect(
        &id,
        "{{range $p, $b := .NetworkSettings.Ports}}{{$p}}={{range $b}}{{.HostIp}} {{end}};{{end}}",
    );
    assert!(ports.contains("8080/tcp=127.0.0.1"), "{ports}");
    assert!(ports.contains("9999/udp=127.0.0.1"), "{ports}");
    assert!(ports.contains("7000/tcp="), "expose is kept: {ports}");
    // `disable: true` turns off the image's own HEALTHCHECK as well.
    assert_eq!(
        inspect(&id, "{{json .Config.Healthcheck.Test}}"),
        "[\"NONE\"]"
    );
    let aliases = inspect(&id, "{{json .NetworkSettings.Networks}}");
    assert!(aliases.contains("\"web_app\""), "{aliases}");

    // The secret and the config reach the process (read through its HTTP port).
    let ps = c.run(&["ps", "-o", "json"]);
    let rows: serde_json::Value = serde_json::from_slice(&ps.stdout).unwrap();
    let endpoint = rows[0]["endpoint"].as_str().unwrap().to_string();
    assert!(get(&endpoint, "/secret").ends_with(secret));
    assert!(get(&endpoint, "/conf").contains("mode=compose"));
}

#[test]
fn import_refuses_to_overwrite_its_input() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("compose.yaml");
    std::fs::write(&f, "services:\n  a:\n    image: x\n").unwrap();
    let out = tug()
        .current_dir(dir.path())
        .args([
            "import",
            "compose",
            "compose.yaml",
            "--out",
            "compose.yaml",
            "--force",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        text(&out).contains("is the compose file being imported"),
        "{}",
        text(&out)
    );
    assert_eq!(
        std::fs::read_to_string(&f).unwrap(),
        "services:\n  a:\n    image: x\n"
    );
}
