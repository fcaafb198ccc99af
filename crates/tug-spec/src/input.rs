//! The input forms of tug.yaml, as written by people (every shorthand
//! included). These types exist to describe the file as JSON Schema; the
//! parser in `parse.rs` accepts exactly these forms.

#![allow(dead_code)]

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use std::borrow::Cow;
use std::collections::BTreeMap;

/// JSON Schema (draft 2020-12) of tug.yaml, for editors and CI checks.
pub fn schema() -> serde_json::Value {
    let mut v = schemars::schema_for!(StackIn).to_value();
    no_null_properties(&mut v);
    if let Some(o) = v.as_object_mut() {
        o.insert("$id".into(), "https://tug.dev/schema/tug.yaml.json".into());
    }
    v
}

/// Optional keys are `Option`s, which the generator lets be `null`; an
/// absent key takes the default, but an explicit null is an error.
fn no_null_properties(v: &mut serde_json::Value) {
    use serde_json::Value;
    match v {
        Value::Object(o) => {
            if let Some(Value::Object(props)) = o.get_mut("properties") {
                for p in props.values_mut() {
                    strip_null(p);
                }
            }
            o.values_mut().for_each(no_null_properties);
        }
        Value::Array(a) => a.iter_mut().for_each(no_null_properties),
        _ => {}
    }
}

fn strip_null(p: &mut serde_json::Value) {
    use serde_json::Value;
    let Value::Object(o) = p else { return };
    if let Some(Value::Array(types)) = o.get_mut("type") {
        types.retain(|t| t != "null");
        if types.len() == 1 {
            let t = types.remove(0);
            o.insert("type".into(), t);
        }
    }
    if let Some(Value::Array(any)) = o.get_mut("anyOf") {
        any.retain(|s| s.get("type").is_none_or(|t| t != "null"));
        if any.len() == 1 {
            let only = any.remove(0);
            o.remove("anyOf");
            if let Value::Object(inner) = only {
                for (k, val) in inner {
                    o.entry(k).or_insert(val);
                }
            }
        }
    }
}

/// A tug.yaml file: one stack of services.
#[derive(JsonSchema)]
#[schemars(title = "tug.yaml")]
#[serde(deny_unknown_fields)]
struct StackIn {
    /// Stack name; prefixes every resource tug creates. Lowercase letters, digits and '-'.
    #[schemars(regex(pattern = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"))]
    name: String,
    /// Services by name (lowercase letters, digits and '-').
    #[serde(default)]
    #[schemars(extend("propertyNames" = { "pattern": "^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$" }))]
    services: Option<BTreeMap<String, ServiceIn>>,
    /// Where services run: containers on Docker/Podman, or local processes.
    /// Unset: a container engine when one answers, else processes.
    runtime: Option<RuntimeIn>,
    /// Secrets by name, each a file; services mount them read-only at `/run/secrets/<name>`.
    secrets: Option<BTreeMap<String, FileRefIn>>,
    /// Configuration files by name; services mount them read-only where they say.
    configs: Option<BTreeMap<String, FileRefIn>>,
    gateway: Option<GatewayIn>,
    /// The agent's HTTP listener: web dashboard, API and `/metrics`.
    dashboard: Option<DashboardIn>,
    /// Where traces (and the replicas' logs) are exported; the standard `OTEL_*` variables win.
    observe: Option<ObserveIn>,
    /// CI/CD pipelines by name: DAGs of jobs run on the host or in containers.
    pipelines: Option<BTreeMap<String, PipelineIn>>,
}

/// A pipeline: jobs (a DAG through `needs`) of shell steps.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
struct PipelineIn {
    /// Jobs by name (letters, digits, '_', '-' and '.').
    jobs: BTreeMap<String, JobIn>,
    /// Environment for every job.
    env: Option<Pairs>,
    /// Jobs run at once (default: the number of cores).
    #[schemars(range(min = 1))]
    parallelism: Option<u32>,
    /// `copy` (default): each job in a fresh copy of the project; `shared`: in the project itself.
    workspace: Option<WorkspaceIn>,
    /// What makes the agent run it: a cron schedule, a signed push webhook.
    on: Option<TriggersIn>,
    /// One run of the group at a time: a newer run waits, or cancels the running one.
    concurrency: Option<ConcurrencyIn>,
}

