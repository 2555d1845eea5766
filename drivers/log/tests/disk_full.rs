//! The disk under the redb log fills up: every write that needs space fails with
//! `LogError::NoSpace` naming the file, distinct from other failures, and says whether
//! the write reached the file. Nothing acknowledged is lost, nothing refused is stored,
//! and once space is freed the same log goes on where it stopped, under the same
//! leadership. The full disk is simulated below redb (its storage backend), so this
//! runs anywhere.

use keel_engine::Config;
use keel_log::conformance::write_history;
use keel_log::{
    recover, scan, DiskFaults, ErrorKind, Leadership, Log, LogError, Outcome, RedbLog, RedbOptions,
    FILE_NAME,
};
use std::time::Duration;

const P: u32 = 1;

fn open(dir: &std::path::Path, faults: &DiskFaults) -> RedbLog {
    let options = RedbOptions {
        faults: Some(faults.clone()),
        ..RedbOptions::default()
    };
    RedbLog::open_with(dir, options).expect("open")
}

fn batch(n: u64) -> Vec<Vec<u8>> {
    (0..4).map(|i| vec![(n + i) as u8; 3_000]).collect()
}

fn assert_no_space(e: &LogError, dir: &std::path::Path, outcome: Outcome) {
    let file = dir.join(FILE_NAME).display().to_string();
    match e {
        LogError::NoSpace {
            partition: P,
            store,
            outcome: o,
        } => {
            assert_eq!((store, *o), (&file, outcome), "{e}");
        }
        other => panic!("expected no space on {file}, got {other:?}"),
    }
    assert_eq!(e.kind(), ErrorKind::NoSpace);
    assert!(e.is_no_space() && e.retryable() && !e.is_unavailable());
    assert!(
        e.to_string().starts_with(&format!(
            "partition {P}: not durable: no space left on {file}"
        )),
        "{e}"
    );
}

/// Appended batches, as acknowledged.
#[derive(Default)]
struct Acked {
    end: u64,
    payloads: Vec<Vec<u8>>,
}

impl Acked {
    /// Appends batch `n` and notes it if acknowledged.
    async fn append(&mut self, log: &RedbLog, lease: &Leadership, n: u64) -> Result<(), LogError> {
        let payloads = batch(n);
        self.end = log.append(P, lease.epoch, self.end, &payloads).await?;
        self.payloads.extend(payloads);
        Ok(())
    }

    /// Appends batches until one is refused.
    async fn until_refused(&mut self, log: &RedbLog, lease: &Leadership) -> LogError {
        for n in 0..10_000 {
            if let Err(e) = self.append(log, lease, n).await {
                return e;
            }
        }
        panic!("a full disk never refused an append");
    }

    /// The log holds exactly the acknowledged batches.
    async fn check(&self, log: &RedbLog) {
        let mut stored = Vec::new();
        let end = scan(log, P, 0, |r| -> Result<(), LogError> {
            stored.push(r.payload);
            Ok(())
        })
        .await
        .unwrap();
        assert_eq!(end, self.end);
        assert!(
            stored == self.payloads,
            "the log holds other entries than were acknowledged"
        );
    }
}

#[tokio::test]
async fn a_full_disk_refuses_appends_without_storing_them_and_recovers_when_freed() {
    let dir = tempfile::tempdir().unwrap();
    let faults = DiskFaults::new();
    let log = open(dir.path(), &faults);
    let lease = log.acquire(P, "a", Duration::from_secs(600)).await.unwrap();
    let mut acked = Acked::default();
    acked.append(&log, &lease, 0).await.unwrap();

    faults.set_space_left(0);
    for round in 0..3 {
        // Space freed inside the file by earlier commits may take a few more batches.
        let refused = acked.until_refused(&log, &lease).await;
        assert_no_space(&refused, dir.path(), Outcome::NotWritten);
        assert!(refused.is_transient_and_not_written(), "round {round}");
        assert_eq!(log.bounds(P).await.unwrap().end, acked.end, "round {round}");
    }
    assert!(faults.refused() >= 3);

    faults.free_space();
    let renewed = log.renew(&lease, Duration::from_secs(600)).await;
    assert_eq!(renewed.unwrap().epoch, lease.epoch, "leadership survived");
    acked.append(&log, &lease, 7).await.unwrap();
    acked.check(&log).await;
    drop(log);
    acked.check(&RedbLog::open(dir.path()).unwrap()).await;
}

