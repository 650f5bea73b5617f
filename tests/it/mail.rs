//! The mail as a journalist's mailbox sees it: `pressroom preview --eml` parsed by
//! mail-parser, a third-party MIME parser.

use mail_parser::{HeaderValue, MessageParser};

use super::*;

fn eml(p: &Project, args: &[&str]) -> Vec<u8> {
    let mut all = vec!["preview", "du-avgor", "--eml"];
    all.extend_from_slice(args);
    let o = p.run(&all);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    o.stdout
}

fn header<'a>(m: &'a mail_parser::Message<'a>, name: &str) -> String {
    match m.header(name) {
        Some(HeaderValue::Text(t)) => t.to_string(),
        Some(other) => format!("{other:?}"),
        None => panic!("no {name} header"),
    }
}

#[test]
fn one_personal_standards_clean_message_with_both_parts() {
    let p = Project::sample();
    let raw = eml(&p, &["--recipient", "bo.ek@example.com"]);
    assert_wire_clean(&raw);
    let m = MessageParser::default()
        .parse(&raw)
        .expect("a MIME parser reads it");

    assert_eq!(
        m.subject(),
        Some("Pressmeddelande: Kampanj mot prostitution och människohandel")
    );
    let from = m.from().and_then(|a| a.first()).expect("From");
    assert_eq!(from.name(), Some("Jämställdhetsmyndigheten"));
    assert_eq!(from.address(), Some("pressroom@example.org"));
    let to = m.to().and_then(|a| a.first()).expect("To");
    assert_eq!(
        (to.name(), to.address()),
        (Some("Bo Ek"), Some("bo.ek@example.com"))
    );
    assert_eq!(
        m.reply_to()
            .and_then(|a| a.first())
            .and_then(|a| a.address()),
        Some("press@jamy.se")
    );
    assert!(m.date().is_some(), "Date");
    let id = m.message_id().expect("Message-ID").to_string();
    assert!(id.ends_with("@example.org"), "{id}");
    assert_eq!(header(&m, "Content-Language"), "sv");
    assert!(format!("{:?}", m.header("List-Id")).contains("newsroom.example.org"));
    let unsubscribe = format!(
        "{:?}",
        m.header("List-Unsubscribe").expect("List-Unsubscribe")
    );
    assert!(
        unsubscribe.contains("http://127.0.0.1:8080/unsubscribe/"),
        "{unsubscribe}"
    );
    // No [subscribe] unsubscribe_mailbox: no mailto:, and never the reply_to's inbox.
    assert!(
        !unsubscribe.contains("mailto:") && !unsubscribe.contains("jamy.se"),
        "{unsubscribe}"
    );
    assert_eq!(
        header(&m, "List-Unsubscribe-Post"),
        "List-Unsubscribe=One-Click"
    );

    let text = m.body_text(0).expect("a plain-text part");
    let html = m.body_html(0).expect("an HTML part");
    assert!(text.starts_with("Hej Bo Ek,"), "personal greeting: {text}");
    assert!(html.contains(">Hej Bo Ek,</p>"), "{html}");
    for sentence in SAMPLE_SENTENCES {
        assert!(text.contains(sentence), "text part lacks {sentence:?}");
        assert!(html.contains(sentence), "HTML part lacks {sentence:?}");
    }
    assert!(
        text.contains("Simon Falk, Pressansvarig, 070-784 74 97, press@jamy.se"),
        "contacts: {text}"
    );
    assert!(
        text.contains("http://127.0.0.1:8080/releases/du-avgor/"),
        "a link to its page"
    );
    assert!(
        !html.contains("<img"),
        "no tracking pixel (the sample has no image)"
    );

    // The same release and recipient: the same Message-ID on every attempt.
    let again = MessageParser::default()
        .parse(&eml(&p, &["--recipient", "bo.ek@example.com"])[..])
        .map(|m| m.message_id().map(str::to_string));
    assert_eq!(again.flatten().as_deref(), Some(id.as_str()));
    let other = eml(&p, &["--recipient", "anna.lind@example.org"]);
    let other = MessageParser::default().parse(&other).expect("parse");
    assert_ne!(other.message_id(), Some(id.as_str()));
}