/// A group name, or `{ group, cancel_in_progress }`.
#[derive(JsonSchema)]
#[serde(untagged)]
enum ConcurrencyIn {
    Group(String),
    Full {
        /// The group; in a job, `${{ matrix.NAME }}` is the combination's value.
        group: String,
        /// A newer run (or job) of the group cancels the running one (default false: it waits).
        cancel_in_progress: Option<bool>,
    },
}

#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
struct TriggersIn {
    /// Cron pattern(s), UTC: 5 fields, or 6 with seconds first.
    schedule: Option<OneOrMany>,
    webhook: Option<WebhookIn>,
}

#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
struct WebhookIn {
    /// The stack secret holding the shared secret (GitHub: the webhook's secret; GitLab: its token).
    secret: String,
    /// Only pushes to these branches; empty: any.
    branches: Option<Vec<String>>,
}

#[derive(JsonSchema)]
#[serde(rename_all = "lowercase")]
enum WorkspaceIn {
    Copy,
    Shared,
}

#[derive(JsonSchema)]
#[serde(rename_all = "snake_case")]
enum WhenIn {
    OnSuccess,
    OnFailure,
    Always,
}

/// One job: steps run in order, on the host or in `image`.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
struct JobIn {
    /// Jobs that finish before this one starts.
    needs: Option<OneOrMany>,
    /// Shell commands, or `{ name, run, env, working_dir, timeout, continue_on_error, if }`.
    steps: StepsIn,
    env: Option<Pairs>,
    /// Stack secret names (as upper-cased variables), or `VAR: name | { secret } | { env }`.
    secrets: Option<SecretsIn>,
    /// Run the steps in a container of this image, the workspace mounted; unset: on the host.
    image: Option<String>,
    /// Directory the steps start in, relative to the workspace.
    working_dir: Option<String>,
    /// Time one attempt of the job may take.
    timeout: Option<DurationIn>,
    /// Further attempts after a failed one (default 0).
    #[schemars(range(min = 0))]
    retry: Option<u32>,
    /// When the job runs given its `needs` (default on_success).
    #[serde(rename = "if")]
    when: Option<WhenIn>,
    /// A failure does not fail the pipeline or the jobs that need this one.
    continue_on_error: Option<bool>,
    /// Axis name -> values, plus `include`, `exclude`, `fail_fast`, `max_parallel`.
    matrix: Option<BTreeMap<String, serde_json::Value>>,
    /// Sidecar containers gated on their health.
    services: Option<BTreeMap<String, JobServiceIn>>,
    /// Directories saved and restored under a key from file hashes.
    cache: Option<OneOrManyCache>,
    /// Paths kept after the job and given to the jobs that need it.
    artifacts: Option<OneOrMany>,
    /// Globs of the files the job depends on (for `tug pipeline watch`).
    paths: Option<OneOrMany>,
    /// The shell steps run in (default `sh -e -c`).
    shell: Option<Argv>,
    /// One unit of the group at a time, across runs.
    concurrency: Option<ConcurrencyIn>,
}

#[derive(JsonSchema)]
#[serde(untagged)]
enum StepsIn {
    One(String),
    Many(Vec<StepIn>),
}

#[derive(JsonSchema)]
#[serde(untagged)]
enum StepIn {
    Run(Scalar),
    Full(StepFull),
}

#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
struct StepFull {
    name: Option<Scalar>,
    run: Scalar,
    env: Option<Pairs>,
    working_dir: Option<String>,
    timeout: Option<DurationIn>,
    continue_on_error: Option<bool>,
    #[serde(rename = "if")]
    when: Option<WhenIn>,
}

