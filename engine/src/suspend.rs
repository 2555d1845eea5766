//! Suspension: a running task gives up its lease to wait on a named waitpoint, and a
//! signal (deduplicated by idempotency key) makes it ready again.

use crate::ids::{Fence, InstanceId, TaskId, WorkerId};
use crate::input::SuspendTimeout;
use crate::job_end;
use crate::lease;
use crate::limits;
use crate::output::{Accepted, Effect, EndReason, TaskOutcome};
use crate::queue;
use crate::reject::Rejection;
use crate::spec::Payload;
use crate::state::{AttemptEnd, State, TaskState};
use crate::timers::Timer;
use crate::validate::check_command_name;

type Reply = Result<Accepted, Rejection>;

#[allow(clippy::too_many_arguments)]
pub(crate) fn suspend(
    state: &mut State,
    w: &WorkerId,
    inst: InstanceId,
    fence: Fence,
    waitpoint: String,
    timeout_ms: Option<u64>,
    on_timeout: SuspendTimeout,
) -> Reply {
    if let Some(AttemptEnd::Ended(EndReason::Suspended)) = lease::ended_attempt(state, w, fence) {
        return Ok(Accepted::Suspended {
            fence,
            duplicate: true,
        });
    }
    check_command_name("waitpoint", &waitpoint, state.config.limits.max_name_len)?;
    lease::check_fence(state, w, inst, fence)?;
    lease::end_lease(state, fence.task, AttemptEnd::Ended(EndReason::Suspended));
    let timeout_at = timeout_ms.map(|ms| state.now.saturating_add(ms));
    let Some(task) = state.tasks.get_mut(&fence.task) else {
        return Err(Rejection::UnknownTask { task: fence.task });
    };
    task.state = TaskState::Suspended {
        waitpoint: waitpoint.clone(),
        timeout_at,
        on_timeout,
    };
    let job = task.job;
    if let Some(at) = timeout_at {
        state.timers.arm(at, Timer::SuspendTimeout(fence.task));
    }
    state.effects.push(Effect::TaskSuspended {
        job,
        task: fence.task,
        waitpoint,
    });
    Ok(Accepted::Suspended {
        fence,
        duplicate: false,
    })
}

pub(crate) fn signal(
    state: &mut State,
    tid: TaskId,
    waitpoint: String,
    key: String,
    payload: Payload,
) -> Reply {
    let limits = &state.config.limits;
    let (max_signals, max_payload) = (limits.max_signals_per_task, limits.max_payload_bytes);
    check_command_name("waitpoint", &waitpoint, limits.max_name_len)?;
    check_command_name("idempotency key", &key, limits.max_name_len)?;
    let task = state
        .tasks
        .get_mut(&tid)
        .ok_or(Rejection::UnknownTask { task: tid })?;
    if task.signals.contains_key(&key) {
        return Ok(Accepted::Signalled {
            task: tid,
            resumed: false,
            duplicate: true,
        });
    }
    if task.signals.len() as u64 >= max_signals as u64 {
        return Err(Rejection::TooManySignals {
            task: tid,
            limit: max_signals,
        });
    }
    if payload.len() as u64 > max_payload as u64 {
        return Err(Rejection::TooLarge {
            field: "signal payload".into(),
            size: payload.len() as u64,
            limit: max_payload as u64,
        });
    }
    let timeout_at = match &task.state {
        TaskState::Suspended {
            waitpoint: wp,
            timeout_at,
            ..
        } if *wp == waitpoint => *timeout_at,
        _ => {
            return Err(Rejection::NotWaiting {
                task: tid,
                waitpoint,
            })
        }
    };
    limits::admit_signal(state, &payload)?;
    let bytes = payload.len() as u64;
    let Some(task) = state.tasks.get_mut(&tid) else {
        return Err(Rejection::UnknownTask { task: tid });
    };
    task.signals.insert(key.clone(), payload);
    task.resumed_by = Some(key);
    let job = task.job;
    limits::store(state, bytes);
    if let Some(at) = timeout_at {
        state.timers.disarm(at, Timer::SuspendTimeout(tid));
    }
    resume(state, tid, job);
    Ok(Accepted::Signalled {
        task: tid,
        resumed: true,
        duplicate: false,
    })
}

fn resume(state: &mut State, tid: TaskId, job: crate::ids::JobId) {
    state.effects.push(Effect::TaskResumed { job, task: tid });
    queue::make_ready(state, tid);
}

pub(crate) fn timeout_due(state: &mut State, tid: TaskId, at: crate::ids::Time) {
    let Some(task) = state.tasks.get(&tid) else {
        return;
    };
    let TaskState::Suspended {
        timeout_at: Some(t),
        on_timeout,
        ..
    } = task.state
    else {
        return;
    };
    if t != at {
        return;
    }
    let job = task.job;
    match on_timeout {
        SuspendTimeout::Resume => {
            if let Some(task) = state.tasks.get_mut(&tid) {
                task.resumed_by = None;
            }
            resume(state, tid, job)
        }
        SuspendTimeout::Fail => job_end::end_task(
            state,
            tid,
            TaskOutcome::Failed {
                error: "suspension timed out".into(),
            },
        ),
    }
}
