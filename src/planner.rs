//! The planner: what is public at an instant. Pure functions of the releases and `now`;
//! no IO, no clock. Every embargo rule of SPEC §4 lives here and nowhere else.

use chrono::{DateTime, Utc};

use crate::release::Release;

/// Where a release stands at an instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Visibility {
    /// Never published.
    Draft,
    /// Not yet public; nothing of it exists in any output.
    Embargoed {
        until: DateTime<Utc>,
    },
    Public,
    /// Was public, then withdrawn: out of the feeds, its page says so.
    Withdrawn {
        reason: String,
    },
    /// Withdrawn before it was ever public: as invisible as an embargoed one.
    WithdrawnUnpublished,
}

pub fn visibility(release: &Release, at: DateTime<Utc>) -> Visibility {
    if release.draft {
        return Visibility::Draft;
    }
    let lifted = release.date <= at;
    match (&release.withdrawn, lifted) {
        (_, false) if release.withdrawn.is_some() => Visibility::WithdrawnUnpublished,
        (_, false) => Visibility::Embargoed {
            until: release.date,
        },
        (Some(reason), true) => Visibility::Withdrawn {
            reason: reason.clone(),
        },
        (None, true) => Visibility::Public,
    }
}

/// What the site shows at an instant: the public releases newest first, and the
/// withdrawn ones whose page remains as a notice.
#[derive(Debug)]
pub struct Plan<'a> {
    pub at: DateTime<Utc>,
    pub public: Vec<&'a Release>,
    pub withdrawn: Vec<&'a Release>,
}

pub fn plan<'a>(releases: impl IntoIterator<Item = &'a Release>, at: DateTime<Utc>) -> Plan<'a> {
    let mut public = Vec::new();
    let mut withdrawn = Vec::new();
    for r in releases {
        match visibility(r, at) {
            Visibility::Public => public.push(r),
            Visibility::Withdrawn { .. } => withdrawn.push(r),
            _ => {}
        }
    }
    public.sort_by(|a, b| newest_first(a, b));
    withdrawn.sort_by(|a, b| newest_first(a, b));
    Plan {
        at,
        public,
        withdrawn,
    }
}

/// Newest first; ties broken by slug so the order never depends on the file system.
pub fn newest_first(a: &Release, b: &Release) -> std::cmp::Ordering {
    b.date.cmp(&a.date).then_with(|| a.slug.cmp(&b.slug))
}

/// The next instant after `now` at which some release becomes public.
pub fn next_lift<'a>(
    releases: impl IntoIterator<Item = &'a Release>,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    releases
        .into_iter()
        .filter(|r| !r.draft && r.withdrawn.is_none() && r.date > now)
        .map(|r| r.date)
        .min()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) use crate::release::fixture as release;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn public_exactly_from_its_instant() {
        let r = release("a", "2018-10-17T22:00:00Z");
        assert_eq!(
            visibility(&r, t("2018-10-17T21:59:59.999Z")),
            Visibility::Embargoed { until: r.date }
        );
        assert_eq!(
            visibility(&r, t("2018-10-17T22:00:00Z")),
            Visibility::Public
        );
    }

    #[test]
    fn drafts_and_withdrawals() {
        let mut d = release("d", "2018-01-01T00:00:00Z");
        d.draft = true;
        assert_eq!(visibility(&d, t("2030-01-01T00:00:00Z")), Visibility::Draft);
        let mut w = release("w", "2018-01-01T00:00:00Z");
        w.withdrawn = Some("fel siffror".into());
        assert_eq!(
            visibility(&w, t("2017-01-01T00:00:00Z")),
            Visibility::WithdrawnUnpublished
        );
        assert!(matches!(
            visibility(&w, t("2019-01-01T00:00:00Z")),
            Visibility::Withdrawn { .. }
        ));
    }

    #[test]
    fn plan_orders_newest_first_and_finds_the_next_lift() {
        let rs = vec![
            release("old", "2018-01-01T00:00:00Z"),
            release("new", "2018-06-01T00:00:00Z"),
            release("later", "2018-12-01T00:00:00Z"),
        ];
        let p = plan(&rs, t("2018-07-01T00:00:00Z"));
        let slugs: Vec<_> = p.public.iter().map(|r| r.slug.as_str()).collect();
        assert_eq!(slugs, ["new", "old"]);
        assert_eq!(
            next_lift(&rs, t("2018-07-01T00:00:00Z")),
            Some(t("2018-12-01T00:00:00Z"))
        );
        assert_eq!(next_lift(&rs, t("2018-12-01T00:00:00Z")), None);
    }
}
