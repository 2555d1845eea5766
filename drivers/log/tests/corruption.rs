//! Damaged records stop recovery with an error naming the partition and the record, on
//! the in-memory log and on a redb file edited behind the log's back.

use keel_engine::Config;
use keel_log::conformance::{assert_corrupt, write_history};
use keel_log::{
    recover, Corruption, Log, LogError, MemoryLog, RecordRef, RecoverError, RedbLog, FILE_NAME,
};
use redb::{Database, ReadableTable, TableDefinition};
use std::time::Duration;

const P: u32 = 3;
const ENTRIES: TableDefinition<(u32, u64), &[u8]> = TableDefinition::new("entries");

async fn history_in<L: Log>(log: &L) -> u64 {
    let lease = log.acquire(P, "a", Duration::from_secs(60)).await.unwrap();
    write_history(log, P, lease.epoch, 4, 0).await.end
}

#[tokio::test]
async fn flipped_byte_in_memory_names_the_entry() {
    let log = MemoryLog::new();
    let end = history_in(&log).await;
    assert!(end > 20);
    assert!(log.tamper(P, 20, |frame| {
        let middle = frame.len() / 2;
        frame[middle] ^= 0x10;
    }));
    let err = recover(&log, P, Config::default()).await.unwrap_err();
    assert_corrupt(&err, P, 20);
    assert!(
        err.to_string()
            .starts_with("partition 3, entry 20: checksum mismatch"),
        "{err}"
    );
}

#[tokio::test]
async fn future_format_version_in_memory_is_refused() {
    let log = MemoryLog::new();
    history_in(&log).await;
    assert!(log.tamper(P, 0, |frame| {
        frame[0] = 2;
        let body = frame.len() - 4;
        let crc = crc32fast::hash(&frame[..body]).to_le_bytes();
        frame[body..].copy_from_slice(&crc);
    }));
    let err = recover(&log, P, Config::default()).await.unwrap_err();
    assert_corrupt(&err, P, 0);
    assert!(
        err.to_string().contains("unknown format version 2"),
        "{err}"
    );
}

fn edit_entries(dir: &std::path::Path, edit: impl FnOnce(&mut redb::Table<(u32, u64), &[u8]>)) {
    let db = Database::create(dir.join(FILE_NAME)).unwrap();
    let tx = db.begin_write().unwrap();
    edit(&mut tx.open_table(ENTRIES).unwrap());
    tx.commit().unwrap();
}

#[tokio::test]
async fn flipped_byte_in_redb_names_the_entry() {
    let dir = tempfile::tempdir().unwrap();
    let end = history_in(&RedbLog::open(dir.path()).unwrap()).await;
    edit_entries(dir.path(), |table| {
        let mut frame = table.get((P, 33)).unwrap().unwrap().value().to_vec();
        frame[5] ^= 0x01;
        table.insert((P, 33), frame.as_slice()).unwrap();
    });
    let log = RedbLog::open(dir.path()).unwrap();
    assert_eq!(log.bounds(P).await.unwrap().end, end);
    let err = recover(&log, P, Config::default()).await.unwrap_err();
    assert_corrupt(&err, P, 33);
}

#[tokio::test]
async fn entry_missing_from_redb_is_reported_not_skipped() {
    let dir = tempfile::tempdir().unwrap();
    history_in(&RedbLog::open(dir.path()).unwrap()).await;
    edit_entries(dir.path(), |table| {
        table.remove((P, 12)).unwrap();
    });
    let log = RedbLog::open(dir.path()).unwrap();
    match recover(&log, P, Config::default()).await {
        Err(RecoverError::Log(LogError::Corrupt {
            partition: P,
            record: RecordRef::Entry(12),
            corruption: Corruption::Missing { .. },
        })) => {}
        other => panic!("a hole in the log must stop recovery: {other:?}"),
    }
}

#[tokio::test]
async fn entry_moved_in_redb_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    history_in(&RedbLog::open(dir.path()).unwrap()).await;
    edit_entries(dir.path(), |table| {
        let frame = table.get((P, 8)).unwrap().unwrap().value().to_vec();
        table.insert((P, 9), frame.as_slice()).unwrap();
    });
    let log = RedbLog::open(dir.path()).unwrap();
    let err = recover(&log, P, Config::default()).await.unwrap_err();
    assert!(
        err.to_string()
            .starts_with("partition 3, entry 9: record says it is at offset 8"),
        "{err}"
    );
}
