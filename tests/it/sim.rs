//! The daemon's core in simulated time. A seeded simulator drives the real core
//! (`pressroom::core`), the real builder, `publish::record` and a real SQLite ledger (temp
//! folders on tmpfs) through random sequences of what a press office and the world do —
//! saves (releases with and without their own `id`), edits, saves that land in two halves,
//! un-drafting, deletes and restores, withdrawals, pull-backs (postponed, made a draft
//! again), renames, new slugs, dates moved earlier and later, opt-outs, media-list edits
//! (rows removed, added back, topics and languages changed), SIGHUPs (sending hours
//! changed), a full output disk and its freeing, the clock set back and put right, crashes
//! (between a build and its commit, and between a batch's sends and their outcomes), and
//! mail outcomes (250, 451, 550, a dropped connection) — on a clock that jumps to the
//! core's next wake-up. Mail runs are performed the way the daemon's mail run uses the
//! ledger (mark interrupted, claim a batch, ask `Sendable`'s question, hand-off check, send,
//! record), against an in-process stand-in for the SMTP server; the real sender's pipeline
//! and SMTP are proven by the process tests (`smtp.rs`, `crash.rs`, `owner.rs`).
//!
//! After every step it checks, with its own oracles (the test's spec of each release, its
//! own reading of the dispatch window, of language matching and of which id a release
//! keeps, the wire it keeps), judged against true time:
//! - nothing is public before its date, nor while a draft; everything public is there
//!   (but while the disk is full or the clock reads behind, when the site stays as it was);
//! - a clock set back unpublishes nothing while it reads behind what the ledger recorded;
//! - nothing is mailed before its release's date, while it is not public, from a version
//!   younger than the hold, outside the window, to someone not targeted (as the run read
//!   the list), or to someone who opted out before the batch was claimed;
//! - nobody gets a release twice, except a crash's twin of a message in flight, with the
//!   same Message-ID; mail of a release under any id but the one it was first recorded with
//!   fails the seed (a rename or a new date made it another release).
//!
//! Digest subscribers and the daily digest's periods are simulated too (`sim/digests.rs`,
//! whose oracles are listed there).
//!
//! Each seed then runs to quiescence (nothing due, no run going) with a server that takes
//! everything, the disk freed and the clock right, and every recipient targeted at
//! publication who did not opt out and whose row did not change must have been mailed, or
//! have failed for good.
//!
//! `SIM_SEEDS` (default 400) and `SIM_STEPS` (default 60) set the size; `SIM_SEED` runs one
//! seed, `SIM_TRACE` how many of its last steps a failure prints. A failing seed is
//! printed; add it to `REGRESSIONS`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Datelike, TimeDelta, Timelike, Utc, Weekday};
use pressroom::build::{BuildError, Builder, Recording};
use pressroom::config::Config;
use pressroom::core::{Action, Built, Change, Core, Event, MailEnd, Presence};
use pressroom::ledger::{Delivery, Due, Ledger, OptOutSource, Outcome};
use pressroom::mail::policy::{self, Attempt, HandOff, Next, Window};
use pressroom::media::MediaList;
use pressroom::publish::{self, Deleted};
use proptest::prelude::Rng as _;
use proptest::test_runner::{RngAlgorithm, TestRng};

mod digests;

/// Seeds that once failed, run first.
/// 28 and 294: a release made, restored or renamed while the output disk was full
/// (identities seen by a failed build must be recorded all the same).
/// 6 and 216: a daemon restarted while its clock was set back took every release for
/// deleted and cancelled their waiting mail (a refused build knows no releases).
/// (148, 120): mail left for a release deleted while the clock was set back (the folder
/// was not read; all mail now waits until the clock is right).
/// (1552, 120) and (185, 120): a slug changed, or a release postponed, while the clock
/// was behind: the office's change, not the clock's (the oracle was wrong).
/// (1933, 120): a release restored and renamed while the clock was set back was mailed
/// as a new one (a refused build now still records which file holds which release).
/// Each with the number of steps it failed at.
const REGRESSIONS: &[(u64, usize)] = &[
    (28, 60),
    (294, 60),
    (6, 60),
    (216, 60),
    (148, 120),
    (1552, 120),
    (185, 120),
    (1933, 120),
];

const TOPICS: &[&str] = &["miljo", "jamstalldhet", "sport"];
/// The host of the shipped config's `base_url`, which `tag:` ids name.
const SITE_DOMAIN: &str = "127.0.0.1";
/// Media-list languages: none (everything), Swedish as `sv` and `sv-SE`, English.
const LANGS: &[Option<&str>] = &[None, Some("sv"), Some("sv-SE"), Some("en")];
const BATCH: usize = 4;

/// proptest's seeded ChaCha generator: reproducible from the seed alone.
struct Rng(TestRng);

impl Rng {
    fn seeded(seed: u64) -> Rng {
        let mut bytes = [0u8; 32];
        bytes[..8].copy_from_slice(&seed.to_le_bytes());
        Rng(TestRng::from_seed(RngAlgorithm::ChaCha, &bytes))
    }
    fn next(&mut self) -> u64 {
        self.0.next_u64()
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        (!items.is_empty()).then(|| &items[self.below(items.len() as u64) as usize])
    }
}

/// The test's own idea of one release.
#[derive(Debug, Clone)]
struct Spec {
    n: usize,
    date: DateTime<Utc>,
    draft: bool,
    withdrawn: bool,
    present: bool,
    topics: Vec<&'static str>,
    body: u32,
    /// The first build at which the spec says it was public, and its date then (the date
    /// `catch_up` is measured from, whatever it was moved to later).
    first_public: Option<DateTime<Utc>>,
    date_when_published: Option<DateTime<Utc>>,
    deleted_since: Option<DateTime<Utc>>,
    /// Deleted for longer than the grace, or withdrawn: its waiting mail may be cancelled.
    mail_may_stop: bool,
    /// No `id` in the file: the release is the one the ledger pinned to its file.
    implicit: bool,
    /// How often its file was renamed, and its slug changed.
    file_v: u32,
    slug_v: u32,
    /// The id it was first seen with by a build that was recorded, by the test's own
    /// reading of the rule (the site's domain, the local day of its date then, its slug
    /// then): kept through every re-dating, renaming and new slug after.
    first_id: Option<String>,
}

