//! The simulated coordinator: the real engine behind the production commit pipeline
//! ([`keel_protocol::commit`]). The pipeline decides what to apply, append, release
//! and refuse; this carries it out against the simulated storage ([`Durable`]) with
//! appends that take virtual time: the group commit interval, plus any slow fsync.
//! Replies and effects leave only once the append that holds their input completed.
//!
//! When the run cannot crash the coordinator or fault its storage, appends still take
//! their time but write nothing, and no durable state is kept.

use crate::check::{Check, CheckFailure};
use crate::check_pace::CheckPace;
use crate::durable::{failure, Durable, EngineHook};
use crate::read_checks::{ReadSeen, StatusRead};
use crate::rng::SimRng;
use crate::storage::{Append, Corruption, Entry};
use keel_engine::{Config, Engine, Input, Outputs, Time};
use keel_protocol::commit::Request;
use keel_protocol::commit::{
    Action, AppendResult, Apply, Batch, Fault, Outcome, Pipeline, Reply, Settings,
};

/// Who sent an input, so its reply can be routed back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Origin {
    Worker { idx: usize, req: u64 },
    Client { req: u64 },
    Timer,
}

/// An applied input and what it produced, released once durable.
#[derive(Clone, Debug)]
pub(crate) struct Record {
    pub at: Time,
    pub origin: Origin,
    pub input: Input,
    pub outputs: Outputs,
    /// The log position its outputs wait for: inputs are numbered from 1 in the order
    /// logged (a heartbeat answered without an entry waits for the one before it).
    pub position: u64,
}

/// Who waits for a request: for each of its inputs (several when a worker sent them
/// in one frame), the sender and the input, for the checker and the trace.
pub(crate) struct Waiter {
    sent: Vec<(Origin, Input)>,
}

type SimBatch = Batch<Waiter, StatusRead, Option<Entry>>;

/// What the coordinator did that the world must know about.
#[derive(Debug)]
pub(crate) enum Commit {
    /// These records are durable; release them.
    Released(Vec<Record>),
    /// An append is under way and completes at this time (`complete_append`).
    InFlight { done_at: Time, append: u64 },
    /// Status reads ran.
    Read(Vec<ReadSeen>),
    /// An append failed or tore: nothing of it is released. The coordinator rebuilds
    /// its engine from the log, or (after a tear) has crashed, once `restore` is called.
    Stopped(String),
}

/// How a recovery ended, when it did not break a check.
pub(crate) enum Recovery {
    /// The recovered state is exactly the durable state.
    Recovered { torn_bytes: usize },
    /// The log is corrupt; the coordinator refuses to start from it.
    Refused(Corruption),
}

pub(crate) struct Coordinator {
    pub engine: Engine,
    pub up: bool,
    pipeline: Pipeline<Waiter, StatusRead, Option<Entry>>,
    /// Log entries the engine has applied (durable or not).
    applied_end: u64,
    /// Run reads at once instead of through the pipeline: a deliberate fault, to test
    /// that the read checks catch it.
    reads_without_barrier: bool,
    settings: Settings,
    /// The append under way, handed back to the pipeline when it completes.
    in_flight: Option<SimBatch>,
    /// Waiting for a rebuild from the log after a failed append.
    rebuilding: bool,
    /// When the pipeline's pause after a rebuild ends.
    paused_until: Option<Time>,
    durable: Option<Durable>,
    /// How long an append takes before its fsync.
    append_ms: u64,
    /// When the engine's own invariants are checked during the run.
    pace: CheckPace,
    applies: u64,
    /// Log position of the last input whose outputs were released.
    acknowledged: u64,
    pub recoveries: u32,
}

fn inputs(n: u64) -> String {
    match n {
        1 => "1 input".into(),
        n => format!("{n} inputs"),
    }
}

/// Runs inputs through the engine for the pipeline, keeping their entries when the
/// log is durable, and checking the engine's invariants when `pace` says.
struct Applier<'a> {
    engine: &'a mut Engine,
    applied_end: &'a mut u64,
    now: Time,
    durable: bool,
    pace: &'a mut CheckPace,
    applies: &'a mut u64,
    broken: Option<CheckFailure>,
}

