//! Search and the 404 page, through the running daemon: `/search?q=` finds what the served
//! site shows (Swedish letters and case folded away), never a release before its minute,
//! and a miss gets the site's own 404 page.

use std::time::Duration;

use chrono::{SubsecRound, TimeDelta};

use crate::daemon::{Daemon, client, get, rfc3339, sample_served, wait_for};
use crate::{Project, SAMPLE_TITLE, release};

/// The daemon started on `p`, and a client, once its front page shows `title`.
fn serving(p: &Project, title: &str) -> (Daemon, reqwest::blocking::Client) {
    let daemon = Daemon::start(p);
    let http = client();
    wait_for("the site", Duration::from_secs(10), || {
        get(&http, &daemon.base, "/").1.contains(title)
    });
    (daemon, http)
}

/// The titles on a results page (each result's link text).
fn found(page: &str) -> Vec<String> {
    page.split("<li><a href=\"")
        .skip(1)
        .filter_map(|item| {
            let text = item.split_once('>')?.1;
            Some(text.split_once("</a>")?.0.to_string())
        })
        .collect()
}

fn search(http: &reqwest::blocking::Client, base: &str, q: &str) -> Vec<String> {
    let url = format!(
        "/search?q={}",
        url::form_urlencoded::byte_serialize(q.as_bytes()).collect::<String>()
    );
    let (status, page) = get(http, base, &url);
    assert_eq!(status, 200, "{url}: {page}");
    found(&page)
}

#[test]
fn search_finds_a_public_release_by_folded_words_topics_and_body_and_nothing_unpublished() {
    let (p, _port) = sample_served();
    p.write(
        "releases/2019-05-02-hamnar.md",
        release(
            "title = \"Nya hamnar i norr\"\ndate = 2019-05-02\ntopics = [\"Sjöfart\"]",
            "Kajerna byggs ut i Luleå.",
        ),
    );
    p.write(
        "releases/utkast.md",
        release(
            "title = \"Utkast om kärnkraft\"\ndate = 2019-01-01\ndraft = true",
            "Människohandel och kärnkraft.",
        ),
    );
    let next_year = pressroom::clock::now() + TimeDelta::days(365);
    p.write(
        "releases/hemlig.md",
        release(
            &format!(
                "title = \"Hemlig om vindkraft och människohandel\"\ndate = \"{}\"",
                rfc3339(next_year)
            ),
            "Vindkraft i Jämtland.",
        ),
    );
    let (daemon, http) = serving(&p, "Nya hamnar i norr");
    let base = daemon.base.as_str();

    for q in [
        "manniskohandel",
        "MÄNNISKOHANDEL",
        "människohandel",
        "Kampanj människohandel",
    ] {
        assert_eq!(search(&http, base, q), [SAMPLE_TITLE], "{q}");
    }
    // A topic's name, and a word of the body only.
    assert_eq!(search(&http, base, "sjofart"), ["Nya hamnar i norr"]);
    assert_eq!(search(&http, base, "LULEÅ"), ["Nya hamnar i norr"]);
    assert_eq!(search(&http, base, "mataffärer"), [SAMPLE_TITLE]);
    // Every word must match.
    assert!(search(&http, base, "sjöfart människohandel").is_empty());
    // Neither the draft nor the embargoed release, by any of their words.
    for q in ["kärnkraft", "utkast", "vindkraft", "hemlig", "jamtland"] {
        assert!(search(&http, base, q).is_empty(), "{q}");
    }
    let (_, page) = get(&http, base, "/search?q=m%C3%A4nniskohandel");
    assert!(!page.contains("Hemlig") && !page.contains("hemlig") && !page.contains("Utkast"));
    // The page is the site's: its language, and the query shown back escaped.
    assert!(page.contains("<html lang=\"sv\""), "{page}");
    assert!(page.contains("Sökresultat"), "{page}");
    let (status, page) = get(&http, base, "/search?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E");
    assert_eq!(status, 200);
    assert!(!page.contains("<script>"), "{page}");
    assert!(page.contains("&lt;script&gt;"), "{page}");
    // The index itself is not served.
    assert_eq!(get(&http, base, "/.search-index.json").0, 404);
}

