//! A worker session spoken frame by frame, without the SDK, for tests that misbehave on
//! purpose (oversized frames, floods, never reading).

use keel_grpc::client::Workers;
use keel_grpc::proto::coordinator_event::Event;
use keel_grpc::proto::worker_command::Command;
use keel_grpc::proto::*;
use tokio::sync::mpsc;
use tokio_stream::wrappers::UnboundedReceiverStream;
use tonic::{Status, Streaming};

pub(crate) struct Raw {
    out: mpsc::UnboundedSender<WorkerFrame>,
    pub inbound: Streaming<CoordinatorFrame>,
    seq: u64,
}

pub(crate) fn register(worker: &str, instance: u64) -> Command {
    Command::Register(Register {
        worker_id: worker.into(),
        instance,
        max_concurrency: 1,
        ..Register::default()
    })
}

pub(crate) fn heartbeat() -> Command {
    Command::Heartbeat(Heartbeat {})
}

impl Raw {
    /// Opens a session whose first frame holds `first`; the call's own refusal, if any.
    pub(crate) async fn open(workers: &mut Workers, first: Vec<Command>) -> Result<Raw, Status> {
        let (out, rx) = mpsc::unbounded_channel();
        let mut raw = Raw {
            out,
            inbound: Streaming::new_empty(
                tonic_prost::ProstDecoder::default(),
                tonic::body::Body::empty(),
            ),
            seq: 0,
        };
        raw.send(first);
        raw.inbound = workers
            .session(UnboundedReceiverStream::new(rx))
            .await?
            .into_inner();
        Ok(raw)
    }

    /// Opens a session registering instance `instance` of `worker`, and checks it was
    /// registered.
    pub(crate) async fn registered(workers: &mut Workers, worker: &str, instance: u64) -> Raw {
        let mut raw = Raw::open(workers, vec![register(worker, instance)])
            .await
            .expect("the session opens");
        let reply = raw.reply(1).await;
        assert!(
            matches!(reply, Ok(reply::Result::Registered(_))),
            "{worker} was not registered: {reply:?}"
        );
        raw
    }

    /// Sends `commands` as one frame; the seq of the last.
    pub(crate) fn send(&mut self, commands: Vec<Command>) -> u64 {
        let commands = commands
            .into_iter()
            .map(|c| {
                self.seq += 1;
                WorkerCommand {
                    seq: self.seq,
                    command: Some(c),
                }
            })
            .collect();
        let _ = self.out.send(WorkerFrame { commands });
        self.seq
    }

    /// Reads until the reply to `seq`; the status the session ended with otherwise.
    pub(crate) async fn reply(&mut self, seq: u64) -> Result<reply::Result, Status> {
        loop {
            let Some(frame) = self.inbound.message().await? else {
                return Err(Status::ok("the session ended without an error"));
            };
            for event in frame.events {
                if let Some(Event::Reply(r)) = event.event {
                    if r.seq == seq {
                        return r.result.ok_or_else(|| Status::internal("empty reply"));
                    }
                }
            }
        }
    }

    /// Reads to the end of the session: the events received and the status it ended
    /// with (`Ok` when it ended without an error).
    pub(crate) async fn drain(&mut self) -> (usize, Result<(), Status>) {
        let mut events = 0;
        loop {
            match self.inbound.message().await {
                Ok(Some(frame)) => events += frame.events.len(),
                Ok(None) => return (events, Ok(())),
                Err(status) => return (events, Err(status)),
            }
        }
    }
}
