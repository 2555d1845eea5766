//! The behaviour every [`Log`] backend must show, as test cases. A backend's tests run
//! them all with [`conformance_tests!`](crate::conformance_tests):
//!
//! ```text
//! keel_log::conformance_tests!(async { (keel_log::MemoryLog::new(), ()) });
//! ```
//!
//! The expression yields the log and a guard kept alive for the test (a temporary
//! directory, a server). Each case uses its own partition, so cases may share a store.

mod contention;
mod recovery;
mod snapshots;
pub mod workload;

pub use contention::two_coordinators_contend;
pub use recovery::{
    assert_corrupt, recovery_rebuilds_digest, snapshot_digest_checked, undecodable_entry_named,
    write_history, History,
};
pub use snapshots::{
    snapshot_fencing_and_range, snapshot_of_everything_then_append, snapshot_trims_and_replaces,
};

use crate::{Bounds, Leadership, Log, LogError, Partition};
use std::time::Duration;

/// Generous lease for cases that do not test expiry.
pub const LONG: Duration = Duration::from_secs(60);

/// Generates one `#[tokio::test]` per conformance case for the log built by `$make`.
#[macro_export]
macro_rules! conformance_tests {
    ($make:expr) => {
        $crate::conformance_tests!(@cases $make;
            empty_log, append_needs_leadership, append_and_read_back, append_checks_start,
            binary_and_large_payloads, empty_batch, stale_epoch_refused, lease_held_until_expiry,
            renew_and_step_down, partitions_are_independent, snapshot_trims_and_replaces,
            snapshot_fencing_and_range, snapshot_of_everything_then_append,
            two_coordinators_contend, recovery_rebuilds_digest, snapshot_digest_checked,
            undecodable_entry_named);
    };
    (@cases $make:expr; $($case:ident),*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $case() {
            let (log, _guard) = $make.await;
            let case = $crate::conformance::$case(&log, 7);
            tokio::time::timeout(std::time::Duration::from_secs(120), case)
                .await
                .expect(concat!("conformance case ", stringify!($case), " timed out"));
        }
    )*};
}

pub(crate) fn payloads(tag: &str, n: usize) -> Vec<Vec<u8>> {
    (0..n).map(|i| format!("{tag}-{i}").into_bytes()).collect()
}

pub(crate) async fn lead<L: Log>(log: &L, p: Partition, holder: &str) -> Leadership {
    log.acquire(p, holder, LONG)
        .await
        .expect("an unheld partition can be acquired")
}

pub(crate) fn assert_fenced(result: Result<impl std::fmt::Debug, LogError>, epoch: u64) {
    match result {
        Err(LogError::Fenced { epoch: e, .. }) => {
            assert_eq!(e, epoch, "the error names the refused epoch")
        }
        other => panic!("expected a fenced error for epoch {epoch}, got {other:?}"),
    }
}

/// A partition never written has no entries, no snapshot and bounds `0..0`.
pub async fn empty_log<L: Log>(log: &L, p: Partition) {
    assert_eq!(log.bounds(p).await.unwrap(), Bounds { first: 0, end: 0 });
    assert!(log.read(p, 0, 10).await.unwrap().is_empty());
    assert!(log.load_snapshot(p).await.unwrap().is_none());
}

/// An append without a granted epoch is fenced and writes nothing.
pub async fn append_needs_leadership<L: Log>(log: &L, p: Partition) {
    assert_fenced(log.append(p, 0, 0, &payloads("x", 1)).await, 0);
    assert_fenced(log.append(p, 1, 0, &payloads("x", 1)).await, 1);
    assert_eq!(
        log.bounds(p).await.unwrap().end,
        0,
        "a refused append writes nothing"
    );
}

/// Appended batches read back in order with their offsets, epochs and batch ends.
pub async fn append_and_read_back<L: Log>(log: &L, p: Partition) {
    let lease = lead(log, p, "a").await;
    assert_eq!(
        log.append(p, lease.epoch, 0, &payloads("b1", 3))
            .await
            .unwrap(),
        3
    );
    assert_eq!(
        log.append(p, lease.epoch, 3, &payloads("b2", 2))
            .await
            .unwrap(),
        5
    );
    let records = log.read(p, 0, 100).await.unwrap();
    let got: Vec<_> = records
        .iter()
        .map(|r| (r.offset, r.epoch, r.payload.clone()))
        .collect();
    let mut want: Vec<_> = payloads("b1", 3)
        .into_iter()
        .chain(payloads("b2", 2))
        .collect();
    let want: Vec<_> = (0..)
        .zip(want.drain(..))
        .map(|(o, b)| (o, lease.epoch, b))
        .collect();
    assert_eq!(got, want);
    let middle = log.read(p, 2, 2).await.unwrap();
    assert_eq!(
        middle.iter().map(|r| r.offset).collect::<Vec<_>>(),
        vec![2, 3]
    );
    assert!(
        log.read(p, 5, 10).await.unwrap().is_empty(),
        "reading at the end gives nothing"
    );
    assert!(
        log.read(p, 9, 10).await.unwrap().is_empty(),
        "reading past the end gives nothing"
    );
    assert_eq!(log.bounds(p).await.unwrap(), Bounds { first: 0, end: 5 });
}

/// An append at any offset but the log's end is refused with both offsets named.
pub async fn append_checks_start<L: Log>(log: &L, p: Partition) {
    let lease = lead(log, p, "a").await;
    log.append(p, lease.epoch, 0, &payloads("x", 2))
        .await
        .unwrap();
    for wrong in [0, 1, 3, 100] {
        match log.append(p, lease.epoch, wrong, &payloads("y", 2)).await {
            Err(LogError::OffsetMismatch {
                expected,
                actual,
                partition,
            }) => {
                assert_eq!((partition, expected, actual), (p, wrong, 2));
            }
            other => panic!("append at {wrong} of a log ending at 2: {other:?}"),
        }
    }
    assert_eq!(log.bounds(p).await.unwrap().end, 2);
}

