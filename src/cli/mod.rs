//! The command line: arguments parsed into typed values once, then one function per
//! command. Exit codes: 0 success, 1 the input has errors (reported), 2 usage or IO failure,
//! 130 and 143 a `send` stopped by SIGINT or SIGTERM (see `main.rs`).

use std::path::PathBuf;

use anyhow::Context;
use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand};

use crate::build::{BuildReport, Builder, Recording};
use crate::catalog::{self, Catalog, Loaded};
use crate::clock;
use crate::config::{Config, ConfigInvalid, credentials_dir};
use crate::diagnostic::Diagnostic;
use crate::ledger::{Ledger, OptOutSource, PublisherLock};
mod from_mail;
mod mail;
mod progress;
mod subscribers;

use crate::ledger::Recorded;
use crate::mail::{Kind, Letter};
use crate::media::MediaList;
use crate::optout::TokenKey;
use crate::publish::{Committed, Deleted};
use crate::render::Templates;
use crate::time;

#[derive(Parser, Debug)]
#[command(
    name = "pressroom",
    version,
    about = "Publishes press releases as pages, feeds and mail, on the minute."
)]
pub struct Args {
    /// The config file; default config/pressroom.toml, or built-in defaults if it is absent.
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Validate the config, the media list and every release.
    Check,
    /// Build the site once, as of now or of --at.
    Build {
        /// Build as of this instant: RFC 3339, or a local date-time in the site's zone.
        #[arg(long, value_name = "TIME")]
        at: Option<String>,
        /// Write here instead of the configured public folder.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
    /// The daemon: build, watch the folders, publish on the minute, mail inside the window,
    /// serve the site over HTTP. Stops on SIGTERM; SIGHUP reloads the config.
    Run {
        /// Log lines as text for people, or JSON for a log collector.
        #[arg(long, value_enum, default_value = "human")]
        log_format: crate::log::Format,
    },
    /// Create a new release file (a draft) in the releases folder and print its path.
    New {
        /// The release's title.
        title: String,
        /// When its embargo lifts: a date (at the site's publish_time), a local date-time
        /// in the site's zone, or RFC 3339. Default: now.
        #[arg(long, value_name = "DATE")]
        date: Option<String>,
        /// Its topics as people write them, separated by commas: --topics "Miljö,Människohandel".
        #[arg(long, value_name = "TOPICS", value_delimiter = ',')]
        topics: Vec<String>,
    },
    /// Show the mail of a release exactly as it would be sent.
    Preview {
        #[arg(help = RELEASE_HELP, value_name = "RELEASE")]
        slug: String,
        /// Whose copy: an address on the media list, or any address for a test.
        #[arg(long, value_name = "EMAIL")]
        recipient: Option<String>,
        /// Only the plain-text part.
        #[arg(long, conflicts_with_all = ["html", "eml"])]
        text: bool,
        /// Only the HTML part.
        #[arg(long, conflicts_with_all = ["text", "eml"])]
        html: bool,
        /// The whole message as it goes on the wire (RFC 5322).
        #[arg(long, conflicts_with_all = ["text", "html"])]
        eml: bool,
    },
    /// Mail a release now, to everyone targeted the ledger has not yet mailed it to.
    Send {
        #[arg(help = RELEASE_HELP, value_name = "RELEASE")]
        slug: String,
        /// Show who would be mailed; send nothing.
        #[arg(long)]
        dry_run: bool,
        /// Mail only this address (a test send, or one journalist).
        #[arg(long, value_name = "EMAIL")]
        to: Option<String>,
        /// Try again the deliveries that failed permanently.
        #[arg(long)]
        retry_failed: bool,
        /// Mail the edited release as a correction to those who received the original.
        #[arg(long)]
        update: bool,
    },
    /// The publications and mail that would happen, without doing them.
    Schedule {
        /// From this instant (default now): RFC 3339, or a local date-time in the site's zone.
        #[arg(long, value_name = "TIME")]
        from: Option<String>,
        /// Until this instant (default 30 days after --from).
        #[arg(long, value_name = "TIME")]
        until: Option<String>,
    },
    /// Each release's state and its mail.
    Status {
        /// One JSON document, for scripts, instead of lines for people.
        #[arg(long)]
        json: bool,
    },
    /// Who got which version of a release, when, with the server's reply; then the totals.
    Report {
        #[arg(help = RELEASE_HELP, value_name = "RELEASE")]
        slug: String,
        /// Comma-separated values for a spreadsheet on stdout (the totals go to stderr).
        #[arg(long)]
        csv: bool,
    },
    /// Stop mailing an address (recorded in the ledger; nothing is ever mailed to it again).
    Unsubscribe {
        /// The address, as on the media list (case does not matter).
        #[arg(required_unless_present = "from_mail")]
        email: Option<String>,
        /// Read one mail on stdin (an MTA's pipe, e.g. a Postfix alias
        /// `| pressroom unsubscribe --from-mail`) and record the opt-out its Subject's token
        /// names. Exit 0 also for a mail without a valid token (it is ignored, with a line
        /// on stderr), 75 (EX_TEMPFAIL: the MTA tries again) when it cannot be recorded.
        #[arg(long, conflicts_with = "email")]
        from_mail: bool,
    },
    /// Mail an address again after it unsubscribed.
    Resubscribe {
        /// The address, as on the media list (case does not matter).
        email: String,
    },
    /// Journalists who subscribed themselves, and anyone's data: list, export, erase.
    Subscribers {
        #[command(subcommand)]
        action: subscribers::Action,
    },
}

/// How a release is named on the command line.
const RELEASE_HELP: &str = "The release: its slug (du-avgor) or its file, as `new` printed it (releases/2018-10-18-du-avgor.md; the folder and .md may be left out)";

/// A command's results on stdout. A write that fails (a reader that went away: `report |
/// head`) is an error the command returns, which `run` ends quietly.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)?
    }};
}
pub(crate) use say;

