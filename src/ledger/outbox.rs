//! The outbox: transactional mail (a sign-up's confirmation; later a subscriber's data and
//! the confirmation of an erasure) that leaves at once, whatever the dispatch window, each
//! row a whole letter as composed. A row is `queued`, `sending` while it is handed to the
//! transport (committed before, so a crash leaves it `sending` and it is sent again with
//! the same Message-ID), then `sent` or `failed`. Its text, HTML and attachments, which
//! carry a token or personal data, are blanked in the same write that records it sent or
//! given up: what stays is who was mailed what kind of letter, when, and the server's
//! reply.
//!
//! Also here: the sign-up form's limit per address (`signup_limits`, a keyed hash of the
//! address and when a confirmation was last queued for it), which must survive restarts,
//! and `queue_confirmation`, which checks it, the storage bound and records the sign-up
//! and its letter in one transaction.

use chrono::{DateTime, Duration, Utc};
use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};

use super::deliveries::ts;
use super::subscribers::SignupRow;
use super::{Ledger, LedgerError};

/// A file sent with a letter (a subscriber's data as JSON, say).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    pub name: String,
    pub content_type: String,
    pub bytes: Vec<u8>,
}

/// A letter as it is posted: composed, in the recipient's language, ready to go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Letter {
    /// The address as written (the `To:`).
    pub to: String,
    /// The name for `To:`, possibly empty.
    pub name: String,
    /// What it is, for the record: `confirm`, `data`, `erase`.
    pub kind: String,
    /// The language of its words (`Content-Language`).
    pub lang: String,
    pub subject: String,
    pub text: String,
    pub html: String,
    pub attachments: Vec<Attachment>,
    /// The same on every attempt: `<…@domain>`.
    pub message_id: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutboxState {
    Queued,
    Sending,
    Sent,
    Failed,
}

impl OutboxState {
    fn parse(s: &str) -> OutboxState {
        match s {
            "queued" => OutboxState::Queued,
            "sending" => OutboxState::Sending,
            "sent" => OutboxState::Sent,
            _ => OutboxState::Failed,
        }
    }
}

/// A row of the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRow {
    pub id: i64,
    pub letter: Letter,
    pub state: OutboxState,
    pub attempts: u32,
    pub next_attempt: DateTime<Utc>,
    pub last_reply: Option<String>,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
}

/// What became of a sign-up behind the form's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Queued {
    /// The sign-up is held and its confirmation is in the outbox (its row id).
    Letter(i64),
    /// A confirmation was queued for this address within the period: nothing done.
    Limited,
    /// `bound` sign-ups wait already: nothing done.
    Full,
}

const COLUMNS: &str = "id, kind, address, recipient, name, lang, subject, text, html, attachments, message_id, state, attempts, next_attempt, last_reply, created_at, sent_at";

fn instant(s: String) -> rusqlite::Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(&s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, e.into())
        })
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<OutboxRow> {
    let attachments: String = r.get(9)?;
    Ok(OutboxRow {
        id: r.get(0)?,
        letter: Letter {
            kind: r.get(1)?,
            to: r.get(3)?,
            name: r.get(4)?,
            lang: r.get(5)?,
            subject: r.get(6)?,
            text: r.get(7)?,
            html: r.get(8)?,
            // Written by `insert` below; a blanked row holds `[]`.
            attachments: serde_json::from_str(&attachments).unwrap_or_default(),
            message_id: r.get(10)?,
        },
        state: OutboxState::parse(&r.get::<_, String>(11)?),
        attempts: r.get::<_, i64>(12)?.try_into().unwrap_or(u32::MAX),
        next_attempt: instant(r.get(13)?)?,
        last_reply: r.get(14)?,
        created_at: instant(r.get(15)?)?,
        sent_at: r.get::<_, Option<String>>(16)?.map(instant).transpose()?,
    })
}

fn insert(
    tx: &rusqlite::Transaction<'_>,
    letter: &Letter,
    now: DateTime<Utc>,
) -> rusqlite::Result<i64> {
    let attachments =
        serde_json::to_string(&letter.attachments).unwrap_or_else(|_| "[]".to_string());
    tx.execute(
        "INSERT INTO outbox (kind, address, recipient, name, lang, subject, text, html, attachments,
            message_id, state, attempts, next_attempt, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 'queued', 0, ?11, ?11)",
        params![
            letter.kind,
            letter.to.trim().to_lowercase(),
            letter.to,
            letter.name,
            letter.lang,
            letter.subject,
            letter.text,
            letter.html,
            attachments,
            letter.message_id,
            ts(&now),
        ],
    )?;
    Ok(tx.last_insert_rowid())
}

