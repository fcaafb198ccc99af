//! Configuration policy checks over tug.yaml, compose files, Dockerfiles
//! and Kubernetes manifests. One rule registry; each file kind has a module.

pub mod compose;
pub mod dockerfile;
pub mod kube;
pub mod tugyaml;
pub mod yamlpos;

use crate::finding::{FileError, Finding, ScannerKind, Severity};

/// A configuration rule: one id across every file kind it applies to.
pub struct ConfigRule {
    pub id: &'static str,
    pub name: &'static str,
    pub title: &'static str,
    pub severity: Severity,
    /// One line: why it matters.
    pub why: &'static str,
    pub fix: &'static str,
}

/// Rules that inform without failing `--exit-code`.
pub const INFORMATIONAL: &[&str] = &["TUGC019"];

macro_rules! rules {
    ($($id:literal $name:literal $sev:ident $title:literal, $why:literal, $fix:literal;)*) => {
        pub const RULES: &[ConfigRule] = &[$(ConfigRule { id: $id, name: $name, title: $title, severity: Severity::$sev, why: $why, fix: $fix }),*];
    };
}

rules! {
    "TUGC001" "privileged" Critical "Privileged container",
        "a privileged container has every capability and all host devices: escaping it is trivial",
        "remove `privileged: true`; add only the capabilities the process needs";
    "TUGC002" "host-namespace" High "Shares a host namespace",
        "sharing the host network, PID or IPC namespace exposes host services and processes",
        "remove hostNetwork/hostPID/hostIPC (network_mode/pid/ipc: host)";
    "TUGC003" "host-path-mount" Medium "Host path mounted",
        "a hostPath volume gives the container access to the node's filesystem",
        "use a named volume, emptyDir or a ConfigMap instead of hostPath";
    "TUGC004" "container-socket-mount" Critical "Container engine socket mounted",
        "whoever reaches docker.sock controls the host as root",
        "do not mount /var/run/docker.sock; use a rootless engine or a dedicated API proxy";
    "TUGC005" "added-capabilities" High "Linux capabilities added",
        "added capabilities (SYS_ADMIN, NET_ADMIN above all) widen what a compromised process can do",
        "drop all capabilities and add back only what is proven necessary";
    "TUGC006" "runs-as-root" Medium "Runs as root",
        "a process running as root makes any container escape a root compromise",
        "run as a non-root user (USER 10001, runAsNonRoot: true, security.user: \"10001\")";
    "TUGC007" "writable-root-fs" Low "Writable root filesystem",
        "a writable root filesystem lets an attacker persist tools and modify binaries",
        "set readOnlyRootFilesystem: true (read_only: true) and mount writable paths explicitly";
    "TUGC008" "no-resource-limits" Low "No resource limits",
        "without CPU and memory limits one container can starve the node",
        "set resources.limits.cpu and resources.limits.memory";
    "TUGC009" "unpinned-image" Medium "Image not pinned",
        "`latest` or an untagged image changes under you and cannot be audited or rolled back",
        "pin a version tag, ideally with a digest (image:1.2.3@sha256:...)";
    "TUGC010" "no-health-probes" Low "No health probes",
        "without readiness and liveness probes traffic reaches broken replicas and hung ones are never restarted",
        "add readinessProbe and livenessProbe (tug.yaml: health)";
    "TUGC011" "secret-in-env" High "Secret in plain environment variable",
        "a literal secret in a manifest lands in version control, image history and `inspect` output",
        "reference a secret (secretKeyRef, compose secrets, build secrets) instead of a literal value";
    "TUGC012" "privilege-escalation" Medium "Privilege escalation allowed",
        "setuid binaries can regain privileges unless no_new_privs is set",
        "set allowPrivilegeEscalation: false (no_new_privileges: true)";
    "TUGC013" "no-seccomp" Medium "No seccomp profile",
        "without seccomp the whole syscall surface of the kernel is reachable",
        "use the runtime's default profile (seccompProfile.type: RuntimeDefault); never `unconfined`";
    "TUGC014" "add-remote-url" Medium "ADD of a remote URL",
        "ADD downloads without checksum verification and caches unpredictably",
        "download with curl and verify a checksum in a RUN step, or use ADD --checksum=sha256:...";
    "TUGC015" "host-port" Medium "Host port bound",
        "hostPort ties the pod to a node port: it bypasses NetworkPolicy-aware Services and limits scheduling",
        "remove hostPort and expose the port through a Service";
    "TUGC016" "capabilities-not-dropped" Low "Capabilities not dropped",
        "the default capability set includes NET_RAW (packet spoofing on the pod network) and others few processes need",
        "set securityContext.capabilities.drop: [ALL] and add back only what is needed";
    "TUGC017" "service-account-token-mounted" Low "Service account token mounted",
        "a mounted API token lets a compromised container talk to the Kubernetes API with the pod's rights",
        "set automountServiceAccountToken: false unless the pod calls the API";
    "TUGC018" "default-namespace" Low "Default namespace",
        "objects in the default namespace share it with everything else and escape namespace-scoped policies",
        "set metadata.namespace to a namespace of the application's own";
    "TUGC019" "image-not-digest" Low "Image not pinned by digest",
        "a tag can be moved to other content; only a digest names exactly what runs",
        "pin the digest too (image:1.2.3@sha256:...); informational: does not fail --exit-code";
}

