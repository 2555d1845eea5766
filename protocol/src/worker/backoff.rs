//! Waiting between connection attempts: exponential, capped, with jitter drawn from a
//! seed, so peers that lost the same coordinator do not return at the same instant and
//! a simulation replays exactly.

/// Doubles from `min` up to `max` with every failure; `reset` after a registration.
#[derive(Clone, Debug)]
pub(super) struct Backoff {
    min: u64,
    max: u64,
    next: u64,
    seed: u64,
    draws: u64,
}

impl Backoff {
    pub(super) fn new(min: u64, max: u64, seed: u64) -> Backoff {
        let min = min.min(max);
        Backoff {
            min,
            max,
            next: min,
            seed,
            draws: 0,
        }
    }

    /// The pause before the next attempt (up to a quarter shorter than the step), and
    /// the step doubled for the one after.
    pub(super) fn next_pause(&mut self) -> u64 {
        let step = self.next;
        self.next = step.saturating_mul(2).min(self.max);
        self.draws = self.draws.wrapping_add(1);
        let off = mix(self.seed ^ self.draws.wrapping_mul(0x9e37_79b9_7f4a_7c15)) % 1000;
        let cut = (u128::from(step) * u128::from(off) / 4000) as u64;
        step - cut
    }

    pub(super) fn reset(&mut self) {
        self.next = self.min;
    }
}

/// splitmix64's finaliser: a well-spread 64-bit value from any input.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_double_up_to_the_cap_with_at_most_a_quarter_off() {
        let mut b = Backoff::new(100, 500, 7);
        for step in [100, 200, 400, 500, 500] {
            let pause = b.next_pause();
            assert!(pause <= step && pause >= step * 3 / 4, "{pause} for {step}");
        }
        b.reset();
        assert!(b.next_pause() <= 100);
        let mut huge = Backoff::new(u64::MAX, u64::MAX, 1);
        assert!(huge.next_pause() >= u64::MAX / 4 * 3);
        let mut zero = Backoff::new(0, 0, 1);
        assert_eq!(zero.next_pause(), 0);
    }

    #[test]
    fn the_same_seed_draws_the_same_pauses_and_another_seed_others() {
        let draw = |seed| {
            let mut b = Backoff::new(1_000, 1_000, seed);
            (0..8).map(|_| b.next_pause()).collect::<Vec<_>>()
        };
        assert_eq!(draw(3), draw(3));
        assert_ne!(draw(3), draw(4));
    }
}
