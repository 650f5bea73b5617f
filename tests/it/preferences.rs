//! A journalist's own choices and their data, driven as they would meet them: the
//! preferences link in a real mail (the daemon serving, a real SMTP server receiving) opens
//! a page that shows their choices and changes nothing, saves other choices as their own,
//! pauses, and leaves; a cross-site form is refused. `subscribers export` then `erase`
//! leave the address in no table of the ledger but as a keyed hash, and a later `send`
//! does not mail them though media.csv still lists them.

use std::time::Duration;

use mail_parser::MimeHeaders;

use super::daemon::{Daemon, client, rfc3339, wait_for, with_smtp};
use super::smtp::{SmtpServer, project_with_smtp};
use super::unsubscribe::{href_with, html_part};
use super::*;

fn ledger(p: &Project) -> rusqlite::Connection {
    rusqlite::Connection::open_with_flags(
        p.path().join("state/pressroom.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .expect("open the ledger")
}

/// `(topics, langs, delivery, paused)` of the subscriber row at `address`, if any.
fn subscriber(p: &Project, address: &str) -> Option<(String, String, String, bool)> {
    ledger(p)
        .query_row(
            "SELECT topics, langs, delivery, paused FROM subscribers WHERE address = ?1",
            [address],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get::<_, i64>(3)? != 0)),
        )
        .ok()
}

fn opt_outs(p: &Project) -> Vec<(String, String)> {
    let conn = ledger(p);
    let mut stmt = conn
        .prepare("SELECT address, source FROM optouts ORDER BY address")
        .expect("select");
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows")
}

