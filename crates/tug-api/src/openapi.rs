//! The OpenAPI document of the agent's API, generated from the types in
//! [`crate::api`] and served at `GET /v1/openapi.json`.

use crate::api::*;
use utoipa::OpenApi;

#[utoipa::path(get, path = "/v1/agent", responses((status = 200, body = AgentInfo)))]
#[allow(dead_code)]
fn agent() {}

#[utoipa::path(get, path = "/v1/ps", responses((status = 200, description = "the live snapshot; answers while a converge runs", body = Ps)))]
#[allow(dead_code)]
fn ps() {}

#[utoipa::path(get, path = "/v1/history", params(Page), responses(
    (status = 200, description = "revisions, newest first", body = [Revision]),
    (status = 400, body = ErrorBody)))]
#[allow(dead_code)]
fn history() {}

#[utoipa::path(get, path = "/v1/events", params(Page), responses(
    (status = 200, description = "recorded events after `after`, oldest first", body = [EventRecord]),
    (status = 400, body = ErrorBody)))]
#[allow(dead_code)]
fn events() {}

#[utoipa::path(get, path = "/v1/events/stream", params(Page), responses(
    (status = 200, description = "server-sent events: `id:` the event id, `data:` an EventRecord", content_type = "text/event-stream", body = String),
    (status = 400, body = ErrorBody)))]
#[allow(dead_code)]
fn event_stream() {}

#[utoipa::path(get, path = "/v1/logs", params(LogsQuery), responses(
    (status = 200, description = "log lines as NDJSON: {service, replica, stderr, text}", content_type = "application/x-ndjson", body = String),
    (status = 400, body = ErrorBody)))]
#[allow(dead_code)]
fn logs() {}

#[utoipa::path(post, path = "/v1/up", request_body = UpRequest, responses(
    (status = 200, description = "the converge's events as they happen, then its outcome: NDJSON of UpLine", content_type = "application/x-ndjson", body = UpLine),
    (status = 400, description = "bad input: not a stack, or another stack than the agent's", body = ErrorBody),
    (status = 413, description = "body over 4 MiB")))]
#[allow(dead_code)]
fn up() {}

#[utoipa::path(post, path = "/v1/scale", request_body = ScaleRequest, responses(
    (status = 200, body = Converged),
    (status = 400, description = "bad input: unknown service, replicas not a whole number from 0 to 256, or outside the service's `autoscale` min and max", body = ErrorBody),
    (status = 413, description = "body over 64 KiB"),
    (status = 500, body = ErrorBody)))]
#[allow(dead_code)]
fn scale() {}

#[utoipa::path(post, path = "/v1/restart", request_body = RestartRequest, responses(
    (status = 200, body = Restarted),
    (status = 400, body = ErrorBody),
    (status = 413, description = "body over 64 KiB"),
    (status = 500, body = ErrorBody)))]
#[allow(dead_code)]
fn restart() {}

#[utoipa::path(post, path = "/v1/rollback", request_body = RollbackRequest, responses(
    (status = 200, body = Converged),
    (status = 400, body = ErrorBody),
    (status = 413, description = "body over 64 KiB"),
    (status = 500, body = ErrorBody)))]
#[allow(dead_code)]
fn rollback() {}

#[utoipa::path(post, path = "/v1/down", request_body = DownRequest, responses(
    (status = 200, description = "removed; the agent then exits", body = Removed),
    (status = 400, body = ErrorBody),
    (status = 413, description = "body over 64 KiB"),
    (status = 500, body = ErrorBody)))]
#[allow(dead_code)]
fn down() {}

#[utoipa::path(post, path = "/v1/resync", responses((status = 200, description = "the snapshot, after reading the replicas from the engine again", body = Ps)))]
#[allow(dead_code)]
fn resync() {}

#[utoipa::path(get, path = "/v1/routes", responses((status = 200, description = "the gateway's routes and their replicas", body = Routes)))]
#[allow(dead_code)]
fn routes() {}

#[utoipa::path(get, path = "/metrics", responses((status = 200, description = "the gateway's metrics, Prometheus text format", content_type = "text/plain; version=0.0.4", body = String)))]
#[allow(dead_code)]
fn metrics() {}

#[utoipa::path(get, path = "/v1/stats", responses((status = 200, description = "the last sample of each replica's CPU time and memory (read by the agent every 5 s)", body = Stats)))]
#[allow(dead_code)]
fn stats() {}

#[utoipa::path(get, path = "/v1/history/{id}", params(("id" = i64, Path, description = "the revision")), responses(
    (status = 200, description = "one revision with its spec", body = Revision),
    (status = 400, body = ErrorBody),
    (status = 404, body = ErrorBody)))]
#[allow(dead_code)]
fn revision() {}

#[utoipa::path(get, path = "/v1/findings", responses((status = 200, description = "configuration and secret checks of the stack's files and the Dockerfile linter, computed once per revision", body = Findings)))]
#[allow(dead_code)]
fn findings() {}

#[utoipa::path(get, path = "/v1/pipelines", params(Page), responses(
    (status = 200, description = "pipeline runs, newest first", body = [PipelineRun]),
    (status = 400, body = ErrorBody)))]
#[allow(dead_code)]
fn pipelines() {}

#[utoipa::path(get, path = "/v1/pipelines/{id}", params(("id" = i64, Path, description = "the run")), responses(
    (status = 200, description = "a run with its jobs and the end of their logs", body = PipelineRunDetail),
    (status = 404, body = ErrorBody)))]
#[allow(dead_code)]
fn pipeline_run() {}

#[utoipa::path(post, path = "/login", request_body = LoginRequest, responses(
    (status = 204, description = "signed in: sets the `tug_token` cookie (HttpOnly, SameSite=Strict); only beyond loopback"),
    (status = 401, body = ErrorBody)))]
#[allow(dead_code)]
fn login() {}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "tug agent",
        description = "The API of a stack's agent, on the unix socket <state dir>/<stack>/agent.sock and on its HTTP listener (`dashboard.listen`). Over HTTP a state-changing request carries the header `X-Tug-Csrf: 1` or `Authorization: Bearer TOKEN`; beyond loopback every request carries the token."
    ),
    paths(
        agent,
        ps,
        history,
        events,
        event_stream,
        logs,
        up,
        scale,
        restart,
        rollback,
        down,
        routes,
        metrics,
        stats,
        revision,
        findings,
        pipelines,
        pipeline_run,
        login
    )
)]
struct Doc;

/// The document, as JSON.
pub fn document() -> String {
    Doc::openapi()
        .to_pretty_json()
        .unwrap_or_else(|_| "{}".into())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_document_names_every_route_and_type() {
        let doc: serde_json::Value = serde_json::from_str(&super::document()).unwrap();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
        for p in [
            "/v1/ps",
            "/v1/up",
            "/v1/scale",
            "/v1/events/stream",
            "/v1/down",
            "/v1/stats",
            "/v1/history/{id}",
            "/v1/findings",
            "/v1/pipelines/{id}",
        ] {
            assert!(doc["paths"].get(p).is_some(), "{p}");
        }
        assert!(doc["components"]["schemas"]["Ps"].is_object());
        assert!(doc["components"]["schemas"]["ScaleRequest"].is_object());
    }
}