impl Spec {
    fn id(&self) -> String {
        if !self.implicit {
            return format!("sim-{}", self.n);
        }
        self.first_id.clone().unwrap_or_else(|| self.default_id())
    }
    /// The id a file without one gives itself: site domain, local day of its date, slug.
    fn default_id(&self) -> String {
        format!(
            "tag:{},{}:{}",
            SITE_DOMAIN,
            self.date
                .with_timezone(&chrono_tz::Europe::Stockholm)
                .format("%Y-%m-%d"),
            self.slug()
        )
    }
    fn slug(&self) -> String {
        match self.slug_v {
            0 => format!("sim-{}", self.n),
            v => format!("sim-{}-s{v}", self.n),
        }
    }
    fn file(&self) -> String {
        format!("sim-{}-f{}.md", self.n, self.file_v)
    }
    fn title(&self) -> String {
        format!("Simulerad nyhet {}", self.n)
    }
    fn public_at(&self, t: DateTime<Utc>) -> bool {
        self.present && !self.draft && !self.withdrawn && self.date <= t
    }
    fn text(&self) -> String {
        let id = if self.implicit {
            String::new()
        } else {
            format!("id = \"{}\"\n", self.id())
        };
        let mut front = format!(
            "title = \"{}\"\n{id}slug = \"{}\"\ndate = \"{}\"\ntopics = [{}]\ncontacts = [{{ name = \"Press\", email = \"press@example.org\" }}]",
            self.title(),
            self.slug(),
            self.date.to_rfc3339(),
            self.topics
                .iter()
                .map(|t| format!("\"{t}\""))
                .collect::<Vec<_>>()
                .join(", ")
        );
        if self.draft {
            front.push_str("\ndraft = true");
        }
        if self.withdrawn {
            front.push_str("\nwithdrawn = \"Felaktiga uppgifter\"");
        }
        // Each release's text is its own (a rename is recognised by its title or text).
        super::release(&front, &format!("Text {}, version {}.", self.n, self.body))
    }
}

#[derive(Debug, Clone)]
struct Journalist {
    address: String,
    topics: Vec<&'static str>,
    /// On the media list now: the office removes and adds rows.
    listed: bool,
    /// The row's language, if any (every release here is in `sv`, the site's).
    lang: Option<&'static str>,
    /// The office changed this journalist's row (removed, added back, topics) at some
    /// step: who gets what was published before is then the hand-off's to decide, and the
    /// quiescence oracle does not require their mail.
    changed: bool,
}

impl Journalist {
    fn targeted_by(&self, spec: &Spec) -> bool {
        // The test's own reading of RFC 4647 basic filtering both ways, for `sv` releases.
        let speaks_sv = match self.lang {
            None => true,
            Some(lang) => lang == "sv" || lang.starts_with("sv-"),
        };
        self.listed
            && speaks_sv
            && (self.topics.is_empty() || self.topics.iter().any(|t| spec.topics.contains(t)))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Server {
    TakesAll,
    /// Each message: this percentage 451, this percentage 550, this percentage dropped.
    Flaky {
        transient: u64,
        permanent: u64,
        dropped: u64,
    },
}

/// One message on the wire.
#[derive(Debug, Clone)]
struct Wired {
    release_id: String,
    address: String,
    message_id: String,
    at: DateTime<Utc>,
}

/// The daemon as the simulator runs it: the real core, builder and ledger.
struct Daemon {
    core: Core,
    builder: Builder,
    ledger: Ledger,
    /// The mail run going: what it still has to send.
    run: Option<Vec<(String, u32)>>,
    /// The window the run started under: a run keeps its config, as the daemon's does.
    run_window: Option<(Window, (u32, u32))>,
    /// The media list as the run read it when it started, as the daemon's does: the
    /// library's, and the test's own reading of it.
    run_media: Option<(MediaList, Vec<Journalist>)>,
}

struct Sim {
    seed: u64,
    rng: Rng,
    dir: tempfile::TempDir,
    config: Config,
    now: DateTime<Utc>,
    specs: Vec<Spec>,
    media: Vec<Journalist>,
    /// Address → the step at which it opted out.
    opted_out: HashMap<String, usize>,
    /// Digest subscribers, the digests sent, the crash twins each (address, period) may
    /// have, and (address, release) whose digest failed for good.
    subscribers: Vec<digests::Subscriber>,
    digest_wire: Vec<digests::DigestWired>,
    digest_twins: HashMap<(String, DateTime<Utc>), usize>,
    digest_failed: HashSet<(String, String)>,
    /// Each release's text as last written, and when it was first written so.
    written: HashMap<usize, (String, DateTime<Utc>)>,
    wire: Vec<Wired>,
    /// Messages sent whose outcome a crash kept from the ledger: each may go out once more.
    twins: HashMap<(String, String), usize>,
    failed_for_good: HashSet<(String, String)>,
    /// When each deferred message may be tried again, as the test's server was told.
    retry_at: HashMap<(String, String), DateTime<Utc>>,
    /// The run going has claimed something (a run that finds nothing due is a planning bug:
    /// the real daemon would start runs in a loop).
    run_claimed: bool,
    /// Runs started at one instant (more than a few is a hot loop).
    starts: (DateTime<Utc>, usize),
    server: Server,
    /// The sending hours of the config as now written.
    hours: (u32, u32),
    daemon: Option<Daemon>,
    /// The output disk refuses writes (the site folder is set aside and a file stands in
    /// its place, which no build can write into).
    disk_full: bool,
    /// After the disk is freed, the site may lag until the core's commit retry has built it.
    site_stale_until: Option<DateTime<Utc>>,
    /// How far the daemon's clock (`now`) runs behind true time: an admin or a restored
    /// virtual machine set it back. True time is `now + skew`.
    skew: TimeDelta,
    /// The releases on the site when the clock was set back, their slugs and dates then.
    pages_then: Vec<(usize, String, DateTime<Utc>)>,
    step: usize,
    trace: Vec<String>,
    pub builds: usize,
}

/// The sending hours an admin may set on weekdays (`window = "* * A-B * * Mon-Fri"`); the
/// sample config's are 7–17.
const HOURS: &[(u32, u32)] = &[(7, 17), (9, 15), (6, 20)];

/// Weekdays from hour `a` to the end of hour `b` in Stockholm, read by the test itself.
fn window_open(t: DateTime<Utc>, (a, b): (u32, u32)) -> bool {
    let local = t.with_timezone(&chrono_tz::Europe::Stockholm);
    !matches!(local.weekday(), Weekday::Sat | Weekday::Sun) && (a..=b).contains(&local.hour())
}

fn temp_root() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        tempfile::tempdir_in(shm).expect("temp dir on tmpfs")
    } else {
        tempfile::tempdir().expect("temp dir")
    }
}

impl Sim {
    fn new(seed: u64) -> Sim {
        Sim::starting(seed, None)
    }

