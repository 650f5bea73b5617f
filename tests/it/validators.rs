//! Independent validators: jing with RFC 4287's RELAX NG schema for Atom, and
//! tests/validators/feedcheck.py (Python feedparser plus the rules of RSS 2.0 and JSON
//! Feed 1.1) for every feed of a built site. `.ci/install-validators.sh` installs them.

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
