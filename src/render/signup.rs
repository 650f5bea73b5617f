//! Signing up on the newsroom (pure): the form (`_signup_form.html`, on the front page,
//! every topic and language page with that topic or language ticked, and its own page
//! `subscribe/`), the one answer every sign-up gets (`signup-sent.html`), the answer to a
//! form that cannot be read (`signup-invalid.html`), the confirmation link's pages (the
//! question `confirm.html`, `subscribed.html` after it, `link-invalid.html` for a link
//! used or expired) and the confirmation mail (`confirm-mail.txt`, `confirm-mail.html`).
//! All are the office's to override, words included (`strings.toml`); `check` renders them.

use serde::Serialize;

use super::subscription::{masked, organisation};
use super::view::SiteView;
use super::{RenderError, Templates, value};
use crate::config::Config;
use crate::release::LangTag;

/// The form as templates see it: where it posts and the choices it offers.
#[derive(Debug, Clone, Serialize, Hash)]
pub struct Form {
    pub action: String,
    pub topics: Vec<Choice>,
    pub languages: Vec<Choice>,
}

/// A checkbox: the name shown, the value posted, whether the page ticks it.
#[derive(Debug, Clone, Serialize, Hash)]
pub struct Choice {
    pub name: String,
    pub value: String,
    pub checked: bool,
}

/// The form offering `topics` (shown name, slug) and `langs` (shown name, tag), with the
/// topic `ticked_topic` (a slug) or the language `ticked_lang` (a tag) ticked; none when
/// the office closed sign-ups (`[subscribe] open = false`). A topic posts its shown name,
/// a language its tag: what the subscriber's choices keep.
pub fn form(
    config: &Config,
    topics: &[(&str, &str)],
    langs: &[(&str, &str)],
    ticked_topic: Option<&str>,
    ticked_lang: Option<&str>,
) -> Option<Form> {
    if !config.subscribe.open {
        return None;
    }
    Some(Form {
        action: config.url("subscribe").to_string(),
        topics: topics
            .iter()
            .map(|(name, slug)| Choice {
                name: name.to_string(),
                value: name.to_string(),
                checked: ticked_topic == Some(*slug),
            })
            .collect(),
        languages: langs
            .iter()
            .map(|(name, tag)| Choice {
                name: name.to_string(),
                value: tag.to_string(),
                checked: ticked_lang == Some(*tag),
            })
            .collect(),
    })
}

/// Which page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    /// The answer to every sign-up that could be read, whatever became of it.
    Sent,
    /// A form that could not be read.
    Invalid,
    /// `GET` of the confirmation link: asks, changes nothing.
    Confirm,
    /// After the confirmation.
    Subscribed,
    /// A confirmation link used already, expired or never made.
    LinkInvalid,
}

impl Page {
    pub const ALL: [Page; 5] = [
        Page::Sent,
        Page::Invalid,
        Page::Confirm,
        Page::Subscribed,
        Page::LinkInvalid,
    ];

    pub fn template(self) -> &'static str {
        match self {
            Page::Sent => "signup-sent.html",
            Page::Invalid => "signup-invalid.html",
            Page::Confirm => "confirm.html",
            Page::Subscribed => "subscribed.html",
            Page::LinkInvalid => "link-invalid.html",
        }
    }
}

