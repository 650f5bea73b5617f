//! What templates see: releases and the site turned into plain serialisable values with
//! absolute URLs and dates already formatted in the site's time zone.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use crate::config::Config;
use crate::release::{Contact, LangTag, Release, Topic};

#[derive(Serialize)]
pub struct SiteView<'a> {
    pub title: &'a str,
    pub base_url: &'a str,
    pub lang: &'a str,
    pub author: &'a str,
    pub labels: &'static Labels,
}

impl<'a> SiteView<'a> {
    pub fn new(config: &'a Config) -> Self {
        SiteView {
            title: &config.site.title,
            base_url: config.site.base_url.as_str(),
            lang: config.site.lang.as_str(),
            author: &config.site.author,
            labels: Labels::for_lang(&config.site.lang),
        }
    }
}

#[derive(Serialize)]
pub struct DateView {
    /// RFC 3339 in the site's zone, for `<time datetime>`.
    pub iso: String,
    /// `2018-10-18 00:00 CEST`.
    pub display: String,
}

impl DateView {
    pub fn new(at: DateTime<Utc>, tz: Tz) -> Self {
        let local = at.with_timezone(&tz);
        DateView {
            iso: local.to_rfc3339(),
            display: local.format("%Y-%m-%d %H:%M %Z").to_string(),
        }
    }
}

#[derive(Serialize)]
pub struct LinkView {
    pub name: String,
    pub url: String,
}

/// A topic as templates see it: the name people read, its slug and its page.
#[derive(Serialize, Clone)]
pub struct TopicView {
    pub name: String,
    pub slug: String,
    pub url: String,
    /// From the config's `[topics]` table, if it has one.
    pub description: Option<String>,
}

impl TopicView {
    /// `name` is the one shown: the config's, or the spelling the caller chose.
    pub fn new(topic: &Topic, name: &str, config: &Config) -> Self {
        TopicView {
            name: name.to_string(),
            slug: topic.slug().to_string(),
            url: config.url(&topic.path()).to_string(),
            description: config.topics.get(topic).and_then(|e| e.description.clone()),
        }
    }
}

#[derive(Serialize)]
pub struct FileView {
    pub name: String,
    pub url: String,
    pub mime: String,
    pub size: String,
}

#[derive(Serialize)]
pub struct ReleaseView<'a> {
    pub title: &'a str,
    pub url: String,
    pub id: &'a str,
    pub lang: &'a str,
    pub date: DateView,
    pub updated: Option<DateView>,
    pub summary: &'a str,
    pub topics: Vec<TopicView>,
    pub contacts: &'a [Contact],
    pub image: Option<FileView>,
    pub image_alt: Option<&'a str>,
    pub attachments: Vec<FileView>,
    pub body_html: &'a str,
    pub withdrawn: Option<&'a str>,
    pub labels: &'static Labels,
}

impl<'a> ReleaseView<'a> {
    pub fn new(release: &'a Release, config: &Config) -> Self {
        let page = config.url(&release.path());
        let file = |a: &crate::release::Attachment| FileView {
            name: a.name.clone(),
            url: page
                .join(&a.name)
                .map_or_else(|_| page.to_string(), |u| u.to_string()),
            mime: a.mime.clone(),
            size: human_size(a.len),
        };
        let tz = config.site.timezone;
        // A withdrawn release's page is a notice: its title, date and the reason, never its
        // text or files, whatever a custom template asks for.
        let shown = release.withdrawn.is_none();
        ReleaseView {
            title: &release.title,
            url: page.to_string(),
            id: &release.id,
            lang: release.lang.as_str(),
            date: DateView::new(release.date, tz),
            updated: release
                .updated
                .filter(|u| *u > release.date)
                .map(|u| DateView::new(u, tz)),
            summary: if shown {
                release.summary().unwrap_or_default()
            } else {
                ""
            },
            topics: release
                .topics
                .iter()
                .map(|t| TopicView::new(t, config.topics.name(t), config))
                .collect(),
            contacts: &release.contacts,
            image: release.image.as_ref().filter(|_| shown).map(file),
            image_alt: release.image_alt.as_deref(),
            attachments: release
                .files()
                .filter(|a| shown && release.attachments.contains(a))
                .map(file)
                .collect(),
            body_html: if shown {
                release.body_html().unwrap_or_default()
            } else {
                ""
            },
            withdrawn: release.withdrawn.as_deref(),
            labels: Labels::for_lang(&release.lang),
        }
    }
}