    /// A simulation whose clock starts at `now`, or at a random instant of the week of
    /// 15 October 2018.
    fn starting(seed: u64, now: Option<DateTime<Utc>>) -> Sim {
        let mut rng = Rng::seeded(seed);
        let dir = temp_root();
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let config_dir = dir.path().join("config");
        std::fs::create_dir_all(config_dir.join("templates")).expect("mkdir");
        for entry in std::fs::read_dir(root.join("config")).expect("config") {
            let entry = entry.expect("entry");
            if entry.path().is_file() {
                std::fs::copy(entry.path(), config_dir.join(entry.file_name())).expect("copy");
            }
        }
        if root.join("config/templates").is_dir() {
            for entry in std::fs::read_dir(root.join("config/templates")).expect("templates") {
                let entry = entry.expect("entry");
                std::fs::copy(
                    entry.path(),
                    config_dir.join("templates").join(entry.file_name()),
                )
                .expect("copy");
            }
        }
        std::fs::create_dir_all(dir.path().join("releases")).expect("releases");
        let media: Vec<Journalist> = (0..6)
            .map(|i| Journalist {
                address: format!("j{i}@example.org"),
                topics: match i % 3 {
                    0 => Vec::new(),
                    _ => vec![TOPICS[rng.below(TOPICS.len() as u64) as usize]],
                },
                listed: true,
                lang: LANGS[rng.below(LANGS.len() as u64) as usize],
                changed: false,
            })
            .collect();
        write_media(&config_dir.join("media.csv"), &media);
        let (config, _) = Config::load(Some(&config_dir.join("pressroom.toml"))).expect("config");
        assert_eq!(
            config.site.domain(),
            SITE_DOMAIN,
            "the shipped base_url's host"
        );
        // Some instant in the week of 15 October 2018 (a weekend included).
        let week = "2018-10-15T00:00:00Z".parse::<DateTime<Utc>>().expect("t")
            + TimeDelta::minutes(rng.below(7 * 24 * 60) as i64);
        let now = now.unwrap_or(week);
        let mut sim = Sim {
            seed,
            rng,
            dir,
            config,
            now,
            specs: Vec::new(),
            media,
            opted_out: HashMap::new(),
            subscribers: Vec::new(),
            digest_wire: Vec::new(),
            digest_twins: HashMap::new(),
            digest_failed: HashSet::new(),
            written: HashMap::new(),
            wire: Vec::new(),
            twins: HashMap::new(),
            failed_for_good: HashSet::new(),
            retry_at: HashMap::new(),
            run_claimed: false,
            starts: (now, 0),
            server: Server::TakesAll,
            hours: HOURS[0],
            daemon: None,
            disk_full: false,
            site_stale_until: None,
            skew: TimeDelta::zero(),
            pages_then: Vec::new(),
            step: 0,
            trace: Vec::new(),
            builds: 0,
        };
        sim.start();
        sim.add_subscribers();
        sim
    }

    fn out(&self) -> PathBuf {
        self.config.paths.public.clone()
    }

    /// The daemon's clock reads behind what the ledger recorded: its builds are refused.
    /// (The ledger records an instant with each commit; a build with nothing to record
    /// records none.)
    fn clock_behind(&self) -> bool {
        let latest = self
            .daemon
            .as_ref()
            .and_then(|d| d.ledger.latest_build().expect("latest build"));
        latest.is_some_and(|l| self.now + pressroom::build::CLOCK_TOLERANCE < l)
    }

    /// A clock set back unpublishes nothing: every release on the site when it was set
    /// back that is still public in true time (the office did not pull it back) still has
    /// its page, at the slug it had then or at its new one.
    fn check_nothing_unpublished(&self) {
        let site = if self.disk_full {
            self.away()
        } else {
            self.out()
        };
        let truth = self.now + self.skew;
        for (n, slug_then, date_then) in &self.pages_then {
            let s = &self.specs[*n];
            // Pulled back or re-dated by the office since: its own change, not the clock's.
            if !s.public_at(truth) || s.date != *date_then {
                continue;
            }
            let page = |slug: &str| site.join("releases").join(slug).join("index.html");
            if !page(slug_then).exists() && !page(&s.slug()).exists() {
                self.fail(format!(
                    "{} was unpublished while the clock was {} behind",
                    s.slug(),
                    self.skew
                ));
            }
        }
    }

    /// The admin (or a restored virtual machine) sets the daemon's clock back, or time
    /// sync puts it right.
    fn set_clock_back(&mut self, by: TimeDelta) {
        if by > TimeDelta::zero() {
            let releases = self.out().join("releases");
            self.pages_then = self
                .specs
                .iter()
                .filter(|s| s.public_at(self.now) && s.first_public.is_some())
                .filter(|s| releases.join(s.slug()).join("index.html").exists())
                .map(|s| (s.n, s.slug(), s.date))
                .collect();
            self.now -= by;
            self.skew += by;
            self.note(format!("the clock is set back {by}"));
        } else {
            self.now += self.skew;
            self.note(format!(
                "time sync puts the clock right ({} ahead)",
                self.skew
            ));
            self.skew = TimeDelta::zero();
            self.pages_then.clear();
        }
        self.turn(Event::ClockChanged);
        self.plan();
    }

    /// Where the site waits while the disk is full.
    fn away(&self) -> PathBuf {
        self.out().with_extension("away")
    }

    /// The output disk fills up (every write refused), or is freed.
    fn set_disk_full(&mut self, full: bool) {
        if full == self.disk_full {
            return;
        }
        let (out, away) = (self.out(), self.away());
        if full {
            std::fs::rename(&out, &away).expect("set the site aside");
            std::fs::write(&out, "full").expect("a file in its place");
        } else {
            std::fs::remove_file(&out).expect("remove the stand-in");
            std::fs::rename(&away, &out).expect("the site back");
            self.site_stale_until = Some(self.now + pressroom::core::COMMIT_RETRY);
        }
        self.disk_full = full;
        self.note(if full {
            "the output disk is full"
        } else {
            "the output disk is freed"
        });
    }

    fn hold(&self) -> TimeDelta {
        TimeDelta::from_std(self.config.dispatch.hold).expect("hold")
    }

    fn window(&self) -> Window {
        Window::of(&self.config)
    }

    fn note(&mut self, what: impl Into<String>) {
        let line = format!("{} {}: {}", self.step, self.now.to_rfc3339(), what.into());
        self.trace.push(line);
    }

    fn fail(&self, why: String) -> ! {
        let tail: Vec<&String> = self
            .trace
            .iter()
            .rev()
            .take(env_or("SIM_TRACE", 40) as usize)
            .collect();
        let tail: Vec<&String> = tail.into_iter().rev().collect();
        panic!(
            "seed {} failed at step {}: {why}\n(re-run with SIM_SEED={}; last steps:)\n{}",
            self.seed,
            self.step,
            self.seed,
            tail.iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join("\n")
        )
    }

    /// A new process on the same files and ledger.
    fn start(&mut self) {
        let ledger = Ledger::open_in(&self.config.paths.state).expect("ledger");
        let builder = Builder::new(self.config.clone(), self.out())
            .with_history(ledger.history().expect("history"), Recording::Record);
        let mut core = Core::new(self.window());
        core.set_periods(pressroom::digest::Periods::of(&self.config));
        self.daemon = Some(Daemon {
            core,
            builder,
            ledger,
            run: None,
            run_window: None,
            run_media: None,
        });
        self.turn(Event::Started);
        self.plan();
    }

    fn daemon(&mut self) -> &mut Daemon {
        self.daemon.as_mut().expect("a daemon")
    }

    fn turn(&mut self, event: Event) {
        let mut events = vec![event];
        while let Some(event) = events.pop() {
            let actions = {
                let now = self.now;
                self.daemon().core.on_event(event, now)
            };
            for action in actions {
                events.extend(self.perform(action));
            }
        }
    }

    fn plan(&mut self) {
        let now = self.now;
        let hold = self.hold();
        let d = self.daemon();
        let pending = d.ledger.pending().expect("pending");
        let builder = &d.builder;
        let presence = |id: &str| builder.presence(id, hold, now);
        let actions = d.core.plan(&pending, &presence, now);
        for action in actions {
            if let Some(event) = self.perform(action) {
                self.turn(event);
            }
        }
        self.plan_digests();
    }

