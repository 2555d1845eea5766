//! Moving the clock: every timer due at or before `now` fires in (time, timer) order,
//! each seeing its own due time as the current time, so the outcome does not depend on
//! how often the driver ticks.

use crate::blacklist;
use crate::ids::{TaskId, Time};
use crate::job;
use crate::lease;
use crate::output::{EndReason, JobOutcome};
use crate::queue;
use crate::state::{State, TaskState};
use crate::suspend;
use crate::timers::Timer;
use crate::worker;

pub(crate) fn advance(state: &mut State, now: Time) {
    let now = now.max(state.now);
    while let Some((at, timer)) = state.timers.pop_due(now) {
        state.now = at;
        fire(state, at, now, timer);
    }
    state.now = now;
}

/// `target` is the time being advanced to, so a timer can tell how late it fired.
fn fire(state: &mut State, at: Time, target: Time, timer: Timer) {
    match timer {
        Timer::GrantExpiry(g) => {
            if state
                .grants
                .get(&g)
                .is_some_and(|gr| gr.accepted.is_none() && gr.expires_at == at)
            {
                lease::withdraw(state, g, EndReason::GrantExpired, true);
            }
        }
        Timer::LeaseExpiry(tid) => lease_due(state, tid, at),
        Timer::AttemptTimeout(tid) => {
            let holder = match state.tasks.get(&tid).map(|t| &t.state) {
                Some(TaskState::Running(l)) if l.timeout_at == Some(at) => l.worker.clone(),
                _ => return,
            };
            // The timer is consumed; end_lease must not look for it again.
            if let Some(TaskState::Running(l)) = state.tasks.get_mut(&tid).map(|t| &mut t.state) {
                l.timeout_at = None;
            }
            announce_revoke(state, tid, EndReason::AttemptTimedOut);
            blacklist::record_failure(state, &holder);
            lease::fail_attempt(state, tid, "attempt timed out".into(), false, false);
        }
        Timer::TaskDue(tid) => {
            if state
                .tasks
                .get(&tid)
                .is_some_and(|t| t.state == TaskState::Delayed { until: at })
            {
                queue::make_ready(state, tid);
            }
        }
        Timer::SuspendTimeout(tid) => suspend::timeout_due(state, tid, at),
        Timer::JobDeadline(j) => {
            if state
                .jobs
                .get(&j)
                .is_some_and(|job| job.end.is_none() && job.deadline_at == Some(at))
            {
                job::terminate(
                    state,
                    j,
                    JobOutcome::DeadlineExceeded,
                    EndReason::DeadlineExceeded,
                );
            }
        }
        Timer::JobRetention(j) => job::forget(state, j),
        Timer::WorkerLiveness(w) => worker::liveness_due(state, &w, at),
        Timer::BlacklistEnd(w) => blacklist::readmit(state, &w, at),
        Timer::WorkerForget(w) => worker::forget(state, &w, at),
        Timer::RateRefill => crate::rate::woke(state, at),
        Timer::ScheduleDue(name) => crate::schedule::due(state, &name, at, target),
        Timer::ScheduleRelease(name) => crate::schedule::release(state, &name, at),
        Timer::BudgetEnd(job) => crate::budgets::end_due(state, job, at),
        Timer::BudgetRevoke(tenant) => crate::budgets::revoke_due(state, &tenant),
        Timer::BudgetReset(tenant, budget) => {
            crate::budgets::reset_due(state, &tenant, &budget, at)
        }
    }
}

fn lease_due(state: &mut State, tid: TaskId, at: Time) {
    let Some(TaskState::Running(l)) = state.tasks.get_mut(&tid).map(|t| &mut t.state) else {
        return;
    };
    if l.timer_at != at {
        return;
    }
    if l.expires_at > at {
        // Renewed since the timer was armed.
        l.timer_at = l.expires_at;
        let next = l.expires_at;
        state.timers.arm(next, Timer::LeaseExpiry(tid));
        return;
    }
    lease::revoke(state, tid, EndReason::LeaseExpired);
    lease::requeue_lost(state, tid, EndReason::LeaseExpired);
}

/// Tells the holder its lease is revoked without ending it (the caller ends it).
fn announce_revoke(state: &mut State, tid: TaskId, reason: EndReason) {
    if let Some(task) = state.tasks.get(&tid) {
        if let TaskState::Running(l) = &task.state {
            state.effects.push(crate::output::Effect::LeaseRevoked {
                worker: l.worker.clone(),
                fence: crate::ids::Fence {
                    task: tid,
                    attempt: task.attempt,
                    epoch: task.epoch,
                },
                reason,
            });
        }
    }
}
