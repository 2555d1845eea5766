//! The one task that owns the engine. It sleeps until an input arrives, the engine's
//! next timer is due, an append finishes, or leadership is lost; then it drains up to
//! `max_batch` inputs, applies them and group-commits them, releasing their outputs
//! once durable. The next batch is applied while the previous one is being appended. When the log refuses a write the
//! engine, now ahead of the log, is dropped with the task: serving again means
//! recovering from the log.

use crate::append::{Durable, InFlight};
use crate::batch::{Applied, Batch, ReadFn, RepliesTx, ReplyTx};
use crate::clock::Clock;
use crate::error::{CoordinatorError, Deposed};
use crate::leadership::{Leadership, Renewal, Status};
use crate::metrics::{Metrics, OpenOffers};
use crate::routing::Routes;
use keel_engine::{Engine, Input};
use keel_log::{Log, LogError, Offset};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::{mpsc, oneshot};

/// What handles send the engine task.
pub(crate) enum Command {
    Apply {
        input: Input,
        reply: ReplyTx,
    },
    ApplyAll {
        inputs: Vec<Input>,
        reply: RepliesTx,
    },
    Read(ReadFn),
    Shutdown(oneshot::Sender<Result<(), CoordinatorError>>),
}

/// State shared by the engine task and every handle.
pub(crate) struct Shared {
    pub leadership: Arc<Leadership>,
    pub routes: Routes,
    pub metrics: Mutex<Metrics>,
}

impl Shared {
    pub fn metrics(&self) -> MutexGuard<'_, Metrics> {
        // Metrics are plain counters; a panic mid-update leaves them usable.
        self.metrics
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

pub(crate) struct EngineTask<L> {
    pub engine: Engine,
    pub log: Arc<L>,
    pub clock: Arc<dyn Clock>,
    pub shared: Arc<Shared>,
    pub commands: mpsc::Receiver<Command>,
    /// Where the next append goes.
    pub next: Offset,
    /// The log end at which the next snapshot is due.
    pub snapshot_due: Offset,
    pub snapshot_every: u64,
    pub max_batch: usize,
    /// Held so the lease is renewed exactly as long as this task runs.
    pub _renewal: Renewal,
}

/// What woke the engine task.
enum Wake {
    Command(Option<Command>),
    Timer(Option<u64>),
    Durable(Durable),
    LeadershipChanged,
}

/// Whether the task keeps serving after a commit.
enum Served {
    Continue,
    Deposed,
}

/// Batches past the engine but not yet released. One is being appended; the next may
/// already be applied and waits for it, so applying overlaps the log's latency. Never
/// more: a batch's entries can only go to the log once the one before is durable.
#[derive(Default)]
struct Pipeline {
    appending: Option<InFlight>,
    waiting: Option<Applied>,
}

impl Pipeline {
    fn is_empty(&self) -> bool {
        self.appending.is_none() && self.waiting.is_none()
    }
}

async fn durable(appending: &mut Option<InFlight>) -> Durable {
    match appending {
        Some(flight) => flight.durable().await,
        None => std::future::pending().await,
    }
}

impl<L: Log + 'static> EngineTask<L> {
    pub async fn run(mut self) {
        let clock = self.clock.clone();
        let mut status = self.shared.leadership.subscribe();
        let mut offers = OpenOffers::default();
        let mut pipeline = Pipeline::default();
        let mut shutdown: Option<oneshot::Sender<_>> = None;
        // A wakeup no later than the last tick would make the task tick without pause;
        // the engine consumes due timers on a tick, so this only guards against a bug.
        let mut last_tick = None;
        loop {
            if pipeline.is_empty() {
                if let Some(done) = shutdown.take() {
                    let _ = done.send(self.step_down().await);
                    break;
                }
            }
            let taking = shutdown.is_none() && self.may_apply(&pipeline);
            let wakeup = match (self.engine.next_wakeup(), last_tick) {
                (Some(at), Some(tick)) if at <= tick => Some(tick + 1),
                (wakeup, _) => wakeup,
            };
            let wake = tokio::select! {
                biased;
                _ = status.changed() => Wake::LeadershipChanged,
                done = durable(&mut pipeline.appending) => Wake::Durable(done),
                command = self.commands.recv(), if taking => Wake::Command(command),
                () = sleep_until(&*clock, wakeup), if taking => Wake::Timer(wakeup),
            };
            let mut batch = Batch::default();
            match wake {
                Wake::LeadershipChanged => {
                    if self.shared.leadership.status() != Status::Leading {
                        break;
                    }
                    continue;
                }
                Wake::Durable(done) => {
                    if let Served::Deposed = self.durable(done, &mut pipeline, &mut offers).await {
                        break;
                    }
                    continue;
                }
                // Every handle is gone: nobody can be answered, so stop without stepping
                // down, as a crash would; a standby takes over when the lease lapses.
                Wake::Command(None) => break,
                Wake::Command(Some(command)) => take(command, &mut batch, &mut shutdown),
                Wake::Timer(Some(at)) if clock.now_ms() >= at => {
                    last_tick = Some(clock.now_ms().max(self.engine.now()));
                    batch.push_tick();
                }
                Wake::Timer(_) => continue,
            }
            while shutdown.is_none() && batch.inputs() < self.max_batch {
                match self.commands.try_recv() {
                    Ok(command) => take(command, &mut batch, &mut shutdown),
                    Err(_) => break,
                }
            }
            if let Served::Deposed = self.apply(batch, &mut pipeline) {
                break;
            }
        }
        self.settle(&mut pipeline, &mut offers).await;
        self.shared.leadership.end(Status::Stopped);
        self.shared.metrics().leader = false;
        self.shared.routes.close();
    }

