//! The pipelined group commit of a term, driving [`keel_protocol::commit`]'s machine:
//! it decides what to apply, append, release and refuse; this runs the appends in
//! their own tasks and answers the callers. One batch is being appended; the next may
//! already be applied and waits for it, so applying overlaps the log's latency. While
//! a lease renewal is under way no append starts (the applied batch waits), so a
//! renewal waits for at most the one write already under way. Reads and a due
//! snapshot hold the pipeline, so they only ever see durable state.

use crate::append::{Durable, InFlight};
use crate::batch::{Applied, Applier, Machine, Request, Waiter};
use crate::engine_task::{Command, Ended, EngineTask};
use crate::error::{CoordinatorError, Deposed};
use crate::fault::StoreFault;
use crate::leadership::{Leadership, Status};
use crate::metrics::OpenOffers;
use crate::snapshot::SnapshotInFlight;
use crate::term::Term;
use keel_log::{Log, LogError};
use keel_protocol::commit::{Action, AppendResult, Refusal, Refused, Settings};
use tokio::sync::{oneshot, watch};

type ShutdownTx = oneshot::Sender<Result<(), CoordinatorError>>;

/// The machine, and the append it asked for while that runs.
pub(crate) struct Pipeline {
    pub machine: Machine,
    pub appending: Option<InFlight>,
}

impl Pipeline {
    pub(crate) fn is_empty(&self) -> bool {
        self.appending.is_none() && self.machine.is_empty()
    }
}

/// Why the last append failed, as its callers are told.
pub(crate) struct Failure {
    pub fault: StoreFault,
    pub code: &'static str,
    pub message: String,
}

impl Failure {
    pub(crate) fn of(error: &LogError) -> Failure {
        Failure {
            fault: StoreFault::of(error),
            code: error.code(),
            message: error.to_string(),
        }
    }
}

/// Everything a term's serving loop keeps between wakes.
pub(crate) struct Serving {
    pub pipeline: Pipeline,
    pub offers: OpenOffers,
    /// Asked to shut down: Some(None) when every handle is gone.
    pub shutdown: Option<Option<ShutdownTx>>,
    /// When the pause after a rebuild ends, while the machine pauses.
    pub paused_until: Option<tokio::time::Instant>,
    pub snapshot: Option<SnapshotInFlight>,
    /// A wakeup no later than the last tick would make the task tick without pause;
    /// the engine consumes due timers on a tick, so this only guards against a bug.
    pub last_tick: Option<u64>,
    /// Why the last append failed.
    pub failure: Option<Failure>,
    status: watch::Receiver<Status>,
    renewing: watch::Receiver<bool>,
}

impl Serving {
    pub(crate) fn new(leadership: &Leadership, term: &Term, max_batch: usize) -> Serving {
        let mut status = leadership.subscribe();
        status.mark_unchanged();
        let settings = Settings {
            max_batch,
            liveness_timeout_ms: term.engine.config().liveness_timeout_ms,
        };
        Serving {
            pipeline: Pipeline {
                machine: Machine::new(settings, term.next),
                appending: None,
            },
            offers: OpenOffers::default(),
            shutdown: None,
            paused_until: None,
            snapshot: None,
            last_tick: None,
            failure: None,
            status,
            renewing: leadership.renewing(),
        }
    }

