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

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use chrono::{
    DateTime, Datelike, FixedOffset, LocalResult, NaiveTime, TimeDelta, TimeZone, Timelike, Utc,
};
use chrono_tz::Tz;
use pressroom::build::Builder;
use pressroom::config::Config;
use proptest::prelude::*;

/// The in-process sweep's site. What the test needs of it is restated below as constants,
/// so that the test's idea of what is public never comes from the code under test.
const CONFIG: &str = r#"
[site]
title = "Pressrum"
base_url = "https://press.example.org/"
lang = "sv"
timezone = "Europe/Stockholm"
publish_time = "09:30"
feed_items = 3
"#;
const SITE_TZ: Tz = chrono_tz::Europe::Stockholm;
const BASE_URL: &str = "https://press.example.org/";
const FEED_ITEMS: usize = 3;

fn publish_time() -> NaiveTime {
    NaiveTime::from_hms_opt(9, 30, 0).expect("09:30")
}

/// How a release's date is written in its front matter.
#[derive(Debug, Clone, Copy)]
enum Form {
    /// RFC 3339 in UTC (`Z`).
    Utc,
    /// RFC 3339 with this offset from UTC, in minutes.
    Offset(i32),
    /// A local date-time, read in the site's time zone.
    Local,
    /// A date alone: that day at the site's `publish_time`, in its time zone.
    Day,
}

#[derive(Debug, Clone)]
struct Spec {
    /// Seconds from the build instant to the instant the date is written from (for
    /// `Form::Day`, its day in the site's zone).
    offset: i64,
    draft: bool,
    withdrawn: bool,
    lang: &'static str,
    shared_topic: bool,
    attachment: bool,
    image: bool,
    form: Form,
    /// A TOML date-time value rather than a string.
    bare: bool,
    /// An `id` in the front matter (else the release gets its default one).
    explicit_id: bool,
}

fn form() -> impl Strategy<Value = Form> {
    prop_oneof![
        Just(Form::Utc),
        prop_oneof![
            Just(0),
            Just(120),
            Just(-300),
            Just(330),
            Just(345),
            Just(-570),
            Just(840)
        ]
        .prop_map(Form::Offset),
        Just(Form::Local),
        Just(Form::Day),
    ]
}

fn spec() -> impl Strategy<Value = Spec> {
    (
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
        ),
        (
            any::<bool>(),
            any::<bool>(),
            prop::bool::weighted(0.3),
            form(),
            any::<bool>(),
            any::<bool>(),
        ),
    )
        .prop_map(
            |(
                (offset, draft, withdrawn, lang),
                (shared_topic, attachment, image, form, bare, explicit_id),
            )| Spec {
                offset,
                draft,
                withdrawn,
                lang,
                shared_topic,
                attachment,
                image,
                form,
                bare,
                explicit_id,
            },
        )
}

/// The date as the front matter writes it, and the instant that means, worked out here
/// from the site's zone and `publish_time` with chrono-tz.
fn write_date(
    spec: &Spec,
    instant: DateTime<Utc>,
    tz: Tz,
    publish: NaiveTime,
) -> (String, DateTime<Utc>) {
    // Written to the second: the instant meant is the whole second.
    let instant = instant.with_nanosecond(0).expect("a whole second");
    let with_offset = |t: DateTime<Utc>| t.with_timezone(&tz).format("%Y-%m-%dT%H:%M:%S%:z");
    let (text, date) = match spec.form {
        Form::Utc => (instant.format("%Y-%m-%dT%H:%M:%SZ").to_string(), instant),
        Form::Offset(minutes) => {
            let zone = FixedOffset::east_opt(minutes * 60).expect("an offset");
            let text = instant.with_timezone(&zone).format("%Y-%m-%dT%H:%M:%S%:z");
            (text.to_string(), instant)
        }
        Form::Local => {
            let local = instant.with_timezone(&tz).naive_local();
            match tz.from_local_datetime(&local) {
                LocalResult::Single(_) => (local.format("%Y-%m-%dT%H:%M:%S").to_string(), instant),
                // The autumn hour that happens twice: the local time alone would not say
                // which, so the site's offset is written too.
                _ => (with_offset(instant).to_string(), instant),
            }
        }
        Form::Day => {
            let day = instant.with_timezone(&tz).date_naive();
            let date = tz
                .from_local_datetime(&day.and_time(publish))
                .single()
                .expect("the publish time exists every day")
                .with_timezone(&Utc);
            (day.format("%Y-%m-%d").to_string(), date)
        }
    };
    let text = if spec.bare {
        text
    } else {
        format!("\"{text}\"")
    };
    (text, date)
}

