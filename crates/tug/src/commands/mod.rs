pub mod dockerfile;
pub mod lint;
pub mod spec;
pub mod stack;
