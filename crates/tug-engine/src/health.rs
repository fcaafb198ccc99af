//! Health probes tug runs from the host against a replica's published endpoint
//! (decision 3), so FROM-scratch images need no curl inside, and exec probes
//! tug runs inside the replica through the runtime.

use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tug_runtime::Runtime;
use tug_spec::Probe;

/// Outcome of one probe: `Ok` with a short description, or why it failed.
pub type ProbeResult = Result<String, String>;

/// Runs one probe of a running replica, on every runtime the same way: HTTP
/// and TCP from the host at its published `port`, exec inside it through the
/// runtime's exec API (never the engine's HEALTHCHECK, which Podman only runs
/// through systemd). Exit code 0 is healthy.
pub async fn probe<R: Runtime>(
    rt: &R,
    probe: &Probe,
    id: &str,
    port: Option<u16>,
    timeout: Duration,
) -> ProbeResult {
    match (probe, port) {
        (Probe::Exec(command), _) => exec(rt, id, command, timeout).await,
        (_, None) => Err("the replica publishes no port to probe: set `port`".into()),
        (Probe::Http(path), Some(port)) => http(port, path, timeout).await,
        (Probe::Tcp, Some(port)) => tcp(port, timeout).await,
    }
}

pub async fn exec<R: Runtime>(
    rt: &R,
    id: &str,
    command: &[String],
    timeout: Duration,
) -> ProbeResult {
    let shown = command.join(" ");
    match rt.exec(id, command, timeout).await {
        Ok(out) if out.exit_code == 0 => Ok(format!("`{shown}` exited with 0")),
        Ok(out) if out.output.is_empty() => Err(format!("`{shown}` exited with {}", out.exit_code)),
        Ok(out) => Err(format!(
            "`{shown}` exited with {}: {}",
            out.exit_code, out.output
        )),
        Err(e) => Err(e.to_string()),
    }
}

pub async fn tcp(port: u16, timeout: Duration) -> ProbeResult {
    match tokio::time::timeout(timeout, TcpStream::connect(("127.0.0.1", port))).await {
        Ok(Ok(_)) => Ok(format!("tcp 127.0.0.1:{port} accepted")),
        Ok(Err(e)) => Err(format!("tcp 127.0.0.1:{port}: {e}")),
        Err(_) => Err(format!("tcp 127.0.0.1:{port}: timed out after {timeout:?}")),
    }
}

/// Waits up to `within` for 127.0.0.1:`port` to accept a connection,
/// trying every 10 ms (cheap on loopback); whether it did. A replica just
/// started is probed once it listens, not a whole probe interval later.
pub async fn accepting(port: u16, within: Duration) -> bool {
    let until = tokio::time::Instant::now() + within;
    loop {
        let attempt = TcpStream::connect(("127.0.0.1", port));
        if let Ok(Ok(_)) = tokio::time::timeout(Duration::from_millis(50), attempt).await {
            return true;
        }
        if tokio::time::Instant::now() >= until {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// GET `path`; 2xx and 3xx are healthy.
pub async fn http(port: u16, path: &str, timeout: Duration) -> ProbeResult {
    let url = format!("http://127.0.0.1:{port}{path}");
    let attempt = async {
        let mut s = TcpStream::connect(("127.0.0.1", port))
            .await
            .map_err(|e| e.to_string())?;
        let req = format!("GET {path} HTTP/1.0\r\nHost: localhost\r\nUser-Agent: tug-health\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut buf = Vec::with_capacity(256);
        let mut chunk = [0u8; 256];
        while buf.len() < 256 && !buf.contains(&b'\n') {
            let n = s.read(&mut chunk).await.map_err(|e| e.to_string())?;
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        let line = String::from_utf8_lossy(&buf);
        let line = line.lines().next().unwrap_or("").trim().to_string();
        let code: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| {
                if line.is_empty() {
                    "connection closed without a response".to_string()
                } else {
                    format!("not an HTTP response: {line:?}")
                }
            })?;
        if (200..400).contains(&code) {
            Ok(format!("GET {url}: {code}"))
        } else {
            Err(format!("GET {url}: {code}"))
        }
    };
    match tokio::time::timeout(timeout, attempt).await {
        Ok(Ok(m)) => Ok(m),
        Ok(Err(e)) if e.starts_with("GET ") => Err(e),
        Ok(Err(e)) => Err(format!("GET {url}: {e}")),
        Err(_) => Err(format!("GET {url}: timed out after {timeout:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    async fn serve_once(response: &'static str) -> u16 {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut buf = [0u8; 512];
            let _ = s.read(&mut buf).await;
            s.write_all(response.as_bytes()).await.unwrap();
        });
        port
    }

    #[tokio::test]
    async fn http_status_decides() {
        let ok = serve_once("HTTP/1.1 204 No Content\r\n\r\n").await;
        assert!(http(ok, "/health", Duration::from_secs(2)).await.is_ok());
        let bad = serve_once("HTTP/1.1 503 Service Unavailable\r\n\r\n").await;
        assert_eq!(
            http(bad, "/health", Duration::from_secs(2))
                .await
                .unwrap_err(),
            format!("GET http://127.0.0.1:{bad}/health: 503")
        );
        let garbage = serve_once("hello\r\n").await;
        assert!(http(garbage, "/", Duration::from_secs(2))
            .await
            .unwrap_err()
            .contains("not an HTTP response"));
    }

    #[tokio::test]
    async fn closed_port_fails() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        assert!(tcp(port, Duration::from_secs(1)).await.is_err());
        assert!(http(port, "/", Duration::from_secs(1)).await.is_err());
        assert!(!accepting(port, Duration::from_millis(50)).await);
    }

    #[tokio::test]
    async fn accepting_notices_a_port_that_opens_late() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        drop(l);
        let late = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            TcpListener::bind(addr).await.unwrap()
        });
        assert!(accepting(addr.port(), Duration::from_secs(5)).await);
        drop(late.await.unwrap());
    }
}
