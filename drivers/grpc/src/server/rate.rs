//! A per-session limit on commands per second: a token bucket that lets a burst of
//! one second's worth through and then paces the session, by not reading its next
//! frame until the commands already read are paid for. The session's own stream backs
//! up (HTTP/2 flow control), so one flooding worker slows itself, not the others.

use std::time::Duration;
use tokio::time::Instant;

pub(crate) struct RateLimit {
    /// Commands per second; 0 for no limit.
    rate: f64,
    /// Commands that may still be read now; negative while the session is in debt.
    tokens: f64,
    last: Instant,
}

impl RateLimit {
    pub(super) fn new(per_second: u32) -> RateLimit {
        RateLimit {
            rate: f64::from(per_second),
            tokens: f64::from(per_second),
            last: Instant::now(),
        }
    }

    /// Resolves once the session may read another frame.
    pub(super) async fn ready(&mut self) {
        if let Some(wait) = self.wait() {
            tokio::time::sleep(wait).await;
        }
    }

    /// Pays for `commands` just read; a frame larger than the bucket leaves a debt.
    pub(super) fn charge(&mut self, commands: usize) {
        if self.rate > 0.0 {
            self.refill();
            self.tokens -= commands as f64;
        }
    }

    fn wait(&mut self) -> Option<Duration> {
        if self.rate <= 0.0 {
            return None;
        }
        self.refill();
        (self.tokens < 0.0).then(|| Duration::from_secs_f64(-self.tokens / self.rate))
    }

    fn refill(&mut self) {
        let now = Instant::now();
        let earned = now.duration_since(self.last).as_secs_f64() * self.rate;
        self.tokens = (self.tokens + earned).min(self.rate);
        self.last = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_burst_passes_then_the_session_is_paced() {
        let mut limit = RateLimit::new(1_000);
        limit.charge(1_000);
        assert_eq!(limit.wait(), None, "one second's worth passes at once");
        limit.charge(500);
        let wait = limit.wait().map(|w| w.as_millis());
        assert!(
            matches!(wait, Some(490..=500)),
            "500 over at 1,000/s: {wait:?}"
        );
        // Half a second later the debt is paid.
        limit.last = limit.last.checked_sub(Duration::from_millis(500)).unwrap();
        assert_eq!(limit.wait(), None);
        let mut none = RateLimit::new(0);
        none.charge(1_000_000);
        assert_eq!(none.wait(), None, "0 is no limit");
    }
}
