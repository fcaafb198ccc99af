//! The event bus: every [`Event`] is published once, and every consumer
//! (the store's writer, the agent's snapshot, its server-sent events, the
//! CLI's progress display and `-o json`) subscribes.
//!
//! ```text
//!  apply / supervision ──publish──► Bus (tokio broadcast) ──► subscribers
//! ```
//!
//! Publishing never waits: the bus keeps the last [`CAPACITY`] events, and a
//! subscriber that falls further behind loses the oldest ones and is told how
//! many it missed ([`Received::Missed`]). A slow consumer never slows apply.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use tug_engine::bus::{Bus, Received};
//! use tug_engine::Event;
//!
//! let bus = Bus::new();
//! let mut sub = bus.subscribe();
//! bus.publish(None, Event::UpToDate { stack: "shop".into() });
//! match sub.recv().await {
//!     Some(Received::Event(p)) => assert_eq!(p.event, Event::UpToDate { stack: "shop".into() }),
//!     other => panic!("{other:?}"),
//! }
//! # }
//! ```

use crate::event::Event;
use std::sync::Arc;
use tokio::sync::broadcast;

/// How many events the bus keeps for subscribers that are behind.
pub const CAPACITY: usize = 4096;

/// One published event.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Published {
    /// Seconds since the epoch.
    pub time: i64,
    /// The revision being applied, when there is one.
    pub revision: Option<i64>,
    pub event: Event,
}

/// What a subscriber gets.
#[derive(Clone, Debug, PartialEq)]
pub enum Received {
    Event(Arc<Published>),
    /// The subscriber fell behind and this many events were dropped for it.
    Missed(u64),
}

/// The bus. Cheap to clone; clones publish to the same subscribers. When
/// every clone is dropped, subscribers drain what is left, then end.
#[derive(Clone, Debug)]
pub struct Bus {
    tx: broadcast::Sender<Arc<Published>>,
}

impl Default for Bus {
    fn default() -> Self {
        Bus::new()
    }
}

pub(crate) fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl Bus {
    pub fn new() -> Bus {
        Bus {
            tx: broadcast::channel(CAPACITY).0,
        }
    }

    /// Publishes `event` to every subscriber; never waits.
    pub fn publish(&self, revision: Option<i64>, event: Event) {
        tracing::debug!(event = ?event, "event");
        // No subscriber is fine.
        let _ = self.tx.send(Arc::new(Published {
            time: now(),
            revision,
            event,
        }));
    }

    /// Receives every event published from now on.
    pub fn subscribe(&self) -> Subscriber {
        Subscriber {
            rx: self.tx.subscribe(),
        }
    }
}

/// One consumer of the bus.
#[derive(Debug)]
pub struct Subscriber {
    rx: broadcast::Receiver<Arc<Published>>,
}

impl Subscriber {
    /// The next event, a note of how many were missed, or `None` once every
    /// [`Bus`] is dropped and the rest was read.
    pub async fn recv(&mut self) -> Option<Received> {
        match self.rx.recv().await {
            Ok(p) => Some(Received::Event(p)),
            Err(broadcast::error::RecvError::Lagged(n)) => Some(Received::Missed(n)),
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }

    /// Like [`Subscriber::recv`] for a thread outside the async runtime.
    pub fn blocking_recv(&mut self) -> Option<Received> {
        match self.rx.blocking_recv() {
            Ok(p) => Some(Received::Event(p)),
            Err(broadcast::error::RecvError::Lagged(n)) => Some(Received::Missed(n)),
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }

    /// An event already waiting, without waiting for one.
    pub fn try_recv(&mut self) -> Option<Received> {
        match self.rx.try_recv() {
            Ok(p) => Some(Received::Event(p)),
            Err(broadcast::error::TryRecvError::Lagged(n)) => Some(Received::Missed(n)),
            Err(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(i: u32) -> Event {
        Event::Creating {
            service: "api".into(),
            replica: i,
        }
    }

    #[tokio::test]
    async fn a_slow_subscriber_is_told_what_it_missed_and_publish_never_waits() {
        let bus = Bus::new();
        let mut slow = bus.subscribe();
        let total = CAPACITY as u32 + 10;
        for i in 0..total {
            bus.publish(Some(1), ev(i));
        }
        assert_eq!(slow.recv().await, Some(Received::Missed(10)));
        match slow.recv().await {
            Some(Received::Event(p)) => {
                assert_eq!(p.event, ev(10));
                assert_eq!(p.revision, Some(1));
            }
            other => panic!("{other:?}"),
        }
        drop(bus);
        let mut rest = 0;
        while let Some(r) = slow.recv().await {
            assert!(matches!(r, Received::Event(_)));
            rest += 1;
        }
        assert_eq!(rest, CAPACITY - 1);
    }
}
