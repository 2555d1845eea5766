//! The one random source of a run. Everything random in a simulation is drawn from a
//! ChaCha generator keyed by the run's seed, so a seed names a run exactly. Separate
//! ChaCha streams of the same key keep the fault profile independent of how much
//! randomness the run itself consumes, so a shrunk scenario replays with the same seed.

use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};

/// Which ChaCha stream of the seed's key a generator reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stream {
    /// Network delays, losses, task durations: everything during a run.
    Run = 0,
    /// The swarm profile and the workload and fault schedule it generates.
    Profile = 1,
    /// The budgets a swarm profile declares (knobs and limits), apart from the rest so
    /// each seed's workload and faults do not change with them.
    Budgets = 2,
    /// The output-stream knob and the frames each task emits, apart from the rest for
    /// the same reason.
    Streams = 3,
    /// The streaming-edge knob and the edges it draws, apart from the rest likewise.
    Edges = 4,
}

#[derive(Clone, Debug)]
pub(crate) struct SimRng {
    inner: ChaCha8Rng,
}

impl SimRng {
    pub(crate) fn new(seed: u64, stream: Stream) -> SimRng {
        let mut inner = ChaCha8Rng::seed_from_u64(seed);
        inner.set_stream(stream as u64);
        SimRng { inner }
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.inner.next_u64()
    }

    /// Uniform in `0..n`; 0 when `n` is 0.
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        // Lemire's multiply-shift: unbiased enough for simulation and branch-free.
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }

    /// Uniform in `lo..=hi` (either order).
    pub(crate) fn between(&mut self, lo: u64, hi: u64) -> u64 {
        let (lo, hi) = if lo <= hi { (lo, hi) } else { (hi, lo) };
        lo + self.below(hi - lo + 1)
    }

    /// Uniform in `[0, 1)`.
    pub(crate) fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// True with probability `p` (clamped to `[0, 1]`); draws nothing when `p <= 0`, so
    /// a disabled fault consumes no randomness.
    pub(crate) fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && self.unit() < p
    }

    /// One element of a non-empty slice.
    pub(crate) fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_draws_and_streams_differ() {
        let mut a = SimRng::new(7, Stream::Run);
        let mut b = SimRng::new(7, Stream::Run);
        let mut c = SimRng::new(7, Stream::Profile);
        let xa: Vec<u64> = (0..8).map(|_| a.next_u64()).collect();
        let xb: Vec<u64> = (0..8).map(|_| b.next_u64()).collect();
        let xc: Vec<u64> = (0..8).map(|_| c.next_u64()).collect();
        assert_eq!(xa, xb);
        assert_ne!(xa, xc);
    }

    #[test]
    fn bounded_draws_stay_in_range() {
        let mut r = SimRng::new(1, Stream::Run);
        for _ in 0..10_000 {
            assert!(r.below(10) < 10);
            let v = r.between(5, 9);
            assert!((5..=9).contains(&v));
            let u = r.unit();
            assert!((0.0..1.0).contains(&u));
        }
        assert!(!r.chance(0.0));
        assert_eq!(r.below(0), 0);
    }
}
