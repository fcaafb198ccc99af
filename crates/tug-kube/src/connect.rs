//! Reaching a cluster: kubeconfig (or in-cluster) as kube-rs reads it, with
//! errors that name the context and the server.

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("no usable kubeconfig ({reason}); set KUBECONFIG or write ~/.kube/config, or run inside a cluster")]
    NoConfig { reason: String },
    #[error("kubeconfig context `{context}` cannot be used: {reason}")]
    BadContext { context: String, reason: String },
    #[error("cannot reach the cluster of context `{context}` at {server}: {reason}")]
    Unreachable {
        context: String,
        server: String,
        reason: String,
    },
}

/// A client and where it points.
pub struct Cluster {
    pub client: Client,
    /// The kubeconfig context, or `in-cluster`.
    pub context: String,
    pub server: String,
}

/// Loads the kubeconfig (`context`, else its current context; else the
/// in-cluster service account) and checks that the API server answers.
pub async fn connect(context: Option<&str>) -> Result<Cluster, ConnectError> {
    let (config, ctx) = match Kubeconfig::read() {
        Ok(kc) => {
            let ctx = context
                .map(str::to_string)
                .or_else(|| kc.current_context.clone())
                .unwrap_or_default();
            let opts = KubeConfigOptions {
                context: Some(ctx.clone()),
                ..KubeConfigOptions::default()
            };
            let config = Config::from_custom_kubeconfig(kc, &opts)
                .await
                .map_err(|e| ConnectError::BadContext {
                    context: ctx.clone(),
                    reason: e.to_string(),
                })?;
            (config, ctx)
        }
        Err(e) if context.is_some() => {
            return Err(ConnectError::BadContext {
                context: context.unwrap_or_default().to_string(),
                reason: e.to_string(),
            })
        }
        Err(e) => match Config::incluster() {
            Ok(c) => (c, "in-cluster".to_string()),
            Err(_) => {
                return Err(ConnectError::NoConfig {
                    reason: e.to_string(),
                })
            }
        },
    };
    let server = config.cluster_url.to_string();
    let unreachable = |reason: String| ConnectError::Unreachable {
        context: ctx.clone(),
        server: server.clone(),
        reason,
    };
    let client = Client::try_from(config).map_err(|e| unreachable(e.to_string()))?;
    client
        .apiserver_version()
        .await
        .map_err(|e| unreachable(error_chain(&e)))?;
    Ok(Cluster {
        client,
        context: ctx,
        server,
    })
}

/// `e: cause: cause`, since transport errors hide the useful part deep down.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    s
}
