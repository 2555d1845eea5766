//! Rebuilding the engine from the log: the newest snapshot, checked against its digest,
//! then every entry after it, each applied with its panic contained. An entry that
//! panics the engine stops recovery with [`CoordinatorError::PoisonedLog`] naming it
//! (and, replaying once more up to it, the job it concerns), so the partition refuses
//! to start instead of crashing; `skip` drops entries an operator chose to drop.

use crate::error::CoordinatorError;
use crate::poison::{apply_contained, Met, Poisoned};
use keel_engine::{Config, Engine};
use keel_log::{scan, starting_point, Entry, Log, LogError, Offset, Partition, Recovered};
use std::collections::BTreeSet;

/// Why a replay ended early.
enum Halt {
    Failed(CoordinatorError),
    Panicked {
        offset: Offset,
        entry: Box<Entry>,
        message: String,
    },
    /// Reached the offset it was told to stop before.
    Reached,
}

impl From<LogError> for Halt {
    fn from(e: LogError) -> Halt {
        Halt::Failed(e.into())
    }
}

/// Rebuilds `partition`'s engine. `config` is used only when the log has no snapshot.
pub async fn recover<L: Log>(
    log: &L,
    partition: Partition,
    config: Config,
    skip: &BTreeSet<Offset>,
) -> Result<Recovered, CoordinatorError> {
    recover_with(log, partition, config, skip, None).await
}

/// [`recover`], with `prepare` run on the engine before anything is replayed into it.
pub(crate) async fn recover_with<L: Log>(
    log: &L,
    partition: Partition,
    config: Config,
    skip: &BTreeSet<Offset>,
    prepare: Option<fn(&mut Engine)>,
) -> Result<Recovered, CoordinatorError> {
    match replay(log, partition, config.clone(), skip, None, prepare).await {
        Ok(recovered) => Ok(recovered),
        Err(Halt::Failed(e)) => Err(e),
        Err(Halt::Reached) => Err(CoordinatorError::Stopped),
        Err(Halt::Panicked {
            offset,
            entry,
            message,
        }) => {
            let mut poisoned = Poisoned::new(offset, &entry.input, message, Met::Replaying);
            // The state just before the entry tells which job a task-level input is for.
            if let Ok(before) = replay(log, partition, config, skip, Some(offset), prepare).await {
                poisoned.explain(&before.engine, entry.now, &entry.input);
            }
            Err(CoordinatorError::PoisonedLog {
                partition,
                poisoned,
            })
        }
    }
}

/// The engine just before the entry at `offset`, and that entry, replayed from the log:
/// what an input that panicked a serving engine is explained from (that engine's state
/// may be half-changed). `None` when the log cannot be read back.
pub(crate) async fn before_entry<L: Log>(
    log: &L,
    partition: Partition,
    config: Config,
    offset: Offset,
    prepare: Option<fn(&mut Engine)>,
) -> Option<(Engine, Entry)> {
    let skip = BTreeSet::new();
    let before = replay(log, partition, config, &skip, Some(offset), prepare)
        .await
        .ok()?;
    let record = log
        .read(partition, offset, 1)
        .await
        .ok()?
        .into_iter()
        .next()?;
    let entry = Entry::decode(partition, offset, &record.payload).ok()?;
    Some((before.engine, entry))
}

/// Replays from the snapshot to the log's end, or to just before `stop_before`.
async fn replay<L: Log>(
    log: &L,
    partition: Partition,
    config: Config,
    skip: &BTreeSet<Offset>,
    stop_before: Option<Offset>,
    prepare: Option<fn(&mut Engine)>,
) -> Result<Recovered, Halt> {
    let (mut engine, from) = starting_point(log, partition, config)
        .await
        .map_err(|e| Halt::Failed(e.into()))?;
    if let Some(prepare) = prepare {
        prepare(&mut engine);
    }
    let mut replayed = 0;
    let scanned = scan(log, partition, from, |record| -> Result<(), Halt> {
        if Some(record.offset) == stop_before {
            return Err(Halt::Reached);
        }
        if skip.contains(&record.offset) {
            return Ok(());
        }
        let entry = Entry::decode(partition, record.offset, &record.payload)?;
        if let Err(message) = apply_contained(&mut engine, entry.now, entry.input) {
            // Decoded again rather than cloned for every entry: this path is rare.
            let entry = Entry::decode(partition, record.offset, &record.payload)?;
            return Err(Halt::Panicked {
                offset: record.offset,
                entry: Box::new(entry),
                message,
            });
        }
        replayed += 1;
        Ok(())
    })
    .await;
    let next = match scanned {
        Ok(end) => end,
        Err(Halt::Reached) => stop_before.unwrap_or_default(),
        Err(halt) => return Err(halt),
    };
    Ok(Recovered {
        engine,
        next,
        snapshot: (from > 0).then_some(from),
        replayed,
    })
}
