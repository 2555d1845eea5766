//! Typed refusals. Every rejection names the ids involved, has a stable `code()` for
//! wire protocols and logs, and says whether retrying the same command can help.

use crate::ids::{GrantId, InstanceId, JobId, TaskId, WorkerId};
use serde::{Deserialize, Serialize};
use thiserror::Error;

#[derive(Clone, Debug, PartialEq, Eq, Error, Serialize, Deserialize)]
pub enum Rejection {
    #[error("invalid job: {0}")]
    InvalidJob(JobError),
    #[error("job name {name:?} is taken by {existing} with a different spec")]
    JobNameConflict { name: String, existing: JobId },
    #[error("tenant {tenant:?} already has {limit} jobs in flight")]
    TenantJobLimit { tenant: String, limit: u32 },
    #[error("unknown job {job}")]
    UnknownJob { job: JobId },
    #[error("unknown task {task}")]
    UnknownTask { task: TaskId },
    #[error("invalid worker registration for {worker}: {why}")]
    InvalidWorker { worker: WorkerId, why: String },
    #[error("capability token {token:?} is invalid: {why}")]
    CapabilityToken { token: String, why: CapabilityIssue },
    #[error("too many registered workers (limit {limit})")]
    TooManyWorkers { limit: u32 },
    #[error("unknown worker {worker}; register first")]
    UnknownWorker { worker: WorkerId },
    #[error("worker {worker} instance {presented} is not the current instance {current}")]
    StaleInstance {
        worker: WorkerId,
        presented: InstanceId,
        current: InstanceId,
    },
    #[error("worker {worker} instance {instance} was declared lost; register a new instance")]
    WorkerLost {
        worker: WorkerId,
        instance: InstanceId,
    },
    #[error(
        "worker {worker} instance {instance} is already registered with another configuration"
    )]
    RegistrationConflict {
        worker: WorkerId,
        instance: InstanceId,
    },
    #[error("unknown or expired grant {grant}")]
    UnknownGrant { grant: GrantId },
    #[error("grant {grant} was offered to {owner}, not {worker}")]
    GrantNotYours {
        grant: GrantId,
        owner: WorkerId,
        worker: WorkerId,
    },
    #[error("stale fence on {task}: saw attempt {attempt_seen} epoch {epoch_seen}, current attempt {attempt_current} epoch {epoch_current}")]
    StaleFence {
        task: TaskId,
        attempt_seen: u32,
        epoch_seen: u64,
        attempt_current: u32,
        epoch_current: u64,
    },
    #[error("{worker} does not hold the lease on {task}")]
    NotLeaseHolder { task: TaskId, worker: WorkerId },
    #[error("task {task} is not suspended on waitpoint {waitpoint:?}")]
    NotWaiting { task: TaskId, waitpoint: String },
    #[error("task {task} already received {limit} signals")]
    TooManySignals { task: TaskId, limit: u32 },
    #[error("{field} is invalid: {why}")]
    InvalidName { field: String, why: String },
    #[error("{field} is too large: {size} bytes, limit {limit}")]
    TooLarge {
        field: String,
        size: u64,
        limit: u64,
    },
    /// An engine-wide limit (a `Limits` field such as `max_stored_bytes`) is reached;
    /// `value` is the limit. Room comes back as jobs finish and are forgotten.
    #[error("limit {limit} ({value}) reached")]
    LimitReached { limit: String, value: u64 },
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
        }
    }

    /// Every code [`Rejection::code`] returns, in declaration order.
    pub const CODES: [&'static str; 20] = [
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
    ];

    /// Whether the same command may succeed later without being changed.
    pub fn retryable(&self) -> bool {
        matches!(
            self,
            Rejection::TenantJobLimit { .. }
                | Rejection::TooManyWorkers { .. }
                | Rejection::NotWaiting { .. }
                | Rejection::LimitReached { .. }
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

/// Why a job spec was refused, naming the tasks involved.
#[derive(Clone, Debug, PartialEq, Eq, Error, Serialize, Deserialize)]
pub enum JobError {
    #[error("the job has no tasks")]
    Empty,
    #[error("{field} is invalid: {why}")]
    BadName { field: String, why: String },
    #[error("{count} tasks, limit {limit}")]
    TooManyTasks { count: u64, limit: u32 },
    #[error("task key {key:?} appears more than once")]
    DuplicateTask { key: String },
    #[error("task {task:?} depends on unknown task {dep:?}")]
    UnknownDependency { task: String, dep: String },
    #[error("task {task:?} lists dependency {dep:?} twice")]
    DuplicateDependency { task: String, dep: String },
    #[error("the job's result names unknown task {key:?}")]
    UnknownResultTask { key: String },
    #[error("the job's result names task {key:?} twice")]
    DuplicateResultTask { key: String },
    #[error("dependency cycle: {}", cycle.join(" -> "))]
    Cycle { cycle: Vec<String> },
    #[error("task {task:?} has an empty dependency group")]
    EmptyGroup { task: String },
    #[error("task {task:?} needs a quorum of {k} out of {n} upstream tasks")]
    QuorumOutOfRange { task: String, k: u32, n: u32 },
    #[error("task {task:?} has {count} dependencies, limit {limit}")]
    TooManyDependencies {
        task: String,
        count: u64,
        limit: u32,
    },
    #[error("the dependency chain through {task:?} is {depth} deep, limit {limit}")]
    TooDeep {
        task: String,
        depth: u32,
        limit: u32,
    },
    #[error("task {task:?} payload is {bytes} bytes, limit {limit}")]
    PayloadTooLarge {
        task: String,
        bytes: u64,
        limit: u32,
    },
    #[error("task {task:?} requires {count} capabilities, limit {limit}")]
    TooManyCapabilities {
        task: String,
        count: u64,
        limit: u32,
    },
    #[error("task {task:?} capability {token:?}: {why}")]
    Capability {
        task: String,
        token: String,
        why: CapabilityIssue,
    },
    #[error("task {task:?} retry policy: {why}")]
    BadRetry { task: String, why: String },
    #[error("{}{field}: {why}", task.as_ref().map(|t| format!("task {t:?} ")).unwrap_or_default())]
    BadField {
        task: Option<String>,
        field: String,
        why: String,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Error, Serialize, Deserialize)]
pub enum CapabilityIssue {
    #[error("empty")]
    Empty,
    #[error("longer than {limit} bytes")]
    TooLong { limit: u32 },
    #[error("contains whitespace")]
    Whitespace,
    #[error("contains a control character")]
    Control,
    #[error("listed twice")]
    Duplicate,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_list_every_rejection_once_in_order() {
        let (w, t, i) = (WorkerId::new("w"), TaskId(1), InstanceId(1));
        let text = || String::from("x");
        let every = [
            Rejection::InvalidJob(JobError::Empty),
            Rejection::JobNameConflict {
                name: text(),
                existing: JobId(1),
            },
            Rejection::TenantJobLimit {
                tenant: text(),
                limit: 1,
            },
            Rejection::UnknownJob { job: JobId(1) },
            Rejection::UnknownTask { task: t },
            Rejection::InvalidWorker {
                worker: w.clone(),
                why: text(),
            },
            Rejection::CapabilityToken {
                token: text(),
                why: CapabilityIssue::Empty,
            },
            Rejection::TooManyWorkers { limit: 1 },
            Rejection::UnknownWorker { worker: w.clone() },
            Rejection::StaleInstance {
                worker: w.clone(),
                presented: i,
                current: i,
            },
            Rejection::WorkerLost {
                worker: w.clone(),
                instance: i,
            },
            Rejection::RegistrationConflict {
                worker: w.clone(),
                instance: i,
            },
            Rejection::UnknownGrant { grant: GrantId(1) },
            Rejection::GrantNotYours {
                grant: GrantId(1),
                owner: w.clone(),
                worker: w.clone(),
            },
            Rejection::StaleFence {
                task: t,
                attempt_seen: 1,
                epoch_seen: 1,
                attempt_current: 1,
                epoch_current: 1,
            },
            Rejection::NotLeaseHolder { task: t, worker: w },
            Rejection::NotWaiting {
                task: t,
                waitpoint: text(),
            },
            Rejection::TooManySignals { task: t, limit: 1 },
            Rejection::InvalidName {
                field: text(),
                why: text(),
            },
            Rejection::TooLarge {
                field: text(),
                size: 2,
                limit: 1,
            },
        ];
        let codes: Vec<&str> = every.iter().map(Rejection::code).collect();
        assert_eq!(codes, Rejection::CODES);
    }
}
