//! The simulator's digests: three digest subscribers (their topics, some paused, some
//! opting out), the core's periods (`[subscribe] digest`, 07:00 every day), each period's
//! digests made the way the daemon makes them (`digest::make_batch` from the builder's
//! releases and the ledger's first sightings) and sent the way its digest run sends them
//! (mark interrupted, claim, `mail::digest::hand_off`, send, record), against the
//! simulator's server, with a crash now and then between a send and its record.
//!
//! Checked at every send, by the test's own oracles: no release in a digest is dated
//! after the digest's period (the embargo), or is not public, or is not one the
//! subscriber chose; none goes to a paused or opted-out subscriber; at most one digest per
//! (subscriber, period) and no release in two digests of one subscriber, except a crash's
//! twin with the same Message-ID. At quiescence, every subscriber who never paused or left
//! has had every release they chose that was published after they subscribed.

use std::sync::Arc;

use pressroom::digest::{self, Published};
use pressroom::ledger::{Choices, SubscriberRow};
use pressroom::mail::digest::{self as mail_digest, HandOff as DigestHandOff};

use super::*;

#[derive(Debug, Clone)]
pub(super) struct Subscriber {
    pub address: String,
    pub topics: Vec<&'static str>,
    pub paused: bool,
    /// Paused (or unpaused) at some step: the quiescence oracle does not require their
    /// digests.
    pub changed: bool,
    pub since: DateTime<Utc>,
}

impl Subscriber {
    fn targeted_by(&self, spec: &Spec) -> bool {
        self.topics.is_empty() || self.topics.iter().any(|t| spec.topics.contains(t))
    }
}

/// One digest on the wire.
#[derive(Debug, Clone)]
pub(super) struct DigestWired {
    pub address: String,
    pub period: DateTime<Utc>,
    pub releases: Vec<String>,
    pub message_id: String,
    pub at: DateTime<Utc>,
}

impl Sim {
    /// Three digest subscribers, confirmed now.
    pub(super) fn add_subscribers(&mut self) {
        let now = self.now;
        for i in 0..3 {
            let topics = match i {
                0 => Vec::new(),
                _ => vec![TOPICS[self.rng.below(TOPICS.len() as u64) as usize]],
            };
            let address = format!("s{i}@example.org");
            let row = SubscriberRow {
                address: address.clone(),
                email: address.clone(),
                name: "S".into(),
                outlet: String::new(),
                choices: Choices {
                    topics: topics.join("|"),
                    langs: String::new(),
                    delivery: "digest".into(),
                },
                paused: false,
                confirmed_at: now,
                updated_at: now,
                digest_from: now,
            };
            self.daemon()
                .ledger
                .put_subscriber(&row)
                .expect("subscriber");
            self.subscribers.push(Subscriber {
                address,
                topics,
                paused: false,
                changed: false,
                since: now,
            });
        }
    }

    /// A subscriber pauses, or takes their digests again (the preferences page).
    pub(super) fn toggle_pause(&mut self) {
        let i = self.rng.below(self.subscribers.len() as u64) as usize;
        let s = &mut self.subscribers[i];
        s.paused = !s.paused;
        s.changed = true;
        let (address, paused) = (s.address.clone(), s.paused);
        let d = self.daemon();
        let mut row = d
            .ledger
            .subscriber(&address)
            .expect("subscriber")
            .expect("a row");
        row.paused = paused;
        d.ledger.put_subscriber(&row).expect("put");
        self.note(format!("{address} paused: {paused}"));
    }

    /// A subscriber opts out (the one-click link in their digest).
    pub(super) fn subscriber_opts_out(&mut self) {
        let i = self.rng.below(self.subscribers.len() as u64) as usize;
        let address = self.subscribers[i].address.clone();
        let now = self.now;
        self.daemon()
            .ledger
            .unsubscribe(&address, OptOutSource::OneClick, now)
            .expect("unsubscribe");
        self.opted_out.entry(address.clone()).or_insert(self.step);
        self.note(format!("{address} unsubscribes"));
    }

    /// After the core's `plan`, as the daemon does: the digests' own plan, twice when it
    /// made a period's digests or ran (what was made is then sent; a run's end plans again).
    pub(super) fn plan_digests(&mut self) {
        for _ in 0..3 {
            let now = self.now;
            let d = self.daemon();
            let waiting = d.ledger.digests_due().expect("digests due");
            let current = !d.builder.clock_behind();
            let actions = d.core.plan_digests(waiting, current, now);
            if actions.is_empty() {
                return;
            }
            for action in actions {
                if let Some(event) = self.perform(action) {
                    self.turn(event);
                }
            }
        }
    }

