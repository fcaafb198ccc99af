//! The agent of a stack and its API.
//!
//! The agent stays with a stack after `tug up -d`. When the engine reports a
//! change of one of its containers (and every 30 s, and after reconnecting to
//! the engine) it takes the stack's apply lock (trying again a second later
//! when a `tug` command holds it), reads the desired state from the newest
//! succeeded revision in the history store (pinned to the images that
//! revision ran), and lets the engine's
//! [`Supervisor`](tug_engine::agent::Supervisor) restart and replace; a
//! converge runs in a task of its own. Readers take the live snapshot.
//!
//! It serves an HTTP/JSON API on `<state dir>/agent.sock`, and the same API
//! over TCP on `dashboard.listen` (loopback on a port chosen at start when
//! unset; any other address requires the token of [`auth`]):
//!
//! | method and path | what |
//! |---|---|
//! | `GET /v1/agent` | pid, stack, socket |
//! | `GET /v1/ps` | the live snapshot: replicas with health and notes (`backoff 8s`), the converge in progress |
//! | `POST /v1/resync` | read the replicas from the engine again (after a `tug up`), then the snapshot |
//! | `GET /v1/openapi.json` | the OpenAPI document of this API |
//! | `GET /v1/history?limit=N` | revisions, newest first |
//! | `GET /v1/events?after=ID&limit=N` | events, oldest first |
//! | `GET /v1/events/stream?after=ID` | the same, then new ones, as server-sent events |
//! | `GET /v1/logs?service=S&tail=N&follow=true` | log lines as NDJSON, streamed |
//! | `POST /v1/scale` `{"pairs": ["api=3"]}` | scale, recorded as a revision |
//! | `POST /v1/restart` `{"services": []}` | rolling restart |
//! | `POST /v1/rollback` `{"to": null}` | back to the previous good revision |
//! | `POST /v1/down` `{"volumes": false}` | remove the stack, then the agent exits |
//! | `GET /v1/stats` | the last CPU and memory sample of each replica |
//! | `GET /v1/history/{id}` | one revision with its spec |
//! | `GET /v1/findings` | scan and lint findings of the stack's files, per revision |
//! | `GET /v1/pipelines`, `GET /v1/pipelines/{id}` | pipeline runs; one with its jobs' logs |
//! | `GET /` | the dashboard ([`server::dashboard`]) |
//!
//! Request and response types are in [`api`]. Errors answer
//! `{"error": "...", "invalid": bool}` with status 400 (bad input), 404 (no
//! such route), 413 (a body over 64 KiB) or 500.

pub mod api;
pub mod auth;
pub mod client;
mod logfwd;
pub mod openapi;
pub mod server;
