//! A release file: front matter and body, as any bytes. Parsing never panics; what it
//! accepts holds the invariants the renderers rely on, and renders through the whole
//! pipeline (its page, the listings, the RSS, Atom and JSON feeds, the sitemap, its mail)
//! without an error or a panic, into well-formed XML and JSON (`mail::pipeline::whole`).
#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use pressroom::config::Config;
use pressroom::mail::pipeline;
use pressroom::release::frontmatter;
use pressroom::render::Templates;

/// The site `tests/it/pipeline.rs` renders the committed corpus for.
const SITE: &str = include_str!("../../tests/pipeline/site.toml");

static SETUP: OnceLock<(Config, Templates)> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return; // The scan refuses files that are not UTF-8 before parsing.
    };
    let (config, templates) = SETUP.get_or_init(|| {
        let (config, _) = Config::parse(SITE, Path::new("site.toml"), Path::new("/nonexistent"))
            .expect("the fuzz site's config is valid");
        (config, Templates::built_in())
    });
    let file = pipeline::bundle(text);
    let parsed = frontmatter::parse(&file, &config.site);
    let Some(r) = parsed.release else {
        // No silent refusal: at least one error points at a line and column of the file.
        let lines = text.split('\n').count();
        assert!(
            parsed
                .diags
                .iter()
                .any(|d| d.is_error() && (1..=lines).contains(&d.line) && d.col >= 1),
            "refused without an error at a line: {:?}",
            parsed.diags
        );
        return;
    };
    assert!(
        !r.title.chars().any(char::is_control),
        "a control character in a title"
    );
    assert!(!r.title.is_empty());
    let body = r.body_html().expect("a parsed release has its text");
    let html = body.to_ascii_lowercase();
    assert!(!html.contains("<script"), "script in a body: {body}");
    // `javascript:` as words of the text is harmless (its `<` and `>` are escaped), and so
    // is a path that holds it; an attribute value inside a tag that starts with it would
    // run it.
    for (at, _) in html.match_indices("javascript:") {
        let before = &html[..at];
        let in_tag = before.rfind('<') > before.rfind('>');
        let starts_a_value = before
            .trim_end_matches(|c: char| c.is_ascii_whitespace() || c.is_control())
            .ends_with(['"', '\'', '=']);
        assert!(
            !(in_tag && starts_a_value),
            "a javascript: URL in a body: {body}"
        );
    }
    if let Err(e) = pipeline::whole(config, templates, &r) {
        panic!("check accepted a release the pipeline cannot render: {e}");
    }
});
