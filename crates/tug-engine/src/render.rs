//! Stack → the containers that should exist, and the config hash that names them.

use crate::plan::{Desired, DesiredService};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use tug_runtime::{labels, ContainerSpec, MountKind, MountSpec, PortSpec, Restart};
use tug_spec::{MountSource, RestartPolicy, Service, Stack, DEFAULT_USER};

/// Name of the stack's network.
pub fn network_name(stack: &str) -> String {
    format!("tug_{stack}")
}

/// Engine name of a named volume of the stack.
pub fn volume_name(stack: &str, volume: &str) -> String {
    format!("{stack}_{volume}")
}

/// The container name of a replica: deterministic per (stack, service,
/// replica, config hash), so a second `up` adopts instead of duplicating.
pub fn replica_name(stack: &str, service: &str, replica: u32, hash: &str) -> String {
    format!(
        "{stack}-{service}-{replica}-{}",
        hash.get(..8).unwrap_or(hash)
    )
}

/// Where a service's secrets are written for its containers to mount.
pub fn secrets_dir(stack: &str, service: &str) -> std::path::PathBuf {
    crate::store::state_dir(stack).join("secrets").join(service)
}

/// Where the copy of a service's `index`th secret (or config, when it has
/// an owner or a mode) is written: the directory and the file name. A
/// mount with an owner or a mode has a copy of its own (the same source
/// may be mounted twice, differently).
pub fn file_copy(
    stack: &str,
    service: &str,
    secret: bool,
    index: usize,
    f: &tug_spec::FileMount,
) -> (std::path::PathBuf, String) {
    let dir = if secret {
        secrets_dir(stack, service)
    } else {
        crate::store::state_dir(stack).join("configs").join(service)
    };
    let name = if f.has_owner_or_mode() {
        format!("{}.{index}", f.source)
    } else {
        f.source.clone()
    };
    (dir, name)
}

/// Labels that mark a resource as the stack's.
pub fn stack_labels(stack: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (labels::STACK.to_string(), stack.to_string()),
        (
            "app.kubernetes.io/managed-by".to_string(),
            "tug".to_string(),
        ),
    ])
}

/// The image each service runs, resolved to a reference and the image's own user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedImage {
    pub reference: String,
    pub id: String,
    pub user: String,
}

/// The user a container runs as: the spec's, else the image's when it is not
/// root, else an unprivileged default.
pub fn effective_user(service: &Service, image_user: &str) -> String {
    if let Some(u) = &service.security.user {
        return u.clone();
    }
    let name = image_user.split(':').next().unwrap_or("");
    if name.is_empty() || name == "root" || name == "0" {
        DEFAULT_USER.to_string()
    } else {
        image_user.to_string()
    }
}

/// Fields of a service that do not shape its containers: changing them
/// never replaces a replica. `image` and `build` are hashed as the image id.
const NOT_HASHED: &[&str] = &[
    "replicas",
    "image",
    "build",
    "depends_on",
    "update",
    "stop_grace_period",
    "env_file",
];

/// The canonical form of what shapes a service's containers, which
/// [`config_hash`] hashes: the service's JSON form (tug-spec's serde model)
/// without [`NOT_HASHED`] fields, without any field (at any depth) whose
/// value is the default, and with object keys sorted. A field a newer tug
/// adds keeps its default for an unchanged tug.yaml, so it leaves the form
/// (and the hash) as it was: a newer tug does not recreate unchanged
/// containers.
pub fn canonical_service(service: &Service) -> serde_json::Value {
    use serde_json::Value;
    static DEFAULT: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    let default = DEFAULT.get_or_init(|| {
        tug_spec::parse_str(
            "name: d\nservices:\n  d:\n    image: d\n",
            "/tug.yaml".as_ref(),
        )
        .ok()
        .and_then(|s| s.services.get("d").cloned())
        .and_then(|s| serde_json::to_value(s).ok())
        .unwrap_or(Value::Null)
    });
    fn prune(v: Value, default: Option<&Value>) -> Option<Value> {
        if default == Some(&v) {
            return None;
        }
        match v {
            Value::Object(map) => {
                let mut keys: Vec<(String, Value)> = map.into_iter().collect();
                keys.sort_by(|a, b| a.0.cmp(&b.0));
                let out: serde_json::Map<String, Value> = keys
                    .into_iter()
                    .filter_map(|(k, v)| {
                        let d = default.and_then(|d| d.get(&k));
                        prune(v, d).map(|v| (k, v))
                    })
                    .collect();
                Some(Value::Object(out))
            }
            Value::Array(items) => Some(Value::Array(
                items
                    .into_iter()
                    .map(|v| prune(v, None).unwrap_or(Value::Null))
                    .collect(),
            )),
            other => Some(other),
        }
    }
    let mut v = serde_json::to_value(service).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut v {
        for k in NOT_HASHED {
            map.remove(*k);
        }
    }
    prune(v, Some(default)).unwrap_or_else(|| Value::Object(Default::default()))
}

