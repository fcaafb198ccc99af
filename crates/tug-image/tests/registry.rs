//! The registry client against Debian's docker-registry on 127.0.0.1:5000,
//! plus an auth gate (a real HTTP server on loopback) in front of it for
//! basic and bearer-token auth.

mod common;

use common::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use tug_image::oci::{assemble_rust, Image, ImageBuilder, ImageConfig, LayerBuilder};
use tug_image::registry::{
    self, ClientOptions, Credentials, ErrorKind, PushOptions, Reference, RegistryClient,
};

fn hello_image() -> Image {
    let bin = hello_binary();
    assemble_rust(&bin.path, "hello", bin.version.as_deref(), &hello_options()).unwrap()
}

fn reference(name: &str) -> Reference {
    Reference::parse(&format!("127.0.0.1:5000/tug-test/{}:1", unique(name))).unwrap()
}

fn push(
    img: &Image,
    r: &Reference,
    opts: &PushOptions,
) -> Result<registry::PushReport, registry::RegistryError> {
    registry::push(img, r, opts, &mut |_| {})
}

#[test]
fn push_repush_then_engine_pulls_and_runs() {
    if !registry("push_repush_then_engine_pulls_and_runs") {
        return;
    }
    let img = hello_image();
    let r = reference("hello");
    let first = push(&img, &r, &PushOptions::default()).unwrap();
    assert_eq!(first.digest, img.digest());
    assert_eq!(first.uploaded.len(), 3, "{first:?}");
    assert!(first.skipped.is_empty());

    let again = push(&img, &r, &PushOptions::default()).unwrap();
    assert_eq!(again.uploaded.len(), 0, "{again:?}");
    assert_eq!(again.skipped.len(), 3);
    assert_eq!(
        (
            again.requests.post,
            again.requests.patch,
            again.requests.put
        ),
        (0, 0, 1)
    );
    assert_eq!(again.requests.head, 3);

    let pulled = registry::pull(&r, &ClientOptions::default()).unwrap();
    assert_eq!(pulled.digest(), Some(img.digest()));
    assert_eq!(pulled.config, img.config_blob);

    let name = r.to_string();
    docker_ok(&["pull", "-q", &name]);
    assert_hello_runs(&name);
    docker_ok(&["rmi", &name]);
}

#[test]
fn cross_repository_mount() {
    if !registry("cross_repository_mount") {
        return;
    }
    let layer = LayerBuilder::new(0)
        .file("/data", unique("mount").into_bytes(), 0o644)
        .unwrap()
        .build("ADD data")
        .unwrap();
    let img = ImageBuilder::new()
        .layer(layer)
        .config(ImageConfig::default())
        .build()
        .unwrap();
    let a = reference("mount-a");
    push(&img, &a, &PushOptions::default()).unwrap();
    let b = reference("mount-b");
    let opts = PushOptions {
        mount_from: Some(a.repository.clone()),
        ..Default::default()
    };
    let report = push(&img, &b, &opts).unwrap();
    assert_eq!(report.mounted.len(), 2, "{report:?}");
    assert!(report.uploaded.is_empty());
    assert_eq!(report.requests.patch, 0);
    let pulled = registry::pull(&b, &ClientOptions::default()).unwrap();
    assert_eq!(pulled.layers[0].data, img.layers[0].data);
}

#[test]
fn chunked_upload_of_a_large_blob() {
    if !registry("chunked_upload_of_a_large_blob") {
        return;
    }
    // Poorly compressible bytes so the blob stays large.
    let mut data = Vec::with_capacity(3 << 20);
    let mut x: u64 = 0x9e3779b97f4a7c15 ^ std::process::id() as u64;
    while data.len() < 3 << 20 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        data.extend_from_slice(&x.to_le_bytes());
    }
    let layer = LayerBuilder::new(0)
        .file("/big", data, 0o644)
        .unwrap()
        .build("ADD big")
        .unwrap();
    let blob_len = layer.data.len() as u64;
    let img = ImageBuilder::new()
        .layer(layer)
        .config(ImageConfig::default())
        .build()
        .unwrap();
    let r = reference("chunked");
    let client = ClientOptions {
        chunk_threshold: 1 << 20,
        chunk_size: 512 << 10,
        ..Default::default()
    };
    let report = push(
        &img,
        &r,
        &PushOptions {
            client,
            mount_from: None,
        },
    )
    .unwrap();
    assert_eq!(
        report.requests.patch as u64,
        blob_len.div_ceil(512 << 10),
        "{report:?}"
    );
    let pulled = registry::pull(&r, &ClientOptions::default()).unwrap();
    assert_eq!(pulled.layers[0].data, img.layers[0].data);
}

