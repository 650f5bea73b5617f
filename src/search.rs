//! Search over the public releases: the index a build writes beside the site (the releases
//! public at the build's instant, with their words folded), and the query run against it.
//! Pure: the build hands in releases and gets bytes back, the HTTP server hands in the bytes
//! it read, a query and the instant of the request, and gets a page of results.
//!
//! The index holds exactly what the build published, so search shows what the served site
//! shows: a release enters it at the build of its minute and leaves it with the build that
//! withdraws, postpones or deletes it. It is a hidden file (`INDEX`), which `http::resolve`
//! never serves. A query is a linear scan over the folded text in memory: at 10,000
//! releases that takes a few milliseconds (`benches/search.rs`), so no index crate.

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::release::Release;

/// The index's file under the site folder. Hidden: never served to readers.
pub const INDEX: &str = ".search-index.json";

/// What a query may be: longer ones are cut (a search box, not an essay), so one request
/// costs at most `MAX_WORDS` scans.
pub const MAX_QUERY_CHARS: usize = 200;
pub const MAX_WORDS: usize = 10;
/// Results per page (`?page=`).
pub const PER_PAGE: usize = 20;
const VERSION: u32 = 1;

/// One public release as search knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub title: String,
    pub url: String,
    pub lang: String,
    pub date: DateTime<Utc>,
    /// The date was written as a day alone: shown without a time of day.
    #[serde(default)]
    pub date_only: bool,
    /// The lead, plain text, as the release's page shows it.
    pub summary: String,
    /// The title folded (`fold`): a query word found here ranks the release first.
    pub title_key: String,
    /// Every word of the title, lead, topics and body, folded, each once, separated by
    /// spaces.
    pub text_key: String,
}

impl Entry {
    /// The entry of a public release. Without its text in memory (`body` let go of, and
    /// not readable again), only its title, topics and the names of its topics are
    /// searchable until the next build that reads it.
    pub fn of(release: &Release, config: &Config) -> Entry {
        let mut words = Words::default();
        words.add(&release.title);
        for topic in &release.topics {
            words.add(topic.name());
            words.add(config.topics.name(topic));
        }
        let summary = release.summary().unwrap_or_default().to_string();
        words.add(&summary);
        if let Some(body) = &release.body {
            words.add(&crate::release::markdown::plain_text(&body.markdown));
        }
        Entry {
            title: release.title.clone(),
            url: config.url(&release.path()).to_string(),
            lang: release.lang.as_str().to_string(),
            date: release.date,
            date_only: release.date_only,
            summary,
            title_key: folded(&release.title),
            text_key: words.text,
        }
    }
}

/// Distinct folded words, in the order first seen.
#[derive(Default)]
struct Words {
    seen: HashSet<String>,
    text: String,
}

impl Words {
    fn add(&mut self, text: &str) {
        for word in folded(text).split(' ').filter(|w| !w.is_empty()) {
            if self.seen.insert(word.to_string()) {
                if !self.text.is_empty() {
                    self.text.push(' ');
                }
                self.text.push_str(word);
            }
        }
    }
}

/// Text as search compares it: lower case, diacritics stripped (`Människohandel` →
/// `manniskohandel`, `ß` → `ss`), every run of characters that are neither letters nor
/// digits one space.
pub fn folded(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut space = true;
    let mut push = |c: char, out: &mut String| {
        if c.is_alphanumeric() {
            out.extend(c.to_lowercase());
            space = false;
        } else if !space {
            out.push(' ');
            space = true;
        }
    };
    for c in text.chars() {
        if c.is_ascii() {
            push(c, &mut out);
        } else if c.is_alphanumeric() {
            // Transliterated to ASCII where a Latin reader would (å → a, æ → ae); a
            // character with no such form is kept as it is.
            match deunicode::deunicode_char(c) {
                Some(ascii) if !ascii.is_empty() => ascii.chars().for_each(|a| push(a, &mut out)),
                _ => push(c, &mut out),
            }
        } else {
            push(' ', &mut out);
        }
    }
    if out.ends_with(' ') {
        out.pop();
    }
    out
}

