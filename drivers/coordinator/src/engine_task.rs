//! The one task that owns the engine. It sleeps until an input arrives, the engine's
//! next timer is due, or leadership is lost; then it drains up to `max_batch` inputs,
//! group-commits them and releases their outputs. When the log refuses a write the
//! engine, now ahead of the log, is dropped with the task: serving again means
//! recovering from the log.

use crate::batch::{Batch, ReadFn, ReplyTx};
use crate::clock::Clock;
use crate::error::{CoordinatorError, Deposed};
use crate::leadership::{Leadership, Renewal, Status};
use crate::metrics::{Metrics, OpenOffers};
use crate::routing::Routes;
use keel_engine::{Engine, Input};
use keel_log::{Log, LogError, Offset};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;
use tokio::sync::{mpsc, oneshot};

/// What handles send the engine task.
pub(crate) enum Command {
    Apply { input: Input, reply: ReplyTx },
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
    LeadershipChanged,
}

/// Whether the task keeps serving after a commit.
enum Served {
    Continue,
    Deposed,
}

impl<L: Log + 'static> EngineTask<L> {
    pub async fn run(mut self) {
        let clock = self.clock.clone();
        let mut status = self.shared.leadership.subscribe();
        let mut offers = OpenOffers::default();
        // A wakeup no later than the last tick would make the task tick without pause;
        // the engine consumes due timers on a tick, so this only guards against a bug.
        let mut last_tick = None;
        loop {
            let wakeup = match (self.engine.next_wakeup(), last_tick) {
                (Some(at), Some(tick)) if at <= tick => Some(tick + 1),
                (wakeup, _) => wakeup,
            };
            let wake = tokio::select! {
                biased;
                _ = status.changed() => Wake::LeadershipChanged,
                command = self.commands.recv() => Wake::Command(command),
                () = sleep_until(&*clock, wakeup) => Wake::Timer(wakeup),
            };
            let mut batch = Batch::default();
            let mut shutdown = None;
            match wake {
                Wake::LeadershipChanged => {
                    if self.shared.leadership.status() != Status::Leading {
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
            if let Served::Deposed = self.commit(batch, &mut offers).await {
                break;
            }
            if let Some(done) = shutdown {
                let _ = done.send(self.step_down().await);
                break;
            }
        }
        self.shared.leadership.end(Status::Stopped);
        self.shared.metrics().leader = false;
        self.shared.routes.close();
    }

    /// Applies, appends and releases one batch.
    async fn commit(&mut self, batch: Batch, offers: &mut OpenOffers) -> Served {
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
        let size = applied.payloads.len();
        let mut latency = None;
        if size > 0 {
            let started = Instant::now();
            let appended = self
                .log
                .append(
                    leadership.partition,
                    leadership.epoch,
                    self.next,
                    &applied.payloads,
                )
                .await;
            match appended {
                Ok(end) => self.next = end,
                Err(e) => {
                    let partition = leadership.partition;
                    let (code, message) = (e.code(), e.to_string());
                    tracing::error!(partition, error = %e, "append failed; stopping");
                    match self.depose(e) {
                        Deposed::Fenced { current } => {
                            applied.fail(|| CoordinatorError::NotLeader {
                                partition,
                                epoch: leadership.epoch,
                                why: Deposed::Fenced { current },
                            })
                        }
                        _ => applied.fail(|| CoordinatorError::NotDurable {
                            partition,
                            code,
                            message: message.clone(),
                        }),
                    }
                    return Served::Deposed;
                }
            }
            latency = Some(started.elapsed().as_secs_f64());
        }
        {
            let mut metrics = self.shared.metrics();
            if let Some(latency) = latency {
                metrics.append_batch_size.observe(size as f64);
                metrics.append_latency_seconds.observe(latency);
            }
            metrics.log_end = self.next;
            applied.release(&self.engine, &self.shared.routes, &mut metrics, offers);
        }
        self.snapshot_if_due().await
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
