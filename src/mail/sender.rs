//! Sending one dispatch (a release version to its recipients) as a pipeline of three
//! owners, so that no stage waits for another's disk or CPU:
//!
//! - the *keeper* (a thread) owns the ledger: it claims deliveries in batches, committing
//!   their `sending` intent before handing them on, and group-commits outcomes;
//! - the *composer* (a thread) composes and formats each claimed message, one batch ahead
//!   of the wire at most;
//! - the *sender* (the async runtime, on the caller's thread) keeps `concurrency`
//!   messages in flight with the rate enforced, and reports each outcome to the keeper.
//!
//! The run stops between claims when the caller's `keep_going` says so (the daemon at
//! shutdown and when the dispatch window closes), and at once when the server refuses us
//! (`Refusal`: a rejected login, no STARTTLS, an untrusted certificate): what was claimed
//! and not handed over is put back as it was (`Ledger::unclaim`).
//!
//! What is in flight does not grow with the number of recipients: at most two batches are
//! claimed and not yet decided, and the channel of composed messages holds `concurrency`.
//! Who is listed is read per batch: from the ledger's audience (the daemon), or from a
//! media list the command line loaded, indexed once by address.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures_util::stream::{FuturesUnordered, StreamExt};

use super::compose::{self, Kind, Letter, Transfer};
use super::dkim::Signer;
use super::rate::Bucket;
use super::transport::{Outgoing, Refusal, Transport};
use crate::clock;
use crate::config::Config;
use crate::ledger::{Deliveries, Delivery, Due, LedgerError, Outcome};
use crate::mail::policy::{self, Attempt, HandOff, Next};
use crate::media::{MediaList, Recipient};
use crate::optout::TokenKey;
use crate::release::Release;
use crate::render::Templates;

/// Everything needed to compose the messages of one dispatch.
pub struct Mailing<'a> {
    pub config: &'a Config,
    pub templates: &'a Templates,
    pub key: &'a TokenKey,
    /// Where the hand-off check finds each recipient's row.
    pub listing: Listing<'a>,
    pub release: &'a Release,
    pub version: u32,
    /// For a correction: each recipient's original Message-ID, to thread to.
    pub originals: HashMap<String, String>,
    /// Signs each message once, after composing, when DKIM is configured.
    pub signer: Option<&'a Signer>,
}

/// Where a run reads who is on the media list, for each claimed batch.
#[derive(Clone, Copy)]
pub enum Listing<'a> {
    /// The ledger's audience, as the last sync of the media list left it (the daemon).
    Ledger,
    /// A media list read by the caller (`pressroom send`).
    Loaded(&'a MediaList),
}

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// The server will not take mail from us as configured: the run stopped, what was not
    /// handed over waits in the ledger as it was.
    #[error("{refusal}")]
    Refused { refusal: Refusal, summary: Summary },
    /// The release was handed over without its text (see `release::Body`): nothing sent.
    #[error("the text of {0} is not in memory; nothing was sent")]
    NoText(String),
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

    fn count(&mut self, outcome: &Outcome) {
        match outcome {
            Outcome::Sent { .. } => self.sent += 1,
            Outcome::Deferred { .. } => self.deferred += 1,
            Outcome::Failed { .. } => self.failed += 1,
            Outcome::Cancelled { .. } => self.cancelled += 1,
        }
    }
}

/// An outcome waits at most this long for its commit (it waits less when a batch's worth
/// is pending). A crash in that window sends those messages again, as for any message in
/// flight; the wait turns one fsync per message into one per batch.
const COMMIT_WITHIN: Duration = Duration::from_millis(20);

