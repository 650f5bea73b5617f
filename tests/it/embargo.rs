//! The embargo-leak sweeps: random sets of releases (dates around an instant, written in
//! every form the front matter takes; drafts, withdrawals, topics, languages, attachments
//! and images), each field carrying a marker only that release has. What is public when
//! is worked out here from each release's own spec, never asked of the code under test.
//!
//! - [`site`] builds in process (the library's `Builder`) at a random instant, so that
//!   thousands of cases fit in the suite: nothing of what is not public is in any output
//!   file or file name, a withdrawn one keeps only its notice, and everything public is
//!   there. `PROPTEST_CASES=100000 cargo test --test it appears_in_any_output` is the
//!   long run.
//! - [`daemon`] runs the real daemon with a real SMTP server: every URL a reader could try
//!   for the case's releases, asked again and again while some lift, and every mail it
//!   sends, against who the spec says gets what. Three cases in the suite;
//!   `PRESSROOM_DAEMON_SWEEP_CASES=50 cargo test --test it reaches_a_reader` is the long
//!   run.

mod daemon;
mod site;

use std::path::Path;

use chrono::{DateTime, FixedOffset, LocalResult, NaiveTime, TimeDelta, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use proptest::prelude::*;

/// How a release's date is written in its front matter.
#[derive(Debug, Clone, Copy)]
enum Form {
    /// RFC 3339 in UTC (`Z`).
    Utc,
    /// RFC 3339 with this offset from UTC, in minutes.
    Offset(i32),
    /// A local date-time, read in the site's time zone.
    Local,
    /// A date alone: that day at the site's `publish_time`, in its time zone.
    Day,
}

#[derive(Debug, Clone)]
struct Spec {
    /// Seconds from the build instant to the instant the date is written from (for
    /// `Form::Day`, its day in the site's zone).
    offset: i64,
    draft: bool,
    withdrawn: bool,
    lang: &'static str,
    shared_topic: bool,
    attachment: bool,
    image: bool,
    form: Form,
    /// A TOML date-time value rather than a string.
    bare: bool,
    /// An `id` in the front matter (else the release gets its default one).
    explicit_id: bool,
}

fn form() -> impl Strategy<Value = Form> {
    prop_oneof![
        Just(Form::Utc),
        prop_oneof![
            Just(0),
            Just(120),
            Just(-300),
            Just(330),
            Just(345),
            Just(-570),
            Just(840)
        ]
        .prop_map(Form::Offset),
        Just(Form::Local),
        Just(Form::Day),
    ]
}

fn spec() -> impl Strategy<Value = Spec> {
    (
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
        ),
        (
            any::<bool>(),
            any::<bool>(),
            prop::bool::weighted(0.3),
            form(),
            any::<bool>(),
            any::<bool>(),
        ),
    )
        .prop_map(
            |(
                (offset, draft, withdrawn, lang),
                (shared_topic, attachment, image, form, bare, explicit_id),
            )| Spec {
                offset,
                draft,
                withdrawn,
                lang,
                shared_topic,
                attachment,
                image,
                form,
                bare,
                explicit_id,
            },
        )
}

/// The date as the front matter writes it, and the instant that means, worked out here
/// from the site's zone and `publish_time` with chrono-tz.
fn write_date(
    spec: &Spec,
    instant: DateTime<Utc>,
    tz: Tz,
    publish: NaiveTime,
) -> (String, DateTime<Utc>) {
    // Written to the second: the instant meant is the whole second.
    let instant = instant.with_nanosecond(0).expect("a whole second");
    let with_offset = |t: DateTime<Utc>| t.with_timezone(&tz).format("%Y-%m-%dT%H:%M:%S%:z");
    let (text, date) = match spec.form {
        Form::Utc => (instant.format("%Y-%m-%dT%H:%M:%SZ").to_string(), instant),
        Form::Offset(minutes) => {
            let zone = FixedOffset::east_opt(minutes * 60).expect("an offset");
            let text = instant.with_timezone(&zone).format("%Y-%m-%dT%H:%M:%S%:z");
            (text.to_string(), instant)
        }
        Form::Local => {
            let local = instant.with_timezone(&tz).naive_local();
            match tz.from_local_datetime(&local) {
                LocalResult::Single(_) => (local.format("%Y-%m-%dT%H:%M:%S").to_string(), instant),
                // The autumn hour that happens twice: the local time alone would not say
                // which, so the site's offset is written too.
                _ => (with_offset(instant).to_string(), instant),
            }
        }
        Form::Day => {
            let day = instant.with_timezone(&tz).date_naive();
            let date = tz
                .from_local_datetime(&day.and_time(publish))
                .single()
                .expect("the publish time exists every day")
                .with_timezone(&Utc);
            (day.format("%Y-%m-%d").to_string(), date)
        }
    };
    let text = if spec.bare {
        text
    } else {
        format!("\"{text}\"")
    };
    (text, date)
}

/// The markers only release `i` carries, one per field: a two-letter field code and the
/// release's tag. Each is lowercase letters and digits, so no escaping (HTML, XML, JSON,
/// URLs) changes it, and it is written inside a word, so that a part of a field that
/// leaks is found as well as a whole one.
struct Secrets {
    /// What every marker of this release ends with, and nothing else in a site holds.
    tag: String,
    title: String,
    slug: String,
    summary: String,
    body: String,
    alt: String,
    name: String,
    role: String,
    phone: String,
    email: String,
    id: String,
    topic: String,
    attachment: String,
    attachment_bytes: String,
    image: String,
    image_bytes: String,
}

