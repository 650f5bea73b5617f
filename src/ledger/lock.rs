//! Locks on the state folder (flock; the kernel drops a lock when its holder dies, so a
//! crash never leaves one stuck):
//! - the send lock, `state/send.lock`: one process sends from a ledger at a time;
//! - the publisher's lock, `state/daemon.lock`: held by `pressroom run` for as long as it
//!   runs, so a one-shot `build` (perhaps under a wrong clock) never writes the served site
//!   or the ledger behind its back.

use std::fs::File;
use std::path::Path;

pub struct SendLock(#[allow(dead_code)] File);

/// Held by the running daemon: it alone publishes from this state folder.
pub struct PublisherLock(#[allow(dead_code)] File);

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("another pressroom process is sending from {state} (it holds {state}/send.lock)")]
    Busy { state: String },
    #[error(
        "`pressroom run` is publishing from {state} (it holds {state}/daemon.lock): it builds and records on its own"
    )]
    Publishing { state: String },
    #[error("cannot open {path}: {source}")]
    Open {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl SendLock {
    /// Takes the lock, or says who has it; never waits.
    pub fn acquire(state: &Path) -> Result<SendLock, LockError> {
        let file = take(state, "send.lock", Wait::No)?.ok_or_else(|| LockError::Busy {
            state: state.display().to_string(),
        })?;
        Ok(SendLock(file))
    }
}

impl PublisherLock {
    /// Takes the lock, or says that a daemon has it; never waits.
    pub fn acquire(state: &Path) -> Result<PublisherLock, LockError> {
        let file = take(state, "daemon.lock", Wait::No)?.ok_or_else(|| LockError::Publishing {
            state: state.display().to_string(),
        })?;
        Ok(PublisherLock(file))
    }

    /// Takes the lock, waiting while another process holds it (a one-shot build finishing).
    pub fn wait(state: &Path) -> Result<PublisherLock, LockError> {
        match take(state, "daemon.lock", Wait::No)? {
            Some(file) => Ok(PublisherLock(file)),
            None => {
                tracing::warn!(
                    "another pressroom process holds {}/daemon.lock: waiting for it",
                    state.display()
                );
                let file = take(state, "daemon.lock", Wait::Yes)?.ok_or_else(|| {
                    LockError::Publishing {
                        state: state.display().to_string(),
                    }
                })?;
                Ok(PublisherLock(file))
            }
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Wait {
    No,
    Yes,
}

/// The lock file `name` in `state`, locked; `None` if another process holds it (`Wait::No`).
fn take(state: &Path, name: &str, wait: Wait) -> Result<Option<File>, LockError> {
    let path = state.join(name);
    let open = |source| LockError::Open {
        path: path.display().to_string(),
        source,
    };
    std::fs::create_dir_all(state).map_err(open)?;
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(open)?;
    let how = match wait {
        Wait::No => rustix::fs::FlockOperation::NonBlockingLockExclusive,
        Wait::Yes => rustix::fs::FlockOperation::LockExclusive,
    };
    Ok(rustix::fs::flock(&file, how).ok().map(|()| file))
}
