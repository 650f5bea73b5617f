//! The media list `config/media.csv`, as spreadsheets export it: UTF-8 with or without a
//! BOM, `,` or `;` separated, columns `email,name,outlet,lang,topics` (topics `;`- or
//! `|`-separated; empty means everything). A bad row is reported with its line and skipped;
//! a repeated address (case-insensitive) counts once.

use std::collections::HashMap;
use std::path::Path;

use lettre::Address;

use crate::diagnostic::{Diagnostic, SourceText};
use crate::release::{LangTag, Release, Topic};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    pub email: Address,
    pub name: String,
    pub outlet: String,
    /// If set, only releases in this language reach them.
    pub lang: Option<LangTag>,
    /// Empty: every release.
    pub topics: Vec<Topic>,
    /// The line of the media list it came from.
    pub line: usize,
}

impl Recipient {
    /// The address as compared: case-insensitive.
    pub fn key(&self) -> String {
        self.email.to_string().to_lowercase()
    }

    /// Whether this release is for them: topics intersect (or they take everything) and the
    /// language matches if they set one, both ways (SPEC §4: `sv-SE` receives `sv`).
    /// Someone not on the list (a test send's address): no name, no preferences.
    pub fn unlisted(email: Address) -> Recipient {
        Recipient {
            email,
            name: String::new(),
            outlet: String::new(),
            lang: None,
            topics: Vec::new(),
            line: 0,
        }
    }

    pub fn wants(&self, release: &Release) -> bool {
        let topics =
            self.topics.is_empty() || self.topics.iter().any(|t| release.topics.contains(t));
        let lang = self
            .lang
            .as_ref()
            .is_none_or(|l| l.covers(&release.lang) || release.lang.covers(l));
        topics && lang
    }
}

#[derive(Debug, Clone, Default)]
pub struct MediaList {
    pub recipients: Vec<Recipient>,
    /// The file is missing or could not be read: nobody is known to be on it, which is
    /// not the same as knowing that nobody is (a save that replaces the file, a share
    /// that is gone). Mail waits rather than cancel everyone as no longer listed.
    pub unreadable: Option<String>,
}

const COLUMNS: [&str; 5] = ["email", "name", "outlet", "lang", "topics"];

impl MediaList {
    pub fn load(path: &Path) -> (MediaList, Vec<Diagnostic>) {
        match std::fs::read(path) {
            Ok(bytes) => MediaList::parse(path, &bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (
                MediaList {
                    unreadable: Some(format!("{} is missing", path.display())),
                    ..MediaList::default()
                },
                vec![
                    Diagnostic::file(path, "there is no media list: nobody will be mailed")
                        .warning(),
                ],
            ),
            Err(e) => (
                MediaList {
                    unreadable: Some(format!("cannot read {}: {e}", path.display())),
                    ..MediaList::default()
                },
                vec![Diagnostic::file(
                    path,
                    format!("cannot read the media list: {e}"),
                )],
            ),
        }
    }

    pub fn parse(path: &Path, bytes: &[u8]) -> (MediaList, Vec<Diagnostic>) {
        let mut diags = Vec::new();
        let bytes = bytes.strip_prefix("\u{feff}".as_bytes()).unwrap_or(bytes);
        let Ok(text) = std::str::from_utf8(bytes) else {
            diags.push(
                Diagnostic::file(path, "the media list is not UTF-8")
                    .expected("a CSV file saved as UTF-8"),
            );
            return (MediaList::default(), diags);
        };
        let src = SourceText::whole(path, text);
        let header_line = text.lines().next().unwrap_or("");
        let delimiter = if header_line.matches(';').count() > header_line.matches(',').count() {
            b';'
        } else {
            b','
        };
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .flexible(true)
            .trim(csv::Trim::All)
            .from_reader(text.as_bytes());
        let columns: Vec<Option<usize>> = match reader.headers() {
            Ok(headers) => {
                let names: Vec<String> = headers.iter().map(|h| h.to_lowercase()).collect();
                for (i, name) in names.iter().enumerate() {
                    if !COLUMNS.contains(&name.as_str()) {
                        let d =
                            src.error(0..0, format!("unknown column `{name}` (column {})", i + 1));
                        let hint = crate::schema::did_you_mean(name, &COLUMNS).map_or_else(
                            || format!("columns {}", COLUMNS.join(",")),
                            |best| format!("did you mean `{best}`?"),
                        );
                        diags.push(d.expected(hint).warning());
                    }
                }
                COLUMNS
                    .iter()
                    .map(|c| names.iter().position(|n| n == c))
                    .collect()
            }
            Err(e) => {
                diags.push(Diagnostic::file(
                    path,
                    format!("cannot read the header: {e}"),
                ));
                return (MediaList::default(), diags);
            }
        };
        if columns[0].is_none() {
            diags.push(
                src.error(0..0, "the media list has no `email` column")
                    .expected(format!("a first line {}", COLUMNS.join(","))),
            );
            return (MediaList::default(), diags);
        }
        let mut seen: HashMap<String, usize> = HashMap::new();
        let mut list = MediaList::default();
        for row in reader.records() {
            let row = match row {
                Ok(row) => row,
                Err(e) => {
                    let line = e.position().map_or(0, |p| p.line() as usize);
                    diags.push(row_error(path, line, format!("unreadable row: {e}")));
                    continue;
                }
            };
            let line = row.position().map_or(0, |p| p.line() as usize);
            let field = |i: usize| {
                columns[i]
                    .and_then(|c| row.get(c))
                    .unwrap_or("")
                    .to_string()
            };
            if row.iter().all(str::is_empty) {
                continue;
            }
            match recipient(&field(0), field(1), field(2), &field(3), &field(4), line) {
                Ok(r) => {
                    if let Some(first) = seen.get(&r.key()) {
                        diags.push(
                            row_error(
                                path,
                                line,
                                format!("{} is already on line {first}; counted once", r.email),
                            )
                            .warning(),
                        );
                        continue;
                    }
                    seen.insert(r.key(), line);
                    list.recipients.push(r);
                }
                Err((message, expected)) => {
                    diags.push(row_error(path, line, message).expected(expected))
                }
            }
        }
        (list, diags)
    }

    /// Everyone this release is for, in list order.
    pub fn targets<'a>(&'a self, release: &'a Release) -> impl Iterator<Item = &'a Recipient> + 'a {
        self.recipients.iter().filter(|r| r.wants(release))
    }
}

