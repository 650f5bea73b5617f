//! `pressroom run`: the daemon's shell. It turns what the OS says (file changes, the
//! wall-clock alarm, signals, a finished mail run) into events for the core
//! (`crate::core`), which decides, and performs the core's actions: builds, reloads, mail
//! runs, cancellations. The clock is read once per turn and handed to the core as a value.
//! Work that must not hold the loop up runs as tracked tasks (the HTTP server, a mail run,
//! webhook and WebSub messages, the sign-up form's work and the outbox) that are all
//! cancelled and awaited at shutdown.
//!
//! Between events the daemon sleeps: the wall-clock alarm is armed for the core's
//! `next_wakeup`, and nothing else wakes it but a file change, a signal, a finished mail
//! run or systemd's watchdog.

mod alarm;
mod announce;
mod audience;
mod digests;
mod mailer;
mod outbox;
mod systemd;
pub mod watch;

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{DateTime, TimeDelta, Utc};
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::build::{BuildError, Builder, Recording};
use crate::clock;
use crate::config::{Config, ConfigInvalid};
use crate::core::{self, Action, Built, Core, MailEnd, Presence, schedule};
use crate::http::{self, Metrics, Shared};
use crate::ledger::{DeliveryState, Handle, Ledger, Owner, PublisherLock, Recorded};
use crate::mail::policy::Window;
use crate::media;
use crate::optout::TokenKey;
use crate::planner::{self, Visibility};
use crate::publish::{self, Deleted};
use alarm::{Alarm, Rang};
use announce::Announcer;
use watch::Change;

/// What the loop waits for.
#[derive(Debug)]
enum Input {
    /// For the core to decide.
    Core(core::Event),
    /// A mail run ended (reported, then handed to the core).
    Sent(anyhow::Result<mailer::Finished>),
    /// SIGTERM or SIGINT.
    Shutdown,
    /// Time to tell systemd's watchdog the loop is alive.
    Watchdog,
    /// The audience thread read the media list or queued a publication's mail.
    Audience(audience::Done),
}

/// Changes arriving within this time of each other are one change: an editor's save is a
/// write, a rename and a chmod; a copy of 1,000 files is a burst.
const DEBOUNCE: Duration = Duration::from_millis(30);
/// A burst never delays a build longer than this.
const DEBOUNCE_MAX: Duration = Duration::from_millis(250);
/// Shutdown waits this long for a mail batch in flight, then exits anyway (the batch's
/// rows are then `unknown` and resent, with the same Message-ID, at the next start).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(8);

pub fn run(config_path: Option<PathBuf>, config: Config) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let result = runtime.block_on(async {
        let daemon = Daemon::start(config_path, config).await?;
        daemon.run().await
    });
    // A mail thread stuck past the grace period must not hold the exit.
    runtime.shutdown_timeout(Duration::from_secs(1));
    result
}

struct Daemon {
    config_path: Option<PathBuf>,
    config: Config,
    builder: Builder,
    /// Requests to the ledger's one owner (see `ledger::owner`); stopped at shutdown.
    ledger: Handle,
    owner: Owner,
    key: TokenKey,
    shared: Arc<Shared>,
    metrics: Arc<Metrics>,
    announcer: Announcer,
    alarm: Alarm,
    /// Kept alive for as long as we watch.
    watcher: Option<watch::Watcher>,
    /// Folders already named as unwatchable (once each, across watchers).
    unwatchable: watch::Reported,
    /// Why the folders are rescanned periodically, and how often; what the STATUS line
    /// says of it. `None`: the watcher sees every change.
    rescanning: Option<(String, Option<TimeDelta>)>,
    /// The config file, media list and templates as last read (see `config_stamp`): a
    /// periodic rescan reloads the config only if it changed.
    config_stamp: u64,
    rescan_media_stamp: u64,
    /// The releases folder's listing (each release's stamp) at the last periodic rescan.
    releases_stamp: Option<u64>,
    /// Which watched folder is on a network file system, if one is (see `watch::on_network`).
    network: Option<String>,
    changes: mpsc::UnboundedReceiver<Change>,
    changes_tx: mpsc::UnboundedSender<Change>,
    sent: mpsc::UnboundedReceiver<anyhow::Result<mailer::Finished>>,
    sent_tx: mpsc::UnboundedSender<anyhow::Result<mailer::Finished>>,
    /// Reads the media list into the ledger and queues publications' mail from it.
    audience: audience::Audience,
    audience_done: mpsc::UnboundedReceiver<audience::Done>,
    /// How the media list looked when its last sync was asked for.
    media_stamp: Option<String>,
    signals: Signals,
    watchdog: Option<tokio::time::Interval>,
    /// The decisions: when to build, mail, back off and cancel.
    core: Core,
    /// Which releases' mail may leave now, as of the last plan: asked by mail runs.
    sendable: mailer::Sendable,
    /// The releases as built, for a digest run's hand-off check (set while one runs).
    shelf: digests::Shelf,
    /// A digest run is the mail run going.
    digest_running: bool,
    /// Held while the daemon runs (`state/daemon.lock`).
    _publisher: PublisherLock,
    /// The problems the last build reported (already logged).
    reported: std::collections::HashSet<String>,
    tracker: TaskTracker,
    stop: CancellationToken,
}

