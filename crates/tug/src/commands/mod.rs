pub mod agent;
pub mod history;
pub mod spec;
pub mod stack;
