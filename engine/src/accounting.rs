//! Invariants on what the engine counts rather than decides: id counters, the task
//! table's shape, holders of interned ids, jobs in flight per tenant, stored bytes and
//! the engine-wide limits. A snapshot from disk passes these before any of the counts
//! is decremented or used as an index, so no arithmetic on them can overflow later.

use crate::ids::{TaskId, Time};
use crate::intern::CapSetId;
use crate::state::{Job, State, Task, TaskState};
use crate::timers::Timer;
use crate::violation::Violation;
use crate::{ids::JobId, limits};
use std::collections::BTreeMap;

/// Job, task and grant ids and task epochs stay at or below this. Each input moves a
/// counter by at most one job's tasks (under 2^32), so an engine reaches it only
/// after some 2^30 inputs of maximal jobs, and `+ 1` on a counter can never overflow.
pub(crate) const ID_CEILING: u64 = 1 << 62;

/// Counters and the task table, checked before anything iterates or indexes by them.
pub(super) fn check_shape(state: &State) -> Result<(), Violation> {
    for (name, value) in [
        ("next job id", state.next_job),
        ("next task id", state.next_task),
        ("next grant id", state.next_grant),
    ] {
        ensure!(
            Limit,
            value <= ID_CEILING,
            "{name} {value} is past the id ceiling {ID_CEILING}"
        );
    }
    let end = state.tasks.end();
    ensure!(
        Reference,
        end.is_some(),
        "the task table ends past u64::MAX"
    );
    ensure!(
        Reference,
        state.tasks.no_slots() || end == Some(state.next_task),
        "the task table ends at {end:?}, not at the next task id {}",
        state.next_task
    );
    ensure!(
        Reference,
        state.tasks.len() == state.tasks.count(),
        "the task table counts {} tasks, holds {}",
        state.tasks.len(),
        state.tasks.count()
    );
    // Jobs take their task ids in submission order, so in job order the ranges follow
    // one another: they never overlap, and a walk over every job's range is a walk
    // over the ids once.
    let mut handed_out = 1;
    for (jid, j) in &state.jobs {
        let last = j.first_task.0.checked_add(u64::from(j.task_count));
        ensure!(
            Reference,
            jid == &j.id && j.first_task.0 >= 1 && last.is_some_and(|l| l <= state.next_task),
            "job {jid} has tasks {}+{} outside the ids handed out",
            j.first_task,
            j.task_count
        );
        ensure!(
            Reference,
            j.first_task.0 >= handed_out,
            "job {jid} has tasks from {}, overlapping an earlier job's (up to t{})",
            j.first_task,
            handed_out - 1
        );
        handed_out = last.unwrap_or(u64::MAX);
    }
    Ok(())
}

/// What one task must satisfy beyond its state machine, against its job `j`.
pub(super) fn check_task(state: &State, tid: TaskId, t: &Task, j: &Job) -> Result<(), Violation> {
    ensure!(
        Limit,
        t.epoch <= ID_CEILING,
        "task {tid} epoch {} past the id ceiling",
        t.epoch
    );
    let in_range =
        (j.first_task.0..j.first_task.0.saturating_add(u64::from(j.task_count))).contains(&tid.0);
    ensure!(
        Reference,
        in_range && t.tenant == j.tenant && t.lane == j.lane,
        "task {tid} is outside job {} or disagrees with its tenant or lane",
        t.job
    );
    if let Some(g) = &t.group {
        ensure!(
            Count,
            g.needed <= g.total && g.succeeded.saturating_add(g.unsucceeded) <= g.total,
            "task {tid} group counts exceed its {} upstream tasks",
            g.total
        );
    }
    check_edges(tid, t)?;
    super::streams::check_stream(tid, t)?;
    super::streams::check_stream_edges(state, tid, t)?;
    if t.is_terminal() {
        ensure!(
            Count,
            t.signals.values().all(|p| p.is_empty()),
            "finished task {tid} still holds its signals' payloads"
        );
    }
    let timer = match &t.state {
        TaskState::Suspended {
            timeout_at: Some(at),
            ..
        } => Some((*at, Timer::SuspendTimeout(tid))),
        TaskState::Running(l) => l.timeout_at.map(|at| (at, Timer::AttemptTimeout(tid))),
        _ => None,
    };
    if let Some((at, timer)) = timer {
        ensure!(
            Timer,
            state.timers.contains(at, &timer),
            "task {tid} has no {timer:?} timer at {at}"
        );
    }
    Ok(())
}

