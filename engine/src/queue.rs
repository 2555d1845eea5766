//! Where a ready task waits: in the ready index, parked behind its job's concurrency
//! cap, or blocked until a worker that can run it registers. Also the bookkeeping of
//! slots (tasks holding a grant or a lease) per job and per tenant.

use crate::ids::{JobId, TaskId, WorkerId};
use crate::intern::{covers, CapSetId};
use crate::output::Effect;
use crate::ready::QueueKey;
use crate::state::{ReadyPlace, State, TaskState, Worker, WorkerStatus};
use std::collections::BTreeMap;

/// Puts a task whose dependencies and delay are satisfied where it can be granted.
pub(crate) fn make_ready(state: &mut State, tid: TaskId) {
    let Some(t) = state.tasks.get(&tid) else {
        return;
    };
    let (job_id, capset, key) = (t.job, t.capset, t.ready_key());
    let q = t.queue_key();
    let Some(job) = state.jobs.get_mut(&job_id) else {
        return;
    };
    let place = if capset != CapSetId::ANY && state.names.capsets[capset.0 as usize].coverage == 0 {
        state.names.capsets[capset.0 as usize].blocked.insert(tid);
        let requires = state.names.caps(capset).to_vec();
        state.effects.push(Effect::TaskBlocked {
            job: job_id,
            task: tid,
            requires,
        });
        ReadyPlace::Blocked
    } else if job.at_cap() {
        job.parked.insert(key);
        ReadyPlace::Parked
    } else {
        job.queued += 1;
        state.ready.insert(q, key);
        state.dispatch_dirty = true;
        ReadyPlace::Queued
    };
    if let Some(t) = state.tasks.get_mut(&tid) {
        t.state = TaskState::Ready { place };
    }
}

/// Takes a ready task out of wherever it waits. The caller sets its next state.
pub(crate) fn remove_ready(state: &mut State, tid: TaskId) {
    let Some(t) = state.tasks.get(&tid) else {
        return;
    };
    let TaskState::Ready { place } = t.state else {
        return;
    };
    let key = t.ready_key();
    let q = t.queue_key();
    let job_id = t.job;
    match place {
        ReadyPlace::Queued => {
            state.ready.remove(q, key);
            let job = state.jobs.get_mut(&job_id).expect("a task's job is live");
            assert!(job.queued > 0, "{tid} is queued, so its job counts it");
            job.queued -= 1;
        }
        ReadyPlace::Parked => {
            let job = state.jobs.get_mut(&job_id).expect("a task's job is live");
            let parked = job.parked.remove(&key);
            assert!(parked, "{tid} is parked, so its job holds it");
        }
        ReadyPlace::Blocked => {
            state.names.capsets[q.capset.0 as usize]
                .blocked
                .remove(&tid);
        }
    }
}

/// A queued task moves from the ready index to holding a slot (a grant offer).
pub(crate) fn take_slot(state: &mut State, q: QueueKey, job_id: JobId) {
    let job = state
        .jobs
        .get_mut(&job_id)
        .expect("a queued task's job is live");
    assert!(job.queued > 0, "job {job_id} gives a slot to a queued task");
    job.queued -= 1;
    job.active += 1;
    state.tenants[q.tenant as usize].active += 1;
}

/// A task stopped holding a grant or lease: free the slot and let parked tasks in.
pub(crate) fn release_slot(state: &mut State, job_id: JobId, tenant: u32) {
    let load = &mut state.tenants[tenant as usize];
    assert!(load.active > 0, "tenant {tenant} frees a slot it holds");
    load.active -= 1;
    if let Some(cap) = load.cap {
        load.over_cap = load.over_cap.min(load.active.saturating_sub(cap));
    }
    state.dispatch_dirty = true;
    let job = state
        .jobs
        .get_mut(&job_id)
        .expect("a slot holder's job is live");
    assert!(job.active > 0, "job {job_id} frees a slot it holds");
    job.active -= 1;
    if job.budget_stop.is_some() {
        if job.active == 0 {
            budget_end_now(state, job_id);
        }
    } else if job.forced.is_none() {
        refill_parked(state, job_id);
    }
}

