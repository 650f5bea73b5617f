//! A press release: the validated, typed form of one file in `releases/`. Everything here
//! is pure: the scanner (`source`) hands in text and the bundle's file list, the parser
//! (`frontmatter`) returns a `Release` or the problems that stop it.

pub mod frontmatter;
pub mod identity;
pub mod markdown;
pub mod revision;
pub mod source;

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, Utc};

pub use crate::contact::Contact;
pub use crate::lang::LangTag;
pub use crate::topic::Topic;
pub use frontmatter::parse;
pub use source::{SourceFile, scan};

/// The URL-safe name of a release: its page lives at `releases/<slug>/`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Slug(String);

impl Slug {
    /// Lowercase ASCII letters, digits and inner hyphens, at most 100 characters.
    pub fn parse(s: &str) -> Result<Slug, String> {
        if is_url_name(s, 100) {
            Ok(Slug(s.to_string()))
        } else {
            Err(format!("`{s}` is not a URL-safe name"))
        }
    }

    /// The slug a file name gives: `<name>` without a leading `YYYY-MM-DD-`.
    pub fn from_file_name(name: &str) -> &str {
        let b = name.as_bytes();
        let dated = b.len() > 11
            && b[..4].iter().all(u8::is_ascii_digit)
            && b[4] == b'-'
            && b[5..7].iter().all(u8::is_ascii_digit)
            && b[7] == b'-'
            && b[8..10].iter().all(u8::is_ascii_digit)
            && b[10] == b'-';
        if dated { &name[11..] } else { name }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Slug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn is_url_name(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && !s.starts_with('-')
        && !s.ends_with('-')
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// A file published beside the release page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// The file name, also its name under the release's URL.
    pub name: String,
    pub path: PathBuf,
    pub len: u64,
    pub mime: String,
}

/// One release, fully validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    /// The file it came from, as the user named it (for messages).
    pub source: PathBuf,
    pub slug: Slug,
    /// A stable id: a `tag:` URI unless set in the front matter; without one, the ledger
    /// keeps the id the release was first seen with (`identity`).
    pub id: String,
    /// The id is the front matter's own.
    pub explicit_id: bool,
    pub title: String,
    /// The embargo lift.
    pub date: DateTime<Utc>,
    /// The date was written as a day alone (it lifts at the site's `publish_time`): pages
    /// and mail show the day and no invented time.
    pub date_only: bool,
    /// Set when the release was corrected after publication.
    pub updated: Option<DateTime<Utc>>,
    pub lang: LangTag,
    pub topics: Vec<Topic>,
    pub contacts: Vec<Contact>,
    pub image: Option<Attachment>,
    pub image_alt: Option<String>,
    pub attachments: Vec<Attachment>,
    pub draft: bool,
    pub withdrawn: Option<String>,
    pub mail: bool,
    /// The text. `None` once a long-running builder has let go of it (see `Body`).
    pub body: Option<Arc<Body>>,
    /// A hash of everything readers see (`revision::content_hash`), computed once.
    pub content_hash: String,
    /// A hash of the body as written: a renamed file with the same text is the same
    /// release (`identity`).
    pub text_hash: String,
    /// Cached identities of what pages and lists show of it (see `Keys::of`).
    pub keys: Keys,
}

/// The text of a release, by far the largest part of it. A long-running `Builder` keeps it
/// only for releases it may have to render soon (not yet public, or shown in a feed) and
/// reads the file again for the others when it needs it (a page to render again, a mail).
#[derive(Debug, PartialEq, Eq)]
pub struct Body {
    /// Plain text: from the front matter, or the body's first paragraph.
    pub summary: String,
    /// As written (Markdown).
    pub markdown: String,
    /// Sanitised HTML with absolute links.
    pub html: String,
}

/// Hashes that tell the incremental builder whether output showing a release must be
/// rendered again. Computed once per parse (and per correction), not per listing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Keys {
    pub page: u64,
    pub list: u64,
}

