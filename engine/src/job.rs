//! Job admission, ending a job early (cancelled, or past its deadline) and forgetting
//! finished jobs after the retention period. A job's natural end is `job_end`'s.

use crate::dag;
use crate::edge_state::Edge;
use crate::ids::{JobId, TaskId};
use crate::job_end;
use crate::lease;
use crate::limits;
use crate::output::{Accepted, EndReason, JobOutcome, TaskOutcome};
use crate::queue;
use crate::reject::Rejection;
use crate::spec::JobSpec;
use crate::state::{Group, Job, State, Task, TaskState};
use crate::timers::Timer;
use crate::validate::{validate_job, ValidJob};
use std::collections::{BTreeMap, BTreeSet};

type Reply = Result<Accepted, Rejection>;

pub(crate) fn submit(state: &mut State, spec: JobSpec) -> Reply {
    let valid = validate_job(&spec, &state.config.limits).map_err(Rejection::InvalidJob)?;
    let spec_hash = crate::digest::fingerprint(&spec);
    if let Some(duplicate) = check_admission(state, &spec, spec_hash)? {
        return Ok(duplicate);
    }
    limits::admit(state, &spec)?;
    let now = state.now;
    let tenant = state.hold_tenant(&spec.tenant);
    let lane = state.names.lanes.acquire(&spec.lane);
    // Ids stay far below `u64::MAX`: `restore` refuses counters past `ID_CEILING`, and
    // each input moves them by at most one job's tasks.
    let id = JobId(state.next_job);
    state.next_job += 1;
    let first = state.next_task;
    let n = spec.tasks.len() as u32;
    state.next_task += n as u64;
    let deadline_at = spec.deadline_ms.map(|d| now.saturating_add(d));
    state.jobs.insert(
        id,
        Job {
            id,
            name: spec.name.clone(),
            spec_hash,
            tenant,
            lane,
            first_task: TaskId(first),
            task_count: n,
            max_concurrency: spec.max_concurrency,
            result: if spec.result.is_empty() {
                Vec::new()
            } else {
                valid.result.clone()
            },
            submitted_at: now,
            deadline_at,
            remaining: n,
            active: 0,
            queued: 0,
            parked: BTreeSet::new(),
            failed: 0,
            output_bytes: 0,
            stream_bytes: 0,
            budgets: spec.budgets.clone(),
            budget_stop: None,
            forced: None,
            end: None,
        },
    );
    state.job_names.insert(spec.name.clone(), id);
    state.tenants[tenant as usize].jobs_in_flight += 1;
    let bytes = spec
        .tasks
        .iter()
        .fold(0u64, |sum, t| sum.saturating_add(t.payload.len() as u64));
    limits::store(state, bytes);
    if let Some(at) = deadline_at {
        state.timers.arm(at, Timer::JobDeadline(id));
    }
    let roots = insert_tasks(state, id, TaskId(first), spec, &valid);
    for tid in roots {
        dag::release(state, tid);
    }
    Ok(Accepted::JobSubmitted {
        job: id,
        first_task: TaskId(first),
        tasks: n,
        duplicate: false,
    })
}

/// Whether the job may be admitted under its name and tenant: `Some` reply when it is
/// a resent submission of the job the name stands for.
fn check_admission(
    state: &State,
    spec: &JobSpec,
    spec_hash: u64,
) -> Result<Option<Accepted>, Rejection> {
    // A name stands for its newest job. The same spec under it is that job again while
    // the job is live or retained (a resent submission runs once); a different spec
    // conflicts while the job runs and makes a new job once it has finished, the old
    // one staying queryable by id until its retention ends.
    if let Some(&existing) = state.job_names.get(&spec.name) {
        match state.jobs.get(&existing) {
            Some(job) if job.spec_hash == spec_hash => {
                return Ok(Some(Accepted::JobSubmitted {
                    job: existing,
                    first_task: job.first_task,
                    tasks: job.task_count,
                    duplicate: true,
                }))
            }
            Some(job) if job.end.is_some() => {}
            _ => {
                return Err(Rejection::JobNameConflict {
                    name: spec.name.clone(),
                    existing,
                })
            }
        }
    }
    let limit = state.config.limits.max_jobs_in_flight_per_tenant;
    if let Some(t) = state.names.tenants.get(&spec.tenant) {
        if state.tenants[t as usize].jobs_in_flight >= limit {
            return Err(Rejection::TenantJobLimit {
                tenant: spec.tenant.clone(),
                limit,
            });
        }
    }
    Ok(None)
}

