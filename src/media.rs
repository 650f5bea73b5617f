//! The media list `config/media.csv`, as spreadsheets export it: UTF-8 with or without a
//! BOM, `,` or `;` separated, columns `email,name,outlet,lang,topics` (topics `;`- or
//! `|`-separated; empty means everything). A bad row is reported with its line and skipped;
//! a repeated address (case-insensitive) counts once. Who of it a release is for, and why
//! each other row is not (`exclusion`), is decided here, once, for every place that asks.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use lettre::Address;
use lettre::message::{Mailbox, Mailboxes};

use crate::diagnostic::{Diagnostic, Location, SourceText};
use chrono::{DateTime, Utc};

use crate::ledger::{Audience, AudienceRow, DeliveryState, LedgerError, SubscriberRow};
use crate::release::{LangTag, Release, Topic};
use crate::subscriber::{Delivery, Wants};

/// Someone of the audience: a row of the media list, or a journalist who subscribed
/// themselves (`own`: their choices, which win over a media-list row of the same address).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    pub email: Address,
    pub name: String,
    pub outlet: String,
    /// If any, only releases in one of these languages reach them.
    pub langs: Vec<LangTag>,
    /// Empty: every release.
    pub topics: Vec<Topic>,
    /// Each release as it is published, or the daily digest (a media-list row: each).
    pub delivery: Delivery,
    /// They paused their subscription (the preferences page): nothing reaches them.
    pub paused: bool,
    /// The choices are their own (they subscribed on the newsroom), not the office's row.
    pub own: bool,
    /// The line of the media list it came from (0 for a subscriber's own choices).
    pub line: usize,
}

impl Recipient {
    /// The address as compared: case-insensitive.
    pub fn key(&self) -> String {
        self.email.to_string().to_lowercase()
    }

    /// Someone not on the list (a test send's address): no name, no preferences.
    pub fn unlisted(email: Address) -> Recipient {
        Recipient {
            email,
            name: String::new(),
            outlet: String::new(),
            langs: Vec::new(),
            topics: Vec::new(),
            delivery: Delivery::Each,
            paused: false,
            own: false,
            line: 0,
        }
    }

    /// A confirmed subscriber, with their own choices; None for a row no writer of ours
    /// made (an address lettre cannot read back).
    pub fn subscriber(row: &SubscriberRow) -> Option<Recipient> {
        let wants = Wants::from_choices(&row.choices);
        let email: Address = row.email.parse().ok()?;
        addressable(&email).then(|| Recipient {
            email,
            name: row.name.clone(),
            outlet: row.outlet.clone(),
            langs: wants.langs,
            topics: wants.topics,
            delivery: wants.delivery,
            paused: row.paused,
            own: true,
            line: 0,
        })
    }

    /// The row as the ledger's audience stores it.
    pub fn to_row(&self) -> AudienceRow {
        AudienceRow {
            address: self.key(),
            email: self.email.to_string(),
            name: self.name.clone(),
            outlet: self.outlet.clone(),
            lang: (!self.langs.is_empty()).then(|| {
                self.langs
                    .iter()
                    .map(LangTag::as_str)
                    .collect::<Vec<_>>()
                    .join("|")
            }),
            topics: self
                .topics
                .iter()
                .map(Topic::name)
                .collect::<Vec<_>>()
                .join("|"),
            line: self.line as u64,
            delivery: self.delivery.as_str().to_string(),
            paused: self.paused,
            own: self.own,
        }
    }

    /// A row of the ledger's audience, read back: what `to_row` wrote comes back the same;
    /// anything else (a row no parser of ours wrote) is None.
    pub fn from_row(row: &AudienceRow) -> Option<Recipient> {
        let mut r = recipient(
            &row.email,
            row.name.clone(),
            row.outlet.clone(),
            row.lang.as_deref().unwrap_or(""),
            &row.topics,
            usize::try_from(row.line).unwrap_or(0),
        )
        .ok()?;
        r.delivery = Delivery::parse(&row.delivery).unwrap_or_default();
        r.paused = row.paused;
        r.own = row.own;
        Some(r)
    }

    /// Whether this release is for them as each release is mailed, opt-outs and the
    /// ledger aside (`exclusion`).
    pub fn wants(&self, release: &Release) -> bool {
        exclusion(release, Some(self), false, None).is_none()
    }
}

/// Why someone is not mailed a release. Every place that decides who is mailed asks
/// `exclusion`: the dispatch decided at publication (`targets`), a manual send, the check at
/// hand-off, the dry run and `schedule`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exclusion {
    /// They unsubscribed.
    OptedOut,
    /// The address is not (or no longer) a row of the media list, nor a subscriber.
    NotListed,
    /// They paused their subscription.
    Paused,
    /// They take releases another way: the daily digest rather than each release, or the
    /// other way round.
    Delivery(Delivery),
    /// They take some topics, and the release is about none of them.
    Topics {
        takes: Vec<Topic>,
        release: Vec<Topic>,
    },
    /// They read languages the release is not in (for none of them does either tag
    /// cover the other).
    Language {
        reads: Vec<LangTag>,
        release: LangTag,
    },
    /// The ledger holds this version of the release for them already, in a state that
    /// does not wait to be sent.
    Mailed(DeliveryState),
}

