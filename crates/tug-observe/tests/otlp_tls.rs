//! OTLP over TLS, mutual: a real receiver built here from the official
//! protocol definitions (opentelemetry-proto) — gRPC as tonic's TLS server,
//! HTTP/protobuf behind rustls — with a CA and certificates made for the
//! test. Spans arrive over both protocols with the right CA and client
//! certificate; with a CA that did not sign the receiver, nothing arrives
//! and the caller goes on.

mod support {
    pub mod otlp_receiver;
}

use opentelemetry::trace::{Tracer, TracerProvider as _};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::otlp_receiver::{incoming, Receiver};
use tug_observe::trace::{install, Settings};

/// One process-wide tracer provider: the tests take turns.
static TURN: Mutex<()> = Mutex::new(());

/// A CA, the receiver's certificate and a client's, all as PEM files.
struct Pki {
    dir: tempfile::TempDir,
    ca: String,
    server: (String, String),
}

impl Pki {
    fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
        let leaf = |names: Vec<String>| {
            let key = KeyPair::generate().unwrap();
            let cert = CertificateParams::new(names)
                .unwrap()
                .signed_by(&key, &ca)
                .unwrap();
            (cert.pem(), key.serialize_pem())
        };
        let server = leaf(vec!["127.0.0.1".into(), "localhost".into()]);
        let client = leaf(vec!["tug".into()]);
        // A CA that signed nothing here.
        let mut other = CertificateParams::new(Vec::<String>::new()).unwrap();
        other.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let other = CertifiedIssuer::self_signed(other, KeyPair::generate().unwrap()).unwrap();
        for (name, pem) in [
            ("ca.pem", ca.pem()),
            ("other-ca.pem", other.pem()),
            ("client.pem", client.0),
            ("client.key", client.1),
            ("not-pem.txt", "hello\n".into()),
        ] {
            std::fs::write(dir.path().join(name), pem).unwrap();
        }
        Pki {
            ca: ca.pem(),
            server,
            dir,
        }
    }
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// The receiver: gRPC and HTTP/protobuf over TLS, each requiring a client
/// certificate signed by the test's CA.
fn receiver(pki: &Pki) -> Receiver {
    let tls = tonic::transport::ServerTlsConfig::new()
        .identity(tonic::transport::Identity::from_pem(
            &pki.server.0,
            &pki.server.1,
        ))
        .client_ca_root(tonic::transport::Certificate::from_pem(&pki.ca));
    let https = https_config(pki);
    Receiver::start(
        |g, got| {
            tonic::transport::Server::builder()
                .tls_config(tls)
                .unwrap()
                .add_routes(got.grpc())
                .serve_with_incoming(incoming(g))
        },
        |h, got| serve_https(h, https, got.http()),
    )
}

fn https_config(pki: &Pki) -> Arc<rustls::ServerConfig> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(pki.ca.as_bytes()).unwrap())
        .unwrap();
    let clients =
        rustls::server::WebPkiClientVerifier::builder_with_provider(roots.into(), provider.clone())
            .build()
            .unwrap();
    let chain = vec![CertificateDer::from_pem_slice(pki.server.0.as_bytes()).unwrap()];
    let key = PrivateKeyDer::from_pem_slice(pki.server.1.as_bytes()).unwrap();
    Arc::new(
        rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_client_cert_verifier(clients)
            .with_single_cert(chain, key)
            .unwrap(),
    )
}

/// `app` over HTTP/1.1 behind rustls.
async fn serve_https(
    l: tokio::net::TcpListener,
    tls: Arc<rustls::ServerConfig>,
    app: axum::Router,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    loop {
        let Ok((tcp, _)) = l.accept().await else {
            continue;
        };
        let (acceptor, app) = (acceptor.clone(), app.clone());
        tokio::spawn(async move {
            // A client the verifier refuses ends here.
            let Ok(stream) = acceptor.accept(tcp).await else {
                return;
            };
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(
                    hyper_util::rt::TokioIo::new(stream),
                    hyper_util::service::TowerToHyperService::new(app),
                )
                .await;
        });
    }
}

/// Settings from these variables only.
fn settings(vars: &[(&str, String)]) -> Result<Settings, tug_observe::trace::TraceError> {
    Settings::resolve(
        |k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone()),
        None,
    )
}

/// Installs `s`, ends one span named `name`, and flushes (returning,
/// whatever the collector did).
fn send_span(s: &Settings, name: &'static str) {
    let telemetry = install(s, None).unwrap().expect("an exporter");
    opentelemetry::global::tracer_provider()
        .tracer("test")
        .in_span(name, |_| {});
    drop(telemetry);
}

