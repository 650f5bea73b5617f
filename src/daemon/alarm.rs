//! Waking at a wall-clock instant. An embargo lifts at a time of day, not after a duration:
//! a tokio timer counts on the monotonic clock, which does not follow the wall clock when
//! it is set (NTP stepping it, an admin fixing it) and may not count a suspended machine.
//! A Linux `timerfd` on `CLOCK_REALTIME` with an absolute deadline fires when the wall clock
//! reaches it, whatever happened in between, and with `TFD_TIMER_CANCEL_ON_SET` it also
//! wakes us the moment the clock is set, so the daemon re-reads the clock and plans again.
//! Between events the daemon sleeps: no polling.

use std::os::fd::OwnedFd;

use chrono::{DateTime, Utc};
use rustix::time::{
    Itimerspec, TimerfdClockId, TimerfdFlags, TimerfdTimerFlags, Timespec, timerfd_create,
    timerfd_settime,
};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

pub struct Alarm {
    fd: AsyncFd<OwnedFd>,
}

/// Why an alarm returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rang {
    /// The wall clock reached the deadline.
    Due,
    /// The wall clock was set (stepped or changed): plan again from a fresh reading.
    ClockChanged,
}

impl Alarm {
    pub fn new() -> std::io::Result<Alarm> {
        let fd = timerfd_create(
            TimerfdClockId::Realtime,
            TimerfdFlags::NONBLOCK | TimerfdFlags::CLOEXEC,
        )?;
        // SAFETY: `OwnedFd` holds a valid open descriptor and always returns the same one;
        // the `AsyncFd` owns it until it is dropped, and nothing else closes it.
        let fd = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }?;
        Ok(Alarm { fd })
    }

    /// Arms the alarm for `at` (disarms it with `None`). An instant already past fires at
    /// once.
    pub fn set(&mut self, at: Option<DateTime<Utc>>) -> std::io::Result<()> {
        let value = match at {
            // A zero it_value disarms, so the epoch itself is moved by a nanosecond.
            Some(at) => Timespec {
                tv_sec: at.timestamp(),
                tv_nsec: i64::from(at.timestamp_subsec_nanos()).max(1),
            },
            None => Timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
        };
        let spec = Itimerspec {
            it_interval: Timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: value,
        };
        timerfd_settime(
            self.fd.get_ref(),
            TimerfdTimerFlags::ABSTIME | TimerfdTimerFlags::CANCEL_ON_SET,
            &spec,
        )?;
        Ok(())
    }

    /// Waits until the armed deadline or a change of the wall clock. Never returns while
    /// disarmed, unless the clock is set.
    pub async fn ring(&mut self) -> std::io::Result<Rang> {
        loop {
            let mut guard = self.fd.readable().await?;
            let mut buf = [0u8; 8];
            match guard
                .try_io(|fd| rustix::io::read(fd.get_ref(), &mut buf).map_err(std::io::Error::from))
            {
                Ok(Ok(_)) => return Ok(Rang::Due),
                Ok(Err(e))
                    if e.raw_os_error() == Some(rustix::io::Errno::CANCELED.raw_os_error()) =>
                {
                    return Ok(Rang::ClockChanged);
                }
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => continue,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn rings_at_a_wall_clock_instant_already_past() {
        let mut alarm = Alarm::new().unwrap();
        alarm
            .set(Some("2018-10-18T06:00:00Z".parse().unwrap()))
            .unwrap();
        assert_eq!(alarm.ring().await.unwrap(), Rang::Due);
    }

    #[tokio::test]
    async fn a_disarmed_alarm_stays_silent() {
        let mut alarm = Alarm::new().unwrap();
        alarm.set(None).unwrap();
        let waited = tokio::time::timeout(std::time::Duration::from_millis(50), alarm.ring()).await;
        assert!(waited.is_err(), "a disarmed alarm rang");
    }
}
