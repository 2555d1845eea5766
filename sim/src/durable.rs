//! The simulated coordinator's durable half: its storage, and a shadow engine that
//! applies exactly the inputs whose append completed. Recovery (after a crash) and a
//! rebuild (after a failed append) restore the snapshot and replay the log, and must
//! rebuild the shadow's state, digest for digest; the digests are only computed then,
//! so a commit costs no more than the inputs it holds.

use crate::check::{Check, CheckFailure};
use crate::storage::{Corruption, Entry, Recovered, Storage};
use keel_engine::{Engine, Time};

/// Something to do to every engine a coordinator builds, including recovered ones and
/// the shadow (used to switch on deliberate defects in tests).
pub type EngineHook = fn(&mut Engine);

/// Without a snapshot, the log grows to at least this many bytes before one is taken.
const MIN_LOG_BYTES: usize = 64 * 1024;

/// A snapshot is taken once the log holds this many times the last snapshot's bytes:
/// snapshots then cost a fixed share of what the log costs, and a recovery replays at
/// most this many snapshots' worth of log.
const LOG_PER_SNAPSHOT: usize = 2;

pub(crate) struct Durable {
    pub storage: Storage,
    /// The state of exactly the inputs whose append completed.
    shadow: Engine,
    pub shadow_position: u64,
    /// The entries of the append under way.
    pub in_flight: Vec<Entry>,
}

pub(crate) fn failure(at: Time, check: Check, detail: String) -> CheckFailure {
    CheckFailure { at, check, detail }
}

impl Durable {
    pub(crate) fn new(engine: &Engine) -> Durable {
        Durable {
            storage: Storage::new(&engine.snapshot()),
            shadow: engine.clone(),
            shadow_position: 0,
            in_flight: Vec::new(),
        }
    }

    /// The append under way reached the disk: the shadow applies it, and a snapshot is
    /// due once the log outweighs the last one `LOG_PER_SNAPSHOT` times.
    pub(crate) fn synced(&mut self) {
        self.storage.sync();
        for (at, input) in self.in_flight.drain(..) {
            self.shadow.apply(at, input);
            self.shadow_position += 1;
        }
        let due = (LOG_PER_SNAPSHOT * self.storage.snapshot_bytes()).max(MIN_LOG_BYTES);
        if self.storage.log_bytes() >= due {
            let snapshot = self.shadow.snapshot();
            self.storage
                .install_snapshot(self.shadow_position, &snapshot);
        }
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
    pub(crate) fn replay(
        &self,
        now: Time,
        read: Recovered,
        hook: Option<EngineHook>,
    ) -> Result<Engine, CheckFailure> {
        let broken = |detail: String| failure(now, Check::RecoveryDigest, detail);
        let mut engine = Engine::restore(&read.snapshot)
            .map_err(|e| broken(format!("snapshot does not restore: {e}")))?;
        if let Some(hook) = hook {
            hook(&mut engine);
        }
        for (at, input) in read.entries() {
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
#[path = "durable_tests.rs"]
mod tests;
