//! One release through every renderer there is, as the build and the sender would use
//! them: its page; the listings that show it (index, year archive, topic and language
//! pages), with the RSS, Atom and JSON feeds of each and the sitemap; and its mail, an
//! original and a correction, as previews and files carry it and as an SMTP server with
//! 8BITMIME takes it. The fuzz target and `tests/it/pipeline.rs` run it on every release
//! parsing accepts: what `check` lets through must render everywhere, without an error or a
//! panic, into well-formed XML and JSON.

use chrono::{DateTime, Utc};

use super::compose::{ComposeError, Kind, Letter, Prepared, Transfer, compose};
use crate::config::Config;
use crate::media::Recipient;
use crate::optout::TokenKey;
use crate::planner::Plan;
use crate::release::source::{BundleFile, Entry, SourceFile};
use crate::release::{Release, frontmatter};
use crate::render::{self, Map, Output, Outputs, RenderError, Templates};

/// Everything one release rendered into.
pub struct Rendered {
    /// The page, the listings, the feeds and the sitemap, by path.
    pub site: Outputs,
    /// The messages, as they go on the wire.
    pub mail: Vec<Vec<u8>>,
}

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Render(#[from] RenderError),
    #[error("the mail: {0}")]
    Compose(#[from] ComposeError),
    #[error("{path} is not well-formed XML: {why}")]
    Xml { path: String, why: String },
    #[error("{path} is not JSON: {why}")]
    Json { path: String, why: String },
    #[error("the journalist's address: {0}")]
    Address(#[from] lettre::address::AddressError),
}

/// The files of the bundle every fuzzed release is in, so that `image` and `attachments`
/// can name something: names with spaces, `&` and non-ASCII letters, which pages, feed
/// enclosures and the sitemap must escape. Nothing reads them.
pub const BUNDLE_FILES: &[&str] = &[
    "bild.jpg",
    "data.csv",
    "rapport 2019 & bilaga.pdf",
    "översikt.png",
];

/// `text` as the release file `releases/fuzz/index.md`, a bundle holding [`BUNDLE_FILES`]:
/// what the fuzz target and `tests/it/pipeline.rs` parse, so both see the same release.
pub fn bundle(text: &str) -> SourceFile {
    SourceFile {
        entry: Entry {
            path: "releases/fuzz/index.md".into(),
            name: "fuzz".into(),
            key: "fuzz".into(),
            bundle: Some("releases/fuzz".into()),
            stamp: 0,
        },
        text: text.to_string(),
        files: Some(
            BUNDLE_FILES
                .iter()
                .map(|name| BundleFile {
                    name: (*name).to_string(),
                    path: format!("releases/fuzz/{name}").into(),
                    len: 1024,
                })
                .collect(),
        ),
    }
}

/// Renders `release` through everything, as if it were public (or withdrawn, if it is) at
/// its last change. Attachments are listed, not read.
pub fn whole(
    config: &Config,
    templates: &Templates,
    release: &Release,
) -> Result<Rendered, PipelineError> {
    let at = release.last_modified();
    let shown = vec![release];
    let plan = if release.withdrawn.is_some() {
        Plan {
            at,
            public: Vec::new(),
            withdrawn: shown,
        }
    } else {
        Plan {
            at,
            public: shown,
            withdrawn: Vec::new(),
        }
    };
    let mut site = render::listings(config, templates, &plan, &mut Map::default(), &|_| false)?;
    site.insert(
        format!("{}index.html", release.path()),
        Output::Bytes(render::release_page(config, templates, release)?),
    );
    site.extend(render::release_files(release));
    for (path, output) in &site {
        if let Output::Bytes(bytes) = output {
            well_formed(path, bytes)?;
        }
    }
    // A message's Date is when it leaves: the sender reads the clock, which is never
    // before 1970. A release may be dated as early as 1900 (`send` mails it now).
    let sent = at.max(DateTime::UNIX_EPOCH);
    Ok(Rendered {
        site,
        mail: mail(config, templates, release, sent)?,
    })
}

/// The messages of a release to one journalist: the original and a correction, in both
/// encodings, formatted as the transport writes them.
fn mail(
    config: &Config,
    templates: &Templates,
    release: &Release,
    date: DateTime<Utc>,
) -> Result<Vec<Vec<u8>>, PipelineError> {
    let key = TokenKey::from_bytes([7; 32]);
    let recipient = Recipient {
        name: "Anna Andersson".into(),
        outlet: "Exempelbladet".into(),
        line: 1,
        ..Recipient::unlisted(lettre::Address::new("anna", "example.com")?)
    };
    let prepared = Prepared::new(config, templates, release);
    let mut messages = Vec::new();
    for (kind, version) in [
        (Kind::Original, 1),
        (
            Kind::Update {
                original: "<original@example.org>".into(),
            },
            2,
        ),
    ] {
        for transfer in [Transfer::SevenBit, Transfer::EightBitMime] {
            let letter = Letter {
                release,
                prepared: &prepared,
                recipient: &recipient,
                kind: kind.clone(),
                version,
                date,
                transfer,
            };
            messages.push(
                compose(config, templates, &key, &letter)?
                    .message
                    .formatted(),
            );
        }
    }
    Ok(messages)
}

/// Feeds and the sitemap parse back: XML from start to end with every tag closed and
/// only characters XML 1.0 allows, JSON as JSON.
fn well_formed(path: &str, bytes: &[u8]) -> Result<(), PipelineError> {
    let xml = |why: String| PipelineError::Xml {
        path: path.to_string(),
        why,
    };
    if path.ends_with(".json") {
        return serde_json::from_slice::<serde_json::Value>(bytes)
            .map(drop)
            .map_err(|e| PipelineError::Json {
                path: path.to_string(),
                why: e.to_string(),
            });
    }
    if !(path.ends_with(".rss") || path.ends_with(".atom") || path.ends_with(".xml")) {
        return Ok(());
    }
    let text = std::str::from_utf8(bytes).map_err(|e| xml(e.to_string()))?;
    if let Some(c) = text.chars().find(|&c| !frontmatter::xml_char(c)) {
        return Err(xml(format!("it holds {c:?}, which XML 1.0 cannot")));
    }
    let mut reader = quick_xml::Reader::from_str(text);
    let mut depth = 0usize;
    loop {
        match reader.read_event() {
            Ok(quick_xml::events::Event::Start(_)) => depth += 1,
            Ok(quick_xml::events::Event::End(_)) => depth = depth.saturating_sub(1),
            Ok(quick_xml::events::Event::Eof) if depth == 0 => return Ok(()),
            Ok(quick_xml::events::Event::Eof) => {
                return Err(xml("an element is not closed".into()));
            }
            Ok(_) => {}
            Err(e) => return Err(xml(e.to_string())),
        }
    }
}
