//! The mail commands: `send`, `status` and `report`. They do the IO around the ledger and
//! the sender; every decision (who, which version, what state) is in `mail` and `ledger`.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::Path;

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};

use super::Outcome;
use super::progress::{Interrupt, Progress};
use crate::clock;
use crate::config::{Config, credentials_dir};
use crate::diagnostic::Diagnostic;
use crate::ledger::{Decided, DeliveryState, Ledger, SendLock};
use crate::mail::policy::{self, HandOff};
use crate::mail::sender::{self, Mailing, SendError, Summary};
use crate::mail::session::Session;
use crate::mail::{self};
use crate::media::{self, MediaList, Recipient, Tally};
use crate::optout::TokenKey;
use crate::planner::{self, Visibility};
use crate::release::Release;
use crate::release::identity::PinChange;

/// `send` options.
pub struct SendArgs<'a> {
    pub slug: &'a str,
    pub dry_run: bool,
    pub to: Option<&'a str>,
    pub retry_failed: bool,
    pub update: bool,
}

fn find(config: &Config, slug: &str) -> anyhow::Result<Release> {
    Ok(find_pinned(config, slug)?.0)
}

/// The release with this slug, and the pins that give it its id (for `send` to record).
fn find_pinned(config: &Config, slug: &str) -> anyhow::Result<(Release, Vec<PinChange>)> {
    let loaded = super::scan(config)?;
    match super::lookup(config, &loaded.releases, slug) {
        Ok(r) => Ok(((**r).clone(), loaded.pins)),
        Err(e) => bail!(e),
    }
}

fn local(config: &Config, t: DateTime<Utc>) -> String {
    t.with_timezone(&config.site.timezone)
        .format("%Y-%m-%d %H:%M %Z")
        .to_string()
}

/// A scratch ledger file, removed (with its WAL) when dropped.
struct Scratch(std::path::PathBuf);

impl Scratch {
    fn remove(&self) {
        for suffix in ["", "-wal", "-shm"] {
            let mut name = self.0.clone().into_os_string();
            name.push(suffix);
            let _ = std::fs::remove_file(name);
        }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        self.remove();
    }
}

