//! The next batch is applied while the previous one is being appended: each is still
//! answered only once its own append is durable, groups of inputs are answered
//! together and in order, and a failed append behind a good one fails only its own.

mod support;

use keel_coordinator::{CoordinatorConfig, CoordinatorError, Deposed};
use keel_engine::{Accepted, WorkerCommand};
use keel_log::{Log, MemoryLog};
use std::sync::Arc;
use std::time::Duration;
use support::*;

#[tokio::test]
async fn a_group_is_applied_in_order_and_answered_together() {
    let log = Arc::new(MemoryLog::new());
    let clock = manual_clock();
    let handle = start(config("a"), &log, &clock).await;
    let worker = Worker::register(&handle, "w1").await;
    let job = submit(&handle, "j", &["a", "b"]).await;

    let inputs = vec![
        worker.input(WorkerCommand::Heartbeat),
        job_input("k"),
        worker.input(WorkerCommand::RequestWork { credits: 2 }),
    ];
    let answers = within("the group", handle.apply_all(inputs))
        .await
        .unwrap_or_else(|e| panic!("apply_all: {e}"));
    assert_eq!(answers.len(), 3);
    assert!(matches!(answers[0], Some(Ok(_))), "{answers:?}");
    match &answers[1] {
        Some(Ok(Accepted::JobSubmitted { job: k, .. })) => assert!(k.get() > job.get()),
        other => panic!("expected JobSubmitted, got {other:?}"),
    }
    assert!(matches!(answers[2], Some(Ok(_))), "{answers:?}");
    // register, submit, then the group of three in one append.
    assert_eq!(log.bounds(0).await.map(|b| b.end).ok(), Some(5));
    let sizes = handle.metrics().append_batch_size;
    assert_eq!(sizes.count, 3);
    assert_eq!(sizes.sum, 5.0);

    let empty = handle.apply_all(Vec::new()).await;
    assert_eq!(
        empty.ok(),
        Some(Vec::new()),
        "an empty group is answered empty"
    );
}

#[tokio::test]
async fn a_failed_append_behind_a_good_one_fails_only_its_own_batch() {
    let inner = Arc::new(MemoryLog::new());
    let log = FaultyLog::new(inner.clone());
    let clock = manual_clock();
    let config = CoordinatorConfig {
        max_batch: 1,
        ..config("a")
    };
    let handle = start(config, &log, &clock).await;
    submit(&handle, "before", &["t"]).await;

    log.hold();
    let mut first = Box::pin(handle.apply(job_input("first")));
    assert!(poll_once(&mut first).await.is_none());
    log.appends_started(2).await;
    let mut second = Box::pin(handle.apply(job_input("second")));
    assert!(poll_once(&mut second).await.is_none());
    // Give the engine task time to apply the second batch behind the held append.
    tokio::time::sleep(Duration::from_millis(50)).await;
    log.fail_append_number(3);
    log.release();

    match within("the first reply", first).await {
        Ok(Some(Ok(Accepted::JobSubmitted { .. }))) => {}
        other => panic!("expected JobSubmitted, got {other:?}"),
    }
    match within("the second reply", second).await {
        Err(CoordinatorError::NotDurable { .. }) => {}
        other => panic!("expected NotDurable, got {other:?}"),
    }
    assert_eq!(inner.bounds(0).await.map(|b| b.end).ok(), Some(2));
    // The engine, rebuilt from the log, holds the first job and not the second.
    let names = within("a read", handle.read(|e| e.jobs().len()))
        .await
        .unwrap_or_else(|e| panic!("read: {e}"));
    assert_eq!(names, 2);
    assert!(handle.is_leader(), "a failed append keeps the lease");
}

#[tokio::test]
async fn reads_never_see_a_batch_that_is_not_durable() {
    let inner = Arc::new(MemoryLog::new());
    let log = FaultyLog::new(inner.clone());
    let clock = manual_clock();
    let handle = start(config("a"), &log, &clock).await;

    log.hold();
    let mut first = Box::pin(handle.apply(job_input("first")));
    assert!(poll_once(&mut first).await.is_none());
    log.appends_started(1).await;
    // These wait behind the held append, most likely as one batch: a job, then a read.
    let mut next = Box::pin(handle.apply(job_input("next")));
    assert!(poll_once(&mut next).await.is_none());
    let mut read = Box::pin(handle.read(|e| e.jobs().len()));
    assert!(poll_once(&mut read).await.is_none());
    tokio::time::sleep(Duration::from_millis(20)).await;
    // The last job arrives while the read's batch is being appended, slowly, and its
    // own append fails: a read that saw it would have seen state the log never held.
    let mut last = Box::pin(handle.apply(job_input("last")));
    assert!(poll_once(&mut last).await.is_none());
    assert!(
        poll_once(&mut read).await.is_none(),
        "a read answered while the append before it was held"
    );
    log.slow_down(Duration::from_millis(50));
    log.fail_append_number(3);
    log.release();

    let seen = within("the read", read).await;
    assert!(within("the first reply", first).await.is_ok());
    assert!(within("the next reply", next).await.is_ok());
    match within("the last reply", last).await {
        Err(CoordinatorError::NotDurable { .. }) => {}
        other => panic!("expected NotDurable, got {other:?}"),
    }
    assert_eq!(seen.ok(), Some(2), "the read saw a job the log never held");
}

#[tokio::test]
async fn an_append_under_way_when_the_lease_lapses_is_answered_by_how_it_ends() {
    let inner = Arc::new(MemoryLog::new());
    let log = FaultyLog::new(inner.clone());
    let clock = manual_clock();
    let config = CoordinatorConfig {
        lease_ttl: Duration::from_millis(300),
        ..config("a")
    };
    let handle = start(config, &log, &clock).await;

    log.hold();
    let mut first = Box::pin(handle.apply(job_input("first")));
    assert!(poll_once(&mut first).await.is_none());
    log.appends_started(1).await;
    let mut second = Box::pin(handle.apply(job_input("second")));
    assert!(poll_once(&mut second).await.is_none());
    log.fail_renewals();
    let lost = within("the lease to lapse", handle.deposed()).await;
    assert_eq!(deposed_why(&lost), Some(Deposed::LeaseLapsed), "{lost}");
    // The log still takes the held append: the epoch was never fenced.
    log.release();

    match within("the first reply", first).await {
        Ok(Some(Ok(Accepted::JobSubmitted { .. }))) => {}
        other => panic!("a durable input must be answered as done, got {other:?}"),
    }
    let second = within("the second reply", second).await;
    assert_eq!(
        second.as_ref().err().and_then(deposed_why),
        Some(Deposed::LeaseLapsed),
        "{second:?}"
    );
    assert_eq!(inner.bounds(0).await.map(|b| b.end).ok(), Some(1));
}

fn job_input(name: &str) -> keel_engine::Input {
    job(name, &["t"])
}
