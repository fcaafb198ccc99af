pub mod scan;
pub mod spec;