/// Sends every waiting delivery of the dispatch once. `manual` sends deferred ones at once
/// (each once per run); otherwise only those whose retry time has come. The transport's IO
/// runs on `runtime`, driven from the calling thread. `keep_going` is asked before each
/// claim and each message; what it stops is put back as it was, what was handed to the
/// sender is sent.
#[allow(clippy::too_many_arguments)]
pub fn run(
    d: &Mailing<'_>,
    ledger: &mut dyn Deliveries,
    transport: &Transport,
    runtime: &tokio::runtime::Runtime,
    manual: bool,
    on_progress: &dyn Fn(&Summary),
    keep_going: &(dyn Fn() -> bool + Sync),
) -> Result<Summary, SendError> {
    if d.release.body.is_none() {
        return Err(SendError::NoText(d.release.id.clone()));
    }
    let concurrency = d.config.mail.concurrency.max(1);
    // Small batches, claimed one ahead: the opt-outs read with a claim are at most two
    // batches (four times `concurrency` messages) older than its last send, as when one
    // batch of that size was claimed and sent at a time. Larger batches were no faster.
    let batch_size = (concurrency * 2).max(8);
    let claims = Claims {
        manual,
        started: clock::now(),
        batch_size,
    };
    let transfer = runtime.block_on(transport.transfer());
    let (to_keeper, inbox) = mpsc::channel();
    let (composed, ready) = tokio::sync::mpsc::channel(concurrency);
    std::thread::scope(|s| {
        // Named, so that a profile shows which stage the time goes to.
        let keeper = std::thread::Builder::new()
            .name("mail keeper".into())
            .spawn_scoped(s, || keep(d, ledger, &claims, inbox))
            .expect("start the ledger thread");
        let composer_to_keeper = to_keeper.clone();
        std::thread::Builder::new()
            .name("mail composer".into())
            .spawn_scoped(s, move || {
                compose_all(d, transfer, composer_to_keeper, composed, keep_going)
            })
            .expect("start the composer thread");
        let (summary, refused) = runtime.block_on(send_all(
            d,
            transport,
            ready,
            to_keeper,
            concurrency,
            on_progress,
            keep_going,
        ));
        match keeper.join() {
            Ok(result) => result?,
            Err(panic) => std::panic::resume_unwind(panic),
        }
        match refused {
            Some(refusal) => Err(SendError::Refused { refusal, summary }),
            None => Ok(summary),
        }
    })
}

/// Which deliveries the keeper claims, and how many at a time.
struct Claims {
    /// A manual send (deferred ones at once, each once per run), or the daemon's.
    manual: bool,
    started: DateTime<Utc>,
    batch_size: usize,
}

/// What the keeper is asked to do.
enum ToKeeper {
    /// Claim the next batch and answer with it (empty when none is left).
    Claim(mpsc::SyncSender<Batch>),
    /// Record an outcome.
    Outcome(Delivery, Outcome),
    /// Put back a claimed delivery that was not handed to the server.
    Unclaim(Delivery),
}

/// Claimed deliveries (their `sending` intent committed), the opt-outs as of the claim,
/// and the rows of the media list of their addresses.
#[derive(Default)]
struct Batch {
    deliveries: Vec<Delivery>,
    opted_out: crate::ledger::OptedOut,
    listed: HashMap<String, Recipient>,
}

/// The ledger's owner. Outcomes are committed in groups: when a batch's worth is pending,
/// when the oldest has waited `COMMIT_WITHIN`, before a claim, and at the end. It never
/// waits for the other stages, only for its inbox, so a slow server never holds an outcome
/// back from its commit.
fn keep(
    d: &Mailing<'_>,
    ledger: &mut dyn Deliveries,
    claims: &Claims,
    inbox: mpsc::Receiver<ToKeeper>,
) -> Result<(), LedgerError> {
    // Keyed by the address as the ledger has it (lowercase); borrowed when the media list
    // wrote it so, which it nearly always does: one copy of every address is enough.
    let index: HashMap<Cow<'_, str>, &Recipient> = match d.listing {
        Listing::Ledger => HashMap::new(),
        Listing::Loaded(media) => media
            .recipients
            .iter()
            .map(|r| {
                let email: &str = r.email.as_ref();
                let key = if email.chars().any(char::is_uppercase) {
                    Cow::Owned(r.key())
                } else {
                    Cow::Borrowed(email)
                };
                (key, r)
            })
            .collect(),
    };
    let mut pending: Vec<(Delivery, Outcome)> = Vec::with_capacity(claims.batch_size);
    let mut oldest: Option<Instant> = None;
    let mut put_back: Vec<Delivery> = Vec::new();
    let mut failed: Option<LedgerError> = None;
    loop {
        let event = match oldest {
            None => inbox.recv().ok(),
            Some(since) => {
                match inbox.recv_timeout(COMMIT_WITHIN.saturating_sub(since.elapsed())) {
                    Ok(event) => Some(event),
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        record(ledger, &pending)?;
                        pending.clear();
                        oldest = None;
                        continue;
                    }
                    Err(mpsc::RecvTimeoutError::Disconnected) => None,
                }
            }
        };
        match event {
            None => break,
            Some(ToKeeper::Unclaim(delivery)) => put_back.push(delivery),
            Some(ToKeeper::Outcome(delivery, outcome)) => {
                pending.push((delivery, outcome));
                oldest.get_or_insert_with(Instant::now);
                if pending.len() >= claims.batch_size {
                    record(ledger, &pending)?;
                    pending.clear();
                    oldest = None;
                }
            }
            Some(ToKeeper::Claim(answer)) => {
                record(ledger, &pending)?;
                pending.clear();
                oldest = None;
                if failed.is_some() {
                    let _ = answer.send(Batch::default());
                    continue;
                }
                let now = clock::now();
                let due = if claims.manual {
                    Due::UntouchedSince(claims.started)
                } else {
                    Due::By(now)
                };
                // A claim that fails ends the run's claiming, not its recording: what is
                // in flight still has its outcome written.
                let batch = claim(ledger, d, &index, due, claims.batch_size, now);
                let batch = batch.unwrap_or_else(|e| {
                    failed = Some(e);
                    Batch::default()
                });
                // The composer may be gone (the sender stopped): these stay `sending`
                // and become `unknown`, as after a crash.
                let _ = answer.send(batch);
            }
        }
    }
    record(ledger, &pending)?;
    ledger.unclaim(&put_back, clock::now())?;
    failed.map_or(Ok(()), Err)
}

