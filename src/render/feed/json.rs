//! JSON Feed 1.1 (https://jsonfeed.org/version/1.1), serialised with serde.

use serde::Serialize;

use super::{Contents, Feed, Format, author, content, file_url};
use crate::config::Config;

#[derive(Serialize)]
struct JsonFeed<'a> {
    version: &'static str,
    title: &'a str,
    home_page_url: String,
    feed_url: String,
    description: String,
    language: &'a str,
    authors: Vec<Author<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    hubs: Vec<Hub>,
    items: Vec<Item<'a>>,
}

#[derive(Serialize)]
struct Author<'a> {
    name: &'a str,
    url: &'a str,
}

#[derive(Serialize)]
struct Hub {
    #[serde(rename = "type")]
    kind: &'static str,
    url: String,
}

#[derive(Serialize)]
struct Item<'a> {
    id: &'a str,
    url: String,
    title: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    summary: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content_html: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content_text: Option<&'a str>,
    date_published: String,
    date_modified: String,
    language: &'a str,
    authors: [Author<'a>; 1],
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tags: Vec<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    image: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    attachments: Vec<Attachment<'a>>,
}

#[derive(Serialize)]
struct Attachment<'a> {
    url: String,
    mime_type: &'a str,
    title: &'a str,
    size_in_bytes: u64,
}

pub fn write(feed: &Feed<'_>, config: &Config, contents: &Contents) -> Vec<u8> {
    let tz = config.site.timezone;
    let rfc3339 = |t: chrono::DateTime<chrono::Utc>| t.with_timezone(&tz).to_rfc3339();
    let organisation = || Author {
        name: author(config),
        url: config.site.base_url.as_str(),
    };
    let json = JsonFeed {
        version: "https://jsonfeed.org/version/1.1",
        title: &feed.title,
        home_page_url: feed.page(config).to_string(),
        feed_url: feed.url(config, Format::Json).to_string(),
        description: feed.title.clone(),
        language: feed.lang.as_str(),
        authors: vec![organisation()],
        hubs: config
            .websub_hubs
            .iter()
            .map(|h| Hub {
                kind: "WebSub",
                url: h.to_string(),
            })
            .collect(),
        items: feed
            .entries
            .iter()
            .map(|r| Item {
                id: &r.id,
                url: config.url(&r.path()).to_string(),
                title: &r.title,
                summary: r.summary(),
                content_html: content(contents, r),
                // Without its text (see `release::Body`), the title: JSON Feed requires one.
                content_text: content(contents, r).is_none().then_some(r.title.as_str()),
                date_published: rfc3339(r.date),
                date_modified: rfc3339(r.last_modified()),
                language: r.lang.as_str(),
                authors: [organisation()],
                tags: r.topics.iter().map(|t| config.topics.name(t)).collect(),
                image: r.image.as_ref().map(|a| file_url(config, r, a)),
                attachments: r
                    .files()
                    .map(|a| Attachment {
                        url: file_url(config, r, a),
                        mime_type: &a.mime,
                        title: &a.name,
                        size_in_bytes: a.len,
                    })
                    .collect(),
            })
            .collect(),
    };
    let mut out = serde_json::to_vec_pretty(&json).unwrap_or_else(|_| b"{}".to_vec());
    out.push(b'\n');
    out
}
