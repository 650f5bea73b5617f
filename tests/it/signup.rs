//! Signing up from the newsroom, against the real daemon and a real SMTP server: the form
//! on the front, topic and language pages and at `/subscribe`; one answer whatever becomes
//! of a sign-up; exactly one confirmation mail, whose link asks on GET and subscribes on a
//! same-origin POST, once; the limits behind the form (1,000 sign-ups, one mail), the
//! honeypot, cross-site posts, an expired link, and nothing but the confirmation before
//! the journalist confirms.

use std::time::Duration;

use super::daemon::{Daemon, client, wait_for, with_smtp};
use super::smtp::SmtpServer;
use super::unsubscribe::href_with;
use super::*;

/// The sign-up form's fields, as a browser posts them.
fn form<'a>(email: &'a str, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut fields = vec![
        ("email", email),
        ("name", "Ada Lovelace"),
        ("outlet", "Example Times"),
        ("delivery", "each"),
        ("website", ""),
    ];
    fields.extend_from_slice(extra);
    fields
}

/// What the server answered, headers but `Date` included.
#[derive(Debug, PartialEq, Eq)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

fn post(
    http: &reqwest::blocking::Client,
    url: &str,
    origin: Option<&str>,
    fields: &[(&str, &str)],
) -> Answer {
    let mut request = http.post(url).form(fields);
    if let Some(origin) = origin {
        request = request.header("Origin", origin);
    }
    let r = request.send().expect("POST");
    let status = r.status().as_u16();
    let mut headers: Vec<(String, String)> = r
        .headers()
        .iter()
        .filter(|(name, _)| *name != "date")
        .map(|(n, v)| (n.to_string(), v.to_str().unwrap_or("?").to_string()))
        .collect();
    headers.sort();
    Answer {
        status,
        headers,
        body: r.bytes().expect("body").to_vec(),
    }
}

fn text(a: &Answer) -> String {
    String::from_utf8_lossy(&a.body).into_owned()
}