/// Inserts the job's tasks, waiting, under consecutive ids from `first`; returns the
/// tasks without a dependency group, which are released at once.
fn insert_tasks(
    state: &mut State,
    job: JobId,
    first: TaskId,
    spec: JobSpec,
    valid: &ValidJob,
) -> Vec<TaskId> {
    let now = state.now;
    let (lane, tenant) = match state.jobs.get(&job) {
        Some(j) => (j.lane, j.tenant),
        None => return Vec::new(),
    };
    let mut roots = Vec::new();
    let consumers_of = crate::validate::reverse(&valid.producers);
    for (i, t) in spec.tasks.into_iter().enumerate() {
        let tid = TaskId::nth_after(first, i as u64);
        let workers = &state.workers;
        let capset = state
            .names
            .capset(&t.capabilities, |need| queue::coverage(workers, need));
        let rate = t.rate_key.as_deref().map(|k| state.names.rates.acquire(k));
        let group = t.deps.as_ref().map(group_of);
        if group.is_none() && t.stream_from.is_empty() {
            roots.push(tid);
        }
        let id = |&d: &u32| TaskId::nth_after(first, d.into());
        let ids = |list: &[u32]| list.iter().map(id).collect();
        let (upstream, downstream) = (ids(&valid.upstream[i]), ids(&valid.downstream[i]));
        let edges = edges_of(&t, &valid.producers[i], first);
        let consumers = ids(&consumers_of[i]);
        state.tasks.insert(
            tid,
            Task {
                id: tid,
                job,
                key: t.key,
                payload: t.payload,
                lane,
                tenant,
                capset,
                rate,
                priority: t.priority.unwrap_or(spec.priority),
                retry: t.retry,
                attempt_timeout_ms: t.attempt_timeout_ms,
                not_before: now.saturating_add(t.delay_ms),
                allow_failure: t.allow_failure,
                group,
                upstream,
                downstream,
                state: TaskState::Waiting,
                attempt: 1,
                epoch: 0,
                failures: 0,
                losses: 0,
                history: Vec::new(),
                signals: BTreeMap::new(),
                resumed_by: None,
                output: None,
                stream_mode: t.stream,
                stream: None,
                edges,
                consumers,
            },
        );
    }
    roots
}

/// The edges of task spec `t`, whose producers are the tasks at `producers`
/// (indices from `first`).
fn edges_of(t: &crate::spec::TaskSpec, producers: &[u32], first: TaskId) -> Vec<Edge> {
    let edges = t.stream_from.iter().zip(producers);
    edges
        .map(|(e, &p)| Edge::new(TaskId::nth_after(first, p.into()), e.policy))
        .collect()
}

/// A dependency group's counts before any upstream task has finished.
fn group_of(g: &crate::spec::DepGroup) -> Group {
    let total = g.upstream.len() as u32;
    Group {
        kind: g.kind,
        total,
        needed: g.kind.needed(total),
        succeeded: 0,
        unsucceeded: 0,
        on_unsatisfied: g.on_unsatisfied,
    }
}

pub(crate) fn cancel(state: &mut State, job: JobId) -> Reply {
    let Some(j) = state.jobs.get(&job) else {
        return Err(Rejection::UnknownJob { job });
    };
    if j.end.is_some() {
        return Ok(Accepted::JobCancelled {
            job,
            already_finished: true,
        });
    }
    terminate(state, job, JobOutcome::Cancelled, EndReason::JobCancelled);
    Ok(Accepted::JobCancelled {
        job,
        already_finished: false,
    })
}

/// Ends every unfinished task of the job: grants withdrawn, leases revoked (their
/// workers told), queued and waiting tasks cancelled.
pub(crate) fn terminate(state: &mut State, job: JobId, outcome: JobOutcome, reason: EndReason) {
    let Some(j) = state.jobs.get_mut(&job) else {
        return;
    };
    if j.end.is_some() {
        return;
    }
    j.forced = Some((outcome, reason));
    let tasks: Vec<TaskId> = j.task_ids().collect();
    for tid in tasks {
        if take_out(state, tid, reason) {
            job_end::end_task(state, tid, TaskOutcome::Cancelled { reason });
        }
    }
}

/// Takes an unfinished task out of wherever it is held (timer, queue, grant, lease,
/// suspension), telling a worker that holds it why, for the caller to end it. Returns
/// false, doing nothing, for a task that is gone or has ended.
pub(crate) fn take_out(state: &mut State, tid: TaskId, reason: EndReason) -> bool {
    let Some(task) = state.tasks.get(&tid) else {
        return false;
    };
    let job = task.job;
    match task.state.clone() {
        TaskState::Done(_) => return false,
        TaskState::Waiting => {}
        TaskState::Delayed { until } => state.timers.disarm(until, Timer::TaskDue(tid)),
        TaskState::Ready { .. } => queue::remove_ready(state, tid),
        TaskState::Offered { grant } => {
            lease::withdraw(state, grant, reason, true);
            // A withdrawn grant's task is queued again unless its job is ending.
            queue::remove_ready(state, tid);
        }
        TaskState::Running(_) => {
            lease::revoke(state, tid, reason);
        }
        TaskState::Suspended { timeout_at, .. } => {
            if let Some(at) = timeout_at {
                state.timers.disarm(at, Timer::SuspendTimeout(tid));
            }
        }
    }
    // A queued task taken out leaves room a parked task of its job may take.
    queue::refill(state, job);
    true
}

/// Drops a finished job and its tasks once its retention period is over.
pub(crate) fn forget(state: &mut State, job: JobId) {
    let Some(j) = state.jobs.get(&job) else {
        return;
    };
    if j.end.is_none() {
        return;
    }
    let (tenant, lane, ids) = (j.tenant, j.lane, j.task_ids());
    if state.job_names.get(&j.name) == Some(&job) {
        state.job_names.remove(&j.name);
    }
    for tid in ids {
        if let Some(t) = state.tasks.remove(&tid) {
            limits::unstore(state, limits::held_bytes(&t));
            state.names.release_capset(t.capset);
            if let Some(rate) = t.rate {
                state.names.rates.release(rate);
            }
        }
    }
    state.jobs.remove(&job);
    crate::budget_use::forget_job(state, job);
    state.names.tenants.release(tenant);
    state.names.lanes.release(lane);
}
