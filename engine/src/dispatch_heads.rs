//! What one dispatch knows of each lane's queue heads, and the choice of a head for a
//! worker. Whether a head is held back (its tenant's budget or cap, its token buckets)
//! and its tenant's share of running work do not depend on the worker asking, and
//! change only when a grant is made, so they are worked out once per lane and kept
//! until the next grant; each waiting worker then only checks its capabilities.

use crate::cover_memo::Learned;
use crate::ids::Time;
use crate::rate;
use crate::ready::{QueueKey, ReadyKey};
use crate::state::State;
use crate::state_workers::Worker;
use std::collections::BTreeMap;

/// One dispatch's view of the queue heads, and the earliest refill of a bucket that
/// held back a head some worker could have taken.
#[derive(Default)]
pub(crate) struct Pacing {
    pub wake: Option<Time>,
    lanes: BTreeMap<u32, LaneHeads>,
}

/// The heads of one lane that no budget or cap holds back.
struct LaneHeads {
    heads: Vec<Head>,
    /// How many heads no bucket holds back.
    open: usize,
    /// The earliest refill among the heads a bucket holds back.
    earliest_held: Option<Time>,
}

struct Head {
    q: QueueKey,
    key: ReadyKey,
    /// The tenant's running work over its weight, in millionths.
    share: u64,
    /// When its buckets refill, if they hold it back now.
    held: Option<Time>,
}

impl Pacing {
    /// A grant was made: it drew on the buckets (which can change any queue's answer
    /// through a tenant or lane bucket it shares), moved its tenant's share and budget,
    /// and took a head.
    pub(crate) fn granted(&mut self) {
        self.lanes.clear();
    }

    /// Whether any lane has a head some worker could be offered, or a held head whose
    /// refill could bring the wake-up earlier. When none has, every worker's offer
    /// would come back empty without touching anything, so the round can be skipped
    /// instead of asking each waiting worker in turn.
    pub(crate) fn any_offer(&mut self, state: &State) -> bool {
        let mut lane = state.ready.lane_from(0);
        while let Some(l) = lane {
            let heads = self
                .lanes
                .entry(l)
                .or_insert_with(|| LaneHeads::of(state, l));
            if !heads.settled(self.wake) {
                return true;
            }
            lane = l.checked_add(1).and_then(|n| state.ready.lane_from(n));
        }
        false
    }

    /// The head of `lane` that `worker` should be offered: among those it serves and
    /// nothing holds back, the tenant with the smallest share, then the oldest task.
    pub(crate) fn best_head(
        &mut self,
        state: &State,
        worker: &Worker,
        learned: &mut Learned,
        lane: u32,
    ) -> Option<(QueueKey, ReadyKey)> {
        let Pacing { wake, lanes } = self;
        let heads = lanes
            .entry(lane)
            .or_insert_with(|| LaneHeads::of(state, lane));
        if heads.settled(*wake) {
            return None;
        }
        let mut best: Option<&Head> = None;
        for h in &heads.heads {
            if !worker
                .cover_memo
                .covers(&worker.capabilities, &state.names, h.q.capset, learned)
            {
                continue;
            }
            if let Some(at) = h.held {
                if wake.is_none_or(|w| at < w) {
                    *wake = Some(at);
                }
                continue;
            }
            if best.is_none_or(|b| (h.share, h.key) < (b.share, b.key)) {
                best = Some(h);
            }
        }
        best.map(|h| (h.q, h.key))
    }
}

impl LaneHeads {
    /// Nothing to offer, and no held head could bring the wake-up `wake` earlier.
    fn settled(&self, wake: Option<Time>) -> bool {
        self.open == 0
            && self
                .earliest_held
                .is_none_or(|e| wake.is_some_and(|w| w <= e))
    }

    fn of(state: &State, lane: u32) -> LaneHeads {
        let mut heads = Vec::new();
        for (q, key) in state.ready.heads(lane) {
            let load = &state.tenants[q.tenant as usize];
            if load.budget_stopped || load.cap.is_some_and(|cap| load.active >= cap) {
                continue;
            }
            #[cfg(feature = "fault-injection")]
            if state.faults.starve_retries
                && state.tasks.get(&key.task).is_some_and(|t| t.attempt > 1)
            {
                continue;
            }
            // At most 2^32 * 10^6 < 2^52: no overflow, and a weight of 0 (refused by
            // `Config::validate`) counts as 1.
            let share = u64::from(load.active) * 1_000_000 / u64::from(load.weight.max(1));
            let held = rate::throttled(state, q).map(|(_, at)| at);
            heads.push(Head {
                q,
                key,
                share,
                held,
            });
        }
        LaneHeads {
            open: heads.iter().filter(|h| h.held.is_none()).count(),
            earliest_held: heads.iter().filter_map(|h| h.held).min(),
            heads,
        }
    }
}
