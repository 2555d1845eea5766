//! What the gRPC service and tests hold: a cheap, cloneable way to reach the engine
//! task, plus the routes and metrics it shares.

use crate::batch::{Replies, Reply};
use crate::engine_task::{Command, Shared};
use crate::error::CoordinatorError;
use crate::leadership::Status;
use crate::metrics::Metrics;
use keel_engine::{Effect, Engine, Input, JobId, WorkerId};
use keel_log::{Epoch, Partition};
use std::sync::Arc;
use tokio::sync::{broadcast, mpsc, oneshot};

/// A running coordinator, cheap to clone: every front end (gRPC, console, admin)
/// submits inputs and runs reads through one.
#[derive(Clone)]
pub struct Handle {
    pub(crate) commands: mpsc::Sender<Command>,
    pub(crate) shared: Arc<Shared>,
}

impl Handle {
    /// Applies one input once it is durable; returns the engine's reply (None for Tick).
    pub async fn apply(&self, input: Input) -> Reply {
        self.refuse_unless_leading()?;
        let (reply, answer) = oneshot::channel();
        self.send(Command::Apply { input, reply }).await?;
        answer.await.map_err(|_| self.gone())?
    }

    /// Applies `inputs` one after another in the same group commit and answers them
    /// together, in order, once all are durable: one message to the engine task for a
    /// whole frame of a worker's commands.
    pub async fn apply_all(&self, inputs: Vec<Input>) -> Replies {
        self.refuse_unless_leading()?;
        let (reply, answer) = oneshot::channel();
        self.send(Command::ApplyAll { inputs, reply }).await?;
        answer.await.map_err(|_| self.gone())?
    }

    /// Routes effects addressed to this worker (`Effect::recipient()` is
    /// `Recipient::Worker`) to the returned receiver, replacing any earlier route for
    /// that worker (a reconnect). Effects for a worker with no route are dropped; the
    /// engine's timers recover from that. The stream ends when the coordinator stops.
    ///
    /// The route holds at most [`crate::ROUTE_CAPACITY`] effects: a receiver that falls
    /// that far behind loses its route (the stream ends), and its session should end
    /// so the worker reconnects. Every route ends when a term of leadership ends.
    pub fn route_worker(&self, worker: WorkerId) -> mpsc::Receiver<Effect> {
        self.shared.routes.route_worker(worker)
    }

    /// Every effect addressed to this job, from now on. The stream ends after the
    /// job's `JobFinished`, or when the coordinator stops.
    pub fn watch_job(&self, job: JobId) -> broadcast::Receiver<Effect> {
        self.shared.routes.watch_job(job)
    }

    /// Runs a read-only query against the current engine state (not logged). It runs
    /// after every input sent before it is durable, and only while leading.
    pub async fn read<R: Send + 'static>(
        &self,
        f: impl FnOnce(&Engine) -> R + Send + 'static,
    ) -> Result<R, CoordinatorError> {
        self.refuse_unless_leading()?;
        let (tx, rx) = oneshot::channel();
        let read = Box::new(move |engine: &Engine| {
            let _ = tx.send(f(engine));
        });
        self.send(Command::Read(read)).await?;
        rx.await.map_err(|_| self.gone())
    }

    /// Metrics snapshot for the Prometheus endpoint.
    pub fn metrics(&self) -> Metrics {
        let mut metrics = self.shared.metrics().clone();
        metrics.leader = self.is_leader();
        metrics
    }

    /// Whether this coordinator currently leads its partition.
    /// Whether it leads its partition now; inputs are refused while it does not.
    pub fn is_leader(&self) -> bool {
        self.shared.leadership.is_leader()
    }

    /// The partition it serves.
    pub fn partition(&self) -> Partition {
        self.shared.leadership.partition
    }

    /// The leadership epoch this coordinator holds (or held last).
    pub fn epoch(&self) -> Epoch {
        self.shared.leadership.epoch()
    }

    /// Resolves once this coordinator stops for good (shut down, every handle dropped,
    /// the engine panicked, the log needs an operator, or it lost its partition with
    /// `rejoin` off), with the error its requests now get, so a server can exit.
    pub async fn stopped(&self) -> CoordinatorError {
        self.wait_for(|s| s == Status::Stopped).await
    }

    /// Resolves once the current term of leadership ends (or has ended), with the
    /// error requests get meanwhile. With `rejoin` on, the coordinator then stands by
    /// to take the partition back ([`Handle::leading`]).
    pub async fn deposed(&self) -> CoordinatorError {
        self.wait_for(|s| s != Status::Leading).await
    }

    /// Resolves once this coordinator leads (at once if it does), with its epoch, or
    /// with why it stopped for good.
    pub async fn leading(&self) -> Result<Epoch, CoordinatorError> {
        match self
            .wait_for_status(|s| s == Status::Leading || s == Status::Stopped)
            .await
        {
            Status::Leading => Ok(self.epoch()),
            other => Err(self.shared.leadership.refusal(other)),
        }
    }

    async fn wait_for(&self, done: impl Fn(Status) -> bool) -> CoordinatorError {
        let status = self.wait_for_status(done).await;
        self.shared.leadership.refusal(status)
    }

    async fn wait_for_status(&self, done: impl Fn(Status) -> bool) -> Status {
        let mut status = self.shared.leadership.subscribe();
        let seen = status.wait_for(|s| done(*s)).await.map(|s| *s);
        seen.unwrap_or(Status::Stopped)
    }

    /// Stops the engine task after flushing the pending batch, and steps down so a
    /// standby takes over without waiting for the lease to lapse. Succeeds at once if
    /// the coordinator had already stopped or was standing by; one whose lease was lost
    /// while serving reports why.
    pub async fn shutdown(self) -> Result<(), CoordinatorError> {
        let (done, finished) = oneshot::channel();
        if self.commands.send(Command::Shutdown(done)).await.is_err() {
            return self.stopped_result();
        }
        match finished.await {
            Ok(result) => result,
            Err(_) => self.stopped_result(),
        }
    }

    fn stopped_result(&self) -> Result<(), CoordinatorError> {
        match self
            .shared
            .leadership
            .refusal(self.shared.leadership.status())
        {
            e @ CoordinatorError::NotLeader { .. } => Err(e),
            _ => Ok(()),
        }
    }

    async fn send(&self, command: Command) -> Result<(), CoordinatorError> {
        self.commands.send(command).await.map_err(|_| self.gone())
    }

    fn refuse_unless_leading(&self) -> Result<(), CoordinatorError> {
        match self.shared.leadership.status() {
            Status::Leading => Ok(()),
            other => Err(self.shared.leadership.refusal(other)),
        }
    }

    /// The engine task dropped a request: say why.
    fn gone(&self) -> CoordinatorError {
        self.shared
            .leadership
            .refusal(self.shared.leadership.status())
    }
}