pub fn send(config: &Config, args: SendArgs<'_>) -> anyhow::Result<Outcome> {
    let (release, pins) = find_pinned(config, args.slug)?;
    let now = clock::now();
    match planner::visibility(&release, now) {
        Visibility::Public => {}
        Visibility::Embargoed { until } => bail!(
            "`{}` is embargoed until {}: nothing is mailed before",
            args.slug,
            local(config, until)
        ),
        Visibility::Draft => bail!("`{}` is a draft: drafts are never mailed", args.slug),
        Visibility::Withdrawn { .. } | Visibility::WithdrawnUnpublished => {
            bail!("`{}` is withdrawn", args.slug)
        }
    }
    if let Some(to) = args.to {
        return test_send(config, &release, to, args.dry_run);
    }
    // A dry run does everything a send would do up to the sending, on a copy of the
    // ledger: it shows exactly what a send would mail and changes nothing. (Declared
    // first, so the copy's file outlives its connection.)
    let scratch = args.dry_run.then(|| {
        let scratch = Scratch(
            config
                .paths
                .state
                .join(format!(".dry-run-{}.db", std::process::id())),
        );
        // One a killed dry run left behind.
        scratch.remove();
        scratch
    });
    let mut ledger = Ledger::open_in(&config.paths.state)?;
    let _lock = match &scratch {
        Some(scratch) => {
            ledger = ledger.copy_to(&scratch.0)?;
            None
        }
        None => Some(SendLock::acquire(&config.paths.state)?),
    };
    // The id this release is mailed under stays its file's, whatever the office edits.
    ledger.pin(&pins)?;
    let interrupted = ledger.mark_interrupted(now)?;
    if interrupted > 0 {
        eprintln!(
            "{interrupted} deliveries were in flight when a previous send stopped: marked unknown, they are sent again with the same Message-ID"
        );
    }
    // The dry run lists every row left out and why: it reads the list whole. A send reads
    // it into the ledger row by row (`media::sync`), queues from there a batch at a time
    // and checks each claimed batch against it at hand-off: its memory does not grow with
    // the list.
    let (media, media_diags) = if args.dry_run {
        let (media, diags) = MediaList::load(&config.paths.media, &config.site.lang);
        (media.with_subscribers(&ledger.all_subscribers()?), diags)
    } else {
        (MediaList::default(), Vec::new())
    };
    let invalid: Vec<&Diagnostic> = media_diags.iter().filter(|d| d.is_error()).collect();
    let unreadable = if args.dry_run {
        media.unreadable.clone()
    } else {
        let synced = media::sync(
            &config.paths.media,
            &config.site.lang,
            &mut ledger,
            &|| true,
            &mut |d| {
                if d.is_error() {
                    eprintln!("{d}");
                }
            },
            now,
        )?;
        match synced {
            media::Synced::Unreadable(why) => Some(why),
            media::Synced::Rows { .. } | media::Synced::Stopped => None,
        }
    };
    if let Some(why) = unreadable {
        // Who is targeted cannot be told: nothing is queued, sent or cancelled.
        bail!("{why}: nothing was sent");
    }
    let opted_out = ledger.opted_out()?;
    let domain = config.mail.from.email.domain().to_string();

    let (version, originals) = if args.update {
        let originals: HashMap<String, String> = ledger
            .deliveries(&release.id)?
            .into_iter()
            .filter(|d| d.version == 1 && d.state == DeliveryState::Sent)
            .map(|d| (d.address, d.message_id))
            .collect();
        let latest = ledger.latest_dispatch(&release.id)?;
        let latest_version = latest.as_ref().map_or(0, |(v, _, _)| *v);
        let version = match latest {
            None => bail!(
                "`{}` was never mailed: send it first, without --update",
                args.slug
            ),
            Some((v, _, hash)) if hash == release.content_hash && v > 1 => v,
            Some((1, _, hash)) if hash == release.content_hash => {
                bail!(
                    "`{}` has not changed since it was mailed: edit it first",
                    args.slug
                )
            }
            Some((v, _, _)) => v + 1,
        };
        // A new version is decided with its deliveries, in one transaction.
        let decided = (version > latest_version).then_some(Decided {
            kind: "update",
            content_hash: &release.content_hash,
        });
        let who = originals
            .keys()
            .filter(|a| !opted_out.contains(a))
            .map(|a| {
                (
                    a.clone(),
                    mail::message_id(&release.id, a, version, &domain),
                )
            });
        ledger.queue(&release.id, version, decided, who, now)?;
        (version, originals)
    } else if !args.dry_run {
        // Decided, then filled from the media list as just read, a batch per transaction;
        // a dispatch decided before (by the daemon, or an earlier send) is walked again
        // for anyone added to the list since. Nobody is queued twice.
        ledger.refill(&release.id, 1, "manual", &release.content_hash, now)?;
        crate::publish::fill(&mut ledger, config, &release, 1, &|| true, now)?;
        (1, HashMap::new())
    } else {
        // Streamed into the ledger: the dispatch is never held in memory whole.
        let addresses = media.targets(&release).map(|r| r.key());
        let who = addresses.filter(|a| !opted_out.contains(a)).map(|a| {
            let id = mail::message_id(&release.id, &a, 1, &domain);
            (a, id)
        });
        let decided = Decided {
            kind: "manual",
            content_hash: &release.content_hash,
        };
        ledger.queue(&release.id, 1, Some(decided), who, now)?;
        (1, HashMap::new())
    };
    if args.retry_failed {
        let n = ledger.requeue_failed(&release.id, version, now)?;
        eprintln!("{n} failed deliveries queued again");
    }
    if args.dry_run {
        let listing = DryRun {
            release: &release,
            version,
            media: &media,
            invalid: &invalid,
            opted_out: &opted_out,
            // A correction's audience is who received the original: the rest of the list
            // is not left out of it, it was never in it.
            by_list: !args.update,
        };
        listing.print(&ledger)?;
        return Ok(Outcome::Ok);
    }
    // Counted, not loaded: memory stays flat in the number of recipients.
    let waiting = ledger.waiting(&release.id, version, None)?;
    if waiting == 0 {
        eprintln!(
            "nothing to send: everyone targeted has been mailed `{}`",
            args.slug
        );
        return Ok(Outcome::Ok);
    }
    let key = TokenKey::load_or_create(&config.paths.state, credentials_dir().as_deref())?;
    let session = Session::open(config, credentials_dir().as_deref())?;
    let dispatch = Mailing {
        config,
        templates: &session.templates,
        key: &key,
        listing: sender::Listing::Ledger,
        release: &release,
        version,
        originals,
        signer: session.signer.as_ref(),
    };
    let progress = Progress::new(waiting);
    // From here a Ctrl-C stops the run between two messages rather than the process.
    let interrupt = Interrupt::listen(&session.runtime, progress.notice())
        .context("cannot listen for Ctrl-C")?;
    let result = sender::run(
        &dispatch,
        &mut ledger,
        &session.transport,
        &session.runtime,
        true,
        &|s| progress.update(s),
        &|| interrupt.signal().is_none(),
    );
    progress.finish();
    let report = |summary: &Summary| {
        eprintln!(
            "`{}`{}: {} sent, {} deferred (retried later), {} failed, {} cancelled",
            args.slug,
            if version > 1 {
                format!(" (correction {})", version - 1)
            } else {
                String::new()
            },
            summary.sent,
            summary.deferred,
            summary.failed,
            summary.cancelled
        )
    };
    match result {
        Ok(summary) => {
            report(&summary);
            match interrupt.signal() {
                None => Ok(Outcome::Ok),
                Some(signal) => {
                    let left = ledger.waiting(&release.id, version, None)?;
                    eprintln!("interrupted: {left} wait for the next send");
                    Ok(if signal == libc::SIGTERM {
                        Outcome::Terminated
                    } else {
                        Outcome::Interrupted
                    })
                }
            }
        }
        // A configuration problem, not the recipients': nobody is marked failed.
        Err(SendError::Refused { refusal, summary }) => {
            report(&summary);
            bail!(
                "{refusal}\nsending stopped: the deliveries not sent wait in the ledger; correct [mail] in {} and run `pressroom send {}` again",
                config
                    .file
                    .as_deref()
                    .unwrap_or(Path::new(crate::config::DEFAULT_PATH))
                    .display(),
                args.slug
            )
        }
        Err(SendError::Ledger(e)) => Err(e.into()),
        Err(e @ SendError::NoText(_)) => Err(e.into()),
    }
}

