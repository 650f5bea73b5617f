//! What `send` shows while it runs, and Ctrl-C: a bar with rate and ETA on a terminal, a
//! plain line every 10 s otherwise (a log, a pipe, cron); SIGINT and SIGTERM stop the run
//! between two messages, a second one stops the process at once.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use crate::mail::sender::Summary;

/// How often a plain progress line is written when stderr is not a terminal.
const LINE_EVERY: Duration = Duration::from_secs(10);

/// Progress of one send of `total` messages.
pub enum Progress {
    Bar(ProgressBar),
    Lines {
        total: u64,
        started: Instant,
        last: Mutex<Instant>,
    },
}

impl Progress {
    pub fn new(total: u64) -> Progress {
        let now = Instant::now();
        if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new(total);
            bar.set_style(
                ProgressStyle::with_template("{bar:40} {pos}/{len} {per_sec:.dim} ETA {eta} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            Progress::Bar(bar)
        } else {
            Progress::Lines {
                total,
                started: now,
                last: Mutex::new(now),
            }
        }
    }

    pub fn update(&self, s: &Summary) {
        match self {
            Progress::Bar(bar) => {
                bar.set_position(s.total() as u64);
                bar.set_message(format!(
                    "{} sent, {} deferred, {} failed",
                    s.sent, s.deferred, s.failed
                ));
            }
            Progress::Lines {
                total,
                started,
                last,
            } => {
                let now = Instant::now();
                let mut last = last.lock().unwrap_or_else(|p| p.into_inner());
                if now.duration_since(*last) >= LINE_EVERY {
                    *last = now;
                    eprintln!("{}", line(s, *total, now.duration_since(*started)));
                }
            }
        }
    }

    /// A line for the person at the terminal (above the bar if there is one), for a
    /// thread or task of its own.
    pub fn notice(&self) -> impl Fn(&str) + Send + 'static {
        let bar = match self {
            Progress::Bar(bar) => Some(bar.clone()),
            Progress::Lines { .. } => None,
        };
        move |text: &str| match &bar {
            Some(bar) => bar.suspend(|| eprintln!("{text}")),
            None => eprintln!("{text}"),
        }
    }

    pub fn finish(&self) {
        if let Progress::Bar(bar) = self {
            bar.finish_and_clear();
        }
    }
}

/// The plain progress line: how many of how many, what became of them, the rate so far
/// and the time left at that rate.
pub fn line(s: &Summary, total: u64, elapsed: Duration) -> String {
    let done = s.total() as u64;
    let percent = (done * 100).checked_div(total).unwrap_or(100);
    let mut line = format!(
        "{done}/{total} ({percent}%): {} sent, {} deferred, {} failed, {} cancelled",
        s.sent, s.deferred, s.failed, s.cancelled
    );
    let seconds = elapsed.as_secs_f64();
    if done > 0 && seconds > 0.0 {
        let rate = done as f64 / seconds;
        let left = Duration::from_secs((total.saturating_sub(done) as f64 / rate).ceil() as u64);
        line.push_str(&format!(
            "; {rate:.1} messages/s, about {} left",
            humantime::format_duration(left)
        ));
    }
    line
}

/// The signal that interrupted the send, once one has: SIGINT (Ctrl-C) or SIGTERM.
#[derive(Clone, Default)]
pub struct Interrupt(Arc<AtomicI32>);

impl Interrupt {
    /// From now on SIGINT and SIGTERM no longer end the process: the first is recorded
    /// here (the sender asks `stopped` between messages), and `notice` is shown; a second
    /// one exits at once with the shell's code for it (what is in flight is then left
    /// `sending`, and the next send resends it as `unknown`, with the same Message-ID, as
    /// after a crash). The listener is a task on `runtime`, which the send drives.
    pub fn listen(
        runtime: &tokio::runtime::Runtime,
        notice: impl Fn(&str) + Send + 'static,
    ) -> std::io::Result<Interrupt> {
        use tokio::signal::unix::{SignalKind, signal};
        let _inside = runtime.enter();
        let mut int = signal(SignalKind::interrupt())?;
        let mut term = signal(SignalKind::terminate())?;
        let interrupt = Interrupt::default();
        let flag = interrupt.0.clone();
        runtime.spawn(async move {
            let first = tokio::select! {
                _ = int.recv() => libc::SIGINT,
                _ = term.recv() => libc::SIGTERM,
            };
            flag.store(first, Ordering::SeqCst);
            notice(
                "interrupted: finishing the messages in flight and recording them (again to stop at once)",
            );
            let again = tokio::select! {
                _ = int.recv() => libc::SIGINT,
                _ = term.recv() => libc::SIGTERM,
            };
            std::process::exit(128 + again);
        });
        Ok(interrupt)
    }

    /// The signal received, if any.
    pub fn signal(&self) -> Option<i32> {
        match self.0.load(Ordering::SeqCst) {
            0 => None,
            n => Some(n),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_line_says_how_far_how_fast_and_how_long_is_left() {
        let s = Summary {
            sent: 118,
            deferred: 1,
            failed: 1,
            cancelled: 0,
        };
        assert_eq!(
            line(&s, 300, Duration::from_secs(10)),
            "120/300 (40%): 118 sent, 1 deferred, 1 failed, 0 cancelled; 12.0 messages/s, about 15s left"
        );
        assert_eq!(
            line(&Summary::default(), 300, Duration::ZERO),
            "0/300 (0%): 0 sent, 0 deferred, 0 failed, 0 cancelled",
            "no rate before the first message"
        );
        let s = Summary {
            sent: 10,
            ..Summary::default()
        };
        assert_eq!(
            line(&s, 4010, Duration::from_secs(10)),
            "10/4010 (0%): 10 sent, 0 deferred, 0 failed, 0 cancelled; 1.0 messages/s, about 1h 6m 40s left"
        );
    }
}
