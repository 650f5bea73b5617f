//! Parsing one release file: TOML front matter between `+++` lines, then the Markdown body.
//! Every problem is reported with its line and column; warnings do not stop the release.

use std::ops::Range;

use url::Url;

use super::markdown;
use super::source::{BundleFile, SourceFile};
use super::{Attachment, LangTag, Release, Slug, Topic};
use crate::config::Site;
use crate::diagnostic::{Diagnostic, SourceText};
use crate::schema::{self, TableReader};
use crate::time::{self, Written};

pub const MAX_TITLE_CHARS: usize = 200;

/// The outcome of parsing: the release if usable, and every diagnostic either way.
pub struct Parsed {
    pub release: Option<Release>,
    pub diags: Vec<Diagnostic>,
}

/// Parses a release read from disk.
pub fn parse(file: &SourceFile, site: &Site) -> Parsed {
    let mut diags = Vec::new();
    let release = parse_inner(file, site, &mut diags);
    let release = if diags.iter().any(Diagnostic::is_error) {
        None
    } else {
        release
    };
    Parsed { release, diags }
}

/// Splits `+++\n…\n+++\n` from the body: (front matter range, body range).
fn split(text: &str) -> Option<(Range<usize>, Range<usize>)> {
    let start = if text.starts_with('\u{feff}') {
        '\u{feff}'.len_utf8()
    } else {
        0
    };
    let mut lines = text[start..].split_inclusive('\n');
    let first = lines.next()?;
    if first.trim_end() != "+++" {
        return None;
    }
    let fm_start = start + first.len();
    let mut at = fm_start;
    for line in lines {
        if line.trim_end() == "+++" {
            return Some((fm_start..at, at + line.len()..text.len()));
        }
        at += line.len();
    }
    None
}

