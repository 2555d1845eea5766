//! The simulated coordinator's durable half: its storage, and what the durable state
//! is (the state of exactly the inputs whose append completed). Recovery (after a
//! crash) and a rebuild (after a failed append) restore the snapshot and replay the
//! log, and must rebuild that state, digest for digest; the digests are only computed
//! then, so a commit costs no more than the inputs it holds.
//!
//! The durable state is not kept as an engine of its own applying every durable input
//! a second time: it is the snapshot of a base state plus the durable inputs after it.
//! Whenever the live engine has applied exactly the durable inputs, it is the durable
//! state: a snapshot is taken from it and becomes the base, and a crash at such a
//! moment is checked against it, an engine that never went through a snapshot. Only
//! when a crash or an overdue snapshot finds the live engine ahead is the durable
//! state rebuilt, from the base and the inputs after it (as kept in memory, not as
//! read back from the disk).

use crate::check::{Check, CheckFailure};
use crate::storage::{read_frames, Corruption, Recovered, Storage};
use keel_engine::{Engine, Time};

/// Something to do to every engine a coordinator builds, including recovered ones
/// (used to switch on deliberate defects in tests).
pub type EngineHook = fn(&mut Engine);

/// Without a snapshot, the log grows to at least this many bytes before one is taken.
const MIN_LOG_BYTES: usize = 64 * 1024;

/// A snapshot is taken once the log holds this many times the last snapshot's bytes:
/// snapshots then cost a fixed share of what the log costs, and a recovery replays at
/// most this many snapshots' worth of log (twice that when the snapshot was overdue).
const LOG_PER_SNAPSHOT: usize = 2;

/// A due snapshot waits for an append after which the live engine holds exactly the
/// durable inputs, until the log is this many times the size that made it due; then
/// the base applies the durable inputs to take it.
const OVERDUE: usize = 2;

pub(crate) struct Durable {
    pub storage: Storage,
    /// The snapshot of the durable state before the inputs in `after_base`.
    base: Vec<u8>,
    /// Log position `base` covers.
    base_position: u64,
    /// The durable inputs after `base`: a copy of each frame as its append synced, so a
    /// byte later flipped on the disk does not reach it. Kept encoded, as the log keeps
    /// them: decoded entries took several times the memory.
    after_base: Vec<u8>,
    /// Log position of the last durable input.
    pub position: u64,
    /// How many entries the append under way holds.
    pub in_flight: u64,
    hook: Option<EngineHook>,
}

pub(crate) fn failure(at: Time, check: Check, detail: String) -> CheckFailure {
    CheckFailure { at, check, detail }
}

impl Durable {
    /// Storage holding `engine`, the state before any input, which `hook` made.
    pub(crate) fn new(engine: &Engine, hook: Option<EngineHook>) -> Durable {
        let base = engine.snapshot();
        Durable {
            storage: Storage::new(&base),
            base,
            base_position: 0,
            after_base: Vec::new(),
            position: 0,
            in_flight: 0,
            hook,
        }
    }

    /// The append under way reached the disk, and `live` has applied inputs up to
    /// `live_end` (`None` while it is being rebuilt). A snapshot is due once the log
    /// outweighs the last one `LOG_PER_SNAPSHOT` times.
    pub(crate) fn synced(
        &mut self,
        now: Time,
        live: &Engine,
        live_end: Option<u64>,
    ) -> Result<(), CheckFailure> {
        let frame = self.storage.sync();
        self.after_base.extend_from_slice(frame);
        self.position += std::mem::take(&mut self.in_flight);
        let due = (LOG_PER_SNAPSHOT * self.storage.snapshot_bytes()).max(MIN_LOG_BYTES);
        let log = self.storage.log_bytes();
        if log < due {
            return Ok(());
        }
        self.base = if live_end == Some(self.position) {
            live.snapshot()
        } else if log < OVERDUE * due {
            return Ok(());
        } else {
            self.durable_state(now)?.snapshot()
        };
        self.after_base.clear();
        self.base_position = self.position;
        self.storage.install_snapshot(self.position, &self.base);
        Ok(())
    }

    /// The engine of `snapshot` (`what` it is, for the failure), as the coordinator
    /// builds it.
    fn restored(&self, now: Time, snapshot: &[u8], what: &str) -> Result<Engine, CheckFailure> {
        let mut engine = Engine::restore(snapshot).map_err(|e| {
            let detail = format!("{what} does not restore: {e}");
            failure(now, Check::RecoveryDigest, detail)
        })?;
        if let Some(hook) = self.hook {
            hook(&mut engine);
        }
        Ok(engine)
    }

    /// The durable state rebuilt from the base and the durable inputs after it.
    fn durable_state(&self, now: Time) -> Result<Engine, CheckFailure> {
        let mut engine = self.restored(now, &self.base, "the durable state's snapshot")?;
        let frames = read_frames(&self.after_base, self.base_position + 1).map_err(|c| {
            let detail = format!("the durable inputs do not read back: {c}");
            failure(now, Check::RecoveryDigest, detail)
        })?;
        if frames.count != self.position - self.base_position {
            let detail = format!(
                "the durable inputs read back are {} entries, not {}",
                frames.count,
                self.position - self.base_position
            );
            return Err(failure(now, Check::RecoveryDigest, detail));
        }
        for (at, input) in frames.batches.into_iter().flatten() {
            engine.apply(at, input);
        }
        Ok(engine)
    }

    /// Reads the disk back. A corrupt log must be refused (`Ok(Err)`), an intact one
    /// must not be; either mistake fails a check.
    pub(crate) fn read(&self, now: Time) -> Result<Result<Recovered, Corruption>, CheckFailure> {
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
    pub(crate) fn check_position(
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
        if position > self.position {
            let detail = format!(
                "recovered inputs up to {position}, but only {} were durably appended",
                self.position
            );
            return Err(failure(now, Check::InventedInput, detail));
        }
        Ok(())
    }

    /// Restores the snapshot and replays the entries; the result must be the durable
    /// state and consistent. `live` is the engine that ran before, when it had applied
    /// exactly the durable inputs.
    pub(crate) fn replay(
        &self,
        now: Time,
        read: Recovered,
        live: Option<&Engine>,
    ) -> Result<Engine, CheckFailure> {
        let broken = |detail: String| failure(now, Check::RecoveryDigest, detail);
        let mut engine = self.restored(now, &read.snapshot, "snapshot")?;
        for (at, input) in read.entries() {
            engine.apply(at, input);
        }
        let want = match live {
            Some(live) => live.digest(),
            None => self.durable_state(now)?.digest(),
        };
        let got = engine.digest();
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
#[path = "durable_tests.rs"]
mod tests;
