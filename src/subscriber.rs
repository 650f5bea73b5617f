//! Journalists who subscribe themselves (SPEC §6), as the program reads them: what each
//! chose (topics, languages, each release or a daily digest), typed from the ledger's
//! plain rows (`ledger::SubscriberRow`, `ledger::SignupRow`) and written back to them.
//! Who of them a release is for is `media::exclusion`'s to say, as for every recipient.

use crate::ledger::Choices;
use crate::release::{LangTag, Topic};

/// How a subscriber takes releases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Delivery {
    /// Each release as it is published (inside the dispatch window).
    #[default]
    Each,
    /// One mail a day, at `[subscribe] digest` (cron, site time zone), with every release
    /// published since the last one.
    Digest,
}

impl Delivery {
    pub fn as_str(self) -> &'static str {
        match self {
            Delivery::Each => "each",
            Delivery::Digest => "digest",
        }
    }

    pub fn parse(s: &str) -> Option<Delivery> {
        match s {
            "each" => Some(Delivery::Each),
            "digest" => Some(Delivery::Digest),
            _ => None,
        }
    }
}

/// What a journalist chose, typed. Empty `topics`: every topic; empty `langs`: every
/// language.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Wants {
    pub topics: Vec<Topic>,
    pub langs: Vec<LangTag>,
    pub delivery: Delivery,
}

impl Wants {
    /// The choices as the ledger stores them.
    pub fn to_choices(&self) -> Choices {
        Choices {
            topics: self
                .topics
                .iter()
                .map(Topic::name)
                .collect::<Vec<_>>()
                .join("|"),
            langs: self
                .langs
                .iter()
                .map(LangTag::as_str)
                .collect::<Vec<_>>()
                .join("|"),
            delivery: self.delivery.as_str().to_string(),
        }
    }

    /// Stored choices read back: what `to_choices` wrote comes back the same; a part no
    /// writer of ours made (an unknown delivery, a tag that no longer parses) is left out,
    /// never guessed into a wider choice than the journalist made — except the delivery,
    /// which falls back to each release.
    pub fn from_choices(c: &Choices) -> Wants {
        let parts = |s: &str| {
            s.split('|')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(str::to_string)
                .collect::<Vec<_>>()
        };
        Wants {
            topics: parts(&c.topics)
                .iter()
                .filter_map(|t| Topic::parse(t).ok())
                .collect(),
            langs: parts(&c.langs)
                .iter()
                .filter_map(|t| LangTag::parse(t).ok())
                .collect(),
            delivery: Delivery::parse(&c.delivery).unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choices_come_back_as_written() {
        let wants = Wants {
            topics: vec![
                Topic::parse("Människohandel").unwrap(),
                Topic::parse("Jämställdhet").unwrap(),
            ],
            langs: vec![
                LangTag::parse("sv").unwrap(),
                LangTag::parse("en-GB").unwrap(),
            ],
            delivery: Delivery::Digest,
        };
        let stored = wants.to_choices();
        assert_eq!(stored.topics, "Människohandel|Jämställdhet");
        assert_eq!(stored.langs, "sv|en-GB");
        assert_eq!(Wants::from_choices(&stored), wants);
        assert_eq!(Wants::from_choices(&Choices::default()), Wants::default());
    }
}
