pub mod lint;
pub mod spec;
