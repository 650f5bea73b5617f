//! The ledger: the SQLite file in `paths.state` that remembers what the filesystem cannot
//! (when a release was first seen public and when it was corrected). WAL mode and
//! `synchronous=FULL`: a committed record survives a crash or a power cut. The schema is
//! versioned by `PRAGMA user_version` and migrated forward on open.
//!
//! One `Ledger` owns one connection; callers that need it from async code hand it to a
//! blocking task rather than sharing it behind a mutex.

mod audience;
mod deliveries;
mod digests;
mod erasure;
mod identities;
mod lock;
mod optouts;
mod outbox;
mod owner;
mod publications;
mod revisions;
mod seams;
mod subscribers;
mod tests_sent;

pub use crate::release::revision::Notice;
pub use audience::{AudienceRow, Filling, MEDIA, Skipped, SourceState};
pub use deliveries::{Decided, Delivery, DeliveryState, Due, Outcome, Pending};
pub use digests::{DigestRow, NewDigest};
pub use erasure::{Export, OptedOut};
pub use lock::{LockError, PublisherLock, SendLock};
pub use optouts::OptOutSource;
pub use outbox::{Attachment, Letter, LetterOutcome, OutboxRow, OutboxState, Queued};
pub use owner::{Handle, Owner};
pub use publications::{History, MailDecision, Publication, Recorded, Seen};
pub use seams::{Audience, Deliveries, OptOuts, Publishing, Sightings};
pub use subscribers::{Choices, Confirmed, SignupRow, SubscriberRow};
pub use tests_sent::TestSend;

use std::path::Path;

use rusqlite::Connection;

use crate::optout::{ErasureKey, TokenKey};

