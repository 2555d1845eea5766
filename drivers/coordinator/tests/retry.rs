//! Dead-letter replay through a handle: the failed part of a finished job is submitted
//! again as one new job, and the same retry twice finds that job instead of a third.

mod support;

use keel_coordinator::RetryError;
use keel_engine::{
    ClientCommand, GroupKind, Input, JobOutcome, JobSpec, RetryRefusal, TaskSpec, WorkerCommand,
};
use keel_log::MemoryLog;
use std::sync::Arc;
use support::*;

#[tokio::test]
async fn a_failed_job_is_retried_once_as_a_linked_job() {
    let log = Arc::new(MemoryLog::new());
    let clock = manual_clock();
    let handle = start(config("a"), &log, &clock).await;
    let mut worker = Worker::register(&handle, "w1").await;
    let mut a = TaskSpec::new("a");
    a.retry.max_attempts = 1;
    let spec = JobSpec::new(
        "etl",
        vec![a, TaskSpec::new("b").after(GroupKind::AllOf, &["a"])],
    );
    let job = match accepted(&handle, Input::Client(ClientCommand::SubmitJob(spec))).await {
        keel_engine::Accepted::JobSubmitted { job, .. } => job,
        other => panic!("{other:?}"),
    };
    let early = handle.retry_job(job).await;
    assert!(
        matches!(
            early,
            Err(RetryError::Refused(RetryRefusal::NotFinished { .. }))
        ),
        "{early:?}"
    );

    let fence = worker.claim(&handle).await;
    let fail = WorkerCommand::Fail {
        fence,
        error: "disk full".into(),
        permanent: true,
    };
    accepted(&handle, worker.input(fail)).await;
    let outcome = handle
        .read(move |e| e.describe_job(job).map(|v| v.status.outcome))
        .await
        .unwrap();
    assert_eq!(outcome, Ok(Some(JobOutcome::Failed)));

    let retried = within("retry", handle.retry_job(job)).await.unwrap();
    assert!(!retried.duplicate);
    assert_eq!(retried.tasks, 2);
    assert_eq!(retried.name, "etl [retry of job 1]");
    assert_eq!(keel_engine::retried_from(&retried.name), Some(job));
    let again = within("retry again", handle.retry_job(job)).await.unwrap();
    assert_eq!((again.job, again.duplicate), (retried.job, true));

    let err = handle
        .retry_job(keel_engine::JobId::new(99))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "unknown_job");
}
