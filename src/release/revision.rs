//! Corrections: a release edited after it became public gets an `updated` instant, the
//! moment the edit was first seen. Only a change readers can see counts (a `touch` or a
//! copy does not), so the content is hashed. Pure: the ledger stores what this decides.

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use super::Release;

/// What the ledger remembers of a published release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revision {
    pub hash: String,
    /// When it was first seen public.
    pub first_seen: DateTime<Utc>,
    /// When a changed version was last first seen, if ever.
    pub updated: Option<DateTime<Utc>>,
}

/// A hash of everything a reader sees of a release, whose text is `summary` and `markdown`.
pub fn content_hash(r: &Release, summary: &str, markdown: &str) -> String {
    let mut h = Sha256::new();
    let mut field = |s: &str| {
        h.update((s.len() as u64).to_le_bytes());
        h.update(s.as_bytes());
    };
    field(&r.title);
    field(&r.date.to_rfc3339());
    field(r.lang.as_str());
    field(summary);
    field(markdown);
    field(r.image_alt.as_deref().unwrap_or(""));
    field(r.withdrawn.as_deref().unwrap_or(""));
    for t in &r.topics {
        field(t.slug());
        // A name that differs from its slug in more than case is part of what readers see;
        // topics written as slugs (all of them before names) hash as they always did.
        if !t.name().eq_ignore_ascii_case(t.slug()) {
            field(t.name());
        }
    }
    for c in &r.contacts {
        for part in [
            Some(&c.name),
            c.role.as_ref(),
            c.phone.as_ref(),
            c.email.as_ref(),
        ] {
            field(part.map_or("", |s| s.as_str()));
        }
    }
    for a in r.files() {
        field(&a.name);
        field(&a.len.to_string());
    }
    hex(&h.finalize())
}

/// A hash of a release's body as written; empty for a body with no text (which says
/// nothing of which release it is).
pub fn text_hash(markdown: &str) -> String {
    if markdown.trim().is_empty() {
        return String::new();
    }
    hex(&Sha256::digest(markdown.as_bytes()))
}

fn hex(digest: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(64);
    for b in digest {
        out.push(HEX[usize::from(b >> 4)] as char);
        out.push(HEX[usize::from(b & 15)] as char);
    }
    out
}

/// Seeing `hash` of a public release at `at`, given what was recorded: the record to keep
/// and the `updated` instant readers should see.
pub fn observe(
    record: Option<&Revision>,
    hash: &str,
    at: DateTime<Utc>,
) -> (Revision, Option<DateTime<Utc>>) {
    match record {
        None => {
            let first = Revision {
                hash: hash.to_string(),
                first_seen: at,
                updated: None,
            };
            (first, None)
        }
        Some(r) if r.hash == hash => (r.clone(), r.updated.filter(|u| *u <= at)),
        Some(r) => {
            let edited = Revision {
                hash: hash.to_string(),
                first_seen: r.first_seen,
                updated: Some(at),
            };
            (edited, Some(at))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn only_a_changed_hash_moves_updated() {
        let (first, shown) = observe(None, "a", t("2018-10-18T00:00:00Z"));
        assert_eq!(shown, None);
        let (same, shown) = observe(Some(&first), "a", t("2018-10-19T00:00:00Z"));
        assert_eq!((same.clone(), shown), (first.clone(), None));
        let (edited, shown) = observe(Some(&same), "b", t("2018-10-20T09:30:00Z"));
        assert_eq!(shown, Some(t("2018-10-20T09:30:00Z")));
        assert_eq!(edited.first_seen, first.first_seen);
        let (_, shown) = observe(Some(&edited), "b", t("2018-10-21T00:00:00Z"));
        assert_eq!(shown, Some(t("2018-10-20T09:30:00Z")));
    }
}

/// What is remembered of a published release for its withdrawal notice (the page that
/// stays when its file is deleted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub slug: String,
    pub title: String,
    pub date: chrono::DateTime<chrono::Utc>,
    pub lang: String,
}
