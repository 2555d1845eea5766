//! Streaming edges over real loopback gRPC: a consumer runs beside its producer and
//! reads its frames as they are stored (`Task::stream`), acknowledging as it goes; a
//! bounded `block` edge holds the producer's emits back until the consumer
//! acknowledges, losing nothing; a retried consumer resumes from its acknowledged
//! cursor.

mod support;

use keel_engine::{EdgePolicy, JobSpec, OnFull, StreamEdge, TaskSpec};
use keel_grpc::proto::ReadStreamRequest;
use keel_grpc::server::ServerOptions;
use keel_grpc::worker::{Outcome, Task, WorkerConfig};
use support::{finished, run_worker, submit, within, Cluster};
use tokio::sync::mpsc;

/// Frames the producer emits, in emits of `BATCH`.
const FRAMES: u64 = 200;
const BATCH: u64 = 8;

fn edge_job(policy: EdgePolicy) -> JobSpec {
    let mut count = TaskSpec::new("count");
    count.stream_from = vec![StreamEdge {
        from: "produce".into(),
        policy,
    }];
    JobSpec::new("pipeline", vec![TaskSpec::new("produce"), count])
}

/// Emits `FRAMES` numbered frames.
async fn produce(task: &Task) -> Outcome {
    for start in (0..FRAMES).step_by(BATCH as usize) {
        let frames = (start..start + BATCH)
            .map(|n| n.to_string().into_bytes())
            .collect();
        if let Err(e) = task.emit(frames).await {
            return Outcome::Fail {
                error: e.to_string(),
                permanent: false,
            };
        }
    }
    Outcome::Complete(Vec::new())
}

/// Reads every frame, acknowledging every fourth; the first attempt stops after 50
/// frames, failing, so the second must resume from the acknowledged cursor. Reports
/// (attempt, the numbers it read) and completes with nothing.
async fn count(task: &Task, seen: &mpsc::UnboundedSender<(u32, Vec<u64>)>) -> Outcome {
    let mut stream = task.stream("produce");
    let mut got = Vec::new();
    loop {
        let frame = match stream.next().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => {
                return Outcome::Fail {
                    error: e.to_string(),
                    permanent: true,
                }
            }
        };
        got.push(
            String::from_utf8_lossy(&frame.data)
                .parse()
                .unwrap_or(u64::MAX),
        );
        if got.len() % 4 == 0 {
            task.ack("produce", frame.seq + 1).await.expect("acked");
        }
        if task.attempt == 1 && got.len() == 50 {
            let _ = seen.send((task.attempt, got));
            return Outcome::Fail {
                error: "stopping half way".into(),
                permanent: false,
            };
        }
    }
    let _ = seen.send((task.attempt, got));
    Outcome::Complete(Vec::new())
}

/// Runs the two-stage job under `policy`; returns each consumer attempt's numbers and
/// how many frames the producer had stored when the first attempt stopped.
async fn run(policy: EdgePolicy) -> (Vec<(u32, Vec<u64>)>, u64) {
    let cluster = Cluster::start(ServerOptions::default()).await;
    let (seen_tx, mut seen) = mpsc::unbounded_channel();
    let handler = move |task: Task| {
        let seen_tx = seen_tx.clone();
        async move {
            match task.key.as_str() {
                "produce" => produce(&task).await,
                _ => count(&task, &seen_tx).await,
            }
        }
    };
    let config = WorkerConfig::new(cluster.client(), "w1", 2);
    let worker = run_worker(config, handler);
    let mut jobs = cluster.client().jobs().await.unwrap();
    let job = submit(&mut jobs, &edge_job(policy)).await.job;
    let first = within("the first consumer attempt", seen.recv())
        .await
        .unwrap();
    let read = ReadStreamRequest {
        job,
        key: "produce".into(),
        ..Default::default()
    };
    let produced = jobs.read_stream(read).await.unwrap().into_inner().next;
    assert_eq!(
        within("the job", finished(&mut jobs, job)).await,
        "succeeded"
    );
    let mut runs = vec![first];
    while let Ok(run) = seen.try_recv() {
        runs.push(run);
    }
    worker.stop().await;
    (runs, produced)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fifo_consumer_reads_every_frame_and_its_retry_resumes_from_its_ack() {
    let (runs, _) = run(EdgePolicy::Fifo).await;
    assert_eq!(runs.len(), 2, "{runs:?}");
    assert_eq!(runs[0].1, (0..50).collect::<Vec<_>>());
    // Acknowledged up to 48 (every fourth frame): the retry reads from there.
    assert_eq!(runs[1].1, (48..FRAMES).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocking_edge_holds_the_producer_back_and_loses_nothing() {
    let policy = EdgePolicy::Bounded {
        capacity: 12,
        on_full: OnFull::Block,
    };
    let (runs, produced) = run(policy).await;
    // The first attempt acknowledged 48 frames: the producer could run 12 ahead.
    assert!((50..=60).contains(&produced), "{produced} frames stored");
    assert_eq!(runs.len(), 2, "{runs:?}");
    assert_eq!(runs[0].1, (0..50).collect::<Vec<_>>());
    assert_eq!(runs[1].1, (48..FRAMES).collect::<Vec<_>>());
}
