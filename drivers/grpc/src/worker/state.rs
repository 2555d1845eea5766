//! The worker's bookkeeping, independent of the connection: which grants it is
//! accepting, which attempts run, which outcomes await an acknowledgement, and the
//! commands to send next. Outcomes survive reconnects until the coordinator answers.
//! A lease is trusted for one TTL from when its accept or its last answered renewal
//! was sent, which is before the coordinator's own clock for it started; a handler
//! whose lease was not renewed in time is stopped, as the task may already run
//! elsewhere.
//! Commands leave in frames under the coordinator's size limit (`frames`).

use super::frames::{cut, reportable, split_frames};
use super::task::{Note, Outcome, Task};
use super::{Handler, Summary};
use crate::convert::{fence_from_proto, fence_to_proto, suspend_timeout_to_proto};
use crate::proto::coordinator_event::Event;
use crate::proto::worker_command::Command;
use crate::proto::{self, reply, worker_notice};
use crate::status::is_fencing;
use crate::validate::MAX_PROGRESS_BYTES;
use keel_engine::{Fence, JobId, TaskId};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

type Start = Arc<dyn Fn(Task) + Send + Sync>;

/// What a sent command was, so its reply can be interpreted.
enum Pending {
    Register,
    /// With when the command was queued: the lease can be trusted from then on.
    Accept(proto::GrantOffered, Instant),
    Report(Fence),
    Renew(Fence, Instant),
    Other,
}

struct Running {
    fence: Fence,
    cancel: CancellationToken,
    /// None until the coordinator told this session its lease TTL.
    trusted_until: Option<Instant>,
}

/// The session must start over with a new instance: the old one was declared lost.
pub(crate) struct InstanceLost;

pub(crate) struct State {
    pub concurrency: u32,
    pub instance: u64,
    pub draining: bool,
    pub summary: Summary,
    start: Start,
    notes: mpsc::Sender<Note>,
    next_seq: u64,
    pending: HashMap<u64, Pending>,
    accepting: u32,
    running: HashMap<TaskId, Running>,
    /// Outcomes not yet acknowledged, by the attempt's fence: a resumed task's next
    /// outcome never replaces the one before it.
    reports: BTreeMap<Fence, Outcome>,
    outbox: Vec<proto::WorkerCommand>,
    /// Slots freed since the last frame; one work request per frame tops them up.
    top_up: bool,
    /// The coordinator's lease TTL, learned at registration.
    lease_ttl: Option<Duration>,
    /// The largest frame the coordinator accepts, learned at registration.
    frame_limit: Option<usize>,
}

impl State {
    pub fn new<H: Handler>(
        concurrency: u32,
        instance: u64,
        handler: Arc<H>,
        notes: mpsc::Sender<Note>,
    ) -> State {
        let start: Start = Arc::new(move |task: Task| {
            let handler = handler.clone();
            let span = tracing::info_span!("attempt", task = %task.task, attempt = task.attempt, epoch = task.fence.epoch);
            tokio::spawn(
                async move {
                    let (fence, cancel, notes) =
                        (task.fence, task.cancel.clone(), task.notes.clone());
                    let outcome = tokio::select! {
                        outcome = handler.run(task) => Some(outcome),
                        _ = cancel.cancelled() => None,
                    };
                    let _ = notes.send(Note::Done(fence, outcome)).await;
                }
                .instrument(span),
            );
        });
        State {
            concurrency,
            instance,
            draining: false,
            summary: Summary::default(),
            start,
            notes,
            next_seq: 0,
            pending: HashMap::new(),
            accepting: 0,
            running: HashMap::new(),
            reports: BTreeMap::new(),
            outbox: Vec::new(),
            top_up: false,
            lease_ttl: None,
            frame_limit: None,
        }
    }

    fn push(&mut self, command: Command, pending: Pending) {
        self.next_seq += 1;
        self.pending.insert(self.next_seq, pending);
        self.outbox.push(proto::WorkerCommand {
            seq: self.next_seq,
            command: Some(command),
        });
    }

    pub fn take_outbox(&mut self) -> Vec<proto::WorkerCommand> {
        if std::mem::take(&mut self.top_up) && !self.draining {
            self.request_work();
        }
        std::mem::take(&mut self.outbox)
    }

    /// The commands to send next, in frames under the coordinator's limit.
    pub fn take_frames(&mut self) -> Vec<proto::WorkerFrame> {
        let limit = self.frame_limit.unwrap_or(usize::MAX);
        split_frames(self.take_outbox(), limit)
    }

    /// The coordinator's frame limit; outcomes too large for it become failures.
    pub fn set_frame_limit(&mut self, bytes: usize) {
        self.frame_limit = Some(bytes);
    }

    pub fn register(&mut self, register: proto::Register) -> u64 {
        self.pending.clear();
        self.outbox.clear();
        self.accepting = 0;
        self.top_up = false;
        self.push(Command::Register(register), Pending::Register);
        self.next_seq
    }

