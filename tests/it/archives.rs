//! The front page and the paged archives: topic, language and year archives list 50
//! releases a page, newest first, page 1 at the archive's own URL and page n at
//! `page/n/` under it, linked by `rel=prev/next` and visible page links. A lift moves each
//! page's oldest release onto the next page; a page no longer needed is removed.

use super::*;

/// A real 16×9 PNG, so a browser draws the thumbnail.
pub const PNG: &[u8] = b"\x89\x50\x4e\x47\x0d\x0a\x1a\x0a\x00\x00\x00\x0d\x49\x48\x44\x52\x00\x00\x00\x10\x00\x00\x00\x09\x08\x02\x00\x00\x00\xb4\x48\x3b\x65\x00\x00\x00\x14\x49\x44\x41\x54\x78\xda\x63\xd0\x88\x5a\x40\x12\x62\x18\xd5\x30\x28\x34\x00\x00\x47\x7d\xa3\x21\x44\x61\xb6\xb9\x00\x00\x00\x00\x49\x45\x4e\x44\xae\x42\x60\x82";

/// How many releases `many_in_one_topic` writes: with the sample, one more than a page.
pub const MANY: usize = 50;

/// The title of the `i`th generated release (0 the oldest).
pub fn nyhet(i: usize) -> String {
    format!("Nyhet {i:02} om människohandel")
}

/// Writes `MANY` releases in the sample's topic Människohandel, from 1 November 2018 08:00
/// (`Nyhet 00`) to 25 November 10:00 (`Nyhet 49`), each with a lead; `Nyhet 48` has an
/// image. With the sample (18 October, in the same topic) each archive of 2018 holds 51.
pub fn many_in_one_topic(p: &Project) {
    for i in 0..MANY {
        let day = 1 + i / 2;
        let hour = 8 + (i % 2) * 2;
        let front = format!(
            "title = \"{}\"\ndate = 2018-11-{day:02}T{hour:02}:00:00+01:00\nlang = \"sv\"\ntopics = [\"Människohandel\"]",
            nyhet(i)
        );
        let body = format!("Ingressen till nyhet {i:02} berättar vad som hänt.\n\nMer text.");
        if i == 48 {
            p.write(
                &format!("releases/2018-11-{day:02}-nyhet-{i:02}/index.md"),
                release(
                    &format!("{front}\nimage = \"bild.png\"\nimage_alt = \"Ett blått fält\""),
                    &body,
                ),
            );
            p.write(
                &format!("releases/2018-11-{day:02}-nyhet-{i:02}/bild.png"),
                PNG,
            );
        } else {
            p.write(
                &format!("releases/2018-11-{day:02}-nyhet-{i:02}.md"),
                release(&front, &body),
            );
        }
    }
}

const LATER: &str = "Kommande nyhet om människohandel";

/// Where `needle` is in `page`, which must hold it.
fn at(page: &str, needle: &str) -> usize {
    page.find(needle)
        .unwrap_or_else(|| panic!("{needle:?} is not on the page:\n{page}"))
}

