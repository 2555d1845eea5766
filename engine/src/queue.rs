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
pub(crate) fn make_ready(s: &mut State, tid: TaskId) {
    let Some(t) = s.tasks.get(&tid) else { return };
    let (job_id, capset, key) = (t.job, t.capset, t.ready_key());
    let q = QueueKey {
        lane: t.lane,
        tenant: t.tenant,
        capset,
    };
    let Some(job) = s.jobs.get_mut(&job_id) else {
        return;
    };
    let place = if capset != CapSetId::ANY && s.names.capsets[capset.0 as usize].coverage == 0 {
        s.names.capsets[capset.0 as usize].blocked.insert(tid);
        let requires = s.names.caps(capset).to_vec();
        s.fx.push(Effect::TaskBlocked {
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
        s.ready.insert(q, key);
        s.dispatch_dirty = true;
        ReadyPlace::Queued
    };
    if let Some(t) = s.tasks.get_mut(&tid) {
        t.state = TaskState::Ready { place };
    }
}

/// Takes a ready task out of wherever it waits. The caller sets its next state.
pub(crate) fn remove_ready(s: &mut State, tid: TaskId) {
    let Some(t) = s.tasks.get(&tid) else { return };
    let TaskState::Ready { place } = t.state else {
        return;
    };
    let key = t.ready_key();
    let q = QueueKey {
        lane: t.lane,
        tenant: t.tenant,
        capset: t.capset,
    };
    let job_id = t.job;
    match place {
        ReadyPlace::Queued => {
            s.ready.remove(q, key);
            if let Some(job) = s.jobs.get_mut(&job_id) {
                job.queued -= 1;
            }
        }
        ReadyPlace::Parked => {
            if let Some(job) = s.jobs.get_mut(&job_id) {
                job.parked.remove(&key);
            }
        }
        ReadyPlace::Blocked => {
            s.names.capsets[q.capset.0 as usize].blocked.remove(&tid);
        }
    }
}

/// A queued task moves from the ready index to holding a slot (a grant offer).
pub(crate) fn take_slot(s: &mut State, q: QueueKey, job_id: JobId) {
    if let Some(job) = s.jobs.get_mut(&job_id) {
        job.queued -= 1;
        job.active += 1;
    }
    s.tenants[q.tenant as usize].active += 1;
}

/// A task stopped holding a grant or lease: free the slot and let parked tasks in.
pub(crate) fn release_slot(s: &mut State, job_id: JobId, tenant: u32) {
    s.tenants[tenant as usize].active -= 1;
    s.dispatch_dirty = true;
    let Some(job) = s.jobs.get_mut(&job_id) else {
        return;
    };
    job.active -= 1;
    if job.forced.is_none() {
        refill_parked(s, job_id);
    }
}

/// Moves parked tasks into the ready index while the job is under its cap.
fn refill_parked(s: &mut State, job_id: JobId) {
    loop {
        let Some(job) = s.jobs.get_mut(&job_id) else {
            return;
        };
        if job.at_cap() {
            return;
        }
        let Some(key) = job.parked.pop_first() else {
            return;
        };
        make_ready(s, key.task);
    }
}

/// Capability coverage when a worker starts or stops counting as live; tasks are
/// blocked when their requirement loses its last worker and unblocked when one comes.
pub(crate) fn coverage_changed(s: &mut State, caps: &[String], joined: bool) {
    for i in 1..s.names.capsets.len() {
        if !s.names.capset_held(i) || !covers(caps, &s.names.capsets[i].caps) {
            continue;
        }
        let set = &mut s.names.capsets[i];
        if joined {
            set.coverage += 1;
            if set.coverage == 1 {
                let blocked = std::mem::take(&mut set.blocked);
                for tid in blocked {
                    if let Some(t) = s.tasks.get(&tid) {
                        s.fx.push(Effect::TaskUnblocked {
                            job: t.job,
                            task: tid,
                        });
                    }
                    make_ready(s, tid);
                }
            }
        } else {
            set.coverage = set.coverage.saturating_sub(1);
            if set.coverage == 0 {
                block_capset(s, CapSetId(i as u32));
            }
        }
    }
}

fn block_capset(s: &mut State, capset: CapSetId) {
    let requires = s.names.caps(capset).to_vec();
    for (_, key) in s.ready.take_capset(capset) {
        let Some(t) = s.tasks.get_mut(&key.task) else {
            continue;
        };
        t.state = TaskState::Ready {
            place: ReadyPlace::Blocked,
        };
        let job_id = t.job;
        if let Some(job) = s.jobs.get_mut(&job_id) {
            job.queued -= 1;
        }
        s.names.capsets[capset.0 as usize].blocked.insert(key.task);
        s.fx.push(Effect::TaskBlocked {
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
