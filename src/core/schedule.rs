//! When the daemon must next act, as a pure function of the instant, the releases and the
//! ledger's waiting mail: the next embargo lift, and the first instant a waiting delivery
//! is due inside the dispatch window. The event loop sleeps until the earlier of the two.
//! `pressroom schedule` prints the same plan over a span of time (`timeline`).

use chrono::{DateTime, Utc};

use crate::ledger::Pending;
use crate::mail::policy::Window;
use crate::planner::{self, Visibility};
use crate::release::Release;

/// One thing the daemon would do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned<'a> {
    pub at: DateTime<Utc>,
    pub release: &'a Release,
    pub what: Action,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// The embargo lifts: pages, feeds, sitemap.
    Publish,
    /// Mail starts to leave (the release's first dispatch, or mail that waits).
    Mail,
}

/// What would happen in `(from, until]`: each lift, and when its mail would start to leave
/// (the first opening of the window at or after the lift, for releases that are mailed and
/// not mailed yet); and for mail already waiting, when it would leave. Pure.
pub fn timeline<'a>(
    releases: impl IntoIterator<Item = &'a Release>,
    pending: &[Pending],
    decided: &dyn Fn(&Release) -> bool,
    window: &Window,
    from: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Vec<Planned<'a>> {
    let mut out = Vec::new();
    for r in releases {
        match planner::visibility(r, from) {
            Visibility::Embargoed { until: lift } if lift <= until => {
                out.push(Planned {
                    at: lift,
                    release: r,
                    what: Action::Publish,
                });
                if r.mail
                    && !decided(r)
                    && let Some(at) = window.next_opening(lift).filter(|t| *t <= until)
                {
                    out.push(Planned {
                        at,
                        release: r,
                        what: Action::Mail,
                    });
                }
            }
            Visibility::Public => {
                let due = pending
                    .iter()
                    .filter(|p| p.release_id == r.id)
                    .map(|p| p.due)
                    .min();
                if let Some(at) = due
                    .and_then(|due| window.next_opening(due.max(from)))
                    .filter(|t| *t <= until)
                {
                    out.push(Planned {
                        at,
                        release: r,
                        what: Action::Mail,
                    });
                }
            }
            _ => {}
        }
    }
    out.sort_by(|a, b| {
        a.at.cmp(&b.at)
            .then_with(|| a.release.slug.cmp(&b.release.slug))
    });
    out
}

/// What the daemon wakes up for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wake {
    pub at: DateTime<Utc>,
    pub why: Why,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// A release becomes public: build.
    Lift,
    /// Mail is due and the window is open: send.
    Mail,
}

/// The instant mail may next leave: the earliest due delivery, moved to the next opening
/// of the window. `None` when nothing waits or the window never opens again.
pub fn next_mail(
    pending: &[Pending],
    window: &Window,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let due = pending.iter().map(|p| p.due).min()?;
    window.next_opening(due.max(now))
}

/// The next wake-up: whichever comes first of the next lift and the next mail.
pub fn next_wake(
    next_lift: Option<DateTime<Utc>>,
    next_mail: Option<DateTime<Utc>>,
) -> Option<Wake> {
    let lift = next_lift.map(|at| Wake { at, why: Why::Lift });
    let mail = next_mail.map(|at| Wake { at, why: Why::Mail });
    match (lift, mail) {
        (Some(l), Some(m)) => Some(if m.at < l.at { m } else { l }),
        (l, m) => l.or(m),
    }
}

/// How long the daemon waits at most, while something is scheduled, before it reads the
/// wall clock again.
pub const CLOCK_CHECK: chrono::TimeDelta = chrono::TimeDelta::minutes(1);

