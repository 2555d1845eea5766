//! The simulated coordinator: the real engine behind a durable log with group commit.
//! Inputs are applied at once but their replies and effects wait in an outbox until
//! the next sync makes the inputs durable, as the production coordinator does. A crash
//! loses the unsynced tail and the outbox; recovery restores the last snapshot and
//! replays the durable log, and must arrive at exactly the state of the last sync.

use crate::checks::Violation;
use keel_engine::{Config, Digest, Engine, Input, Outputs, Time};

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
}

/// Something to do to every engine this coordinator builds, including recovered
/// ones (used to switch on deliberate defects in tests).
pub type EngineHook = fn(&mut Engine);

/// Inputs between snapshots; a snapshot bounds replay work after a crash.
const SNAPSHOT_EVERY: usize = 512;

pub struct Coordinator {
    pub engine: Engine,
    pub up: bool,
    /// Keep a log and snapshots; off when the scenario never crashes the coordinator.
    durable: bool,
    snapshot: Vec<u8>,
    log: Vec<(Time, Input)>,
    synced: usize,
    sync_digest: Option<Digest>,
    outbox: Vec<Record>,
    hook: Option<EngineHook>,
    /// Check the engine's own invariants after every this-many applies (1 = always,
    /// 0 = only when the run ends).
    check_every: u32,
    applies: u64,
    pub recoveries: u32,
}

impl Coordinator {
    pub fn new(
        config: Config,
        durable: bool,
        hook: Option<EngineHook>,
        check_every: u32,
    ) -> Coordinator {
        let mut engine = Engine::new(config);
        if let Some(h) = hook {
            h(&mut engine);
        }
        let snapshot = if durable {
            engine.snapshot()
        } else {
            Vec::new()
        };
        Coordinator {
            engine,
            up: true,
            durable,
            snapshot,
            log: Vec::new(),
            synced: 0,
            sync_digest: None,
            outbox: Vec::new(),
            hook,
            check_every,
            applies: 0,
            recoveries: 0,
        }
    }

    /// The engine's own invariant check, now.
    pub fn check(&self, now: Time) -> Result<(), Violation> {
        self.engine.check_invariants().map_err(|v| Violation {
            at: now,
            check: "engine_invariant",
            detail: format!("{v:?}"),
        })
    }

    pub fn has_unreleased(&self) -> bool {
        !self.outbox.is_empty()
    }

    /// Applies an input at `now`, first firing any timers that are due so that the
    /// input's own outputs are not mixed with theirs.
    pub fn deliver(&mut self, now: Time, input: Input, origin: Origin) -> Result<(), Violation> {
        if !self.up {
            return Ok(());
        }
        self.tick(now)?;
        self.step(now, input, origin)
    }

    /// Fires due timers, if any.
    pub fn tick(&mut self, now: Time) -> Result<(), Violation> {
        if self.up && self.engine.next_wakeup().is_some_and(|w| w <= now) {
            self.step(now, Input::Tick, Origin::Timer)?;
        }
        Ok(())
    }

    fn step(&mut self, now: Time, input: Input, origin: Origin) -> Result<(), Violation> {
        let outputs = self.engine.apply(now, input.clone());
        if self.durable {
            self.log.push((now, input.clone()));
        }
        let quiet = matches!(input, Input::Tick) && outputs.effects.is_empty();
        if !quiet {
            self.outbox.push(Record {
                at: now,
                origin,
                input,
                outputs,
            });
        }
        self.applies += 1;
        if self.check_every > 0 && self.applies.is_multiple_of(self.check_every as u64) {
            self.check(now)?;
        }
        Ok(())
    }

    /// Group commit: everything applied so far is durable; release its outputs.
    pub fn sync(&mut self) -> Vec<Record> {
        if !self.up {
            return Vec::new();
        }
        if self.durable {
            self.synced = self.log.len();
            self.sync_digest = Some(self.engine.digest());
            if self.log.len() >= SNAPSHOT_EVERY {
                self.snapshot = self.engine.snapshot();
                self.log.clear();
                self.synced = 0;
            }
        }
        std::mem::take(&mut self.outbox)
    }

    /// The process dies: the unsynced tail of the log and the unreleased outbox vanish.
    pub fn crash(&mut self) {
        self.up = false;
        self.outbox.clear();
        self.log.truncate(self.synced);
    }

    /// Restores the last snapshot and replays the durable log. The result must equal
    /// the state at the last sync, digest for digest.
    pub fn recover(&mut self, now: Time) -> Result<(), Violation> {
        let fail = |detail: String| Violation {
            at: now,
            check: "recovery_digest",
            detail,
        };
        let mut engine = Engine::restore(&self.snapshot)
            .map_err(|e| fail(format!("snapshot does not restore: {e:?}")))?;
        if let Some(h) = self.hook {
            h(&mut engine);
        }
        for (at, input) in &self.log {
            engine.apply(*at, input.clone());
        }
        let got = engine.digest();
        if let Some(want) = self.sync_digest {
            if got != want {
                return Err(fail(format!(
                    "replayed state {got} differs from the state at the last sync {want}"
                )));
            }
        }
        engine
            .check_invariants()
            .map_err(|v| fail(format!("recovered state breaks an invariant: {v:?}")))?;
        self.engine = engine;
        self.up = true;
        self.recoveries += 1;
        Ok(())
    }
}
