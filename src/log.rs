//! Logs: tracing to stderr (journald keeps it), human-readable by default, JSON lines on
//! request. Nothing logged is ever served over HTTP.

use std::io::IsTerminal;

use tracing_subscriber::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Human,
    Json,
}

pub fn init(format: Format) {
    let builder = fmt()
        .with_writer(std::io::stderr)
        .with_max_level(tracing::Level::INFO)
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal());
    let _ = match format {
        Format::Human => builder.try_init(),
        Format::Json => builder.json().flatten_event(true).try_init(),
    };
}
