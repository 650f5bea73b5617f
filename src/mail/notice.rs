//! The mails a reader's preferences page sends to their own address, the only place a
//! request made with a forwarded link can be confirmed: their data (the export as a JSON
//! attachment), the erase link, and the link that subscribes them again. Each leaves at
//! once, whatever the dispatch window: the reader is waiting for it.
//!
//! `letter` makes the outbox's letter (`mail::outbox`): recorded in the ledger, sent at
//! once by the daemon's outbox task and retried, its text and attachment blanked once sent.

use crate::config::Config;
use crate::ledger::{Attachment, Letter};
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
}

/// The notice as a letter for the outbox (pure): the site's words in `lang`, text and
/// HTML, the export attached as `data.json`.
pub fn letter(
    config: &Config,
    templates: &Templates,
    lang: &LangTag,
    to: &str,
    notice: &Notice,
) -> Result<Letter, NoticeError> {
    let labels = templates.labels(lang);
    let organisation = organisation(config);
    if to.parse::<lettre::Address>().is_err() {
        return Err(NoticeError::Address(to.to_string()));
    }
    let masked = crate::render::subscription::masked(to);
    let fill = |t: &str| {
        t.replace("{organisation}", organisation)
            .replace("{address}", &masked)
    };
    let (kind, subject, said, url) = match notice {
        Notice::Export { .. } => (
            "data",
            labels.your_data.to_string(),
            fill(&labels.data_sent),
            None,
        ),
        Notice::EraseLink { url } => (
            "erase",
            labels.erase.to_string(),
            fill(&labels.erase_ask),
            Some(url),
        ),
        Notice::ResubscribeLink { url } => (
            "again",
            labels.subscribe_again.to_string(),
            labels.subscribe_again.to_string(),
            Some(url),
        ),
    };
    let greeting = labels.greeting_anonymous.to_string();
    let text = match url {
        Some(url) => format!("{greeting}\n\n{said}\n\n{url}\n\n-- \n{organisation}\n"),
        None => format!("{greeting}\n\n{said}\n\n-- \n{organisation}\n"),
    };
    let esc = ammonia::clean_text;
    let link = url
        .map(|u| format!("<p><a href=\"{}\">{}</a></p>", esc(u), esc(u)))
        .unwrap_or_default();
    let html = format!(
        "<!DOCTYPE html>\n<html lang=\"{}\"><head><meta charset=\"utf-8\"><title>{}</title></head><body><p>{}</p><p>{}</p>{link}<p>{}</p></body></html>\n",
        esc(lang.as_str()),
        esc(&subject),
        esc(&greeting),
        esc(&said),
        esc(organisation)
    );
    let attachments = match notice {
        Notice::Export { json } => vec![Attachment {
            name: "data.json".into(),
            content_type: "application/json".into(),
            bytes: json.clone().into_bytes(),
        }],
        _ => Vec::new(),
    };
    Ok(Letter {
        to: to.to_string(),
        name: String::new(),
        kind: kind.into(),
        lang: lang.as_str().to_string(),
        subject: format!("{organisation}: {subject}"),
        text,
        html,
        attachments,
        message_id: super::outbox::message_id(config),
    })
}
