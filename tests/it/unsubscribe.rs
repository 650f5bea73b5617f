//! What a journalist meets behind the unsubscribe link of a real mail (the daemon serving,
//! a real SMTP server receiving): a page in the mail's language, in the site's layout, that
//! asks first, records the opt-out on its button, offers the undo, and lifts the opt-out
//! on it; and the mail itself, styled inline (webmail drops `<style>` and styles on
//! `<body>`), saying in its footer why the reader gets it and from whom.

use std::time::Duration;

use super::daemon::{Daemon, client, rfc3339, wait_for, with_smtp};
use super::*;

/// The HTML part of a raw message, decoded.
pub fn html_part(raw: &[u8]) -> String {
    let m = mail_parser::MessageParser::default()
        .parse(raw)
        .expect("the message parses");
    m.body_html(0).expect("an HTML part").into_owned()
}

/// The text part of a raw message, decoded.
fn text_part(raw: &[u8]) -> String {
    let m = mail_parser::MessageParser::default()
        .parse(raw)
        .expect("the message parses");
    m.body_text(0).expect("a text part").into_owned()
}

/// The first `href` in `html` that contains `needle`.
pub fn href_with(html: &str, needle: &str) -> String {
    html.split("href=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .find(|url| url.contains(needle))
        .unwrap_or_else(|| panic!("no link to {needle} in:\n{html}"))
        .replace("&amp;", "&")
}

/// The masked address the pages show for anna.lind@example.org (the word joiner keeps
/// `…` and `@` on one line).
const ANNA_MASKED: &str = "a…\u{2060}@example.org";

/// `(address, source)` of every opt-out in the ledger, read beside the running daemon.
fn opt_outs(p: &Project) -> Vec<(String, String)> {
    let conn = rusqlite::Connection::open_with_flags(
        p.path().join("state/pressroom.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .expect("open the ledger");
    let mut stmt = conn
        .prepare("SELECT address, source FROM optouts ORDER BY address")
        .expect("select");
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows")
}

#[test]
fn a_journalist_unsubscribes_on_a_page_in_the_sites_layout_and_undoes_it() {
    let (_dir, server, p, port) = with_smtp(0);
    let base = format!("http://127.0.0.1:{port}/");
    let an_hour_ago = rfc3339(pressroom::clock::now() - chrono::TimeDelta::hours(1));
    p.write(
        "releases/forsta.md",
        release(
            &format!(
                "title = \"Första nyheten\"\ndate = \"{an_hour_ago}\"\ntopics = [\"jamstalldhet\"]"
            ),
            "Text.",
        ),
    );
    let _daemon = Daemon::start(&p);
    let http = client();
    // Anna (every release) and Cecilia (Jämställdhet).
    wait_for("the first mail", Duration::from_secs(20), || {
        server.count() == 2
    });
    let (_, raw) = server
        .messages()
        .into_iter()
        .find(|(to, _)| to == "anna.lind@example.org")
        .expect("anna's copy");
    let link = href_with(&html_part(&raw), "/unsubscribe/");
    assert!(link.starts_with(&format!("{base}unsubscribe/")), "{link}");

    // The link asks, in the mail's language (Swedish: no `?lang=`), and changes nothing.
    let r = http.get(&link).send().expect("GET");
    assert_eq!(r.status(), 200);
    let page = r.text().expect("page");
    for needle in [
        "<html lang=\"sv\">",
        "<h1>Avsluta prenumerationen</h1>",
        "<form method=\"post\"",
        "<button type=\"submit\">Avsluta prenumerationen</button>",
        &format!("<a href=\"{base}\">Till pressrummet</a>"),
        &format!("från Jämställdhetsmyndigheten till {ANNA_MASKED}?"),
        // The site's layout: its skip link, header and stylesheet.
        "<a class=\"skip\" href=\"#main\">Till innehållet</a>",
        "<title>Avsluta prenumerationen – Jämställdhetsmyndigheten – Pressrum</title>",
    ] {
        assert!(page.contains(needle), "no {needle:?} in:\n{page}");
    }
    assert!(
        !page.contains("anna.lind"),
        "the whole address is shown:\n{page}"
    );
    assert_eq!(opt_outs(&p), vec![], "a GET unsubscribed someone");
    // Asked in English, in English.
    let english = http
        .get(format!("{link}?lang=en"))
        .send()
        .expect("GET")
        .text()
        .expect("page");
    assert!(
        english.contains("<html lang=\"en\">")
            && english.contains("<h1>Unsubscribe</h1>")
            && english.contains("Back to the newsroom")
            && english.contains(&format!("action=\"{link}?lang=en\"")),
        "{english}"
    );

    // The page's button, as a browser sends it.
    let r = http
        .post(&link)
        .header("Accept", "text/html")
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .expect("POST");
    assert_eq!(r.status(), 200);
    let page = r.text().expect("page");
    let undo = format!("{link}/undo");
    for needle in [
        "<html lang=\"sv\">",
        "<h1>Prenumerationen är avslutad</h1>",
        &format!("{ANNA_MASKED} får inga fler pressmeddelanden från Jämställdhetsmyndigheten."),
        &format!("<form method=\"post\" action=\"{undo}\">"),
        "Ångra, jag vill fortsätta få pressmeddelanden",
        &format!("<a href=\"{base}\">Till pressrummet</a>"),
    ] {
        assert!(page.contains(needle), "no {needle:?} in:\n{page}");
    }
    assert_eq!(
        opt_outs(&p),
        vec![("anna.lind@example.org".to_string(), "link".to_string())]
    );

    // The next release reaches Cecilia, not Anna.
    let a_minute_ago = rfc3339(pressroom::clock::now() - chrono::TimeDelta::minutes(1));
    p.write(
        "releases/nasta.md",
        release(
            &format!(
                "title = \"Nästa nyhet\"\ndate = \"{a_minute_ago}\"\ntopics = [\"jamstalldhet\"]"
            ),
            "Mer text.",
        ),
    );
    wait_for("the next release mailed", Duration::from_secs(20), || {
        server.count() == 3
    });

    // A link that does not verify gets the styled page and undoes nothing.
    let forged = format!("{}x/undo", &link[..link.len() - 1]);
    let r = http.post(&forged).send().expect("POST");
    assert_eq!(r.status(), 400);
    let page = r.text().expect("page");
    assert!(
        page.contains("<html lang=\"sv\">")
            && page.contains("<h1>Länken fungerar inte</h1>")
            && page.contains("Till pressrummet"),
        "{page}"
    );
    assert_eq!(opt_outs(&p).len(), 1, "a forged undo lifted the opt-out");

    // The undo lifts Anna's opt-out, and only hers.
    let r = http
        .post(&undo)
        .header("Accept", "text/html")
        .send()
        .expect("POST undo");
    assert_eq!(r.status(), 200);
    let page = r.text().expect("page");
    for needle in [
        "<h1>Du får pressmeddelanden igen</h1>",
        &format!("{ANNA_MASKED} får pressmeddelanden från Jämställdhetsmyndigheten igen."),
        &format!("<a href=\"{base}\">Till pressrummet</a>"),
    ] {
        assert!(page.contains(needle), "no {needle:?} in:\n{page}");
    }
    assert_eq!(opt_outs(&p), vec![], "the undo left the opt-out");

    // So `send` mails her the release she missed, and Cecilia nothing twice. (The daemon
    // may still hold the send lock from its own run for a moment.)
    wait_for("pressroom send", Duration::from_secs(20), || {
        p.run(&["send", "nasta"]).status.success()
    });
    let counts = server.per_recipient();
    assert_eq!(counts.get("anna.lind@example.org"), Some(&2), "{counts:?}");
    assert_eq!(
        counts.get("cecilia.berg@example.org"),
        Some(&2),
        "{counts:?}"
    );
}

#[test]
fn the_mail_carries_its_styles_on_its_elements_and_says_why_and_from_whom() {
    let p = Project::sample();
    // A body with every kind of element Markdown makes, a heading larger than `##` among
    // them, and an office's words for the mail.
    p.write(
        "releases/2018-10-20-tabell.md",
        release(
            "title = \"Siffror om löner\"\ndate = 2018-10-20\ntopics = [\"Människohandel\"]\n[[contacts]]\nname = \"Simon Falk\"\nemail = \"press@example.org\"",
            "# Stor rubrik\n\nEn mening med [länk](https://example.org/) och `kod`.\n\n> Ett citat.\n\n- ett\n- två\n\n1. första\n\n| Län | Andel |\n|:---|---:|\n| Skåne | 50 % |\n\n```\nkodblock\n```\n\n---\n\n### Mindre rubrik\n\nSlut.",
        ),
    );
    p.write(
        "config/templates/strings.toml",
        "[sv]\ncontacts = \"Kontakta oss\"\nsent_by = \"Avsändare:\"\n",
    );
    let preview = |slug: &str, to: &str, part: &str| {
        let o = p.run(&["preview", slug, "--recipient", to, part]);
        assert!(
            o.status.success(),
            "preview: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).expect("utf-8")
    };
    for slug in ["tabell", SAMPLE_SLUG] {
        let html = preview(slug, "bo.ek@example.com", "--html");
        let file = p.path().join(format!("{slug}.html"));
        std::fs::write(&file, &html).expect("write the mail's HTML");
        let read = python_json("mail_styles.py", &file);
        assert_eq!(read["style_elements"], 0, "{slug}: {read}");
        assert_eq!(read["stylesheets"], 0, "{slug}: {read}");
        assert_eq!(
            read["body_style"],
            serde_json::Value::Null,
            "{slug}: {read}"
        );
        assert_eq!(read["classes"], 0, "{slug}: {read}");
        assert_eq!(read["unstyled"], serde_json::json!([]), "{slug}: {read}");
        // "Kontakta oss" (the office's word for "Presskontakt") is no smaller than any
        // heading of the body.
        let headings = read["headings"].as_array().expect("headings");
        let size = |h: &serde_json::Value| h["font_size"].as_f64().unwrap_or(0.0);
        let contacts = headings
            .iter()
            .find(|h| h["text"] == "Kontakta oss")
            .unwrap_or_else(|| panic!("{slug}: no contacts heading: {read}"));
        // The first is the title; the others but the contacts' are the body's.
        let body: Vec<_> = headings
            .iter()
            .skip(1)
            .filter(|h| h["text"] != "Kontakta oss")
            .collect();
        assert!(!body.is_empty(), "{slug}: {read}");
        for h in body {
            assert!(
                size(h) > 0.0 && size(contacts) >= size(h),
                "{slug}: {h} > {contacts}"
            );
        }
        // The footer: why, from whom, and the way out.
        let why = "Du får det här mejlet eftersom du finns på Jämställdhetsmyndighetens lista för presskontakter om Prostitution och Människohandel.";
        let from = "Avsändare: Jämställdhetsmyndigheten, pressroom@example.org.";
        assert!(html.contains(why) && html.contains(from), "{slug}: {html}");
        assert!(html.contains(">Avsluta prenumerationen</a>"), "{html}");
        let text = preview(slug, "bo.ek@example.com", "--text");
        assert!(
            text.contains(why) && text.contains(from) && text.contains("Kontakta oss:"),
            "{slug}: {text}"
        );
        assert!(
            text.contains("Avsluta prenumerationen: http://127.0.0.1:8080/unsubscribe/"),
            "{text}"
        );
    }
    // A row without topics takes everything, and the footer says so.
    let html = preview(SAMPLE_SLUG, "anna.lind@example.org", "--html");
    assert!(
        html.contains("lista för presskontakter och får alla pressmeddelanden."),
        "{html}"
    );

    // A release in English speaks English to the reader, down to its unsubscribe pages.
    p.write(
        "releases/2018-10-21-english.md",
        release(
            "title = \"Campaign against trafficking\"\ndate = 2018-10-21\nlang = \"en\"",
            "Text.",
        ),
    );
    let html = preview("english", "david.holm@example.com", "--html");
    let text = preview("english", "david.holm@example.com", "--text");
    for part in [&html.replace("&#39;", "'"), &text] {
        assert!(
            part.contains("You are receiving this email because you are on Jämställdhetsmyndigheten's list of press contacts for all press releases.")
                && part.contains("Sent by Jämställdhetsmyndigheten, pressroom@example.org."),
            "{part}"
        );
    }
    let link = href_with(&html, "/unsubscribe/");
    assert!(link.ends_with("?lang=en"), "{link}");
    let eml = preview("english", "david.holm@example.com", "--eml");
    let header = eml
        .lines()
        .find(|l| l.starts_with("List-Unsubscribe:"))
        .expect("List-Unsubscribe");
    assert!(
        !header.contains("lang="),
        "the one-click link changed: {header}"
    );
    assert!(
        text_part(eml.as_bytes()).contains("Unsubscribe: http://127.0.0.1:8080/unsubscribe/"),
        "{eml}"
    );
}

/// Runs `tests/mail/SCRIPT FILE` and reads the JSON it prints.
fn python_json(script: &str, file: &Path) -> serde_json::Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/mail")
        .join(script);
    let o = std::process::Command::new("python3")
        .arg(&path)
        .arg(file)
        .output()
        .expect("python3 runs");
    assert!(
        o.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).expect("JSON")
}

/// The unsubscribe link of `address`, made with the key a daemon made at its start.
pub fn link_of(p: &Project, base: &str, address: &str) -> String {
    let key = std::fs::read(p.path().join("state").join(pressroom::optout::KEY_NAME))
        .expect("the daemon's unsubscribe key");
    let key = pressroom::optout::TokenKey::from_bytes(
        key.get(..32)
            .and_then(|k| k.try_into().ok())
            .expect("32 bytes"),
    );
    format!("{base}/unsubscribe/{}", key.token(address))
}

#[test]
fn the_offices_templates_word_the_pages_and_one_that_fails_gives_way_to_the_built_in_one() {
    let (p, _port) = super::daemon::sample_served();
    p.write(
        "config/templates/link-invalid.html",
        "{% extends \"subscription.html\" %}{% block page %}<p>Skriv till press@example.org.</p>{% endblock %}",
    );
    p.write(
        "config/templates/unsubscribe.html",
        "{% include \"saknas.html\" %}",
    );
    p.write(
        "config/templates/strings.toml",
        "[sv]\nback = \"Tillbaka till nyheterna\"\n",
    );
    let daemon = Daemon::start(&p);
    let http = client();
    wait_for("the site", Duration::from_secs(20), || {
        super::daemon::get(&http, &daemon.base, "/").0 == 200
    });
    let link = link_of(&p, &daemon.base, "anna.lind@example.org");

    let r = http.get(format!("{link}x")).send().expect("GET");
    assert_eq!(r.status(), 400);
    let page = r.text().expect("page");
    assert!(
        page.contains("<p>Skriv till press@example.org.</p>")
            && page.contains(">Tillbaka till nyheterna</a>"),
        "{page}"
    );
    // Theirs fails: the built-in page, in their words.
    for _ in 0..3 {
        let r = http.get(&link).send().expect("GET");
        assert_eq!(r.status(), 200);
        let page = r.text().expect("page");
        assert!(
            page.contains("<h1>Avsluta prenumerationen</h1>")
                && page.contains(">Tillbaka till nyheterna</a>"),
            "{page}"
        );
    }
    // The daemon's stderr is read by a thread of the test: wait for the line to be read,
    // then make sure it came once.
    let said = || {
        daemon
            .log()
            .matches("the unsubscribe pages use the built-in templates")
            .count()
    };
    wait_for("the fallback logged", Duration::from_secs(5), || {
        said() >= 1
    });
    std::thread::sleep(Duration::from_millis(200));
    let log = daemon.log();
    assert_eq!(
        log.matches("the unsubscribe pages use the built-in templates")
            .count(),
        1,
        "{log}"
    );
}