/// What a command ended with, as an exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok = 0,
    InputErrors = 1,
    /// `send` stopped by Ctrl-C (SIGINT), after what was in flight was recorded.
    Interrupted = 130,
    /// `unsubscribe --from-mail` could not record an opt-out: EX_TEMPFAIL (sysexits.h),
    /// which an MTA answers by trying the mail again later.
    TryAgain = 75,
    /// `send` stopped by SIGTERM, likewise.
    Terminated = 143,
}

/// Runs a command. A reader of its output that went away before the end (`pressroom
/// report x | head -1`) ends it quietly with success, as ripgrep does: the reader has what
/// it wanted, and no "Broken pipe" lands in the terminal.
pub fn run(args: Args) -> anyhow::Result<Outcome> {
    let from_mail = matches!(
        args.command,
        Command::Unsubscribe {
            from_mail: true,
            ..
        }
    );
    match command(args) {
        Err(e) if closed_stdout(&e) => Ok(Outcome::Ok),
        // An MTA bounces a mail its pipe refuses (exit 1 or 2) and retries one it is told to
        // try again: a config being edited, or a ledger that cannot be opened, must not lose
        // the opt-out the mail carries.
        Err(e) if from_mail => {
            eprintln!("pressroom: {e:#}; the mail is to be tried again");
            Ok(Outcome::TryAgain)
        }
        Ok(Outcome::InputErrors) if from_mail => Ok(Outcome::TryAgain),
        done => done,
    }
}