impl Exclusion {
    /// The reasons in the order `exclusion` tries them, by `kind`.
    pub const KINDS: [&'static str; 7] = [
        "opted out",
        "not on the media list",
        "paused",
        "takes another delivery",
        "topics do not match",
        "language does not match",
        "already mailed",
    ];

    /// The reason without its particulars, one of `KINDS`: what `schedule` counts.
    pub fn kind(&self) -> &'static str {
        Self::KINDS[self.rank()]
    }

    fn rank(&self) -> usize {
        match self {
            Exclusion::OptedOut => 0,
            Exclusion::NotListed => 1,
            Exclusion::Paused => 2,
            Exclusion::Delivery(_) => 3,
            Exclusion::Topics { .. } => 4,
            Exclusion::Language { .. } => 5,
            Exclusion::Mailed(_) => 6,
        }
    }
}

impl fmt::Display for Exclusion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = |topics: &[Topic]| {
            topics
                .iter()
                .map(Topic::name)
                .collect::<Vec<_>>()
                .join(", ")
        };
        match self {
            Exclusion::OptedOut => f.write_str("opted out"),
            Exclusion::NotListed => f.write_str("no longer on the media list"),
            Exclusion::Paused => f.write_str("paused their subscription"),
            Exclusion::Delivery(Delivery::Digest) => f.write_str("takes the daily digest"),
            Exclusion::Delivery(Delivery::Each) => {
                f.write_str("takes each release, not the digest")
            }
            Exclusion::Topics { takes, release } if release.is_empty() => write!(
                f,
                "topics do not match: takes {}; the release has no topic",
                names(takes)
            ),
            Exclusion::Topics { takes, release } => write!(
                f,
                "topics do not match: takes {}; the release is about {}",
                names(takes),
                names(release)
            ),
            Exclusion::Language { reads, release } => write!(
                f,
                "language does not match: reads {}, the release is in {release}",
                reads
                    .iter()
                    .map(LangTag::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Exclusion::Mailed(DeliveryState::Failed) => {
                f.write_str("already mailed (failed; `send --retry-failed` tries again)")
            }
            Exclusion::Mailed(DeliveryState::Cancelled) => f.write_str(
                "already mailed (cancelled before it left; `pressroom report` says why)",
            ),
            Exclusion::Mailed(state) => write!(f, "already mailed ({})", state.as_str()),
        }
    }
}

/// Why `release` is not mailed now to an address as each release is, or `None` if it is:
/// `exclusion_in` for `Delivery::Each`.
pub fn exclusion(
    release: &Release,
    listed: Option<&Recipient>,
    opted_out: bool,
    mailed: Option<DeliveryState>,
) -> Option<Exclusion> {
    exclusion_in(Delivery::Each, release, listed, opted_out, mailed)
}

/// Why `release` is not mailed now to an address by `channel` (each release, or in the
/// daily digest), or `None` if it is. `listed` is the address's place in the audience
/// (their own choices if they subscribed, else their media-list row), `opted_out` whether
/// they unsubscribed, `mailed` the ledger's state of this version for them, if any
/// (queued, deferred and unknown wait to be sent: not a reason). Topics intersect or they
/// take everything; languages match by RFC 4647 basic filtering both ways, if they chose
/// any (SPEC §4: `sv-SE` receives `sv`). Pure; the reasons are tried in the order of
/// `Exclusion::KINDS`.
pub fn exclusion_in(
    channel: Delivery,
    release: &Release,
    listed: Option<&Recipient>,
    opted_out: bool,
    mailed: Option<DeliveryState>,
) -> Option<Exclusion> {
    if opted_out {
        return Some(Exclusion::OptedOut);
    }
    let Some(r) = listed else {
        return Some(Exclusion::NotListed);
    };
    if r.paused {
        return Some(Exclusion::Paused);
    }
    if r.delivery != channel {
        return Some(Exclusion::Delivery(r.delivery));
    }
    if let Some(why) = wanted(release, &r.topics, &r.langs) {
        return Some(why);
    }
    match mailed {
        Some(
            state @ (DeliveryState::Sent
            | DeliveryState::Sending
            | DeliveryState::Failed
            | DeliveryState::Cancelled),
        ) => Some(Exclusion::Mailed(state)),
        Some(DeliveryState::Queued | DeliveryState::Deferred | DeliveryState::Unknown) | None => {
            None
        }
    }
}