struct Signals {
    term: Signal,
    int: Signal,
    hup: Signal,
}

impl Daemon {
    async fn start(config_path: Option<PathBuf>, config: Config) -> anyhow::Result<Daemon> {
        // The daemon alone publishes from its state folder: a one-shot `build` meanwhile is
        // refused (see `cli::build`), and one running as it starts is waited for.
        let publisher = PublisherLock::wait(&config.paths.state)?;
        let credentials = crate::config::credentials_dir();
        let key = TokenKey::load_or_create(&config.paths.state, credentials.as_deref())?;
        let owner = Owner::start(Ledger::open_in(&config.paths.state)?)
            .context("cannot start the ledger's thread")?;
        let ledger = owner.handle();
        let builder = Builder::new(config.clone(), config.paths.public.clone())
            .with_history(ledger.call(|l| l.history())?, Recording::Record);
        let metrics = Arc::new(Metrics::new());
        let shared = Arc::new(Shared::new(
            &config,
            ledger.clone(),
            key.clone(),
            Arc::clone(&metrics),
        ));
        let tracker = TaskTracker::new();
        let stop = CancellationToken::new();
        let announcer = Announcer::new(tracker.clone(), stop.clone(), Arc::clone(&metrics))?;
        let (changes_tx, changes) = mpsc::unbounded_channel();
        let (sent_tx, sent) = mpsc::unbounded_channel();
        let (audience_tx, audience_done) = mpsc::unbounded_channel();
        let audience =
            audience::Audience::start(&tracker, stop.clone(), ledger.clone(), audience_tx);
        let signals = Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            hup: signal(SignalKind::hangup())?,
        };
        let watchdog = systemd::watchdog_interval().map(|every| {
            let mut interval = tokio::time::interval(every);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            interval
        });
        let mut core = Core::new(Window::of(&config));
        core.set_periods(crate::digest::Periods::of(&config));
        Ok(Daemon {
            config_path,
            config,
            builder,
            ledger,
            owner,
            key,
            shared,
            metrics,
            announcer,
            alarm: Alarm::new().context("cannot create the wall-clock timer")?,
            watcher: None,
            unwatchable: watch::Reported::default(),
            rescanning: None,
            config_stamp: 0,
            rescan_media_stamp: 0,
            releases_stamp: None,
            network: None,
            changes,
            changes_tx,
            sent,
            sent_tx,
            audience,
            audience_done,
            media_stamp: None,
            signals,
            watchdog,
            core,
            sendable: mailer::Sendable::default(),
            shelf: digests::Shelf::default(),
            digest_running: false,
            _publisher: publisher,
            reported: Default::default(),
            tracker,
            stop,
        })
    }

    async fn run(mut self) -> anyhow::Result<()> {
        let listener = tokio::net::TcpListener::bind(self.config.http.listen)
            .await
            .with_context(|| format!("cannot listen on {}", self.config.http.listen))?;
        let address = listener.local_addr()?;
        // Watch before the first build, so a file saved during it is not missed.
        let now = clock::now();
        let turn = Instant::now();
        self.watch(Create::Yes, now);
        // The list may have changed while the daemon was down: read first, so the first
        // build's publications are filled from it. Fills a crash cut short are resumed
        // after that build, which knows their releases.
        self.check_media();
        let unfinished = self.ledger.call(|l| l.filling()).unwrap_or_else(|e| {
            tracing::error!("cannot read which mail is still being queued: {e}");
            Vec::new()
        });
        self.turn(core::Event::Started, now);
        for f in unfinished {
            match self.builder.release(&f.release_id) {
                Some(release) => self.audience.send(audience::Job::Fill(
                    Box::new(self.config.clone()),
                    release,
                    f.version,
                )),
                None => tracing::warn!(
                    release = %f.release_id,
                    "its mail was being queued when pressroom stopped, and its file is gone: the rest is not queued"
                ),
            }
        }
        busy(turn, "start");
        self.tracker.spawn(http::serve(
            listener,
            http::router(Arc::clone(&self.shared)),
            self.stop.clone(),
        ));
        // Behind the sign-up form: its sign-ups into the ledger, and the outbox that
        // mails their confirmations at once.
        self.tracker.spawn(http::signup::work(
            Arc::clone(&self.shared),
            self.stop.clone(),
        ));
        self.tracker.spawn(outbox::run(
            Arc::clone(&self.shared),
            self.ledger.clone(),
            self.stop.clone(),
        ));
        tracing::info!(
            "serving {} on http://{address}/",
            self.config.paths.public.display()
        );
        // Metrics are the admin's: without their listener the site still serves.
        let admin = self.config.http.admin_listen;
        match tokio::net::TcpListener::bind(admin).await {
            Ok(listener) => {
                let at = listener.local_addr().unwrap_or(admin);
                self.tracker.spawn(http::serve(
                    listener,
                    http::admin_router(Arc::clone(&self.shared)),
                    self.stop.clone(),
                ));
                tracing::info!("metrics and health for the admin at http://{at}/metrics");
            }
            Err(e) => {
                tracing::error!(
                    "cannot listen on {admin} for /metrics: {e}; the site is served without it"
                );
            }
        }
        systemd::ready(&format!("serving on http://{address}/"));
        self.plan(clock::now());

        loop {
            let input = self.next_event().await;
            let turn = Instant::now();
            let what = match &input {
                Input::Core(_) => "event",
                Input::Sent(_) => "mail run ended",
                Input::Shutdown => "shutdown",
                Input::Watchdog => "watchdog",
                Input::Audience(_) => "media list or queueing",
            };
            // The clock is read here, once per turn.
            let now = clock::now();
            match input {
                Input::Shutdown => break,
                Input::Watchdog => {
                    systemd::watchdog();
                    continue;
                }
                Input::Sent(result) => {
                    self.digest_running = false;
                    let end = self.sent(result, now);
                    self.turn(core::Event::MailEnded(end), now);
                }
                Input::Core(event) => {
                    if event == core::Event::Files(Change::Releases) {
                        // A bundle folder made or moved in is watched before it is scanned.
                        self.sync_watches(now);
                    }
                    self.turn(event, now)
                }
                Input::Audience(done) => self.audience_done(done, now),
            }
            self.plan(now);
            busy(turn, what);
        }
        self.shut_down().await;
        Ok(())
    }

    /// The one place the daemon waits.
    async fn next_event(&mut self) -> Input {
        let watchdog = async {
            match self.watchdog.as_mut() {
                Some(interval) => interval.tick().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = self.signals.term.recv() => Input::Shutdown,
            _ = self.signals.int.recv() => Input::Shutdown,
            _ = self.signals.hup.recv() => Input::Core(core::Event::Reload),
            Some(first) = self.changes.recv() => {
                Input::Core(core::Event::Files(debounce(first, &mut self.changes).await))
            }
            rang = self.alarm.ring() => match rang {
                Ok(Rang::Due) => Input::Core(core::Event::Wake),
                Ok(Rang::ClockChanged) => {
                    tracing::info!("the wall clock was set: planning again");
                    Input::Core(core::Event::ClockChanged)
                }
                Err(e) => {
                    tracing::error!("the wall-clock timer failed: {e}");
                    Input::Core(core::Event::ClockChanged)
                }
            },
            Some(result) = self.sent.recv() => Input::Sent(result),
            Some(done) = self.audience_done.recv() => Input::Audience(done),
            _ = watchdog => Input::Watchdog,
        }
    }

    /// Hands `event` to the core and performs what it decides, and what the outcomes of
    /// those actions (a build's) decide in turn.
    fn turn(&mut self, event: core::Event, now: DateTime<Utc>) {
        let mut events = VecDeque::from([event]);
        while let Some(event) = events.pop_front() {
            for action in self.core.on_event(event, now) {
                events.extend(self.perform(action, now));
            }
        }
    }

    fn perform(&mut self, action: Action, now: DateTime<Utc>) -> Option<core::Event> {
        match action {
            Action::Build => return Some(core::Event::Built(self.rebuild(now))),
            Action::Reload => self.reload(now),
            Action::ReadMedia => self.check_media(),
            Action::Rewatch => {
                self.watcher = None;
                self.watch(Create::No, now);
            }
            Action::Rescan => return Some(core::Event::Files(self.rescan(now))),
            Action::StartMail(due) => {
                let due: Vec<_> = due
                    .into_iter()
                    .filter_map(|(id, version)| Some((self.builder.release(&id)?, version)))
                    .collect();
                if due.is_empty() {
                    return Some(core::Event::MailEnded(MailEnd::Ran { unread: 0 }));
                }
                self.start_mail(due);
            }
            Action::Digest { period } => self.make_digests(period, now),
            Action::SendDigests => self.start_digests(now),
            Action::Cancel(id) => match self.ledger.call(move |l| l.cancel(&id, None, now)) {
                Ok(n) => tracing::info!(
                    cancelled = n,
                    "a release with waiting mail was deleted: its mail is cancelled"
                ),
                Err(e) => tracing::error!("cannot cancel the mail of a deleted release: {e}"),
            },
        }
        None
    }

    /// Starts watching the config's folders. Only a new config's releases folder is
    /// created if missing: one that vanished while running (unmounted, moved away) stays
    /// missing, so the site stays as it was rather than emptied.
    fn watch(&mut self, create: Create, now: DateTime<Utc>) {
        let watched = watch::Watched::of(&self.config);
        if create == Create::Yes
            && let Err(e) = std::fs::create_dir_all(&watched.releases)
        {
            tracing::error!("cannot create {}: {e}", watched.releases.display());
        }
        self.config_stamp = watched.config_stamp();
        self.rescan_media_stamp = watched.media_stamp();
        let blind = match watch::start(&watched, self.changes_tx.clone(), &mut self.unwatchable) {
            Ok(w) => {
                let blind = w.blind();
                self.watcher = Some(w);
                blind
            }
            Err(e) => Some(format!("cannot watch for changes: {e}")),
        };
        if blind.is_some() {
            self.metrics.error("watch", now);
        }
        self.network = watch::on_network(&watched);
        self.set_rescan(blind, self.network.clone(), now);
    }

    /// Rescans periodically where the watcher cannot see every change (a folder it could
    /// not watch: `blind`; a network file system), or everywhere if `[watch] rescan` names
    /// an interval. Says so once, in the log, on `/metrics` and in systemd's STATUS line.
    fn set_rescan(&mut self, blind: Option<String>, network: Option<String>, now: DateTime<Utc>) {
        use crate::config::Rescan;
        use watch::Because;
        let configured = self.config.watch.rescan;
        let (because, why) = match (blind, network) {
            (Some(why), _) => (Because::WatchingFailed, format!("watching failed: {why}")),
            (None, Some(why)) => (Because::NetworkFileSystem, why),
            (None, None) => (
                Because::Configured,
                "[watch] rescan asks for it".to_string(),
            ),
        };
        let every = match configured {
            Rescan::Auto if because == Because::Configured => None,
            Rescan::Off => None,
            Rescan::Auto | Rescan::Every(_) => configured
                .interval()
                .and_then(|d| TimeDelta::from_std(d).ok()),
        };
        let rescanning = match (because, every) {
            (Because::Configured, None) => None,
            _ => Some((why.clone(), every)),
        };
        if rescanning != self.rescanning {
            let every_text = every.map(|e| format!("every {} s", e.num_seconds()));
            match (because, every_text) {
                (Because::WatchingFailed, Some(every)) => {
                    tracing::warn!("{why}; rescanning {every}");
                }
                (Because::WatchingFailed, None) => tracing::error!(
                    "{why}; with [watch] rescan = \"off\", changes are seen only on SIGHUP"
                ),
                (Because::NetworkFileSystem, Some(every)) => tracing::info!(
                    "{why}, where edits made on other machines raise no event: rescanning {every}"
                ),
                (Because::NetworkFileSystem, None) => tracing::warn!(
                    "{why}, where edits made on other machines raise no event; with [watch] rescan = \"off\", they are seen only on SIGHUP"
                ),
                (Because::Configured, Some(every)) => {
                    tracing::info!("rescanning {every} ([watch] rescan)");
                }
                (Because::Configured, None) => {
                    tracing::info!("watching every folder again: no periodic rescan");
                }
            }
            self.rescanning = rescanning;
        }
        for label in Because::ALL {
            let seconds = match every {
                Some(every) if label == because => every.num_seconds(),
                _ => 0,
            };
            self.metrics
                .rescan_interval
                .get_or_create(&vec![("because", label.as_str())])
                .set(seconds);
        }
        self.core.set_rescan(every, now);
    }

    /// Watches the folders now in the releases folder (one made or moved in since).
    fn sync_watches(&mut self, now: DateTime<Utc>) {
        let Some(w) = self.watcher.as_mut() else {
            return;
        };
        let before = w.blind();
        w.sync(&mut self.unwatchable);
        let blind = w.blind();
        // The watch limit reached, or room again: rescan, or stop.
        if blind != before {
            self.set_rescan(blind, self.network.clone(), now);
        }
    }

    /// A periodic rescan: what changed, as far as the files' stamps tell (the same stamps
    /// the catalog keeps its parsed releases by). The config is reloaded only if its files
    /// changed, since a reload renders the whole site anew; the site is built only if a
    /// release changed.
    fn rescan(&mut self, now: DateTime<Utc>) -> Change {
        self.sync_watches(now);
        let watched = watch::Watched::of(&self.config);
        let config = watched.config_stamp();
        if config != self.config_stamp {
            // Taken now: a config with errors is reported once, not at every rescan.
            self.config_stamp = config;
            return Change::Config;
        }
        let media = watched.media_stamp();
        if media != self.rescan_media_stamp {
            self.rescan_media_stamp = media;
            self.check_media();
        }
        // The scan alone (one stat per release) tells whether anything changed; a build
        // with nothing changed still commits the site and the ledger, several times the cost.
        let releases = watch::releases_stamp(&self.config.paths.releases);
        if self.releases_stamp.replace(releases) == Some(releases) {
            Change::Nothing
        } else {
            Change::Releases
        }
    }

    /// Builds the site as of `now` and acts on what became public or was withdrawn.
    fn rebuild(&mut self, now: DateTime<Utc>) -> Built {
        let started = Instant::now();
        // The build uses every core for a moment; the HTTP server keeps the other worker.
        let result = tokio::task::block_in_place(|| self.builder.build(now));
        self.metrics.builds.inc();
        self.metrics
            .build_seconds
            .observe(started.elapsed().as_secs_f64());
        let mut built = Built {
            next_lift: planner::next_lift(self.builder.releases().map(|r| &**r), now),
            committed: true,
            releases_unknown: result.as_ref().is_err_and(BuildError::releases_unknown),
        };
        self.count_releases(now);
        let mut report = match result {
            Ok(report) => report,
            Err(e) => {
                // A site that could not be written (a full disk) is built again shortly,
                // so what became public meanwhile is published and mailed once space
                // returns, without waiting for another change. So is a build refused
                // because the clock was set back: it builds once the clock is right again,
                // and meanwhile the error is logged every 30 s, not in a loop.
                let retry = e.retried();
                built.committed = !retry;
                if e.retried()
                    && let Err(e) =
                        publish::record_identities(&mut self.ledger, &mut self.builder, now)
                {
                    tracing::error!("cannot record which file holds which release: {e}");
                }
                tracing::error!(
                    "the build failed, the last good site stays served{}: {:#}",
                    if retry {
                        format!(", trying again in {}s", core::COMMIT_RETRY.num_seconds())
                    } else {
                        String::new()
                    },
                    anyhow::Error::from(e)
                );
                self.metrics.error("build", now);
                return built;
            }
        };
        // `/search` answers from the index this build committed, held once (the builder's).
        self.shared.searchable(self.builder.search());
        // Each problem is logged when it appears, not again at every build.
        let diags: std::collections::HashSet<String> =
            report.diags.iter().map(|d| d.to_string()).collect();
        for d in &report.diags {
            let text = d.to_string();
            if self.reported.contains(&text) {
                continue;
            }
            if d.is_error() {
                tracing::error!("{text}");
            } else {
                tracing::warn!("{text}");
            }
        }
        self.reported = diags;
        if report.errors() > 0 {
            self.metrics.error("build", now);
        }
        if report.write.written + report.write.removed > 0 {
            tracing::info!(
                written = report.write.written,
                removed = report.write.removed,
                ms = report.elapsed.as_millis() as u64,
                "site built"
            );
        }
        built.committed = self.commit(&mut report);
        if !report.write.feeds_changed.is_empty() {
            let feeds = report
                .write
                .feeds_changed
                .iter()
                .map(|path| self.config.url(path));
            self.announcer
                .feeds_changed(&self.config.websub_hubs, feeds);
        }
        // Publications queued mail and withdrawals cancelled it.
        self.count_deliveries();
        release_freed_memory();
        built
    }

    /// Records what the build saw with its publications' mail (one transaction, by the
    /// ledger's owner), then tells the webhooks. A commit that fails is tried again by a
    /// rebuild shortly: the builder still reports what it did not record.
    fn commit(&mut self, report: &mut crate::build::BuildReport) -> bool {
        // The instant built as of (the clock, or the ledger's latest if it read just behind).
        let now = report.at;
        // A deleted file's mail is cancelled by `plan` after a grace period: an editor
        // that saves by deleting and writing again must not cancel anything.
        let committed = publish::commit(
            &mut self.ledger,
            &mut self.builder,
            &self.config,
            report,
            Deleted::Wait,
            now,
        );
        let committed = match committed {
            Ok(committed) => committed,
            Err(e) => {
                tracing::error!(
                    "cannot record what became public and its mail, trying again in {}s: {e}",
                    core::COMMIT_RETRY.num_seconds()
                );
                self.metrics.error("mail", now);
                return false;
            }
        };
        for (w, n) in &committed.cancelled {
            tracing::info!(slug = %w.slug, cancelled = n, "withdrawn: pending mail cancelled");
        }
        // A change of the list that came with the release's (one debounced change counts
        // as the releases') was not read yet: it is, before the fills.
        if committed
            .published
            .iter()
            .any(|(_, r)| *r == Recorded::Filling)
            && media::stamp(&self.config.paths.media) != self.media_stamp
        {
            self.check_media();
        }
        for (r, recorded) in &committed.published {
            match recorded {
                Recorded::Before => {}
                // Logged with its count once queued (`audience_done`).
                Recorded::Filling => self.audience.send(audience::Job::Fill(
                    Box::new(self.config.clone()),
                    Arc::clone(r),
                    1,
                )),
                _ => tracing::info!(slug = %r.slug, mail = ?recorded, "published"),
            }
            self.announcer.webhook(
                &self.config.webhooks,
                serde_json::json!({
                    "event": "published",
                    "id": r.id,
                    "slug": r.slug.as_str(),
                    "title": r.title,
                    "url": self.config.url(&r.path()).as_str(),
                    "date": r.date.to_rfc3339(),
                }),
            );
        }
        true
    }

    /// Reads the config again; an invalid one is reported and the running one kept.
    fn reload(&mut self, now: DateTime<Utc>) {
        match crate::mail::load_config(self.config_path.as_deref()) {
            Ok((config, diags)) => {
                for d in &diags {
                    tracing::warn!("{d}");
                }
                if config.http.listen != self.config.http.listen {
                    tracing::warn!(
                        "[http] listen changed to {}: restart pressroom to listen there",
                        config.http.listen
                    );
                }
                let mut config = config;
                if config.paths.state != self.config.paths.state {
                    tracing::error!(
                        "[paths] state changed to {}: the ledger stays {} until pressroom restarts (one ledger at a time, never two)",
                        config.paths.state.display(),
                        self.config.paths.state.display()
                    );
                    self.metrics.error("config", now);
                    config.paths.state = self.config.paths.state.clone();
                }
                match self.ledger.call(|l| l.history()) {
                    Ok(history) => {
                        let moved = config.paths.releases != self.config.paths.releases;
                        self.builder = Builder::new(config.clone(), config.paths.public.clone())
                            .with_history(history, Recording::Record);
                        self.shared.set_site(http::Site::of(&config));
                        self.core.set_window(Window::of(&config));
                        self.core.set_periods(crate::digest::Periods::of(&config));
                        self.config = config;
                        tracing::info!("config reloaded");
                        // The folders may have moved.
                        self.watcher = None;
                        self.watch(if moved { Create::Yes } else { Create::No }, now);
                    }
                    Err(e) => {
                        tracing::error!("the ledger cannot be read, keeping the old config: {e}");
                        self.metrics.error("config", now);
                    }
                }
            }
            Err(e) => {
                match e.downcast_ref::<ConfigInvalid>() {
                    Some(ConfigInvalid(diags)) => {
                        for d in diags {
                            tracing::error!("{d}");
                        }
                    }
                    None => tracing::error!("{e:#}"),
                }
                tracing::error!("the config has errors: the running config is kept");
                self.metrics.error("config", now);
            }
        }
        self.check_media();
    }

    /// Has the audience thread read the media list into the ledger: streamed, in batches,
    /// off the loop (see `audience`).
    fn check_media(&mut self) {
        self.media_stamp = media::stamp(&self.config.paths.media);
        self.audience
            .send(audience::Job::Sync(Box::new(self.config.clone())));
    }

    /// What the audience thread did.
    fn audience_done(&mut self, done: audience::Done, now: DateTime<Utc>) {
        match done {
            audience::Done::Synced(media::Synced::Rows { rows, errors }) => {
                tracing::info!(recipients = rows, invalid = errors, "media list read");
            }
            audience::Done::Synced(media::Synced::Unreadable(why)) => {
                tracing::warn!("{why}: mail waits until the media list can be read");
            }
            audience::Done::Synced(media::Synced::Stopped) => {}
            audience::Done::Filled {
                release,
                queued: Some(n),
            } => {
                tracing::info!(slug = %release.slug, mail = ?Recorded::Queued(n), "published");
                // Counting a million rows by state is the ledger's to do, not the loop's
                // to wait for.
                let (ledger, metrics) = (self.ledger.clone(), Arc::clone(&self.metrics));
                self.tracker.spawn(async move {
                    if let Ok(counts) = ledger.call_async(|l| l.all_counts()).await {
                        set_delivery_counts(&metrics, &counts);
                    }
                });
            }
            audience::Done::Filled { queued: None, .. } => {}
            audience::Done::Failed(e) => {
                tracing::error!("{e}");
                self.metrics.error("mail", now);
            }
        }
    }

    /// Gives the core the ledger's waiting mail, performs what it decides (start a run,
    /// cancel a deleted release's mail), and arms the alarm for its next wake-up.
    fn plan(&mut self, now: DateTime<Utc>) {
        let pending = match self.ledger.call(|l| l.pending()) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!("cannot read the waiting mail: {e}");
                self.metrics.error("mail", now);
                Vec::new()
            }
        };
        let builder = &self.builder;
        let hold = TimeDelta::from_std(self.config.dispatch.hold).unwrap_or(TimeDelta::MAX);
        let presence = |id: &str| builder.presence(id, hold, now);
        let sendable = pending
            .iter()
            .filter(|p| presence(&p.release_id) == Presence::Public)
            .filter_map(|p| builder.release(&p.release_id))
            .map(|r| (r.id.clone(), r.content_hash.clone()))
            .collect();
        self.sendable.set(sendable);
        let actions = self.core.plan(&pending, &presence, now);
        for action in actions {
            if let Some(event) = self.perform(action, now) {
                self.turn(event, now);
            }
        }
        self.plan_digests(now);
        let at = self.core.next_wakeup();
        if let Err(e) = self.alarm.set(schedule::alarm_at(at, now)) {
            tracing::error!("cannot arm the wall-clock timer: {e}");
        }
        let mut status = match at {
            Some(at) => format!(
                "next wake-up {}",
                at.with_timezone(&self.config.site.timezone).to_rfc3339()
            ),
            None => "idle".to_string(),
        };
        if let Some((why, every)) = &self.rescanning {
            status.push_str(&match every {
                Some(every) => format!("; {why}: rescanning every {} s", every.num_seconds()),
                None => format!("; {why}: not rescanning ([watch] rescan = \"off\")"),
            });
        }
        systemd::status(&status);
    }

    /// The digests: a period's made when due, the waiting ones sent when due (after any
    /// made in this turn).
    fn plan_digests(&mut self, now: DateTime<Utc>) {
        if self.digest_running {
            self.set_shelf(now);
        }
        for _ in 0..2 {
            let waiting = match self.ledger.call(|l| l.digests_due()) {
                Ok(due) => due,
                Err(e) => {
                    tracing::error!("cannot read the waiting digests: {e}");
                    self.metrics.error("mail", now);
                    None
                }
            };
            let current = !self.builder.clock_behind();
            let actions = self.core.plan_digests(waiting, current, now);
            let made = actions.iter().any(|a| matches!(a, Action::Digest { .. }));
            for action in actions {
                if let Some(event) = self.perform(action, now) {
                    self.turn(event, now);
                }
            }
            if !made {
                break;
            }
        }
    }

    /// The releases a digest run may send: public, in a version older than the hold.
    fn set_shelf(&self, now: DateTime<Utc>) {
        let hold = TimeDelta::from_std(self.config.dispatch.hold).unwrap_or(TimeDelta::MAX);
        let builder = &self.builder;
        self.shelf.set(
            builder
                .releases()
                .filter(|r| builder.presence(&r.id, hold, now) == Presence::Public),
        );
    }

    /// Makes the digests of `period` (each subscriber's once: the ledger's key), due once
    /// `[dispatch] hold` has passed: a release that lifted at the period has settled then.
    fn make_digests(&mut self, period: DateTime<Utc>, now: DateTime<Utc>) {
        let releases: Vec<_> = self.builder.releases().cloned().collect();
        let hold = TimeDelta::from_std(self.config.dispatch.hold).unwrap_or(TimeDelta::zero());
        let due = now + hold;
        match digests::make(&self.ledger, &self.config, releases, period, due) {
            Ok(queued) => tracing::info!(
                period = %period.with_timezone(&self.config.site.timezone).to_rfc3339(),
                queued,
                "digests made"
            ),
            Err(e) => {
                // Nothing is lost: each subscriber's next digest holds it all.
                tracing::error!("cannot make the digests of {period}: {e}");
                self.metrics.error("mail", now);
            }
        }
    }

    fn start_digests(&mut self, now: DateTime<Utc>) {
        self.set_shelf(now);
        self.digest_running = true;
        let job = digests::Job {
            config: self.config.clone(),
            ledger: self.ledger.clone(),
            key: self.key.clone(),
            stop: self.stop.clone(),
            credentials: crate::config::credentials_dir(),
            shelf: self.shelf.clone(),
        };
        let done = self.sent_tx.clone();
        self.tracker.spawn_blocking(move || {
            let _ = done.send(digests::run(job));
        });
    }

    fn start_mail(&mut self, dispatches: Vec<(Arc<crate::release::Release>, u32)>) {
        let job = mailer::Job {
            config: self.config.clone(),
            ledger: self.ledger.clone(),
            dispatches,
            key: self.key.clone(),
            stop: self.stop.clone(),
            metrics: Arc::clone(&self.metrics),
            credentials: crate::config::credentials_dir(),
            sendable: self.sendable.clone(),
        };
        let done = self.sent_tx.clone();
        // SQLite, composing and the sender's pipeline block: the run gets a thread of its
        // own (see `mailer`).
        self.tracker.spawn_blocking(move || {
            let _ = done.send(mailer::run(job));
        });
    }

    /// Reports how a mail run ended; the core decides what follows.
    fn sent(&mut self, result: anyhow::Result<mailer::Finished>, now: DateTime<Utc>) -> MailEnd {
        let end = match result {
            Ok(mailer::Finished::Busy) => {
                tracing::info!("another process is sending from this ledger: trying again shortly");
                MailEnd::Busy
            }
            Ok(mailer::Finished::Ran { runs, unread }) => {
                for run in runs.iter().filter(|r| r.complete) {
                    self.announcer.webhook(
                        &self.config.webhooks,
                        serde_json::json!({
                            "event": "dispatched",
                            "id": run.release.id,
                            "slug": run.release.slug.as_str(),
                            "version": run.version,
                            "sent": run.summary.sent,
                            "failed": run.summary.failed,
                            "cancelled": run.summary.cancelled,
                        }),
                    );
                }
                MailEnd::Ran { unread }
            }
            Err(e) => {
                tracing::error!("mail run failed: {e:#}");
                self.metrics.error("mail", now);
                MailEnd::Failed
            }
        };
        self.count_deliveries();
        end
    }

    fn count_releases(&self, now: DateTime<Utc>) {
        let mut counts: HashMap<&'static str, i64> =
            ["draft", "embargoed", "public", "withdrawn", "held"]
                .into_iter()
                .map(|s| (s, 0))
                .collect();
        for r in self.builder.releases() {
            if self.builder.is_held(&r.id) {
                *counts.entry("held").or_default() += 1;
                continue;
            }
            let state = match planner::visibility(r, now) {
                Visibility::Draft => "draft",
                Visibility::Embargoed { .. } => "embargoed",
                Visibility::Public => "public",
                Visibility::Withdrawn { .. } | Visibility::WithdrawnUnpublished => "withdrawn",
            };
            *counts.entry(state).or_default() += 1;
        }
        for (state, n) in counts {
            self.metrics
                .releases
                .get_or_create(&vec![("state", state)])
                .set(n);
        }
    }

    fn count_deliveries(&self) {
        if let Ok(counts) = self.ledger.call(|l| l.all_counts()) {
            set_delivery_counts(&self.metrics, &counts);
        }
        if let Ok(counts) = self.ledger.call(|l| l.digest_counts()) {
            for state in DeliveryState::ALL {
                let n = counts
                    .iter()
                    .find(|(s, _)| *s == state)
                    .map_or(0, |(_, n)| *n as i64);
                self.metrics
                    .digests
                    .get_or_create(&vec![("state", state.as_str())])
                    .set(n);
            }
        }
    }

    /// Stops taking work, lets a mail batch in flight finish (bounded), and waits for every
    /// task.
    async fn shut_down(self) {
        tracing::info!("shutting down");
        systemd::stopping();
        self.stop.cancel();
        drop(self.audience);
        drop(self.watcher);
        self.tracker.close();
        if tokio::time::timeout(SHUTDOWN_GRACE, self.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                "a mail batch was still in flight at shutdown: its messages are marked unknown and sent again at the next start"
            );
        }
        // Every request made before has been answered.
        self.owner.stop();
        tracing::info!("stopped");
    }
}