impl Keys {
    pub fn of(r: &Release) -> Keys {
        use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
        let hasher = BuildHasherDefault::<DefaultHasher>::default();
        // Topic names as written: the content hash leaves out a change of case only
        // (`miljo` to `Miljo`), which the page and the feeds still show.
        let topics: Vec<&str> = r.topics.iter().map(Topic::name).collect();
        Keys {
            page: hasher.hash_one((
                &r.content_hash,
                r.updated,
                &r.id,
                &r.slug,
                topics,
                r.date_only,
            )),
            list: hasher.hash_one((&r.title, r.date, r.date_only, &r.lang, &r.slug)),
        }
    }
}

impl Release {
    /// The page's path under the site root: `releases/<slug>/`.
    pub fn path(&self) -> String {
        format!("releases/{}/", self.slug)
    }

    /// The last change visible to readers: the correction if any, else the lift.
    pub fn last_modified(&self) -> DateTime<Utc> {
        self.updated.map_or(self.date, |u| u.max(self.date))
    }

    /// Identifies the rendered page: changes when the content or `updated` does.
    pub fn page_key(&self) -> u64 {
        self.keys.page
    }

    /// Identifies the release's line in a list of links: title, date, language and slug.
    pub fn list_key(&self) -> u64 {
        self.keys.list
    }

    /// Sets the correction instant, keeping the page key in step.
    pub fn set_updated(&mut self, updated: Option<DateTime<Utc>>) {
        self.updated = updated;
        self.keys = Keys::of(self);
    }

    /// The body as sanitised HTML, if it is in memory.
    pub fn body_html(&self) -> Option<&str> {
        self.body.as_deref().map(|b| b.html.as_str())
    }

    /// The summary, if the text is in memory.
    pub fn summary(&self) -> Option<&str> {
        self.body.as_deref().map(|b| b.summary.as_str())
    }

    /// The same release without its text in memory.
    pub fn without_body(&self) -> Release {
        Release {
            body: None,
            ..self.clone()
        }
    }

    /// Every file the release publishes beside its page (image first, no repeats).
    pub fn files(&self) -> impl Iterator<Item = &Attachment> {
        let image = self.image.iter();
        image.chain(
            self.attachments
                .iter()
                .filter(move |a| self.image.as_ref().is_none_or(|i| i.name != a.name)),
        )
    }
}

/// `check`'s word on topics written differently in different releases but folding to one
/// slug (`Miljö` in one, `miljo` in another): readers would see one topic under two names,
/// so each spelling other than the usual one is an error at its line, naming where the
/// usual one is written. A topic the config's `[topics]` names is exempt: its name there
/// is the one shown, however releases spell it. Releases are taken in file-name order.
pub fn topic_spellings<'a>(
    releases: impl IntoIterator<Item = &'a Release>,
    named: &crate::config::Topics,
) -> Vec<crate::diagnostic::Diagnostic> {
    use crate::diagnostic::{Diagnostic, Severity};
    let mut releases: Vec<&Release> = releases.into_iter().collect();
    releases.sort_by(|a, b| a.source.cmp(&b.source));
    let mut by_slug: std::collections::BTreeMap<&str, Vec<(&Release, &Topic)>> = Default::default();
    for r in releases {
        for t in r.topics.iter().filter(|t| named.get(t).is_none()) {
            by_slug.entry(t.slug()).or_default().push((r, t));
        }
    }
    let mut diags = Vec::new();
    for written in by_slug.values() {
        let Some(usual) = crate::topic::usual_spelling(written.iter().map(|(_, t)| *t)) else {
            continue;
        };
        let (home, _) = written
            .iter()
            .find(|(_, t)| t.same_spelling(usual))
            .copied()
            .unwrap_or(written[0]);
        for (r, t) in written.iter().filter(|(_, t)| !t.same_spelling(usual)) {
            let (line, col) = usual.at();
            diags.push(Diagnostic {
                path: r.source.clone(),
                line: t.at().0,
                col: t.at().1,
                severity: Severity::Error,
                message: format!(
                    "the topic `{}` is written `{}` in {}:{line}:{col}: one topic, `{}`, under two names",
                    t.name(),
                    usual.name(),
                    home.source.display(),
                    t.slug()
                ),
                expected: Some(format!(
                    "`{}` as elsewhere, or the name to show in the config: [topics.\"{}\"]",
                    usual.name(),
                    usual.name()
                )),
            });
        }
    }
    diags
}

