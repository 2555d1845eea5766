//! One connection to the coordinator that leads: the stream the worker's frames go
//! out on and the coordinator's frames come in on. What to say on it is the machine's
//! decision (`keel_protocol::worker`).

use super::{WorkerConfig, WorkerError};
use crate::client::ClientError;
use crate::proto::{CoordinatorFrame, WorkerFrame};
use std::future::Future;
use std::pin::Pin;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Status, Streaming};

/// Frames handed to the transport ahead of the coordinator reading them; a coordinator
/// that falls this far behind is treated as gone and the session starts over.
pub(crate) const FRAMES_AHEAD: usize = 256;

/// The coordinator's side of an open session.
pub(crate) type Inbound = Streaming<CoordinatorFrame>;

/// A session call on its way to being answered.
pub(crate) type Opening = Pin<Box<dyn Future<Output = Result<Inbound, Failed>> + Send>>;

/// A session: frames go out on `out` from the moment it starts opening (they wait in
/// the channel), and the coordinator's frames come in once `opening` has resolved.
pub(crate) struct Session {
    pub out: mpsc::Sender<WorkerFrame>,
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
        inbound: None,
        opening: Some(Box::pin(opening)),
    }
}
