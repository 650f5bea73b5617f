//! What follows a build for the real now, in one place for the command line and the
//! daemon: the ledger records what the build saw together with each publication's mail
//! decision and the cancelled mail of withdrawn releases, in one transaction; only then
//! does the builder count it as known. A commit that fails leaves the builder as it was,
//! so the next build reports the same publications and their mail is still decided.
//!
//! A publication's deliveries are then filled from the audience (the media list as the
//! ledger holds it, `media::sync`) a batch per transaction (`fill`): a million recipients
//! are never one transaction nor one vector. The command line does it at once
//! (`record`); the daemon hands it to a thread of its own (`commit`, then `fill` there),
//! so its event loop and the ledger's other requests never wait for it.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::build::{BuildReport, Builder, Withdrawn};
use crate::config::Config;
use crate::ledger::{Audience, LedgerError, MEDIA, Publishing, Recorded, Sightings};
use crate::mail::decision;
use crate::release::Release;

/// What the commit did.
#[derive(Debug, Default)]
pub struct Committed {
    /// Each release seen public for the first time, and what its mail became.
    pub published: Vec<(Arc<Release>, Recorded)>,
    /// Each withdrawn release whose waiting deliveries were cancelled, and how many.
    pub cancelled: Vec<(Withdrawn, usize)>,
}

/// Whether the mail of a release whose file is gone is cancelled now (the command line)
/// or left to the caller's grace period (the daemon: an editor that saves by deleting and
/// writing makes a release vanish for a moment).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deleted {
    CancelNow,
    Wait,
}

/// Commits the build (`commit`), then reads the media list into the ledger and fills the
/// deliveries of every publication whose mail is being filled, each at once: the command
/// line's way. What each publication queued is in the answer.
pub fn record(
    ledger: &mut dyn Publishing,
    builder: &mut Builder,
    config: &Config,
    report: &mut BuildReport,
    deleted: Deleted,
    at: DateTime<Utc>,
) -> Result<Committed, LedgerError> {
    let mut committed = commit(ledger, builder, config, report, deleted, at)?;
    let filling = ledger.filling()?;
    if filling.is_empty() {
        return Ok(committed);
    }
    // Problems in the list are `check`'s to report; the rows that are valid are synced.
    crate::media::sync(
        &config.paths.media,
        &config.site.lang,
        ledger,
        &|| true,
        &mut |_| {},
        at,
    )?;
    for f in filling {
        let release = committed
            .published
            .iter()
            .find(|(r, _)| r.id == f.release_id)
            .map(|(r, _)| Arc::clone(r))
            .or_else(|| builder.release(&f.release_id));
        let Some(release) = release else { continue };
        let queued = fill(ledger, config, &release, f.version, &|| true, at)?;
        if let Some((_, recorded)) = committed
            .published
            .iter_mut()
            .find(|(r, _)| r.id == f.release_id)
        {
            *recorded = Recorded::Queued(queued.unwrap_or(0));
        }
    }
    Ok(committed)
}

/// Rows of the audience read per fill transaction.
pub const FILL_BATCH: usize = 5_000;

/// Fills the deliveries of `release`'s dispatch `version` from the audience, a batch
/// (`FILL_BATCH` rows) per transaction, from where its last committed batch ended, until
/// the audience is through or `keep_going` says stop. The first batch fixes the
/// generation of the media list it fills from: a list synced meanwhile is the next
/// publication's. Returns how many were queued now, or None if stopped.
pub fn fill(
    ledger: &mut dyn Audience,
    config: &Config,
    release: &Release,
    version: u32,
    keep_going: &dyn Fn() -> bool,
    at: DateTime<Utc>,
) -> Result<Option<usize>, LedgerError> {
    fill_by(ledger, config, release, version, FILL_BATCH, keep_going, at)
}

/// `fill` with `batch` rows of each source per transaction (the simulator's small
/// batches).
pub fn fill_by(
    ledger: &mut dyn Audience,
    config: &Config,
    release: &Release,
    version: u32,
    batch: usize,
    keep_going: &dyn Fn() -> bool,
    at: DateTime<Utc>,
) -> Result<Option<usize>, LedgerError> {
    let mut queued = 0;
    loop {
        if !keep_going() {
            return Ok(None);
        }
        let Some(f) = ledger
            .filling()?
            .into_iter()
            .find(|f| f.release_id == release.id && f.version == version)
        else {
            return Ok(Some(queued));
        };
        // Never synced: generation 0 has no rows, and the fill ends with nobody.
        let generation = match f.generation {
            Some(g) => g,
            None => ledger.audience_state(MEDIA)?.current.unwrap_or(0),
        };
        // The media list's generation merged with the subscribers, their own choices
        // in place of their row.
        let (rows, through) = ledger.audience_batch(generation, &f.after, batch)?;
        let next = match rows.last() {
            Some(last) if !through => Some(last.address.clone()),
            _ => None,
        };
        let who = decision::targets(config, release, &rows);
        drop(rows);
        queued += ledger
            .fill_batch(&release.id, version, generation, &f.after, who, next, at)?
            .unwrap_or(0);
    }
}

