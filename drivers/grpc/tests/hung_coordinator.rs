//! A coordinator that hangs (a SIGSTOPped process, a black-holed address: connections
//! are accepted and never answered) must not hold up the worker's own decisions. While
//! the worker waits to open a session, a handler whose lease is no longer trusted is
//! still stopped on time, and the answer timeout bounds the wait.

mod support;

use keel_coordinator::CoordinatorConfig;
use keel_engine::{JobSpec, TaskSpec};
use keel_grpc::client::ClientOptions;
use keel_grpc::server::ServerOptions;
use keel_grpc::worker::{Outcome, Task, Worker, WorkerConfig};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use support::proxy::Proxy;
use support::{run_worker, submit, within, Cluster};
use tokio::sync::mpsc;

struct DropFlag(mpsc::UnboundedSender<Instant>);
impl Drop for DropFlag {
    fn drop(&mut self) {
        let _ = self.0.send(Instant::now());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_stops_being_trusted_on_time_while_the_session_hangs_opening() {
    let ttl = Duration::from_millis(2_000);
    let mut config = CoordinatorConfig::default();
    config.engine.lease_ttl_ms = ttl.as_millis() as u64;
    let cluster = Cluster::start_with(config, ServerOptions::default()).await;
    let upstream: SocketAddr = cluster.url.trim_start_matches("http://").parse().unwrap();
    let proxy = Proxy::start(upstream).await;

    let (started_tx, mut started) = mpsc::unbounded_channel::<()>();
    let (dropped_tx, mut dropped) = mpsc::unbounded_channel::<Instant>();
    let handler = move |_task: Task| {
        let flag = DropFlag(dropped_tx.clone());
        let _ = started_tx.send(());
        async move {
            let _flag = flag;
            std::future::pending::<Outcome>().await
        }
    };
    // Connecting and opening may each take far longer than the lease: the session is
    // still opening when trust runs out.
    let mut client = ClientOptions::new(proxy.url.clone());
    client.connect_timeout = Duration::from_secs(20);
    let mut worker_config = WorkerConfig::new(client, "w1", 1);
    worker_config.answer_timeout = Duration::from_secs(20);
    let worker = run_worker(worker_config, handler);
    let mut jobs = cluster.client().jobs().await.unwrap();
    submit(
        &mut jobs,
        &JobSpec::new("forever", vec![TaskSpec::new("t")]),
    )
    .await;
    within("the handler starting", started.recv())
        .await
        .unwrap();

    // The coordinator hangs: the worker's session breaks and every new one hangs.
    let hung_at = Instant::now();
    proxy.hang();
    let dropped_at = within("the handler being stopped", dropped.recv())
        .await
        .unwrap();
    let after = dropped_at.duration_since(hung_at);
    assert!(
        after < ttl + Duration::from_secs(5),
        "the handler ran {after:?} after the coordinator hung; its lease was trusted for at most {ttl:?}"
    );
    worker.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zero_answer_timeout_is_refused() {
    let mut config = WorkerConfig::new(ClientOptions::new("http://127.0.0.1:1"), "w1", 1);
    config.answer_timeout = Duration::ZERO;
    let handler = |_task: Task| async { Outcome::Complete(Vec::new()) };
    let err = Worker::new(config)
        .run(handler, std::future::pending())
        .await
        .expect_err("a zero answer timeout would drop every session at once");
    assert!(
        err.to_string().contains("answer_timeout must be positive"),
        "{err}"
    );
}
