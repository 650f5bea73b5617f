//! The feeds as a feed reader sees them: parsed by feed-rs, a third-party parser.

use feed_rs::model::{Feed, FeedType};

use super::*;

fn parse(bytes: &[u8]) -> Feed {
    feed_rs::parser::parse(bytes).expect("a feed reader can parse it")
}

#[test]
fn a_feed_reader_reads_the_sample_in_all_three_formats() {
    let p = Project::sample();
    let out = p.out();
    p.build_at("2018-10-20T12:00:00+02:00", &out);
    let all = files(&out);
    for (path, kind) in [
        ("feed.rss", FeedType::RSS2),
        ("feed.atom", FeedType::Atom),
        ("feed.json", FeedType::JSON),
    ] {
        let feed = parse(&all[path]);
        assert_eq!(feed.feed_type, kind, "{path}");
        assert_eq!(feed.language.as_deref(), Some("sv"), "{path}");
        assert_eq!(feed.entries.len(), 1, "{path}");
        let e = &feed.entries[0];
        assert_eq!(
            e.id, "tag:127.0.0.1,2018-10-18:du-avgor",
            "{path}: a stable id"
        );
        assert_eq!(
            e.title.as_ref().map(|t| t.content.as_str()),
            Some(SAMPLE_TITLE),
            "{path}"
        );
        assert_eq!(
            e.links[0].href, "http://127.0.0.1:8080/releases/du-avgor/",
            "{path}"
        );
        let published = e.published.expect("published").to_rfc3339();
        assert_eq!(published, "2018-10-17T22:00:00+00:00", "{path}");
        let content = e
            .content
            .as_ref()
            .and_then(|c| c.body.clone())
            .expect("full content");
        assert!(
            content.contains("<h2>Bakgrund</h2>"),
            "{path}: full HTML content"
        );
        assert!(content.contains(SAMPLE_SENTENCES[3]), "{path}");
        let summary = e
            .summary
            .as_ref()
            .map(|s| s.content.clone())
            .expect("a summary");
        assert!(
            summary.starts_with("Utan efterfrågan ingen prostitution."),
            "{path}: {summary}"
        );
        if kind != FeedType::RSS2 {
            assert_eq!(
                e.updated.expect("updated").to_rfc3339(),
                published,
                "{path}: never edited"
            );
        }
        // Readers show the names as the office writes them; Atom's term is the slug.
        let names: Vec<_> = e
            .categories
            .iter()
            .map(|c| c.label.as_deref().unwrap_or(&c.term))
            .collect();
        assert_eq!(
            names,
            ["Prostitution", "Människohandel", "Jämställdhet"],
            "{path}"
        );
        if kind == FeedType::Atom {
            let terms: Vec<_> = e.categories.iter().map(|c| c.term.as_str()).collect();
            assert_eq!(
                terms,
                ["prostitution", "manniskohandel", "jamstalldhet"],
                "{path}"
            );
        }
    }
}

#[test]
fn feeds_link_to_themselves_with_the_served_url() {
    let p = Project::sample();
    let out = p.out();
    p.build_at("2018-10-20T12:00:00+02:00", &out);
    let all = files(&out);
    for path in [
        "feed.rss",
        "feed.atom",
        "topics/prostitution/feed.atom",
        "lang/sv/feed.rss",
    ] {
        let feed = parse(&all[path]);
        let own = format!("http://127.0.0.1:8080/{path}");
        assert!(
            feed.links
                .iter()
                .any(|l| l.href == own && l.rel.as_deref() == Some("self")),
            "{path} has no self link {own}: {:?}",
            feed.links
        );
    }
    let rss = text(&all, "feed.rss");
    assert!(
        rss.contains("<guid isPermaLink=\"false\">tag:127.0.0.1,2018-10-18:du-avgor</guid>"),
        "{rss}"
    );
    assert!(
        rss.contains("<pubDate>Thu, 18 Oct 2018 00:00:00 +0200</pubDate>"),
        "RFC 822 with the local weekday"
    );
    let json: serde_json::Value = serde_json::from_slice(&all["feed.json"]).expect("json");
    assert_eq!(json["version"], "https://jsonfeed.org/version/1.1");
    assert_eq!(json["feed_url"], "http://127.0.0.1:8080/feed.json");
}

#[test]
fn attachments_are_published_and_the_image_is_the_enclosure() {
    let p = Project::empty();
    p.write(
        "releases/2020-03-01-rapport/index.md",
        release(
            "title = \"Rapport\"\ndate = 2020-03-01\nimage = \"bild.png\"\nimage_alt = \"Ett diagram\"\nattachments = [\"rapport.pdf\"]",
            "Läs [rapporten](rapport.pdf).\n\n![diagram](bild.png)",
        ),
    );
    p.write(
        "releases/2020-03-01-rapport/rapport.pdf",
        vec![b'%'; 12_345],
    );
    p.write("releases/2020-03-01-rapport/bild.png", vec![0x89; 2_000]);
    p.write(
        "releases/2020-03-01-rapport/notes.txt",
        "not listed, not published",
    );
    let out = p.out();
    p.build_at("2020-03-02T00:00:00Z", &out);
    let all = files(&out);
    assert_eq!(all["releases/rapport/rapport.pdf"].len(), 12_345);
    assert_eq!(all["releases/rapport/bild.png"].len(), 2_000);
    assert!(
        !all.contains_key("releases/rapport/notes.txt"),
        "unlisted files stay private"
    );

    let rss = parse(&all["feed.rss"]);
    let media = &rss.entries[0].media[0].content[0];
    assert_eq!(
        media.url.as_ref().map(|u| u.as_str()),
        Some("http://127.0.0.1:8080/releases/rapport/bild.png")
    );
    assert_eq!(media.size, Some(2_000));
    assert_eq!(
        media.content_type.as_ref().map(|m| m.to_string()),
        Some("image/png".into())
    );
    let atom = text(&all, "feed.atom");
    assert!(
        atom.contains("rel=\"enclosure\" type=\"application/pdf\"")
            && atom.contains("length=\"12345\""),
        "{atom}"
    );
    let content = rss.entries[0]
        .content
        .as_ref()
        .and_then(|c| c.body.clone())
        .expect("content");
    assert!(
        content.contains("href=\"http://127.0.0.1:8080/releases/rapport/rapport.pdf\""),
        "links made absolute: {content}"
    );
    assert!(
        content.contains("src=\"http://127.0.0.1:8080/releases/rapport/bild.png\""),
        "{content}"
    );
}

#[test]
fn feeds_hold_the_newest_feed_items_entries() {
    let p = Project::empty();
    for day in 1..=60 {
        p.write(
            &format!("releases/2021-01-{:02}-nr-{day}.md", (day - 1) % 28 + 1),
            release(&format!("title = \"Nummer {day}\"\ndate = 2021-01-01T00:00:00Z\nslug = \"nr-{day}\"\nupdated = 2021-02-{:02}T00:00:00Z", (day - 1) % 28 + 1), "Text."),
        );
    }
    let out = p.out();
    p.build_at("2021-06-01T00:00:00Z", &out);
    let feed = parse(&std::fs::read(out.join("feed.atom")).expect("atom"));
    assert_eq!(feed.entries.len(), 50);
    // Sixty releases in the index of their year nevertheless.
    let archive = std::fs::read_to_string(out.join("archive/2021/index.html")).expect("archive");
    assert_eq!(archive.matches("<li>").count(), 60);
}