/// When to set the alarm for a wake-up `at`: at it, or a minute from `now` if that is
/// sooner. The alarm fires at the wall-clock instant and wakes the daemon when the clock
/// is set (`alarm`); reading the clock every minute while an embargo or mail waits is
/// the second guard, for a system where a clock change is not signalled (some sandboxes
/// and virtual machines). With nothing scheduled, the daemon does not wake at all.
pub fn alarm_at(at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    at.map(|at| at.min(now + CLOCK_CHECK))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn while_something_waits_the_clock_is_read_every_minute_else_never() {
        let now = t("2018-10-17T10:00:00Z");
        assert_eq!(alarm_at(None, now), None);
        assert_eq!(
            alarm_at(Some(t("2018-10-17T10:00:20Z")), now),
            Some(t("2018-10-17T10:00:20Z"))
        );
        assert_eq!(
            alarm_at(Some(t("2018-10-18T06:00:00Z")), now),
            Some(t("2018-10-17T10:01:00Z"))
        );
    }

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn window() -> Window {
        Window {
            schedule: "* * 7-17 * * Mon-Fri".parse().unwrap(),
            tz: chrono_tz::Europe::Stockholm,
        }
    }

    fn pending(due: &str) -> Pending {
        Pending {
            release_id: "r".into(),
            version: 1,
            due: t(due),
        }
    }

    #[test]
    fn mail_queued_at_midnight_on_thursday_waits_for_seven() {
        // 00:00 Thursday 18 October 2018 in Stockholm is 22:00 UTC the day before.
        let now = t("2018-10-17T22:00:00Z");
        let next = next_mail(&[pending("2018-10-17T22:00:00Z")], &window(), now);
        assert_eq!(next, Some(t("2018-10-18T05:00:00Z")));
    }

    #[test]
    fn mail_due_inside_the_window_goes_at_once() {
        let now = t("2018-10-18T08:30:00Z");
        let next = next_mail(&[pending("2018-10-18T08:00:00Z")], &window(), now);
        assert_eq!(next, Some(now));
    }

    #[test]
    fn a_retry_waits_for_its_time_then_for_the_window() {
        let now = t("2018-10-18T15:50:00Z"); // 17:50 in Stockholm
        let retry = pending("2018-10-18T16:10:00Z"); // 18:10: the window has closed
        assert_eq!(
            next_mail(&[retry], &window(), now),
            Some(t("2018-10-19T05:00:00Z")),
            "Friday 07:00"
        );
    }

    #[test]
    fn nothing_waiting_means_no_mail_wake_up() {
        assert_eq!(next_mail(&[], &window(), t("2018-10-18T08:00:00Z")), None);
    }

    fn release(slug: &str, date: &str) -> Release {
        let mut r = crate::planner::tests::release(slug, date);
        r.id = slug.to_string();
        r
    }

    #[test]
    fn the_timeline_holds_each_lift_and_when_its_mail_would_leave() {
        let thursday_midnight = release("torsdag", "2018-10-17T22:00:00Z");
        let mut not_mailed = release("utan-post", "2018-10-18T08:00:00Z");
        not_mailed.mail = false;
        let already_public = release("redan-ute", "2018-10-16T08:00:00Z");
        let later = release("senare", "2018-12-01T08:00:00Z");
        let all = [thursday_midnight, not_mailed, already_public, later];
        let waiting = [Pending {
            release_id: "redan-ute".into(),
            version: 1,
            due: t("2018-10-16T09:00:00Z"),
        }];
        let plan = timeline(
            &all,
            &waiting,
            &|_| false,
            &window(),
            t("2018-10-17T20:00:00Z"),
            t("2018-10-31T00:00:00Z"),
        );
        let got: Vec<(String, &str, Action)> = plan
            .iter()
            .map(|p| (p.at.to_rfc3339(), p.release.slug.as_str(), p.what))
            .collect();
        assert_eq!(
            got,
            [
                (
                    "2018-10-17T22:00:00+00:00".to_string(),
                    "torsdag",
                    Action::Publish
                ),
                (
                    "2018-10-18T05:00:00+00:00".to_string(),
                    "redan-ute",
                    Action::Mail
                ),
                (
                    "2018-10-18T05:00:00+00:00".to_string(),
                    "torsdag",
                    Action::Mail
                ),
                (
                    "2018-10-18T08:00:00+00:00".to_string(),
                    "utan-post",
                    Action::Publish
                ),
            ]
        );
    }

    #[test]
    fn the_earlier_of_lift_and_mail_wins() {
        let lift = Some(t("2018-10-18T06:00:00Z"));
        let mail = Some(t("2018-10-18T05:00:00Z"));
        assert_eq!(
            next_wake(lift, mail),
            Some(Wake {
                at: t("2018-10-18T05:00:00Z"),
                why: Why::Mail
            })
        );
        assert_eq!(next_wake(lift, None).map(|w| w.why), Some(Why::Lift));
        assert_eq!(next_wake(None, None), None);
    }
}
