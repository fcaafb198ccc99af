pub mod spec;
pub mod stack;