/// Whether choices of topics and languages take `release` (None) or why not: a topic in
/// common, compared by slug (none chosen: every topic), and a language either way by
/// RFC 4647 basic filtering (none chosen: every language). The part of `exclusion_in`
/// about the release's content, also what a digest asks of each release it could hold.
pub fn wanted(release: &Release, topics: &[Topic], langs: &[LangTag]) -> Option<Exclusion> {
    // Topics compare by slug: `miljö`, `Miljö` and `MILJO` on the list all take "Miljö".
    let takes = |t: &Topic| release.topics.iter().any(|u| u.slug() == t.slug());
    if !topics.is_empty() && !topics.iter().any(takes) {
        return Some(Exclusion::Topics {
            takes: topics.to_vec(),
            release: release.topics.clone(),
        });
    }
    if !langs.is_empty()
        && !langs
            .iter()
            .any(|reads| reads.covers(&release.lang) || release.lang.covers(reads))
    {
        return Some(Exclusion::Language {
            reads: langs.to_vec(),
            release: release.lang.clone(),
        });
    }
    None
}

/// How many a release reaches and how many each reason leaves out, for `schedule` and the
/// dry run's last line; invalid rows of the media list counted apart.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    pub targeted: usize,
    pub excluded: [usize; Exclusion::KINDS.len()],
    pub invalid: usize,
}

impl Tally {
    pub fn add(&mut self, exclusion: Option<&Exclusion>) {
        match exclusion {
            None => self.targeted += 1,
            Some(e) => self.excluded[e.rank()] += 1,
        }
    }

