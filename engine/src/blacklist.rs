//! A worker whose attempts keep failing gets no new grants for a cooldown. Its running
//! leases are untouched: they complete, fail or expire as usual.

use crate::ids::WorkerId;
use crate::output::Effect;
use crate::state::State;
use crate::timers::Timer;

pub(crate) fn record_failure(state: &mut State, w: &WorkerId) {
    let now = state.now;
    let policy = state.config.blacklist;
    if policy.threshold == 0 {
        return;
    }
    let Some(worker) = state.workers.get_mut(w) else {
        return;
    };
    if worker.blacklisted_until.is_some() {
        return;
    }
    worker.recent_failures.push_back(now);
    while worker
        .recent_failures
        .front()
        .is_some_and(|&t| t.saturating_add(policy.window_ms) <= now)
    {
        worker.recent_failures.pop_front();
    }
    if worker.recent_failures.len() < policy.threshold as usize {
        return;
    }
    let until = now.saturating_add(policy.cooldown_ms);
    worker.recent_failures.clear();
    worker.blacklisted_until = Some(until);
    worker.blacklisted_from_grant = Some(crate::ids::GrantId(state.next_grant));
    state.timers.arm(until, Timer::BlacklistEnd(w.clone()));
    state.effects.push(Effect::WorkerBlacklisted {
        worker: w.clone(),
        until,
    });
}

pub(crate) fn readmit(state: &mut State, w: &WorkerId, at: crate::ids::Time) {
    let Some(worker) = state.workers.get_mut(w) else {
        return;
    };
    if worker.blacklisted_until != Some(at) {
        return;
    }
    worker.blacklisted_until = None;
    worker.blacklisted_from_grant = None;
    state.dispatch_workers.push(w.clone());
    state
        .effects
        .push(Effect::WorkerReadmitted { worker: w.clone() });
}
