//! The core's rules at exact instants: no process, no sleeps.

use super::*;

fn t(s: &str) -> DateTime<Utc> {
    s.parse().expect("an RFC 3339 instant")
}

/// Weekdays 07–17 in Stockholm (the sample config's window).
fn core() -> Core {
    Core::new(Window {
        schedule: "* * 7-17 * * Mon-Fri".parse().expect("cron"),
        tz: chrono_tz::Europe::Stockholm,
    })
}

fn pending(id: &str, due: &str) -> Pending {
    Pending {
        release_id: id.to_string(),
        version: 1,
        due: t(due),
    }
}

fn built(next_lift: Option<&str>) -> Event {
    Event::Built(Built {
        next_lift: next_lift.map(t),
        committed: true,
        releases_unknown: false,
    })
}

const ALL: &dyn Fn(&str) -> Presence = &|_| Presence::Public;

#[test]
fn files_signals_and_the_clock_ask_for_what_each_needs() {
    let mut c = core();
    let now = t("2018-10-18T08:00:00Z");
    assert_eq!(c.on_event(Event::Started, now), [Action::Build]);
    assert_eq!(c.on_event(Event::Files(Change::Nothing), now), []);
    assert_eq!(
        c.on_event(Event::Files(Change::Media), now),
        [Action::ReadMedia]
    );
    assert_eq!(
        c.on_event(Event::Files(Change::Folder), now),
        [Action::Rewatch, Action::Build]
    );
    for e in [
        Event::Reload,
        Event::Files(Change::Config),
        Event::Files(Change::Rescan),
    ] {
        assert_eq!(c.on_event(e, now), [Action::Reload, Action::Build]);
    }
    assert_eq!(c.on_event(Event::ClockChanged, now), [Action::Build]);
}

#[test]
fn a_wake_up_builds_only_once_the_lift_has_come() {
    let mut c = core();
    let lift = "2018-10-18T06:00:00Z";
    c.on_event(built(Some(lift)), t("2018-10-18T05:00:00Z"));
    assert_eq!(c.next_wakeup(), Some(t(lift)));
    assert_eq!(c.on_event(Event::Wake, t("2018-10-18T05:59:59Z")), []);
    assert_eq!(c.on_event(Event::Wake, t(lift)), [Action::Build]);
}

#[test]
fn mail_due_outside_the_window_waits_for_its_opening_then_one_run_starts() {
    let mut c = core();
    // Thursday 18 October 2018, 06:00 in Stockholm: the window opens at 07:00 (05:00 UTC).
    let early = t("2018-10-18T04:00:00Z");
    let p = [pending("r", "2018-10-18T04:00:00Z")];
    assert_eq!(c.plan(&p, ALL, early), []);
    assert_eq!(c.next_wakeup(), Some(t("2018-10-18T05:00:00Z")));
    let open = t("2018-10-18T05:00:00Z");
    assert_eq!(
        c.plan(&p, ALL, open),
        [Action::StartMail(vec![("r".into(), 1)])]
    );
    assert_eq!(c.mail(), MailState::Running { since: open });
    // While it runs, no second run and no mail wake-up.
    assert_eq!(c.plan(&p, ALL, open + TimeDelta::seconds(1)), []);
    assert_eq!(c.next_wakeup(), None);
    c.on_event(Event::MailEnded(MailEnd::Ran { unread: 0 }), open);
    assert_eq!(c.mail(), MailState::Idle);
}

#[test]
fn nothing_is_mailed_a_second_before_it_is_due() {
    let mut c = core();
    let due = "2018-10-18T08:00:00Z";
    let p = [pending("r", due)];
    assert_eq!(c.plan(&p, ALL, t(due) - TimeDelta::seconds(1)), []);
    assert_eq!(c.next_wakeup(), Some(t(due)));
    assert_eq!(c.plan(&p, ALL, t(due)).len(), 1);
}