/// Empty, every-byte and 1 MiB payloads come back byte for byte.
pub async fn binary_and_large_payloads<L: Log>(log: &L, p: Partition) {
    let lease = lead(log, p, "a").await;
    let every_byte: Vec<u8> = (0..=255).collect();
    let large: Vec<u8> = (0..1 << 20)
        .map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let batch = vec![Vec::new(), every_byte, large];
    log.append(p, lease.epoch, 0, &batch).await.unwrap();
    let back: Vec<_> = log
        .read(p, 0, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.payload)
        .collect();
    assert_eq!(back, batch);
}

/// An empty append is accepted at the end, still fenced, and writes nothing.
pub async fn empty_batch<L: Log>(log: &L, p: Partition) {
    let lease = lead(log, p, "a").await;
    assert_eq!(log.append(p, lease.epoch, 0, &[]).await.unwrap(), 0);
    assert_fenced(
        log.append(p, lease.epoch + 1, 0, &[]).await,
        lease.epoch + 1,
    );
    assert_eq!(log.bounds(p).await.unwrap().end, 0);
}

/// Once a new epoch is granted, the old epoch's appends and renewals are fenced.
pub async fn stale_epoch_refused<L: Log>(log: &L, p: Partition) {
    let first = lead(log, p, "a").await;
    log.append(p, first.epoch, 0, &payloads("old", 2))
        .await
        .unwrap();
    let second = lead(log, p, "a").await;
    assert!(second.epoch > first.epoch, "epochs only increase");
    assert_fenced(
        log.append(p, first.epoch, 2, &payloads("stale", 3)).await,
        first.epoch,
    );
    assert_fenced(log.renew(&first, LONG).await, first.epoch);
    log.append(p, second.epoch, 2, &payloads("new", 1))
        .await
        .unwrap();
    let epochs: Vec<_> = log
        .read(p, 0, 10)
        .await
        .unwrap()
        .iter()
        .map(|r| r.epoch)
        .collect();
    assert_eq!(
        epochs,
        vec![first.epoch, first.epoch, second.epoch],
        "nothing of the stale batch is stored"
    );
}

/// Another holder is kept out while a lease runs and may take over once it expires.
pub async fn lease_held_until_expiry<L: Log>(log: &L, p: Partition) {
    let ttl = Duration::from_millis(1_000);
    let a = log.acquire(p, "a", ttl).await.unwrap();
    assert!(a.is_valid(std::time::Instant::now()));
    match log.acquire(p, "b", ttl).await {
        Err(LogError::LeaseHeld { holder, partition }) => {
            assert_eq!((holder.as_str(), partition), ("a", p))
        }
        other => panic!("a live lease must keep b out: {other:?}"),
    }
    tokio::time::sleep(ttl + Duration::from_millis(200)).await;
    let b = log
        .acquire(p, "b", LONG)
        .await
        .expect("an expired lease can be taken over");
    assert!(b.epoch > a.epoch);
    assert_fenced(log.append(p, a.epoch, 0, &payloads("a", 1)).await, a.epoch);
    assert_fenced(log.renew(&a, ttl).await, a.epoch);
    log.append(p, b.epoch, 0, &payloads("b", 1)).await.unwrap();
}

/// Renewing extends a lease; stepping down lets another holder in at once.
pub async fn renew_and_step_down<L: Log>(log: &L, p: Partition) {
    let ttl = Duration::from_millis(1_500);
    let a = log.acquire(p, "a", ttl).await.unwrap();
    // Four renewals 600 ms apart outlast the 1.5 s lease only if renewing extends it.
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(600)).await;
        let renewed = log.renew(&a, ttl).await.expect("a current lease renews");
        assert_eq!(renewed.epoch, a.epoch);
        assert!(renewed.valid_until > a.valid_until);
        assert!(
            matches!(
                log.acquire(p, "b", ttl).await,
                Err(LogError::LeaseHeld { .. })
            ),
            "renewal keeps b out"
        );
    }
    log.step_down(&a).await.unwrap();
    assert_fenced(log.append(p, a.epoch, 0, &payloads("a", 1)).await, a.epoch);
    assert_fenced(log.renew(&a, ttl).await, a.epoch);
    assert_fenced(log.step_down(&a).await, a.epoch);
    let b = log
        .acquire(p, "b", ttl)
        .await
        .expect("a released partition can be taken at once");
    assert!(b.epoch > a.epoch);
    log.append(p, b.epoch, 0, &payloads("b", 1)).await.unwrap();
}

/// Epochs and entries of one partition do not affect another.
pub async fn partitions_are_independent<L: Log>(log: &L, p: Partition) {
    let q = p + 1000;
    let a = lead(log, p, "a").await;
    let b = lead(log, q, "b").await;
    log.append(p, a.epoch, 0, &payloads("p", 3)).await.unwrap();
    log.append(q, b.epoch, 0, &payloads("q", 1)).await.unwrap();
    let a2 = lead(log, p, "a").await;
    log.append(q, b.epoch, 1, &payloads("q", 1))
        .await
        .expect("a new epoch on p does not fence q");
    assert_eq!(log.bounds(p).await.unwrap().end, 3);
    assert_eq!(log.bounds(q).await.unwrap().end, 2);
    assert_eq!(log.read(q, 0, 10).await.unwrap()[0].payload, b"q-0");
    assert!(a2.epoch > a.epoch);
}
