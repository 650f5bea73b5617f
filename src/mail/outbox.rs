//! Sending the outbox (`ledger::outbox`): letters that leave at once, whatever the
//! dispatch window — a sign-up's confirmation, and (for other parts of the program) a
//! subscriber's data or the confirmation of an erasure. `post` puts a letter in the
//! ledger and `Wake::wake` tells the daemon's outbox task, which `send_due` serves: each
//! due letter claimed (`sending` committed before the transport is asked), made into a
//! message (`message`: multipart text and HTML, From the site, `Auto-Submitted`), signed
//! when DKIM is set up, handed to the configured transport, and its outcome recorded: sent,
//! failed for good (a 5xx, or still failing after `GIVE_UP`), or tried again after
//! `retry_in` (30 s, doubling, at most an hour). A sent or failed letter keeps no text.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use lettre::Message;
use lettre::message::header::ContentType;
use lettre::message::{Attachment as Part, Mailbox, MultiPart, SinglePart};

use super::compose::{
    AutoSubmitted, ComposeError, ContentLanguage, display_name, envelope_address, mail_date,
};
use super::policy::Attempt;
use super::session::Session;
use super::transport::Outgoing;
use crate::clock;
use crate::config::Config;
use crate::ledger::{Handle, Ledger, LedgerError, Letter, LetterOutcome};

/// Letters claimed at a time.
const BATCH: usize = 16;
/// A letter still failing this long after it was posted is given up: a confirmation link
/// has expired by then (48 h by default), and a subscriber who asked for their data asks
/// again.
pub const GIVE_UP: chrono::TimeDelta = chrono::TimeDelta::hours(48);

/// Puts `letter` in the outbox, due at once (call `Wake::wake` after the commit).
pub fn post(ledger: &mut Ledger, letter: &Letter, now: DateTime<Utc>) -> Result<i64, LedgerError> {
    ledger.post_letter(letter, now)
}

/// The wake-up of the daemon's outbox task: a letter was posted.
#[derive(Clone, Default)]
pub struct Wake(Arc<tokio::sync::Notify>);

impl Wake {
    /// Wakes the task now, or when it next waits (one permit: wake-ups while it works are
    /// one more pass).
    pub fn wake(&self) {
        self.0.notify_one();
    }

    pub async fn woken(&self) {
        self.0.notified().await;
    }
}

/// A new Message-ID for a letter: random (it names no address), kept in its row so every
/// attempt carries the same one.
pub fn message_id(config: &Config) -> String {
    let mut bytes = [0u8; 16];
    // Without randomness the id is still unique enough by its instant; it is not a secret.
    if getrandom::fill(&mut bytes).is_err() {
        let nanos = clock::now().timestamp_nanos_opt().unwrap_or_default();
        bytes[..8].copy_from_slice(&nanos.to_be_bytes());
    }
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("<{hex}@{}>", config.mail.from.email.domain())
}

