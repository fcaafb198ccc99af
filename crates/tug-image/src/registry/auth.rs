//! Registry credentials and the answer to a `WWW-Authenticate` challenge.

use super::ErrorKind;
use base64::Engine as _;
use reqwest::blocking::Client;
use std::collections::HashMap;
use std::path::PathBuf;

#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<hidden>")
            .finish()
    }
}

impl Credentials {
    /// `TUG_REGISTRY_USER`/`TUG_REGISTRY_PASSWORD`, else the registry's entry
    /// in `$DOCKER_CONFIG/config.json` (default `~/.docker/config.json`).
    pub fn lookup(registry: &str) -> Option<Credentials> {
        if let (Ok(u), Ok(p)) = (
            std::env::var("TUG_REGISTRY_USER"),
            std::env::var("TUG_REGISTRY_PASSWORD"),
        ) {
            return Some(Credentials {
                username: u,
                password: p,
            });
        }
        let dir = std::env::var_os("DOCKER_CONFIG")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker")))?;
        let text = std::fs::read_to_string(dir.join("config.json")).ok()?;
        Self::from_docker_config(&text, registry)
    }

    /// Reads `auths` of a Docker config file (`auth` is base64 of `user:password`).
    pub fn from_docker_config(text: &str, registry: &str) -> Option<Credentials> {
        let doc: serde_json::Value = serde_json::from_str(text).ok()?;
        let auths = doc["auths"].as_object()?;
        let keys: Vec<String> = if registry == super::DOCKER_HUB {
            vec![
                "https://index.docker.io/v1/".into(),
                "index.docker.io".into(),
                "docker.io".into(),
            ]
        } else {
            vec![
                registry.into(),
                format!("https://{registry}"),
                format!("http://{registry}"),
            ]
        };
        let entry = keys
            .iter()
            .find_map(|k| auths.get(k).or_else(|| auths.get(&format!("{k}/"))))?;
        if let Some(auth) = entry["auth"].as_str().filter(|a| !a.is_empty()) {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(auth)
                .ok()?;
            let s = String::from_utf8(raw).ok()?;
            let (u, p) = s.split_once(':')?;
            return Some(Credentials {
                username: u.into(),
                password: p.into(),
            });
        }
        Some(Credentials {
            username: entry["username"].as_str()?.into(),
            password: entry["password"].as_str()?.into(),
        })
    }

    fn basic(&self) -> String {
        let raw = format!("{}:{}", self.username, self.password);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }
}

/// Splits `Bearer realm="x",service="y",scope="a:b:pull,push"` into scheme and params.
pub fn parse_challenge(header: &str) -> (String, HashMap<String, String>) {
    let (scheme, rest) = header.trim().split_once(' ').unwrap_or((header.trim(), ""));
    let mut params = HashMap::new();
    let mut chars = rest.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.is_empty() {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            value = chars.by_ref().take_while(|c| *c != ',').collect();
        }
        params.insert(key.trim().to_ascii_lowercase(), value);
    }
    (scheme.to_ascii_lowercase(), params)
}

/// The `Authorization` header that answers a challenge: basic credentials, or
/// a token fetched from the bearer realm (with the credentials, if any).
pub fn answer(
    http: &Client,
    challenge: &str,
    creds: Option<&Credentials>,
) -> Result<String, (ErrorKind, String)> {
    let login_hint =
        "log in with `docker login` or set TUG_REGISTRY_USER and TUG_REGISTRY_PASSWORD";
    let (scheme, params) = parse_challenge(challenge);
    match scheme.as_str() {
        "basic" => creds.map(Credentials::basic).ok_or_else(|| {
            (
                ErrorKind::Unauthorized,
                format!("the registry wants credentials: {login_hint}"),
            )
        }),
        "bearer" => {
            let realm = params.get("realm").ok_or_else(|| {
                (
                    ErrorKind::Protocol,
                    "bearer challenge without realm".to_string(),
                )
            })?;
            let mut query: Vec<(&str, &str)> = Vec::new();
            if let Some(s) = params.get("service") {
                query.push(("service", s));
            }
            if let Some(s) = params.get("scope") {
                for scope in s.split(' ') {
                    query.push(("scope", scope));
                }
            }
            let mut req = http.get(realm).query(&query);
            if let Some(c) = creds {
                req = req.basic_auth(&c.username, Some(&c.password));
            }
            let resp = req.send().map_err(|e| {
                (
                    ErrorKind::Unreachable,
                    format!("cannot reach the token service {realm}: {e}"),
                )
            })?;
            let status = resp.status();
            if status == reqwest::StatusCode::UNAUTHORIZED
                || status == reqwest::StatusCode::FORBIDDEN
            {
                return Err((ErrorKind::Unauthorized, format!("the token service {realm} refused the credentials ({status}): {login_hint}")));
            }
            if !status.is_success() {
                return Err((
                    ErrorKind::Protocol,
                    format!("the token service {realm} answered {status}"),
                ));
            }
            let body = resp.bytes().unwrap_or_default();
            let doc: serde_json::Value = serde_json::from_slice(&body).map_err(|e| {
                (
                    ErrorKind::Protocol,
                    format!("the token service {realm} sent no JSON: {e}"),
                )
            })?;
            let token = doc["token"]
                .as_str()
                .or(doc["access_token"].as_str())
                .ok_or_else(|| {
                    (
                        ErrorKind::Protocol,
                        format!("the token service {realm} sent no token"),
                    )
                })?;
            Ok(format!("Bearer {token}"))
        }
        other => Err((
            ErrorKind::Protocol,
            format!("unsupported auth scheme {other:?}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bearer_challenge_with_commas_in_scope() {
        let (s, p) = parse_challenge(
            r#"Bearer realm="http://127.0.0.1:1/token",service="reg",scope="repository:a/b:pull,push""#,
        );
        assert_eq!(s, "bearer");
        assert_eq!(p["realm"], "http://127.0.0.1:1/token");
        assert_eq!(p["service"], "reg");
        assert_eq!(p["scope"], "repository:a/b:pull,push");
        let (s, p) = parse_challenge(r#"Basic realm="Registry Realm""#);
        assert_eq!(
            (s.as_str(), p["realm"].as_str()),
            ("basic", "Registry Realm")
        );
    }

    #[test]
    fn reads_docker_config_auths() {
        let cfg = r#"{"auths":{"127.0.0.1:5000":{"auth":"dXNlcjpwYXNzOndvcmQ="},"https://index.docker.io/v1/":{"username":"hub","password":"pw"}}}"#;
        let c = Credentials::from_docker_config(cfg, "127.0.0.1:5000").unwrap();
        assert_eq!(
            (c.username.as_str(), c.password.as_str()),
            ("user", "pass:word")
        );
        let c = Credentials::from_docker_config(cfg, "docker.io").unwrap();
        assert_eq!(c.username, "hub");
        assert!(Credentials::from_docker_config(cfg, "ghcr.io").is_none());
        assert!(!format!("{c:?}").contains("pw"));
    }
}