/// What `send --dry-run` shows: who would be mailed (the deliveries a send would hand
/// over), then every media-list row left out and why (`media::exclusion`, the rule the
/// send itself follows at hand-off), then the rows that are not valid.
struct DryRun<'a> {
    release: &'a Release,
    version: u32,
    media: &'a MediaList,
    invalid: &'a [&'a Diagnostic],
    opted_out: &'a crate::ledger::OptedOut,
    by_list: bool,
}

impl DryRun<'_> {
    fn print(&self, ledger: &Ledger) -> anyhow::Result<()> {
        let rows: HashMap<String, &Recipient> =
            self.media.recipients.iter().map(|r| (r.key(), r)).collect();
        let deliveries: Vec<_> = ledger
            .deliveries(&self.release.id)?
            .into_iter()
            .filter(|d| d.version == self.version)
            .collect();
        let mut out = std::io::stdout().lock();
        let mut tally = Tally {
            invalid: self.invalid.len(),
            ..Tally::default()
        };
        let mut waits = HashSet::new();
        let mut excluded = Vec::new();
        for d in &deliveries {
            if !matches!(
                d.state,
                DeliveryState::Queued | DeliveryState::Unknown | DeliveryState::Deferred
            ) {
                continue;
            }
            waits.insert(d.address.as_str());
            // What the send will decide as it hands the message over.
            let listed = rows.get(&d.address).copied();
            let why = match policy::hand_off(self.release, &d.address, self.opted_out, listed) {
                HandOff::Send(_) => None,
                HandOff::Cancel(why) => Some(why),
            };
            tally.add(why.as_ref());
            match why {
                None => writeln!(out, "{}\t{}\t{}", d.address, d.state.as_str(), d.message_id)?,
                Some(why) => excluded.push((d.address.as_str(), why)),
            }
        }
        if self.by_list {
            let states: HashMap<&str, DeliveryState> = deliveries
                .iter()
                .map(|d| (d.address.as_str(), d.state))
                .collect();
            for r in &self.media.recipients {
                let key = r.key();
                if waits.contains(key.as_str()) {
                    continue;
                }
                let opted_out = self.opted_out.contains(&key);
                let state = states.get(key.as_str()).copied();
                if let Some(why) = media::exclusion(self.release, Some(r), opted_out, state) {
                    tally.add(Some(&why));
                    writeln!(out, "{key}\texcluded\t{why}")?;
                }
            }
        }
        for (address, why) in excluded {
            writeln!(out, "{address}\texcluded\t{why}")?;
        }
        for d in self.invalid {
            let at = format!("{}:{}:{}", d.path.display(), d.line, d.col);
            let expected = d.expected.as_deref().map(|e| format!(" ({e})"));
            let message = format!("{}{}", d.message, expected.unwrap_or_default());
            writeln!(out, "{at}\tinvalid\t{message}")?;
        }
        eprintln!(
            "{} would be mailed (dry run: nothing sent); excluded: {}",
            tally.targeted,
            tally.exclusions()
        );
        Ok(())
    }
}