/// The config hash of a service: changes exactly when its containers must
/// be replaced. SHA-256 of `tug/v2`, the stack and service names, the
/// [`canonical_service`] form and the image id, NUL-separated; the first 8
/// bytes in hex.
pub fn config_hash(stack: &str, name: &str, service: &Service, image: &ResolvedImage) -> String {
    let mut h = Sha256::new();
    h.update(b"tug/v2\0");
    h.update(stack.as_bytes());
    h.update(b"\0");
    h.update(name.as_bytes());
    h.update(b"\0");
    h.update(canonical_service(service).to_string().as_bytes());
    h.update(b"\0");
    h.update(image.id.as_bytes());
    hex::encode(&h.finalize()[..8])
}

pub fn desired(stack: &Stack, hashes: &BTreeMap<String, String>) -> Desired {
    Desired {
        network: network_name(&stack.name),
        volumes: stack
            .named_volumes()
            .into_iter()
            .map(|v| volume_name(&stack.name, v))
            .collect(),
        services: stack
            .services
            .iter()
            .map(|(name, s)| {
                (
                    name.clone(),
                    DesiredService {
                        hash: hashes[name].clone(),
                        replicas: s.replicas,
                        completes: s.restart == RestartPolicy::No,
                        keep_idle: s.autoscale.as_ref().is_some_and(|a| a.min == 0),
                    },
                )
            })
            .collect(),
    }
}