/// Schema migrations, in order; `user_version` counts how many have run.
const MIGRATIONS: &[&str] = &[
    "CREATE TABLE revisions (
        release_id TEXT PRIMARY KEY,
        hash TEXT NOT NULL,
        first_seen TEXT NOT NULL,
        updated TEXT
    ) STRICT;",
    // Opt-outs: the current set, and every change ever made to it.
    "CREATE TABLE optouts (
        address TEXT PRIMARY KEY,
        at TEXT NOT NULL,
        source TEXT NOT NULL
    ) STRICT;
    CREATE TABLE optout_log (
        id INTEGER PRIMARY KEY,
        address TEXT NOT NULL,
        action TEXT NOT NULL CHECK (action IN ('unsubscribe', 'resubscribe')),
        at TEXT NOT NULL,
        source TEXT NOT NULL
    ) STRICT;",
    // Mail: one dispatch per (release, version); one delivery per recipient of it.
    "CREATE TABLE dispatches (
        release_id TEXT NOT NULL,
        version INTEGER NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('auto', 'manual', 'update', 'late')),
        created_at TEXT NOT NULL,
        content_hash TEXT NOT NULL,
        PRIMARY KEY (release_id, version)
    ) STRICT;
    CREATE TABLE deliveries (
        release_id TEXT NOT NULL,
        version INTEGER NOT NULL,
        address TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('queued', 'sending', 'sent', 'deferred', 'failed', 'unknown', 'cancelled')),
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt TEXT,
        last_reply TEXT,
        message_id TEXT NOT NULL,
        queued_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        sent_at TEXT,
        PRIMARY KEY (release_id, version, address)
    ) STRICT;
    CREATE INDEX deliveries_waiting ON deliveries (release_id, version, state, address);",
    // The daemon asks at every wake-up which dispatches wait; most rows are long sent.
    "CREATE INDEX deliveries_pending ON deliveries (state, release_id, version)
        WHERE state IN ('queued', 'deferred', 'unknown', 'sending');",
    // What a published release's withdrawal notice shows once its file is deleted.
    "CREATE TABLE notices (
        release_id TEXT PRIMARY KEY,
        slug TEXT NOT NULL,
        title TEXT NOT NULL,
        date TEXT NOT NULL,
        lang TEXT NOT NULL
    ) STRICT;",
    // `send --to`: test messages, never part of a dispatch.
    "CREATE TABLE test_sends (
        id INTEGER PRIMARY KEY,
        release_id TEXT NOT NULL,
        address TEXT NOT NULL,
        message_id TEXT NOT NULL,
        at TEXT NOT NULL,
        outcome TEXT NOT NULL
    ) STRICT;",
    // Release identity: the id pinned to each file (`release::identity`), and every slug a
    // release was public at (its old URLs redirect to the new one).
    "CREATE TABLE identities (
        file TEXT PRIMARY KEY,
        release_id TEXT NOT NULL,
        title TEXT NOT NULL,
        text TEXT NOT NULL,
        gone_at TEXT
    ) STRICT;
    CREATE TABLE slugs (
        release_id TEXT NOT NULL,
        slug TEXT NOT NULL,
        PRIMARY KEY (release_id, slug)
    ) STRICT;",
    // The latest build instant recorded (one row): a clock read earlier than it is set
    // back, and such a build records nothing and unpublishes nothing.
    "CREATE TABLE clock (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        latest TEXT NOT NULL
    ) STRICT;",
    // The audience (`audience.rs`): rows of each source by generation, the generation
    // readers see, and a dispatch's fill from it (the generation and the last address
    // filled; `fill_after` NULL: nothing left to fill).
    "CREATE TABLE audience (
        source TEXT NOT NULL,
        generation INTEGER NOT NULL,
        address TEXT NOT NULL,
        email TEXT NOT NULL,
        name TEXT NOT NULL,
        outlet TEXT NOT NULL,
        lang TEXT,
        topics TEXT NOT NULL,
        line INTEGER NOT NULL,
        PRIMARY KEY (source, generation, address)
    ) STRICT;
    CREATE TABLE audience_sources (
        source TEXT PRIMARY KEY,
        current INTEGER,
        latest INTEGER NOT NULL,
        unreadable TEXT,
        stamp TEXT,
        rows INTEGER NOT NULL DEFAULT 0,
        synced_at TEXT
    ) STRICT;
    ALTER TABLE dispatches ADD COLUMN fill_generation INTEGER;
    ALTER TABLE dispatches ADD COLUMN fill_after TEXT;",
    // `pending`, asked at every plan: the earliest due of each waiting state of a dispatch
    // is one seek, however many rows wait.
    "CREATE INDEX deliveries_due ON deliveries (release_id, version, state, queued_at, next_attempt);",
    // Journalists who subscribed themselves (`subscribers.rs`): confirmed subscribers and
    // their own choices; sign-ups waiting for their confirmation link (only its hash is
    // kept); and the keyed hashes of erased addresses, the proof that keeps their opt-out.
    "CREATE TABLE subscribers (
        address TEXT PRIMARY KEY,
        email TEXT NOT NULL,
        name TEXT NOT NULL,
        outlet TEXT NOT NULL,
        topics TEXT NOT NULL,
        langs TEXT NOT NULL,
        delivery TEXT NOT NULL CHECK (delivery IN ('each', 'digest')),
        paused INTEGER NOT NULL DEFAULT 0,
        confirmed_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        digest_from TEXT NOT NULL
    ) STRICT;
    CREATE TABLE signups (
        token_hash TEXT PRIMARY KEY,
        address TEXT NOT NULL,
        email TEXT NOT NULL,
        name TEXT NOT NULL,
        outlet TEXT NOT NULL,
        topics TEXT NOT NULL,
        langs TEXT NOT NULL,
        delivery TEXT NOT NULL CHECK (delivery IN ('each', 'digest')),
        created_at TEXT NOT NULL,
        expires_at TEXT NOT NULL
    ) STRICT;
    CREATE INDEX signups_address ON signups (address);
    CREATE INDEX signups_expiry ON signups (expires_at);
    CREATE TABLE erasures (
        hash TEXT PRIMARY KEY,
        at TEXT NOT NULL
    ) STRICT;",
    // The outbox (`outbox.rs`): transactional mail that leaves at once, whatever the
    // dispatch window (a sign-up's confirmation first); its text and HTML, which carry a
    // token, are blanked once it is sent or given up. And the sign-up form's limit per
    // address: when a confirmation was last mailed to each keyed hash of an address.
    "CREATE TABLE outbox (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL,
        address TEXT NOT NULL,
        recipient TEXT NOT NULL,
        name TEXT NOT NULL,
        lang TEXT NOT NULL,
        subject TEXT NOT NULL,
        text TEXT NOT NULL,
        html TEXT NOT NULL,
        attachments TEXT NOT NULL,
        message_id TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('queued', 'sending', 'sent', 'failed')),
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt TEXT NOT NULL,
        last_reply TEXT,
        created_at TEXT NOT NULL,
        sent_at TEXT
    ) STRICT;
    CREATE INDEX outbox_waiting ON outbox (next_attempt) WHERE state IN ('queued', 'sending');
    CREATE INDEX outbox_address ON outbox (address);
    CREATE TABLE signup_limits (
        key TEXT PRIMARY KEY,
        last_mail TEXT NOT NULL
    ) STRICT;
    CREATE INDEX signup_limits_age ON signup_limits (last_mail);",
    // Digests (`digests.rs`): one per (subscriber address, period), exactly once, with the
    // release ids it holds and a delivery's state; `digests_waiting` is what the daemon
    // asks at every plan.
    "CREATE TABLE digests (
        address TEXT NOT NULL,
        period TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('queued', 'sending', 'sent', 'deferred', 'failed', 'unknown', 'cancelled')),
        releases TEXT NOT NULL,
        message_id TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt TEXT,
        last_reply TEXT,
        queued_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        sent_at TEXT,
        PRIMARY KEY (address, period)
    ) STRICT;
    CREATE INDEX digests_waiting ON digests (state, period, address)
        WHERE state IN ('queued', 'deferred', 'unknown', 'sending');",
    // The releases a copy of each digest may have carried to its subscriber (sent with
    // it, or held when a crash left it unknown): never put in a later digest.
    "ALTER TABLE digests ADD COLUMN carried TEXT NOT NULL DEFAULT '';",
];

