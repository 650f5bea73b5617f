//! Deliveries: one row per (release, version, recipient) and its state. The intent to send
//! (`sending`) is committed before the SMTP transaction starts and the outcome after it,
//! so after a crash the only rows whose fate is unknown are those left `sending`; they
//! become `unknown` and are sent again with the same Message-ID.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use rusqlite::params;

use super::{Ledger, LedgerError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryState {
    Queued,
    Sending,
    Sent,
    Deferred,
    Failed,
    Unknown,
    Cancelled,
}

impl DeliveryState {
    pub const ALL: [DeliveryState; 7] = [
        DeliveryState::Queued,
        DeliveryState::Sending,
        DeliveryState::Sent,
        DeliveryState::Deferred,
        DeliveryState::Failed,
        DeliveryState::Unknown,
        DeliveryState::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Queued => "queued",
            DeliveryState::Sending => "sending",
            DeliveryState::Sent => "sent",
            DeliveryState::Deferred => "deferred",
            DeliveryState::Failed => "failed",
            DeliveryState::Unknown => "unknown",
            DeliveryState::Cancelled => "cancelled",
        }
    }

    pub(super) fn parse(s: &str) -> DeliveryState {
        DeliveryState::ALL
            .into_iter()
            .find(|d| d.as_str() == s)
            .unwrap_or(DeliveryState::Unknown)
    }
}

/// Which deferred deliveries a claim takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// Those whose retry time has come (the daemon).
    By(DateTime<Utc>),
    /// All, but each once per run: those not touched since the run began (a manual send).
    UntouchedSince(DateTime<Utc>),
}

/// One row of the `deliveries` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub release_id: String,
    pub version: u32,
    pub address: String,
    pub state: DeliveryState,
    pub attempts: u32,
    pub next_attempt: Option<DateTime<Utc>>,
    pub last_reply: Option<String>,
    pub message_id: String,
    pub queued_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
}

/// A release version with deliveries waiting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub release_id: String,
    pub version: u32,
    /// When the first of them is due.
    pub due: DateTime<Utc>,
}

/// The result of one attempt, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Sent {
        reply: String,
    },
    Deferred {
        reply: String,
        retry_at: DateTime<Utc>,
    },
    Failed {
        reply: String,
    },
    /// Not sent: the recipient opted out after it was queued, or the release was withdrawn.
    Cancelled {
        reason: String,
    },
}

/// Timestamps are stored in one fixed format (UTC, milliseconds) so SQL compares them as
/// strings correctly.
pub(super) fn ts(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn time(s: Option<String>) -> Option<DateTime<Utc>> {
    s.and_then(|s| DateTime::parse_from_rfc3339(&s).ok())
        .map(|t| t.with_timezone(&Utc))
}

/// `pending`'s query.
const PENDING_SQL: &str = "SELECT release_id, version, due FROM (
                    SELECT d.release_id, d.version, min(
                        coalesce((SELECT min(queued_at) FROM deliveries
                                  WHERE release_id = d.release_id AND version = d.version AND state = 'queued'), '~'),
                        coalesce((SELECT min(queued_at) FROM deliveries
                                  WHERE release_id = d.release_id AND version = d.version AND state = 'unknown'), '~'),
                        coalesce((SELECT min(queued_at) FROM deliveries
                                  WHERE release_id = d.release_id AND version = d.version AND state = 'sending'), '~'),
                        coalesce((SELECT min(next_attempt) FROM deliveries
                                  WHERE release_id = d.release_id AND version = d.version AND state = 'deferred'), '~')
                    ) AS due
                    FROM dispatches d)
                 WHERE due != '~' ORDER BY release_id, version";

const COLUMNS: &str = "release_id, version, address, state, attempts, next_attempt, last_reply, message_id, queued_at, updated_at, sent_at";

