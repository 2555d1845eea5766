//! The end of a task and, when it was its job's last, of the job. `dag` ends the task
//! and reports a drained job; this decides what follows, so no transition below it
//! has to call back up.

use crate::dag;
use crate::ids::{JobId, TaskId};
use crate::output::{Effect, JobOutcome, TaskOutcome};
use crate::state::{JobEnd, State};
use crate::timers::Timer;

/// Ends a task with `outcome` (see `dag::finish_task`) and finishes its job if that was
/// the job's last unfinished task.
pub(crate) fn end_task(state: &mut State, tid: TaskId, outcome: TaskOutcome) {
    if let Some(job) = dag::finish_task(state, tid, outcome) {
        finish(state, job);
    }
}

/// Records the job's outcome once its last task became terminal, and starts its
/// retention.
fn finish(state: &mut State, job: JobId) {
    let now = state.now;
    let retention = state.config.retention_ms;
    let Some(j) = state.jobs.get_mut(&job) else {
        return;
    };
    if j.end.is_some() {
        return;
    }
    let outcome = match j.forced {
        Some((outcome, _)) => outcome,
        None if j.failed > 0 => JobOutcome::Failed,
        None => JobOutcome::Succeeded,
    };
    j.end = Some(JobEnd { outcome, at: now });
    if let Some(at) = j.deadline_at {
        state.timers.disarm(at, Timer::JobDeadline(job));
    }
    let tenant = j.tenant as usize;
    let in_flight = &mut state.tenants[tenant].jobs_in_flight;
    assert!(*in_flight > 0, "job {job} was in flight until now");
    *in_flight -= 1;
    state
        .timers
        .arm(now.saturating_add(retention), Timer::JobRetention(job));
    state.effects.push(Effect::JobFinished { job, outcome });
    run_ended(state, job);
}

/// A schedule's run ended: a due time it queued may start, at a release timer due now
/// (the schedule fires it when the timer does, outside this job's ending).
fn run_ended(state: &mut State, job: JobId) {
    let now = state.now;
    let Some(name) = state.schedule_runs.remove(&job) else {
        return;
    };
    let Some(s) = state.schedules.get_mut(&name) else {
        return;
    };
    s.active.remove(&job);
    if s.active.is_empty() && s.queued.is_some() {
        let timer = Timer::ScheduleRelease(name);
        if let Some(old) = s.release_at.replace(now) {
            state.timers.disarm(old, timer.clone());
        }
        state.timers.arm(now, timer);
    }
}
