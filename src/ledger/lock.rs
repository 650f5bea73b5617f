//! The send lock: one process sends from a ledger at a time (`state/send.lock`, flock). The
//! kernel drops the lock when its holder dies, so a crash never leaves it stuck.

use std::fs::File;
use std::path::Path;

pub struct SendLock(#[allow(dead_code)] File);

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("another pressroom process is sending from {state} (it holds {state}/send.lock)")]
    Busy { state: String },
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
        let path = state.join("send.lock");
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
        rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive).map_err(
            |_| LockError::Busy {
                state: state.display().to_string(),
            },
        )?;
        Ok(SendLock(file))
    }
}
