//! Composing one message: multipart/alternative (plain text and HTML), a personal
//! greeting, and the headers SPEC §6 names. The Message-ID is derived from the release,
//! the address and the version alone, so every attempt carries the same one. Nothing here
//! reads the clock: the `Date` is an input.

use chrono::{DateTime, Utc};
use lettre::message::header::{
    ContentTransferEncoding, ContentType, Header, HeaderName, HeaderValue,
};
use lettre::message::{Body, Mailbox, MultiPart, SinglePart};
use lettre::{Address, Message};
use minijinja::Value;
use sha2::{Digest, Sha256};

use crate::config::Config;
use crate::media::Recipient;
use crate::optout::TokenKey;
use crate::release::{Release, markdown};
use crate::render::Templates;
use crate::render::subscription::organisation;
use crate::render::view::{ReleaseView, SiteView};

/// Whether this is the release as first sent or a correction of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Original,
    /// A correction, threaded to the message the recipient received.
    Update {
        original: String,
    },
    /// A test (`send --to`): its own Message-ID, never the one the real mail carries, so
    /// the real message is never taken for a copy of it.
    Test {
        message_id: String,
    },
}

/// What every message of a release shares, made once per dispatch rather than once per
/// recipient (the release as templates see it in its language's words, the office's
/// `strings.toml` over the built-in ones; its body as plain text, and as HTML with inline
/// styles).
pub struct Prepared {
    site: Value,
    release: Value,
    body_text: String,
    body_html: String,
}

impl Prepared {
    pub fn new(config: &Config, templates: &Templates, release: &Release) -> Prepared {
        let labels = templates.labels(&release.lang);
        Prepared {
            site: Value::from(minijinja::value::Serde(SiteView::with_labels(
                config, labels,
            ))),
            release: Value::from(minijinja::value::Serde(ReleaseView::with_labels(
                release, config, labels,
            ))),
            body_text: markdown::to_text(
                release.body.as_deref().map_or("", |b| &b.markdown),
                &config.url(&release.path()),
            ),
            // As on the page: a withdrawn release's text is never shown (nor mailed).
            body_html: match release.withdrawn {
                None => super::inline::styled(release.body_html().unwrap_or_default()),
                Some(_) => String::new(),
            },
        }
    }
}

/// What the way to the recipient can carry, which decides how the two parts are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transfer {
    /// Any path (a file, a preview, a server without 8BITMIME): lettre's choice, which is
    /// 7bit only for ASCII in lines under 76 octets, else quoted-printable or base64.
    SevenBit,
    /// An SMTP server that advertised 8BITMIME (RFC 6152): a part goes as it is, only its
    /// line ends made CRLF, when it is safe to (see `as_is`); lettre's choice otherwise.
    /// Quoted-printable triples every å, ä and ö and was the largest cost of sending.
    EightBitMime,
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
    pub transfer: Transfer,
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
    /// A subscriber's address as stored no longer reads as one (it was checked at sign-up).
    #[error("{0} is not an address a message can go to")]
    Address(String),
    /// lettre writes the `Date` header through `httpdate`, which panics on an instant before
    /// 1970 or after 9999.
    #[error("{0} cannot be a message's Date (1970 to 9999 only)")]
    Date(DateTime<Utc>),
}

/// `date` for the `Date` header, or an error where lettre would panic. The sender and
/// `preview` pass the clock; only a clock set before 1970 meets the error.
pub(crate) fn mail_date(date: DateTime<Utc>) -> Result<std::time::SystemTime, ComposeError> {
    let last = DateTime::<Utc>::from_timestamp(253_402_300_799, 999_999_999);
    if date < DateTime::UNIX_EPOCH || last.is_some_and(|last| date > last) {
        return Err(ComposeError::Date(date));
    }
    Ok(date.into())
}

/// `<hex@domain>`, the same for the same release, address and version on every attempt.
pub fn message_id(release_id: &str, address: &str, version: u32, domain: &str) -> String {
    let address = address.trim().to_lowercase();
    let version = version.to_string();
    format!(
        "<{}@{domain}>",
        digest(&["pressroom message", release_id, &address, &version])
    )
}

