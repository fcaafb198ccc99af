//! The dashboard: a web UI embedded in the binary, served at `/` of the
//! agent's HTTP listener, and the few endpoints it needs beyond the API.
//!
//! The page is plain ES modules, CSS and SVG (`crates/tug-api/ui/`); it
//! reads the typed API only and updates from `GET /v1/events/stream`.
//!
//! Security, on the TCP listener only (the unix socket is its owner's):
//! - beyond loopback every request needs the token (see [`crate::auth`]);
//!   the login page and its assets are the exception, and `POST /login`
//!   turns the token into the `tug_token` cookie (HttpOnly, SameSite=Strict,
//!   not Secure: the listener speaks plain HTTP);
//! - [`guard`] refuses a state-changing request that does not carry
//!   `X-Tug-Csrf` (or a bearer token, which a browser never adds by
//!   itself), or whose `Origin` or `Sec-Fetch-Site` says another site sent
//!   it; on loopback it also refuses a `Host` that is not a loopback name,
//!   so a DNS-rebound page cannot reach the agent as its own origin.

use super::{failure, invalid, reply, with_store, Shared};
use crate::api;
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use std::sync::Arc;
use tug_runtime::Runtime;

/// The header the dashboard sends with every state-changing request.
pub const CSRF_HEADER: &str = "x-tug-csrf";

const INDEX: &str = include_str!("../../ui/index.html");
const LOGIN: &str = include_str!("../../ui/login.html");
const APP_JS: &str = include_str!("../../ui/app.js");
const LOGIN_JS: &str = include_str!("../../ui/login.js");
const STYLE: &str = include_str!("../../ui/style.css");
const ICON: &str = include_str!("../../ui/icon.svg");

/// Paths a browser may load without the token: the login page and what it
/// needs.
pub fn public(path: &str) -> bool {
    matches!(
        path,
        "/login" | "/ui/login.js" | "/ui/style.css" | "/ui/icon.svg"
    )
}

/// The dashboard's pages and assets, and its endpoints (`/v1/stats`,
/// `/v1/history/{id}`).
pub(super) fn router<R: Runtime + Clone + 'static>() -> Router<Shared<R>> {
    Router::new()
        .route("/", get(|| async { page(INDEX) }))
        .route(
            "/ui/app.js",
            get(|| async { asset(APP_JS, "text/javascript") }),
        )
        .route(
            "/ui/login.js",
            get(|| async { asset(LOGIN_JS, "text/javascript") }),
        )
        .route("/ui/style.css", get(|| async { asset(STYLE, "text/css") }))
        .route(
            "/ui/icon.svg",
            get(|| async { asset(ICON, "image/svg+xml") }),
        )
        .route("/v1/stats", get(stats::<R>))
        .route("/v1/history/{id}", get(revision::<R>))
        .route("/v1/findings", get(findings::<R>))
        .route("/v1/pipelines", get(pipelines::<R>))
        .route("/v1/pipelines/{id}", get(pipeline_run::<R>))
}

/// `GET /login` and `POST /login` when the listener needs `token`; on
/// loopback the login page only sends the browser on to `/`.
pub fn login(token: Option<Arc<str>>) -> Router {
    match token {
        Some(t) => Router::new()
            .route(
                "/login",
                get(|| async { page(LOGIN) }).post(sign_in).delete(sign_out),
            )
            .with_state(t),
        None => Router::new().route(
            "/login",
            get(|| async { (StatusCode::SEE_OTHER, [(header::LOCATION, "/")]).into_response() }),
        ),
    }
}

/// What every page of the dashboard may do: its own scripts, styles and
/// API, nothing else, never in a frame.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

fn page(html: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::X_FRAME_OPTIONS, "DENY"),
            (header::REFERRER_POLICY, "no-referrer"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        html,
    )
        .into_response()
}

