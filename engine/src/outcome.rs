//! How grants, leases, attempts, tasks and jobs end, with the stable labels logs,
//! metrics and the wire use for them.

use serde::{Deserialize, Serialize};

/// Why a grant, lease or attempt ended other than by the worker's own report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum EndReason {
    /// The worker did not accept the offer in time.
    GrantExpired,
    /// The worker gave the grant back unaccepted.
    GrantReleased,
    /// The worker stopped renewing the lease.
    LeaseExpired,
    /// The worker instance missed its heartbeats.
    WorkerLost,
    /// The worker deregistered or drained away.
    WorkerLeft,
    /// The attempt ran longer than the task's attempt timeout.
    AttemptTimedOut,
    /// The worker reported the attempt failed.
    AttemptFailed,
    /// The job was cancelled.
    JobCancelled,
    /// The job's deadline passed.
    DeadlineExceeded,
    /// The attempt parked the task on a waitpoint.
    Suspended,
    /// Its dependency group can no longer be satisfied.
    DependencyUnsatisfied,
    /// A hard limit of a budget of its job or tenant was reached.
    BudgetExhausted,
}

impl EndReason {
    /// Every reason, in declaration order.
    pub const ALL: [EndReason; 12] = [
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
        EndReason::BudgetExhausted,
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
            EndReason::BudgetExhausted => "budget_exhausted",
        }
    }
}

/// How a task ended for good.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TaskOutcome {
    /// An attempt completed.
    Succeeded,
    /// The last allowed attempt failed (or one failed permanently).
    Failed {
        /// The last attempt's error as the worker reported it.
        error: String,
    },
    /// Its dependency group could not be satisfied and its policy is to skip.
    Skipped,
    /// Stopped before it could finish.
    Cancelled {
        /// What stopped it (job cancelled, deadline, unsatisfiable dependencies).
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

/// How a job ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum JobOutcome {
    /// Every task ended and none failed.
    Succeeded,
    /// Every task ended and at least one failed.
    Failed,
    /// A client cancelled it.
    Cancelled,
    /// Its deadline passed with tasks unfinished.
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
