//! Digests (SPEC §6): one row per (subscriber address, period), exactly once, with the
//! release ids it holds, its Message-ID and a state like a delivery's. Making a period's
//! digests moves each subscriber's `digest_from` to the period in the same transaction as
//! the row, and only from the `digest_from` the contents were chosen with: a batch made
//! twice (a crash, a restart, a clock set back) adds nothing. Sending follows deliveries'
//! protocol: `sending` committed before the SMTP transaction, the outcome after; rows
//! left `sending` by a crash become `unknown` and are sent again with the same Message-ID.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};

use super::deliveries::{DeliveryState, Outcome, ts};
use super::subscribers::{SubscriberRow, subscriber_row};
use super::{Ledger, LedgerError};

/// One row of the `digests` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestRow {
    pub address: String,
    pub period: DateTime<Utc>,
    pub state: DeliveryState,
    /// The ids of the releases it holds (at hand-off: those it was sent with).
    pub releases: Vec<String>,
    /// The ids of the releases a copy of it may have carried to the subscriber: those it
    /// was sent with, and those it held when a crash left it `unknown` (that copy may have
    /// left). Never shrinks.
    pub carried: Vec<String>,
    pub message_id: String,
    pub attempts: u32,
    pub next_attempt: Option<DateTime<Utc>>,
    pub last_reply: Option<String>,
    pub queued_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
}

/// A subscriber's digest of a period, to be made: the contents were chosen from
/// `digest_from` = `was_from`. No releases: no row, only `digest_from` moves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDigest {
    pub address: String,
    pub was_from: DateTime<Utc>,
    pub releases: Vec<String>,
    pub message_id: String,
}

const COLUMNS: &str = "address, period, state, releases, message_id, attempts, next_attempt, last_reply, queued_at, updated_at, sent_at, carried";

