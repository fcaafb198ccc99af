pub mod agent;
pub mod build;
pub mod history;
pub mod image;
pub mod import;
pub mod scan;
pub mod spec;
pub mod stack;
