//! A worker's own clock. It runs at `1 + ppm/1e6` times virtual speed and can be
//! stepped forwards or backwards. A worker measures its lease and its timers on this
//! clock, which is exactly how real drift turns into two workers believing they hold the
//! same lease.

use keel_engine::Time;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct DriftClock {
    /// Rate error in parts per million; positive runs fast.
    pub ppm: i64,
    /// Local minus drift-scaled virtual time, moved by steps.
    offset: i64,
    /// Sum of backward steps so far: each one lets a lease be believed that much longer.
    backward_ms: u64,
}

const MILLION: i128 = 1_000_000;

impl DriftClock {
    pub(crate) fn new(ppm: i64) -> DriftClock {
        DriftClock {
            ppm: ppm.clamp(-500_000, 500_000),
            offset: 0,
            backward_ms: 0,
        }
    }

    /// Local reading at virtual time `v`; never negative, and saturating at the end of
    /// time rather than wrapping (a scenario or a plan may ask for any duration).
    pub(crate) fn local(&self, v: Time) -> Time {
        let v = v as i128;
        let l = v + v * self.ppm as i128 / MILLION + self.offset as i128;
        l.clamp(0, Time::MAX as i128) as Time
    }

    /// The first virtual time at or after `now` at which the local clock reads `local`.
    pub(crate) fn virtual_at(&self, now: Time, local: Time) -> Time {
        let num = (local as i128 - self.offset as i128) * MILLION;
        let den = MILLION + self.ppm as i128;
        let v = (num + den - 1).div_euclid(den);
        v.clamp(now as i128, Time::MAX as i128) as Time
    }

    /// Virtual time at which a local duration started now ends; a duration past the end
    /// of time ends there.
    pub(crate) fn after_local(&self, now: Time, local_ms: u64) -> Time {
        self.virtual_at(now, self.local(now).saturating_add(local_ms))
    }

    pub(crate) fn step(&mut self, delta_ms: i64) {
        self.offset = self.offset.saturating_add(delta_ms);
        if delta_ms < 0 {
            self.backward_ms = self.backward_ms.saturating_add(delta_ms.unsigned_abs());
        }
    }

    /// How far (virtual ms) a lease of `ttl` measured on this clock can outlive the
    /// coordinator's view of it.
    pub(crate) fn drift_bound(&self, ttl: u64) -> u64 {
        // The local clock must travel `ttl` plus every backward step to reach the
        // deadline, at (1e6 + ppm) / 1e6 local ms per virtual ms; whatever that takes
        // beyond `ttl` is the excess, plus a millisecond for rounding either side.
        let span = (ttl as i128 + self.backward_ms as i128) * MILLION;
        let rate = MILLION + self.ppm as i128;
        let virtual_ms = (span + rate - 1).div_euclid(rate);
        let excess = (virtual_ms - ttl as i128).max(0);
        u64::try_from(excess).unwrap_or(u64::MAX).saturating_add(2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slow_clock_reaches_its_deadline_late() {
        let c = DriftClock::new(-100_000); // 10% slow
        assert_eq!(c.local(1_000), 900);
        let end = c.after_local(0, 900);
        assert_eq!(end, 1_000);
        // 1 s of local time is 1.111 s of virtual time on a clock 10% slow.
        assert_eq!(c.drift_bound(1_000), 114);
        assert_eq!(DriftClock::new(50_000).drift_bound(30_000), 2);
    }

    #[test]
    fn steps_move_the_reading_and_backward_steps_widen_the_bound() {
        let mut c = DriftClock::new(0);
        c.step(500);
        assert_eq!(c.local(100), 600);
        assert_eq!(c.virtual_at(0, 600), 100);
        c.step(-2_000);
        assert_eq!(c.local(10_000), 8_500);
        assert_eq!(c.drift_bound(30_000), 2_002);
        // Steps back on a slow clock take longer than their size to win back.
        let mut slow = DriftClock::new(-200_000);
        slow.step(-800);
        assert_eq!(slow.drift_bound(4_000), 1_000 + 1_000 + 2);
        // A deadline already passed on the local clock is due now.
        assert_eq!(c.virtual_at(50_000, 10), 50_000);
    }

    /// A plan's task may estimate `u64::MAX` ms and a scenario may step a clock by any
    /// amount: readings and deadlines stop at the end of time instead of overflowing.
    #[test]
    fn extreme_durations_saturate_at_the_end_of_time() {
        for ppm in [-500_000, 0, 500_000] {
            let c = DriftClock::new(ppm);
            // A fast clock reads the end of time before virtual time gets there.
            let end = c.virtual_at(0, u64::MAX);
            assert_eq!(c.after_local(1_000, u64::MAX), end, "ppm {ppm}");
            assert_eq!(end == u64::MAX, ppm <= 0, "ppm {ppm}");
            assert_eq!(c.after_local(u64::MAX, 1), u64::MAX, "ppm {ppm}");
            assert!(c.local(u64::MAX) >= c.local(u64::MAX / 2), "ppm {ppm}");
            assert!(c.drift_bound(u64::MAX) >= 2, "ppm {ppm}");
        }
        let mut c = DriftClock::new(500_000);
        assert_eq!(c.local(u64::MAX), u64::MAX);
        c.step(i64::MAX);
        c.step(i64::MAX);
        assert_eq!(c.local(1), i64::MAX as u64 + 1);
        assert_eq!(c.local(u64::MAX), u64::MAX);
        c.step(i64::MIN);
        c.step(i64::MIN);
        c.step(i64::MIN);
        assert_eq!(c.local(1_000), 0);
        assert!(c.drift_bound(u64::MAX) > u64::MAX / 4);
    }
}