/// Public at `at`, by SPEC §4: not a draft, not withdrawn, and dated at or before it.
fn public(spec: &Spec, date: DateTime<Utc>, at: DateTime<Utc>) -> bool {
    !spec.draft && !spec.withdrawn && date <= at
}

/// Withdrawn after its date: its page may remain as a notice (title, date, reason).
fn notice(spec: &Spec, date: DateTime<Utc>, at: DateTime<Utc>) -> bool {
    !spec.draft && spec.withdrawn && date <= at
}

/// The markers only release `i` carries, one per field: a two-letter field code and the
/// release's tag. Each is lowercase letters and digits, so no escaping (HTML, XML, JSON,
/// URLs) changes it, and it is written inside a word, so that a part of a field that
/// leaks is found as well as a whole one.
struct Secrets {
    /// What every marker of this release ends with, and nothing else in a site holds.
    tag: String,
    title: String,
    slug: String,
    summary: String,
    body: String,
    alt: String,
    name: String,
    role: String,
    phone: String,
    email: String,
    id: String,
    topic: String,
    attachment: String,
    attachment_bytes: String,
    image: String,
    image_bytes: String,
}

/// The fields a withdrawn release's notice may show: its title, slug and topic.
const NOTICE_FIELDS: &[&str] = &["ti", "sl", "to"];

impl Secrets {
    fn new(i: usize, salt: u32) -> Secrets {
        let tag = format!("{salt:08x}r{i}z");
        let m = |field: &str| format!("{field}{tag}");
        Secrets {
            title: m("ti"),
            slug: m("sl"),
            summary: m("su"),
            body: m("bo"),
            alt: m("al"),
            name: m("na"),
            role: m("ro"),
            phone: m("ph"),
            email: m("em"),
            id: m("id"),
            topic: m("to"),
            attachment: m("at"),
            attachment_bytes: m("ab"),
            image: m("im"),
            image_bytes: m("ib"),
            tag,
        }
    }

    /// The first marker of this release in `text` whose field is not `allowed` (any part
    /// of the release that shows its tag: every field carries it). One search for the tag
    /// rather than one per field keeps thousands of cases fast.
    fn leak<'t>(&self, text: &'t str, allowed: &[&str]) -> Option<&'t str> {
        text.match_indices(&self.tag).find_map(|(at, _)| {
            let from = at.saturating_sub(2);
            let field = text.get(from..at).unwrap_or("");
            (!allowed.contains(&field)).then(|| &text[from..at + self.tag.len()])
        })
    }

    fn slug(&self) -> String {
        format!("n{}x", self.slug)
    }
    fn topic(&self) -> String {
        format!("amne-{}", self.topic)
    }
    fn attachment_name(&self) -> String {
        format!("bilaga{}.pdf", self.attachment)
    }
    fn attachment_bytes(&self) -> Vec<u8> {
        format!("%PDF-1.4 innehall{}slut", self.attachment_bytes).into_bytes()
    }
    fn image_name(&self) -> String {
        format!("bild{}.png", self.image)
    }
    fn image_bytes(&self) -> Vec<u8> {
        // A PNG signature and header, then the marker.
        let mut png =
            b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89"
                .to_vec();
        png.extend_from_slice(self.image_bytes.as_bytes());
        png
    }
}

/// Writes release `s` dated `date` as the front matter text `date`.
fn write_release(dir: &Path, spec: &Spec, s: &Secrets, date: &str) {
    let mut front = format!(
        "title = \"Nyhet om{}ord\"\ndate = {date}\nslug = \"{}\"\nlang = \"{}\"\nsummary = \"Samman{}fattning.\"\ntopics = [\"{}\"{}]\n",
        s.title,
        s.slug(),
        spec.lang,
        s.summary,
        s.topic(),
        if spec.shared_topic {
            ", \"gemensamt\""
        } else {
            ""
        },
    );
    if spec.explicit_id {
        front.push_str(&format!("id = \"urn:pressroom:{}x\"\n", s.id));
    }
    front.push_str(&format!(
        "contacts = [{{ name = \"Namn{}son\", role = \"Roll{}\", phone = \"070-{}\", email = \"press{}@example.org\" }}]\n",
        s.name, s.role, s.phone, s.email
    ));
    if spec.draft {
        front.push_str("draft = true\n");
    }
    if spec.withdrawn {
        front.push_str("withdrawn = \"Felaktiga uppgifter\"\n");
    }
    let bundle = spec.attachment || spec.image;
    if spec.attachment {
        front.push_str(&format!("attachments = [\"{}\"]\n", s.attachment_name()));
    }
    if spec.image {
        front.push_str(&format!(
            "image = \"{}\"\nimage_alt = \"Bild{}text\"\n",
            s.image_name(),
            s.alt
        ));
    }
    let text = format!(
        "+++\n{front}+++\n\nFörsta stycket med menings{}ord.\n\nAndra stycket, [en länk](bilaga).\n",
        s.body
    );
    if bundle {
        let folder = dir.join(format!("releases/{}", s.slug()));
        std::fs::create_dir_all(&folder).expect("bundle");
        std::fs::write(folder.join("index.md"), text).expect("write");
        if spec.attachment {
            std::fs::write(folder.join(s.attachment_name()), s.attachment_bytes())
                .expect("attachment");
        }
        if spec.image {
            std::fs::write(folder.join(s.image_name()), s.image_bytes()).expect("image");
        }
    } else {
        std::fs::write(dir.join(format!("releases/{}.md", s.slug())), text).expect("write");
    }
}