    fn perform(&mut self, action: Action) -> Option<Event> {
        let now = self.now;
        match action {
            Action::Build => Some(Event::Built(self.build(true))),
            Action::Reload => {
                let d = self.daemon.as_mut().expect("daemon");
                let history = d.ledger.history().expect("history");
                d.builder = Builder::new(self.config.clone(), self.config.paths.public.clone())
                    .with_history(history, Recording::Record);
                d.core.set_window(Window::of(&self.config));
                d.core
                    .set_periods(pressroom::digest::Periods::of(&self.config));
                None
            }
            Action::ReadMedia | Action::Rewatch => None,
            // The simulator never sets a periodic rescan.
            Action::Rescan => Some(Event::Files(Change::Releases)),
            Action::StartMail(due) => {
                self.starts = match self.starts {
                    (at, n) if at == now => (at, n + 1),
                    _ => (now, 1),
                };
                if self.starts.1 > 5 {
                    self.fail(format!(
                        "{} mail runs started at {now}: a loop",
                        self.starts.1
                    ));
                }
                let (media, _) = MediaList::load(&self.config.paths.media, &self.config.site.lang);
                let snapshot = self.media.clone();
                let d = self.daemon();
                d.ledger.mark_interrupted(now).expect("mark interrupted");
                d.run = Some(due);
                d.run_media = Some((media, snapshot));
                let window = (self.window(), self.hours);
                self.daemon().run_window = Some(window);
                self.run_claimed = false;
                self.note("mail run starts");
                // The daemon's run claims at once.
                self.mail_step(false);
                None
            }
            Action::Digest { period } => {
                self.make_digests(period);
                None
            }
            Action::SendDigests => self.send_digests(),
            Action::Cancel(id) => {
                let n = self.daemon().ledger.cancel(&id, None, now).expect("cancel");
                self.note(format!("cancelled {n} of deleted {id}"));
                None
            }
        }
    }

    /// Builds as of now; commits unless `commit` is false (a crash cut it off).
    fn build(&mut self, commit: bool) -> Built {
        self.builds += 1;
        let now = self.now;
        let config = self.config.clone();
        let d = self.daemon.as_mut().expect("daemon");
        let built = d.builder.build(now);
        let next_lift = pressroom::planner::next_lift(d.builder.releases().map(|r| &**r), now);
        let mut report = match built {
            Ok(r) => r,
            Err(e @ BuildError::ClockBehind { .. }) if self.skew > TimeDelta::zero() => {
                // Refused: the site stays as it was; only which file holds which release
                // is recorded.
                if commit {
                    publish::record_identities(&mut d.ledger, &mut d.builder, now)
                        .expect("record identities");
                    self.pinned();
                }
                self.note(format!("the build was refused: {e}"));
                self.check_nothing_unpublished();
                return Built {
                    next_lift,
                    committed: !e.retried(),
                    releases_unknown: e.releases_unknown(),
                };
            }
            Err(e) if self.disk_full => {
                // Nothing is published or recorded but which file holds which release; the
                // core tries again (COMMIT_RETRY).
                if commit {
                    publish::record_identities(&mut d.ledger, &mut d.builder, now)
                        .expect("record identities");
                    self.pinned();
                }
                self.note(format!("the build failed: {e}"));
                return Built {
                    next_lift,
                    committed: !e.retried(),
                    releases_unknown: e.releases_unknown(),
                };
            }
            Err(e) => self.fail(format!("the build failed: {e}")),
        };
        if commit {
            publish::record(
                &mut d.ledger,
                &mut d.builder,
                &config,
                &mut report,
                Deleted::Wait,
                now,
            )
            .expect("commit");
        }
        self.check_site();
        if commit {
            self.pinned();
            for s in &mut self.specs {
                if s.first_public.is_none() && s.public_at(now) {
                    s.first_public = Some(now);
                    s.date_when_published = Some(s.date);
                }
            }
        }
        Built {
            next_lift,
            committed: true,
            releases_unknown: false,
        }
    }

    /// A recorded build saw every file there: each release without an id that had none
    /// yet has the one it gives itself now, for good.
    fn pinned(&mut self) {
        for s in &mut self.specs {
            if s.implicit && s.present && s.first_id.is_none() {
                s.first_id = Some(s.default_id());
            }
        }
    }

    /// Nothing public before its date or while a draft; everything public is there.
    fn check_site(&self) {
        let out = if self.disk_full {
            self.away()
        } else {
            self.out()
        };
        if self.skew > TimeDelta::zero() {
            self.check_nothing_unpublished();
        }
        let stale = self.disk_full
            || self.site_stale_until.is_some_and(|t| self.now < t)
            || self.clock_behind();
        let feed = std::fs::read_to_string(out.join("feed.atom")).unwrap_or_default();
        for s in &self.specs {
            let page = out.join("releases").join(s.slug()).join("index.html");
            let never_public = s.first_public.is_none();
            if s.public_at(self.now) && !stale {
                if !page.exists() {
                    self.fail(format!("{} is public but has no page", s.slug()));
                }
                if !feed.contains(&s.title()) {
                    self.fail(format!("{} is public but not in feed.atom", s.slug()));
                }
            } else if never_public && (s.draft || s.date > self.now) {
                if page.exists() {
                    self.fail(format!(
                        "{} (date {}, draft {}) has a page at {}",
                        s.slug(),
                        s.date,
                        s.draft,
                        self.now
                    ));
                }
                if feed.contains(&s.title()) {
                    self.fail(format!("{} is in feed.atom before it is public", s.slug()));
                }
            }
        }
    }

    /// The releases whose files are there.
    fn present(&self) -> Vec<usize> {
        (0..self.specs.len())
            .filter(|i| self.specs[*i].present)
            .collect()
    }

    fn write(&mut self, i: usize) {
        let s = &self.specs[i];
        let path = self.dir.path().join("releases").join(s.file());
        let text = s.text();
        // Its version, for the hold: what readers see (a new slug is not a new version).
        let version: String = text.lines().filter(|l| !l.starts_with("slug = ")).collect();
        if self.written.get(&s.n).is_none_or(|(t, _)| *t != version) {
            self.written.insert(s.n, (version, self.now));
        }
        std::fs::write(path, text).expect("write");
    }

    fn files_changed(&mut self) {
        self.turn(Event::Files(Change::Releases));
        self.plan();
    }

