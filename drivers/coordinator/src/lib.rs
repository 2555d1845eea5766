//! keel-coordinator: the runtime around one [`keel_engine::Engine`].
//!
//! - One task owns the engine. [`Handle::apply`] sends it an input; the task drains up
//!   to `max_batch` queued inputs, applies them in order at [`Clock::now_ms`], appends
//!   their [`keel_log::Entry`]s to the log as one batch under its leadership epoch,
//!   and only then releases replies and effects (group commit). A reply is never
//!   released for an input that is not durable. The rules of that pipeline are
//!   [`keel_protocol::commit`]'s, which the simulator drives too; this crate runs its
//!   appends, answers its callers and rebuilds the engine when it asks.
//! - A timer sleeps until [`keel_engine::Engine::next_wakeup`] and delivers
//!   [`keel_engine::Input::Tick`], logged like any input so replay is exact.
//! - Effects go to the worker session registered with [`Handle::route_worker`] or to
//!   every watcher of their job ([`Handle::watch_job`]); every route is bounded, and a
//!   session that falls behind loses its route rather than slowing the coordinator.
//! - [`Coordinator::start`] acquires the partition (waiting as a standby while another
//!   coordinator's lease is live), recovers the engine from the newest snapshot plus
//!   the entries after it, renews the lease in the background and snapshots every
//!   `snapshot_every` entries.
//!
//! Nothing the store does stops a coordinator. A failed append answers its callers
//! ([`CoordinatorError::NotDurable`], saying whether the store is full or out of
//! reach), rebuilds the engine from the log while the lease is kept, and refuses inputs
//! for a short, growing pause. A coordinator whose lease lapses or whose epoch is
//! fenced refuses requests with [`CoordinatorError::NotLeader`] and stands by to take
//! the partition back as a standby would ([`CoordinatorConfig::rejoin`]). It stops
//! for good only on [`Handle::shutdown`] (which steps down so a standby takes over at
//! once), when every handle is dropped (like a crash), or when serving needs an
//! operator: the engine panicked ([`CoordinatorError::EnginePanicked`], naming the
//! input's log offset; the input is recorded and the partition handed back) or the log
//! cannot be recovered ([`CoordinatorError::PoisonedLog`], [`CoordinatorError::Halted`]).
//! [`Handle::stopped`] resolves then. [`check_log`], [`skip_inputs`] and [`cancel_job`]
//! repair a partition's log offline.
//!
//! Load never costs the lease: every log call runs off the runtime's worker threads
//! (on the blocking pool for a log that blocks, such as redb), no append or snapshot
//! starts while a renewal is under way, snapshots are stored while serving goes on,
//! and repeated heartbeats are answered without being logged.
//!
//! The real clock ([`SystemClock`]) and the engine's seed (in
//! [`CoordinatorConfig::engine`]) are injected here; the engine itself is the one the
//! simulator runs.

mod admin;
mod append;
mod batch;
mod clock;
mod config;
mod engine_task;
mod error;
mod fault;
mod handle;
mod io;
mod leadership;
mod metrics;
mod panicked;
mod pipeline;
mod poison;
mod rebuild;
mod recovery;
mod retry;
mod routing;
mod snapshot;
mod standby;
mod term;

pub use admin::{cancel_job, check_log, skip_inputs, AdminReport};
pub use batch::Answer;
#[cfg(any(test, feature = "test-support"))]
pub use clock::ManualClock;
pub use clock::{Clock, Sleep, SystemClock};
pub use config::{default_holder, host_name, CoordinatorConfig};
pub use error::{CoordinatorError, Deposed};
pub use fault::StoreFault;
pub use handle::Handle;
pub use metrics::{Histogram, Metrics};
pub use poison::{JobRef, Met, Poisoned, TickDue};
pub use recovery::recover;
pub use retry::{Retried, RetryError};
pub use routing::{ROUTE_CAPACITY, WATCH_CAPACITY};

use engine_task::{Ended, EngineTask, Settings, Shared};
use keel_log::Log;
use leadership::Leadership;
use routing::Routes;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// Starts coordinators: [`Coordinator::start`] returns the [`Handle`] that serves one.
pub struct Coordinator;

impl Coordinator {
    /// Acquires leadership of the partition in `log` (waiting while another holder's
    /// lease is live), recovers the engine (snapshot + replay), and spawns the engine
    /// task. Must be called within a tokio runtime. Recovery that meets an entry
    /// panicking the engine fails with [`CoordinatorError::PoisonedLog`].
    pub async fn start<L: Log + 'static>(
        config: CoordinatorConfig,
        log: Arc<L>,
        clock: Arc<dyn Clock>,
    ) -> Result<Handle, CoordinatorError> {
        config.validate()?;
        let settings = Settings {
            partition: config.partition,
            holder: config.holder.clone(),
            engine: config.engine.clone(),
            lease_ttl: config.lease_ttl,
            max_batch: config.max_batch,
            snapshot_every: config.snapshot_every,
            rejoin: config.rejoin,
            prepare_engine: config.prepare_engine,
        };
        let lease = leadership::acquire(
            &log,
            settings.partition,
            &settings.holder,
            settings.lease_ttl,
        )
        .await?;
        let leadership = Arc::new(Leadership::new(&lease));
        let term = term::open_term(&log, &settings, &leadership, lease).await?;
        // Leading from the moment the handle exists; a later term leads once recovered.
        leadership.lead();
        let metrics = metrics::Metrics::new(settings.partition, term.epoch, term.next);
        let shared = Arc::new(Shared {
            leadership,
            routes: Routes::default(),
            metrics: Mutex::new(metrics),
        });
        let (commands, receiver) = mpsc::channel(config.max_batch.saturating_mul(2).max(64));
        let task = EngineTask {
            log,
            clock,
            shared: shared.clone(),
            commands: receiver,
            settings,
        };
        tokio::spawn(task.run(term));
        Ok(Handle { commands, shared })
    }
}