#[test]
fn releases_lifting_while_searches_run_are_found_from_their_minute_never_before() {
    let (p, _port) = sample_served();
    let (daemon, http) = serving(&p, SAMPLE_TITLE);
    let base = daemon.base.as_str();
    let start = pressroom::clock::now().trunc_subsecs(0) + TimeDelta::seconds(3);
    let lifts: Vec<(String, chrono::DateTime<chrono::Utc>)> = (0..3)
        .map(|i| {
            (
                format!("Lyftning nummer {i}"),
                start + TimeDelta::seconds(2 * i),
            )
        })
        .collect();
    for (i, (title, date)) in lifts.iter().enumerate() {
        p.write(
            &format!("releases/lyft-{i}.md"),
            release(
                &format!("title = \"{title}\"\ndate = \"{}\"", rfc3339(*date)),
                "Ett embargo som lyfter medan någon söker.",
            ),
        );
    }
    let end = lifts[2].1 + TimeDelta::seconds(1);
    let mut first_found: Vec<Option<chrono::DateTime<chrono::Utc>>> = vec![None; 3];
    let mut searches = 0;
    while pressroom::clock::now() < end {
        let shown = search(&http, base, "LYFTNING embargo");
        let received = pressroom::clock::now();
        searches += 1;
        for (i, (title, date)) in lifts.iter().enumerate() {
            let there = shown.contains(title);
            assert!(
                !there || received >= *date,
                "{title} found at {received}, before its minute {date}"
            );
            if there && first_found[i].is_none() {
                first_found[i] = Some(received);
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(searches > 50, "searched only {searches} times");
    for ((title, date), first) in lifts.iter().zip(first_found) {
        let first = first.unwrap_or_else(|| panic!("{title} was never found"));
        assert!(
            first - *date < TimeDelta::seconds(1),
            "{title} found only {} after its minute",
            first - *date
        );
    }
}

#[test]
fn a_miss_is_the_sites_404_page_in_its_language_with_the_search_box() {
    let (p, port) = sample_served();
    let (daemon, http) = serving(&p, SAMPLE_TITLE);
    let base = daemon.base.as_str();
    let site = format!("http://127.0.0.1:{port}/");
    for path in ["/nope", "/releases/nope/", "/topics/nope/feed.atom"] {
        let r = http.get(format!("{base}{path}")).send().expect("GET");
        assert_eq!(r.status().as_u16(), 404, "{path}");
        assert_eq!(
            r.headers()["content-type"],
            "text/html; charset=utf-8",
            "{path}"
        );
        let page = r.text().expect("body");
        assert!(page.contains("<html lang=\"sv\""), "{page}");
        assert!(page.contains("Sidan finns inte"), "{page}");
        // The navigation and the search box.
        assert!(page.contains(&format!("<a href=\"{site}\">")), "{page}");
        assert!(page.contains(&format!("action=\"{site}search\"")), "{page}");
        assert!(page.contains("name=\"q\""), "{page}");
    }
    let r = http.head(format!("{base}/nope")).send().expect("HEAD");
    assert_eq!(r.status().as_u16(), 404);
    assert_eq!(r.headers()["content-type"], "text/html; charset=utf-8");
    // Nothing of the request is echoed.
    let (status, page) = get(&http, base, "/%3Cscript%3Ealert(1)%3C/script%3E");
    assert_eq!(status, 404);
    assert!(
        !page.contains("<script>") && !page.contains("alert(1)"),
        "{page}"
    );
}

/// The search box on every page, and the search page in the project's shipped language.
#[test]
fn every_page_of_a_build_carries_the_search_box() {
    let p = Project::sample();
    let out = p.path().join("site");
    p.build_at("2030-01-01T00:00:00Z", &out);
    for page in ["index.html", "404.html", "releases/du-avgor/index.html"] {
        let text = std::fs::read_to_string(out.join(page)).expect(page);
        assert!(text.contains("role=\"search\""), "{page}: {text}");
    }
    assert!(out.join(".search-index.json").is_file());
}

/// A release leaves search with the build that takes it off the site: postponed, withdrawn
/// or deleted.
#[test]
fn a_release_postponed_withdrawn_or_deleted_leaves_search_with_its_page() {
    let (p, _port) = sample_served();
    let daemon = Daemon::start(&p);
    let http = client();
    let base = daemon.base.as_str();
    let front = |extra: &str| format!("title = \"Havsörnar räknas\"\ndate = 2019-03-01\n{extra}");
    let file = p.write(
        "releases/havsorn.md",
        release(&front(""), "Fler örnar än väntat."),
    );
    wait_for("the release found", Duration::from_secs(10), || {
        search(&http, base, "havsornar") == ["Havsörnar räknas"]
    });
    let next_year = rfc3339(pressroom::clock::now() + TimeDelta::days(365));
    for edit in [
        format!("title = \"Havsörnar räknas\"\ndate = \"{next_year}\""),
        front("withdrawn = \"Fel siffror\""),
    ] {
        std::fs::write(&file, release(&edit, "Fler örnar än väntat.")).expect("edit");
        wait_for("gone from search", Duration::from_secs(10), || {
            search(&http, base, "havsornar").is_empty()
        });
        assert!(search(&http, base, "örnar väntat").is_empty());
        std::fs::write(&file, release(&front(""), "Fler örnar än väntat.")).expect("back");
        wait_for("found again", Duration::from_secs(10), || {
            search(&http, base, "havsornar") == ["Havsörnar räknas"]
        });
    }
    std::fs::remove_file(&file).expect("delete");
    wait_for("gone from search", Duration::from_secs(10), || {
        search(&http, base, "havsornar").is_empty()
    });
}
