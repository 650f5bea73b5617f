//! `pressroom run`: the daemon. One loop owns every piece of state (config, builder,
//! ledger connection, alarm) and acts on one closed set of events; everything that can make
//! the daemon act is in `next_event`, and what it does about each is in `handle`. Work that
//! must not hold the loop up runs as tracked tasks (the HTTP server, a mail run, webhook and
//! WebSub messages) that are all cancelled and awaited at shutdown.
//!
//! Between events the daemon sleeps: the wall-clock alarm is armed for the next embargo lift
//! or the next instant mail may leave (`schedule`), and nothing else wakes it but a file
//! change, a signal, a finished mail run or systemd's watchdog.

mod alarm;
mod announce;
mod mailer;
pub mod schedule;
mod systemd;
pub mod watch;

use std::collections::HashMap;
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
use crate::dispatch::Window;
use crate::http::{self, Metrics, Shared};
use crate::ledger::{DeliveryState, Ledger};
use crate::mail::queue::{self, Decision};
use crate::media::MediaList;
use crate::optout::TokenKey;
use crate::planner::{self, Visibility};
use alarm::{Alarm, Rang};
use announce::Announcer;
use watch::Change;

/// Everything that can make the daemon act.
#[derive(Debug)]
enum Event {
    /// Files changed (already debounced and merged).
    Files(Change),
    /// The alarm rang: an embargo lifts or mail is due; or the wall clock was set.
    Wake(Rang),
    /// A mail run ended.
    Sent(anyhow::Result<mailer::Finished>),
    /// SIGHUP: read the config and the media list again.
    Reload,
    /// SIGTERM or SIGINT.
    Shutdown,
    /// Time to tell systemd's watchdog the loop is alive.
    Watchdog,
}

