//! The daemon's audience thread: reads the media list into the ledger (`media::sync`) and
//! fills each publication's deliveries from it (`publish::fill`), off the event loop. A
//! list of a million rows takes seconds to read and queue; the loop only sends jobs and
//! hears back when one is done, and the ledger's owner takes each batch as one short
//! request among the others (an unsubscribe POST, a build's commit, a mail run's claim).
//!
//! Jobs run one at a time in the order sent, so a publication that follows a change of
//! the list is filled from the new list: the sync the change asked for runs first. Two
//! syncs in a row are one.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::mpsc;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::clock;
use crate::config::Config;
use crate::ledger::Handle;
use crate::media::{self, Synced};
use crate::publish;
use crate::release::Release;

/// What the thread is asked to do.
pub enum Job {
    /// Read the media list into the ledger (at start, on a change of the file, on reload),
    /// with this config's path and site language.
    Sync(Box<Config>),
    /// Fill the deliveries of this release's dispatch `version` from the audience.
    Fill(Box<Config>, Arc<Release>, u32),
}

/// What the thread tells the loop.
#[derive(Debug)]
pub enum Done {
    Synced(Synced),
    /// A fill ended: how many it queued (None: stopped by shutdown).
    Filled {
        release: Arc<Release>,
        queued: Option<usize>,
    },
    Failed(String),
}

/// The way to send jobs; dropping it ends the thread once its job is done.
pub struct Audience {
    jobs: mpsc::Sender<Job>,
}

impl Audience {
    /// Starts the thread (on the tracker's blocking pool, so shutdown waits for it; `stop`
    /// ends a job between two batches).
    pub fn start(
        tracker: &TaskTracker,
        stop: CancellationToken,
        ledger: Handle,
        done: tokio::sync::mpsc::UnboundedSender<Done>,
    ) -> Audience {
        let (jobs, inbox) = mpsc::channel();
        tracker.spawn_blocking(move || serve(inbox, ledger, stop, done));
        Audience { jobs }
    }

    pub fn send(&self, job: Job) {
        // The thread is gone only at shutdown, when nothing is asked any more.
        let _ = self.jobs.send(job);
    }
}

fn serve(
    inbox: mpsc::Receiver<Job>,
    mut ledger: Handle,
    stop: CancellationToken,
    done: tokio::sync::mpsc::UnboundedSender<Done>,
) {
    let keep_going = || !stop.is_cancelled();
    let mut queue: VecDeque<Job> = VecDeque::new();
    loop {
        if queue.is_empty() {
            match inbox.recv() {
                Ok(job) => queue.push_back(job),
                Err(_) => return,
            }
        }
        queue.extend(inbox.try_iter());
        let Some(job) = queue.pop_front() else {
            continue;
        };
        if stop.is_cancelled() {
            return;
        }
        let answer = match job {
            Job::Sync(config) => {
                // A later sync in the queue reads the file as it is then: this one is it.
                if matches!(queue.front(), Some(Job::Sync(_))) {
                    continue;
                }
                let mut reported = 0usize;
                let result = media::sync(
                    &config.paths.media,
                    &config.site.lang,
                    &mut ledger,
                    &keep_going,
                    &mut |d| {
                        // A list of a million bad rows does not flood the journal.
                        reported += 1;
                        if reported <= 1000 {
                            tracing::warn!("{d}");
                        } else if reported == 1001 {
                            tracing::warn!(
                                "more problems in the media list: `pressroom check` lists them all"
                            );
                        }
                    },
                    clock::now(),
                );
                match result {
                    Ok(synced) => Done::Synced(synced),
                    Err(e) => {
                        Done::Failed(format!("cannot read the media list into the ledger: {e}"))
                    }
                }
            }
            Job::Fill(config, release, version) => {
                match publish::fill(
                    &mut ledger,
                    &config,
                    &release,
                    version,
                    &keep_going,
                    clock::now(),
                ) {
                    Ok(queued) => Done::Filled { release, queued },
                    Err(e) => Done::Failed(format!(
                        "cannot queue the mail of {}: {e}; it is queued when the daemon starts again",
                        release.slug
                    )),
                }
            }
        };
        if done.send(answer).is_err() {
            return;
        }
    }
}
