//! The one event stream: progress displays, JSON output and (later) the
//! store and the API all consume these.

use serde::Serialize;

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// An image is being built or looked up.
    Image {
        service: String,
        message: String,
    },
    /// One line of build output.
    BuildLog {
        service: String,
        line: String,
    },
    /// The service's image is ready.
    ImageReady {
        service: String,
        image: String,
    },
    NetworkCreated {
        name: String,
    },
    VolumeCreated {
        name: String,
    },
    Removing {
        service: String,
        container: String,
        reason: crate::plan::RemoveReason,
    },
    /// Waiting for a dependency to reach its condition.
    Waiting {
        service: String,
        on: String,
        condition: String,
    },
    Creating {
        service: String,
        replica: u32,
    },
    Started {
        service: String,
        replica: u32,
        container: String,
    },
    Healthy {
        service: String,
        replica: u32,
    },
    /// The service reached its target state (healthy, running or completed).
    ServiceReady {
        service: String,
        state: String,
    },
    ServiceFailed {
        service: String,
        reason: String,
    },
    /// Nothing to change.
    UpToDate {
        stack: String,
    },
}

impl Event {
    pub fn service(&self) -> Option<&str> {
        match self {
            Event::Image { service, .. }
            | Event::BuildLog { service, .. }
            | Event::ImageReady { service, .. }
            | Event::Removing { service, .. }
            | Event::Waiting { service, .. }
            | Event::Creating { service, .. }
            | Event::Started { service, .. }
            | Event::Healthy { service, .. }
            | Event::ServiceReady { service, .. }
            | Event::ServiceFailed { service, .. } => Some(service),
            Event::NetworkCreated { .. } | Event::VolumeCreated { .. } | Event::UpToDate { .. } => {
                None
            }
        }
    }
}

/// Where events go. Must be cheap: it is called on the apply path.
pub type Sink<'a> = &'a (dyn Fn(Event) + Send + Sync);
