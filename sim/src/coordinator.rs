//! The simulated coordinator: the real engine behind a durable log with group commit.
//! Inputs are applied at once but their replies and effects wait in an outbox until
//! the batch that holds them is durable, as the production coordinator does. While one
//! append is under way (a slow fsync) the engine keeps applying the next batch.
//!
//! When the run can crash the coordinator or fault its storage, the coordinator is
//! durable: every batch is appended to the simulated [`Storage`], and a shadow engine
//! applies exactly the inputs whose append completed. Recovery restores the snapshot
//! and replays the log, and must rebuild the shadow's state, digest for digest; the
//! digests are only computed then, so a commit costs no more than the inputs it holds.

use crate::check::{Check, CheckFailure};
use crate::rng::SimRng;
use crate::storage::{Append, ArmedFault, Corruption, Entry, Recovered, Storage};
use keel_engine::{Config, Engine, Input, Outputs, Time};

/// Who sent an input, so its reply can be routed back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    Worker { idx: usize, req: u64 },
    Client { req: u64 },
    Timer,
}

/// An applied input and what it produced, waiting to be released.
#[derive(Clone, Debug)]
pub struct Record {
    pub at: Time,
    pub origin: Origin,
    pub input: Input,
    pub outputs: Outputs,
    /// The input's log position: inputs are numbered from 1 in the order applied.
    pub position: u64,
}

/// Something to do to every engine this coordinator builds, including recovered
/// ones and the shadow (used to switch on deliberate defects in tests).
pub type EngineHook = fn(&mut Engine);

/// Without a snapshot, the log grows to at least this many bytes before one is taken.
const MIN_LOG_BYTES: usize = 64 * 1024;

/// A snapshot is taken once the log holds this many times the last snapshot's bytes:
/// snapshots then cost a fixed share of what the log costs, and a recovery replays at
/// most this many snapshots' worth of log.
const LOG_PER_SNAPSHOT: usize = 4;

/// What a group commit did.
#[derive(Debug)]
pub enum Commit {
    /// These records are durable; release them.
    Released(Vec<Record>),
    /// An append is under way and completes at this time (`complete_append`).
    InFlight { done_at: Time, append: u64 },
    /// Nothing to do now: the coordinator is down, idle, or already appending.
    Idle,
    /// The append failed or tore: the batch is refused, nothing of it is released, and
    /// the coordinator has stopped.
    Stopped(String),
}

/// How a recovery ended, when it did not break a check.
pub enum Recovery {
    /// The recovered state is exactly the durable state.
    Recovered { torn_bytes: usize },
    /// The log is corrupt; the coordinator refuses to start from it.
    Refused(Corruption),
}

/// The durable half: storage, the shadow, and the batch being appended.
struct Durable {
    storage: Storage,
    /// The state of exactly the inputs whose append completed.
    shadow: Engine,
    shadow_position: u64,
    /// Applied inputs not yet handed to storage.
    pending: Vec<Entry>,
    in_flight: Option<Batch>,
    appends: u64,
}

/// A batch whose append is under way.
struct Batch {
    id: u64,
    entries: Vec<Entry>,
    records: Vec<Record>,
}

pub struct Coordinator {
    pub engine: Engine,
    pub up: bool,
    durable: Option<Durable>,
    outbox: Vec<Record>,
    hook: Option<EngineHook>,
    /// Check the engine's own invariants after every this-many applies (1 = always,
    /// 0 = only when the run ends).
    check_every: u32,
    applies: u64,
    /// Log position of the last applied input.
    position: u64,
    /// Log position of the last input whose outputs were released.
    acknowledged: u64,
    pub recoveries: u32,
}

fn inputs(n: usize) -> String {
    match n {
        1 => "1 input".into(),
        n => format!("{n} inputs"),
    }
}

fn build(engine: &mut Engine, hook: Option<EngineHook>) {
    if let Some(hook) = hook {
        hook(engine);
    }
}

