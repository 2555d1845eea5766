//! One connected session: connect to the coordinator that leads, register, then move
//! events and handler notes through the worker's state until the stream breaks or the
//! worker is done.

use super::state::State;
use super::task::Note;
use super::{WorkerConfig, WorkerError};
use crate::client::ClientError;
use crate::proto::{self, reply, CoordinatorFrame, WorkerFrame};
use crate::status::refusal_of;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::{interval_at, Instant};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Code, Status, Streaming};

/// How long the coordinator may take to answer a registration or a deregistration.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);
/// Frames handed to the transport ahead of the coordinator reading them; a coordinator
/// that falls this far behind is treated as gone and the session starts over.
const FRAMES_AHEAD: usize = 256;
/// The frame limit assumed from a coordinator that does not announce one: tonic's
/// default for what a server decodes.
const DEFAULT_FRAME_BYTES: usize = 4 << 20;

pub(crate) enum Ended {
    /// Drained and deregistered.
    Finished,
    Fatal(WorkerError),
    /// This instance was refused as stale or lost, or declared lost: register a new
    /// one, past `current` when the coordinator named its current instance.
    NewInstance {
        current: Option<u64>,
    },
    Disconnected(String),
}

pub(crate) struct Session {
    out: mpsc::Sender<WorkerFrame>,
    inbound: Streaming<CoordinatorFrame>,
    lease_ttl_ms: u64,
    liveness_ms: u64,
}

/// How a refused registration ends the attempt.
fn refused(status: &Status) -> Ended {
    match status.code() {
        // Refused as stale or conflicting: start afresh, past the current instance.
        Code::FailedPrecondition => Ended::NewInstance {
            current: refusal_of(status).and_then(|r| r.current_instance),
        },
        Code::InvalidArgument | Code::Unauthenticated | Code::PermissionDenied => {
            Ended::Fatal(WorkerError::Refused(status.message().to_string()))
        }
        // RESOURCE_EXHAUSTED (a server or engine limit) passes; so does UNAVAILABLE.
        _ => Ended::Disconnected(format!("{:?}: {}", status.code(), status.message())),
    }
}

impl Session {
    pub async fn open(config: &WorkerConfig, state: &mut State) -> Result<Session, Ended> {
        let connection = config.client.connect().await.map_err(|e| match e {
            ClientError::Unreachable(_) => Ended::Disconnected(e.to_string()),
            other => Ended::Fatal(other.into()),
        })?;
        let mut client = config
            .client
            .workers_on(&connection)
            .map_err(|e| Ended::Fatal(e.into()))?;
        let (out, rx) = mpsc::channel(FRAMES_AHEAD);
        let seq = state.register(proto::Register {
            worker_id: config.worker_id.clone(),
            instance: state.instance,
            capabilities: config.capabilities.clone(),
            lanes: config.lanes.clone(),
            max_concurrency: config.concurrency,
        });
        let _ = out.try_send(WorkerFrame {
            commands: state.take_outbox(),
        });
        let opened = async {
            let response = client
                .session(ReceiverStream::new(rx))
                .await
                .map_err(|status| refused(&status))?;
            let mut inbound = response.into_inner();
            let answer = wait_reply(&mut inbound, state, seq).await?;
            Ok((inbound, answer))
        };
        let (inbound, registered) = tokio::time::timeout(ANSWER_TIMEOUT, opened)
            .await
            .map_err(|_| {
                Ended::Disconnected(format!(
                    "{} did not answer the registration within {} s",
                    connection.address,
                    ANSWER_TIMEOUT.as_secs()
                ))
            })??;
        let Some(reply::Result::Registered(registered)) = registered else {
            return Err(Ended::Disconnected(format!(
                "unexpected registration answer {registered:?}"
            )));
        };
        tracing::info!(instance = state.instance, coordinator = %connection.address, "registered");
        let announced = usize::try_from(registered.max_message_bytes).unwrap_or(usize::MAX);
        let frame_limit = match announced {
            0 => DEFAULT_FRAME_BYTES,
            n => n,
        };
        let own_limit = config
            .client
            .max_message_bytes
            .unwrap_or(crate::client::DEFAULT_MAX_MESSAGE_BYTES);
        state.set_frame_limit(frame_limit.min(own_limit));
        state.set_lease_ttl(Duration::from_millis(registered.lease_ttl_ms.max(30)));
        state.connected();
        let session = Session {
            out,
            inbound,
            lease_ttl_ms: registered.lease_ttl_ms.max(30),
            liveness_ms: registered.liveness_timeout_ms.max(30),
        };
        session.flush(state)?;
        Ok(session)
    }

