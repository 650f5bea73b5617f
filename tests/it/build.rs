//! Building the sample: the embargo, determinism, dates across DST.

use super::*;

const BEFORE: &str = "2018-10-17T23:59:59+02:00";
const LIFT: &str = "2018-10-18T00:00:00+02:00";

#[test]
fn before_its_minute_nothing_of_the_release_exists_anywhere() {
    let p = Project::sample();
    let out = p.out();
    p.build_at(BEFORE, &out);
    let all = files(&out);
    assert!(
        all.contains_key("feed.rss") && all.contains_key("index.html"),
        "{:?}",
        all.keys()
    );
    for (path, bytes) in &all {
        assert!(
            !path.contains(SAMPLE_SLUG),
            "{path} names the embargoed release"
        );
        let content = String::from_utf8_lossy(bytes);
        for needle in [SAMPLE_TITLE, SAMPLE_SLUG, "prostitution", "Du avgör"]
            .iter()
            .chain(SAMPLE_SENTENCES)
        {
            assert!(
                !content.contains(needle),
                "{path} contains {needle:?} before the embargo lifts"
            );
        }
    }
    for feed in ["feed.rss", "feed.atom", "feed.json"] {
        let parsed =
            feed_rs::parser::parse(&all[feed][..]).unwrap_or_else(|e| panic!("{feed}: {e}"));
        assert!(
            parsed.entries.is_empty(),
            "{feed} has entries before the lift"
        );
    }
}

#[test]
fn at_its_minute_the_release_is_everywhere_with_swedish_letters_intact() {
    let p = Project::sample();
    let out = p.out();
    p.build_at(LIFT, &out);
    let all = files(&out);
    let everywhere = [
        "feed.rss",
        "feed.atom",
        "feed.json",
        "lang/sv/feed.rss",
        "lang/sv/feed.atom",
        "lang/sv/feed.json",
        "topics/prostitution/feed.rss",
        "topics/manniskohandel/feed.atom",
        "topics/jamstalldhet/feed.json",
        "topics/prostitution/index.html",
        "index.html",
        "archive/2018/index.html",
        "releases/du-avgor/index.html",
    ];
    for path in everywhere {
        assert!(
            text(&all, path).contains(SAMPLE_TITLE),
            "{path} lacks the title"
        );
    }
    for topic in ["prostitution", "manniskohandel", "jamstalldhet"] {
        for feed in ["feed.rss", "feed.atom", "feed.json"] {
            assert!(text(&all, &format!("topics/{topic}/{feed}")).contains(SAMPLE_TITLE));
        }
    }
    let sitemap = text(&all, "sitemap.xml");
    assert!(
        sitemap.contains("<loc>http://127.0.0.1:8080/releases/du-avgor/</loc>"),
        "{sitemap}"
    );
    let page = text(&all, "releases/du-avgor/index.html");
    for sentence in SAMPLE_SENTENCES {
        assert!(page.contains(sentence), "the page lacks {sentence:?}");
    }
    assert!(page.contains("<html lang=\"sv\">"));
    assert!(
        page.contains("070-784 74 97") && page.contains("mailto:press@jamy.se"),
        "contacts shown"
    );
    // Dated with a day alone: the page gives the day, not the lift's invented midnight.
    assert!(
        page.contains("<time datetime=\"2018-10-18\">18 oktober 2018</time>"),
        "date shown"
    );
    assert!(
        page.contains("href=\"https://nmtsverige.se/\""),
        "web addresses are links"
    );
}

#[test]
fn builds_are_byte_identical_and_later_builds_leave_what_a_fresh_one_does() {
    let p = Project::sample();
    p.write(
        "releases/2019-01-10-januari.md",
        release("title = \"Januari\"\ndate = 2019-01-10", "Text i januari."),
    );
    let (a, b, fresh) = (
        p.path().join("a"),
        p.path().join("b"),
        p.path().join("fresh"),
    );
    p.build_at(LIFT, &a);
    p.build_at(LIFT, &b);
    assert_eq!(files(&a), files(&b), "two builds at one instant differ");

    // `a` moves on to a later instant; it must equal a fresh build there.
    p.build_at("2019-01-10T00:00:00+01:00", &a);
    p.build_at("2019-01-10T00:00:00+01:00", &fresh);
    assert_eq!(files(&a), files(&fresh));
    // And back again: the January release's files are gone.
    p.build_at(LIFT, &a);
    assert_eq!(files(&a), files(&b));
    assert!(!a.join("releases/januari").exists());
}

