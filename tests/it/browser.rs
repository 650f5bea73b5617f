//! The newsroom as a journalist's browser shows it: the real daemon serves the sample, and
//! headless Chromium (Debian's, driven over WebDriver by Python Selenium,
//! `tests/browser/check.py`) loads its pages at a desktop width and a phone's, with axe-core
//! injected. And the share cards a chat or social site would build from a release page,
//! read back by an independent parser (Python `extruct`, `tests/browser/share.py`).
//! `.ci/install-test-tools.sh` installs every tool; a missing one fails the test.

use std::process::Command;
use std::time::Duration;

use super::daemon::{Daemon, client, get, sample_served, wait_for};
use super::*;

/// The sample's topic as its page shows it.
const TOPIC_SLUG: &str = "manniskohandel";
const TOPIC_NAME: &str = "Människohandel";
/// The site's title in the shipped config.
const SITE_TITLE: &str = "Jämställdhetsmyndigheten – Pressrum";

/// Runs a Python script of `tests/browser/` with `args`; panics with its output if it fails.
fn python(script: &str, args: &[&str]) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/browser")
        .join(script);
    let o = Command::new("python3")
        .arg(&path)
        .args(args)
        .output()
        .expect("python3 runs (.ci/install-test-tools.sh)");
    let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "{script} fails (exit {:?}):\n{stdout}{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stderr)
    );
    stdout
}

#[test]
fn every_kind_of_page_reads_well_at_a_desk_and_on_a_phone() {
    let (p, _port) = sample_served();
    // A release with a time, a title of long Swedish compounds, a long bare address and a
    // wide table: what overflows a phone's screen if anything does.
    let long = "https://www.example.org/rapporter/2018/jamstalldhetsintegreringsuppdragsredovisningen-for-myndighetssamverkansprogrammet.pdf";
    p.write(
        "releases/2018-10-19-redovisning.md",
        release(
            "title = \"Jämställdhetsintegreringsuppdragsredovisningen för myndighetssamverkansprogrammet\"\ndate = 2018-10-19T08:00:00+02:00",
            &format!(
                "Redovisningen finns på <{long}>.\n\n| Län | Kvinnor | Män | Totalt | Andel kvinnor | Andel män | Förändring |\n|---|---|---|---|---|---|---|\n| Västra Götalands län | 123 456 | 123 456 | 246 912 | 50,0 procent | 50,0 procent | oförändrad |\n"
            ),
        ),
    );
    let d = Daemon::start(&p);
    let http = client();
    wait_for("the site", Duration::from_secs(20), || {
        get(&http, &d.base, "/releases/du-avgor/").0 == 200
    });
    // Anna's unsubscribe link (its path), made with the key the daemon made at start.
    let unsubscribe = super::unsubscribe::link_of(&p, "", "anna.lind@example.org");
    let spec = serde_json::json!({
        "base": d.base,
        "widths": [1280, 390],
        "pages": [
            {
                "path": "/",
                "texts": [SAMPLE_TITLE, "18 oktober 2018", "Till innehållet"],
                "absent": ["00:00", "CEST"],
                "title": SITE_TITLE,
            },
            {
                "path": "/releases/du-avgor/",
                "texts": [SAMPLE_TITLE, "Publicerad 18 oktober 2018", "svenska", "Presskontakt",
                          "Petra Tammert Seidefors", SAMPLE_SENTENCES[0], "Jämställdhetsmyndigheten"],
                "absent": ["00:00", "CEST", "Språk: sv\n"],
                "title": format!("{SAMPLE_TITLE} – {SITE_TITLE}"),
            },
            {
                "path": "/releases/redovisning/",
                "texts": ["Publicerad 19 oktober 2018 kl. 08.00", "Västra Götalands län"],
            },
            {
                "path": format!("/topics/{TOPIC_SLUG}/"),
                "texts": [TOPIC_NAME, SAMPLE_TITLE, "18 oktober 2018"],
                "title": format!("{TOPIC_NAME} – {SITE_TITLE}"),
            },
            // The unsubscribe link's page, the page after its button, and after the undo.
            {
                "path": unsubscribe,
                "name": "unsubscribe",
                "lang": "sv",
                "texts": ["Avsluta prenumerationen", "a…\u{2060}@example.org", "Till pressrummet"],
                "absent": ["anna.lind"],
                "title": format!("Avsluta prenumerationen – {SITE_TITLE}"),
                "steps": [
                    {"click": "main form button", "texts": ["Prenumerationen är avslutad", "Ångra"]},
                    {"click": "main form button", "texts": ["Du får pressmeddelanden igen", "Till pressrummet"]},
                ],
            },
            {
                "path": "/unsubscribe/ogiltig",
                "status": 400,
                "lang": "sv",
                "texts": ["Länken fungerar inte", "Till pressrummet"],
            },
            // A search (found by a word written without å, ä, ö) and a miss.
            {
                "path": "/search?q=manniskohandel",
                "lang": "sv",
                "texts": ["Sökresultat", SAMPLE_TITLE, "18 oktober 2018"],
                "absent": ["00:00"],
            },
            {
                "path": "/finns/inte/",
                "status": 404,
                "lang": "sv",
                "texts": ["Sidan finns inte", "Sök"],
            },
        ],
    });
    let file = p.path().join("browser.json");
    std::fs::write(&file, spec.to_string()).expect("write the spec");
    let said = python("check.py", &[file.to_str().expect("utf-8 path")]);
    // Ten pages (the unsubscribe link's three among them) at two widths, each checked.
    assert_eq!(said.matches("checked ").count(), 20, "{said}");
}

