//! The feeds: one neutral description of a feed (`Feed`), written as RSS 2.0, Atom 1.0 and
//! JSON Feed 1.1 by the three writers beside this file. The site gets a main feed and one
//! per topic and per language. Every format carries what a journalist needs without
//! opening the page: the full content (`Contents`), the organisation as author, and every
//! published file.

pub mod atom;
pub mod json;
pub mod rss;

use chrono::{DateTime, Utc};
use url::Url;

use std::collections::HashMap;

use foldhash::fast::FixedState;

use crate::config::Config;
use crate::planner::Plan;
use crate::release::{Attachment, LangTag, Release, Topic};

/// One feed, in any of the three formats.
pub struct Feed<'a> {
    /// Folder under the site root: `""`, `topics/<t>/` or `lang/<l>/`.
    pub dir: String,
    pub title: String,
    pub lang: LangTag,
    /// Newest first, at most `feed_items`.
    pub entries: Vec<&'a Release>,
    /// The newest change among the entries, or the build instant for an empty feed.
    pub updated: DateTime<Utc>,
}

/// Each entry's full HTML content by release slug: the lead image, the text, the press
/// contacts and the list of files, rendered from the `feed_item.html` template by
/// `render::listings`, once per release however many feeds show it. A release whose text
/// is not in memory has none (see `release::Body`).
pub type Contents = super::Map<String, String>;

/// The author every entry names: the organisation (`[site] author`), else the site's
/// title. A name, not an address: RSS's `<author>` must be an email address, so RSS says
/// it with `dc:creator`.
pub fn author(config: &Config) -> &str {
    if config.site.author.is_empty() {
        &config.site.title
    } else {
        &config.site.author
    }
}

/// The three formats, with the file name and media type each is served as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Rss,
    Atom,
    Json,
}

impl Format {
    pub const ALL: [Format; 3] = [Format::Rss, Format::Atom, Format::Json];

    pub fn file_name(self) -> &'static str {
        match self {
            Format::Rss => "feed.rss",
            Format::Atom => "feed.atom",
            Format::Json => "feed.json",
        }
    }

    pub fn media_type(self) -> &'static str {
        match self {
            Format::Rss => "application/rss+xml",
            Format::Atom => "application/atom+xml",
            Format::Json => "application/feed+json",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Format::Rss => "RSS",
            Format::Atom => "Atom",
            Format::Json => "JSON Feed",
        }
    }
}

impl<'a> Feed<'a> {
    pub fn new(
        dir: String,
        title: String,
        lang: LangTag,
        releases: &[&'a Release],
        config: &Config,
        at: DateTime<Utc>,
    ) -> Self {
        let entries: Vec<&Release> = releases
            .iter()
            .copied()
            .take(config.site.feed_items)
            .collect();
        let updated = entries
            .iter()
            .map(|r| r.last_modified())
            .max()
            .unwrap_or(at);
        Feed {
            dir,
            title,
            lang,
            entries,
            updated,
        }
    }

    /// The feed's own URL in a format: what its self link says and where it is served.
    pub fn url(&self, config: &Config, format: Format) -> Url {
        config.url(&format!("{}{}", self.dir, format.file_name()))
    }

    /// The HTML page the feed mirrors.
    pub fn page(&self, config: &Config) -> Url {
        config.url(&self.dir)
    }

    pub fn render(&self, config: &Config, format: Format, contents: &Contents) -> Vec<u8> {
        match format {
            Format::Rss => rss::write(self, config, contents),
            Format::Atom => atom::write(self, config, contents),
            Format::Json => json::write(self, config, contents),
        }
    }
}

/// Every release some feed of the site shows at `plan`: the newest `feed_items` overall,
/// in each topic and in each language (the feeds `render::listings` writes). Their text
/// is what a long-running builder keeps in memory.
pub fn members<'a>(plan: &Plan<'a>, feed_items: usize) -> Vec<&'a Release> {
    let mut main = 0;
    let mut topics: HashMap<&Topic, usize, FixedState> = HashMap::default();
    let mut langs: HashMap<&LangTag, usize, FixedState> = HashMap::default();
    let mut shown = Vec::new();
    for r in &plan.public {
        let room = |n: &mut usize| {
            *n += 1;
            *n <= feed_items
        };
        // Every count moves: `|` rather than `||`.
        let in_main = room(&mut main);
        let in_topic = r
            .topics
            .iter()
            .fold(false, |any, t| room(topics.entry(t).or_default()) | any);
        let in_lang = room(langs.entry(&r.lang).or_default());
        if in_main | in_topic | in_lang {
            shown.push(*r);
        }
    }
    shown
}

/// The absolute URL of an attachment of a release.
pub fn file_url(config: &Config, release: &Release, file: &Attachment) -> String {
    config
        .url(&format!("{}{}", release.path(), file.name))
        .to_string()
}

/// The full content of an entry, if its text is in memory.
pub fn content<'c>(contents: &'c Contents, release: &Release) -> Option<&'c str> {
    contents.get(release.slug.as_str()).map(String::as_str)
}

/// The one enclosure RSS allows: the image, else the first attachment. The image is what
/// readers show beside the entry (SPEC: "shown on the page and as the feed enclosure");
/// every file, the image included, is also a Media RSS `media:content` and a link in the
/// content.
pub fn enclosure(release: &Release) -> Option<&Attachment> {
    release.files().next()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::planner::{plan, tests::release};

    #[test]
    fn members_are_the_newest_of_every_feed() {
        let at = "2021-01-01T00:00:00Z".parse().unwrap();
        let mut rs = Vec::new();
        // Newest first by date: a (newest) … g (oldest).
        for (slug, day, topics, lang) in [
            ("a", "07", &["eko"][..], "sv"),
            ("b", "06", &["eko"], "sv"),
            ("c", "05", &["eko", "hal"], "sv"),
            ("d", "04", &["eko"], "en"),
            ("e", "03", &["eko"], "sv"),
            ("f", "02", &["hal"], "sv"),
            ("g", "01", &["hal"], "sv"),
        ] {
            let mut r = release(slug, &format!("2020-01-{day}T00:00:00Z"));
            r.topics = topics.iter().map(|t| Topic::parse(t).unwrap()).collect();
            r.lang = LangTag::parse(lang).unwrap();
            rs.push(r);
        }
        let plan = plan(&rs, at);
        let slugs = |n| {
            members(&plan, n)
                .iter()
                .map(|r| r.slug.as_str())
                .collect::<Vec<_>>()
        };
        // Main a, b; eko a, b; hal c, f; sv a, b; en d.
        assert_eq!(slugs(2), ["a", "b", "c", "d", "f"]);
        assert_eq!(slugs(1), ["a", "c", "d"]);
        assert_eq!(slugs(50).len(), 7);
    }
}
