//! Unsubscribe tokens as a journalist's mail and the pages behind its links carry them: no
//! link shows whose it is in any encoding, links of mails sent before (format 1,
//! `base64url(address).mac`) still unsubscribe, the `mailto:` unsubscribe goes only to a
//! mailbox named for it, and a mail sent there, piped into `pressroom unsubscribe
//! --from-mail`, records the opt-out.

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};

use super::daemon::{Daemon, client, rfc3339, wait_for, with_smtp};
use super::smtp::{SmtpServer, project_with_smtp};
use super::unsubscribe::html_part;
use super::*;

const ANNA: &str = "anna.lind@example.org";
const MAILBOX: &str = "unsubscribe@example.org";

/// Names `MAILBOX` in `[subscribe]`.
fn with_mailbox(p: &Project) {
    p.set_config(
        "# unsubscribe_mailbox = \"unsubscribe@example.org\"",
        &format!("unsubscribe_mailbox = \"{MAILBOX}\""),
    );
}

/// The key the project's commands and daemon use (made at first use).
fn key_of(p: &Project) -> pressroom::optout::TokenKey {
    let key = std::fs::read(p.path().join("state").join(pressroom::optout::KEY_NAME))
        .expect("the unsubscribe key");
    pressroom::optout::TokenKey::from_bytes(
        key.get(..32)
            .and_then(|k| k.try_into().ok())
            .expect("32 bytes"),
    )
}

/// Every URL in a text: `href`/`src`/`action` attributes, `<…>` in headers, and bare
/// `http(s)://` or `mailto:` words.
pub fn urls(text: &str) -> Vec<String> {
    let text = text.replace("&amp;", "&");
    let mut found = Vec::new();
    for start in ["http://", "https://", "mailto:"] {
        let mut rest = text.as_str();
        while let Some(at) = rest.find(start) {
            let url: String = rest[at..]
                .chars()
                .take_while(|c| !c.is_whitespace() && !"\"'<>".contains(*c))
                .collect();
            rest = &rest[at + url.len().max(1)..];
            found.push(url);
        }
    }
    found
}

/// Every way the address could hide in one piece of a URL: as it is, percent-decoded,
/// base64 (standard or URL-safe, padded or not, from any of the first four offsets), hex
/// (from either of the first two offsets); each decoding lowercased.
fn decodings(piece: &str) -> Vec<String> {
    let mut out = vec![piece.to_string()];
    let unescaped = percent_encoding::percent_decode_str(piece)
        .decode_utf8_lossy()
        .into_owned();
    out.push(unescaped.clone());
    for s in [piece, unescaped.as_str()] {
        for offset in 0..4 {
            let Some(tail) = s.get(offset..) else {
                continue;
            };
            for engine in [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD] {
                // A length base64 cannot have is cut to the longest it can.
                let cut = &tail[..tail.len() - tail.len() % 4];
                for candidate in [tail, cut] {
                    if let Ok(bytes) = engine.decode(candidate) {
                        out.push(String::from_utf8_lossy(&bytes).into_owned());
                    }
                }
            }
        }
        for offset in 0..2 {
            let Some(tail) = s.get(offset..) else {
                continue;
            };
            let hex: Vec<u8> = tail
                .as_bytes()
                .chunks_exact(2)
                .map_while(|pair| u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok())
                .collect();
            out.push(String::from_utf8_lossy(&hex).into_owned());
        }
    }
    out.into_iter().map(|s| s.to_lowercase()).collect()
}

/// Fails if a URL carries `address` (or its local part) in any encoding `decodings` tries,
/// in any piece: path segments, query keys and values, split again at `.`, `~`, `+`, `=`
/// and spaces (a format-1 token is two base64 words around a dot). Returns how many
/// pieces it decoded.
pub fn assert_hidden(url: &str, address: &str) -> usize {
    let local = address.split('@').next().expect("a local part");
    let unescaped = percent_encoding::percent_decode_str(url)
        .decode_utf8_lossy()
        .into_owned();
    let mut pieces = 0;
    for piece in unescaped
        .split(['/', '?', '&', '=', '.', '~', '+', ' ', ':', '#'])
        .chain(url.split(['/', '?', '&', '=']))
        .filter(|p| !p.is_empty())
    {
        pieces += 1;
        for decoded in decodings(piece) {
            assert!(
                !decoded.contains(address) && !decoded.contains(local),
                "{url} carries {address}: {piece:?} decodes to {decoded:?}"
            );
        }
    }
    pieces
}

