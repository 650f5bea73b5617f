//! The release body: CommonMark (tables, footnotes, strikethrough) to HTML that is safe to
//! put in a page, a feed or a mail. Raw HTML is sanitised by ammonia (no scripts, no event
//! handlers, no `javascript:` links) and every relative link is made absolute against the
//! release's page URL, so one HTML string serves all outputs.

use std::collections::HashSet;
use std::sync::LazyLock;

use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};
use url::Url;

fn options() -> Options {
    Options::ENABLE_TABLES | Options::ENABLE_FOOTNOTES | Options::ENABLE_STRIKETHROUGH
}

/// A body rendered once: the HTML for every output and the default summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Body {
    pub html: String,
    /// The first paragraph as plain text, whitespace collapsed.
    pub first_paragraph: Option<String>,
}

/// The URL schemes a link or image may use: ammonia's list, so both paths below agree.
static SCHEMES: LazyLock<HashSet<&'static str>> =
    LazyLock::new(|| ammonia::Builder::default().clone_url_schemes());

/// Markdown to sanitised HTML with absolute URLs, in one pass.
///
/// pulldown-cmark escapes all text and attribute values itself, so HTML made from Markdown
/// alone can only carry danger in URLs: every link and image URL is made absolute against
/// `page_url` and dropped unless its scheme is one ammonia allows. A body that holds raw
/// HTML is then passed through ammonia as a whole. (Skipping ammonia for the common case
/// of Markdown without HTML halves the cost of a cold build.)
pub fn render(markdown: &str, page_url: &Url) -> Body {
    let mut html = String::with_capacity(markdown.len() * 3 / 2);
    let mut raw_html = false;
    let mut first = FirstParagraph::default();
    let mut dropped_link = false;
    let mut dropped_image = 0usize;
    let events = Parser::new_ext(markdown, options()).filter_map(|event| {
        first.see(&event);
        match event {
            Event::Html(_) | Event::InlineHtml(_) => {
                raw_html = true;
                Some(event)
            }
            Event::Start(Tag::Link {
                link_type,
                dest_url,
                title,
                id,
            }) => match safe_url(&dest_url, page_url) {
                Some(url) => Some(Event::Start(Tag::Link {
                    link_type,
                    dest_url: url.into(),
                    title,
                    id,
                })),
                None => {
                    dropped_link = true;
                    None
                }
            },
            Event::End(TagEnd::Link) if dropped_link => {
                dropped_link = false;
                None
            }
            Event::Start(Tag::Image {
                link_type,
                dest_url,
                title,
                id,
            }) => match safe_url(&dest_url, page_url) {
                Some(url) if dropped_image == 0 => Some(Event::Start(Tag::Image {
                    link_type,
                    dest_url: url.into(),
                    title,
                    id,
                })),
                _ => {
                    dropped_image += 1;
                    None
                }
            },
            Event::End(TagEnd::Image) if dropped_image > 0 => {
                dropped_image -= 1;
                None
            }
            other => Some(other),
        }
    });
    pulldown_cmark::html::push_html(&mut html, events);
    if raw_html {
        html = sanitise(&html, page_url);
    }
    html.shrink_to_fit();
    Body {
        html,
        first_paragraph: first.done,
    }
}

/// ammonia over HTML that came with raw HTML in it.
fn sanitise(html: &str, page_url: &Url) -> String {
    let mut cleaner = ammonia::Builder::default();
    cleaner
        .url_relative(ammonia::UrlRelative::RewriteWithBase(page_url.clone()))
        .link_rel(None)
        // Footnote references and definitions link to each other by id.
        .add_generic_attributes(["id"])
        .add_tag_attributes("a", ["title"])
        .add_tag_attributes("img", ["title"]);
    cleaner.clean(html).to_string()
}