fn wait_for(what: &str, ok: impl Fn() -> bool) {
    let until = Instant::now() + Duration::from_secs(10);
    while !ok() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn mtls(pki: &Pki, endpoint: String, protocol: &str, ca: &Path) -> Vec<(&'static str, String)> {
    vec![
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol.into()),
        ("OTEL_EXPORTER_OTLP_CERTIFICATE", ca.display().to_string()),
        (
            "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
            pki.path("client.pem").display().to_string(),
        ),
        (
            "OTEL_EXPORTER_OTLP_CLIENT_KEY",
            pki.path("client.key").display().to_string(),
        ),
    ]
}

#[test]
fn spans_arrive_over_mutual_tls_by_grpc_and_http() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let pki = Pki::new();
    let rx = receiver(&pki);
    let ca = pki.path("ca.pem");
    let grpc = mtls(&pki, format!("https://127.0.0.1:{}", rx.grpc), "grpc", &ca);
    send_span(&settings(&grpc).unwrap(), "over-grpc");
    wait_for("the gRPC span", || rx.got.has("over-grpc"));
    let http = mtls(
        &pki,
        format!("https://127.0.0.1:{}", rx.http),
        "http/protobuf",
        &ca,
    );
    send_span(&settings(&http).unwrap(), "over-http");
    wait_for("the HTTP span", || rx.got.has("over-http"));
    // The signal's own variable wins over the generic one.
    let mut own = http.clone();
    own[2].1 = pki.path("other-ca.pem").display().to_string();
    own.push((
        "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE",
        ca.display().to_string(),
    ));
    send_span(&settings(&own).unwrap(), "by-the-traces-variable");
    wait_for("the span trusted by the traces CA", || {
        rx.got.has("by-the-traces-variable")
    });
}

#[test]
fn with_the_wrong_ca_nothing_arrives_and_the_caller_goes_on() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let pki = Pki::new();
    let rx = receiver(&pki);
    let other = pki.path("other-ca.pem");
    for (port, protocol, name) in [
        (rx.grpc, "grpc", "untrusted-grpc"),
        (rx.http, "http/protobuf", "untrusted-http"),
    ] {
        let s = settings(&mtls(
            &pki,
            format!("https://127.0.0.1:{port}"),
            protocol,
            &other,
        ))
        .unwrap();
        send_span(&s, name);
    }
    // Without the client certificate the receiver refuses, too.
    let mut anonymous = mtls(
        &pki,
        format!("https://127.0.0.1:{}", rx.http),
        "http/protobuf",
        &pki.path("ca.pem"),
    );
    anonymous.truncate(3);
    send_span(&settings(&anonymous).unwrap(), "no-client-certificate");
    std::thread::sleep(Duration::from_millis(500));
    for name in ["untrusted-grpc", "untrusted-http", "no-client-certificate"] {
        assert!(!rx.got.has(name), "{name} arrived");
    }
}

#[test]
fn bad_tls_files_name_their_variable() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let pki = Pki::new();
    for protocol in ["grpc", "http/protobuf"] {
        let base = |ca: PathBuf| mtls(&pki, "https://127.0.0.1:1".into(), protocol, &ca);
        let e = install(&settings(&base(pki.path("missing.pem"))).unwrap(), None)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("OTEL_EXPORTER_OTLP_CERTIFICATE: cannot read")
                && e.contains("missing.pem"),
            "{e}"
        );
        let e = install(&settings(&base(pki.path("not-pem.txt"))).unwrap(), None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("OTEL_EXPORTER_OTLP_CERTIFICATE")
                && e.contains("no certificate in PEM form"),
            "{e}"
        );
        let mut key_is_a_cert = base(pki.path("ca.pem"));
        key_is_a_cert[4].1 = pki.path("ca.pem").display().to_string();
        let e = install(&settings(&key_is_a_cert).unwrap(), None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("OTEL_EXPORTER_OTLP_CLIENT_KEY") && e.contains("no private key"),
            "{e}"
        );
    }
    let mut half = mtls(
        &pki,
        "https://127.0.0.1:1".into(),
        "grpc",
        &pki.path("ca.pem"),
    );
    half.pop();
    let e = settings(&half).unwrap_err().to_string();
    assert!(
        e.contains("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE")
            && e.contains("OTEL_EXPORTER_OTLP_CLIENT_KEY"),
        "{e}"
    );
}
