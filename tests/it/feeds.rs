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
    // Sixty releases in the archive of their year nevertheless, 50 a page.
    let lines = |page: &str| {
        std::fs::read_to_string(out.join(page))
            .expect("archive")
            .matches("hreflang=")
            .count()
    };
    assert_eq!(lines("archive/2021/index.html"), 50);
    assert_eq!(lines("archive/2021/page/2/index.html"), 10);
}

/// The organisation the shipped config names as `[site] author`.
pub const ORGANISATION: &str = "Jämställdhetsmyndigheten";

/// A release with all a journalist needs beside its text: a lead image, two attachments
/// and two press contacts, one named with characters HTML must escape. Public from
/// 2020-03-01 09:30 CET; built at `RICH_AT`.
pub fn write_rich_release(p: &Project) {
    p.write(
        "releases/2020-03-01-rapport/index.md",
        release(
            "title = \"Rapport om jämställdhet\"\ndate = 2020-03-01T09:30:00+01:00\ntopics = [\"Jämställdhet\"]\nimage = \"diagram.png\"\nimage_alt = \"Lönegapet 1990–2020 <i procent>\"\nattachments = [\"rapport.pdf\", \"tabeller.xlsx\"]\n\n[[contacts]]\nname = \"Anna Andersson & Co <press>\"\nrole = \"Pressansvarig\"\nphone = \"070-123 45 67\"\nemail = \"press@example.org\"\n\n[[contacts]]\nname = \"Bo Berg\"\nemail = \"bo.berg@example.org\"",
            "Lönegapet har minskat.\n\nLäs [rapporten](rapport.pdf).",
        ),
    );
    p.write(
        "releases/2020-03-01-rapport/rapport.pdf",
        vec![b'%'; 12_345],
    );
    p.write(
        "releases/2020-03-01-rapport/tabeller.xlsx",
        vec![b'P'; 2_500_000],
    );
    p.write("releases/2020-03-01-rapport/diagram.png", vec![0x89; 2_000]);
}

pub const RICH_AT: &str = "2020-03-02T00:00:00Z";

/// An empty project with the rich release alone, built at `RICH_AT`; the build's folder.
pub fn rich_site() -> (Project, PathBuf) {
    let p = Project::empty();
    write_rich_release(&p);
    let out = p.out();
    p.build_at(RICH_AT, &out);
    (p, out)
}
const RICH_PAGE: &str = "http://127.0.0.1:8080/releases/rapport/";

#[test]
fn each_entrys_content_shows_the_lead_image_the_text_the_press_contacts_and_every_file() {
    let (_p, out) = rich_site();
    let all = files(&out);
    for path in ["feed.rss", "feed.atom", "feed.json"] {
        let feed = parse(&all[path]);
        let e = &feed.entries[0];
        let content = e
            .content
            .as_ref()
            .and_then(|c| c.body.clone())
            .unwrap_or_else(|| panic!("{path}: full content"));
        let at = |needle: &str| {
            content
                .find(needle)
                .unwrap_or_else(|| panic!("{path}: no {needle} in\n{content}"))
        };
        // The lead image first, absolute, with its alt text escaped.
        let image = at(&format!(
            "<img src=\"{RICH_PAGE}diagram.png\" alt=\"Lönegapet 1990–2020 &lt;i procent&gt;\">"
        ));
        let text = at("<p>Lönegapet har minskat.</p>");
        // Then the press contacts: a name escaped, the role, a phone to call, an address.
        let contacts = at("<h2>Presskontakt</h2>");
        at(
            "<li>Anna Andersson &amp; Co &lt;press&gt;, Pressansvarig, <a href=\"tel:070-1234567\">070-123 45 67</a>, <a href=\"mailto:press@example.org\">press@example.org</a></li>",
        );
        at("<li>Bo Berg, <a href=\"mailto:bo.berg@example.org\">bo.berg@example.org</a></li>");
        // Then every attachment: its link, its type and its size in a unit people read.
        let documents = at("<h2>Dokument</h2>");
        at(&format!(
            "<a href=\"{RICH_PAGE}rapport.pdf\" type=\"application/pdf\">rapport.pdf</a> (application/pdf, 12 kB)"
        ));
        at(&format!(
            "<a href=\"{RICH_PAGE}tabeller.xlsx\" type=\"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet\">tabeller.xlsx</a> (application/vnd.openxmlformats-officedocument.spreadsheetml.sheet, 2.5 MB)"
        ));
        assert!(
            image < text && text < contacts && contacts < documents,
            "{path}: image, text, contacts, files in that order:\n{content}"
        );
        // The summary stays the plain first paragraph.
        let summary = e.summary.as_ref().map(|s| s.content.as_str());
        assert_eq!(summary, Some("Lönegapet har minskat."), "{path}");
    }
}