impl Coordinator {
    /// `durable`: keep a log, snapshots and the shadow, for runs that crash the
    /// coordinator or fault its storage.
    pub fn new(
        config: Config,
        durable: bool,
        hook: Option<EngineHook>,
        check_every: u32,
    ) -> Coordinator {
        let mut engine = Engine::new(config);
        build(&mut engine, hook);
        let durable = durable.then(|| Durable {
            storage: Storage::new(&engine.snapshot()),
            shadow: engine.clone(),
            shadow_position: 0,
            pending: Vec::new(),
            in_flight: None,
            appends: 0,
        });
        Coordinator {
            engine,
            up: true,
            durable,
            outbox: Vec::new(),
            hook,
            check_every,
            applies: 0,
            position: 0,
            acknowledged: 0,
            recoveries: 0,
        }
    }

    /// The engine's own invariant check, now.
    pub fn check(&self, now: Time) -> Result<(), CheckFailure> {
        self.engine.check_invariants().map_err(|v| CheckFailure {
            at: now,
            check: Check::EngineInvariant,
            detail: v.to_string(),
        })
    }

    /// Outputs wait for a commit and none is under way.
    pub fn wants_commit(&self) -> bool {
        !self.outbox.is_empty()
            && self
                .durable
                .as_ref()
                .is_none_or(|durable| durable.in_flight.is_none())
    }

    /// Log position up to which inputs are durable: outputs beyond it must not leave.
    pub fn durable_position(&self) -> u64 {
        match &self.durable {
            Some(durable) => durable.shadow_position,
            None => self.position,
        }
    }

    /// Applies an input at `now`, first firing any timers that are due so that the
    /// input's own outputs are not mixed with theirs.
    pub fn deliver(&mut self, now: Time, input: Input, origin: Origin) -> Result<(), CheckFailure> {
        if !self.up {
            return Ok(());
        }
        self.tick(now)?;
        self.step(now, input, origin)
    }

    /// Fires due timers, if any.
    pub fn tick(&mut self, now: Time) -> Result<(), CheckFailure> {
        if self.up && self.engine.next_wakeup().is_some_and(|w| w <= now) {
            self.step(now, Input::Tick, Origin::Timer)?;
        }
        Ok(())
    }

    fn step(&mut self, now: Time, input: Input, origin: Origin) -> Result<(), CheckFailure> {
        let outputs = self.engine.apply(now, input.clone());
        self.position += 1;
        if let Some(durable) = &mut self.durable {
            durable.pending.push((now, input.clone()));
        }
        let quiet = matches!(input, Input::Tick) && outputs.effects.is_empty();
        if !quiet {
            self.outbox.push(Record {
                at: now,
                origin,
                input,
                outputs,
                position: self.position,
            });
        }
        self.applies += 1;
        if self.check_every > 0 && self.applies.is_multiple_of(self.check_every as u64) {
            self.check(now)?;
        }
        Ok(())
    }

    /// Group commit: appends everything applied since the last commit. Without
    /// durability, or with a fast fsync, the batch is durable at once.
    pub fn commit(&mut self, now: Time, rng: &mut SimRng) -> Commit {
        if !self.up {
            return Commit::Idle;
        }
        let Some(durable) = &mut self.durable else {
            let records = std::mem::take(&mut self.outbox);
            return Commit::Released(self.release(records));
        };
        if durable.in_flight.is_some() || (durable.pending.is_empty() && self.outbox.is_empty()) {
            return Commit::Idle;
        }
        let first = durable.shadow_position + 1;
        let entries = std::mem::take(&mut durable.pending);
        let count = entries.len();
        match durable.storage.append(first, &entries, rng) {
            Append::Written => {}
            Append::Failed => {
                self.stop();
                return Commit::Stopped(format!(
                    "append of {} failed: batch refused, nothing released; coordinator stops",
                    inputs(count)
                ));
            }
            Append::Torn { kept, len } => {
                self.stop();
                return Commit::Stopped(format!(
                    "crash mid-append: {kept} of {len} bytes of a batch of {} reached the disk",
                    inputs(count)
                ));
            }
        }
        durable.appends += 1;
        let batch = Batch {
            id: durable.appends,
            entries,
            records: std::mem::take(&mut self.outbox),
        };
        if durable.storage.fsync_ms == 0 {
            return Commit::Released(self.durable_batch(batch));
        }
        let done_at = now.saturating_add(durable.storage.fsync_ms);
        let append = batch.id;
        durable.in_flight = Some(batch);
        Commit::InFlight { done_at, append }
    }

