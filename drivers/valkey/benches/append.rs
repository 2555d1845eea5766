//! Append throughput on a loopback valkey-server: one leader appending batches of 1, 64
//! and 1,024 entries of 200 bytes back to back (each batch is one function call and one
//! round trip), under `appendfsync everysec` and `appendfsync always`.
//!
//! `cargo bench -p keel-valkey --bench append`

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use keel_log::{Log, Snapshot};
use keel_valkey::server::{Fsync, ValkeyServer};
use keel_valkey::{ValkeyLog, ValkeyOptions};
use std::time::{Duration, Instant};

const ENTRY_BYTES: usize = 200;

fn append(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    for (fsync, name) in [(Fsync::EverySec, "everysec"), (Fsync::Always, "always")] {
        let server = ValkeyServer::start_with(fsync, false);
        let log = runtime
            .block_on(ValkeyLog::connect(&server.url(), ValkeyOptions::default()))
            .expect("connect");
        let lease = runtime
            .block_on(log.acquire(0, "bench", Duration::from_secs(3_600)))
            .expect("acquire");
        let mut end = 0;
        let mut group = c.benchmark_group(format!("valkey_append_{name}"));
        for batch in [1usize, 64, 1_024] {
            let payloads: Vec<Vec<u8>> = (0..batch)
                .map(|i| vec![(i % 251) as u8; ENTRY_BYTES])
                .collect();
            group.throughput(Throughput::Elements(batch as u64));
            group.bench_with_input(
                BenchmarkId::from_parameter(batch),
                &payloads,
                |b, payloads| {
                    b.iter_custom(|iters| {
                        runtime.block_on(async {
                            let started = Instant::now();
                            for _ in 0..iters {
                                end = log
                                    .append(0, lease.epoch, end, payloads)
                                    .await
                                    .expect("append");
                            }
                            let elapsed = started.elapsed();
                            // Trimming keeps the server's memory flat across samples; untimed.
                            let trim = Snapshot {
                                offset: end,
                                digest: vec![],
                                state: vec![],
                            };
                            log.store_snapshot(0, lease.epoch, &trim)
                                .await
                                .expect("trim");
                            elapsed
                        })
                    });
                },
            );
        }
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(Duration::from_secs(4));
    targets = append
}
criterion_main!(benches);