/// The next batch and the opt-outs read right after it, so an opt-out recorded while the
/// previous batch was sent still stops these messages. Opt-outs that cannot be read put
/// the batch back.
fn claim(
    ledger: &mut dyn Deliveries,
    d: &Mailing<'_>,
    index: &HashMap<Cow<'_, str>, &Recipient>,
    due: Due,
    limit: usize,
    now: DateTime<Utc>,
) -> Result<Batch, LedgerError> {
    let deliveries = ledger.claim(&d.release.id, d.version, due, None, limit, now)?;
    if deliveries.is_empty() {
        return Ok(Batch::default());
    }
    let read = ledger.opted_out().and_then(|opted_out| {
        let listed = match d.listing {
            Listing::Loaded(_) => deliveries
                .iter()
                .filter_map(|d| index.get(d.address.as_str()))
                .map(|r| (r.key(), (*r).clone()))
                .collect(),
            Listing::Ledger => {
                let addresses: Vec<String> = deliveries.iter().map(|d| d.address.clone()).collect();
                ledger
                    .listed(&addresses)?
                    .into_iter()
                    .filter_map(|(a, row)| Some((a, Recipient::from_row(&row)?)))
                    .collect()
            }
        };
        Ok((opted_out, listed))
    });
    match read {
        Ok((opted_out, listed)) => Ok(Batch {
            deliveries,
            opted_out,
            listed,
        }),
        Err(e) => {
            ledger.unclaim(&deliveries, now)?;
            Err(e)
        }
    }
}

/// How long, in turn, the keeper waits before writing outcomes again after a write failed
/// (the ledger itself already retried a busy lock): about a minute in all.
const RECORD_RETRIES: [Duration; 5] = [
    Duration::from_millis(200),
    Duration::from_secs(1),
    Duration::from_secs(5),
    Duration::from_secs(15),
    Duration::from_secs(40),
];

/// Records sent messages' outcomes, trying again when the write fails: an outcome that is
/// not written would make its message `unknown` and send it again. Only when the ledger
/// stays unwritable for about a minute does the run stop (those messages then go out
/// again, with the same Message-ID, when it can be written).
fn record(ledger: &mut dyn Deliveries, pending: &[(Delivery, Outcome)]) -> Result<(), LedgerError> {
    if pending.is_empty() {
        return Ok(());
    }
    let mut waits = RECORD_RETRIES.iter();
    loop {
        match ledger.record(pending, clock::now()) {
            Ok(()) => return Ok(()),
            Err(e) => match waits.next() {
                Some(wait) => {
                    tracing::warn!(
                        "cannot record {} sent messages yet, trying again in {wait:?}: {e}",
                        pending.len()
                    );
                    std::thread::sleep(*wait);
                }
                None => return Err(e),
            },
        }
    }
}

/// What the composer hands the sender.
enum Item {
    Send(Delivery, Outgoing),
    /// Decided without sending: opted out, not an address, a template error.
    Done(Delivery, Outcome),
}

