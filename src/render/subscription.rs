//! The pages a reader meets behind the unsubscribe link of a mail: the question
//! (`unsubscribe.html`), the answer with its undo (`unsubscribed.html`), the page after the
//! undo (`resubscribed.html`) and the page of a link that does not verify
//! (`link-invalid.html`). They extend the site's layout (`subscription.html` over
//! `base.html`), so an office that restyles its newsroom restyles them too; an office
//! overrides any of them, and their words, like every other page's. Pure: the daemon's
//! `http::unsubscribe` does the IO, and `check` renders each of them with the office's
//! templates.

use super::view::SiteView;
use super::{RenderError, Templates, value};
use crate::config::Config;
use crate::release::LangTag;

/// Which page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    /// `GET` of the link: asks, changes nothing (link scanners follow URLs in mail).
    Confirm,
    /// After the opt-out is recorded: says so, offers the undo.
    Unsubscribed,
    /// After the undo.
    Resubscribed,
    /// A token that does not verify.
    Invalid,
}

impl Page {
    pub const ALL: [Page; 4] = [
        Page::Confirm,
        Page::Unsubscribed,
        Page::Resubscribed,
        Page::Invalid,
    ];

    pub fn template(self) -> &'static str {
        match self {
            Page::Confirm => "unsubscribe.html",
            Page::Unsubscribed => "unsubscribed.html",
            Page::Resubscribed => "resubscribed.html",
            Page::Invalid => "link-invalid.html",
        }
    }
}

/// Whose link a page is about and where its buttons post.
#[derive(Debug, Clone, Copy)]
pub struct Link<'a> {
    /// The address the token names, shown masked (see `masked`).
    pub address: &'a str,
    /// The link itself: the confirmation's button posts to it.
    pub unsubscribe_url: &'a str,
    /// Where the undo button posts.
    pub undo_url: &'a str,
}

/// Who sends the mail, as readers know it: the site's `author` (the organisation), else
/// the name on `[mail] from`, else the site's title.
pub fn organisation(config: &Config) -> &str {
    if !config.site.author.trim().is_empty() {
        return &config.site.author;
    }
    match config.mail.from.name.as_deref() {
        Some(name) if !name.trim().is_empty() => name,
        _ => &config.site.title,
    }
}

/// A label's text with its `{organisation}` and `{address}` (masked already) filled in:
/// the words of every page and letter about a reader's subscription.
pub fn fill(text: &str, organisation: &str, address: &str) -> String {
    text.replace("{organisation}", organisation)
        .replace("{address}", address)
}

/// `a…@example.org`: the first character of the local part and the whole domain. The
/// owner of the address recognises which of theirs it is (the domain tells a work address
/// from a private one); someone the link was forwarded to, or who sees the screen, does
/// not learn it. A word joiner (U+2060) holds `…` to `@`: a line would otherwise break
/// after the ellipsis.
pub fn masked(address: &str) -> String {
    match address.rsplit_once('@') {
        Some((local, domain)) => {
            let first = local.chars().next().map(String::from).unwrap_or_default();
            format!("{first}…\u{2060}@{domain}")
        }
        None => "…".to_string(),
    }
}

/// One page in `lang` (the language of the mail the link came from, else the site's).
/// `link` is none only for `Page::Invalid`.
pub fn page(
    config: &Config,
    templates: &Templates,
    page: Page,
    lang: &LangTag,
    link: Option<Link<'_>>,
) -> Result<String, RenderError> {
    let labels = templates.labels(lang);
    let organisation = organisation(config);
    let address = link.map(|l| masked(l.address)).unwrap_or_default();
    let fill = |text: &str| fill(text, organisation, &address);
    let (heading, text) = match page {
        Page::Confirm => (&labels.unsubscribe, fill(&labels.unsubscribe_ask)),
        Page::Unsubscribed => (&labels.unsubscribed, fill(&labels.unsubscribed_text)),
        Page::Resubscribed => (&labels.resubscribed, fill(&labels.resubscribed_text)),
        Page::Invalid => (&labels.invalid_link, fill(&labels.invalid_link_text)),
    };
    let ctx = minijinja::context! {
        site => value(SiteView::with_labels(config, labels)),
        lang => lang.as_str(),
        heading => heading.as_ref(),
        text,
        address,
        organisation,
        unsubscribe_url => link.map(|l| l.unsubscribe_url),
        undo_url => link.map(|l| l.undo_url),
    };
    templates
        .render(page.template(), ctx)
        .map_err(|source| RenderError {
            template: page.template(),
            page: "the unsubscribe link's pages".to_string(),
            source: source.into(),
        })
}

/// Every page, rendered for a made-up address in the site's language: what `check` asks
/// of the office's templates.
pub fn check(config: &Config, templates: &Templates) -> Result<(), RenderError> {
    let url = format!("{}unsubscribe/check", config.site.base_url);
    let undo = format!("{url}/undo");
    let link = Link {
        address: "journalist@example.org",
        unsubscribe_url: &url,
        undo_url: &undo,
    };
    for p in Page::ALL {
        let link = (p != Page::Invalid).then_some(link);
        page(config, templates, p, &config.site.lang, link)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn addresses_are_shown_masked() {
        assert_eq!(masked("anna.lind@example.org"), "a…\u{2060}@example.org");
        assert_eq!(masked("åsa@exämple.org"), "å…\u{2060}@exämple.org");
        assert_eq!(masked("nobody"), "…");
    }

    #[test]
    fn each_page_speaks_the_language_asked_for_and_links_back() {
        let config = Config::defaults(Path::new("/nonexistent"));
        let templates = Templates::built_in();
        let link = Link {
            address: "anna.lind@example.org",
            unsubscribe_url: "http://127.0.0.1:8080/unsubscribe/t",
            undo_url: "http://127.0.0.1:8080/unsubscribe/t/undo",
        };
        for lang in ["sv", "en-GB"] {
            let lang = LangTag::parse(lang).expect("a tag");
            for p in Page::ALL {
                let link = (p != Page::Invalid).then_some(link);
                let html = page(&config, &templates, p, &lang, link).expect("renders");
                assert!(
                    html.contains(&format!("<html lang=\"{}\">", lang.as_str())),
                    "{html}"
                );
                assert!(!html.contains("anna.lind"), "{html}");
                assert!(
                    html.contains(&templates.labels(&lang).back.to_string()),
                    "{html}"
                );
            }
        }
    }
}
