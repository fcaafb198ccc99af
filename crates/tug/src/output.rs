//! Output formats shared by every command.

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// Coloured tables and progress for people
    Table,
    /// One JSON document for machines
    Json,
}