#[test]
fn a_journalist_changes_their_choices_pauses_and_leaves_from_the_link_in_a_mail() {
    let (_dir, server, p, port) = with_smtp(0);
    let base = format!("http://127.0.0.1:{port}/");
    let origin = format!("http://127.0.0.1:{port}");
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
    wait_for("the first mail", Duration::from_secs(20), || {
        server.count() == 2
    });
    let (_, raw) = server
        .messages()
        .into_iter()
        .find(|(to, _)| to == "anna.lind@example.org")
        .expect("anna's copy");
    let html = html_part(&raw);
    let link = href_with(&html, "/preferences/");
    assert!(link.starts_with(&format!("{base}preferences/")), "{link}");
    let unsubscribe = href_with(&html, "/unsubscribe/");
    assert_eq!(
        link.rsplit('/').next(),
        unsubscribe.rsplit('/').next(),
        "the same opaque token"
    );
    let text = mail_parser::MessageParser::default()
        .parse(&raw)
        .expect("parses")
        .body_text(0)
        .expect("text")
        .into_owned();
    assert!(
        text.contains(&format!("Dina inställningar: {link}")),
        "{text}"
    );

    // The page shows her choices (the media list's: every topic, Swedish) and changes
    // nothing.
    let r = http.get(&link).send().expect("GET");
    assert_eq!(r.status(), 200);
    let page = r.text().expect("page");
    for needle in [
        "<html lang=\"sv\">",
        "<h1>Dina inställningar</h1>",
        "Valen nedan är pressavdelningens för dig.",
        "name=\"all_topics\" value=\"1\" checked",
        "name=\"topic\" value=\"Prostitution\">",
        "name=\"lang\" value=\"sv\" checked",
        "name=\"delivery\" value=\"each\" checked",
        &format!("<form method=\"post\" action=\"{link}\">"),
    ] {
        assert!(page.contains(needle), "no {needle:?} in:\n{page}");
    }
    assert!(!page.contains("anna.lind"), "{page}");
    assert_eq!(subscriber(&p, "anna.lind@example.org"), None);
    assert_eq!(opt_outs(&p), vec![]);

    let post = |body: &str, from: &str| {
        http.post(&link)
            .header("Origin", from)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body.to_string())
            .send()
            .expect("POST")
    };
    // Another topic and a daily digest: her own choices now.
    let r = post(
        "action=save&topic=Prostitution&lang=sv&delivery=digest",
        &origin,
    );
    assert_eq!(r.status(), 200);
    let page = r.text().expect("page");
    assert!(page.contains("Dina val är sparade."), "{page}");
    assert!(
        page.contains("name=\"topic\" value=\"Prostitution\" checked")
            && page.contains("name=\"delivery\" value=\"digest\" checked")
            && !page.contains("Valen nedan är pressavdelningens"),
        "{page}"
    );
    assert_eq!(
        subscriber(&p, "anna.lind@example.org"),
        Some(("Prostitution".into(), "sv".into(), "digest".into(), false))
    );

    let listed = p.run(&["subscribers", "list", "--json"]);
    let listed: serde_json::Value = serde_json::from_slice(&listed.stdout).expect("JSON");
    assert_eq!(
        listed["subscribers"][0]["email"], "anna.lind@example.org",
        "{listed:#}"
    );
    assert_eq!(
        listed["subscribers"][0]["topics"],
        serde_json::json!(["Prostitution"])
    );
    assert_eq!(listed["subscribers"][0]["delivery"], "digest");
    assert_eq!(listed["signups_waiting"], 0);

    // A form on another site is refused and changes nothing.
    let r = post("action=leave", "https://evil.example.com");
    assert_eq!(r.status(), 403);
    let r = http
        .post(&link)
        .header("Referer", "https://evil.example.com/page")
        .body("action=pause")
        .send()
        .expect("POST");
    assert_eq!(r.status(), 403);
    assert_eq!(opt_outs(&p), vec![]);
    assert!(!subscriber(&p, "anna.lind@example.org").expect("row").3);

    // Pause and resume; her own choices back to each release, then leave.
    let r = post("action=pause", &origin);
    assert_eq!(r.status(), 200);
    let page = r.text().expect("page");
    assert!(page.contains("Fortsätt skicka till mig"), "{page}");
    assert!(subscriber(&p, "anna.lind@example.org").expect("row").3);
    assert_eq!(post("action=resume", &origin).status(), 200);
    assert_eq!(
        post(
            "action=save&topic=Prostitution&lang=sv&delivery=each",
            &origin
        )
        .status(),
        200
    );
    assert_eq!(
        subscriber(&p, "anna.lind@example.org"),
        Some(("Prostitution".into(), "sv".into(), "each".into(), false))
    );
    let r = post("action=leave", &origin);
    assert_eq!(r.status(), 200);
    let page = r.text().expect("page");
    assert!(
        page.contains("får inga pressmeddelanden från Jämställdhetsmyndigheten")
            && page.contains("value=\"again\">Prenumerera igen</button>"),
        "{page}"
    );
    assert_eq!(
        opt_outs(&p),
        vec![(
            "anna.lind@example.org".to_string(),
            "preferences".to_string()
        )]
    );

    // The next release is on her topic: the daemon and `send` skip her.
    let a_minute_ago = rfc3339(pressroom::clock::now() - chrono::TimeDelta::minutes(1));
    p.write(
        "releases/nasta.md",
        release(
            &format!(
                "title = \"Nästa nyhet\"\ndate = \"{a_minute_ago}\"\ntopics = [\"Prostitution\"]"
            ),
            "Mer text.",
        ),
    );
    wait_for("the next release mailed", Duration::from_secs(20), || {
        server.per_recipient().get("bo.ek@example.com") == Some(&1)
    });
    wait_for("pressroom send", Duration::from_secs(20), || {
        p.run(&["send", "nasta"]).status.success()
    });
    let counts = server.per_recipient();
    assert_eq!(counts.get("anna.lind@example.org"), Some(&1), "{counts:?}");
    assert_eq!(counts.get("bo.ek@example.com"), Some(&1), "{counts:?}");
}

