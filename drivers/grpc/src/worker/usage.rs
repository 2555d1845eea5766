//! Usage reports from handlers (`Task::report_usage`). They live beside the worker
//! machine rather than in it: each is sent on the session once it is registered, and
//! sent again on every new session until the coordinator answers it. The dedup key
//! makes that safe: a report counted before is answered `duplicate`, even after its
//! attempt ended. Their sequence numbers have the top bit set, so their replies never
//! reach the machine.

use crate::budget_spec::owner_from_proto;
use crate::convert::fence_to_proto;
use crate::proto::{self, reply, worker_command::Command};
use keel_engine::{BudgetOwner, Fence};
use std::collections::BTreeMap;
use tokio::sync::oneshot;

/// Sequence numbers of usage reports start here; the machine's count up from 1.
const FIRST_SEQ: u64 = 1 << 63;

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
    fn command(&self, seq: u64) -> proto::WorkerCommand {
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

/// Reports waiting for their answer, by sequence number.
#[derive(Debug, Default)]
pub(crate) struct Usages {
    waiting: BTreeMap<u64, UsageReport>,
    sent: u64,
}

impl Usages {
    /// Keeps `report` until answered; returns its command.
    pub(crate) fn add(&mut self, report: UsageReport) -> proto::WorkerCommand {
        let seq = FIRST_SEQ + self.sent;
        self.sent += 1;
        let command = report.command(seq);
        self.waiting.insert(seq, report);
        command
    }

    /// Every unanswered report's command, in the order they were made: what a new
    /// session sends once registered.
    pub(crate) fn unanswered(&self) -> Vec<proto::WorkerCommand> {
        self.waiting
            .iter()
            .map(|(seq, r)| r.command(*seq))
            .collect()
    }

    /// Whether `seq` numbers a usage report (answered or not).
    pub(crate) fn owns(seq: u64) -> bool {
        seq >= FIRST_SEQ
    }

    /// Hands the reply to `seq` to the handler waiting on it.
    pub(crate) fn answered(&mut self, seq: u64, result: Option<reply::Result>) {
        let Some(report) = self.waiting.remove(&seq) else {
            return;
        };
        let _ = report.answer.send(outcome(result));
    }
}

fn outcome(result: Option<reply::Result>) -> Result<UsageRecorded, UsageError> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use keel_engine::TaskId;

    fn report(
        key: &str,
    ) -> (
        UsageReport,
        oneshot::Receiver<Result<UsageRecorded, UsageError>>,
    ) {
        let (answer, rx) = oneshot::channel();
        let fence = Fence {
            task: TaskId::new(1),
            attempt: 1,
            epoch: 1,
        };
        let r = UsageReport {
            fence,
            budget: "llm".into(),
            dimension: "tokens".into(),
            amount: 5,
            dedup_key: key.into(),
            answer,
        };
        (r, rx)
    }

    #[test]
    fn unanswered_reports_are_resent_until_their_reply_comes() {
        let mut usages = Usages::default();
        let (a, mut rx_a) = report("a");
        let (b, rx_b) = report("b");
        let first = usages.add(a);
        let second = usages.add(b);
        assert!(Usages::owns(first.seq) && Usages::owns(second.seq));
        assert!(!Usages::owns(1));
        assert_eq!(usages.unanswered(), vec![first.clone(), second.clone()]);
        let recorded = proto::UsageRecorded {
            owner: Some(crate::convert::owner_to_proto(&BudgetOwner::Tenant(
                "acme".into(),
            ))),
            budget: "llm".into(),
            dimension: "tokens".into(),
            used: 5,
            duplicate: true,
        };
        usages.answered(second.seq, Some(reply::Result::UsageRecorded(recorded)));
        assert_eq!(usages.unanswered(), vec![first.clone()]);
        let got = rx_b.blocking_recv().unwrap().unwrap();
        assert_eq!(got.owner, BudgetOwner::Tenant("acme".into()));
        assert!(got.duplicate);
        assert!(rx_a.try_recv().is_err(), "not answered yet");
        let refusal = proto::Refusal {
            status: tonic::Code::NotFound as i32,
            reason: "unknown_budget".into(),
            message: "unknown_budget: unknown budget \"llm\"".into(),
            current_instance: None,
        };
        usages.answered(first.seq, Some(reply::Result::Refused(refusal)));
        let err = rx_a.blocking_recv().unwrap().unwrap_err();
        assert!(
            matches!(err, UsageError::Refused { ref reason, .. } if reason == "unknown_budget")
        );
        assert!(usages.unanswered().is_empty());
    }
}