/// One row per query result, each column as text, read beside the running daemon.
fn rows(p: &Project, sql: &str) -> Vec<Vec<String>> {
    let conn = rusqlite::Connection::open_with_flags(
        p.path().join("state/pressroom.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .expect("open the ledger");
    let mut stmt = conn.prepare(sql).expect("prepare");
    let n = stmt.column_count();
    stmt.query_map([], |r| {
        (0..n)
            .map(|i| {
                r.get::<_, rusqlite::types::Value>(i).map(|v| match v {
                    rusqlite::types::Value::Text(t) => t,
                    rusqlite::types::Value::Integer(i) => i.to_string(),
                    rusqlite::types::Value::Null => "NULL".into(),
                    other => format!("{other:?}"),
                })
            })
            .collect()
    })
    .expect("query")
    .collect::<Result<_, _>>()
    .expect("rows")
}

fn parsed(raw: &[u8]) -> mail_parser::Message<'_> {
    mail_parser::MessageParser::default()
        .parse(raw)
        .expect("the message parses")
}

/// The site's base URL without its final slash, and its origin.
fn served(p: &Project) -> (Daemon, String) {
    let d = Daemon::start(p);
    let http = client();
    wait_for("the front page", Duration::from_secs(30), || {
        http.get(format!("{}/", d.base))
            .send()
            .is_ok_and(|r| r.status() == 200)
    });
    let base = d.base.clone();
    (d, base)
}

#[test]
fn a_journalist_signs_up_on_the_front_page_and_confirms_on_the_page_behind_the_link() {
    let (_dir, server, p, _port) = with_smtp(0);
    let (d, base) = served(&p);
    let http = client();

    // The form: on the front page, the topic page (its topic ticked), the language page
    // (its language ticked) and its own page; labelled, grouped, with a honeypot.
    let front = http.get(format!("{base}/")).send().unwrap().text().unwrap();
    assert!(
        front.contains(&format!(
            "<form class=\"signup\" method=\"post\" action=\"{base}/subscribe\">"
        )),
        "{front}"
    );
    for needle in [
        "<label for=\"signup-email\">E-postadress</label>",
        "<legend>Ämnen (inget valt: alla)</legend>",
        "<legend>Språk (inget valt: alla)</legend>",
        "value=\"Jämställdhet\"> Jämställdhet",
        "value=\"sv\"> svenska",
        "tabindex=\"-1\" autocomplete=\"off\"",
        "<input type=\"radio\" name=\"delivery\" value=\"digest\">",
    ] {
        assert!(front.contains(needle), "{needle} not in\n{front}");
    }
    assert!(!front.contains(" checked> Jämställdhet"), "{front}");
    let topic = http
        .get(format!("{base}/topics/jamstalldhet/"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(
        topic.contains("value=\"Jämställdhet\" checked> Jämställdhet"),
        "{topic}"
    );
    assert!(!topic.contains("value=\"Prostitution\" checked"), "{topic}");
    let lang = http
        .get(format!("{base}/lang/sv/"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(lang.contains("value=\"sv\" checked> svenska"), "{lang}");
    let own = http.get(format!("{base}/subscribe/")).send().unwrap();
    assert_eq!(own.status(), 200);
    assert!(own.text().unwrap().contains("name=\"email\""));

    // The answer: one page that names nobody.
    let answer = post(
        &http,
        &format!("{base}/subscribe"),
        Some(&base),
        &form("Ada@example.com", &[("topic", "Jämställdhet")]),
    );
    assert_eq!(answer.status, 200, "{}", text(&answer));
    assert!(
        text(&answer).contains("Titta i din inkorg"),
        "{}",
        text(&answer)
    );
    assert!(
        !text(&answer).to_lowercase().contains("ada"),
        "{}",
        text(&answer)
    );

    // Exactly one mail: the confirmation, multipart, from the site, saying what to do if
    // it was not them, and no list headers.
    wait_for("the confirmation mail", Duration::from_secs(20), || {
        server.count() == 1
    });
    let (rcpt, raw) = server.messages().remove(0);
    assert_eq!(rcpt, "ada@example.com");
    let m = parsed(&raw);
    let text_part = m.body_text(0).expect("a text part").into_owned();
    let html = m.body_html(0).expect("an HTML part").into_owned();
    let head = String::from_utf8_lossy(&raw[..raw.len().min(4000)]).into_owned();
    assert!(head.contains("multipart/alternative"), "{head}");
    assert!(head.contains("pressroom@example.org"), "{head}");
    assert!(!head.contains("List-Unsubscribe"), "{head}");
    assert!(
        text_part.contains("Strunta då i det här mejlet"),
        "{text_part}"
    );
    let link = href_with(&html, "/confirm/");
    assert!(text_part.contains(&link), "{text_part}");
    assert!(link.starts_with(&format!("{base}/confirm/")), "{link}");

    // GET (a mail scanner) changes nothing: it asks, with a button posting to the link.
    let page = http.get(&link).send().unwrap();
    assert_eq!(page.status(), 200);
    let page = page.text().unwrap();
    assert!(
        page.contains(&format!("<form method=\"post\" action=\"{link}\">")),
        "{page}"
    );
    assert!(rows(&p, "SELECT address FROM subscribers").is_empty());

    // POST subscribes, with the form's choices.
    let done = post(&http, &link, Some(&base), &[]);
    assert_eq!(done.status, 200, "{}", text(&done));
    assert!(
        text(&done).contains("Du prenumererar nu"),
        "{}",
        text(&done)
    );
    let subscribed =
        "SELECT address, email, name, outlet, topics, langs, delivery, updated_at FROM subscribers";
    let before = rows(&p, subscribed);
    assert_eq!(before.len(), 1);
    assert_eq!(
        before[0][..7],
        [
            "ada@example.com",
            "Ada@example.com",
            "Ada Lovelace",
            "Example Times",
            "Jämställdhet",
            "",
            "each"
        ]
    );
    // The token is gone from the outbox once sent, and its sign-up once used.
    let token = link.rsplit('/').next().unwrap().to_string();
    let letters = rows(&p, "SELECT state, text, html FROM outbox");
    assert_eq!(letters, [["sent", "", ""]]);
    assert!(rows(&p, "SELECT * FROM signups").is_empty());
    assert!(
        !rows(&p, "SELECT * FROM outbox")
            .iter()
            .flatten()
            .any(|c| c.contains(&token))
    );

    // A second confirmation is harmless: the invalid-link page, nothing written.
    std::thread::sleep(Duration::from_millis(20));
    let again = post(&http, &link, Some(&base), &[]);
    assert_eq!(again.status, 400);
    assert!(
        text(&again).contains("Länken har redan använts eller gått ut"),
        "{}",
        text(&again)
    );
    assert_eq!(rows(&p, subscribed), before);
    let again = http.get(&link).send().unwrap();
    assert_eq!(again.status(), 400);
    assert_eq!(server.count(), 1, "{}", d.log());

    // A confirmed subscriber signing up again gets the answer an unknown address gets.
    let url = format!("{base}/subscribe");
    let known = post(&http, &url, Some(&base), &form("ada@example.com", &[]));
    let unknown = post(&http, &url, Some(&base), &form("nobody@example.com", &[]));
    assert_eq!(known, unknown);
    assert_eq!(known, answer);
}

#[test]
fn a_thousand_sign_ups_for_one_address_send_one_mail_and_every_answer_is_the_same() {
    let (_dir, server, p, _port) = with_smtp(0);
    let (d, base) = served(&p);
    let http = client();
    let url = format!("{base}/subscribe");

    let first = post(&http, &url, Some(&base), &form("target@example.com", &[]));
    assert_eq!(first.status, 200);
    for _ in 1..1000 {
        let a = post(&http, &url, Some(&base), &form("target@example.com", &[]));
        assert_eq!(a, first);
    }
    // Every sign-up behind the answers was taken: 5 from this client, the rest dropped.
    wait_for("every sign-up taken", Duration::from_secs(30), || {
        let log = d.log();
        log.matches("a client past its sign-up limit").count() == 995
            && log.matches("within the hour").count() == 4
    });
    wait_for("the confirmation", Duration::from_secs(20), || {
        server.count() >= 1
    });
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(server.per_recipient().get("target@example.com"), Some(&1));
    assert_eq!(server.count(), 1);
    assert_eq!(rows(&p, "SELECT count(*) FROM signups"), [["1"]]);
    drop(d);

    // Known and unknown addresses, a limited client, the honeypot: the same bytes.
    let (_d, base) = served(&p);
    let url = format!("{base}/subscribe");
    let unknown = post(
        &http,
        &url,
        Some(&base),
        &form("nobody-known@example.com", &[]),
    );
    let listed = post(
        &http,
        &url,
        Some(&base),
        &form("anna.lind@example.org", &[]),
    );
    let mailed = post(&http, &url, Some(&base), &form("target@example.com", &[]));
    let trapped = post(
        &http,
        &url,
        Some(&base),
        &form("bot@example.com", &[("website", "http://spam.example.com")]),
    );
    let uppercase = post(&http, &url, Some(&base), &form("TARGET@EXAMPLE.COM", &[]));
    for other in [&listed, &mailed, &trapped, &uppercase] {
        assert_eq!(other, &unknown);
    }
    assert_eq!(unknown.status, 200);
    // An opted-out address too (a confirmed subscriber's answer is compared in
    // a_journalist_signs_up_…).
    let out = p.run(&["unsubscribe", "bo.ek@example.com"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let opted_out = post(&http, &url, Some(&base), &form("bo.ek@example.com", &[]));
    assert_eq!(opted_out, unknown);
    // Only a form that cannot be read differs, and it names no address.
    let bad = post(&http, &url, Some(&base), &[("email", "not an address")]);
    assert_eq!(bad.status, 400);
    let bad_topic = post(
        &http,
        &url,
        Some(&base),
        &form("x@example.com", &[("topic", "Hemligt")]),
    );
    assert_eq!(bad_topic, bad);
    assert!(!text(&bad).contains("example"), "{}", text(&bad));
    wait_for("the other confirmations", Duration::from_secs(20), || {
        server.count() >= 4
    });
    std::thread::sleep(Duration::from_millis(300));
    let got = server.per_recipient();
    assert_eq!(got.get("target@example.com"), Some(&1), "{got:?}");
    assert_eq!(got.get("bot@example.com"), None, "{got:?}");
    assert_eq!(got.get("nobody-known@example.com"), Some(&1), "{got:?}");
    assert_eq!(got.get("anna.lind@example.org"), Some(&1), "{got:?}");
    assert_eq!(got.get("bo.ek@example.com"), Some(&1), "{got:?}");
}

#[test]
fn a_post_from_another_site_is_refused_and_writes_nothing() {
    let (_dir, server, p, _port) = with_smtp(0);
    let (d, base) = served(&p);
    let http = client();
    let url = format!("{base}/subscribe");
    let evil = post(
        &http,
        &url,
        Some("https://evil.example.com"),
        &form("ada@example.com", &[]),
    );
    assert_eq!(evil.status, 403);
    let by_referer = http
        .post(&url)
        .header("Referer", "https://evil.example.com/form.html")
        .form(&form("ada@example.com", &[]))
        .send()
        .unwrap();
    assert_eq!(by_referer.status(), 403);
    // Neither header (some privacy tools strip both): allowed.
    let plain = post(&http, &url, None, &form("ada@example.com", &[]));
    assert_eq!(plain.status, 200);
    wait_for("the confirmation", Duration::from_secs(20), || {
        server.count() == 1
    });
    let (_, raw) = server.messages().remove(0);
    let link = href_with(&parsed(&raw).body_html(0).unwrap(), "/confirm/");
    let forged = post(&http, &link, Some("https://evil.example.com"), &[]);
    assert_eq!(forged.status, 403);
    assert!(rows(&p, "SELECT * FROM subscribers").is_empty());
    assert_eq!(rows(&p, "SELECT count(*) FROM signups"), [["1"]]);
    assert_eq!(server.count(), 1, "{}", d.log());
}

#[test]
fn an_expired_confirmation_link_subscribes_nobody_and_the_daemon_purges_its_sign_up() {
    let dir = tempfile::tempdir().expect("dir");
    let server = SmtpServer::start(dir.path(), 0);
    let p = super::smtp::project_with_smtp(server.port, 0);
    super::daemon::serve_on(&p, free_port());
    p.set_config("confirm_within = \"48h\"", "confirm_within = \"1s\"");
    let (d, base) = served(&p);
    let http = client();
    let answer = post(
        &http,
        &format!("{base}/subscribe"),
        Some(&base),
        &form("ada@example.com", &[]),
    );
    assert_eq!(answer.status, 200);
    wait_for("the confirmation", Duration::from_secs(20), || {
        server.count() == 1
    });
    let (_, raw) = server.messages().remove(0);
    let link = href_with(&parsed(&raw).body_html(0).unwrap(), "/confirm/");
    // The link lived one second.
    let expires: String = rows(&p, "SELECT expires_at FROM signups")[0][0].clone();
    let expires: chrono::DateTime<chrono::Utc> = expires.parse().unwrap();
    while pressroom::clock::now() <= expires {
        std::thread::sleep(Duration::from_millis(50));
    }
    let late = post(&http, &link, Some(&base), &[]);
    assert_eq!(late.status, 400);
    assert!(text(&late).contains("gått ut"), "{}", text(&late));
    assert!(rows(&p, "SELECT * FROM subscribers").is_empty());
    // The daemon purges expired sign-ups (at start, then hourly).
    drop(d);
    let (_d, _) = served(&p);
    wait_for(
        "the expired sign-up purged",
        Duration::from_secs(10),
        || rows(&p, "SELECT count(*) FROM signups") == [["0"]],
    );
}

#[test]
fn an_address_that_has_not_confirmed_is_sent_nothing_but_the_confirmation() {
    let (_dir, server, p, _port) = with_smtp(0);
    let (_d, base) = served(&p);
    let http = client();
    let answer = post(
        &http,
        &format!("{base}/subscribe"),
        Some(&base),
        &form("ada@example.com", &[]),
    );
    assert_eq!(answer.status, 200);
    wait_for("the confirmation", Duration::from_secs(20), || {
        server.count() == 1
    });
    // A release is published and mailed to the media list; the unconfirmed address is
    // not on it.
    let now = pressroom::clock::now();
    p.write(
        "releases/ny-rapport.md",
        release(
            &format!(
                "title = \"Ny rapport om jämställdhet\"\ndate = \"{}\"\ntopics = [\"Jämställdhet\"]",
                super::daemon::rfc3339(now)
            ),
            "En ny rapport.",
        ),
    );
    wait_for("the release's mail", Duration::from_secs(30), || {
        server.per_recipient().contains_key("anna.lind@example.org")
    });
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(server.per_recipient().get("ada@example.com"), Some(&1));
    let (_, raw) = server
        .messages()
        .into_iter()
        .find(|(rcpt, _)| rcpt == "ada@example.com")
        .unwrap();
    assert!(
        parsed(&raw)
            .subject()
            .unwrap_or_default()
            .contains("Bekräfta"),
        "{:?}",
        parsed(&raw).subject()
    );
}

#[test]
fn every_sign_up_page_and_the_confirmation_mail_are_valid_html() {
    let (dir, server, p, _port) = with_smtp(0);
    let (_d, base) = served(&p);
    let http = client();
    let url = format!("{base}/subscribe");
    let mut pages: Vec<(&str, String)> = Vec::new();
    pages.push((
        "subscribe",
        http.get(format!("{url}/")).send().unwrap().text().unwrap(),
    ));
    pages.push((
        "sent",
        text(&post(
            &http,
            &url,
            Some(&base),
            &form("ada@example.com", &[]),
        )),
    ));
    pages.push((
        "invalid",
        text(&post(&http, &url, Some(&base), &[("email", "")])),
    ));
    wait_for("the confirmation", Duration::from_secs(20), || {
        server.count() == 1
    });
    let (_, raw) = server.messages().remove(0);
    let mail = parsed(&raw).body_html(0).unwrap().into_owned();
    let link = href_with(&mail, "/confirm/");
    pages.push(("mail", mail));
    pages.push(("confirm", http.get(&link).send().unwrap().text().unwrap()));
    pages.push(("subscribed", text(&post(&http, &link, Some(&base), &[]))));
    pages.push(("used", text(&post(&http, &link, Some(&base), &[]))));
    let files: Vec<PathBuf> = pages
        .iter()
        .map(|(name, html)| {
            let path = dir.path().join(format!("{name}.html"));
            std::fs::write(&path, html).expect("write");
            path
        })
        .collect();
    super::html::assert_valid_html(&files);
}

#[test]
fn with_sign_ups_closed_no_page_offers_the_form_and_a_post_is_taken_by_nobody() {
    let (_dir, server, p, _port) = with_smtp(0);
    p.set_config("open = true", "open = false");
    let (d, base) = served(&p);
    let http = client();
    for path in ["/", "/topics/jamstalldhet/", "/lang/sv/"] {
        let page = http
            .get(format!("{base}{path}"))
            .send()
            .unwrap()
            .text()
            .unwrap();
        assert!(!page.contains("name=\"email\""), "{path}: {page}");
    }
    assert_eq!(
        http.get(format!("{base}/subscribe/"))
            .send()
            .unwrap()
            .status(),
        404
    );
    let refused = post(
        &http,
        &format!("{base}/subscribe"),
        Some(&base),
        &form("ada@example.com", &[]),
    );
    assert_eq!(refused.status, 404);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(server.count(), 0, "{}", d.log());
    assert!(rows(&p, "SELECT * FROM signups").is_empty());
}

#[test]
fn a_confirmation_the_server_defers_waits_for_its_retry_and_one_it_refuses_keeps_no_link() {
    let (_dir, server, p, _port) = with_smtp(0);
    server.rules(
        r#"{"rcpt": {"later@example.com": {"code": 451, "times": 1}, "never@example.com": {"code": 550}}}"#,
    );
    let (d, base) = served(&p);
    let http = client();
    let url = format!("{base}/subscribe");
    let posted = pressroom::clock::now();
    for address in ["later@example.com", "never@example.com"] {
        assert_eq!(
            post(&http, &url, Some(&base), &form(address, &[])).status,
            200
        );
    }
    let outcome = "SELECT address, state, attempts, last_reply, text = '', html = '', next_attempt FROM outbox ORDER BY address";
    wait_for("both attempts recorded", Duration::from_secs(20), || {
        rows(&p, outcome)
            .iter()
            .all(|r| r[2] == "1" && r[1] != "sending")
            && rows(&p, outcome).len() == 2
    });
    let got = rows(&p, outcome);
    assert_eq!(got[0][..3], ["later@example.com", "queued", "1"]);
    assert!(got[0][3].contains("451"), "{got:?}");
    assert_eq!(
        got[0][4..6],
        ["0", "0"],
        "the letter keeps its text for the retry"
    );
    assert_eq!(got[1][..3], ["never@example.com", "failed", "1"]);
    assert!(got[1][3].contains("550"), "{got:?}");
    assert_eq!(got[1][4..6], ["1", "1"], "a letter given up keeps no link");
    // The retry is due 30 s after the attempt, not at once and not in an hour.
    let retry: chrono::DateTime<chrono::Utc> = got[0][6].parse().unwrap();
    let wait = retry - posted;
    assert!(
        wait >= chrono::TimeDelta::seconds(29) && wait <= chrono::TimeDelta::seconds(40),
        "{wait}"
    );
    assert_eq!(server.count(), 0, "{}", d.log());
}
