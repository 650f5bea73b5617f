//! The daemon's decisions, as a plain state machine in the style of quinn-proto: the shell
//! turns what happened (a file change, the alarm, a signal, a finished build or mail run)
//! into an `Event` and performs the `Action`s the core answers with; time comes in as a
//! value. Nothing here reads a clock, a file or the ledger, so every rule of when the
//! daemon builds, mails, backs off and cancels is tested with exact instants, and the
//! simulator (`tests/it/sim.rs`) drives this same code through thousands of event
//! sequences a second.
//!
//! A turn of the loop: `on_event` for the event (and for each `Built` / `MailEnded` the
//! actions lead to), then `plan` with the ledger's waiting mail, then the alarm is armed
//! for `next_wakeup`.

pub mod schedule;

use chrono::{DateTime, TimeDelta, Utc};

use crate::digest::{self, Periods};
use crate::ledger::Pending;
use crate::mail::policy::Window;
use crate::planner::{self, Visibility};
use crate::release::Release;

/// What a batch of file changes asks of the daemon. Ordered: a bigger change includes the
/// smaller ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Change {
    /// A file nobody reads (an editor's swap file, a file beside the config).
    Nothing,
    /// The media list: read at each publication and dispatch; only checked and reported.
    Media,
    /// A release or an attachment: rebuild (the builder re-reads only what changed).
    Releases,
    /// The releases folder itself appeared, vanished or was replaced (a checkout, a
    /// remount): watch it anew, then rebuild.
    Folder,
    /// The config file or a template: reload it and rebuild everything.
    Config,
    /// Events were lost (queue overflow): read everything again.
    Rescan,
}

/// Everything that can make the daemon act.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The daemon started (its first build).
    Started,
    /// Files changed (already debounced and merged).
    Files(Change),
    /// The alarm rang (at or after `next_wakeup`).
    Wake,
    /// The wall clock was set: everything is planned again.
    ClockChanged,
    /// SIGHUP: read the config and the media list again.
    Reload,
    /// A build the core asked for ended.
    Built(Built),
    /// A mail run the core started ended.
    MailEnded(MailEnd),
}

/// What a build found that the core plans with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Built {
    /// The next embargo lift of the releases as built.
    pub next_lift: Option<DateTime<Utc>>,
    /// What became public and its mail were recorded (false: the ledger refused the
    /// commit, or the build failed before it).
    pub committed: bool,
    /// Which releases exist is not known: the releases folder could not be read, or the
    /// build was refused before reading it (a clock set back, and the process new).
    pub releases_unknown: bool,
}

/// How a mail run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailEnd {
    /// Another process holds the send lock.
    Busy,
    /// It ran; `unread` dispatches waited because their text could not be read again.
    Ran { unread: usize },
    /// The server refused us, or the ledger failed.
    Failed,
}

/// What the shell is to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Build the site as of now and commit what it saw; answer with `Event::Built`.
    Build,
    /// Read the config again (and with it the media list).
    Reload,
    /// Read and report the media list.
    ReadMedia,
    /// Watch the folders anew (they vanished, moved or came back).
    Rewatch,
    /// The periodic rescan is due (where file events cannot be trusted): look at the
    /// folders and answer with `Event::Files` saying what changed (at least `Releases`).
    Rescan,
    /// Start a mail run for these (release id, version); answer with `Event::MailEnded`.
    StartMail(Vec<(String, u32)>),
    /// The release's file has been gone longer than `DELETED_GRACE`: cancel its waiting mail.
    Cancel(String),
    /// Make the digests of this period (`[subscribe] digest`): one per digest subscriber
    /// with something in it, and every digest subscriber's `digest_from` moved to it.
    Digest { period: DateTime<Utc> },
    /// Start a run that sends the waiting digests that are due; answer with
    /// `Event::MailEnded`. Digests leave at their time, inside the dispatch window or not:
    /// the office chose that time for them.
    SendDigests,
}