/// `/metrics`' deliveries by state.
fn set_delivery_counts(metrics: &Metrics, counts: &[(DeliveryState, u64)]) {
    for state in DeliveryState::ALL {
        let n = counts
            .iter()
            .find(|(s, _)| *s == state)
            .map_or(0, |(_, n)| *n as i64);
        metrics
            .deliveries
            .get_or_create(&vec![("state", state.as_str())])
            .set(n);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Create {
    Yes,
    No,
}

/// A turn of the loop longer than this is logged: while it runs, no file change, alarm,
/// signal or finished mail run is seen (the HTTP server answers on its own workers).
const BUSY: Duration = Duration::from_millis(100);

/// Logs a turn of the loop that began at `started` if it took longer than `BUSY`.
fn busy(started: Instant, what: &'static str) {
    let took = started.elapsed();
    if took > BUSY {
        tracing::warn!(
            ms = took.as_millis() as u64,
            what,
            "event loop busy: one turn held every other event up"
        );
    }
}

/// Hands the memory a build freed back to the system at once: a build renders pages on
/// every core, and the allocator (mimalloc, see `main.rs`) would otherwise return the pages
/// that emptied only as later allocations come by, which an idle daemon does not make.
fn release_freed_memory() {
    // SAFETY: mi_collect only frees and resets memory the allocator holds free; it touches
    // no live allocation and may be called from any thread at any time.
    unsafe {
        libmimalloc_sys::mi_collect(true);
    }
}

/// Collects changes until none has come for `DEBOUNCE` (at most `DEBOUNCE_MAX`), and
/// returns the biggest.
async fn debounce(first: Change, changes: &mut mpsc::UnboundedReceiver<Change>) -> Change {
    let mut change = first;
    let until = tokio::time::Instant::now() + DEBOUNCE_MAX;
    loop {
        let quiet = tokio::time::Instant::now() + DEBOUNCE;
        match tokio::time::timeout_at(quiet.min(until), changes.recv()).await {
            Ok(Some(next)) => change = change.max(next),
            Ok(None) | Err(_) => return change,
        }
    }
}
