//! Shared by the tests: the example stacks, the Python tools the render
//! checks run (installed by scripts/kube-tools.sh), and kube's mocked API.

#![allow(dead_code)]

use http::{Request, Response};
use kube::client::Body;
use kube::Client;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// One request the mocked API saw.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    /// Path and query.
    pub path: String,
    /// The JSON body, `Null` when there is none.
    pub body: Value,
}

/// Every request the mocked API saw, in order.
pub type Log = Arc<Mutex<Vec<Seen>>>;

/// A client for `namespace` whose requests go to `respond` (given the
/// request and how many came before it; it returns the status and the
/// body), through kube's tower-test mock; the log has every request seen.
pub fn mock_api<F>(namespace: &str, mut respond: F) -> (Client, Log)
where
    F: FnMut(&Seen, usize) -> (u16, String) + Send + 'static,
{
    let (svc, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let log: Log = Arc::default();
    let l = log.clone();
    tokio::spawn(async move {
        let mut n = 0;
        while let Some((req, send)) = handle.next_request().await {
            let method = req.method().to_string();
            let path = req.uri().to_string();
            let bytes = req.into_body().collect_bytes().await.unwrap();
            let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            let seen = Seen { method, path, body };
            let (status, text) = respond(&seen, n);
            l.lock().unwrap().push(seen);
            n += 1;
            send.send_response(
                Response::builder()
                    .status(status)
                    .body(Body::from(text.into_bytes()))
                    .unwrap(),
            );
        }
    });
    (Client::new(svc, namespace), log)
}

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Loads an example's tug.yaml (examples/NAME, else this crate's
/// tests/NAME) with the path it is reported under.
pub fn example(name: &str) -> (tug_spec::Stack, String) {
    let mut rel = PathBuf::from(format!("examples/{name}/tug.yaml"));
    if !repo().join(&rel).is_file() {
        rel = PathBuf::from(format!("crates/tug-kube/tests/{name}/tug.yaml"));
    }
    let text = std::fs::read_to_string(repo().join(&rel)).unwrap();
    // Files it names resolve from its directory; errors name it as `rel`.
    let mut stack = tug_spec::parse_str(&text, &repo().join(&rel)).unwrap();
    stack.file = rel;
    (stack, text)
}

/// The options the golden files are rendered with.
pub fn options(name: &str) -> tug_kube::RenderOptions {
    let mut o = tug_kube::RenderOptions::default();
    if name == "hello" {
        o.images
            .insert("web".into(), "registry.example/hello:1.0.0".into());
        o.skip.insert(tug_kube::Skip::Pids);
    }
    o
}

/// A tool of scripts/kube-tools.sh: $TUG_KUBE_TOOLS/bin, else the default venv, else PATH.
/// None (after a loud message) when absent, unless the environment requires it.
pub fn tool(name: &str) -> Option<PathBuf> {
    let venv = std::env::var_os("TUG_KUBE_TOOLS")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/tug/kube-venv"))
        });
    let mut candidates: Vec<PathBuf> = venv.into_iter().map(|v| v.join("bin").join(name)).collect();
    if let Some(path) = std::env::var_os("PATH") {
        candidates.extend(std::env::split_paths(&path).map(|d| d.join(name)));
    }
    if let Some(found) = candidates.into_iter().find(|p| p.is_file()) {
        return Some(found);
    }
    let required = std::env::var("TUG_REQUIRE_ENGINE").is_ok_and(|v| v == "1")
        || std::env::var("CI").is_ok_and(|v| v == "true");
    assert!(
        !required,
        "{name} is not installed: run `bash scripts/kube-tools.sh` (TUG_REQUIRE_ENGINE=1 or CI requires it)"
    );
    eprintln!("SKIPPED: {name} is not installed; run `bash scripts/kube-tools.sh`");
    None
}
