//! The daily digest through the real daemon and a real SMTP server: a digest subscriber
//! gets, at each digest instant, one mail holding exactly the releases published since
//! their last one that they chose; nothing public after the instant; nothing to those who
//! paused, opted out or take each release.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Timelike, Utc};

use super::daemon::{Daemon, rfc3339, wait_for};
use super::smtp::{SmtpServer, project_with_smtp};
use super::*;
use pressroom::ledger::{Choices, Ledger, SubscriberRow};

fn subscriber(address: &str, topics: &str, delivery: &str, from: DateTime<Utc>) -> SubscriberRow {
    SubscriberRow {
        address: address.into(),
        email: address.into(),
        name: "Ada Lind".into(),
        outlet: "Exempeltidningen".into(),
        choices: Choices {
            topics: topics.into(),
            langs: String::new(),
            delivery: delivery.into(),
        },
        paused: false,
        confirmed_at: from,
        updated_at: from,
        digest_from: from,
    }
}

/// The releases' titles in a digest's plain-text part, in the order it lists them.
fn titles(raw: &[u8]) -> Vec<String> {
    let m = mail_parser::MessageParser::default()
        .parse(raw)
        .expect("parse");
    let text = m.body_text(0).expect("a text part").into_owned();
    ["Sportnyhet", "Kulturnyhet", "Senare sportnyhet"]
        .into_iter()
        .filter(|t| text.lines().any(|l| l == *t))
        .map(str::to_string)
        .collect()
}

