//! The pages behind a mail's preferences link (pure): the reader's choices as a form
//! (`preferences.html`: topics, languages, each release or a daily digest, pause or
//! resume, leave, their data), the same page for an address that left (it offers to
//! subscribe again), and the erase link's page (`erase.html`: the question, then the
//! answer). They extend `subscription.html` like the unsubscribe pages, in the language
//! the link asked for, and work without JavaScript: every change is a form's POST.
//! `http::preferences` does the IO; `check` renders them with the office's templates.

use super::subscription::{masked, organisation};
use super::view::SiteView;
use super::{RenderError, Templates, value};
use crate::config::Config;
use crate::release::LangTag;

/// Where the reader stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Mailed, with the choices shown.
    Active,
    /// Chose to pause: nothing is mailed until they resume.
    Paused,
    /// Unsubscribed (or erased): mailed nothing until they subscribe again themselves.
    OptedOut,
}

/// A choice on the form: its value, what readers see, and whether it is ticked.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Choice {
    pub value: String,
    pub name: String,
    pub checked: bool,
}

/// What a preferences page shows.
#[derive(Debug, Clone)]
pub struct Form<'a> {
    pub address: &'a str,
    pub standing: Standing,
    /// The choices shown are the media list's row (the press office's), not their own.
    pub from_list: bool,
    pub topics: Vec<Choice>,
    pub langs: Vec<Choice>,
    /// `each` or `digest`.
    pub delivery: &'a str,
    /// Where the page's forms post.
    pub action_url: &'a str,
    /// What the last POST did, in words (`saved`, `confirm_sent`…), if anything.
    pub notice: Option<Notice>,
}

/// The answer a POST leaves on the page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    Saved,
    Paused,
    Resumed,
    Left,
    ConfirmSent,
    DataSent,
    EraseSent,
}

/// The pages of the links the preferences page mails (`erase.html`): each GET asks, with a
/// button (a link scanner erases or subscribes nobody); each POST answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkPage {
    EraseAsk,
    Erased,
    AgainAsk,
    Again,
}

impl LinkPage {
    pub const ALL: [LinkPage; 4] = [
        LinkPage::EraseAsk,
        LinkPage::Erased,
        LinkPage::AgainAsk,
        LinkPage::Again,
    ];
}

use super::subscription::fill;

/// The preferences page in `lang`.
pub fn page(
    config: &Config,
    templates: &Templates,
    lang: &LangTag,
    form: &Form<'_>,
) -> Result<String, RenderError> {
    let labels = templates.labels(lang);
    let organisation = organisation(config);
    let address = masked(form.address);
    let notice = form.notice.map(|n| {
        let text = match n {
            Notice::Saved => &labels.saved,
            Notice::Paused => &labels.paused_text,
            Notice::Resumed => &labels.resubscribed_text,
            Notice::Left => &labels.unsubscribed_text,
            Notice::ConfirmSent => &labels.confirm_sent,
            Notice::DataSent => &labels.data_sent,
            Notice::EraseSent => &labels.erase_sent,
        };
        fill(text, organisation, &address)
    });
    let standing = match form.standing {
        Standing::Active => "active",
        Standing::Paused => "paused",
        Standing::OptedOut => "opted_out",
    };
    let ctx = minijinja::context! {
        site => value(SiteView::with_labels(config, labels)),
        lang => lang.as_str(),
        heading => labels.preferences.as_ref(),
        text => fill(&labels.preferences_text, organisation, &address),
        paused_text => fill(&labels.paused_text, organisation, &address),
        opted_out_text => fill(&labels.opted_out_text, organisation, &address),
        notice,
        address,
        organisation,
        standing,
        from_list => form.from_list,
        topics => value(&form.topics),
        all_topics => form.topics.iter().all(|c| !c.checked),
        langs => value(&form.langs),
        all_langs => form.langs.iter().all(|c| !c.checked),
        delivery => form.delivery,
        action_url => form.action_url,
    };
    render(templates, "preferences.html", ctx)
}