#[test]
fn no_link_in_a_mail_or_the_pages_behind_it_carries_the_address_in_any_encoding() {
    let (_dir, server, p, _port) = with_smtp(0);
    with_mailbox(&p);
    let an_hour_ago = rfc3339(pressroom::clock::now() - chrono::TimeDelta::hours(1));
    p.write(
        "releases/forsta.md",
        release(
            &format!("title = \"Första nyheten\"\ndate = \"{an_hour_ago}\""),
            "Text with [a link](https://example.com/report).",
        ),
    );
    let _daemon = Daemon::start(&p);
    wait_for("anna's mail", Duration::from_secs(20), || {
        server.messages().iter().any(|(to, _)| to == ANNA)
    });
    let (_, raw) = server
        .messages()
        .into_iter()
        .find(|(to, _)| to == ANNA)
        .expect("anna's copy");
    let m = mail_parser::MessageParser::default()
        .parse(&raw)
        .expect("the message parses");
    let list_unsubscribe = m
        .header_raw("List-Unsubscribe")
        .expect("List-Unsubscribe")
        .to_string();
    let mut links = urls(&list_unsubscribe);
    assert!(
        links
            .iter()
            .any(|l| l.starts_with(&format!("mailto:{MAILBOX}?"))),
        "{list_unsubscribe}"
    );
    links.extend(urls(&html_part(&raw)));
    links.extend(urls(&m.body_text(0).expect("a text part")));
    // Every header, not only List-Unsubscribe.
    let head = String::from_utf8_lossy(&raw[..m.root_part().offset_body as usize]).into_owned();
    links.extend(urls(&head));

    // The pages behind each unsubscribe link: the question, the answer to its button (and
    // to a one-click), the undo's answer; every link and form on them.
    let http = client();
    let pages: Vec<String> = links
        .clone()
        .into_iter()
        .filter(|l| l.contains("/unsubscribe/"))
        .flat_map(|link| {
            let undo = match link.split_once('?') {
                Some((path, query)) => format!("{path}/undo?{query}"),
                None => format!("{link}/undo"),
            };
            let get = http.get(&link).send().expect("GET").text().expect("page");
            let post = |url: &str, accept: &str| {
                http.post(url)
                    .header("Accept", accept)
                    .body("List-Unsubscribe=One-Click")
                    .send()
                    .expect("POST")
                    .text()
                    .expect("page")
            };
            vec![
                get,
                post(&link, "text/html"),
                post(&undo, "text/html"),
                post(&link, "*/*"),
            ]
        })
        .collect();
    assert!(pages.len() >= 8, "the header's link and the footer's");
    // The preferences page behind the footer's other link, and its form.
    let preferences: Vec<String> = links
        .iter()
        .filter(|l| l.contains("/preferences/"))
        .map(|l| http.get(l).send().expect("GET").text().expect("page"))
        .collect();
    assert!(!preferences.is_empty(), "no preferences link in {links:#?}");
    let pages: Vec<String> = pages.into_iter().chain(preferences).collect();
    for page in &pages {
        assert!(page.contains("a…\u{2060}@example.org"), "{page}");
        links.extend(urls(page));
    }
    let unsubscribe_links = links.iter().filter(|l| l.contains("unsubscribe")).count();
    assert!(unsubscribe_links >= 10, "{links:#?}");
    let pieces: usize = links.iter().map(|l| assert_hidden(l, ANNA)).sum();
    assert!(pieces > 50, "{pieces} pieces of {} links", links.len());
    // The opt-out was recorded by one of those links: they name anna, hidden.
    let opted: String = p
        .run(&["unsubscribe", ANNA])
        .stdout
        .iter()
        .map(|&b| b as char)
        .collect();
    assert!(opted.starts_with("already unsubscribed"), "{opted}");
}

