//! The embargo-leak sweep: random sets of releases (dates around the build instant, drafts,
//! withdrawals, topics, languages, attachments) built at a random instant. For every
//! release that is not public at that instant, no byte of its title, slug, body, topic or
//! attachment name may appear in any output file or file name; for a withdrawn one, its
//! body and attachments are gone. Runs in process (the library's `Builder`) so thousands
//! of cases fit in the suite; `PROPTEST_CASES=100000 cargo test --test it appears_in_any_output`
//! is the long run.
//!
//! The second sweep runs the real daemon with a real SMTP server: every URL a reader could
//! try, asked again and again while releases lift, and every mail it sends. Three cases
//! in the suite; `PRESSROOM_DAEMON_SWEEP_CASES=50 cargo test --test it reaches_a_reader`
//! is the long run.

use std::path::Path;

use chrono::{DateTime, TimeDelta, Utc};
use pressroom::build::Builder;
use pressroom::config::Config;
use pressroom::planner::{self, Visibility};
use proptest::prelude::*;

const CONFIG: &str = r#"
[site]
title = "Pressrum"
base_url = "https://press.example.org/"
lang = "sv"
timezone = "Europe/Stockholm"
feed_items = 3
"#;

#[derive(Debug, Clone)]
struct Spec {
    /// Seconds from the build instant to the release's date.
    offset: i64,
    draft: bool,
    withdrawn: bool,
    lang: &'static str,
    shared_topic: bool,
    attachment: bool,
    image: bool,
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        prop_oneof![
            Just(0i64),
            Just(1),
            Just(-1),
            Just(60),
            Just(-60),
            -3 * 86_400..3 * 86_400i64,
        ],
        prop::bool::weighted(0.15),
        prop::bool::weighted(0.15),
        prop_oneof![Just("sv"), Just("en"), Just("de-AT")],
        any::<bool>(),
        any::<bool>(),
        prop::bool::weighted(0.3),
    )
        .prop_map(
            |(offset, draft, withdrawn, lang, shared_topic, attachment, image)| Spec {
                offset,
                draft,
                withdrawn,
                lang,
                shared_topic,
                attachment,
                image,
            },
        )
}

/// The words only release `i` carries: nothing else in the site can contain them.
struct Secrets {
    title: String,
    slug: String,
    sentence: String,
    topic: String,
    attachment: String,
}

fn secrets(i: usize, salt: u32) -> Secrets {
    let tok = format!("qz{salt:x}x{i}");
    Secrets {
        title: format!("Rubrikord{tok}"),
        slug: format!("slugg-{tok}"),
        sentence: format!("Meningsord{tok}"),
        topic: format!("amne-{tok}"),
        attachment: format!("bilaga-{tok}.pdf"),
    }
}

fn write_release(dir: &Path, spec: &Spec, s: &Secrets, date: DateTime<Utc>) {
    let mut front = format!(
        "title = \"Nyhet {}\"\ndate = \"{}\"\nslug = \"{}\"\nlang = \"{}\"\ntopics = [\"{}\"{}]\n",
        s.title,
        date.to_rfc3339(),
        s.slug,
        spec.lang,
        s.topic,
        if spec.shared_topic {
            ", \"gemensamt\""
        } else {
            ""
        },
    );
    if spec.draft {
        front.push_str("draft = true\n");
    }
    if spec.withdrawn {
        front.push_str("withdrawn = \"Felaktiga uppgifter\"\n");
    }
    let bundle = spec.attachment || spec.image;
    if spec.attachment {
        front.push_str(&format!("attachments = [\"{}\"]\n", s.attachment));
    }
    if spec.image {
        front.push_str(&format!(
            "image = \"bild-{}.png\"\nimage_alt = \"Bild\"\n",
            s.slug
        ));
    }
    let text = format!(
        "+++\n{front}+++\n\nFörsta stycket med {}.\n\nAndra stycket, [en länk](bilaga).\n",
        s.sentence
    );
    if bundle {
        let folder = dir.join(format!("releases/{}", s.slug));
        std::fs::create_dir_all(&folder).expect("bundle");
        std::fs::write(folder.join("index.md"), text).expect("write");
        if spec.attachment {
            std::fs::write(folder.join(&s.attachment), b"%PDF-1.4 test").expect("attachment");
        }
        if spec.image {
            // A one-pixel PNG.
            std::fs::write(
                folder.join(format!("bild-{}.png", s.slug)),
                b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89",
            )
            .expect("image");
        }
    } else {
        std::fs::write(dir.join(format!("releases/{}.md", s.slug)), text).expect("write");
    }
}