#[test]
fn a_date_alone_lifts_at_local_midnight_in_winter_and_summer_time() {
    let p = Project::empty();
    p.write(
        "releases/2019-01-15-vinter.md",
        release(
            "title = \"Vinter\"\ndate = 2019-01-15\ntopics = [\"a\"]",
            "Vintertext.",
        ),
    );
    p.write(
        "releases/2018-10-18-host.md",
        release(
            "title = \"Höst\"\ndate = 2018-10-18\ntopics = [\"a\"]",
            "Hösttext.",
        ),
    );
    let out = p.out();
    p.build_at("2019-01-20T00:00:00Z", &out);
    let atom = std::fs::read(out.join("feed.atom")).expect("atom");
    let feed = feed_rs::parser::parse(&atom[..]).expect("parse");
    let published: Vec<String> = feed
        .entries
        .iter()
        .map(|e| e.published.expect("published").to_rfc3339())
        .collect();
    assert_eq!(
        published,
        ["2019-01-14T23:00:00+00:00", "2018-10-17T22:00:00+00:00"]
    );
    let atom = String::from_utf8(atom).expect("utf-8");
    assert!(
        atom.contains("<published>2019-01-15T00:00:00+01:00</published>"),
        "{atom}"
    );
    assert!(
        atom.contains("<published>2018-10-18T00:00:00+02:00</published>"),
        "{atom}"
    );

    // One second before the winter lift, only the autumn release is out.
    p.build_at("2019-01-14T23:59:59+01:00", &out);
    let rss = std::fs::read_to_string(out.join("feed.rss")).expect("rss");
    assert!(rss.contains("Höst") && !rss.contains("Vinter"));
}

#[test]
fn drafts_stay_hidden_and_withdrawn_releases_leave_the_feeds_with_a_notice() {
    let p = Project::sample();
    p.write(
        "releases/2018-10-01-utkast.md",
        release(
            "title = \"Utkast\"\ndate = 2018-10-01\ndraft = true",
            "Hemligt utkast.",
        ),
    );
    let out = p.out();
    p.build_at(LIFT, &out);
    let all = files(&out);
    assert!(every(&all, "site files", |(path, b)| !path
        .contains("utkast")
        && !String::from_utf8_lossy(b).contains("Hemligt utkast")));

    // Published (a build for the real now records it), then withdrawn.
    assert!(p.run(&["build"]).status.success());
    let sample = p.path().join("releases/2018-10-18-du-avgor.md");
    let text_before = std::fs::read_to_string(&sample).expect("read");
    std::fs::write(
        &sample,
        text_before.replacen(
            "lang = \"sv\"",
            "lang = \"sv\"\nwithdrawn = \"Fel uppgifter\"",
            1,
        ),
    )
    .expect("write");
    p.build_at(LIFT, &out);
    let all = files(&out);
    assert!(
        !text(&all, "feed.atom").contains(SAMPLE_TITLE),
        "withdrawn but still in the feed"
    );
    assert!(!text(&all, "index.html").contains(SAMPLE_TITLE));
    let page = text(&all, "releases/du-avgor/index.html");
    assert!(
        page.contains("har dragits tillbaka") && page.contains("Fel uppgifter"),
        "{page}"
    );
    assert!(
        !page.contains(SAMPLE_SENTENCES[1]),
        "a withdrawn page keeps no body"
    );
}