    /// `Action::Digest`: the period's digests, in batches.
    pub(super) fn make_digests(&mut self, period: DateTime<Utc>) {
        let due = self.now + self.hold();
        let d = self.daemon();
        let seen = d.ledger.revisions().expect("revisions");
        let releases: Vec<Arc<pressroom::release::Release>> =
            d.builder.releases().cloned().collect();
        let published: Vec<Published> = releases
            .iter()
            .filter_map(|r| {
                Some(Published {
                    release: r,
                    first_seen: seen.get(&r.id)?.first_seen,
                })
            })
            .collect();
        let mut after = String::new();
        let mut queued = 0;
        loop {
            let (n, last) = digest::make_batch(
                &mut d.ledger,
                &published,
                period,
                "example.org",
                &after,
                due,
            )
            .expect("make digests");
            queued += n;
            match last {
                Some(last) => after = last,
                None => break,
            }
        }
        self.note(format!("digests of {period}: {queued} made"));
    }

    /// `Action::SendDigests`: the daemon's digest run, start to end.
    pub(super) fn send_digests(&mut self) -> Option<Event> {
        let now = self.now;
        let hold = self.hold();
        let server = self.server;
        let max_retry_age = self.config.dispatch.max_retry_age;
        let interrupted = self
            .daemon()
            .ledger
            .mark_digests_interrupted(now)
            .expect("interrupted");
        if interrupted > 0 {
            self.note(format!(
                "{interrupted} digests in flight at a crash: unknown"
            ));
        }
        loop {
            let d = self.daemon();
            let Some(row) = d.ledger.claim_digest(now).expect("claim") else {
                break;
            };
            let subscriber = d.ledger.subscriber(&row.address).expect("subscriber");
            let opted_out = d.ledger.is_opted_out(&row.address).expect("opted out");
            // The daemon's shelf: public releases in a version older than the hold.
            let builder = &d.builder;
            let release = |id: &str| {
                (builder.presence(id, hold, now) == Presence::Public)
                    .then(|| builder.release(id))
                    .flatten()
            };
            let handed = mail_digest::hand_off(&row, subscriber.as_ref(), opted_out, &release, now);
            let kept = match handed {
                DigestHandOff::Cancel(reason) => {
                    self.note(format!("digest to {} cancelled: {reason}", row.address));
                    let outcome = Outcome::Cancelled { reason };
                    self.daemon()
                        .ledger
                        .record_digest(&row, &[], &outcome, now)
                        .expect("record");
                    continue;
                }
                DigestHandOff::Send(kept) => kept,
            };
            let ids: Vec<String> = kept.iter().map(|r| r.id.clone()).collect();
            let attempt = match server {
                Server::TakesAll => Attempt::Accepted("250 ok".into()),
                Server::Flaky {
                    transient,
                    permanent,
                    dropped,
                } => {
                    let roll = self.rng.below(118);
                    if roll < transient + dropped {
                        Attempt::Transient("451 later".into())
                    } else if roll < transient + dropped + permanent {
                        Attempt::Permanent("550 no such user".into())
                    } else {
                        Attempt::Accepted("250 ok".into())
                    }
                }
            };
            if let Attempt::Accepted(_) = attempt {
                let wired = DigestWired {
                    address: row.address.clone(),
                    period: row.period,
                    releases: ids.clone(),
                    message_id: row.message_id.clone(),
                    at: now,
                };
                self.check_digest(&wired);
                self.note(format!(
                    "digest of {} to {}: {:?}",
                    row.period, row.address, ids
                ));
                self.digest_wire.push(wired);
                if self.rng.chance(5) {
                    *self
                        .digest_twins
                        .entry((row.address.clone(), row.period))
                        .or_default() += 1;
                    self.note("crash before the digest's outcome was recorded");
                    return Some(Event::MailEnded(MailEnd::Failed));
                }
            }
            let outcome = match policy::after_attempt(
                &attempt,
                row.attempts,
                row.queued_at,
                now,
                max_retry_age,
            ) {
                Next::Sent => Outcome::Sent {
                    reply: "250 ok".into(),
                },
                Next::Retry { at } => Outcome::Deferred {
                    reply: "451".into(),
                    retry_at: at,
                },
                Next::Failed { reason } => {
                    self.digest_failed
                        .extend(ids.iter().map(|id| (row.address.clone(), id.clone())));
                    Outcome::Failed { reply: reason }
                }
            };
            self.daemon()
                .ledger
                .record_digest(&row, &ids, &outcome, now)
                .expect("record");
        }
        Some(Event::MailEnded(MailEnd::Ran { unread: 0 }))
    }

