//! Dependency groups: a task becomes ready when enough of its upstream tasks succeeded,
//! and is skipped or cancelled (by its policy) once that can no longer happen.

use crate::ids::{JobId, TaskId};
use crate::limits;
use crate::output::{Effect, EndReason, TaskOutcome};
use crate::queue;
use crate::spec::UnsatisfiedPolicy;
use crate::state::{State, TaskState};
use crate::timers::Timer;

/// A task whose group is satisfied (or that has none) waits out its delay, then is ready.
pub(crate) fn release(state: &mut State, tid: TaskId) {
    let now = state.now;
    let Some(task) = state.tasks.get_mut(&tid) else {
        return;
    };
    if task.not_before > now {
        let until = task.not_before;
        task.state = TaskState::Delayed { until };
        state.timers.arm(until, Timer::TaskDue(tid));
    } else {
        queue::make_ready(state, tid);
    }
}

/// Marks a task terminal and propagates the outcome downstream. The caller has already
/// taken the task out of any queue, grant or lease. Returns the job whose last task
/// this ended, for the caller to finish (`job_end::end_task` does both): every task of
/// that job is terminal by then, so nothing after it here adds an effect.
#[must_use]
pub(crate) fn finish_task(state: &mut State, tid: TaskId, outcome: TaskOutcome) -> Option<JobId> {
    let mut drained = None;
    let mut work = vec![(tid, outcome)];
    while let Some((tid, outcome)) = work.pop() {
        let Some(task) = state.tasks.get_mut(&tid) else {
            continue;
        };
        if task.is_terminal() {
            continue;
        }
        let fails_job = match &outcome {
            TaskOutcome::Failed { .. } => !task.allow_failure,
            TaskOutcome::Cancelled { reason } => *reason == EndReason::DependencyUnsatisfied,
            TaskOutcome::Succeeded | TaskOutcome::Skipped => false,
        };
        let succeeded = outcome == TaskOutcome::Succeeded;
        task.state = TaskState::Done(outcome.clone());
        let freed = limits::let_go(task);
        let job_id = task.job;
        let downstream = std::mem::take(&mut task.downstream);
        limits::unstore(state, freed);
        state.effects.push(Effect::TaskFinished {
            job: job_id,
            task: tid,
            outcome,
        });
        let job = state
            .jobs
            .get_mut(&job_id)
            .expect("a finishing task's job is live");
        assert!(
            job.remaining > 0,
            "job {job_id} counts {tid} among its unfinished tasks"
        );
        job.remaining -= 1;
        if fails_job {
            job.failed = job.failed.saturating_add(1);
        }
        let ending = job.forced.is_some();
        let done = job.remaining == 0;
        if !ending {
            for &d in &downstream {
                if let Some(next) = propagate(state, d, succeeded) {
                    work.push((d, next));
                }
            }
            if !succeeded {
                producer_failed(state, tid);
            }
        }
        if let Some(task) = state.tasks.get_mut(&tid) {
            task.downstream = downstream;
        }
        if done {
            drained = Some(job_id);
        }
    }
    drained
}

/// Records one upstream result on `d`; returns the outcome `d` must end with, if any.
fn propagate(state: &mut State, d: TaskId, succeeded: bool) -> Option<TaskOutcome> {
    let task = state.tasks.get_mut(&d)?;
    let group = task.group.as_mut()?;
    if succeeded {
        group.succeeded = group.succeeded.saturating_add(1);
    } else {
        group.unsucceeded = group.unsucceeded.saturating_add(1);
    }
    if task.state != TaskState::Waiting {
        return None;
    }
    if group.satisfied() {
        if producers_started(state, d) {
            release(state, d);
        }
        None
    } else if group.unsatisfiable() {
        Some(unsatisfied(group.on_unsatisfied))
    } else {
        None
    }
}

/// The outcome of a task whose dependencies can no longer be met, by its policy.
pub(crate) fn unsatisfied(policy: UnsatisfiedPolicy) -> TaskOutcome {
    match policy {
        UnsatisfiedPolicy::Skip => TaskOutcome::Skipped,
        UnsatisfiedPolicy::Cancel => TaskOutcome::Cancelled {
            reason: EndReason::DependencyUnsatisfied,
        },
    }
}

/// The policy a consumer of a failed producer ends by: its group's, else skip.
pub(crate) fn consumer_policy(task: &crate::state::Task) -> UnsatisfiedPolicy {
    task.group
        .as_ref()
        .map_or(UnsatisfiedPolicy::Skip, |g| g.on_unsatisfied)
}

/// Whether every producer `d` streams from has started an attempt, so its frames can
/// flow: a consumer is released only then (and once its group, if any, is satisfied).
fn producers_started(state: &State, d: TaskId) -> bool {
    state.tasks.get(&d).is_some_and(|t| {
        t.edges
            .iter()
            .all(|e| state.tasks.get(&e.producer).is_some_and(|p| p.epoch > 0))
    })
}

/// A producer's first lease started: each consumer waiting only for its producers to
/// start is released.
pub(crate) fn producer_started(state: &mut State, producer: TaskId) {
    let Some(p) = state.tasks.get(&producer) else {
        return;
    };
    if p.epoch != 1 || p.consumers.is_empty() {
        return;
    }
    for c in p.consumers.clone() {
        let waiting = state.tasks.get(&c).is_some_and(|t| {
            t.state == TaskState::Waiting && t.group.as_ref().is_none_or(|g| g.satisfied())
        });
        if waiting && producers_started(state, c) {
            release(state, c);
        }
    }
}

/// A producer ended without success: each of its consumers not yet finished is left to
/// `edge::settle`, which takes it out of its queue, grant or lease (a waiting one is in
/// none) and ends it by its policy, all within the same input.
fn producer_failed(state: &mut State, producer: TaskId) {
    if let Some(p) = state.tasks.get(&producer) {
        state.edge_ends.extend_from_slice(&p.consumers);
    }
}
