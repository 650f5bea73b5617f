//! The `revisions` table: per release id, the content hash last seen public and when it
//! changed. See `release::revision` for the rule. Beside it, `notices`: what a published
//! release's page still shows (slug, title, date, language) after its file is deleted,
//! when the page says it was withdrawn.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::{Ledger, LedgerError};
use crate::release::revision::{Notice, Revision};

fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
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
}
