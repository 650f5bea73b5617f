//! What templates see: releases and the site turned into plain serialisable values with
//! absolute URLs, and dates written in the page's language in the site's time zone.

use chrono::{DateTime, Datelike, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use crate::config::Config;
use crate::release::{Contact, Release, Topic};

use super::images;
pub use super::locale::Labels;
use super::share::ShareView;

#[derive(Serialize)]
pub struct SiteView<'a> {
    pub title: &'a str,
    pub base_url: &'a str,
    pub lang: &'a str,
    pub author: &'a str,
    pub labels: &'a Labels,
}

impl<'a> SiteView<'a> {
    /// With the built-in words of the site's language.
    pub fn new(config: &'a Config) -> Self {
        SiteView::with_labels(config, Labels::for_lang(&config.site.lang))
    }

    pub fn with_labels(config: &'a Config, labels: &'a Labels) -> Self {
        SiteView {
            title: &config.site.title,
            base_url: config.site.base_url.as_str(),
            lang: config.site.lang.as_str(),
            author: &config.site.author,
            labels,
        }
    }
}

/// A date as a person reads it, and in parts for templates that write their own.
#[derive(Serialize)]
pub struct DateView {
    /// For `<time datetime>`: RFC 3339 in the site's zone, or the day alone (`2018-10-18`)
    /// when no time was given.
    pub iso: String,
    /// `18 oktober 2018`, with the time of day only when the release gave one:
    /// `18 oktober 2018 kl. 08.00`.
    pub display: String,
    /// `18 oktober 2018`.
    pub day: String,
    /// `08.00` (`08:00` in English), or none when only a day was given.
    pub time: Option<String>,
    /// The zone's abbreviation (`CEST`).
    pub zone: String,
    pub year: i32,
    /// 1 to 12.
    pub month: u32,
    pub month_name: &'static str,
    pub day_of_month: u32,
}

impl DateView {
    /// `timed`: whether the time of day is part of the date (a release dated with a day
    /// alone lifts at the site's `publish_time`, a time nobody wrote).
    pub fn new(at: DateTime<Utc>, tz: Tz, labels: &Labels, timed: bool) -> Self {
        let local = at.with_timezone(&tz);
        DateView {
            iso: if timed {
                local.to_rfc3339()
            } else {
                local.format("%Y-%m-%d").to_string()
            },
            display: labels.date(&local, timed),
            day: labels.day(&local),
            time: timed.then(|| labels.time(&local)),
            zone: local.format("%Z").to_string(),
            year: local.year(),
            month: local.month(),
            month_name: labels.month(local.month0()),
            day_of_month: local.day(),
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
    /// A picture's size in pixels as shown (the web version's, for the release's image),
    /// for `<img width height>`: none for a document or a picture whose header cannot be
    /// read.
    pub width: Option<u32>,
    pub height: Option<u32>,
}

/// The release page's press kit: every picture of the bundle and every document.
#[derive(Serialize, Default)]
pub struct PressKitView {
    pub images: Vec<KitImage>,
    pub documents: Vec<KitDocument>,
}

/// A picture of the press kit: the original to download, the web version to show.
#[derive(Serialize)]
pub struct KitImage {
    pub name: String,
    /// The original.
    pub url: String,
    pub mime: String,
    /// `3000 × 2000 px, 2,4 MB` (the original's), or the file size alone when its header
    /// cannot be read.
    pub size: String,
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// What the page shows: the web version when there is one, else the original.
    pub thumb: ThumbView,
    /// The release's `image_alt` for its image; empty for the others, whose link is
    /// named by the file name beside them.
    pub alt: String,
}

#[derive(Serialize)]
pub struct ThumbView {
    pub url: String,
    pub width: Option<u32>,
    pub height: Option<u32>,
}

/// A document of the press kit, offered as a download.
#[derive(Serialize)]
pub struct KitDocument {
    pub name: String,
    pub url: String,
    pub mime: String,
    /// `PDF`, `Word-dokument`.
    pub kind: String,
    /// `1,2 MB`.
    pub size: String,
}

#[derive(Serialize)]
pub struct ReleaseView<'a> {
    pub title: &'a str,
    pub url: String,
    pub id: &'a str,
    pub lang: &'a str,
    /// The language's name in the release's own language (`svenska`).
    pub lang_name: String,
    pub date: DateView,
    pub updated: Option<DateView>,
    pub summary: &'a str,
    pub topics: Vec<TopicView>,
    pub contacts: &'a [Contact],
    pub image: Option<FileView>,
    pub image_alt: Option<&'a str>,
    pub attachments: Vec<FileView>,
    /// Pictures (thumbnails, pixel and file sizes) and documents (type and size).
    pub press_kit: PressKitView,
    pub body_html: &'a str,
    /// The body's first paragraph (the lead) and the rest, so a page can put the press
    /// contacts between them; `lead_html` is empty when the body opens with anything else.
    pub lead_html: &'a str,
    pub rest_html: &'a str,
    pub withdrawn: Option<&'a str>,
    /// Open Graph, Twitter card and schema.org metadata; none for a withdrawn release.
    pub share: Option<ShareView>,
    pub labels: &'a Labels,
}

impl<'a> ReleaseView<'a> {
    /// With the built-in words of the release's language.
    pub fn new(release: &'a Release, config: &Config) -> Self {
        ReleaseView::with_labels(release, config, Labels::for_lang(&release.lang))
    }