/// One release of a case: its spec, its markers and the instant its date means.
struct Case {
    spec: Spec,
    s: Secrets,
    date: DateTime<Utc>,
}

/// Writes the releases of a case into `dir`, each dated from `around` + its offset, for a
/// site in zone `tz` whose `publish_time` is `publish`.
fn write_case(
    dir: &Path,
    specs: &[Spec],
    salt: u32,
    around: DateTime<Utc>,
    (tz, publish): (Tz, NaiveTime),
) -> Vec<Case> {
    specs
        .iter()
        .enumerate()
        .map(|(i, spec)| {
            let s = Secrets::new(i, salt);
            let instant = around + TimeDelta::seconds(spec.offset);
            let (text, date) = write_date(spec, instant, tz, publish);
            write_release(dir, spec, &s, &text);
            Case {
                spec: spec.clone(),
                s,
                date,
            }
        })
        .collect()
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

/// Checks one feed file against the public releases it is for (`scope`, indices into
/// `cases`; `shown` is every public one): it holds the newest `FEED_ITEMS` of them (any of
/// those tied at the cut), newest first, each with its title, summary and text (and its
/// id, when the release names one), and nothing else. With `parse`, a third-party parser
/// (feed-rs) reads it entry by entry; without, which is what keeps thousands of cases
/// fast, the markers are looked for in its text and the entries counted.
fn check_feed(
    texts: &BTreeMap<String, String>,
    path: &str,
    cases: &[Case],
    (scope, shown): (&[usize], &[usize]),
    parse: bool,
) -> Result<(), TestCaseError> {
    let text = texts
        .get(path)
        .ok_or_else(|| TestCaseError::fail(format!("{path} is missing")))?;
    let mut listed = Vec::new();
    if parse {
        let feed = feed_rs::parser::parse(text.as_bytes())
            .map_err(|e| TestCaseError::fail(format!("{path} does not parse: {e}")))?;
        for entry in &feed.entries {
            let title = entry
                .title
                .as_ref()
                .map(|t| t.content.as_str())
                .unwrap_or("");
            let i = scope
                .iter()
                .copied()
                .find(|&i| title.contains(&cases[i].s.title))
                .ok_or_else(|| {
                    TestCaseError::fail(format!("{path} lists `{title}`, not one of its releases"))
                })?;
            let c = &cases[i];
            let summary = entry.summary.as_ref().map(|t| t.content.as_str());
            let content = entry.content.as_ref().and_then(|c| c.body.as_deref());
            prop_assert!(
                summary.is_some_and(|t| t.contains(&c.s.summary)),
                "{} has no summary in {}: {:?}",
                c.s.slug(),
                path,
                summary
            );
            prop_assert!(
                content.is_some_and(|t| t.contains(&c.s.body)),
                "{} has no text in {}",
                c.s.slug(),
                path
            );
            if c.spec.explicit_id {
                prop_assert!(
                    entry.id.contains(&c.s.id),
                    "{} has the id {} in {}",
                    c.s.slug(),
                    entry.id,
                    path
                );
            }
            listed.push(i);
        }
    } else {
        let mut found: Vec<(usize, usize)> = scope
            .iter()
            .filter_map(|&i| text.find(&cases[i].s.title).map(|at| (at, i)))
            .collect();
        found.sort();
        listed = found.into_iter().map(|(_, i)| i).collect();
        for &i in &listed {
            let s = &cases[i].s;
            prop_assert!(
                text.contains(&s.summary) && text.contains(&s.body),
                "{} lacks the summary or text of {}",
                path,
                s.slug()
            );
        }
        for &i in shown.iter().filter(|i| !scope.contains(i)) {
            prop_assert!(
                !text.contains(&cases[i].s.title),
                "{} lists {}, which is not one of its releases",
                path,
                cases[i].s.slug()
            );
        }
        let entries = if path.ends_with(".atom") {
            text.matches("<entry>").count()
        } else if path.ends_with(".rss") {
            text.matches("<item>").count()
        } else {
            let json: serde_json::Value = serde_json::from_str(text)
                .map_err(|e| TestCaseError::fail(format!("{path} is not JSON: {e}")))?;
            json["items"].as_array().map_or(0, Vec::len)
        };
        prop_assert_eq!(entries, listed.len(), "{} has entries of no release", path);
    }
    let want = scope.len().min(FEED_ITEMS);
    prop_assert_eq!(
        listed.len(),
        want,
        "{} lists {:?} of {:?}",
        path,
        listed,
        scope
    );
    let unique: BTreeSet<usize> = listed.iter().copied().collect();
    prop_assert_eq!(unique.len(), listed.len(), "{} lists one twice", path);
    for pair in listed.windows(2) {
        prop_assert!(
            cases[pair[0]].date >= cases[pair[1]].date,
            "{} is not newest first",
            path
        );
    }
    if let Some(oldest) = listed.iter().map(|&i| cases[i].date).min() {
        for &i in scope.iter().filter(|i| !unique.contains(i)) {
            prop_assert!(
                cases[i].date <= oldest,
                "{} leaves out {} (dated {}) for an older one",
                path,
                cases[i].s.slug(),
                cases[i].date
            );
        }
    }
    Ok(())
}

fn sweep(specs: &[Spec], at: DateTime<Utc>, salt: u32) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().expect("dir");
    std::fs::create_dir_all(dir.path().join("releases")).expect("releases");
    let cases = write_case(dir.path(), specs, salt, at, (SITE_TZ, publish_time()));
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
    let texts: BTreeMap<String, String> = site_texts(&out).into_iter().collect();

    // Nothing of what is not public, by the test's own reading of each release.
    for c in &cases {
        let allowed = if public(&c.spec, c.date, at) {
            continue;
        } else if notice(&c.spec, c.date, at) {
            NOTICE_FIELDS
        } else {
            &[]
        };
        for (path, text) in &texts {
            let leak = c.s.leak(path, allowed).or_else(|| c.s.leak(text, allowed));
            prop_assert!(
                leak.is_none(),
                "`{}` of a release {:?} at {} (dated {}) appears in {}",
                leak.unwrap_or_default(),
                c.spec,
                at,
                c.date,
                path
            );
        }
    }

    // Everything of what is public: its page, files, feeds, archive and sitemap line.
    let shown: Vec<usize> = (0..cases.len())
        .filter(|&i| public(&cases[i].spec, cases[i].date, at))
        .collect();
    let sitemap = texts.get("sitemap.xml").map(String::as_str).unwrap_or("");
    for &i in &shown {
        let Case { spec, s, date } = &cases[i];
        let slug = s.slug();
        let page = format!("releases/{slug}/index.html");
        let html = texts.get(&page).ok_or_else(|| {
            TestCaseError::fail(format!("{slug} is public and {page} is missing"))
        })?;
        let mut wanted = vec![&s.title, &s.body, &s.name, &s.role, &s.phone, &s.email];
        if spec.image {
            wanted.push(&s.alt);
        }
        if spec.attachment {
            wanted.push(&s.attachment);
        }
        for marker in wanted {
            prop_assert!(
                html.contains(marker.as_str()),
                "{} lacks `{}`",
                page,
                marker
            );
        }
        let files = [
            (spec.attachment, s.attachment_name(), s.attachment_bytes()),
            (spec.image, s.image_name(), s.image_bytes()),
        ];
        for (_, name, bytes) in files.into_iter().filter(|f| f.0) {
            let path = out.join(format!("releases/{slug}/{name}"));
            prop_assert_eq!(
                std::fs::read(&path).ok(),
                Some(bytes),
                "{} is not the file published with {}",
                path.display(),
                slug
            );
        }
        prop_assert!(
            sitemap.contains(&format!("{BASE_URL}releases/{slug}/")),
            "{} is not in the sitemap",
            slug
        );
        let archive = format!("archive/{}/index.html", date.with_timezone(&SITE_TZ).year());
        prop_assert!(
            texts.get(&archive).is_some_and(|t| t.contains(&s.title)),
            "{} is not in {}",
            slug,
            archive
        );
    }
    if let Some(&newest) = shown.iter().max_by_key(|&&i| cases[i].date) {
        let newest_date = cases[newest].date;
        let index = texts.get("index.html").map(String::as_str).unwrap_or("");
        prop_assert!(
            shown
                .iter()
                .filter(|&&i| cases[i].date == newest_date)
                .any(|&i| index.contains(&cases[i].s.title)),
            "the newest public release is not on the front page"
        );
    }

    // The feeds: the site's, each language's, each topic's.
    let mut scopes: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    scopes.insert(String::new(), shown.clone());
    for &i in &shown {
        let c = &cases[i];
        let mut dirs = vec![
            format!("lang/{}/", c.spec.lang.to_lowercase()),
            format!("topics/{}/", c.s.topic()),
        ];
        if c.spec.shared_topic {
            dirs.push("topics/gemensamt/".into());
        }
        for d in dirs {
            scopes.entry(d).or_default().push(i);
        }
    }
    for (dir, scope) in &scopes {
        for format in ["feed.atom", "feed.rss", "feed.json"] {
            let path = format!("{dir}{format}");
            check_feed(&texts, &path, &cases, (scope, &shown), dir.is_empty())?;
        }
    }
    // A language or the shared topic that no public release has (nor a notice) has no
    // pages: their existence would tell of what is coming.
    let listed_somewhere = |has: &dyn Fn(&Case) -> bool| {
        cases
            .iter()
            .any(|c| has(c) && (public(&c.spec, c.date, at) || notice(&c.spec, c.date, at)))
    };
    for lang in ["en", "de-AT"] {
        let dir = format!("lang/{}/", lang.to_lowercase());
        if !listed_somewhere(&|c| c.spec.lang == lang) {
            prop_assert!(
                !texts.keys().any(|p| p.starts_with(&dir)),
                "{} exists with no {} release public at {}",
                dir,
                lang,
                at
            );
        }
    }
    if !listed_somewhere(&|c| c.spec.shared_topic) {
        prop_assert!(
            !texts.keys().any(|p| p.starts_with("topics/gemensamt/")),
            "topics/gemensamt/ exists with none of its releases public at {}",
            at
        );
    }
    Ok(())
}

