//! What a handler receives and returns.

use super::edges::{AckReport, Acked, EdgeError, EdgeStream};
use super::emits::{EmitBatch, EmitError, Emitted};
use super::side::Side;
use super::usage::{UsageError, UsageRecorded, UsageReport};
use keel_engine::{Fence, JobId, SuspendTimeout, TaskId, TaskInput};
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
    /// A usage report or an emit, answered beside the machine.
    Side(Side),
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
    pub(crate) inputs: Vec<TaskInput>,
    pub(crate) signal: Option<Vec<u8>>,
    /// The keys of the tasks whose streams it reads (`Task::stream`).
    pub(crate) streams: Vec<String>,
    /// How to reach the coordinator, for reading edges.
    pub(crate) client: crate::client::ClientOptions,
    pub(crate) cancel: CancellationToken,
    pub(crate) notes: mpsc::Sender<Note>,
    /// Frames this attempt has had appended: where its next emit starts. Held across
    /// an emit, so emits from one handler go out one at a time, in order.
    pub(crate) emitted: tokio::sync::Mutex<u64>,
}

impl Task {
    /// The output of upstream task `key`: `None` when that task did not succeed (it
    /// was skipped, failed, or had not finished when an any-of or quorum group let
    /// this one start) or is not an upstream task of this one. An empty output is
    /// `Some(&[])`.
    pub fn input(&self, key: &str) -> Option<&[u8]> {
        self.inputs
            .iter()
            .find(|i| i.key == key)
            .and_then(|i| i.output.as_ref())
            .map(|o| o.as_bytes())
    }

    /// Every upstream task's output by key, in the order the task's dependency group
    /// names them, absent ones included as `None`.
    pub fn inputs(&self) -> &[TaskInput] {
        &self.inputs
    }

    /// The payload of the signal that resumed this task, when a signal did (an
    /// attempt after a suspension; `None` before one and after a resume by timeout).
    pub fn signal_payload(&self) -> Option<&[u8]> {
        self.signal.as_deref()
    }

    /// Reports progress (per mille, clamped to 1000) to the job's watchers. Progress is
    /// advisory: a report made while the worker is far behind sending is dropped.
    pub fn progress(&self, per_mille: u32, message: impl Into<String>) {
        let note = Note::Progress(self.fence, per_mille.min(1000), message.into());
        let _ = self.notes.try_send(note);
    }

    /// Reports that this attempt used `amount` of `dimension` of the budget `budget`
    /// (its job's budget of that name, else its tenant's), and waits for the
    /// coordinator's answer. The report is sent again on every reconnection until it
    /// is answered; `dedup_key` (unique per report you mean to count once, e.g. a call
    /// id) makes the coordinator count it once. Reaching a hard limit stops the job's
    /// or tenant's grants; this attempt itself runs on unless the budget revokes.
    pub async fn report_usage(
        &self,
        budget: impl Into<String>,
        dimension: impl Into<String>,
        amount: u64,
        dedup_key: impl Into<String>,
    ) -> Result<UsageRecorded, UsageError> {
        let (answer, answered) = tokio::sync::oneshot::channel();
        let report = UsageReport {
            fence: self.fence,
            budget: budget.into(),
            dimension: dimension.into(),
            amount,
            dedup_key: dedup_key.into(),
            answer,
        };
        self.notes
            .send(Note::Side(Side::Usage(report)))
            .await
            .map_err(|_| UsageError::Stopped)?;
        answered.await.map_err(|_| UsageError::Stopped)?
    }

