//! The sweep against a running daemon, with a real SMTP server, on the shipped config
//! (`feed_items` 3, the dispatch window always open) and a media list of the test's own.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Datelike, NaiveTime, Utc};
use chrono_tz::Tz;
use proptest::prelude::*;

use super::{Case, Form, Spec, form, spec, write_case};

/// The shipped config's time zone and `publish_time`.
const SAMPLE_TZ: Tz = chrono_tz::Europe::Stockholm;
const SAMPLE_PUBLISH_TIME: NaiveTime = NaiveTime::MIN;

/// The daemon sweep's media list, written by the test over the shipped one: (address,
/// language, topics). Who gets what is worked out from these rows by SPEC §4 (topics
/// intersect or the row takes everything; a language, if set, matches by RFC 4647 basic
/// filtering both ways), not asked of the daemon.
const MEDIA: &[(&str, Option<&str>, &[&str])] = &[
    ("anna.lind@example.org", Some("sv"), &[]),
    ("sv.se@example.org", Some("sv-SE"), &[]),
    ("david.holm@example.com", Some("en"), &[]),
    ("tyska@example.org", Some("de"), &[]),
    ("osterrike@example.org", Some("de-AT"), &[]),
    ("gemensam@example.org", None, &["gemensamt"]),
    ("sport@example.org", None, &["sport"]),
    ("franska@example.org", Some("fr"), &[]),
];

/// A journalist who subscribed themselves for the daily digest (every topic, every
/// language), which the sweep's config makes every two seconds: a digest holds only
/// releases public when it arrives, never the same release twice.
const DIGEST: &str = "digest@example.com";

/// The shipped config's `[dispatch] catch_up`: a release first seen later than this after
/// its date is published but not mailed.
const CATCH_UP_SECS: i64 = 24 * 3600;

/// RFC 4647 basic filtering, case-insensitive: `range` is `tag` or a prefix of it that
/// ends at a subtag.
fn lang_range_matches(range: &str, tag: &str) -> bool {
    let (range, tag) = (range.to_lowercase(), tag.to_lowercase());
    tag == range || tag.starts_with(&format!("{range}-"))
}

/// The rows of [`MEDIA`] release `spec` is for.
fn targeted(spec: &Spec) -> BTreeSet<String> {
    let topics: &[&str] = if spec.shared_topic {
        &["gemensamt"]
    } else {
        &[]
    };
    MEDIA
        .iter()
        .filter(|(_, lang, wants)| {
            (wants.is_empty() || wants.iter().any(|t| topics.contains(t)))
                && lang.is_none_or(|l| {
                    lang_range_matches(l, spec.lang) || lang_range_matches(spec.lang, l)
                })
        })
        .map(|(address, _, _)| address.to_string())
        .collect()
}

/// A form of date a daemon's case can lift at: any but a day alone (its lift is a midnight).
fn daemon_form() -> impl Strategy<Value = Form> {
    form().prop_map(|f| match f {
        Form::Day => Form::Local,
        f => f,
    })
}

/// Dates around the real now, for a running daemon: long past (more and less than
/// `catch_up` ago, never within ten minutes of it), just past, lifting within the few
/// seconds the case runs, and well ahead.
fn daemon_spec() -> impl Strategy<Value = Spec> {
    (
        spec(),
        prop_oneof![
            -2 * 86_400..-CATCH_UP_SECS - 600,
            -CATCH_UP_SECS + 600..-100i64,
            Just(-2),
            2..6i64,
            2..6i64,
            Just(3_600),
            100..2 * 86_400i64
        ],
        daemon_form(),
    )
        .prop_map(|(spec, offset, form)| Spec {
            offset,
            form,
            ..spec
        })
}

