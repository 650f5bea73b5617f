//! The daily digest's mail: composing one (`compose`: multipart text and HTML from the
//! `digest.txt` and `digest.html` templates, in the site's language, each release's title,
//! date, lead and link) and sending the waiting ones (`send_due`) by the deliveries'
//! protocol: a digest is claimed (`sending`, committed) before its SMTP transaction and its
//! outcome recorded after; a crash leaves it `sending`, which the next run makes `unknown`
//! and sends again with the same Message-ID.
//!
//! Each digest is checked as it is handed over: its subscriber still subscribed, not
//! paused, not opted out; each of its releases still public and still wanted (withdrawn,
//! pulled back or no longer targeted: dropped). Nothing left: cancelled, with the reason.
//! A digest is its own thread: no `In-Reply-To` (it answers nothing; a correction of a
//! release in it is mailed with that release's own thread).

use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use lettre::Message;
use lettre::message::header::ContentType;
use lettre::message::{Mailbox, MultiPart, SinglePart};
use minijinja::Value;

use super::compose::{
    self, ComposeError, ContentLanguage, ListId, ListUnsubscribe, ListUnsubscribePost, Transfer,
};
use super::dkim::Signer;
use super::policy::{self, Attempt, Next};
use super::rate::Bucket;
use super::transport::{Outgoing, Refusal, Transport};
use crate::clock;
use crate::config::Config;
use crate::digest;
use crate::ledger::{DigestRow, LedgerError, Outcome, SubscriberRow};
use crate::optout::TokenKey;
use crate::release::Release;
use crate::render::Templates;
use crate::render::subscription::organisation;
use crate::render::view::ReleaseView;
use crate::subscriber::Wants;

/// One digest to compose.
pub struct DigestLetter<'a> {
    /// The address as written (the ledger's key is it lower-cased).
    pub email: &'a str,
    pub name: &'a str,
    pub period: DateTime<Utc>,
    /// With their texts (for the leads), oldest first.
    pub releases: &'a [Arc<Release>],
    pub date: DateTime<Utc>,
    pub transfer: Transfer,
}

/// The digest's subject and heading: `Pressmeddelanden 5 december 2026`, the period's day
/// in the site's zone and words.
pub fn heading(config: &Config, templates: &Templates, period: DateTime<Utc>) -> String {
    let labels = templates.labels(&config.site.lang);
    let local = period.with_timezone(&config.site.timezone);
    format!("{} {}", labels.releases, labels.day(&local))
}