    /// `1 opted out, 2 topics do not match, 1 invalid row`, or `none`.
    pub fn exclusions(&self) -> String {
        let mut parts: Vec<String> = Exclusion::KINDS
            .iter()
            .zip(self.excluded)
            .filter(|(_, n)| *n > 0)
            .map(|(kind, n)| format!("{n} {kind}"))
            .collect();
        match self.invalid {
            0 => {}
            1 => parts.push("1 invalid row".into()),
            n => parts.push(format!("{n} invalid rows")),
        }
        if parts.is_empty() {
            "none".into()
        } else {
            parts.join(", ")
        }
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

/// A row read, unless its address is on the list already (counted once, a warning at the
/// repeat): `seen` holds each address with the line it was first on.
fn first(
    r: Recipient,
    seen: &mut HashMap<String, usize>,
    path: &Path,
    diags: &mut Vec<Diagnostic>,
) -> Option<Recipient> {
    if let Some(line) = seen.get(&r.key()) {
        diags.push(repeated(path, &r.email, r.line, *line));
        return None;
    }
    seen.insert(r.key(), r.line);
    Some(r)
}

impl MediaList {
    /// The media list at `path`, for a site in `site`'s language (which makes some
    /// languages unlikely: `LangTag::advice`). Read row by row (`read`), gathered here.
    pub fn load(path: &Path, site: &LangTag) -> (MediaList, Vec<Diagnostic>) {
        let mut list = MediaList::default();
        let diags = std::cell::RefCell::new(Vec::new());
        let mut seen: HashMap<String, usize> = HashMap::new();
        let read = read(
            path,
            site,
            &mut |r| {
                list.recipients
                    .extend(first(r, &mut seen, path, &mut diags.borrow_mut()))
            },
            &mut |d| diags.borrow_mut().push(d),
        );
        let mut diags = diags.into_inner();
        if let Err(unreadable) = read {
            diags.push(unreadable.diagnostic(path));
            return (
                MediaList {
                    unreadable: Some(unreadable.why),
                    ..MediaList::default()
                },
                diags,
            );
        }
        (list, diags)
    }

    /// A media list in memory (`bytes`, as the file at `path` would hold them).
    pub fn parse(path: &Path, bytes: &[u8], site: &LangTag) -> (MediaList, Vec<Diagnostic>) {
        let mut list = MediaList::default();
        let diags = std::cell::RefCell::new(Vec::new());
        let mut seen: HashMap<String, usize> = HashMap::new();
        let bytes = bytes.strip_prefix(BOM).unwrap_or(bytes);
        let snippet = |start: usize| {
            let end = bytes.len().min(start.saturating_add(SNIPPET));
            String::from_utf8_lossy(bytes.get(start..end).unwrap_or(&[])).into_owned()
        };
        let _ = read_rows(
            path,
            bytes,
            &snippet,
            site,
            &mut |r| {
                list.recipients
                    .extend(first(r, &mut seen, path, &mut diags.borrow_mut()))
            },
            &mut |d| diags.borrow_mut().push(d),
        );
        (list, diags.into_inner())
    }

    /// What `check` needs of the list: how many recipients it has and every problem in
    /// it, read row by row. Only the addresses are kept (to find repeats), not the rows, so
    /// a list of a million rows is checked in a fraction of the memory `load` takes.
    pub fn check(path: &Path, site: &LangTag) -> (usize, Vec<Diagnostic>) {
        let mut recipients = 0;
        let diags = std::cell::RefCell::new(Vec::new());
        let mut seen: HashMap<String, usize> = HashMap::new();
        let read = read(
            path,
            site,
            &mut |r| {
                if first(r, &mut seen, path, &mut diags.borrow_mut()).is_some() {
                    recipients += 1;
                }
            },
            &mut |d| diags.borrow_mut().push(d),
        );
        let mut diags = diags.into_inner();
        if let Err(unreadable) = read {
            diags.push(unreadable.diagnostic(path));
        }
        (recipients, diags)
    }

    /// The audience as the command line reads it: this list with each confirmed
    /// subscriber's own choices in place of their row (their choices win over the
    /// office's), and the subscribers not on it after the rows. Rows no writer of ours
    /// made are left out.
    pub fn with_subscribers(mut self, subscribers: &[SubscriberRow]) -> MediaList {
        let mut own: HashMap<String, Recipient> = subscribers
            .iter()
            .filter_map(|s| Some((s.address.clone(), Recipient::subscriber(s)?)))
            .collect();
        for r in &mut self.recipients {
            if let Some(theirs) = own.remove(&r.key()) {
                *r = theirs;
            }
        }
        let mut rest: Vec<Recipient> = own.into_values().collect();
        rest.sort_by_key(Recipient::key);
        self.recipients.extend(rest);
        self
    }

    /// Everyone this release is for, in list order.
    pub fn targets<'a>(&'a self, release: &'a Release) -> impl Iterator<Item = &'a Recipient> + 'a {
        self.recipients.iter().filter(|r| r.wants(release))
    }

    /// The row of an address (compared case-insensitively, as `Recipient::key`).
    pub fn find(&self, key: &str) -> Option<&Recipient> {
        self.recipients.iter().find(|r| r.key() == key)
    }
}

const BOM: &[u8] = "\u{feff}".as_bytes();

/// How much of the file from a row's start a diagnostic reads to find its column.
const SNIPPET: usize = 64 * 1024;

/// Why the media list could not be read at all: nobody is known to be on it.
#[derive(Debug, Clone)]
pub struct Unreadable {
    pub why: String,
    missing: bool,
}

impl Unreadable {
    pub fn diagnostic(&self, path: &Path) -> Diagnostic {
        if self.missing {
            Diagnostic::file(path, "there is no media list: nobody will be mailed").warning()
        } else {
            Diagnostic::file(path, format!("cannot read the media list: {}", self.why))
        }
    }
}

/// The warning for a repeated address.
pub fn repeated(path: &Path, email: &impl fmt::Display, line: usize, first: usize) -> Diagnostic {
    row_error(
        path,
        line,
        format!("{email} is already on line {first}; counted once"),
    )
    .warning()
}

/// A row whose address was erased at the journalist's request: left out of the audience
/// (never mailed again), and the office asked to take it off the list. The address is not
/// repeated in the message: the log is no place to keep what was erased.
pub fn erased(path: &Path, line: usize) -> Diagnostic {
    row_error(
        path,
        line,
        "erased at their request; remove it from media.csv".to_string(),
    )
    .warning()
}

/// Reads the media list at `path` row by row, streaming from the file (a list of a
/// million rows is never in memory whole): each valid row to `row`, each problem to
/// `diag`, in file order. Repeated addresses are the caller's to count once. An error
/// when the file is missing or cannot be opened; false when its header cannot be used (no
/// row was read).
pub fn read(
    path: &Path,
    site: &LangTag,
    row: &mut dyn FnMut(Recipient),
    diag: &mut dyn FnMut(Diagnostic),
) -> Result<bool, Unreadable> {
    use std::io::BufRead;
    use std::os::unix::fs::FileExt;
    let file = std::fs::File::open(path).map_err(|e| Unreadable {
        missing: e.kind() == std::io::ErrorKind::NotFound,
        why: if e.kind() == std::io::ErrorKind::NotFound {
            format!("{} is missing", path.display())
        } else {
            format!("cannot read {}: {e}", path.display())
        },
    })?;
    let mut input = std::io::BufReader::with_capacity(SNIPPET, &file);
    let has_bom = input
        .fill_buf()
        .map_err(|e| Unreadable {
            missing: false,
            why: format!("cannot read {}: {e}", path.display()),
        })?
        .starts_with(BOM);
    let base = if has_bom {
        input.consume(BOM.len());
        BOM.len() as u64
    } else {
        0
    };
    // A diagnostic's column is found in the text from its row's start, read again from
    // the file: rare, and nothing of the file is kept meanwhile.
    let snippet = |start: usize| {
        let mut buf = vec![0; SNIPPET];
        let n = file.read_at(&mut buf, base + start as u64).unwrap_or(0);
        buf.truncate(n);
        String::from_utf8_lossy(&buf).into_owned()
    };
    Ok(read_rows(path, input, &snippet, site, row, diag))
}

/// Rows written to the ledger per transaction when the list is synced: a request to the
/// ledger's owner waits at most one such batch (a few milliseconds).
pub const SYNC_BATCH: usize = 5_000;

/// What a sync did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Synced {
    /// The file was read whole and its rows are what readers see now.
    Rows { rows: u64, errors: usize },
    /// The file could not be read: the rows read before stay, and mail waits.
    Unreadable(String),
    /// Stopped (`keep_going` said so) before the switch: readers still see the old rows.
    Stopped,
}

