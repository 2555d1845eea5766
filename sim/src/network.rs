//! The simulated network between the coordinator and everyone else. Each message
//! draws its own latency, and may be lost, duplicated or held back (reordered). A
//! partition cuts one or both directions of a worker's link until it heals. Healing
//! (the liveness phase) turns loss, duplication and reordering off and lifts every cut.

use crate::rng::SimRng;
use crate::scenario::{Direction, NetworkSpec};
use keel_engine::Time;

/// One direction of one link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Link {
    /// Worker to coordinator.
    Up(usize),
    /// Coordinator to worker.
    Down(usize),
    /// Client to or from coordinator (never partitioned).
    Client,
}

/// What became of one sent message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fate {
    Lost,
    Partitioned,
    /// Delivered once, or twice when duplicated.
    Deliver(Time, Option<Time>),
}

pub(crate) struct Network {
    spec: NetworkSpec,
    healed: bool,
    /// Active cuts per worker; counters so overlapping partitions heal independently.
    cut_up: Vec<u32>,
    cut_down: Vec<u32>,
    pub sent: u64,
    pub dropped: u64,
}

impl Network {
    pub(crate) fn new(spec: NetworkSpec, workers: usize) -> Network {
        Network {
            spec,
            healed: false,
            cut_up: vec![0; workers],
            cut_down: vec![0; workers],
            sent: 0,
            dropped: 0,
        }
    }

    pub(crate) fn send(&mut self, rng: &mut SimRng, now: Time, link: Link) -> Fate {
        self.sent += 1;
        let cut = match link {
            Link::Up(w) => self.cut_up[w] > 0,
            Link::Down(w) => self.cut_down[w] > 0,
            Link::Client => false,
        };
        if cut {
            self.dropped += 1;
            return Fate::Partitioned;
        }
        if self.healed {
            return Fate::Deliver(now + self.latency(rng), None);
        }
        if rng.chance(self.spec.loss) {
            self.dropped += 1;
            return Fate::Lost;
        }
        let first = now + self.latency(rng) + self.held_back(rng);
        let second = rng
            .chance(self.spec.duplicate)
            .then(|| now + self.latency(rng) + self.held_back(rng));
        Fate::Deliver(first, second)
    }

    fn latency(&self, rng: &mut SimRng) -> Time {
        rng.between(self.spec.latency_min_ms, self.spec.latency_max_ms)
    }

    fn held_back(&self, rng: &mut SimRng) -> Time {
        if rng.chance(self.spec.reorder) {
            rng.between(1, self.spec.reorder_ms.max(1))
        } else {
            0
        }
    }

    pub(crate) fn cut(&mut self, worker: usize, direction: Direction) {
        let (up, down) = sides(direction);
        self.cut_up[worker] += up;
        self.cut_down[worker] += down;
    }

    pub(crate) fn mend(&mut self, worker: usize, direction: Direction) {
        let (up, down) = sides(direction);
        self.cut_up[worker] = self.cut_up[worker].saturating_sub(up);
        self.cut_down[worker] = self.cut_down[worker].saturating_sub(down);
    }

    /// Lifts every cut and every message fault for good.
    pub(crate) fn heal(&mut self) {
        self.healed = true;
        self.cut_up.iter_mut().for_each(|c| *c = 0);
        self.cut_down.iter_mut().for_each(|c| *c = 0);
    }
}

fn sides(direction: Direction) -> (u32, u32) {
    match direction {
        Direction::Both => (1, 1),
        Direction::ToCoordinator => (1, 0),
        Direction::FromCoordinator => (0, 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Stream;

    #[test]
    fn asymmetric_partition_cuts_one_direction_until_mended() {
        let mut n = Network::new(NetworkSpec::default(), 2);
        let mut r = SimRng::new(3, Stream::Run);
        n.cut(0, Direction::ToCoordinator);
        assert_eq!(n.send(&mut r, 0, Link::Up(0)), Fate::Partitioned);
        assert!(matches!(
            n.send(&mut r, 0, Link::Down(0)),
            Fate::Deliver(..)
        ));
        assert!(matches!(n.send(&mut r, 0, Link::Up(1)), Fate::Deliver(..)));
        n.mend(0, Direction::ToCoordinator);
        assert!(matches!(n.send(&mut r, 0, Link::Up(0)), Fate::Deliver(..)));
    }

    #[test]
    fn loss_and_duplication_follow_their_rates_and_stop_when_healed() {
        let spec = NetworkSpec {
            loss: 0.5,
            duplicate: 0.5,
            ..NetworkSpec::default()
        };
        let mut n = Network::new(spec, 1);
        let mut r = SimRng::new(9, Stream::Run);
        let (mut lost, mut dup) = (0, 0);
        for _ in 0..1000 {
            match n.send(&mut r, 10, Link::Up(0)) {
                Fate::Lost => lost += 1,
                Fate::Deliver(a, b) => {
                    assert!((11..=15).contains(&a));
                    dup += b.is_some() as u32;
                }
                Fate::Partitioned => unreachable!(),
            }
        }
        assert!((400..600).contains(&lost), "{lost}");
        assert!((150..350).contains(&dup), "{dup}");
        n.heal();
        for _ in 0..100 {
            assert!(matches!(
                n.send(&mut r, 0, Link::Up(0)),
                Fate::Deliver(_, None)
            ));
        }
    }
}
