//! The activator: a request to a service scaled to zero is held while the
//! agent starts a replica, then forwarded as usual.
//!
//! ```text
//!  request ─► no replica serving ─► pending < max_pending? ─no─► 503 + Retry-After
//!                                        │ yes
//!                     first one: wake(service) ─► agent scales to 1 (a recorded converge)
//!                                        │
//!              wait for a table whose route has a replica ─► forward (cold_start=true)
//!                                        └─ wake_timeout ─► 503 + Retry-After
//! ```
//!
//! The wait takes no lock: it watches the table's version and reloads it.

use crate::proxy::{unavailable, ProxyBody, Shared};
use crate::table::RouteEntry;
use http::Response;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tug_spec::Stack;

/// How a service scaled to zero is woken.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Activation {
    /// Requests held at once; more get 503.
    pub max_pending: u32,
    /// How long a held request waits for a ready replica.
    pub timeout: Duration,
}

impl Activation {
    /// The services of `stack` that scale to zero (`autoscale: { min: 0 }`).
    pub fn for_stack(stack: &Stack) -> HashMap<String, Activation> {
        stack
            .services
            .iter()
            .filter_map(|(name, s)| {
                let a = s.autoscale.as_ref().filter(|a| a.min == 0)?;
                Some((
                    name.clone(),
                    Activation {
                        max_pending: a.max_pending,
                        timeout: a.wake_timeout.std(),
                    },
                ))
            })
            .collect()
    }
}

/// Asks the agent to start one replica of a service.
pub type Wake = Box<dyn Fn(&str) + Send + Sync>;

pub(crate) struct Activator {
    pub services: HashMap<String, Activation>,
    pub wake: Wake,
}

/// Decrements the held count however the wait ends.
struct Pending<'a>(&'a RouteEntry);

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        self.0.activity.pending.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Holds a request for `route`, which has no replica serving, until one is
/// ready: the fresh route and how long the request was held. Otherwise the
/// answer to send (503 with `Retry-After`).
pub(crate) async fn hold(
    shared: &Shared,
    route: &Arc<RouteEntry>,
    host: &str,
    path: &str,
    since: Instant,
) -> Result<(Arc<RouteEntry>, Duration), Response<ProxyBody>> {
    let no_replica = || unavailable(shared, route, "no ready replica");
    let Some(activator) = shared.activator.get() else {
        return Err(no_replica());
    };
    let Some(activation) = activator.services.get(&route.service) else {
        return Err(no_replica());
    };
    let activity = &route.activity;
    let held = activity.pending.fetch_add(1, Ordering::AcqRel);
    let _pending = Pending(route);
    if held >= activation.max_pending {
        tracing::debug!(service = %route.service, held, "activator queue full");
        return Err(unavailable(
            shared,
            route,
            "too many requests are waiting for a replica",
        ));
    }
    // Watch before looking, so a table stored in between is not missed.
    let mut version = shared.changed.subscribe();
    if !activity.waking.swap(true, Ordering::AcqRel) {
        tracing::info!(service = %route.service, "waking the service for a request");
        (activator.wake)(&route.service);
    }
    let deadline = tokio::time::Instant::from_std(since + activation.timeout);
    loop {
        let fresh = shared
            .table
            .load()
            .lookup(host, path)
            .filter(|r| r.serving())
            .cloned();
        if let Some(r) = fresh {
            activity.waking.store(false, Ordering::Release);
            let held = since.elapsed();
            tracing::debug!(service = %route.service, held_ms = held.as_millis() as u64, "a replica is ready for a held request");
            return Ok((r, held));
        }
        match tokio::time::timeout_at(deadline, version.changed()).await {
            Ok(Ok(())) => {}
            // The gateway is gone, or the wait is over.
            Ok(Err(_)) | Err(_) => {
                activity.waking.store(false, Ordering::Release);
                tracing::warn!(service = %route.service, seconds = activation.timeout.as_secs_f64(), "no replica ready in time for a held request");
                return Err(unavailable(
                    shared,
                    route,
                    "no replica became ready in time",
                ));
            }
        }
    }
}
