//! One worker session: the registration, then commands applied through the coordinator
//! with their replies, and the worker's effects, batched into frames.
//!
//! The commands waiting when the session is ready for more (usually one frame's) go to
//! the coordinator as one group, applied in order in one group commit; groups run
//! concurrently up to `max_in_flight` commands, and each command's reply carries its
//! `seq`. A worker that needs an order across frames waits for a reply (the SDK does:
//! it completes only after its accept was answered).

use super::progress::Report;
use super::rate::RateLimit;
use super::{unavailable, Shared};
use crate::convert::{accepted_to_reply, worker_event};
use crate::proto::worker_service_server::WorkerService;
use crate::proto::{self, reply, CoordinatorEvent, CoordinatorFrame, WorkerFrame};
use crate::status::{invalid_refusal, refusal, rejection_status};
use crate::validate::{self, invalid, Checked};
use futures_util::stream::{FuturesUnordered, StreamExt};
use keel_engine::{
    Accepted, Effect, Fence, Input, InstanceId, Rejection, TaskStatus, WorkerCommand, WorkerId,
};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};
use tracing::Instrument;

pub(crate) struct WorkerSvc(pub Arc<Shared>);

/// Events of one session wait here to be framed.
type Events = mpsc::Sender<CoordinatorEvent>;
/// Events a session may have waiting to be framed; past it, replies wait and the
/// coordinator's effect route fills, which ends the session.
const EVENTS_CAPACITY: usize = 4096;
type Out = mpsc::Sender<Result<CoordinatorFrame, Status>>;
/// When each outstanding grant offer was sent, for the claim-to-start histogram.
type Offers = Arc<Mutex<HashMap<u64, Instant>>>;

/// Most events in one frame.
const MAX_FRAME_EVENTS: usize = 1024;

#[derive(Clone)]
struct Who {
    worker: WorkerId,
    instance: InstanceId,
}

#[tonic::async_trait]
impl WorkerService for WorkerSvc {
    type SessionStream = ReceiverStream<Result<CoordinatorFrame, Status>>;

    async fn session(
        &self,
        request: Request<Streaming<WorkerFrame>>,
    ) -> Result<Response<Self::SessionStream>, Status> {
        let shared = self.0.clone();
        let mut inbound = request.into_inner();
        let first = tokio::time::timeout(shared.options.register_timeout, inbound.message())
            .await
            .map_err(|_| Status::deadline_exceeded("no registration in time"))??
            .ok_or_else(|| invalid("commands", "the session ended before registering"))?;
        let mut commands: VecDeque<_> = first.commands.into();
        let register = commands
            .pop_front()
            .ok_or_else(|| invalid("commands", "the first frame must hold a register command"))?;
        let reg = validate::registration(&register, &shared.config.limits).inspect_err(|_| {
            shared
                .metrics
                .invalid_requests
                .fetch_add(1, Ordering::Relaxed);
        })?;
        let span =
            tracing::info_span!("worker_session", worker = %reg.worker, instance = %reg.instance);
        let who = Who {
            worker: reg.worker.clone(),
            instance: reg.instance,
        };
        let input = Input::worker(&who.worker, who.instance, reg.command);
        let accepted = match shared
            .handle
            .apply(input)
            .await
            .map_err(|e| unavailable(&e))?
        {
            Some(Ok(accepted)) => accepted,
            Some(Err(rejection)) => return Err(rejection_status(&rejection)),
            None => return Err(Status::internal("registration got no reply")),
        };
        let effects = shared.handle.route_worker(who.worker.clone());
        span.in_scope(|| tracing::info!("registered"));
        shared
            .metrics
            .sessions_opened
            .fetch_add(1, Ordering::Relaxed);

        let (out_tx, out_rx) = mpsc::channel(64);
        let (ev_tx, ev_rx) = mpsc::channel(EVENTS_CAPACITY);
        let registered = accepted_to_reply(
            accepted,
            shared.config.lease_ttl_ms,
            shared.config.liveness_timeout_ms,
        );
        let _ = ev_tx.send(reply_event(register.seq, registered)).await;
        let offers = Offers::default();
        let forward = forward_effects(effects, ev_tx.clone(), offers.clone(), out_tx.clone());
        tokio::spawn(forward.instrument(span.clone()));
        tokio::spawn(frame_events(ev_rx, out_tx.clone()));
        let reader = read_commands(shared, who, inbound, commands, ev_tx, offers, out_tx);
        tokio::spawn(reader.instrument(span));
        Ok(Response::new(ReceiverStream::new(out_rx)))
    }
}