    /// The append `append` completed: its records are durable. Stale completions (of an
    /// append a crash cut short) are ignored.
    pub fn complete_append(&mut self, append: u64) -> Vec<Record> {
        let Some(durable) = &mut self.durable else {
            return Vec::new();
        };
        match durable.in_flight.take() {
            Some(batch) if batch.id == append && self.up => self.durable_batch(batch),
            other => {
                durable.in_flight = other;
                Vec::new()
            }
        }
    }

    /// A batch reached the disk: the shadow applies it, a snapshot is due once the log
    /// outweighs the last one `LOG_PER_SNAPSHOT` times, and the records may leave.
    fn durable_batch(&mut self, batch: Batch) -> Vec<Record> {
        if let Some(durable) = &mut self.durable {
            durable.storage.sync();
            for (at, input) in batch.entries {
                durable.shadow.apply(at, input);
                durable.shadow_position += 1;
            }
            let storage = &durable.storage;
            let due = (LOG_PER_SNAPSHOT * storage.snapshot_bytes()).max(MIN_LOG_BYTES);
            if storage.log_bytes() >= due {
                let snapshot = durable.shadow.snapshot();
                durable
                    .storage
                    .install_snapshot(durable.shadow_position, &snapshot);
            }
        }
        self.release(batch.records)
    }

    fn release(&mut self, records: Vec<Record>) -> Vec<Record> {
        if let Some(last) = records.last() {
            self.acknowledged = self.acknowledged.max(last.position);
        }
        records
    }

    /// The process dies: what was not yet durable, and every unreleased output, is gone.
    pub fn crash(&mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.up = false;
        self.outbox.clear();
        if let Some(durable) = &mut self.durable {
            durable.pending.clear();
            durable.in_flight = None;
            durable.storage.crash();
        }
    }

    /// Arms a storage fault for the next append; false without durable storage.
    pub fn arm(&mut self, fault: ArmedFault) -> bool {
        self.durable
            .as_mut()
            .map(|durable| durable.storage.arm(fault))
            .is_some()
    }

    /// Sets the extra time every append takes.
    pub fn set_fsync_ms(&mut self, ms: u64) {
        if let Some(durable) = &mut self.durable {
            durable.storage.fsync_ms = ms;
        }
    }

    /// Flips one durable byte; returns where, or `None` without durable storage.
    pub fn corrupt(&mut self, rng: &mut SimRng) -> Option<String> {
        self.durable
            .as_mut()
            .map(|durable| durable.storage.corrupt(rng))
    }

    /// Storage faults heal; a flipped byte stays. Returns the append still under way,
    /// which a slow fsync no longer holds back.
    pub fn heal_storage(&mut self) -> Option<u64> {
        let durable = self.durable.as_mut()?;
        durable.storage.heal();
        durable.in_flight.as_ref().map(|batch| batch.id)
    }

    /// Restores the snapshot and replays the log. The result must be the shadow's state
    /// (every durable input, nothing else), or recovery must refuse a corrupt log.
    pub fn recover(&mut self, now: Time) -> Result<Recovery, CheckFailure> {
        let (hook, acknowledged) = (self.hook, self.acknowledged);
        let Some(durable) = &mut self.durable else {
            // Without durability nothing was ever lost: the engine carries on.
            self.up = true;
            return Ok(Recovery::Recovered { torn_bytes: 0 });
        };
        let read = match durable.read(now)? {
            Ok(read) => read,
            Err(corruption) => return Ok(Recovery::Refused(corruption)),
        };
        let (position, torn_bytes) = (read.position(), read.torn_bytes);
        durable.check_position(now, position, acknowledged)?;
        let engine = durable.replay(now, read, hook)?;
        durable.storage.drop_torn_tail(torn_bytes);
        self.engine = engine;
        self.position = position;
        self.up = true;
        self.recoveries += 1;
        Ok(Recovery::Recovered { torn_bytes })
    }
}

