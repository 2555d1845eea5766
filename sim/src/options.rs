//! The knobs of a run that are not part of its scenario.

use crate::durable::EngineHook;

/// Knobs of a run that are not part of the scenario.
#[derive(Clone, Copy)]
pub struct RunOptions {
    /// Seeds every random choice of the run; the same seed replays it exactly.
    pub seed: u64,
    /// Keep trace lines (for files, goldens and failure reports).
    pub record: bool,
    /// A deliberate engine fault, to test that the checks catch it.
    pub hook: Option<EngineHook>,
    /// Check the engine's invariants after every this-many applies, and always at
    /// the end; 0 checks only at the end. Every history check runs after every event
    /// regardless.
    pub check_every: u32,
    /// When above 0, invariant checks are also at least the engine's footprint (tasks
    /// and dependency edges, what a check walks) divided by this many applies apart,
    /// so a check of a large state costs a bounded share of the run; 0 leaves the
    /// spacing to `check_every` alone.
    pub check_budget: u32,
    /// Give up after this many events (a runaway run is itself a failure).
    pub max_events: u64,
    /// Keep the coordinator's log, snapshots and shadow even when no fault needs them
    /// (to measure what durability costs).
    pub durable: bool,
    /// Serve status reads at once, against whatever the engine holds, instead of
    /// behind the commit pipeline's read barrier: a deliberate fault, to test that the
    /// read checks catch it.
    pub reads_without_barrier: bool,
}

impl RunOptions {
    /// Defaults for `seed`: no trace, invariants after every apply, durability only
    /// where faults need it.
    pub fn new(seed: u64) -> RunOptions {
        RunOptions {
            seed,
            record: false,
            hook: None,
            check_every: 1,
            check_budget: 0,
            max_events: 50_000_000,
            durable: false,
            reads_without_barrier: false,
        }
    }
}
