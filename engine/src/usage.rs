//! A worker's usage report: resolved to a budget of the attempt's job or tenant,
//! counted once per dedup key, and fenced like every other command on an attempt.

use crate::budget_charge::charge;
use crate::budget_spec::{ATTEMPTS, ATTEMPT_MS, MAX_USAGE_REPORTS};
use crate::budget_use::{resolve, spec_of};
use crate::ids::{Fence, InstanceId, WorkerId};
use crate::output::Accepted;
use crate::reject::Rejection;
use crate::state::State;
use crate::validate::check_command_name;

type Reply = Result<Accepted, Rejection>;

/// What a `ReportUsage` carries besides its fence.
pub(crate) struct Report {
    pub budget: String,
    pub dimension: String,
    pub amount: u64,
    pub dedup_key: String,
}

pub(crate) fn report(
    state: &mut State,
    w: &WorkerId,
    inst: InstanceId,
    fence: Fence,
    r: Report,
) -> Reply {
    let max = state.config.limits.max_name_len;
    check_command_name("budget", &r.budget, max)?;
    check_command_name("dimension", &r.dimension, max)?;
    check_command_name("dedup key", &r.dedup_key, max)?;
    let job = state
        .tasks
        .get(&fence.task)
        .ok_or(Rejection::UnknownTask { task: fence.task })?
        .job;
    let key = resolve(state, job, &r.budget).ok_or_else(|| Rejection::UnknownBudget {
        budget: r.budget.clone(),
    })?;
    if r.dimension == ATTEMPTS || r.dimension == ATTEMPT_MS {
        return Err(Rejection::InvalidUsage {
            problem: format!("{} is counted by the engine, not reported", r.dimension),
        });
    }
    if !spec_of(state, &key).is_some_and(|s| s.limits.contains_key(&r.dimension)) {
        return Err(Rejection::InvalidUsage {
            problem: format!(
                "budget {:?} of {} does not limit dimension {:?}",
                r.budget, key.0, r.dimension
            ),
        });
    }
    let used = |state: &State| {
        state
            .budgets
            .get(&key)
            .and_then(|u| u.used.get(&r.dimension).copied())
            .unwrap_or(0)
    };
    let recorded = |state: &State, duplicate| Accepted::UsageRecorded {
        owner: key.0.clone(),
        budget: r.budget.clone(),
        dimension: r.dimension.clone(),
        used: used(state),
        duplicate,
    };
    let seen = state
        .budgets
        .get(&key)
        .is_some_and(|u| u.reports.contains(&r.dedup_key));
    if seen && !recount(state, w, inst, fence) {
        return Ok(recorded(state, true));
    }
    crate::lease::check_fence(state, w, inst, fence)?;
    if state
        .budgets
        .get(&key)
        .is_some_and(|u| u.reports.len() >= MAX_USAGE_REPORTS)
    {
        return Err(Rejection::LimitReached {
            limit: "max_usage_reports_per_budget".into(),
            value: MAX_USAGE_REPORTS as u64,
        });
    }
    charge(state, &key, &r.dimension, r.amount);
    if let Some(u) = state.budgets.get_mut(&key) {
        u.reports.insert(r.dedup_key.clone());
    }
    Ok(recorded(state, false))
}

/// Whether a counted report is counted again: only under [`crate::Faults::recount_usage`],
/// and only while its attempt runs.
fn recount(state: &State, w: &WorkerId, inst: InstanceId, fence: Fence) -> bool {
    #[cfg(feature = "fault-injection")]
    if state.faults.recount_usage {
        return crate::lease::check_fence(state, w, inst, fence).is_ok();
    }
    let _ = (state, w, inst, fence);
    false
}