fn failure(at: Time, check: Check, detail: String) -> CheckFailure {
    CheckFailure { at, check, detail }
}

impl Durable {
    /// Reads the disk back. A corrupt log must be refused (`Ok(Err)`), an intact one
    /// must not be; either mistake fails a check.
    fn read(&self, now: Time) -> Result<Result<Recovered, Corruption>, CheckFailure> {
        let corrupted = self.storage.corrupted();
        match self.storage.recover() {
            Ok(read) if corrupted => Err(failure(
                now,
                Check::CorruptionUndetected,
                format!(
                    "recovered {} inputs from a log with a flipped byte",
                    read.position()
                ),
            )),
            Ok(read) => Ok(Ok(read)),
            Err(c) if corrupted => Ok(Err(c)),
            Err(c) => Err(failure(now, Check::RecoveryRefused, c.to_string())),
        }
    }

    /// The log recovered must end exactly where the durable inputs end: not before the
    /// last input whose outputs left, and not after the last append that completed.
    fn check_position(
        &self,
        now: Time,
        position: u64,
        acknowledged: u64,
    ) -> Result<(), CheckFailure> {
        if position < acknowledged {
            let detail = format!(
                "recovered inputs up to {position}, but outputs up to {acknowledged} were released"
            );
            return Err(failure(now, Check::LostAcknowledgedInput, detail));
        }
        if position > self.shadow_position {
            let detail = format!(
                "recovered inputs up to {position}, but only {} were durably appended",
                self.shadow_position
            );
            return Err(failure(now, Check::InventedInput, detail));
        }
        Ok(())
    }

