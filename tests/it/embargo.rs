//! The embargo-leak sweep: random sets of releases (dates around the build instant, drafts,
//! withdrawals, topics, languages, attachments) built at a random instant. For every
//! release that is not public at that instant, no byte of its title, slug, body, topic or
//! attachment name may appear in any output file or file name; for a withdrawn one, its
//! body and attachments are gone. Runs in process (the library's `Builder`) so thousands
//! of cases fit in the suite; `PROPTEST_CASES=100000 cargo test --test it embargo` is the
//! long run.

use std::path::Path;

use chrono::{DateTime, TimeDelta, Utc};
use pressroom::build::Builder;
use pressroom::config::Config;
use pressroom::planner::{self, Visibility};
use proptest::prelude::*;

const CONFIG: &str = r#"
[site]
title = "Pressrum"
base_url = "https://press.example.org/"
lang = "sv"
timezone = "Europe/Stockholm"
feed_items = 3
"#;

#[derive(Debug, Clone)]
struct Spec {
    /// Seconds from the build instant to the release's date.
    offset: i64,
    draft: bool,
    withdrawn: bool,
    lang: &'static str,
    shared_topic: bool,
    attachment: bool,
    image: bool,
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        prop_oneof![
            Just(0i64),
            Just(1),
            Just(-1),
            Just(60),
            Just(-60),
            -3 * 86_400..3 * 86_400i64,
        ],
        prop::bool::weighted(0.15),
        prop::bool::weighted(0.15),
        prop_oneof![Just("sv"), Just("en"), Just("de-AT")],
        any::<bool>(),
        any::<bool>(),
        prop::bool::weighted(0.3),
    )
        .prop_map(
            |(offset, draft, withdrawn, lang, shared_topic, attachment, image)| Spec {
                offset,
                draft,
                withdrawn,
                lang,
                shared_topic,
                attachment,
                image,
            },
        )
}

/// The words only release `i` carries: nothing else in the site can contain them.
struct Secrets {
    title: String,
    slug: String,
    sentence: String,
    topic: String,
    attachment: String,
}

fn secrets(i: usize, salt: u32) -> Secrets {
    let tok = format!("qz{salt:x}x{i}");
    Secrets {
        title: format!("Rubrikord{tok}"),
        slug: format!("slugg-{tok}"),
        sentence: format!("Meningsord{tok}"),
        topic: format!("amne-{tok}"),
        attachment: format!("bilaga-{tok}.pdf"),
    }
}

fn write_release(dir: &Path, spec: &Spec, s: &Secrets, date: DateTime<Utc>) {
    let mut front = format!(
        "title = \"Nyhet {}\"\ndate = \"{}\"\nslug = \"{}\"\nlang = \"{}\"\ntopics = [\"{}\"{}]\n",
        s.title,
        date.to_rfc3339(),
        s.slug,
        spec.lang,
        s.topic,
        if spec.shared_topic {
            ", \"gemensamt\""
        } else {
            ""
        },
    );
    if spec.draft {
        front.push_str("draft = true\n");
    }
    if spec.withdrawn {
        front.push_str("withdrawn = \"Felaktiga uppgifter\"\n");
    }
    let bundle = spec.attachment || spec.image;
    if spec.attachment {
        front.push_str(&format!("attachments = [\"{}\"]\n", s.attachment));
    }
    if spec.image {
        front.push_str(&format!(
            "image = \"bild-{}.png\"\nimage_alt = \"Bild\"\n",
            s.slug
        ));
    }
    let text = format!(
        "+++\n{front}+++\n\nFörsta stycket med {}.\n\nAndra stycket, [en länk](bilaga).\n",
        s.sentence
    );
    if bundle {
        let folder = dir.join(format!("releases/{}", s.slug));
        std::fs::create_dir_all(&folder).expect("bundle");
        std::fs::write(folder.join("index.md"), text).expect("write");
        if spec.attachment {
            std::fs::write(folder.join(&s.attachment), b"%PDF-1.4 test").expect("attachment");
        }
        if spec.image {
            // A one-pixel PNG.
            std::fs::write(
                folder.join(format!("bild-{}.png", s.slug)),
                b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89",
            )
            .expect("image");
        }
    } else {
        std::fs::write(dir.join(format!("releases/{}.md", s.slug)), text).expect("write");
    }
}

/// Every output file's path and bytes, as one searchable text per file.
fn site_texts(out: &Path) -> Vec<(String, String)> {
    super::files(out)
        .into_iter()
        .map(|(path, bytes)| {
            let text = String::from_utf8_lossy(&bytes).into_owned();
            (path, text)
        })
        .collect()
}

fn sweep(specs: &[Spec], at_secs: i64, salt: u32) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().expect("dir");
    std::fs::create_dir_all(dir.path().join("releases")).expect("releases");
    let at = DateTime::<Utc>::from_timestamp(at_secs, 0).expect("instant");
    let all: Vec<Secrets> = (0..specs.len()).map(|i| secrets(i, salt)).collect();
    for (spec, s) in specs.iter().zip(&all) {
        write_release(dir.path(), spec, s, at + TimeDelta::seconds(spec.offset));
    }
    let (config, _) = Config::parse(
        CONFIG,
        &dir.path().join("config/pressroom.toml"),
        dir.path(),
    )
    .map_err(|d| TestCaseError::fail(format!("config: {d:?}")))?;
    let out = dir.path().join("public");
    let mut builder = Builder::new(config, out.clone());
    let report = builder
        .build(at)
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(report.errors(), 0, "{:?}", report.diags);
    let texts = site_texts(&out);
    let releases = builder.load().releases;
    for (spec, s) in specs.iter().zip(&all) {
        let r = releases
            .iter()
            .find(|r| r.slug.as_str() == s.slug)
            .expect("parsed");
        let forbidden: Vec<&str> = match planner::visibility(r, at) {
            Visibility::Public => continue,
            // Its notice names it; its text and files are gone.
            Visibility::Withdrawn { .. } => vec![&s.sentence, &s.attachment],
            Visibility::Draft | Visibility::Embargoed { .. } | Visibility::WithdrawnUnpublished => {
                vec![&s.title, &s.slug, &s.sentence, &s.topic, &s.attachment]
            }
        };
        for (path, text) in &texts {
            for secret in &forbidden {
                prop_assert!(
                    !path.contains(secret) && !text.contains(secret),
                    "`{}` of a release {:?} at {} (date {}) appears in {}",
                    secret,
                    planner::visibility(r, at),
                    at,
                    r.date,
                    path
                );
            }
        }
        let _ = spec;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(1000),
        ..ProptestConfig::default()
    })]

    #[test]
    fn nothing_of_a_release_that_is_not_public_appears_in_any_output(
        specs in prop::collection::vec(spec(), 1..6),
        // 2000-01-01 .. 2040-01-01: summer and winter time, leap days.
        at_secs in 946_684_800i64..2_208_988_800,
        salt in any::<u32>(),
    ) {
        sweep(&specs, at_secs, salt)?;
    }
}