pub const FILE_NAME: &str = "pressroom.db";

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("the ledger {path}: {source}")]
    Sqlite {
        path: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error("cannot create the state folder {path}: {source}")]
    Folder {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the ledger {path} was deleted and cannot be written back")]
    Gone { path: String },
    #[error("the ledger {path} was replaced by another file: restart pressroom to use it")]
    Replaced { path: String },
    #[error("the ledger {path} is closed (pressroom is stopping)")]
    Closed { path: String },
    #[error("the ledger {path}: {source}")]
    Key {
        path: String,
        #[source]
        source: crate::optout::KeyError,
    },
    #[error(
        "the ledger {path} was written by a newer pressroom (schema {found}, this one knows {known})"
    )]
    TooNew {
        path: String,
        found: usize,
        known: usize,
    },
}

impl LedgerError {
    /// Another connection held the write lock past the busy timeout: worth trying again.
    pub fn is_busy(&self) -> bool {
        matches!(
            self,
            LedgerError::Sqlite { source: rusqlite::Error::SqliteFailure(e, _), .. }
                if matches!(e.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
        )
    }
}

pub struct Ledger {
    conn: Connection,
    path: String,
    /// The key of erased addresses' hashes (`erasures`), from the secret the tokens use:
    /// the ledger itself tells an erased address wherever it decides who is mailed.
    erasure: ErasureKey,
    /// The file this connection opened, to tell when it is deleted or replaced under us.
    file: Option<FileId>,
}

/// A file's identity: device and inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileId {
    dev: u64,
    ino: u64,
}

impl FileId {
    fn of(path: &Path) -> Option<FileId> {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(path).ok().map(|m| FileId {
            dev: m.dev(),
            ino: m.ino(),
        })
    }
}

/// What is at the ledger's path now, compared with the file the connection holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileState {
    /// The file we opened.
    Ours,
    /// Nothing: it was deleted (the connection still holds the unlinked file).
    Missing,
    /// Another file: it was replaced (a restore, a copy over it).
    Replaced,
}

impl Ledger {
    /// Opens (creating if needed) the ledger in the state folder.
    pub fn open_in(state_dir: &Path) -> Result<Ledger, LedgerError> {
        std::fs::create_dir_all(state_dir).map_err(|source| LedgerError::Folder {
            path: state_dir.display().to_string(),
            source,
        })?;
        Ledger::open(&state_dir.join(FILE_NAME))
    }

