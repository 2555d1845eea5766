//! A data directory written by an older build of the redb log opens with this one and
//! holds exactly what was written (`tests/fixtures/README.md` says how the fixture was
//! made). A log in redb's file format v2 is upgraded to v3 on open, and the original is
//! kept beside it.

use keel_log::{Bounds, Log, RedbLog, Snapshot, BACKUP_SUFFIX, FILE_NAME};
use std::io::Read;
use std::path::Path;
use std::time::Duration;

/// Unpacks a gzipped fixture log into `dir` as its log file; returns its bytes.
fn unpack(fixture: &str, dir: &Path) -> Vec<u8> {
    let packed = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(fixture);
    let file = std::fs::File::open(&packed).expect("fixture present");
    let mut bytes = Vec::new();
    flate2::read::GzDecoder::new(file)
        .read_to_end(&mut bytes)
        .expect("fixture unpacks");
    std::fs::write(dir.join(FILE_NAME), &bytes).expect("write the fixture log");
    bytes
}

/// What the fixture's writer stored (see the fixtures README).
async fn assert_fixture_content(log: &RedbLog) {
    assert_eq!(log.bounds(0).await.unwrap(), Bounds { first: 2, end: 6 });
    let records = log.read(0, 2, 100).await.unwrap();
    let payloads: Vec<Vec<u8>> = records.iter().map(|r| r.payload.clone()).collect();
    let big: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
    assert_eq!(
        payloads,
        vec![
            b"entry-2".to_vec(),
            b"entry-3".to_vec(),
            vec![0, 255, 0, 7],
            big
        ]
    );
    assert!(records.iter().all(|r| r.epoch == 1));
    assert_eq!(
        log.load_snapshot(0).await.unwrap(),
        Some(Snapshot {
            offset: 2,
            digest: vec![0xd1, 0x9e, 0x57],
            state: b"state after entry-1".to_vec(),
        })
    );
    assert_eq!(log.bounds(9).await.unwrap(), Bounds { first: 0, end: 1 });
    assert_eq!(log.read(9, 0, 10).await.unwrap()[0].payload, b"nine-0");
}

#[tokio::test]
async fn a_redb2_data_directory_opens_with_everything_in_it() {
    let dir = tempfile::tempdir().unwrap();
    let original = unpack("redb2/keel-log.redb.gz", dir.path());
    // What a crash in the middle of an earlier upgrade leaves behind.
    let work = dir.path().join(format!("{FILE_NAME}.upgrading"));
    std::fs::write(&work, b"half an upgrade").unwrap();
    let log = RedbLog::open(dir.path()).expect("the old log opens");
    assert_fixture_content(&log).await;
    let backup = dir.path().join(format!("{FILE_NAME}{BACKUP_SUFFIX}"));
    assert_eq!(
        std::fs::read(&backup).expect("the original is kept"),
        original,
        "the backup is the untouched original"
    );
    assert!(!work.exists(), "the upgraded copy replaced the log");
    // Leadership state came along: the writer's lease lapsed long ago, and partition 9
    // was stepped down at epoch 2.
    let lease = log
        .acquire(0, "next", Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(lease.epoch, 2);
    let end = log.append(0, lease.epoch, 6, &[b"entry-6".to_vec()]).await;
    assert_eq!(end.unwrap(), 7);
    let nine = log
        .acquire(9, "next", Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(nine.epoch, 3);
}

#[tokio::test]
async fn an_upgraded_log_is_not_upgraded_again() {
    let dir = tempfile::tempdir().unwrap();
    unpack("redb2/keel-log.redb.gz", dir.path());
    drop(RedbLog::open(dir.path()).expect("the old log opens"));
    let backup = dir.path().join(format!("{FILE_NAME}{BACKUP_SUFFIX}"));
    std::fs::remove_file(&backup).unwrap();
    let log = RedbLog::open(dir.path()).expect("the upgraded log opens");
    assert_fixture_content(&log).await;
    assert!(!backup.exists(), "a v3 file is opened as it is");
}
