//! A long-lived `Builder` re-renders only what changed; after any sequence of edits its
//! output must be exactly what a fresh build of the same files gives.

use pressroom::build::Builder;
use pressroom::config::Config;

use super::*;

fn config(p: &Project) -> Config {
    Config::load(Some(&p.path().join("config/pressroom.toml")))
        .expect("config")
        .0
}

fn fresh(p: &Project, at: chrono::DateTime<chrono::Utc>) -> BTreeMap<String, Vec<u8>> {
    let dir = p.path().join("fresh");
    let _ = std::fs::remove_dir_all(&dir);
    Builder::new(config(p), dir.clone())
        .build(at)
        .expect("fresh build");
    files(&dir)
}

#[test]
fn after_every_edit_the_kept_site_equals_a_fresh_build() {
    let p = Project::sample();
    let at: chrono::DateTime<chrono::Utc> = "2021-01-01T00:00:00Z".parse().expect("instant");
    let mut live = Builder::new(config(&p), p.out());
    let r = |n: u32, topic: &str| {
        release(
            &format!("title = \"Nummer {n}\"\ndate = 2020-0{n}-01\ntopics = [\"{topic}\"]"),
            &format!("Text nummer {n}."),
        )
    };
    let steps: Vec<Box<dyn Fn()>> = vec![
        Box::new(|| {}),
        Box::new(|| drop(p.write("releases/2020-01-01-ett.md", r(1, "ekonomi")))),
        Box::new(|| drop(p.write("releases/2020-02-01-tva.md", r(2, "ekonomi")))),
        // An edit of the body only.
        Box::new(|| {
            drop(p.write(
                "releases/2020-02-01-tva.md",
                r(2, "ekonomi").replace("Text", "Ny text"),
            ))
        }),
        // A topic that vanishes...
        Box::new(|| {
            drop(std::fs::remove_file(
                p.path().join("releases/2020-01-01-ett.md"),
            ))
        }),
        Box::new(|| drop(p.write("releases/2020-02-01-tva.md", r(2, "sport")))),
        // ...and comes back with the same content as before.
        Box::new(|| {
            drop(p.write(
                "releases/2020-02-01-tva.md",
                r(2, "ekonomi").replace("Text", "Ny text"),
            ))
        }),
        // Broken, then fixed.
        Box::new(|| drop(p.write("releases/2020-02-01-tva.md", "+++\ntitle = "))),
        Box::new(|| drop(p.write("releases/2020-02-01-tva.md", r(2, "ekonomi")))),
        Box::new(|| {
            drop(p.write(
                "releases/2020-03-01-tre.md",
                r(3, "ekonomi").replace(
                    "date = 2020-03-01",
                    "date = 2020-03-01\nwithdrawn = \"Fel\"",
                ),
            ))
        }),
    ];
    for (i, step) in steps.iter().enumerate() {
        step();
        live.build(at).expect("live build");
        let kept = files(&p.out());
        let want = fresh(&p, at);
        if i == 7 {
            // A broken file keeps its last good page while the fresh build has none.
            assert!(kept.contains_key("releases/tva/index.html"));
            continue;
        }
        assert_same_files(&kept, &want, &format!("step {i}, against a fresh build"));
    }
}

#[test]
fn a_rebuild_after_one_edit_rewrites_only_what_shows_it() {
    let p = Project::sample();
    for n in 1..=30 {
        p.write(
            &format!(
                "releases/2019-{:02}-{:02}-nr-{n}.md",
                n % 12 + 1,
                n % 28 + 1
            ),
            release(
                &format!(
                    "title = \"Nummer {n}\"\ndate = 2019-{:02}-{:02}\ntopics = [\"t{}\"]",
                    n % 12 + 1,
                    n % 28 + 1,
                    n % 5
                ),
                "Text.",
            ),
        );
    }
    let at: chrono::DateTime<chrono::Utc> = "2021-01-01T00:00:00Z".parse().expect("instant");
    let mut live = Builder::new(config(&p), p.out());
    let first = live.build(at).expect("build");
    assert_eq!(first.write.unchanged, 0);
    let again = live.build(at).expect("build");
    assert_eq!(again.write.written, 0, "nothing changed, nothing written");

    p.write(
        "releases/2019-02-02-nr-1.md",
        release(
            "title = \"Nummer 1, rättad\"\ndate = 2019-02-02\ntopics = [\"t1\"]",
            "Text.",
        ),
    );
    let edit = live.build(at).expect("build");
    // Its page; the index, main, topic and language feeds and pages (they show it); its
    // year's archive; the search index; the sitemap is always written anew but unchanged
    // on disk here.
    assert!(
        edit.write.written <= 1 + 1 + 3 + 1 + 3 + 1 + 3 + 1 + 1,
        "{:?}",
        edit.write
    );
    assert!(edit.write.written >= 5, "{:?}", edit.write);
}