/// Whether an error is a write to a pipe nobody reads any more.
fn closed_stdout(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        let io = cause.downcast_ref::<std::io::Error>().or_else(|| {
            match cause.downcast_ref::<csv::Error>().map(csv::Error::kind) {
                Some(csv::ErrorKind::Io(io)) => Some(io),
                _ => None,
            }
        });
        io.is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

fn command(args: Args) -> anyhow::Result<Outcome> {
    let (config, config_diags) = match crate::mail::load_config(args.config.as_deref()) {
        Ok(loaded) => loaded,
        Err(e) => match e.downcast::<ConfigInvalid>() {
            Ok(ConfigInvalid(diags)) => {
                print_diags(&diags);
                eprintln!("the config has errors: nothing was done");
                return Ok(Outcome::InputErrors);
            }
            Err(e) => return Err(e),
        },
    };
    print_diags(&config_diags);
    match args.command {
        Command::Check => check(&config),
        Command::Run { log_format } => {
            crate::log::init(log_format);
            crate::daemon::run(args.config.clone(), config)?;
            Ok(Outcome::Ok)
        }
        Command::Build { at, out } => {
            let recording = if at.is_some() {
                Recording::ReadOnly
            } else {
                Recording::Record
            };
            let at = instant(&config, at.as_deref())?;
            // While `pressroom run` publishes from this state folder, a build for now would
            // write its site and ledger behind its back (under a wrong clock, early): only
            // a build elsewhere that records nothing is allowed.
            let publisher = match (recording, &out) {
                (Recording::ReadOnly, _) => None,
                (Recording::Record, _) => match PublisherLock::acquire(&config.paths.state) {
                    Ok(lock) => Some(lock),
                    Err(e @ crate::ledger::LockError::Publishing { .. }) if out.is_none() => {
                        anyhow::bail!(
                            "{e}: it has built the site already (`pressroom status` shows it); `pressroom build --out DIR` builds a copy elsewhere and records nothing"
                        )
                    }
                    Err(crate::ledger::LockError::Publishing { .. }) => None,
                    Err(e) => return Err(e.into()),
                },
            };
            let recording = match (&publisher, recording) {
                (None, Recording::Record) => {
                    eprintln!(
                        "`pressroom run` is publishing from {}: this build records nothing",
                        config.paths.state.display()
                    );
                    Recording::ReadOnly
                }
                (_, recording) => recording,
            };
            let out = build_folder(&config, out, recording, at)?;
            let mut ledger = Ledger::open_in(&config.paths.state)?;
            let mut builder = Builder::new(config.clone(), out.clone())
                .with_history(ledger.history()?, recording);
            let mut report = builder.build(at)?;
            print_diags(&report.diags);
            print_build(&config, &report, report.at, &out);
            if recording == Recording::Record {
                let built_at = report.at;
                let committed = crate::publish::record(
                    &mut ledger,
                    &mut builder,
                    &config,
                    &mut report,
                    Deleted::CancelNow,
                    built_at,
                )?;
                print_committed(&committed);
            }
            Ok(outcome(&report.diags))
        }
        Command::Unsubscribe {
            from_mail: true, ..
        } => Ok(from_mail::unsubscribe(&config)),
        Command::Unsubscribe { email: None, .. } => {
            anyhow::bail!("give the address to unsubscribe, or --from-mail")
        }
        Command::Unsubscribe {
            email: Some(ref email),
            ..
        }
        | Command::Resubscribe { ref email } => {
            let address: lettre::Address = email
                .trim()
                .parse()
                .with_context(|| format!("`{email}` is not an email address"))?;
            let address = address.to_string().to_lowercase();
            let mut ledger = Ledger::open_in(&config.paths.state)?;
            let now = clock::now();
            if ledger.is_erased(&address)? {
                // Only they can lift it, from a link mailed to them (their preferences
                // page's "subscribe again", or a sign-up they confirm).
                say!(
                    "erased at their request: {address} is mailed nothing until they subscribe again themselves"
                );
                return Ok(Outcome::Ok);
            }
            let (changed, done, already) = match &args.command {
                Command::Unsubscribe { .. } => (
                    ledger.unsubscribe(&address, OptOutSource::Command, now)?,
                    "unsubscribed: nothing more will be mailed to",
                    "already unsubscribed:",
                ),
                _ => (
                    ledger.resubscribe(&address, OptOutSource::Command, now)?,
                    "resubscribed: releases will be mailed again to",
                    "not unsubscribed:",
                ),
            };
            say!("{} {address}", if changed { done } else { already });
            Ok(Outcome::Ok)
        }
        Command::Subscribers { ref action } => subscribers::run(&config, action),
        Command::Preview {
            ref slug,
            ref recipient,
            text,
            html,
            eml,
        } => preview(
            &config,
            slug,
            recipient.as_deref(),
            if eml {
                Part::Eml
            } else if html {
                Part::Html
            } else if text {
                Part::Text
            } else {
                Part::Summary
            },
        ),
        Command::Send {
            ref slug,
            dry_run,
            ref to,
            retry_failed,
            update,
        } => mail::send(
            &config,
            mail::SendArgs {
                slug,
                dry_run,
                to: to.as_deref(),
                retry_failed,
                update,
            },
        ),
        Command::Status { json } => mail::status(&config, json),
        Command::Schedule {
            ref from,
            ref until,
        } => {
            let from = instant(&config, from.as_deref())?;
            let until = match until {
                Some(u) => instant(&config, Some(u))?,
                None => from + chrono::TimeDelta::days(30),
            };
            schedule(&config, from, until)
        }
        Command::Report { ref slug, csv } => mail::report(&config, slug, csv),
        Command::New {
            title,
            date,
            topics,
        } => {
            let date = date
                .map(|d| {
                    time::Written::parse(&d)
                        .with_context(|| format!("--date {d}: expected {}", time::EXPECTED))
                })
                .transpose()?;
            let mut wanted = crate::scaffold::Wanted {
                date,
                topics: Vec::new(),
            };
            for name in topics.iter().filter(|t| !t.trim().is_empty()) {
                let topic = crate::topic::Topic::parse(name).map_err(|e| {
                    anyhow::anyhow!("--topics: {e} (expected {})", crate::topic::EXPECTED)
                })?;
                if !wanted.topics.contains(&topic) {
                    wanted.topics.push(topic);
                }
            }
            let path = crate::scaffold::create(&config, &title, &wanted, clock::now())?;
            say!("{}", path.display());
            Ok(Outcome::Ok)
        }
    }
}

/// The releases folder for a command that looks releases up in the ledger: each release
/// under the id the ledger pinned to its file, so a re-dated or renamed release is the one
/// published and mailed before. Without a ledger yet, the files' own ids.
fn scan(config: &Config) -> anyhow::Result<Loaded> {
    let path = config.paths.state.join(crate::ledger::FILE_NAME);
    let pins = if path.exists() {
        Ledger::open(&path)?.pins()?
    } else {
        Default::default()
    };
    Ok(Catalog::scan_pinned(config, pins, clock::now()))
}

/// The release a command names: by its slug, or by its file as `new` printed it
/// (`releases/2018-10-18-du-avgor.md`, with or without the folder and `.md`; a bundle's
/// folder, or its `index.md`).
pub(crate) fn lookup<'a>(
    config: &Config,
    releases: &'a [std::sync::Arc<crate::release::Release>],
    named: &str,
) -> Result<&'a std::sync::Arc<crate::release::Release>, String> {
    let by_slug = catalog::find(releases, named);
    if by_slug.is_ok() {
        return by_slug;
    }
    let stem = |path: &std::path::Path| {
        let path = if path.file_name().is_some_and(|n| n == "index.md") {
            path.parent().unwrap_or(path)
        } else {
            path
        };
        let name = path.file_name()?.to_str()?;
        Some(name.strip_suffix(".md").unwrap_or(name).to_string())
    };
    let wanted = stem(std::path::Path::new(named.trim()));
    releases
        .iter()
        .find(|r| {
            let file = r
                .source
                .strip_prefix(&config.paths.releases)
                .ok()
                .and_then(|p| p.components().next())
                .map(|c| std::path::Path::new(c.as_os_str()).to_path_buf());
            wanted.is_some() && file.as_deref().and_then(stem) == wanted
        })
        .ok_or_else(|| {
            by_slug
                .err()
                .map(|e| {
                    e.replace(
                        "no release has the slug",
                        "no release has the slug or file name",
                    )
                })
                .unwrap_or_default()
        })
}