pub fn rule(id: &str) -> &'static ConfigRule {
    RULES.iter().find(|r| r.id == id).unwrap_or(&RULES[0])
}

/// Builds a finding from a rule; `detail` says what exactly was seen.
pub fn finding(
    id: &str,
    severity: Option<Severity>,
    rel: &str,
    line: usize,
    detail: String,
) -> Finding {
    let r = rule(id);
    Finding {
        scanner: ScannerKind::Config,
        rule_id: r.id.to_string(),
        severity: severity.unwrap_or(r.severity),
        title: r.title.to_string(),
        message: format!("{detail}: {}", r.why),
        file: rel.to_string(),
        line,
        col: 1,
        fix: Some(r.fix.to_string()),
        advisory: None,
        redacted: None,
        fingerprint: None,
        commit: None,
    }
}

/// What kind of configuration a file holds, by name (and content for YAML).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigKind {
    Tug,
    Compose,
    Dockerfile,
    Kube,
}

pub fn classify(name: &str, text: &str) -> Option<ConfigKind> {
    let lower = name.to_ascii_lowercase();
    if lower == "tug.yaml" || lower == "tug.yml" {
        return Some(ConfigKind::Tug);
    }
    if matches!(
        lower.as_str(),
        "compose.yaml" | "compose.yml" | "docker-compose.yaml" | "docker-compose.yml"
    ) || ((lower.starts_with("docker-compose.") || lower.starts_with("compose."))
        && (lower.ends_with(".yml") || lower.ends_with(".yaml")))
    {
        return Some(ConfigKind::Compose);
    }
    if lower == "dockerfile"
        || lower == "containerfile"
        || lower.starts_with("dockerfile.")
        || lower.ends_with(".dockerfile")
    {
        return Some(ConfigKind::Dockerfile);
    }
    if is_kube_yaml(&lower, text) && !is_template(text) {
        return Some(ConfigKind::Kube);
    }
    None
}

fn is_kube_yaml(lower_name: &str, text: &str) -> bool {
    (lower_name.ends_with(".yaml") || lower_name.ends_with(".yml"))
        && text.contains("apiVersion")
        && text.contains("kind")
}

/// A Kubernetes-looking YAML file that is a template (Helm, Jinja): it is
/// skipped, and the scan says so.
pub fn is_skipped_template(name: &str, text: &str) -> bool {
    is_kube_yaml(&name.to_ascii_lowercase(), text) && is_template(text)
}

/// Template markup (`{{ … }}`, `{% … %}`) outside quoted strings, block
/// scalars and comments. `name: "{{ x }}"` or a `|` block holding `{{ x }}`
/// (rendered Helm output carries such text) is a plain string value: the
/// file is still a manifest.
fn is_template(text: &str) -> bool {
    // Indentation of the line that opened the block scalar we are in.
    let mut block: Option<usize> = None;
    for line in text.lines() {
        let body = line.trim_start();
        let indent = line.len() - body.len();
        if let Some(b) = block {
            if body.is_empty() || indent > b {
                continue;
            }
            block = None;
        }
        if line_has_markup(line) {
            return true;
        }
        if opens_block_scalar(body) {
            block = Some(indent);
        }
    }
    false
}

/// A `key: |`, `- >-`, `key: |2+ # note` line: block scalar content follows.
fn opens_block_scalar(body: &str) -> bool {
    let code = body.split(" #").next().unwrap_or(body).trim_end();
    let Some(pos) = code.rfind(['|', '>']) else {
        return false;
    };
    let (head, ind) = code.split_at(pos);
    let head = head.trim_end();
    (head.ends_with(':') || head == "-" || head.ends_with(" -"))
        && ind[1..]
            .chars()
            .all(|c| c == '-' || c == '+' || c.is_ascii_digit())
}

