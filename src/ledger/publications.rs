//! What a build saw, recorded in one transaction: the sightings (first seen public,
//! corrections, what a withdrawal notice shows) together with the mail each new
//! publication decides and the cancelled mail of withdrawn releases. A crash leaves all of
//! it or none of it, so a release is never recorded as seen without its mail decided.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};

use super::deliveries::{INSERT_DISPATCH, ts};
use super::{Ledger, LedgerError, Notice};
use crate::release::identity::{PinChange, Pins};
use crate::release::revision::Revision;

/// What the ledger remembers of published releases, read when a builder starts.
#[derive(Debug, Clone, Default)]
pub struct History {
    pub revisions: HashMap<String, Revision>,
    pub notices: HashMap<String, Notice>,
    /// The id pinned to each file.
    pub pins: Pins,
    /// Every slug each release was seen public at.
    pub slugs: HashMap<String, Vec<String>>,
    /// The latest build instant a commit recorded (none yet: a new ledger).
    pub latest: Option<DateTime<Utc>>,
}

/// What one build saw that the ledger does not know yet.
#[derive(Debug, Clone, Default)]
pub struct Seen {
    /// New or changed revision records.
    pub revisions: Vec<(String, Revision)>,
    pub notices: Vec<(String, Notice)>,
    /// Ids pinned to files, or files gone.
    pub pins: Vec<PinChange>,
    /// (release id, slug) seen public for the first time.
    pub slugs: Vec<(String, String)>,
}

impl Seen {
    pub fn is_empty(&self) -> bool {
        self.revisions.is_empty()
            && self.notices.is_empty()
            && self.pins.is_empty()
            && self.slugs.is_empty()
    }
}

/// The mail a publication decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailDecision {
    /// Queue version 1 for everyone of the audience it targets: the dispatch is recorded
    /// with the sighting, its deliveries filled from the audience in batches afterwards
    /// (opt-outs left out as each batch is written).
    Audience,
    /// First seen more than `catch_up` after its date: decided, nobody queued.
    TooLate,
}

/// One release seen public for the first time, and its mail.
#[derive(Debug, Clone)]
pub struct Publication {
    pub release_id: String,
    pub content_hash: String,
    pub first_seen: DateTime<Utc>,
    /// None: the release is not mailed (`mail = false`); nothing is recorded for it.
    pub mail: Option<MailDecision>,
}

/// What the commit did for each publication, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// This many deliveries queued.
    Queued(usize),
    /// Decided for the audience; its deliveries are being filled.
    Filling,
    TooLate,
    NotMailed,
    /// A dispatch existed already (a manual send before the daemon saw it): nothing new.
    Before,
}

impl Ledger {
    /// The revisions and notices of every published release.
    pub fn history(&self) -> Result<History, LedgerError> {
        Ok(History {
            revisions: self.revisions()?,
            notices: self.notices()?,
            pins: self.pins()?,
            slugs: self.slugs()?,
            latest: self.latest_build()?,
        })
    }

    /// The latest build instant a commit recorded.
    pub fn latest_build(&self) -> Result<Option<DateTime<Utc>>, LedgerError> {
        let latest: Option<String> = self
            .conn
            .query_row("SELECT latest FROM clock WHERE id = 1", [], |row| {
                row.get(0)
            })
            .optional()
            .map_err(self.err())?;
        Ok(latest
            .and_then(|s| DateTime::parse_from_rfc3339(&s).ok())
            .map(|t| t.with_timezone(&Utc)))
    }

    /// Records a build's sightings, the mail of its publications, the cancellation of
    /// the waiting mail of `withdrawn` release ids and the build's instant `at` (the latest
    /// recorded stays if it is later), in one transaction. Returns what was
    /// decided for each publication and how many deliveries each withdrawal cancelled.
    pub fn commit_build(
        &mut self,
        seen: &Seen,
        publications: &[Publication],
        withdrawn: &[String],
        at: DateTime<Utc>,
    ) -> Result<(Vec<Recorded>, Vec<usize>), LedgerError> {
        let err = self.err_owned();
        let tx = self.write()?;
        // `ts` is fixed-width, so the later instant is the greater string.
        tx.execute(
            "INSERT INTO clock (id, latest) VALUES (1, ?1)
             ON CONFLICT (id) DO UPDATE SET latest = max(latest, excluded.latest)",
            params![ts(&at)],
        )
        .map_err(&err)?;
        {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT INTO revisions (release_id, hash, first_seen, updated) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (release_id) DO UPDATE SET hash = excluded.hash, updated = excluded.updated",
                )
                .map_err(&err)?;
            for (id, r) in &seen.revisions {
                stmt.execute(params![
                    id,
                    r.hash,
                    r.first_seen.to_rfc3339(),
                    r.updated.map(|u| u.to_rfc3339())
                ])
                .map_err(&err)?;
            }
            let mut stmt = tx
                .prepare_cached(
                    "INSERT INTO notices (release_id, slug, title, date, lang) VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (release_id) DO UPDATE SET slug = excluded.slug,
                        title = excluded.title, date = excluded.date, lang = excluded.lang",
                )
                .map_err(&err)?;
            for (id, n) in &seen.notices {
                stmt.execute(params![id, n.slug, n.title, n.date.to_rfc3339(), n.lang])
                    .map_err(&err)?;
            }
            super::identities::record(&tx, &seen.pins, &seen.slugs).map_err(&err)?;
        }
        let mut decided = Vec::with_capacity(publications.len());
        for p in publications {
            let Some(mail) = &p.mail else {
                decided.push(Recorded::NotMailed);
                continue;
            };
            let kind = match mail {
                MailDecision::Audience => "auto",
                MailDecision::TooLate => "late",
            };
            let added = tx
                .execute(
                    INSERT_DISPATCH,
                    params![p.release_id, 1, kind, ts(&p.first_seen), p.content_hash],
                )
                .map_err(&err)?;
            if added == 0 {
                decided.push(Recorded::Before);
                continue;
            }
            match mail {
                MailDecision::TooLate => decided.push(Recorded::TooLate),
                MailDecision::Audience => {
                    // Decided here, with the sighting; its deliveries are filled from the
                    // audience afterwards, a batch per transaction (`fill_batch`).
                    tx.execute(
                        "UPDATE dispatches SET fill_after = '' WHERE release_id = ?1 AND version = 1",
                        params![p.release_id],
                    )
                    .map_err(&err)?;
                    decided.push(Recorded::Filling);
                }
            }
        }
        let mut cancelled = Vec::with_capacity(withdrawn.len());
        {
            let mut stmt = tx
                .prepare_cached(
                    "UPDATE deliveries SET state = 'cancelled', updated_at = ?2, last_reply = 'withdrawn'
                     WHERE release_id = ?1 AND state IN ('queued', 'deferred', 'unknown')",
                )
                .map_err(&err)?;
            for id in withdrawn {
                cancelled.push(stmt.execute(params![id, ts(&at)]).map_err(&err)?);
            }
        }
        tx.commit().map_err(&err)?;
        Ok((decided, cancelled))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn publication(id: &str) -> Publication {
        Publication {
            release_id: id.into(),
            content_hash: "h".into(),
            first_seen: t("2018-10-18T07:00:00Z"),
            mail: Some(MailDecision::Audience),
        }
    }