/// The container for one replica.
pub fn container_spec(
    stack: &Stack,
    name: &str,
    replica: u32,
    hash: &str,
    image: &ResolvedImage,
) -> ContainerSpec {
    let s = &stack.services[name];
    let mut spec = ContainerSpec::new(
        replica_name(&stack.name, name, replica, hash),
        &image.reference,
    );
    spec.command = s.command.clone();
    spec.entrypoint = s.entrypoint.clone();
    let mut env = s.env.clone();
    env.entry("TUG_REPLICA".into())
        .or_insert_with(|| format!("{name}-{replica}"));
    env.entry("TUG_SERVICE".into())
        .or_insert_with(|| name.to_string());
    if let Some(p) = s.port {
        env.entry("PORT".into()).or_insert_with(|| p.to_string());
    }
    spec.env = env.into_iter().collect();
    spec.labels = s.labels.clone();
    spec.labels.extend(stack_labels(&stack.name));
    spec.labels.insert(labels::SERVICE.into(), name.into());
    spec.labels
        .insert(labels::REPLICA.into(), replica.to_string());
    spec.labels.insert(labels::CONFIG_HASH.into(), hash.into());
    spec.labels
        .insert("app.kubernetes.io/name".into(), name.into());
    spec.labels
        .insert("app.kubernetes.io/part-of".into(), stack.name.clone());
    spec.port = s.port;
    spec.publish = s.publish;
    spec.host_ip = s.host_ip.clone();
    if let Some(p) = s.port {
        spec.labels.insert(labels::PORT.into(), p.to_string());
    }
    spec.ports = s
        .ports
        .iter()
        .map(|p| PortSpec {
            port: p.port,
            protocol: p.protocol.as_str().to_string(),
            publish: p.publish,
            host_ip: p.host_ip.clone(),
        })
        .collect();
    spec.expose = s
        .expose
        .iter()
        .map(|e| (e.port, e.protocol.as_str().to_string()))
        .collect();
    spec.network = Some(network_name(&stack.name));
    spec.aliases = vec![name.to_string(), format!("{name}-{replica}")];
    spec.aliases.extend(s.aliases.iter().cloned());
    spec.mounts = s
        .volumes
        .iter()
        .map(|m| MountSpec {
            source: match &m.source {
                MountSource::Volume(v) => MountKind::Volume(volume_name(&stack.name, v)),
                MountSource::Bind(p) => MountKind::Bind(p.clone()),
            },
            target: m.target.clone(),
            read_only: m.read_only,
        })
        .collect();
    // Secrets: the copies written for this service's user (see
    // `up::write_secrets`); configs: the stack's files, or copies when
    // given an owner or a mode. Read-only all.
    let copy = |secret, i, f| {
        let (dir, file) = file_copy(&stack.name, name, secret, i, f);
        dir.join(file)
    };
    let files = s
        .secrets
        .iter()
        .enumerate()
        .map(|(i, f)| (copy(true, i, f), &f.target))
        .chain(s.configs.iter().enumerate().filter_map(|(i, f)| {
            if f.has_owner_or_mode() {
                return Some((copy(false, i, f), &f.target));
            }
            stack
                .configs
                .get(&f.source)
                .map(|r| (r.file.clone(), &f.target))
        }));
    for (file, target) in files {
        spec.mounts.push(MountSpec {
            source: MountKind::Bind(file),
            target: target.clone(),
            read_only: true,
        });
    }
    // A tmpfs at /tmp (mode 1777, whatever the image's /tmp is, if any).
    if s.security.read_only && !s.volumes.iter().any(|m| m.target == "/tmp") {
        spec.tmpfs = vec!["/tmp".into()];
    }
    spec.user = Some(effective_user(s, &image.user));
    spec.read_only_root = s.security.read_only;
    spec.cap_drop_all = !s.security.privileged;
    spec.cap_add = s.security.cap_add.clone();
    spec.privileged = s.security.privileged;
    spec.no_new_privileges = s.security.no_new_privileges;
    spec.seccomp = s.security.seccomp.clone();
    spec.memory = i64::try_from(s.resources.memory.0).ok().filter(|m| *m > 0);
    spec.nano_cpus = s.resources.cpu.map(|c| (c * 1e9) as i64);
    spec.pids = Some(s.resources.pids).filter(|p| *p > 0);
    spec.restart = match s.restart {
        RestartPolicy::No => Restart::No,
        RestartPolicy::Always => Restart::Always,
        RestartPolicy::OnFailure => Restart::OnFailure,
        RestartPolicy::UnlessStopped => Restart::UnlessStopped,
    };
    // No `healthcheck`: exec checks are run by tug through the runtime's exec
    // API like every other probe, not by the engine (Podman without systemd
    // never runs a HEALTHCHECK).
    spec.no_healthcheck = s.health_disabled;
    spec.stop_grace = s.stop_grace_period.std();
    spec
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stack(yaml: &str) -> Stack {
        tug_spec::parse_str(yaml, "/srv/tug.yaml".as_ref()).unwrap()
    }

    fn image(user: &str) -> ResolvedImage {
        ResolvedImage {
            reference: "app:1".into(),
            id: "sha256:1".into(),
            user: user.into(),
        }
    }

    const PINNED: &str = "name: s
services:
  api:
    image: app:1
    replicas: 3
    port: 8080
    env: { B: '2', A: '1' }
    health: { http: /health, interval: 2s }
    security: { read_only: false }
    update: { max_surge: 2 }
";

    /// Pins the hash of a fixed spec: if this changes, every running
    /// container of every user is recreated by the new tug. Change it only
    /// on purpose, and say so in the release notes.
    #[test]
    fn config_hash_of_a_fixed_spec_is_pinned() {
        let st = stack(PINNED);
        let svc = &st.services["api"];
        assert_eq!(
            canonical_service(svc).to_string(),
            r#"{"env":{"A":"1","B":"2"},"health":{"http":"/health","interval":"2s","retries":3,"start_period":"0s","timeout":"1s"},"port":8080,"security":{"read_only":false}}"#
        );
        assert_eq!(config_hash("s", "api", svc, &image("")), "c96c03add2fc10c4");
    }

    #[test]
    fn what_does_not_shape_a_container_does_not_change_its_hash() {
        let base = stack(PINNED);
        let h = |st: &Stack| config_hash("s", "api", &st.services["api"], &image(""));
        // Scaling, rollout settings, dependencies, grace, defaults spelt out.
        for change in [
            PINNED.replace("replicas: 3", "replicas: 5"),
            PINNED.replace("max_surge: 2", "max_surge: 1"),
            PINNED.replace(
                "    port: 8080\n",
                "    port: 8080\n    stop_grace_period: 30s\n",
            ),
            PINNED.replace(
                "read_only: false",
                "read_only: false, no_new_privileges: true",
            ),
        ] {
            assert_eq!(h(&stack(&change)), h(&base), "{change}");
        }
        // What the container runs with does.
        for change in [
            PINNED.replace("A: '1'", "A: '3'"),
            PINNED.replace("read_only: false", "read_only: true"),
            PINNED.replace("port: 8080", "port: 8081"),
        ] {
            assert_ne!(h(&stack(&change)), h(&base), "{change}");
        }
        let other = ResolvedImage {
            id: "sha256:2".into(),
            ..image("")
        };
        assert_ne!(
            config_hash("s", "api", &base.services["api"], &other),
            h(&base)
        );
    }

    #[test]
    fn hardened_by_default() {
        let st = stack("name: s\nservices:\n  api:\n    image: app:1\n    port: 8080\n");
        let spec = container_spec(&st, "api", 0, "0123456789abcdef", &image(""));
        assert!(
            spec.read_only_root && spec.cap_drop_all && spec.no_new_privileges && !spec.privileged
        );
        assert_eq!(spec.user.as_deref(), Some(DEFAULT_USER));
        assert_eq!(spec.tmpfs, vec!["/tmp".to_string()]);
        assert_eq!(spec.memory, Some(512 << 20));
        assert_eq!(spec.pids, Some(256));
        assert_eq!(spec.publish, None);
        assert_eq!(spec.name, "s-api-0-01234567");
        assert_eq!(spec.labels[labels::REPLICA], "0");
        assert!(spec.env.contains(&("PORT".into(), "8080".into())));
    }

    #[test]
    fn image_user_kept_when_not_root() {
        let st = stack("name: s\nservices:\n  api:\n    image: app:1\n");
        assert_eq!(
            container_spec(&st, "api", 0, "h", &image("10001:10001"))
                .user
                .as_deref(),
            Some("10001:10001")
        );
        assert_eq!(
            container_spec(&st, "api", 0, "h", &image("root"))
                .user
                .as_deref(),
            Some(DEFAULT_USER)
        );
    }

    #[test]
    fn loosening_takes_an_explicit_line() {
        let st = stack("name: s\nservices:\n  api:\n    image: app:1\n    security: { user: root, read_only: false, cap_add: [NET_BIND_SERVICE] }\n");
        let spec = container_spec(&st, "api", 0, "h", &image(""));
        assert_eq!(spec.user.as_deref(), Some("root"));
        assert!(!spec.read_only_root);
        assert!(spec.tmpfs.is_empty());
        assert_eq!(spec.cap_add, vec!["NET_BIND_SERVICE".to_string()]);
        assert!(spec.cap_drop_all);
    }

    #[test]
    fn ports_secrets_configs_and_aliases() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("key.txt"), "k").unwrap();
        std::fs::write(dir.path().join("app.conf"), "c").unwrap();
        let yaml = "name: s\nsecrets:\n  key: { file: ./key.txt }\nconfigs:\n  conf: { file: ./app.conf }\nservices:\n  dns:\n    image: app:1\n    port: 80\n    publish: 8080\n    host_ip: 0.0.0.0\n    ports: [53/udp, { port: 443, publish: 8443 }]\n    expose: [9600]\n    aliases: [dns_1]\n    secrets: [key]\n    configs: [{ source: conf, target: /etc/app.conf }]\n";
        let st = tug_spec::parse_str(yaml, &dir.path().join("tug.yaml")).unwrap();
        let spec = container_spec(&st, "dns", 0, "h", &image(""));
        assert_eq!(
            (spec.port, spec.publish, spec.host_ip.as_deref()),
            (Some(80), Some(8080), Some("0.0.0.0"))
        );
        assert_eq!(spec.labels[labels::PORT], "80");
        assert_eq!(
            spec.ports,
            vec![
                PortSpec {
                    port: 53,
                    protocol: "udp".into(),
                    publish: None,
                    host_ip: None
                },
                PortSpec {
                    port: 443,
                    protocol: "tcp".into(),
                    publish: Some(8443),
                    host_ip: None
                },
            ]
        );
        assert_eq!(spec.expose, vec![(9600, "tcp".to_string())]);
        assert!(spec.aliases.contains(&"dns_1".to_string()));
        let files: Vec<(&str, bool)> = spec
            .mounts
            .iter()
            .filter_map(|m| match &m.source {
                MountKind::Bind(_) => Some((m.target.as_str(), m.read_only)),
                _ => None,
            })
            .collect();
        assert_eq!(files, [("/run/secrets/key", true), ("/etc/app.conf", true)]);
        assert!(!spec.no_healthcheck);
        let off = stack("name: s\nservices:\n  api:\n    image: app:1\n    health: none\n");
        let spec = container_spec(&off, "api", 0, "h", &image(""));
        assert!(spec.no_healthcheck && spec.healthcheck.is_none());
        let exec = stack(
            "name: s\nservices:\n  api:\n    image: app:1\n    health: { exec: [/bin/check] }\n",
        );
        let spec = container_spec(&exec, "api", 0, "h", &image(""));
        assert!(!spec.no_healthcheck && spec.healthcheck.is_none());
    }

    #[test]
    fn hash_ignores_replicas_but_not_env_or_image() {
        let a = stack("name: s\nservices:\n  api:\n    image: app:1\n    replicas: 1\n");
        let b = stack("name: s\nservices:\n  api:\n    image: app:1\n    replicas: 5\n");
        let c = stack("name: s\nservices:\n  api:\n    image: app:1\n    env: { X: '1' }\n");
        let h = |st: &Stack, img: &ResolvedImage| config_hash("s", "api", &st.services["api"], img);
        assert_eq!(h(&a, &image("")), h(&b, &image("")));
        assert_ne!(h(&a, &image("")), h(&c, &image("")));
        let other = ResolvedImage {
            id: "sha256:2".into(),
            ..image("")
        };
        assert_ne!(h(&a, &image("")), h(&a, &other));
    }
}
