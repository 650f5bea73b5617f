//! The daemon's mail run: sends what is due of every waiting dispatch, inside the window.
//! It runs on a blocking thread of its own with its own current-thread runtime for its
//! SMTP connections (the sender's pipeline adds its keeper and composer threads), takes
//! the ledger's send lock for the run (a `pressroom send` by hand meanwhile is told the
//! daemon is sending, and the other way round), and stops claiming when the window closes
//! or the daemon shuts down: what was claimed is sent, so its outcomes are recorded.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use tokio_util::sync::CancellationToken;

use crate::clock;
use crate::config::Config;
use crate::http::Metrics;
use crate::ledger::{Handle, LockError, MEDIA, SendLock};
use crate::mail::policy::Window;
use crate::mail::sender::{self, Listing, Mailing, SendError, Summary};
use crate::mail::session::Session;
use crate::optout::TokenKey;
use crate::release::Release;

/// The releases whose mail may leave now, each in the version it may leave in (id →
/// content hash): what the core calls `Presence::Public`, set by the daemon as it plans
/// (after every build and wake-up) and asked by a run before each message (SPEC §4, "Mail
/// at hand-off"). A release pulled back, or edited (its new version must settle for
/// `[dispatch] hold`), stops its run's next message; the rest waits for the next run.
#[derive(Debug, Clone, Default)]
pub struct Sendable(Arc<RwLock<HashMap<String, String>>>);

impl Sendable {
    pub fn set(&self, now: HashMap<String, String>) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = now;
    }

    pub fn allows(&self, release: &Release) -> bool {
        self.0
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&release.id)
            .is_some_and(|hash| *hash == release.content_hash)
    }
}

/// One run: these release versions, as far as the window and shutdown allow.
pub struct Job {
    pub config: Config,
    /// The daemon's ledger owner: every claim and outcome is a request to it.
    pub ledger: Handle,
    pub dispatches: Vec<(Arc<Release>, u32)>,
    pub key: TokenKey,
    pub stop: CancellationToken,
    pub metrics: Arc<Metrics>,
    pub credentials: Option<std::path::PathBuf>,
    pub sendable: Sendable,
}

/// How a run ended.
#[derive(Debug)]
pub enum Finished {
    /// Another process holds the send lock; try again later.
    Busy,
    Ran {
        runs: Vec<Ran>,
        /// Dispatches left waiting because their release's file no longer gives the release
        /// that was published (edited or broken meanwhile): the next run tries again.
        unread: usize,
    },
}

/// What a run did for one release version.
#[derive(Debug)]
pub struct Ran {
    pub release: Arc<Release>,
    pub version: u32,
    pub summary: Summary,
    /// Nothing of the dispatch waits any more: everyone was mailed, or failed for good.
    pub complete: bool,
}

pub fn run(job: Job) -> anyhow::Result<Finished> {
    let started = Instant::now();
    let state = &job.config.paths.state;
    let _lock = match SendLock::acquire(state) {
        Ok(lock) => lock,
        Err(LockError::Busy { .. }) => return Ok(Finished::Busy),
        Err(e) => return Err(e.into()),
    };
    let mut ledger = job.ledger.clone();
    let now = clock::now();
    let interrupted = ledger.call(move |l| l.mark_interrupted(now))?;
    if interrupted > 0 {
        tracing::warn!(
            interrupted,
            "deliveries were in flight when sending last stopped: marked unknown, sent again with the same Message-ID"
        );
    }
    // Who is listed is read from the ledger's audience, per claimed batch (the daemon
    // syncs the media list into it at start and whenever the file changes): the run never
    // parses the file. A list that could not be read, or has not been read yet, holds the
    // mail back: nothing leaves and nothing is cancelled.
    let media = ledger.call(|l| l.audience_state(MEDIA))?;
    let waits = match (&media.unreadable, media.current) {
        (Some(why), _) => Some(why.clone()),
        (None, None) => Some("the media list has not been read yet".to_string()),
        (None, Some(_)) => None,
    };
    if let Some(why) = waits {
        tracing::warn!("{why}: the mail waits until the media list can be read");
        return Ok(Finished::Ran {
            runs: Vec::new(),
            unread: job.dispatches.len(),
        });
    }
    let session = Session::open(&job.config, job.credentials.as_deref())?;
    let window = Window::of(&job.config);
    let keep_going = || !job.stop.is_cancelled() && window.contains(clock::now());
    let mut ran = Vec::new();
    let mut unread = 0;
    for (release, version) in &job.dispatches {
        if !keep_going() {
            break;
        }
        // The catalog keeps only some releases' text in memory: the others' is read again.
        let release = match crate::catalog::with_text(&job.config, release) {
            Ok(release) => release,
            Err(d) => {
                tracing::warn!("{d}; its mail waits");
                unread += 1;
                continue;
            }
        };
        let originals = if *version > 1 {
            let id = release.id.clone();
            ledger.call(move |l| l.originals(&id))?
        } else {
            Default::default()
        };
        let dispatch = Mailing {
            config: &job.config,
            templates: &session.templates,
            key: &job.key,
            listing: Listing::Ledger,
            release: &release,
            version: *version,
            originals,
            signer: session.signer.as_ref(),
        };
        let summary = match sender::run(
            &dispatch,
            &mut ledger,
            &session.transport,
            &session.runtime,
            false,
            &|_| {},
            &|| keep_going() && job.sendable.allows(&release),
        ) {
            Ok(summary) => summary,
            // The server refused us (login, TLS): a configuration problem, not the
            // recipients'. Their deliveries wait; the run stops.
            Err(SendError::Refused { refusal, .. }) => {
                anyhow::bail!("sending stopped, the deliveries wait in the ledger: {refusal}")
            }
            Err(SendError::Ledger(e)) => return Err(e.into()),
            Err(e @ SendError::NoText(_)) => return Err(e.into()),
        };
        if !job.sendable.allows(&release) {
            tracing::info!(
                slug = %release.slug,
                "pulled back or changed while its mail was leaving: the rest waits"
            );
        }
        let (id, version) = (release.id.clone(), *version);
        // A dispatch whose deliveries are still being filled from the media list is not
        // complete however few wait now.
        let complete = ledger.call(move |l| {
            let filling = l
                .filling()?
                .iter()
                .any(|f| f.release_id == id && f.version == version);
            Ok(!filling && l.waiting(&id, version, None)? == 0)
        })?;
        tracing::info!(
            slug = %release.slug,
            version,
            sent = summary.sent,
            deferred = summary.deferred,
            failed = summary.failed,
            cancelled = summary.cancelled,
            complete,
            "mail run"
        );
        ran.push(Ran {
            release: Arc::clone(&release),
            version,
            summary,
            complete,
        });
    }
    job.metrics
        .send_seconds
        .observe(started.elapsed().as_secs_f64());
    Ok(Finished::Ran { runs: ran, unread })
}