/// The waiting deliveries of a release version: ?1 release, ?2 version, ?3 the instant
/// `due` compares with, ?4 how many, ?5 `by` or `untouched`, ?6 one address or NULL.
fn claim_sql() -> String {
    format!(
        "SELECT {COLUMNS} FROM deliveries
         WHERE release_id = ?1 AND version = ?2
           AND (?6 IS NULL OR address = ?6)
           AND state IN ('deferred', 'queued', 'unknown')
           AND (state != 'deferred' OR (?5 = 'by' AND next_attempt <= ?3) OR (?5 = 'untouched' AND updated_at < ?3))
         ORDER BY state, address LIMIT ?4"
    )
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Delivery> {
    let epoch = DateTime::<Utc>::UNIX_EPOCH;
    Ok(Delivery {
        release_id: r.get(0)?,
        version: r.get(1)?,
        address: r.get(2)?,
        state: DeliveryState::parse(&r.get::<_, String>(3)?),
        attempts: r.get(4)?,
        next_attempt: time(r.get(5)?),
        last_reply: r.get(6)?,
        message_id: r.get(7)?,
        queued_at: time(r.get(8)?).unwrap_or(epoch),
        updated_at: time(r.get(9)?).unwrap_or(epoch),
        sent_at: time(r.get(10)?),
    })
}

/// Records a decided dispatch (release, version, kind, at, content hash), once.
pub(super) const INSERT_DISPATCH: &str =
    "INSERT INTO dispatches (release_id, version, kind, created_at, content_hash)
     VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING";

/// A dispatch decided by a `queue` call: its kind (`auto`, `manual`, `update`) and the
/// content hash of the version it mails.
#[derive(Debug, Clone, Copy)]
pub struct Decided<'a> {
    pub kind: &'a str,
    pub content_hash: &'a str,
}

