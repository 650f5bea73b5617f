//! The daily digest (SPEC §6): its periods (the fire times of `[subscribe] digest`, a
//! cron expression in the site's zone), what one subscriber's digest of a period holds
//! (`contents`), when the daemon makes it (`made_at`) and its Message-ID, as pure functions
//! of instants; and `make_batch`, which makes one batch of a period's digests through the
//! ledger it is handed (the daemon's owner, or the simulator's). The ledger keeps the rows
//! (`ledger::digests`), `mail::digest` composes and sends them, the core wakes for them.
//!
//! A digest of period P holds the releases public at P whose publication instant lies in
//! (the subscriber's `digest_from`, P]; making it moves `digest_from` to P. The
//! publication instant of a release is its date, or, for one first seen public more than
//! `LAG` after its date (written with a date already past, or while the daemon was down),
//! its first sighting less `LAG`. So the periods partition every subscriber's timeline,
//! and a release that lifts at the digest's own instant (the build at that wake-up sees
//! it milliseconds later) is in that digest. Making a period's digests only once `LAG` has
//! passed after it keeps that exact: any release recorded later was first seen later, so
//! its instant falls after P. Two rules close the gaps a timeline cannot: a period looks
//! back `LOOKBACK` for releases in none of the subscriber's digests (one dropped at
//! hand-off because it was pulled back then), and no release goes in a second digest of
//! one subscriber (one re-dated after it went in one).

use chrono::{DateTime, LocalResult, NaiveDateTime, Offset, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;
use sha2::{Digest as _, Sha256};

use crate::ledger::{Ledger, LedgerError, NewDigest};
use crate::planner::{self, Visibility};
use crate::release::Release;
use crate::subscriber::Wants;

/// How long after its instant a period's digests are made: the daemon's build at a lift
/// records the release this much late at most and it still counts as published at its
/// date.
pub const LAG: TimeDelta = TimeDelta::seconds(10);

/// The digest's periods: the fire instants of `[subscribe] digest` in the site's zone,
/// read on the wall clock: a local time the clocks skip (spring forward) fires as if they
/// had not changed yet (02:30 is 03:30 summer time that day), one they repeat (fall back)
/// fires once, the first time. So a daily digest is daily across both changes (the `cron`
/// crate alone skips the day of the gap and fires twice on the day of the repeat).
#[derive(Debug, Clone)]
pub struct Periods {
    pub schedule: cron::Schedule,
    pub tz: Tz,
}

impl Periods {
    pub fn of(config: &crate::config::Config) -> Periods {
        Periods {
            schedule: config.subscribe.digest.clone(),
            tz: config.site.timezone,
        }
    }

    /// The instant a fire time of the schedule, read on the local wall clock, is.
    fn instant(&self, wall: NaiveDateTime) -> Option<DateTime<Utc>> {
        match self.tz.from_local_datetime(&wall) {
            LocalResult::Single(t) => Some(t.with_timezone(&Utc)),
            LocalResult::Ambiguous(first, _) => Some(first.with_timezone(&Utc)),
            LocalResult::None => {
                // In a gap: the offset in force before it.
                let before = self
                    .tz
                    .from_local_datetime(&(wall - TimeDelta::hours(3)))
                    .earliest()?;
                let offset = TimeDelta::seconds(i64::from(before.offset().fix().local_minus_utc()));
                Some(Utc.from_utc_datetime(&(wall - offset)))
            }
        }
    }

    /// The wall-clock reading of `t`, as the cron schedule is asked with it.
    fn wall(&self, t: DateTime<Utc>) -> DateTime<Utc> {
        Utc.from_utc_datetime(&t.with_timezone(&self.tz).naive_local())
    }

    /// The first period after `t` (strictly).
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        // A wall-clock reading in a repeated hour may stand for an earlier instant: the
        // search starts an hour early on the wall and skips what is not after `t`.
        let from = self.wall(t) - TimeDelta::hours(2);
        self.schedule
            .after(&from)
            .take(20_000)
            .filter_map(|f| self.instant(f.naive_utc()))
            .find(|p| *p > t)
    }

    /// The latest period at or before `t`.
    pub fn latest_by(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let from = self.wall(t) + TimeDelta::hours(2);
        self.schedule
            .after(&from)
            .rev()
            .take(20_000)
            .filter_map(|f| self.instant(f.naive_utc()))
            .find(|p| *p <= t)
    }
}

/// When the digests of `period` are made: `LAG` after it, and a millisecond, so that a
/// release first seen at that instant already counts as published after the period.
pub fn made_at(period: DateTime<Utc>) -> DateTime<Utc> {
    period + LAG + TimeDelta::milliseconds(1)
}

/// The instant a release counts as published for digests: its date, or its first
/// sighting less `LAG` when it was first seen public later than that.
pub fn published_at(date: DateTime<Utc>, first_seen: DateTime<Utc>) -> DateTime<Utc> {
    date.max(first_seen - LAG)
}

