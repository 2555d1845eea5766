//! What the engine says back: one reply per command, and effects addressed to workers
//! and to whoever watches a job.

use crate::dataflow::TaskInput;
use crate::ids::{Fence, GrantId, InstanceId, JobId, TaskId, Time, WorkerId};
use crate::reject::Rejection;
use crate::spec::Payload;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outputs {
    /// `None` only for `Tick`.
    pub reply: Option<Result<Accepted, Rejection>>,
    pub effects: Vec<Effect>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Accepted {
    /// Tasks are numbered `first_task .. first_task + tasks` in spec order.
    /// `duplicate` is set when the same spec was already submitted under this name.
    JobSubmitted {
        job: JobId,
        first_task: TaskId,
        tasks: u32,
        duplicate: bool,
    },
    JobCancelled {
        job: JobId,
        already_finished: bool,
    },
    Signalled {
        task: TaskId,
        resumed: bool,
        duplicate: bool,
    },
    Registered {
        worker: WorkerId,
        instance: InstanceId,
        duplicate: bool,
    },
    /// Heartbeat, work request, drain, deregister, release.
    Ok,
    LeaseStarted {
        fence: Fence,
        expires_at: Time,
        duplicate: bool,
    },
    Renewed {
        fence: Fence,
        expires_at: Time,
    },
    Completed {
        fence: Fence,
        duplicate: bool,
    },
    Failed {
        fence: Fence,
        duplicate: bool,
        retry_at: Option<Time>,
    },
    Suspended {
        fence: Fence,
        duplicate: bool,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Effect {
    GrantOffered {
        worker: WorkerId,
        grant: GrantId,
        job: JobId,
        task: TaskId,
        /// The task's key in its job's spec, for logs and handlers.
        key: String,
        attempt: u32,
        payload: Payload,
        /// The outputs of the task's upstream tasks, in its group's order.
        inputs: Vec<TaskInput>,
        /// The payload of the signal that resumed the task, when one did.
        signal: Option<Payload>,
        expires_at: Time,
    },
    GrantWithdrawn {
        worker: WorkerId,
        grant: GrantId,
        task: TaskId,
        reason: EndReason,
    },
    /// The worker must stop running this attempt; its fence is no longer valid.
    LeaseRevoked {
        worker: WorkerId,
        fence: Fence,
        reason: EndReason,
    },
    TaskBlocked {
        job: JobId,
        task: TaskId,
        /// No single live worker advertises all of these.
        requires: Vec<String>,
    },
    TaskUnblocked {
        job: JobId,
        task: TaskId,
    },
    TaskRequeued {
        job: JobId,
        task: TaskId,
        attempt: u32,
        reason: EndReason,
        ready_at: Time,
    },
    TaskSuspended {
        job: JobId,
        task: TaskId,
        waitpoint: String,
    },
    TaskResumed {
        job: JobId,
        task: TaskId,
    },
    TaskFinished {
        job: JobId,
        task: TaskId,
        outcome: TaskOutcome,
    },
    JobFinished {
        job: JobId,
        outcome: JobOutcome,
    },
    WorkerLost {
        worker: WorkerId,
        instance: InstanceId,
    },
    WorkerBlacklisted {
        worker: WorkerId,
        until: Time,
    },
    WorkerReadmitted {
        worker: WorkerId,
    },
    /// A draining worker holds nothing more.
    WorkerDrained {
        worker: WorkerId,
    },
}

/// Who an effect is for, so a driver can route it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Recipient {
    Worker(WorkerId),
    Job(JobId),
}

impl Effect {
    pub fn recipient(&self) -> Recipient {
        match self {
            Effect::GrantOffered { worker, .. }
            | Effect::GrantWithdrawn { worker, .. }
            | Effect::LeaseRevoked { worker, .. }
            | Effect::WorkerLost { worker, .. }
            | Effect::WorkerBlacklisted { worker, .. }
            | Effect::WorkerReadmitted { worker }
            | Effect::WorkerDrained { worker } => Recipient::Worker(worker.clone()),
            Effect::TaskBlocked { job, .. }
            | Effect::TaskUnblocked { job, .. }
            | Effect::TaskRequeued { job, .. }
            | Effect::TaskSuspended { job, .. }
            | Effect::TaskResumed { job, .. }
            | Effect::TaskFinished { job, .. }
            | Effect::JobFinished { job, .. } => Recipient::Job(*job),
        }
    }

    /// A short snake_case name of the effect's kind, stable for traces, counters and
    /// scenario files; one of [`Effect::LABELS`].
    pub fn label(&self) -> &'static str {
        match self {
            Effect::GrantOffered { .. } => "grant_offered",
            Effect::GrantWithdrawn { .. } => "grant_withdrawn",
            Effect::LeaseRevoked { .. } => "lease_revoked",
            Effect::TaskBlocked { .. } => "task_blocked",
            Effect::TaskUnblocked { .. } => "task_unblocked",
            Effect::TaskRequeued { .. } => "task_requeued",
            Effect::TaskSuspended { .. } => "task_suspended",
            Effect::TaskResumed { .. } => "task_resumed",
            Effect::TaskFinished { .. } => "task_finished",
            Effect::JobFinished { .. } => "job_finished",
            Effect::WorkerLost { .. } => "worker_lost",
            Effect::WorkerBlacklisted { .. } => "worker_blacklisted",
            Effect::WorkerReadmitted { .. } => "worker_readmitted",
            Effect::WorkerDrained { .. } => "worker_drained",
        }
    }

    /// Every effect label, in declaration order.
    pub const LABELS: [&'static str; 14] = [
        "grant_offered",
        "grant_withdrawn",
        "lease_revoked",
        "task_blocked",
        "task_unblocked",
        "task_requeued",
        "task_suspended",
        "task_resumed",
        "task_finished",
        "job_finished",
        "worker_lost",
        "worker_blacklisted",
        "worker_readmitted",
        "worker_drained",
    ];
}

/// Why a grant, lease or attempt ended other than by the worker's own report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum EndReason {
    GrantExpired,
    GrantReleased,
    LeaseExpired,
    WorkerLost,
    WorkerLeft,
    AttemptTimedOut,
    AttemptFailed,
    JobCancelled,
    DeadlineExceeded,
    Suspended,
    /// Its dependency group can no longer be satisfied.
    DependencyUnsatisfied,
}