#[test]
fn a_link_in_the_old_format_still_unsubscribes_on_its_page_its_button_and_one_click() {
    let (p, port) = super::daemon::sample_served();
    let daemon = Daemon::start(&p);
    let key = key_of(&p);
    let base = format!("http://127.0.0.1:{port}");
    let old = |address: &str| format!("{base}/unsubscribe/{}", key.legacy_token(address));
    let anna = old(ANNA);
    assert!(
        anna.contains(&format!("{}.", URL_SAFE_NO_PAD.encode(ANNA))),
        "the old format: {anna}"
    );
    let http = client();
    let opt_outs = || -> Vec<String> {
        let conn = rusqlite::Connection::open_with_flags(
            p.path().join("state/pressroom.db"),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .expect("open the ledger");
        let mut stmt = conn
            .prepare("SELECT address || ' ' || source FROM optouts ORDER BY address")
            .expect("select");
        stmt.query_map([], |r| r.get(0))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows")
    };

    // The page asks, naming her masked, and its buttons post to links of the new format.
    let r = http.get(&anna).send().expect("GET");
    assert_eq!(r.status(), 200);
    let page = r.text().expect("page");
    assert!(page.contains("a…\u{2060}@example.org"), "{page}");
    let action = format!("action=\"{base}/unsubscribe/{}\"", key.token(ANNA));
    assert!(page.contains(&action), "{page}");
    assert!(!page.contains(&anna), "the old link is made again:\n{page}");
    assert_eq!(opt_outs(), Vec::<String>::new());

    // The old link's button (a browser's POST to it).
    let r = http
        .post(&anna)
        .header("Accept", "text/html")
        .body("List-Unsubscribe=One-Click")
        .send()
        .expect("POST");
    assert_eq!(r.status(), 200);
    assert_eq!(opt_outs(), vec![format!("{ANNA} link")]);
    // Its undo.
    let r = http
        .post(format!("{anna}/undo"))
        .header("Accept", "text/html")
        .send()
        .expect("undo");
    assert_eq!(r.status(), 200);
    assert_eq!(opt_outs(), Vec::<String>::new());

    // A mail client's one-click to an old List-Unsubscribe.
    let bo = "bo.ek@example.com";
    let r = http
        .post(old(bo))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .expect("one-click");
    assert_eq!(r.status(), 200);
    assert_eq!(opt_outs(), vec![format!("{bo} one-click")]);

    // An old link with another's address in front of anna's MAC opts out nobody.
    let (_, mac) = key
        .legacy_token(ANNA)
        .split_once('.')
        .map(|(a, m)| (a.to_string(), m.to_string()))
        .expect("a dot");
    let forged = format!(
        "{base}/unsubscribe/{}.{mac}",
        URL_SAFE_NO_PAD.encode("cecilia.berg@example.org")
    );
    let r = http
        .post(&forged)
        .body("List-Unsubscribe=One-Click")
        .send()
        .expect("forged");
    assert_eq!(r.status(), 400);
    assert_eq!(opt_outs(), vec![format!("{bo} one-click")]);
    drop(daemon);
}

/// The `List-Unsubscribe` header of anna's preview, unfolded.
fn list_unsubscribe(p: &Project) -> String {
    let o = p.run(&["preview", "du-avgor", "--recipient", ANNA, "--eml"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let m = mail_parser::MessageParser::default()
        .parse(&o.stdout)
        .expect("parse");
    m.header_raw("List-Unsubscribe")
        .expect("List-Unsubscribe")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn the_mailto_unsubscribe_goes_only_to_a_mailbox_named_for_it_never_the_reply_to() {
    let p = Project::sample();
    // The sample has a reply_to (press@jamy.se): a person's inbox.
    let header = list_unsubscribe(&p);
    let key = key_of(&p);
    let https = format!("<http://127.0.0.1:8080/unsubscribe/{}>", key.token(ANNA));
    assert_eq!(header, https, "only the https link without a mailbox");

    with_mailbox(&p);
    let header = list_unsubscribe(&p);
    assert_eq!(
        header,
        format!(
            "{https}, <mailto:{MAILBOX}?subject=unsubscribe%20{}>",
            key.token(ANNA)
        )
    );
    assert!(!header.contains("jamy.se"), "{header}");

    // A mailbox that is not an address alone is refused at its line.
    p.set_config(
        &format!("unsubscribe_mailbox = \"{MAILBOX}\""),
        "unsubscribe_mailbox = \"Unsubscribe <unsubscribe@example.org>\"",
    );
    let o = p.run(&["check"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("pressroom.toml:")
            && err.contains("an ASCII address alone, like unsubscribe@example.org"),
        "{err}"
    );
}

/// `pressroom unsubscribe --from-mail` with `mail` on stdin, as an MTA's pipe runs it.
fn pipe(p: &Project, mail: &[u8]) -> std::process::Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_pressroom"))
        .arg("--config")
        .arg(p.path().join("config/pressroom.toml"))
        .args(["unsubscribe", "--from-mail"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run pressroom");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(mail)
        .expect("write the mail");
    child.wait_with_output().expect("wait")
}

#[test]
fn an_unsubscribe_mail_piped_in_by_the_mta_opts_out_and_send_skips_them() {
    let dir = tempfile::tempdir().expect("dir");
    let server = SmtpServer::start(dir.path(), 0);
    let p = project_with_smtp(server.port, 0);
    with_mailbox(&p);

    // The mailto: link of anna's mail, as her mail client opens it.
    let header = list_unsubscribe(&p);
    let mailto = header
        .split(['<', '>'])
        .find(|s| s.starts_with("mailto:"))
        .expect("a mailto link");
    let (to, query) = mailto
        .trim_start_matches("mailto:")
        .split_once('?')
        .expect("a query");
    assert_eq!(to, MAILBOX);
    let subject = url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "subject")
        .map(|(_, v)| v.into_owned())
        .expect("a subject");
    assert!(subject.starts_with("unsubscribe "), "{subject}");
    // What the client sends, as the MTA hands it on: a Received line, folded headers,
    // the subject as RFC 2047 words (as clients write a long subject), a signature.
    let words: Vec<String> = subject
        .as_bytes()
        .chunks(30)
        .map(|c| format!("=?UTF-8?B?{}?=", STANDARD.encode(c)))
        .collect();
    let mail = format!(
        "Return-Path: <{ANNA}>\r\n\
         Received: from mail.example.org by mx.example.org; Mon, 1 Dec 2025 09:00:00 +0100\r\n\
         From: Anna Lind <{ANNA}>\r\n\
         To: {MAILBOX}\r\n\
         Subject: {}\r\n\
         Date: Mon, 1 Dec 2025 09:00:00 +0100\r\n\
         Message-ID: <abc@example.org>\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\
         \r\n\
         This message was automatically generated by my mail client.\r\n\
         --\r\nAnna\r\n",
        words.join("\r\n ")
    );
    let o = pipe(&p, mail.as_bytes());
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        out.contains(&format!(
            "unsubscribed by mail: nothing more will be mailed to {ANNA}"
        )),
        "{out}"
    );
    let conn = rusqlite::Connection::open(p.path().join("state/pressroom.db")).expect("ledger");
    let source: String = conn
        .query_row(
            "SELECT source FROM optouts WHERE address = ?1",
            [ANNA],
            |r| r.get(0),
        )
        .expect("anna's opt-out");
    assert_eq!(source, "mail");

    // Junk to the same mailbox: ignored, exit 0 (no bounce to a forged sender), nothing
    // recorded. A token with one character changed is junk too.
    let token = subject.trim_start_matches("unsubscribe ");
    let mut changed = token.to_string();
    let last = if changed.ends_with('A') { "B" } else { "A" };
    changed.replace_range(changed.len() - 1.., last);
    for junk in [
        "From: x@example.com\r\nTo: unsubscribe@example.org\r\nSubject: Buy now\r\n\r\nSpam\r\n"
            .to_string(),
        format!("From: x@example.com\r\nSubject: unsubscribe {changed}\r\n\r\n"),
        "not a mail at all".to_string(),
    ] {
        let o = pipe(&p, junk.as_bytes());
        assert_eq!(o.status.code(), Some(0), "{junk}");
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("ignored"),
            "{junk}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let count: i64 = conn
        .query_row("SELECT count(*) FROM optouts", [], |r| r.get(0))
        .expect("count");
    assert_eq!(count, 1, "junk recorded an opt-out");
    drop(conn);

    // A config with an error (being edited as the mail arrives): exit 75, so the MTA
    // keeps the mail and tries again, rather than 1, which it bounces.
    let config = std::fs::read_to_string(p.path().join("config/pressroom.toml")).expect("config");
    p.write("config/pressroom.toml", format!("{config}\n[site\n"));
    let o = pipe(&p, mail.as_bytes());
    assert_eq!(
        o.status.code(),
        Some(75),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    p.write("config/pressroom.toml", &config);

    // The release goes to the others, not to anna.
    let o = p.run(&["send", "du-avgor"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let got = server.per_recipient();
    assert!(!got.contains_key(ANNA), "{got:?}");
    assert!(got.contains_key("bo.ek@example.com"), "{got:?}");
}
