//! The audience in the ledger: who may be mailed, one row per (source, generation,
//! address). Its one source today is the media list (`source = 'media'`, synced from
//! `config/media.csv` by `media::sync`); journalists who subscribe on the newsroom will be
//! a second source of the same table (issue 14), under the same targeting rule.
//!
//! A source is written a generation at a time: the rows of a new version of the file go
//! in under a new generation number, in batches of a few thousand per transaction (so an
//! unsubscribe POST or a build's commit waits one batch, not the whole list), and become
//! what readers see only when the last transaction switches `audience_sources.current` to
//! it. A reader therefore sees the old list or the new one, never a part of either. The
//! generations left behind are deleted afterwards, in batches too.
//!
//! A publication's deliveries are filled from one generation of the audience in batches
//! (`fill_batch`): the dispatch row remembers the generation and the last address filled,
//! updated in the same transaction as the deliveries it inserted, so a crash resumes where
//! the last committed batch ended and neither loses nor duplicates anyone.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};

use super::deliveries::ts;
use super::{Ledger, LedgerError, SubscriberRow};

/// The media list's rows.
pub const MEDIA: &str = "media";

/// One row of the audience as stored: plain values, read back into a
/// `media::Recipient` above the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudienceRow {
    /// The address lower-cased: the key of deliveries and opt-outs.
    pub address: String,
    /// The address as written.
    pub email: String,
    pub name: String,
    pub outlet: String,
    /// A language tag, or none: every language.
    pub lang: Option<String>,
    /// Topic names joined by `|`; empty: every topic.
    pub topics: String,
    /// The line of the source file it came from.
    pub line: u64,
    /// `each` or `digest`: a media-list row takes each release.
    pub delivery: String,
    pub paused: bool,
    /// A subscriber's own choices (the `subscribers` table), not a row of a source.
    pub own: bool,
}

/// Where a source stands.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceState {
    /// The generation readers see; none before the first sync.
    pub current: Option<i64>,
    /// Set when the last sync could not read the source: mail waits, the rows of
    /// `current` stay as they were.
    pub unreadable: Option<String>,
    /// How the file looked when `current` was read (device, inode, size, mtime): a file
    /// that still looks so need not be read again.
    pub stamp: Option<String>,
    pub rows: u64,
}

/// A row a sync left out of a generation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Skipped {
    /// Its address is in the generation already, from an earlier line (`first`).
    Repeated { line: u64, first: u64 },
    /// Its address was erased at the journalist's request: it stays out of every list.
    Erased { line: u64 },
}

/// A dispatch whose deliveries are still being filled from the audience.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filling {
    pub release_id: String,
    pub version: u32,
    /// The generation it fills from, fixed by its first batch.
    pub generation: Option<i64>,
    /// The last address filled ('' before the first batch).
    pub after: String,
}

const ROW_COLUMNS: &str = "address, email, name, outlet, lang, topics, line";

fn audience_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AudienceRow> {
    Ok(AudienceRow {
        address: r.get(0)?,
        email: r.get(1)?,
        name: r.get(2)?,
        outlet: r.get(3)?,
        lang: r.get(4)?,
        topics: r.get(5)?,
        line: r.get::<_, i64>(6)? as u64,
        delivery: "each".into(),
        paused: false,
        own: false,
    })
}

/// A confirmed subscriber as a row of the audience: their own choices.
fn own_row(s: SubscriberRow) -> AudienceRow {
    AudienceRow {
        address: s.address,
        email: s.email,
        name: s.name,
        outlet: s.outlet,
        lang: (!s.choices.langs.is_empty()).then_some(s.choices.langs),
        topics: s.choices.topics,
        line: 0,
        delivery: s.choices.delivery,
        paused: s.paused,
        own: true,
    }
}

/// The hashes of every erased address (a few: one per journalist who asked).
fn erased_hashes(tx: &rusqlite::Transaction<'_>) -> rusqlite::Result<HashSet<String>> {
    let mut stmt = tx.prepare_cached("SELECT hash FROM erasures")?;
    let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
    rows.collect()
}