    /// Once serving stops: the batch not yet sent to the log is refused, as nothing
    /// of it was recorded; the one being appended is answered by how its append ends,
    /// since the log may well have stored it.
    async fn settle(&mut self, pipeline: &mut Pipeline, offers: &mut OpenOffers) {
        let leadership = self.shared.leadership.clone();
        if let Some(applied) = pipeline.waiting.take() {
            applied.fail(|| leadership.refusal(leadership.status()));
        }
        if let Some(mut flight) = pipeline.appending.take() {
            let done = flight.durable().await;
            let _ = self.finish_append(flight, done, offers);
        }
    }

    /// Whether another batch may be applied now. Not while one already waits, not
    /// while the batch being appended has reads (they must see exactly its state), and
    /// not while a snapshot is due (it must capture only durable state).
    fn may_apply(&self, pipeline: &Pipeline) -> bool {
        match &pipeline.appending {
            None => true,
            Some(flight) => {
                pipeline.waiting.is_none()
                    && !flight.applied.has_reads()
                    && self.next < self.snapshot_due
            }
        }
    }

    /// Applies a batch and starts its append, or parks it behind the one appending.
    fn apply(&mut self, batch: Batch, pipeline: &mut Pipeline) -> Served {
        if batch.is_empty() {
            return Served::Continue;
        }
        let leadership = self.shared.leadership.clone();
        if let Err(refusal) = leadership.check() {
            tracing::debug!(error = %refusal, "refusing a batch");
            batch.refuse(|| leadership.refusal(leadership.status()));
            return Served::Deposed;
        }
        let applied = batch.apply(&mut self.engine, &*self.clock);
        if pipeline.appending.is_none() {
            pipeline.appending = Some(self.start_append(applied));
        } else {
            pipeline.waiting = Some(applied);
        }
        Served::Continue
    }

    fn start_append(&self, applied: Applied) -> InFlight {
        let leadership = &self.shared.leadership;
        InFlight::start(
            &self.log,
            leadership.partition,
            leadership.epoch,
            self.next,
            applied,
        )
    }

    /// The append finished: releases its batch and starts the waiting one, or stops
    /// serving if the log refused it.
    async fn durable(
        &mut self,
        done: Durable,
        pipeline: &mut Pipeline,
        offers: &mut OpenOffers,
    ) -> Served {
        let Some(flight) = pipeline.appending.take() else {
            return Served::Continue;
        };
        if let Served::Deposed = self.finish_append(flight, done, offers) {
            return Served::Deposed;
        }
        match pipeline.waiting.take() {
            Some(next) => {
                pipeline.appending = Some(self.start_append(next));
                Served::Continue
            }
            None => self.snapshot_if_due().await,
        }
    }

