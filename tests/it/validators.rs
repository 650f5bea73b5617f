//! Independent validators: jing with RFC 4287's RELAX NG schema for Atom, and
//! tests/validators/feedcheck.py (Python feedparser plus the rules of RSS 2.0 and JSON
//! Feed 1.1) for every feed of a built site. `.ci/install-validators.sh` installs them.

use std::collections::BTreeMap;
use std::process::Command;

use super::*;

fn validate(out: &Path) -> usize {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let schema = root.join("tests/fixtures/validators/atom.rnc");
    let checker = root.join("tests/validators/feedcheck.py");
    let mut checked = 0;
    for (path, _) in files(out) {
        let format = match path.rsplit('.').next() {
            Some("rss") => "rss",
            Some("atom") => "atom",
            Some("json") if path.ends_with("feed.json") => "json",
            _ => continue,
        };
        let file = out.join(&path);
        let o = Command::new("python3")
            .arg(&checker)
            .arg("--strict")
            .arg(&file)
            .arg(format)
            .output()
            .expect("python3 runs (install with .ci/install-validators.sh)");
        assert!(
            o.status.success(),
            "feedcheck rejects {path}:\n{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        if format == "atom" {
            let o = Command::new("jing")
                .arg("-c")
                .arg(&schema)
                .arg(&file)
                .output()
                .expect("jing runs (install with .ci/install-validators.sh)");
            assert!(
                o.status.success(),
                "jing rejects {path} against RFC 4287:\n{}",
                String::from_utf8_lossy(&o.stdout)
            );
        }
        checked += 1;
    }
    checked
}

#[test]
fn every_feed_of_the_sample_passes_independent_validators() {
    let p = Project::sample();
    let out = p.out();
    p.build_at("2018-10-18T00:00:00+02:00", &out);
    assert_eq!(
        validate(&out),
        15,
        "main, sv and three topics, three formats each"
    );
}

#[test]
fn empty_feeds_before_the_embargo_are_valid_too() {
    let p = Project::sample();
    let out = p.out();
    p.build_at("2018-10-17T23:59:59+02:00", &out);
    assert_eq!(validate(&out), 3);
}

#[test]
fn feeds_with_enclosures_languages_and_corrections_are_valid() {
    let p = Project::sample();
    p.write(
        "releases/2020-03-01-report/index.md",
        release(
            "title = \"Annual report & accounts\"\ndate = 2020-03-01T09:30:00+01:00\nlang = \"en-GB\"\nupdated = 2020-03-02T10:00:00+01:00\ntopics = [\"jamstalldhet\"]\nimage = \"chart.png\"\nimage_alt = \"A chart\"\nattachments = [\"report.pdf\"]\n[[contacts]]\nname = \"Press office\"\nemail = \"press@example.org\"",
            "Read [the report](report.pdf) <b>now</b>.\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\nA footnote.[^1]\n\n[^1]: Here.",
        ),
    );
    p.write("releases/2020-03-01-report/report.pdf", vec![b'%'; 4096]);
    p.write("releases/2020-03-01-report/chart.png", vec![0x89; 512]);
    let out = p.out();
    p.build_at("2020-06-01T00:00:00Z", &out);
    assert_eq!(validate(&out), 18, "main, sv, en-gb and three topics");
}

/// Runs tests/validators/w3c_rules.py on every RSS and Atom feed of a built site, each
/// with the URL it is served at; returns what it checked, summed over the feeds.
fn w3c_rules(out: &Path) -> BTreeMap<String, u64> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/validators/w3c_rules.py");
    let mut checked = BTreeMap::new();
    for (path, _) in files(out) {
        let format = match path.rsplit('.').next() {
            Some("rss") => "rss",
            Some("atom") => "atom",
            _ => continue,
        };
        let o = Command::new("python3")
            .arg(&script)
            .arg(out.join(&path))
            .arg(format)
            .arg(format!("http://127.0.0.1:8080/{path}"))
            .output()
            .expect("python3 runs");
        let stdout = String::from_utf8_lossy(&o.stdout);
        assert!(
            o.status.success(),
            "{path} breaks the W3C Feed Validation Service's rules:\n{stdout}{}",
            String::from_utf8_lossy(&o.stderr)
        );
        let counts: BTreeMap<String, u64> =
            serde_json::from_str(stdout.lines().last().unwrap_or_default()).expect("counts");
        for (what, n) in counts {
            *checked.entry(format!("{format} {what}")).or_default() += n;
        }
    }
    checked
}