/// A title no page may let out of its `<script>` element.
const HOSTILE_TITLE: &str = "Ny rapport: </script><script>alert(1)</script> & <!-- mer";

#[test]
fn share_cards_and_a_news_article_are_on_the_page_after_the_lift_and_nowhere_before() {
    let p = Project::sample();
    let front = format!(
        "title = {HOSTILE_TITLE:?}\ndate = 2018-11-05T08:00:00+01:00\nsummary = \"Rapporten visar löneskillnader.\"\nimage = \"bild.png\"\nimage_alt = \"Diagram över löner\"\ntopics = [\"jamstalldhet\"]\n[[contacts]]\nname = \"Simon Falk\"\nemail = \"press@example.org\""
    );
    p.write(
        "releases/2018-11-05-rapport/index.md",
        release(&front, "Rapporten visar löneskillnader.\n\nMer text."),
    );
    p.write(
        "releases/2018-11-05-rapport/bild.png",
        b"\x89PNG\r\n\x1a\n not really an image",
    );
    let page = "releases/rapport/index.html";

    // A minute before the lift: no page, and none of its share data anywhere.
    let before = p.path().join("before");
    p.build_at("2018-11-05T07:59:00+01:00", &before);
    let site = files(&before);
    assert!(!site.contains_key(page), "the page exists before the lift");
    for (path, bytes) in &site {
        let text = String::from_utf8_lossy(bytes);
        for needle in [
            "rapport/",
            "bild.png",
            "Diagram över löner",
            "löneskillnader",
        ] {
            assert!(
                !text.contains(needle),
                "{path} names {needle:?} before the lift"
            );
        }
    }

    let after = p.path().join("after");
    p.build_at("2018-11-05T08:00:00+01:00", &after);
    let html = std::fs::read_to_string(after.join(page)).expect("the page after the lift");
    assert!(
        !html.contains("<script>alert"),
        "the title reached the page as markup"
    );
    let url = "http://127.0.0.1:8080/releases/rapport/";
    let said = python(
        "share.py",
        &[after.join(page).to_str().expect("utf-8 path"), url],
    );
    let read: serde_json::Value = serde_json::from_str(&said).expect("share.py prints JSON");
    let og = |key: &str| {
        read["opengraph"][key]
            .as_array()
            .and_then(|v| v.first())
            .and_then(|v| v.as_str())
            .unwrap_or_else(|| panic!("no {key} in {said}"))
            .to_string()
    };
    let image = format!("{url}bild.png");
    assert_eq!(og("og:type"), "article");
    assert_eq!(og("og:title"), HOSTILE_TITLE);
    assert_eq!(og("og:description"), "Rapporten visar löneskillnader.");
    assert_eq!(og("og:url"), url);
    assert_eq!(og("og:image"), image);
    assert_eq!(og("og:image:alt"), "Diagram över löner");
    assert_eq!(og("og:locale"), "sv_SE");
    assert_eq!(og("og:site_name"), SITE_TITLE);
    assert_eq!(og("article:published_time"), "2018-11-05T08:00:00+01:00");
    assert_eq!(og("article:modified_time"), "2018-11-05T08:00:00+01:00");
    assert_eq!(read["twitter"]["twitter:card"], "summary_large_image");
    assert_eq!(read["twitter"]["twitter:title"], HOSTILE_TITLE);
    assert_eq!(read["twitter"]["twitter:image"], image.as_str());

    // One JSON-LD item, whole: the title did not close its script element.
    let items = read["jsonld"].as_array().expect("JSON-LD items");
    assert_eq!(items.len(), 1, "{said}");
    assert_eq!(read["scripts"], 1, "one <script> element: {said}");
    let article = &items[0];
    assert_eq!(article["@type"], "NewsArticle");
    assert_eq!(article["headline"], HOSTILE_TITLE);
    assert_eq!(article["datePublished"], "2018-11-05T08:00:00+01:00");
    assert_eq!(article["dateModified"], "2018-11-05T08:00:00+01:00");
    assert_eq!(article["image"], serde_json::json!([image]));
    assert_eq!(article["inLanguage"], "sv");
    assert_eq!(article["mainEntityOfPage"]["@id"], url);
    assert_eq!(article["publisher"]["@type"], "Organization");
    assert_eq!(article["publisher"]["name"], "Jämställdhetsmyndigheten");
    assert_eq!(article["publisher"]["url"], "http://127.0.0.1:8080/");

    // The release gave a time, so the page shows it; the sample gave a day alone.
    assert!(html.contains("5 november 2018 kl. 08.00"), "{html}");
    let sample = std::fs::read_to_string(after.join("releases/du-avgor/index.html"))
        .expect("the sample's page");
    assert!(sample.contains(">18 oktober 2018</time>"), "{sample}");
    super::html::assert_valid_html(&[after.join(page)]);
}