/// The fields a withdrawn release's notice may show: its title, slug and topic.
const NOTICE_FIELDS: &[&str] = &["ti", "sl", "to"];

impl Secrets {
    fn new(i: usize, salt: u32) -> Secrets {
        let tag = format!("{salt:08x}r{i}z");
        let m = |field: &str| format!("{field}{tag}");
        Secrets {
            title: m("ti"),
            slug: m("sl"),
            summary: m("su"),
            body: m("bo"),
            alt: m("al"),
            name: m("na"),
            role: m("ro"),
            phone: m("ph"),
            email: m("em"),
            id: m("id"),
            topic: m("to"),
            attachment: m("at"),
            attachment_bytes: m("ab"),
            image: m("im"),
            image_bytes: m("ib"),
            tag,
        }
    }

    /// The first marker of this release in `text` whose field is not `allowed` (any part
    /// of the release that shows its tag: every field carries it). One search for the tag
    /// rather than one per field keeps thousands of cases fast.
    fn leak<'t>(&self, text: &'t str, allowed: &[&str]) -> Option<&'t str> {
        text.match_indices(&self.tag).find_map(|(at, _)| {
            let from = at.saturating_sub(2);
            let field = text.get(from..at).unwrap_or("");
            (!allowed.contains(&field)).then(|| &text[from..at + self.tag.len()])
        })
    }

    fn slug(&self) -> String {
        format!("n{}x", self.slug)
    }
    fn topic(&self) -> String {
        format!("amne-{}", self.topic)
    }
    fn attachment_name(&self) -> String {
        format!("bilaga{}.pdf", self.attachment)
    }
    fn attachment_bytes(&self) -> Vec<u8> {
        format!("%PDF-1.4 innehall{}slut", self.attachment_bytes).into_bytes()
    }
    fn image_name(&self) -> String {
        format!("bild{}.png", self.image)
    }
    fn image_bytes(&self) -> Vec<u8> {
        // A PNG signature and header, then the marker.
        let mut png =
            b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89"
                .to_vec();
        png.extend_from_slice(self.image_bytes.as_bytes());
        png
    }
}

/// Writes release `s` dated `date` as the front matter text `date`.
fn write_release(dir: &Path, spec: &Spec, s: &Secrets, date: &str) {
    let mut front = format!(
        "title = \"Nyhet om{}ord\"\ndate = {date}\nslug = \"{}\"\nlang = \"{}\"\nsummary = \"Samman{}fattning.\"\ntopics = [\"{}\"{}]\n",
        s.title,
        s.slug(),
        spec.lang,
        s.summary,
        s.topic(),
        if spec.shared_topic {
            ", \"gemensamt\""
        } else {
            ""
        },
    );
    if spec.explicit_id {
        front.push_str(&format!("id = \"urn:pressroom:{}x\"\n", s.id));
    }
    front.push_str(&format!(
        "contacts = [{{ name = \"Namn{}son\", role = \"Roll{}\", phone = \"070-{}\", email = \"press{}@example.org\" }}]\n",
        s.name, s.role, s.phone, s.email
    ));
    if spec.draft {
        front.push_str("draft = true\n");
    }
    if spec.withdrawn {
        front.push_str("withdrawn = \"Felaktiga uppgifter\"\n");
    }
    let bundle = spec.attachment || spec.image;
    if spec.attachment {
        front.push_str(&format!("attachments = [\"{}\"]\n", s.attachment_name()));
    }
    if spec.image {
        front.push_str(&format!(
            "image = \"{}\"\nimage_alt = \"Bild{}text\"\n",
            s.image_name(),
            s.alt
        ));
    }
    let text = format!(
        "+++\n{front}+++\n\nFörsta stycket med menings{}ord.\n\nAndra stycket, [en länk](bilaga).\n",
        s.body
    );
    if bundle {
        let folder = dir.join(format!("releases/{}", s.slug()));
        std::fs::create_dir_all(&folder).expect("bundle");
        std::fs::write(folder.join("index.md"), text).expect("write");
        if spec.attachment {
            std::fs::write(folder.join(s.attachment_name()), s.attachment_bytes())
                .expect("attachment");
        }
        if spec.image {
            std::fs::write(folder.join(s.image_name()), s.image_bytes()).expect("image");
        }
    } else {
        std::fs::write(dir.join(format!("releases/{}.md", s.slug())), text).expect("write");
    }
}

/// One release of a case: its spec, its markers and the instant its date means.
struct Case {
    spec: Spec,
    s: Secrets,
    date: DateTime<Utc>,
}

/// Writes the releases of a case into `dir`, each dated from `around` + its offset, for a
/// site in zone `tz` whose `publish_time` is `publish`.
fn write_case(
    dir: &Path,
    specs: &[Spec],
    salt: u32,
    around: DateTime<Utc>,
    (tz, publish): (Tz, NaiveTime),
) -> Vec<Case> {
    specs
        .iter()
        .enumerate()
        .map(|(i, spec)| {
            let s = Secrets::new(i, salt);
            let instant = around + TimeDelta::seconds(spec.offset);
            let (text, date) = write_date(spec, instant, tz, publish);
            write_release(dir, spec, &s, &text);
            Case {
                spec: spec.clone(),
                s,
                date,
            }
        })
        .collect()
}
