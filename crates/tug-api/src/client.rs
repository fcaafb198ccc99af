//! A client for the agent's API over its unix socket.

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::Request;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use std::path::{Path, PathBuf};
use tokio::net::UnixStream;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("no agent answers on {0}")]
    NotRunning(PathBuf),
    #[error("the agent: {message}")]
    Agent { message: String, invalid: bool },
    #[error("talking to the agent: {0}")]
    Protocol(String),
}

pub struct Client {
    socket: PathBuf,
}

impl Client {
    pub fn at(socket: &Path) -> Client {
        Client {
            socket: socket.to_path_buf(),
        }
    }

    /// A client for the stack's agent, if one answers.
    pub async fn for_stack(stack: &str) -> Option<Client> {
        let (socket, _, _) = tug_engine::ops::agent_paths(stack);
        let c = Client::at(&socket);
        c.info().await.ok().map(|_| c)
    }

    pub async fn get(&self, path: &str) -> Result<Value, ClientError> {
        self.call("GET", path, None).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Result<Value, ClientError> {
        self.call("POST", path, Some(body)).await
    }

    /// GET `path`, read as `T`.
    pub async fn get_as<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
    ) -> Result<T, ClientError> {
        let v = self.get(path).await?;
        serde_json::from_value(v).map_err(|e| ClientError::Protocol(format!("bad reply: {e}")))
    }

    /// POST `body` to `path`, the answer read as `T`.
    pub async fn post_as<B: serde::Serialize, T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        let body = serde_json::to_value(body).map_err(|e| ClientError::Protocol(e.to_string()))?;
        let v = self.post(path, &body).await?;
        serde_json::from_value(v).map_err(|e| ClientError::Protocol(format!("bad reply: {e}")))
    }

    pub async fn info(&self) -> Result<crate::api::AgentInfo, ClientError> {
        self.get_as("/v1/agent").await
    }

    /// Has the agent read the replicas from the engine again (after a
    /// converge it did not run); its snapshot then.
    pub async fn resync(&self) -> Result<crate::api::Ps, ClientError> {
        self.post_as("/v1/resync", &serde_json::json!({})).await
    }

    /// The agent's live snapshot.
    pub async fn ps(&self) -> Result<crate::api::Ps, ClientError> {
        self.get_as("/v1/ps").await
    }

    /// Sends one request; the response when it succeeded, the agent's error otherwise.
    async fn send(
        &self,
        method: &str,
        path: &str,
        body: Vec<u8>,
    ) -> Result<hyper::Response<hyper::body::Incoming>, ClientError> {
        let protocol = |e: &dyn std::fmt::Display| ClientError::Protocol(e.to_string());
        let stream = UnixStream::connect(&self.socket)
            .await
            .map_err(|_| ClientError::NotRunning(self.socket.clone()))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| protocol(&e))?;
        tokio::spawn(conn);
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "agent")
            .header("content-type", "application/json");
        // What the agent does for this call joins the caller's trace.
        for (k, v) in tug_observe::trace::context_headers() {
            req = req.header(k, v);
        }
        let req = req
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| protocol(&e))?;
        let resp = sender.send_request(req).await.map_err(|e| protocol(&e))?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| protocol(&e))?
            .to_bytes();
        let v: Value = serde_json::from_slice(&body)
            .map_err(|e| ClientError::Protocol(format!("bad reply ({status}): {e}")))?;
        Err(ClientError::Agent {
            message: v["error"].as_str().unwrap_or("unknown error").to_string(),
            invalid: v["invalid"].as_bool().unwrap_or(false),
        })
    }

    async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, ClientError> {
        let bytes = body
            .map(|b| serde_json::to_vec(b).unwrap_or_default())
            .unwrap_or_default();
        let resp = self.send(method, path, bytes).await?;
        let status = resp.status();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| ClientError::Protocol(e.to_string()))?
            .to_bytes();
        serde_json::from_slice(&body)
            .map_err(|e| ClientError::Protocol(format!("bad reply ({status}): {e}")))
    }

    /// GET `path`, the answer as text (e.g. `/metrics`).
    pub async fn get_text(&self, path: &str) -> Result<String, ClientError> {
        let resp = self.send("GET", path, Vec::new()).await?;
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| ClientError::Protocol(e.to_string()))?
            .to_bytes();
        Ok(String::from_utf8_lossy(&body).into_owned())
    }

    /// GET `path` and hand each line of the (streamed) answer to `line`.
    pub async fn get_lines(&self, path: &str, line: impl FnMut(&str)) -> Result<(), ClientError> {
        self.lines("GET", path, Vec::new(), line).await
    }

    /// `POST /v1/up`: hands each line of the converge's stream to `line`, as
    /// it comes. Returns when the agent has sent the outcome (or went away).
    pub async fn up(
        &self,
        request: &crate::api::UpRequest,
        mut line: impl FnMut(crate::api::UpLine),
    ) -> Result<(), ClientError> {
        let body = serde_json::to_vec(request).map_err(|e| ClientError::Protocol(e.to_string()))?;
        let mut bad = None;
        self.lines("POST", "/v1/up", body, |l| {
            match serde_json::from_str::<crate::api::UpLine>(l) {
                Ok(u) => line(u),
                Err(e) => {
                    bad.get_or_insert(format!("bad line from the agent: {e}"));
                }
            }
        })
        .await?;
        match bad {
            Some(m) => Err(ClientError::Protocol(m)),
            None => Ok(()),
        }
    }

    async fn lines(
        &self,
        method: &str,
        path: &str,
        request: Vec<u8>,
        mut line: impl FnMut(&str),
    ) -> Result<(), ClientError> {
        use hyper::body::Body as _;
        let mut body = self.send(method, path, request).await?.into_body();
        let mut pending = Vec::new();
        while !body.is_end_stream() {
            let Some(frame) = body.frame().await else {
                break;
            };
            let frame = frame.map_err(|e| ClientError::Protocol(e.to_string()))?;
            if let Ok(data) = frame.into_data() {
                pending.extend_from_slice(&data);
                while let Some(n) = pending.iter().position(|b| *b == b'\n') {
                    let l: Vec<u8> = pending.drain(..=n).collect();
                    line(String::from_utf8_lossy(&l[..n]).as_ref());
                }
            }
        }
        if !pending.is_empty() {
            line(String::from_utf8_lossy(&pending).as_ref());
        }
        Ok(())
    }
}
