//! Typed refusals. Every rejection names the ids involved, has a stable `code()` for
//! wire protocols and logs, and says whether retrying the same command can help.

use crate::ids::{GrantId, InstanceId, JobId, TaskId, WorkerId};
use serde::{Deserialize, Serialize};
use thiserror::Error;

pub use crate::job_error::{CapabilityIssue, JobError};

/// Why the engine refused an input. A refused input changes nothing in the state.
#[derive(Clone, Debug, PartialEq, Eq, Error, Serialize, Deserialize)]
pub enum Rejection {
    /// The submitted spec breaks a validation rule; the inner error names the task.
    #[error("invalid job: {0}")]
    InvalidJob(JobError),
    /// A submission reused a live job's name with a different spec (the same spec is
    /// answered with the existing job instead, so a client retry is idempotent).
    #[error("job name {name:?} is taken by {existing} with a different spec")]
    JobNameConflict {
        /// The name the submission asked for.
        name: String,
        /// The live job that holds the name.
        existing: JobId,
    },
    /// The tenant is at its in-flight job quota; room comes back as its jobs end.
    #[error("tenant {tenant:?} already has {limit} jobs in flight")]
    TenantJobLimit {
        /// The tenant named in the submission.
        tenant: String,
        /// The quota it is at (`Limits::max_jobs_in_flight_per_tenant`).
        limit: u32,
    },
    /// No job with this id is live or remembered.
    #[error("unknown job {job}")]
    UnknownJob {
        /// The id the command named.
        job: JobId,
    },
    /// No task with this id is live or remembered.
    #[error("unknown task {task}")]
    UnknownTask {
        /// The id the command named.
        task: TaskId,
    },
    /// A registration broke a limit: worker id, capability or lane count, concurrency.
    #[error("invalid worker registration for {worker}: {why}")]
    InvalidWorker {
        /// The worker that tried to register.
        worker: WorkerId,
        /// Which field was wrong and how.
        why: String,
    },
    /// A capability a worker advertised is malformed.
    #[error("capability token {token:?} is invalid: {why}")]
    CapabilityToken {
        /// The offending token as sent.
        token: String,
        /// What is wrong with it.
        why: CapabilityIssue,
    },
    /// The engine already tracks `Limits::max_workers` workers.
    #[error("too many registered workers (limit {limit})")]
    TooManyWorkers {
        /// The worker limit in force.
        limit: u32,
    },
    /// The worker sent a command before registering (or after it was forgotten).
    #[error("unknown worker {worker}; register first")]
    UnknownWorker {
        /// The worker that sent the command.
        worker: WorkerId,
    },
    /// A command came from an older process of a worker that has since re-registered.
    #[error("worker {worker} instance {presented} is not the current instance {current}")]
    StaleInstance {
        /// The worker the command names.
        worker: WorkerId,
        /// The instance the sender claims to be.
        presented: InstanceId,
        /// The instance the engine accepts commands from.
        current: InstanceId,
    },
    /// The instance missed its heartbeats and its leases were taken back; only a new
    /// instance may speak for this worker.
    #[error("worker {worker} instance {instance} was declared lost; register a new instance")]
    WorkerLost {
        /// The worker declared lost.
        worker: WorkerId,
        /// The lost instance.
        instance: InstanceId,
    },
    /// A second registration of the same instance disagrees with the first (lanes,
    /// capabilities or slots); re-registering identically is accepted.
    #[error(
        "worker {worker} instance {instance} is already registered with another configuration"
    )]
    RegistrationConflict {
        /// The worker registering.
        worker: WorkerId,
        /// The instance already registered.
        instance: InstanceId,
    },
    /// The grant was never offered, already accepted, or its offer timed out.
    #[error("unknown or expired grant {grant}")]
    UnknownGrant {
        /// The grant the worker tried to accept.
        grant: GrantId,
    },
    /// A worker tried to accept a grant offered to someone else.
    #[error("grant {grant} was offered to {owner}, not {worker}")]
    GrantNotYours {
        /// The grant in question.
        grant: GrantId,
        /// The worker it was offered to.
        owner: WorkerId,
        /// The worker that tried to accept it.
        worker: WorkerId,
    },
    /// The command carries the fence of a superseded attempt or lease: a zombie worker,
    /// or a message delayed past a newer lease, is speaking.
    #[error("stale fence on {task}: saw attempt {attempt_seen} epoch {epoch_seen}, current attempt {attempt_current} epoch {epoch_current}")]
    StaleFence {
        /// The task the command is about.
        task: TaskId,
        /// The attempt number the sender holds.
        attempt_seen: u32,
        /// The task's lease epoch in the sender's fence.
        epoch_seen: u64,
        /// The attempt the engine considers current.
        attempt_current: u32,
        /// The task's lease epoch now.
        epoch_current: u64,
    },
    /// The task's live lease belongs to another worker, or the task has none.
    #[error("{worker} does not hold the lease on {task}")]
    NotLeaseHolder {
        /// The task the command is about.
        task: TaskId,
        /// The worker that sent the command.
        worker: WorkerId,
    },
    /// A signal named a waitpoint the task is not suspended on (yet, or any more).
    #[error("task {task} is not suspended on waitpoint {waitpoint:?}")]
    NotWaiting {
        /// The task the signal was for.
        task: TaskId,
        /// The waitpoint the signal named.
        waitpoint: String,
    },
    /// The task's buffered signals reached `Limits::max_signals_per_task`.
    #[error("task {task} already received {limit} signals")]
    TooManySignals {
        /// The task the signal was for.
        task: TaskId,
        /// The per-task signal limit.
        limit: u32,
    },
    /// A name in a command (a waitpoint, a signal's idempotency key) is malformed.
    #[error("{field} is invalid: {why}")]
    InvalidName {
        /// Which input field held the name.
        field: String,
        /// What is wrong with it.
        why: String,
    },
    /// A byte field exceeds its configured limit.
    #[error("{field} is too large: {size} bytes, limit {limit}")]
    TooLarge {
        /// Which input field is too large.
        field: String,
        /// Its size in bytes.
        size: u64,
        /// The limit in bytes.
        limit: u64,
    },
    /// An engine-wide limit (a `Limits` field such as `max_stored_bytes`) is reached;
    /// `value` is the limit. Room comes back as jobs finish and are forgotten.
    #[error("limit {limit} ({value}) reached")]
    LimitReached {
        /// The name of the `Limits` field.
        limit: String,
        /// Its configured value.
        value: u64,
    },
    /// A completion whose output does not fit `limit` (a `Limits` field: the output
    /// itself, its job's outputs, or a downstream task's inputs would come to `bytes`).
    /// The attempt is failed permanently with this refusal as its error: the same
    /// output would never fit on a retry.
    #[error("output of {task} refused: {bytes} bytes over limit {limit} ({max}); the attempt failed permanently")]
    OutputOverLimit {
        /// The task whose completion was refused.
        task: TaskId,
        /// The name of the `Limits` field the output would break.
        limit: String,
        /// What the limited total would have come to with this output.
        bytes: u64,
        /// The limit's configured value.
        max: u64,
    },
    /// An emit whose frames do not fit `limit` (a `Limits` field: the emit itself, or
    /// its job's stored output bytes would come to `bytes`). Nothing is appended; the
    /// attempt goes on and may emit less.
    #[error("frames of {task} refused: {bytes} bytes over limit {limit} ({max})")]
    StreamOverLimit {
        /// The task whose stream the frames were for.
        task: TaskId,
        /// The name of the `Limits` field the frames would break.
        limit: String,
        /// What the limited total would have come to with these frames.
        bytes: u64,
        /// The limit's configured value.
        max: u64,
    },
    /// An emit starts past the frames its attempt has appended: frames in between were
    /// lost on the way. Nothing is appended; the sender resends from `expected`.
    #[error(
        "frames of {task} refused: they start at {got}, but the attempt has appended {expected}"
    )]
    StreamGap {
        /// The task whose stream the frames were for.
        task: TaskId,
        /// The frames the attempt has appended.
        expected: u64,
        /// Where the refused emit started.
        got: u64,
    },
    /// A bounded edge from the task to `consumer` has no room for another frame: the
    /// consumer has not acknowledged enough. Nothing is appended; under `block` the
    /// producer sends the frames again later, under `error` its attempt has failed.
    #[error("frames of {task} refused: the edge to {consumer} is full ({capacity} frames unacknowledged)")]
    StreamFull {
        /// The producing task.
        task: TaskId,
        /// The consumer whose edge is full.
        consumer: TaskId,
        /// The edge's capacity.
        capacity: u32,
    },
    /// The task reads no stream of a task by that key.
    #[error("{task} has no streaming edge from {from:?}")]
    UnknownEdge {
        /// The consuming task.
        task: TaskId,
        /// The producer's key as given.
        from: String,
    },
    /// An acknowledgement names a cursor past the producer's last frame.
    #[error("{task} acknowledges {from:?} up to {cursor}, but it has {end} frames")]
    AckPastEnd {
        /// The consuming task.
        task: TaskId,
        /// The producer's key.
        from: String,
        /// The acknowledged cursor.
        cursor: u64,
        /// The producer's next sequence number.
        end: u64,
    },
    /// A new configuration is refused: a field is below its floor.
    #[error("configuration refused: {field}: {problem}")]
    InvalidConfig {
        /// The field as spelled in `Config`, nested ones dotted.
        field: String,
        /// What is wrong with it.
        problem: String,
    },
    /// A schedule's spec breaks a rule (a bad cron field, zone, interval or job).
    #[error("invalid schedule: {problem}")]
    InvalidSchedule {
        /// What is wrong, naming the field.
        problem: String,
    },
    /// No schedule has this name.
    #[error("unknown schedule {name:?}")]
    UnknownSchedule {
        /// The name the command gave.
        name: String,
    },
    /// A schedule of this name exists with a different spec (the same spec is
    /// answered as a duplicate); delete it first to replace it.
    #[error("schedule name {name:?} is taken by a different schedule")]
    ScheduleNameConflict {
        /// The name the command gave.
        name: String,
    },
    /// Neither the attempt's job nor its tenant has a budget of this name.
    #[error("unknown budget {budget:?}")]
    UnknownBudget {
        /// The name the report gave.
        budget: String,
    },
    /// A usage report names a dimension the budget does not limit, or one the engine
    /// counts itself.
    #[error("invalid usage report: {problem}")]
    InvalidUsage {
        /// What is wrong with it.
        problem: String,
    },
}