/// `1.2 MB`, `340 kB`, `512 B` (SI units, as file managers show them).
pub fn human_size(len: u64) -> String {
    match len {
        n if n >= 1_000_000 => format!("{:.1} MB", n as f64 / 1e6),
        n if n >= 1_000 => format!("{} kB", n / 1000),
        n => format!("{n} B"),
    }
}

/// The few words the built-in templates print, in the page's language.
#[derive(Serialize)]
pub struct Labels {
    pub releases: &'static str,
    pub latest: &'static str,
    pub archive: &'static str,
    pub topics: &'static str,
    pub topic: &'static str,
    pub language: &'static str,
    pub contacts: &'static str,
    pub attachments: &'static str,
    pub published: &'static str,
    pub updated: &'static str,
    pub withdrawn: &'static str,
    pub subscribe: &'static str,
    pub none: &'static str,
    pub greeting: &'static str,
    pub greeting_anonymous: &'static str,
    pub correction: &'static str,
    pub update_subject: &'static str,
    pub read_online: &'static str,
    pub unsubscribe: &'static str,
    pub search: &'static str,
    pub search_results: &'static str,
    pub hits: &'static str,
    pub no_results: &'static str,
    pub previous: &'static str,
    pub next: &'static str,
    pub not_found: &'static str,
    pub not_found_text: &'static str,
}

const SV: Labels = Labels {
    releases: "Pressmeddelanden",
    latest: "Senaste pressmeddelanden",
    archive: "Arkiv",
    topics: "Ämnen",
    topic: "Ämne",
    language: "Språk",
    contacts: "Presskontakt",
    attachments: "Dokument",
    published: "Publicerad",
    updated: "Uppdaterad",
    withdrawn: "Pressmeddelandet har dragits tillbaka",
    subscribe: "Prenumerera",
    none: "Inga pressmeddelanden ännu.",
    greeting: "Hej",
    greeting_anonymous: "Hej!",
    correction: "Rättelse: det här pressmeddelandet har uppdaterats sedan vi skickade det.",
    update_subject: "Uppdaterat",
    read_online: "Läs pressmeddelandet på webben",
    unsubscribe: "Avsluta prenumerationen",
    search: "Sök",
    search_results: "Sökresultat",
    hits: "träffar",
    no_results: "Inga pressmeddelanden matchar sökningen.",
    previous: "Föregående",
    next: "Nästa",
    not_found: "Sidan finns inte",
    not_found_text: "Sidan du söker finns inte här. Sök bland pressmeddelandena eller gå till startsidan.",
};

const EN: Labels = Labels {
    releases: "Press releases",
    latest: "Latest press releases",
    archive: "Archive",
    topics: "Topics",
    topic: "Topic",
    language: "Language",
    contacts: "Press contact",
    attachments: "Documents",
    published: "Published",
    updated: "Updated",
    withdrawn: "This press release has been withdrawn",
    subscribe: "Subscribe",
    none: "No press releases yet.",
    greeting: "Dear",
    greeting_anonymous: "Hello,",
    correction: "Correction: this press release has been updated since we sent it.",
    update_subject: "Updated",
    read_online: "Read the press release online",
    unsubscribe: "Unsubscribe",
    search: "Search",
    search_results: "Search results",
    hits: "results",
    no_results: "No press releases match the search.",
    previous: "Previous",
    next: "Next",
    not_found: "Page not found",
    not_found_text: "The page you are looking for is not here. Search the press releases or go to the front page.",
};

impl Labels {
    pub fn for_lang(lang: &LangTag) -> &'static Labels {
        match lang.key().split('-').next() {
            Some("sv") => &SV,
            _ => &EN,
        }
    }
}
