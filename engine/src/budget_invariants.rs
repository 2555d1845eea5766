//! The budgets' invariants: every counted use belongs to a declared budget and agrees
//! with its limits, reset timers are armed where the records say, stopped tenants and
//! jobs are exactly those an exhausted budget stops.

use crate::budget_spec::{BudgetOwner, MAX_USAGE_REPORTS};
use crate::budget_use::{consistent, spec_of};
use crate::state::{ReadyPlace, State, TaskState};
use crate::timers::Timer;
use crate::violation::Violation;

pub(super) fn check_budgets(state: &State) -> Result<(), Violation> {
    check_uses(state)?;
    check_tenant_stops(state)?;
    check_job_stops(state)
}

/// Every counted use is of a declared budget, agrees with its limits, and has its
/// reset timer where it records one.
fn check_uses(state: &State) -> Result<(), Violation> {
    for (key, u) in &state.budgets {
        let (owner, name) = key;
        let spec = spec_of(state, key);
        ensure!(
            Reference,
            spec.is_some(),
            "{owner} counts usage of budget {name:?}, which it does not declare"
        );
        let Some(spec) = spec else { continue };
        ensure!(
            Limit,
            consistent(u, spec),
            "{owner}'s budget {name:?} records {:?} (warned {:?}, exhausted {:?}), not what its limits say",
            u.used,
            u.warned,
            u.exhausted
        );
        ensure!(
            Limit,
            u.reports.len() <= MAX_USAGE_REPORTS,
            "{owner}'s budget {name:?} holds {} report keys",
            u.reports.len()
        );
        ensure!(
            Timer,
            u.resets_at.is_some() == spec.reset_every_ms.is_some(),
            "{owner}'s budget {name:?} resets at {:?} but its period is {:?}",
            u.resets_at,
            spec.reset_every_ms
        );
        if let (Some(at), BudgetOwner::Tenant(t)) = (u.resets_at, owner) {
            ensure!(
                Timer,
                state
                    .timers
                    .contains(at, &Timer::BudgetReset(t.clone(), name.clone())),
                "tenant {t}'s budget {name:?} resets at {at} without a timer"
            );
        }
    }
    Ok(())
}

/// A held tenant is stopped exactly when one of its budgets is exhausted.
fn check_tenant_stops(state: &State) -> Result<(), Violation> {
    for (i, load) in state.tenants.iter().enumerate() {
        let id = i as u32;
        if state.names.tenants.refs(id) == 0 {
            continue;
        }
        let name = state.names.tenants.name(id);
        ensure!(
            Count,
            load.budget_stopped == state.tenant_exhausted(name),
            "tenant {name} is {}stopped, but its budgets say otherwise",
            if load.budget_stopped { "" } else { "not " }
        );
    }
    Ok(())
}

/// A stopped job names its own exhausted budget, its end is armed where it says, and
/// none of its tasks waits in the ready index.
fn check_job_stops(state: &State) -> Result<(), Violation> {
    for (id, j) in &state.jobs {
        let Some(stop) = &j.budget_stop else { continue };
        ensure!(
            Reference,
            stop.budget.0 == BudgetOwner::Job(*id)
                && state
                    .budgets
                    .get(&stop.budget)
                    .is_some_and(|u| u.exhausted.is_some()),
            "{id} is stopped by budget {:?}, which is not its exhausted budget",
            stop.budget.1
        );
        if let (Some(at), None) = (stop.end_at, j.end) {
            ensure!(
                Timer,
                state.timers.contains(at, &Timer::BudgetEnd(*id)),
                "{id} ends for its budget at {at} without a timer"
            );
        }
        if j.end.is_none() {
            let queued = j.task_ids().any(|t| {
                state.tasks.get(&t).is_some_and(|t| {
                    t.state
                        == TaskState::Ready {
                            place: ReadyPlace::Queued,
                        }
                })
            });
            ensure!(
                ReadyIndex,
                !queued,
                "{id} is stopped by its budget but has a task in the ready index"
            );
        }
    }
    Ok(())
}
