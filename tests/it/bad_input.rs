//! Bad input: each problem reported as path:line:col with what was expected, and every
//! other release still built.

use super::*;

/// Builds the sample plus one bad file; returns stderr after checking the sample survived.
/// The page without its JSON-LD blocks (the share metadata of a release page: data, not
/// code). A title cannot end one early (`share::script_safe` writes `<` as `\u003c`), so
/// what is left must hold no script element at all.
fn without_json_ld(page: &str) -> String {
    const OPEN: &str = "<script type=\"application/ld+json\">";
    let mut rest = page;
    let mut kept = String::new();
    while let Some(at) = rest.find(OPEN) {
        kept.push_str(&rest[..at]);
        let after = &rest[at + OPEN.len()..];
        match after.find("</script>") {
            Some(end) => rest = &after[end + "</script>".len()..],
            None => return page.to_string(),
        }
    }
    kept.push_str(rest);
    kept
}

fn build_with(p: &Project) -> String {
    let out = p.out();
    let o = p.run(&[
        "build",
        "--at",
        "2020-01-01T00:00:00Z",
        "--out",
        out.to_str().expect("utf-8"),
    ]);
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(
        o.status.code(),
        Some(1),
        "a bad release fails the build's exit code: {stderr}"
    );
    let feed = std::fs::read_to_string(out.join("feed.atom")).expect("feed written anyway");
    assert!(
        feed.contains(SAMPLE_TITLE),
        "the good release is still published: {stderr}"
    );
    let check = p.run(&["check"]);
    assert_eq!(check.status.code(), Some(1), "check fails too");
    let check_err = String::from_utf8_lossy(&check.stderr).into_owned();
    let first = stderr.lines().next().unwrap_or_default();
    assert!(
        check_err.contains(first),
        "check reports what build reports: {check_err}"
    );
    stderr
}

fn bad(p: &Project, name: &str, text: &str) -> String {
    p.write(&format!("releases/{name}"), text);
    build_with(p)
}

#[test]
fn malformed_toml() {
    let p = Project::sample();
    let err = bad(
        &p,
        "2019-05-01-trasig.md",
        "+++\ntitle = \"Trasig\ndate = 2019-05-01\n+++\nText\n",
    );
    assert!(err.contains("releases/2019-05-01-trasig.md:2:"), "{err}");
    assert!(
        err.contains("invalid TOML") && err.contains("(TOML syntax"),
        "{err}"
    );
}

#[test]
fn missing_title() {
    let p = Project::sample();
    let err = bad(&p, "2019-05-01-x.md", &release("date = 2019-05-01", "Text"));
    assert!(
        err.contains(
            "releases/2019-05-01-x.md:2:1: the front matter has no `title` (a line like title = "
        ),
        "{err}"
    );
}

#[test]
fn a_year_no_feed_can_write_is_refused_at_its_line() {
    // The first two once made the RSS writer panic, and the daemon crash-loop; RFC 5322
    // reads no year before 1900, and neither do feed readers.
    for (name, front, at) in [
        (
            "negativ.md",
            "title = \"Negativ\"\ndate = \"-0001-01-01\"",
            "3:8",
        ),
        (
            "sent.md",
            "title = \"Sent\"\ndate = 2019-05-01\nupdated = 9999-12-31T23:59:59-12:00",
            "4:11",
        ),
        ("tidig.md", "title = \"Tidig\"\ndate = 1899-06-01", "3:8"),
        // 1900 in Stockholm, still 1899 in UTC.
        (
            "nyar.md",
            "title = \"Nyår\"\ndate = 1899-12-31T23:30:00Z",
            "3:8",
        ),
        (
            "rattad.md",
            "title = \"Rättad\"\ndate = 2019-05-01\nupdated = \"1850-01-01T12:00\"",
            "4:11",
        ),
    ] {
        let p = Project::sample();
        let err = bad(&p, name, &release(front, "Text"));
        assert!(
            err.contains(&format!("releases/{name}:{at}:"))
                && err.contains("the year must be between 1900 and 9999"),
            "{err}"
        );
    }
    // The first instant of 1900, in UTC and in Stockholm, is a date a release may have.
    let p = Project::sample();
    p.write(
        "releases/sekelskifte.md",
        release(
            "title = \"Sekelskifte\"\ndate = 1900-01-01T00:00:00Z",
            "Text",
        ),
    );
    let check = p.run(&["check"]);
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
}

