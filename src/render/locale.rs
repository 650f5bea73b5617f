//! The words, dates and language names that pages and mail print, in the language of the
//! page: Swedish and English built in, English for any other language. An office that
//! wants other words overrides the template that prints them (`config/templates/`); dates
//! reach templates in parts as well (`view::DateView`) so an override can write its own.

use chrono::{DateTime, Datelike, Timelike};
use chrono_tz::Tz;
use icu_locale::{LanguageIdentifier, LocaleExpander};
use serde::Serialize;

use crate::release::LangTag;

/// The few words the built-in templates print, in one language.
#[derive(Serialize)]
pub struct Labels {
    /// The skip link, the first thing a keyboard or screen reader meets.
    pub skip: &'static str,
    pub releases: &'static str,
    pub latest: &'static str,
    pub archive: &'static str,
    pub topics: &'static str,
    pub topic: &'static str,
    pub language: &'static str,
    pub languages: &'static str,
    pub contacts: &'static str,
    pub attachments: &'static str,
    pub published: &'static str,
    pub updated: &'static str,
    pub withdrawn: &'static str,
    pub subscribe: &'static str,
    pub feeds: &'static str,
    pub none: &'static str,
    pub phone: &'static str,
    pub email: &'static str,
    pub greeting: &'static str,
    pub greeting_anonymous: &'static str,
    pub correction: &'static str,
    pub update_subject: &'static str,
    pub read_online: &'static str,
    pub unsubscribe: &'static str,
    #[serde(skip)]
    style: Style,
}

/// How a language writes a date and a time of day.
#[derive(Clone, Copy)]
enum Style {
    /// `18 oktober 2018`, `18 oktober 2018 kl. 08.00`: Språkrådet's Svenska skrivregler
    /// write the time with a full stop (the colon is also accepted, but the stop is what
    /// Swedish authorities and newspapers print), and no zone: Swedish readers of a
    /// Swedish newsroom read Swedish time.
    Swedish,
    /// `18 October 2018`, `18 October 2018 at 08:00 CEST`: day-month-year as British and
    /// European English write it, with the zone, since an English reader may be anywhere.
    English,
}

const SV: Labels = Labels {
    skip: "Till innehållet",
    releases: "Pressmeddelanden",
    latest: "Senaste pressmeddelanden",
    archive: "Arkiv",
    topics: "Ämnen",
    topic: "Ämne",
    language: "Språk",
    languages: "Pressmeddelanden på",
    contacts: "Presskontakt",
    attachments: "Dokument",
    published: "Publicerad",
    updated: "Uppdaterad",
    withdrawn: "Pressmeddelandet har dragits tillbaka",
    subscribe: "Prenumerera",
    feeds: "Flöden",
    none: "Inga pressmeddelanden ännu.",
    phone: "Telefon",
    email: "E-post",
    greeting: "Hej",
    greeting_anonymous: "Hej!",
    correction: "Rättelse: det här pressmeddelandet har uppdaterats sedan vi skickade det.",
    update_subject: "Uppdaterat",
    read_online: "Läs pressmeddelandet på webben",
    unsubscribe: "Avsluta prenumerationen",
    style: Style::Swedish,
};

const EN: Labels = Labels {
    skip: "Skip to content",
    releases: "Press releases",
    latest: "Latest press releases",
    archive: "Archive",
    topics: "Topics",
    topic: "Topic",
    language: "Language",
    languages: "Press releases in",
    contacts: "Press contact",
    attachments: "Documents",
    published: "Published",
    updated: "Updated",
    withdrawn: "This press release has been withdrawn",
    subscribe: "Subscribe",
    feeds: "Feeds",
    none: "No press releases yet.",
    phone: "Phone",
    email: "Email",
    greeting: "Dear",
    greeting_anonymous: "Hello,",
    correction: "Correction: this press release has been updated since we sent it.",
    update_subject: "Updated",
    read_online: "Read the press release online",
    unsubscribe: "Unsubscribe",
    style: Style::English,
};

const SV_MONTHS: [&str; 12] = [
    "januari",
    "februari",
    "mars",
    "april",
    "maj",
    "juni",
    "juli",
    "augusti",
    "september",
    "oktober",
    "november",
    "december",
];

const EN_MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

impl Labels {
    pub fn for_lang(lang: &LangTag) -> &'static Labels {
        match lang.language().as_str() {
            "sv" => &SV,
            _ => &EN,
        }
    }

    /// The month's name (`month0`: 0 for January).
    pub fn month(&self, month0: u32) -> &'static str {
        let names = match self.style {
            Style::Swedish => &SV_MONTHS,
            Style::English => &EN_MONTHS,
        };
        names[month0 as usize % 12]
    }

    /// `18 oktober 2018`.
    pub fn day(&self, local: &DateTime<Tz>) -> String {
        format!(
            "{} {} {}",
            local.day(),
            self.month(local.month0()),
            local.year()
        )
    }

    /// The time of day: `08.00` in Swedish, `08:00` in English.
    pub fn time(&self, local: &DateTime<Tz>) -> String {
        let separator = match self.style {
            Style::Swedish => '.',
            Style::English => ':',
        };
        format!("{:02}{separator}{:02}", local.hour(), local.minute())
    }

    /// A day, with its time of day when `timed`: what a person reads.
    pub fn date(&self, local: &DateTime<Tz>, timed: bool) -> String {
        let day = self.day(local);
        if !timed {
            return day;
        }
        let time = self.time(local);
        match self.style {
            Style::Swedish => format!("{day} kl. {time}"),
            Style::English => format!("{day} at {time} {}", local.format("%Z")),
        }
    }

    /// A language's name in this one (`svenska`, `Swedish`); the tag itself for a language
    /// the table does not hold.
    pub fn language_name(&self, tag: &LangTag) -> String {
        let language = tag.language();
        let found = LANGUAGES
            .iter()
            .find(|(code, ..)| *code == language)
            .map(|&(_, sv, en)| match self.style {
                Style::Swedish => sv,
                Style::English => en,
            });
        found.map_or_else(|| tag.as_str().to_string(), str::to_string)
    }
}

