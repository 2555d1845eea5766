//! Snapshot cases: storing one trims what it covers, atomically and under the epoch.

use super::{assert_fenced, lead, payloads};
use crate::{Bounds, Log, LogError, Partition, Snapshot};

fn snapshot(offset: u64, state: &str) -> Snapshot {
    Snapshot {
        offset,
        digest: offset.to_le_bytes().to_vec(),
        state: state.as_bytes().to_vec(),
    }
}

/// A snapshot trims the entries before it, and a later snapshot replaces it.
pub async fn snapshot_trims_and_replaces<L: Log>(log: &L, p: Partition) {
    let lease = lead(log, p, "a").await;
    log.append(p, lease.epoch, 0, &payloads("e", 10))
        .await
        .unwrap();
    log.store_snapshot(p, lease.epoch, &snapshot(4, "at four"))
        .await
        .unwrap();
    assert_eq!(
        log.load_snapshot(p).await.unwrap(),
        Some(snapshot(4, "at four"))
    );
    assert_eq!(log.bounds(p).await.unwrap(), Bounds { first: 4, end: 10 });
    match log.read(p, 3, 10).await {
        Err(LogError::Trimmed {
            offset: 3,
            first: 4,
            partition,
        }) => assert_eq!(partition, p),
        other => panic!("reading a trimmed entry: {other:?}"),
    }
    let rest = log.read(p, 4, 100).await.unwrap();
    assert_eq!(
        rest.first().map(|r| (r.offset, r.payload.clone())),
        Some((4, b"e-4".to_vec()))
    );
    assert_eq!(rest.len(), 6);
    log.store_snapshot(p, lease.epoch, &snapshot(4, "again at four"))
        .await
        .unwrap();
    log.store_snapshot(p, lease.epoch, &snapshot(7, "at seven"))
        .await
        .unwrap();
    assert_eq!(
        log.load_snapshot(p).await.unwrap(),
        Some(snapshot(7, "at seven"))
    );
    assert_eq!(log.bounds(p).await.unwrap(), Bounds { first: 7, end: 10 });
    log.append(p, lease.epoch, 10, &payloads("f", 1))
        .await
        .unwrap();
    assert_eq!(log.read(p, 7, 100).await.unwrap().len(), 4);
}

/// A snapshot under a stale epoch, or outside the log's bounds, is refused.
pub async fn snapshot_fencing_and_range<L: Log>(log: &L, p: Partition) {
    let old = lead(log, p, "a").await;
    log.append(p, old.epoch, 0, &payloads("e", 5))
        .await
        .unwrap();
    let new = lead(log, p, "a").await;
    assert_fenced(
        log.store_snapshot(p, old.epoch, &snapshot(3, "stale"))
            .await,
        old.epoch,
    );
    assert!(
        log.load_snapshot(p).await.unwrap().is_none(),
        "a fenced snapshot is not stored"
    );
    assert_eq!(
        log.bounds(p).await.unwrap(),
        Bounds { first: 0, end: 5 },
        "nor trims anything"
    );
    match log
        .store_snapshot(p, new.epoch, &snapshot(6, "beyond the end"))
        .await
    {
        Err(LogError::SnapshotOutOfRange {
            offset: 6,
            first: 0,
            end: 5,
            ..
        }) => {}
        other => panic!("a snapshot past the end: {other:?}"),
    }
    log.store_snapshot(p, new.epoch, &snapshot(3, "ok"))
        .await
        .unwrap();
    match log
        .store_snapshot(p, new.epoch, &snapshot(2, "behind the first entry"))
        .await
    {
        Err(LogError::SnapshotOutOfRange {
            offset: 2,
            first: 3,
            end: 5,
            ..
        }) => {}
        other => panic!("a snapshot older than the trimmed prefix: {other:?}"),
    }
    assert_eq!(log.load_snapshot(p).await.unwrap(), Some(snapshot(3, "ok")));
}

/// A snapshot at the log's end leaves it empty, and appends continue from there.
pub async fn snapshot_of_everything_then_append<L: Log>(log: &L, p: Partition) {
    let lease = lead(log, p, "a").await;
    log.append(p, lease.epoch, 0, &payloads("e", 3))
        .await
        .unwrap();
    log.store_snapshot(p, lease.epoch, &snapshot(3, "all"))
        .await
        .unwrap();
    assert_eq!(log.bounds(p).await.unwrap(), Bounds { first: 3, end: 3 });
    assert!(log.read(p, 3, 10).await.unwrap().is_empty());
    match log.append(p, lease.epoch, 0, &payloads("x", 1)).await {
        Err(LogError::OffsetMismatch {
            expected: 0,
            actual: 3,
            ..
        }) => {}
        other => panic!("the end survives trimming everything: {other:?}"),
    }
    assert_eq!(
        log.append(p, lease.epoch, 3, &payloads("g", 2))
            .await
            .unwrap(),
        5
    );
    let offsets: Vec<_> = log
        .read(p, 3, 10)
        .await
        .unwrap()
        .iter()
        .map(|r| r.offset)
        .collect();
    assert_eq!(offsets, vec![3, 4]);
}
