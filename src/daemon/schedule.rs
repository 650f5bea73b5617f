//! When the daemon must next act, as a pure function of the instant, the releases and the
//! ledger's waiting mail: the next embargo lift, and the first instant a waiting delivery
//! is due inside the dispatch window. The event loop sleeps until the earlier of the two.

use chrono::{DateTime, Utc};

use crate::dispatch::Window;
use crate::ledger::Pending;

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

#[cfg(test)]
mod tests {
    use super::*;

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