/// Every output file's path and bytes, as one searchable text per file.
fn site_texts(out: &Path) -> Vec<(String, String)> {
    super::files(out)
        .into_iter()
        .map(|(path, bytes)| {
            let text = String::from_utf8_lossy(&bytes).into_owned();
            (path, text)
        })
        .collect()
}

fn sweep(specs: &[Spec], at_secs: i64, salt: u32) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().expect("dir");
    std::fs::create_dir_all(dir.path().join("releases")).expect("releases");
    let at = DateTime::<Utc>::from_timestamp(at_secs, 0).expect("instant");
    let all: Vec<Secrets> = (0..specs.len()).map(|i| secrets(i, salt)).collect();
    for (spec, s) in specs.iter().zip(&all) {
        write_release(dir.path(), spec, s, at + TimeDelta::seconds(spec.offset));
    }
    let (config, _) = Config::parse(
        CONFIG,
        &dir.path().join("config/pressroom.toml"),
        dir.path(),
    )
    .map_err(|d| TestCaseError::fail(format!("config: {d:?}")))?;
    let out = dir.path().join("public");
    let mut builder = Builder::new(config, out.clone());
    let report = builder
        .build(at)
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(report.errors(), 0, "{:?}", report.diags);
    let texts = site_texts(&out);
    let releases = builder.load().releases;
    for (spec, s) in specs.iter().zip(&all) {
        let r = releases
            .iter()
            .find(|r| r.slug.as_str() == s.slug)
            .expect("parsed");
        let forbidden: Vec<&str> = match planner::visibility(r, at) {
            Visibility::Public => continue,
            // Its notice names it; its text and files are gone.
            Visibility::Withdrawn { .. } => vec![&s.sentence, &s.attachment],
            Visibility::Draft | Visibility::Embargoed { .. } | Visibility::WithdrawnUnpublished => {
                vec![&s.title, &s.slug, &s.sentence, &s.topic, &s.attachment]
            }
        };
        for (path, text) in &texts {
            for secret in &forbidden {
                prop_assert!(
                    !path.contains(secret) && !text.contains(secret),
                    "`{}` of a release {:?} at {} (date {}) appears in {}",
                    secret,
                    planner::visibility(r, at),
                    at,
                    r.date,
                    path
                );
            }
        }
        let _ = spec;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        // PROPTEST_CASES overrides it for the long run.
        cases: 3000,
        ..ProptestConfig::default()
    })]

    #[test]
    fn nothing_of_a_release_that_is_not_public_appears_in_any_output(
        specs in prop::collection::vec(spec(), 1..6),
        // 2000-01-01 .. 2040-01-01: summer and winter time, leap days.
        at_secs in 946_684_800i64..2_208_988_800,
        salt in any::<u32>(),
    ) {
        sweep(&specs, at_secs, salt)?;
    }
}

/// Dates around the real now, for a running daemon: long past, just past, lifting within
/// the few seconds the case runs, and well ahead.
fn daemon_spec() -> impl Strategy<Value = Spec> {
    (
        spec(),
        prop_oneof![
            -2 * 86_400..-100i64,
            Just(-2),
            2..6i64,
            2..6i64,
            Just(3_600),
            100..2 * 86_400i64
        ],
    )
        .prop_map(|(spec, offset)| Spec { offset, ..spec })
}

/// What a reader may never see of release `s` in an answer received at `t`.
fn forbidden_at<'a>(
    spec: &Spec,
    s: &'a Secrets,
    date: DateTime<Utc>,
    t: DateTime<Utc>,
) -> Vec<&'a str> {
    // Withdrawn from the start: it was never published, so not even a notice names it.
    if spec.draft || spec.withdrawn || date > t {
        vec![&s.title, &s.slug, &s.sentence, &s.topic, &s.attachment]
    } else {
        Vec::new()
    }
}

