//! Topics: names as people write them (`Människohandel`, `Miljö`), each with the ASCII
//! slug its pages live under (`topics/manniskohandel/`). Below both config (whose `[topics]`
//! table names them) and release (whose front matter lists them), like `lang`.
//!
//! Two spellings are one topic when their slugs are equal: that is how a release, the
//! media list and the config compare topics (`miljö`, `Miljö`, `MILJO` and `miljo` are all
//! `miljo`). The slug folds the name to ASCII with `deunicode` (through the `slug` crate:
//! `ö` → `o`, `ß` → `ss`, `北京` → `bei-jing`), lowercases it and turns every run of other
//! characters into one `-`. A name that already is a slug (`jamstalldhet`, as topics were
//! written before names) is its own slug, so existing topic URLs stay where they were.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};

/// The longest topic name, in characters: a heading, not a sentence.
pub const MAX_NAME_CHARS: usize = 100;

/// The longest slug, in bytes (a name in a script that folds to long words can exceed it).
pub const MAX_SLUG_LEN: usize = 100;

/// A topic: its name as written (trimmed, inner white space made one space) and its slug.
/// Equality, order and hash are the slug's: two spellings of one topic are equal.
#[derive(Debug, Clone)]
pub struct Topic {
    name: String,
    slug: String,
    /// Where it was written (line, column; 1-based), `(0, 0)` when not from a file: kept so
    /// that `check` can point at both of two spellings that fold to one slug.
    at: (usize, usize),
}

impl Topic {
    /// A topic from its name; otherwise what is wrong, in a sentence.
    pub fn parse(s: &str) -> Result<Topic, String> {
        let name = s.split_whitespace().collect::<Vec<_>>().join(" ");
        if name.is_empty() {
            return Err("an empty topic name".into());
        }
        // Names reach every feed: nothing XML 1.0 cannot carry.
        let unwritable = |c: &char| c.is_control() || matches!(c, '\u{FFFE}' | '\u{FFFF}');
        if let Some(c) = name.chars().find(unwritable) {
            return Err(format!(
                "the topic name `{}` holds the character U+{:04X}, which no feed can carry",
                name.escape_debug(),
                c as u32
            ));
        }
        if name.chars().count() > MAX_NAME_CHARS {
            return Err(format!(
                "the topic name `{name}` is longer than {MAX_NAME_CHARS} characters"
            ));
        }
        let slug = if is_slug(&name) {
            name.clone()
        } else {
            slug::slugify(&name)
        };
        if slug.is_empty() {
            return Err(format!(
                "the topic name `{name}` has no letter or digit to make its address of"
            ));
        }
        if slug.len() > MAX_SLUG_LEN {
            return Err(format!(
                "the topic name `{name}` makes an address longer than {MAX_SLUG_LEN} characters"
            ));
        }
        Ok(Topic {
            name,
            slug,
            at: (0, 0),
        })
    }

    /// The same topic, remembered as written at `line`, `col` of its file.
    pub fn written_at(mut self, line: usize, col: usize) -> Topic {
        self.at = (line, col);
        self
    }

    /// The name as written, for people: headings, links, feed categories, mail.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The URL slug: `topics/<slug>/`. Also the key topics are compared by.
    pub fn slug(&self) -> &str {
        &self.slug
    }

    /// Where it was written (line, column), `(0, 0)` if not from a file.
    pub fn at(&self) -> (usize, usize) {
        self.at
    }

    /// The page of the topic under the site root.
    pub fn path(&self) -> String {
        format!("topics/{}/", self.slug)
    }

    /// Whether both are written the same way (equal topics may be spelt differently).
    pub fn same_spelling(&self, other: &Topic) -> bool {
        self.name == other.name
    }
}

/// What a topic name is expected to look like, for diagnostics.
pub const EXPECTED: &str = "a name like Människohandel or Miljö, with a letter or digit";

impl PartialEq for Topic {
    fn eq(&self, other: &Self) -> bool {
        self.slug == other.slug
    }
}

impl Eq for Topic {}

impl PartialOrd for Topic {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Topic {
    fn cmp(&self, other: &Self) -> Ordering {
        self.slug.cmp(&other.slug)
    }
}

impl Hash for Topic {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.slug.hash(state);
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

/// Lowercase ASCII letters, digits and inner hyphens: what topics had to be before names.
fn is_slug(s: &str) -> bool {
    !s.starts_with('-')
        && !s.ends_with('-')
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// The name shown for one topic among several spellings of it: the most common, and of
/// those the first given (callers list releases newest first, so the newest spelling).
pub fn usual_spelling<'a>(spellings: impl IntoIterator<Item = &'a Topic>) -> Option<&'a Topic> {
    let mut counts: Vec<(&Topic, usize)> = Vec::new();
    for t in spellings {
        match counts.iter_mut().find(|(s, _)| s.same_spelling(t)) {
            Some((_, n)) => *n += 1,
            None => counts.push((t, 1)),
        }
    }
    let best = counts.iter().map(|(_, n)| *n).max()?;
    counts.into_iter().find(|(_, n)| *n == best).map(|(t, _)| t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slug(s: &str) -> String {
        Topic::parse(s).unwrap().slug().to_string()
    }

    #[test]
    fn names_fold_to_the_slugs_topics_had_before() {
        assert_eq!(slug("Människohandel"), "manniskohandel");
        assert_eq!(slug("Jämställdhet"), "jamstalldhet");
        assert_eq!(slug("miljö"), "miljo");
        assert_eq!(slug("  Mäns våld\tmot kvinnor "), "mans-vald-mot-kvinnor");
        assert_eq!(slug("Straße"), "strasse");
        assert_eq!(slug("Arbete & hälsa"), "arbete-halsa");
        // Written as a slug, it stays that slug, even where folding would change it.
        assert_eq!(slug("a--b"), "a--b");
        assert_eq!(slug("jamstalldhet"), "jamstalldhet");
    }

    #[test]
    fn spellings_of_one_topic_are_equal() {
        let miljo = Topic::parse("Miljö").unwrap();
        for other in ["miljö", "MILJÖ", "MILJO", "miljo", " Miljö "] {
            assert_eq!(Topic::parse(other).unwrap(), miljo, "{other}");
        }
        assert_ne!(Topic::parse("Milj").unwrap(), miljo);
        assert_eq!(miljo.name(), "Miljö");
        assert_eq!(miljo.path(), "topics/miljo/");
    }

    #[test]
    fn names_without_a_letter_or_digit_and_lines_are_refused() {
        assert!(Topic::parse("").is_err());
        assert!(Topic::parse("  ").is_err());
        assert!(
            Topic::parse("!!!")
                .unwrap_err()
                .contains("no letter or digit")
        );
        assert!(Topic::parse("a\u{7}b").unwrap_err().contains("U+0007"));
        assert!(Topic::parse("a\u{FFFF}").unwrap_err().contains("U+FFFF"));
        assert!(Topic::parse(&"x".repeat(101)).is_err());
    }

    #[test]
    fn the_usual_spelling_is_the_most_common_then_the_first() {
        let t = |s: &str| Topic::parse(s).unwrap();
        let (a, b, c) = (t("Miljö"), t("miljo"), t("miljo"));
        assert_eq!(usual_spelling([&a, &b, &c]).unwrap().name(), "miljo");
        assert_eq!(usual_spelling([&a, &b]).unwrap().name(), "Miljö");
        assert!(usual_spelling([]).is_none());
    }
}
