//! What a handler receives and returns.

use keel_engine::{Fence, JobId, SuspendTimeout, TaskId};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// How a handler's attempt ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Succeeded with this output.
    Complete(Vec<u8>),
    /// A permanent failure is not retried.
    Fail {
        /// What went wrong, for the attempt history.
        error: String,
        /// Retrying cannot help; the task fails now.
        permanent: bool,
    },
    /// Give up the lease until a client signals `waitpoint` (`JobService.SignalTask`);
    /// the task is then granted again, with the same attempt and a new fence. Without a
    /// signal within `timeout` (if set), `on_timeout` decides.
    Suspend {
        /// The name a signal must carry.
        waitpoint: String,
        /// How long to wait for it; `None` waits as long as it takes.
        timeout: Option<Duration>,
        /// What happens when the wait times out.
        on_timeout: SuspendTimeout,
    },
}

/// Messages from running handlers to the session.
#[derive(Debug)]
pub(crate) enum Note {
    /// `None` when the handler was cancelled.
    Done(Fence, Option<Outcome>),
    Progress(Fence, u32, String),
}

/// One attempt of one task, as granted to this worker.
#[derive(Debug)]
pub struct Task {
    /// The job the task belongs to.
    pub job: JobId,
    /// The task's key in its job's spec.
    pub key: String,
    /// The task's id.
    pub task: TaskId,
    /// Which attempt this is, from 1.
    pub attempt: u32,
    /// Presented with every report on this attempt.
    pub fence: Fence,
    /// The task's input.
    pub payload: Vec<u8>,
    pub(crate) cancel: CancellationToken,
    pub(crate) notes: mpsc::Sender<Note>,
}

impl Task {
    /// Reports progress (per mille, clamped to 1000) to the job's watchers. Progress is
    /// advisory: a report made while the worker is far behind sending is dropped.
    pub fn progress(&self, per_mille: u32, message: impl Into<String>) {
        let note = Note::Progress(self.fence, per_mille.min(1000), message.into());
        let _ = self.notes.try_send(note);
    }

    /// Resolves when the coordinator revoked this attempt. The handler's future is
    /// dropped at that moment too; this lets work spawned elsewhere stop with it.
    pub async fn cancelled(&self) {
        self.cancel.cancelled().await
    }

    /// Whether the coordinator revoked this attempt.
    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }
}