/// On a full copy-on-write filesystem every write fails, lease renewals and snapshots
/// included; each is refused as not written, and the state before stays.
#[tokio::test]
async fn leadership_and_snapshots_refused_on_a_full_disk_keep_the_old_state() {
    let dir = tempfile::tempdir().unwrap();
    let faults = DiskFaults::new();
    let log = open(dir.path(), &faults);
    let lease = log.acquire(P, "a", Duration::from_secs(600)).await.unwrap();
    let history = write_history(&log, P, lease.epoch, 6, 0).await;
    let snapshot = log.load_snapshot(P).await.unwrap();

    faults.fill_completely();
    let append = log.append(P, lease.epoch, history.end, &batch(1)).await;
    let renew = log.renew(&lease, Duration::from_secs(600)).await;
    let recovered_engine = {
        faults.free_space();
        let recovered = recover(&log, P, Config::default()).await.unwrap();
        faults.fill_completely();
        recovered.engine
    };
    let snap = keel_log::snapshot_of(&recovered_engine, history.end);
    let store = log.store_snapshot(P, lease.epoch, &snap).await;
    for e in [append.unwrap_err(), renew.unwrap_err(), store.unwrap_err()] {
        assert_no_space(&e, dir.path(), Outcome::NotWritten);
    }

    faults.free_space();
    let renewed = log.renew(&lease, Duration::from_secs(600)).await.unwrap();
    assert_eq!(renewed.epoch, lease.epoch);
    assert_eq!(
        log.load_snapshot(P).await.unwrap(),
        snapshot,
        "the old snapshot stays"
    );
    let recovered = recover(&log, P, Config::default()).await.unwrap();
    assert_eq!(recovered.next, history.end);
    assert_eq!(recovered.engine.digest(), history.digest);
}

/// A sync that fails after the commit's header was written leaves the batch readable
/// but maybe not durable: the error says the outcome is unknown, never "not written".
#[tokio::test]
async fn a_failed_sync_after_the_commit_leaves_the_outcome_unknown() {
    let dir = tempfile::tempdir().unwrap();
    let faults = DiskFaults::new();
    let log = open(dir.path(), &faults);
    let lease = log.acquire(P, "a", Duration::from_secs(600)).await.unwrap();
    let mut outcomes = Vec::new();
    for (n, syncs) in (0..12).flat_map(|syncs| [syncs; 4]).enumerate() {
        let start = log.bounds(P).await.unwrap().end;
        faults.fail_sync_after(syncs);
        // The failing sync falls in whichever commit reaches it: one of its data, its
        // header, or the growth of the file.
        for _ in 0..4 {
            let start = log.bounds(P).await.unwrap().end;
            if let Err(e) = log.append(P, lease.epoch, start, &batch(n as u64)).await {
                assert!(e.is_no_space(), "{e}");
                faults.free_space();
                let stored = log.bounds(P).await.unwrap().end > start;
                if e.outcome() == Outcome::NotWritten {
                    assert!(!stored, "said not written, but it is stored");
                }
                outcomes.push(Some((e.outcome(), stored)));
                break;
            }
        }
        assert!(log.bounds(P).await.unwrap().end >= start);
        faults.free_space();
    }
    assert!(
        outcomes.contains(&Some((Outcome::NotWritten, false))),
        "the first sync failing stores nothing: {outcomes:?}"
    );
    assert!(
        outcomes.contains(&Some((Outcome::Unknown, true))),
        "a sync failing after the new header was written is unknown: {outcomes:?}"
    );
}
