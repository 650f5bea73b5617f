//! `pressroom new TITLE`: a release file to fill in. It starts as a draft, so saving it
//! half-written in a watched folder never publishes or mails anything, and it carries an
//! explicit `id`, so no later edit of its date, title or file name makes it another
//! release.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use crate::config::Config;

/// The file name and text of a new release dated `at` (in the site's zone).
pub fn new_release(config: &Config, title: &str, at: DateTime<Utc>) -> (String, String) {
    let local = at.with_timezone(&config.site.timezone);
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
    let name = format!("{}-{slug}.md", local.format("%Y-%m-%d"));
    let title_toml = toml::Value::String(title.to_string()).to_string();
    // Made once, when the file is: the day and second of its making, never its date.
    let id = format!(
        "tag:{},{}:{slug}-{}",
        config.site.domain(),
        local.format("%Y-%m-%d"),
        local.format("%H%M%S")
    );
    let text = format!(
        "+++\n\
         title = {title_toml}\n\
         # When the embargo lifts: a date (lifts at the site's publish_time), or a date-time.\n\
         date = {date}\n\
         lang = \"{lang}\"\n\
         topics = []\n\
         # Keeps the release itself through edits and renames: leave it as it is.\n\
         id = \"{id}\"\n\
         # Remove this line when the release is ready to be published and mailed.\n\
         draft = true\n\
         \n\
         # Who journalists call. Repeat the block for each contact.\n\
         # [[contacts]]\n\
         # name = \"\"\n\
         # role = \"\"\n\
         # phone = \"\"\n\
         # email = \"\"\n\
         +++\n\
         \n\
         The first paragraph is the summary journalists see in feeds and mail.\n",
        date = local.format("%Y-%m-%dT%H:%M:00%:z"),
        lang = config.site.lang,
    );
    (name, text)
}

/// Writes the new release into the releases folder, refusing to overwrite.
pub fn create(config: &Config, title: &str, at: DateTime<Utc>) -> anyhow::Result<PathBuf> {
    use anyhow::Context;
    use std::io::Write;
    if title.trim().is_empty() || title.chars().any(char::is_control) {
        anyhow::bail!("the title must be one non-empty line");
    }
    let (name, text) = new_release(config, title, at);
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
