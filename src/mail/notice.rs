//! The letters a reader's preferences page sends to their own address, the only place a
//! request made with a forwarded link can be confirmed: their data (the export as a JSON
//! attachment), the erase link, and the link that subscribes them again. `letter` makes
//! one (pure); the page posts it to the outbox (`mail::outbox`), which sends it at once,
//! whatever the dispatch window, and tries again as it does a sign-up's confirmation.

use crate::config::Config;
use crate::ledger::{Attachment, Letter};
use crate::release::LangTag;
use crate::render::Templates;
use crate::render::subscription::{masked, organisation};

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

impl Notice {
    /// The outbox's record of what it is.
    pub fn kind(&self) -> &'static str {
        match self {
            Notice::Export { .. } => "data",
            Notice::EraseLink { .. } => "erase",
            Notice::ResubscribeLink { .. } => "resubscribe",
        }
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The letter for `to` in `lang`, with `message_id` (`outbox::message_id`).
pub fn letter(
    config: &Config,
    templates: &Templates,
    lang: &LangTag,
    to: &str,
    notice: &Notice,
    message_id: String,
) -> Letter {
    let labels = templates.labels(lang);
    let organisation = organisation(config);
    let shown = masked(to);
    let fill = |t: &str| crate::render::subscription::fill(t, organisation, &shown);
    let (subject, line, url) = match notice {
        Notice::Export { .. } => (&labels.your_data, fill(&labels.data_sent), None),
        Notice::EraseLink { url } => (&labels.erase, fill(&labels.erase_ask), Some(url)),
        Notice::ResubscribeLink { url } => (
            &labels.subscribe_again,
            fill(&labels.opted_out_text),
            Some(url),
        ),
    };
    let greeting = &labels.greeting_anonymous;
    let text = match url {
        Some(url) => format!("{greeting}\n\n{line}\n\n{subject}: {url}\n\n-- \n{organisation}\n"),
        None => format!("{greeting}\n\n{line}\n\n-- \n{organisation}\n"),
    };
    let link = url.map_or_else(String::new, |url| {
        format!(
            "<p><a href=\"{}\">{}</a></p>\n",
            escape(url),
            escape(subject)
        )
    });
    let html = format!(
        "<!doctype html>\n<html lang=\"{}\">\n<head><meta charset=\"utf-8\"><title>{}</title></head>\n<body>\n<p>{}</p>\n<p>{}</p>\n{link}<p>{}</p>\n</body>\n</html>\n",
        escape(lang.as_str()),
        escape(subject),
        escape(greeting),
        escape(&line),
        escape(organisation),
    );
    let attachments = match notice {
        Notice::Export { json } => vec![Attachment {
            name: "data.json".into(),
            content_type: "application/json".into(),
            bytes: json.clone().into_bytes(),
        }],
        _ => Vec::new(),
    };
    Letter {
        to: to.to_string(),
        name: String::new(),
        kind: notice.kind().into(),
        lang: lang.as_str().to_string(),
        subject: format!("{organisation}: {subject}"),
        text,
        html,
        attachments,
        message_id,
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn a_letter_says_what_it_is_in_the_readers_language_and_shows_the_address_masked() {
        let config = Config::defaults(Path::new("/nonexistent"));
        let templates = Templates::built_in();
        let en = LangTag::parse("en").unwrap();
        let url = "http://127.0.0.1:8080/erase/t?lang=en&x=<".to_string();
        let l = letter(
            &config,
            &templates,
            &en,
            "anna.lind@example.org",
            &Notice::EraseLink { url: url.clone() },
            "<m@example.org>".into(),
        );
        assert_eq!(l.kind, "erase");
        assert!(l.subject.ends_with("Delete my data"), "{}", l.subject);
        assert!(l.text.contains(&url), "{}", l.text);
        assert!(
            l.html
                .contains("href=\"http://127.0.0.1:8080/erase/t?lang=en&amp;x=&lt;\""),
            "{}",
            l.html
        );
        assert!(!l.text.contains("anna.lind") && !l.html.contains("anna.lind"));
        let data = letter(
            &config,
            &templates,
            &en,
            "anna.lind@example.org",
            &Notice::Export { json: "{}".into() },
            "<m@example.org>".into(),
        );
        assert_eq!(data.attachments[0].name, "data.json");
        assert_eq!(data.attachments[0].bytes, b"{}");
    }
}