    /// One batch of the mail run going, or its end.
    fn mail_step(&mut self, crash_before_record: bool) {
        let now = self.now;
        let step = self.step;
        let Some((window, hours)) = self.daemon().run_window.clone() else {
            return;
        };
        let server = self.server;
        let max_retry_age = self.config.dispatch.max_retry_age;
        let Some(run) = self.daemon().run.clone() else {
            return;
        };
        let Some((id, version)) = run.first().cloned() else {
            self.daemon().run = None;
            self.turn(Event::MailEnded(MailEnd::Ran { unread: 0 }));
            self.plan();
            return;
        };
        // The run stops claiming when the window closes.
        if !window.contains(now) {
            self.daemon().run = None;
            self.note("the window closed: the run ends");
            self.turn(Event::MailEnded(MailEnd::Ran { unread: 0 }));
            self.plan();
            return;
        }
        // Asked before each message, as the daemon's run asks `Sendable`: the release is
        // public now in a version older than the hold.
        let hold = self.hold();
        let d = self.daemon();
        let presence = d.builder.presence(&id, hold, now);
        if presence != Presence::Public {
            if let Some(run) = d.run.as_mut() {
                run.remove(0);
            }
            self.note(format!("{id} is {presence:?}: the rest of its mail waits"));
            return;
        }
        let batch = d
            .ledger
            .claim(&id, version, Due::By(now), None, BATCH, now)
            .expect("claim");
        if batch.is_empty() {
            if !self.run_claimed {
                self.fail(format!("a mail run started for {id} with nothing due"));
            }
            let d = self.daemon();
            if let Some(run) = d.run.as_mut() {
                run.remove(0);
            }
            return;
        }
        let opted_out = d.ledger.opted_out().expect("opted out");
        // The release as the run was given it, and the media list as the run read it.
        let release = d.builder.release(&id);
        let (media, read_media) = d.run_media.clone().expect("a run has its media list");
        self.run_claimed = true;
        let mut outcomes: Vec<(Delivery, Outcome)> = Vec::new();
        let mut sent_now = Vec::new();
        // Retry times count once recorded (a crash first makes them `unknown`: sent again).
        let mut retries = Vec::new();
        let mut failures = Vec::new();
        for delivery in batch {
            let key = (delivery.release_id.clone(), delivery.address.clone());
            if let Some(at) = self.retry_at.get(&key)
                && now < *at
            {
                self.fail(format!(
                    "{} tried again at {now}, before its retry time {at}",
                    delivery.address
                ));
            }
            // The hand-off check is the library's (`policy::hand_off`, what the sender
            // asks); the oracle (`check_sent`) judges its answer by the test's own reading.
            let listed = media
                .recipients
                .iter()
                .find(|r| r.key() == delivery.address);
            let handed = match &release {
                Some(r) => policy::hand_off(r, &delivery.address, &opted_out, listed),
                None => {
                    let reason = "the release is gone".to_string();
                    outcomes.push((delivery, Outcome::Cancelled { reason }));
                    continue;
                }
            };
            if let HandOff::Cancel(why) = handed {
                let reason = why.to_string();
                outcomes.push((delivery, Outcome::Cancelled { reason }));
                continue;
            }
            let attempt = match server {
                Server::TakesAll => Attempt::Accepted("250 ok".into()),
                Server::Flaky {
                    transient,
                    permanent,
                    dropped,
                } => {
                    let roll = self.rng.below(118);
                    if roll < transient {
                        Attempt::Transient("451 later".into())
                    } else if roll < transient + permanent {
                        Attempt::Permanent("550 no such user".into())
                    } else if roll < transient + permanent + dropped {
                        Attempt::Transient("connection dropped".into())
                    } else {
                        Attempt::Accepted("250 ok".into())
                    }
                }
            };
            if let Attempt::Accepted(_) = attempt {
                sent_now.push(Wired {
                    release_id: delivery.release_id.clone(),
                    address: delivery.address.clone(),
                    message_id: delivery.message_id.clone(),
                    at: now,
                });
            }
            let outcome = match policy::after_attempt(
                &attempt,
                delivery.attempts,
                delivery.queued_at,
                now,
                max_retry_age,
            ) {
                Next::Sent => Outcome::Sent {
                    reply: "250 ok".into(),
                },
                Next::Retry { at } => {
                    retries.push((key, at));
                    Outcome::Deferred {
                        reply: "451".into(),
                        retry_at: at,
                    }
                }
                Next::Failed { reason } => {
                    failures.push(key);
                    Outcome::Failed { reply: reason }
                }
            };
            outcomes.push((delivery, outcome));
        }
        for w in &sent_now {
            self.check_sent(w, step, hours, &read_media);
        }
        self.note(format!("{id}: sent {} of a batch", sent_now.len()));
        self.wire.extend(sent_now.iter().cloned());
        if crash_before_record {
            for w in &sent_now {
                *self
                    .twins
                    .entry((w.release_id.clone(), w.address.clone()))
                    .or_default() += 1;
            }
            self.note("crash before the outcomes were recorded");
            self.crash();
            return;
        }
        self.daemon().ledger.record(&outcomes, now).expect("record");
        self.retry_at.extend(retries);
        self.failed_for_good.extend(failures);
    }

    /// Nothing early, outside the window, to the untargeted, the opted out, or twice.
    fn check_sent(&self, w: &Wired, step: usize, hours: (u32, u32), media: &[Journalist]) {
        let Some(spec) = self.specs.iter().find(|s| s.id() == w.release_id) else {
            self.fail(format!("mail of an unknown release {}", w.release_id));
        };
        if w.at < spec.date {
            self.fail(format!(
                "{} mailed at {} before its date {}",
                w.address, w.at, spec.date
            ));
        }
        if spec.draft {
            self.fail(format!("draft {} mailed to {}", spec.slug(), w.address));
        }
        if !spec.public_at(w.at) {
            self.fail(format!(
                "{} mailed to {} while not public",
                spec.slug(),
                w.address
            ));
        }
        if let Some((_, since)) = self.written.get(&spec.n)
            && w.at < *since + self.hold()
        {
            self.fail(format!(
                "{} mailed to {} at {}, from a version written at {since}: inside the hold",
                spec.slug(),
                w.address,
                w.at
            ));
        }
        if !window_open(w.at, hours) {
            self.fail(format!(
                "{} mailed outside the window at {}",
                w.address, w.at
            ));
        }
        // As the run read the media list: the test's own record of it at the run's start.
        let Some(j) = media.iter().find(|j| j.address == w.address && j.listed) else {
            self.fail(format!("{} is not on the media list", w.address));
        };
        if !j.targeted_by(spec) {
            self.fail(format!("{} is not targeted by {}", w.address, spec.slug()));
        }
        if self.opted_out.get(&w.address).is_some_and(|at| *at < step) {
            self.fail(format!("{} opted out and was mailed", w.address));
        }
        let earlier: Vec<&Wired> = self
            .wire
            .iter()
            .filter(|x| x.release_id == w.release_id && x.address == w.address)
            .collect();
        if !earlier.is_empty() {
            let allowed = self
                .twins
                .get(&(w.release_id.clone(), w.address.clone()))
                .copied()
                .unwrap_or(0);
            if earlier.len() > allowed {
                self.fail(format!(
                    "{} got {} a {} time ({} crash twins allowed)",
                    w.address,
                    w.release_id,
                    earlier.len() + 1,
                    allowed
                ));
            }
            if earlier.iter().any(|x| x.message_id != w.message_id) {
                self.fail(format!(
                    "{}'s second copy of {} has another Message-ID",
                    w.address, w.release_id
                ));
            }
        }
    }