    /// Restores the snapshot and replays the entries; the result must be the shadow's
    /// state and consistent.
    fn replay(
        &self,
        now: Time,
        read: Recovered,
        hook: Option<EngineHook>,
    ) -> Result<Engine, CheckFailure> {
        let broken = |detail: String| failure(now, Check::RecoveryDigest, detail);
        let mut engine = Engine::restore(&read.snapshot)
            .map_err(|e| broken(format!("snapshot does not restore: {e}")))?;
        build(&mut engine, hook);
        for (at, input) in read.entries {
            engine.apply(at, input);
        }
        let (got, want) = (engine.digest(), self.shadow.digest());
        if got != want {
            return Err(broken(format!(
                "replayed state {got} differs from the durable state {want}"
            )));
        }
        engine
            .check_invariants()
            .map_err(|v| broken(format!("recovered state breaks an invariant: {v}")))?;
        Ok(engine)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Stream;
    use keel_engine::{ClientCommand, JobSpec, TaskSpec};

    fn submit(name: &str) -> Input {
        let spec = JobSpec::new(name, vec![TaskSpec::new("a")]);
        Input::Client(ClientCommand::SubmitJob(spec))
    }

    /// A durable coordinator that has committed two batches of one job each.
    fn committed() -> (Coordinator, SimRng) {
        let mut c = Coordinator::new(Config::default(), true, None, 1);
        let mut rng = SimRng::new(5, Stream::Run);
        for (at, name) in [(1, "a"), (2, "b")] {
            c.deliver(at, submit(name), Origin::Client { req: at })
                .unwrap();
            let Commit::Released(records) = c.commit(at, &mut rng) else {
                panic!("a fast append releases at once")
            };
            assert_eq!(records.len(), 1);
        }
        (c, rng)
    }

    fn recovered(c: &mut Coordinator) -> Result<Recovery, CheckFailure> {
        c.crash();
        c.recover(10)
    }

    #[test]
    fn recovery_rebuilds_exactly_the_durable_inputs() {
        let (mut c, _) = committed();
        // Applied but never committed: lost in the crash, as it was never acknowledged.
        c.deliver(3, submit("c"), Origin::Client { req: 3 })
            .unwrap();
        assert!(matches!(
            recovered(&mut c),
            Ok(Recovery::Recovered { torn_bytes: 0 })
        ));
        assert!(c.engine.job_by_name("b").is_some());
        assert!(c.engine.job_by_name("c").is_none());
    }

    #[test]
    fn a_recovery_that_loses_an_acknowledged_batch_is_caught() {
        let (mut c, _) = committed();
        c.durable.as_mut().unwrap().storage.drop_last_frame();
        let f = recovered(&mut c).err().expect("caught");
        assert_eq!(f.check, Check::LostAcknowledgedInput, "{f}");
    }

    #[test]
    fn a_recovery_that_invents_an_input_is_caught() {
        let (mut c, mut rng) = committed();
        let d = c.durable.as_mut().unwrap();
        d.storage.append(3, &[(3, submit("ghost"))], &mut rng);
        d.storage.sync();
        let f = recovered(&mut c).err().expect("caught");
        assert_eq!(f.check, Check::InventedInput, "{f}");
    }

    #[test]
    fn a_failed_append_releases_nothing_and_recovery_starts_before_it() {
        let (mut c, mut rng) = committed();
        assert!(c.arm(ArmedFault::Fail));
        c.deliver(3, submit("c"), Origin::Client { req: 3 })
            .unwrap();
        assert!(matches!(c.commit(3, &mut rng), Commit::Stopped(_)));
        assert!(!c.up);
        assert!(matches!(c.recover(9), Ok(Recovery::Recovered { .. })));
        assert!(c.engine.job_by_name("c").is_none());
        assert!(c.engine.job_by_name("b").is_some());
    }

    #[test]
    fn a_torn_append_is_dropped_by_recovery() {
        let (mut c, mut rng) = committed();
        c.arm(ArmedFault::Tear);
        c.deliver(3, submit("c"), Origin::Client { req: 3 })
            .unwrap();
        assert!(matches!(c.commit(3, &mut rng), Commit::Stopped(_)));
        let r = c.recover(9);
        assert!(
            matches!(r, Ok(Recovery::Recovered { .. })),
            "torn bytes are a tail"
        );
        assert!(c.engine.job_by_name("c").is_none());
    }

    #[test]
    fn a_corrupt_log_is_refused_and_an_intact_one_is_not() {
        let (mut c, mut rng) = committed();
        assert!(c.corrupt(&mut rng).is_some());
        assert!(matches!(recovered(&mut c), Ok(Recovery::Refused(_))));
    }

    #[test]
    fn a_slow_append_releases_only_when_it_completes_and_a_crash_loses_it() {
        let (mut c, mut rng) = committed();
        c.set_fsync_ms(50);
        c.deliver(3, submit("c"), Origin::Client { req: 3 })
            .unwrap();
        let Commit::InFlight { done_at, append } = c.commit(3, &mut rng) else {
            panic!("a slow append is in flight")
        };
        assert_eq!(done_at, 53);
        assert!(!c.wants_commit(), "one append at a time");
        c.deliver(4, submit("d"), Origin::Client { req: 4 })
            .unwrap();
        assert_eq!(c.durable_position(), 2);
        let released = c.complete_append(append);
        assert_eq!(released.len(), 1);
        assert_eq!(c.durable_position(), 3);
        // The next batch goes out and the process dies before its fsync completes.
        assert!(matches!(c.commit(53, &mut rng), Commit::InFlight { .. }));
        assert!(matches!(recovered(&mut c), Ok(Recovery::Recovered { .. })));
        assert!(c.engine.job_by_name("c").is_some());
        assert!(c.engine.job_by_name("d").is_none());
    }
}