/// Reads the media list at `path` row by row into the ledger's audience (source
/// `media`), `SYNC_BATCH` rows per transaction, as a new generation that readers see only
/// once the last batch is written (`Ledger::switch_audience`); then deletes the old one,
/// in batches too. Memory stays at a batch, whatever the size of the list. Every problem
/// goes to `diag`, as `check` reports it (a repeated address is found by the ledger).
pub fn sync(
    path: &Path,
    site: &LangTag,
    ledger: &mut dyn Audience,
    keep_going: &dyn Fn() -> bool,
    diag: &mut dyn FnMut(Diagnostic),
    at: DateTime<Utc>,
) -> Result<Synced, LedgerError> {
    use crate::ledger::{MEDIA, Skipped};
    let stamp = stamp(path);
    let generation = ledger.begin_audience(MEDIA)?;
    let mut batch: Vec<AudienceRow> = Vec::with_capacity(SYNC_BATCH);
    let mut failed: Option<LedgerError> = None;
    let mut errors = 0usize;
    let mut stopped = false;
    // Both the rows (a repeated address, found as a batch is written) and the parser
    // report problems, in file order.
    let diag = std::cell::RefCell::new(diag);
    let flush =
        |batch: &mut Vec<AudienceRow>, ledger: &mut dyn Audience| -> Result<(), LedgerError> {
            let emails: HashMap<u64, String> =
                batch.iter().map(|r| (r.line, r.email.clone())).collect();
            let repeats = ledger.write_audience(MEDIA, generation, std::mem::take(batch))?;
            for skipped in repeats {
                let d = match skipped {
                    Skipped::Repeated { line, first } => {
                        let email = emails.get(&line).map_or("", String::as_str);
                        repeated(path, &email, line as usize, first as usize)
                    }
                    Skipped::Erased { line } => erased(path, line as usize),
                };
                (diag.borrow_mut())(d);
            }
            Ok(())
        };
    let read = read(
        path,
        site,
        &mut |r| {
            if failed.is_some() || stopped {
                return;
            }
            batch.push(r.to_row());
            if batch.len() >= SYNC_BATCH {
                if !keep_going() {
                    stopped = true;
                    return;
                }
                if let Err(e) = flush(&mut batch, ledger) {
                    failed = Some(e);
                }
            }
        },
        &mut |d| {
            if d.is_error() {
                errors += 1;
            }
            (diag.borrow_mut())(d)
        },
    );
    if let Some(e) = failed {
        return Err(e);
    }
    if stopped {
        return Ok(Synced::Stopped);
    }
    match read {
        Err(unreadable) => {
            (diag.borrow_mut())(unreadable.diagnostic(path));
            ledger.audience_unreadable(MEDIA, &unreadable.why)?;
            return Ok(Synced::Unreadable(unreadable.why));
        }
        // A file whose header cannot be read (not UTF-8, no `email` column: often one
        // being written) says nothing of who is on the list: the last list read stays,
        // and mail waits, rather than everyone counting as taken off it.
        Ok(false) => {
            let why = format!("{} has no usable header", path.display());
            ledger.audience_unreadable(MEDIA, &why)?;
            return Ok(Synced::Unreadable(why));
        }
        Ok(true) => {}
    }
    flush(&mut batch, ledger)?;
    ledger.switch_audience(MEDIA, generation, stamp, at)?;
    while keep_going() && ledger.prune_audience(MEDIA, SYNC_BATCH)? > 0 {}
    let rows = ledger.audience_state(MEDIA)?.rows;
    Ok(Synced::Rows { rows, errors })
}

/// How the file looks (device, inode, size, modification time), recorded with the rows
/// read from it: a file that looks otherwise has changed since.
pub fn stamp(path: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some(format!(
        "{}:{}:{}:{}.{:09}",
        m.dev(),
        m.ino(),
        m.size(),
        m.mtime(),
        m.mtime_nsec()
    ))
}

