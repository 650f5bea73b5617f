//! Journalists who subscribed themselves on the newsroom (SPEC §6): the confirmed
//! subscribers with their own choices (`subscribers`), and the sign-ups waiting for the
//! link of their confirmation mail (`signups`, keyed by the hash of that link's token: the
//! token itself is never stored). Plain rows here; `crate::subscriber` reads them into
//! typed choices above the ledger.
//!
//! A confirmation is one transaction: the sign-up is taken (so a link works once), the
//! subscriber written with the choices it carried, every other sign-up of the address
//! dropped, and an opt-out of the address lifted (they subscribed again themselves).

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};

use super::deliveries::ts;
use super::{Ledger, LedgerError};

/// What a journalist chose, as stored: topic names and language tags joined by `|` (empty:
/// every topic, every language), and `each` or `digest`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Choices {
    pub topics: String,
    pub langs: String,
    pub delivery: String,
}

/// A confirmed subscriber.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriberRow {
    /// The address lower-cased: the key of deliveries and opt-outs.
    pub address: String,
    /// The address as written.
    pub email: String,
    pub name: String,
    pub outlet: String,
    pub choices: Choices,
    pub paused: bool,
    pub confirmed_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Releases public after this instant go in their next digest.
    pub digest_from: DateTime<Utc>,
}

/// A sign-up waiting for its confirmation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignupRow {
    pub address: String,
    pub email: String,
    pub name: String,
    pub outlet: String,
    pub choices: Choices,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// What a confirmation link did. (Made once per click: the row is not boxed.)
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)]
pub enum Confirmed {
    /// The subscriber is written (new, or their choices replaced).
    Subscribed(Box<SubscriberRow>),
    /// No sign-up has this token: used already, expired and purged, or never made.
    Unknown,
    /// The sign-up exists but its link expired: nothing written.
    Expired,
}

const SUBSCRIBER_COLUMNS: &str = "address, email, name, outlet, topics, langs, delivery, paused, confirmed_at, updated_at, digest_from";
const SIGNUP_COLUMNS: &str =
    "address, email, name, outlet, topics, langs, delivery, created_at, expires_at";

fn instant(s: String) -> rusqlite::Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(&s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, e.into())
        })
}

pub(super) fn subscriber_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SubscriberRow> {
    Ok(SubscriberRow {
        address: r.get(0)?,
        email: r.get(1)?,
        name: r.get(2)?,
        outlet: r.get(3)?,
        choices: Choices {
            topics: r.get(4)?,
            langs: r.get(5)?,
            delivery: r.get(6)?,
        },
        paused: r.get::<_, i64>(7)? != 0,
        confirmed_at: instant(r.get(8)?)?,
        updated_at: instant(r.get(9)?)?,
        digest_from: instant(r.get(10)?)?,
    })
}

fn signup_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SignupRow> {
    Ok(SignupRow {
        address: r.get(0)?,
        email: r.get(1)?,
        name: r.get(2)?,
        outlet: r.get(3)?,
        choices: Choices {
            topics: r.get(4)?,
            langs: r.get(5)?,
            delivery: r.get(6)?,
        },
        created_at: instant(r.get(7)?)?,
        expires_at: instant(r.get(8)?)?,
    })
}

fn upsert(tx: &rusqlite::Transaction<'_>, row: &SubscriberRow) -> rusqlite::Result<usize> {
    tx.execute(
        &format!(
            "INSERT INTO subscribers ({SUBSCRIBER_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
             ON CONFLICT (address) DO UPDATE SET email = excluded.email, name = excluded.name,
               outlet = excluded.outlet, topics = excluded.topics, langs = excluded.langs,
               delivery = excluded.delivery, paused = excluded.paused, updated_at = excluded.updated_at,
               digest_from = CASE WHEN subscribers.delivery <> 'digest' AND excluded.delivery = 'digest'
                                  THEN excluded.digest_from ELSE subscribers.digest_from END"
        ),
        params![
            row.address,
            row.email,
            row.name,
            row.outlet,
            row.choices.topics,
            row.choices.langs,
            row.choices.delivery,
            row.paused as i64,
            ts(&row.confirmed_at),
            ts(&row.updated_at),
            ts(&row.digest_from),
        ],
    )
}

/// A sign-up row, inside a transaction of the caller's (`add_signup`, and the outbox's
/// `queue_confirmation`, which holds it together with its letter).
pub(super) fn insert_signup(
    tx: &rusqlite::Transaction<'_>,
    token_hash: &str,
    row: &SignupRow,
) -> rusqlite::Result<usize> {
    tx.execute(
        &format!(
            "INSERT INTO signups (token_hash, {SIGNUP_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
        ),
        params![
            token_hash,
            row.address,
            row.email,
            row.name,
            row.outlet,
            row.choices.topics,
            row.choices.langs,
            row.choices.delivery,
            ts(&row.created_at),
            ts(&row.expires_at),
        ],
    )
}

