//! Offering grants: which waiting worker gets which ready task. Workers with credits
//! are served round-robin, one grant per round; a worker's lanes are served in turn;
//! within a lane the tenant with the smallest weighted share of running work goes
//! first, and within a tenant the highest priority, then the oldest task. A queue whose
//! token buckets (`rate`) are empty is passed over until they refill, and one whose
//! tenant's budget is exhausted until it resets.

use crate::dataflow;
use crate::ids::{GrantId, Time, WorkerId};
use crate::intern::{covers, CapSetId};
use crate::output::Effect;
use crate::queue;
use crate::rate;
use crate::ready::{QueueKey, ReadyKey};
use crate::state::{Grant, State, TaskState};
use crate::timers::Timer;
use std::collections::BTreeMap;

pub(crate) fn run(state: &mut State) {
    if !state.dispatch_dirty {
        return;
    }
    state.dispatch_dirty = false;
    let mut pacing = Pacing::default();
    rounds(state, &mut pacing);
    if let Some(at) = pacing.wake {
        rate::wake_at(state, at);
    }
}

/// What one dispatch learns of the token buckets: the earliest refill that held a
/// queue back, and each queue's answer from `rate::throttled`, kept until a grant
/// draws on the buckets (a draw can change any queue's answer through a tenant or lane
/// bucket it shares). Without it every worker of every round asked again.
#[derive(Default)]
struct Pacing {
    wake: Option<Time>,
    held: BTreeMap<QueueKey, Option<Time>>,
}

impl Pacing {
    /// When `q`'s tasks may next be granted, if its buckets hold them back now.
    fn held_until(&mut self, state: &State, q: QueueKey) -> Option<Time> {
        *self
            .held
            .entry(q)
            .or_insert_with(|| rate::throttled(state, q).map(|(_, at)| at))
    }

    /// A grant drew on the buckets.
    fn drawn(&mut self) {
        self.held.clear();
    }
}

/// Grants until no waiting worker can take a ready task; `pacing` collects the
/// earliest refill of a bucket that held a queue back.
fn rounds(state: &mut State, pacing: &mut Pacing) {
    // A round starts with a ready task, and every round but the last grants one, so
    // there are at most as many rounds as ready tasks.
    let mut rounds_left = state.ready.len();
    loop {
        if state.ready.len() == 0 || state.demand.is_empty() {
            return;
        }
        debug_assert!(
            rounds_left > 0,
            "dispatch ran a round after one granted nothing"
        );
        rounds_left = rounds_left.saturating_sub(1);
        let order = round_order(state);
        let mut granted = false;
        let mut last = None;
        for w in order {
            let mut served = false;
            let mut next_grant = state.next_grant;
            while grant_one(state, &w, pacing) {
                debug_assert!(state.next_grant > next_grant, "a grant without an offer");
                next_grant = state.next_grant;
                served = true;
                if state.demand.len() > 1 {
                    break;
                }
            }
            if served {
                granted = true;
                last = Some(w);
            }
        }
        if last.is_some() {
            state.dispatch_cursor = last;
        }
        if !granted {
            return;
        }
    }
}

/// Workers with demand, starting after the one served last.
fn round_order(state: &State) -> Vec<WorkerId> {
    let mut order: Vec<WorkerId> = match &state.dispatch_cursor {
        Some(c) => {
            let after = state
                .demand
                .range::<WorkerId, _>((std::ops::Bound::Excluded(c), std::ops::Bound::Unbounded));
            after
                .chain(state.demand.range(..=c.clone()))
                .cloned()
                .collect()
        }
        None => state.demand.iter().cloned().collect(),
    };
    order.dedup();
    order
}

/// Offers one task to `w` if it can take one and one fits. Returns whether it did.
fn grant_one(state: &mut State, w: &WorkerId, pacing: &mut Pacing) -> bool {
    let Some(worker) = state.workers.get(w) else {
        state.demand.remove(w);
        return false;
    };
    if !worker.can_take_work() {
        if worker.credits == 0 || worker.status != crate::state::WorkerStatus::Active {
            state.demand.remove(w);
        }
        return false;
    }
    if worker.lanes.is_empty() {
        return grant_any_lane(state, w, pacing);
    }
    let lanes = worker.lanes.len();
    for i in 0..lanes {
        let slot = (worker.lane_cursor as usize + i) % lanes;
        let lane = worker.lanes[slot];
        if let Some((q, key)) = best_head(state, w, lane, pacing) {
            if let Some(worker) = state.workers.get_mut(w) {
                worker.lane_cursor = ((slot + 1) % lanes) as u32;
            }
            offer(state, w, q, key);
            pacing.drawn();
            return true;
        }
    }
    false
}