impl Rejection {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Rejection::InvalidJob(_) => "invalid_job",
            Rejection::JobNameConflict { .. } => "job_name_conflict",
            Rejection::TenantJobLimit { .. } => "tenant_job_limit",
            Rejection::UnknownJob { .. } => "unknown_job",
            Rejection::UnknownTask { .. } => "unknown_task",
            Rejection::InvalidWorker { .. } => "invalid_worker",
            Rejection::CapabilityToken { .. } => "capability_token",
            Rejection::TooManyWorkers { .. } => "too_many_workers",
            Rejection::UnknownWorker { .. } => "unknown_worker",
            Rejection::StaleInstance { .. } => "stale_instance",
            Rejection::WorkerLost { .. } => "worker_lost",
            Rejection::RegistrationConflict { .. } => "registration_conflict",
            Rejection::UnknownGrant { .. } => "unknown_grant",
            Rejection::GrantNotYours { .. } => "grant_not_yours",
            Rejection::StaleFence { .. } => "stale_fence",
            Rejection::NotLeaseHolder { .. } => "not_lease_holder",
            Rejection::NotWaiting { .. } => "not_waiting",
            Rejection::TooManySignals { .. } => "too_many_signals",
            Rejection::InvalidName { .. } => "invalid_name",
            Rejection::TooLarge { .. } => "too_large",
            Rejection::LimitReached { .. } => "limit_reached",
            Rejection::OutputOverLimit { .. } => "output_over_limit",
            Rejection::StreamOverLimit { .. } => "stream_over_limit",
            Rejection::StreamGap { .. } => "stream_gap",
            Rejection::StreamFull { .. } => "stream_full",
            Rejection::UnknownEdge { .. } => "unknown_edge",
            Rejection::AckPastEnd { .. } => "ack_past_end",
            Rejection::InvalidConfig { .. } => "invalid_config",
            Rejection::InvalidSchedule { .. } => "invalid_schedule",
            Rejection::UnknownSchedule { .. } => "unknown_schedule",
            Rejection::ScheduleNameConflict { .. } => "schedule_name_conflict",
            Rejection::UnknownBudget { .. } => "unknown_budget",
            Rejection::InvalidUsage { .. } => "invalid_usage",
        }
    }

    /// Every code [`Rejection::code`] returns, in declaration order.
    pub const CODES: [&'static str; 33] = [
        "invalid_job",
        "job_name_conflict",
        "tenant_job_limit",
        "unknown_job",
        "unknown_task",
        "invalid_worker",
        "capability_token",
        "too_many_workers",
        "unknown_worker",
        "stale_instance",
        "worker_lost",
        "registration_conflict",
        "unknown_grant",
        "grant_not_yours",
        "stale_fence",
        "not_lease_holder",
        "not_waiting",
        "too_many_signals",
        "invalid_name",
        "too_large",
        "limit_reached",
        "output_over_limit",
        "stream_over_limit",
        "stream_gap",
        "stream_full",
        "unknown_edge",
        "ack_past_end",
        "invalid_config",
        "invalid_schedule",
        "unknown_schedule",
        "schedule_name_conflict",
        "unknown_budget",
        "invalid_usage",
    ];

    /// Whether the same command may succeed later without being changed.
    pub fn retryable(&self) -> bool {
        matches!(
            self,
            Rejection::TenantJobLimit { .. }
                | Rejection::TooManyWorkers { .. }
                | Rejection::NotWaiting { .. }
                | Rejection::LimitReached { .. }
                | Rejection::StreamFull { .. }
        )
    }

    /// A fencing refusal: the sender is acting on an attempt that is no longer its own.
    pub fn is_fencing(&self) -> bool {
        matches!(
            self,
            Rejection::StaleFence { .. }
                | Rejection::NotLeaseHolder { .. }
                | Rejection::StaleInstance { .. }
                | Rejection::WorkerLost { .. }
        )
    }
}

#[cfg(test)]
#[path = "reject_tests.rs"]
mod tests;