impl Ledger {
    /// The confirmed subscriber at `address` (lower-cased), if any.
    pub fn subscriber(&self, address: &str) -> Result<Option<SubscriberRow>, LedgerError> {
        self.conn
            .query_row(
                &format!("SELECT {SUBSCRIBER_COLUMNS} FROM subscribers WHERE address = ?1"),
                [address],
                subscriber_row,
            )
            .optional()
            .map_err(self.err())
    }

    /// Up to `limit` confirmed subscribers by address, after `after`.
    pub fn subscribers(
        &self,
        after: &str,
        limit: usize,
    ) -> Result<Vec<SubscriberRow>, LedgerError> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "SELECT {SUBSCRIBER_COLUMNS} FROM subscribers WHERE address > ?1 ORDER BY address LIMIT ?2"
            ))
            .map_err(self.err())?;
        let rows = stmt
            .query_map(params![after, limit as i64], subscriber_row)
            .map_err(self.err())?;
        rows.collect::<Result<_, _>>().map_err(self.err())
    }

    /// Every confirmed subscriber, by address (the command line's view of the audience).
    pub fn all_subscribers(&self) -> Result<Vec<SubscriberRow>, LedgerError> {
        self.subscribers("", i64::MAX as usize)
    }

    /// Writes a subscriber's choices (the preferences page): a new row keeps
    /// `confirmed_at` and `digest_from` as given, an existing one keeps its own — but for
    /// a switch from each release to the digest, whose first digest starts at the switch
    /// (`digest_from` as given): what they were mailed one by one is not sent again.
    pub fn put_subscriber(&mut self, row: &SubscriberRow) -> Result<(), LedgerError> {
        let err = self.err_owned();
        let tx = self.write()?;
        upsert(&tx, row).map_err(&err)?;
        tx.commit().map_err(&err)
    }

    /// Records a sign-up waiting for the link whose token hashes to `token_hash`.
    pub fn add_signup(&mut self, token_hash: &str, row: &SignupRow) -> Result<(), LedgerError> {
        let err = self.err_owned();
        let tx = self.write()?;
        insert_signup(&tx, token_hash, row).map_err(&err)?;
        tx.commit().map_err(&err)
    }

    /// The sign-up a confirmation link's token hashes to, if it is still held.
    pub fn signup(&self, token_hash: &str) -> Result<Option<SignupRow>, LedgerError> {
        self.conn
            .query_row(
                &format!("SELECT {SIGNUP_COLUMNS} FROM signups WHERE token_hash = ?1"),
                [token_hash],
                signup_row,
            )
            .optional()
            .map_err(self.err())
    }

    /// Confirms the sign-up whose token hashes to `token_hash`, at `at`, in one
    /// transaction: the sign-up and every other one of its address are taken, the
    /// subscriber written with its choices (a subscriber already there keeps
    /// `confirmed_at` and `digest_from`), and an opt-out of the address lifted.
    pub fn confirm_signup(
        &mut self,
        token_hash: &str,
        at: DateTime<Utc>,
    ) -> Result<Confirmed, LedgerError> {
        let err = self.err_owned();
        let key = self.erasure.clone();
        let tx = self.write()?;
        let signup = tx
            .query_row(
                &format!("SELECT {SIGNUP_COLUMNS} FROM signups WHERE token_hash = ?1"),
                [token_hash],
                signup_row,
            )
            .optional()
            .map_err(&err)?;
        let Some(s) = signup else {
            return Ok(Confirmed::Unknown);
        };
        if s.expires_at <= at {
            return Ok(Confirmed::Expired);
        }
        let row = SubscriberRow {
            address: s.address.clone(),
            email: s.email,
            name: s.name,
            outlet: s.outlet,
            choices: s.choices,
            paused: false,
            confirmed_at: at,
            updated_at: at,
            digest_from: at,
        };
        upsert(&tx, &row).map_err(&err)?;
        tx.execute("DELETE FROM signups WHERE address = ?1", [&s.address])
            .map_err(&err)?;
        // An erasure is an opt-out too: a journalist who signs up again and confirms it
        // from their own mailbox lifts it (their data starts anew from this row).
        let erased = tx
            .execute(
                "DELETE FROM erasures WHERE hash = ?1",
                [key.hash(&s.address)],
            )
            .map_err(&err)?;
        let lifted = erased
            + tx.execute("DELETE FROM optouts WHERE address = ?1", [&s.address])
                .map_err(&err)?;
        if lifted > 0 {
            tx.execute(
                "INSERT INTO optout_log (address, action, at, source) VALUES (?1, 'resubscribe', ?2, 'signup')",
                params![s.address, at.to_rfc3339()],
            )
            .map_err(&err)?;
        }
        let row = tx
            .query_row(
                &format!("SELECT {SUBSCRIBER_COLUMNS} FROM subscribers WHERE address = ?1"),
                [&s.address],
                subscriber_row,
            )
            .map_err(&err)?;
        tx.commit().map_err(&err)?;
        Ok(Confirmed::Subscribed(Box::new(row)))
    }

    /// Deletes up to `limit` sign-ups whose link expired by `at`; returns how many.
    pub fn purge_signups(&mut self, at: DateTime<Utc>, limit: usize) -> Result<usize, LedgerError> {
        self.purge_by("signups", "expires_at", at, limit)
    }

    /// Deletes, in one transaction, up to `limit` rows of `table` whose instant `column`
    /// is at or before `at`; returns how many (0: none left).
    pub(super) fn purge_by(
        &mut self,
        table: &'static str,
        column: &'static str,
        at: DateTime<Utc>,
        limit: usize,
    ) -> Result<usize, LedgerError> {
        let err = self.err_owned();
        let tx = self.write()?;
        let n = tx
            .execute(
                &format!(
                    "DELETE FROM {table} WHERE rowid IN (
                        SELECT rowid FROM {table} WHERE {column} <= ?1 LIMIT ?2)"
                ),
                params![ts(&at), limit as i64],
            )
            .map_err(&err)?;
        tx.commit().map_err(&err)?;
        Ok(n)
    }

    /// How many sign-ups are waiting (the form's storage bound).
    pub fn signups_waiting(&self) -> Result<u64, LedgerError> {
        self.conn
            .query_row("SELECT count(*) FROM signups", [], |r| r.get::<_, i64>(0))
            .map(|n| n as u64)
            .map_err(self.err())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn signup(address: &str, topics: &str, expires: &str) -> SignupRow {
        SignupRow {
            address: address.to_lowercase(),
            email: address.into(),
            name: "Ada".into(),
            outlet: "Example Times".into(),
            choices: Choices {
                topics: topics.into(),
                langs: "sv".into(),
                delivery: "each".into(),
            },
            created_at: t("2026-12-05T10:00:00Z"),
            expires_at: t(expires),
        }
    }

    /// A switch from each release to the digest starts the digest at the switch; any
    /// other change of choices keeps where the digest stands.
    #[test]
    fn a_switch_to_the_digest_starts_it_at_the_switch() {
        let dir = tempfile::tempdir().unwrap();
        let mut l = Ledger::open_in(dir.path()).unwrap();
        let confirmed = t("2026-12-01T10:00:00Z");
        let mut row = SubscriberRow {
            address: "ada@example.org".into(),
            email: "ada@example.org".into(),
            name: "Ada".into(),
            outlet: String::new(),
            choices: Choices {
                topics: String::new(),
                langs: String::new(),
                delivery: "each".into(),
            },
            paused: false,
            confirmed_at: confirmed,
            updated_at: confirmed,
            digest_from: confirmed,
        };
        l.put_subscriber(&row).unwrap();
        let switched = t("2026-12-03T09:00:00Z");
        row.choices.delivery = "digest".into();
        row.updated_at = switched;
        row.digest_from = switched;
        l.put_subscriber(&row).unwrap();
        assert_eq!(
            l.subscriber("ada@example.org")
                .unwrap()
                .unwrap()
                .digest_from,
            switched
        );
        row.choices.topics = "Sport".into();
        row.digest_from = t("2026-12-04T09:00:00Z");
        l.put_subscriber(&row).unwrap();
        let held = l.subscriber("ada@example.org").unwrap().unwrap();
        assert_eq!((held.digest_from, held.confirmed_at), (switched, confirmed));
    }

    /// A link confirms once; a second click, an expired link and an unknown one write
    /// nothing; a confirmation lifts the address's opt-out and drops its other sign-ups.
    #[test]
    fn a_confirmation_link_works_once_and_lifts_the_opt_out() {
        let dir = tempfile::tempdir().unwrap();
        let mut l = Ledger::open_in(dir.path()).unwrap();
        let at = t("2026-12-05T10:05:00Z");
        l.unsubscribe("ada@example.org", super::super::OptOutSource::Command, at)
            .unwrap();
        l.add_signup(
            "h1",
            &signup("Ada@example.org", "Sport", "2026-12-06T10:00:00Z"),
        )
        .unwrap();
        l.add_signup(
            "h2",
            &signup("ada@example.org", "Miljö", "2026-12-06T10:00:00Z"),
        )
        .unwrap();
        l.add_signup("old", &signup("bo@example.org", "", "2026-12-05T10:01:00Z"))
            .unwrap();
        assert_eq!(l.confirm_signup("old", at).unwrap(), Confirmed::Expired);
        assert_eq!(l.subscriber("bo@example.org").unwrap(), None);

        let Confirmed::Subscribed(row) = l.confirm_signup("h1", at).unwrap() else {
            panic!("not confirmed")
        };
        assert_eq!(row.email, "Ada@example.org");
        assert_eq!(row.choices.topics, "Sport");
        assert_eq!(row.digest_from, at);
        assert!(!l.is_opted_out("ada@example.org").unwrap());
        assert_eq!(l.confirm_signup("h1", at).unwrap(), Confirmed::Unknown);
        assert_eq!(l.confirm_signup("h2", at).unwrap(), Confirmed::Unknown);
        assert_eq!(l.subscribers("", 10).unwrap().len(), 1);

        assert_eq!(l.purge_signups(at, 10).unwrap(), 1);
        assert_eq!(l.signups_waiting().unwrap(), 0);
    }
}
