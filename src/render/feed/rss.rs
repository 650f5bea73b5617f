//! RSS 2.0 with the `rss` crate: `content:encoded` for the full HTML, a non-permalink
//! guid, RFC 822 dates in the site's zone (so the weekday is the local one), an
//! `atom:link` self link and, when configured, hub links.

use rss::extension::atom::{AtomExtension, Link};
use rss::{Category, Channel, Enclosure, Guid, Item};

use super::{Feed, Format, enclosure, file_url};
use crate::config::Config;

fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    // Writing into a String cannot fail.
    let _ = pulldown_cmark_escape::escape_html(&mut out, text);
    out
}

pub fn write(feed: &Feed<'_>, config: &Config) -> Vec<u8> {
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
    let items = feed
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
            content: r.body_html().map(str::to_string),
            ..Item::default()
        })
        .collect();
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
        items,
        ..Channel::default()
    };
    channel.to_string().into_bytes()
}