/// A release whose mail must leave during the case: public at its start or within
/// seconds, and first seen well within `catch_up`. Every case has one, so every case
/// proves mail is sent, not only that nothing leaks.
fn mailed_spec() -> impl Strategy<Value = Spec> {
    (
        daemon_spec(),
        prop_oneof![Just(-2i64), 2..6i64, -3_600..-100i64],
    )
        .prop_map(|(spec, offset)| Spec {
            offset,
            draft: false,
            withdrawn: false,
            ..spec
        })
}

/// Whether a reader may see nothing of release `s` in an answer received at `t`: every
/// marker of it is forbidden then.
fn hidden_at(spec: &Spec, date: DateTime<Utc>, t: DateTime<Utc>) -> bool {
    // Withdrawn from the start: it was never published, so not even a notice names it.
    spec.draft || spec.withdrawn || date > t
}

/// Every URL a reader could try for these releases: the site's pages and feeds, the
/// sitemap, `/metrics`, `/healthz`, a 404, and for each release its page (with and
/// without the slash), attachment and image, its topics' and language's pages and
/// feeds, its year's archive (and this year's) and each archive's second page, and a
/// search for its title and body.
fn urls_for(cases: &[Case], now: DateTime<Utc>) -> Vec<String> {
    let mut urls: BTreeSet<String> = [
        "/",
        "/feed.rss",
        "/feed.atom",
        "/feed.json",
        "/sitemap.xml",
        "/metrics",
        "/healthz",
        "/no-such-page",
        // The sign-up form lists the topics and languages published.
        "/subscribe/",
    ]
    .iter()
    .map(|u| u.to_string())
    .collect();
    let year = |t: DateTime<Utc>| t.with_timezone(&SAMPLE_TZ).year();
    urls.insert(format!("/archive/{}/", year(now)));
    urls.insert(format!("/archive/{}/page/2/", year(now)));
    for c in cases {
        let slug = c.s.slug();
        urls.extend([
            format!("/releases/{slug}/"),
            format!("/releases/{slug}"),
            format!("/releases/{slug}/{}", c.s.attachment_name()),
            format!("/releases/{slug}/{}", c.s.image_name()),
            format!("/archive/{}/", year(c.date)),
            format!("/archive/{}/page/2/", year(c.date)),
            // Search, by a word of its title and one of its body: in upper case, so that
            // the query the results page shows back is not itself the marker.
            format!("/search?q={}", c.s.title.to_uppercase()),
            format!("/search?q={}", c.s.body.to_uppercase()),
        ]);
        let mut lists = vec![
            format!("/topics/{}/", c.s.topic()),
            format!("/lang/{}/", c.spec.lang.to_lowercase()),
        ];
        if c.spec.shared_topic {
            lists.push("/topics/gemensamt/".into());
        }
        for list in lists {
            for feed in ["feed.atom", "feed.rss", "feed.json"] {
                urls.insert(format!("{list}{feed}"));
            }
            urls.insert(format!("{list}page/2/"));
            urls.insert(list);
        }
    }
    urls.into_iter().collect()
}

/// The release a mail is for, by the title marker in its subject, and the mail parsed.
fn which_release<'a>(
    cases: &[Case],
    raw: &'a [u8],
) -> Result<(usize, mail_parser::Message<'a>), TestCaseError> {
    let m = mail_parser::MessageParser::default()
        .parse(raw)
        .ok_or_else(|| TestCaseError::fail("a message that does not parse"))?;
    let subject = m.subject().unwrap_or("").to_string();
    let i = cases
        .iter()
        .position(|c| subject.contains(&c.s.title))
        .ok_or_else(|| TestCaseError::fail(format!("a mail for nothing planned: {subject}")))?;
    Ok((i, m))
}