/// The one parser of media-list rows, over any input whose BOM is gone: the header (which
/// also decides the delimiter), then each row. `snippet(start)` is the text from byte
/// `start` of the input, for a diagnostic's column. False when the header cannot be used
/// (not UTF-8, no `email` column): no row was read.
fn read_rows(
    path: &Path,
    mut input: impl std::io::BufRead,
    snippet: &dyn Fn(usize) -> String,
    site: &LangTag,
    on_row: &mut dyn FnMut(Recipient),
    diag: &mut dyn FnMut(Diagnostic),
) -> bool {
    let head = match input.fill_buf() {
        Ok(buf) => buf,
        Err(e) => {
            diag(Diagnostic::file(
                path,
                format!("cannot read the media list: {e}"),
            ));
            return false;
        }
    };
    let header_line = head.split(|b| *b == b'\n').next().unwrap_or(&[]);
    let Ok(header_line) = std::str::from_utf8(header_line) else {
        diag(
            Diagnostic::file(path, "the media list is not UTF-8")
                .expected("a CSV file saved as UTF-8"),
        );
        return false;
    };
    let delimiter = if header_line.matches(';').count() > header_line.matches(',').count() {
        b';'
    } else {
        b','
    };
    let header_src = header_line.to_string();
    let src = SourceText::whole(path, &header_src);
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(input);
    let columns: Vec<Option<usize>> = match reader.headers() {
        Ok(headers) => {
            let names: Vec<String> = headers.iter().map(|h| h.to_lowercase()).collect();
            for (i, name) in names.iter().enumerate() {
                if !COLUMNS.contains(&name.as_str()) {
                    let d = src.error(0..0, format!("unknown column `{name}` (column {})", i + 1));
                    let hint = crate::schema::did_you_mean(name, &COLUMNS).map_or_else(
                        || format!("columns {}", COLUMNS.join(",")),
                        |best| format!("did you mean `{best}`?"),
                    );
                    diag(d.expected(hint).warning());
                }
            }
            COLUMNS
                .iter()
                .map(|c| names.iter().position(|n| n == c))
                .collect()
        }
        Err(e) => {
            diag(Diagnostic::file(
                path,
                format!("cannot read the header: {e}"),
            ));
            return false;
        }
    };
    if columns[0].is_none() {
        diag(
            src.error(0..0, "the media list has no `email` column")
                .expected(format!("a first line {}", COLUMNS.join(","))),
        );
        return false;
    }
    let mut record = csv::StringRecord::new();
    loop {
        match reader.read_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line() as usize);
                diag(row_error(path, line, format!("unreadable row: {e}")));
                // A row that is not UTF-8 is skipped; anything else ends the reading.
                if matches!(e.kind(), csv::ErrorKind::Utf8 { .. }) {
                    continue;
                }
                break;
            }
        }
        let row = &record;
        let line = row.position().map_or(0, |p| p.line() as usize);
        // Where column `i` of this row is written, for a diagnostic at its line and
        // column (the first column when the list has no such column). Counted from the
        // row's start, not the file's: a list of 10,000 rows with a warning on each stays
        // linear.
        let at = |i: usize| {
            let start = row.position().map_or(0, |p| p.byte() as usize);
            let text = snippet(start);
            let field = field_start(&text, 0, columns[i].unwrap_or(0), delimiter);
            let before = text.get(..field).unwrap_or("");
            let (line, from) = match before.rfind('\n') {
                Some(nl) => (line + before.matches('\n').count(), &before[nl + 1..]),
                None => (line, before),
            };
            Location {
                path: path.to_path_buf(),
                line: line.max(1),
                col: from.chars().count() + 1,
            }
        };
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
                if let Some(warning) = r.langs.iter().find_map(|l| l.advice(site)) {
                    diag(at(3).error(warning).warning());
                }
                on_row(r);
            }
            Err(RowError {
                column,
                message,
                expected,
            }) => diag(at(column).error(message).expected(expected)),
        }
    }
    true
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

/// The byte offset in `text` where field `index` of the record that starts at byte `start`
/// begins: past `index` delimiters outside quotes, then past the spaces the reader trims
/// and an opening quote, where the value itself is written.
fn field_start(text: &str, start: usize, index: usize, delimiter: u8) -> usize {
    let bytes = text.as_bytes();
    let (mut at, mut field, mut quoted) = (start, 0, false);
    while at < bytes.len() && field < index {
        match bytes[at] {
            b'"' => quoted = !quoted,
            b'\n' if !quoted => break,
            b if b == delimiter && !quoted => field += 1,
            _ => {}
        }
        at += 1;
    }
    while at < bytes.len() && matches!(bytes[at], b' ' | b'\t') {
        at += 1;
    }
    // Past a quoted field's opening quote only: `""` inside it is a quote of the text.
    if bytes.get(at) == Some(&b'"') {
        at += 1;
    }
    at
}

/// A row that is not a recipient: what is wrong, in which column (of `COLUMNS`).
struct RowError {
    column: usize,
    message: String,
    expected: String,
}