impl Ledger {
    /// Where `source` stands.
    pub fn audience_state(&self, source: &str) -> Result<SourceState, LedgerError> {
        let state = self
            .conn
            .query_row(
                "SELECT current, unreadable, stamp, rows FROM audience_sources WHERE source = ?1",
                [source],
                |r| {
                    Ok(SourceState {
                        current: r.get(0)?,
                        unreadable: r.get(1)?,
                        stamp: r.get(2)?,
                        rows: r.get::<_, i64>(3)? as u64,
                    })
                },
            )
            .optional()
            .map_err(self.err())?;
        Ok(state.unwrap_or_default())
    }

    /// Starts writing a new generation of `source`: its number, invisible to readers until
    /// `switch_audience`.
    pub fn begin_audience(&mut self, source: &str) -> Result<i64, LedgerError> {
        let err = self.err_owned();
        let tx = self.write()?;
        tx.execute(
            "INSERT INTO audience_sources (source, latest) VALUES (?1, 0) ON CONFLICT DO NOTHING",
            [source],
        )
        .map_err(&err)?;
        let generation: i64 = tx
            .query_row(
                "UPDATE audience_sources SET latest = latest + 1 WHERE source = ?1 RETURNING latest",
                [source],
                |r| r.get(0),
            )
            .map_err(&err)?;
        tx.commit().map_err(&err)?;
        Ok(generation)
    }

    /// Writes a batch of rows into `generation` of `source`, in one transaction. A row whose
    /// address is in the generation already is left out (the first one counts), and so is
    /// one whose address was erased: each returned as `Skipped`.
    pub fn write_audience(
        &mut self,
        source: &str,
        generation: i64,
        rows: &[AudienceRow],
    ) -> Result<Vec<Skipped>, LedgerError> {
        let err = self.err_owned();
        let key = self.erasure.clone();
        let tx = self.write()?;
        let erased = erased_hashes(&tx).map_err(&err)?;
        let mut repeated = Vec::new();
        {
            let mut insert = tx
                .prepare_cached(&format!(
                    "INSERT INTO audience (source, generation, {ROW_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                     ON CONFLICT DO NOTHING"
                ))
                .map_err(&err)?;
            let mut first = tx
                .prepare_cached(
                    "SELECT line FROM audience WHERE source = ?1 AND generation = ?2 AND address = ?3",
                )
                .map_err(&err)?;
            for r in rows {
                if !erased.is_empty() && erased.contains(&key.hash(&r.address)) {
                    repeated.push(Skipped::Erased { line: r.line });
                    continue;
                }
                let added = insert
                    .execute(params![
                        source,
                        generation,
                        r.address,
                        r.email,
                        r.name,
                        r.outlet,
                        r.lang,
                        r.topics,
                        r.line as i64
                    ])
                    .map_err(&err)?;
                if added == 0 {
                    let line: i64 = first
                        .query_row(params![source, generation, r.address], |r| r.get(0))
                        .map_err(&err)?;
                    repeated.push(Skipped::Repeated {
                        line: r.line,
                        first: line as u64,
                    });
                }
            }
        }
        tx.commit().map_err(&err)?;
        Ok(repeated)
    }