#[derive(JsonSchema)]
#[serde(untagged)]
enum SecretsIn {
    Names(Vec<String>),
    Vars(BTreeMap<String, SecretIn>),
}

#[derive(JsonSchema)]
#[serde(untagged)]
enum SecretIn {
    Name(String),
    Secret(SecretFromSecret),
    Env(SecretFromEnv),
}

#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
struct SecretFromSecret {
    /// A stack secret.
    secret: String,
}

#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
struct SecretFromEnv {
    /// A variable of tug's environment.
    env: String,
}

#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
struct JobServiceIn {
    image: String,
    env: Option<Pairs>,
    command: Option<Argv>,
    #[schemars(range(min = 1, max = 65535))]
    port: Option<u32>,
    health: Option<HealthIn>,
}

#[derive(JsonSchema)]
#[serde(untagged)]
enum OneOrManyCache {
    One(CacheIn),
    Many(Vec<CacheIn>),
}

#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
struct CacheIn {
    /// Key prefix (letters, digits, '_', '-', '.'); the hashes of `files` follow it.
    key: String,
    /// Globs whose contents make the key.
    files: Option<OneOrMany>,
    /// Directories saved and restored.
    paths: OneOrMany,
}

/// Where the agent serves HTTP besides its unix socket.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
struct DashboardIn {
    /// `:9600` is 127.0.0.1:9600 (the default port is chosen at start); any other interface requires the API token.
    listen: Option<ListenOneIn>,
}

/// Telemetry export.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
struct ObserveIn {
    otlp: Option<OtlpIn>,
}

/// OTLP export of tug's spans and, with `logs: true`, the replicas' logs.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
struct OtlpIn {
    /// The collector's base URL, like `http://127.0.0.1:4317`.
    #[schemars(regex(pattern = r"^https?://"))]
    endpoint: Option<String>,
    protocol: Option<OtlpProtocolIn>,
    /// Headers sent with every export.
    headers: Option<BTreeMap<String, String>>,
    /// The share of new traces kept.
    #[schemars(range(min = 0.0, max = 1.0))]
    sampling: Option<f64>,
    /// Forward the replicas' log lines as OTLP log records.
    logs: Option<bool>,
    /// A PEM file of CA certificates trusted for an https:// endpoint, relative to this file.
    certificate: Option<String>,
    /// The PEM client certificate for mutual TLS, relative to this file.
    client_certificate: Option<String>,
    /// The PEM key of `client_certificate`, relative to this file.
    client_key: Option<String>,
}

#[derive(JsonSchema)]
enum OtlpProtocolIn {
    #[serde(rename = "grpc")]
    Grpc,
    #[serde(rename = "http/protobuf")]
    HttpProtobuf,
}

/// A port or an address.
#[derive(JsonSchema)]
#[serde(untagged)]
enum ListenOneIn {
    Port(u16),
    Address(String),
}

/// The HTTP entry point: serves every service's `route` and balances over its ready replicas.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
struct GatewayIn {
    /// Addresses to serve: `:8000` is 127.0.0.1:8000; any other interface is written out (`0.0.0.0:8000`).
    listen: Option<ListenIn>,
    /// Access log line per request: json (default), combined or off.
    access_log: Option<AccessLogIn>,
    /// Client connections open at once (default 10000).
    #[schemars(range(min = 1))]
    max_connections: Option<u32>,
    /// Time a client may take to send the request head (default 10s).
    header_timeout: Option<DurationIn>,
    /// Largest request head; 431 above (default 64Ki).
    max_header_size: Option<SizeIn>,
    /// Largest request body; 413 above (default 100Mi).
    max_body_size: Option<SizeIn>,
}

#[derive(JsonSchema)]
#[serde(untagged)]
enum ListenIn {
    One(ListenAddr),
    Many(Vec<ListenAddr>),
}