#[test]
fn no_feed_gives_a_warning_of_the_w3c_feed_validation_service() {
    // The sample, with its contacts.
    let p = Project::sample();
    let out = p.out();
    p.build_at("2018-10-20T12:00:00+02:00", &out);
    let checked = w3c_rules(&out);
    assert_eq!(checked["rss items"], 5, "main, sv and three topics");
    assert_eq!(checked["rss dc:creator"], 5, "{checked:?}");
    assert_eq!(checked["atom entry authors"], 5, "{checked:?}");

    // A release with an image, two attachments and contacts, beside the sample.
    super::feeds::write_rich_release(&p);
    let out = p.path().join("rich");
    p.build_at(super::feeds::RICH_AT, &out);
    let checked = w3c_rules(&out);
    // Each rule had something to hold for: the main, sv and jamstalldhet feeds show it.
    assert_eq!(checked["rss media:content"], 3 * 3, "{checked:?}");
    assert_eq!(checked["rss enclosures"], 3, "one per item: {checked:?}");
    assert_eq!(checked["atom enclosures"], 3 * 3, "{checked:?}");
    assert!(checked["rss links in content"] > 0 && checked["atom links in content"] > 0);
    // And the suite's own validators still accept every feed.
    validate(&out);
}

#[test]
fn feedparser_reads_the_organisation_as_author_every_file_and_the_contacts() {
    let (_p, out) = super::feeds::rich_site();
    // What rss2email builds its From line of: feedparser's `entries[0].author`.
    let script = r#"
import json, sys, feedparser
e = feedparser.parse(sys.argv[1]).entries[0]
print(json.dumps({
    "author": e.get("author"),
    "enclosures": [l["href"] for l in e.get("enclosures", [])],
    "media": [m["url"] for m in e.get("media_content", [])],
    "content": e["content"][0]["value"],
}))
"#;
    let page = "http://127.0.0.1:8080/releases/rapport/";
    let every: Vec<String> = ["diagram.png", "rapport.pdf", "tabeller.xlsx"]
        .iter()
        .map(|n| format!("{page}{n}"))
        .collect();
    for path in ["feed.rss", "feed.atom"] {
        let o = Command::new("python3")
            .args(["-c", script])
            .arg(out.join(path))
            .output()
            .expect("python3 runs (install with .ci/install-validators.sh)");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let e: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
        assert_eq!(e["author"], super::feeds::ORGANISATION, "{path}");
        let content = e["content"].as_str().unwrap_or_default();
        // feedparser's sanitiser keeps the phone number but drops its `tel:` link (a
        // scheme missing from its list): the number is what rss2email's reader sees.
        for contact in [
            "Anna Andersson &amp; Co &lt;press&gt;",
            "070-123 45 67",
            "mailto:press@example.org",
            "mailto:bo.berg@example.org",
        ] {
            assert!(content.contains(contact), "{path}: {contact} in {content}");
        }
        let strings = |v: &serde_json::Value| -> Vec<String> {
            v.as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|s| s.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default()
        };
        if path == "feed.rss" {
            // One enclosure, as RSS allows; every file as Media RSS.
            assert_eq!(strings(&e["enclosures"]), every[..1], "{path}");
            assert_eq!(strings(&e["media"]), every, "{path}");
        } else {
            assert_eq!(strings(&e["enclosures"]), every, "{path}");
        }
    }
}
