//! Recovery cases: a crashed coordinator's engine is rebuilt to the digest it had at its
//! last durable entry, and damage to what recovery reads is reported, never skipped.

use super::lead;
use super::workload::Workload;
use crate::{
    append_entries, recover, snapshot_of, Corruption, Epoch, LogError, Offset, Partition,
    RecordRef, RecoverError,
};
use crate::{Entry, Log, ENTRY_VERSION};
use keel_engine::{Config, Digest, Engine};

const BATCH: usize = 17;

/// What a coordinator had made durable when it crashed.
pub struct History {
    /// Where the log ends: every batch before is durable.
    pub end: Offset,
    /// The engine's digest after the last durable batch, which recovery must reach.
    pub digest: Digest,
    /// The offset of the last snapshot stored, if any.
    pub snapshot: Option<Offset>,
}

/// Runs `batches` group commits of the workload through a fresh engine and the log, as
/// the coordinator does (apply, then append the batch), storing a snapshot after every
/// `snapshot_every` batches (never if 0). Then applies one more batch without appending
/// it, as a coordinator that crashes before its write completes.
pub async fn write_history<L: Log>(
    log: &L,
    p: Partition,
    epoch: Epoch,
    batches: usize,
    snapshot_every: usize,
) -> History {
    let mut engine = Engine::new(Config::default());
    let mut workload = Workload::new(u64::from(p) + 1);
    let mut history = History {
        end: 0,
        digest: engine.digest(),
        snapshot: None,
    };
    for batch in 1..=batches + 1 {
        let entries: Vec<Entry> = (0..BATCH)
            .map(|_| {
                let entry = workload.next_entry();
                let outputs = engine.apply(entry.now, entry.input.clone());
                workload.observe(&entry.input, &outputs);
                entry
            })
            .collect();
        if batch > batches {
            break;
        }
        history.end = append_entries(log, p, epoch, history.end, &entries)
            .await
            .expect("append");
        history.digest = engine.digest();
        if snapshot_every > 0 && batch % snapshot_every == 0 {
            log.store_snapshot(p, epoch, &snapshot_of(&engine, history.end))
                .await
                .expect("snapshot");
            history.snapshot = Some(history.end);
        }
    }
    assert_ne!(
        engine.digest(),
        history.digest,
        "the unlogged batch changed the crashed engine"
    );
    history
}

/// Recovery, with and without snapshots, rebuilds the digest of every durable batch
/// and nothing of the batch that was never appended.
pub async fn recovery_rebuilds_digest<L: Log>(log: &L, p: Partition) {
    for (partition, snapshot_every) in [(p, 10), (p + 1, 0)] {
        let lease = lead(log, partition, "a").await;
        let history = write_history(log, partition, lease.epoch, 35, snapshot_every).await;
        let recovered = recover(log, partition, Config::default())
            .await
            .expect("recover");
        assert_eq!(
            recovered.engine.digest(),
            history.digest,
            "digest at the last durable entry"
        );
        assert_eq!(recovered.next, history.end);
        assert_eq!(recovered.snapshot, history.snapshot);
        let from = history.snapshot.unwrap_or(0);
        assert_eq!(recovered.replayed, history.end - from);
        recovered
            .engine
            .check_invariants()
            .expect("a recovered engine is consistent");
    }
}

/// A snapshot whose recorded digest does not match what it restores to stops recovery.
pub async fn snapshot_digest_checked<L: Log>(log: &L, p: Partition) {
    let lease = lead(log, p, "a").await;
    let history = write_history(log, p, lease.epoch, 3, 3).await;
    let mut snapshot = log.load_snapshot(p).await.unwrap().expect("a snapshot");
    snapshot.digest[0] ^= 1;
    log.store_snapshot(p, lease.epoch, &snapshot).await.unwrap();
    match recover(log, p, Config::default()).await {
        Err(RecoverError::DigestMismatch {
            partition, offset, ..
        }) => assert_eq!((partition, offset), (p, history.end)),
        other => panic!("a snapshot whose digest does not match: {other:?}"),
    }
    snapshot.state.truncate(snapshot.state.len() / 2);
    log.store_snapshot(p, lease.epoch, &snapshot).await.unwrap();
    match recover(log, p, Config::default()).await {
        Err(RecoverError::Restore {
            partition, offset, ..
        }) => assert_eq!((partition, offset), (p, history.end)),
        other => panic!("a snapshot that does not restore: {other:?}"),
    }
}

/// An entry that does not decode stops recovery with an error naming its offset.
pub async fn undecodable_entry_named<L: Log>(log: &L, p: Partition) {
    let lease = lead(log, p, "a").await;
    let history = write_history(log, p, lease.epoch, 2, 0).await;
    let garbage = vec![vec![ENTRY_VERSION, 0xff, 0xff, 0xff], vec![9, 1, 2]];
    log.append(p, lease.epoch, history.end, &garbage)
        .await
        .unwrap();
    let err = recover(log, p, Config::default())
        .await
        .expect_err("garbage must stop recovery");
    assert_corrupt(&err, p, history.end);
    assert!(
        err.to_string()
            .contains(&format!("partition {p}, entry {}", history.end)),
        "{err}"
    );
}

/// Checks that recovery failed on the record at `offset` of partition `p`.
pub fn assert_corrupt(err: &RecoverError, p: Partition, offset: Offset) {
    match err {
        RecoverError::Log(LogError::Corrupt {
            partition,
            record: RecordRef::Entry(at),
            corruption,
            ..
        }) => {
            assert_eq!((*partition, *at), (p, offset), "{err}");
            assert!(!matches!(corruption, Corruption::Missing { .. }), "{err}");
        }
        other => panic!("expected corruption of partition {p} entry {offset}, got {other:?}"),
    }
}