#[test]
fn check_passes_on_the_sample_and_new_scaffolds_a_draft_that_checks() {
    let p = Project::sample();
    let o = p.run(&["check"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    let o = p.run(&["new", "Ny kampanj: \"Du avgör\" igen"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let path = String::from_utf8(o.stdout).expect("utf-8");
    let path = Path::new(path.trim());
    assert!(
        path.file_name()
            .expect("name")
            .to_string_lossy()
            .ends_with("-ny-kampanj-du-avgor-igen.md"),
        "{path:?}"
    );
    let written = std::fs::read_to_string(path).expect("scaffold");
    assert!(written.contains("draft = true"));
    let o = p.run(&["check"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // A draft is never built.
    p.build_at("2100-01-01T00:00:00Z", &p.out());
    assert!(!files(&p.out()).keys().any(|k| k.contains("ny-kampanj")));
}

#[test]
fn templates_in_config_override_the_built_in_ones_and_a_broken_one_is_reported() {
    let p = Project::sample();
    p.write(
        "config/templates/release.html",
        "<!doctype html><title>{{ release.title }}</title><p class=\"egen\">{{ release.summary }}</p>",
    );
    p.write("config/templates/index.html", "{% if %}");
    let out = p.out();
    let o = p.run(&["build", "--at", LIFT, "--out", out.to_str().expect("utf-8")]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(
        o.status.code(),
        Some(1),
        "a broken template is an error: {err}"
    );
    assert!(
        err.contains("config/templates/index.html:1:1: template error"),
        "{err}"
    );
    let page = std::fs::read_to_string(out.join("releases/du-avgor/index.html")).expect("page");
    assert!(
        page.starts_with("<!doctype html><title>Kampanj mot prostitution"),
        "the override is used: {page}"
    );
    let index = std::fs::read_to_string(out.join("index.html")).expect("index");
    assert!(
        index.contains(SAMPLE_TITLE),
        "the built-in index stays in place of the broken one"
    );
}

#[test]
fn a_release_withdrawn_before_it_was_ever_public_never_appears_not_even_as_a_notice() {
    let p = Project::sample();
    p.write(
        "releases/2099-01-01-framtid.md",
        release(
            "title = \"Aldrig publicerad\"\ndate = 2099-01-01\nwithdrawn = \"Stoppad före embargot\"",
            "Hemlig text.",
        ),
    );
    assert!(
        p.run(&["build"]).status.success(),
        "recorded now: not public yet"
    );
    let out = p.path().join("at-2099");
    p.build_at("2099-01-02T00:00:00+01:00", &out);
    let all = files(&out);
    assert!(
        every(&all, "site files", |(path, b)| !path.contains("framtid")
            && !String::from_utf8_lossy(b).contains("Aldrig publicerad")),
        "never published: no notice, no title"
    );
}

/// A what-if build does not write the served site: without `--out` it goes beside it and
/// says where. (A running daemon would serve it.)
#[test]
fn a_what_if_build_of_the_future_never_touches_the_served_site() {
    let p = Project::sample();
    p.write(
        "releases/framtid.md",
        release(
            "title = \"Framtida nyhet\"\ndate = 2099-01-01T08:00:00+01:00\ntopics = [\"jamstalldhet\"]",
            "Inte än.",
        ),
    );
    let o = p.run(&["build"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let served = files(&p.out());
    assert!(!text(&served, "feed.atom").contains("Framtida nyhet"));

    let o = p.run(&["build", "--at", "2099-01-02T12:00"]);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "{err}");
    let beside = p.path().join("public.at-2099-01-02T120000");
    assert!(
        err.contains(&beside.display().to_string()),
        "says where: {err}"
    );
    assert!(text(&files(&beside), "feed.atom").contains("Framtida nyhet"));
    assert_same_files(&served, &files(&p.out()), "the served site after --at");
}

/// Writes a release public now but embargoed as of the fake clock (between it and the true
/// one), and builds the project for now.
pub fn built_between_two_clocks(p: &Project) {
    // Public now, but embargoed as of the fake clock: between it and the true one.
    p.write(
        "releases/2024-06-01-mellan.md",
        release(
            "title = \"Mellan två klockor\"\ndate = \"2024-06-01T08:00:00+02:00\"",
            "Publicerad sedan juni 2024.",
        ),
    );
    let o = p.run(&["build"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn a_build_under_a_clock_set_back_unpublishes_nothing_and_records_nothing() {
    let p = Project::sample();
    built_between_two_clocks(&p);
    let site = files(&p.out());
    let ledger = ledger_rows(&p);
    assert!(
        ledger.iter().any(|r| r.starts_with("clock: ")),
        "the build's instant is recorded: {ledger:?}"
    );

    let o = std::process::Command::new(env!("CARGO_BIN_EXE_pressroom"))
        .arg("--config")
        .arg(p.path().join("config/pressroom.toml"))
        .arg("build")
        .envs(fake_clock("2020-01-01 12:00:00"))
        .output()
        .expect("run pressroom");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success(),
        "built under a clock set back: {stderr}"
    );
    assert!(
        stderr.contains("the clock reads 2020-01-01T12:00:")
            && stderr.contains("which the ledger recorded: the site is kept")
            && stderr.contains("check time sync"),
        "{stderr}"
    );
    assert_same_files(
        &files(&p.out()),
        &site,
        "after a build under a clock set back",
    );
    assert!(text(&site, "feed.atom").contains("Mellan två klockor"));
    assert!(text(&site, "feed.atom").contains(SAMPLE_TITLE));
    assert_eq!(ledger_rows(&p), ledger, "the ledger changed");

    // A what-if build as of that instant is not bound by the ledger's clock.
    let what_if = p.path().join("what-if");
    p.build_at("2020-01-01T12:00:00Z", &what_if);
    assert!(!text(&files(&what_if), "feed.atom").contains("Mellan två klockor"));
}
