//! A release file: front matter and body, as any bytes. Parsing never panics, and what it
//! accepts holds the invariants the renderers rely on.
#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use pressroom::config::Config;
use pressroom::release::frontmatter;
use pressroom::release::source::{Entry, SourceFile};

static CONFIG: OnceLock<Config> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return; // The scan refuses files that are not UTF-8 before parsing.
    };
    let config = CONFIG.get_or_init(|| Config::defaults(Path::new("/nonexistent")));
    let file = SourceFile {
        entry: Entry {
            path: "releases/fuzz.md".into(),
            name: "fuzz".into(),
            key: "fuzz.md".into(),
            bundle: None,
            stamp: 0,
        },
        text: text.to_string(),
        files: None,
    };
    let parsed = frontmatter::parse(&file, &config.site);
    if let Some(r) = parsed.release {
        assert!(
            !r.title.chars().any(char::is_control),
            "a control character in a title"
        );
        assert!(!r.title.is_empty());
        let body = r.body_html().expect("a parsed release has its text");
        let html = body.to_ascii_lowercase();
        assert!(!html.contains("<script"), "script in a body: {body}");
        assert!(
            !html.contains("javascript:"),
            "javascript: in a body: {body}"
        );
    }
});
