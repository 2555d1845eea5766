//! Reports handlers make beside the worker machine: usage reports, stream emits and
//! acknowledgements of streaming edges.
//! Each is sent on the session once it is registered, and sent again on every new
//! session until the coordinator answers it; the engine makes that safe (a usage
//! report's dedup key, an emit's position). Their sequence numbers have the top bit
//! set, so their replies never reach the machine.

use super::edges::AckReport;
use super::emits::EmitBatch;
use super::usage::UsageReport;
use crate::proto::{self, reply};
use std::collections::BTreeMap;

/// Sequence numbers of side reports start here; the machine's count up from 1.
const FIRST_SEQ: u64 = 1 << 63;

/// One report waiting for its answer.
#[derive(Debug)]
pub(crate) enum Side {
    Usage(UsageReport),
    Emit(EmitBatch),
    Ack(AckReport),
}

impl Side {
    fn command(&self, seq: u64) -> proto::WorkerCommand {
        match self {
            Side::Usage(r) => r.command(seq),
            Side::Emit(e) => e.command(seq),
            Side::Ack(a) => a.command(seq),
        }
    }

    fn answer(self, result: Option<reply::Result>) {
        match self {
            Side::Usage(r) => {
                let _ = r.answer.send(super::usage::outcome(result));
            }
            Side::Emit(e) => {
                let _ = e.answer.send(super::emits::outcome(result));
            }
            Side::Ack(a) => {
                let _ = a.answer.send(super::edges::outcome(result));
            }
        }
    }
}

/// Reports waiting for their answer, by sequence number.
#[derive(Debug, Default)]
pub(crate) struct SideReports {
    waiting: BTreeMap<u64, Side>,
    sent: u64,
}

impl SideReports {
    /// Keeps `report` until answered; returns its command.
    pub(crate) fn add(&mut self, report: Side) -> proto::WorkerCommand {
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

    /// Whether `seq` numbers a side report (answered or not).
    pub(crate) fn owns(seq: u64) -> bool {
        seq >= FIRST_SEQ
    }

    /// Hands the reply to `seq` to the handler waiting on it.
    pub(crate) fn answered(&mut self, seq: u64, result: Option<reply::Result>) {
        if let Some(report) = self.waiting.remove(&seq) {
            report.answer(result);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::worker::usage::{UsageError, UsageRecorded};
    use keel_engine::{BudgetOwner, Fence, TaskId};
    use tokio::sync::oneshot;

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
        let mut usages = SideReports::default();
        let (a, mut rx_a) = report("a");
        let (b, rx_b) = report("b");
        let first = usages.add(Side::Usage(a));
        let second = usages.add(Side::Usage(b));
        assert!(SideReports::owns(first.seq) && SideReports::owns(second.seq));
        assert!(!SideReports::owns(1));
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