/// The releases folder under the ids pinned in `ledger`, for a command that has it open.
fn scan_in(config: &Config, ledger: &Ledger) -> anyhow::Result<Loaded> {
    Ok(Catalog::scan_pinned(config, ledger.pins()?, clock::now()))
}

fn schedule(config: &Config, from: DateTime<Utc>, until: DateTime<Utc>) -> anyhow::Result<Outcome> {
    use crate::core::schedule::{Action, timeline};
    use crate::media::exclusion;
    use std::collections::HashMap;
    let ledger = Ledger::open_in(&config.paths.state)?;
    let loaded = scan_in(config, &ledger)?;
    let pending = ledger.pending()?;
    let mut decided = std::collections::HashSet::new();
    for r in &loaded.releases {
        if ledger.latest_dispatch(&r.id)?.is_some() {
            decided.insert(r.id.clone());
        }
    }
    let window = crate::mail::policy::Window::of(config);
    let plan = timeline(
        loaded.releases.iter().map(|r| &**r),
        &pending,
        &|r| decided.contains(&r.id),
        &window,
        from,
        until,
    );
    let (media, media_diags) = MediaList::load(&config.paths.media, &config.site.lang);
    let media = media.with_subscribers(&ledger.all_subscribers()?);
    let invalid = media_diags.iter().filter(|d| d.is_error()).count();
    let opted_out = ledger.opted_out()?;
    let tz = config.site.timezone;
    // The next digest in the span, among the rest in time order, if anyone takes it.
    let mut digest = crate::digest::Periods::of(config)
        .next_after(from)
        .filter(|at| *at <= until)
        .map(|at| -> anyhow::Result<_> { Ok((at, ledger.digest_subscriber_count(at)?)) })
        .transpose()?
        // Nobody takes the digest: no digest happens.
        .filter(|(_, n)| *n > 0);
    let say_digest = |at: DateTime<Utc>, n: usize| -> anyhow::Result<()> {
        let when = at.with_timezone(&tz).format("%Y-%m-%d %H:%M %Z");
        say!(
            "{when}  digest   to {} with what they chose since their last",
            count(n, "digest subscriber")
        );
        Ok(())
    };
    let printed = digest.is_some();
    for p in &plan {
        if let Some((at, n)) = digest.take_if(|(at, _)| *at < p.at) {
            say_digest(at, n)?;
        }
        let when = p.at.with_timezone(&tz).format("%Y-%m-%d %H:%M %Z");
        match p.what {
            Action::Publish => say!("{when}  publish  {}  {}", p.release.slug, p.release.title),
            Action::Mail => {
                let mut tally = crate::media::Tally {
                    invalid,
                    ..Default::default()
                };
                let release = p.release;
                if decided.contains(&release.id) {
                    // Mail already decided and waiting: its deliveries, as each will be
                    // asked at hand-off.
                    let deliveries = ledger.deliveries(&release.id)?;
                    let version = deliveries.iter().map(|d| d.version).max().unwrap_or(1);
                    let rows: HashMap<String, &crate::media::Recipient> =
                        media.recipients.iter().map(|r| (r.key(), r)).collect();
                    for d in deliveries.iter().filter(|d| d.version == version) {
                        let listed = rows.get(&d.address).copied();
                        let out = opted_out.contains(&d.address);
                        tally.add(exclusion(release, listed, out, Some(d.state)).as_ref());
                    }
                } else {
                    for r in &media.recipients {
                        let out = opted_out.contains(&r.key());
                        tally.add(exclusion(release, Some(r), out, None).as_ref());
                    }
                }
                say!(
                    "{when}  mail     {}  to {}; excluded: {}",
                    release.slug,
                    count(tally.targeted, "recipient"),
                    tally.exclusions()
                );
            }
        }
    }
    if let Some((at, n)) = digest {
        say_digest(at, n)?;
    }
    if plan.is_empty() && !printed {
        eprintln!(
            "nothing is published or mailed between {} and {}",
            from.with_timezone(&tz).format("%Y-%m-%d %H:%M"),
            until.with_timezone(&tz).format("%Y-%m-%d %H:%M %Z")
        );
    }
    Ok(Outcome::Ok)
}