    /// The admin sets other sending hours in the config file.
    fn set_hours(&mut self, hours: (u32, u32)) {
        let file = self.dir.path().join("config/pressroom.toml");
        let text = std::fs::read_to_string(&file).expect("config");
        let (a, b) = self.hours;
        let from = format!("window = \"* * {a}-{b} * * Mon-Fri\"");
        assert!(text.contains(&from), "the config has no `{from}`");
        let to = format!("window = \"* * {}-{} * * Mon-Fri\"", hours.0, hours.1);
        std::fs::write(&file, text.replace(&from, &to)).expect("config");
        let (config, _) = Config::load(Some(&file)).expect("config");
        self.config = config;
        self.hours = hours;
    }

    fn crash(&mut self) {
        self.daemon = None;
        self.start();
    }

    /// Moves the clock to the core's next wake-up, or `by` if that is sooner.
    fn advance(&mut self, by: TimeDelta) {
        let wake = self.daemon().core.next_wakeup();
        let target = self.now + by;
        match wake {
            Some(w) if w <= target => {
                self.now = self.now.max(w);
                self.note("wake-up");
                self.turn(Event::Wake);
            }
            _ => self.now = target,
        }
        self.track_deletions();
        self.plan();
    }

    /// Moves the clock to one second before the next instant a rule turns on (a lift, a
    /// retry time, the window's opening), unless the core must wake before that, and makes
    /// the daemon look then: a save (a build) or, with nothing to save, a wake-up. Random
    /// instants would almost never land in that second.
    fn probe_just_before(&mut self) {
        let now = self.now;
        let second = TimeDelta::seconds(1);
        let opening = self.window().next_opening(now + second);
        let edges = self
            .specs
            .iter()
            .map(|s| s.date)
            .chain(self.retry_at.values().copied())
            .chain(opening)
            .filter(|t| *t - second > now);
        let Some(edge) = edges.min() else {
            return;
        };
        let target = edge - second;
        if self
            .daemon()
            .core
            .next_wakeup()
            .is_some_and(|w| w <= target)
        {
            self.note("probe: the core wakes first");
            self.advance(target - now);
            return;
        }
        self.now = target;
        self.track_deletions();
        let present: Vec<usize> = (0..self.specs.len())
            .filter(|i| self.specs[*i].present)
            .collect();
        match self.rng.pick(&present) {
            Some(&i) if self.rng.chance(50) => {
                self.specs[i].body += 1;
                self.note(format!(
                    "probe: a second before {edge}, edit {}",
                    self.specs[i].slug()
                ));
                self.write(i);
                self.files_changed();
            }
            _ => {
                self.note(format!("probe: a second before {edge}, a wake-up"));
                self.turn(Event::Wake);
                self.plan();
            }
        }
    }

    fn track_deletions(&mut self) {
        let now = self.now;
        for s in &mut self.specs {
            if let Some(since) = s.deleted_since
                && now - since >= pressroom::core::DELETED_GRACE
                && s.first_public.is_some()
            {
                s.mail_may_stop = true;
            }
        }
    }

