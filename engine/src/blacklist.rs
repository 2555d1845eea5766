//! A worker whose attempts keep failing gets no new grants for a cooldown. Its running
//! leases are untouched: they complete, fail or expire as usual.

use crate::ids::WorkerId;
use crate::output::Effect;
use crate::state::State;
use crate::timers::Timer;

pub(crate) fn record_failure(s: &mut State, w: &WorkerId) {
    let now = s.now;
    let policy = s.config.blacklist;
    if policy.threshold == 0 {
        return;
    }
    let Some(worker) = s.workers.get_mut(w) else {
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
    worker.blacklisted_from_grant = Some(crate::ids::GrantId(s.next_grant));
    s.timers.arm(until, Timer::BlacklistEnd(w.clone()));
    s.fx.push(Effect::WorkerBlacklisted {
        worker: w.clone(),
        until,
    });
}

pub(crate) fn readmit(s: &mut State, w: &WorkerId, at: crate::ids::Time) {
    let Some(worker) = s.workers.get_mut(w) else {
        return;
    };
    if worker.blacklisted_until != Some(at) {
        return;
    }
    worker.blacklisted_until = None;
    worker.blacklisted_from_grant = None;
    s.dispatch_dirty = true;
    s.fx.push(Effect::WorkerReadmitted { worker: w.clone() });
}