    /// Makes `generation` what readers of `source` see, unless a later one already is; the
    /// source is readable again. Returns whether it switched.
    pub fn switch_audience(
        &mut self,
        source: &str,
        generation: i64,
        stamp: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<bool, LedgerError> {
        let err = self.err_owned();
        let tx = self.write()?;
        let rows: i64 = tx
            .query_row(
                "SELECT count(*) FROM audience WHERE source = ?1 AND generation = ?2",
                params![source, generation],
                |r| r.get(0),
            )
            .map_err(&err)?;
        let switched = tx
            .execute(
                "UPDATE audience_sources SET current = ?2, unreadable = NULL, stamp = ?3, rows = ?4, synced_at = ?5
                 WHERE source = ?1 AND (current IS NULL OR current < ?2)",
                params![source, generation, stamp, rows, ts(&at)],
            )
            .map_err(&err)?
            > 0;
        tx.commit().map_err(&err)?;
        Ok(switched)
    }

    /// Records that `source` could not be read (`why`): its rows stay as they were, and
    /// mail waits until it can be read again.
    pub fn audience_unreadable(&mut self, source: &str, why: &str) -> Result<(), LedgerError> {
        let err = self.err_owned();
        let tx = self.write()?;
        tx.execute(
            "INSERT INTO audience_sources (source, latest, unreadable) VALUES (?1, 0, ?2)
             ON CONFLICT (source) DO UPDATE SET unreadable = excluded.unreadable, stamp = NULL",
            params![source, why],
        )
        .map_err(&err)?;
        tx.commit().map_err(&err)
    }

    /// Deletes up to `limit` rows of `source`'s generations that nobody reads any more:
    /// older than the current one and not the one an unfinished fill reads. Returns how
    /// many; 0 when nothing is left to delete.
    pub fn prune_audience(&mut self, source: &str, limit: usize) -> Result<usize, LedgerError> {
        let err = self.err_owned();
        let tx = self.write()?;
        let n = tx
            .execute(
                "DELETE FROM audience WHERE rowid IN (
                    SELECT a.rowid FROM audience a JOIN audience_sources s ON s.source = a.source
                    WHERE a.source = ?1 AND a.generation < s.current
                      AND a.generation NOT IN (
                          SELECT fill_generation FROM dispatches
                          WHERE fill_after IS NOT NULL AND fill_generation IS NOT NULL)
                    LIMIT ?2)",
                params![source, limit as i64],
            )
            .map_err(&err)?;
        tx.commit().map_err(&err)?;
        Ok(n)
    }

