//! The one OTLP exporter builder: spans and log records reach their
//! [`Destination`] the same way (protocol, endpoint, headers, timeout, TLS);
//! only the signal's exporter type differs.
//!
//! TLS is rustls on ring for both protocols: tonic's for gRPC, and for
//! HTTP a reqwest client of ours handed to the exporter (its default client
//! would need a process-wide crypto provider). The system's roots are
//! trusted, plus the destination's CA file; a client certificate and key
//! make it mutual. The PEM files are read and checked when the exporter is
//! built, so a bad one fails the start, naming the setting, instead of
//! every export.

use crate::trace::{Destination, PemFile, TraceError};
use opentelemetry_otlp::{
    ExporterBuildError, LogExporter, SpanExporter, WithExportConfig, WithHttpConfig,
    WithTonicConfig,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::time::Duration;
use tug_spec::OtlpProtocol;

/// How long one export may take before it is given up.
const TIMEOUT: Duration = Duration::from_secs(5);

/// A kind of telemetry OTLP carries, with its exporter.
pub(crate) trait Signal {
    type Exporter;
    fn build(d: &Destination) -> Result<Self::Exporter, TraceError>;
}

pub(crate) struct Spans;
pub(crate) struct Logs;

/// The same build for every signal: only the exporter's type differs.
macro_rules! signal {
    ($signal:ty, $exporter:ty) => {
        impl Signal for $signal {
            type Exporter = $exporter;
            fn build(d: &Destination) -> Result<$exporter, TraceError> {
                let b = <$exporter>::builder();
                built(
                    d,
                    match d.protocol {
                        OtlpProtocol::Grpc => grpc(b.with_tonic(), d)?.build(),
                        OtlpProtocol::HttpProtobuf => http(b.with_http(), d)?.build(),
                    },
                )
            }
        }
    };
}

signal!(Spans, SpanExporter);
signal!(Logs, LogExporter);

fn built<E>(d: &Destination, r: Result<E, ExporterBuildError>) -> Result<E, TraceError> {
    r.map_err(|source| TraceError::Exporter {
        endpoint: d.endpoint.clone(),
        source,
    })
}

/// The exporter of signal `S` for `d`.
pub(crate) fn exporter<S: Signal>(d: &Destination) -> Result<S::Exporter, TraceError> {
    S::build(d)
}

fn grpc<B: WithExportConfig + WithTonicConfig>(b: B, d: &Destination) -> Result<B, TraceError> {
    // gRPC metadata keys are lower case; a header that is not valid
    // metadata is left out rather than failing the export.
    let mut md = tonic::metadata::MetadataMap::new();
    for (k, v) in &d.headers {
        if let (Ok(k), Ok(v)) = (
            tonic::metadata::MetadataKey::from_bytes(k.to_ascii_lowercase().as_bytes()),
            v.parse(),
        ) {
            md.insert(k, v);
        }
    }
    let b = b
        .with_endpoint(d.endpoint.clone())
        .with_timeout(TIMEOUT)
        .with_metadata(md);
    if !is_https(d) {
        return Ok(b);
    }
    let pem = Pem::read(d)?;
    let mut tls = tonic::transport::ClientTlsConfig::new().with_native_roots();
    if let Some(ca) = pem.ca {
        tls = tls.ca_certificate(tonic::transport::Certificate::from_pem(ca));
    }
    if let Some((cert, key)) = pem.client {
        tls = tls.identity(tonic::transport::Identity::from_pem(cert, key));
    }
    Ok(b.with_tls_config(tls))
}

fn http<B: WithExportConfig + WithHttpConfig>(b: B, d: &Destination) -> Result<B, TraceError> {
    Ok(b.with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .with_endpoint(d.endpoint.clone())
        .with_timeout(TIMEOUT)
        .with_headers(d.headers.clone().into_iter().collect())
        .with_http_client(http_client(d)?))
}

fn is_https(d: &Destination) -> bool {
    d.endpoint
        .get(..8)
        .is_some_and(|s| s.eq_ignore_ascii_case("https://"))
}

/// The destination's PEM files, read and checked.
struct Pem {
    ca: Option<Vec<u8>>,
    client: Option<(Vec<u8>, Vec<u8>)>,
}

impl Pem {
    fn read(d: &Destination) -> Result<Pem, TraceError> {
        let ca = match &d.tls.ca {
            Some(f) => {
                let b = read(f)?;
                certificates(f, &b)?;
                Some(b)
            }
            None => None,
        };
        let client = match &d.tls.client {
            Some((c, k)) => {
                let (cb, kb) = (read(c)?, read(k)?);
                certificates(c, &cb)?;
                key(k, &kb)?;
                Some((cb, kb))
            }
            None => None,
        };
        Ok(Pem { ca, client })
    }
}

fn read(f: &PemFile) -> Result<Vec<u8>, TraceError> {
    std::fs::read(&f.path).map_err(|source| TraceError::TlsRead {
        named_by: f.named_by,
        path: f.path.clone(),
        source,
    })
}

fn certificates(f: &PemFile, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TraceError> {
    let certs: Vec<_> = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<_, _>>()
        .unwrap_or_default();
    if certs.is_empty() {
        return Err(TraceError::TlsPem {
            named_by: f.named_by,
            path: f.path.clone(),
            what: "certificate",
        });
    }
    Ok(certs)
}

fn key(f: &PemFile, pem: &[u8]) -> Result<PrivateKeyDer<'static>, TraceError> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|_| TraceError::TlsPem {
        named_by: f.named_by,
        path: f.path.clone(),
        what: "private key",
    })
}

/// The HTTP exporter's client: rustls on ring, the system's roots (for an
/// `https://` endpoint) plus the destination's CA, its client certificate
/// when it has one.
fn http_client(d: &Destination) -> Result<reqwest::blocking::Client, TraceError> {
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    let mut client = None;
    if is_https(d) {
        // An unreadable system certificate is skipped: the others still serve.
        for c in rustls_native_certs::load_native_certs().certs {
            let _ = roots.add(c);
        }
        if let Some(f) = &d.tls.ca {
            for c in certificates(f, &read(f)?)? {
                roots.add(c).map_err(|source| TraceError::TlsUnusable {
                    named_by: f.named_by,
                    path: f.path.clone(),
                    source,
                })?;
            }
        }
        if let Some((c, k)) = &d.tls.client {
            client = Some((certificates(c, &read(c)?)?, key(k, &read(k)?)?, c));
        }
    }
    let unusable = |f: &PemFile, source| TraceError::TlsUnusable {
        named_by: f.named_by,
        path: f.path.clone(),
        source,
    };
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TraceError::HttpClient {
            endpoint: d.endpoint.clone(),
            reason: e.to_string(),
        })?
        .with_root_certificates(roots);
    let config = match client {
        Some((chain, key, f)) => config
            .with_client_auth_cert(chain, key)
            .map_err(|e| unusable(f, e))?,
        None => config.with_no_client_auth(),
    };
    // The blocking client runs a runtime of its own, which may not be built
    // inside another: build it on a thread.
    std::thread::scope(|s| {
        s.spawn(|| {
            reqwest::blocking::Client::builder()
                .timeout(TIMEOUT)
                .tls_backend_preconfigured(config)
                .build()
        })
        .join()
    })
    .map_err(|_| TraceError::HttpClient {
        endpoint: d.endpoint.clone(),
        reason: "the client's thread panicked".into(),
    })?
    .map_err(|e| TraceError::HttpClient {
        endpoint: d.endpoint.clone(),
        reason: e.to_string(),
    })
}
