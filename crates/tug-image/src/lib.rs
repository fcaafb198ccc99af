//! Images: Dockerfiles (parse, lint, generate) and OCI images (build, push, analyse).

pub mod dockerfile;
pub mod generate;
pub mod lint;