/// Digests every 20 seconds (a digest is made `digest::LAG`, 10 s, after its instant). The
/// daemon starts just after one was made (P0); Ada's first digest is that of P1 and holds
/// the sport release only (not culture, which she did not choose, nor the sport release
/// dated 4 s after P1, public when the digest is made but not at P1); her second, of P2,
/// holds that later one alone. Bo paused and Cy opted out: nothing reaches them. Di takes
/// each release: the releases may reach her one by one (the audience is the media list and
/// the subscribers), never in a digest.
#[test]
fn a_digest_subscriber_gets_exactly_the_matching_releases_at_each_digest_instant() {
    let dir = tempfile::tempdir().expect("dir");
    let server = SmtpServer::start(dir.path(), 0);
    let p = project_with_smtp(server.port, 0);
    std::fs::remove_file(p.path().join("releases/2018-10-18-du-avgor.md")).expect("no sample");
    p.set_media(&[]);
    p.set_config("digest = \"0 0 7 * * *\"", "digest = \"*/20 * * * * *\"");
    super::daemon::serve_on(&p, free_port());

    let before = pressroom::clock::now() - TimeDelta::hours(1);
    {
        let mut ledger = Ledger::open_in(&p.path().join("state")).expect("ledger");
        for (address, topics, delivery) in [
            ("ada@example.org", "Sport", "digest"),
            ("bo@example.org", "", "digest"),
            ("cy@example.org", "", "digest"),
            ("di@example.org", "", "each"),
        ] {
            ledger
                .put_subscriber(&subscriber(address, topics, delivery, before))
                .expect("subscriber");
        }
        let mut bo = subscriber("bo@example.org", "", "digest", before);
        bo.paused = true;
        ledger.put_subscriber(&bo).expect("paused");
    }
    let o = p.run(&["unsubscribe", "cy@example.org"]);
    assert!(o.status.success(), "{}", stderr(&o));

    // Start 11–13 s into a 20-second period: P0 is that period's start, made at once.
    wait_for(
        "a start just after a digest",
        Duration::from_secs(25),
        || {
            let s = pressroom::clock::now().second() % 20;
            (11..13).contains(&s)
        },
    );
    let now = pressroom::clock::now();
    let p0 = now.with_nanosecond(0).expect("whole second")
        - TimeDelta::seconds(i64::from(now.second() % 20));
    let p1 = p0 + TimeDelta::seconds(20);
    let p2 = p1 + TimeDelta::seconds(20);
    let front = |title: &str, date: DateTime<Utc>, topic: &str| {
        format!(
            "title = \"{title}\"\ndate = \"{}\"\ntopics = [\"{topic}\"]",
            rfc3339(date)
        )
    };
    p.write(
        "releases/sport.md",
        release(
            &front("Sportnyhet", now - TimeDelta::minutes(30), "Sport"),
            "Mål.",
        ),
    );
    p.write(
        "releases/kultur.md",
        release(
            &front("Kulturnyhet", now - TimeDelta::minutes(20), "Kultur"),
            "Konst.",
        ),
    );
    p.write(
        "releases/senare.md",
        release(
            &front("Senare sportnyhet", p1 + TimeDelta::seconds(4), "Sport"),
            "Fler mål.",
        ),
    );
    let daemon = Daemon::start(&p);

    // Ada's mail: Di's (each release, one by one) is looked at last.
    let adas = || {
        server
            .received()
            .into_iter()
            .filter(|m| m.1 == "ada@example.org")
            .collect::<Vec<_>>()
    };
    wait_for("Ada's first digest", Duration::from_secs(30), || {
        !adas().is_empty()
    });
    let first = adas();
    assert_eq!(first.len(), 1, "{first:?}");
    let (at, to, raw) = &first[0];
    assert_eq!(to, "ada@example.org");
    let arrived = DateTime::from_timestamp_millis((at * 1000.0) as i64).expect("instant");
    assert!(
        arrived >= p1 + pressroom::digest::LAG,
        "arrived {arrived}, before P1 {p1} and its lag: {}",
        daemon.log()
    );
    assert_eq!(titles(raw), ["Sportnyhet"]);
    let m = mail_parser::MessageParser::default()
        .parse(raw)
        .expect("parse");
    assert!(
        m.subject()
            .is_some_and(|s| s.starts_with("Pressmeddelanden ")),
        "{:?}",
        m.subject()
    );
    assert!(m.header_raw("List-Unsubscribe").is_some());
    assert!(m.header_raw("In-Reply-To").is_none());

    wait_for("Ada's second digest", Duration::from_secs(30), || {
        adas().len() >= 2
    });
    // Past P2's digest, nothing more comes until P3's.
    std::thread::sleep(Duration::from_millis(500));
    let all = adas();
    assert_eq!(
        all.len(),
        2,
        "{:?}",
        all.iter().map(|m| &m.1).collect::<Vec<_>>()
    );
    let (_, to, raw) = &all[1];
    assert_eq!(to, "ada@example.org");
    assert_eq!(titles(raw), ["Senare sportnyhet"]);
    let ids: Vec<String> = all
        .iter()
        .map(|(_, _, raw)| {
            mail_parser::MessageParser::default()
                .parse(raw)
                .and_then(|m| m.message_id().map(str::to_string))
                .expect("a Message-ID")
        })
        .collect();
    assert_ne!(ids[0], ids[1]);
    let http = super::daemon::client();
    let metrics = format!("{}/metrics", daemon.admin());
    wait_for(
        "the digests counted on /metrics",
        Duration::from_secs(10),
        || {
            super::daemon::get(&http, &metrics, "")
                .1
                .contains("pressroom_digests{state=\"sent\"} 2")
        },
    );
    drop(daemon);
    for (_, to, raw) in server.received() {
        assert!(to == "ada@example.org" || to == "di@example.org", "{to}");
        let m = mail_parser::MessageParser::default()
            .parse(&raw)
            .expect("parse");
        assert!(
            to == "ada@example.org"
                || !m
                    .subject()
                    .is_some_and(|s| s.starts_with("Pressmeddelanden ")),
            "a digest to {to}"
        );
    }

    let ledger = Ledger::open_in(&p.path().join("state")).expect("ledger");
    let rows = ledger.digests_of("ada@example.org").expect("digests");
    let periods: Vec<DateTime<Utc>> = rows.iter().map(|r| r.period).collect();
    assert_eq!(periods, [p1, p2], "one row per period with something in it");
    assert!(
        rows.iter()
            .all(|r| r.state == pressroom::ledger::DeliveryState::Sent)
    );
    for other in ["bo@example.org", "cy@example.org", "di@example.org"] {
        assert!(
            ledger.digests_of(other).expect("digests").is_empty(),
            "{other}"
        );
    }
}

