//! The audience is one concept (SPEC §6): the media list's rows plus the journalists who
//! subscribed themselves, minus opt-outs, under one targeting rule. A journalist on both
//! gets one message and their own choices win over the office's row; a paused or
//! digest-taking subscriber is not mailed each release; an opt-out always wins. `send`,
//! `send --dry-run` and `schedule` agree.

use super::smtp::{SmtpServer, project_with_smtp};
use super::*;

use chrono::{DateTime, Utc};
use pressroom::ledger::{Choices, Ledger, SubscriberRow};

fn t(s: &str) -> DateTime<Utc> {
    s.parse().expect("instant")
}

/// A confirmed subscriber with these choices.
pub fn subscriber(email: &str, topics: &str, langs: &str, delivery: &str) -> SubscriberRow {
    let at = t("2018-10-01T10:00:00Z");
    SubscriberRow {
        address: email.to_lowercase(),
        email: email.into(),
        name: format!("Own {email}"),
        outlet: "Exempelbladet".into(),
        choices: Choices {
            topics: topics.into(),
            langs: langs.into(),
            delivery: delivery.into(),
        },
        paused: false,
        confirmed_at: at,
        updated_at: at,
        digest_from: at,
    }
}

/// Writes subscribers into the project's ledger, as a confirmation would.
pub fn subscribe(p: &Project, rows: &[SubscriberRow]) {
    let mut l = Ledger::open_in(&p.path().join("state")).expect("ledger");
    for r in rows {
        l.put_subscriber(r).expect("subscriber");
    }
}

/// The media list and subscribers of these tests: Anna on the list only; Bo on the list
/// for sport, subscribed himself for Jämställdhet; Cecilia subscribed only (English or
/// Swedish); David on the list, takes the digest himself; Eva subscribed and paused;
/// Frida subscribed and then opted out; Gustav subscribed for sport only.
fn audience(p: &Project) {
    p.set_media(&[
        "anna.lind@example.org,Anna Lind,Dagbladet Exempel,sv,",
        "bo.ek@example.com,Bo Ek,Radio Exempel,sv,sport",
        "david.holm@example.com,David Holm,Example News,,",
    ]);
    let mut eva = subscriber("eva.strand@example.org", "", "", "each");
    eva.paused = true;
    subscribe(
        p,
        &[
            subscriber("Bo.Ek@example.com", "Jämställdhet", "sv", "each"),
            subscriber("cecilia.berg@example.org", "", "en|sv", "each"),
            subscriber("david.holm@example.com", "", "", "digest"),
            eva,
            subscriber("frida.ahl@example.org", "", "", "each"),
            subscriber("gustav.ek@example.com", "Sport", "", "each"),
        ],
    );
    assert!(
        p.run(&["unsubscribe", "frida.ahl@example.org"])
            .status
            .success()
    );
}

#[test]
fn send_dry_run_and_schedule_target_the_media_list_and_the_subscribers_by_one_rule() {
    let server_dir = tempfile::tempdir().expect("tempdir");
    let server = SmtpServer::start(server_dir.path(), 0);
    let p = project_with_smtp(server.port, 0);
    audience(&p);

    let o = p.run(&["send", "du-avgor", "--dry-run"]);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(o.status.success(), "{}", stderr(&o));
    let lines: Vec<Vec<&str>> = out.lines().map(|l| l.split('\t').collect()).collect();
    let mailed: Vec<&str> = lines
        .iter()
        .filter(|l| l[1] == "queued")
        .map(|l| l[0])
        .collect();
    assert_eq!(
        mailed,
        [
            "anna.lind@example.org",
            "bo.ek@example.com",
            "cecilia.berg@example.org"
        ],
        "{out}"
    );
    let excluded: Vec<(&str, &str)> = lines
        .iter()
        .filter(|l| l[1] == "excluded")
        .map(|l| (l[0], l[2]))
        .collect();
    assert_eq!(
        excluded,
        [
            ("david.holm@example.com", "takes the daily digest"),
            ("eva.strand@example.org", "paused their subscription"),
            ("frida.ahl@example.org", "opted out"),
            (
                "gustav.ek@example.com",
                "topics do not match: takes Sport; the release is about Prostitution, Människohandel, Jämställdhet"
            ),
        ],
        "{out}"
    );

    let o = p.run(&[
        "schedule",
        "--from",
        "2018-10-17T20:00",
        "--until",
        "2018-10-19T00:00",
    ]);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        out.contains("to 3 recipients; excluded: 1 opted out, 1 paused, 1 takes another delivery, 1 topics do not match"),
        "{out}"
    );

    // The real send: each of the three once, Bo once although he is on both.
    let o = p.run(&["send", "du-avgor"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let got: Vec<(String, usize)> = server.per_recipient().into_iter().collect();
    assert_eq!(
        got,
        [
            ("anna.lind@example.org".to_string(), 1),
            ("bo.ek@example.com".to_string(), 1),
            ("cecilia.berg@example.org".to_string(), 1),
        ]
    );
    // Run again: nobody twice.
    let o = p.run(&["send", "du-avgor"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(server.count(), 3);
}
