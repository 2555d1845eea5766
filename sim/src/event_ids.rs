//! Whom an event concerns, by id: the worker, job, task and attempt a command or an
//! effect names, which the checker turns into names for the scenario's counts.

use keel_engine::{Effect, Fence, JobId, TaskId, WorkerId};

/// Whom an event concerns, by id, before it is named for the counters.
#[derive(Clone, Copy, Default)]
pub(crate) struct Ids<'a> {
    pub worker: Option<&'a WorkerId>,
    pub job: Option<JobId>,
    pub task: Option<TaskId>,
    pub attempt: Option<u32>,
}

impl<'a> Ids<'a> {
    pub(crate) fn worker(worker: &'a WorkerId) -> Ids<'a> {
        Ids {
            worker: Some(worker),
            ..Ids::default()
        }
    }

    pub(crate) fn fence(self, fence: Fence) -> Ids<'a> {
        Ids {
            task: Some(fence.task),
            attempt: Some(fence.attempt),
            ..self
        }
    }
}

/// Whom an effect concerns.
pub(crate) fn effect_ids<'a>(worker: Option<&'a WorkerId>, e: &Effect) -> Ids<'a> {
    let ids = Ids {
        worker,
        ..Ids::default()
    };
    let on = |job, task, attempt| Ids {
        job: Some(job),
        task: Some(task),
        attempt,
        ..ids
    };
    match e {
        Effect::GrantOffered {
            job, task, attempt, ..
        } => on(*job, *task, Some(*attempt)),
        Effect::TaskRequeued {
            job, task, attempt, ..
        } => on(*job, *task, Some(*attempt)),
        Effect::TaskBlocked { job, task, .. }
        | Effect::TaskUnblocked { job, task }
        | Effect::TaskSuspended { job, task, .. }
        | Effect::TaskResumed { job, task }
        | Effect::TaskFinished { job, task, .. } => on(*job, *task, None),
        Effect::GrantWithdrawn { task, .. } => Ids {
            task: Some(*task),
            ..ids
        },
        Effect::LeaseRevoked { fence, .. } => ids.fence(*fence),
        Effect::JobFinished { job, .. } | Effect::ScheduleFired { job, .. } => Ids {
            job: Some(*job),
            ..ids
        },
        Effect::BudgetLimitReached { owner, .. } => match owner {
            keel_engine::BudgetOwner::Job(job) => Ids {
                job: Some(*job),
                ..ids
            },
            keel_engine::BudgetOwner::Tenant(_) => ids,
        },
        Effect::WorkerLost { .. }
        | Effect::WorkerBlacklisted { .. }
        | Effect::WorkerReadmitted { .. }
        | Effect::WorkerDrained { .. } => ids,
    }
}
