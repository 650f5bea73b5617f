//! `pressroom`: parses the command line, runs the command, prints the error chain.
//! Exit codes: 0 success; 1 the input has errors (each printed as path:line:col);
//! 2 the command could not run (bad arguments, unreadable config, IO failure).

use std::process::ExitCode;

use clap::Parser;

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