/// The composer: asks the keeper for a batch, and for the next one as soon as it has it
/// (so a claim's commit overlaps composing and sending), composes and formats each
/// message, and hands them on in order, waiting when the sender is a batch behind.
fn compose_all(
    d: &Mailing<'_>,
    transfer: Transfer,
    keeper: mpsc::Sender<ToKeeper>,
    ready: tokio::sync::mpsc::Sender<Item>,
    keep_going: &(dyn Fn() -> bool + Sync),
) {
    let prepared = compose::Prepared::new(d.config, d.templates, d.release);
    let claim = || {
        if !keep_going() {
            return None;
        }
        let (answer, batch) = mpsc::sync_channel(1);
        keeper.send(ToKeeper::Claim(answer)).ok().map(|()| batch)
    };
    let put_back = |delivery| {
        let _ = keeper.send(ToKeeper::Unclaim(delivery));
    };
    let mut next = claim();
    while let Some(Ok(batch)) = next.take().map(|b| b.recv()) {
        if batch.deliveries.is_empty() {
            break;
        }
        next = claim();
        let mut rest = batch.deliveries.into_iter();
        while let Some(delivery) = rest.next() {
            // Asked again before each message: a release pulled back or edited meanwhile
            // (or the window closing) stops the run between two messages, not two batches.
            if !keep_going() {
                put_back(delivery);
                rest.for_each(put_back);
                if let Some(Ok(claimed)) = next.take().map(|b| b.recv()) {
                    claimed.deliveries.into_iter().for_each(put_back);
                }
                return;
            }
            let item = prepare(
                d,
                &prepared,
                transfer,
                &batch.listed,
                &batch.opted_out,
                delivery,
            );
            if let Err(stopped) = ready.blocking_send(item) {
                // The sender stopped (the server refused us, or the keeper failed): what
                // was claimed and not handed over goes back as it was.
                match stopped.0 {
                    Item::Send(delivery, _) => put_back(delivery),
                    Item::Done(delivery, outcome) => {
                        let _ = keeper.send(ToKeeper::Outcome(delivery, outcome));
                    }
                }
                rest.for_each(put_back);
                if let Some(Ok(claimed)) = next.take().map(|b| b.recv()) {
                    claimed.deliveries.into_iter().for_each(put_back);
                }
                return;
            }
        }
    }
}

/// One delivery, composed and formatted, or decided without sending.
fn prepare(
    d: &Mailing<'_>,
    prepared: &compose::Prepared,
    transfer: Transfer,
    listed: &HashMap<String, Recipient>,
    opted_out: &crate::ledger::OptedOut,
    delivery: Delivery,
) -> Item {
    let listed = listed.get(delivery.address.as_str());
    let recipient = match policy::hand_off(d.release, &delivery.address, opted_out, listed) {
        HandOff::Send(r) => r,
        HandOff::Cancel(why) => {
            let reason = why.to_string();
            return Item::Done(delivery, Outcome::Cancelled { reason });
        }
    };
    let kind = match d.originals.get(&delivery.address) {
        Some(original) if d.version > 1 => Kind::Update {
            original: original.clone(),
        },
        _ => Kind::Original,
    };
    match outgoing(d, prepared, transfer, recipient, kind) {
        Ok(message) => Item::Send(delivery, message),
        Err(e) => {
            let reply = e.to_string();
            Item::Done(delivery, Outcome::Failed { reply })
        }
    }
}

/// One message composed, signed and formatted for the wire.
fn outgoing(
    d: &Mailing<'_>,
    prepared: &compose::Prepared,
    transfer: Transfer,
    recipient: &Recipient,
    kind: Kind,
) -> Result<Outgoing, compose::ComposeError> {
    let letter = Letter {
        release: d.release,
        prepared,
        recipient,
        kind,
        version: d.version,
        date: clock::now(),
        transfer,
    };
    let mut composed = compose::compose(d.config, d.templates, d.key, &letter)?;
    if let Some(signer) = d.signer {
        signer.sign(&mut composed.message);
    }
    Ok(Outgoing::new(&composed.message))
}

/// A test message (`send --to`) of the dispatch's release to `recipient`, with its own
/// `message_id`, handed over once: nothing of it goes into the dispatch's deliveries.
pub fn send_test(
    d: &Mailing<'_>,
    transport: &Transport,
    runtime: &tokio::runtime::Runtime,
    recipient: &Recipient,
    message_id: String,
) -> Result<Result<Attempt, Refusal>, compose::ComposeError> {
    let prepared = compose::Prepared::new(d.config, d.templates, d.release);
    let transfer = runtime.block_on(transport.transfer());
    let message = outgoing(d, &prepared, transfer, recipient, Kind::Test { message_id })?;
    Ok(runtime.block_on(transport.send(&message)))
}

