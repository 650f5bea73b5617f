//! The newsroom as a journalist's browser shows it: the real daemon serves the sample, and
//! headless Chromium (Debian's, driven over WebDriver by Python Selenium,
//! `tests/browser/check.py`) loads its pages at a desktop width and a phone's, with axe-core
//! injected. And the share cards a chat or social site would build from a release page,
//! read back by an independent parser (Python `extruct`, `tests/browser/share.py`).
//! `.ci/install-test-tools.sh` installs every tool; a missing one fails the test.

use std::process::Command;
use std::time::Duration;

use super::daemon::{Daemon, client, get, sample_served, wait_for};
use super::*;

/// The sample's topic as its page shows it.
const TOPIC_SLUG: &str = "manniskohandel";
const TOPIC_NAME: &str = "manniskohandel";
/// The site's title in the shipped config.
const SITE_TITLE: &str = "Jämställdhetsmyndigheten – Pressrum";

/// Runs a Python script of `tests/browser/` with `args`; panics with its output if it fails.
fn python(script: &str, args: &[&str]) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/browser")
        .join(script);
    let o = Command::new("python3")
        .arg(&path)
        .args(args)
        .output()
        .expect("python3 runs (.ci/install-test-tools.sh)");
    let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "{script} fails (exit {:?}):\n{stdout}{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stderr)
    );
    stdout
}

#[test]
fn the_index_a_release_and_a_topic_page_read_well_at_a_desk_and_on_a_phone() {
    let (p, _port) = sample_served();
    let d = Daemon::start(&p);
    let http = client();
    wait_for("the site", Duration::from_secs(20), || {
        get(&http, &d.base, "/releases/du-avgor/").0 == 200
    });
    let spec = serde_json::json!({
        "base": d.base,
        "widths": [1280, 390],
        "pages": [
            {
                "path": "/",
                "texts": [SAMPLE_TITLE, "18 oktober 2018", "Till innehållet"],
                "absent": ["00:00", "CEST"],
                "title": SITE_TITLE,
            },
            {
                "path": "/releases/du-avgor/",
                "texts": [SAMPLE_TITLE, "Publicerad 18 oktober 2018", "svenska", "Presskontakt",
                          "Petra Tammert Seidefors", SAMPLE_SENTENCES[0], "Jämställdhetsmyndigheten"],
                "absent": ["00:00", "CEST", "Språk: sv\n"],
                "title": format!("{SAMPLE_TITLE} – {SITE_TITLE}"),
            },
            {
                "path": format!("/topics/{TOPIC_SLUG}/"),
                "texts": [TOPIC_NAME, SAMPLE_TITLE, "18 oktober 2018"],
                "title": format!("{TOPIC_NAME} – {SITE_TITLE}"),
            },
        ],
    });
    let file = p.path().join("browser.json");
    std::fs::write(&file, spec.to_string()).expect("write the spec");
    let said = python("check.py", &[file.to_str().expect("utf-8 path")]);
    // Three pages at two widths, each checked.
    assert_eq!(said.matches("checked ").count(), 6, "{said}");
}