fn row_error(path: &Path, line: usize, message: String) -> Diagnostic {
    let mut d = Diagnostic::file(path, message);
    d.line = line.max(1);
    d
}

fn recipient(
    email: &str,
    name: String,
    outlet: String,
    lang: &str,
    topics: &str,
    line: usize,
) -> Result<Recipient, (String, String)> {
    let email: Address = email.parse().map_err(|e| {
        (
            format!("`{email}` is not an email address: {e}"),
            "an address like anna@example.org".to_string(),
        )
    })?;
    if name.chars().any(char::is_control) || outlet.chars().any(char::is_control) {
        return Err((
            "a name contains a line break".into(),
            "one line per field".into(),
        ));
    }
    let lang = match lang {
        "" => None,
        l => Some(LangTag::parse(l).map_err(|e| {
            (
                format!("`{l}`: {e}"),
                "a language tag like sv or en".to_string(),
            )
        })?),
    };
    let topics = topics
        .split([';', '|'])
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| {
            Topic::parse(t)
                .map_err(|e| (e, "topic names like jamstalldhet|prostitution".to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Recipient {
        email,
        name,
        outlet,
        lang,
        topics,
        line,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> (MediaList, Vec<String>) {
        let (list, diags) = MediaList::parse(Path::new("media.csv"), text.as_bytes());
        (list, diags.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn excel_semicolons_with_a_bom() {
        let (list, diags) = parse(
            "\u{feff}email;name;outlet;lang;topics\r\nanna@example.org;Anna;Tidningen;sv;jamstalldhet|prostitution\r\n",
        );
        assert!(diags.is_empty(), "{diags:?}");
        assert_eq!(list.recipients.len(), 1);
        assert_eq!(list.recipients[0].topics.len(), 2);
    }

    #[test]
    fn bad_rows_are_reported_and_skipped_duplicates_count_once() {
        let (list, diags) = parse(
            "email,name\nanna@example.org,Anna\nnot-an-address,Bo\nANNA@example.org,Anna igen\n",
        );
        assert_eq!(list.recipients.len(), 1, "{diags:?}");
        assert!(
            diags[0].starts_with("media.csv:3:1: `not-an-address` is not an email address"),
            "{diags:?}"
        );
        assert!(
            diags[1].starts_with("media.csv:4:1: warning: ANNA@example.org is already on line 2"),
            "{diags:?}"
        );
    }
}