impl Ledger {
    /// Puts a letter in the outbox, due at once; returns its row id.
    pub fn post_letter(&mut self, letter: &Letter, now: DateTime<Utc>) -> Result<i64, LedgerError> {
        let err = self.err_owned();
        let tx = self.write()?;
        let id = insert(&tx, letter, now).map_err(&err)?;
        tx.commit().map_err(&err)?;
        Ok(id)
    }

    /// A sign-up and its confirmation letter, in one transaction, unless a confirmation
    /// was queued for the same address (`limit_key`, a keyed hash of it) less than
    /// `period` before `now`, or `bound` sign-ups wait already.
    #[allow(clippy::too_many_arguments)]
    pub fn queue_confirmation(
        &mut self,
        limit_key: &str,
        token_hash: &str,
        signup: &SignupRow,
        letter: &Letter,
        now: DateTime<Utc>,
        period: Duration,
        bound: u64,
    ) -> Result<Queued, LedgerError> {
        let err = self.err_owned();
        let tx = self.write()?;
        let last: Option<String> = tx
            .query_row(
                "SELECT last_mail FROM signup_limits WHERE key = ?1",
                [limit_key],
                |r| r.get(0),
            )
            .optional()
            .map_err(&err)?;
        if let Some(last) = last.and_then(|l| instant(l).ok())
            && last + period > now
        {
            return Ok(Queued::Limited);
        }
        let waiting: i64 = tx
            .query_row("SELECT count(*) FROM signups", [], |r| r.get(0))
            .map_err(&err)?;
        if waiting.max(0) as u64 >= bound {
            return Ok(Queued::Full);
        }
        tx.execute(
            "INSERT INTO signup_limits (key, last_mail) VALUES (?1, ?2)
             ON CONFLICT (key) DO UPDATE SET last_mail = excluded.last_mail",
            params![limit_key, ts(&now)],
        )
        .map_err(&err)?;
        super::subscribers::insert_signup(&tx, token_hash, signup).map_err(&err)?;
        let id = insert(&tx, letter, now).map_err(&err)?;
        tx.commit().map_err(&err)?;
        Ok(Queued::Letter(id))
    }

    /// Forgets the per-address limits older than `before` (they limit nothing any more),
    /// up to `limit` of them; returns how many.
    pub fn purge_signup_limits(
        &mut self,
        before: DateTime<Utc>,
        limit: usize,
    ) -> Result<usize, LedgerError> {
        self.purge_by("signup_limits", "last_mail", before, limit)
    }

    /// Up to `limit` letters due by `now` (queued, or `sending` when a crash cut their
    /// attempt short), oldest first, each marked `sending` with one more attempt in the
    /// same transaction.
    pub fn claim_letters(
        &mut self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<OutboxRow>, LedgerError> {
        let err = self.err_owned();
        let tx = self.write()?;
        let rows = {
            let mut stmt = tx
                .prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM outbox
                     WHERE state IN ('queued', 'sending') AND next_attempt <= ?1
                     ORDER BY next_attempt, id LIMIT ?2"
                ))
                .map_err(&err)?;
            let rows = stmt
                .query_map(params![ts(&now), limit as i64], row)
                .map_err(&err)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(&err)?
        };
        for r in &rows {
            tx.execute(
                "UPDATE outbox SET state = 'sending', attempts = attempts + 1 WHERE id = ?1",
                [r.id],
            )
            .map_err(&err)?;
        }
        tx.commit().map_err(&err)?;
        Ok(rows)
    }

    /// Records a letter sent (`Some(reply)`, at `at`) or given up (`failed`), blanking what
    /// it carried; or, with `retry`, due again then.
    pub fn letter_outcome(
        &mut self,
        id: i64,
        outcome: LetterOutcome,
        reply: &str,
        at: DateTime<Utc>,
    ) -> Result<(), LedgerError> {
        let err = self.err_owned();
        let tx = self.write()?;
        match outcome {
            LetterOutcome::Sent => tx.execute(
                "UPDATE outbox SET state = 'sent', last_reply = ?2, sent_at = ?3,
                    text = '', html = '', attachments = '[]' WHERE id = ?1",
                params![id, reply, ts(&at)],
            ),
            LetterOutcome::Failed => tx.execute(
                "UPDATE outbox SET state = 'failed', last_reply = ?2,
                    text = '', html = '', attachments = '[]' WHERE id = ?1",
                params![id, reply],
            ),
            LetterOutcome::Retry(next) => tx.execute(
                "UPDATE outbox SET state = 'queued', last_reply = ?2, next_attempt = ?3 WHERE id = ?1",
                params![id, reply, ts(&next)],
            ),
        }
        .map_err(&err)?;
        tx.commit().map_err(&err)
    }

    /// When the next waiting letter is due, if one waits.
    pub fn next_letter(&self) -> Result<Option<DateTime<Utc>>, LedgerError> {
        let next: Option<String> = self
            .conn
            .query_row(
                "SELECT min(next_attempt) FROM outbox WHERE state IN ('queued', 'sending')",
                [],
                |r| r.get(0),
            )
            .map_err(self.err())?;
        Ok(next.and_then(|n| instant(n).ok()))
    }

    /// Every letter to `address` (lower-cased), oldest first: what a subscriber's export
    /// lists, and what tests read.
    pub fn letters_to(&self, address: &str) -> Result<Vec<OutboxRow>, LedgerError> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM outbox WHERE address = ?1 ORDER BY id"
            ))
            .map_err(self.err())?;
        let rows = stmt.query_map([address], row).map_err(self.err())?;
        rows.collect::<Result<_, _>>().map_err(self.err())
    }
}

