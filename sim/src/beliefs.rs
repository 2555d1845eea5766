//! Workers' beliefs that they hold a live lease, each until a deadline on the worker's
//! own clock. Two workers may both believe they hold one task only for as long as the
//! older belief's clock drift allows: past that, the protocol has let two processes
//! run one attempt's work at once.

use crate::clock::DriftClock;
use keel_engine::{Fence, TaskId, Time};
use std::collections::BTreeMap;

/// A worker's belief that it holds a live lease, until a local-clock deadline.
#[derive(Clone, Copy, Debug)]
struct Belief {
    worker: usize,
    fence: Fence,
    local_deadline: Time,
    /// When this worker started believing in this fence.
    since: Time,
}

#[derive(Default)]
pub(crate) struct Beliefs {
    by_task: BTreeMap<TaskId, Vec<Belief>>,
    /// The local spans a belief can be measured over (lease TTL, liveness timeout).
    trust_ms: Vec<u64>,
}

impl Beliefs {
    pub(crate) fn new(trust_ms: &[u64]) -> Beliefs {
        Beliefs {
            by_task: BTreeMap::new(),
            trust_ms: trust_ms.to_vec(),
        }
    }

    /// A worker started, extended or dropped its belief in a lease. Returns a
    /// description of the overlap if two beliefs overlap beyond the drift bound.
    pub(crate) fn update(
        &mut self,
        now: Time,
        worker: usize,
        task: TaskId,
        held: Option<(Fence, Time)>,
        clocks: &[DriftClock],
    ) -> Option<String> {
        let list = self.by_task.entry(task).or_default();
        let kept = list
            .iter()
            .find(|b| b.worker == worker && held.is_some_and(|(f, _)| f == b.fence))
            .map(|b| b.since);
        list.retain(|b| b.worker != worker);
        // A lease learned of only after its deadline (a reply that waited out a pause)
        // is not believed at all.
        let held = held.filter(|(_, d)| clocks[worker].virtual_at(now, *d) > now);
        let Some((fence, local_deadline)) = held else {
            if list.is_empty() {
                self.by_task.remove(&task);
            }
            return None;
        };
        let new = Belief {
            worker,
            fence,
            local_deadline,
            since: kept.unwrap_or(now),
        };
        list.retain(|b| clocks[b.worker].virtual_at(now, b.local_deadline) > now);
        let found = list
            .iter()
            .filter_map(|b| overlap(now, b, &new, clocks, &self.trust_ms))
            .next_back();
        list.push(new);
        found
    }
}

