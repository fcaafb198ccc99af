//! The agent's one Prometheus registry: what supervision, rollouts, the
//! autoscaler and the engine's stats say about a stack, next to the
//! gateway's request metrics (registered into the same registry).
//!
//! Every series carries `stack` (a registry label); per-service series carry
//! `service`, per-replica ones `replica` (the container's name, as the
//! gateway labels it). Names follow Prometheus conventions: a `tug_` prefix,
//! base units in the name (`_seconds`, `_bytes`), `_total` on counters.
//!
//! The registry knows nothing of events: the agent's bus subscriber calls the
//! recording methods, and its stats sampler hands over the latest resource
//! readings, which are encoded at scrape time (they are the engine's
//! counters, not ours to increment).
//!
//! ```
//! use tug_observe::metrics::{Metrics, RolloutOutcome};
//!
//! let m = Metrics::new("shop");
//! m.rollout(RolloutOutcome::Succeeded, 4.2);
//! m.restarted("web", "shop-web-1");
//! let text = m.encode();
//! assert!(text.contains(r#"tug_replica_restarts_total{stack="shop",service="web",replica="shop-web-1"} 1"#));
//! assert!(text.contains("tug_rollout_duration_seconds_count"));
//! ```

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeLabelSet, EncodeLabelValue, EncodeMetric, LabelValueEncoder,
};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};
use std::sync::{Arc, Mutex};

