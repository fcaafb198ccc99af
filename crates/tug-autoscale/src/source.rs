//! Metric sources: engine and gateway counters turned into the per-replica
//! rates the policy compares with its targets.
//!
//! CPU comes from the runtime's stats (cumulative CPU time per replica, read
//! each tick); [`CpuMeter`] turns two reads into percent of the replica's
//! CPU limit. Requests come from the gateway through [`RequestSource`]:
//! a gauge of requests in flight and a counter of requests, per replica;
//! [`RateMeter`] turns the counter into requests per second.

use std::collections::HashMap;
use std::time::Instant;

/// Counters a rate is derived from, per replica (container name).
#[derive(Clone, Debug, Default)]
pub struct RateMeter {
    last: HashMap<String, (Instant, f64)>,
}

impl RateMeter {
    /// The rate of `counter` per second since the previous read of
    /// `replica`; `None` on the first read or when the counter went back
    /// (the replica was replaced under the same name).
    pub fn rate(&mut self, replica: &str, at: Instant, counter: f64) -> Option<f64> {
        let prev = self.last.insert(replica.to_string(), (at, counter));
        let (t0, c0) = prev?;
        let secs = at.saturating_duration_since(t0).as_secs_f64();
        (secs > 0.0 && counter >= c0).then(|| (counter - c0) / secs)
    }

    /// Forgets replicas not in `live`.
    pub fn retain(&mut self, live: &[&str]) {
        self.last.retain(|k, _| live.contains(&k.as_str()));
    }
}

/// CPU time to percent of a CPU limit.
#[derive(Clone, Debug, Default)]
pub struct CpuMeter {
    rates: RateMeter,
}

impl CpuMeter {
    /// Percent of `limit_cpus` used by `replica` since its previous read,
    /// from its cumulative CPU time in nanoseconds.
    pub fn percent(
        &mut self,
        replica: &str,
        at: Instant,
        cpu_ns: u64,
        limit_cpus: f64,
    ) -> Option<f64> {
        let ns_per_sec = self.rates.rate(replica, at, cpu_ns as f64)?;
        (limit_cpus > 0.0).then(|| ns_per_sec / 1e9 / limit_cpus * 100.0)
    }

    pub fn retain(&mut self, live: &[&str]) {
        self.rates.retain(live);
    }
}

/// One replica's traffic as the gateway counts it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplicaTraffic {
    /// The replica's container name.
    pub replica: String,
    /// Requests being served now.
    pub in_flight: u64,
    /// Requests received since the gateway started (a counter).
    pub requests: u64,
}

/// A service's traffic as the gateway counts it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Traffic {
    pub replicas: Vec<ReplicaTraffic>,
    /// Since when the service has had no request (none in flight, none
    /// received), for `idle:`; `None` while it is busy.
    pub idle_since: Option<Instant>,
}

/// Where the agent reads request metrics: the gateway implements it.
/// `None` for a service the gateway does not route to, which leaves the
/// in-flight and rps metrics missing (and the policy does not scale down on
/// missing metrics).
pub trait RequestSource: Send + Sync {
    fn traffic(&self, service: &str) -> Option<Traffic>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn rates_need_two_reads_and_a_counter_that_grows() {
        let t0 = Instant::now();
        let mut m = RateMeter::default();
        assert_eq!(m.rate("a", t0, 100.0), None);
        assert_eq!(m.rate("a", t0 + Duration::from_secs(2), 300.0), Some(100.0));
        // Replaced under the same name: the counter restarted.
        assert_eq!(m.rate("a", t0 + Duration::from_secs(3), 5.0), None);
        assert_eq!(m.rate("a", t0 + Duration::from_secs(4), 15.0), Some(10.0));
        m.retain(&[]);
        assert_eq!(m.rate("a", t0 + Duration::from_secs(5), 20.0), None);
    }

    #[test]
    fn cpu_is_percent_of_the_limit() {
        let t0 = Instant::now();
        let mut m = CpuMeter::default();
        assert_eq!(m.percent("a", t0, 0, 0.5), None);
        // Half a CPU-second per second against a 0.5 CPU limit: 100 %.
        let p = m.percent("a", t0 + Duration::from_secs(10), 5_000_000_000, 0.5);
        assert_eq!(p, Some(100.0));
    }
}
