//! RSS 2.0 with the `rss` crate: `content:encoded` for the full HTML, a non-permalink
//! guid, RFC 822 dates in the site's zone (so the weekday is the local one), an
//! `atom:link` self link and, when configured, hub links; the organisation as each item's
//! `dc:creator`; one `<enclosure>` (RSS allows one) and a Media RSS `media:content` for
//! every file.

use std::collections::BTreeMap;

use rss::extension::atom::{AtomExtension, Link};
use rss::extension::dublincore::DublinCoreExtension;
use rss::extension::{Extension, ExtensionMap};
use rss::{Category, Channel, Enclosure, Guid, Item};

use super::{Contents, Feed, Format, author, content, enclosure, file_url};
use crate::config::Config;
use crate::release::{Attachment, Release};

/// Media RSS (https://www.rssboard.org/media-rss), which the W3C Feed Validation Service
/// and feed readers know under this prefix.
const MEDIA_NS: &str = "http://search.yahoo.com/mrss/";

fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    // Writing into a String cannot fail.
    let _ = pulldown_cmark_escape::escape_html(&mut out, text);
    out
}

pub fn write(feed: &Feed<'_>, config: &Config, contents: &Contents) -> Vec<u8> {
    let tz = config.site.timezone;
    let rfc822 = |t: chrono::DateTime<chrono::Utc>| t.with_timezone(&tz).to_rfc2822();
    let mut links = vec![Link {
        href: feed.url(config, Format::Rss).to_string(),
        rel: "self".into(),
        mime_type: Some(Format::Rss.media_type().into()),
        ..Link::default()
    }];
    links.extend(config.websub_hubs.iter().map(|hub| Link {
        href: hub.to_string(),
        rel: "hub".into(),
        ..Link::default()
    }));
    let creator = author(config).to_string();
    let items: Vec<Item> = feed
        .entries
        .iter()
        .map(|r| Item {
            title: Some(r.title.clone()),
            link: Some(config.url(&r.path()).to_string()),
            // Readers treat an RSS description as HTML: the plain-text summary is escaped.
            description: r.summary().map(escape_html),
            guid: Some(Guid {
                value: r.id.clone(),
                permalink: false,
            }),
            pub_date: Some(rfc822(r.date)),
            categories: r
                .topics
                .iter()
                .map(|t| Category {
                    name: config.topics.name(t).into(),
                    domain: None,
                })
                .collect(),
            enclosure: enclosure(r).map(|a| Enclosure {
                url: file_url(config, r, a),
                length: a.len.to_string(),
                mime_type: a.mime.clone(),
            }),
            content: content(contents, r).map(str::to_string),
            // `<author>` must be an email address; the organisation is a name.
            dublin_core_ext: Some(DublinCoreExtension {
                creators: vec![creator.clone()],
                ..DublinCoreExtension::default()
            }),
            extensions: media(config, r),
            ..Item::default()
        })
        .collect();
    // Declared once, on the root, and only when an item uses it.
    let namespaces = if items.iter().any(|i| !i.extensions.is_empty()) {
        BTreeMap::from([("media".to_string(), MEDIA_NS.to_string())])
    } else {
        BTreeMap::new()
    };
    let channel = Channel {
        title: feed.title.clone(),
        link: feed.page(config).to_string(),
        description: feed.title.clone(),
        language: Some(feed.lang.to_string()),
        pub_date: feed.entries.first().map(|r| rfc822(r.date)),
        last_build_date: Some(rfc822(feed.updated)),
        generator: Some("pressroom".into()),
        docs: Some("https://www.rssboard.org/rss-specification".into()),
        atom_ext: Some(AtomExtension { links }),
        namespaces,
        items,
        ..Channel::default()
    };
    channel.to_string().into_bytes()
}

/// A `media:content` for each file of the release, the image first: RSS's one enclosure
/// cannot offer the rest.
fn media(config: &Config, release: &Release) -> ExtensionMap {
    let contents: Vec<Extension> = release
        .files()
        .map(|a| Extension {
            name: "media:content".into(),
            attrs: media_attributes(config, release, a),
            ..Extension::default()
        })
        .collect();
    if contents.is_empty() {
        return ExtensionMap::new();
    }
    BTreeMap::from([(
        "media".to_string(),
        BTreeMap::from([("content".to_string(), contents)]),
    )])
}

fn media_attributes(
    config: &Config,
    release: &Release,
    file: &Attachment,
) -> BTreeMap<String, String> {
    let mut attrs = BTreeMap::from([
        ("url".to_string(), file_url(config, release, file)),
        ("type".to_string(), file.mime.clone()),
        ("medium".to_string(), medium(&file.mime).to_string()),
    ]);
    // Media RSS's fileSize is a positive integer: an empty file goes without one.
    if file.len > 0 {
        attrs.insert("fileSize".to_string(), file.len.to_string());
    }
    attrs
}

/// Media RSS's `medium` for a media type: image, audio and video as they are; anything
/// else a press office publishes (PDF, office documents, archives) is a document.
fn medium(mime: &str) -> &'static str {
    match mime.split('/').next() {
        Some("image") => "image",
        Some("audio") => "audio",
        Some("video") => "video",
        _ => "document",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::planner::tests::release;

    #[test]
    fn every_file_is_media_content_with_its_medium_and_an_empty_one_has_no_file_size() {
        let config = Config::defaults(std::path::Path::new("/srv"));
        let mut r = release("rapport", "2020-03-01T00:00:00Z");
        let file = |name: &str, len: u64, mime: &str| Attachment {
            name: name.into(),
            path: name.into(),
            len,
            mime: mime.into(),
        };
        r.image = Some(file("bild.png", 2_000, "image/png"));
        r.attachments = vec![
            file("rapport.pdf", 12_345, "application/pdf"),
            file("tom.txt", 0, "text/plain"),
            file("intervju.mp3", 9, "audio/mpeg"),
        ];
        let media = media(&config, &r);
        let shown: Vec<(&str, Option<&str>, &str)> = media["media"]["content"]
            .iter()
            .map(|m| {
                (
                    m.attrs["url"].rsplit('/').next().unwrap_or_default(),
                    m.attrs.get("fileSize").map(String::as_str),
                    m.attrs["medium"].as_str(),
                )
            })
            .collect();
        assert_eq!(
            shown,
            [
                ("bild.png", Some("2000"), "image"),
                ("rapport.pdf", Some("12345"), "document"),
                // Media RSS's fileSize is a positive integer.
                ("tom.txt", None, "document"),
                ("intervju.mp3", Some("9"), "audio"),
            ]
        );
        assert!(super::media(&config, &release("utan", "2020-03-01T00:00:00Z")).is_empty());
    }
}