/// What an attempt at a letter came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LetterOutcome {
    Sent,
    Failed,
    Retry(DateTime<Utc>),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::Choices;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn letter(to: &str) -> Letter {
        Letter {
            to: to.into(),
            name: "Ada".into(),
            kind: "confirm".into(),
            lang: "sv".into(),
            subject: "Bekräfta".into(),
            text: "https://example.org/confirm/SECRET".into(),
            html: "<a href=\"https://example.org/confirm/SECRET\">".into(),
            attachments: vec![Attachment {
                name: "a.json".into(),
                content_type: "application/json".into(),
                bytes: b"{}".to_vec(),
            }],
            message_id: "<x@example.org>".into(),
        }
    }

    fn signup(address: &str) -> SignupRow {
        SignupRow {
            address: address.into(),
            email: address.into(),
            name: "Ada".into(),
            outlet: String::new(),
            choices: Choices {
                topics: String::new(),
                langs: String::new(),
                delivery: "each".into(),
            },
            created_at: t("2026-12-05T10:00:00Z"),
            expires_at: t("2026-12-07T10:00:00Z"),
        }
    }

    /// One confirmation per address per period, across connections (it is in the file);
    /// past the bound nothing is held; a sent letter keeps no token.
    #[test]
    fn a_confirmation_is_queued_once_per_period_and_sent_letters_keep_no_token() {
        let dir = tempfile::tempdir().unwrap();
        let mut l = Ledger::open_in(dir.path()).unwrap();
        let at = t("2026-12-05T10:00:00Z");
        let hour = Duration::hours(1);
        let q = |l: &mut Ledger, key: &str, hash: &str, at| {
            l.queue_confirmation(
                key,
                hash,
                &signup("ada@example.org"),
                &letter("Ada@example.org"),
                at,
                hour,
                2,
            )
            .unwrap()
        };
        assert!(matches!(q(&mut l, "k1", "h1", at), Queued::Letter(_)));
        assert_eq!(
            q(&mut l, "k1", "h2", at + Duration::minutes(59)),
            Queued::Limited
        );
        drop(l);
        let mut l = Ledger::open_in(dir.path()).unwrap();
        assert_eq!(
            q(&mut l, "k1", "h2", at + Duration::minutes(30)),
            Queued::Limited
        );
        assert!(matches!(
            q(&mut l, "k1", "h2", at + hour),
            Queued::Letter(_)
        ));
        assert_eq!(q(&mut l, "k2", "h3", at + hour), Queued::Full);
        assert_eq!(l.signups_waiting().unwrap(), 2);

        let claimed = l.claim_letters(at + hour, 10).unwrap();
        assert_eq!(claimed.len(), 2);
        assert!(
            l.claim_letters(at, 10).unwrap().len() <= 2,
            "sending rows are claimable after a crash"
        );
        l.letter_outcome(claimed[0].id, LetterOutcome::Sent, "250 ok", at + hour)
            .unwrap();
        l.letter_outcome(
            claimed[1].id,
            LetterOutcome::Retry(at + Duration::hours(2)),
            "451 later",
            at + hour,
        )
        .unwrap();
        assert_eq!(l.next_letter().unwrap(), Some(at + Duration::hours(2)));
        let rows = l.letters_to("ada@example.org").unwrap();
        assert_eq!(rows[0].state, OutboxState::Sent);
        assert_eq!(rows[0].letter.text, "");
        assert_eq!(rows[0].letter.html, "");
        assert!(rows[0].letter.attachments.is_empty());
        assert_eq!(rows[1].letter.attachments.len(), 1);
        assert_eq!(l.purge_signup_limits(at + hour, 10).unwrap(), 1);
    }
}
