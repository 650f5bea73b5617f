//! Opt-outs: who asked not to be mailed, and the log of every unsubscribe and resubscribe.
//! Addresses are stored lowercased. A write is committed before the caller answers the
//! person who asked, so an acknowledged opt-out is never lost.

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};

use super::{Ledger, LedgerError};

/// How an opt-out arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptOutSource {
    /// `pressroom unsubscribe` / `resubscribe`.
    Command,
    /// The confirmation page of an unsubscribe link.
    Link,
    /// RFC 8058 one-click POST from a mail client.
    OneClick,
    /// A mail to `[subscribe] unsubscribe_mailbox` (`unsubscribe --from-mail`).
    Mail,
    /// The preferences page of a mail's link ("leave").
    Preferences,
}

impl OptOutSource {
    fn as_str(self) -> &'static str {
        match self {
            OptOutSource::Command => "command",
            OptOutSource::Link => "link",
            OptOutSource::OneClick => "one-click",
            OptOutSource::Mail => "mail",
            OptOutSource::Preferences => "preferences",
        }
    }
}

impl Ledger {
    /// Records an opt-out. Returns false if the address was already opted out.
    pub fn unsubscribe(
        &mut self,
        address: &str,
        source: OptOutSource,
        at: DateTime<Utc>,
    ) -> Result<bool, LedgerError> {
        let address = address.trim().to_lowercase();
        // Asked again (a reader's loop, a second click): answered without a write, so a
        // flood of them costs no commit and holds no lock.
        if self.is_opted_out(&address)? {
            return Ok(false);
        }
        let at = at.to_rfc3339();
        let err = self.err_owned();
        let tx = self.write()?;
        let added = tx
            .execute(
                "INSERT INTO optouts (address, at, source) VALUES (?1, ?2, ?3) ON CONFLICT (address) DO NOTHING",
                params![address, at, source.as_str()],
            )
            .map_err(&err)?
            > 0;
        if added {
            tx.execute(
                "INSERT INTO optout_log (address, action, at, source) VALUES (?1, 'unsubscribe', ?2, ?3)",
                params![address, at, source.as_str()],
            )
            .map_err(&err)?;
        }
        tx.commit().map_err(&err)?;
        Ok(added)
    }

    /// Lifts an opt-out. Returns false if the address was not opted out.
    pub fn resubscribe(
        &mut self,
        address: &str,
        source: OptOutSource,
        at: DateTime<Utc>,
    ) -> Result<bool, LedgerError> {
        let address = address.trim().to_lowercase();
        let err = self.err_owned();
        let tx = self.write()?;
        let removed = tx
            .execute("DELETE FROM optouts WHERE address = ?1", [&address])
            .map_err(&err)?
            > 0;
        if removed {
            tx.execute(
                "INSERT INTO optout_log (address, action, at, source) VALUES (?1, 'resubscribe', ?2, ?3)",
                params![address, at.to_rfc3339(), source.as_str()],
            )
            .map_err(&err)?;
        }
        tx.commit().map_err(&err)?;
        Ok(removed)
    }

    /// Whether `address` opted out, or was erased (which keeps it opted out).
    pub fn is_opted_out(&self, address: &str) -> Result<bool, LedgerError> {
        let listed = self
            .conn
            .query_row(
                "SELECT 1 FROM optouts WHERE address = ?1",
                [address.trim().to_lowercase()],
                |_| Ok(()),
            )
            .optional()
            .map(|found| found.is_some())
            .map_err(self.err())?;
        Ok(listed || self.is_erased(address)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opt_outs_survive_reopening_and_log_every_change() {
        let dir = tempfile::tempdir().unwrap();
        let at: DateTime<Utc> = "2018-10-18T10:00:00Z".parse().unwrap();
        {
            let mut l = Ledger::open_in(dir.path()).unwrap();
            assert!(
                l.unsubscribe("Anna@Example.org", OptOutSource::Command, at)
                    .unwrap()
            );
            assert!(
                !l.unsubscribe("anna@example.org", OptOutSource::OneClick, at)
                    .unwrap()
            );
        }
        let mut l = Ledger::open_in(dir.path()).unwrap();
        assert!(l.is_opted_out("ANNA@example.org").unwrap());
        assert!(
            l.resubscribe("anna@example.org", OptOutSource::Command, at)
                .unwrap()
        );
        assert!(!l.is_opted_out("anna@example.org").unwrap());
        let log: i64 = l
            .conn
            .query_row("SELECT count(*) FROM optout_log", [], |r| r.get(0))
            .unwrap();
        assert_eq!(log, 2);
    }
}
