//! Offering grants: which waiting worker gets which ready task. Workers with credits
//! are served round-robin, one grant per round; a worker's lanes are served in turn;
//! within a lane the tenant with the smallest weighted share of running work goes
//! first, and within a tenant the highest priority, then the oldest task. A queue whose
//! token buckets (`rate`) are empty is passed over until they refill, and one whose
//! tenant's budget is exhausted until it resets.

use crate::cover_memo::Learned;
use crate::dataflow;
use crate::dispatch_heads::Pacing;
use crate::ids::{GrantId, WorkerId};
use crate::output::Effect;
use crate::queue;
use crate::rate;
use crate::ready::{QueueKey, ReadyKey};
use crate::state::{Grant, State, TaskState, Worker};
use crate::timers::Timer;

pub(crate) fn run(state: &mut State) {
    let mut only = std::mem::take(&mut state.dispatch_workers);
    if state.dispatch_dirty {
        only.clear();
    } else if only.is_empty() {
        return;
    }
    state.dispatch_dirty = false;
    only.sort_unstable();
    only.dedup();
    let mut pacing = Pacing::default();
    rounds(state, &mut pacing, &only);
    if let Some(at) = pacing.wake {
        rate::wake_at(state, at);
    }
}

/// Grants until no waiting worker can take a ready task; `pacing` collects the
/// earliest refill of a bucket that held a queue back. With `only` not empty, the
/// rounds ask only those workers: the caller knows no other could take one.
fn rounds(state: &mut State, pacing: &mut Pacing, only: &[WorkerId]) {
    // A round starts with a ready task, and every round but the last grants one, so
    // there are at most as many rounds as ready tasks.
    let mut rounds_left = state.ready.len();
    loop {
        if state.ready.len() == 0 || state.demand.is_empty() || !pacing.any_offer(state) {
            return;
        }
        debug_assert!(
            rounds_left > 0,
            "dispatch ran a round after one granted nothing"
        );
        rounds_left = rounds_left.saturating_sub(1);
        let order = round_order(state, only);
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

/// Workers with demand (those in `only`, when it is not empty), starting after the one
/// served last.
fn round_order(state: &State, only: &[WorkerId]) -> Vec<WorkerId> {
    let cursor = state.dispatch_cursor.as_ref();
    if !only.is_empty() {
        // `only` is sorted: those after the cursor, then the rest, as they wait.
        let split = cursor.map_or(0, |c| only.partition_point(|w| w <= c));
        let (before, after) = only.split_at(split);
        return after
            .iter()
            .chain(before)
            .filter(|w| state.demand.contains(*w))
            .cloned()
            .collect();
    }
    match cursor {
        Some(c) => {
            let after = state
                .demand
                .range::<WorkerId, _>((std::ops::Bound::Excluded(c), std::ops::Bound::Unbounded));
            after.chain(state.demand.range(..=c)).cloned().collect()
        }
        None => state.demand.iter().cloned().collect(),
    }
}

/// A waiting worker that could be offered a ready task now, if any. None is left once
/// `run` returns: it stops only after a round in which no waiting worker got one.
pub(crate) fn unserved(state: &State) -> Option<&WorkerId> {
    let mut pacing = Pacing::default();
    state.demand.iter().find(|w| {
        state.workers.get(*w).is_some_and(|worker| {
            let mut learned = Learned::default();
            worker.can_take_work() && pick(state, worker, &mut learned, &mut pacing).is_some()
        })
    })
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
    let mut learned = Learned::default();
    let found = pick(state, worker, &mut learned, pacing);
    if found.is_none() && learned.is_empty() {
        return false;
    }
    let Some(worker) = state.workers.get_mut(w) else {
        return false;
    };
    worker.cover_memo.learn(learned);
    let Some((q, key, cursor)) = found else {
        return false;
    };
    worker.lane_cursor = cursor;
    offer(state, w, q, key);
    pacing.granted();
    true
}

/// The task `worker` should be offered, and its lane cursor after the offer. A worker's
/// lanes are served in turn from its cursor (a slot in its lanes); a worker serving
/// every lane walks the lanes with ready tasks from the one after the lane it was last
/// served (its cursor holds a lane id), wrapping around, so one busy lane does not
/// starve the others.
fn pick(
    state: &State,
    worker: &Worker,
    learned: &mut Learned,
    pacing: &mut Pacing,
) -> Option<(QueueKey, ReadyKey, u32)> {
    let lanes = worker.lanes.len();
    if lanes > 0 {
        return (0..lanes).find_map(|i| {
            let slot = (worker.lane_cursor as usize + i) % lanes;
            let (q, key) = pacing.best_head(state, worker, learned, worker.lanes[slot])?;
            Some((q, key, ((slot + 1) % lanes) as u32))
        });
    }
    let first = state
        .ready
        .lane_from(worker.lane_cursor)
        .or_else(|| state.ready.lane_from(0));
    let mut lane = first;
    // Each lane is looked at once at most.
    let mut lanes_left = state.names.lanes.slots();
    while let Some(l) = lane {
        debug_assert!(lanes_left > 0, "a lane looked at twice in one offer");
        lanes_left = lanes_left.saturating_sub(1);
        if let Some((q, key)) = pacing.best_head(state, worker, learned, l) {
            return Some((q, key, l.wrapping_add(1)));
        }
        let next = l.checked_add(1).and_then(|n| state.ready.lane_from(n));
        lane = next
            .or_else(|| state.ready.lane_from(0))
            .filter(|n| Some(*n) != first);
    }
    None
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
    let (inputs, streams) = state
        .tasks
        .get(&key.task)
        .map(|t| {
            (
                dataflow::inputs_of(state, t),
                dataflow::streams_of(state, t),
            )
        })
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
        streams,
        expires_at,
    });
}
