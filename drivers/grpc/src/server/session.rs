//! One worker session: the registration, then commands applied through the coordinator
//! with their replies, and the worker's effects, batched into frames.
//!
//! The commands waiting when the session is ready for more (usually one frame's) go to
//! the coordinator as one group, applied in order in one group commit; groups run
//! concurrently up to `max_in_flight` commands, and each command's reply carries its
//! `seq`. A worker that needs an order across frames waits for a reply (the SDK does:
//! it completes only after its accept was answered). A group runs once there is room
//! for its replies, so a worker is never sent replies faster than it reads them.
//!
//! A session ends with a status the worker can act on: RESOURCE_EXHAUSTED naming the
//! limit for a frame over `max_message_bytes` (after the commands before it are
//! answered) or a worker that stopped reading (`session_queue`); UNAVAILABLE when the
//! coordinator stops leading or the server stops; ABORTED when a newer session of the
//! same worker took its effects or this one fell too far behind on them. A session's
//! frames are read no faster than `max_session_commands_per_sec` commands per second.

use super::outbound::{self, End, Queue, Room};
use super::rate::RateLimit;
use super::session_commands::{run_group, Offers};
use super::slots::Slot;
use super::{unavailable, Shared};
use crate::convert::{accepted_to_reply, worker_event};
use crate::proto::worker_service_server::WorkerService;
use crate::proto::{self, reply, CoordinatorEvent, WorkerFrame};
use crate::status::{oversized, rejection_status};
use crate::validate::{self, invalid};
use futures_util::stream::{FuturesUnordered, StreamExt};
use keel_engine::{Effect, Input, InstanceId, WorkerId};
use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::mpsc;
use tonic::{Request, Response, Status, Streaming};
use tracing::Instrument;

pub(crate) struct WorkerSvc(pub Arc<Shared>);

#[derive(Clone)]
pub(crate) struct Who {
    pub worker: WorkerId,
    pub instance: InstanceId,
}

/// Held by every task of a session: its slot against `max_sessions` and its place in
/// the active-sessions gauge, both given back when the last task ends.
struct Live {
    shared: Arc<Shared>,
    _slot: Slot,
}

impl Live {
    /// Counts a registered session as opened and active until the value is dropped.
    fn open(shared: Arc<Shared>, slot: Slot) -> Arc<Live> {
        let metrics = &shared.metrics;
        metrics.sessions_opened.fetch_add(1, Ordering::Relaxed);
        metrics.sessions_active.fetch_add(1, Ordering::Relaxed);
        Arc::new(Live {
            shared,
            _slot: slot,
        })
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.shared
            .metrics
            .sessions_active
            .fetch_sub(1, Ordering::Relaxed);
    }
}

#[tonic::async_trait]
impl WorkerService for WorkerSvc {
    type SessionStream = outbound::Frames;
    type TailEdgeStream = super::tail::Pages<crate::proto::EdgePage>;

    async fn tail_edge(
        &self,
        request: Request<crate::proto::TailEdgeRequest>,
    ) -> Result<Response<Self::TailEdgeStream>, Status> {
        let room = super::room(&self.0);
        let pages = super::edge_tail::open(self.0.clone(), request.into_inner(), room).await?;
        Ok(Response::new(pages))
    }

