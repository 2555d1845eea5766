//! What the engine says back: one reply per command, and effects addressed to workers
//! and to whoever watches a job.

use crate::ids::{Fence, GrantId, InstanceId, JobId, TaskId, Time, WorkerId};
use crate::reject::Rejection;
use crate::spec::Payload;
use serde::{Deserialize, Serialize};

pub use crate::outcome::{EndReason, JobOutcome, TaskOutcome};

/// Everything one `apply` produced: the answer to the command and the effects the
/// drivers must deliver, in the order the engine decided them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outputs {
    /// `None` only for `Tick`.
    pub reply: Option<Result<Accepted, Rejection>>,
    /// Messages for workers and job watchers; see [`Effect::recipient`].
    pub effects: Vec<Effect>,
}

/// What an accepted command did. `duplicate` flags mark a command the engine had
/// already applied (a client or worker retry) and answered again without a change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Accepted {
    /// Tasks are numbered `first_task .. first_task + tasks` in spec order.
    /// `duplicate` is set when the same spec was already submitted under this name.
    JobSubmitted {
        /// The new job, or the existing one for a duplicate.
        job: JobId,
        /// The id of the spec's first task.
        first_task: TaskId,
        /// How many tasks the job has.
        tasks: u32,
        /// The same spec was already live under this name.
        duplicate: bool,
    },
    /// The job was cancelled (its running attempts are revoked).
    JobCancelled {
        /// The job named in the command.
        job: JobId,
        /// The job had already ended; nothing changed.
        already_finished: bool,
    },
    /// A signal was stored for its task.
    Signalled {
        /// The task the signal was for.
        task: TaskId,
        /// The task left its waitpoint and is ready to run again.
        resumed: bool,
        /// A signal with this idempotency key was already stored.
        duplicate: bool,
    },
    /// The worker instance may now ask for work.
    Registered {
        /// The worker that registered.
        worker: WorkerId,
        /// Its instance, which fences its later commands.
        instance: InstanceId,
        /// This instance was already registered with the same configuration.
        duplicate: bool,
    },
    /// Heartbeat, work request, drain, deregister, release.
    Ok,
    /// A schedule was added, paused, resumed or deleted.
    ScheduleUpdated {
        /// The schedule.
        name: String,
        /// Its next due time; `None` when paused, deleted or never due again.
        next_due: Option<Time>,
        /// Nothing changed: the same spec was already added, or the schedule was
        /// already paused or running.
        duplicate: bool,
    },
    /// A usage report was counted (or had been: `duplicate`).
    UsageRecorded {
        /// Whose budget it counted against.
        owner: crate::budget_spec::BudgetOwner,
        /// The budget.
        budget: String,
        /// The dimension.
        dimension: String,
        /// The dimension's use so far in the budget (its period, for a tenant's).
        used: u64,
        /// A report with this dedup key was already counted; nothing changed.
        duplicate: bool,
    },
    /// Frames were appended to the attempt's task stream (or had been: `duplicate`).
    Emitted {
        /// The attempt that emitted them.
        fence: Fence,
        /// How many frames the attempt has appended in all: where its next emit starts.
        /// Under a full `block` edge this can stop short of the frames sent; the rest
        /// are sent again from here once the consumer has acknowledged more.
        next: u64,
        /// Frames the stream's mode let go to keep within its bound, by this emit.
        dropped: u64,
        /// Every frame sent was already appended; nothing changed.
        duplicate: bool,
    },
    /// A consumer's acknowledged cursor on one of its edges moved (or already was at
    /// least there: `duplicate`).
    Acked {
        /// The consuming attempt.
        fence: Fence,
        /// The edge's acknowledged cursor now.
        acked: u64,
        /// The cursor was already acknowledged; nothing changed.
        duplicate: bool,
    },
    /// A grant was accepted and the attempt now holds a lease.
    LeaseStarted {
        /// The fence every later command on this attempt must carry.
        fence: Fence,
        /// When the lease lapses unless renewed.
        expires_at: Time,
        /// The grant was already accepted by this worker.
        duplicate: bool,
    },
    /// The lease was extended.
    Renewed {
        /// The attempt whose lease was renewed.
        fence: Fence,
        /// The new expiry.
        expires_at: Time,
    },
    /// The attempt's success is recorded.
    Completed {
        /// The attempt that completed.
        fence: Fence,
        /// The completion was already recorded.
        duplicate: bool,
    },
    /// The attempt's failure is recorded.
    Failed {
        /// The attempt that failed.
        fence: Fence,
        /// The failure was already recorded.
        duplicate: bool,
        /// When the next attempt may start, or `None` when the task will not retry.
        retry_at: Option<Time>,
    },
    /// The attempt parked its task on a waitpoint.
    Suspended {
        /// The attempt that suspended.
        fence: Fence,
        /// The suspension was already recorded.
        duplicate: bool,
    },
}

/// One upstream task's output as a grant carries it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskInput {
    /// The upstream task's key in the job's spec.
    pub key: String,
    /// Its output when it has succeeded; `None` (absent, not empty) when it was
    /// skipped, failed (allowed), cancelled or has not finished yet (an any-of or
    /// quorum group can be satisfied before all of its tasks end).
    pub output: Option<Payload>,
}

