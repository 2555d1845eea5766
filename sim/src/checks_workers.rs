//! What the checker makes of a worker command the coordinator answered: leases started
//! and ended in the shadow, completions committed once and only from the live lease,
//! frames appended only for the live lease, and the counts scenarios filter on.

use super::Checker;
use crate::check::Check;
use crate::event_ids::Ids;
use crate::vocabulary::command_kind;
use keel_engine::{Accepted, Fence, Rejection, Time, WorkerCommand, WorkerId};

impl Checker {
    /// Whom a worker command concerns: its fence, or the grant's task.
    fn command_ids<'a>(&self, worker: &'a WorkerId, command: &WorkerCommand) -> Ids<'a> {
        let ids = Ids::worker(worker);
        match command {
            WorkerCommand::Renew { fence }
            | WorkerCommand::Complete { fence, .. }
            | WorkerCommand::Fail { fence, .. }
            | WorkerCommand::Suspend { fence, .. }
            | WorkerCommand::ReportUsage { fence, .. }
            | WorkerCommand::Emit { fence, .. } => ids.fence(*fence),
            WorkerCommand::AcceptGrant { grant } | WorkerCommand::ReleaseGrant { grant } => {
                match self.shadow.grant_task(*grant) {
                    Some((task, attempt)) => Ids {
                        task: Some(task),
                        attempt: Some(attempt),
                        ..ids
                    },
                    None => ids,
                }
            }
            _ => ids,
        }
    }

    pub(super) fn worker_reply(
        &mut self,
        now: Time,
        worker: &WorkerId,
        command: &WorkerCommand,
        reply: &Result<Accepted, Rejection>,
    ) {
        let ids = self.command_ids(worker, command);
        let accepted = match reply {
            Err(r) => {
                self.count(now, "reject", r.code(), ids);
                self.count(now, command_kind(command), r.code(), ids);
                return;
            }
            Ok(accepted) => accepted,
        };
        self.accepted(now, worker, command, accepted, ids);
    }

    /// What an accepted worker command changes in the shadow and the counts.
    fn accepted(
        &mut self,
        now: Time,
        worker: &WorkerId,
        command: &WorkerCommand,
        accepted: &Accepted,
        ids: Ids<'_>,
    ) {
        match (command, accepted) {
            (
                WorkerCommand::Register {
                    capabilities,
                    max_concurrency,
                    ..
                },
                Accepted::Registered {
                    duplicate: false, ..
                },
            ) => {
                self.shadow.register(worker, capabilities, *max_concurrency);
                self.count(now, "register", "accepted", ids);
            }
            (
                WorkerCommand::AcceptGrant { grant },
                Accepted::LeaseStarted {
                    fence,
                    duplicate: false,
                    ..
                },
            ) => {
                self.count(now, "lease", "started", ids.fence(*fence));
                if let Err(detail) = self.shadow.lease(now, worker, *grant, *fence) {
                    self.fail(now, Check::LeaseWithoutGrant, detail);
                }
            }
            (WorkerCommand::ReleaseGrant { grant }, _) => self.shadow.release_grant(*grant),
            (
                WorkerCommand::Emit { fence, .. },
                Accepted::Emitted {
                    next, duplicate, ..
                },
            ) => {
                self.results.streams.acknowledged(*fence, *next);
                if !duplicate {
                    self.emitted(now, *fence, ids);
                }
            }
            (
                WorkerCommand::Ack { fence, from, .. },
                Accepted::Acked {
                    acked, duplicate, ..
                },
            ) => {
                self.edges.acknowledged(fence.task, from, *acked);
                if !duplicate {
                    self.count(now, "ack", "accepted", ids);
                }
            }
            (WorkerCommand::ReportUsage { .. }, Accepted::UsageRecorded { duplicate, .. }) => {
                let name = if *duplicate { "duplicate" } else { "accepted" };
                self.count(now, "usage", name, ids);
            }
            _ => self.accepted_outcome(now, command, accepted, ids),
        }
    }

    /// What an accepted outcome (completion, failure, suspension) changes.
    fn accepted_outcome(
        &mut self,
        now: Time,
        command: &WorkerCommand,
        accepted: &Accepted,
        ids: Ids<'_>,
    ) {
        match (command, accepted) {
            (
                WorkerCommand::Complete { fence, output },
                Accepted::Completed {
                    duplicate: false, ..
                },
            ) => {
                self.count(now, "complete", "accepted", ids);
                self.completed(now, *fence, output);
            }
            (
                WorkerCommand::Fail { fence, .. },
                Accepted::Failed {
                    duplicate: false, ..
                },
            ) => {
                self.count(now, "fail", "accepted", ids);
                self.terminal(now, *fence, "failed", false);
            }
            (
                WorkerCommand::Suspend { fence, .. },
                Accepted::Suspended {
                    duplicate: false, ..
                },
            ) => {
                self.count(now, "suspend", "accepted", ids);
                self.terminal(now, *fence, "suspended", false);
            }
            _ => {}
        }
    }

    /// Frames were appended: only the live lease may append them.
    fn emitted(&mut self, now: Time, fence: Fence, ids: Ids<'_>) {
        self.count(now, "emit", "accepted", ids);
        if !self.shadow.holds_lease(fence) {
            let detail = format!(
                "frames appended for {fence}, which is not the live lease ({})",
                self.shadow.describe_hold(fence.task)
            );
            self.fail(now, Check::StaleEmit, detail);
        }
    }

    /// A completion was accepted: its output is committed and must name its fence.
    pub(super) fn completed(&mut self, now: Time, fence: Fence, output: &keel_engine::Payload) {
        self.results.committed(fence.task, output);
        self.terminal(now, fence, "succeeded", true);
        if let Some(detail) = self.data.completed(fence, output.as_bytes()) {
            self.fail(now, Check::InputMismatch, detail);
        }
    }

    /// A completion or failure was accepted: it must come from the live lease, and a
    /// task's effect is committed at most once.
    pub(super) fn terminal(
        &mut self,
        now: Time,
        fence: Fence,
        outcome: &'static str,
        commit: bool,
    ) {
        if !self.shadow.holds_lease(fence) {
            let detail = format!(
                "{outcome} accepted for {fence}, which is not the live lease ({})",
                self.shadow.describe_hold(fence.task)
            );
            self.fail(now, Check::StaleCompletion, detail);
        }
        if commit && !self.shadow.commit(fence.task) {
            let detail = format!("task {} committed twice (second by {fence})", fence.task);
            self.fail(now, Check::DoubleCommit, detail);
        }
        let ended = self.shadow.end_lease(fence);
        self.bar(now, ended, outcome);
    }
}
