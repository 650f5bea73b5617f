//! Language tags (BCP 47: `sv`, `en-GB`), checked once where they are read: the site's
//! language in the config, a release's, a journalist's in the media list. Below both config
//! and release, which each name one.

use std::fmt;

/// A BCP 47 language tag, as written (`sv`, `en-GB`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct LangTag(String);

impl LangTag {
    pub fn parse(s: &str) -> Result<LangTag, String> {
        oxilangtag::LanguageTag::parse(s.to_string())
            .map(|t| LangTag(t.into_inner()))
            .map_err(|e| e.to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Lowercase form used in paths (`lang/sv/`) and comparisons.
    pub fn key(&self) -> String {
        self.0.to_lowercase()
    }

    /// Whether a recipient who reads `self` reads a release in `other` (`en` reads `en-GB`).
    pub fn covers(&self, other: &LangTag) -> bool {
        let (me, them) = (self.key(), other.key());
        them == me || them.starts_with(&format!("{me}-"))
    }
}

impl fmt::Display for LangTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn languages_cover_their_regions() {
        let en = LangTag::parse("en").unwrap();
        assert!(en.covers(&LangTag::parse("en-GB").unwrap()));
        assert!(!en.covers(&LangTag::parse("sv").unwrap()));
        assert!(LangTag::parse("not a tag").is_err());
    }
}
