//! Turning the date-times people write (in front matter and on the command line) into
//! instants. A date-time with an offset is exact; one without is read in the site's time
//! zone, and a date alone lifts at the site's `publish_time`. DST gaps are refused rather
//! than guessed; in the autumn overlap the earlier instant wins, so an embargo never lifts
//! an hour late.

use chrono::{
    DateTime, Datelike, FixedOffset, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone,
    Utc,
};
use chrono_tz::Tz;

/// A date-time as written, before the site's time zone is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    Exact(DateTime<FixedOffset>),
    Local(NaiveDateTime),
    Date(NaiveDate),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    #[error("`{0}` is not a date-time")]
    Unreadable(String),
    #[error("{0} is not a date in the calendar")]
    ImpossibleDate(String),
    #[error("{local} does not exist in {tz}: the clocks skip that hour")]
    SkippedByDst { local: NaiveDateTime, tz: Tz },
    /// Feeds and mail write years with four digits (RFC 2822 dates have no sign, and RFC
    /// 5322 reads a year as 1900 or later).
    #[error(
        "{utc} (UTC) is out of range: the year must be between {FIRST_YEAR} and {LAST_YEAR}, in UTC and in {tz}"
    )]
    OutOfRange { utc: NaiveDateTime, tz: Tz },
}

/// What a time argument should look like, for error messages.
pub const EXPECTED: &str = "RFC 3339 like 2018-10-18T08:00:00+02:00, a local date-time like 2018-10-18T08:00, or a date like 2018-10-18";

impl Written {
    /// Reads RFC 3339, a local `YYYY-MM-DD[T ]HH:MM[:SS]`, or `YYYY-MM-DD`.
    pub fn parse(s: &str) -> Result<Written, TimeError> {
        let s = s.trim();
        if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
            return Ok(Written::Exact(dt));
        }
        for format in [
            "%Y-%m-%dT%H:%M:%S%.f",
            "%Y-%m-%d %H:%M:%S%.f",
            "%Y-%m-%dT%H:%M",
            "%Y-%m-%d %H:%M",
        ] {
            if let Ok(local) = NaiveDateTime::parse_from_str(s, format) {
                return Ok(Written::Local(local));
            }
        }
        if let Ok(date) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
            return Ok(Written::Date(date));
        }
        if looks_like_a_date(s) {
            return Err(TimeError::ImpossibleDate(s.to_string()));
        }
        Err(TimeError::Unreadable(s.to_string()))
    }

    /// Converts a TOML date-time value. A local time alone is not accepted.
    pub fn from_toml(dt: &toml::value::Datetime) -> Result<Written, TimeError> {
        let text = dt.to_string();
        let Some(d) = dt.date else {
            return Err(TimeError::Unreadable(text));
        };
        let date = NaiveDate::from_ymd_opt(d.year.into(), d.month.into(), d.day.into())
            .ok_or_else(|| TimeError::ImpossibleDate(text.clone()))?;
        let Some(t) = dt.time else {
            return Ok(Written::Date(date));
        };
        let time = NaiveTime::from_hms_nano_opt(
            t.hour.into(),
            t.minute.into(),
            t.second.unwrap_or(0).into(),
            t.nanosecond.unwrap_or(0),
        )
        .ok_or_else(|| TimeError::Unreadable(text.clone()))?;
        let local = date.and_time(time);
        match dt.offset {
            None => Ok(Written::Local(local)),
            Some(toml::value::Offset::Z) => {
                Ok(Written::Exact(Utc.from_utc_datetime(&local).fixed_offset()))
            }
            Some(toml::value::Offset::Custom { minutes }) => {
                let offset = FixedOffset::east_opt(i32::from(minutes) * 60)
                    .ok_or_else(|| TimeError::Unreadable(text.clone()))?;
                match offset.from_local_datetime(&local) {
                    LocalResult::Single(dt) => Ok(Written::Exact(dt)),
                    _ => Err(TimeError::Unreadable(text)),
                }
            }
        }
    }

    /// The instant this denotes on a site in `tz` whose date-only releases lift at `publish_time`.
    pub fn resolve(self, tz: Tz, publish_time: NaiveTime) -> Result<DateTime<Utc>, TimeError> {
        let local = match self {
            Written::Exact(dt) => return in_range(dt.with_timezone(&Utc), tz),
            Written::Local(local) => local,
            Written::Date(date) => date.and_time(publish_time),
        };
        match tz.from_local_datetime(&local) {
            LocalResult::Single(dt) => in_range(dt.with_timezone(&Utc), tz),
            LocalResult::Ambiguous(earlier, _) => in_range(earlier.with_timezone(&Utc), tz),
            LocalResult::None => Err(TimeError::SkippedByDst { local, tz }),
        }
    }
}

