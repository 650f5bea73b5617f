//! The media list `config/media.csv`, as spreadsheets export it: UTF-8 with or without a
//! BOM, `,` or `;` separated, columns `email,name,outlet,lang,topics` (topics `;`- or
//! `|`-separated; empty means everything). A bad row is reported with its line and skipped;
//! a repeated address (case-insensitive) counts once.

use std::collections::HashMap;
use std::path::Path;

use lettre::Address;
use lettre::message::{Mailbox, Mailboxes};

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
            let start = row.position().map_or(0, |p| p.byte() as usize);
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
                Err((column, message, expected)) => {
                    let mut d = row_error(path, line, message).expected(expected);
                    let raw = text.get(start..).unwrap_or("");
                    d.col = columns[column].map_or(1, |i| field_column(raw, delimiter, i));
                    diags.push(d)
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

/// The 1-based column (in characters) where field `index` of the row starting `raw` begins:
/// delimiters inside quotes do not count.
fn field_column(raw: &str, delimiter: u8, index: usize) -> usize {
    let mut field = 0;
    let mut quoted = false;
    for (col, c) in raw.chars().enumerate() {
        if field == index {
            return col + 1;
        }
        match c {
            '"' => quoted = !quoted,
            '\n' | '\r' if !quoted => break,
            c if !quoted && c as u32 == u32::from(delimiter) => field += 1,
            _ => {}
        }
    }
    1
}

/// Whether mail can be addressed to `email`. lettre makes a message's envelope by reading
/// its `To:` header back, and its header parser does not read every address its address
/// parser accepts: a quoted local part (`"quoted local"@example.org`) comes back without
/// its quotes, is no address, and every send to it would fail. So the address is written
/// as `To:` writes it and read back, and must come back the same.
pub fn addressable(email: &Address) -> bool {
    Mailbox::new(None, email.clone())
        .to_string()
        .parse::<Mailboxes>()
        .is_ok_and(|back| back.into_iter().map(|m| m.email).eq([email.clone()]))
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
) -> Result<Recipient, (usize, String, String)> {
    let like = || "an address like anna@example.org".to_string();
    let email: Address = email
        .parse()
        .map_err(|e| (0, format!("`{email}` is not an email address: {e}"), like()))?;
    if !addressable(&email) {
        return Err((
            0,
            format!(
                "`{email}` cannot be mailed: a quoted local part does not survive the To: header"
            ),
            like(),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err((
            1,
            "a name contains a line break".into(),
            "one line per field".into(),
        ));
    }
    if outlet.chars().any(char::is_control) {
        return Err((
            2,
            "an outlet contains a line break".into(),
            "one line per field".into(),
        ));
    }
    let lang = match lang {
        "" => None,
        l => Some(LangTag::parse(l).map_err(|e| {
            (
                3,
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
            Topic::parse(t).map_err(|e| {
                (
                    4,
                    e,
                    "topic names like jamstalldhet|prostitution".to_string(),
                )
            })
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
    fn a_quoted_local_part_is_an_error_at_its_line_and_column() {
        let (list, diags) = parse(
            "name,email\nAnna,anna@example.org\nQ,\"\"\"quoted local\"\"@example.org\"\nBo;Ek,bo@example.org,\n",
        );
        assert_eq!(list.recipients.len(), 2, "{diags:?}");
        assert_eq!(diags.len(), 1, "{diags:?}");
        assert!(
            diags[0].starts_with(
                "media.csv:3:3: `\"quoted local\"@example.org` cannot be mailed: a quoted local part"
            ),
            "{diags:?}"
        );
    }

    /// Whatever the media list takes, lettre takes too, as a whole address and as its
    /// parts, and reads back from a `To:` header: `check` never passes an address that
    /// then fails at every send. (`mail::compose` proves the whole message on top.)
    #[test]
    fn every_address_the_list_accepts_is_one_lettre_can_send_to() {
        let tricky = [
            "anna@example.org",
            "\"quoted local\"@example.org",
            "\"quoted\"@example.org",
            "\"a\\\"b\"@example.org",
            "a.b+tag@example.org",
            "a..b@example.org",
            ".a@example.org",
            "a.@example.org",
            "a b@example.org",
            "a(comment)@example.org",
            "a@b@example.org",
            "<a@example.org>",
            "Anna <a@example.org>",
            "a,b@example.org",
            "a;b@example.org",
            "a'b@example.org",
            "!#$%&'*+-/=?^_`{|}~@example.org",
            "åsa@example.org",
            "anna@exämple.org",
            "anna@xn--exmple-cua.org",
            "anna@[127.0.0.1]",
            "anna@[IPv6:::1]",
            "anna@localhost",
            "anna@-example.org",
            "anna@example..org",
            "anna@example.org.",
            "@example.org",
            "anna@",
            "",
        ];
        let long = format!("{}@example.org", "a".repeat(65));
        let longer = format!("anna@{}.org", "d".repeat(300));
        let mut accepted = 0;
        for email in tricky
            .iter()
            .copied()
            .chain([long.as_str(), longer.as_str()])
        {
            let Ok(r) = recipient(email, String::new(), String::new(), "", "", 2) else {
                continue;
            };
            accepted += 1;
            let back: Address = r.email.to_string().parse().expect("parses again");
            assert_eq!(back, r.email);
            assert!(
                Address::new(r.email.user(), r.email.domain()).is_ok(),
                "{email}: lettre refuses its parts"
            );
            assert!(addressable(&r.email), "{email}");
            assert!(
                !r.email.user().starts_with('"'),
                "{email}: a quoted local part"
            );
        }
        assert!(
            accepted >= 8,
            "too few accepted to prove anything: {accepted}"
        );
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
