//! The ledger's one owner in the daemon: a thread that holds the only connection and runs
//! every request in turn (the builder's sightings, each mail run's claims and outcomes, the
//! HTTP server's opt-outs, the loop's reads). Nothing in the process writes the file past
//! it, so no two writers of ours can collide; another process (`pressroom unsubscribe`, a
//! manual `send`) meets it at SQLite's write lock (`BEGIN IMMEDIATE`, busy timeout), and a
//! request that still finds the lock taken is tried again here, not failed.
//!
//! Before each request the owner checks that the file at the ledger's path is still the
//! one it opened. Deleted: it is written back from the open connection, so nothing
//! recorded is lost. Replaced by another file: every request is refused until the
//! daemon restarts (that file may be a restore the admin meant; writing to the old one
//! would split the state). Either is reported once.

use std::sync::mpsc;
use std::time::Duration;

use super::{FileState, Ledger, LedgerError};

type Job = Box<dyn FnOnce(Result<&mut Ledger, LedgerError>) + Send>;

enum Message {
    Run(Job),
    Stop,
}

/// How often, and after how long, a request that found the write lock taken is tried
/// again (each try itself waits SQLite's busy timeout).
const BUSY_RETRIES: [Duration; 3] = [
    Duration::from_millis(100),
    Duration::from_millis(500),
    Duration::from_secs(2),
];

/// The owner thread; `stop` ends it once the requests before are done.
pub struct Owner {
    handle: Handle,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// A way to ask the owner; cheap to clone.
#[derive(Clone)]
pub struct Handle {
    tx: mpsc::Sender<Message>,
    path: String,
}

impl Owner {
    pub fn start(ledger: Ledger) -> std::io::Result<Owner> {
        let (tx, rx) = mpsc::channel();
        let path = ledger.path().to_string();
        let thread = std::thread::Builder::new()
            .name("ledger".into())
            .spawn(move || serve(ledger, rx))?;
        Ok(Owner {
            handle: Handle { tx, path },
            thread: Some(thread),
        })
    }

    pub fn handle(&self) -> Handle {
        self.handle.clone()
    }

    /// Runs what was asked before, then ends the thread; later requests get an error.
    pub fn stop(mut self) {
        let _ = self.handle.tx.send(Message::Stop);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Owner {
    fn drop(&mut self) {
        if let Some(thread) = self.thread.take() {
            let _ = self.handle.tx.send(Message::Stop);
            let _ = thread.join();
        }
    }
}

fn serve(mut ledger: Ledger, rx: mpsc::Receiver<Message>) {
    let mut said = None;
    while let Ok(Message::Run(job)) = rx.recv() {
        match check(&mut ledger, &mut said) {
            Ok(()) => job(Ok(&mut ledger)),
            Err(e) => job(Err(e)),
        }
    }
}

/// Whether the file is still ours; a deleted one is written back first.
fn check(ledger: &mut Ledger, said: &mut Option<FileState>) -> Result<(), LedgerError> {
    let state = ledger.file_state();
    let report = *said != Some(state);
    *said = Some(state);
    match state {
        FileState::Ours => Ok(()),
        FileState::Missing => match ledger.restore() {
            Ok(()) => {
                tracing::error!(
                    "the ledger {} was deleted while pressroom ran: it was written back from the open copy, nothing is lost",
                    ledger.path()
                );
                *said = Some(FileState::Ours);
                Ok(())
            }
            Err(e) => {
                if report {
                    tracing::error!(
                        "the ledger {} was deleted while pressroom ran and cannot be written back ({e}): nothing is recorded or mailed until it can",
                        ledger.path()
                    );
                }
                Err(LedgerError::Gone {
                    path: ledger.path().to_string(),
                })
            }
        },
        FileState::Replaced => {
            if report {
                tracing::error!(
                    "the ledger {} was replaced by another file while pressroom ran: nothing is recorded or mailed until pressroom is restarted on it",
                    ledger.path()
                );
            }
            Err(LedgerError::Replaced {
                path: ledger.path().to_string(),
            })
        }
    }
}

fn retrying<R>(
    ledger: &mut Ledger,
    f: &mut impl FnMut(&mut Ledger) -> Result<R, LedgerError>,
) -> Result<R, LedgerError> {
    let mut waits = BUSY_RETRIES.iter();
    loop {
        match f(ledger) {
            Err(e) if e.is_busy() => match waits.next() {
                Some(wait) => {
                    tracing::warn!("{e}: trying again in {wait:?}");
                    std::thread::sleep(*wait);
                }
                None => return Err(e),
            },
            result => return result,
        }
    }
}

impl Handle {
    fn closed(&self) -> LedgerError {
        LedgerError::Closed {
            path: self.path.clone(),
        }
    }

    /// Runs `f` on the owner's thread and waits for its answer (from a thread that may
    /// block: the builder, a mail run, the loop inside `block_in_place`).
    pub fn call<R: Send + 'static>(
        &self,
        mut f: impl FnMut(&mut Ledger) -> Result<R, LedgerError> + Send + 'static,
    ) -> Result<R, LedgerError> {
        let (answer, answered) = mpsc::sync_channel(1);
        let job: Job = Box::new(move |ledger| {
            let _ = answer.send(ledger.and_then(|l| retrying(l, &mut f)));
        });
        self.tx.send(Message::Run(job)).map_err(|_| self.closed())?;
        answered.recv().map_err(|_| self.closed())?
    }

    /// `call` for async code (the HTTP server): the task waits, its worker does not.
    pub async fn call_async<R: Send + 'static>(
        &self,
        mut f: impl FnMut(&mut Ledger) -> Result<R, LedgerError> + Send + 'static,
    ) -> Result<R, LedgerError> {
        let (answer, answered) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |ledger| {
            let _ = answer.send(ledger.and_then(|l| retrying(l, &mut f)));
        });
        self.tx.send(Message::Run(job)).map_err(|_| self.closed())?;
        answered.await.map_err(|_| self.closed())?
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::OptOutSource;