/// The first year a date may have: RFC 5322 (3.3) reads a year as 1900 or later, and
/// feed readers follow it.
pub const FIRST_YEAR: i32 = 1900;
/// The last: an RFC 2822 date cannot hold a fifth digit (chrono panics on one).
pub const LAST_YEAR: i32 = 9999;

/// An instant every output can write: years 1900 to 9999 in UTC and in the site's zone
/// (feeds write UTC and local dates, pages and mail local ones).
fn in_range(t: DateTime<Utc>, tz: Tz) -> Result<DateTime<Utc>, TimeError> {
    let years = [t.year(), t.with_timezone(&tz).year()];
    if years.iter().all(|y| (FIRST_YEAR..=LAST_YEAR).contains(y)) {
        Ok(t)
    } else {
        Err(TimeError::OutOfRange {
            utc: t.naive_utc(),
            tz,
        })
    }
}

/// `2018-02-30`-like text: the shape of a date whose numbers are out of range.
fn looks_like_a_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 10
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'-'
        && b[5..7].iter().all(u8::is_ascii_digit)
        && b[7] == b'-'
        && b[8..10].iter().all(u8::is_ascii_digit)
}

/// Reads a command-line time in the site's zone.
pub fn parse_instant(s: &str, tz: Tz, publish_time: NaiveTime) -> Result<DateTime<Utc>, TimeError> {
    Written::parse(s)?.resolve(tz, publish_time)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::Europe::Stockholm;

    fn at(s: &str) -> DateTime<Utc> {
        parse_instant(s, Stockholm, NaiveTime::MIN).unwrap()
    }

    #[test]
    fn years_outside_1900_to_9999_are_refused_in_utc_and_in_the_site_zone() {
        let err = |s: &str| parse_instant(s, Stockholm, NaiveTime::MIN).unwrap_err();
        for s in [
            "-0001-01-01",
            "0000-06-01T12:00:00Z",
            "0001-01-02",
            "1066-10-14",
            "1899-12-31T12:00:00Z",
            "9999-12-31T23:59:59-12:00",
        ] {
            assert!(
                matches!(err(s), TimeError::OutOfRange { .. }),
                "{s}: {}",
                err(s)
            );
        }
        // 23:30 UTC on the last day is already year 10000 in Stockholm.
        assert!(matches!(
            err("9999-12-31T23:30:00Z"),
            TimeError::OutOfRange { .. }
        ));
        // 23:30 UTC on 31 December 1899 is already 1900 in Stockholm, but not in UTC.
        assert!(matches!(
            err("1899-12-31T23:30:00Z"),
            TimeError::OutOfRange { .. }
        ));
        // Local midnight on 1 January 1900 is still 1899 in UTC.
        assert!(matches!(err("1900-01-01"), TimeError::OutOfRange { .. }));
        let message = err("1899-06-01").to_string();
        assert!(
            message
                .contains("the year must be between 1900 and 9999, in UTC and in Europe/Stockholm"),
            "{message}"
        );
        assert_eq!(at("9999-12-31T12:00:00Z").year(), 9999);
        assert_eq!(at("1900-01-01T00:00:00Z").year(), 1900);
        assert_eq!(at("1900-01-02").year(), 1900);
    }

    #[test]
    fn a_date_alone_lifts_at_local_midnight_across_dst() {
        assert_eq!(at("2018-10-18").to_rfc3339(), "2018-10-17T22:00:00+00:00");
        assert_eq!(at("2019-01-18").to_rfc3339(), "2019-01-17T23:00:00+00:00");
    }

    #[test]
    fn exact_and_local_times() {
        assert_eq!(at("2018-10-18T08:00:00+02:00"), at("2018-10-18T08:00"));
        assert_eq!(at("2018-10-18 08:00:30"), at("2018-10-18T06:00:30Z"));
    }

    #[test]
    fn dst_gap_is_refused_and_overlap_takes_the_earlier() {
        let gap = parse_instant("2019-03-31T02:30", Stockholm, NaiveTime::MIN);
        assert!(matches!(gap, Err(TimeError::SkippedByDst { .. })));
        assert_eq!(
            at("2019-10-27T02:30").to_rfc3339(),
            "2019-10-27T00:30:00+00:00"
        );
    }

    #[test]
    fn impossible_dates_say_so() {
        assert_eq!(
            Written::parse("2018-02-30"),
            Err(TimeError::ImpossibleDate("2018-02-30".into()))
        );
        assert!(matches!(
            Written::parse("tomorrow"),
            Err(TimeError::Unreadable(_))
        ));
    }
}
