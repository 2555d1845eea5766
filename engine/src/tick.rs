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

pub(crate) fn advance(s: &mut State, now: Time) {
    let now = now.max(s.now);
    while let Some((at, timer)) = s.timers.pop_due(now) {
        s.now = at;
        fire(s, at, timer);
    }
    s.now = now;
}

fn fire(s: &mut State, at: Time, timer: Timer) {
    match timer {
        Timer::GrantExpiry(g) => {
            if s.grants
                .get(&g)
                .is_some_and(|gr| gr.accepted.is_none() && gr.expires_at == at)
            {
                lease::withdraw(s, g, EndReason::GrantExpired, true);
            }
        }
        Timer::LeaseExpiry(tid) => lease_due(s, tid, at),
        Timer::AttemptTimeout(tid) => {
            let holder = match s.tasks.get(&tid).map(|t| &t.state) {
                Some(TaskState::Running(l)) if l.timeout_at == Some(at) => l.worker.clone(),
                _ => return,
            };
            // The timer is consumed; end_lease must not look for it again.
            if let Some(TaskState::Running(l)) = s.tasks.get_mut(&tid).map(|t| &mut t.state) {
                l.timeout_at = None;
            }
            announce_revoke(s, tid, EndReason::AttemptTimedOut);
            blacklist::record_failure(s, &holder);
            lease::fail_attempt(s, tid, "attempt timed out".into(), false, false);
        }
        Timer::TaskDue(tid) => {
            if s.tasks
                .get(&tid)
                .is_some_and(|t| t.state == TaskState::Delayed { until: at })
            {
                queue::make_ready(s, tid);
            }
        }
        Timer::SuspendTimeout(tid) => suspend::timeout_due(s, tid, at),
        Timer::JobDeadline(j) => {
            if s.jobs
                .get(&j)
                .is_some_and(|job| job.end.is_none() && job.deadline_at == Some(at))
            {
                job::terminate(
                    s,
                    j,
                    JobOutcome::DeadlineExceeded,
                    EndReason::DeadlineExceeded,
                );
            }
        }
        Timer::JobRetention(j) => job::forget(s, j),
        Timer::WorkerLiveness(w) => worker::liveness_due(s, &w, at),
        Timer::BlacklistEnd(w) => blacklist::readmit(s, &w, at),
        Timer::WorkerForget(w) => worker::forget(s, &w, at),
    }
}

fn lease_due(s: &mut State, tid: TaskId, at: Time) {
    let Some(TaskState::Running(l)) = s.tasks.get_mut(&tid).map(|t| &mut t.state) else {
        return;
    };
    if l.timer_at != at {
        return;
    }
    if l.expires_at > at {
        // Renewed since the timer was armed.
        l.timer_at = l.expires_at;
        let next = l.expires_at;
        s.timers.arm(next, Timer::LeaseExpiry(tid));
        return;
    }
    lease::revoke(s, tid, EndReason::LeaseExpired);
    lease::requeue_lost(s, tid, EndReason::LeaseExpired);
}

/// Tells the holder its lease is revoked without ending it (the caller ends it).
fn announce_revoke(s: &mut State, tid: TaskId, reason: EndReason) {
    if let Some(task) = s.tasks.get(&tid) {
        if let TaskState::Running(l) = &task.state {
            s.fx.push(crate::output::Effect::LeaseRevoked {
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