/// For a worker serving every lane: the lanes with ready tasks in turn, from the one
/// after the lane it was last served (its cursor holds a lane id), wrapping around, so
/// one busy lane does not starve the others.
fn grant_any_lane(state: &mut State, w: &WorkerId, pacing: &mut Pacing) -> bool {
    let Some(cursor) = state.workers.get(w).map(|worker| worker.lane_cursor) else {
        return false;
    };
    let first = state
        .ready
        .lane_from(cursor)
        .or_else(|| state.ready.lane_from(0));
    let mut lane = first;
    // Each lane is looked at once at most.
    let mut lanes_left = state.names.lanes.slots();
    while let Some(l) = lane {
        debug_assert!(lanes_left > 0, "a lane looked at twice in one offer");
        lanes_left = lanes_left.saturating_sub(1);
        if let Some((q, key)) = best_head(state, w, l, pacing) {
            if let Some(worker) = state.workers.get_mut(w) {
                worker.lane_cursor = l.wrapping_add(1);
            }
            offer(state, w, q, key);
            pacing.drawn();
            return true;
        }
        let next = l.checked_add(1).and_then(|n| state.ready.lane_from(n));
        lane = next
            .or_else(|| state.ready.lane_from(0))
            .filter(|n| Some(*n) != first);
    }
    false
}

fn best_head(
    state: &State,
    w: &WorkerId,
    lane: u32,
    pacing: &mut Pacing,
) -> Option<(QueueKey, ReadyKey)> {
    let worker = state.workers.get(w)?;
    let mut best: Option<(u64, ReadyKey, QueueKey)> = None;
    for (q, key) in state.ready.heads(lane) {
        let load = &state.tenants[q.tenant as usize];
        if load.budget_stopped || load.cap.is_some_and(|cap| load.active >= cap) {
            continue;
        }
        if q.capset != CapSetId::ANY && !covers(&worker.capabilities, state.names.caps(q.capset)) {
            continue;
        }
        #[cfg(feature = "fault-injection")]
        if state.faults.starve_retries && state.tasks.get(&key.task).is_some_and(|t| t.attempt > 1)
        {
            continue;
        }
        if let Some(at) = pacing.held_until(state, q) {
            if pacing.wake.is_none_or(|w| at < w) {
                pacing.wake = Some(at);
            }
            continue;
        }
        // At most 2^32 * 10^6 < 2^52: no overflow, and a weight of 0 (refused by
        // `Config::validate`) counts as 1.
        let share = u64::from(load.active) * 1_000_000 / u64::from(load.weight.max(1));
        if best.is_none_or(|(bs, bk, _)| (share, key) < (bs, bk)) {
            best = Some((share, key, q));
        }
    }
    best.map(|(_, k, q)| (q, k))
}

fn offer(state: &mut State, w: &WorkerId, q: QueueKey, key: ReadyKey) {
    state.ready.remove(q, key);
    rate::take(state, q);
    let Some(task) = state.tasks.get_mut(&key.task) else {
        return;
    };
    let grant = GrantId(state.next_grant);
    state.next_grant += 1;
    let expires_at = state.now.saturating_add(state.config.grant_ttl_ms);
    task.state = TaskState::Offered { grant };
    let (job, attempt, payload) = (task.job, task.attempt, task.payload.clone());
    let task_key = task.key.clone();
    let signal = dataflow::signal_of(task);
    #[cfg(feature = "fault-injection")]
    let signal = signal.filter(|_| !(state.faults.signal_first_attempt_only && attempt > 1));
    let inputs = state
        .tasks
        .get(&key.task)
        .map(|t| dataflow::inputs_of(state, t))
        .unwrap_or_default();
    // The ready index entry is gone; the job's count moves from queued to active.
    queue::take_slot(state, q, job);
    crate::budget_charge::granted(state, job);
    let Some(worker) = state.workers.get_mut(w) else {
        return;
    };
    worker.grants.insert(grant);
    worker.credits -= 1;
    if worker.credits == 0 {
        state.demand.remove(w);
    }
    state.grants.insert(
        grant,
        Grant {
            id: grant,
            task: key.task,
            worker: w.clone(),
            instance: worker.instance,
            attempt,
            offered_at: state.now,
            expires_at,
            accepted: None,
        },
    );
    state.timers.arm(expires_at, Timer::GrantExpiry(grant));
    state.effects.push(Effect::GrantOffered {
        worker: w.clone(),
        grant,
        job,
        task: key.task,
        key: task_key,
        attempt,
        payload,
        inputs,
        signal,
        expires_at,
    });
}
