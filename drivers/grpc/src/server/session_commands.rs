//! A session's commands: checked, applied as one group through the coordinator, and
//! answered one reply per command; progress reports are checked against the lease and
//! handled here without the log.

use super::progress::Report;
use super::session::{reply_event, Who};
use super::{unavailable, Shared};
use crate::convert::accepted_to_reply;
use crate::proto::{self, reply, CoordinatorEvent};
use crate::status::{invalid_refusal, refusal};
use crate::validate::{self, Checked};
use keel_engine::{Accepted, Fence, Input, Rejection, TaskStatus, WorkerCommand};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tonic::Status;

/// When each outstanding grant offer was sent, for the claim-to-start histogram. The
/// engine bounds a worker's pending offers, and withdrawn or answered ones leave.
#[derive(Clone, Default)]
pub(crate) struct Offers(Arc<Mutex<HashMap<u64, Instant>>>);

impl Offers {
    pub(super) fn offered(&self, grant: u64, at: Instant) {
        self.lock().insert(grant, at);
    }

    pub(super) fn take(&self, grant: u64) -> Option<Instant> {
        self.lock().remove(&grant)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Instant>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Where a command's reply comes from.
enum Slot {
    Ready(reply::Result),
    /// The engine's answer at this index of the group applied.
    Engine(usize),
}

/// What the reply to an engine command needs to know about it.
struct Sent {
    accepting: Option<u64>,
    ending: Option<Fence>,
}

/// Commands of a session, checked, then applied in order as one group (one message to
/// the engine task, answered once durable), with a reply event for each.
pub(crate) async fn run_group(
    shared: &Shared,
    who: &Who,
    group: Vec<proto::WorkerCommand>,
    offers: &Offers,
) -> Result<Vec<CoordinatorEvent>, Status> {
    let mut slots = Vec::with_capacity(group.len());
    let mut inputs = Vec::with_capacity(group.len());
    let mut sent = Vec::with_capacity(group.len());
    for cmd in group {
        let seq = cmd.seq;
        shared.metrics.commands.fetch_add(1, Ordering::Relaxed);
        let slot = match validate::command(cmd, &shared.config.limits) {
            Err(status) => {
                shared
                    .metrics
                    .invalid_requests
                    .fetch_add(1, Ordering::Relaxed);
                Slot::Ready(reply::Result::Refused(invalid_refusal(&status)))
            }
            Ok(Checked::Progress {
                fence,
                per_mille,
                message,
            }) => Slot::Ready(progress(shared, who, fence, per_mille, message).await?),
            Ok(Checked::Engine(command)) => {
                sent.push(Sent {
                    accepting: match &command {
                        WorkerCommand::AcceptGrant { grant } => Some(grant.get()),
                        _ => None,
                    },
                    ending: match &command {
                        WorkerCommand::Complete { fence, .. }
                        | WorkerCommand::Fail { fence, .. } => Some(*fence),
                        _ => None,
                    },
                });
                inputs.push(Input::worker(&who.worker, who.instance, command));
                Slot::Engine(inputs.len() - 1)
            }
        };
        slots.push((seq, slot));
    }
    let mut engine = if inputs.is_empty() {
        Vec::new()
    } else {
        shared
            .handle
            .apply_all(inputs)
            .await
            .map_err(|e| unavailable(&e))?
    };
    let mut replies = Vec::with_capacity(slots.len());
    for (seq, slot) in slots {
        let result = match slot {
            Slot::Ready(result) => result,
            Slot::Engine(i) => {
                let reply = std::mem::take(&mut engine[i]);
                engine_reply(shared, &sent[i], reply, offers)
            }
        };
        replies.push(reply_event(seq, result));
    }
    Ok(replies)
}

/// The reply to one engine command, recording claim-to-start for an accepted grant.
fn engine_reply(
    shared: &Shared,
    sent: &Sent,
    reply: keel_coordinator::Answer,
    offers: &Offers,
) -> reply::Result {
    if let Some(grant) = sent.accepting {
        let offered = offers.take(grant);
        if let (Some(at), Some(Ok(Accepted::LeaseStarted { fence, .. }))) = (offered, &reply) {
            shared.metrics.claim_to_start.observe(at.elapsed());
            tracing::debug!(task = %fence.task, attempt = fence.attempt, epoch = fence.epoch, "attempt started");
        }
    }
    match reply {
        Some(Ok(accepted)) => {
            if let Accepted::Emitted { fence, .. } = &accepted {
                shared.bells.ring(fence.task);
            }
            if let Some(fence) = sent.ending {
                shared.progress.clear(fence.task);
                tracing::debug!(task = %fence.task, attempt = fence.attempt, "attempt ended");
            }
            accepted_to_reply(
                accepted,
                shared.config.lease_ttl_ms,
                shared.config.liveness_timeout_ms,
            )
        }
        Some(Err(rejection)) => {
            shared.metrics.refusals.fetch_add(1, Ordering::Relaxed);
            reply::Result::Refused(refusal(&rejection))
        }
        None => reply::Result::Ok(proto::Done {}),
    }
}

/// Accepts a progress report only from the worker running the attempt it names.
async fn progress(
    shared: &Shared,
    who: &Who,
    fence: Fence,
    per_mille: u32,
    message: String,
) -> Result<reply::Result, Status> {
    let task = fence.task;
    let view = shared
        .handle
        .read(move |e| e.describe_task(task))
        .await
        .map_err(|e| unavailable(&e))?;
    let view = match view {
        Ok(view) => view,
        Err(rejection) => return Ok(reply::Result::Refused(refusal(&rejection))),
    };
    let holder =
        matches!(&view.status, TaskStatus::Running { worker, .. } if *worker == who.worker);
    let refused = if view.attempt != fence.attempt || view.epoch != fence.epoch {
        Some(Rejection::StaleFence {
            task,
            attempt_seen: fence.attempt,
            epoch_seen: fence.epoch,
            attempt_current: view.attempt,
            epoch_current: view.epoch,
        })
    } else if !holder {
        Some(Rejection::NotLeaseHolder {
            task,
            worker: who.worker.clone(),
        })
    } else {
        None
    };
    if let Some(rejection) = refused {
        return Ok(reply::Result::Refused(refusal(&rejection)));
    }
    let report = Report {
        fence,
        per_mille,
        message,
    };
    shared.progress.report(view.job, report);
    Ok(reply::Result::Ok(proto::Done {}))
}
