//! The audience in simulated steps. A seeded simulator drives the real ledger (a real
//! SQLite file), the real media sync (`media::sync`), the real fill (`publish::fill_by`,
//! in batches of two, cut short as a crash or a shutdown cuts it) and the real hand-off
//! check (`policy::hand_off` over `Ledger::audience_listed`, what the sender asks)
//! through random sequences of what the office and the journalists do: media-list rows
//! added, removed and changed; journalists subscribing (a sign-up confirmed), changing
//! their topics, languages and delivery, pausing and resuming, unsubscribing; releases
//! published; mail runs claiming small batches, some crashing between the SMTP
//! transaction and the record of its outcome.
//!
//! Its oracles are the test's own reading of SPEC §4 and §6: their own choices win over
//! the office's row; a paused journalist, one who takes the digest, and one who opted out
//! are not mailed each release; topics intersect or they take all; languages match by
//! RFC 4647 basic filtering both ways. After every message: it went to someone targeted
//! at that instant, and nobody got a release twice but a crash's twin. At the end (every
//! fill finished, every run to quiescence): everyone targeted at publication whose
//! standing did not change since was mailed.
//!
//! `SIM_SEEDS` and `SIM_STEPS` size it as for `sim.rs`; `SIM_SEED` runs one seed.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, TimeDelta, Utc};
use pressroom::config::Config;
use pressroom::ledger::{
    Choices, Confirmed, Delivery, Due, Ledger, MailDecision, OptOutSource, Outcome, Publication,
    Seen, SignupRow, SubscriberRow,
};
use pressroom::mail::pipeline;
use pressroom::mail::policy::{self, HandOff};
use pressroom::media::{self, Recipient};
use pressroom::publish;
use pressroom::release::Release;
use pressroom::release::frontmatter;
use proptest::prelude::Rng as _;
use proptest::test_runner::{RngAlgorithm, TestRng};

const TOPICS: &[&str] = &["miljo", "jamstalldhet", "sport"];
const LANGS: &[&str] = &["sv", "sv-SE", "en"];
const PEOPLE: usize = 9;
const FILL: usize = 2;
const CLAIM: usize = 3;

#[derive(Debug, Clone)]
struct Row {
    topics: Vec<&'static str>,
    lang: Option<&'static str>,
}

#[derive(Debug, Clone)]
struct Own {
    topics: Vec<&'static str>,
    langs: Vec<&'static str>,
    digest: bool,
    paused: bool,
}

#[derive(Debug, Clone)]
struct Person {
    address: String,
    /// Their row of the media list as the ledger holds it (synced at once).
    row: Option<Row>,
    /// Their own choices, if they subscribed.
    own: Option<Own>,
    opted_out: bool,
    /// The last step at which their standing changed.
    changed: usize,
}

fn lang_matches(a: &str, b: &str) -> bool {
    a == b || a.starts_with(&format!("{b}-")) || b.starts_with(&format!("{a}-"))
}

impl Person {
    /// The test's own reading: is this release mailed to them now, as each release is?
    fn targeted_by(&self, topics: &[&str], lang: &str) -> bool {
        if self.opted_out {
            return false;
        }
        let (wants, langs, each, paused): (&[&str], Vec<&str>, bool, bool) =
            match (&self.own, &self.row) {
                (Some(o), _) => (&o.topics, o.langs.clone(), !o.digest, o.paused),
                (None, Some(r)) => (&r.topics, r.lang.into_iter().collect(), true, false),
                (None, None) => return false,
            };
        each && !paused
            && (wants.is_empty() || wants.iter().any(|t| topics.contains(t)))
            && (langs.is_empty() || langs.iter().any(|l| lang_matches(l, lang)))
    }
}

struct Published {
    release: Release,
    topics: Vec<&'static str>,
    lang: &'static str,
    step: usize,
    /// Who the test says it targeted at publication.
    targeted: HashSet<String>,
}

struct Sim {
    rng: TestRng,
    seed: u64,
    _dir: tempfile::TempDir,
    config: Config,
    ledger: Ledger,
    now: DateTime<Utc>,
    people: Vec<Person>,
    releases: Vec<Published>,
    /// (release id, address) → messages on the wire.
    wire: HashMap<(String, String), usize>,
    /// Messages whose outcome a crash kept from the ledger: each may go out once more.
    twins: HashMap<(String, String), usize>,
    step: usize,
    trace: Vec<String>,
}