impl Apply for Applier<'_> {
    type Entry = Option<Entry>;

    fn now(&self) -> Time {
        self.now.max(self.engine.now())
    }

    fn apply(&mut self, now: Time, offset: u64, input: Input) -> Outcome<Option<Entry>> {
        *self.applied_end = offset + 1;
        let entry = self.durable.then(|| (now, input.clone()));
        let outputs = self.engine.apply(now, input);
        *self.applies += 1;
        if self.pace.due(*self.applies) && self.broken.is_none() {
            if let Err(v) = self.engine.check_invariants() {
                self.broken = Some(failure(now, Check::EngineInvariant, v.to_string()));
            }
            let engine = &*self.engine;
            self.pace.checked(*self.applies, || engine.footprint());
        }
        Outcome::Applied(outputs, entry)
    }
}

impl Coordinator {
    /// `durable`: keep a log, snapshots and the durable state, for runs that crash the
    /// coordinator or fault its storage. `append_ms`: how long an append takes.
    pub(crate) fn new(
        config: Config,
        durable: bool,
        hook: Option<EngineHook>,
        pace: CheckPace,
        append_ms: u64,
    ) -> Coordinator {
        let settings = Settings {
            max_batch: MAX_BATCH,
            liveness_timeout_ms: config.liveness_timeout_ms,
        };
        let mut engine = Engine::new(config);
        if let Some(hook) = hook {
            hook(&mut engine);
        }
        let durable = durable.then(|| Durable::new(&engine, hook));
        Coordinator {
            engine,
            up: true,
            pipeline: Pipeline::new(settings, 0),
            applied_end: 0,
            reads_without_barrier: false,
            settings,
            in_flight: None,
            rebuilding: false,
            paused_until: None,
            durable,
            append_ms,
            pace,
            applies: 0,
            acknowledged: 0,
            recoveries: 0,
        }
    }

    /// The engine's own invariant check, now.
    pub(crate) fn check(&self, now: Time) -> Result<(), CheckFailure> {
        self.engine
            .check_invariants()
            .map_err(|v| failure(now, Check::EngineInvariant, v.to_string()))
    }

    /// When the coordinator's timer must next fire: not while it is down or rebuilding,
    /// nor while a tick or requests already wait in the pipeline (it applies them as
    /// soon as it takes more, and the timer is asked again after); at the end of a
    /// pause after a rebuild.
    pub(crate) fn next_wakeup(&self) -> Option<Time> {
        if !self.up || self.rebuilding || self.pipeline.has_work() {
            return None;
        }
        self.paused_until.or_else(|| self.engine.next_wakeup())
    }

    /// When the pause after a rebuild ends, while one lasts.
    pub(crate) fn paused_until(&self) -> Option<Time> {
        self.paused_until
    }

    /// Ends the pause after a rebuild once it is over at `now`.
    fn unpause(&mut self, now: Time) {
        if self.paused_until.is_some_and(|until| until <= now) {
            self.paused_until = None;
            self.pipeline.unpause();
        }
    }

    /// Whether the engine holds exactly the inputs whose outputs were released: it is
    /// up, and every input it applied is durable (a durable batch is released at once).
    pub(crate) fn settled(&self) -> bool {
        self.up && !self.rebuilding && self.applied_end == self.pipeline.durable_end()
    }

    /// Log position up to which inputs are durable: outputs beyond it must not leave.
    pub(crate) fn durable_position(&self) -> u64 {
        self.pipeline.durable_end()
    }

    /// An input arrives at `now`.
    pub(crate) fn deliver(
        &mut self,
        now: Time,
        input: Input,
        origin: Origin,
        rng: &mut SimRng,
    ) -> Result<Vec<Commit>, CheckFailure> {
        let waiter = Waiter {
            sent: vec![(origin, input.clone())],
        };
        self.arrive(now, Request::Input { input, waiter }, rng)
    }

