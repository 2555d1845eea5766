//! Counting usage against budgets and acting on their limits. A task counts against
//! its job's budgets and its tenant's. The engine counts `attempts` (at each grant)
//! and `attempt_ms` (when an attempt ends); workers report other dimensions, each
//! report once per dedup key. A soft limit reached raises one effect; a hard limit
//! reached stops grants (a job: its ready tasks are parked and the job ends, failed,
//! once nothing of it runs, or at once under `OnHard::Revoke`; a tenant: dispatch
//! passes its queues over until the budget resets).

use crate::budget_spec::{BudgetSpec, OnHard, ATTEMPTS, ATTEMPT_MS};
use crate::ids::{JobId, Time};
use crate::output::{Effect, EndReason, JobOutcome};
use crate::state::{BudgetKey, BudgetStop, BudgetUse, State, TaskState};
use crate::timers::Timer;
use serde::{Deserialize, Serialize};

/// Whose budget it is.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum BudgetOwner {
    /// Declared in the job's spec.
    Job(JobId),
    /// Configured for the tenant (`Config::budgets`).
    Tenant(String),
}

impl std::fmt::Display for BudgetOwner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BudgetOwner::Job(j) => write!(f, "{j}"),
            BudgetOwner::Tenant(t) => write!(f, "tenant {t}"),
        }
    }
}

/// Which of a dimension's limits was reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LimitKind {
    /// A warning.
    Soft,
    /// Grants stop.
    Hard,
}

/// The spec of the budget `key`, if it is still declared.
pub(crate) fn spec_of<'a>(state: &'a State, key: &BudgetKey) -> Option<&'a BudgetSpec> {
    match &key.0 {
        BudgetOwner::Job(j) => state.jobs.get(j)?.budgets.get(&key.1),
        BudgetOwner::Tenant(t) => state.config.budgets.get(t)?.get(&key.1),
    }
}