/// A consequence of an input that someone outside the engine must hear about: a
/// worker (grants, revocations) or whoever watches a job (task and job progress).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Effect {
    /// A task is offered to a worker; it runs once the worker accepts the grant.
    GrantOffered {
        /// The worker the grant is for.
        worker: WorkerId,
        /// What the worker presents to accept it.
        grant: GrantId,
        /// The job the task belongs to.
        job: JobId,
        /// The task offered.
        task: TaskId,
        /// The task's key in its job's spec, for logs and handlers.
        key: String,
        /// Which attempt this grant would start, from 1.
        attempt: u32,
        /// The task's input as the spec gave it.
        payload: Payload,
        /// The outputs of the task's upstream tasks, in its group's order.
        inputs: Vec<TaskInput>,
        /// The payload of the signal that resumed the task, when one did.
        signal: Option<Payload>,
        /// The keys of the tasks whose streams it reads, in its spec's order.
        streams: Vec<String>,
        /// The offer lapses unaccepted at this time and the task is offered again.
        expires_at: Time,
    },
    /// An offer is taken back before the worker accepted it.
    GrantWithdrawn {
        /// The worker the grant was offered to.
        worker: WorkerId,
        /// The grant that is no longer valid.
        grant: GrantId,
        /// The task it offered.
        task: TaskId,
        /// Why it was withdrawn.
        reason: EndReason,
    },
    /// The worker must stop running this attempt; its fence is no longer valid.
    LeaseRevoked {
        /// The worker holding the lease.
        worker: WorkerId,
        /// The attempt that must stop.
        fence: Fence,
        /// Why it was revoked.
        reason: EndReason,
    },
    /// A ready task cannot be placed: no live worker has every capability it needs.
    TaskBlocked {
        /// The job the task belongs to.
        job: JobId,
        /// The task that waits.
        task: TaskId,
        /// No single live worker advertises all of these.
        requires: Vec<String>,
    },
    /// A blocked task can be placed again (a capable worker registered).
    TaskUnblocked {
        /// The job the task belongs to.
        job: JobId,
        /// The task that can run.
        task: TaskId,
    },
    /// An attempt ended without finishing the task; another attempt will follow.
    TaskRequeued {
        /// The job the task belongs to.
        job: JobId,
        /// The task requeued.
        task: TaskId,
        /// The attempt that ended.
        attempt: u32,
        /// Why it ended.
        reason: EndReason,
        /// When the task is ready again (after backoff).
        ready_at: Time,
    },
    /// The task is parked until a signal reaches its waitpoint or it times out.
    TaskSuspended {
        /// The job the task belongs to.
        job: JobId,
        /// The task parked.
        task: TaskId,
        /// The name a signal must carry to resume it.
        waitpoint: String,
    },
    /// A signal arrived; the suspended task is ready again.
    TaskResumed {
        /// The job the task belongs to.
        job: JobId,
        /// The task resumed.
        task: TaskId,
    },
    /// The task reached its final state; no attempt follows.
    TaskFinished {
        /// The job the task belongs to.
        job: JobId,
        /// The task that ended.
        task: TaskId,
        /// How it ended.
        outcome: TaskOutcome,
    },
    /// Every task of the job is final, or the job was stopped as a whole.
    JobFinished {
        /// The job that ended.
        job: JobId,
        /// How it ended.
        outcome: JobOutcome,
    },
    /// The instance missed its heartbeats; its leases were revoked and its tasks requeued.
    WorkerLost {
        /// The worker lost.
        worker: WorkerId,
        /// The instance that went silent; a new one must register.
        instance: InstanceId,
    },
    /// The worker failed too many attempts recently and gets no grants for a while.
    WorkerBlacklisted {
        /// The worker set aside.
        worker: WorkerId,
        /// When it is offered work again.
        until: Time,
    },
    /// A blacklisted worker's time is up; it gets grants again.
    WorkerReadmitted {
        /// The worker readmitted.
        worker: WorkerId,
    },
    /// A draining worker holds nothing more.
    WorkerDrained {
        /// The worker that may now exit.
        worker: WorkerId,
    },
    /// A schedule submitted its run due at `due` as job `job`.
    ScheduleFired {
        /// The schedule's name.
        schedule: String,
        /// The due time the run is for.
        due: Time,
        /// The run.
        job: JobId,
        /// The run's first task (its tasks are numbered from here in spec order).
        first_task: TaskId,
    },
    /// A budget's use of a dimension reached its soft or hard limit (each limit is
    /// reported once; a tenant budget's once per period).
    BudgetLimitReached {
        /// Whose budget.
        owner: crate::budget_spec::BudgetOwner,
        /// The budget.
        budget: String,
        /// The dimension.
        dimension: String,
        /// Soft (a warning) or hard (grants stop).
        kind: crate::budget_spec::LimitKind,
        /// The use that reached it.
        used: u64,
        /// The limit.
        limit: u64,
    },
}

/// Who an effect is for, so a driver can route it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Recipient {
    /// The worker's session.
    Worker(WorkerId),
    /// Whoever follows the job (clients waiting on it, the console).
    Job(JobId),
    /// No one session: operators (logs and metrics), e.g. a tenant budget's limit.
    Operator,
}

impl Effect {
    /// Who must hear about this effect.
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
            | Effect::JobFinished { job, .. }
            | Effect::ScheduleFired { job, .. } => Recipient::Job(*job),
            Effect::BudgetLimitReached { owner, .. } => match owner {
                crate::budget_spec::BudgetOwner::Job(job) => Recipient::Job(*job),
                crate::budget_spec::BudgetOwner::Tenant(_) => Recipient::Operator,
            },
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
            Effect::ScheduleFired { .. } => "schedule_fired",
            Effect::BudgetLimitReached { .. } => "budget_limit_reached",
        }
    }

    /// Every effect label, in declaration order.
    pub const LABELS: [&'static str; 16] = [
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
        "schedule_fired",
        "budget_limit_reached",
    ];
}

#[cfg(test)]
#[path = "output_tests.rs"]
mod tests;
