//! Recovery time of a 1,000,000-entry log of real engine inputs, from a snapshot at
//! 900,000 and from no snapshot at all, on the redb log and on loopback Valkey.
//! Each recovered engine's digest is checked against the one the log was written with.
//!
//! `cargo bench -p keel-valkey --bench recovery` (`KEEL_BENCH_ENTRIES` changes the size)

use keel_engine::{Config, Digest, Engine};
use keel_log::conformance::workload::Workload;
use keel_log::{recover, restore, scan, snapshot_of, Log, LogError, RedbLog, Snapshot};
use keel_valkey::server::{Fsync, ValkeyServer};
use keel_valkey::{ValkeyLog, ValkeyOptions};
use std::time::{Duration, Instant};

const BATCH: usize = 1_024;
const WITH_SNAPSHOT: u32 = 0;
const WITHOUT_SNAPSHOT: u32 = 1;

struct History {
    payloads: Vec<Vec<u8>>,
    snapshot: Snapshot,
    digest: Digest,
}

fn history(entries: usize) -> History {
    let started = Instant::now();
    let mut engine = Engine::new(Config::default());
    let mut workload = Workload::new(42);
    let snapshot_at = entries / 10 * 9;
    let mut snapshot = None;
    let mut payloads = Vec::with_capacity(entries);
    for i in 0..entries {
        if i == snapshot_at {
            snapshot = Some(snapshot_of(&engine, i as u64));
        }
        let entry = workload.next_entry();
        let outputs = engine.apply(entry.now, entry.input.clone());
        workload.observe(&entry.input, &outputs);
        payloads.push(entry.encode());
    }
    let snapshot = snapshot.expect("a snapshot point inside the log");
    let bytes: usize = payloads.iter().map(Vec::len).sum();
    println!(
        "history: {entries} entries ({} bytes each on average), snapshot at {snapshot_at} ({} bytes), built in {:.2?}",
        bytes / entries.max(1),
        snapshot.state.len(),
        started.elapsed()
    );
    History {
        payloads,
        snapshot,
        digest: engine.digest(),
    }
}

async fn load<L: Log>(log: &L, history: &History) {
    let epoch_with = log
        .acquire(WITH_SNAPSHOT, "bench", Duration::from_secs(3_600))
        .await
        .expect("acquire")
        .epoch;
    let epoch_without = log
        .acquire(WITHOUT_SNAPSHOT, "bench", Duration::from_secs(3_600))
        .await
        .expect("acquire")
        .epoch;
    let mut end = 0;
    for chunk in history.payloads.chunks(BATCH) {
        if (end..end + chunk.len() as u64).contains(&history.snapshot.offset) {
            let head = (history.snapshot.offset - end) as usize;
            end = log
                .append(WITH_SNAPSHOT, epoch_with, end, &chunk[..head])
                .await
                .expect("append");
            log.store_snapshot(WITH_SNAPSHOT, epoch_with, &history.snapshot)
                .await
                .expect("snapshot");
            end = log
                .append(WITH_SNAPSHOT, epoch_with, end, &chunk[head..])
                .await
                .expect("append");
        } else {
            end = log
                .append(WITH_SNAPSHOT, epoch_with, end, chunk)
                .await
                .expect("append");
        }
        let start = end - chunk.len() as u64;
        log.append(WITHOUT_SNAPSHOT, epoch_without, start, chunk)
            .await
            .expect("append");
    }
}

async fn measure<L: Log>(backend: &str, log: &L, history: &History) {
    let started = Instant::now();
    load(log, history).await;
    println!("{backend}: loaded both logs in {:.2?}", started.elapsed());
    let started = Instant::now();
    let mut bytes = 0;
    let end = scan(log, WITHOUT_SNAPSHOT, 0, |record| -> Result<(), LogError> {
        bytes += record.payload.len();
        Ok(())
    })
    .await
    .expect("scan");
    println!(
        "{backend}: reading and checking {end} records ({bytes} payload bytes) alone: {:.2?}",
        started.elapsed()
    );
    for (partition, label) in [
        (WITH_SNAPSHOT, "snapshot at 90%"),
        (WITHOUT_SNAPSHOT, "no snapshot"),
    ] {
        let started = Instant::now();
        let recovered = recover(log, partition, Config::default())
            .await
            .expect("recover");
        let took = started.elapsed();
        assert_eq!(
            recovered.engine.digest(),
            history.digest,
            "{backend}: recovered digest"
        );
        let rate = recovered.replayed as f64 / took.as_secs_f64();
        println!(
            "{backend}: recovery of {} entries, {label}: {took:.2?} ({} replayed, {rate:.0} entries/s)",
            recovered.next, recovered.replayed
        );
    }
}

fn main() {
    let entries = std::env::var("KEEL_BENCH_ENTRIES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    let history = history(entries);
    let started = Instant::now();
    restore(0, &history.snapshot).expect("restore");
    println!(
        "restoring and checking the snapshot alone: {:.2?}",
        started.elapsed()
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let dir = tempfile::tempdir().expect("temporary directory");
        measure(
            "redb",
            &RedbLog::open(dir.path()).expect("open redb"),
            &history,
        )
        .await;
        let server = ValkeyServer::start_with(Fsync::EverySec, false);
        let log = ValkeyLog::connect(&server.url(), ValkeyOptions::default())
            .await
            .expect("connect");
        measure("valkey", &log, &history).await;
    });
}
