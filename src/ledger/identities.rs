//! The `identities` table: the id pinned to each file of the releases folder (see
//! `release::identity` for the rule), and `slugs`: every slug at which a release was seen
//! public, so its old URLs can answer with a redirect to the new one.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use rusqlite::{Transaction, params};

use super::{Ledger, LedgerError};
use crate::release::identity::{Pin, PinChange, Pins};

impl Ledger {
    pub fn pins(&self) -> Result<Pins, LedgerError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT file, release_id, title, text, gone_at FROM identities")
            .map_err(self.err())?;
        let rows = stmt
            .query_map([], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, String>(3)?,
                    row.get::<_, Option<String>>(4)?,
                ))
            })
            .map_err(self.err())?;
        let mut out = Pins::new();
        for row in rows {
            let (file, id, title, text, gone_at) = row.map_err(self.err())?;
            let gone_at = gone_at.as_deref().and_then(|g| {
                DateTime::parse_from_rfc3339(g)
                    .ok()
                    .map(|t| t.with_timezone(&Utc))
            });
            out.insert(
                file,
                Pin {
                    id,
                    title,
                    text,
                    gone_at,
                },
            );
        }
        Ok(out)
    }

    /// Records pins outside a build: `send` mails a release under the id it gives it, so
    /// that id is its file's from then on.
    pub fn pin(&mut self, changes: &[PinChange]) -> Result<(), LedgerError> {
        if changes.is_empty() {
            return Ok(());
        }
        let err = self.err_owned();
        let tx = self.write()?;
        record(&tx, changes, &[]).map_err(&err)?;
        tx.commit().map_err(&err)
    }

    /// Every slug each release was seen public at, by release id.
    pub fn slugs(&self) -> Result<HashMap<String, Vec<String>>, LedgerError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT release_id, slug FROM slugs ORDER BY release_id, slug")
            .map_err(self.err())?;
        let rows = stmt
            .query_map([], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
            })
            .map_err(self.err())?;
        let mut out: HashMap<String, Vec<String>> = HashMap::new();
        for row in rows {
            let (id, slug) = row.map_err(self.err())?;
            out.entry(id).or_default().push(slug);
        }
        Ok(out)
    }
}

/// Writes pin changes and newly seen slugs inside a build's transaction.
pub(super) fn record(
    tx: &Transaction<'_>,
    pins: &[PinChange],
    slugs: &[(String, String)],
) -> rusqlite::Result<()> {
    let mut set = tx.prepare_cached(
        "INSERT INTO identities (file, release_id, title, text, gone_at) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (file) DO UPDATE SET release_id = excluded.release_id, title = excluded.title,
            text = excluded.text, gone_at = excluded.gone_at",
    )?;
    let mut remove = tx.prepare_cached("DELETE FROM identities WHERE file = ?1")?;
    for change in pins {
        match change {
            PinChange::Set { file, pin } => {
                set.execute(params![
                    file,
                    pin.id,
                    pin.title,
                    pin.text,
                    pin.gone_at.map(|g| g.to_rfc3339())
                ])?;
            }
            PinChange::Remove { file } => {
                remove.execute(params![file])?;
            }
        }
    }
    let mut slug = tx.prepare_cached(
        "INSERT INTO slugs (release_id, slug) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
    )?;
    for (id, s) in slugs {
        slug.execute(params![id, s])?;
    }
    Ok(())
}