fn recipient(
    email: &str,
    name: String,
    outlet: String,
    lang: &str,
    topics: &str,
    line: usize,
) -> Result<Recipient, RowError> {
    let email: Address = email.parse().map_err(|e| RowError {
        column: 0,
        message: format!("`{email}` is not an email address: {e}"),
        expected: "an address like anna@example.org".to_string(),
    })?;
    if !addressable(&email) {
        return Err(RowError {
            column: 0,
            message: format!(
                "`{email}` cannot be mailed: a quoted local part does not survive the To: header"
            ),
            expected: "an address like anna@example.org".to_string(),
        });
    }
    for (column, text) in [(1, &name), (2, &outlet)] {
        if text.chars().any(char::is_control) {
            return Err(RowError {
                column,
                message: format!("`{}` contains a line break", COLUMNS[column]),
                expected: "one line per field".into(),
            });
        }
    }
    let langs = lang
        .split([';', '|'])
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| {
            LangTag::parse(l).map_err(|e| RowError {
                column: 3,
                message: format!("`{l}`: {e}"),
                expected: "a language tag like sv or en".to_string(),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let topics = topics
        .split([';', '|'])
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| {
            Topic::parse(t).map_err(|message| RowError {
                column: 4,
                message,
                expected: "topic names like Jämställdhet|Prostitution".to_string(),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Recipient {
        email,
        name,
        outlet,
        langs,
        topics,
        delivery: Delivery::Each,
        paused: false,
        own: false,
        line,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> (MediaList, Vec<String>) {
        let site = LangTag::parse("sv").unwrap();
        let (list, diags) = MediaList::parse(Path::new("media.csv"), text.as_bytes(), &site);
        (list, diags.iter().map(ToString::to_string).collect())
    }

    /// A list saved without its header (half written, or another file) says nothing of who
    /// is on it: the list read before stays what readers see, marked unreadable so mail
    /// waits, instead of everyone counting as taken off it.
    #[test]
    fn a_list_whose_header_cannot_be_read_keeps_the_last_list_and_holds_mail() {
        use crate::ledger::{Ledger, MEDIA};
        let dir = tempfile::tempdir().unwrap();
        let mut l = Ledger::open_in(dir.path()).unwrap();
        let site = LangTag::parse("sv").unwrap();
        let at = "2018-10-18T07:00:00Z".parse().unwrap();
        let path = dir.path().join("media.csv");
        let sync = |l: &mut Ledger| sync(&path, &site, l, &|| true, &mut |_| {}, at).unwrap();
        std::fs::write(
            &path,
            "email,name\nanna@example.org,Anna\nbo@example.org,Bo\n",
        )
        .unwrap();
        assert_eq!(sync(&mut l), Synced::Rows { rows: 2, errors: 0 });
        std::fs::write(&path, "anna@example.org,Anna\n").unwrap();
        assert!(matches!(sync(&mut l), Synced::Unreadable(_)));
        let state = l.audience_state(MEDIA).unwrap();
        assert!(state.unreadable.is_some(), "{state:?}");
        assert_eq!(state.rows, 2);
        let listed = l.listed(MEDIA, &["bo@example.org".to_string()]).unwrap();
        assert!(listed.contains_key("bo@example.org"));
        std::fs::write(&path, "email\nbo@example.org\n").unwrap();
        assert_eq!(sync(&mut l), Synced::Rows { rows: 1, errors: 0 });
        assert_eq!(l.audience_state(MEDIA).unwrap().unreadable, None);
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
                "media.csv:3:4: `\"quoted local\"@example.org` cannot be mailed: a quoted local part"
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

    fn row(lang: &str, topics: &str) -> Recipient {
        recipient(
            "anna@example.org",
            "Anna".into(),
            String::new(),
            lang,
            topics,
            2,
        )
        .unwrap_or_else(|e| panic!("{}", e.message))
    }

    fn swedish_release(topics: &[&str]) -> Release {
        let mut r = crate::planner::tests::release("du-avgor", "2018-10-18T00:00:00+02:00");
        r.topics = topics.iter().map(|t| Topic::parse(t).unwrap()).collect();
        r
    }

    /// A subscriber's own choices: several languages (any one matching), a pause, and a
    /// delivery that decides which channel reaches them; an opt-out still comes first.
    #[test]
    fn a_subscriber_is_reached_by_one_channel_in_any_language_they_chose_unless_paused() {
        let release = swedish_release(&["jamstalldhet"]);
        let mut own = row("en|sv-SE", "Jämställdhet");
        own.own = true;
        assert_eq!(
            exclusion_in(Delivery::Each, &release, Some(&own), false, None),
            None
        );
        assert_eq!(
            exclusion_in(Delivery::Digest, &release, Some(&own), false, None),
            Some(Exclusion::Delivery(Delivery::Each))
        );
        own.delivery = Delivery::Digest;
        assert_eq!(
            exclusion_in(Delivery::Digest, &release, Some(&own), false, None),
            None
        );
        assert_eq!(
            exclusion(&release, Some(&own), false, None).map(|e| e.to_string()),
            Some("takes the daily digest".to_string())
        );
        own.paused = true;
        assert_eq!(
            exclusion_in(Delivery::Digest, &release, Some(&own), false, None),
            Some(Exclusion::Paused)
        );
        assert_eq!(
            exclusion_in(Delivery::Digest, &release, Some(&own), true, None),
            Some(Exclusion::OptedOut)
        );
        let e = exclusion(&release, Some(&row("en|de", "")), false, None).unwrap();
        assert_eq!(
            e.to_string(),
            "language does not match: reads en, de, the release is in sv"
        );
    }

    #[test]
    fn each_row_is_mailed_or_left_out_for_one_reason() {
        let release = swedish_release(&["prostitution", "jamstalldhet"]);
        let why = |r: &Recipient, out: bool, state: Option<DeliveryState>| {
            exclusion(&release, Some(r), out, state).map(|e| e.to_string())
        };
        // Languages match both ways (RFC 4647 basic filtering): `sv-SE` reads `sv`.
        for mailed in [row("", ""), row("sv", ""), row("sv-SE", "jamstalldhet")] {
            assert_eq!(why(&mailed, false, None), None, "{mailed:?}");
        }
        let mut in_sv_se = release.clone();
        in_sv_se.lang = LangTag::parse("sv-SE").unwrap();
        assert_eq!(
            exclusion(&in_sv_se, Some(&row("sv", "")), false, None),
            None
        );

        assert_eq!(
            why(&row("sv", ""), true, None).as_deref(),
            Some("opted out")
        );
        assert_eq!(
            why(&row("sv", "sport|ekonomi"), false, None).as_deref(),
            Some(
                "topics do not match: takes sport, ekonomi; the release is about prostitution, jamstalldhet"
            )
        );
        assert_eq!(
            why(&row("en", ""), false, None).as_deref(),
            Some("language does not match: reads en, the release is in sv")
        );
        assert_eq!(
            why(&row("sv", ""), false, Some(DeliveryState::Sent)).as_deref(),
            Some("already mailed (sent)")
        );
        // Mail that waits is theirs still: queued, deferred, unknown.
        for waiting in [
            DeliveryState::Queued,
            DeliveryState::Deferred,
            DeliveryState::Unknown,
        ] {
            assert_eq!(why(&row("sv", ""), false, Some(waiting)), None);
        }
        assert_eq!(
            exclusion(&release, None, false, Some(DeliveryState::Queued)),
            Some(Exclusion::NotListed)
        );
        // One reason each, the first that holds: an opt-out before all else, the row's
        // wishes before the ledger.
        let e = exclusion(&release, Some(&row("en", "sport")), true, None).unwrap();
        assert_eq!(e.kind(), "opted out");
        let e = exclusion(
            &release,
            Some(&row("en", "sport")),
            false,
            Some(DeliveryState::Sent),
        )
        .unwrap();
        assert_eq!(e.kind(), "topics do not match");
        assert!(!row("en", "").wants(&release) && row("sv-SE", "").wants(&release));
    }

    #[test]
    fn topics_match_whatever_their_case_and_diacritics() {
        let release = swedish_release(&["Miljö", "Människohandel"]);
        for takes in [
            "miljö",
            "Miljö",
            "MILJO",
            "miljo",
            " MILJÖ ",
            "sport|manniskohandel",
        ] {
            assert!(row("sv", takes).wants(&release), "{takes}");
        }
        for takes in ["milj", "miljöer", "sport"] {
            assert!(!row("sv", takes).wants(&release), "{takes}");
        }
        // People read the names as written, on both sides.
        assert_eq!(
            exclusion(&release, Some(&row("", "Sport|Ekonomi")), false, None)
                .map(|e| e.to_string())
                .as_deref(),
            Some(
                "topics do not match: takes Sport, Ekonomi; the release is about Miljö, Människohandel"
            )
        );
    }

    #[test]
    fn a_tally_counts_per_reason_in_order() {
        let release = swedish_release(&["prostitution"]);
        let mut tally = Tally {
            invalid: 2,
            ..Tally::default()
        };
        for (r, out) in [
            (row("sv", ""), false),
            (row("en", ""), false),
            (row("de", ""), false),
            (row("", "sport"), false),
            (row("", ""), true),
        ] {
            tally.add(exclusion(&release, Some(&r), out, None).as_ref());
        }
        assert_eq!(tally.targeted, 1);
        assert_eq!(
            tally.exclusions(),
            "1 opted out, 1 topics do not match, 2 language does not match, 2 invalid rows"
        );
        assert_eq!(Tally::default().exclusions(), "none");
    }

    #[test]
    fn a_language_not_in_the_registry_is_an_error_at_its_column_and_a_country_code_a_warning() {
        let (list, diags) = parse(
            "email,name,outlet,lang,topics\n\
             anna@example.org,Anna,Tidningen,sv-SE,\n\
             bo@example.com,Bo,\"Radio, Ett\",swedish,\n\
             cecilia@example.org; ,Cecilia,Byrån, se ,\n",
        );
        assert_eq!(
            diags,
            [
                "media.csv:3:32: `swedish`: not a language in the IANA Language Subtag Registry (a language tag like sv or en)",
                "media.csv:4:1: `cecilia@example.org;` is not an email address: Invalid email domain (an address like anna@example.org)",
            ]
        );
        assert_eq!(list.recipients.len(), 1);
        let (list, diags) =
            parse("email;name;outlet;lang;topics\nanna@example.org;Anna;Byrån; se ;\n");
        assert_eq!(
            diags,
            [
                "media.csv:2:30: warning: `se` is the code of a language at home in NO, not the country code SE: for the site's language write `sv`"
            ]
        );
        assert_eq!(list.recipients.len(), 1, "a warning keeps the row");
    }
}