    /// After a (re)registration: report what is still unacknowledged, then ask for work
    /// or say that this worker drains.
    pub fn connected(&mut self) {
        let reports: Vec<_> = self
            .reports
            .iter()
            .map(|(fence, outcome)| (*fence, outcome.clone()))
            .collect();
        for (fence, outcome) in reports {
            self.push_report(fence, outcome);
        }
        if self.draining {
            self.push(Command::Drain(proto::Drain {}), Pending::Other);
        } else {
            self.request_work();
        }
    }

    /// Free slots not already promised to an offer being accepted.
    fn credits(&self) -> u32 {
        if self.draining {
            return 0;
        }
        let busy = self.running.len() as u32 + self.accepting;
        self.concurrency.saturating_sub(busy)
    }

    fn request_work(&mut self) {
        let credits = self.credits();
        self.push(
            Command::RequestWork(proto::RequestWork { credits }),
            Pending::Other,
        );
    }

    pub fn drain(&mut self) {
        self.draining = true;
        self.push(Command::Drain(proto::Drain {}), Pending::Other);
    }

    pub fn deregister(&mut self) -> u64 {
        self.push(Command::Deregister(proto::Deregister {}), Pending::Other);
        self.next_seq
    }

    pub fn heartbeat(&mut self) {
        self.push(Command::Heartbeat(proto::Heartbeat {}), Pending::Other);
    }

    pub fn renew_all(&mut self) {
        let fences: Vec<Fence> = self.running.values().map(|r| r.fence).collect();
        for fence in fences {
            let renew = proto::Renew {
                fence: Some(fence_to_proto(fence)),
            };
            self.push(Command::Renew(renew), Pending::Renew(fence, Instant::now()));
        }
    }

    /// The lease TTL the coordinator announced; leases trusted from now on end with it.
    pub fn set_lease_ttl(&mut self, ttl: Duration) {
        self.lease_ttl = Some(ttl);
    }

    /// When the first running lease stops being trusted, if any can.
    pub fn next_expiry(&self) -> Option<Instant> {
        self.running.values().filter_map(|r| r.trusted_until).min()
    }

    /// Stops every handler whose lease was not renewed by `now`.
    pub fn expire(&mut self, now: Instant) {
        let expired: Vec<Fence> = self
            .running
            .values()
            .filter(|r| r.trusted_until.is_some_and(|t| t <= now))
            .map(|r| r.fence)
            .collect();
        for fence in expired {
            tracing::warn!(task = %fence.task, attempt = fence.attempt, "lease not renewed in time; stopping the handler");
            self.stop(fence);
        }
    }

    /// Nothing runs, nothing is being accepted and every outcome was acknowledged.
    pub fn idle(&self) -> bool {
        self.running.is_empty() && self.reports.is_empty() && self.accepting == 0
    }

    /// Stops every handler; their attempts are the coordinator's to requeue.
    pub fn cancel_all(&mut self) {
        for (_, r) in self.running.drain() {
            r.cancel.cancel();
        }
        self.reports.clear();
        self.accepting = 0;
    }

    /// Stops the handlers but keeps the outcomes already waiting to be reported.
    pub fn cancel_running(&mut self) {
        for (_, r) in self.running.drain() {
            r.cancel.cancel();
            self.summary.revoked += 1;
        }
    }

    fn push_report(&mut self, fence: Fence, outcome: Outcome) {
        let outcome = reportable(outcome, self.frame_limit);
        if let Some(kept) = self.reports.get_mut(&fence) {
            kept.clone_from(&outcome);
        }
        let f = Some(fence_to_proto(fence));
        let command = match outcome {
            Outcome::Complete(output) => Command::Complete(proto::Complete { fence: f, output }),
            Outcome::Fail { error, permanent } => Command::Fail(proto::Fail {
                fence: f,
                error,
                permanent,
            }),
            Outcome::Suspend {
                waitpoint,
                timeout,
                on_timeout,
            } => Command::Suspend(proto::Suspend {
                fence: f,
                waitpoint,
                // At least 1 ms: the wire refuses a zero timeout.
                timeout_ms: timeout.map(|t| (t.as_millis() as u64).max(1)),
                on_timeout: suspend_timeout_to_proto(on_timeout) as i32,
            }),
        };
        self.push(command, Pending::Report(fence));
    }

    pub fn on_note(&mut self, note: Note) {
        match note {
            Note::Progress(fence, per_mille, message) => {
                if self
                    .running
                    .get(&fence.task)
                    .is_some_and(|r| r.fence == fence)
                {
                    let progress = proto::Progress {
                        fence: Some(fence_to_proto(fence)),
                        done_per_mille: per_mille,
                        message: cut(message, MAX_PROGRESS_BYTES),
                    };
                    self.push(Command::Progress(progress), Pending::Other);
                }
            }
            Note::Done(fence, outcome) => {
                if self
                    .running
                    .get(&fence.task)
                    .is_none_or(|r| r.fence != fence)
                {
                    return;
                }
                self.running.remove(&fence.task);
                if let Some(outcome) = outcome {
                    self.reports.insert(fence, outcome.clone());
                    self.push_report(fence, outcome);
                }
                self.top_up = true;
            }
        }
    }

