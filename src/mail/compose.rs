//! Composing one message: multipart/alternative (plain text and HTML), a personal
//! greeting, and the headers SPEC §6 names. The Message-ID is derived from the release,
//! the address and the version alone, so every attempt carries the same one. Nothing here
//! reads the clock: the `Date` is an input.

use chrono::{DateTime, Utc};
use lettre::Message;
use lettre::message::header::{ContentType, Header, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart, SinglePart};
use minijinja::Value;
use sha2::{Digest, Sha256};

use crate::config::Config;
use crate::media::Recipient;
use crate::optout::TokenKey;
use crate::release::{Release, markdown};
use crate::render::Templates;
use crate::render::view::{Labels, ReleaseView, SiteView};

/// Whether this is the release as first sent or a correction of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Original,
    /// A correction, threaded to the message the recipient received.
    Update {
        original: String,
    },
}

/// What every message of a release shares, made once per dispatch rather than once per
/// recipient (the release as templates see it, its body as plain text).
pub struct Prepared {
    site: Value,
    release: Value,
    body_text: String,
}

impl Prepared {
    pub fn new(config: &Config, release: &Release) -> Prepared {
        Prepared {
            site: Value::from(minijinja::value::Serde(SiteView::new(config))),
            release: Value::from(minijinja::value::Serde(ReleaseView::new(release, config))),
            body_text: markdown::to_text(&release.body, &config.url(&release.path())),
        }
    }
}

/// What to compose: a release for one recipient, at an instant.
pub struct Letter<'a> {
    pub release: &'a Release,
    pub prepared: &'a Prepared,
    pub recipient: &'a Recipient,
    pub kind: Kind,
    /// 1 for the original, 2 and up for corrections.
    pub version: u32,
    pub date: DateTime<Utc>,
}

#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    #[error("template `{template}`: {source:#}")]
    Template {
        template: &'static str,
        #[source]
        source: minijinja::Error,
    },
    #[error("cannot build the message: {0}")]
    Build(#[from] lettre::error::Error),
}

/// `<hex@domain>`, the same for the same release, address and version on every attempt.
pub fn message_id(release_id: &str, address: &str, version: u32, domain: &str) -> String {
    let mut h = Sha256::new();
    for part in [
        "pressroom message",
        release_id,
        &address.trim().to_lowercase(),
        &version.to_string(),
    ] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    let digest = h.finalize();
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("<{hex}@{domain}>")
}

/// The link that unsubscribes `address` (a confirmation page; RFC 8058 POSTs to it).
pub fn unsubscribe_url(config: &Config, key: &TokenKey, address: &str) -> String {
    format!("{}unsubscribe/{}", config.site.base_url, key.token(address))
}

/// A composed message and the parts it was made of, for previews.
pub struct Composed {
    pub message: Message,
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// Builds the message.
pub fn compose(
    config: &Config,
    templates: &Templates,
    key: &TokenKey,
    letter: &Letter<'_>,
) -> Result<Composed, ComposeError> {
    let release = letter.release;
    let address = letter.recipient.email.to_string().to_lowercase();
    let labels = Labels::for_lang(&release.lang);
    let greeting = match letter.recipient.name.trim() {
        "" => labels.greeting_anonymous.to_string(),
        name => format!("{} {name},", labels.greeting),
    };
    let unsubscribe = unsubscribe_url(config, key, &address);
    let update = matches!(letter.kind, Kind::Update { .. });
    let ctx = minijinja::context! {
        site => letter.prepared.site.clone(),
        release => letter.prepared.release.clone(),
        greeting,
        recipient => minijinja::context! { name => letter.recipient.name.clone(), outlet => letter.recipient.outlet.clone(), email => address.clone() },
        body_text => letter.prepared.body_text.as_str(),
        unsubscribe_url => unsubscribe.clone(),
        update,
    };
    let render = |template: &'static str| {
        templates
            .render(template, ctx.clone())
            .map_err(|source| ComposeError::Template { template, source })
    };
    let text = render("mail.txt")?;
    let html = render("mail.html")?;

    let from_domain = config.mail.from.email.domain().to_string();
    let subject = if update {
        format!(
            "{}{}: {}",
            config.mail.subject_prefix, labels.update_subject, release.title
        )
    } else {
        format!("{}{}", config.mail.subject_prefix, release.title)
    };
    let to = Mailbox::new(
        Some(letter.recipient.name.trim().to_string()).filter(|n| !n.is_empty()),
        letter.recipient.email.clone(),
    );
    let mailto = config
        .mail
        .reply_to
        .as_ref()
        .unwrap_or(&config.mail.from)
        .email
        .to_string();
    let token = key.token(&address);
    let mut builder = Message::builder()
        .from(config.mail.from.clone())
        .to(to)
        .subject(subject.clone())
        .date(letter.date.into())
        .message_id(Some(message_id(
            &release.id,
            &address,
            letter.version,
            &from_domain,
        )))
        .header(ListId(format!("<newsroom.{from_domain}>")))
        .header(ListUnsubscribe(format!(
            "<{unsubscribe}>, <mailto:{mailto}?subject=unsubscribe%20{token}>"
        )))
        .header(ListUnsubscribePost)
        .header(ContentLanguage(release.lang.to_string()));
    if let Some(reply_to) = &config.mail.reply_to {
        builder = builder.reply_to(reply_to.clone());
    }
    if let Kind::Update { original } = &letter.kind {
        builder = builder
            .in_reply_to(original.clone())
            .references(original.clone());
    }
    let body = MultiPart::alternative()
        .singlepart(
            SinglePart::builder()
                .header(ContentType::TEXT_PLAIN)
                .body(text.clone()),
        )
        .singlepart(
            SinglePart::builder()
                .header(ContentType::TEXT_HTML)
                .body(html.clone()),
        );
    Ok(Composed {
        message: builder.multipart(body)?,
        subject,
        text,
        html,
    })
}

/// Declares a header whose value we build from validated, ASCII-only parts.
macro_rules! ascii_header {
    ($name:ident, $header:literal) => {
        #[derive(Debug, Clone)]
        struct $name(String);

        impl Header for $name {
            fn name() -> HeaderName {
                HeaderName::new_from_ascii_str($header)
            }

            fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
                Ok($name(s.to_string()))
            }

            fn display(&self) -> HeaderValue {
                HeaderValue::new(Self::name(), self.0.clone())
            }
        }
    };
}

ascii_header!(ListId, "List-Id");
ascii_header!(ListUnsubscribe, "List-Unsubscribe");
ascii_header!(ContentLanguage, "Content-Language");

/// RFC 8058: the unsubscribe link takes a one-click POST.
#[derive(Debug, Clone)]
struct ListUnsubscribePost;

impl Header for ListUnsubscribePost {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("List-Unsubscribe-Post")
    }

    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(ListUnsubscribePost)
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), "List-Unsubscribe=One-Click".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_depend_on_release_address_and_version_only() {
        let a = message_id("tag:x,2018:a", "Anna@Example.org", 1, "example.org");
        assert_eq!(
            a,
            message_id("tag:x,2018:a", "anna@example.org", 1, "example.org")
        );
        assert_ne!(
            a,
            message_id("tag:x,2018:a", "anna@example.org", 2, "example.org")
        );
        assert_ne!(
            a,
            message_id("tag:x,2018:b", "anna@example.org", 1, "example.org")
        );
        assert!(
            a.starts_with('<')
                && a.ends_with("@example.org>")
                && a.len() == "<@example.org>".len() + 32
        );
    }
}