fn parse_inner(file: &SourceFile, site: &Site, diags: &mut Vec<Diagnostic>) -> Option<Release> {
    let path = &file.entry.path;
    let text = file.text.as_str();
    let whole = SourceText::whole(path, text);
    let Some((fm, body_range)) = split(text) else {
        let message = if text.trim_start_matches('\u{feff}').starts_with("+++") {
            "the front matter is not closed"
        } else {
            "the release has no front matter"
        };
        diags.push(
            whole
                .error(0..0, message)
                .expected("a first line +++, then TOML keys like title = \"...\", then a line +++"),
        );
        return None;
    };
    let src = whole.slice(fm.clone());
    let doc = schema::parse_document(&src, &text[fm.clone()], diags)?;
    let mut t = TableReader::new(src, doc.get_ref(), 0..0, "the front matter");

    let title = read_title(&mut t, diags);
    let date = read_date(&mut t, site, diags);
    let lang = match t.string("lang", diags) {
        Some((lang, span)) => match LangTag::parse(&lang) {
            Ok(tag) => {
                // A real language, but most likely a country written for one (`se`).
                if let Some(warning) = tag.advice(&site.lang) {
                    diags.push(t.error(span, warning).warning());
                }
                Some(tag)
            }
            Err(e) => {
                diags.push(
                    t.error(span, format!("`{lang}`: {e}"))
                        .expected("a BCP 47 language tag like sv or en-GB"),
                );
                None
            }
        },
        None => Some(site.lang.clone()),
    };
    let slug = match t.string("slug", diags) {
        Some((slug, span)) => Slug::parse(&slug)
            .map_err(|e| {
                diags.push(
                    t.error(span, e)
                        .expected("lowercase letters, digits and -, like du-avgor"),
                )
            })
            .ok(),
        None => Slug::parse(Slug::from_file_name(&file.entry.name))
            .map_err(|e| {
                diags.push(
                    whole
                        .error(0..0, format!("the file name gives the slug {e}"))
                        .expected(
                            "a file name of lowercase letters, digits and -, or a `slug` key",
                        ),
                )
            })
            .ok(),
    };
    let summary = t
        .string("summary", diags)
        .filter(|(s, span)| check_writable(&t, s, span.clone(), diags));
    let topics = read_topics(&mut t, diags);
    let contacts = crate::contact::read(&mut t, diags);
    let files = file.files.as_deref();
    let image = t
        .string("image", diags)
        .and_then(|(name, span)| attachment(&t, files, &name, span, diags));
    let image_alt = t
        .string("image_alt", diags)
        .filter(|(alt, span)| check_writable(&t, alt, span.clone(), diags))
        .map(|(alt, _)| alt);
    let attachments: Vec<Attachment> = t
        .string_list("attachments", diags)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(name, span)| attachment(&t, files, &name, span, diags))
        .collect();
    let draft = t.bool("draft", diags).is_some_and(|(d, _)| d);
    let withdrawn = t
        .string("withdrawn", diags)
        .filter(|(reason, span)| check_writable(&t, reason, span.clone(), diags))
        .map(|(reason, _)| reason);
    let mail = t.bool("mail", diags).is_none_or(|(m, _)| m);
    let id = t.string("id", diags).and_then(|(id, span)| {
        if id.is_empty() || id.chars().any(|c| c.is_whitespace() || !xml_char(c)) {
            diags.push(
                t.error(span, "`id` is empty or contains spaces")
                    .expected("a URI like tag:example.org,2018:du-avgor"),
            );
            None
        } else {
            Some(id)
        }
    });
    let updated = read_updated(&mut t, site, diags);
    let front_span = t.span();
    t.finish(diags);

    let written = text[body_range.clone()]
        .char_indices()
        .find(|&(_, c)| !xml_char(c));
    if let Some((at, c)) = written {
        let at = body_range.start + at;
        diags.push(
            whole
                .error(at..at + c.len_utf8(), unwritable(c))
                .expected("text without control characters"),
        );
    }
    let body = text[body_range.clone()].to_string();
    let (title, (date, date_only), lang, slug) = (title?, date?, lang?, slug?);
    if image.is_some() && image_alt.is_none() {
        diags.push(
            src.error(front_span.clone(), "the image has no `image_alt`")
                .expected("a short description for readers who cannot see it")
                .warning(),
        );
    }
    let rendered = markdown::render(&body, &page_url(site, &slug));
    // Markdown and HTML decode character references: `&#xFFFE;` writes a character no feed
    // can carry that the file itself does not show. The first paragraph (the summary when
    // none is given) is read apart from the HTML, which ammonia may have cut. A character
    // written as it is has been reported above.
    let first = rendered.first_paragraph.as_deref().unwrap_or_default();
    if let Some(c) = rendered
        .html
        .chars()
        .chain(first.chars())
        .find(|&c| !xml_char(c))
        .filter(|_| written.is_none())
    {
        let at = reference_to(&body, c).map_or(body_range.start..body_range.start, |r| {
            body_range.start + r.start..body_range.start + r.end
        });
        diags.push(
            whole
                .error(at, unwritable(c))
                .expected("text without control characters, written or as a character reference"),
        );
    }
    let summary = match summary {
        // Plain text: markup and raw HTML in a summary are dropped, never passed on.
        Some((s, span)) => {
            let plain = markdown::plain_text(&s)
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
            if let Some(c) = plain.chars().find(|&c| !xml_char(c)) {
                diags.push(src.error(span, unwritable(c)).expected(
                    "text without control characters, written or as a character reference",
                ));
            }
            plain
        }
        None => rendered.first_paragraph.clone().unwrap_or_default(),
    };
    if summary.is_empty() {
        diags.push(
            src.error(front_span.clone(), "the release has no summary and no body")
                .expected("a `summary` or a first paragraph")
                .warning(),
        );
    }
    if contacts.is_empty() {
        diags.push(
            src.error(front_span, "the release names no press contact")
                .expected("contacts = [{ name = \"...\", phone = \"...\" }]")
                .warning(),
        );
    }
    let explicit_id = id.is_some();
    let id = id.unwrap_or_else(|| {
        let day = date.with_timezone(&site.timezone).format("%Y-%m-%d");
        format!("tag:{},{day}:{slug}", site.domain())
    });
    let mut release = Release {
        source: path.clone(),
        slug,
        id,
        explicit_id,
        title,
        date,
        date_only,
        updated,
        lang,
        topics,
        contacts,
        image,
        image_alt,
        attachments,
        draft,
        withdrawn,
        mail,
        body: None,
        content_hash: String::new(),
        text_hash: super::revision::text_hash(&body),
        keys: super::Keys::default(),
    };
    release.content_hash = super::revision::content_hash(&release, &summary, &body);
    release.body = Some(std::sync::Arc::new(super::Body {
        summary,
        markdown: body,
        html: rendered.html,
    }));
    release.keys = super::Keys::of(&release);
    Some(release)
}