/// `send SLUG --to ADDRESS`: one test message, at once, to any address (the press
/// officer's own, usually), greeted by name if the media list has it. It carries its own
/// Message-ID and is recorded as a test: never added to the release's dispatch, never
/// counted as a recipient, never taken for the real mail, which the address (if targeted)
/// still gets. An address that opted out is not mailed, not even a test.
fn test_send(
    config: &Config,
    release: &Release,
    to: &str,
    dry_run: bool,
) -> anyhow::Result<Outcome> {
    let email: lettre::Address = to
        .trim()
        .parse()
        .with_context(|| format!("`{to}` is not an email address"))?;
    let address = email.to_string().to_lowercase();
    let mut ledger = Ledger::open_in(&config.paths.state)?;
    if ledger.is_opted_out(&address)? {
        bail!(
            "{address} unsubscribed: not even a test is mailed to it (`pressroom resubscribe` if they asked)"
        );
    }
    if dry_run {
        super::say!("{address}\ttest");
        eprintln!("1 test message would be sent (dry run: nothing sent)");
        return Ok(Outcome::Ok);
    }
    let (media, _) = MediaList::load(&config.paths.media, &config.site.lang);
    let recipient = media
        .recipients
        .iter()
        .find(|r| r.key() == address)
        .cloned()
        .unwrap_or_else(|| crate::media::Recipient::unlisted(email));
    let key = TokenKey::load_or_create(&config.paths.state, credentials_dir().as_deref())?;
    let session = Session::open(config, credentials_dir().as_deref())?;
    let now = clock::now();
    let domain = config.mail.from.email.domain().to_string();
    let message_id = mail::test_message_id(&release.id, &address, now, &domain);
    let mailing = Mailing {
        config,
        templates: &session.templates,
        key: &key,
        listing: sender::Listing::Loaded(&media),
        release,
        version: 1,
        originals: HashMap::new(),
        signer: session.signer.as_ref(),
    };
    let sent = sender::send_test(
        &mailing,
        &session.transport,
        &session.runtime,
        &recipient,
        message_id.clone(),
    )?;
    let (outcome, result) = match sent {
        Ok(policy::Attempt::Accepted(reply)) => (format!("sent: {reply}"), Ok(Outcome::Ok)),
        Ok(policy::Attempt::Transient(reply)) => (
            format!("deferred: {reply}"),
            Err(anyhow::anyhow!(
                "the server did not take the test message for now: {reply}"
            )),
        ),
        Ok(policy::Attempt::Permanent(reply)) => (
            format!("failed: {reply}"),
            Err(anyhow::anyhow!(
                "the server refused the test message: {reply}"
            )),
        ),
        Err(refusal) => (format!("refused: {refusal}"), Err(refusal.into())),
    };
    ledger.record_test_send(&release.id, &address, &message_id, now, &outcome)?;
    if result.is_ok() {
        eprintln!(
            "a test of `{}` was sent to {address} ({message_id}); it is not a delivery of the release",
            release.slug
        );
    }
    result
}

