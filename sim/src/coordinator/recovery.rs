//! The coordinator's crash, its storage faults, and its recovery from the log: what a
//! crash loses, and the check that recovery rebuilds exactly the durable inputs.

use super::{Coordinator, Recovery};
use crate::check::CheckFailure;
use crate::rng::SimRng;
use crate::storage::ArmedFault;
use keel_engine::Time;
use keel_protocol::commit::{Action, Pipeline};

impl Coordinator {
    /// The process dies: what was not yet durable, and every unreleased output, is gone.
    pub(crate) fn crash(&mut self) {
        self.up = false;
        self.in_flight = None;
        self.rebuilding = false;
        self.paused_until = None;
        if let Some(durable) = &mut self.durable {
            durable.in_flight = 0;
            durable.storage.crash();
        }
    }

    /// Arms a storage fault for the next append; false without durable storage.
    pub(crate) fn arm(&mut self, fault: ArmedFault) -> bool {
        self.durable
            .as_mut()
            .map(|durable| durable.storage.arm(fault))
            .is_some()
    }

    /// Sets the extra time every append takes.
    pub(crate) fn set_fsync_ms(&mut self, ms: u64) {
        if let Some(durable) = &mut self.durable {
            durable.storage.fsync_ms = ms;
        }
    }

    /// Flips one durable byte; returns where, or `None` without durable storage.
    pub(crate) fn corrupt(&mut self, rng: &mut SimRng) -> Option<String> {
        self.durable
            .as_mut()
            .map(|durable| durable.storage.corrupt(rng))
    }

    /// Storage faults heal; a flipped byte stays. Returns the append still under way,
    /// which a slow fsync no longer holds back.
    pub(crate) fn heal_storage(&mut self) -> Option<u64> {
        let durable = self.durable.as_mut()?;
        durable.storage.heal();
        self.in_flight.as_ref().map(|batch| batch.id())
    }

    /// Whether the coordinator waits for `restore`: it crashed, or it must rebuild its
    /// engine from the log after a failed append.
    pub(crate) fn needs_restore(&self) -> bool {
        !self.up || self.rebuilding
    }

    /// Restores the snapshot and replays the log, after a crash or a failed append. The
    /// result must be the durable state (every durable input, nothing else), or
    /// recovery must refuse a corrupt log.
    pub(crate) fn restore(&mut self, now: Time) -> Result<Recovery, CheckFailure> {
        let acknowledged = self.acknowledged;
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
        // The engine that ran is the durable state if it applied exactly the durable
        // inputs (after a failed append it has applied the refused batch too).
        let exact = !self.rebuilding && self.applied_end == durable.position;
        let engine = durable.replay(now, read, exact.then_some(&self.engine))?;
        durable.storage.drop_torn_tail(torn_bytes);
        self.engine = engine;
        self.applied_end = position;
        self.paused_until = None;
        if self.up {
            self.pipeline.rebuilt(position);
            while let Some(action) = self.pipeline.next_action() {
                if let Action::Pause { ms, .. } = action {
                    self.paused_until = Some(now.saturating_add(ms));
                }
            }
        } else {
            self.pipeline = Pipeline::new(self.settings, position);
        }
        self.up = true;
        self.rebuilding = false;
        self.recoveries += 1;
        Ok(Recovery::Recovered { torn_bytes })
    }
}
