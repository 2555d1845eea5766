//! Snapshots every `snapshot_every` entries. The state is encoded on the engine task
//! when the pipeline is empty (so it holds only durable state), then stored in its own
//! task while serving goes on: storing trims the log, which can take seconds on a
//! large log, and the next batches need not wait for it. A failed store changes
//! nothing in the log, so it is tried again a quarter interval later; only a fenced
//! one ends the term.

use crate::engine_task::{Ended, EngineTask};
use crate::error::Deposed;
use crate::io::spawn_io;
use crate::term::Term;
use keel_log::{Log, LogError, Offset};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

/// A snapshot being stored.
pub(crate) struct SnapshotInFlight {
    offset: Offset,
    started: Instant,
    task: JoinHandle<Result<(), LogError>>,
}

/// How storing a snapshot ended: at which offset, after how long.
pub(crate) type Stored = (Offset, Duration, Result<(), LogError>);

/// Resolves once the snapshot under way is stored (never, if none is).
pub(crate) async fn stored(snapshot: &mut Option<SnapshotInFlight>) -> Stored {
    let Some(flight) = snapshot else {
        return std::future::pending().await;
    };
    let result = match (&mut flight.task).await {
        Ok(result) => result,
        Err(join) => Err(LogError::storage(
            0,
            format!("the snapshot task ended: {join}"),
        )),
    };
    let done = (flight.offset, flight.started.elapsed(), result);
    *snapshot = None;
    done
}

impl<L: Log + 'static> EngineTask<L> {
    /// Encodes the engine's state at the log's end and starts storing it.
    pub(crate) fn start_snapshot(&self, term: &mut Term) -> SnapshotInFlight {
        let offset = term.next;
        let snapshot = keel_log::snapshot_of(&term.engine, offset);
        let (log, partition, epoch) = (self.log.clone(), self.settings.partition, term.epoch);
        let store = async move { log.store_snapshot(partition, epoch, &snapshot).await };
        // The next one is due an interval after this one; a failure brings it closer.
        term.snapshot_due = offset.saturating_add(self.settings.snapshot_every);
        SnapshotInFlight {
            offset,
            started: Instant::now(),
            task: spawn_io(self.log.blocks(), store),
        }
    }

    /// A snapshot store finished.
    pub(crate) fn snapshot_stored(&self, term: &mut Term, stored: Stored) -> Option<Ended> {
        let (offset, took, result) = stored;
        let partition = self.settings.partition;
        match result {
            Ok(()) => {
                tracing::debug!(partition, offset, ?took, "snapshot stored");
                if took > self.settings.lease_ttl / 3 {
                    tracing::warn!(
                        partition,
                        offset,
                        ?took,
                        "storing a snapshot took longer than a lease renewal period"
                    );
                }
                self.shared.metrics().snapshots += 1;
            }
            Err(LogError::Fenced { current, .. }) => {
                self.shared
                    .leadership
                    .depose(term.epoch, Deposed::Fenced { current });
            }
            Err(e) => {
                tracing::warn!(partition, error = %e, "snapshot failed");
                term.snapshot_due = term
                    .next
                    .saturating_add((self.settings.snapshot_every / 4).max(1));
                self.shared.metrics().snapshot_failures += 1;
            }
        }
        None
    }
}
