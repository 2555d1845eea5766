//! Usage reports from handlers (`Task::report_usage`), sent beside the worker machine
//! (`side.rs`) until answered. The dedup key makes resending safe: a report counted
//! before is answered `duplicate`, even after its attempt ended.

use crate::budget_spec::owner_from_proto;
use crate::convert::fence_to_proto;
use crate::proto::{self, reply, worker_command::Command};
use keel_engine::{BudgetOwner, Fence};
use tokio::sync::oneshot;

/// A usage report the coordinator counted (or had counted: `duplicate`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsageRecorded {
    /// Whose budget it counted against: the job's, or its tenant's.
    pub owner: BudgetOwner,
    /// The budget.
    pub budget: String,
    /// The dimension.
    pub dimension: String,
    /// The dimension's use so far (this period, for a tenant budget).
    pub used: u64,
    /// A report with this dedup key was counted before; nothing changed.
    pub duplicate: bool,
}

/// Why a usage report was not counted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UsageError {
    /// The coordinator refused it: `reason` is the stable code (`unknown_budget`,
    /// `invalid_usage`, `limit_reached`, or a fencing one such as `stale_fence` when
    /// the attempt is no longer this worker's).
    #[error("{message}")]
    Refused {
        /// The stable rejection code.
        reason: String,
        /// The coordinator's text.
        message: String,
    },
    /// The worker stopped before the coordinator answered.
    #[error("the worker stopped before the usage report was answered")]
    Stopped,
}

/// One report from a handler, with where its answer goes.
#[derive(Debug)]
pub(crate) struct UsageReport {
    pub fence: Fence,
    pub budget: String,
    pub dimension: String,
    pub amount: u64,
    pub dedup_key: String,
    pub answer: oneshot::Sender<Result<UsageRecorded, UsageError>>,
}

impl UsageReport {
    pub(crate) fn command(&self, seq: u64) -> proto::WorkerCommand {
        proto::WorkerCommand {
            seq,
            command: Some(Command::ReportUsage(proto::ReportUsage {
                fence: Some(fence_to_proto(self.fence)),
                budget: self.budget.clone(),
                dimension: self.dimension.clone(),
                amount: self.amount,
                dedup_key: self.dedup_key.clone(),
            })),
        }
    }
}

pub(crate) fn outcome(result: Option<reply::Result>) -> Result<UsageRecorded, UsageError> {
    let unexpected = |what: &str| UsageError::Refused {
        reason: "invalid_argument".into(),
        message: format!("the coordinator answered a usage report with {what}"),
    };
    match result {
        Some(reply::Result::UsageRecorded(r)) => Ok(UsageRecorded {
            owner: r
                .owner
                .as_ref()
                .and_then(owner_from_proto)
                .ok_or_else(|| unexpected("no budget owner"))?,
            budget: r.budget,
            dimension: r.dimension,
            used: r.used,
            duplicate: r.duplicate,
        }),
        Some(reply::Result::Refused(r)) => Err(UsageError::Refused {
            reason: r.reason,
            message: r.message,
        }),
        _ => Err(unexpected("another reply")),
    }
}
