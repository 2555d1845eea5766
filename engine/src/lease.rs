//! Grants turning into leases, and every fenced command on a running attempt: renew,
//! complete, fail. A command whose fence is not the task's current one changes nothing.

use crate::blacklist;
use crate::dataflow;
use crate::ids::{Fence, GrantId, InstanceId, TaskId, Time, WorkerId};
use crate::job_end;
use crate::limits;
use crate::output::{Accepted, Effect, EndReason, TaskOutcome};
use crate::queue;
use crate::reject::Rejection;
use crate::retry;
use crate::spec::Payload;
use crate::state::{AttemptEnd, AttemptRecord, Grant, Lease, State, TaskState, WorkerStatus};
use crate::timers::Timer;

type Reply = Result<Accepted, Rejection>;

pub(crate) fn accept(state: &mut State, w: &WorkerId, inst: InstanceId, g: GrantId) -> Reply {
    let grant = held_grant(state, w, inst, g)?;
    let (tid, accepted, grant_expires_at) = (grant.task, grant.accepted, grant.expires_at);
    if let Some(fence) = accepted {
        let expires_at = match state.tasks.get(&tid).map(|t| &t.state) {
            Some(TaskState::Running(l)) => l.expires_at,
            _ => return Err(Rejection::UnknownGrant { grant: g }),
        };
        return Ok(Accepted::LeaseStarted {
            fence,
            expires_at,
            duplicate: true,
        });
    }
    state.timers.disarm(grant_expires_at, Timer::GrantExpiry(g));
    let (fence, expires_at) = start_lease(state, w, inst, g, tid);
    state
        .grants
        .get_mut(&g)
        .expect("the grant was found above")
        .accepted = Some(fence);
    let worker = state
        .workers
        .get_mut(w)
        .expect("a grant's worker is registered");
    let held = worker.grants.remove(&g);
    assert!(held, "worker {w} holds grant {g} until it accepts it");
    worker.leases.insert(tid);
    Ok(Accepted::LeaseStarted {
        fence,
        expires_at,
        duplicate: false,
    })
}

/// The grant `g`, if it exists and was offered to this instance of worker `w`.
fn held_grant<'s>(
    state: &'s State,
    w: &WorkerId,
    inst: InstanceId,
    g: GrantId,
) -> Result<&'s Grant, Rejection> {
    let Some(grant) = state.grants.get(&g) else {
        return Err(Rejection::UnknownGrant { grant: g });
    };
    if grant.worker != *w {
        return Err(Rejection::GrantNotYours {
            grant: g,
            owner: grant.worker.clone(),
            worker: w.clone(),
        });
    }
    if grant.instance != inst {
        return Err(Rejection::StaleInstance {
            worker: w.clone(),
            presented: inst,
            current: grant.instance,
        });
    }
    Ok(grant)
}

/// Moves task `tid`, offered under grant `g`, to running under a new lease for `w`:
/// bumps its epoch, records the attempt and arms the lease's timers. Returns the new
/// fence and when the lease expires.
fn start_lease(
    state: &mut State,
    w: &WorkerId,
    inst: InstanceId,
    g: GrantId,
    tid: TaskId,
) -> (Fence, crate::ids::Time) {
    let now = state.now;
    let expires_at = lease_end(state, now);
    let task = state
        .tasks
        .get_mut(&tid)
        .expect("a live grant names a live task");
    assert_eq!(
        task.state,
        TaskState::Offered { grant: g },
        "task {tid} is accepted under grant {g}, so it must be offered under it"
    );
    // Below `ID_CEILING` (checked on restore), one step per lease.
    task.epoch += 1;
    let fence = Fence {
        task: tid,
        attempt: task.attempt,
        epoch: task.epoch,
    };
    let timeout_at = task.attempt_timeout_ms.map(|ms| now.saturating_add(ms));
    task.state = TaskState::Running(Lease {
        grant: g,
        worker: w.clone(),
        instance: inst,
        started_at: now,
        expires_at,
        timer_at: expires_at,
        timeout_at,
    });
    task.history.push(AttemptRecord {
        attempt: fence.attempt,
        epoch: fence.epoch,
        worker: w.clone(),
        started_at: now,
        ended: None,
    });
    state.timers.arm(expires_at, Timer::LeaseExpiry(tid));
    if let Some(at) = timeout_at {
        state.timers.arm(at, Timer::AttemptTimeout(tid));
    }
    crate::dag::producer_started(state, tid);
    (fence, expires_at)
}

