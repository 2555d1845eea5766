//! An engine panic stops the coordinator at once, naming the input's log offset; the
//! input is recorded, so a restart refuses to start, naming it too; an offline repair
//! (skipping it, or cancelling a job) brings the partition back with every other job.

mod support;

use keel_coordinator::{
    cancel_job, check_log, skip_inputs, Coordinator, CoordinatorConfig, CoordinatorError, JobRef,
    Met,
};
use keel_engine::{Accepted, Engine, Faults, JobId, INJECTED_PANIC_JOB};
use keel_log::{Log, MemoryLog};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use support::*;

fn inject(engine: &mut Engine) {
    engine.inject_faults(Faults {
        panic_on_injected_job: true,
        ..Faults::default()
    });
}

/// A long lease: a successor gets in at once only if the partition was handed back.
fn faulty(holder: &str) -> CoordinatorConfig {
    CoordinatorConfig {
        prepare_engine: Some(inject),
        lease_ttl: Duration::from_secs(120),
        ..config(holder)
    }
}

fn poison() -> keel_engine::Input {
    job(INJECTED_PANIC_JOB, &["t"])
}

#[tokio::test]
async fn a_panic_stops_the_coordinator_and_a_skipped_input_brings_the_partition_back() {
    let log = Arc::new(MemoryLog::new());
    let clock = manual_clock();
    let handle = start(faulty("a"), &log, &clock).await;
    Worker::register(&handle, "w1").await;
    let kept = submit(&handle, "kept", &["t"]).await;

    let refused = within("the poisoned apply", handle.apply(poison())).await;
    let poisoned = match refused {
        Err(CoordinatorError::EnginePanicked { poisoned, .. }) => poisoned,
        other => panic!("expected EnginePanicked, got {other:?}"),
    };
    assert_eq!(
        poisoned.offset, 2,
        "register, the kept job, then the poison"
    );
    assert_eq!(poisoned.met, Met::Serving { recorded: true });
    assert_eq!(poisoned.job, Some(JobRef::Named(INJECTED_PANIC_JOB.into())));
    assert!(poisoned.message.contains("injected panic"), "{poisoned}");
    let stopped = within("the coordinator to stop", handle.stopped()).await;
    let text = stopped.to_string();
    assert!(text.contains("at log offset 2"), "{text}");
    assert!(text.contains("keel admin skip-input --offset 2"), "{text}");
    assert!(!handle.is_leader());
    let after = handle.apply(job("after", &["t"])).await;
    assert!(
        matches!(after, Err(CoordinatorError::EnginePanicked { .. })),
        "{after:?}"
    );
    assert_eq!(
        log.bounds(0).await.map(|b| b.end).ok(),
        Some(3),
        "the poison is recorded"
    );

    // The partition was handed back: a successor does not wait for the lease, and
    // refuses to start on the recorded poison.
    let again = within(
        "a restart",
        Coordinator::start(faulty("b"), log.clone(), clock.clone()),
    )
    .await;
    match again {
        Err(CoordinatorError::PoisonedLog { poisoned, .. }) => {
            assert_eq!(poisoned.offset, 2);
            assert_eq!(poisoned.met, Met::Replaying);
        }
        Err(other) => panic!("expected PoisonedLog, got {other}"),
        Ok(_) => panic!("a coordinator started on a poisoned log"),
    }
    let admin = faulty("admin");
    let checked = check_log(&*log, &admin).await;
    assert!(
        matches!(checked, Err(CoordinatorError::PoisonedLog { .. })),
        "{checked:?}"
    );

    let offsets = BTreeSet::from([2]);
    let report = skip_inputs(&*log, &admin, &offsets)
        .await
        .unwrap_or_else(|e| panic!("skip: {e}"));
    assert_eq!(report.skipped.len(), 1);
    assert!(
        report.skipped[0].1.contains("a submission of 1 tasks"),
        "{report:?}"
    );
    assert_eq!(report.end, 3);
    assert!(check_log(&*log, &admin).await.is_ok());

    let back = start(faulty("c"), &log, &clock).await;
    let found = back.read(move |e| e.describe_job(kept).is_ok()).await;
    assert!(
        matches!(found, Ok(true)),
        "the kept job was lost: {found:?}"
    );
    let workers = back.read(|e| e.workers().len()).await;
    assert_eq!(workers.ok(), Some(1));
    submit(&back, "later", &["t"]).await;
    let refused = back.apply(job(INJECTED_PANIC_JOB, &["t"])).await;
    assert!(refused.is_err(), "the fault is still armed: {refused:?}");
}