pub fn compose(
    config: &Config,
    templates: &Templates,
    key: &TokenKey,
    letter: &DigestLetter<'_>,
) -> Result<compose::Composed, ComposeError> {
    let address = letter.email.trim().to_lowercase();
    let labels = templates.labels(&config.site.lang);
    let greeting = match letter.name.trim() {
        "" => labels.greeting_anonymous.to_string(),
        name => format!("{} {name},", labels.greeting),
    };
    let heading = heading(config, templates, letter.period);
    let organisation = organisation(config);
    let releases: Vec<Value> = letter
        .releases
        .iter()
        .map(|r| {
            let view = ReleaseView::with_labels(r, config, templates.labels(&r.lang));
            Value::from(minijinja::value::Serde(view))
        })
        .collect();
    let ctx = minijinja::context! {
        greeting,
        heading => heading.clone(),
        lang => config.site.lang.as_str(),
        releases,
        labels => Value::from(minijinja::value::Serde(labels)),
        why => labels.digest_why.replace("{organisation}", organisation),
        organisation => organisation.to_string(),
        from_address => config.mail.from.email.to_string(),
        unsubscribe_url => compose::unsubscribe_url(config, key, &address),
        preferences_url => compose::footer_preferences_url(config, key, &address, &config.site.lang),
    };
    let render = |template: &'static str| {
        templates
            .render(template, ctx.clone())
            .map_err(|source| ComposeError::Template { template, source })
    };
    let text = render("digest.txt")?;
    let html = render("digest.html")?;
    let email: lettre::Address = letter
        .email
        .parse()
        .map_err(|_| ComposeError::Address(letter.email.to_string()))?;
    let from_domain = config.mail.from.email.domain().to_string();
    // Not `subject_prefix` (`Pressmeddelande: `): the heading says what it is.
    let subject = heading.clone();
    let to = Mailbox::new(
        Some(compose::display_name(letter.name)).filter(|n| !n.is_empty()),
        compose::envelope_address(&email),
    );
    let from = &config.mail.from;
    let mut builder = Message::builder()
        .from(Mailbox::new(
            from.name.clone(),
            compose::envelope_address(&from.email),
        ))
        .to(to)
        .subject(subject.clone())
        .date(compose::mail_date(letter.date)?)
        .message_id(Some(digest::message_id(
            &address,
            letter.period,
            &from_domain,
        )))
        .header(ListId(format!("<newsroom.{from_domain}>")))
        .header(ListUnsubscribe(compose::list_unsubscribe(
            config, key, &address,
        )))
        .header(ListUnsubscribePost)
        .header(ContentLanguage(config.site.lang.to_string()));
    if let Some(reply_to) = &config.mail.reply_to {
        builder = builder.reply_to(reply_to.clone());
    }
    let body = MultiPart::alternative()
        .singlepart(
            SinglePart::builder()
                .header(ContentType::TEXT_PLAIN)
                .body(compose::encode(&text, letter.transfer)),
        )
        .singlepart(
            SinglePart::builder()
                .header(ContentType::TEXT_HTML)
                .body(compose::encode(&html, letter.transfer)),
        );
    Ok(compose::Composed {
        message: builder.multipart(body)?,
        subject,
        text,
        html,
    })
}

/// What the hand-off check decides for a claimed digest.
#[derive(Debug)]
pub enum HandOff {
    /// Send it with these releases (those of the row still public and wanted).
    Send(Vec<Arc<Release>>),
    Cancel(String),
}

/// The hand-off check (pure): the subscriber as the ledger has them now (`None`: erased
/// or gone), whether they opted out, and the releases as the builder has them now.
pub fn hand_off(
    row: &DigestRow,
    subscriber: Option<&SubscriberRow>,
    opted_out: bool,
    release: &dyn Fn(&str) -> Option<Arc<Release>>,
    now: DateTime<Utc>,
) -> HandOff {
    if opted_out {
        return HandOff::Cancel("opted out".into());
    }
    let Some(s) = subscriber else {
        return HandOff::Cancel("no longer subscribed".into());
    };
    if s.paused {
        return HandOff::Cancel("paused".into());
    }
    let wants = Wants::from_choices(&s.choices);
    let keep: Vec<Arc<Release>> = row
        .releases
        .iter()
        .filter_map(|id| release(id))
        // Public now, and dated no later than the period in its current version: one
        // moved past the period since goes in the digest of its new date instead.
        .filter(|r| digest::still_public(r, now) && r.date <= row.period)
        .filter(|r| digest::targeted(r, &wants))
        .collect();
    if keep.is_empty() {
        return HandOff::Cancel(
            "nothing left in it: its releases were withdrawn, pulled back or are no longer wanted"
                .into(),
        );
    }
    HandOff::Send(keep)
}

/// What the sender needs of the ledger (the daemon's owner handle; a plain `Ledger` in
/// tests).
pub trait DigestLedger {
    fn claim_digest(&mut self, now: DateTime<Utc>) -> Result<Option<DigestRow>, LedgerError>;
    fn unclaim_digest(&mut self, d: &DigestRow, at: DateTime<Utc>) -> Result<(), LedgerError>;
    fn record_digest(
        &mut self,
        d: &DigestRow,
        releases: &[String],
        outcome: &Outcome,
        at: DateTime<Utc>,
    ) -> Result<(), LedgerError>;
    /// The subscriber at the address and whether the address opted out.
    fn recipient(&mut self, address: &str) -> Result<(Option<SubscriberRow>, bool), LedgerError>;
}

