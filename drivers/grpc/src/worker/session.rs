//! One connected session: open the stream, register, then move events and handler
//! notes through the worker's state until the stream breaks or the worker is done.

use super::state::State;
use super::task::Note;
use super::{WorkerConfig, WorkerError};
use crate::client::ClientError;
use crate::proto::{self, reply, CoordinatorFrame, WorkerFrame};
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::{interval_at, Instant};
use tokio_stream::wrappers::UnboundedReceiverStream;
use tonic::{Code, Streaming};

/// How long the coordinator may take to answer a registration or a deregistration.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) enum Ended {
    /// Drained and deregistered.
    Finished,
    Fatal(WorkerError),
    /// This instance was declared lost or superseded; register a new one.
    NewInstance,
    Disconnected(String),
}

pub(crate) struct Session {
    out: mpsc::UnboundedSender<WorkerFrame>,
    inbound: Streaming<CoordinatorFrame>,
    lease_ttl_ms: u64,
    liveness_ms: u64,
}

fn frame(commands: Vec<proto::WorkerCommand>) -> WorkerFrame {
    WorkerFrame { commands }
}

impl Session {
    pub async fn open(config: &WorkerConfig, state: &mut State) -> Result<Session, Ended> {
        let mut client = config.client.workers().await.map_err(|e| match e {
            ClientError::Connect { .. } => Ended::Disconnected(e.to_string()),
            other => Ended::Fatal(other.into()),
        })?;
        let (out, rx) = mpsc::unbounded_channel();
        let seq = state.register(proto::Register {
            worker_id: config.worker_id.clone(),
            instance: state.instance,
            capabilities: config.capabilities.clone(),
            lanes: config.lanes.clone(),
            max_concurrency: config.concurrency,
        });
        let _ = out.send(frame(state.take_outbox()));
        let response = client
            .session(UnboundedReceiverStream::new(rx))
            .await
            .map_err(|status| match status.code() {
                // The registration was refused as stale or conflicting: start afresh.
                Code::FailedPrecondition => Ended::NewInstance,
                Code::InvalidArgument
                | Code::Unauthenticated
                | Code::PermissionDenied
                | Code::ResourceExhausted => {
                    Ended::Fatal(WorkerError::Refused(status.message().to_string()))
                }
                _ => Ended::Disconnected(status.to_string()),
            })?;
        let mut inbound = response.into_inner();
        let registered = tokio::time::timeout(ANSWER_TIMEOUT, wait_reply(&mut inbound, state, seq))
            .await
            .map_err(|_| Ended::Disconnected("no answer to the registration".into()))??;
        let Some(reply::Result::Registered(registered)) = registered else {
            return Err(Ended::Disconnected(format!(
                "unexpected registration answer {registered:?}"
            )));
        };
        tracing::info!(instance = state.instance, "registered");
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

    fn flush(&self, state: &mut State) -> Result<(), Ended> {
        let commands = state.take_outbox();
        if commands.is_empty() {
            return Ok(());
        }
        self.out
            .send(frame(commands))
            .map_err(|_| Ended::Disconnected("the session's sender closed".into()))
    }

    pub async fn serve<F: Future<Output = ()>>(
        &mut self,
        state: &mut State,
        notes: &mut mpsc::UnboundedReceiver<Note>,
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
                                return Ended::NewInstance;
                            }
                        }
                    }
                    Ok(None) => return Ended::Disconnected("the coordinator closed the session".into()),
                    Err(status) => return Ended::Disconnected(status.to_string()),
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
            Err(status) => return Err(Ended::Disconnected(status.to_string())),
        };
        for event in frame.events {
            if let Some(proto::coordinator_event::Event::Reply(r)) = &event.event {
                if r.seq == seq {
                    if let Some(reply::Result::Refused(refusal)) = &r.result {
                        if refusal.status == Code::FailedPrecondition as i32 {
                            return Err(Ended::NewInstance);
                        }
                    }
                    return Ok(r.result.clone());
                }
            }
            if state.on_event(event).is_err() {
                return Err(Ended::NewInstance);
            }
        }
    }
}
