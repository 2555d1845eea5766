//! A worker's instance does not depend on its clock: one restarted with an instance
//! below the coordinator's current one (a clock that went backwards) registers past it
//! after one refusal, and refused registrations back off instead of spinning.

mod support;

use keel_engine::{InstanceId, JobSpec, TaskSpec, WorkerId};
use keel_grpc::client::ClientOptions;
use keel_grpc::proto::worker_service_server::{WorkerService, WorkerServiceServer};
use keel_grpc::proto::*;
use keel_grpc::server::ServerOptions;
use keel_grpc::worker::{Outcome, Task, Worker, WorkerConfig};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::raw::Raw;
use support::{run_worker, within, Cluster};
use tonic::{Request, Response, Status, Streaming};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_below_the_current_instance_registers_after_one_refusal() {
    let cluster = Cluster::start(ServerOptions::default()).await;
    // An earlier run of "w1" registered an instance far above what this run's clock
    // gives, as after a restart on a machine whose clock went back.
    let current = 4_000_000_000_000_000;
    let mut workers = cluster.client().workers().await.unwrap();
    let earlier = Raw::registered(&mut workers, "w1", current).await;
    drop(earlier);

    let mut jobs = cluster.client().jobs().await.unwrap();
    let tasks = (0..3).map(|i| TaskSpec::new(format!("t{i}"))).collect();
    let job = support::submit(&mut jobs, &JobSpec::new("after-restart", tasks))
        .await
        .job;
    let mut config = WorkerConfig::new(cluster.client(), "w1", 2);
    config.instance = Some(5);
    let worker = run_worker(config, |t: Task| async move {
        Outcome::Complete(t.payload.clone())
    });
    let outcome = within("the job finishing", support::finished(&mut jobs, job)).await;
    assert_eq!(outcome, "succeeded");
    let instance = cluster
        .handle
        .read(|e| {
            let w1 = WorkerId::new("w1");
            e.workers()
                .into_iter()
                .find(|w| w.id == w1)
                .map(|w| w.instance)
        })
        .await
        .unwrap();
    assert_eq!(instance, Some(InstanceId::new(current + 1)));
    let summary = worker.stop().await;
    assert_eq!(summary.registrations_refused, 1, "{summary:?}");
    assert_eq!(summary.completed, 3);
}

/// A coordinator that refuses every registration as stale without naming the current
/// instance, counting the attempts.
struct Refusing(Arc<AtomicU64>);

#[tonic::async_trait]
impl WorkerService for Refusing {
    type SessionStream = tokio_stream::Empty<Result<CoordinatorFrame, Status>>;

    async fn session(
        &self,
        _request: Request<Streaming<WorkerFrame>>,
    ) -> Result<Response<Self::SessionStream>, Status> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Err(Status::failed_precondition(
            "stale_instance: worker w1 instance i1 is not the current instance",
        ))
    }

    type TailEdgeStream = tokio_stream::Empty<Result<keel_grpc::proto::EdgePage, Status>>;

    async fn tail_edge(
        &self,
        _request: Request<keel_grpc::proto::TailEdgeRequest>,
    ) -> Result<Response<Self::TailEdgeStream>, Status> {
        Err(Status::not_found(
            "unknown_edge: this coordinator serves no edges",
        ))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_registrations_back_off_and_are_counted() {
    let attempts = Arc::new(AtomicU64::new(0));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop_server, server_stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tonic::transport::Server::builder()
        .add_service(WorkerServiceServer::new(Refusing(attempts.clone())))
        .serve_with_incoming_shutdown(
            tonic::transport::server::TcpIncoming::from(listener),
            async {
                let _ = server_stopped.await;
            },
        );
    tokio::spawn(server);

    let mut config = WorkerConfig::new(ClientOptions::new(url), "w1", 1);
    config.backoff_min = Duration::from_millis(50);
    config.backoff_max = Duration::from_millis(400);
    let run_for = Duration::from_secs(2);
    let started = Instant::now();
    let summary = within(
        "the worker stopping",
        Worker::new(config).run(
            |_t: Task| async { Outcome::Complete(Vec::new()) },
            tokio::time::sleep(run_for),
        ),
    )
    .await
    .unwrap();
    let _ = stop_server.send(());
    let n = attempts.load(Ordering::SeqCst);
    // Pauses of 50, 100, 200 and then 400 ms (each up to a quarter shorter) fit about
    // eight attempts into two seconds; without them it is thousands.
    assert!(
        (3..=12).contains(&n),
        "{n} registrations in {:?}",
        started.elapsed()
    );
    assert_eq!(summary.registrations_refused, n, "{summary:?}");
}
