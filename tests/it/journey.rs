//! A journalist subscribes themselves, as a person does it: in a real browser (headless
//! Chromium over WebDriver, `tests/browser/journey.py`, driven a step at a time), against
//! the real daemon and a real SMTP server. They fill the form on the front page, open the
//! confirmation mail's link and confirm; the next release is mailed to them, once; from
//! that mail's preferences link they change to another topic and the daily digest; the
//! next digest (the daemon started again with the digest due seconds later, as the next
//! morning would have it) holds exactly the release of their new topic, not the one of
//! their old topic nor one still embargoed at the digest's instant; they unsubscribe from
//! the digest's link; nothing more arrives. Every page on the way passes axe-core.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Timelike, Utc};

use super::daemon::{Daemon, client, get, rfc3339, wait_for, with_smtp};
use super::smtp::SmtpServer;
use super::*;

const ADA: &str = "ada.journalist@example.com";

/// The browser, one JSON command per line (`tests/browser/journey.py`).
struct Browser {
    child: Child,
    to: ChildStdin,
    from: BufReader<ChildStdout>,
}

impl Browser {
    fn start() -> Browser {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/journey.py");
        let mut child = Command::new("python3")
            .arg(&path)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 runs (.ci/install-test-tools.sh)");
        let to = child.stdin.take().expect("stdin");
        let from = BufReader::new(child.stdout.take().expect("stdout"));
        Browser { child, to, from }
    }

    fn send(&mut self, command: serde_json::Value) -> serde_json::Value {
        writeln!(self.to, "{command}").expect("to the browser");
        self.to.flush().expect("flush");
        let mut line = String::new();
        self.from.read_line(&mut line).expect("from the browser");
        assert!(
            !line.is_empty(),
            "the browser stopped (exit {:?}) after {command}",
            self.child.try_wait()
        );
        let answer: serde_json::Value = serde_json::from_str(&line).expect("JSON");
        assert!(
            answer.get("error").is_none(),
            "{command}: {}",
            answer["error"]
        );
        answer
    }