/// The sweep against a running daemon: every URL a reader could try for the case's
/// releases, asked again and again while some of them lift, and every mail it sends. An
/// answer received before a release's minute holds nothing of it, and every request is
/// answered; what is public by the end is there; and the mail is what the spec says:
/// each release public during the case and first seen within `catch_up` goes once to
/// each journalist it targets, after its date, carrying its text, and nothing else goes
/// to anyone.
fn daemon_sweep(specs: &[Spec], salt: u32) -> Result<(), TestCaseError> {
    use std::time::{Duration, Instant};
    let (_dir, server, p, _port) = crate::daemon::with_smtp(0);
    p.set_config("feed_items = 50", "feed_items = 3");
    let mut media = String::from("email,name,outlet,lang,topics\n");
    for (address, lang, topics) in MEDIA {
        media.push_str(&format!(
            "{address},Journalist,Redaktion,{},{}\n",
            lang.unwrap_or(""),
            topics.join("|")
        ));
    }
    p.write("config/media.csv", media);
    p.set_config("digest = \"0 0 7 * * *\"", "digest = \"*/2 * * * * *\"");
    let subscribed = pressroom::clock::now();
    {
        let mut ledger =
            pressroom::ledger::Ledger::open_in(&p.path().join("state")).expect("ledger");
        ledger
            .put_subscriber(&crate::subscribers::subscriber(DIGEST, "", "", "digest"))
            .expect("subscriber");
        let mut row = ledger.subscriber(DIGEST).expect("read").expect("written");
        row.digest_from = subscribed;
        row.confirmed_at = subscribed;
        ledger.put_subscriber(&row).expect("subscriber");
    }
    let now = pressroom::clock::now();
    let cases = write_case(p.path(), specs, salt, now, (SAMPLE_TZ, SAMPLE_PUBLISH_TIME));
    let daemon = crate::daemon::Daemon::start(&p);
    let started = pressroom::clock::now();
    let http = crate::daemon::client();
    let urls = urls_for(&cases, now);
    let get = |url: &str| -> Result<(u16, String, String), TestCaseError> {
        let r = http
            .get(format!("{}{url}", daemon.base))
            .send()
            .map_err(|e| TestCaseError::fail(format!("GET {url} failed: {e}")))?;
        let status = r.status().as_u16();
        let headers = format!("{:?}", r.headers());
        let body = r
            .bytes()
            .map_err(|e| TestCaseError::fail(format!("GET {url}: the body broke off: {e}")))?;
        Ok((status, headers, String::from_utf8_lossy(&body).into_owned()))
    };

    let lifts = cases.iter().map(|c| c.date).filter(|d| *d > now).max();
    let until = Instant::now()
        + lifts
            .map(|l| (l - pressroom::clock::now()).to_std().unwrap_or_default())
            .unwrap_or_default()
            .min(Duration::from_secs(8))
        + Duration::from_millis(1500);
    // At least twice round, however slow a round is.
    for round in 0.. {
        for url in &urls {
            let (_, headers, body) = get(url)?;
            let received = pressroom::clock::now();
            for c in &cases {
                if hidden_at(&c.spec, c.date, received) {
                    let leak = c.s.leak(&body, &[]).or_else(|| c.s.leak(&headers, &[]));
                    prop_assert!(
                        leak.is_none(),
                        "`{}` (date {}, draft {}, withdrawn {}) in {} received at {}",
                        leak.unwrap_or_default(),
                        c.date,
                        c.spec.draft,
                        c.spec.withdrawn,
                        url,
                        received
                    );
                }
            }
        }
        // The files on disk, by name, judged at the end of the listing. The daemon may be
        // renaming files meanwhile, so only names are taken.
        let names = crate::live_names(&p.out());
        let listed = pressroom::clock::now();
        for c in &cases {
            if hidden_at(&c.spec, c.date, listed) {
                let leak = names.iter().find_map(|n| c.s.leak(n, &[]));
                prop_assert!(
                    leak.is_none(),
                    "`{}` names a file at {}",
                    leak.unwrap_or_default(),
                    listed
                );
            }
        }
        if round >= 1 && Instant::now() > until {
            break;
        }
    }

    // Not a vacuous pass: every release public by now is on its page, its topic's feed
    // and its year's archive, with its files.
    let end = pressroom::clock::now();
    for c in cases.iter().filter(|c| !hidden_at(&c.spec, c.date, end)) {
        let slug = c.s.slug();
        let year = c.date.with_timezone(&SAMPLE_TZ).year();
        for url in [
            format!("/releases/{slug}/"),
            format!("/topics/{}/feed.atom", c.s.topic()),
            format!("/archive/{year}/"),
            format!("/search?q={}", c.s.title.to_uppercase()),
        ] {
            let (status, _, body) = get(&url)?;
            prop_assert!(
                status == 200 && body.contains(&c.s.title),
                "{} is public and {} answers {} without it",
                slug,
                url,
                status
            );
        }
        let files = [
            (
                c.spec.attachment,
                c.s.attachment_name(),
                c.s.attachment_bytes(),
            ),
            (c.spec.image, c.s.image_name(), c.s.image_bytes()),
        ];
        for (_, name, bytes) in files.into_iter().filter(|f| f.0) {
            let url = format!("{}/releases/{slug}/{name}", daemon.base);
            let got = http
                .get(&url)
                .send()
                .and_then(|r| r.error_for_status())
                .and_then(|r| r.bytes())
                .map_err(|e| TestCaseError::fail(format!("GET {url}: {e}")))?;
            prop_assert!(*got == *bytes, "{} is not the file published", url);
        }
    }

    // The mail: each release public during the case (and first seen within catch_up)
    // to each journalist it targets, once.
    let mailed = |c: &Case| {
        !c.spec.draft
            && !c.spec.withdrawn
            && c.date <= end
            && (started.max(c.date) - c.date).num_seconds() <= CATCH_UP_SECS
    };
    let wanted: BTreeSet<(usize, String)> = cases
        .iter()
        .enumerate()
        .filter(|(_, c)| mailed(c))
        .flat_map(|(i, c)| targeted(&c.spec).into_iter().map(move |r| (i, r)))
        .collect();
    prop_assert!(!wanted.is_empty(), "a case that mails nobody: {:?}", specs);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut got = BTreeSet::new();
        for (_, rcpt, raw) in server.received() {
            if rcpt == DIGEST {
                continue;
            }
            got.insert((which_release(&cases, &raw)?.0, rcpt));
        }
        if got.is_superset(&wanted) {
            break;
        }
        prop_assert!(
            Instant::now() < deadline,
            "mail still missing 30 s after the sweep: {:?}",
            wanted.difference(&got).collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Not a vacuous digest: a release that lifted during the sweep, public at its end, is
    // in a digest (made `digest::LAG` after the period it lifted in).
    let lifted: Vec<&Case> = cases
        .iter()
        .filter(|c| c.date > subscribed && !hidden_at(&c.spec, c.date, end))
        .collect();
    if let Some(c) = lifted.first() {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !server.received().iter().any(|(_, rcpt, raw)| {
            rcpt == DIGEST
                && mail_parser::MessageParser::default()
                    .parse(raw)
                    .and_then(|m| m.body_text(0).map(|t| t.contains(&c.s.title)))
                    .unwrap_or(false)
        }) {
            prop_assert!(
                Instant::now() < deadline,
                "{} lifted during the sweep and is in no digest 30 s later",
                c.s.slug()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    // Anything more would come within a moment.
    std::thread::sleep(Duration::from_millis(700));
    let mut got: BTreeMap<(usize, String), usize> = BTreeMap::new();
    let mut digested: BTreeMap<usize, usize> = BTreeMap::new();
    for (at, rcpt, raw) in server.received() {
        let received =
            DateTime::<Utc>::from_timestamp_millis((at * 1000.0) as i64).expect("instant");
        if rcpt == DIGEST {
            // A digest: nothing of a release not public when it arrived; each release in
            // one digest at most.
            let m = mail_parser::MessageParser::default()
                .parse(&raw)
                .ok_or_else(|| TestCaseError::fail("a digest that does not parse"))?;
            let decoded = format!(
                "{}\n{}\n{}\n{}",
                String::from_utf8_lossy(&raw),
                m.subject().unwrap_or(""),
                m.body_text(0).unwrap_or_default(),
                m.body_html(0).unwrap_or_default()
            );
            for (i, c) in cases.iter().enumerate() {
                if hidden_at(&c.spec, c.date, received) {
                    let leak = c.s.leak(&decoded, &[]);
                    prop_assert!(
                        leak.is_none(),
                        "`{}` in a digest received at {}",
                        leak.unwrap_or_default(),
                        received
                    );
                } else if decoded.contains(&c.s.title) {
                    *digested.entry(i).or_default() += 1;
                }
            }
            continue;
        }
        let (i, m) = which_release(&cases, &raw)?;
        let c = &cases[i];
        *got.entry((i, rcpt.clone())).or_default() += 1;
        prop_assert!(
            wanted.contains(&(i, rcpt.clone())),
            "{} was mailed to {}: not targeted, or not to be mailed ({:?})",
            c.s.slug(),
            rcpt,
            c.spec
        );
        prop_assert!(
            received >= c.date,
            "{} reached {} at {}, before its date {}",
            c.s.slug(),
            rcpt,
            received,
            c.date
        );
        let dated = m.date().map(|d| d.to_timestamp()).unwrap_or(i64::MIN);
        prop_assert!(
            dated >= c.date.timestamp(),
            "{} to {} is dated before its date",
            c.s.slug(),
            rcpt
        );
        let to: Vec<String> = m
            .to()
            .into_iter()
            .flat_map(|a| a.iter())
            .filter_map(|a| a.address().map(str::to_lowercase))
            .collect();
        prop_assert!(to.contains(&rcpt), "{} is addressed to {:?}", rcpt, to);
        let text = m.body_text(0).map(|t| t.into_owned()).unwrap_or_default();
        prop_assert!(
            text.contains(&c.s.body),
            "the mail of {} to {} lacks its text",
            c.s.slug(),
            rcpt
        );
        // Only releases public when it arrived, in its raw bytes and in its decoded parts.
        let decoded = format!(
            "{}\n{}\n{}\n{}",
            String::from_utf8_lossy(&raw),
            m.subject().unwrap_or(""),
            text,
            m.body_html(0).unwrap_or_default()
        );
        for other in &cases {
            if hidden_at(&other.spec, other.date, received) {
                let leak = other.s.leak(&decoded, &[]);
                prop_assert!(
                    leak.is_none(),
                    "`{}` in a mail to {} received at {}",
                    leak.unwrap_or_default(),
                    rcpt,
                    received
                );
            }
        }
    }
    let doubled: Vec<_> = got.iter().filter(|(_, n)| **n > 1).collect();
    prop_assert!(doubled.is_empty(), "mailed twice: {:?}", doubled);
    let twice: Vec<_> = digested.iter().filter(|(_, n)| **n > 1).collect();
    prop_assert!(twice.is_empty(), "in two digests: {:?}", twice);
    Ok(())
}

#[test]
fn nothing_of_a_release_that_is_not_public_reaches_a_reader_of_the_running_daemon() {
    // A runner of its own rather than `proptest!`, whose PROPTEST_CASES (meant for the
    // in-process sweeps) would override the count: each case here runs a daemon for seconds.
    let cases = std::env::var("PRESSROOM_DAEMON_SWEEP_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(3);
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases,
        // Shrinking would take minutes.
        max_shrink_iters: 0,
        source_file: Some(file!()),
        ..ProptestConfig::default()
    });
    let releases = (
        mailed_spec(),
        prop::collection::vec(daemon_spec(), 1..5),
        any::<u32>(),
    );
    let result = runner.run(&releases, |(first, rest, salt)| {
        let specs: Vec<Spec> = std::iter::once(first).chain(rest).collect();
        daemon_sweep(&specs, salt)
    });
    if let Err(failure) = result {
        panic!("{failure}");
    }
}
