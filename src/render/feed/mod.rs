//! The feeds: one neutral description of a feed (`Feed`), written as RSS 2.0, Atom 1.0 and
//! JSON Feed 1.1 by the three writers beside this file. The site gets a main feed and one
//! per topic and per language.

pub mod atom;
pub mod json;
pub mod rss;

use chrono::{DateTime, Utc};
use url::Url;

use crate::config::Config;
use crate::release::{Attachment, LangTag, Release};

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

    pub fn render(&self, config: &Config, format: Format) -> Vec<u8> {
        match format {
            Format::Rss => rss::write(self, config),
            Format::Atom => atom::write(self, config),
            Format::Json => json::write(self, config),
        }
    }
}

/// The absolute URL of an attachment of a release.
pub fn file_url(config: &Config, release: &Release, file: &Attachment) -> String {
    config
        .url(&format!("{}{}", release.path(), file.name))
        .to_string()
}

/// The one enclosure RSS allows: the image, else the first attachment.
pub fn enclosure(release: &Release) -> Option<&Attachment> {
    release.files().next()
}
