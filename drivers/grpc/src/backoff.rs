//! Waiting between attempts: exponential, capped, with jitter so that peers that lost
//! the same coordinator do not all return at the same instant.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Doubles from `min` up to `max` with every failure. (The worker's own backoff is
/// the protocol machine's, `keel_protocol::worker`.)
#[derive(Clone, Debug)]
pub(crate) struct Backoff {
    max: Duration,
    next: Duration,
}

impl Backoff {
    pub(crate) fn new(min: Duration, max: Duration) -> Backoff {
        let min = min.min(max);
        Backoff { max, next: min }
    }

    /// The pause before the next attempt (up to a quarter shorter than the step), and
    /// the step doubled for the one after.
    pub(crate) fn next_pause(&mut self) -> Duration {
        let pause = jitter(self.next);
        self.next = self.next.saturating_mul(2).min(self.max);
        pause
    }
}

/// Up to a quarter off. The sub-second part of the clock is random enough to spread
/// peers, and the simulator controls it.
pub(crate) fn jitter(d: Duration) -> Duration {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    d - d.mul_f64(f64::from(nanos % 1000) / 4000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_double_up_to_the_cap_with_at_most_a_quarter_off() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(500));
        let steps = [100, 200, 400, 500, 500];
        for ms in steps {
            let pause = b.next_pause();
            let step = Duration::from_millis(ms);
            assert!(
                pause <= step && pause >= step * 3 / 4,
                "{pause:?} for {step:?}"
            );
        }
        let mut zero = Backoff::new(Duration::ZERO, Duration::ZERO);
        assert_eq!(zero.next_pause(), Duration::ZERO);
    }
}