/// Names of the languages a Swedish or European press office is likely to publish in:
/// Sweden's official and minority languages, its neighbours', the EU's largest and the
/// most spoken languages among Sweden's residents (ISO 639 code, Swedish, English).
const LANGUAGES: &[(&str, &str, &str)] = &[
    ("sv", "svenska", "Swedish"),
    ("en", "engelska", "English"),
    ("fi", "finska", "Finnish"),
    ("fit", "meänkieli", "Meänkieli"),
    ("se", "nordsamiska", "Northern Sami"),
    ("smj", "lulesamiska", "Lule Sami"),
    ("sma", "sydsamiska", "Southern Sami"),
    ("yi", "jiddisch", "Yiddish"),
    ("rom", "romani", "Romani"),
    ("no", "norska", "Norwegian"),
    ("nb", "norska (bokmål)", "Norwegian Bokmål"),
    ("nn", "nynorska", "Norwegian Nynorsk"),
    ("da", "danska", "Danish"),
    ("is", "isländska", "Icelandic"),
    ("de", "tyska", "German"),
    ("fr", "franska", "French"),
    ("es", "spanska", "Spanish"),
    ("it", "italienska", "Italian"),
    ("pt", "portugisiska", "Portuguese"),
    ("nl", "nederländska", "Dutch"),
    ("pl", "polska", "Polish"),
    ("et", "estniska", "Estonian"),
    ("lv", "lettiska", "Latvian"),
    ("lt", "litauiska", "Lithuanian"),
    ("ru", "ryska", "Russian"),
    ("uk", "ukrainska", "Ukrainian"),
    ("ar", "arabiska", "Arabic"),
    ("fa", "persiska", "Persian"),
    ("prs", "dari", "Dari"),
    ("so", "somaliska", "Somali"),
    ("ti", "tigrinska", "Tigrinya"),
    ("tr", "turkiska", "Turkish"),
    ("ku", "kurdiska", "Kurdish"),
    ("bs", "bosniska", "Bosnian"),
    ("hr", "kroatiska", "Croatian"),
    ("sr", "serbiska", "Serbian"),
    ("zh", "kinesiska", "Chinese"),
    ("th", "thailändska", "Thai"),
];

/// Open Graph's `language_TERRITORY` (`sv_SE`): the tag's own region, else where CLDR's
/// likely subtags place the language (`sv` → `sv_SE`, `en` → `en_US`).
pub fn og_locale(tag: &LangTag) -> String {
    let language = tag.language();
    let region = tag
        .key()
        .split('-')
        .skip(1)
        .find(|part| part.len() == 2 && part.bytes().all(|b| b.is_ascii_alphabetic()))
        .map(str::to_ascii_uppercase)
        .or_else(|| {
            let mut id: LanguageIdentifier = language.parse().ok()?;
            LocaleExpander::new_extended().maximize(&mut id);
            id.region.map(|r| r.as_str().to_string())
        });
    match region {
        Some(region) => format!("{language}_{region}"),
        None => language,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use chrono_tz::Europe::Stockholm;

    fn tag(s: &str) -> LangTag {
        LangTag::parse(s).unwrap()
    }

    #[test]
    fn dates_read_as_people_write_them() {
        let morning = Stockholm.with_ymd_and_hms(2018, 10, 18, 8, 0, 0).unwrap();
        let sv = Labels::for_lang(&tag("sv-SE"));
        assert_eq!(sv.date(&morning, false), "18 oktober 2018");
        assert_eq!(sv.date(&morning, true), "18 oktober 2018 kl. 08.00");
        let en = Labels::for_lang(&tag("en"));
        assert_eq!(en.date(&morning, false), "18 October 2018");
        assert_eq!(en.date(&morning, true), "18 October 2018 at 08:00 CEST");
        let winter = Stockholm.with_ymd_and_hms(2019, 1, 5, 17, 45, 0).unwrap();
        assert_eq!(sv.date(&winter, true), "5 januari 2019 kl. 17.45");
        assert_eq!(en.date(&winter, true), "5 January 2019 at 17:45 CET");
    }

    #[test]
    fn languages_have_names_and_unknown_ones_keep_their_tag() {
        let sv = Labels::for_lang(&tag("sv"));
        assert_eq!(sv.language_name(&tag("sv")), "svenska");
        assert_eq!(sv.language_name(&tag("en-GB")), "engelska");
        assert_eq!(
            Labels::for_lang(&tag("de")).language_name(&tag("sv")),
            "Swedish"
        );
        assert_eq!(sv.language_name(&tag("haw")), "haw");
    }

    #[test]
    fn open_graph_locales_have_a_territory() {
        assert_eq!(og_locale(&tag("sv")), "sv_SE");
        assert_eq!(og_locale(&tag("en-GB")), "en_GB");
        assert_eq!(og_locale(&tag("se")), "se_NO");
    }
}