/// A test message's `<test-hex@domain>`: unique to this attempt, and unlike any real one.
pub fn test_message_id(release_id: &str, address: &str, at: DateTime<Utc>, domain: &str) -> String {
    let address = address.trim().to_lowercase();
    let at = at.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    let pid = std::process::id().to_string();
    format!(
        "<test-{}@{domain}>",
        digest(&["pressroom test message", release_id, &address, &at, &pid])
    )
}

/// The first 16 bytes of the SHA-256 of `parts`, each length-prefixed, in hex.
fn digest(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for part in parts {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    h.finalize()
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The link that unsubscribes `address` (a confirmation page; RFC 8058 POSTs to it).
pub fn unsubscribe_url(config: &Config, key: &TokenKey, address: &str) -> String {
    format!("{}unsubscribe/{}", config.site.base_url, key.token(address))
}

/// The link in a mail's footer: the unsubscribe link, asking for its pages in the mail's
/// language when that is not the site's (`?lang=en`). The `List-Unsubscribe` header keeps
/// the plain link.
pub fn footer_unsubscribe_url(
    config: &Config,
    key: &TokenKey,
    address: &str,
    lang: &crate::release::LangTag,
) -> String {
    let url = unsubscribe_url(config, key, address);
    if lang.language() == config.site.lang.language() {
        url
    } else {
        format!("{url}?lang={}", lang.as_str())
    }
}

/// The link to the reader's preferences page (topics, languages, each release or a daily
/// digest, pause, leave, their data): the same opaque token as the unsubscribe link, in the
/// mail's language as that one is.
pub fn footer_preferences_url(
    config: &Config,
    key: &TokenKey,
    address: &str,
    lang: &crate::release::LangTag,
) -> String {
    let url = format!("{}preferences/{}", config.site.base_url, key.token(address));
    if lang.language() == config.site.lang.language() {
        url
    } else {
        format!("{url}?lang={}", lang.as_str())
    }
}

/// `List-Unsubscribe`'s value for `address` (lower-cased): the HTTPS link, and the
/// `mailto:` one only to a mailbox named for it (`[subscribe]`), which an MTA pipes into
/// `pressroom unsubscribe --from-mail`; never the reply_to or from, a person's inbox, where
/// an unsubscribe request would wait for someone to act on it.
pub(super) fn list_unsubscribe(config: &Config, key: &TokenKey, address: &str) -> String {
    let unsubscribe = unsubscribe_url(config, key, address);
    match &config.subscribe.unsubscribe_mailbox {
        Some(mailbox) => format!(
            "<{unsubscribe}>, <mailto:{mailbox}?subject=unsubscribe%20{}>",
            key.token(address)
        ),
        None => format!("<{unsubscribe}>"),
    }
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
    let labels = templates.labels(&release.lang);
    let greeting = match letter.recipient.name.trim() {
        "" => labels.greeting_anonymous.to_string(),
        name => format!("{} {name},", labels.greeting),
    };
    let update = matches!(letter.kind, Kind::Update { .. });
    // Why the reader gets it: their row's topics, as readers see them named.
    let topics: Vec<&str> = letter
        .recipient
        .topics
        .iter()
        .map(|t| config.topics.name(t))
        .collect();
    let organisation = organisation(config);
    let ctx = minijinja::context! {
        site => letter.prepared.site.clone(),
        release => letter.prepared.release.clone(),
        greeting,
        recipient => minijinja::context! { name => letter.recipient.name.clone(), outlet => letter.recipient.outlet.clone(), email => address.clone(), topics => topics.iter().map(|t| t.to_string()).collect::<Vec<String>>() },
        body_text => letter.prepared.body_text.as_str(),
        body_html => Value::from_safe_string(letter.prepared.body_html.clone()),
        why => labels.why(organisation, &topics),
        organisation => organisation.to_string(),
        from_address => config.mail.from.email.to_string(),
        unsubscribe_url => footer_unsubscribe_url(config, key, &address, &release.lang),
        preferences_url => footer_preferences_url(config, key, &address, &release.lang),
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
        Some(display_name(&letter.recipient.name)).filter(|n| !n.is_empty()),
        envelope_address(&letter.recipient.email),
    );
    let list_unsubscribe = list_unsubscribe(config, key, &address);
    let from = &config.mail.from;
    let mut builder = Message::builder()
        .from(Mailbox::new(
            from.name.clone(),
            envelope_address(&from.email),
        ))
        .to(to)
        .subject(subject.clone())
        .date(mail_date(letter.date)?)
        .message_id(Some(match &letter.kind {
            Kind::Test { message_id } => message_id.clone(),
            _ => message_id(&release.id, &address, letter.version, &from_domain),
        }))
        .header(ListId(format!("<newsroom.{from_domain}>")))
        .header(ListUnsubscribe(list_unsubscribe))
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
                .body(encode(&text, letter.transfer)),
        )
        .singlepart(
            SinglePart::builder()
                .header(ContentType::TEXT_HTML)
                .body(encode(&html, letter.transfer)),
        );
    Ok(Composed {
        message: builder.multipart(body)?,
        subject,
        text,
        html,
    })
}

/// The longest display name `To:` carries, in characters; a longer one is cut there
/// (with `…`), the greeting in the body keeps it whole. lettre folds a display name only
/// at its spaces (or, holding non-ASCII, as RFC 2047 words), so a long name without
/// spaces would make a `To:` line over RFC 5322's 998 octets, which servers refuse or
/// break; 100 characters, escaped, and the longest address still fit one line.
pub const MAX_DISPLAY_NAME: usize = 100;

/// The media list's name as `To:` shows it: trimmed, at most `MAX_DISPLAY_NAME`
/// characters.
pub(crate) fn display_name(name: &str) -> String {
    let name = name.trim();
    match name.char_indices().nth(MAX_DISPLAY_NAME) {
        None => name.to_string(),
        Some((cut, _)) => format!("{}…", name[..cut].trim_end()),
    }
}

/// The address as it goes on the envelope and in `To:`: an internationalised domain in
/// its ASCII form (punycode, UTS #46), which every server takes, where the Unicode form
/// needs a server that takes SMTPUTF8. The local part stays as written: it has no ASCII
/// form (`transport` fails it at once on a server without SMTPUTF8).
pub(crate) fn envelope_address(email: &Address) -> Address {
    let domain = email.domain();
    if domain.is_ascii() {
        return email.clone();
    }
    idna::domain_to_ascii(domain)
        .ok()
        .and_then(|ascii| Address::new(email.user(), ascii).ok())
        // lettre accepted the domain only because it has an ASCII form; kept as a guard.
        .unwrap_or_else(|| email.clone())
}

/// One part's body, encoded for the way it travels.
pub(super) fn encode(text: &str, transfer: Transfer) -> Body {
    match transfer {
        Transfer::EightBitMime => as_is(text).unwrap_or_else(|| Body::new(text.to_string())),
        Transfer::SevenBit => Body::new(text.to_string()),
    }
}

/// The longest line SMTP carries, without its CRLF (RFC 5321 4.5.3.1.6, RFC 5322 2.1.1).
const MAX_LINE: usize = 998;

/// `text` unencoded with CRLF line ends, labelled 7bit if it is ASCII and 8bit if not, or
/// None when that would not arrive intact: a line over 998 octets, a NUL, or a CR that does
/// not end a line (RFC 2045 2.7 and 2.8 allow neither in 7bit or 8bit data). lettre's
/// `Body::new_with_encoding` would refuse 8bit for any line of 76 octets or more (HTML
/// paragraphs are longer), so the body is handed over pre-encoded, checked here instead.
/// Dot-stuffing stays lettre's, on the wire.
fn as_is(text: &str) -> Option<Body> {
    let bytes = text.as_bytes();
    if memchr::memchr(0, bytes).is_some() {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() + bytes.len() / 32 + 2);
    let mut start = 0;
    for end in memchr::memchr_iter(b'\n', bytes).chain(std::iter::once(bytes.len())) {
        let line = &bytes[start..end];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.len() > MAX_LINE || memchr::memchr(b'\r', line).is_some() {
            return None;
        }
        out.extend_from_slice(line);
        if end < bytes.len() {
            out.extend_from_slice(b"\r\n");
        }
        start = end + 1;
    }
    let encoding = if bytes.is_ascii() {
        ContentTransferEncoding::SevenBit
    } else {
        ContentTransferEncoding::EightBit
    };
    Some(Body::dangerous_pre_encoded(out, encoding))
}

/// Declares a header whose value we build from validated, ASCII-only parts.
macro_rules! ascii_header {
    ($name:ident, $header:literal) => {
        #[derive(Debug, Clone)]
        pub(crate) struct $name(pub(crate) String);

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
ascii_header!(AutoSubmitted, "Auto-Submitted");

/// RFC 8058: the unsubscribe link takes a one-click POST.
#[derive(Debug, Clone)]
pub(super) struct ListUnsubscribePost;

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
    fn a_part_goes_unencoded_only_when_smtp_carries_it_intact() {
        let body = as_is("Hej Åsa,\n\n.\nen rad\r\nslut").expect("safe");
        assert_eq!(body.encoding(), ContentTransferEncoding::EightBit);
        assert_eq!(
            body.as_ref(),
            "Hej Åsa,\r\n\r\n.\r\nen rad\r\nslut".as_bytes(),
            "CRLF line ends; dot-stuffing is the SMTP client's"
        );
        let ascii = as_is(&format!("{}\n", "x".repeat(MAX_LINE))).expect("998 fits");
        assert_eq!(ascii.encoding(), ContentTransferEncoding::SevenBit);
        assert!(as_is(&"x".repeat(MAX_LINE + 1)).is_none(), "999 does not");
        assert!(as_is("ensam\rCR").is_none(), "a lone CR");
        assert!(as_is("nul\0").is_none(), "a NUL");
        let fallback = encode("ensam\rCR", Transfer::EightBitMime);
        assert_ne!(fallback.encoding(), ContentTransferEncoding::EightBit);
    }

    mod addressed {
        //! Every media-list row `check` accepts can be composed into a message whose
        //! envelope is the address and whose every line fits SMTP (RFC 5322 §2.1.1).

        use std::path::Path;

        use proptest::prelude::*;

        use super::super::*;
        use crate::media::MediaList;
        use crate::release::frontmatter;
        use crate::release::source::{Entry, SourceFile};

        fn release(config: &Config, title: &str) -> Release {
            let file = SourceFile {
                entry: Entry {
                    path: "releases/prop.md".into(),
                    name: "prop".into(),
                    key: "prop.md".into(),
                    bundle: None,
                    stamp: 0,
                },
                text: format!("+++\ntitle = \"{title}\"\ndate = 2019-01-01\n+++\n\nText.\n"),
                files: None,
            };
            frontmatter::parse(&file, &config.site)
                .release
                .expect("a valid release")
        }

        /// A CSV field, quoted, its quotes doubled.
        fn field(s: &str) -> String {
            format!("\"{}\"", s.replace('"', "\"\""))
        }

        fn address() -> impl Strategy<Value = String> {
            let local = prop_oneof![
                "[a-z0-9.+_-]{1,12}",
                "[a-zA-Z0-9.!#$%&'*+/=?^_`{|}~ \"\\\\(),:;<>@åé-]{1,16}",
            ];
            let domain = prop_oneof![
                Just("example.org".to_string()),
                Just("exämple.org".to_string()),
                Just("[127.0.0.1]".to_string()),
                "[a-zäö0-9.-]{1,16}\\.org",
            ];
            (local, domain).prop_map(|(l, d)| format!("{l}@{d}"))
        }

        fn name() -> impl Strategy<Value = String> {
            prop_oneof![
                "[a-zA-Z åäÅ\"\\\\,;<>@()-]{0,60}",
                (1usize..6000).prop_map(|n| "x".repeat(n)),
                (1usize..3000).prop_map(|n| "Åsa ".repeat(n)),
                (1usize..2000).prop_map(|n| "\"\\".repeat(n)),
            ]
            .prop_filter("one space between words (see below)", |n| !n.contains("  "))
        }

        fn title() -> impl Strategy<Value = String> {
            prop_oneof![
                "[A-Za-zåäö0-9 ,.!?-]{1,200}",
                (1usize..=200).prop_map(|n| "x".repeat(n)),
                (1usize..=200).prop_map(|n| "å".repeat(n)),
            ]
            .prop_filter("a title has a letter", |t| !t.trim().is_empty())
            .prop_filter("one space between words (see below)", |t| !t.contains("  "))
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]
            #[test]
            fn a_row_check_accepts_is_a_message_that_fits_smtp(
                email in address(),
                name in name(),
                title in title(),
                eight_bit in any::<bool>(),
            ) {
                let csv = format!("email,name\n{},{}\n", field(&email), field(&name));
                let config = Config::defaults(Path::new("/nonexistent"));
                let (list, _) =
                    MediaList::parse(Path::new("media.csv"), csv.as_bytes(), &config.site.lang);
                let Some(recipient) = list.recipients.first() else {
                    return Ok(());
                };
                let templates = Templates::built_in();
                let release = release(&config, &title);
                let prepared = Prepared::new(&config, &templates, &release);
                let letter = Letter {
                    release: &release,
                    prepared: &prepared,
                    recipient,
                    kind: Kind::Original,
                    version: 1,
                    date: DateTime::UNIX_EPOCH,
                    transfer: if eight_bit { Transfer::EightBitMime } else { Transfer::SevenBit },
                };
                let key = TokenKey::from_bytes([7; 32]);
                let composed = compose(&config, &templates, &key, &letter);
                let composed = composed.map_err(|e| TestCaseError::fail(format!("{email}: {e}")))?;
                let to: Vec<String> = composed.message.envelope().to().iter().map(ToString::to_string).collect();
                prop_assert_eq!(to, vec![envelope_address(&recipient.email).to_string()]);
                let raw = composed.message.formatted();
                let longest = raw.split(|&b| b == b'\n').map(<[u8]>::len).max().unwrap_or(0);
                prop_assert!(longest <= MAX_LINE + 1, "a line of {} octets", longest);
                let parsed = mail_parser::MessageParser::default().parse(&raw).expect("parses");
                let shown = parsed.to().and_then(|to| to.first()).and_then(|a| a.name()).unwrap_or("");
                // Runs of spaces may come back as one (folding): words are compared. (Two
                // spaces between non-ASCII words are lost altogether: lettre 0.11 writes
                // them between two encoded words, where RFC 2047 §6.2 ignores them.)
                let words = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
                prop_assert_eq!(words(shown), words(&display_name(&recipient.name)));
                prop_assert_eq!(words(parsed.subject().unwrap_or("")), words(&composed.subject));
            }
        }
    }

    #[test]
    fn idn_domains_go_as_punycode_local_parts_as_written() {
        let ascii = |a: &str| envelope_address(&a.parse().expect("an address")).to_string();
        assert_eq!(ascii("anna@exämple.org"), "anna@xn--exmple-cua.org");
        assert_eq!(ascii("Anna@Example.org"), "Anna@Example.org");
        assert_eq!(ascii("åsa@exämple.org"), "åsa@xn--exmple-cua.org");
        assert_eq!(ascii("åsa@example.org"), "åsa@example.org");
    }

    #[test]
    fn long_display_names_are_cut_for_the_header_only() {
        assert_eq!(display_name("  Anna Lind "), "Anna Lind");
        let exact = "å".repeat(MAX_DISPLAY_NAME);
        assert_eq!(display_name(&exact), exact);
        let long = format!("{exact}ä");
        assert_eq!(display_name(&long), format!("{exact}…"));
        assert_eq!(
            display_name(&"x".repeat(5000)).chars().count(),
            MAX_DISPLAY_NAME + 1
        );
    }

    #[test]
    fn a_date_no_mail_can_carry_is_an_error_not_a_panic() {
        let at = |s: &str| s.parse::<DateTime<Utc>>().expect("an instant");
        for bad in ["1900-01-01T00:00:00Z", "1969-12-31T23:59:59.999Z"] {
            assert!(
                matches!(mail_date(at(bad)), Err(ComposeError::Date(_))),
                "{bad}"
            );
        }
        for good in ["1970-01-01T00:00:00Z", "9999-12-31T23:59:59.999Z"] {
            assert!(mail_date(at(good)).is_ok(), "{good}");
        }
    }

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
