//! The crash loop: `pressroom run` mailing a dispatch through a real SMTP server is killed
//! with SIGKILL again and again (during its first build, during ledger writes, mid-SMTP) and
//! restarted each time. At the end nobody is missed, a recipient mailed twice got the same
//! Message-ID both times and was attempted again after a crash, and the site is exactly
//! what a fresh build gives. `PRESSROOM_CRASH_RECIPIENTS` and `PRESSROOM_CRASH_KILLS`
//! make the long run (10,000 and 20); the suite runs a smaller one.

use std::collections::BTreeMap;
use std::time::Duration;

use super::daemon::{Daemon, with_smtp};
use super::*;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
fn killed_again_and_again_while_mailing_it_misses_nobody_and_doubles_only_in_flight_messages() {
    let extra = env_or("PRESSROOM_CRASH_RECIPIENTS", 1500);
    let kills = env_or("PRESSROOM_CRASH_KILLS", 6);
    let (_dir, server, p, _port) = with_smtp(extra);
    let date = (pressroom::clock::now() - chrono::TimeDelta::minutes(1))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    p.write(
        "releases/krasch.md",
        release(
            &format!("title = \"Kraschtest\"\ndate = \"{date}\"\ntopics = [\"jamstalldhet\"]"),
            "Text som skickas till alla.",
        ),
    );
    let everyone = extra + 2; // anna (everything) and cecilia (jamstalldhet), plus the extras
    // Kill moments spread from the first build to deep into the dispatch; a fixed sequence,
    // so a failure can be replayed.
    let mut seed: u64 = 0x5EED_C4A5;
    let mut kill_points = Vec::new();
    for _ in 0..kills {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        kill_points.push(Duration::from_millis(50 + (seed >> 33) % 1500));
    }
    for (i, after) in kill_points.iter().enumerate() {
        let daemon = Daemon::start(&p);
        std::thread::sleep(*after);
        daemon.signal("KILL");
        drop(daemon);
        eprintln!(
            "kill {}: after {after:?}, {} messages so far",
            i + 1,
            server.messages().len()
        );
    }
    let _last = Daemon::start(&p);
    let started = std::time::Instant::now();
    while server.per_recipient().len() < everyone {
        assert!(
            started.elapsed() < Duration::from_secs(180),
            "only {} of {everyone} mailed",
            server.per_recipient().len()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(500));

    // Nobody missed; every double has one Message-ID and was attempted again.
    let mut ids: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (rcpt, raw) in server.messages() {
        let m = mail_parser::MessageParser::default()
            .parse(&raw)
            .expect("parse");
        ids.entry(rcpt)
            .or_default()
            .push(m.message_id().expect("Message-ID").to_string());
    }
    assert_eq!(ids.len(), everyone, "nobody missed");
    let report =
        String::from_utf8_lossy(&p.run(&["report", "krasch", "--csv"]).stdout).into_owned();
    let attempts: BTreeMap<&str, u32> = report
        .lines()
        .skip(1)
        .filter_map(|l| {
            let cols: Vec<&str> = l.split(',').collect();
            Some((*cols.first()?, cols.get(3)?.parse().ok()?))
        })
        .collect();
    let mut doubles = 0;
    for (rcpt, got) in &ids {
        if got.len() > 1 {
            doubles += got.len() - 1;
            assert!(
                got.iter().all(|id| *id == got[0]),
                "{rcpt} got different Message-IDs: {got:?}"
            );
            assert!(
                attempts.get(rcpt.as_str()).is_some_and(|n| *n >= 2),
                "{rcpt} was mailed twice but attempted once: it was not in flight at a crash"
            );
        }
    }
    eprintln!(
        "{kills} kills, {everyone} recipients: {doubles} doubles (each in flight at a crash)"
    );
    assert!(
        report.lines().skip(1).all(|l| l.contains(",sent,")),
        "every delivery ends sent"
    );

    // The site the daemon left is what a fresh build gives.
    let fresh = p.path().join("fresh");
    let now = pressroom::clock::now().to_rfc3339();
    p.build_at(&now, &fresh);
    let mut served = files(&p.out());
    let mut built = files(&fresh);
    served.remove(".pressroom-manifest");
    built.remove(".pressroom-manifest");
    let differ: Vec<&String> = built
        .keys()
        .chain(served.keys())
        .filter(|k| built.get(*k) != served.get(*k))
        .collect();
    assert!(differ.is_empty(), "differ from a fresh build: {differ:?}");
}