    /// Inputs a worker sent in one frame arrive at `now`: applied one after another in
    /// one batch, and answered together, as the production coordinator takes a frame.
    pub(crate) fn deliver_frame(
        &mut self,
        now: Time,
        sent: Vec<(Origin, Input)>,
        rng: &mut SimRng,
    ) -> Result<Vec<Commit>, CheckFailure> {
        let inputs = sent.iter().map(|(_, input)| input.clone()).collect();
        self.arrive(
            now,
            Request::Group {
                inputs,
                waiter: Waiter { sent },
            },
            rng,
        )
    }

    /// A request arrives at `now` (lost while the coordinator is down). A timer that is
    /// due fires first, as the production coordinator's would have, so the request's
    /// outputs are not mixed with its.
    fn arrive(
        &mut self,
        now: Time,
        request: Request<Waiter, StatusRead>,
        rng: &mut SimRng,
    ) -> Result<Vec<Commit>, CheckFailure> {
        if !self.up {
            return Ok(Vec::new());
        }
        self.unpause(now);
        if self.engine.next_wakeup().is_some_and(|w| w <= now) {
            self.pipeline.tick();
        }
        self.pipeline.push(request);
        self.drive(now, rng)
    }

    /// A status read of `job` arrives at `now`: it runs once every input before it is
    /// durable (at once, and against whatever the engine holds, without the barrier).
    pub(crate) fn read(
        &mut self,
        now: Time,
        job: String,
        rng: &mut SimRng,
    ) -> Result<Vec<Commit>, CheckFailure> {
        if !self.up {
            return Ok(Vec::new());
        }
        let read = StatusRead { job };
        if self.reads_without_barrier {
            return Ok(vec![Commit::Read(vec![self.run_read(read)])]);
        }
        self.pipeline.push(Request::Read(read));
        self.drive(now, rng)
    }

    /// Serves reads at once, skipping the pipeline (see `reads_without_barrier`).
    pub(crate) fn break_read_barrier(&mut self) {
        self.reads_without_barrier = true;
    }

    fn run_read(&self, read: StatusRead) -> ReadSeen {
        let status = self
            .engine
            .job_by_name(&read.job)
            .and_then(|id| self.engine.job_status(id).ok());
        ReadSeen {
            job: read.job,
            status,
            applied: self.applied_end,
            durable: self.pipeline.durable_end(),
        }
    }

    /// Fires due timers, if any.
    pub(crate) fn tick(
        &mut self,
        now: Time,
        rng: &mut SimRng,
    ) -> Result<Vec<Commit>, CheckFailure> {
        if !self.up {
            return Ok(Vec::new());
        }
        self.unpause(now);
        if self.engine.next_wakeup().is_none_or(|w| w > now) {
            return Ok(Vec::new());
        }
        self.pipeline.tick();
        self.drive(now, rng)
    }

    /// The append `append` completed: its records are durable. Stale completions (of an
    /// append a crash cut short, or one healing already completed) are ignored.
    pub(crate) fn complete_append(
        &mut self,
        now: Time,
        append: u64,
        rng: &mut SimRng,
    ) -> Result<Vec<Commit>, CheckFailure> {
        match self.in_flight.take() {
            Some(batch) if batch.id() == append && self.up => {
                if let Some(durable) = &mut self.durable {
                    let live_end = (!self.rebuilding).then_some(self.applied_end);
                    durable.synced(now, &self.engine, live_end)?;
                }
                self.pipeline.append_done(batch, AppendResult::Durable);
                self.drive(now, rng)
            }
            other => {
                self.in_flight = other;
                Ok(Vec::new())
            }
        }
    }

    /// Applies what the pipeline takes and carries out what it decides. What it had
    /// already decided comes first: a batch the last append made durable is released,
    /// and its reads run, before the next batch is applied, so they see exactly the
    /// durable state.
    fn drive(&mut self, now: Time, rng: &mut SimRng) -> Result<Vec<Commit>, CheckFailure> {
        let mut commits = Vec::new();
        let mut refused = 0;
        self.carry_out(now, rng, &mut commits, &mut refused);
        let mut applier = Applier {
            engine: &mut self.engine,
            applied_end: &mut self.applied_end,
            now,
            durable: self.durable.is_some(),
            pace: &mut self.pace,
            applies: &mut self.applies,
            broken: None,
        };
        self.pipeline.apply(&mut applier);
        if let Some(broken) = applier.broken {
            return Err(broken);
        }
        self.carry_out(now, rng, &mut commits, &mut refused);
        if let Some(Commit::Stopped(what)) = commits.last_mut() {
            if refused > 0 {
                let requests = if refused == 1 { "request" } else { "requests" };
                what.push_str(&format!("; {refused} more {requests} refused"));
            }
        }
        Ok(commits)
    }

