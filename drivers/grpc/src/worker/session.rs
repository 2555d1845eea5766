//! One connection to the coordinator that leads: the stream the worker's frames go
//! out on and the coordinator's frames come in on. What to say on it is the machine's
//! decision (`keel_protocol::worker`).

use super::{WorkerConfig, WorkerError};
use crate::client::ClientError;
use crate::proto::{CoordinatorFrame, WorkerFrame};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Status, Streaming};

/// How long opening the session may take.
const OPEN_TIMEOUT: Duration = Duration::from_secs(10);
/// Frames handed to the transport ahead of the coordinator reading them; a coordinator
/// that falls this far behind is treated as gone and the session starts over.
pub(crate) const FRAMES_AHEAD: usize = 256;

pub(crate) struct Session {
    pub out: mpsc::Sender<WorkerFrame>,
    pub inbound: Streaming<CoordinatorFrame>,
}

/// Why a session could not be opened.
pub(crate) enum Failed {
    /// Try again later.
    Unreachable(String),
    /// The coordinator refused the session call itself.
    Refused(Status),
    Fatal(WorkerError),
}

/// Connects, then opens the session stream with `first` (the registration) already
/// queued on it, since the coordinator answers the call only once it has read it.
pub(crate) async fn open(
    config: &WorkerConfig,
    first: Vec<WorkerFrame>,
) -> Result<Session, Failed> {
    let connection = config.client.connect().await.map_err(|e| match e {
        ClientError::Unreachable(_) => Failed::Unreachable(e.to_string()),
        other => Failed::Fatal(other.into()),
    })?;
    let mut client = config
        .client
        .workers_on(&connection)
        .map_err(|e| Failed::Fatal(e.into()))?;
    let (out, rx) = mpsc::channel(FRAMES_AHEAD);
    for frame in first {
        let _ = out.try_send(frame);
    }
    let call = client.session(ReceiverStream::new(rx));
    let response = match tokio::time::timeout(OPEN_TIMEOUT, call).await {
        Err(_) => {
            return Err(Failed::Unreachable(format!(
                "{} did not open the session within {} s",
                connection.address,
                OPEN_TIMEOUT.as_secs()
            )))
        }
        Ok(Err(status)) => return Err(Failed::Refused(status)),
        Ok(Ok(response)) => response,
    };
    tracing::info!(coordinator = %connection.address, "session open");
    Ok(Session {
        out,
        inbound: response.into_inner(),
    })
}