/// What keeps a letter from becoming a message.
#[derive(Debug, thiserror::Error)]
pub enum LetterError {
    #[error("`{0}` is not an address a message can go to")]
    Address(String),
    #[error(transparent)]
    Compose(#[from] ComposeError),
}

/// The letter as a message dated `date`: From (and Reply-To) as the config says, To the
/// letter's recipient, `Auto-Submitted: auto-generated` (RFC 3834: no out-of-office reply
/// should answer it), text and HTML alternatives, and its attachments beside them.
pub fn message(
    config: &Config,
    letter: &Letter,
    date: DateTime<Utc>,
) -> Result<Message, LetterError> {
    let address: lettre::Address = letter
        .to
        .trim()
        .parse()
        .map_err(|_| LetterError::Address(letter.to.clone()))?;
    let to = Mailbox::new(
        Some(display_name(&letter.name)).filter(|n| !n.is_empty()),
        envelope_address(&address),
    );
    let from = &config.mail.from;
    let mut builder = Message::builder()
        .from(Mailbox::new(
            from.name.clone(),
            envelope_address(&from.email),
        ))
        .to(to)
        .subject(letter.subject.clone())
        .date(mail_date(date)?)
        .message_id(Some(letter.message_id.clone()))
        .header(AutoSubmitted("auto-generated".into()))
        .header(ContentLanguage(letter.lang.clone()));
    if let Some(reply_to) = &config.mail.reply_to {
        builder = builder.reply_to(reply_to.clone());
    }
    let body = MultiPart::alternative()
        .singlepart(SinglePart::plain(letter.text.clone()))
        .singlepart(SinglePart::html(letter.html.clone()));
    let message = if letter.attachments.is_empty() {
        builder.multipart(body)
    } else {
        let mut mixed = MultiPart::mixed().multipart(body);
        for a in &letter.attachments {
            let kind = ContentType::parse(&a.content_type).unwrap_or_else(|_| {
                ContentType::parse("application/octet-stream").expect("a media type")
            });
            mixed = mixed.singlepart(Part::new(a.name.clone()).body(a.bytes.clone(), kind));
        }
        builder.multipart(mixed)
    };
    message.map_err(|e| LetterError::Compose(ComposeError::Build(e)))
}

/// The wait before attempt `attempts + 1`: 30 s after the first failure, doubling, at most
/// an hour. A confirmation is awaited by someone at the form; an hour of a mail server's
/// trouble should not cost them the 48 hours of their link.
pub fn retry_in(attempts: u32) -> chrono::TimeDelta {
    let doublings = attempts.saturating_sub(1).min(7);
    let wait = Duration::from_secs(30)
        .saturating_mul(1 << doublings)
        .min(Duration::from_secs(3600));
    chrono::TimeDelta::from_std(wait).unwrap_or(chrono::TimeDelta::hours(1))
}

/// Sends every letter due, batch by batch, until none is; returns when the next waiting
/// one is due (a retry), if any. `stopping` is asked between two letters: at shutdown the
/// rest waits for the next start.
pub fn send_due(
    config: &Config,
    ledger: &Handle,
    session: &Session,
    stopping: &dyn Fn() -> bool,
) -> Result<Option<DateTime<Utc>>, LedgerError> {
    while !stopping() {
        let now = clock::now();
        let rows = ledger.call(move |l| l.claim_letters(now, BATCH))?;
        if rows.is_empty() {
            break;
        }
        for row in rows {
            if stopping() {
                // Claimed and not tried: `sending` rows are due again at the next start.
                break;
            }
            let now = clock::now();
            let attempt = match message(config, &row.letter, now) {
                Err(e) => Attempt::Permanent(e.to_string()),
                Ok(mut m) => {
                    if let Some(signer) = &session.signer {
                        signer.sign(&mut m);
                    }
                    let outgoing = Outgoing::new(&m);
                    match session.runtime.block_on(session.transport.send(&outgoing)) {
                        Ok(attempt) => attempt,
                        // The server will not take mail from us as configured: a fixed
                        // config sends it, so it waits like a 4xx.
                        Err(refusal) => Attempt::Transient(refusal.to_string()),
                    }
                }
            };
            let (outcome, reply) = match attempt {
                Attempt::Accepted(reply) => (LetterOutcome::Sent, reply),
                Attempt::Permanent(reply) => (LetterOutcome::Failed, reply),
                Attempt::Transient(reply) if now - row.created_at >= GIVE_UP => {
                    (LetterOutcome::Failed, reply)
                }
                Attempt::Transient(reply) => (
                    LetterOutcome::Retry(now + retry_in(row.attempts + 1)),
                    reply,
                ),
            };
            match outcome {
                LetterOutcome::Sent => {
                    tracing::info!(kind = %row.letter.kind, "a letter left the outbox")
                }
                LetterOutcome::Failed => {
                    tracing::warn!(kind = %row.letter.kind, "a letter could not be sent: {reply}")
                }
                LetterOutcome::Retry(at) => tracing::info!(
                    kind = %row.letter.kind,
                    "a letter is tried again at {at}: {reply}"
                ),
            }
            let id = row.id;
            ledger.call(move |l| l.letter_outcome(id, outcome, &reply, now))?;
        }
    }
    ledger.call(|l| l.next_letter())
}

/// What the outbox task needs for one pass: the config as it is now and a session on it.
pub fn open_session(config: &Config) -> anyhow::Result<Session> {
    Session::open(config, crate::config::credentials_dir().as_deref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_wait_thirty_seconds_doubling_to_an_hour() {
        assert_eq!(retry_in(1), chrono::TimeDelta::seconds(30));
        assert_eq!(retry_in(2), chrono::TimeDelta::seconds(60));
        assert_eq!(retry_in(8), chrono::TimeDelta::hours(1));
        assert_eq!(retry_in(40), chrono::TimeDelta::hours(1));
    }

    #[test]
    fn a_letter_is_a_multipart_message_from_the_site_naming_no_list() {
        let config = Config::defaults(std::path::Path::new("/nonexistent"));
        let letter = Letter {
            to: "Ada@example.org".into(),
            name: "Ada Lovelace".into(),
            kind: "confirm".into(),
            lang: "en".into(),
            subject: "Confirm".into(),
            text: "Follow the link".into(),
            html: "<p>Follow the link</p>".into(),
            attachments: vec![],
            message_id: "<abc@example.org>".into(),
        };
        let at: DateTime<Utc> = "2026-12-05T10:00:00Z".parse().unwrap();
        let raw = String::from_utf8(message(&config, &letter, at).unwrap().formatted()).unwrap();
        assert!(raw.contains("Auto-Submitted: auto-generated"), "{raw}");
        assert!(raw.contains("Message-ID: <abc@example.org>"), "{raw}");
        assert!(raw.contains("multipart/alternative"), "{raw}");
        assert!(!raw.contains("List-Unsubscribe"), "{raw}");
    }
}