/// The stand-in for a published release whose file was deleted: withdrawn, with the slug,
/// title, date and language the ledger remembers and nothing else, so its page says it was
/// withdrawn and no feed, list or mail shows it. `None` if what was remembered no longer
/// parses (a slug rule that changed).
pub fn deleted(
    id: &str,
    notice: &revision::Notice,
    last_hash: &str,
    config: &crate::config::Config,
) -> Option<Release> {
    // A language recorded before tags were checked against the registry (`swedish`)
    // still leaves a notice page, in the site's language.
    let lang = LangTag::parse(&notice.lang).unwrap_or_else(|_| config.site.lang.clone());
    let reason = if lang.key().starts_with("sv") {
        "Pressmeddelandet har tagits bort."
    } else {
        "This release has been removed."
    };
    let mut r = Release {
        source: config
            .paths
            .releases
            .join(format!("{} (deleted)", notice.slug)),
        slug: Slug::parse(&notice.slug).ok()?,
        id: id.to_string(),
        explicit_id: true,
        title: notice.title.clone(),
        date: notice.date,
        // The ledger keeps the instant, not how it was written.
        date_only: false,
        updated: None,
        lang,
        topics: Vec::new(),
        contacts: Vec::new(),
        image: None,
        image_alt: None,
        attachments: Vec::new(),
        draft: false,
        withdrawn: Some(reason.to_string()),
        mail: false,
        body: Some(Arc::new(Body {
            summary: String::new(),
            markdown: String::new(),
            html: String::new(),
        })),
        content_hash: format!("deleted:{last_hash}"),
        text_hash: String::new(),
        keys: Keys::default(),
    };
    r.keys = Keys::of(&r);
    Some(r)
}

/// A release for unit tests: `releases/<slug>.md`, public from `date`, in Swedish.
#[cfg(test)]
pub(crate) fn fixture(slug: &str, date: &str) -> Release {
    Release {
        source: format!("releases/{slug}.md").into(),
        slug: Slug::parse(slug).unwrap(),
        id: format!("tag:example.org,2018:{slug}"),
        explicit_id: false,
        title: slug.to_uppercase(),
        date: date.parse().unwrap(),
        date_only: false,
        updated: None,
        lang: LangTag::parse("sv").unwrap(),
        topics: vec![],
        contacts: vec![],
        image: None,
        image_alt: None,
        attachments: vec![],
        draft: false,
        withdrawn: None,
        mail: true,
        body: Some(std::sync::Arc::new(Body {
            summary: String::new(),
            markdown: String::new(),
            html: String::new(),
        })),
        content_hash: String::new(),
        text_hash: String::new(),
        keys: Default::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_drop_the_leading_date() {
        assert_eq!(Slug::from_file_name("2018-10-18-du-avgor"), "du-avgor");
        assert_eq!(Slug::from_file_name("du-avgor"), "du-avgor");
        assert_eq!(Slug::from_file_name("2018-10-18"), "2018-10-18");
        assert!(Slug::parse("Du avgör").is_err());
        assert!(Slug::parse("-x").is_err());
    }

    #[test]
    fn a_deleted_release_recorded_in_a_language_no_longer_accepted_keeps_its_notice() {
        let config = crate::config::Config::defaults(std::path::Path::new("/srv/pressroom"));
        let notice = revision::Notice {
            slug: "du-avgor".into(),
            title: "Du avgör".into(),
            date: "2018-10-17T22:00:00Z".parse().unwrap(),
            lang: "swedish".into(),
        };
        let r =
            deleted("tag:example.org,2018:du-avgor", &notice, "h", &config).expect("a notice page");
        assert_eq!(r.lang, config.site.lang);
        assert!(r.withdrawn.is_some());
    }
}