    /// Nothing dated after the period, not public, not chosen; nobody paused or gone;
    /// one digest per (subscriber, period) and each release once, but a crash's twin.
    fn check_digest(&self, w: &DigestWired) {
        let Some(sub) = self.subscribers.iter().find(|s| s.address == w.address) else {
            self.fail(format!("a digest to {}, who never subscribed", w.address));
        };
        if sub.paused {
            self.fail(format!("a digest to {}, who paused", w.address));
        }
        if self.opted_out.contains_key(&w.address) {
            self.fail(format!("a digest to {}, who opted out", w.address));
        }
        if w.releases.is_empty() {
            self.fail(format!("an empty digest to {}", w.address));
        }
        for id in &w.releases {
            let Some(spec) = self.specs.iter().find(|s| s.id() == *id) else {
                self.fail(format!("a digest holds an unknown release {id}"));
            };
            if spec.date > w.period {
                self.fail(format!(
                    "the digest of {} to {} holds {}, dated {}: after the period",
                    w.period,
                    w.address,
                    spec.slug(),
                    spec.date
                ));
            }
            if !spec.public_at(w.at) {
                self.fail(format!(
                    "the digest of {} to {} holds {}, not public at {}",
                    w.period,
                    w.address,
                    spec.slug(),
                    w.at
                ));
            }
            if !sub.targeted_by(spec) {
                self.fail(format!("{} did not choose {}", w.address, spec.slug()));
            }
            if let Some((_, since)) = self.written.get(&spec.n)
                && w.at < *since + self.hold()
            {
                self.fail(format!(
                    "a digest to {} holds {} at {}, from a version written at {since}: inside the hold",
                    w.address,
                    spec.slug(),
                    w.at
                ));
            }
        }
        let allowed = self
            .digest_twins
            .get(&(w.address.clone(), w.period))
            .copied()
            .unwrap_or(0);
        let same_period: Vec<&DigestWired> = self
            .digest_wire
            .iter()
            .filter(|x| x.address == w.address && x.period == w.period)
            .collect();
        if same_period.len() > allowed {
            self.fail(format!(
                "{} got the digest of {} a {} time ({allowed} crash twins allowed)",
                w.address,
                w.period,
                same_period.len() + 1
            ));
        }
        if same_period.iter().any(|x| x.message_id != w.message_id) {
            self.fail(format!(
                "{}'s second copy of the digest of {} has another Message-ID",
                w.address, w.period
            ));
        }
        for x in self
            .digest_wire
            .iter()
            .filter(|x| x.address == w.address && x.period != w.period)
        {
            if let Some(id) = x.releases.iter().find(|id| w.releases.contains(id)) {
                self.fail(format!(
                    "{} got {id} in the digests of {} and {}",
                    w.address, x.period, w.period
                ));
            }
        }
    }

    /// Every subscriber who never paused or left has had, in some digest, every release
    /// they chose that was dated and first public after they subscribed and is public now
    /// (unless its digest failed for good).
    pub(super) fn check_digests_at_quiescence(&self) {
        for sub in &self.subscribers {
            if sub.changed || self.opted_out.contains_key(&sub.address) {
                continue;
            }
            for s in &self.specs {
                let Some(first) = s.first_public else {
                    continue;
                };
                if s.mail_may_stop
                    || !s.public_at(self.now)
                    || s.date <= sub.since
                    || first <= sub.since
                    || !sub.targeted_by(s)
                    || self.digest_failed.contains(&(sub.address.clone(), s.id()))
                {
                    continue;
                }
                let had = self
                    .digest_wire
                    .iter()
                    .any(|w| w.address == sub.address && w.releases.contains(&s.id()));
                if !had {
                    let rows = self
                        .daemon
                        .as_ref()
                        .map(|d| d.ledger.digests_of(&sub.address).unwrap_or_default())
                        .unwrap_or_default();
                    self.fail(format!(
                        "{} chose {} (public since {first}) and no digest held it; their digests: {rows:?}",
                        sub.address,
                        s.slug()
                    ));
                }
            }
        }
    }
}
