//! Recovery: a coordinator started again on the same log rebuilds exactly the state
//! of its last durable entry, from the in-memory log, through snapshots, and from the
//! embedded redb file.

mod support;

use keel_coordinator::{CoordinatorConfig, CoordinatorError, ManualClock, SystemClock};
use keel_engine::{Accepted, TaskStatus, WorkerCommand};
use keel_log::{Log, MemoryLog, RedbLog};
use std::sync::Arc;
use support::*;

#[tokio::test]
async fn a_restart_recovers_the_digest_of_the_last_durable_entry() {
    let inner = Arc::new(MemoryLog::new());
    let log = FaultyLog::new(inner.clone());
    let clock = manual_clock();
    let first = start(config("a"), &log, &clock).await;
    let mut worker = Worker::register(&first, "w1").await;
    submit(&first, "one", &["a", "b"]).await;
    submit(&first, "two", &["c"]).await;
    let fence = worker.claim(&first).await;
    clock.advance(250);
    let durable = first
        .read(|e| e.digest())
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    log.fail_next_append();
    let complete = worker.input(WorkerCommand::Complete {
        fence,
        output: "lost".into(),
    });
    let failed = within("the failed apply", first.apply(complete)).await;
    assert!(
        matches!(failed, Err(CoordinatorError::NotDurable { .. })),
        "{failed:?}"
    );
    drop(first);

    let second = start(config("a"), &log, &clock).await;
    let recovered = second
        .read(|e| e.digest())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(recovered, durable);
    let status = second
        .read(move |e| e.describe_task(fence.task).map(|t| t.status))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        matches!(status, Ok(TaskStatus::Running { .. })),
        "{status:?}"
    );
    // The completion that was never durable can be sent again and is accepted once.
    let _route = second.route_worker(worker.id.clone());
    match accepted(
        &second,
        worker.input(WorkerCommand::Complete {
            fence,
            output: "again".into(),
        }),
    )
    .await
    {
        Accepted::Completed {
            duplicate: false, ..
        } => {}
        other => panic!("expected a first completion, got {other:?}"),
    }
}

/// A coordinator snapshotting every 4 entries that has taken ten submissions.
async fn ten_jobs() -> (
    Arc<MemoryLog>,
    Arc<ManualClock>,
    CoordinatorConfig,
    keel_coordinator::Handle,
) {
    let log = Arc::new(MemoryLog::new());
    let clock = manual_clock();
    let config = CoordinatorConfig {
        snapshot_every: 4,
        ..config("a")
    };
    let first = start(config.clone(), &log, &clock).await;
    for i in 0..10 {
        clock.advance(10);
        submit(&first, &format!("job{i}"), &["t"]).await;
    }
    (log, clock, config, first)
}

#[tokio::test]
async fn snapshots_trim_the_log_and_a_restart_replays_only_the_tail() {
    let (log, clock, config, first) = ten_jobs().await;
    let before = first
        .read(|e| e.digest())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(first.metrics().snapshots, 2);
    first
        .shutdown()
        .await
        .unwrap_or_else(|e| panic!("shutdown: {e}"));

    let bounds = log.bounds(0).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (bounds.first, bounds.end),
        (8, 10),
        "snapshot at 8 trims 0..8"
    );
    let second = start(config, &log, &clock).await;
    let after = second
        .read(|e| e.digest())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(after, before);
    let jobs = second
        .read(|e| e.jobs().len())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(jobs, 10);
}

#[tokio::test]
async fn the_redb_log_keeps_state_across_a_restart() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let clock: Arc<SystemClock> = Arc::new(SystemClock);
    let open = || Arc::new(RedbLog::open(dir.path()).unwrap_or_else(|e| panic!("open: {e}")));

    let log = open();
    let first = start(config("a"), &log, &clock).await;
    let mut worker = Worker::register(&first, "w1").await;
    let job = submit(&first, "persisted", &["a", "b"]).await;
    worker.claim(&first).await;
    let before = first
        .read(|e| e.digest())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    first
        .shutdown()
        .await
        .unwrap_or_else(|e| panic!("shutdown: {e}"));
    // The engine task lets go of the log as it ends; redb allows one opener per file.
    within("the engine task to end", async {
        while Arc::strong_count(&log) > 1 {
            tokio::task::yield_now().await;
        }
    })
    .await;
    drop(log);

    let log = open();
    let second = start(config("a"), &log, &clock).await;
    let after = second
        .read(|e| e.digest())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(after, before);
    let name = second
        .read(move |e| e.describe_job(job).map(|v| v.status.name))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(name.ok().as_deref(), Some("persisted"));
    assert_eq!(log.bounds(0).await.map(|b| b.end).ok(), Some(4));
}

#[tokio::test]
async fn a_restart_with_a_new_engine_configuration_applies_it_over_the_snapshots() {
    let (log, clock, config, first) = ten_jobs().await;
    assert_eq!(first.metrics().snapshots, 2);
    first
        .shutdown()
        .await
        .unwrap_or_else(|e| panic!("shutdown: {e}"));

    // The snapshot holds the old configuration; the restart's is applied and logged.
    let old_ttl = config.engine.lease_ttl_ms;
    let mut changed = config.clone();
    changed.engine.lease_ttl_ms = old_ttl * 2;
    let second = start(changed.clone(), &log, &clock).await;
    let ttl = |handle: &keel_coordinator::Handle| {
        let handle = handle.clone();
        async move {
            handle
                .read(|e| e.config().lease_ttl_ms)
                .await
                .unwrap_or_else(|e| panic!("{e}"))
        }
    };
    assert_eq!(ttl(&second).await, old_ttl * 2);
    let end = second.metrics().log_end;
    assert_eq!(end, 11, "the configuration is one more entry");
    second
        .shutdown()
        .await
        .unwrap_or_else(|e| panic!("shutdown: {e}"));

    // Replayed, it is there again, and the same configuration logs nothing more.
    let third = start(changed, &log, &clock).await;
    assert_eq!(ttl(&third).await, old_ttl * 2);
    assert_eq!(third.metrics().log_end, end);
}