    /// Up to `limit` rows of one generation of `source`, by address, after `after`.
    pub fn audience_rows(
        &self,
        source: &str,
        generation: i64,
        after: &str,
        limit: usize,
    ) -> Result<Vec<AudienceRow>, LedgerError> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "SELECT {ROW_COLUMNS} FROM audience WHERE source = ?1 AND generation = ?2 AND address > ?3
                 ORDER BY address LIMIT ?4"
            ))
            .map_err(self.err())?;
        let rows = stmt
            .query_map(
                params![source, generation, after, limit as i64],
                audience_row,
            )
            .map_err(self.err())?;
        rows.collect::<Result<_, _>>().map_err(self.err())
    }

    /// Up to `2 × limit` rows of the audience by address after `after` (`limit` of each
    /// source at most): the rows of one
    /// generation of the media list merged with the confirmed subscribers (read as they
    /// are now), a subscriber's own choices in place of their media-list row. Returns the
    /// rows and whether the audience is through. The batch ends where both sources have
    /// been read to, so a walk that goes on after its last address misses nobody.
    pub fn audience_batch(
        &self,
        generation: i64,
        after: &str,
        limit: usize,
    ) -> Result<(Vec<AudienceRow>, bool), LedgerError> {
        let limit = limit.max(1);
        let media = self.audience_rows(MEDIA, generation, after, limit)?;
        let own = self.subscribers(after, limit)?;
        // A source that gave a full batch may go on past its last address: the merged
        // batch stops there, and the next starts after it.
        let bound = [
            (media.len() == limit).then(|| media.last().map(|r| r.address.clone())),
            (own.len() == limit).then(|| own.last().map(|r| r.address.clone())),
        ]
        .into_iter()
        .flatten()
        .flatten()
        .min();
        let through = bound.is_none();
        // Up to the bound every subscriber of these addresses was read: their own row
        // stands in for the media list's. Beyond it one may not have been, so nothing
        // beyond it is taken.
        let mut rows: Vec<AudienceRow> = own.into_iter().map(own_row).collect();
        let theirs: std::collections::HashSet<String> =
            rows.iter().map(|r| r.address.clone()).collect();
        rows.extend(media.into_iter().filter(|r| !theirs.contains(&r.address)));
        if let Some(bound) = &bound {
            rows.retain(|r| r.address <= *bound);
        }
        rows.sort_by(|a, b| a.address.cmp(&b.address));
        Ok((rows, through))
    }

    /// Where each of these addresses (lower-cased) stands in the audience now: their own
    /// choices if they subscribed, else their row of the media list's current generation.
    /// What the hand-off check of a claimed batch reads.
    pub fn audience_listed(
        &self,
        addresses: &[String],
    ) -> Result<HashMap<String, AudienceRow>, LedgerError> {
        let mut found = self.listed(MEDIA, addresses)?;
        for address in addresses {
            if let Some(s) = self.subscriber(address)? {
                found.insert(address.clone(), own_row(s));
            }
        }
        Ok(found)
    }

    /// The current rows of `source` for these addresses (lower-cased), by address.
    pub fn listed(
        &self,
        source: &str,
        addresses: &[String],
    ) -> Result<HashMap<String, AudienceRow>, LedgerError> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "SELECT {ROW_COLUMNS} FROM audience a JOIN audience_sources s
                   ON s.source = a.source AND a.generation = s.current
                 WHERE a.source = ?1 AND a.address = ?2"
            ))
            .map_err(self.err())?;
        let mut found = HashMap::new();
        for address in addresses {
            if let Some(row) = stmt
                .query_row(params![source, address], audience_row)
                .optional()
                .map_err(self.err())?
            {
                found.insert(row.address.clone(), row);
            }
        }
        Ok(found)
    }

    /// Every dispatch whose deliveries are still being filled from the audience.
    pub fn filling(&self) -> Result<Vec<Filling>, LedgerError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT release_id, version, fill_generation, fill_after FROM dispatches
                 WHERE fill_after IS NOT NULL ORDER BY created_at, release_id",
            )
            .map_err(self.err())?;
        let rows = stmt
            .query_map([], |r| {
                Ok(Filling {
                    release_id: r.get(0)?,
                    version: r.get(1)?,
                    generation: r.get(2)?,
                    after: r.get(3)?,
                })
            })
            .map_err(self.err())?;
        rows.collect::<Result<_, _>>().map_err(self.err())
    }

    /// One batch of a dispatch's fill, in one transaction: queues `who` (address,
    /// Message-ID; opt-outs left out), and moves the dispatch's place to `next` (none:
    /// the fill is complete). Does nothing, and returns None, unless the dispatch still
    /// fills from `generation` (or from none yet) after `after`: a batch is never applied
    /// twice. Returns how many deliveries were queued.
    #[allow(clippy::too_many_arguments)]
    pub fn fill_batch(
        &mut self,
        release_id: &str,
        version: u32,
        generation: i64,
        after: &str,
        who: &[(String, String)],
        next: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<Option<usize>, LedgerError> {
        let err = self.err_owned();
        let key = self.erasure.clone();
        let tx = self.write()?;
        let moved = tx
            .execute(
                "UPDATE dispatches SET fill_generation = ?3, fill_after = ?5
                 WHERE release_id = ?1 AND version = ?2 AND fill_after = ?4
                   AND (fill_generation IS NULL OR fill_generation = ?3)",
                params![release_id, version, generation, after, next],
            )
            .map_err(&err)?;
        if moved == 0 {
            return Ok(None);
        }
        let mut n = 0;
        // An erased address is opted out for good; its hash is tested only when some
        // address was ever erased (a keyed hash per row costs a microsecond).
        let erased = erased_hashes(&tx).map_err(&err)?;
        {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT INTO deliveries (release_id, version, address, state, message_id, queued_at, updated_at)
                     SELECT ?1, ?2, ?3, 'queued', ?4, ?5, ?5
                     WHERE NOT EXISTS (SELECT 1 FROM optouts WHERE address = ?3)
                     ON CONFLICT DO NOTHING",
                )
                .map_err(&err)?;
            let at = ts(&at);
            for (address, message_id) in who {
                if !erased.is_empty() && erased.contains(&key.hash(address)) {
                    continue;
                }
                n += stmt
                    .execute(params![release_id, version, address, message_id, at])
                    .map_err(&err)?;
            }
        }
        tx.commit().map_err(&err)?;
        Ok(Some(n))
    }

    /// Records a dispatch of `release_id` `version` (unless one is recorded already) whose
    /// deliveries are to be filled from the audience from its start: a manual send walks
    /// the whole list again, and anyone already queued stays as they are.
    pub fn refill(
        &mut self,
        release_id: &str,
        version: u32,
        kind: &str,
        content_hash: &str,
        at: DateTime<Utc>,
    ) -> Result<(), LedgerError> {
        let err = self.err_owned();
        let tx = self.write()?;
        tx.execute(
            super::deliveries::INSERT_DISPATCH,
            params![release_id, version, kind, ts(&at), content_hash],
        )
        .map_err(&err)?;
        tx.execute(
            "UPDATE dispatches SET fill_after = '', fill_generation = NULL
             WHERE release_id = ?1 AND version = ?2",
            params![release_id, version],
        )
        .map_err(&err)?;
        tx.commit().map_err(&err)
    }

    /// How many deliveries a dispatch has, whatever their state.
    pub fn queued_count(&self, release_id: &str, version: u32) -> Result<u64, LedgerError> {
        self.conn
            .query_row(
                "SELECT count(*) FROM deliveries WHERE release_id = ?1 AND version = ?2",
                params![release_id, version],
                |r| r.get::<_, i64>(0),
            )
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

    fn row(address: &str, line: u64) -> AudienceRow {
        AudienceRow {
            address: address.to_lowercase(),
            email: address.into(),
            name: format!("Row {line}"),
            outlet: String::new(),
            lang: None,
            topics: String::new(),
            line,
            delivery: "each".into(),
            paused: false,
            own: false,
        }
    }

    fn current(l: &Ledger) -> Vec<String> {
        let g = l.audience_state(MEDIA).unwrap().current;
        g.map_or_else(Vec::new, |g| {
            l.audience_rows(MEDIA, g, "", 1000)
                .unwrap()
                .into_iter()
                .map(|r| r.address)
                .collect()
        })
    }

    /// A new version of the list written in batches is invisible until the switch: a
    /// reader in between (the hand-off check, a fill) sees the whole old list.
    #[test]
    fn batches_of_a_new_generation_are_invisible_until_the_switch() {
        let dir = tempfile::tempdir().unwrap();
        let mut l = Ledger::open_in(dir.path()).unwrap();
        let at = t("2018-10-18T07:00:00Z");
        let first = l.begin_audience(MEDIA).unwrap();
        l.write_audience(
            MEDIA,
            first,
            &[row("a@example.org", 2), row("b@example.org", 3)],
        )
        .unwrap();
        assert_eq!(current(&l), Vec::<String>::new(), "nothing before a switch");
        assert!(l.switch_audience(MEDIA, first, None, at).unwrap());
        assert_eq!(current(&l), ["a@example.org", "b@example.org"]);

        // The file is replaced: b removed, c and d added; written in two batches.
        let second = l.begin_audience(MEDIA).unwrap();
        l.write_audience(
            MEDIA,
            second,
            &[row("a@example.org", 2), row("c@example.org", 3)],
        )
        .unwrap();
        assert_eq!(
            current(&l),
            ["a@example.org", "b@example.org"],
            "half written"
        );
        let listed = l
            .listed(MEDIA, &["b@example.org".into(), "c@example.org".into()])
            .unwrap();
        assert!(listed.contains_key("b@example.org") && !listed.contains_key("c@example.org"));
        l.write_audience(MEDIA, second, &[row("d@example.org", 4)])
            .unwrap();
        assert!(l.switch_audience(MEDIA, second, Some("s"), at).unwrap());
        assert_eq!(
            current(&l),
            ["a@example.org", "c@example.org", "d@example.org"]
        );
        assert_eq!(l.audience_state(MEDIA).unwrap().rows, 3);
        // An older sync that ends late never switches back.
        assert!(!l.switch_audience(MEDIA, first, None, at).unwrap());
        assert_eq!(l.audience_state(MEDIA).unwrap().current, Some(second));
        // The old generation goes, in batches.
        assert_eq!(l.prune_audience(MEDIA, 1).unwrap(), 1);
        assert_eq!(l.prune_audience(MEDIA, 100).unwrap(), 1);
        assert_eq!(l.prune_audience(MEDIA, 100).unwrap(), 0);
        assert_eq!(current(&l).len(), 3);
    }

    #[test]
    fn a_repeated_address_counts_once_at_its_first_line() {
        let dir = tempfile::tempdir().unwrap();
        let mut l = Ledger::open_in(dir.path()).unwrap();
        let g = l.begin_audience(MEDIA).unwrap();
        assert!(
            l.write_audience(MEDIA, g, &[row("a@example.org", 2)])
                .unwrap()
                .is_empty()
        );
        let repeated = l
            .write_audience(MEDIA, g, &[row("A@example.org", 7)])
            .unwrap();
        assert_eq!(repeated, [Skipped::Repeated { line: 7, first: 2 }]);
    }

    /// The audience walked in small batches gives every address of the media list and
    /// of the subscribers once, in order, a subscriber's own row in place of their media
    /// row, whatever the batch size.
    #[test]
    fn a_walk_of_the_audience_merges_the_subscribers_once_whatever_the_batch() {
        let dir = tempfile::tempdir().unwrap();
        let mut l = Ledger::open_in(dir.path()).unwrap();
        let at = t("2018-10-18T07:00:00Z");
        let g = l.begin_audience(MEDIA).unwrap();
        let media: Vec<AudienceRow> = ["a", "c", "d", "f", "g", "h"]
            .iter()
            .enumerate()
            .map(|(i, n)| row(&format!("{n}@example.org"), i as u64 + 2))
            .collect();
        l.write_audience(MEDIA, g, &media).unwrap();
        l.switch_audience(MEDIA, g, None, at).unwrap();
        for n in ["b", "c", "e", "h", "i"] {
            l.put_subscriber(&SubscriberRow {
                address: format!("{n}@example.org"),
                email: format!("{n}@example.org"),
                name: "Own".into(),
                outlet: String::new(),
                choices: super::super::Choices {
                    topics: String::new(),
                    langs: String::new(),
                    delivery: "each".into(),
                },
                paused: false,
                confirmed_at: at,
                updated_at: at,
                digest_from: at,
            })
            .unwrap();
        }
        for limit in 1..=10 {
            let mut after = String::new();
            let mut seen = Vec::new();
            loop {
                let (rows, through) = l.audience_batch(g, &after, limit).unwrap();
                assert!(rows.len() <= 2 * limit, "{limit}");
                seen.extend(
                    rows.iter()
                        .map(|r| format!("{}{}", &r.address[..1], if r.own { "*" } else { "" })),
                );
                if through {
                    break;
                }
                after = rows
                    .last()
                    .expect("a batch not through has rows")
                    .address
                    .clone();
            }
            assert_eq!(
                seen,
                ["a", "b*", "c*", "d", "e*", "f", "g", "h*", "i*"],
                "batches of {limit}"
            );
        }
        let listed = l
            .audience_listed(&[
                "c@example.org".into(),
                "d@example.org".into(),
                "z@example.org".into(),
            ])
            .unwrap();
        assert!(listed["c@example.org"].own && !listed["d@example.org"].own);
        assert!(!listed.contains_key("z@example.org"));
    }

    /// A fill's batch moves its place with the deliveries it inserts: applied again (a
    /// retry after a crash that did commit), it does nothing.
    #[test]
    fn a_fill_batch_is_applied_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut l = Ledger::open_in(dir.path()).unwrap();
        let at = t("2018-10-18T07:00:00Z");
        l.conn
            .execute(
                "INSERT INTO dispatches (release_id, version, kind, created_at, content_hash, fill_after)
                 VALUES ('r', 1, 'auto', 'x', 'h', '')",
                [],
            )
            .unwrap();
        let who = [("a@example.org".to_string(), "<a>".to_string())];
        assert_eq!(
            l.fill_batch("r", 1, 1, "", &who, Some("a@example.org"), at)
                .unwrap(),
            Some(1)
        );
        assert_eq!(
            l.fill_batch("r", 1, 1, "", &who, Some("a@example.org"), at)
                .unwrap(),
            None
        );
        assert_eq!(
            l.fill_batch("r", 1, 2, "a@example.org", &[], None, at)
                .unwrap(),
            None,
            "another generation"
        );
        assert_eq!(
            l.fill_batch("r", 1, 1, "a@example.org", &[], None, at)
                .unwrap(),
            Some(0)
        );
        assert!(l.filling().unwrap().is_empty());
        assert_eq!(l.queued_count("r", 1).unwrap(), 1);
    }
}