    /// Appends `frames` to this task's output stream and waits for the coordinator to
    /// have stored them: readers (`keel logs`, `ReadStream`) see them from then on, and
    /// a handler that awaits its emits before returning has them stored before its
    /// outcome. Sent again on every reconnection until answered; the coordinator
    /// appends them once. A full `block` edge to a consumer takes what fits; the rest
    /// waits for the consumer to acknowledge and is sent again, so nothing is lost.
    /// Refused (nothing more appended, the attempt runs on): frames whose data is over
    /// the coordinator's payload limit, more than 65,536 frames, or frames a durable
    /// stream's job has no room left for; a full `error` edge fails the attempt.
    pub async fn emit(&self, frames: Vec<Vec<u8>>) -> Result<Emitted, EmitError> {
        let mut emitted = self.emitted.lock().await;
        let (start, total) = (*emitted, frames.len() as u64);
        let mut summary = Emitted {
            next: start,
            dropped: 0,
            duplicate: true,
        };
        let mut wait = std::time::Duration::from_millis(10);
        let mut held = super::emits::Held::default();
        loop {
            let sent = usize::try_from(*emitted - start).unwrap_or(usize::MAX);
            let rest = frames.get(sent..).unwrap_or_default().to_vec();
            match self.emit_once(*emitted, rest).await {
                Ok(got) => {
                    held.moved();
                    *emitted = got.next;
                    summary.next = got.next;
                    summary.dropped = summary.dropped.saturating_add(got.dropped);
                    summary.duplicate &= got.duplicate;
                    if got.next >= start.saturating_add(total) {
                        return Ok(summary);
                    }
                }
                Err(EmitError::Refused { reason, message }) if reason == "stream_full" => {
                    if held.refused(std::time::Instant::now()) {
                        tracing::warn!(
                            task = %self.key,
                            "an emit has waited {}s on a full edge ({message}): its consumer must acknowledge what it read (Task::ack) before the producer can go on",
                            super::emits::HELD_WARNING.as_secs()
                        );
                    }
                }
                Err(e) => return Err(e),
            }
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.cancel.cancelled() => return Err(EmitError::Stopped),
            }
            wait = (wait * 2).min(std::time::Duration::from_millis(500));
        }
    }

    /// One emit of `frames` from the attempt's frame `from`, answered.
    async fn emit_once(&self, from: u64, frames: Vec<Vec<u8>>) -> Result<Emitted, EmitError> {
        let (answer, answered) = tokio::sync::oneshot::channel();
        let batch = EmitBatch {
            fence: self.fence,
            from,
            frames,
            answer,
        };
        self.notes
            .send(Note::Side(Side::Emit(batch)))
            .await
            .map_err(|_| EmitError::Stopped)?;
        answered.await.map_err(|_| EmitError::Stopped)?
    }

    /// The keys of the tasks whose output streams this one reads while they run (its
    /// job file's `stream_from`), in its spec's order.
    pub fn streams(&self) -> &[String] {
        &self.streams
    }

    /// What this task reads through its streaming edge from task `from`: frames of the
    /// producer's latest lease as its edge's policy chooses them, from the cursor this
    /// task last acknowledged (`Task::ack`), so a retry resumes where the last attempt
    /// got to. Frames come as the producer emits them; the stream ends once the
    /// producer succeeded and every frame owed was read.
    pub fn stream(&self, from: &str) -> EdgeStream {
        EdgeStream {
            client: self.client.clone(),
            consumer: self.task,
            from: from.to_string(),
            at: None,
            pages: None,
            frames: Default::default(),
            end: None,
            skipped: 0,
        }
    }

    /// Acknowledges that this attempt has processed every frame from `from` before
    /// `cursor` (a frame's `seq + 1`): a retry of the task resumes there, and a bounded
    /// edge makes that much room for its producer. Sent again after a reconnect until
    /// answered; a cursor at or below the acknowledged one is answered `duplicate`.
    pub async fn ack(&self, from: &str, cursor: u64) -> Result<Acked, EdgeError> {
        let (answer, answered) = tokio::sync::oneshot::channel();
        let report = AckReport {
            fence: self.fence,
            from: from.to_string(),
            cursor,
            answer,
        };
        self.notes
            .send(Note::Side(Side::Ack(report)))
            .await
            .map_err(|_| EdgeError::Stopped)?;
        answered.await.map_err(|_| EdgeError::Stopped)?
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

#[cfg(test)]
mod tests {
    use super::*;
    use keel_engine::Payload;

    #[test]
    fn inputs_are_read_by_key_and_an_absent_one_is_not_an_empty_one() {
        let (notes, _rx) = mpsc::channel(1);
        let input = |key: &str, output: Option<&str>| TaskInput {
            key: key.into(),
            output: output.map(Payload::from),
        };
        let fence = Fence {
            task: TaskId::new(3),
            attempt: 1,
            epoch: 1,
        };
        let task = Task {
            job: JobId::new(1),
            key: "sum".into(),
            task: TaskId::new(3),
            attempt: 1,
            fence,
            payload: Vec::new(),
            inputs: vec![
                input("a", Some("1")),
                input("b", Some("")),
                input("c", None),
            ],
            signal: Some(b"go".to_vec()),
            streams: vec![],
            client: crate::client::ClientOptions::new("http://127.0.0.1:1"),
            cancel: CancellationToken::new(),
            notes,
            emitted: tokio::sync::Mutex::new(0),
        };
        assert_eq!(task.input("a"), Some(&b"1"[..]));
        assert_eq!(task.input("b"), Some(&b""[..]));
        assert_eq!(task.input("c"), None);
        assert_eq!(task.input("not upstream"), None);
        let keys: Vec<&str> = task.inputs().iter().map(|i| i.key.as_str()).collect();
        assert_eq!(keys, ["a", "b", "c"]);
        assert_eq!(task.signal_payload(), Some(&b"go"[..]));
    }
}
