//! Timers: the engine task sleeps until the engine's next wakeup on the injected
//! clock, and the tick it delivers is logged like any input.

mod support;

use keel_engine::{EndReason, Input, WorkerCommand};
use keel_log::{Entry, Log, MemoryLog};
use std::sync::Arc;
use support::*;

#[tokio::test]
async fn a_lease_expires_when_the_manual_clock_passes_it() {
    let log = Arc::new(MemoryLog::new());
    let clock = manual_clock();
    let mut config = config("a");
    config.engine.lease_ttl_ms = 1_000;
    config.engine.liveness_timeout_ms = 600_000;
    let handle = start(config, &log, &clock).await;
    let mut worker = Worker::register(&handle, "w1").await;
    let job = submit(&handle, "slow", &["t"]).await;
    let mut watch = handle.watch_job(job);
    let fence = worker.claim(&handle).await;
    let expires_at = START_MS + 1_000;

    clock.set(expires_at);
    match worker.next_effect().await {
        keel_engine::Effect::LeaseRevoked {
            fence: f, reason, ..
        } => {
            assert_eq!((f, reason), (fence, EndReason::LeaseExpired))
        }
        other => panic!("expected the lease revoked, got {other:?}"),
    }
    match within("the requeue", watch.recv()).await {
        Ok(keel_engine::Effect::TaskRequeued { task, reason, .. }) => {
            assert_eq!((task, reason), (fence.task, EndReason::LeaseExpired))
        }
        other => panic!("expected the task requeued, got {other:?}"),
    }

    // The tick is the last durable entry, stamped with the clock's time.
    let end = log.bounds(0).await.map(|b| b.end).unwrap_or(0);
    let records = log
        .read(0, end - 1, 1)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let entry = Entry::decode(0, end - 1, &records[0].payload).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(entry, Entry::new(expires_at, Input::Tick));
    let metrics = handle.metrics();
    assert_eq!(
        (metrics.ticks, metrics.lease_expiries, metrics.requeues),
        (1, 1, 1)
    );

    let late = worker.input(WorkerCommand::Complete {
        fence,
        output: "too late".into(),
    });
    let reply = within("the late completion", handle.apply(late)).await;
    assert!(matches!(reply, Ok(Some(Err(_)))), "{reply:?}");
}
