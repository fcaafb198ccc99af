//! `dashboard:`: where the agent serves HTTP (the web dashboard, its API and
//! `/metrics`) besides its unix socket.

use crate::parse::Cx;
use crate::route::listen_address;
use crate::yaml::Node;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

/// The agent's HTTP listener.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dashboard {
    /// `:9600` means 127.0.0.1:9600. Any other interface requires the API token.
    pub listen: SocketAddr,
}

const DASHBOARD_KEYS: &[&str] = &["listen"];

impl Cx<'_> {
    /// The stack's `dashboard:`.
    pub(crate) fn dashboard(&mut self, n: &Node) -> Option<Dashboard> {
        let f = self.fields(n, "dashboard", DASHBOARD_KEYS)?;
        let v = f.get("listen")?;
        let text = match (v.as_i64(), v.scalar()) {
            (Some(p), _) => p.to_string(),
            (None, Some(s)) => s.to_string(),
            _ => {
                self.err(
                    v,
                    format!(
                        "`dashboard.listen` must be an address like `:9600`, found {}",
                        v.describe()
                    ),
                    None,
                );
                return None;
            }
        };
        match listen_address(&text) {
            Ok(listen) => Some(Dashboard { listen }),
            Err((m, h)) => {
                self.err(v, format!("`dashboard.listen`: {m}"), h);
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::parse_str;
    use std::path::Path;

    fn parse(yaml: &str) -> Result<crate::Stack, String> {
        parse_str(yaml, Path::new("tug.yaml")).map_err(|e| e.to_string())
    }

    #[test]
    fn port_only_means_loopback() {
        let s = parse("name: a\ndashboard:\n  listen: \":9600\"\n").unwrap();
        assert_eq!(s.dashboard.unwrap().listen.to_string(), "127.0.0.1:9600");
        let s = parse("name: a\ndashboard: { listen: \"0.0.0.0:9600\" }\n").unwrap();
        assert_eq!(s.dashboard.unwrap().listen.to_string(), "0.0.0.0:9600");
    }

    #[test]
    fn bad_address_is_located() {
        let e = parse("name: a\ndashboard:\n  listen: nowhere\n").unwrap_err();
        assert!(e.contains("tug.yaml:3:11"), "{e}");
        assert!(e.contains("not a listen address"), "{e}");
        let e = parse("name: a\ndashboard:\n  port: 1\n").unwrap_err();
        assert!(e.contains("tug.yaml:3:3"), "{e}");
    }
}
