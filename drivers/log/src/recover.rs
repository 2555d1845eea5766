//! Rebuilding an engine from its log: restore the newest snapshot, check that it
//! restores to the digest recorded with it, then replay every entry after it. Any
//! damaged, missing or undecodable record stops recovery with an error naming it.

use crate::entry::Entry;
use crate::error::{Corruption, LogError, RecordRef};
use crate::{scan, Epoch, Log, Offset, Partition, Snapshot};
use keel_engine::{Config, Digest, Engine, RestoreError};

/// Why an engine could not be rebuilt from its log; the log is left untouched.
#[derive(Debug, thiserror::Error)]
pub enum RecoverError {
    /// Reading the log failed or found a damaged record.
    #[error(transparent)]
    Log(#[from] LogError),
    /// The snapshot's bytes are intact but the engine refuses them.
    #[error("{location}: partition {partition}: snapshot at {offset} does not restore: {source}")]
    Restore {
        /// Where the log is kept.
        location: String,
        /// The partition recovered.
        partition: Partition,
        /// The snapshot's offset.
        offset: Offset,
        /// Why the engine refused it.
        source: RestoreError,
    },
    /// The snapshot restores to another state than the one it was taken from.
    #[error("{location}: partition {partition}: snapshot at {offset} was recorded with digest {recorded} but restores to {rebuilt}")]
    DigestMismatch {
        /// Where the log is kept.
        location: String,
        /// The partition recovered.
        partition: Partition,
        /// The snapshot's offset.
        offset: Offset,
        /// The digest stored with it, in hex.
        recorded: String,
        /// The digest of the restored engine.
        rebuilt: Digest,
    },
    /// Entries were trimmed but no snapshot covers them.
    #[error(
        "{location}: partition {partition}: the log starts at {first} and there is no snapshot"
    )]
    MissingSnapshot {
        /// Where the log is kept.
        location: String,
        /// The partition recovered.
        partition: Partition,
        /// The first entry held.
        first: Offset,
    },
}

/// An engine rebuilt from a partition's log.
#[derive(Debug)]
pub struct Recovered {
    /// The rebuilt engine, at the state after the last entry.
    pub engine: Engine,
    /// Where the next append goes.
    pub next: Offset,
    /// The offset of the snapshot recovery started from, if any.
    pub snapshot: Option<Offset>,
    /// Entries replayed after the snapshot.
    pub replayed: u64,
}

/// Rebuilds `partition`'s engine. `config` is used only when the log has no snapshot;
/// a snapshot carries the configuration it was taken with.
///
/// Recovery never starts from less than the log holds: a snapshot outside the live
/// entries, trimmed entries without a snapshot, a damaged or misplaced record and a
/// batch whose tail is gone ([`scan`]) each stop it with an error naming the store,
/// the partition and the record.
pub async fn recover<L: Log>(
    log: &L,
    partition: Partition,
    config: Config,
) -> Result<Recovered, RecoverError> {
    let location = log.location();
    let (mut engine, from) = starting_point(log, partition, config).await?;
    let next = scan(log, partition, from, |record| -> Result<(), RecoverError> {
        let entry = Entry::decode(partition, record.offset, &record.payload)
            .map_err(|e| e.located(&location))?;
        engine.apply(entry.now, entry.input);
        Ok(())
    })
    .await?;
    Ok(Recovered {
        engine,
        next,
        snapshot: (from > 0).then_some(from),
        replayed: next - from,
    })
}

/// Where a replay of `partition` starts: the engine restored from the newest snapshot
/// and its offset, or a new engine at offset 0 when the log was never trimmed. A
/// snapshot outside the live entries, or trimmed entries without a snapshot, are
/// refused. Replays with their own rules (skipping inputs, containing panics) start
/// here and then [`scan`].
pub async fn starting_point<L: Log>(
    log: &L,
    partition: Partition,
    config: Config,
) -> Result<(Engine, Offset), RecoverError> {
    let location = log.location();
    let bounds = log
        .bounds(partition)
        .await
        .map_err(|e| e.located(&location))?;
    let snapshot = log
        .load_snapshot(partition)
        .await
        .map_err(|e| e.located(&location))?;
    match snapshot {
        Some(snapshot) => {
            if !(bounds.first..=bounds.end).contains(&snapshot.offset) {
                let outside = Corruption::SnapshotOutsideLog {
                    offset: snapshot.offset,
                    first: bounds.first,
                    end: bounds.end,
                };
                let err = LogError::corrupt(partition, RecordRef::Snapshot, outside);
                return Err(err.located(&location).into());
            }
            Ok((
                restore_at(&location, partition, &snapshot)?,
                snapshot.offset,
            ))
        }
        None if bounds.first != 0 => Err(RecoverError::MissingSnapshot {
            location,
            partition,
            first: bounds.first,
        }),
        None => Ok((Engine::new(config), 0)),
    }
}

/// Restores a snapshot and checks it against the digest recorded with it.
pub fn restore(partition: Partition, snapshot: &Snapshot) -> Result<Engine, RecoverError> {
    restore_at("the log", partition, snapshot)
}

fn restore_at(
    location: &str,
    partition: Partition,
    snapshot: &Snapshot,
) -> Result<Engine, RecoverError> {
    let offset = snapshot.offset;
    let engine = Engine::restore(&snapshot.state).map_err(|source| RecoverError::Restore {
        location: location.to_owned(),
        partition,
        offset,
        source,
    })?;
    let rebuilt = engine.digest();
    if snapshot.digest != digest_bytes(rebuilt) {
        let recorded = snapshot
            .digest
            .iter()
            .rev()
            .map(|b| format!("{b:02x}"))
            .collect();
        return Err(RecoverError::DigestMismatch {
            location: location.to_owned(),
            partition,
            offset,
            recorded,
            rebuilt,
        });
    }
    Ok(engine)
}

/// The snapshot of `engine` after it applied every entry before `offset`.
pub fn snapshot_of(engine: &Engine, offset: Offset) -> Snapshot {
    Snapshot {
        offset,
        digest: digest_bytes(engine.digest()),
        state: engine.snapshot(),
    }
}

/// Encodes, frames and appends `entries` as one batch at `start`; returns the new end.
pub async fn append_entries<L: Log>(
    log: &L,
    partition: Partition,
    epoch: Epoch,
    start: Offset,
    entries: &[Entry],
) -> Result<Offset, LogError> {
    let payloads: Vec<Vec<u8>> = entries.iter().map(Entry::encode).collect();
    log.append(partition, epoch, start, &payloads).await
}

/// Little-endian bytes of the digest, so they print back as the digest's hex.
fn digest_bytes(digest: Digest) -> Vec<u8> {
    digest.0.to_le_bytes().to_vec()
}
