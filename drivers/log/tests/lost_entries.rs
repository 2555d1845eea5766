//! Recovery never starts from less than the log held: a batch whose tail is gone, a
//! batch whose entries disagree about where it ends, and a snapshot that covers entries
//! the log does not hold each stop it with a corruption error naming the store, the
//! partition and the record. Entries written before frames recorded their batch still
//! recover.

use keel_engine::Config;
use keel_log::conformance::write_history;
use keel_log::record::{
    decode_entry, decode_snapshot, encode_entry, encode_record, encode_snapshot,
};
use keel_log::{
    recover, Corruption, Entry, Log, LogError, MemoryLog, Record, RecordRef, RecoverError, RedbLog,
    FILE_NAME,
};
use redb::{Database, ReadableTable, TableDefinition};
use std::path::Path;
use std::time::Duration;

const P: u32 = 5;
const ENTRIES: TableDefinition<(u32, u64), &[u8]> = TableDefinition::new("entries");
const SNAPSHOTS: TableDefinition<u32, &[u8]> = TableDefinition::new("snapshots");
/// Entries per batch in `write_history`.
const BATCH: u64 = 17;

fn corruption(err: RecoverError) -> (RecordRef, Corruption, String) {
    match err {
        RecoverError::Log(LogError::Corrupt {
            partition: P,
            record,
            corruption,
            location,
        }) => (record, corruption, location),
        other => panic!("expected a corrupt record in partition {P}, got {other:?}"),
    }
}

#[tokio::test]
async fn a_batch_whose_tail_is_gone_stops_recovery() {
    for lost in [1, 5, BATCH - 1] {
        let log = MemoryLog::new();
        let lease = log.acquire(P, "a", Duration::from_secs(60)).await.unwrap();
        let history = write_history(&log, P, lease.epoch, 3, 0).await;
        assert_eq!(history.end, 3 * BATCH);
        let end = history.end - lost;
        assert!(log.truncate(P, end));
        let err = recover(&log, P, Config::default()).await.unwrap_err();
        let text = err.to_string();
        assert_eq!(
            corruption(err),
            (
                RecordRef::Entry(end),
                Corruption::TornBatch {
                    batch_end: history.end,
                    end
                },
                "memory".into()
            )
        );
        assert!(
            text.starts_with(&format!("memory: partition {P}, entry {end}: torn batch")),
            "{text}"
        );
        // Whole batches lost at the end cannot be told from batches never written; the
        // store's own atomic commit is what keeps those (see keel_log::scan).
        assert!(log.truncate(P, 2 * BATCH));
        let recovered = recover(&log, P, Config::default()).await.unwrap();
        assert_eq!(recovered.next, 2 * BATCH);
    }
}

/// Rewrites the stored frame of entry `offset` in a redb log file.
fn edit_entry(dir: &Path, offset: u64, edit: impl FnOnce(Record) -> Option<Vec<u8>>) {
    let db = Database::create(dir.join(FILE_NAME)).unwrap();
    let tx = db.begin_write().unwrap();
    {
        let mut table = tx.open_table(ENTRIES).unwrap();
        let frame = table.get((P, offset)).unwrap().unwrap().value().to_vec();
        match edit(decode_entry(P, offset, &frame).unwrap()) {
            Some(frame) => table.insert((P, offset), frame.as_slice()).unwrap(),
            None => table.remove((P, offset)).unwrap(),
        };
    }
    tx.commit().unwrap();
}

async fn redb_history(dir: &Path, batches: usize, snapshot_every: usize) -> u64 {
    let log = RedbLog::open(dir).unwrap();
    let lease = log.acquire(P, "a", Duration::from_secs(60)).await.unwrap();
    write_history(&log, P, lease.epoch, batches, snapshot_every)
        .await
        .end
}

#[tokio::test]
async fn the_last_entry_of_a_batch_missing_from_redb_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let end = redb_history(dir.path(), 3, 0).await;
    edit_entry(dir.path(), end - 1, |_| None);
    let log = RedbLog::open(dir.path()).unwrap();
    let (record, found, location) =
        corruption(recover(&log, P, Config::default()).await.unwrap_err());
    assert_eq!(
        (record, found),
        (
            RecordRef::Entry(end - 1),
            Corruption::TornBatch {
                batch_end: end,
                end: end - 1
            }
        )
    );
    assert_eq!(location, dir.path().join(FILE_NAME).display().to_string());
}

#[tokio::test]
async fn an_entry_disagreeing_about_its_batch_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let end = redb_history(dir.path(), 3, 0).await;
    let at = BATCH + 4;
    edit_entry(dir.path(), at, |r| {
        Some(encode_entry(r.epoch, r.offset, 3 * BATCH, &r.payload))
    });
    let log = RedbLog::open(dir.path()).unwrap();
    let (record, found, _) = corruption(recover(&log, P, Config::default()).await.unwrap_err());
    assert_eq!(
        (record, found),
        (
            RecordRef::Entry(at),
            Corruption::BatchMismatch {
                found: end,
                expected: 2 * BATCH
            }
        )
    );
}

#[tokio::test]
async fn a_snapshot_beyond_the_log_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let end = redb_history(dir.path(), 4, 2).await;
    {
        let db = Database::create(dir.path().join(FILE_NAME)).unwrap();
        let tx = db.begin_write().unwrap();
        {
            let mut table = tx.open_table(SNAPSHOTS).unwrap();
            let frame = table.get(P).unwrap().unwrap().value().to_vec();
            let mut snapshot = decode_snapshot(P, &frame).unwrap();
            snapshot.offset = end + 40;
            table
                .insert(P, encode_snapshot(&snapshot).as_slice())
                .unwrap();
        }
        tx.commit().unwrap();
    }
    let log = RedbLog::open(dir.path()).unwrap();
    let err = recover(&log, P, Config::default()).await.unwrap_err();
    let text = err.to_string();
    let (record, found, _) = corruption(err);
    assert_eq!(
        (record, found),
        (
            RecordRef::Snapshot,
            Corruption::SnapshotOutsideLog {
                offset: end + 40,
                first: 4 * BATCH,
                end
            }
        )
    );
    assert!(
        text.contains(&format!("partition {P}, snapshot: the snapshot is at")),
        "{text}"
    );
}

/// A log whose older entries were written as version 1 frames (before frames recorded
/// their batch) and newer ones as version 2 recovers to the same engine.
#[tokio::test]
async fn entries_from_before_batch_ends_were_recorded_still_recover() {
    let log = MemoryLog::new();
    let lease = log.acquire(P, "a", Duration::from_secs(60)).await.unwrap();
    let history = write_history(&log, P, lease.epoch, 3, 0).await;
    for offset in 0..2 * BATCH {
        assert!(log.tamper(P, offset, |frame| {
            let mut record = decode_entry(P, offset, frame).unwrap();
            record.batch_end = None;
            *frame = encode_record(&record);
        }));
    }
    let recovered = recover(&log, P, Config::default()).await.unwrap();
    assert_eq!(recovered.next, history.end);
    assert_eq!(recovered.engine.digest(), history.digest);
    let first = log.read(P, 0, 1).await.unwrap().remove(0);
    assert_eq!(first.batch_end, None);
    assert!(Entry::decode(P, 0, &first.payload).is_ok());
}