#[derive(JsonSchema)]
#[serde(untagged)]
enum ListenAddr {
    Port(u16),
    Text(String),
}

#[derive(JsonSchema)]
#[serde(rename_all = "lowercase")]
enum AccessLogIn {
    Json,
    Combined,
    Off,
}

#[derive(JsonSchema)]
#[serde(untagged)]
enum RoutesIn {
    One(RouteIn),
    Many(Vec<RouteIn>),
}

/// Requests for `host` (any when unset) under `path` go to this service.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
struct RouteIn {
    /// A host name like `api.localhost` or `*.example.com`.
    host: Option<String>,
    /// A path prefix starting with `/` (default `/`); the longest match wins.
    #[schemars(regex(pattern = r"^/"))]
    path: Option<String>,
    /// Remove `path` from the request before forwarding it.
    strip_prefix: Option<bool>,
    timeouts: Option<TimeoutsIn>,
    retry: Option<RetryIn>,
    /// p2c (default: the less busy of two random replicas), round_robin, or a consistent hash.
    balance: Option<BalanceIn>,
    /// What the replicas speak: http1 (default) or h2c (HTTP/2 cleartext, e.g. gRPC).
    upstream: Option<UpstreamIn>,
}

#[derive(JsonSchema)]
#[serde(rename_all = "lowercase")]
enum UpstreamIn {
    Http1,
    H2c,
}

#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
struct TimeoutsIn {
    /// Time to connect to a replica (default 2s).
    connect: Option<DurationIn>,
    /// Time to the response head (default 30s).
    request: Option<DurationIn>,
    /// Idle upstream connections close after this (default 90s).
    idle: Option<DurationIn>,
}

/// Retries go to another replica; failed connects always, statuses for idempotent methods only.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
struct RetryIn {
    /// Tries after the first (default 2).
    attempts: Option<u32>,
    /// 5xx statuses retried (default [502, 503, 504]).
    on: Option<Vec<RetryStatus>>,
}

#[derive(JsonSchema)]
struct RetryStatus(#[schemars(range(min = 500, max = 599))] u16);

#[derive(JsonSchema)]
#[serde(untagged)]
enum BalanceIn {
    Name(BalanceName),
    Hash(HashIn),
}

#[derive(JsonSchema)]
#[serde(rename_all = "snake_case")]
enum BalanceName {
    P2c,
    RoundRobin,
}

#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
struct HashIn {
    hash: HashKeyIn,
}

#[derive(JsonSchema)]
#[serde(untagged)]
enum HashKeyIn {
    Client(ClientKey),
    Header(HeaderKey),
}

#[derive(JsonSchema)]
#[serde(rename_all = "lowercase")]
enum ClientKey {
    Client,
}

#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
struct HeaderKey {
    header: String,
}

#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
struct FileRefIn {
    /// A host file, relative to tug.yaml.
    file: String,
}

/// A stack secret or config by name, or with the path it is mounted at.
#[derive(JsonSchema)]
#[serde(untagged)]
enum FileMountIn {
    Name(String),
    Full(FileMountFull),
}

#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
struct FileMountFull {
    source: String,
    /// Absolute path in the container (a secret's may be a bare name under /run/secrets).
    target: Option<String>,
    /// Owner of the file in the container (default: the service's user for a secret).
    uid: Option<u32>,
    /// Group of the file in the container.
    gid: Option<u32>,
    /// Permission bits in octal, e.g. "0440" (default: 0400 for a secret).
    mode: Option<ModeIn>,
}

/// Octal permission bits: `"0440"`, or a number whose digits are octal.
#[derive(JsonSchema)]
#[serde(untagged)]
enum ModeIn {
    Text(String),
    Number(u32),
}

/// `PORT[/udp]`, `[[HOST_IP:]PUBLISH:]PORT[/udp]`, or the long form.
#[derive(JsonSchema)]
#[serde(untagged)]
enum PortIn {
    Number(u16),
    Short(String),
    Full(PortFull),
}

#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
struct PortFull {
    #[schemars(range(min = 1, max = 65535))]
    port: u32,
    protocol: Option<ProtocolIn>,
    /// A fixed host port (one replica only); otherwise an ephemeral one.
    #[schemars(range(min = 1, max = 65535))]
    publish: Option<u32>,
    /// Host address to publish on (default 127.0.0.1).
    host_ip: Option<String>,
}

#[derive(JsonSchema)]
#[serde(rename_all = "lowercase")]
enum ProtocolIn {
    Tcp,
    Udp,
}

#[derive(JsonSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
enum RuntimeIn {
    Docker,
    Process,
}

/// How a changed service's replicas are replaced.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct UpdateIn {
    /// New replicas started before old ones stop, per step (default 1).
    max_surge: Option<u32>,
    /// Old replicas stopped before their replacements are healthy, per step (default 0).
    max_unavailable: Option<u32>,
    /// How long a new replica may take to turn healthy (default 60s).
    health_timeout: Option<DurationIn>,
    /// Put the previous replicas back when the new ones fail (default true).
    auto_rollback: Option<bool>,
    order: Option<UpdateOrderIn>,
}

