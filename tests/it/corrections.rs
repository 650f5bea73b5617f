//! Corrections after publication: `updated` moves only on a change readers can see, and is
//! remembered in the ledger (a real SQLite file) across builds and processes.

use pressroom::build::{Builder, Recording};
use pressroom::config::Config;
use pressroom::ledger::Ledger;

use super::*;

fn t(s: &str) -> chrono::DateTime<chrono::Utc> {
    s.parse().expect("an RFC 3339 instant")
}

/// A build of the project as of `at` (recorded as the daemon records one, or a what-if);
/// its Atom feed, read back.
pub fn build(p: &Project, at: &str, recording: Recording) -> feed_rs::model::Feed {
    let (config, _) = Config::load(Some(&p.path().join("config/pressroom.toml"))).expect("config");
    let mut ledger = Ledger::open_in(&config.paths.state).expect("ledger");
    let history = ledger.history().expect("history");
    let mut builder = Builder::new(config.clone(), p.out()).with_history(history, recording);
    let mut report = builder.build(t(at)).expect("build");
    assert_eq!(report.errors(), 0, "{:?}", report.diags);
    if recording == Recording::Record {
        pressroom::publish::record(
            &mut ledger,
            &mut builder,
            &config,
            &mut report,
            pressroom::publish::Deleted::CancelNow,
            t(at),
        )
        .expect("commit");
    }
    feed_rs::parser::parse(&std::fs::read(p.out().join("feed.atom")).expect("atom")[..])
        .expect("parse")
}

fn updated(feed: &feed_rs::model::Feed) -> String {
    feed.entries[0].updated.expect("updated").to_rfc3339()
}

#[test]
fn an_edit_moves_updated_a_touch_does_not() {
    let p = Project::sample();
    let feed = build(&p, "2018-10-18T08:00:00Z", Recording::Record);
    assert_eq!(
        updated(&feed),
        "2018-10-17T22:00:00+00:00",
        "unedited: updated = published"
    );

    // Rewriting the same bytes (a touch, a copy) changes nothing.
    let sample = p.path().join("releases/2018-10-18-du-avgor.md");
    let original = std::fs::read_to_string(&sample).expect("read");
    std::fs::write(&sample, &original).expect("rewrite");
    let feed = build(&p, "2018-10-18T09:00:00Z", Recording::Record);
    assert_eq!(updated(&feed), "2018-10-17T22:00:00+00:00");

    // A correction of the body does.
    std::fs::write(
        &sample,
        original.replace("drygt 7 procent", "drygt 8 procent"),
    )
    .expect("edit");
    let feed = build(&p, "2018-10-18T10:15:00Z", Recording::Record);
    assert_eq!(updated(&feed), "2018-10-18T10:15:00+00:00");
    assert_eq!(
        feed.entries[0].published.expect("published").to_rfc3339(),
        "2018-10-17T22:00:00+00:00"
    );
    let page = std::fs::read_to_string(p.out().join("releases/du-avgor/index.html")).expect("page");
    assert!(
        page.contains("Uppdaterad <time datetime=\"2018-10-18T12:15:00+02:00\">"),
        "the page shows it"
    );

    // Later builds keep that instant: it is in the ledger, not in memory.
    let feed = build(&p, "2018-10-19T00:00:00Z", Recording::Record);
    assert_eq!(updated(&feed), "2018-10-18T10:15:00+00:00");
}

#[test]
fn a_what_if_build_records_nothing() {
    let p = Project::sample();
    build(&p, "2018-10-18T08:00:00Z", Recording::Record);
    let sample = p.path().join("releases/2018-10-18-du-avgor.md");
    let original = std::fs::read_to_string(&sample).expect("read");
    std::fs::write(
        &sample,
        original.replace("drygt 7 procent", "drygt 8 procent"),
    )
    .expect("edit");
    build(&p, "2030-01-01T00:00:00Z", Recording::ReadOnly);
    let feed = build(&p, "2018-10-18T11:00:00Z", Recording::Record);
    assert_eq!(
        updated(&feed),
        "2018-10-18T11:00:00+00:00",
        "the what-if build stored nothing"
    );
}

#[test]
fn a_published_release_whose_file_is_deleted_keeps_a_page_saying_it_was_withdrawn() {
    let p = Project::sample();
    let o = p.run(&["build"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    std::fs::remove_file(p.path().join("releases/2018-10-18-du-avgor.md")).expect("delete");
    let o = p.run(&["build"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let site = files(&p.out());
    let page = text(&site, "releases/du-avgor/index.html");
    assert!(page.contains(SAMPLE_TITLE), "the notice names it");
    assert!(page.contains("Pressmeddelandet har tagits bort."), "{page}");
    for sentence in SAMPLE_SENTENCES {
        assert!(!page.contains(sentence), "its text is gone");
    }
    for feed in ["feed.rss", "feed.atom", "feed.json"] {
        assert!(
            !text(&site, feed).contains(SAMPLE_TITLE),
            "{feed} dropped it"
        );
    }
    assert!(!text(&site, "index.html").contains(SAMPLE_TITLE));
}

#[test]
fn a_release_deleted_before_its_date_leaves_nothing_behind() {
    let p = Project::empty();
    p.write(
        "releases/framtid.md",
        release("title = \"Framtida nyhet\"\ndate = 2099-01-01", "Hemligt."),
    );
    assert!(p.run(&["build"]).status.success());
    std::fs::remove_file(p.path().join("releases/framtid.md")).expect("delete");
    assert!(p.run(&["build"]).status.success());
    let site = files(&p.out());
    assert!(
        every(site.values(), "site files", |bytes| {
            !String::from_utf8_lossy(bytes).contains("Framtida")
        }),
        "never published, never shown"
    );
}
