//! Counting usage against budgets: the engine counts `attempts` (at each grant) and
//! `attempt_ms` (when an attempt ends), `usage` counts what workers report. A soft
//! limit reached raises one effect; a hard limit reached stops grants: a job's ready
//! tasks park and its end is armed, a tenant is marked stopped and, under `Revoke`,
//! its revocation is armed. What the timers then do is in `budgets`.

use crate::budget_spec::{BudgetOwner, LimitKind, OnHard, ATTEMPTS, ATTEMPT_MS};
use crate::budget_use::{budgets_of, period_end, reset_timer, spec_of};
use crate::ids::JobId;
use crate::output::Effect;
use crate::state::{BudgetKey, BudgetStop, State};
use crate::timers::Timer;

/// A grant was made for a task of `job`: one attempt against every budget limiting
/// attempts.
pub(crate) fn granted(state: &mut State, job: JobId) {
    charge_all(state, job, ATTEMPTS, 1);
}

/// An attempt of a task of `job` ended after holding its lease for `ms`.
pub(crate) fn attempt_ended(state: &mut State, job: JobId, ms: u64) {
    charge_all(state, job, ATTEMPT_MS, ms);
}

fn charge_all(state: &mut State, job: JobId, dimension: &str, amount: u64) {
    let has_own = state.jobs.get(&job).is_some_and(|j| !j.budgets.is_empty());
    if !has_own && state.config.budgets.is_empty() {
        return;
    }
    for key in budgets_of(state, job) {
        if spec_of(state, &key).is_some_and(|s| s.limits.contains_key(dimension)) {
            charge(state, &key, dimension, amount);
        }
    }
}

/// Adds `amount` to a limited dimension of the budget, raising the soft-limit effect
/// and stopping grants when a limit is first reached.
pub(crate) fn charge(state: &mut State, key: &BudgetKey, dimension: &str, amount: u64) {
    let Some(spec) = spec_of(state, key) else {
        return;
    };
    let Some(limit) = spec.limits.get(dimension).copied() else {
        return;
    };
    let (period, policy) = (spec.reset_every_ms, spec.on_hard);
    let now = state.now;
    let entry = match state.budgets.get_mut(key) {
        Some(entry) => entry,
        None => state.budgets.entry(key.clone()).or_default(),
    };
    let used = match entry.used.get_mut(dimension) {
        Some(used) => used,
        None => entry.used.entry(dimension.to_string()).or_default(),
    };
    *used = used.saturating_add(amount);
    let used = *used;
    let mut reached = Vec::new();
    if let Some(soft) = limit.soft.filter(|s| used >= *s) {
        if !entry.warned.contains(dimension) {
            entry.warned.insert(dimension.to_string());
            reached.push((LimitKind::Soft, soft));
        }
    }
    let stop = limit
        .hard
        .filter(|h| used >= *h && entry.exhausted.is_none());
    if let Some(hard) = stop {
        entry.exhausted = Some(dimension.to_string());
        reached.push((LimitKind::Hard, hard));
    }
    if let (None, Some(period)) = (entry.resets_at, period) {
        let at = period_end(now, period);
        entry.resets_at = Some(at);
        state.timers.arm(at, reset_timer(key));
    }
    for (kind, limit) in reached {
        state.effects.push(Effect::BudgetLimitReached {
            owner: key.0.clone(),
            budget: key.1.clone(),
            dimension: dimension.to_string(),
            kind,
            used,
            limit,
        });
    }
    if stop.is_some() {
        // The attempts that reached an attempts limit are the ones it allows.
        let on_hard = match dimension {
            ATTEMPTS => OnHard::Finish,
            _ => policy,
        };
        exhausted(state, key, dimension, on_hard);
    }
}

/// A hard limit was reached: stop what the budget governs.
fn exhausted(state: &mut State, key: &BudgetKey, dimension: &str, on_hard: OnHard) {
    match &key.0 {
        BudgetOwner::Job(job) => stop_job(state, *job, key, dimension, on_hard),
        BudgetOwner::Tenant(tenant) => {
            if let Some(id) = state.names.tenants.get(tenant) {
                state.tenants[id as usize].budget_stopped = true;
            }
            if on_hard == OnHard::Revoke {
                state
                    .timers
                    .arm(state.now, Timer::BudgetRevoke(tenant.clone()));
            }
        }
    }
}

/// Parks the job's queued tasks and arms the end of the job: now under `Revoke`, or
/// once its last active task lets go of its slot.
fn stop_job(state: &mut State, job: JobId, key: &BudgetKey, dimension: &str, on_hard: OnHard) {
    let now = state.now;
    let Some(j) = state.jobs.get_mut(&job) else {
        return;
    };
    // A job being ended (its attempt ends count while it is) or already stopped keeps
    // what it has.
    if j.forced.is_some() || j.budget_stop.is_some() {
        return;
    }
    let end_at = (on_hard == OnHard::Revoke || j.active == 0).then_some(now);
    j.budget_stop = Some(BudgetStop {
        budget: key.clone(),
        dimension: dimension.to_string(),
        end_at,
    });
    if let Some(at) = end_at {
        state.timers.arm(at, Timer::BudgetEnd(job));
    }
    crate::queue::park_queued(state, job);
}