/// A release the ledger has seen public, and when it first did.
#[derive(Debug, Clone, Copy)]
pub struct Published<'a> {
    pub release: &'a Release,
    pub first_seen: DateTime<Utc>,
}

/// Whether a subscriber's choices take a release: `media::wanted`, the content part of
/// the one rule of who is mailed what (`media::exclusion_in`).
pub fn targeted(release: &Release, wants: &Wants) -> bool {
    crate::media::wanted(release, &wants.topics, &wants.langs).is_none()
}

/// What a subscriber's digest of `period` holds: every release public at `period` (its
/// date at or before it, neither a draft nor withdrawn) published in `(from, period]` that
/// the subscriber is targeted for, oldest first. Empty: no digest is made.
pub fn contents<'a>(
    published: &[Published<'a>],
    from: DateTime<Utc>,
    period: DateTime<Utc>,
    wants: &Wants,
) -> Vec<&'a Release> {
    let mut out: Vec<&Release> = published
        .iter()
        .filter(|p| planner::visibility(p.release, period) == Visibility::Public)
        .filter(|p| {
            let at = published_at(p.release.date, p.first_seen);
            from < at && at <= period
        })
        .filter(|p| targeted(p.release, wants))
        .map(|p| p.release)
        .collect();
    out.sort_by(|a, b| a.date.cmp(&b.date).then_with(|| a.slug.cmp(&b.slug)));
    out
}

/// How far before a subscriber's last digest `make_batch` looks for releases not yet in
/// one of theirs.
pub const LOOKBACK: TimeDelta = TimeDelta::days(7);

/// How many subscribers one transaction of `make_batch` takes.
pub const BATCH: usize = 500;