#[test]
fn a_failed_run_backs_off_five_minutes_a_busy_lock_thirty_seconds() {
    let now = t("2018-10-18T08:00:00Z");
    let p = [pending("r", "2018-10-18T07:00:00Z")];
    for (end, wait, because) in [
        (MailEnd::Failed, FAILED_RUN_RETRY, Backoff::RunFailed),
        (MailEnd::Busy, LOCK_RETRY, Backoff::LockBusy),
        (MailEnd::Ran { unread: 1 }, LOCK_RETRY, Backoff::Unreadable),
    ] {
        let mut c = core();
        assert_eq!(c.plan(&p, ALL, now).len(), 1);
        c.on_event(Event::MailEnded(end), now);
        assert_eq!(
            c.mail(),
            MailState::BackingOff {
                until: now + wait,
                because
            }
        );
        assert_eq!(c.plan(&p, ALL, now + wait - TimeDelta::seconds(1)), []);
        assert_eq!(c.next_wakeup(), Some(now + wait));
        assert_eq!(c.plan(&p, ALL, now + wait).len(), 1, "{end:?}");
    }
}

#[test]
fn a_deleted_release_s_mail_is_cancelled_after_the_grace_unless_it_comes_back() {
    let mut c = core();
    let now = t("2018-10-18T08:00:00Z");
    let p = [pending("r", "2018-10-19T08:00:00Z")];
    let none: &dyn Fn(&str) -> Presence = &|_| Presence::Gone;
    assert_eq!(c.plan(&p, none, now), []);
    assert_eq!(c.next_wakeup(), Some(now + DELETED_GRACE));
    // Back within the grace (an editor's delete-and-write): forgotten.
    assert_eq!(c.plan(&p, ALL, now + TimeDelta::seconds(2)), []);
    assert_eq!(c.plan(&p, none, now + TimeDelta::seconds(3)), []);
    assert_eq!(c.plan(&p, none, now + TimeDelta::seconds(7)), []);
    assert_eq!(
        c.plan(&p, none, now + TimeDelta::seconds(8)),
        [Action::Cancel("r".into())]
    );
}

#[test]
fn while_the_folder_is_unreadable_nothing_counts_as_deleted() {
    let mut c = core();
    let now = t("2018-10-18T08:00:00Z");
    c.on_event(
        Event::Built(Built {
            next_lift: None,
            committed: true,
            releases_unknown: true,
        }),
        now,
    );
    let p = [pending("r", "2018-10-19T08:00:00Z")];
    let none: &dyn Fn(&str) -> Presence = &|_| Presence::Gone;
    for s in [0, 10, 100] {
        assert_eq!(c.plan(&p, none, now + TimeDelta::seconds(s)), []);
    }
}

#[test]
fn a_commit_that_failed_is_built_again_in_thirty_seconds() {
    let mut c = core();
    let now = t("2018-10-18T08:00:00Z");
    c.on_event(
        Event::Built(Built {
            next_lift: None,
            committed: false,
            releases_unknown: false,
        }),
        now,
    );
    assert_eq!(c.next_wakeup(), Some(now + COMMIT_RETRY));
    assert_eq!(c.on_event(Event::Wake, now + COMMIT_RETRY), [Action::Build]);
    c.on_event(built(None), now + COMMIT_RETRY);
    assert_eq!(c.next_wakeup(), None);
}

#[test]
fn each_deleted_release_has_its_own_grace() {
    let mut c = core();
    let now = t("2018-10-18T08:00:00Z");
    let (r, s) = (
        pending("r", "2018-10-19T08:00:00Z"),
        pending("s", "2018-10-19T08:00:00Z"),
    );
    let none: &dyn Fn(&str) -> Presence = &|_| Presence::Gone;
    let only_s_gone: &dyn Fn(&str) -> Presence = &|id| {
        if id == "r" {
            Presence::Public
        } else {
            Presence::Gone
        }
    };
    // s goes first, r three seconds later.
    assert_eq!(c.plan(std::slice::from_ref(&s), only_s_gone, now), []);
    let later = now + TimeDelta::seconds(3);
    assert_eq!(c.plan(&[r.clone(), s.clone()], none, later), []);
    let five = now + DELETED_GRACE;
    assert_eq!(
        c.plan(&[r.clone(), s.clone()], none, five),
        [Action::Cancel("s".into())]
    );
    assert_eq!(c.next_wakeup(), Some(later + DELETED_GRACE));
    assert_eq!(
        c.plan(std::slice::from_ref(&r), none, later + DELETED_GRACE),
        [Action::Cancel("r".into())]
    );
}