/// A task's upstream list matches its group, and the signal that resumed it is one it
/// received. That the upstream and downstream lists mirror each other is checked per
/// job (`edge_invariants.rs`).
fn check_edges(tid: TaskId, t: &Task) -> Result<(), Violation> {
    let total = t.group.map_or(0, |g| g.total);
    ensure!(
        Reference,
        t.upstream.len() as u64 == u64::from(total),
        "task {tid} lists {} upstream tasks, its group counts {total}",
        t.upstream.len()
    );
    ensure!(
        Reference,
        t.resumed_by
            .as_ref()
            .is_none_or(|key| t.signals.contains_key(key)),
        "task {tid} was resumed by a signal it never received"
    );
    Ok(())
}

/// Holders of interned ids, jobs in flight, stored bytes and the engine-wide limits,
/// recomputed from the tasks, jobs and workers.
pub(super) fn check_counts(state: &State, held: &TaskHoldings) -> Result<(), Violation> {
    let holders = count_job_holders(state)?;
    check_job_outputs(state, &held.outputs, &held.frames)?;
    check_name_refs(state, &holders)?;
    check_capset_refs(state, &held.capset_refs)?;
    check_tenant_loads(state, &holders.in_flight)?;
    ensure!(
        Count,
        state.stored_bytes == held.stored,
        "the engine counts {} stored bytes, tasks hold {}",
        state.stored_bytes,
        held.stored
    );
    check_limits(state)
}

/// What the jobs and workers hold, counted afresh: tenant and lane references and each
/// tenant's unfinished jobs.
struct JobHolders {
    tenant_refs: BTreeMap<u32, u64>,
    lane_refs: BTreeMap<u32, u64>,
    in_flight: BTreeMap<u32, u32>,
}

/// Counts the jobs' and workers' holdings, checking each job's timers on the way.
fn count_job_holders(state: &State) -> Result<JobHolders, Violation> {
    let mut h = JobHolders {
        tenant_refs: BTreeMap::new(),
        lane_refs: BTreeMap::new(),
        in_flight: BTreeMap::new(),
    };
    for (jid, j) in &state.jobs {
        *h.tenant_refs.entry(j.tenant).or_default() += 1;
        *h.lane_refs.entry(j.lane).or_default() += 1;
        if j.end.is_none() {
            *h.in_flight.entry(j.tenant).or_default() += 1;
        }
        check_job_timers(state, *jid)?;
    }
    for w in state.workers.values() {
        for &lane in &w.lanes {
            *h.lane_refs.entry(lane).or_default() += 1;
        }
    }
    Ok(h)
}

/// What the tasks hold, counted afresh on the walk over all tasks: capability-set
/// references, stored bytes and each job's output bytes.
#[derive(Default)]
pub(super) struct TaskHoldings {
    capset_refs: BTreeMap<u32, u64>,
    stored: u64,
    pub outputs: BTreeMap<JobId, u64>,
    pub frames: BTreeMap<JobId, u64>,
}

impl TaskHoldings {
    /// Counts what `t` holds but its output, which is summed per job by the walk.
    pub(super) fn add(&mut self, t: &Task) {
        if t.capset != CapSetId::ANY {
            *self.capset_refs.entry(t.capset.0).or_default() += 1;
        }
        self.stored = self.stored.saturating_add(limits::held_bytes(t));
    }
}

/// Every interned tenant and lane counts exactly the jobs and workers that hold it.
fn check_name_refs(state: &State, holders: &JobHolders) -> Result<(), Violation> {
    for (table, name, refs) in [
        (&state.names.tenants, "tenant", &holders.tenant_refs),
        (&state.names.lanes, "lane", &holders.lane_refs),
    ] {
        for id in 0..table.slots() as u32 {
            let found = refs.get(&id).copied().unwrap_or(0);
            ensure!(
                Count,
                table.refs(id) == found,
                "{name} {id} ({:?}) counts {} holders, found {found}",
                table.name(id),
                table.refs(id)
            );
        }
    }
    Ok(())
}