/// The body as plain text for the text part of a mail: paragraphs separated by blank
/// lines, headings underlined, list items dashed, each link followed by its absolute URL in
/// angle brackets. Raw HTML is dropped; the text inside inline tags is kept.
pub fn to_text(markdown: &str, page_url: &Url) -> String {
    let mut out = String::with_capacity(markdown.len());
    let mut links: Vec<(String, usize)> = Vec::new();
    let mut lists: Vec<Option<u64>> = Vec::new();
    let mut heading: Option<usize> = None;
    for event in Parser::new_ext(markdown, options()) {
        match event {
            Event::Text(t) | Event::Code(t) => out.push_str(&t),
            Event::SoftBreak => out.push(' '),
            Event::HardBreak => out.push('\n'),
            Event::Rule => out.push_str("----------------------------------------\n\n"),
            Event::FootnoteReference(name) => {
                out.push_str(&format!("[{name}]"));
            }
            Event::Start(Tag::Heading { .. }) => heading = Some(out.len()),
            Event::End(TagEnd::Heading(level)) => {
                let width = heading
                    .take()
                    .map_or(0, |start| out[start..].chars().count());
                let line = if level <= pulldown_cmark::HeadingLevel::H2 {
                    '='
                } else {
                    '-'
                };
                out.push('\n');
                out.extend(std::iter::repeat_n(line, width));
                out.push_str("\n\n");
            }
            Event::End(TagEnd::Paragraph) => out.push_str("\n\n"),
            Event::Start(Tag::List(first)) => lists.push(first),
            Event::End(TagEnd::List(_)) => {
                lists.pop();
                if lists.is_empty() {
                    out.push('\n');
                }
            }
            Event::Start(Tag::Item) => {
                let depth = lists.len().saturating_sub(1);
                out.push_str(&"  ".repeat(depth));
                match lists.last_mut() {
                    Some(Some(n)) => {
                        out.push_str(&format!("{n}. "));
                        *n += 1;
                    }
                    _ => out.push_str("- "),
                }
            }
            Event::End(TagEnd::Item) => {
                while out.ends_with('\n') {
                    out.pop();
                }
                out.push('\n');
            }
            Event::Start(Tag::Link { dest_url, .. } | Tag::Image { dest_url, .. }) => {
                links.push((safe_url(&dest_url, page_url).unwrap_or_default(), out.len()));
            }
            Event::End(TagEnd::Link | TagEnd::Image) => {
                if let Some((url, start)) = links.pop()
                    && !url.is_empty()
                {
                    let text = out[start..].trim();
                    let same = text == url || format!("mailto:{text}") == url;
                    if !same {
                        out.push_str(&format!(" <{url}>"));
                    }
                }
            }
            Event::End(TagEnd::TableCell) => out.push_str(" | "),
            Event::End(TagEnd::TableRow | TagEnd::TableHead) => {
                while out.ends_with(' ') || out.ends_with('|') {
                    out.pop();
                }
                out.push('\n');
            }
            Event::End(TagEnd::Table) => out.push('\n'),
            _ => {}
        }
    }
    let trimmed = out.trim_end().len();
    out.truncate(trimmed);
    out.push('\n');
    out
}

/// `url` made absolute against the page, if its scheme is allowed.
fn safe_url(url: &str, page_url: &Url) -> Option<String> {
    let absolute = page_url.join(url.trim()).ok()?;
    SCHEMES
        .contains(absolute.scheme())
        .then(|| absolute.to_string())
}

/// Collects the first non-empty paragraph's text from a stream of events.
#[derive(Default)]
struct FirstParagraph {
    inside: bool,
    text: String,
    done: Option<String>,
}

impl FirstParagraph {
    fn see(&mut self, event: &Event<'_>) {
        if self.done.is_some() {
            return;
        }
        match event {
            Event::Start(Tag::Paragraph) => self.inside = true,
            Event::End(TagEnd::Paragraph) if self.inside => {
                let collapsed = collapse(&self.text);
                if !collapsed.is_empty() {
                    self.done = Some(collapsed);
                }
                self.inside = false;
                self.text.clear();
            }
            Event::Text(t) | Event::Code(t) if self.inside => self.text.push_str(t),
            Event::SoftBreak | Event::HardBreak if self.inside => self.text.push(' '),
            _ => {}
        }
    }
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

fn collapse(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn to_html(markdown: &str, page: &Url) -> String {
        render(markdown, page).html
    }

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
    fn markdown_alone_cannot_smuggle_a_script_url() {
        let html = to_html(
            "[a](javascript:alert(1)) <javascript:alert(2)> [b](JAVASCRIPT:alert(3)) ![c](data:text/html;base64,x) [d]( javascript:alert(4))\n\n[e]: vbscript:x\n\n[ref][e] [ok](mailto:press@example.org)",
            &page(),
        );
        let lower = html.to_lowercase();
        for bad in ["javascript:", "data:", "vbscript:"] {
            assert!(!lower.contains(&format!("=\"{bad}")), "{html}");
        }
        assert_eq!(
            lower.matches("href=").count(),
            1,
            "only the mailto link stays a link: {html}"
        );
        assert!(html.contains("href=\"mailto:press@example.org\""), "{html}");
        assert!(
            html.contains(">a<") || html.contains("a "),
            "link text stays as text: {html}"
        );
    }

    #[test]
    fn both_paths_agree_on_urls() {
        let plain = to_html("[x](rapport.pdf)", &page());
        let with_html = to_html("[x](rapport.pdf) <b>!</b>", &page());
        let href = "href=\"https://press.example.org/releases/x/rapport.pdf\"";
        assert!(
            plain.contains(href) && with_html.contains(href),
            "{plain} {with_html}"
        );
    }

    #[test]
    fn plain_text_for_mail() {
        let text = to_text(
            "## Bakgrund\n\nLäs [rapporten](rapport.pdf) eller <https://example.org/>.\n\n- ett\n- två\n\n1. a\n2. b\n\n<div>rå</div>\n\n[x](javascript:alert(1))",
            &page(),
        );
        assert_eq!(
            text,
            "Bakgrund\n========\n\nLäs rapporten <https://press.example.org/releases/x/rapport.pdf> eller https://example.org/.\n\n- ett\n- två\n\n1. a\n2. b\n\nx\n"
        );
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
            render(md, &page()).first_paragraph.as_deref(),
            Some("Utan efterfrågan ingen prostitution.")
        );
    }
}