/// The budgets a job's tasks count against: its own, then its tenant's.
fn budgets_of(state: &State, job: JobId) -> Vec<BudgetKey> {
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

/// The end of the period of length `period` (counted from time 0) that holds `now`.
fn period_end(now: Time, period: u64) -> Time {
    (now / period).saturating_add(1).saturating_mul(period)
}

fn reset_timer(key: &BudgetKey) -> Timer {
    match &key.0 {
        BudgetOwner::Tenant(t) => Timer::BudgetReset(t.clone(), key.1.clone()),
        // Job budgets do not reset; `BudgetSpec::check` refuses a period on one.
        BudgetOwner::Job(j) => Timer::BudgetEnd(*j),
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

/// A stopped job's last slot was let go: its end is armed for now.
pub(crate) fn slots_released(state: &mut State, job: JobId) {
    let now = state.now;
    let Some(stop) = state
        .jobs
        .get_mut(&job)
        .and_then(|j| j.budget_stop.as_mut())
    else {
        return;
    };
    if stop.end_at.is_none() {
        stop.end_at = Some(now);
        state.timers.arm(now, Timer::BudgetEnd(job));
    }
}

/// The end of a stopped job is due: it ends, failed, its unfinished tasks cancelled.
pub(crate) fn end_due(state: &mut State, job: JobId, at: Time) {
    let due = state.jobs.get(&job).is_some_and(|j| {
        j.end.is_none() && j.budget_stop.as_ref().is_some_and(|s| s.end_at == Some(at))
    });
    if due {
        crate::job::terminate(state, job, JobOutcome::Failed, EndReason::BudgetExhausted);
    }
}

/// A stopped tenant budget revokes its tenant's attempts: grants withdrawn and leases
/// revoked, their tasks requeued (counted as losses) to wait for the reset, a revoked
/// lease's task not before the lease would have lapsed.
pub(crate) fn revoke_due(state: &mut State, tenant: &str) {
    let Some(id) = state.names.tenants.get(tenant) else {
        return;
    };
    if !state.tenants[id as usize].budget_stopped {
        return;
    }
    let holders: Vec<_> = state
        .tasks
        .iter()
        .filter(|(_, t)| t.tenant == id)
        .filter_map(|(tid, t)| match &t.state {
            TaskState::Offered { grant } => Some((tid, Some(*grant))),
            TaskState::Running(_) => Some((tid, None)),
            _ => None,
        })
        .collect();
    for (tid, grant) in holders {
        match grant {
            Some(g) => crate::lease::withdraw(state, g, EndReason::BudgetExhausted, true),
            None => {
                let lease = crate::lease::revoke(state, tid, EndReason::BudgetExhausted);
                let ready_at = lease.map_or(state.now, |l| l.expires_at);
                let reason = EndReason::BudgetExhausted;
                crate::lease::requeue_lost_at(state, tid, reason, ready_at);
            }
        }
    }
}

/// A tenant budget's period ended: its usage starts again from zero.
pub(crate) fn reset_due(state: &mut State, tenant: &str, budget: &str, at: Time) {
    let key = (BudgetOwner::Tenant(tenant.to_string()), budget.to_string());
    if state
        .budgets
        .get(&key)
        .is_some_and(|u| u.resets_at == Some(at))
    {
        state.budgets.remove(&key);
        restop_tenant(state, tenant);
    }
}

/// Whether any budget of the tenant is exhausted.
pub(crate) fn tenant_exhausted(state: &State, tenant: &str) -> bool {
    let owner = BudgetOwner::Tenant(tenant.to_string());
    state
        .budgets
        .range((owner.clone(), String::new())..)
        .take_while(|((o, _), _)| *o == owner)
        .any(|(_, u)| u.exhausted.is_some())
}

/// Recomputes whether the tenant is stopped, waking dispatch when it no longer is.
fn restop_tenant(state: &mut State, tenant: &str) {
    let stopped = tenant_exhausted(state, tenant);
    if let Some(id) = state.names.tenants.get(tenant) {
        let load = &mut state.tenants[id as usize];
        if load.budget_stopped && !stopped {
            state.dispatch_dirty = true;
        }
        load.budget_stopped = stopped;
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

/// After a configuration change: usage of tenant budgets no longer configured is
/// dropped; the rest is judged against the new limits and period.
pub(crate) fn reconfigured(state: &mut State) {
    let now = state.now;
    let keys: Vec<BudgetKey> = state
        .budgets
        .keys()
        .filter(|(o, _)| matches!(o, BudgetOwner::Tenant(_)))
        .cloned()
        .collect();
    let mut tenants = std::collections::BTreeSet::new();
    for key in keys {
        let spec = spec_of(state, &key).cloned();
        let Some(mut u) = state.budgets.remove(&key) else {
            continue;
        };
        if let Some(at) = u.resets_at.take() {
            state.timers.disarm(at, reset_timer(&key));
        }
        if let BudgetOwner::Tenant(t) = &key.0 {
            tenants.insert(t.clone());
        }
        let Some(spec) = spec else {
            continue;
        };
        judge(&mut u, &spec);
        if let Some(period) = spec.reset_every_ms {
            let at = period_end(now, period);
            u.resets_at = Some(at);
            state.timers.arm(at, reset_timer(&key));
        }
        state.budgets.insert(key, u);
    }
    let held: Vec<String> = state
        .config
        .budgets
        .keys()
        .chain(tenants.iter())
        .cloned()
        .collect();
    for t in held {
        restop_tenant(state, &t);
    }
}

/// Re-derives which limits a use has reached under `spec`; dimensions no longer
/// limited are dropped.
fn judge(u: &mut BudgetUse, spec: &BudgetSpec) {
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

/// Why a job's ready tasks get no grant for a budget, if they do not: its own stop, or
/// its tenant's first exhausted budget.
pub(crate) fn stopping(state: &State, job: JobId) -> Option<crate::query::TaskStatus> {
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
    Some(crate::query::TaskStatus::BudgetStopped {
        owner: key.0,
        budget: key.1,
        dimension,
    })
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
