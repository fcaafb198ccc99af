//! What the gateway's test binaries share: a gateway started from a
//! tug.yaml text, and a plain HTTP/1.1 client to call it with.

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::net::SocketAddr;
use tokio::sync::{mpsc, watch};
use tug_gateway::{Gateway, Tuning};

pub type Http = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

pub fn client() -> Http {
    Client::builder(TokioExecutor::new()).build_http()
}

/// Starts the gateway of the stack `text` (its routes, its first listener);
/// keep the returned sender: `true` on it stops the gateway.
pub async fn start(
    text: &str,
    tuning: Tuning,
    access_log: Option<mpsc::Sender<String>>,
) -> (Gateway, SocketAddr, watch::Sender<bool>) {
    let stack = tug_spec::parse_str(text, "tug.yaml".as_ref()).unwrap();
    let routes = stack
        .services
        .iter()
        .flat_map(|(n, s)| s.routes.iter().map(move |r| (n.clone(), r.clone())))
        .collect();
    let gw = Gateway::new(stack.gateway.clone().unwrap(), routes, tuning, access_log);
    let (stop, rx) = watch::channel(false);
    let addr = gw.start(rx).await.unwrap()[0];
    (gw, addr, stop)
}