impl Ledger {
    /// The releases whose mail has been decided (any dispatch recorded).
    pub fn decided(&self) -> Result<std::collections::HashSet<String>, LedgerError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT DISTINCT release_id FROM dispatches")
            .map_err(self.err())?;
        let ids = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(self.err())?
            .collect::<Result<_, _>>()
            .map_err(self.err())?;
        Ok(ids)
    }

    /// Records that a dispatch of this release version was decided. False if it already was.
    pub fn create_dispatch(
        &mut self,
        release_id: &str,
        version: u32,
        kind: &str,
        content_hash: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, LedgerError> {
        let added = self
            .conn
            .execute(
                INSERT_DISPATCH,
                params![release_id, version, kind, ts(&at), content_hash],
            )
            .map_err(self.err())?;
        Ok(added > 0)
    }

    /// The newest dispatch of a release: (version, kind, content hash).
    pub fn latest_dispatch(
        &self,
        release_id: &str,
    ) -> Result<Option<(u32, String, String)>, LedgerError> {
        use rusqlite::OptionalExtension;
        self.conn
            .query_row(
                "SELECT version, kind, content_hash FROM dispatches WHERE release_id = ?1 ORDER BY version DESC LIMIT 1",
                [release_id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .map_err(self.err())
    }

    /// Queues deliveries (address, Message-ID) that do not exist yet; returns how many
    /// were added. One transaction, which also records the dispatch when this decides
    /// one (`decided`): a crash leaves either the decision with all its deliveries or
    /// neither, never a decision whose recipients are lost. An iterator, so that a
    /// dispatch to many recipients is never held in memory whole.
    pub fn queue(
        &mut self,
        release_id: &str,
        version: u32,
        decided: Option<Decided<'_>>,
        recipients: impl IntoIterator<Item = (String, String)>,
        at: DateTime<Utc>,
    ) -> Result<usize, LedgerError> {
        let err = self.err_owned();
        let tx = self.write()?;
        if let Some(d) = decided {
            tx.execute(
                INSERT_DISPATCH,
                params![release_id, version, d.kind, ts(&at), d.content_hash],
            )
            .map_err(&err)?;
        }
        let mut added = 0;
        {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT INTO deliveries (release_id, version, address, state, message_id, queued_at, updated_at)
                     VALUES (?1, ?2, ?3, 'queued', ?4, ?5, ?5) ON CONFLICT DO NOTHING",
                )
                .map_err(&err)?;
            let at = ts(&at);
            for (address, message_id) in recipients {
                added += stmt
                    .execute(params![release_id, version, &address, &message_id, at])
                    .map_err(&err)?;
            }
        }
        tx.commit().map_err(&err)?;
        Ok(added)
    }

    /// After a crash: every row left `sending` may or may not have gone out.
    pub fn mark_interrupted(&mut self, at: DateTime<Utc>) -> Result<usize, LedgerError> {
        self.conn
            .execute(
                "UPDATE deliveries SET state = 'unknown', updated_at = ?1 WHERE state = 'sending'",
                [ts(&at)],
            )
            .map_err(self.err())
    }

    /// Claims up to `limit` deliveries of a release version that are waiting (queued,
    /// unknown, or deferred and due by `due`; any deferred one when `due` is None), marking
    /// them `sending` with one more attempt, in one committed transaction. Each comes back
    /// with the state it had before, so `unclaim` can put it back. They come in the
    /// order of the `deliveries_waiting` index (state, then address), so a claim reads the
    /// rows it takes and no others; ordered by address alone, every claim walked past all
    /// the rows already sent (quadratic in the number of recipients).
    pub fn claim(
        &mut self,
        release_id: &str,
        version: u32,
        due: Due,
        only: Option<&str>,
        limit: usize,
        at: DateTime<Utc>,
    ) -> Result<Vec<Delivery>, LedgerError> {
        let err = self.err_owned();
        let tx = self.write()?;
        let claimed = {
            let mut stmt = tx.prepare_cached(&claim_sql()).map_err(&err)?;
            let (mode, due) = match due {
                Due::By(t) => ("by", ts(&t)),
                Due::UntouchedSince(t) => ("untouched", ts(&t)),
            };
            let rows = stmt
                .query_map(
                    params![release_id, version, due, limit as i64, mode, only],
                    row,
                )
                .map_err(&err)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(&err)?
        };
        {
            let mut stmt = tx
                .prepare_cached(
                    "UPDATE deliveries SET state = 'sending', attempts = attempts + 1, updated_at = ?4
                     WHERE release_id = ?1 AND version = ?2 AND address = ?3",
                )
                .map_err(&err)?;
            let at = ts(&at);
            for d in &claimed {
                stmt.execute(params![d.release_id, d.version, d.address, at])
                    .map_err(&err)?;
            }
        }
        tx.commit().map_err(&err)?;
        Ok(claimed
            .into_iter()
            .map(|mut d| {
                d.attempts += 1;
                d
            })
            .collect())
    }

    /// Puts claimed deliveries back in the state they were claimed from, the attempt not
    /// counted: nothing was handed to the server (the run stopped first; see
    /// `mail::transport::Refusal`).
    pub fn unclaim(&mut self, claimed: &[Delivery], at: DateTime<Utc>) -> Result<(), LedgerError> {
        if claimed.is_empty() {
            return Ok(());
        }
        let err = self.err_owned();
        let tx = self.write()?;
        {
            let mut stmt = tx
                .prepare_cached(
                    "UPDATE deliveries SET state = ?4, attempts = attempts - 1, updated_at = ?5
                     WHERE release_id = ?1 AND version = ?2 AND address = ?3 AND state = 'sending'",
                )
                .map_err(&err)?;
            let at = ts(&at);
            for d in claimed {
                stmt.execute(params![
                    d.release_id,
                    d.version,
                    d.address,
                    d.state.as_str(),
                    at
                ])
                .map_err(&err)?;
            }
        }
        tx.commit().map_err(&err)
    }

    /// Records the outcomes of attempts, in one committed transaction (a group commit).
    pub fn record(
        &mut self,
        outcomes: &[(Delivery, Outcome)],
        at: DateTime<Utc>,
    ) -> Result<(), LedgerError> {
        if outcomes.is_empty() {
            return Ok(());
        }
        let err = self.err_owned();
        let tx = self.write()?;
        {
            let mut stmt = tx
                .prepare_cached(
                    "UPDATE deliveries SET state = ?4, last_reply = ?5, next_attempt = ?6, updated_at = ?7,
                            sent_at = CASE WHEN ?4 = 'sent' THEN ?7 ELSE sent_at END
                     WHERE release_id = ?1 AND version = ?2 AND address = ?3",
                )
                .map_err(&err)?;
            let at = ts(&at);
            for (d, outcome) in outcomes {
                let (state, reply, retry) = match outcome {
                    Outcome::Sent { reply } => (DeliveryState::Sent, reply, None),
                    Outcome::Deferred { reply, retry_at } => {
                        (DeliveryState::Deferred, reply, Some(ts(retry_at)))
                    }
                    Outcome::Failed { reply } => (DeliveryState::Failed, reply, None),
                    Outcome::Cancelled { reason } => (DeliveryState::Cancelled, reason, None),
                };
                stmt.execute(params![
                    d.release_id,
                    d.version,
                    d.address,
                    state.as_str(),
                    reply,
                    retry,
                    at
                ])
                .map_err(&err)?;
            }
        }
        tx.commit().map_err(&err)
    }

    /// Puts failed deliveries of a release version back in the queue.
    pub fn requeue_failed(
        &mut self,
        release_id: &str,
        version: u32,
        at: DateTime<Utc>,
    ) -> Result<usize, LedgerError> {
        self.conn
            .execute(
                "UPDATE deliveries SET state = 'queued', updated_at = ?3 WHERE release_id = ?1 AND version = ?2 AND state = 'failed'",
                params![release_id, version, ts(&at)],
            )
            .map_err(self.err())
    }

    /// Cancels deliveries that have not gone out (withdrawal, opt-out after queueing).
    pub fn cancel(
        &mut self,
        release_id: &str,
        address: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<usize, LedgerError> {
        self.conn
            .execute(
                "UPDATE deliveries SET state = 'cancelled', updated_at = ?3
                 WHERE release_id = ?1 AND (?2 IS NULL OR address = ?2) AND state IN ('queued', 'deferred', 'unknown')",
                params![release_id, address, ts(&at)],
            )
            .map_err(self.err())
    }

    /// Every delivery of a release, by version then address.
    pub fn deliveries(&self, release_id: &str) -> Result<Vec<Delivery>, LedgerError> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM deliveries WHERE release_id = ?1 ORDER BY version, address"
            ))
            .map_err(self.err())?;
        let rows = stmt.query_map([release_id], row).map_err(self.err())?;
        rows.collect::<Result<_, _>>().map_err(self.err())
    }

    /// How many deliveries of a release version wait to be sent (queued, deferred, unknown).
    pub fn waiting(
        &self,
        release_id: &str,
        version: u32,
        only: Option<&str>,
    ) -> Result<u64, LedgerError> {
        self.conn
            .query_row(
                "SELECT count(*) FROM deliveries WHERE release_id = ?1 AND version = ?2
                   AND (?3 IS NULL OR address = ?3) AND state IN ('queued', 'deferred', 'unknown')",
                params![release_id, version, only],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n as u64)
            .map_err(self.err())
    }

    /// Every release version with deliveries waiting, and the earliest instant one of them
    /// is due (queued and unknown ones at once, deferred ones at their retry time). Rows
    /// left `sending` count as due at once: outside a running send they are what a crash
    /// left, and only a send run (under the send lock) turns them `unknown` and sends them
    /// again; if nothing else waited, nothing would ever start that run.
    pub fn pending(&self) -> Result<Vec<Pending>, LedgerError> {
        // Per dispatch (a small table), the earliest due of each waiting state, each a seek
        // into `deliveries_due` (its columns cover the query): asked at every plan of the
        // daemon, so it must not read every waiting row of a dispatch to a million.
        let mut stmt = self.conn.prepare_cached(PENDING_SQL).map_err(self.err())?;
        let rows = stmt
            .query_map([], |r| {
                Ok(Pending {
                    release_id: r.get(0)?,
                    version: r.get(1)?,
                    due: time(r.get(2)?).unwrap_or(DateTime::<Utc>::UNIX_EPOCH),
                })
            })
            .map_err(self.err())?;
        rows.collect::<Result<_, _>>().map_err(self.err())
    }

    /// The Message-ID of each original (version 1) a recipient received, to thread a
    /// correction to.
    pub fn originals(&self, release_id: &str) -> Result<HashMap<String, String>, LedgerError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT address, message_id FROM deliveries
                 WHERE release_id = ?1 AND version = 1 AND state = 'sent'",
            )
            .map_err(self.err())?;
        let rows = stmt
            .query_map([release_id], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(self.err())?;
        rows.collect::<Result<_, _>>().map_err(self.err())
    }

    /// How many deliveries, of every release, are in each state.
    pub fn all_counts(&self) -> Result<Vec<(DeliveryState, u64)>, LedgerError> {
        self.state_counts("deliveries")
    }

    /// How many rows of `table` (`deliveries`, `digests`: a delivery's states) are in each
    /// state.
    pub(super) fn state_counts(
        &self,
        table: &'static str,
    ) -> Result<Vec<(DeliveryState, u64)>, LedgerError> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "SELECT state, count(*) FROM {table} GROUP BY state"
            ))
            .map_err(self.err())?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    DeliveryState::parse(&r.get::<_, String>(0)?),
                    r.get::<_, i64>(1)? as u64,
                ))
            })
            .map_err(self.err())?;
        rows.collect::<Result<_, _>>().map_err(self.err())
    }

    /// How many deliveries of a release are in each state.
    pub fn counts(&self, release_id: &str) -> Result<Vec<(DeliveryState, u64)>, LedgerError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT state, count(*) FROM deliveries WHERE release_id = ?1 GROUP BY state",
            )
            .map_err(self.err())?;
        let rows = stmt
            .query_map([release_id], |r| {
                Ok((
                    DeliveryState::parse(&r.get::<_, String>(0)?),
                    r.get::<_, i64>(1)? as u64,
                ))
            })
            .map_err(self.err())?;
        rows.collect::<Result<_, _>>().map_err(self.err())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claim_reads_the_waiting_rows_in_index_order_without_sorting() {
        let dir = tempfile::tempdir().unwrap();
        let l = Ledger::open_in(dir.path()).unwrap();
        let mut stmt = l
            .conn
            .prepare(&format!("EXPLAIN QUERY PLAN {}", claim_sql()))
            .unwrap();
        let plan: Vec<String> = stmt
            .query_map(
                params!["r", 1, "2018-10-18T07:00:00.000Z", 64, "by", None::<String>],
                |r| r.get(3),
            )
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            plan,
            [
                "SEARCH deliveries USING INDEX deliveries_waiting (release_id=? AND version=? AND state=?)"
            ],
            "no scan past sent rows, no sort"
        );
    }

    /// Asked at every plan of the daemon: each dispatch's earliest due is a few seeks into
    /// an index, never a walk over its waiting rows (a million after a big publication).
    #[test]
    fn pending_seeks_each_dispatch_and_scans_no_deliveries() {
        let dir = tempfile::tempdir().unwrap();
        let l = Ledger::open_in(dir.path()).unwrap();
        let mut stmt = l
            .conn
            .prepare(&format!("EXPLAIN QUERY PLAN {PENDING_SQL}"))
            .unwrap();
        let plan: Vec<String> = stmt
            .query_map([], |r| r.get(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(
            plan.iter().all(|step| !step.starts_with("SCAN deliveries")),
            "{plan:#?}"
        );
        assert!(
            plan.iter()
                .filter(|step| step.contains("COVERING INDEX deliveries_due"))
                .count()
                >= 4,
            "{plan:#?}"
        );
    }

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn rows_a_crash_left_sending_still_count_as_waiting() {
        let dir = tempfile::tempdir().unwrap();
        let mut l = Ledger::open_in(dir.path()).unwrap();
        let at = t("2018-10-18T07:00:00Z");
        let who = vec![("a@example.org".to_string(), "<1@x>".to_string())];
        let decided = Decided {
            kind: "manual",
            content_hash: "h",
        };
        l.queue("r", 1, Some(decided), who, at).unwrap();
        l.claim("r", 1, Due::By(at), None, 10, at).unwrap();
        // The process died here: the only row is `sending`, nothing is queued.
        let pending = l.pending().unwrap();
        assert_eq!(pending.len(), 1, "a send run must start to recover it");
        assert_eq!(pending[0].due, at);
    }

    #[test]
    fn a_delivery_goes_from_queued_through_sending_to_its_outcome() {
        let dir = tempfile::tempdir().unwrap();
        let mut l = Ledger::open_in(dir.path()).unwrap();
        let at = t("2018-10-18T07:00:00Z");
        let who = vec![
            ("a@example.org".to_string(), "<1@x>".to_string()),
            ("b@example.org".to_string(), "<2@x>".to_string()),
        ];
        assert_eq!(l.queue("r", 1, None, who.clone(), at).unwrap(), 2);
        assert_eq!(
            l.queue("r", 1, None, who, at).unwrap(),
            0,
            "queueing twice adds nobody"
        );
        let claimed = l.claim("r", 1, Due::By(at), None, 10, at).unwrap();
        assert_eq!(claimed.len(), 2);
        assert!(
            l.claim("r", 1, Due::By(at), None, 10, at)
                .unwrap()
                .is_empty(),
            "sending rows are not claimed again"
        );
        l.record(
            &[(
                claimed[0].clone(),
                Outcome::Sent {
                    reply: "250 ok".into(),
                },
            )],
            at,
        )
        .unwrap();
        // A crash now: b was in flight.
        drop(l);
        let mut l = Ledger::open_in(dir.path()).unwrap();
        assert_eq!(l.mark_interrupted(at).unwrap(), 1);
        let again = l.claim("r", 1, Due::By(at), None, 10, at).unwrap();
        assert_eq!(again.len(), 1);
        assert_eq!(
            (
                again[0].address.as_str(),
                again[0].message_id.as_str(),
                again[0].attempts
            ),
            ("b@example.org", "<2@x>", 2)
        );
        let retry_at = t("2018-10-18T07:05:00Z");
        l.record(
            &[(
                again[0].clone(),
                Outcome::Deferred {
                    reply: "451 later".into(),
                    retry_at,
                },
            )],
            at,
        )
        .unwrap();
        assert!(
            l.claim("r", 1, Due::By(at), None, 10, at)
                .unwrap()
                .is_empty(),
            "not due yet"
        );
        assert_eq!(
            l.claim("r", 1, Due::By(retry_at), None, 10, retry_at)
                .unwrap()
                .len(),
            1
        );
    }
}
