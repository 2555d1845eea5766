//! Coordinator and workers over real loopback gRPC: a DAG job runs to completion,
//! revoked handlers are dropped, and refusals travel over the wire with their codes.

mod support;

use keel_engine::{GroupKind, JobSpec, Payload, TaskSpec};
use keel_grpc::job_spec_to_proto;
use keel_grpc::proto::*;
use keel_grpc::server::ServerOptions;
use keel_grpc::worker::{Outcome, Task, WorkerConfig};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use support::{run_worker, submit, within, Cluster};
use tokio::sync::mpsc;

fn dag() -> JobSpec {
    let mut spec = JobSpec::new(
        "diamond",
        vec![
            TaskSpec::new("extract"),
            TaskSpec::new("left").after(GroupKind::AllOf, &["extract"]),
            TaskSpec::new("right").after(GroupKind::AllOf, &["extract"]),
            TaskSpec::new("load").after(GroupKind::AllOf, &["left", "right"]),
        ],
    );
    for t in &mut spec.tasks {
        t.payload = Payload::from(t.key.as_str());
    }
    spec
}

async fn wait_finished(jobs: &mut keel_grpc::client::Jobs, job: u64) -> Vec<JobEvent> {
    let mut events = jobs
        .watch_job(WatchJobRequest {
            job,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut seen = Vec::new();
    while let Some(event) = events.message().await.unwrap() {
        let last = event.kind == "job_finished";
        seen.push(event);
        if last {
            break;
        }
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dag_job_completes_across_two_sdk_workers() {
    let cluster = Cluster::start(ServerOptions::default()).await;
    let ran = Arc::new(AtomicU32::new(0));
    let mut workers = Vec::new();
    for name in ["w1", "w2"] {
        let ran = ran.clone();
        let handler = move |task: Task| {
            ran.fetch_add(1, Ordering::SeqCst);
            async move {
                task.progress(500, "halfway");
                let mut out = task.payload.clone();
                out.make_ascii_uppercase();
                Outcome::Complete(out)
            }
        };
        let config = WorkerConfig::new(cluster.client(), name, 2);
        workers.push(run_worker(config, handler));
    }
    let mut jobs = cluster.client().jobs().await.unwrap();
    let submitted = jobs
        .submit_job(SubmitJobRequest {
            spec: Some(job_spec_to_proto(&dag())),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(submitted.tasks, 4);
    let events = within("the job finishing", wait_finished(&mut jobs, submitted.job)).await;
    let last = events.last().unwrap();
    assert_eq!(
        (last.kind.as_str(), last.detail.as_str()),
        ("job_finished", "succeeded")
    );
    let view = jobs
        .describe_job(DescribeJobRequest { job: submitted.job })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(view.status.unwrap().outcome, "succeeded");
    for task in &view.tasks {
        assert_eq!(task.state, "succeeded", "{task:?}");
        assert_eq!(task.attempts.len(), 1, "{task:?}");
    }
    let listed = jobs
        .list_jobs(ListJobsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.jobs.len(), 1);
    let mut completed = 0;
    for w in workers {
        completed += w.stop().await.completed;
    }
    assert_eq!(completed, 4);
    assert_eq!(ran.load(Ordering::SeqCst), 4);
}

/// Sets its flag when the handler holding it is dropped.
struct DropFlag(mpsc::UnboundedSender<()>);
impl Drop for DropFlag {
    fn drop(&mut self) {
        let _ = self.0.send(());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_job_stops_its_running_handler() {
    let cluster = Cluster::start(ServerOptions::default()).await;
    let (started_tx, mut started) = mpsc::unbounded_channel::<()>();
    let (dropped_tx, mut dropped) = mpsc::unbounded_channel::<()>();
    let handler = move |task: Task| {
        let flag = DropFlag(dropped_tx.clone());
        let _ = started_tx.send(());
        async move {
            let _flag = flag;
            task.cancelled().await;
            std::future::pending::<Outcome>().await
        }
    };
    let config = WorkerConfig::new(cluster.client(), "w1", 1);
    let worker = run_worker(config, handler);
    let mut jobs = cluster.client().jobs().await.unwrap();
    let job = jobs
        .submit_job(SubmitJobRequest {
            spec: Some(job_spec_to_proto(&JobSpec::new(
                "forever",
                vec![TaskSpec::new("t")],
            ))),
        })
        .await
        .unwrap()
        .into_inner()
        .job;
    within("the handler starting", started.recv())
        .await
        .unwrap();
    let cancelled = jobs
        .cancel_job(CancelJobRequest { job })
        .await
        .unwrap()
        .into_inner();
    assert!(!cancelled.already_finished);
    within("the handler being dropped", dropped.recv())
        .await
        .unwrap();
    let summary = worker.stop().await;
    assert_eq!((summary.revoked, summary.completed), (1, 0));
}

/// A handler that suspends the first lease of each task on "approval" and completes the
/// lease that follows the signal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suspended_task_resumes_on_a_signal_and_completes() {
    let cluster = Cluster::start(ServerOptions::default()).await;
    let leases = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = leases.clone();
    let handler = move |task: Task| {
        let first = {
            let mut seen = seen.lock().unwrap();
            seen.push((task.attempt, task.fence.epoch));
            seen.len() == 1
        };
        async move {
            if first {
                Outcome::Suspend {
                    waitpoint: "approval".into(),
                    timeout: Some(std::time::Duration::from_secs(600)),
                    on_timeout: keel_engine::SuspendTimeout::Fail,
                }
            } else {
                Outcome::Complete(b"approved".to_vec())
            }
        }
    };
    let config = WorkerConfig::new(cluster.client(), "w1", 1);
    let worker = run_worker(config, handler);
    let mut jobs = cluster.client().jobs().await.unwrap();
    let spec = JobSpec::new("gated", vec![TaskSpec::new("deploy")]);
    let submitted = submit(&mut jobs, &spec).await;
    let (job, task) = (submitted.job, submitted.first_task);
    // Polled rather than watched: the task may suspend before a watch would start.
    let suspended = within("the task suspending", async {
        loop {
            let view = jobs
                .describe_job(DescribeJobRequest { job })
                .await
                .unwrap()
                .into_inner();
            let t = &view.tasks[0];
            if t.state == "suspended" {
                return (t.id, t.detail.clone());
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    })
    .await;
    assert_eq!(suspended, (task, "on approval".to_string()));

    let signal = SignalTaskRequest {
        job,
        task,
        waitpoint: "approval".into(),
        idempotency_key: "approve-1".into(),
        payload: b"approved by ops".to_vec(),
    };
    let sent = jobs.signal_task(signal.clone()).await.unwrap().into_inner();
    assert_eq!((sent.resumed, sent.duplicate), (true, false));
    let again = jobs.signal_task(signal).await.unwrap().into_inner();
    assert_eq!((again.resumed, again.duplicate), (false, true));

    let events = within("the job finishing", wait_finished(&mut jobs, job)).await;
    assert_eq!(events.last().unwrap().detail, "succeeded");
    let view = jobs
        .describe_job(DescribeJobRequest { job })
        .await
        .unwrap()
        .into_inner();
    let ends: Vec<_> = view.tasks[0]
        .attempts
        .iter()
        .map(|a| (a.attempt, a.end.as_str()))
        .collect();
    // An attempt the engine ended shows its reason as the engine names it.
    assert_eq!(ends, [(1, "suspended"), (1, "succeeded")]);
    let leases = leases.lock().unwrap().clone();
    assert_eq!(leases.len(), 2, "{leases:?}");
    assert_eq!(
        leases[0].0, leases[1].0,
        "the resumed lease is the same attempt"
    );
    assert!(
        leases[1].1 > leases[0].1,
        "the resumed lease has a new epoch"
    );
    let summary = worker.stop().await;
    assert_eq!((summary.suspended, summary.completed), (1, 1));
}