#[test]
fn the_mail_of_a_release_pulled_back_waits_and_is_not_cancelled() {
    let mut c = core();
    let now = t("2018-10-18T08:00:00Z");
    let p = [pending("r", "2018-10-18T07:00:00Z")];
    let hidden: &dyn Fn(&str) -> Presence = &|_| Presence::Hidden;
    for s in [0, 10, 3600] {
        assert_eq!(c.plan(&p, hidden, now + TimeDelta::seconds(s)), [], "{s}");
    }
    assert_eq!(c.next_wakeup(), None, "the lift (from the build) wakes it");
    assert_eq!(
        c.plan(&p, ALL, now + TimeDelta::hours(2)),
        [Action::StartMail(vec![("r".into(), 1)])]
    );
}

/// `[dispatch] hold`: mail of a version first seen less than `hold` ago waits for it to
/// settle, and leaves at the second it has; an edit starts the count again.
#[test]
fn mail_leaves_only_from_a_version_as_old_as_the_hold_and_an_edit_starts_it_again() {
    let hold = TimeDelta::minutes(2);
    let saved = t("2018-10-18T08:00:00Z");
    let release = crate::planner::tests::release("r", "2018-10-18T07:00:00Z");
    let presence_at =
        |seen: DateTime<Utc>, now| Presence::of(Some(&release), Some(seen), hold, now);
    assert_eq!(
        presence_at(saved, saved + TimeDelta::seconds(119)),
        Presence::Settling {
            until: saved + hold
        }
    );
    assert_eq!(presence_at(saved, saved + hold), Presence::Public);
    assert_eq!(
        Presence::of(Some(&release), None, hold, saved),
        Presence::Settling {
            until: saved + hold
        },
        "content not yet seen counts from now"
    );
    assert_eq!(
        Presence::of(Some(&release), Some(saved), TimeDelta::zero(), saved),
        Presence::Public,
        "0s turns it off"
    );
    assert_eq!(
        Presence::of(None, Some(saved), hold, saved + hold),
        Presence::Gone
    );

    let mut c = core();
    let p = [pending("r", "2018-10-18T08:00:00Z")];
    let mut seen = saved;
    for now in [saved, saved + TimeDelta::seconds(119)] {
        let settling = |_: &str| presence_at(seen, now);
        assert_eq!(c.plan(&p, &settling, now), [], "{now}");
        assert_eq!(c.next_wakeup(), Some(seen + hold));
    }
    // Edited a second before it would have left: two minutes more.
    seen = saved + TimeDelta::seconds(119);
    let now = saved + hold;
    assert_eq!(c.plan(&p, &|_: &str| presence_at(seen, now), now), []);
    assert_eq!(c.next_wakeup(), Some(seen + hold));
    let now = seen + hold;
    assert_eq!(
        c.plan(&p, &|_: &str| presence_at(seen, now), now),
        [Action::StartMail(vec![("r".into(), 1)])]
    );
}

#[test]
fn a_periodic_rescan_wakes_the_daemon_at_its_interval_and_asks_for_a_rescan() {
    let mut c = core();
    let every = TimeDelta::seconds(30);
    assert_eq!(
        c.next_wakeup(),
        None,
        "no rescan unless the shell asks for one"
    );
    c.set_rescan(Some(every), t("2018-10-18T08:00:00Z"));
    assert_eq!(c.next_wakeup(), Some(t("2018-10-18T08:00:30Z")));
    assert_eq!(c.on_event(Event::Wake, t("2018-10-18T08:00:29Z")), []);
    assert_eq!(
        c.on_event(Event::Wake, t("2018-10-18T08:00:30Z")),
        [Action::Rescan]
    );
    assert_eq!(c.next_wakeup(), Some(t("2018-10-18T08:01:00Z")));
    // A new watcher (a reload, the folder back) sets the same interval: not put off.
    c.set_rescan(Some(every), t("2018-10-18T08:00:45Z"));
    assert_eq!(c.next_wakeup(), Some(t("2018-10-18T08:01:00Z")));
    // Another interval counts from now.
    c.set_rescan(Some(TimeDelta::seconds(10)), t("2018-10-18T08:00:45Z"));
    assert_eq!(c.next_wakeup(), Some(t("2018-10-18T08:00:55Z")));
    // A lift before the rescan wakes the daemon first, and builds without a rescan.
    c.on_event(
        built(Some("2018-10-18T08:00:50Z")),
        t("2018-10-18T08:00:46Z"),
    );
    assert_eq!(c.next_wakeup(), Some(t("2018-10-18T08:00:50Z")));
    assert_eq!(
        c.on_event(Event::Wake, t("2018-10-18T08:00:50Z")),
        [Action::Build]
    );
    // Watching works again: no more wake-ups for it.
    c.set_rescan(None, t("2018-10-18T08:00:51Z"));
    c.on_event(built(None), t("2018-10-18T08:00:51Z"));
    assert_eq!(c.next_wakeup(), None);
    assert_eq!(c.on_event(Event::Wake, t("2018-10-18T08:00:55Z")), []);
}