    /// Opens the ledger at `path`, with the key of its state folder (the folder it is in;
    /// systemd's credential when there is one), created there at first use.
    pub fn open(path: &Path) -> Result<Ledger, LedgerError> {
        let folder = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let key = TokenKey::for_state(folder).map_err(|source| LedgerError::Key {
            path: path.display().to_string(),
            source,
        })?;
        Ledger::open_with(path, key.erasure_key())
    }

    fn open_with(path: &Path, erasure: ErasureKey) -> Result<Ledger, LedgerError> {
        let shown = path.display().to_string();
        let err = |source| LedgerError::Sqlite {
            path: shown.clone(),
            source,
        };
        let conn = Connection::open(path).map_err(err)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(err)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(err)?;
        conn.pragma_update(None, "foreign_keys", true)
            .map_err(err)?;
        // Deleted rows are overwritten with zeros where that costs no extra write
        // (`fast`: a freed cell on a page written anyway), so an opt-out lifted or a
        // sign-up purged leaves no address in the file's free space; an erase zeroes
        // everything it frees (`erasure`). Deleting 100,000 deliveries took 24 ms so,
        // 12 ms without and about 95 ms with `secure_delete` fully on (debug build).
        conn.pragma_update(None, "secure_delete", "fast")
            .map_err(err)?;
        let file = FileId::of(path);
        let mut ledger = Ledger {
            conn,
            path: shown,
            erasure,
            file,
        };
        ledger.migrate()?;
        Ok(ledger)
    }

    /// The path of the ledger's file, as shown in messages.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Whether the file at the ledger's path is still the one this connection writes to.
    pub fn file_state(&self) -> FileState {
        match (FileId::of(Path::new(&self.path)), self.file) {
            (None, _) => FileState::Missing,
            (Some(now), Some(opened)) if now == opened => FileState::Ours,
            (Some(_), None) => FileState::Ours,
            (Some(_), Some(_)) => FileState::Replaced,
        }
    }

    /// Writes the open ledger back to its path (after the file was deleted under us), and
    /// opens that copy: nothing recorded is lost. An error if anything is at the path.
    pub fn restore(&mut self) -> Result<(), LedgerError> {
        let path = self.path.clone();
        *self = self.copy_to(Path::new(&path))?;
        Ok(())
    }

    /// A copy of the ledger written to `path` (where nothing may be yet), opened: for
    /// writing a deleted ledger back, and for what-ifs (`send --dry-run`), where whatever is
    /// done to the copy leaves this one as it was.
    pub fn copy_to(&self, path: &Path) -> Result<Ledger, LedgerError> {
        let target = path.to_string_lossy().into_owned();
        self.conn
            .execute("VACUUM INTO ?1", [&target])
            .map_err(self.err())?;
        Ledger::open_with(path, self.erasure.clone())
    }

    /// A write transaction that takes the write lock at once (`BEGIN IMMEDIATE`): a
    /// deferred one that read first and then wrote failed with SQLITE_BUSY_SNAPSHOT, past
    /// the busy timeout, whenever another connection wrote in between.
    fn write(&mut self) -> Result<rusqlite::Transaction<'_>, LedgerError> {
        let err = self.err_owned();
        self.conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(err)
    }

    fn err(&self) -> impl Fn(rusqlite::Error) -> LedgerError + '_ {
        move |source| LedgerError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    /// An error mapper that does not borrow the ledger (for use inside transactions).
    fn err_owned(&self) -> impl Fn(rusqlite::Error) -> LedgerError + use<> {
        let path = self.path.clone();
        move |source| LedgerError::Sqlite {
            path: path.clone(),
            source,
        }
    }

    fn migrate(&mut self) -> Result<(), LedgerError> {
        let version: i64 = self
            .conn
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .map_err(self.err())?;
        let version = usize::try_from(version).unwrap_or(usize::MAX);
        if version > MIGRATIONS.len() {
            return Err(LedgerError::TooNew {
                path: self.path.clone(),
                found: version,
                known: MIGRATIONS.len(),
            });
        }
        let path = self.path.clone();
        let err = move |source| LedgerError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(&err)?;
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version) {
            tx.execute_batch(sql).map_err(&err)?;
            tx.pragma_update(None, "user_version", i as i64 + 1)
                .map_err(&err)?;
        }
        tx.commit().map_err(&err)
    }
}