enum Part {
    Summary,
    Text,
    Html,
    Eml,
}

fn preview(
    config: &Config,
    slug: &str,
    recipient: Option<&str>,
    part: Part,
) -> anyhow::Result<Outcome> {
    let loaded = scan(config)?;
    let release = lookup(config, &loaded.releases, slug).map_err(anyhow::Error::msg)?;
    let (media, _) = MediaList::load(&config.paths.media, &config.site.lang);
    let recipient = match recipient {
        Some(email) => {
            let address: lettre::Address = email
                .trim()
                .parse()
                .with_context(|| format!("`{email}` is not an email address"))?;
            let key = address.to_string().to_lowercase();
            media
                .recipients
                .iter()
                .find(|r| r.key() == key)
                .cloned()
                .unwrap_or(crate::media::Recipient::unlisted(address))
        }
        None => media.targets(release).next().cloned().with_context(|| {
            format!(
                "nobody on {} is targeted by `{slug}`: give --recipient",
                config.paths.media.display()
            )
        })?,
    };
    let key = TokenKey::load_or_create(&config.paths.state, credentials_dir().as_deref())?;
    let (templates, _) = Templates::load(&config.paths.templates);
    let prepared = crate::mail::Prepared::new(config, &templates, release);
    let letter = Letter {
        release,
        prepared: &prepared,
        recipient: &recipient,
        kind: Kind::Original,
        version: 1,
        date: clock::now(),
        // A preview has no server to ask: the form any path carries.
        transfer: crate::mail::Transfer::SevenBit,
    };
    let mut composed = crate::mail::compose(config, &templates, &key, &letter)?;
    // Exactly as it would be sent: signed too, when DKIM is configured.
    if let Some(signer) = crate::mail::dkim::Signer::from_config(config)? {
        signer.sign(&mut composed.message);
    }
    let mut out = std::io::stdout().lock();
    use std::io::Write;
    match part {
        Part::Eml => out.write_all(&composed.message.formatted())?,
        Part::Text => out.write_all(composed.text.as_bytes())?,
        Part::Html => out.write_all(composed.html.as_bytes())?,
        Part::Summary => {
            let headers = composed.message.headers();
            for name in [
                "From",
                "To",
                "Reply-To",
                "Subject",
                "Message-ID",
                "List-Unsubscribe",
            ] {
                if let Some(value) = headers.get_raw(name) {
                    writeln!(out, "{name}: {value}")?;
                }
            }
            writeln!(out)?;
            out.write_all(composed.text.as_bytes())?;
        }
    }
    Ok(Outcome::Ok)
}

