//! A release keeps its identity through what a press office does to it (SPEC §4, "Release
//! identity and edits"): a new date, a new title, a renamed file or a new slug never make
//! it a new release: nobody is mailed it again, feed readers never see it twice, its old
//! address answers with a redirect, and its waiting mail still goes when it is public again.

use std::time::Duration;

use pressroom::build::Recording;

use super::daemon::{Daemon, client, sample_served, wait_for};
use super::*;

const SAMPLE: &str = "releases/2018-10-18-du-avgor.md";

/// A recorded build of the project as of `at`, as the daemon makes one; the Atom feed.
fn build(p: &Project, at: &str) -> feed_rs::model::Feed {
    super::corrections::build(p, at, Recording::Record)
}

/// `pressroom build` for now, which must succeed.
fn built(p: &Project) {
    let o = p.run(&["build"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

fn ids(feed: &feed_rs::model::Feed) -> Vec<String> {
    feed.entries.iter().map(|e| e.id.clone()).collect()
}

/// The sample's text with `from` replaced by `to` (which must be there).
fn edited(p: &Project, file: &str, from: &str, to: &str) -> String {
    let text = std::fs::read_to_string(p.path().join(file)).expect("release");
    assert!(text.contains(from), "{file} has no `{from}`");
    text.replacen(from, to, 1)
}

fn outbox(p: &Project) -> usize {
    std::fs::read_dir(p.path().join("state/outbox"))
        .map(|d| d.count())
        .unwrap_or(0)
}

fn send(p: &Project, slug: &str) -> String {
    let o = p.run(&["send", slug]);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "send {slug}: {err}");
    err
}

#[test]
fn a_release_re_dated_retitled_or_renamed_is_one_entry_with_one_id_in_every_feed() {
    let p = Project::sample();
    let first = ids(&build(&p, "2026-01-01T08:00:00Z"));
    assert_eq!(first.len(), 1);

    let text = edited(&p, SAMPLE, "date = 2018-10-18", "date = 2018-10-19");
    p.write(SAMPLE, text);
    assert_eq!(ids(&build(&p, "2026-01-01T09:00:00Z")), first, "re-dated");

    let text = edited(
        &p,
        SAMPLE,
        "title = \"Kampanj mot prostitution och människohandel\"",
        "title = \"Ny kampanj mot prostitution\"",
    );
    p.write(SAMPLE, text);
    assert_eq!(ids(&build(&p, "2026-01-01T10:00:00Z")), first, "retitled");

    // Renamed: a new slug, and (with the title as it was) a new body too.
    std::fs::rename(
        p.path().join(SAMPLE),
        p.path().join("releases/2018-10-20-du-avgor-ny.md"),
    )
    .expect("rename");
    let feed = build(&p, "2026-01-01T11:00:00Z");
    assert_eq!(ids(&feed), first, "renamed");
    let page = p.out().join("releases/du-avgor-ny/index.html");
    assert!(page.exists(), "the page at its new address");
    let old = p.out().join("releases/du-avgor");
    assert!(
        !old.join("index.html").exists(),
        "no page at the old address"
    );
    let moved = std::fs::read_to_string(old.join(".moved")).expect("a redirect");
    assert!(moved.ends_with("/releases/du-avgor-ny/"), "{moved}");
}

#[test]
fn re_dating_or_renaming_a_mailed_release_mails_nobody_again() {
    let p = Project::sample();
    send(&p, SAMPLE_SLUG);
    let mailed = outbox(&p);
    assert!(mailed >= 2, "the sample goes to its media list: {mailed}");

    let text = edited(&p, SAMPLE, "date = 2018-10-18", "date = 2018-10-22");
    p.write(SAMPLE, text);
    let err = send(&p, SAMPLE_SLUG);
    assert!(err.contains("nothing to send"), "re-dated: {err}");

    std::fs::rename(
        p.path().join(SAMPLE),
        p.path().join("releases/2018-10-22-kampanjen.md"),
    )
    .expect("rename");
    let err = send(&p, "kampanjen");
    assert!(err.contains("nothing to send"), "renamed: {err}");
    assert_eq!(outbox(&p), mailed, "nobody was mailed again");
}

#[test]
fn postponed_past_its_day_then_moved_back_its_waiting_mail_still_goes() {
    let p = Project::empty();
    let now = pressroom::clock::now();
    let date =
        |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let lifted = date(now - chrono::TimeDelta::minutes(1));
    let file = "releases/besked.md";
    let front = |d: &str| {
        format!(
            "title = \"Besked\"\ndate = {d}\nlang = \"sv\"\ntopics = [\"prostitution\", \"jamstalldhet\"]"
        )
    };
    p.write(file, release(&front(&lifted), "Ett besked."));
    built(&p);
    let later = date(now + chrono::TimeDelta::days(3));
    p.write(file, release(&front(&later), "Ett besked."));
    built(&p);
    assert!(
        !p.out().join("releases/besked/index.html").exists(),
        "postponed"
    );
    p.write(file, release(&front(&lifted), "Ett besked."));
    built(&p);

    let err = send(&p, "besked");
    assert!(!err.contains("nothing to send"), "{err}");
    assert!(outbox(&p) >= 2, "the media list gets it: {err}");
}

#[test]
fn a_copy_that_claims_a_live_slug_is_held_and_the_page_stays_the_original() {
    let p = Project::sample();
    built(&p);
    let copy = edited(
        &p,
        SAMPLE,
        "date = 2018-10-18",
        "date = 2018-10-01\nslug = \"du-avgor\"",
    )
    .replacen("Kampanj mot prostitution", "Kopia av kampanjen", 1);
    // Earlier by date and by name than the original.
    p.write("releases/0-kopia.md", copy);
    let o = p.run(&["build"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("0-kopia.md") && err.contains("already used"),
        "{err}"
    );
    let page = std::fs::read_to_string(p.out().join("releases/du-avgor/index.html")).expect("page");
    assert!(page.contains(SAMPLE_TITLE), "the original keeps its page");
    assert!(!page.contains("Kopia av kampanjen"));
}

#[test]
fn a_date_edit_then_a_deletion_leaves_one_notice_and_a_build_that_writes_nothing_more() {
    let p = Project::sample();
    built(&p);
    let text = edited(&p, SAMPLE, "date = 2018-10-18", "date = 2018-10-19");
    p.write(SAMPLE, text);
    built(&p);
    std::fs::remove_file(p.path().join(SAMPLE)).expect("delete");
    let o = p.run(&["build"]);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "{err}");
    let page = std::fs::read_to_string(p.out().join("releases/du-avgor/index.html"))
        .expect("a notice page");
    assert!(
        page.contains("borttaget") || page.contains("tagits bort"),
        "{page}"
    );
    // (An empty feed's `updated` is the build's instant: the pages are what must stay.)
    let pages = |p: &Project| {
        let mut all = files(&p.out());
        all.retain(|path, _| path.starts_with("releases/"));
        all
    };
    let before = pages(&p);
    built(&p);
    assert_same_files(&before, &pages(&p), "a second build changes no page");
}

#[test]
fn new_writes_an_id_and_a_second_file_with_it_is_held() {
    let p = Project::empty();
    let o = p.run(&["new", "Ett nytt besked"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let path = String::from_utf8_lossy(&o.stdout).trim().to_string();
    let text = std::fs::read_to_string(&path).expect("the new file");
    let id_line = text
        .lines()
        .find(|l| l.starts_with("id = \"tag:"))
        .unwrap_or_else(|| panic!("no id in {text}"));
    // Ready, and copied to another name (so another slug): the same id twice.
    let ready = text.replace("draft = true\n", "");
    std::fs::write(&path, &ready).expect("write");
    std::thread::sleep(Duration::from_millis(20));
    p.write("releases/zz-kopia.md", &ready);
    let o = p.run(&["check"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "check fails: {err}");
    assert!(
        err.contains("zz-kopia.md") && err.contains("id") && err.contains("already used"),
        "{id_line}: {err}"
    );
}

#[test]
fn the_old_address_of_a_renamed_release_answers_301_while_the_new_one_is_public() {
    let (p, _port) = sample_served();
    let daemon = Daemon::start(&p);
    let http = client();
    let status = |path: &str| {
        http.get(format!("{}{path}", daemon.base))
            .send()
            .map(|r| {
                let location = r
                    .headers()
                    .get("location")
                    .and_then(|l| l.to_str().ok())
                    .map(str::to_string);
                (r.status().as_u16(), location)
            })
            .expect("GET")
    };
    assert_eq!(status("/releases/du-avgor/").0, 200);
    std::fs::rename(
        p.path().join(SAMPLE),
        p.path().join("releases/2018-10-18-du-avgor-2018.md"),
    )
    .expect("rename");
    // The new page is renamed into place before the old one is removed: wait for both.
    wait_for(
        "the new address, and the old one moved",
        Duration::from_secs(10),
        || status("/releases/du-avgor-2018/").0 == 200 && status("/releases/du-avgor/").0 == 301,
    );
    let (_, location) = status("/releases/du-avgor/");
    assert_eq!(
        location.as_deref(),
        Some(format!("{}/releases/du-avgor-2018/", daemon.base).as_str())
    );
    // No longer public: the old address redirects nowhere.
    let text = std::fs::read_to_string(p.path().join("releases/2018-10-18-du-avgor-2018.md"))
        .expect("release");
    p.write(
        "releases/2018-10-18-du-avgor-2018.md",
        text.replacen("+++\n", "+++\ndraft = true\n", 1),
    );
    wait_for("the draft gone", Duration::from_secs(10), || {
        status("/releases/du-avgor-2018/").0 == 404
    });
    assert_eq!(status("/releases/du-avgor/").0, 404);
}