    pub fn on_event(&mut self, event: proto::CoordinatorEvent) -> Result<(), InstanceLost> {
        match event.event {
            Some(Event::Reply(r)) => self.on_reply(r),
            Some(Event::GrantOffered(offer)) => {
                let grant = offer.grant;
                if !self.draining && self.credits() > 0 {
                    self.accepting += 1;
                    self.push(
                        Command::AcceptGrant(proto::AcceptGrant { grant }),
                        Pending::Accept(offer, Instant::now()),
                    );
                } else {
                    self.push(
                        Command::ReleaseGrant(proto::ReleaseGrant { grant }),
                        Pending::Other,
                    );
                }
            }
            Some(Event::LeaseRevoked(revoked)) => {
                if let Some(fence) = revoked.fence.as_ref().map(fence_from_proto) {
                    self.stop(fence);
                }
            }
            Some(Event::Notice(n)) if n.kind == worker_notice::Kind::Lost as i32 => {
                return Err(InstanceLost);
            }
            // A withdrawn offer's accept is refused in its reply; notices need nothing.
            Some(Event::GrantWithdrawn(_)) | Some(Event::Notice(_)) | None => {}
        }
        Ok(())
    }

    /// Stops the handler running `fence`, if it still is.
    fn stop(&mut self, fence: Fence) {
        if self
            .running
            .get(&fence.task)
            .is_some_and(|r| r.fence == fence)
        {
            if let Some(r) = self.running.remove(&fence.task) {
                r.cancel.cancel();
            }
            self.summary.revoked += 1;
            self.top_up = true;
        }
    }

    fn on_reply(&mut self, reply: proto::Reply) {
        let Some(pending) = self.pending.remove(&reply.seq) else {
            return;
        };
        let result = reply.result;
        match (pending, result) {
            (Pending::Accept(offer, sent), Some(reply::Result::LeaseStarted(started))) => {
                self.accepting = self.accepting.saturating_sub(1);
                let fence = started
                    .fence
                    .as_ref()
                    .map(fence_from_proto)
                    .unwrap_or(Fence {
                        task: TaskId(offer.task),
                        attempt: offer.attempt,
                        epoch: 0,
                    });
                let cancel = CancellationToken::new();
                self.running.insert(
                    fence.task,
                    Running {
                        fence,
                        cancel: cancel.clone(),
                        trusted_until: self.lease_ttl.map(|ttl| sent + ttl),
                    },
                );
                (self.start)(Task {
                    job: JobId(offer.job),
                    task: fence.task,
                    attempt: fence.attempt,
                    fence,
                    payload: offer.payload,
                    cancel,
                    notes: self.notes.clone(),
                });
            }
            (Pending::Accept(offer, _), other) => {
                self.accepting = self.accepting.saturating_sub(1);
                tracing::debug!(grant = offer.grant, reply = ?other, "grant not accepted");
                self.top_up = true;
            }
            (Pending::Report(fence), Some(reply::Result::Refused(refusal)))
                if refusal.reason == "too_large"
                    && matches!(self.reports.get(&fence), Some(Outcome::Complete(_))) =>
            {
                // The output is over the engine's limit: the attempt fails for good
                // instead of being lost and run again with the same result.
                let error = format!("the task's output was refused: {}", refusal.message);
                let failed = Outcome::Fail {
                    error,
                    permanent: true,
                };
                self.reports.insert(fence, failed.clone());
                self.push_report(fence, failed);
            }
            (Pending::Report(fence), Some(reply::Result::Refused(refusal))) => {
                self.reports.remove(&fence);
                self.summary.stale += 1;
                tracing::warn!(task = %fence.task, reason = %refusal.reason, message = %refusal.message, "outcome refused");
            }
            (Pending::Report(fence), result) if self.reports.remove(&fence).is_some() => {
                match result {
                    Some(reply::Result::Failed(_)) => self.summary.failed += 1,
                    Some(reply::Result::Suspended(_)) => self.summary.suspended += 1,
                    _ => self.summary.completed += 1,
                }
            }
            (Pending::Renew(fence, sent), Some(reply::Result::Renewed(_))) => {
                let ttl = self.lease_ttl;
                if let Some(r) = self
                    .running
                    .get_mut(&fence.task)
                    .filter(|r| r.fence == fence)
                {
                    let renewed = ttl.map(|ttl| sent + ttl);
                    r.trusted_until = r.trusted_until.max(renewed);
                }
            }
            (Pending::Renew(fence, _), Some(reply::Result::Refused(refusal)))
                if is_fencing(&refusal) || refusal.reason == "unknown_task" =>
            {
                tracing::warn!(task = %fence.task, reason = %refusal.reason, "lease lost");
                self.stop(fence);
            }
            (_, Some(reply::Result::Refused(refusal))) => {
                tracing::warn!(reason = %refusal.reason, message = %refusal.message, "command refused");
            }
            _ => {}
        }
    }
}

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;
