//! The crash loop: `pressroom run` mailing a dispatch through a real SMTP server is killed
//! with SIGKILL again and again (right after its first build, then at points spread over
//! the dispatch, mid-SMTP: the server answers slowly) and restarted each time. At the end
//! nobody is missed, every copy a recipient got carries that recipient's one Message-ID, a
//! recipient mailed twice was attempted again after a crash, no more were mailed twice
//! than can be in flight at the kills, and the site is exactly what a fresh build gives.
//! The audience is the media list and journalists who subscribed themselves, some on both.
//! `PRESSROOM_CRASH_RECIPIENTS` and `PRESSROOM_CRASH_KILLS` make the long run (10,000 and
//! 20); the suite runs a smaller one.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use super::daemon::{Daemon, with_smtp};
use super::smtp::{SmtpServer, in_flight_per_run};
use super::*;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The test's `[mail] concurrency`: few connections, so that a kill finds each one busy.
const CONCURRENCY: usize = 4;

/// Waits until the server holds at least `n` messages.
fn wait_for_messages(server: &SmtpServer, n: usize, what: &str) {
    let started = Instant::now();
    while server.count() < n {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{what}: only {} of {n} messages within a minute",
            server.count()
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn killed_again_and_again_while_mailing_it_misses_nobody_and_doubles_only_in_flight_messages() {
    let extra = env_or("PRESSROOM_CRASH_RECIPIENTS", 1500);
    // At least one kill mid-dispatch besides the one at the start.
    let kills = env_or("PRESSROOM_CRASH_KILLS", 6).max(2);
    let (_dir, server, p, _port) = with_smtp(extra);
    // Every reply a few milliseconds late: each kill lands with transactions under way.
    server.rules(r#"{"delay_ms": 4}"#);
    p.set_config(
        &format!("concurrency = {}", super::smtp::CONCURRENCY),
        &format!("concurrency = {CONCURRENCY}"),
    );
    let date = (pressroom::clock::now() - chrono::TimeDelta::minutes(1))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    p.write(
        "releases/krasch.md",
        release(
            &format!("title = \"Kraschtest\"\ndate = \"{date}\"\ntopics = [\"jamstalldhet\"]"),
            "Text som skickas till alla.",
        ),
    );
    // The media list the test wrote: anna takes everything, cecilia this topic, the extras
    // everything; bo (other topics), david (English) and eva (sport) are not targeted.
    let mut everyone: BTreeSet<String> = (0..extra)
        .map(|i| format!("journalist{i:04}@example.org"))
        .collect();
    everyone.insert("anna.lind@example.org".into());
    everyone.insert("cecilia.berg@example.org".into());
    // And the journalists who subscribed themselves (the audience is both): a fifth as
    // many again on their own, every topic; bo subscribed for this topic (his choice wins
    // over his row); of the extras on the list, one in fifty chose sport only and one in
    // fifty the daily digest, so neither is mailed this release.
    use super::subscribers::{subscribe, subscriber};
    let mut own = vec![subscriber("bo.ek@example.com", "Jämställdhet", "", "each")];
    everyone.insert("bo.ek@example.com".into());
    for i in 0..extra / 5 {
        own.push(subscriber(
            &format!("subscriber{i:04}@example.com"),
            "",
            "sv",
            "each",
        ));
        everyone.insert(format!("subscriber{i:04}@example.com"));
    }
    for i in (0..extra).step_by(50) {
        own.push(subscriber(
            &format!("journalist{i:04}@example.org"),
            "sport",
            "",
            "each",
        ));
        own.push(subscriber(
            &format!("journalist{:04}@example.org", i + 1),
            "",
            "",
            "digest",
        ));
        everyone.remove(&format!("journalist{i:04}@example.org"));
        everyone.remove(&format!("journalist{:04}@example.org", i + 1));
    }
    subscribe(&p, &own);

    // Kill points by the number of messages the server has: the first as soon as the
    // daemon serves (before or while it queues the dispatch), the others spread
    // from early in the dispatch to most of the way through it, each a little off an even
    // spacing. A fixed sequence, so a failure can be replayed.
    let mut seed: u64 = 0x5EED_C4A5;
    let mut kill_at = vec![0];
    for i in 1..kills {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let step = everyone.len() * 9 / 10 / kills;
        let jitter = (seed >> 33) as usize % (step / 2).max(1);
        kill_at.push(step * i + jitter);
    }
    for (i, &at) in kill_at.iter().enumerate() {
        let daemon = Daemon::start(&p);
        wait_for_messages(&server, at, &format!("before kill {}", i + 1));
        daemon.signal("KILL");
        drop(daemon);
        eprintln!(
            "kill {}: at {at} messages, {} when it died",
            i + 1,
            server.count()
        );
    }
    assert!(
        server.count() < everyone.len(),
        "the last kill came after the dispatch had ended: nothing was left to send"
    );

    let _last = Daemon::start(&p);
    wait_for_messages(&server, everyone.len(), "after the last restart");
    // Done when the ledger has every delivery sent; nothing may arrive after that.
    let report =
        || String::from_utf8_lossy(&p.run(&["report", "krasch", "--csv"]).stdout).into_owned();
    let started = Instant::now();
    let mut rows = report();
    while rows.lines().skip(1).any(|l| !l.contains(",sent,")) {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "not every delivery ends sent: {rows}"
        );
        std::thread::sleep(Duration::from_millis(100));
        rows = report();
    }
    let received = server.count();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        server.count(),
        received,
        "mail after every delivery was sent"
    );

    // Who got what, by the server's copies.
    let mut ids: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (rcpt, raw) in server.messages() {
        let m = mail_parser::MessageParser::default()
            .parse(&raw)
            .expect("parse");
        ids.entry(rcpt)
            .or_default()
            .push(m.message_id().expect("Message-ID").to_string());
    }
    assert_eq!(
        ids.keys().cloned().collect::<BTreeSet<_>>(),
        everyone,
        "exactly the targeted recipients were mailed"
    );
    super::smtp::assert_one_message_id_each(&ids);
    let attempts: BTreeMap<&str, u32> = rows
        .lines()
        .skip(1)
        .map(|l| {
            let cols: Vec<&str> = l.split(',').collect();
            let n = cols.get(3).and_then(|n| n.parse().ok());
            (cols[0], n.unwrap_or_else(|| panic!("no attempts in {l}")))
        })
        .collect();
    assert_eq!(
        attempts
            .keys()
            .map(|a| a.to_string())
            .collect::<BTreeSet<_>>(),
        everyone,
        "one delivery per targeted recipient in the ledger"
    );
    let mut doubles = 0;
    for (rcpt, got) in &ids {
        if got.len() > 1 {
            doubles += got.len() - 1;
            assert!(
                attempts[rcpt.as_str()] >= 2,
                "{rcpt} was mailed twice but attempted once: it was not in flight at a crash"
            );
        }
    }
    let bound = kill_at.len() * in_flight_per_run(CONCURRENCY);
    eprintln!(
        "{} kills, {} recipients: {doubles} doubles (at most {bound} can be in flight)",
        kill_at.len(),
        everyone.len()
    );
    assert!(
        doubles <= bound,
        "{doubles} messages mailed twice; {} kills with at most {} in flight each allow {bound}",
        kill_at.len(),
        in_flight_per_run(CONCURRENCY)
    );

    // The site the daemon left is what a fresh build gives.
    let fresh = p.path().join("fresh");
    let now = pressroom::clock::now().to_rfc3339();
    p.build_at(&now, &fresh);
    let mut served = files(&p.out());
    let mut built = files(&fresh);
    served.remove(".pressroom-manifest");
    built.remove(".pressroom-manifest");
    assert!(built.contains_key("releases/krasch/index.html"));
    let differ: Vec<&String> = built
        .keys()
        .chain(served.keys())
        .filter(|k| built.get(*k) != served.get(*k))
        .collect();
    assert!(differ.is_empty(), "differ from a fresh build: {differ:?}");
}
