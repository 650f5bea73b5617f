//! Atom 1.0 with `atom_syndication`: `xml:lang` on the feed and on each entry's text,
//! `published` at the embargo lift and `updated` moved only by a correction, the summary
//! before the full HTML content, the organisation as each entry's author, and one
//! `enclosure` link per published file.

use atom_syndication::{
    Category, Content, Entry, Feed as AtomFeed, FixedDateTime, Generator, Link, Person, Text,
};

use super::{Contents, Feed, Format, author, content, file_url};
use crate::config::Config;

pub fn write(feed: &Feed<'_>, config: &Config, contents: &Contents) -> Vec<u8> {
    let tz = config.site.timezone;
    let fixed =
        |t: chrono::DateTime<chrono::Utc>| -> FixedDateTime { t.with_timezone(&tz).fixed_offset() };
    let mut links = vec![
        Link {
            href: feed.url(config, Format::Atom).to_string(),
            rel: "self".into(),
            mime_type: Some(Format::Atom.media_type().into()),
            ..Link::default()
        },
        Link {
            href: feed.page(config).to_string(),
            rel: "alternate".into(),
            mime_type: Some("text/html".into()),
            ..Link::default()
        },
    ];
    links.extend(config.websub_hubs.iter().map(|hub| Link {
        href: hub.to_string(),
        rel: "hub".into(),
        ..Link::default()
    }));
    let organisation = Person {
        name: author(config).to_string(),
        uri: Some(config.site.base_url.to_string()),
        ..Person::default()
    };
    let entries = feed
        .entries
        .iter()
        .map(|r| {
            let lang = Some(r.lang.to_string());
            let mut links = vec![Link {
                href: config.url(&r.path()).to_string(),
                rel: "alternate".into(),
                mime_type: Some("text/html".into()),
                hreflang: lang.clone(),
                ..Link::default()
            }];
            links.extend(r.files().map(|a| Link {
                href: file_url(config, r, a),
                rel: "enclosure".into(),
                mime_type: Some(a.mime.clone()),
                length: Some(a.len.to_string()),
                title: Some(a.name.clone()),
                ..Link::default()
            }));
            Entry {
                title: Text {
                    lang: lang.clone(),
                    ..Text::plain(r.title.clone())
                },
                id: r.id.clone(),
                updated: fixed(r.last_modified()),
                published: Some(fixed(r.date)),
                links,
                categories: r
                    .topics
                    .iter()
                    .map(|t| Category {
                        // The slug is the stable term, the name what a reader shows.
                        term: t.slug().into(),
                        scheme: Some(config.url("topics/").to_string()),
                        label: Some(config.topics.name(t).into()),
                    })
                    .collect(),
                summary: r.summary().map(|summary| Text {
                    lang: lang.clone(),
                    ..Text::plain(summary)
                }),
                // Each entry names its author, so an entry read on its own (copied out of
                // the feed, or shown by a reader that ignores the feed's) still has one.
                authors: vec![organisation.clone()],
                content: content(contents, r).map(|html| Content {
                    lang,
                    value: Some(html.to_string()),
                    content_type: Some("html".into()),
                    ..Content::default()
                }),
                ..Entry::default()
            }
        })
        .collect();
    let atom = AtomFeed {
        title: Text::plain(feed.title.clone()),
        id: feed.url(config, Format::Atom).to_string(),
        updated: fixed(feed.updated),
        authors: vec![organisation],
        generator: Some(Generator {
            value: "pressroom".into(),
            ..Generator::default()
        }),
        links,
        lang: Some(feed.lang.to_string()),
        entries,
        ..AtomFeed::default()
    };
    atom.to_string().into_bytes()
}