/// A long-running builder keeps in memory only the texts it may render soon (those in a
/// feed, those not yet public) and reads the others from their files when a page or feed
/// shows them again; whatever it kept or read, the site equals a fresh build.
#[test]
fn texts_let_go_of_are_read_again_when_shown() {
    let p = Project::sample();
    p.set_config("feed_items = 50", "feed_items = 2");
    let name = |n: u32| format!("releases/2020-0{n}-01-nr-{n}.md");
    let r = |n: u32, extra: &str| {
        release(
            &format!("title = \"Nummer {n}\"\ndate = 2020-0{n}-01\ntopics = [\"ekonomi\"]{extra}"),
            &format!("Text nummer {n}."),
        )
    };
    for n in 1..=6 {
        p.write(&name(n), r(n, ""));
    }
    p.write(
        "releases/2022-01-01-senare.md",
        release(
            "title = \"Senare\"\ndate = 2022-01-01\ntopics = [\"ekonomi\"]",
            "Text som väntar.",
        ),
    );
    let at: chrono::DateTime<chrono::Utc> = "2021-01-01T00:00:00Z".parse().expect("instant");
    let mut live = Builder::new(config(&p), p.out());
    let in_memory = |live: &Builder| {
        let mut slugs: Vec<String> = live
            .releases()
            .filter(|r| r.body.is_some())
            .map(|r| r.slug.to_string())
            .collect();
        slugs.sort();
        slugs
    };
    let same_as_fresh = |at, step: &str| {
        assert_same_files(
            &files(&p.out()),
            &fresh(&p, at),
            &format!("{step}, against a fresh build"),
        );
    };

    live.build(at).expect("build");
    // The two newest (main, topic and language feeds), the seed release (its topics'
    // feeds) and the one still embargoed.
    let seed = live
        .releases()
        .find(|r| r.date.format("%Y").to_string() == "2018")
        .expect("the seed release")
        .slug
        .to_string();
    let mut want = vec!["nr-5".to_string(), "nr-6".into(), "senare".into(), seed];
    want.sort();
    assert_eq!(in_memory(&live), want);
    same_as_fresh(at, "first build");

    // Withdrawn: nr-4 moves up into the feeds, its text read from its file.
    p.write(&name(6), r(6, "\nwithdrawn = \"Fel\""));
    live.build(at).expect("build");
    assert!(in_memory(&live).contains(&"nr-4".to_string()));
    assert!(text(&files(&p.out()), "feed.atom").contains("Text nummer 4."));
    same_as_fresh(at, "nr-4 back in the feeds");

    // nr-3's file breaks while its text is not in memory; then it must enter the feeds.
    // It is listed without its text, its page stays as it was, and nothing fails.
    p.write(&name(3), "+++\ntitle = ");
    p.write(&name(5), r(5, "\nwithdrawn = \"Fel\""));
    let report = live.build(at).expect("build");
    assert!(
        report
            .diags
            .iter()
            .any(|d| d.to_string().contains("nr-3") && !d.is_error()),
        "{:?}",
        report.diags
    );
    let site = files(&p.out());
    assert!(text(&site, "feed.atom").contains("Nummer 3"));
    assert!(!text(&site, "feed.atom").contains("Text nummer 3."));
    assert!(text(&site, "releases/nr-3/index.html").contains("Text nummer 3."));

    // Fixed: the feeds get its text back.
    p.write(&name(3), r(3, ""));
    live.build(at).expect("build");
    same_as_fresh(at, "nr-3 fixed");

    // The embargo lifts: the page is rendered from the text kept for it.
    let later: chrono::DateTime<chrono::Utc> = "2022-06-01T00:00:00Z".parse().expect("instant");
    live.build(later).expect("build");
    assert!(text(&files(&p.out()), "releases/senare/index.html").contains("Text som väntar."));
    same_as_fresh(later, "after the lift");
    // Edited long after it left the feeds: read, rendered, and let go of again.
    p.write(
        &name(1),
        r(1, "").replace("Text nummer 1.", "Rättad text 1."),
    );
    live.build(later).expect("build");
    assert!(text(&files(&p.out()), "releases/nr-1/index.html").contains("Rättad text 1."));
    assert!(!in_memory(&live).contains(&"nr-1".to_string()));
    same_as_fresh(later, "an old release edited");
}

/// What a mail run does for a release whose text the builder let go of: it reads the file
/// again, and refuses a file that no longer gives the release that was published.
#[test]
fn a_text_read_again_is_the_published_one_or_none() {
    let p = Project::sample();
    p.set_config("feed_items = 50", "feed_items = 1");
    let file = "releases/2019-05-01-gammal.md";
    p.write(
        file,
        release(
            "title = \"Gammal\"\ndate = 2019-05-01\ntopics = [\"ekonomi\"]",
            "Första stycket.\n\nAndra *stycket*.",
        ),
    );
    p.write(
        "releases/2020-05-01-ny.md",
        release(
            "title = \"Ny\"\ndate = 2020-05-01\ntopics = [\"ekonomi\"]",
            "Ny.",
        ),
    );
    let config = config(&p);
    let at = "2021-01-01T00:00:00Z".parse().expect("instant");
    let mut live = Builder::new(config.clone(), p.out());
    live.build(at).expect("build");
    let stripped = live
        .releases()
        .find(|r| r.slug.as_str() == "gammal")
        .cloned()
        .expect("gammal");
    assert!(stripped.body.is_none(), "out of every feed: not kept");

    let whole = pressroom::catalog::with_text(&config, &stripped).expect("read again");
    let parsed = Builder::new(config.clone(), p.out())
        .load(at)
        .releases
        .into_iter()
        .find(|r| r.slug.as_str() == "gammal")
        .expect("gammal");
    assert_eq!(*whole, *parsed, "the same release as a fresh parse");

    p.write(
        file,
        release(
            "title = \"Gammal\"\ndate = 2019-05-01\ntopics = [\"ekonomi\"]",
            "Ändrad text.",
        ),
    );
    assert!(pressroom::catalog::with_text(&config, &stripped).is_err());
    std::fs::remove_file(p.path().join(file)).expect("remove");
    assert!(pressroom::catalog::with_text(&config, &stripped).is_err());
}
