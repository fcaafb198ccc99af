pub mod import;
pub mod spec;
pub mod stack;
