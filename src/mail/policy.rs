//! Dispatch policy, as pure functions of instants: whether a release is mailed
//! automatically, when mail may leave (the `[dispatch] window` cron schedule in the site's
//! zone), whether a claimed delivery may be handed over (`hand_off`), and what becomes of a
//! delivery after each attempt. The sender asks; it decides nothing itself.

use std::time::Duration;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use chrono_tz::Tz;

use crate::media::{self, Exclusion, Recipient};
use crate::release::Release;

/// The minutes in which mail may leave: every minute that holds a fire time of the cron
/// schedule. `* * 7-17 * * Mon-Fri` and `0 * 7-17 * * Mon-Fri` both mean 07:00–17:59 on
/// weekdays.
#[derive(Debug, Clone)]
pub struct Window {
    pub schedule: cron::Schedule,
    pub tz: Tz,
}

fn minute_of(t: DateTime<Utc>) -> DateTime<Utc> {
    t.duration_trunc(TimeDelta::minutes(1)).unwrap_or(t)
}

impl Window {
    /// The config's `[dispatch] window` in the site's zone.
    pub fn of(config: &crate::config::Config) -> Window {
        Window {
            schedule: config.dispatch.window.clone(),
            tz: config.site.timezone,
        }
    }

    /// Whether mail may leave at `t`.
    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        let start = minute_of(t);
        let from = (start - TimeDelta::seconds(1)).with_timezone(&self.tz);
        self.schedule
            .after(&from)
            .next()
            .is_some_and(|fire| fire.with_timezone(&Utc) < start + TimeDelta::minutes(1))
    }

    /// `t` itself if the window is open, else the start of its next open minute.
    pub fn next_opening(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if self.contains(t) {
            return Some(t);
        }
        let fire = self.schedule.after(&t.with_timezone(&self.tz)).next()?;
        Some(minute_of(fire.with_timezone(&Utc)))
    }
}

/// Whether a release that has just become public is mailed automatically.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AutoDispatch {
    Queue,
    /// First seen more than `catch_up` after its date: published, not mailed unless a
    /// person runs `pressroom send`.
    TooLate,
}

pub fn auto_dispatch(
    date: DateTime<Utc>,
    first_seen: DateTime<Utc>,
    catch_up: Duration,
) -> AutoDispatch {
    let late = first_seen.signed_duration_since(date);
    match TimeDelta::from_std(catch_up) {
        Ok(limit) if late > limit => AutoDispatch::TooLate,
        _ => AutoDispatch::Queue,
    }
}

/// What the mail server (or the connection to it) said about one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// 2xx: the server took responsibility for the message.
    Accepted(String),
    /// 4xx, a dropped connection, a timeout: try again later.
    Transient(String),
    /// 5xx: the server will never take it.
    Permanent(String),
}

/// Where a delivery goes after an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    Sent,
    Retry { at: DateTime<Utc> },
    Failed { reason: String },
}

/// The first retry waits this long; each later one twice as long, up to `BACKOFF_CAP`.
pub const BACKOFF_FIRST: Duration = Duration::from_secs(5 * 60);
pub const BACKOFF_CAP: Duration = Duration::from_secs(60 * 60);

/// What becomes of a claimed delivery as it is handed to the transport (SPEC §4, "Mail at
/// hand-off"): it leaves only to a recipient still on the media list (`listed`, as the run
/// read it), still wanting the release as it is now, and not opted out; otherwise it is
/// cancelled, with the reason (`media::exclusion`, the one rule of who is mailed) recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandOff<'a> {
    Send(&'a Recipient),
    Cancel(Exclusion),
}

pub fn hand_off<'a>(
    release: &Release,
    address: &str,
    opted_out: &crate::ledger::OptedOut,
    listed: Option<&'a Recipient>,
) -> HandOff<'a> {
    // Claimed: its state is `sending`, which is this run's, not a reason.
    match media::exclusion(release, listed, opted_out.contains(address), None) {
        Some(why) => HandOff::Cancel(why),
        None => listed.map_or(HandOff::Cancel(Exclusion::NotListed), HandOff::Send),
    }
}

/// The wait before retry number `attempts` (1 after the first failure).
pub fn backoff(attempts: u32) -> Duration {
    let doublings = attempts.saturating_sub(1).min(16);
    BACKOFF_FIRST
        .saturating_mul(1 << doublings)
        .min(BACKOFF_CAP)
}