    pub(crate) fn renewing(&self) -> bool {
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

/// What the machine asked for that the serving loop must carry out itself.
pub(crate) enum Next {
    Rebuild,
    /// Boxed: a poisoned input carries its whole description.
    Panicked(Box<Applied>),
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

/// Hands a command to the machine.
pub(crate) fn take(
    command: Command,
    machine: &mut Machine,
    shutdown: &mut Option<Option<ShutdownTx>>,
) {
    match command {
        Command::Apply { input, reply } => machine.push(Request::Input {
            input,
            waiter: Waiter::One(reply),
        }),
        Command::ApplyAll { inputs, reply } => machine.push(Request::Group {
            inputs,
            waiter: Waiter::Group(reply),
        }),
        Command::Read(read) => machine.push(Request::Read(read)),
        Command::Shutdown(done) => *shutdown = Some(Some(done)),
    }
}

impl<L: Log + 'static> EngineTask<L> {
    /// What is due before sleeping: the machine learns whether a renewal or a due
    /// snapshot holds it (a parked batch goes to the log once no renewal is under
    /// way), a due snapshot starts, and a shutdown finishes once nothing is left.
    pub(crate) async fn housekeep(
        &mut self,
        term: &mut Term,
        serving: &mut Serving,
    ) -> Option<Ended> {
        let snapshot_due = term.next >= term.snapshot_due;
        let renewing = serving.renewing();
        serving.pipeline.machine.hold(renewing, snapshot_due);
        self.act(term, serving);
        if serving.pipeline.is_empty() && serving.snapshot.is_none() && snapshot_due && !renewing {
            serving.snapshot = Some(self.start_snapshot(term));
            let snapshot_due = term.next >= term.snapshot_due;
            serving.pipeline.machine.hold(renewing, snapshot_due);
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
        let taking = serving.shutdown.is_none() && serving.pipeline.machine.taking();
        let paused = serving.pipeline.machine.is_paused();
        let wakeup = match (term.engine.next_wakeup(), serving.last_tick) {
            (Some(at), Some(tick)) if at <= tick => Some(tick + 1),
            (wakeup, _) => wakeup,
        };
        let clock = self.clock.clone();
        let renewing = serving.renewing();
        let pause_end = serving
            .paused_until
            .unwrap_or_else(tokio::time::Instant::now);
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

    /// Gathers more queued commands into the machine, then has it apply them: refused
    /// while the log is failing, then parked or appended. An engine panic stops the
    /// coordinator.
    pub(crate) async fn apply(&mut self, term: &mut Term, serving: &mut Serving) -> Option<Ended> {
        let machine = &mut serving.pipeline.machine;
        while serving.shutdown.is_none() && machine.has_room() {
            match self.commands.try_recv() {
                Ok(command) => take(command, machine, &mut serving.shutdown),
                Err(_) => break,
            }
        }
        if !machine.has_work() {
            return None;
        }
        let leadership = self.shared.leadership.clone();
        if let Err(refusal) = leadership.check() {
            tracing::debug!(error = %refusal, "refusing a batch");
            return Some(self.leave(term, serving).await);
        }
        let mut applier = Applier {
            engine: &mut term.engine,
            clock: &*self.clock,
            poisoned: None,
        };
        machine.apply(&mut applier);
        let poisoned = applier.poisoned.take();
        match self.act(term, serving) {
            Some(Next::Panicked(mut applied)) => {
                applied.poisoned = poisoned;
                Some(self.stop_on_panic(term, serving, *applied).await)
            }
            Some(Next::Rebuild) | None => None,
        }
    }

    /// Carries out what the machine decided: appends start, durable batches are
    /// released, refused requests answered. A rebuild or an engine panic is handed back.
    pub(crate) fn act(&self, term: &mut Term, serving: &mut Serving) -> Option<Next> {
        let mut next = None;
        while let Some(action) = serving.pipeline.machine.next_action() {
            match action {
                Action::Append(batch) => {
                    let applied = Applied {
                        batch,
                        poisoned: None,
                    };
                    serving.pipeline.appending = Some(self.start_append(term, applied));
                }
                Action::Release(released) => {
                    let mut metrics = self.shared.metrics();
                    crate::batch::release(
                        released,
                        &term.engine,
                        &self.shared.routes,
                        &mut metrics,
                        &mut serving.offers,
                    );
                }
                Action::Refuse(refused) => self.refuse(term, serving, refused),
                Action::Rebuild(_) => next = Some(Next::Rebuild),
                Action::Pause { ms, .. } => {
                    let until = tokio::time::Instant::now() + std::time::Duration::from_millis(ms);
                    serving.paused_until = Some(until);
                }
                Action::Panicked(batch) => {
                    next = Some(Next::Panicked(Box::new(Applied {
                        batch,
                        poisoned: None,
                    })))
                }
            }
        }
        next
    }

    /// Answers refused requests with the coordinator's error for `refusal`.
    fn refuse(
        &self,
        term: &Term,
        serving: &Serving,
        refused: Refused<Waiter, crate::batch::ReadFn>,
    ) {
        let leadership = &self.shared.leadership;
        let partition = self.settings.partition;
        let failure = serving.failure.as_ref();
        let (fault, code, message) = failure
            .map_or((StoreFault::Failed, "storage", String::new()), |f| {
                (f.fault, f.code, f.message.clone())
            });
        let error = || match refused.refusal {
            Refusal::NotDurable(_) => CoordinatorError::NotDurable {
                partition,
                fault,
                code,
                message: message.clone(),
            },
            Refusal::Unrecorded(_) => CoordinatorError::Unavailable {
                partition,
                fault,
                message: format!("the batch before it failed to append: {message}"),
            },
            Refusal::Unavailable(_) => CoordinatorError::Unavailable {
                partition,
                fault,
                message: format!("rebuilding from the log after a failed append: {message}"),
            },
            Refusal::Paused(_) => CoordinatorError::Unavailable {
                partition,
                fault,
                message: format!("the last append failed: {message}"),
            },
            Refusal::NotLeader {
                fenced_by: Some(current),
            } => CoordinatorError::NotLeader {
                partition,
                epoch: term.epoch,
                why: Deposed::Fenced { current },
            },
            Refusal::NotLeader { fenced_by: None } | Refusal::Stopped => {
                leadership.refusal(leadership.status())
            }
        };
        // Dropping a read tells its caller the coordinator stopped serving.
        for waiter in refused.waiters {
            waiter.refuse(error());
        }
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
                None
            }
            Err(LogError::Fenced { current, .. }) => {
                let leadership = &self.shared.leadership;
                tracing::warn!(partition = leadership.partition, current, "fenced");
                leadership.depose(term.epoch, Deposed::Fenced { current });
                let result = AppendResult::Fenced { current };
                serving
                    .pipeline
                    .machine
                    .append_done(flight.applied.batch, result);
                self.act(term, serving);
                Some(self.leave(term, serving).await)
            }
            Err(e) => {
                let failure = Failure::of(&e);
                let fault = crate::fault::to_protocol(failure.fault);
                serving.failure = Some(failure);
                let result = AppendResult::Failed(fault);
                serving
                    .pipeline
                    .machine
                    .append_done(flight.applied.batch, result);
                match self.act(term, serving) {
                    Some(Next::Rebuild) => self.rebuild(term, serving, e).await,
                    _ => None,
                }
            }
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
        {
            let mut metrics = self.shared.metrics();
            if let Some((end, took)) = appended {
                term.next = end;
                metrics.append_batch_size.observe(flight.size as f64);
                metrics.append_latency_seconds.observe(took.as_secs_f64());
            }
            metrics.log_end = term.next;
        }
        let machine = &mut serving.pipeline.machine;
        machine.append_done(flight.applied.batch, AppendResult::Durable);
        self.act(term, serving);
    }

    /// Once the term ends: what was not sent to the log is refused, as nothing of it was
    /// recorded; the batch being appended is answered by how its append ends, since the
    /// log may well have stored it.
    pub(crate) async fn settle(&mut self, term: &mut Term, serving: &mut Serving) {
        serving
            .pipeline
            .machine
            .stop(Refusal::NotLeader { fenced_by: None });
        self.act(term, serving);
        if let Some(mut flight) = serving.pipeline.appending.take() {
            match flight.durable().await {
                Ok(appended) => self.release(term, serving, flight, appended),
                Err(e) => {
                    let failure = Failure::of(&e);
                    let fault = crate::fault::to_protocol(failure.fault);
                    serving.failure = Some(failure);
                    let result = AppendResult::Failed(fault);
                    serving
                        .pipeline
                        .machine
                        .append_done(flight.applied.batch, result);
                    self.act(term, serving);
                }
            }
        }
    }
}