#[test]
fn interrupted_push_leaves_no_manifest_and_resumes() {
    if !registry("interrupted_push_leaves_no_manifest_and_resumes") {
        return;
    }
    let l1 = LayerBuilder::new(0)
        .file("/one", unique("one").into_bytes(), 0o644)
        .unwrap()
        .build("ADD one")
        .unwrap();
    let l2 = LayerBuilder::new(0)
        .file("/two", unique("two").into_bytes(), 0o644)
        .unwrap()
        .build("ADD two")
        .unwrap();
    let img = ImageBuilder::new()
        .layer(l1)
        .layer(l2)
        .config(ImageConfig::default())
        .build()
        .unwrap();
    let r = reference("resume");
    // The push stopped after its first blob.
    let client = RegistryClient::new(&r, ClientOptions::default()).unwrap();
    client
        .upload_blob(&r.repository, &img.layers[0].digest, &img.layers[0].data)
        .unwrap();
    let e = registry::pull(&r, &ClientOptions::default()).unwrap_err();
    assert_eq!(e.kind(), Some(ErrorKind::NotFound), "{e}");
    let report = push(&img, &r, &PushOptions::default()).unwrap();
    assert_eq!(report.skipped, vec![img.layers[0].digest.clone()]);
    assert_eq!(report.uploaded.len(), 2);
}

#[test]
fn missing_image_is_a_clear_404() {
    if !registry("missing_image_is_a_clear_404") {
        return;
    }
    let r = reference("absent");
    let e = registry::pull(&r, &ClientOptions::default()).unwrap_err();
    assert_eq!(e.kind(), Some(ErrorKind::NotFound));
    let msg = e.to_string();
    assert!(
        msg.contains("registry 127.0.0.1:5000")
            && msg.contains(&r.repository)
            && msg.contains("404"),
        "{msg}"
    );
}

#[test]
fn unreachable_registry_is_a_clear_error() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let r = Reference::parse(&format!("127.0.0.1:{port}/app:1")).unwrap();
    let img = ImageBuilder::new()
        .config(ImageConfig::default())
        .build()
        .unwrap();
    let e = push(&img, &r, &PushOptions::default()).unwrap_err();
    assert_eq!(e.kind(), Some(ErrorKind::Unreachable));
    let msg = e.to_string();
    assert!(
        msg.contains(&format!("registry 127.0.0.1:{port}, repository app")),
        "{msg}"
    );
    assert!(msg.contains("cannot reach"), "{msg}");
}

#[test]
fn plain_http_only_for_loopback_unless_insecure() {
    // A non-loopback registry is spoken to over HTTPS unless --insecure.
    assert!(!Reference::parse("registry.example:5000/a")
        .unwrap()
        .is_loopback());
    assert!(Reference::parse("localhost:5000/a").unwrap().is_loopback());
}

// ---- an auth gate in front of the real registry ----

#[derive(Clone, Copy)]
enum Mode {
    Basic,
    Bearer,
    /// Every request fails with 503, as a registry under maintenance does.
    Broken,
}

const USER: &str = "ci";
const PASS: &str = "s3cret";
const TOKEN: &str = "tok-8f1c2a";

type Request = (String, Vec<(String, String)>, Vec<u8>);

fn read_request(stream: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut line = String::new();
    if stream.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        stream.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
    let len = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .map_or(0, |(_, v)| v.parse().unwrap_or(0));
    let mut body = vec![0; len];
    stream.read_exact(&mut body).ok()?;
    Some((line.trim_end().to_string(), headers, body))
}