/// Of two overlapping beliefs the one with the older fence is stale; it may outlive the
/// start of the newer one only by its own worker's drift bound.
fn overlap(
    now: Time,
    a: &Belief,
    b: &Belief,
    clocks: &[DriftClock],
    trust_ms: &[u64],
) -> Option<String> {
    let (old, new) = if a.fence.epoch < b.fence.epoch {
        (a, b)
    } else {
        (b, a)
    };
    let clock = &clocks[old.worker];
    let until = clock.virtual_at(now, old.local_deadline);
    // A slow clock strays furthest over the longest span, a fast one that stepped back
    // over the shortest: the bound is the worst of them.
    let bound = trust_ms
        .iter()
        .map(|span| clock.drift_bound(*span))
        .max()
        .unwrap_or(0);
    (until > new.since + bound || a.fence == b.fence).then(|| {
        format!(
            "worker #{} believes it holds {} until {until} ms while worker #{} holds {} since {} ms; drift bound {bound} ms",
            old.worker, old.fence, new.worker, new.fence, new.since
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fence(task: u64, attempt: u32) -> Fence {
        Fence {
            task: TaskId::new(task),
            attempt,
            epoch: attempt as u64,
        }
    }

    /// Worker 0's clock runs at half speed; worker 1 believes in fence `(1, 2)` from
    /// 1000 ms and renews it, or takes a newer fence, at 6000 ms. Then worker 0 learns of
    /// the older fence `(1, 1)`, believed until the renewal plus worker 0's drift bound.
    fn stale_belief_after(renewed: Fence) -> Option<String> {
        let clocks = [DriftClock::new(-500_000), DriftClock::new(0)];
        let mut b = Beliefs::new(&[10_000]);
        let task = TaskId::new(1);
        let first = b.update(1_000, 1, task, Some((fence(1, 2), 11_000)), &clocks);
        assert_eq!(first, None);
        let renewal = b.update(6_000, 1, task, Some((renewed, 16_000)), &clocks);
        assert_eq!(renewal, None);
        let until = 6_000 + clocks[0].drift_bound(10_000);
        let stale = Some((fence(1, 1), clocks[0].local(until)));
        b.update(6_500, 0, task, stale, &clocks)
    }

    #[test]
    fn a_renewed_belief_is_measured_from_when_it_began() {
        let report = stale_belief_after(fence(1, 2)).expect("past the bound from 1000 ms");
        assert!(report.contains("since 1000 ms"), "{report}");
    }

    #[test]
    fn a_belief_in_a_newer_fence_is_measured_from_when_that_fence_came() {
        assert_eq!(stale_belief_after(fence(1, 3)), None);
    }

    #[test]
    fn two_live_beliefs_beyond_the_drift_bound_are_flagged() {
        let clocks = [DriftClock::new(0), DriftClock::new(0)];
        let mut b = Beliefs::new(&[10_000]);
        let first = b.update(
            1_000,
            0,
            TaskId::new(1),
            Some((fence(1, 1), 11_000)),
            &clocks,
        );
        assert_eq!(first, None);
        let second = b.update(
            5_000,
            1,
            TaskId::new(1),
            Some((fence(1, 2), 15_000)),
            &clocks,
        );
        assert!(second.is_some());
    }

    #[test]
    fn a_fast_clock_that_stepped_back_is_bounded_over_its_shortest_span() {
        // Swarm seed 106832: a worker 5.8% fast, paused, its clock stepped back 15.4 s.
        // Its session (15 s liveness) then ends 28.7 s of virtual time after it began:
        // 13.7 s late, more than the 12.9 s a 30 s lease span allows, within the 13.7 s
        // the 15 s span allows.
        let mut fast = DriftClock::new(57_756);
        fast.step(-15_405);
        let clocks = [fast, DriftClock::new(0)];
        let session_end = clocks[0].local(34_801 + 28_745);
        let flagged = |spans: &[u64]| {
            let mut b = Beliefs::new(spans);
            let held = Some((fence(1, 1), session_end));
            b.update(49_000, 0, TaskId::new(1), held, &clocks);
            let newer = Some((fence(1, 2), 79_808));
            b.update(49_808, 1, TaskId::new(1), newer, &clocks)
                .is_some()
        };
        assert!(!flagged(&[30_000, 15_000]));
        assert!(
            flagged(&[30_000]),
            "the long span alone understates the bound"
        );
    }

    #[test]
    fn overlap_within_a_slow_clocks_bound_and_ended_beliefs_pass() {
        // Worker 0's clock is 20% slow: its 10 s lease reads as 12.5 s of virtual time.
        let clocks = [DriftClock::new(-200_000), DriftClock::new(0)];
        let mut b = Beliefs::new(&[10_000]);
        let mut flags = Vec::new();
        let mut step = |now, worker, held| {
            flags.extend(b.update(now, worker, TaskId::new(1), held, &clocks));
        };
        step(0, 0, Some((fence(1, 1), 10_000)));
        step(10_500, 1, Some((fence(1, 2), 20_500)));
        // A belief that was dropped does not count, nor does one learned of too late.
        step(11_000, 1, None);
        step(11_000, 0, Some((fence(1, 3), 8_000)));
        step(11_500, 1, Some((fence(1, 4), 21_500)));
        assert!(flags.is_empty(), "{flags:?}");
    }
}