/// Moves a job's queued tasks out of the ready index into its parked set: its budget
/// stopped it, so none of them may be granted.
pub(crate) fn park_queued(state: &mut State, job_id: JobId) {
    let Some(job) = state.jobs.get(&job_id) else {
        return;
    };
    let queued: Vec<TaskId> = job
        .task_ids()
        .filter(|tid| {
            state.tasks.get(tid).is_some_and(|t| {
                t.state
                    == TaskState::Ready {
                        place: ReadyPlace::Queued,
                    }
            })
        })
        .collect();
    for tid in queued {
        remove_ready(state, tid);
        let Some(t) = state.tasks.get_mut(&tid) else {
            continue;
        };
        t.state = TaskState::Ready {
            place: ReadyPlace::Parked,
        };
        let key = t.ready_key();
        if let Some(job) = state.jobs.get_mut(&job_id) {
            job.parked.insert(key);
        }
    }
}

/// Moves parked tasks into the ready index while the job is under its cap.
/// A ready task of `job_id` was taken out of its queue for good: a parked task may take
/// its place, unless the job is ending or stopped by a budget.
pub(crate) fn refill(state: &mut State, job_id: JobId) {
    let open = state
        .jobs
        .get(&job_id)
        .is_some_and(|j| j.forced.is_none() && j.budget_stop.is_none());
    if open {
        refill_parked(state, job_id);
    }
}

fn refill_parked(state: &mut State, job_id: JobId) {
    loop {
        let Some(job) = state.jobs.get_mut(&job_id) else {
            return;
        };
        if job.at_cap() {
            return;
        }
        let Some(key) = job.parked.pop_first() else {
            return;
        };
        make_ready(state, key.task);
    }
}

/// Capability coverage when a worker starts or stops counting as live; tasks are
/// blocked when their requirement loses its last worker and unblocked when one comes.
pub(crate) fn coverage_changed(state: &mut State, caps: &[String], joined: bool) {
    for i in 1..state.names.capsets.len() {
        if !state.names.capset_held(i) || !covers(caps, &state.names.capsets[i].caps) {
            continue;
        }
        let set = &mut state.names.capsets[i];
        if joined {
            set.coverage += 1;
            if set.coverage == 1 {
                let blocked = std::mem::take(&mut set.blocked);
                for tid in blocked {
                    if let Some(t) = state.tasks.get(&tid) {
                        state.effects.push(Effect::TaskUnblocked {
                            job: t.job,
                            task: tid,
                        });
                    }
                    make_ready(state, tid);
                }
            }
        } else {
            assert!(
                set.coverage > 0,
                "a worker leaving a capability set was covering it"
            );
            set.coverage -= 1;
            if set.coverage == 0 {
                block_capset(state, CapSetId(i as u32));
            }
        }
    }
}

fn block_capset(state: &mut State, capset: CapSetId) {
    let requires = state.names.caps(capset).to_vec();
    for (_, key) in state.ready.take_capset(capset) {
        let Some(t) = state.tasks.get_mut(&key.task) else {
            continue;
        };
        t.state = TaskState::Ready {
            place: ReadyPlace::Blocked,
        };
        let job_id = t.job;
        let job = state
            .jobs
            .get_mut(&job_id)
            .expect("a queued task's job is live");
        assert!(
            job.queued > 0,
            "job {job_id} counts its queued task {}",
            key.task
        );
        job.queued -= 1;
        state.names.capsets[capset.0 as usize]
            .blocked
            .insert(key.task);
        state.effects.push(Effect::TaskBlocked {
            job: job_id,
            task: key.task,
            requires: requires.clone(),
        });
    }
}

/// Live workers able to serve a requirement: registered, not draining, not lost.
pub(crate) fn coverage(workers: &BTreeMap<WorkerId, Worker>, need: &[String]) -> u32 {
    workers
        .values()
        .filter(|w| w.status == WorkerStatus::Active && covers(&w.capabilities, need))
        .count() as u32
}

/// A stopped job's last slot was let go: its end is armed for now.
fn budget_end_now(state: &mut State, job: JobId) {
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
        state.timers.arm(now, crate::timers::Timer::BudgetEnd(job));
    }
}
