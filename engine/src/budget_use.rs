//! What budgets have counted, read from the state: which budgets a job counts
//! against, what holds a job back, the notes status shows, and whether a use agrees
//! with its spec. Nothing here acts on a limit; `budget_charge` counts and stops,
//! `budgets` ends, revokes and resets.

use crate::budget_spec::{BudgetOwner, BudgetSpec};
use crate::ids::{JobId, Time};
use crate::state::{BudgetKey, BudgetUse, State};
use crate::timers::Timer;

/// The spec of the budget `key`, if it is still declared.
pub(crate) fn spec_of<'a>(state: &'a State, key: &BudgetKey) -> Option<&'a BudgetSpec> {
    match &key.0 {
        BudgetOwner::Job(j) => state.jobs.get(j)?.budgets.get(&key.1),
        BudgetOwner::Tenant(t) => state.config.budgets.get(t)?.get(&key.1),
    }
}

/// The budgets a job's tasks count against: its own, then its tenant's.
pub(crate) fn budgets_of(state: &State, job: JobId) -> Vec<BudgetKey> {
    let Some(j) = state.jobs.get(&job) else {
        return Vec::new();
    };
    let mut keys: Vec<BudgetKey> = j
        .budgets
        .keys()
        .map(|n| (BudgetOwner::Job(job), n.clone()))
        .collect();
    if !state.config.budgets.is_empty() {
        let tenant = state.names.tenants.name(j.tenant);
        if let Some(set) = state.config.budgets.get(tenant) {
            let owner = BudgetOwner::Tenant(tenant.to_string());
            keys.extend(set.keys().map(|n| (owner.clone(), n.clone())));
        }
    }
    keys
}

/// The budget a usage report for `job` names: the job's own of that name, else its
/// tenant's.
pub(crate) fn resolve(state: &State, job: JobId, name: &str) -> Option<BudgetKey> {
    budgets_of(state, job).into_iter().find(|(_, n)| n == name)
}

/// The end of the period of length `period` (counted from time 0) that holds `now`.
pub(crate) fn period_end(now: Time, period: u64) -> Time {
    (now / period).saturating_add(1).saturating_mul(period)
}

pub(crate) fn reset_timer(key: &BudgetKey) -> Timer {
    match &key.0 {
        BudgetOwner::Tenant(t) => Timer::BudgetReset(t.clone(), key.1.clone()),
        // Job budgets do not reset; `BudgetSpec::check` refuses a period on one.
        BudgetOwner::Job(j) => Timer::BudgetEnd(*j),
    }
}

/// A job is forgotten: its budgets' usage goes with it.
pub(crate) fn forget_job(state: &mut State, job: JobId) {
    let owner = BudgetOwner::Job(job);
    let keys: Vec<BudgetKey> = state
        .budgets
        .range((owner.clone(), String::new())..)
        .take_while(|((o, _), _)| *o == owner)
        .map(|(k, _)| k.clone())
        .collect();
    for k in keys {
        state.budgets.remove(&k);
    }
}

/// Re-derives which limits a use has reached under `spec`; dimensions no longer
/// limited are dropped.
pub(crate) fn judge(u: &mut BudgetUse, spec: &BudgetSpec) {
    u.used.retain(|d, _| spec.limits.contains_key(d));
    u.warned.retain(|d| {
        spec.limits
            .get(d)
            .and_then(|l| l.soft)
            .is_some_and(|s| u.used.get(d).is_some_and(|v| *v >= s))
    });
    u.exhausted = u
        .used
        .iter()
        .find(|(d, v)| {
            spec.limits
                .get(*d)
                .and_then(|l| l.hard)
                .is_some_and(|h| **v >= h)
        })
        .map(|(d, _)| d.clone());
}

/// Whether a use is consistent with its spec: only limited dimensions, warnings only
/// for reached soft limits, exhausted exactly when a hard limit is reached.
pub(crate) fn consistent(u: &BudgetUse, spec: &BudgetSpec) -> bool {
    let mut judged = u.clone();
    let exhausted = u.exhausted.clone();
    judge(&mut judged, spec);
    judged.used == u.used
        && judged.warned == u.warned
        && exhausted.is_some() == judged.exhausted.is_some()
        && exhausted.as_ref().is_none_or(|d| {
            spec.limits
                .get(d)
                .and_then(|l| l.hard)
                .is_some_and(|h| u.used.get(d).is_some_and(|v| *v >= h))
        })
}

/// The budget and dimension that hold a job's ready tasks back, if one does: its own
/// stop, or its tenant's first exhausted budget.
pub(crate) fn stopping(state: &State, job: JobId) -> Option<(BudgetKey, String)> {
    let j = state.jobs.get(&job)?;
    let (key, dimension) = match &j.budget_stop {
        Some(stop) => (stop.budget.clone(), stop.dimension.clone()),
        None => {
            if !state.tenants.get(j.tenant as usize)?.budget_stopped {
                return None;
            }
            let owner = BudgetOwner::Tenant(state.names.tenants.name(j.tenant).to_string());
            state
                .budgets
                .range((owner.clone(), String::new())..)
                .take_while(|((o, _), _)| *o == owner)
                .find_map(|(k, u)| Some((k.clone(), u.exhausted.clone()?)))?
        }
    };
    Some((key, dimension))
}

/// The limits reached by the budgets a job counts against, in words.
pub(crate) fn notes(state: &State, job: JobId) -> Vec<String> {
    let live = state.jobs.get(&job).is_some_and(|j| j.end.is_none());
    let mut out = Vec::new();
    for key in budgets_of(state, job) {
        if matches!(key.0, BudgetOwner::Tenant(_)) && !live {
            continue;
        }
        let (Some(u), Some(spec)) = (state.budgets.get(&key), spec_of(state, &key)) else {
            continue;
        };
        let whose = match &key.0 {
            BudgetOwner::Job(_) => format!("budget {}", key.1),
            BudgetOwner::Tenant(t) => format!("tenant {t}'s budget {}", key.1),
        };
        for (dim, used) in &u.used {
            let limit = spec.limits.get(dim).copied().unwrap_or_default();
            if u.exhausted.as_ref() == Some(dim) {
                let hard = limit.hard.unwrap_or(0);
                out.push(format!(
                    "{whose}: {dim} {used} reached its hard limit {hard}; budget-stopped, no new grants"
                ));
            } else if u.warned.contains(dim) {
                let soft = limit.soft.unwrap_or(0);
                out.push(format!(
                    "{whose}: {dim} {used} reached its soft limit {soft} (warning)"
                ));
            }
        }
    }
    out
}