#[derive(JsonSchema)]
#[serde(rename_all = "kebab-case")]
#[allow(dead_code)]
enum UpdateOrderIn {
    StartFirst,
    StopFirst,
}

/// One service: an image (or a build) run as one or more replicas.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
struct ServiceIn {
    /// Image reference to run; with `build`, the tag given to the built image.
    image: Option<String>,
    build: Option<BuildIn>,
    /// Arguments replacing the image's CMD: a list, or a string split like a shell.
    command: Option<Argv>,
    /// Replaces the image's ENTRYPOINT: a list, or a string split like a shell.
    entrypoint: Option<Argv>,
    /// Environment variables; explicit entries win over `env_file`.
    env: Option<Pairs>,
    /// Files of KEY=VALUE lines, relative to tug.yaml.
    env_file: Option<OneOrMany>,
    /// The port the process listens on inside the container.
    #[schemars(range(min = 1, max = 65535))]
    port: Option<u32>,
    /// A fixed host port on 127.0.0.1 (one replica only); otherwise an ephemeral one.
    #[schemars(range(min = 1, max = 65535))]
    publish: Option<u32>,
    /// Host address `publish` binds (default 127.0.0.1; `0.0.0.0` for every interface).
    host_ip: Option<String>,
    /// More ports the process listens on, TCP or UDP, each published like `port`.
    ports: Option<Vec<PortIn>>,
    /// Ports open to the stack's network only: `9600` or `53/udp`.
    expose: Option<Vec<PortIn>>,
    /// More names the service answers to on the stack's network.
    aliases: Option<OneOrMany>,
    /// Number of replicas (default 1; 0 keeps the service defined but stopped).
    #[schemars(range(min = 0))]
    replicas: Option<u32>,
    health: Option<HealthOrNone>,
    depends_on: Option<DependsOn>,
    volumes: Option<Vec<VolumeIn>>,
    resources: Option<ResourcesIn>,
    security: Option<SecurityIn>,
    /// Stack secrets mounted read-only (default at `/run/secrets/<name>`).
    secrets: Option<Vec<FileMountIn>>,
    /// Stack configs mounted read-only (default at `/<name>`).
    configs: Option<Vec<FileMountIn>>,
    /// Container labels; the `dev.tug.` prefix is reserved.
    labels: Option<Pairs>,
    restart: Option<Restart>,
    /// Time between SIGTERM and SIGKILL (default 10s).
    stop_grace_period: Option<DurationIn>,
    update: Option<UpdateIn>,
    /// Requests the gateway sends here: one route or a list.
    route: Option<RoutesIn>,
    autoscale: Option<AutoscaleIn>,
    verify: Option<VerifyIn>,
    /// How `tug dev` treats changes of the service's files.
    develop: Option<DevelopIn>,
}

