//! The coordinator's commit pipeline as a sans-I/O machine.
//!
//! Requests arrive; the machine gathers them into batches of up to `max_batch` inputs,
//! has the caller's [`Apply`] run each input through the engine, and asks for the
//! batch's entries to be appended to the log. At most one append is under way; the
//! batch after it may already be applied and waits (pipelining: applying overlaps the
//! log's latency), and nothing further is applied until it has gone to the log. A
//! batch's replies and effects are released only once its append is durable, and
//! reads queued with a batch run only then, so a read never sees a write the log does
//! not hold. Repeated heartbeats are answered without an entry (`coalesce`).
//!
//! A failed append refuses its batch (it may or may not be in the log), the batch
//! behind it (nothing of it was recorded) and everything queued, and asks for the
//! engine to be rebuilt from the log: the engine ran ahead of it. After the rebuild,
//! inputs are refused for a pause that doubles with every failure in a row, so a log
//! that takes no writes is probed with one batch per pause. Lost leadership or a
//! stop refuses what has not gone to the log; the batch being appended is answered by
//! how its append ends, since the log may well hold it.
//!
//! The machine does not own the engine: the caller applies each input through
//! [`Apply`], which is where the production coordinator encodes the log entry and
//! contains an engine panic, and where the simulator keeps its entries for its model
//! of storage. The machine stays free of the log's format and of unwinding, and its
//! rules are tested against a real engine with a few lines of [`Apply`].

mod batch;
mod coalesce;
mod pipeline;
#[cfg(test)]
mod tests;

pub use batch::{AppendResult, Applied, Batch, Fault, Refusal, Refused, Released, Reply, Request};
pub use coalesce::{Answer, Coalescer, Sender};
pub use pipeline::{Action, Pipeline, Settings, PAUSE_MAX_MS, PAUSE_MIN_MS};

use keel_engine::{Input, Outputs, Time};

/// What applying one input did.
pub enum Outcome<E> {
    /// The engine took it: its outputs, and the log entry that replays it.
    Applied(Outputs, E),
    /// The engine panicked on it: its entry is kept (the log must hold what the
    /// engine saw), and the engine must be discarded.
    Panicked(E),
}

/// Runs inputs through the engine for the pipeline.
pub trait Apply {
    /// What the log stores for one input.
    type Entry;
    /// The engine time to apply the next input at (never before the engine's own).
    fn now(&self) -> Time;
    /// Applies `input`, whose entry goes to the log at `offset`.
    fn apply(&mut self, now: Time, offset: u64, input: Input) -> Outcome<Self::Entry>;
}
