//! A token bucket for the `[mail] rate`: messages per second, with a burst of one second's
//! worth. Pure: the caller passes the instant. A token is taken before a message is sent
//! and given back if the server did not accept it, so only accepted messages count.

use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct Bucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl Bucket {
    pub fn new(rate: f64, now: Instant) -> Bucket {
        let burst = rate.max(1.0);
        Bucket {
            rate,
            burst,
            tokens: burst,
            last: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.last = now;
    }

    /// Takes a token, or says how long to wait for one.
    pub fn take(&mut self, now: Instant) -> Result<(), Duration> {
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - self.tokens) / self.rate))
        }
    }

    /// Returns a token for a message the server did not accept.
    pub fn give_back(&mut self) {
        self.tokens = (self.tokens + 1.0).min(self.burst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_holds_over_time() {
        let start = Instant::now();
        let mut b = Bucket::new(10.0, start);
        let burst = (0..20).filter(|_| b.take(start).is_ok()).count();
        assert_eq!(burst, 10, "one second's worth at once");
        assert_eq!(b.take(start), Err(Duration::from_millis(100)));
        assert!(b.take(start + Duration::from_millis(100)).is_ok());
        b.give_back();
        assert!(
            b.take(start + Duration::from_millis(100)).is_ok(),
            "a refused message does not count"
        );
        let sent = (1..=101)
            .filter(|i| b.take(start + Duration::from_millis(100 + 10 * i)).is_ok())
            .count();
        assert_eq!(sent, 10, "one second later, ten more");
    }
}