/// When a lease started or renewed at `now` ends. A lease lasts at least 1 ms, so even
/// under a zero TTL (which `Config::validate` refuses) it is held when it starts.
fn lease_end(state: &State, now: crate::ids::Time) -> crate::ids::Time {
    now.saturating_add(state.config.lease_ttl_ms.max(1))
}

pub(crate) fn release(state: &mut State, w: &WorkerId, g: GrantId) -> Reply {
    match state.grants.get(&g) {
        Some(grant) if grant.worker == *w && grant.accepted.is_none() => {
            withdraw(state, g, EndReason::GrantReleased, false);
            Ok(Accepted::Ok)
        }
        Some(grant) if grant.worker != *w => Err(Rejection::GrantNotYours {
            grant: g,
            owner: grant.worker.clone(),
            worker: w.clone(),
        }),
        _ => Err(Rejection::UnknownGrant { grant: g }),
    }
}

/// Takes back an unaccepted grant; the task returns to ready unless the caller ends it.
pub(crate) fn withdraw(state: &mut State, g: GrantId, reason: EndReason, notify: bool) {
    let Some(grant) = state.grants.remove(&g) else {
        return;
    };
    state.timers.disarm(grant.expires_at, Timer::GrantExpiry(g));
    if let Some(worker) = state.workers.get_mut(&grant.worker) {
        worker.grants.remove(&g);
    }
    if notify {
        state.effects.push(Effect::GrantWithdrawn {
            worker: grant.worker.clone(),
            grant: g,
            task: grant.task,
            reason,
        });
    }
    let Some(task) = state.tasks.get_mut(&grant.task) else {
        return;
    };
    task.state = TaskState::Waiting;
    let (job, tenant) = (task.job, task.tenant);
    queue::release_slot(state, job, tenant);
    let ending = state.jobs.get(&job).is_some_and(|j| j.forced.is_some());
    if !ending {
        queue::make_ready(state, grant.task);
    }
}

/// Checks that `w` (instance `inst`) holds the current lease named by `fence`.
pub(crate) fn check_fence(
    state: &State,
    w: &WorkerId,
    inst: InstanceId,
    fence: Fence,
) -> Result<(), Rejection> {
    let task = state
        .tasks
        .get(&fence.task)
        .ok_or(Rejection::UnknownTask { task: fence.task })?;
    #[cfg(feature = "fault-injection")]
    if state.faults.ignore_fencing && matches!(task.state, TaskState::Running(_)) {
        return Ok(());
    }
    match &task.state {
        TaskState::Running(l) if task.attempt == fence.attempt && task.epoch == fence.epoch => {
            if l.worker != *w {
                Err(Rejection::NotLeaseHolder {
                    task: fence.task,
                    worker: w.clone(),
                })
            } else if l.instance != inst {
                Err(Rejection::StaleInstance {
                    worker: w.clone(),
                    presented: inst,
                    current: l.instance,
                })
            } else {
                Ok(())
            }
        }
        _ => Err(Rejection::StaleFence {
            task: fence.task,
            attempt_seen: fence.attempt,
            epoch_seen: fence.epoch,
            attempt_current: task.attempt,
            epoch_current: task.epoch,
        }),
    }
}

/// How the attempt named by `fence` ended, if it was `w`'s and has ended.
pub(crate) fn ended_attempt<'a>(
    state: &'a State,
    w: &WorkerId,
    fence: Fence,
) -> Option<&'a AttemptEnd> {
    let task = state.tasks.get(&fence.task)?;
    let rec = task
        .history
        .iter()
        .rev()
        .find(|r| r.epoch == fence.epoch && r.attempt == fence.attempt)?;
    if rec.worker != *w {
        return None;
    }
    rec.ended.as_ref().map(|(_, end)| end)
}

pub(crate) fn renew(state: &mut State, w: &WorkerId, inst: InstanceId, fence: Fence) -> Reply {
    check_fence(state, w, inst, fence)?;
    let expires_at = lease_end(state, state.now);
    if let Some(TaskState::Running(l)) = state.tasks.get_mut(&fence.task).map(|t| &mut t.state) {
        l.expires_at = expires_at;
    }
    Ok(Accepted::Renewed { fence, expires_at })
}

