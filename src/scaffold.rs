//! `pressroom new TITLE [--date D] [--topics A,B]`: a release file to fill in, its comments
//! in the site's language (Swedish for `sv`, English otherwise). It starts as a draft, so
//! saving it half-written in a watched folder never publishes or mails anything, and it
//! carries an explicit `id`, so no later edit of its date, title or file name makes it
//! another release.

use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDate, Utc};

use crate::config::Config;
use crate::time::Written;
use crate::topic::Topic;

/// What the office asked for beyond the title.
#[derive(Debug, Default)]
pub struct Wanted {
    /// The embargo lift as written on the command line; default the moment of making.
    pub date: Option<Written>,
    pub topics: Vec<Topic>,
}

/// The words of the scaffold, in one language.
struct Words {
    date: &'static str,
    topics: &'static str,
    id: &'static str,
    draft: &'static str,
    contacts: &'static str,
    body: &'static str,
}

const SV: Words = Words {
    date: "# När embargot släpps: ett datum (då släpps det klockan publish_time) eller datum och tid.",
    topics: "# Ämnen som de skrivs, till exempel [\"Jämställdhet\", \"Människohandel\"].",
    id: "# Håller ihop pressmeddelandet genom ändringar och nya filnamn: låt raden vara.",
    draft: "# Ta bort raden när pressmeddelandet är klart att publiceras och skickas.",
    contacts: "# Den som journalister ska kontakta. Upprepa blocket för varje kontakt.",
    body: "Första stycket är sammanfattningen som journalister ser i flöden och e-post.",
};

const EN: Words = Words {
    date: "# When the embargo lifts: a date (lifts at the site's publish_time), or a date-time.",
    topics: "# Topics as people write them, like [\"Environment\", \"Human trafficking\"].",
    id: "# Keeps the release itself through edits and renames: leave it as it is.",
    draft: "# Remove this line when the release is ready to be published and mailed.",
    contacts: "# Who journalists call. Repeat the block for each contact.",
    body: "The first paragraph is the summary journalists see in feeds and mail.",
};

/// The file name and text of a new release made at `at`; an error if the date asked for
/// is not one the site can publish at.
pub fn new_release(
    config: &Config,
    title: &str,
    wanted: &Wanted,
    at: DateTime<Utc>,
) -> anyhow::Result<(String, String)> {
    let tz = config.site.timezone;
    let local = at.with_timezone(&tz);
    let (day, date): (NaiveDate, String) = match &wanted.date {
        None => (
            local.date_naive(),
            local.format("%Y-%m-%dT%H:%M:00%:z").to_string(),
        ),
        Some(written) => {
            let lift = (*written)
                .resolve(tz, config.site.publish_time)
                .map_err(|e| anyhow::anyhow!("--date: {e}"))?;
            match written {
                Written::Date(d) => (*d, d.format("%Y-%m-%d").to_string()),
                Written::Local(l) => (l.date(), l.format("%Y-%m-%dT%H:%M:%S").to_string()),
                Written::Exact(dt) => (
                    lift.with_timezone(&tz).date_naive(),
                    dt.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, false),
                ),
            }
        }
    };
    let slug = slug::slugify(title);
    let slug = if slug.is_empty() {
        "release".to_string()
    } else {
        slug.chars()
            .take(80)
            .collect::<String>()
            .trim_end_matches('-')
            .to_string()
    };
    let name = format!("{}-{slug}.md", day.format("%Y-%m-%d"));
    let toml_string = |s: &str| toml::Value::String(s.to_string()).to_string();
    // Made once, when the file is: the day and second of its making, never its date.
    let id = format!(
        "tag:{},{}:{slug}-{}",
        config.site.domain(),
        local.format("%Y-%m-%d"),
        local.format("%H%M%S")
    );
    let topics = wanted
        .topics
        .iter()
        .map(|t| toml_string(t.name()))
        .collect::<Vec<_>>()
        .join(", ");
    let words = if config.site.lang.key().split('-').next() == Some("sv") {
        &SV
    } else {
        &EN
    };
    let text = format!(
        "+++\n\
         title = {title}\n\
         {date_comment}\n\
         date = {date}\n\
         lang = \"{lang}\"\n\
         {topics_comment}\n\
         topics = [{topics}]\n\
         {id_comment}\n\
         id = \"{id}\"\n\
         {draft_comment}\n\
         draft = true\n\
         \n\
         {contacts_comment}\n\
         # [[contacts]]\n\
         # name = \"\"\n\
         # role = \"\"\n\
         # phone = \"\"\n\
         # email = \"\"\n\
         +++\n\
         \n\
         {body}\n",
        title = toml_string(title),
        date_comment = words.date,
        topics_comment = words.topics,
        id_comment = words.id,
        draft_comment = words.draft,
        contacts_comment = words.contacts,
        body = words.body,
        lang = config.site.lang,
    );
    Ok((name, text))
}

/// Writes the new release into the releases folder, refusing to overwrite.
pub fn create(
    config: &Config,
    title: &str,
    wanted: &Wanted,
    at: DateTime<Utc>,
) -> anyhow::Result<PathBuf> {
    use anyhow::Context;
    use std::io::Write;
    if title.trim().is_empty() || title.chars().any(char::is_control) {
        anyhow::bail!("the title must be one non-empty line");
    }
    let (name, text) = new_release(config, title, wanted, at)?;
    let dir: &Path = &config.paths.releases;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let path = dir.join(name);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(lang: &str) -> Config {
        let text = format!("[site]\nlang = \"{lang}\"\ntimezone = \"Europe/Stockholm\"\n");
        Config::parse(&text, Path::new("c.toml"), Path::new("/srv"))
            .expect("valid")
            .0
    }

    #[test]
    fn a_swedish_site_gets_swedish_comments_with_the_date_and_topics_asked_for() {
        let at = "2026-01-10T09:30:00Z".parse().unwrap();
        let wanted = Wanted {
            date: Some(Written::parse("2026-01-15").unwrap()),
            topics: vec![
                Topic::parse("Jämställdhet").unwrap(),
                Topic::parse("Miljö").unwrap(),
            ],
        };
        let (name, text) = new_release(&config("sv"), "Ny rapport", &wanted, at).unwrap();
        assert_eq!(name, "2026-01-15-ny-rapport.md");
        assert!(text.contains("\ndate = 2026-01-15\n"), "{text}");
        assert!(
            text.contains("\ntopics = [\"Jämställdhet\", \"Miljö\"]\n"),
            "{text}"
        );
        assert!(text.contains("# Ta bort raden när"), "{text}");
        assert!(!text.contains("Remove this line"), "{text}");

        let (_, english) = new_release(&config("en-GB"), "Report", &Wanted::default(), at).unwrap();
        assert!(english.contains("# Remove this line"), "{english}");
        assert!(
            english.contains("\ndate = 2026-01-10T10:30:00+01:00\n"),
            "{english}"
        );
    }

    #[test]
    fn a_date_the_site_cannot_publish_at_is_refused() {
        let at = "2026-01-10T09:30:00Z".parse().unwrap();
        let wanted = Wanted {
            // Clocks skip 02:00–03:00 in Stockholm that night.
            date: Some(Written::parse("2026-03-29T02:30").unwrap()),
            topics: Vec::new(),
        };
        let e = new_release(&config("sv"), "X", &wanted, at).unwrap_err();
        assert!(e.to_string().contains("--date"), "{e}");
    }
}