fn reply_event(seq: u64, result: reply::Result) -> CoordinatorEvent {
    CoordinatorEvent {
        event: Some(proto::coordinator_event::Event::Reply(proto::Reply {
            seq,
            result: Some(result),
        })),
    }
}

/// Moves the worker's effects into the session. When the coordinator ends the route
/// (the session fell too far behind, the worker registered again, or the coordinator's
/// term ended) the session ends with UNAVAILABLE, so the worker reconnects.
async fn forward_effects(
    mut effects: mpsc::Receiver<Effect>,
    events: Events,
    offers: Offers,
    out: Out,
) {
    while let Some(effect) = effects.recv().await {
        match &effect {
            Effect::GrantOffered { grant, .. } => {
                lock(&offers).insert(grant.0, Instant::now());
            }
            Effect::GrantWithdrawn { grant, .. } => {
                lock(&offers).remove(&grant.0);
            }
            _ => {}
        }
        if let Some(event) = worker_event(effect) {
            if events
                .send(CoordinatorEvent { event: Some(event) })
                .await
                .is_err()
            {
                return;
            }
        }
    }
    let ended = "the coordinator ended this session's effects (it fell behind, the worker registered again, or leadership changed); reconnect";
    let _ = out.send(Err(Status::unavailable(ended))).await;
}

/// Batches whatever events are waiting into one frame per send.
async fn frame_events(mut events: mpsc::Receiver<CoordinatorEvent>, out: Out) {
    while let Some(first) = events.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_FRAME_EVENTS {
            match events.try_recv() {
                Ok(e) => batch.push(e),
                Err(_) => break,
            }
        }
        if out
            .send(Ok(CoordinatorFrame { events: batch }))
            .await
            .is_err()
        {
            break;
        }
    }
}

/// Reads the worker's frames and runs their commands. A coordinator failure ends the
/// session with UNAVAILABLE so the worker reconnects, to this or another coordinator.
async fn read_commands(
    shared: Arc<Shared>,
    who: Who,
    mut inbound: Streaming<WorkerFrame>,
    mut queued: VecDeque<proto::WorkerCommand>,
    events: Events,
    offers: Offers,
    out: Out,
) {
    shared
        .metrics
        .sessions_active
        .fetch_add(1, Ordering::Relaxed);
    let cap = shared.options.max_in_flight.max(1);
    let mut limit = RateLimit::new(shared.options.max_session_commands_per_sec);
    let mut in_flight = FuturesUnordered::new();
    let mut commands_in_flight = 0;
    let mut open = true;
    loop {
        if commands_in_flight < cap && !queued.is_empty() {
            let n = queued.len().min(cap - commands_in_flight);
            let group: Vec<_> = queued.drain(..n).collect();
            commands_in_flight += n;
            let offers = &offers;
            let (shared, who) = (&shared, &who);
            in_flight.push(async move { (n, run_group(shared, who, group, offers).await) });
        }
        if !open && queued.is_empty() && in_flight.is_empty() {
            break;
        }
        tokio::select! {
            frame = next_frame(&mut inbound, &mut limit), if open && queued.is_empty() => match frame {
                Ok(Some(frame)) => {
                    limit.charge(frame.commands.len());
                    queued.extend(frame.commands);
                }
                Ok(None) => open = false,
                Err(status) => {
                    tracing::debug!(%status, "session stream ended");
                    open = false;
                }
            },
            Some((n, done)) = in_flight.next(), if !in_flight.is_empty() => {
                commands_in_flight -= n;
                match done {
                    Ok(replies) => {
                        let mut gone = false;
                        for event in replies {
                            gone = gone || events.send(event).await.is_err();
                        }
                        if gone {
                            break;
                        }
                    }
                    Err(status) => {
                        let _ = out.send(Err(status)).await;
                        break;
                    }
                }
            }
        }
    }
    shared
        .metrics
        .sessions_active
        .fetch_sub(1, Ordering::Relaxed);
}

/// The session's next frame, once its rate limit allows reading one. Cancel-safe.
async fn next_frame(
    inbound: &mut Streaming<WorkerFrame>,
    limit: &mut RateLimit,
) -> Result<Option<WorkerFrame>, Status> {
    limit.ready().await;
    inbound.message().await
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
async fn run_group(
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
                        WorkerCommand::AcceptGrant { grant } => Some(grant.0),
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
        let offered = lock(offers).remove(&grant);
        if let (Some(at), Some(Ok(Accepted::LeaseStarted { fence, .. }))) = (offered, &reply) {
            shared.metrics.claim_to_start.observe(at.elapsed());
            tracing::debug!(task = %fence.task, attempt = fence.attempt, epoch = fence.epoch, "attempt started");
        }
    }
    match reply {
        Some(Ok(accepted)) => {
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

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