/// Decides the next state of a delivery queued at `queued_at` after its `attempts`-th
/// attempt ended at `now`.
pub fn after_attempt(
    attempt: &Attempt,
    attempts: u32,
    queued_at: DateTime<Utc>,
    now: DateTime<Utc>,
    max_retry_age: Duration,
) -> Next {
    match attempt {
        Attempt::Accepted(_) => Next::Sent,
        Attempt::Permanent(reply) => Next::Failed {
            reason: reply.clone(),
        },
        Attempt::Transient(reply) => {
            let retry_at =
                now + TimeDelta::from_std(backoff(attempts)).unwrap_or(TimeDelta::hours(1));
            let give_up =
                queued_at + TimeDelta::from_std(max_retry_age).unwrap_or(TimeDelta::days(3));
            if retry_at > give_up {
                Next::Failed {
                    reason: format!(
                        "gave up after {attempts} attempts over {max_retry_age:?}; last reply: {reply}"
                    ),
                }
            } else {
                Next::Retry { at: retry_at }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn weekdays_7_to_18() -> Window {
        Window {
            schedule: cron::Schedule::from_str("* * 7-17 * * Mon-Fri").unwrap(),
            tz: chrono_tz::Europe::Stockholm,
        }
    }

    #[test]
    fn the_window_is_weekdays_seven_to_six_local_time() {
        let w = weekdays_7_to_18();
        // Thursday 18 October 2018, Stockholm summer time.
        assert!(!w.contains(t("2018-10-18T06:59:59+02:00")));
        assert!(w.contains(t("2018-10-18T07:00:00+02:00")));
        assert!(w.contains(t("2018-10-18T17:59:59+02:00")));
        assert!(!w.contains(t("2018-10-18T18:00:00+02:00")));
        assert!(!w.contains(t("2018-10-20T12:00:00+02:00")), "Saturday");
    }

    #[test]
    fn a_release_public_at_midnight_waits_for_seven() {
        let w = weekdays_7_to_18();
        assert_eq!(
            w.next_opening(t("2018-10-18T00:00:00+02:00")),
            Some(t("2018-10-18T07:00:00+02:00"))
        );
        // Friday evening waits for Monday, across the end of summer time.
        assert_eq!(
            w.next_opening(t("2018-10-26T18:00:00+02:00")),
            Some(t("2018-10-29T07:00:00+01:00"))
        );
        let open = t("2018-10-18T09:12:34+02:00");
        assert_eq!(w.next_opening(open), Some(open));
    }

    #[test]
    fn a_once_a_minute_schedule_opens_whole_minutes() {
        let w = Window {
            schedule: cron::Schedule::from_str("0 30 9 * * *").unwrap(),
            tz: chrono_tz::UTC,
        };
        assert!(w.contains(t("2020-01-01T09:30:59Z")));
        assert!(!w.contains(t("2020-01-01T09:31:00Z")));
        assert_eq!(
            w.next_opening(t("2020-01-01T09:31:00Z")),
            Some(t("2020-01-02T09:30:00Z"))
        );
    }

    #[test]
    fn first_seen_too_late_is_not_mailed() {
        let date = t("2018-10-18T00:00:00+02:00");
        let day = Duration::from_secs(24 * 3600);
        assert_eq!(
            auto_dispatch(date, t("2018-10-19T00:00:00+02:00"), day),
            AutoDispatch::Queue
        );
        assert_eq!(
            auto_dispatch(date, t("2018-10-19T01:00:00+02:00"), day),
            AutoDispatch::TooLate
        );
    }

    #[test]
    fn backoff_doubles_from_five_minutes_to_an_hour() {
        let minutes: Vec<u64> = (1..=6).map(|n| backoff(n).as_secs() / 60).collect();
        assert_eq!(minutes, [5, 10, 20, 40, 60, 60]);
    }

    #[test]
    fn transient_failures_retry_until_too_old_permanent_ones_never() {
        let queued = t("2020-01-01T10:00:00Z");
        let age = Duration::from_secs(3600);
        let soft = Attempt::Transient("451 4.7.1 try later".into());
        assert_eq!(
            after_attempt(&soft, 1, queued, t("2020-01-01T10:00:05Z"), age),
            Next::Retry {
                at: t("2020-01-01T10:05:05Z")
            }
        );
        assert!(matches!(
            after_attempt(&soft, 4, queued, t("2020-01-01T10:30:00Z"), age),
            Next::Failed { .. }
        ));
        let hard = Attempt::Permanent("550 5.1.1 no such user".into());
        assert_eq!(
            after_attempt(&hard, 1, queued, queued, age),
            Next::Failed {
                reason: "550 5.1.1 no such user".into()
            }
        );
        assert_eq!(
            after_attempt(&Attempt::Accepted("250 ok".into()), 1, queued, queued, age),
            Next::Sent
        );
    }
}
