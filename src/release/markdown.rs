//! The release body: CommonMark (tables, footnotes, strikethrough) to HTML that is safe to
//! put in a page, a feed or a mail. Raw HTML is sanitised by ammonia (no scripts, no event
//! handlers, no `javascript:` links) and every relative link is made absolute against the
//! release's page URL, so one HTML string serves all outputs.

use std::collections::HashSet;

use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};
use url::Url;

fn options() -> Options {
    Options::ENABLE_TABLES | Options::ENABLE_FOOTNOTES | Options::ENABLE_STRIKETHROUGH
}

/// Markdown to sanitised HTML with absolute URLs.
pub fn to_html(markdown: &str, page_url: &Url) -> String {
    let mut raw = String::with_capacity(markdown.len() * 3 / 2);
    pulldown_cmark::html::push_html(&mut raw, Parser::new_ext(markdown, options()));
    let mut cleaner = ammonia::Builder::default();
    cleaner
        .url_relative(ammonia::UrlRelative::RewriteWithBase(page_url.clone()))
        // Footnote references and definitions link to each other by id.
        .add_generic_attributes(["id"])
        .add_tag_attributes("a", ["title"])
        .add_tag_attributes("img", ["title"]);
    cleaner.clean(&raw).to_string()
}

/// The first paragraph as plain text, whitespace collapsed: the default summary.
pub fn first_paragraph(markdown: &str) -> Option<String> {
    let mut text = String::new();
    let mut inside = false;
    for event in Parser::new_ext(markdown, options()) {
        match event {
            Event::Start(Tag::Paragraph) => inside = true,
            Event::End(TagEnd::Paragraph) if inside => {
                let collapsed = collapse(&text);
                if !collapsed.is_empty() {
                    return Some(collapsed);
                }
                inside = false;
                text.clear();
            }
            Event::Text(t) | Event::Code(t) if inside => text.push_str(&t),
            Event::SoftBreak | Event::HardBreak if inside => text.push(' '),
            _ => {}
        }
    }
    None
}

/// Every sentence-bearing text run of the body, for tests and leak checks: the plain text
/// of each paragraph, heading and list item.
pub fn plain_text(markdown: &str) -> String {
    let mut out = String::new();
    for event in Parser::new_ext(markdown, options()) {
        match event {
            Event::Text(t) | Event::Code(t) => out.push_str(&t),
            Event::SoftBreak | Event::HardBreak => out.push(' '),
            Event::End(
                TagEnd::Paragraph | TagEnd::Heading(_) | TagEnd::Item | TagEnd::TableRow,
            ) => out.push('\n'),
            _ => {}
        }
    }
    out
}

/// Relative link targets in the body (`[PDF](rapport.pdf)`), to check they exist.
pub fn relative_links(markdown: &str) -> HashSet<String> {
    let mut out = HashSet::new();
    for event in Parser::new_ext(markdown, options()) {
        if let Event::Start(Tag::Link { dest_url, .. } | Tag::Image { dest_url, .. }) = event
            && Url::parse(&dest_url).is_err()
            && !dest_url.starts_with('#')
            && !dest_url.starts_with('/')
        {
            out.insert(dest_url.to_string());
        }
    }
    out
}

fn collapse(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page() -> Url {
        Url::parse("https://press.example.org/releases/x/").unwrap()
    }

    #[test]
    fn dangerous_html_never_survives() {
        let html = to_html(
            "Hi <script>alert(1)</script> <img src=x onerror=\"alert(2)\"> [a](javascript:alert(3)) <a href=\"JaVaScRiPt:alert(4)\">b</a>",
            &page(),
        );
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("onerror"), "{html}");
        assert!(!html.to_lowercase().contains("javascript:"), "{html}");
    }

    #[test]
    fn relative_links_become_absolute() {
        let html = to_html(
            "[PDF](rapport.pdf) ![bild](bild.jpg) [abs](https://example.com/)",
            &page(),
        );
        assert!(
            html.contains("href=\"https://press.example.org/releases/x/rapport.pdf\""),
            "{html}"
        );
        assert!(
            html.contains("src=\"https://press.example.org/releases/x/bild.jpg\""),
            "{html}"
        );
        assert!(html.contains("href=\"https://example.com/\""), "{html}");
    }

    #[test]
    fn tables_footnotes_and_strikethrough() {
        let html = to_html(
            "| a | b |\n|---|---|\n| 1 | 2 |\n\n~~old~~ new[^1]\n\n[^1]: note\n",
            &page(),
        );
        assert!(html.contains("<table>"), "{html}");
        assert!(html.contains("<del>old</del>"), "{html}");
        assert!(
            html.contains("id=\"1\"") || html.contains("footnote"),
            "{html}"
        );
    }

    #[test]
    fn the_summary_is_the_first_paragraph() {
        let md = "# Rubrik\n\nUtan efterfrågan ingen\nprostitution.\n\nMer.";
        assert_eq!(
            first_paragraph(md).as_deref(),
            Some("Utan efterfrågan ingen prostitution.")
        );
    }
}