#[test]
fn impossible_date() {
    let p = Project::sample();
    let err = bad(
        &p,
        "2019-02-30-x.md",
        &release("title = \"X\"\ndate = \"2019-02-30\"", "Text"),
    );
    assert!(
        err.contains(
            "releases/2019-02-30-x.md:3:8: 2019-02-30 is not a date in the calendar (RFC 3339"
        ),
        "{err}"
    );
    let err = bad(
        &p,
        "2019-02-31-y.md",
        &release("title = \"Y\"\ndate = 2019-02-31", "Text"),
    );
    assert!(err.contains("releases/2019-02-31-y.md:3:"), "{err}");
}

#[test]
fn unknown_key_with_did_you_mean() {
    let p = Project::sample();
    let err = bad(
        &p,
        "2019-05-01-x.md",
        &release("title = \"X\"\ndate = 2019-05-01\ntopcis = [\"a\"]", "Text"),
    );
    assert!(err.contains("releases/2019-05-01-x.md:4:1: unknown key `topcis` in the front matter (did you mean `topics`?)"), "{err}");
}

#[test]
fn a_line_break_in_a_title() {
    let p = Project::sample();
    let err = bad(
        &p,
        "2019-05-01-x.md",
        &release(
            "title = \"Rubrik\\r\\nBcc: alla@example.com\"\ndate = 2019-05-01",
            "Text",
        ),
    );
    assert!(err.contains("releases/2019-05-01-x.md:2:9: the title contains a line break or control character (one line of text)"), "{err}");
    assert!(
        !std::fs::read_to_string(p.out().join("feed.rss"))
            .expect("rss")
            .contains("Bcc")
    );
}

#[test]
fn a_character_no_feed_can_carry_is_refused_at_its_line() {
    // Found by the release fuzz target: a backspace in the body went into every feed, and
    // XML 1.0 cannot hold one even escaped, so feed readers refused the whole feed.
    for (name, text, at) in [
        (
            "kontroll.md",
            release(
                "title = \"Kontroll\"\ndate = 2019-05-01",
                "Rad ett\nett \u{8}tecken",
            ),
            "7:5",
        ),
        (
            "sammanfattning.md",
            release(
                "title = \"Sammanfattning\"\ndate = 2019-05-01\nsummary = \"ett \\u0008 tecken\"",
                "Text",
            ),
            "4:11",
        ),
        (
            "ickeTecken.md",
            release("title = \"Rubrik \\uFFFE\"\ndate = 2019-05-01", "Text"),
            "2:9",
        ),
        (
            "tillbaka.md",
            release(
                "title = \"Tillbaka\"\ndate = 2019-05-01\nwithdrawn = \"fel\\u001b[0m\"",
                "Text",
            ),
            "4:13",
        ),
    ] {
        let p = Project::sample();
        let err = bad(&p, name, &text);
        assert!(
            err.contains(&format!("releases/{name}:{at}: "))
                && err.contains("which no feed can carry"),
            "{name}: {err}"
        );
        let feed = std::fs::read_to_string(p.out().join("feed.atom")).expect("atom");
        assert!(
            !feed.contains(['\u{8}', '\u{1b}', '\u{fffe}']),
            "{name} reached the feed"
        );
    }
}