fn read_title(t: &mut TableReader<'_, '_>, diags: &mut Vec<Diagnostic>) -> Option<String> {
    let (title, span) =
        t.required_string("title", "title = \"Kampanj mot prostitution\"", diags)?;
    if title.chars().any(char::is_control) {
        diags.push(
            t.error(span, "the title contains a line break or control character")
                .expected("one line of text"),
        );
        return None;
    }
    if !check_writable(t, &title, span.clone(), diags) {
        return None;
    }
    let title = title.trim().to_string();
    let chars = title.chars().count();
    if chars == 0 {
        diags.push(
            t.error(span, "the title is empty")
                .expected("one line of text"),
        );
        return None;
    }
    if chars > MAX_TITLE_CHARS {
        diags.push(
            t.error(span, format!("the title is {chars} characters long"))
                .expected(format!("at most {MAX_TITLE_CHARS}")),
        );
        return None;
    }
    Some(title)
}

/// A date value written as a TOML date-time or as a string.
fn read_instant(
    t: &mut TableReader<'_, '_>,
    key: &'static str,
    site: &Site,
    diags: &mut Vec<Diagnostic>,
) -> Option<(chrono::DateTime<chrono::Utc>, bool)> {
    let value = t.raw(key)?;
    let written = match (value.get_ref().as_datetime(), value.get_ref().as_str()) {
        (Some(dt), _) => Written::from_toml(dt),
        (None, Some(s)) => Written::parse(s),
        _ => {
            diags.push(
                t.error(value.span(), format!("`{key}` is not a date"))
                    .expected(time::EXPECTED),
            );
            return None;
        }
    };
    let date_only = matches!(written, Ok(Written::Date(_)));
    match written.and_then(|w| w.resolve(site.timezone, site.publish_time)) {
        Ok(instant) => Some((instant, date_only)),
        Err(e) => {
            diags.push(
                t.error(value.span(), e.to_string())
                    .expected(time::EXPECTED),
            );
            None
        }
    }
}

/// The lift, and whether it was written as a day alone.
fn read_date(
    t: &mut TableReader<'_, '_>,
    site: &Site,
    diags: &mut Vec<Diagnostic>,
) -> Option<(chrono::DateTime<chrono::Utc>, bool)> {
    if t.raw("date").is_none() {
        diags.push(t.missing(
            "date",
            "date = 2018-10-18 or date = 2018-10-18T08:00:00+02:00",
        ));
        return None;
    }
    read_instant(t, "date", site, diags)
}

fn read_updated(
    t: &mut TableReader<'_, '_>,
    site: &Site,
    diags: &mut Vec<Diagnostic>,
) -> Option<chrono::DateTime<chrono::Utc>> {
    read_instant(t, "updated", site, diags).map(|(instant, _)| instant)
}

fn read_topics(t: &mut TableReader<'_, '_>, diags: &mut Vec<Diagnostic>) -> Vec<Topic> {
    let mut topics: Vec<Topic> = Vec::new();
    for (name, span) in t.string_list("topics", diags).unwrap_or_default() {
        if !check_writable(t, &name, span.clone(), diags) {
            continue;
        }
        let (line, col) = t.source().position(span.start);
        match Topic::parse(&name) {
            Ok(topic) => match topics.iter().find(|seen| **seen == topic) {
                // The same name twice is said once; two spellings of one topic would show
                // one of them under the other's heading.
                Some(seen) if seen.same_spelling(&topic) => {}
                Some(seen) => diags.push(
                    t.error(
                        span,
                        format!(
                            "the topics `{}` (line {}) and `{}` are one topic, `{}`, written two ways",
                            seen.name(),
                            seen.at().0,
                            topic.name(),
                            topic.slug()
                        ),
                    )
                    .expected("each topic once, written one way"),
                ),
                None => topics.push(topic.written_at(line, col)),
            },
            Err(e) => diags.push(t.error(span, e).expected(crate::topic::EXPECTED)),
        }
    }
    topics
}

