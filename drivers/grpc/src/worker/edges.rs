//! A consumer's side of its streaming edges: `Task::stream(key)` reads what the edge
//! owes it (`TailEdge`), reopening from its cursor after a lost connection or a new
//! leader, and `Task::ack` acknowledges a cursor, sent beside the worker machine
//! (`side.rs`) until answered, so a retry of the consumer resumes there.

use crate::client::ClientOptions;
use crate::convert::fence_to_proto;
use crate::proto::{self, reply, worker_command::Command, EdgePage, TailEdgeRequest};
use keel_engine::{Fence, TaskId};
use std::collections::VecDeque;
use std::time::Duration;
use tokio::sync::oneshot;
use tonic::{Code, Streaming};

/// One frame a consumer reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EdgeFrame {
    /// Its position in the producer's stream; acknowledge `seq + 1` once processed.
    pub seq: u64,
    /// The producer's attempt that emitted it: a change marks a new segment.
    pub attempt: u32,
    /// What it holds.
    pub data: Vec<u8>,
}

/// Why an edge could not be read or acknowledged.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EdgeError {
    /// The coordinator refused: `reason` is the stable code (`unknown_edge`,
    /// `ack_past_end`, or a fencing one when the attempt is no longer this worker's).
    #[error("{message}")]
    Refused {
        /// The stable rejection code.
        reason: String,
        /// The coordinator's text.
        message: String,
    },
    /// The producer ended without success (`failed`, `skipped`, `cancelled`): no frame
    /// will follow.
    #[error("the producer {from:?} ended {outcome}")]
    ProducerEnded {
        /// The producer's key.
        from: String,
        /// Its outcome word.
        outcome: String,
    },
    /// The worker stopped before the coordinator answered.
    #[error("the worker stopped before the acknowledgement was answered")]
    Stopped,
}

/// What the coordinator answered an acknowledgement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Acked {
    /// The edge's acknowledged cursor now.
    pub acked: u64,
    /// It already was at least there.
    pub duplicate: bool,
}

/// One acknowledgement from a handler, with where its answer goes.
#[derive(Debug)]
pub(crate) struct AckReport {
    pub fence: Fence,
    pub from: String,
    pub cursor: u64,
    pub answer: oneshot::Sender<Result<Acked, EdgeError>>,
}

impl AckReport {
    pub(crate) fn command(&self, seq: u64) -> proto::WorkerCommand {
        proto::WorkerCommand {
            seq,
            command: Some(Command::Ack(proto::Ack {
                fence: Some(fence_to_proto(self.fence)),
                from: self.from.clone(),
                cursor: self.cursor,
            })),
        }
    }
}

pub(crate) fn outcome(result: Option<reply::Result>) -> Result<Acked, EdgeError> {
    match result {
        Some(reply::Result::Acked(a)) => Ok(Acked {
            acked: a.acked,
            duplicate: a.duplicate,
        }),
        Some(reply::Result::Refused(r)) => Err(EdgeError::Refused {
            reason: r.reason,
            message: r.message,
        }),
        _ => Err(EdgeError::Refused {
            reason: "invalid_argument".into(),
            message: "the coordinator answered an acknowledgement with another reply".into(),
        }),
    }
}

/// Longest wait between attempts to reopen a lost edge.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// What a consumer reads through one edge, frame by frame (`Task::stream`).
pub struct EdgeStream {
    pub(crate) client: ClientOptions,
    pub(crate) consumer: TaskId,
    pub(crate) from: String,
    /// Where the next page starts; `None` until the first: the acknowledged cursor.
    pub(crate) at: Option<u64>,
    pub(crate) pages: Option<Streaming<EdgePage>>,
    pub(crate) frames: VecDeque<EdgeFrame>,
    pub(crate) end: Option<String>,
    pub(crate) skipped: u64,
}

impl EdgeStream {
    /// The next frame; `Ok(None)` once the producer succeeded and every frame owed was
    /// read. A lost connection or a new leader is waited out and the edge reopened
    /// from the cursor, so no frame is skipped or repeated by it.
    pub async fn next(&mut self) -> Result<Option<EdgeFrame>, EdgeError> {
        let mut backoff = Duration::from_millis(50);
        loop {
            if let Some(f) = self.frames.pop_front() {
                return Ok(Some(f));
            }
            match self.end.as_deref() {
                Some("succeeded") => return Ok(None),
                Some(outcome) => {
                    return Err(EdgeError::ProducerEnded {
                        from: self.from.clone(),
                        outcome: outcome.to_string(),
                    })
                }
                None => {}
            }
            match self.page().await {
                Ok(true) => backoff = Duration::from_millis(50),
                Ok(false) => {
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Frames the edge skipped so far (of an earlier producer lease, dropped to make
    /// room, older than the newest, or let go by the producer's stream mode).
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// Reads one page into the buffer; false when the edge must be reopened later.
    async fn page(&mut self) -> Result<bool, EdgeError> {
        if self.pages.is_none() {
            match self.open().await {
                Ok(pages) => self.pages = Some(pages),
                Err(status) => return refusal(status),
            }
        }
        let Some(pages) = self.pages.as_mut() else {
            return Ok(false);
        };
        match pages.message().await {
            Ok(Some(page)) => {
                self.at = Some(page.next);
                self.skipped = self.skipped.saturating_add(page.skipped);
                self.end = page.end;
                self.frames
                    .extend(page.frames.into_iter().map(|f| EdgeFrame {
                        seq: f.seq,
                        attempt: f.attempt,
                        data: f.data,
                    }));
                Ok(true)
            }
            Ok(None) => {
                self.pages = None;
                Ok(false)
            }
            Err(status) => {
                self.pages = None;
                refusal(status)
            }
        }
    }

    async fn open(&self) -> Result<Streaming<EdgePage>, tonic::Status> {
        let connection = self
            .client
            .connect()
            .await
            .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
        let mut workers = self
            .client
            .workers_on(&connection)
            .map_err(|e| tonic::Status::unauthenticated(e.to_string()))?;
        let request = TailEdgeRequest {
            task: self.consumer.get(),
            from: self.from.clone(),
            after: self.at,
        };
        Ok(workers.tail_edge(request).await?.into_inner())
    }
}

/// A failed tail: refused for good (`Err`), or to be opened again (`Ok(false)`).
fn refusal(status: tonic::Status) -> Result<bool, EdgeError> {
    match status.code() {
        Code::NotFound
        | Code::InvalidArgument
        | Code::FailedPrecondition
        | Code::PermissionDenied
        | Code::Unauthenticated => Err(EdgeError::Refused {
            reason: crate::status::refusal_of(&status)
                .map_or_else(|| format!("{:?}", status.code()), |r| r.reason),
            message: status.message().to_string(),
        }),
        _ => Ok(false),
    }
}