    fn one_step(&mut self) {
        self.step += 1;
        let running = self.daemon().run.is_some();
        let roll = self.rng.below(118);
        match roll {
            0..=9 => self.probe_just_before(),
            10..=19 => {
                let by = match self.rng.below(4) {
                    0 => TimeDelta::seconds(1 + self.rng.below(10) as i64),
                    1 => TimeDelta::minutes(1 + self.rng.below(60) as i64),
                    2 => TimeDelta::hours(1 + self.rng.below(6) as i64),
                    _ => TimeDelta::days(1),
                };
                self.note(format!("advance {by}"));
                self.advance(by);
            }
            20..=39 if running => {
                let crash = self.rng.chance(5);
                self.mail_step(crash);
                self.now += TimeDelta::seconds(1);
            }
            20..=51 if self.specs.len() < 8 => {
                let n = self.specs.len();
                let offset = match self.rng.below(3) {
                    0 => -(self.rng.below(90) as i64),
                    1 => self.rng.below(3) as i64,
                    _ => self.rng.below(3 * 24 * 60) as i64,
                };
                let topic = TOPICS[self.rng.below(TOPICS.len() as u64) as usize];
                let mut date = (self.now + TimeDelta::minutes(offset))
                    .with_second(0)
                    .and_then(|t| t.with_nanosecond(0))
                    .expect("a minute");
                // Now and then dated seconds after the next digest's period: public when
                // that digest is made (`digest::LAG` later), yet not in it.
                let next_digest = self.daemon().core.next_digest();
                if let Some(made) = next_digest.filter(|_| self.rng.chance(15)) {
                    let period = made - pressroom::digest::LAG - TimeDelta::milliseconds(1);
                    date = period + TimeDelta::seconds(1 + self.rng.below(9) as i64);
                }
                let spec = Spec {
                    n,
                    date,
                    draft: self.rng.chance(20),
                    withdrawn: false,
                    present: true,
                    topics: vec![topic],
                    body: 1,
                    first_public: None,
                    date_when_published: None,
                    deleted_since: None,
                    mail_may_stop: false,
                    implicit: self.rng.chance(50),
                    file_v: 0,
                    slug_v: 0,
                    first_id: None,
                };
                self.note(format!(
                    "save {} dated {} draft {} topic {topic}, {}",
                    spec.slug(),
                    spec.date,
                    spec.draft,
                    if spec.implicit { "no id" } else { "its own id" }
                ));
                self.specs.push(spec);
                self.write(n);
                self.files_changed();
            }
            40..=59 => {
                let present = self.present();
                if let Some(&i) = self.rng.pick(&present) {
                    self.specs[i].body += 1;
                    self.note(format!("edit the text of {}", self.specs[i].slug()));
                    self.write(i);
                    self.files_changed();
                }
            }
            60..=63 => {
                let drafts: Vec<usize> = (0..self.specs.len())
                    .filter(|i| self.specs[*i].present && self.specs[*i].draft)
                    .collect();
                if let Some(&i) = self.rng.pick(&drafts) {
                    self.specs[i].draft = false;
                    self.note(format!("un-draft {}", self.specs[i].slug()));
                    self.write(i);
                    self.files_changed();
                }
            }
            64..=67 => {
                let present = self.present();
                if let Some(&i) = self.rng.pick(&present) {
                    let s = &mut self.specs[i];
                    s.present = false;
                    s.deleted_since = Some(self.now);
                    let path = self.dir.path().join("releases").join(s.file());
                    self.note(format!("delete {}", self.specs[i].slug()));
                    std::fs::remove_file(path).expect("delete");
                    self.files_changed();
                }
            }
            68..=71 => {
                let gone: Vec<usize> = (0..self.specs.len())
                    .filter(|i| !self.specs[*i].present)
                    .collect();
                if let Some(&i) = self.rng.pick(&gone) {
                    self.track_deletions();
                    let s = &mut self.specs[i];
                    s.present = true;
                    s.deleted_since = None;
                    self.note(format!("restore {}", self.specs[i].slug()));
                    self.write(i);
                    self.files_changed();
                }
            }
            72..=74 => {
                let public: Vec<usize> = (0..self.specs.len())
                    .filter(|i| {
                        self.specs[*i].public_at(self.now) && self.specs[*i].first_public.is_some()
                    })
                    .collect();
                // The office pulls a published release back: withdraws it, postpones it,
                // or makes it a draft again; also while its mail is leaving (each message
                // is checked at hand-off).
                if let Some(&i) = self.rng.pick(&public) {
                    let s = &mut self.specs[i];
                    match self.rng.below(3) {
                        0 => {
                            s.withdrawn = true;
                            s.mail_may_stop = true;
                        }
                        1 => {
                            let minutes = 1 + self.rng.below(180) as i64;
                            s.date = (self.now + TimeDelta::minutes(minutes))
                                .with_second(0)
                                .and_then(|t| t.with_nanosecond(0))
                                .expect("a minute");
                        }
                        _ => {
                            s.draft = true;
                            s.mail_may_stop = true;
                        }
                    }
                    let s = &self.specs[i];
                    self.note(format!(
                        "pull back {}: withdrawn {}, date {}, draft {}",
                        s.slug(),
                        s.withdrawn,
                        s.date,
                        s.draft
                    ));
                    self.write(i);
                    self.files_changed();
                }
            }
            75..=82 if self.rng.chance(40) => {
                if self.rng.chance(50) {
                    self.toggle_pause();
                } else {
                    self.subscriber_opts_out();
                }
            }
            75..=82 => {
                let j = self.rng.below(self.media.len() as u64) as usize;
                let address = self.media[j].address.clone();
                let now = self.now;
                self.daemon()
                    .ledger
                    .unsubscribe(&address, OptOutSource::OneClick, now)
                    .expect("unsubscribe");
                self.opted_out.entry(address.clone()).or_insert(self.step);
                self.note(format!("{address} unsubscribes"));
            }
            83..=85 => {
                if self.rng.chance(50) {
                    let hours = HOURS[self.rng.below(HOURS.len() as u64) as usize];
                    self.set_hours(hours);
                }
                self.note(format!("SIGHUP (hours {:?})", self.hours));
                self.turn(Event::Reload);
                self.plan();
            }
            86..=88 => {
                self.note("crash");
                self.crash();
            }
            89..=90 => {
                // A save whose build ran and whose commit a crash cut off.
                let present = self.present();
                if let Some(&i) = self.rng.pick(&present) {
                    self.specs[i].body += 1;
                    self.note(format!(
                        "edit {} and crash between its build and the commit",
                        self.specs[i].slug()
                    ));
                    self.write(i);
                    self.build(false);
                    self.crash();
                }
            }
            91..=94 => {
                // The office edits the media list: takes a journalist off, puts one back,
                // or changes their topics; then the daemon reads it (a save is a file
                // event; SIGHUP reloads it too).
                let j = self.rng.below(self.media.len() as u64) as usize;
                let change = self.rng.below(4);
                let lang = LANGS[self.rng.below(LANGS.len() as u64) as usize];
                let jn = &mut self.media[j];
                jn.changed = true;
                match change {
                    0 => jn.listed = false,
                    1 => jn.listed = true,
                    2 => jn.lang = lang,
                    _ => {
                        jn.topics = match self.rng.below(2) {
                            0 => Vec::new(),
                            _ => vec![TOPICS[self.rng.below(TOPICS.len() as u64) as usize]],
                        }
                    }
                }
                let jn = self.media[j].clone();
                self.note(format!(
                    "media list: {} listed {}, lang {:?}, topics {:?}",
                    jn.address, jn.listed, jn.lang, jn.topics
                ));
                write_media(&self.config.paths.media, &self.media);
                self.turn(Event::Files(Change::Media));
                self.plan();
            }
            100..=107 => {
                // What an office does to a release's identity: renames its file, gives it
                // a new slug, or moves its date earlier or later (before or after it was
                // published). None of it makes it another release.
                let present = self.present();
                if let Some(&i) = self.rng.pick(&present) {
                    let dir = self.dir.path().join("releases");
                    match roll {
                        100..=102 => {
                            let from = dir.join(self.specs[i].file());
                            self.specs[i].file_v += 1;
                            let to = dir.join(self.specs[i].file());
                            self.note(format!(
                                "rename {} to {}",
                                from.display(),
                                self.specs[i].file()
                            ));
                            std::fs::rename(from, to).expect("rename");
                            // The text is unchanged: its age for the hold goes on.
                        }
                        103..=104 => {
                            self.specs[i].slug_v += 1;
                            self.note(format!("new slug {}", self.specs[i].slug()));
                            self.write(i);
                        }
                        _ => {
                            let minutes = self.rng.below(3 * 24 * 60) as i64 - 90;
                            self.specs[i].date = (self.now + TimeDelta::minutes(minutes))
                                .with_second(0)
                                .and_then(|t| t.with_nanosecond(0))
                                .expect("a minute");
                            self.note(format!(
                                "re-date {} to {}",
                                self.specs[i].slug(),
                                self.specs[i].date
                            ));
                            self.write(i);
                        }
                    }
                    self.files_changed();
                }
            }
            108..=111 => {
                // A save that lands in two halves (a copy over a slow share, an editor
                // writing in place): the first half is a release of its own for a moment.
                let present = self.present();
                if let Some(&i) = self.rng.pick(&present) {
                    self.specs[i].body += 1;
                    let whole = self.specs[i].text();
                    let mut cut = whole.len() - 6;
                    while !whole.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    let path = self.dir.path().join("releases").join(self.specs[i].file());
                    let pause = TimeDelta::seconds(1 + self.rng.below(3) as i64);
                    self.note(format!(
                        "save {} in two halves, {pause} apart",
                        self.specs[i].slug()
                    ));
                    // The half is a version as the hold counts them.
                    let half: String = whole[..cut]
                        .lines()
                        .filter(|l| !l.starts_with("slug = "))
                        .collect();
                    self.written.insert(self.specs[i].n, (half, self.now));
                    std::fs::write(&path, &whole[..cut]).expect("write");
                    self.files_changed();
                    self.advance(pause);
                    self.write(i);
                    self.files_changed();
                }
            }
            112..=114 => {
                let full = !self.disk_full;
                self.set_disk_full(full);
                // Builds meanwhile fail and are retried by the core; nothing else tells
                // the daemon the disk has room again.
            }
            115..=117 => {
                if self.skew == TimeDelta::zero() && !self.disk_full {
                    let by = match self.rng.below(3) {
                        0 => TimeDelta::minutes(2 + self.rng.below(60) as i64),
                        1 => TimeDelta::hours(1 + self.rng.below(24) as i64),
                        _ => TimeDelta::days(1 + self.rng.below(3) as i64),
                    };
                    self.set_clock_back(by);
                } else if self.skew > TimeDelta::zero() {
                    self.set_clock_back(TimeDelta::zero());
                }
            }
            _ => {
                self.server = match self.rng.below(3) {
                    0 => Server::TakesAll,
                    _ => Server::Flaky {
                        transient: self.rng.below(40),
                        permanent: self.rng.below(15),
                        dropped: self.rng.below(15),
                    },
                };
                self.note(format!("the server now {:?}", self.server));
            }
        }
    }

