//! The mails a reader's preferences page sends to their own address, the only place a
//! request made with a forwarded link can be confirmed: their data (the export as a JSON
//! attachment), the erase link, and the link that subscribes them again. Each leaves at
//! once, whatever the dispatch window: the reader is waiting for it.
//!
//! `send` is the one function the page calls. It hands the message straight to the
//! configured transport; the sign-up's outbox (transactional mail recorded in the ledger
//! and retried) is where it is to point once that is in, with nothing else changing.

use chrono::{DateTime, Utc};
use lettre::Message;
use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};

use super::transport::{Outgoing, Transport};
use crate::config::Config;
use crate::release::LangTag;
use crate::render::Templates;
use crate::render::subscription::organisation;

/// What is mailed.
#[derive(Debug, Clone)]
pub enum Notice {
    /// Everything held about them, attached as `data.json`.
    Export { json: String },
    /// The link that erases them (it asks first).
    EraseLink { url: String },
    /// The link that lifts their opt-out (it asks first).
    ResubscribeLink { url: String },
}

#[derive(Debug, thiserror::Error)]
pub enum NoticeError {
    #[error("the address {0} cannot be mailed")]
    Address(String),
    #[error("the mail could not be made: {0}")]
    Build(String),
    #[error("the mail transport: {0}")]
    Transport(String),
    #[error("the mail was not taken: {0}")]
    NotSent(String),
}

/// The message itself (pure).
pub fn message(
    config: &Config,
    templates: &Templates,
    lang: &LangTag,
    to: &str,
    notice: &Notice,
    now: DateTime<Utc>,
) -> Result<Message, NoticeError> {
    let labels = templates.labels(lang);
    let organisation = organisation(config);
    let address: lettre::Address = to
        .parse()
        .map_err(|_| NoticeError::Address(to.to_string()))?;
    let masked = crate::render::subscription::masked(to);
    let fill = |t: &str| {
        t.replace("{organisation}", organisation)
            .replace("{address}", &masked)
    };
    let (subject, text) = match notice {
        Notice::Export { .. } => (
            labels.your_data.to_string(),
            fill(&labels.data_sent).to_string(),
        ),
        Notice::EraseLink { url } => (
            labels.erase.to_string(),
            format!("{}\n\n{url}\n", fill(&labels.erase_ask)),
        ),
        Notice::ResubscribeLink { url } => (
            labels.subscribe_again.to_string(),
            format!("{}\n\n{url}\n", labels.subscribe_again),
        ),
    };
    let body = format!(
        "{}\n\n{text}\n\n-- \n{organisation}\n",
        labels.greeting_anonymous
    );
    let from = &config.mail.from;
    let builder = Message::builder()
        .from(Mailbox::new(from.name.clone(), from.email.clone()))
        .to(Mailbox::new(None, address))
        .subject(format!("{organisation}: {subject}"))
        .date(now.into())
        .message_id(Some(format!(
            "<notice-{}@{}>",
            now.timestamp_nanos_opt().unwrap_or_default(),
            from.email.domain()
        )));
    let text_part = SinglePart::builder()
        .header(ContentType::TEXT_PLAIN)
        .body(body);
    let built = match notice {
        Notice::Export { json } => builder.multipart(
            MultiPart::mixed().singlepart(text_part).singlepart(
                Attachment::new("data.json".to_string()).body(
                    json.clone(),
                    ContentType::parse("application/json")
                        .map_err(|e| NoticeError::Build(e.to_string()))?,
                ),
            ),
        ),
        _ => builder.singlepart(text_part),
    };
    built.map_err(|e| NoticeError::Build(e.to_string()))
}

/// Sends one notice now through the configured transport.
pub async fn send(
    config: &Config,
    templates: &Templates,
    lang: &LangTag,
    to: &str,
    notice: &Notice,
    now: DateTime<Utc>,
) -> Result<(), NoticeError> {
    let message = message(config, templates, lang, to, notice, now)?;
    let transport =
        Transport::from_config(&config.mail, crate::config::credentials_dir().as_deref())
            .map_err(|e| NoticeError::Transport(e.to_string()))?;
    match transport.send(&Outgoing::new(&message)).await {
        Ok(super::policy::Attempt::Accepted(_)) => Ok(()),
        Ok(super::policy::Attempt::Transient(reply) | super::policy::Attempt::Permanent(reply)) => {
            Err(NoticeError::NotSent(reply))
        }
        Err(refusal) => Err(NoticeError::Transport(refusal.to_string())),
    }
}