pub use prometheus_client::registry::Registry as PromRegistry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServiceLabels {
    service: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReplicaLabels {
    service: String,
    replica: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    service: String,
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CheckLabels {
    service: String,
    replica: String,
    result: CheckResult,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RolloutLabels {
    outcome: RolloutOutcome,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ScaleLabels {
    service: String,
    direction: Direction,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    service: String,
    outcome: BuildOutcome,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PipelineRunLabels {
    pipeline: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PipelineLabels {
    pipeline: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PipelineJobLabels {
    pipeline: String,
    job: String,
}

#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
enum CheckResult {
    success,
    failure,
}

/// How a converge of the stack ended.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum RolloutOutcome {
    /// Every service reached its target.
    Succeeded,
    /// A service failed, and nothing was put back.
    Failed,
    /// A service failed its gate and its previous replicas were put back.
    RolledBack,
}

impl RolloutOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            RolloutOutcome::Succeeded => "succeeded",
            RolloutOutcome::Failed => "failed",
            RolloutOutcome::RolledBack => "rolled_back",
        }
    }
}

impl EncodeLabelValue for RolloutOutcome {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        EncodeLabelValue::encode(&self.as_str(), encoder)
    }
}

#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
enum Direction {
    up,
    down,
}

#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
enum BuildOutcome {
    succeeded,
    failed,
}

/// One replica's resource counters, as the runtime's stats report them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReplicaResources {
    pub service: String,
    pub replica: String,
    pub cpu_seconds: f64,
    pub memory_bytes: Option<u64>,
    pub network_receive_bytes: Option<u64>,
    pub network_transmit_bytes: Option<u64>,
    pub disk_read_bytes: Option<u64>,
    pub disk_write_bytes: Option<u64>,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn probe_buckets() -> Histogram {
    // 1 ms .. 8 s
    Histogram::new(exponential_buckets(0.001, 2.0, 14))
}

fn long_buckets() -> Histogram {
    // 0.25 s .. 34 min
    Histogram::new(exponential_buckets(0.25, 2.0, 14))
}

/// What a family's labels must be.
trait Labels:
    Clone + std::hash::Hash + Eq + EncodeLabelSet + std::fmt::Debug + Send + Sync + 'static
{
}
impl<
        L: Clone + std::hash::Hash + Eq + EncodeLabelSet + std::fmt::Debug + Send + Sync + 'static,
    > Labels for L
{
}

/// A family of counters by `L`, registered as `tug_{name}_total`.
fn counters<L: Labels>(r: &mut Registry, name: &str, help: &str) -> Family<L, Counter> {
    let f = Family::default();
    r.register(name, help, f.clone());
    f
}

/// A family of gauges by `L`, registered as `tug_{name}`.
fn gauges<L: Labels>(r: &mut Registry, name: &str, help: &str) -> Family<L, Gauge> {
    let f = Family::default();
    r.register(name, help, f.clone());
    f
}

/// A family of histograms of seconds by `L`, registered as
/// `tug_{name}_seconds`, with `buckets`.
fn seconds<L: Labels>(
    r: &mut Registry,
    name: &str,
    help: &str,
    buckets: fn() -> Histogram,
) -> HistogramFamily<L> {
    let f = Family::new_with_constructor(buckets);
    r.register_with_unit(name, help, Unit::Seconds, f.clone());
    f
}

fn service(service: &str) -> ServiceLabels {
    ServiceLabels {
        service: service.into(),
    }
}

fn replica(service: &str, replica: &str) -> ReplicaLabels {
    ReplicaLabels {
        service: service.into(),
        replica: replica.into(),
    }
}

fn pipeline(pipeline: &str) -> PipelineLabels {
    PipelineLabels {
        pipeline: pipeline.into(),
    }
}

/// The agent's registry and the families it feeds.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    replicas: Family<StateLabels, Gauge>,
    restarts: Family<ReplicaLabels, Counter>,
    replacements: Family<ReplicaLabels, Counter>,
    checks: Family<CheckLabels, Counter>,
    check_duration: HistogramFamily<ServiceLabels>,
    rollouts: Family<RolloutLabels, Counter>,
    rollout_duration: HistogramFamily<RolloutLabels>,
    scale_decisions: Family<ScaleLabels, Counter>,
    desired: Family<ServiceLabels, Gauge>,
    builds: Family<BuildLabels, Counter>,
    build_duration: HistogramFamily<ServiceLabels>,
    pipeline_runs: Family<PipelineRunLabels, Counter>,
    pipeline_duration: HistogramFamily<PipelineLabels>,
    pipeline_job_duration: HistogramFamily<PipelineJobLabels>,
    resources: Arc<Resources>,
}

impl Metrics {
    /// The families of `stack`'s agent, every series labelled `stack`.
    pub fn new(stack: &str) -> Metrics {
        let mut registry = Registry::with_prefix_and_labels(
            "tug",
            [("stack".into(), stack.to_string().into())].into_iter(),
        );
        let r = &mut registry;
        let m = Metrics {
            replicas: gauges(
                r,
                "replicas",
                "Replicas by service and state (running, exited, ...)",
            ),
            restarts: counters(
                r,
                "replica_restarts",
                "Restarts of a replica that exited, by the agent",
            ),
            replacements: counters(
                r,
                "replica_replacements",
                "Replicas replaced after failing their health checks",
            ),
            checks: counters(
                r,
                "health_checks",
                "Health probes run by the agent, by result",
            ),
            check_duration: seconds(
                r,
                "health_check_duration",
                "Time a health probe took to answer or fail",
                probe_buckets,
            ),
            rollouts: counters(
                r,
                "rollouts",
                "Converges of the stack that changed something, by outcome",
            ),
            rollout_duration: seconds(
                r,
                "rollout_duration",
                "Time from the start of a converge to its end, by outcome",
                long_buckets,
            ),
            scale_decisions: counters(
                r,
                "scale_decisions",
                "Autoscaler decisions that changed a service's replica count",
            ),
            desired: gauges(
                r,
                "service_desired_replicas",
                "Replicas the autoscaler last asked for",
            ),
            builds: counters(
                r,
                "builds",
                "Image preparations (build or look-up) for a service, by outcome",
            ),
            build_duration: seconds(
                r,
                "build_duration",
                "Time to prepare a service's image",
                long_buckets,
            ),
            pipeline_runs: counters(
                r,
                "pipeline_runs",
                "Pipeline runs the agent started, by outcome (succeeded, failed, cancelled, error)",
            ),
            pipeline_duration: seconds(
                r,
                "pipeline_duration",
                "Time from the start of a pipeline run to its end",
                long_buckets,
            ),
            pipeline_job_duration: seconds(
                r,
                "pipeline_job_duration",
                "Time a job of a pipeline run took, retries included",
                long_buckets,
            ),
            resources: Arc::default(),
            registry: Registry::default(),
        };
        r.register_collector(Box::new(Arc::clone(&m.resources)));
        Metrics { registry, ..m }
    }

    /// Where other parts of the agent (the gateway) register their families.
    pub fn registry_mut(&mut self) -> &mut Registry {
        &mut self.registry
    }

    /// Replaces the replica counts: `states` holds (service, state) per replica.
    /// Every replica's restart and replacement counters start at zero, so a
    /// rate over them exists before the first restart.
    pub fn set_replicas<'a>(
        &self,
        replicas: impl IntoIterator<Item = (&'a str, &'a str, &'a str)>,
    ) {
        let mut counts = std::collections::BTreeMap::<(String, String), i64>::new();
        for (service, replica_name, state) in replicas {
            *counts.entry((service.into(), state.into())).or_default() += 1;
            let l = replica(service, replica_name);
            drop(self.restarts.get_or_create(&l));
            drop(self.replacements.get_or_create(&l));
            for direction in [Direction::up, Direction::down] {
                drop(self.scale_decisions.get_or_create(&ScaleLabels {
                    service: service.into(),
                    direction,
                }));
            }
        }
        self.replicas.clear();
        for ((service, state), n) in counts {
            self.replicas
                .get_or_create(&StateLabels { service, state })
                .set(n);
        }
    }

    pub fn restarted(&self, service: &str, name: &str) {
        self.restarts.get_or_create(&replica(service, name)).inc();
    }

    pub fn replaced(&self, service: &str, name: &str) {
        self.replacements
            .get_or_create(&replica(service, name))
            .inc();
    }

    pub fn health_checked(&self, service: &str, replica: &str, ok: bool, seconds: f64) {
        let result = if ok {
            CheckResult::success
        } else {
            CheckResult::failure
        };
        self.checks
            .get_or_create(&CheckLabels {
                service: service.into(),
                replica: replica.into(),
                result,
            })
            .inc();
        self.check_duration
            .get_or_create(&self::service(service))
            .observe(seconds);
    }

    pub fn rollout(&self, outcome: RolloutOutcome, seconds: f64) {
        let l = RolloutLabels { outcome };
        self.rollouts.get_or_create(&l).inc();
        self.rollout_duration.get_or_create(&l).observe(seconds);
    }

    /// The autoscaler decided `desired` replicas for a service at `current`.
    pub fn scaled(&self, service: &str, current: u32, desired: u32) {
        self.desired
            .get_or_create(&self::service(service))
            .set(i64::from(desired));
        let direction = match desired.cmp(&current) {
            std::cmp::Ordering::Greater => Direction::up,
            std::cmp::Ordering::Less => Direction::down,
            std::cmp::Ordering::Equal => return,
        };
        self.scale_decisions
            .get_or_create(&ScaleLabels {
                service: service.into(),
                direction,
            })
            .inc();
    }

    pub fn built(&self, service: &str, ok: bool, seconds: f64) {
        let outcome = if ok {
            BuildOutcome::succeeded
        } else {
            BuildOutcome::failed
        };
        self.builds
            .get_or_create(&BuildLabels {
                service: service.into(),
                outcome,
            })
            .inc();
        if ok {
            self.build_duration
                .get_or_create(&self::service(service))
                .observe(seconds);
        }
    }

    /// A pipeline run ended with `outcome` after `seconds` (`None`: its
    /// start was not seen).
    pub fn pipeline_ran(&self, name: &str, outcome: &str, seconds: Option<f64>) {
        self.pipeline_runs
            .get_or_create(&PipelineRunLabels {
                pipeline: name.into(),
                outcome: outcome.into(),
            })
            .inc();
        if let Some(s) = seconds {
            self.pipeline_duration
                .get_or_create(&pipeline(name))
                .observe(s);
        }
    }

    pub fn pipeline_job(&self, name: &str, job: &str, seconds: f64) {
        self.pipeline_job_duration
            .get_or_create(&PipelineJobLabels {
                pipeline: name.into(),
                job: job.into(),
            })
            .observe(seconds);
    }

    /// The latest resource readings, one per running replica.
    pub fn set_resources(&self, readings: Vec<ReplicaResources>) {
        *self
            .resources
            .latest
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = readings;
    }

    /// The OpenMetrics text format, which Prometheus reads.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// The content type of [`Metrics::encode`].
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Per-replica resource counters, encoded from the latest readings.
#[derive(Debug, Default)]
struct Resources {
    latest: Mutex<Vec<ReplicaResources>>,
}

impl Collector for Resources {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let latest = self
            .latest
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let labels = |r: &ReplicaResources| replica(&r.service, &r.replica);
        let mut counter = |name: &str,
                           help: &str,
                           unit: Unit,
                           get: fn(&ReplicaResources) -> Option<f64>|
         -> Result<(), std::fmt::Error> {
            let values: Vec<_> = latest
                .iter()
                .filter_map(|r| get(r).map(|v| (labels(r), v)))
                .collect();
            if values.is_empty() {
                return Ok(());
            }
            let mut m = encoder.encode_descriptor(
                name,
                help,
                Some(&unit),
                prometheus_client::metrics::MetricType::Counter,
            )?;
            for (l, v) in values {
                ConstCounter::new(v).encode(m.encode_family(&l)?)?;
            }
            Ok(())
        };
        counter(
            "replica_cpu",
            "CPU time a replica used since it started",
            Unit::Seconds,
            |r| Some(r.cpu_seconds),
        )?;
        counter(
            "replica_network_receive",
            "Bytes a replica received over its network interfaces",
            Unit::Bytes,
            |r| r.network_receive_bytes.map(|v| v as f64),
        )?;
        counter(
            "replica_network_transmit",
            "Bytes a replica sent over its network interfaces",
            Unit::Bytes,
            |r| r.network_transmit_bytes.map(|v| v as f64),
        )?;
        counter(
            "replica_disk_read",
            "Bytes a replica read from block devices",
            Unit::Bytes,
            |r| r.disk_read_bytes.map(|v| v as f64),
        )?;
        counter(
            "replica_disk_write",
            "Bytes a replica wrote to block devices",
            Unit::Bytes,
            |r| r.disk_write_bytes.map(|v| v as f64),
        )?;
        let memory: Vec<_> = latest
            .iter()
            .filter_map(|r| r.memory_bytes.map(|v| (labels(r), v as f64)))
            .collect();
        if !memory.is_empty() {
            let mut m = encoder.encode_descriptor(
                "replica_memory",
                "Memory a replica uses now",
                Some(&Unit::Bytes),
                prometheus_client::metrics::MetricType::Gauge,
            )?;
            for (l, v) in memory {
                ConstGauge::new(v).encode(m.encode_family(&l)?)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_states_afresh_each_time() {
        let m = Metrics::new("s");
        m.set_replicas([("web", "s-web-1", "running"), ("web", "s-web-2", "exited")]);
        m.set_replicas([("web", "s-web-1", "running")]);
        let t = m.encode();
        assert!(
            t.contains(r#"tug_replicas{stack="s",service="web",state="running"} 1"#),
            "{t}"
        );
        assert!(!t.contains(r#"state="exited""#), "{t}");
        assert!(
            t.contains(
                r#"tug_replica_restarts_total{stack="s",service="web",replica="s-web-2"} 0"#
            ),
            "{t}"
        );
    }

    #[test]
    fn resources_are_counters_and_a_gauge_with_units() {
        let m = Metrics::new("s");
        m.set_resources(vec![ReplicaResources {
            service: "web".into(),
            replica: "s-web-1".into(),
            cpu_seconds: 1.5,
            memory_bytes: Some(4096),
            network_receive_bytes: Some(10),
            ..Default::default()
        }]);
        let t = m.encode();
        assert!(t.contains("# TYPE tug_replica_cpu_seconds counter"), "{t}");
        assert!(
            t.contains(
                r#"tug_replica_cpu_seconds_total{stack="s",service="web",replica="s-web-1"} 1.5"#
            ),
            "{t}"
        );
        assert!(
            t.contains(
                r#"tug_replica_memory_bytes{stack="s",service="web",replica="s-web-1"} 4096"#
            ),
            "{t}"
        );
        assert!(t.contains("tug_replica_network_receive_bytes_total"), "{t}");
        // Not reported, so not exported as zero.
        assert!(!t.contains("tug_replica_disk_read_bytes"), "{t}");
    }

    #[test]
    fn pipeline_runs_and_durations() {
        let m = Metrics::new("s");
        m.pipeline_ran("ci", "succeeded", Some(3.0));
        m.pipeline_ran("ci", "failed", None);
        m.pipeline_job("ci", "test", 2.0);
        let t = m.encode();
        for want in [
            r#"tug_pipeline_runs_total{stack="s",pipeline="ci",outcome="succeeded"} 1"#,
            r#"tug_pipeline_runs_total{stack="s",pipeline="ci",outcome="failed"} 1"#,
            r#"tug_pipeline_duration_seconds_count{stack="s",pipeline="ci"} 1"#,
            r#"tug_pipeline_job_duration_seconds_sum{stack="s",pipeline="ci",job="test"} 2.0"#,
        ] {
            assert!(t.contains(want), "{want} not in {t}");
        }
    }

    #[test]
    fn scale_decisions_count_changes_only() {
        let m = Metrics::new("s");
        m.scaled("web", 2, 4);
        m.scaled("web", 4, 4);
        let t = m.encode();
        assert!(
            t.contains(r#"tug_scale_decisions_total{stack="s",service="web",direction="up"} 1"#),
            "{t}"
        );
        assert!(
            t.contains(r#"tug_service_desired_replicas{stack="s",service="web"} 4"#),
            "{t}"
        );
    }
}
