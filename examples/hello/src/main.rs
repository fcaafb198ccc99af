//! hello: answers `GET /` with its replica id and version, `GET /health` with
//! `ok`, and stops gracefully on SIGTERM (in-flight requests finish, idle
//! keep-alive connections are dropped).
//!
//! Environment: `PORT` (default 8080), `TUG_REPLICA` (replica id, else the
//! hostname), `VERSION` (else the crate version), `HELLO_UNHEALTHY=1` makes
//! /health answer 503, `HELLO_EXIT=<code>` exits at once, and `GET /sick` makes
//! /health answer 503 from then on, and `GET /crash` exits with code 3 (for
//! failure drills). A request carrying a W3C `traceparent` is logged with it
//! on stdout and answered with it in a `traceparent-received` header.
//!
//! `hello check` probes `GET /health` on 127.0.0.1:$PORT and exits 0 when it
//! answers 200: an exec health check for images with no shell or curl.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn main() {
    if std::env::args().nth(1).as_deref() == Some("check") {
        std::process::exit(check());
    }
    if let Ok(code) = std::env::var("HELLO_EXIT") {
        eprintln!("hello: exiting with {code} as asked by HELLO_EXIT");
        std::process::exit(code.parse().unwrap_or(1));
    }
    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(8080);
    let replica = std::env::var("TUG_REPLICA")
        .or_else(|_| std::fs::read_to_string("/etc/hostname").map(|h| h.trim().to_string()))
        .unwrap_or_else(|_| "unknown".into());
    let version = std::env::var("VERSION").unwrap_or_else(|_| env!("CARGO_PKG_VERSION").into());
    let unhealthy = Arc::new(AtomicBool::new(
        std::env::var("HELLO_UNHEALTHY").is_ok_and(|v| v == "1"),
    ));

    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, Arc::clone(&stop)).expect("install signal handler");
    }
    let listener = match TcpListener::bind(("0.0.0.0", port)) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("hello: cannot listen on port {port}: {e}");
            std::process::exit(1);
        }
    };
    listener
        .set_nonblocking(true)
        .expect("non-blocking listener");
    eprintln!("hello: replica {replica} version {version} listening on :{port}");

    let inflight = Arc::new(AtomicUsize::new(0));
    let wait_connections = std::env::var("HELLO_WAIT_CONNECTIONS").is_ok_and(|v| v == "1");
    let idle = Duration::from_secs(if wait_connections { 120 } else { 5 });
    let open = Arc::new(AtomicUsize::new(0));
    let body = Arc::new(format!("hello from {replica} (version {version})\n"));
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((conn, _)) => {
                let body = Arc::clone(&body);
                let inflight = Arc::clone(&inflight);
                let unhealthy = Arc::clone(&unhealthy);
                let open = Arc::clone(&open);
                std::thread::spawn(move || {
                    let _open = InFlight::new(&open);
                    let _ = serve(conn, &body, &unhealthy, &inflight, idle);
                });
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => eprintln!("hello: accept failed: {e}"),
        }
    }
    // Requests in flight finish; idle keep-alive connections are dropped.
    eprintln!("hello: stopping, waiting for in-flight requests");
    for _ in 0..500 {
        if inflight.load(Ordering::SeqCst) == 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    if wait_connections {
        eprintln!("hello: waiting for every connection to close");
        while open.load(Ordering::SeqCst) > 0 {
            std::thread::sleep(Duration::from_millis(10));
        }
        eprintln!("hello: all connections closed");
    }
    eprintln!("hello: stopped");
}

fn check() -> i32 {
    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(8080);
    let probe = || -> std::io::Result<bool> {
        let mut conn = TcpStream::connect(("127.0.0.1", port))?;
        conn.set_read_timeout(Some(Duration::from_secs(2)))?;
        conn.write_all(b"GET /health HTTP/1.0\r\n\r\n")?;
        let mut line = String::new();
        BufReader::new(conn).read_line(&mut line)?;
        Ok(line.starts_with("HTTP/1.1 200"))
    };
    match probe() {
        Ok(true) => 0,
        Ok(false) => 1,
        Err(e) => {
            eprintln!("hello check: {e}");
            1
        }
    }
}

/// Counts a request in flight (or a connection open) while it lives.
struct InFlight<'a>(&'a AtomicUsize);

impl<'a> InFlight<'a> {
    fn new(n: &'a AtomicUsize) -> Self {
        n.fetch_add(1, Ordering::SeqCst);
        InFlight(n)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn serve(
    conn: TcpStream,
    body: &str,
    unhealthy: &AtomicBool,
    inflight: &AtomicUsize,
    idle: Duration,
) -> std::io::Result<()> {
    conn.set_nonblocking(false)?;
    conn.set_read_timeout(Some(idle))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut out = conn;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line)? == 0 {
            return Ok(());
        }
        let _request = InFlight::new(inflight);
        let mut close = false;
        let mut traceparent = None;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h)? == 0 || h == "\r\n" || h == "\n" {
                break;
            }
            let lower = h.to_ascii_lowercase();
            if lower.starts_with("connection: close") {
                close = true;
            }
            if let Some(v) = lower.strip_prefix("traceparent:") {
                traceparent = Some(v.trim().to_string());
            }
        }
        let mut parts = request_line.split_whitespace();
        let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        close |= parts.next() == Some("HTTP/1.0");
        let (status, text) = match (method, path) {
            ("GET", "/crash") => {
                eprintln!("hello: crashing as asked by GET /crash");
                std::process::exit(3);
            }
            ("GET", "/sick") => {
                unhealthy.store(true, Ordering::SeqCst);
                ("200 OK", "/health answers 503 from now on\n")
            }
            ("GET", "/health") if unhealthy.load(Ordering::SeqCst) => {
                ("503 Service Unavailable", "unhealthy\n")
            }
            ("GET", "/health") => ("200 OK", "ok\n"),
            ("GET", "/") => ("200 OK", body),
            // Holds the request, for load that stays in flight (at most 10 s).
            ("GET", p) if p.starts_with("/slow/") => {
                let ms = p["/slow/".len()..].parse::<u64>().unwrap_or(0).min(10_000);
                std::thread::sleep(Duration::from_millis(ms));
                ("200 OK", body)
            }
            ("GET", _) => ("404 Not Found", "not found\n"),
            _ => ("405 Method Not Allowed", "method not allowed\n"),
        };
        // The trace context it was called in: logged, and sent back so a
        // caller can see which span it joined.
        let echo = match &traceparent {
            Some(tp) => {
                println!("{method} {path} traceparent={tp}");
                format!("traceparent-received: {tp}\r\n")
            }
            None => String::new(),
        };
        write!(
            out,
            "HTTP/1.1 {status}\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n{echo}{}\r\n{text}",
            text.len(),
            if close { "connection: close\r\n" } else { "" }
        )?;
        out.flush()?;
        if close {
            return Ok(());
        }
    }
}
