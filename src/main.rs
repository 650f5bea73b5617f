//! `pressroom`: parses the command line, runs the command, prints the error chain.
//! Exit codes: 0 success; 1 the input has errors (each printed as path:line:col);
//! 2 the command could not run (bad arguments, unreadable config, IO failure);
//! 130 `send` was stopped by Ctrl-C (SIGINT), 143 by SIGTERM: the messages in flight were
//! finished and recorded, and the next `send` mails the rest (the shell's 128 + signal; a
//! second signal ends the process at once with the same code).

use std::process::ExitCode;

use clap::Parser;

/// mimalloc keeps allocations of each size class on pages of their own and returns pages
/// that empty: after a large build the daemon's resident memory falls back to what it
/// uses, where glibc's heap stayed pinned by small live objects between freed texts.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc.h (v2 and v3; the crate names no constant for it).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Pages that empty go back to the system at once rather than a second later: a second
/// later, an idle daemon makes no allocation that would return them, and the memory a
/// burst of HTTP requests or a build freed stayed resident (47 MiB idle after the daemon
/// bench's saves, 42 MiB with this). Neither the save-to-feed latency nor mail throughput
/// measured any slower.
fn return_freed_pages_at_once() {
    // SAFETY: sets one of the allocator's options, which it reads when it purges.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0) };
}

fn main() -> ExitCode {
    return_freed_pages_at_once();
    let args = pressroom::cli::Args::parse();
    match pressroom::cli::run(args) {
        Ok(outcome) => ExitCode::from(outcome as u8),
        Err(e) => {
            eprintln!("pressroom: {e:#}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_option_set_is_the_purge_delay() {
        // mimalloc v3's default purge delay is 1,000 ms: a renumbered option would show.
        // SAFETY: reads an option.
        let default = unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) };
        assert_eq!(default, 1000);
        return_freed_pages_at_once();
        // SAFETY: reads an option.
        assert_eq!(
            unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) },
            0
        );
    }
}
