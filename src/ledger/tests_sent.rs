//! Test sends (`send --to ADDRESS`): what was tried, to whom, with which Message-ID. Kept
//! apart from dispatches and deliveries: a test is never a recipient of the release, never
//! counted in `status` or `report`, and never stands in for the real mail.

use chrono::{DateTime, Utc};
use rusqlite::params;

use super::{Ledger, LedgerError};

/// One test message as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestSend {
    pub release_id: String,
    pub address: String,
    pub message_id: String,
    pub at: String,
    pub outcome: String,
}

impl Ledger {
    pub fn record_test_send(
        &mut self,
        release_id: &str,
        address: &str,
        message_id: &str,
        at: DateTime<Utc>,
        outcome: &str,
    ) -> Result<(), LedgerError> {
        let err = self.err_owned();
        let tx = self.write()?;
        tx.execute(
            "INSERT INTO test_sends (release_id, address, message_id, at, outcome) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![release_id, address, message_id, at.to_rfc3339(), outcome],
        )
        .map_err(&err)?;
        tx.commit().map_err(&err)
    }

    /// Every test message of a release, oldest first.
    pub fn test_sends(&self, release_id: &str) -> Result<Vec<TestSend>, LedgerError> {
        let err = self.err();
        let mut stmt = self
            .conn
            .prepare(
                "SELECT release_id, address, message_id, at, outcome FROM test_sends WHERE release_id = ?1 ORDER BY id",
            )
            .map_err(&err)?;
        let rows = stmt
            .query_map(params![release_id], |row| {
                Ok(TestSend {
                    release_id: row.get(0)?,
                    address: row.get(1)?,
                    message_id: row.get(2)?,
                    at: row.get(3)?,
                    outcome: row.get(4)?,
                })
            })
            .map_err(&err)?;
        rows.collect::<Result<_, _>>().map_err(&err)
    }
}