fn line_has_markup(line: &str) -> bool {
    let mut quote: Option<char> = None;
    let mut prev = ' ';
    let chars: Vec<char> = line.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        match quote {
            Some(q) if c == q && !(q == '"' && prev == '\\') => quote = None,
            Some(_) => {}
            None if c == '#' && (i == 0 || chars[i - 1].is_whitespace()) => return false,
            None if (c == '"' || c == '\'') && (i == 0 || !chars[i - 1].is_alphanumeric()) => {
                quote = Some(c)
            }
            None if c == '{' && matches!(chars.get(i + 1), Some('{') | Some('%')) => return true,
            None => {}
        }
        prev = c;
    }
    false
}

/// Runs the checks for one file.
pub fn scan(
    kind: ConfigKind,
    text: &str,
    rel: &str,
    path: &std::path::Path,
) -> (Vec<Finding>, Vec<FileError>) {
    match kind {
        ConfigKind::Tug => tugyaml::scan(text, rel, path),
        ConfigKind::Compose => compose::scan(text, rel, path),
        ConfigKind::Dockerfile => (dockerfile::scan(text, rel), Vec::new()),
        ConfigKind::Kube => kube::scan(text, rel, path),
    }
}

/// Env var names that hold credentials.
pub fn is_secret_name(name: &str) -> bool {
    let u = name.to_ascii_uppercase();
    [
        "PASSWORD",
        "PASSWD",
        "SECRET",
        "TOKEN",
        "API_KEY",
        "APIKEY",
        "ACCESS_KEY",
        "PRIVATE_KEY",
        "CREDENTIAL",
    ]
    .iter()
    .any(|w| u.contains(w))
        && !u.ends_with("_FILE")
        && !u.ends_with("_PATH")
}

/// A literal that is a real value (not empty, not a reference or placeholder).
pub fn is_literal_secret(value: &str) -> bool {
    let v = value.trim();
    !v.is_empty() && !crate::secret::is_placeholder(v) && !v.starts_with('/')
}

/// An image reference without `@sha256:` (informational rule TUGC019).
pub fn lacks_digest(image: &str) -> bool {
    !image.contains("@sha256:") && !image.starts_with('$') && !image.contains("${")
}

/// `image:tag` is unpinned when it has no tag, or tag `latest`, and no digest.
pub fn unpinned_image(image: &str) -> Option<&'static str> {
    if image.contains("@sha256:") || image.starts_with('$') || image.contains("${") {
        return None;
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.split_once(':') {
        None => Some("untagged"),
        Some((_, "latest")) => Some("`latest`"),
        _ => None,
    }
}

/// YAML parse error as a FileError, pointing at the second occurrence of a
/// duplicate key (the parser reports the start of the mapping).
pub fn yaml_error_in(
    text: &str,
    path: &std::path::Path,
    e: &serde_yaml_ng::Error,
    what: &str,
) -> FileError {
    let mut err = yaml_error(path, e, what);
    let msg = e.to_string();
    let Some(key) = msg
        .split_once("duplicate entry with key \"")
        .and_then(|(_, rest)| rest.split_once('"'))
        .map(|(k, _)| k)
    else {
        return err;
    };
    let indent = err.col.saturating_sub(1);
    let mut seen = 0;
    for (i, line) in text.lines().enumerate().skip(err.line.saturating_sub(1)) {
        let body = line.trim_start();
        if body.is_empty() || body.starts_with('#') {
            continue;
        }
        let ind = line.len() - body.len();
        if ind < indent {
            break;
        }
        let k = body
            .split(':')
            .next()
            .unwrap_or("")
            .trim()
            .trim_matches(|c| c == '"' || c == '\'');
        if ind == indent
            && k == key
            && body[k.len()..]
                .trim_start_matches(['"', '\''])
                .starts_with(':')
        {
            seen += 1;
            if seen == 2 {
                err.line = i + 1;
                err.col = ind + 1;
                err.hint = Some(format!("`{key}` is set twice in one mapping; keep one"));
                break;
            }
        }
    }
    err
}

/// YAML parse error as a FileError.
pub fn yaml_error(path: &std::path::Path, e: &serde_yaml_ng::Error, what: &str) -> FileError {
    let (line, col) = e.location().map_or((1, 1), |l| (l.line(), l.column()));
    FileError {
        file: path.to_path_buf(),
        line,
        col,
        message: format!("invalid {what}: {e}"),
        hint: None,
    }
}