/// A query as typed, bounded and folded into the words that must all match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// What the reader typed, cut to `MAX_QUERY_CHARS`: shown back in the search box.
    pub text: String,
    pub words: Vec<String>,
}

impl Query {
    pub fn parse(typed: &str) -> Query {
        let text: String = typed.chars().take(MAX_QUERY_CHARS).collect();
        let mut words: Vec<String> = Vec::new();
        for word in folded(&text).split(' ').filter(|w| !w.is_empty()) {
            if words.len() == MAX_WORDS {
                break;
            }
            if !words.iter().any(|w| w == word) {
                words.push(word.to_string());
            }
        }
        Query { text, words }
    }
}

/// The releases one build published, newest first.
#[derive(Debug, Default)]
pub struct Index {
    pub entries: Vec<Arc<Entry>>,
}

/// The index as written.
#[derive(Serialize)]
struct Written<'a> {
    version: u32,
    entries: Vec<&'a Entry>,
}

/// The index as read.
#[derive(Deserialize)]
struct Read {
    version: u32,
    entries: Vec<Entry>,
}

/// One page of results.
#[derive(Debug)]
pub struct Found {
    pub total: usize,
    /// 1-based, within `1..=pages`.
    pub page: usize,
    pub pages: usize,
    pub entries: Vec<Arc<Entry>>,
}

impl Index {
    /// The index of these entries, newest first (then by URL, so a build is reproducible).
    pub fn new(mut entries: Vec<Arc<Entry>>) -> Index {
        entries.sort_by(|a, b| b.date.cmp(&a.date).then_with(|| a.url.cmp(&b.url)));
        Index { entries }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let written = Written {
            version: VERSION,
            entries: self.entries.iter().map(|e| &**e).collect(),
        };
        serde_json::to_vec(&written).unwrap_or_default()
    }

    /// The index in `bytes`; one that does not read (a file of another version) is empty.
    pub fn from_bytes(bytes: &[u8]) -> Index {
        match serde_json::from_slice::<Read>(bytes) {
            Ok(read) if read.version == VERSION => Index {
                entries: read.entries.into_iter().map(Arc::new).collect(),
            },
            _ => Index::default(),
        }
    }