    async fn session(
        &self,
        request: Request<Streaming<WorkerFrame>>,
    ) -> Result<Response<Self::SessionStream>, Status> {
        let shared = self.0.clone();
        let slot = shared.slots.session().inspect_err(|_| {
            shared
                .metrics
                .limit_refusals
                .fetch_add(1, Ordering::Relaxed);
        })?;
        let mut inbound = request.into_inner();
        let Registration {
            who,
            seq,
            accepted,
            rest,
        } = register(&shared, &mut inbound).await?;
        let span =
            tracing::info_span!("worker_session", worker = %who.worker, instance = %who.instance);
        let effects = shared.handle.route_worker(who.worker.clone());
        span.in_scope(|| tracing::info!("registered"));
        let live = Live::open(shared.clone(), slot);

        let end = Arc::new(End::default());
        let bounds = outbound::Bounds {
            events: shared.options.session_queue,
            replies: shared.options.max_in_flight,
            stall: shared.options.session_stall,
            max_bytes: shared.options.max_message_bytes,
        };
        let (queue, frames) = outbound::open(bounds, end.clone(), live.clone());
        queue.push(registered_event(&shared, seq, accepted));
        let offers = Offers::default();
        let forward = forward_effects(
            shared.handle.clone(),
            effects,
            queue.clone(),
            offers.clone(),
            end.clone(),
        );
        tokio::spawn(forward.instrument(span.clone()));
        let session = SessionTask {
            shared,
            who,
            queue,
            offers,
            end,
            _live: live,
        };
        tokio::spawn(session.read_commands(inbound, rest).instrument(span));
        Ok(Response::new(frames))
    }
}

/// The answer to a session's registration: the engine's cadences and the largest frame
/// this server accepts, so the worker sizes its outputs to fit.
fn registered_event(
    shared: &Shared,
    seq: u64,
    accepted: keel_engine::Accepted,
) -> CoordinatorEvent {
    let mut registered = accepted_to_reply(
        accepted,
        shared.config.lease_ttl_ms,
        shared.config.liveness_timeout_ms,
    );
    if let reply::Result::Registered(r) = &mut registered {
        r.max_message_bytes = shared.options.max_message_bytes as u64;
    }
    reply_event(seq, registered)
}

/// A session's registration, accepted by the engine.
struct Registration {
    who: Who,
    /// The register command's seq, for its reply.
    seq: u64,
    accepted: keel_engine::Accepted,
    /// The commands that followed it in the first frame.
    rest: VecDeque<proto::WorkerCommand>,
}

/// Reads the first frame, checks that it starts with a valid registration and applies it.
async fn register(
    shared: &Shared,
    inbound: &mut Streaming<WorkerFrame>,
) -> Result<Registration, Status> {
    let first = tokio::time::timeout(shared.options.register_timeout, inbound.message())
        .await
        .map_err(|_| Status::deadline_exceeded("no registration in time"))?
        .map_err(|status| frame_refused(shared, status))?
        .ok_or_else(|| invalid("commands", "the session ended before registering"))?;
    let mut rest: VecDeque<_> = first.commands.into();
    let register = rest
        .pop_front()
        .ok_or_else(|| invalid("commands", "the first frame must hold a register command"))?;
    let reg = validate::registration(&register, &shared.config.limits).inspect_err(|_| {
        shared
            .metrics
            .invalid_requests
            .fetch_add(1, Ordering::Relaxed);
    })?;
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
    Ok(Registration {
        who,
        seq: register.seq,
        accepted,
        rest,
    })
}

/// A frame the transport refused: over the size limit (RESOURCE_EXHAUSTED naming it),
/// or anything else as it came.
fn frame_refused(shared: &Shared, status: Status) -> Status {
    match oversized(&status, "worker frame") {
        Some(named) => {
            shared
                .metrics
                .limit_refusals
                .fetch_add(1, Ordering::Relaxed);
            named
        }
        None => status,
    }
}

pub(crate) fn reply_event(seq: u64, result: reply::Result) -> CoordinatorEvent {
    CoordinatorEvent {
        event: Some(proto::coordinator_event::Event::Reply(proto::Reply {
            seq,
            result: Some(result),
        })),
    }
}

/// Moves the worker's effects into the session's queue. The route ends when a newer
/// session of the worker replaced it or the coordinator stopped; either ends this
/// session.
async fn forward_effects(
    handle: keel_coordinator::Handle,
    mut effects: mpsc::Receiver<Effect>,
    queue: Queue,
    offers: Offers,
    end: Arc<End>,
) {
    loop {
        let effect = tokio::select! {
            biased;
            _ = end.ended() => return,
            effect = effects.recv() => effect,
        };
        let Some(effect) = effect else {
            end.end(Some(if handle.is_leader() {
                Status::aborted(
                    "session_ended: a newer session of this worker receives its effects, or this one fell too far behind on them; reconnect",
                )
            } else {
                Status::unavailable("not_leader: the coordinator stopped leading its partition")
            }));
            return;
        };
        match &effect {
            Effect::GrantOffered { grant, .. } => {
                offers.offered(grant.get(), Instant::now());
            }
            Effect::GrantWithdrawn { grant, .. } => {
                offers.take(grant.get());
            }
            _ => {}
        }
        if let Some(event) = worker_event(effect) {
            if !queue.push(CoordinatorEvent { event: Some(event) }) {
                return;
            }
        }
    }
}