impl DigestLedger for crate::ledger::Ledger {
    fn claim_digest(&mut self, now: DateTime<Utc>) -> Result<Option<DigestRow>, LedgerError> {
        crate::ledger::Ledger::claim_digest(self, now)
    }
    fn unclaim_digest(&mut self, d: &DigestRow, at: DateTime<Utc>) -> Result<(), LedgerError> {
        crate::ledger::Ledger::unclaim_digest(self, d, at)
    }
    fn record_digest(
        &mut self,
        d: &DigestRow,
        releases: &[String],
        outcome: &Outcome,
        at: DateTime<Utc>,
    ) -> Result<(), LedgerError> {
        crate::ledger::Ledger::record_digest(self, d, releases, outcome, at)
    }
    fn recipient(&mut self, address: &str) -> Result<(Option<SubscriberRow>, bool), LedgerError> {
        Ok((self.subscriber(address)?, self.is_opted_out(address)?))
    }
}

impl DigestLedger for crate::ledger::Handle {
    fn claim_digest(&mut self, now: DateTime<Utc>) -> Result<Option<DigestRow>, LedgerError> {
        self.call(move |l| l.claim_digest(now))
    }
    fn unclaim_digest(&mut self, d: &DigestRow, at: DateTime<Utc>) -> Result<(), LedgerError> {
        let d = d.clone();
        self.call(move |l| l.unclaim_digest(&d, at))
    }
    fn record_digest(
        &mut self,
        d: &DigestRow,
        releases: &[String],
        outcome: &Outcome,
        at: DateTime<Utc>,
    ) -> Result<(), LedgerError> {
        let (d, releases, outcome) = (d.clone(), releases.to_vec(), outcome.clone());
        self.call(move |l| l.record_digest(&d, &releases, &outcome, at))
    }
    fn recipient(&mut self, address: &str) -> Result<(Option<SubscriberRow>, bool), LedgerError> {
        let address = address.to_string();
        self.call(move |l| Ok((l.subscriber(&address)?, l.is_opted_out(&address)?)))
    }
}

/// What a run of the waiting digests did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Sent {
    pub sent: usize,
    pub deferred: usize,
    pub failed: usize,
    pub cancelled: usize,
    /// Put back because a release's text could not be read again: the next run tries.
    pub unread: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum DigestError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// The server will not take mail from us as configured: the digest claimed is put
    /// back, the rest wait.
    #[error("{0}")]
    Refused(Refusal),
}

/// Everything a digest run needs besides the ledger.
pub struct Sending<'a> {
    pub config: &'a Config,
    pub templates: &'a Templates,
    pub key: &'a TokenKey,
    pub signer: Option<&'a Signer>,
    pub transport: &'a Transport,
    pub runtime: &'a tokio::runtime::Runtime,
    /// The release with this id as the builder has it now (public or not).
    pub release: &'a (dyn Fn(&str) -> Option<Arc<Release>> + Sync),
}

