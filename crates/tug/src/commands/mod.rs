pub mod agent;
pub mod history;
pub mod import;
pub mod spec;
pub mod stack;