/// A warning at each row of the media list whose address was erased at the journalist's
/// request (the ledger keeps it out of every mail; the office should take it off). Read
/// only when a ledger exists and holds an erasure: `check` creates nothing.
fn erased_on_the_list(config: &Config) -> anyhow::Result<Vec<Diagnostic>> {
    if !config.paths.state.join(crate::ledger::FILE_NAME).exists() {
        return Ok(Vec::new());
    }
    let ledger = Ledger::open_in(&config.paths.state)?;
    if ledger.opted_out()?.erased_count() == 0 {
        return Ok(Vec::new());
    }
    let mut found = Vec::new();
    let mut failed = None;
    let _ = crate::media::read(
        &config.paths.media,
        &config.site.lang,
        &mut |r| match ledger.is_erased(&r.key()) {
            Ok(true) => found.push(crate::media::erased(&config.paths.media, r.line)),
            Ok(false) => {}
            Err(e) => failed = Some(e),
        },
        &mut |_| {},
    );
    if let Some(e) = failed {
        return Err(e.into());
    }
    Ok(found)
}

fn check(config: &Config) -> anyhow::Result<Outcome> {
    let (recipients, mut diags) = MediaList::check(&config.paths.media, &config.site.lang);
    diags.extend(erased_on_the_list(config)?);
    // With the ledger's pins, a copy of a published release is the one reported, not it.
    let loaded = scan(config)?;
    diags.extend(loaded.diags);
    diags.extend(crate::release::topic_spellings(
        loaded.releases.iter().map(|r| &**r),
        &config.topics,
    ));
    for r in &loaded.releases {
        diags.extend(crate::render::images::check(r));
    }
    let (templates, template_diags) = Templates::load(&config.paths.templates);
    diags.extend(template_diags);
    // What shows only when rendering (an include of a missing file, a runaway loop): one
    // release through every page, feed and mail.
    if let Some(r) = loaded.releases.first()
        && let Err(e) = crate::mail::pipeline::whole(config, &templates, r)
    {
        diags.push(
            Diagnostic::file(
                &config.paths.templates,
                format!("the templates fail to render {}: {e}", r.source.display()),
            )
            .expected("templates that render every page, feed and mail"),
        );
    }
    // The unsubscribe link's pages, in the site's language, as the daemon serves them.
    if let Err(e) = crate::render::subscription::check(config, &templates) {
        diags.push(
            Diagnostic::file(
                &config.paths.templates,
                format!("the templates fail to render the unsubscribe link's pages: {e}"),
            )
            .expected("templates that render every page the unsubscribe link shows"),
        );
    }
    // The sign-up pages and the confirmation mail, likewise.
    if let Err(e) = crate::render::signup::check(config, &templates) {
        diags.push(
            Diagnostic::file(
                &config.paths.templates,
                format!("the templates fail to render the sign-up pages: {e}"),
            )
            .expected("templates that render every sign-up page and the confirmation mail"),
        );
    }
    if let Err(e) = crate::render::preferences::check(config, &templates) {
        diags.push(
            Diagnostic::file(
                &config.paths.templates,
                format!("the templates fail to render the preferences link's pages: {e}"),
            )
            .expected("templates that render every page the preferences link shows"),
        );
    }
    print_diags(&diags);
    let errors = diags.iter().filter(|d| d.is_error()).count();
    let warnings = diags.len() - errors;
    eprintln!(
        "{}, {}: {}, {}",
        count(loaded.releases.len(), "release"),
        count(recipients, "recipient"),
        count(errors, "error"),
        count(warnings, "warning"),
    );
    Ok(outcome(&diags))
}