    /// Sends what the state has to say, in frames under the coordinator's size limit.
    fn flush(&self, state: &mut State) -> Result<(), Ended> {
        for frame in state.take_frames() {
            match self.out.try_send(frame) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => {
                    return Err(Ended::Disconnected(format!(
                        "the coordinator did not read {FRAMES_AHEAD} frames in a row"
                    )))
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    return Err(Ended::Disconnected("the session's sender closed".into()))
                }
            }
        }
        Ok(())
    }

    pub async fn serve<F: Future<Output = ()>>(
        &mut self,
        state: &mut State,
        notes: &mut mpsc::Receiver<Note>,
        shutdown: &mut Pin<&mut F>,
        drain_deadline: &mut Option<Instant>,
        drain_timeout: Duration,
    ) -> Ended {
        let renew_every = Duration::from_millis(self.lease_ttl_ms / 3);
        let beat_every = Duration::from_millis(self.liveness_ms / 3);
        let mut renew = interval_at(Instant::now() + renew_every, renew_every);
        let mut beat = interval_at(Instant::now() + beat_every, beat_every);
        loop {
            if state.draining && state.idle() {
                return self.finish(state).await;
            }
            tokio::select! {
                frame = self.inbound.message() => match frame {
                    Ok(Some(frame)) => {
                        for event in frame.events {
                            if state.on_event(event).is_err() {
                                return Ended::NewInstance { current: None };
                            }
                        }
                    }
                    Ok(None) => return Ended::Disconnected("the coordinator closed the session".into()),
                    Err(status) => return Ended::Disconnected(format!("{:?}: {}", status.code(), status.message())),
                },
                Some(note) = notes.recv() => {
                    state.on_note(note);
                    while let Ok(note) = notes.try_recv() {
                        state.on_note(note);
                    }
                }
                _ = renew.tick() => state.renew_all(),
                _ = sleep_until(state.next_expiry()) => state.expire(Instant::now()),
                _ = beat.tick() => state.heartbeat(),
                _ = shutdown.as_mut(), if !state.draining => {
                    tracing::info!("draining");
                    state.drain();
                    *drain_deadline = Some(Instant::now() + drain_timeout);
                }
                _ = sleep_until(*drain_deadline), if drain_deadline.is_some() => {
                    tracing::warn!("drain timed out; cancelling running handlers");
                    state.cancel_running();
                    *drain_deadline = None;
                }
            }
            if let Err(ended) = self.flush(state) {
                return ended;
            }
        }
    }

    /// Deregisters and waits (briefly) for the coordinator to confirm.
    async fn finish(&mut self, state: &mut State) -> Ended {
        let seq = state.deregister();
        if let Err(ended) = self.flush(state) {
            return ended;
        }
        let _ =
            tokio::time::timeout(ANSWER_TIMEOUT, wait_reply(&mut self.inbound, state, seq)).await;
        Ended::Finished
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Reads until the reply to `seq`, handing every other event to the state. A refusal
/// of the registration means this instance is stale or lost.
async fn wait_reply(
    inbound: &mut Streaming<CoordinatorFrame>,
    state: &mut State,
    seq: u64,
) -> Result<Option<reply::Result>, Ended> {
    loop {
        let frame = match inbound.message().await {
            Ok(Some(frame)) => frame,
            Ok(None) => return Err(Ended::Disconnected("closed before answering".into())),
            Err(status) => return Err(refused(&status)),
        };
        for event in frame.events {
            if let Some(proto::coordinator_event::Event::Reply(r)) = &event.event {
                if r.seq == seq {
                    if let Some(reply::Result::Refused(refusal)) = &r.result {
                        if refusal.status == Code::FailedPrecondition as i32 {
                            return Err(Ended::NewInstance {
                                current: refusal.current_instance,
                            });
                        }
                    }
                    return Ok(r.result.clone());
                }
            }
            if state.on_event(event).is_err() {
                return Err(Ended::NewInstance { current: None });
            }
        }
    }
}