#[test]
fn each_entry_names_the_organisation_as_author_and_offers_every_file() {
    let (_p, out) = rich_site();
    let all = files(&out);
    for path in ["feed.rss", "feed.atom", "feed.json"] {
        let feed = parse(&all[path]);
        let authors: Vec<&str> = feed.entries[0]
            .authors
            .iter()
            .map(|a| a.name.as_deref().unwrap_or_default())
            .collect();
        assert_eq!(authors, [ORGANISATION], "{path}: the entry's own author");
    }
    let files_of = |names: &[&str]| -> Vec<String> {
        names.iter().map(|n| format!("{RICH_PAGE}{n}")).collect()
    };
    let every = files_of(&["diagram.png", "rapport.pdf", "tabeller.xlsx"]);

    // RSS: the organisation as dc:creator (<author> must be an address), one enclosure
    // (the image), and a Media RSS media:content for every file.
    let rss = text(&all, "feed.rss");
    assert!(
        rss.contains(&format!("<dc:creator>{ORGANISATION}</dc:creator>"))
            && !rss.contains("<author>"),
        "{rss}"
    );
    assert_eq!(rss.matches("<enclosure ").count(), 1, "{rss}");
    assert!(
        rss.contains(&format!(
            "<enclosure url=\"{RICH_PAGE}diagram.png\" length=\"2000\" type=\"image/png\"/>"
        )),
        "{rss}"
    );
    assert_eq!(
        rss.matches("xmlns:media=\"http://search.yahoo.com/mrss/\"")
            .count(),
        1,
        "the namespace declared once"
    );
    for (name, size, medium, mime) in [
        ("diagram.png", 2_000, "image", "image/png"),
        ("rapport.pdf", 12_345, "document", "application/pdf"),
        (
            "tabeller.xlsx",
            2_500_000,
            "document",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        ),
    ] {
        let media = format!(
            "<media:content fileSize=\"{size}\" medium=\"{medium}\" type=\"{mime}\" url=\"{RICH_PAGE}{name}\">"
        );
        assert!(rss.contains(&media), "{media} in {rss}");
    }
    let rss = parse(&all["feed.rss"]);
    let mut offered: Vec<String> = rss.entries[0]
        .media
        .iter()
        .flat_map(|m| &m.content)
        .filter_map(|c| c.url.as_ref().map(|u| u.to_string()))
        .collect();
    offered.sort();
    offered.dedup();
    assert_eq!(offered, every, "a reader of the RSS feed sees every file");

    // Atom: an enclosure link per file, with type and length.
    let atom = parse(&all["feed.atom"]);
    let enclosures: Vec<(String, Option<u64>)> = atom.entries[0]
        .links
        .iter()
        .filter(|l| l.rel.as_deref() == Some("enclosure"))
        .map(|l| (l.href.clone(), l.length))
        .collect();
    assert_eq!(
        enclosures,
        every
            .iter()
            .cloned()
            .zip([Some(2_000), Some(12_345), Some(2_500_000)])
            .collect::<Vec<_>>()
    );

    // JSON Feed: an attachment per file, and the authors of the item.
    let json: serde_json::Value = serde_json::from_slice(&all["feed.json"]).expect("json");
    let item = &json["items"][0];
    assert_eq!(
        item["authors"],
        serde_json::json!([{ "name": ORGANISATION, "url": "http://127.0.0.1:8080/" }])
    );
    let attachments: Vec<(&str, u64)> = item["attachments"]
        .as_array()
        .expect("attachments")
        .iter()
        .map(|a| {
            (
                a["url"].as_str().unwrap_or_default(),
                a["size_in_bytes"].as_u64().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        attachments,
        [
            (every[0].as_str(), 2_000),
            (every[1].as_str(), 12_345),
            (every[2].as_str(), 2_500_000)
        ]
    );
}
