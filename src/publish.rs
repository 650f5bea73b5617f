//! What follows a build for the real now, in one place for the command line and the
//! daemon: the ledger records what the build saw together with each publication's mail
//! decision and the cancelled mail of withdrawn releases, in one transaction; only then
//! does the builder count it as known. A commit that fails leaves the builder as it was,
//! so the next build reports the same publications and their mail is still decided.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::build::{BuildReport, Builder, Withdrawn};
use crate::config::Config;
use crate::ledger::{LedgerError, Recorded, Sightings};
use crate::mail::decision;
use crate::media::MediaList;
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

pub fn record(
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
    let publications = if newly_public.is_empty() {
        Vec::new()
    } else {
        let (media, _) = MediaList::load(&config.paths.media, &config.site.lang);
        newly_public
            .iter()
            .map(|r| decision::decide(config, &media, r, at))
            .collect()
    };
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
