//! `WatchJob` with `include_outputs`: a succeeded task's `task_finished` event carries
//! its output up to the server's `max_watch_output_bytes`, and only its size past it;
//! a watch that does not ask carries no output.

mod support;

use keel_engine::{JobSpec, Payload, TaskSpec};
use keel_grpc::job_spec_to_proto;
use keel_grpc::proto::*;
use keel_grpc::server::ServerOptions;
use keel_grpc::worker::{Outcome, Task, Worker, WorkerConfig};
use support::{within, Cluster};
use tokio::sync::oneshot;

async fn finished_events(stream: &mut tonic::Streaming<JobEvent>) -> Vec<JobEvent> {
    let mut seen = Vec::new();
    while let Some(event) = stream.message().await.unwrap() {
        let last = event.kind == "job_finished";
        if event.kind == "task_finished" {
            seen.push(event);
        }
        if last {
            break;
        }
    }
    seen.sort_by_key(|e| e.task);
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_carries_outputs_within_its_cap_when_asked() {
    let cluster = Cluster::start(ServerOptions {
        max_watch_output_bytes: 6,
        ..ServerOptions::default()
    })
    .await;
    let mut spec = JobSpec::new(
        "outputs",
        vec![TaskSpec::new("short"), TaskSpec::new("long")],
    );
    spec.tasks[0].payload = Payload::from("abc");
    spec.tasks[1].payload = Payload::from("abcdefghij");
    let mut jobs = cluster.client().jobs().await.unwrap();
    let job = jobs
        .submit_job(SubmitJobRequest {
            spec: Some(job_spec_to_proto(&spec)),
        })
        .await
        .unwrap()
        .into_inner()
        .job;
    // Both watches open before any worker runs, so neither misses an event.
    let mut with = jobs
        .watch_job(WatchJobRequest {
            job,
            include_outputs: true,
        })
        .await
        .unwrap()
        .into_inner();
    let mut without = jobs
        .watch_job(WatchJobRequest {
            job,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let (stop, stopped) = oneshot::channel::<()>();
    let handler = |task: Task| async move {
        let mut out = task.payload.clone();
        out.make_ascii_uppercase();
        Outcome::Complete(out)
    };
    let config = WorkerConfig::new(cluster.client(), "w", 2);
    let worker = tokio::spawn(Worker::new(config).run(handler, async {
        let _ = stopped.await;
    }));

    let events = within("the watch with outputs", finished_events(&mut with)).await;
    let shown: Vec<(&[u8], u64, bool)> = events
        .iter()
        .map(|e| (e.output.as_slice(), e.output_size, e.output_omitted))
        .collect();
    assert_eq!(shown, [(&b"ABC"[..], 3, false), (&b""[..], 10, true)]);
    let plain = within("the watch without", finished_events(&mut without)).await;
    assert_eq!(plain.len(), 2);
    assert!(plain
        .iter()
        .all(|e| e.output.is_empty() && e.output_size == 0 && !e.output_omitted));
    let _ = stop.send(());
    let _ = within("the worker draining", worker).await;
}
