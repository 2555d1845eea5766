//! The worker SDK: one session with the coordinator that registers, asks for as much
//! work as there are free slots, accepts grants, runs a handler per task, renews leases
//! in the background while handlers run, reports outcomes (complete, fail, or suspend
//! until a signal), reports budget usage (`Task::report_usage`), stops handlers whose lease is revoked, reconnects with backoff and
//! drains on shutdown.
//!
//! **Instances.** A registration carries an instance that must exceed every earlier one
//! of the same worker id (the engine refuses smaller ones as delayed messages from dead
//! processes). The first guess is the start time in milliseconds, but nothing relies on
//! the clock: a refusal as stale names the current instance, and the next attempt
//! registers the one after it. Every refused registration waits its turn in the same
//! jittered exponential backoff as a reconnect, so a worker whose instance keeps being
//! refused cannot flood the coordinator (and its log) with registrations.
//!
//! **Coordinators.** Given several addresses, every (re)connection asks them all and
//! registers with the one that leads, so a takeover by a standby elsewhere needs no
//! restart of the worker.
//!
//! ```no_run
//! # async fn demo() -> Result<(), keel_grpc::worker::WorkerError> {
//! use keel_grpc::client::ClientOptions;
//! use keel_grpc::worker::{Outcome, Task, Worker, WorkerConfig};
//! let config = WorkerConfig::new(ClientOptions::new("http://127.0.0.1:7070"), "w1", 8);
//! let summary = Worker::new(config)
//!     .run(|task: Task| async move { Outcome::Complete(task.payload.clone()) }, async {
//!         let _ = tokio::signal::ctrl_c().await;
//!     })
//!     .await?;
//! println!("{} tasks completed", summary.completed);
//! # Ok(()) }
//! ```

mod edges;
mod emits;
mod frames;
mod session;
mod shell;
mod side;
mod task;
mod usage;
mod wire;

pub use edges::{Acked, EdgeError, EdgeFrame, EdgeStream};
pub use emits::{EmitError, Emitted};
pub use keel_engine::TaskInput;
pub use task::{Outcome, Task};
pub use usage::{UsageError, UsageRecorded};

use crate::client::{ClientError, ClientOptions};
use crate::validate::{MAX_ERROR_BYTES, MAX_PROGRESS_BYTES};
use keel_engine::InstanceId;
use keel_protocol::worker::{self as machine, WorkerMachine};
use shell::Shell;
use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;

/// Notes from handlers (progress, outcomes) waiting for the session; a handler's
/// outcome waits for room, progress beyond it is dropped (it is advisory).
const NOTES: usize = 1024;

/// Runs one task. Dropped (cancelled) when the task's lease is revoked.
pub trait Handler: Send + Sync + 'static {
    /// Runs one attempt of `task` and says how it ended.
    fn run(&self, task: Task) -> impl Future<Output = Outcome> + Send;
}

impl<F, Fut> Handler for F
where
    F: Fn(Task) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Outcome> + Send,
{
    fn run(&self, task: Task) -> impl Future<Output = Outcome> + Send {
        self(task)
    }
}

/// Who the worker is and what it serves.
#[derive(Clone, Debug)]
pub struct WorkerConfig {
    /// How to reach the coordinator.
    pub client: ClientOptions,
    /// The worker's stable name; each process registers a new instance under it.
    pub worker_id: String,
    /// This process's first instance; defaults to the start time in milliseconds. If
    /// the coordinator knows a larger one for this worker id, the worker registers the
    /// one after it instead (see the module documentation).
    pub instance: Option<u64>,
    /// What the worker advertises; tasks requiring more are not offered to it.
    pub capabilities: Vec<String>,
    /// Lanes served, in preference order; empty serves the lane "default".
    pub lanes: Vec<String>,
    /// Tasks run at once.
    pub concurrency: u32,
    /// First pause before reconnecting or registering again after a refusal; doubles
    /// with each failure in a row, up to `backoff_max`.
    pub backoff_min: Duration,
    /// Longest pause between reconnect or registration tries.
    pub backoff_max: Duration,
    /// How long shutdown waits for running handlers before cancelling them.
    pub drain_timeout: Duration,
    /// How long the coordinator may take to open a session or answer a command before
    /// the session is treated as broken and opened again (unanswered outcomes are sent
    /// again on the new one). Shorter finds a hung coordinator sooner; too short gives
    /// up on a coordinator that is only busy.
    pub answer_timeout: Duration,
}

impl WorkerConfig {
    /// A worker on the default lane with no capabilities and default pauses.
    pub fn new(client: ClientOptions, worker_id: impl Into<String>, concurrency: u32) -> Self {
        WorkerConfig {
            client,
            worker_id: worker_id.into(),
            instance: None,
            capabilities: Vec::new(),
            lanes: Vec::new(),
            concurrency,
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(5),
            drain_timeout: Duration::from_secs(60),
            answer_timeout: Duration::from_secs(10),
        }
    }
}

/// What a worker did before it stopped: the worker machine's own counts.
pub use keel_protocol::worker::Summary;

/// Why a worker stopped without draining.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// A configuration value is out of range; nothing was sent.
    #[error("invalid worker configuration: {0}")]
    Config(String),
    /// The coordinator refused the registration as malformed; retrying cannot help.
    #[error("the coordinator refused the registration: {0}")]
    Refused(String),
    /// The client options are unusable (URL, CA file, token).
    #[error(transparent)]
    Client(#[from] ClientError),
}

/// A worker process's connection to the coordinator, running a [`Handler`] per task.
pub struct Worker {
    config: WorkerConfig,
}

impl Worker {
    /// A worker that connects when `run` is called.
    pub fn new(config: WorkerConfig) -> Worker {
        Worker { config }
    }

    /// Serves tasks until `shutdown` resolves, then drains: no new grants, running
    /// handlers finish (up to `drain_timeout`) and report, and the worker deregisters.
    pub async fn run<H: Handler>(
        self,
        handler: H,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<Summary, WorkerError> {
        let config = self.config;
        if config.concurrency == 0 {
            return Err(WorkerError::Config("concurrency must be positive".into()));
        }
        if config.answer_timeout.is_zero() {
            return Err(WorkerError::Config(
                "answer_timeout must be positive".into(),
            ));
        }
        let (done_tx, mut done_rx) = mpsc::channel(NOTES);
        let instance = config.instance.unwrap_or_else(now_ms).max(1);
        let machine = WorkerMachine::new(machine_config(&config, instance));
        let shutdown = std::pin::pin!(shutdown);
        Shell::new(config, machine, handler, done_tx)
            .run(&mut done_rx, shutdown)
            .await
    }
}

/// What the machine needs to know of the configuration. The backoff's jitter is seeded
/// from the sub-second part of the clock, which spreads peers (and which the
/// simulator controls).
fn machine_config(config: &WorkerConfig, instance: u64) -> machine::Config {
    let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::from(d.subsec_nanos()))
        .unwrap_or(0);
    machine::Config {
        capabilities: config.capabilities.clone(),
        lanes: config.lanes.clone(),
        concurrency: config.concurrency,
        instance: InstanceId::new(instance),
        backoff_min_ms: ms(config.backoff_min),
        backoff_max_ms: ms(config.backoff_max),
        jitter_seed: seed ^ instance,
        answer_timeout_ms: ms(config.answer_timeout),
        drain_timeout_ms: ms(config.drain_timeout),
        frame_overhead_bytes: crate::server::FRAME_OVERHEAD_BYTES as u64,
        max_error_bytes: MAX_ERROR_BYTES,
        max_progress_bytes: MAX_PROGRESS_BYTES,
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(1)
}
