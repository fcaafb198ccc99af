//! Prometheus metrics per route and replica. Each replica's series are
//! looked up once, when it joins a pool, so a request only bumps atomics.

use prometheus_client::encoding::{EncodeLabelSet, EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::Registry;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    service: String,
    route: String,
    replica: String,
    code: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReplicaLabels {
    service: String,
    route: String,
    replica: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServiceLabels {
    service: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    service: String,
    route: String,
}

fn latency() -> Latency {
    Latency::new(exponential_buckets(0.0005, 2.0, 16))
}

/// A histogram the request path records into with atomics alone
/// (prometheus-client's takes a lock per observation).
#[derive(Clone, Debug)]
pub(crate) struct Latency(Arc<LatencyInner>);

#[derive(Debug)]
struct LatencyInner {
    /// Upper bounds, the last one `+Inf`.
    bounds: Box<[f64]>,
    /// Observations per bucket (not cumulative, as the encoder wants them).
    counts: Box<[AtomicU64]>,
    /// The sum's `f64` bits.
    sum: AtomicU64,
}

impl Latency {
    fn new(buckets: impl Iterator<Item = f64>) -> Latency {
        let bounds: Box<[f64]> = buckets.chain(std::iter::once(f64::MAX)).collect();
        let counts = bounds.iter().map(|_| AtomicU64::new(0)).collect();
        Latency(Arc::new(LatencyInner {
            bounds,
            counts,
            sum: AtomicU64::new(0f64.to_bits()),
        }))
    }

    pub fn observe(&self, v: f64) {
        let i = self.0.bounds.partition_point(|&b| b < v);
        self.0.counts[i.min(self.0.counts.len() - 1)].fetch_add(1, Ordering::Relaxed);
        let _ = self
            .0
            .sum
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
                Some((f64::from_bits(b) + v).to_bits())
            });
    }
}

impl TypedMetric for Latency {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for Latency {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let buckets: Vec<(f64, u64)> = self
            .0
            .bounds
            .iter()
            .zip(self.0.counts.iter())
            .map(|(&b, c)| (b, c.load(Ordering::Relaxed)))
            .collect();
        let count = buckets.iter().map(|(_, c)| c).sum();
        let sum = f64::from_bits(self.0.sum.load(Ordering::Relaxed));
        encoder.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

/// 25 ms to about 100 s.
fn cold() -> Histogram {
    Histogram::new(exponential_buckets(0.025, 2.0, 13))
}

/// The gateway's metric families, registered once.
pub struct Metrics {
    requests: Family<RequestLabels, Counter>,
    duration: Family<ReplicaLabels, Latency, fn() -> Latency>,
    in_flight: Family<ReplicaLabels, Gauge>,
    ejections: Family<ReplicaLabels, Counter>,
    retries: Family<RouteLabels, Counter>,
    unavailable: Family<RouteLabels, Counter>,
    cold_start: Family<ServiceLabels, Histogram, fn() -> Histogram>,
    registry: Registry,
}

/// Status classes, indexed by the first digit minus one.
const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// One replica's series on one route.
pub(crate) struct ReplicaMetrics {
    by_class: [Counter; 5],
    pub duration: Latency,
    pub in_flight: Gauge,
    pub ejections: Counter,
}

impl ReplicaMetrics {
    pub fn record(&self, status: u16, seconds: f64) {
        let i = (status / 100).clamp(1, 5) as usize - 1;
        self.by_class[i].inc();
        self.duration.observe(seconds);
    }
}

/// One route's series.
pub(crate) struct RouteMetrics {
    pub retries: Counter,
    pub unavailable: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("tug");
        let requests = Family::<RequestLabels, Counter>::default();
        let duration =
            Family::<ReplicaLabels, Latency, fn() -> Latency>::new_with_constructor(latency);
        let in_flight = Family::<ReplicaLabels, Gauge>::default();
        let ejections = Family::<ReplicaLabels, Counter>::default();
        let retries = Family::<RouteLabels, Counter>::default();
        let unavailable = Family::<RouteLabels, Counter>::default();
        Metrics {
            requests,
            duration,
            in_flight,
            ejections,
            retries,
            unavailable,
            cold_start: Family::new_with_constructor(cold),
            registry: Registry::default(),
        }
        .registered(&mut registry)
    }

