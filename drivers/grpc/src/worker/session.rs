//! One connection to the coordinator that leads: the stream the worker's frames go
//! out on and the coordinator's frames come in on. What to say on it is the machine's
//! decision (`keel_protocol::worker`).

use super::frames::take_frame;
use super::{WorkerConfig, WorkerError};
use crate::client::ClientError;
use crate::proto::{CoordinatorFrame, WorkerCommand, WorkerFrame};
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use tokio::sync::mpsc::{self, error::TrySendError, OwnedPermit};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Status, Streaming};

/// Frames handed to the transport ahead of the coordinator reading them. Commands
/// beyond them wait in the session's backlog and go out in as few frames as fit once
/// there is room: a coordinator that reads slowly gets fewer, fuller frames, and one
/// that stopped reading is noticed by the machine's answer timeout.
pub(crate) const FRAMES_AHEAD: usize = 16;

/// The session's sender closed: the transport is gone.
pub(crate) struct Closed;

/// The coordinator's side of an open session.
pub(crate) type Inbound = Streaming<CoordinatorFrame>;

/// A session call on its way to being answered.
pub(crate) type Opening = Pin<Box<dyn Future<Output = Result<Inbound, Failed>> + Send>>;

/// A session: frames go out on `out` from the moment it starts opening (they wait in
/// the channel), and the coordinator's frames come in once `opening` has resolved.
pub(crate) struct Session {
    out: mpsc::Sender<WorkerFrame>,
    /// Commands waiting for room among the frames handed to the transport, in order.
    backlog: VecDeque<WorkerCommand>,
    pub inbound: Option<Inbound>,
    /// Resolves when the coordinator answers the session call; polled by the shell's
    /// loop beside its timers and handler notes, so opening never stalls them.
    pub opening: Option<Opening>,
}

/// Why a session could not be opened.
pub(crate) enum Failed {
    /// Try again later.
    Unreachable(String),
    /// The coordinator refused the session call itself.
    Refused(Status),
    Fatal(WorkerError),
}

/// Starts opening a session with `first` (the registration) already queued on it, since
/// the coordinator answers the call only once it has read it. A coordinator that does
/// not answer within the worker's answer timeout counts as unreachable.
pub(crate) fn open(config: &WorkerConfig, first: Vec<WorkerFrame>) -> Session {
    let (out, rx) = mpsc::channel(FRAMES_AHEAD);
    for frame in first {
        let _ = out.try_send(frame);
    }
    let config = config.clone();
    let opening = async move {
        let connection = config.client.connect().await.map_err(|e| match e {
            ClientError::Unreachable(_) => Failed::Unreachable(e.to_string()),
            other => Failed::Fatal(other.into()),
        })?;
        let mut client = config
            .client
            .workers_on(&connection)
            .map_err(|e| Failed::Fatal(e.into()))?;
        let call = client.session(ReceiverStream::new(rx));
        let response = match tokio::time::timeout(config.answer_timeout, call).await {
            Err(_) => {
                return Err(Failed::Unreachable(format!(
                    "{} did not open the session within {} ms",
                    connection.address,
                    config.answer_timeout.as_millis()
                )))
            }
            Ok(Err(status)) => return Err(Failed::Refused(status)),
            Ok(Ok(response)) => response,
        };
        tracing::info!(coordinator = %connection.address, "session open");
        Ok(response.into_inner())
    };
    Session {
        out,
        backlog: VecDeque::new(),
        inbound: None,
        opening: Some(Box::pin(opening)),
    }
}

impl Session {
    /// Queues `commands` behind those waiting and hands the transport as many frames of
    /// at most `limit` bytes as it has room for.
    pub(crate) fn send(
        &mut self,
        commands: Vec<WorkerCommand>,
        limit: usize,
    ) -> Result<(), Closed> {
        self.backlog.extend(commands);
        while !self.backlog.is_empty() {
            match self.out.try_reserve() {
                Ok(permit) => permit.send(take_frame(&mut self.backlog, limit)),
                Err(TrySendError::Full(())) => break,
                Err(TrySendError::Closed(())) => return Err(Closed),
            }
        }
        Ok(())
    }

    /// A sender to wait for room on, while commands wait for it.
    pub(crate) fn waiting(&self) -> Option<mpsc::Sender<WorkerFrame>> {
        (!self.backlog.is_empty()).then(|| self.out.clone())
    }

    /// Sends the next frame of the backlog with `permit`, then as many more as fit.
    pub(crate) fn send_with(
        &mut self,
        permit: OwnedPermit<WorkerFrame>,
        limit: usize,
    ) -> Result<(), Closed> {
        if self.backlog.is_empty() {
            return Ok(());
        }
        permit.send(take_frame(&mut self.backlog, limit));
        self.send(Vec::new(), limit)
    }
}

/// Resolves with room for one frame on `waiting`; `None` once its receiver is gone.
/// Never resolves without a sender.
pub(crate) async fn room(
    waiting: Option<mpsc::Sender<WorkerFrame>>,
) -> Option<OwnedPermit<WorkerFrame>> {
    match waiting {
        Some(out) => out.reserve_owned().await.ok(),
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::worker_command::Command;
    use crate::proto::Heartbeat;

    fn beats(from: u64, n: u64) -> Vec<WorkerCommand> {
        (from..from + n)
            .map(|seq| WorkerCommand {
                seq,
                command: Some(Command::Heartbeat(Heartbeat {})),
            })
            .collect()
    }

    fn session() -> (Session, mpsc::Receiver<WorkerFrame>) {
        let (out, rx) = mpsc::channel(FRAMES_AHEAD);
        let session = Session {
            out,
            backlog: VecDeque::new(),
            inbound: None,
            opening: None,
        };
        (session, rx)
    }

    #[tokio::test]
    async fn commands_the_transport_has_no_room_for_wait_and_go_out_in_fuller_frames() {
        let (mut session, mut rx) = session();
        // Far more one-command frames than the transport takes while nobody reads.
        let sends = 10 * FRAMES_AHEAD as u64;
        for seq in 1..=sends {
            assert!(session.send(beats(seq, 1), 1 << 20).is_ok());
        }
        assert_eq!(session.backlog.len() as u64, sends - FRAMES_AHEAD as u64);
        let mut seqs = Vec::new();
        let mut frames = 0;
        while seqs.len() < sends as usize {
            let frame = rx.recv().await.expect("a frame");
            frames += 1;
            seqs.extend(frame.commands.iter().map(|c| c.seq));
            if let Some(permit) = room(session.waiting()).await {
                assert!(session.send_with(permit, 1 << 20).is_ok());
            }
            if session.waiting().is_none() {
                while let Ok(frame) = rx.try_recv() {
                    frames += 1;
                    seqs.extend(frame.commands.iter().map(|c| c.seq));
                }
            }
        }
        assert_eq!(
            seqs,
            (1..=sends).collect::<Vec<_>>(),
            "every command, in order"
        );
        assert!(
            frames <= FRAMES_AHEAD + 1,
            "the waiting commands went out one frame each: {frames} frames"
        );
        assert!(session.waiting().is_none());
    }

    #[tokio::test]
    async fn a_closed_transport_is_told_apart_from_a_full_one() {
        let (mut session, rx) = session();
        drop(rx);
        assert!(session.send(beats(1, 1), 1 << 20).is_err());
        assert!(room(Some(session.out.clone())).await.is_none());
    }
}
