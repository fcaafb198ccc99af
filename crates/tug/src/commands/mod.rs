pub mod import;
pub mod spec;