    fn registered(self, registry: &mut Registry) -> Self {
        self.register(registry);
        Metrics {
            registry: std::mem::take(registry),
            ..self
        }
    }

    /// Registers the gateway's families into `registry` (the agent's, prefixed
    /// `tug`), under `gateway_`; cold starts beside them as
    /// `tug_cold_start_seconds`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "cold_start_seconds",
            "Time a request was held while its service, scaled to zero, started a replica",
            self.cold_start.clone(),
        );
        self.register_into(registry.sub_registry_with_prefix("gateway"));
    }

    fn register_into(&self, registry: &mut Registry) {
        registry.register(
            "requests",
            "Requests answered by a replica, by status class",
            self.requests.clone(),
        );
        registry.register(
            "request_duration_seconds",
            "Time from receiving a request to the replica's response head",
            self.duration.clone(),
        );
        registry.register(
            "requests_in_flight",
            "Requests a replica is answering now",
            self.in_flight.clone(),
        );
        registry.register(
            "ejections",
            "Times a replica was taken out after failures in a row",
            self.ejections.clone(),
        );
        registry.register(
            "retries",
            "Requests sent again to another replica",
            self.retries.clone(),
        );
        registry.register(
            "unavailable",
            "Requests answered 503 because no replica was ready or reachable",
            self.unavailable.clone(),
        );
    }

    pub(crate) fn replica(&self, service: &str, route: &str, replica: &str) -> ReplicaMetrics {
        let l = ReplicaLabels {
            service: service.into(),
            route: route.into(),
            replica: replica.into(),
        };
        let class = |code: &'static str| {
            self.requests
                .get_or_create(&RequestLabels {
                    service: service.into(),
                    route: route.into(),
                    replica: replica.into(),
                    code,
                })
                .clone()
        };
        ReplicaMetrics {
            by_class: CLASSES.map(class),
            duration: self.duration.get_or_create(&l).clone(),
            in_flight: self.in_flight.get_or_create(&l).clone(),
            ejections: self.ejections.get_or_create(&l).clone(),
        }
    }

    /// Records a cold start of `service` that held a request `seconds`.
    pub(crate) fn cold_start(&self, service: &str, seconds: f64) {
        self.cold_start
            .get_or_create(&ServiceLabels {
                service: service.into(),
            })
            .observe(seconds);
    }

    pub(crate) fn route(&self, service: &str, route: &str) -> RouteMetrics {
        let l = RouteLabels {
            service: service.into(),
            route: route.into(),
        };
        RouteMetrics {
            retries: self.retries.get_or_create(&l).clone(),
            unavailable: self.unavailable.get_or_create(&l).clone(),
        }
    }

    /// The Prometheus text format (OpenMetrics flavour, which Prometheus reads).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The lock-free histogram exposes exactly what prometheus-client's
    /// would for the same observations, bucket edges and overflow included.
    #[test]
    fn latency_encodes_as_prometheus_clients_histogram() {
        let buckets = || exponential_buckets(0.0005, 2.0, 16);
        let ours = Latency::new(buckets());
        let theirs = Histogram::new(buckets());
        for v in [0.0, 0.0001, 0.0005, 0.00051, 0.001, 0.3, 16.384, 16.4, 1e9] {
            ours.observe(v);
            theirs.observe(v);
        }
        let text = |register: &dyn Fn(&mut Registry)| {
            let mut r = Registry::default();
            register(&mut r);
            let mut out = String::new();
            prometheus_client::encoding::text::encode(&mut out, &r).unwrap();
            out
        };
        let a = text(&|r| r.register("d_seconds", "d", ours.clone()));
        let b = text(&|r| r.register("d_seconds", "d", theirs.clone()));
        assert_eq!(a, b);
        assert!(a.contains("d_seconds_count 9"), "{a}");
    }
}