/// Changes arriving within this time of each other are one change: an editor's save is a
/// write, a rename and a chmod; a copy of 1,000 files is a burst.
const DEBOUNCE: Duration = Duration::from_millis(30);
/// A burst never delays a build longer than this.
const DEBOUNCE_MAX: Duration = Duration::from_millis(250);
/// How long a busy send lock (a `pressroom send` by hand) is left before trying again.
const LOCK_RETRY: TimeDelta = TimeDelta::seconds(30);
/// After a mail run that failed (the server refused our login, the ledger failed), the next
/// one waits this long: a persistent problem is logged every few minutes, not in a loop.
const FAILED_RUN_RETRY: TimeDelta = TimeDelta::minutes(5);
/// A release deleted while its mail waits: its mail is cancelled once it has stayed away
/// this long (an editor that saves by delete-and-write brings it back sooner).
const DELETED_GRACE: TimeDelta = TimeDelta::seconds(5);
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
    ledger: Ledger,
    key: TokenKey,
    shared: Arc<Shared>,
    metrics: Arc<Metrics>,
    announcer: Announcer,
    alarm: Alarm,
    /// Kept alive for as long as we watch.
    watcher: Option<watch::Watcher>,
    changes: mpsc::UnboundedReceiver<Change>,
    changes_tx: mpsc::UnboundedSender<Change>,
    sent: mpsc::UnboundedReceiver<anyhow::Result<mailer::Finished>>,
    sent_tx: mpsc::UnboundedSender<anyhow::Result<mailer::Finished>>,
    signals: Signals,
    watchdog: Option<tokio::time::Interval>,
    /// A mail run is going.
    sending: bool,
    /// The send lock was busy: no mail run before this.
    lock_busy_until: Option<DateTime<Utc>>,
    /// The next embargo lift as of the last build: a wake-up at or after it rebuilds.
    next_lift: Option<DateTime<Utc>>,
    /// The problems the last build reported (already logged).
    reported: std::collections::HashSet<String>,
    /// Releases whose mail waits but whose file has gone, and since when.
    missing: HashMap<String, DateTime<Utc>>,
    /// The releases folder could not be read at the last build: which releases exist is
    /// not known, so none is taken for deleted (their mail is not cancelled).
    folder_unreadable: bool,
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
        let credentials = crate::config::credentials_dir();
        let key = TokenKey::load_or_create(&config.paths.state, credentials.as_deref())?;
        let ledger = Ledger::open_in(&config.paths.state)?;
        let builder = Builder::new(config.clone(), config.paths.public.clone())
            .with_ledger(Ledger::open_in(&config.paths.state)?, Recording::Record)?;
        let metrics = Arc::new(Metrics::new());
        let shared = Arc::new(Shared::new(&config, key.clone(), Arc::clone(&metrics)));
        let tracker = TaskTracker::new();
        let stop = CancellationToken::new();
        let announcer = Announcer::new(tracker.clone(), stop.clone(), Arc::clone(&metrics))?;
        let (changes_tx, changes) = mpsc::unbounded_channel();
        let (sent_tx, sent) = mpsc::unbounded_channel();
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
        Ok(Daemon {
            config_path,
            config,
            builder,
            ledger,
            key,
            shared,
            metrics,
            announcer,
            alarm: Alarm::new().context("cannot create the wall-clock timer")?,
            watcher: None,
            changes,
            changes_tx,
            sent,
            sent_tx,
            signals,
            watchdog,
            sending: false,
            lock_busy_until: None,
            next_lift: None,
            reported: Default::default(),
            missing: HashMap::new(),
            folder_unreadable: false,
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
        self.watch(Create::Yes);
        self.rebuild(clock::now());
        self.tracker.spawn(http::serve(
            listener,
            Arc::clone(&self.shared),
            self.stop.clone(),
        ));
        tracing::info!(
            "serving {} on http://{address}/",
            self.config.paths.public.display()
        );
        systemd::ready(&format!("serving on http://{address}/"));
        self.plan(clock::now());

        loop {
            let event = self.next_event().await;
            if matches!(event, Event::Shutdown) {
                break;
            }
            self.handle(event);
            self.plan(clock::now());
        }
        self.shut_down().await;
        Ok(())
    }

    /// The one place the daemon waits.
    async fn next_event(&mut self) -> Event {
        let watchdog = async {
            match self.watchdog.as_mut() {
                Some(interval) => interval.tick().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = self.signals.term.recv() => Event::Shutdown,
            _ = self.signals.int.recv() => Event::Shutdown,
            _ = self.signals.hup.recv() => Event::Reload,
            Some(first) = self.changes.recv() => {
                Event::Files(debounce(first, &mut self.changes).await)
            }
            rang = self.alarm.ring() => match rang {
                Ok(rang) => Event::Wake(rang),
                Err(e) => {
                    tracing::error!("the wall-clock timer failed: {e}");
                    Event::Wake(Rang::ClockChanged)
                }
            },
            Some(result) = self.sent.recv() => Event::Sent(result),
            _ = watchdog => Event::Watchdog,
        }
    }

    fn handle(&mut self, event: Event) {
        let now = clock::now();
        match event {
            Event::Files(Change::Nothing) | Event::Shutdown => {}
            Event::Files(Change::Media) => self.check_media(),
            Event::Files(Change::Releases) => self.rebuild(now),
            Event::Files(Change::Folder) => {
                self.watcher = None;
                self.watch(Create::No);
                self.rebuild(now);
            }
            Event::Files(Change::Config | Change::Rescan) | Event::Reload => {
                self.reload();
                self.rebuild(clock::now());
            }
            Event::Wake(rang) => {
                if rang == Rang::ClockChanged {
                    tracing::info!("the wall clock was set: planning again");
                }
                if rang == Rang::ClockChanged || self.next_lift.is_some_and(|t| t <= now) {
                    self.rebuild(now);
                }
            }
            Event::Sent(result) => {
                self.sending = false;
                self.sent(result, now);
            }
            Event::Watchdog => systemd::watchdog(),
        }
    }

    /// Starts watching the config's folders. Only a new config's releases folder is
    /// created if missing: one that vanished while running (unmounted, moved away) stays
    /// missing, so the site stays as it was rather than emptied.
    fn watch(&mut self, create: Create) {
        let watched = watch::Watched::of(&self.config);
        if create == Create::Yes
            && let Err(e) = std::fs::create_dir_all(&watched.releases)
        {
            tracing::error!("cannot create {}: {e}", watched.releases.display());
        }
        match watch::start(&watched, self.changes_tx.clone()) {
            Ok(w) => self.watcher = Some(w),
            Err(e) => {
                tracing::error!("cannot watch the release and config folders: {e}");
                self.metrics.error("watch", clock::now());
            }
        }
    }

    /// Builds the site as of `now` and acts on what became public or was withdrawn.
    fn rebuild(&mut self, now: DateTime<Utc>) {
        let started = Instant::now();
        // The build uses every core for a moment; the HTTP server keeps the other worker.
        let result = tokio::task::block_in_place(|| self.builder.build(now));
        self.metrics.builds.inc();
        self.metrics
            .build_seconds
            .observe(started.elapsed().as_secs_f64());
        self.next_lift = planner::next_lift(self.builder.releases().map(|r| &**r), now);
        self.count_releases(now);
        self.folder_unreadable = matches!(result, Err(BuildError::Unreadable(_)));
        let report = match result {
            Ok(report) => report,
            Err(e) => {
                tracing::error!(
                    "the build failed, the last good site stays served: {:#}",
                    anyhow::Error::from(e)
                );
                self.metrics.error("build", now);
                return;
            }
        };
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
        for (id, slug) in &report.withdrawn_releases {
            // A deleted file's mail is cancelled by `plan` after a grace period: an editor
            // that saves by deleting and writing again must not cancel anything.
            if self.builder.release(id).is_none() {
                continue;
            }
            match self.ledger.cancel(id, None, now) {
                Ok(0) => {}
                Ok(n) => tracing::info!(%slug, cancelled = n, "withdrawn: pending mail cancelled"),
                Err(e) => tracing::error!("cannot cancel the mail of {slug}: {e}"),
            }
        }
        if !report.newly_public.is_empty() {
            let (media, _) = MediaList::load(&self.config.paths.media);
            for p in &report.newly_public {
                let r = &p.release;
                let decision =
                    queue::on_publication(&mut self.ledger, &self.config, &media, r, p.first_seen);
                match decision {
                    Ok(Decision::AlreadyDecided) => {}
                    Ok(decision) => {
                        tracing::info!(slug = %r.slug, mail = ?decision, "published");
                    }
                    Err(e) => {
                        tracing::error!("cannot queue the mail of {}: {e}", r.slug);
                        self.metrics.error("mail", now);
                    }
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
        }
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
    }

    /// Reads the config again; an invalid one is reported and the running one kept.
    fn reload(&mut self) {
        let now = clock::now();
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
                let ledger = Ledger::open_in(&config.paths.state);
                let builder = ledger.and_then(|l| {
                    Builder::new(config.clone(), config.paths.public.clone())
                        .with_ledger(l, Recording::Record)
                });
                match builder {
                    Ok(builder) => {
                        let moved = config.paths.releases != self.config.paths.releases;
                        self.builder = builder;
                        self.shared.set_site(http::Site::of(&config));
                        self.config = config;
                        tracing::info!("config reloaded");
                        // The folders may have moved.
                        self.watcher = None;
                        self.watch(if moved { Create::Yes } else { Create::No });
                    }
                    Err(e) => {
                        tracing::error!(
                            "the new config's ledger cannot be opened, keeping the old config: {e}"
                        );
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

    fn check_media(&self) {
        let (media, diags) = MediaList::load(&self.config.paths.media);
        for d in &diags {
            tracing::warn!("{d}");
        }
        tracing::info!(recipients = media.recipients.len(), "media list read");
    }

    /// Starts a mail run if mail is due and may leave, and arms the alarm for the next
    /// thing to do.
    fn plan(&mut self, now: DateTime<Utc>) {
        let pending = match self.ledger.pending() {
            Ok(p) => p,
            Err(e) => {
                tracing::error!("cannot read the waiting mail: {e}");
                self.metrics.error("mail", now);
                Vec::new()
            }
        };
        let (known, gone): (Vec<_>, Vec<_>) = pending
            .into_iter()
            .partition(|p| self.builder.release(&p.release_id).is_some());
        let next_gone = if self.folder_unreadable {
            self.missing.clear();
            None
        } else {
            self.forget_deleted(&gone, now)
        };

        let window = Window {
            schedule: self.config.dispatch.window.clone(),
            tz: self.config.site.timezone,
        };
        let lock_free = self.lock_busy_until.is_none_or(|t| t <= now);
        if !self.sending && lock_free && window.contains(now) {
            let due: Vec<_> = known
                .iter()
                .filter(|p| p.due <= now)
                .filter_map(|p| Some((self.builder.release(&p.release_id)?, p.version)))
                .collect();
            if !due.is_empty() {
                self.start_mail(due);
            }
        }
        let next_mail = if self.sending {
            None
        } else {
            schedule::next_mail(&known, &window, now)
                .map(|t| self.lock_busy_until.map_or(t, |busy| t.max(busy)))
        };
        let wake = schedule::next_wake(self.next_lift, next_mail);
        let at = [wake.map(|w| w.at), next_gone].into_iter().flatten().min();
        if let Err(e) = self.alarm.set(schedule::alarm_at(at, now)) {
            tracing::error!("cannot arm the wall-clock timer: {e}");
        }
        systemd::status(&match at {
            Some(at) => format!(
                "next wake-up {}",
                at.with_timezone(&self.config.site.timezone).to_rfc3339()
            ),
            None => "idle".to_string(),
        });
    }

    /// Cancels the waiting mail of releases deleted for longer than the grace period;
    /// returns when the next one's grace ends.
    fn forget_deleted(
        &mut self,
        gone: &[crate::ledger::Pending],
        now: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        self.missing
            .retain(|id, _| gone.iter().any(|p| &p.release_id == id));
        let mut next = None;
        for p in gone {
            let since = *self.missing.entry(p.release_id.clone()).or_insert(now);
            if now - since >= DELETED_GRACE {
                match self.ledger.cancel(&p.release_id, None, now) {
                    Ok(n) => tracing::info!(
                        cancelled = n,
                        "a release with waiting mail was deleted: its mail is cancelled"
                    ),
                    Err(e) => tracing::error!("cannot cancel the mail of a deleted release: {e}"),
                }
                self.missing.remove(&p.release_id);
            } else {
                let at = since + DELETED_GRACE;
                next = Some(next.map_or(at, |n: DateTime<Utc>| n.min(at)));
            }
        }
        next
    }

    fn start_mail(&mut self, dispatches: Vec<(Arc<crate::release::Release>, u32)>) {
        self.sending = true;
        let job = mailer::Job {
            config: self.config.clone(),
            dispatches,
            key: self.key.clone(),
            stop: self.stop.clone(),
            metrics: Arc::clone(&self.metrics),
            credentials: crate::config::credentials_dir(),
        };
        let done = self.sent_tx.clone();
        // SQLite, composing and the sender's pipeline block: the run gets a thread of its
        // own (see `mailer`).
        self.tracker.spawn_blocking(move || {
            let _ = done.send(mailer::run(job));
        });
    }

    fn sent(&mut self, result: anyhow::Result<mailer::Finished>, now: DateTime<Utc>) {
        match result {
            Ok(mailer::Finished::Busy) => {
                tracing::info!("another process is sending from this ledger: trying again shortly");
                self.lock_busy_until = Some(now + LOCK_RETRY);
            }
            Ok(mailer::Finished::Ran { runs, unread }) => {
                // A release whose text could not be read again is tried again shortly;
                // the change that caused it brings a rebuild meanwhile.
                self.lock_busy_until = (unread > 0).then(|| now + LOCK_RETRY);
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
            }
            Err(e) => {
                tracing::error!("mail run failed: {e:#}");
                self.metrics.error("mail", now);
                self.lock_busy_until = Some(now + FAILED_RUN_RETRY);
            }
        }
        self.count_deliveries();
    }

    fn count_releases(&self, now: DateTime<Utc>) {
        let mut counts: HashMap<&'static str, i64> = ["draft", "embargoed", "public", "withdrawn"]
            .into_iter()
            .map(|s| (s, 0))
            .collect();
        for r in self.builder.releases() {
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
        if let Ok(counts) = self.ledger.all_counts() {
            for state in DeliveryState::ALL {
                let n = counts
                    .iter()
                    .find(|(s, _)| *s == state)
                    .map_or(0, |(_, n)| *n as i64);
                self.metrics
                    .deliveries
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
        tracing::info!("stopped");
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Create {
    Yes,
    No,
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