fn asset(body: &'static str, kind: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

fn cookie(value: &str, max_age: Option<u32>) -> HeaderValue {
    let age = max_age
        .map(|s| format!("; Max-Age={s}"))
        .unwrap_or_default();
    HeaderValue::from_str(&format!(
        "{}={value}; Path=/; HttpOnly; SameSite=Strict{age}",
        crate::auth::COOKIE
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// `POST /login {"token": "..."}`: the cookie, when the token is right.
async fn sign_in(
    State(token): State<Arc<str>>,
    super::Body(b): super::Body<api::LoginRequest>,
) -> Response {
    let given = b.token.trim();
    if !crate::auth::matches(given, &token) {
        tracing::warn!("dashboard sign-in with a wrong token");
        return failure(
            StatusCode::UNAUTHORIZED,
            "wrong token: `tug dashboard --token` prints the right one".into(),
            true,
        );
    }
    (
        StatusCode::NO_CONTENT,
        [(header::SET_COOKIE, cookie(given, None))],
    )
        .into_response()
}

/// `DELETE /login`: signs out (the cookie expires).
async fn sign_out() -> Response {
    (
        StatusCode::NO_CONTENT,
        [(header::SET_COOKIE, cookie("", Some(0)))],
    )
        .into_response()
}

/// `GET /v1/stats`: the metrics sampler's last reading of each replica
/// (every `TUG_METRICS_INTERVAL`, 5 s by default); the engine is not asked
/// again per request.
async fn stats<R: Runtime>(State(a): State<Shared<R>>) -> Response {
    reply(a.stats.load_full().as_ref().clone())
}

/// `GET /v1/history/{id}`: one revision, with its spec.
async fn revision<R: Runtime>(State(a): State<Shared<R>>, Path(id): Path<String>) -> Response {
    let Ok(id) = id.parse::<i64>() else {
        return invalid(format!("`{id}` is not a revision number"));
    };
    let name = a.stack.name.clone();
    let found =
        tokio::task::spawn_blocking(move || with_store(&name, |s| Ok(s.revision(id)?))).await;
    match found {
        Ok(Ok(Some(r))) => reply(r),
        Ok(Ok(None)) => failure(
            StatusCode::NOT_FOUND,
            format!("no revision {id}: `tug history` lists them"),
            true,
        ),
        Ok(Err(e)) => super::error(e),
        Err(e) => failure(StatusCode::INTERNAL_SERVER_ERROR, e.to_string(), false),
    }
}

/// `GET /v1/findings`: computed once per revision, off the executor.
async fn findings<R: Runtime>(State(a): State<Shared<R>>) -> Response {
    let revision = a.snapshot.load().revision;
    let mut cache = a.findings.lock().await;
    if let Some(f) = cache.as_ref().filter(|f| f.revision == revision) {
        return reply(f);
    }
    // The revision's stack when the history has it (what runs), else the file's.
    let stack = desired_stack(&a).await;
    let found = tokio::task::spawn_blocking(move || check(&stack, revision)).await;
    match found {
        Ok(f) => {
            *cache = Some(f.clone());
            reply(f)
        }
        Err(e) => failure(StatusCode::INTERNAL_SERVER_ERROR, e.to_string(), false),
    }
}

async fn desired_stack<R: Runtime>(a: &super::Agent<R>) -> tug_spec::Stack {
    super::desired(a)
        .await
        .map(|(_, s)| s)
        .unwrap_or_else(|| a.stack.clone())
}

/// Secret and configuration checks of the stack's directory, and the
/// Dockerfile linter over each service's Dockerfile.
fn check(stack: &tug_spec::Stack, revision: Option<i64>) -> api::Findings {
    let mut out = api::Findings {
        revision,
        ..Default::default()
    };
    let mut opts = tug_scan::ScanOptions::new(&stack.dir);
    opts.scanners = vec![tug_scan::ScannerKind::Secret, tug_scan::ScannerKind::Config];
    match tug_scan::scan(&opts) {
        Ok(report) => {
            out.findings
                .extend(report.findings.into_iter().map(|f| api::FindingRow {
                    tool: f.scanner.as_str().into(),
                    rule: f.rule_id,
                    severity: format!("{:?}", f.severity).to_lowercase(),
                    location: format!("{}:{}:{}", f.file, f.line, f.col),
                    // A secret's message names it redacted, never whole.
                    message: f.message,
                }));
            out.errors
                .extend(report.errors.into_iter().map(|e| e.to_string()));
        }
        Err(e) => out
            .errors
            .push(format!("scan of {}: {e}", stack.dir.display())),
    }
    let config = tug_image::lint::Config::default();
    for (name, svc) in &stack.services {
        let Some(b) = svc.build.as_ref().filter(|b| b.rust.is_none()) else {
            continue;
        };
        let dir = stack
            .dir
            .join(b.context.clone().unwrap_or_else(|| ".".into()));
        let path = dir.join(b.dockerfile.clone().unwrap_or_else(|| "Dockerfile".into()));
        let text = match std::fs::read(&path) {
            Ok(t) => String::from_utf8_lossy(&t).into_owned(),
            Err(e) => {
                out.errors
                    .push(format!("service {name}: {}: {e}", path.display()));
                continue;
            }
        };
        let facts = tug_image::lint::ContextFacts::scan(&path);
        let rel = path
            .strip_prefix(&stack.dir)
            .unwrap_or(&path)
            .display()
            .to_string();
        for f in tug_image::lint::lint(&text, &config, &facts).findings {
            out.findings.push(api::FindingRow {
                tool: "dockerfile".into(),
                rule: f.rule.into(),
                severity: f.severity.as_str().into(),
                location: format!("{rel}:{}:{}", f.line, f.col),
                message: f.message,
            });
        }
    }
    out
}

fn run_store(stack: &str) -> Result<tug_pipeline::store::RunStore, String> {
    let path = tug_engine::store::state_dir(stack).join("tug.db");
    tug_pipeline::store::RunStore::open(&path).map_err(|e| e.to_string())
}

fn run_row(r: &tug_pipeline::store::RunRow) -> api::PipelineRun {
    api::PipelineRun {
        id: r.id,
        pipeline: r.pipeline.clone(),
        status: r.status.as_str().into(),
        started: r.started,
        finished: r.finished,
    }
}

/// `GET /v1/pipelines?limit=N`: the stack's pipeline runs, newest first.
async fn pipelines<R: Runtime>(
    State(a): State<Shared<R>>,
    q: Result<axum::extract::Query<api::Page>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let p = match super::query(q) {
        Ok(p) => p,
        Err(m) => return invalid(m),
    };
    let limit = p.limit.unwrap_or(50).min(1000) as usize;
    let name = a.stack.name.clone();
    let rows = tokio::task::spawn_blocking(move || {
        run_store(&name)?
            .list(limit)
            .map_err(|e| e.to_string())
            .map(|rows| rows.iter().map(run_row).collect::<Vec<_>>())
    })
    .await;
    match rows {
        Ok(Ok(rows)) => reply(rows),
        Ok(Err(e)) => failure(StatusCode::INTERNAL_SERVER_ERROR, e, false),
        Err(e) => failure(StatusCode::INTERNAL_SERVER_ERROR, e.to_string(), false),
    }
}

/// The end of a job's log: at most this much.
const JOB_LOG: u64 = 64 * 1024;

fn tail(path: &std::path::Path) -> String {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut f) = std::fs::File::open(path) else {
        return String::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(JOB_LOG)));
    let mut b = Vec::new();
    let _ = f.take(JOB_LOG).read_to_end(&mut b);
    String::from_utf8_lossy(&b).into_owned()
}

/// `GET /v1/pipelines/{id}`: a run, its jobs and their logs.
async fn pipeline_run<R: Runtime>(State(a): State<Shared<R>>, Path(id): Path<String>) -> Response {
    let Ok(id) = id.parse::<i64>() else {
        return invalid(format!("`{id}` is not a run number"));
    };
    let name = a.stack.name.clone();
    let found = tokio::task::spawn_blocking(move || {
        let row = run_store(&name)?.get(id).map_err(|e| e.to_string())?;
        Ok::<_, String>(row.map(|r| {
            api::PipelineRunDetail {
                run: run_row(&r),
                jobs: r
                    .report
                    .map(|rep| rep.jobs)
                    .unwrap_or_default()
                    .into_iter()
                    .map(|j| api::PipelineJob {
                        log: j.log.as_deref().map(tail).unwrap_or_default(),
                        name: j.name,
                        status: j.status.as_str().into(),
                        seconds: j.seconds,
                        reason: j.reason,
                    })
                    .collect(),
            }
        }))
    })
    .await;
    match found {
        Ok(Ok(Some(r))) => reply(r),
        Ok(Ok(None)) => failure(
            StatusCode::NOT_FOUND,
            format!("no pipeline run {id}: `tug pipeline runs` lists them"),
            true,
        ),
        Ok(Err(e)) => failure(StatusCode::INTERNAL_SERVER_ERROR, e, false),
        Err(e) => failure(StatusCode::INTERNAL_SERVER_ERROR, e.to_string(), false),
    }
}

/// Whether the listener's requests must name a loopback host.
#[derive(Clone, Copy, Debug)]
pub struct Guard {
    pub loopback: bool,
}

/// The CSRF (and, on loopback, DNS rebinding) guard of the TCP listener.
pub async fn guard(State(g): State<Guard>, req: Request, next: Next) -> Response {
    match refusal(g, req.method(), req.headers()) {
        None => next.run(req).await,
        Some(why) => {
            tracing::warn!(method = %req.method(), path = %req.uri().path(), "refused: {why}");
            failure(StatusCode::FORBIDDEN, why, true)
        }
    }
}

/// Why a request is refused, if it is.
fn refusal(g: Guard, method: &Method, h: &HeaderMap) -> Option<String> {
    let text = |name| h.get(name).and_then(|v: &HeaderValue| v.to_str().ok());
    let host = text(header::HOST.as_str());
    // A browser always sends Host; a bare HTTP/1.0 client may not.
    if let (true, Some(host)) = (g.loopback, host) {
        if !matches!(host_name(host), "127.0.0.1" | "localhost" | "[::1]") {
            return Some(format!(
                "this agent listens on loopback and answers only to 127.0.0.1, localhost or [::1], not {host}"
            ));
        }
    }
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return None;
    }
    if let Some(site) = text("sec-fetch-site") {
        if site != "same-origin" && site != "none" {
            return Some(format!(
                "cross-site request refused (Sec-Fetch-Site: {site})"
            ));
        }
    }
    if let Some(origin) = text(header::ORIGIN.as_str()) {
        let same = origin
            .split_once("://")
            .is_some_and(|(_, rest)| Some(rest) == host);
        if !same {
            return Some(format!("cross-origin request refused (Origin: {origin})"));
        }
    }
    let bearer = text(header::AUTHORIZATION.as_str()).is_some_and(|v| v.starts_with("Bearer "));
    if h.get(CSRF_HEADER).is_none() && !bearer {
        return Some(format!(
            "a state-changing request over HTTP needs the header `{CSRF_HEADER}: 1` or `Authorization: Bearer TOKEN`"
        ));
    }
    None
}

/// `host` of `host:port` (an IPv6 address keeps its brackets).
fn host_name(h: &str) -> &str {
    if h.starts_with('[') {
        return h.split_inclusive(']').next().unwrap_or(h);
    }
    h.rsplit_once(':').map(|(n, _)| n).unwrap_or(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    const LO: Guard = Guard { loopback: true };
    const ANY: Guard = Guard { loopback: false };

    #[test]
    fn reads_pass_and_writes_need_the_header() {
        let h = headers(&[("host", "127.0.0.1:4000")]);
        assert_eq!(refusal(LO, &Method::GET, &h), None);
        assert!(refusal(LO, &Method::POST, &h)
            .unwrap()
            .contains("x-tug-csrf"));
        let h = headers(&[("host", "127.0.0.1:4000"), ("x-tug-csrf", "1")]);
        assert_eq!(refusal(LO, &Method::POST, &h), None);
        let h = headers(&[("host", "10.0.0.5:4000"), ("authorization", "Bearer x")]);
        assert_eq!(refusal(ANY, &Method::POST, &h), None);
    }

    #[test]
    fn cross_site_writes_are_refused_even_with_the_header() {
        let h = headers(&[
            ("host", "127.0.0.1:4000"),
            ("x-tug-csrf", "1"),
            ("origin", "http://evil.example"),
        ]);
        assert!(refusal(LO, &Method::POST, &h).unwrap().contains("Origin"));
        let h = headers(&[
            ("host", "10.0.0.5:4000"),
            ("x-tug-csrf", "1"),
            ("sec-fetch-site", "cross-site"),
        ]);
        assert!(refusal(ANY, &Method::POST, &h)
            .unwrap()
            .contains("Sec-Fetch-Site"));
        let h = headers(&[
            ("host", "10.0.0.5:4000"),
            ("x-tug-csrf", "1"),
            ("origin", "http://10.0.0.5:4000"),
            ("sec-fetch-site", "same-origin"),
        ]);
        assert_eq!(refusal(ANY, &Method::POST, &h), None);
    }

    #[test]
    fn loopback_answers_only_loopback_names() {
        for ok in ["127.0.0.1:1", "localhost:80", "[::1]:9"] {
            assert_eq!(refusal(LO, &Method::GET, &headers(&[("host", ok)])), None);
        }
        for bad in ["rebound.example:4000", "127.0.0.1.evil:1"] {
            assert!(refusal(LO, &Method::GET, &headers(&[("host", bad)])).is_some());
        }
        assert_eq!(refusal(LO, &Method::GET, &HeaderMap::new()), None);
        // Beyond loopback the token decides, whatever the name.
        assert_eq!(
            refusal(ANY, &Method::GET, &headers(&[("host", "tug.lan:1")])),
            None
        );
    }

    #[test]
    fn the_cookie_is_http_only_and_same_site_strict() {
        let c = cookie("abc", None);
        let c = c.to_str().unwrap();
        assert!(c.starts_with("tug_token=abc;"));
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Strict"));
    }
}