#[derive(serde::Serialize)]
struct StatusLine {
    slug: String,
    title: String,
    state: &'static str,
    date: String,
    until: Option<String>,
    mail: Vec<(String, u64)>,
    /// Published too long after its date to be mailed automatically.
    late: bool,
    /// The release's file, when it does not parse (`held` or `broken`).
    #[serde(skip_serializing_if = "Option::is_none")]
    file: Option<String>,
}

pub fn status(config: &Config, json: bool) -> anyhow::Result<Outcome> {
    let ledger = Ledger::open_in(&config.paths.state)?;
    let loaded = super::scan_in(config, &ledger)?;
    let now = clock::now();
    let mut lines = Vec::new();
    let mut releases: Vec<&Release> = loaded.releases.iter().map(|r| &**r).collect();
    releases.sort_by(|a, b| planner::newest_first(a, b));
    for r in releases {
        let (state, until) = match planner::visibility(r, now) {
            Visibility::Draft => ("draft", None),
            Visibility::Embargoed { until } => ("embargoed", Some(local(config, until))),
            Visibility::Public => ("public", None),
            Visibility::Withdrawn { .. } | Visibility::WithdrawnUnpublished => ("withdrawn", None),
        };
        let mut mail: Vec<(String, u64)> = ledger
            .counts(&r.id)?
            .into_iter()
            .map(|(s, n)| (s.as_str().to_string(), n))
            .collect();
        mail.sort();
        lines.push(StatusLine {
            slug: r.slug.to_string(),
            title: r.title.clone(),
            state,
            date: local(config, r.date),
            until,
            mail,
            late: ledger
                .latest_dispatch(&r.id)?
                .is_some_and(|(_, kind, _)| kind == "late"),
            file: None,
        });
    }
    // Files that do not parse. One the ledger never saw public is held: nothing of it is
    // published or mailed until it is fixed. One it saw public keeps its last good output
    // in the running daemon (this command cannot read that version).
    let notices = ledger.history()?.notices;
    for failing in &loaded.failing {
        let slug = failing
            .page
            .as_deref()
            .and_then(|p| p.strip_prefix("releases/"))
            .map_or("", |p| p.trim_end_matches('/'))
            .to_string();
        let published = notices
            .iter()
            .find(|(_, n)| !slug.is_empty() && n.slug == slug);
        let mut mail: Vec<(String, u64)> = match published {
            Some((id, _)) => ledger
                .counts(id)?
                .into_iter()
                .map(|(s, n)| (s.as_str().to_string(), n))
                .collect(),
            None => Vec::new(),
        };
        mail.sort();
        lines.push(StatusLine {
            title: published.map(|(_, n)| n.title.clone()).unwrap_or_default(),
            date: published
                .map(|(_, n)| local(config, n.date))
                .unwrap_or_default(),
            slug,
            state: if published.is_some() {
                "broken"
            } else {
                "held"
            },
            until: None,
            mail,
            late: false,
            file: Some(failing.file.display().to_string()),
        });
    }
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, &lines)?;
        writeln!(out)?;
        return Ok(Outcome::Ok);
    }
    for l in &lines {
        let state = match (&l.until, l.state) {
            (Some(until), _) => format!("embargoed until {until}"),
            (None, "public") => format!("public since {}", l.date),
            (None, "held") => "held: not published until it is fixed".to_string(),
            (None, "broken") => "public, its last good version kept".to_string(),
            (None, s) => s.to_string(),
        };
        let mail = if l.mail.is_empty() && l.late {
            "not mailed automatically (first seen too late)".to_string()
        } else if l.mail.is_empty() {
            "not mailed".to_string()
        } else {
            l.mail
                .iter()
                .map(|(s, n)| format!("{n} {s}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        writeln!(out, "{:<28} {:<40} mail: {mail}", l.slug, state)?;
        if let Some(file) = &l.file {
            writeln!(
                out,
                "{:<28} {file} does not parse: `pressroom check` says why",
                ""
            )?;
        }
    }
    // The daily digests, all periods together (`report` is per release).
    let mut digests = ledger.digest_counts()?;
    if !digests.is_empty() {
        digests.sort_by_key(|(state, _)| state.as_str());
        let counts: Vec<String> = digests
            .iter()
            .map(|(state, n)| format!("{n} {}", state.as_str()))
            .collect();
        writeln!(
            out,
            "{:<28} {:<40} mail: {}",
            "(digests)",
            "",
            counts.join(", ")
        )?;
    }
    Ok(Outcome::Ok)
}

pub fn report(config: &Config, slug: &str, csv_out: bool) -> anyhow::Result<Outcome> {
    let release = find(config, slug)?;
    let ledger = Ledger::open_in(&config.paths.state)?;
    let rows = ledger.deliveries(&release.id)?;
    let out = std::io::stdout().lock();
    if csv_out {
        let mut w = csv::Writer::from_writer(out);
        w.write_record([
            "address",
            "version",
            "state",
            "attempts",
            "queued_at",
            "sent_at",
            "reply",
            "message_id",
        ])?;
        for d in &rows {
            w.write_record([
                d.address.as_str(),
                &d.version.to_string(),
                d.state.as_str(),
                &d.attempts.to_string(),
                &d.queued_at.to_rfc3339(),
                &d.sent_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
                d.last_reply.as_deref().unwrap_or(""),
                &d.message_id,
            ])?;
        }
        w.flush()?;
        // The data stays rows a spreadsheet reads; the totals are for the person.
        for line in totals(&rows) {
            eprintln!("{line}");
        }
        return Ok(Outcome::Ok);
    }
    let mut out = out;
    for d in &rows {
        let when = d
            .sent_at
            .map(|t| local(config, t))
            .unwrap_or_else(|| "-".into());
        writeln!(
            out,
            "{:<36} {:<13} {:<9} {:<20} {}",
            d.address,
            version_name(d.version),
            d.state.as_str(),
            when,
            d.last_reply.as_deref().unwrap_or("")
        )?;
    }
    if rows.is_empty() {
        writeln!(out, "`{slug}` has not been mailed")?;
    } else {
        writeln!(out)?;
        for line in totals(&rows) {
            writeln!(out, "{line}")?;
        }
    }
    Ok(Outcome::Ok)
}

/// `original`, `correction 1`, …
fn version_name(version: u32) -> String {
    if version > 1 {
        format!("correction {}", version - 1)
    } else {
        "original".into()
    }
}

/// One line per version: `original: 5 messages: 3 sent, 1 failed, 1 queued`, the states in
/// the ledger's order, those with none left out.
fn totals(rows: &[crate::ledger::Delivery]) -> Vec<String> {
    let mut versions: Vec<u32> = rows.iter().map(|d| d.version).collect();
    versions.sort_unstable();
    versions.dedup();
    versions
        .into_iter()
        .map(|v| {
            let of: Vec<&crate::ledger::Delivery> =
                rows.iter().filter(|d| d.version == v).collect();
            let states: Vec<String> = DeliveryState::ALL
                .iter()
                .map(|s| (s, of.iter().filter(|d| d.state == *s).count()))
                .filter(|(_, n)| *n > 0)
                .map(|(s, n)| format!("{n} {}", s.as_str()))
                .collect();
            format!(
                "{}: {}: {}",
                version_name(v),
                super::count(of.len(), "message"),
                states.join(", ")
            )
        })
        .collect()
}
