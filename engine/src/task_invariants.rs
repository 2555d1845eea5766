//! The invariants of one task, by the state it is in: an offer or a lease is held by a
//! live worker that lists it and covers the task, every ready place is indexed, every
//! deadline has its timer, and the attempt history agrees with the state.

use super::{JobCount, Tally};
use crate::ids::{GrantId, JobId, TaskId, WorkerId};
use crate::intern::{covers, CapSetId};
use crate::state::{Job, Lease, ReadyPlace, State, Task, TaskState, Worker, WorkerStatus};
use crate::timers::Timer;
use crate::violation::{InvariantKind, Violation};

/// Checks every task and tallies what they hold. A job's tasks have consecutive ids, so
/// the walk looks each job up once per run of its tasks and files that run's counts
/// once, instead of twice per task in maps as large as the jobs kept.
pub(super) fn walk(state: &State) -> Result<Tally, Violation> {
    let mut tally = Tally::default();
    let mut run: Option<(JobId, &Job, JobCount)> = None;
    for (tid, t) in state.tasks.iter() {
        if run.as_ref().is_none_or(|(id, ..)| *id != t.job) {
            let job = state.jobs.get(&t.job);
            ensure!(
                Reference,
                job.is_some(),
                "task {tid} belongs to unknown job {}",
                t.job
            );
            if let Some(job) = job {
                tally.file(run.replace((t.job, job, JobCount::default())));
            }
        }
        if let Some((_, job, count)) = &mut run {
            check_task(state, tid, t, job, count, &mut tally)?;
            let output = t.output.as_ref().map_or(0, |o| o.len() as u64);
            count.output = count.output.saturating_add(output);
            count.frames = count.frames.saturating_add(t.stream_bytes());
            tally.held.add(t);
        }
    }
    tally.file(run);
    Ok(tally)
}

impl Tally {
    /// Adds one run of a job's tasks to that job's counts and output bytes.
    fn file(&mut self, run: Option<(JobId, &Job, JobCount)>) {
        if let Some((id, _, c)) = run {
            let total = self.per_job.entry(id).or_default();
            total.active += c.active;
            total.queued += c.queued;
            total.parked += c.parked;
            total.remaining += c.remaining;
            let output = self.held.outputs.entry(id).or_default();
            *output = output.saturating_add(c.output);
            let frames = self.held.frames.entry(id).or_default();
            *frames = frames.saturating_add(c.frames);
        }
    }
}

/// Checks one task of `job` and adds it to the job's count `c` and to the tally of active
/// holds and queued tasks.
fn check_task(
    state: &State,
    tid: TaskId,
    t: &Task,
    job: &Job,
    c: &mut JobCount,
    tally: &mut Tally,
) -> Result<(), Violation> {
    ensure!(
        Reference,
        tid == t.id,
        "task {tid} stored under the wrong id"
    );
    if !t.is_terminal() {
        c.remaining += 1;
    }
    check_history(tid, t)?;
    super::accounting::check_task(state, tid, t, job)?;
    match &t.state {
        TaskState::Offered { grant } => {
            c.active += 1;
            *tally.per_tenant.entry(t.tenant).or_default() += 1;
            check_offered(state, tid, t, *grant)
        }
        TaskState::Running(l) => {
            c.active += 1;
            *tally.per_tenant.entry(t.tenant).or_default() += 1;
            check_running(state, tid, t, l)
        }
        TaskState::Ready { place } => {
            check_ready(state, tid, t, job, *place, c, &mut tally.queued_total)
        }
        TaskState::Delayed { until } => {
            ensure!(
                Timer,
                state.timers.contains(*until, &Timer::TaskDue(tid)),
                "delayed task {tid} has no timer"
            );
            Ok(())
        }
        TaskState::Waiting | TaskState::Suspended { .. } | TaskState::Done(_) => Ok(()),
    }
}

/// An offered task: a pending grant for it, listed by a live, covering, admitted worker.
fn check_offered(state: &State, tid: TaskId, t: &Task, grant: GrantId) -> Result<(), Violation> {
    let g = state.grants.get(&grant);
    ensure!(
        Holding,
        g.is_some_and(|g| g.task == tid && g.accepted.is_none()),
        "task {tid} offered under grant {grant} that is missing or not a pending offer for it"
    );
    let g = &state.grants[&grant];
    let w = holder(state, &g.worker, tid)?;
    ensure!(
        Holding,
        w.grants.contains(&grant),
        "worker {} does not list grant {grant}",
        g.worker
    );
    ensure!(
        Holding,
        w.instance == g.instance,
        "grant {grant} names a stale instance of {}",
        g.worker
    );
    ensure!(
        Capability,
        covers(&w.capabilities, state.names.caps(t.capset)),
        "task {tid} offered to {} which lacks {:?}",
        g.worker,
        state.names.caps(t.capset)
    );
    if let Some(first) = w.blacklisted_from_grant {
        ensure!(
            Blacklist,
            grant < first,
            "grant {grant} offered to blacklisted worker {}",
            g.worker
        );
    }
    ensure!(
        Timer,
        state
            .timers
            .contains(g.expires_at, &Timer::GrantExpiry(grant)),
        "grant {grant} has no expiry timer"
    );
    Ok(())
}

