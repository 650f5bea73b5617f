//! Sending one dispatch (a release version to its recipients). Deliveries are claimed from
//! the ledger in small batches (their `sending` intent committed first), composed, and handed
//! to the transport with `concurrency` messages in flight and the rate enforced; the batch's
//! outcomes are then committed together. Memory stays flat in the number of recipients: only
//! one batch is ever held.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Instant;

use chrono::{DateTime, Utc};
use futures_util::stream::{self, StreamExt};

use super::compose::{self, Kind, Letter, Transfer};
use super::rate::Bucket;
use super::transport::Transport;
use crate::clock;
use crate::config::Config;
use crate::dispatch::{self, Attempt, Next};
use crate::ledger::{Delivery, Due, Ledger, LedgerError, Outcome};
use crate::media::{MediaList, Recipient};
use crate::optout::TokenKey;
use crate::release::Release;
use crate::render::Templates;

/// Everything needed to compose the messages of one dispatch.
pub struct Dispatch<'a> {
    pub config: &'a Config,
    pub templates: &'a Templates,
    pub key: &'a TokenKey,
    pub media: &'a MediaList,
    pub release: &'a Release,
    pub version: u32,
    /// For a correction: each recipient's original Message-ID, to thread to.
    pub originals: HashMap<String, String>,
    /// Send only to this address (`send --to`).
    pub only: Option<String>,
}

/// What one run did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    pub sent: usize,
    pub deferred: usize,
    pub failed: usize,
    pub cancelled: usize,
}

impl Summary {
    pub fn total(&self) -> usize {
        self.sent + self.deferred + self.failed + self.cancelled
    }
}

/// Sends every waiting delivery of the dispatch once. `manual` sends deferred ones at once
/// (each once per run); otherwise only those whose retry time has come.
pub async fn run(
    d: &Dispatch<'_>,
    ledger: &mut Ledger,
    transport: &Transport,
    manual: bool,
    on_progress: &dyn Fn(&Summary),
) -> Result<Summary, LedgerError> {
    let started = clock::now();
    let concurrency = d.config.mail.concurrency.max(1);
    let batch_size = (concurrency * 4).max(16);
    let bucket = Mutex::new(Bucket::new(d.config.mail.rate, Instant::now()));
    let prepared = compose::Prepared::new(d.config, d.release);
    let prepared = &prepared;
    let composing = Composing {
        prepared,
        transfer: transport.transfer().await,
    };
    let composing = &composing;
    let names: HashMap<String, &Recipient> =
        d.media.recipients.iter().map(|r| (r.key(), r)).collect();
    let mut summary = Summary::default();
    loop {
        let now = clock::now();
        let due = if manual {
            Due::UntouchedSince(started)
        } else {
            Due::By(now)
        };
        let batch = ledger.claim(
            &d.release.id,
            d.version,
            due,
            d.only.as_deref(),
            batch_size,
            now,
        )?;
        if batch.is_empty() {
            break;
        }
        let opted_out = ledger.opted_out()?;
        let attempts = batch.into_iter().map(|delivery| {
            attempt(
                d, composing, transport, &bucket, &names, &opted_out, delivery,
            )
        });
        let outcomes: Vec<(Delivery, Outcome)> = stream::iter(attempts)
            .buffer_unordered(concurrency)
            .collect()
            .await;
        for (_, outcome) in &outcomes {
            match outcome {
                Outcome::Sent { .. } => summary.sent += 1,
                Outcome::Deferred { .. } => summary.deferred += 1,
                Outcome::Failed { .. } => summary.failed += 1,
                Outcome::Cancelled { .. } => summary.cancelled += 1,
            }
        }
        ledger.record(&outcomes, clock::now())?;
        on_progress(&summary);
    }
    Ok(summary)
}

/// What every message of the dispatch is composed with.
struct Composing<'a> {
    prepared: &'a compose::Prepared,
    transfer: Transfer,
}

/// One delivery: compose, wait for the rate, send, decide.
async fn attempt(
    d: &Dispatch<'_>,
    composing: &Composing<'_>,
    transport: &Transport,
    bucket: &Mutex<Bucket>,
    names: &HashMap<String, &Recipient>,
    opted_out: &HashSet<String>,
    delivery: Delivery,
) -> (Delivery, Outcome) {
    if opted_out.contains(&delivery.address) {
        return (
            delivery,
            Outcome::Cancelled {
                reason: "opted out".into(),
            },
        );
    }
    let recipient = match names.get(&delivery.address) {
        Some(r) => (*r).clone(),
        None => match delivery.address.parse() {
            Ok(email) => Recipient {
                email,
                name: String::new(),
                outlet: String::new(),
                lang: None,
                topics: Vec::new(),
                line: 0,
            },
            Err(e) => {
                return (
                    delivery,
                    Outcome::Failed {
                        reply: format!("not an address: {e}"),
                    },
                );
            }
        },
    };
    let kind = match d.originals.get(&delivery.address) {
        Some(original) if d.version > 1 => Kind::Update {
            original: original.clone(),
        },
        _ => Kind::Original,
    };
    let letter = Letter {
        release: d.release,
        prepared: composing.prepared,
        recipient: &recipient,
        kind,
        version: d.version,
        date: clock::now(),
        transfer: composing.transfer,
    };
    let message = match compose::compose(d.config, d.templates, d.key, &letter) {
        Ok(composed) => composed.message,
        Err(e) => {
            return (
                delivery,
                Outcome::Failed {
                    reply: e.to_string(),
                },
            );
        }
    };
    loop {
        let wait = bucket
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take(Instant::now());
        match wait {
            Ok(()) => break,
            Err(wait) => tokio::time::sleep(wait).await,
        }
    }
    let result = transport.send(&message).await;
    if !matches!(result, Attempt::Accepted(_)) {
        bucket.lock().unwrap_or_else(|p| p.into_inner()).give_back();
    }
    let now = clock::now();
    let outcome = outcome_of(&result, &delivery, now, d.config.dispatch.max_retry_age);
    (delivery, outcome)
}

fn outcome_of(
    result: &Attempt,
    delivery: &Delivery,
    now: DateTime<Utc>,
    max_retry_age: std::time::Duration,
) -> Outcome {
    let reply = match result {
        Attempt::Accepted(r) | Attempt::Transient(r) | Attempt::Permanent(r) => r.clone(),
    };
    match dispatch::after_attempt(
        result,
        delivery.attempts,
        delivery.queued_at,
        now,
        max_retry_age,
    ) {
        Next::Sent => Outcome::Sent { reply },
        Next::Retry { at } => Outcome::Deferred {
            reply,
            retry_at: at,
        },
        Next::Failed { reason } => Outcome::Failed { reply: reason },
    }
}