/// Records what the build saw with each publication's mail decided (its deliveries are
/// filled afterwards: `fill`), and the cancellation of withdrawn releases' mail, in one
/// transaction.
pub fn commit(
    ledger: &mut dyn Sightings,
    builder: &mut Builder,
    config: &Config,
    report: &mut BuildReport,
    deleted: Deleted,
    at: DateTime<Utc>,
) -> Result<Committed, LedgerError> {
    let withdrawn: Vec<Withdrawn> = report
        .withdrawn_releases
        .iter()
        .filter(|w| !w.deleted || deleted == Deleted::CancelNow)
        .cloned()
        .collect();
    let withdrawn_ids = withdrawn.iter().map(|w| w.id.clone()).collect();
    let newly_public = std::mem::take(&mut report.newly_public);
    if report.seen.is_empty() && newly_public.is_empty() && withdrawn.is_empty() {
        return Ok(Committed::default());
    }
    let publications = newly_public
        .iter()
        .map(|r| decision::decide(config, r, at))
        .collect();
    let seen = std::mem::take(&mut report.seen);
    let (recorded, cancelled) =
        ledger.commit_build(seen.clone(), publications, withdrawn_ids, at)?;
    builder.recorded(seen, at);
    Ok(Committed {
        published: newly_public.into_iter().zip(recorded).collect(),
        cancelled: withdrawn
            .into_iter()
            .zip(cancelled)
            .filter(|(_, n)| *n > 0)
            .collect(),
    })
}

/// After a build that could not write the site, or was refused on a clock set back: the
/// ledger records which file holds which release all the same (a file restored or renamed
/// meanwhile stays itself), and nothing else; what became public is recorded by the build
/// that publishes it.
pub fn record_identities(
    ledger: &mut dyn Sightings,
    builder: &mut Builder,
    at: DateTime<Utc>,
) -> Result<(), LedgerError> {
    let seen = builder.unrecorded();
    if seen.is_empty() {
        return Ok(());
    }
    ledger.commit_build(seen.clone(), Vec::new(), Vec::new(), at)?;
    builder.recorded(seen, at);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::{Ledger, MailDecision, Publication, Seen};
    use crate::release::Topic;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    /// A media list of `n` rows at `dir/media.csv`; every third takes sport only.
    fn write_list(dir: &std::path::Path, n: usize, skip: usize) -> std::path::PathBuf {
        let mut csv = String::from("email,name,outlet,lang,topics\n");
        for i in (0..n).filter(|i| *i != skip) {
            let topics = if i % 3 == 0 { "sport" } else { "" };
            csv.push_str(&format!("j{i:05}@example.org,J {i},T,,{topics}\n"));
        }
        let path = dir.join("media.csv");
        std::fs::write(&path, csv).unwrap();
        path
    }

    /// A fill cut short (a crash, a shutdown) goes on from its last committed batch, from
    /// the list it began with even when the file was replaced and synced meanwhile (that
    /// generation is kept until the fill ends): everyone it targets once, nobody twice, and
    /// nobody of a list it never read.
    #[test]
    fn a_fill_cut_short_resumes_from_its_last_batch_and_its_own_list() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::defaults(dir.path());
        let site = config.site.lang.clone();
        let n = 2 * FILL_BATCH + 100;
        config.paths.media = write_list(dir.path(), n, usize::MAX);
        let mut l = Ledger::open_in(&dir.path().join("state")).unwrap();
        let at = t("2018-10-18T07:00:00Z");
        // The media list synced into the ledger, as the daemon does after an edit.
        let sync = |l: &mut Ledger| {
            crate::media::sync(&config.paths.media, &site, l, &|| true, &mut |_| {}, at).unwrap()
        };
        let synced = sync(&mut l);
        assert_eq!(
            synced,
            crate::media::Synced::Rows {
                rows: n as u64,
                errors: 0
            }
        );
        let mut release = crate::planner::tests::release("du-avgor", "2018-10-18T00:00:00+02:00");
        release.topics = vec![Topic::parse("jamstalldhet").unwrap()];
        let p = Publication {
            release_id: release.id.clone(),
            content_hash: release.content_hash.clone(),
            first_seen: at,
            mail: Some(MailDecision::Audience),
        };
        l.commit_build(&Seen::default(), &[p], &[], at).unwrap();

        // Stopped after its first batch.
        let asked = std::cell::Cell::new(0);
        let once = || {
            asked.set(asked.get() + 1);
            asked.get() == 1
        };
        assert_eq!(fill(&mut l, &config, &release, 1, &once, at).unwrap(), None);
        let first = l.queued_count(&release.id, 1).unwrap();
        assert!(first > 0 && first < FILL_BATCH as u64, "{first}");

        // The office replaces the list: j10096, in the last batch, is gone. The fill reads
        // its own list on.
        let gone = n - 4;
        assert_eq!(format!("j{gone:05}"), "j10096");
        write_list(dir.path(), n, gone);
        sync(&mut l);
        let rest = fill(&mut l, &config, &release, 1, &|| true, at)
            .unwrap()
            .unwrap();
        let targeted = (0..n).filter(|i| i % 3 != 0).count() as u64;
        assert_eq!(first + rest as u64, targeted);
        assert_eq!(l.queued_count(&release.id, 1).unwrap(), targeted);
        assert!(
            l.deliveries(&release.id)
                .unwrap()
                .iter()
                .any(|d| d.address == "j10096@example.org"),
            "filled from the list it began with"
        );
        // Done: nothing left to fill, and the old list can go now.
        assert!(l.filling().unwrap().is_empty());
        assert_eq!(
            fill(&mut l, &config, &release, 1, &|| true, at).unwrap(),
            Some(0)
        );
        while l.prune_audience(MEDIA, FILL_BATCH).unwrap() > 0 {}
        assert_eq!(
            l.audience_state(MEDIA).unwrap().rows,
            n as u64 - 1,
            "the current list stays whole"
        );
    }
}
