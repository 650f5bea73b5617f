//! Language tags (BCP 47: `sv`, `en-GB`), checked once where they are read: the site's
//! language in the config, a release's, a journalist's in the media list. Below both config
//! and release, which each name one.
//!
//! A tag must be well-formed and its language must be in the IANA Language Subtag Registry
//! (`swedish` and `dk` are not languages; `se`, Northern Sami, is). The registry is the
//! `language-tags` crate's copy: every ISO 639-1, 639-2/T and 639-3 code, the 639-5
//! collections and the registry's own entries (`mis`, `und`, `qaa`–`qtz`). Where each
//! language is at home comes from CLDR's likely subtags (`icu_locale`), for `advice`.

use std::fmt;

use icu_locale::{LanguageIdentifier, LocaleExpander};

/// A BCP 47 language tag, as written (`sv`, `en-GB`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct LangTag(String);

impl LangTag {
    /// A well-formed tag whose language is in the registry; otherwise what is wrong, in a
    /// sentence.
    pub fn parse(s: &str) -> Result<LangTag, String> {
        let tag = language_tags::LanguageTag::parse(s).map_err(|e| e.to_string())?;
        if tag.validate() == Err(language_tags::ValidationError::PrimaryLanguageNotInRegistry) {
            let language = tag.primary_language();
            let what = if language.eq_ignore_ascii_case(s) {
                "not a language in the IANA Language Subtag Registry".to_string()
            } else {
                format!("`{language}` is not a language in the IANA Language Subtag Registry")
            };
            // `dk`, `gr`, `jp`: the country, written where its language belongs.
            let country = language.to_ascii_uppercase();
            let private_use = country == "AA"
                || country == "ZZ"
                || ("QM".."QZ~").contains(&country.as_str())
                || country.starts_with('X');
            let is_country = language.len() == 2
                && !private_use
                && language_tags::LanguageTag::parse(&format!("und-{country}"))
                    .is_ok_and(|t| t.is_valid());
            return Err(if is_country {
                format!("{what}: {country} is a country code")
            } else {
                what
            });
        }
        // Only the language is held to the registry: a region or script it does not list
        // (`en-UK`) still names the language, and targeting only compares languages.
        Ok(LangTag(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Lowercase form used in paths (`lang/sv/`) and comparisons.
    pub fn key(&self) -> String {
        self.0.to_lowercase()
    }

    /// The language alone, lowercase (`sv` of `sv-SE`).
    pub fn language(&self) -> String {
        self.key().split('-').next().unwrap_or_default().to_string()
    }

    /// Whether a recipient who reads `self` reads a release in `other` (`en` reads `en-GB`).
    pub fn covers(&self, other: &LangTag) -> bool {
        let (me, them) = (self.key(), other.key());
        them == me || them.starts_with(&format!("{me}-"))
    }

    /// Whether this tag is probably a country code written where a language belongs, on a
    /// site in `site`'s language: the rule, in one sentence, is that a bare two-letter
    /// language code, in capitals, is the country where the site's language is at home
    /// while the language it names is at home elsewhere (`se` on a Swedish site: Sweden is SE, but `se` is
    /// Northern Sami, at home in NO). Then the warning to show, else `None`.
    pub fn advice(&self, site: &LangTag) -> Option<String> {
        let (me, site_language) = (self.language(), site.language());
        // A tag with a region or a script was written with care: `se-NO` means it.
        if me == site_language || me.len() != 2 || self.key() != me {
            return None;
        }
        let site_home = home(&site_language)?;
        if !site_home.eq_ignore_ascii_case(&me) {
            return None;
        }
        let my_home = home(&me)?;
        if my_home == site_home {
            return None;
        }
        Some(format!(
            "`{me}` is the code of a language at home in {my_home}, not the country code {site_home}: for the site's language write `{site_language}`"
        ))
    }
}

/// The country where a language is at home, by CLDR's likely subtags (`sv` → SE).
fn home(language: &str) -> Option<String> {
    let mut id: LanguageIdentifier = language.parse().ok()?;
    LocaleExpander::new_extended().maximize(&mut id);
    id.region.map(|r| r.as_str().to_string())
}

impl fmt::Display for LangTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(s: &str) -> LangTag {
        LangTag::parse(s).unwrap()
    }

    #[test]
    fn languages_cover_their_regions() {
        let en = tag("en");
        assert!(en.covers(&tag("en-GB")));
        assert!(!en.covers(&tag("sv")));
        assert!(LangTag::parse("not a tag").is_err());
    }

    #[test]
    fn only_languages_in_the_registry_are_tags() {
        for real in [
            "sv", "sv-SE", "en-GB", "se", "fi", "sma", "ajp", "sla", "mis", "und", "qaa", "no",
        ] {
            assert!(LangTag::parse(real).is_ok(), "{real}");
        }
        assert_eq!(
            LangTag::parse("swedish").unwrap_err(),
            "not a language in the IANA Language Subtag Registry"
        );
        assert_eq!(
            LangTag::parse("dk").unwrap_err(),
            "not a language in the IANA Language Subtag Registry: DK is a country code"
        );
        assert_eq!(
            LangTag::parse("xx-SE").unwrap_err(),
            "`xx` is not a language in the IANA Language Subtag Registry"
        );
        // Case does not matter, and the tag is kept as written.
        assert_eq!(tag("SV-se").as_str(), "SV-se");
        assert_eq!(
            LangTag::parse("Swedish").unwrap_err(),
            "not a language in the IANA Language Subtag Registry"
        );
        // ISO 639-2/B codes are not in the registry: `swe` is written `sv`.
        assert!(LangTag::parse("swe").is_err());
    }

    #[test]
    fn a_language_whose_code_is_the_sites_country_is_warned_about() {
        let sv = tag("sv");
        let warning = tag("se").advice(&sv).expect("se on a Swedish site");
        assert_eq!(
            warning,
            "`se` is the code of a language at home in NO, not the country code SE: for the site's language write `sv`"
        );
        assert_eq!(tag("se-NO").advice(&sv), None, "written with care");
        // Real readers of a Swedish site.
        for fine in ["sv", "sv-SE", "sv-FI", "en", "fi", "de", "sma"] {
            assert_eq!(tag(fine).advice(&sv), None, "{fine}");
        }
        // Spanish on a Catalan site is at home in ES, like Catalan: not a mistake.
        assert_eq!(tag("es").advice(&tag("ca")), None);
        // `no` on a Bokmål site is at home in Norway too.
        assert_eq!(tag("no").advice(&tag("nb")), None);
        // Breton on a Portuguese site: pt is at home in BR, Breton in FR.
        assert!(tag("br").advice(&tag("pt")).is_some());
        assert!(
            tag("ee").advice(&tag("et")).is_some(),
            "Ewe on an Estonian site"
        );
    }
}