/// Every capability set counts the tasks that hold it, and blocks only tasks blocked
/// on it.
fn check_capset_refs(state: &State, capset_refs: &BTreeMap<u32, u64>) -> Result<(), Violation> {
    for (id, set) in state.names.capsets.iter().enumerate().skip(1) {
        let found = capset_refs.get(&(id as u32)).copied().unwrap_or(0);
        ensure!(
            Count,
            set.refs == found,
            "capability set {id} counts {} holding tasks, found {found}",
            set.refs
        );
        for tid in &set.blocked {
            let ok = state.tasks.get(tid).is_some_and(|t| {
                t.capset.0 as usize == id
                    && t.state
                        == TaskState::Ready {
                            place: crate::state::ReadyPlace::Blocked,
                        }
            });
            ensure!(
                Capability,
                ok,
                "capability set {id} blocks {tid}, which is not blocked on it"
            );
        }
    }
    Ok(())
}

/// Every tenant counts its unfinished jobs, and a tenant in use has a weight.
fn check_tenant_loads(state: &State, in_flight: &BTreeMap<u32, u32>) -> Result<(), Violation> {
    for (i, load) in state.tenants.iter().enumerate() {
        let found = in_flight.get(&(i as u32)).copied().unwrap_or(0);
        ensure!(
            Count,
            load.jobs_in_flight == found,
            "tenant {i} counts {} jobs in flight, found {found}",
            load.jobs_in_flight
        );
        ensure!(
            Limit,
            load.weight >= 1 || state.names.tenants.refs(i as u32) == 0,
            "tenant {i} has weight 0"
        );
    }
    Ok(())
}

/// Each job's output bytes are its tasks' outputs, and its stream bytes their kept
/// frames, each within its limit.
fn check_job_outputs(
    state: &State,
    outputs: &BTreeMap<JobId, u64>,
    frames: &BTreeMap<JobId, u64>,
) -> Result<(), Violation> {
    let max = state.config.limits.max_output_bytes_per_job;
    let max_frames = state.config.limits.max_stream_bytes_per_job;
    for (jid, j) in &state.jobs {
        let kept = frames.get(jid).copied().unwrap_or(0);
        ensure!(
            Count,
            j.stream_bytes == kept,
            "job {jid} counts {} stream bytes, its tasks keep {kept}",
            j.stream_bytes
        );
        ensure!(
            Limit,
            kept <= max_frames,
            "job {jid} keeps {kept} stream bytes, over max_stream_bytes_per_job {max_frames}"
        );
        let found = outputs.get(jid).copied().unwrap_or(0);
        ensure!(
            Count,
            j.output_bytes == found,
            "job {jid} counts {} output bytes, its tasks hold {found}",
            j.output_bytes
        );
        ensure!(
            Limit,
            found <= max,
            "job {jid} holds {found} output bytes, over max_output_bytes_per_job {max}"
        );
    }
    Ok(())
}

fn check_limits(state: &State) -> Result<(), Violation> {
    let l = &state.config.limits;
    for (limit, held, max) in [
        (
            "max_live_jobs",
            state.jobs.len() as u64,
            u64::from(l.max_live_jobs),
        ),
        (
            "max_live_tasks",
            state.tasks.len(),
            u64::from(l.max_live_tasks),
        ),
        (
            "max_tenants",
            state.names.tenants.in_use() as u64,
            u64::from(l.max_tenants),
        ),
        ("max_stored_bytes", state.stored_bytes, l.max_stored_bytes),
    ] {
        ensure!(Limit, held <= max, "{held} held, over {limit} {max}");
    }
    Ok(())
}

/// A finished job waits for its retention timer; a running one with a deadline for
/// its deadline timer. Without them a job would be held forever.
fn check_job_timers(state: &State, jid: JobId) -> Result<(), Violation> {
    let j = &state.jobs[&jid];
    let (at, timer): (Time, Timer) = match (j.end, j.deadline_at) {
        (Some(end), _) => (
            end.at.saturating_add(state.config.retention_ms),
            Timer::JobRetention(jid),
        ),
        (None, Some(at)) => (at, Timer::JobDeadline(jid)),
        (None, None) => return Ok(()),
    };
    ensure!(
        Timer,
        state.timers.contains(at, &timer),
        "job {jid} has no {timer:?} timer at {at}"
    );
    Ok(())
}