    /// Page `page` of the releases that hold every word of `query` and are public at
    /// `now`: those with the most query words in their title first, then the newest. The
    /// index holds only what its build published; `now` also leaves out anything dated
    /// later, should a clock ever disagree. An empty query finds nothing.
    pub fn search(&self, query: &Query, now: DateTime<Utc>, page: usize) -> Found {
        let mut hits: Vec<(usize, &Arc<Entry>)> = Vec::new();
        if !query.words.is_empty() {
            let finders: Vec<memchr::memmem::Finder<'_>> = query
                .words
                .iter()
                .map(|w| memchr::memmem::Finder::new(w.as_bytes()))
                .collect();
            for entry in &self.entries {
                if entry.date > now {
                    continue;
                }
                let text = entry.text_key.as_bytes();
                if finders.iter().all(|f| f.find(text).is_some()) {
                    let title = entry.title_key.as_bytes();
                    let in_title = finders.iter().filter(|f| f.find(title).is_some()).count();
                    hits.push((in_title, entry));
                }
            }
        }
        // Stable: equal title hits stay newest first.
        hits.sort_by_key(|(in_title, _)| std::cmp::Reverse(*in_title));
        let total = hits.len();
        let pages = total.div_ceil(PER_PAGE).max(1);
        let page = page.clamp(1, pages);
        let entries = hits
            .into_iter()
            .skip((page - 1) * PER_PAGE)
            .take(PER_PAGE)
            .map(|(_, e)| Arc::clone(e))
            .collect();
        Found {
            total,
            page,
            pages,
            entries,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(title: &str, text: &str, date: &str) -> Arc<Entry> {
        let mut words = Words::default();
        words.add(title);
        words.add(text);
        Arc::new(Entry {
            title: title.into(),
            url: format!("https://example.org/{}/", folded(title).replace(' ', "-")),
            lang: "sv".into(),
            date: date.parse().expect("date"),
            date_only: false,
            summary: String::new(),
            title_key: folded(title),
            text_key: words.text,
        })
    }

    fn titles(found: &Found) -> Vec<&str> {
        found.entries.iter().map(|e| e.title.as_str()).collect()
    }

    fn now() -> DateTime<Utc> {
        "2030-01-01T00:00:00Z".parse().expect("now")
    }

    #[test]
    fn swedish_letters_and_case_fold_away() {
        assert_eq!(folded("Människohandel"), "manniskohandel");
        assert_eq!(folded("MÄNNISKOHANDEL"), "manniskohandel");
        assert_eq!(
            folded("Jämställdhet – Ö/å, Straße!"),
            "jamstalldhet o a strasse"
        );
        assert_eq!(folded("  \"Du avgör\"  "), "du avgor");
    }

    #[test]
    fn every_word_must_match_and_title_hits_rank_first_then_newest() {
        let index = Index::new(vec![
            entry(
                "Nytt om skolan",
                "människohandel nämns här",
                "2020-01-03T00:00:00Z",
            ),
            entry(
                "Människohandel i Europa",
                "en rapport",
                "2020-01-01T00:00:00Z",
            ),
            entry("Äldre om Människohandel", "rapport", "2019-01-01T00:00:00Z"),
            entry("Väder", "sol", "2020-01-04T00:00:00Z"),
        ]);
        let q = Query::parse("manniskohandel");
        assert_eq!(
            titles(&index.search(&q, now(), 1)),
            [
                "Människohandel i Europa",
                "Äldre om Människohandel",
                "Nytt om skolan"
            ]
        );
        let q = Query::parse("MÄNNISKOHANDEL rapport");
        assert_eq!(
            titles(&index.search(&q, now(), 1)),
            ["Människohandel i Europa", "Äldre om Människohandel"]
        );
        // A part of a Swedish compound finds it.
        assert_eq!(
            titles(&index.search(&Query::parse("handel skolan"), now(), 1)),
            ["Nytt om skolan"]
        );
        assert!(
            index
                .search(&Query::parse("   "), now(), 1)
                .entries
                .is_empty()
        );
        assert!(
            index
                .search(&Query::parse("sol regn"), now(), 1)
                .entries
                .is_empty()
        );
    }

    #[test]
    fn nothing_dated_after_the_request_is_found() {
        let index = Index::new(vec![entry("Hemlig", "text", "2030-01-01T00:00:01Z")]);
        assert!(
            index
                .search(&Query::parse("hemlig"), now(), 1)
                .entries
                .is_empty()
        );
        let later = "2030-01-01T00:00:01Z".parse().expect("later");
        assert_eq!(index.search(&Query::parse("hemlig"), later, 1).total, 1);
    }

    #[test]
    fn queries_are_bounded_and_results_paged() {
        let long = "ord ".repeat(100) + &"a".repeat(300);
        let q = Query::parse(&long);
        assert_eq!(q.text.chars().count(), MAX_QUERY_CHARS);
        assert_eq!(q.words, ["ord"]);
        let many: String = (0..30).map(|i| format!("w{i} ")).collect();
        assert_eq!(Query::parse(&many).words.len(), MAX_WORDS);

        let index = Index::new(
            (0..45)
                .map(|i| {
                    entry(
                        &format!("Nyhet {i}"),
                        "text",
                        &format!("2020-01-01T00:{:02}:00Z", i),
                    )
                })
                .collect(),
        );
        let q = Query::parse("nyhet");
        let first = index.search(&q, now(), 1);
        assert_eq!((first.total, first.pages, first.entries.len()), (45, 3, 20));
        assert_eq!(first.entries[0].title, "Nyhet 44");
        let last = index.search(&q, now(), 99);
        assert_eq!((last.page, last.entries.len()), (3, 5));
        assert_eq!(last.entries[4].title, "Nyhet 0");
    }

    #[test]
    fn an_index_reads_back_and_a_foreign_file_is_empty() {
        let index = Index::new(vec![entry("Ett", "två", "2020-01-01T00:00:00Z")]);
        let back = Index::from_bytes(&index.to_bytes());
        assert_eq!(back.entries, index.entries);
        assert!(
            Index::from_bytes(b"{\"version\":0,\"entries\":[]}")
                .entries
                .is_empty()
        );
        assert!(Index::from_bytes(b"not json").entries.is_empty());
    }
}