/// `develop: { watch: [...] }`, as in compose.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
struct DevelopIn {
    watch: Option<Vec<WatchIn>>,
}

#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
struct WatchIn {
    /// A file or directory, relative to tug.yaml.
    path: String,
    /// sync: copy changes into the running replicas; rebuild: build and roll
    /// out; sync+restart: copy, then restart the replicas one at a time.
    action: WatchActionIn,
    /// Where `path` goes inside the replica (absolute); needed to sync.
    target: Option<String>,
    /// Gitignore-style patterns, relative to `path`, that change nothing.
    ignore: Option<Vec<String>>,
}

#[derive(JsonSchema)]
enum WatchActionIn {
    #[serde(rename = "sync")]
    Sync,
    #[serde(rename = "rebuild")]
    Rebuild,
    #[serde(rename = "sync+restart")]
    SyncRestart,
}

/// Require a signed image: `tug up` refuses it unless its signature
/// verifies with this public key.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
struct VerifyIn {
    /// The public key (PEM, from `tug keygen` or cosign), relative to tug.yaml.
    key: String,
}

/// `build: ./dir`, a Dockerfile build, or a Rust build.
#[derive(JsonSchema)]
#[serde(untagged)]
enum BuildIn {
    /// The build context directory, relative to tug.yaml.
    Context(String),
    Full(BuildFull),
}

#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
struct BuildFull {
    /// Build context directory (default: the directory of tug.yaml).
    context: Option<String>,
    /// Dockerfile path, relative to the context.
    dockerfile: Option<String>,
    /// Build arguments.
    args: Option<Pairs>,
    /// Target stage.
    target: Option<String>,
    /// Compile a cargo package statically and package it FROM scratch.
    rust: Option<RustIn>,
}

#[derive(JsonSchema)]
#[serde(untagged)]
enum RustIn {
    /// The cargo package name.
    Package(String),
    Full(RustFull),
}

#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
struct RustFull {
    package: String,
    /// Binary name when it differs from the package name.
    bin: Option<String>,
    /// Cargo workspace root, relative to tug.yaml.
    workspace: Option<String>,
    /// Cargo profile (default release).
    profile: Option<String>,
}

#[derive(JsonSchema)]
#[serde(untagged)]
enum Argv {
    Shell(String),
    List(Vec<Scalar>),
}

#[derive(JsonSchema)]
#[serde(untagged)]
enum Scalar {
    S(String),
    N(f64),
    B(bool),
}

#[derive(JsonSchema)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

/// A map of names to values, or a list of `KEY=VALUE` strings.
#[derive(JsonSchema)]
#[serde(untagged)]
enum Pairs {
    Map(BTreeMap<String, Scalar>),
    List(Vec<KeyValue>),
}

struct KeyValue;

impl JsonSchema for KeyValue {
    fn schema_name() -> Cow<'static, str> {
        "KeyValue".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "string", "pattern": "^[^=]+=", "description": "KEY=VALUE" })
    }
}

/// A health check, or `none` for no check at all (the image's HEALTHCHECK included).
#[derive(JsonSchema)]
#[serde(untagged)]
enum HealthOrNone {
    Off(HealthNone),
    Check(HealthIn),
}

struct HealthNone;

impl JsonSchema for HealthNone {
    fn schema_name() -> Cow<'static, str> {
        "HealthNone".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "enum": ["none", false], "description": "no health check, the image's own turned off too" })
    }
}