/// Where a release with waiting mail stands in the build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    /// Public now, in a version older than `[dispatch] hold`: its mail may leave.
    Public,
    /// Public now, in a version first seen less than `[dispatch] hold` ago (a file still
    /// being written, an edit that may be undone): its mail waits until `until`.
    Settling { until: DateTime<Utc> },
    /// Its file is there but it is not public now (postponed, a draft again): mail waits.
    Hidden,
    /// Its file is gone: mail is cancelled after `DELETED_GRACE`.
    Gone,
}

impl Presence {
    /// Where `release` (as the builder has it, if at all) stands at `now`, its current
    /// content first seen at `seen_since` (not yet seen: now).
    pub fn of(
        release: Option<&Release>,
        seen_since: Option<DateTime<Utc>>,
        hold: TimeDelta,
        now: DateTime<Utc>,
    ) -> Presence {
        match release {
            None => Presence::Gone,
            Some(r) if planner::visibility(r, now) == Visibility::Public => {
                let until = seen_since.unwrap_or(now) + hold;
                if until <= now {
                    Presence::Public
                } else {
                    Presence::Settling { until }
                }
            }
            Some(_) => Presence::Hidden,
        }
    }
}

/// The mail side of the daemon: one state, never four flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailState {
    Idle,
    Running {
        since: DateTime<Utc>,
    },
    BackingOff {
        until: DateTime<Utc>,
        because: Backoff,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backoff {
    /// Another process (a `pressroom send` by hand) holds the send lock.
    LockBusy,
    /// A release's text could not be read again; the edit that caused it brings a rebuild.
    Unreadable,
    /// The last run failed: a persistent problem is logged every few minutes, not in a loop.
    RunFailed,
}

/// How long a busy send lock, or an unreadable text, is left before trying again.
pub const LOCK_RETRY: TimeDelta = TimeDelta::seconds(30);
/// After a mail run that failed, the next one waits this long.
pub const FAILED_RUN_RETRY: TimeDelta = TimeDelta::minutes(5);
/// A build whose commit failed (a full disk, a ledger file replaced) is tried again after
/// this long.
pub const COMMIT_RETRY: TimeDelta = TimeDelta::seconds(30);
/// A release deleted while its mail waits: its mail is cancelled once it has stayed away
/// this long (an editor that saves by delete-and-write brings it back sooner).
/// The same grace in which a vanished release's file may come back under another name as
/// itself (`release::identity`): within it a vanished release is the same release, after it
/// the release is gone and so is its waiting mail.
pub const DELETED_GRACE: TimeDelta = crate::release::identity::GRACE;

/// The daemon's state between events.
#[derive(Debug, Clone)]
pub struct Core {
    window: Window,
    mail: MailState,
    next_lift: Option<DateTime<Utc>>,
    commit_retry: Option<DateTime<Utc>>,
    releases_unknown: bool,
    /// How often to rescan the folders, where their events cannot be trusted (a network
    /// file system, a watcher that failed); and when next.
    rescan: Option<TimeDelta>,
    next_rescan: Option<DateTime<Utc>>,
    /// Releases whose mail waits but whose file has gone, and since when.
    missing: Vec<(String, DateTime<Utc>)>,
    /// As of the last `plan`.
    next_mail: Option<DateTime<Utc>>,
    next_gone: Option<DateTime<Utc>>,
    /// The digest's periods (`None`: no digests, as in tests of other things).
    periods: Option<Periods>,
    /// The latest period whose digests this core had made.
    digest_made: Option<DateTime<Utc>>,
    /// As of the last `plan_digests`: when the next period's digests are made, and when
    /// the first waiting digest may leave.
    next_digest: Option<DateTime<Utc>>,
    digest_mail: Option<DateTime<Utc>>,
}

impl Core {
    pub fn new(window: Window) -> Core {
        Core {
            window,
            mail: MailState::Idle,
            next_lift: None,
            commit_retry: None,
            releases_unknown: false,
            rescan: None,
            next_rescan: None,
            missing: Vec::new(),
            next_mail: None,
            next_gone: None,
            periods: None,
            digest_made: None,
            next_digest: None,
            digest_mail: None,
        }
    }

    /// The digest's periods, from the config (again after a reload).
    pub fn set_periods(&mut self, periods: Periods) {
        self.periods = Some(periods);
    }

    /// A reloaded config's dispatch window.
    pub fn set_window(&mut self, window: Window) {
        self.window = window;
    }

    /// Rescans every `every` from now on (`None`: no periodic rescan). The same interval
    /// set again keeps the next rescan where it was: a new watcher does not put it off.
    pub fn set_rescan(&mut self, every: Option<TimeDelta>, now: DateTime<Utc>) {
        if every != self.rescan || self.next_rescan.is_none() {
            self.next_rescan = every.map(|e| now + e);
        }
        self.rescan = every;
    }

    pub fn mail(&self) -> MailState {
        self.mail
    }

    pub fn on_event(&mut self, event: Event, now: DateTime<Utc>) -> Vec<Action> {
        match event {
            Event::Started | Event::Files(Change::Releases) | Event::ClockChanged => {
                vec![Action::Build]
            }
            Event::Files(Change::Nothing) => Vec::new(),
            Event::Files(Change::Media) => vec![Action::ReadMedia],
            Event::Files(Change::Folder) => vec![Action::Rewatch, Action::Build],
            Event::Files(Change::Config | Change::Rescan) | Event::Reload => {
                vec![Action::Reload, Action::Build]
            }
            Event::Wake => {
                let due = |t: Option<DateTime<Utc>>| t.is_some_and(|t| t <= now);
                let mut actions = Vec::new();
                if due(self.next_rescan) {
                    self.next_rescan = self.rescan.map(|e| now + e);
                    actions.push(Action::Rescan);
                }
                if due(self.next_lift) || due(self.commit_retry) {
                    actions.push(Action::Build);
                }
                actions
            }
            Event::Built(built) => {
                self.next_lift = built.next_lift;
                self.releases_unknown = built.releases_unknown;
                self.commit_retry = (!built.committed).then(|| now + COMMIT_RETRY);
                Vec::new()
            }
            Event::MailEnded(end) => {
                self.mail = match end {
                    MailEnd::Busy => MailState::BackingOff {
                        until: now + LOCK_RETRY,
                        because: Backoff::LockBusy,
                    },
                    MailEnd::Ran { unread: 0 } => MailState::Idle,
                    MailEnd::Ran { .. } => MailState::BackingOff {
                        until: now + LOCK_RETRY,
                        because: Backoff::Unreadable,
                    },
                    MailEnd::Failed => MailState::BackingOff {
                        until: now + FAILED_RUN_RETRY,
                        because: Backoff::RunFailed,
                    },
                };
                Vec::new()
            }
        }
    }

    /// Given the ledger's waiting mail (and where each release stands in the builder):
    /// cancels the mail of releases deleted for longer than the grace period, and starts a
    /// mail run if mail of a public release is due, the window is open and no run goes or
    /// backs off. The mail of a release that is there but not public now (postponed, made a
    /// draft again) waits for it to be public again; that of one whose version is younger
    /// than `[dispatch] hold` waits for it to settle.
    pub fn plan(
        &mut self,
        pending: &[Pending],
        presence: &dyn Fn(&str) -> Presence,
        now: DateTime<Utc>,
    ) -> Vec<Action> {
        let mut actions = Vec::new();
        let gone: Vec<&Pending> = pending
            .iter()
            .filter(|p| presence(&p.release_id) == Presence::Gone)
            .collect();
        // The mail of public releases, due once their version has settled.
        let known: Vec<Pending> = pending
            .iter()
            .filter_map(|p| match presence(&p.release_id) {
                Presence::Public => Some(p.clone()),
                Presence::Settling { until } => Some(Pending {
                    due: p.due.max(until),
                    ..p.clone()
                }),
                Presence::Hidden | Presence::Gone => None,
            })
            .collect();
        self.next_gone = None;
        if self.releases_unknown {
            // Which releases exist is not known: none is taken for deleted.
            self.missing.clear();
        } else {
            self.missing
                .retain(|(id, _)| gone.iter().any(|p| &p.release_id == id));
            for p in &gone {
                let since = match self.missing.iter().find(|(id, _)| *id == p.release_id) {
                    Some((_, since)) => *since,
                    None => {
                        self.missing.push((p.release_id.clone(), now));
                        now
                    }
                };
                if now - since >= DELETED_GRACE {
                    actions.push(Action::Cancel(p.release_id.clone()));
                    self.missing.retain(|(id, _)| *id != p.release_id);
                } else {
                    let at = since + DELETED_GRACE;
                    self.next_gone = Some(self.next_gone.map_or(at, |n| n.min(at)));
                }
            }
        }

        if let MailState::BackingOff { until, .. } = self.mail
            && until <= now
        {
            self.mail = MailState::Idle;
        }
        if self.mail == MailState::Idle && self.window.contains(now) {
            let due: Vec<(String, u32)> = known
                .iter()
                .filter(|p| p.due <= now)
                .map(|p| (p.release_id.clone(), p.version))
                .collect();
            if !due.is_empty() {
                self.mail = MailState::Running { since: now };
                actions.push(Action::StartMail(due));
            }
        }
        self.next_mail = match self.mail {
            MailState::Running { .. } => None,
            MailState::Idle => schedule::next_mail(&known, &self.window, now),
            MailState::BackingOff { until, .. } => {
                schedule::next_mail(&known, &self.window, now).map(|t| t.max(until))
            }
        };
        actions
    }

    /// After `plan`, given when the first waiting digest is due (`ledger::digests_due`):
    /// makes the digests of the latest period `digest::LAG` past (once; at start, the
    /// latest period before now, which makes nothing a second time), and starts a run of
    /// the waiting digests when one is due and no mail run goes or backs off. A clock that
    /// jumped over several periods makes one digest, of the latest: it holds everything
    /// since each subscriber's last one.
    ///
    /// `current`: the builder's view of the releases is current (not a clock set back
    /// behind the ledger's, no unreadable folder); if not, nothing is made or sent (a
    /// release withdrawn meanwhile would not be known) and the period waits.
    pub fn plan_digests(
        &mut self,
        waiting: Option<DateTime<Utc>>,
        current: bool,
        now: DateTime<Utc>,
    ) -> Vec<Action> {
        let mut actions = Vec::new();
        let Some(periods) = &self.periods else {
            return actions;
        };
        if !current || self.releases_unknown {
            self.next_digest = None;
            self.digest_mail = None;
            return actions;
        }
        let ripe = now - digest::LAG - TimeDelta::milliseconds(1);
        if let Some(period) = periods.latest_by(ripe)
            && self.digest_made.is_none_or(|made| made < period)
        {
            self.digest_made = Some(period);
            actions.push(Action::Digest { period });
        }
        self.next_digest = periods.next_after(ripe).map(digest::made_at);
        if let MailState::BackingOff { until, .. } = self.mail
            && until <= now
        {
            self.mail = MailState::Idle;
        }
        if actions.is_empty() && self.mail == MailState::Idle && waiting.is_some_and(|t| t <= now) {
            self.mail = MailState::Running { since: now };
            actions.push(Action::SendDigests);
        }
        self.digest_mail = match self.mail {
            MailState::Running { .. } => None,
            MailState::Idle => waiting.map(|t| t.max(now)),
            MailState::BackingOff { until, .. } => waiting.map(|t| t.max(until)),
        };
        actions
    }

    /// When the daemon must next act unless an event comes first: the next embargo lift,
    /// the next instant waiting mail may leave, the end of a deleted release's grace, or a
    /// failed commit's retry, the next periodic rescan, the next period's digests, the
    /// next waiting digest.
    /// When the next period's digests are made (as of the last `plan_digests`).
    pub fn next_digest(&self) -> Option<DateTime<Utc>> {
        self.next_digest
    }

    pub fn next_wakeup(&self) -> Option<DateTime<Utc>> {
        [
            self.next_lift,
            self.next_mail,
            self.next_gone,
            self.commit_retry,
            self.next_rescan,
            self.next_digest,
            self.digest_mail,
        ]
        .into_iter()
        .flatten()
        .min()
    }
}

#[cfg(test)]
mod tests;