pub(crate) fn complete(
    state: &mut State,
    w: &WorkerId,
    inst: InstanceId,
    fence: Fence,
    output: Payload,
) -> Reply {
    #[cfg(feature = "fault-injection")]
    leak_stale_output(state, fence, &output);
    match ended_attempt(state, w, fence) {
        Some(AttemptEnd::Succeeded) => {
            return Ok(Accepted::Completed {
                fence,
                duplicate: true,
            })
        }
        // A resent completion that was refused for its size is refused the same way.
        Some(AttemptEnd::Failed {
            retry_at: None,
            reported: true,
            ..
        }) => {
            if let Some(t) = state.tasks.get(&fence.task) {
                dataflow::check_output(state, t, output.len() as u64)?;
            }
        }
        _ => {}
    }
    check_fence(state, w, inst, fence)?;
    let Some(t) = state.tasks.get(&fence.task) else {
        return Err(Rejection::UnknownTask { task: fence.task });
    };
    if let Err(refusal) = dataflow::check_output(state, t, output.len() as u64) {
        fail_attempt(state, fence.task, refusal.to_string(), true, true);
        return Err(refusal);
    }
    limits::admit_output(state, t, &output)?;
    end_lease(state, fence.task, AttemptEnd::Succeeded);
    let bytes = output.len() as u64;
    limits::store(state, bytes);
    let Some(t) = state.tasks.get_mut(&fence.task) else {
        return Err(Rejection::UnknownTask { task: fence.task });
    };
    t.output = Some(output);
    if let Some(j) = state.jobs.get_mut(&t.job) {
        j.output_bytes = j.output_bytes.saturating_add(bytes);
    }
    job_end::end_task(state, fence.task, TaskOutcome::Succeeded);
    Ok(Accepted::Completed {
        fence,
        duplicate: false,
    })
}

/// [`crate::Faults::leak_stale_outputs`]: overwrites a succeeded task's output with that of a
/// completion under a fence that is no longer the task's own.
#[cfg(feature = "fault-injection")]
fn leak_stale_output(state: &mut State, fence: Fence, output: &Payload) {
    if !state.faults.leak_stale_outputs {
        return;
    }
    let Some(t) = state.tasks.get_mut(&fence.task) else {
        return;
    };
    let stale = (fence.attempt, fence.epoch) != (t.attempt, t.epoch);
    if !stale || t.state != TaskState::Done(TaskOutcome::Succeeded) {
        return;
    }
    let old = t
        .output
        .replace(output.clone())
        .map_or(0, |o| o.len() as u64);
    let new = output.len() as u64;
    let job = t.job;
    state.stored_bytes = state.stored_bytes.saturating_sub(old).saturating_add(new);
    if let Some(j) = state.jobs.get_mut(&job) {
        j.output_bytes = j.output_bytes.saturating_sub(old).saturating_add(new);
    }
}

pub(crate) fn fail(
    state: &mut State,
    w: &WorkerId,
    inst: InstanceId,
    fence: Fence,
    error: String,
    permanent: bool,
) -> Reply {
    if let Some(AttemptEnd::Failed {
        retry_at,
        reported: true,
        ..
    }) = ended_attempt(state, w, fence)
    {
        return Ok(Accepted::Failed {
            fence,
            duplicate: true,
            retry_at: *retry_at,
        });
    }
    check_fence(state, w, inst, fence)?;
    let limit = state.config.limits.max_payload_bytes;
    if error.len() as u64 > limit as u64 {
        return Err(Rejection::TooLarge {
            field: "error".into(),
            size: error.len() as u64,
            limit: limit as u64,
        });
    }
    blacklist::record_failure(state, w);
    let retry_at = fail_attempt(state, fence.task, error, permanent, true);
    Ok(Accepted::Failed {
        fence,
        duplicate: false,
        retry_at,
    })
}