    fn open(&mut self, url: &str) -> String {
        self.send(serde_json::json!({ "open": url }))["text"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    fn press(&mut self, selector: &str) -> String {
        self.send(serde_json::json!({ "press": selector }))["text"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// check.py's checks of the page shown (axe-core among them) with these texts on it.
    fn check(&mut self, texts: &[&str]) {
        let answer = self.send(serde_json::json!({ "check": { "texts": texts } }));
        let problems = answer["problems"].as_array().cloned().unwrap_or_default();
        assert!(problems.is_empty(), "{problems:#?}");
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = writeln!(self.to, "{{\"quit\": true}}");
        let _ = self.to.flush();
        std::thread::sleep(Duration::from_millis(200));
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Ada's mail at the server, in arrival order: (subject, plain text).
fn adas(server: &SmtpServer) -> Vec<(String, String)> {
    server
        .received()
        .into_iter()
        .filter(|m| m.1 == ADA)
        .map(|(_, _, raw)| {
            let m = mail_parser::MessageParser::default()
                .parse(&raw)
                .expect("parse");
            (
                m.subject().unwrap_or_default().to_string(),
                m.body_text(0).unwrap_or_default().into_owned(),
            )
        })
        .collect()
}

/// The first URL in `text` under `path` (`/confirm/`, `/preferences/`, …).
fn link(text: &str, path: &str) -> String {
    text.split_whitespace()
        .find(|w| w.starts_with("http") && w.contains(path))
        .unwrap_or_else(|| panic!("no {path} link in:\n{text}"))
        .trim_end_matches(['.', ',', ')', '>'])
        .to_string()
}

/// A release file of `topic` dated `date`.
fn write_release(p: &Project, name: &str, title: &str, topic: &str, date: DateTime<Utc>) {
    p.write(
        &format!("releases/{name}.md"),
        release(
            &format!(
                "title = \"{title}\"\ndate = \"{}\"\ntopics = [\"{topic}\"]",
                rfc3339(date)
            ),
            &format!("{title}: texten."),
        ),
    );
}

#[test]
fn a_journalist_signs_up_confirms_is_mailed_once_changes_to_a_digest_and_leaves() {
    let (_dir, server, p, _port) = with_smtp(0);
    let daemon = Daemon::start(&p);
    let http = client();
    wait_for("the site", Duration::from_secs(20), || {
        get(&http, &daemon.base, "/").0 == 200
    });
    let base = daemon.base.clone();
    let mut browser = Browser::start();

    // The form on the front page: an address, a name, one topic; each release.
    browser.open(&format!("{base}/"));
    browser.send(serde_json::json!({ "fill": [
        ["#signup-email", ADA], ["#signup-name", "Ada Journalist"], ["#signup-outlet", "Exempelposten"]
    ]}));
    browser.send(serde_json::json!({ "tick": ["input[name=topic][value=\"Människohandel\"]"] }));
    let answer = browser.press("form.signup button[type=submit]");
    assert!(answer.contains("Titta i din inkorg"), "{answer}");
    browser.check(&["Titta i din inkorg"]);

    // The confirmation mail, and nothing else, reaches her; its link asks, the button confirms.
    wait_for("the confirmation mail", Duration::from_secs(20), || {
        !adas(&server).is_empty()
    });
    let mail = adas(&server);
    assert_eq!(mail.len(), 1, "{mail:?}");
    let confirm = link(&mail[0].1, "/confirm/");
    browser.open(&confirm);
    browser.check(&["Bekräfta prenumerationen"]);
    let answer = browser.press("form[method=post] button[type=submit]");
    assert!(answer.contains("Du prenumererar nu"), "{answer}");
    browser.check(&["Du prenumererar nu"]);

    // The next release of her topic reaches her, once.
    let now = pressroom::clock::now();
    write_release(
        &p,
        "hamnen",
        "Människohandel i hamnarna kartläggs",
        "Människohandel",
        now - TimeDelta::minutes(1),
    );
    wait_for("the release mailed to her", Duration::from_secs(30), || {
        adas(&server).len() >= 2
    });
    // Anna (the media list) is mailed it too: by then anything more to Ada would be there.
    wait_for(
        "the release mailed to the list",
        Duration::from_secs(30),
        || {
            server
                .received()
                .iter()
                .any(|m| m.1 == "anna.lind@example.org")
        },
    );
    std::thread::sleep(Duration::from_secs(2));
    let mail = adas(&server);
    assert_eq!(mail.len(), 2, "once: {mail:?}");
    assert!(
        mail[1].0.contains("Människohandel i hamnarna kartläggs"),
        "{}",
        mail[1].0
    );

    // From that mail's preferences link: another topic, and the daily digest.
    let preferences = link(&mail[1].1, "/preferences/");
    browser.open(&preferences);
    browser.check(&["Dina inställningar"]);
    browser.send(serde_json::json!({
        "untick": ["input[name=all_topics]", "input[name=topic][value=\"Människohandel\"]"]
    }));
    browser.send(serde_json::json!({ "tick": [
        "input[name=topic][value=\"Jämställdhet\"]", "input[name=delivery][value=digest]"
    ]}));
    let answer = browser.press("button[name=action][value=save]");
    assert!(answer.contains("Dina val är sparade"), "{answer}");
    browser.check(&["Dina val är sparade"]);
    drop(daemon);

    // The next morning: the daemon starts again with the daily digest due in 20 seconds
    // (site time). Published meanwhile (after her change: what came before it she was
    // mailed one by one): one release of her new topic, one of her old; one of her new
    // topic is dated after the digest's instant.
    std::thread::sleep(Duration::from_millis(1500));
    let now = pressroom::clock::now();
    let at = (now + TimeDelta::seconds(20)).with_timezone(&chrono_tz::Europe::Stockholm);
    p.set_config(
        "digest = \"0 0 7 * * *\"",
        &format!(
            "digest = \"{} {} {} * * *\"",
            at.second(),
            at.minute(),
            at.hour()
        ),
    );
    write_release(
        &p,
        "skolan",
        "Jämställdhet i skolan granskas",
        "Jämställdhet",
        now,
    );
    write_release(
        &p,
        "gransen",
        "Människohandel över gränsen",
        "Människohandel",
        now,
    );
    write_release(
        &p,
        "senare",
        "Jämställdhet på arbetsplatsen",
        "Jämställdhet",
        now + TimeDelta::minutes(2),
    );
    let daemon = Daemon::start(&p);
    wait_for("the digest", Duration::from_secs(60), || {
        adas(&server).len() >= 3
    });
    let mail = adas(&server);
    assert_eq!(mail.len(), 3, "{mail:?}");
    let (subject, text) = &mail[2];
    assert!(subject.starts_with("Pressmeddelanden "), "{subject}");
    assert!(text.contains("Jämställdhet i skolan granskas"), "{text}");
    for absent in [
        "Människohandel över gränsen",
        "Jämställdhet på arbetsplatsen",
        "Människohandel i hamnarna kartläggs",
    ] {
        assert!(!text.contains(absent), "{absent} in the digest:\n{text}");
    }

    // She leaves from the digest's own link.
    let unsubscribe = link(text, "/unsubscribe/");
    browser.open(&unsubscribe);
    browser.check(&[]);
    let answer = browser.press("form[method=post] button[type=submit]");
    assert!(answer.contains("Prenumerationen är avslutad"), "{answer}");
    browser.check(&["Prenumerationen är avslutad"]);

    // A release of her topic, public at once: the list gets it; she gets nothing more.
    let before = server.count();
    write_release(
        &p,
        "efter",
        "Jämställdhet i styrelserna",
        "Jämställdhet",
        pressroom::clock::now() - TimeDelta::minutes(1),
    );
    wait_for(
        "the last release mailed to the list",
        Duration::from_secs(30),
        || server.count() > before,
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(adas(&server).len(), 3, "{:?}", adas(&server));
    drop(daemon);
}
