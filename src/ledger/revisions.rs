//! The `revisions` table: per release id, the content hash last seen public and when it
//! changed. See `release::revision` for the rule. Beside it, `notices`: what a published
//! release's page still shows (slug, title, date, language) after its file is deleted,
//! when the page says it was withdrawn.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use rusqlite::params;

use super::{Ledger, LedgerError};
use crate::release::revision::Revision;

fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// What the ledger remembers of a published release for its withdrawal notice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub slug: String,
    pub title: String,
    pub date: DateTime<Utc>,
    pub lang: String,
}

impl Ledger {
    pub fn notices(&self) -> Result<HashMap<String, Notice>, LedgerError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT release_id, slug, title, date, lang FROM notices")
            .map_err(self.err())?;
        let rows = stmt
            .query_map([], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, String>(3)?,
                    row.get::<_, String>(4)?,
                ))
            })
            .map_err(self.err())?;
        let mut out = HashMap::new();
        for row in rows {
            let (id, slug, title, date, lang) = row.map_err(self.err())?;
            if let Some(date) = parse_time(&date) {
                out.insert(
                    id,
                    Notice {
                        slug,
                        title,
                        date,
                        lang,
                    },
                );
            }
        }
        Ok(out)
    }

    /// Stores changed notices in one transaction.
    pub fn save_notices(&mut self, changed: &[(String, Notice)]) -> Result<(), LedgerError> {
        if changed.is_empty() {
            return Ok(());
        }
        let err = self.err_owned();
        let tx = self.write()?;
        {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT INTO notices (release_id, slug, title, date, lang) VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (release_id) DO UPDATE SET slug = excluded.slug,
                        title = excluded.title, date = excluded.date, lang = excluded.lang",
                )
                .map_err(&err)?;
            for (id, n) in changed {
                stmt.execute(params![id, n.slug, n.title, n.date.to_rfc3339(), n.lang])
                    .map_err(&err)?;
            }
        }
        tx.commit().map_err(&err)
    }

    pub fn revisions(&self) -> Result<HashMap<String, Revision>, LedgerError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT release_id, hash, first_seen, updated FROM revisions")
            .map_err(self.err())?;
        let rows = stmt
            .query_map([], |row| {
                let id: String = row.get(0)?;
                let hash: String = row.get(1)?;
                let first: String = row.get(2)?;
                let updated: Option<String> = row.get(3)?;
                Ok((id, hash, first, updated))
            })
            .map_err(self.err())?;
        let mut out = HashMap::new();
        for row in rows {
            let (id, hash, first, updated) = row.map_err(self.err())?;
            let Some(first_seen) = parse_time(&first) else {
                continue;
            };
            out.insert(
                id,
                Revision {
                    hash,
                    first_seen,
                    updated: updated.as_deref().and_then(parse_time),
                },
            );
        }
        Ok(out)
    }

    /// Stores changed records in one transaction.
    pub fn save_revisions(&mut self, changed: &[(String, Revision)]) -> Result<(), LedgerError> {
        if changed.is_empty() {
            return Ok(());
        }
        let path = self.path.clone();
        let err = move |source| LedgerError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.write()?;
        {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT INTO revisions (release_id, hash, first_seen, updated) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (release_id) DO UPDATE SET hash = excluded.hash, updated = excluded.updated",
                )
                .map_err(&err)?;
            for (id, r) in changed {
                stmt.execute(params![
                    id,
                    r.hash,
                    r.first_seen.to_rfc3339(),
                    r.updated.map(|u| u.to_rfc3339())
                ])
                .map_err(&err)?;
            }
        }
        tx.commit().map_err(&err)
    }
}