impl Sim {
    fn new(seed: u64) -> Sim {
        // Temp folders on tmpfs where there is one: the ledger syncs every commit.
        let shm = std::path::Path::new("/dev/shm");
        let dir = if shm.is_dir() {
            tempfile::tempdir_in(shm).expect("temp dir on tmpfs")
        } else {
            tempfile::tempdir().expect("tempdir")
        };
        let mut config = Config::defaults(dir.path());
        config.paths.media = dir.path().join("media.csv");
        let ledger = Ledger::open_in(&dir.path().join("state")).expect("ledger");
        let mut bytes = [0u8; 32];
        bytes[..8].copy_from_slice(&seed.to_le_bytes());
        let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &bytes);
        let people = (0..PEOPLE)
            .map(|i| Person {
                // Addresses in no order of their own, so the two sources interleave.
                address: format!("{}{i}@example.org", ["q", "b", "x", "d", "m"][i % 5]),
                row: None,
                own: None,
                opted_out: false,
                changed: 0,
            })
            .collect();
        let mut sim = Sim {
            rng,
            seed,
            _dir: dir,
            config,
            ledger,
            now: "2018-10-18T07:00:00Z".parse().expect("instant"),
            people,
            releases: Vec::new(),
            wire: HashMap::new(),
            twins: HashMap::new(),
            step: 0,
            trace: Vec::new(),
        };
        sim.write_media();
        sim
    }

    fn below(&mut self, n: u64) -> u64 {
        self.rng.next_u64() % n.max(1)
    }

    fn topics(&mut self) -> Vec<&'static str> {
        TOPICS
            .iter()
            .copied()
            .filter(|_| self.below(3) == 0)
            .collect()
    }

    fn fail(&self, what: String) -> ! {
        let trace = self.trace[self.trace.len().saturating_sub(25)..].join("\n  ");
        panic!(
            "seed {} step {}: {what}\n  last steps:\n  {trace}\nSIM_SEED={} reruns it",
            self.seed, self.step, self.seed
        );
    }

    fn note(&mut self, s: String) {
        self.trace.push(format!("{} {s}", self.step));
    }

    fn write_media(&mut self) {
        let mut csv = String::from("email,name,outlet,lang,topics\n");
        for p in &self.people {
            if let Some(r) = &p.row {
                csv.push_str(&format!(
                    "{},N,O,{},{}\n",
                    p.address,
                    r.lang.unwrap_or(""),
                    r.topics.join("|")
                ));
            }
        }
        std::fs::write(&self.config.paths.media, csv).expect("media");
        let lang = self.config.site.lang.clone();
        media::sync(
            &self.config.paths.media,
            &lang,
            &mut self.ledger,
            &|| true,
            &mut |_| {},
            self.now,
        )
        .expect("sync");
    }

    fn put_own(&mut self, i: usize) {
        let p = &self.people[i];
        let own = p.own.clone().expect("own choices");
        let row = SubscriberRow {
            address: p.address.clone(),
            email: p.address.clone(),
            name: "Own".into(),
            outlet: String::new(),
            choices: Choices {
                topics: own.topics.join("|"),
                langs: own.langs.join("|"),
                delivery: if own.digest { "digest" } else { "each" }.into(),
            },
            paused: own.paused,
            confirmed_at: self.now,
            updated_at: self.now,
            digest_from: self.now,
        };
        self.ledger.put_subscriber(&row).expect("subscriber");
    }

    fn act(&mut self) {
        let i = self.below(PEOPLE as u64) as usize;
        let who = self.people[i].address.clone();
        match self.below(12) {
            0 | 1 => {
                // The office adds, removes or changes a row, and the list is synced.
                let row = match self.below(3) {
                    0 => None,
                    _ => Some(Row {
                        topics: self.topics(),
                        lang: [None, Some("sv"), Some("sv-SE"), Some("en")][self.below(4) as usize],
                    }),
                };
                self.note(format!("office: {who} row {row:?}"));
                self.people[i].row = row;
                self.people[i].changed = self.step;
                self.write_media();
            }
            2 => {
                // They sign up and confirm: their choices, their opt-out lifted.
                let own = Own {
                    topics: self.topics(),
                    langs: LANGS
                        .iter()
                        .copied()
                        .filter(|_| self.below(3) == 0)
                        .collect(),
                    digest: self.below(4) == 0,
                    paused: false,
                };
                let choices = Choices {
                    topics: own.topics.join("|"),
                    langs: own.langs.join("|"),
                    delivery: if own.digest { "digest" } else { "each" }.into(),
                };
                let hash = format!("token-{}-{}", self.seed, self.step);
                let signup = SignupRow {
                    address: who.clone(),
                    email: who.clone(),
                    name: "Own".into(),
                    outlet: String::new(),
                    choices,
                    created_at: self.now,
                    expires_at: self.now + TimeDelta::hours(48),
                };
                self.ledger.add_signup(&hash, &signup).expect("sign-up");
                let confirmed = self
                    .ledger
                    .confirm_signup(&hash, self.now)
                    .expect("confirm");
                if !matches!(confirmed, Confirmed::Subscribed(_)) {
                    self.fail(format!(
                        "a fresh sign-up of {who} did not confirm: {confirmed:?}"
                    ));
                }
                self.note(format!("{who} subscribes {own:?}"));
                // A subscriber already there keeps the pause they set? No: confirming
                // again is subscribing again, and the library writes `paused = false`.
                self.people[i].own = Some(own);
                self.people[i].opted_out = false;
                self.people[i].changed = self.step;
            }
            3 if self.people[i].own.is_some() => {
                let topics = self.topics();
                let digest = self.below(3) == 0;
                if let Some(o) = self.people[i].own.as_mut() {
                    o.topics = topics;
                    o.digest = digest;
                }
                self.note(format!("{who} changes to {:?}", self.people[i].own));
                self.people[i].changed = self.step;
                self.put_own(i);
            }
            4 if self.people[i].own.is_some() => {
                if let Some(o) = self.people[i].own.as_mut() {
                    o.paused = !o.paused;
                }
                self.note(format!("{who} pause {:?}", self.people[i].own));
                self.people[i].changed = self.step;
                self.put_own(i);
            }
            5 => {
                self.note(format!("{who} unsubscribes"));
                self.ledger
                    .unsubscribe(&who, OptOutSource::Link, self.now)
                    .expect("unsubscribe");
                self.people[i].opted_out = true;
                self.people[i].changed = self.step;
            }
            6 => self.publish(),
            7 => self.fill(true),
            _ => self.mail(),
        }
    }

    fn publish(&mut self) {
        let n = self.releases.len();
        let topics = self.topics();
        let lang = ["sv", "en"][self.below(2) as usize];
        let quoted: Vec<String> = topics.iter().map(|t| format!("\"{t}\"")).collect();
        let text = format!(
            "+++\nid = \"r{n}\"\ntitle = \"Release {n}\"\ndate = 2018-10-18T08:00:00+02:00\nlang = \"{lang}\"\ntopics = [{}]\n+++\n\nText {n}.\n",
            quoted.join(", ")
        );
        let Some(release) = frontmatter::parse(&pipeline::bundle(&text), &self.config.site).release
        else {
            self.fail(format!("release {n} does not parse"));
        };
        let p = Publication {
            release_id: release.id.clone(),
            content_hash: release.content_hash.clone(),
            first_seen: self.now,
            mail: Some(MailDecision::Audience),
        };
        self.ledger
            .commit_build(&Seen::default(), &[p], &[], self.now)
            .expect("commit");
        let targeted = self
            .people
            .iter()
            .filter(|p| p.targeted_by(&topics, lang))
            .map(|p| p.address.clone())
            .collect();
        self.note(format!(
            "publish r{n} {topics:?} {lang}: targets {targeted:?}"
        ));
        self.releases.push(Published {
            release,
            topics,
            lang,
            step: self.step,
            targeted,
        });
        self.fill(true);
    }

    /// Fills what is being filled, a batch of two at a time; `cut` stops after a random
    /// number of batches, as a crash or a shutdown would.
    fn fill(&mut self, cut: bool) {
        let budget = std::cell::Cell::new(if cut { self.below(4) } else { u64::MAX });
        let filling = self.ledger.filling().expect("filling");
        for f in filling {
            let Some(r) = self.releases.iter().find(|r| r.release.id == f.release_id) else {
                self.fail(format!("a fill of an unknown release {}", f.release_id));
            };
            let release = r.release.clone();
            let keep_going = || {
                let left = budget.get();
                budget.set(left.saturating_sub(1));
                left > 0
            };
            publish::fill_by(
                &mut self.ledger,
                &self.config,
                &release,
                f.version,
                FILL,
                &keep_going,
                self.now,
            )
            .expect("fill");
        }
    }

    /// One batch of a mail run for a dispatch that waits, maybe crashing before its
    /// outcomes are recorded.
    fn mail(&mut self) {
        let crash = self.below(6) == 0;
        self.mail_batch(crash);
    }

    /// Returns whether anything was claimed.
    fn mail_batch(&mut self, crash: bool) -> bool {
        let now = self.now;
        self.ledger.mark_interrupted(now).expect("interrupted");
        let pending = self.ledger.pending().expect("pending");
        let Some(p) = pending.first() else {
            return false;
        };
        let (id, version) = (p.release_id.clone(), p.version);
        let batch = self
            .ledger
            .claim(&id, version, Due::By(now), None, CLAIM, now)
            .expect("claim");
        if batch.is_empty() {
            return false;
        }
        let opted_out = self.ledger.opted_out().expect("opted out");
        let addresses: Vec<String> = batch.iter().map(|d| d.address.clone()).collect();
        let listed: HashMap<String, Recipient> = self
            .ledger
            .audience_listed(&addresses)
            .expect("listed")
            .iter()
            .filter_map(|(a, row)| Some((a.clone(), Recipient::from_row(row)?)))
            .collect();
        let Some(r) = self.releases.iter().position(|r| r.release.id == id) else {
            self.fail(format!("mail of an unknown release {id}"));
        };
        let mut outcomes: Vec<(Delivery, Outcome)> = Vec::new();
        for d in batch {
            let release = &self.releases[r];
            match policy::hand_off(
                &release.release,
                &d.address,
                &opted_out,
                listed.get(&d.address),
            ) {
                HandOff::Cancel(why) => {
                    let reason = why.to_string();
                    outcomes.push((d, Outcome::Cancelled { reason }));
                }
                HandOff::Send(_) => {
                    let Some(person) = self.people.iter().find(|p| p.address == d.address) else {
                        self.fail(format!("mail to {} who is nobody", d.address));
                    };
                    if !person.targeted_by(&release.topics, release.lang) {
                        self.fail(format!(
                            "{} was mailed {id} ({:?}, {}) though not targeted now: {person:?}",
                            d.address, release.topics, release.lang
                        ));
                    }
                    let key = (id.clone(), d.address.clone());
                    let got = self.wire.entry(key.clone()).or_default();
                    *got += 1;
                    if *got > 1 {
                        let twins = self.twins.get(&key).copied().unwrap_or(0);
                        if *got > 1 + twins {
                            let got = *got;
                            self.fail(format!(
                                "{} got {id} {got} times with {twins} crashes in flight",
                                d.address
                            ));
                        }
                    }
                    if crash {
                        *self.twins.entry(key).or_default() += 1;
                    }
                    self.note(format!("sent {id} to {}", d.address));
                    outcomes.push((
                        d,
                        Outcome::Sent {
                            reply: "250 ok".into(),
                        },
                    ));
                }
            }
        }
        if crash {
            self.note("crash before the outcomes were recorded".into());
            return true;
        }
        self.ledger.record(&outcomes, now).expect("record");
        true
    }

    fn run(&mut self, steps: usize) {
        for step in 1..=steps {
            self.step = step;
            self.now += TimeDelta::minutes(1);
            self.act();
        }
        // Quiescence: every fill finished, every run to its end with no crash.
        self.step = steps + 1;
        self.fill(false);
        let mut rounds = 0;
        while self.mail_batch(false) {
            rounds += 1;
            if rounds > 10_000 {
                self.fail("mail runs never end".into());
            }
        }
        for r in &self.releases {
            for p in &self.people {
                let unchanged = p.changed < r.step;
                if unchanged
                    && r.targeted.contains(&p.address)
                    && p.targeted_by(&r.topics, r.lang)
                    && !self
                        .wire
                        .contains_key(&(r.release.id.clone(), p.address.clone()))
                {
                    self.fail(format!(
                        "{} was targeted by {} at publication and still is, unchanged, but was never mailed",
                        p.address, r.release.id
                    ));
                }
            }
        }
    }
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
fn the_audience_mails_exactly_who_it_should_over_thousands_of_office_and_journalist_steps() {
    let steps = env_or("SIM_STEPS", 60) as usize;
    if let Ok(seed) = std::env::var("SIM_SEED") {
        Sim::new(seed.parse().expect("SIM_SEED is a number")).run(steps);
        return;
    }
    let seeds = env_or("SIM_SEEDS", 300);
    let started = std::time::Instant::now();
    for seed in 0..seeds {
        Sim::new(seed).run(steps);
    }
    let elapsed = started.elapsed();
    eprintln!(
        "{seeds} seeds × {steps} steps in {:.1} s: {:.0} steps/s",
        elapsed.as_secs_f64(),
        (seeds as usize * steps) as f64 / elapsed.as_secs_f64()
    );
}
