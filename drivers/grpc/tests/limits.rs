//! What a peer can make the server hold is bounded, and every refusal is
//! RESOURCE_EXHAUSTED naming the limit: a worker frame or a request over the size limit,
//! sessions and watches beyond their counts, and a worker that never reads its session.

mod support;

use keel_engine::{JobSpec, TaskSpec};
use keel_grpc::client::{ClientOptions, Connection};
use keel_grpc::job_spec_to_proto;
use keel_grpc::proto::worker_command::Command;
use keel_grpc::proto::*;
use keel_grpc::server::{ServerOptions, FRAME_OVERHEAD_BYTES};
use std::time::Duration;
use support::raw::{heartbeat, register, Raw};
use support::{run_worker, within, Cluster};
use tonic::Code;

/// Bounds a step that must happen soon: a session that should end but hangs fails here.
async fn soon<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(10), f)
        .await
        .unwrap_or_else(|_| panic!("{what} did not happen within 10s"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_frame_over_the_limit_ends_its_session_with_resource_exhausted() {
    // The smallest limit the server accepts with the engine's 1 MiB payloads.
    let limit = (1 << 20) + FRAME_OVERHEAD_BYTES;
    let cluster = Cluster::start(ServerOptions {
        max_message_bytes: limit,
        ..ServerOptions::default()
    })
    .await;
    let mut workers = cluster.client().workers().await.unwrap();
    let mut raw = Raw::open(&mut workers, vec![register("w1", 1)])
        .await
        .unwrap();
    assert!(
        matches!(raw.reply(1).await, Ok(reply::Result::Registered(r)) if r.max_message_bytes == limit as u64)
    );
    let beat = raw.send(vec![heartbeat()]);
    assert!(matches!(raw.reply(beat).await, Ok(reply::Result::Ok(_))));

    // A heartbeat, then a frame one byte over the limit.
    let beat = raw.send(vec![heartbeat()]);
    raw.send(vec![Command::Complete(Complete {
        fence: None,
        output: vec![0; limit],
    })]);
    let answered = soon("the heartbeat's answer", raw.reply(beat)).await;
    assert!(matches!(answered, Ok(reply::Result::Ok(_))), "{answered:?}");
    let (_, ended) = soon("the end of the session", raw.drain()).await;
    let status = ended.expect_err("the session ended without saying why");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(
        status.message().starts_with(&format!(
            "limit_reached: max_message_bytes = {limit}: a worker frame of "
        )),
        "{}",
        status.message()
    );

    // The worker reconnects with the same instance and is served again.
    let mut again = Raw::open(&mut workers, vec![register("w1", 1)])
        .await
        .unwrap();
    let registered = soon("the registration", again.reply(1)).await;
    assert!(matches!(registered, Ok(reply::Result::Registered(r)) if r.duplicate));
    let beat = again.send(vec![heartbeat()]);
    assert!(matches!(
        soon("a heartbeat's answer", again.reply(beat)).await,
        Ok(reply::Result::Ok(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_over_the_limit_is_resource_exhausted_naming_it() {
    let limit = 2 << 20;
    let cluster = Cluster::start(ServerOptions {
        max_message_bytes: limit,
        ..ServerOptions::default()
    })
    .await;
    let mut jobs = cluster.client().jobs().await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..3 {
        let mut task = TaskSpec::new(format!("t{i}"));
        task.payload = vec![1u8; 1 << 20].into();
        tasks.push(task);
    }
    let request = SubmitJobRequest {
        spec: Some(job_spec_to_proto(&JobSpec::new("big", tasks))),
    };
    let status = jobs.submit_job(request).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(
        status.message().starts_with(&format!(
            "limit_reached: max_message_bytes = {limit}: a request of "
        )),
        "{}",
        status.message()
    );
    // The connection still serves.
    assert!(jobs.list_jobs(ListJobsRequest::default()).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_and_watches_beyond_their_limits_are_refused_until_one_ends() {
    let cluster = Cluster::start(ServerOptions {
        max_sessions: 1,
        max_watches: 1,
        ..ServerOptions::default()
    })
    .await;
    let mut workers = cluster.client().workers().await.unwrap();
    let first = Raw::registered(&mut workers, "w1", 1).await;
    let refused = Raw::open(&mut workers, vec![register("w2", 1)])
        .await
        .err()
        .expect("a second session was admitted");
    assert_eq!(refused.code(), Code::ResourceExhausted);
    assert!(
        refused
            .message()
            .starts_with("limit_reached: max_sessions = 1: "),
        "{}",
        refused.message()
    );
    drop(first);
    let mut second = within("a session after the first ended", async {
        loop {
            if let Ok(s) = Raw::open(&mut workers, vec![register("w2", 1)]).await {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(matches!(
        second.reply(1).await,
        Ok(reply::Result::Registered(_))
    ));

    let mut jobs = cluster.client().jobs().await.unwrap();
    let job = support::submit(&mut jobs, &JobSpec::new("w", vec![TaskSpec::new("t")]))
        .await
        .job;
    let watch = jobs
        .watch_job(WatchJobRequest {
            job,
            ..Default::default()
        })
        .await
        .unwrap();
    let refused = jobs
        .watch_job(WatchJobRequest {
            job,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted);
    assert!(
        refused
            .message()
            .starts_with("limit_reached: max_watches = 1: "),
        "{}",
        refused.message()
    );
    drop(watch);
    within("a watch after the first ended", async {
        while jobs
            .watch_job(WatchJobRequest {
                job,
                ..Default::default()
            })
            .await
            .is_err()
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_that_sends_faster_than_it_reads_is_slowed_down_not_cut_off() {
    let (in_flight, queue) = (64, 1_200);
    let cluster = Cluster::start(ServerOptions {
        max_in_flight: in_flight,
        session_queue: queue,
        ..ServerOptions::default()
    })
    .await;
    let mut workers = cluster.client().workers().await.unwrap();
    let mut raw = Raw::registered(&mut workers, "w1", 1).await;
    // 20,000 malformed renewals at once, many times the session's queue, read at about
    // 10,000 replies a second, a tenth of the rate the server answers them at.
    let mut last = 0;
    for _ in 0..20 {
        last = raw.send(
            (0..1_000)
                .map(|_| Command::Renew(Renew { fence: None }))
                .collect(),
        );
    }
    let mut answered = 0;
    soon("every reply", async {
        loop {
            let frame = raw.inbound.message().await;
            let Ok(Some(frame)) = frame else {
                panic!("the session ended after {answered} replies: {frame:?}");
            };
            let read = frame.events.len() as u64;
            for event in frame.events {
                if let Some(coordinator_event::Event::Reply(r)) = event.event {
                    answered += 1;
                    if r.seq == last {
                        return;
                    }
                }
            }
            tokio::time::sleep(Duration::from_micros(100 * read)).await;
        }
    })
    .await;
    assert_eq!(answered, 20_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_that_never_reads_has_its_session_ended_not_buffered() {
    let (in_flight, queue) = (64, 1_200);
    let cluster = Cluster::start(ServerOptions {
        max_in_flight: in_flight,
        session_queue: queue,
        session_stall: Duration::from_secs(2),
        ..ServerOptions::default()
    })
    .await;
    // Small transport windows, so what the worker does not read backs up into the server
    // quickly instead of into the transport's buffers.
    let channel = tonic::transport::Endpoint::from_shared(cluster.url.clone())
        .unwrap()
        .initial_stream_window_size(65_535)
        .initial_connection_window_size(65_535)
        .connect()
        .await
        .unwrap();
    let connection = Connection {
        address: cluster.url.clone(),
        channel,
        hello: None,
        addresses: 1,
    };
    let mut workers = cluster.client().workers_on(&connection).unwrap();
    let mut raw = Raw::registered(&mut workers, "w1", 1).await;
    // 50,000 malformed renewals: each is answered with a refusal of ~60 bytes, and the
    // worker reads none of them for longer than the stall bound.
    let flood = 50_000;
    for _ in 0..flood / 1_000 {
        raw.send(
            (0..1_000)
                .map(|_| Command::Renew(Renew { fence: None }))
                .collect(),
        );
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (events, ended) = soon("the end of the session", raw.drain()).await;
    let status = ended.expect_err("the session ended without saying why");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(
        status
            .message()
            .starts_with(&format!("limit_reached: session_queue = {queue}: ")),
        "{}",
        status.message()
    );
    assert!(events < flood, "every reply was buffered: {events}");
    // The coordinator still serves others.
    let mut jobs = ClientOptions::new(cluster.url.clone())
        .jobs()
        .await
        .unwrap();
    assert!(jobs.list_jobs(ListJobsRequest::default()).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sdk_output_larger_than_the_coordinator_accepts_fails_its_task_naming_the_limit() {
    let limit = (1 << 20) + FRAME_OVERHEAD_BYTES;
    let cluster = Cluster::start(ServerOptions {
        max_message_bytes: limit,
        ..ServerOptions::default()
    })
    .await;
    let (task, summary) = fail_by_output(&cluster, limit).await;
    assert!(
        task.detail
            .contains(&format!("max_message_bytes ({limit} bytes)")),
        "{}",
        task.detail
    );
    assert_eq!(summary.reconnects, 0, "{summary:?}");
    assert_eq!(summary.failed, 1);
}

/// An output that fits a frame but not the engine's `max_payload_bytes` reaches the
/// engine, which fails the attempt for good naming the limit: it is not refused as a
/// malformed command, which the worker would drop while its lease ran out and the task
/// was run again with the same result.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sdk_output_over_the_engines_limit_fails_its_task_at_once_naming_the_limit() {
    let cluster = Cluster::start(ServerOptions::default()).await;
    let max = cluster_limit();
    let (task, summary) = fail_by_output(&cluster, max + 1).await;
    assert!(task.detail.contains("max_payload_bytes"), "{}", task.detail);
    assert_eq!(task.attempts.len(), 1, "the task ran again: {task:?}");
    assert_eq!(summary.failed, 1, "{summary:?}");
}

/// The engine's default limit on one output.
fn cluster_limit() -> usize {
    keel_engine::Config::default().limits.max_payload_bytes as usize
}

/// Runs a one-task job whose SDK handler completes with `bytes` bytes of output until
/// the job ends failed; returns the task's view and the worker's summary.
async fn fail_by_output(cluster: &Cluster, bytes: usize) -> (TaskView, keel_grpc::worker::Summary) {
    fail_with_output(cluster, TaskSpec::new("t"), bytes).await
}

/// [`fail_by_output`] for a job of the one task `task`.
async fn fail_with_output(
    cluster: &Cluster,
    task: TaskSpec,
    bytes: usize,
) -> (TaskView, keel_grpc::worker::Summary) {
    let mut jobs = cluster.client().jobs().await.unwrap();
    let job = support::submit(&mut jobs, &JobSpec::new("big", vec![task]))
        .await
        .job;
    let config = keel_grpc::worker::WorkerConfig::new(cluster.client(), "w1", 1);
    let worker = run_worker(config, move |_t: keel_grpc::worker::Task| async move {
        keel_grpc::worker::Outcome::Complete(vec![0; bytes])
    });
    let outcome = soon("the job ending", support::finished(&mut jobs, job)).await;
    assert_eq!(outcome, "failed");
    let view = jobs
        .describe_job(DescribeJobRequest { job })
        .await
        .unwrap()
        .into_inner();
    let summary = worker.stop().await;
    (view.tasks[0].clone(), summary)
}

/// An output that fits every per-output limit but not the bytes the engine may still
/// store is refused as `limit_reached`, with the attempt left running. The worker fails
/// the attempt (not for good) naming the limit, so the task is retried by its policy
/// and in the end fails naming it, at once rather than after a lease's time per attempt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sdk_output_over_the_bytes_left_to_store_fails_its_attempts_naming_the_limit() {
    let mut config = keel_coordinator::CoordinatorConfig::default();
    config.engine.limits.max_payload_bytes = 4_096;
    config.engine.limits.max_stored_bytes = 4_096;
    let cluster = Cluster::start_with(config, ServerOptions::default()).await;
    let mut task = TaskSpec::new("t");
    task.payload = keel_engine::Payload::from(vec![b'p'; 3_000]);
    task.retry.max_attempts = 2;
    task.retry.backoff_base_ms = 10;
    let (task, summary) = fail_with_output(&cluster, task, 2_000).await;
    assert!(task.detail.contains("max_stored_bytes"), "{}", task.detail);
    assert_eq!(task.attempts.len(), 2, "{task:?}");
    assert_eq!((summary.failed, summary.stale), (2, 0), "{summary:?}");
}
