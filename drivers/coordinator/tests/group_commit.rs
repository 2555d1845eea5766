//! Group commit on the in-memory log: a job's whole life through the coordinator, and
//! proof that no reply or effect leaves before its batch is durable.

mod support;

use keel_coordinator::{CoordinatorConfig, CoordinatorError};
use keel_engine::{Accepted, Effect, JobOutcome, WorkerCommand};
use keel_log::{Log, MemoryLog};
use std::sync::Arc;
use std::time::Duration;
use support::*;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;

#[tokio::test]
async fn a_job_runs_to_completion_and_its_effects_reach_worker_and_watchers() {
    let log = Arc::new(MemoryLog::new());
    let clock = manual_clock();
    let handle = start(config("a"), &log, &clock).await;
    assert!(handle.is_leader());

    let mut worker = Worker::register(&handle, "w1").await;
    let job = submit(&handle, "hello", &["only"]).await;
    let mut watch = handle.watch_job(job);
    let fence = worker.claim(&handle).await;
    worker.complete(&handle, fence).await;

    match within("task finished", watch.recv()).await {
        Ok(Effect::TaskFinished { task, .. }) => assert_eq!(task, fence.task),
        other => panic!("expected TaskFinished, got {other:?}"),
    }
    match within("job finished", watch.recv()).await {
        Ok(Effect::JobFinished { job: j, outcome }) => {
            assert_eq!((j, outcome), (job, JobOutcome::Succeeded))
        }
        other => panic!("expected JobFinished, got {other:?}"),
    }
    assert!(matches!(watch.recv().await, Err(RecvError::Closed)));

    let outcome = handle
        .read(move |e| e.describe_job(job).map(|v| v.status.outcome))
        .await
        .unwrap_or_else(|e| panic!("read: {e}"));
    assert_eq!(outcome, Ok(Some(JobOutcome::Succeeded)));
    // register, submit, request work, accept, complete
    assert_eq!(log.bounds(0).await.map(|b| b.end).ok(), Some(5));
    let metrics = handle.metrics();
    assert_eq!((metrics.inputs, metrics.grants, metrics.log_end), (5, 1, 5));
    assert_eq!(metrics.claim_to_start_seconds.count, 1);
    assert!(metrics.leader);
    let text = metrics.render_prometheus();
    assert!(
        text.contains("keel_coordinator_grants_total{partition=\"0\"} 1\n"),
        "{text}"
    );
    assert!(text.contains("keel_coordinator_claim_to_start_seconds_count{partition=\"0\"} 1\n"));
}

#[tokio::test]
async fn replies_wait_for_their_batch_to_be_durable() {
    let inner = Arc::new(MemoryLog::new());
    let log = FaultyLog::new(inner.clone());
    let clock = manual_clock();
    let handle = start(config("a"), &log, &clock).await;

    log.hold();
    let mut reply = Box::pin(handle.apply(job("held", &["t"])));
    assert!(poll_once(&mut reply).await.is_none());
    log.appends_started(1).await;
    assert!(
        poll_once(&mut reply).await.is_none(),
        "a reply left before its append returned"
    );
    assert_eq!(inner.bounds(0).await.map(|b| b.end).ok(), Some(0));

    log.release();
    match within("the reply", reply).await {
        Ok(Some(Ok(Accepted::JobSubmitted { .. }))) => {}
        other => panic!("expected JobSubmitted, got {other:?}"),
    }
    assert_eq!(inner.bounds(0).await.map(|b| b.end).ok(), Some(1));
}

#[tokio::test]
async fn inputs_queued_during_an_append_share_the_next_batch() {
    let inner = Arc::new(MemoryLog::new());
    let log = FaultyLog::new(inner.clone());
    let clock = manual_clock();
    let config = CoordinatorConfig {
        max_batch: 3,
        ..config("a")
    };
    let handle = start(config, &log, &clock).await;

    log.hold();
    let mut first = Box::pin(handle.apply(job("j0", &["t"])));
    assert!(poll_once(&mut first).await.is_none());
    log.appends_started(1).await;
    let mut queued: Vec<_> = (1..5)
        .map(|i| Box::pin(handle.apply(job(&format!("j{i}"), &["t"]))))
        .collect();
    for reply in &mut queued {
        assert!(poll_once(reply).await.is_none());
    }
    log.release();

    let mut jobs = Vec::new();
    for reply in std::iter::once(first).chain(queued) {
        match within("a reply", reply).await {
            Ok(Some(Ok(Accepted::JobSubmitted { job, .. }))) => jobs.push(job.get()),
            other => panic!("expected JobSubmitted, got {other:?}"),
        }
    }
    assert!(
        jobs.windows(2).all(|w| w[0] < w[1]),
        "out of order: {jobs:?}"
    );
    let sizes = handle.metrics().append_batch_size;
    // [j0], [j1 j2 j3], [j4]: three appends, none larger than max_batch.
    assert_eq!((sizes.count, sizes.sum), (3, 5.0));
    assert_eq!(&sizes.counts[..3], &[2, 0, 1], "batch sizes 1, 1 and 3");
}

#[tokio::test]
async fn a_failed_append_releases_nothing_and_the_engine_is_rebuilt_from_the_log() {
    let inner = Arc::new(MemoryLog::new());
    let log = FaultyLog::new(inner.clone());
    let clock = manual_clock();
    let handle = start(config("a"), &log, &clock).await;
    let mut worker = Worker::register(&handle, "w1").await;
    submit(&handle, "j", &["t"]).await;

    log.fail_next_append();
    let request = worker.input(WorkerCommand::RequestWork { credits: 1 });
    match within("the failed apply", handle.apply(request.clone())).await {
        Err(CoordinatorError::NotDurable {
            partition: 0,
            code: "storage",
            ..
        }) => {}
        other => panic!("expected NotDurable, got {other:?}"),
    }
    // The engine offered a grant in memory; it must never reach the worker.
    assert!(
        matches!(
            worker.effects.try_recv(),
            Err(mpsc::error::TryRecvError::Empty)
        ),
        "an effect of a batch that is not durable was released"
    );
    assert!(handle.is_leader(), "a failed append keeps the lease");
    // The engine was rebuilt from what the log holds, and reads see it.
    let rebuilt = within("a read", handle.read(|e| e.digest()))
        .await
        .unwrap_or_else(|e| panic!("read: {e}"));
    assert_eq!(rebuilt, log_digest(&*inner).await);
    assert_eq!(inner.bounds(0).await.map(|b| b.end).ok(), Some(2));
    assert_eq!(handle.metrics().append_failures, 1);

    // Once the pause after the failure is over, the request goes through.
    let answer = within("the request to be accepted", async {
        loop {
            match handle.apply(request.clone()).await {
                Ok(answer) => return answer,
                Err(CoordinatorError::Unavailable { .. }) => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => panic!("unexpected refusal: {e}"),
            }
        }
    })
    .await;
    assert!(matches!(answer, Some(Ok(_))), "{answer:?}");
    match worker.next_effect().await {
        Effect::GrantOffered { .. } => {}
        other => panic!("expected a grant, got {other:?}"),
    }
    assert_eq!(inner.bounds(0).await.map(|b| b.end).ok(), Some(3));
    let text = handle.metrics().render_prometheus();
    assert!(
        text.contains("keel_coordinator_leader{partition=\"0\"} 1\n"),
        "{text}"
    );
}