/// Exactly one of `http`, `tcp` or `exec`; with none, a TCP connect to `port`.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
struct HealthIn {
    /// HTTP GET path that must answer 2xx or 3xx.
    #[schemars(regex(pattern = "^/"))]
    http: Option<String>,
    /// TCP connect to the service port.
    tcp: Option<bool>,
    /// A command run in the container (exit 0 is healthy); a string runs with /bin/sh -c.
    exec: Option<Argv>,
    /// Time between checks (default 2s).
    interval: Option<DurationIn>,
    /// Time a check may take (default 1s).
    timeout: Option<DurationIn>,
    /// Failures in a row before unhealthy (default 3).
    #[schemars(range(min = 0))]
    retries: Option<u32>,
    /// Grace period after start when failures do not count (default 0s).
    start_period: Option<DurationIn>,
}

/// A list of services (started), or a map of service to condition.
#[derive(JsonSchema)]
#[serde(untagged)]
enum DependsOn {
    List(Vec<String>),
    Map(BTreeMap<String, Option<ConditionIn>>),
}

#[derive(JsonSchema)]
#[serde(untagged)]
enum ConditionIn {
    Short(ConditionName),
    Compose(ComposeCondition),
}

#[derive(JsonSchema)]
#[serde(rename_all = "snake_case")]
enum ConditionName {
    Started,
    Healthy,
    Completed,
    ServiceStarted,
    ServiceHealthy,
    ServiceCompletedSuccessfully,
}

#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
struct ComposeCondition {
    condition: ConditionName,
}

/// `SOURCE:PATH[:ro|rw]` (a host path when SOURCE starts with `.`, `/` or `~`,
/// else a named volume), or the long form.
#[derive(JsonSchema)]
#[serde(untagged)]
enum VolumeIn {
    Short(VolumeShort),
    Named(NamedVolume),
    Bind(BindVolume),
}

struct VolumeShort;

impl JsonSchema for VolumeShort {
    fn schema_name() -> Cow<'static, str> {
        "VolumeShort".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": "^[^:]+:/[^:]*(:(ro|rw))?$",
            "description": "SOURCE:PATH[:ro|rw]"
        })
    }
}

#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
struct NamedVolume {
    /// A named volume owned by the stack.
    name: String,
    /// Absolute path inside the container.
    path: String,
    read_only: Option<bool>,
}

#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
struct BindVolume {
    /// A host path, relative to tug.yaml.
    bind: String,
    /// Absolute path inside the container.
    path: String,
    read_only: Option<bool>,
}

#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
struct ResourcesIn {
    /// CPUs: a number like 0.5, or millicpus like "500m".
    cpu: Option<Cpu>,
    /// Memory limit (default 512Mi).
    memory: Option<SizeIn>,
    /// Process limit (default 256; -1 for none).
    pids: Option<i64>,
}

#[derive(JsonSchema)]
#[serde(untagged)]
enum Cpu {
    Number(f64),
    Text(CpuText),
}

struct CpuText;

impl JsonSchema for CpuText {
    fn schema_name() -> Cow<'static, str> {
        "CpuText".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "string", "pattern": "^([0-9]+m|[0-9]*\\.?[0-9]+)$" })
    }
}

#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
struct SecurityIn {
    /// `uid[:gid]` or a user name known to the image (default: the image's
    /// non-root user, else 65534:65534).
    user: Option<Scalar>,
    /// Read-only root filesystem (default true).
    read_only: Option<bool>,
    /// Capabilities added back after dropping all.
    cap_add: Option<OneOrMany>,
    /// Run privileged (default false).
    privileged: Option<bool>,
    /// `unconfined` or a path to a seccomp profile.
    seccomp: Option<String>,
    /// Default true.
    no_new_privileges: Option<bool>,
}

#[derive(JsonSchema)]
#[serde(untagged)]
enum Restart {
    Policy(RestartName),
    Never(NeverBool),
}

#[derive(JsonSchema)]
#[serde(rename_all = "kebab-case")]
enum RestartName {
    No,
    Always,
    OnFailure,
    UnlessStopped,
}

struct NeverBool;

impl JsonSchema for NeverBool {
    fn schema_name() -> Cow<'static, str> {
        "NeverBool".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "const": false, "description": "the same as `no`" })
    }
}

