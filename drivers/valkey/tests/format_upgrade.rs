//! A log written by library 1 (one list element per entry, no index) is read as it is,
//! and indexed on the first write of the current library, after which old and new
//! records read, bound and trim as one log.

use keel_log::record::encode_entry;
use keel_log::{Bounds, Log, LogError, Offset, Record};
use keel_valkey::server::ValkeyServer;
use keel_valkey::{PartitionKeys, ValkeyLog, ValkeyOptions};
use std::time::Duration;

fn offsets(records: &[Record]) -> Vec<Offset> {
    records.iter().map(|r| r.offset).collect()
}

#[tokio::test]
async fn a_log_of_single_entries_is_read_then_indexed_by_the_first_write() {
    let server = ValkeyServer::start();
    let keys = PartitionKeys::new("keel", 3);
    let mut admin = server.admin();
    // Library 1's layout: trimmed to offset 2, entries 2..6 from appends 2..4 and 4..6.
    let frames: Vec<Vec<u8>> = (2..6u64)
        .map(|o| {
            encode_entry(
                1,
                o,
                if o < 4 { 4 } else { 6 },
                format!("old-{o}").as_bytes(),
            )
        })
        .collect();
    redis::pipe()
        .set(&keys.epoch, 1)
        .set(&keys.first, 2)
        .rpush(&keys.log, frames)
        .query::<()>(&mut admin)
        .unwrap();
    let log = ValkeyLog::connect(&server.url(), ValkeyOptions::default())
        .await
        .unwrap();
    let p = 3;
    assert_eq!(log.bounds(p).await.unwrap(), Bounds { first: 2, end: 6 });
    assert_eq!(offsets(&log.read(p, 3, 2).await.unwrap()), vec![3, 4]);
    assert!(matches!(
        log.read(p, 1, 2).await,
        Err(LogError::Trimmed { first: 2, .. })
    ));

    let lease = log.acquire(p, "a", Duration::from_secs(60)).await.unwrap();
    let new = vec![b"new-6".to_vec(), b"new-7".to_vec()];
    assert_eq!(log.append(p, lease.epoch, 6, &new).await.unwrap(), 8);
    let all = log.read(p, 2, 100).await.unwrap();
    assert_eq!(offsets(&all), vec![2, 3, 4, 5, 6, 7]);
    assert_eq!(all[3].payload, b"old-5");
    assert_eq!(all[5].payload, b"new-7");
    let card = |admin: &mut redis::Connection| -> (usize, usize) {
        let card: usize = redis::cmd("ZCARD").arg(&keys.starts).query(admin).unwrap();
        let len: usize = redis::cmd("LLEN").arg(&keys.log).query(admin).unwrap();
        (card, len)
    };
    assert_eq!(
        card(&mut admin),
        (5, 5),
        "four old records indexed, one batch"
    );

    let snapshot = |offset| keel_log::Snapshot {
        offset,
        digest: vec![],
        state: b"state".to_vec(),
    };
    log.store_snapshot(p, lease.epoch, &snapshot(5))
        .await
        .unwrap();
    assert_eq!(log.bounds(p).await.unwrap(), Bounds { first: 5, end: 8 });
    assert_eq!(card(&mut admin), (2, 2), "old records before 5 dropped");
    assert_eq!(offsets(&log.read(p, 5, 100).await.unwrap()), vec![5, 6, 7]);

    log.store_snapshot(p, lease.epoch, &snapshot(7))
        .await
        .unwrap();
    assert_eq!(card(&mut admin), (1, 1), "the batch holding 7 stays whole");
    assert_eq!(offsets(&log.read(p, 7, 100).await.unwrap()), vec![7]);
    assert!(matches!(
        log.read(p, 6, 1).await,
        Err(LogError::Trimmed { first: 7, .. })
    ));
}