#[test]
fn a_character_reference_no_feed_can_carry_is_refused_at_its_line() {
    // Found by the release fuzz target through the whole pipeline: Markdown and HTML decode
    // `&#xFFFE;`, so the file showed no such character but the feeds got one.
    for (name, text, at, shown) in [
        (
            "referens.md",
            release(
                "title = \"Referens\"\ndate = 2019-05-01",
                "Rad ett\nett &#xFFFE; tecken",
            ),
            "7:5",
            "U+FFFE",
        ),
        (
            "html.md",
            release(
                "title = \"Html\"\ndate = 2019-05-01",
                "<div>\nett <b>&#1</b> tecken\n</div>",
            ),
            "7:8",
            "U+0001",
        ),
        (
            // ammonia drops all after an unclosed <script>, but the summary is the first
            // paragraph as Markdown reads it.
            "forsta.md",
            release(
                "title = \"Första\"\ndate = 2019-05-01",
                "<div><script>\n\nett &#xFFFE; tecken",
            ),
            "8:5",
            "U+FFFE",
        ),
        (
            "sammanfattning.md",
            release(
                "title = \"Sammanfattning\"\ndate = 2019-05-01\nsummary = \"ett &#27; tecken\"",
                "Text",
            ),
            "4:11",
            "U+001B",
        ),
    ] {
        let p = Project::sample();
        let err = bad(&p, name, &text);
        assert!(
            err.contains(&format!(
                "releases/{name}:{at}: {shown} is a character which no feed can carry"
            )),
            "{name}: {err}"
        );
        let feed = std::fs::read_to_string(p.out().join("feed.atom")).expect("atom");
        assert!(
            !feed.contains(['\u{1}', '\u{1b}', '\u{fffe}']),
            "{name} reached the feed"
        );
    }
    // A character written as it is is reported once, where it is written.
    let p = Project::sample();
    let err = bad(
        &p,
        "skrivet.md",
        &release("title = \"Skrivet\"\ndate = 2019-05-01", "ett \u{8} tecken"),
    );
    assert_eq!(err.matches("no feed can carry").count(), 1, "{err}");
    assert!(err.contains("releases/skrivet.md:6:5: U+0008"), "{err}");
    // A reference in a code span is shown as written, and `&#0;` is U+FFFD: both fine.
    let p = Project::sample();
    p.write(
        "releases/kod.md",
        release(
            "title = \"Kod\"\ndate = 2019-05-01\ncontacts = [{ name = \"Anna\" }]",
            "Skriv `&#xFFFE;` och &#0; så.",
        ),
    );
    let check = p.run(&["check"]);
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
}

#[test]
fn two_releases_with_one_slug() {
    let p = Project::sample();
    let err = bad(
        &p,
        "2019-05-01-du-avgor.md",
        &release("title = \"Kopia\"\ndate = 2019-05-01", "Kopierad text."),
    );
    assert!(
        err.contains(
            "releases/2019-05-01-du-avgor.md:1:1: the slug `du-avgor` is already used by "
        ) && err.contains("2018-10-18-du-avgor.md"),
        "{err}"
    );
    assert!(
        !std::fs::read_to_string(p.out().join("feed.rss"))
            .expect("rss")
            .contains("Kopierad")
    );
}

#[test]
fn a_symlink_out_of_the_releases_folder() {
    let p = Project::sample();
    let secret = p.write(
        "secret.md",
        release("title = \"Hemlig\"\ndate = 2019-01-01", "Lösenord"),
    );
    std::os::unix::fs::symlink(&secret, p.path().join("releases/2019-01-01-lank.md"))
        .expect("symlink");
    let err = build_with(&p);
    assert!(
        err.contains(
            "releases/2019-01-01-lank.md:1:1: is a symlink leading out of the releases folder"
        ),
        "{err}"
    );
    assert!(every(files(&p.out()).values(), "site files", |b| {
        !String::from_utf8_lossy(b).contains("Hemlig")
    }));
}

#[test]
fn a_huge_file_is_refused_unread() {
    let p = Project::sample();
    let path = p.path().join("releases/2019-01-01-stor.md");
    let f = std::fs::File::create(&path).expect("create");
    f.set_len(50 * 1024 * 1024).expect("50 MB");
    let err = build_with(&p);
    assert!(
        err.contains("releases/2019-01-01-stor.md:1:1: is 52428800 bytes, too big for a release"),
        "{err}"
    );
}

