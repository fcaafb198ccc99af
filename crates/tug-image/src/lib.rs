//! Images: Dockerfiles (parse, lint, generate) and OCI images (build, push, analyse).
//!
//! - [`oci`]: reproducible images without a daemon: deterministic layers,
//!   Rust service images (`build_rust`), OCI layout and docker-archive output.
//! - [`registry`]: the OCI distribution API: push (blobs verified before the
//!   manifest), pull, mounts, chunked uploads, basic and bearer auth.
//! - [`analyze`]: per-layer files, wasted bytes and efficiency as dive counts
//!   them, with CI thresholds.
//! - [`dockerfile`]: a Dockerfile parser keeping every position, with RUN
//!   commands split by a real shell parser.
//! - [`lint`]: rules with hadolint's IDs and tug's own, as a static registry.
//! - [`generate`]: multi-stage Dockerfiles for Rust workspaces.

pub mod analyze;
pub mod dockerfile;
pub mod generate;
pub mod lint;
pub mod oci;
pub mod registry;