fn ids(s: &str) -> Vec<String> {
    s.split('\n')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

fn time(s: Option<String>) -> Option<DateTime<Utc>> {
    s.and_then(|s| DateTime::parse_from_rfc3339(&s).ok())
        .map(|t| t.with_timezone(&Utc))
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<DigestRow> {
    let epoch = DateTime::<Utc>::UNIX_EPOCH;
    Ok(DigestRow {
        address: r.get(0)?,
        period: time(r.get(1)?).unwrap_or(epoch),
        state: DeliveryState::parse(&r.get::<_, String>(2)?),
        releases: ids(&r.get::<_, String>(3)?),
        message_id: r.get(4)?,
        attempts: r.get(5)?,
        next_attempt: time(r.get(6)?),
        last_reply: r.get(7)?,
        queued_at: time(r.get(8)?).unwrap_or(epoch),
        updated_at: time(r.get(9)?).unwrap_or(epoch),
        sent_at: time(r.get(10)?),
        carried: ids(&r.get::<_, String>(11)?),
    })
}

impl Ledger {
    /// Up to `limit` subscribers, by address after `after`, whose digest of `period` is
    /// still to be made (they take a digest and their `digest_from` is before the period),
    /// each with whether the address opted out. Paused and opted-out ones are among them:
    /// their period passes too (no digest is made for them), so what was published while
    /// they paused or were away is not mailed when they come back.
    pub fn digest_subscribers(
        &self,
        period: DateTime<Utc>,
        after: &str,
        limit: usize,
    ) -> Result<Vec<(SubscriberRow, bool)>, LedgerError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT s.address, s.email, s.name, s.outlet, s.topics, s.langs, s.delivery, s.paused,
                        s.confirmed_at, s.updated_at, s.digest_from,
                        EXISTS (SELECT 1 FROM optouts o WHERE o.address = s.address)
                 FROM subscribers s
                 WHERE s.address > ?1 AND s.delivery = 'digest' AND s.digest_from < ?2
                 ORDER BY s.address LIMIT ?3",
            )
            .map_err(self.err())?;
        let rows = stmt
            .query_map(params![after, ts(&period), limit as i64], |r| {
                Ok((subscriber_row(r)?, r.get::<_, i64>(11)? != 0))
            })
            .map_err(self.err())?;
        rows.collect::<Result<_, _>>().map_err(self.err())
    }

    /// How many subscribers take a digest now (not paused, not opted out) whose
    /// digest of `period` is still to be made: `schedule`'s count.
    pub fn digest_subscriber_count(&self, period: DateTime<Utc>) -> Result<usize, LedgerError> {
        self.conn
            .query_row(
                "SELECT count(*) FROM subscribers s
                 WHERE s.delivery = 'digest' AND s.paused = 0 AND s.digest_from < ?1
                   AND NOT EXISTS (SELECT 1 FROM optouts o WHERE o.address = s.address)",
                [ts(&period)],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n as usize)
            .map_err(self.err())
    }

    /// Makes a batch of digests of `period` in one transaction: each subscriber whose
    /// `digest_from` is still `was_from` has it moved to the period and, if it holds
    /// releases, its row queued, due at `due` (at most one per address and period: the
    /// key). Returns how many rows were queued.
    pub fn make_digests(
        &mut self,
        period: DateTime<Utc>,
        batch: &[NewDigest],
        due: DateTime<Utc>,
    ) -> Result<usize, LedgerError> {
        let err = self.err_owned();
        let tx = self.write()?;
        let mut queued = 0;
        {
            let mut moved = tx
                .prepare_cached(
                    "UPDATE subscribers SET digest_from = ?2 WHERE address = ?1 AND digest_from = ?3",
                )
                .map_err(&err)?;
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO digests (address, period, state, releases, message_id, queued_at, updated_at)
                     VALUES (?1, ?2, 'queued', ?3, ?4, ?5, ?5) ON CONFLICT DO NOTHING",
                )
                .map_err(&err)?;
            let (period, at) = (ts(&period), ts(&due));
            for d in batch {
                let moved = moved
                    .execute(params![d.address, period, ts(&d.was_from)])
                    .map_err(&err)?;
                if moved == 1 && !d.releases.is_empty() {
                    queued += insert
                        .execute(params![
                            d.address,
                            period,
                            d.releases.join("\n"),
                            d.message_id,
                            at
                        ])
                        .map_err(&err)?;
                }
            }
        }
        tx.commit().map_err(&err)?;
        Ok(queued)
    }

    /// The releases already in a digest of each of `addresses`: carried to them by one, or
    /// held by one still waiting. A release re-dated after it went in one is not put in
    /// another; one dropped at hand-off (pulled back then) may be.
    pub fn digested(
        &self,
        addresses: &[String],
    ) -> Result<HashMap<String, HashSet<String>>, LedgerError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT carried, CASE WHEN state IN ('queued', 'deferred', 'unknown', 'sending')
                        THEN releases ELSE '' END
                 FROM digests WHERE address = ?1",
            )
            .map_err(self.err())?;
        let mut out = HashMap::new();
        for address in addresses {
            let rows = stmt
                .query_map([address], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
                })
                .map_err(self.err())?;
            let mut found = HashSet::new();
            for row in rows {
                let (carried, waiting) = row.map_err(self.err())?;
                found.extend(ids(&carried));
                found.extend(ids(&waiting));
            }
            if !found.is_empty() {
                out.insert(address.clone(), found);
            }
        }
        Ok(out)
    }

    /// When the first waiting digest is due (queued, unknown or left `sending`: now;
    /// deferred: its retry time). None: nothing waits.
    pub fn digests_due(&self) -> Result<Option<DateTime<Utc>>, LedgerError> {
        let due: Option<String> = self
            .conn
            .query_row(
                "SELECT min(CASE WHEN state = 'deferred' THEN next_attempt ELSE queued_at END)
                 FROM digests WHERE state IN ('queued', 'unknown', 'sending', 'deferred')",
                [],
                |r| r.get(0),
            )
            .map_err(self.err())?;
        Ok(time(due))
    }

    /// Claims the next waiting digest due by `now` (queued, unknown, or deferred and due),
    /// marking it `sending` with one more attempt, committed. It comes back with the
    /// state it had, for `unclaim_digest`.
    pub fn claim_digest(&mut self, now: DateTime<Utc>) -> Result<Option<DigestRow>, LedgerError> {
        let err = self.err_owned();
        let tx = self.write()?;
        let claimed = tx
            .query_row(
                &format!(
                    "SELECT {COLUMNS} FROM digests
                     WHERE state IN ('queued', 'unknown') OR (state = 'deferred' AND next_attempt <= ?1)
                     ORDER BY period, address LIMIT 1"
                ),
                [ts(&now)],
                row,
            )
            .optional()
            .map_err(&err)?;
        let Some(mut d) = claimed else {
            return Ok(None);
        };
        tx.execute(
            "UPDATE digests SET state = 'sending', attempts = attempts + 1, updated_at = ?3
             WHERE address = ?1 AND period = ?2",
            params![d.address, ts(&d.period), ts(&now)],
        )
        .map_err(&err)?;
        tx.commit().map_err(&err)?;
        d.attempts += 1;
        Ok(Some(d))
    }

    /// Puts a claimed digest back as it was: nothing was handed to the server.
    pub fn unclaim_digest(&mut self, d: &DigestRow, at: DateTime<Utc>) -> Result<(), LedgerError> {
        self.conn
            .execute(
                "UPDATE digests SET state = ?3, attempts = attempts - 1, updated_at = ?4
                 WHERE address = ?1 AND period = ?2 AND state = 'sending'",
                params![d.address, ts(&d.period), d.state.as_str(), ts(&at)],
            )
            .map_err(self.err())?;
        Ok(())
    }

    /// Records the outcome of a digest's attempt, with the releases it left with (some may
    /// have been dropped at hand-off: withdrawn, no longer wanted). What it `carried` grows
    /// by those, if it was sent, and by all it held before, if it was claimed `unknown`.
    pub fn record_digest(
        &mut self,
        d: &DigestRow,
        releases: &[String],
        outcome: &Outcome,
        at: DateTime<Utc>,
    ) -> Result<(), LedgerError> {
        let (state, reply, retry) = match outcome {
            Outcome::Sent { reply } => (DeliveryState::Sent, reply, None),
            Outcome::Deferred { reply, retry_at } => {
                (DeliveryState::Deferred, reply, Some(ts(retry_at)))
            }
            Outcome::Failed { reply } => (DeliveryState::Failed, reply, None),
            Outcome::Cancelled { reason } => (DeliveryState::Cancelled, reason, None),
        };
        let mut carried = d.carried.clone();
        let mut carry = |id: &String| {
            if !carried.contains(id) {
                carried.push(id.clone());
            }
        };
        if d.state == DeliveryState::Unknown {
            d.releases.iter().for_each(&mut carry);
        }
        if state == DeliveryState::Sent {
            releases.iter().for_each(&mut carry);
        }
        self.conn
            .execute(
                "UPDATE digests SET state = ?3, last_reply = ?4, next_attempt = ?5, updated_at = ?6,
                        releases = ?7, carried = ?8,
                        sent_at = CASE WHEN ?3 = 'sent' THEN ?6 ELSE sent_at END
                 WHERE address = ?1 AND period = ?2",
                params![
                    d.address,
                    ts(&d.period),
                    state.as_str(),
                    reply,
                    retry,
                    ts(&at),
                    releases.join("\n"),
                    carried.join("\n")
                ],
            )
            .map_err(self.err())?;
        Ok(())
    }

    /// After a crash: every digest left `sending` may or may not have gone out.
    pub fn mark_digests_interrupted(&mut self, at: DateTime<Utc>) -> Result<usize, LedgerError> {
        self.conn
            .execute(
                "UPDATE digests SET state = 'unknown', updated_at = ?1 WHERE state = 'sending'",
                [ts(&at)],
            )
            .map_err(self.err())
    }

    /// How many digests are in each state.
    pub fn digest_counts(&self) -> Result<Vec<(DeliveryState, u64)>, LedgerError> {
        self.state_counts("digests")
    }

    /// Every digest of an address, oldest period first.
    pub fn digests_of(&self, address: &str) -> Result<Vec<DigestRow>, LedgerError> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM digests WHERE address = ?1 ORDER BY period"
            ))
            .map_err(self.err())?;
        let rows = stmt.query_map([address], row).map_err(self.err())?;
        rows.collect::<Result<_, _>>().map_err(self.err())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::{Choices, OptOutSource};

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn subscriber(address: &str, delivery: &str, from: &str) -> SubscriberRow {
        SubscriberRow {
            address: address.into(),
            email: address.into(),
            name: "Ada".into(),
            outlet: String::new(),
            choices: Choices {
                topics: String::new(),
                langs: String::new(),
                delivery: delivery.into(),
            },
            paused: false,
            confirmed_at: t(from),
            updated_at: t(from),
            digest_from: t(from),
        }
    }

    fn new(address: &str, from: &str, releases: &[&str]) -> NewDigest {
        NewDigest {
            address: address.into(),
            was_from: t(from),
            releases: releases.iter().map(|s| s.to_string()).collect(),
            message_id: format!("<{address}>"),
        }
    }

    /// Every digest subscriber whose period is due is asked for (paused and opted-out ones
    /// too, said so); a batch made twice queues nothing the second time and moves
    /// `digest_from` once; a digest with nothing in it is no row.
    #[test]
    fn a_period_is_made_once_per_subscriber() {
        let dir = tempfile::tempdir().unwrap();
        let mut l = Ledger::open_in(dir.path()).unwrap();
        let from = "2026-12-04T06:00:00Z";
        for s in [
            subscriber("ada@example.org", "digest", from),
            subscriber("bo@example.org", "each", from),
            subscriber("cy@example.org", "digest", from),
            subscriber("di@example.org", "digest", from),
            subscriber("ed@example.org", "digest", from),
            SubscriberRow {
                paused: true,
                ..subscriber("fa@example.org", "digest", from)
            },
        ] {
            l.put_subscriber(&s).unwrap();
        }
        l.unsubscribe("cy@example.org", OptOutSource::Command, t(from))
            .unwrap();
        let period = t("2026-12-05T06:00:00Z");
        let asked: Vec<(String, bool, bool)> = l
            .digest_subscribers(period, "", 10)
            .unwrap()
            .into_iter()
            .map(|(s, out)| (s.address, s.paused, out))
            .collect();
        assert_eq!(
            asked,
            [
                ("ada@example.org".to_string(), false, false),
                ("cy@example.org".to_string(), false, true),
                ("di@example.org".to_string(), false, false),
                ("ed@example.org".to_string(), false, false),
                ("fa@example.org".to_string(), true, false),
            ]
        );
        let batch = [
            new("ada@example.org", from, &["r1", "r2"]),
            new("di@example.org", from, &[]),
            new("ed@example.org", "2026-12-01T00:00:00Z", &["r1"]),
        ];
        let at = t("2026-12-05T06:01:00Z");
        assert_eq!(
            l.make_digests(period, &batch, at).unwrap(),
            1,
            "ed's digest_from moved meanwhile"
        );
        assert_eq!(l.make_digests(period, &batch, at).unwrap(), 0);
        let ada = l.digests_of("ada@example.org").unwrap();
        assert_eq!(ada.len(), 1);
        assert_eq!(ada[0].releases, ["r1", "r2"]);
        assert_eq!(ada[0].state, DeliveryState::Queued);
        assert!(l.digests_of("di@example.org").unwrap().is_empty());
        assert_eq!(
            l.subscriber("di@example.org").unwrap().unwrap().digest_from,
            period
        );
        assert_eq!(
            l.subscriber("ed@example.org").unwrap().unwrap().digest_from,
            t(from)
        );
        let asked: Vec<String> = l
            .digest_subscribers(period, "", 10)
            .unwrap()
            .into_iter()
            .map(|(s, _)| s.address)
            .collect();
        assert_eq!(
            asked,
            ["cy@example.org", "ed@example.org", "fa@example.org"]
        );
    }

    /// Claimed is `sending` (committed); a crash makes it `unknown`, claimed again with
    /// the same Message-ID, and what it held counts as carried to the subscriber however
    /// it ends; a deferred one waits for its time.
    #[test]
    fn a_digest_is_claimed_sent_and_after_a_crash_sent_again() {
        let dir = tempfile::tempdir().unwrap();
        let mut l = Ledger::open_in(dir.path()).unwrap();
        let from = "2026-12-04T06:00:00Z";
        l.put_subscriber(&subscriber("ada@example.org", "digest", from))
            .unwrap();
        let period = t("2026-12-05T06:00:00Z");
        let at = t("2026-12-05T06:01:00Z");
        l.make_digests(period, &[new("ada@example.org", from, &["r1"])], at)
            .unwrap();
        assert_eq!(l.digests_due().unwrap(), Some(at));
        let claimed = l.claim_digest(at).unwrap().unwrap();
        assert_eq!(claimed.attempts, 1);
        assert!(l.claim_digest(at).unwrap().is_none(), "one claim at a time");
        assert_eq!(l.mark_digests_interrupted(at).unwrap(), 1);
        let again = l.claim_digest(at).unwrap().unwrap();
        assert_eq!(again.state, DeliveryState::Unknown);
        assert_eq!(again.message_id, claimed.message_id);
        let retry = t("2026-12-05T06:06:00Z");
        // Sent again with nothing left in it (all dropped at hand-off), deferred: what the
        // copy in flight at the crash held still counts as carried.
        l.record_digest(
            &again,
            &[],
            &Outcome::Deferred {
                reply: "451 later".into(),
                retry_at: retry,
            },
            at,
        )
        .unwrap();
        assert!(l.claim_digest(at).unwrap().is_none());
        assert_eq!(l.digests_due().unwrap(), Some(retry));
        let digested = l.digested(&["ada@example.org".to_string()]).unwrap();
        assert!(digested["ada@example.org"].contains("r1"), "{digested:?}");
        let third = l.claim_digest(retry).unwrap().unwrap();
        l.record_digest(
            &third,
            &[],
            &Outcome::Sent {
                reply: "250 ok".into(),
            },
            retry,
        )
        .unwrap();
        assert_eq!(l.digest_counts().unwrap(), [(DeliveryState::Sent, 1)]);
        assert_eq!(l.digests_due().unwrap(), None);
    }
}