#[test]
fn a_body_that_could_break_smtp_arrives_intact() {
    let p = Project::empty();
    let long = "x".repeat(2000);
    p.write(
        "releases/2019-01-01-punkt.md",
        release(
            "title = \"Punkt\"\ndate = 2019-01-01",
            &format!("Före\n\n.\n\nEfter med ensam\rCR och {long}"),
        ),
    );
    let o = p.run(&[
        "preview",
        "punkt",
        "--eml",
        "--recipient",
        "anna.lind@example.org",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        o.stdout
            .split(|&b| b == b'\n')
            .all(|line| line.len() <= 998),
        "long lines are encoded"
    );
    let m = MessageParser::default().parse(&o.stdout).expect("parse");
    let text = m.body_text(0).expect("text");
    assert!(text.contains(&long), "the 2,000-character line survives");
    assert!(
        text.contains("\n.\n") || text.contains("\r\n.\r\n"),
        "a lone dot line survives: {text}"
    );
}

#[test]
fn unsubscribe_and_resubscribe_are_recorded() {
    let p = Project::sample();
    let o = p.run(&["unsubscribe", "Anna.Lind@Example.org"]);
    assert!(o.status.success());
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        "unsubscribed: nothing more will be mailed to anna.lind@example.org"
    );
    let o = p.run(&["unsubscribe", "anna.lind@example.org"]);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        "already unsubscribed: anna.lind@example.org"
    );
    let o = p.run(&["resubscribe", "anna.lind@example.org"]);
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("resubscribed"));
    let o = p.run(&["unsubscribe", "not an address"]);
    assert_eq!(o.status.code(), Some(2));
}

/// A dry run is a what-if: it lists what a send would mail and records nothing, so a
/// later dry run, `schedule` and a real send are as if it never ran.
#[test]
fn a_dry_run_changes_nothing_not_even_for_an_address_tried_with_to() {
    let p = Project::sample();
    let state = p.path().join("state");
    let ledger_bytes = || std::fs::read(state.join("pressroom.db")).unwrap_or_default();
    let o = p.run(&[
        "send",
        "du-avgor",
        "--to",
        "someone@example.com",
        "--dry-run",
    ]);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(out.contains("someone@example.com"), "{out}");
    let before = ledger_bytes();

    let o = p.run(&["send", "du-avgor", "--dry-run"]);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(!out.contains("someone@example.com"), "{out}");
    let listed: Vec<&str> = out
        .lines()
        .filter(|l| !l.contains("\texcluded\t"))
        .filter_map(|l| l.split('\t').next())
        .collect();
    assert_eq!(
        listed,
        [
            "anna.lind@example.org",
            "bo.ek@example.com",
            "cecilia.berg@example.org"
        ],
        "the sample's readers of its language and topics: {out}"
    );
    assert!(
        err.contains("3 would be mailed (dry run: nothing sent)"),
        "{err}"
    );
    assert_eq!(ledger_bytes(), before, "the ledger is as it was");
    let status = String::from_utf8_lossy(&p.run(&["status"]).stdout).into_owned();
    assert!(!status.contains("queued"), "{status}");
    let leftovers: Vec<_> = std::fs::read_dir(&state)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(
        !leftovers
            .iter()
            .any(|n| n.to_string_lossy().contains("dry-run")),
        "{leftovers:?}"
    );
}

/// `build` for the real now records publications; this places releases relative to the
/// clock the binary will read.
#[allow(clippy::disallowed_methods)]
fn hours_ago(h: i64) -> String {
    (chrono::Utc::now() - chrono::TimeDelta::hours(h)).to_rfc3339()
}