#[test]
fn the_office_words_its_pages_in_strings_toml_and_check_names_a_misspelt_key() {
    let p = Project::sample();
    p.write(
        "config/templates/strings.toml",
        "[sv]\nskip = \"Hoppa till innehållet\"\ncontacts = \"Kontakta oss\"\n",
    );
    let out = p.out();
    p.build_at("2018-10-19T00:00:00+02:00", &out);
    let page = std::fs::read_to_string(out.join("releases/du-avgor/index.html")).expect("page");
    assert!(
        page.contains(">Hoppa till innehållet</a>") && page.contains(">Kontakta oss</h2>"),
        "{page}"
    );
    assert!(!page.contains("Presskontakt"), "{page}");
    let index = std::fs::read_to_string(out.join("index.html")).expect("index");
    assert!(index.contains(">Hoppa till innehållet</a>"), "{index}");

    p.write(
        "config/templates/strings.toml",
        "[sv]\ncontcts = \"Kontakta oss\"\n",
    );
    let o = p.run(&["check"]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "check passes: {stderr}");
    assert!(
        stderr.contains("strings.toml") && stderr.contains("contcts"),
        "{stderr}"
    );
}

#[test]
fn the_front_page_and_page_two_of_an_archive_read_well_at_a_desk_and_on_a_phone() {
    let (p, _port) = sample_served();
    super::archives::many_in_one_topic(&p);
    let d = Daemon::start(&p);
    let http = client();
    wait_for("page 2 of the topic", Duration::from_secs(30), || {
        get(&http, &d.base, &format!("/topics/{TOPIC_SLUG}/page/2/")).0 == 200
    });
    let newest = super::archives::nyhet(super::archives::MANY - 1);
    let oldest = super::archives::nyhet(0);
    let spec = serde_json::json!({
        "base": d.base,
        "widths": [1280, 390],
        "pages": [
            {
                "path": "/",
                "texts": [newest, "Ingressen till nyhet 49 berättar vad som hänt.",
                          "Presskontakt", "Simon Falk, Pressansvarig", "press@jamy.se",
                          "Ämnen", TOPIC_NAME, "Språk", "svenska", "Arkiv", "2018",
                          "Prenumerera", "RSS", "Atom", "JSON", "Sök"],
                "absent": [SAMPLE_TITLE],
                "title": SITE_TITLE,
                "selectors": ["img.thumb[loading=lazy][width][height]",
                              "form[role=search] input[name=q]",
                              "a[href^='tel:']", "a[type='application/rss+xml']"],
            },
            {
                "path": format!("/topics/{TOPIC_SLUG}/"),
                "texts": [TOPIC_NAME, newest, oldest, "Sida 1 av 2", "Nästa"],
                "absent": [SAMPLE_TITLE],
                "title": format!("{TOPIC_NAME} – {SITE_TITLE}"),
                "selectors": ["link[rel=next]", "nav.pages a[aria-current=page]",
                              "nav.pages a[rel=next]"],
            },
            {
                "path": format!("/topics/{TOPIC_SLUG}/page/2/"),
                "texts": [TOPIC_NAME, SAMPLE_TITLE, "Sida 2 av 2", "Föregående"],
                "absent": [oldest],
                "title": format!("{TOPIC_NAME} – Sida 2 av 2 – {SITE_TITLE}"),
                "selectors": ["link[rel=prev]", "nav.pages a[aria-current=page]",
                              "nav.pages a[rel=prev]"],
            },
            {
                "path": "/archive/2018/page/2/",
                "texts": ["Arkiv 2018", SAMPLE_TITLE, "Sida 2 av 2"],
                "selectors": ["link[rel=prev]", "nav.pages a[aria-current=page]"],
            },
        ],
    });
    let file = p.path().join("browser.json");
    std::fs::write(&file, spec.to_string()).expect("write the spec");
    let said = python("check.py", &[file.to_str().expect("utf-8 path")]);
    assert_eq!(said.matches("checked ").count(), 8, "{said}");
}