/// Ends the running attempt as failed and either schedules a retry or fails the task.
pub(crate) fn fail_attempt(
    state: &mut State,
    tid: TaskId,
    error: String,
    permanent: bool,
    reported: bool,
) -> Option<crate::ids::Time> {
    let now = state.now;
    let seed = state.config.seed;
    let task = state.tasks.get_mut(&tid)?;
    task.failures = task.failures.saturating_add(1);
    let retry_at = if permanent || task.failures >= task.retry.max_attempts {
        None
    } else {
        Some(now.saturating_add(retry::backoff_delay(
            &task.retry,
            task.failures,
            seed,
            tid,
            task.attempt,
        )))
    };
    end_lease(
        state,
        tid,
        AttemptEnd::Failed {
            error: error.clone(),
            retry_at,
            reported,
        },
    );
    match retry_at {
        Some(until) => retry::schedule(state, tid, until, EndReason::AttemptFailed),
        None => job_end::end_task(state, tid, TaskOutcome::Failed { error }),
    }
    retry_at
}

/// Ends the current lease: timers, grant record, worker and slot bookkeeping, history.
/// The caller decides the task's next state.
pub(crate) fn end_lease(state: &mut State, tid: TaskId, end: AttemptEnd) -> Option<Lease> {
    let now = state.now;
    let task = state.tasks.get_mut(&tid)?;
    let TaskState::Running(lease) = std::mem::replace(&mut task.state, TaskState::Waiting) else {
        return None;
    };
    if let Some(rec) = task.history.last_mut() {
        rec.ended = Some((now, end));
    }
    let (job, tenant) = (task.job, task.tenant);
    crate::budget_charge::attempt_ended(state, job, now.saturating_sub(lease.started_at));
    state.timers.disarm(lease.timer_at, Timer::LeaseExpiry(tid));
    if let Some(at) = lease.timeout_at {
        state.timers.disarm(at, Timer::AttemptTimeout(tid));
    }
    state.grants.remove(&lease.grant);
    if let Some(worker) = state.workers.get_mut(&lease.worker) {
        worker.leases.remove(&tid);
        if worker.status == WorkerStatus::Draining && worker.active() == 0 {
            state.effects.push(Effect::WorkerDrained {
                worker: lease.worker.clone(),
            });
        }
    }
    queue::release_slot(state, job, tenant);
    Some(lease)
}

/// Revokes a running lease from outside (expiry, timeout, loss, cancel) and tells the
/// holder to stop.
pub(crate) fn revoke(state: &mut State, tid: TaskId, reason: EndReason) -> Option<Lease> {
    let task = state.tasks.get(&tid)?;
    let TaskState::Running(lease) = &task.state else {
        return None;
    };
    state.effects.push(Effect::LeaseRevoked {
        worker: lease.worker.clone(),
        fence: Fence {
            task: tid,
            attempt: task.attempt,
            epoch: task.epoch,
        },
        reason,
    });
    end_lease(state, tid, AttemptEnd::Ended(reason))
}

/// The attempt ended through no fault of the task (worker lost, lease expired): a new
/// attempt starts at once, bounded by the loss budget rather than the retry budget.
pub(crate) fn requeue_lost(state: &mut State, tid: TaskId, reason: EndReason) {
    requeue_lost_at(state, tid, reason, state.now);
}

/// `requeue_lost`, the new attempt ready at `ready_at` (not before now): a lease
/// revoked from a live worker waits out the time the worker may still trust it, so
/// a lost revocation never has two workers run the task at once.
pub(crate) fn requeue_lost_at(state: &mut State, tid: TaskId, reason: EndReason, ready_at: Time) {
    let max_losses = state.config.max_losses;
    let Some(task) = state.tasks.get_mut(&tid) else {
        return;
    };
    task.losses = task.losses.saturating_add(1);
    if task.losses > max_losses || task.losses == u32::MAX {
        let error = format!("lost {} times, last by {reason:?}", task.losses);
        job_end::end_task(state, tid, TaskOutcome::Failed { error });
        return;
    }
    if ready_at > state.now {
        crate::retry::schedule(state, tid, ready_at, reason);
        return;
    }
    task.attempt = task.attempt.saturating_add(1);
    let (job, attempt) = (task.job, task.attempt);
    state.effects.push(Effect::TaskRequeued {
        job,
        task: tid,
        attempt,
        reason,
        ready_at: state.now,
    });
    queue::make_ready(state, tid);
}
