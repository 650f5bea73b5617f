//! The in-process sweep: a site built by the library's `Builder` at a random instant
//! (2000-2040, summer and winter time, leap days; a quarter of them at a day's
//! `publish_time` -1/0/+1 s).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use chrono::{DateTime, Datelike, NaiveTime, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;
use pressroom::build::Builder;
use pressroom::config::Config;
use proptest::prelude::*;

use super::{Case, NOTICE_FIELDS, Spec, spec, write_case};

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

/// Public at `at`, by SPEC §4: not a draft, not withdrawn, and dated at or before it.
fn public(spec: &Spec, date: DateTime<Utc>, at: DateTime<Utc>) -> bool {
    !spec.draft && !spec.withdrawn && date <= at
}

/// Withdrawn after its date: its page may remain as a notice (title, date, reason).
fn notice(spec: &Spec, date: DateTime<Utc>, at: DateTime<Utc>) -> bool {
    !spec.draft && spec.withdrawn && date <= at
}

/// Every output file's path and bytes, as one searchable text per file.
fn site_texts(out: &Path) -> Vec<(String, String)> {
    crate::files(out)
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