/// Makes the digests of `period` for the next `BATCH` subscribers after `after` (by
/// address) whose digest of it is still to be made, in one transaction, each due to leave
/// at `due` (the daemon: `[dispatch] hold` after it makes them, so a release that lifts at
/// the period has settled as its own mail would); returns how many digests were queued
/// and the last address taken (`None`: every subscriber is done). Made twice, a batch adds
/// nothing (`Ledger::make_digests`).
pub fn make_batch(
    ledger: &mut Ledger,
    published: &[Published<'_>],
    period: DateTime<Utc>,
    domain: &str,
    after: &str,
    due: DateTime<Utc>,
) -> Result<(usize, Option<String>), LedgerError> {
    let subscribers = ledger.digest_subscribers(period, after, BATCH)?;
    let Some(last) = subscribers.last().map(|(s, _)| s.address.clone()) else {
        return Ok((0, None));
    };
    let addresses: Vec<String> = subscribers.iter().map(|(s, _)| s.address.clone()).collect();
    let digested = ledger.digested(&addresses)?;
    let batch: Vec<NewDigest> = subscribers
        .iter()
        .map(|(s, opted_out)| {
            // Paused or away: the period passes with nothing made.
            let releases = if s.paused || *opted_out {
                Vec::new()
            } else {
                // Looking back `LOOKBACK` before the last digest (never before they
                // subscribed) finds what a digest dropped at hand-off (pulled back then,
                // public again now); a release already in one of their digests (re-dated
                // since, or found again so) is not mailed a second time.
                let from = (s.digest_from - LOOKBACK)
                    .max(s.confirmed_at)
                    .min(s.digest_from);
                let done = digested.get(&s.address);
                contents(published, from, period, &Wants::from_choices(&s.choices))
                    .iter()
                    .filter(|r| !done.is_some_and(|d| d.contains(&r.id)))
                    .map(|r| r.id.clone())
                    .collect()
            };
            NewDigest {
                address: s.address.clone(),
                was_from: s.digest_from,
                releases,
                message_id: message_id(&s.address, period, domain),
            }
        })
        .collect();
    let queued = ledger.make_digests(period, &batch, due)?;
    Ok((queued, Some(last)))
}

/// Whether a release of a digest may still leave at `now` (checked as the digest is
/// handed over): public in the builder's current view and still wanted.
pub fn still_public(release: &Release, now: DateTime<Utc>) -> bool {
    planner::visibility(release, now) == Visibility::Public
}

/// `<digest-hex@domain>`: the same for the same address and period on every attempt, and
/// never one a release's message carries.
pub fn message_id(address: &str, period: DateTime<Utc>, domain: &str) -> String {
    let address = address.trim().to_lowercase();
    let period = period.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let mut h = Sha256::new();
    for part in ["pressroom digest", address.as_str(), period.as_str()] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    let hex: String = h
        .finalize()
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("<digest-{hex}@{domain}>")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::release::{LangTag, Topic};
    use crate::subscriber::Delivery;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn stockholm(cron: &str) -> Periods {
        Periods {
            schedule: cron.parse().unwrap(),
            tz: chrono_tz::Europe::Stockholm,
        }
    }

    #[test]
    fn seven_in_the_morning_is_seven_local_time_across_both_changes_of_the_clock() {
        let p = stockholm("0 0 7 * * *");
        // Summer time begins on 29 March 2026, ends on 25 October 2026.
        assert_eq!(
            p.next_after(t("2026-03-28T07:00:00+01:00")),
            Some(t("2026-03-29T07:00:00+02:00"))
        );
        assert_eq!(
            p.next_after(t("2026-10-24T07:00:00+02:00")),
            Some(t("2026-10-25T07:00:00+01:00"))
        );
        assert_eq!(
            p.latest_by(t("2026-12-05T07:00:00+01:00")),
            Some(t("2026-12-05T07:00:00+01:00")),
            "a period at the instant itself"
        );
        assert_eq!(
            p.latest_by(t("2026-12-05T06:59:59+01:00")),
            Some(t("2026-12-04T07:00:00+01:00"))
        );
    }

    #[test]
    fn a_digest_time_the_clocks_skip_or_repeat_gives_one_period_that_day() {
        let p = stockholm("0 30 2 * * *");
        // 02:30 does not exist on 29 March 2026 and happens twice on 25 October 2026.
        let mut at = t("2026-03-28T12:00:00Z");
        let mut spring = Vec::new();
        for _ in 0..2 {
            at = p.next_after(at).unwrap();
            spring.push(at);
        }
        assert_eq!(
            spring,
            [
                t("2026-03-29T03:30:00+02:00"),
                t("2026-03-30T02:30:00+02:00")
            ],
            "the day of the gap has its period, an hour late on the wall"
        );
        let first = p.next_after(t("2026-10-24T12:00:00Z")).unwrap();
        assert_eq!(first, t("2026-10-25T02:30:00+02:00"));
        assert_eq!(
            p.next_after(first),
            Some(t("2026-10-26T02:30:00+01:00")),
            "the repeated 02:30 is not a second period"
        );
        assert_eq!(p.latest_by(t("2026-10-25T12:00:00Z")), Some(first));
    }

    fn release(slug: &str, date: &str, topics: &[&str], lang: &str) -> Release {
        let mut r = crate::planner::tests::release(slug, date);
        r.id = slug.to_string();
        r.topics = topics.iter().map(|t| Topic::parse(t).unwrap()).collect();
        r.lang = LangTag::parse(lang).unwrap();
        r
    }

    fn wants(topics: &[&str], langs: &[&str]) -> Wants {
        Wants {
            topics: topics.iter().map(|t| Topic::parse(t).unwrap()).collect(),
            langs: langs.iter().map(|l| LangTag::parse(l).unwrap()).collect(),
            delivery: Delivery::Digest,
        }
    }

    /// The embargo holds to the millisecond: a release dated at the period is in it, one
    /// dated a millisecond later is not (it is in the next); a release published at the
    /// subscriber's `digest_from` was in the last digest.
    #[test]
    fn a_digest_holds_what_was_published_in_its_period_and_nothing_after_it() {
        let period = t("2026-12-05T06:00:00Z");
        let from = t("2026-12-04T06:00:00Z");
        let at_from = release("at-from", "2026-12-04T06:00:00Z", &[], "sv");
        let in_it = release("in-it", "2026-12-04T09:00:00Z", &[], "sv");
        let at_period = release("at-period", "2026-12-05T06:00:00Z", &[], "sv");
        let after = release("after", "2026-12-05T06:00:00.001Z", &[], "sv");
        let mut draft = release("draft", "2026-12-04T10:00:00Z", &[], "sv");
        draft.draft = true;
        let mut withdrawn = release("withdrawn", "2026-12-04T11:00:00Z", &[], "sv");
        withdrawn.withdrawn = Some("fel".into());
        let all = [&at_from, &in_it, &at_period, &after, &draft, &withdrawn];
        // Each seen by a build 20 ms after its date (the at-period one by the build at the
        // digest's own wake-up).
        let published: Vec<Published> = all
            .iter()
            .map(|r| Published {
                release: r,
                first_seen: r.date + TimeDelta::milliseconds(20),
            })
            .collect();
        let slugs = |v: Vec<&Release>| v.iter().map(|r| r.slug.to_string()).collect::<Vec<_>>();
        assert_eq!(
            slugs(contents(&published, from, period, &Wants::default())),
            ["in-it", "at-period"]
        );
        let next = t("2026-12-06T06:00:00Z");
        assert_eq!(
            slugs(contents(&published, period, next, &Wants::default())),
            ["after"]
        );
    }

    /// A release written with a date already past (a day alone: midnight) and first seen
    /// at 10:00 goes in the next digest, not in none.
    #[test]
    fn a_release_first_seen_after_its_date_counts_from_its_sighting() {
        let r = release("late", "2026-12-04T23:00:00Z", &[], "sv");
        let published = [Published {
            release: &r,
            first_seen: t("2026-12-05T09:00:00Z"),
        }];
        let morning = t("2026-12-05T06:00:00Z");
        let next = t("2026-12-06T06:00:00Z");
        assert!(
            contents(
                &published,
                t("2026-12-04T06:00:00Z"),
                morning,
                &Wants::default()
            )
            .is_empty()
        );
        assert_eq!(
            contents(&published, morning, next, &Wants::default()).len(),
            1
        );
    }

    #[test]
    fn topics_match_by_slug_and_languages_both_ways() {
        let r = release("r", "2026-12-04T09:00:00Z", &["Människohandel"], "sv-SE");
        assert!(targeted(&r, &Wants::default()));
        assert!(targeted(&r, &wants(&["manniskohandel"], &[])));
        assert!(!targeted(&r, &wants(&["Sport"], &[])));
        assert!(targeted(&r, &wants(&[], &["sv"])), "sv reads sv-SE");
        let plain = release("p", "2026-12-04T09:00:00Z", &[], "sv");
        assert!(targeted(&plain, &wants(&[], &["sv-SE"])), "sv-SE reads sv");
        assert!(!targeted(&plain, &wants(&[], &["en"])));
        assert!(
            !targeted(&plain, &wants(&["Sport"], &[])),
            "no topics: not a Sport release"
        );
    }

    /// Made from the ledger's subscribers: each digest holds that subscriber's choice; a
    /// release re-dated after it went in one digest (postponed, then public again) is not
    /// put in the next; made again, a period adds nothing.
    #[test]
    fn a_release_goes_in_one_digest_of_a_subscriber_even_when_re_dated() {
        use crate::ledger::{Choices, SubscriberRow};
        let dir = tempfile::tempdir().unwrap();
        let mut l = Ledger::open_in(dir.path()).unwrap();
        let from = t("2026-12-04T06:00:00Z");
        for (address, topics) in [("ada@example.org", "Sport"), ("bo@example.org", "")] {
            l.put_subscriber(&SubscriberRow {
                address: address.into(),
                email: address.into(),
                name: String::new(),
                outlet: String::new(),
                choices: Choices {
                    topics: topics.into(),
                    langs: String::new(),
                    delivery: "digest".into(),
                },
                paused: false,
                confirmed_at: from,
                updated_at: from,
                digest_from: from,
            })
            .unwrap();
        }
        let sport = release("sport", "2026-12-04T09:00:00Z", &["Sport"], "sv");
        let culture = release("kultur", "2026-12-04T10:00:00Z", &["Kultur"], "sv");
        let seen = |r: &Release| r.date + TimeDelta::milliseconds(20);
        let period = t("2026-12-05T06:00:00Z");
        let published = [
            Published {
                release: &sport,
                first_seen: seen(&sport),
            },
            Published {
                release: &culture,
                first_seen: seen(&culture),
            },
        ];
        let at = made_at(period);
        assert_eq!(
            make_batch(&mut l, &published, period, "example.org", "", at).unwrap(),
            (2, Some("bo@example.org".into()))
        );
        assert_eq!(
            make_batch(
                &mut l,
                &published,
                period,
                "example.org",
                "bo@example.org",
                at
            )
            .unwrap(),
            (0, None)
        );
        assert_eq!(
            l.digests_of("ada@example.org").unwrap()[0].releases,
            ["sport"]
        );
        assert_eq!(
            l.digests_of("bo@example.org").unwrap()[0].releases,
            ["sport", "kultur"]
        );
        assert_eq!(
            make_batch(&mut l, &published, period, "example.org", "", at).unwrap(),
            (0, None),
            "made once"
        );
        // Postponed past the period, public again the next day: not in the next digest.
        let mut moved = sport.clone();
        moved.date = t("2026-12-05T12:00:00Z");
        let next = t("2026-12-06T06:00:00Z");
        let published = [Published {
            release: &moved,
            first_seen: seen(&sport),
        }];
        assert_eq!(
            make_batch(&mut l, &published, next, "example.org", "", made_at(next)).unwrap(),
            (0, Some("bo@example.org".into()))
        );
    }

    #[test]
    fn a_digest_message_id_is_stable_per_address_and_period() {
        let p = t("2026-12-05T06:00:00Z");
        let a = message_id("Anna@Example.org", p, "example.org");
        assert_eq!(a, message_id("anna@example.org", p, "example.org"));
        assert_ne!(
            a,
            message_id("anna@example.org", t("2026-12-06T06:00:00Z"), "example.org")
        );
        assert!(a.starts_with("<digest-") && a.ends_with("@example.org>"));
    }
}