/// The reading side of a session and what its commands need.
struct SessionTask {
    shared: Arc<Shared>,
    who: Who,
    queue: Queue,
    offers: Offers,
    end: Arc<End>,
    _live: Arc<Live>,
}

impl SessionTask {
    /// Reads the worker's frames and runs their commands until the worker closes its
    /// side, a frame is refused, the coordinator fails or the session ends otherwise.
    async fn read_commands(
        self,
        mut inbound: Streaming<WorkerFrame>,
        mut queued: VecDeque<proto::WorkerCommand>,
    ) {
        let cap = self.shared.options.max_in_flight.max(1);
        let mut limit = RateLimit::new(self.shared.options.max_session_commands_per_sec);
        let mut in_flight = FuturesUnordered::new();
        let mut commands_in_flight = 0;
        let mut open = true;
        // Why the session ends once the commands already read are answered.
        let mut closing: Option<Status> = None;
        loop {
            if commands_in_flight < cap && !queued.is_empty() {
                let n = queued.len().min(cap - commands_in_flight);
                let group: Vec<_> = queued.drain(..n).collect();
                commands_in_flight += n;
                let task = &self;
                in_flight.push(async move { (n, task.run_paced(group).await) });
            }
            if !open && queued.is_empty() && in_flight.is_empty() {
                break;
            }
            tokio::select! {
                biased;
                _ = self.end.ended() => return,
                _ = self.shared.stopping.cancelled() => {
                    closing = Some(Status::unavailable("stopping: the coordinator is shutting down"));
                    break;
                }
                Some((n, done)) = in_flight.next(), if !in_flight.is_empty() => {
                    commands_in_flight -= n;
                    match done {
                        Ok(Some((room, replies))) => {
                            if !self.queue.push_replies(room, replies) {
                                return;
                            }
                        }
                        // The worker stopped reading; the session was ended.
                        Ok(None) => return,
                        Err(status) => {
                            closing = Some(status);
                            break;
                        }
                    }
                }
                frame = next_frame(&mut inbound, &mut limit), if open && queued.is_empty() => match frame {
                    Ok(Some(frame)) => {
                        limit.charge(frame.commands.len());
                        queued.extend(frame.commands);
                    }
                    Ok(None) => open = false,
                    Err(status) => {
                        tracing::debug!(%status, "session stream ended");
                        open = false;
                        closing = oversized(&status, "worker frame").inspect(|_| {
                            self.shared.metrics.limit_refusals.fetch_add(1, Ordering::Relaxed);
                        });
                    }
                },
            }
        }
        self.end.end(closing);
    }
}

impl SessionTask {
    /// Runs `group` once its replies have room; `None` when the worker stopped reading
    /// (the session was ended).
    async fn run_paced(
        &self,
        group: Vec<proto::WorkerCommand>,
    ) -> Result<Option<(Room, Vec<CoordinatorEvent>)>, Status> {
        let Some(room) = self.queue.reply_room(group.len()).await else {
            return Ok(None);
        };
        let replies = run_group(&self.shared, &self.who, group, &self.offers).await;
        replies.map(|replies| Some((room, replies)))
    }
}

/// The session's next frame, once its rate limit allows reading one. Cancel-safe.
async fn next_frame(
    inbound: &mut Streaming<WorkerFrame>,
    limit: &mut RateLimit,
) -> Result<Option<WorkerFrame>, Status> {
    limit.ready().await;
    inbound.message().await
}
