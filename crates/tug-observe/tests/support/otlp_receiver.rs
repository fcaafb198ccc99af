//! What an OTLP receiver built from the official protocol definitions
//! (opentelemetry-proto) keeps: the spans and log records sent to its gRPC
//! services or its HTTP/protobuf routes. Shared by the OTLP tests of
//! tug-observe (over TLS) and tug (over Docker); each serves it its way.
#![allow(dead_code)]

use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{any_value, KeyValue};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use std::sync::{Arc, Mutex};

/// A span as received, with its resource's attributes.
#[derive(Clone, Debug)]
pub struct Got {
    pub span: Span,
    pub resource: Vec<KeyValue>,
}

#[derive(Clone, Default)]
pub struct Received {
    pub spans: Arc<Mutex<Vec<Got>>>,
    pub logs: Arc<Mutex<Vec<LogRecord>>>,
}

impl Received {
    fn traces(&self, req: ExportTraceServiceRequest) {
        let mut s = self.spans.lock().unwrap();
        for rs in req.resource_spans {
            let resource = rs.resource.map(|r| r.attributes).unwrap_or_default();
            for ss in rs.scope_spans {
                for span in ss.spans {
                    s.push(Got {
                        span,
                        resource: resource.clone(),
                    });
                }
            }
        }
    }
    fn logs(&self, req: ExportLogsServiceRequest) {
        let mut l = self.logs.lock().unwrap();
        for rl in req.resource_logs {
            for sl in rl.scope_logs {
                l.extend(sl.log_records);
            }
        }
    }
    pub fn spans(&self) -> Vec<Got> {
        self.spans.lock().unwrap().clone()
    }
    /// Whether a span named `name` arrived.
    pub fn has(&self, name: &str) -> bool {
        self.spans
            .lock()
            .unwrap()
            .iter()
            .any(|g| g.span.name == name)
    }

    /// The gRPC services, for a tonic server (TLS or not).
    pub fn grpc(&self) -> tonic::service::Routes {
        tonic::service::Routes::new(TraceServiceServer::new(self.clone()))
            .add_service(LogsServiceServer::new(self.clone()))
    }

    /// `POST /v1/traces` and `POST /v1/logs`.
    pub fn http(&self) -> axum::Router {
        let (t, l) = (self.clone(), self.clone());
        axum::Router::new()
            .route(
                "/v1/traces",
                axum::routing::post(move |body: axum::body::Bytes| {
                    let t = t.clone();
                    async move {
                        answer(
                            ExportTraceServiceRequest::decode(body).map(|r| t.traces(r)),
                            ExportTraceServiceResponse::default(),
                        )
                    }
                }),
            )
            .route(
                "/v1/logs",
                axum::routing::post(move |body: axum::body::Bytes| {
                    let l = l.clone();
                    async move {
                        answer(
                            ExportLogsServiceRequest::decode(body).map(|r| l.logs(r)),
                            ExportLogsServiceResponse::default(),
                        )
                    }
                }),
            )
    }
}

fn answer(
    decoded: Result<(), prost::DecodeError>,
    response: impl Message,
) -> (axum::http::StatusCode, Vec<u8>) {
    match decoded {
        Ok(()) => (axum::http::StatusCode::OK, response.encode_to_vec()),
        Err(_) => (axum::http::StatusCode::BAD_REQUEST, Vec::new()),
    }
}

#[tonic::async_trait]
impl TraceService for Received {
    async fn export(
        &self,
        req: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.traces(req.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl LogsService for Received {
    async fn export(
        &self,
        req: tonic::Request<ExportLogsServiceRequest>,
    ) -> Result<tonic::Response<ExportLogsServiceResponse>, tonic::Status> {
        self.logs(req.into_inner());
        Ok(tonic::Response::new(ExportLogsServiceResponse::default()))
    }
}

/// A receiver on two loopback ports of its own, in a runtime of its own.
pub struct Receiver {
    pub got: Received,
    pub grpc: u16,
    pub http: u16,
    _rt: tokio::runtime::Runtime,
}

impl Receiver {
    /// Serves what `grpc` and `http` make of their listener and the
    /// receiver's store.
    pub fn start<G, H>(
        grpc: impl FnOnce(tokio::net::TcpListener, Received) -> G,
        http: impl FnOnce(tokio::net::TcpListener, Received) -> H,
    ) -> Receiver
    where
        G: std::future::Future + Send + 'static,
        G::Output: Send + 'static,
        H: std::future::Future + Send + 'static,
        H::Output: Send + 'static,
    {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let got = Received::default();
        let (g, h) = rt.block_on(async {
            (
                tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
                tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
            )
        });
        let port = |l: &tokio::net::TcpListener| l.local_addr().unwrap().port();
        let (grpc_port, http_port) = (port(&g), port(&h));
        let _entered = rt.enter();
        tokio::spawn(grpc(g, got.clone()));
        tokio::spawn(http(h, got.clone()));
        drop(_entered);
        Receiver {
            got,
            grpc: grpc_port,
            http: http_port,
            _rt: rt,
        }
    }
}

/// A loopback listener's stream of connections, for `serve_with_incoming`.
pub fn incoming(
    l: tokio::net::TcpListener,
) -> impl futures_util::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    futures_util::stream::unfold(l, |l| async move {
        let r = l.accept().await.map(|(s, _)| s);
        Some((r, l))
    })
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub fn attr(attrs: &[KeyValue], key: &str) -> Option<String> {
    attrs
        .iter()
        .find(|a| a.key == key)
        .and_then(|a| a.value.as_ref()?.value.as_ref())
        .map(|v| match v {
            any_value::Value::StringValue(s) => s.clone(),
            any_value::Value::IntValue(i) => i.to_string(),
            other => format!("{other:?}"),
        })
}