/// The sweep against a running daemon: every URL a reader could try (pages, feeds, topic
/// and language pages, attachments, the sitemap, `/metrics`, `/healthz`, a 404), asked
/// again and again while some releases lift, and every mail it sends. An answer received
/// before a release's minute holds nothing of it; a mail carries only releases public
/// when it arrived.
fn daemon_sweep(specs: &[Spec], salt: u32) -> Result<(), TestCaseError> {
    use std::time::{Duration, Instant};
    let (_dir, server, p, _port) = super::daemon::with_smtp(0);
    p.set_config("feed_items = 50", "feed_items = 3");
    let now = pressroom::clock::now();
    let all: Vec<Secrets> = (0..specs.len()).map(|i| secrets(i, salt)).collect();
    let dates: Vec<DateTime<Utc>> = specs
        .iter()
        .map(|s| now + TimeDelta::seconds(s.offset))
        .collect();
    for ((spec, s), date) in specs.iter().zip(&all).zip(&dates) {
        write_release(p.path(), spec, s, *date);
    }
    let daemon = super::daemon::Daemon::start(&p);
    let http = super::daemon::client();
    let year = now
        .with_timezone(&chrono_tz::Europe::Stockholm)
        .format("%Y")
        .to_string();
    let mut urls: Vec<String> = [
        "/",
        "/feed.rss",
        "/feed.atom",
        "/feed.json",
        "/sitemap.xml",
        "/metrics",
        "/healthz",
        "/no-such-page",
        "/topics/gemensamt/",
        "/topics/gemensamt/feed.atom",
    ]
    .iter()
    .map(|u| u.to_string())
    .collect();
    urls.push(format!("/archive/{year}/"));
    for (spec, s) in specs.iter().zip(&all) {
        let lang = spec.lang.to_lowercase();
        urls.extend([
            format!("/releases/{}/", s.slug),
            format!("/releases/{}/{}", s.slug, s.attachment),
            format!("/releases/{}/bild-{}.png", s.slug, s.slug),
            format!("/topics/{}/", s.topic),
            format!("/topics/{}/feed.json", s.topic),
            format!("/lang/{lang}/"),
            format!("/lang/{lang}/feed.rss"),
        ]);
    }
    let lifts = dates.iter().filter(|d| **d > now).max().copied();
    let until = Instant::now()
        + lifts
            .map(|l| (l - pressroom::clock::now()).to_std().unwrap_or_default())
            .unwrap_or_default()
            .min(Duration::from_secs(8))
        + Duration::from_millis(1500);
    let mut asked = 0;
    loop {
        for url in &urls {
            let Ok(r) = http.get(format!("{}{url}", daemon.base)).send() else {
                continue;
            };
            let headers = format!("{:?}", r.headers());
            let body = String::from_utf8_lossy(&r.bytes().unwrap_or_default()).into_owned();
            let received = pressroom::clock::now();
            asked += 1;
            for ((spec, s), date) in specs.iter().zip(&all).zip(&dates) {
                for secret in forbidden_at(spec, s, *date, received) {
                    prop_assert!(
                        !body.contains(secret) && !headers.contains(secret),
                        "`{}` (date {}, draft {}, withdrawn {}) in {} received at {}",
                        secret,
                        date,
                        spec.draft,
                        spec.withdrawn,
                        url,
                        received
                    );
                }
            }
        }
        // The files on disk, by name, judged at the end of the listing. The daemon may be
        // renaming files meanwhile, so only names are taken.
        let names = super::live_names(&p.out());
        let listed = pressroom::clock::now();
        for ((spec, s), date) in specs.iter().zip(&all).zip(&dates) {
            for secret in forbidden_at(spec, s, *date, listed) {
                prop_assert!(
                    names.iter().all(|n| !n.contains(secret)),
                    "`{}` names a file at {}",
                    secret,
                    listed
                );
            }
        }
        if Instant::now() > until {
            break;
        }
    }
    // Not a vacuous pass: every release public by now has its page.
    let end = pressroom::clock::now();
    for ((spec, s), date) in specs.iter().zip(&all).zip(&dates) {
        if !spec.draft && !spec.withdrawn && *date <= end - TimeDelta::seconds(1) {
            let (status, _) =
                super::daemon::get(&http, &daemon.base, &format!("/releases/{}/", s.slug));
            prop_assert_eq!(status, 200, "{} is public and has no page", s.slug);
        }
    }
    prop_assert!(asked > urls.len());
    // The mail sent meanwhile: only releases public when it arrived.
    std::thread::sleep(Duration::from_millis(500));
    for (at, rcpt, bytes) in server.received() {
        let text = String::from_utf8_lossy(&bytes);
        let received =
            DateTime::<Utc>::from_timestamp_millis((at * 1000.0) as i64).expect("instant");
        for ((spec, s), date) in specs.iter().zip(&all).zip(&dates) {
            for secret in forbidden_at(spec, s, *date, received) {
                prop_assert!(
                    !text.contains(secret),
                    "`{}` in a mail to {} received at {}",
                    secret,
                    rcpt,
                    received
                );
            }
        }
    }
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
    let releases = (prop::collection::vec(daemon_spec(), 2..6), any::<u32>());
    if let Err(failure) = runner.run(&releases, |(specs, salt)| daemon_sweep(&specs, salt)) {
        panic!("{failure}");
    }
}