    /// Releases a durable batch, or answers its callers with why it is not known to be
    /// and stops leading.
    fn finish_append(
        &mut self,
        flight: InFlight,
        done: Durable,
        offers: &mut OpenOffers,
    ) -> Served {
        let appended = match done {
            Ok(appended) => appended,
            Err(e) => {
                let leadership = self.shared.leadership.clone();
                let partition = leadership.partition;
                let (code, message) = (e.code(), e.to_string());
                tracing::error!(partition, error = %e, "append failed; stopping");
                let why = self.depose(e);
                flight.applied.fail(|| match why {
                    Deposed::Fenced { current } => CoordinatorError::NotLeader {
                        partition,
                        epoch: leadership.epoch,
                        why: Deposed::Fenced { current },
                    },
                    _ => CoordinatorError::NotDurable {
                        partition,
                        code,
                        message: message.clone(),
                    },
                });
                return Served::Deposed;
            }
        };
        let mut metrics = self.shared.metrics();
        if let Some((end, took)) = appended {
            self.next = end;
            metrics.append_batch_size.observe(flight.size as f64);
            metrics.append_latency_seconds.observe(took.as_secs_f64());
        }
        metrics.log_end = self.next;
        flight
            .applied
            .release(&self.engine, &self.shared.routes, &mut metrics, offers);
        Served::Continue
    }

    /// Stores a snapshot once `snapshot_every` entries followed the last one. A failed
    /// store changes nothing in the log, so serving goes on and it is tried again later;
    /// only a fenced one deposes.
    async fn snapshot_if_due(&mut self) -> Served {
        if self.next < self.snapshot_due {
            return Served::Continue;
        }
        let leadership = &self.shared.leadership;
        let snapshot = keel_log::snapshot_of(&self.engine, self.next);
        let stored = self
            .log
            .store_snapshot(leadership.partition, leadership.epoch, &snapshot)
            .await;
        match stored {
            Ok(()) => {
                self.snapshot_due = self.next.saturating_add(self.snapshot_every);
                self.shared.metrics().snapshots += 1;
                Served::Continue
            }
            Err(e @ LogError::Fenced { .. }) => {
                self.depose(e);
                Served::Deposed
            }
            Err(e) => {
                tracing::warn!(partition = leadership.partition, error = %e, "snapshot failed");
                self.snapshot_due = self.next + (self.snapshot_every / 4).max(1);
                self.shared.metrics().snapshot_failures += 1;
                Served::Continue
            }
        }
    }

    /// Records why the log refused a write and stops leading.
    fn depose(&self, error: LogError) -> Deposed {
        let why = match error {
            LogError::Fenced { current, .. } => Deposed::Fenced { current },
            _ => Deposed::StorageFailed,
        };
        self.shared.leadership.end(Status::Deposed(why));
        why
    }

    /// Hands the partition back so a standby need not wait for the lease to lapse.
    async fn step_down(&self) -> Result<(), CoordinatorError> {
        let leadership = &self.shared.leadership;
        leadership.end(Status::Stopped);
        self.log.step_down(&leadership.lease()).await?;
        tracing::info!(partition = leadership.partition, "stepped down");
        Ok(())
    }
}

fn take(
    command: Command,
    batch: &mut Batch,
    shutdown: &mut Option<oneshot::Sender<Result<(), CoordinatorError>>>,
) {
    match command {
        Command::Apply { input, reply } => batch.push_input(input, reply),
        Command::ApplyAll { inputs, reply } => batch.push_group(inputs, reply),
        Command::Read(read) => batch.push_read(read),
        Command::Shutdown(done) => *shutdown = Some(done),
    }
}

async fn sleep_until(clock: &dyn Clock, at: Option<u64>) {
    match at {
        Some(at) => clock.sleep_until(at).await,
        None => std::future::pending().await,
    }
}
