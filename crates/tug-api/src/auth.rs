//! The API token: what a client beyond loopback must show.
//!
//! `TUG_API_TOKEN` when the agent starts with it set; otherwise 32 random
//! bytes kept in `<state dir>/token`, readable by its owner only, so every
//! `tug` command of that user (and nobody else) can read it.

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::path::Path;
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// The cookie the dashboard keeps the token in.
pub const COOKIE: &str = "tug_token";

/// The token for the agent whose state directory is `dir`, creating it once.
pub fn token(dir: &Path) -> std::io::Result<String> {
    if let Ok(t) = std::env::var("TUG_API_TOKEN") {
        if !t.trim().is_empty() {
            return Ok(t.trim().to_string());
        }
    }
    let path = dir.join("token");
    if let Ok(t) = std::fs::read_to_string(&path) {
        if !t.trim().is_empty() {
            return Ok(t.trim().to_string());
        }
    }
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| std::io::Error::other(e.to_string()))?;
    let t: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)?;
    f.write_all(t.as_bytes())?;
    Ok(t)
}

/// The token a request carries: `Authorization: Bearer T` or the cookie.
pub fn presented(headers: &axum::http::HeaderMap) -> Option<&str> {
    if let Some(v) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        if let Some(t) = v.strip_prefix("Bearer ") {
            return Some(t.trim());
        }
    }
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v)
}

/// Whether `given` is `token`, in time independent of where they differ.
pub fn matches(given: &str, token: &str) -> bool {
    given.as_bytes().ct_eq(token.as_bytes()).into()
}

/// Refuses, with 401, a request without the token; the dashboard's login
/// page and its assets pass, and a browser asking for the dashboard is sent
/// to the login page.
pub async fn require(State(token): State<Arc<str>>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    match presented(req.headers()) {
        Some(t) if matches(t, &token) => next.run(req).await,
        _ if crate::server::dashboard::public(path) => next.run(req).await,
        _ if path == "/" && req.method() == axum::http::Method::GET => {
            (StatusCode::SEE_OTHER, [(header::LOCATION, "/login")]).into_response()
        }
        _ => (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            axum::Json(crate::api::ErrorBody {
                error: "this agent listens beyond loopback: send its token as `Authorization: Bearer TOKEN` (`tug dashboard --token` prints it)".into(),
                invalid: true,
            }),
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_is_created_once_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let a = token(d.path()).unwrap();
        assert_eq!(a.len(), 64);
        assert_eq!(token(d.path()).unwrap(), a);
        let mode = std::fs::metadata(d.path().join("token"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn bearer_or_cookie() {
        let mut h = axum::http::HeaderMap::new();
        assert_eq!(presented(&h), None);
        h.insert(header::COOKIE, "a=b; tug_token=xyz".parse().unwrap());
        assert_eq!(presented(&h), Some("xyz"));
        h.insert(header::AUTHORIZATION, "Bearer abc".parse().unwrap());
        assert_eq!(presented(&h), Some("abc"));
        assert!(matches("abc", "abc"));
        assert!(!matches("abd", "abc"));
        assert!(!matches("ab", "abc"));
    }
}