    /// With a server that takes everything and nothing else happening, runs until nothing
    /// is due and no run goes; then everyone targeted has it, or failed for good.
    fn quiesce(&mut self) {
        self.server = Server::TakesAll;
        self.set_disk_full(false);
        if self.skew > TimeDelta::zero() {
            self.set_clock_back(TimeDelta::zero());
        }
        self.note("quiescence");
        let mut periods_left = 2;
        for _ in 0..20_000 {
            self.step += 1;
            if self.daemon().run.is_some() {
                self.mail_step(false);
                self.now += TimeDelta::seconds(1);
                continue;
            }
            // The digest's periods come every day: quiet is when nothing but the next
            // period is ahead. Two more periods are then let come, so that what was
            // published last is in a digest too.
            let d = self.daemon();
            let (wake, period) = (d.core.next_wakeup(), d.core.next_digest());
            let idle = d.ledger.digests_due().expect("digests due").is_none()
                && d.ledger.pending().expect("pending").is_empty();
            let now = self.now;
            let lifts_ahead = self
                .specs
                .iter()
                .any(|s| s.present && !s.draft && !s.withdrawn && s.date > now);
            let only_the_period = wake.is_some() && wake == period && idle && !lifts_ahead;
            if only_the_period && periods_left > 0 {
                periods_left -= 1;
            } else if only_the_period {
                break;
            }
            match wake {
                Some(w) => {
                    self.now = self.now.max(w);
                    self.turn(Event::Wake);
                    self.track_deletions();
                    self.plan();
                }
                None => break,
            }
        }
        let d = self.daemon();
        let wake = d.core.next_wakeup();
        if d.run.is_some() || (wake.is_some() && wake != d.core.next_digest()) {
            self.fail("no quiescence after 20,000 steps".into());
        }
        self.check_digests_at_quiescence();
        let catch_up = TimeDelta::from_std(self.config.dispatch.catch_up).expect("catch_up");
        let mailed: BTreeMap<(String, String), usize> =
            self.wire.iter().fold(BTreeMap::new(), |mut m, w| {
                *m.entry((w.release_id.clone(), w.address.clone()))
                    .or_default() += 1;
                m
            });
        for s in &self.specs {
            let Some(first) = s.first_public else {
                continue;
            };
            if s.mail_may_stop || !s.present || s.withdrawn {
                continue;
            }
            let late = first - s.date_when_published.unwrap_or(s.date);
            if late > catch_up - TimeDelta::minutes(1) {
                continue;
            }
            for j in self.media.iter().filter(|j| j.targeted_by(s) && !j.changed) {
                let key = (s.id(), j.address.clone());
                if mailed.contains_key(&key)
                    || self.failed_for_good.contains(&key)
                    || self.opted_out.contains_key(&j.address)
                {
                    continue;
                }
                let rows = self
                    .daemon
                    .as_ref()
                    .map(|d| d.ledger.deliveries(&s.id()).unwrap_or_default())
                    .unwrap_or_default();
                let row: Vec<_> = rows.iter().map(|d| (&d.address, d.state)).collect();
                self.fail(format!(
                    "{} was targeted by {} (public since {first}) and never mailed; the ledger has {row:?}",
                    j.address,
                    s.slug()
                ));
            }
        }
    }
}

/// The media list as the office saved it: the listed journalists.
fn write_media(path: &Path, media: &[Journalist]) {
    let mut csv = String::from("email,name,outlet,lang,topics\n");
    for j in media.iter().filter(|j| j.listed) {
        csv.push_str(&format!(
            "{},J,Tidning,{},{}\n",
            j.address,
            j.lang.unwrap_or(""),
            j.topics.join("|")
        ));
    }
    std::fs::write(path, csv).expect("media");
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn run_seed(seed: u64, steps: usize) -> (usize, usize) {
    let mut sim = Sim::new(seed);
    for _ in 0..steps {
        sim.one_step();
    }
    sim.quiesce();
    (sim.step, sim.builds)
}

#[test]
fn the_core_keeps_every_promise_over_thousands_of_simulated_steps() {
    let started = std::time::Instant::now();
    let steps = env_or("SIM_STEPS", 60) as usize;
    let seeds: Vec<(u64, usize)> = match std::env::var("SIM_SEED").ok().and_then(|s| s.parse().ok())
    {
        Some(seed) => vec![(seed, steps)],
        None => REGRESSIONS
            .iter()
            .copied()
            .chain((0..env_or("SIM_SEEDS", 400)).map(|seed| (seed, steps)))
            .collect(),
    };
    // Seeds are independent: one thread per core.
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = seeds.len().div_ceil(threads).max(1);
    let (total, builds) = std::thread::scope(|s| {
        let runs: Vec<_> = seeds
            .chunks(chunk)
            .map(|part| {
                s.spawn(move || {
                    part.iter()
                        .map(|&(seed, steps)| run_seed(seed, steps))
                        .fold((0, 0), |(a, b), (s, n)| (a + s, b + n))
                })
            })
            .collect();
        runs.into_iter()
            .map(|r| r.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .fold((0, 0), |(a, b), (s, n)| (a + s, b + n))
    });
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "simulated {} seeds, {total} steps ({builds} builds) in {secs:.1} s: {:.0} steps/s",
        seeds.len(),
        total as f64 / secs
    );
    assert!(total >= 20_000 || std::env::var("SIM_SEED").is_ok() || env_or("SIM_SEEDS", 400) < 400);
}

/// The office postpones a published release past its day while its mail waits for the
/// window, then moves it back (the item 12): its identity is its file's, so the
/// waiting mail is neither cancelled nor decided again, and leaves once the window opens.
#[test]
fn postponed_past_its_day_with_its_mail_waiting_then_moved_back_it_is_mailed() {
    // A Saturday: the window (weekdays) is closed.
    let start = "2018-10-20T10:00:00Z".parse().expect("t");
    let mut sim = Sim::starting(1, Some(start));
    let date = start - TimeDelta::minutes(1);
    sim.specs.push(Spec {
        n: 0,
        date,
        draft: false,
        withdrawn: false,
        present: true,
        topics: vec!["jamstalldhet"],
        body: 1,
        first_public: None,
        date_when_published: None,
        deleted_since: None,
        mail_may_stop: false,
        implicit: true,
        file_v: 0,
        slug_v: 0,
        first_id: None,
    });
    sim.write(0);
    sim.files_changed();
    assert!(sim.specs[0].first_public.is_some(), "published");
    sim.advance(TimeDelta::minutes(1));
    sim.specs[0].date = date + TimeDelta::days(3);
    sim.write(0);
    sim.files_changed();
    // Long past the grace of a vanished release.
    for _ in 0..10 {
        sim.advance(TimeDelta::minutes(10));
    }
    sim.specs[0].date = date;
    sim.write(0);
    sim.files_changed();
    sim.quiesce();
    let mailed = sim
        .wire
        .iter()
        .filter(|w| w.release_id == sim.specs[0].id())
        .count();
    let targeted = sim
        .media
        .iter()
        .filter(|j| j.targeted_by(&sim.specs[0]))
        .count();
    assert!(targeted > 0, "somebody is targeted");
    assert_eq!(mailed, targeted, "everyone targeted is mailed, once");
}