#[tokio::test]
async fn a_panic_behind_an_append_under_way_names_the_offset_after_it() {
    let inner = Arc::new(MemoryLog::new());
    let log = FaultyLog::new(inner.clone());
    let clock = manual_clock();
    let handle = start(faulty("a"), &log, &clock).await;
    submit(&handle, "first", &["t"]).await;

    log.hold();
    let mut held = Box::pin(handle.apply(job("held", &["t"])));
    assert!(poll_once(&mut held).await.is_none());
    log.appends_started(2).await;
    let mut poisoned = Box::pin(handle.apply(poison()));
    assert!(poll_once(&mut poisoned).await.is_none());
    tokio::time::sleep(Duration::from_millis(50)).await;
    log.release();

    match within("the held reply", held).await {
        Ok(Some(Ok(Accepted::JobSubmitted { .. }))) => {}
        other => panic!("a durable input must be answered as done, got {other:?}"),
    }
    match within("the poisoned reply", poisoned).await {
        Err(CoordinatorError::EnginePanicked { poisoned, .. }) => assert_eq!(poisoned.offset, 2),
        other => panic!("expected EnginePanicked, got {other:?}"),
    }
    assert_eq!(inner.bounds(0).await.map(|b| b.end).ok(), Some(3));
}

#[tokio::test]
async fn cancel_job_appends_a_cancellation_or_refuses_an_unknown_job() {
    let log = Arc::new(MemoryLog::new());
    let clock = manual_clock();
    let handle = start(config("a"), &log, &clock).await;
    let job = submit(&handle, "doomed", &["t"]).await;
    within("shutdown", handle.shutdown())
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    let admin = config("admin");
    let report = cancel_job(&*log, &admin, job)
        .await
        .unwrap_or_else(|e| panic!("cancel: {e}"));
    assert!(report.answer.unwrap_or_default().contains("JobCancelled"));
    assert_eq!(report.end, 2);
    let unknown = cancel_job(&*log, &admin, JobId::new(99)).await;
    assert!(
        matches!(unknown, Err(CoordinatorError::Refused { .. })),
        "{unknown:?}"
    );
    assert_eq!(log.bounds(0).await.map(|b| b.end).ok(), Some(2));

    let back = start(config("b"), &log, &clock).await;
    let outcome = back
        .read(move |e| e.describe_job(job).map(|v| v.status.outcome))
        .await;
    assert!(
        matches!(outcome, Ok(Ok(Some(keel_engine::JobOutcome::Cancelled)))),
        "{outcome:?}"
    );
}

/// The lease of the test's task ends here, and a tick from then on panics the engine.
const LEASE_END_MS: u64 = START_MS + 1_000;

fn inject_on_tick(engine: &mut Engine) {
    engine.inject_faults(Faults {
        panic_on_tick_from: Some(LEASE_END_MS),
        ..Faults::default()
    });
}

/// A tick names no job of its own: the message names its time and the timers it was
/// firing (read from the state just before it, replayed from the log), and through
/// them the job, both when serving and when recovery meets the recorded tick again.
#[tokio::test]
async fn a_panic_on_a_tick_names_its_time_the_timers_due_and_their_job() {
    let log = Arc::new(MemoryLog::new());
    let clock = manual_clock();
    let mut config = CoordinatorConfig {
        prepare_engine: Some(inject_on_tick),
        ..faulty("a")
    };
    config.engine.lease_ttl_ms = 1_000;
    config.engine.liveness_timeout_ms = 600_000;
    let handle = start(config.clone(), &log, &clock).await;
    let mut worker = Worker::register(&handle, "w1").await;
    let job = submit(&handle, "slow", &["t"]).await;
    let fence = worker.claim(&handle).await;
    clock.set(LEASE_END_MS);

    let stopped = within("the coordinator to stop", handle.stopped()).await;
    let text = stopped.to_string();
    let named = format!(
        "(a timer tick at {LEASE_END_MS} ms firing lease expiry of {} ({job}) due at {LEASE_END_MS} ms, job {job})",
        fence.task
    );
    assert!(text.contains(&named), "{text}");
    assert!(text.contains("injected panic on a tick"), "{text}");
    assert!(
        text.contains(&format!("keel admin cancel-job --job {}", job.get())),
        "{text}"
    );

    let again = within(
        "a restart",
        Coordinator::start(
            CoordinatorConfig {
                holder: "b".into(),
                ..config
            },
            log.clone(),
            clock.clone(),
        ),
    )
    .await;
    match again {
        Err(CoordinatorError::PoisonedLog { poisoned, .. }) => {
            assert_eq!(poisoned.met, Met::Replaying);
            assert_eq!(poisoned.job, Some(JobRef::Id(job)));
            let tick = poisoned.tick.as_ref().expect("the tick's timers");
            assert_eq!((tick.now, tick.total), (LEASE_END_MS, 1));
            assert!(poisoned.to_string().contains(&named), "{poisoned}");
        }
        Err(other) => panic!("expected PoisonedLog, got {other}"),
        Ok(_) => panic!("a coordinator started on a poisoned log"),
    }
}