/// One page in `lang`. `confirm_url` is where the confirmation's button posts (`Confirm`);
/// `address` is the subscriber's, shown masked (`Subscribed`).
pub fn page(
    config: &Config,
    templates: &Templates,
    page: Page,
    lang: &LangTag,
    confirm_url: Option<&str>,
    address: Option<&str>,
) -> Result<String, RenderError> {
    let labels = templates.labels(lang);
    let organisation = organisation(config);
    let address = address.map(masked).unwrap_or_default();
    let fill = |text: &str| super::subscription::fill(text, organisation, &address);
    let (heading, text) = match page {
        Page::Sent => (&labels.signup_sent, fill(&labels.signup_sent_text)),
        Page::Invalid => (&labels.signup_invalid, fill(&labels.signup_invalid_text)),
        Page::Confirm => (&labels.confirm, fill(&labels.confirm_ask)),
        Page::Subscribed => (&labels.subscribed, fill(&labels.subscribed_text)),
        Page::LinkInvalid => (&labels.invalid_link, fill(&labels.confirm_invalid_text)),
    };
    let ctx = minijinja::context! {
        site => value(SiteView::with_labels(config, labels)),
        lang => lang.as_str(),
        heading => heading.as_ref(),
        text,
        address,
        organisation,
        confirm_url,
    };
    templates
        .render(page.template(), ctx)
        .map_err(|source| RenderError {
            template: page.template(),
            page: "the sign-up pages".to_string(),
            source: source.into(),
        })
}

/// The confirmation mail's subject, text and HTML, in `lang`, to `address` (as written),
/// its link `confirm_url`.
pub struct Mail {
    pub subject: String,
    pub text: String,
    pub html: String,
}

pub fn confirmation_mail(
    config: &Config,
    templates: &Templates,
    lang: &LangTag,
    address: &str,
    confirm_url: &str,
) -> Result<Mail, RenderError> {
    let labels = templates.labels(lang);
    let organisation = organisation(config);
    let hours = config
        .subscribe
        .confirm_within
        .as_secs()
        .div_ceil(3600)
        .max(1);
    let fill = |text: &str| {
        text.replace("{organisation}", organisation)
            .replace("{address}", address)
            .replace("{hours}", &hours.to_string())
    };
    let subject = fill(&labels.confirm_subject);
    let ctx = minijinja::context! {
        site => value(SiteView::with_labels(config, labels)),
        lang => lang.as_str(),
        subject => subject.clone(),
        text => fill(&labels.confirm_text),
        ignore => fill(&labels.confirm_ignore),
        organisation,
        confirm_url,
    };
    let render = |template: &'static str| {
        templates
            .render(template, ctx.clone())
            .map_err(|source| RenderError {
                template,
                page: "the confirmation mail".to_string(),
                source: source.into(),
            })
    };
    Ok(Mail {
        text: render("confirm-mail.txt")?,
        html: render("confirm-mail.html")?,
        subject,
    })
}

/// Every page and the mail, for a made-up address in the site's language: what `check`
/// asks of the office's templates.
pub fn check(config: &Config, templates: &Templates) -> Result<(), RenderError> {
    let url = format!("{}confirm/check", config.site.base_url);
    for p in Page::ALL {
        page(
            config,
            templates,
            p,
            &config.site.lang,
            Some(&url),
            Some("journalist@example.org"),
        )?;
    }
    confirmation_mail(
        config,
        templates,
        &config.site.lang,
        "journalist@example.org",
        &url,
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn every_page_and_the_mail_speak_swedish_and_english() {
        let config = Config::defaults(Path::new("/nonexistent"));
        let templates = Templates::built_in();
        for tag in ["sv", "en"] {
            let lang = LangTag::parse(tag).expect("a tag");
            for p in Page::ALL {
                let html = page(
                    &config,
                    &templates,
                    p,
                    &lang,
                    Some("http://127.0.0.1:8080/confirm/t"),
                    Some("anna.lind@example.org"),
                )
                .expect("renders");
                assert!(html.contains(&format!("<html lang=\"{tag}\">")), "{html}");
                assert!(!html.contains("anna.lind"), "{html}");
            }
            let mail = confirmation_mail(
                &config,
                &templates,
                &lang,
                "anna.lind@example.org",
                "http://127.0.0.1:8080/confirm/t",
            )
            .expect("renders");
            assert!(mail.text.contains("http://127.0.0.1:8080/confirm/t"));
            assert!(
                mail.html
                    .contains("href=\"http://127.0.0.1:8080/confirm/t\"")
            );
            assert!(mail.text.contains(&*templates.labels(&lang).confirm_ignore));
            assert!(mail.text.contains("48"), "{}", mail.text);
        }
    }
}