/// A running task: its lease matches an accepted grant, is listed by a live covering
/// worker, has not expired, and has its timer and open attempt record.
fn check_running(state: &State, tid: TaskId, t: &Task, l: &Lease) -> Result<(), Violation> {
    let w = holder(state, &l.worker, tid)?;
    ensure!(
        Holding,
        w.leases.contains(&tid),
        "worker {} does not list its lease on {tid}",
        l.worker
    );
    ensure!(
        Holding,
        w.instance == l.instance,
        "lease on {tid} names a stale instance of {}",
        l.worker
    );
    ensure!(
        Capability,
        covers(&w.capabilities, state.names.caps(t.capset)),
        "task {tid} runs on {} which lacks {:?}",
        l.worker,
        state.names.caps(t.capset)
    );
    let g = state.grants.get(&l.grant);
    ensure!(
        Holding,
        g.is_some_and(|g| g
            .accepted
            .is_some_and(|f| f.epoch == t.epoch && f.task == tid)),
        "lease on {tid} does not match an accepted grant at epoch {}",
        t.epoch
    );
    ensure!(
        Timer,
        l.timer_at <= l.expires_at,
        "lease timer on {tid} after its expiry"
    );
    // A deadline saturated at the end of time is still held at that time.
    ensure!(
        Timer,
        l.expires_at > state.now || l.expires_at == crate::ids::Time::MAX,
        "lease on {tid} expired at {} but is still held at {}",
        l.expires_at,
        state.now
    );
    ensure!(
        Timer,
        state.timers.contains(l.timer_at, &Timer::LeaseExpiry(tid)),
        "lease on {tid} has no expiry timer"
    );
    ensure!(
        History,
        t.history
            .last()
            .is_some_and(|r| r.epoch == t.epoch && r.ended.is_none()),
        "lease on {tid} has no open attempt record"
    );
    Ok(())
}

/// A ready task is counted in its place: queued, parked in its job, or blocked in its
/// capability set while no live worker covers it.
fn check_ready(
    state: &State,
    tid: TaskId,
    t: &Task,
    job: &Job,
    place: ReadyPlace,
    c: &mut JobCount,
    queued_total: &mut u64,
) -> Result<(), Violation> {
    let key = t.ready_key();
    match place {
        ReadyPlace::Queued => {
            c.queued += 1;
            *queued_total += 1;
        }
        ReadyPlace::Parked => {
            c.parked += 1;
            ensure!(
                ReadyIndex,
                job.parked.contains(&key),
                "parked task {tid} missing from its job's parked set"
            );
        }
        ReadyPlace::Blocked => {
            let set = &state.names.capsets[t.capset.0 as usize];
            ensure!(
                ReadyIndex,
                set.blocked.contains(&tid),
                "blocked task {tid} missing from its capability set"
            );
            ensure!(
                Capability,
                set.coverage == 0 && t.capset != CapSetId::ANY,
                "task {tid} is blocked although a live worker covers it"
            );
        }
    }
    Ok(())
}

fn holder<'a>(state: &'a State, w: &WorkerId, tid: TaskId) -> Result<&'a Worker, Violation> {
    let worker = state.workers.get(w).ok_or_else(|| Violation {
        kind: InvariantKind::Reference,
        detail: format!("task {tid} held by unknown worker {w}"),
    })?;
    ensure!(
        Holding,
        worker.status != WorkerStatus::Lost,
        "task {tid} held by lost worker {w}"
    );
    Ok(worker)
}

fn check_history(tid: TaskId, t: &Task) -> Result<(), Violation> {
    let mut last_epoch = 0;
    for (i, r) in t.history.iter().enumerate() {
        ensure!(
            History,
            r.epoch > last_epoch,
            "task {tid} attempt epochs do not strictly increase"
        );
        last_epoch = r.epoch;
        let open = r.ended.is_none();
        ensure!(
            History,
            !open || i + 1 == t.history.len(),
            "task {tid} has an open attempt that is not the last"
        );
    }
    ensure!(
        History,
        last_epoch == t.epoch,
        "task {tid} epoch {} differs from its last attempt's {last_epoch}",
        t.epoch
    );
    let running = matches!(t.state, TaskState::Running(_));
    let open = t.history.last().is_some_and(|r| r.ended.is_none());
    ensure!(
        History,
        running == open,
        "task {tid} running={running} but open attempt={open}"
    );
    Ok(())
}