/// A duration like `2s`, `500ms`, `1m30s` or `1h`.
struct DurationIn;

impl JsonSchema for DurationIn {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A duration like `2s`, `500ms`, `1m30s` or `1h` (0 needs no unit)",
            "oneOf": [
                { "type": "string", "pattern": "^([0-9]+(ns|us|µs|ms|s|m|h))+$|^0$" },
                { "const": 0 }
            ]
        })
    }
}

/// A size like `256Mi`, `1Gi`, `512k` or a number of bytes.
struct SizeIn;

impl JsonSchema for SizeIn {
    fn schema_name() -> Cow<'static, str> {
        "Size".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A size like `256Mi`, `1Gi`, `512k`, `1G` or a number of bytes",
            "oneOf": [
                { "type": "string", "pattern": "^[0-9.]+ *(b|B|k|K|kB|KB|M|MB|m|G|GB|g|T|TB|Ki|KiB|Mi|MiB|Gi|GiB|Ti|TiB)?$" },
                { "type": "integer", "minimum": 0 }
            ]
        })
    }
}

/// Replicas follow the load between `min` and `max`, as a Kubernetes
/// HorizontalPodAutoscaler would scale them (an HPA on Kubernetes).
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct AutoscaleIn {
    /// Fewest replicas (default 1; 0 only with `idle`).
    #[schemars(range(min = 0, max = 256))]
    min: Option<u32>,
    /// Most replicas.
    #[schemars(range(min = 1, max = 256))]
    max: u32,
    /// Average CPU per replica, in percent of `resources.cpu` (one CPU when unset): `70%`.
    /// With no target at all: 80%.
    target_cpu: Option<PercentIn>,
    /// Average requests in flight per replica.
    #[schemars(range(min = 0))]
    target_inflight: Option<f64>,
    /// Average requests per second per replica.
    #[schemars(range(min = 0))]
    target_rps: Option<f64>,
    /// With `min: 0`: stop the service after this long without requests.
    idle: Option<DurationIn>,
    /// With `min: 0`: requests held while the service wakes (default 100); more get 503.
    #[schemars(range(min = 1))]
    max_pending: Option<u32>,
    /// With `min: 0`: how long a held request waits for a ready replica (default 30s), then 503.
    wake_timeout: Option<DurationIn>,
    behavior: Option<BehaviorIn>,
}

#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
enum PercentIn {
    Number(#[schemars(range(min = 1))] u32),
    Text(PercentText),
}

struct PercentText;

impl JsonSchema for PercentText {
    fn schema_name() -> Cow<'static, str> {
        "PercentText".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "string", "pattern": "^[0-9]+ *%$", "description": "a percentage like 70%" })
    }
}

/// How fast replicas are added and removed.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct BehaviorIn {
    /// Default: no stabilization; per 15s, double or add 4 replicas, whichever is more.
    scale_up: Option<RulesIn>,
    /// Default: 5m stabilization; then any number per 15s.
    scale_down: Option<RulesIn>,
}

#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct RulesIn {
    /// Recommendations this recent still count (whole seconds, at most 1h).
    stabilization: Option<DurationIn>,
    /// Which policy wins: the largest change (max, default), the smallest (min), or none (disabled).
    select: Option<SelectIn>,
    #[schemars(length(min = 1))]
    policies: Option<Vec<PolicyIn>>,
}

#[derive(JsonSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
enum SelectIn {
    Max,
    Min,
    Disabled,
}

/// At most `pods` replicas, or `percent` of them, per `period`.
#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
enum PolicyIn {
    Pods(PodsPolicy),
    Percent(PercentPolicy),
}

#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct PodsPolicy {
    #[schemars(range(min = 1))]
    pods: u32,
    /// Whole seconds, at most 30m.
    period: DurationIn,
}

#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct PercentPolicy {
    #[schemars(range(min = 1))]
    percent: u32,
    /// Whole seconds, at most 30m.
    period: DurationIn,
}