#[test]
fn a_rescan_due_with_a_lift_still_builds_the_lift_and_what_it_finds_is_acted_on() {
    let mut c = core();
    let at = t("2018-10-18T08:00:30Z");
    c.set_rescan(Some(TimeDelta::seconds(30)), t("2018-10-18T08:00:00Z"));
    c.on_event(
        built(Some("2018-10-18T08:00:30Z")),
        t("2018-10-18T08:00:01Z"),
    );
    assert_eq!(c.next_wakeup(), Some(at));
    // A rescan that finds nothing changed builds nothing: the lift is built for itself.
    assert_eq!(c.on_event(Event::Wake, at), [Action::Rescan, Action::Build]);
    assert_eq!(c.on_event(Event::Files(Change::Nothing), at), []);
    // What a rescan finds is acted on as if the watcher had seen it.
    assert_eq!(
        c.on_event(Event::Files(Change::Releases), at),
        [Action::Build]
    );
    assert_eq!(
        c.on_event(Event::Files(Change::Config), at),
        [Action::Reload, Action::Build]
    );
}

/// A core with a digest at 07:00 Stockholm time every day.
fn digest_core() -> Core {
    let mut c = core();
    c.set_periods(Periods {
        schedule: "0 0 7 * * *".parse().expect("cron"),
        tz: chrono_tz::Europe::Stockholm,
    });
    c
}

/// A period's digests are made once, ten seconds after it (`digest::LAG`), and the core
/// wakes for that; at start it makes the latest period's (which makes nothing twice); a
/// clock that jumps over three periods makes one, of the latest.
#[test]
fn each_period_is_made_once_and_a_jump_over_several_makes_the_latest() {
    let mut c = digest_core();
    // 10:00 on Saturday 5 December 2026 in Stockholm.
    let start = t("2026-12-05T09:00:00Z");
    assert_eq!(
        c.plan_digests(None, true, start),
        [Action::Digest {
            period: t("2026-12-05T06:00:00Z")
        }]
    );
    assert_eq!(c.plan_digests(None, true, start), []);
    let made = t("2026-12-06T06:00:10.001Z");
    assert_eq!(c.next_wakeup(), Some(made));
    assert_eq!(
        c.plan_digests(None, true, made - TimeDelta::milliseconds(1)),
        []
    );
    assert_eq!(
        c.plan_digests(None, true, made),
        [Action::Digest {
            period: t("2026-12-06T06:00:00Z")
        }]
    );
    let jumped = t("2026-12-09T12:00:00Z");
    assert_eq!(
        c.plan_digests(None, true, jumped),
        [Action::Digest {
            period: t("2026-12-09T06:00:00Z")
        }]
    );
    assert_eq!(c.plan_digests(None, true, jumped), []);
    // While the builder's view is stale (a clock set back), nothing is made or sent.
    let next = t("2026-12-10T06:00:10.001Z");
    assert_eq!(c.plan_digests(Some(next), false, next), []);
    assert_eq!(
        c.plan_digests(None, true, next),
        [Action::Digest {
            period: t("2026-12-10T06:00:00Z")
        }]
    );
}

/// Digests leave at once when due, outside the dispatch window too (Saturday), but never
/// while a release's mail run goes: one run at a time.
#[test]
fn waiting_digests_leave_when_due_one_run_at_a_time() {
    let mut c = digest_core();
    let now = t("2026-12-05T06:00:10.001Z");
    assert_eq!(c.plan_digests(None, true, now).len(), 1);
    let due = Some(now);
    assert_eq!(c.plan_digests(due, true, now), [Action::SendDigests]);
    assert_eq!(c.mail(), MailState::Running { since: now });
    assert_eq!(c.plan_digests(due, true, now), [], "it is running");
    c.on_event(Event::MailEnded(MailEnd::Ran { unread: 0 }), now);
    let retry = t("2026-12-05T06:06:00Z");
    assert_eq!(c.plan_digests(Some(retry), true, now), []);
    assert_eq!(c.next_wakeup(), Some(retry));
    assert_eq!(
        c.plan_digests(Some(retry), true, retry),
        [Action::SendDigests]
    );
}