/// How often, at most, progress is drawn besides every 64 outcomes: a terminal need not
/// redraw 3,000 times a second, and a slow server still shows progress.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);

/// The sender: up to `concurrency` messages in flight, each outcome reported to the keeper
/// as soon as it is known. Ends when the composer is done and nothing is in flight, or
/// after a refusal or when `keep_going` says stop, once what is in flight has finished;
/// then what was composed and not sent goes back to the keeper to be put back.
#[allow(clippy::too_many_arguments)]
async fn send_all(
    d: &Mailing<'_>,
    transport: &Transport,
    mut ready: tokio::sync::mpsc::Receiver<Item>,
    keeper: mpsc::Sender<ToKeeper>,
    concurrency: usize,
    on_progress: &dyn Fn(&Summary),
    keep_going: &(dyn Fn() -> bool + Sync),
) -> (Summary, Option<Refusal>) {
    let bucket = Mutex::new(Bucket::new(d.config.mail.rate, Instant::now()));
    let bucket = &bucket;
    let max_retry_age = d.config.dispatch.max_retry_age;
    let mut in_flight = FuturesUnordered::new();
    let mut summary = Summary::default();
    let mut composing = true;
    let mut refused: Option<Refusal> = None;
    // Whether the keeper still records: it is gone only after a ledger error, which `run`
    // reports; then nothing more is sent (what is in flight finishes, and the claimed rest
    // stays `sending`, to become `unknown`).
    let mut drawn = Instant::now();
    let mut finish = |delivery: Delivery, outcome: Outcome| -> bool {
        summary.count(&outcome);
        if summary.total() % 64 == 0 || drawn.elapsed() >= PROGRESS_EVERY {
            on_progress(&summary);
            drawn = Instant::now();
        }
        keeper.send(ToKeeper::Outcome(delivery, outcome)).is_ok()
    };
    loop {
        let recording = tokio::select! {
            item = ready.recv(), if composing && in_flight.len() < concurrency => match item {
                None => {
                    composing = false;
                    true
                }
                Some(Item::Done(delivery, outcome)) => finish(delivery, outcome),
                // Told to stop (Ctrl-C, shutdown, the window closing) while this message
                // waited for the wire: it goes back, with the rest the composer made.
                Some(Item::Send(delivery, _)) if !keep_going() => {
                    let _ = keeper.send(ToKeeper::Unclaim(delivery));
                    false
                }
                Some(Item::Send(delivery, message)) => {
                    in_flight.push(async move {
                        let result = send_one(transport, bucket, &message).await;
                        (delivery, result)
                    });
                    true
                }
            },
            Some((delivery, result)) = in_flight.next(), if !in_flight.is_empty() => match result {
                Ok(result) => {
                    let outcome = outcome_of(&result, &delivery, clock::now(), max_retry_age);
                    finish(delivery, outcome)
                }
                Err(refusal) => {
                    refused.get_or_insert(refusal);
                    let _ = keeper.send(ToKeeper::Unclaim(delivery));
                    // Stop taking messages; what is in flight finishes.
                    false
                }
            },
            else => break,
        };
        if !recording {
            composing = false;
            ready.close();
        }
    }
    // Composed and never sent (the run stopped): back to the keeper.
    ready.close();
    while let Some(item) = ready.recv().await {
        let _ = match item {
            Item::Send(delivery, _) => keeper.send(ToKeeper::Unclaim(delivery)),
            Item::Done(delivery, outcome) => {
                summary.count(&outcome);
                keeper.send(ToKeeper::Outcome(delivery, outcome))
            }
        };
    }
    on_progress(&summary);
    (summary, refused)
}

/// Waits for the rate, then sends; a message the server did not take gives its token back.
async fn send_one(
    transport: &Transport,
    bucket: &Mutex<Bucket>,
    message: &Outgoing,
) -> Result<Attempt, Refusal> {
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
    let result = transport.send(message).await;
    if !matches!(result, Ok(Attempt::Accepted(_))) {
        bucket.lock().unwrap_or_else(|p| p.into_inner()).give_back();
    }
    result
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
    match policy::after_attempt(
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