    #[test]
    fn a_build_that_saw_a_revision_or_a_notice_is_not_empty() {
        let at = "2018-10-18T07:00:00Z".parse().unwrap();
        let revision = Revision {
            hash: "h".into(),
            first_seen: at,
            updated: None,
        };
        let notice = Notice {
            slug: "s".into(),
            title: "t".into(),
            date: at,
            lang: "sv".into(),
        };
        assert!(Seen::default().is_empty());
        let revisions = Seen {
            revisions: vec![("r".into(), revision)],
            ..Seen::default()
        };
        assert!(!revisions.is_empty());
        let notices = Seen {
            notices: vec![("r".into(), notice)],
            ..Seen::default()
        };
        assert!(!notices.is_empty());
    }

    #[test]
    fn a_sighting_and_its_mail_are_one_commit_and_decided_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut l = Ledger::open_in(dir.path()).unwrap();
        let at = t("2018-10-18T07:00:00Z");
        l.unsubscribe("b@example.org", super::super::OptOutSource::Command, at)
            .unwrap();
        let seen = Seen {
            revisions: vec![(
                "r".into(),
                Revision {
                    hash: "h".into(),
                    first_seen: at,
                    updated: None,
                },
            )],
            ..Seen::default()
        };
        let p = publication("r");
        let (decided, _) = l
            .commit_build(&seen, std::slice::from_ref(&p), &[], at)
            .unwrap();
        assert_eq!(decided, [Recorded::Filling]);
        assert!(l.history().unwrap().revisions.contains_key("r"));
        let filling = l.filling().unwrap();
        assert_eq!(filling.len(), 1, "{filling:?}");
        let who: Vec<(String, String)> = ["a@example.org", "b@example.org"]
            .iter()
            .map(|a| (a.to_string(), format!("<{a}>")))
            .collect();
        assert_eq!(
            l.fill_batch("r", 1, 1, "", &who, None, at).unwrap(),
            Some(1),
            "the opted-out one is left out"
        );
        let (again, _) = l.commit_build(&Seen::default(), &[p], &[], at).unwrap();
        assert_eq!(again, [Recorded::Before]);
        assert_eq!(l.deliveries("r").unwrap().len(), 1);
    }

    #[test]
    fn a_failed_commit_records_no_sighting() {
        let dir = tempfile::tempdir().unwrap();
        let mut l = Ledger::open_in(dir.path()).unwrap();
        let at = t("2018-10-18T07:00:00Z");
        let seen = Seen {
            revisions: vec![(
                "r".into(),
                Revision {
                    hash: "h".into(),
                    first_seen: at,
                    updated: None,
                },
            )],
            ..Seen::default()
        };
        // A second connection holds the write lock: the commit cannot take it.
        let other = rusqlite::Connection::open(dir.path().join(super::super::FILE_NAME)).unwrap();
        other.execute_batch("BEGIN IMMEDIATE").unwrap();
        l.conn
            .busy_timeout(std::time::Duration::from_millis(50))
            .unwrap();
        let e = l
            .commit_build(&seen, &[publication("r")], &[], at)
            .unwrap_err();
        assert!(e.is_busy(), "{e}");
        other.execute_batch("ROLLBACK").unwrap();
        assert!(l.history().unwrap().revisions.is_empty());
        assert!(l.deliveries("r").unwrap().is_empty());
    }

    #[test]
    fn a_commit_records_its_build_instant_and_the_latest_never_moves_back() {
        let dir = tempfile::tempdir().unwrap();
        let mut l = Ledger::open_in(dir.path()).unwrap();
        assert_eq!(l.history().unwrap().latest, None);
        let (later, earlier) = (t("2026-12-05T13:00:00.250Z"), t("2020-01-01T12:00:00Z"));
        l.commit_build(&Seen::default(), &[], &[], later).unwrap();
        assert_eq!(l.history().unwrap().latest, Some(later));
        l.commit_build(&Seen::default(), &[], &[], earlier).unwrap();
        assert_eq!(l.latest_build().unwrap(), Some(later));
        drop(l);
        let l = Ledger::open_in(dir.path()).unwrap();
        assert_eq!(
            l.history().unwrap().latest,
            Some(later),
            "kept across opens"
        );
    }
}
