//! The pipelined group commit of a term. One batch is being appended; the next may
//! already be applied and waits for it, so applying overlaps the log's latency. Never
//! more: a batch's entries can only go to the log once the one before is durable.
//! While a lease renewal is under way no append starts (the applied batch waits), so a
//! renewal waits for at most the one write already under way. Reads and a due
//! snapshot hold the pipeline, so they only ever see durable state.

use crate::append::{Durable, InFlight};
use crate::batch::{Applied, Batch};
use crate::engine_task::{Command, Ended, EngineTask};
use crate::error::{CoordinatorError, Deposed};
use crate::leadership::{Leadership, Status};
use crate::metrics::OpenOffers;
use crate::rebuild::Pause;
use crate::snapshot::SnapshotInFlight;
use crate::term::Term;
use keel_log::{Log, LogError};
use tokio::sync::{oneshot, watch};

type ShutdownTx = oneshot::Sender<Result<(), CoordinatorError>>;

/// Batches past the engine but not yet released.
#[derive(Default)]
pub(crate) struct Pipeline {
    pub appending: Option<InFlight>,
    pub waiting: Option<Applied>,
}

impl Pipeline {
    pub fn is_empty(&self) -> bool {
        self.appending.is_none() && self.waiting.is_none()
    }
}

/// Everything a term's serving loop keeps between wakes.
pub(crate) struct Serving {
    pub pipeline: Pipeline,
    pub offers: OpenOffers,
    /// Asked to shut down: Some(None) when every handle is gone.
    pub shutdown: Option<Option<ShutdownTx>>,
    pub pause: Pause,
    pub snapshot: Option<SnapshotInFlight>,
    /// A wakeup no later than the last tick would make the task tick without pause;
    /// the engine consumes due timers on a tick, so this only guards against a bug.
    pub last_tick: Option<u64>,
    status: watch::Receiver<Status>,
    renewing: watch::Receiver<bool>,
}

impl Serving {
    pub fn new(leadership: &Leadership) -> Serving {
        let mut status = leadership.subscribe();
        status.mark_unchanged();
        Serving {
            pipeline: Pipeline::default(),
            offers: OpenOffers::default(),
            shutdown: None,
            pause: Pause::default(),
            snapshot: None,
            last_tick: None,
            status,
            renewing: leadership.renewing(),
        }
    }

    pub fn renewing(&self) -> bool {
        *self.renewing.borrow()
    }
}

/// What woke the engine task.
pub(crate) enum Wake {
    Command(Option<Command>),
    Timer(Option<u64>),
    Durable(Durable),
    Snapshot(crate::snapshot::Stored),
    LeadershipChanged,
    Renewal,
    Unpaused,
}

