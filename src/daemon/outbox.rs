//! The daemon's outbox task: sends the ledger's outbox (`mail::outbox`) as soon as a
//! letter is posted (`Wake`), whatever the dispatch window, and again when a retry is
//! due; and once an hour purges what the sign-up form leaves behind (sign-ups whose link
//! expired, per-address limits past their period), in batches. A pass runs on a blocking
//! thread with its own session (the SMTP connections belong to the runtime they were made
//! on, as in a mail run) and the config as last reloaded; the task waits between passes
//! on a wake-up, the next retry, the next purge or the daemon's stop.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use tokio_util::sync::CancellationToken;

use crate::clock;
use crate::http::Shared;
use crate::http::signup::ADDRESS_PERIOD;
use crate::ledger::Handle;
use crate::mail::outbox;

/// How often expired sign-ups are purged.
const PURGE_EVERY: TimeDelta = TimeDelta::hours(1);
/// Rows deleted per transaction while purging: the ledger's owner serves other requests
/// between two batches.
const PURGE_BATCH: usize = 1000;
/// A pass that fails (the ledger unreadable, no session) is tried again after this.
const AFTER_FAILURE: TimeDelta = TimeDelta::seconds(30);

pub async fn run(shared: Arc<Shared>, ledger: Handle, stop: CancellationToken) {
    let wake = shared.desk.wake.clone();
    let mut next_purge = clock::now();
    loop {
        let now = clock::now();
        if now >= next_purge {
            purge(&ledger, now).await;
            next_purge = now + PURGE_EVERY;
        }
        let next_letter = pass(&shared, &ledger, &stop).await;
        let until = next_letter.map_or(next_purge, |n| n.min(next_purge));
        let wait = (until - clock::now())
            .to_std()
            .unwrap_or(Duration::ZERO)
            .max(Duration::from_millis(10));
        tokio::select! {
            () = stop.cancelled() => break,
            () = wake.woken() => {}
            () = tokio::time::sleep(wait) => {}
        }
    }
}

/// Sends what is due, if anything is; says when the next letter is due.
async fn pass(
    shared: &Arc<Shared>,
    ledger: &Handle,
    stop: &CancellationToken,
) -> Option<DateTime<Utc>> {
    let due = match ledger.call_async(|l| l.next_letter()).await {
        Ok(next) => next?,
        Err(e) => {
            tracing::error!("cannot read the outbox: {e}");
            return Some(clock::now() + AFTER_FAILURE);
        }
    };
    if due > clock::now() {
        return Some(due);
    }
    let config = shared.site().config.clone();
    let ledger = ledger.clone();
    let stop = stop.clone();
    let sent = tokio::task::spawn_blocking(move || {
        let session = outbox::open_session(&config)?;
        let next = outbox::send_due(&config, &ledger, &session, &|| stop.is_cancelled())?;
        anyhow::Ok(next)
    })
    .await;
    match sent {
        Ok(Ok(next)) => next,
        Ok(Err(e)) => {
            tracing::error!("the outbox could not be sent: {e:#}");
            Some(clock::now() + AFTER_FAILURE)
        }
        Err(e) => {
            tracing::error!("the outbox's thread failed: {e}");
            Some(clock::now() + AFTER_FAILURE)
        }
    }
}

/// Deletes expired sign-ups and stale per-address limits, a batch per request.
async fn purge(ledger: &Handle, now: DateTime<Utc>) {
    let mut purged = 0;
    loop {
        match ledger
            .call_async(move |l| l.purge_signups(now, PURGE_BATCH))
            .await
        {
            Ok(n) => {
                purged += n;
                if n < PURGE_BATCH {
                    break;
                }
            }
            Err(e) => {
                tracing::error!("cannot purge expired sign-ups: {e}");
                return;
            }
        }
    }
    if purged > 0 {
        tracing::info!(purged, "expired sign-ups deleted");
    }
    let before = now - ADDRESS_PERIOD;
    loop {
        match ledger
            .call_async(move |l| l.purge_signup_limits(before, PURGE_BATCH))
            .await
        {
            Ok(n) if n == PURGE_BATCH => {}
            Ok(_) => break,
            Err(e) => {
                tracing::error!("cannot purge the sign-up limits: {e}");
                return;
            }
        }
    }
}