    fn t(s: &str) -> chrono::DateTime<chrono::Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn a_deleted_ledger_is_written_back_with_everything_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let owner = Owner::start(Ledger::open_in(dir.path()).unwrap()).unwrap();
        let h = owner.handle();
        let at = t("2018-10-18T07:00:00Z");
        h.call(move |l| l.unsubscribe("a@example.org", OptOutSource::Command, at))
            .unwrap();
        std::fs::remove_file(dir.path().join(crate::ledger::FILE_NAME)).unwrap();
        let _ = std::fs::remove_file(dir.path().join("pressroom.db-wal"));
        let _ = std::fs::remove_file(dir.path().join("pressroom.db-shm"));
        h.call(move |l| l.unsubscribe("b@example.org", OptOutSource::Command, at))
            .unwrap();
        owner.stop();
        let l = Ledger::open_in(dir.path()).unwrap();
        assert!(l.is_opted_out("a@example.org").unwrap());
        assert!(l.is_opted_out("b@example.org").unwrap());
    }

    #[test]
    fn dropping_the_owner_answers_what_was_asked_then_closes() {
        let dir = tempfile::tempdir().unwrap();
        let owner = Owner::start(Ledger::open_in(dir.path()).unwrap()).unwrap();
        let h = owner.handle();
        let at = t("2018-10-18T07:00:00Z");
        let asked = std::thread::spawn({
            let h = h.clone();
            move || h.call(move |l| l.unsubscribe("a@example.org", OptOutSource::Command, at))
        });
        assert!(asked.join().unwrap().unwrap(), "recorded");
        drop(owner);
        assert!(matches!(
            h.call(|l| l.opted_out()),
            Err(LedgerError::Closed { .. })
        ));
        let l = Ledger::open_in(dir.path()).unwrap();
        assert!(l.is_opted_out("a@example.org").unwrap());
    }

    #[test]
    fn an_error_that_is_not_a_busy_lock_is_answered_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let owner = Owner::start(Ledger::open_in(dir.path()).unwrap()).unwrap();
        // Counted, not timed: a loaded machine must not fail it.
        let tries = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = std::sync::Arc::clone(&tries);
        let e = owner
            .handle()
            .call(move |l| {
                counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                Err::<(), _>(LedgerError::Gone {
                    path: l.path().to_string(),
                })
            })
            .unwrap_err();
        assert!(!e.is_busy(), "{e}");
        assert_eq!(
            tries.load(std::sync::atomic::Ordering::SeqCst),
            1,
            "tried again"
        );
    }

    #[test]
    fn a_replaced_ledger_refuses_every_request() {
        let dir = tempfile::tempdir().unwrap();
        let owner = Owner::start(Ledger::open_in(dir.path()).unwrap()).unwrap();
        let h = owner.handle();
        let path = dir.path().join(crate::ledger::FILE_NAME);
        let other = dir.path().join("other.db");
        drop(Ledger::open(&other).unwrap());
        std::fs::rename(&other, &path).unwrap();
        let e = h.call(|l| l.opted_out()).unwrap_err();
        assert!(matches!(e, LedgerError::Replaced { .. }), "{e}");
        assert!(h.call(|l| l.opted_out()).is_err(), "still refused");
        owner.stop();
        assert!(
            matches!(h.call(|l| l.opted_out()), Err(LedgerError::Closed { .. })),
            "after stop"
        );
    }
}