/// Every value of every table of the ledger, as text, with where it is.
fn every_value(p: &Project) -> Vec<(String, String)> {
    let conn = ledger(p);
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
        .expect("tables")
        .query_map([], |r| r.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("names");
    let mut values = Vec::new();
    for table in tables {
        let mut stmt = conn
            .prepare(&format!("SELECT * FROM \"{table}\""))
            .expect("select");
        let names: Vec<String> = stmt.column_names().map(String::from).collect();
        let mut rows = stmt.query([]).expect("query");
        while let Some(row) = rows.next().expect("row") {
            for (i, name) in names.iter().enumerate() {
                let v = match row.get_ref(i).expect("value") {
                    rusqlite::types::ValueRef::Text(t) | rusqlite::types::ValueRef::Blob(t) => {
                        String::from_utf8_lossy(t).into_owned()
                    }
                    other => format!("{other:?}"),
                };
                values.push((format!("{table}.{name}"), v));
            }
        }
    }
    values
}

#[test]
fn export_then_erase_leaves_only_a_keyed_hash_and_send_never_mails_them_again() {
    let dir = tempfile::tempdir().expect("dir");
    let server = SmtpServer::start(dir.path(), 0);
    let p = project_with_smtp(server.port, 0);
    let run = |args: &[&str]| {
        let o = p.run(args);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        String::from_utf8(o.stdout).expect("utf-8")
    };
    run(&["send", SAMPLE_SLUG]);
    run(&["send", SAMPLE_SLUG, "--to", "Anna.Lind@example.org"]);
    run(&["unsubscribe", "anna.lind@example.org"]);
    run(&["resubscribe", "ANNA.LIND@example.org"]);
    assert_eq!(
        server.per_recipient().get("anna.lind@example.org"),
        Some(&2)
    );

    let export: serde_json::Value =
        serde_json::from_str(&run(&["subscribers", "export", "Anna.Lind@Example.org"]))
            .expect("JSON");
    let deliveries = export["deliveries"].as_array().expect("deliveries");
    assert_eq!(deliveries.len(), 1, "{export:#}");
    assert_eq!(deliveries[0]["state"], "sent", "{export:#}");
    assert!(
        deliveries[0]["message_id"]
            .as_str()
            .is_some_and(|m| m.starts_with('<'))
            && deliveries[0]["sent_at"].is_string()
            && deliveries[0]["last_reply"].is_string(),
        "{export:#}"
    );
    assert_eq!(export["test_sends"].as_array().map(Vec::len), Some(1));
    assert_eq!(export["optout_log"].as_array().map(Vec::len), Some(2));
    assert_eq!(export["optouts"].as_array().map(Vec::len), Some(0));
    let listed = export["audience"].as_array().expect("audience");
    assert!(
        !listed.is_empty() && listed.iter().all(|r| r["name"] == "Anna Lind"),
        "{export:#}"
    );
    assert_eq!(export["erased"], false);
    assert!(
        !export.to_string().contains("token_hash"),
        "a sign-up's token hash is ours, not theirs"
    );

    let said = run(&["subscribers", "erase", "ANNA.lind@example.ORG"]);
    assert!(said.starts_with("erased anna.lind@example.org"), "{said}");
    let values = every_value(&p);
    let found: Vec<_> = values
        .iter()
        .filter(|(_, v)| v.to_lowercase().contains("anna.lind@example.org"))
        .collect();
    assert!(found.is_empty(), "the address is still held: {found:?}");
    let names: Vec<_> = values
        .iter()
        .filter(|(_, v)| v.contains("Anna Lind"))
        .collect();
    assert!(names.is_empty(), "her name is still held: {names:?}");
    let hashes: Vec<_> = values
        .iter()
        .filter(|(at, _)| at.starts_with("erasures.hash"))
        .collect();
    assert!(
        hashes.len() == 1 && hashes[0].1.len() == 64,
        "one keyed hash: {hashes:?}"
    );
    // Nor in the file's bytes: deleted rows are overwritten, the log emptied.
    for file in ["pressroom.db", "pressroom.db-wal"] {
        let bytes = std::fs::read(p.path().join("state").join(file)).unwrap_or_default();
        let lower = String::from_utf8_lossy(&bytes).to_lowercase();
        assert!(
            !lower.contains("anna.lind@example.org"),
            "{file} still holds the address"
        );
    }
    let export: serde_json::Value =
        serde_json::from_str(&run(&["subscribers", "export", "anna.lind@example.org"]))
            .expect("JSON");
    assert_eq!(export["erased"], true, "{export:#}");
    // The office cannot undo it: only she can, from a link mailed to her.
    let said = run(&["resubscribe", "anna.lind@example.org"]);
    assert!(said.starts_with("erased at their request"), "{said}");

    // media.csv still lists her, and the office adds someone (the list is read again):
    // the next release reaches everyone else, not her.
    let media = std::fs::read_to_string(p.path().join("config/media.csv")).expect("media");
    p.write(
        "config/media.csv",
        format!("{media}eva.ny@example.org,Eva Ny,Ny Tidning,,\n"),
    );
    p.write(
        "releases/2018-10-19-nasta.md",
        release(
            "title = \"Nästa nyhet\"\ndate = 2018-10-19\ntopics = [\"Prostitution\", \"Jämställdhet\"]",
            "Mer text.",
        ),
    );
    let sent = p.run(&["send", "nasta"]);
    assert!(sent.status.success(), "{}", stderr(&sent));
    let counts = server.per_recipient();
    assert_eq!(counts.get("anna.lind@example.org"), Some(&2), "{counts:?}");
    assert_eq!(counts.get("bo.ek@example.com"), Some(&2), "{counts:?}");
    assert_eq!(
        counts.get("cecilia.berg@example.org"),
        Some(&2),
        "{counts:?}"
    );
    assert_eq!(counts.get("eva.ny@example.org"), Some(&1), "{counts:?}");
    let check = p.run(&["check"]);
    assert!(
        stderr(&check).contains("erased at their request; remove it from media.csv"),
        "{}",
        stderr(&check)
    );
    let values = every_value(&p);
    assert!(
        !values
            .iter()
            .any(|(_, v)| v.to_lowercase().contains("anna.lind@example.org")),
        "the sync brought her back"
    );
}

/// The attachment named `name` of a raw message, decoded.
fn attachment(raw: &[u8], name: &str) -> Option<String> {
    let m = mail_parser::MessageParser::default().parse(raw)?;
    m.attachments()
        .find(|a| a.attachment_name() == Some(name))
        .map(|a| String::from_utf8_lossy(a.contents()).into_owned())
}

/// The URL in a message's text part that starts with `prefix`.
fn link_in(raw: &[u8], prefix: &str) -> String {
    let m = mail_parser::MessageParser::default()
        .parse(raw)
        .expect("parses");
    let text = m.body_text(0).expect("text").into_owned();
    text.split_whitespace()
        .find(|w| w.starts_with(prefix))
        .unwrap_or_else(|| panic!("no link {prefix:?} in:\n{text}"))
        .to_string()
}

#[test]
fn their_data_and_their_erasure_are_confirmed_by_a_mail_to_their_own_address() {
    let (dir, server, p, port) = with_smtp(0);
    let base = format!("http://127.0.0.1:{port}/");
    let origin = format!("http://127.0.0.1:{port}");
    let an_hour_ago = rfc3339(pressroom::clock::now() - chrono::TimeDelta::hours(1));
    p.write(
        "releases/forsta.md",
        release(
            &format!("title = \"Första nyheten\"\ndate = \"{an_hour_ago}\""),
            "Text.",
        ),
    );
    let _daemon = Daemon::start(&p);
    let http = client();
    wait_for("the first mail", Duration::from_secs(20), || {
        server.count() == 1
    });
    let (to, raw) = server.messages().remove(0);
    assert_eq!(to, "anna.lind@example.org");
    let link = href_with(&html_part(&raw), "/preferences/");
    let post = |url: &str, body: &str| {
        http.post(url)
            .header("Origin", &origin)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body.to_string())
            .send()
            .expect("POST")
    };
    let mailed_to_anna = || {
        server
            .messages()
            .into_iter()
            .filter(|(to, _)| to == "anna.lind@example.org")
            .map(|(_, raw)| raw)
            .collect::<Vec<_>>()
    };

    // Every page and letter on the way, for the HTML checker at the end.
    let mut pages: Vec<(&str, String)> = vec![(
        "preferences",
        http.get(&link).send().expect("GET").text().expect("page"),
    )];
    // "Send me my data": a mail to her address with everything held, as JSON.
    let r = post(&link, "action=export");
    assert_eq!(r.status(), 200);
    let page = r.text().expect("page");
    assert!(
        page.contains("Vi har mejlat allt vi har om"),
        "the page says where it went"
    );
    pages.push(("data-sent", page));
    wait_for("her data", Duration::from_secs(10), || {
        mailed_to_anna().len() == 2
    });
    let data = attachment(&mailed_to_anna()[1], "data.json").expect("data.json");
    let data: serde_json::Value = serde_json::from_str(&data).expect("JSON");
    assert_eq!(data["address"], "anna.lind@example.org", "{data:#}");
    assert_eq!(
        data["deliveries"].as_array().map(Vec::len),
        Some(1),
        "{data:#}"
    );

    // "Delete me": a mail with an erase link, which asks on GET and erases on POST.
    let r = post(&link, "action=erase");
    assert_eq!(r.status(), 200);
    // Pressed again within the minute: the same answer, no second mail.
    assert_eq!(post(&link, "action=erase").status(), 200);
    wait_for("the erase link", Duration::from_secs(10), || {
        mailed_to_anna().len() == 3
    });
    let erase = link_in(&mailed_to_anna()[2], &format!("{base}erase/"));
    let page = http.get(&erase).send().expect("GET");
    assert_eq!(page.status(), 200);
    let page = page.text().expect("page");
    assert!(
        page.contains("Radera mina uppgifter</button>") && !page.contains("anna.lind"),
        "{page}"
    );
    pages.push(("erase", page));
    pages.push(("erase-letter", html_part(&mailed_to_anna()[2])));
    assert!(subscriber_or_listed(&p), "a GET erased her");
    let cross = http
        .post(&erase)
        .header("Origin", "https://evil.example.com")
        .send()
        .expect("POST");
    assert_eq!(cross.status(), 403);
    assert!(subscriber_or_listed(&p), "a cross-site POST erased her");
    let r = post(&erase, "");
    assert_eq!(r.status(), 200);
    let page = r.text().expect("page");
    assert!(page.contains("<h1>Dina uppgifter är raderade</h1>"));
    pages.push(("erased", page));
    // Used, the link says it is done and offers nothing to press.
    let used = http.get(&erase).send().expect("GET").text().expect("page");
    assert!(
        used.contains("<h1>Dina uppgifter är raderade</h1>") && !used.contains("method=\"post\""),
        "{used}"
    );
    assert!(!subscriber_or_listed(&p), "still held after the erase");
    // Her old link writes nothing about her again (a forwarded mail, a second tab).
    assert_eq!(post(&link, "action=save&topic=Prostitution").status(), 200);
    assert_eq!(post(&link, "action=pause").status(), 200);
    assert_eq!(subscriber(&p, "anna.lind@example.org"), None);
    assert_eq!(opt_outs(&p), vec![]);

    // Her old link now says she gets nothing, and offers to subscribe again: through a
    // mail to her address, whose link lifts the erasure.
    let page = http.get(&link).send().expect("GET").text().expect("page");
    assert!(page.contains("value=\"again\">Prenumerera igen"), "{page}");
    pages.push(("opted-out", page));
    assert_eq!(mailed_to_anna().len(), 3);
    assert_eq!(post(&link, "action=again").status(), 200);
    wait_for("the subscribe-again link", Duration::from_secs(10), || {
        mailed_to_anna().len() == 4
    });
    let again = link_in(&mailed_to_anna()[3], &format!("{base}resubscribe/"));
    let page = http.get(&again).send().expect("GET").text().expect("page");
    assert!(page.contains("Prenumerera igen</button>"), "{page}");
    pages.push(("again", page));
    pages.push(("again-letter", html_part(&mailed_to_anna()[3])));
    let still = http.get(&link).send().expect("GET").text().expect("page");
    assert!(
        still.contains("value=\"again\""),
        "a GET subscribed her again"
    );

    // A forged or expired link does nothing.
    let key = pressroom::optout::TokenKey::load_or_create(&p.path().join("state"), None)
        .expect("the key");
    let past = pressroom::clock::now().timestamp() - 1;
    let expired = key.timed_token(
        pressroom::optout::Purpose::Resubscribe,
        "anna.lind@example.org",
        past,
    );
    let expired = format!("{base}resubscribe/{expired}");
    assert_eq!(http.get(&expired).send().expect("GET").status(), 400);
    assert_eq!(post(&expired, "").status(), 400);
    let erase_token = key.timed_token(
        pressroom::optout::Purpose::Erase,
        "anna.lind@example.org",
        past + 3600,
    );
    assert_eq!(
        post(&format!("{base}resubscribe/{erase_token}"), "").status(),
        400,
        "an erase token is no resubscribe token"
    );
    let r = post(&again, "");
    assert_eq!(r.status(), 200);
    let page = r.text().expect("page");
    assert!(page.contains("<h1>Du får pressmeddelanden igen</h1>"));
    pages.push(("resubscribed", page));
    let page = http.get(&link).send().expect("GET").text().expect("page");
    assert!(!page.contains("value=\"again\""), "{page}");
    let used = http.get(&again).send().expect("GET").text().expect("page");
    assert!(
        used.contains("<h1>Du får pressmeddelanden igen</h1>") && !used.contains("method=\"post\""),
        "{used}"
    );
    // No link of these carries her address, in any encoding.
    for url in [&link, &erase, &again] {
        super::tokens::assert_hidden(url, "anna.lind@example.org");
    }
    let files: Vec<std::path::PathBuf> = pages
        .iter()
        .map(|(name, html)| {
            let path = dir.path().join(format!("{name}.html"));
            std::fs::write(&path, html).expect("write");
            path
        })
        .collect();
    super::html::assert_valid_html(&files);
}

/// Whether the ledger still holds Anna anywhere (her media-list rows or her deliveries).
fn subscriber_or_listed(p: &Project) -> bool {
    let conn = ledger(p);
    let n: i64 = conn
        .query_row(
            "SELECT (SELECT count(*) FROM audience WHERE address = 'anna.lind@example.org')
                  + (SELECT count(*) FROM deliveries WHERE address = 'anna.lind@example.org')",
            [],
            |r| r.get(0),
        )
        .expect("count");
    n > 0
}