fn attachment(
    t: &TableReader<'_, '_>,
    files: Option<&[BundleFile]>,
    name: &str,
    span: Range<usize>,
    diags: &mut Vec<Diagnostic>,
) -> Option<Attachment> {
    let Some(files) = files else {
        diags.push(
            t.error(span, format!("`{name}`: only a bundle has attachments"))
                .expected("a folder releases/<name>/ with index.md and the files beside it"),
        );
        return None;
    };
    let plain = !name.is_empty()
        && !name.contains(['/', '\\'])
        && !name.starts_with('.')
        && !name.chars().any(char::is_control);
    let found = files.iter().find(|f| f.name == name);
    match found {
        Some(f) if plain => {
            if f.len > super::source::MAX_ATTACHMENT_BYTES {
                diags.push(
                    t.error(span, format!("`{name}` is {} bytes", f.len))
                        .expected(format!(
                            "at most {} bytes",
                            super::source::MAX_ATTACHMENT_BYTES
                        )),
                );
                return None;
            }
            let mime = mime_guess::from_path(name)
                .first_or_octet_stream()
                .essence_str()
                .to_string();
            Some(Attachment {
                name: name.to_string(),
                path: f.path.clone(),
                len: f.len,
                mime,
            })
        }
        _ => {
            let names: Vec<_> = files.iter().map(|f| f.name.as_str()).collect();
            let hint = match schema::did_you_mean(name, &names) {
                Some(best) => format!("did you mean `{best}`?"),
                None if names.is_empty() => "a file in the bundle folder; it has none".to_string(),
                None => format!("one of: {}", names.join(", ")),
            };
            diags.push(
                t.error(span, format!("`{name}` is not a file in the bundle"))
                    .expected(hint),
            );
            None
        }
    }
}

/// Whether XML 1.0 can hold `c` (its `Char` production; a Rust `char` is never a
/// surrogate). Every string of a release ends up in a feed.
pub fn xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{FFFD}' | '\u{10000}'..)
}

/// Where in `text` a numeric character reference (`&#xFFFE;`, `&#1;`, or without its `;`
/// as HTML allows) writes `c`, as a byte range.
fn reference_to(text: &str, c: char) -> Option<Range<usize>> {
    text.match_indices("&#").find_map(|(at, _)| {
        let rest = &text[at + 2..];
        let (radix, skip) = match rest.as_bytes().first() {
            Some(b'x' | b'X') => (16, 1),
            _ => (10, 0),
        };
        let digits = rest[skip..]
            .bytes()
            .take_while(|b| char::from(*b).is_digit(radix))
            .count();
        let value = u32::from_str_radix(&rest[skip..skip + digits], radix).ok()?;
        let end = at + 2 + skip + digits;
        let end = end + usize::from(text[end..].starts_with(';'));
        (char::from_u32(value) == Some(c)).then_some(at..end)
    })
}

/// What to say of a character no feed can carry.
fn unwritable(c: char) -> String {
    format!(
        "U+{:04X} is a character which no feed can carry (XML 1.0 holds no control character but tab and line breaks, and no U+FFFE or U+FFFF)",
        u32::from(c)
    )
}

/// An error at `span` if the string value `s` holds a character no feed can carry (a TOML
/// escape like `\u0008` writes one that the file itself does not show).
fn check_writable(
    t: &TableReader<'_, '_>,
    s: &str,
    span: Range<usize>,
    diags: &mut Vec<Diagnostic>,
) -> bool {
    match s.chars().find(|&c| !xml_char(c)) {
        Some(c) => {
            diags.push(
                t.error(span, unwritable(c))
                    .expected("text without control characters"),
            );
            false
        }
        None => true,
    }
}

/// The absolute URL of a release page.
pub fn page_url(site: &Site, slug: &Slug) -> Url {
    site.base_url
        .join(&format!("releases/{slug}/"))
        .unwrap_or_else(|_| site.base_url.clone())
}