#[test]
fn publication_queues_the_mail_unless_first_seen_too_late() {
    let p = Project::sample();
    p.write(
        "releases/ny.md",
        release(
            &format!(
                "title = \"Ny\"\ndate = {}\ntopics = [\"jamstalldhet\"]",
                hours_ago(1)
            ),
            "Text.",
        ),
    );
    p.write(
        "releases/gammal.md",
        release(
            &format!("title = \"Gammal\"\ndate = {}", hours_ago(25)),
            "Text.",
        ),
    );
    p.write(
        "releases/tyst.md",
        release(
            &format!("title = \"Tyst\"\ndate = {}\nmail = false", hours_ago(1)),
            "Text.",
        ),
    );
    let o = p.run(&["build"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("published ny: 2 messages queued"),
        "anna takes all, cecilia takes jamstalldhet: {err}"
    );
    assert!(err.contains("published gammal: first seen more than catch_up after its date: not mailed automatically"), "{err}");
    assert!(
        err.contains("published du-avgor: first seen more than catch_up"),
        "the 2018 sample, first seen now: {err}"
    );
    assert!(
        err.contains("published tyst: not mailed (mail = false)"),
        "{err}"
    );
    // A second build decides nothing again.
    let o = p.run(&["build"]);
    assert!(!String::from_utf8_lossy(&o.stderr).contains("published"));
    let status = String::from_utf8_lossy(&p.run(&["status"]).stdout).into_owned();
    assert!(status.contains("mail: 2 queued"), "{status}");
    assert!(
        status.contains("not mailed automatically (first seen too late)"),
        "{status}"
    );
    // The manual send mails the queued ones.
    let o = p.run(&["send", "ny"]);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("2 sent"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn withdrawing_a_release_cancels_its_pending_mail() {
    let p = Project::sample();
    let path = p.write(
        "releases/ny.md",
        release(&format!("title = \"Ny\"\ndate = {}", hours_ago(1)), "Text."),
    );
    assert!(p.run(&["build"]).status.success());
    let text = std::fs::read_to_string(&path).expect("read");
    std::fs::write(
        &path,
        text.replace(
            "title = \"Ny\"",
            "title = \"Ny\"\nwithdrawn = \"Fel datum\"",
        ),
    )
    .expect("write");
    let o = p.run(&["build"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("withdrawn ny: 1 pending message cancelled"),
        "anna takes everything: {err}"
    );
    let o = p.run(&["send", "ny"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("is withdrawn"));
    let report = String::from_utf8_lossy(&p.run(&["report", "ny", "--csv"]).stdout).into_owned();
    assert_eq!(report.matches(",cancelled,").count(), 1, "{report}");
}

#[test]
fn schedule_shows_the_lift_at_midnight_and_the_mail_at_seven() {
    let p = Project::sample();
    let o = p.run(&[
        "schedule",
        "--from",
        "2018-10-17T20:00",
        "--until",
        "2018-10-19T00:00",
    ]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(
        lines[0].starts_with("2018-10-18 00:00 CEST  publish  du-avgor"),
        "{out}"
    );
    assert!(
        lines[1].starts_with("2018-10-18 07:00 CEST  mail     du-avgor  to 3 recipients"),
        "{out}"
    );
    assert!(
        !p.path().join("public").exists() && !p.path().join("state/outbox").exists(),
        "nothing was done"
    );
}

/// A publication's sighting and its mail are one commit, after the build. A process killed
/// between the build and the commit has recorded nothing: the next build publishes it
/// again and decides its mail, once.
#[test]
fn a_build_killed_before_its_commit_is_published_and_mailed_by_the_next() {
    use pressroom::build::{Builder, Recording};
    use pressroom::ledger::Ledger;
    let p = Project::sample();
    let date = (pressroom::clock::now() - chrono::TimeDelta::hours(1))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    p.write(
        "releases/ny.md",
        release(
            &format!("title = \"Ny\"\ndate = \"{date}\"\ntopics = [\"jamstalldhet\"]"),
            "Text.",
        ),
    );
    let (config, _) =
        pressroom::config::Config::load(Some(&p.path().join("config/pressroom.toml")))
            .expect("config");
    // The first half: built, then killed before the commit.
    let ledger = Ledger::open_in(&config.paths.state).expect("ledger");
    let report = Builder::new(config.clone(), p.out())
        .with_history(ledger.history().expect("history"), Recording::Record)
        .build(pressroom::clock::now())
        .expect("build");
    assert!(report.newly_public.iter().any(|r| r.slug.as_str() == "ny"));
    drop(ledger);
    let status = String::from_utf8_lossy(&p.run(&["status"]).stdout).into_owned();
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("ny ") && !l.contains("queued")),
        "{status}"
    );

    let o = p.run(&["build"]);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(
        err.lines()
            .any(|l| l.starts_with("published ny:") && l.contains("2 messages queued")),
        "{err}"
    );
    // Decided once: the next start has nothing to decide.
    let err = String::from_utf8_lossy(&p.run(&["build"]).stderr).into_owned();
    assert!(!err.contains("published ny"), "{err}");
}
