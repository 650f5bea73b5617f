//! The daemon's digests: making a period's digests (`make`, one ledger request per batch of
//! subscribers, so the owner serves the HTTP server's requests in between) and the run that
//! sends the waiting ones (`run`, on a blocking thread like a mail run, under the same
//! send lock: a `pressroom send` by hand and the daemon's runs never overlap).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use super::mailer::Finished;
use crate::clock;
use crate::config::Config;
use crate::digest::{self, Published};
use crate::ledger::{Handle, LedgerError, LockError, SendLock};
use crate::mail::digest::{self as mail_digest, DigestError, Sending};
use crate::mail::session::Session;
use crate::optout::TokenKey;
use crate::release::Release;

/// The releases whose mail may leave, by id, for a digest run's hand-off check: those
/// public and settled (`core::Presence::Public`: older than `[dispatch] hold`, not held,
/// the clock not behind), set when a run starts and at every plan while it runs, so a
/// release withdrawn or edited meanwhile leaves the next digest (and, not in any digest
/// yet, goes in a later one).
#[derive(Debug, Clone, Default)]
pub struct Shelf(Arc<RwLock<HashMap<String, Arc<Release>>>>);

impl Shelf {
    pub fn set<'a>(&self, releases: impl Iterator<Item = &'a Arc<Release>>) {
        let map = releases.map(|r| (r.id.clone(), Arc::clone(r))).collect();
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = map;
    }

    pub fn get(&self, id: &str) -> Option<Arc<Release>> {
        self.0
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()
    }
}

/// Makes the digests of `period` from the releases the ledger has seen public (the
/// builder's, with their first sightings), due at `due`; returns how many were queued.
pub fn make(
    ledger: &Handle,
    config: &Config,
    releases: Vec<Arc<Release>>,
    period: DateTime<Utc>,
    due: DateTime<Utc>,
) -> Result<usize, LedgerError> {
    let seen = ledger.call(|l| l.revisions())?;
    let published: Arc<Vec<(Arc<Release>, DateTime<Utc>)>> = Arc::new(
        releases
            .into_iter()
            .filter_map(|r| {
                let first_seen = seen.get(&r.id)?.first_seen;
                Some((r, first_seen))
            })
            .collect(),
    );
    let domain = config.mail.from.email.domain().to_string();
    let mut after = String::new();
    let mut queued = 0;
    loop {
        let (published, domain, from) = (Arc::clone(&published), domain.clone(), after.clone());
        let (n, last) = ledger.call(move |l| {
            let published: Vec<Published> = published
                .iter()
                .map(|(release, first_seen)| Published {
                    release,
                    first_seen: *first_seen,
                })
                .collect();
            digest::make_batch(l, &published, period, &domain, &from, due)
        })?;
        queued += n;
        match last {
            Some(last) => after = last,
            None => return Ok(queued),
        }
    }
}

/// One run of the waiting digests.
pub struct Job {
    pub config: Config,
    pub ledger: Handle,
    pub key: TokenKey,
    pub stop: CancellationToken,
    pub credentials: Option<std::path::PathBuf>,
    pub shelf: Shelf,
}

pub fn run(job: Job) -> anyhow::Result<Finished> {
    let _lock = match SendLock::acquire(&job.config.paths.state) {
        Ok(lock) => lock,
        Err(LockError::Busy { .. }) => return Ok(Finished::Busy),
        Err(e) => return Err(e.into()),
    };
    let mut ledger = job.ledger.clone();
    let now = clock::now();
    let interrupted = ledger.call(move |l| l.mark_digests_interrupted(now))?;
    if interrupted > 0 {
        tracing::warn!(
            interrupted,
            "digests were in flight when sending last stopped: marked unknown, sent again with the same Message-ID"
        );
    }
    let session = Session::open(&job.config, job.credentials.as_deref())?;
    let shelf = job.shelf.clone();
    let release = move |id: &str| shelf.get(id);
    let sending = Sending {
        config: &job.config,
        templates: &session.templates,
        key: &job.key,
        signer: session.signer.as_ref(),
        transport: &session.transport,
        runtime: &session.runtime,
        release: &release,
    };
    let stop = job.stop.clone();
    match mail_digest::send_due(&sending, &mut ledger, &|| !stop.is_cancelled()) {
        Ok(sent) => {
            tracing::info!(
                sent = sent.sent,
                deferred = sent.deferred,
                failed = sent.failed,
                cancelled = sent.cancelled,
                "digests"
            );
            Ok(Finished::Ran {
                runs: Vec::new(),
                unread: sent.unread,
            })
        }
        Err(DigestError::Refused(refusal)) => {
            anyhow::bail!("sending digests stopped, they wait in the ledger: {refusal}")
        }
        Err(DigestError::Ledger(e)) => Err(e.into()),
    }
}
