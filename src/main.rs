//! `pressroom`: parses the command line, runs the command, prints the error chain.
//! Exit codes: 0 success; 1 the input has errors (each printed as path:line:col);
//! 2 the command could not run (bad arguments, unreadable config, IO failure).

use std::process::ExitCode;

use clap::Parser;

/// mimalloc keeps allocations of each size class on pages of their own and returns pages
/// that empty: after a large build the daemon's resident memory falls back to what it
/// uses, where glibc's heap stayed pinned by small live objects between freed texts.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args = pressroom::cli::Args::parse();
    match pressroom::cli::run(args) {
        Ok(outcome) => ExitCode::from(outcome as u8),
        Err(e) => {
            eprintln!("pressroom: {e:#}");
            ExitCode::from(2)
        }
    }
}