/// `1 release`, `2 releases`.
fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

fn instant(config: &Config, at: Option<&str>) -> anyhow::Result<DateTime<Utc>> {
    match at {
        None => Ok(clock::now()),
        Some(s) => time::parse_instant(s, config.site.timezone, config.site.publish_time)
            .with_context(|| format!("--at {s}: expected {}", time::EXPECTED)),
    }
}

fn print_diags(diags: &[Diagnostic]) {
    for d in diags {
        eprintln!("{d}");
    }
}

fn print_build(config: &Config, r: &BuildReport, at: DateTime<Utc>, out: &std::path::Path) {
    eprintln!(
        "built {} ({} withdrawn) as of {} into {}: {} written, {} unchanged, {} removed in {} ms",
        count(r.public, "public release"),
        r.withdrawn,
        at.with_timezone(&config.site.timezone).to_rfc3339(),
        out.display(),
        r.write.written,
        r.write.unchanged,
        r.write.removed,
        r.elapsed.as_millis(),
    );
}

/// Where a build writes. Only a build as of now writes the served site by default: a
/// what-if (`--at`) without `--out` goes to a folder beside it, named after the instant (a
/// running daemon would otherwise serve the future). An explicit `--out` is obeyed.
fn build_folder(
    config: &Config,
    out: Option<PathBuf>,
    recording: Recording,
    at: DateTime<Utc>,
) -> anyhow::Result<PathBuf> {
    let public = &config.paths.public;
    Ok(match (out, recording) {
        (None, Recording::Record) => public.clone(),
        (None, Recording::ReadOnly) => {
            let stamp = at
                .with_timezone(&config.site.timezone)
                .format("%Y-%m-%dT%H%M%S");
            let mut name = public.file_name().unwrap_or_default().to_os_string();
            name.push(format!(".at-{stamp}"));
            public.with_file_name(name)
        }
        (Some(out), _) => out,
    })
}

fn print_committed(committed: &Committed) {
    for (w, n) in &committed.cancelled {
        eprintln!(
            "withdrawn {}: {}",
            w.slug,
            count(*n, "pending message") + " cancelled"
        );
    }
    for (r, recorded) in &committed.published {
        let said = match recorded {
            Recorded::Queued(n) => format!(
                "{n} messages queued for the dispatch window (`pressroom send {}` mails them now)",
                r.slug
            ),
            Recorded::NotMailed => "not mailed (mail = false)".to_string(),
            Recorded::Filling => "its messages are being queued".to_string(),
            Recorded::TooLate => format!(
                "first seen more than catch_up after its date: not mailed automatically (`pressroom send {}` can)",
                r.slug
            ),
            Recorded::Before => continue,
        };
        eprintln!("published {}: {said}", r.slug);
    }
}

fn outcome(diags: &[Diagnostic]) -> Outcome {
    if diags.iter().any(Diagnostic::is_error) {
        Outcome::InputErrors
    } else {
        Outcome::Ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn every_command_argument_and_flag_says_what_it_is() {
        let cli = Args::command();
        let mut missing = Vec::new();
        for cmd in cli.get_subcommands() {
            if cmd.get_about().is_none() {
                missing.push(cmd.get_name().to_string());
            }
            for arg in cmd.get_arguments() {
                if arg.get_help().is_none() && !matches!(arg.get_id().as_str(), "help" | "version")
                {
                    missing.push(format!("{} {}", cmd.get_name(), arg.get_id()));
                }
            }
        }
        assert!(missing.is_empty(), "without help text: {missing:?}");
    }
}
