//! What a budget's timers do: a stopped job ends (failed, its unfinished tasks
//! cancelled for its budget), a stopped tenant's attempts are revoked, a tenant
//! budget's period resets; and how a new configuration is applied to what tenant
//! budgets have counted. Counting and stopping are in `budget_charge`.

use crate::budget_spec::BudgetOwner;
use crate::budget_use::{judge, period_end, reset_timer, spec_of};
use crate::ids::{JobId, Time};
use crate::output::{EndReason, JobOutcome};
use crate::state::{BudgetKey, State, TaskState};

/// The end of a stopped job is due: it ends, failed, its unfinished tasks cancelled.
pub(crate) fn end_due(state: &mut State, job: JobId, at: Time) {
    // One end is armed per stopped job; ending an ended job changes nothing.
    let due = state
        .jobs
        .get(&job)
        .and_then(|j| j.budget_stop.as_ref())
        .is_some_and(|s| s.end_at == Some(at));
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

/// Recomputes whether the tenant is stopped; dispatch looks again, as its queues may
/// be served now.
fn restop_tenant(state: &mut State, tenant: &str) {
    let stopped = state.tenant_exhausted(tenant);
    if let Some(id) = state.names.tenants.get(tenant) {
        state.tenants[id as usize].budget_stopped = stopped;
        state.dispatch_dirty = true;
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