/// Sends every waiting digest that is due, one at a time within the rate, until none is
/// left or `keep_going` says stop (the daemon's shutdown).
pub fn send_due(
    s: &Sending<'_>,
    ledger: &mut dyn DigestLedger,
    keep_going: &dyn Fn() -> bool,
) -> Result<Sent, DigestError> {
    let mut done = Sent::default();
    let transfer = s.runtime.block_on(s.transport.transfer());
    let mut bucket = Bucket::new(s.config.mail.rate, Instant::now());
    let mut held_back = Vec::new();
    while keep_going() {
        let now = clock::now();
        let Some(row) = ledger.claim_digest(now)? else {
            break;
        };
        let (subscriber, opted_out) = ledger.recipient(&row.address)?;
        let releases = match hand_off(&row, subscriber.as_ref(), opted_out, s.release, now) {
            HandOff::Cancel(reason) => {
                ledger.record_digest(&row, &[], &Outcome::Cancelled { reason }, now)?;
                done.cancelled += 1;
                continue;
            }
            HandOff::Send(releases) => releases,
        };
        // Leads come from the texts, which the builder may have let go of.
        let texts: Result<Vec<Arc<Release>>, _> = releases
            .iter()
            .map(|r| crate::catalog::with_text(s.config, r))
            .collect();
        let Ok(texts) = texts else {
            // Claimed again at the next run; this one goes on with the others.
            held_back.push(row);
            done.unread += 1;
            continue;
        };
        let ids: Vec<String> = texts.iter().map(|r| r.id.clone()).collect();
        let subscriber = subscriber.as_ref().expect("checked at hand-off");
        let letter = DigestLetter {
            email: &subscriber.email,
            name: &subscriber.name,
            period: row.period,
            releases: &texts,
            date: now,
            transfer,
        };
        let mut composed = match compose(s.config, s.templates, s.key, &letter) {
            Ok(c) => c,
            Err(e) => {
                let reply = e.to_string();
                ledger.record_digest(&row, &ids, &Outcome::Failed { reply }, now)?;
                done.failed += 1;
                continue;
            }
        };
        if let Some(signer) = s.signer {
            signer.sign(&mut composed.message);
        }
        let message = Outgoing::new(&composed.message);
        while let Err(wait) = bucket.take(Instant::now()) {
            std::thread::sleep(wait);
        }
        let attempt = match s.runtime.block_on(s.transport.send(&message)) {
            Ok(attempt) => attempt,
            Err(refusal) => {
                ledger.unclaim_digest(&row, clock::now())?;
                for row in &held_back {
                    ledger.unclaim_digest(row, clock::now())?;
                }
                return Err(DigestError::Refused(refusal));
            }
        };
        let now = clock::now();
        let reply = match &attempt {
            Attempt::Accepted(r) | Attempt::Transient(r) | Attempt::Permanent(r) => r.clone(),
        };
        let outcome = match policy::after_attempt(
            &attempt,
            row.attempts,
            row.queued_at,
            now,
            s.config.dispatch.max_retry_age,
        ) {
            Next::Sent => {
                done.sent += 1;
                Outcome::Sent { reply }
            }
            Next::Retry { at } => {
                bucket.give_back();
                done.deferred += 1;
                Outcome::Deferred {
                    reply,
                    retry_at: at,
                }
            }
            Next::Failed { reason } => {
                bucket.give_back();
                done.failed += 1;
                Outcome::Failed { reply: reason }
            }
        };
        ledger.record_digest(&row, &ids, &outcome, now)?;
    }
    for row in &held_back {
        ledger.unclaim_digest(row, clock::now())?;
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::{Choices, DeliveryState};
    use std::path::Path;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn release(slug: &str, date: &str, topics: &[&str]) -> Arc<Release> {
        let mut r = crate::release::fixture(slug, date);
        r.id = slug.to_string();
        r.topics = topics
            .iter()
            .map(|t| crate::release::Topic::parse(t).unwrap())
            .collect();
        Arc::new(r)
    }

    fn row(releases: &[&str]) -> DigestRow {
        DigestRow {
            address: "ada@example.org".into(),
            period: t("2026-12-05T06:00:00Z"),
            state: DeliveryState::Sending,
            releases: releases.iter().map(|s| s.to_string()).collect(),
            message_id: "<x>".into(),
            attempts: 1,
            next_attempt: None,
            last_reply: None,
            queued_at: t("2026-12-05T06:01:00Z"),
            updated_at: t("2026-12-05T06:01:00Z"),
            sent_at: None,
            carried: Vec::new(),
        }
    }

    fn subscriber(topics: &str, paused: bool) -> SubscriberRow {
        SubscriberRow {
            address: "ada@example.org".into(),
            email: "Ada@example.org".into(),
            name: "Ada Lind".into(),
            outlet: String::new(),
            choices: Choices {
                topics: topics.into(),
                langs: String::new(),
                delivery: "digest".into(),
            },
            paused,
            confirmed_at: t("2026-12-01T00:00:00Z"),
            updated_at: t("2026-12-01T00:00:00Z"),
            digest_from: t("2026-12-04T06:00:00Z"),
        }
    }

    /// A release withdrawn or pulled back (or moved past the period), or no longer wanted,
    /// leaves the digest at hand-off; with nothing left, or to someone who paused, opted out or left, the
    /// digest is cancelled with the reason.
    #[test]
    fn a_digest_leaves_with_what_is_still_public_and_wanted() {
        let now = t("2026-12-05T06:01:00Z");
        let sport = release("sport", "2026-12-04T09:00:00Z", &["Sport"]);
        let mut w = (*release("withdrawn", "2026-12-04T10:00:00Z", &["Sport"])).clone();
        w.withdrawn = Some("fel".into());
        let withdrawn = Arc::new(w);
        // Public at hand-off, but re-dated past the period since the digest was made.
        let later = release("later", "2026-12-05T06:00:30Z", &["Sport"]);
        let culture = release("culture", "2026-12-04T11:00:00Z", &["Kultur"]);
        let all = [&sport, &withdrawn, &later, &culture];
        let find = |id: &str| all.iter().find(|r| r.id == id).map(|r| Arc::clone(r));
        let digest = row(&["sport", "withdrawn", "later", "culture", "deleted"]);
        let s = subscriber("Sport", false);
        match hand_off(&digest, Some(&s), false, &find, now) {
            HandOff::Send(kept) => assert_eq!(
                kept.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
                ["sport"]
            ),
            other => panic!("{other:?}"),
        }
        let gone = row(&["withdrawn", "culture"]);
        assert!(matches!(
            hand_off(&gone, Some(&s), false, &find, now),
            HandOff::Cancel(_)
        ));
        for (sub, opted_out) in [
            (Some(subscriber("", true)), false),
            (Some(subscriber("", false)), true),
            (None, false),
        ] {
            assert!(matches!(
                hand_off(&digest, sub.as_ref(), opted_out, &find, now),
                HandOff::Cancel(_)
            ));
        }
    }

    /// The subject is the site's word for press releases and the day, in its zone; every
    /// release is linked; the headers are those of every mail (List-Id, one-click
    /// unsubscribe with the opaque token), no In-Reply-To, and the address is in no link.
    #[test]
    fn a_digest_is_one_mail_with_every_release_linked() {
        let mut config = crate::config::Config::defaults(Path::new("/nonexistent"));
        config.site.lang = crate::release::LangTag::parse("sv").unwrap();
        config.site.timezone = chrono_tz::Europe::Stockholm;
        let templates = Templates::built_in();
        let key = TokenKey::from_bytes([7; 32]);
        let a = release("forsta", "2026-12-04T09:00:00Z", &[]);
        let b = release("andra", "2026-12-04T12:00:00Z", &[]);
        let letter = DigestLetter {
            email: "Ada@example.org",
            name: "Ada Lind",
            // 23:30 UTC is 00:30 on the 5th in Stockholm.
            period: t("2026-12-04T23:30:00Z"),
            releases: &[a, b],
            date: t("2026-12-05T06:01:00Z"),
            transfer: Transfer::SevenBit,
        };
        let composed = compose(&config, &templates, &key, &letter).unwrap();
        assert_eq!(composed.subject, "Pressmeddelanden 5 december 2026");
        for slug in ["forsta", "andra"] {
            assert!(
                composed.text.contains(&format!("releases/{slug}/")),
                "{slug}"
            );
            assert!(
                composed.html.contains(&format!("releases/{slug}/")),
                "{slug}"
            );
        }
        // Its footer, like every mail's: the preferences link beside the unsubscribe link.
        let preferences = format!("preferences/{}", key.token("ada@example.org"));
        assert!(
            composed.text.contains("Dina inställningar: ") && composed.text.contains(&preferences),
            "{}",
            composed.text
        );
        assert!(composed.html.contains(&preferences), "{}", composed.html);
        let raw = String::from_utf8(composed.message.formatted()).unwrap();
        assert!(raw.contains("List-Id: <newsroom."));
        assert!(raw.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"));
        assert!(!raw.to_lowercase().contains("in-reply-to"));
        let id = digest::message_id("ada@example.org", letter.period, "example.org");
        assert!(raw.contains(&id), "{raw}");
        for line in raw.lines().filter(|l| l.contains("http")) {
            assert!(!line.to_lowercase().contains("ada@example.org"), "{line}");
        }
    }
}