/// A mailed link's page in `lang`; `action_url` is where its button posts.
pub fn link_page(
    config: &Config,
    templates: &Templates,
    lang: &LangTag,
    which: LinkPage,
    address: &str,
    action_url: &str,
) -> Result<String, RenderError> {
    let labels = templates.labels(lang);
    let organisation = organisation(config);
    let address = masked(address);
    let (heading, text, button) = match which {
        LinkPage::EraseAsk => (
            &labels.erase,
            &labels.erase_ask,
            Some(labels.erase.as_ref()),
        ),
        LinkPage::Erased => (&labels.erased, &labels.erased_text, None),
        LinkPage::AgainAsk => (
            &labels.subscribe_again,
            &labels.opted_out_text,
            Some(labels.subscribe_again.as_ref()),
        ),
        LinkPage::Again => (&labels.resubscribed, &labels.resubscribed_text, None),
    };
    let text = fill(text, organisation, &address);
    let ctx = minijinja::context! {
        site => value(SiteView::with_labels(config, labels)),
        lang => lang.as_str(),
        heading => heading.as_ref(),
        text,
        address,
        organisation,
        button,
        action_url,
    };
    render(templates, "erase.html", ctx)
}

fn render(
    templates: &Templates,
    template: &'static str,
    ctx: minijinja::Value,
) -> Result<String, RenderError> {
    templates
        .render(template, ctx)
        .map_err(|source| RenderError {
            template,
            page: "the preferences link's pages".to_string(),
            source: source.into(),
        })
}

/// Every page, for a made-up address in the site's language: what `check` asks of the
/// office's templates.
pub fn check(config: &Config, templates: &Templates) -> Result<(), RenderError> {
    let url = format!("{}preferences/check", config.site.base_url);
    let choice = |v: &str, checked| Choice {
        value: v.into(),
        name: v.into(),
        checked,
    };
    for standing in [Standing::Active, Standing::Paused, Standing::OptedOut] {
        let form = Form {
            address: "journalist@example.org",
            standing,
            from_list: standing == Standing::Active,
            topics: vec![choice("a", true), choice("b", false)],
            langs: vec![choice("sv", false)],
            delivery: "digest",
            action_url: &url,
            notice: Some(Notice::Saved),
        };
        page(config, templates, &config.site.lang, &form)?;
    }
    for which in LinkPage::ALL {
        link_page(
            config,
            templates,
            &config.site.lang,
            which,
            "journalist@example.org",
            &url,
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn the_form_shows_the_choices_in_the_language_asked_and_never_the_address() {
        let config = Config::defaults(Path::new("/nonexistent"));
        let templates = Templates::built_in();
        let topics = vec![
            Choice {
                value: "Prostitution".into(),
                name: "Prostitution".into(),
                checked: true,
            },
            Choice {
                value: "Jämställdhet".into(),
                name: "Jämställdhet".into(),
                checked: false,
            },
        ];
        for (lang, save) in [("sv", "Spara mina val"), ("en", "Save my choices")] {
            let lang = LangTag::parse(lang).unwrap();
            let form = Form {
                address: "anna.lind@example.org",
                standing: Standing::Active,
                from_list: false,
                topics: topics.clone(),
                langs: vec![],
                delivery: "digest",
                action_url: "http://127.0.0.1:8080/preferences/t",
                notice: None,
            };
            let html = page(&config, &templates, &lang, &form).unwrap();
            assert!(html.contains(save), "{html}");
            assert!(!html.contains("anna.lind"), "{html}");
            assert!(
                html.contains(r#"name="topic" value="Prostitution" checked"#),
                "{html}"
            );
            assert!(
                html.contains(r#"name="topic" value="Jämställdhet">"#),
                "{html}"
            );
            assert!(
                html.contains(r#"name="delivery" value="digest" checked"#),
                "{html}"
            );
            assert!(!html.contains("<script"), "works without JavaScript");
        }
        check(&config, &templates).unwrap();
    }
}
