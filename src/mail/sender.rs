//! Sending one dispatch (a release version to its recipients). Deliveries are claimed from
//! the ledger in small batches (their `sending` intent committed first), composed, and handed
//! to the transport with `concurrency` messages in flight and the rate enforced; the batch's
//! outcomes are then committed together. Memory stays flat in the number of recipients: only
//! one batch is ever held.

use std::collections::{HashMap, HashSet};
use std::ops::ControlFlow;
use std::sync::Mutex;
use std::time::Instant;

use chrono::{DateTime, Utc};
use futures_util::stream::{self, StreamExt};

use super::compose::{self, Kind, Letter};
use super::dkim::Signer;
use super::rate::Bucket;
use super::transport::{Refusal, Transport};
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
    /// Signs each message once, after composing, when DKIM is configured.
    pub signer: Option<&'a Signer>,
}

/// What one run did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    pub sent: usize,
    pub deferred: usize,
    pub failed: usize,
    pub cancelled: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// The server will not take mail from us as configured: the run stopped, what was not
    /// handed over waits in the ledger as it was.
    #[error("{refusal}")]
    Refused { refusal: Refusal, summary: Summary },
}

impl Summary {
    pub fn total(&self) -> usize {
        self.sent + self.deferred + self.failed + self.cancelled
    }
}

/// Sends every waiting delivery of the dispatch once. `manual` sends deferred ones at once
/// (each once per run); otherwise only those whose retry time has come. After each batch is
/// recorded, `between_batches` sees the progress and may stop the run (the daemon stops at
/// shutdown and when the dispatch window closes); a batch in flight always finishes.
pub async fn run(
    d: &Dispatch<'_>,
    ledger: &mut Ledger,
    transport: &Transport,
    manual: bool,
    between_batches: &dyn Fn(&Summary) -> ControlFlow<()>,
) -> Result<Summary, SendError> {
    let started = clock::now();
    let concurrency = d.config.mail.concurrency.max(1);
    let batch_size = (concurrency * 4).max(16);
    let bucket = Mutex::new(Bucket::new(d.config.mail.rate, Instant::now()));
    let prepared = compose::Prepared::new(d.config, d.release);
    let prepared = &prepared;
    let names: HashMap<String, &Recipient> =
        d.media.recipients.iter().map(|r| (r.key(), r)).collect();
    let mut summary = Summary::default();
    // The first refusal stops every attempt not yet at the server.
    let refused: Mutex<Option<Refusal>> = Mutex::new(None);
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
                d, prepared, transport, &bucket, &names, &opted_out, &refused, delivery,
            )
        });
        let results: Vec<(Delivery, Option<Outcome>)> = stream::iter(attempts)
            .buffer_unordered(concurrency)
            .collect()
            .await;
        let mut outcomes = Vec::with_capacity(results.len());
        let mut untried = Vec::new();
        for (delivery, outcome) in results {
            match outcome {
                Some(outcome) => outcomes.push((delivery, outcome)),
                None => untried.push(delivery),
            }
        }
        for (_, outcome) in &outcomes {
            match outcome {
                Outcome::Sent { .. } => summary.sent += 1,
                Outcome::Deferred { .. } => summary.deferred += 1,
                Outcome::Failed { .. } => summary.failed += 1,
                Outcome::Cancelled { .. } => summary.cancelled += 1,
            }
        }
        ledger.record(&outcomes, clock::now())?;
        ledger.unclaim(&untried, clock::now())?;
        if let Some(refusal) = lock(&refused).take() {
            return Err(SendError::Refused { refusal, summary });
        }
        if between_batches(&summary).is_break() {
            break;
        }
    }
    Ok(summary)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// One delivery: compose, wait for the rate, send, decide. None: not handed over, because
/// the server refused us (now or in another attempt of the run).
#[allow(clippy::too_many_arguments)]
async fn attempt(
    d: &Dispatch<'_>,
    prepared: &compose::Prepared,
    transport: &Transport,
    bucket: &Mutex<Bucket>,
    names: &HashMap<String, &Recipient>,
    opted_out: &HashSet<String>,
    refused: &Mutex<Option<Refusal>>,
    delivery: Delivery,
) -> (Delivery, Option<Outcome>) {
    if opted_out.contains(&delivery.address) {
        return (
            delivery,
            Some(Outcome::Cancelled {
                reason: "opted out".into(),
            }),
        );
    }
    if lock(refused).is_some() {
        return (delivery, None);
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
                    Some(Outcome::Failed {
                        reply: format!("not an address: {e}"),
                    }),
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
        prepared,
        recipient: &recipient,
        kind,
        version: d.version,
        date: clock::now(),
    };
    let mut message = match compose::compose(d.config, d.templates, d.key, &letter) {
        Ok(composed) => composed.message,
        Err(e) => {
            return (
                delivery,
                Some(Outcome::Failed {
                    reply: e.to_string(),
                }),
            );
        }
    };
    if let Some(signer) = d.signer {
        signer.sign(&mut message);
    }
    loop {
        let wait = lock(bucket).take(Instant::now());
        match wait {
            Ok(()) => break,
            Err(wait) => tokio::time::sleep(wait).await,
        }
    }
    // Another attempt may have been refused while this one waited for the rate.
    if lock(refused).is_some() {
        lock(bucket).give_back();
        return (delivery, None);
    }
    let result = match transport.send(&message).await {
        Ok(result) => result,
        Err(refusal) => {
            lock(bucket).give_back();
            lock(refused).get_or_insert(refusal);
            return (delivery, None);
        }
    };
    if !matches!(result, Attempt::Accepted(_)) {
        lock(bucket).give_back();
    }
    let now = clock::now();
    let outcome = outcome_of(&result, &delivery, now, d.config.dispatch.max_retry_age);
    (delivery, Some(outcome))
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