#[test]
fn a_lift_moves_each_archive_page_s_oldest_release_onto_the_next_and_nothing_embargoed_is_on_any_page()
 {
    let p = Project::sample();
    many_in_one_topic(&p);
    p.write(
        "releases/2018-12-01-kommande.md",
        release(
            &format!("title = \"{LATER}\"\ndate = 2018-12-01T08:00:00+01:00\ntopics = [\"Människohandel\"]"),
            "Ingressen till den kommande nyheten.",
        ),
    );
    let out = p.out();
    let archives = ["topics/manniskohandel/", "lang/sv/", "archive/2018/"];
    let base = "http://127.0.0.1:8080/";

    // A minute before the lift: 51 releases, page 2 holds the sample alone.
    p.build_at("2018-12-01T07:59:00+01:00", &out);
    let site = files(&out);
    for (path, bytes) in &site {
        let text = String::from_utf8_lossy(bytes);
        assert!(
            !text.contains(LATER) && !text.contains("kommande"),
            "{path} names the embargoed release before its lift"
        );
    }
    for dir in archives {
        let one = text(&site, &format!("{dir}index.html"));
        let two = text(&site, &format!("{dir}page/2/index.html"));
        assert!(
            one.contains(&nyhet(0)) && one.contains(&nyhet(MANY - 1)),
            "{one}"
        );
        assert!(!one.contains(SAMPLE_TITLE), "{one}");
        assert!(
            two.contains(SAMPLE_TITLE) && !two.contains(&nyhet(0)),
            "{two}"
        );
        assert!(
            one.contains(&format!("<link rel=\"next\" href=\"{base}{dir}page/2/\">")),
            "{one}"
        );
        assert!(!one.contains("rel=\"prev\""), "{one}");
        assert!(
            two.contains(&format!("<link rel=\"prev\" href=\"{base}{dir}\">")),
            "{two}"
        );
        assert!(!two.contains("rel=\"next\""), "{two}");
        assert!(
            two.contains(&format!(
                "<a href=\"{base}{dir}page/2/\" aria-current=\"page\""
            )),
            "{two}"
        );
        assert!(two.contains("Sida 2 av 2"), "{two}");
        assert!(
            !site.contains_key(&format!("{dir}page/3/index.html")),
            "a third page of {dir}"
        );
        let sitemap = text(&site, "sitemap.xml");
        assert!(
            sitemap.contains(&format!("<loc>{base}{dir}page/2/</loc>")),
            "{sitemap}"
        );
    }

    // At the lift the new release heads page 1, and page 1's oldest moves to page 2,
    // above the sample.
    p.build_at("2018-12-01T08:00:00+01:00", &out);
    let site = files(&out);
    for dir in archives {
        let one = text(&site, &format!("{dir}index.html"));
        let two = text(&site, &format!("{dir}page/2/index.html"));
        assert!(at(&one, LATER) < at(&one, &nyhet(MANY - 1)), "{one}");
        assert!(!one.contains(&nyhet(0)), "{one}");
        assert!(at(&two, &nyhet(0)) < at(&two, SAMPLE_TITLE), "{two}");
    }
    let front = text(&site, "index.html");
    assert!(at(&front, LATER) < at(&front, &nyhet(MANY - 1)), "{front}");

    // Two releases fewer: 50 fit on one page, and page 2 is gone from disk and sitemap.
    std::fs::remove_file(p.path().join("releases/2018-12-01-kommande.md")).expect("remove");
    std::fs::remove_file(p.path().join("releases/2018-11-01-nyhet-00.md")).expect("remove");
    p.build_at("2018-12-02T08:00:00+01:00", &out);
    let site = files(&out);
    let sitemap = text(&site, "sitemap.xml");
    for dir in archives {
        assert!(
            !out.join(dir).join("page/2/index.html").exists(),
            "{dir}page/2/ stays on disk"
        );
        assert!(!sitemap.contains(&format!("{dir}page/")), "{sitemap}");
        let one = text(&site, &format!("{dir}index.html"));
        assert!(
            one.contains(SAMPLE_TITLE) && !one.contains("rel=\"next\""),
            "{one}"
        );
    }
}

#[test]
fn the_front_page_shows_leads_a_thumbnail_contacts_and_ways_in_and_is_valid_html() {
    let p = Project::sample();
    many_in_one_topic(&p);
    let out = p.out();
    p.build_at("2018-12-01T08:00:00+01:00", &out);
    let site = files(&out);
    let front = text(&site, "index.html");
    // The ten newest, each with its lead; the eleventh is in the archives only.
    for i in MANY - 10..MANY {
        assert!(front.contains(&nyhet(i)), "{front}");
        assert!(
            front.contains(&format!(
                "Ingressen till nyhet {i:02} berättar vad som hänt."
            )),
            "{front}"
        );
    }
    assert!(!front.contains(&nyhet(MANY - 11)), "{front}");
    assert!(!front.contains(SAMPLE_TITLE), "{front}");
    // Nyhet 48's image as a thumbnail that reserves its box and loads late.
    assert!(
        front.contains("<img class=\"thumb\" src=\"http://127.0.0.1:8080/releases/nyhet-48/bild.png\" alt=\"\" width=\"160\" height=\"90\" loading=\"lazy\">"),
        "{front}"
    );
    // The press office's contact from the config, ways in, subscribing and search.
    for needle in [
        "Presskontakt",
        "Simon Falk, Pressansvarig",
        "href=\"tel:070-7847497\"",
        "href=\"mailto:press@jamy.se\"",
        "<a href=\"http://127.0.0.1:8080/topics/manniskohandel/\">Människohandel</a>",
        "<a href=\"http://127.0.0.1:8080/lang/sv/\">svenska</a>",
        "<a href=\"http://127.0.0.1:8080/archive/2018/\">2018</a>",
        "<h2 id=\"subscribe\">Prenumerera</h2>",
        "<a href=\"http://127.0.0.1:8080/feed.rss\" type=\"application/rss+xml\">RSS</a>",
        "<a href=\"http://127.0.0.1:8080/feed.atom\" type=\"application/atom+xml\">Atom</a>",
        "role=\"search\" action=\"http://127.0.0.1:8080/search\" method=\"get\">",
        "name=\"q\"",
    ] {
        assert!(
            front.contains(needle),
            "{needle} is not on the front page:\n{front}"
        );
    }
    super::html::assert_valid_html(&[
        out.join("index.html"),
        out.join("topics/manniskohandel/index.html"),
        out.join("topics/manniskohandel/page/2/index.html"),
        out.join("archive/2018/page/2/index.html"),
    ]);
}