async fn durable(appending: &mut Option<InFlight>) -> Durable {
    match appending {
        Some(flight) => flight.durable().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(clock: &dyn crate::Clock, at: Option<u64>) {
    match at {
        Some(at) => clock.sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Puts a command into the batch being gathered.
pub(crate) fn take(command: Command, batch: &mut Batch, shutdown: &mut Option<Option<ShutdownTx>>) {
    match command {
        Command::Apply { input, reply } => batch.push_input(input, reply),
        Command::ApplyAll { inputs, reply } => batch.push_group(inputs, reply),
        Command::Read(read) => batch.push_read(read),
        Command::Shutdown(done) => *shutdown = Some(Some(done)),
    }
}

impl<L: Log + 'static> EngineTask<L> {
    /// What is due before sleeping: a parked batch goes to the log once no renewal is
    /// under way, a due snapshot starts, and a shutdown finishes once nothing is left.
    pub(crate) async fn housekeep(
        &mut self,
        term: &mut Term,
        serving: &mut Serving,
    ) -> Option<Ended> {
        if serving.pipeline.appending.is_none() && !serving.renewing() {
            if let Some(next) = serving.pipeline.waiting.take() {
                serving.pipeline.appending = Some(self.start_append(term, next));
            }
        }
        if serving.pipeline.is_empty()
            && serving.snapshot.is_none()
            && term.next >= term.snapshot_due
            && !serving.renewing()
        {
            serving.snapshot = Some(self.start_snapshot(term));
        }
        if serving.pipeline.is_empty() {
            if let Some(done) = serving.shutdown.take() {
                return Some(self.shut_down(term, done).await);
            }
        }
        None
    }

    /// Sleeps until something needs the engine task.
    pub(crate) async fn next_wake(&mut self, term: &Term, serving: &mut Serving) -> Wake {
        let taking = serving.shutdown.is_none() && may_apply(term, &serving.pipeline);
        let paused = serving.pause.active();
        let wakeup = match (term.engine.next_wakeup(), serving.last_tick) {
            (Some(at), Some(tick)) if at <= tick => Some(tick + 1),
            (wakeup, _) => wakeup,
        };
        let clock = self.clock.clone();
        let renewing = serving.renewing();
        let pause_end = serving.pause.until();
        tokio::select! {
            biased;
            _ = serving.status.changed() => Wake::LeadershipChanged,
            _ = serving.renewing.wait_for(|r| *r != renewing) => Wake::Renewal,
            done = durable(&mut serving.pipeline.appending) => Wake::Durable(done),
            stored = crate::snapshot::stored(&mut serving.snapshot) => Wake::Snapshot(stored),
            command = self.commands.recv(), if taking => Wake::Command(command),
            () = sleep_until(&*clock, wakeup), if taking && !paused => Wake::Timer(wakeup),
            () = tokio::time::sleep_until(pause_end), if paused => Wake::Unpaused,
        }
    }

    /// Gathers more queued commands into `batch`, then applies it: refused while the
    /// log is failing, then parked or appended. An engine panic stops the coordinator.
    pub(crate) async fn apply(
        &mut self,
        term: &mut Term,
        serving: &mut Serving,
        mut batch: Batch,
    ) -> Option<Ended> {
        while serving.shutdown.is_none() && batch.inputs() < self.settings.max_batch {
            match self.commands.try_recv() {
                Ok(command) => take(command, &mut batch, &mut serving.shutdown),
                Err(_) => break,
            }
        }
        if batch.is_empty() {
            return None;
        }
        if serving.pause.active() {
            let partition = self.settings.partition;
            for read in batch.refuse_inputs(|| serving.pause.refusal(partition)) {
                read(&term.engine);
            }
            return None;
        }
        let leadership = self.shared.leadership.clone();
        if let Err(refusal) = leadership.check() {
            tracing::debug!(error = %refusal, "refusing a batch");
            batch.refuse(|| leadership.refusal(leadership.status()));
            return Some(self.leave(term, serving).await);
        }
        let in_flight = serving.pipeline.appending.as_ref().map_or(0, |f| f.size);
        let first_offset = term.next + in_flight as u64;
        let applied = batch.apply(
            &mut term.engine,
            &*self.clock,
            &mut term.coalescer,
            first_offset,
        );
        if applied.poisoned.is_some() {
            return Some(self.stop_on_panic(term, serving, applied).await);
        }
        if serving.pipeline.appending.is_none() && !serving.renewing() {
            serving.pipeline.appending = Some(self.start_append(term, applied));
        } else {
            serving.pipeline.waiting = Some(applied);
        }
        None
    }

    pub(crate) fn start_append(&self, term: &Term, applied: Applied) -> InFlight {
        InFlight::start(
            &self.log,
            self.settings.partition,
            term.epoch,
            term.next,
            applied,
        )
    }

    /// The append under way finished: releases it, or deals with the log's refusal.
    pub(crate) async fn durable(
        &mut self,
        term: &mut Term,
        serving: &mut Serving,
        done: Durable,
    ) -> Option<Ended> {
        let flight = serving.pipeline.appending.take()?;
        match done {
            Ok(appended) => {
                self.release(term, serving, flight, appended);
                serving.pause.succeeded();
                None
            }
            Err(LogError::Fenced { current, .. }) => {
                let leadership = &self.shared.leadership;
                tracing::warn!(partition = leadership.partition, current, "fenced");
                leadership.depose(term.epoch, Deposed::Fenced { current });
                let why = Deposed::Fenced { current };
                let (partition, epoch) = (leadership.partition, term.epoch);
                flight.applied.fail(|| CoordinatorError::NotLeader {
                    partition,
                    epoch,
                    why,
                });
                Some(self.leave(term, serving).await)
            }
            Err(e) => self.rebuild(term, serving, flight, e).await,
        }
    }

    /// Releases a durable batch: its replies, effects and reads.
    pub(crate) fn release(
        &self,
        term: &mut Term,
        serving: &mut Serving,
        flight: InFlight,
        appended: Option<(keel_log::Offset, std::time::Duration)>,
    ) {
        let mut metrics = self.shared.metrics();
        if let Some((end, took)) = appended {
            term.next = end;
            metrics.append_batch_size.observe(flight.size as f64);
            metrics.append_latency_seconds.observe(took.as_secs_f64());
        }
        metrics.log_end = term.next;
        flight.applied.release(
            &term.engine,
            &self.shared.routes,
            &mut metrics,
            &mut serving.offers,
        );
    }

    /// Once the term ends: the batch not yet sent to the log is refused, as nothing of
    /// it was recorded; the one being appended is answered by how its append ends,
    /// since the log may well have stored it.
    pub(crate) async fn settle(&mut self, term: &mut Term, serving: &mut Serving) {
        let leadership = self.shared.leadership.clone();
        if let Some(applied) = serving.pipeline.waiting.take() {
            applied.fail(|| leadership.refusal(leadership.status()));
        }
        if let Some(mut flight) = serving.pipeline.appending.take() {
            match flight.durable().await {
                Ok(appended) => self.release(term, serving, flight, appended),
                Err(e) => {
                    let fault = crate::fault::StoreFault::of(&e);
                    let (partition, code, message) =
                        (leadership.partition, e.code(), e.to_string());
                    flight.applied.fail(|| CoordinatorError::NotDurable {
                        partition,
                        fault,
                        code,
                        message: message.clone(),
                    });
                }
            }
        }
    }
}

/// Whether another batch may be applied now. Not while one already waits, not while
/// the batch being appended has reads (they must see exactly its state), and not while
/// a snapshot is due (it must capture only durable state).
fn may_apply(term: &Term, pipeline: &Pipeline) -> bool {
    if pipeline.waiting.is_some() {
        return false;
    }
    match &pipeline.appending {
        None => term.next < term.snapshot_due,
        Some(flight) => !flight.applied.has_reads() && term.next < term.snapshot_due,
    }
}
