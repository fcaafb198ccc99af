pub mod spec;
pub mod scan;