impl EndReason {
    /// Every reason, in declaration order.
    pub const ALL: [EndReason; 11] = [
        EndReason::GrantExpired,
        EndReason::GrantReleased,
        EndReason::LeaseExpired,
        EndReason::WorkerLost,
        EndReason::WorkerLeft,
        EndReason::AttemptTimedOut,
        EndReason::AttemptFailed,
        EndReason::JobCancelled,
        EndReason::DeadlineExceeded,
        EndReason::Suspended,
        EndReason::DependencyUnsatisfied,
    ];

    /// A short snake_case word for tables, traces and attempt histories.
    pub fn label(self) -> &'static str {
        match self {
            EndReason::GrantExpired => "grant_expired",
            EndReason::GrantReleased => "grant_released",
            EndReason::LeaseExpired => "lease_expired",
            EndReason::WorkerLost => "worker_lost",
            EndReason::WorkerLeft => "worker_left",
            EndReason::AttemptTimedOut => "attempt_timed_out",
            EndReason::AttemptFailed => "attempt_failed",
            EndReason::JobCancelled => "job_cancelled",
            EndReason::DeadlineExceeded => "deadline_exceeded",
            EndReason::Suspended => "suspended",
            EndReason::DependencyUnsatisfied => "dependency_unsatisfied",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TaskOutcome {
    Succeeded,
    Failed {
        error: String,
    },
    /// Its dependency group could not be satisfied and its policy is to skip.
    Skipped,
    Cancelled {
        reason: EndReason,
    },
}

impl TaskOutcome {
    /// A short snake_case word for the kind of outcome (without its error or reason),
    /// stable for traces, status tables and the wire.
    pub fn label(&self) -> &'static str {
        match self {
            TaskOutcome::Succeeded => "succeeded",
            TaskOutcome::Failed { .. } => "failed",
            TaskOutcome::Skipped => "skipped",
            TaskOutcome::Cancelled { .. } => "cancelled",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum JobOutcome {
    Succeeded,
    Failed,
    Cancelled,
    DeadlineExceeded,
}

impl JobOutcome {
    /// Every outcome, in declaration order.
    pub const ALL: [JobOutcome; 4] = [
        JobOutcome::Succeeded,
        JobOutcome::Failed,
        JobOutcome::Cancelled,
        JobOutcome::DeadlineExceeded,
    ];

    /// A short snake_case word, stable for traces, status tables and the wire.
    pub fn label(self) -> &'static str {
        match self {
            JobOutcome::Succeeded => "succeeded",
            JobOutcome::Failed => "failed",
            JobOutcome::Cancelled => "cancelled",
            JobOutcome::DeadlineExceeded => "deadline_exceeded",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{Fence, GrantId, InstanceId, JobId, TaskId, WorkerId};

    /// One effect of every kind, in declaration order.
    fn one_of_each() -> Vec<Effect> {
        let (worker, job, task) = (WorkerId::new("w"), JobId(1), TaskId(2));
        let fence = Fence {
            task,
            attempt: 1,
            epoch: 1,
        };
        let reason = EndReason::WorkerLost;
        vec![
            Effect::GrantOffered {
                worker: worker.clone(),
                grant: GrantId(3),
                job,
                task,
                key: "a".into(),
                attempt: 1,
                payload: Payload::from("p"),
                inputs: vec![],
                signal: None,
                expires_at: 5,
            },
            Effect::GrantWithdrawn {
                worker: worker.clone(),
                grant: GrantId(3),
                task,
                reason,
            },
            Effect::LeaseRevoked {
                worker: worker.clone(),
                fence,
                reason,
            },
            Effect::TaskBlocked {
                job,
                task,
                requires: vec![],
            },
            Effect::TaskUnblocked { job, task },
            Effect::TaskRequeued {
                job,
                task,
                attempt: 2,
                reason,
                ready_at: 9,
            },
            Effect::TaskSuspended {
                job,
                task,
                waitpoint: "w".into(),
            },
            Effect::TaskResumed { job, task },
            Effect::TaskFinished {
                job,
                task,
                outcome: TaskOutcome::Skipped,
            },
            Effect::JobFinished {
                job,
                outcome: JobOutcome::Succeeded,
            },
            Effect::WorkerLost {
                worker: worker.clone(),
                instance: InstanceId(1),
            },
            Effect::WorkerBlacklisted {
                worker: worker.clone(),
                until: 7,
            },
            Effect::WorkerReadmitted {
                worker: worker.clone(),
            },
            Effect::WorkerDrained { worker },
        ]
    }

    #[test]
    fn labels_list_every_effect_once_in_order() {
        let labels: Vec<&str> = one_of_each().iter().map(Effect::label).collect();
        assert_eq!(labels, Effect::LABELS);
    }

    #[test]
    fn reason_and_outcome_lists_have_distinct_labels() {
        let reasons: std::collections::BTreeSet<&str> =
            EndReason::ALL.iter().map(|r| r.label()).collect();
        assert_eq!(reasons.len(), EndReason::ALL.len());
        let outcomes: std::collections::BTreeSet<&str> =
            JobOutcome::ALL.iter().map(|o| o.label()).collect();
        assert_eq!(outcomes.len(), JobOutcome::ALL.len());
    }

    #[test]
    fn task_outcome_labels_match_the_job_outcome_words() {
        let failed = TaskOutcome::Failed { error: "e".into() };
        let cancelled = TaskOutcome::Cancelled {
            reason: EndReason::JobCancelled,
        };
        assert_eq!(
            TaskOutcome::Succeeded.label(),
            JobOutcome::Succeeded.label()
        );
        assert_eq!(failed.label(), JobOutcome::Failed.label());
        assert_eq!(cancelled.label(), JobOutcome::Cancelled.label());
        assert_eq!(TaskOutcome::Skipped.label(), "skipped");
    }
}
