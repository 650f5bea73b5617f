//! The release fuzz target's corpus as a test: every file in `tests/pipeline/corpus/` is
//! parsed as the fuzz target parses it (the site in `tests/pipeline/site.toml`, the bundle
//! of `mail::pipeline::bundle`). What parsing accepts must render through the whole
//! pipeline (page, listings, RSS, Atom and JSON feeds, sitemap, mail) without an error or a
//! panic: every value `check` lets through renders. What it refuses must be refused with an
//! error at a line and column of the file, never silently.

use std::path::{Path, PathBuf};

use pressroom::config::Config;
use pressroom::mail::pipeline;
use pressroom::release::frontmatter;
use pressroom::render::Templates;

/// The fuzz target's site and the built-in templates.
fn site() -> (Config, Templates) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let site = std::fs::read_to_string(root.join("tests/pipeline/site.toml")).expect("site");
    let (config, _) = Config::parse(&site, Path::new("site.toml"), Path::new("/nonexistent"))
        .expect("the pipeline site's config is valid");
    (config, Templates::built_in())
}

fn corpus() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/pipeline/corpus");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/pipeline/corpus")
        .map(|e| e.expect("a corpus entry").path())
        .collect();
    files.sort();
    files
}

#[test]
fn every_release_the_fuzz_corpus_holds_renders_everywhere_or_is_refused_at_a_line() {
    let (config, templates) = site();
    let (mut accepted, mut refused, mut failures) = (0, 0, Vec::new());
    for path in corpus() {
        let name = path
            .file_name()
            .expect("a name")
            .to_string_lossy()
            .to_string();
        let bytes = std::fs::read(&path).expect("a corpus file");
        // The scan refuses what is not UTF-8 before parsing; so does the fuzz target.
        let Ok(text) = String::from_utf8(bytes) else {
            continue;
        };
        let parsed = frontmatter::parse(&pipeline::bundle(&text), &config.site);
        let Some(release) = parsed.release else {
            refused += 1;
            let lines = text.split('\n').count();
            if !parsed
                .diags
                .iter()
                .any(|d| d.is_error() && (1..=lines).contains(&d.line) && d.col >= 1)
            {
                failures.push(format!(
                    "{name}: refused without an error at a line: {:?}",
                    parsed.diags
                ));
            }
            continue;
        };
        accepted += 1;
        // A panic is caught so that one run names every file that fails.
        let rendered = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            pipeline::whole(&config, &templates, &release).map(|r| (r.site.len(), r.mail.len()))
        }));
        match rendered {
            Ok(Ok((pages, messages))) => {
                if pages == 0 || messages != 4 {
                    failures.push(format!(
                        "{name}: {pages} outputs and {messages} messages rendered"
                    ));
                }
            }
            Ok(Err(e)) => failures.push(format!("{name}: accepted, but {e}")),
            Err(_) => failures.push(format!("{name}: accepted, but rendering it panicked")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // The corpus keeps both kinds, and mostly releases a press officer could have written.
    assert!(
        accepted >= 300 && refused >= 80,
        "{accepted} accepted, {refused} refused"
    );
}

#[test]
fn a_release_dated_1900_renders_and_its_mail_is_dated_when_it_leaves() {
    // The fuzzer's first find: the mail's Date went through lettre's `httpdate`, which
    // panics before 1970, while `check` rightly accepts years from 1900.
    let (config, templates) = site();
    let text = "+++\ntitle = \"Sekelskifte\"\ndate = 1900-01-01T00:00:00Z\ncontacts = [{ name = \"Hans Ivarsson\" }]\n+++\nDet första ögonblicket en release får ha.\n";
    let release = frontmatter::parse(&pipeline::bundle(text), &config.site)
        .release
        .expect("1900 is a year a release may have");
    let rendered = pipeline::whole(&config, &templates, &release).expect("it renders");
    let feed = rendered
        .site
        .get("feed.rss")
        .and_then(|o| match o {
            pressroom::render::Output::Bytes(b) => Some(String::from_utf8_lossy(b).to_string()),
            _ => None,
        })
        .expect("the RSS feed");
    assert!(
        feed.contains("<pubDate>Mon, 1 Jan 1900 01:00:00 +0100</pubDate>"),
        "{feed}"
    );
    let mail = String::from_utf8_lossy(&rendered.mail[0]).to_string();
    assert!(
        mail.contains("Date: Thu, 01 Jan 1970 00:00:00 +0000"),
        "{mail}"
    );
}