fn respond(out: &mut TcpStream, status: &str, headers: &[(&str, String)], body: &[u8]) {
    let mut head = format!(
        "HTTP/1.1 {status}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let _ = out.write_all(head.as_bytes());
    let _ = out.write_all(body);
}

fn serve(conn: TcpStream, mode: Mode, port: u16) {
    let mut out = conn.try_clone().unwrap();
    let mut reader = BufReader::new(conn);
    let Some((line, headers, body)) = read_request(&mut reader) else {
        return;
    };
    let auth = headers
        .iter()
        .find(|(k, _)| k == "authorization")
        .map(|(_, v)| v.clone());
    use base64::Engine as _;
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASS}"))
    );
    let path = line.split(' ').nth(1).unwrap_or("/").to_string();
    if path.starts_with("/token") {
        // The token service: wants the service and a scope, and good credentials.
        if auth.as_deref() == Some(basic.as_str())
            && path.contains("service=gate")
            && path.contains("scope=repository")
        {
            respond(
                &mut out,
                "200 OK",
                &[("Content-Type", "application/json".into())],
                format!(r#"{{"token":"{TOKEN}"}}"#).as_bytes(),
            );
        } else {
            respond(&mut out, "401 Unauthorized", &[], b"{}");
        }
        return;
    }
    let (ok, challenge) = match mode {
        Mode::Broken => {
            respond(
                &mut out,
                "503 Service Unavailable",
                &[],
                b"down for maintenance",
            );
            return;
        }
        Mode::Basic => (
            auth.as_deref() == Some(basic.as_str()),
            r#"Basic realm="gate""#.to_string(),
        ),
        Mode::Bearer => (
            auth.as_deref() == Some(&format!("Bearer {TOKEN}")),
            format!(
                r#"Bearer realm="http://127.0.0.1:{port}/token",service="gate",scope="repository:tug-test/x:pull,push""#
            ),
        ),
    };
    if !ok {
        respond(
            &mut out,
            "401 Unauthorized",
            &[
                ("WWW-Authenticate", challenge),
                ("Content-Type", "application/json".into()),
            ],
            br#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#,
        );
        return;
    }
    // Forward to the real registry; the Host header stays ours, so the
    // registry's Location headers point back through the gate.
    let mut up = TcpStream::connect("127.0.0.1:5000").unwrap();
    let mut req = format!("{line}\r\n");
    for (k, v) in &headers {
        if k != "authorization" && k != "connection" {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
    }
    req.push_str("Connection: close\r\n\r\n");
    up.write_all(req.as_bytes()).unwrap();
    up.write_all(&body).unwrap();
    let mut resp = Vec::new();
    up.read_to_end(&mut resp).unwrap();
    let _ = out.write_all(&resp);
}

fn start_gate(mode: Mode) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            std::thread::spawn(move || serve(conn, mode, port));
        }
    });
    port
}

fn gated(port: u16, name: &str) -> Reference {
    Reference::parse(&format!("127.0.0.1:{port}/tug-test/{}:1", unique(name))).unwrap()
}

fn small_image() -> Image {
    let layer = LayerBuilder::new(0)
        .file("/auth", unique("auth").into_bytes(), 0o644)
        .unwrap()
        .build("ADD auth")
        .unwrap();
    ImageBuilder::new()
        .layer(layer)
        .config(ImageConfig::default())
        .build()
        .unwrap()
}

fn with_creds(user: &str, pass: &str) -> ClientOptions {
    ClientOptions {
        credentials: Some(Credentials {
            username: user.into(),
            password: pass.into(),
        }),
        ..Default::default()
    }
}

#[test]
fn bearer_token_auth() {
    if !registry("bearer_token_auth") {
        return;
    }
    let port = start_gate(Mode::Bearer);
    let img = small_image();
    let r = gated(port, "bearer");
    let report = push(
        &img,
        &r,
        &PushOptions {
            client: with_creds(USER, PASS),
            mount_from: None,
        },
    )
    .unwrap();
    assert_eq!(report.uploaded.len(), 2);
    let pulled = registry::pull(&r, &with_creds(USER, PASS)).unwrap();
    assert_eq!(pulled.digest(), Some(img.digest()));

    let e = push(
        &img,
        &gated(port, "bearer-bad"),
        &PushOptions {
            client: with_creds(USER, "wrong"),
            mount_from: None,
        },
    )
    .unwrap_err();
    assert_eq!(e.kind(), Some(ErrorKind::Unauthorized), "{e}");
    assert!(e.to_string().contains("TUG_REGISTRY_USER"), "{e}");
}

#[test]
fn basic_auth() {
    if !registry("basic_auth") {
        return;
    }
    let port = start_gate(Mode::Basic);
    let img = small_image();
    let r = gated(port, "basic");
    push(
        &img,
        &r,
        &PushOptions {
            client: with_creds(USER, PASS),
            mount_from: None,
        },
    )
    .unwrap();
    let e = registry::pull(&r, &with_creds(USER, "nope")).unwrap_err();
    assert_eq!(e.kind(), Some(ErrorKind::Unauthorized), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains(&format!("registry 127.0.0.1:{port}")) && msg.contains("401"),
        "{msg}"
    );
}

#[test]
fn server_errors_name_registry_repository_and_status() {
    // No real registry needed: the gate answers 503 by itself.
    let port = start_gate(Mode::Broken);
    let r = gated(port, "broken");
    let e = push(&small_image(), &r, &PushOptions::default()).unwrap_err();
    assert_eq!(e.kind(), Some(ErrorKind::Server), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains(&format!(
            "registry 127.0.0.1:{port}, repository {}",
            r.repository
        )),
        "{msg}"
    );
    assert!(
        msg.contains("503") && msg.contains("try again later"),
        "{msg}"
    );
    // A GET carries the registry's own words too.
    let e = registry::pull(&r, &ClientOptions::default()).unwrap_err();
    assert_eq!(e.kind(), Some(ErrorKind::Server), "{e}");
    assert!(e.to_string().contains("(down for maintenance)"), "{e}");
}