    /// `labels`: the words of the release's language.
    pub fn with_labels(release: &'a Release, config: &Config, labels: &'a Labels) -> Self {
        let page = config.url(&release.path());
        let url = |name: &str| {
            page.join(name)
                .map_or_else(|_| page.to_string(), |u| u.to_string())
        };
        let file = |a: &crate::release::Attachment| FileView {
            name: a.name.clone(),
            url: url(&a.name),
            mime: a.mime.clone(),
            size: human_size(a.len),
            width: None,
            height: None,
        };
        let tz = config.site.timezone;
        // A withdrawn release's page is a notice: its title, date and the reason, never its
        // text or files, whatever a custom template asks for.
        let shown = release.withdrawn.is_none();
        let body_html = if shown {
            release.body_html().unwrap_or_default()
        } else {
            ""
        };
        let (lead_html, rest_html) = lead(body_html);
        // Each picture's header is read once per page (never its pixels).
        let probes: Vec<(&crate::release::Attachment, Option<images::Probe>)> = if shown {
            release
                .files()
                .filter(|a| images::is_image(a))
                .map(|a| (a, images::probe(&a.path, &a.name)))
                .collect()
        } else {
            Vec::new()
        };
        let thumb = |a: &crate::release::Attachment, p: &Option<images::Probe>| match p {
            Some(images::Probe { web: Some(w), .. }) => ThumbView {
                url: url(&w.name),
                width: Some(w.width),
                height: Some(w.height),
            },
            Some(p) => ThumbView {
                url: url(&a.name),
                width: Some(p.width),
                height: Some(p.height),
            },
            None => ThumbView {
                url: url(&a.name),
                width: None,
                height: None,
            },
        };
        // The page, its share card and the feeds show the release's image at web size.
        let image = release.image.as_ref().filter(|_| shown).map(|a| {
            let mut view = file(a);
            if let Some((_, p)) = probes.iter().find(|(b, _)| b.name == a.name) {
                let t = thumb(a, p);
                view.url = t.url;
                view.width = t.width;
                view.height = t.height;
            }
            view
        });
        let press_kit = PressKitView {
            images: probes
                .iter()
                .map(|(a, p)| KitImage {
                    name: a.name.clone(),
                    url: url(&a.name),
                    mime: a.mime.clone(),
                    size: match p {
                        Some(p) => {
                            format!(
                                "{}, {}",
                                labels.pixels(p.width, p.height),
                                labels.size(a.len)
                            )
                        }
                        None => labels.size(a.len),
                    },
                    width: p.as_ref().map(|p| p.width),
                    height: p.as_ref().map(|p| p.height),
                    thumb: small(thumb(a, p)),
                    alt: match &release.image {
                        Some(i) if i.name == a.name => {
                            release.image_alt.clone().unwrap_or_default()
                        }
                        _ => String::new(),
                    },
                })
                .collect(),
            documents: release
                .files()
                .filter(|a| shown && !images::is_image(a))
                .map(|a| KitDocument {
                    name: a.name.clone(),
                    url: url(&a.name),
                    mime: a.mime.clone(),
                    kind: labels.file_kind(&a.mime, &a.name),
                    size: labels.size(a.len),
                })
                .collect(),
        };
        let share = shown.then(|| ShareView::new(release, config, image.as_ref()));
        ReleaseView {
            title: &release.title,
            url: page.to_string(),
            id: &release.id,
            lang: release.lang.as_str(),
            lang_name: labels.language_name(&release.lang),
            date: DateView::new(release.date, tz, labels, !release.date_only),
            // A correction is an instant the ledger saw: it always has its time.
            updated: release
                .updated
                .filter(|u| *u > release.date)
                .map(|u| DateView::new(u, tz, labels, true)),
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
            image,
            image_alt: release.image_alt.as_deref(),
            attachments: release
                .files()
                .filter(|a| shown && release.attachments.contains(a))
                .map(file)
                .collect(),
            press_kit,
            body_html,
            lead_html,
            rest_html,
            withdrawn: release.withdrawn.as_deref(),
            share,
            labels,
        }
    }
}

/// How wide the press kit shows a thumbnail, in CSS pixels: the web version (sharp on a
/// high-density screen) with `width`/`height` scaled to this, so nothing moves as it loads.
const THUMB_WIDTH: u32 = 320;

fn small(mut t: ThumbView) -> ThumbView {
    if let (Some(w), Some(h)) = (t.width, t.height)
        && w > THUMB_WIDTH
    {
        t.width = Some(THUMB_WIDTH);
        t.height = Some(
            ((u64::from(h) * u64::from(THUMB_WIDTH) + u64::from(w) / 2) / u64::from(w)).max(1)
                as u32,
        );
    }
    t
}

/// Splits sanitised body HTML after its first paragraph, when it opens with one. A `<p>`
/// cannot hold another, and the HTML is our own well-formed output, so the first `</p>`
/// closes it.
fn lead(html: &str) -> (&str, &str) {
    if !html.starts_with("<p>") {
        return ("", html);
    }
    match html.find("</p>") {
        Some(end) => html.split_at(end + "</p>".len()),
        None => ("", html),
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

#[cfg(test)]
mod tests {
    use super::lead;

    #[test]
    fn the_lead_is_the_first_paragraph_when_the_body_opens_with_one() {
        let html = "<p>Lead <em>here</em>.</p>\n<p>More.</p>\n";
        assert_eq!(
            lead(html),
            ("<p>Lead <em>here</em>.</p>", "\n<p>More.</p>\n")
        );
        // A body that opens with a heading or a list has no lead: contacts come first.
        let html = "<h2>Bakgrund</h2>\n<p>Text.</p>\n";
        assert_eq!(lead(html), ("", html));
        assert_eq!(lead(""), ("", ""));
    }
}