/// `schedule` names the next digest among the rest, with how many subscribers take one;
/// `status` counts the digests by state.
#[test]
fn schedule_shows_the_next_digest_and_status_counts_digests() {
    let p = Project::empty();
    let at = |s: &str| DateTime::parse_from_rfc3339(s).expect("instant").to_utc();
    let before = at("2026-12-04T06:00:00Z");
    {
        let mut ledger = Ledger::open_in(&p.path().join("state")).expect("ledger");
        for address in ["ada@example.org", "bo@example.org"] {
            ledger
                .put_subscriber(&subscriber(address, "", "digest", before))
                .expect("subscriber");
        }
        ledger
            .put_subscriber(&subscriber("di@example.org", "", "each", before))
            .expect("subscriber");
        ledger
            .make_digests(
                at("2026-12-04T06:00:00Z"),
                &[pressroom::ledger::NewDigest {
                    address: "ada@example.org".into(),
                    was_from: before,
                    releases: vec!["r".into()],
                    message_id: "<d@example.org>".into(),
                }],
                before,
            )
            .expect("a digest");
    }
    let o = p.run(&[
        "schedule",
        "--from",
        "2026-12-05T00:00:00+01:00",
        "--until",
        "2026-12-06T00:00:00+01:00",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("2026-12-05 07:00 CET  digest   to 2 digest subscribers"),
        "{out}"
    );
    let o = p.run(&["status"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.lines()
            .any(|l| l.starts_with("(digests)") && l.ends_with("mail: 1 queued")),
        "{out}"
    );
}

/// Killed with SIGKILL again and again while its digests leave (the server answers each
/// a quarter of a second late, so a kill finds one in flight) and restarted each time: at
/// the end every subscriber has their digest, every copy of it carries its one Message-ID,
/// and no more are doubled than there were kills (a digest run has one in flight).
#[test]
fn killed_while_its_digests_leave_it_misses_nobody_and_doubles_only_those_in_flight() {
    const SUBSCRIBERS: usize = 24;
    let dir = tempfile::tempdir().expect("dir");
    let server = SmtpServer::start(dir.path(), 0);
    server.rules(r#"{"delay_ms": 250}"#);
    let p = project_with_smtp(server.port, 0);
    std::fs::remove_file(p.path().join("releases/2018-10-18-du-avgor.md")).expect("no sample");
    p.set_media(&[]);
    p.set_config("digest = \"0 0 7 * * *\"", "digest = \"*/20 * * * * *\"");
    super::daemon::serve_on(&p, free_port());
    let before = pressroom::clock::now() - TimeDelta::hours(1);
    let everyone: Vec<String> = (0..SUBSCRIBERS)
        .map(|i| format!("prenumerant{i:02}@example.org"))
        .collect();
    {
        let mut ledger = Ledger::open_in(&p.path().join("state")).expect("ledger");
        for address in &everyone {
            ledger
                .put_subscriber(&subscriber(address, "", "digest", before))
                .expect("subscriber");
        }
    }
    let date = pressroom::clock::now() - TimeDelta::minutes(30);
    p.write(
        "releases/krasch.md",
        release(
            &format!("title = \"Sportnyhet\"\ndate = \"{}\"", rfc3339(date)),
            "Text.",
        ),
    );
    let kill_at = [0, 5, 11, 17];
    for (i, at) in kill_at.iter().enumerate() {
        let daemon = Daemon::start(&p);
        wait_for(
            &format!("{at} digests before kill {}", i + 1),
            Duration::from_secs(60),
            || server.count() >= *at,
        );
        daemon.signal("KILL");
        drop(daemon);
        eprintln!(
            "kill {}: at {at} digests, {} when it died",
            i + 1,
            server.count()
        );
    }
    assert!(
        server.count() < SUBSCRIBERS,
        "the kills came after every digest had left"
    );
    let _last = Daemon::start(&p);
    let sent = || {
        let ledger = Ledger::open_in(&p.path().join("state")).expect("ledger");
        ledger.digest_counts().expect("counts")
            == [(pressroom::ledger::DeliveryState::Sent, SUBSCRIBERS as u64)]
    };
    wait_for("every digest sent", Duration::from_secs(60), sent);
    let received = server.count();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(server.count(), received, "mail after every digest was sent");

    let mut ids: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for (rcpt, raw) in server.messages() {
        let m = mail_parser::MessageParser::default()
            .parse(&raw)
            .expect("parse");
        assert_eq!(titles(&raw), ["Sportnyhet"]);
        ids.entry(rcpt)
            .or_default()
            .push(m.message_id().expect("Message-ID").to_string());
    }
    assert_eq!(ids.keys().cloned().collect::<Vec<_>>(), everyone);
    super::smtp::assert_one_message_id_each(&ids);
    let doubled = ids.values().filter(|v| v.len() > 1).count();
    eprintln!("{doubled} of {SUBSCRIBERS} got their digest twice");
    assert!(
        doubled <= kill_at.len(),
        "{doubled} subscribers got their digest twice after {} kills",
        kill_at.len()
    );
}