#[test]
fn a_binary_file() {
    let p = Project::sample();
    p.write(
        "releases/2019-01-01-bild.md",
        [0x89, b'P', b'N', b'G', 0, 0, 0, 13, 0xff, 0xfe],
    );
    let err = build_with(&p);
    assert!(
        err.contains(
            "releases/2019-01-01-bild.md:1:1: is a binary file, not text (UTF-8 Markdown)"
        ),
        "{err}"
    );
}

#[test]
fn editor_and_copy_leftovers_are_ignored_silently() {
    let p = Project::sample();
    for name in [
        ".2019-01-01-x.md.swp",
        "2019-01-01-x.md~",
        "2019-01-01-x.md.part",
        "_mall.md",
        ".#x.md",
    ] {
        p.write(&format!("releases/{name}"), "+++\nhalf");
    }
    let o = p.run(&["check"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn every_problem_of_a_file_in_one_run_and_warnings_do_not_fail() {
    let p = Project::sample();
    p.write(
        "releases/2019-05-01-x.md",
        release("title = 5\ndate = \"igår\"\ndraft = \"ja\"", ""),
    );
    let o = p.run(&["check"]);
    let err = String::from_utf8_lossy(&o.stderr);
    for expected in [
        "2019-05-01-x.md:2:9: `title` is an integer (a string in quotes)",
        "2019-05-01-x.md:3:8: `igår` is not a date-time",
        "2019-05-01-x.md:4:9: `draft` is a string (true or false)",
    ] {
        assert!(err.contains(expected), "missing {expected:?} in {err}");
    }

    let q = Project::sample();
    q.write(
        "releases/2019-05-01-ok.md",
        release("title = \"Utan kontakt\"\ndate = 2019-05-01", "Text."),
    );
    let o = q.run(&["check"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("warning: the release names no press contact"),
        "{err}"
    );
}

#[test]
fn script_event_handlers_and_javascript_links_never_reach_a_page_or_feed() {
    let p = Project::empty();
    p.write(
        "releases/2019-05-01-elak.md",
        release(
            "title = \"Elak\"\ndate = 2019-05-01\nsummary = \"<img src=x onerror=alert(1)>\"",
            "Hej <script>alert(1)</script>\n\n<img src=\"x.png\" onerror=\"alert(2)\">\n\n[klick](javascript:alert(3))\n\n<a href=\"jAvAsCrIpT:alert(4)\" onclick=\"alert(5)\">x</a>\n\n<iframe src=\"https://example.com\"></iframe>",
        ),
    );
    let out = p.out();
    p.build_at("2019-06-01T00:00:00Z", &out);
    let site = files(&out);
    assert!(
        site.contains_key("releases/elak/index.html"),
        "{:?}",
        site.keys()
    );
    for (path, bytes) in site {
        let lower = without_json_ld(&String::from_utf8_lossy(&bytes).to_lowercase());
        for evil in ["<script", "onerror=", "onclick=", "javascript:", "<iframe"] {
            assert!(!lower.contains(evil), "{path} contains {evil}");
        }
    }
}

#[test]
fn a_title_is_plain_text_shown_escaped() {
    let p = Project::empty();
    p.write(
        "releases/2019-05-01-elak.md",
        release(
            "title = \"<script>alert('t')</script> & <b>fet</b>\"\ndate = 2019-05-01",
            "Text.",
        ),
    );
    let out = p.out();
    p.build_at("2019-06-01T00:00:00Z", &out);
    let page = std::fs::read_to_string(out.join("releases/elak/index.html")).expect("page");
    assert!(
        page.contains(
            "<h1>&lt;script&gt;alert(&#39;t&#39;)&lt;/script&gt; &amp; &lt;b&gt;fet&lt;/b&gt;</h1>"
        ),
        "{page}"
    );
    assert!(!without_json_ld(&page).contains("<script"), "{page}");
    let feed = feed_rs::parser::parse(&std::fs::read(out.join("feed.atom")).expect("atom")[..])
        .expect("parse");
    assert_eq!(
        feed.entries[0].title.as_ref().map(|t| t.content.as_str()),
        Some("<script>alert('t')</script> & <b>fet</b>")
    );
}

#[test]
fn a_broken_release_keeps_its_last_good_page_until_fixed() {
    let p = Project::sample();
    let out = p.out();
    p.build_at("2020-01-01T00:00:00Z", &out);
    let sample = p.path().join("releases/2018-10-18-du-avgor.md");
    let good = std::fs::read_to_string(&sample).expect("read");
    std::fs::write(&sample, &good[..40]).expect("half-written");
    let o = p.run(&[
        "build",
        "--at",
        "2020-01-01T00:00:00Z",
        "--out",
        out.to_str().expect("utf-8"),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let page = std::fs::read_to_string(out.join("releases/du-avgor/index.html"))
        .expect("last good page stays");
    assert!(page.contains(SAMPLE_SENTENCES[0]));
}

#[test]
fn a_broken_config_is_reported_with_its_line_and_nothing_is_built() {
    let p = Project::sample();
    let config = p.path().join("config/pressroom.toml");
    let text = std::fs::read_to_string(&config).expect("config");
    std::fs::write(
        &config,
        text.replace(
            "timezone = \"Europe/Stockholm\"",
            "timezone = \"Europe/Stokholm\"\ntitel = \"x\"",
        ),
    )
    .expect("write");
    for args in [
        &["check"][..],
        &["build", "--at", "2020-01-01T00:00:00Z"][..],
    ] {
        let o = p.run(args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{err}");
        assert!(
            err.contains("config/pressroom.toml:9:12: `Europe/Stokholm`"),
            "{err}"
        );
        assert!(
            err.contains(
                "config/pressroom.toml:10:1: unknown key `titel` in [site] (did you mean `title`?)"
            ),
            "{err}"
        );
    }
    assert!(!p.out().exists());
}

#[test]
fn a_bad_media_list_row_is_reported_with_its_line() {
    let p = Project::sample();
    p.write(
        "config/media.csv",
        "email;name;outlet;lang;topics\nanna@example.org;Anna;X;sv;\nnot an address;Bo;Y;;\n",
    );
    let o = p.run(&["check"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("config/media.csv:3:1: `not an address` is not an email address"),
        "{err}"
    );
    assert!(
        err.contains("1 release, 1 recipient: 1 error"),
        "the good row counts: {err}"
    );
}

#[test]
fn attachment_names_that_leave_the_bundle_are_refused_and_nothing_outside_is_published() {
    let p = Project::sample();
    p.write(
        "releases/b/index.md",
        release(
            "title = \"Bilagor\"\ndate = 2019-01-01\nattachments = [\"../../config/pressroom.toml\", \"../2018-10-18-du-avgor.md\", \"/etc/passwd\"]\nimage = \"../../config/media.csv\"",
            "Text.",
        ),
    );
    let o = p.run(&["build"]);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    for name in [
        "../../config/pressroom.toml",
        "../2018-10-18-du-avgor.md",
        "/etc/passwd",
        "../../config/media.csv",
    ] {
        assert!(
            err.contains(&format!("`{name}` is not a file in the bundle")),
            "{name}: {err}"
        );
    }
    let site = files(&p.out());
    assert!(
        every(site.values(), "site files", |b| {
            let t = String::from_utf8_lossy(b);
            !t.contains("[site]") && !t.contains("root:") && !t.contains("anna.lind@")
        }),
        "no file from outside the bundle is published"
    );
    assert!(
        site.contains_key("releases/du-avgor/index.html"),
        "the rest is published"
    );
}

#[test]
fn a_ten_megabyte_title_is_refused_unread_and_a_hundred_thousand_journalists_are_read() {
    let p = Project::sample();
    p.write(
        "releases/stor.md",
        release(
            &format!("title = \"{}\"\ndate = 2019-01-01", "x".repeat(10_000_000)),
            "Text.",
        ),
    );
    let mut media = String::from("email,name,outlet,lang,topics\n");
    for i in 0..100_000 {
        media.push_str(&format!("j{i}@example.org,Journalist {i},Exempel,,\n"));
    }
    p.write("config/media.csv", media);
    let o = p.run(&["check"]);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        err.contains("stor.md:1:1: is 10000"),
        "{}",
        &err[..err.len().min(500)]
    );
    assert!(err.contains("too big for a release"));
    assert!(
        err.contains("1 release, 100000 recipients"),
        "{}",
        &err[..err.len().min(500)]
    );
}

#[test]
fn an_output_folder_the_system_refuses_is_a_clear_error_and_the_site_stays_as_it_was() {
    let p = Project::sample();
    assert!(p.run(&["build"]).status.success());
    let before = files(&p.out());
    // /proc takes no new folders, even from root: the write fails as on a read-only disk.
    let o = p.run(&["build", "--out", "/proc/pressroom-site"]);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(2), "{err}");
    let last = err.lines().last().unwrap_or("");
    assert!(
        last.starts_with("pressroom: cannot write the site: /proc/pressroom-site: "),
        "{err}"
    );
    assert_eq!(
        last.matches("/proc/pressroom-site").count(),
        1,
        "said once: {last}"
    );
    assert_eq!(files(&p.out()), before, "the real site is untouched");
}

#[test]
fn a_releases_folder_that_cannot_be_read_unpublishes_nothing() {
    let p = Project::sample();
    assert!(p.run(&["build"]).status.success());
    let before = files(&p.out());
    // An unmounted share, a folder moved away: not a folder without releases.
    std::fs::rename(p.path().join("releases"), p.path().join("releases.away")).expect("mv");
    let o = p.run(&["build"]);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("cannot read the releases folder"), "{err}");
    assert!(err.contains("the site stays as it was"), "{err}");
    assert_eq!(files(&p.out()), before, "nothing unpublished");
    let o = p.run(&["check"]);
    assert_eq!(o.status.code(), Some(1), "check reports it as an error");
}

/// Whether this system lets an unprivileged user namespace mount a tmpfs (for a disk that
/// fills up). Where it does not, the test that needs one says so and does nothing.
pub fn can_mount_tmpfs() -> bool {
    std::process::Command::new("unshare")
        .args(["-rm", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt"])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn a_full_output_disk_is_a_clear_error_nothing_half_written_appears_and_no_publication_is_lost() {
    if !can_mount_tmpfs() {
        eprintln!("skipped: this system gives no mount namespace for a small tmpfs");
        return;
    }
    let p = Project::sample();
    let work = tempfile::tempdir().expect("dir");
    let out = work.path().join("site");
    std::fs::create_dir(&out).expect("mount point");
    // Half a megabyte of text: its page and its three feeds do not fit in what is left.
    let sentence = "Jämställdhetsmyndigheten lanserar en ny kampanj i dag. ";
    let date = (pressroom::clock::now() - chrono::TimeDelta::hours(1))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    std::fs::write(
        work.path().join("stor-nyhet.md"),
        release(
            &format!(
                "title = \"Stor nyhet\"\ndate = \"{date}\"\ntopics = [\"jamstalldhet\"]\ncontacts = [{{ name = \"Presstjänst\", email = \"press@example.org\" }}]"
            ),
            &sentence.repeat(9_000),
        ),
    )
    .expect("big release");
    // A 400 KB disk, in a mount namespace of its own: first a build that fits, then one
    // that does not. Each site is copied out before the namespace (and the disk) goes.
    let script = r#"
set -e
mount -t tmpfs -o size=400k tmpfs "$OUT"
"$BIN" --config "$CONFIG" build --out "$OUT" 2>"$WORK/first.err"
cp -a "$OUT" "$WORK/before"
cp "$WORK/stor-nyhet.md" "$RELEASES/"
set +e
"$BIN" --config "$CONFIG" build --out "$OUT" 2>"$WORK/second.err"
echo $? >"$WORK/second.code"
cp -a "$OUT" "$WORK/after"
"#;
    let o = std::process::Command::new("unshare")
        .args(["-rm", "sh", "-c", script])
        .env("OUT", &out)
        .env("WORK", work.path())
        .env("BIN", env!("CARGO_BIN_EXE_pressroom"))
        .env("CONFIG", p.path().join("config/pressroom.toml"))
        .env("RELEASES", p.path().join("releases"))
        .output()
        .expect("unshare");
    let read = |name: &str| std::fs::read_to_string(work.path().join(name)).unwrap_or_default();
    assert!(
        o.status.success(),
        "{}{}",
        String::from_utf8_lossy(&o.stderr),
        read("first.err")
    );
    let err = read("second.err");
    assert_eq!(read("second.code").trim(), "2", "{err}");
    let last = err.lines().last().unwrap_or("");
    assert!(
        last.starts_with("pressroom: cannot write the site: ") && last.contains("No space left"),
        "{err}"
    );
    // Nothing half-written: not a temp file, not a new page, not a changed feed.
    assert_same_files(
        &files(&work.path().join("after")),
        &files(&work.path().join("before")),
        "the site on the full disk",
    );
    let folders = |root: &std::path::Path| {
        walkdir_dirs(root)
            .into_iter()
            .map(|d| d.strip_prefix(root).expect("inside").to_path_buf())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        folders(&work.path().join("after")),
        folders(&work.path().join("before")),
        "folders appeared on the full disk"
    );

    // The failed build recorded nothing: the next one that can write publishes the release
    // and decides its mail, as if the disk had never been full.
    let status = String::from_utf8_lossy(&p.run(&["status"]).stdout).into_owned();
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("stor-nyhet") && !l.contains("queued")),
        "{status}"
    );
    let o = p.run(&["build"]);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "{err}");
    assert!(
        err.lines()
            .any(|l| l.starts_with("published stor-nyhet") && l.contains("queued")),
        "{err}"
    );
}

/// Every folder under `root`, sorted.
fn walkdir_dirs(root: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(dir) = todo.pop() {
        for entry in std::fs::read_dir(&dir).expect("read dir").flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                out.push(entry.path());
                todo.push(entry.path());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn toml_nested_ten_thousand_deep_is_reported_not_a_crash() {
    let n = 10_000;
    let arrays = format!("{}{}", "[".repeat(n), "]".repeat(n));
    let tables = format!("{}1{}", "{a=".repeat(n), "}".repeat(n));
    let dotted = vec!["a"; n].join(".");
    let p = Project::sample();
    p.write(
        "releases/2020-01-01-djup.md",
        release(
            &format!(
                "title = \"Djup\"\ndate = 2020-01-01\nx = {arrays}\ny = {tables}\n{dotted} = 1"
            ),
            "Text.",
        ),
    );
    let o = p.run(&["check"]);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("releases/2020-01-01-djup.md:4:"), "{err}");
    assert!(err.contains("recursion"), "{err}");
    // The other release is still built.
    let o = p.run(&["build"]);
    assert!(files(&p.out()).contains_key("releases/du-avgor/index.html"));
    assert_eq!(o.status.code(), Some(1));

    let config = p.path().join("config/pressroom.toml");
    let text = std::fs::read_to_string(&config).expect("config");
    for nested in [&arrays, &tables] {
        std::fs::write(
            &config,
            text.replace("[site]", &format!("[site]\nx = {nested}")),
        )
        .expect("config");
        let o = p.run(&["check"]);
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert_eq!(o.status.code(), Some(1), "{err}");
        assert!(err.contains("config/pressroom.toml:5:"), "{err}");
    }
    std::fs::write(
        &config,
        text.replace("[site]", &format!("[site]\n{dotted} = 1")),
    )
    .expect("config");
    let o = p.run(&["check"]);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("recursion"), "{err}");
}