/// The build instant: `at_secs`, or (`snap`) the site's `publish_time` on that day plus a
/// few seconds, so that releases dated with a day alone are built at their lift.
fn build_instant(at_secs: i64, snap: Option<i64>) -> DateTime<Utc> {
    let at = DateTime::<Utc>::from_timestamp(at_secs, 0).expect("instant");
    let Some(delta) = snap else { return at };
    let day = at.with_timezone(&SITE_TZ).date_naive();
    SITE_TZ
        .from_local_datetime(&day.and_time(publish_time()))
        .single()
        .expect("the publish time exists every day")
        .with_timezone(&Utc)
        + TimeDelta::seconds(delta)
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
        snap in prop_oneof![3 => Just(None), 1 => (-1..=1i64).prop_map(Some)],
        salt in any::<u32>(),
    ) {
        sweep(&specs, build_instant(at_secs, snap), salt)?;
    }
}

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
/// feeds, and its year's archive (and this year's).
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
    ]
    .iter()
    .map(|u| u.to_string())
    .collect();
    let year = |t: DateTime<Utc>| t.with_timezone(&SITE_TZ).year();
    urls.insert(format!("/archive/{}/", year(now)));
    for c in cases {
        let slug = c.s.slug();
        urls.extend([
            format!("/releases/{slug}/"),
            format!("/releases/{slug}"),
            format!("/releases/{slug}/{}", c.s.attachment_name()),
            format!("/releases/{slug}/{}", c.s.image_name()),
            format!("/archive/{}/", year(c.date)),
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
    let (_dir, server, p, _port) = super::daemon::with_smtp(0);
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
    let now = pressroom::clock::now();
    let cases = write_case(p.path(), specs, salt, now, (SITE_TZ, NaiveTime::MIN));
    let daemon = super::daemon::Daemon::start(&p);
    let started = pressroom::clock::now();
    let http = super::daemon::client();
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
        let names = super::live_names(&p.out());
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
        let year = c.date.with_timezone(&SITE_TZ).year();
        for url in [
            format!("/releases/{slug}/"),
            format!("/topics/{}/feed.atom", c.s.topic()),
            format!("/archive/{year}/"),
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
    // Anything more would come within a moment.
    std::thread::sleep(Duration::from_millis(700));
    let mut got: BTreeMap<(usize, String), usize> = BTreeMap::new();
    for (at, rcpt, raw) in server.received() {
        let received =
            DateTime::<Utc>::from_timestamp_millis((at * 1000.0) as i64).expect("instant");
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