    /// Carries out the pipeline's pending actions.
    fn carry_out(
        &mut self,
        now: Time,
        rng: &mut SimRng,
        commits: &mut Vec<Commit>,
        refused: &mut usize,
    ) {
        while let Some(action) = self.pipeline.next_action() {
            if !self.up {
                // Crashed mid-append: the rest of what the pipeline decided died with it.
                break;
            }
            match action {
                Action::Append(batch) => {
                    if let Some(commit) = self.append(now, batch, rng) {
                        commits.push(commit);
                    }
                }
                Action::Release(released) => {
                    let records = self.release(released.replies);
                    commits.push(Commit::Released(records));
                    if !released.reads.is_empty() {
                        let seen = released.reads.into_iter().map(|r| self.run_read(r));
                        commits.push(Commit::Read(seen.collect()));
                    }
                }
                // A refused read is never answered; its client reads again later.
                Action::Refuse(r) => *refused += r.waiters.len(),
                Action::Rebuild(_) => self.rebuilding = true,
                Action::Pause { ms, .. } => self.paused_until = Some(now.saturating_add(ms)),
                // The simulated engine does not panic: a panic fails the run.
                Action::Panicked(_) => {}
            }
        }
    }

    /// Starts appending a batch. A failed append is handed straight back to the
    /// pipeline, which refuses it; a torn one crashes the process.
    fn append(&mut self, now: Time, mut batch: SimBatch, rng: &mut SimRng) -> Option<Commit> {
        let count = batch.len();
        if let Some(durable) = &mut self.durable {
            let entries: Vec<Entry> = batch.take_entries().into_iter().flatten().collect();
            match durable.storage.append(batch.first() + 1, &entries, rng) {
                Append::Written => durable.in_flight = entries.len() as u64,
                Append::Failed => {
                    let result = AppendResult::Failed(Fault::Failed);
                    self.pipeline.append_done(batch, result);
                    return Some(Commit::Stopped(format!(
                        "append of {} failed: batch refused, nothing released; rebuilding from the log",
                        inputs(count)
                    )));
                }
                Append::Torn { kept, len } => {
                    self.crash();
                    return Some(Commit::Stopped(format!(
                        "crash mid-append: {kept} of {len} bytes of a batch of {} reached the disk",
                        inputs(count)
                    )));
                }
            }
        }
        let fsync_ms = self.durable.as_ref().map_or(0, |d| d.storage.fsync_ms);
        let done_at = now.saturating_add(self.append_ms).saturating_add(fsync_ms);
        let append = batch.id();
        self.in_flight = Some(batch);
        Some(Commit::InFlight { done_at, append })
    }

    /// The records of a durable batch (a tick that did nothing has none).
    fn release(&mut self, replies: Vec<Reply<Waiter>>) -> Vec<Record> {
        let mut records = Vec::with_capacity(replies.len());
        for reply in replies {
            let answered: Vec<((Origin, Input), _)> = match reply {
                Reply::One(waiter, applied) => waiter.sent.into_iter().zip([applied]).collect(),
                Reply::Group(waiter, applied) => waiter.sent.into_iter().zip(applied).collect(),
                Reply::Tick(applied) => vec![((Origin::Timer, Input::Tick), applied)],
            };
            for ((origin, input), applied) in answered {
                let Some(outputs) = applied.outputs else {
                    continue;
                };
                if applied.tick && outputs.effects.is_empty() {
                    continue;
                }
                self.acknowledged = self.acknowledged.max(applied.position);
                records.push(Record {
                    at: applied.at,
                    origin,
                    input,
                    outputs,
                    position: applied.position,
                });
            }
        }
        records
    }
}

/// The production coordinator's default batch limit.
const MAX_BATCH: usize = 1024;

mod recovery;
#[cfg(test)]
mod tests;
