//! An append larger than `ValkeyOptions::record_bytes` is stored as several records,
//! which read, bound and trim as one append.

use keel_log::{Bounds, Log, Offset, Record, Snapshot};
use keel_valkey::server::ValkeyServer;
use keel_valkey::{PartitionKeys, ValkeyLog, ValkeyOptions};
use std::time::Duration;

fn offsets(records: &[Record]) -> Vec<Offset> {
    records.iter().map(|r| r.offset).collect()
}

#[tokio::test]
async fn a_large_append_is_split_into_records_that_read_as_one() {
    let server = ValkeyServer::start();
    let options = ValkeyOptions {
        record_bytes: 210,
        ..ValkeyOptions::default()
    };
    let log = ValkeyLog::connect(&server.url(), options).await.unwrap();
    let p = 2;
    let lease = log.acquire(p, "a", Duration::from_secs(60)).await.unwrap();
    // A length and a frame of 25 + 60 + 4 bytes each: two fit in a 210-byte record
    // (9 bytes of header, 2 x 97), three do not.
    let batch: Vec<Vec<u8>> = (0..5u8).map(|i| vec![i; 60]).collect();
    assert_eq!(log.append(p, lease.epoch, 0, &batch).await.unwrap(), 5);
    let big = vec![vec![9u8; 500]];
    assert_eq!(log.append(p, lease.epoch, 5, &big).await.unwrap(), 6);
    let keys = PartitionKeys::new("keel", p);
    let mut admin = server.admin();
    let len: usize = redis::cmd("LLEN").arg(&keys.log).query(&mut admin).unwrap();
    let starts: Vec<u64> = redis::cmd("ZRANGE")
        .arg(&keys.starts)
        .arg(0)
        .arg(-1)
        .query(&mut admin)
        .unwrap();
    assert_eq!(
        (len, starts),
        (4, vec![0, 2, 4, 5]),
        "records 0-1, 2-3, 4, 5"
    );
    let all = log.read(p, 0, 100).await.unwrap();
    assert_eq!(offsets(&all), [0, 1, 2, 3, 4, 5]);
    assert!(
        all[..5].iter().all(|r| r.batch_end == Some(5)),
        "one append"
    );
    assert_eq!(all[3].payload, vec![3u8; 60]);
    assert_eq!(offsets(&log.read(p, 3, 2).await.unwrap()), [3, 4]);
    let snapshot = Snapshot {
        offset: 3,
        digest: vec![],
        state: b"s".to_vec(),
    };
    log.store_snapshot(p, lease.epoch, &snapshot).await.unwrap();
    assert_eq!(log.bounds(p).await.unwrap(), Bounds { first: 3, end: 6 });
    let len: usize = redis::cmd("LLEN").arg(&keys.log).query(&mut admin).unwrap();
    assert_eq!(len, 3, "the record holding 3 stays");
    assert_eq!(offsets(&log.read(p, 3, 100).await.unwrap()), [3, 4, 5]);
    keel_log::scan(&log, p, 3, |_| Ok::<(), keel_log::LogError>(()))
        .await
        .expect("the split append scans whole");
}
